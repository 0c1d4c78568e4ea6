#!/usr/bin/env python3
"""GGUF files written by bfq, read by gguf-py (pip install gguf numpy): run by tools/test after the Swift tests.

For each type bfq writes and both layouts, `bfq convert` writes the tiny SD UNet (testdata/unet) and a file of
heavy-tailed rows (testdata/gguf/types.source.safetensors, rows of 64 and 256) as GGUF; gguf-py's GGUFReader must
open it, list every tensor with bfq's type and shape (ComfyUI layout: after comfy.gguf.orig_shape), and:
- blocks of the types gguf-py quantizes (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, TQ1_0, TQ2_0, BF16, F16) equal
  `gguf.quants.quantize` of the source values byte for byte;
- every tensor dequantized by `gguf.quants.dequantize` equals, bit for bit, what `bfq convert OUT.gguf x.safetensors`
  (bfq's own decoder, f32 for quantized tensors) gives back.

    python3 tools/test_gguf_interop.py BFQ_BINARY

Ends with "gguf interop: N passed, M failed"; exits 0 only when nothing failed.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import gguf
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
outcomes = []  # one bool per check


def record(ok, label, detail=""):
    outcomes.append(bool(ok))
    if not ok:
        print(f"FAIL {label}" + (f": {detail}" if detail else ""))


def safetensors(path):
    """name -> numpy array, read with numpy alone."""
    raw = open(path, "rb").read()
    length = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + length])
    out = {}
    kinds = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        data = np.frombuffer(raw[8 + length + begin:8 + length + end], dtype=kinds[entry["dtype"]])
        if entry["dtype"] == "BF16":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        out[name] = data.astype(np.float32).reshape(entry["shape"])
    return out


def check(bfq, source, layout, qtype, work):
    label = f"{os.path.basename(source)} {layout} {qtype}"
    out = os.path.join(work, "out.gguf")
    back = os.path.join(work, "back.safetensors")
    run = subprocess.run([bfq, "convert", source, out, "--type", qtype, "--layout", layout, "--no-fsync"],
                         capture_output=True, text=True)
    if run.returncode:
        record(False, label, run.stderr.strip())
        return
    subprocess.run([bfq, "convert", out, back, "--no-fsync"], check=True, capture_output=True)
    ours = safetensors(back)
    values = safetensors(source)
    reader = gguf.GGUFReader(out)
    record(len(reader.tensors) == len(ours), label, "tensor count")
    for tensor in reader.tensors:
        name = tensor.name
        shape = [int(d) for d in reversed(tensor.shape.tolist())]
        original = reader.fields.get("comfy.gguf.orig_shape." + name)
        if original is not None:
            shape = [int(original.parts[i][0]) for i in original.data]
        decoded = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32).reshape(shape)
        record(list(ours[name].shape) == shape, f"{label} {name}", f"shape {shape} vs bfq {list(ours[name].shape)}")
        same = decoded.tobytes() == ours[name].tobytes()
        record(same, f"{label} {name} ({tensor.tensor_type.name})", "gguf-py's dequantize differs from bfq's decoding")
        kind = tensor.tensor_type
        source_name = name if name in values else "model.diffusion_model." + name
        if kind in (gguf.GGMLQuantizationType.F32,) or source_name not in values:
            continue
        x = values[source_name].reshape(-1, int(tensor.shape[0]))
        try:
            expected = gguf.quants.quantize(x, kind)
        except NotImplementedError:
            continue  # K-quants: gguf-py cannot quantize them (tests compare them with ggml's own quantizer)
        record(expected.tobytes() == tensor.data.tobytes(), f"{label} {name} ({kind.name})",
               "blocks differ from gguf.quants.quantize")


def main():
    bfq = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        for qtype in ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k",
                      "q6_k", "tq1_0", "tq2_0"]:
            check(bfq, os.path.join(ROOT, "testdata/gguf/types.source.safetensors"), "sdcpp", qtype, work)
            for layout in ["sdcpp", "comfy"]:
                check(bfq, os.path.join(ROOT, "testdata/unet/tiny_unet.ldm.safetensors"), layout, qtype, work)
    failures = outcomes.count(False)
    print(f"gguf interop: {len(outcomes) - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
