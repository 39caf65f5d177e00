# bench/lib/common.sh — process and port helpers shared by every comparison
# script (compare-postfix*.sh, compare-dovecot-*.sh): stopping a process,
# waiting for a port, running a child so that signals still reach the
# cleanup, reading a JSON field, waiting for a process to go quiet, and
# installing and stopping a private Postfix. Expects START_TIMEOUT,
# STOP_TIMEOUT and (for settle) SETTLE_TIMEOUT; TERN_PID, CHILD_PID and
# CHILD_RC are its state; the Postfix helpers use WORK, PF, PF_CONF,
# PF_STARTED, say and die. Sourced, not run.

TERN_PID=""
CHILD_PID=""
CHILD_RC=0

# Waits up to STOP_TIMEOUT seconds for process $1 to end; kills it after that.
stop_pid() {
    local pid=$1 i
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

stop_tern() {
    if [ -n "$TERN_PID" ]; then
        kill -TERM "$TERN_PID" 2>/dev/null || true
        stop_pid "$TERN_PID"
        wait "$TERN_PID" 2>/dev/null || true
        TERN_PID=""
    fi
}

# True when something already listens on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until 127.0.0.1:$1 accepts connections, at most START_TIMEOUT seconds.
wait_port() {
    local i
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        port_busy "$1" && return 0
        sleep 0.1
    done
    return 1
}

# Runs the command after $1 with its output into the file $1 and its exit
# code into CHILD_RC. In the background and waited for, in this shell, so
# that a signal to this script runs the cleanup at once (bash defers traps
# while a foreground command or a $(...) runs).
run_child() {
    local out=$1
    shift
    CHILD_RC=0
    "$@" >"$out" &
    CHILD_PID=$!
    wait "$CHILD_PID" || CHILD_RC=$?
    CHILD_PID=""
}

# The number or boolean under "$2" in the one-line JSON object $1.
field() { sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" <<<"$1"; }

# CPU time (utime + stime, in clock ticks) of process $1 and its threads.
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Waits until process $1 has used no CPU for 1 s (five samples 0.2 s apart),
# at most SETTLE_TIMEOUT seconds; prints the seconds waited.
settle() {
    local pid=$1 last now quiet=0 i
    last=$(cpu_ticks "$pid")
    for ((i = 0; i < SETTLE_TIMEOUT * 5; i++)); do
        sleep 0.2
        now=$(cpu_ticks "$pid")
        if [ "$now" = "$last" ]; then
            quiet=$((quiet + 1))
            [ "$quiet" -ge 5 ] && break
        else
            quiet=0
        fi
        last=$now
    done
    awk -v i="$i" 'BEGIN { printf "%.1f", (i + 1) * 0.2 }'
}

# Installs Debian's postfix if missing (no configuration: no system instance
# starts), and sets PF_VERSION.
install_postfix() {
    if ! [ -x /usr/sbin/postfix ]; then
        say "installing Postfix from Debian (no configuration, not started)"
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >"$WORK/apt.log" 2>&1 || {
            apt-get update -q >>"$WORK/apt.log" 2>&1
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >>"$WORK/apt.log" 2>&1
        } || { tail -20 "$WORK/apt.log" >&2; die "cannot install postfix"; }
    fi
    PF_VERSION=$(postconf -d -h mail_version 2>/dev/null || echo "?")
}

# Stops the private Postfix of config directory PF_CONF if PF_STARTED.
stop_postfix() {
    if [ "$PF_STARTED" = 1 ]; then
        local master
        master=$(tr -dc 0-9 <"$PF/queue/pid/master.pid" 2>/dev/null || true)
        postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
        if [ -n "$master" ]; then stop_pid "$master"; fi
        PF_STARTED=0
    fi
}

# Writes a Tern configuration to $1 for a benchmark: data directory $2,
# SMTP on 127.0.0.1:$3, HTTP on 127.0.0.1:$4 and, when $5 is given, IMAP
# on 127.0.0.1:$5; no other listener; sender checks and the spam filter
# off (nothing to ask DNS, no score fields), as in the tests.
write_tern_bench_conf() {
    local file=$1 data=$2 smtp=$3 http=$4 imap=${5:-}
    local imap_list="[]"
    [ -n "$imap" ] && imap_list="[\"127.0.0.1:$imap\"]"
    cat >"$file" <<CONF
hostname = "tern.bench.local"
data_dir = "$data"
[listen]
smtp = ["127.0.0.1:$smtp"]
submission = []
submissions = []
imap = $imap_list
imaps = []
pop3 = []
pop3s = []
http = ["127.0.0.1:$http"]
https = []
[inbound]
spf = "off"
dkim = "off"
dmarc = "off"
arc = "off"
[spam]
enabled = false
CONF
}
