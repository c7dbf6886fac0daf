#!/usr/bin/env bash
# What the seat-map version costs holds of one showtime on PostgreSQL (issue 13), with pgbench
# alone, no booking-server: hold-shaped transactions (lock a free seat, insert its held ticket,
# update the seat: scripts/pgbench/hold.sql) on one showtime of the booking schema, without a
# version bump (the raw limit), with one counter row per showtime (schema versions 4 and 5),
# and with K of the showtime's counter rows (seat_versions; the seat's slot its id mod K),
# bumped first or last: K = 32 bumped first is today's (migration 6) — hold.sql's -D version. Each variant runs ROUNDS times, alternating, on seats of its own,
# in a throwaway cluster (as scripts/bench-pg.sh: initdb in a temporary directory, run as the
# postgres user when started as root, removed at the end), under flock on BOOKING_BENCH_LOCK
# (/tmp/booking-bench.lock).
#
# usage: scripts/bench-pg-versions.sh [--duration 8s] [--connections 64] [--rounds 2]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=8s CONNS=64 ROUNDS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "usage: $0 [--duration 8s] [--connections 64] [--rounds 2]" >&2; exit 2 ;;
  esac
done
SECS=${DURATION%s}
PGBIN=${BOOKING_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV | head -1)}
[ -x "$PGBIN/initdb" ] || { echo "initdb not found (Debian: apt-get install -y postgresql)" >&2; exit 2; }
command -v pgbench >/dev/null || { echo "pgbench not found (Debian: apt-get install -y postgresql)" >&2; exit 2; }
LOCK=${BOOKING_BENCH_LOCK:-/tmp/booking-bench.lock}

cargo build --release --bin booking-cli
BIN=target/release
# name:version:slots (hold.sql's -D version and -D slots)
VARIANTS=(
  "no version (raw):0:1"
  "1 counter row, first (schema 4-5):2:1"
  "1 counter row, last:3:1"
  "8 counter rows, last:3:8"
  "8 counter rows, first:2:8"
  "32 counter rows, first (today):2:32"
)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/booking-pg-versions.XXXXXX")
chmod 755 "$WORK"
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); chown postgres "$WORK"; fi
cleanup() {
  [ -f "$WORK/pg/postmaster.pid" ] && "${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
exec 9>"$LOCK"
flock 9

"${AS[@]}" "$PGBIN/initdb" -D "$WORK/pg" -U postgres -A trust -E UTF8 --no-sync >"$WORK/initdb.log"
PORT=$(shuf -i 20000-60000 -n 1)
"${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/postgres.log" -w start \
  -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=512MB -c max_wal_size=8GB" >/dev/null
URL="postgres://postgres@127.0.0.1:$PORT"
sql() { psql -X -q -v ON_ERROR_STOP=1 "$URL/versions" "$@"; }

PER=$((8000 * SECS / CONNS + 1)) # seats per client and run: up to 8,000 tx/s
SEATS=$((PER * CONNS * ROUNDS * ${#VARIANTS[@]}))
"$BIN/booking-cli" --db "$URL/versions" init >/dev/null
"$BIN/booking-cli" --db "$URL/versions" concert add --title pgbench --venue versions >/dev/null
"$BIN/booking-cli" --db "$URL/versions" showtime add --concert 1 --seats 1 --price 50000 \
  --starts-at "$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null
sql -c "INSERT INTO seats (showtime_id, number, price) SELECT 1, n, 50000 FROM generate_series(2, $SEATS + 1) n;
        UPDATE showtimes SET total_seats = $SEATS + 1 WHERE id = 1;"
sql -c "VACUUM ANALYZE"
BASE=$(sql -tA -c "SELECT MIN(id) FROM seats")

echo "== pgbench -c $CONNS -j 2 -T $SECS, one showtime, $ROUNDS rounds"
declare -A TPS
run=0
for r in $(seq "$ROUNDS"); do
  for v in "${VARIANTS[@]}"; do
    IFS=: read -r name version slots <<<"$v"
    sync; sql -c CHECKPOINT
    out=$(pgbench -n -M prepared -h 127.0.0.1 -p "$PORT" -U postgres -c "$CONNS" -j 2 -T "$SECS" \
      -f scripts/pgbench/hold.sql -D base=$((BASE + run * PER * CONNS)) -D per="$PER" -D n=0 \
      -D version="$version" -D slots="$slots" versions 2>&1) \
      || { echo "$out" | tail -5 >&2; exit 1; }
    run=$((run + 1))
    tps=$(awk '/^tps/ { printf "%.0f", $3 }' <<<"$out")
    TPS[$name]="${TPS[$name]:+${TPS[$name]} / }$tps"
    echo "  round $r, $name: $tps tx/s"
  done
done
echo
echo "| hold-shaped transaction, one showtime | tx/s per round |"
echo "| --- | --- |"
for v in "${VARIANTS[@]}"; do
  IFS=: read -r name _ _ <<<"$v"
  echo "| $name | ${TPS[$name]} |"
done
