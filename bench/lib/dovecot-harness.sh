# bench/lib/dovecot-harness.sh — what the Dovecot comparisons share: a
# temporary directory and its cleanup, stopping Dovecot, installing it, and
# writing Maildirs (with the helpers of common.sh). Sourced by
# compare-dovecot-*.sh after they have set SCRIPT_NAME, KEEP, START_TIMEOUT,
# SETTLE_TIMEOUT and STOP_TIMEOUT; not meant to run alone.

# --- temporary directory and cleanup ------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/$SCRIPT_NAME.XXXXXX")
[ -d "$WORK" ] || die "cannot make a temporary directory"
# Dovecot's login (dovenull) and mail (VMAIL_ID) processes must traverse it.
chmod 755 "$WORK"
# Whatever a tool leaves in its working directory lands here, not in the tree.
cd "$WORK"
DV=$WORK/dovecot
DV_CONF=$DV/dovecot.conf
TERN_DIR=$WORK/tern
DV_STARTED=0
# policy-rc.d put in place for the install, and where the original went.
POLICY=/usr/sbin/policy-rc.d
POLICY_OURS=0
POLICY_SAVED=""

stop_dovecot() {
    if [ "$DV_STARTED" = 1 ]; then
        local master
        master=$(tr -dc 0-9 <"$DV/run/master.pid" 2>/dev/null || true)
        if [ -n "$master" ]; then
            kill -TERM "$master" 2>/dev/null || true
            stop_pid "$master"
        fi
        DV_STARTED=0
    fi
}

restore_policy() {
    if [ "$POLICY_OURS" = 1 ]; then
        rm -f "$POLICY"
        if [ -n "$POLICY_SAVED" ]; then mv -f "$POLICY_SAVED" "$POLICY"; fi
        POLICY_OURS=0
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CHILD_PID" ]; then
        kill -TERM "$CHILD_PID" 2>/dev/null || true
        stop_pid "$CHILD_PID"
    fi
    restore_policy
    stop_tern
    # What a script runs beside the two (e.g. Roundcube's PHP server).
    if declare -F stop_extra >/dev/null; then stop_extra; fi
    stop_dovecot
    if [ "$rc" != 0 ]; then
        echo "$SCRIPT_NAME: stopped (exit $rc); servers stopped" >&2
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

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# --- Dovecot: install without starting the system service -----------------------

# The system instance's master, if one runs.
system_dovecot() {
    local pid
    pid=$(tr -dc 0-9 </run/dovecot/master.pid 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

# Installs Debian's dovecot-core and dovecot-$1d (pop3 or imap) if missing,
# keeping the system service from starting (policy-rc.d), and sets
# DV_VERSION.
install_dovecot() {
    local pkg="dovecot-${1}d" BEFORE AFTER
    if ! [ -x /usr/sbin/dovecot ] || ! [ -x "/usr/lib/dovecot/$1" ]; then
        say "installing Dovecot from Debian (dovecot-core, $pkg; service not started)"
        BEFORE=$(system_dovecot)
        # invoke-rc.d asks policy-rc.d; 101 means "do not start services".
        if ! { [ -x "$POLICY" ] && { "$POLICY" dovecot start >/dev/null 2>&1; [ $? = 101 ]; }; }; then
            if [ -e "$POLICY" ]; then
                POLICY_SAVED=$WORK/policy-rc.d.orig
                cp -a "$POLICY" "$POLICY_SAVED"
            fi
            POLICY_OURS=1
            printf '#!/bin/sh\nexit 101\n' >"$POLICY"
            chmod 755 "$POLICY"
        fi
        apt_install() {
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                dovecot-core "$pkg" >>"$WORK/apt.log" 2>&1
        }
        apt_install || { apt-get update -q >>"$WORK/apt.log" 2>&1 && apt_install; } || {
            tail -20 "$WORK/apt.log" >&2
            die "cannot install dovecot-core and $pkg"
        }
        restore_policy
        # Should policy-rc.d have been ignored: stop what the install started.
        AFTER=$(system_dovecot)
        if [ -n "$AFTER" ] && [ -z "$BEFORE" ]; then
            say "the install started the system Dovecot (pid $AFTER): stopping it"
            kill -TERM "$AFTER" 2>/dev/null || true
            stop_pid "$AFTER"
        fi
    fi
    DV_VERSION=$(dovecot --version 2>/dev/null | awk '{ print $1 }')
    [ -n "$DV_VERSION" ] || die "dovecot does not run"
}

# --- configuration ----------------------------------------------------------------

# Writes the start of a private instance's configuration to $DV_CONF:
# directories under $DV, loopback, protocols $1, no SSL, plaintext logins
# with the mechanisms $2, users from $DV/passwd, Maildirs. The caller
# appends its own settings and listeners.
write_dovecot_conf_base() {
    cat >"$DV_CONF" <<CONF
# Private benchmark instance: nothing here is read from /etc/dovecot.
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
listen = 127.0.0.1
protocols = $1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = $2
passdb {
  driver = passwd-file
  args = $DV/passwd
}
userdb {
  driver = passwd-file
  args = $DV/passwd
}
mail_location = maildir:~/Maildir
CONF
}

# --- messages -------------------------------------------------------------------

# Writes $3 distinct messages of about $2 bytes (counted with CRLF line ends,
# as smtp-load counts) into the Maildir folder $1/new, as LF files named as
# Dovecot's LDA names them: <time>.M<n>P<pid>.<host>,S=<file size>,W=<size
# with CRLF>. Headers like smtp-load's (To: $4, Subject: "$5 <n>"), a body
# of varied words.
make_maildir() {
    local dir=$1 size=$2 count=$3 to=$4 subject=$5
    mkdir -p "$dir/cur" "$dir/new" "$dir/tmp"
    awk -v dir="$dir/new" -v size="$size" -v count="$count" -v now="$(date +%s)" -v pid=$$ \
        -v to="$to" -v subject="$subject" '
    BEGIN {
        nw = split("the mail server delivers message to every mailbox of our domain quickly " \
            "and safely after checking its envelope with care report meeting tomorrow budget " \
            "invoice attached please review draft schedule project update thanks regards " \
            "question answer weekly summary release notes customer order shipping status " \
            "account password reset calendar invite agenda minutes follow up on this thread " \
            "before friday lunch office travel plans holiday team", W, " ")
        for (n = 0; n < count; n++) {
            srand(n + 1)
            k = 0
            L[++k] = "From: Load Generator <sender@load.example>"
            L[++k] = "To: " to
            L[++k] = "Subject: " subject " " n
            L[++k] = "Message-ID: <" n "." now "." pid "@load.example>"
            L[++k] = "Date: Mon, 2 Nov 2026 10:00:00 +0000"
            L[++k] = "MIME-Version: 1.0"
            L[++k] = "Content-Type: text/plain; charset=us-ascii"
            L[++k] = ""
            crlf = 0
            for (i = 1; i <= k; i++) crlf += length(L[i]) + 2
            line = ""
            while (crlf + length(line) + 2 < size) {
                w = W[int(rand() * nw) + 1]
                if (length(line) + length(w) + 1 > 72) {
                    L[++k] = line
                    crlf += length(line) + 2
                    line = ""
                }
                line = (line == "") ? w : line " " w
            }
            if (line != "") { L[++k] = line; crlf += length(line) + 2 }
            f = sprintf("%s/%d.M%dP%d.bench.local,S=%d,W=%d", dir, now, n, pid, crlf - k, crlf)
            for (i = 1; i <= k; i++) print L[i] > f
            close(f)
        }
    }'
}

# A private Dovecot serving IMAP on 127.0.0.1:$1 for one user, "big" with
# PASSWORD, whose INBOX is a Maildir of MESSAGES messages written by
# `$BENCH maildir` (the messages `jmap-bench fill` gives Tern).
start_dovecot_maildir() {
    local port=$1
    say "Dovecot $DV_VERSION: private instance in $DV, the same $MESSAGES messages"
    mkdir -p "$DV/run" "$DV/state" "$DV/home/big"
    echo "big:{PLAIN}$PASSWORD:$VMAIL_ID:$VMAIL_ID::$DV/home/big::" >"$DV/passwd"
    chown root:dovecot "$DV/passwd"
    chmod 640 "$DV/passwd"
    write_dovecot_conf_base imap "plain login"
    cat >>"$DV_CONF" <<CONF
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
    "$BENCH" maildir --dir "$DV/home/big/Maildir" --messages "$MESSAGES"
    chown -R "$VMAIL_ID:$VMAIL_ID" "$DV/home"
    DV_STARTED=1
    dovecot -c "$DV_CONF" 2>"$DV/start.err" || { cat "$DV/start.err" >&2; die "dovecot did not start"; }
    wait_port "$port" || die "dovecot is not listening on $port"
}
