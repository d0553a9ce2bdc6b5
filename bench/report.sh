#!/bin/sh
# The tables behind the README's "Where it stands", in one sitting: each suite at batch 1, forward (against torch
# default and torch native) and forward + backward (against torch default), on 2 threads and on 1; then the
# depthwise suite again on channels_last tensors (against torch default). JSON and charts go to the directory given
# (default bench/results). Run from the repository root with torchconv installed.
set -e
out=${1:-bench/results}
for suite in mobilenetv2 resnext resnet50; do
  for threads in 2 1; do
    python bench/bench.py --suite "$suite" --batch 1 --threads "$threads" --baseline both \
      --json "$out/${suite}_forward_${threads}t.json" --chart "$out/${suite}_forward_${threads}t.png"
    python bench/bench.py --suite "$suite" --batch 1 --threads "$threads" --mode fwdbwd --baseline default \
      --json "$out/${suite}_fwdbwd_${threads}t.json" --chart "$out/${suite}_fwdbwd_${threads}t.png"
  done
done
for threads in 2 1; do
  for mode in forward fwdbwd; do
    python bench/bench.py --suite mobilenetv2 --batch 1 --threads "$threads" --mode "$mode" --baseline default \
      --channels-last --json "$out/mobilenetv2_channels_last_${mode}_${threads}t.json" \
      --chart "$out/mobilenetv2_channels_last_${mode}_${threads}t.png"
  done
done
