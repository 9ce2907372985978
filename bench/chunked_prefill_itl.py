#!/usr/bin/env python3
"""Chunked prefill on/off: how long running streams stall while long prompts arrive.

For each step budget (`--max-batched-tokens` of the coordinator; a budget >= the long prompt
means no chunking), starts `strata cluster up`, runs --streams decoding clients (short prompts,
--decode-tokens new tokens each, back to back) and one client that sends a --long-prompt-token
prompt every --interval seconds, for --duration seconds. Reports, per budget: the gaps between
consecutive token chunks of the decoding streams (p50 / p99 / max), decode tokens/s, and the
long prompts' median time to first token. Prompts are random token ids (no prefix-cache hits).

  ~/.cache/strata/venv/bin/python bench/chunked_prefill_itl.py --bin-dir build/bin --budgets 2048,512,256
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from strata_grpc import load_stubs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(args, budget, pb, pbg):
    import grpc
    tmp = tempfile.mkdtemp(prefix="chunked_itl_")
    port_file = os.path.join(tmp, "ports")
    cluster = subprocess.Popen([os.path.join(args.bin_dir, "strata"), "cluster", "up", "--model", args.model,
                                "--port", "0", "--worker-port", "0", "--metrics-port", "0",
                                "--max-batched-tokens", str(budget), "--port-file", port_file],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not os.path.exists(port_file):
            if cluster.poll() is not None or time.time() > deadline:
                sys.exit("the cluster did not start")
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        stub = pbg.StrataStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        gaps, ttfts, decoded = [], [], [0]
        stop = threading.Event()
        lock = threading.Lock()

        def request(ids, n):
            req = pb.GenerateRequest(max_tokens=n, ignore_eos=True)
            req.token_ids.ids.extend(ids)
            req.sampling.temperature = 0
            return req

        def decoder(i):
            rng = random.Random(1000 + i)
            while not stop.is_set():
                last = None
                for chunk in stub.Generate(request([rng.randrange(1000, 40000) for _ in range(32)],
                                                   args.decode_tokens), timeout=600):
                    now = time.time()
                    if chunk.token_ids:
                        with lock:
                            if last is not None:
                                gaps.append(now - last)
                            decoded[0] += len(chunk.token_ids)
                        last = now

        def long_prompts():
            rng = random.Random(7)
            while not stop.is_set():
                t0, first = time.time(), None
                for chunk in stub.Generate(request([rng.randrange(1000, 40000) for _ in range(args.long_prompt_tokens)],
                                                   4), timeout=600):
                    if first is None and chunk.token_ids:
                        first = time.time() - t0
                ttfts.append(first)
                stop.wait(args.interval)

        threads = [threading.Thread(target=decoder, args=(i,)) for i in range(args.streams)]
        threads.append(threading.Thread(target=long_prompts))
        t_start = time.time()
        for t in threads:
            t.start()
        time.sleep(args.duration)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.time() - t_start
        return {"budget": budget, "gap_p50_ms": 1000 * pct(gaps, 0.5), "gap_p99_ms": 1000 * pct(gaps, 0.99),
                "gap_max_ms": 1000 * max(gaps), "decode_tok_s": decoded[0] / elapsed,
                "long_prompt_ttft_median_ms": 1000 * statistics.median(ttfts), "long_prompts": len(ttfts),
                "gaps": len(gaps)}
    finally:
        cluster.terminate()
        cluster.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--budgets", default="2048,512,256")
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--decode-tokens", type=int, default=200)
    ap.add_argument("--long-prompt-tokens", type=int, default=1500)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--duration", type=float, default=40.0)
    args = ap.parse_args()
    pb, pbg = load_stubs(tempfile.mkdtemp(prefix="chunked_itl_stubs_"), "chunked_prefill_itl")
    results = [run(args, int(b), pb, pbg) for b in args.budgets.split(",")]
    print(json.dumps(results, indent=1))
    print("\n| step budget (tokens) | decode gap p50 ms | p99 ms | max ms | decode tok/s | long-prompt TTFT median ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['budget']} | {r['gap_p50_ms']:.1f} | {r['gap_p99_ms']:.0f} | {r['gap_max_ms']:.0f} | "
              f"{r['decode_tok_s']:.1f} | {r['long_prompt_ttft_median_ms']:.0f} |")


if __name__ == "__main__":
    main()
