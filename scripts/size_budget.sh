#!/usr/bin/env bash
# The size budget (DESIGN.md): lines per area, and no source file over 600 lines (aim: ~500).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
for area in src/core src/ir src/passes src/engine src/onnx src/backends/cpu src/backends/cuda tools/kiln; do
  n=$(find "$area" -name '*.cc' -o -name '*.h' -o -name '*.cu' | xargs cat 2>/dev/null | wc -l)
  printf 'size budget: %-20s %6d lines\n' "$area" "$n"
done
over=$(find src tools include tests -name '*.cc' -o -name '*.h' -o -name '*.cu' | xargs wc -l | awk '$2 != "total" && $1 > 600 {print $2 " (" $1 " lines)"}')
bad_names=$(find src tools include -iname '*utils*' -o -iname '*helpers*' -o -iname '*misc*')
if [ -n "$over" ] || [ -n "$bad_names" ]; then
  echo "size budget: over 600 lines: ${over:-none}; files named utils/helpers/misc: ${bad_names:-none}"
  exit 1
fi
