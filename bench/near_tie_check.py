#!/usr/bin/env python3
"""For each divergence found by `llamacpp_compare.py greedy`, the exact reference
(tests/reference/llama_reference.py: float64 activations, weights dequantized by the
`gguf` package) scores the two competing tokens at that position. A divergence is a
near tie when both tokens are the reference's top two and their gap is small.

  build/bin/strata ... ; python bench/llamacpp_compare.py greedy > greedy.jsonl
  ~/.cache/strata/venv/bin/python bench/near_tie_check.py greedy.jsonl [--model M]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import llama_reference as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("greedy_jsonl")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "bin", "strata"))
    args = ap.parse_args()
    m = ref.load(args.model)
    for line in open(args.greedy_jsonl):
        d = json.loads(line)
        if "divergence" not in d:
            continue
        div = d["divergence"]
        ids = [int(x) for x in subprocess.run([args.cli, "tokenize", "--model", args.model, "--text", d["prompt"]],
                                              capture_output=True, text=True, check=True).stdout.split()]
        gen = []
        if div["index"] > 0:
            gen = subprocess.run([args.cli, "generate", "--model", args.model, "--prompt-tokens", ",".join(map(str, ids)),
                                  "--max-tokens", str(div["index"]), "--temperature", "0", "--ignore-eos",
                                  "--print-token-ids"], capture_output=True, text=True, check=True).stdout.split()
        logits = ref.forward(m, ids + [int(x) for x in gen])[-1]
        a, b = div["llamacpp_token"], div["strata_token"]
        top2 = [int(x) for x in np.argsort(-logits)[:2]]
        print(json.dumps({"prompt": d["prompt"][:40], "index": div["index"],
                          "reference_top2": top2, "both_in_reference_top2": sorted(top2) == sorted([a, b]),
                          "reference_gap_strata_minus_llamacpp": round(float(logits[b] - logits[a]), 4),
                          "llamacpp_gap": round(div["llamacpp_gap"], 4), "strata_gap": round(div["strata_gap"], 4)}))


if __name__ == "__main__":
    main()
