#!/usr/bin/env python3
"""Makes testdata/quantizer/cases.safetensors: small trained-like weight matrices and the codes, scales, palettes
and errors of a straightforward numpy implementation of bfq's per-channel quantizers, the reference for
Sources/BFQCore/Quantization/GridQuantizer.swift and PaletteQuantizer.swift (C kernels in
Sources/CBFQShims/Quantize.c). Needs numpy only; seeded. Developers run it; CI only reads its output.

    python3 tools/testdata/quantizer_cases.py

Arithmetic, the kernels' operation for operation (so results agree bit for bit):
- every f64 sum over a segment (a row, or a group of a row) keeps 8 lanes, element i in lane i % 8, each lane summed
  in element order from +0, combined as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) (`lanesum`);
- grid, per segment: s0 = f32(max|w| / 2^(b-1)); starts: for each start factor, s = f32(s0 * f32(factor)), then, with
  the RMS start, s = f32(f32(f32(sqrt(signal / n)) * f32(c_b)) / 2^(b-1)) (signal = sum w w, n the segment's length,
  c_b = RMS_CLIP); a start is skipped when 0 or not finite; a pass at s gives q = clip(rint(f32(w / s)), qmin, qmax), num = sum (h w) q, den = sum h (q q),
  the objective E = W - 2 s num + s^2 den (W = sum h (w w); h = 1 without importance) and the next scale
  f32(num / den) (none unless den > 0 and it is finite and > 0); the next scale replaces s while its E is strictly
  lower, at most 10 times; the start with the strictly lowest E wins (ties to the earlier); no usable start: s = 0.
  The scale is stored as f16 (min(s, 65504) rounded to nearest even) or f32; the final codes are q + 2^(b-1) at the
  stored scale (q = 0 when it is 0); decoded w' = f32(f32(s * q) + 0); error = sum d d, weighted error = sum h (d d),
  d = f64(w) - f64(w'); signal = sum w w. A row's error and signal: its segments', added in order from 0.
  (The kernel also skips passes whose outcome an earlier start already fixed; this plain search must agree.)
- palette, per row, L = 2^b + 1: entries c_k = f64(f32(f32(s * (k - 2^(b-1))) + 0)), s the row's grid scale (grid at b
  bits, balanced, same starts and the RMS start, f32 scales); lo, hi = min, max of the row; 2048 bins: t = f32(f32(w - lo) * inv),
  inv = f32(2048 / (f64(hi) - f64(lo))) (0 when hi = lo), bin = min(int(t), 2047); per bin sum of h (or 1) and of h w,
  in element order, then prefix sums; centres lo + (j + 0.5) * ((hi - lo) / 2048) in f64; up to 10 Lloyd rounds: edge
  k = number of centres <= (c_k + c_{k+1}) / 2, entry k = (PS[e_k] - PS[e_{k-1}]) / (PW[e_k] - PW[e_{k-1}]) when that
  weight is > 0, entries sorted, stop when none changed; stored entries f16(clip(f32(c), +-65504)); each weight's
  code is its nearest stored entry, ties to the lower (computed here with exact f64 midpoints); errors as above.
- tensor error/signal = sum of the row values in row order; SQNR = 10 log10(signal / error).

Tensors written (k = case name):
  k.weight [rows, cols] F32, k.importance [cols] F32 (importance cases only);
  per grid config c (see GRID_CONFIGS): k.{c}.codes [rows, cols] I16, .scales [rows, groups] F32, .errors [rows] F64,
  .weighted_errors [rows] F64 (importance cases), .sqnr [1] F64;
  per palette config p{b}: k.p{b}.codes I16, .entries [rows, L] F32, .errors, .weighted_errors, .sqnr.
"""
import json
import pathlib
import struct

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "quantizer"
FACTORS = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
ITERATIONS = 10
BINS = 2048
F16_MAX = 65504.0
# The clipping points c_b (in standard deviations) of GridQuantizer.rmsClip, b = 1...8.
RMS_CLIP = [1.224, 1.686, 2.135, 2.551, 2.933, 3.286, 3.615, 3.924]
# name: (bits, grid, scale type, group size or None, iterations, start factors, RMS start)
GRID_CONFIGS = {
    "b1.balanced": (1, "balanced", "f16", None, ITERATIONS, FACTORS, False),
    "b2.balanced": (2, "balanced", "f16", None, ITERATIONS, FACTORS, False),
    "b3.balanced": (3, "balanced", "f16", None, ITERATIONS, FACTORS, False),
    "b4.balanced": (4, "balanced", "f16", None, ITERATIONS, FACTORS, False),
    "b8.balanced": (8, "balanced", "f16", None, ITERATIONS, FACTORS, False),
    "b2.plain": (2, "plain", "f16", None, ITERATIONS, FACTORS, False),
    "b1.plain": (1, "plain", "f16", None, ITERATIONS, FACTORS, False),
    "b3.balanced.f32": (3, "balanced", "f32", None, ITERATIONS, FACTORS, False),
    "b2.balanced.g32": (2, "balanced", "f16", 32, ITERATIONS, FACTORS, False),
    "b4.balanced.f32.g32": (4, "balanced", "f32", 32, ITERATIONS, FACTORS, False),
    "b2.balanced.absmax": (2, "balanced", "f16", None, 0, [1.0], False),
    "b1.balanced.rms": (1, "balanced", "f16", None, ITERATIONS, [1.0, 0.8], True),
    "b3.balanced.rms": (3, "balanced", "f16", None, ITERATIONS, [1.0, 0.8], True),
    "b2.balanced.g32.rms": (2, "balanced", "f16", 32, ITERATIONS, [1.0], True),
    "b2.plain.rms": (2, "plain", "f32", None, ITERATIONS, [1.0], True),
}
PALETTE_BITS = [1, 2, 3, 8]


def lanesum(x):
    """f64 sum in 8 lanes (element i in lane i % 8, each from +0 in element order), combined in a fixed order."""
    x = np.asarray(x, dtype=np.float64)
    padded = np.zeros((x.size + 7) // 8 * 8 + 8)
    padded[8:8 + x.size] = x
    lanes = [float(v) for v in np.add.accumulate(padded.reshape(-1, 8), axis=0)[-1]]
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))


def f32(x):
    return np.float32(x)


def stored(s, scale_type):
    if scale_type == "f32":
        return f32(s)
    return f32(np.float16(min(f32(s), f32(F16_MAX))))


def errors(w, h, decoded):
    d = w.astype(np.float64) - decoded.astype(np.float64)
    dd = d * d
    return lanesum(dd), lanesum(dd if h is None else h.astype(np.float64) * dd)


def grid_segment(w, h, bits, grid, scale_type, iterations, factors, rms):
    half = 1 << (bits - 1)
    qmin, qmax = f32(-half), f32(half if grid == "balanced" else half - 1)
    w64 = w.astype(np.float64)
    h64 = None if h is None else h.astype(np.float64)
    ww = w64 * w64
    signal, wsignal = lanesum(ww), lanesum(ww if h64 is None else h64 * ww)

    def level(s):
        return np.clip(np.rint(w / f32(s)), qmin, qmax).astype(np.float32)

    def search(s):
        q = level(s).astype(np.float64)
        if h64 is None:
            num, den = lanesum(w64 * q), lanesum(q * q)
        else:
            num, den = lanesum((h64 * w64) * q), lanesum(h64 * (q * q))
        s64 = float(s)
        value = wsignal - 2.0 * s64 * num + s64 * s64 * den
        nxt = f32(0)
        if den > 0:
            t = f32(num / den)
            if np.isfinite(t) and t > 0:
                nxt = t
        return value, nxt

    absmax = f32(np.max(np.abs(w)))
    s0 = f32(absmax / f32(half))
    best, best_value = f32(0), None
    starts = [f32(s0 * f32(factor)) for factor in factors]
    if rms:
        starts.append(f32(f32(f32(np.sqrt(signal / w.size)) * f32(RMS_CLIP[bits - 1])) / f32(half)))
    for s in starts:
        if not (np.isfinite(s) and s > 0):
            continue
        value, nxt = search(s)
        for _ in range(iterations):
            if not nxt > 0:
                break
            nv, after = search(nxt)
            if not nv < value:
                break
            s, value, nxt = nxt, nv, after
        if best_value is None or value < best_value:
            best, best_value = s, value
    s = stored(best, scale_type) if absmax > 0 else f32(0)
    q = level(s) if s > 0 else np.zeros_like(w)
    codes = (q.astype(np.int64) + half).astype(np.uint16)
    err, werr = errors(w, h, (f32(s) * q) + f32(0))
    return codes, s, err, werr, signal


def grid_quantize(w, h, bits, grid, scale_type, group, iterations, factors, rms):
    rows, cols = w.shape
    g = group or cols
    codes = np.zeros(w.shape, dtype=np.uint16)
    scales, errs, werrs, sigs = [], [], [], []
    for r in range(rows):
        row_scales, err, werr, sig = [], 0.0, 0.0, 0.0
        for start in range(0, cols, g):
            hs = None if h is None else h[start:start + g]
            c, s, e, we, si = grid_segment(w[r, start:start + g], hs, bits, grid, scale_type, iterations, factors, rms)
            codes[r, start:start + g] = c
            row_scales.append(s)
            err, werr, sig = err + e, werr + we, sig + si
        scales.append(row_scales)
        errs.append(err), werrs.append(werr), sigs.append(sig)
    return codes, np.array(scales, dtype=np.float32), np.array(errs), np.array(werrs), np.array(sigs)


def palette_row(w, h, bits, scale):
    levels, half = (1 << bits) + 1, 1 << (bits - 1)
    c = np.array([float((f32(scale) * f32(k - half)) + f32(0)) for k in range(levels)])
    w64 = w.astype(np.float64)
    h64 = None if h is None else h.astype(np.float64)
    ww = w64 * w64
    signal = lanesum(ww)
    lo, hi = f32(w.min()), f32(w.max())
    span = float(hi) - float(lo)
    width = span / BINS
    inv = f32(BINS / span) if hi > lo else f32(0)
    t = (w - lo) * inv
    bins = np.where(t < f32(BINS - 1), t, f32(BINS - 1)).astype(np.int64)
    pw = np.concatenate([[0.0], np.cumsum(np.bincount(bins, weights=np.ones(w.size) if h64 is None else h64,
                                                       minlength=BINS))])
    ps = np.concatenate([[0.0], np.cumsum(np.bincount(bins, weights=w64 if h64 is None else h64 * w64,
                                                       minlength=BINS))])
    centres = float(lo) + (np.arange(BINS) + 0.5) * width
    for _ in range(ITERATIONS):
        edges = [int(np.searchsorted(centres, (c[k] + c[k + 1]) / 2, side="right")) for k in range(levels - 1)]
        edges.append(BINS)
        moved = False
        for k in range(levels):
            lo_edge, hi_edge = (edges[k - 1] if k else 0), edges[k]
            weight = pw[hi_edge] - pw[lo_edge]
            if weight > 0:
                mean = (ps[hi_edge] - ps[lo_edge]) / weight
                moved = moved or mean != c[k]
                c[k] = mean
        c = np.sort(c)
        if not moved:
            break
    entries = np.clip(c.astype(np.float32), f32(-F16_MAX), f32(F16_MAX)).astype(np.float16).astype(np.float32)
    e64 = entries.astype(np.float64)
    mids = (e64[:-1] + e64[1:]) / 2
    codes = np.sum(w64[:, None] > mids[None, :], axis=1).astype(np.uint16)
    err, werr = errors(w, h, entries[codes])
    return codes, entries, err, werr, signal


def palette_quantize(w, h, bits):
    _, scales, _, _, _ = grid_quantize(w, h, bits, "balanced", "f32", None, ITERATIONS, FACTORS, True)
    rows = [palette_row(w[r], h, bits, scales[r, 0]) for r in range(w.shape[0])]
    return (np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]), np.array([r[2] for r in rows]),
            np.array([r[3] for r in rows]), np.array([r[4] for r in rows]))


def sqnr(errs, sigs):
    error, signal = 0.0, 0.0
    for e, s in zip(errs, sigs):
        error, signal = error + e, signal + s
    return np.array([np.inf if error == 0 else 10 * np.log10(signal / error)])


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
    a[11] *= np.float32(1e-6)       # tiny row: scales in f16's subnormal range
    b = heavy_rows(rng, 8, 100, 4.0)
    b[2] -= np.float32(0.02)        # skewed row
    hb = (rng.gamma(0.7, 1.0, size=100) ** 2).astype(np.float32)  # input-channel second moments
    hb[:3] = 0                      # dead input channels
    c = heavy_rows(rng, 6, 37, 2.5)  # odd width (radix packing tails, partial groups)
    c[0, :] = np.abs(c[0, :])       # one-sided row
    c[5, :] = np.arange(-18, 19, dtype=np.float32) / 16  # dyadic ramp: exact halves, so ties in rounding
    d = rng.normal(0, 0.02, size=(16, 45)).astype(np.float32)  # symmetric Gaussian
    return [("heavy", a, None), ("importance", b, hb), ("odd", c, None), ("gauss", d, None)]


def save_safetensors(path, tensors):
    dt = {np.float32: "F32", np.float64: "F64", np.int16: "I16"}
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
        results = {key: grid_quantize(w, h, *config) for key, config in GRID_CONFIGS.items()}
        results.update({f"p{bits}": palette_quantize(w, h, bits) for bits in PALETTE_BITS})
        for key, (codes, params, errs, werrs, sigs) in results.items():
            prefix = f"{name}.{key}"
            tensors[prefix + ".codes"] = codes.astype(np.int16)  # codes <= 256; safetensors readers know I16
            tensors[prefix + (".entries" if key.startswith("p") else ".scales")] = params
            tensors[prefix + ".errors"] = errs
            if h is not None:
                tensors[prefix + ".weighted_errors"] = werrs
            tensors[prefix + ".sqnr"] = sqnr(errs, sigs)
            print(f"{prefix}: SQNR {tensors[prefix + '.sqnr'][0]:.3f} dB")
    save_safetensors(OUT / "cases.safetensors", tensors)
    print((OUT / "cases.safetensors").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
