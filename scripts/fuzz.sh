#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (what parses untrusted bytes) one after the other, each for
# a bounded time, and prints a table: time, executions, execs/s, corpus, crashes. Not part of CI;
# TESTING.md says how to read the results and turn a crash into a test.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     # default: 300 s, every target
#
# cargo-fuzz needs nightly compiler flags (the sanitizer, coverage instrumentation). With only a
# stable toolchain, RUSTC_BOOTSTRAP=1 lets it use them; a nightly toolchain, if installed, is not
# needed. Each target's corpus grows in fuzz/corpus/<target>/ (only the seed-* files are kept in
# git); a crash is written to fuzz/artifacts/<target>/ and the run goes on with the next target.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"

secs=${1:-300}
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked || exit 1
fi
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${targets[*]} (release, AddressSanitizer)"
cargo fuzz build -O || exit 1

mkdir -p logs
summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  before=$(find "artifacts/$t" -type f | wc -l)
  echo "== $t for ${secs}s"
  started=$(date +%s)
  cargo fuzz run -O "$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"logs/$t.log" 2>&1
  status=$?
  took=$(($(date +%s) - started))
  stat() { grep -m1 "^stat::$1:" "logs/$t.log" | awk '{print $2}'; }
  crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
  corpus=$(find "corpus/$t" -type f | wc -l)
  line=$(printf "%-14s %6ss %14s %10s %8s %8s" "$t" "$took" "$(stat number_of_executed_units)" \
    "$(stat average_exec_per_sec)" "$corpus" "$crashes")
  echo "$line"
  summary+=("$line")
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    echo "   $t stopped with status $status; see fuzz/logs/$t.log and fuzz/artifacts/$t/"
    grep -m3 -E "^==[0-9]+==ERROR|panicked at|SUMMARY" "logs/$t.log" | sed 's/^/   /'
  fi
done

echo
printf "%-14s %7s %14s %10s %8s %8s\n" target time execs execs/s corpus crashes
printf '%s\n' "${summary[@]}"
exit "$failed"
