#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests, in a directory of its own:
#   scripts/postgres-test-cluster.sh start DIR   prints the URL to give in
#                                                 TERN_TEST_POSTGRES
#   scripts/postgres-test-cluster.sh restart DIR restarts it (fast shutdown:
#                                                 sessions are cut, as in a failover)
#   scripts/postgres-test-cluster.sh stop DIR    stops it (DIR is removed)
# Uses Debian's PostgreSQL (package postgresql); as root, the server runs
# as the package's `postgres` user, since PostgreSQL refuses to run as root.
# Trust authentication on 127.0.0.1 only, and fsync off: the tests check
# Tern, not the disk under PostgreSQL. TERN_PG_FSYNC=on keeps PostgreSQL's
# durable defaults (the benchmark sets it).
# TLS is on, with a certificate for 127.0.0.1 from a CA of the cluster's
# own, DIR/ca.pem (the tests connect both unchecked and checked against
# it); TERN_PG_SSL=off leaves it off (the benchmark, to compare with
# earlier figures).
set -euo pipefail
action=${1:?start or stop}
dir=${2:?directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
durability="-c fsync=off -c full_page_writes=off"
[ "${TERN_PG_FSYNC:-off}" = on ] && durability="-c fsync=on"
case "$action" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  ssl=
  if [ "${TERN_PG_SSL:-on}" = on ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=Tern test CA" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
      -CAcreateserial -days 3 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
    rm -f "$dir/ca.key" "$dir/server.csr" "$dir/ca.srl"
    chmod 600 "$dir/server.key"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/server.key" "$dir/server.crt"
    ssl="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
  fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 $durability $ssl -c shared_buffers=128MB ${TERN_PG_OPTS:-}" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  echo "postgres://postgres@127.0.0.1:$port/postgres"
  ;;
restart)
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  ;;
stop)
  if [ -d "$dir/data" ]; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|restart|stop DIR" >&2; exit 2 ;;
esac
