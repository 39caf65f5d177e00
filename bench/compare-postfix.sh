#!/usr/bin/env bash
# compare-postfix.sh — SMTP end-to-end delivery, Tern against Postfix (issue 3).
#
# Sends the same load with `smtp-load` (bench/src/smtp_load.rs) to `tern
# serve` and to a private Postfix on this machine, one after the other, and
# prints both rates, their ratio and both accept-latency p99s.
#
# - Tern runs `tern serve` with only SMTP on 127.0.0.1:2525 and a fresh data
#   directory. Its 250 comes after the message is durably in the mailbox, so
#   end to end = from the first connection until the last 250.
# - Postfix (Debian's package, installed if missing, without touching the
#   system instance: no main.cf in /etc/postfix, nothing on port 25) runs as a
#   private instance with its own config_directory, queue_directory and
#   data_directory under a temporary directory, smtpd on 127.0.0.1:2526, and
#   delivers through its `virtual` agent into one Maildir per recipient.
#   End to end = from the first connection until the last message file is in
#   a Maildir's new/ (polled every 50 ms). Its accept-only rate (until the
#   last 250, when the message is only queued) is printed for reference.
#
# Both get the same domain (bench.test) and the same ACCOUNTS accounts, one
# recipient per message, round robin. Each round measures Tern (fresh store)
# then Postfix (empty Maildirs); the summary is the median over the rounds,
# since a shared machine is noisy. Everything lives in one temporary
# directory, removed on exit with both servers stopped, also on failure.
# Traffic goes to 127.0.0.1 only. Needs root (apt-get, and Postfix's virtual
# agent switching to the mailbox owner).
#
# Usage: bench/compare-postfix.sh [--messages N] [--concurrency C] [--size BYTES]
#                                 [--accounts N] [--rounds R] [--keep]
#   defaults: 10000 messages, 20 sessions, 5120 bytes, 100 accounts, 3 rounds.
#   --keep leaves the temporary directory (logs, queues, Maildirs, store).
# Environment: TERN_PORT (2525), POSTFIX_PORT (2526), TERN_LOG (RUST_LOG of
#   tern serve, default info), SKIP_BUILD=1 to use the binaries as built.

set -euo pipefail

MESSAGES=10000
CONCURRENCY=20
SIZE=5120
ACCOUNTS=100
ROUNDS=3
KEEP=0
TERN_PORT=${TERN_PORT:-2525}
POSTFIX_PORT=${POSTFIX_PORT:-2526}
DOMAIN=bench.test
# The owner of Postfix's virtual mailboxes; no such user needs to exist.
# virtual(8) refuses uids below virtual_minimum_uid (100).
VMAIL_ID=5000
# Bounds on every wait, in seconds.
START_TIMEOUT=30
LOAD_TIMEOUT=900
DELIVERY_TIMEOUT=600
STOP_TIMEOUT=15

while [ $# -gt 0 ]; do
    case "$1" in
        --messages) MESSAGES=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --accounts) ACCOUNTS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TERN=$TARGET/release/tern
LOAD=$TARGET/release/smtp-load

say() { echo "== $*" >&2; }
die() { echo "compare-postfix: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs Postfix and runs its virtual agent"

# --- temporary directory and cleanup ------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tern-vs-postfix.XXXXXX")
[ -d "$WORK" ] || die "cannot make a temporary directory"
# Postfix's daemons (user postfix) and virtual (uid VMAIL_ID) must traverse it.
chmod 755 "$WORK"
PF=$WORK/postfix
PF_CONF=$PF/conf
TERN_DIR=$WORK/tern
PF_STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CHILD_PID" ]; then
        kill -TERM "$CHILD_PID" 2>/dev/null || true
        stop_pid "$CHILD_PID"
    fi
    stop_tern
    stop_postfix
    if [ "$rc" != 0 ]; then
        echo "compare-postfix: stopped (exit $rc); servers stopped" >&2
    fi
    if [ "$KEEP" = 1 ]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid, stop_tern, port_busy, wait_port, run_child, field.
# shellcheck source=lib/common.sh
. "$ROOT/bench/lib/common.sh"

for port in "$TERN_PORT" "$POSTFIX_PORT"; do
    if port_busy "$port"; then die "127.0.0.1:$port is already in use"; fi
done

# --- build ----------------------------------------------------------------------

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building Tern and smtp-load (release)"
    (cd "$ROOT" && cargo build --release -p tern -p tern-bench)
fi
[ -x "$TERN" ] && [ -x "$LOAD" ] || die "missing $TERN or $LOAD; build them first"

# --- recipients -----------------------------------------------------------------

RCPTS=$WORK/recipients.txt
for ((i = 1; i <= ACCOUNTS; i++)); do echo "user$i@$DOMAIN"; done >"$RCPTS"

LOAD_ARGS=(--messages "$MESSAGES" --concurrency "$CONCURRENCY" --size "$SIZE"
    --recipients "$RCPTS" --rcpts-per-message 1 --from "sender@load.example"
    --helo load.example --max-seconds "$LOAD_TIMEOUT" --json)

# --- Tern -----------------------------------------------------------------------

say "Tern: domain and $ACCOUNTS accounts in a template data directory"
mkdir -p "$TERN_DIR/data"
cat >"$TERN_DIR/tern.toml" <<EOF
hostname = "tern.bench.local"
data_dir = "$TERN_DIR/data"

[listen]
smtp = ["127.0.0.1:$TERN_PORT"]
submission = []
submissions = []
imap = []
imaps = []
pop3 = []
pop3s = []
http = []
https = []

[limits]
# All the load comes from 127.0.0.1; the default of 20 per address would
# refuse a run with more sessions.
max_connections_per_ip = 1000
EOF
tern() { "$TERN" --config "$TERN_DIR/tern.toml" "$@"; }
tern init >/dev/null
tern domain add "$DOMAIN" >/dev/null
while read -r addr; do
    # Argon2 makes each of these take a moment; not part of the measurement.
    echo "bench-password" | tern account add "$addr" --password-stdin >/dev/null
done <"$RCPTS"
mv "$TERN_DIR/data" "$TERN_DIR/template"

# One measurement of Tern on a fresh copy of the template: smtp-load's JSON,
# plus the number of messages in the store, into $1.
run_tern() {
    local result=$1 out stored="?"
    rm -rf "$TERN_DIR/data"
    cp -a "$TERN_DIR/template" "$TERN_DIR/data"
    RUST_LOG=${TERN_LOG:-info} "$TERN" --config "$TERN_DIR/tern.toml" serve 2>>"$TERN_DIR/tern.log" &
    TERN_PID=$!
    wait_port "$TERN_PORT" || { tail -20 "$TERN_DIR/tern.log" >&2; die "tern serve did not start"; }
    run_child "$WORK/load.out" "$LOAD" --server "127.0.0.1:$TERN_PORT" "${LOAD_ARGS[@]}"
    stop_tern
    out=$(cat "$WORK/load.out")
    [ -n "$out" ] || die "smtp-load against Tern printed nothing (exit $CHILD_RC)"
    if command -v python3 >/dev/null; then
        # One email row per delivered message.
        stored=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from email").fetchone()[0])' \
            "$TERN_DIR/data/tern.db" 2>/dev/null || echo "?")
    fi
    echo "${out%\}}, \"stored\": \"$stored\", \"exit\": $CHILD_RC}" >"$result"
}

# --- Postfix --------------------------------------------------------------------

install_postfix

say "Postfix $PF_VERSION: private instance in $PF"
mkdir -p "$PF_CONF" "$PF/queue" "$PF/data" "$PF/mail"
chown postfix: "$PF/data"
chown "$VMAIL_ID:$VMAIL_ID" "$PF/mail"
cat >"$PF_CONF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.local
mydomain = bench.local
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing leaves this instance: no relay, no DNS.
relayhost =
default_transport = error:this benchmark instance relays nothing
relay_transport = error:this benchmark instance relays nothing
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_recipient_maps =
biff = no
# The mailboxes: virtual(8) into Maildirs (a trailing / means Maildir).
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps = hash:$PF_CONF/vmailbox
virtual_mailbox_base = $PF/mail
virtual_uid_maps = static:$VMAIL_ID
virtual_gid_maps = static:$VMAIL_ID
virtual_minimum_uid = 100
# Postfix 3.4+ logs through postlogd to a file: there is no syslog here.
maillog_file_prefixes = $PF
maillog_file = $PF/maillog
EOF
# Debian's master.cf, chroot off (the queue is not under /var/spool), the
# smtpd service on 127.0.0.1:POSTFIX_PORT, postlog for maillog_file.
cat >"$PF_CONF/master.cf" <<EOF
# service    type  private unpriv chroot wakeup maxproc command
127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
pickup       unix  n       -      n      60     1       pickup
cleanup      unix  n       -      n      -      0       cleanup
qmgr         unix  n       -      n      300    1       qmgr
tlsmgr       unix  -       -      n      1000?  1       tlsmgr
rewrite      unix  -       -      n      -      -       trivial-rewrite
bounce       unix  -       -      n      -      0       bounce
defer        unix  -       -      n      -      0       bounce
trace        unix  -       -      n      -      0       bounce
verify       unix  -       -      n      -      1       verify
flush        unix  n       -      n      1000?  0       flush
proxymap     unix  -       -      n      -      -       proxymap
proxywrite   unix  -       -      n      -      1       proxymap
smtp         unix  -       -      n      -      -       smtp
relay        unix  -       -      n      -      -       smtp
showq        unix  n       -      n      -      -       showq
error        unix  -       -      n      -      -       error
retry        unix  -       -      n      -      -       error
discard      unix  -       -      n      -      -       discard
local        unix  -       n      n      -      -       local
virtual      unix  -       n      n      -      -       virtual
lmtp         unix  -       -      n      -      -       lmtp
anvil        unix  -       -      n      -      1       anvil
scache       unix  -       -      n      -      1       scache
postlog      unix-dgram n  -      n      -      1       postlogd
EOF
while read -r addr; do
    echo "$addr $DOMAIN/${addr%@*}/"
done <"$RCPTS" >"$PF_CONF/vmailbox"
postmap -c "$PF_CONF" "hash:$PF_CONF/vmailbox"
# Creates the queue's subdirectories and checks ownership and permissions.
postfix -c "$PF_CONF" check >&2

# One measurement of Postfix with empty Maildirs: smtp-load's JSON into $1.
run_postfix() {
    local result=$1 out
    [ -d "$PF/mail" ] && find "$PF/mail" -mindepth 1 -delete
    PF_STARTED=1
    postfix -c "$PF_CONF" start >/dev/null 2>&1 || { tail -20 "$PF/maillog" >&2; die "postfix did not start"; }
    wait_port "$POSTFIX_PORT" || { tail -20 "$PF/maillog" >&2; die "postfix smtpd is not listening"; }
    run_child "$WORK/load.out" "$LOAD" --server "127.0.0.1:$POSTFIX_PORT" "${LOAD_ARGS[@]}" \
        --wait-maildir "$PF/mail" --poll-ms 50 --wait-timeout "$DELIVERY_TIMEOUT"
    stop_postfix
    out=$(cat "$WORK/load.out")
    [ -n "$out" ] || die "smtp-load against Postfix printed nothing (exit $CHILD_RC)"
    echo "${out%\}}, \"exit\": $CHILD_RC}" >"$result"
}

# --- the rounds -----------------------------------------------------------------

# The median of the numbers on standard input, one a line.
median() {
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ROWS=$WORK/rounds.txt
: >"$ROWS"
FAILED=0
for ((round = 1; round <= ROUNDS; round++)); do
    say "round $round/$ROUNDS: Tern, $MESSAGES messages, $CONCURRENCY sessions, $SIZE bytes"
    run_tern "$WORK/tern-$round.json"
    say "round $round/$ROUNDS: Postfix, the same, then waiting for the Maildirs"
    run_postfix "$WORK/postfix-$round.json"
    T=$(cat "$WORK/tern-$round.json")
    P=$(cat "$WORK/postfix-$round.json")
    if [ "$(field "$T" exit)" != 0 ] || [ "$(field "$T" accepted)" != "$MESSAGES" ]; then FAILED=1; fi
    case "$(field "$T" stored)" in "\"$MESSAGES\"" | '"?"') ;; *) FAILED=1 ;; esac
    if [ "$(field "$P" exit)" != 0 ] || [ "$(field "$P" maildir_complete)" != true ]; then FAILED=1; fi
    ratio=$(awk -v t="$(field "$T" accept_rate)" -v p="$(field "$P" e2e_rate)" \
        'BEGIN { if (p > 0) printf "%.2f", t / p; else print "n/a" }')
    # ratio, Tern e2e, Postfix e2e, Postfix accept, Tern p50 p99, Postfix p50 p99, counts
    echo "$ratio $(field "$T" accept_rate) $(field "$P" e2e_rate) $(field "$P" accept_rate)" \
        "$(field "$T" latency_p50_ms) $(field "$T" latency_p99_ms)" \
        "$(field "$P" latency_p50_ms) $(field "$P" latency_p99_ms)" \
        "$(field "$T" accepted) $(field "$T" stored | tr -d '"') $(field "$P" maildir_found)" >>"$ROWS"
done

# --- report ---------------------------------------------------------------------

col() { awk -v c="$1" '{ print $c }' "$ROWS"; }
RATIO=$(col 1 | median)
T_E2E=$(col 2 | median)
P_E2E=$(col 3 | median)
P_ACC=$(col 4 | median)
T_P99=$(col 6 | median)
P_P99=$(col 8 | median)
MET=$(awk -v r="$RATIO" -v l="$T_P99" 'BEGIN { print (r != "n/a" && r >= 3 && l < 50) ? "met" : "not met" }')

echo
echo "SMTP end to end: $MESSAGES messages of $SIZE bytes, $CONCURRENCY sessions," \
    "$ACCOUNTS mailboxes, 1 recipient each; Tern $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')," \
    "Postfix $PF_VERSION"
echo
echo "| round | Tern e2e (msg/s) | Postfix e2e (msg/s) | Tern/Postfix | Postfix accept-only (msg/s) | Tern p50 / p99 (ms) | Postfix p50 / p99 (ms) |"
echo "|---|---|---|---|---|---|---|"
awk '{ printf "| %d | %.0f | %.0f | %sx | %.0f | %.1f / %.1f | %.1f / %.1f |\n", NR, $2, $3, $1, $4, $5, $6, $7, $8 }' "$ROWS"
printf '| median | %.0f | %.0f | %sx | %.0f | p99 %.1f | p99 %.1f |\n' "$T_E2E" "$P_E2E" "$RATIO" "$P_ACC" "$T_P99" "$P_P99"
echo
echo "delivered per round: Tern accepted / in the store, Postfix files in Maildirs:"
awk '{ printf "  %s / %s, %s\n", $9, $10, $11 }' "$ROWS"
echo "end to end, Tern/Postfix (median of rounds): ${RATIO}x"
if [ "$CONCURRENCY" = 20 ] && [ "$SIZE" = 5120 ] && [ "$ACCOUNTS" = 100 ] && [ "$MESSAGES" -ge 10000 ]; then
    echo "target (issue 3: >= 3x and Tern p99 < 50 ms): $MET"
else
    echo "target (issue 3: >= 3x and Tern p99 < 50 ms): $MET, but the target is for 20 sessions," \
        "5120 bytes, 100 mailboxes and a long enough run (>= 10000 messages), not this load"
fi

if [ "$FAILED" != 0 ]; then
    echo "compare-postfix: a round had failures or missing messages; raw results:" >&2
    cat "$WORK"/tern-*.json "$WORK"/postfix-*.json >&2
    exit 1
fi
