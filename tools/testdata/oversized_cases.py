#!/usr/bin/env python3
"""Writes testdata/oversized/: files whose declared counts, lengths and sizes exceed the bytes they hold.

For each format a small valid base file is built by hand and checked with an independent reader (safetensors,
torch.load, tools/bfq.py); every other file is that base with one field lying (a header, shape, offset, entry, pickle
length, element count or section size declaring up to 2^63 bytes), a zstd frame that decodes to far more than its
section declares (a decompression bomb), or a text that costs far more memory parsed than its size. manifest.json
lists per file the reader, `declared` (bytes a reader trusting the file would allocate, when one field says so) and
`error`, a fragment the reader's one-line error must contain. The Swift tests (OversizedDeclarationTests, and
AllocationBoundTests, which measures bfq's peak memory on each) read it.
Run from the repository root: python3 tools/testdata/oversized_cases.py
"""
import json
import os
import struct
import sys
import zlib

import torch
import zstandard
from safetensors.numpy import load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "testdata", "oversized")
TB = 1 << 40
FOUR_FLOATS = struct.pack("<4f", 1, 2, 3, 4)
manifest = []


def le16(v): return struct.pack("<H", v & 0xFFFF)
def le32(v): return struct.pack("<I", v & 0xFFFFFFFF)
def le64(v): return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def write(name, data, reader, error, declared=None, what="", opens=False):
    """`opens`: the file's structure holds (`bfq inspect` shows it); it is refused when its tensors are read."""
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    row = {"file": name, "reader": reader, "error": error, "what": what}
    if declared is not None:
        row["declared"] = declared
    if opens:
        row["opens"] = True
    manifest.append(row)


# ---------------------------------------------------------------- safetensors

def safetensors(header, data=b""):
    text = header.encode()
    return le64(len(text)) + text + data


ST_BASE = safetensors('{"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}', FOUR_FLOATS)


def safetensors_cases():
    write("base.safetensors", ST_BASE, "safetensors", None, what="valid: one F32 [2, 2] tensor")
    for bits in (40, 63):
        write(f"st_header_2e{bits}.safetensors", le64(1 << bits) + ST_BASE[8:], "safetensors",
              f"header length {1 << bits} exceeds the limit", 1 << bits, f"header length 2^{bits}")
    write("st_shape_overflow.safetensors",
          safetensors('{"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}', FOUR_FLOATS),
          "safetensors", "tensor t: shape times element size overflows", None, "shape [2^62, 4]: the product overflows")
    write("st_shape_terabytes.safetensors",
          safetensors('{"t":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}', FOUR_FLOATS),
          "safetensors", "tensors end at data offset 4398046511104 but the data buffer holds 16 bytes", 4 * TB,
          "shape [2^20, 2^20] with offsets to match: 4 TiB in a 16-byte buffer")
    write("st_offsets_past_end.safetensors",
          safetensors('{"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},'
                      '"u":{"dtype":"U8","shape":[1099511627776],"data_offsets":[16,1099511627792]}}', FOUR_FLOATS),
          "safetensors", "tensors end at data offset 1099511627792 but the data buffer holds 16 bytes", TB,
          "a second tensor whose data_offsets run 1 TiB past the end")
    # "[{},{},...]": json-c takes about 800 bytes for each 3-byte empty object.
    objects = "[" + ",".join(["{}"] * 65_000) + "]"
    write("st_json_objects.safetensors",
          safetensors('{"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16],"x":' + objects + "}}", FOUR_FLOATS),
          "safetensors", "holds so many values that parsing would take about", 65_000 * 818,
          "65,000 empty JSON objects in a header: 53 MB once json-c 0.16 has parsed them (818 bytes each, measured)")
    assert load_file(os.path.join(OUT, "base.safetensors"))["t"].tolist() == [[1, 2], [3, 4]]


# ---------------------------------------------------------------- PyTorch zip

def zip_archive(records, zip64_count=None, local_names=None, local_sizes=None, central_sizes=None):
    """A stored zip of (name, data) records, as bfq's ZipBytes test helper writes them (local sizes, no descriptor).
    `local_names`/`local_sizes`/`central_sizes` override what one record's headers say: {index: value}; a size of
    2^32 or more is written as 0xFFFFFFFF with a zip64 extra field."""
    def header(data, size):
        """The fields from version-needed to the sizes, and the zip64 extra field they need."""
        wide = size >= 0xFFFFFFFF
        fields = le16(45 if wide else 20) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(zlib.crc32(data))
        fields += le32(0xFFFFFFFF if wide else size) * 2
        return fields, le16(1) + le16(16) + le64(size) * 2 if wide else b""

    out, central = b"", b""
    for index, (name, data) in enumerate(records):
        offset = len(out)
        local_name = (local_names or {}).get(index, name).encode()
        fields, extra = header(data, (local_sizes or {}).get(index, len(data)))
        out += le32(0x04034B50) + fields + le16(len(local_name)) + le16(len(extra)) + local_name + extra + data
        fields, extra = header(data, (central_sizes or {}).get(index, len(data)))
        central += (le32(0x02014B50) + le16(45) + fields + le16(len(name.encode())) + le16(len(extra))
                    + le16(0) * 3 + le32(0) + le32(offset) + name.encode() + extra)
    directory_offset = len(out)
    out += central
    if zip64_count is not None:
        end64 = len(out)
        out += (le32(0x06064B50) + le64(44) + le16(45) * 2 + le32(0) * 2 + le64(zip64_count) * 2
                + le64(len(central)) + le64(directory_offset))
        out += le32(0x07064B50) + le32(0) + le64(end64) + le32(1)
        out += le32(0x06054B50) + le16(0) * 2 + le16(0xFFFF) * 2 + le32(0xFFFFFFFF) * 2 + le16(0)
    else:
        out += (le32(0x06054B50) + le16(0) * 2 + le16(len(records)) * 2 + le32(len(central)) + le32(directory_offset)
                + le16(0))
    return out


def binunicode(s):
    return b"X" + le32(len(s.encode())) + s.encode()


def tensor_pickle(numel=4, shape=(2, 2), stride=(2, 1), view=None):
    """{'t': _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel[, view]), 0, shape, stride, False,
    OrderedDict())} at protocol 2; `view` (bytes of one pickled value) makes the 6-field legacy persistent id."""
    def bin_int(v): return b"\x8a\x08" + le64(v) if v >= 1 << 31 else b"J" + le32(v)
    p = b"\x80\x02}" + binunicode("t") + b"ctorch._utils\n_rebuild_tensor_v2\n("
    p += b"(" + binunicode("storage") + b"ctorch\nFloatStorage\n" + binunicode("0") + binunicode("cpu") + bin_int(numel)
    p += (view if view is not None else b"") + b"tQ"
    p += b"J" + le32(0) + b"(" + b"".join(bin_int(v) for v in shape) + b"t(" + b"".join(bin_int(v) for v in stride) + b"t"
    p += b"\x89ccollections\nOrderedDict\n)R" + b"tRs."
    return p


def torch_zip(pickle, **overrides):
    return zip_archive([("archive/data.pkl", pickle), ("archive/data/0", FOUR_FLOATS),
                        ("archive/byteorder", b"little"), ("archive/version", b"3\n")], **overrides)


def pickle_with(opcode, length_bytes):
    """A pickle that declares a huge operand, inside an otherwise valid checkpoint dict."""
    return b"\x80\x04}" + binunicode("k") + opcode + length_bytes + b"s."


def zip_cases():
    write("base.ckpt", torch_zip(tensor_pickle()), "pytorch", None, what="valid: one F32 [2, 2] tensor")
    write("zip_entry_size_zip64.ckpt", torch_zip(tensor_pickle(), central_sizes={1: TB}), "pytorch",
          f"data ({TB} bytes at", TB,
          "the storage record's central-directory size 0xFFFFFFFF with a zip64 extra field of 2^40")
    write("zip_entry_count_zip64.ckpt", torch_zip(tensor_pickle(), zip64_count=TB), "pytorch",
          f"{TB} entries cannot fit in a", TB * 46, "a zip64 end record declaring 2^40 entries")
    archive = bytearray(torch_zip(tensor_pickle()))
    archive[-10:-6] = le32(0xFFFFFFF0)  # end record: central directory size
    write("zip_directory_size.ckpt", bytes(archive), "pytorch", "central directory (4294967280 bytes", 0xFFFFFFF0,
          "an end record declaring a 4 GiB central directory")
    write("zip_local_name.ckpt", torch_zip(tensor_pickle(), local_names={1: "archive/data/1"}), "pytorch",
          "local header names 'archive/data/1', the central directory 'archive/data/0'", None,
          "a local header naming another record than the central directory does")
    write("zip_local_size.ckpt", torch_zip(tensor_pickle(), local_sizes={1: TB}), "pytorch",
          f"local header sizes {TB} and {TB} (compressed) differ from the central directory's 16 and 16", TB,
          "a local header (zip64 extra field) declaring 2^40 bytes where the central directory says 16")
    write("zip_storage_2e40.ckpt", torch_zip(tensor_pickle(numel=TB)), "pytorch",
          f"storage '0': declares {TB} elements of 4 bytes but its record holds 16 bytes", 4 * TB,
          "a storage of 2^40 elements")
    write("zip_view_terabytes.ckpt", torch_zip(tensor_pickle(shape=(1 << 20, 1 << 20), stride=(0, 0))), "pytorch",
          "repeats its storage into 4398046511104 bytes", 4 * TB, "a [2^20, 2^20] view of stride 0 (expand)")
    write("zip_view_past_storage.ckpt", torch_zip(tensor_pickle(shape=(1 << 20, 1 << 20), stride=(1 << 20, 1))),
          "pytorch", "reaches past the end of storage '0' (4 elements)", 4 * TB,
          "a contiguous [2^20, 2^20] tensor on a 4-element storage")
    for opcode, name, length, declared in [(b"\x8d", "BINUNICODE8", le64(1 << 62), 1 << 62),
                                           (b"\x8e", "BINBYTES8", le64(TB), TB),
                                           (b"\x96", "BYTEARRAY8", le64(1 << 63), 1 << 63),
                                           (b"\x8b", "LONG4", le32(0x7FFFFFFF), 0x7FFFFFFF),
                                           (b"\x95", "FRAME", le64(TB), TB)]:
        write(f"pickle_{name.lower()}.ckpt", torch_zip(pickle_with(opcode, length)), "pytorch",
              f"{name} needs {declared} bytes but only", declared, f"a pickle {name} declaring {declared} bytes")
    # NONE then TUPLE1 repeatedly: each tuple wraps the last. (Before the fix, each kept the stack's buffer alive:
    # 4 KB per byte of pickle.)
    write("pickle_tuple_chain.ckpt", torch_zip(b"\x80\x02N" + b"\x85" * 65_536 + b"."), "pytorch",
          "nesting deeper than 100 levels", None, "65,536 nested one-element tuples")
    state = torch.load(os.path.join(OUT, "base.ckpt"), weights_only=True)
    assert state["t"].tolist() == [[1, 2], [3, 4]]


# ---------------------------------------------------------------- PyTorch legacy

def legacy(object_pickle, count, data):
    magic = b"\x80\x02\x8a\x0a" + bytes([0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]) + b"."
    out = magic + b"\x80\x02M" + le16(1001) + b"."
    out += b"\x80\x02}" + binunicode("little_endian") + b"\x88s."
    out += object_pickle + b"\x80\x02](" + binunicode("0") + b"e."
    return out + le64(count) + data


def legacy_cases():
    write("base_legacy.ckpt", legacy(tensor_pickle(view=b"N"), 4, FOUR_FLOATS), "pytorch", None,
          what="valid: one F32 [2, 2] tensor, legacy format")
    write("legacy_storage_2e40.ckpt", legacy(tensor_pickle(numel=TB, view=b"N"), TB, FOUR_FLOATS), "pytorch",
          f"storage '0' ({TB} elements of 4 bytes) runs past the end of the file", 4 * TB,
          "a legacy storage of 2^40 elements, its count field agreeing")
    write("legacy_count_2e40.ckpt", legacy(tensor_pickle(view=b"N"), TB, FOUR_FLOATS), "pytorch",
          f"holds {TB} elements but is referenced with 4", 4 * TB, "a legacy storage count field of 2^40")
    write("legacy_binbytes8.ckpt", legacy(pickle_with(b"\x8e", le64(TB)), 4, FOUR_FLOATS), "pytorch",
          f"BINBYTES8 needs {TB} bytes but only", TB, "a BINBYTES8 of 2^40 bytes in the object pickle")
    state = torch.load(os.path.join(OUT, "base_legacy.ckpt"), weights_only=True)
    assert state["t"].tolist() == [[1, 2], [3, 4]]


# ---------------------------------------------------------------- .bfq

BFQ_MAGIC = b"\x89BFQ\r\n\x1a\n"


def bfq(sections, tensors, time_features=None, edit_header=None, edit_table=None, major=1, minor=1, flags=0):
    """A .bfq of `sections` [(stored, decoded_size, decoded_crc, compression)] and manifest `tensors`; the edit
    functions may change header fields (a dict) or table entries (a list of dicts) before they are written."""
    body = b"\0" * 128
    entries = []
    for stored, decoded_size, decoded_crc, compression in sections:
        body += b"\0" * (-len(body) % 64)
        entries.append({"offset": len(body), "stored": len(stored), "decoded": decoded_size,
                        "stored_crc": zlib.crc32(stored), "decoded_crc": decoded_crc, "compression": compression})
        body += stored
    body += b"\0" * (-len(body) % 64)
    if edit_table:
        edit_table(entries)
    table = b"".join(le64(e["offset"]) + le64(e["stored"]) + le64(e["decoded"]) + le32(e["stored_crc"])
                     + le32(e["decoded_crc"]) + bytes([e["compression"]]) + b"\0" * 7 for e in entries)
    manifest_json = {"format": "bfq", "tool": "oversized_cases.py", "tensors": tensors}
    if time_features:
        manifest_json["time_features"] = time_features
    text = json.dumps(manifest_json, separators=(",", ":")).encode()
    fields = {"table_offset": len(body), "section_count": len(entries), "manifest_offset": len(body) + len(table),
              "manifest_size": len(text), "file_size": len(body) + len(table) + len(text)}
    if edit_header:
        edit_header(fields)
    head = BFQ_MAGIC + le16(major) + le16(minor) + le32(flags)
    head += b"".join(le64(fields[k]) for k in ("table_offset", "section_count", "manifest_offset", "manifest_size",
                                               "file_size"))
    head += le32(zlib.crc32(table)) + le32(zlib.crc32(text))
    head += le32(zlib.crc32(head)) + b"\0" * 60
    return head + body[128:] + table + text


def ref(index, section):
    stored, decoded_size, decoded_crc, _ = section
    return {"index": index, "stored_size": len(stored), "decoded_size": decoded_size, "crc32": decoded_crc}


def raw_tensor(name, shape, section, index=0):
    return {"name": name, "shape": shape, "dtype": "F32", "encoding": "raw", "raw_dtype": "F32",
            "sections": {"data": ref(index, section)}}


ZEROS = bytes(4096)
ZEROS_CRC = zlib.crc32(ZEROS)


def zstd_frame(size, content_size=True):
    """A zstd frame of `size` zero bytes, streamed so the script never holds them."""
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=content_size, write_checksum=False)
    chunk = bytes(min(size, 1 << 20))
    stream = compressor.compressobj(size=size if content_size else -1)
    out = b"".join(stream.compress(chunk) for _ in range(size // len(chunk)))
    return out + stream.flush()


def bfq_cases():
    section = (zstd_frame(4096), 4096, ZEROS_CRC, 1)
    base = bfq([section], [raw_tensor("t", [32, 32], section)])
    write("base.bfq", base, "bfq", None, what="valid: one F32 [32, 32] tensor of zeros, zstd-compressed")

    def table(field, value):
        return lambda entries: entries[0].__setitem__(field, value)

    def header(field, value):
        return lambda fields: fields.__setitem__(field, value)

    write("bfq_section_stored_2e40.bfq", bfq([section], [raw_tensor("t", [32, 32], section)],
                                             edit_table=table("stored", TB)),
          "bfq", f"section 0: bytes 128+{TB} run past the section table", TB, "a section table entry storing 2^40 bytes")
    write("bfq_section_decoded_2e40.bfq", bfq([section], [raw_tensor("t", [32, 32], section)],
                                              edit_table=table("decoded", TB)),
          "bfq", f"decoded_size {TB} exceeds 4 GiB", TB, "a section decoding to 2^40 bytes")
    ratio = len(section[0]) * 65_536 + 64
    write("bfq_section_ratio.bfq", bfq([section], [raw_tensor("t", [32, 32], section)],
                                       edit_table=table("decoded", ratio)),
          "bfq", "exceeds 65,536 x stored_size", None, "a section decoding to more than 65,536 times its stored size")
    big = (section[0], TB, ZEROS_CRC, 1)
    write("bfq_elements_2e40.bfq", bfq([section], [raw_tensor("t", [1 << 20, 1 << 20], big)]),
          "bfq", "shape [1048576, 1048576] has a dimension or more than 2^30 elements", 4 * TB,
          "a tensor of 2^40 elements")
    write("bfq_manifest_2e40.bfq", bfq([section], [raw_tensor("t", [32, 32], section)],
                                       edit_header=header("manifest_size", TB)),
          "bfq", f"manifest_size {TB} exceeds 67108864", TB, "a header declaring a 2^40-byte manifest")
    write("bfq_section_count_2e40.bfq", bfq([section], [raw_tensor("t", [32, 32], section)],
                                            edit_header=header("section_count", TB)),
          "bfq", f"section_count {TB} exceeds 1048576", TB * 40, "a header declaring 2^40 sections")
    features = {"timesteps": [1, 2], "layers": [{"name": "a", "width": TB}], "sections": {"features": ref(0, section)}}
    write("bfq_time_features_wide.bfq", bfq([section], [], time_features=features),
          "bfq", "layer a is wider than 2^30", TB * 4, "a time-feature layer 2^40 wide")
    # Decompression bombs: 1 GiB of zeros in about 32 KB, in a section declaring 4096 decoded bytes.
    bomb = zstd_frame(1 << 30)
    for name, frame, error, what in [
        ("bomb_content_size.bfq", bomb, "zstd frame has 1073741824 bytes of content where 4096 bytes are expected",
         "a frame whose header declares 1 GiB"),
        ("bomb_no_content_size.bfq", zstd_frame(1 << 30, content_size=False),
         "zstd frame has no content where 4096 bytes are expected", "a frame of 1 GiB declaring no content size"),
        ("bomb_lying_content_size.bfq", lie_about_content_size(bomb, 4096), "zstd:",
         "a frame of 1 GiB whose header claims 4096 bytes"),
    ]:
        lying = (frame, 4096, ZEROS_CRC, 1)
        write(name, bfq([lying], [raw_tensor("t", [32, 32], lying)]), "bfq", error, 1 << 30, what, opens=True)
    # Valid, for the memory measurement's control: 2 KB that decode to 64 MiB of f32 (a 4096 x 4096 grid of one
    # level, zero codes compressing about 30,000 times).
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import bfq as reader
    packed = bytes(4096 * reader.row_bytes(2, 4096))
    codes = (zstd_frame_of(packed), len(packed), zlib.crc32(packed), 1)
    scales = (zstd_frame_of(bytes(4096 * 2)), 4096 * 2, zlib.crc32(bytes(4096 * 2)), 1)
    tensor = {"name": "w", "shape": [4096, 4096], "dtype": "F32", "encoding": "grid", "levels": 2, "grid": "plain",
              "scale_dtype": "F16", "sections": {"codes": ref(0, codes), "scales": ref(1, scales)}}
    write("expanding.bfq", bfq([codes, scales], [tensor]), "bfq", None, 64 << 20,
          "valid: a [4096, 4096] grid of 2 levels, all codes 0, decoding to 64 MiB of f32")
    assert reader.load(os.path.join(OUT, "base.bfq"))["t"].shape == (32, 32)
    assert not reader.load(os.path.join(OUT, "expanding.bfq"))["w"].any()


def zstd_frame_of(data):
    return zstandard.ZstdCompressor(level=19, write_content_size=True, write_checksum=False).compress(data)


def lie_about_content_size(frame, size):
    """The frame with its Frame_Content_Size field (4 bytes here) rewritten to `size`."""
    descriptor = frame[4]
    assert descriptor >> 6 == 2 and not descriptor & 0x20 and not descriptor & 3, hex(descriptor)  # FCS 4 bytes, window byte
    return frame[:6] + le32(size) + frame[10:]


# ---------------------------------------------------------------- GGUF

def gguf_string(text):
    data = text.encode()
    return le64(len(data)) + data


def gguf(kvs=b"", kv_count=0, tensors=((b"t", 2, (2, 2), 0, 0),), tensor_count=None, data=FOUR_FLOATS):
    """A GGUF v3 file: `kvs` raw key/value records, tensor infos (name, n_dims, dims, type, offset), data at 32."""
    infos = b"".join(le64(len(name)) + name + le32(rank) + b"".join(le64(d) for d in dims) + le32(kind) + le64(offset)
                     for name, rank, dims, kind, offset in tensors)
    head = b"GGUF" + le32(3) + le64(len(tensors) if tensor_count is None else tensor_count) + le64(kv_count) + kvs + infos
    return head + b"\0" * (-len(head) % 32) + data


def gguf_cases():
    import gguf as gguf_py
    write("base.gguf", gguf(), "gguf", None, what="valid: one F32 [2, 2] tensor")
    reader = gguf_py.GGUFReader(os.path.join(OUT, "base.gguf"))
    assert reader.tensors[0].data.tolist() == [[1, 2], [3, 4]], reader.tensors[0].data
    write("gguf_tensor_count_2e40.gguf", gguf(tensor_count=TB), "gguf",
          "tensor_count at byte 8: declares 1099511627776, but the", TB * 24, "tensor_count 2^40")
    write("gguf_kv_count_2e40.gguf", gguf(kv_count=TB), "gguf",
          "metadata_kv_count at byte 16: declares 1099511627776, but the", TB * 13, "metadata_kv_count 2^40")
    write("gguf_key_length_2e40.gguf", gguf(le64(TB) + b"general.name" + le32(4) + le32(1), 1), "gguf",
          "metadata key at byte 24: is 1099511627776 bytes long; the limit is 65535", TB, "a key's length 2^40")
    write("gguf_string_2e40.gguf", gguf(gguf_string("general.name") + le32(8) + le64(TB) + b"x", 1), "gguf",
          "general.name at byte 48: declares 1099511627776 bytes but the file ends", TB, "a string value's length 2^40")
    write("gguf_array_2e40.gguf", gguf(gguf_string("a.list") + le32(9) + le32(6) + le64(TB) + FOUR_FLOATS, 1), "gguf",
          "element count of a.list at byte 46: declares 1099511627776, but the", 4 * TB, "an F32 array of 2^40 elements")
    write("gguf_string_array_2e40.gguf", gguf(gguf_string("a.words") + le32(9) + le32(8) + le64(TB) + gguf_string("w"), 1),
          "gguf", "element count of a.words at byte 47: declares 1099511627776, but the", 8 * TB,
          "a string array of 2^40 elements")
    write("gguf_dims_terabytes.gguf", gguf(tensors=((b"t", 2, (1 << 20, 1 << 20), 0, 0),)), "gguf",
          "GGUF tensor t: its 4398046511104 bytes at data offset 0 run past the end of the 16-byte data section", 4 * TB,
          "an F32 tensor [2^20, 2^20] with 16 bytes of data")
    write("gguf_dims_overflow.gguf", gguf(tensors=((b"t", 3, (1 << 31, 1 << 31, 1 << 31), 0, 0),)), "gguf",
          "GGUF tensor t: its element count overflows", None, "dimensions 2^31 x 2^31 x 2^31")
    write("gguf_offset_2e40.gguf", gguf(tensors=((b"t", 2, (2, 2), 0, TB),)), "gguf",
          "GGUF tensor t: its 16 bytes at data offset 1099511627776 run past the end", None, "a tensor at data offset 2^40")


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name != "README.md":
            os.remove(os.path.join(OUT, name))
    safetensors_cases()
    gguf_cases()
    zip_cases()
    legacy_cases()
    bfq_cases()
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"{len(manifest)} files, {total} bytes in {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
