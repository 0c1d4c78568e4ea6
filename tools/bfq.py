#!/usr/bin/env python3
"""Reader for bfq's .bfq container (spec/bfq.md, version 1.x), needing only numpy and zstandard.

Load a quantized UNet into diffusers in two lines:

    from bfq import load
    unet.load_state_dict(load("unet.bfq", as_torch=True), strict=False)

strict=False is needed when the file carries a time-feature cache: the tensors it replaces (the time-embedding MLP and
every ResNet's time_emb_proj) are absent from the file; their per-timestep outputs are in `open(...).time_features()`.

Random access:

    with bfq.open("unet.bfq") as f:            # checks reader invariants 1 to 11 (spec section 8)
        f.manifest, f.names()
        w = f.tensor("conv_in.weight")         # reads and checks (12, 13) only this tensor's sections
        timesteps, features = f.time_features()
        f.verify()                             # invariants 12 and 13 for every section

As a script:

    python3 tools/bfq.py FILE.bfq [--verify] [--npz OUT.npz] [--dtype float32|float16]

prints a short summary; on any failure it prints one line naming the broken rule and exits 1.
"""

import builtins
import json
import math
import os
import stat
import struct
import sys
import zlib
from fractions import Fraction

import numpy as np

try:
    import zstandard as _zstd
except ImportError:  # only compressed sections need it
    _zstd = None

__all__ = ["BFQError", "Reader", "open", "load", "verify", "packing_params", "row_bytes", "unpack_codes",
           "grid_values", "palette_values"]

MAGIC = b"\x89BFQ\r\n\x1a\n"
HEADER_SIZE = 128
FLAG_BYTE_PACKING = 1  # header flag bit 0 (version 1.1): some tensor has "packing": "bytes"
ENTRY_SIZE = 40
MAX_SECTIONS = 1 << 20
MAX_MANIFEST = 64 << 20
MAX_RATIO = 65536
MAX_SECTION = 1 << 32  # decoded bytes of one section (spec section 6)
MAX_ELEMENTS = 1 << 30  # elements of one tensor (spec section 6)
LIMIT = 1 << 63
MAX_RANK = 8
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# Element sizes of the safetensors dtypes bfq reads.
DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "F32": 4, "F64": 8, "I64": 8}
_NUMPY_DTYPES = {"BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8),
                 "I16": np.dtype("<i2"), "F16": np.dtype("<f2"), "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
                 "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}

# Error names of spec section 8, with the invariant that raises each first.
ERRORS = ("notBFQ", "unsupportedVersion", "headerChecksum", "reservedNotZero", "fileSizeMismatch",
          "tableOutOfBounds", "tableChecksum", "sectionBounds", "manifestChecksum", "manifestInvalid",
          "sectionReference", "encodingInvalid", "sectionSize", "sectionChecksum", "decompression", "codeInvalid")


class BFQError(Exception):
    """A .bfq file breaks a rule of spec/bfq.md. `name` is the error named by spec section 8."""

    def __init__(self, name, detail):
        assert name in ERRORS, name
        self.name = name
        self.detail = detail
        super().__init__(f"{name}: {detail}")


# ---------------------------------------------------------------------------------------------------------------
# Code packing (spec section 5)

_PARAMS = {}


def packing_params(levels, packing="radix"):
    """(G, W): codes per group and bits per group field for L = levels and the tensor's packing (spec section 5).
    Radix: plain packing (G = 1, W = log2(L)) or radix groups. Bytes: the largest G with L^G <= 256 in one byte, or
    one code in 2 bytes for L = 257."""
    if (levels, packing) in _PARAMS:
        return _PARAMS[levels, packing]
    if not (isinstance(levels, int) and 2 <= levels <= 257):
        raise ValueError(f"levels {levels!r} outside 2..257")
    if packing not in ("radix", "bytes"):
        raise ValueError(f"packing {packing!r} is not \"radix\" or \"bytes\"")
    if packing == "bytes":
        g = 1
        while levels ** (g + 1) <= 256:
            g += 1
        params = (1, 16) if levels == 257 else (g, 8)
    elif levels & (levels - 1) == 0:  # L = 2^w: plain packing
        params = (1, levels.bit_length() - 1)
    else:  # radix: among G = 1..8 with W = ceil(log2(L^G)) <= 16 the smallest W/G, ties to the smaller G
        params = None
        for g in range(1, 9):
            w = (levels ** g - 1).bit_length()  # ceil(log2(x)) for an integer x >= 2, exactly
            if w > 16:
                continue
            if params is None or Fraction(w, g) < Fraction(params[1], params[0]):
                params = (g, w)
    _PARAMS[levels, packing] = params
    return params


# The tables of spec sections 5.1 and 5.2.
assert [packing_params(l) for l in (3, 5, 9, 17, 33, 65, 129, 257)] == \
    [(5, 8), (3, 7), (5, 16), (3, 13), (3, 16), (2, 13), (2, 15), (1, 9)]
assert [packing_params(l, "bytes")[0] for l in (2, 3, 4, 5, 6, 7, 16, 17, 256)] == [8, 5, 4, 3, 3, 2, 2, 1, 1]
assert packing_params(257, "bytes") == (1, 16)


def row_bytes(levels, n, packing="radix"):
    """Bytes of one packed row of n codes."""
    g, w = packing_params(levels, packing)
    return (-(-n // g) * w + 7) // 8


_DIGITS = {}


def _digit_table(levels, g):
    """[L^G, G] table: group value -> its G codes (c0 least significant)."""
    if (levels, g) not in _DIGITS:
        v = np.arange(levels ** g, dtype=np.int64)
        table = np.empty((levels ** g, g), dtype=np.uint8 if levels <= 256 else np.uint16)
        for i in range(g):
            table[:, i] = (v // levels ** i) % levels
        _DIGITS[levels, g] = table
    return _DIGITS[levels, g]


_BYTE_LUTS = {}


def _byte_lut(w):
    """[256, 8 / w] table: byte -> its w-bit fields, least significant first (w in 1, 2, 4)."""
    if w not in _BYTE_LUTS:
        b = np.arange(256, dtype=np.uint16)
        _BYTE_LUTS[w] = np.stack([(b >> (k * w)) & ((1 << w) - 1) for k in range(8 // w)], axis=1).astype(np.uint8)
    return _BYTE_LUTS[w]


def _fields(packed, w, count):
    """W-bit fields [rows, count] of byte-aligned rows packed [rows, row_bytes] (stream bit order of section 5)."""
    rows, nbytes = packed.shape
    if w in (1, 2, 4):
        return _byte_lut(w)[packed].reshape(rows, nbytes * (8 // w))[:, :count]
    if w == 8:
        return packed[:, :count]
    if w == 16:
        return np.ascontiguousarray(packed[:, :2 * count]).view("<u2").astype(np.uint16)
    # Every 8 fields fill exactly w bytes: handle the row as blocks of w bytes, one vector operation per field slot.
    blocks = -(-count // 8)
    if nbytes != blocks * w:
        padded = np.zeros((rows, blocks * w), dtype=np.uint8)
        padded[:, :nbytes] = packed
    else:
        padded = packed
    blk = padded.reshape(rows, blocks, w)
    out = np.empty((rows, blocks, 8), dtype=np.uint16)
    mask = (1 << w) - 1
    for k in range(8):
        start = k * w
        first, last = start >> 3, (start + w - 1) >> 3
        acc = blk[:, :, first].astype(np.uint32)
        for j in range(first + 1, last + 1):
            acc |= blk[:, :, j].astype(np.uint32) << (8 * (j - first))
        out[:, :, k] = (acc >> (start & 7)) & mask
    return out.reshape(rows, blocks * 8)[:, :count]


def unpack_codes(packed, levels, n, where="codes", packing="radix"):
    """Codes [rows, n] (uint8, or uint16 when L = 257) of packed rows [rows, row_bytes]; checks invariant 13."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim == 1:
        packed = packed.reshape(1, -1)
    g, w = packing_params(levels, packing)
    groups = -(-n // g)
    rb = (groups * w + 7) // 8
    rows = packed.shape[0]
    if packed.shape[1] != rb:
        raise ValueError(f"rows of {packed.shape[1]} bytes, expected {rb}")
    if rows == 0 or rb == 0:
        return np.zeros((rows, n), dtype=np.uint8 if levels <= 256 else np.uint16)
    used = groups * w
    if used % 8:
        tail = packed[:, -1] >> (used % 8)
        if tail.any():
            r = int(np.flatnonzero(tail)[0])
            raise BFQError("codeInvalid", f"{where}: row {r} has non-zero padding bits")
    fields = _fields(packed, w, groups)
    if g == 1:
        if levels != 1 << w:  # L = 257, or a byte per code: a field must be below L
            bad = fields >= levels
            if bad.any():
                r, j = (int(x[0]) for x in np.nonzero(bad))
                raise BFQError("codeInvalid", f"{where}: row {r} group {j} value {int(fields[r, j])} >= {levels}")
        return fields.astype(np.uint8 if levels <= 256 else np.uint16)
    limit = levels ** g
    bad = fields >= limit
    if bad.any():
        r, j = (int(x[0]) for x in np.nonzero(bad))
        raise BFQError("codeInvalid", f"{where}: row {r} group {j} value {int(fields[r, j])} >= {levels}^{g}")
    codes = _digit_table(levels, g)[fields].reshape(rows, groups * g)
    if groups * g != n:
        pad = codes[:, n:]
        if pad.any():
            r = int(np.flatnonzero(pad.any(axis=1))[0])
            raise BFQError("codeInvalid", f"{where}: row {r} last group padded with non-zero codes")
        codes = codes[:, :n]
    return codes


# ---------------------------------------------------------------------------------------------------------------
# Values (spec section 3.2)

def grid_values(codes, levels, grid, scales, offsets=None, group_size=None):
    """f32 weights [rows, n] of codes [rows, n]: w = f32(f32(s x q) + o), s and o already f32 ([rows, groups], [rows])."""
    b = (levels - 1).bit_length() - 1 if grid == "balanced" else levels.bit_length() - 1  # L = 2^b + 1 or 2^b
    q = (np.arange(levels, dtype=np.int32) - (1 << (b - 1))).astype(np.float32)
    rows, n = codes.shape
    out = q[codes]
    scales = np.asarray(scales, dtype=np.float32).reshape(rows, -1)
    if group_size is None:
        out *= scales[:, :1]
    else:
        groups = -(-n // group_size)
        if n == groups * group_size:
            out.reshape(rows, groups, group_size)[...] *= scales[:, :groups, None]  # out is C-contiguous: a view
        else:
            out *= np.repeat(scales[:, :groups], group_size, axis=1)[:, :n]
    o = np.zeros((rows, 1), np.float32) if offsets is None else np.asarray(offsets, np.float32).reshape(rows, 1)
    out += o  # the sum is always performed: s x q = -0 plus an absent offset (+0) gives +0
    return out


def palette_values(codes, palette, per_row):
    """f32 weights [rows, n]: palette[c] widened from f16 (palette [rows, L] per row or [L] per tensor)."""
    pal = np.asarray(palette).astype(np.float32)
    if per_row:
        return np.take_along_axis(pal, codes.astype(np.intp), axis=1)
    return pal[codes]


def _f8_e4m3_table():
    b = np.arange(256)
    s = np.where(b >> 7, -1.0, 1.0)
    e = (b >> 3) & 15
    m = b & 7
    v = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7.0)) * s
    v[(e == 15) & (m == 7)] = np.nan
    return v.astype(np.float32)


def _raw_array(data, raw_dtype, shape, out_dtype):
    """Raw section bytes as an array of `shape`. out_dtype: None keeps the stored type (BF16 and F8 become F32);
    float32 or float16 converts floating types (rounding to nearest even), leaves integer and bool types alone."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if raw_dtype == "BF16":
        arr = (buf.view("<u2").astype(np.uint32) << 16).view(np.float32)
    elif raw_dtype == "F8_E5M2":  # the top byte of an f16
        arr = (buf.astype(np.uint16) << 8).view(np.float16).astype(np.float32)
    elif raw_dtype == "F8_E4M3":
        arr = _f8_e4m3_table()[buf]
    else:
        arr = buf.view(_NUMPY_DTYPES[raw_dtype]).astype(_NUMPY_DTYPES[raw_dtype].newbyteorder("="))
    if out_dtype is not None and arr.dtype.kind == "f":
        with np.errstate(all="ignore"):
            arr = arr.astype(out_dtype)
    return arr.reshape(shape)


# ---------------------------------------------------------------------------------------------------------------
# Manifest structure (invariant 8)

def _is_int(v):
    return type(v) is int and 0 <= v < LIMIT


def _is_number(v):
    return type(v) in (int, float)


def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _check_strings(v):
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            x.encode("utf-8")  # a lone surrogate escape raises
        elif isinstance(x, dict):
            for k, y in x.items():
                k.encode("utf-8")
                stack.append(y)
        elif isinstance(x, list):
            stack.extend(x)


def _bad(detail):
    raise BFQError("manifestInvalid", detail)


def _check_ref(ref, where):
    if not isinstance(ref, dict):
        _bad(f"{where}: a section reference must be an object")
    for key in ("index", "stored_size", "decoded_size", "crc32"):
        if not _is_int(ref.get(key)):
            _bad(f"{where}: section reference key {key!r} missing or not an int")


def _check_sections(obj, where):
    secs = obj.get("sections")
    if not isinstance(secs, dict):
        _bad(f"{where}: 'sections' missing or not an object")
    for role, ref in secs.items():
        _check_ref(ref, f"{where} role {role!r}")


def _parse_manifest(raw):
    try:
        text = raw.decode("utf-8")
        m = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        _check_strings(m)
    except BFQError:
        raise
    except (ValueError, RecursionError, UnicodeError) as e:
        _bad(f"not RFC 8259 UTF-8 JSON: {str(e)[:200]}")
    if not isinstance(m, dict):
        _bad("the manifest is not a JSON object")
    if m.get("format") != "bfq":
        _bad("'format' missing or not \"bfq\"")
    if not isinstance(m.get("tool"), str):
        _bad("'tool' missing or not a string")
    tensors = m.get("tensors")
    if not isinstance(tensors, list):
        _bad("'tensors' missing or not an array")
    for i, t in enumerate(tensors):
        where = f"tensor {i}"
        if not isinstance(t, dict):
            _bad(f"{where} is not an object")
        if not isinstance(t.get("name"), str):
            _bad(f"{where}: 'name' missing or not a string")
        where = f"tensor {i} ({t['name'][:100]!r})"
        shape = t.get("shape")
        if not isinstance(shape, list) or not all(_is_int(d) for d in shape):
            _bad(f"{where}: 'shape' missing or not an array of int")
        for key in ("dtype", "encoding"):
            if not isinstance(t.get(key), str):
                _bad(f"{where}: {key!r} missing or not a string")
        _check_sections(t, where)
        if "sqnr_db" in t and not _is_number(t["sqnr_db"]):
            _bad(f"{where}: 'sqnr_db' is not a number")
    if "metadata" in m:
        md = m["metadata"]
        if not isinstance(md, dict) or not all(isinstance(v, str) for v in md.values()):
            _bad("'metadata' is not an object of strings")
    if "source" in m:
        src = m["source"]
        if not isinstance(src, dict):
            _bad("'source' is not an object")
        if "name" in src and not isinstance(src["name"], str):
            _bad("'source.name' is not a string")
        if "size" in src and not _is_int(src["size"]):
            _bad("'source.size' is not an int")
        if "sha256" in src:
            h = src["sha256"]
            if not (isinstance(h, str) and len(h) == 64 and all(c in "0123456789abcdef" for c in h)):
                _bad("'source.sha256' is not 64 lowercase hex digits")
    if "plan" in m and not isinstance(m["plan"], dict):
        _bad("'plan' is not an object")
    if "totals" in m:
        tot = m["totals"]
        if not isinstance(tot, dict):
            _bad("'totals' is not an object")
        if "weights" in tot and not _is_int(tot["weights"]):
            _bad("'totals.weights' is not an int")
        for key in ("average_bits", "file_bits_per_weight"):
            if key in tot and not _is_number(tot[key]):
                _bad(f"'totals.{key}' is not a number")
    if "time_features" in m:
        tf = m["time_features"]
        if not isinstance(tf, dict):
            _bad("'time_features' is not an object")
        ts = tf.get("timesteps")
        if not isinstance(ts, list) or not all(_is_int(x) for x in ts):
            _bad("'time_features.timesteps' missing or not an array of int")
        if any(a >= b for a, b in zip(ts, ts[1:])):
            _bad("'time_features.timesteps' not strictly increasing")
        layers = tf.get("layers")
        if not isinstance(layers, list):
            _bad("'time_features.layers' missing or not an array")
        for j, layer in enumerate(layers):
            if not (isinstance(layer, dict) and isinstance(layer.get("name"), str) and _is_int(layer.get("width"))):
                _bad(f"'time_features.layers' entry {j} is not {{\"name\": string, \"width\": int}}")
        _check_sections(tf, "time_features")
    return m


# ---------------------------------------------------------------------------------------------------------------
# The reader

class _Entry:
    __slots__ = ("index", "offset", "stored_size", "decoded_size", "stored_crc32", "decoded_crc32", "compression")

    def __init__(self, index, raw):
        self.index = index
        (self.offset, self.stored_size, self.decoded_size, self.stored_crc32, self.decoded_crc32,
         self.compression) = struct.unpack_from("<QQQIIB", raw)


class _Tensor:
    """A tensor entry with the parameters invariant 11 validated."""

    def __init__(self, obj):
        self.obj = obj
        self.name = obj["name"]
        self.shape = tuple(obj["shape"])
        self.encoding = obj["encoding"]
        self.refs = obj["sections"]
        self.packing = None  # "radix" or "bytes" for quantized tensors


def _zstd_content_size(data, where):
    """The content size in the zstd frame header (RFC 8878 3.1.1.1); fails unless it is present."""
    if len(data) < 6 or data[:4] != ZSTD_MAGIC:
        raise BFQError("decompression", f"{where}: not a zstd frame (magic {bytes(data[:4]).hex()})")
    fhd = data[4]
    fcs_flag, single, reserved, did_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 3) & 1, fhd & 3
    if reserved:
        raise BFQError("decompression", f"{where}: zstd frame header reserved bit set")
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[did_flag]
    if did_flag and int.from_bytes(data[5 + (0 if single else 1):pos], "little"):
        raise BFQError("decompression", f"{where}: zstd frame needs a dictionary")
    size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if size == 0:
        raise BFQError("decompression", f"{where}: zstd frame header does not carry the content size")
    if len(data) < pos + size:
        raise BFQError("decompression", f"{where}: truncated zstd frame header")
    value = int.from_bytes(data[pos:pos + size], "little")
    return value + 256 if size == 2 else value


def _zstd_decompress(data, size):
    """One frame filling `data`, whose header content size is `size` (checked), into at most `size` bytes."""
    d = _zstd.ZstdDecompressor()
    try:
        return d.decompress(data, max_output_size=size, allow_extra_data=False)
    except TypeError:  # zstandard < 0.23 has no allow_extra_data
        pass
    obj = d.decompressobj()
    out = obj.decompress(data)
    if not obj.eof or obj.unused_data:
        raise _zstd.ZstdError("not exactly one complete zstd frame")
    return out


class Reader:
    """An open .bfq file. Opening checks reader invariants 1 to 11; reading a section checks 12 and 13."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if os.path.exists(self.path) and not stat.S_ISREG(os.stat(self.path).st_mode):
            raise BFQError("notBFQ", "not a regular file")  # never block on a FIFO or read a device
        self._file = builtins.open(self.path, "rb")
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise

    # -- low level
    def _read_at(self, offset, size):
        self._file.seek(offset)
        data = self._file.read(size)
        if len(data) != size:
            raise OSError(f"{self.path}: short read at offset {offset} (file changed while reading?)")
        return data

    def _zero_range(self, start, end, what):
        pos = start
        while pos < end:
            chunk = self._read_at(pos, min(end - pos, 1 << 20))
            if chunk.count(0) != len(chunk):
                at = pos + next(i for i, c in enumerate(chunk) if c)
                raise BFQError("reservedNotZero", f"non-zero byte at offset {at} ({what})")
            pos += len(chunk)

    def _open(self):
        head = self._file.read(HEADER_SIZE)
        # 1
        if len(head) < HEADER_SIZE or head[:8] != MAGIC:
            raise BFQError("notBFQ", "too short for a header" if len(head) < HEADER_SIZE else "no .bfq magic")
        (_, major, minor, flags, table_offset, section_count, manifest_offset, manifest_size, file_size,
         table_crc, manifest_crc, header_crc) = struct.unpack_from("<8sHHIQQQQQIII", head)
        # 2
        if major != 1:
            raise BFQError("unsupportedVersion", f"major version {major}.{minor}, this reader reads 1.x")
        # 3
        crc = zlib.crc32(head[:64])
        if crc != header_crc:
            raise BFQError("headerChecksum", f"header CRC-32 0x{crc:08x} != stored 0x{header_crc:08x}")
        if flags & ~FLAG_BYTE_PACKING:
            raise BFQError("reservedNotZero", f"header flags 0x{flags:08x} (only bit 0, byte packing, is defined)")
        if any(head[68:]):
            raise BFQError("reservedNotZero", "header reserved bytes 68 to 127 not zero")
        # 4
        actual = os.fstat(self._file.fileno()).st_size
        if file_size != actual:
            raise BFQError("fileSizeMismatch", f"header file_size {file_size} != actual size {actual}")
        # 5
        if table_offset % 64 or table_offset < HEADER_SIZE:
            raise BFQError("tableOutOfBounds", f"table_offset {table_offset} not a multiple of 64 at least 128")
        if section_count > MAX_SECTIONS:
            raise BFQError("tableOutOfBounds", f"section_count {section_count} > {MAX_SECTIONS}")
        if manifest_offset != table_offset + ENTRY_SIZE * section_count:
            raise BFQError("tableOutOfBounds", f"manifest_offset {manifest_offset} != table_offset + 40 x "
                                               f"section_count = {table_offset + ENTRY_SIZE * section_count}")
        if manifest_size > MAX_MANIFEST:
            raise BFQError("tableOutOfBounds", f"manifest_size {manifest_size} > 64 MiB")
        if manifest_offset + manifest_size != file_size:
            raise BFQError("tableOutOfBounds", f"manifest_offset + manifest_size = {manifest_offset + manifest_size}"
                                               f" != file_size {file_size}")
        # 6
        table = self._read_at(table_offset, ENTRY_SIZE * section_count)
        crc = zlib.crc32(table)
        if crc != table_crc:
            raise BFQError("tableChecksum", f"table CRC-32 0x{crc:08x} != stored 0x{table_crc:08x}")
        # 7
        entries = []
        end = HEADER_SIZE
        for i in range(section_count):
            raw = table[i * ENTRY_SIZE:(i + 1) * ENTRY_SIZE]
            e = _Entry(i, raw)
            if e.offset % 64 or e.offset < HEADER_SIZE or e.offset < end:
                raise BFQError("sectionBounds", f"section {i} offset {e.offset} not a multiple of 64, at least 128 "
                                                f"and at least {end} (end of the previous section)")
            end = e.offset + e.stored_size
            if end > table_offset:
                raise BFQError("sectionBounds", f"section {i} ends at {end}, past table_offset {table_offset}")
            if e.compression not in (0, 1):
                raise BFQError("sectionBounds", f"section {i} compression {e.compression} (0 or 1)")
            if any(raw[33:]):
                raise BFQError("reservedNotZero", f"section {i} table entry reserved bytes not zero")
            if e.compression == 0 and (e.decoded_size != e.stored_size or e.decoded_crc32 != e.stored_crc32):
                raise BFQError("sectionBounds", f"section {i} uncompressed but its decoded size or CRC differs from "
                                                f"the stored one")
            if e.decoded_size > MAX_SECTION:
                raise BFQError("sectionBounds", f"section {i} decoded_size {e.decoded_size} exceeds 4 GiB")
            if e.compression == 1 and e.decoded_size > MAX_RATIO * e.stored_size:
                raise BFQError("sectionBounds", f"section {i} decoded_size {e.decoded_size} > 65536 x stored_size "
                                                f"{e.stored_size}")
            entries.append(e)
        # 8
        raw = self._read_at(manifest_offset, manifest_size)
        crc = zlib.crc32(raw)
        if crc != manifest_crc:
            raise BFQError("manifestChecksum", f"manifest CRC-32 0x{crc:08x} != stored 0x{manifest_crc:08x}")
        manifest = _parse_manifest(raw)
        # 9 (the bytes after the header count as padding before the first section)
        prev = HEADER_SIZE
        for e in entries:
            self._zero_range(prev, e.offset, f"padding before section {e.index}")
            prev = e.offset + e.stored_size
        self._zero_range(prev, table_offset, "padding before the section table")
        # 10
        self.header = {"major_version": major, "minor_version": minor, "flags": flags, "table_offset": table_offset,
                       "section_count": section_count, "manifest_offset": manifest_offset,
                       "manifest_size": manifest_size, "file_size": file_size}
        self.manifest = manifest
        self._entries = entries
        self._check_references()
        # 11
        self._tensors = {}
        self._roles = {}  # section index -> (owner, role) for verify()
        for t in manifest["tensors"]:
            tensor = self._check_tensor(t)
            self._tensors[tensor.name] = tensor
            for role, ref in tensor.refs.items():
                self._roles[ref["index"]] = (tensor, role)
        if flags & FLAG_BYTE_PACKING and not any(t.packing == "bytes" for t in self._tensors.values()):
            raise BFQError("manifestInvalid", "header flag bit 0 (byte packing) set but no tensor has packing \"bytes\"")
        self._check_time_features()

    def _check_references(self):
        m = self.manifest
        names = set()
        for t in m["tensors"]:
            name = t["name"]
            if not name:
                raise BFQError("manifestInvalid", "a tensor has an empty name")
            if name in names:
                raise BFQError("manifestInvalid", f"tensor name {name[:200]!r} appears twice")
            names.add(name)
            if len(t["shape"]) > MAX_RANK:
                raise BFQError("manifestInvalid", f"tensor {name[:200]!r} has rank {len(t['shape'])} > 8")
            if any(d > MAX_ELEMENTS for d in t["shape"]) or math.prod(t["shape"]) > MAX_ELEMENTS:
                raise BFQError("manifestInvalid", f"tensor {name[:200]!r} has a dimension or more than 2^30 elements")
        tf = m.get("time_features")
        if tf is not None:
            layer_names = [layer["name"] for layer in tf["layers"]]
            if len(set(layer_names)) != len(layer_names) or not all(layer_names):
                raise BFQError("manifestInvalid", "time_features layer names empty or not unique")
        used = [False] * len(self._entries)
        owners = [(f"tensor {t['name'][:200]!r}", t["sections"]) for t in m["tensors"]]
        if tf is not None:
            owners.append(("time_features", tf["sections"]))
        for owner, secs in owners:
            for role, ref in secs.items():
                i = ref["index"]
                if i >= len(self._entries):
                    raise BFQError("sectionReference", f"{owner} role {role!r}: section {i} out of range "
                                                       f"({len(self._entries)} sections)")
                e = self._entries[i]
                for key, value in (("stored_size", e.stored_size), ("decoded_size", e.decoded_size),
                                   ("crc32", e.decoded_crc32)):
                    if ref[key] != value:
                        raise BFQError("sectionReference", f"{owner} role {role!r}: {key} {ref[key]} != section "
                                                           f"{i}'s {value}")
                if used[i]:
                    raise BFQError("sectionReference", f"{owner} role {role!r}: section {i} referenced twice")
                used[i] = True
        if not all(used):
            raise BFQError("sectionReference", f"section {used.index(False)} is not referenced")

    def _check_tensor(self, t):
        tensor = _Tensor(t)
        name, shape, enc = tensor.name[:200], tensor.shape, tensor.encoding

        def invalid(detail):
            raise BFQError("encodingInvalid", f"tensor {name!r}: {detail}")

        def roles(required, optional=()):
            have = set(tensor.refs)
            missing = [r for r in required if r not in have]
            extra = sorted(have - set(required) - set(optional))
            if missing or extra:
                invalid(f"{enc} needs roles {sorted(required)}" + (f" (optional {sorted(optional)})" if optional
                                                                   else "") + f", has {sorted(have)}")

        sizes = {}
        if enc == "raw":
            rd = t.get("raw_dtype")
            if not isinstance(rd, str) or rd not in DTYPE_SIZES:
                invalid(f"raw_dtype {rd!r} is not one of {sorted(DTYPE_SIZES)}")
            roles(["data"])
            tensor.raw_dtype = rd
            sizes["data"] = math.prod(shape) * DTYPE_SIZES[rd]
        elif enc in ("grid", "palette"):
            if len(shape) < 2:
                invalid(f"{enc} tensor of rank {len(shape)} (quantized tensors have at least 2 dimensions)")
            levels = t.get("levels")
            if not (_is_int(levels) and 2 <= levels <= 257):
                invalid(f"levels {levels!r} not an int in 2..257")
            if "bits" in t and not _is_number(t["bits"]):
                invalid("bits is not a number")
            packing = t.get("packing", "radix")
            if packing not in ("radix", "bytes"):
                raise BFQError("manifestInvalid", f"tensor {name!r}: packing {packing!r} (\"radix\" or \"bytes\")")
            if packing == "bytes" and not self.header["flags"] & FLAG_BYTE_PACKING:
                invalid("packing \"bytes\" without header flag bit 0")
            rows, n = shape[0], math.prod(shape[1:])
            tensor.levels, tensor.rows, tensor.n, tensor.packing = levels, rows, n, packing
            sizes["codes"] = rows * row_bytes(levels, n, packing)
            if enc == "grid":
                grid = t.get("grid")
                b = (levels - 1).bit_length() - 1  # L = 2^b (plain) or 2^b + 1 (balanced)
                if grid == "balanced":
                    ok = levels >= 3 and levels - 1 == 1 << b
                elif grid == "plain":
                    ok = levels == 1 << (b + 1)
                else:
                    invalid(f"grid {grid!r} (\"balanced\" or \"plain\")")
                if not ok:
                    invalid(f"levels {levels} is not a {grid} grid size")
                sd = t.get("scale_dtype")
                if sd not in ("F16", "F32"):
                    invalid(f"scale_dtype {sd!r} (\"F16\" or \"F32\")")
                gs = t.get("group_size")
                if "group_size" in t and not (_is_int(gs) and 32 <= gs <= 256):
                    invalid(f"group_size {gs!r} not an int in 32..256")
                has_offsets = "offsets" in tensor.refs
                od = t.get("offset_dtype")
                if has_offsets != ("offset_dtype" in t):
                    invalid("offset_dtype must be present exactly when there is a role 'offsets'")
                if has_offsets and od not in ("F16", "F32"):
                    invalid(f"offset_dtype {od!r} (\"F16\" or \"F32\")")
                roles(["codes", "scales"], ["offsets"])
                tensor.grid, tensor.scale_dtype, tensor.group_size, tensor.offset_dtype = grid, sd, gs, od
                groups = -(-n // gs) if gs is not None else 1
                sizes["scales"] = rows * groups * (2 if sd == "F16" else 4)
                if has_offsets:
                    sizes["offsets"] = rows * (2 if od == "F16" else 4)
            else:
                per = t.get("palette_per")
                if per not in ("row", "tensor"):
                    invalid(f"palette_per {per!r} (\"row\" or \"tensor\")")
                roles(["codes", "palette"])
                tensor.per_row = per == "row"
                sizes["palette"] = (rows * levels if tensor.per_row else levels) * 2
        else:
            invalid(f"encoding {enc!r} (\"raw\", \"grid\" or \"palette\")")
        for role, size in sizes.items():
            got = tensor.refs[role]["decoded_size"]
            if got != size:
                raise BFQError("sectionSize", f"tensor {name!r} role {role!r}: decoded_size {got} != {size}")
        return tensor

    def _check_time_features(self):
        tf = self.manifest.get("time_features")
        if tf is None:
            return
        if set(tf["sections"]) != {"features"}:
            raise BFQError("encodingInvalid", f"time_features roles {sorted(tf['sections'])} (exactly 'features')")
        size = 2 * len(tf["timesteps"]) * sum(layer["width"] for layer in tf["layers"])
        ref = tf["sections"]["features"]
        if ref["decoded_size"] != size:
            raise BFQError("sectionSize", f"time_features: decoded_size {ref['decoded_size']} != {size}")
        self._roles[ref["index"]] = (None, "features")

    # -- sections (invariant 12)
    def read_section(self, index):
        """Decoded bytes of one section, checked (invariant 12)."""
        e = self._entries[index]
        data = self._read_at(e.offset, e.stored_size)
        crc = zlib.crc32(data)
        if crc != e.stored_crc32:
            raise BFQError("sectionChecksum", f"section {index} stored bytes CRC-32 0x{crc:08x} != "
                                              f"0x{e.stored_crc32:08x}")
        if e.compression == 1:
            where = f"section {index}"
            size = _zstd_content_size(data, where)
            if size != e.decoded_size:
                raise BFQError("decompression", f"{where}: zstd content size {size} != decoded_size {e.decoded_size}")
            if _zstd is None:
                raise ImportError("reading a compressed .bfq section needs the zstandard package "
                                  "(pip install zstandard)")
            try:
                data = _zstd_decompress(data, e.decoded_size)
            except _zstd.ZstdError as err:
                raise BFQError("decompression", f"{where}: {err}") from None
            if len(data) != e.decoded_size:
                raise BFQError("decompression", f"{where}: decoded {len(data)} bytes, decoded_size {e.decoded_size}")
            crc = zlib.crc32(data)
        if crc != e.decoded_crc32:
            raise BFQError("sectionChecksum", f"section {index} decoded bytes CRC-32 0x{crc:08x} != "
                                              f"0x{e.decoded_crc32:08x}")
        return data

    def _role(self, tensor, role):
        return self.read_section(tensor.refs[role]["index"])

    # -- public
    def names(self):
        """Tensor names in file order."""
        return [t["name"] for t in self.manifest["tensors"]]

    def info(self, name):
        """The manifest's tensor object."""
        return self._tensors[name].obj

    def _codes_rows(self, tensor):
        """Packed codes as [rows, row_bytes] uint8 and a row chunk size bounding temporaries."""
        data = self._role(tensor, "codes")
        rb = row_bytes(tensor.levels, tensor.n, tensor.packing)
        packed = np.frombuffer(data, dtype=np.uint8).reshape(tensor.rows, rb)
        chunk = max(1, (1 << 22) // max(1, tensor.n))
        return packed, chunk

    def _f(self, data, dt):
        return np.frombuffer(data, dtype="<f2" if dt == "F16" else "<f4").astype(np.float32)

    def tensor(self, name, dtype="float32"):
        """Decode one tensor (reads only its sections). dtype: "float32", "float16", or None (raw tensors keep their
        stored type, BF16 and F8 widened to float32; quantized tensors float32). Integer and bool raw tensors keep
        their type whatever dtype says."""
        if name not in self._tensors:
            raise KeyError(name)
        out_dtype = _out_dtype(dtype)
        t = self._tensors[name]
        scales = offsets = pal = None
        if t.encoding == "raw":
            return _raw_array(self._role(t, "data"), t.raw_dtype, t.shape, out_dtype)
        if t.encoding == "grid":
            groups = -(-t.n // t.group_size) if t.group_size is not None else 1
            scales = self._f(self._role(t, "scales"), t.scale_dtype).reshape(t.rows, groups)
            offsets = self._f(self._role(t, "offsets"), t.offset_dtype) if t.offset_dtype is not None else None
        else:
            pal = np.frombuffer(self._role(t, "palette"), dtype="<f2")
            pal = pal.reshape(t.rows, t.levels) if t.per_row else pal
        packed, chunk = self._codes_rows(t)
        result = np.empty((t.rows, t.n), dtype=out_dtype or np.float32)
        with np.errstate(all="ignore"):  # overflow to inf and NaN are values like any other
            self._decode_rows(t, packed, chunk, result, scales, offsets, pal)
        return result.reshape(t.shape)

    def _decode_rows(self, t, packed, chunk, result, scales, offsets, pal):
        where = f"tensor {t.name[:200]!r} codes"
        for r0 in range(0, t.rows, chunk):
            r1 = min(t.rows, r0 + chunk)
            codes = unpack_codes(packed[r0:r1], t.levels, t.n, where, t.packing)
            if t.encoding == "grid":
                vals = grid_values(codes, t.levels, t.grid, scales[r0:r1],
                                   None if offsets is None else offsets[r0:r1], t.group_size)
            else:
                vals = palette_values(codes, pal[r0:r1] if t.per_row else pal, t.per_row)
            result[r0:r1] = vals  # float32 -> float16 rounds to nearest even

    def time_features(self, dtype="float32"):
        """(timesteps, {layer name: array [T, width]}) of the time-feature cache, or None when the file has none."""
        tf = self.manifest.get("time_features")
        if tf is None:
            return None
        ts = list(tf["timesteps"])
        data = self.read_section(tf["sections"]["features"]["index"])
        widths = [layer["width"] for layer in tf["layers"]]
        arr = np.frombuffer(data, dtype="<f2").reshape(len(ts), sum(widths))
        out_dtype = _out_dtype(dtype) or np.dtype(np.float16)
        feats, col = {}, 0
        for layer, w in zip(tf["layers"], widths):
            feats[layer["name"]] = arr[:, col:col + w].astype(out_dtype)
            col += w
        return ts, feats

    def verify(self):
        """Invariants 12 and 13 for every section, in table order."""
        for e in self._entries:
            owner, role = self._roles[e.index]
            data = self.read_section(e.index)
            if role == "codes":
                rb = row_bytes(owner.levels, owner.n, owner.packing)
                packed = np.frombuffer(data, dtype=np.uint8).reshape(owner.rows, rb)
                chunk = max(1, (1 << 22) // max(1, owner.n))
                for r0 in range(0, owner.rows, chunk):
                    unpack_codes(packed[r0:r0 + chunk], owner.levels, owner.n, f"tensor {owner.name[:200]!r} codes",
                                 owner.packing)

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self):
        return len(self._tensors)

    def __contains__(self, name):
        return name in self._tensors

    def __iter__(self):
        return iter(self.names())


def _out_dtype(dtype):
    if dtype is None:
        return None
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise ValueError(f"dtype {dtype!r}: float32, float16 or None")
    return dt


def open(path):  # noqa: A001 - the module's public API, as `bfq.open`
    """Open a .bfq file for random access (checks invariants 1 to 11)."""
    return Reader(path)


def verify(path):
    """Check every invariant and checksum of spec section 8; raises BFQError at the first that fails."""
    with Reader(path) as f:
        f.verify()
        return f.manifest


def load(path, device=None, as_torch=False, dtype="float32"):
    """Every tensor of a .bfq file as {name: numpy array} (torch tensors with as_torch=True, moved to `device`).

    Quantized tensors are dequantized exactly as spec section 3.2 says; floating raw tensors are converted to `dtype`
    ("float32" or "float16", rounding to nearest even; None keeps them as stored). Tensors replaced by the time-feature
    cache are absent: load into a model with load_state_dict(..., strict=False)."""
    if device is not None and not as_torch:
        raise ValueError("device needs as_torch=True")
    if as_torch:
        import torch  # noqa: F401 - fail early when torch is missing
    with Reader(path) as f:
        out = {name: f.tensor(name, dtype=dtype) for name in f.names()}
    if as_torch:
        import torch
        for name, arr in out.items():
            t = torch.from_numpy(np.ascontiguousarray(arr) if arr.flags.writeable else arr.copy())
            out[name] = t.to(device) if device is not None else t
    return out


# ---------------------------------------------------------------------------------------------------------------
# Script

def _write_npz(path, arrays):
    import tempfile
    import zipfile
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".bfq-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            for name, arr in arrays.items():
                with z.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _summary(f):
    m = f.manifest
    counts = {}
    for name in f.names():
        enc = f.info(name)["encoding"]
        counts[enc] = counts.get(enc, 0) + 1
    h = f.header
    lines = [f"{f.path}: bfq {h['major_version']}.{h['minor_version']}, written by {m['tool']!r}, "
             f"{h['file_size']:,} bytes, {h['section_count']} sections",
             f"  {len(f)} tensors: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))]
    tot = m.get("totals")
    if isinstance(tot, dict) and tot:
        lines.append("  totals: " + ", ".join(f"{k} {tot[k]}" for k in ("weights", "average_bits",
                                                                       "file_bits_per_weight") if k in tot))
    tf = m.get("time_features")
    if tf is not None:
        lines.append(f"  time features: {len(tf['timesteps'])} timesteps x {len(tf['layers'])} layers "
                     f"({sum(layer['width'] for layer in tf['layers'])} values per timestep)")
    src = m.get("source")
    if isinstance(src, dict) and "name" in src:
        lines.append(f"  source: {src['name']}")
    return "\n".join(lines)


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(prog="bfq.py", description="Summarise, verify or dequantize a .bfq file.")
    p.add_argument("file", help="FILE.bfq")
    p.add_argument("--verify", action="store_true", help="check every invariant and checksum of spec section 8")
    p.add_argument("--npz", metavar="OUT.npz", help="write every tensor, dequantized, to a .npz file")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="for --npz (float32)")
    args = p.parse_args(argv)
    try:
        with Reader(args.file) as f:
            if args.verify:
                f.verify()
            print(_summary(f))
            if args.verify:
                print(f"  verify: every invariant and checksum of spec section 8 holds ({len(f._entries)} sections)")
            if args.npz:
                arrays = {name: f.tensor(name, dtype=args.dtype) for name in f.names()}
                try:
                    _write_npz(args.npz, arrays)
                except OSError as e:
                    raise OSError(f"cannot write {args.npz}: {e.strerror or e}") from None
                print(f"  wrote {args.npz} ({len(f)} tensors, {args.dtype})")
    except BFQError as e:
        print(f"bfq.py: {args.file}: {e}", file=sys.stderr)
        return 1
    except (OSError, ImportError, MemoryError) as e:
        print(f"bfq.py: {args.file}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
