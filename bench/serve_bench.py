#!/usr/bin/env python3
"""Serving benchmark for a Strata cluster: what vLLM's `benchmark_serving` / `vllm bench serve`
and NVIDIA genai-perf report, over the native strata.v1 `Generate` API.

Workloads (prompts are token ids, random in [--id-low, --id-high), fresh for every run, so
nothing is shared by accident; every request asks for exactly OSL tokens with ignore_eos and
temperature 0):
  --pattern  comma-separated ISL/OSL shapes; presets long-short (1024/32), long-long (1024/256),
             short-long (64/256) with sizes from --long-isl/--short-isl/--long-osl/--short-osl,
             or explicit NAME=ISL/OSL or ISL/OSL. ISL + OSL must fit the served context.
  --shared-prefix P  every prompt of a run = one common prefix of P tokens (fresh per run) +
             a unique suffix of ISL - P tokens (prefix caching); 0 = all unique.
Load shapes (one run per point and pattern):
  --concurrency 1,4,8     closed loop: C clients, each sends its next request when its previous
                          one finished, until --num-requests were sent.
  --request-rate 1,2,inf  open loop: Poisson arrivals at R req/s (seeded exponential gaps;
                          inf = all at once); --max-concurrency caps the requests in flight.

Per run (definitions as vLLM's benchmark_serving):
  duration          first request sent -> last request finished
  request/output/total throughput = completed requests, output tokens, input + output tokens
                    divided by the duration
  TTFT              request sent -> first chunk carrying tokens received
  ITL               gaps between successive token-bearing chunks of a request (all requests'
                    gaps pooled; a chunk with several tokens is one gap)
  TPOT              per request (e2e - TTFT) / (output tokens - 1)
  e2e               request sent -> last token-bearing chunk received
each as mean / p50 / p90 / p99 in ms; plus the server's view: /metrics scraped before and
after the run, means of strata_time_to_first_token_seconds, strata_inter_token_latency_seconds
(per token), strata_e2e_request_latency_seconds, strata_request_queue_time_seconds from the
histograms' _sum/_count deltas, token and request counter deltas and the prefix-cache hit rate
(strata_prefix_cache_hits_total / strata_prefix_cache_queries_total deltas, in tokens). The
server figures count every request the coordinator served in the window: keep other clients off.

Output: one JSON object per run in a list (stdout and --json-out), a table on stderr, and a
plot (--plot FILE.png|FILE.svg, several comma-separated): output tokens/s against p50/p99 TTFT
and p50/p99 TPOT over the sweep points, one line per pattern and load shape.

Cluster: by default starts `strata cluster up` from --bin-dir on free ports (--model, --replicas,
--threads, --max-num-seqs, --max-queue, --kv-cache-mb pass through); with --coordinator-arg
(repeatable, e.g. --coordinator-arg=--prefix-caching=off) it starts strata-coordinator and one
strata-worker per replica itself so the flags reach the coordinator. It is stopped at the end,
on errors, Ctrl-C and SIGTERM. --address HOST:PORT (and --metrics URL) target a running cluster
instead.

  ~/.cache/strata/venv/bin/python bench/serve_bench.py --bin-dir build/bin \\
      --pattern long-short,long-long,short-long --concurrency 1,4,8,16 --num-requests 32 \\
      --json-out serve.json --plot serve.png

Needs grpcio, grpcio-tools (stubs generated from proto/strata/v1/strata.proto at start) and,
for --plot, matplotlib.
"""
import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from strata_grpc import free_ports, load_stubs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PRESETS = {  # name -> (ISL flag, OSL flag)
    "long-short": ("long_isl", "short_osl"),
    "long-long": ("long_isl", "long_osl"),
    "short-long": ("short_isl", "long_osl"),
    "short-short": ("short_isl", "short_osl"),
}
SERVER_HISTOGRAMS = {
    "ttft": "strata_time_to_first_token_seconds",
    "itl": "strata_inter_token_latency_seconds",
    "e2e": "strata_e2e_request_latency_seconds",
    "queue": "strata_request_queue_time_seconds",
}
SERVER_COUNTERS = {
    "prompt_tokens": "strata_request_prompt_tokens_total",
    "generation_tokens": "strata_request_generation_tokens_total",
    "requests_succeeded": "strata_request_success_total",
    "requests_failed": "strata_request_failure_total",
    "prefix_cache_queries": "strata_prefix_cache_queries_total",
    "prefix_cache_hits": "strata_prefix_cache_hits_total",
}
LATENCY_KEYS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")


def log(*a):
    print("[serve_bench]", *a, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Stubs, metrics scraping, statistics


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_prometheus(text):
    """{metric name: sum over all label sets} for every sample line of the exposition text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        if m.group(1).endswith("_bucket"):
            continue
        out[m.group(1)] = out.get(m.group(1), 0.0) + v
    return out


def scrape(url):
    if not url:
        return None
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return parse_prometheus(resp.read().decode())
    except OSError as e:
        log(f"warning: cannot scrape {url}: {e}")
        return None


def server_view(before, after):
    """Server-side figures of the window between two scrapes (None when either is missing)."""
    if before is None or after is None:
        return None
    d = lambda name: after.get(name, 0.0) - before.get(name, 0.0)  # noqa: E731
    view = {}
    for key, name in SERVER_HISTOGRAMS.items():
        n, s = d(name + "_count"), d(name + "_sum")
        view[f"{key}_count"] = int(round(n))
        view[f"{key}_mean_ms"] = s / n * 1e3 if n > 0 else None
    for key, name in SERVER_COUNTERS.items():
        view[key] = int(round(d(name)))
    q = view["prefix_cache_queries"]
    view["prefix_cache_hit_rate"] = view["prefix_cache_hits"] / q if q > 0 else 0.0
    return view


def percentile(xs, q):
    """Linear interpolation between closest ranks (numpy's default, as vLLM uses)."""
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q / 100.0
    lo, hi = int(math.floor(k)), min(int(math.floor(k)) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize_ms(xs):
    if not xs:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "n": 0}
    ms = [x * 1e3 for x in xs]
    return {"mean": sum(ms) / len(ms), "p50": percentile(ms, 50), "p90": percentile(ms, 90),
            "p99": percentile(ms, 99), "n": len(ms)}


# ---------------------------------------------------------------------------------------------
# The cluster


def resolve_model(model):
    if model != "default":
        return model
    d = os.environ.get("STRATA_MODEL_DIR", os.path.expanduser("~/.cache/strata/models"))
    return os.path.join(d, DEFAULT_MODEL_FILE)


class Cluster:
    """What serve_bench started: `strata cluster up` in its own process group, or (with
    --coordinator-arg) strata-coordinator and one strata-worker per replica, each in its own
    process group. stop() sends SIGTERM, then SIGKILL after 30 s."""

    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.procs = []  # (tag, Popen)
        self.port_file = os.path.join(tmp, "ports")
        self.commands = []
        for name in ("strata", "strata-coordinator", "strata-worker"):
            p = os.path.join(args.bin_dir, name)
            if not os.access(p, os.X_OK):
                raise BenchError(f"{p} not found or not executable (--bin-dir)")

    def _spawn(self, tag, argv):
        log("starting:", " ".join(argv))
        self.commands.append(" ".join(argv))
        f = open(os.path.join(self.tmp, f"{tag}.log"), "wb")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        f.close()
        self.procs.append((tag, p))
        return p

    def log_tail(self, tag, n=20):
        try:
            with open(os.path.join(self.tmp, f"{tag}.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def _wait_port_file(self, proc, tag, deadline):
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"{tag} exited with {proc.returncode}:\n{self.log_tail(tag)}")
            try:
                with open(self.port_file) as f:
                    parts = f.read().split()
                if len(parts) == 3:
                    return [int(p) for p in parts]
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.1)
        raise BenchError(f"no port file after {self.args.startup_timeout} s:\n{self.log_tail(tag)}")

    def start(self):
        a = self.args
        deadline = time.monotonic() + a.startup_timeout
        port, worker_port, metrics_port = free_ports(3)
        if not a.coordinator_arg:
            cmd = [os.path.join(a.bin_dir, "strata"), "cluster", "up", "--model", a.model,
                   "--replicas", str(a.replicas), "--port", str(port), "--worker-port", str(worker_port),
                   "--metrics-port", str(metrics_port), "--port-file", self.port_file]
            for flag in ("threads", "max_num_seqs", "max_queue", "kv_cache_mb"):
                if getattr(a, flag):
                    cmd += ["--" + flag.replace("_", "-"), str(getattr(a, flag))]
            proc = self._spawn("cluster", cmd)
            self.ports = self._wait_port_file(proc, "cluster", deadline)  # written once healthy
        else:
            model = resolve_model(a.model)
            name = os.path.basename(model)
            name = name[:-5] if name.endswith(".gguf") else name
            cmd = [os.path.join(a.bin_dir, "strata-coordinator"), "--model", model, "--model-name", name,
                   "--replicas", str(a.replicas), "--host", "127.0.0.1", "--port", str(port),
                   "--worker-port", str(worker_port), "--metrics-port", str(metrics_port),
                   "--port-file", self.port_file]
            for flag in ("max_num_seqs", "max_queue"):
                if getattr(a, flag):
                    cmd += ["--" + flag.replace("_", "-"), str(getattr(a, flag))]
            cmd += a.coordinator_arg
            coord = self._spawn("coordinator", cmd)
            self.ports = self._wait_port_file(coord, "coordinator", deadline)
            for r in range(a.replicas):
                w = [os.path.join(a.bin_dir, "strata-worker"), "--coordinator", f"127.0.0.1:{self.ports[1]}",
                     "--replica", str(r), "--model", model, "--model-name", name]
                if a.threads:
                    w += ["--threads", str(a.threads)]
                if a.kv_cache_mb:
                    w += ["--kv-cache-mb", str(a.kv_cache_mb)]
                self._spawn(f"worker{r}", w)
            self._wait_ready(deadline)
        log(f"cluster ready: client port {self.ports[0]}, metrics port {self.ports[2]}")
        return f"127.0.0.1:{self.ports[0]}", f"http://127.0.0.1:{self.ports[2]}/metrics"

    def _wait_ready(self, deadline):
        url = f"http://127.0.0.1:{self.ports[2]}/metrics"
        while time.monotonic() < deadline:
            for tag, p in self.procs:
                if p.poll() is not None:
                    raise BenchError(f"{tag} exited with {p.returncode}:\n{self.log_tail(tag)}")
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    text = resp.read().decode()
                ready = sum(float(l.split()[-1]) for l in text.splitlines()
                            if l.startswith("strata_replica_ready{"))
                if ready >= self.args.replicas:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise BenchError(f"replicas not ready after {self.args.startup_timeout} s:\n{self.log_tail('coordinator')}")

    def stop(self):
        live = [(t, p) for t, p in reversed(self.procs) if p.poll() is None]  # workers first
        if not live:
            return
        log("stopping the cluster")
        for _, p in live:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for tag, p in live:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                log(f"{tag} did not stop in 30 s; killing its process group")
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)

    def pids(self):
        return [p.pid for _, p in self.procs]


# ---------------------------------------------------------------------------------------------
# Workloads and load shapes


def parse_patterns(spec, args):
    pats = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        name, _, sizes = item.rpartition("=") if "=" in item else ("", "", item)
        if sizes in PRESETS:
            i, o = PRESETS[sizes]
            pats.append({"name": sizes, "isl": getattr(args, i), "osl": getattr(args, o)})
            continue
        m = re.fullmatch(r"(\d+)/(\d+)", sizes)
        if not m:
            raise BenchError(f"--pattern: '{item}' is neither a preset ({', '.join(PRESETS)}) nor [NAME=]ISL/OSL")
        isl, osl = int(m.group(1)), int(m.group(2))
        pats.append({"name": name or f"{isl}/{osl}", "isl": isl, "osl": osl})
    return pats


def parse_points(spec, conv):
    return [conv(s.strip()) for s in spec.split(",") if s.strip()] if spec else []


def make_prompts(rng, n, isl, shared_prefix, lo, hi):
    prefix = [rng.randrange(lo, hi) for _ in range(shared_prefix)]
    return [prefix + [rng.randrange(lo, hi) for _ in range(isl - shared_prefix)] for _ in range(n)]


async def one_request(pb, stub, prompt, osl, timeout):
    strata_pb2 = pb[0]
    req = strata_pb2.GenerateRequest(max_tokens=osl, ignore_eos=True)
    req.token_ids.ids.extend(prompt)
    req.sampling.temperature = 0.0
    rec = {"isl": len(prompt), "ok": False, "error": None, "output_tokens": 0, "chunks": 0,
           "ttft": None, "e2e": None, "itl": [], "finish_reason": None, "usage_completion": None}
    t0 = time.perf_counter()
    rec["t0"] = t0
    last = None
    try:
        call = stub.Generate(req, timeout=timeout)
        async for chunk in call:
            now = time.perf_counter()
            if chunk.token_ids:
                if last is None:
                    rec["ttft"] = now - t0
                else:
                    rec["itl"].append(now - last)
                last = now
                rec["chunks"] += 1
                rec["output_tokens"] += len(chunk.token_ids)
            if chunk.finish_reason:
                rec["finish_reason"] = strata_pb2.FinishReason.Name(chunk.finish_reason)
            if chunk.HasField("usage"):
                rec["usage_completion"] = chunk.usage.completion_tokens
        rec["t_end"] = time.perf_counter()
        if last is None:
            rec["error"] = "no tokens streamed"
        else:
            rec["e2e"] = last - t0
            rec["ok"] = True
    except Exception as e:  # a failed request is counted, not fatal
        rec["t_end"] = time.perf_counter()
        code = getattr(e, "code", None)
        rec["error"] = f"{code() if callable(code) else type(e).__name__}: " \
                       f"{e.details() if hasattr(e, 'details') else e}"
    return rec


class Channels:
    def __init__(self, grpc, pb, target, n):
        self.chans = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
                      for _ in range(max(1, n))]
        self.stubs = [pb[1].StrataStub(c) for c in self.chans]
        self.i = 0

    def next(self):
        self.i += 1
        return self.stubs[self.i % len(self.stubs)]

    async def close(self):
        for c in self.chans:
            await c.close()


async def run_closed(grpc, pb, target, prompts, osl, conc, timeout):
    chans = Channels(grpc, pb, target, min(conc, 16))
    try:
        for c in chans.chans:
            await asyncio.wait_for(c.channel_ready(), 30)
        it = iter(prompts)
        records = []

        async def client(k):
            stub = chans.stubs[k % len(chans.stubs)]
            for p in it:  # shared iterator: each client takes the next prompt when it is free
                records.append(await one_request(pb, stub, p, osl, timeout))

        start = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(conc)))
        return records, start
    finally:
        await chans.close()


async def run_poisson(grpc, pb, target, prompts, osl, rate, cap, rng, timeout):
    chans = Channels(grpc, pb, target, 8)
    try:
        for c in chans.chans:
            await asyncio.wait_for(c.channel_ready(), 30)
        sem = asyncio.Semaphore(cap) if cap else None
        records, tasks = [], []

        async def fire(p):
            if sem is None:
                records.append(await one_request(pb, chans.next(), p, osl, timeout))
            else:
                async with sem:
                    records.append(await one_request(pb, chans.next(), p, osl, timeout))

        start = time.perf_counter()
        t_next = start
        for p in prompts:
            delay = t_next - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(fire(p)))
            if not math.isinf(rate):
                t_next += rng.expovariate(rate)
        await asyncio.gather(*tasks)
        return records, start
    finally:
        await chans.close()


def run_summary(records, start, osl):
    ok = [r for r in records if r["ok"]]
    end = max((r["t_end"] for r in records), default=start)
    dur = max(end - start, 1e-9)
    out_tokens = sum(r["output_tokens"] for r in ok)
    in_tokens = sum(r["isl"] for r in ok)
    tpot = [(r["e2e"] - r["ttft"]) / (r["output_tokens"] - 1) for r in ok if r["output_tokens"] > 1]
    itl = [g for r in ok for g in r["itl"]]
    errors = [r["error"] for r in records if not r["ok"]]
    chunks = sum(r["chunks"] for r in ok)
    return {
        "completed": len(ok), "failed": len(errors), "errors": sorted(set(errors))[:5],
        "duration_s": dur,
        "total_input_tokens": in_tokens, "total_output_tokens": out_tokens,
        "output_tokens_mismatch": sum(1 for r in ok if r["output_tokens"] != osl
                                      or (r["usage_completion"] is not None and r["usage_completion"] != osl)),
        "request_throughput": len(ok) / dur,
        "output_throughput": out_tokens / dur,
        "total_token_throughput": (in_tokens + out_tokens) / dur,
        "tokens_per_chunk": out_tokens / chunks if chunks else None,
        "ttft_ms": summarize_ms([r["ttft"] for r in ok]),
        "itl_ms": summarize_ms(itl),
        "tpot_ms": summarize_ms(tpot),
        "e2e_ms": summarize_ms([r["e2e"] for r in ok]),
    }


def agreement(client, server):
    """Client mean minus server mean for TTFT and e2e, in ms."""
    if not server:
        return None
    out = {}
    for key in ("ttft", "e2e"):
        c, s = client[f"{key}_ms"]["mean"], server.get(f"{key}_mean_ms")
        out[f"{key}_client_minus_server_ms"] = c - s if c is not None and s is not None else None
    return out


# ---------------------------------------------------------------------------------------------
# Output


def pattern_label(c):
    sizes = f"{c['isl']}/{c['osl']}"
    return sizes if c["pattern"] == sizes else f"{c['pattern']} {sizes}"


def table(results):
    hdr = ("pattern", "prefix", "load", "req/s", "out tok/s", "tot tok/s", "TTFT p50/p99 ms",
           "TPOT p50/p99 ms", "ITL p50 ms", "e2e p50 ms", "srv TTFT/e2e ms", "hit rate")
    rows = []
    for r in results:
        c, s, x = r["config"], r["server"] or {}, r
        f = lambda v, p=0: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
        rows.append((pattern_label(c), str(c["shared_prefix"]), c["load_label"],
                     f(x["request_throughput"], 2), f(x["output_throughput"], 1), f(x["total_token_throughput"], 1),
                     f"{f(x['ttft_ms']['p50'])}/{f(x['ttft_ms']['p99'])}",
                     f"{f(x['tpot_ms']['p50'], 1)}/{f(x['tpot_ms']['p99'], 1)}",
                     f(x["itl_ms"]["p50"], 1), f(x["e2e_ms"]["p50"]),
                     f"{f(s.get('ttft_mean_ms'))}/{f(s.get('e2e_mean_ms'))}",
                     f(s.get("prefix_cache_hit_rate"), 2)))
    lines = ["| " + " | ".join(hdr) + " |", "|" + " --- |" * len(hdr)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def plot(results, paths):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError("--plot needs matplotlib (pip install matplotlib into the venv)")
    series = {}
    for r in results:
        c = r["config"]
        key = (pattern_label(c) + (f" prefix {c['shared_prefix']}" if c["shared_prefix"] else "")
               + (" (closed)" if c["load"] == "concurrency" else " (Poisson)"))
        series.setdefault(key, []).append(r)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, metric, title in ((axes[0], "ttft_ms", "TTFT"), (axes[1], "tpot_ms", "TPOT")):
        for i, (key, rs) in enumerate(series.items()):
            color = f"C{i % 10}"
            xs = [r["output_throughput"] for r in rs]
            for q, style in (("p50", "-o"), ("p99", "--^")):
                ys = [r[metric][q] for r in rs]
                if any(y is None for y in ys):
                    continue
                ax.plot(xs, ys, style, color=color, label=f"{key} {q}")
            for r in rs:
                if r[metric]["p50"] is not None:
                    ax.annotate(r["config"]["load_label"], (r["output_throughput"], r[metric]["p50"]),
                                textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
        ys = [r[metric][q] for r in results for q in ("p50", "p99") if r[metric][q]]
        if ys and max(ys) > 20 * min(ys):  # patterns of very different scale: log axis
            ax.set_yscale("log")
        ax.set_xlabel("output tokens/s")
        ax.set_ylabel(f"{title} (ms)")
        ax.set_title(f"{title} p50 / p99 vs throughput")
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle("Strata serving benchmark (labels: C = concurrency, R = request rate)")
    fig.tight_layout()
    for p in paths:
        fig.savefig(p)
        log(f"plot written to {p}")
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


async def bench(args, pb, grpc, target, metrics_url):
    strata_pb2 = pb[0]
    async with grpc.aio.insecure_channel(target) as ch:
        await asyncio.wait_for(ch.channel_ready(), 30)
        models = (await pb[1].StrataStub(ch).ListModels(strata_pb2.ListModelsRequest(), timeout=30)).models
    if not models:
        raise BenchError("the server lists no models")
    info = models[0]
    ctx, vocab = info.context_length, info.vocab_size
    lo = args.id_low if args.id_low is not None else min(1000, vocab // 4)
    hi = args.id_high if args.id_high is not None else vocab
    if not 0 <= lo < hi <= vocab:
        raise BenchError(f"token id range [{lo}, {hi}) is not inside the vocabulary (size {vocab})")
    patterns = parse_patterns(args.pattern, args)
    for p in patterns:
        if p["isl"] < 1 or p["osl"] < 1:
            raise BenchError(f"pattern {p['name']}: ISL and OSL must be >= 1")
        if p["isl"] + p["osl"] > ctx:
            raise BenchError(f"pattern {p['name']}: ISL {p['isl']} + OSL {p['osl']} exceeds the context length "
                             f"{ctx} of {info.name}")
        if args.shared_prefix >= p["isl"]:
            raise BenchError(f"--shared-prefix {args.shared_prefix} must be below ISL {p['isl']} ({p['name']})")
    points = [("concurrency", c) for c in parse_points(args.concurrency, int)]
    points += [("rate", r) for r in parse_points(args.request_rate, float)]
    if not points:
        raise BenchError("give --concurrency and/or --request-rate")
    for kind, v in points:
        if v <= 0:
            raise BenchError(f"--{kind}: points must be > 0")
    log(f"model {info.name}: context {ctx}, vocabulary {vocab}; prompt ids in [{lo}, {hi})")

    rng = random.Random(args.seed)
    log(f"seed {args.seed}")
    if args.warmup:
        recs, _ = await run_closed(grpc, pb, target, make_prompts(rng, args.warmup, min(16, ctx // 2), 0, lo, hi),
                                   min(8, ctx // 2), min(args.warmup, 4), args.request_timeout)
        if not all(r["ok"] for r in recs):
            raise BenchError(f"warm-up failed: {[r['error'] for r in recs if not r['ok']][:3]}")

    results = []
    for p in patterns:
        for kind, v in points:
            run_seed = rng.randrange(1 << 30)
            run_rng = random.Random(run_seed)
            prompts = make_prompts(run_rng, args.num_requests, p["isl"], args.shared_prefix, lo, hi)
            label = f"C{v}" if kind == "concurrency" else f"R{'inf' if math.isinf(v) else f'{v:g}'}"
            before = scrape(metrics_url)
            if kind == "concurrency":
                recs, start = await run_closed(grpc, pb, target, prompts, p["osl"], v, args.request_timeout)
            else:
                recs, start = await run_poisson(grpc, pb, target, prompts, p["osl"], v, args.max_concurrency,
                                                run_rng, args.request_timeout)
            await asyncio.sleep(args.settle)  # let the coordinator record the last finishes
            after = scrape(metrics_url)
            config = {"pattern": p["name"], "isl": p["isl"], "osl": p["osl"], "shared_prefix": args.shared_prefix,
                      "load": kind, "concurrency": v if kind == "concurrency" else None,
                      "request_rate": (None if kind == "concurrency" else ("inf" if math.isinf(v) else v)),
                      "max_concurrency": args.max_concurrency if kind == "rate" else None,
                      "load_label": label, "num_requests": args.num_requests, "seed": args.seed, "run_seed": run_seed,
                      "token_id_range": [lo, hi], "model": info.name, "context_length": ctx,
                      "target": target}
            summary = run_summary(recs, start, p["osl"])
            server = server_view(before, after)
            res = {"config": config, **summary, "server": server,
                   "client_vs_server": agreement(summary, server)}
            results.append(res)
            s = server or {}
            fmt = lambda v, n=1: "-" if v is None else f"{v:.{n}f}"  # noqa: E731
            log(f"{pattern_label({'pattern': p['name'], **p})} {label}: {summary['completed']}/{len(recs)} ok, "
                f"{summary['output_throughput']:.1f} out tok/s, TTFT p50 {fmt(summary['ttft_ms']['p50'])} ms "
                f"(server mean {fmt(s.get('ttft_mean_ms'))}, client mean {fmt(summary['ttft_ms']['mean'])}), "
                f"TPOT p50 {fmt(summary['tpot_ms']['p50'])} ms, e2e mean {fmt(summary['e2e_ms']['mean'])} "
                f"(server {fmt(s.get('e2e_mean_ms'))}), prefix hit rate {fmt(s.get('prefix_cache_hit_rate'), 3)}")
            if summary["failed"]:
                log(f"  {summary['failed']} failed: {summary['errors']}")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[1:]))
    g = ap.add_argument_group("cluster")
    g.add_argument("--address", help="target a running cluster at HOST:PORT instead of starting one")
    g.add_argument("--metrics", help="its metrics URL, e.g. http://127.0.0.1:8002/metrics (none: no server view)")
    g.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"),
                   help="directory with strata, strata-coordinator, strata-worker (default build/bin)")
    g.add_argument("--model", default="default", help="model path or 'default'")
    g.add_argument("--replicas", type=int, default=1)
    g.add_argument("--threads", type=int, default=0, help="threads per worker (default: strata's)")
    g.add_argument("--max-num-seqs", type=int, default=0)
    g.add_argument("--max-queue", type=int, default=0)
    g.add_argument("--kv-cache-mb", type=int, default=0)
    g.add_argument("--coordinator-arg", action="append", default=[],
                   help="extra strata-coordinator flag (repeatable, e.g. --coordinator-arg=--prefix-caching=off); "
                        "starts the coordinator and workers directly instead of `strata cluster up`")
    g.add_argument("--startup-timeout", type=float, default=300)
    w = ap.add_argument_group("workload")
    w.add_argument("--pattern", default="128/128",
                   help="comma-separated: presets " + ", ".join(PRESETS) + ", or [NAME=]ISL/OSL (default 128/128)")
    w.add_argument("--long-isl", type=int, default=1024)
    w.add_argument("--short-isl", type=int, default=64)
    w.add_argument("--long-osl", type=int, default=256)
    w.add_argument("--short-osl", type=int, default=32)
    w.add_argument("--shared-prefix", type=int, default=0,
                   help="tokens of a common prefix of every prompt of a run (rest unique); 0 = all unique")
    w.add_argument("--id-low", type=int, help="prompt ids drawn from [low, high) (default min(1000, vocab/4))")
    w.add_argument("--id-high", type=int, help="(default: the vocabulary size)")
    w.add_argument("--num-requests", type=int, default=32, help="requests per run")
    w.add_argument("--warmup", type=int, default=2, help="short requests before the first run")
    w.add_argument("--seed", type=int, help="seed of prompts and arrivals (default: random, recorded in the JSON); "
                   "the same seed twice against one running cluster repeats prompts its prefix cache may still hold")
    l = ap.add_argument_group("load")  # noqa: E741
    l.add_argument("--concurrency", default="", help="closed-loop points, e.g. 1,4,8,16")
    l.add_argument("--request-rate", default="", help="Poisson points in req/s, e.g. 0.5,1,2,inf")
    l.add_argument("--max-concurrency", type=int, default=0, help="cap on requests in flight for --request-rate")
    l.add_argument("--request-timeout", type=float, default=600)
    l.add_argument("--settle", type=float, default=0.2, help="seconds between a run's end and the metrics scrape")
    o = ap.add_argument_group("output")
    o.add_argument("--json-out", help="write the JSON list of runs here too")
    o.add_argument("--plot", help="comma-separated image files (.png, .svg) for the throughput/latency plot")
    args = ap.parse_args(argv)
    if not args.concurrency and not args.request_rate:
        args.concurrency = "1,4,8,16"
    if args.num_requests < 1 or args.replicas < 1 or args.shared_prefix < 0:
        ap.error("--num-requests and --replicas must be >= 1, --shared-prefix >= 0")
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    if args.address and args.coordinator_arg:
        ap.error("--coordinator-arg only applies when serve_bench starts the cluster (no --address)")

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    tmp = tempfile.mkdtemp(prefix="strata-serve-bench-")
    cluster = None
    try:
        pb = load_stubs(tmp, "serve_bench")
        import grpc
        import grpc.aio  # noqa: F401
        if args.address:
            target, metrics_url = args.address, args.metrics
        else:
            cluster = Cluster(args, tmp)
            target, metrics_url = cluster.start()
        results = asyncio.run(bench(args, pb, grpc, target, metrics_url))
        meta = {"cluster_commands": cluster.commands if cluster else None,
                "cluster_pids": cluster.pids() if cluster else None, "metrics": metrics_url}
        for r in results:
            r["meta"] = meta
        text = json.dumps(results, indent=2)
        print(text)
        if args.json_out:
            with open(args.json_out, "w") as f:
                f.write(text + "\n")
        print(table(results), file=sys.stderr)
        if args.plot:
            plot(results, [p.strip() for p in args.plot.split(",") if p.strip()])
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except BenchError as e:
        log(f"error: {e}")
        return 1
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
