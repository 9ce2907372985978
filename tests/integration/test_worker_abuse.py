"""The worker port under abuse, with real processes: rogue workers without or
with a wrong join token, a Register that would have exhausted the
coordinator's memory, a worker for other weights, a worker that writes
out-of-vocabulary tokens, rendezvous-store access without a group's secret
and a flood of 1 MiB values, reflection on the worker port; and
`strata cluster up` authenticating its own workers.

The rogue workers are Python clients of WorkerLink / RendezvousStore (stubs
generated at test time with grpcio-tools). Every call carries a deadline and
every test its own time limit.
"""
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conftest import ROOT, rss_kib
from test_native_api import generate

TOKEN = "integration-join-token-0123456789abcdef"


@pytest.fixture(scope="session")
def wpb(pb, workdir):
    """worker.proto and rendezvous.proto stubs: (worker_pb2, worker_pb2_grpc, rendezvous_pb2, rendezvous_pb2_grpc)."""
    from grpc_tools import protoc
    import grpc_tools
    out = os.path.join(workdir, "stubs")  # next to strata.v1's (the pb fixture put it on sys.path)
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main(["protoc", f"-I{ROOT}/proto", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
                      f"{ROOT}/proto/strata/v1/worker.proto", f"{ROOT}/proto/strata/v1/rendezvous.proto"])
    assert rc == 0, "protoc failed on worker.proto / rendezvous.proto"
    from strata.v1 import rendezvous_pb2, rendezvous_pb2_grpc, worker_pb2, worker_pb2_grpc
    return worker_pb2, worker_pb2_grpc, rendezvous_pb2, rendezvous_pb2_grpc


@pytest.fixture
def token_file(tmp_path):
    p = tmp_path / "join-token"
    p.write_text(TOKEN + "\n")
    p.chmod(0o600)
    return str(p)


def identity(cluster):
    """(fingerprint, vocab, context) the real worker of replica 0 reported in its log."""
    m = re.search(r"model \S+ \((\S+)\), \d+ layers, vocab (\d+), context (\d+)", cluster.log("worker0"))
    assert m, cluster.log("worker0")
    return m.group(1), int(m.group(2)), int(m.group(3))


def register_msg(wpb, fingerprint, vocab, context, kv_blocks=64, replica=0, name="m"):
    worker_pb2 = wpb[0]
    return worker_pb2.WorkerMessage(register=worker_pb2.Register(
        protocol_version=1, replica=replica, pp_size=1, tp_size=1, device="rogue", kv_capacity_blocks=kv_blocks,
        block_size=16, model=worker_pb2.ModelIdentity(name=name, fingerprint=fingerprint, vocab_size=vocab,
                                                      context_length=context)))


class RogueWorker:
    """A WorkerLink.Attach stream driven by hand: send() queues a message, next()
    reads the coordinator's next one (None when the stream ended: see error)."""

    def __init__(self, wpb, address, first, token=None, timeout=60):
        self.out = queue.Queue()
        self.out.put(first)
        md = [("x-strata-join-token", token)] if token else None
        self.channel = grpc.insecure_channel(address)
        self.call = wpb[1].WorkerLinkStub(self.channel).Attach(self._messages(), metadata=md, timeout=timeout)
        self.error = None

    def _messages(self):
        while True:
            m = self.out.get()
            if m is None:
                return
            yield m

    def send(self, msg):
        self.out.put(msg)

    def next(self):
        try:
            return next(self.call)
        except StopIteration:
            return None
        except grpc.RpcError as e:
            self.error = e
            return None

    def close(self):
        self.out.put(None)
        self.call.cancel()
        self.channel.close()


def refused(wpb, address, first, token):
    """The status a coordinator ends an Attach with that starts with `first`."""
    w = RogueWorker(wpb, address, first, token, timeout=20)
    try:
        assert w.next() is None, "the coordinator answered a rogue Register"
        return w.error
    finally:
        w.close()


def wait_replica_ready(cluster, r, timeout=30):
    """Like Cluster.wait_ready, for a replica served by a rogue (its real worker is dead)."""
    deadline = time.time() + timeout
    while cluster.gauge("strata_replica_ready", r) != 1.0:
        assert time.time() < deadline, f"replica {r} not ready: {cluster.log('coordinator')}"
        time.sleep(0.05)


@pytest.mark.time_limit(120)
def test_rogue_registrations_are_refused_and_the_coordinator_keeps_serving(tiny_model, make_cluster, pb, wpb,
                                                                            token_file):
    c = make_cluster(tiny_model, coordinator_args=["--join-token-file", token_file],
                     worker_args=["--join-token-file", token_file])
    fp, vocab, context = identity(c)
    worker_addr = f"{c.host}:{c.worker_port}"
    good = register_msg(wpb, fp, vocab, context)

    e = refused(wpb, worker_addr, good, token=None)
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
    assert "x-strata-join-token" in e.details()
    e = refused(wpb, worker_addr, good, token="integration-join-token-WRONG-0123456789")
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
    assert TOKEN not in e.details() and "WRONG" not in e.details()

    # One Register asking for 2^31-1 KV blocks used to abort the coordinator (std::bad_alloc).
    e = refused(wpb, worker_addr, register_msg(wpb, fp, vocab, context, kv_blocks=2**31 - 1), token=TOKEN)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    assert "kv_capacity_blocks 2147483647" in e.details()
    e = refused(wpb, worker_addr, register_msg(wpb, "size:1-fnv1a64:0000000000000000", vocab, context), token=TOKEN)
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e
    assert "size:1-fnv1a64:0000000000000000" in e.details() and fp in e.details(), e.details()
    assert c.coordinator.poll() is None
    with c.channel() as ch:
        ids, _, _ = generate(pb, ch, text="still serving", max_tokens=4, ignore_eos=True)
    assert len(ids) == 4

    # Reflection is for clients only.
    with grpc.insecure_channel(worker_addr) as ch:
        req = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as r:
            list(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(iter([req]), timeout=5))
        assert r.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with c.channel() as ch:
        services = {s.name for r in reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([req]), timeout=5) for s in r.list_services_response.service}
        assert "strata.v1.Strata" in services and "strata.worker.v1.WorkerLink" not in services

    # The token is never logged.
    assert TOKEN not in c.log("coordinator") and TOKEN not in c.log("worker0")
    assert "WARNING: the worker port is unauthenticated" not in c.log("coordinator")


@pytest.mark.time_limit(120)
def test_a_worker_port_without_a_join_token_warns(tiny_model, make_cluster):
    c = make_cluster(tiny_model)
    assert "WARNING: the worker port is unauthenticated" in c.log("coordinator")


@pytest.mark.time_limit(150)
def test_out_of_vocabulary_tokens_drop_the_worker_and_never_reach_the_client(tiny_model, make_cluster, pb, wpb,
                                                                             token_file):
    c = make_cluster(tiny_model, coordinator_args=["--join-token-file", token_file],
                     worker_args=["--join-token-file", token_file])
    fp, vocab, context = identity(c)
    worker_pb2 = wpb[0]
    c.kill_worker(0)
    c.wait_ready(0, ready=False)
    rogue = RogueWorker(wpb, f"{c.host}:{c.worker_port}", register_msg(wpb, fp, vocab, context), token=TOKEN)
    try:
        msg = rogue.next()
        assert msg is not None and msg.HasField("registered"), rogue.error
        wait_replica_ready(c, 0)
        answered = threading.Event()

        def answer():
            # Answer every plan with token ids no vocabulary has.
            while True:
                m = rogue.next()
                if m is None:
                    return
                if not m.HasField("step_plan"):
                    continue
                plan = m.step_plan
                res = worker_pb2.StepResult(step_id=plan.step_id)
                for ns in plan.new_sequences:
                    res.tokens.add(seq_id=ns.seq_id, token_id=2**31 - 1)
                for rs in plan.running_sequences:
                    res.tokens.add(seq_id=rs.seq_id, token_id=-1)
                rogue.send(worker_pb2.WorkerMessage(step_result=res))
                answered.set()

        t = threading.Thread(target=answer, daemon=True)
        t.start()
        with c.channel() as ch:
            with pytest.raises(grpc.RpcError) as e:
                ids, _, _ = generate(pb, ch, timeout=30, text="hello", max_tokens=4, ignore_eos=True)
                pytest.fail(f"the client got tokens {ids} from a rogue worker")
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
        assert answered.is_set()
        t.join(timeout=10)
        assert rogue.error is not None  # cut off
        log = c.log("coordinator")
        assert "violated the protocol" in log and "outside the vocabulary" in log, log
    finally:
        rogue.close()
    # A good worker takes the replica back.
    c.start_worker(0)
    with c.channel() as ch:
        ids, _, _ = generate(pb, ch, text="hello", max_tokens=4, ignore_eos=True)
    assert len(ids) == 4 and all(0 <= t < vocab for t in ids)


@pytest.mark.time_limit(150)
def test_the_rendezvous_store_needs_the_groups_secret_and_bounds_its_memory(tiny_model, make_cluster, wpb, token_file):
    c = make_cluster(tiny_model, coordinator_args=["--join-token-file", token_file],
                     worker_args=["--join-token-file", token_file])
    fp, vocab, context = identity(c)
    _, _, rendezvous_pb2, rendezvous_pb2_grpc = wpb
    addr = f"{c.host}:{c.worker_port}"
    # The live group's key prefix, as the coordinator reports it.
    with grpc.insecure_channel(addr) as ch:
        store = rendezvous_pb2_grpc.RendezvousStoreStub(ch)
        key = "replica-0/gen-1/tp/stage0/rank0"
        for md, code in [(None, grpc.StatusCode.UNAUTHENTICATED),
                         ([("x-strata-join-token", TOKEN)], grpc.StatusCode.PERMISSION_DENIED),
                         ([("x-strata-join-token", TOKEN), ("x-strata-store-token", "0" * 32)],
                          grpc.StatusCode.PERMISSION_DENIED)]:
            with pytest.raises(grpc.RpcError) as e:
                store.Set(rendezvous_pb2.SetRequest(key=key, value=b"evil"), metadata=md, timeout=5)
            assert e.value.code() == code, e.value
            with pytest.raises(grpc.RpcError) as e:
                store.Get(rendezvous_pb2.GetRequest(key=key, timeout_ms=0), metadata=md, timeout=5)
            assert e.value.code() == code, e.value

    # A group's own secret (a registered worker's) opens its prefix only, and
    # 150 x 1 MiB stops at the group's 16 MiB.
    c.kill_worker(0)
    c.wait_ready(0, ready=False)
    rogue = RogueWorker(wpb, addr, register_msg(wpb, fp, vocab, context), token=TOKEN)
    try:
        msg = rogue.next()
        assert msg is not None and msg.HasField("registered"), rogue.error
        prefix = msg.registered.collective_rendezvous.decode() + "/"  # bytes in worker.proto
        secret = msg.registered.store_token
        assert len(secret) >= 32
        md = [("x-strata-join-token", TOKEN), ("x-strata-store-token", secret)]
        with grpc.insecure_channel(addr) as ch:
            store = rendezvous_pb2_grpc.RendezvousStoreStub(ch)
            with pytest.raises(grpc.RpcError) as e:
                store.Set(rendezvous_pb2.SetRequest(key="replica-1/gen-1/x", value=b"evil"), metadata=md, timeout=5)
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
            rss_before = rss_kib(c.coordinator.pid)
            stored, err = 0, None
            for i in range(150):
                try:
                    store.Set(rendezvous_pb2.SetRequest(key=f"{prefix}flood/{i}", value=b"v" * (1 << 20)),
                              metadata=md, timeout=10)
                    stored += 1
                except grpc.RpcError as ex:
                    err = ex
                    break
            assert stored == 15, stored
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "16777216 bytes" in err.details(), err
            grown_mib = (rss_kib(c.coordinator.pid) - rss_before) / 1024
            assert grown_mib < 64, f"the coordinator grew by {grown_mib:.0f} MiB"
    finally:
        rogue.close()
    # The group ended with the rogue's stream: its secret is dead.
    deadline = time.time() + 10
    while True:
        with grpc.insecure_channel(addr) as ch:
            try:
                rendezvous_pb2_grpc.RendezvousStoreStub(ch).Get(
                    rendezvous_pb2.GetRequest(key=f"{prefix}flood/0", timeout_ms=0), metadata=md, timeout=5)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.PERMISSION_DENIED:
                    break
        assert time.time() < deadline, "the ended group's secret still opens its keys"
        time.sleep(0.1)


@pytest.mark.time_limit(120)
def test_cluster_up_authenticates_its_workers_with_a_private_token(bins, tiny_model, workdir, wpb):
    port_file = os.path.join(workdir, "abuse-up.ports")
    proc = subprocess.Popen([os.path.join(bins, "strata"), "cluster", "up", "--model", tiny_model, "--model-name",
                             "tiny", "--port", "0", "--worker-port", "0", "--metrics-port", "0", "--threads", "1",
                             "--port-file", port_file],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while not os.path.exists(port_file):
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "cluster up did not become ready"
            time.sleep(0.1)
        port, worker_port, _ = open(port_file).read().split()
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = [int(x) for x in f.read().split()]
        argvs = [open(f"/proc/{pid}/cmdline").read().split("\0") for pid in children]
        token_files = {a[a.index("--join-token-file") + 1] for a in argvs}
        assert len(token_files) == 1, argvs  # the coordinator and every worker share one
        token_path = token_files.pop()
        assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600
        # Served (the worker got in) ...
        out = subprocess.run([os.path.join(bins, "strata"), "client", "--address", f"127.0.0.1:{port}", "--prompt",
                              "the moon", "--max-tokens", "4", "--ignore-eos", "--print-token-ids"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        # ... and a worker without the token does not.
        e = refused(wpb, f"127.0.0.1:{worker_port}", register_msg(wpb, "x", 1, 1), token=None)
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert not os.path.exists(token_path), "the token file outlived the cluster"
    finally:
        if proc.poll() is None:
            proc.kill()
