#!/usr/bin/env bash
# Exports the torchvision models (Debian's /usr/bin/python3 + python3-torch) into OUT, then
# checks kiln's CPU backend against PyTorch's output: relative L2 error <= 1e-4 per output.
# Exit 77 (CTest: skipped) with a visible message when Debian's torch is not installed.
set -uo pipefail
RUN_SUITE=$1; OUT=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 "$here/export_torchvision.py" "$OUT" "$@"
rc=$?
if [ $rc -eq 3 ]; then
  echo "SKIPPED: torchvision model tests need Debian's python3-torch (scripts/setup.sh installs it)"
  [ "${CI:-}" = true ] && { echo "CI has every dependency: a skip is a failure"; exit 1; }
  exit 77
fi
if [ $rc -ne 0 ]; then echo "model export failed (exit $rc)"; exit 1; fi
exec "$RUN_SUITE" --suite="$OUT" --name="torchvision models vs PyTorch (rel L2 <= 1e-4): ${*:-the zoo}" --metric=rel_l2 --rel-l2=1e-4 --jobs=1 --timeout=600
