#!/usr/bin/env bash
# Benchmarks the lookup-table dequantizer (Sources/bfq-bench-dequant): in-memory packed layers shaped like SD-v1.5's
# decoded to f32, in billions of weights per second, on 1 and on 2 threads (BFQ_THREADS), next to memcpy of the same
# output in the same run. Median of RUNS runs per figure.
#
#     tools/bench_dequant.sh            (RUNS=5 by default; BFQ_SCALAR=1 measures the portable kernels)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
swift build -c release --product bfq-bench-dequant >/dev/null
bench=$PWD/.build/release/bfq-bench-dequant
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for threads in 1 2; do
  for run in $(seq "$runs"); do BFQ_THREADS=$threads "$bench" >"$out/$threads.$run"; done
done
median() {  # median of the values of label $1 over the runs with $2 threads
  cat "$out/$2".* | awk -F'\t' -v label="$1" '$1 == label {print $2}' | sort -n |
    awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); runs: $runs (median)${BFQ_SCALAR:+; scalar kernels (BFQ_SCALAR)}"
echo "$(awk -F'\t' '$1 == "weights" {printf "%.1fM weights per pass", $2 / 1e6}' "$out/1.1"), billions of weights/s (f32 unless said)"
echo "| case | 1 thread | 2 threads |"
echo "| --- | ---: | ---: |"
awk -F'\t' '$1 != "threads" && $1 != "weights" {print $1}' "$out/1.1" | while IFS= read -r label; do
  printf '| %s | %s | %s |\n' "$label" "$(median "$label" 1)" "$(median "$label" 2)"
done
