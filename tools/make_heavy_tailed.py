#!/usr/bin/env python3
"""Writes bench/heavy_tailed.safetensors (never committed): three seeded 4096 x 4096 f32 test matrices for the
quantizer comparison with llama.cpp's ggml quantizers (README): Student-t with 3 degrees of freedom (seed 1),
Laplace(0, 1) (seed 2), and a standard normal with 1% of its entries multiplied by 10 (seed 3). Each is drawn in
float64 with numpy's default_rng and cast to float32; the SHA-256 of each matrix's bytes is printed so the peer
harness can be fed exactly the same values.

    python3 tools/make_heavy_tailed.py [OUT_DIR]
"""
import hashlib
import pathlib
import sys

import numpy as np
from safetensors.numpy import save_file

SIZE = (4096, 4096)


def gauss_outliers(rng):
    w = rng.standard_normal(SIZE)
    w[rng.random(SIZE) < 0.01] *= 10.0
    return w


MATRICES = {
    "student_t3": lambda: np.random.default_rng(1).standard_t(3, size=SIZE),
    "laplace": lambda: np.random.default_rng(2).laplace(0.0, 1.0, size=SIZE),
    "gauss_outliers": lambda: gauss_outliers(np.random.default_rng(3)),
}


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[1] / "bench")
    out.mkdir(parents=True, exist_ok=True)
    tensors = {name: make().astype("<f4") for name, make in MATRICES.items()}
    for name, w in tensors.items():
        print(name, hashlib.sha256(w.tobytes()).hexdigest())
    save_file(tensors, str(out / "heavy_tailed.safetensors"))


if __name__ == "__main__":
    main()
