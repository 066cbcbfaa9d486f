#!/usr/bin/env bash
# A rolling start on loopback: N quorumd nodes started one after another, GAP seconds apart
# (as a deploy script starting one host after the other would), each with a hook that logs
# its role changes. Four seconds after the last start it prints what the first, middle and
# last node report, then every master and inquorate hook run (seconds from the first start)
# and the hook count, and stops them all (SIGINT). Used for BENCHMARKS.md, "A rolling start".
#
#   scripts/rolling-start.sh [N] [GAP]        # default: 30 nodes, 0.5 s apart
#
# Uses the release build (cargo build --release --workspace --bins first), QUORUMD_BIN to
# use another directory; ports 46000+ (TCP) and 46999 (broadcast, on 127.255.255.255).
# Sockets, state, logs and the hook log live in a temporary directory named at the end (under
# $TMPDIR if set: TMPDIR=/dev/shm puts the state files on tmpfs).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-30}
gap=${2:-0.5}
bin=${QUORUMD_BIN:-$PWD/target/release}
[ -x "$bin/quorumd" ] && [ -x "$bin/quorumctl" ] || {
  echo "rolling-start: $bin/quorumd not built: cargo build --release --workspace --bins" >&2
  exit 2
}
dir=$(mktemp -d "${TMPDIR:-/tmp}/quorumd-rolling.XXXXXX")
mkdir -p "$dir/state"
cat > "$dir/hook.sh" <<HOOK
#!/bin/sh
echo "\$(date +%s.%N) \$QUORUM_NODE \$QUORUM_ROLE \$QUORUM_EVENT \${QUORUM_MASTER:-none} \$QUORUM_EPOCH" >> "$dir/hooks.log"
HOOK
chmod 755 "$dir/hook.sh"
touch "$dir/hooks.log"
pids=()
stop() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop EXIT INT TERM
t0=$(date +%s.%N)
for i in $(seq 0 $((n - 1))); do
  name=$(printf n%03d "$i")
  "$bin/quorumd" 127.0.0.1 $((46000 + i)) 127.255.255.255 46999 -n "$name" \
    --socket "$dir/$name.sock" --state-dir "$dir/state" --notify "$dir/hook.sh" \
    > "$dir/$name.log" 2>&1 &
  pids+=($!)
  if [ "$i" -lt $((n - 1)) ]; then sleep "$gap"; fi
done
sleep 4
for i in 0 $((n / 2)) $((n - 1)); do
  name=$(printf n%03d "$i")
  echo "$name: $("$bin/quorumctl" --socket "$dir/$name.sock" role 2>&1 || true)"
done
stop
awk -v t0="$t0" '$3 == "master" || $3 == "inquorate" {
  printf "%6.2f s  %s %s (master %s, epoch %s)\n", $1 - t0, $2, $3, $5, $6 }' "$dir/hooks.log"
echo "hook runs: $(wc -l < "$dir/hooks.log") ($(awk '$3 == "master"' "$dir/hooks.log" | wc -l) master, $(awk '$3 == "inquorate"' "$dir/hooks.log" | wc -l) inquorate); last start at $(echo "($n - 1) * $gap" | bc) s; files in $dir"
