#!/usr/bin/env python3
"""Bounded soak of a Strata cluster: mixed load with client cancellations, short deadlines,
bad input, and worker SIGKILLs + restarts for --duration-s (default 30 min). Not run in CI.

  ~/.cache/strata/venv/bin/python bench/soak.py --bin-dir build/bin             # 30 min
  ~/.cache/strata/venv/bin/python bench/soak.py --bin-dir build/bin --duration-s 90 \\
      --kill-every-s 30 --json-out soak.json --plot soak.png                    # a quick check

Cluster: strata-coordinator + one strata-worker per replica (default 2, --threads each),
started from copies of --bin-dir's binaries (a rebuild during the soak does not change what a
restarted worker runs) on 127.0.0.1 with OS-picked ports (--port 0, --port-file), each in its
own process group; --kv-cache-mb, --coordinator-arg=--flag=value and --worker-arg=... pass
through (e.g. a small KV pool to force preemption: --kv-cache-mb 24
--worker-arg=--max-context=1024 --coordinator-arg=--max-context=1024). When
`strata-coordinator --help` lists --join-token-file, a random token (0600 file) is given to
the coordinator and every worker, as in production. Every process is stopped at the end, on
errors, Ctrl-C and SIGTERM (SIGTERM, SIGKILL after 15 s).
Logs stay in a temporary directory, printed at the end (kept on failure or --keep-logs).

Load: --concurrency client threads, each sending its next request when the previous one
ended, over the real APIs: strata.v1 Generate streams (stubs generated from
proto/strata/v1/strata.proto with grpcio-tools), KServe ModelStreamInfer and ModelInfer
(tritonclient.grpc). Prompts are text, token ids or chat messages of 2..300 words (30% of the
text ones after one of 3 shared ~100-word preambles, so the prefix cache holds and shares
blocks), max_tokens 1..128, temperature 0 or 0.6..1.2 (seeded), some with stop strings, some
ignore_eos. Each request is one of (seeded by --seed):
  normal    (72%)  deadline --request-timeout-s (120 s); must end OK with a well-formed result
                   (finish reason set, token counts <= max_tokens, == max_tokens with
                   ignore_eos and no stop, no stop string in the text);
  cancel    (12%)  cancelled by the client after 1..4 chunks or 0..300 ms;
  deadline   (8%)  a 50..500 ms deadline on a long generation (DEADLINE_EXCEEDED expected; for
                   KServe half use the request's `timeout` parameter, the server's deadline);
  invalid    (8%)  a malformed request (top_p 1.5, negative temperature, min_tokens > max_tokens,
                   a token id past the vocabulary, prompt + max_tokens over the context, no
                   prompt; KServe: bad JSON, unknown or mistyped key, no text_input, `stream` on
                   ModelInfer): INVALID_ARGUMENT expected.
Every gRPC call has a deadline (at most --request-timeout-s).

Chaos: at t = k * --kill-every-s (k = 1, 2, ... while t < --duration-s) one worker (the
replicas of --kill-replicas in turn, default all) gets SIGKILL (--kill-signal TERM: SIGTERM,
the worker leaves its replica cleanly; mix: the two in turn); once the coordinator reports
its replica not ready the soak waits --restart-delay-s (2 s) and starts it again, then waits
until it is ready. A kill window runs from the SIGKILL until the replica is ready again.
A worker that exits by itself is a failure; the soak restarts it and goes on. Workers live
about replicas x --kill-every-s; to watch one worker's RSS over the whole run, leave one
replica alone: --replicas 3 --kill-replicas 1,2. One replica only runs without kills
(--kill-replicas ''): while the only replica is down every request is refused.

Outcomes per request: ok, cancelled-by-client, deadline (a deadline request ended with
DEADLINE_EXCEEDED), invalid-argument-expected (an invalid request ended with
INVALID_ARGUMENT), failed-with-killed-worker (UNAVAILABLE naming the killed replica or its
worker, or "its replica's worker went away", for a request in flight during that replica's
kill window), cancelled-at-stop (still running at the end of the drain, cancelled by the
soak), unexpected-failure (anything else, with its code and message, also a malformed OK
result and an invalid request that succeeded).

Samples every --sample-every-s (10 s): VmRSS and VmHWM of the coordinator and every worker
(/proc/PID/status), strata_kv_blocks_free/_used/_total, strata_replica_ready and the
scheduler gauges per replica from the metrics port.

End: at --duration-s load stops; requests still running get --drain-s (60 s) to end, then
are cancelled; the soak waits up to --idle-timeout-s (30 s) for every replica to be ready and
idle, takes a last sample and stops the cluster. Exit code 0 only if all of these hold:
  no_leaked_blocks     strata_kv_blocks_free == strata_kv_blocks_total > 0 for every replica;
  no_unexpected        zero unexpected-failure requests, no worker exited that the soak did not
                       kill, and every restarted worker became ready;
  coordinator_alive    the coordinator never exited before the soak stopped it;
  coordinator_rss_flat RSS(last sample) - RSS(sample nearest 25% of the run) <=
                       max(5% of RSS(25%), 20 MiB);
  worker_rss_flat      the same rule for the longest-lived worker process (workers are
                       restarted), between the sample nearest 25% of its lifetime and its last;
                       only measured when it has >= 4 samples (else reported, not asserted);
  some_load            at least one request ended ok (the load really ran);
  coordinator_clean_shutdown  the coordinator exits 0 on the soak's final SIGTERM (its drain).
It prints a JSON summary (outcome counts, per API, requests/s, RSS series summary, kills with
the requests each took down and their messages, KV blocks at the end, the server's success /
failure / preemption counters, checks; --json-out FILE also writes it, with every sample)
and, with --plot FILE.png, RSS and KV blocks over time with the kills marked (matplotlib).

Bounded: the soak ends by itself after about --duration-s + --drain-s + --idle-timeout-s +
a minute (plus a restart in progress, at most --startup-timeout-s).

Needs grpcio, grpcio-tools, tritonclient[grpc], numpy and (for --plot) matplotlib: run it with
~/.cache/strata/venv/bin/python.
"""
import argparse
import json
import os
import queue
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from strata_grpc import load_stubs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(os.environ.get("STRATA_MODEL_DIR", os.path.expanduser("~/.cache/strata/models")),
                             "SmolLM2-135M-Instruct.Q4_1.gguf")
MIB = 1 << 20
RSS_TOLERANCE_FRAC = 0.05
RSS_TOLERANCE_BYTES = 20 * MIB
OUTCOMES = ("ok", "cancelled-by-client", "deadline", "invalid-argument-expected", "failed-with-killed-worker",
            "cancelled-at-stop", "unexpected-failure")
APIS = (("generate", 0.5), ("kserve_stream", 0.3), ("kserve_infer", 0.2))
KINDS = (("normal", 0.72), ("cancel", 0.12), ("deadline", 0.08), ("invalid", 0.08))
SERVER_COUNTERS = ("strata_request_success_total", "strata_request_failure_total", "strata_preemptions_total",
                   "strata_workers_left_total")
INVALID_GENERATE = ("top_p", "temperature", "min_tokens", "token_id", "context", "no_prompt")
INVALID_KSERVE = ("json", "unknown_key", "mistyped_key", "no_text", "top_p")
STOPS = (".", " the", ",", "\n", " and", "!")
WORDS = ("the of and to in is was for on that with as by at from his her an were are which this be "
         "has had one their its new after who they have two first been city world river music war "
         "people time year school history story light garden mountain ocean winter summer market "
         "engine signal bridge window machine language number forest island village station letter "
         "quickly slowly bright quiet ancient modern golden small large north south east west").split()


def _preamble(i):
    rng = random.Random(1000 + i)
    return " ".join(rng.choice(WORDS) for _ in range(100)).capitalize() + "."


PREAMBLES = [_preamble(i) for i in range(3)]


def log(*a):
    print(f"[soak {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


class SoakError(RuntimeError):
    pass


def weighted(rng, table):
    x, acc = rng.random(), 0.0
    for name, w in table:
        acc += w
        if x < acc:
            return name
    return table[-1][0]


# ---------------------------------------------------------------------------------------------
# Processes and metrics


def proc_status(pid):
    """(VmRSS, VmHWM) in bytes of a live process, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


_GAUGE = re.compile(r'^(strata_[a-z_]+)\{replica="(\d+)"\}\s+(\S+)')


def replica_gauges(text):
    """{replica: {gauge name without strata_: value}} of the per-replica gauges."""
    out = {}
    for line in text.splitlines():
        m = _GAUGE.match(line)
        if m:
            out.setdefault(int(m.group(2)), {})[m.group(1)[len("strata_"):]] = float(m.group(3))
    return out


def has_flag(binary, flag):
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in out.stdout + out.stderr


class Cluster:
    """The coordinator and one worker per replica, each in its own process group (the
    terminal's Ctrl-C reaches only the soak). workers[r] is replica r's current process;
    worker_history keeps every worker process ever started (for RSS and exit accounting)."""

    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.coordinator = None
        self.workers = [None] * args.replicas
        self.worker_history = []  # {replica, pid, proc, started, killed}
        self.lock = threading.Lock()
        self.stopping = False  # set by stop(): no more workers are started
        self.model_name = os.path.splitext(os.path.basename(args.model))[0]
        for name in ("strata-coordinator", "strata-worker"):
            p = os.path.join(args.bin_dir, name)
            if not os.access(p, os.X_OK):
                raise SoakError(f"{p} not found or not executable (--bin-dir)")
        # Copies: a rebuild of --bin-dir during the soak must not change what restarted workers run.
        self.bin_dir = os.path.join(tmp, "bin")
        os.makedirs(self.bin_dir)
        for name in ("strata-coordinator", "strata-worker"):
            shutil.copy2(os.path.join(args.bin_dir, name), self.bin_dir)
        self.token_file = None
        coord_bin = os.path.join(self.bin_dir, "strata-coordinator")
        worker_bin = os.path.join(self.bin_dir, "strata-worker")
        if has_flag(coord_bin, "--join-token-file") and has_flag(worker_bin, "--join-token-file"):
            self.token_file = os.path.join(tmp, "join-token")
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        else:
            log("warning: the binaries have no --join-token-file; the worker port admits anyone on loopback")

    def _spawn(self, tag, argv):
        f = open(os.path.join(self.tmp, f"{tag}.log"), "ab")
        try:
            return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        finally:
            f.close()

    def log_tail(self, tag, n=25):
        try:
            with open(os.path.join(self.tmp, f"{tag}.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def start(self):
        a = self.args
        port_file = os.path.join(self.tmp, "ports")
        cmd = [os.path.join(self.bin_dir, "strata-coordinator"), "--model", a.model, "--model-name", self.model_name,
               "--replicas", str(a.replicas), "--host", "127.0.0.1", "--port", "0", "--worker-port", "0",
               "--metrics-port", "0", "--port-file", port_file]
        if self.token_file:
            cmd += ["--join-token-file", self.token_file]
        cmd += a.coordinator_arg
        log("starting:", " ".join(cmd))
        self.coordinator = self._spawn("coordinator", cmd)
        deadline = time.monotonic() + a.startup_timeout_s
        while True:
            if self.coordinator.poll() is not None:
                raise SoakError(f"the coordinator exited with {self.coordinator.returncode}:\n"
                                f"{self.log_tail('coordinator')}")
            try:
                with open(port_file) as f:
                    parts = f.read().split()
                if len(parts) == 3:
                    self.port, self.worker_port, self.metrics_port = (int(p) for p in parts)
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise SoakError(f"no port file after {a.startup_timeout_s} s:\n{self.log_tail('coordinator')}")
            time.sleep(0.05)
        self.address = f"127.0.0.1:{self.port}"
        for r in range(a.replicas):
            self.start_worker(r)
        for r in range(a.replicas):
            if not self.wait_ready(r, True, a.startup_timeout_s):
                raise SoakError(f"replica {r} not ready after {a.startup_timeout_s} s:\n{self.log_tail(f'worker{r}')}"
                                f"\n{self.log_tail('coordinator')}")
        log(f"cluster ready: {self.address}, metrics http://127.0.0.1:{self.metrics_port}/metrics, logs {self.tmp}")

    def start_worker(self, r):
        a = self.args
        cmd = [os.path.join(self.bin_dir, "strata-worker"), "--coordinator", f"127.0.0.1:{self.worker_port}",
               "--replica", str(r), "--model", a.model, "--model-name", self.model_name, "--threads", str(a.threads)]
        if a.kv_cache_mb:
            cmd += ["--kv-cache-mb", str(a.kv_cache_mb)]
        if self.token_file:
            cmd += ["--join-token-file", self.token_file]
        cmd += a.worker_arg
        with self.lock:  # spawned under the lock so that stop() cannot miss it
            if self.stopping:
                return None
            p = self._spawn(f"worker{r}", cmd)
            self.workers[r] = p
            self.worker_history.append({"replica": r, "pid": p.pid, "proc": p, "started": time.monotonic(),
                                        "killed": False})
        return p

    def kill_worker(self, r, sig=signal.SIGKILL):
        with self.lock:
            p = self.workers[r]
            for h in self.worker_history:
                if h["proc"] is p:
                    h["killed"] = True
        p.send_signal(sig)
        try:
            p.wait(15)  # SIGTERM: the worker leaves within 5 s
        except subprocess.TimeoutExpired:
            log(f"worker of replica {r} (pid {p.pid}) still running 15 s after {sig.name}; SIGKILL")
            p.kill()
            p.wait(10)
        return p.pid

    def metrics_text(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def gauges(self):
        try:
            return replica_gauges(self.metrics_text())
        except OSError:
            return {}

    def wait_ready(self, r, ready, timeout):
        deadline = time.monotonic() + timeout
        want = 1.0 if ready else 0.0
        while time.monotonic() < deadline:
            if self.gauges().get(r, {}).get("replica_ready") == want:
                return True
            if self.coordinator.poll() is not None:
                return False
            p = self.workers[r]
            if ready and p is not None and p.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def unexpected_worker_exits(self):
        with self.lock:
            return [{"replica": h["replica"], "pid": h["pid"], "returncode": h["proc"].returncode}
                    for h in self.worker_history if not h["killed"] and h["proc"].poll() is not None]

    def stop(self):
        with self.lock:
            self.stopping = True
            procs = [h["proc"] for h in self.worker_history] + ([self.coordinator] if self.coordinator else [])
        live = [p for p in procs if p.poll() is None]
        if not live:
            return None
        log("stopping the cluster")
        # The coordinator first: it drains (nothing is running by now), tells the workers to
        # shut down and exits; then whatever is left.
        if self.coordinator is not None and self.coordinator.poll() is None:
            try:
                os.killpg(self.coordinator.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.coordinator.wait(15)
            except subprocess.TimeoutExpired:
                pass
        for p in live:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in live:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)
        return self.coordinator.returncode if self.coordinator is not None else None


# ---------------------------------------------------------------------------------------------
# Requests


class Record:
    __slots__ = ("id", "thread", "api", "kind", "variant", "t0", "t1", "code", "message", "client_cancelled",
                 "stop_cancelled", "tokens", "finish", "text", "max_tokens", "stop", "ignore_eos", "bad_output")

    def __init__(self, rid, thread, spec):
        self.id, self.thread = rid, thread
        self.api, self.kind, self.variant = spec["api"], spec["kind"], spec.get("variant")
        self.max_tokens, self.stop, self.ignore_eos = spec["max_tokens"], spec["stop"], spec["ignore_eos"]
        self.t0 = self.t1 = None
        self.code = self.message = None
        self.client_cancelled = self.stop_cancelled = False
        self.tokens, self.finish, self.text, self.bad_output = 0, None, "", None


def make_spec(rng, args, model_info):
    api, kind = weighted(rng, APIS), weighted(rng, KINDS)
    words = [rng.choice(WORDS) for _ in range(rng.choice((rng.randint(2, 20), rng.randint(20, 300))))]
    text = " ".join(words).capitalize()
    if rng.random() < 0.3:
        text = rng.choice(PREAMBLES) + " " + text
    spec = {"api": api, "kind": kind, "text": text,
            "max_tokens": rng.randint(1, 128), "temperature": 0.0 if rng.random() < 0.5 else rng.uniform(0.6, 1.2),
            "seed": rng.randrange(1 << 31), "stop": [], "ignore_eos": rng.random() < 0.5,
            "deadline": args.request_timeout_s}
    if api == "generate":
        spec["prompt_form"] = rng.choice(("text", "token_ids", "chat"))
        if spec["prompt_form"] == "token_ids":
            spec["token_ids"] = [rng.randrange(20, model_info["vocab"]) for _ in range(len(words))]
    if rng.random() < 0.3:
        spec["stop"] = rng.sample(STOPS, rng.randint(1, 2))
    if kind == "cancel":
        if rng.random() < 0.5:
            spec["cancel_after_chunks"] = rng.randint(1, 4)
        else:
            spec["cancel_after_s"] = rng.uniform(0.0, 0.3)
        spec["max_tokens"] = rng.randint(16, 128)
    elif kind == "deadline":
        spec["deadline"] = rng.uniform(0.05, 0.5)
        spec["max_tokens"], spec["ignore_eos"], spec["stop"] = 128, True, []
        spec["server_timeout"] = api != "generate" and rng.random() < 0.5
    elif kind == "invalid":
        spec["variant"] = rng.choice(INVALID_GENERATE if api == "generate" else
                                     INVALID_KSERVE + (("stream_on_infer",) if api == "kserve_infer" else ()))
        spec["deadline"] = min(30.0, args.request_timeout_s)
    return spec


class Client(threading.Thread):
    """One closed-loop client: its own strata.v1 channel and tritonclient client."""

    def __init__(self, index, soak):
        super().__init__(name=f"client{index}", daemon=True)
        import grpc
        import tritonclient.grpc as tc
        self.index, self.soak = index, soak
        self.grpc, self.tc = grpc, tc
        self.rng = random.Random(soak.args.seed * 1000 + index)
        self.channel = grpc.insecure_channel(soak.cluster.address)
        self.stub = soak.pb[1].StrataStub(self.channel)
        self.kclient = tc.InferenceServerClient(soak.cluster.address)
        self.current = None  # the Record in flight
        self.cancel_call = None  # cancels the call in flight (thread-safe)
        self.n = 0

    def run(self):
        while not self.soak.stop_load.is_set():
            spec = make_spec(self.rng, self.soak.args, self.soak.model_info)
            self.n += 1
            rec = Record(f"soak-{self.index}-{self.n}", self.index, spec)
            self.current = rec
            rec.t0 = time.monotonic()
            try:
                getattr(self, "do_" + spec["api"])(spec, rec)
            except Exception as e:  # a client-side bug or an unforeseen error: an unexpected failure
                rec.code = rec.code or "CLIENT_EXCEPTION"
                rec.message = rec.message or f"{type(e).__name__}: {e}"
            rec.t1 = time.monotonic()
            self.current, self.cancel_call = None, None
            if rec.code is None:
                rec.bad_output = check_output(rec)
            rec.text = ""  # checked; long soaks keep only the verdict
            self.soak.records.append(rec)
            if rec.code == "UNAVAILABLE":
                time.sleep(0.2)  # back off as a real client would (no ready replica: no hot loop)
        try:
            self.kclient.close()
        except Exception:  # best effort
            pass
        self.channel.close()

    def stop_now(self):
        rec, cancel = self.current, self.cancel_call
        if rec is not None and cancel is not None:
            rec.stop_cancelled = True
            cancel()

    # -- strata.v1 Generate -------------------------------------------------------------------

    def do_generate(self, spec, rec):
        pb2 = self.soak.pb[0]
        info = self.soak.model_info
        req = pb2.GenerateRequest(max_tokens=spec["max_tokens"], ignore_eos=spec["ignore_eos"], request_id=rec.id)
        req.stop.extend(spec["stop"])
        form = spec["prompt_form"]
        if form == "text":
            req.text = spec["text"]
        elif form == "token_ids":
            req.token_ids.ids.extend(spec["token_ids"])
        else:
            req.chat.messages.add(role="system", content="You are a helpful assistant.")
            req.chat.messages.add(role="user", content=spec["text"])
        req.sampling.temperature = spec["temperature"]
        req.sampling.seed = spec["seed"]
        v = spec.get("variant")
        if v == "top_p":
            req.sampling.top_p = 1.5
        elif v == "temperature":
            req.sampling.temperature = -0.5
        elif v == "min_tokens":
            req.min_tokens = req.max_tokens + 5
        elif v == "token_id":
            req.token_ids.ids.extend([5, info["vocab"] + 7])
        elif v == "context":
            req.max_tokens = info["context"] + 1
        elif v == "no_prompt":
            req.ClearField("prompt")
        call = self.stub.Generate(req, timeout=spec["deadline"])
        self.cancel_call = call.cancel
        timer = None
        if "cancel_after_s" in spec:
            def cancel():
                rec.client_cancelled = True
                call.cancel()
            timer = threading.Timer(spec["cancel_after_s"], cancel)
            timer.daemon = True
            timer.start()
        usage = None
        chunks = 0
        try:
            for chunk in call:
                rec.text += chunk.text
                rec.tokens += len(chunk.token_ids)
                if chunk.token_ids:
                    chunks += 1
                if chunk.finish_reason:
                    rec.finish = pb2.FinishReason.Name(chunk.finish_reason)
                if chunk.HasField("usage"):
                    usage = chunk.usage.completion_tokens
                if spec.get("cancel_after_chunks") and chunks >= spec["cancel_after_chunks"]:
                    rec.client_cancelled = True
                    call.cancel()
        except self.grpc.RpcError as e:
            rec.code, rec.message = e.code().name, e.details()
        finally:
            if timer:
                timer.cancel()
        if rec.code is None:
            if rec.finish is None or rec.finish == "FINISH_REASON_CANCELLED":
                rec.bad_output = f"stream ended with finish_reason {rec.finish}"
            elif usage != rec.tokens:
                rec.bad_output = f"usage.completion_tokens {usage} != {rec.tokens} streamed token ids"
            else:
                rec.finish = {"FINISH_REASON_STOP": "stop", "FINISH_REASON_LENGTH": "length"}[rec.finish]

    # -- KServe ---------------------------------------------------------------------------------

    def kserve_inputs(self, spec, stream):
        import numpy as np
        tc = self.tc
        v = spec.get("variant")
        params = {"max_tokens": spec["max_tokens"], "temperature": spec["temperature"], "seed": spec["seed"],
                  "ignore_eos": spec["ignore_eos"]}
        if spec["stop"]:
            params["stop"] = spec["stop"]
        raw_params = json.dumps(params)
        if v == "json":
            raw_params = "{not json"
        elif v == "unknown_key":
            raw_params = json.dumps(dict(params, temprature=1))
        elif v == "mistyped_key":
            raw_params = json.dumps(dict(params, max_tokens="four"))
        elif v == "top_p":
            raw_params = json.dumps(dict(params, top_p=2.0))
        ins = []
        if v != "no_text":
            t = tc.InferInput("text_input", [1], "BYTES")
            t.set_data_from_numpy(np.array([spec["text"].encode()], dtype=object))
            ins.append(t)
        p = tc.InferInput("sampling_parameters", [1], "BYTES")
        p.set_data_from_numpy(np.array([raw_params.encode()], dtype=object))
        ins.append(p)
        for name in ("exclude_input_in_output", "return_finish_reason", "return_num_output_tokens"):
            x = tc.InferInput(name, [1], "BOOL")
            x.set_data_from_numpy(np.array([True], dtype=bool))
            ins.append(x)
        if stream or v == "stream_on_infer":
            s = tc.InferInput("stream", [1], "BOOL")
            s.set_data_from_numpy(np.array([True], dtype=bool))
            ins.append(s)
        return ins

    @staticmethod
    def kserve_error(rec, error):
        status = error.status() if hasattr(error, "status") else None
        msg = error.message() if hasattr(error, "message") else str(error)
        if status:
            rec.code, rec.message = status.replace("StatusCode.", ""), msg
        else:  # a stream's error_message: "CODE: message"
            m = re.match(r"^([A-Z_]+): (.*)$", msg or "", re.S)
            rec.code, rec.message = (m.group(1), m.group(2)) if m else ("UNKNOWN", msg)

    @staticmethod
    def kserve_result(rec, result):
        out = result.as_numpy("text_output")
        if out is not None:
            rec.text += out[0].decode(errors="replace")
        n = result.as_numpy("num_output_tokens")
        if n is not None:
            rec.tokens += int(n[0])
        fr = result.as_numpy("finish_reason")
        if fr is not None and fr[0]:
            rec.finish = fr[0].decode()

    def do_kserve_stream(self, spec, rec):
        q = queue.Queue()
        server_timeout = spec.get("server_timeout")
        stream_deadline = self.soak.args.request_timeout_s if server_timeout else spec["deadline"]
        self.kclient.start_stream(callback=lambda result, error: q.put((result, error)),
                                  stream_timeout=stream_deadline)
        want_cancel = threading.Event()
        self.cancel_call = want_cancel.set
        cancel_at = rec.t0 + spec["cancel_after_s"] if "cancel_after_s" in spec else None
        cancelled = False
        try:
            self.kclient.async_stream_infer(self.soak.model_name, self.kserve_inputs(spec, True), request_id=rec.id,
                                            timeout=int(spec["deadline"] * 1e6) if server_timeout else None)
            responses = 0
            hard_end = time.monotonic() + stream_deadline + 10
            while True:
                if cancel_at is not None and time.monotonic() >= cancel_at:
                    rec.client_cancelled = True
                    want_cancel.set()
                if want_cancel.is_set():
                    self.kclient.stop_stream(cancel_requests=True)
                    cancelled = True
                    rec.code, rec.message = "CANCELLED", "cancelled by the client"
                    return
                if time.monotonic() > hard_end:
                    rec.code, rec.message = "CLIENT_HANG", f"no end of the stream {stream_deadline + 10:.0f} s after start"
                    return
                try:
                    result, error = q.get(timeout=0.02)
                except queue.Empty:
                    continue
                if error is not None:
                    self.kserve_error(rec, error)
                    return
                self.kserve_result(rec, result)
                responses += 1
                if result.get_response().parameters["triton_final_response"].bool_param:
                    return
                if spec.get("cancel_after_chunks") and responses >= spec["cancel_after_chunks"]:
                    rec.client_cancelled = True
                    want_cancel.set()
        finally:
            if not cancelled:
                t = time.monotonic()
                self.kclient.stop_stream(cancel_requests=rec.code is not None)  # half-close, wait for the end
                if rec.code is None and time.monotonic() - t > 10:
                    rec.bad_output = f"the server ended the stream {time.monotonic() - t:.0f} s after the half-close"

    def do_kserve_infer(self, spec, rec):
        done = threading.Event()
        box = {}

        def callback(result, error):
            box["result"], box["error"] = result, error
            done.set()

        server_timeout = spec.get("server_timeout")
        client_deadline = self.soak.args.request_timeout_s if server_timeout else spec["deadline"]
        ctx = self.kclient.async_infer(self.soak.model_name, self.kserve_inputs(spec, False), callback,
                                       request_id=rec.id, client_timeout=client_deadline,
                                       timeout=int(spec["deadline"] * 1e6) if server_timeout else None)
        self.cancel_call = ctx.cancel
        cancel_after = spec.get("cancel_after_s")
        if "cancel_after_chunks" in spec:  # one response only: cancel after a short while instead
            cancel_after = 0.05 * spec["cancel_after_chunks"]
        if cancel_after is not None and not done.wait(cancel_after):
            rec.client_cancelled = True
            ctx.cancel()
        if not done.wait(client_deadline + 10):
            rec.code, rec.message = "CLIENT_HANG", f"no answer {client_deadline + 10:.0f} s after start"
            return
        if box["error"] is not None:
            self.kserve_error(rec, box["error"])
        else:
            self.kserve_result(rec, box["result"])


def check_output(rec):
    """None if an OK result is well formed, else why not (rec.bad_output: what the API call
    already found wrong)."""
    if rec.bad_output:
        return rec.bad_output
    if rec.kind == "invalid":
        return f"expected INVALID_ARGUMENT ({rec.variant}), got OK"
    if rec.finish not in ("stop", "length"):
        return f"finish_reason {rec.finish!r}"
    if rec.tokens > rec.max_tokens:
        return f"{rec.tokens} tokens > max_tokens {rec.max_tokens}"
    if rec.ignore_eos and not rec.stop and (rec.tokens != rec.max_tokens or rec.finish != "length"):
        return f"ignore_eos without stop strings: {rec.tokens} tokens ({rec.finish}), want {rec.max_tokens} (length)"
    for s in rec.stop:
        if s in rec.text:
            return f"stop string {s!r} in the returned text"
    return None


def classify(rec, kills):
    """(outcome, detail) of one finished request; kills are the soak's kill windows."""
    if rec.code is None:
        return ("ok", None) if rec.bad_output is None else ("unexpected-failure", f"OK but {rec.bad_output}")
    if rec.code == "CANCELLED" and rec.stop_cancelled:
        return "cancelled-at-stop", None
    if rec.code == "CANCELLED" and rec.client_cancelled:
        return "cancelled-by-client", None
    if rec.code == "DEADLINE_EXCEEDED" and rec.kind == "deadline":
        return "deadline", None
    if rec.code == "INVALID_ARGUMENT" and rec.kind == "invalid":
        return "invalid-argument-expected", None
    if rec.code == "UNAVAILABLE" and killed_by(rec, kills) is not None:
        return "failed-with-killed-worker", None
    return "unexpected-failure", f"{rec.code}: {rec.message}"


def killed_by(rec, kills):
    """Index in kills of the (latest) kill whose window the UNAVAILABLE request overlapped and
    whose replica or worker its message names, or None."""
    msg = rec.message or ""
    found = None
    for i, k in enumerate(kills):
        end = k["t_ready"] if k["t_ready"] is not None else float("inf")
        r = k["replica"]
        names_it = (re.search(rf"\breplica {r}\b", msg) or re.search(rf"\bworker r{r}-", msg)
                    or "its replica's worker went away" in msg)
        if rec.t0 <= end and rec.t1 >= k["t_kill"] and names_it:
            found = i
    return found


# ---------------------------------------------------------------------------------------------
# The soak


class Soak:
    def __init__(self, args, cluster, pb):
        self.args, self.cluster, self.pb = args, cluster, pb
        self.model_name = cluster.model_name
        self.records = []  # list.append is atomic
        self.kills = []
        self.samples = []
        self.restart_failures = []
        self.stop_load = threading.Event()
        self.stop_sampling = threading.Event()
        self.t_start = None
        self.coordinator_died_at = None
        self.exits_seen = set()

    def fetch_model_info(self):
        import grpc
        with grpc.insecure_channel(self.cluster.address) as ch:
            stub = self.pb[1].StrataStub(ch)
            models = stub.ListModels(self.pb[0].ListModelsRequest(), timeout=10).models
        m = [m for m in models if m.name == self.model_name][0]
        self.model_info = {"vocab": m.vocab_size, "context": m.context_length}
        log(f"model {m.name}: vocabulary {m.vocab_size}, context {m.context_length}")

    def sample(self):
        now = time.monotonic() - self.t_start
        c = self.cluster
        s = {"t": round(now, 2), "coordinator": proc_status(c.coordinator.pid) if c.coordinator.poll() is None else None,
             "workers": {}, "replicas": {str(r): g for r, g in c.gauges().items()},
             "in_flight": sum(1 for cl in self.clients if cl.current is not None)}
        with c.lock:
            current = list(c.workers)
        for r, p in enumerate(current):
            if p is not None and p.poll() is None:
                st = proc_status(p.pid)
                if st:
                    s["workers"][str(p.pid)] = {"replica": r, "rss": st[0], "hwm": st[1]}
        self.samples.append(s)
        return s

    def sampler(self):
        next_t = time.monotonic()
        while not self.stop_sampling.is_set():
            s = self.sample()
            counts = {}
            for rec in list(self.records):
                counts[rec.code or "OK"] = counts.get(rec.code or "OK", 0) + 1
            rss = s["coordinator"][0] / MIB if s["coordinator"] else float("nan")
            blocks = " ".join(f"r{r}:{int(g.get('kv_blocks_free', -1))}/{int(g.get('kv_blocks_total', -1))}"
                              f"{'' if g.get('replica_ready') == 1 else '(down)'}" for r, g in s["replicas"].items())
            wrss = " ".join(f"{w['replica']}:{w['rss'] / MIB:.0f}" for w in s["workers"].values())
            log(f"t={s['t']:.0f}s requests {sum(counts.values())} {counts} | rss MiB coordinator {rss:.1f} "
                f"workers {wrss} | kv free {blocks} | kills {len(self.kills)}")
            for e in self.cluster.unexpected_worker_exits():
                if e["pid"] not in self.exits_seen:
                    self.exits_seen.add(e["pid"])
                    tail = self.cluster.log_tail(f"worker{e['replica']}")
                    log(f"worker of replica {e['replica']} (pid {e['pid']}) exited by itself with "
                        f"{e['returncode']}:\n{tail}")
                    if not self.stop_load.is_set() and self.cluster.workers[e["replica"]].pid == e["pid"]:
                        self.cluster.start_worker(e["replica"])
            if s["coordinator"] is None and self.coordinator_died_at is None:
                self.coordinator_died_at = s["t"]
                log(f"the coordinator exited ({self.cluster.coordinator.returncode}):\n"
                    f"{self.cluster.log_tail('coordinator')}")
                self.stop_load.set()
            next_t += self.args.sample_every_s
            self.stop_sampling.wait(max(0.0, next_t - time.monotonic()))

    def chaos(self):
        a, c = self.args, self.cluster
        order = a.kill_replicas if a.kill_replicas is not None else list(range(a.replicas))
        i = 0
        # Kills at t = k * --kill-every-s from the start (right after a slow restart if one overran).
        while order and (i + 1) * a.kill_every_s < a.duration_s and not self.stop_load.wait(
                max(0.0, self.t_start + (i + 1) * a.kill_every_s - time.monotonic())):
            r = order[i % len(order)]
            i += 1
            sig = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM}.get(
                a.kill_signal, (signal.SIGKILL, signal.SIGTERM)[(i - 1) % 2])
            k = {"replica": r, "t_kill": time.monotonic(), "t_down": None, "t_ready": None, "signal": sig.name}
            self.kills.append(k)
            k["pid"] = c.kill_worker(r, sig)
            log(f"{sig.name} to the worker of replica {r} (pid {k['pid']})")
            if c.wait_ready(r, False, 30):
                k["t_down"] = time.monotonic()
            time.sleep(a.restart_delay_s)
            if c.start_worker(r) is None:
                return
            if c.wait_ready(r, True, a.startup_timeout_s):
                k["t_ready"] = time.monotonic()
                log(f"replica {r} ready again {k['t_ready'] - k['t_kill']:.1f} s after the kill")
            else:
                self.restart_failures.append({"replica": r, "log": c.log_tail(f"worker{r}")})
                log(f"replica {r} did not become ready after its restart:\n{c.log_tail(f'worker{r}')}")
                return

    def run(self):
        a = self.args
        self.fetch_model_info()
        self.clients = [Client(i, self) for i in range(a.concurrency)]
        self.t_start = time.monotonic()
        threads = [threading.Thread(target=self.sampler, name="sampler", daemon=True),
                   threading.Thread(target=self.chaos, name="chaos", daemon=True)]
        for t in threads + self.clients:
            t.start()
        end = self.t_start + a.duration_s
        while time.monotonic() < end and not self.stop_load.is_set():
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        self.t_load_end = time.monotonic()
        log("load stops; draining")
        self.stop_load.set()
        drain_end = time.monotonic() + a.drain_s
        for cl in self.clients:
            cl.join(max(0.0, drain_end - time.monotonic()))
        for cl in self.clients:
            if cl.is_alive():
                cl.stop_now()
        for cl in self.clients:
            cl.join(15)
        stuck = [cl.name for cl in self.clients if cl.is_alive()]
        # Chaos stopped with the load; it finishes a restart (bounded by --startup-timeout-s)
        # before the idle check.
        threads[1].join(a.startup_timeout_s + 45)
        idle = self.wait_idle()
        self.stop_sampling.set()
        threads[0].join(30)
        self.sample()
        # Before the soak stops the cluster (its workers then exit on purpose).
        self.unexpected_exits = self.cluster.unexpected_worker_exits()
        self.server_counters = {}
        try:
            for line in self.cluster.metrics_text().splitlines():
                if line.startswith(SERVER_COUNTERS):
                    name, _, value = line.rpartition(" ")
                    self.server_counters[name] = float(value)
        except (OSError, ValueError):
            pass
        return stuck, idle

    def wait_idle(self):
        deadline = time.monotonic() + self.args.idle_timeout_s
        g = {}
        while time.monotonic() < deadline:
            g = self.cluster.gauges()
            if len(g) == self.args.replicas and all(
                    x.get("replica_ready") == 1 and x.get("kv_blocks_total", 0) > 0
                    and x.get("kv_blocks_free") == x.get("kv_blocks_total")
                    and not x.get("num_requests_running") and not x.get("num_requests_waiting") for x in g.values()):
                break
            time.sleep(0.2)
        return {str(r): x for r, x in g.items()}


def rss_check(series, label):
    """series: [(t, rss bytes)] of one process, in time order. The rule: RSS(last) - RSS(sample
    nearest 25% of the series' span) <= max(RSS_TOLERANCE_FRAC of it, RSS_TOLERANCE_BYTES)."""
    if len(series) < 4:
        return {"label": label, "samples": len(series), "measured": False, "ok": True}
    t0, t1 = series[0][0], series[-1][0]
    at = t0 + 0.25 * (t1 - t0)
    base_t, base = min(series, key=lambda s: abs(s[0] - at))
    last = series[-1][1]
    limit = max(RSS_TOLERANCE_FRAC * base, RSS_TOLERANCE_BYTES)
    return {"label": label, "samples": len(series), "measured": True, "t_first": t0, "t_base": base_t, "t_last": t1,
            "rss_first_mib": series[0][1] / MIB, "rss_base_mib": base / MIB, "rss_last_mib": last / MIB,
            "rss_max_mib": max(s[1] for s in series) / MIB, "growth_mib": (last - base) / MIB,
            "limit_mib": limit / MIB, "ok": last - base <= limit}


def summarize(soak, stuck, idle, coordinator_rc, wall):
    a = soak.args
    kills = soak.kills
    outcomes = {o: 0 for o in OUTCOMES}
    per_api = {}
    unexpected = []
    tokens = 0
    for rec in soak.records:
        outcome, detail = classify(rec, kills)
        outcomes[outcome] += 1
        per_api.setdefault(rec.api, {}).setdefault(outcome, 0)
        per_api[rec.api][outcome] += 1
        if outcome == "ok":
            tokens += rec.tokens
        if outcome == "unexpected-failure":
            unexpected.append({"id": rec.id, "api": rec.api, "kind": rec.kind, "variant": rec.variant,
                               "t0": round(rec.t0 - soak.t_start, 2), "t1": round(rec.t1 - soak.t_start, 2),
                               "detail": detail})
    for k in kills:
        k["killed_requests"], k["messages"] = 0, set()
    for rec in soak.records:
        if rec.code == "UNAVAILABLE":
            i = killed_by(rec, kills)
            if i is not None:
                kills[i]["killed_requests"] += 1
                kills[i]["messages"].add(rec.message)
    for k in kills:
        k["messages"] = sorted(k["messages"])[:5]
    load_s = soak.t_load_end - soak.t_start
    coord = [(s["t"], s["coordinator"][0]) for s in soak.samples if s["coordinator"]]
    by_pid = {}
    for s in soak.samples:
        for pid, w in s["workers"].items():
            by_pid.setdefault(pid, {"replica": w["replica"], "series": []})["series"].append((s["t"], w["rss"]))
    longest = max(by_pid.items(), key=lambda kv: kv[1]["series"][-1][0] - kv[1]["series"][0][0], default=None)
    coord_rss = rss_check(coord, "coordinator")
    worker_rss = (rss_check(longest[1]["series"], f"worker r{longest[1]['replica']} pid {longest[0]}")
                  if longest else {"label": "worker", "samples": 0, "measured": False, "ok": True})
    leaks = {r: {"free": g.get("kv_blocks_free"), "total": g.get("kv_blocks_total"), "ready": g.get("replica_ready")}
             for r, g in idle.items()}
    exits = soak.unexpected_exits
    checks = {
        "no_leaked_blocks": len(leaks) == a.replicas and all(
            v["total"] and v["free"] == v["total"] for v in leaks.values()),
        "no_unexpected": outcomes["unexpected-failure"] == 0 and not exits and not soak.restart_failures
        and not stuck,
        "coordinator_alive": soak.coordinator_died_at is None,
        "coordinator_rss_flat": coord_rss["ok"] and coord_rss["measured"],
        "worker_rss_flat": worker_rss["ok"],
        "some_load": outcomes["ok"] > 0,
        "coordinator_clean_shutdown": coordinator_rc == 0,
    }
    return {
        "passed": all(checks.values()),
        "checks": checks,
        "config": {k: getattr(a, k) for k in ("model", "replicas", "threads", "duration_s", "concurrency",
                                              "kill_every_s", "kill_replicas", "kill_signal", "seed", "request_timeout_s",
                                              "kv_cache_mb", "coordinator_arg", "worker_arg")},
        "join_token": soak.cluster.token_file is not None,
        "load_s": round(load_s, 1), "wall_s": round(wall, 1),
        "requests": len(soak.records), "outcomes": outcomes, "per_api": per_api,
        "requests_per_s": round(len(soak.records) / load_s, 3) if load_s > 0 else None,
        "ok_per_s": round(outcomes["ok"] / load_s, 3) if load_s > 0 else None,
        "ok_output_tokens": tokens,
        "unexpected_failures": unexpected[:50], "unexpected_failures_total": len(unexpected),
        "unexpected_worker_exits": exits, "restart_failures": soak.restart_failures, "stuck_clients": stuck,
        "kills": [{"replica": k["replica"], "pid": k["pid"], "signal": k["signal"], "t_kill": round(k["t_kill"] - soak.t_start, 2),
                   "down_after_s": round(k["t_down"] - k["t_kill"], 2) if k["t_down"] else None,
                   "ready_after_s": round(k["t_ready"] - k["t_kill"], 2) if k["t_ready"] else None,
                   "killed_requests": k["killed_requests"], "messages": k["messages"]} for k in kills],
        "kv_blocks_at_end": leaks,
        "server_counters": soak.server_counters,
        "coordinator_died_at_s": soak.coordinator_died_at, "coordinator_exit_code_at_stop": coordinator_rc,
        "rss": {"rule": f"RSS(last) - RSS(25%) <= max({RSS_TOLERANCE_FRAC:.0%}, {RSS_TOLERANCE_BYTES // MIB} MiB)",
                "coordinator": coord_rss, "longest_lived_worker": worker_rss,
                "workers": {pid: rss_check(v["series"], f"worker r{v['replica']} pid {pid}")
                            for pid, v in by_pid.items()}},
        "samples": soak.samples,
    }


def plot(summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    samples = summary["samples"]
    fig, (ax0, ax1, ax2) = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    pts = [(s["t"], s["coordinator"][0] / MIB) for s in samples if s["coordinator"]]
    ax0.plot([x for x, _ in pts], [y for _, y in pts], "C0", lw=2, label="coordinator")
    ax0.set_ylabel("coordinator VmRSS (MiB)")
    pids = {}
    for s in samples:
        for pid, w in s["workers"].items():
            pids.setdefault(pid, (w["replica"], []))[1].append((s["t"], w["rss"] / MIB))
    labelled = set()
    for pid, (r, series) in pids.items():
        ax1.plot([x for x, _ in series], [y for _, y in series], color=f"C{1 + r}", marker=".",
                 label=None if r in labelled else f"worker r{r} (one line per process)")
        labelled.add(r)
    ax1.set_ylabel("worker VmRSS (MiB)")
    for r in sorted({r for s in samples for r in s["replicas"]}):
        pts = [(s["t"], s["replicas"][r].get("kv_blocks_used", 0)) for s in samples if r in s["replicas"]]
        ax2.plot([x for x, _ in pts], [y for _, y in pts], color=f"C{1 + int(r)}", label=f"KV blocks used r{r}")
    ax2.plot([s["t"] for s in samples], [s["in_flight"] for s in samples], "k:", label="client requests in flight")
    ax2.set_xlabel("time (s); dashed: a worker killed (SIGKILL or SIGTERM)")
    for ax in (ax0, ax1, ax2):
        for k in summary["kills"]:
            ax.axvline(k["t_kill"], color=f"C{1 + k['replica']}", ls="--", lw=0.8)
        ax.legend(loc="upper left", fontsize=8)
    c = summary["rss"]["coordinator"]
    fig.suptitle(f"strata soak: {summary['requests']} requests, {len(summary['kills'])} worker kills, "
                 f"coordinator RSS growth {c.get('growth_mib', float('nan')):+.1f} MiB after 25%: "
                 f"{'PASSED' if summary['passed'] else 'FAILED'}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    log(f"plot: {path}")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="compute threads per worker")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--duration-s", type=float, default=1800)
    ap.add_argument("--concurrency", type=int, default=8, help="client threads")
    ap.add_argument("--kill-every-s", type=float, default=60)
    ap.add_argument("--kill-replicas", default=None,
                    help="comma-separated replicas to kill in turn (default all; '' = none)")
    ap.add_argument("--kill-signal", choices=("KILL", "TERM", "mix"), default="KILL",
                    help="KILL (default), TERM (the worker leaves cleanly) or mix (in turn)")
    ap.add_argument("--restart-delay-s", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--request-timeout-s", type=float, default=120, help="deadline of a normal request")
    ap.add_argument("--sample-every-s", type=float, default=10)
    ap.add_argument("--drain-s", type=float, default=60, help="after --duration-s, before cancelling")
    ap.add_argument("--idle-timeout-s", type=float, default=30)
    ap.add_argument("--startup-timeout-s", type=float, default=120)
    ap.add_argument("--kv-cache-mb", type=int, default=0, help="per worker; 0 = the worker's default")
    ap.add_argument("--coordinator-arg", action="append", default=[], help="extra coordinator flag (repeatable)")
    ap.add_argument("--worker-arg", action="append", default=[], help="extra worker flag (repeatable)")
    ap.add_argument("--json-out")
    ap.add_argument("--plot", help="FILE.png: RSS and KV blocks over time")
    ap.add_argument("--keep-logs", action="store_true", help="keep the process logs also when the soak passes")
    a = ap.parse_args(argv)
    a.model = os.path.abspath(os.path.expanduser(a.model))
    a.bin_dir = os.path.abspath(a.bin_dir)
    if a.kill_replicas is not None:
        a.kill_replicas = [int(x) for x in a.kill_replicas.split(",") if x.strip()]
        if any(not 0 <= r < a.replicas for r in a.kill_replicas):
            ap.error("--kill-replicas: replica out of range")
    if a.replicas < 1 or a.concurrency < 1 or a.duration_s <= 0 or a.kill_every_s <= 0:
        ap.error("--replicas, --concurrency, --duration-s and --kill-every-s must be positive")
    if a.replicas == 1 and a.kill_replicas != []:
        ap.error("killing the only replica refuses every request while it is down: use --replicas 2 or more "
                 "(or --kill-replicas '' for a soak without kills)")
    if not os.path.isfile(a.model):
        ap.error(f"--model {a.model}: no such file")
    return a


def main(argv=None):
    args = parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="strata_soak_")
    pb = load_stubs(tmp, "soak")

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_sigterm)
    t_wall = time.monotonic()
    summary = None
    coordinator_rc = None
    soak = cluster = None
    try:
        cluster = Cluster(args, tmp)
        cluster.start()
        soak = Soak(args, cluster, pb)
        stuck, idle = soak.run()
        # The soak stops the coordinator: a clean drain exits 0.
        coordinator_rc = cluster.stop()
        summary = summarize(soak, stuck, idle, coordinator_rc, time.monotonic() - t_wall)
    except KeyboardInterrupt:
        log("interrupted")
    except SoakError as e:
        log(f"error: {e}")
    finally:
        # A second Ctrl-C must not cut the cleanup short (it is bounded: about 40 s at most).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if soak is not None:  # no restarts, no new requests while the cluster stops
            soak.stop_load.set()
            soak.stop_sampling.set()
        if cluster is not None:
            cluster.stop()
    if summary is None:
        log(f"no summary; logs in {tmp}")
        return 2
    keep = args.keep_logs or not summary["passed"]
    summary["logs"] = tmp if keep else None
    text = json.dumps({k: v for k, v in summary.items() if k != "samples"}, indent=1)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(summary, f, indent=1)
    if args.plot:
        try:
            plot(summary, args.plot)
        except Exception as e:  # the plot is optional; the verdict is not
            log(f"plot failed: {e}")
    log("PASSED" if summary["passed"] else
        "FAILED: " + ", ".join(k for k, v in summary["checks"].items() if not v) + f"; logs in {tmp}")
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
