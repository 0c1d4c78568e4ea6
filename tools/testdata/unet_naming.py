#!/usr/bin/env python3
"""Expected UNet tensor names for bfq's naming tests, produced by diffusers itself.

Writes into testdata/unet/:
  sd15_unet_names.diffusers.txt   state-dict names of diffusers' UNet2DConditionModel with the SD-v1.5 config
  sd15_ldm_to_diffusers.tsv       ldm name <TAB> diffusers name, from diffusers.loaders.single_file_utils
                                  .convert_ldm_unet_checkpoint applied to the SD-v1.5 ldm names
  sd15_diffusers_to_ldm.tsv       diffusers name <TAB> ldm name, from convert_unet_state_dict in diffusers'
                                  scripts/convert_diffusers_to_original_stable_diffusion.py
  sd2_unet_shapes.diffusers.json  [name, shape] of the SD-2.x UNet (linear proj_in/proj_out), diffusers naming
  sd2_ldm_to_diffusers.tsv, sd2_diffusers_to_ldm.tsv   as above for SD 2.x

Models are built on the "meta" device: names and shapes only, no weights.
Usage: python3 tools/testdata/unet_naming.py --convert-script PATH/TO/convert_diffusers_to_original_stable_diffusion.py
"""
import argparse
import importlib.util
import json
import math
import os

import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

LDM_PREFIX = "model.diffusion_model."
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "unet")

COMMON = dict(
    in_channels=4, out_channels=4, layers_per_block=2, norm_num_groups=32,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
)
# runwayml/stable-diffusion-v1-5 unet/config.json
SD15 = dict(COMMON, sample_size=64, cross_attention_dim=768, attention_head_dim=8)
# stabilityai/stable-diffusion-2-1 unet/config.json
SD2 = dict(COMMON, sample_size=96, cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20],
           use_linear_projection=True)


def meta_state_dict(config):
    with torch.device("meta"):
        return UNet2DConditionModel(**config).state_dict()


def pairs(script, diffusers_sd):
    """Both published conversions: diffusers -> ldm (script) and ldm -> diffusers (single_file_utils)."""
    to_ldm = script.convert_unet_state_dict({k: k for k in diffusers_sd})  # value = diffusers name
    d2l = [(v, LDM_PREFIX + k) for k, v in to_ldm.items()]
    ldm_ckpt = {ldm: ldm for _, ldm in d2l}                                  # value = ldm name
    from_ldm = convert_ldm_unet_checkpoint(ldm_ckpt, {"layers_per_block": 2})
    l2d = [(v, k) for k, v in from_ldm.items()]
    assert sorted(d2l) == sorted((d, l) for l, d in l2d), "the two diffusers conversions disagree"
    assert len(d2l) == len(diffusers_sd)
    return d2l, l2d


def write_tsv(name, rows):
    with open(os.path.join(OUT, name), "w") as f:
        f.writelines(f"{a}\t{b}\n" for a, b in rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--convert-script", required=True)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("convert_d2o", args.convert_script)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    os.makedirs(OUT, exist_ok=True)

    sd15 = meta_state_dict(SD15)
    with open(os.path.join(OUT, "sd15_unet_names.diffusers.txt"), "w") as f:
        f.writelines(k + "\n" for k in sd15)
    d2l, _ = pairs(script, sd15)
    write_tsv("sd15_diffusers_to_ldm.tsv", d2l)
    # ldm -> diffusers in the order of the shared SD-v1.5 ldm name list.
    with open(os.path.join(OUT, "sd15_unet_shapes.ldm.json")) as f:
        ldm_names = [n for n, _ in json.load(f)]
    from_ldm = convert_ldm_unet_checkpoint({n: n for n in ldm_names}, {"layers_per_block": 2})
    inverse = {v: k for k, v in from_ldm.items()}
    write_tsv("sd15_ldm_to_diffusers.tsv", [(n, inverse[n]) for n in ldm_names])
    shapes = dict(json.load(open(os.path.join(OUT, "sd15_unet_shapes.ldm.json"))))
    for d, l in d2l:  # shapes agree with the shared list
        assert list(sd15[d].shape) == shapes[l], (d, l)

    sd2 = meta_state_dict(SD2)
    with open(os.path.join(OUT, "sd2_unet_shapes.diffusers.json"), "w") as f:
        json.dump([[k, list(v.shape)] for k, v in sd2.items()], f)
    d2l, l2d = pairs(script, sd2)
    write_tsv("sd2_diffusers_to_ldm.tsv", d2l)
    write_tsv("sd2_ldm_to_diffusers.tsv", l2d)
    for label, sd in (("SD 1.5", sd15), ("SD 2.x", sd2)):
        print(label, len(sd), "tensors,", sum(math.prod(v.shape) for v in sd.values()), "parameters")


if __name__ == "__main__":
    main()
