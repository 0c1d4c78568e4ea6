#!/usr/bin/env python3
"""PyTorch/diffusers baseline for bfq's UNet evaluator: times UNet2DConditionModel's float32 forward pass on CPU.

    python3 tools/bench_unet_torch.py --config CONFIG.json|sd15|sdxl --weights WEIGHTS.safetensors
                                      --input IN.safetensors [--output OUT.safetensors] [--threads 2] [--repeat N]

--config: a diffusers UNet config.json, or `sd15` for runwayml/stable-diffusion-v1-5's unet/config.json, or `sdxl`
for stabilityai/stable-diffusion-xl-base-1.0's unet/config.json.
--weights: diffusers tensor names (convert ldm names with `bfq convert IN OUT --names diffusers`), any float dtype,
cast to float32 and loaded strictly. --input: `sample`, `timestep`, `encoder_hidden_states` (as written by
tools/make_unet_input.py or the testdata/unet/forward fixtures); when the config's addition_embed_type is
"text_time" (SDXL), also `text_embeds` [B,P] (pooled text embedding, P = 1280 for SDXL base) and `time_ids` [B,6]
(or [B,5] for the refiner), passed as added_cond_kwargs. Runs in eval() under torch.no_grad() with
torch.set_num_threads(THREADS); prints one line per run with the forward pass's wall-clock seconds (in process,
model already loaded), its CPU seconds (all threads; well under THREADS x wall means other processes took cores)
and the process's peak RSS so far, then the median. --output writes the last run's noise_pred (F32). Wrap in
`/usr/bin/time -v` for the whole process (imports and loading included). SDXL at 128x128 latents needs about 11 GB
(10.3 GB of float32 weights).
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
from diffusers import UNet2DConditionModel
from safetensors import safe_open
from safetensors.torch import load_file, save_file

# runwayml/stable-diffusion-v1-5 unet/config.json
SD15 = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.6.0",
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}


# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
SDXL = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.19.0.dev0",
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 2048,
    "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "sample_size": 128,
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None,
    "use_linear_projection": True,
}
BUILT_IN = {"sd15": SD15, "sdxl": SDXL}


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def load_unet(config_arg, weights_path):
    """The UNet built on the meta device (no random initialisation), its parameters then taken from the file."""
    if config_arg in BUILT_IN:
        config = BUILT_IN[config_arg]
    else:
        with open(config_arg) as f:
            config = json.load(f)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    # Tensor by tensor, each copied into a fresh (aligned) float32 buffer.
    with safe_open(weights_path, "pt") as f:
        state = {name: f.get_tensor(name).to(torch.float32, copy=True) for name in f.keys()}
    expected = set(unet.state_dict())
    if set(state) != expected:
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        sys.exit(f"{weights_path}: tensor names do not match the config's UNet ({len(missing)} missing, e.g. "
                 f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]}); ldm names? convert with "
                 f"`bfq convert IN OUT --names diffusers`")
    unet.load_state_dict(state, strict=True, assign=True)
    left = [name for name, value in list(unet.named_parameters()) + list(unet.named_buffers()) if value.is_meta]
    assert not left, f"tensors still on the meta device: {left[:3]}"
    return unet.eval(), config


def main():
    parser = argparse.ArgumentParser(description="Time diffusers' float32 UNet forward pass on CPU.")
    parser.add_argument("--config", required=True, help="diffusers UNet config.json, or sd15 or sdxl")
    parser.add_argument("--weights", required=True, help="diffusers-named .safetensors (any float dtype)")
    parser.add_argument("--input", required=True,
                        help="sample, timestep, encoder_hidden_states (+ text_embeds, time_ids for SDXL)")
    parser.add_argument("--output", help="write noise_pred (F32) here")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.threads < 1 or args.repeat < 1:
        parser.error("--threads and --repeat must be at least 1")

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    unet, config = load_unet(args.config, args.weights)
    # Fresh copies: torch's CPU kernels can round differently for buffers at other alignments, and tensors read by
    # safetensors sit at any offset; copied, the output matches testdata/unet/forward's noise_pred bit for bit.
    inputs = {name: value.clone() for name, value in load_file(args.input).items()}
    sample, timestep, context = inputs["sample"].float(), inputs["timestep"], inputs["encoder_hidden_states"].float()
    added, described = None, ""
    if config.get("addition_embed_type") == "text_time":
        missing = [name for name in ("text_embeds", "time_ids") if name not in inputs]
        if missing:
            sys.exit(f"{args.input}: the config's addition_embed_type is text_time (SDXL) but the input has no "
                     f"{' or '.join(missing)}; write them with tools/make_unet_input.py --sdxl")
        added = {"text_embeds": inputs["text_embeds"].float(), "time_ids": inputs["time_ids"].float()}
        described = (f", text_embeds {list(added['text_embeds'].shape)}, time_ids "
                     f"{added['time_ids'].tolist()}")
    print(f"loaded in {time.perf_counter() - start:.2f} s: sample {list(sample.shape)}, timestep "
          f"{timestep.tolist()}, encoder {list(context.shape)}{described}, {args.threads} threads, "
          f"peak RSS {peak_rss_mb():.0f} MB", flush=True)

    seconds = []
    with torch.no_grad():
        for run in range(1, args.repeat + 1):
            start, cpu = time.perf_counter(), time.process_time()
            noise_pred = unet(sample, timestep, context, added_cond_kwargs=added).sample
            seconds.append(time.perf_counter() - start)
            print(f"run {run}: forward {seconds[-1]:.3f} s (cpu {time.process_time() - cpu:.3f} s), "
                  f"peak RSS {peak_rss_mb():.0f} MB", flush=True)
    finite = bool(torch.isfinite(noise_pred).all())
    print(f"median forward {statistics.median(seconds):.3f} s over {len(seconds)} runs; noise_pred std "
          f"{noise_pred.std().item():.6g}, max |x| {noise_pred.abs().max().item():.6g}, "
          f"{'all finite' if finite else 'NOT FINITE'}")
    if args.output:
        save_file({"noise_pred": noise_pred.float().contiguous()}, args.output)


if __name__ == "__main__":
    main()
