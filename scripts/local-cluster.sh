#!/usr/bin/env bash
# A 3-node Walle cluster on this machine: builds walle-node and walle, starts three nodes on
# 127.0.0.1:7001-7003 with data under ./.walle-local (kept between runs), creates /demo,
# writes three entries, reads them back and shows the cluster status. The nodes keep running
# until Ctrl-C (or pass --stop to stop them right after the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product walle-node >/dev/null
swift build -c release --product walle >/dev/null
BIN=.build/release
DATA=.walle-local
export WALLE_CLUSTER="1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"
PIDS=()
stop() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT
for i in 1 2 3; do
  mkdir -p "$DATA/n$i"
  "$BIN/walle-node" --id "$i" --listen "127.0.0.1:700$i" --data-dir "$DATA/n$i" \
    --peers "$WALLE_CLUSTER" --bootstrap --metrics "127.0.0.1:910$i" 2>>"$DATA/n$i.log" &
  PIDS+=($!)
done
sleep 1
"$BIN/walle" create-stream /demo 2>/dev/null || echo "(/demo exists already)"
"$BIN/walle" put /demo "first entry" "second entry" "third entry"
"$BIN/walle" read /demo
"$BIN/walle" status
echo "logs: $DATA/n*.log   metrics: curl -s 127.0.0.1:9101/metrics"
if [[ "${1:-}" == "--stop" ]]; then exit 0; fi
echo "cluster running; WALLE_CLUSTER=$WALLE_CLUSTER; Ctrl-C stops it"
wait
