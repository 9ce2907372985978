"""E4M3 reference for kv_quant_test: ml_dtypes.float8_e4m3fn (OCP E4M3).

usage: e4m3_reference.py IN.f32 OUT_CODES.u8 OUT_TABLE.f32
Reads little-endian f32 values, writes their E4M3 codes (round to nearest
even; inputs are clamped to +-448 first because ml_dtypes does not saturate,
NaN stays NaN) and the f32 value of each of the 256 codes.
"""
import sys

import ml_dtypes
import numpy as np

x = np.fromfile(sys.argv[1], dtype="<f4")
clamped = np.where(np.isnan(x), x, np.clip(x, -448.0, 448.0))
codes = clamped.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
codes.tofile(sys.argv[2])
table = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float32)
table.astype("<f4").tofile(sys.argv[3])
