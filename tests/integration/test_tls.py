"""TLS on the client port and mutual TLS on the worker port, with real
processes and certificates made at test time (cryptography): good handshakes,
a client that trusts another CA, an expired certificate, a missing or foreign
client certificate, certificates rotated on disk and picked up without a
restart, and plaintext off loopback refused unless asked for."""
import datetime
import os
import subprocess
import time

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


class Ca:
    def __init__(self, name):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.name = subject
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, cn, server=True, client=True, not_before=None, not_after=None):
        key = ec.generate_private_key(ec.SECP256R1())
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + \
                 ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        import ipaddress
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(self.name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before or NOW - DAY).not_valid_after(not_after or NOW + 10 * DAY)
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"), x509.DNSName(cn),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                .sign(self.key, hashes.SHA256()))
        return cert, key


def pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Pki:
    """Two CAs and the files the tests hand to the processes."""

    def __init__(self, d):
        self.d = d
        self.ca, self.other = Ca("strata-test-ca"), Ca("some-other-ca")
        self.write("ca.pem", pem_cert(self.ca.cert))
        self.write("other-ca.pem", pem_cert(self.other.cert))
        for prefix, ca in (("", self.ca), ("other-", self.other)):
            for role in ("server", "client"):
                cert, key = ca.issue(f"{prefix}{role}.strata.test")
                self.write(f"{prefix}{role}.pem", pem_cert(cert))
                self.write(f"{prefix}{role}.key", pem_key(key))
        cert, key = self.ca.issue("expired.strata.test", not_before=NOW - 10 * DAY, not_after=NOW - DAY)
        self.write("expired.pem", pem_cert(cert))
        self.write("expired.key", pem_key(key))

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)

    def path(self, name):
        return os.path.join(self.d, name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def channel(self, address, ca="ca.pem", client=None):
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.read(ca),
            private_key=self.read(client + ".key") if client else None,
            certificate_chain=self.read(client + ".pem") if client else None)
        return grpc.secure_channel(address, creds)


@pytest.fixture
def pki(tmp_path):
    return Pki(str(tmp_path))


def tls_server_args(pki, cert="server"):
    return ["--tls-cert", pki.path(cert + ".pem"), "--tls-key", pki.path(cert + ".key")]


def worker_mtls(pki, cert="client", ca="ca.pem"):
    """Worker port mutual TLS on the coordinator, and the worker's side."""
    coordinator = ["--worker-tls-cert", pki.path("server.pem"), "--worker-tls-key", pki.path("server.key"),
                   "--worker-tls-ca", pki.path("ca.pem")]
    worker = ["--tls-ca", pki.path(ca), "--tls-cert", pki.path(cert + ".pem"), "--tls-key", pki.path(cert + ".key")]
    return coordinator, worker


def wait_for_handshake_failure(c, r, timeout=30):
    """Until replica r's worker logs that it cannot get through (gRPC reports a
    refused handshake as an unreachable address; the hint names TLS)."""
    deadline = time.time() + timeout
    while "the TLS handshake failed" not in c.worker_logs(r):
        assert time.time() < deadline, c.worker_logs(r)
        time.sleep(0.1)


def healthy(channel, timeout=5):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout).status


def generate_text(pb, channel, timeout=30):
    strata_pb2, strata_pb2_grpc = pb
    req = strata_pb2.GenerateRequest(text="hello", max_tokens=4, ignore_eos=True)
    return list(strata_pb2_grpc.StrataStub(channel).Generate(req, timeout=timeout))


def expect_handshake_failure(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value


@pytest.mark.time_limit(120)
def test_client_port_tls_serves_trusting_clients_and_refuses_others(tiny_model, make_cluster, pb, pki):
    coord, worker = worker_mtls(pki)
    c = make_cluster(tiny_model, coordinator_args=tls_server_args(pki) + coord, worker_args=worker)
    with pki.channel(c.address) as ch:
        assert healthy(ch) == 1  # SERVING
        chunks = generate_text(pb, ch)
        assert sum(len(x.token_ids) for x in chunks) == 4
    # A client that trusts another CA, and one that speaks plaintext.
    with pki.channel(c.address, ca="other-ca.pem") as ch:
        expect_handshake_failure(lambda: healthy(ch))
    with grpc.insecure_channel(c.address) as ch:
        expect_handshake_failure(lambda: healthy(ch))
    assert "TLS" in c.log("coordinator")


@pytest.mark.time_limit(120)
def test_client_certificates_when_asked_for(tiny_model, make_cluster, pb, pki):
    coord, worker = worker_mtls(pki)
    args = tls_server_args(pki) + ["--tls-client-ca", pki.path("ca.pem")] + coord
    c = make_cluster(tiny_model, coordinator_args=args, worker_args=worker)
    with pki.channel(c.address, client="client") as ch:
        assert len(generate_text(pb, ch)) > 0
    with pki.channel(c.address) as ch:  # no client certificate
        expect_handshake_failure(lambda: healthy(ch))
    with pki.channel(c.address, client="other-client") as ch:  # signed by a CA the server does not trust
        expect_handshake_failure(lambda: healthy(ch))
    with pki.channel(c.address, client="expired") as ch:  # the right CA, but expired
        expect_handshake_failure(lambda: healthy(ch))


@pytest.mark.time_limit(120)
def test_worker_port_admits_only_workers_with_a_certificate_from_the_worker_ca(tiny_model, make_cluster, pki):
    coord, worker = worker_mtls(pki)
    c = make_cluster(tiny_model, replicas=2, coordinator_args=tls_server_args(pki) + coord, worker_args=worker)
    worker_address = f"127.0.0.1:{c.worker_port}"
    # Anything without the worker CA's certificate fails the handshake before
    # any RPC handler runs: plaintext, TLS without a client certificate, a
    # certificate from another CA.
    for make in (lambda: grpc.insecure_channel(worker_address),
                 lambda: pki.channel(worker_address),
                 lambda: pki.channel(worker_address, client="other-client")):
        with make() as ch:
            expect_handshake_failure(lambda: ch.unary_unary("/strata.worker.v1.RendezvousStore/Get")(b"", timeout=5))
    # A real worker with a foreign certificate never attaches; replica 1 stays
    # down while replica 0 serves.
    c.kill_worker(1)
    _, foreign = worker_mtls(pki, cert="other-client")
    c.worker_args = foreign
    c.start_worker(1, wait=False)
    wait_for_handshake_failure(c, 1)
    assert c.gauge("strata_replica_ready", 1) == 0.0
    assert c.gauge("strata_replica_ready", 0) == 1.0
    # A worker that does not trust the coordinator's CA refuses to attach too.
    c.ranks[1][0].kill()
    c.ranks[1][0].wait(timeout=10)
    _, distrustful = worker_mtls(pki, ca="other-ca.pem")
    c.worker_args = distrustful
    c.start_worker(1, wait=False)
    wait_for_handshake_failure(c, 1)
    assert c.gauge("strata_replica_ready", 1) == 0.0


@pytest.mark.time_limit(120)
def test_rotated_certificates_are_picked_up_without_a_restart(tiny_model, make_cluster, pki):
    coord, worker = worker_mtls(pki)
    # The served certificate lives in files the test rewrites (as a rotated
    # Kubernetes Secret would be).
    pki.write("live.pem", pki.read("server.pem"))
    pki.write("live.key", pki.read("server.key"))
    c = make_cluster(tiny_model, coordinator_args=tls_server_args(pki, "live") + coord +
                     ["--tls-reload-s", "1"], worker_args=worker)
    with pki.channel(c.address, ca="other-ca.pem") as ch:
        expect_handshake_failure(lambda: healthy(ch))
    # Rotate to a certificate from the other CA: key first, then the chain.
    tmp_key, tmp_pem = pki.path("live.key.tmp"), pki.path("live.pem.tmp")
    with open(tmp_key, "wb") as f:
        f.write(pki.read("other-server.key"))
    with open(tmp_pem, "wb") as f:
        f.write(pki.read("other-server.pem"))
    os.replace(tmp_key, pki.path("live.key"))
    os.replace(tmp_pem, pki.path("live.pem"))
    deadline = time.time() + 20
    while True:
        try:
            with pki.channel(c.address, ca="other-ca.pem") as ch:
                assert healthy(ch) == 1
            break
        except grpc.RpcError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    # New connections that trust only the old CA now fail.
    with pki.channel(c.address) as ch:
        expect_handshake_failure(lambda: healthy(ch))


@pytest.mark.time_limit(60)
@pytest.mark.parametrize("case", ["expired", "mismatched-key", "missing-file", "half-pair", "worker-incomplete"])
def test_bad_certificate_setups_stop_the_coordinator_at_start(bins, tiny_model, pki, case):
    args = {
        "expired": ["--tls-cert", pki.path("expired.pem"), "--tls-key", pki.path("expired.key")],
        "mismatched-key": ["--tls-cert", pki.path("server.pem"), "--tls-key", pki.path("client.key")],
        "missing-file": ["--tls-cert", pki.path("nope.pem"), "--tls-key", pki.path("server.key")],
        "half-pair": ["--tls-cert", pki.path("server.pem")],
        "worker-incomplete": ["--worker-tls-cert", pki.path("server.pem"), "--worker-tls-key", pki.path("server.key")],
    }[case]
    expect = {"expired": "expired", "mismatched-key": "does not match", "missing-file": "cannot read",
              "half-pair": "go together", "worker-incomplete": "go together"}[case]
    out = subprocess.run([os.path.join(bins, "strata-coordinator"), "--model", tiny_model, "--port", "0",
                          "--worker-port", "0", "--metrics-port", "0", *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert expect in out.stderr, out.stderr


@pytest.mark.time_limit(60)
def test_plaintext_off_loopback_must_be_asked_for(bins, tiny_model, pki):
    out = subprocess.run([os.path.join(bins, "strata-coordinator"), "--model", tiny_model, "--host", "0.0.0.0",
                          "--port", "0", "--worker-port", "0", "--metrics-port", "0"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "--plaintext" in out.stderr and "no TLS" in out.stderr
    # TLS on the client port but not on the worker port is refused as well.
    out = subprocess.run([os.path.join(bins, "strata-coordinator"), "--model", tiny_model, "--host", "0.0.0.0",
                          "--port", "0", "--worker-port", "0", "--metrics-port", "0", *tls_server_args(pki)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "worker port" in out.stderr


@pytest.mark.time_limit(60)
def test_strata_client_speaks_tls(bins, tiny_model, make_cluster, pki):
    coord, worker = worker_mtls(pki)
    c = make_cluster(tiny_model, coordinator_args=tls_server_args(pki) + coord, worker_args=worker)
    client = [os.path.join(bins, "strata"), "client", "--address", c.address, "--prompt", "hi", "--max-tokens", "3",
              "--ignore-eos", "--timeout-s", "30"]
    ok = subprocess.run(client + ["--tls-ca", pki.path("ca.pem")], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "3 generated tokens" in ok.stderr
    bad = subprocess.run(client + ["--tls-ca", pki.path("other-ca.pem")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1


@pytest.mark.time_limit(120)
def test_workers_check_the_name_in_the_coordinators_certificate(tiny_model, make_cluster, pki):
    coord, worker = worker_mtls(pki)
    # The coordinator's certificate names server.strata.test (and localhost,
    # 127.0.0.1): a worker told to expect that name attaches ...
    c = make_cluster(tiny_model, replicas=2, coordinator_args=coord,
                     worker_args=worker + ["--tls-server-name", "server.strata.test"])
    assert c.gauge("strata_replica_ready", 0) == 1.0
    # ... one expecting another name never does (hostname verification).
    c.kill_worker(1)
    c.worker_args = worker + ["--tls-server-name", "coordinator.elsewhere.test"]
    c.start_worker(1, wait=False)
    wait_for_handshake_failure(c, 1)
    assert c.gauge("strata_replica_ready", 1) == 0.0
    assert c.gauge("strata_replica_ready", 0) == 1.0


@pytest.mark.time_limit(60)
@pytest.mark.parametrize("args,expect", [
    (["--tls-cert", "X"], "go together"),
    (["--tls-server-name", "a"], "needs --tls-ca"),
    (["--tls-ca", "/nonexistent/ca.pem"], "cannot read"),
])
def test_worker_tls_flag_errors(bins, tiny_model, args, expect):
    out = subprocess.run([os.path.join(bins, "strata-worker"), "--coordinator", "127.0.0.1:1", "--model", tiny_model,
                          *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out.stderr
    assert expect in out.stderr, out.stderr
