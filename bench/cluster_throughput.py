#!/usr/bin/env python3
"""Aggregate decode throughput of a Strata cluster against the number of concurrent streams.

Starts `strata cluster up` with the default model on free ports, waits for its port file, then
for each concurrency level C (default 1, 4, 8, 16) runs C client streams at once over the
native strata.v1 Generate API, each stream sending --requests-per-stream requests one after
the other: a prompt of exactly --prompt-tokens token ids (random ids, different for every
request, so the prefix cache does not help) and --max-tokens new tokens with ignore_eos and
temperature 0. Levels alternate within each of --repeats rounds (1 4 8 16 1 4 8 16 ...), so a
slow spell of the machine hits every level.

Per level it reports the median over the repeats of the aggregate output tokens/s (all output
tokens of the round / wall time from the first request sent to the last response), the median
and p90 time to first token and the median inter-token latency (per request: time from its
first to its last token / (tokens - 1)) over all requests of that level, and the ratio of the
16-stream (largest level) to the 1-stream (smallest level) throughput. Prints a JSON summary
and a Markdown table on stdout; progress on stderr. The cluster is stopped at the end, on
Ctrl-C, SIGTERM and on errors.

Needs grpcio and grpcio-tools (the project venv has them); the strata.v1 stubs are generated
from proto/strata/v1/strata.proto into a temporary directory at start.

  ~/.cache/strata/venv/bin/python bench/cluster_throughput.py --bin-dir build/bin --repeats 3
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from strata_grpc import free_ports, load_stubs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*a):
    print("[cluster_throughput]", *a, file=sys.stderr, flush=True)


class Cluster:
    """`strata cluster up` in its own process group; stop() sends SIGTERM (then SIGKILL)."""

    def __init__(self, args, tmp):
        self.strata = os.path.join(args.bin_dir, "strata")
        if not os.access(self.strata, os.X_OK):
            sys.exit(f"cluster_throughput: {self.strata} not found or not executable (--bin-dir)")
        self.port_file = os.path.join(tmp, "ports")
        self.log_path = os.path.join(tmp, "cluster.log")
        port, worker_port, metrics_port = free_ports(3)
        self.cmd = [self.strata, "cluster", "up", "--model", args.model, "--replicas", str(args.replicas),
                    "--port", str(port), "--worker-port", str(worker_port),
                    "--metrics-port", str(metrics_port), "--port-file", self.port_file]
        if args.threads:
            self.cmd += ["--threads", str(args.threads)]
        if args.max_num_seqs:
            self.cmd += ["--max-num-seqs", str(args.max_num_seqs)]
        if args.tensor_parallel_size > 1 or args.pipeline_parallel_size > 1:
            self.cmd += ["--tensor-parallel-size", str(args.tensor_parallel_size),
                         "--pipeline-parallel-size", str(args.pipeline_parallel_size)]
        if args.kv_cache_mb:
            self.cmd += ["--kv-cache-mb", str(args.kv_cache_mb)]
        if args.collective_transport:
            self.cmd += ["--collective-transport", args.collective_transport]
        self.proc = None

    def start(self, timeout):
        log("starting:", " ".join(self.cmd))
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strata cluster up exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with open(self.port_file) as f:
                    parts = f.read().split()
                if len(parts) == 3:
                    self.ports = [int(p) for p in parts]
                    log(f"cluster ready: client port {self.ports[0]}, metrics port {self.ports[2]}")
                    return self.ports[0]
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"no port file after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def worker_memory(self):
        """RSS and PSS (MiB) of every strata-worker in the cluster's process group, from
        /proc/<pid>/smaps_rollup (PSS splits shared pages, e.g. a file mapping, between the
        processes that map them), and the weight MiB each worker logged."""
        out = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            try:
                if os.getpgid(pid) != self.proc.pid:
                    continue
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() != "strata-worker":
                        continue
                with open(f"/proc/{pid}/cmdline") as f:
                    argv = f.read().split("\0")
                fields = {}
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                            fields[parts[0][:-1]] = int(parts[1]) / 1024.0
            except (OSError, ProcessLookupError):
                continue
            rank = {"tp_rank": 0, "pp_stage": 0}
            for flag, key in (("--tp-rank", "tp_rank"), ("--pp-stage", "pp_stage")):
                if flag in argv:
                    rank[key] = int(argv[argv.index(flag) + 1])
            rank.update({"pid": pid, "rss_mib": round(fields.get("Rss", 0), 1),
                         "pss_mib": round(fields.get("Pss", 0), 1),
                         "pss_anon_mib": round(fields.get("Pss_Anon", 0), 1),
                         "pss_file_mib": round(fields.get("Pss_File", 0), 1)})
            out.append(rank)
        weights = []
        try:
            with open(self.log_path, errors="replace") as f:
                for line in f:
                    if "weights this rank reads:" in line:
                        weights.append(float(line.split("weights this rank reads:")[1].split()[0]))
        except OSError:
            pass
        return sorted(out, key=lambda r: (r["pp_stage"], r["tp_rank"])), weights

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        log("stopping the cluster")
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            log("cluster did not stop in 30 s; killing its process group")
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def one_request(pb, stub, prompt, args):
    strata_pb2 = pb[0]
    req = strata_pb2.GenerateRequest(max_tokens=args.max_tokens, ignore_eos=True)
    req.token_ids.ids.extend(prompt)
    req.sampling.temperature = 0.0
    t0 = time.perf_counter()
    t_first = t_last = None
    n = 0
    usage = None
    for chunk in stub.Generate(req, timeout=args.request_timeout):
        if chunk.token_ids:
            now = time.perf_counter()
            if t_first is None:
                t_first = now
            t_last = now
            n += len(chunk.token_ids)
        if chunk.HasField("usage"):
            usage = chunk.usage
    if n != args.max_tokens or (usage is not None and usage.prompt_tokens != len(prompt)):
        raise RuntimeError(f"request returned {n} tokens (wanted {args.max_tokens}), usage {usage}")
    return {"t0": t0, "end": t_last, "tokens": n, "ttft": t_first - t0,
            "itl": (t_last - t_first) / (n - 1) if n > 1 else None}


def run_level(pb, grpc, target, conc, args, rng):
    prompts = [[rng.randrange(args.id_low, args.id_high) for _ in range(args.prompt_tokens)]
               for _ in range(conc * args.requests_per_stream)]
    results, errors = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(conc)

    def stream(i):
        try:
            with grpc.insecure_channel(target) as ch:
                grpc.channel_ready_future(ch).result(timeout=30)
                stub = pb[1].StrataStub(ch)
                barrier.wait()
                for j in range(args.requests_per_stream):
                    r = one_request(pb, stub, prompts[i * args.requests_per_stream + j], args)
                    with lock:
                        results.append(r)
        except Exception as e:  # reported by the caller
            barrier.abort()
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} of {conc} streams failed; first: {errors[0]!r}")
    start = min(r["t0"] for r in results)
    end = max(r["end"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    return {"concurrency": conc, "tokens": tokens, "wall_s": end - start,
            "tokens_per_s": tokens / (end - start),
            "ttft_s": [r["ttft"] for r in results], "itl_s": [r["itl"] for r in results if r["itl"]]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"),
                    help="directory with strata, strata-coordinator, strata-worker (default build/bin)")
    ap.add_argument("--model", default="default", help="model path or 'default'")
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="threads per worker (default: strata's)")
    ap.add_argument("--max-num-seqs", type=int, default=0, help="coordinator batch bound (default: strata's)")
    ap.add_argument("--kv-cache-mb", type=int, default=0, help="KV budget per worker (default: strata's)")
    ap.add_argument("--tensor-parallel-size", type=int, default=1)
    ap.add_argument("--pipeline-parallel-size", type=int, default=1)
    ap.add_argument("--collective-transport", choices=["auto", "tcp", "shm"], default=None,
                    help="TP/PP transport between the ranks (default: strata's, auto)")
    ap.add_argument("--concurrency", default="1,4,8,16", help="comma-separated stream counts")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--requests-per-stream", type=int, default=1)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--id-low", type=int, default=1000, help="prompt token ids are drawn from [low, high)")
    ap.add_argument("--id-high", type=int, default=40000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--startup-timeout", type=float, default=300)
    ap.add_argument("--request-timeout", type=float, default=600)
    ap.add_argument("--json-out", help="also write the JSON summary here")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    if args.repeats < 1 or not levels or min(levels) < 1:
        ap.error("--repeats and --concurrency levels must be >= 1")

    # SIGTERM ends the run like Ctrl-C does, so the cluster is stopped either way.
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored

    tmp = tempfile.mkdtemp(prefix="strata-cluster-throughput-")
    cluster = None
    try:
        pb = load_stubs(tmp, "cluster_throughput")
        import grpc
        cluster = Cluster(args, tmp)
        port = cluster.start(args.startup_timeout)
        target = f"127.0.0.1:{port}"
        rng = random.Random(args.seed)

        # Warm-up: one short request (first-touch of weights and KV pages).
        with grpc.insecure_channel(target) as ch:
            grpc.channel_ready_future(ch).result(timeout=30)
            warm = argparse.Namespace(**vars(args))
            warm.max_tokens = 8
            one_request(pb, pb[1].StrataStub(ch), [rng.randrange(args.id_low, args.id_high) for _ in range(16)],
                        warm)

        rounds = {c: [] for c in levels}
        for rep in range(args.repeats):
            for c in levels:
                r = run_level(pb, grpc, target, c, args, rng)
                rounds[c].append(r)
                log(f"repeat {rep + 1}/{args.repeats} concurrency {c:3d}: {r['tokens_per_s']:8.1f} tok/s "
                    f"({r['tokens']} tokens in {r['wall_s']:.2f} s), TTFT median "
                    f"{statistics.median(r['ttft_s']) * 1e3:.0f} ms, ITL median "
                    f"{statistics.median(r['itl_s']) * 1e3:.1f} ms")

        ranks, weights = cluster.worker_memory()
        summary = {"command": " ".join(cluster.cmd), "replicas": args.replicas, "threads": args.threads or None,
                   "tensor_parallel_size": args.tensor_parallel_size,
                   "pipeline_parallel_size": args.pipeline_parallel_size,
                   "collective_transport": args.collective_transport or "auto",
                   "worker_memory": ranks, "weights_mib_logged": weights,
                   "max_num_seqs": args.max_num_seqs or None, "prompt_tokens": args.prompt_tokens,
                   "max_tokens": args.max_tokens, "repeats": args.repeats,
                   "requests_per_stream": args.requests_per_stream, "levels": []}
        for c in levels:
            rs = rounds[c]
            ttft = [x for r in rs for x in r["ttft_s"]]
            itl = [x for r in rs for x in r["itl_s"]]
            summary["levels"].append({
                "concurrency": c,
                "tokens_per_s_median": statistics.median(r["tokens_per_s"] for r in rs),
                "tokens_per_s_all": [round(r["tokens_per_s"], 2) for r in rs],
                "ttft_ms_median": statistics.median(ttft) * 1e3,
                "ttft_ms_p90": percentile(ttft, 90) * 1e3,
                "itl_ms_median": statistics.median(itl) * 1e3 if itl else None,
                "requests": len(ttft),
            })
        lo = summary["levels"][levels.index(min(levels))]
        hi = summary["levels"][levels.index(max(levels))]
        summary["scaling"] = {"from": lo["concurrency"], "to": hi["concurrency"],
                              "throughput_ratio": hi["tokens_per_s_median"] / lo["tokens_per_s_median"]}

        text = json.dumps(summary, indent=2)
        print(text)
        if args.json_out:
            with open(args.json_out, "w") as f:
                f.write(text + "\n")
        print()
        print("| streams | output tok/s (median) | TTFT median ms | TTFT p90 ms | ITL median ms |")
        print("| --- | --- | --- | --- | --- |")
        for L in summary["levels"]:
            itl = f"{L['itl_ms_median']:.1f}" if L["itl_ms_median"] is not None else "n/a"
            print(f"| {L['concurrency']} | {L['tokens_per_s_median']:.1f} | {L['ttft_ms_median']:.0f} | "
                  f"{L['ttft_ms_p90']:.0f} | {itl} |")
        s = summary["scaling"]
        print(f"\n{s['to']}-stream / {s['from']}-stream throughput: {s['throughput_ratio']:.2f}x")
        print("\n| rank (pp stage, tp rank) | RSS MiB | PSS MiB | PSS anonymous MiB | PSS file-backed MiB |")
        print("| --- | --- | --- | --- | --- |")
        for r in ranks:
            print(f"| {r['pp_stage']}, {r['tp_rank']} | {r['rss_mib']:.0f} | {r['pss_mib']:.0f} | "
                  f"{r['pss_anon_mib']:.0f} | {r['pss_file_mib']:.0f} |")
        if weights:
            print(f"weights per rank (logged, MiB): {', '.join(f'{w:.1f}' for w in weights)}")
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except RuntimeError as e:
        log(f"error: {e}")
        return 1
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
