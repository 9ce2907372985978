"""Fixtures for the engine-vs-reference tests.

The strata CLI comes from --strata-cli or the STRATA_CLI environment variable
(ctest sets it). The tiny models are generated once per session into a
temporary directory (make_tiny_models.py; nothing is committed); tests that
take a `model`, `gguf_model` or `hf_model` argument run once per model.
"""
import json
import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import make_tiny_models  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--strata-cli", default=os.environ.get("STRATA_CLI", ""),
                     help="path to the strata binary (default: $STRATA_CLI)")


@pytest.fixture(scope="session")
def cli(pytestconfig):
    path = pytestconfig.getoption("--strata-cli")
    if not path:
        pytest.fail("no strata CLI: pass --strata-cli PATH or set STRATA_CLI "
                    "(ctest sets it to the `strata` target)", pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"strata CLI '{path}' does not exist or is not executable: build the `strata` target",
                    pytrace=False)
    return path


def pytest_configure(config):
    # Generated at configure time so tests can be parametrized by model name.
    config._tiny_dir = tempfile.mkdtemp(prefix="strata_tiny_models_")
    make_tiny_models.make_all(config._tiny_dir)
    with open(os.path.join(config._tiny_dir, "models.json")) as f:
        m = json.load(f)
    m["by_name"] = {x["name"]: x for x in m["models"]}
    config._tiny_manifest = m


def pytest_unconfigure(config):
    if getattr(config, "_tiny_dir", None):
        shutil.rmtree(config._tiny_dir, ignore_errors=True)


def pytest_generate_tests(metafunc):
    m = metafunc.config._tiny_manifest
    if "model" in metafunc.fixturenames:
        metafunc.parametrize("model", m["models"], ids=[x["name"] for x in m["models"]])
    if "gguf_model" in metafunc.fixturenames:
        gg = [x for x in m["models"] if x["format"] == "gguf"]
        metafunc.parametrize("gguf_model", gg, ids=[x["name"] for x in gg])
    if "hf_model" in metafunc.fixturenames:
        hf = [x for x in m["models"] if x["format"] == "hf"]
        metafunc.parametrize("hf_model", hf, ids=[x["name"] for x in hf])


@pytest.fixture(scope="session")
def manifest(pytestconfig):
    return pytestconfig._tiny_manifest


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    mod = sys.modules.get("test_engine_vs_reference")
    rows = getattr(mod, "MEASURED", [])
    if not rows:
        return
    tr = terminalreporter
    tr.section("engine vs reference (errors relative to the std of the reference logits)")
    tr.write_line(f"{'comparison':72s} {'max rel':>9s} {'rms rel':>9s} {'top-1':>6s}")
    for what, mx, rms, top1 in rows:
        tr.write_line(f"{what:72s} {mx:9.2e} {rms:9.2e} {top1:6.1%}")
