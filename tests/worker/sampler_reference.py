"""NumPy reference for the token sampler (worker/sampler.cc), used by
tests/worker/sampler_test.cc. Written from the formulas in
worker/sampling_params.h, independently of the C++ code.

usage: sampler_reference.py IN.json OUT.json
IN:  {"cases": [{"logits": [float|null], "history": [int], "params": {...}}]}
     (null = a non-finite logit that JSON cannot carry; NaN and -inf both mean -inf)
OUT: {"cases": [{"probs": [float], "greedy_token": int, "greedy_logprob": float}]}
"""
import json
import sys

import numpy as np


def penalized_logits(logits, history, p):
    l = np.array([-np.inf if x is None else x for x in logits], dtype=np.float64)
    l[np.isnan(l)] = -np.inf
    n = p["penalty_last_n"]
    if n == 0:
        window = []
    elif n < 0:
        window = history
    else:
        window = history[max(0, len(history) - n):]
    if len(window) == 0:
        return l
    counts = np.bincount(np.asarray(window, dtype=np.int64), minlength=len(l)).astype(np.float64)
    seen = counts > 0
    r = p["repetition_penalty"]
    l[seen] = np.where(l[seen] > 0, l[seen] / r, l[seen] * r)
    l[seen] -= p["presence_penalty"] + p["frequency_penalty"] * counts[seen]
    return l


def process(logits, history, p):
    l = penalized_logits(logits, history, p)
    vocab = len(l)
    finite = np.isfinite(l)
    assert finite.any(), "reference cases keep at least one finite logit"

    # Greedy: argmax (first on ties) and its log-softmax at temperature 1.
    lf = np.where(finite, l, -np.inf)
    g = int(np.argmax(lf))
    m = lf[g]
    greedy_logprob = float(-np.log(np.sum(np.exp(lf[finite] - m))))

    if p["temperature"] == 0:
        probs = np.zeros(vocab)
        probs[g] = 1.0
        return probs, g, greedy_logprob

    # Rank order: logit descending, token id ascending on ties.
    order = np.lexsort((np.arange(vocab), -lf))
    order = order[finite[order]]
    if p["top_k"] > 0:
        order = order[: p["top_k"]]
    if p["top_p"] < 1.0:
        q = np.exp(l[order] - m)
        q /= q.sum()
        reached = np.cumsum(q) >= p["top_p"]
        if reached.any():
            order = order[: int(np.argmax(reached)) + 1]
    if p["min_p"] > 0.0:
        # probability relative to the most likely token: p_i / p_max
        rel = np.exp(l[order] - m)
        order = order[rel >= p["min_p"]]
    w = np.exp((l[order] - m) / p["temperature"])
    probs = np.zeros(vocab)
    probs[order] = w / w.sum()
    return probs, g, greedy_logprob


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    out = []
    for case in cases:
        probs, g, glp = process(case["logits"], case["history"], case["params"])
        out.append({"probs": probs.tolist(), "greedy_token": g, "greedy_logprob": glp})
    with open(sys.argv[2], "w") as f:
        json.dump({"cases": out}, f)


if __name__ == "__main__":
    main()
