#!/usr/bin/env bash
# compare-dovecot-pop3.sh — POP3 download and delete, Tern against Dovecot (issue 5).
#
# Fills one mailbox with MESSAGES distinct messages on each server, then
# times one POP3 session with `pop3-bench` (bench/src/pop3_bench.rs) that
# logs in with USER/PASS, STATs, RETRs and DELEs every message, and QUITs:
# the whole session, from connecting to the QUIT reply, since QUIT is when a
# server really removes the messages. Prints both times, their ratio and
# each session's parts (login, STAT, RETR+DELE, QUIT).
#
# - Tern runs `tern serve` with SMTP on 127.0.0.1:2525 and POP3 on
#   127.0.0.1:11111 (nothing else) on a fresh data directory each round; the
#   messages reach bench@bench.test through SMTP, sent by `smtp-load`. Before
#   the session the script waits until Tern's CPU time stops growing (its
#   search indexer catches up after the deliveries), so the session does not
#   share the machine with the delivery's aftermath.
# - Dovecot (Debian's dovecot-core and dovecot-pop3d, installed if missing,
#   with the system service kept stopped: nothing on 110 or 995) runs as a
#   private instance, `dovecot -c CONF`, with base_dir, state_dir and logs
#   under the temporary directory, POP3 only on 127.0.0.1:11110, no SSL,
#   plaintext logins allowed, one passwd-file user `bench` (uid/gid 5000)
#   whose Maildir is under the temporary directory, and its fast settings:
#   pop3-login in high-performance mode (service_count = 0), no flag updates,
#   mail_fsync = optimized (the default). The messages are written into
#   Maildir/new as LF files named with their sizes (,S=,W=) as Dovecot's own
#   LDA names them, so Dovecot need not read them to answer STAT; Dovecot
#   indexes them at the first login, which is part of the session's time.
# - Both users log in with the same Argon2id hash (m=19456, t=2, p=1, Tern's
#   parameters): Dovecot's passwd-file gets Tern's PHC string, so one login
#   costs the same on both. Falls back to Dovecot's own ARGON2ID, then PLAIN,
#   if that is not possible (the scheme used is printed).
# - Before each timed session, one untimed login of a second, empty user
#   (`warm`) on each server, so neither pays for starting processes or
#   threads on its first connection; and `sync`, so neither pays for writing
#   back the files just loaded. Page caches are warm for both (the mail was
#   just delivered).
# - After each timed session pop3-bench logs in again (untimed) and checks
#   that the mailbox is empty.
#
# Each round reloads both mailboxes, for every size, Tern first. The summary
# is the median over the rounds, since a shared machine is noisy.
# Everything lives in one temporary directory, removed on exit with both
# servers stopped, also on failure. Traffic goes to 127.0.0.1 only. Needs
# root (apt-get, Dovecot switching to the mail user).
#
# Usage: bench/compare-dovecot-pop3.sh [--messages N] [--sizes "5120 102400"]
#                                      [--rounds R] [--dovecot-only] [--keep]
#   defaults: 1000 messages, sizes 5120 and 102400 bytes, 3 rounds.
#   --dovecot-only measures Dovecot alone (to try the setup without Tern).
#   --keep leaves the temporary directory (logs, mailboxes, store).
# Environment: TERN_SMTP_PORT (2525), TERN_POP3_PORT (11111), DOVECOT_PORT
#   (11110), TERN_LOG (RUST_LOG of tern serve, default info), SKIP_BUILD=1 to
#   use the binaries as built.

set -euo pipefail

MESSAGES=1000
SIZES="5120 102400"
ROUNDS=3
KEEP=0
DOVECOT_ONLY=0
TERN_SMTP_PORT=${TERN_SMTP_PORT:-2525}
TERN_POP3_PORT=${TERN_POP3_PORT:-11111}
DOVECOT_PORT=${DOVECOT_PORT:-11110}
DOMAIN=bench.test
PASSWORD=bench-password
# The owner of Dovecot's mailboxes; no such system user needs to exist.
VMAIL_ID=5000
# Bounds on every wait, in seconds.
START_TIMEOUT=30
LOAD_TIMEOUT=600
SETTLE_TIMEOUT=120
SESSION_TIMEOUT=600
STOP_TIMEOUT=15

while [ $# -gt 0 ]; do
    case "$1" in
        --messages) MESSAGES=$2; shift 2 ;;
        --sizes) SIZES=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --dovecot-only) DOVECOT_ONLY=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done
for n in "$MESSAGES" "$ROUNDS" $SIZES; do
    case "$n" in '' | *[!0-9]*) echo "not a number: '$n'" >&2; exit 64 ;; esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TERN=$TARGET/release/tern
LOAD=$TARGET/release/smtp-load
POP=$TARGET/release/pop3-bench

say() { echo "== $*" >&2; }
SCRIPT_NAME=compare-dovecot-pop3
die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs Dovecot and Dovecot switches to the mail user"

# Temporary directory, cleanup, server stop, port and CPU waits.
# shellcheck source=lib/dovecot-harness.sh
. "$ROOT/bench/lib/dovecot-harness.sh"

PORTS=("$DOVECOT_PORT")
if [ "$DOVECOT_ONLY" = 0 ]; then PORTS+=("$TERN_SMTP_PORT" "$TERN_POP3_PORT"); fi
for port in "${PORTS[@]}"; do
    if port_busy "$port"; then die "127.0.0.1:$port is already in use"; fi
done

# --- build ----------------------------------------------------------------------

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    if [ "$DOVECOT_ONLY" = 1 ]; then
        say "building pop3-bench (release)"
        (cd "$ROOT" && cargo build --release -p tern-bench --bin pop3-bench)
    else
        say "building Tern, smtp-load and pop3-bench (release)"
        (cd "$ROOT" && cargo build --release -p tern -p tern-bench)
    fi
fi
[ -x "$POP" ] || die "missing $POP; build it first"
TERN_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no -- crates 2>/dev/null)" ]; then
    TERN_REV="$TERN_REV+changes"
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$DOVECOT_ONLY" = 0 ]; then
    [ -x "$TERN" ] && [ -x "$LOAD" ] || die "missing $TERN or $LOAD; build them first"
fi

# --- Dovecot: install without starting the system service -----------------------

install_dovecot pop3

# --- Tern: domain and accounts ----------------------------------------------------

tern() { "$TERN" --config "$TERN_DIR/tern.toml" "$@"; }
TERN_HASH=""
if [ "$DOVECOT_ONLY" = 0 ]; then
    say "Tern: domain $DOMAIN, accounts bench@ and warm@ in a template data directory"
    mkdir -p "$TERN_DIR/data"
    cat >"$TERN_DIR/tern.toml" <<EOF
hostname = "tern.bench.local"
data_dir = "$TERN_DIR/data"

[listen]
smtp = ["127.0.0.1:$TERN_SMTP_PORT"]
submission = []
submissions = []
imap = []
imaps = []
pop3 = ["127.0.0.1:$TERN_POP3_PORT"]
pop3s = []
http = []
https = []

[limits]
# The loading SMTP sessions all come from 127.0.0.1.
max_connections_per_ip = 1000

[pop3]
# DELE then QUIT removes the message, as RFC 1939 says (the default).
deleted = "expunge"
EOF
    tern init >/dev/null
    tern domain add "$DOMAIN" >/dev/null
    for user in bench warm; do
        echo "$PASSWORD" | tern account add "$user@$DOMAIN" --password-stdin >/dev/null
    done
    mv "$TERN_DIR/data" "$TERN_DIR/template"
    if command -v python3 >/dev/null; then
        TERN_HASH=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select password_hash from account where address = ?", (sys.argv[2],)).fetchone()[0])' \
            "$TERN_DIR/template/tern.db" "bench@$DOMAIN" 2>/dev/null || true)
    fi
fi

# --- Dovecot: private instance ----------------------------------------------------

say "Dovecot $DV_VERSION: private instance in $DV"
mkdir -p "$DV/run" "$DV/state" "$DV/home"
# The password: Tern's own Argon2id hash when there is one (the same work
# for both servers), else Dovecot's ARGON2ID, else PLAIN.
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
for user in bench warm; do
    echo "$user:$DV_PASS:$VMAIL_ID:$VMAIL_ID::$DV/home/$user::" >>"$DV/passwd"
done
# Read by the auth process, which runs as the dovecot user.
chown root:dovecot "$DV/passwd"
chmod 640 "$DV/passwd"
write_dovecot_conf_base pop3 "plain"
cat >>"$DV_CONF" <<EOF
# Dovecot's fast settings.
mail_fsync = optimized
pop3_no_flag_updates = yes
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DOVECOT_PORT
  }
  inet_listener pop3s {
    port = 0
  }
  # High-performance mode: long-lived login processes, one per CPU.
  service_count = 0
  process_min_avail = $(nproc)
}
EOF
doveconf -c "$DV_CONF" -n >"$DV/doveconf.txt" 2>&1 || { cat "$DV/doveconf.txt" >&2; die "bad Dovecot configuration"; }

mkdir -p "$DV/home/warm/Maildir"/{cur,new,tmp}
for size in $SIZES; do
    say "Dovecot: $MESSAGES messages of $size bytes into a template Maildir"
    make_maildir "$DV/template-$size/Maildir" "$size" "$MESSAGES" bench@bench.test "pop3-bench message"
done
chown -R "$VMAIL_ID:$VMAIL_ID" "$DV/home" "$DV"/template-*

DV_STARTED=1
dovecot -c "$DV_CONF" 2>"$DV/start.err" || { cat "$DV/start.err" "$DV/dovecot.log" >&2 2>/dev/null; die "dovecot did not start"; }
wait_port "$DOVECOT_PORT" || { tail -20 "$DV/dovecot.log" >&2; die "dovecot is not listening on $DOVECOT_PORT"; }

# --- one measurement each -----------------------------------------------------------

# pop3-bench as $1 against 127.0.0.1:$2, output into $3: the timed session
# (expecting MESSAGES and an empty mailbox afterwards), preceded by an
# untimed session of the empty user warm.
pop_session() {
    local user=$1 port=$2 out=$3
    run_child "$WORK/warm.out" "$POP" --server "127.0.0.1:$port" --user "${user/bench/warm}" \
        --password "$PASSWORD" --expect 0 --json
    [ "$CHILD_RC" = 0 ] || die "warm-up login as ${user/bench/warm} on $port failed"
    sync
    run_child "$WORK/pop.out" "$POP" --server "127.0.0.1:$port" --user "$user" \
        --password "$PASSWORD" --expect "$MESSAGES" --verify-empty \
        --max-seconds "$SESSION_TIMEOUT" --json
    local j
    j=$(cat "$WORK/pop.out")
    [ -n "$j" ] || j='{"messages": 0'
    echo "${j%\}}, \"exit\": $CHILD_RC}" >"$out"
}

# Tern with a fresh store: MESSAGES messages of $1 bytes through SMTP, then
# the session, into $2.
run_tern() {
    local size=$1 result=$2 waited
    rm -rf "$TERN_DIR/data"
    cp -a "$TERN_DIR/template" "$TERN_DIR/data"
    RUST_LOG=${TERN_LOG:-info} "$TERN" --config "$TERN_DIR/tern.toml" serve 2>>"$TERN_DIR/tern.log" &
    TERN_PID=$!
    wait_port "$TERN_SMTP_PORT" && wait_port "$TERN_POP3_PORT" ||
        { tail -20 "$TERN_DIR/tern.log" >&2; die "tern serve is not listening on $TERN_SMTP_PORT and $TERN_POP3_PORT"; }
    run_child "$WORK/load.out" "$LOAD" --server "127.0.0.1:$TERN_SMTP_PORT" --messages "$MESSAGES" \
        --concurrency 10 --size "$size" --recipients "bench@$DOMAIN" --from sender@load.example \
        --max-seconds "$LOAD_TIMEOUT" --json
    [ "$CHILD_RC" = 0 ] || { cat "$WORK/load.out" >&2; die "smtp-load into Tern failed"; }
    waited=$(settle "$TERN_PID")
    say "  Tern: $MESSAGES delivered, idle after ${waited} s; timing the POP3 session"
    local cpu0 cpu1 after j
    cpu0=$(cpu_ticks "$TERN_PID")
    pop_session "bench@$DOMAIN" "$TERN_POP3_PORT" "$result"
    # Tern answers QUIT once the removal is durable; its search index drops
    # the messages afterwards, in the background. Count that work too.
    after=$(settle "$TERN_PID")
    cpu1=$(cpu_ticks "$TERN_PID")
    j=$(cat "$result")
    echo "${j%\}}, \"cpu_s\": $(awk -v a="$cpu0" -v b="$cpu1" -v hz="$HZ" 'BEGIN { printf "%.2f", (b - a) / hz }'), \"busy_after_s\": $(awk -v w="$after" 'BEGIN { printf "%.1f", (w > 1 ? w - 1 : 0) }')}" >"$result"
    stop_tern
}

# Dovecot with a fresh copy of the template Maildir of $1-byte messages (no
# index yet), the session into $2.
run_dovecot() {
    local size=$1 result=$2
    rm -rf "$DV/home/bench"
    mkdir -p "$DV/home/bench"
    cp -a "$DV/template-$size/Maildir" "$DV/home/bench/Maildir"
    chown "$VMAIL_ID:$VMAIL_ID" "$DV/home/bench"
    pop_session bench "$DOVECOT_PORT" "$result"
    local left
    left=$(find "$DV/home/bench/Maildir/cur" "$DV/home/bench/Maildir/new" -type f | wc -l)
    [ "$left" = 0 ] || die "Dovecot left $left message files in the Maildir"
}

# --- the rounds -----------------------------------------------------------------

median() {
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# A round's line: size, then for Tern and for Dovecot: total login stat
# download quit bytes retrieved left exit (or "-" for Tern with
# --dovecot-only), then Tern's CPU seconds and busy seconds after the session.
ROWS=$WORK/rounds.txt
: >"$ROWS"
FAILED=0
cols() {
    local j=$1 f
    if [ -z "$j" ]; then echo "- - - - - - - - - "; return; fi
    for f in total_s login_s stat_s download_s quit_s bytes retrieved left exit; do
        printf '%s ' "$(field "$j" "$f" | sed 's/^$/?/')"
    done
    echo
}
check() {
    local j=$1
    [ -z "$j" ] && return 0
    if [ "$(field "$j" exit)" != 0 ] || [ "$(field "$j" retrieved)" != "$MESSAGES" ] ||
        [ "$(field "$j" left)" != 0 ]; then
        FAILED=1
    fi
}
for ((round = 1; round <= ROUNDS; round++)); do
    for size in $SIZES; do
        T=""
        if [ "$DOVECOT_ONLY" = 0 ]; then
            say "round $round/$ROUNDS, $size bytes: Tern"
            run_tern "$size" "$WORK/tern-$size-$round.json"
            T=$(cat "$WORK/tern-$size-$round.json")
        fi
        say "round $round/$ROUNDS, $size bytes: Dovecot"
        run_dovecot "$size" "$WORK/dovecot-$size-$round.json"
        D=$(cat "$WORK/dovecot-$size-$round.json")
        check "$T"
        check "$D"
        echo "$size $(cols "$T")$(cols "$D")${T:+$(field "$T" cpu_s) $(field "$T" busy_after_s)}" >>"$ROWS"
        say "  Tern ${T:+$(field "$T" total_s)} s, Dovecot $(field "$D" total_s) s"
    done
done
stop_dovecot

# --- report ---------------------------------------------------------------------

# Median of column $2 over the rows of size $1.
med() { awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$ROWS" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b != "-") printf "%.2f", b / a; else print "n/a" }'; }

echo
echo "POP3, download and delete $MESSAGES messages in one session (connect to QUIT reply);" \
    "Tern $TERN_REV, Dovecot $DV_VERSION;" \
    "Dovecot password scheme $DV_SCHEME; median of $ROUNDS round(s);" \
    "load average $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo
echo "| size | Tern (s) | Dovecot (s) | Dovecot/Tern | Tern QUIT (s) | Dovecot QUIT (s) |"
echo "|---|---|---|---|---|---|"
for size in $SIZES; do
    t=$(med "$size" 2)
    d=$(med "$size" 11)
    # The ratio of each round, then its median.
    r=$(awk -v s="$size" '$1 == s && $2 > 0 { printf "%.4f\n", $11 / $2 }' "$ROWS" | median)
    printf '| %s KiB | %s | %s | %s | %s | %s |\n' "$((size / 1024))" \
        "$(awk -v v="$t" 'BEGIN { if (v == "-" || v == "n/a") print "-"; else printf "%.3f", v }')" \
        "$(awk -v v="$d" 'BEGIN { printf "%.3f", v }')" \
        "$(awk -v v="$r" 'BEGIN { if (v == "n/a") print "n/a"; else printf "%.2fx", v }')" \
        "$(awk -v v="$(med "$size" 6)" 'BEGIN { if (v == "-" || v == "n/a") print "-"; else printf "%.3f", v }')" \
        "$(awk -v v="$(med "$size" 15)" 'BEGIN { printf "%.3f", v }')"
done
echo
echo "Parts of the session (medians, seconds): login (connect, greeting, USER, PASS) / STAT / RETR+DELE / QUIT"
echo
echo "| size | server | login | STAT | RETR+DELE | QUIT | total | bytes retrieved |"
echo "|---|---|---|---|---|---|---|---|"
for size in $SIZES; do
    for s in Tern Dovecot; do
        off=0
        [ "$s" = Dovecot ] && off=9
        [ "$s" = Tern ] && [ "$DOVECOT_ONLY" = 1 ] && continue
        printf '| %s KiB | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %s |\n' "$((size / 1024))" "$s" \
            "$(med "$size" $((3 + off)))" "$(med "$size" $((4 + off)))" "$(med "$size" $((5 + off)))" \
            "$(med "$size" $((6 + off)))" "$(med "$size" $((2 + off)))" "$(med "$size" $((7 + off)))"
    done
done
if [ "$DOVECOT_ONLY" = 0 ]; then
    echo
    echo "Tern's CPU from the timed session's start until it is idle again (the session, the untimed"
    echo "login that checks the mailbox is empty, and the search index dropping the messages after"
    echo "QUIT, in the background), and how long it stays busy after the session (medians):"
    for size in $SIZES; do
        awk -v s="$size" '$1 == s { print $20 }' "$ROWS" | median >"$WORK/m1"
        awk -v s="$size" '$1 == s { print $21 }' "$ROWS" | median >"$WORK/m2"
        echo "  $((size / 1024)) KiB: $(cat "$WORK/m1") s of CPU, busy for about $(cat "$WORK/m2") s after the session"
    done
fi
echo
echo "Every round (seconds): size, Tern total / QUIT, Dovecot total / QUIT"
awk '{ printf "  %6d  Tern %s / %s   Dovecot %s / %s\n", $1, $2, $6, $11, $15 }' "$ROWS"
if [ "$DOVECOT_ONLY" = 0 ]; then
    for size in $SIZES; do
        r=$(awk -v s="$size" '$1 == s && $2 > 0 { printf "%.4f\n", $11 / $2 }' "$ROWS" | median)
        MET=$(awk -v r="$r" 'BEGIN { print (r != "n/a" && r >= 2) ? "met" : "not met" }')
        r=$(awk -v r="$r" 'BEGIN { if (r == "n/a") print r; else printf "%.2f", r }')
        echo "target (issue 5: Tern at least 2x faster than Dovecot), $size bytes: ${r}x, $MET"
    done
fi

if [ "$FAILED" != 0 ]; then
    echo "compare-dovecot-pop3: a session failed, or messages were missing or left behind; raw results:" >&2
    cat "$WORK"/tern-*.json "$WORK"/dovecot-*.json >&2 2>/dev/null || true
    exit 1
fi
