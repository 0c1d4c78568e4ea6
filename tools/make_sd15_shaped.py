#!/usr/bin/env python3
"""Generates the SD-v1.5-shaped UNet used by the benchmarks (never committed): the real 686 names and shapes of
../shared/data/sd15_unet_shapes.ldm.json (859,520,964 parameters) filled with seeded heavy-tailed values whose
scale varies per output channel, as trained weights do. Writes, into the folder given (default bench/):

    sd15_shaped.fp16.safetensors   1.72 GB, safetensors written by the safetensors library
    sd15_shaped.fp32.ckpt          3.44 GB, torch.save of {"state_dict": ..., "global_step": 0}

    python3 tools/make_sd15_shaped.py [OUT_DIR]
"""
import json
import pathlib
import sys

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHAPES = ROOT.parent / "shared" / "data" / "sd15_unet_shapes.ldm.json"
if not SHAPES.exists():
    SHAPES = ROOT / "testdata" / "unet" / "sd15_unet_shapes.ldm.json"


def values(rng, name, shape):
    n = int(np.prod(shape))
    if len(shape) == 1:
        if name.endswith("weight") and ("norm" in name or "in_layers.0" in name or "out_layers.0" in name or "out.0" in name):
            return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32).reshape(shape)
        return (0.02 * rng.standard_normal(n)).astype(np.float32).reshape(shape)
    fan_in = n // shape[0]
    channel_scale = rng.lognormal(mean=0.0, sigma=0.5, size=(shape[0],) + (1,) * (len(shape) - 1))
    w = rng.standard_t(df=4, size=shape).astype(np.float32)
    return (w * (channel_scale / np.sqrt(fan_in)).astype(np.float32)).astype(np.float32)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "bench")
    out.mkdir(parents=True, exist_ok=True)
    shapes = json.loads(SHAPES.read_text())
    rng = np.random.default_rng(20240606)
    tensors = {}
    total = 0
    for name, shape in shapes:
        tensors[name] = torch.from_numpy(values(rng, name, shape))
        total += tensors[name].numel()
    assert len(tensors) == 686 and total == 859_520_964, (len(tensors), total)
    torch.save({"state_dict": tensors, "global_step": 0}, out / "sd15_shaped.fp32.ckpt")
    save_file({k: v.half() for k, v in tensors.items()}, out / "sd15_shaped.fp16.safetensors")
    print(f"wrote {out}: 686 tensors, {total:,} parameters")


if __name__ == "__main__":
    main()
