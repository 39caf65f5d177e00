#!/usr/bin/env bash
# compare-postgres-nodes.sh — how Tern scales with nodes on one PostgreSQL
# database (issue 16), and what a PostgreSQL node costs against SQLite.
#
# Every Tern node runs in a CPU cgroup of its own with the same cap
# (--node-cpu cores, default 0.25), PostgreSQL in another (--pg-cpu,
# default 0.75), the load generators outside both. With the cap per node
# fixed, the throughput of 1, 2 and 3 nodes shows how the work spreads;
# the same cap on one SQLite node is the anchor for "one PostgreSQL node
# within 2x of SQLite".
#
# For each configuration (SQLite x1, PostgreSQL x1, x2, x3), on fresh data:
# - SMTP: one `smtp-load` per node, all at once, each with
#   --sessions-per-node sessions sending --messages-per-node messages of
#   --size bytes round robin to --users accounts; the rate is all accepted
#   messages over the wall time of the whole phase (a 250 means stored);
# - IMAP: one `imap-load --mode mixed` per node, all at once, each with
#   --clients-per-node clients for --seconds (the mixed mail-client
#   workload of compare-dovecot-imap.sh over the mail the SMTP phase
#   left); the rate is the sum of operations per second.
# Reported per phase: the rate, its ratio to one PostgreSQL node, and the
# share of the phase each cgroup spent throttled (a group throttled most
# of the time is what saturates: the nodes' CPU or the database's).
#
# PostgreSQL is a private cluster (scripts/postgres-test-cluster.sh) with
# fsync on; everything lives in one temporary directory, removed on exit.
# Loopback only. Needs root (cgroups; the cluster runs as user postgres).
#
# Usage: bench/compare-postgres-nodes.sh [--node-cpu C] [--pg-cpu C]
#          [--messages-per-node N] [--sessions-per-node N] [--clients-per-node N]
#          [--seconds S] [--users N] [--size BYTES] [--keep]
# Environment: SKIP_BUILD=1 uses the binaries as built.

set -euo pipefail

NODE_CPU=0.25
PG_CPU=0.75
MESSAGES=1500
SESSIONS=8
CLIENTS=8
SECONDS_RUN=20
USERS=20
SIZE=5120
KEEP=0
PASSWORD=bench-password-1
DOMAIN=bench.test
START_TIMEOUT=60
STOP_TIMEOUT=15
LOAD_TIMEOUT=600

while [ $# -gt 0 ]; do
    case "$1" in
        --node-cpu) NODE_CPU=$2; shift 2 ;;
        --pg-cpu) PG_CPU=$2; shift 2 ;;
        --messages-per-node) MESSAGES=$2; shift 2 ;;
        --sessions-per-node) SESSIONS=$2; shift 2 ;;
        --clients-per-node) CLIENTS=$2; shift 2 ;;
        --seconds) SECONDS_RUN=$2; shift 2 ;;
        --users) USERS=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TERN=$TARGET/release/tern
LOAD=$TARGET/release/smtp-load
IMAP=$TARGET/release/imap-load
source "$ROOT/bench/lib/common.sh"

say() { echo "== $*" >&2; }
die() { echo "compare-postgres-nodes: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (cgroups, and PostgreSQL runs as user postgres)"

# --- CPU cgroups: v2 (cpu.max) or v1 (cpu.cfs_quota_us) ------------------------

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CG_ROOT=/sys/fs/cgroup/tern-bench-$$
    CG_V=2
elif [ -d /sys/fs/cgroup/cpu ]; then
    CG_ROOT=/sys/fs/cgroup/cpu/tern-bench-$$
    CG_V=1
else
    die "no cpu cgroup controller mounted"
fi
mkdir "$CG_ROOT" || die "cannot create a cgroup under $(dirname "$CG_ROOT")"
[ "$CG_V" = 2 ] && echo +cpu >"$CG_ROOT/cgroup.subtree_control" 2>/dev/null || true

# make_group NAME CORES: a cgroup capped at CORES CPUs.
make_group() {
    local dir=$CG_ROOT/$1 quota
    mkdir -p "$dir"
    quota=$(awk -v c="$2" 'BEGIN { printf "%d", c * 100000 }')
    if [ "$CG_V" = 2 ]; then
        echo "$quota 100000" >"$dir/cpu.max"
    else
        echo 100000 >"$dir/cpu.cfs_period_us"
        echo "$quota" >"$dir/cpu.cfs_quota_us"
    fi
}
# join_group NAME PID: moves a process (all its threads) into the group.
join_group() { echo "$2" >"$CG_ROOT/$1/cgroup.procs"; }
# throttled NAME: nanoseconds the group has spent throttled so far.
throttled() {
    if [ "$CG_V" = 2 ]; then
        awk '/^throttled_usec/ { print $2 * 1000 }' "$CG_ROOT/$1/cpu.stat"
    else
        awk '/^throttled_time/ { print $2 }' "$CG_ROOT/$1/cpu.stat"
    fi
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tern-pg-nodes.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    bash "$ROOT/scripts/postgres-test-cluster.sh" stop "$WORK/pg" 2>/dev/null || true
    # A group can go only once empty; its processes are gone now.
    find "$CG_ROOT" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
    rmdir "$CG_ROOT" 2>/dev/null || true
    if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building Tern, smtp-load and imap-load (release)"
    (cd "$ROOT" && cargo build --release -q -p tern -p tern-bench) || die "build failed"
fi

say "PostgreSQL: a private cluster, fsync on, capped at $PG_CPU CPU"
ADMIN=$(TERN_PG_FSYNC=on TERN_PG_SSL=off bash "$ROOT/scripts/postgres-test-cluster.sh" start "$WORK/pg")
make_group pg "$PG_CPU"
POSTMASTER=$(head -1 "$WORK/pg/data/postmaster.pid")
join_group pg "$POSTMASTER"
for pid in $(pgrep -P "$POSTMASTER"); do join_group pg "$pid"; done
PG_VERSION=$(psql "$ADMIN" -Atc 'SHOW server_version')
for i in 1 2 3; do make_group "node$i" "$NODE_CPU"; done

USER_FILE=$WORK/users.txt
for ((i = 1; i <= USERS; i++)); do printf 'u%02d@%s\n' "$i" "$DOMAIN"; done >"$USER_FILE"

# node_conf DIR N STORE_TOML: a node's configuration, ports from 24000+10N.
node_conf() {
    local dir=$1 n=$2 store=$3 base=$((24000 + 10 * $2))
    mkdir -p "$dir/data"
    write_tern_bench_conf "$dir/tern.toml" "$dir/data" "$base" "$((base + 1))" "$((base + 2))"
    cat >>"$dir/tern.toml" <<EOF
[limits]
max_connections = 2000
max_connections_per_ip = 2000
max_auth_failures = 1000000
$store
EOF
}

# run_config NAME BACKEND NODES: fresh data, NODES nodes, both phases;
# prints "NAME smtp_rate imap_rate smtp_throttle% imap_throttle%".
run_config() {
    local name=$1 backend=$2 nodes=$3 store="" i dir
    if [ "$backend" = postgres ]; then
        psql "$ADMIN" -qc "CREATE DATABASE $name" >/dev/null
        store="[store]
backend = \"postgres\"
url = \"${ADMIN%/*}/$name\"
pool_size = 16"
    fi
    for ((i = 1; i <= nodes; i++)); do
        node_conf "$WORK/$name/n$i" "$i" "$store"
    done
    local tern1=("$TERN" --config "$WORK/$name/n1/tern.toml")
    "${tern1[@]}" init >/dev/null
    "${tern1[@]}" domain add "$DOMAIN" >/dev/null
    while read -r user; do
        echo "$PASSWORD" | "${tern1[@]}" account add "$user" --password-stdin >/dev/null
    done <"$USER_FILE"
    local node_pids=()
    for ((i = 1; i <= nodes; i++)); do
        dir=$WORK/$name/n$i
        [ "$i" = 1 ] || "$TERN" --config "$dir/tern.toml" init >/dev/null
        RUST_LOG=warn "$TERN" --config "$dir/tern.toml" serve 2>>"$dir/tern.log" &
        PIDS+=($!)
        node_pids+=($!)
        join_group "node$i" "$!"
        wait_port $((24000 + 10 * i + 2)) || { tail "$dir/tern.log" >&2; die "node $i did not start"; }
    done

    # SMTP: one smtp-load per node, all at once.
    local t0 t1 p0 p1 n0 n1 pids=() accepted=0 out
    p0=$(throttled pg); n0=$(throttled node1)
    t0=$(date +%s.%N)
    for ((i = 1; i <= nodes; i++)); do
        "$LOAD" --server "127.0.0.1:$((24000 + 10 * i))" --messages "$MESSAGES" \
            --concurrency "$SESSIONS" --size "$SIZE" --recipients "$USER_FILE" \
            --from sender@load.example --max-seconds "$LOAD_TIMEOUT" --json \
            >"$WORK/$name/smtp-$i.json" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || die "smtp-load failed ($name)"; done
    t1=$(date +%s.%N)
    p1=$(throttled pg); n1=$(throttled node1)
    for ((i = 1; i <= nodes; i++)); do
        out=$(cat "$WORK/$name/smtp-$i.json")
        accepted=$((accepted + $(field "$out" accepted)))
    done
    local smtp_rate smtp_pg smtp_node
    smtp_rate=$(awk -v a="$accepted" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", a / (t1 - t0) }')
    smtp_pg=$(awk -v a="$p0" -v b="$p1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / 1e9 / (t1 - t0) }')
    smtp_node=$(awk -v a="$n0" -v b="$n1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / 1e9 / (t1 - t0) }')

    # IMAP: one imap-load per node, all at once.
    pids=()
    p0=$(throttled pg); n0=$(throttled node1)
    t0=$(date +%s.%N)
    for ((i = 1; i <= nodes; i++)); do
        "$IMAP" --server "127.0.0.1:$((24000 + 10 * i + 2))" --users "$USER_FILE" \
            --password "$PASSWORD" --clients "$CLIENTS" --seconds "$SECONDS_RUN" --json \
            >"$WORK/$name/imap-$i.json" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || die "imap-load failed ($name)"; done
    t1=$(date +%s.%N)
    p1=$(throttled pg); n1=$(throttled node1)
    local imap_rate=0 imap_pg imap_node
    for ((i = 1; i <= nodes; i++)); do
        out=$(cat "$WORK/$name/imap-$i.json")
        imap_rate=$(awk -v a="$imap_rate" -v b="$(field "$out" ops_per_s)" 'BEGIN { printf "%.0f", a + b }')
    done
    imap_pg=$(awk -v a="$p0" -v b="$p1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / 1e9 / (t1 - t0) }')
    imap_node=$(awk -v a="$n0" -v b="$n1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / 1e9 / (t1 - t0) }')

    for pid in "${node_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${node_pids[@]}"; do stop_pid "$pid"; wait "$pid" 2>/dev/null || true; done
    PIDS=()
    echo "$name $smtp_rate $imap_rate $smtp_node $smtp_pg $imap_node $imap_pg"
}

ROWS=$WORK/rows.txt
: >"$ROWS"
for config in "sqlite1 sqlite 1" "pg1 postgres 1" "pg2 postgres 2" "pg3 postgres 3"; do
    set -- $config
    say "$1: $3 node(s) on $2"
    run_config "$1" "$2" "$3" | tee -a "$ROWS" >&2
done

# --- summary ----------------------------------------------------------------------

cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "Tern nodes on PostgreSQL $PG_VERSION ($(nproc) CPUs: $cpu_model)"
echo "caps: $NODE_CPU CPU per Tern node, $PG_CPU CPU for PostgreSQL (fsync on)"
echo "SMTP: $SESSIONS sessions x $MESSAGES messages of $SIZE B per node; IMAP: $CLIENTS mixed clients per node for ${SECONDS_RUN}s; $USERS accounts"
echo
awk '
    $1 == "pg1" { s1 = $2; i1 = $3 }
    { row[NR] = $0 }
    END {
        printf "%-9s %10s %8s %10s %8s   %s\n", "config", "SMTP msg/s", "x pg1", "IMAP op/s", "x pg1", "throttled (node1 / postgres), SMTP | IMAP"
        for (n = 1; n <= NR; n++) {
            split(row[n], f, " ")
            printf "%-9s %10d %8.2f %10d %8.2f   %3d%% / %3d%% | %3d%% / %3d%%\n", f[1], f[2], f[2] / s1, f[3], f[3] / i1, f[4], f[5], f[6], f[7]
        }
    }' "$ROWS"
