#!/usr/bin/env bash
# Benchmarks `bfq quantize` on the SD-v1.5-shaped fp16 UNet (tools/make_sd15_shaped.py) against stable-diffusion.cpp's
# `sd-cli -M convert` on the same file in the same run (when SD_CLI points at an sd-cli binary built outside this
# repository). Whole-process wall time with hyperfine (median of RUNS runs, input in the page cache, previous output
# deleted and dirty pages synced before each run) and peak RSS with /usr/bin/time -v (median); output sizes; and a
# check that 1 and 2 threads write the same bytes (GPTQ rounding, the default). The rows timed against sd-cli round to
# nearest (--rounding nearest: no calibration, as sd-cli's conversion); GPTQ rounding (the default) runs the UNet on the
# calibration set and is timed with /usr/bin/time -v (median of GPTQ_RUNS, default 1). Then output-space allocation (--sensitivity output, default
# calibration) on the same file: whole-process wall time and peak RSS with /usr/bin/time -v (median of OUTPUT_RUNS),
# and reallocating from its saved measurements.
#
#     SD_CLI=/path/to/sd-cli tools/bench_quantize.sh [BENCH_DIR]     (default bench/; installs hyperfine with apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench}
runs=${RUNS:-3}
output_runs=${OUTPUT_RUNS:-2}
gptq_runs=${GPTQ_RUNS:-1}
if ! command -v hyperfine >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq hyperfine >/dev/null
fi
mkdir -p "$dir"
st=$dir/sd15_shaped.fp16.safetensors
[ -f "$st" ] || python3 tools/make_sd15_shaped.py "$dir"
swift build -c release >/dev/null
bfq=$PWD/.build/release/bfq
out=$dir/q.bfq
gguf=$dir/q.gguf

prepare="rm -f $out $gguf; sync"
warmup=0
source tools/bench_timing.sh
row() {  # label, command, output file
  local t rss
  t=$(time_s "$2"); rss=$(peak_rss_mb "$2")
  bash -c "$2" >/dev/null 2>&1
  printf '| %s | %.2f s | %.0f MB | %.1f MB |\n' "$1" "$t" "$rss" "$(python3 -c "print($(stat -c %s "$3") / 1e6)")"
}
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo); runs: $runs (median)"
echo "| job | wall | peak RSS | output |"
echo "| --- | ---: | ---: | ---: |"
row "bfq quantize --plan bitsfusion-sd15 --cache-timesteps 50 --rounding nearest" "$bfq quantize $st $out --plan bitsfusion-sd15 --cache-timesteps 50 --rounding nearest --no-fsync" "$out"
row "bfq quantize --bits 1.99 --cache-timesteps 50 --rounding nearest (every candidate measured)" "$bfq quantize $st $out --bits 1.99 --cache-timesteps 50 --rounding nearest --no-fsync" "$out"
if [ -n "${SD_CLI:-}" ]; then
  for type in q4_0 q2_K; do
    row "sd-cli -M convert --type $type" "$SD_CLI -M convert -m $st -o $gguf --type $type" "$gguf"
  done
fi
for _ in $(seq "$gptq_runs"); do
  /usr/bin/time -v "$bfq" quantize "$st" "$out" --bits 1.99 --cache-timesteps 50 --no-fsync 2>&1 >/dev/null |
    awk '/Elapsed/ {split($NF, t, ":"); printf "%s ", t[1] * 60 + t[2]} /Maximum resident/ {print $6 / 1024}'
done | sort -n | awk '{w[NR]=$1; r[NR]=$2} END {m=int((NR+1)/2)
  printf "| bfq quantize --bits 1.99 --cache-timesteps 50 (GPTQ rounding, default; median of %d) | %.1f s | %.0f MB | |\n", NR, w[m], r[m]}'
for threads in 1 2; do
  BFQ_THREADS=$threads "$bfq" quantize "$st" "$dir/q$threads.bfq" --bits 1.99 --cache-timesteps 50 --no-fsync --json > "$dir/q$threads.json"
done
cmp -s "$dir/q1.bfq" "$dir/q2.bfq" && echo "1 and 2 threads: identical output" || echo "1 and 2 threads: OUTPUTS DIFFER"
python3 - "$dir/q2.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["totals"]
c = t["codes"]
print(f"--bits 1.99: average {t['average_bits']:.4f} bits, {t['file_bytes'] / 1e6:.1f} MB, {t['ratio_to_f16']:.2f}x vs fp16; "
      f"codes {c['log2_bytes'] / 1e6:.1f} MB by log2, {c['packed_bytes'] / 1e6:.1f} MB packed, {c['stored_bytes'] / 1e6:.1f} MB stored")
PY
measurements=$dir/measurements.json
for _ in $(seq "$output_runs"); do
  /usr/bin/time -v "$bfq" plan "$st" --bits 1.99 --sensitivity output --cache-timesteps 50 --save-measurements "$measurements" \
    2>&1 >/dev/null | awk '/Elapsed/ {split($NF, t, ":"); print (t[1] * 60 + t[2])} /Maximum resident/ {print $6 / 1024}' | paste -sd' '
done > "$dir/output_runs.txt"
median_of() { cut -d' ' -f"$1" "$dir/output_runs.txt" | median; }
printf '| bfq plan --bits 1.99 --sensitivity output --cache-timesteps 50 | %.1f s | %.0f MB | median of %d |\n' \
  "$(median_of 1)" "$(median_of 2)" "$output_runs"
start=$(date +%s.%N)
"$bfq" plan "$st" --measurements "$measurements" --bits 2.5 --cache-timesteps 50 >/dev/null
echo "| bfq plan --measurements (reallocating at 2.5 bits) | $(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')") s | | |"
rm -f "$dir/output_runs.txt" "$out" "$gguf" "$dir/h.json" "$dir/q1.bfq" "$dir/q2.bfq" "$dir/q1.json" "$dir/q2.json"
