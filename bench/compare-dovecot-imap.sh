#!/usr/bin/env bash
# compare-dovecot-imap.sh — IMAP mixed load, Tern against Dovecot (issue 4).
#
# Gives USERS users on each server the same mailboxes: INBOX with MESSAGES
# messages of about 5 KiB and an empty Archive. Then, in each of ROUNDS
# rounds, runs `imap-load` (bench/src/imap_load.rs) with CLIENTS clients for
# SECONDS seconds against Tern, then against Dovecot: each client on its own
# user and connection loops over SELECT, FETCH (FLAGS, ENVELOPE, BODY.PEEK[]),
# STORE, SEARCH, APPEND, UID COPY, EXPUNGE, IDLE and UID MOVE, and logs in
# again every RELOGIN operations. Before the rounds, an untimed 3-second run
# against each server warms it (Dovecot builds its indexes, both fill their
# caches). Prints the operations per second of each, their ratio, and the
# per-operation latencies of the median round.
#
# Then, for Tern only:
# - memory per idle IMAP connection: IDLE_CONNS connections that LOGIN,
#   SELECT INBOX and IDLE; Tern's VmRSS before and after (`imap-load --mode
#   idle-memory`);
# - SMTP 250 to IDLE EXISTS: one IDLE connection while IDLE_MESSAGES
#   messages are delivered one at a time through SMTP (`--mode idle-latency`).
#
# - Tern: `tern serve` with SMTP on 127.0.0.1:2525 and IMAP on
#   127.0.0.1:11144, no other listener, limits raised for one IP. Its users
#   u01..uNN@bench.test (each created with INBOX, Archive, ...) get their
#   messages through SMTP, sent by `smtp-load` (distinct messages, round
#   robin); the script then waits until Tern's CPU time stops growing (its
#   search indexer catches up).
# - Dovecot (Debian's dovecot-core and dovecot-imapd, installed if missing,
#   with the system service kept stopped through policy-rc.d) runs as a
#   private instance, `dovecot -c CONF`, IMAP only on 127.0.0.1:11143, no
#   SSL, plaintext logins allowed, imap-login in high-performance mode
#   (service_count = 0), mail_location maildir, no auth cache (as Tern: every
#   LOGIN verifies the hash). Users in a passwd-file (uid/gid 5000), each with
#   a Maildir holding the same MESSAGES files in new/ (named with S= and W=
#   sizes as Dovecot's LDA does) and an empty .Archive folder.
# - Both check the same Argon2id hash (m=19456, t=2, p=1: Tern's parameters):
#   Dovecot's passwd-file gets Tern's PHC string, so a LOGIN costs the same
#   on both. Falls back to Dovecot's own ARGON2ID, then PLAIN (printed).
#
# Everything lives in one temporary directory, removed on exit with both
# servers stopped, also on failure. Traffic goes to 127.0.0.1 only. Needs
# root (apt-get, Dovecot switching to the mail user, ulimit -n).
#
# Usage: bench/compare-dovecot-imap.sh [--users N] [--messages N] [--clients N]
#          [--seconds S] [--rounds R] [--relogin N] [--idle-connections K]
#          [--idle-messages N] [--skip-extras] [--keep]
#   defaults: 50 users, 200 messages each, 50 clients, 20 s, 3 rounds, re-login
#   every 100 operations, 2000 idle connections, 200 IDLE deliveries.
# Environment: TERN_SMTP_PORT (2525), TERN_IMAP_PORT (11144), DOVECOT_PORT
#   (11143), TERN_LOG (default warn), SKIP_BUILD=1 to use the built binaries.

set -euo pipefail

USERS=50
MESSAGES=200
CLIENTS=50
SECONDS_RUN=20
ROUNDS=3
RELOGIN=100
IDLE_CONNS=2000
IDLE_MESSAGES=200
SKIP_EXTRAS=0
KEEP=0
TERN_SMTP_PORT=${TERN_SMTP_PORT:-2525}
TERN_IMAP_PORT=${TERN_IMAP_PORT:-11144}
DOVECOT_PORT=${DOVECOT_PORT:-11143}
DOMAIN=bench.test
PASSWORD=bench-password
SIZE=5120
VMAIL_ID=5000
START_TIMEOUT=30
LOAD_TIMEOUT=600
SETTLE_TIMEOUT=180
STOP_TIMEOUT=15

while [ $# -gt 0 ]; do
    case "$1" in
        --users) USERS=$2; shift 2 ;;
        --messages) MESSAGES=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --seconds) SECONDS_RUN=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --relogin) RELOGIN=$2; shift 2 ;;
        --idle-connections) IDLE_CONNS=$2; shift 2 ;;
        --idle-messages) IDLE_MESSAGES=$2; shift 2 ;;
        --skip-extras) SKIP_EXTRAS=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done
for n in "$USERS" "$MESSAGES" "$CLIENTS" "$SECONDS_RUN" "$ROUNDS" "$RELOGIN" "$IDLE_CONNS" "$IDLE_MESSAGES"; do
    case "$n" in '' | *[!0-9]*) echo "not a number: '$n'" >&2; exit 64 ;; esac
done
[ "$USERS" -ge 1 ] && [ "$USERS" -le 999 ] || { echo "--users: 1 to 999" >&2; exit 64; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TERN=$TARGET/release/tern
LOAD=$TARGET/release/smtp-load
IMAP=$TARGET/release/imap-load

say() { echo "== $*" >&2; }
SCRIPT_NAME=compare-dovecot-imap
die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs Dovecot and Dovecot switches to the mail user"
# Idle connections: two descriptors each on this machine (client and server).
ulimit -n $((IDLE_CONNS * 2 + 4096)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# Temporary directory, cleanup, server stop, port and CPU waits.
# shellcheck source=lib/dovecot-harness.sh
. "$ROOT/bench/lib/dovecot-harness.sh"

PORTS=("$DOVECOT_PORT" "$TERN_SMTP_PORT" "$TERN_IMAP_PORT")
for port in "${PORTS[@]}"; do
    if port_busy "$port"; then die "127.0.0.1:$port is already in use"; fi
done

# --- build ----------------------------------------------------------------------

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building Tern, smtp-load and imap-load (release)"
    (cd "$ROOT" && cargo build --release -p tern -p tern-bench)
fi
[ -x "$TERN" ] && [ -x "$LOAD" ] && [ -x "$IMAP" ] || die "missing $TERN, $LOAD or $IMAP; build them first"
TERN_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no -- crates 2>/dev/null)" ]; then
    TERN_REV="$TERN_REV+changes"
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- Dovecot: install without starting the system service -----------------------

install_dovecot imap

# --- users ------------------------------------------------------------------------

USER_LIST=()
for ((i = 1; i <= USERS; i++)); do USER_LIST+=("$(printf 'u%02d' "$i")"); done
printf '%s\n' "${USER_LIST[@]/%/@$DOMAIN}" >"$WORK/tern-users.txt"
printf '%s\n' "${USER_LIST[@]}" >"$WORK/dovecot-users.txt"

# --- Tern -------------------------------------------------------------------------

say "Tern: domain $DOMAIN, $USERS accounts (each with INBOX and Archive)"
mkdir -p "$TERN_DIR/data"
cat >"$TERN_DIR/tern.toml" <<EOF
hostname = "tern.bench.local"
data_dir = "$TERN_DIR/data"

[listen]
smtp = ["127.0.0.1:$TERN_SMTP_PORT"]
submission = []
submissions = []
imap = ["127.0.0.1:$TERN_IMAP_PORT"]
imaps = []
pop3 = []
pop3s = []
http = []
https = []

[limits]
# Every client, loading or idle, comes from 127.0.0.1.
max_connections = $((IDLE_CONNS + 1000))
max_connections_per_ip = $((IDLE_CONNS + 1000))
# Tern counts a login in progress as a failure until it succeeds, so more
# than max_auth_failures concurrent logins from one address are refused;
# here every client is 127.0.0.1.
max_auth_failures = 1000000
EOF
tern() { "$TERN" --config "$TERN_DIR/tern.toml" "$@"; }
tern init >/dev/null
tern domain add "$DOMAIN" >/dev/null
for user in "${USER_LIST[@]}"; do
    echo "$PASSWORD" | tern account add "$user@$DOMAIN" --password-stdin >/dev/null
done
TERN_HASH=""
if command -v python3 >/dev/null; then
    TERN_HASH=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select password_hash from account where address = ?", (sys.argv[2],)).fetchone()[0])' \
        "$TERN_DIR/data/tern.db" "u01@$DOMAIN" 2>/dev/null || true)
fi

# Starts tern serve, with the environment assignments given as arguments.
start_tern() {
    env "$@" RUST_LOG="${TERN_LOG:-warn}" "$TERN" --config "$TERN_DIR/tern.toml" serve 2>>"$TERN_DIR/tern.log" &
    TERN_PID=$!
    wait_port "$TERN_SMTP_PORT" && wait_port "$TERN_IMAP_PORT" ||
        { tail -20 "$TERN_DIR/tern.log" >&2; die "tern serve is not listening on $TERN_SMTP_PORT and $TERN_IMAP_PORT"; }
}
start_tern
say "Tern: delivering $((USERS * MESSAGES)) messages of $SIZE bytes through SMTP"
run_child "$WORK/load.out" "$LOAD" --server "127.0.0.1:$TERN_SMTP_PORT" --messages $((USERS * MESSAGES)) \
    --concurrency 20 --size "$SIZE" --recipients "$WORK/tern-users.txt" --from sender@load.example \
    --max-seconds "$LOAD_TIMEOUT" --json
[ "$CHILD_RC" = 0 ] || { cat "$WORK/load.out" >&2; die "smtp-load into Tern failed"; }
say "  $(field "$(cat "$WORK/load.out")" accept_rate) msg/s; idle again after $(settle "$TERN_PID") s"

# --- Dovecot: private instance ----------------------------------------------------

say "Dovecot $DV_VERSION: private instance in $DV"
mkdir -p "$DV/run" "$DV/state" "$DV/home"
case "$TERN_HASH" in
    '$argon2id$'*) DV_PASS="{ARGON2ID}$TERN_HASH"; DV_SCHEME="ARGON2ID (Tern's hash: ${TERN_HASH%\$*\$*})" ;;
    *)
        if DV_PASS=$(doveadm pw -s ARGON2ID -p "$PASSWORD" 2>/dev/null) && [ -n "$DV_PASS" ]; then
            DV_SCHEME="ARGON2ID (doveadm's: $(cut -d'$' -f2-4 <<<"$DV_PASS"))"
        else
            DV_PASS="{PLAIN}$PASSWORD"
            DV_SCHEME="PLAIN"
        fi
        ;;
esac
: >"$DV/passwd"
for user in "${USER_LIST[@]}"; do
    echo "$user:$DV_PASS:$VMAIL_ID:$VMAIL_ID::$DV/home/$user::" >>"$DV/passwd"
done
chown root:dovecot "$DV/passwd"
chmod 640 "$DV/passwd"
write_dovecot_conf_base imap "plain login"
cat >>"$DV_CONF" <<EOF
mail_fsync = optimized
namespace inbox {
  inbox = yes
  separator = /
  mailbox Archive {
    special_use = \\Archive
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_PORT
  }
  inet_listener imaps {
    port = 0
  }
  # High-performance mode: long-lived login processes, one per CPU.
  service_count = 0
  process_min_avail = $(nproc)
}
EOF
doveconf -c "$DV_CONF" -n >"$DV/doveconf.txt" 2>&1 || { cat "$DV/doveconf.txt" >&2; die "bad Dovecot configuration"; }
say "Dovecot: $USERS Maildirs of $MESSAGES messages and an empty Archive"
make_maildir "$DV/template/Maildir" "$SIZE" "$MESSAGES" user@bench.test "imap-load message"
mkdir -p "$DV/template/Maildir/.Archive"/{cur,new,tmp}
printf 'Archive\n' >"$DV/template/Maildir/subscriptions"
for user in "${USER_LIST[@]}"; do
    cp -a "$DV/template" "$DV/home/$user"
done
chown -R "$VMAIL_ID:$VMAIL_ID" "$DV/home" "$DV/template"
DV_STARTED=1
dovecot -c "$DV_CONF" 2>"$DV/start.err" || { cat "$DV/start.err" "$DV/dovecot.log" >&2 2>/dev/null; die "dovecot did not start"; }
wait_port "$DOVECOT_PORT" || { tail -20 "$DV/dovecot.log" >&2; die "dovecot is not listening on $DOVECOT_PORT"; }
sync

# --- the mixed load ---------------------------------------------------------------

# Sum of CPU ticks of Dovecot's processes (master and children).
dv_ticks() {
    local master total=0 p t
    master=$(tr -dc 0-9 <"$DV/run/master.pid" 2>/dev/null || true)
    [ -n "$master" ] || { echo 0; return; }
    # The master's own time and that of its ended children (the imap
    # processes of past logins), then the children still running.
    total=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$master/stat" 2>/dev/null || echo 0)
    for p in $(pgrep -P "$master" 2>/dev/null); do
        t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

# imap-load against port $1 as users of file $2 for $3 seconds, JSON into $4.
mixed() {
    run_child "$4" "$IMAP" --server "127.0.0.1:$1" --users "$2" --password "$PASSWORD" \
        --clients "$CLIENTS" --seconds "$3" --relogin-every "$RELOGIN" --json
    [ -s "$4" ] || die "imap-load against $1 printed nothing (exit $CHILD_RC)"
}

say "warming both servers (untimed, 3 s each)"
mixed "$TERN_IMAP_PORT" "$WORK/tern-users.txt" 3 "$WORK/warm-tern.json"
mixed "$DOVECOT_PORT" "$WORK/dovecot-users.txt" 3 "$WORK/warm-dovecot.json"

ROWS=$WORK/rounds.txt
: >"$ROWS"
for ((round = 1; round <= ROUNDS; round++)); do
    say "round $round/$ROUNDS: Tern"
    sleep 2
    c0=$(cpu_ticks "$TERN_PID")
    mixed "$TERN_IMAP_PORT" "$WORK/tern-users.txt" "$SECONDS_RUN" "$WORK/tern-$round.json"
    c1=$(cpu_ticks "$TERN_PID")
    T=$(cat "$WORK/tern-$round.json")
    say "round $round/$ROUNDS: Dovecot"
    sleep 2
    d0=$(dv_ticks)
    mixed "$DOVECOT_PORT" "$WORK/dovecot-users.txt" "$SECONDS_RUN" "$WORK/dovecot-$round.json"
    d1=$(dv_ticks)
    D=$(cat "$WORK/dovecot-$round.json")
    echo "$round $(field "$T" ops_per_s) $(field "$D" ops_per_s) $(field "$T" p50_ms) $(field "$T" p99_ms)" \
        "$(field "$D" p50_ms) $(field "$D" p99_ms) $(field "$T" failed) $(field "$D" failed)" \
        "$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v s="$SECONDS_RUN" 'BEGIN { printf "%.2f", (b - a) / hz / s }')" \
        "$(awk -v a="$d0" -v b="$d1" -v hz="$HZ" -v s="$SECONDS_RUN" 'BEGIN { printf "%.2f", (b - a) / hz / s }')" >>"$ROWS"
    say "  Tern $(field "$T" ops_per_s) ops/s, Dovecot $(field "$D" ops_per_s) ops/s"
done

# --- Tern only: idle connections and IDLE latency ------------------------------------

if [ "$SKIP_EXTRAS" = 0 ]; then
    say "Tern: SMTP 250 to IDLE EXISTS, $IDLE_MESSAGES messages"
    settle "$TERN_PID" >/dev/null
    run_child "$WORK/idle-lat.json" "$IMAP" --mode idle-latency --server "127.0.0.1:$TERN_IMAP_PORT" \
        --smtp "127.0.0.1:$TERN_SMTP_PORT" --users "u01@$DOMAIN" --password "$PASSWORD" \
        --messages "$IDLE_MESSAGES" --json
    [ "$CHILD_RC" = 0 ] || die "idle-latency failed"
    # Memory: on a freshly started Tern each time, once as it runs by default
    # and once with glibc's mmap threshold fixed at its 128 KiB default
    # (MALLOC_MMAP_THRESHOLD_), so that Argon2's 19 MiB buffer is always
    # mapped and unmapped, never kept in malloc's arenas: that separates what
    # the connections hold from what the allocator keeps after the logins.
    for variant in default mmap; do
        stop_tern
        if [ "$variant" = mmap ]; then start_tern MALLOC_MMAP_THRESHOLD_=131072; else start_tern; fi
        say "Tern ($variant malloc): $IDLE_CONNS IDLE connections (memory)"
        settle "$TERN_PID" >/dev/null
        run_child "$WORK/idle-mem-$variant.json" "$IMAP" --mode idle-memory --server "127.0.0.1:$TERN_IMAP_PORT" \
            --users "$WORK/tern-users.txt" --password "$PASSWORD" --connections "$IDLE_CONNS" \
            --pid "$TERN_PID" --json
        [ "$CHILD_RC" = 0 ] || die "idle-memory failed"
    done
fi
stop_tern
stop_dovecot

# --- report ---------------------------------------------------------------------

median() {
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
col() { awk -v c="$1" '{ print $c }' "$ROWS" | median; }

echo
echo "IMAP mixed load: $CLIENTS clients over $USERS users, $SECONDS_RUN s per run, $MESSAGES messages" \
    "of $SIZE bytes in each INBOX, re-login every $RELOGIN operations; Tern $TERN_REV, Dovecot $DV_VERSION;" \
    "Dovecot password scheme $DV_SCHEME; load average $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo
echo "| round | Tern (ops/s) | Dovecot (ops/s) | Tern/Dovecot | Tern p50 / p99 (ms) | Dovecot p50 / p99 (ms) | Tern CPU (cores) | Dovecot CPU (cores) | failed T / D |"
echo "|---|---|---|---|---|---|---|---|---|"
awk '{ printf "| %d | %.0f | %.0f | %.2fx | %.2f / %.1f | %.2f / %.1f | %s | %s | %s / %s |\n",
    $1, $2, $3, ($3 > 0 ? $2 / $3 : 0), $4, $5, $6, $7, $10, $11, $8, $9 }' "$ROWS"
R=$(awk '$3 > 0 { printf "%.4f\n", $2 / $3 }' "$ROWS" | median)
printf '| median | %.0f | %.0f | %.2fx | p99 %.1f | p99 %.1f | %s | %s | |\n' "$(col 2)" "$(col 3)" "$R" \
    "$(col 5)" "$(col 7)" "$(col 10)" "$(col 11)"
# The median round by ratio: its per-operation latencies.
MR=$(awk '$3 > 0 { printf "%s %.4f\n", $1, $2 / $3 }' "$ROWS" | sort -k2 -g | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }')
echo
echo "Per operation, round $MR (count, p50 / p99 ms):"
echo
echo "| operation | Tern count | Tern p50 / p99 | Dovecot count | Dovecot p50 / p99 |"
echo "|---|---|---|---|---|"
T=$(cat "$WORK/tern-$MR.json")
D=$(cat "$WORK/dovecot-$MR.json")
for op in login select fetch_flags fetch_envelope fetch_body store search_unseen search_subject append copy expunge idle move; do
    printf '| %s | %s | %s / %s | %s | %s / %s |\n' "$op" "$(field "$T" "${op}_n")" "$(field "$T" "${op}_p50_ms")" \
        "$(field "$T" "${op}_p99_ms")" "$(field "$D" "${op}_n")" "$(field "$D" "${op}_p50_ms")" "$(field "$D" "${op}_p99_ms")"
done
MET=$(awk -v r="$R" 'BEGIN { print (r >= 1.5) ? "met" : "not met" }')
echo
echo "target (issue 4: with $CLIENTS clients at least 1.5x Dovecot's operations/s): $(printf '%.2f' "$R")x, $MET"
if [ "$SKIP_EXTRAS" = 0 ]; then
    for variant in default mmap; do
        M=$(cat "$WORK/idle-mem-$variant.json")
        echo "Tern ($variant malloc), $(field "$M" connections) connections in IDLE (LOGIN, SELECT INBOX, IDLE; opened in $(field "$M" open_s) s):" \
            "VmRSS $(field "$M" rss_before_kib) KiB before, $(field "$M" rss_after_kib) KiB after, $(field "$M" rss_closed_kib) KiB once closed:" \
            "$(field "$M" kib_per_connection) KiB per connection" \
            "(target: under 100 KiB, $(awk -v k="$(field "$M" kib_per_connection)" 'BEGIN { print (k < 100) ? "met" : "not met" }'))"
    done
    L=$(cat "$WORK/idle-lat.json")
    echo "Tern, SMTP 250 to IDLE EXISTS over $(field "$L" seen) deliveries: p50 $(field "$L" p50_ms) ms," \
        "p99 $(field "$L" p99_ms) ms, max $(field "$L" max_ms) ms; EXISTS read before the 250: $(field "$L" exists_before_250)" \
        "(target: p99 under 20 ms, $(awk -v k="$(field "$L" p99_ms)" 'BEGIN { print (k < 20) ? "met" : "not met" }'))"
fi
FAILED=$(awk '{ s += $8 + $9 } END { print s + 0 }' "$ROWS")
if [ "$FAILED" != 0 ]; then
    echo
    echo "failed operations: $FAILED; first errors:"
    for f in "$WORK"/tern-*.json "$WORK"/dovecot-*.json; do
        sed -n 's/.*"errors": \(\[.*\]\)}/\1/p' "$f" | head -c 600
        echo "  ($(basename "$f"))"
    done
fi
