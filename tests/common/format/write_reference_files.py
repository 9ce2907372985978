#!/usr/bin/env python3
"""Writes GGUF and safetensors files with the reference Python packages
(gguf.GGUFWriter, safetensors.numpy) plus expected.json describing what a
correct reader must see. Used by reference_files_test.cc as an independent
cross-check of the C++ readers: the files are produced by code we did not
write.

Usage: write_reference_files.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType, GGUFValueType
from gguf.quants import quantize
from safetensors.numpy import save_file


def f32(x):
    # The value a float32 field really holds, as a Python float (exact double).
    return float(np.float32(x))


def write_gguf(out_dir, file_name, alignment):
    path = os.path.join(out_dir, file_name)
    w = gguf.GGUFWriter(path, arch="llama")
    meta = {"general.architecture": {"kind": "string", "value": "llama"}}

    def kv(key, value, vtype, kind, expected=None, sub_type=None):
        w.add_key_value(key, value, vtype, sub_type=sub_type)
        meta[key] = {"kind": kind, "value": value if expected is None else expected}

    kv("test.u8", 250, GGUFValueType.UINT8, "int")
    kv("test.i8", -7, GGUFValueType.INT8, "int")
    kv("test.u16", 65000, GGUFValueType.UINT16, "int")
    kv("test.i16", -32000, GGUFValueType.INT16, "int")
    kv("test.u32", 4000000000, GGUFValueType.UINT32, "int")
    kv("test.i32", -123456789, GGUFValueType.INT32, "int")
    kv("test.u64", 2**53 + 1, GGUFValueType.UINT64, "int")
    kv("test.i64", -(2**60), GGUFValueType.INT64, "int")
    kv("test.f32", 0.1, GGUFValueType.FLOAT32, "float", f32(0.1))
    kv("test.f64", 2.0 / 3.0, GGUFValueType.FLOAT64, "float")
    kv("test.bool_true", True, GGUFValueType.BOOL, "bool")
    kv("test.bool_false", False, GGUFValueType.BOOL, "bool")
    kv("test.string", "héllo wörld ✓", GGUFValueType.STRING, "string")
    kv("test.string_array", ["<s>", "</s>", "", "▁the", "\n"], GGUFValueType.ARRAY, "string_array")
    kv("test.i32_array", [1, -2, 3], GGUFValueType.ARRAY, "int_array", sub_type=GGUFValueType.INT32)
    kv("test.u8_array", [0, 128, 255], GGUFValueType.ARRAY, "int_array", sub_type=GGUFValueType.UINT8)
    kv("test.u64_array", [2**40, 7], GGUFValueType.ARRAY, "int_array", sub_type=GGUFValueType.UINT64)
    kv("test.i16_array", [-5, 5], GGUFValueType.ARRAY, "int_array", sub_type=GGUFValueType.INT16)
    vals = [0.5, -1.25, 3.1]
    kv("test.f32_array", vals, GGUFValueType.ARRAY, "float_array", [f32(v) for v in vals],
       sub_type=GGUFValueType.FLOAT32)
    kv("test.f64_array", vals, GGUFValueType.ARRAY, "float_array", [f32(v) for v in vals],
       sub_type=GGUFValueType.FLOAT64)
    if alignment != 32:
        w.add_custom_alignment(alignment)
        meta["general.alignment"] = {"kind": "int", "value": alignment}

    rng = np.random.default_rng(1234)
    tensors = []

    def add(name, array, raw_dtype=None, ggml_type=None, elem_shape=None):
        w.add_tensor(name, array, raw_dtype=raw_dtype)
        shape = list(elem_shape if elem_shape is not None else array.shape)
        tensors.append({
            "name": name,
            "type": int(ggml_type),
            "shape": list(reversed(shape)),  # GGML order: innermost first
            "hex": array.tobytes().hex(),
        })

    a = rng.standard_normal((3, 5)).astype(np.float32)
    add("f32.weight", a, ggml_type=GGMLQuantizationType.F32)
    b = rng.standard_normal((2, 4, 6)).astype(np.float16)
    add("f16.weight", b, ggml_type=GGMLQuantizationType.F16)
    c = rng.standard_normal((4, 64)).astype(np.float32)
    q8 = quantize(c, GGMLQuantizationType.Q8_0)
    add("q8_0.weight", q8, raw_dtype=GGMLQuantizationType.Q8_0, ggml_type=GGMLQuantizationType.Q8_0,
        elem_shape=c.shape)
    d = rng.standard_normal((2, 32)).astype(np.float32)
    q40 = quantize(d, GGMLQuantizationType.Q4_0)
    add("q4_0.weight", q40, raw_dtype=GGMLQuantizationType.Q4_0, ggml_type=GGMLQuantizationType.Q4_0,
        elem_shape=d.shape)
    e = rng.standard_normal((7,)).astype(np.float32)
    add("bias", e, ggml_type=GGMLQuantizationType.F32)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"file": file_name, "version": 3, "alignment": alignment, "metadata": meta, "tensors": tensors}


def describe_safetensors(tensors):
    return [{"name": k, "dtype": str(v.dtype), "shape": list(v.shape), "hex": v.tobytes().hex()}
            for k, v in sorted(tensors.items())]


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    expected = {"gguf": [write_gguf(out_dir, "ref.gguf", 32), write_gguf(out_dir, "ref_align64.gguf", 64)]}

    rng = np.random.default_rng(99)
    single = {
        "model.embed_tokens.weight": rng.standard_normal((6, 4)).astype(np.float32),
        "model.norm.weight": rng.standard_normal((4,)).astype(np.float16),
        "position_ids": np.arange(5, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(3, dtype=np.uint8),
        "scalar": np.array(2.5, dtype=np.float32),
    }
    save_file(single, os.path.join(out_dir, "single.safetensors"), metadata={"format": "pt"})
    expected["single"] = {"file": "single.safetensors", "tensors": describe_safetensors(single)}

    # A two-shard Hugging Face checkpoint with an index.
    hf_dir = os.path.join(out_dir, "hf")
    os.makedirs(hf_dir, exist_ok=True)
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump({"architectures": ["LlamaForCausalLM"], "hidden_size": 8}, f)
    shards = {
        "model-00001-of-00002.safetensors": {
            "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((8, 8)).astype(np.float32),
            "model.layers.0.mlp.up_proj.weight": rng.standard_normal((16, 8)).astype(np.float16),
        },
        "model-00002-of-00002.safetensors": {
            "lm_head.weight": rng.standard_normal((10, 8)).astype(np.float32),
        },
    }
    weight_map = {}
    all_tensors = {}
    for shard, tensors in shards.items():
        save_file(tensors, os.path.join(hf_dir, shard))
        for name in tensors:
            weight_map[name] = shard
        all_tensors.update(tensors)
    with open(os.path.join(hf_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(t.nbytes for t in all_tensors.values())},
                   "weight_map": weight_map}, f, indent=2)
    expected["hf"] = {"dir": "hf", "tensors": describe_safetensors(all_tensors)}

    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
