#!/usr/bin/env bash
# compare-postfix-relay.sh — outbound relay throughput, Tern against Postfix
# (issue 12).
#
# The same load (`smtp-load`, bench/src/smtp_load.rs) is relayed by `tern
# serve` and by a private Postfix to DOMAINS destinations d1.bench …
# dN.bench, each an SMTP sink on its own loopback address (Postfix's
# `smtp-sink`, dumping every message to a file). Measured from the first
# submission until the sinks hold every message (files counted every 50 ms).
#
# - Tern: SMTP on 127.0.0.1:TERN_PORT with 127.0.0.0/8 as relay network, MX
#   routing through `mx-dns` (bench/src/mx_dns.rs) on 127.0.0.1:DNS_PORT,
#   `[outbound] mx_port` = SINK_PORT, and DKIM signing on: the sender's
#   domain is local with Ed25519 and RSA keys, so every message leaves with
#   two signatures.
# - Postfix (Debian's package, installed if missing; a private instance as
#   in compare-postfix.sh): smtpd on 127.0.0.1:POSTFIX_PORT relaying for
#   127.0.0.0/8, transport_maps sending dI.bench to [127.0.1.I]:SINK_PORT
#   (no DNS), no TLS, no DKIM.
#
# With --dead N, N extra messages for dead.bench are queued first on each
# server (its MX address accepts no connection), then the load runs: the
# figure should stay within 10% of the run without them.
#
# Each round measures Tern (fresh data directory) then Postfix (empty
# queue); the summary is the median over the rounds. Everything lives in one
# temporary directory, removed on exit with every process stopped. Needs root
# (apt-get, smtp-sink's user switch). Traffic stays on loopback.
#
# Usage: bench/compare-postfix-relay.sh [--messages N] [--concurrency C]
#          [--size BYTES] [--domains D] [--rounds R] [--dead N] [--keep]
#   defaults: 10000 messages, 20 sessions, 5120 bytes, 4 domains, 3 rounds.
# Environment: TERN_PORT (2525), POSTFIX_PORT (2526), SINK_PORT (2600),
#   DNS_PORT (5353), TERN_LOG (info), SKIP_BUILD=1 to use the binaries as built,
#   PERF_OUT=FILE to record a `perf record -g` profile of tern during its load.
#   PERF_STAT_OUT=FILE to append `perf stat` counts of tern during each load
#   (commits, WAL page writes, context switches; PERF_STAT_EVENTS overrides).
#   TERN_BIN=PATH to run another build of tern (A/B of two builds).
#   TERN_OUTBOUND_EXTRA='key = value' lines added to Tern's [outbound] (A/B runs).

set -euo pipefail

MESSAGES=10000
CONCURRENCY=20
SIZE=5120
DOMAINS=4
ROUNDS=3
DEAD=0
KEEP=0
TERN_PORT=${TERN_PORT:-2525}
POSTFIX_PORT=${POSTFIX_PORT:-2526}
SINK_PORT=${SINK_PORT:-2600}
DNS_PORT=${DNS_PORT:-5353}
PERF_STAT_EVENTS=${PERF_STAT_EVENTS:-syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_pwrite64,context-switches,task-clock}
START_TIMEOUT=30
LOAD_TIMEOUT=900
DELIVERY_TIMEOUT=900
STOP_TIMEOUT=15

while [ $# -gt 0 ]; do
    case "$1" in
        --messages) MESSAGES=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --domains) DOMAINS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --dead) DEAD=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TERN=${TERN_BIN:-$TARGET/release/tern}
LOAD=$TARGET/release/smtp-load
MXDNS=$TARGET/release/mx-dns

say() { echo "== $*" >&2; }
die() { echo "compare-postfix-relay: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs Postfix and runs smtp-sink"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tern-relay-vs-postfix.XXXXXX")
chmod 755 "$WORK"
PF=$WORK/postfix
PF_CONF=$PF/conf
TERN_DIR=$WORK/tern
SINKS=$WORK/sinks
PF_STARTED=0
SINK_PIDS=()
DNS_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CHILD_PID" ]; then kill -TERM "$CHILD_PID" 2>/dev/null || true; stop_pid "$CHILD_PID"; fi
    stop_tern
    stop_postfix
    for pid in "${SINK_PIDS[@]}" $DNS_PID; do kill -TERM "$pid" 2>/dev/null || true; done
    if [ "$rc" != 0 ]; then echo "compare-postfix-relay: stopped (exit $rc)" >&2; fi
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

install_postfix

# --- sinks and DNS --------------------------------------------------------------

say "$DOMAINS smtp-sinks on 127.0.1.1-$DOMAINS:$SINK_PORT, mx-dns on 127.0.0.1:$DNS_PORT"
for ((i = 1; i <= DOMAINS; i++)); do
    mkdir -p "$SINKS/d$i/new"
    chown -R nobody "$SINKS/d$i"
    smtp-sink -u nobody -d "$SINKS/d$i/new/m." "127.0.1.$i:$SINK_PORT" 1024 &
    SINK_PIDS+=($!)
done
DEAD_ARGS=()
if [ "$DEAD" -gt 0 ]; then
    # A dead host: a listener that never accepts, so the first connections
    # wait for a greeting that never comes and the rest time out unanswered.
    python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.2.1", int(sys.argv[1]))); s.listen(1)
while True: time.sleep(3600)' "$SINK_PORT" &
    SINK_PIDS+=($!)
    DEAD_ARGS=(--dead 127.0.2.1)
fi
"$MXDNS" --listen "127.0.0.1:$DNS_PORT" --domains "$DOMAINS" "${DEAD_ARGS[@]}" >"$WORK/mx-dns.log" &
DNS_PID=$!

RCPTS=$WORK/recipients.txt
for ((i = 1; i <= DOMAINS; i++)); do echo "user$i@d$i.bench"; done >"$RCPTS"
echo "nobody@dead.bench" >"$WORK/dead.txt"
LOAD_ARGS=(--messages "$MESSAGES" --concurrency "$CONCURRENCY" --size "$SIZE"
    --recipients "$RCPTS" --rcpts-per-message 1 --from "sender@load.example"
    --helo load.example --max-seconds "$LOAD_TIMEOUT" --json
    --wait-maildir "$SINKS" --expect "$MESSAGES" --poll-ms 50 --wait-timeout "$DELIVERY_TIMEOUT")

clear_sinks() { find "$SINKS" -path '*/new/*' -type f -delete; }

# Queues DEAD messages for dead.bench on the server at port $1 first.
queue_dead() {
    [ "$DEAD" -gt 0 ] || return 0
    "$LOAD" --server "127.0.0.1:$1" --messages "$DEAD" --concurrency 10 --size 1024 \
        --recipients "$WORK/dead.txt" --rcpts-per-message 1 --from "sender@load.example" \
        --helo load.example --max-seconds "$LOAD_TIMEOUT" --json >"$WORK/dead.out"
}

# --- Tern -----------------------------------------------------------------------

mkdir -p "$TERN_DIR"
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

[smtp]
relay_networks = ["127.0.0.0/8"]

[outbound]
mx_port = $SINK_PORT
dkim = true
${TERN_OUTBOUND_EXTRA:-}

[dns]
servers = ["127.0.0.1:$DNS_PORT"]
EOF
tern() { "$TERN" --config "$TERN_DIR/tern.toml" "$@"; }
tern init >/dev/null
tern domain add load.example >/dev/null
tern dkim generate load.example >/dev/null
mv "$TERN_DIR/data" "$TERN_DIR/template"

run_tern() {
    local result=$1 out
    rm -rf "$TERN_DIR/data"
    cp -a "$TERN_DIR/template" "$TERN_DIR/data"
    clear_sinks
    RUST_LOG=${TERN_LOG:-info} "$TERN" --config "$TERN_DIR/tern.toml" serve 2>>"$TERN_DIR/tern.log" &
    TERN_PID=$!
    wait_port "$TERN_PORT" || { tail -20 "$TERN_DIR/tern.log" >&2; die "tern serve did not start"; }
    queue_dead "$TERN_PORT"
    local cpu0
    cpu0=$(awk '{print $14 + $15}' "/proc/$TERN_PID/stat")
    local perf_pid=
    if [ -n "${PERF_OUT:-}" ]; then
        perf record -F 499 -g -p "$TERN_PID" -o "$PERF_OUT" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    local stat_pid=
    if [ -n "${PERF_STAT_OUT:-}" ]; then
        perf stat -e "$PERF_STAT_EVENTS" -p "$TERN_PID" -o "$PERF_STAT_OUT" --append >/dev/null 2>&1 &
        stat_pid=$!
    fi
    run_child "$WORK/load.out" "$LOAD" --server "127.0.0.1:$TERN_PORT" "${LOAD_ARGS[@]}"
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
    if [ -n "$stat_pid" ]; then kill -INT "$stat_pid"; wait "$stat_pid" || true; fi
    local cpu1
    cpu1=$(awk '{print $14 + $15}' "/proc/$TERN_PID/stat")
    stop_tern
    out=$(cat "$WORK/load.out")
    [ -n "$out" ] || die "smtp-load against Tern printed nothing (exit $CHILD_RC)"
    echo "${out%\}}, \"cpu_ticks\": $((cpu1 - cpu0)), \"exit\": $CHILD_RC}" >"$result"
}

# --- Postfix --------------------------------------------------------------------

say "Postfix $PF_VERSION: private relay instance in $PF"
mkdir -p "$PF_CONF" "$PF/queue" "$PF/data"
chown postfix: "$PF/data"
RELAY_DOMAINS=$(for ((i = 1; i <= DOMAINS; i++)); do printf 'd%s.bench ' "$i"; done)
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
relay_domains = $RELAY_DOMAINS dead.bench
transport_maps = hash:$PF_CONF/transport
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtp_tls_security_level = none
alias_maps =
alias_database =
local_recipient_maps =
biff = no
maillog_file_prefixes = $PF
maillog_file = $PF/maillog
EOF
sed -n '/^# service/,/^postlog/p' "$ROOT/bench/compare-postfix.sh" | sed "s/\$POSTFIX_PORT/$POSTFIX_PORT/" >"$PF_CONF/master.cf"
{
    for ((i = 1; i <= DOMAINS; i++)); do echo "d$i.bench smtp:[127.0.1.$i]:$SINK_PORT"; done
    echo "dead.bench smtp:[127.0.2.1]:$SINK_PORT"
} >"$PF_CONF/transport"
postmap -c "$PF_CONF" "hash:$PF_CONF/transport"
postfix -c "$PF_CONF" check >&2

run_postfix() {
    local result=$1 out
    clear_sinks
    postsuper -c "$PF_CONF" -d ALL >/dev/null 2>&1 || true
    PF_STARTED=1
    postfix -c "$PF_CONF" start >/dev/null 2>&1 || { tail -20 "$PF/maillog" >&2; die "postfix did not start"; }
    wait_port "$POSTFIX_PORT" || { tail -20 "$PF/maillog" >&2; die "postfix smtpd is not listening"; }
    queue_dead "$POSTFIX_PORT"
    run_child "$WORK/load.out" "$LOAD" --server "127.0.0.1:$POSTFIX_PORT" "${LOAD_ARGS[@]}"
    stop_postfix
    out=$(cat "$WORK/load.out")
    [ -n "$out" ] || die "smtp-load against Postfix printed nothing (exit $CHILD_RC)"
    echo "${out%\}}, \"exit\": $CHILD_RC}" >"$result"
}

# --- the rounds -----------------------------------------------------------------

median() {
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ROWS=$WORK/rounds.txt
: >"$ROWS"
FAILED=0
for ((round = 1; round <= ROUNDS; round++)); do
    say "round $round/$ROUNDS: Tern relays $MESSAGES messages to $DOMAINS domains (dead: $DEAD)"
    run_tern "$WORK/tern-$round.json"
    say "round $round/$ROUNDS: Postfix, the same"
    run_postfix "$WORK/postfix-$round.json"
    T=$(cat "$WORK/tern-$round.json")
    P=$(cat "$WORK/postfix-$round.json")
    for R in "$T" "$P"; do
        if [ "$(field "$R" exit)" != 0 ] || [ "$(field "$R" maildir_complete)" != true ]; then FAILED=1; fi
    done
    ratio=$(awk -v t="$(field "$T" e2e_rate)" -v p="$(field "$P" e2e_rate)" \
        'BEGIN { if (p > 0) printf "%.2f", t / p; else print "n/a" }')
    echo "$ratio $(field "$T" e2e_rate) $(field "$P" e2e_rate) $(field "$T" accept_rate) $(field "$P" accept_rate) $(field "$T" cpu_ticks)" >>"$ROWS"
    echo "round $round: Tern $(field "$T" e2e_rate)/s, Postfix $(field "$P" e2e_rate)/s, ratio $ratio" >&2
done

echo
echo "Relay to $DOMAINS sinks: $MESSAGES messages of $SIZE bytes, $CONCURRENCY sessions, $ROUNDS rounds, dead-destination messages: $DEAD"
echo "Postfix $PF_VERSION (no DKIM); Tern with DKIM (Ed25519 + RSA-2048)"
echo "                     median"
echo "Tern e2e msg/s       $(awk '{print $2}' "$ROWS" | median)"
echo "Postfix e2e msg/s    $(awk '{print $3}' "$ROWS" | median)"
echo "ratio Tern/Postfix   $(awk '{print $1}' "$ROWS" | median)"
echo "Tern accept msg/s    $(awk '{print $4}' "$ROWS" | median)"
echo "Postfix accept msg/s $(awk '{print $5}' "$ROWS" | median)"
echo "per round (ratio tern_e2e postfix_e2e tern_accept postfix_accept tern_cpu_ticks):"
cat "$ROWS"
[ "$FAILED" = 0 ] || die "a run did not deliver everything; see above"
