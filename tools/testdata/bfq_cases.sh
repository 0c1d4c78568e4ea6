#!/usr/bin/env bash
# Makes testdata/bfq/: .bfq files with every encoding (seeded codes and scales), a lossless container of
# testdata/safetensors/dtypes.safetensors, the Swift dequantizer's output for each, and damaged copies.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product bfq-testdata >/dev/null
rm -f testdata/bfq/*.bfq testdata/bfq/*.safetensors
mkdir -p testdata/bfq
.build/release/bfq-testdata testdata/bfq testdata/safetensors/dtypes.safetensors
ls -l testdata/bfq
