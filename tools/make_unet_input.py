#!/usr/bin/env python3
"""Writes a seeded UNet input file (benchmarks, never committed): `sample` F32 [B,4,H,W], `timestep` F32 [B] and
`encoder_hidden_states` F32 [B,T,D], standard normal values drawn in that order from numpy's default_rng(seed); for
SDXL (--text-embeds P, or --sdxl) also `text_embeds` F32 [B,P] (standard normal, drawn after the others, so the SD
tensors for a seed do not change) and `time_ids` F32 [B,6] (the same row for every batch item).

    python3 tools/make_unet_input.py OUT.safetensors [--batch 1] [--size 64x64] [--tokens 77] [--width 768]
                                     [--timesteps 500[,981,...]] [--seed 0]
                                     [--sdxl] [--text-embeds 1280] [--time-ids 1024,1024,0,0,1024,1024]

--size is the latent's HxW (SD at 512x512 pixels: 64x64; SDXL at 1024x1024: 128x128); --width is the
cross-attention width (SD-v1: 768, SD-2: 1024, SDXL: 2048); --timesteps gives one value per batch item, or one value
for all. --text-embeds is the pooled text embedding's width (SDXL base: 1280; 0, the default without --sdxl, writes
neither text_embeds nor time_ids); --time-ids is [orig_h, orig_w, crop_top, crop_left, target_h, target_w] in pixels
(5 values, the refiner's [h, w, top, left, aesthetic_score], are accepted too). --sdxl sets the SDXL base defaults:
--width 2048 and --text-embeds 1280 unless given. Needs numpy and safetensors only.
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


def numbers(text):
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
    parser.add_argument("--width", type=positive, help="encoder width (default 768; 2048 with --sdxl)")
    parser.add_argument("--timesteps", type=timesteps, default=[500.0], help="comma-separated (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sdxl", action="store_true", help="SDXL base: --width 2048 --text-embeds 1280 by default")
    parser.add_argument("--text-embeds", type=int, metavar="P",
                        help="write text_embeds [B,P] and time_ids (default 0 = neither; 1280 with --sdxl)")
    parser.add_argument("--time-ids", type=numbers, default=[1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0],
                        help="comma-separated, 6 (or 5) values (default 1024,1024,0,0,1024,1024)")
    args = parser.parse_args()
    if args.width is None:
        args.width = 2048 if args.sdxl else 768
    if args.text_embeds is None:
        args.text_embeds = 1280 if args.sdxl else 0
    if args.text_embeds < 0:
        parser.error("--text-embeds must be at least 0")
    if len(args.time_ids) not in (5, 6):
        parser.error(f"--time-ids needs 6 values (or 5 for the refiner), got {len(args.time_ids)}")
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
    if args.text_embeds:
        tensors["text_embeds"] = rng.standard_normal((args.batch, args.text_embeds), dtype=np.float32)
        tensors["time_ids"] = np.tile(np.array(args.time_ids, dtype=np.float32), (args.batch, 1))
    save_file(tensors, args.output, metadata={"made_by": "tools/make_unet_input.py", "seed": str(args.seed)})
    print(", ".join(f"{name} {list(value.shape)}" for name, value in tensors.items()), "->", args.output)


if __name__ == "__main__":
    main()
