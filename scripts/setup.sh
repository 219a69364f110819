#!/usr/bin/env bash
# Installs what a fresh machine of this project's kind lacks. Safe to run again.
set -euo pipefail

if ! command -v swift >/dev/null 2>&1; then
  echo "swift is not on PATH (expected Swift 6.3 at /opt/swift)" >&2
  exit 1
fi

# WiredTiger backs the production node's storage (found through pkg-config).
if ! pkg-config --exists wiredtiger 2>/dev/null; then
  echo "installing libwiredtiger-dev"
  apt-get update -qq
  apt-get install -y -qq libwiredtiger-dev pkg-config
fi
