#!/usr/bin/env bash
# Benchmarks `bfq unet` against diffusers' UNet2DConditionModel in PyTorch (float32, CPU, the same THREADS threads)
# in the same run, on the fixture UNet (testdata/unet: batch 2, 16x16 latents, 77 tokens) and on the SD-v1.5-shaped
# model (tools/make_sd15_shaped.py; batch 1, 77 tokens of width 768, timestep 500) at 32x32 and 64x64 latents; then
# `bfq unet` on the SD-shaped 1.99-bit .bfq at 64x64 (timestep 501: the .bfq's time-feature cache holds 50 timesteps,
# 1, 21, ..., 981) and `bfq eval` of that .bfq against the fp16 original.
#
# Paired runs: each of RUNS rounds (after one warm-up round) runs every bfq variant as a whole process, then one
# torch process that loads the model and runs 3 forward passes, all under /usr/bin/time -v (wall seconds, peak RSS).
# Per round, bfq's whole process is set against that round's torch forward (median of its 3, model loaded): the
# rounds' median of that ratio is the "bfq/torch forward" column, so a machine whose speed drifts moves both sides.
# "torch (process)" is the torch process's wall time less its 2nd and 3rd forwards: one load and one forward, imports
# included. Each whole process starts with its weights file in the page cache (read just before, untimed: SDXL's torch
# process holds 15 GB and evicts the other file). Both load their weights from the fp16 file: bfq maps it and widens each tensor to f32
# when its layer runs, torch converts every tensor to f32 before the forward pass. Figures are medians over rounds.
# bfq's noise_pred is checked against torch's. Per-round figures go to BENCH_DIR/bench_unet.CASE.tsv.
#
# SDXL cases (opt-in: CASES="sdxl64 sdxl128 sdxlbfq128"): the SDXL-shaped base UNet (tools/make_sdxl_shaped.py;
# batch 1, 77 tokens of width 2048, text_embeds [1,1280], time_ids 1024,1024,0,0,1024,1024, timestep 500) at 64x64
# and 128x128 latents against torch (one forward per torch process, TORCH_REPEAT_SDXL=1: at 128x128 one takes
# minutes), and its 1.99-bit .bfq at 128x128 (no torch; goal <= 1.5 GB peak RSS).
#
#     tools/bench_unet.sh [BENCH_DIR]     (default bench/; RUNS=3, THREADS=2, CASES="fixture sd32 sd64 bfq64")
#
# Variants of bfq in the same rounds, for before/after tables:
#   BASELINE_REV=REV   also runs bfq built (release) from git revision REV in a temporary worktree;
#   CORETYPES="A B"    also runs this bfq with OPENBLAS_CORETYPE=A, =B (kernel sets forced as a user could, e.g.
#                      Prescott: what OpenBLAS 0.3.21 runs on an x86-64 CPU model it does not know).
#
# Makes in BENCH_DIR when missing: sd15_shaped.fp16.safetensors (and .fp32.ckpt, by make_sd15_shaped.py), its
# diffusers-named copy sd15_shaped.diffusers.fp16.safetensors for torch, and sd15_shaped.1.99.bfq (bfq64 only); for
# the SDXL cases sdxl_shaped.fp16.safetensors and its diffusers-named copy (make_sdxl_shaped.py, which needs
# CONVERT_SCRIPT=diffusers' scripts/convert_diffusers_to_original_sdxl.py) and sdxl_shaped.1.99.bfq.
# Needs /usr/bin/time, python3 with torch, diffusers, safetensors and numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench}
runs=${RUNS:-3}
threads=${THREADS:-2}
cases=${CASES:-fixture sd32 sd64 bfq64}
for c in $cases; do
  case $c in fixture | sd32 | sd64 | bfq64 | sdxl64 | sdxl128 | sdxlbfq128) ;;
    *) echo "unknown case '$c' in CASES (fixture sd32 sd64 bfq64 sdxl64 sdxl128 sdxlbfq128)" >&2; exit 64 ;;
  esac
done
want() { [[ " $cases " == *" $1 "* ]]; }
export BFQ_THREADS=$threads
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

source tools/bench_variants.sh
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
xl=$dir/sdxl_shaped.fp16.safetensors
xl_diffusers=$dir/sdxl_shaped.diffusers.fp16.safetensors
xl_quantized=$dir/sdxl_shaped.1.99.bfq
if want sdxl64 || want sdxl128 || want sdxlbfq128; then
  if [ ! -f "$xl" ] || [ ! -f "$xl_diffusers" ]; then
    python3 tools/make_sdxl_shaped.py --convert-script "${CONVERT_SCRIPT:?set CONVERT_SCRIPT to scripts/convert_diffusers_to_original_sdxl.py of diffusers}" "$dir" >&2
  fi
fi
if want sdxlbfq128; then
  [ -f "$xl_quantized" ] || "$bfq" quantize "$xl" "$xl_quantized" --bits 1.99 >/dev/null
fi
sync  # no timed run pays for the writeback of files made above

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
timed() {  # output file for "wall_seconds peak_rss_MB", then a command (with its environment assignments): runs it quietly
  local out=$1
  shift
  /usr/bin/time -v -o "$tmp/time.txt" env "$@" >"$tmp/out.log" 2>&1 || { echo "failed: $*" >&2; cat "$tmp/out.log" >&2; return 1; }
  awk '/Elapsed \(wall clock\)/ {n = split($NF, t, ":"); w = (n == 3) ? t[1] * 3600 + t[2] * 60 + t[3] : t[1] * 60 + t[2]}
       /Maximum resident set size/ {r = $6 / 1024} END {print w, r}' "$tmp/time.txt" >"$out"
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
compare() {  # case name, label, input, bfq model and options, torch --config, torch --weights (torch: "-" for none),
             # torch forwards per process (default 3)
  local name=$1 label=$2 input=$3 model=$4 config=$5 weights=$6 repeat=${7:-3}
  local tsv=$dir/bench_unet.$name.tsv torch_args=""
  echo "== $label"
  [ "$config" = - ] || torch_args="tools/bench_unet_torch.py --config $config --weights $weights --input $input --threads $threads"
  printf 'round\tvariant\twall_s\tpeak_rss_mb\ttorch_forward_s\n' >"$tsv"
  local round v
  for round in $(seq 0 "$runs"); do  # round 0 warms the page cache and is not counted
    local forward=""
    if [ -n "$torch_args" ]; then
      cat "$weights" >/dev/null  # in the page cache, whatever the previous process evicted
      timed "$tmp/t.txt" python3 $torch_args --repeat "$repeat" --output "$tmp/torch.safetensors" >/dev/null
      cp "$tmp/out.log" "$tmp/forward.txt"
      forward=$(awk '/^median forward/ {print $3}' "$tmp/forward.txt")
      local later
      later=$(awk '/^run [0-9]+:/ && $2 != "1:" {s += $4} END {print s + 0}' "$tmp/forward.txt")
      [ "$round" = 0 ] || printf '%s\ttorch\t%s\t%s\t%s\n' "$round" "$(awk -v l="$later" '{print $1 - l}' "$tmp/t.txt")" \
        "$(awk '{print $2}' "$tmp/t.txt")" "$forward" >>"$tsv"
    fi
    for v in "${!variants[@]}"; do
      IFS='|' read -r vlabel binary core <<<"${variants[$v]}"
      local envs=(BFQ_THREADS="$threads")
      [ -z "$core" ] || envs+=(OPENBLAS_CORETYPE="$core")
      cat "${model%% *}" >/dev/null  # torch's 15 GB (SDXL) evicts bfq's file from a 24 GB machine's page cache
      timed "$tmp/b.txt" "${envs[@]}" "$binary" unet $model --input "$input" --output "$tmp/bfq$v.safetensors" --no-fsync
      [ "$round" = 0 ] || printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$vlabel" "$(awk '{print $1}' "$tmp/b.txt")" \
        "$(awk '{print $2}' "$tmp/b.txt")" "$forward" >>"$tsv"
    done
  done
  if [ -n "$torch_args" ]; then
    sed -n 's/^run /  torch run /p' "$tmp/forward.txt"
    for v in "${!variants[@]}"; do
      echo "  ${variants[$v]%%|*}: $(agreement "$tmp/bfq$v.safetensors" "$tmp/torch.safetensors")"
    done
  fi
  local torch_s torch_rss forward_s
  torch_s=$(awk -F'\t' '$2 == "torch" {print $3}' "$tsv" | median)
  torch_rss=$(awk -F'\t' '$2 == "torch" {print $4}' "$tsv" | median)
  forward_s=$(awk -F'\t' '$2 == "torch" {print $5}' "$tsv" | median)
  for v in "${!variants[@]}"; do
    local vlabel=${variants[$v]%%|*} bfq_s bfq_rss ratio process_ratio
    bfq_s=$(awk -F'\t' -v l="$vlabel" '$2 == l {print $3}' "$tsv" | median)
    bfq_rss=$(awk -F'\t' -v l="$vlabel" '$2 == l {print $4}' "$tsv" | median)
    if [ -n "$torch_args" ]; then
      ratio=$(awk -F'\t' -v l="$vlabel" '$2 == l {printf "%.4f\n", $3 / $5}' "$tsv" | median)
      process_ratio=$(awk -v a="$bfq_s" -v b="$torch_s" 'BEGIN {print a / b}')
      rows+=("$(printf '| %s | %s | %.3f s | %.3f s | %.3f s | %.2fx | %.2fx | %.0f MB | %.0f MB |' "$label" "$vlabel" \
        "$bfq_s" "$torch_s" "$forward_s" "$process_ratio" "$ratio" "$bfq_rss" "$torch_rss")")
    else
      rows+=("$(printf '| %s | %s | %.3f s | - | - | - | - | %.0f MB | - |' "$label" "$vlabel" "$bfq_s" "$bfq_rss")")
    fi
  done
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
  python3 tools/make_unet_input.py "$tmp/in64_t501.safetensors" --batch 1 --size 64x64 --tokens 77 --width 768 \
    --timesteps 501 --seed 0 >/dev/null
  compare bfq64 "SD-shaped 1.99-bit .bfq ($(awk -v b="$(stat -c %s "$quantized")" 'BEGIN {printf "%.0f MB", b / 1e6}')), 64x64, t=501" \
    "$tmp/in64_t501.safetensors" "$quantized" - -
  q_rss=$(awk -F'\t' '$2 == "bfq" {print $4}' "$dir/bench_unet.bfq64.tsv" | median)
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
for size in 64 128; do
  want "sdxl$size" || continue
  python3 tools/make_unet_input.py "$tmp/xl$size.safetensors" --sdxl --batch 1 --size "${size}x$size" --tokens 77 \
    --timesteps 500 --seed 0 >/dev/null
  compare "sdxl$size" "SDXL-shaped fp16, ${size}x$size" "$tmp/xl$size.safetensors" "$xl" sdxl "$xl_diffusers" \
    "${TORCH_REPEAT_SDXL:-1}"
done
if want sdxlbfq128; then
  python3 tools/make_unet_input.py "$tmp/xl128.safetensors" --sdxl --batch 1 --size 128x128 --tokens 77 \
    --timesteps 500 --seed 0 >/dev/null
  compare sdxlbfq128 "SDXL-shaped 1.99-bit .bfq ($(awk -v b="$(stat -c %s "$xl_quantized")" 'BEGIN {printf "%.0f MB", b / 1e6}')), 128x128" \
    "$tmp/xl128.safetensors" "$xl_quantized" - -
  xl_rss=$(awk -F'\t' '$2 == "bfq" {print $4}' "$dir/bench_unet.sdxlbfq128.tsv" | median)
  awk -v r="$xl_rss" 'BEGIN {printf "  SDXL .bfq peak RSS at 128x128: %.2f GB (%s the 1.5 GB goal)\n", r * 1048576 / 1e9, (r * 1048576 <= 1.5e9) ? "within" : "OVER"}'
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); $("$bfq" --version | sed -n 2p)"
echo
echo "| case | run | bfq unet | torch (process) | torch forward | bfq/torch | bfq/torch forward | bfq RSS | torch RSS |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
echo
echo "bfq unet and torch (process): whole processes, reading the fp16 weights (page cache) and widening them included;"
echo "torch forward: in process, model loaded. Goal bfq/torch <= 1.0x, never above 1.5x. bfq/torch forward sets bfq's"
echo "whole process against torch's forward alone, round by round (median of the rounds' ratios): an upper bound of the"
echo "forward-to-forward ratio."
