#!/usr/bin/env bash
# PostgreSQL benchmark (issue 13), in one run so the ratios hold. It starts a throwaway
# PostgreSQL cluster of its own (Debian's postgresql: initdb in a temporary directory, a free
# port on 127.0.0.1, run as the postgres user when started as root, removed at the end), then:
#   1. the raw limit and holds over HTTP, ROUNDS times, alternating: pgbench with
#      scripts/pgbench/hold.sql (lock a free seat FOR UPDATE, insert its held ticket, update the
#      seat; on the booking schema made by `booking-cli init`) at CONNECTIONS clients, then wrk
#      POST /tickets (scripts/wrk/booking.lua, as scripts/bench-http.sh) at CONNECTIONS
#      connections against one booking-server on PostgreSQL, each for DURATION, twice: "one
#      showtime" (the holds that run together are of one showtime, a hot date on sale: they
#      share its 32 seat-map version slots) and "many showtimes" (consecutive holds round-robin over
#      the showtimes of HOLD_SHOWTIME_SEATS seats each); the ratios to pgbench, and medians;
#   2. 1, 2 and 3 booking-server processes on one PostgreSQL database: wrk against each process
#      at once (CONNECTIONS split between them), holds (of one showtime), then polls; the sums,
#      ROUNDS times, the counts interleaved within a round;
#   3. scripts/bench-http.sh's table on SQLite and then on PostgreSQL (--db-url), back to back.
# --profile (not for figures: it costs a little) loads pg_stat_statements and, while the HTTP
# holds of step 1 run, samples what the server's backends wait for (pg_stat_activity, every
# 50 ms); it prints the statements per hold and the waits after step 1.
# BOOKING_BENCH_SERVER_B=PATH (another build of booking-server, say before a change) adds, to
# each round of steps 1 and 2, the same HTTP holds (and in step 2 polls, one process) against
# that binary: a before/after in one run.
# The settings of the cluster are PostgreSQL's defaults but for room (max_connections,
# shared_buffers, max_wal_size): fsync and synchronous_commit on, as the server's default
# durability (full) asks. Everything after the build runs under `flock` on
# BOOKING_BENCH_LOCK (/tmp/booking-bench.lock), so that benchmarks of other checkouts on this
# machine do not overlap with it. Needs pgbench and initdb (Debian: apt-get install -y
# postgresql), wrk and psql. BOOKING_BENCH_KEEP=1 keeps the work directory (logs, wrk outputs)
# but not the cluster. BOOKING_BENCH_RAW_RATE and BOOKING_BENCH_HOLD_RATE (30000, 4000) size the
# prepared data — the most raw transactions and HTTP holds a second a run can use: past them
# pgbench fails and wrk's holds are answered 401, listed under the tables — and
# BOOKING_BENCH_SHOWTIME_SEATS (2000) the showtimes of the HTTP holds. Prints Markdown tables at
# the end.
#
# usage: scripts/bench-pg.sh [--duration 15s] [--connections 64] [--rounds 3]
#                            [--proc-duration 10s] [--processes "1 2 3"] [--no-table]
#                            [--only-holds] [--data-scale 0.25] [--profile]
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=15s CONNS=64 ROUNDS=3 PDURATION=10s PROCS="1 2 3" TABLE=1 PROCESSES=1 DATA_SCALE=0.25
PROFILE=
# Sizing of the prepared data: at most this many raw transactions and HTTP holds per second.
RAW_RATE=${BOOKING_BENCH_RAW_RATE:-30000} HOLD_RATE=${BOOKING_BENCH_HOLD_RATE:-4000}
HOLD_SHOWTIME_SEATS=${BOOKING_BENCH_SHOWTIME_SEATS:-2000}
LOCK=${BOOKING_BENCH_LOCK:-/tmp/booking-bench.lock}
usage="usage: $0 [--duration 15s] [--connections 64] [--rounds 3] [--proc-duration 10s] [--processes \"1 2 3\"] [--no-table] [--only-holds] [--data-scale 0.25] [--profile]"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --proc-duration) PDURATION=$2; shift 2 ;;
    --processes) PROCS=$2; shift 2 ;;
    --no-table) TABLE=; shift ;;
    --only-holds) TABLE=; PROCESSES=; shift ;;
    --data-scale) DATA_SCALE=$2; shift 2 ;;
    --profile) PROFILE=1; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
SECS=${DURATION%s} PSECS=${PDURATION%s}

PGBIN=${BOOKING_PG_BIN:-}
if [ -z "$PGBIN" ]; then
  for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    [ -x "$d/initdb" ] && { PGBIN=$d; break; }
  done
fi
[ -n "$PGBIN" ] || { echo "initdb not found (Debian: apt-get install -y postgresql)" >&2; exit 2; }
for tool in pgbench psql wrk flock; do
  command -v "$tool" >/dev/null || { echo "$tool not found (Debian: apt-get install -y postgresql wrk util-linux)" >&2; exit 2; }
done

# The build, outside the lock.
cargo build --release --features "server bench" --bin booking-server --bin booking-load --bin booking-cli
[ -z "$TABLE" ] || cargo bench --features bench --bench library --no-run
BIN=target/release

WORK=$(mktemp -d "${TMPDIR:-/tmp}/booking-pg-bench.XXXXXX")
chmod 755 "$WORK"
AS=()
if [ "$(id -u)" = 0 ]; then
  AS=(runuser -u postgres --) # initdb refuses root
  chown postgres "$WORK"
fi
SERVERS=() WRKS=() PGDATA_DIR="$WORK/pg"
cleanup() {
  local p
  for p in "${WRKS[@]}" "${SERVERS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${WRKS[@]}" "${SERVERS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -f "$PGDATA_DIR/postmaster.pid" ] && "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$PGDATA_DIR"
  if [ -n "${BOOKING_BENCH_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
  local p
  for p in $(shuf -i 20000-60000 -n 100); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port" >&2; exit 1
}

echo "== waiting for $LOCK (other benchmarks on this machine)"
exec 9>"$LOCK"
flock 9
echo "== lock taken $(date -u +%H:%M:%S)"

echo "== PostgreSQL cluster ($PGBIN)"
"${AS[@]}" "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres -A trust -E UTF8 --no-sync >"$WORK/initdb.log"
PGPORT=$(free_port)
PGOPTS="-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=400"
PGOPTS+=" -c shared_buffers=512MB -c max_wal_size=8GB"
[ -z "$PROFILE" ] || PGOPTS+=" -c shared_preload_libraries=pg_stat_statements"
"${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$WORK/postgres.log" -w start -o "$PGOPTS" >/dev/null
URL="postgres://postgres@127.0.0.1:$PGPORT"
psql -X -q "$URL/postgres" -c "SELECT version()" -tA
psql -X -q "$URL/postgres" -tA -c "SELECT 'fsync=' || current_setting('fsync') || ' synchronous_commit=' || current_setting('synchronous_commit') || ' wal_sync_method=' || current_setting('wal_sync_method')"
sql() { psql -X -q -v ON_ERROR_STOP=1 "$URL/$1" "${@:2}"; }
settle() { sync; sql postgres -c CHECKPOINT; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# --- the raw database: the booking schema, one showtime with seats for every pgbench round
PER=$((RAW_RATE * SECS / CONNS + 1)) # seats per client and round
RAW_SEATS=$((PER * CONNS * ROUNDS))
echo "== raw database: booking-cli init, $RAW_SEATS seats"
"$BIN/booking-cli" --db "$URL/bench_raw" init
"$BIN/booking-cli" --db "$URL/bench_raw" concert add --title pgbench --venue raw >/dev/null
"$BIN/booking-cli" --db "$URL/bench_raw" showtime add --concert 1 --seats 1 --price 50000 \
  --starts-at "$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null
sql bench_raw -c "INSERT INTO seats (showtime_id, number, price)
                    SELECT 1, n, 50000 FROM generate_series(2, $RAW_SEATS + 1) n;
                  UPDATE showtimes SET total_seats = $RAW_SEATS + 1 WHERE id = 1;"
sql bench_raw -c "VACUUM ANALYZE"
RAW_BASE=$(sql bench_raw -tA -c "SELECT min(id) FROM seats WHERE number >= 2")

# --- the HTTP database: wrk data for every hold run, tokens for polls
HOLD_RUNS=2 # one showtime, many showtimes; and the same against BOOKING_BENCH_SERVER_B
[ -z "${BOOKING_BENCH_SERVER_B:-}" ] || HOLD_RUNS=3
HOLD_SEATS=$(( (HOLD_RATE * SECS + 4) * ROUNDS * HOLD_RUNS ))
for n in $PROCS ${BOOKING_BENCH_SERVER_B:+1}; do
  [ -z "$PROCESSES" ] || HOLD_SEATS=$((HOLD_SEATS + (HOLD_RATE * PSECS + 4 * n) * ROUNDS))
done
HOLD_SEATS=$(( (HOLD_SEATS + 3) / 4 * 4 ))
echo "== HTTP database: booking-load prepare, $HOLD_SEATS seats to hold"
"$BIN/booking-load" prepare --db "$URL/bench_http" --out "$WORK/data" --journey-concerts 0 \
  --hold-seats "$HOLD_SEATS" --hold-showtime-seats "$HOLD_SHOWTIME_SEATS" --pay-tickets 0 --tokens 1000
sql bench_http -c "VACUUM ANALYZE"
[ -z "$PROFILE" ] || sql bench_http -c "CREATE EXTENSION pg_stat_statements"
HOLD_OFF=0
take_holds() { # N OUT [spread]: the next N unused lines of holds.txt (whole users: multiples
  # of 4), different users' holds side by side (scripts/wrk/interleave.awk); with "spread",
  # round-robin over their showtimes (scripts/wrk/spread.awk)
  local n=$(( ($1 + 3) / 4 * 4 ))
  sed -n "$((HOLD_OFF + 1)),$((HOLD_OFF + n))p" "$WORK/data/holds.txt" |
    awk -f scripts/wrk/interleave.awk |
    if [ "${3:-}" = spread ]; then awk -f scripts/wrk/spread.awk; else cat; fi >"$2"
  HOLD_OFF=$((HOLD_OFF + n))
}

start_servers() { # N [BINARY]: booking-server processes on bench_http, ports in PORTS
  local i port
  SERVERS=() PORTS=()
  for i in $(seq "$1"); do
    port=$(free_port)
    "${2:-$BIN/booking-server}" --db "$URL/bench_http" --addr "127.0.0.1:$port" --log warn \
      >>"$WORK/server.log" 2>&1 &
    SERVERS+=($!) PORTS+=("$port")
  done
  for port in "${PORTS[@]}"; do
    for _ in $(seq 200); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue 2; fi
      sleep 0.1
    done
    cat "$WORK/server.log" >&2; echo "booking-server did not start" >&2; exit 1
  done
}
stop_servers() {
  local p
  for p in "${SERVERS[@]}"; do kill "$p"; done
  for p in "${SERVERS[@]}"; do wait "$p" 2>/dev/null || true; done
  SERVERS=()
}
wrk_rps() { awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$1"; }
wrk_p99() { awk '/^p99_us/ { printf "%.1f", $2 / 1000 }' "$1"; }
# Non-success answers of a wrk run ("" when every answer was 200 or 201), socket errors too.
wrk_bad() {
  { sed -n 's/^statuses: //p' "$1" | tr ' ' '\n' | grep -Ev '^(200|201)=|^$' || true
    grep -E '^ +Socket errors' "$1" | sed 's/^ *//' || true; } | tr '\n' ' '
}

http_holds() { # ROUND LABEL [spread]: wrk POST /tickets against PORTS[0]; sets rps
  local r=$1 label=$2 out="$WORK/wrk-hold-$1$2.txt" bad
  settle
  take_holds $((HOLD_RATE * SECS)) "$WORK/holds-$r$label.txt" "${3:-}"
  SAMPLER=
  if [ -n "$PROFILE" ]; then
    sql bench_http -c "SELECT pg_stat_statements_reset()" >/dev/null
    while :; do
      sql postgres -tA -c "SELECT coalesce(wait_event_type || ':' || wait_event, 'running')
                           FROM pg_stat_activity
                           WHERE datname = 'bench_http' AND state <> 'idle' AND pid <> pg_backend_pid()"
      sleep 0.05
    done >"$WORK/waits-$r$label.txt" 2>/dev/null &
    SAMPLER=$!
  fi
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s scripts/wrk/booking.lua "http://127.0.0.1:${PORTS[0]}" \
    -- hold "$WORK/holds-$r$label.txt" >"$out"
  rps=$(wrk_rps "$out") bad=$(wrk_bad "$out")
  [ -z "$bad" ] || NOTES+=("round $r holds$label: $bad")
  if [ -n "$SAMPLER" ]; then
    kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true
    echo "  round $r$label: backends of booking-server by what they wait for (samples every 50 ms):"
    sort "$WORK/waits-$r$label.txt" | uniq -c | sort -rn | head -8 | sed 's/^/      /'
    local holds
    holds=$(sql bench_http -tA -c "SELECT sum(calls) FROM pg_stat_statements
                                   WHERE query LIKE 'INSERT INTO tickets%'")
    echo "  round $r$label: statements per hold ($holds holds), by mean time:"
    sql bench_http -tA -F ' | ' -c "SELECT round(calls::numeric / $holds, 2), round(mean_exec_time::numeric, 3) || ' ms',
                                           left(regexp_replace(query, '\s+', ' ', 'g'), 90)
                                    FROM pg_stat_statements WHERE calls >= $holds / 2
                                    ORDER BY mean_exec_time DESC" | sed 's/^/      /'
  fi
  echo "  round $r$label: HTTP holds $rps/s (p99 $(wrk_p99 "$out") ms) ${bad:+[$bad]}"
}

RAW_TPS=() HTTP_HOLDS=() RATIOS=() NOTES=() HOLDS_B=() RATIOS_B=() SPREAD=() RATIOS_S=()
echo "== 1. raw limit (pgbench -c $CONNS -j 2 -T $SECS) and holds over HTTP (wrk -c $CONNS -d $DURATION), $ROUNDS rounds"
start_servers 1
for r in $(seq "$ROUNDS"); do
  settle
  out="$WORK/pgbench-$r.txt"
  if ! pgbench -n -M prepared -h 127.0.0.1 -p "$PGPORT" -U postgres -c "$CONNS" -j 2 -T "$SECS" \
      -f scripts/pgbench/hold.sql -D base=$((RAW_BASE + (r - 1) * PER * CONNS)) -D per="$PER" \
      -D n=0 -D version=0 -D slots=1 bench_raw >"$out" 2>&1; then
    cat "$out" >&2; echo "pgbench failed (too few seats? BOOKING_BENCH_RAW_RATE)" >&2; exit 1
  fi
  tps=$(awk '/^tps = / { printf "%.0f", $3; exit }' "$out")
  lat=$(awk '/^latency average/ { print $4; exit }' "$out")
  echo "  round $r: pgbench $tps tx/s (latency avg $lat ms)"
  RAW_TPS+=("$tps")
  b_holds() { # the same against BOOKING_BENCH_SERVER_B, if set
    [ -n "${BOOKING_BENCH_SERVER_B:-}" ] || return 0
    stop_servers
    start_servers 1 "$BOOKING_BENCH_SERVER_B"
    http_holds "$r" "b"
    HOLDS_B+=("$rps") RATIOS_B+=("$(ratio "$rps" "$tps")")
    stop_servers
    start_servers 1
  }
  [ $((r % 2)) = 1 ] || b_holds # which binary goes first alternates
  http_holds "$r" ""
  HTTP_HOLDS+=("$rps") RATIOS+=("$(ratio "$rps" "$tps")")
  http_holds "$r" "-spread" spread
  SPREAD+=("$rps") RATIOS_S+=("$(ratio "$rps" "$tps")")
  [ $((r % 2)) = 0 ] || b_holds
done
stop_servers

declare -A PHOLDS PPOLLS
if [ -n "$PROCESSES" ]; then
  echo "== 2. 1..3 booking-server processes on one database (wrk -c $CONNS in all, -d $PDURATION)"
  each() { # N MODE FILE-PREFIX: wrk at once against each process, CONNS split; the sum in SUM
    local n=$1 mode=$2 i c outs=()
    SUM=0
    WRKS=()
    for i in $(seq 0 $((n - 1))); do
      c=$(( CONNS / n + (i < CONNS % n ? 1 : 0) ))
      local f=$3-$i.txt
      [ "$mode" = hold ] && take_holds $((HOLD_RATE * PSECS / n)) "$f.data"
      wrk -t1 -c"$c" -d"$PDURATION" --latency -s scripts/wrk/booking.lua \
        "http://127.0.0.1:${PORTS[$i]}" -- "$mode" \
        "$([ "$mode" = hold ] && echo "$f.data" || echo "$WORK/data/tokens.txt")" >"$f" &
      WRKS+=($!) outs+=("$f")
    done
    for i in "${WRKS[@]}"; do wait "$i"; done
    WRKS=()
    for f in "${outs[@]}"; do
      SUM=$((SUM + $(wrk_rps "$f")))
      local bad; bad=$(wrk_bad "$f")
      [ -z "$bad" ] || NOTES+=("$n processes, $mode, $(basename "$f"): $bad")
    done
  }
  for r in $(seq "$ROUNDS"); do
    for n in $PROCS; do
      start_servers "$n"
      settle
      each "$n" hold "$WORK/proc-$n-$r-hold"
      h=$SUM
      settle
      each "$n" poll "$WORK/proc-$n-$r-poll"
      p=$SUM
      stop_servers
      PHOLDS[$n]="${PHOLDS[$n]:-} $h" PPOLLS[$n]="${PPOLLS[$n]:-} $p"
      echo "  round $r, $n process(es): holds $h/s, polls $p/s"
    done
    if [ -n "${BOOKING_BENCH_SERVER_B:-}" ]; then # one process of the other build, same round
      start_servers 1 "$BOOKING_BENCH_SERVER_B"
      settle
      each 1 hold "$WORK/proc-b-$r-hold"
      h=$SUM
      settle
      each 1 poll "$WORK/proc-b-$r-poll"
      stop_servers
      echo "  round $r, 1 process of BOOKING_BENCH_SERVER_B: holds $h/s, polls $SUM/s"
    fi
  done
fi

echo "== verify (HTTP database)"
VERIFY=$("$BIN/booking-load" verify --db "$URL/bench_http" | tr '\n' ' ') || VERIFY="FAILED: $VERIFY"
echo "  $VERIFY"

if [ -n "$TABLE" ]; then
  echo "== 3. scripts/bench-http.sh on SQLite, then on PostgreSQL"
  BOOKING_BENCH_PORT=$(free_port) scripts/bench-http.sh --duration "$DURATION" | tee "$WORK/http-sqlite.txt"
  BOOKING_BENCH_PORT=$(free_port) scripts/bench-http.sh --duration "$DURATION" --db-url "$URL" \
    --data-scale "$DATA_SCALE" | tee "$WORK/http-pg.txt"
fi

echo
echo "## PostgreSQL: raw limit and holds over HTTP ($CONNS clients, $DURATION each, $ROUNDS rounds)"
echo
echo "| round | pgbench hold.sql tx/s | HTTP holds, one showtime /s | × raw | HTTP holds, many showtimes /s | × raw |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for i in "${!RAW_TPS[@]}"; do
  echo "| $((i + 1)) | ${RAW_TPS[$i]} | ${HTTP_HOLDS[$i]} | ${RATIOS[$i]} | ${SPREAD[$i]} | ${RATIOS_S[$i]} |"
done
med() { printf '%s\n' "$@" | median; }
echo "| median | $(med "${RAW_TPS[@]}") | $(med "${HTTP_HOLDS[@]}") | **$(med "${RATIOS[@]}")** | $(med "${SPREAD[@]}") | **$(med "${RATIOS_S[@]}")** |"
if [ -n "${BOOKING_BENCH_SERVER_B:-}" ]; then
  echo
  echo "BOOKING_BENCH_SERVER_B=$BOOKING_BENCH_SERVER_B, same rounds: holds $(echo "${HOLDS_B[@]}" | tr ' ' '/')/s, median $(printf '%s\n' "${HOLDS_B[@]}" | median)/s, HTTP / raw median $(printf '%s\n' "${RATIOS_B[@]}" | median)"
fi
if [ -n "$PROCESSES" ]; then
  echo
  echo "## booking-server processes on one PostgreSQL ($CONNS connections in all, $PDURATION each, $ROUNDS rounds)"
  echo
  echo "| processes | holds/s (median; each round) | × 1 process | polls/s (median; each round) | × 1 process |"
  echo "| ---: | --- | ---: | --- | ---: |"
  first=${PROCS%% *}
  h1=$(printf '%s\n' ${PHOLDS[$first]} | median) p1=$(printf '%s\n' ${PPOLLS[$first]} | median)
  for n in $PROCS; do
    h=$(printf '%s\n' ${PHOLDS[$n]} | median) p=$(printf '%s\n' ${PPOLLS[$n]} | median)
    echo "| $n | $h ($(echo ${PHOLDS[$n]} | tr ' ' '/')) | $(ratio "$h" "$h1") | $p ($(echo ${PPOLLS[$n]} | tr ' ' '/')) | $(ratio "$p" "$p1") |"
  done
fi
echo
echo "- HTTP database after the runs: $VERIFY"
for n in "${NOTES[@]}"; do echo "- $n"; done
if grep -qv '^booking-server listening' "$WORK/server.log"; then
  echo "- server log:"; grep -v '^booking-server listening' "$WORK/server.log" | sort | uniq -c | head -20 | sed 's/^/    /'
fi
if [ -n "$TABLE" ]; then
  echo
  sed -n '/^## HTTP on/,$p' "$WORK/http-sqlite.txt"
  echo
  sed -n '/^## HTTP on/,$p' "$WORK/http-pg.txt"
fi
