#!/usr/bin/env python3
"""Makes testdata/quantizer/cases.safetensors: small trained-like weight matrices and the codes, scales and errors of
a straightforward numpy implementation of BitsFusion's per-channel grid quantizer (Eq. 1, alternating optimisation,
multi-start), the reference for Sources/BFQCore/Quantization/GridQuantizer.swift. Needs numpy only; seeded.
Developers run it; CI only reads its output.

    python3 tools/testdata/quantizer_cases.py

Arithmetic, chosen to be the Swift side's operation for operation (so results agree bit for bit):
- start scale s = f32(f32(max|w| / 2^(b-1)) * f32(factor)), factors 1, 0.9, 0.8, 0.7, 0.6, 0.5 (as f32);
  a start whose scale is 0 or not finite is skipped; a row with no usable start gets s = 0, q = 0;
- q = clip(rint(f32(w / s)), qmin, qmax): f32 division, round half to even (np.rint);
- decoded w' = f32(f32(s * q) + 0) (spec/bfq.md 3.2); d = f64(w) - f64(w');
  objective = sum of h * (d * d) in f64, summed in element order (np.cumsum, not np.sum's pairwise order);
  without importance h = 1, which changes nothing (x * 1.0 is exact);
- least-squares scale s' = f32(num / den), num = sum (h * w) * q, den = sum h * (q * q), in f64, in element order;
- each start: up to 10 rounds of (s', requantize); a round is kept only if its objective is strictly lower, else stop;
  the start with the strictly lowest objective wins (ties to the earlier start);
- codes c = q + 2^(b-1) (uint8); reported error = sum d * d (unweighted), signal = sum w * w, both f64 in order;
  tensor error/signal = sum of the row values in row order; SQNR = 10 log10(signal / error).

Tensors written (k = case name, g = "balanced" or "plain", b = bits):
  k.weight [rows, cols] F32, k.importance [cols] F32 (importance cases only),
  k.b{b}.{g}.codes [rows, cols] U8, .scales [rows] F32, .errors [rows] F64, .sqnr [1] F64
"""
import json
import pathlib
import struct

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "quantizer"
FACTORS = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
CONFIGS = [(1, "balanced"), (2, "balanced"), (3, "balanced"), (4, "balanced"), (2, "plain")]
ITERATIONS = 10


def osum(x):
    """Sequential f64 sum in element order."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.cumsum(x)[-1]) if x.size else 0.0


def quantize_row(w, h, bits, grid):
    half = 1 << (bits - 1)
    qmin = np.float32(-half)
    qmax = np.float32(half if grid == "balanced" else half - 1)
    w64 = w.astype(np.float64)
    h64 = None if h is None else h.astype(np.float64)

    def requantize(s):
        return np.clip(np.rint(w / np.float32(s)), qmin, qmax).astype(np.float32)

    def objective(s, q, weighted=True):
        dec = (np.float32(s) * q) + np.float32(0)
        d = w64 - dec.astype(np.float64)
        dd = d * d
        return osum(h64 * dd if (weighted and h64 is not None) else dd)

    def ls_scale(q):
        q64 = q.astype(np.float64)
        if h64 is None:
            num, den = osum(w64 * q64), osum(q64 * q64)
        else:
            num, den = osum((h64 * w64) * q64), osum(h64 * (q64 * q64))
        if not den > 0:
            return None
        s = np.float32(num / den)
        return s if (np.isfinite(s) and s > 0) else None

    absmax = np.float32(np.max(np.abs(w))) if w.size else np.float32(0)
    s0 = np.float32(absmax / np.float32(half))
    best = None
    for factor in FACTORS:
        s = np.float32(s0 * np.float32(factor))
        if not (np.isfinite(s) and s > 0):
            continue
        q = requantize(s)
        value = objective(s, q)
        for _ in range(ITERATIONS):
            nxt = ls_scale(q)
            if nxt is None:
                break
            qn = requantize(nxt)
            vn = objective(nxt, qn)
            if not vn < value:
                break
            s, q, value = nxt, qn, vn
        if best is None or value < best[2]:
            best = (s, q, value)
    if best is None:
        best = (np.float32(0), np.zeros_like(w), 0.0)
    s, q, _ = best
    codes = (q.astype(np.int64) + half).astype(np.uint8)
    return codes, np.float32(s), objective(s, q, weighted=False), osum(w64 * w64)


def quantize(w, h, bits, grid):
    rows = [quantize_row(w[r], h, bits, grid) for r in range(w.shape[0])]
    codes = np.stack([r[0] for r in rows])
    scales = np.array([r[1] for r in rows], dtype=np.float32)
    errors = np.array([r[2] for r in rows], dtype=np.float64)
    error = 0.0
    signal = 0.0
    for r in rows:
        error += r[2]
        signal += r[3]
    sqnr = np.inf if error == 0 else 10 * np.log10(signal / error)
    return codes, scales, errors, np.array([sqnr], dtype=np.float64)


def heavy_rows(rng, rows, cols, dof):
    scales = np.exp(rng.normal(-3.5, 0.7, size=(rows, 1)))
    return (rng.standard_t(dof, size=(rows, cols)) * scales).astype(np.float32)


def cases():
    rng = np.random.default_rng(20240604)
    a = heavy_rows(rng, 12, 64, 3.0)
    a[3] = 0.0                      # zero row
    a[7] = np.float32(0.0123)       # constant row
    a[9] = -np.float32(0.5)         # negative constant row
    a[10, 5] *= 40                  # one outlier
    b = heavy_rows(rng, 8, 100, 4.0)
    b[2] -= np.float32(0.02)        # skewed row
    hb = (rng.gamma(0.7, 1.0, size=100) ** 2).astype(np.float32)  # input-channel second moments
    hb[:3] = 0                      # dead input channels
    c = heavy_rows(rng, 6, 37, 2.5)  # odd width (radix packing tails)
    c[0, :] = np.abs(c[0, :])       # one-sided row
    c[5, :] = np.arange(-18, 19, dtype=np.float32) / 16  # dyadic ramp: exact halves, so ties in rounding
    d = rng.normal(0, 0.02, size=(16, 45)).astype(np.float32)  # symmetric Gaussian
    return [("heavy", a, None), ("importance", b, hb), ("odd", c, None), ("gauss", d, None)]


def save_safetensors(path, tensors):
    dt = {np.float32: "F32", np.float64: "F64", np.uint8: "U8"}
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt[arr.dtype.type], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, w, h in cases():
        tensors[f"{name}.weight"] = w
        if h is not None:
            tensors[f"{name}.importance"] = h
        for bits, grid in CONFIGS:
            codes, scales, errors, sqnr = quantize(w, h, bits, grid)
            key = f"{name}.b{bits}.{grid}"
            tensors[key + ".codes"] = codes
            tensors[key + ".scales"] = scales
            tensors[key + ".errors"] = errors
            tensors[key + ".sqnr"] = sqnr
            print(f"{key}: SQNR {sqnr[0]:.3f} dB")
    save_safetensors(OUT / "cases.safetensors", tensors)
    print((OUT / "cases.safetensors").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
