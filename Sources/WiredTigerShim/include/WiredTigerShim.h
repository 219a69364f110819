// Plain C entry points for the parts of WiredTiger's API that Swift cannot call: the cursor's
// variadic set_key/set_value/get_key/get_value, and the method tables reached through struct
// function pointers (wrapped too, so the Swift side reads as ordinary calls).
//
// Every table Walle creates has one of two formats: key "Q" (uint64 entry id) or "S" (string),
// value "u" (raw bytes). The wrappers below only support those.
#ifndef WALLE_WIREDTIGER_SHIM_H
#define WALLE_WIREDTIGER_SHIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct __wt_connection WT_CONNECTION;
typedef struct __wt_session WT_SESSION;
typedef struct __wt_cursor WT_CURSOR;

/// WiredTiger's WT_NOTFOUND, for Swift (the macro is not imported).
extern const int walle_wt_notfound;

int walle_wt_open(const char *home, const char *config, WT_CONNECTION **connection);
int walle_wt_close(WT_CONNECTION *connection);
const char *walle_wt_strerror(int error);

int walle_wt_open_session(WT_CONNECTION *connection, WT_SESSION **session);
int walle_wt_session_close(WT_SESSION *session);
int walle_wt_create(WT_SESSION *session, const char *name, const char *config);
/// Drops a table (not transactional; no cursor may be open on it).
int walle_wt_drop(WT_SESSION *session, const char *name);
/// Removes every key below `below` from a table keyed by `Q` (a range truncate from the
/// table's start through the last key below `below`); nothing to remove is success.
int walle_wt_truncate_below(WT_SESSION *session, const char *name, uint64_t below);
/// Compacts a table: rewrites blocks from the end of its file into free space and shortens it.
int walle_wt_compact(WT_SESSION *session, const char *name);
/// Writes a checkpoint of every table (the blocks a truncate freed become free only then).
int walle_wt_checkpoint(WT_SESSION *session);
int walle_wt_begin(WT_SESSION *session);
int walle_wt_commit(WT_SESSION *session);
int walle_wt_rollback(WT_SESSION *session);
/// Writes the log to the storage device: every transaction committed before the call is durable.
int walle_wt_log_flush_sync(WT_SESSION *session);

int walle_wt_open_cursor(WT_SESSION *session, const char *name, WT_CURSOR **cursor);
int walle_cursor_close(WT_CURSOR *cursor);
void walle_cursor_set_id(WT_CURSOR *cursor, uint64_t key);
/// Sets the key and value and inserts (or overwrites) in one call: WiredTiger keeps the
/// pointers until the insert, so they must stay valid that long.
int walle_cursor_insert_name(WT_CURSOR *cursor, const char *key, const void *data, size_t size);
int walle_cursor_insert_id(WT_CURSOR *cursor, uint64_t key, const void *data, size_t size);
int walle_cursor_remove_name(WT_CURSOR *cursor, const char *key);
int walle_cursor_remove_id(WT_CURSOR *cursor, uint64_t key);
int walle_cursor_get_id(WT_CURSOR *cursor, uint64_t *key);
int walle_cursor_get_name(WT_CURSOR *cursor, const char **key);
/// The pointer stays valid until the cursor moves or is reset.
int walle_cursor_get_bytes(WT_CURSOR *cursor, const void **data, size_t *size);
int walle_cursor_search(WT_CURSOR *cursor);
/// Positions at the first key >= the key set (0), or returns WT_NOTFOUND when there is none.
int walle_cursor_seek_at_or_after(WT_CURSOR *cursor);
int walle_cursor_next(WT_CURSOR *cursor);
int walle_cursor_reset(WT_CURSOR *cursor);

#endif
