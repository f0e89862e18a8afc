#!/usr/bin/env bash
# Packs what the GPU machine lacks into .gpu_carry/ (ignored by git, named in the device tool's
# `carry`): kiln's binaries built here for sm_90, the Debian shared libraries they need (the
# GPU machine has CUDA, cuBLASLt and cuDNN but no protobuf/ONNX/OpenBLAS), and the ONNX node
# suite, compressed. Then run scripts/gpu_check.sh there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# Usage: gpu_bundle.sh [BUILD_DIR] [FOLDER]; FOLDER is relative to the main checkout (where the
# device tool copies from; for a worktree, this is `git rev-parse --git-common-dir`/..).
b=${1:-$here/build}
main=$(cd "$(git -C "$here" rev-parse --path-format=absolute --git-common-dir)/.." && pwd)
name=${2:-.gpu_carry}
c=$main/$name
rm -rf "$c" && mkdir -p "$c/bin" "$c/lib"
grep -qx "/$name/" "$main/.git/info/exclude" 2>/dev/null || echo "/$name/" >> "$main/.git/info/exclude"
cp "$b/kiln" "$b/tests/kiln_run_suite" "$b/tests/kiln_unit_tests" "$b/tests/kiln_gpu_tests" "$b/build_and_run" "$c/bin/"
strip "$c/bin/"*
# ImageDecoder's codecs (and libtiff's own dependencies) are not on the GPU machine either.
for lib in libonnx_proto.so.1 libprotobuf.so.32 libopenblas.so.0 libxxhash.so.0 libgfortran.so.5 libquadmath.so.0 \
           libjpeg.so.62 libpng16.so.16 libtiff.so.6 libwebp.so.7 libopenjp2.so.7 libjbig.so.0 libdeflate.so.0 \
           libLerc.so.4; do
  cp -L "$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')" "$c/lib/"
done
tar -C /usr/share/libonnx-testdata/data -cJf "$c/node.tar.xz" node
# KILN_PY_BUILD=<build dir>: also carry its Python module (<dir>/python/kiln, built for the GPU
# machine's Python: see python/README.md), unpacked next to bin/ and lib/ as python/kiln.
parts="bin lib"
if [ -n "${KILN_PY_BUILD:-}" ]; then
  mkdir -p "$c/python" && cp -r "$KILN_PY_BUILD/python/kiln" "$c/python/" && strip "$c/python/kiln/"_kiln*.so
  parts="$parts python"
fi
tar -C "$c" -cJf "$c/bundle.tar.xz" $parts && rm -rf "$c/bin" "$c/lib" "$c/python"
du -sh "$c"
