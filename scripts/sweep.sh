#!/usr/bin/env bash
# The main job: set up, build the simulator in release mode, sweep seeds.
# Usage: scripts/sweep.sh [walle-sim sweep options], default --seeds 1000 --require-coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product walle-sim -Xswiftc -cross-module-optimization
if [ $# -eq 0 ]; then set -- --seeds 1000 --require-coverage; fi
exec .build/release/walle-sim sweep "$@"
