#!/usr/bin/env python3
"""Model folders and multi-file checkpoints as the real libraries write them, around the tiny SDXL UNet of
sdxl_unet.py: the reference for bfq reading diffusers pipeline folders, sharded safetensors and sharded PyTorch
sets, state-dict-ordered pickles and Lightning checkpoints with EMA weights. Developers run it; CI only reads its
output.

    python3 tools/testdata/folders.py       # after tools/testdata/sdxl_unet.py, whose tiny_base files it reads
    python3 tools/testdata/folders.py --transformers4-python VENV/bin/python   # also the transformers 4 check

Writes testdata/folders/ (replacing all but its README.md):
  sdxl_pipeline/     diffusers.StableDiffusionXLPipeline(...).save_pretrained(dir, safe_serialization=True,
                     max_shard_size=PIPELINE_SHARD) of: unet = testdata/sdxl/tiny_base (config.json and F16 weights
                     exactly as stored), written as 3 shards + diffusion_pytorch_model.safetensors.index.json; a
                     seeded tiny AutoencoderKL (F16, one file); text_encoder = a seeded tiny transformers
                     CLIPTextModel (width 4) and text_encoder_2 = CLIPTextModelWithProjection (width 8, projection
                     16), both F16, one file each; tokenizer / tokenizer_2 = CLIPTokenizer built from a 32-token
                     vocab.json + merges.txt this script writes (into a temporary folder; transformers 5 saves
                     tokenizer.json + tokenizer_config.json); scheduler = EulerDiscreteScheduler with SDXL base
                     1.0's settings. Made with the versions installed; the README records them.
  text_encoder_bin/  the same text_encoder as a sharded PyTorch set, as transformers 4.57.6's
                     save_pretrained(dir, safe_serialization=False, max_shard_size=BIN_SHARD) writes it: config.json,
                     pytorch_model-0000{1,2}-of-00002.bin, pytorch_model.bin.index.json. transformers 5 (the only
                     line that installs beside diffusers 0.42, which needs huggingface-hub >= 1.32) writes
                     safetensors only, so save_bin_like_transformers_4 repeats 4.57.6's steps; with
                     --transformers4-python (an environment with transformers 4.57.6 and huggingface-hub < 1.0) the
                     script has the real 4.57.6 save the same model and checks the bytes are identical. 4.57's names
                     are "text_model." + those of transformers 5's CLIPTextModel (which dropped the wrapper).
  tiny_base.state_order.ckpt   torch.save(unet.state_dict(), path) of the tiny UNet: diffusers names in
                     state-dict order (the order the shards above split), which safetensors files do not keep.
  tiny_full_ema.ckpt a Lightning-style torch.save checkpoint: {"state_dict", "optimizer_states", "lr_schedulers",
                     "epoch": 7, "global_step": 1234, "pytorch-lightning_version": "1.9.4"}; state_dict = every
                     tensor of testdata/sdxl/tiny_base_full.safetensors (its order), model_ema.decay (F32 0.9999),
                     model_ema.num_updates (I32 1234), an EMA copy of every model.diffusion_model.* tensor under
                     ldm's LitEma name "model_ema." + the name after "model." with its dots removed (F16, the live
                     value + seeded N(0, EMA_NOISE^2) noise), then LatentDiffusion's 12 schedule buffers (F32 [1000],
                     scaled_linear 0.00085..0.012, computed as ldm's register_schedule does, in float64).
  tiny_full_ema.expected_ema.diffusers.safetensors   diffusers' own EMA extraction:
                     convert_ldm_unet_checkpoint(state_dict, tiny_base config, extract_ema=True), no metadata.
  sdxl_pipeline_diffusers_ref.safetensors   StableDiffusionXLPipeline.from_pretrained(sdxl_pipeline).unet (fp32,
                     holding the F16 values) on seeded inputs: sample F32 [1,4,8,8], timestep I64 [1] = [500],
                     encoder_hidden_states F32 [1,3,12], text_embeds F32 [1,16], time_ids F32 [1,6], noise_pred F32
                     (tiny_base_io.safetensors' tensor names); metadata keys sorted.

Checks: the pipeline's UNet is exactly 3 shards (its config.json the same bytes as tiny_base.config.json) and the
other models one file each; the shards split the UNet's
state-dict order into consecutive runs and hold exactly tiny_base.diffusers.safetensors' names, F16 dtype and
values; the folder loads with StableDiffusionXLPipeline.from_pretrained (offline), its prompt encoding gives the
UNet's widths (context 12 = 4 + 8, pooled 16) and a 2-step 16x16 generation runs; the reloaded UNet's output equals
that of a fresh UNet loaded from testdata/sdxl bit for bit; text_encoder_bin holds 2 shards, loads with
transformers' from_pretrained and equals sdxl_pipeline/text_encoder; the .ckpt files load with
torch.load(weights_only=True) in the order written; the EMA extraction differs from the live weights in every
tensor and equals the perturbed values written, while convert_ldm_unet_checkpoint without extract_ema gives
tiny_base.diffusers exactly. Seeded, 2 threads, torch.use_deterministic_algorithms(True): reruns on one machine
give identical files.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"      # everything here is local; never reach for a hub

import diffusers  # noqa: E402
import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline,  # noqa: E402
                       UNet2DConditionModel)
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint  # noqa: E402
from huggingface_hub import split_torch_state_dict_into_shards  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save, save_file  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from unet_forward import load_unet, sorted_metadata  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
SDXL = ROOT / "testdata" / "sdxl"
OUT = ROOT / "testdata" / "folders"
SEED = 4321
PIPELINE_SHARD = "25KB"     # 25,000 bytes: the F16 UNet (64,160 bytes) -> 3 shards; the F16 VAE (23,654) fits one
BIN_SHARD = "1KB"           # the F16 text_encoder (1,304 bytes) -> 2 shards
TOKENS = 7                  # tokenizer model_max_length = CLIP max_position_embeddings (tiny_base_full's [7, w])
EMA_NOISE = 0.01
TRANSFORMERS_4 = "4.57.6"      # the transformers whose .bin output text_encoder_bin reproduces
UNET_PREFIX = "model.diffusion_model."

# A CLIP-style BPE vocabulary of 32 tokens (CLIP's layout: characters, characters ending a word, merge results,
# then <|startoftext|>, <|endoftext|> last). "a photo of a cat" -> 7 tokens with no unknown. "!" is tokenizer_2's
# pad token, as in SDXL's tokenizer_2.
CHARS = ["!", "a", "c", "d", "g", "h", "o", "p", "s", "t",
         "!</w>", "a</w>", "f</w>", "g</w>", "o</w>", "s</w>", "t</w>"]
MERGES = [("p", "h"), ("o", "t"), ("ph", "ot"), ("phot", "o</w>"), ("o", "f</w>"), ("c", "a"), ("ca", "t</w>"),
          ("ca", "t"), ("cat", "s</w>"), ("d", "o"), ("do", "g</w>"), ("do", "g"), ("dog", "s</w>")]
VOCAB = CHARS + ["".join(pair) for pair in MERGES] + ["<|startoftext|>", "<|endoftext|>"]
BOS, EOS = len(VOCAB) - 2, len(VOCAB) - 1
PROMPT = "a photo of a cat"

# text_encoder: CLIP ViT-L's text model shape scaled down; text_encoder_2: OpenCLIP bigG's (gelu, projection).
# Widths 4 + 8 = the UNet's cross_attention_dim 12; projection 16 = the pooled width, and
# projection_class_embeddings_input_dim 64 = 16 + 6 time ids x addition_time_embed_dim 8.
TEXT = dict(vocab_size=len(VOCAB), hidden_size=4, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=TOKENS, hidden_act="quick_gelu", projection_dim=4,
            bos_token_id=BOS, eos_token_id=EOS, pad_token_id=EOS)
TEXT_2 = dict(TEXT, hidden_size=8, intermediate_size=32, num_attention_heads=4, hidden_act="gelu", projection_dim=16)
VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
           up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(4, 8), layers_per_block=1,
           latent_channels=4, norm_num_groups=2, sample_size=16, scaling_factor=0.13025)   # SDXL VAE scale
# stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json (the EulerDiscreteScheduler arguments)
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                 prediction_type="epsilon", interpolation_type="linear", use_karras_sigmas=False,
                 timestep_spacing="leading", steps_offset=1)
SCHEDULE_BUFFERS = ["betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                    "posterior_mean_coef1", "posterior_mean_coef2"]


def tiny_unet():
    """testdata/sdxl/tiny_base as a diffusers model holding the file's F16 tensors (not cast)."""
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(SDXL / "tiny_base.config.json"))
    reference = load_file(SDXL / "tiny_base.diffusers.safetensors")
    unet.half().load_state_dict(reference, strict=True)
    state = unet.state_dict()
    assert all(state[k].dtype == torch.float16 and torch.equal(state[k], reference[k]) for k in reference)
    return unet.eval(), reference


def tokenizers(folder):
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(VOCAB)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES))
    files = dict(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=TOKENS)
    tokenizer, tokenizer_2 = CLIPTokenizer(**files), CLIPTokenizer(**files, pad_token="!")
    assert tokenizer.bos_token_id == BOS and tokenizer.eos_token_id == EOS and tokenizer_2.pad_token_id == 0
    return tokenizer, tokenizer_2


def seeded(make, seed):
    torch.manual_seed(seed)
    return make().half().eval()


def check_tokens(tokenizer, tokenizer_2):
    ids = tokenizer(PROMPT).input_ids
    assert ids == [BOS] + [VOCAB.index(t) for t in ["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>"]] + [EOS], ids
    a, cat, pad = VOCAB.index("a</w>"), VOCAB.index("cat</w>"), VOCAB.index("!")
    assert tokenizer_2("a cat", padding="max_length", max_length=TOKENS).input_ids == [BOS, a, cat, EOS] + [pad] * 3


def check_pipeline_files(folder, unet_state, reference):
    unet_dir = folder / "unet"
    shards = [f"diffusion_pytorch_model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index_name = "diffusion_pytorch_model.safetensors.index.json"
    assert sorted(p.name for p in unet_dir.iterdir()) == sorted(["config.json", index_name] + shards)
    for name, weights in [("vae", "diffusion_pytorch_model.safetensors"), ("text_encoder", "model.safetensors"),
                          ("text_encoder_2", "model.safetensors")]:
        assert sorted(p.name for p in (folder / name).iterdir()) == sorted(["config.json", weights]), name
    assert (unet_dir / "config.json").read_bytes() == (SDXL / "tiny_base.config.json").read_bytes()
    index = json.loads((unet_dir / index_name).read_text())
    order = list(unet_state)
    runs, start = [], 0
    for shard in shards:
        tensors = load_file(unet_dir / shard)
        # the shards cut state-dict order into consecutive runs (safetensors sorts each file's header itself)
        assert set(tensors) == set(order[start:start + len(tensors)]), shard
        assert all(index["weight_map"][k] == shard for k in tensors)
        assert all(t.dtype == torch.float16 and torch.equal(t, reference[k]) for k, t in tensors.items())
        runs.append((shard, order[start:start + len(tensors)]))
        start += len(tensors)
    assert start == len(order) == len(reference) == len(index["weight_map"])
    return runs, index


def save_bin_like_transformers_4(model, folder, max_shard_size):
    """What transformers 4.57.6 writes for CLIPTextModel.save_pretrained(folder, safe_serialization=False,
    max_shard_size=...), byte for byte (checked once against the real 4.57.6, see testdata/folders/README.md):
    4.57's CLIPTextModel wraps a CLIPTextTransformer as .text_model, so its names are "text_model." + transformers
    5's; config.json is the same but for transformers_version; huggingface_hub's split_torch_state_dict_into_shards
    (filename_pattern "pytorch_model{suffix}.bin"), torch.save({name: tensor.contiguous()}) per shard, and the index
    {"metadata": {"total_parameters", "total_size"}, "weight_map"} as json.dumps(indent=2, sort_keys=True) + "\n"."""
    folder.mkdir(parents=True)
    model.config.save_pretrained(folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    assert config["transformers_version"] == transformers.__version__
    config["transformers_version"] = TRANSFORMERS_4
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    state = {"text_model." + k: v for k, v in model.state_dict().items()}
    split = split_torch_state_dict_into_shards(state, filename_pattern="pytorch_model{suffix}.bin",
                                               max_shard_size=max_shard_size)
    assert split.is_sharded
    index = {"metadata": {"total_parameters": model.num_parameters(), **split.metadata},
             "weight_map": split.tensor_to_filename}
    for shard_file, names in split.filename_to_tensors.items():
        torch.save({name: state[name].contiguous() for name in names}, folder / shard_file)
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return split


# run by the --transformers4-python interpreter: the real transformers 4.57.6 saving the same text encoder
REAL_4 = """import pathlib, sys
import transformers
from safetensors.torch import load_file
from transformers import CLIPTextConfig, CLIPTextModel
source, out, version, shard = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
assert transformers.__version__ == version, transformers.__version__
model = CLIPTextModel(CLIPTextConfig.from_pretrained(source)).half()
model.load_state_dict({"text_model." + k: v for k, v in load_file(source / "model.safetensors").items()}, strict=True)
model.save_pretrained(out, safe_serialization=False, max_shard_size=shard)
"""


def check_against_transformers_4(python, source, bin_dir):
    """The real transformers 4.57.6 (in another environment: it needs huggingface-hub < 1.0) writes bin_dir's bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        real = pathlib.Path(tmp) / bin_dir.name
        subprocess.run([python, "-c", REAL_4, str(source), str(real), TRANSFORMERS_4, BIN_SHARD], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        names = sorted(p.name for p in real.iterdir())
        assert names == sorted(p.name for p in bin_dir.iterdir()), names
        assert all((real / n).read_bytes() == (bin_dir / n).read_bytes() for n in names), "differs from 4.57.6"
    print(f"  text_encoder_bin: byte-identical to transformers {TRANSFORMERS_4}'s save_pretrained ({python})")


def schedule_buffers():
    """ldm's DDPM.register_schedule (v_posterior 0) for make_beta_schedule("linear", 1000, 0.00085, 0.012), which
    is the scaled-linear schedule: float64 numpy, stored as float32 tensors."""
    betas = (torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2).numpy()
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas, axis=0)
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    values = {
        "betas": betas, "alphas_cumprod": alphas_cumprod, "alphas_cumprod_prev": alphas_cumprod_prev,
        "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod), "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
        "log_one_minus_alphas_cumprod": np.log(1.0 - alphas_cumprod),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod - 1),
        "posterior_variance": posterior_variance,
        "posterior_log_variance_clipped": np.log(np.maximum(posterior_variance, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
        "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - alphas_cumprod),
    }
    assert list(values) == SCHEDULE_BUFFERS
    return {name: torch.tensor(v, dtype=torch.float32) for name, v in values.items()}


def ema_name(key):
    return "model_ema." + "".join(key.split(".")[1:])


def lightning_checkpoint(generator):
    full = load_file(SDXL / "tiny_base_full.safetensors")
    with safe_open(SDXL / "tiny_base_full.safetensors", "pt") as f:
        order = list(f.keys())     # safetensors' own (sorted) order
    state = {k: full[k] for k in order}
    state["model_ema.decay"] = torch.tensor(0.9999, dtype=torch.float32)
    state["model_ema.num_updates"] = torch.tensor(1234, dtype=torch.int32)
    ema = {}
    for key in order:
        if key.startswith(UNET_PREFIX):
            live = full[key]
            value = (live.float() + EMA_NOISE * torch.randn(live.shape, generator=generator)).to(live.dtype)
            assert not torch.equal(value, live), key
            ema[key] = value
            state[ema_name(key)] = value
    state.update(schedule_buffers())
    optimizer = {
        "state": {0: {"exp_avg": 1e-3 * torch.randn(8, generator=generator),
                      "exp_avg_sq": 1e-6 * torch.randn(8, generator=generator) ** 2,
                      "step": torch.tensor(1234.0)}},
        "param_groups": [{"lr": 1e-4, "params": [0]}],
    }
    checkpoint = {"state_dict": state, "optimizer_states": [optimizer], "lr_schedulers": [], "epoch": 7,
                  "global_step": 1234, "pytorch-lightning_version": "1.9.4"}
    return checkpoint, ema, len(order)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transformers4-python", metavar="PYTHON",
                        help=f"an interpreter with transformers {TRANSFORMERS_4} (and torch, safetensors): check "
                             "that it writes text_encoder_bin byte for byte")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():      # start clean (save_pretrained leaves stray files in place), keeping README.md
        if old.name != "README.md":
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    unet, reference = tiny_unet()
    unet_state = unet.state_dict()
    config = dict(unet.config)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, tokenizer_2 = tokenizers(pathlib.Path(tmp))
    text_encoder = seeded(lambda: CLIPTextModel(CLIPTextConfig(**TEXT)), SEED)
    text_encoder_2 = seeded(lambda: CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_2)), SEED + 1)
    vae = seeded(lambda: AutoencoderKL(**VAE), SEED + 2)
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet,
                                     scheduler=EulerDiscreteScheduler(**SCHEDULER), add_watermarker=False)
    pipe_dir = OUT / "sdxl_pipeline"
    pipe.save_pretrained(pipe_dir, safe_serialization=True, max_shard_size=PIPELINE_SHARD)
    runs, index = check_pipeline_files(pipe_dir, unet_state, reference)
    for shard, names in runs:
        print(f"  unet/{shard}: {len(names)} tensors, first {names[0]}, last {names[-1]}")
    print(f"sdxl_pipeline: max_shard_size {PIPELINE_SHARD}; unet index metadata {index['metadata']}")
    check_tokens(tokenizer, tokenizer_2)

    # the folder loads in diffusers and its parts fit together
    # (by default diffusers loads the UNet and VAE as fp32 and transformers 5 the text encoders in their stored
    # F16, which the pipeline's __call__ cannot mix on CPU: generate from an all-fp32 load)
    loaded = StableDiffusionXLPipeline.from_pretrained(pipe_dir, local_files_only=True)
    dtypes = [m.dtype for m in (loaded.unet, loaded.vae, loaded.text_encoder, loaded.text_encoder_2)]
    assert dtypes == [torch.float32, torch.float32, torch.float16, torch.float16], dtypes
    fp32 = StableDiffusionXLPipeline.from_pretrained(pipe_dir, local_files_only=True, torch_dtype=torch.float32)
    with torch.no_grad():
        embeds, _, pooled, _ = fp32.encode_prompt(PROMPT, do_classifier_free_guidance=False)
    assert list(embeds.shape) == [1, TOKENS, 12] and list(pooled.shape) == [1, 16], (embeds.shape, pooled.shape)
    image = fp32(PROMPT, height=16, width=16, num_inference_steps=2, guidance_scale=5.0, output_type="np",
                 generator=torch.Generator().manual_seed(SEED)).images
    assert image.shape == (1, 16, 16, 3) and np.isfinite(image).all()

    generator = torch.Generator().manual_seed(SEED + 3)
    inputs = {
        "sample": torch.randn(1, 4, 8, 8, generator=generator),
        "timestep": torch.tensor([500], dtype=torch.int64),
        "encoder_hidden_states": torch.randn(1, 3, 12, generator=generator),
        "text_embeds": torch.randn(1, 16, generator=generator),
        "time_ids": torch.tensor([[64, 64, 0, 0, 64, 64]], dtype=torch.float32),
    }

    def forward(model):
        added = {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}
        with torch.no_grad():
            return model(inputs["sample"], inputs["timestep"], inputs["encoder_hidden_states"],
                         added_cond_kwargs=added).sample.contiguous()

    assert loaded.unet.dtype == torch.float32
    noise_pred = forward(loaded.unet.eval())
    fresh = load_unet(SDXL / "tiny_base.config.json", SDXL / "tiny_base.diffusers.safetensors")
    assert torch.equal(noise_pred, forward(fresh)), "the pipeline's UNet differs from testdata/sdxl/tiny_base"
    std = noise_pred.std().item()
    metadata = {"model": "testdata/folders/sdxl_pipeline (StableDiffusionXLPipeline.from_pretrained(...).unet, fp32)",
                "weights": "testdata/folders/sdxl_pipeline/unet/"
                           "diffusion_pytorch_model-0000{1,2,3}-of-00003.safetensors",
                "noise_pred_std": repr(std), "made_by": "tools/testdata/folders.py",
                "torch": torch.__version__, "diffusers": diffusers.__version__}
    ref_path = OUT / "sdxl_pipeline_diffusers_ref.safetensors"
    ref_path.write_bytes(sorted_metadata(save({**inputs, "noise_pred": noise_pred}, metadata=metadata)))
    print(f"{ref_path.name}: noise_pred std {std:.6f}")

    # a sharded PyTorch set of the same text encoder
    bin_dir = OUT / "text_encoder_bin"
    split = save_bin_like_transformers_4(text_encoder, bin_dir, BIN_SHARD)
    assert sorted(p.name for p in bin_dir.iterdir()) == sorted(
        ["config.json", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin",
         "pytorch_model-00002-of-00002.bin"])
    te_state = text_encoder.state_dict()
    pipeline_te = load_file(pipe_dir / "text_encoder" / "model.safetensors")
    assert pipeline_te.keys() == te_state.keys()
    for shard_file, names in split.filename_to_tensors.items():
        shard = torch.load(bin_dir / shard_file, weights_only=True)
        assert list(shard) == names and all(torch.equal(shard[k], pipeline_te[k.removeprefix("text_model.")])
                                            for k in names)
        print(f"  text_encoder_bin/{shard_file}: {len(names)} tensors")
    reloaded_te, info = CLIPTextModel.from_pretrained(bin_dir, local_files_only=True, output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    assert reloaded_te.state_dict().keys() == te_state.keys()
    assert all(torch.equal(v.half(), te_state[k]) for k, v in reloaded_te.state_dict().items())
    print(f"text_encoder_bin: max_shard_size {BIN_SHARD}; {len(te_state)} tensors")
    if args.transformers4_python:
        check_against_transformers_4(args.transformers4_python, pipe_dir / "text_encoder", bin_dir)

    # the UNet in state-dict order
    order_path = OUT / "tiny_base.state_order.ckpt"
    torch.save(unet.state_dict(), order_path)
    back = torch.load(order_path, weights_only=True)
    assert list(back) == list(unet_state) and all(torch.equal(back[k], reference[k]) for k in reference)
    assert [n for _, names in runs for n in names] == list(back)
    print(f"{order_path.name}: {len(back)} tensors")

    # a Lightning checkpoint with EMA weights, and diffusers' extraction of them
    checkpoint, ema, n_full = lightning_checkpoint(torch.Generator().manual_seed(SEED + 4))
    ckpt_path = OUT / "tiny_full_ema.ckpt"
    torch.save(checkpoint, ckpt_path)
    back = torch.load(ckpt_path, weights_only=True)
    assert list(back) == list(checkpoint) and list(back["state_dict"]) == list(checkpoint["state_dict"])
    state = back["state_dict"]
    extracted = convert_ldm_unet_checkpoint(dict(state), config, extract_ema=True)
    live = convert_ldm_unet_checkpoint(dict(state), config)
    assert live.keys() == reference.keys() and all(torch.equal(live[k], reference[k]) for k in reference)
    assert extracted.keys() == reference.keys()
    assert all(not torch.equal(extracted[k], reference[k]) for k in reference)
    mapped = convert_ldm_unet_checkpoint(dict(ema), config)    # the perturbed values under diffusers names
    assert mapped.keys() == extracted.keys()
    assert all(extracted[k].dtype == torch.float16 and torch.equal(extracted[k], mapped[k]) for k in mapped)
    expected_path = OUT / "tiny_full_ema.expected_ema.diffusers.safetensors"
    save_file({k: v.contiguous() for k, v in extracted.items()}, expected_path)
    print(f"{ckpt_path.name}: {len(state)} state_dict tensors ({n_full} of tiny_base_full, 2 LitEma buffers, "
          f"{len(ema)} EMA copies, {len(SCHEDULE_BUFFERS)} schedule buffers); {expected_path.name}: "
          f"{len(extracted)} tensors")

    total = 0
    for path in sorted(OUT.rglob("*")):
        if path.is_file() and path.name != "README.md":
            total += path.stat().st_size
            print(f"  {path.relative_to(OUT)}: {path.stat().st_size} bytes")
    print(f"testdata/folders: {total} bytes; torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"transformers {transformers.__version__}, safetensors {safetensors.__version__}")


if __name__ == "__main__":
    main()
