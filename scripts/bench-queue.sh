#!/usr/bin/env bash
# The waiting room at scale over HTTP (docs/API.md §7: entering, polling and admitting cost O(1)
# in the number of waiting and active users), in one run so the ratios hold:
#   1. POST /token (each new user admitted at once) and GET /token (an active user's poll) with
#      1,000 and with 100,000 users active (booking-server --max-active 100000000);
#   2. POST /token (a new user waits) and GET /token (a waiting user's poll) with 1,000 and with
#      1,000,000 users waiting (100 active, --max-active 100);
#   3. the opening of a 1,000,000-entry prequeue (`booking-cli queue open-at now`): how long the
#      placing takes, and the worst latency of polls and entries sent during all of it (wrk in
#      5 s segments until the prequeue is placed).
# wrk -t1 -c50 per run. The databases are filled through the library (booking-load prepare-queue).
#
# usage: scripts/bench-queue.sh [--duration 10s] [--small 1000] [--active 100000]
#                               [--waiting 1000000] [--prequeue 1000000] [--opening-only]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=10s SMALL=1000 ACTIVE=100000 WAITING=1000000 PREQUEUE=1000000 CONNS=50 OPENING_ONLY=
PORT=${BOOKING_BENCH_PORT:-18082}
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --small) SMALL=$2; shift 2 ;;
    --active) ACTIVE=$2; shift 2 ;;
    --waiting) WAITING=$2; shift 2 ;;
    --prequeue) PREQUEUE=$2; shift 2 ;;
    --opening-only) OPENING_ONLY=1; shift ;;
    *) echo "usage: $0 [--duration 10s] [--small N] [--active N] [--waiting N] [--prequeue N]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk not found (Debian: apt-get install -y wrk)" >&2; exit 2; }
cargo build --release --features "server cli bench" --bin booking-server --bin booking-cli --bin booking-load
BIN=target/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/booking-queue-bench.XXXXXX")
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT

start() { # DB FLAGS...
  local db=$1; shift
  "$BIN/booking-server" --db "$db" --addr "127.0.0.1:$PORT" --log warn --idle-timeout 2h \
    --active-ttl 2h "$@" >>"$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return; sleep 0.1; done
  echo "booking-server did not start" >&2; cat "$WORK/server.log" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
declare -A RPS
run() { # key mode [file] -> sets RPS[key]
  local out="$WORK/$1.txt"
  sync
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s scripts/wrk/booking.lua \
    "http://127.0.0.1:$PORT" -- "$2" ${3:+"$3"} >"$out"
  RPS[$1]=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$out")
  local st; st=$(sed -n 's/^statuses: //p' "$out")
  echo "  $1: ${RPS[$1]} req/s ($st)"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

if [ -z "$OPENING_ONLY" ]; then
echo "== active users: $SMALL and $ACTIVE"
for n in "$SMALL" "$ACTIVE"; do
  "$BIN/booking-load" prepare-queue --db "$WORK/active-$n.db" --out "$WORK/active-$n" --active "$n"
  start "$WORK/active-$n.db" --max-active 100000000
  run "poll-active-$n" poll "$WORK/active-$n/active.txt"
  run "enter-active-$n" enter
  stop
done
echo "== waiting users: $SMALL and $WAITING (100 active, --max-active 100)"
for n in "$SMALL" "$WAITING"; do
  "$BIN/booking-load" prepare-queue --db "$WORK/waiting-$n.db" --out "$WORK/waiting-$n" \
    --active 100 --waiting "$n"
  start "$WORK/waiting-$n.db" --max-active 100
  run "poll-waiting-$n" poll "$WORK/waiting-$n/waiting.txt"
  run "enter-waiting-$n" enter
  stop
done
fi
echo "== the opening of a $PREQUEUE-entry prequeue"
"$BIN/booking-load" prepare-queue --db "$WORK/open.db" --out "$WORK/open" --active 100 \
  --waiting "$SMALL" --prequeue "$PREQUEUE"
start "$WORK/open.db" --max-active 100
# Load for as long as the placing lasts: wrk in 5 s segments, until the prequeue is placed
# (polls of prequeue users on $CONNS connections, and new users entering on 8), the worst of
# the segments kept. Each segment's latencies are wrk's own: max, and p99 from booking.lua.
load() { # mode file tag conns
  local i=0
  while [ ! -e "$WORK/placed" ]; do
    i=$((i + 1))
    wrk -t1 -c"$4" -d5s --latency -s scripts/wrk/booking.lua "http://127.0.0.1:$PORT" -- \
      "$1" ${2:+"$2"} >"$WORK/open-$3-$i.txt"
  done
}
load poll "$WORK/open/prequeue.txt" poll "$CONNS" &
LOAD_POLL=$!
load enter "" enter 8 &
LOAD_ENTER=$!
sleep 2
T0=$(date +%s.%N)
"$BIN/booking-cli" --db "$WORK/open.db" queue open-at now >/dev/null
while [ "$("$BIN/booking-cli" --db "$WORK/open.db" --json queue show | sed -n 's/.*"prequeue": *\([0-9]*\).*/\1/p')" != 0 ]; do
  sleep 0.2
done
T1=$(date +%s.%N)
touch "$WORK/placed"
wait $LOAD_POLL $LOAD_ENTER
stop
PLACING=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')
worst() { # tag -> "max_ms p99_ms requests statuses" over the segments
  awk '
    /^    Latency / { v = $4; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                      ms = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v
                      if (ms > max) max = ms }
    /^p99_us/ { if ($2 / 1000 > p99) p99 = $2 / 1000 }
    /requests in/ { n += $1 }
    /^statuses: / { for (i = 2; i <= NF; i++) { split($i, kv, "="); st[kv[1]] += kv[2] } }
    END { s = ""; for (k in st) s = s k "=" st[k] " "
          printf "%.1f %.1f %d %s\n", max, p99, n, s }' "$WORK"/open-"$1"-*.txt
}
read -r POLL_MAX POLL_P99 POLL_N POLL_ST < <(worst poll)
read -r ENTER_MAX ENTER_P99 ENTER_N ENTER_ST < <(worst enter)
SEGMENTS=$(ls "$WORK"/open-poll-*.txt | wc -l)
echo
if [ -z "$OPENING_ONLY" ]; then
echo "## The waiting room at scale, wrk -t1 -c$CONNS -d$DURATION"
echo
echo "| run | with $SMALL | with the large number | ratio (target ≥ 0.75) |"
echo "| --- | --- | --- | --- |"
echo "| GET /token, an active user, $ACTIVE active | ${RPS[poll-active-$SMALL]} | ${RPS[poll-active-$ACTIVE]} | $(ratio "${RPS[poll-active-$ACTIVE]}" "${RPS[poll-active-$SMALL]}") |"
echo "| POST /token, admitted at once, $ACTIVE active | ${RPS[enter-active-$SMALL]} | ${RPS[enter-active-$ACTIVE]} | $(ratio "${RPS[enter-active-$ACTIVE]}" "${RPS[enter-active-$SMALL]}") |"
echo "| GET /token, a waiting user, $WAITING waiting | ${RPS[poll-waiting-$SMALL]} | ${RPS[poll-waiting-$WAITING]} | $(ratio "${RPS[poll-waiting-$WAITING]}" "${RPS[poll-waiting-$SMALL]}") |"
echo "| POST /token, waiting, $WAITING waiting | ${RPS[enter-waiting-$SMALL]} | ${RPS[enter-waiting-$WAITING]} | $(ratio "${RPS[enter-waiting-$WAITING]}" "${RPS[enter-waiting-$SMALL]}") |"
echo
fi
echo "- the opening of $PREQUEUE prequeue entries: placed in ${PLACING} s (queue show every 0.2 s)"
echo "- polls of prequeue users meanwhile ($CONNS connections, $SEGMENTS segments of 5 s, $POLL_N requests: $POLL_ST): max latency $POLL_MAX ms, worst segment p99 $POLL_P99 ms"
echo "- new users entering meanwhile (8 connections, $ENTER_N requests: $ENTER_ST): max latency $ENTER_MAX ms, worst segment p99 $ENTER_P99 ms"
echo "  (target: no request waits more than 1 s)"
