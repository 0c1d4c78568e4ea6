#!/usr/bin/env python3
"""Full UNet forward passes by real diffusers, the reference for bfq's Swift UNet evaluator. Developers run it;
CI only reads its output.

    python3 tools/testdata/unet_forward.py

Writes into testdata/unet/forward/ (all tensors contiguous; noise_pred F32 from an fp32 UNet2DConditionModel in
eval() under torch.no_grad(), the fp16 weights of the named file cast to fp32):
  sd1_batch2.safetensors     the tiny trained SD-v1-structured UNet (testdata/unet/config.json,
                             tiny_unet.diffusers.safetensors): sample F32 [2,4,16,16], timestep I64 [2] = [981, 21]
                             (both in SD's 50-step PNDM schedule), encoder_hidden_states F32 [2,77,32], noise_pred
  sd1_odd.safetensors        the same UNet, sample F32 [1,4,14,10] (not multiples of 8: diffusers passes
                             upsample_size to the up blocks), timestep F32 [1] = [500.5], encoder [1,77,32], noise_pred
  tiny_sd2.config.json       an SD-2-structured tiny UNet: linear proj_in/proj_out, per-block attention_head_dim
                             (heads) [2, 4, 6, 6], cross_attention_dim 48, 2 transformer layers per block
  tiny_sd2.diffusers.safetensors   its weights, F16, diffusers names
  sd2_batch2.safetensors     sample F32 [2,4,16,16], timestep F32 [2] = [999, 0], encoder [2,77,48], noise_pred

The SD-2 model is diffusers' seeded random initialisation with two nudges so that every tensor matters: the
GroupNorm/LayerNorm affine parameters (initialised to exactly 1 and 0) get seeded noise, and to_q/to_k weights are
scaled by 2 so attention is selective rather than near-uniform. Its weights are rounded to fp16 before use, so the
file holds exactly the values that ran.

Inputs are seeded torch.randn. Every file's metadata holds the model, the weights, noise_pred's standard deviation
and the versions. Checks: the four tiny SD-v1 weight files (both namings, .ckpt and .safetensors) hold the same
values (ldm names mapped by diffusers' convert_ldm_unet_checkpoint), so one expected output serves them all; the
SD-2 output from the reloaded fp16 file equals the in-memory model's bit for bit.
Seeded, 2 threads, torch.use_deterministic_algorithms(True): reruns on one machine give identical files.
"""
import json
import pathlib

import diffusers
import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
from safetensors.torch import load_file, save, save_file

UNET = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "unet"
OUT = UNET / "forward"
SEED = 1234
TOKENS = 77

# SD-2.x's block structure (stabilityai/stable-diffusion-2-1 unet/config.json: linear projections, per-block heads)
# scaled down; heads x head width = channels in every block (head width 4).
SD2_CONFIG = dict(
    sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=(8, 16, 24, 24), norm_num_groups=4,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    attention_head_dim=[2, 4, 6, 6],    # as in SD 2.x: the number of heads per block
    cross_attention_dim=48, use_linear_projection=True, transformer_layers_per_block=2,
)
QK_SCALE = 2.0
NORM_NOISE = 0.1


def load_unet(config_path, weights_path):
    """A fresh fp32 UNet from a saved config, with the file's (fp16) weights cast to fp32, strictly."""
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config_path))
    unet.load_state_dict({k: v.float() for k, v in load_file(weights_path).items()}, strict=True)
    return unet.float().eval()


def forward(unet, inputs):
    with torch.no_grad():
        return unet(inputs["sample"], inputs["timestep"], inputs["encoder_hidden_states"]).sample.contiguous()


def sorted_metadata(data):
    """safetensors writes __metadata__ from a Rust HashMap, in random order: sort its keys so reruns give identical
    bytes. The header keeps its length (the same JSON, reordered) and so its padding and data offsets."""
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode().ljust(length)
    assert len(text) == length
    return data[:8] + text + data[8 + length:]


def write_case(name, inputs, noise_pred, model, weights):
    std = noise_pred.std().item()
    metadata = {
        "model": model, "weights": weights, "noise_pred_std": repr(std),
        "made_by": "tools/testdata/unet_forward.py",
        "torch": torch.__version__, "diffusers": diffusers.__version__,
    }
    tensors = {k: v.contiguous() for k, v in inputs.items()}
    tensors["noise_pred"] = noise_pred
    path = OUT / name
    path.write_bytes(sorted_metadata(save(tensors, metadata=metadata)))
    print(f"{path.name}: noise_pred {list(noise_pred.shape)} std {std:.6f}, {path.stat().st_size} bytes")


def check_sd1_files_agree():
    """The four tiny SD-v1 weight files hold the same values, so sd1_*'s noise_pred holds for each of them."""
    reference = load_file(UNET / "tiny_unet.diffusers.safetensors")
    ldm_ckpt = torch.load(UNET / "tiny_unet.ldm.ckpt", weights_only=True)["state_dict"]
    candidates = {
        "tiny_unet.diffusers.ckpt": torch.load(UNET / "tiny_unet.diffusers.ckpt", weights_only=True),
        "tiny_unet.ldm.safetensors": convert_ldm_unet_checkpoint(
            load_file(UNET / "tiny_unet.ldm.safetensors"), {"layers_per_block": 2}),
        "tiny_unet.ldm.ckpt": convert_ldm_unet_checkpoint(dict(ldm_ckpt), {"layers_per_block": 2}),
    }
    for name, state in candidates.items():
        assert state.keys() == reference.keys(), name
        assert all(torch.equal(state[k], reference[k]) and state[k].dtype == reference[k].dtype
                   for k in reference), name


def sd1_cases(generator):
    unet = load_unet(UNET / "config.json", UNET / "tiny_unet.diffusers.safetensors")
    width = unet.config.cross_attention_dim
    batch2 = {
        "sample": torch.randn(2, 4, 16, 16, generator=generator),
        "timestep": torch.tensor([981, 21], dtype=torch.int64),
        "encoder_hidden_states": torch.randn(2, TOKENS, width, generator=generator),
    }
    odd = {
        "sample": torch.randn(1, 4, 14, 10, generator=generator),
        "timestep": torch.tensor([500.5], dtype=torch.float32),
        "encoder_hidden_states": torch.randn(1, TOKENS, width, generator=generator),
    }
    model = "tiny SD-v1-structured UNet, testdata/unet/config.json"
    write_case("sd1_batch2.safetensors", batch2, forward(unet, batch2), model, "testdata/unet/tiny_unet.*")
    write_case("sd1_odd.safetensors", odd, forward(unet, odd), model, "testdata/unet/tiny_unet.*")


def sd2_model(generator):
    """Seeded diffusers initialisation, nudged (see the module docstring), rounded to fp16 values."""
    return nudged(UNet2DConditionModel(**SD2_CONFIG), generator)


def nudged(unet, generator):
    """`unet` with seeded noise on its norms' affine parameters and to_q/to_k scaled by QK_SCALE, every parameter
    rounded to an fp16 value; in eval mode. Refuses an all-zero tensor."""
    with torch.no_grad():
        for module in unet.modules():
            if isinstance(module, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
                module.weight.add_(NORM_NOISE * torch.randn(module.weight.shape, generator=generator))
                module.bias.add_(NORM_NOISE * torch.randn(module.bias.shape, generator=generator))
        for name, parameter in unet.named_parameters():
            if name.endswith(("to_q.weight", "to_k.weight")):
                parameter.mul_(QK_SCALE)
        for parameter in unet.parameters():
            parameter.copy_(parameter.half().float())
    zero = [k for k, v in unet.state_dict().items() if not v.any()]
    assert not zero, f"all-zero tensors: {zero}"
    return unet.eval()


def sd2_case(generator):
    unet = sd2_model(generator)
    unet.to_json_file(OUT / "tiny_sd2.config.json")   # what save_config writes, under this name
    weights = OUT / "tiny_sd2.diffusers.safetensors"
    save_file({k: v.half().contiguous() for k, v in unet.state_dict().items()}, weights)
    inputs = {
        "sample": torch.randn(2, 4, 16, 16, generator=generator),
        "timestep": torch.tensor([999.0, 0.0], dtype=torch.float32),
        "encoder_hidden_states": torch.randn(2, TOKENS, SD2_CONFIG["cross_attention_dim"], generator=generator),
    }
    noise_pred = forward(load_unet(OUT / "tiny_sd2.config.json", weights), inputs)
    assert torch.equal(noise_pred, forward(unet, inputs)), "reloaded fp16 weights do not reproduce noise_pred"
    parameters = sum(v.numel() for v in unet.state_dict().values())
    print(f"{weights.name}: {len(unet.state_dict())} tensors, {parameters} parameters, {weights.stat().st_size} bytes")
    write_case("sd2_batch2.safetensors", inputs, noise_pred,
               "tiny SD-2-structured UNet, testdata/unet/forward/tiny_sd2.config.json",
               "testdata/unet/forward/tiny_sd2.diffusers.safetensors")


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    OUT.mkdir(parents=True, exist_ok=True)
    check_sd1_files_agree()
    sd1_cases(torch.Generator().manual_seed(SEED))
    sd2_case(torch.Generator().manual_seed(SEED + 1))


if __name__ == "__main__":
    main()
