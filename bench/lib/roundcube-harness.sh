# bench/lib/roundcube-harness.sh — Debian's Roundcube webmail as a private
# instance in front of an IMAP server already listening on loopback: its
# install, a config, database, logs and temp of its own in one directory,
# `php -S` on loopback as the web server, and a browser-like login that
# hands back the session cookies (for curl or a headless browser). Nothing
# under /etc is written or read for the instance. Sourced after common.sh
# (or dovecot-harness.sh) and the script's say and die; not meant to run
# alone.
#
#   install_roundcube                     packages, if missing
#   start_roundcube DIR HTTP_PORT IMAP_PORT   sets RC_PID, RC_DIR, RC_BASE
#   stop_roundcube
#   roundcube_login_cookie BASE USER PASSWORD   prints "name=value; ..."
#
# RC_PHP_WORKERS (default 4): PHP_CLI_SERVER_WORKERS for `php -S`, so that a
# browser's parallel asset requests are not served one at a time.

# stop_pid and wait_port come from common.sh; load it only if nobody did,
# as sourcing it again would reset TERN_PID and CHILD_PID.
if ! declare -F wait_port >/dev/null; then
    # shellcheck source=common.sh
    . "$(dirname "${BASH_SOURCE[0]}")/common.sh"
fi

RC_PID=""
RC_DIR=""
RC_BASE=""
RC_TRAPPED=0

# The PHP the packages are for ("php8.2"): the installed one when there is
# one, so the extensions match its binary, else Debian's candidate.
roundcube_php() {
    if command -v php >/dev/null; then
        php -r 'echo "php", PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;'
    else
        apt-cache depends php-cli 2>/dev/null | sed -n 's/^ *Depends: \(php[0-9.]*\)-cli$/\1/p' | head -1 || true
    fi
}

# True when Debian package $1 is installed (a held one too).
deb_installed() {
    case "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" in *" ok installed") return 0 ;; esac
    return 1
}

# Installs roundcube-core with its SQLite backend and the PHP CLI if missing.
# Nothing that listens comes in: roundcube-core depends on the `php`
# metapackage, whose php8.x needs "libapache2-mod-php8.x | php8.x-fpm |
# php8.x-cgi", and apt would pick the first, bringing apache2-bin (and the
# postinst would enable an Apache conf). Asking for php8.x-cgi in the same
# transaction satisfies it without Apache or an FPM service; the metapackage
# php-cgi does not, hence the versioned name. debconf answers keep
# dbconfig-common from making a system database and the postinst from
# touching web servers; a policy-rc.d of 101 (only for the install) keeps
# the package's systemd timers from being started.
install_roundcube() {
    local phpv pkgs p apache missing="" log=${WORK:-/tmp}/apt-roundcube.log policy=/usr/sbin/policy-rc.d
    phpv=$(roundcube_php)
    [ -n "$phpv" ] || die "cannot tell which PHP Debian has (apt-get update first?)"
    # roundcube-core brings php-intl, -mbstring, -xml (dom), -json; php-common
    # has ctype, fileinfo, iconv, pdo; pdo_sqlite is php-sqlite3's.
    pkgs="roundcube-core roundcube-sqlite3 sqlite3 php-cli $phpv-cgi php-sqlite3 php-intl php-mbstring php-xml"
    for p in $pkgs; do
        deb_installed "$p" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        apache=$(deb_installed apache2-bin && echo yes || true)
        say "installing Roundcube from Debian:$missing (no web server, no service)"
        debconf-set-selections <<'SEL'
roundcube-core roundcube/dbconfig-install boolean false
roundcube-core roundcube/reconfigure-webserver multiselect
roundcube-core roundcube/restart-webserver boolean false
SEL
        # In a subshell so that its EXIT trap puts policy-rc.d back even
        # when apt fails or the script is interrupted.
        (
            saved=""
            if ! { [ -x "$policy" ] && { "$policy" roundcube start >/dev/null 2>&1; [ $? = 101 ]; }; }; then
                if [ -e "$policy" ]; then saved=$(mktemp); cp -a "$policy" "$saved"; fi
                trap 'rm -f "$policy"; if [ -n "$saved" ]; then mv -f "$saved" "$policy"; fi' EXIT
                trap 'exit 130' INT TERM
                printf '#!/bin/sh\nexit 101\n' >"$policy"
                chmod 755 "$policy"
            fi
            # shellcheck disable=SC2086
            inst() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >>"$log" 2>&1; }
            inst || { apt-get update -q >>"$log" 2>&1 && inst; }
        ) || { tail -20 "$log" >&2; die "cannot install Roundcube (log: $log)"; }
        # Should a later Debian resolve the alternative otherwise: apache2
        # (the package with the service) is not a dependency, only
        # apache2-bin, which starts nothing; but say so.
        if [ -z "$apache" ] && deb_installed apache2-bin; then
            say "note: the install pulled in apache2-bin (no service, nothing listens)"
        fi
    fi
    # Not `php -m | grep -q`: under pipefail grep's early exit fails php.
    php -r 'exit(extension_loaded("pdo_sqlite") && extension_loaded("intl") ? 0 : 1);' \
        || die "PHP lacks pdo_sqlite or intl after the install"
    [ -f /usr/share/roundcube/SQL/sqlite.initial.sql ] || die "no Roundcube SQLite schema"
}

# A private Roundcube in $1 against IMAP on 127.0.0.1:$3, served on
# 127.0.0.1:$2. Debian's document root /var/lib/roundcube/public_html sets
# INSTALL_PATH=/var/lib/roundcube, whose config/ is /etc/roundcube; the
# environment variable ROUNDCUBE_CONFIG_DIR (read by Debian's iniset.php)
# replaces that directory instead of adding to it as RCUBE_CONFIG_PATH
# would, so /etc/roundcube/config.inc.php (and the dbconfig include it
# requires) is never loaded. defaults.inc.php and mimetypes.php are looked
# up in the same directory: links to the packaged ones.
start_roundcube() {
    local dir=$1 http=$2 imap=$3 deskey
    port_busy "$http" && die "port $http is already in use"
    mkdir -p "$dir/config" "$dir/logs" "$dir/temp"
    dir=$(cd "$dir" && pwd)
    ln -sf /etc/roundcube/defaults.inc.php /etc/roundcube/mimetypes.php "$dir/config/"
    # 24 characters, as the 3DES key must be (Debian's postinst does the same).
    deskey=$(head -c18 /dev/urandom | base64)
    cat >"$dir/config/config.inc.php" <<CONF
<?php
// Private benchmark instance: nothing here comes from /etc/roundcube.
\$config['db_dsnw'] = 'sqlite:///$dir/roundcube.db?mode=0640';
\$config['imap_host'] = '127.0.0.1:$imap';
\$config['smtp_host'] = '';
\$config['des_key'] = '$deskey';
\$config['log_dir'] = '$dir/logs/';
\$config['temp_dir'] = '$dir/temp/';
\$config['enable_installer'] = false;
\$config['plugins'] = [];
\$config['skin'] = 'elastic';
\$config['language'] = 'en_US';
// The benchmark logs in over and over: no lockout after failed attempts.
\$config['login_rate_limit'] = 0;
CONF
    rm -f "$dir/roundcube.db"
    sqlite3 "$dir/roundcube.db" <"/usr/share/roundcube/SQL/sqlite.initial.sql" \
        || die "cannot initialise $dir/roundcube.db"
    # Its own process group, so that stop_roundcube also ends the workers.
    ROUNDCUBE_CONFIG_DIR=$dir/config PHP_CLI_SERVER_WORKERS=${RC_PHP_WORKERS:-4} \
        setsid php -S "127.0.0.1:$http" -t /var/lib/roundcube/public_html \
        >"$dir/logs/php-server.log" 2>&1 &
    RC_PID=$!
    # shellcheck disable=SC2034 # for the caller
    RC_DIR=$dir
    RC_BASE=http://127.0.0.1:$http
    # Also stop it at exit, before the caller's EXIT trap (its cleanup may
    # delete DIR), which must still see the exit status in $?. Under set -e
    # a bare `(exit $s)` would end the trap there, skipping the caller's
    # cleanup; as an if condition it does not, and each branch starts with
    # $? set to it.
    if [ "$RC_TRAPPED" = 0 ]; then
        local prev
        prev=$(trap -p EXIT)
        prev=${prev#trap -- \'}
        prev=${prev%\' EXIT}
        # shellcheck disable=SC2064,SC2154
        trap "rc_status=\$?; stop_roundcube; if (exit \$rc_status); then ${prev:-:}; else ${prev:-:}; fi" EXIT
        RC_TRAPPED=1
    fi
    wait_port "$http" || { cat "$dir/logs/php-server.log" >&2; die "php -S did not start on $http"; }
    # The first page shows that the config was read and the database opened.
    curl -fsS -o /dev/null "$RC_BASE/" || { tail -20 "$dir/logs/errors.log" >&2 2>/dev/null; die "Roundcube does not answer"; }
}

stop_roundcube() {
    if [ -n "$RC_PID" ]; then
        # setsid ran php in a group of its own whose id is RC_PID.
        kill -TERM -- "-$RC_PID" 2>/dev/null || kill -TERM "$RC_PID" 2>/dev/null || true
        stop_pid "$RC_PID"
        kill -KILL -- "-$RC_PID" 2>/dev/null || true
        wait "$RC_PID" 2>/dev/null || true
        RC_PID=""
    fi
}

# Logs in at Roundcube $1 as a browser does and prints the session cookies
# as a Cookie header value. The login page's GET sets roundcube_sessid and
# puts a _token in the form; Roundcube refuses the POST without both (its
# "invalid request"), and it wants _timezone. Success is a redirect that
# sets roundcube_sessauth; otherwise the page's message is the reason.
roundcube_login_cookie() {
    local base=${1%/} user=$2 pass=$3 jar page token hdr msg
    jar=$(mktemp)
    page=$(curl -sS -c "$jar" -b "$jar" "$base/?_task=login") || { rm -f "$jar"; die "cannot reach $base"; }
    # `|| true` after each pipeline: under pipefail a miss (or head closing
    # the pipe) would end the script here instead of at the clear die.
    token=$(sed -n 's/.*name="_token" value="\([^"]*\)".*/\1/p' <<<"$page" | head -1 || true)
    [ -n "$token" ] || { rm -f "$jar"; die "no _token on the Roundcube login page at $base"; }
    hdr=$(curl -sS -o "$jar.body" -D - -c "$jar" -b "$jar" "$base/?_task=login" \
        --data-urlencode "_task=login" --data-urlencode "_action=login" \
        --data-urlencode "_timezone=UTC" --data-urlencode "_url=" \
        --data-urlencode "_user=$user" --data-urlencode "_pass=$pass" \
        --data-urlencode "_token=$token") || { rm -f "$jar" "$jar.body"; die "login POST to $base failed"; }
    if ! grep -qi '^set-cookie: roundcube_sessauth=[^-]' <<<"$hdr"; then
        msg=$(grep -o 'display_message("[^"]*"' "$jar.body" | head -1 | cut -d'"' -f2 || true)
        rm -f "$jar" "$jar.body"
        die "Roundcube login as $user failed: ${msg:-$(head -1 <<<"$hdr")}"
    fi
    # Netscape jar lines: domain, flag, path, secure, expiry, name, value
    # (HttpOnly ones start "#HttpOnly_", still seven fields); "-del-" is
    # Roundcube's deleted cookie.
    awk -F'\t' 'NF >= 7 && $7 != "-del-" { printf "%s%s=%s", sep, $6, $7; sep = "; " } END { print "" }' "$jar"
    rm -f "$jar" "$jar.body"
}
