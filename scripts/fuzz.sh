#!/usr/bin/env bash
# Runs kiln's libFuzzer targets (tests/fuzz/fuzz_*.cc) under ASan + UBSan.
#
#   scripts/fuzz.sh [--seconds=N] [--target=NAME[,NAME...]] [--jobs=N] [--keep]
#
#   --seconds=N  fuzzing time per target (default 60); 0 only replays the committed corpus and
#                the crash reproducers (tests/fuzz/regressions/<target>/)
#   --target=    the targets to run (default: every tests/fuzz/fuzz_*.cc)
#   --jobs=N     targets fuzzed at once (default 1; each is one process, one core)
#   --keep       keep what the run finds in build-san/fuzz-corpus/<target>/ and start from what
#                earlier --keep runs found there, so long runs add up; without it each run starts
#                from the committed seeds alone, in an emptied build-san/fuzz-scratch/<target>/
#                (a grown corpus takes minutes just to load in the slower targets)
#
# Builds build-san (clang-14, -DKILN_FUZZ=ON) if needed. Each target first replays its
# regressions, then fuzzes from the committed seeds tests/fuzz/corpus/<target>/ (read only; new
# inputs go to build-san, see --keep).
# Crashing, leaking, out-of-memory and hanging inputs are saved under build-san/fuzz-artifacts/.
# Prints one line per target:
#   fuzz <target>: <execs> execs, <crashes> crashes, <timeouts> hangs, <N> s
# and exits non-zero on any crash, hang or sanitizer report. Long run (the 1,000,000-exec goal):
#   scripts/fuzz.sh --seconds=1800 --jobs=2 --keep
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bs="$here/build-san"
seconds=60 jobs=1 targets="" keep=0
for a in "$@"; do
  case "$a" in
    --seconds=*) seconds=${a#*=} ;;
    --target=*) targets=${a#*=} ;;
    --jobs=*) jobs=${a#*=} ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done

if [ -z "$targets" ]; then
  targets=$(cd "$here/tests/fuzz" && ls fuzz_*.cc | sed 's/\.cc$//' | paste -sd, -)
fi
IFS=, read -r -a tlist <<< "$targets"
for t in "${tlist[@]}"; do
  [ -f "$here/tests/fuzz/$t.cc" ] || { echo "fuzz.sh: no target tests/fuzz/$t.cc" >&2; exit 2; }
done

# Build (the lock keeps concurrent builds on this machine from sharing the cores).
if [ ! -f "$bs/build.ninja" ] || ! grep -q "KILN_FUZZ:BOOL=ON" "$bs/CMakeCache.txt"; then
  flock /tmp/kiln-build.lock cmake -S "$here" -B "$bs" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++-14 -DKILN_WITH_CUDA=OFF -DKILN_FUZZ=ON >/dev/null || exit 2
fi
flock /tmp/kiln-build.lock cmake --build "$bs" -j2 --target "${tlist[@]}" >"$bs/fuzz-build.log" 2>&1 \
  || { tail -30 "$bs/fuzz-build.log"; echo "fuzz.sh: build failed (log: $bs/fuzz-build.log)" >&2; exit 2; }

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
command -v llvm-symbolizer-14 >/dev/null && export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-14)

max_len() {  # inputs bigger than the seeds need, but not much: longer inputs run slower
  case "$1" in
    fuzz_onnx_import|fuzz_onnx_build|fuzz_engine_load) echo 16384 ;;
    fuzz_cli_options) echo 1024 ;;
    *) echo 4096 ;;
  esac
}

# A target may share another's seeds and dictionary (the build path reads the importer's models).
shares() {
  case "$1" in
    fuzz_onnx_build) echo fuzz_onnx_import ;;
    *) echo "$1" ;;
  esac
}

# One target: replay, fuzz, summarize. Writes its line to $bs/fuzz-logs/<t>.summary.
run_target() {
  local t=$1 bin="$bs/fuzz/$1" seeds="$here/tests/fuzz/corpus/$(shares "$1")" regr="$here/tests/fuzz/regressions/$1"
  local work="$bs/fuzz-scratch/$t" art="$bs/fuzz-artifacts/$t" log="$bs/fuzz-logs/$t.log"
  local dict=() rc=0 start=$SECONDS
  if [ "$keep" = 1 ]; then work="$bs/fuzz-corpus/$t"; else rm -rf "$work"; fi
  [ -d "$seeds" ] || { seeds="$bs/fuzz-seeds/$t"; mkdir -p "$seeds"; }  # a target without committed seeds
  mkdir -p "$work" "$art"
  rm -f "$art"/crash-* "$art"/leak-* "$art"/oom-* "$art"/timeout-* "$art"/slow-unit-*
  [ -f "$here/tests/fuzz/$(shares "$t").dict" ] && dict=(-dict="$here/tests/fuzz/$(shares "$t").dict")
  local common=(-timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" -artifact_prefix="$art/"
                -print_final_stats=1 -print_funcs=0 "${dict[@]}")
  : >"$log"
  # Crash reproducers and seeds: each must run clean.
  local files=()
  [ -d "$regr" ] && while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$regr" -type f -print0 | sort -z)
  while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$seeds" -type f -print0 | sort -z)
  local execs=${#files[@]}
  if [ ${#files[@]} -gt 0 ]; then
    nice -n 10 "$bin" "${common[@]}" "${files[@]}" >>"$log" 2>&1 || rc=1
  fi
  if [ "$rc" = 0 ] && [ "$seconds" -gt 0 ]; then
    nice -n 10 "$bin" "${common[@]}" -max_total_time="$seconds" "$work" "$seeds" >>"$log" 2>&1 || rc=1
    local n
    n=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    [ -z "$n" ] && n=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    execs=$((execs + ${n:-0}))
  fi
  local crashes timeouts
  crashes=$(find "$art" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' \) | wc -l)
  timeouts=$(find "$art" -maxdepth 1 -name 'timeout-*' | wc -l)
  # A failure libFuzzer saved no input for (a report while replaying) still counts.
  if [ "$rc" != 0 ] && [ "$crashes" = 0 ] && [ "$timeouts" = 0 ]; then crashes=1; fi
  if grep -qE 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$log" && [ "$crashes" = 0 ]; then
    crashes=1; rc=1
  fi
  echo "fuzz $t: $execs execs, $crashes crashes, $timeouts hangs, $((SECONDS - start)) s" >"$bs/fuzz-logs/$t.summary"
  [ "$rc" = 0 ]
}

mkdir -p "$bs/fuzz-logs"
status=0
for t in "${tlist[@]}"; do
  rm -f "$bs/fuzz-logs/$t.summary"
  run_target "$t" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
wait
for t in "${tlist[@]}"; do
  [ -f "$bs/fuzz-logs/$t.summary" ] || { echo "fuzz $t: no result (see $bs/fuzz-logs/$t.log)"; status=1; continue; }
  cat "$bs/fuzz-logs/$t.summary"
  if grep -q ' [1-9][0-9]* crashes\| [1-9][0-9]* hangs' "$bs/fuzz-logs/$t.summary"; then
    status=1
    echo "  log: $bs/fuzz-logs/$t.log; inputs: $bs/fuzz-artifacts/$t/"
    grep -m3 -E 'ERROR: |runtime error:|SUMMARY: |Test unit written' "$bs/fuzz-logs/$t.log" | sed 's/^/  /'
  fi
done
exit $status
