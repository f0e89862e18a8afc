#!/usr/bin/env bash
# Runs every test: set-up (idempotent: installs what is missing, builds), then CTest, then the
# conformance summary lines.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=1  # see scripts/setup.sh
bash "$here/scripts/setup.sh" || exit 1
cd "$here/build"
ctest --output-on-failure -j2 "$@"
rc=$?
for f in tests/conformance_*.log; do [ -f "$f" ] && tail -n1 "$f"; done
# Robustness (issue 16): the unit tests and the node suite under ASan + UBSan (build-san, clang,
# CPU only), then each libFuzzer target for 45 s from its committed corpus (scripts/fuzz.sh
# --seconds=1800 for long runs).
bash "$here/scripts/sanitize.sh" || rc=1
bash "$here/scripts/sanitize.sh" --thread || rc=1  # several contexts of one engine on 8 threads, TSan
bash "$here/scripts/fuzz.sh" --seconds=45 || rc=1
bash "$here/scripts/size_budget.sh" || rc=1
bash "$here/scripts/check_layering.sh" || rc=1
exit $rc
