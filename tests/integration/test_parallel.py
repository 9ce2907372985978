"""Tensor and pipeline parallelism with real worker processes on loopback
(the coordinator's rendezvous store; shared memory between the ranks, which
--collective-transport auto picks on one host, and Gloo over TCP when asked
for): TP=2, PP=2 and TP=2 x PP=2 replicas of a tiny model produce the single-process engine's greedy and
seeded tokens, and, with F16 weights (no int8 activation rounding, see
tests/worker/model/model_shard_test.cc), logprobs within 1e-3 of a TP=1 x
PP=1 replica's; concurrent requests give the same tokens as sequential ones;
one
rank dying takes its replica down (its streams end UNAVAILABLE) while another
replica keeps serving, and the restarted rank rejoins under a new
communicator. A multi-host variant puts each rank in its own network
namespace so the collectives cross veth interfaces (auto picks TCP there).
"""
import os
import signal
import subprocess
import threading
import time

import grpc
import pytest

import make_tiny_models
from conftest import engine_tokens
from test_native_api import generate, prompt_of

# Logprob tolerance against the TP=1 replica on the F16 model: only the order
# of f32 partial sums differs (all-reduce of per-rank sums).
LOGPROB_TOL = 1e-3

LAYOUTS = [(2, 1, "auto"), (1, 2, "auto"), (2, 2, "auto"), (2, 1, "tcp"), (2, 2, "tcp")]


def run_cases(c, pb, cases, max_tokens=24):
    out = []
    with c.channel() as ch:
        for p, t, s in cases:
            ids, _, chunks = generate(pb, ch, prompt_ids=p, max_tokens=max_tokens, ignore_eos=True,
                                      logprobs=True, sampling=dict(temperature=t, seed=s), timeout=120)
            out.append((ids, [lp for ch_ in chunks for lp in ch_.logprobs]))
    return out


@pytest.fixture(scope="module")
def cases():
    return [(prompt_of(30, 1), 0.0, 0), (prompt_of(7, 2), 0.0, 0), (prompt_of(50, 3), 0.9, 77)]


@pytest.fixture(scope="module")
def f16_model(workdir):
    """The tiny model's shape (SMOL: 6 query / 2 KV heads, 3 layers) with F16 matrices."""
    m = make_tiny_models
    path = os.path.join(workdir, "tiny_f16.gguf")
    weights = m.to_gguf_names(m.hf_weights(m.SMOL, seed=5, tied=True), m.SMOL, "llama")
    m.write_gguf(path, m.SMOL, "llama", weights, matrix_type=m.Q.F16, file_type=1)
    return path


@pytest.fixture(scope="module", params=["q4_1", "f16"])
def model_and_reference(request, bins, tiny_model, f16_model, cases):
    path = tiny_model if request.param == "q4_1" else f16_model
    return request.param, path, [engine_tokens(bins, path, p, 24, temperature=t, seed=s) for p, t, s in cases]


@pytest.mark.time_limit(240)
@pytest.mark.parametrize("tp,pp,transport", LAYOUTS, ids=[f"tp{t}_pp{p}_{x}" for t, p, x in LAYOUTS])
def test_parallel_replica_matches_the_single_process_engine(make_cluster, pb, cases, model_and_reference, tp, pp,
                                                            transport):
    kind, model, reference = model_and_reference
    whole = make_cluster(model, name="whole")
    base = run_cases(whole, pb, cases)
    whole.stop()
    c = make_cluster(model, tp=tp, pp=pp, worker_args=["--collective-transport", transport])
    got = run_cases(c, pb, cases)
    logs = c.worker_logs(0)
    want_transport = "connected: shm rank" if transport == "auto" else "connected: gloo/tcp rank"
    assert logs.count(want_transport) == (tp * pp if tp > 1 else 0) + (tp * pp if pp > 1 else 0), logs[-3000:]
    for i, ((ids, lps), (base_ids, base_lps), want) in enumerate(zip(got, base, reference)):
        assert ids == want, f"case {i}: tp={tp} pp={pp} {kind}: tokens differ from the engine's"
        assert base_ids == want
        assert len(lps) == len(base_lps) == 24
        if kind == "f16":
            worst = max(abs(a - b) for a, b in zip(lps, base_lps))
            assert worst < LOGPROB_TOL, f"case {i}: logprob differs by {worst}"
    # Concurrent requests keep every rank in step (the pipeline keeps two plans in flight).
    results, errors = {}, []

    def client(i):
        try:
            with c.channel() as ch:
                results[i] = generate(pb, ch, prompt_ids=prompt_of(10 + 3 * i, 40 + i), max_tokens=16,
                                      ignore_eos=True, sampling=dict(temperature=0.0), timeout=120)[0]
        except Exception as e:  # reported below
            errors.append((i, e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert not errors, errors[:2]
    with c.channel() as ch:
        for i in range(6):
            assert results[i] == generate(pb, ch, prompt_ids=prompt_of(10 + 3 * i, 40 + i), max_tokens=16,
                                          ignore_eos=True, sampling=dict(temperature=0.0), timeout=120)[0]
    assert c.wait_blocks_free(0)


@pytest.mark.time_limit(240)
def test_killing_one_rank_fails_its_replica_and_a_restarted_rank_rejoins(tiny_model, default_model, make_cluster, pb):
    strata_pb2, strata_pb2_grpc = pb
    c = make_cluster(default_model, replicas=2, tp=2)
    results = {}
    started = threading.Barrier(5)

    def client(i):
        with c.channel() as ch:
            stub = strata_pb2_grpc.StrataStub(ch)
            req = strata_pb2.GenerateRequest(text=f"Story number {i}:", max_tokens=300, ignore_eos=True)
            req.sampling.temperature = 0
            n = 0
            try:
                for chunk in stub.Generate(req, timeout=180):
                    n += len(chunk.token_ids)
                    if n == len(chunk.token_ids):
                        started.wait(60)
                results[i] = ("ok", n)
            except grpc.RpcError as e:
                results[i] = (e.code(), n)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    started.wait(90)  # two streams per replica
    assert c.gauge("strata_num_requests_running", 0) == 2 and c.gauge("strata_num_requests_running", 1) == 2
    c.kill_rank(0, 1)  # SIGKILL tp rank 1 of replica 0
    for t in threads:
        t.join(170)
    codes = sorted(str(r[0]) for r in results.values())
    assert codes == ["StatusCode.UNAVAILABLE", "StatusCode.UNAVAILABLE", "ok", "ok"], results
    assert all(n == 300 for code, n in results.values() if code == "ok")
    # The surviving rank of replica 0 was cut off and re-attached, waiting for its peer.
    assert c.gauge("strata_replica_ready", 0) == 0.0
    with c.channel() as ch:
        ids, _, _ = generate(pb, ch, text="Hello", max_tokens=5, ignore_eos=True)
        assert len(ids) == 5
    c.start_rank(0, 1)
    c.wait_ready(0)
    log = c.log("worker0.0")
    assert "rendezvous 'replica-0/gen-2'" in log, log
    # Both replicas answer exactly alike again.
    with c.channel() as ch:
        want = generate(pb, ch, text="Once upon a time", max_tokens=12, ignore_eos=True, sampling=dict(temperature=0.0))[0]
        for _ in range(3):
            assert generate(pb, ch, text="Once upon a time", max_tokens=12, ignore_eos=True, sampling=dict(temperature=0.0))[0] == want
    assert c.gauge("strata_replica_ready", 0) == 1.0 and c.gauge("strata_replica_ready", 1) == 1.0


NETNS = ["strata_tp_a", "strata_tp_b"]
BRIDGE = "strata_br"


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def tx_bytes(ns, dev):
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/statistics/tx_bytes"],
                         capture_output=True, text=True, timeout=10)
    return int(out.stdout)


@pytest.fixture
def two_hosts():
    """Two network namespaces ("hosts") 10.77.0.2 and 10.77.0.3 on a bridge whose
    root-namespace address 10.77.0.1 is the coordinator's. Removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the multi-host test creates network namespaces and needs root")

    def cleanup():
        # The host ends of the veth pairs go explicitly: a deleted namespace is
        # torn down lazily by the kernel, and its veths with it, so a second
        # run right after the first could still find "sveth0" there.
        for i, ns in enumerate(NETNS):
            subprocess.run(["ip", "link", "del", f"sveth{i}"], capture_output=True, timeout=30)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, timeout=30)

    cleanup()
    try:
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", "10.77.0.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for i, ns in enumerate(NETNS):
            host, peer = f"sveth{i}", f"sveth{i}p"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", peer, "netns", ns)
            sh("ip", "link", "set", host, "master", BRIDGE)
            sh("ip", "link", "set", host, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"10.77.0.{2 + i}/24", "dev", peer)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield [(ns, f"10.77.0.{2 + i}", f"sveth{i}p") for i, ns in enumerate(NETNS)]
    finally:
        cleanup()


@pytest.mark.time_limit(240)
def test_tp2_across_two_network_namespaces(bins, tiny_model, make_cluster, pb, cases, two_hosts):
    hosts = two_hosts
    reference = [engine_tokens(bins, tiny_model, p, 24, temperature=t, seed=s) for p, t, s in cases]
    c = make_cluster(tiny_model, tp=2, coordinator_host="10.77.0.1",
                     rank_prefix=lambda r, w: ["ip", "netns", "exec", hosts[w][0]],
                     rank_args=lambda r, w: ["--peer-host", hosts[w][1]])
    before = [tx_bytes(ns, dev) for ns, _, dev in hosts]
    got = run_cases(c, pb, cases)
    after = [tx_bytes(ns, dev) for ns, _, dev in hosts]
    for i, ((ids, _), want) in enumerate(zip(got, reference)):
        assert ids == want, f"case {i}: tokens differ across hosts"
    # Different network namespaces count as different hosts: auto chose TCP.
    assert c.worker_logs(0).count("connected: gloo/tcp rank") == 2, c.worker_logs(0)[-3000:]
    # Every all-reduce of every layer crossed each rank's interface: 3 layers x
    # 2 all-reduces + embedding, x 72 steps, of 192 floats per token.
    for (ns, _, dev), b, a in zip(hosts, before, after):
        assert a - b > 200_000, f"{ns}/{dev} sent only {a - b} bytes"
