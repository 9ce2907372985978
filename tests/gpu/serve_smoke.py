#!/usr/bin/env python3
"""End to end on a GPU: the real strata-coordinator and strata-worker processes
serving the default model from `--device cuda:0` (graphs on and off, FP8 weights
on sm_89+), each answering the same greedy request as a CPU worker does.

usage: serve_smoke.py BIN_DIR MODEL [--sm N]

Fails when a configuration does not serve (worker exits, no readiness within
the bound, a client error or an empty completion). Token agreement with the
CPU worker is printed, not asserted: BF16 activations on the GPU against f32
on the CPU may flip near ties (docs/correctness.md), FP8 weights more so.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

PROMPT = "The three primary colours are"
MAX_TOKENS = 32


def serve_and_ask(bins, model, worker_args, workdir, tp=1):
    """worker_args: one list per rank (tp ranks of one replica)."""
    port_file = os.path.join(workdir, "ports")
    log_c = open(os.path.join(workdir, "coordinator.log"), "wb")
    log_w = open(os.path.join(workdir, "worker.log"), "wb")
    coord = subprocess.Popen([os.path.join(bins, "strata-coordinator"), "--model", model,
                              "--host", "127.0.0.1", "--port", "0", "--worker-port", "0",
                              "--metrics-port", "0", "--port-file", port_file,
                              "--tensor-parallel-size", str(tp)],
                             stdout=log_c, stderr=subprocess.STDOUT)
    workers = []
    try:
        deadline = time.time() + 60
        while not os.path.exists(port_file):
            if coord.poll() is not None or time.time() > deadline:
                raise RuntimeError("coordinator did not start")
            time.sleep(0.05)
        port, worker_port, metrics_port = (int(x) for x in open(port_file).read().split())
        for rank_args in worker_args:
            workers.append(subprocess.Popen([os.path.join(bins, "strata-worker"), "--coordinator",
                                             f"127.0.0.1:{worker_port}", "--model", model, *rank_args],
                                            stdout=log_w, stderr=subprocess.STDOUT))
        deadline = time.time() + 300  # weights upload + KV sizing + first graphs
        while True:
            for w in workers:
                if w.poll() is not None:
                    raise RuntimeError(f"worker exited with {w.returncode}")
            if time.time() > deadline:
                raise RuntimeError("replica not ready after 300 s")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
                    if 'strata_replica_ready{replica="0"} 1' in r.read().decode():
                        break
            except OSError:
                pass
            time.sleep(0.2)
        t0 = time.time()
        out = subprocess.run([os.path.join(bins, "strata"), "client", "--address", f"127.0.0.1:{port}",
                              "--prompt", PROMPT, "--max-tokens", str(MAX_TOKENS), "--temperature", "0",
                              "--ignore-eos", "--print-token-ids", "--timeout-s", "120"],
                             capture_output=True, text=True, timeout=180)
        elapsed = time.time() - t0
        if out.returncode != 0:
            raise RuntimeError(f"client failed ({out.returncode}): {out.stderr[-2000:]}")
        ids = [int(x) for line in out.stdout.splitlines() if line.startswith("token_ids:")
               for x in line.split(":", 1)[1].replace(",", " ").split()]
        return out.stdout, ids, elapsed
    finally:
        for p in (*workers, coord):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bins")
    ap.add_argument("model")
    ap.add_argument("--sm", type=int, default=90)
    ap.add_argument("--gpus", type=int, default=1, help="GPUs visible; >= 3 adds a TP=3 replica")
    ap.add_argument("--cpu-only", action="store_true", help="check this script without a GPU")
    args = ap.parse_args()
    configs = [("cpu", [["--device", "cpu", "--threads", "8"]]),
               ("cuda:0", [["--device", "cuda:0"]]),
               ("cuda:0 graphs off", [["--device", "cuda:0", "--cuda-graphs", "off"]])]
    if args.cpu_only:
        configs = configs[:1]
    elif args.sm >= 89:
        configs.append(("cuda:0 fp8 weights", [["--device", "cuda:0", "--weight-dtype", "fp8"]]))
    if args.gpus >= 3 and not args.cpu_only:  # the default model's 9 / 3 heads split 3 ways
        configs.append(("cuda:0-2 tensor parallel 3 (NCCL, graphs with collectives)",
                        [["--device", f"cuda:{r}", "--tp-rank", str(r), "--tp-size", "3",
                          "--peer-host", "127.0.0.1"] for r in range(3)]))
    failed = False
    reference = None
    for name, worker_args in configs:
        with tempfile.TemporaryDirectory(prefix="serve_smoke_") as workdir:
            try:
                text, ids, elapsed = serve_and_ask(args.bins, args.model, worker_args, workdir,
                                                   tp=len(worker_args))
            except Exception as e:  # report every configuration, then fail
                logs = "".join(open(os.path.join(workdir, f)).read()[-3000:]
                               for f in ("coordinator.log", "worker.log")
                               if os.path.exists(os.path.join(workdir, f)))
                print(f"FAIL {name}: {e}\n{logs}")
                failed = True
                continue
        if not ids:
            print(f"FAIL {name}: empty completion\n{text}")
            failed = True
            continue
        if reference is None:
            reference = ids
        same = next((i for i, (a, b) in enumerate(zip(ids, reference)) if a != b), min(len(ids), len(reference)))
        print(f"ok   {name}: {len(ids)} tokens in {elapsed:.2f} s (incl. prefill); "
              f"first {same} tokens equal the CPU worker's")
        print("     " + text.strip().splitlines()[0][:200])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
