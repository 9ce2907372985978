#!/usr/bin/env python3
"""An independent NumPy forward pass of the Llama family, in float64.

Reads weights only through the public `gguf` package (GGUFReader +
gguf.quants.dequantize) or `safetensors` (plus a few lines for bf16, which
safetensors' NumPy API lacks). Nothing here comes from the C++ side.

Supports RMSNorm, RoPE (theta, linear and Llama-3 scaling), GQA, SwiGLU,
tied/untied embeddings, Q/K/V bias (qwen2), causal attention over the whole
token list. Architectures: llama, mistral, qwen2.

RoPE layouts. Weights are used exactly as stored, and RoPE follows the layout:
  * GGUF llama/mistral: llama.cpp's converter permuted Q/K rows, so RoPE
    rotates adjacent pairs (x[2i], x[2i+1]) ("NORM" rope in llama.cpp).
  * GGUF qwen2 and every Hugging Face checkpoint: Q/K rows are in HF order, so
    RoPE rotates (x[i], x[i + d/2]) (HF rotate_half, llama.cpp "NEOX").
  Both rotate pair i by pos * theta^(-2i/d) (divided by the Llama-3 factor of
  pair i when present).

Usage as a script:
  llama_reference.py MODEL --tokens 1,2,3 [--out logits.f32] [--greedy N]
"""
import argparse
import json
import os
import struct
import sys
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Config:
    arch: str
    n_layers: int
    d_model: int
    d_ff: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int
    rms_eps: float
    rope_theta: float
    rope_style: str               # "pairs" (adjacent) or "halves" (rotate_half / NEOX)
    rope_linear: float = 1.0      # positions are divided by this (linear scaling)
    rope_factors: np.ndarray = None  # per-pair frequency divisors (Llama-3), or None
    qkv_bias: bool = False


@dataclass
class Model:
    config: Config
    w: dict                                   # llama.cpp names -> float64 arrays, [out, in]
    types: dict = field(default_factory=dict)  # llama.cpp names -> stored type name ("F32", "Q4_K", ...)


# ---------------------------------------------------------------- loading: GGUF

def load_gguf(path):
    from gguf import GGUFReader, GGMLQuantizationType
    from gguf.quants import dequantize

    r = GGUFReader(path)

    def kv(key, default=None):
        f = r.fields.get(key)
        return default if f is None else f.contents()

    arch = kv("general.architecture")
    p = arch + "."
    w, types = {}, {}
    for t in r.tensors:
        # GGUF lists dims innermost first; the reader's arrays are [rows, row bytes or elems],
        # and dequantize returns [rows, cols] = [out, in].
        a = dequantize(t.data, t.tensor_type) if t.tensor_type not in (
            GGMLQuantizationType.F32, GGMLQuantizationType.F16) else np.asarray(t.data)
        w[t.name.removesuffix(".weight")] = a.astype(np.float64).reshape([int(x) for x in reversed(t.shape)])
        types[t.name.removesuffix(".weight")] = t.tensor_type.name
    n_heads = int(kv(p + "attention.head_count"))
    d_model = int(kv(p + "embedding_length"))
    head_dim = int(kv(p + "attention.key_length", d_model // n_heads))
    rope_linear = 1.0
    if kv(p + "rope.scaling.type", "none") == "linear":
        rope_linear = float(kv(p + "rope.scaling.factor"))
    cfg = Config(
        arch=arch, n_layers=int(kv(p + "block_count")), d_model=d_model,
        d_ff=int(kv(p + "feed_forward_length")), n_heads=n_heads,
        n_kv_heads=int(kv(p + "attention.head_count_kv", n_heads)), head_dim=head_dim,
        vocab=w["token_embd"].shape[0], rms_eps=float(kv(p + "attention.layer_norm_rms_epsilon")),
        rope_theta=float(kv(p + "rope.freq_base", 10000.0)),
        rope_style="halves" if arch == "qwen2" else "pairs", rope_linear=rope_linear,
        rope_factors=w.get("rope_freqs"), qkv_bias="blk.0.attn_q.bias" in w)
    return Model(cfg, w, types)


# ---------------------------------------------------------------- loading: Hugging Face

def _read_safetensors(path):
    """name -> (np.ndarray float64, dtype string). bf16 by hand: safetensors.numpy has no bf16."""
    from safetensors import safe_open

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    out = {}
    bf16 = [k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "BF16"]
    if len(bf16) < len(header) - ("__metadata__" in header):
        with safe_open(path, framework="numpy") as f:
            for k in f.keys():
                if k not in bf16:
                    out[k] = (f.get_tensor(k).astype(np.float64), header[k]["dtype"])
    if bf16:
        raw = np.memmap(path, dtype=np.uint8, mode="r")
        for k in bf16:
            b, e = header[k]["data_offsets"]
            bits = np.frombuffer(raw[8 + n + b:8 + n + e].tobytes(), dtype="<u2").astype(np.uint32) << 16
            out[k] = (bits.view(np.float32).astype(np.float64).reshape(header[k]["shape"]), "BF16")
    return out


HF_NAMES = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
            "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
            "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
            "mlp.down_proj": "ffn_down"}


def hf_to_gguf_name(name):
    name = name.removesuffix(".weight")
    if name == "model.embed_tokens":
        return "token_embd"
    if name == "model.norm":
        return "output_norm"
    if name == "lm_head":
        return "output"
    parts = name.split(".")  # model.layers.N.<module>[.bias]
    bias = parts[-1] == "bias"
    module = ".".join(parts[3:-1] if bias else parts[3:])
    return f"blk.{parts[2]}.{HF_NAMES[module]}" + (".bias" if bias else "")


def llama3_inv_freq(inv_freq, rs):
    """transformers' _compute_llama3_parameters, on inverse frequencies."""
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    wavelen = 2 * np.pi / inv_freq
    out = np.where(wavelen > old / lo, inv_freq / factor, inv_freq)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = (wavelen >= old / hi) & (wavelen <= old / lo)
    return np.where(medium, smoothed, out)


def load_hf(directory):
    with open(os.path.join(directory, "config.json")) as f:
        c = json.load(f)
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    w, types = {}, {}
    for fn in files:
        for name, (a, dt) in _read_safetensors(os.path.join(directory, fn)).items():
            w[hf_to_gguf_name(name)] = a
            types[hf_to_gguf_name(name)] = dt
    arch = c.get("model_type", "llama")
    n_heads = c["num_attention_heads"]
    head_dim = c.get("head_dim") or c["hidden_size"] // n_heads
    theta = float(c.get("rope_theta", 10000.0))
    rope_linear, factors = 1.0, None
    rs = c.get("rope_scaling") or {}
    rtype = rs.get("rope_type", rs.get("type"))
    if rtype == "llama3":
        inv = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
        factors = inv / llama3_inv_freq(inv, rs)
    elif rtype == "linear":
        rope_linear = float(rs["factor"])
    elif rtype not in (None, "default"):
        raise NotImplementedError(f"rope_scaling {rtype}")
    cfg = Config(
        arch=arch, n_layers=c["num_hidden_layers"], d_model=c["hidden_size"], d_ff=c["intermediate_size"],
        n_heads=n_heads, n_kv_heads=c.get("num_key_value_heads", n_heads), head_dim=head_dim,
        vocab=c["vocab_size"], rms_eps=float(c["rms_norm_eps"]), rope_theta=theta, rope_style="halves",
        rope_linear=rope_linear, rope_factors=factors, qkv_bias="blk.0.attn_q.bias" in w)
    return Model(cfg, w, types)


def load(path):
    return load_hf(path) if os.path.isdir(path) else load_gguf(path)


# ---------------------------------------------------------------- the forward pass

def rms_norm(x, g, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope(x, positions, cfg):
    """x: [n, heads, head_dim]. Rotates pair i of each head by pos * theta^(-2i/d) / factor_i."""
    d = cfg.head_dim
    inv_freq = cfg.rope_theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    if cfg.rope_factors is not None:
        inv_freq = inv_freq / cfg.rope_factors
    ang = (positions[:, None] / cfg.rope_linear) * inv_freq[None, :]  # [n, d/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    if cfg.rope_style == "pairs":
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., : d // 2], x[..., d // 2:]
    ra, rb = a * cos - b * sin, a * sin + b * cos
    out = np.empty_like(x)
    if cfg.rope_style == "pairs":
        out[..., 0::2], out[..., 1::2] = ra, rb
    else:
        out[..., : d // 2], out[..., d // 2:] = ra, rb
    return out


def round_activations(x, weight_type):
    """What a llama.cpp-style CPU kernel does to the activations before a dot product
    with weights of this type: 8-bit blocks (scale = max|x| / 127; 32 per block, 256
    for k-quants) for quantized weights, f16 or bf16 for F16/BF16 weights. Used only
    to estimate how far a correct engine may be from the exact reference."""
    if weight_type == "F32":
        return x
    if weight_type == "F16":
        return x.astype(np.float16).astype(np.float64)
    if weight_type == "BF16":
        bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
        bits = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32)
        return bits.view(np.float32).astype(np.float64)
    block = 256 if weight_type.endswith("_K") else 32
    n, k = x.shape
    xb = x.reshape(n, k // block, block)
    scale = np.abs(xb).max(axis=-1, keepdims=True) / 127.0
    scale = np.where(scale == 0, 1.0, scale)
    return (np.round(xb / scale) * scale).reshape(n, k)


def forward(model, tokens, act_quant=False, kv_f16=False):
    """Logits [len(tokens), vocab] for every position of a token list (positions 0..n-1).

    act_quant: round activations before each matmul as llama.cpp-style kernels do
               (round_activations).
    kv_f16:    round K and V to float16 as an f16 KV cache does.
    """
    cfg, w = model.config, model.w
    tokens = np.asarray(tokens, dtype=np.int64)
    n = len(tokens)
    pos = np.arange(n, dtype=np.float64)

    def linear(x, name):
        if act_quant:
            x = round_activations(x, model.types.get(name, "F32"))
        y = x @ w[name].T
        if name + ".bias" in w:
            y = y + w[name + ".bias"]
        return y

    x = w["token_embd"][tokens]                      # [n, d_model]
    hd, nh, nkv = cfg.head_dim, cfg.n_heads, cfg.n_kv_heads
    causal = np.triu(np.full((n, n), -np.inf), k=1)
    for i in range(cfg.n_layers):
        p = f"blk.{i}."
        h = rms_norm(x, w[p + "attn_norm"], cfg.rms_eps)
        q = rope(linear(h, p + "attn_q").reshape(n, nh, hd), pos, cfg)
        k = rope(linear(h, p + "attn_k").reshape(n, nkv, hd), pos, cfg)
        v = linear(h, p + "attn_v").reshape(n, nkv, hd)
        if kv_f16:
            k, v = k.astype(np.float16).astype(np.float64), v.astype(np.float16).astype(np.float64)
        att = np.empty((n, nh, hd))
        for head in range(nh):
            kvh = head // (nh // nkv)                 # GQA: consecutive query heads share a KV head
            s = q[:, head] @ k[:, kvh].T / np.sqrt(hd) + causal
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            att[:, head] = (s / s.sum(axis=-1, keepdims=True)) @ v[:, kvh]
        x = x + linear(att.reshape(n, nh * hd), p + "attn_output")
        h = rms_norm(x, w[p + "ffn_norm"], cfg.rms_eps)
        gate = linear(h, p + "ffn_gate")
        x = x + linear(gate / (1 + np.exp(-gate)) * linear(h, p + "ffn_up"), p + "ffn_down")
    x = rms_norm(x, w["output_norm"], cfg.rms_eps)
    out = "output" if "output" in w else "token_embd"  # tied embeddings
    return linear(x, out)


def greedy(model, prompt, n_new):
    """Greedy continuation; also the top-1 minus top-2 logit gap at each step."""
    ids, gaps = list(prompt), []
    for _ in range(n_new):
        last = forward(model, ids)[-1]
        top2 = np.sort(last)[-2:]
        gaps.append(float(top2[1] - top2[0]))
        ids.append(int(np.argmax(last)))
    return ids[len(prompt):], gaps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--out", help="write raw little-endian f32 logits [n_tokens, vocab] here")
    ap.add_argument("--greedy", type=int, default=0, help="also print N greedy tokens")
    a = ap.parse_args()
    model = load(a.model)
    tokens = [int(t) for t in a.tokens.split(",") if t]
    logits = forward(model, tokens)
    if a.out:
        logits.astype("<f4").tofile(a.out)
    last = logits[-1]
    print("argmax of the last position:", int(np.argmax(last)), "top-5:", np.argsort(last)[::-1][:5].tolist())
    if a.greedy:
        print("greedy:", " ".join(map(str, greedy(model, tokens, a.greedy)[0])))


if __name__ == "__main__":
    sys.exit(main())
