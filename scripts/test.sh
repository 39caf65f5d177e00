#!/usr/bin/env bash
# The test command (README.md, .ci/run): installs what the tests drive —
# Debian's mail clients with apt-get (as root, only when one is missing)
# and imapflow with npm — then runs every test of the workspace and sums up.
set -euo pipefail
cd "$(dirname "$0")/.."

# The third-party clients the end-to-end tests drive: swaks and curl for
# SMTP, fetchmail and getmail6 for POP3, mbsync (isync) and offlineimap3
# for IMAP (Python's smtplib, poplib and imaplib come with python3);
# Dovecot, the reference the IMAP differential tester compares Tern with;
# aiosmtpd, the scripted SMTP sink outbound delivery is tested against,
# dkimpy, the independent DKIM signer and verifier, pyspf, the independent
# SPF checker (all for Debian's /usr/bin/python3),
# Postfix, a receiving server for outbound delivery (installed without a
# configuration: no system instance starts; the test runs its own), and
# ClamAV's clamd, which the virus test starts with its own signature file,
# and rspamd, which the milter test starts as a milter;
# PostgreSQL, on which the second Store backend and the multi-node tests
# run (a private cluster started below; no system instance is used).
if ! command -v swaks >/dev/null || ! command -v curl >/dev/null || ! perl -MIO::Socket::SSL -e1 2>/dev/null \
   || ! command -v fetchmail >/dev/null || ! command -v getmail >/dev/null \
   || ! command -v mbsync >/dev/null || ! command -v offlineimap >/dev/null \
   || ! command -v dovecot >/dev/null || ! command -v chromium >/dev/null \
   || ! /usr/bin/python3 -c 'import aiosmtpd, dkim, nacl, spf, cryptography, ensurepip, websockets' 2>/dev/null \
   || ! [ -x /usr/sbin/postfix ] || ! [ -x /usr/sbin/clamd ] || ! [ -x /usr/bin/rspamd ] \
   || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v psql >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq swaks libio-socket-ssl-perl libnet-ssleay-perl curl fetchmail getmail6 \
    isync offlineimap3 dovecot-core dovecot-imapd python3-aiosmtpd python3-dkim python3-nacl python3-spf python3-cryptography python3-venv python3-websockets postfix clamav-daemon rspamd chromium postgresql >/dev/null
fi
# With Dovecot installed here, the differential tester must not skip.
export TERN_REQUIRE_DOVECOT=1
# Likewise the Postfix receiver test, the clamd test and the rspamd test.
export TERN_REQUIRE_POSTFIX=1
export TERN_REQUIRE_CLAMD=1
export TERN_REQUIRE_RSPAMD=1

# imapflow (IMAP), jmap-jam (JMAP) and playwright-core (drives Debian's
# chromium; no browser download), pinned in the package.json beside them.
node_dir=crates/tern/tests/e2e/node
want=$(node -p "const d = require('$PWD/$node_dir/package.json').dependencies; [d.imapflow, d['jmap-jam'], d['playwright-core']].join(' ')")
have=$(node -p "['imapflow', 'jmap-jam', 'playwright-core'].map(p => require('$PWD/$node_dir/node_modules/' + p + '/package.json').version).join(' ')" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  npm install --prefix "$node_dir" --no-package-lock --no-audit --no-fund --loglevel=error
fi

# jmapc, the Python JMAP client, pinned, in a virtual environment of
# Debian's Python under target/ (PyPI; nothing installed system-wide).
JMAPC_VERSION=0.4.0
venv=$PWD/target/jmapc-venv
if ! "$venv/bin/python" -c "import importlib.metadata as m; assert m.version('jmapc') == '$JMAPC_VERSION'" 2>/dev/null; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "jmapc==$JMAPC_VERSION"
fi
export TERN_JMAPC_PYTHON=$venv/bin/python
export TERN_REQUIRE_JMAPC=1

# A private PostgreSQL cluster for the PostgreSQL Store tests and the
# multi-node tests (each test makes a database of its own in it), stopped
# and removed when the run ends.
pg_dir=$(mktemp -d)
chmod 755 "$pg_dir"  # the server runs as postgres when we are root
TERN_TEST_POSTGRES=$(bash scripts/postgres-test-cluster.sh start "$pg_dir/cluster")
export TERN_TEST_POSTGRES
export TERN_TEST_POSTGRES_CA="$pg_dir/cluster/ca.pem"
export TERN_REQUIRE_POSTGRES=1

log=$(mktemp)
trap 'rm -f "$log"; bash scripts/postgres-test-cluster.sh stop "$pg_dir/cluster"; rm -rf "$pg_dir"' EXIT
status=0
cargo test --workspace 2>&1 | tee "$log" || status=$?

# cargo prints one "test result" line per test binary, the last usually a
# doc-test run of 0; close with the totals so the whole run is summed up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
