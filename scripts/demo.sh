#!/usr/bin/env bash
# A local demo cluster: three quorumd nodes on loopback (alice, bob, carol), with hooks that
# print role changes. Ctrl+C stops the demo: each node dispatches (hands over, runs its hook).
#
#   scripts/demo.sh            # build and start; then try the commands it prints
#
# The nodes' sockets, state and hook live in a temporary directory removed at exit; their
# logs are shown here (prefixed with the node's name) and kept in a log directory named at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: building quorumd and quorumctl (the first build takes about a minute)..." >&2
cargo build --workspace --bins
bin=$PWD/target/debug
dir=$(mktemp -d /tmp/quorumd-demo.XXXXXX)
logs=$(mktemp -d /tmp/quorumd-demo-logs.XXXXXX)
bport=${DEMO_BROADCAST_PORT:-45595}
cat > "$dir/hook.sh" <<'HOOK'
#!/bin/sh
echo "hook: $QUORUM_NODE is now $QUORUM_ROLE (was $QUORUM_PREVIOUS_ROLE), master ${QUORUM_MASTER:-none}, epoch $QUORUM_EPOCH" >&2
HOOK
chmod 755 "$dir/hook.sh"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo "demo: stopping (each node dispatches)..." >&2
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    # A dispatch runs the hook (seconds at most); give up waiting after 40 s.
    for _ in $(seq 1 400); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  sleep 0.2 # let the log prefixers flush
  rm -rf "$dir"
  echo "demo stopped; the nodes' logs are in $logs" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port=46080
echo "demo: starting alice, bob and carol on 127.0.0.1:$port-$((port + 2))..." >&2
for name in alice bob carol; do
  # Loopback only: 127.255.255.255 reaches every local listener and never leaves the machine.
  # setsid: Ctrl+C reaches this script only, which then dispatches every node.
  setsid "$bin/quorumd" 127.0.0.1 "$port" 127.255.255.255 "$bport" -n "$name" \
    --socket "$dir/$name.sock" --state-dir "$dir/state" \
    -m "$dir/hook.sh" -s "$dir/hook.sh" </dev/null \
    2> >(tee "$logs/$name.log" | sed -u "s/^/[$name] /" >&2) &
  pids+=($!)
  port=$((port + 1))
  sleep 0.3 # alice starts first: with the default strategy (age) she is the master
done
# Until alice is master (a cold start takes about a second).
for _ in $(seq 1 100); do
  role=$("$bin/quorumctl" --socket "$dir/alice.sock" role 2>/dev/null || true)
  [ "$role" = master ] && break
  sleep 0.1
done
sleep 1 # and until bob counts everyone
"$bin/quorumctl" --socket "$dir/bob.sock" status
cat <<MSG

Three nodes run on loopback. Try, in another terminal:
  $bin/quorumctl --socket $dir/bob.sock status
  $bin/quorumctl --socket $dir/bob.sock follow
  $bin/quorumctl --socket $dir/alice.sock dispatch      # alice leaves; bob takes over
  kill -9 ${pids[1]}                                     # bob crashes; carol takes over at once
Ctrl+C ends the demo.
MSG
wait "${pids[@]}" 2>/dev/null || true
