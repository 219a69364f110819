#include "WiredTigerShim.h"

#include <wiredtiger.h>

const int walle_wt_notfound = WT_NOTFOUND;

int walle_wt_open(const char *home, const char *config, WT_CONNECTION **connection) {
    return wiredtiger_open(home, NULL, config, connection);
}

int walle_wt_close(WT_CONNECTION *connection) { return connection->close(connection, NULL); }

const char *walle_wt_strerror(int error) { return wiredtiger_strerror(error); }

int walle_wt_open_session(WT_CONNECTION *connection, WT_SESSION **session) {
    return connection->open_session(connection, NULL, NULL, session);
}

int walle_wt_session_close(WT_SESSION *session) { return session->close(session, NULL); }

int walle_wt_create(WT_SESSION *session, const char *name, const char *config) {
    return session->create(session, name, config);
}

int walle_wt_drop(WT_SESSION *session, const char *name) { return session->drop(session, name, NULL); }

int walle_wt_compact(WT_SESSION *session, const char *name) { return session->compact(session, name, NULL); }

int walle_wt_checkpoint(WT_SESSION *session) { return session->checkpoint(session, NULL); }

// The stop cursor is the last key below `below`: search_near lands next to it, and a key
// above it steps back once. The start is the table's first key (NULL), so one call removes
// the whole range inside the caller's transaction.
int walle_wt_truncate_below(WT_SESSION *session, const char *name, uint64_t below) {
    if (below == 0) return 0;
    WT_CURSOR *stop;
    int error = session->open_cursor(session, name, NULL, NULL, &stop);
    if (error != 0) return error;
    stop->set_key(stop, below - 1);
    int exact = 0;
    error = stop->search_near(stop, &exact);
    if (error == 0 && exact > 0) error = stop->prev(stop);
    if (error == 0) error = session->truncate(session, NULL, NULL, stop, NULL);
    int closed = stop->close(stop);
    if (error == WT_NOTFOUND) error = 0;
    return error != 0 ? error : closed;
}

// Commits do not sync on their own: durability comes from the one sync thread's log flush,
// which covers every transaction committed before it (group commit).
int walle_wt_begin(WT_SESSION *session) { return session->begin_transaction(session, "sync=false"); }

int walle_wt_commit(WT_SESSION *session) { return session->commit_transaction(session, NULL); }

int walle_wt_rollback(WT_SESSION *session) { return session->rollback_transaction(session, NULL); }

int walle_wt_log_flush_sync(WT_SESSION *session) { return session->log_flush(session, "sync=on"); }

int walle_wt_open_cursor(WT_SESSION *session, const char *name, WT_CURSOR **cursor) {
    return session->open_cursor(session, name, NULL, NULL, cursor);
}

int walle_cursor_close(WT_CURSOR *cursor) { return cursor->close(cursor); }

void walle_cursor_set_id(WT_CURSOR *cursor, uint64_t key) { cursor->set_key(cursor, key); }

// WiredTiger keeps the pointers given to set_key and set_value until the operation runs, so
// setting and operating happen in one call here, while the caller's buffers are still valid.
// (Setting a Swift string's key in one call and inserting in the next stored garbage keys.)

// The key is already set: sets the value and inserts.
static int insert_value(WT_CURSOR *cursor, const void *data, size_t size) {
    WT_ITEM item;
    item.data = data;
    item.size = size;
    cursor->set_value(cursor, &item);
    return cursor->insert(cursor);
}

int walle_cursor_insert_name(WT_CURSOR *cursor, const char *key, const void *data, size_t size) {
    cursor->set_key(cursor, key);
    return insert_value(cursor, data, size);
}

int walle_cursor_insert_id(WT_CURSOR *cursor, uint64_t key, const void *data, size_t size) {
    cursor->set_key(cursor, key);
    return insert_value(cursor, data, size);
}

int walle_cursor_remove_name(WT_CURSOR *cursor, const char *key) {
    cursor->set_key(cursor, key);
    return cursor->remove(cursor);
}

int walle_cursor_remove_id(WT_CURSOR *cursor, uint64_t key) {
    cursor->set_key(cursor, key);
    return cursor->remove(cursor);
}

int walle_cursor_get_id(WT_CURSOR *cursor, uint64_t *key) { return cursor->get_key(cursor, key); }

int walle_cursor_get_name(WT_CURSOR *cursor, const char **key) { return cursor->get_key(cursor, key); }

int walle_cursor_get_bytes(WT_CURSOR *cursor, const void **data, size_t *size) {
    WT_ITEM item;
    int error = cursor->get_value(cursor, &item);
    if (error == 0) {
        *data = item.data;
        *size = item.size;
    }
    return error;
}

int walle_cursor_search(WT_CURSOR *cursor) { return cursor->search(cursor); }

int walle_cursor_seek_at_or_after(WT_CURSOR *cursor) {
    int exact = 0;
    int error = cursor->search_near(cursor, &exact);
    if (error == 0 && exact < 0) error = cursor->next(cursor);
    return error;
}

int walle_cursor_next(WT_CURSOR *cursor) { return cursor->next(cursor); }

int walle_cursor_reset(WT_CURSOR *cursor) { return cursor->reset(cursor); }
