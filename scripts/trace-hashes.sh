#!/usr/bin/env bash
# Prints `seed hash` for seeds FROM..TO of a walle-sim binary, sorted by seed: the fingerprint a
# behaviour-preserving change must keep. Extra arguments go to `walle-sim run` (for example
# `--duration 10 --no-high-load`). Two jobs by default (JOBS=N to change).
# Usage: scripts/trace-hashes.sh BIN FROM TO [run options...] > hashes.txt
#        diff before.txt after.txt   # empty: the change kept every seed's run
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 BIN FROM TO [run options...]" >&2
  exit 64
fi
bin=$1 from=$2 to=$3
shift 3
export bin
seq "$from" "$to" | xargs -P "${JOBS:-2}" -I{} sh -c \
  'h=$("$bin" run --seed {} --hash-only "$@" 2>/dev/null | tail -1); echo "{} ${h:-CRASHED}"' _ "$@" \
  | sort -n
