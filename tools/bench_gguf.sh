#!/usr/bin/env bash
# Benchmarks GGUF conversion on the SD-v1.5-shaped fp16 UNet (tools/make_sd15_shaped.py) against the peers in the same
# run: `bfq convert IN OUT.gguf --type T` against stable-diffusion.cpp's `sd-cli -M convert --type T` (T = q4_0, q4_K;
# both on 2 threads, neither syncing to disk: bfq runs with --no-fsync), bfq with a --tensor-type rule that quantizes
# the tensors sd-cli quantizes (every *.weight whose rows fit the blocks, GroupNorm/LayerNorm weights included, but
# time_embed), so both files hold the same types; and GGUF -> fp16 safetensors by
# `bfq convert` against gguf-py + numpy + safetensors (tools/gguf_to_safetensors.py). Whole-process wall time with
# hyperfine (median of RUNS, input in the page cache, the previous output deleted and synced before each run), peak RSS
# with /usr/bin/time -v (median of RUNS), output size; and how many tensors the two GGUF writers gave different types.
# Last, the check that stable-diffusion.cpp reads what bfq writes: sd-cli converts bfq's q4_0 and q4_k files (default
# rules) to fp16 safetensors, and `bfq diff` compares that with bfq's own decoding to fp16.
#
#     SD_CLI=path/to/sd-cli tools/bench_gguf.sh [BENCH_DIR]     (default bench/; RUNS=5; needs hyperfine, python3
#                                                                with gguf, numpy, safetensors)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench}
runs=${RUNS:-5}
sd_cli=${SD_CLI:?set SD_CLI to the sd-cli of stable-diffusion.cpp}
mkdir -p "$dir"
st=$dir/sd15_shaped.fp16.safetensors
[ -f "$st" ] || python3 tools/make_sd15_shaped.py "$dir" >&2
swift build -c release --product bfq >/dev/null
bfq=$PWD/.build/release/bfq
out=$dir/bench_out
prepare="rm -f $out.gguf $out.safetensors; sync"
source tools/bench_timing.sh
row() {  # label, command, output file
  local t rss size
  t=$(time_s "$2"); rss=$(peak_rss_mb "$2")
  bash -c "$prepare"; bash -c "$2" >/dev/null 2>&1; size=$(stat -c %s "$3")
  printf '| %s | %.2f s | %.0f MB | %s bytes |\n' "$1" "$t" "$rss" "$(python3 -c "print(f'{$size:,}')")"
}
types() {  # tensor name -> type of a GGUF file, one per line
  python3 -c "import gguf, sys; [print(t.name, t.tensor_type.name) for t in gguf.GGUFReader(sys.argv[1]).tensors]" "$1" | sort
}
echo "CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores; $(date -u +%F)"
echo
echo "| job | wall (median of $runs) | peak RSS | output |"
echo "| --- | ---: | ---: | ---: |"
for type in q4_0 q4_K; do
  lower=$(echo "$type" | tr 'K' 'k')
  rule="'^(?!.*time_embed).*\\.weight\$=$lower'"
  row "bfq convert --type $lower --tensor-type $rule" "$bfq convert $st $out.gguf --type $lower --no-fsync --tensor-type $rule" "$out.gguf"
  types "$out.gguf" > "$dir/types.bfq.txt"
  row "sd-cli -M convert --type $type" "$sd_cli -M convert -m $st -o $out.gguf --type $type -t 2" "$out.gguf"
  types "$out.gguf" > "$dir/types.sdcli.txt"
  echo "| (tensors whose type differs: $(diff "$dir/types.bfq.txt" "$dir/types.sdcli.txt" | grep -c '^<' || true) of $(wc -l < "$dir/types.bfq.txt")) | | | |"
done
bash -c "$prepare"
"$sd_cli" -M convert -m "$st" -o "$dir/sdcli.q4_0.gguf" --type q4_0 -t 2 >/dev/null 2>&1
row "bfq convert q4_0.gguf -> fp16 safetensors" "$bfq convert $dir/sdcli.q4_0.gguf $out.safetensors --dtype f16 --no-fsync" "$out.safetensors"
row "gguf-py + numpy: q4_0.gguf -> fp16 safetensors" "python3 tools/gguf_to_safetensors.py $dir/sdcli.q4_0.gguf $out.safetensors" "$out.safetensors"
for type in q4_0 q4_k; do
  "$bfq" convert "$st" "$out.gguf" --type $type --no-fsync >/dev/null
  "$sd_cli" -M convert -m "$out.gguf" -o "$dir/sdcli_back.safetensors" --type f16 -t 2 >/dev/null 2>&1
  "$bfq" convert "$out.gguf" "$out.safetensors" --dtype f16 --no-fsync
  echo "sd-cli reads bfq's $type GGUF; its fp16 decoding against bfq's: $("$bfq" diff "$out.safetensors" "$dir/sdcli_back.safetensors" | tail -n 1)"
done
rm -f "$out.gguf" "$out.safetensors" "$dir/h.json" "$dir/types.bfq.txt" "$dir/types.sdcli.txt" "$dir/sdcli_back.safetensors"
