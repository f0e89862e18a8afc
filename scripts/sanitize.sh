#!/usr/bin/env bash
# The unit tests and the ONNX node suite under AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/sanitize.sh [--filter=REGEX] [--no-suite] [--jobs=N]
#   scripts/sanitize.sh --thread [--seconds=N]
#
# Builds build-san (clang-14, CPU only, -DKILN_FUZZ=ON, which implies -DKILN_SANITIZE=ON: the
# same build serves scripts/fuzz.sh) and runs, with leak detection on and the first UBSan
# report fatal:
#   1. kiln_unit_tests (unit tests, op tables, pass tests);
#   2. kiln_run_suite on Debian's node suite (/usr/share/libonnx-testdata/data/node, 932 cases)
#      against tests/conformance/expected_node.txt, twice: on the CPU executor directly and
#      through built, serialized and reloaded CPU engines (--via-engine=cpu). The whole suite
#      takes well under a minute each way on 2 cores, so no subset is needed; --filter=REGEX
#      (run_suite's case filter) takes one anyway, --no-suite skips it.
# Fails on any test failure, any expected-pass case that no longer passes, and any sanitizer
# report anywhere, including in a case that is expected to fail (the runner forks a child per
# case; a child's report is found in the log). Logs: build-san/sanitize-*.log.
#
# --thread: ThreadSanitizer instead, in build-tsan (clang-14, CPU only, -DKILN_TSAN=ON), on the
# tests where several execution contexts run one engine on several threads at once
# (kiln_tsan_tests: tests/unit/engine/context_load_test.cc, 8 threads for N seconds each, default
# 20, and engine_test.cc's concurrent-contexts test). Fails on any data race, lock-order
# inversion or other TSan report, and on any test failure. Log: build-tsan/sanitize-thread.log.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bs="$here/build-san"
suite=1 filter=() jobs=2 thread=0 seconds=20
for a in "$@"; do
  case "$a" in
    --filter=*) filter=("$a") ;;
    --no-suite) suite=0 ;;
    --jobs=*) jobs=${a#*=} ;;
    --thread) thread=1 ;;
    --seconds=*) seconds=${a#*=} ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "sanitize.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
if [ "$thread" = 1 ]; then
  bt="$here/build-tsan"
  if [ ! -f "$bt/build.ninja" ]; then
    flock /tmp/kiln-build.lock cmake -S "$here" -B "$bt" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_COMPILER=clang++-14 -DKILN_WITH_CUDA=OFF -DKILN_TSAN=ON >/dev/null || exit 2
  fi
  start=$SECONDS
  flock /tmp/kiln-build.lock cmake --build "$bt" -j2 --target kiln_tsan_tests >"$bt/sanitize-build.log" 2>&1 \
    || { tail -30 "$bt/sanitize-build.log"; echo "sanitize.sh: TSan build failed" >&2; exit 2; }
  echo "sanitize: build-tsan up to date ($((SECONDS - start)) s)"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  command -v llvm-symbolizer-14 >/dev/null && export TSAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-14)
  start=$SECONDS
  tlog="$bt/sanitize-thread.log"
  (cd "$bt/tests" && KILN_LOAD_SECONDS=$seconds ./kiln_tsan_tests --gtest_brief=1 \
     --gtest_filter='ContextLoad.*:Engine.ContextsRunConcurrentlyOnOneEngine') >"$tlog" 2>&1
  rc=$?
  summary=$(grep -E '^\[  (PASSED|FAILED)  \]' "$tlog" | head -2 | paste -sd' ' -)
  runs=$(grep -E '^\[load\] .* runs' "$tlog" | sed -E 's/^\[load\] ([^:]*): [^,]*, ([0-9]+) runs.*/\1: \2 runs/' | paste -sd';' -)
  echo "sanitize thread (TSan): ${summary:-no summary}; ${runs}; $((SECONDS - start)) s"
  if [ $rc != 0 ] || grep -qE 'WARNING: ThreadSanitizer|ERROR: ThreadSanitizer' "$tlog"; then
    grep -m5 -E 'ThreadSanitizer|^\[  FAILED  \]' "$tlog" | sed 's/^/  /'
    echo "  log: $tlog"
    exit 1
  fi
  exit 0
fi

if [ ! -f "$bs/build.ninja" ] || ! grep -q "KILN_FUZZ:BOOL=ON" "$bs/CMakeCache.txt"; then
  flock /tmp/kiln-build.lock cmake -S "$here" -B "$bs" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++-14 -DKILN_WITH_CUDA=OFF -DKILN_FUZZ=ON >/dev/null || exit 2
fi
start=$SECONDS
flock /tmp/kiln-build.lock cmake --build "$bs" -j2 --target kiln_unit_tests kiln_run_suite >"$bs/sanitize-build.log" 2>&1 \
  || { tail -30 "$bs/sanitize-build.log"; echo "sanitize.sh: build failed" >&2; exit 2; }
echo "sanitize: build-san up to date ($((SECONDS - start)) s)"

export ASAN_OPTIONS="detect_leaks=1:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
command -v llvm-symbolizer-14 >/dev/null && export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-14)
reports='ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:'
status=0

start=$SECONDS
ulog="$bs/sanitize-unit.log"
(cd "$bs/tests" && ./kiln_unit_tests --gtest_brief=1) >"$ulog" 2>&1
rc=$?
summary=$(grep -E '^\[  (PASSED|FAILED)  \]' "$ulog" | head -2 | paste -sd' ' -)
echo "sanitize unit tests: ${summary:-no summary}, $((SECONDS - start)) s"
if [ $rc != 0 ] || grep -qE "$reports" "$ulog"; then
  status=1
  grep -m5 -E "$reports|^\[  FAILED  \]" "$ulog" | sed 's/^/  /'
  echo "  log: $ulog"
fi

if [ "$suite" = 1 ]; then
  for via in "" cpu; do
    start=$SECONDS
    tag=node${via:+_via_engine}
    slog="$bs/sanitize-$tag.log"
    args=(--suite=/usr/share/libonnx-testdata/data/node "--name=onnx node conformance${via:+ (CPU engines)}, ASan+UBSan"
          --expected="$here/tests/conformance/expected_node.txt" --jobs="$jobs" --timeout=300
          --log="$bs/sanitize-$tag-cases.log" "${filter[@]}" ${via:+--via-engine=$via})
    "$bs/tests/kiln_run_suite" "${args[@]}" >"$slog" 2>&1
    rc=$?
    echo "sanitize $(tail -1 "$slog"), $((SECONDS - start)) s"
    if [ $rc != 0 ] || grep -qE "$reports" "$slog"; then
      status=1
      grep -m5 -E "$reports|^REGRESSION" "$slog" | sed 's/^/  /'
      echo "  log: $slog (per case: $bs/sanitize-$tag-cases.log)"
    fi
  done
fi
exit $status
