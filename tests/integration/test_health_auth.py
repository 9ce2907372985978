"""Health and metrics open or protected by flag, against a real coordinator +
worker (grpcio-health-checking and urllib as the clients):

  - by default (even with --api-keys-file) grpc.health.v1 Check and Watch and
    /metrics answer without credentials, as before;
  - --auth-health on: the client port's health needs an API key (same
    UNAUTHENTICATED messages as the other RPCs); --health-port stays open;
  - --metrics-auth on: /metrics answers 401 without HTTP Basic credentials or
    with a wrong password, 200 with any user name and a key as the password;
  - an open health Watch ends (NOT_SERVING, then the stream closes) when the
    coordinator shuts down, and does not hold the exit;
  - flag errors: either flag on without --api-keys-file, a value other than
    on/off (exit 2, the flag named).

Every test bounds its time (time_limit) and every call has a deadline."""
import base64
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import grpc
import pytest

from conftest import Cluster
from grpc_health.v1 import health_pb2, health_pb2_grpc

KEY = "sk-health-auth-test-0123456789"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = ("", "inference.GRPCInferenceService", "strata.v1.Strata")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_keys(workdir):
    path = os.path.join(workdir, "health_auth_keys")
    with open(path, "w") as f:
        f.write(f"scraper:{KEY}\n")
    return path


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def scrape(port, authorization=None):
    """(HTTP status, headers, body) of GET /metrics."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if authorization:
        req.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, ""


def check(channel, service="", metadata=()):
    """The status, or the (code, details) of the error."""
    try:
        return health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5, metadata=metadata).status
    except grpc.RpcError as e:
        return e.code(), e.details()


class AuthedMetricsCluster(Cluster):
    """A Cluster whose own /metrics reads (wait_ready, gauges) send the key."""

    def metrics(self):
        code, _, body = scrape(self.metrics_port, basic("prometheus", KEY))
        assert code == 200, code
        return body


@pytest.fixture
def make_authed_cluster(bins, workdir):
    made = []

    def make(model, **kw):
        c = AuthedMetricsCluster(bins, workdir, model, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.mark.time_limit(90)
def test_health_and_metrics_stay_open_by_default(tiny_model, make_cluster, workdir):
    c = make_cluster(tiny_model, coordinator_args=["--api-keys-file", write_keys(workdir)])
    with c.channel() as ch:
        for service in SERVICES:
            assert check(ch, service) == SERVING, service
        assert check(ch, "no.such.Service") == (grpc.StatusCode.NOT_FOUND, "service name unknown")
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert next(watch).status == SERVING
        watch.cancel()
    code, _, body = scrape(c.metrics_port)
    assert code == 200 and "strata_replica_ready" in body


@pytest.mark.time_limit(120)
def test_auth_health_and_metrics_auth_on(tiny_model, make_authed_cluster, workdir):
    health_port = free_port()
    c = make_authed_cluster(tiny_model, coordinator_args=[
        "--api-keys-file", write_keys(workdir), "--auth-health", "on", "--metrics-auth", "on",
        "--health-port", str(health_port), "--shutdown-grace-s", "0"])
    with c.channel() as ch:
        # The client port's health needs a key, with the other RPCs' messages.
        for service in SERVICES + ("no.such.Service",):
            assert check(ch, service) == (grpc.StatusCode.UNAUTHENTICATED,
                                          "missing API key: send 'authorization: Bearer <key>'"), service
        assert check(ch, "", (("authorization", "Bearer sk-wrong-key-0000000000"),)) == (
            grpc.StatusCode.UNAUTHENTICATED, "invalid API key")
        for service in SERVICES:
            assert check(ch, service, (("authorization", f"Bearer {KEY}"),)) == SERVING, service
            assert check(ch, service, (("x-api-key", KEY),)) == SERVING, service
        anonymous = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=10)
        with pytest.raises(grpc.RpcError) as e:
            next(anonymous)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        keyed = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=10,
                                                     metadata=(("x-api-key", KEY),))
        assert next(keyed).status == SERVING
        keyed.cancel()

    # The probe port stays open.
    with grpc.insecure_channel(f"127.0.0.1:{health_port}") as probe:
        for service in SERVICES:
            assert check(probe, service) == SERVING, service

    # /metrics: HTTP Basic, any user name, an API key as the password.
    code, headers, _ = scrape(c.metrics_port)
    assert code == 401 and headers.get("WWW-Authenticate", "").startswith("Basic"), (code, dict(headers))
    assert scrape(c.metrics_port, basic("prometheus", "sk-wrong-key-0000000000"))[0] == 401
    assert scrape(c.metrics_port, f"Bearer {KEY}")[0] == 401
    for user in ("prometheus", ""):
        code, _, body = scrape(c.metrics_port, basic(user, KEY))
        assert code == 200 and "strata_replica_ready" in body, (user, code)

    # Shutdown: an open Watch (probe port) sees NOT_SERVING, its stream ends,
    # and the coordinator exits without waiting on it.
    with grpc.insecure_channel(f"127.0.0.1:{health_port}") as probe:
        watch = health_pb2_grpc.HealthStub(probe).Watch(health_pb2.HealthCheckRequest(), timeout=30)
        assert next(watch).status == SERVING
        start = time.monotonic()
        c.coordinator.send_signal(signal.SIGTERM)
        statuses = []
        with pytest.raises(grpc.RpcError) as e:
            for r in watch:
                statuses.append(r.status)
        assert statuses and statuses[-1] == NOT_SERVING, statuses
        assert e.value.code() != grpc.StatusCode.DEADLINE_EXCEEDED, e.value
        assert c.coordinator.wait(timeout=20) == 0
        assert time.monotonic() - start < 15
    log = c.log("coordinator")
    assert KEY not in log, "keys must never be logged"


@pytest.mark.time_limit(60)
def test_flag_errors(bins, tiny_model, workdir):
    coordinator = os.path.join(bins, "strata-coordinator")
    for args, expected in (
            (["--auth-health", "on"], "--auth-health on needs --api-keys-file"),
            (["--metrics-auth", "on"], "--metrics-auth on needs --api-keys-file"),
            (["--api-keys-file", write_keys(workdir), "--auth-health", "yes"], "--auth-health: 'yes' is not on or off"),
            (["--api-keys-file", write_keys(workdir), "--metrics-auth", "1"], "--metrics-auth: '1' is not on or off")):
        r = subprocess.run([coordinator, "--model", tiny_model, "--port", "0", "--worker-port", "0",
                            "--metrics-port", "0", *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and expected in r.stderr, (args, r.returncode, r.stderr)
