#!/usr/bin/env python3
"""Makes testdata/safetensors/: files written by the real safetensors library, the same tensors converted
by PyTorch to other dtypes (expected `bfq convert` output, byte for byte), and statistics from numpy/scipy
(expected `bfq stats` values). Developers run it; CI only reads its output.

    python3 tools/testdata/safetensors_cases.py
"""
import json
import pathlib

import numpy as np
import scipy.stats
import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "safetensors"


def tensors():
    torch.manual_seed(1234)
    g = torch.Generator().manual_seed(1234)
    heavy = torch.distributions.StudentT(3.0).sample((16, 24)) * 0.05
    t = {
        "f32.heavy": heavy.float(),
        "f32.special": torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 70000.0, 1e-8, 5.96e-8, 3.0e-5, float("inf"),
                                     float("-inf"), float("nan"), 1.00048828125, 1.0009765625, -3.14159265]),
        "f64.normal": torch.randn(7, 5, generator=g, dtype=torch.float64),
        "f16.normal": torch.randn(33, generator=g).half(),
        "bf16.normal": torch.randn(4, 9, generator=g).bfloat16(),
        "i64.range": torch.arange(-5, 7, dtype=torch.int64).reshape(3, 4),
        "i32.values": torch.tensor([[-2147483648, 0, 2147483647]], dtype=torch.int32),
        "i16.values": torch.tensor([-32768, 1, 32767], dtype=torch.int16),
        "i8.values": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8.values": torch.tensor([0, 1, 255], dtype=torch.uint8),
        "bool.mask": torch.tensor([[True, False], [False, True]]),
        "scalar.f32": torch.tensor(3.5),
        "empty.f32": torch.zeros(0, 4),
        "f8e4m3.values": torch.tensor([0.0, 0.5, -1.75, 448.0, 0.001953125]).to(torch.float8_e4m3fn),
        "f8e5m2.values": torch.tensor([0.0, 0.5, -1.75, 57344.0, 1.52587890625e-05]).to(torch.float8_e5m2),
        "model.diffusion_model.out.2.weight": torch.randn(4, 8, 3, 3, generator=g),
    }
    return t


def stats(x: torch.Tensor):
    v = x.to(torch.float64).numpy().reshape(-1) if x.dtype != torch.bool else x.numpy().astype(np.float64).reshape(-1)
    finite = v[np.isfinite(v)]
    out = {"count": int(v.size), "nan_count": int(np.isnan(v).sum()), "inf_count": int(np.isinf(v).sum()),
           "zero_fraction": float((v == 0).sum() / v.size) if v.size else None}
    if finite.size:
        out.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()),
                   std=float(finite.std()), absmax=float(np.abs(finite).max()))
        const = finite.size < 2 or float(finite.std()) == 0.0
        out["skewness"] = None if const else float(scipy.stats.skew(finite))
        out["kurtosis"] = None if const else float(scipy.stats.kurtosis(finite))
    else:
        out.update(min=None, max=None, mean=None, std=None, absmax=None, skewness=None, kurtosis=None)
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    t = tensors()
    save_file(t, OUT / "dtypes.safetensors", metadata={"source": "tools/testdata/safetensors_cases.py"})
    for name, dtype in [("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)]:
        conv = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in t.items()}
        save_file(conv, OUT / f"dtypes.as_{name}.safetensors", metadata={"source": "tools/testdata/safetensors_cases.py"})
    # The same tensors without metadata: byte-exact expectation for the writer.
    save_file(t, OUT / "dtypes.nometa.safetensors")
    expected = {k: stats(v) for k, v in t.items()}
    (OUT / "dtypes.stats.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
