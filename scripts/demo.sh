#!/usr/bin/env bash
# A local demo cluster: three quorumd nodes on loopback (alice, bob, carol), with hooks that
# print role changes. Ctrl+C stops the demo (each node dispatches).
#
#   scripts/demo.sh            # build and start; then try the commands it prints
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins --quiet
bin=$PWD/target/debug
dir=$(mktemp -d /tmp/quorumd-demo.XXXXXX)
bport=${DEMO_BROADCAST_PORT:-45595}
cat > "$dir/hook.sh" <<'HOOK'
#!/bin/sh
echo "hook: $QUORUM_NODE is now $QUORUM_ROLE (was $QUORUM_PREVIOUS_ROLE), master ${QUORUM_MASTER:-none}, epoch $QUORUM_EPOCH" >&2
HOOK
chmod 755 "$dir/hook.sh"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo stopped; logs were in $dir"
}
trap cleanup EXIT INT TERM
port=46080
for name in alice bob carol; do
  # Loopback only: 127.255.255.255 reaches every local listener and never leaves the machine.
  "$bin/quorumd" 127.0.0.1 "$port" 127.255.255.255 "$bport" -n "$name" \
    --socket "$dir/$name.sock" --state-dir "$dir/state" \
    -m "$dir/hook.sh" -s "$dir/hook.sh" 2> >(sed "s/^/[$name] /" >&2) &
  pids+=($!)
  port=$((port + 1))
  sleep 0.3
done
sleep 1.5
"$bin/quorumctl" --socket "$dir/bob.sock" status
cat <<MSG

Three nodes run on loopback. Try, in another terminal:
  $bin/quorumctl --socket $dir/bob.sock status
  $bin/quorumctl --socket $dir/bob.sock follow
  $bin/quorumctl --socket $dir/alice.sock dispatch      # alice leaves; bob takes over
  kill -9 ${pids[1]}                                     # bob crashes; carol takes over at once
Ctrl+C ends the demo.
MSG
wait
