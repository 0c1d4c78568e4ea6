#!/usr/bin/env bash
# Reading the SD-v1.5-shaped UNet (tools/make_sd15_shaped.py) as 3 safetensors shards with their index, as
# huggingface_hub's save_torch_state_dict writes them (max_shard_size 600MB), against reading the single file, in the
# same run: farm-bench runs the two commands in turn (index, single, index, ...) and prints medians of wall time and
# peak RSS and the index/single ratio pair by pair. Jobs: inspect (headers), stats (every tensor read and widened),
# convert to one f16 safetensors file (every tensor copied; --no-fsync so the disk's writeback does not dominate).
#
#     tools/bench_shards.sh [BENCH_DIR]     (default bench/; needs python3 with torch, safetensors, huggingface_hub)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bench}
runs=${RUNS:-5}
mkdir -p "$dir"
[ -f "$dir/sd15_shaped.fp16.safetensors" ] || python3 tools/make_sd15_shaped.py "$dir"
single=$dir/sd15_shaped.fp16.safetensors
shards=$dir/sd15_shaped.sharded
if [ ! -f "$shards/model.safetensors.index.json" ]; then
  python3 - "$single" "$shards" <<'PY'
import os, sys
from huggingface_hub import save_torch_state_dict
from safetensors.torch import load_file
os.makedirs(sys.argv[2], exist_ok=True)
save_torch_state_dict(load_file(sys.argv[1]), sys.argv[2], max_shard_size="600MB")
PY
fi
index=$shards/model.safetensors.index.json
swift build -c release >/dev/null
bfq=$PWD/.build/release/bfq
out=$dir/shards_out.safetensors
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); $(nproc) cores; shards: $(ls "$shards" | grep -c -- '-of-') + index"
pair() {  # label, then the arguments after bfq with INPUT where the checkpoint goes
  local label=$1; shift
  echo "## $label"
  farm-bench -n "$runs" --timeout 1800 --vs "$bfq ${*//INPUT/$single}" -- "$bfq" "${@//INPUT/$index}" 2>&1 | grep -v '^$'
}
pair "inspect" inspect INPUT
pair "stats" stats INPUT --csv
pair "convert to one f16 safetensors" convert INPUT "$out" --no-fsync
rm -f "$out"
