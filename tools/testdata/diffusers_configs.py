#!/usr/bin/env python3
"""Full-size UNet config.json files exactly as diffusers writes them, for bfq's config-reading tests.

For each published UNet config (the dicts already used by unet_naming.py and sdxl_naming.py, imported from
there) builds UNet2DConditionModel on torch's "meta" device (no weights) and writes the bytes of its
save_config() to testdata/configs/M.config.json:

  sd15           runwayml/stable-diffusion-v1-5 unet/config.json          (unet_naming.SD15)
  sd21           stabilityai/stable-diffusion-2-1 unet/config.json        (unet_naming.SD2)
  sdxl_base      stabilityai/stable-diffusion-xl-base-1.0 unet/config.json    (sdxl_naming.SDXL_BASE)
  sdxl_refiner   stabilityai/stable-diffusion-xl-refiner-1.0 unet/config.json (sdxl_naming.SDXL_REFINER)
  ssd1b          segmind/SSD-1B                                           (sdxl_naming.SSD1B)
  vega           segmind/Segmind-Vega                                     (sdxl_naming.VEGA)

The script asserts, for each model:
  - the file is json.dumps(config, indent=2, sort_keys=True) + "\\n" (what ConfigMixin.to_json_string returns);
  - the meta model's state-dict [name, shape] list equals the committed shapes file for that model
    (sd15 through the diffusers -> ldm name map testdata/unet/sd15_diffusers_to_ldm.tsv, because the shared
    SD-v1.5 shapes list is in ldm naming);
  - UNet2DConditionModel.from_config(the written file) rebuilds the same state-dict shapes and saves the same bytes.

Usage: python3 tools/testdata/diffusers_configs.py
"""
import json
import os
import sys
import tempfile

import torch
from diffusers import UNet2DConditionModel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sdxl_naming  # noqa: E402  (imports only: the generators run under main())
import unet_naming  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
TESTDATA = os.path.join(ROOT, "testdata")
OUT = os.path.join(TESTDATA, "configs")

# name: (config dict, shapes file under testdata/, name map diffusers -> shapes-file naming or None)
MODELS = {
    "sd15": (unet_naming.SD15, "unet/sd15_unet_shapes.ldm.json", "unet/sd15_diffusers_to_ldm.tsv"),
    "sd21": (unet_naming.SD2, "unet/sd2_unet_shapes.diffusers.json", None),
    "sdxl_base": (sdxl_naming.SDXL_BASE, "sdxl/sdxl_base_shapes.diffusers.json", None),
    "sdxl_refiner": (sdxl_naming.SDXL_REFINER, "sdxl/sdxl_refiner_shapes.diffusers.json", None),
    "ssd1b": (sdxl_naming.SSD1B, "sdxl/ssd1b_shapes.diffusers.json", None),
    "vega": (sdxl_naming.VEGA, "sdxl/vega_shapes.diffusers.json", None),
}


def build(config):
    with torch.device("meta"):
        return UNet2DConditionModel(**config)


def saved_bytes(unet):
    with tempfile.TemporaryDirectory() as tmp:
        unet.save_config(tmp)
        assert os.listdir(tmp) == ["config.json"], os.listdir(tmp)
        with open(os.path.join(tmp, "config.json"), "rb") as f:
            return f.read()


def shapes(unet, name_map):
    """[name, shape] in state-dict order, names translated through name_map if given."""
    rows = [[k, list(v.shape)] for k, v in unet.state_dict().items()]
    if name_map is not None:
        rows = [[name_map[k], s] for k, s in rows]
    return rows


def main():
    os.makedirs(OUT, exist_ok=True)
    for model, (config, shapes_file, map_file) in MODELS.items():
        unet = build(config)
        data = saved_bytes(unet)
        text = data.decode("utf-8")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n", model

        name_map = None
        if map_file is not None:
            with open(os.path.join(TESTDATA, map_file)) as f:
                name_map = dict(line.rstrip("\n").split("\t") for line in f)
        with open(os.path.join(TESTDATA, shapes_file)) as f:
            expected = json.load(f)
        got = shapes(unet, name_map)
        if map_file is None:
            assert got == expected, (model, shapes_file)
        else:  # the shared ldm list is in diffusers state-dict order too; compare as a mapping and in order
            assert dict((n, tuple(s)) for n, s in got) == dict((n, tuple(s)) for n, s in expected), model
            assert [n for n, _ in got] == [n for n, _ in expected], model

        # The written file rebuilds the same model and saves the same bytes.
        with torch.device("meta"):
            again = UNet2DConditionModel.from_config(json.loads(text))
        assert shapes(again, name_map) == got, model
        assert saved_bytes(again) == data, model

        path = os.path.join(OUT, f"{model}.config.json")
        with open(path, "wb") as f:
            f.write(data)
        print(f"{model}: {len(data)} bytes, {len(got)} tensors match {shapes_file}")


if __name__ == "__main__":
    main()
