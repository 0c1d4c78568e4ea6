#!/usr/bin/env bash
# Quality of bfq's quantizers (README "Quantizer quality"): SQNR, accounted and stored bits per weight, CPU time, per
# setting and bit width (Sources/bfq-bench-quantize), on the trained tiny UNet in testdata/, on every conv and linear
# weight of the SD-v1.5-shaped file, on the SD tensors whose rows llama.cpp's K-quants take (row length a multiple of
# 256), and on three seeded heavy-tailed 4096 x 4096 matrices (tools/make_heavy_tailed.py), so they can be set
# against ggml's quantizers on the same values.
#
#     tools/bench_quality.sh [BENCH_DIR]     (default bench/; needs python3 with numpy, safetensors, torch)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench}
mkdir -p "$dir"
[ -f "$dir/sd15_shaped.fp16.safetensors" ] || python3 tools/make_sd15_shaped.py "$dir"
[ -f "$dir/heavy_tailed.safetensors" ] || python3 tools/make_heavy_tailed.py "$dir"
swift build -c release --product bfq-bench-quantize >/dev/null
bench=.build/release/bfq-bench-quantize
$bench testdata/unet/tiny_unet.ldm.safetensors
$bench "$dir/sd15_shaped.fp16.safetensors" 1 2 3 4 5 6
$bench "$dir/sd15_shaped.fp16.safetensors" --row-multiple 256 1 2 3 4 5
for matrix in student_t3 laplace gauss_outliers; do
  $bench "$dir/heavy_tailed.safetensors" --only "$matrix" 1 2 3 4 5
done
