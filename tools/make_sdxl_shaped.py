#!/usr/bin/env python3
"""Generates the SDXL-base-1.0-shaped UNet used by the benchmarks (never committed): the real 1,680 names and shapes
of stabilityai/stable-diffusion-xl-base-1.0's UNet (2,567,463,684 parameters), filled with the same seeded
heavy-tailed values as tools/make_sd15_shaped.py (per-output-channel scale; 1-D norm weights around 1). Writes, into
the folder given (default bench/):

    sdxl_shaped.fp16.safetensors             5.13 GB, sgm/ldm names (model.diffusion_model.*), like a single-file
                                             SDXL checkpoint's UNet
    sdxl_shaped.diffusers.fp16.safetensors   5.13 GB, the same values under diffusers names (for torch)
    sdxl_unet.config.json                    the diffusers UNet config

    python3 tools/make_sdxl_shaped.py --convert-script /tmp/convert_sdxl.py [OUT_DIR]

Names and shapes come from diffusers' UNet2DConditionModel built on torch's meta device from the SDXL base config
(tools/bench_unet_torch.py's SDXL). The ldm names come from diffusers' own
scripts/convert_diffusers_to_original_sdxl.py, imported at run time from --convert-script (not part of this
repository; e.g. `git -C DIFFUSERS show HEAD:scripts/convert_diffusers_to_original_sdxl.py > /tmp/convert_sdxl.py`),
and are checked in reverse with diffusers.loaders.single_file_utils.convert_ldm_unet_checkpoint. Tensors are generated
one at a time (float32 only while one tensor is drawn) and kept in fp16; both files are written by the safetensors
library (0.8: no serialisation copy) from the same fp16 tensors, so the peak RSS is about one fp16 copy: 6.0 GB,
3 min 41 s on 2 cores.
"""
import argparse
import json
import pathlib
import sys
import time

import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tools" / "testdata"))
from bench_unet_torch import SDXL  # noqa: E402  (the SDXL base config, one copy)
from make_sd15_shaped import values  # noqa: E402  (the value distribution, one copy)
from unet import load_script  # noqa: E402  (tools/testdata/unet.py: imports diffusers' conversion script)

import numpy as np  # noqa: E402

TENSORS, PARAMETERS = 1680, 2_567_463_684
PREFIX = "model.diffusion_model."


def main():
    parser = argparse.ArgumentParser(description="Write the SDXL-base-shaped fp16 UNet (ldm and diffusers names).")
    parser.add_argument("out_dir", nargs="?", default=str(ROOT / "bench"))
    parser.add_argument("--convert-script", required=True,
                        help="diffusers' scripts/convert_diffusers_to_original_sdxl.py (imported, not copied)")
    parser.add_argument("--seed", type=int, default=20240606)
    args = parser.parse_args()
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(SDXL)
    shapes = {name: tuple(value.shape) for name, value in unet.state_dict().items()}  # diffusers names, model order
    total = sum(int(np.prod(shape)) for shape in shapes.values())
    assert len(shapes) == TENSORS and total == PARAMETERS, (len(shapes), total)

    # diffusers -> ldm with diffusers' script (it maps a dict of tensors; the names are what matter here).
    script = load_script(args.convert_script)
    ldm_of = {hf: PREFIX + ldm for ldm, hf in script.convert_unet_state_dict({n: n for n in shapes}).items()}
    assert len(ldm_of) == TENSORS and len(set(ldm_of.values())) == TENSORS, "ldm names are not one-to-one"
    # ... and back with diffusers' single-file loader, on meta tensors of the same shapes.
    back = convert_ldm_unet_checkpoint({ldm_of[n]: torch.empty(s, device="meta") for n, s in shapes.items()},
                                       dict(unet.config))
    assert set(back) == set(shapes), (sorted(set(shapes) - set(back))[:3], sorted(set(back) - set(shapes))[:3])
    bad = [n for n in shapes if tuple(back[n].shape) != shapes[n]]
    assert not bad, f"shape mismatches after ldm -> diffusers: {bad[:3]}"
    ldm_shapes = {ldm_of[n]: s for n, s in shapes.items()}
    assert ldm_shapes[PREFIX + "label_emb.0.0.weight"] == (1280, 2816)
    assert ldm_shapes[PREFIX + "output_blocks.2.2.conv.weight"] == (1280, 1280, 3, 3)
    print(f"{TENSORS} tensors, {total:,} parameters; names checked both ways "
          f"({time.perf_counter() - start:.1f} s)", flush=True)

    rng = np.random.default_rng(args.seed)
    tensors = {}  # diffusers name -> fp16 tensor
    for i, (name, shape) in enumerate(shapes.items()):
        tensors[name] = torch.from_numpy(values(rng, ldm_of[name], shape)).half()
        if (i + 1) % 200 == 0:
            print(f"  generated {i + 1}/{TENSORS} ({time.perf_counter() - start:.0f} s)", flush=True)
    assert all(bool(torch.isfinite(t).all()) for t in tensors.values())

    meta = {"made_by": "tools/make_sdxl_shaped.py", "seed": str(args.seed)}
    save_file({ldm_of[n]: t for n, t in tensors.items()}, out / "sdxl_shaped.fp16.safetensors", metadata=meta)
    save_file(tensors, out / "sdxl_shaped.diffusers.fp16.safetensors", metadata=meta)
    (out / "sdxl_unet.config.json").write_text(unet.to_json_string())
    json.loads((out / "sdxl_unet.config.json").read_text())
    print(f"wrote {out}: {TENSORS} tensors, {total:,} parameters, sdxl_shaped.fp16.safetensors (ldm names), "
          f"sdxl_shaped.diffusers.fp16.safetensors, sdxl_unet.config.json in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
