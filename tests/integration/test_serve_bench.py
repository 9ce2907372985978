"""bench/serve_bench.py against real clusters on the tiny model.

The tiny model generates in well under a millisecond per token, so the latencies measured here
are dominated by the frontend and gRPC, not the model: these tests check the harness (fields,
token accounting, the server-side view it scrapes, prefix-cache hits, the plot, cleanup), not
Strata's speed.

Client vs server agreement: the client's TTFT runs from sending the request to receiving the
first token-bearing chunk, the server's (strata_time_to_first_token_seconds) from the
coordinator's submit to the engine's first token; e2e likewise (to the last token). The client's
interval contains the server's, so per request client >= server, and the difference is the
loopback gRPC hops, the frontend's stream polling (25 ms slices) and the Python client's event
loop. The bound used: server - 2 ms <= client <= server + 30 ms + 20 % of server (2 ms slack
for the two processes' clocks being read at slightly different points of the same event).
It fails when the client adds more than one polling slice of unexplained delay, or when the
server view is computed from the wrong window (e.g. it includes the warm-up, or misses a run).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(ROOT, "bench", "serve_bench.py")

ABS_TOL_MS = 30.0
REL_TOL = 0.20
CLOCK_SLACK_MS = 2.0

RUN_FIELDS = ("config", "completed", "failed", "errors", "duration_s", "total_input_tokens", "total_output_tokens",
              "output_tokens_mismatch", "request_throughput", "output_throughput", "total_token_throughput",
              "tokens_per_chunk", "ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "server", "client_vs_server", "meta")
CONFIG_FIELDS = ("pattern", "isl", "osl", "shared_prefix", "load", "concurrency", "request_rate", "max_concurrency",
                 "load_label", "num_requests", "seed", "run_seed", "token_id_range", "model", "context_length", "target")
STAT_FIELDS = ("mean", "p50", "p90", "p99", "n")
SERVER_FIELDS = ("ttft_count", "ttft_mean_ms", "itl_count", "itl_mean_ms", "e2e_count", "e2e_mean_ms",
                 "queue_count", "queue_mean_ms", "prompt_tokens", "generation_tokens", "requests_succeeded",
                 "requests_failed", "prefix_cache_queries", "prefix_cache_hits", "prefix_cache_hit_rate")


def agrees(client_ms, server_ms):
    return server_ms - CLOCK_SLACK_MS <= client_ms <= server_ms + ABS_TOL_MS + REL_TOL * server_ms


def run_bench(args, timeout=90):
    out = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"serve_bench failed ({out.returncode}):\n{out.stderr[-4000:]}"
    return json.loads(out.stdout), out.stderr


def scrape_sums(cluster):
    sums = {}
    for line in cluster.metrics().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{")[0].split()[0]
        sums[name] = sums.get(name, 0.0) + float(line.split()[-1])
    return sums


def check_plot_files(png, svg):
    with open(png, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", "not a PNG"
    assert int.from_bytes(head[16:20], "big") > 100 and int.from_bytes(head[20:24], "big") > 100
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg"), root.tag
    assert len(list(root.iter())) > 50  # axes, lines, labels were drawn


def check_fields(run):
    for k in RUN_FIELDS:
        assert k in run, f"missing {k}"
    for k in CONFIG_FIELDS:
        assert k in run["config"], f"missing config.{k}"
    for m in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        for k in STAT_FIELDS:
            assert run[m].get(k) is not None, f"missing {m}.{k}"
        assert run[m]["p50"] <= run[m]["p90"] <= run[m]["p99"]
    for k in SERVER_FIELDS:
        assert run["server"].get(k) is not None, f"missing server.{k}"
    for k in ("ttft_client_minus_server_ms", "e2e_client_minus_server_ms"):
        assert run["client_vs_server"].get(k) is not None, f"missing client_vs_server.{k}"


def test_agreement_bound_can_fail():
    assert agrees(12.0, 10.0) and agrees(10.0, 11.5)
    assert not agrees(10.0 + ABS_TOL_MS + 2.0 + 1.0, 10.0)   # 33 ms more than the server: too slow
    assert not agrees(7.0, 10.0)                              # client faster than the server: wrong window


@pytest.mark.time_limit(120)
def test_serve_bench_sweep_against_running_cluster(make_cluster, tiny_model, tmp_path):
    pytest.importorskip("grpc_tools")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pytest.fail("matplotlib is missing from the test venv (pip install -r tests/requirements.txt)", pytrace=False)
    c = make_cluster(tiny_model)
    isl, osl, n = 64, 16, 8
    png, svg, js = tmp_path / "sweep.png", tmp_path / "sweep.svg", tmp_path / "sweep.json"
    before = scrape_sums(c)
    runs, err = run_bench(["--address", c.address, "--metrics", f"http://127.0.0.1:{c.metrics_port}/metrics",
                           "--pattern", f"{isl}/{osl}", "--concurrency", "1,4", "--request-rate", "inf",
                           "--max-concurrency", "4", "--num-requests", str(n), "--warmup", "0", "--seed", "1",
                           "--json-out", str(js), "--plot", f"{png},{svg}"])
    after = scrape_sums(c)
    assert json.loads(js.read_text()) == runs
    assert [r["config"]["load_label"] for r in runs] == ["C1", "C4", "Rinf"], err
    check_plot_files(png, svg)

    report = []
    for r in runs:
        check_fields(r)
        s = r["server"]
        assert r["completed"] == n and r["failed"] == 0 and r["output_tokens_mismatch"] == 0, r["errors"]
        assert r["total_output_tokens"] == osl * n and r["total_input_tokens"] == isl * n
        assert s["generation_tokens"] == osl * n and s["prompt_tokens"] == isl * n
        assert s["ttft_count"] == n and s["e2e_count"] == n and s["requests_succeeded"] == n
        assert s["itl_count"] == (osl - 1) * n          # the server's ITL is per token
        assert r["itl_ms"]["n"] <= (osl - 1) * n          # the client's is per chunk
        assert r["tpot_ms"]["n"] == n
        # Unique random prompts: nothing may be shared by accident.
        assert s["prefix_cache_queries"] == isl * n and s["prefix_cache_hits"] == 0
        for key in ("ttft", "e2e"):
            cm, sm = r[f"{key}_ms"]["mean"], s[f"{key}_mean_ms"]
            report.append(f"{r['config']['load_label']} {key}: client {cm:.2f} ms, server {sm:.2f} ms")
            assert agrees(cm, sm), f"{r['config']['load_label']} {key}: client mean {cm:.2f} ms vs server {sm:.2f} ms"
            assert abs(r["client_vs_server"][f"{key}_client_minus_server_ms"] - (cm - sm)) < 1e-6
        assert r["output_throughput"] == pytest.approx(osl * n / r["duration_s"])
        assert r["total_token_throughput"] == pytest.approx((isl + osl) * n / r["duration_s"])
        assert r["request_throughput"] == pytest.approx(n / r["duration_s"])
    print("\n".join(report))

    # The per-run server windows add up to what the test scraped around the whole invocation
    # (no warm-up): the script's deltas cover every run and nothing else.
    for name, key in (("strata_time_to_first_token_seconds", "ttft"), ("strata_e2e_request_latency_seconds", "e2e")):
        total_ms = (after[name + "_sum"] - before.get(name + "_sum", 0.0)) * 1e3
        runs_ms = sum(r["server"][f"{key}_mean_ms"] * r["server"][f"{key}_count"] for r in runs)
        assert runs_ms == pytest.approx(total_ms, rel=1e-3, abs=0.05)
        assert after[name + "_count"] - before.get(name + "_count", 0.0) == 3 * n

    # Shared-prefix workload: 48 of 64 prompt tokens common (3 full blocks of 16) -> hits.
    runs, err = run_bench(["--address", c.address, "--metrics", f"http://127.0.0.1:{c.metrics_port}/metrics",
                           "--pattern", f"{isl}/{osl}", "--shared-prefix", "48", "--concurrency", "2",
                           "--num-requests", str(n), "--warmup", "0", "--seed", "2"])
    (r,) = runs
    check_fields(r)
    assert r["config"]["shared_prefix"] == 48
    assert r["completed"] == n and r["total_output_tokens"] == osl * n
    s = r["server"]
    # Hits > 0; below 48 of 64 per request because the prefix is fresh: the first request(s) of
    # the run compute it (the tiny model is too fast for a TTFT difference to be reliable).
    assert 0 < s["prefix_cache_hits"] < 48 * n and s["prefix_cache_hits"] % 16 == 0, s
    assert s["prefix_cache_hit_rate"] == pytest.approx(s["prefix_cache_hits"] / s["prefix_cache_queries"])
    print(f"shared prefix: hit rate {s['prefix_cache_hit_rate']:.3f} "
          f"({s['prefix_cache_hits']} of {s['prefix_cache_queries']} tokens)")


def port_closed(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.time_limit(120)
def test_serve_bench_starts_and_stops_its_cluster(bins, tiny_model, tmp_path):
    pytest.importorskip("grpc_tools")
    runs, err = run_bench(["--bin-dir", bins, "--model", tiny_model, "--threads", "1", "--pattern", "short=32/8",
                           "--request-rate", "200", "--max-concurrency", "2", "--num-requests", "6", "--seed", "5"])
    (r,) = runs
    check_fields(r)
    assert r["config"]["load"] == "rate" and r["config"]["request_rate"] == 200 and r["config"]["pattern"] == "short"
    assert r["completed"] == 6 and r["total_output_tokens"] == 6 * 8
    port = int(r["config"]["target"].rsplit(":", 1)[1])
    metrics_port = int(r["meta"]["metrics"].split(":")[2].split("/")[0])
    assert port_closed(port) and port_closed(metrics_port), "the cluster it started is still serving"
    for pid in r["meta"]["cluster_pids"]:
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} still exists"

    # SIGTERM in the middle of a long run stops the cluster too.
    p = subprocess.Popen([sys.executable, SCRIPT, "--bin-dir", bins, "--model", tiny_model, "--threads", "1",
                          "--pattern", "32/8", "--concurrency", "1", "--num-requests", "100000"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines, ready, ready_line = [], threading.Event(), []

    def read():
        for line in p.stderr:
            lines.append(line)
            if "cluster ready" in line:
                ready_line.append(line)
                ready.set()
    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        assert ready.wait(60), "".join(lines)
        time.sleep(1.0)  # inside the run
        ports = [int(x) for x in ready_line[0].replace(",", " ").split() if x.isdigit()]
        assert len(ports) == 2 and not port_closed(ports[0])
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 130
        t.join(10)
        assert any("stopping the cluster" in l for l in lines), "".join(lines)
        assert all(port_closed(x) for x in ports), "".join(lines)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
