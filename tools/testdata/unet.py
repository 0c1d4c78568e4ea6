#!/usr/bin/env python3
"""Tiny trained UNet with the exact SD-v1.5 block structure (the same 686 tensor names), for bfq's tests.

A diffusers UNet2DConditionModel with SD-v1.5's block layout and channels scaled down, trained briefly on CPU
(DDPM noise-prediction loss) on synthetic smooth 16x16 latents conditioned on random encoder states, so the
weights carry trained rather than initial statistics. Seeded and deterministic on one machine.

Writes into testdata/unet/:
  config.json                           the diffusers UNet config
  tiny_unet.diffusers.safetensors       diffusers naming, fp16
  tiny_unet.diffusers.ckpt              diffusers naming, fp16, torch.save(unet.state_dict())
  tiny_unet.ldm.ckpt                    ldm naming under model.diffusion_model., fp16,
                                        torch.save({"state_dict": ..., "global_step": STEPS}) like an SD .ckpt
  tiny_unet.ldm.safetensors             ldm naming under model.diffusion_model., fp16
  reference_io.safetensors              sample, timestep, encoder_hidden_states and noise_pred (fp32), with
                                        noise_pred from the fp16 weights run in fp32

The ldm names come from diffusers' own mapping: convert_unet_state_dict in diffusers'
scripts/convert_diffusers_to_original_stable_diffusion.py; the result is checked against
diffusers.loaders.single_file_utils.convert_ldm_unet_checkpoint, which must give back the diffusers state dict.

Usage: python3 tools/testdata/unet.py --convert-script PATH/TO/convert_diffusers_to_original_stable_diffusion.py [--out DIR]
"""
import argparse
import importlib.util
import os
import time

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
from safetensors.torch import load_file, save_file

SEED = 1234
STEPS = 1000
BATCH = 16
SIZE = 16          # latent height and width
TOKENS = 8         # encoder sequence length
CROSS = 32         # cross-attention width
LDM_PREFIX = "model.diffusion_model."
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "unet")

# SD-v1.5's block structure; only the widths differ. Channels must rise 0 -> 1 -> 2 and stay at 3 for the
# down-block conv_shortcut tensors (and so all 686 names) to exist; 32 GroupNorm groups would force
# (32, 64, 96, 96) and ~5.5M parameters, too large for the fixture, so GroupNorm uses 4 groups.
CONFIG = dict(
    sample_size=SIZE, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(8, 16, 32, 32), norm_num_groups=4,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    attention_head_dim=8,           # SD-v1 quirk: this is the number of heads
    cross_attention_dim=CROSS, use_linear_projection=False,
)


def smooth(generator, batch, channels, coarse):
    """Random fields on a coarse grid, upsampled bilinearly to SIZE x SIZE."""
    x = torch.randn(batch, channels, coarse, coarse, generator=generator)
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


class Data:
    """Latents x0 = a smooth field decided by the conditioning + a little smooth noise of its own."""

    def __init__(self, generator):
        self.generator = generator
        self.projection = torch.randn(CROSS, 4 * 4 * 4, generator=generator) / CROSS ** 0.5

    def batch(self, n):
        cond = torch.randn(n, TOKENS, CROSS, generator=self.generator)
        coarse = (cond.mean(dim=1) @ self.projection).reshape(n, 4, 4, 4) * 2.0
        x0 = F.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return x0 + 0.2 * smooth(self.generator, n, 4, 8), cond


def load_script(path):
    spec = importlib.util.spec_from_file_location("convert_d2o", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--convert-script", required=True)
    parser.add_argument("--out", default=OUT, help="output directory (default: testdata/unet)")
    args = parser.parse_args()
    script = load_script(args.convert_script)
    out = args.out

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    generator = torch.Generator().manual_seed(SEED)

    unet = UNet2DConditionModel(**CONFIG)
    # SD's training schedule.
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear")
    data = Data(generator)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-3, weight_decay=1e-2)
    start = time.time()
    unet.train()
    for step in range(1, STEPS + 1):
        x0, cond = data.batch(BATCH)
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(0, 1000, (BATCH,), generator=generator)
        noisy = scheduler.add_noise(x0, noise, t)
        loss = F.mse_loss(unet(noisy, t, cond).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == 1:
            print(f"step {step:4d}  loss {loss.item():.4f}  {time.time() - start:.0f}s", flush=True)

    # Weights as shipped: fp16. Every file holds exactly these values.
    unet.eval()
    sd16 = {k: v.detach().to(torch.float16).contiguous() for k, v in unet.state_dict().items()}
    assert len(sd16) == 686, len(sd16)
    ldm = {LDM_PREFIX + k: v for k, v in script.convert_unet_state_dict(dict(sd16)).items()}
    back = convert_ldm_unet_checkpoint(ldm, {"layers_per_block": CONFIG["layers_per_block"]})
    assert back.keys() == sd16.keys() and all(back[k] is sd16[k] for k in sd16), "conversions disagree"

    os.makedirs(out, exist_ok=True)
    unet.save_config(out)
    save_file(sd16, os.path.join(out, "tiny_unet.diffusers.safetensors"))
    save_file(ldm, os.path.join(out, "tiny_unet.ldm.safetensors"))
    state_dict = unet.state_dict()  # keeps the OrderedDict and its _metadata, as diffusers .bin files do
    for k in state_dict:
        state_dict[k] = sd16[k]
    torch.save(state_dict, os.path.join(out, "tiny_unet.diffusers.ckpt"))
    torch.save({"state_dict": ldm, "global_step": STEPS}, os.path.join(out, "tiny_unet.ldm.ckpt"))

    # Reference input/output: the fp16 weights run in fp32.
    reference = UNet2DConditionModel(**CONFIG)
    reference.load_state_dict({k: v.float() for k, v in load_file(
        os.path.join(out, "tiny_unet.diffusers.safetensors")).items()})
    reference.eval()
    x0, cond = data.batch(1)
    noise = torch.randn(x0.shape, generator=generator)
    timestep = torch.tensor([500], dtype=torch.int64)
    sample = scheduler.add_noise(x0, noise, timestep)
    with torch.no_grad():
        noise_pred = reference(sample, timestep.float(), cond).sample
    save_file({
        "sample": sample.contiguous(), "timestep": timestep.float(),
        "encoder_hidden_states": cond.contiguous(), "noise_pred": noise_pred.contiguous(),
    }, os.path.join(out, "reference_io.safetensors"))
    print(f"reference noise_pred mse vs noise {F.mse_loss(noise_pred, noise).item():.4f}")
    print(f"parameters {sum(v.numel() for v in sd16.values())}, {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
