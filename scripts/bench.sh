#!/usr/bin/env bash
# Builds the release binaries and runs the benchmark of the targets in docs/ALGORITHM.md on loopback
# (127.255.255.255 broadcast, fresh ports; nothing leaves the machine) and, as root, in the
# namespace lab (silent, sigterm and the keepalived comparison). About 10 minutes as root.
#
#   scripts/bench.sh                 # table on stdout (progress on stderr)
#   scripts/bench.sh --json          # one JSON document instead
#   scripts/bench.sh --reps 5 --only kill,dispatch   # any option of target/release/bench --help
#   scripts/bench.sh --only big --big-nodes 25,50,100,250 --big-idle-secs 60
#
# Setup: as root, when the run includes the keepalived rows and `keepalived` is missing, installs
# the Debian package (apt-get install --no-install-recommends keepalived; its service is not
# started by the bench, which runs its own keepalived processes inside the lab's namespaces only).
set -euo pipefail
cd "$(dirname "$0")/.."

# Does this run include the keepalived rows? (all rows unless --only names others; not for --help)
wants_keepalived=1
prev=""
for a in "$@"; do
    case "$a" in
        -h | --help) wants_keepalived=0 ;;
    esac
    if [[ "$prev" == "--only" && ",$a," != *,keepalived,* ]]; then
        wants_keepalived=0
    fi
    prev="$a"
done

if [[ $wants_keepalived == 1 ]] && ! command -v keepalived >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "# installing keepalived (Debian package) for the comparison rows" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends keepalived >&2
    else
        echo "# keepalived is not installed and this is not root with apt-get: the keepalived" \
            "rows will be skipped (as root: apt-get install keepalived)" >&2
    fi
fi

cargo build --release --workspace --bins --quiet
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores;$(lscpu | sed -n 's/^Model name:\s*/ /p'); kernel $(uname -r)" >&2
exec target/release/bench "$@"
