#!/usr/bin/env bash
# Quality of GPTQ rounding (--rounding gptq, the default) against nearest rounding on the trained tiny UNet of
# testdata/, with the same plans: weight-space (--sensitivity weight) and output-space (--sensitivity output, measured
# once) allocation at BITS (default 1.99 and 2.5), each with and without bias correction; noise-prediction SQNR from
# `bfq eval` on inputs other than the calibration set's (seed 7, 4 samples of 16x16, the default 5 timesteps). Then
# the per-layer output SQNR on held-out calibration positions (quantize --json), GPTQ's settings one at a time, and,
# when the SD-v1.5-shaped fp16 file exists (tools/make_sd15_shaped.py; SD=path), wall time and peak RSS of quantizing
# it at --bits 1.99 with GPTQ (/usr/bin/time -v, median of SD_RUNS, default 1). Release build; run from anywhere.
#
#     tools/bench_rounding.sh [WORK_DIR]      (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release >/dev/null
bfq=$PWD/.build/release/bfq
model=$PWD/testdata/unet/tiny_unet.ldm.safetensors
config=$PWD/testdata/unet/config.json
sd=${SD:-$PWD/bench/sd15_shaped.fp16.safetensors}
dir=${1:-$(mktemp -d)}
mkdir -p "$dir"
eval_sqnr() {  # .bfq -> "conditional / guided" SQNR in dB
  "$bfq" eval "$model" "$1" --config "$config" --seed 7 --samples 4 --size 16x16 --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f / %.2f" % (d["sqnr_db"], d["guided"]["sqnr_db"]))'
}
quantize() {  # output, options... -> eval SQNR
  "$bfq" quantize "$model" "$dir/$1" --no-fsync --json "${@:2}" > "$dir/$1.json" 2>/dev/null
  eval_sqnr "$dir/$1"
}
"$bfq" plan "$model" --sensitivity output --save-measurements "$dir/m.json" >/dev/null
echo "noise-prediction SQNR, conditional / guided (dB), same plan per row:"
echo "| bits | plan | nearest | nearest + bias correction | GPTQ, no bias correction | GPTQ + bias correction (default) |"
echo "| ---: | --- | ---: | ---: | ---: | ---: |"
for bits in ${BITS:-1.99 2.5}; do
  for plan in weight output; do
    source=(--bits "$bits")
    [ "$plan" = output ] && source+=(--measurements "$dir/m.json")
    echo "| $bits | $plan | $(quantize n.bfq "${source[@]}" --rounding nearest) | $(quantize nb.bfq "${source[@]}" --rounding nearest --bias-correction)" \
      "| $(quantize g.bfq "${source[@]}" --no-bias-correction) | $(quantize gb.bfq "${source[@]}") |"
  done
done
echo
echo "per-layer output SQNR on held-out calibration positions (1 in 8), --bits 1.99, weight-space plan:"
"$bfq" quantize "$model" "$dir/l.bfq" --bits 1.99 --no-fsync --json > "$dir/l.json" 2>/dev/null
python3 - "$dir/l.json" <<'PY'
import collections, json, sys
rows = collections.defaultdict(list)
added = []
for t in json.load(open(sys.argv[1]))["tensors"]:
    r = t.get("rounding")
    if not r or "held_out_sqnr_db" not in r or None in r["held_out_sqnr_db"].values():
        continue
    h = r["held_out_sqnr_db"]
    rows[t["encoding"]].append((h["nearest"], h["kept"], r["method"], t["parameters"]))
    if "held_out_sqnr_db_with_added_bias" in r and t["name"].endswith("to_q.weight"):
        added.append(r["held_out_sqnr_db_with_added_bias"] - h["kept"])
print("| encoding | layers | kept GPTQ | mean nearest dB | mean kept dB | mean gain dB | parameter-weighted gain dB |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for k in sorted(rows, key=lambda k: (k.split("-")[1], int(k.split("-")[0]))):
    v = rows[k]
    n, kept = sum(x[0] for x in v) / len(v), sum(x[1] for x in v) / len(v)
    w = sum((x[1] - x[0]) * x[3] for x in v) / sum(x[3] for x in v)
    print(f"| {k} | {len(v)} | {sum(x[2] == 'gptq' for x in v)} | {n:.2f} | {kept:.2f} | {kept - n:.2f} | {w:.2f} |")
if added:
    print(f"a bias on each attention query projection (none is added) would raise its held-out output SQNR by "
          f"{sum(added) / len(added):.2f} dB on average ({len(added)} layers)")
PY
echo
echo "GPTQ settings one at a time, --bits 1.99, weight-space plan (conditional / guided dB):"
echo "| setting | SQNR |"
echo "| --- | ---: |"
for setting in "" "--column-order natural" "--damping 0.001" "--damping 0.1" "--hessian-block 72" \
               "--calibration-samples 8" "--calibration-samples 8 --calibration-size 32x32"; do
  # shellcheck disable=SC2086
  echo "| ${setting:-defaults} | $(quantize s.bfq --bits 1.99 $setting) |"
done
if [ -f "$sd" ]; then
  echo
  echo "SD-v1.5-shaped fp16 ($(basename "$sd")), quantize --bits 1.99 (GPTQ, default calibration), $(nproc) cores:"
  for _ in $(seq "${SD_RUNS:-1}"); do
    /usr/bin/time -v "$bfq" quantize "$sd" "$dir/sd.bfq" --bits 1.99 --no-fsync 2>&1 >/dev/null |
      awk '/Elapsed/ {split($NF, t, ":"); printf "%s ", t[1] * 60 + t[2]} /Maximum resident/ {print $6 / 1024}'
  done | sort -n | awk '{w[NR]=$1; r[NR]=$2} END {m=int((NR+1)/2); printf "wall %.1f s, peak RSS %.0f MB (median of %d)\n", w[m], r[m], NR}'
  rm -f "$dir/sd.bfq"
fi
