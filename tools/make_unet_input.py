#!/usr/bin/env python3
"""Writes a seeded UNet input file (benchmarks, never committed): `sample` F32 [B,4,H,W], `timestep` F32 [B] and
`encoder_hidden_states` F32 [B,T,D], standard normal values drawn in that order from numpy's default_rng(seed).

    python3 tools/make_unet_input.py OUT.safetensors [--batch 1] [--size 64x64] [--tokens 77] [--width 768]
                                     [--timesteps 500[,981,...]] [--seed 0]

--size is the latent's HxW (SD at 512x512 pixels: 64x64); --width is the cross-attention width (SD-v1: 768,
SD-2: 1024); --timesteps gives one value per batch item, or one value for all. Needs numpy and safetensors only.
"""
import argparse

import numpy as np
from safetensors.numpy import save_file


def size(text):
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 64x64, got {text!r}")
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return height, width


def timesteps(text):
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main():
    parser = argparse.ArgumentParser(description="Write a seeded UNet input .safetensors file.")
    parser.add_argument("output")
    parser.add_argument("--batch", type=positive, default=1)
    parser.add_argument("--size", type=size, default=(64, 64), help="latent HxW (default 64x64)")
    parser.add_argument("--tokens", type=positive, default=77)
    parser.add_argument("--width", type=positive, default=768, help="encoder width (default 768)")
    parser.add_argument("--timesteps", type=timesteps, default=[500.0], help="comma-separated (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    steps = args.timesteps * args.batch if len(args.timesteps) == 1 else args.timesteps
    if len(steps) != args.batch:
        parser.error(f"--timesteps gives {len(steps)} values for batch {args.batch}")

    rng = np.random.default_rng(args.seed)
    height, width = args.size
    tensors = {
        "sample": rng.standard_normal((args.batch, 4, height, width), dtype=np.float32),
        "timestep": np.array(steps, dtype=np.float32),
        "encoder_hidden_states": rng.standard_normal((args.batch, args.tokens, args.width), dtype=np.float32),
    }
    save_file(tensors, args.output, metadata={"made_by": "tools/make_unet_input.py", "seed": str(args.seed)})
    print(", ".join(f"{name} {list(value.shape)}" for name, value in tensors.items()), "->", args.output)


if __name__ == "__main__":
    main()
