#!/usr/bin/env bash
# Prints the path of an nvcc to build the CUDA kernels with: $CUDACXX, nvcc on the PATH, /usr/local/cuda's, or
# else one installed from the package index (the nvidia-cuda-nvcc 13 wheels and the headers and static runtime
# it compiles and links against) into build/cuda-toolkit.
set -euo pipefail
cd "$(dirname "$0")/.."

for c in "${CUDACXX:-}" "$(command -v nvcc || true)" /usr/local/cuda/bin/nvcc; do
  if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; exit 0; fi
done
prefix=$PWD/build/cuda-toolkit
if [ ! -x "$prefix/nvidia/cu13/bin/nvcc" ]; then
  echo "scripts/nvcc.sh: no nvcc found; installing CUDA 13.0's compiler from the package index into $prefix" >&2
  python -m pip install -q --target "$prefix" "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" \
    "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-culibos==13.0.*" >&2
  ln -sfn lib "$prefix/nvidia/cu13/lib64"  # where nvcc.profile looks for the runtime on a 64-bit host
fi
echo "$prefix/nvidia/cu13/bin/nvcc"
