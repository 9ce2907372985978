#!/usr/bin/env python3
"""Aggregate decode throughput: Strata's cluster vs llama.cpp's server, same model, same prompts.

For each concurrency C (default 8 and 16) both systems get C simultaneous streaming requests,
each a --prompt-tokens prompt given as token ids (random, distinct per request) and
--max-tokens new tokens with ignore-EOS and greedy sampling; the figure is output tokens / wall
time from the first request sent to the last token received. Systems and levels alternate over
--repeats rounds; medians are reported with the Strata / llama.cpp ratio.

llama.cpp's server is NOT built or fetched by this project: pass the path of a `llama-server`
binary you built (e.g. from the llama.cpp sources vendored in PyPI's llama-cpp-python sdist:
`pip download --no-binary :all: --no-deps llama-cpp-python==0.3.36`, then
`cmake -S vendor/llama.cpp -B build -DLLAMA_CURL=OFF && cmake --build build --target llama-server`).
It runs with `-np <max C> -c <max C × (prompt + max tokens + 64)> --threads N --threads-batch N`
(continuous batching is its default), prompts sent to /completion as token-id arrays with
`cache_prompt: false`.

  ~/.cache/strata/venv/bin/python bench/llamacpp_server_compare.py --bin-dir build/bin \
      --llama-server ~/.cache/strata/llama-server/.../build/bin/llama-server --repeats 3
"""
import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from strata_grpc import free_ports, load_stubs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.expanduser("~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf")


def log(*a):
    print("[llamacpp_server_compare]", *a, file=sys.stderr, flush=True)


def wait_for(check, proc, what, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"{what} did not become ready in {timeout} s")


class Strata:
    name = "strata"

    def __init__(self, args, tmp):
        self.pb, self.pbg = load_stubs(tmp, "llamacpp_server_compare")
        port_file = os.path.join(tmp, "ports")
        self.proc = subprocess.Popen([os.path.join(args.bin_dir, "strata"), "cluster", "up", "--model", args.model,
                                      "--port", "0", "--worker-port", "0", "--metrics-port", "0",
                                      "--threads", str(args.threads), "--port-file", port_file],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: os.path.exists(port_file), self.proc, "strata cluster up")
        import grpc
        self.channel = grpc.insecure_channel(f"127.0.0.1:{open(port_file).read().split()[0]}")
        self.stub = self.pbg.StrataStub(self.channel)

    def generate(self, ids, n):
        req = self.pb.GenerateRequest(max_tokens=n, ignore_eos=True)
        req.token_ids.ids.extend(ids)
        req.sampling.temperature = 0
        return sum(len(c.token_ids) for c in self.stub.Generate(req, timeout=900))

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(60)


class LlamaServer:
    name = "llama.cpp"

    def __init__(self, args, tmp):
        self.port = free_ports(1)[0]
        slots = max(args.concurrency)
        ctx = slots * (args.prompt_tokens + args.max_tokens + 64)
        self.proc = subprocess.Popen([args.llama_server, "-m", args.model, "--host", "127.0.0.1", "--port",
                                      str(self.port), "-np", str(slots), "-c", str(ctx), "--threads",
                                      str(args.threads), "--threads-batch", str(args.threads), "--no-webui"],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "llama.log"), "wb"),
                                     start_new_session=True)

        def healthy():
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return r.status == 200
        wait_for(healthy, self.proc, "llama-server")

    def generate(self, ids, n):
        body = json.dumps({"prompt": ids, "n_predict": n, "ignore_eos": True, "temperature": 0, "stream": True,
                           "cache_prompt": False}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/completion", data=body,
                                     headers={"Content-Type": "application/json"})
        tokens = 0
        with urllib.request.urlopen(req, timeout=900) as r:
            for line in r:
                line = line.strip()
                if not line.startswith(b"data: "):
                    continue
                msg = json.loads(line[6:])
                if msg.get("stop"):
                    tokens = msg.get("tokens_predicted", tokens)
                    break
        return tokens

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(60)


def measure(system, prompts, n):
    got = [0] * len(prompts)

    def one(i):
        got[i] = system.generate(prompts[i], n)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.time() - t0
    if any(g != n for g in got):
        sys.exit(f"{system.name}: expected {n} tokens per request, got {got}")
    return sum(got) / dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--llama-server", required=True)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--concurrency", default="8,16")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    rng = random.Random(args.seed)
    results = {}
    for r in range(args.repeats):
        for cls in (Strata, LlamaServer):
            tmp = tempfile.mkdtemp(prefix="llamacpp_cmp_")
            system = cls(args, tmp)
            try:
                measure(system, [[rng.randrange(1000, 40000) for _ in range(16)]], 8)  # warm-up
                for c in args.concurrency:
                    prompts = [[rng.randrange(1000, 40000) for _ in range(args.prompt_tokens)] for _ in range(c)]
                    tps = measure(system, prompts, args.max_tokens)
                    results.setdefault((system.name, c), []).append(tps)
                    log(f"round {r + 1}: {system.name:9s} {c:2d} streams: {tps:7.1f} output tok/s")
            finally:
                system.stop()
    print("| streams | Strata output tok/s | llama.cpp server output tok/s | Strata / llama.cpp |")
    print("| --- | --- | --- | --- |")
    summary = {}
    for c in args.concurrency:
        s = statistics.median(results[("strata", c)])
        l = statistics.median(results[("llama.cpp", c)])
        summary[c] = {"strata": s, "llama.cpp": l, "ratio": s / l}
        print(f"| {c} | {s:.1f} | {l:.1f} | {s / l:.2f}x |")
    print(json.dumps({"config": {k: v for k, v in vars(args).items()}, "medians": summary}, indent=1))


if __name__ == "__main__":
    main()
