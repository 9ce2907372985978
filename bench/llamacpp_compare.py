#!/usr/bin/env python3
"""Side-by-side with llama.cpp on the same GGUF file.

  greedy: greedy continuations of several prompts from both engines (same prompt token ids,
          taken from llama.cpp's tokenizer, and a check that our tokenizer agrees); at the
          first divergence, the logit gap in both engines tells whether it is a near tie.
  speed:  prefill and decode tokens/s for 1 and 2 threads, both engines measured back to back
          in alternating rounds (this machine's memory bandwidth switches level every few
          minutes), medians reported, plus decode as a fraction of the read-bandwidth bound.

llama.cpp comes from PyPI's llama-cpp-python (built from source by pip); run this script with
the Python of a venv that has it, e.g.:
  python3 -m venv ~/.cache/strata/llamacpp-venv && ~/.cache/strata/llamacpp-venv/bin/pip install llama-cpp-python numpy
  ~/.cache/strata/llamacpp-venv/bin/python bench/llamacpp_compare.py greedy --model MODEL.gguf
  ~/.cache/strata/llamacpp-venv/bin/python bench/llamacpp_compare.py speed --model MODEL.gguf
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from llama_cpp import Llama

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CLI = os.path.join(ROOT, "build", "bin", "strata")
DEFAULT_MODEL = os.path.expanduser("~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf")

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Once upon a time, in a small village by the sea,",
    "The three primary colors are",
    "To make a cup of tea, first",
    "In 1969, Neil Armstrong",
    "Water boils at a temperature of",
    "The most important rule of machine learning is",
]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return r


def strata_logits(cli, model, tokens, prefill):
    # --prefill: the prompt in one pass, then one token per pass, the path
    # generation took (prefill and decode kernels may round activations
    # differently; see docs/correctness.md).
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        run([cli, "eval-logits", "--model", model, "--tokens", ",".join(map(str, tokens)),
             "--out", f.name, "--threads", "2", "--prefill", str(prefill)])
        a = np.fromfile(f.name, dtype=np.float32)
    return a.reshape(len(tokens), -1)


def greedy(args):
    llm = Llama(args.model, n_ctx=1024, n_threads=2, n_batch=512, logits_all=True, verbose=False)
    results = []
    for prompt in PROMPTS:
        ids = llm.tokenize(prompt.encode(), add_bos=True, special=False)
        ours_ids = [int(x) for x in run([args.cli, "tokenize", "--model", args.model, "--text", prompt]).stdout.split()]
        llm.reset()
        llm.eval(ids)
        ref = []
        ref_logits = []
        for _ in range(args.tokens):
            row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            tok = int(np.argmax(row))
            ref.append(tok)
            ref_logits.append(row)
            llm.eval([tok])
        out = run([args.cli, "generate", "--model", args.model, "--prompt-tokens", ",".join(map(str, ids)),
                   "--max-tokens", str(args.tokens), "--temperature", "0", "--ignore-eos",
                   "--print-token-ids", "--threads", "2"]).stdout.split()
        ours = [int(x) for x in out]
        div = next((i for i, (a, b) in enumerate(zip(ref, ours)) if a != b), None)
        entry = {"prompt": prompt, "tokenizer_agrees": ours_ids == ids, "tokens": args.tokens,
                 "agree_prefix": args.tokens if div is None else div,
                 "llamacpp_text": llm.detokenize(ref).decode(errors="replace"),
                 "strata_text": llm.detokenize(ours).decode(errors="replace")}
        if div is not None:
            lr = ref_logits[div]
            our_rows = strata_logits(args.cli, args.model, ids + ours[:div + 1], len(ids))
            orow = our_rows[len(ids) + div - 1]
            entry["divergence"] = {
                "index": div, "llamacpp_token": ref[div], "strata_token": ours[div],
                "llamacpp_gap": float(lr[ref[div]] - lr[ours[div]]),
                "strata_gap": float(orow[ours[div]] - orow[ref[div]]),
            }
        results.append(entry)
        print(json.dumps(entry, ensure_ascii=False), flush=True)
    n_full = sum(1 for r in results if r["agree_prefix"] == args.tokens)
    print(json.dumps({"prompts": len(results), "identical": n_full,
                      "tokenizer_agrees": sum(r["tokenizer_agrees"] for r in results)}))


def llamacpp_speed(llm, prompt_tokens, gen):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt_tokens)
    t1 = time.perf_counter()
    for _ in range(gen - 1):
        llm.eval([504])
    t2 = time.perf_counter()
    return len(prompt_tokens) / (t1 - t0), (gen - 1) / (t2 - t1)


def strata_speed(cli, model, threads, plen, gen, bandwidth=False):
    cmd = [cli, "bench", "--model", model, "--threads", str(threads), "--prompt-tokens", str(plen),
           "--gen-tokens", str(gen), "--repeats", "1"]
    if not bandwidth:
        cmd.append("--no-bandwidth")
    return json.loads(run(cmd).stdout)


def speed(args):
    rng = np.random.default_rng(0)
    prompt = [int(x) for x in rng.integers(300, 40000, size=args.prompt_tokens)]
    llms = {t: Llama(args.model, n_ctx=args.prompt_tokens + args.gen_tokens + 8, n_threads=t, n_threads_batch=t,
                     n_batch=512, logits_all=False, verbose=False) for t in args.threads}
    for t in args.threads:  # warm up: page in the weights
        llamacpp_speed(llms[t], prompt, 8)
    rows = {t: {"strata_prefill": [], "strata_decode": [], "llamacpp_prefill": [], "llamacpp_decode": []}
            for t in args.threads}
    for r in range(args.rounds):
        for t in args.threads:
            s = strata_speed(args.cli, args.model, t, args.prompt_tokens, args.gen_tokens)
            p, d = llamacpp_speed(llms[t], prompt, args.gen_tokens)
            rows[t]["strata_prefill"].append(s["prefill_tok_s"])
            rows[t]["strata_decode"].append(s["decode_tok_s"])
            rows[t]["llamacpp_prefill"].append(p)
            rows[t]["llamacpp_decode"].append(d)
            print(f"round {r} threads {t}: strata prefill {s['prefill_tok_s']:.1f} decode {s['decode_tok_s']:.1f} | "
                  f"llama.cpp prefill {p:.1f} decode {d:.1f}", file=sys.stderr, flush=True)
    summary = []
    for t in args.threads:
        bw = strata_speed(args.cli, args.model, t, 8, 4, bandwidth=True)
        med = {k: statistics.median(v) for k, v in rows[t].items()}
        bytes_per_tok = bw["weight_bytes_per_token"]
        summary.append({
            "threads": t, **{k: round(v, 1) for k, v in med.items()},
            "decode_ratio": round(med["strata_decode"] / med["llamacpp_decode"], 2),
            "prefill_ratio": round(med["strata_prefill"] / med["llamacpp_prefill"], 2),
            "read_bw_gbs": bw["read_bw_gbs"], "weight_mb_per_token": round(bytes_per_tok / 1e6, 1),
            "strata_decode_frac_of_bound": round(med["strata_decode"] * bytes_per_tok / (bw["read_bw_gbs"] * 1e9), 3),
            "llamacpp_decode_frac_of_bound": round(med["llamacpp_decode"] * bytes_per_tok / (bw["read_bw_gbs"] * 1e9), 3),
        })
    print(json.dumps({"model": os.path.basename(args.model), "prompt_tokens": args.prompt_tokens,
                      "gen_tokens": args.gen_tokens, "rounds": args.rounds, "results": summary}, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["greedy", "speed"])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--cli", default=DEFAULT_CLI)
    ap.add_argument("--tokens", type=int, default=32, help="greedy: tokens per prompt")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    greedy(args) if args.mode == "greedy" else speed(args)


if __name__ == "__main__":
    main()
