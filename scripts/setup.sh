#!/usr/bin/env bash
# Idempotent set-up: installs every dependency kiln needs: C++ libraries and Debian's Python
# (/usr/bin/python3 with python3-torch 1.13, which exports the test models) from Debian's
# packages; the Python tooling (onnx 1.23, onnxruntime) from PyPI, pinned by
# scripts/python-lock.txt, into build/pyenv with the machine's PyPI `python3`.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev nlohmann-json3-dev libxxhash-dev
  libjpeg62-turbo-dev libpng-dev libtiff-dev libwebp-dev libopenjp2-7-dev
  python3 python3-numpy python3-onnx python3-torch python3-torchvision
  clang-14 libclang-rt-14-dev llvm-14  # the ASan/UBSan + libFuzzer build (scripts/sanitize.sh, fuzz.sh)
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

# Python tooling from PyPI, in a virtual environment of the machine's `python3` (the PyPI
# interpreter, not Debian's /usr/bin/python3, whose onnx is 1.12): exactly the versions of
# scripts/python-lock.txt, transitive ones included, installed with --no-deps so nothing unpinned
# resolves in. onnx 1.23 generates the current node-test suite, onnxruntime is the second
# reference. An environment that differs from the lock is made anew; under CI it is always made
# anew, so CI proves the lock on a fresh environment. Failing to make it is an error.
# lock_env VENV LOCK WHAT: makes VENV hold exactly LOCK (anew where it differs, always under CI).
locked() { grep -v '^#' "$1" | grep . | sort -f; }
frozen() { "$1/bin/python" -m pip freeze --all 2>/dev/null | grep -v -E '^(pip|setuptools|wheel)==' | sort -f; }
lock_env() {
  local venv=$1 lock=$2 what=$3 name want
  name=scripts/$(basename "$lock")
  want=$(locked "$lock")
  if [ "${CI:-}" = "true" ] || [ "$(frozen "$venv")" != "$want" ]; then
    echo "setup: $what into $venv from $name ($(python3 --version), $(command -v python3))"
    rm -rf "$venv"
    python3 -m venv "$venv" || { echo "setup: ERROR: python3 -m venv failed"; exit 1; }
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$lock" ||
      { echo "setup: ERROR: pip could not install $name"; exit 1; }
    "$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null ||
      { "$venv/bin/python" -m pip check; echo "setup: ERROR: $name is incomplete or inconsistent (pip check above)"; exit 1; }
    if [ "$(frozen "$venv")" != "$want" ]; then
      echo "setup: ERROR: $venv differs from $name:"; diff <(echo "$want") <(frozen "$venv"); exit 1
    fi
  fi
  echo "setup: $what $venv ($("$venv/bin/python" --version)): $(echo $want | tr '\n' ' ')"
}
venv="$here/build/pyenv"
lock_env "$venv" "$here/scripts/python-lock.txt" "python tooling"

# `kiln serve` (issue 17): nvidia-pytriton (Triton Inference Server's binaries) + tritonclient in
# their own environment, build/serve-env, from scripts/serve-lock.txt, made and checked as above
# (PyTriton needs numpy<2, tritonclient protobuf<7: they cannot share build/pyenv). The Python
# backend stub of PyTriton links libpython3.x.so: the interpreter must be a shared-library build
# (kiln serve points LD_LIBRARY_PATH at its LIBDIR). About 370 MB, a minute to install.
senv="$here/build/serve-env"
lock_env "$senv" "$here/scripts/serve-lock.txt" "kiln serve's environment"
"$senv/bin/python" -c 'import sysconfig, sys; sys.exit(0 if sysconfig.get_config_var("Py_ENABLE_SHARED") else 1)' ||
  echo "setup: WARNING: $(python3 --version) is not a shared-library build: kiln serve's Triton Python stub needs libpython"
# kiln's Python module (python/) is the target kiln_python of build/; a .pth file puts
# build/python on build/pyenv's path (pip freeze does not list it).
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$here/build/python" > "$site/kiln-build.pth"
ssite=$("$senv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$here/build/python" > "$ssite/kiln-build.pth"

# ccache keys on paths relative to the checkout, so a fresh clone elsewhere (CI's) reuses the
# objects an earlier build of the same sources left.
export CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=1
# Build (Release, Ninja) into build/. Re-running only rebuilds what changed.
# CUDA code is compiled only where the toolkit is found, for the GPU present (sm_90 where there is
# none; CI compiles for sm_90 alone, to prove it builds). KILN_CUDA_ARCHITECTURES="80;86;89;90"
# builds for others.
cuda_arch=()
if [ -n "${KILN_CUDA_ARCHITECTURES:-}" ]; then cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES="$KILN_CUDA_ARCHITECTURES")
elif [ "${CI:-}" = "true" ]; then cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES=90); fi
[ -x /usr/local/cuda/bin/nvcc ] && export CUDACXX=${CUDACXX:-/usr/local/cuda/bin/nvcc}
cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_PYTHON=ON \
      -DPython_EXECUTABLE="$venv/bin/python" "${cuda_arch[@]}" >/dev/null
cmake --build "$here/build" -j"$(nproc)"
echo "setup: built $here/build/kiln"
