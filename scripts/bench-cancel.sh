#!/usr/bin/env bash
# `booking-cli showtime cancel` of a sold-out showtime (docs/API.md §6: every paid ticket
# cancelled with a full refund, in one transaction), timed with hyperfine. The showtime is sold
# out once through the library (booking-load prepare-sold-out: four seats per buyer, each buyer
# charged and paid); before every timed run hyperfine's --prepare restores a copy of that
# database (the file and its WAL), so every run cancels the same sold-out showtime. The CLI's
# own start (opening the database, checking its schema) is part of the time.
# Afterwards one more cancel is checked: its counts, `verify`, and the report of the showtime.
#
# usage: scripts/bench-cancel.sh [--seats 50000] [--runs 5]
set -euo pipefail
cd "$(dirname "$0")/.."
SEATS=50000 RUNS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --seats) SEATS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--seats N] [--runs N]" >&2; exit 2 ;;
  esac
done
command -v hyperfine >/dev/null || { echo "hyperfine not found (Debian: apt-get install -y hyperfine)" >&2; exit 2; }
cargo build --release --features "cli bench" --bin booking-cli --bin booking-load
BIN=$PWD/target/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/booking-cancel-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

T0=$(date +%s.%N)
SHOW=$("$BIN/booking-load" prepare-sold-out --db "$WORK/sold.db" --seats "$SEATS")
T1=$(date +%s.%N)
echo "sold out showtime $SHOW ($SEATS seats) in $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }') s"
# The pristine copy: the database file and whatever its WAL holds (no process has it open).
mkdir "$WORK/pristine"
for f in "$WORK"/sold.db "$WORK"/sold.db-wal; do [ -f "$f" ] && cp "$f" "$WORK/pristine/"; done
ls -l "$WORK/pristine"

RESTORE="rm -f $WORK/run.db $WORK/run.db-wal $WORK/run.db-shm; cp $WORK/pristine/sold.db $WORK/run.db; if [ -f $WORK/pristine/sold.db-wal ]; then cp $WORK/pristine/sold.db-wal $WORK/run.db-wal; fi; sync"
hyperfine --runs "$RUNS" --prepare "$RESTORE" --export-markdown "$WORK/cancel.md" \
  --command-name "showtime cancel, $SEATS seats sold" \
  "$BIN/booking-cli --db $WORK/run.db showtime cancel --showtime $SHOW"

# The same cancel once more, checked: every seat's ticket cancelled, the database consistent.
bash -c "$RESTORE"
OUT=$("$BIN/booking-cli" --db "$WORK/run.db" --json showtime cancel --showtime "$SHOW")
echo "cancel: $OUT"
"$BIN/booking-cli" --db "$WORK/run.db" --json report --showtime "$SHOW"
echo
"$BIN/booking-load" verify --db "$WORK/run.db"
echo
cat "$WORK/cancel.md"
