#!/usr/bin/env bash
# A soak on real nodes: a 3-node release cluster on loopback (fresh data directories, fsync on:
# every acknowledgement waits for WiredTiger's log flush on a majority), closed-loop puts of
# 100 B at 64 and then 256 in flight for several minutes each. Prints a line per 10-second
# window (puts/s, p99, p99.9), every node's resident memory at the start and the end of each
# run, and a scrape of node 1's metrics in the middle. Then it asks whether the cluster got
# slower by being aged: it starts a second, fresh cluster beside the aged one and alternates
# 45-second cells at 64 in flight between them (aged, fresh, three times each), so both sides
# see the same machine in the same window, and prints each cell and the medians. Then it stops
# what it started.
#   scripts/soak.sh [seconds-per-run]      (default 300; docs/benchmarks.md, "Soak")
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-300}"
WINDOW=10
CELL_SECONDS="${SOAK_CELL_SECONDS:-45}"   # the aged-against-fresh cells
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
FRESH_BASE=$((BASE + 3))
FRESH_CLUSTER="1=127.0.0.1:$FRESH_BASE,2=127.0.0.1:$((FRESH_BASE + 1)),3=127.0.0.1:$((FRESH_BASE + 2))"

# start_cluster NAME BASE CLUSTER [node-1 arguments...]: three nodes, fresh data directories.
start_cluster() {
  local name=$1 base=$2 cluster=$3
  shift 3
  for i in 1 2 3; do
    mkdir -p "$WORK/$name$i"
    local extra=()
    if [[ $i == 1 ]]; then extra=("$@"); fi
    "$BIN/walle-node" --id "$i" --listen "127.0.0.1:$((base + i - 1))" --data-dir "$WORK/$name$i" \
      --peers "$cluster" --bootstrap --log-level warning "${extra[@]}" 2>"$WORK/$name$i.log" &
    PIDS+=($!)
  done
  sleep 1
}
start_cluster n "$BASE" "$CLUSTER" --metrics "127.0.0.1:$METRICS_PORT"

# rss WHEN [FIRST]: resident memory of the three nodes from PIDS[FIRST] on (0: the soaked cluster).
rss() {
  local line="resident memory ($1):" first=${2:-0}
  for i in 0 1 2; do
    line+=" node $((i + 1)) $(awk '/^VmRSS:/ { printf "%d MB", $2 / 1024 }' "/proc/${PIDS[$((first + i))]}/status")"
  done
  echo "$line"
}

# metrics PATTERN: node 1's series matching PATTERN (bash's /dev/tcp: no curl needed).
metrics() {
  exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT"
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  grep -E "$1" <&3 || true
  exec 3<&-
}

scrape() {
  # The series an operator watches.
  metrics '^walle_(put_duration_seconds_count|fsync_duration_seconds_(sum|count)|sync_entries_(sum|count)|calls_in_flight|queued_puts|poll_waiters|sync_waiters|timers|streams|gap_entries|requests_refused_total)'
}

# Node 1's own fsync cost per window, beside the client's lines: when a window is slow, this
# says whether the disk was.
fsync_windows() {
  local previous now
  previous=$(metrics '^walle_fsync_duration_seconds_(sum|count) ' | awk '{ printf "%s ", $2 }')
  while sleep "$WINDOW"; do
    now=$(metrics '^walle_fsync_duration_seconds_(sum|count) ' | awk '{ printf "%s ", $2 }')
    awk -v p="$previous" -v n="$now" 'BEGIN {
      split(p, a); split(n, b)
      if (b[2] > a[2]) printf "  node 1 fsync: %d flushes, mean %.2f ms\n", b[2] - a[2], 1000 * (b[1] - a[1]) / (b[2] - a[2])
    }'
    previous=$now
  done
}

echo "soak: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, ${SECONDS_PER_RUN} s per run, 100 B entries"
for inflight in 64 256; do
  echo "== $inflight in flight"
  rss start
  ( sleep $((SECONDS_PER_RUN / 2)); echo "-- metrics of node 1 at half time"; scrape ) &
  scraper=$!
  fsync_windows &
  sampler=$!
  "$BIN/walle" bench --cluster "$CLUSTER" --stream "/soak/f$inflight" --size 100 --in-flight "$inflight" \
    --duration "$SECONDS_PER_RUN" --warmup 3 --window "$WINDOW" 2>/dev/null
  kill "$sampler" 2>/dev/null || true
  wait "$scraper" || true
  rss end
  for i in 0 1 2; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then echo "node $((i + 1)) died"; exit 1; fi
  done
done

# Aged against fresh. The aged cluster holds every entry of the two runs above (WiredTiger's
# cache full, its tables and logs grown); the fresh one starts empty. Both run the same load in
# alternating cells, so a slowdown that comes from the cluster's age shows as a ratio below 1,
# and one that comes from the machine (fsync cost drifts through a day) hits both sides.
echo "== aged against fresh: 64 in flight, $CELL_SECONDS s cells, alternating"
start_cluster f "$FRESH_BASE" "$FRESH_CLUSTER"
# cell CLUSTER STREAM: one 64-in-flight cell; prints "puts/s p99-ms".
cell() {
  "$BIN/walle" bench --cluster "$1" --stream "$2" --size 100 --in-flight 64 --duration "$CELL_SECONDS" --warmup 3 \
    2>/dev/null | awk '/^puts\/s/ { print $2, $7 }'
}
aged=()
fresh=()
aged_p99=()
fresh_p99=()
for round in 1 2 3; do
  read -r puts p99 < <(cell "$CLUSTER" /soak/f256)
  aged+=("$puts")
  aged_p99+=("$p99")
  read -r puts p99 < <(cell "$FRESH_CLUSTER" /soak/fresh)
  fresh+=("$puts")
  fresh_p99+=("$p99")
  echo "round $round: aged ${aged[-1]} puts/s p99 ${aged_p99[-1]} ms, fresh ${fresh[-1]} puts/s p99 ${fresh_p99[-1]} ms"
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
awk -v a="$(median "${aged[@]}")" -v f="$(median "${fresh[@]}")" \
  -v ap="$(median "${aged_p99[@]}")" -v fp="$(median "${fresh_p99[@]}")" 'BEGIN {
    printf "medians: aged %d puts/s p99 %.2f ms, fresh %d puts/s p99 %.2f ms, aged/fresh puts/s %.2f\n", a, ap, f, fp, a / f
  }'
rss "end, aged"
rss "end, fresh" 3
for i in 0 1 2 3 4 5; do
  if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
    echo "node $((i % 3 + 1)) of the $( ((i < 3)) && echo aged || echo fresh) cluster died"
    exit 1
  fi
done
