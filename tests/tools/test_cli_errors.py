"""Bad input to the strata CLI: every case must exit non-zero, promptly, with a
message naming the file, tensor or limit, and never crash (no signal exit)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from gguf import GGUFWriter, GGMLQuantizationType

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference"))
from make_tiny_models import bytes_to_unicode  # noqa: E402

CLI = os.environ.get("STRATA_CLI", "")

D, FF, HEADS, KV_HEADS, LAYERS = 64, 96, 4, 2, 1


def byte_vocab():
    # GPT-2 byte-to-unicode alphabet (256 single-byte tokens), two merges, then specials.
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in sorted(b2u, key=lambda b: ord(b2u[b]))]
    tokens += ["\u0120t", "he", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [1] * 258 + [3, 3, 3]
    return tokens, types, ["\u0120 t", "h e"]


def write_model(path, arch="llama", drop=None, bad_shape=None, qtype=None, tokenizer=True):
    tokens, types, merges = byte_vocab()
    vocab = len(tokens)
    w = GGUFWriter(path, arch)
    w.add_block_count(LAYERS)
    w.add_context_length(64)
    w.add_embedding_length(D)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    if tokenizer:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt2")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(258)
        w.add_eos_token_id(258)
    rng = np.random.default_rng(0)
    hd = D // HEADS
    shapes = {"token_embd.weight": (vocab, D), "output_norm.weight": (D,), "output.weight": (vocab, D),
              "blk.0.attn_norm.weight": (D,), "blk.0.attn_q.weight": (D, D),
              "blk.0.attn_k.weight": (KV_HEADS * hd, D), "blk.0.attn_v.weight": (KV_HEADS * hd, D),
              "blk.0.attn_output.weight": (D, D), "blk.0.ffn_norm.weight": (D,),
              "blk.0.ffn_gate.weight": (FF, D), "blk.0.ffn_up.weight": (FF, D), "blk.0.ffn_down.weight": (D, FF)}
    for name, shape in shapes.items():
        if name == drop:
            continue
        if name == bad_shape:
            shape = (shape[0] + 1,) + shape[1:]
        a = rng.standard_normal(shape).astype(np.float32) * 0.1
        if qtype is not None and len(shape) == 2 and name.startswith("blk"):
            from gguf import quants
            w.add_tensor(name, quants.quantize(a, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def strata(*args, timeout=60):
    assert CLI and os.path.exists(CLI), "STRATA_CLI must point at the strata binary"
    r = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode >= 0, f"strata died from signal {-r.returncode}: {r.stderr}"
    assert "Sanitizer" not in r.stderr, f"sanitizer report (sanitized build):\n{r.stderr}"
    return r


def expect_error(args, *fragments):
    r = strata(*args)
    assert r.returncode != 0, f"expected failure, got success: {r.stdout}"
    for f in fragments:
        assert f in r.stderr, f"'{f}' not in error message: {r.stderr}"
    return r


def test_valid_tiny_model_generates(tmp_path):
    path = write_model(str(tmp_path / "ok.gguf"))
    r = strata("generate", "--model", path, "--prompt", "hello", "--max-tokens", "5",
               "--temperature", "0", "--print-token-ids")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 5
    assert "prompt tokens: 4" in r.stderr  # "he" "l" "l" "o": the merge applies


def test_missing_file(tmp_path):
    expect_error(["generate", "--model", str(tmp_path / "nope.gguf"), "--prompt", "x"], "nope.gguf", "does not exist")


def test_not_a_gguf(tmp_path):
    p = tmp_path / "junk.gguf"
    p.write_bytes(b"this is not a model file at all" * 10)
    expect_error(["generate", "--model", str(p), "--prompt", "x"], "junk.gguf")


@pytest.mark.parametrize("fraction", [0.0001, 0.01, 0.3, 0.7, 0.999])
def test_truncated_file(tmp_path, fraction):
    full = write_model(str(tmp_path / "full.gguf"))
    data = open(full, "rb").read()
    p = tmp_path / "truncated.gguf"
    p.write_bytes(data[: max(1, int(len(data) * fraction))])
    expect_error(["generate", "--model", str(p), "--prompt", "x"], "truncated.gguf")


def test_unsupported_architecture(tmp_path):
    path = write_model(str(tmp_path / "gpt2.gguf"), arch="gpt2")
    expect_error(["generate", "--model", path, "--prompt", "x"], "unsupported architecture", "gpt2")


def test_missing_tensor(tmp_path):
    path = write_model(str(tmp_path / "m.gguf"), drop="blk.0.ffn_up.weight")
    expect_error(["generate", "--model", path, "--prompt", "x"], "blk.0.ffn_up.weight", "missing")


def test_wrong_shape(tmp_path):
    path = write_model(str(tmp_path / "m.gguf"), bad_shape="blk.0.attn_k.weight")
    expect_error(["generate", "--model", path, "--prompt", "x"], "blk.0.attn_k.weight", "shape")


def test_unsupported_tensor_type(tmp_path):
    path = write_model(str(tmp_path / "m.gguf"), qtype=GGMLQuantizationType.Q5_0)
    expect_error(["generate", "--model", path, "--prompt", "x"], "Q5_0", "not supported")


def test_missing_tokenizer(tmp_path):
    path = write_model(str(tmp_path / "m.gguf"), tokenizer=False)
    expect_error(["generate", "--model", path, "--prompt", "x"], "tokenizer")


def test_prompt_longer_than_context(tmp_path):
    path = write_model(str(tmp_path / "m.gguf"))
    expect_error(["generate", "--model", path, "--prompt", "a" * 100, "--max-tokens", "4"],
                 "exceeds the context limit of 64")


def test_bad_flags(tmp_path):
    path = write_model(str(tmp_path / "m.gguf"))
    expect_error(["generate", "--model", path, "--prompt", "x", "--temperature", "-1"], "temperature")
    expect_error(["generate", "--model", path, "--prompt", "x", "--top-p", "abc"], "--top-p")
    expect_error(["generate", "--model", path, "--prompt", "x", "--bogus", "1"], "unknown flag --bogus")
    expect_error(["generate", "--model", path, "--prompt-tokens", "1,9999", "--max-tokens", "4"],
                 "outside the vocabulary")


def test_default_max_tokens_fits_the_context(tmp_path):
    # Without --max-tokens the CLI generates at most what fits in the context.
    path = write_model(str(tmp_path / "m.gguf"))
    r = strata("generate", "--model", path, "--prompt", "hello", "--temperature", "0",
               "--ignore-eos", "--print-token-ids")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 64 - 4


def test_hf_directory_without_tokenizer(tmp_path):
    d = tmp_path / "hf"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, '
                                   '"num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, '
                                   '"vocab_size": 261, "tie_word_embeddings": true}')
    expect_error(["generate", "--model", str(d), "--prompt", "x"], "missing tokenizer", "tokenizer.json")
