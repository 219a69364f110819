#!/usr/bin/env bash
# Starts a 3-node release cluster on loopback (fresh data directories under a temp dir, fsync
# on: every acknowledgement waits for WiredTiger's log flush on a majority), runs `walle bench`
# at 1, 16 and 64 puts in flight with 100 B and 1 KiB entries, and stops the nodes.
#   scripts/bench.sh [seconds-per-run]        (docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
scripts/setup.sh
swift build -c release --product walle-node >/dev/null
swift build -c release --product walle >/dev/null
BIN=.build/release
WORK="$(mktemp -d /tmp/walle-bench.XXXXXX)"
BASE=$((20000 + RANDOM % 20000))
CLUSTER="1=127.0.0.1:$BASE,2=127.0.0.1:$((BASE + 1)),3=127.0.0.1:$((BASE + 2))"
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for i in 1 2 3; do
  mkdir -p "$WORK/n$i"
  "$BIN/walle-node" --id "$i" --listen "127.0.0.1:$((BASE + i - 1))" --data-dir "$WORK/n$i" \
    --peers "$CLUSTER" --bootstrap --log-level warning 2>"$WORK/n$i.log" &
  PIDS+=($!)
done
sleep 1
for size in 100 1024; do
  for inflight in 1 16 64; do
    "$BIN/walle" bench --cluster "$CLUSTER" --stream "/bench/s${size}_f${inflight}" --size "$size" \
      --in-flight "$inflight" --duration "$SECONDS_PER_RUN" --warmup 2 --json 2>/dev/null
  done
done
