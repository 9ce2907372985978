"""Health and reflection, a worker dying mid-stream (only its requests fail,
with UNAVAILABLE; the other replica keeps serving; a restarted worker
re-registers), and `strata cluster up` starting and stopping everything."""
import os
import signal
import subprocess
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from test_native_api import generate


def health(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


@pytest.mark.time_limit(90)
def test_health_serving_only_with_a_ready_replica_and_reflection(tiny_model, make_cluster, pb):
    c = make_cluster(tiny_model)
    with c.channel() as ch:
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING
        c.kill_worker(0, signal.SIGTERM)
        c.wait_ready(0, ready=False)
        assert health(ch) == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as e:
            generate(pb, ch, timeout=10, text="hello", max_tokens=4)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        c.start_worker(0)  # a restarted worker registers again
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING
        ids, _, _ = generate(pb, ch, text="hello", max_tokens=4, ignore_eos=True)
        assert len(ids) == 4
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        req = reflection_pb2.ServerReflectionRequest(list_services="")
        services = {s.name for r in stub.ServerReflectionInfo(iter([req]), timeout=5)
                    for s in r.list_services_response.service}
        assert {"inference.GRPCInferenceService", "strata.v1.Strata", "grpc.health.v1.Health"} <= services


@pytest.mark.time_limit(180)
def test_worker_death_fails_only_its_requests_and_the_worker_comes_back(default_model, make_cluster, pb):
    strata_pb2, strata_pb2_grpc = pb
    c = make_cluster(default_model, replicas=2)
    results = {}
    started = threading.Barrier(5)

    def client(i):
        with c.channel() as ch:
            stub = strata_pb2_grpc.StrataStub(ch)
            req = strata_pb2.GenerateRequest(text=f"Story number {i}:", max_tokens=300, ignore_eos=True)
            req.sampling.temperature = 0
            n = 0
            try:
                for chunk in stub.Generate(req, timeout=120):
                    n += len(chunk.token_ids)
                    if n == len(chunk.token_ids):
                        started.wait(30)
                results[i] = ("ok", n)
            except grpc.RpcError as e:
                results[i] = (e.code(), n)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    started.wait(60)  # all four are streaming (two per replica: least-loaded routing)
    assert c.gauge("strata_num_requests_running", 0) == 2 and c.gauge("strata_num_requests_running", 1) == 2
    c.kill_worker(0)  # SIGKILL: no goodbye
    for t in threads:
        t.join(150)
    codes = sorted(str(r[0]) for r in results.values())
    assert codes == ["StatusCode.UNAVAILABLE", "StatusCode.UNAVAILABLE", "ok", "ok"], results
    assert all(n == 300 for code, n in results.values() if code == "ok")
    assert all(0 < n < 300 for code, n in results.values() if code != "ok")
    # The surviving replica keeps serving; new requests avoid the dead one.
    with c.channel() as ch:
        ids, _, _ = generate(pb, ch, text="Hello", max_tokens=5, ignore_eos=True)
        assert len(ids) == 5
    assert c.gauge("strata_replica_ready", 0) == 0.0
    c.start_worker(0)
    assert c.gauge("strata_replica_ready", 0) == 1.0
    assert c.wait_blocks_free(1)


@pytest.mark.time_limit(120)
def test_cluster_up_serves_and_ctrl_c_stops_every_process(bins, tiny_model, workdir):
    port_file = os.path.join(workdir, "up.ports")
    proc = subprocess.Popen([os.path.join(bins, "strata"), "cluster", "up", "--model", tiny_model, "--model-name",
                             "tiny", "--replicas", "2", "--port", "0", "--worker-port", "0", "--metrics-port", "0",
                             "--threads", "1", "--port-file", port_file],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while not os.path.exists(port_file):
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "cluster up did not become ready"
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = [int(x) for x in f.read().split()]
        assert len(children) == 3  # coordinator + 2 workers
        out = subprocess.run([os.path.join(bins, "strata"), "client", "--address", f"127.0.0.1:{port}", "--prompt",
                              "the moon", "--max-tokens", "8", "--ignore-eos", "--print-token-ids"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert len(out.stdout.split("token_ids: ")[1].split(",")) == 8
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        for pid in children:
            assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", \
                f"child {pid} still running after Ctrl-C"
    finally:
        if proc.poll() is None:
            proc.kill()
