"""Accuracy cost of the quantised KV cache on a real model (docs/kernels.md,
"Quantised KV cache"). Not a ctest: a measurement, deterministic for a given
build and SIMD level.

usage: kv_quant_accuracy.py STRATA_CLI [--model M] [--threads 2] [--gen 64]

1. Logits: `strata eval-logits` over a ~350-token text with each --kv-dtype;
   max / mean |logit - logit_base| over all positions and the vocabulary,
   relative to the std of the base logits; top-1 agreement; base f16 (the
   default cache) and f32 (no KV rounding at all).
2. Greedy generation: 8 prompts x GEN tokens (`strata generate --temperature 0
   --ignore-eos --print-token-ids`); fraction of positions whose token equals
   the base's, and the mean length of the common prefix.
"""
import argparse
import os
import subprocess
import tempfile

import numpy as np

TEXT = (
    "The history of computing is longer than the history of computing hardware and modern computing "
    "technology and includes the history of methods intended for pen and paper or for chalk and slate, "
    "with or without the aid of tables. Digital computing is intimately tied to the representation of "
    "numbers. But long before abstractions like the number arose, there were mathematical concepts to "
    "serve the purposes of civilization. These concepts are implicit in concrete practices such as "
    "one-to-one correspondence, the basis of counting, comparison to a standard, used for measurement, "
    "and the 3-4-5 right triangle, a device for assuring a right angle. The earliest known tool for use "
    "in computation was the abacus, and it was thought to have been invented in Babylon circa 2400 BC. "
    "Its original style of usage was by lines drawn in sand with pebbles. Abaci, of a more modern design, "
    "are still used as calculation tools today. This was the first known calculation aid, preceding "
    "Greek methods by 2,000 years.\n\n"
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n"
    "print([fibonacci(i) for i in range(10)])\n\n"
    "Paris is the capital and most populous city of France. With an estimated population of more than "
    "two million residents, it is the centre of the Ile-de-France region. Since the 17th century, Paris "
    "has been one of the world's major centres of finance, diplomacy, commerce, culture, fashion and "
    "gastronomy. For its leading role in the arts and sciences, as well as its early and extensive system "
    "of street lighting, in the 19th century it became known as the City of Light."
)

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def quicksort(arr):",
    "The three laws of thermodynamics are",
    "Write a short poem about the ocean.",
    "In 1969, the first humans landed on",
    "To make a cup of tea, first",
    "The main differences between Python and C++ are",
]


def run(args):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=600).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cli")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--threads", default="2")
    ap.add_argument("--gen", type=int, default=64)
    a = ap.parse_args()
    dtypes = ["f16", "f32", "bf16", "fp8", "fp8-unscaled", "int8"]
    toks = run([a.cli, "tokenize", "--model", a.model, "--text", TEXT]).split()
    print(f"model {os.path.basename(a.model)}, text {len(toks)} tokens")
    logits = {}
    with tempfile.TemporaryDirectory() as d:
        for dt in dtypes:
            out = os.path.join(d, dt + ".f32")
            run([a.cli, "eval-logits", "--model", a.model, "--tokens", ",".join(toks), "--out", out,
                 "--threads", a.threads, "--kv-dtype", dt, "--ctx-size", "1024"])
            logits[dt] = np.fromfile(out, dtype="<f4").astype(np.float64).reshape(len(toks), -1)
    for base in ("f16", "f32"):
        ref = logits[base]
        std = ref.std()
        print(f"\nlogits vs {base} KV (std of {base} logits {std:.3f}), {ref.shape[0]} positions x {ref.shape[1]}")
        print("| kv dtype | max abs / std | mean abs / std | RMS / std | top-1 agree |")
        print("| --- | --- | --- | --- | --- |")
        for dt in dtypes:
            if dt == base:
                continue
            diff = np.abs(logits[dt] - ref)
            top1 = np.mean(np.argmax(logits[dt], 1) == np.argmax(ref, 1))
            print(f"| {dt} | {diff.max() / std:.4f} | {diff.mean() / std:.5f} | "
                  f"{np.sqrt((diff ** 2).mean()) / std:.5f} | {100 * top1:.1f}% |")

    gen = {}
    for dt in dtypes:
        gen[dt] = []
        for p in PROMPTS:
            out = run([a.cli, "generate", "--model", a.model, "--prompt", p, "--max-tokens", str(a.gen),
                       "--temperature", "0", "--ignore-eos", "--print-token-ids", "--threads", a.threads,
                       "--kv-dtype", dt, "--ctx-size", "256"])
            ids = [int(x) for x in out.strip().splitlines()[-1].split()]
            gen[dt].append(ids)
    for base in ("f16", "f32"):
        print(f"\ngreedy generation vs {base} KV, {len(PROMPTS)} prompts x {a.gen} tokens")
        print("| kv dtype | identical tokens | mean common prefix | prompts fully identical |")
        print("| --- | --- | --- | --- |")
        for dt in dtypes:
            if dt == base:
                continue
            same = total = full = 0
            prefixes = []
            for x, y in zip(gen[dt], gen[base]):
                n = min(len(x), len(y))
                same += sum(1 for i in range(n) if x[i] == y[i])
                total += max(len(x), len(y))
                k = 0
                while k < n and x[k] == y[k]:
                    k += 1
                prefixes.append(k)
                full += x == y
            print(f"| {dt} | {100 * same / total:.1f}% | {np.mean(prefixes):.1f} / {a.gen} | "
                  f"{full} / {len(PROMPTS)} |")

if __name__ == "__main__":
    main()
