#!/usr/bin/env python3
"""The peer of `bfq convert IN.gguf OUT.safetensors --dtype f16` for tools/bench_gguf.sh: gguf-py reads the GGUF file,
`gguf.quants.dequantize` decodes every tensor (numpy), the safetensors library writes them as fp16.

    python3 tools/gguf_to_safetensors.py IN.gguf OUT.safetensors
"""
import sys

import gguf
import numpy as np
from safetensors.numpy import save_file


def main():
    reader = gguf.GGUFReader(sys.argv[1])
    tensors = {}
    for tensor in reader.tensors:
        shape = [int(d) for d in reversed(tensor.shape.tolist())]
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        tensors[tensor.name] = np.ascontiguousarray(values.reshape(shape).astype(np.float16))
    save_file(tensors, sys.argv[2])


if __name__ == "__main__":
    main()
