#!/usr/bin/env bash
# Fuzzes a live booking-server against its own OpenAPI document (/openapi.json) with
# schemathesis (PyPI). Not part of `cargo test`.
#
#   pip install schemathesis               # once
#   scripts/schemathesis.sh                # or add schemathesis options: --max-examples 500 --seed 1
#
# Starts a release build on a fresh temporary database with the demo catalog, runs every phase
# (examples, coverage, fuzzing, stateful) with every check but positive_data_acceptance — that
# one calls documented business answers to schema-valid requests failures (422
# idempotency_key_reused for a reused key, 400 invalid_amount over the max charge, 400 for an
# Idempotency-Key with a space). Hooks: scripts/schemathesis_hooks.py. Then prints how many
# requests the server answered and how many of them were 5xx (from its /metrics).
# Exit status: schemathesis's, or 1 if any answer was a 5xx.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v schemathesis >/dev/null || {
    echo "schemathesis not found: pip install schemathesis" >&2
    exit 2
}
cargo build --release --quiet --bin booking-server

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

./target/release/booking-server --db "$work/booking.db" --addr 127.0.0.1:0 --demo \
    --max-active 1000000 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/server.out" 2>/dev/null && break
    sleep 0.1
done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/server.out" | head -n 1)
[ -n "$url" ] || { echo "the server did not start:" >&2; cat "$work/server.err" >&2; exit 1; }
echo "booking-server at $url"

status=0
BOOKING_URL="$url" SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=scripts \
    schemathesis run "$url/openapi.json" \
    --checks all --exclude-checks positive_data_acceptance \
    --max-examples 200 "$@" || status=$?

python3 - "$url" <<'EOF' || status=1
import re, sys, urllib.request
text = urllib.request.urlopen(sys.argv[1] + "/metrics").read().decode()
total = fivexx = 0
for line in text.splitlines():
    m = re.match(r'booking_http_requests_total\{.*status="([^"]+)"\} (\d+)$', line)
    if m:
        total += int(m.group(2))
        fivexx += int(m.group(2)) if m.group(1).startswith("5") else 0
print(f"the server answered {total} requests; 5xx answers: {fivexx}")
sys.exit(1 if fivexx else 0)
EOF
exit "$status"
