#!/usr/bin/env bash
# jmap.sh — JMAP on a 100,000-message INBOX (issue 14): the message list
# (Email/query newest 50 + Email/get), the same with a text filter, and push
# (SMTP 250 to the EventSource state event), p50/p99 from `jmap-bench`
# (bench/src/jmap_bench.rs) against `tern serve` on loopback.
#
# Usage: bench/jmap.sh [--messages N] [--iterations K] [--keep]
# Environment: SKIP_BUILD=1 to use the binaries as built.
set -euo pipefail
MESSAGES=100000
ITERATIONS=200
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) MESSAGES=$2; shift 2 ;;
        --iterations) ITERATIONS=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 64 ;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TERN=$TARGET/release/tern
BENCH=$TARGET/release/jmap-bench
STOP_TIMEOUT=15
START_TIMEOUT=60
# shellcheck source=lib/common.sh
. "$ROOT/bench/lib/common.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tern-jmap.XXXXXX")
cleanup() {
    local rc=$?
    stop_tern
    if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release -p tern -p tern-bench)
fi
HTTP_PORT=8931
SMTP_PORT=2931
write_tern_bench_conf "$WORK/tern.toml" "$WORK/data" "$SMTP_PORT" "$HTTP_PORT"
tern() { "$TERN" --config "$WORK/tern.toml" "$@"; }
tern init >/dev/null
tern domain add bench.test >/dev/null
echo "bench-password" | tern account add big@bench.test --password-stdin >/dev/null
echo "== filling $MESSAGES messages" >&2
"$BENCH" fill --db "$WORK/data/tern.db" --account big@bench.test --messages "$MESSAGES"
RUST_LOG=warn "$TERN" --config "$WORK/tern.toml" serve 2>"$WORK/tern.log" &
TERN_PID=$!
wait_port "$HTTP_PORT" || { cat "$WORK/tern.log" >&2; exit 1; }
# The search index catches up in the background after the fill: wait until
# it stops growing, so text searches are measured on a full index.
last=-1
while :; do
    now=$(du -sb "$WORK/data" | cut -f1)
    [ "$now" = "$last" ] && break
    last=$now
    sleep 3
done
echo "== measuring (Tern $(git -C "$ROOT" rev-parse --short HEAD), $(nproc) CPUs)" >&2
"$BENCH" measure --http "127.0.0.1:$HTTP_PORT" --smtp "127.0.0.1:$SMTP_PORT" \
    --user big@bench.test --password bench-password --iterations "$ITERATIONS"
