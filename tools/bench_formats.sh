#!/usr/bin/env bash
# Benchmarks bfq's readers and writers on the SD-v1.5-shaped UNet (tools/make_sd15_shaped.py), against Python
# safetensors and torch.load doing the same job, in the same run. Whole-process timings with hyperfine (inputs in
# the page cache; before each run the previous output is deleted and dirty pages synced, so no run pays for another's
# writeback; median of RUNS runs) and peak RSS with /usr/bin/time -v (median of RUNS runs).
#
#     tools/bench_formats.sh [BENCH_DIR]     (default bench/; needs python3 with torch and safetensors, hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench}
runs=${RUNS:-5}
mkdir -p "$dir"
[ -f "$dir/sd15_shaped.fp16.safetensors" ] && [ -f "$dir/sd15_shaped.fp32.ckpt" ] || python3 tools/make_sd15_shaped.py "$dir"
swift build -c release >/dev/null
bfq=$PWD/.build/release/bfq
st=$dir/sd15_shaped.fp16.safetensors
ck=$dir/sd15_shaped.fp32.ckpt
out=$dir/out.safetensors

py_inspect="python3 -c \"from safetensors import safe_open; f = safe_open('$st', 'pt'); [f.get_slice(k).get_shape() for k in f.keys()]\""
py_f16_f32="python3 -c \"from safetensors.torch import load_file, save_file; save_file({k: v.float() for k, v in load_file('$st').items()}, '$out')\""
py_ckpt_f16="python3 -c \"import torch; from safetensors.torch import save_file; sd = torch.load('$ck', weights_only=True, mmap=True)['state_dict']; save_file({k: v.half() for k, v in sd.items()}, '$out')\""

prepare="rm -f $out; sync"
source tools/bench_timing.sh
row() {  # label, bytes for the rate (empty: no rate), command
  local t rss
  t=$(time_s "$3"); rss=$(peak_rss_mb "$3")
  local rate="-"
  [ -n "$2" ] && rate=$(printf '%.2f GB/s' "$(python3 -c "print($2 / $t / 1e9)")")
  printf '| %s | %.3f s | %s | %.0f MB |\n' "$1" "$t" "$rate" "$rss"
}
st_bytes=$(stat -c %s "$st"); ck_bytes=$(stat -c %s "$ck")
"$bfq" convert "$st" "$out" --dtype f32; f32_bytes=$(stat -c %s "$out")
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo); runs: $runs (median)"
echo "| job | time | rate | peak RSS |"
echo "| --- | ---: | ---: | ---: |"
row "bfq inspect fp16.safetensors" "" "$bfq inspect $st >/dev/null"
row "python safe_open (names, shapes)" "" "$py_inspect"
row "bfq inspect fp32.ckpt" "" "$bfq inspect $ck >/dev/null"
row "bfq convert fp16.st -> fp32.st (output)" "$f32_bytes" "$bfq convert $st $out --dtype f32"
row "bfq convert ... --no-fsync" "$f32_bytes" "$bfq convert $st $out --dtype f32 --no-fsync"
row "python load_file/float/save_file (output)" "$f32_bytes" "$py_f16_f32"
row "bfq convert fp32.ckpt -> fp16.st (input)" "$ck_bytes" "$bfq convert $ck $out --dtype f16"
row "python torch.load/half/save_file (input)" "$ck_bytes" "$py_ckpt_f16"
rm -f "$out" "$dir/h.json"
