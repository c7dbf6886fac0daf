#!/usr/bin/env bash
# HTTP benchmark of booking-server on loopback, in one run so the ratios hold:
#   1. the raw SQLite baseline (the library benchmark's hold-shaped transaction, 1 thread);
#   2. wrk per endpoint on a prepared database: GET /healthz, GET /token, a 50-seat listing,
#      POST /tickets (distinct free seats, four per user; at wrk -t1 and again at -t2 -c64), POST /points and POST /payments
#      (prepared, funded holds) — payments at 64 connections; the same with four seats in one
#      hold and four tickets in one payment (their own database); then POST /token on an empty
#      database (the server's default max-active), since admission counts the active users;
#   3. the journey driver (booking-load journey) on a fresh catalog with --max-active 32, so
#      that some of the 64 users wait and poll; verify afterwards.
# Each measured run starts on a quiet disk (sync). --warmup adds one second of GET /healthz on
# as many connections first (it used to hide a lost wakeup in tiny_http's connection pool, since
# fixed in vendor/tiny_http; kept to compare). The "busy" column is req/s x mean latency (Little's
# law): far below the connection count, connections sat unserved.
# Prints a Markdown table (VERIFY_LIMIT=600 bounds the final verify, in seconds). Needs wrk (Debian: apt-get install -y wrk). BOOKING_BENCH_KEEP=1
# keeps the databases, wrk outputs and server logs.
#
# --db-url postgres://USER@HOST:PORT runs the same on PostgreSQL: each database above is a
# database of that server (bench_wrk, bench_wrk4, bench_enter, bench_journey; dropped first and
# at the end, with psql, so the role must create and drop databases). There is no SQLite
# baseline then: scripts/bench-pg.sh measures PostgreSQL's raw limit with pgbench and calls this
# script for the HTTP table. --data-scale F prepares F times the wrk data (holds, payments): less
# for an engine slower than the data is sized for (prepare on PostgreSQL takes longer), more
# when a row says it ran out of data (its 401s: that row gives no ratio).
# This script takes no lock: wrap it (flock /tmp/booking-bench.lock scripts/bench-http.sh) when
# others benchmark on the machine; scripts/bench-pg.sh holds that lock around its calls.
#
# usage: scripts/bench-http.sh [--duration 15s] [--connections 50] [--users 64]
#                              [--journey-max-active 32] [--durability full|normal]
#                              [--no-group-commit] [--warmup] [--db-url postgres://...]
#                              [--data-scale 1]
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=15s CONNS=50 USERS=64 JOURNEY_MAX_ACTIVE=32 DURABILITY=full GROUP_COMMIT=on WARMUP=
DB_URL= DATA_SCALE=1
PORT=${BOOKING_BENCH_PORT:-18080}
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --users) USERS=$2; shift 2 ;;
    --journey-max-active) JOURNEY_MAX_ACTIVE=$2; shift 2 ;;
    --durability) DURABILITY=$2; shift 2 ;;
    --no-group-commit) GROUP_COMMIT=off; shift ;;
    --warmup) WARMUP=1; shift ;;
    --no-warmup) WARMUP=; shift ;;
    --db-url) DB_URL=${2%/}; shift 2 ;;
    --data-scale) DATA_SCALE=$2; shift 2 ;;
    *) echo "usage: $0 [--duration 15s] [--connections 50] [--users 64] [--journey-max-active 32] [--durability full|normal] [--no-group-commit] [--warmup] [--db-url postgres://USER@HOST:PORT] [--data-scale 1]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk not found (Debian: apt-get install -y wrk)" >&2; exit 2; }
SECS=${DURATION%s}
case "$DB_URL" in
  '') ENGINE=SQLite ;;
  postgres://*|postgresql://*)
    ENGINE=PostgreSQL
    command -v psql >/dev/null || { echo "psql not found (Debian: apt-get install -y postgresql-client)" >&2; exit 2; }
    # The server part of the URL: a database name or options after it are not taken.
    case "${DB_URL#*://}" in */*|*\?*) echo "--db-url names the server only: postgres://USER@HOST:PORT" >&2; exit 2 ;; esac ;;
  *) echo "--db-url takes a postgres:// URL" >&2; exit 2 ;;
esac
scaled() { awk -v n="$1" -v f="$DATA_SCALE" 'BEGIN { printf "%d", n * f }'; }

cargo build --release --features "server bench" --bin booking-server --bin booking-load
BIN=target/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/booking-http-bench.XXXXXX")
SERVER=
# Where the database called NAME is: a file in $WORK, or a database of the --db-url server.
db() { if [ -n "$DB_URL" ]; then echo "$DB_URL/bench_$1"; else echo "$WORK/$1.db"; fi; }
drop_dbs() {
  [ -n "$DB_URL" ] || return 0
  local name
  for name in wrk wrk4 enter journey; do
    psql -X -q "$DB_URL/postgres" -c "DROP DATABASE IF EXISTS bench_$name WITH (FORCE)" >/dev/null
  done
}
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  if [ -n "${BOOKING_BENCH_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; drop_dbs || true; fi
}
trap cleanup EXIT
drop_dbs

# Server flags (durability only if this server has the flag); warnings go to the log.
FLAGS=(--log warn)
[ "$GROUP_COMMIT" = off ] && FLAGS+=(--no-group-commit)
if "$BIN/booking-server" --help | grep -q -- '--durability'; then
  FLAGS+=(--durability "$DURABILITY")
elif [ "$DURABILITY" != full ]; then
  echo "this booking-server has no --durability flag; only synchronous=FULL can be measured" >&2
  exit 2
fi

start_server() { # DB [more flags]
  local db=$1; shift
  "$BIN/booking-server" --db "$db" --addr "127.0.0.1:$PORT" "${FLAGS[@]}" "$@" \
    >>"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return; fi
    sleep 0.1
  done
  cat "$WORK/server.log" >&2
  echo "booking-server did not start" >&2
  exit 1
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }
settle() { # CONNECTIONS: flush the disk, then (with --warmup) a second of GET /healthz
  sync # the previous run's writeback must not slow this run's fsyncs
  # On PostgreSQL, a checkpoint too: the previous run's dirty pages are not this run's work.
  [ -z "$DB_URL" ] || psql -X -q "$DB_URL/postgres" -c CHECKPOINT >/dev/null || true
  [ -z "$WARMUP" ] || wrk -t1 -c"$1" -d1s "http://127.0.0.1:$PORT/healthz" >/dev/null
}

if [ -z "$DB_URL" ]; then
  echo "== raw SQLite baseline (synchronous=${DURABILITY^^})"
  cargo bench --features bench --bench library -- baseline --threads 1 --durability "$DURABILITY" \
    --secs 3 | tee "$WORK/baseline.txt"
  RAW=$(awk -F'|' '/raw SQLite/ { gsub(/ /, "", $7); print $7 }' "$WORK/baseline.txt")
fi

echo "== preparing wrk data"
"$BIN/booking-load" prepare --db "$(db wrk)" --out "$WORK/data" --journey-concerts 0 \
  --hold-seats "$(scaled $((SECS * 40000)))" --pay-tickets "$(scaled $((SECS * 20000)))"
start_server "$(db wrk)"

ROWS=()
bench() { # name mode connections [file, in $WORK/data unless a path] [label] -> one table row
  # (WRK_THREADS=N runs wrk with N threads; the figures are kept as RPS_<label>, label = mode)
  local name=$1 mode=$2 conns=$3 file=${4:-} label=${5:-$2} threads=${WRK_THREADS:-1}
  local out="$WORK/wrk-$label.txt"
  settle "$conns"
  BOOKING_WRK_THREADS=$threads wrk -t"$threads" -c"$conns" -d"$DURATION" --latency -s scripts/wrk/booking.lua \
    "http://127.0.0.1:$PORT" -- "$mode" ${file:+"$(case $file in /*) echo "$file" ;; *) echo "$WORK/data/$file" ;; esac)"} >"$out"
  local rps p50 p99 statuses busy
  rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$out")
  busy=$(awk -v rps="$rps" '/^    Latency / { v = $2; f = 1
      if (v ~ /us$/) f = 1e-6; else if (v ~ /ms$/) f = 1e-3
      sub(/[a-z]+$/, "", v); printf "%.0f", rps * v * f }' "$out")
  p50=$(awk '/^p50_us/ { printf "%.2f", $2 / 1000 }' "$out")
  p99=$(awk '/^p99_us/ { printf "%.2f", $2 / 1000 }' "$out")
  statuses=$(sed -n 's/^statuses: //p' "$out")
  local sock; sock=$(grep -E '^ +Socket errors' "$out" | sed 's/^ *//' || true)
  echo "  $name: $rps req/s, p50 $p50 ms, p99 $p99 ms, busy $busy of $conns, statuses $statuses ${sock}"
  # Holds and payments use each prepared line once and answer 401 past the end: a row with
  # 401s ran out of data, and its rate (fast 401s included) is no measure: no ratio from it.
  local short= rps_ok=$rps
  case "$mode:$statuses" in
    hold*:*401=*|pay*:*401=*) rps_ok= short="ran out of prepared data (401s): no ratio from it; rerun with --data-scale 2" ;;
  esac
  [ -z "$short" ] || echo "  $name $short"
  ROWS+=("| $name | $conns | $busy | $rps | $p50 | $p99 | $statuses ${sock:+($sock)}${short:+ **$short**} |")
  eval "RPS_$label=$rps_ok"
}
echo "== wrk -t1 -d$DURATION per endpoint"
bench "GET /healthz" healthz "$CONNS"
bench "GET /token (poll)" poll "$CONNS" tokens.txt
bench "GET /concerts/{id}:{id} (50 seats)" listing "$CONNS" listing.txt
# One seat per request, different users' holds side by side (see scripts/wrk/interleave.awk).
awk -f scripts/wrk/interleave.awk "$WORK/data/holds.txt" >"$WORK/data/holds-all.txt"
# Two halves: one for the row at wrk -t1, one for the row at wrk -t2 -c64 (issue 15's shape:
# the load generator takes its share of the two cores; each wrk thread takes its own lines).
HALF=$(( ($(wc -l <"$WORK/data/holds-all.txt") + 1) / 2 ))
head -n "$HALF" "$WORK/data/holds-all.txt" >"$WORK/data/holds1.txt"
tail -n +"$((HALF + 1))" "$WORK/data/holds-all.txt" >"$WORK/data/holds2.txt"
bench "POST /tickets (hold)" hold "$CONNS" holds1.txt
WRK_THREADS=2 bench "POST /tickets (hold, wrk -t2)" hold 64 holds2.txt hold2
bench "POST /points (charge)" charge "$CONNS" tokens.txt
bench "POST /payments (pay)" pay 64 pays.txt
stop_server

echo "== several seats and tickets per request (a database of their own)"
"$BIN/booking-load" prepare --db "$(db wrk4)" --out "$WORK/data4" --journey-concerts 0 \
  --hold-seats "$(scaled $((SECS * 40000)))" --pay-tickets "$(scaled $((SECS * 30000)))" --tokens 1
start_server "$(db wrk4)"
bench "POST /tickets (4 seats in one hold)" hold4 "$CONNS" "$WORK/data4/holds.txt"
bench "POST /payments (4 tickets in one payment)" pay4 64 "$WORK/data4/pays.txt"
stop_server
start_server "$(db enter)"
bench "POST /token" enter "$CONNS"
stop_server

echo "== journey: $USERS users for $DURATION, --max-active $JOURNEY_MAX_ACTIVE"
"$BIN/booking-load" prepare --db "$(db journey)"
start_server "$(db journey)" --max-active "$JOURNEY_MAX_ACTIVE"
settle "$USERS"
JOURNEY=0
"$BIN/booking-load" journey --url "http://127.0.0.1:$PORT" --users "$USERS" \
  --duration "$DURATION" --db "$(db journey)" | tee "$WORK/journey.txt" || JOURNEY=$?
stop_server

# Last: verify reads every row of the wrk database (about a second per 100,000 tickets).
echo "== verify of the wrk database (at most ${VERIFY_LIMIT:=600}s)"
VERIFY="did not finish in ${VERIFY_LIMIT}s"
if timeout "$VERIFY_LIMIT" "$BIN/booking-load" verify --db "$(db wrk)" >"$WORK/verify.txt"; then
  VERIFY=$(tr '\n' ' ' <"$WORK/verify.txt")
elif [ -s "$WORK/verify.txt" ]; then
  VERIFY="FAILED: $(tr '\n' ' ' <"$WORK/verify.txt")"
fi
echo "  $VERIFY"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "## HTTP on $ENGINE, durability ${DURABILITY}, group commit $GROUP_COMMIT, wrk -t1 -d$DURATION${WARMUP:+, warm-up}"
echo
echo "| endpoint | connections | busy | req/s | p50 ms | p99 ms | statuses |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${ROWS[@]}"
echo
if [ -z "$DB_URL" ]; then
  echo "- raw SQLite baseline (1 thread): $RAW tx/s; hold over HTTP / raw = $(ratio "$RPS_hold" "$RAW") (target ≥ 0.7); at wrk -t2 -c64 = $(ratio "$RPS_hold2" "$RAW") (issue 15's target ≥ 2)"
fi
echo "- wrk database after the runs: $VERIFY"
echo "- GET /token / GET /healthz = $(ratio "$RPS_poll" "$RPS_healthz") (target ≥ 0.5)"
echo "- a 4-seat hold / a 1-seat hold (requests/s) = $(ratio "$RPS_hold4" "$RPS_hold") (target ≥ 0.5: at most 2× the cost)"
echo "- a 4-ticket payment / a 1-ticket payment (requests/s) = $(ratio "$RPS_pay4" "$RPS_pay") (target ≥ 0.5)"
echo "- journey: $(grep -E '^(journeys|verify|seats sold|result)' "$WORK/journey.txt" | tr '\n' ';')"
if grep -qv '^booking-server listening' "$WORK/server.log"; then
  echo "- server log:"
  grep -v '^booking-server listening' "$WORK/server.log" | sed 's/^/    /'
fi
exit "$JOURNEY"
