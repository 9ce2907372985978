"""Graceful shutdown with real processes (issue 7, Kubernetes): SIGTERM on the
coordinator drains it (health NOT_SERVING and new requests UNAVAILABLE at
once, in-flight streams finish within --shutdown-grace-s, the rest are
cancelled with UNAVAILABLE saying so, exit 0); SIGTERM on a worker makes it
leave its replica (the coordinator takes the replica out at once, not after
--worker-liveness-s; its streaming request fails naming the worker, a request
still waiting there moves to the other replica; the worker exits 0); bad
values of the flag are refused.

The default model (SmolLM2-135M Q4_1, one thread) generates slowly enough to
act mid-stream."""
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import tempfile
import threading
import time

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from test_native_api import generate


def health(channel, service=""):
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


class Stream:
    """A strata.v1 Generate call streaming on its own thread."""

    def __init__(self, pb, channel, text, max_tokens):
        strata_pb2, strata_pb2_grpc = pb
        req = strata_pb2.GenerateRequest(text=text, max_tokens=max_tokens, ignore_eos=True)
        req.sampling.temperature = 0
        self.call = strata_pb2_grpc.StrataStub(channel).Generate(req, timeout=120)
        self.tokens, self.code, self.details, self.finish = 0, None, "", None
        self.first = threading.Event()
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            for chunk in self.call:
                self.tokens += len(chunk.token_ids)
                if chunk.finish_reason:
                    self.finish = chunk.finish_reason
                if self.tokens:
                    self.first.set()
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        finally:
            self.first.set()
            self.done.set()

    def wait(self, timeout):
        assert self.done.wait(timeout), f"stream still running after {timeout} s ({self.tokens} tokens)"
        return self


def kserve_stream(address, model, text, max_tokens):
    """A KServe ModelStreamInfer request; returns (queue of (result, error), client)."""
    client = tc.InferenceServerClient(address)
    q = queue.Queue()
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    ins = []
    for name, dtype, value in (("text_input", "BYTES", np.array([text.encode()], dtype=object)),
                               ("stream", "BOOL", np.array([True], dtype=bool)),
                               ("sampling_parameters", "BYTES",
                                np.array([json.dumps({"max_tokens": max_tokens, "ignore_eos": True,
                                                      "temperature": 0}).encode()], dtype=object))):
        t = tc.InferInput(name, [1], dtype)
        t.set_data_from_numpy(value)
        ins.append(t)
    client.async_stream_infer(model, ins, request_id="drain")
    return q, client


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return time.time()
        time.sleep(0.02)
    raise TimeoutError(f"{what} not within {timeout} s")


@pytest.mark.time_limit(150)
def test_sigterm_drains_in_flight_streams_refuses_new_requests_and_exits_zero(default_model, make_cluster, pb):
    c = make_cluster(default_model, coordinator_args=["--shutdown-grace-s", "60"])
    with c.channel() as ch:
        s = Stream(pb, ch, "Tell me a long story about the sea.", max_tokens=600)
        assert s.first.wait(60) and s.tokens > 0, c.log("coordinator")
        c.coordinator.send_signal(signal.SIGTERM)
        # At once: health NOT_SERVING for every service name, new requests
        # refused with UNAVAILABLE on both APIs, while the stream goes on.
        wait_until(lambda: health(ch) == health_pb2.HealthCheckResponse.NOT_SERVING, 3, "NOT_SERVING")
        for service in ("inference.GRPCInferenceService", "strata.v1.Strata"):
            assert health(ch, service) == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as e:
            generate(pb, ch, timeout=10, text="hello", max_tokens=4)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in e.value.details()
        kserve = tc.InferenceServerClient(c.address)
        assert kserve.is_server_live() and not kserve.is_server_ready()
        ins = [tc.InferInput("text_input", [1], "BYTES")]
        ins[0].set_data_from_numpy(np.array([b"hello"], dtype=object))
        with pytest.raises(tc.InferenceServerException) as ke:
            kserve.infer(c.name, ins, client_timeout=10)
        assert "UNAVAILABLE" in str(ke.value.status()) and "shutting down" in ke.value.message()
        assert not s.done.is_set(), "the stream must still be running while the server drains"
        s.wait(90)
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    assert s.tokens == 600
    assert c.coordinator.wait(timeout=20) == 0
    log = c.log("coordinator")
    assert "SIGTERM received: shutting down" in log
    assert "draining: all 1 request in flight ended" in log
    assert "1 of 1 in-flight requests ended on their own, 0 cancelled; KV blocks still in use: 0" in log
    # The workers were told to shut down and exit 0.
    assert c.workers[0].wait(timeout=15) == 0, c.worker_logs(0)


@pytest.mark.time_limit(120)
def test_streams_still_running_after_the_grace_period_are_cancelled_with_unavailable(default_model, make_cluster,
                                                                                     pb):
    c = make_cluster(default_model, coordinator_args=["--shutdown-grace-s", "1"])
    with c.channel() as ch:
        s = Stream(pb, ch, "Count from one to a thousand:", max_tokens=2000)
        q, kserve = kserve_stream(c.address, c.name, "Write a very long poem.", 2000)
        try:
            result, error = q.get(timeout=60)  # the KServe stream's first response
            assert error is None, error
            assert s.first.wait(60) and s.tokens > 0
            sent = time.time()
            c.coordinator.send_signal(signal.SIGTERM)
            s.wait(10)
            assert s.code == grpc.StatusCode.UNAVAILABLE, (s.code, s.details)
            assert s.details == "the server is shutting down; request cancelled after the 1 s grace period"
            assert 0 < s.tokens < 2000
            # The KServe stream ends with the same error in its error_message.
            while True:
                result, error = q.get(timeout=10)
                if error is not None:
                    break
            assert "UNAVAILABLE" in str(error) and "after the 1 s grace period" in str(error), str(error)
        finally:
            kserve.stop_stream(cancel_requests=True)
        assert c.coordinator.wait(timeout=10) == 0
        elapsed = time.time() - sent
        assert elapsed < 1 + 5, f"exit took {elapsed:.1f} s with a 1 s grace period"
    log = c.log("coordinator")
    assert "grace period over: cancelling 2 requests still running" in log
    assert "KV blocks still in use: 0" in log


@pytest.mark.time_limit(180)
def test_a_worker_on_sigterm_leaves_its_replica_at_once_and_the_other_replica_serves(default_model, make_cluster,
                                                                                     pb):
    # One sequence at a time per replica, so a third request waits on one of
    # them; liveness 30 s, so only the Leave can explain a fast reaction.
    c = make_cluster(default_model, replicas=2,
                     coordinator_args=["--max-num-seqs", "1", "--worker-liveness-s", "30"])
    with c.channel() as ch:
        long_a = Stream(pb, ch, "The history of ships, chapter one:", max_tokens=1000)
        assert long_a.first.wait(60)
        a_replica = 0 if c.gauge("strata_num_requests_running", 0) == 1 else 1
        assert c.gauge("strata_num_requests_running", a_replica) == 1
        long_b = Stream(pb, ch, "The history of trains, chapter one:", max_tokens=1000)
        assert long_b.first.wait(60)
        short = Stream(pb, ch, "Name three colors.", max_tokens=24)
        wait_until(lambda: any(c.gauge("strata_num_requests_waiting", r) == 1 for r in (0, 1)), 10,
                   "the third request waiting")
        leaving = 0 if c.gauge("strata_num_requests_waiting", 0) == 1 else 1
        other = 1 - leaving
        # long_b went to the replica long_a left idle (least loaded).
        running_there, survivor = (long_a, long_b) if a_replica == leaving else (long_b, long_a)
        assert not short.first.is_set(), "the waiting request must not have streamed yet"

        sent = time.time()
        c.ranks[leaving][0].send_signal(signal.SIGTERM)
        gone = wait_until(lambda: c.gauge("strata_replica_ready", leaving) == 0.0, 10, "replica not ready")
        assert gone - sent < 3, f"the replica left after {gone - sent:.1f} s (liveness is 30 s)"
        assert c.ranks[leaving][0].wait(timeout=10) == 0, c.worker_logs(leaving)
        assert time.time() - sent < 10

        # The streaming request there fails, naming the worker that left.
        running_there.wait(10)
        assert running_there.code == grpc.StatusCode.UNAVAILABLE, (running_there.code, running_there.details)
        assert re.search(rf"replica {leaving}: worker r{leaving}-w\d+ left the replica \(SIGTERM received\)",
                         running_there.details), running_there.details
        # The waiting one moved to the other replica; let it run by ending the
        # long request there (a client cancel, which frees its blocks).
        survivor.call.cancel()
        short.wait(60)
        assert short.code == grpc.StatusCode.OK and short.tokens == 24, (short.code, short.details)
        # New requests go to the other replica.
        ids, _, _ = generate(pb, ch, text="Hello", max_tokens=5, ignore_eos=True)
        assert len(ids) == 5
    assert c.gauge("strata_replica_ready", other) == 1.0
    assert c.gauge("strata_replica_ready", leaving) == 0.0
    assert c.gauge("strata_workers_left_total", leaving) == 1.0
    assert c.wait_blocks_free(other)
    assert c.gauge("strata_kv_blocks_used", leaving) == 0.0
    log = c.log("coordinator")
    assert re.search(rf"worker r{leaving}-w\d+ left the replica \(SIGTERM received\); replica {leaving} is not ready",
                     log), log
    assert "leaving the replica (SIGTERM received)" in c.worker_logs(leaving)
    assert "left the replica; the coordinator acknowledged" in c.worker_logs(leaving)
    # A restarted worker brings the replica back.
    c.start_worker(leaving)
    assert c.gauge("strata_replica_ready", leaving) == 1.0


@pytest.mark.time_limit(60)
def test_bad_shutdown_grace_is_refused_and_the_config_key_works(bins, tiny_model, workdir):
    coordinator = os.path.join(bins, "strata-coordinator")
    for value in ("-1", "3601", "soon"):
        out = subprocess.run([coordinator, "--model", tiny_model, "--shutdown-grace-s", value],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 2, out
        assert "--shutdown-grace-s" in out.stderr, out.stderr
    help_text = subprocess.run([coordinator, "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "--shutdown-grace-s 25" in help_text and "SIGTERM" in help_text
    config = os.path.join(workdir, "grace.json")
    with open(config, "w") as f:
        json.dump({"shutdown-grace-s": "x"}, f)
    out = subprocess.run([coordinator, "--model", tiny_model, "--config", config], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 2 and "--shutdown-grace-s" in out.stderr, out.stderr


@contextlib.contextmanager
def _cluster_up(bins, model, workdir, *extra):
    """`strata cluster up` with one replica, ready; yields (proc, client port, child pids).
    Whatever is still running at the end is killed."""
    port_file = tempfile.mktemp(prefix="up-", suffix=".ports", dir=workdir)  # fresh: tests share workdir
    proc = subprocess.Popen([os.path.join(bins, "strata"), "cluster", "up", "--model", model, "--replicas", "1",
                             "--port", "0", "--worker-port", "0", "--metrics-port", "0", "--threads", "1",
                             "--port-file", port_file, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # as a shell's foreground job: its own group
    children = []
    try:
        deadline = time.time() + 90
        while not os.path.exists(port_file):
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "cluster up did not become ready"
            time.sleep(0.1)
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = [int(x) for x in f.read().split()]
        yield proc, open(port_file).read().split()[0], children
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in children:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def _gone(pid):
    return not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


@pytest.mark.time_limit(180)
def test_cluster_up_ctrl_c_lets_the_in_flight_stream_finish_then_stops_everything(bins, default_model, workdir,
                                                                                  pb):
    # Children run in their own process groups: the terminal's Ctrl-C (SIGINT to
    # the foreground group) reaches only `strata`, which stops the coordinator
    # first (it drains) and the workers after.
    with _cluster_up(bins, default_model, workdir, "--shutdown-grace-s", "60") as (proc, port, children):
        assert all(os.getpgid(pid) == pid for pid in children)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            s = Stream(pb, ch, "Tell me a long story about the sea.", max_tokens=300)
            assert s.first.wait(60) and s.tokens > 0, (s.code, s.details)
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does to the foreground group
            assert not s.done.is_set(), "the stream must still be running when Ctrl-C arrives"
            s.wait(120)
        assert s.code == grpc.StatusCode.OK, (s.code, s.details)
        assert s.tokens == 300
        assert proc.wait(timeout=60) == 0
        out = proc.stdout.read()
        assert "lets in-flight requests finish" in out, out
        assert re.search(r"drained in .*: 1 of 1 .*ended on their own, 0 cancelled", out), out
        for pid in children:
            assert _gone(pid), f"child {pid} still running"


@pytest.mark.time_limit(180)
def test_cluster_up_second_ctrl_c_cancels_the_in_flight_stream(bins, default_model, workdir, pb):
    with _cluster_up(bins, default_model, workdir, "--shutdown-grace-s", "600") as (proc, port, children):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            s = Stream(pb, ch, "Tell me a long story about the sea.", max_tokens=2000)
            assert s.first.wait(60) and s.tokens > 0, (s.code, s.details)
            proc.send_signal(signal.SIGINT)
            time.sleep(1)
            assert not s.done.is_set()
            t0 = time.time()
            proc.send_signal(signal.SIGINT)
            s.wait(30)
        assert s.code == grpc.StatusCode.UNAVAILABLE, (s.code, s.details)
        assert s.tokens < 2000
        assert proc.wait(timeout=30) == 0
        assert time.time() - t0 < 30
        out = proc.stdout.read()
        assert "cancelling in-flight requests" in out, out
        for pid in children:
            assert _gone(pid), f"child {pid} still running"
