#!/usr/bin/env bash
# Soak: one booking-server (release build) on a fresh demo database, and the booking journey
# started at a steady rate against it for a long time (booking-chaos soak: each journey a new
# user who enters, polls, lists, holds, charges, pays and cancels, so seats go back on sale).
# Every minute one row: the journeys and requests of that minute, errors, p50/p99/max latency,
# and the server's RSS (and its anonymous part: the heap, apart from the mapped database), open
# file descriptors and threads, read from /proc/PID. Then verify on the database, and its size.
# A leak shows as a column that keeps growing under the same load.
#
# usage: scripts/soak.sh [--minutes 30] [--rate 20] [--workers 64] [--threads N]
#                        [--durability full|normal]
# BOOKING_SOAK_KEEP=1 keeps the database and the server's log.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=30 RATE=20 WORKERS=64 THREADS= DURABILITY=full
usage() {
  echo "usage: $0 [--minutes 30] [--rate 20] [--workers 64] [--threads N] [--durability full|normal]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --durability) DURABILITY=$2; shift 2 ;;
    *) usage ;;
  esac
done

cargo build --release --features bench --bin booking-server --bin booking-chaos
BIN=target/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/booking-soak.XXXXXX")
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ -n "${BOOKING_SOAK_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Every journey pays (which ends its user's turn), but a generous max-active keeps a journey
# that found no seat from filling the active slots for the active TTL.
FLAGS=(--db "$WORK/soak.db" --addr 127.0.0.1:0 --demo --max-active 100000
  --durability "$DURABILITY" --log warn)
[ -n "$THREADS" ] && FLAGS+=(--threads "$THREADS")
"$BIN/booking-server" "${FLAGS[@]}" >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER=$!
URL=
for _ in $(seq 100); do
  URL=$(grep -o 'http://[0-9.:]*' "$WORK/server.out" | head -n 1 || true)
  [ -n "$URL" ] && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { echo "the server did not start" >&2; exit 1; }
echo "server pid $SERVER at $URL, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

STATUS=0
"$BIN/booking-chaos" soak --url "$URL" --pid "$SERVER" --rate "$RATE" --minutes "$MINUTES" \
  --workers "$WORKERS" --db "$WORK/soak.db" || STATUS=$?

echo "database: $(du -h "$WORK/soak.db" | cut -f1), WAL $(du -h "$WORK/soak.db-wal" 2>/dev/null | cut -f1 || echo none);" \
  "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -s "$WORK/server.log" ]; then
  echo "server log (warnings): $(wc -l <"$WORK/server.log") lines; the last ones:"
  tail -n 5 "$WORK/server.log"
fi
exit "$STATUS"
