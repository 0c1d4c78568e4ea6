#!/usr/bin/env bash
# Times the jobs that run the UNet on a calibration set, on the SD-v1.5-shaped fp16 file (tools/make_sd15_shaped.py):
# `bfq quantize --bits 1.99 --cache-timesteps 50` (GPTQ rounding, the default) and `bfq plan --bits 1.99 --sensitivity
# output --cache-timesteps 50`, with this tree's bfq and, in the same run, with bfq built from BASELINE_REV (for
# before/after tables of changes to the matrix kernels) and with this bfq under each OPENBLAS_CORETYPE in CORETYPES.
# Whole-process wall time and peak RSS with /usr/bin/time -v, one run each (these jobs take minutes), jobs in turn
# (this bfq, then the baseline, then each core type) so that a drifting machine spreads over all of them.
#
#     BASELINE_REV=REV CORETYPES="Zen" tools/bench_calibrated.sh [BENCH_DIR]     (default bench/)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench}
mkdir -p "$dir"
st=$dir/sd15_shaped.fp16.safetensors
[ -f "$st" ] || python3 tools/make_sd15_shaped.py "$dir" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source tools/bench_variants.sh

jobs=("quantize $st $tmp/q.bfq --bits 1.99 --cache-timesteps 50 --no-fsync|quantize --bits 1.99 --cache-timesteps 50 (GPTQ)"
      "plan $st --bits 1.99 --sensitivity output --cache-timesteps 50|plan --bits 1.99 --sensitivity output --cache-timesteps 50")
echo "CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores; $("$bfq" --version | sed -n 2p)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| job | run | wall | peak RSS | output |"
echo "| --- | --- | ---: | ---: | ---: |"
for job in "${jobs[@]}"; do
  arguments=${job%%|*} label=${job#*|}
  for variant in "${variants[@]}"; do
    IFS='|' read -r vlabel binary core <<<"$variant"
    envs=()
    [ -z "$core" ] || envs=(OPENBLAS_CORETYPE="$core")
    rm -f "$tmp/q.bfq"
    sync
    # shellcheck disable=SC2086
    /usr/bin/time -v -o "$tmp/time.txt" env "${envs[@]}" "$binary" $arguments >"$tmp/out.log" 2>&1 \
      || { echo "failed: $vlabel $arguments" >&2; cat "$tmp/out.log" >&2; exit 1; }
    wall=$(awk '/Elapsed \(wall clock\)/ {n = split($NF, t, ":"); print (n == 3) ? t[1] * 3600 + t[2] * 60 + t[3] : t[1] * 60 + t[2]}' "$tmp/time.txt")
    rss=$(awk '/Maximum resident set size/ {print $6 / 1024}' "$tmp/time.txt")
    size=-
    [ -f "$tmp/q.bfq" ] && size=$(awk -v b="$(stat -c %s "$tmp/q.bfq")" 'BEGIN {printf "%.1f MB", b / 1e6}')
    printf '| %s | %s | %.1f s | %.0f MB | %s |\n' "$label" "$vlabel" "$wall" "$rss" "$size"
  done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
