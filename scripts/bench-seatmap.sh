#!/usr/bin/env bash
# Seat maps of big halls over HTTP, in one run so the ratios hold (docs/API.md §6.1): a
# SEATS-seat map in full, the same map asked with If-None-Match (304), and a `since` diff after
# one change, each against GET /healthz. wrk -t2 on loopback, as the figures in BENCHMARKS.md.
#
# usage: scripts/bench-seatmap.sh [--seats 5000] [--duration 4s] [--connections 32]
#                                 [--server PATH-TO-booking-server]  (to measure another build)
# With --server, the database is prepared by the booking-load beside that server (if there is
# one), so that its schema is the one that server knows; --load PATH names another.
set -euo pipefail
cd "$(dirname "$0")/.."
SEATS=5000 DURATION=4s CONNS=32 SERVER_BIN= LOAD_BIN= PORT=${BOOKING_BENCH_PORT:-18081}
while [ $# -gt 0 ]; do
  case "$1" in
    --seats) SEATS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --server) SERVER_BIN=$2; shift 2 ;;
    --load) LOAD_BIN=$2; shift 2 ;;
    *) echo "usage: $0 [--seats N] [--duration 4s] [--connections 32] [--server BIN] [--load BIN]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk not found (Debian: apt-get install -y wrk)" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 2; }
cargo build --release --features "server bench" --bin booking-server --bin booking-load
BIN=target/release
if [ -z "$LOAD_BIN" ] && [ -n "$SERVER_BIN" ] && [ -x "$(dirname "$SERVER_BIN")/booking-load" ]; then
  LOAD_BIN=$(dirname "$SERVER_BIN")/booking-load
fi
SERVER_BIN=${SERVER_BIN:-$BIN/booking-server}
LOAD_BIN=${LOAD_BIN:-$BIN/booking-load}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/booking-seatmap-bench.XXXXXX")
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT

"$LOAD_BIN" prepare --db "$WORK/map.db" --out "$WORK/data" --journey-concerts 0 \
  --listing-seats "$SEATS" --hold-seats 4 --pay-tickets 4 --tokens 2 >/dev/null
"$SERVER_BIN" --db "$WORK/map.db" --addr "127.0.0.1:$PORT" --log warn >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

read -r TOKEN MAP <"$WORK/data/listing.txt"
URL="http://127.0.0.1:$PORT"
run() { # label mode [extra]
  local out="$WORK/$2.txt"
  sync
  wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s scripts/wrk/booking.lua "$URL" -- "$2" \
    "$WORK/data/listing.txt" ${3:+"$3"} >"$out"
  local rps; rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$out")
  local st; st=$(sed -n 's/^statuses: //p' "$out")
  printf '| %s | %s | %s |\n' "$1" "$rps" "$st"
  eval "RPS_$2=$rps"
}
BYTES=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL$MAP" | wc -c)
ETAG=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $TOKEN" "$URL$MAP" | tr -d '\r' \
  | awk -F': ' 'tolower($1) == "etag" { print $2 }')
echo "## Seat maps: $SEATS seats ($BYTES bytes), wrk -t2 -c$CONNS -d$DURATION"
echo
echo "| request | req/s | statuses |"
echo "| --- | --- | --- |"
run "GET /healthz" healthz
run "GET the map in full" listing
if [ -n "$ETAG" ]; then
  run "GET the map, If-None-Match: current ETag (304)" map304 "$ETAG"
  # One change: another user holds the map's first seat; then diffs since the old version.
  read -r OTHER _ < <(sed -n 2p "$WORK/data/tokens.txt" 2>/dev/null || true)
  OTHER=${OTHER:-$(awk 'NR==1 {print $1}' "$WORK/data/tokens.txt")}
  SHOW=${MAP##*:}
  SEAT=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL$MAP" | grep -o '"id":[0-9]*' \
    | awk -F: 'NR == 1 { id = $2 } END { print id }')  # reads all: no SIGPIPE under pipefail
  curl -s -o /dev/null -H "Authorization: Bearer $OTHER" -H 'Content-Type: application/json' \
    -d "{\"showtime_id\": $SHOW, \"seat_id\": $SEAT}" "$URL/tickets"
  run "GET the map ?since= the version before one change" since "${ETAG//\"/}"
  DIFF=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL$MAP?since=${ETAG//\"/}")
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
  echo
  echo "- 304 / healthz = $(ratio "$RPS_map304" "$RPS_healthz") (target ≥ 0.5)"
  echo "- since diff / healthz = $(ratio "$RPS_since" "$RPS_healthz") (target ≥ 0.5); the diff: $(printf %s "$DIFF" | wc -c) bytes, $(printf %s "$DIFF" | grep -o '"id":' | wc -l) seat(s)"
else
  echo
  echo "- this server sends no ETag: full maps only"
fi
