#!/usr/bin/env python3
"""Makes testdata/unet/time_features.safetensors: what real diffusers computes for the time-feature cache of the
tiny trained UNet (testdata/unet), and the timesteps real diffusers schedulers visit. The reference for
Sources/BFQCore/Quantization/TimeFeatureCache.swift and TimestepSchedule.swift. Developers run it; CI only reads
its output.

    python3 tools/testdata/time_features.py

Time features: the fp16 weights of tiny_unet.diffusers.safetensors loaded into an fp32 UNet2DConditionModel, one full
forward pass per timestep (batch 1, zero latent and encoder states: they do not reach the time path) with forward
hooks on `time_proj` (the sinusoidal embedding), `time_embedding` (the time MLP) and every ResNet's `time_emb_proj`;
the hooks also record the order in which diffusers runs the projections.

Schedules: DDIMScheduler and PNDMScheduler built from SD-v1.5's scheduler_config.json (PNDM, leading spacing,
steps_offset 1, 1000 training steps), `set_timesteps(N)`; `timestep_spacing` overridden for the other spacings.
The lists are stored exactly as the schedulers return them (descending; PNDM's PLMS repeats one timestep; trailing
spacing returns N + 1 timesteps for some N, e.g. 61, because of numpy's float arange).

Tensors written:
  timesteps [T] I64                     the timesteps below
  t_emb [T, 8] F32                      time_proj output (sinusoidal embedding, flip_sin_to_cos, shift 0)
  temb [T, 32] F32                      time_embedding output (linear_2(SiLU(linear_1(t_emb))))
  features.<diffusers module> [T, w] F32   each time_emb_proj output
  schedule.<spec> [n] I32               DDIM/PNDM timesteps, spec as TimestepSchedule.parse spells it:
                                        "50" (PNDM, SD-v1.5 config), "ddim:N", "leading:N", "trailing:N", "linspace:N"
Metadata: `layers` = JSON list of [diffusers module, ldm module, width] in diffusers' execution order, the ldm name
taken from testdata/unet/sd15_diffusers_to_ldm.tsv (diffusers' own conversion script).
"""
import json
import pathlib

import torch
from diffusers import DDIMScheduler, PNDMScheduler, UNet2DConditionModel
from safetensors.torch import load_file, save_file

UNET = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "unet"
TIMESTEPS = [0, 1, 500, 981, 999]
STEP_COUNTS = [1, 2, 3, 7, 10, 20, 25, 50, 61, 99, 100, 250, 333, 500, 999, 1000]
# runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "clip_sample": False, "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None,
}


def time_features():
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(UNET)).float().eval()
    weights = load_file(UNET / "tiny_unet.diffusers.safetensors")
    unet.load_state_dict({name: value.float() for name, value in weights.items()})
    ldm = dict(line.rstrip("\n").split("\t") for line in open(UNET / "sd15_diffusers_to_ldm.tsv"))

    captured = {}
    order = []

    def hook(name):
        def record(_module, _inputs, output):
            captured.setdefault(name, []).append(output.detach().clone())
            if name.endswith("time_emb_proj") and name not in order:
                order.append(name)
        return record

    for name, module in unet.named_modules():
        if name in ("time_proj", "time_embedding") or name.endswith(".time_emb_proj"):
            module.register_forward_hook(hook(name))

    config = unet.config
    sample = torch.zeros(1, config.in_channels, config.sample_size, config.sample_size)
    context = torch.zeros(1, 8, config.cross_attention_dim)
    with torch.no_grad():
        for t in TIMESTEPS:
            unet(sample, torch.tensor([t], dtype=torch.int64), context)

    tensors = {"timesteps": torch.tensor(TIMESTEPS, dtype=torch.int64),
               "t_emb": torch.cat(captured["time_proj"]), "temb": torch.cat(captured["time_embedding"])}
    layers = []
    for name in order:
        values = torch.cat(captured[name])
        tensors["features." + name] = values
        layers.append([name, ldm[name + ".weight"][: -len(".weight")], values.shape[1]])
    assert all(v.dtype == torch.float32 for v in tensors.values() if v.is_floating_point())
    return tensors, layers


def schedules():
    tensors = {}
    pndm = PNDMScheduler.from_config(SD15_SCHEDULER)
    pndm.set_timesteps(50)
    tensors["schedule.50"] = pndm.timesteps.to(torch.int32)
    for spacing in ("ddim", "leading", "trailing", "linspace"):
        overrides = {} if spacing == "ddim" else {"timestep_spacing": spacing}
        scheduler = DDIMScheduler.from_config(SD15_SCHEDULER, **overrides)
        for n in STEP_COUNTS:
            scheduler.set_timesteps(n)
            tensors[f"schedule.{spacing}:{n}"] = scheduler.timesteps.to(torch.int32)
    return tensors


def main():
    tensors, layers = time_features()
    tensors.update(schedules())
    path = UNET / "time_features.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata={"layers": json.dumps(layers)})
    print(f"{path}: {len(layers)} layers, {len(tensors)} tensors, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
