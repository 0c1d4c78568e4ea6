#!/usr/bin/env bash
# Usage: tools/fuzz.sh TARGET SECONDS [extra libFuzzer options]
# Builds the libFuzzer driver (Fuzz/, release, -sanitize=fuzzer,address) and fuzzes one reader for SECONDS on one
# core. Targets: safetensors, pytorch, pickle, bfq, bfq-resealed, plan, unet-config, gguf (Tests/BFQFuzzing/FuzzEntry.swift).
# Seeds come from testdata/ (files of up to 64 KB, the reader's own format) and testdata/fuzz/TARGET/ (inputs that once
# crashed); the growing corpus is kept in Fuzz/.build/corpus/TARGET, crashing inputs land in Fuzz/.build/crashes/TARGET,
# the log in Fuzz/.build/logs/. The last line: target, seconds, executions, corpus size, crashes.
# Limits: 10 s per input, 2 GB RSS, 1 GB for any single allocation (a 64 KB input has no business asking for more).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: tools/fuzz.sh TARGET SECONDS [libFuzzer options]}
seconds=${2:?usage: tools/fuzz.sh TARGET SECONDS [libFuzzer options]}
shift 2
root=$PWD
work=$root/Fuzz/.build
# SwiftPM does not notice files added to a path dependency; a touched manifest makes it plan the build again.
touch Fuzz/Package.swift
(cd Fuzz && swift build -c release --product bfq-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address \
    -Xswiftc -use-ld=lld >&2)
fuzzer=$(cd Fuzz && swift build -c release --show-bin-path)/bfq-fuzz

seeds=$work/seeds/$target
rm -rf "$seeds"
mkdir -p "$seeds" "$work/corpus/$target" "$work/crashes/$target" "$work/logs"
small() { find testdata -type f -size -65k \( "$@" \) -exec cp {} "$seeds/" \; ; }
case $target in
    safetensors) small -name '*.safetensors' ;;
    pytorch) small -name '*.ckpt' ;;
    bfq | bfq-resealed) small -name '*.bfq' ;;
    gguf) small -name '*.gguf' ;;
    unet-config) small -name '*config.json' ;;
    pickle)
        # The pickles inside zip checkpoints, and legacy files whole (their pickles run back to back).
        python3 - "$seeds" testdata/pytorch/*.ckpt testdata/unet/*.ckpt <<'PY'
import os, sys, zipfile
out = sys.argv[1]
for path in sys.argv[2:]:
    if os.path.getsize(path) > 65536:
        continue
    name = os.path.basename(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for entry in z.namelist():
                if entry.endswith(".pkl"):
                    open(os.path.join(out, name + ".pkl"), "wb").write(z.read(entry))
    else:
        open(os.path.join(out, name), "wb").write(open(path, "rb").read())
PY
        ;;
    plan)
        # Plans written by bfq itself for the tiny UNet (weight and recipe forms).
        swift build -c release --product bfq >&2
        bfq=$(swift build -c release --show-bin-path)/bfq
        "$bfq" plan testdata/unet/tiny_unet.ldm.safetensors --bits 2.5 -o "$seeds/bits.plan.json" >&2
        "$bfq" plan testdata/unet/tiny_unet.ldm.safetensors --bits 1.99 --cache-timesteps 981,21 -o "$seeds/cache.plan.json" >&2
        ;;
    *) echo "tools/fuzz.sh: unknown target '$target'" >&2; exit 2 ;;
esac
[ -d "testdata/fuzz/$target" ] && find "testdata/fuzz/$target" -type f ! -name README.md -exec cp {} "$seeds/" \;

log=$work/logs/$target-$(date +%Y%m%d-%H%M%S).log
before=$(ls "$work/crashes/$target" | wc -l)
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} BFQ_THREADS=1 "$fuzzer" "$target" "$work/corpus/$target" "$seeds" \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$work/crashes/$target/" "$@" > "$log" 2>&1 || status=$?
executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
crashes=$(( $(ls "$work/crashes/$target" | wc -l) - before ))
corpus=$(ls "$work/corpus/$target" | wc -l)
echo "fuzz $target: $seconds s, ${executions:-?} executions, corpus $corpus, $crashes new crashing inputs (log $log)"
exit $status
