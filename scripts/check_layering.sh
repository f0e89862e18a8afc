#!/usr/bin/env bash
# The data path's "never" edges (DESIGN.md): a file may not include across them. Fails on any
# include that does, except the ones listed in KNOWN below (each to be removed; none may be added).
#   core, ir         -> nothing above them (onnx, passes, quant, tuning, engine, backends)
#   onnx             -> passes, engine, backends
#   passes           -> engine, backends (what a pass needs from a backend comes through PassContext)
#   backends/<a>     -> backends/<b> (backends never include each other), engine (the engine drives them)
#   include/kiln     -> anything but include/kiln (the public API leaks nothing internal)
set -uo pipefail
cd "$(dirname "$0")/.."
KNOWN=(  # file:included header, with why it is still here
)
rules=(
  "src/core:onnx/ passes/ quant/ tuning/ engine/ backends/ ir/"
  "src/ir:onnx/ passes/ quant/ tuning/ engine/ backends/"
  "src/onnx:passes/ engine/ backends/"
  "src/passes:engine/ backends/"
  "src/backends/cpu:backends/cuda/"
  "src/backends/cuda:backends/cpu/"
  "src/backends:engine/"
)
bad=0
check() {  # file header
  local f=$1 h=$2
  for k in "${KNOWN[@]}"; do [ "$k" = "$f:$h" ] && return; done
  echo "layering: $f includes \"$h\" across a never edge"; bad=1
}
for r in "${rules[@]}"; do
  dir=${r%%:*}; banned=${r#*:}
  while IFS=: read -r f line; do
    h=$(echo "$line" | sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p')
    [ -n "$h" ] || continue
    for b in $banned; do case "$h" in "$b"*) check "$f" "$h";; esac; done
  done < <(grep -rn --include='*.h' --include='*.cc' --include='*.cu' --include='*.cuh' -H '#[[:space:]]*include[[:space:]]*"' "$dir" | sed 's/:[0-9]*:/:/')
done
while IFS=: read -r f line; do
  h=$(echo "$line" | sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p')
  case "$h" in kiln/*|"") ;; *) check "$f" "$h";; esac
done < <(grep -rn -H '#[[:space:]]*include[[:space:]]*"' include/kiln | sed 's/:[0-9]*:/:/')
for k in "${KNOWN[@]}"; do
  f=${k%%:*}; h=${k#*:}
  grep -q "#include \"$h\"" "$f" 2>/dev/null || { echo "layering: KNOWN lists $k, which is gone: remove it from the list"; bad=1; }
done
[ $bad -eq 0 ] && echo "layering: no include crosses a never edge (${#KNOWN[@]} known exception(s) left)"
exit $bad
