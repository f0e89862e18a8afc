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

# Build (Release, Ninja) into build/. Re-running only rebuilds what changed.
here=$(cd "$(dirname "$0")/.." && pwd)
# CUDA code is compiled only where the toolkit is found; CI compiles it for sm_90 alone, to prove
# it builds (KILN_CUDA_ARCHITECTURES overrides; the default is 80;86;89;90).
cuda_arch=()
if [ -n "${KILN_CUDA_ARCHITECTURES:-}" ]; then cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES="$KILN_CUDA_ARCHITECTURES")
elif [ "${CI:-}" = "true" ]; then cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES=90); fi
[ -x /usr/local/cuda/bin/nvcc ] && export CUDACXX=${CUDACXX:-/usr/local/cuda/bin/nvcc}
cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda_arch[@]}" >/dev/null
cmake --build "$here/build" -j"$(nproc)"
echo "setup: built $here/build/kiln"
