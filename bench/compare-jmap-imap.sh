#!/usr/bin/env bash
# compare-jmap-imap.sh — the message list and a text search on one
# 100,000-message INBOX, three ways in one run (issue 14): JMAP on Tern
# (Email/query newest 50 + Email/get in one request), IMAP on Tern and IMAP
# on Dovecot (UID SORT (REVERSE ARRIVAL), then UID FETCH of the first 50
# with ENVELOPE and FLAGS). Also JMAP push (SMTP 250 to the EventSource
# state event). p50/p99 client-side on loopback, from `jmap-bench`
# (bench/src/jmap_bench.rs).
#
# - Tern: `tern serve` with SMTP, IMAP and HTTP on loopback; the INBOX
#   filled by `jmap-bench fill` (prose from /usr/share/doc, one minute
#   apart); measured once its search indexer has caught up (CPU quiet).
# - Dovecot (Debian's dovecot-core and dovecot-imapd, installed if missing,
#   the system service kept stopped): a private instance, IMAP only on
#   loopback, Maildir written by `jmap-bench maildir` with the same
#   messages and arrival times (file mtimes). Debian's Dovecot has no
#   full-text index configured, so its TEXT search reads every message:
#   it gets --dovecot-text searches, not --iterations.
#
# Usage: bench/compare-jmap-imap.sh [--messages N] [--iterations K]
#        [--dovecot-text K] [--keep]
# Environment: SKIP_BUILD=1 to use the binaries as built.
set -euo pipefail
MESSAGES=100000
ITERATIONS=200
DOVECOT_TEXT=10
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) MESSAGES=$2; shift 2 ;;
        --iterations) ITERATIONS=$2; shift 2 ;;
        --dovecot-text) DOVECOT_TEXT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 64 ;;
    esac
done
SCRIPT_NAME=compare-jmap-imap
START_TIMEOUT=60
SETTLE_TIMEOUT=600
STOP_TIMEOUT=15
VMAIL_ID=5000
say() { echo "== $*" >&2; }
die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TERN=$TARGET/release/tern
BENCH=$TARGET/release/jmap-bench
# shellcheck source=lib/dovecot-harness.sh
. "$ROOT/bench/lib/dovecot-harness.sh"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release -p tern -p tern-bench)
fi
install_dovecot imap
getent group dovecot >/dev/null || die "no dovecot group after the install"

HTTP_PORT=8932
SMTP_PORT=2932
TERN_IMAP_PORT=11146
DOVECOT_PORT=11145
PASSWORD=bench-password
USER_ADDR=big@bench.test

# --- Tern ----------------------------------------------------------------------

mkdir -p "$TERN_DIR"
write_tern_bench_conf "$TERN_DIR/tern.toml" "$TERN_DIR/data" "$SMTP_PORT" "$HTTP_PORT" "$TERN_IMAP_PORT"
tern() { "$TERN" --config "$TERN_DIR/tern.toml" "$@"; }
tern init >/dev/null
tern domain add bench.test >/dev/null
echo "$PASSWORD" | tern account add "$USER_ADDR" --password-stdin >/dev/null
say "Tern: filling $MESSAGES messages"
"$BENCH" fill --db "$TERN_DIR/data/tern.db" --account "$USER_ADDR" --messages "$MESSAGES"
RUST_LOG=warn "$TERN" --config "$TERN_DIR/tern.toml" serve 2>"$TERN_DIR/tern.log" &
TERN_PID=$!
wait_port "$HTTP_PORT" && wait_port "$TERN_IMAP_PORT" || { cat "$TERN_DIR/tern.log" >&2; die "tern did not start"; }
say "Tern: indexer idle after $(settle "$TERN_PID") s"

# --- Dovecot ---------------------------------------------------------------------

start_dovecot_maildir "$DOVECOT_PORT"

# --- measuring -------------------------------------------------------------------

say "measuring (Tern $(git -C "$ROOT" rev-parse --short HEAD), Dovecot $DV_VERSION, $(nproc) CPUs, $MESSAGES messages)"
echo "JMAP on Tern:"
"$BENCH" measure --http "127.0.0.1:$HTTP_PORT" --smtp "127.0.0.1:$SMTP_PORT" \
    --user "$USER_ADDR" --password "$PASSWORD" --iterations "$ITERATIONS"
echo "IMAP on Tern:"
"$BENCH" imap --imap "127.0.0.1:$TERN_IMAP_PORT" --user "$USER_ADDR" --password "$PASSWORD" \
    --iterations "$ITERATIONS" --text-iterations "$ITERATIONS"
echo "IMAP on Dovecot (no full-text index):"
"$BENCH" imap --imap "127.0.0.1:$DOVECOT_PORT" --user big --password "$PASSWORD" \
    --iterations "$ITERATIONS" --text-iterations "$DOVECOT_TEXT"
