"""The CPU overlay's coordinator and worker, started from the rendered manifests on
loopback with the real binaries, so a manifest cannot drift from the code.

Rewriting, and nothing else (`localize`):
  1. ports: each containerPort number in --port/--worker-port/--metrics-port/
     --health-port becomes a free loopback port; --host 0.0.0.0 becomes 127.0.0.1;
     a Service address "NAME:PORT" in the worker's environment becomes
     127.0.0.1:<the free port of the containerPort that Service port targets>;
  2. paths: a ConfigMap volume's mountPath becomes a temporary directory holding the
     ConfigMap's files; the model path (the strata-model ConfigMap's MODEL_PATH)
     becomes the local default model;
  3. Secrets: a Secret volume's mountPath becomes a temporary directory holding what
     cert-manager would write for the Certificate with that secretName (tls.crt,
     tls.key, ca.crt; deploy_certs.py): issued by a CA made from the manifests' CA
     Certificate, with the Certificate's key type, encoding, usages and names, plus
     localhost and 127.0.0.1 on server certificates (the Service names workers dial
     become 127.0.0.1 in 1.); an optional Secret that no Certificate makes
     (strata-api-keys) becomes an empty directory, as on a cluster without it;
  4. downward API: metadata.name -> strata-worker-0 (ordinal 0), status.podIP ->
     127.0.0.1, the LWS group-index label -> 0;
  5. PATH: the build's bin/ and deploy/bin (the image's /usr/local/bin).
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

import deploy_certs
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
        self.issuer = deploy_certs.Issuer(self.docs)
        self.secret_dirs = {}  # secretName -> local directory (one per Secret, as in the cluster)

    def secret_dir(self, secret):
        """The local copy of a Secret volume's contents (rewriting 3)."""
        name = secret["secretName"]
        if name not in self.secret_dirs:
            d = os.path.join(self.tmp, "secret-" + name)
            if self.issuer.is_certificate_secret(name):
                server = self.issuer.server_usages(name)
                self.issuer.write_secret(name, d, extra_dns=["localhost"] if server else [],
                                         extra_ips=["127.0.0.1"] if server else [])
            else:
                assert secret.get("optional"), f"Secret {name}: no Certificate makes it and it is not optional"
                os.makedirs(d)
            self.secret_dirs[name] = d
        return self.secret_dirs[name]

    def mounts(self, pod_spec, c):
        """mountPath -> local directory for the container's ConfigMap and Secret volumes."""
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
            elif "secret" in v:
                out[m["mountPath"]] = self.secret_dir(v["secret"])
        return out

    def localize(self, s, mounts):
        if s == self.model_path:
            return self.model
        for mount, local in sorted(mounts.items(), key=lambda m: -len(m[0])):
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
            if prev in ("--port", "--worker-port", "--metrics-port", "--health-port"):
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

    def worker_argv(self, env=None):
        mounts = self.mounts(dl.pod_spec(self.worker_obj), self.worker)
        return [self.localize(a, mounts) for a in dl.command_line(self.worker, env or self.worker_env())]

    def port_for(self, c, port):
        return self.ports[dl.port_number(c, port)]

    def coordinator_port(self, flag):
        """The local port of the coordinator's `flag` (--port, --worker-port, ...)."""
        return self.ports[int(dl.flag_value(self.coord["args"], flag))]

    def coordinator_secret(self, flag):
        """The local Secret directory holding the file of the coordinator's `flag`."""
        return os.path.dirname(self.localize(dl.flag_value(self.coord["args"], flag),
                                             self.mounts(dl.pod_spec(self.dep), self.coord)))

    def worker_secret(self, flag):
        return os.path.dirname(self.localize(dl.flag_value(self.worker["args"], flag),
                                             self.mounts(dl.pod_spec(self.worker_obj), self.worker)))


def health(port, timeout=2.0, credentials=None):
    """grpc.health.v1 Check on 127.0.0.1:port, plaintext or with `credentials`."""
    target = f"127.0.0.1:{port}"
    with (grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout).status


def read(directory, name):
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()


def tls(ca_dir, client_dir=None):
    """Channel credentials trusting ca_dir's ca.crt, with client_dir's certificate."""
    if client_dir is None:
        return grpc.ssl_channel_credentials(root_certificates=read(ca_dir, "ca.crt"))
    return grpc.ssl_channel_credentials(root_certificates=read(ca_dir, "ca.crt"),
                                        private_key=read(client_dir, "tls.key"),
                                        certificate_chain=read(client_dir, "tls.crt"))


def refused(fn):
    """The call fails to connect (a TLS handshake refused): UNAVAILABLE."""
    try:
        fn()
    except grpc.RpcError as e:
        return e.code() == grpc.StatusCode.UNAVAILABLE
    return False


def answered(fn):
    """The call got through the TLS handshake (any answer but UNAVAILABLE; the port
    may not serve the health service at all)."""
    try:
        fn()
    except grpc.RpcError as e:
        return e.code() != grpc.StatusCode.UNAVAILABLE
    return True


def check_transport_security(L, tmp):
    """Client port: TLS, verified with the Secret's CA under the name 127.0.0.1,
    plaintext refused. Worker port: mutual TLS, refusing a client without a
    certificate or with one from another CA, admitting the workers' certificate."""
    client_port, worker_port = L.coordinator_port("--port"), L.coordinator_port("--worker-port")
    server_ca = L.coordinator_secret("--tls-cert")
    assert health(client_port, credentials=tls(server_ca)) in (
        health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert refused(lambda: health(client_port))
    worker_dir = L.worker_secret("--tls-cert")
    assert refused(lambda: health(worker_port))
    assert refused(lambda: health(worker_port, credentials=tls(worker_dir)))
    other = os.path.join(tmp, "other-ca")
    deploy_certs.other_ca_client(other)
    with open(os.path.join(other, "ca.crt"), "wb") as f:  # trust the real server, present the other CA's cert
        f.write(read(worker_dir, "ca.crt"))
    assert refused(lambda: health(worker_port, credentials=tls(other, other)))
    assert answered(lambda: health(worker_port, credentials=tls(worker_dir, worker_dir)))


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
        # The readiness port starts after the metrics port: wait for it to answer.
        wait_for("NOT_SERVING at the readinessProbe's port",
                 lambda: health(ready_port) == health_pb2.HealthCheckResponse.NOT_SERVING, 30)
        check_transport_security(L, tmp)
        assert subprocess.run(ready_cmd, env=wenv, capture_output=True).returncode == 1
        worker = subprocess.Popen(L.worker_argv(), env=wenv, stdout=logs, stderr=logs)
        # The worker joins over mutual TLS with the rendered --tls-* flags.
        wait_for("grpc.health.v1 SERVING at the readinessProbe's port",
                 lambda: health(ready_port) == health_pb2.HealthCheckResponse.SERVING, 120)
        assert health(L.coordinator_port("--port"), credentials=tls(L.coordinator_secret("--tls-cert"))) == \
            health_pb2.HealthCheckResponse.SERVING
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


# docs/deploy.md, "API keys": the Secret strata-api-keys with the file "keys", and
# coordinator.json's "api-keys-file" naming it where the Deployment mounts it.
API_KEYS_SECRET, API_KEYS_FILE = "strata-api-keys", "keys"


def server_live(port, credentials, key=None):
    """KServe ServerLive (an empty request) over TLS, with `authorization: Bearer key`."""
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as ch:
        call = ch.unary_unary("/inference.GRPCInferenceService/ServerLive",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return call(b"", timeout=5, metadata=[("authorization", f"Bearer {key}")] if key else None)


def test_cpu_overlay_api_keys_as_documented(bin_dir, model, tmp):
    """API keys turned on as docs/deploy.md says: the coordinator reads the keys from
    the optional Secret's mount and refuses a client without one over TLS."""
    L = Localized("cpu", bin_dir, model, tmp)
    (vol,) = [v for v in dl.pod_spec(L.dep)["volumes"] if v.get("secret", {}).get("secretName") == API_KEYS_SECRET]
    (mount,) = [m for m in L.coord["volumeMounts"] if m["name"] == vol["name"]]
    path = mount["mountPath"] + "/" + API_KEYS_FILE
    key = "k" * 8 + os.urandom(12).hex()
    with open(os.path.join(L.secret_dir(vol["secret"]), API_KEYS_FILE), "w") as f:
        f.write(f"# keys of the test\ntest:{key}\n")
    config = dl.find(L.docs, "ConfigMap", "strata-config")["data"]
    conf = json.loads(config["coordinator.json"])
    conf["api-keys-file"] = L.localize(path, L.mounts(dl.pod_spec(L.dep), L.coord))
    config["coordinator.json"] = json.dumps(conf)
    logs = open(os.path.join(tmp, "log"), "w+")
    coord = subprocess.Popen(L.coordinator_argv(), env={"PATH": L.path}, stdout=logs, stderr=logs)
    try:
        client = L.coordinator_port("--port")
        creds = tls(L.coordinator_secret("--tls-cert"))
        wait_for("the client port", lambda: health(client, credentials=creds) is not None, 30)
        with pytest.raises(grpc.RpcError) as e:
            server_live(client, creds)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as e:
            server_live(client, creds, key="not-" + key)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert server_live(client, creds, key=key) == b"\x08\x01"  # live: true
        assert stop(coord, dl.pod_spec(L.dep)["terminationGracePeriodSeconds"]) == 0
    finally:
        if coord.poll() is None:
            coord.kill()
            coord.wait()
        logs.seek(0)
        print(logs.read()[-4000:])


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
    argv = L.worker_argv(env)
    lines = subprocess.run(argv[:1] + ["--dry-run"] + argv[1:], env=env, capture_output=True, text=True, check=True)
    cmds = [shlex.split(line) for line in lines.stdout.splitlines()]
    assert len(cmds) == int(env["STRATA_TP_SIZE"])
    for rank, cmd in enumerate(cmds):
        cmd[cmd.index("--coordinator") + 1] = "127.0.0.1:1"
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith(f"strata-worker: --device cuda:{rank}: "), out.stderr
        assert "no CUDA device" in out.stderr or "no CUDA backend" in out.stderr, out.stderr
