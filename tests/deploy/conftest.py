import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--strata-bin-dir", default=os.environ.get("STRATA_BIN_DIR", ""),
                     help="directory with strata-coordinator and strata-worker")
    parser.addoption("--strata-model", default=os.environ.get(
        "STRATA_DEFAULT_MODEL", os.path.expanduser("~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf")))


@pytest.fixture(scope="session")
def bin_dir(request):
    d = request.config.getoption("--strata-bin-dir")
    assert d and os.path.isfile(os.path.join(d, "strata-coordinator")), \
        "pass --strata-bin-dir (the build's bin/ with strata-coordinator and strata-worker)"
    return os.path.abspath(d)


@pytest.fixture(scope="session")
def model(request):
    m = request.config.getoption("--strata-model")
    assert os.path.isfile(m), f"default model {m} missing: run scripts/install_deps.sh"
    return m
