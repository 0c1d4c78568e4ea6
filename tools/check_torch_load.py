#!/usr/bin/env python3
"""Opens a checkpoint with real torch.load(weights_only=True) and compares it with expected values.

usage: tools/check_torch_load.py FILE.ckpt [EXPECTED.safetensors]

Without EXPECTED, only checks that torch loads the file and lists its tensors. With EXPECTED, every tensor must
match by name, dtype, shape and bytes (compared as raw bytes, so NaNs and -0.0 count), no tensor may be missing
or extra, and every `__metadata__` entry of EXPECTED must be a str value of the same key in the checkpoint.
A `state_dict` wrapper is unwrapped. Exits 1 on any mismatch, 2 if torch cannot load the file.
"""
import sys

import torch


def flatten(obj, prefix, tensors, others):
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            flatten(value, f"{prefix}.{key}" if prefix else str(key), tensors, others)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            flatten(value, f"{prefix}.{i}" if prefix else str(i), tensors, others)
    else:
        others[prefix] = obj


def raw(tensor):
    t = tensor.detach().contiguous().cpu()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 64
    try:
        loaded = torch.load(sys.argv[1], weights_only=True, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - report any load failure
        print(f"{sys.argv[1]}: torch.load(weights_only=True) failed: {error}", file=sys.stderr)
        return 2
    while isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    tensors, others = {}, {}
    flatten(loaded, "", tensors, others)
    if len(sys.argv) == 2:
        for name, t in tensors.items():
            print(f"{name}\t{str(t.dtype).replace('torch.', '')}\t{list(t.shape)}")
        return 0

    from safetensors import safe_open
    failures = []
    with safe_open(sys.argv[2], framework="pt") as f:
        expected_names = set(f.keys())
        for name in sorted(expected_names):
            want = f.get_tensor(name)
            got = tensors.get(name)
            if got is None:
                failures.append(f"{name}: missing")
            elif got.dtype != want.dtype:
                failures.append(f"{name}: dtype {got.dtype}, expected {want.dtype}")
            elif tuple(got.shape) != tuple(want.shape):
                failures.append(f"{name}: shape {tuple(got.shape)}, expected {tuple(want.shape)}")
            elif raw(got) != raw(want):
                failures.append(f"{name}: values differ")
        for name in sorted(set(tensors) - expected_names):
            failures.append(f"{name}: not expected")
        for key, value in (f.metadata() or {}).items():
            if others.get(key) != value:
                failures.append(f"metadata {key}: {others.get(key)!r}, expected {value!r}")
    for line in failures:
        print(f"{sys.argv[1]}: {line}", file=sys.stderr)
    print(f"{sys.argv[1]}: {len(tensors)} tensors checked, {len(failures)} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
