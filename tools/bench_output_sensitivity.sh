#!/usr/bin/env bash
# Quality of output-space bit allocation on the trained tiny UNet of testdata/: the fast measurement
# (--sensitivity output), the exhaustive one (output-exhaustive: every candidate of every layer rerun) and the
# weight-space plan, each quantized at BITS (default 1.99 and 2.5) and evaluated with `bfq eval` on inputs other than
# the calibration set's (seed 7, 4 samples of 16x16, the default 5 timesteps); then the predicted curve against
# measured SQNR at three budgets. Release build; run from anywhere.
#
#     tools/bench_output_sensitivity.sh [WORK_DIR]      (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release >/dev/null
bfq=$PWD/.build/release/bfq
model=$PWD/testdata/unet/tiny_unet.ldm.safetensors
config=$PWD/testdata/unet/config.json
dir=${1:-$(mktemp -d)}
mkdir -p "$dir"
eval_sqnr() {  # .bfq -> "conditional guided" SQNR in dB
  "$bfq" eval "$model" "$1" --config "$config" --seed 7 --samples 4 --size 16x16 --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f %.2f" % (d["sqnr_db"], d["guided"]["sqnr_db"]))'
}
for s in ${SKIP_MEASURING:+none} output output-exhaustive; do
  [ "$s" = none ] && break
  start=$(date +%s.%N)
  "$bfq" plan "$model" --sensitivity "$s" --save-measurements "$dir/m_$s.json" >/dev/null
  echo "measuring with --sensitivity $s: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s"
done
echo "| bits | weight-space plan | fast output (--sensitivity output) | exhaustive (output-exhaustive) |"
echo "| ---: | ---: | ---: | ---: |"
for bits in ${BITS:-1.99 2.5}; do
  "$bfq" quantize "$model" "$dir/w.bfq" --bits "$bits" --no-fsync >/dev/null
  row="| $bits | $(eval_sqnr "$dir/w.bfq")"
  for s in output output-exhaustive; do
    "$bfq" quantize "$model" "$dir/$s.bfq" --measurements "$dir/m_$s.json" --bits "$bits" --no-fsync >/dev/null
    row="$row | $(eval_sqnr "$dir/$s.bfq")"
  done
  echo "$row |   (conditional / guided noise-prediction SQNR, dB)"
done
echo "predicted (calibration set) against measured (bfq eval) SQNR, fast measurement:"
"$bfq" plan "$model" --measurements "$dir/m_output.json" --curve | sed -n '/curve/,$p' > "$dir/curve.txt"
for bits in 1.6 2.5 3.5; do
  "$bfq" quantize "$model" "$dir/c.bfq" --measurements "$dir/m_output.json" --bits "$bits" --no-fsync >/dev/null
  predicted=$(awk -v b="$bits" '$1 == sprintf("%.2f", b) {print $3}' "$dir/curve.txt")
  echo "  $bits bits: predicted $predicted dB, measured $(eval_sqnr "$dir/c.bfq" | cut -d' ' -f1) dB"
done
