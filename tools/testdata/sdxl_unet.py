#!/usr/bin/env python3
"""Tiny SDXL-family UNets with random weights and full forward passes by real diffusers: the reference for bfq's
Swift SDXL path (added text_time conditioning, 3 and 4 levels, per-level and per-up-layer transformer depths,
single-resnet mid blocks). Developers run it; CI only reads its output.

    python3 tools/testdata/sdxl_unet.py        # after tools/testdata/sdxl_naming.py, whose name maps it reads

Four UNet2DConditionModels with the block structure of SDXL base, the SDXL refiner, SSD-1B and Segmind-Vega
(testdata/sdxl/*_shapes.diffusers.json), widths scaled down to fit the fixture budget: linear proj_in/proj_out,
addition_embed_type "text_time", heads of width 2 (attention_head_dim = channels / 2 per block, as SDXL's heads
are all 64 wide), GroupNorm with 2 groups, cross_attention_dim 12, layers_per_block 2, pooled text width 16,
addition_time_embed_dim 8:
  tiny_base     block_out_channels (2, 4, 6), DownBlock2D + CrossAttnDownBlock2D x2, CrossAttnUpBlock2D x2 +
                UpBlock2D, transformer_layers_per_block (1, 2, 3) (mid block 3), 6 time ids -> add input 16 + 6 x 8
  tiny_refiner  (2, 4, 6, 6), Down, CrossAttn, CrossAttn, Down / Up, CrossAttn, CrossAttn, Up, depth 2 everywhere,
                5 time ids (the refiner's aesthetic score) -> 16 + 5 x 8
  tiny_ssd1b    tiny_base with mid_block_type UNetMidBlock2D (one resnet) and asymmetric up depths:
                reverse_transformer_layers_per_block [[3, 3, 2], [2, 1, 1], [1, 1, 1]] (SSD-1B: [[4,4,10],[2,1,1],..])
  tiny_vega     tiny_base with mid_block_type UNetMidBlock2D and transformer_layers_per_block (1, 1, 2)

Writes into testdata/sdxl/:
  NAME.config.json               the diffusers config (what save_config writes)
  NAME.diffusers.safetensors     F16 weights, diffusers names, no metadata
  NAME.ldm.safetensors           tiny_base and tiny_refiner only: the same F16 tensors under their ldm names
                                 (model.diffusion_model. prefix), looked up in sdxl_base_diffusers_to_ldm.tsv
                                 (diffusers' convert_diffusers_to_original_sdxl.py) and
                                 sdxl_refiner_ldm_to_diffusers.tsv (the rule checked against diffusers'
                                 convert_ldm_unet_checkpoint): the tiny names are a subset of the full-size ones
  tiny_base_full.safetensors     a tiny single-file SDXL checkpoint: tiny_base's UNet as in tiny_base.ldm plus
                                 small F16 tensors under first_stage_model.* (ldm VAE names),
                                 conditioner.embedders.0.transformer.text_model.* (CLIP ViT-L, transformers names)
                                 and conditioner.embedders.1.model.* (OpenCLIP ViT-bigG names); see EXTRAS
  NAME_io.safetensors            batch 2: sample F32 [2,4,16,16], timestep I64 [2] = [981, 21],
                                 encoder_hidden_states F32 [2,7,12], text_embeds F32 [2,16], time_ids F32 [2,K],
                                 noise_pred F32 [2,4,16,16]
  tiny_base_odd_io.safetensors   sample [1,4,15,13] (up blocks upsample to the skip sizes), timestep F32 [500.5]
  tiny_refiner_odd_io.safetensors  sample [1,4,17,11] (4 levels: 17->9->5->3, 11->6->3->2), timestep F32 [500.5]

time_ids (F32): SDXL's [orig_h, orig_w, crop_top, crop_left, target_h, target_w], the refiner's [orig_h, orig_w,
crop_top, crop_left, aesthetic_score]; values in TIME_IDS. noise_pred is diffusers' output for
unet(sample, timestep, encoder_hidden_states, added_cond_kwargs={"text_embeds", "time_ids"}) from a fresh fp32
model holding the fp16 weights, in eval() under torch.no_grad().

Weights: diffusers' seeded random initialisation with the two nudges of unet_forward.py's SD-2 model (GroupNorm/
LayerNorm affine parameters get seeded N(0, 0.1) noise; to_q/to_k weights doubled so attention is selective), then
rounded to fp16, so the files hold exactly the values that ran. Inputs are seeded torch.randn. Every _io file's
metadata: model, weights, noise_pred_std, made_by, torch, diffusers (keys sorted).
Checks: no weight tensor is all zero; the output from the reloaded fp16 file equals the in-memory model's bit for
bit; the ldm files and tiny_base_full, mapped with diffusers' convert_ldm_unet_checkpoint, give exactly the
diffusers file's tensors. Seeded, 2 threads, torch.use_deterministic_algorithms(True): reruns on one machine give
identical files.
"""
import pathlib
import sys

import diffusers
import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
from safetensors.torch import load_file, save, save_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from unet_forward import load_unet, nudged, sorted_metadata  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "sdxl"
SEED = 1234
TOKENS = 7
CROSS = 12          # cross_attention_dim: CLIP-L width 4 + OpenCLIP width 8 in tiny_base_full
POOLED = 16         # text_embeds width (OpenCLIP text_projection output)
TIME_DIM = 8        # addition_time_embed_dim
HEAD_WIDTH = 2


def heads(channels):
    return [max(1, c // HEAD_WIDTH) for c in channels]


BASE = dict(
    sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, norm_num_groups=2,
    block_out_channels=(2, 4, 6),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 3), attention_head_dim=heads((2, 4, 6)), cross_attention_dim=CROSS,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=TIME_DIM,
    projection_class_embeddings_input_dim=POOLED + 6 * TIME_DIM,
)
REFINER = dict(
    BASE, block_out_channels=(2, 4, 6, 6),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=2, attention_head_dim=heads((2, 4, 6, 6)),
    projection_class_embeddings_input_dim=POOLED + 5 * TIME_DIM,
)
SSD1B = dict(BASE, mid_block_type="UNetMidBlock2D", transformer_layers_per_block=(1, 2, 3),
             reverse_transformer_layers_per_block=[[3, 3, 2], [2, 1, 1], [1, 1, 1]])
VEGA = dict(BASE, mid_block_type="UNetMidBlock2D", transformer_layers_per_block=(1, 1, 2))

# name: (config, full-size model whose name map gives the ldm names (None: no ldm file), structure label)
MODELS = {
    "tiny_base": (BASE, "sdxl_base", "SDXL base"),
    "tiny_refiner": (REFINER, "sdxl_refiner", "SDXL refiner"),
    "tiny_ssd1b": (SSD1B, None, "SSD-1B"),
    "tiny_vega": (VEGA, None, "Segmind-Vega"),
}
TIME_IDS = {
    "base": [[64, 64, 0, 0, 64, 64], [48, 40, 4, 2, 64, 64]],
    "base_odd": [[120, 104, 0, 0, 120, 104]],
    "refiner": [[64, 64, 0, 0, 6.0], [48, 40, 4, 2, 2.5]],
    "refiner_odd": [[136, 88, 0, 0, 6.0]],
}
# tiny_base_full's non-UNet tensors: name -> shape (F16, seeded randn x 0.1)
EXTRAS = {
    "first_stage_model.encoder.conv_in.weight": [8, 3, 3, 3],
    "first_stage_model.encoder.conv_in.bias": [8],
    "first_stage_model.quant_conv.weight": [8, 8, 1, 1],
    "first_stage_model.post_quant_conv.weight": [4, 4, 1, 1],
    "first_stage_model.decoder.conv_out.weight": [3, 8, 3, 3],
    "first_stage_model.decoder.conv_out.bias": [3],
    "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": [32, 4],
    "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": [TOKENS, 4],
    "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": [4],
    "conditioner.embedders.1.model.token_embedding.weight": [32, 8],
    "conditioner.embedders.1.model.positional_embedding": [TOKENS, 8],
    "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight": [24, 8],
    "conditioner.embedders.1.model.ln_final.weight": [8],
    "conditioner.embedders.1.model.text_projection": [8, POOLED],
}


def make_model(config, seed):
    """Seeded diffusers initialisation, nudged (see the module docstring), rounded to fp16 values."""
    torch.manual_seed(seed)
    return nudged(UNet2DConditionModel(**config), torch.Generator().manual_seed(seed))


def forward(unet, inputs):
    added = {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}
    with torch.no_grad():
        return unet(inputs["sample"], inputs["timestep"], inputs["encoder_hidden_states"],
                    added_cond_kwargs=added).sample.contiguous()


def make_inputs(generator, shape, timestep, time_ids):
    batch = shape[0]
    return {
        "sample": torch.randn(shape, generator=generator),
        "timestep": timestep,
        "encoder_hidden_states": torch.randn(batch, TOKENS, CROSS, generator=generator),
        "text_embeds": torch.randn(batch, POOLED, generator=generator),
        "time_ids": torch.tensor(time_ids, dtype=torch.float32),
    }


def write_case(name, inputs, noise_pred, model, weights):
    std = noise_pred.std().item()
    metadata = {
        "model": model, "weights": weights, "noise_pred_std": repr(std),
        "made_by": "tools/testdata/sdxl_unet.py",
        "torch": torch.__version__, "diffusers": diffusers.__version__,
    }
    tensors = {k: v.contiguous() for k, v in inputs.items()}
    tensors["noise_pred"] = noise_pred
    path = OUT / name
    path.write_bytes(sorted_metadata(save(tensors, metadata=metadata)))
    print(f"  {path.name}: sample {list(inputs['sample'].shape)}, noise_pred std {std:.6f}, "
          f"{path.stat().st_size} bytes")


def ldm_map(full_model):
    """{diffusers name: ldm name} of a full-size model, from the committed sdxl_naming.py output."""
    ours = OUT / f"{full_model}_diffusers_to_ldm.tsv"
    if ours.exists():
        pairs = [line.split("\t") for line in ours.read_text().splitlines()]
        return {d: ldm for d, ldm in pairs}
    pairs = [line.split("\t") for line in (OUT / f"{full_model}_ldm_to_diffusers.tsv").read_text().splitlines()]
    return {d: ldm for ldm, d in pairs}


def check_ldm_file(path, config, reference):
    """diffusers' convert_ldm_unet_checkpoint maps the file's UNet back to exactly the diffusers tensors."""
    back = convert_ldm_unet_checkpoint(load_file(path), dict(config))
    assert back.keys() == reference.keys(), path.name
    assert all(back[k].dtype == torch.float16 and torch.equal(back[k], reference[k]) for k in reference), path.name


def full_checkpoint(ldm, generator):
    tensors = dict(ldm)
    for name, shape in EXTRAS.items():
        tensors[name] = (0.1 * torch.randn(shape, generator=generator)).half()
    return tensors


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    OUT.mkdir(parents=True, exist_ok=True)
    for index, (name, (config, full_model, label)) in enumerate(MODELS.items()):
        seed = SEED + index
        unet = make_model(config, seed)
        config_path = OUT / f"{name}.config.json"
        unet.to_json_file(config_path)   # what save_config writes, under this name
        weights = OUT / f"{name}.diffusers.safetensors"
        sd16 = {k: v.half().contiguous() for k, v in unet.state_dict().items()}
        save_file(sd16, weights)
        reference = load_file(weights)
        parameters = sum(v.numel() for v in sd16.values())
        print(f"{name}: {len(sd16)} tensors, {parameters} parameters; {weights.name} {weights.stat().st_size} bytes")

        if full_model:
            names = ldm_map(full_model)
            missing = [k for k in sd16 if k not in names]
            assert not missing, f"{name}: not in the {full_model} name map: {missing[:3]}"
            ldm = {names[k]: v for k, v in sd16.items()}
            ldm_path = OUT / f"{name}.ldm.safetensors"
            save_file(ldm, ldm_path)
            check_ldm_file(ldm_path, unet.config, reference)
            print(f"  {ldm_path.name}: {ldm_path.stat().st_size} bytes")
            if name == "tiny_base":
                full_path = OUT / "tiny_base_full.safetensors"
                save_file(full_checkpoint(ldm, torch.Generator().manual_seed(seed + 100)), full_path)
                check_ldm_file(full_path, unet.config, reference)
                print(f"  {full_path.name}: {full_path.stat().st_size} bytes")

        generator = torch.Generator().manual_seed(seed)
        kind = "refiner" if "refiner" in name else "base"
        odd_shape = [1, 4, 17, 11] if kind == "refiner" else [1, 4, 15, 13]
        cases = [(f"{name}_io.safetensors",
                  make_inputs(generator, [2, 4, 16, 16], torch.tensor([981, 21]), TIME_IDS[kind]))]
        if name in ("tiny_base", "tiny_refiner"):
            cases.append((f"{name}_odd_io.safetensors",
                          make_inputs(generator, odd_shape, torch.tensor([500.5]), TIME_IDS[kind + "_odd"])))
        files = [weights.name] + ([f"{name}.ldm.safetensors"] if full_model else []) + \
            (["tiny_base_full.safetensors"] if name == "tiny_base" else [])
        reloaded = load_unet(config_path, weights)
        for case, inputs in cases:
            noise_pred = forward(reloaded, inputs)
            assert torch.equal(noise_pred, forward(unet, inputs)), "reloaded fp16 weights do not reproduce noise_pred"
            write_case(case, inputs, noise_pred, f"tiny {label}-structured UNet, testdata/sdxl/{config_path.name}",
                       ", ".join(f"testdata/sdxl/{file}" for file in files))


if __name__ == "__main__":
    main()
