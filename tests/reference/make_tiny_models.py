#!/usr/bin/env python3
"""Writes tiny random-weight Llama-family models for the reference tests.

  make_tiny_models.py OUTDIR

Everything comes from fixed seeds, so two runs write identical files. The files
are written only with the public Python packages (gguf.GGUFWriter,
gguf.quants, tokenizers) and a few lines of safetensors framing; nothing here
comes from the C++ side.

OUTDIR/models.json lists every model:
  {"name", "path", "format": "gguf"|"hf", "weight_type", "arch",
   "same_as": name of a GGUF model with the same weights (HF checkpoints) or null,
   "tolerance_class": the row of the tolerance table in docs/correctness.md}

Layout conventions (those of llama.cpp's convert_hf_to_gguf.py):
  * Weights are made in Hugging Face layout first: Linear weight [out, in],
    Q/K rows of each head ordered [first half | second half] for HF's
    rotate_half RoPE.
  * GGUF llama files store Q/K permuted (LlamaModel.permute) so that RoPE
    rotates adjacent pairs (2i, 2i+1) (llama.cpp rope type NORM). qwen2 GGUF
    files store Q/K unpermuted (rope type NEOX), as the converter does.
  * Llama-3 RoPE scaling: GGUF gets a rope_freqs.weight tensor of per-pair
    frequency divisors computed like the converter; HF gets config.json
    rope_scaling {"rope_type": "llama3", ...}.
"""
import json
import os
import re
import struct
import sys
from collections import Counter

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize, dequantize

# ---------------------------------------------------------------- tokenizer

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2 as in SmolLM2
BOS_ID, EOS_ID = 1, 2
N_MERGES = 125  # vocab = 3 specials + 256 bytes + 125 merges = 384
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = """The quick brown fox jumps over the lazy dog. A tiny model learns nothing, but it
can still be tested: the same tokens must give the same logits in every engine. In 1969 the
first people walked on the moon; in 2024 there were 8 billion of us. def main(): return 42
Once upon a time, in a small village by the sea, there lived an old fisherman and his wife.
They were poor, and they were happy, and every morning the fisherman went out to sea."""


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def train_bpe(text, n_merges):
    """Deterministic byte-level BPE: most frequent pair first, ties by the pair itself."""
    b2u = bytes_to_unicode()
    # Pre-tokenize like the 'smollm' pre-tokenizer: digits alone, then GPT-2's word split.
    words = re.findall(r"\d| ?[A-Za-z]+| ?[^\sA-Za-z\d]+|\s+(?!\S)|\s+", text)
    counts = Counter(tuple(b2u[b] for b in w.encode("utf-8")) for w in words)
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, c in counts.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        new_counts = Counter()
        for w, c in counts.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_counts[tuple(out)] += c
        counts = new_counts
    return merges


def make_vocab():
    b2u = bytes_to_unicode()
    merges = train_bpe(CORPUS, N_MERGES)
    tokens = SPECIALS + [b2u[b] for b in range(256)]
    for a, b in merges:
        if a + b not in tokens:
            tokens.append(a + b)
    types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))  # 3 = control, 1 = normal
    return tokens, types, merges


TOKENS, TOKEN_TYPES, MERGES = make_vocab()
VOCAB = len(TOKENS)


def write_hf_tokenizer(out_dir):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, AddedToken

    vocab = {t: i for i, t in enumerate(TOKENS)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m) for m in MERGES]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": False, "add_eos_token": False, "bos_token": SPECIALS[BOS_ID],
                   "eos_token": SPECIALS[EOS_ID], "unk_token": SPECIALS[0], "pad_token": SPECIALS[EOS_ID],
                   "chat_template": CHAT_TEMPLATE, "model_max_length": 256,
                   "tokenizer_class": "GPT2Tokenizer"}, f, indent=1)


# ---------------------------------------------------------------- model specs

# Base shapes. Row lengths are multiples of 32 (Q8_0/Q4_0/Q4_1 blocks) or of
# 256 for the k-quant models (super-blocks).
SMALL = dict(d_model=128, d_ff=256, n_layers=2, n_heads=4, n_kv_heads=2, context=256,
             rope_theta=10000.0, rms_eps=1e-5)
KQ = dict(SMALL, d_model=256, d_ff=512)                      # head_dim 64
SMOL = dict(SMALL, d_model=192, d_ff=512, n_layers=3, n_heads=6, rope_theta=100000.0)  # head_dim 32, 3:1 GQA
LLAMA3_SCALING = dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                      original_max_position_embeddings=64)


def head_dim(s):
    return s["d_model"] // s["n_heads"]


def hf_weights(spec, seed, arch="llama", tied=False):
    """Float32 weights by Hugging Face names, HF layout."""
    rng = np.random.default_rng(seed)
    d, ff, hd = spec["d_model"], spec["d_ff"], head_dim(spec)
    qd, kvd = spec["n_heads"] * hd, spec["n_kv_heads"] * hd

    def mat(rows, cols, std=None):
        std = 1.0 / np.sqrt(cols) if std is None else std
        return (rng.standard_normal((rows, cols)) * std).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    # Embedding scale chosen so logits have a std of ~3: peaked enough that
    # greedy decoding rarely meets a near tie, small enough to stay finite.
    w = {"model.embed_tokens.weight": mat(VOCAB, d, 3.0 / np.sqrt(d))}
    for i in range(spec["n_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(d)
        w[p + "self_attn.q_proj.weight"] = mat(qd, d)
        w[p + "self_attn.k_proj.weight"] = mat(kvd, d)
        w[p + "self_attn.v_proj.weight"] = mat(kvd, d)
        if arch == "qwen2":
            w[p + "self_attn.q_proj.bias"] = (0.2 * rng.standard_normal(qd)).astype(np.float32)
            w[p + "self_attn.k_proj.bias"] = (0.2 * rng.standard_normal(kvd)).astype(np.float32)
            w[p + "self_attn.v_proj.bias"] = (0.2 * rng.standard_normal(kvd)).astype(np.float32)
        w[p + "self_attn.o_proj.weight"] = mat(d, qd)
        w[p + "post_attention_layernorm.weight"] = norm(d)
        w[p + "mlp.gate_proj.weight"] = mat(ff, d)
        w[p + "mlp.up_proj.weight"] = mat(ff, d)
        w[p + "mlp.down_proj.weight"] = mat(d, ff)
    w["model.norm.weight"] = norm(d)
    if not tied:
        w["lm_head.weight"] = mat(VOCAB, d, 3.0 / np.sqrt(d))
    return w


def permute_qk(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute: HF rotate_half rows -> adjacent pairs."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def to_gguf_names(hw, spec, arch):
    """HF names/layout -> llama.cpp names/layout (float32)."""
    g = {"token_embd.weight": hw["model.embed_tokens.weight"], "output_norm.weight": hw["model.norm.weight"]}
    if "lm_head.weight" in hw:
        g["output.weight"] = hw["lm_head.weight"]
    names = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
             "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
             "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
             "self_attn.v_proj.bias": "attn_v.bias", "self_attn.o_proj.weight": "attn_output.weight",
             "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
             "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    for i in range(spec["n_layers"]):
        for hf, gg in names.items():
            a = hw.get(f"model.layers.{i}.{hf}")
            if a is None:
                continue
            if arch == "llama" and gg in ("attn_q.weight", "attn_k.weight"):
                a = permute_qk(a, spec["n_heads"] if gg == "attn_q.weight" else spec["n_kv_heads"])
            g[f"blk.{i}.{gg}"] = a
    return g


def llama3_rope_factors(spec, scaling):
    """Per-pair divisors as convert_hf_to_gguf.py computes them for rope_freqs.weight."""
    hd = head_dim(spec)
    freqs = 1.0 / (spec["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float32) / hd))
    factor, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    lo_wl, hi_wl = old / lo, old / hi
    out = []
    for f in freqs:
        wl = 2 * np.pi / f
        if wl < hi_wl:
            out.append(1.0)
        elif wl > lo_wl:
            out.append(factor)
        else:
            smooth = (old / wl - lo) / (hi - lo)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


# ---------------------------------------------------------------- k-quant blocks

def _f16_bytes(x):
    return np.asarray(x, dtype=np.float16).view(np.uint8).reshape(-1, 2)


def _pack_k_scales(sc, mn):
    """Inverse of gguf.quants.Q4_K.get_scale_min: 8 six-bit scales + 8 six-bit mins -> 12 bytes."""
    b = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    b[:, 0:4] = (sc[:, 0:4] & 0x3F) | ((sc[:, 4:8] >> 4) << 6)
    b[:, 4:8] = (mn[:, 0:4] & 0x3F) | ((mn[:, 4:8] >> 4) << 6)
    b[:, 8:12] = (sc[:, 4:8] & 0x0F) | ((mn[:, 4:8] & 0x0F) << 4)
    return b


def random_kquant(rng, rows, cols, qtype, std):
    """Valid random super-blocks (256 weights each) with finite f16 scales, sized so
    the dequantized weights have roughly the given std and a mean near zero."""
    assert cols % 256 == 0
    nb = rows * cols // 256
    u8 = lambda n: rng.integers(0, 256, size=(nb, n), dtype=np.uint8)
    if qtype in (Q.Q4_K, Q.Q5_K):
        levels = 16 if qtype == Q.Q4_K else 32
        q_std = np.sqrt((levels ** 2 - 1) / 12.0)
        sc = rng.integers(32, 64, size=(nb, 8)).astype(np.uint8)
        d = (std / (sc.mean() * q_std) * np.exp(0.2 * rng.standard_normal(nb))).astype(np.float16)
        dmin_ratio = levels / 2  # dmin = d * levels/2, so mn ~ sc * (levels-1)/levels centres the block
        dmin = (d.astype(np.float32) * dmin_ratio).astype(np.float16)
        mn = np.clip(np.round(sc.astype(np.float64) * (levels - 1) / 2 / dmin_ratio) + rng.integers(-2, 3, size=(nb, 8)), 0, 63)
        parts = [_f16_bytes(d), _f16_bytes(dmin), _pack_k_scales(sc, mn.astype(np.uint8))]
        if qtype == Q.Q5_K:
            parts.append(u8(32))  # qh
        parts.append(u8(128))     # qs
    elif qtype == Q.Q6_K:
        sc = (rng.integers(20, 128, size=(nb, 16)) * rng.choice([-1, 1], size=(nb, 16))).astype(np.int8)
        q_std = np.sqrt((64 ** 2 - 1) / 12.0)
        d = (std / (np.abs(sc).mean() * q_std) * np.exp(0.2 * rng.standard_normal(nb))).astype(np.float16)
        parts = [u8(128), u8(64), sc.view(np.uint8), _f16_bytes(d)]
    else:
        raise ValueError(qtype)
    blocks = np.concatenate(parts, axis=1)
    assert blocks.shape[1] == gguf.GGML_QUANT_SIZES[qtype][1]
    raw = blocks.reshape(rows, -1)
    deq = dequantize(raw, qtype)
    assert np.isfinite(deq).all() and 0.5 * std < deq.std() < 2 * std and abs(deq.mean()) < 0.2 * std, \
        (qtype, deq.std(), deq.mean(), std)
    return raw


# ---------------------------------------------------------------- GGUF writer

def write_gguf(path, spec, arch, tensors, *, matrix_type, embd_type=None, rope_scaling_linear=None,
               file_type=0):
    """tensors: llama.cpp name -> float32 array, or ('raw', uint8 array, qtype) for pre-made blocks."""
    w = gguf.GGUFWriter(path, arch)
    w.add_name(os.path.basename(path))
    w.add_file_type(file_type)
    w.add_block_count(spec["n_layers"])
    w.add_context_length(spec["context"])
    w.add_embedding_length(spec["d_model"])
    w.add_feed_forward_length(spec["d_ff"])
    w.add_head_count(spec["n_heads"])
    w.add_head_count_kv(spec["n_kv_heads"])
    w.add_rope_freq_base(spec["rope_theta"])
    w.add_layer_norm_rms_eps(spec["rms_eps"])
    w.add_rope_dimension_count(head_dim(spec))
    w.add_vocab_size(VOCAB)
    if rope_scaling_linear:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope_scaling_linear)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(TOKENS)
    w.add_token_types(TOKEN_TYPES)
    w.add_token_merges([f"{a} {b}" for a, b in MERGES])
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_unk_token_id(0)
    w.add_pad_token_id(EOS_ID)
    w.add_add_bos_token(False)
    w.add_add_space_prefix(False)
    w.add_chat_template(CHAT_TEMPLATE)
    for name, a in tensors.items():
        if isinstance(a, tuple):
            _, raw, qt = a
            w.add_tensor(name, raw, raw_dtype=qt)
            continue
        qt = matrix_type
        if name == "token_embd.weight" and embd_type is not None:
            qt = embd_type
        if a.ndim == 1 or qt == Q.F32:  # norms, biases, rope_freqs stay F32 as in real files
            w.add_tensor(name, a.astype(np.float32))
        elif qt == Q.F16:
            w.add_tensor(name, a.astype(np.float16))
        else:
            w.add_tensor(name, quantize(a, qt), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------- safetensors / HF

def bf16_bits(a):
    """float32 -> bfloat16 bit patterns, round to nearest even (what torch does)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors(path, tensors, dtype):
    """The safetensors format: u64 LE header length, JSON header, raw little-endian data."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = tensors[name]
        if dtype == "F32":
            data = a.astype("<f4").tobytes()
        elif dtype == "F16":
            data = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            data = bf16_bits(a).astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return off


def write_hf(out_dir, spec, arch, hw, dtype, shards=1, rope_scaling=None):
    os.makedirs(out_dir, exist_ok=True)
    tied = "lm_head.weight" not in hw
    cfg = {
        "architectures": ["Qwen2ForCausalLM" if arch == "qwen2" else "LlamaForCausalLM"],
        "model_type": arch, "hidden_size": spec["d_model"], "intermediate_size": spec["d_ff"],
        "num_hidden_layers": spec["n_layers"], "num_attention_heads": spec["n_heads"],
        "num_key_value_heads": spec["n_kv_heads"], "head_dim": head_dim(spec),
        "rms_norm_eps": spec["rms_eps"], "rope_theta": spec["rope_theta"], "rope_scaling": rope_scaling,
        "max_position_embeddings": spec["context"], "vocab_size": VOCAB, "tie_word_embeddings": tied,
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
        "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "hidden_act": "silu",
        "attention_bias": arch == "qwen2",
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    write_hf_tokenizer(out_dir)
    names = sorted(hw)
    if shards == 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), hw, dtype)
        return
    weight_map, total = {}, 0
    for k in range(shards):
        part = names[k * len(names) // shards:(k + 1) * len(names) // shards]
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        total += write_safetensors(os.path.join(out_dir, fname), {n: hw[n] for n in part}, dtype)
        weight_map.update({n: fname for n in part})
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)


# ---------------------------------------------------------------- the model set

GGUF_TYPES = {"f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0, "q4_1": Q.Q4_1}
KQUANT_TYPES = {"q4_k": Q.Q4_K, "q5_k": Q.Q5_K, "q6_k": Q.Q6_K}


def make_all(out):
    os.makedirs(out, exist_ok=True)
    models = []

    def add(name, fmt, weight_type, arch, same_as=None, tol=None):
        path = os.path.join(out, name)
        models.append({"name": name, "path": path, "format": fmt, "weight_type": weight_type, "arch": arch,
                       "same_as": same_as, "tolerance_class": tol or weight_type})
        return path

    # 1. One llama file per stored weight type, all from the same float weights.
    hw = hf_weights(SMALL, seed=1)
    g = to_gguf_names(hw, SMALL, "llama")
    for tname, qt in GGUF_TYPES.items():
        write_gguf(add(f"llama_{tname}.gguf", "gguf", tname, "llama"), SMALL, "llama", g, matrix_type=qt)

    # 2. k-quants: random super-blocks (d_model 256, d_ff 512 so rows hold whole super-blocks).
    for tname, qt in KQUANT_TYPES.items():
        rng = np.random.default_rng(100 + int(qt))
        kw = to_gguf_names(hf_weights(KQ, seed=int(qt)), KQ, "llama")
        for n, a in list(kw.items()):
            if a.ndim == 2:
                std = 3.0 / np.sqrt(KQ["d_model"]) if n in ("token_embd.weight", "output.weight") else 1.0 / np.sqrt(a.shape[1])
                kw[n] = ("raw", random_kquant(rng, a.shape[0], a.shape[1], qt, std), qt)
        write_gguf(add(f"llama_{tname}.gguf", "gguf", tname, "llama"), KQ, "llama", kw, matrix_type=qt)

    # 3. Like the default model (SmolLM2-135M-Instruct.Q4_1): Q4_1 matrices, Q8_0
    #    token_embd, tied output, 3:1 GQA, rope theta 1e5.
    sw = to_gguf_names(hf_weights(SMOL, seed=3, tied=True), SMOL, "llama")
    write_gguf(add("smollm_mixed.gguf", "gguf", "q4_1", "llama", tol="q4_1"), SMOL, "llama", sw,
               matrix_type=Q.Q4_1, embd_type=Q.Q8_0, file_type=3)

    # 4. Llama-3 RoPE scaling: GGUF rope_freqs.weight vs HF rope_scaling.
    l3 = dict(SMALL, rope_theta=500000.0)
    hw3 = hf_weights(l3, seed=4)
    g3 = to_gguf_names(hw3, l3, "llama")
    g3["rope_freqs.weight"] = llama3_rope_factors(l3, LLAMA3_SCALING)
    write_gguf(add("llama3_rope.gguf", "gguf", "f32", "llama"), l3, "llama", g3, matrix_type=Q.F32)
    write_hf(add("hf_llama3_rope", "hf", "f32", "llama", same_as="llama3_rope.gguf"), l3, "llama", hw3, "F32",
             rope_scaling=dict(LLAMA3_SCALING, rope_type="llama3"))

    # 5. Linear RoPE scaling (GGUF rope.scaling.type = linear).
    write_gguf(add("llama_linear_rope.gguf", "gguf", "f32", "llama"), SMALL, "llama", g, matrix_type=Q.F32,
               rope_scaling_linear=4.0)

    # 6. qwen2: Q/K/V biases, NEOX RoPE in GGUF too, tied embeddings.
    qs = dict(SMALL, rope_theta=1000000.0, rms_eps=1e-6)
    hwq = hf_weights(qs, seed=6, arch="qwen2", tied=True)
    write_gguf(add("qwen2_f32.gguf", "gguf", "f32", "qwen2"), qs, "qwen2", to_gguf_names(hwq, qs, "qwen2"),
               matrix_type=Q.F32)
    write_hf(add("hf_qwen2", "hf", "f32", "qwen2", same_as="qwen2_f32.gguf"), qs, "qwen2", hwq, "F32")

    # 7. HF checkpoints of the llama weights of (1): single file and sharded, F32/F16/BF16.
    write_hf(add("hf_llama_f32", "hf", "f32", "llama", same_as="llama_f32.gguf"), SMALL, "llama", hw, "F32")
    write_hf(add("hf_llama_f32_sharded", "hf", "f32", "llama", same_as="llama_f32.gguf"), SMALL, "llama", hw,
             "F32", shards=2)
    write_hf(add("hf_llama_f16", "hf", "f16", "llama", same_as="llama_f16.gguf"), SMALL, "llama", hw, "F16")
    write_hf(add("hf_llama_bf16_sharded", "hf", "bf16", "llama", same_as="llama_bf16.gguf"), SMALL, "llama", hw,
             "BF16", shards=2)

    with open(os.path.join(out, "models.json"), "w") as f:
        json.dump({"vocab": VOCAB, "bos": BOS_ID, "eos": EOS_ID, "models": models}, f, indent=1)
    return models


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for m in make_all(sys.argv[1]):
        print(m["name"])
