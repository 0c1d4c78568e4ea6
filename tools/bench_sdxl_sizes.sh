#!/usr/bin/env bash
# File sizes of the SDXL-base-shaped UNet (tools/make_sdxl_shaped.py: 1,680 tensors, 2,567,463,684 parameters) as
# stable-diffusion.cpp stores it: converts BENCH_DIR/sdxl_shaped.fp16.safetensors (sgm/ldm names,
# model.diffusion_model.*) to GGUF with sd-cli for each of TYPES and prints a table: file, bytes, bits per UNet weight
# (bytes x 8 / 2,567,463,684), the GGUF's tensor types (parameters left F16 by sd-cli's rules: every conv, because
# ne[0] = kernel width is not a multiple of the block; time_embed/label_emb; with K-quants, Linears whose input width is
# not a multiple of 256; 1-D norm weights whose length is a multiple of the block *are* quantized), and the
# conversion's wall seconds and peak RSS. A bfq row is added when BFQ_FILE is set (see below).
#
#     tools/bench_sdxl_sizes.sh [BENCH_DIR]     (default bench/; TYPES="q4_0 q2_K", THREADS=2)
#
# SD_CLI=path     stable-diffusion.cpp's CLI (default /work/ext/sd-cli). The command run per type is
#                 $SD_CLI -M convert --diffusion-model IN.safetensors -o BENCH_DIR/sdxl_shaped.TYPE.gguf --type TYPE -t THREADS
#                 (--diffusion-model prefixes names with model.diffusion_model. unless they have it; convert mode
#                 does not detect the model version, so a UNet-only file needs no text encoders or VAE.)
# KEEP=1          reuse existing GGUFs instead of converting again (no timing then).
# BFQ_FILE=path   a .bfq of the same model: when set and present, its size is a row of the table.
# CONVERT_SCRIPT=path   diffusers' scripts/convert_diffusers_to_original_sdxl.py: makes the fp16 file when missing.
# Needs /usr/bin/time and python3 (standard library only, to read GGUF headers).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench}
sd_cli=${SD_CLI:-/work/ext/sd-cli}
types=${TYPES:-q4_0 q2_K}
threads=${THREADS:-2}
params=2567463684
src=$dir/sdxl_shaped.fp16.safetensors

bfq_file=${BFQ_FILE:-}

if [ ! -f "$src" ]; then
  if [ -n "${CONVERT_SCRIPT:-}" ]; then
    python3 tools/make_sdxl_shaped.py --convert-script "$CONVERT_SCRIPT" "$dir" >&2
  else
    echo "$src is missing: make it with tools/make_sdxl_shaped.py --convert-script PATH $dir (or set CONVERT_SCRIPT)" >&2
    exit 66
  fi
fi
[ -x "$sd_cli" ] || { echo "sd-cli not found at $sd_cli (set SD_CLI)" >&2; exit 69; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Tensor types of a GGUF: "F16 params / quantized params (type)".
gguf_types() {
  python3 - "$1" <<'EOF'
import struct, sys
NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 10: "Q2_K", 11: "Q3_K",
         12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 30: "BF16"}
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
f = open(sys.argv[1], "rb")
def read(fmt):
    return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))
def string():
    return f.read(read("Q")[0])
def skip(kind):
    if kind in SCALARS:
        read(SCALARS[kind])
    elif kind == 8:
        string()
    elif kind == 9:
        item, count = read("IQ")
        for _ in range(count):
            skip(item)
    else:
        sys.exit(f"unknown GGUF value type {kind}")
assert f.read(4) == b"GGUF", "not a GGUF file"
_, tensors, kvs = read("IQQ")
for _ in range(kvs):
    string()
    skip(read("I")[0])
counts = {}
for _ in range(tensors):
    string()
    dims = read("Q" * read("I")[0])
    kind, _ = read("IQ")
    n = 1
    for d in dims:
        n *= d
    counts[NAMES.get(kind, str(kind))] = counts.get(NAMES.get(kind, str(kind)), 0) + n
total = sum(counts.values())
print(", ".join(f"{k} {v / total:.1%}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
EOF
}

rows=$tmp/rows
printf "file\tbytes\tbits/weight\tparameters by type\tconvert s\tpeak RSS MB\n" >"$rows"
row() {  # file, types, seconds, rss
  local bytes
  bytes=$(stat -c %s "$1")
  printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$(basename "$1")" "$bytes" "$(awk -v b="$bytes" -v p=$params 'BEGIN {printf "%.3f", b * 8 / p}')" \
    "$2" "$3" "$4" >>"$rows"
}
row "$src" "F16 100%" - -
for type in $types; do
  out=$dir/sdxl_shaped.$type.gguf
  seconds=- rss=-
  if [ "${KEEP:-0}" != 1 ] || [ ! -f "$out" ]; then
    echo "+ $sd_cli -M convert --diffusion-model $src -o $out --type $type -t $threads" >&2
    /usr/bin/time -f "%e %M" -o "$tmp/time" "$sd_cli" -M convert --diffusion-model "$src" -o "$out" --type "$type" \
      -t "$threads" >"$tmp/log" 2>&1 || { tail -c 2000 "$tmp/log" >&2; exit 1; }
    read -r seconds rss <"$tmp/time"
    rss=$((rss / 1024))
  fi
  row "$out" "$(gguf_types "$out")" "$seconds" "$rss"
done
if [ -n "$bfq_file" ]; then
  if [ -f "$bfq_file" ]; then
    row "$bfq_file" "(bfq)" - -
  else
    echo "BFQ_FILE=$bfq_file does not exist; no bfq row" >&2
  fi
fi
column -t -s $'\t' "$rows"
