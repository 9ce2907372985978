"""Writes random valid blocks of each weight type and their dequantization by
the gguf Python package (an implementation independent of ours).

usage: gen_dequant_reference.py OUT_DIR
For each type NAME writes OUT_DIR/NAME.bin (raw blocks, one row) and
OUT_DIR/NAME.f32 (gguf.quants.dequantize of it, float32 little-endian).
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

rng = np.random.default_rng(20240607)
out = sys.argv[1]


def f16_scales(n, lo=1e-4, hi=0.1):
    mags = rng.uniform(lo, hi, n) * rng.choice([-1.0, 1.0], n)
    return mags.astype(np.float16).view(np.uint8).reshape(n, 2)


def random_blocks(qtype, n_blocks, f16_offsets):
    block_size, block_bytes = GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, (n_blocks, block_bytes), dtype=np.uint8)
    for off in f16_offsets:
        b[:, off:off + 2] = f16_scales(n_blocks)
    return b.reshape(-1)


def write(name, qtype, data):
    data = np.ascontiguousarray(data, dtype=np.uint8).reshape(1, -1)
    deq = dequantize(data, qtype).astype(np.float32).reshape(-1)
    data.tofile(f"{out}/{name}.bin")
    deq.tofile(f"{out}/{name}.f32")


# Plain types: random finite bit patterns (subnormals included).
f32 = rng.standard_normal(1024).astype(np.float32) * np.float32(3.0)
write("F32", T.F32, f32.view(np.uint8))
h = rng.integers(0, 1 << 16, 4096, dtype=np.uint16)
h = h[((h >> 10) & 0x1F) != 0x1F][:2048]
write("F16", T.F16, h.view(np.uint8))
bf = rng.integers(0, 1 << 16, 4096, dtype=np.uint16)
bf = bf[((bf >> 7) & 0xFF) != 0xFF][:2048]
write("BF16", T.BF16, bf.view(np.uint8))

# 32-value types: half quantized by gguf from random floats, half random bytes.
for name, qtype, offs in (("Q8_0", T.Q8_0, [0]), ("Q4_0", T.Q4_0, [0]), ("Q4_1", T.Q4_1, [0, 2])):
    x = (rng.standard_normal((1, 1024)) * 2.0).astype(np.float32)
    q = quantize(x, qtype).reshape(-1)
    write(name, qtype, np.concatenate([q, random_blocks(qtype, 32, offs)]))

# k-quants: random bytes with sane f16 super-block scales.
write("Q4_K", T.Q4_K, random_blocks(T.Q4_K, 16, [0, 2]))
write("Q5_K", T.Q5_K, random_blocks(T.Q5_K, 16, [0, 2]))
write("Q6_K", T.Q6_K, random_blocks(T.Q6_K, 16, [208]))
