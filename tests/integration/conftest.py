"""Real processes on 127.0.0.1: strata-coordinator and strata-worker started
from the build's bin directory (--strata-bin-dir or $STRATA_BIN_DIR, which
ctest sets), on ports the OS picks (the coordinator writes them to a port
file). Models: a tiny random model generated at test time with
tests/reference/make_tiny_models.py (fast, exact comparisons), and the default
model (SmolLM2-135M Q4_1) where a test needs generation slow enough to act on
mid-stream. strata.v1 Python stubs are generated at test time with grpcio-tools.

Every test is bounded: an alarm fails it after its limit (default 120 s), and
every gRPC call carries a deadline.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

import make_tiny_models  # noqa: E402

DEFAULT_MODEL = os.path.join(os.environ.get("STRATA_MODEL_DIR", os.path.expanduser("~/.cache/strata/models")),
                             "SmolLM2-135M-Instruct.Q4_1.gguf")


def pytest_addoption(parser):
    parser.addoption("--strata-bin-dir", default=os.environ.get("STRATA_BIN_DIR", ""),
                     help="directory with strata, strata-coordinator, strata-worker")


@pytest.fixture(autouse=True)
def _time_limit(request):
    limit = getattr(request.node.get_closest_marker("time_limit"), "args", [120])[0]

    def expired(signum, frame):
        raise TimeoutError(f"test exceeded its {limit} s limit")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def pytest_configure(config):
    config.addinivalue_line("markers", "time_limit(seconds): fail the test after this many seconds")


@pytest.fixture(scope="session")
def bins(pytestconfig):
    d = pytestconfig.getoption("--strata-bin-dir")
    for name in ("strata", "strata-coordinator", "strata-worker"):
        p = os.path.join(d, name)
        if not os.access(p, os.X_OK):
            pytest.fail(f"{p} is missing: build the project (scripts/test.sh) or pass --strata-bin-dir",
                        pytrace=False)
    return d


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="strata_it_") as d:
        yield d


@pytest.fixture(scope="session")
def tiny_model(workdir):
    """smollm_mixed.gguf: Q4_1 matrices, Q8_0 embeddings, tied output, GQA, BPE tokenizer; context 256."""
    m = make_tiny_models
    path = os.path.join(workdir, "tiny.gguf")
    weights = m.to_gguf_names(m.hf_weights(m.SMOL, seed=3, tied=True), m.SMOL, "llama")
    m.write_gguf(path, m.SMOL, "llama", weights, matrix_type=m.Q.Q4_1, embd_type=m.Q.Q8_0, file_type=3)
    return path


@pytest.fixture(scope="session")
def default_model():
    if not os.path.isfile(DEFAULT_MODEL):
        pytest.fail(f"{DEFAULT_MODEL} is missing: run scripts/install_deps.sh", pytrace=False)
    return DEFAULT_MODEL


@pytest.fixture(scope="session")
def pb(workdir):
    """strata.v1 stubs generated with grpcio-tools: returns (strata_pb2, strata_pb2_grpc)."""
    from grpc_tools import protoc
    import grpc_tools
    out = os.path.join(workdir, "stubs")
    os.makedirs(out, exist_ok=True)
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main(["protoc", f"-I{ROOT}/proto", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
                      f"{ROOT}/proto/strata/v1/strata.proto"])
    assert rc == 0, "protoc failed on strata.proto"
    sys.path.insert(0, out)
    from strata.v1 import strata_pb2, strata_pb2_grpc
    return strata_pb2, strata_pb2_grpc


class Cluster:
    """A coordinator and tp x pp workers per replica, as real processes.

    workers[r] is replica r's first rank (its only one when tp = pp = 1);
    ranks[r][w] is rank w = pp_stage * tp + tp_rank. `rank_prefix(r, w)`
    optionally returns a command prefix (e.g. `ip netns exec ns`) and
    `rank_args(r, w)` extra arguments for that rank."""

    def __init__(self, bins, workdir, model, replicas=1, coordinator_args=(), worker_args=(), name="m",
                 tp=1, pp=1, coordinator_host="127.0.0.1", rank_prefix=None, rank_args=None):
        self.bins, self.model, self.replicas, self.name = bins, model, replicas, name
        self.tp, self.pp = tp, pp
        self.rank_prefix = rank_prefix or (lambda r, w: [])
        self.rank_args = rank_args or (lambda r, w: ["--peer-host", "127.0.0.1"] if tp * pp > 1 else [])
        self.worker_args = list(worker_args)
        self.log_dir = tempfile.mkdtemp(prefix="cluster_", dir=workdir)
        port_file = os.path.join(self.log_dir, "ports")
        self.coordinator = self._spawn("coordinator", [
            os.path.join(bins, "strata-coordinator"), "--model", model, "--model-name", name,
            "--replicas", str(replicas), "--host", coordinator_host, "--port", "0", "--worker-port", "0",
            "--metrics-port", "0", "--port-file", port_file, "--tensor-parallel-size", str(tp),
            "--pipeline-parallel-size", str(pp),
            # Off loopback (the netns tests) plaintext must be asked for.
            *([] if coordinator_host.startswith("127.") else ["--plaintext"]), *coordinator_args])
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if self.coordinator.poll() is not None:
                raise RuntimeError(f"coordinator exited: {self.log('coordinator')}")
            if time.time() > deadline:
                raise RuntimeError("coordinator did not write its port file")
            time.sleep(0.05)
        with open(port_file) as f:
            self.port, self.worker_port, self.metrics_port = (int(x) for x in f.read().split())
        self.host = coordinator_host
        self.address = f"{coordinator_host}:{self.port}"
        self.ranks = [[None] * (tp * pp) for _ in range(replicas)]
        for r in range(replicas):
            self.start_worker(r)

    @property
    def workers(self):
        return [ranks[0] for ranks in self.ranks]

    def _spawn(self, tag, argv):
        log = open(os.path.join(self.log_dir, f"{tag}.log"), "ab")
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def log(self, tag):
        with open(os.path.join(self.log_dir, f"{tag}.log"), errors="replace") as f:
            return f.read()[-4000:]

    def start_rank(self, r, w):
        tag = f"worker{r}" if self.tp * self.pp == 1 else f"worker{r}.{w}"
        self.ranks[r][w] = self._spawn(tag, [
            *self.rank_prefix(r, w), os.path.join(self.bins, "strata-worker"),
            "--coordinator", f"{self.host}:{self.worker_port}", "--replica", str(r), "--model", self.model,
            "--model-name", self.name, "--threads", "1", "--tp-rank", str(w % self.tp), "--tp-size", str(self.tp),
            "--pp-stage", str(w // self.tp), "--pp-size", str(self.pp), *self.rank_args(r, w), *self.worker_args])

    def start_worker(self, r, wait=True):
        for w in range(self.tp * self.pp):
            self.start_rank(r, w)
        if wait:
            self.wait_ready(r)

    def kill_worker(self, r, sig=signal.SIGKILL):
        self.kill_rank(r, 0, sig)

    def kill_rank(self, r, w, sig=signal.SIGKILL):
        self.ranks[r][w].send_signal(sig)
        self.ranks[r][w].wait(timeout=10)

    def metrics(self):
        with urllib.request.urlopen(f"http://{self.host}:{self.metrics_port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def gauge(self, name, replica):
        key = f'{name}{{replica="{replica}"}} '
        for line in self.metrics().splitlines():
            if line.startswith(key):
                return float(line[len(key):])
        return None

    def wait_ready(self, r, ready=True, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.gauge("strata_replica_ready", r) == (1.0 if ready else 0.0):
                return
            for w, p in enumerate(self.ranks[r]):
                if ready and p is not None and p.poll() is not None:
                    raise RuntimeError(f"worker {r} rank {w} exited: {self.worker_logs(r)}")
            time.sleep(0.05)
        raise TimeoutError(f"replica {r} not {'ready' if ready else 'gone'} after {timeout} s:\n"
                           f"{self.log('coordinator')}\n{self.worker_logs(r)}")

    def worker_logs(self, r):
        if self.tp * self.pp == 1:
            return self.log(f"worker{r}")
        return "\n".join(f"--- rank {w}:\n" + self.log(f"worker{r}.{w}") for w in range(self.tp * self.pp))

    def wait_blocks_free(self, r, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            free, total = self.gauge("strata_kv_blocks_free", r), self.gauge("strata_kv_blocks_total", r)
            if free is not None and free == total and total > 0:
                return True
            time.sleep(0.02)
        return False

    def channel(self):
        return grpc.insecure_channel(self.address)

    def stop(self):
        every = [p for ranks in self.ranks for p in ranks]
        for w in every:
            if w is not None and w.poll() is None:
                w.terminate()
        for w in every:
            if w is not None:
                try:
                    w.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    w.kill()
        if self.coordinator.poll() is None:
            self.coordinator.terminate()
            try:
                self.coordinator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.coordinator.kill()


@pytest.fixture
def make_cluster(bins, workdir):
    made = []

    def make(model, **kw):
        c = Cluster(bins, workdir, model, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def rss_kib(pid):
    """A process's resident set (VmRSS) in KiB; 0 once it is gone."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def engine_tokens(bins, model, prompt_ids, max_tokens, temperature=0.0, seed=0, top_k=0, top_p=1.0, ignore_eos=True):
    """The single-process engine's (strata generate) tokens for the same request."""
    argv = [os.path.join(bins, "strata"), "generate", "--model", model, "--prompt-tokens",
            ",".join(str(t) for t in prompt_ids), "--max-tokens", str(max_tokens), "--temperature", str(temperature),
            "--top-k", str(top_k), "--top-p", str(top_p), "--min-p", "0", "--seed", str(seed), "--threads", "1",
            "--print-token-ids"]
    if ignore_eos:
        argv.append("--ignore-eos")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    return [int(x) for x in lines[-1].split()]
