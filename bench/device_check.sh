#!/usr/bin/env bash
# The whole GPU check of torchconv's CUDA backend in one run, for a GPU machine with torch, nvcc, CMake, ninja,
# pybind11, scikit-build-core, pytest and compute-sanitizer, and no network (an H200 with torch 2.11+cu130 takes
# about 8 minutes on 16 cores):
#
#     bench/device_check.sh OUT_DIR
#
# 1. build the CUDA wheel for the GPU's architecture (sm_90 unless TORCHCONV_CUDA_ARCHITECTURES says otherwise)
#    and install it into OUT_DIR/site;
# 2. tests/test_cuda.py: every CUDA kernel against cuDNN and the CPU, every dtype and layout, large batches, past
#    2^31 elements, determinism, streams, opcheck, torch.compile;
# 3. compute-sanitizer memcheck, racecheck and synccheck on tiny cases of every kernel;
# 4. the benchmark against cuDNN, torch native and deterministic torch: depthwise, grouped and dense suites at
#    batch 32, NCHW and channels_last, forward and forward + backward (JSON tables in OUT_DIR).
# Every stage runs under its own timeout and logs to OUT_DIR/<stage>.log; OUT_DIR/summary.txt has each one's exit
# status and time. The script goes on after a failed stage and exits non-zero if any failed.
set -uo pipefail
out=$(mkdir -p "${1:?usage: bench/device_check.sh OUT_DIR}" && cd "$1" && pwd)
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
failed=0

stage() {  # name, seconds, command...
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  echo "$name: exit $rc after $(( $(date +%s) - start )) s (limit $limit s)" | tee -a "$out/summary.txt"
  tail -n 4 "$out/$name.log"
  [ "$rc" -eq 0 ] || failed=1
  return "$rc"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
archs=${TORCHCONV_CUDA_ARCHITECTURES:-90}
stage build 240 "$py" -m pip wheel -q --no-build-isolation --no-deps -w "$out/wheel" -Cbuild-dir=build/device \
  -Ccmake.define.TORCHCONV_CUDA=ON "-Ccmake.define.CMAKE_CUDA_ARCHITECTURES=$archs" . &&
  stage install 60 "$py" -m pip install -q --no-deps --no-index --target "$out/site" "$out"/wheel/torchconv-*.whl ||
  { echo "no build: nothing else to check"; exit 1; }
export PYTHONPATH=$out/site${PYTHONPATH:+:$PYTHONPATH}
tests=$PWD/tests
( cd "$out" && "$py" -c "import torchconv, json; print(json.dumps(torchconv.build_info()))" ) | tee "$out/build_info.json"

# From outside the tree, so the installed wheel is what runs.
stage tests 200 bash -c "cd '$out' && '$py' -m pytest -q -p no:cacheprovider -x '$tests/test_cuda.py' \
  -k 'not test_cuda_kernel_matches_torch or float32 or bfloat16'"

# Tiny cases of every kernel, with the caching allocator off so memcheck sees each buffer's own bounds.
cat > "$out/sanitize_cases.py" <<'PY'
import torch, torchconv
ops = torch.ops.torchconv
torch.manual_seed(0)
for name in [k["name"] for k in torchconv.kernels("cuda")]:
    for dtype in (torch.float32, torch.float16):
        x = torch.randn(2, 4, 5, 6, device="cuda", dtype=dtype)
        if "nhwc" in name:
            x = x.contiguous(memory_format=torch.channels_last)
        w = torch.randn(4, 2, 3, 2, device="cuda", dtype=dtype)
        args = ([2, 1], [1, 0, 2, 1], [1, 2], 2, "reflect", name)
        pass_ = next(k["pass"] for k in torchconv.kernels("cuda") if k["name"] == name)
        y = ops.conv2d(x, w, None, *args[:-1], "auto")
        gy = torch.randn_like(y)
        if pass_ == "forward":
            ops.conv2d(x, w, None, *args)
        elif pass_ == "grad_input":
            ops.conv2d_grad_input(gy, w, list(x.shape), *args)
        else:
            ops.conv2d_grad_weight(x, gy, list(w.shape), *args)
torch.cuda.synchronize()
print("sanitizer cases ran")
PY
for tool in memcheck racecheck synccheck; do
  stage "sanitize_$tool" 90 env PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool "$tool" --error-exitcode 9 \
    "$py" "$out/sanitize_cases.py"
done

bench() {  # name, seconds, bench arguments...
  local name=$1 limit=$2
  shift 2
  stage "bench_$name" "$limit" bash -c "cd '$out' && '$py' -m torchconv.bench --device cuda --batch 32 \
    --json '$out/bench_$name.json' $*"
}
bench mobilenetv2_fwd 60 --suite mobilenetv2 --baseline all
bench mobilenetv2_fwd_cl 60 --suite mobilenetv2 --baseline all --channels-last
bench mobilenetv2_fwdbwd 60 --suite mobilenetv2 --baseline all --mode fwdbwd
bench mobilenetv2_fwdbwd_cl 60 --suite mobilenetv2 --baseline all --mode fwdbwd --channels-last
bench resnext_fwdbwd 60 --suite resnext --baseline all --mode fwdbwd
bench resnet50_fwd 60 --suite resnet50 --baseline all
exit "$failed"
