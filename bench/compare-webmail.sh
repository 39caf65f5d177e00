#!/usr/bin/env bash
# compare-webmail.sh — Tern's webmail and Roundcube (Debian's, on Dovecot)
# on one 100,000-message INBOX, in headless Chromium, in one run (issue
# 15): the first load of the logged-in inbox (bytes transferred,
# compressed, with the browser cache empty; time until the first row
# shows), opening messages one after another (click to body shown,
# p50/p95), and for Tern scrolling to the middle of the mailbox (how long,
# and how many message summaries it fetched). Measured by
# bench/webmail/measure.mjs with playwright-core (installed by the tests'
# npm install, crates/tern/tests/e2e/node) and Debian's chromium.
#
# - Tern: `tern serve` with HTTP on loopback, the INBOX filled by
#   `jmap-bench fill`; logged in through POST /webmail/login.
# - Roundcube 1.6 (Debian's roundcube-core, served by `php -S`, see
#   bench/lib/roundcube-harness.sh) on a private Dovecot holding the same
#   messages as a Maildir (`jmap-bench maildir`); logged in through its
#   login form. Skipped with --no-roundcube.
#
# Usage: bench/compare-webmail.sh [--messages N] [--opens K] [--no-roundcube] [--keep]
# Environment: SKIP_BUILD=1 to use the binaries as built.
set -euo pipefail
MESSAGES=100000
OPENS=50
ROUNDCUBE=1
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) MESSAGES=$2; shift 2 ;;
        --opens) OPENS=$2; shift 2 ;;
        --no-roundcube) ROUNDCUBE=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 64 ;;
    esac
done
SCRIPT_NAME=compare-webmail
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
MODULES=$ROOT/crates/tern/tests/e2e/node/node_modules
# shellcheck source=lib/dovecot-harness.sh
. "$ROOT/bench/lib/dovecot-harness.sh"
if [ "$ROUNDCUBE" = 1 ]; then
    # shellcheck source=lib/roundcube-harness.sh
    . "$ROOT/bench/lib/roundcube-harness.sh"
    stop_extra() { stop_roundcube; }
fi

[ -f "$MODULES/playwright-core/package.json" ] || die "no playwright-core: run the tests' npm install first (scripts/test.sh)"
[ -x /usr/bin/chromium ] || die "no /usr/bin/chromium (apt-get install chromium)"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release -p tern -p tern-bench)
fi

HTTP_PORT=8933
SMTP_PORT=2933
DOVECOT_PORT=11147
ROUNDCUBE_PORT=8934
PASSWORD=bench-password
USER_ADDR=big@bench.test

# --- Tern ----------------------------------------------------------------------

mkdir -p "$TERN_DIR"
write_tern_bench_conf "$TERN_DIR/tern.toml" "$TERN_DIR/data" "$SMTP_PORT" "$HTTP_PORT"
tern() { "$TERN" --config "$TERN_DIR/tern.toml" "$@"; }
tern init >/dev/null
tern domain add bench.test >/dev/null
echo "$PASSWORD" | tern account add "$USER_ADDR" --password-stdin >/dev/null
say "Tern: filling $MESSAGES messages"
"$BENCH" fill --db "$TERN_DIR/data/tern.db" --account "$USER_ADDR" --messages "$MESSAGES"
RUST_LOG=warn "$TERN" --config "$TERN_DIR/tern.toml" serve 2>"$TERN_DIR/tern.log" &
TERN_PID=$!
wait_port "$HTTP_PORT" || { cat "$TERN_DIR/tern.log" >&2; die "tern did not start"; }
say "Tern: indexer idle after $(settle "$TERN_PID") s"
TERN_COOKIE=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
    --data "{\"username\":\"$USER_ADDR\",\"password\":\"$PASSWORD\"}" \
    "http://127.0.0.1:$HTTP_PORT/webmail/login" | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p')
[ -n "$TERN_COOKIE" ] || die "no webmail session from Tern"

# --- Dovecot and Roundcube ---------------------------------------------------------

if [ "$ROUNDCUBE" = 1 ]; then
    install_dovecot imap
    install_roundcube
    start_dovecot_maildir "$DOVECOT_PORT"
    # Dovecot builds its index of a new Maildir on the first SELECT; done
    # here, so Roundcube is measured on a mailbox Dovecot knows (as Tern's
    # is: its store is its index).
    say "Dovecot: first SELECT (indexing) took $(python3 -c '
import imaplib, sys, time
t = time.time()
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); m.login("big", sys.argv[2]); m.select("INBOX")
m.fetch("1:*", "(FLAGS)")
print("%.1f s" % (time.time() - t))' "$DOVECOT_PORT" "$PASSWORD")"
    start_roundcube "$WORK/roundcube" "$ROUNDCUBE_PORT" "$DOVECOT_PORT"
    wait_port "$ROUNDCUBE_PORT" || die "roundcube did not start"
    RC_COOKIE=$(roundcube_login_cookie "http://127.0.0.1:$ROUNDCUBE_PORT" big "$PASSWORD")
    RC_VERSION=$(dpkg-query -W -f='${Version}' roundcube-core 2>/dev/null || echo "?")
fi

# --- measuring -------------------------------------------------------------------

say "measuring (Tern $(git -C "$ROOT" rev-parse --short HEAD), $(chromium --version 2>/dev/null | head -1), $(nproc) CPUs, $MESSAGES messages)"
echo "Tern webmail:"
node "$ROOT/bench/webmail/measure.mjs" "$MODULES" tern "http://127.0.0.1:$HTTP_PORT" "$TERN_COOKIE" "$OPENS"
if [ "$ROUNDCUBE" = 1 ]; then
    echo "Roundcube $RC_VERSION on Dovecot $DV_VERSION:"
    node "$ROOT/bench/webmail/measure.mjs" "$MODULES" roundcube "http://127.0.0.1:$ROUNDCUBE_PORT" "$RC_COOKIE" "$OPENS"
fi
