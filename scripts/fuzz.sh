#!/bin/sh
# Runs every cargo-fuzz target for SECS seconds each (default 60), niced, starting from the
# committed seeds in fuzz/seeds/<target>. Grown corpora (fuzz/corpus) and crashes
# (fuzz/artifacts) stay local: copy a crash into fuzz/seeds/<target>/ to keep it as a
# regression test (`cargo test` replays the seeds).
#
#   scripts/fuzz.sh [SECS] [TARGET...]
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=${*:-"datagram link control_request state_file duration config election"}
for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    echo "== $t ($secs s)"
    nice cargo +nightly fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$secs" -max_len=4096 -rss_limit_mb=1024 2>&1 |
        grep -E '^(#[0-9]+.*DONE|Done|==[0-9]+==|SUMMARY|.*panicked)' || true
done
