#!/usr/bin/env bash
# Builds the release binaries and runs the benchmark of the targets in docs/ALGORITHM.md on loopback
# (127.255.255.255 broadcast, fresh ports; nothing leaves the machine). About 2-3 minutes.
#
#   scripts/bench.sh                 # table on stdout (progress dots on stderr)
#   scripts/bench.sh --json          # one JSON document instead
#   scripts/bench.sh --reps 5 --only kill,dispatch   # any option of target/release/bench --help
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --quiet
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores;$(lscpu | sed -n 's/^Model name:\s*/ /p'); kernel $(uname -r)" >&2
exec target/release/bench "$@"
