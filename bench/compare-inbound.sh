#!/usr/bin/env bash
# compare-inbound.sh — mail from the internet with every check on (issue 13):
# Tern checking SPF, DKIM, ARC, DMARC, a DNS block list, its spam rules and
# each recipient's Bayesian classifier, against Postfix delivering to Dovecot
# over LMTP with no checks at all.
#
# - The same load (`smtp-load`, bench/src/smtp_load.rs): MESSAGES distinct
#   messages of SIZE bytes from sender@load.example, each DKIM-signed
#   (Ed25519) by the generator, over CONCURRENCY sessions on port-25 style
#   plain SMTP, one recipient each, round robin over ACCOUNTS mailboxes.
# - `mx-dns` (bench/src/mx_dns.rs) answers Tern's lookups on 127.0.0.1:
#   load.example's SPF (127.0.0.0/8 -all), its DKIM key, DMARC p=reject;
#   the block list bl.bench answers NXDOMAIN (nobody listed).
# - Tern: a fresh store per round whose accounts each have a trained
#   classifier (5 spam, 5 ham, 60 known tokens), so Bayes really classifies.
#   End to end = first connection to the last 250 (durably in the mailbox).
# - Postfix (private instance, 127.0.0.1:POSTFIX_PORT) hands each message to
#   a private Dovecot's LMTP, which writes Maildirs; end to end = until the
#   last message file is in a Maildir's new/.
#
# With --costs, Tern alone is loaded once per set of checks (none, +SPF,
# +DKIM, +ARC/DMARC, +spam rules and DNSBL, +Bayes) and its CPU time per
# message is printed for each, with what each step added.
#
# Usage: bench/compare-inbound.sh [--messages N] [--concurrency C] [--size BYTES]
#                                 [--accounts N] [--rounds R] [--costs] [--keep]
#   defaults: 10000 messages, 20 sessions, 5120 bytes, 100 accounts, 3 rounds.
# Environment: TERN_PORT (2525), POSTFIX_PORT (2526), DNS_PORT (5354),
#   SKIP_BUILD=1 to use the binaries as built. Needs root (apt-get; Postfix
#   and Dovecot switch to the mailbox owner).

set -euo pipefail

MESSAGES=10000
CONCURRENCY=20
SIZE=5120
ACCOUNTS=100
ROUNDS=3
COSTS=0
KEEP=0
TERN_PORT=${TERN_PORT:-2525}
POSTFIX_PORT=${POSTFIX_PORT:-2526}
DNS_PORT=${DNS_PORT:-5354}
DOMAIN=bench.test
VMAIL_ID=5000
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
        --costs) COSTS=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TERN=$TARGET/release/tern
LOAD=$TARGET/release/smtp-load
MXDNS=$TARGET/release/mx-dns

say() { echo "== $*" >&2; }
die() { echo "compare-inbound: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs Postfix and Dovecot"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tern-inbound.XXXXXX")
chmod 755 "$WORK"
PF=$WORK/postfix
PF_CONF=$PF/conf
DV=$WORK/dovecot
TERN_DIR=$WORK/tern
PF_STARTED=0
DV_PID=""
DNS_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CHILD_PID" ]; then kill -TERM "$CHILD_PID" 2>/dev/null || true; stop_pid "$CHILD_PID"; fi
    stop_tern
    stop_postfix
    if [ -n "$DV_PID" ]; then kill -TERM "$DV_PID" 2>/dev/null || true; stop_pid "$DV_PID"; fi
    if [ -n "$DNS_PID" ]; then kill -TERM "$DNS_PID" 2>/dev/null || true; stop_pid "$DNS_PID"; fi
    [ "$rc" != 0 ] && echo "compare-inbound: stopped (exit $rc); servers stopped" >&2
    if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=lib/common.sh
. "$ROOT/bench/lib/common.sh"

for port in "$TERN_PORT" "$POSTFIX_PORT"; do
    if port_busy "$port"; then die "127.0.0.1:$port is already in use"; fi
done

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building Tern, smtp-load and mx-dns (release)"
    (cd "$ROOT" && cargo build --release -p tern -p tern-bench)
fi
[ -x "$TERN" ] && [ -x "$LOAD" ] && [ -x "$MXDNS" ] || die "missing binaries; build them first"

# --- the sender's DNS: SPF, DKIM, DMARC -------------------------------------------

RCPTS=$WORK/recipients.txt
for ((i = 1; i <= ACCOUNTS; i++)); do echo "user$i@$DOMAIN"; done >"$RCPTS"
FROM=sender@load.example
"$LOAD" --server 127.0.0.1:1 --recipients "$RCPTS" --from "$FROM" \
    --dkim-key "$WORK/dkim.key" --dkim-keygen >"$WORK/txt"
printf 'load.example\tv=spf1 ip4:127.0.0.0/8 -all\n_dmarc.load.example\tv=DMARC1; p=reject\n' >>"$WORK/txt"
"$MXDNS" --listen "127.0.0.1:$DNS_PORT" --domains 1 --txt-file "$WORK/txt" >"$WORK/mx-dns.out" &
DNS_PID=$!
for ((i = 0; i < 100; i++)); do grep -q ready "$WORK/mx-dns.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/mx-dns.out" || die "mx-dns did not start"

LOAD_ARGS=(--messages "$MESSAGES" --concurrency "$CONCURRENCY" --size "$SIZE"
    --recipients "$RCPTS" --rcpts-per-message 1 --from "$FROM"
    --helo load.example --max-seconds "$LOAD_TIMEOUT" --json
    --dkim-key "$WORK/dkim.key")

# --- Tern -------------------------------------------------------------------------

# Tern's configuration with the checks named in $1 (spf dkim arc dmarc rules bayes).
tern_config() {
    local on=" $1 " onoff
    onoff() { case "$on" in *" $1 "*) echo on ;; *) echo off ;; esac; }
    local rules bayes
    rules=$(case "$on" in *" rules "*) echo true ;; *) echo false ;; esac)
    bayes=$(case "$on" in *" bayes "*) echo true ;; *) echo false ;; esac)
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
max_connections_per_ip = 1000

[dns]
servers = ["127.0.0.1:$DNS_PORT"]

[inbound]
spf = "$(onoff spf)"
dkim = "$(onoff dkim)"
arc = "$(onoff arc)"
dmarc = "$(onoff dmarc)"

[spam]
enabled = $rules
bayes = $bayes
dnsbl = ["bl.bench"]
EOF
}

say "Tern: domain, $ACCOUNTS accounts with trained classifiers, in a template"
mkdir -p "$TERN_DIR/data"
tern_config "spf dkim arc dmarc rules bayes"
tern() { "$TERN" --config "$TERN_DIR/tern.toml" "$@"; }
tern init >/dev/null
tern domain add "$DOMAIN" >/dev/null
while read -r addr; do
    echo "bench-password" | tern account add "$addr" --password-stdin >/dev/null
done <"$RCPTS"
# Each account's classifier as after 5 spam and 5 ham moves: the load's
# words known, some spammy, most hammy (FNV-1a 64, as Tern hashes tokens).
python3 - "$TERN_DIR/data/tern.db" <<'EOF'
import sqlite3, sys
def fnv(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h - (1 << 64) if h >= 1 << 63 else h
words = ("mail server delivers message every mailbox domain quickly safely after checking "
         "envelope with care report meeting tomorrow budget invoice attached please review "
         "draft schedule project update thanks regards question answer weekly summary release "
         "notes customer order shipping status account password reset calendar invite agenda "
         "minutes follow this thread before friday lunch office travel plans holiday team").split()
db = sqlite3.connect(sys.argv[1])
accounts = [r[0] for r in db.execute("SELECT id FROM account")]
for a in accounts:
    for e in range(10):
        db.execute("INSERT INTO bayes_trained VALUES (?, ?, ?, 0, strftime('%s','now'))", (a, -1 - e, e < 5))
    for i, w in enumerate(words):
        spam, ham = (4, 1) if i % 7 == 0 else (1, 4)
        db.execute("INSERT INTO bayes_token VALUES (?, ?, ?, ?)", (a, fnv(w), spam, ham))
db.commit()
EOF
mv "$TERN_DIR/data" "$TERN_DIR/template"

# One load against Tern with the checks of $2: smtp-load's JSON plus the
# server's CPU seconds into $1.
run_tern() {
    local result=$1 out before after
    tern_config "$2"
    rm -rf "$TERN_DIR/data"
    cp -a "$TERN_DIR/template" "$TERN_DIR/data"
    RUST_LOG=warn "$TERN" --config "$TERN_DIR/tern.toml" serve 2>>"$TERN_DIR/tern.log" &
    TERN_PID=$!
    wait_port "$TERN_PORT" || { tail -20 "$TERN_DIR/tern.log" >&2; die "tern serve did not start"; }
    before=$(cpu_ticks "$TERN_PID")
    run_child "$WORK/load.out" "$LOAD" --server "127.0.0.1:$TERN_PORT" "${LOAD_ARGS[@]}"
    after=$(cpu_ticks "$TERN_PID")
    stop_tern
    out=$(cat "$WORK/load.out")
    [ -n "$out" ] || die "smtp-load against Tern printed nothing (exit $CHILD_RC)"
    echo "${out%\}}, \"cpu_s\": $(awk -v t=$((after - before)) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }'), \"exit\": $CHILD_RC}" >"$result"
}

ALL="spf dkim arc dmarc rules bayes"

if [ "$COSTS" = 1 ]; then
    echo
    echo "Tern CPU per message by the checks on ($MESSAGES messages of $SIZE bytes, $CONCURRENCY sessions):"
    echo
    echo "| checks on | msg/s | CPU ms/msg | added by the last step (ms) | p99 (ms) |"
    echo "|---|---|---|---|---|"
    prev=""
    for set in "" "spf" "spf dkim" "spf dkim arc dmarc" "spf dkim arc dmarc rules" "$ALL"; do
        run_tern "$WORK/cost.json" "$set"
        R=$(cat "$WORK/cost.json")
        [ "$(field "$R" accepted)" = "$MESSAGES" ] || { cat "$WORK/cost.json" >&2; die "messages refused with checks: $set"; }
        ms=$(awk -v c="$(field "$R" cpu_s)" -v n="$MESSAGES" 'BEGIN { printf "%.3f", c * 1000 / n }')
        added=$( [ -n "$prev" ] && awk -v a="$ms" -v b="$prev" 'BEGIN { printf "%+.3f", a - b }' || echo "—")
        printf '| %s | %.0f | %s | %s | %.1f |\n' "${set:-none}" "$(field "$R" accept_rate)" "$ms" "$added" "$(field "$R" latency_p99_ms)"
        prev=$ms
    done
    exit 0
fi

# --- Dovecot (LMTP into Maildirs) and Postfix -------------------------------------

install_postfix
if ! [ -x /usr/sbin/dovecot ] || ! [ -x /usr/lib/dovecot/lmtp ]; then
    say "installing Dovecot's LMTP server from Debian (service not started)"
    POLICY=/usr/sbin/policy-rc.d
    [ -e "$POLICY" ] && cp -a "$POLICY" "$WORK/policy.orig"
    printf '#!/bin/sh\nexit 101\n' >"$POLICY"; chmod 755 "$POLICY"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dovecot-core dovecot-lmtpd >"$WORK/apt.log" 2>&1 \
        || { apt-get update -q >>"$WORK/apt.log" 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dovecot-core dovecot-lmtpd >>"$WORK/apt.log" 2>&1; } \
        || die "cannot install dovecot-lmtpd"
    rm -f "$POLICY"; [ -e "$WORK/policy.orig" ] && mv "$WORK/policy.orig" "$POLICY"
fi
DV_VERSION=$(dovecot --version | awk '{ print $1 }')

mkdir -p "$DV/run" "$DV/state" "$PF_CONF" "$PF/queue" "$PF/data" "$PF/mail"
chown postfix: "$PF/data"
chown "$VMAIL_ID:$VMAIL_ID" "$PF/mail"
while read -r addr; do
    echo "$addr::$VMAIL_ID:$VMAIL_ID::$PF/mail/${addr%@*}::"
done <"$RCPTS" >"$DV/users"
cat >"$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
protocols = lmtp
ssl = no
passdb {
  driver = passwd-file
  args = $DV/users
}
userdb {
  driver = passwd-file
  args = $DV/users
}
mail_location = maildir:~/
mail_fsync = optimized
first_valid_uid = 100
service lmtp {
  unix_listener $DV/lmtp {
    mode = 0666
  }
}
EOF

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
relayhost =
default_transport = error:this benchmark instance relays nothing
relay_transport = error:this benchmark instance relays nothing
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_recipient_maps =
biff = no
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps = hash:$PF_CONF/vmailbox
virtual_transport = lmtp:unix:$DV/lmtp
maillog_file_prefixes = $PF
maillog_file = $PF/maillog
EOF
cat >"$PF_CONF/master.cf" <<EOF
127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
pickup       unix  n       -      n      60     1       pickup
cleanup      unix  n       -      n      -      0       cleanup
qmgr         unix  n       -      n      300    1       qmgr
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
lmtp         unix  -       -      n      -      -       lmtp
anvil        unix  -       -      n      -      1       anvil
scache       unix  -       -      n      -      1       scache
postlog      unix-dgram n  -      n      -      1       postlogd
EOF
while read -r addr; do echo "$addr OK"; done <"$RCPTS" >"$PF_CONF/vmailbox"
postmap -c "$PF_CONF" "hash:$PF_CONF/vmailbox"
postfix -c "$PF_CONF" check >&2

run_postfix() {
    local result=$1 out
    find "$PF/mail" -mindepth 1 -delete
    dovecot -F -c "$DV/dovecot.conf" 2>>"$DV/stderr" &
    DV_PID=$!
    for ((i = 0; i < 100; i++)); do [ -S "$DV/lmtp" ] && break; sleep 0.1; done
    [ -S "$DV/lmtp" ] || { cat "$DV/stderr" "$DV/dovecot.log" >&2 2>/dev/null; die "dovecot lmtp did not start"; }
    PF_STARTED=1
    postfix -c "$PF_CONF" start >/dev/null 2>&1 || { tail -20 "$PF/maillog" >&2; die "postfix did not start"; }
    wait_port "$POSTFIX_PORT" || die "postfix smtpd is not listening"
    run_child "$WORK/load.out" "$LOAD" --server "127.0.0.1:$POSTFIX_PORT" "${LOAD_ARGS[@]}" \
        --wait-maildir "$PF/mail" --poll-ms 50 --wait-timeout "$DELIVERY_TIMEOUT"
    stop_postfix
    kill -TERM "$DV_PID" 2>/dev/null || true; stop_pid "$DV_PID"; DV_PID=""
    out=$(cat "$WORK/load.out")
    [ -n "$out" ] || die "smtp-load against Postfix printed nothing (exit $CHILD_RC)"
    echo "${out%\}}, \"exit\": $CHILD_RC}" >"$result"
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
        else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ROWS=$WORK/rounds.txt
: >"$ROWS"
FAILED=0
for ((round = 1; round <= ROUNDS; round++)); do
    say "round $round/$ROUNDS: Tern with every check"
    run_tern "$WORK/tern-$round.json" "$ALL"
    say "round $round/$ROUNDS: Postfix to Dovecot LMTP, no checks"
    run_postfix "$WORK/postfix-$round.json"
    T=$(cat "$WORK/tern-$round.json")
    P=$(cat "$WORK/postfix-$round.json")
    if [ "$(field "$T" exit)" != 0 ] || [ "$(field "$T" accepted)" != "$MESSAGES" ]; then FAILED=1; fi
    if [ "$(field "$P" exit)" != 0 ] || [ "$(field "$P" maildir_complete)" != true ]; then FAILED=1; fi
    ratio=$(awk -v t="$(field "$T" accept_rate)" -v p="$(field "$P" e2e_rate)" 'BEGIN { if (p > 0) printf "%.2f", t / p; else print "n/a" }')
    echo "$ratio $(field "$T" accept_rate) $(field "$P" e2e_rate) $(field "$T" latency_p50_ms) $(field "$T" latency_p99_ms)" \
        "$(field "$P" latency_p50_ms) $(field "$P" latency_p99_ms) $(field "$T" cpu_s)" >>"$ROWS"
done

col() { awk -v c="$1" '{ print $c }' "$ROWS"; }
RATIO=$(col 1 | median)
T_P99=$(col 5 | median)
MET=$(awk -v r="$RATIO" -v l="$T_P99" 'BEGIN { print (r != "n/a" && r >= 3 && l < 100) ? "met" : "not met" }')
echo
echo "Inbound with every check: $MESSAGES DKIM-signed messages of $SIZE bytes, $CONCURRENCY sessions," \
    "$ACCOUNTS mailboxes; Tern $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')," \
    "Postfix $PF_VERSION + Dovecot $DV_VERSION (LMTP)"
echo
echo "| round | Tern, all checks (msg/s) | Postfix→Dovecot, none (msg/s) | Tern/Postfix | Tern p50 / p99 (ms) | Postfix p50 / p99 (ms) | Tern CPU ms/msg |"
echo "|---|---|---|---|---|---|---|"
awk -v n="$MESSAGES" '{ printf "| %d | %.0f | %.0f | %sx | %.1f / %.1f | %.1f / %.1f | %.3f |\n", NR, $2, $3, $1, $4, $5, $6, $7, $8 * 1000 / n }' "$ROWS"
printf '| median | %.0f | %.0f | %sx | p99 %.1f | | |\n' "$(col 2 | median)" "$(col 3 | median)" "$RATIO" "$T_P99"
echo
echo "target (issue 13: >= 3x and Tern p99 < 100 ms): $MET"
if [ "$FAILED" != 0 ]; then
    echo "compare-inbound: a round had failures or missing messages; raw results:" >&2
    cat "$WORK"/tern-*.json "$WORK"/postfix-*.json >&2
    exit 1
fi
