#!/usr/bin/env python3
"""Bits per code that each packing stores after zstd, on codes shaped like quantized weights (spec/bfq.md 5.2, 11).

Weights: Student-t (df = 4), the distribution tools/make_sd15_shaped.py fills the SD-v1.5-shaped UNet with, one
640 x 5760 matrix (a 3x3 conv at 640 channels) with a scale per row. Codes: balanced grids of L = 2^b + 1 levels with
per-row scales fitted by alternating least squares (10 rounds from abs-max), as the quantizer does. For each L it
prints the entropy of the codes, log2(L), radix packing as stored and after zstd (level 3, and the code setting of
ContainerWriter.addCodes / Zstd.compressCodes), byte packing as stored and after the code setting; then the MB of
codes the paper's 1.99-bit recipe (../shared/data/bitsfusion_sd15_recipe.tsv) takes each way at these rates.

    python3 tools/bench_code_packing.py          (numpy and zstandard; about 10 s)
"""
import csv
import math
import pathlib

import numpy as np
import zstandard as zstd

RECIPE = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bitsfusion_sd15_recipe.tsv"
CODE_SETTING = zstd.ZstdCompressionParameters(strategy=zstd.STRATEGY_FAST, window_log=17, hash_log=6, chain_log=6,
                                              search_log=1, min_match=7, target_length=0)
rng = np.random.default_rng(4)
ROWS, COLS = 640, 5760
W = rng.standard_t(4, size=(ROWS, COLS)).astype(np.float32) * (1 + rng.random((ROWS, 1)).astype(np.float32))


def codes_for(levels):
    half = levels // 2
    s = np.abs(W).max(1, keepdims=True) / half
    for _ in range(10):
        q = np.clip(np.rint(W / s), -half, half)
        s = (W * q).sum(1, keepdims=True) / np.maximum((q * q).sum(1, keepdims=True), 1e-12)
    return (np.clip(np.rint(W / s), -half, half) + half).astype(np.int64)


def radix_layout(levels):
    if levels & (levels - 1) == 0:
        return 1, levels.bit_length() - 1
    best = (1, (levels - 1).bit_length())
    for g in range(2, 9):
        w = (levels ** g - 1).bit_length()
        if w > 16:
            break
        if w * best[0] < best[1] * g:
            best = (g, w)
    return best


def bytes_layout(levels):
    return (1, 16) if levels == 257 else (max(g for g in range(1, 9) if levels ** g <= 256), 8)


def pack(codes, levels, g, w):
    rows, n = codes.shape
    groups = -(-n // g)
    padded = np.zeros((rows, groups * g), np.int64)
    padded[:, :n] = codes
    v = np.zeros((rows, groups), np.int64)
    for k in reversed(range(g)):
        v = v * levels + padded[:, k::g]
    if w % 8 == 0:
        return v.astype("<u2" if w == 16 else "u1").tobytes()
    bits = ((v[:, :, None] >> np.arange(w)) & 1).astype(np.uint8).reshape(rows, -1)
    return np.packbits(bits, axis=1, bitorder="little").tobytes()


def stored(data, compressor):
    return min(len(data), len(compressor.compress(data)))


def main():
    level3, code = zstd.ZstdCompressor(level=3), zstd.ZstdCompressor(compression_params=CODE_SETTING)
    n = ROWS * COLS
    rates = {}
    print("| L | entropy | log2 L | radix | radix + zstd 3 | radix + code setting | bytes | bytes + code setting |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for levels in (3, 5, 9, 17, 33, 65, 129, 257):
        c = codes_for(levels)
        p = np.bincount(c.ravel(), minlength=levels) / n
        entropy = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
        radix, byte = pack(c, levels, *radix_layout(levels)), pack(c, levels, *bytes_layout(levels))
        row = dict(entropy=entropy, log2=math.log2(levels), radix=8 * len(radix) / n, radix3=8 * stored(radix, level3) / n,
                   radixc=8 * stored(radix, code) / n, bytes=8 * len(byte) / n, bytesc=8 * stored(byte, code) / n)
        row["kept"] = min(row["radixc"], row["bytesc"])
        rates[levels] = row
        print(f"| {levels} | " + " | ".join(f"{row[k]:.3f}" for k in ("entropy", "log2", "radix", "radix3", "radixc",
                                                                     "bytes", "bytesc")) + " |", flush=True)
    if not RECIPE.exists():
        return
    layers = [(2 ** int(r[2]) + 1, int(r[4])) for r in list(csv.reader(RECIPE.open(), delimiter="\t"))[2:]]
    total = sum(count for _, count in layers)
    print(f"\nthe 1.99-bit recipe's {len(layers)} layers, {total:,} weights: MB of codes at these rates")
    for key, label in (("log2", "log2(L) accounting"), ("entropy", "entropy"), ("radix", "radix"),
                       ("radix3", "radix + zstd level 3"), ("kept", "addCodes (smaller of radix and bytes, code setting)")):
        mb = sum(rates[levels][key] * count for levels, count in layers) / 8e6
        print(f"  {label}: {mb:.1f} MB ({8e6 * mb / total:.3f} bits per weight)")


if __name__ == "__main__":
    main()
