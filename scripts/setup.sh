#!/usr/bin/env bash
# Idempotent set-up: installs every dependency kiln needs from Debian's packages.
# Every Python step here uses Debian's own interpreter, /usr/bin/python3 (its python3-torch
# 1.13 exports the test models); nothing is installed with pip in this script.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev nlohmann-json3-dev libxxhash-dev
  libjpeg62-turbo-dev libpng-dev libtiff-dev libwebp-dev libopenjp2-7-dev
  python3 python3-numpy python3-onnx python3-torch python3-torchvision
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

here=$(cd "$(dirname "$0")/.." && pwd)

# Python tooling from PyPI, pinned, in a virtual environment of the machine's `python3` (the
# PyPI interpreter, not Debian's /usr/bin/python3, whose onnx is 1.12): onnx 1.23 generates the
# current node-test suite, onnxruntime is the second reference. Without network this step only
# warns, and the tests that need it report themselves skipped.
venv="$here/build/pyenv"
want="onnx==1.23.2 onnxruntime==1.23.2 numpy==2.4.6"
if ! "$venv/bin/python" -c "import onnx, onnxruntime, sys; sys.exit(onnx.__version__ != '1.23.2')" 2>/dev/null; then
  echo "setup: python tooling into $venv ($want)"
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q $want; } || echo "setup: WARNING: could not install $want"
fi

# Build (Release, Ninja) into build/. Re-running only rebuilds what changed.
# CUDA code is compiled only where the toolkit is found; CI compiles it for sm_90 alone, to prove
# it builds (KILN_CUDA_ARCHITECTURES overrides; the default is 80;86;89;90).
cuda_arch=()
if [ -n "${KILN_CUDA_ARCHITECTURES:-}" ]; then cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES="$KILN_CUDA_ARCHITECTURES")
elif [ "${CI:-}" = "true" ]; then cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES=90); fi
[ -x /usr/local/cuda/bin/nvcc ] && export CUDACXX=${CUDACXX:-/usr/local/cuda/bin/nvcc}
cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda_arch[@]}" >/dev/null
cmake --build "$here/build" -j"$(nproc)"
echo "setup: built $here/build/kiln"
