#!/usr/bin/env python3
"""Makes testdata/gguf/: GGUF files written by the real producers, and what gguf-py reads from them.

- types.gguf: gguf-py's GGUFWriter (gguf 0.19.0), one tensor per ggml type gguf-py quantizes (F32, F16, BF16, Q8_0,
  Q4_0, Q4_1, Q5_0, Q5_1, TQ1_0, TQ2_0; blocks by `gguf.quants.quantize`), plus metadata of every GGUF value type.
  types.source.safetensors holds the f32 values that were quantized (expected: `bfq convert --type T` reproduces the
  blocks byte for byte).
- kquants.TYPE.gguf (TYPE in q2_K q3_K q4_K q5_K q6_K): stable-diffusion.cpp's `sd-cli -M convert --type TYPE` of
  kquants.source.safetensors (sd.cpp passes ggml an importance matrix of ones, so these are ggml's weighted
  quantizers' blocks).
- kquants.reference.gguf: the same weight as one tensor per K type (`q4_k.weight`, ...), blocks made by ggml's own
  `ggml_quantize_chunk` without an importance matrix (its reference quantizers, as llama-quantize runs them without
  --imatrix) through tools/testdata/ggml_quantize.c, built here against the sd-cli build's ggml; written by gguf-py.
- tiny_unet.comfy.gguf: the tiny SD UNet (testdata/unet) laid out as ComfyUI-GGUF's convert.py lays out SD1 files
  (prefix stripped, `general.architecture` sd1, weights flattened to rows of 256 with `comfy.gguf.orig_shape.NAME`,
  1-D tensors F32), 2-D weights quantized to Q8_0 by gguf-py as its patched llama-quantize would, conv_in, conv_out
  and time_embed kept F16.
- tiny_unet.sdcpp.q8_0.gguf: `sd-cli -M convert --type q8_0` of testdata/unet/tiny_unet.ldm.safetensors.
- expected.json: for every tensor of every file above, gguf-py's reading: type name, shape (PyTorch order, after
  ComfyUI's orig_shape), and the SHA-256 of `gguf.quants.dequantize` as little-endian f32 (F16/BF16 widened); for
  types.gguf and the K-quant files also the values themselves in expected.values.safetensors. And each file's metadata
  as gguf-py reads it.

    python3 tools/testdata/gguf_cases.py --sd-cli PATH/TO/sd-cli
"""
import argparse
import hashlib
import json
import pathlib
import subprocess
import tempfile

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from safetensors.numpy import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "gguf"
TINY = ROOT / "testdata" / "unet" / "tiny_unet.ldm.safetensors"
PY_TYPES = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.TQ1_0, T.TQ2_0]
K_TYPES = ["q2_K", "q3_K", "q4_K", "q5_K", "q6_K"]


def rows(rng, count, width):
    """Heavy-tailed rows of varied scale, and the blocks quantizers get wrong: zeros, a constant, one outlier,
    all negative, tiny values."""
    x = rng.standard_t(3.0, size=(count, width)).astype(np.float32) * np.exp(rng.normal(-3, 1, (count, 1))).astype(np.float32)
    x[1, :] = 0.0
    x[2, :] = 0.37
    x[3, 5] = 40.0
    x[4, :] = -np.abs(x[4, :])
    x[5, :] *= 1e-6
    return x


def dequantized(reader_tensor):
    data = gguf.quants.dequantize(reader_tensor.data, reader_tensor.tensor_type)
    return np.ascontiguousarray(data.astype(np.float32))


def describe(path, values=None):
    reader = gguf.GGUFReader(path)
    metadata = {}
    for field in reader.fields.values():
        if field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            sub = field.types[-1]
            items = [field.parts[i] for i in field.data]
            if sub == gguf.GGUFValueType.STRING:
                value = [bytes(p).decode() for p in items]
            else:
                value = [p.tolist()[0] for p in items]
        elif kind == gguf.GGUFValueType.STRING:
            value = bytes(field.parts[-1]).decode()
        else:
            value = field.parts[-1].tolist()[0]
        metadata[field.name] = {"type": kind.name, "value": value}
    tensors = []
    for t in reader.tensors:
        data = dequantized(t)
        shape = [int(d) for d in reversed(t.shape.tolist())]
        orig = reader.fields.get("comfy.gguf.orig_shape." + t.name)
        if orig is not None:
            shape = [int(orig.parts[i][0]) for i in orig.data]
        tensors.append({"name": t.name, "type": t.tensor_type.name, "shape": shape,
                        "offset": int(t.data_offset), "sha256": hashlib.sha256(data.tobytes()).hexdigest()})
        if values is not None:
            values[f"{path.name}:{t.name}"] = data.reshape(shape)
    return {"alignment": int(reader.alignment), "metadata": metadata, "tensors": tensors}


def write_types(rng):
    source = {}
    writer = gguf.GGUFWriter(OUT / "types.gguf", "bfqtest")
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -100)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -30000)
    writer.add_uint32("test.u32", 4000000000)
    writer.add_int32("test.i32", -2000000000)
    writer.add_float32("test.f32", 0.1)
    writer.add_bool("test.bool", True)
    writer.add_string("test.string", "ünïcode ✓")
    writer.add_uint64("test.u64", 18000000000000000000)
    writer.add_int64("test.i64", -9000000000000000000)
    writer.add_float64("test.f64", -2.5e-300)
    writer.add_array("test.ints", [320, 4, 3, 3])
    writer.add_array("test.strings", ["a", "", "ß"])
    writer.add_array("test.floats", [0.5, -1.25])
    for qtype in PY_TYPES:
        width = 256 if qtype in (T.TQ1_0, T.TQ2_0) else 64
        x = rows(rng, 6, width)
        name = f"{qtype.name.lower()}.weight"
        source[name] = x
        if qtype == T.F32:
            writer.add_tensor(name, x)
        elif qtype == T.F16:
            writer.add_tensor(name, x.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    save_file(source, OUT / "types.source.safetensors")


def ggml_quantizer(sd_cli, work):
    """tools/testdata/ggml_quantize.c linked with the ggml that sd-cli was built with (BUILD/bin/sd-cli,
    BUILD/ggml/src/libggml-base.a, SOURCE/ggml/include with SOURCE the build folder's parent)."""
    build = pathlib.Path(sd_cli).resolve().parents[1]
    tool = pathlib.Path(work) / "ggml_quantize"
    subprocess.run(["g++", "-O2", "-x", "c", str(ROOT / "tools" / "testdata" / "ggml_quantize.c"), "-x", "none",
                    "-I", str(build.parent / "ggml" / "include"), str(build / "ggml" / "src" / "libggml-base.a"),
                    "-lm", "-lpthread", "-fopenmp", "-o", str(tool)], check=True)
    return tool


def write_kquants(rng, sd_cli):
    weight = rows(rng, 16, 512)
    source = {"model.diffusion_model.kq.weight": weight,
              "model.diffusion_model.kq.bias": rng.standard_normal(16).astype(np.float32)}
    save_file(source, OUT / "kquants.source.safetensors")
    for qtype in K_TYPES:
        out = OUT / f"kquants.{qtype}.gguf"
        subprocess.run([sd_cli, "-M", "convert", "-m", str(OUT / "kquants.source.safetensors"), "-o", str(out),
                        "--type", qtype], check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as work:
        tool = ggml_quantizer(sd_cli, work)
        writer = gguf.GGUFWriter(OUT / "kquants.reference.gguf", "bfqtest")
        for qtype in K_TYPES:
            blocks = subprocess.run([str(tool), qtype, "512"], input=weight.tobytes(), capture_output=True, check=True).stdout
            kind = T[qtype.upper()]
            data = np.frombuffer(blocks, dtype=np.uint8).reshape(weight.shape[0], -1)
            writer.add_tensor(f"{qtype.lower()}.weight", data, raw_dtype=kind)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()


def write_comfy_unet():
    tensors = load_file(TINY)
    writer = gguf.GGUFWriter(OUT / "tiny_unet.comfy.gguf", "sd1")
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    keep = ("time_embed.", "input_blocks.0.0.weight", "out.2.weight")
    for full, x in tensors.items():
        name = full.removeprefix("model.diffusion_model.")
        n = x.size
        shape = x.shape
        if x.ndim > 1 and n >= 512 and n % 256 == 0 and shape[-1] % 256 != 0:
            writer.add_array(f"comfy.gguf.orig_shape.{name}", list(shape))
            x = x.reshape(n // 256, 256)
        if x.ndim == 1:
            writer.add_tensor(name, x.astype(np.float32))
        elif x.ndim == 2 and x.shape[-1] % 32 == 0 and not any(k in name for k in keep):
            writer.add_tensor(name, gguf.quants.quantize(x, T.Q8_0), raw_dtype=T.Q8_0)
        else:
            writer.add_tensor(name, x.astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sd-cli", required=True, help="stable-diffusion.cpp's sd-cli (built from source)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261206)
    write_types(rng)
    write_kquants(rng, args.sd_cli)
    write_comfy_unet()
    subprocess.run([args.sd_cli, "-M", "convert", "-m", str(TINY), "-o", str(OUT / "tiny_unet.sdcpp.q8_0.gguf"),
                    "--type", "q8_0"], check=True, stdout=subprocess.DEVNULL)
    values = {}
    files = (["types.gguf", "kquants.reference.gguf"] + [f"kquants.{q}.gguf" for q in K_TYPES]
             + ["tiny_unet.comfy.gguf", "tiny_unet.sdcpp.q8_0.gguf"])
    expected = {}
    for name in files:
        keep = values if not name.startswith("tiny_unet") else None
        expected[name] = describe(OUT / name, keep)
    save_file(values, OUT / "expected.values.safetensors")
    (OUT / "expected.json").write_text(json.dumps(expected, sort_keys=True, separators=(",", ":")) + "\n")
    for name in files:
        print(f"{name}: {(OUT / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
