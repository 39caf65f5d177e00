#!/usr/bin/env bash
# bench/flood.sh — Tern's IMAP under a pre-login flood (issue 10): 1,000
# hostile connections from 20 addresses, each sending a command that never
# ends, while one user logs in and out; prints flood-bench's JSON (server
# peak RSS, user session latency). Release build; SKIP_BUILD=1 to reuse one,
# CARGO_TARGET_DIR to point at another build. HOSTILE and SECONDS override.
set -euo pipefail
cd "$(dirname "$0")/.."
START_TIMEOUT=60
STOP_TIMEOUT=10
source bench/lib/common.sh

target=${CARGO_TARGET_DIR:-target}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -q -p tern -p tern-bench
fi
tern="$target/release/tern"
dir=$(mktemp -d)
trap 'stop_tern; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/tern.toml" <<CONF
hostname = "mail.example.test"
data_dir = "$dir/data"
[listen]
smtp = []
submission = []
submissions = []
imap = ["127.0.0.1:$port"]
imaps = []
pop3 = []
pop3s = []
http = []
https = []
CONF
"$tern" --config "$dir/tern.toml" init >/dev/null
"$tern" --config "$dir/tern.toml" domain add example.test >/dev/null
echo bench-password-1 | "$tern" --config "$dir/tern.toml" account add bench@example.test --password-stdin >/dev/null
# The flood needs file descriptors for both ends.
ulimit -n 20000 2>/dev/null || true
"$tern" --config "$dir/tern.toml" serve 2>"$dir/serve.log" &
TERN_PID=$!
wait_port "$port"
"$target/release/flood-bench" --imap "127.0.0.1:$port" --pid "$TERN_PID" \
    --hostile "${HOSTILE:-1000}" --seconds "${SECONDS_RUN:-20}"
