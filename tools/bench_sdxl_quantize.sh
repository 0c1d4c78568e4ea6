#!/usr/bin/env bash
# Times `bfq quantize --bits 1.99` (the defaults: weight-space allocation, GPTQ rounding on the default calibration
# set) on the SD-v1.5-shaped fp16 file (tools/make_sd15_shaped.py) and on the SDXL-base-shaped one
# (tools/make_sdxl_shaped.py) in the same run, jobs in turn, whole processes under /usr/bin/time -v (wall seconds, peak
# RSS), RUNS rounds (default 1: each job takes minutes), medians; neither caches time features (an SDXL UNet cannot,
# spec/bfq.md section 3.3). Prints the SDXL/SD time ratio against the goal (at most 3x) and SDXL's peak RSS against
# 1 GB, then the sizes table of tools/bench_sdxl_sizes.sh with the SDXL .bfq as its bfq row (sd-cli q4_0 and q2_K of
# the same file, converted in the same run unless KEEP=1).
#
#     tools/bench_sdxl_quantize.sh [BENCH_DIR]     (default bench/; RUNS=1, BFQ_THREADS=2; SD_CLI, KEEP as bench_sdxl_sizes.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench}
runs=${RUNS:-1}
export BFQ_THREADS=${BFQ_THREADS:-2}
swift build -c release --product bfq >/dev/null
bfq=.build/release/bfq
sd=$dir/sd15_shaped.fp16.safetensors
xl=$dir/sdxl_shaped.fp16.safetensors
[ -f "$sd" ] || python3 tools/make_sd15_shaped.py "$dir" >&2
if [ ! -f "$xl" ]; then
  python3 tools/make_sdxl_shaped.py --convert-script "${CONVERT_SCRIPT:?set CONVERT_SCRIPT to scripts/convert_diffusers_to_original_sdxl.py of diffusers}" "$dir" >&2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores; $("$bfq" --version | sed -n 2p)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$runs"); do
  for model in sd xl; do
    src=$sd
    [ $model = sd ] || src=$xl
    out=$dir/${model}_shaped.bench.1.99.bfq
    [ $model = sd ] || out=$dir/sdxl_shaped.1.99.bfq
    rm -f "$out"
    sync
    /usr/bin/time -v -o "$tmp/time.txt" "$bfq" quantize "$src" "$out" --bits 1.99 --no-fsync >"$tmp/$model.log" 2>&1 \
      || { echo "failed: quantize $src" >&2; cat "$tmp/$model.log" >&2; exit 1; }
    awk '/Elapsed \(wall clock\)/ {n = split($NF, t, ":"); print (n == 3) ? t[1] * 3600 + t[2] * 60 + t[3] : t[1] * 60 + t[2]}' \
      "$tmp/time.txt" >>"$tmp/$model.wall"
    awk '/Maximum resident set size/ {print $6 / 1024}' "$tmp/time.txt" >>"$tmp/$model.rss"
    stat -c %s "$out" >"$tmp/$model.size"
    echo "round $round, $model: $(tail -n 1 "$tmp/$model.wall") s, $(tail -n 1 "$tmp/$model.rss") MB; $(grep '^average bits' "$tmp/$model.log" || true)"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| job | wall | peak RSS | output |"
echo "| --- | ---: | ---: | ---: |"
for model in sd xl; do
  label="SD-v1.5-shaped (859.5M)"
  [ $model = sd ] || label="SDXL-base-shaped (2567.5M)"
  printf '| quantize --bits 1.99, %s | %.1f s | %.0f MB | %.1f MB |\n' "$label" "$(median <"$tmp/$model.wall")" \
    "$(median <"$tmp/$model.rss")" "$(awk '{print $1 / 1e6}' "$tmp/$model.size")"
done
awk -v a="$(median <"$tmp/xl.wall")" -v b="$(median <"$tmp/sd.wall")" -v r="$(median <"$tmp/xl.rss")" 'BEGIN {
  printf "\nSDXL / SD time: %.2fx (goal at most 3x: %s); SDXL peak RSS %.2f GB (goal at most 1 GB: %s)\n",
    a / b, (a / b <= 3) ? "met" : "MISSED", r * 1048576 / 1e9, (r * 1048576 <= 1e9) ? "met" : "MISSED" }'
echo
BFQ_FILE=$dir/sdxl_shaped.1.99.bfq tools/bench_sdxl_sizes.sh "$dir"
