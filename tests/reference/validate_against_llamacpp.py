#!/usr/bin/env python3
"""Validates the NumPy reference itself against llama.cpp on a real GGUF file.

llama.cpp (llama-cpp-python) runs in its own venv, as a subprocess, so this
script needs only the reference's packages:

  ~/.cache/strata/venv/bin/python tests/reference/validate_against_llamacpp.py \
      [--model ~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf] \
      [--llamacpp-python ~/.cache/strata/llamacpp-venv/bin/python]

For each prompt (tokenized by llama.cpp) it compares the logits of every
position: max and RMS of |reference - llama.cpp| over the std of the reference
logits, top-1 agreement, and the last position's argmax. llama.cpp rounds
activations to 8 bits before Q4_1/Q8_0 dot products, so ~1e-2 relative (RMS)
is expected; the reference with the same rounding simulated (act_quant) shows
how much of the gap that rounding explains.

It then repeats the comparison on an F32 copy of the same model (weights
dequantized by gguf.quants, metadata copied) with llama.cpp's KV cache in F32:
there llama.cpp rounds nothing to 8 bits, so the two must agree to float32
accuracy. Results go in docs/correctness.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402

PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
]

LLAMACPP = r"""
import json, sys
import numpy as np
from llama_cpp import Llama
model, prompts, out, kv = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
llm = Llama(model_path=model, logits_all=True, n_threads=2, n_ctx=512, verbose=False, type_k=kv, type_v=kv)
res = {}
for i, p in enumerate(prompts):
    toks = p if isinstance(p, list) else llm.tokenize(p.encode(), add_bos=False, special=True)
    llm.reset()
    llm.eval(toks)
    np.save(f"{out}/{i}.npy", np.array(llm.scores[:len(toks)], dtype=np.float32))
    res[i] = toks
json.dump(res, open(f"{out}/tokens.json", "w"))
"""


def write_f32_copy(src, dst):
    """The same model with every tensor dequantized to F32 (metadata copied as is)."""
    import gguf
    from gguf.quants import dequantize

    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(name, f.contents(), f.types[0], sub_type=sub)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, a.reshape([int(x) for x in reversed(t.shape)]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def compare(model_path, llamacpp_python, kv_type, simulate, prompts=PROMPTS):
    """prompts: texts (tokenized by llama.cpp) or token-id lists."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([llamacpp_python, "-c", LLAMACPP, model_path, json.dumps(prompts), tmp, str(kv_type)],
                       check=True)
        with open(os.path.join(tmp, "tokens.json")) as f:
            tokens = json.load(f)
        theirs = [np.load(os.path.join(tmp, f"{i}.npy")) for i in range(len(prompts))]
    model = ref.load(model_path)
    rows = []
    for i, p in enumerate(prompts):
        toks = tokens[str(i)]
        t = time.time()
        mine = ref.forward(model, toks)
        dt = time.time() - t
        s = mine.std()
        row = {
            "model": os.path.basename(model_path), "prompt": p if isinstance(p, str) else "ids", "n_tokens": len(toks), "logit_std": round(float(s), 3),
            "max_rel": float(np.abs(mine - theirs[i]).max() / s),
            "rms_rel": float(np.sqrt(np.mean((mine - theirs[i]) ** 2)) / s),
            "top1_agree": float(np.mean(mine.argmax(1) == theirs[i].argmax(1))),
            "last_argmax_ref": int(mine[-1].argmax()), "last_argmax_llamacpp": int(theirs[i][-1].argmax()),
            "reference_forward_s": round(dt, 1),
        }
        if simulate:
            sim = ref.forward(model, toks, act_quant=True, kv_f16=kv_type == 1)
            row["sim_vs_exact_rms_rel"] = float(np.sqrt(np.mean((sim - mine) ** 2)) / s)
            row["sim_vs_llamacpp_rms_rel"] = float(np.sqrt(np.mean((sim - theirs[i]) ** 2)) / s)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def check_tiny(models_dir, llamacpp_python):
    """The tiny models under llama.cpp (f32 KV cache): float models must agree to float32
    accuracy; quantized ones within what 8-bit activation rounding explains."""
    with open(os.path.join(models_dir, "models.json")) as f:
        manifest = json.load(f)
    rng = np.random.default_rng(7)
    prompts = [rng.integers(0, manifest["vocab"], 40).tolist() for _ in range(2)]
    ok = True
    for m in manifest["models"]:
        if m["format"] != "gguf":
            continue
        rows = compare(m["path"], llamacpp_python, kv_type=0, simulate=True, prompts=prompts)
        exact = m["weight_type"] == "f32"
        for r in rows:
            bad = r["max_rel"] > 1e-3 if exact else r["rms_rel"] > 3 * r["sim_vs_exact_rms_rel"] + 1e-3
            if bad:
                print("MISMATCH:", m["name"])
            ok &= not bad
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--llamacpp-python", default=os.path.expanduser("~/.cache/strata/llamacpp-venv/bin/python"))
    ap.add_argument("--tiny", help="instead: check every tiny GGUF model in this make_tiny_models.py output dir")
    a = ap.parse_args()
    if a.tiny:
        return check_tiny(a.tiny, a.llamacpp_python)
    print("== as stored (llama.cpp: 8-bit activations, f16 KV cache)")
    quant = compare(a.model, a.llamacpp_python, kv_type=1, simulate=True)
    print("== F32 copy (llama.cpp: f32 weights and activations, f32 KV cache)")
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "model-f32.gguf")
        write_f32_copy(a.model, f32)
        exact = compare(f32, a.llamacpp_python, kv_type=0, simulate=False)
    ok = all(r["last_argmax_ref"] == r["last_argmax_llamacpp"] for r in quant + exact)
    ok &= all(r["rms_rel"] < 0.1 for r in quant) and all(r["max_rel"] < 1e-3 for r in exact)
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
