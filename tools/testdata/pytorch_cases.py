#!/usr/bin/env python3
"""Writes the PyTorch reader fixtures into testdata/pytorch/ (see testdata/pytorch/README.md).

Each checkpoint is written by real torch.save; the values the reader must produce are written next to it as a
contiguous .safetensors by real safetensors, and manifest.json lists, per file, the tensor names in pickle order,
the metadata strings, warning fragments, the global a hostile file must be refused for, or the error a file
torch writes but bfq refuses must give.
Run from the repository root: python3 tools/testdata/pytorch_cases.py
"""
import argparse
import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "pytorch")
torch.manual_seed(1234)
manifest = []


def rand(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


def flatten(obj, prefix, tensors, metadata):
    """Reference for the reader's naming rules (state_dict unwrapping is done by the caller)."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, (str, int)):
                key = str(k) if not isinstance(k, bool) else ("True" if k else "False")
                flatten(v, f"{prefix}.{key}" if prefix else key, tensors, metadata)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}.{i}" if prefix else str(i), tensors, metadata)
    elif isinstance(obj, bool):
        metadata[prefix] = "True" if obj else "False"
    elif isinstance(obj, int):
        metadata[prefix] = str(obj)
    elif isinstance(obj, float):
        metadata[prefix] = repr(obj)
    elif isinstance(obj, str):
        metadata[prefix] = obj


def case(name, obj, tensors, metadata=None, warnings=(), fmt="pytorch-zip", **save_args):
    """Saves obj as name.ckpt; expected tensors (in pickle order) go to name.safetensors."""
    path = os.path.join(OUT, name + ".ckpt")
    torch.save(obj, path, **save_args)
    finish(name, path, tensors, metadata or {}, warnings, fmt)


def finish(name, path, tensors, metadata, warnings, fmt):
    expected = {k: v.detach().clone().contiguous() for k, v in tensors.items()}
    save_file(expected, os.path.join(OUT, name + ".safetensors"), metadata=metadata or None)
    manifest.append({"file": os.path.basename(path), "expected": name + ".safetensors", "format": fmt,
                     "order": list(tensors.keys()), "metadata": metadata, "warnings": list(warnings)})


def framed(body):
    """A protocol 4 pickle: PROTO 4, then one FRAME holding body."""
    return b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body


def unet_like():
    return collections.OrderedDict([
        ("model.diffusion_model.input_blocks.0.0.weight", rand(8, 4, 3, 3)),
        ("model.diffusion_model.input_blocks.0.0.bias", rand(8)),
        ("first_stage_model.encoder.conv_in.weight", rand(4, 3, 3, 3, dtype=torch.float16)),
        ("cond_stage_model.transformer.text_model.embeddings.position_ids", torch.arange(7).unsqueeze(0)),
        ("betas", torch.linspace(0.00085, 0.012, 10, dtype=torch.float64)),
    ])


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith((".ckpt", ".safetensors", ".json")):
            os.remove(os.path.join(OUT, f))

    # 1. The SD layout: state_dict wrapper plus global_step and epoch.
    sd = unet_like()
    case("sd_wrapper", {"state_dict": sd, "global_step": 470000, "epoch": 6}, sd,
         {"global_step": "470000", "epoch": "6"})

    # 2. Nested wrapper {"state_dict": {"state_dict": ...}} and pickle protocol 4.
    small = collections.OrderedDict([("a.weight", rand(3, 2)), ("a.bias", rand(3))])
    case("double_wrapper_p4", {"state_dict": {"state_dict": small}, "step": 7}, small, {"step": "7"},
         pickle_protocol=4)

    # 3. Lightning-style: callback object of an unknown class, Namespace, numpy scalar, optimizer states.
    for mod in ["pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"]:
        sys.modules[mod] = types.ModuleType(mod)

    class ModelCheckpoint:
        def __init__(self):
            self.monitor = "val/loss"
            self.best_model_score = torch.tensor(0.25)
    ModelCheckpoint.__module__ = "pytorch_lightning.callbacks.model_checkpoint"
    ModelCheckpoint.__qualname__ = "ModelCheckpoint"
    sys.modules["pytorch_lightning.callbacks.model_checkpoint"].ModelCheckpoint = ModelCheckpoint
    lightning = {
        "epoch": 3, "global_step": 1234, "pytorch-lightning_version": "1.9.0",
        "state_dict": small,
        "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(0.5)}},
        "checkpoint_callback": ModelCheckpoint(),
        "optimizer_states": [{"state": {0: {"exp_avg": rand(3, 2)}}, "param_groups": [{"lr": 1e-4, "amsgrad": False}]}],
        "hparams": argparse.Namespace(lr=1e-4),
        "np_scalar": np.float64(0.5),
        "nothing": None,
        "ratio": 9999999999999998.0,
    }
    meta = {"epoch": "3", "global_step": "1234", "pytorch-lightning_version": "1.9.0",
            "optimizer_states.0.param_groups.0.lr": "0.0001", "optimizer_states.0.param_groups.0.amsgrad": "False",
            "ratio": "9999999999999998.0"}
    case("lightning", lightning, small, meta, warnings=[
        "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint", "argparse.Namespace",
        "skipped 1 tensor(s) outside state_dict", "whose key is not a str or int"])

    # 4. Every dtype, 0-d and empty tensors.
    dtypes = collections.OrderedDict([
        ("f32", rand(2, 3)), ("f16", rand(5, dtype=torch.float16)), ("bf16", rand(2, 2, dtype=torch.bfloat16)),
        ("f64", rand(3, dtype=torch.float64)), ("i64", torch.tensor([-(2 ** 40), 0, 2 ** 40])),
        ("i32", torch.tensor([-7, 8], dtype=torch.int32)), ("i16", torch.tensor([-300, 300], dtype=torch.int16)),
        ("i8", torch.tensor([-128, 127], dtype=torch.int8)), ("u8", torch.tensor([0, 255], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True])),
        ("scalar", torch.tensor(3.5)), ("empty", torch.zeros(0, 3)), ("empty_i64", torch.zeros(0, dtype=torch.int64)),
    ])
    case("dtypes", dtypes, dtypes)
    f8 = collections.OrderedDict([("e4m3", rand(4).to(torch.float8_e4m3fn)), ("e5m2", rand(2, 2).to(torch.float8_e5m2)),
                                  ("after", rand(2))])
    case("float8", f8, f8)

    # 5. Views sharing one storage: transposes, slices, offsets, broadcast (stride 0), parameters.
    base = torch.arange(24, dtype=torch.float32).view(4, 6)
    views = collections.OrderedDict([
        ("base", base), ("transposed", base.t()), ("slice", base[1:3, 2:5]), ("row", base[2]),
        ("column", base[:, 1]), ("strided", base[::2, ::3]), ("flat_tail", base.view(24)[17:]),
        ("broadcast", torch.arange(3, dtype=torch.float32).expand(4, 3)),
        ("param", torch.nn.Parameter(rand(2, 2))),
    ])
    stateful = torch.nn.Parameter(rand(3))
    stateful.note = "extra attribute"  # saved through _rebuild_parameter_with_state
    views["param_with_state"] = stateful
    case("views", views, views)

    # 6. Legacy (pre-1.6) format with views, dtypes and a wrapper.
    legacy_sd = collections.OrderedDict([
        ("w", rand(3, 4)), ("w_t", None), ("half", rand(4, dtype=torch.float16)),
        ("ids", torch.arange(5)), ("flag", torch.tensor([True, False])), ("scalar", torch.tensor(2.0)),
    ])
    legacy_sd["w_t"] = legacy_sd["w"].t()
    legacy_sd["w_slice"] = legacy_sd["w"][1:, 2:]
    case("legacy", {"state_dict": legacy_sd, "global_step": 12}, legacy_sd, {"global_step": "12"},
         fmt="pytorch-legacy", _use_new_zipfile_serialization=False)
    case("legacy_p4", small, small, fmt="pytorch-legacy", _use_new_zipfile_serialization=False, pickle_protocol=4)

    # 7. Nested dicts and lists, no wrapper.
    nested = {"unet": {"conv": {"weight": rand(2, 1, 1, 1), "bias": rand(2)}},
              "vae": {"blocks": [rand(2), rand(1)]}, "info": {"step": 5, "name": "tiny", "lr": 0.5, "ok": True}}
    tensors, metadata = {}, {}
    flatten(nested, "", tensors, metadata)
    case("nested", nested, tensors, metadata)

    # 8. Root folders: "archive" (saved to a buffer) and an arbitrary name (saved under another file name).
    buffer = io.BytesIO()
    torch.save(small, buffer)
    with open(os.path.join(OUT, "archive_root.ckpt"), "wb") as f:
        f.write(buffer.getvalue())
    finish("archive_root", os.path.join(OUT, "archive_root.ckpt"), small, {}, [], "pytorch-zip")
    other = os.path.join(OUT, "some-other.root.ckpt")
    torch.save(small, other)
    os.replace(other, os.path.join(OUT, "custom_root.ckpt"))
    finish("custom_root", os.path.join(OUT, "custom_root.ckpt"), small, {}, [], "pytorch-zip")

    # 9. Hostile pickles, each in a zip and as a bare legacy file.
    class Exec:
        def __reduce__(self):
            return (exec, ("print('pwned')",))
    hostile = {
        "os_system_global": (b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.", "os.system"),
        "os_system_stack_global": (framed(b"\x8c\x02os\x94\x8c\x06system\x94\x93\x8c\x02id\x85R."), "os.system"),
        "builtins_eval": (b"\x80\x02cbuiltins\neval\nX\x06\x00\x00\x001+1+1\x85R.", "builtins.eval"),
        "subprocess_popen": (b"\x80\x02csubprocess\nPopen\n]X\x02\x00\x00\x00id\x85\x85R.", "subprocess.Popen"),
        "posix_system": (b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.", "posix.system"),
        "functools_partial": (b"\x80\x02cfunctools\npartial\ncbuiltins\nset\n\x85R.", "functools.partial"),
        "reduce_exec": (pickle.dumps({"state_dict": {}, "x": Exec()}, protocol=4), "builtins.exec"),
        "reduce_exec_p2": (pickle.dumps({"state_dict": {}, "x": Exec()}, protocol=2), "__builtin__.exec"),
    }
    for name, (payload, glob) in hostile.items():
        path = os.path.join(OUT, f"hostile_{name}.ckpt")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", payload)
            z.writestr("archive/byteorder", "little")
            z.writestr("archive/version", "3\n")
        manifest.append({"file": os.path.basename(path), "forbidden": glob})
        path = os.path.join(OUT, f"hostile_{name}_legacy.ckpt")
        with open(path, "wb") as f:
            for head in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
                pickle.dump(head, f, protocol=2)
            f.write(payload)
        manifest.append({"file": os.path.basename(path), "forbidden": glob})

    # 10. Objects torch writes that bfq refuses, with the message after "<path>: " (`error`).
    refused = {
        "quantized": ({"q": torch.quantize_per_tensor(rand(4), 0.1, 0, torch.qint8), "d": rand(2)},
                      "tensor 'q': quantized tensors (torch._utils._rebuild_qtensor) are not supported"),
        "sparse": ({"d": rand(2), "sp": rand(3, 3).to_sparse()},
                   "tensor 'sp': sparse tensors (torch._utils._rebuild_sparse_tensor) are not supported"),
        "meta": ({"m": torch.empty(2, 3, device="meta")},
                 "tensor 'm': meta tensors (torch._utils._rebuild_meta_tensor_no_storage) are not supported"),
        "module_whole": (torch.nn.Linear(2, 1),
                         "top-level object is an object built by 'torch.nn.modules.linear.Linear', not a dict of "
                         "tensors; for a whole nn.Module, save model.state_dict() instead"),
    }
    for name, (obj, error) in refused.items():
        torch.save(obj, os.path.join(OUT, f"refused_{name}.ckpt"))
        manifest.append({"file": f"refused_{name}.ckpt", "error": error})

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(manifest)} cases, {total} bytes, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
