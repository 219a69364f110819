#!/usr/bin/env bash
# A soak on real nodes: a 3-node release cluster on loopback (fresh data directories, fsync on:
# every acknowledgement waits for WiredTiger's log flush on a majority), closed-loop puts of
# 100 B at 64 and then 256 in flight for several minutes each. Prints a line per 10-second
# window (puts/s, p99, p99.9), every node's resident memory at the start and the end of each
# run, and a scrape of node 1's metrics in the middle; then stops what it started.
#   scripts/soak.sh [seconds-per-run]      (default 300; docs/benchmarks.md, "Soak")
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-300}"
WINDOW=10
scripts/setup.sh
swift build -c release --product walle-node >/dev/null
swift build -c release --product walle >/dev/null
BIN=.build/release
WORK="$(mktemp -d /tmp/walle-soak.XXXXXX)"
BASE=$((20000 + RANDOM % 20000))
CLUSTER="1=127.0.0.1:$BASE,2=127.0.0.1:$((BASE + 1)),3=127.0.0.1:$((BASE + 2))"
METRICS_PORT=$((BASE + 10))
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for i in 1 2 3; do
  mkdir -p "$WORK/n$i"
  metrics=()
  if [[ $i == 1 ]]; then metrics=(--metrics "127.0.0.1:$METRICS_PORT"); fi
  "$BIN/walle-node" --id "$i" --listen "127.0.0.1:$((BASE + i - 1))" --data-dir "$WORK/n$i" \
    --peers "$CLUSTER" --bootstrap --log-level warning "${metrics[@]}" 2>"$WORK/n$i.log" &
  PIDS+=($!)
done
sleep 1

rss() {
  local line="resident memory ($1):"
  for i in 0 1 2; do
    line+=" node $((i + 1)) $(awk '/^VmRSS:/ { printf "%d MB", $2 / 1024 }' "/proc/${PIDS[$i]}/status")"
  done
  echo "$line"
}

scrape() {
  # The series an operator watches, from node 1 (bash's /dev/tcp: no curl needed).
  exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT"
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  grep -E '^walle_(put_duration_seconds_count|fsync_duration_seconds_(sum|count)|sync_entries_(sum|count)|calls_in_flight|queued_puts|poll_waiters|sync_waiters|timers|streams|gap_entries|requests_refused_total)' <&3 || true
  exec 3<&-
}

echo "soak: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, ${SECONDS_PER_RUN} s per run, 100 B entries"
for inflight in 64 256; do
  echo "== $inflight in flight"
  rss start
  ( sleep $((SECONDS_PER_RUN / 2)); echo "-- metrics of node 1 at half time"; scrape ) &
  scraper=$!
  "$BIN/walle" bench --cluster "$CLUSTER" --stream "/soak/f$inflight" --size 100 --in-flight "$inflight" \
    --duration "$SECONDS_PER_RUN" --warmup 3 --window "$WINDOW" 2>/dev/null
  wait "$scraper" || true
  rss end
  for i in 0 1 2; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then echo "node $((i + 1)) died"; exit 1; fi
  done
done
