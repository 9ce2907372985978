"""deploy/bin/strata-worker-group: ranks from the pod's identity (--dry-run prints the
command lines it would exec), and signal handling with several processes."""
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

import deploy_lib as dl

GROUP = os.path.join(dl.SOURCE_DIR, "deploy", "bin", "strata-worker-group")
BASE = {"PATH": os.environ["PATH"], "STRATA_COORDINATOR": "strata-coordinator-internal:8003",
        "STRATA_MODEL": "/models/m.gguf"}


def dry_run(env, *extra):
    out = subprocess.run([GROUP, "--dry-run", "--", *extra], env={**BASE, **env}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [shlex.split(line) for line in out.stdout.splitlines()]


def test_statefulset_cpu_pod_is_one_replica_from_its_ordinal():
    (cmd,) = dry_run({"POD_NAME": "strata-worker-12", "STRATA_THREADS": "2"}, "--kv-cache-mb", "512")
    assert cmd == ["strata-worker", "--coordinator", "strata-coordinator-internal:8003", "--model",
                   "/models/m.gguf", "--replica", "12", "--device", "cpu", "--threads", "2",
                   "--kv-cache-mb", "512"]


def test_statefulset_gpu_pod_runs_one_rank_per_gpu():
    cmds = dry_run({"HOSTNAME": "strata-worker-3", "STRATA_DEVICE": "cuda", "STRATA_TP_SIZE": "8",
                    "STRATA_PEER_HOST": "10.1.2.3"})
    assert len(cmds) == 8
    for rank, cmd in enumerate(cmds):
        assert cmd[:7] == ["strata-worker", "--coordinator", "strata-coordinator-internal:8003", "--model",
                           "/models/m.gguf", "--replica", "3"]
        assert cmd[7:] == ["--device", f"cuda:{rank}", "--tp-size", "8", "--tp-rank", str(rank),
                           "--pp-size", "1", "--pp-stage", "0", "--peer-host", "10.1.2.3"]


def test_leaderworkerset_pod_is_a_pipeline_stage_of_its_group():
    env = {"STRATA_DEVICE": "cuda", "STRATA_TP_SIZE": "8", "STRATA_LWS_GROUP_INDEX": "5",
           "LWS_GROUP_SIZE": "2", "LWS_WORKER_INDEX": "1", "LWS_LEADER_ADDRESS": "strata-worker-5.strata-worker",
           "POD_NAME": "strata-worker-5-1", "STRATA_PEER_HOST": "10.1.2.4"}
    cmds = dry_run(env, "--gpu-memory-utilization", "0.9")
    assert [c[c.index("--replica") + 1] for c in cmds] == ["5"] * 8
    assert [c[c.index("--pp-stage") + 1] for c in cmds] == ["1"] * 8
    assert [c[c.index("--pp-size") + 1] for c in cmds] == ["2"] * 8
    assert [c[c.index("--tp-rank") + 1] for c in cmds] == [str(r) for r in range(8)]
    assert all(c[-2:] == ["--gpu-memory-utilization", "0.9"] for c in cmds)
    env["LWS_WORKER_INDEX"] = "0"  # the leader pod is stage 0
    assert {c[c.index("--pp-stage") + 1] for c in dry_run(env)} == {"0"}


@pytest.mark.parametrize("env,message", [
    ({"POD_NAME": "worker"}, "cannot derive the replica"),
    ({"STRATA_REPLICA": "x"}, "not a non-negative integer"),
    ({"STRATA_REPLICA": "0", "STRATA_PP_SIZE": "2", "LWS_GROUP_SIZE": "3"}, "LeaderWorkerSet group has 3 pods"),
    ({"STRATA_REPLICA": "0", "STRATA_PP_STAGE": "2", "STRATA_PP_SIZE": "2"}, "must be < 2"),
    ({"STRATA_REPLICA": "0", "STRATA_DEVICE": "tpu"}, "neither cpu nor cuda"),
])
def test_bad_identity_is_a_clear_error(env, message):
    out = subprocess.run([GROUP, "--dry-run"], env={**BASE, **env}, capture_output=True, text=True)
    assert out.returncode == 2 and message in out.stderr, out.stderr


FAKE_WORKER = """#!/usr/bin/env python3
import os, signal, sys, time
args = sys.argv[1:]
rank = args[args.index("--tp-rank") + 1]
log = os.environ["FAKE_LOG"]
def term(*_):
    open(log, "a").write(f"term {rank}\\n"); sys.exit(0)
signal.signal(signal.SIGTERM, term)
open(log, "a").write(f"start {rank}\\n")
if rank == os.environ.get("FAKE_FAIL_RANK"):
    time.sleep(0.5); sys.exit(3)
time.sleep(60)
"""


def start_group(tmp_path, **env):
    fake = tmp_path / "fake-worker"
    fake.write_text(FAKE_WORKER.replace("/usr/bin/env python3", sys.executable, 1))
    fake.chmod(0o755)
    log = tmp_path / "log"
    proc = subprocess.Popen([GROUP], env={**BASE, "STRATA_REPLICA": "0", "STRATA_TP_SIZE": "3",
                                          "STRATA_WORKER_BIN": str(fake), "FAKE_LOG": str(log), **env},
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 10
    while time.time() < deadline and (not log.exists() or log.read_text().count("start") < 3):
        time.sleep(0.05)
    return proc, log


def test_sigterm_reaches_every_worker_and_the_group_exits_0(tmp_path):
    proc, log = start_group(tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert sorted(log.read_text().split("\n")[3:-1]) == ["term 0", "term 1", "term 2"]


def test_one_worker_failing_stops_the_others_with_its_status(tmp_path):
    proc, log = start_group(tmp_path, FAKE_FAIL_RANK="1")
    assert proc.wait(timeout=10) == 3
    assert "exited with status 3" in proc.stderr.read()
    assert sorted(line for line in log.read_text().splitlines() if line.startswith("term")) == ["term 0", "term 2"]
