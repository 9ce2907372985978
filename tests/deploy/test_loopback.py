"""The CPU overlay's coordinator and worker, started from the rendered manifests on
loopback with the real binaries, so a manifest cannot drift from the code.

Rewriting, and nothing else (`localize`):
  1. ports: each containerPort number in --port/--worker-port/--metrics-port becomes a
     free loopback port; --host 0.0.0.0 becomes 127.0.0.1; a Service address
     "NAME:PORT" in the worker's environment becomes 127.0.0.1:<the free port of the
     containerPort that Service port targets>;
  2. paths: a ConfigMap volume's mountPath becomes a temporary directory holding the
     ConfigMap's files; the model path (the strata-model ConfigMap's MODEL_PATH)
     becomes the local default model;
  3. downward API: metadata.name -> strata-worker-0 (ordinal 0), status.podIP ->
     127.0.0.1, the LWS group-index label -> 0;
  4. PATH: the build's bin/ and deploy/bin (the image's /usr/local/bin).
Commands, args, env and probe targets are otherwise used exactly as rendered.
"""
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import deploy_lib as dl

DEPLOY_BIN = os.path.join(dl.SOURCE_DIR, "deploy", "bin")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Localized:
    """One overlay's rendered objects with the rewriting described above."""

    def __init__(self, overlay, bin_dir, model, tmp):
        self.docs = dl.render(overlay)
        self.tmp = tmp
        self.model = model
        self.dep = dl.find(self.docs, "Deployment", "strata-coordinator")
        self.coord = dl.container(self.dep, "coordinator")
        self.worker_obj = [d for d in self.docs if d["kind"] in ("StatefulSet", "LeaderWorkerSet")][0]
        self.worker = dl.container(self.worker_obj, "worker")
        self.ports = {p["containerPort"]: free_port() for p in self.coord["ports"]}
        self.model_path = dl.find(self.docs, "ConfigMap", "strata-model")["data"]["MODEL_PATH"]
        self.path = os.pathsep.join([bin_dir, DEPLOY_BIN, os.environ["PATH"]])
        self.fields = {"metadata.name": "strata-worker-0", "status.podIP": "127.0.0.1",
                       "metadata.labels['leaderworkerset.sigs.k8s.io/group-index']": "0"}

    def mounts(self, pod_spec, c):
        """mountPath -> local directory for the container's ConfigMap volumes."""
        out = {}
        for m in c.get("volumeMounts", []):
            (v,) = [v for v in pod_spec["volumes"] if v["name"] == m["name"]]
            if "configMap" in v:
                d = os.path.join(self.tmp, m["name"])
                os.makedirs(d, exist_ok=True)
                for name, text in dl.find(self.docs, "ConfigMap", v["configMap"]["name"])["data"].items():
                    with open(os.path.join(d, name), "w") as f:
                        f.write(text)
                out[m["mountPath"]] = d
        return out

    def localize(self, s, mounts):
        if s == self.model_path:
            return self.model
        for mount, local in mounts.items():
            if s.startswith(mount + "/"):
                return local + s[len(mount):]
        return s

    def coordinator_argv(self):
        env = dl.container_env(self.docs, self.coord, self.fields)
        argv = dl.command_line(self.coord, env)
        mounts = self.mounts(dl.pod_spec(self.dep), self.coord)
        out = []
        for i, a in enumerate(argv):
            prev = argv[i - 1] if i else ""
            if prev in ("--port", "--worker-port", "--metrics-port"):
                a = str(self.ports[int(a)])
            elif prev == "--host":
                assert a == "0.0.0.0"
                a = "127.0.0.1"
            out.append(self.localize(a, mounts))
        return out

    def service_address(self, address):
        name, port = address.rsplit(":", 1)
        svc = dl.find(self.docs, "Service", name)
        (p,) = [p for p in svc["spec"]["ports"] if p["port"] == int(port)]
        return f"127.0.0.1:{self.ports[dl.port_number(self.coord, p['targetPort'])]}"

    def worker_env(self):
        env = dl.container_env(self.docs, self.worker, self.fields)
        for k in ("STRATA_COORDINATOR", "STRATA_COORDINATOR_METRICS"):
            env[k] = self.service_address(env[k])
        env["STRATA_MODEL"] = self.localize(env["STRATA_MODEL"], {})
        return {**env, "PATH": self.path, "HOME": self.tmp}

    def worker_argv(self):
        return dl.command_line(self.worker, self.worker_env())

    def port_for(self, c, port):
        return self.ports[dl.port_number(c, port)]


def health(port, timeout=2.0):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout).status


def http_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read().decode()


def wait_for(what, fn, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 (still starting)
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def stop(proc, grace):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{proc.args[0]} did not exit within terminationGracePeriodSeconds {grace}")
    return proc.returncode


@pytest.fixture()
def tmp():
    with tempfile.TemporaryDirectory(prefix="strata-deploy-") as d:
        yield d


def test_cpu_overlay_runs_as_rendered(bin_dir, model, tmp):
    L = Localized("cpu", bin_dir, model, tmp)
    c = L.coord
    ready_port = L.port_for(c, c["readinessProbe"]["grpc"]["port"])
    live = c["livenessProbe"]["httpGet"]
    (sm,) = [d for d in L.docs if d["kind"] == "ServiceMonitor"]
    (ep,) = sm["spec"]["endpoints"]
    (svc,) = [d for d in L.docs if d["kind"] == "Service" and d["metadata"].get("labels", {}).get(
        "app.kubernetes.io/name") == sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]]
    (sm_port,) = [p for p in svc["spec"]["ports"] if p["name"] == ep["port"]]
    metrics_port = L.port_for(c, sm_port["targetPort"])
    ready_cmd = L.worker["readinessProbe"]["exec"]["command"]
    wenv = L.worker_env()
    logs = open(os.path.join(tmp, "log"), "w+")
    coord = subprocess.Popen(L.coordinator_argv(), env={"PATH": L.path}, stdout=logs, stderr=logs)
    worker = None
    try:
        # Before any worker: alive (liveness) but not ready, and the worker's probe says no.
        wait_for("the liveness endpoint", lambda: http_get(L.port_for(c, live["port"]), live["path"])[0] == 200, 30)
        assert health(ready_port) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert subprocess.run(ready_cmd, env=wenv, capture_output=True).returncode == 1
        worker = subprocess.Popen(L.worker_argv(), env=wenv, stdout=logs, stderr=logs)
        wait_for("grpc.health.v1 SERVING at the readinessProbe's port",
                 lambda: health(ready_port) == health_pb2.HealthCheckResponse.SERVING, 120)
        status, body = http_get(metrics_port, ep["path"])
        assert status == 200 and re.search(r'^strata_replica_ready\{replica="0"\} 1', body, re.M), body[:2000]
        assert "strata_num_requests_waiting" in body and "strata_kv_blocks_used" in body
        probe = subprocess.run(ready_cmd, env=wenv, capture_output=True, text=True)
        assert probe.returncode == 0, probe.stderr
        # Pod termination: SIGTERM, exit 0 within terminationGracePeriodSeconds.
        assert stop(worker, dl.pod_spec(L.worker_obj)["terminationGracePeriodSeconds"]) == 0
        assert stop(coord, dl.pod_spec(L.dep)["terminationGracePeriodSeconds"]) == 0
    finally:
        for p in (worker, coord):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        logs.seek(0)
        print(logs.read()[-6000:])


def test_binaries_reject_unknown_flags(bin_dir, model):
    """The premise of the checks here: a flag the binary does not know is exit 2."""
    out = subprocess.run([os.path.join(bin_dir, "strata-coordinator"), "--model", model, "--no-such-flag", "1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "unknown flag --no-such-flag" in out.stderr
    out = subprocess.run([os.path.join(bin_dir, "strata-worker"), "--coordinator", "127.0.0.1:1", "--model", model,
                          "--no-such-flag", "1"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "unknown flag --no-such-flag" in out.stderr


@pytest.mark.parametrize("overlay", ["gpu-tp8", "gpu-tp8-pp2"])
def test_gpu_overlays_flags_parse(overlay, bin_dir, model, tmp):
    """Coordinator: starts with the overlay's args and config and serves health.
    Workers (no GPU here): every rank's command line passes flag parsing and stops at
    the device check ("--device cuda:N: no CUDA device" or "no CUDA backend"),
    never at "unknown flag" or another flag error."""
    L = Localized(overlay, bin_dir, model, tmp)
    coord = subprocess.Popen(L.coordinator_argv(), env={"PATH": L.path}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        port = L.port_for(L.coord, L.coord["readinessProbe"]["grpc"]["port"])
        wait_for("the coordinator's health service", lambda: health(port) is not None or coord.poll(), 30)
        assert coord.poll() is None, coord.stderr.read()
    finally:
        assert stop(coord, dl.pod_spec(L.dep)["terminationGracePeriodSeconds"]) == 0
    env = L.worker_env()
    if overlay == "gpu-tp8-pp2":
        size = L.worker_obj["spec"]["leaderWorkerTemplate"]["size"]
        env.update(LWS_GROUP_SIZE=str(size), LWS_WORKER_INDEX=str(size - 1), LWS_LEADER_ADDRESS="127.0.0.1")
    argv = dl.command_line(L.worker, env)
    lines = subprocess.run(argv[:1] + ["--dry-run"] + argv[1:], env=env, capture_output=True, text=True, check=True)
    cmds = [shlex.split(line) for line in lines.stdout.splitlines()]
    assert len(cmds) == int(env["STRATA_TP_SIZE"])
    for rank, cmd in enumerate(cmds):
        cmd[cmd.index("--coordinator") + 1] = "127.0.0.1:1"
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith(f"strata-worker: --device cuda:{rank}: "), out.stderr
        assert "no CUDA device" in out.stderr or "no CUDA backend" in out.stderr, out.stderr
