#!/usr/bin/env python3
"""Expected SDXL-family UNet tensor names and shapes for bfq's naming tests, produced by diffusers itself.

Four full-size UNet2DConditionModel configs, built on torch's "meta" device (names and shapes, no weights):
  sdxl_base     stabilityai/stable-diffusion-xl-base-1.0      3 levels, depths 1/2/10, mid res+ST10+res
  sdxl_refiner  stabilityai/stable-diffusion-xl-refiner-1.0   4 levels, depth 4, context 1280, 5 time ids
  ssd1b         segmind/SSD-1B        SDXL channels, down depths 2,2,4,4, up depths 4,4,10,2,1,1, mid one resnet
  vega          segmind/Segmind-Vega  SDXL channels, down depths 1,1,2,2, up depths 2,2,2,1,1,1, mid one resnet

Writes into testdata/sdxl/, for each model M:
  M_shapes.diffusers.json   [name, shape] in state-dict order, one entry per line
  M_ldm_to_diffusers.tsv    ldm name (under model.diffusion_model.) <TAB> diffusers name, in the order
                            diffusers.loaders.single_file_utils.convert_ldm_unet_checkpoint returns them when
                            applied to the model's ldm names
  M_diffusers_to_ldm.tsv    diffusers name <TAB> ldm name (under model.diffusion_model.), in state-dict order, from
                            convert_unet_state_dict in diffusers' scripts/convert_diffusers_to_original_sdxl.py;
                            not for sdxl_refiner: the script hard-codes SDXL base's 3 levels (see main)

The ldm names of the 3-level models are the script's. For the refiner they come from the structural rule
(ldm_name below: the sgm UNetModel block numbering), accepted only because convert_ldm_unet_checkpoint maps them
one-to-one onto exactly the diffusers state-dict names. The script also checks: the published tensor and parameter
counts; the per-attention transformer depths; that both diffusers conversions are exact inverses (3-level models)
and agree with the rule; which config keys convert_ldm_unet_checkpoint needs.

Usage: python3 tools/testdata/sdxl_naming.py --convert-script PATH/TO/convert_diffusers_to_original_sdxl.py
"""
import argparse
import collections
import importlib.util
import json
import math
import os
import re

import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

LDM_PREFIX = "model.diffusion_model."
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "sdxl")

# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
SDXL_BASE = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=[320, 640, 1280],
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    transformer_layers_per_block=[1, 2, 10], attention_head_dim=[5, 10, 20], cross_attention_dim=2048,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)
# stabilityai/stable-diffusion-xl-refiner-1.0 unet/config.json
SDXL_REFINER = dict(
    SDXL_BASE, block_out_channels=[384, 768, 1536, 1536],
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    transformer_layers_per_block=4, attention_head_dim=[6, 12, 24, 24], cross_attention_dim=1280,
    projection_class_embeddings_input_dim=2560,
)
# segmind/SSD-1B: per-up-layer depths need reverse_transformer_layers_per_block (diffusers PR #5400)
SSD1B = dict(SDXL_BASE, mid_block_type="UNetMidBlock2D", transformer_layers_per_block=[1, 2, 4],
             reverse_transformer_layers_per_block=[[4, 4, 10], [2, 1, 1], [1, 1, 1]])
# segmind/Segmind-Vega
VEGA = dict(SDXL_BASE, mid_block_type="UNetMidBlock2D", transformer_layers_per_block=[1, 1, 2])

# name: (config, tensors, parameters, ST depths of down attentions, mid, up attentions) -- research notes sdxl.md
MODELS = {
    "sdxl_base": (SDXL_BASE, 1680, 2_567_463_684, [2, 2, 10, 10], [10], [10, 10, 10, 2, 2, 2]),
    "sdxl_refiner": (SDXL_REFINER, 1220, 2_259_526_660, [4, 4, 4, 4], [4], [4, 4, 4, 4, 4, 4]),
    "ssd1b": (SSD1B, 944, 1_331_334_404, [2, 2, 4, 4], [], [4, 4, 10, 2, 1, 1]),
    "vega": (VEGA, 564, 745_225_604, [1, 1, 2, 2], [], [2, 2, 2, 1, 1, 1]),
}

RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
          "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
       "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
       "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}


def ldm_name(name, config):
    """The sgm/ldm name (without prefix) of a diffusers UNet tensor name: sgm's UNetModel numbers its blocks
    input_blocks.0 (conv_in), then per level L resnet(+attention) blocks and a downsampler; middle_block.0..2;
    output_blocks per level L+1 resnet(+attention) blocks, the last also holding the upsampler (index 1 after a
    resnet, 2 after resnet+attention)."""
    L = config["layers_per_block"]

    def resnet(rest):
        head, _, tail = rest.partition(".")
        return f"{RESNET[head]}.{tail}"

    top, _, rest = name.rpartition(".")
    if top in TOP:
        return f"{TOP[top]}.{rest}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", name):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"input_blocks.{(L + 1) * i + j + 1}.0.{resnet(rest)}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", name):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"input_blocks.{(L + 1) * i + j + 1}.1.{rest}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", name):
        return f"input_blocks.{(L + 1) * (int(m[1]) + 1)}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", name):
        return f"middle_block.{2 * int(m[1])}.{resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", name):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", name):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"output_blocks.{(L + 1) * i + j}.0.{resnet(rest)}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", name):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"output_blocks.{(L + 1) * i + j}.1.{rest}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", name):
        i = int(m[1])
        slot = 2 if config["up_block_types"][i].startswith("CrossAttn") else 1
        return f"output_blocks.{(L + 1) * i + L}.{slot}.conv.{m[2]}"
    raise ValueError(f"no ldm name for {name}")


def ldm_names(diffusers_names, config):
    """{diffusers name: ldm name under model.diffusion_model.} by the rule, accepted only if diffusers'
    convert_ldm_unet_checkpoint maps those ldm names back one-to-one onto exactly diffusers_names."""
    rule = {d: LDM_PREFIX + ldm_name(d, config) for d in diffusers_names}
    assert len(set(rule.values())) == len(rule), "the rule gives two tensors one ldm name"
    back = convert_ldm_unet_checkpoint({ldm: ldm for ldm in rule.values()}, dict(config))
    assert back == rule, "convert_ldm_unet_checkpoint does not invert the rule exactly"
    return rule


def meta_state_dict(config):
    with torch.device("meta"):
        unet = UNet2DConditionModel(**config)
    return unet.state_dict(), dict(unet.config)


def depths(sd, prefix):
    """Transformer depth of each attention under prefix (down_blocks, mid_block, up_blocks), in state-dict order."""
    count = {}
    for k in sd:
        if m := re.match(rf"({prefix}\.(?:\d+\.)?attentions\.\d+)\.transformer_blocks\.(\d+)\.", k):
            count[m[1]] = max(count.get(m[1], 0), int(m[2]) + 1)
    return list(count.values())


def write_tsv(name, rows):
    with open(os.path.join(OUT, name), "w") as f:
        f.writelines(f"{a}\t{b}\n" for a, b in rows)


def write_shapes(name, sd):
    lines = ",\n".join(json.dumps([k, list(v.shape)], separators=(",", ":")) for k, v in sd.items())
    with open(os.path.join(OUT, name), "w") as f:
        f.write("[\n" + lines + "\n]\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--convert-script", required=True,
                        help="diffusers' scripts/convert_diffusers_to_original_sdxl.py")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("convert_d2sdxl", args.convert_script)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    os.makedirs(OUT, exist_ok=True)

    for model, (config, tensors, parameters, down, mid, up) in MODELS.items():
        sd, full_config = meta_state_dict(config)
        count = sum(math.prod(v.shape) for v in sd.values())
        assert (len(sd), count) == (tensors, parameters), (model, len(sd), count)
        assert (depths(sd, "down_blocks"), depths(sd, "mid_block"), depths(sd, "up_blocks")) == (down, mid, up), model
        write_shapes(f"{model}_shapes.diffusers.json", sd)

        # ldm -> diffusers: diffusers' convert_ldm_unet_checkpoint on the rule's ldm names (checked inverse).
        rule = ldm_names(sd, full_config)
        from_ldm = convert_ldm_unet_checkpoint({ldm: ldm for ldm in rule.values()}, full_config)
        write_tsv(f"{model}_ldm_to_diffusers.tsv", [(ldm, d) for d, ldm in from_ldm.items()])
        # It reads only layers_per_block and addition_embed_type from the config here (no depths, no mid type);
        # without addition_embed_type "text_time" it silently drops label_emb (add_embedding's 4 tensors).
        minimal = {"layers_per_block": 2, "addition_embed_type": "text_time"}
        assert convert_ldm_unet_checkpoint({ldm: ldm for ldm in rule.values()}, minimal) == from_ldm
        dropped = convert_ldm_unet_checkpoint({ldm: ldm for ldm in rule.values()}, {"layers_per_block": 2})
        assert sorted(set(from_ldm) - set(dropped)) == [f"add_embedding.linear_{i}.{p}" for i in (1, 2)
                                                        for p in ("bias", "weight")], model

        # diffusers -> ldm: the script (hard-coded for SDXL base's 3 levels).
        to_ldm = {d: LDM_PREFIX + s for s, d in script.convert_unet_state_dict({k: k for k in sd}).items()}
        wrong = sorted(d for d in sd if to_ldm.get(d) != rule[d])
        if len(config["block_out_channels"]) == 3:
            assert not wrong, (model, wrong[:5])
            assert list(to_ldm) == list(sd) and to_ldm == rule
            write_tsv(f"{model}_diffusers_to_ldm.tsv", to_ldm.items())
        else:
            # Blocks the 3-level tables do not cover keep diffusers block names; up_blocks.0's upsampler gets SDXL
            # base's slot 2 (after resnet+attention) although the refiner's up_blocks.0 has no attention.
            kept = collections.Counter(".".join(d.split(".")[:2]) for d in wrong
                                       if re.search(r"(down|up)_blocks\.|mid_block\.", to_ldm[d]))
            misplaced = [d for d in wrong if not re.search(r"(down|up)_blocks\.|mid_block\.", to_ldm[d])]
            print(f"{model}: convert_diffusers_to_original_sdxl.py gets {len(wrong)} of {len(sd)} names wrong: "
                  f"{sum(kept.values())} keep diffusers block names ({dict(sorted(kept.items()))}), "
                  f"{len(misplaced)} are misplaced: {misplaced[0]} -> {to_ldm[misplaced[0]]}, "
                  f"should be {rule[misplaced[0]]}")
        print(f"{model}: {len(sd)} tensors, {count} parameters")


if __name__ == "__main__":
    main()
