#!/usr/bin/env python3
"""Self-check of tools/bfq.py (needs only numpy and zstandard).

(a) The worked examples and the (G, W) tables of spec/bfq.md section 5 (radix and byte packing), the value rules of
    section 3.2, and the vectorised unpacking against a bit-by-bit decoder written from the spec's text, for every
    level count 2..257 and both packings.
(b) Every testdata/bfq/NAME.bfq: verified (every invariant of section 8) and decoded bit-identically to
    NAME.expected.safetensors (the Swift dequantizer's output, read here with numpy alone); every
    NAME.corrupt-*.bfq must be refused with a BFQError.

    python3 tools/test_bfq_loader.py [FIXTURE_DIR]

Ends with the line "bfq.py: N passed, M failed"; exits 0 only when nothing failed.
"""

import glob
import json
import os
import struct
import sys
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bfq  # noqa: E402

passed = failed = 0


def record(ok, label, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {label}" + (f": {detail}" if detail else ""))


def case(label):
    """Decorator: run a check, counting an unexpected exception as a failure."""
    def wrap(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - any crash is a failure of the check
            record(False, label, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
        return fn
    return wrap


# ------------------------------------------------------------------------------------------------------------------
# (a) the spec's own examples and rules

def spec_byte_params(levels):
    """(G, W) of byte packing from spec section 5.2's words: the largest G >= 1 with L^G <= 256 in one byte, or one
    code in 2 little-endian bytes for L = 257."""
    if levels == 257:
        return 1, 16
    return max(g for g in range(1, 9) if levels ** g <= 256), 8


def params(levels, packing):
    return spec_byte_params(levels) if packing == "bytes" else bfq.packing_params(levels)


def spec_unpack_row(data, levels, n, packing="radix"):
    """Bit by bit from spec section 5: stream bit k is bit (k mod 8) of byte floor(k / 8)."""
    g, w = params(levels, packing)
    bits = [(data[k // 8] >> (k % 8)) & 1 for k in range(len(data) * 8)]
    codes = []
    for j in range(-(-n // g)):
        v = sum(bits[j * w + i] << i for i in range(w))
        for _ in range(g):
            codes.append(v % levels)
            v //= levels
    return codes[:n]


def spec_pack_row(codes, levels, packing="radix"):
    g, w = params(levels, packing)
    n = len(codes)
    groups = -(-n // g)
    bits = []
    for j in range(groups):
        group = list(codes[j * g:(j + 1) * g])
        group += [0] * (g - len(group))
        v = sum(int(c) * levels ** i for i, c in enumerate(group))
        bits += [(v >> i) & 1 for i in range(w)]
    bits += [0] * (-len(bits) % 8)
    return bytes(sum(bits[8 * i + k] << k for k in range(8)) for i in range(len(bits) // 8))


@case("section 5 table")
def _():
    table = {3: (5, 8), 5: (3, 7), 9: (5, 16), 17: (3, 13), 33: (3, 16), 65: (2, 13), 129: (2, 15), 257: (1, 9)}
    per_code = {3: 1.6, 5: 2.333, 9: 3.2, 17: 4.333, 33: 5.333, 65: 6.5, 129: 7.5, 257: 9}
    for levels, gw in table.items():
        got = bfq.packing_params(levels)
        record(got == gw, f"(G, W) of L = {levels}", f"{got} != {gw}")
        record(round(got[1] / got[0], 3) == per_code[levels], f"stored bits per code of L = {levels}")
    for w in range(1, 9):
        record(bfq.packing_params(1 << w) == (1, w), f"plain packing of L = {1 << w}")
    for levels in range(2, 258):  # W <= 16 everywhere: a group decodes through a table of at most 65,536 entries
        g, w = bfq.packing_params(levels)
        record(1 <= g <= 8 and w <= 16 and levels ** g <= 1 << w, f"(G, W) = ({g}, {w}) of L = {levels}")


@case("section 5 worked examples")
def _():
    for levels, n, codes, data in [(3, 6, [2, 0, 1, 1, 2, 1], b"\xc8\x01"), (5, 5, [4, 0, 3, 1, 2], b"\xcf\x05"),
                                   (4, 4, [3, 1, 0, 2], b"\x87")]:
        record(bfq.row_bytes(levels, n) == len(data), f"row_bytes of the L = {levels} example")
        got = bfq.unpack_codes(np.frombuffer(data, np.uint8), levels, n)
        record(got.tolist() == [codes], f"unpacking the L = {levels} example", f"{got.tolist()} != {[codes]}")
        record(spec_pack_row(codes, levels) == data, f"packing the L = {levels} example (this test's packer)")


@case("section 5.2 table and worked examples (byte packing)")
def _():
    for levels in range(2, 258):
        got = bfq.packing_params(levels, "bytes")
        record(got == spec_byte_params(levels), f"bytes (G, W) of L = {levels}", f"{got}")
    record([bfq.packing_params(l, "bytes")[0] for l in (2, 3, 4, 5, 6, 7, 16, 17, 256)] == [8, 5, 4, 3, 3, 2, 2, 1, 1],
           "bytes G column of the section 5.2 table")
    for levels, n, codes, data in [(5, 5, [4, 0, 3, 1, 2], b"\x4f\x0b"), (9, 3, [7, 8, 1], b"\x4f\x01"),
                                   (17, 3, [16, 0, 5], b"\x10\x00\x05"), (257, 3, [256, 1, 0], b"\x00\x01\x01\x00\x00\x00")]:
        record(bfq.row_bytes(levels, n, "bytes") == len(data), f"row_bytes of the bytes L = {levels} example")
        got = bfq.unpack_codes(np.frombuffer(data, np.uint8), levels, n, packing="bytes")
        record(got.tolist() == [codes], f"unpacking the bytes L = {levels} example", f"{got.tolist()} != {[codes]}")
        record(spec_pack_row(codes, levels, "bytes") == data, f"packing the bytes L = {levels} example (this test's packer)")
    # L = 2, 3, 4, 16, 256: the same bytes as radix packing
    rng = np.random.default_rng(5)
    for levels in (2, 3, 4, 16, 256):
        codes = rng.integers(0, levels, 29)
        record(spec_pack_row(codes, levels, "bytes") == spec_pack_row(codes, levels), f"bytes = radix for L = {levels}")


@case("unpacking every level count against the bit-by-bit decoder")
def _():
    rng = np.random.default_rng(3)
    for packing in ("radix", "bytes"):
        for levels in range(2, 258):
            for n in (1, 7, 8, 13, 40):
                rows = 3
                codes = rng.integers(0, levels, (rows, n))
                packed = b"".join(spec_pack_row(r, levels, packing) for r in codes)
                arr = np.frombuffer(packed, np.uint8).reshape(rows, -1)
                got = bfq.unpack_codes(arr, levels, n, packing=packing)
                ref = [spec_unpack_row(arr[r].tobytes(), levels, n, packing) for r in range(rows)]
                ok = arr.shape[1] == bfq.row_bytes(levels, n, packing) and got.tolist() == codes.tolist() == ref
                record(ok, f"L = {levels}, n = {n}, {packing}")


@case("invalid codes (invariant 13)")
def _():
    def refused(data, levels, n, label, packing="radix"):
        try:
            bfq.unpack_codes(np.frombuffer(data, np.uint8).reshape(1, -1), levels, n, packing=packing)
            record(False, label, "accepted")
        except bfq.BFQError as e:
            record(e.name == "codeInvalid", label, str(e))
    refused(b"\xf3", 3, 5, "ternary group value 243 >= 3^5")
    refused(b"\xff\x7f", 5, 6, "five-level group value 127 >= 5^3")
    refused(b"\xff\x01", 257, 1, "L = 257 value 511")
    refused(b"\xcf\x85", 5, 5, "non-zero padding bit")
    refused(b"\x1f", 4, 2, "non-zero padding bits, plain")
    refused(b"\x51", 3, 3, "radix last group padded with a non-zero code")
    refused(b"\x00\x7d", 5, 6, "byte-packed five-level group value 125 >= 5^3", "bytes")
    refused(b"\x40", 8, 1, "byte-packed eight-level group value 64 >= 8^2", "bytes")
    refused(b"\x10\x11", 17, 2, "byte-packed 17-level code 17", "bytes")
    refused(b"\x00\x01\x01\x01", 257, 2, "byte-packed L = 257 code 257", "bytes")
    refused(b"\x4f\x0b", 5, 4, "byte-packed last group padded with a non-zero code", "bytes")
    refused(b"\x4f\x0a", 9, 3, "byte-packed nine-level last group padded with a non-zero code", "bytes")


@case("value rules (section 3.2)")
def _():
    codes = np.array([[0, 1, 2]], np.uint8)
    # balanced b = 1: q = -1, 0, 1; s x q in f32, then + o in f32; -0 + 0 = +0 even without an offset
    w = bfq.grid_values(codes, 3, "balanced", np.array([-1.5], np.float32))
    record(w.view(np.uint32).tolist() == [[np.float32(1.5).view(np.uint32), 0, np.float32(-1.5).view(np.uint32)]],
           "balanced grid, negative scale, zero sign")
    s = np.float16(0.1).astype(np.float32)
    o = np.float32(1e8)
    w = bfq.grid_values(np.array([[3]], np.uint8), 4, "plain", np.array([s]), np.array([o]))
    ref = np.float32(np.float64(np.float32(np.float64(s) * 1.0)) + np.float64(o))
    record(w[0, 0].view(np.uint32) == ref.view(np.uint32), "plain grid q = 1 with offset, f32 rounding")
    three = np.float32(1 / 3)
    # L = 9, code 7: q = 3; f32(f32(1/3) x 3) = 1 exactly, so the sum is 0 (a fused multiply-add gives 2.98e-8)
    w = bfq.grid_values(np.array([[7]], np.uint8), 9, "balanced", np.array([three]), np.array([np.float32(-1)]))
    record(w[0, 0].view(np.uint32) == 0, "no fused multiply-add", repr(w[0, 0]))
    # per group, a short last group
    codes = np.arange(70, dtype=np.uint8).reshape(1, 70) % 5
    scales = np.array([[1, 2, 4]], np.float32)
    w = bfq.grid_values(codes, 5, "balanced", scales, None, 32)
    ref = (codes.astype(np.float32) - 2) * scales[0, np.arange(70) // 32]
    record(np.array_equal(w, ref), "per-group scales, short last group")
    pal = np.array([[1, -2, 3], [0.5, 0.25, -0.0]], np.float16)
    w = bfq.palette_values(np.array([[2, 0], [2, 1]], np.uint8), pal, True)
    record(w.tobytes() == np.array([[3, 1], [-0.0, 0.25]], np.float32).tobytes(), "palette per row")
    w = bfq.palette_values(np.array([[2, 0]], np.uint8), pal[0], False)
    record(w.tobytes() == np.array([[3, 1]], np.float32).tobytes(), "palette per tensor")


# ------------------------------------------------------------------------------------------------------------------
# (b) fixtures written by the Swift side

ST_DTYPES = {"BOOL": "?", "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "F16": "<f2", "BF16": "<u2",
             "I32": "<i4", "U32": "<u4", "F32": "<f4", "F64": "<f8", "I64": "<i8", "U64": "<u8",
             "F8_E5M2": "u1", "F8_E4M3": "u1"}


def read_safetensors(path):
    """{name: array} of a safetensors file, with numpy alone (BF16 and F8 widened to float32 exactly)."""
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8:8 + size])
    base = 8 + size
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        if dt in ("BF16", "F8_E5M2", "F8_E4M3"):
            arr = bfq._raw_array(raw, dt, tuple(info["shape"]), None)
        else:
            arr = np.frombuffer(raw, dtype=ST_DTYPES[dt]).astype(np.dtype(ST_DTYPES[dt]).newbyteorder("="))
            arr = arr.reshape(info["shape"])
        out[name] = arr
    return out


def same_bits(got, expected):
    if got.dtype != expected.dtype:
        with np.errstate(all="ignore"):
            got = got.astype(expected.dtype)  # e.g. an F16 raw tensor widened (exactly) in an F32 expected file
    return got.shape == expected.shape and got.tobytes() == expected.tobytes()


def check_fixture(path):
    label = os.path.basename(path)
    expected_path = path[:-len(".bfq")] + ".expected.safetensors"
    try:
        bfq.verify(path)
        record(True, label)
    except Exception as e:  # noqa: BLE001
        record(False, f"{label}: verify", f"{type(e).__name__}: {e}")
        return
    if not os.path.exists(expected_path):
        record(False, label, f"no {os.path.basename(expected_path)}")
        return
    expected = read_safetensors(expected_path)
    with bfq.open(path) as f:
        names = f.names()
        missing = [n for n in names if n not in expected]
        extra = [n for n in expected if n not in f]
        record(not missing and not extra, f"{label}: tensor names",
               f"missing from the expected file {missing[:5]}, only in the expected file {extra[:5]}")
        for name in names:
            if name not in expected:
                continue
            got = f.tensor(name, dtype=None)
            exp = expected[name]
            ok = same_bits(got, exp)
            detail = ""
            if not ok:
                detail = f"{got.dtype}{list(got.shape)} vs expected {exp.dtype}{list(exp.shape)}"
                if got.shape == exp.shape and got.size:
                    a = got.astype(exp.dtype).reshape(-1).view(np.uint8).reshape(got.size, -1)
                    b = exp.reshape(-1).view(np.uint8).reshape(exp.size, -1)
                    i = int(np.flatnonzero((a != b).any(axis=1))[0])
                    detail += f"; first difference at flat index {i}: {got.reshape(-1)[i]!r} vs {exp.reshape(-1)[i]!r}"
            record(ok, f"{label}: {name}", detail)
            if exp.dtype.kind == "f" and got.dtype == np.float32:  # f16 output is the f32 value rounded to nearest even
                got16 = f.tensor(name, dtype="float16")
                with np.errstate(all="ignore"):
                    record(got16.tobytes() == got.astype(np.float16).tobytes(), f"{label}: {name} as float16")


def check_corrupt(path):
    label = os.path.basename(path)
    try:
        bfq.verify(path)
        record(False, label, "accepted: a corrupt file must be refused with a BFQError")
    except bfq.BFQError as e:
        record(True, label)
        print(f"  {label}: refused, {str(e)[:150]}")
    except Exception as e:  # noqa: BLE001
        record(False, label, f"crashed instead of a BFQError: {type(e).__name__}: {e}")


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "testdata", "bfq")
    files = sorted(glob.glob(os.path.join(folder, "*.bfq")))
    corrupt = [p for p in files if ".corrupt-" in os.path.basename(p)]
    valid = [p for p in files if p not in corrupt]
    if not files:
        print(f"no .bfq fixtures in {os.path.normpath(folder)}: spec checks only")
    for path in valid:
        check_fixture(path)
    for path in corrupt:
        check_corrupt(path)
    print(f"bfq.py: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
