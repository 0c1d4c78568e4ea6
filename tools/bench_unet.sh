#!/usr/bin/env bash
# Benchmarks `bfq unet` against diffusers' UNet2DConditionModel in PyTorch (float32, CPU, the same THREADS threads)
# in the same run, on the fixture UNet (testdata/unet: batch 2, 16x16 latents, 77 tokens) and on the SD-v1.5-shaped
# model (tools/make_sd15_shaped.py; batch 1, 77 tokens of width 768, timestep 500) at 32x32 and 64x64 latents; then
# `bfq unet` on the SD-shaped 1.99-bit .bfq at 64x64 (timestep 501: the .bfq's time-feature cache holds 50 timesteps,
# 1, 21, ..., 981) and `bfq eval` of that .bfq against the fp16 original.
#
# Whole-process wall time with hyperfine (warm-up 1, median of RUNS runs, inputs in the page cache) of `bfq unet` and
# of tools/bench_unet_torch.py --repeat 1 (python, torch and diffusers imports included). Both whole processes load
# their weights from the fp16 file: bfq maps it and widens each tensor to f32 when its layer runs, torch converts every
# tensor to f32 before the forward pass. torch's in-process forward time (model loaded, median of 3 forwards) is shown
# beside; bfq has no in-process figure. Peak RSS with /usr/bin/time -v (one run each; the .bfq: median of RUNS runs).
# bfq's noise_pred is checked against torch's.
# Hyperfine's JSON is kept as BENCH_DIR/bench_unet.CASE.json.
#
#     tools/bench_unet.sh [BENCH_DIR]     (default bench/; RUNS=3, THREADS=2, CASES="fixture sd32 sd64 bfq64")
#
# Makes in BENCH_DIR when missing: sd15_shaped.fp16.safetensors (and .fp32.ckpt, by make_sd15_shaped.py), its
# diffusers-named copy sd15_shaped.diffusers.fp16.safetensors for torch, and sd15_shaped.1.99.bfq (bfq64 only).
# Needs hyperfine, /usr/bin/time, python3 with torch, diffusers, safetensors and numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench}
runs=${RUNS:-3}
threads=${THREADS:-2}
cases=${CASES:-fixture sd32 sd64 bfq64}
for c in $cases; do
  case $c in fixture | sd32 | sd64 | bfq64) ;; *) echo "unknown case '$c' in CASES (fixture sd32 sd64 bfq64)" >&2; exit 64 ;; esac
done
want() { [[ " $cases " == *" $1 "* ]]; }
export BFQ_THREADS=$threads
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

swift build -c release --product bfq >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }
bfq=$PWD/.build/release/bfq
st=$dir/sd15_shaped.fp16.safetensors
diffusers=$dir/sd15_shaped.diffusers.fp16.safetensors
quantized=$dir/sd15_shaped.1.99.bfq
if want sd32 || want sd64 || want bfq64; then
  [ -f "$st" ] || python3 tools/make_sd15_shaped.py "$dir" >&2
fi
if want sd32 || want sd64; then
  [ -f "$diffusers" ] || "$bfq" convert "$st" "$diffusers" --names diffusers >/dev/null
fi
if want bfq64; then
  [ -f "$quantized" ] || "$bfq" quantize "$st" "$quantized" --bits 1.99 --cache-timesteps 50 >/dev/null
fi
sync  # no timed run pays for the writeback of files made above

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
run_or_show() {  # runs a shell command quietly; on failure shows its output and fails
  bash -c "$1" >"$tmp/out.log" 2>&1 || { echo "failed: $1" >&2; cat "$tmp/out.log" >&2; return 1; }
}
peak_rss_mb() {  # median peak RSS in MB of a shell command over $1 runs
  for _ in $(seq "$1"); do
    run_or_show "/usr/bin/time -v -o $tmp/time.txt $2"
    awk '/Maximum resident set size/ {print $6 / 1024}' "$tmp/time.txt"
  done | median
}
hyperfine_medians() {  # JSON name, commands...: median wall seconds of each, one per line
  local json=$dir/bench_unet.$1.json
  shift
  hyperfine --warmup 1 --runs "$runs" --export-json "$json" "$@" >"$tmp/hyperfine.log" 2>&1 \
    || { cat "$tmp/hyperfine.log" >&2; return 1; }
  python3 -c "import json, sys; [print(r['median']) for r in json.load(open(sys.argv[1]))['results']]" "$json"
}
agreement() {  # bfq's noise_pred file, torch's
  python3 - "$1" "$2" <<'PY'
import sys
import numpy as np
from safetensors.numpy import load_file
ours, torch = (load_file(path)["noise_pred"].astype(np.float64) for path in sys.argv[1:])
if ours.shape != torch.shape:
    sys.exit(f"noise_pred shapes differ: bfq {list(ours.shape)}, torch {list(torch.shape)}")
diff, std = np.abs(ours - torch).max(), torch.std()
print(f"max |bfq - torch| {diff:.3g}, torch std {std:.4g}: {diff / std:.2e} of std"
      f"{'' if diff <= 1e-3 * std else '  (MORE THAN 1e-3 OF STD)'}")
PY
}

rows=()
compare() {  # case name, label, input, bfq model and options, torch --config, torch --weights
  local name=$1 label=$2 input=$3 model=$4 config=$5 weights=$6
  local bfq_cmd="$bfq unet $model --input $input --output $tmp/bfq.safetensors --no-fsync"
  local torch_args="tools/bench_unet_torch.py --config $config --weights $weights --input $input --threads $threads"
  local torch_cmd="python3 $torch_args --output $tmp/torch.safetensors --repeat 1"
  echo "== $label"
  local times bfq_s torch_s forward bfq_rss torch_rss
  times=$(hyperfine_medians "$name" "$bfq_cmd" "$torch_cmd")
  bfq_s=$(sed -n 1p <<<"$times"); torch_s=$(sed -n 2p <<<"$times")
  bfq_rss=$(peak_rss_mb 1 "$bfq_cmd"); torch_rss=$(peak_rss_mb 1 "$torch_cmd")
  python3 $torch_args --repeat 3 >"$tmp/forward.txt"
  sed -n 's/^run /  torch run /p' "$tmp/forward.txt"
  forward=$(awk '/^median forward/ {print $3}' "$tmp/forward.txt")
  echo "  $(agreement "$tmp/bfq.safetensors" "$tmp/torch.safetensors")"
  rows+=("$(printf '| %s | %.3f s | %.3f s | %.3f s | %.2fx | %.2fx | %.0f MB | %.0f MB |' "$label" "$bfq_s" "$torch_s" \
    "$forward" "$(awk -v a="$bfq_s" -v b="$torch_s" 'BEGIN {print a / b}')" \
    "$(awk -v a="$bfq_s" -v b="$forward" 'BEGIN {print a / b}')" "$bfq_rss" "$torch_rss")")
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo); load average" \
  "$(cut -d' ' -f1-3 /proc/loadavg); $threads threads (BFQ_THREADS, torch --threads); runs: $runs (median)"
awk '$1 > 0.5 {print "warning: load average " $1 " before the run: other processes are busy and timings will not be reliable" \
  " (torch suffers most: compare its cpu and wall seconds)"}' /proc/loadavg
if want fixture; then
  compare fixture "fixture UNet, batch 2, 16x16" testdata/unet/forward/sd1_batch2.safetensors \
    "testdata/unet/tiny_unet.diffusers.safetensors --config testdata/unet/config.json" \
    testdata/unet/config.json testdata/unet/tiny_unet.diffusers.safetensors
fi
for size in 32 64; do
  want "sd$size" || continue
  python3 tools/make_unet_input.py "$tmp/in$size.safetensors" --batch 1 --size "${size}x$size" --tokens 77 --width 768 \
    --timesteps 500 --seed 0 >/dev/null
  compare "sd$size" "SD-shaped fp16, ${size}x$size" "$tmp/in$size.safetensors" "$st" sd15 "$diffusers"
done
if want bfq64; then
  echo "== SD-shaped 1.99-bit .bfq, 64x64 ($(awk -v b="$(stat -c %s "$quantized")" 'BEGIN {printf "%.0f MB", b / 1e6}'))"
  python3 tools/make_unet_input.py "$tmp/in64_t501.safetensors" --batch 1 --size 64x64 --tokens 77 --width 768 \
    --timesteps 501 --seed 0 >/dev/null
  q_cmd="$bfq unet $quantized --input $tmp/in64_t501.safetensors --output $tmp/q.safetensors --no-fsync"
  q_s=$(hyperfine_medians bfq64 "$q_cmd")
  q_rss=$(peak_rss_mb "$runs" "$q_cmd")
  rows+=("$(printf '| SD-shaped 1.99-bit .bfq, 64x64, t=501 | %.3f s | - | - | - | - | %.0f MB | - |' "$q_s" "$q_rss")")
  "$bfq" eval "$st" "$quantized" --samples 1 --size 32x32 --timesteps 981,501,21 --json >"$tmp/eval.json"
  python3 - "$tmp/eval.json" "$q_rss" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
db = lambda v: "inf" if v is None else f"{v:.2f} dB"
print(f"  bfq eval fp16 vs .bfq (1 sample, 32x32): SQNR {db(r['sqnr_db'])}, cosine {r['cosine']:.5f}; guided: SQNR "
      f"{db(r['guided']['sqnr_db'])}, cosine {r['guided']['cosine']:.5f}; per timestep: "
      + ", ".join(f"t={t['timestep']} {db(t['conditional']['sqnr_db'])}" for t in r["per_timestep"]))
rss = float(sys.argv[2]) * 1024 * 1024
print(f"  .bfq peak RSS at 64x64: {rss / 1e9:.2f} GB ({'within' if rss <= 1.2e9 else 'OVER'} the 1.2 GB goal)")
PY
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| case | bfq unet | torch (process) | torch forward | bfq/torch | bfq/torch forward | bfq RSS | torch RSS |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
echo
echo "bfq unet and torch (process): whole processes, reading the fp16 weights (page cache) and widening them included;"
echo "torch forward: in process, model loaded. Goal bfq/torch <= 1.0x, never above 1.5x. bfq/torch forward sets bfq's"
echo "whole process against torch's forward alone: an upper bound of the forward-to-forward ratio."
