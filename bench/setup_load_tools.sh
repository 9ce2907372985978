#!/usr/bin/env bash
# Installs NVIDIA's LLM load tools (perf_analyzer and genai-perf) into a venv of their own,
# ~/.cache/strata/loadtools-venv, to benchmark a running Strata cluster over its KServe v2 /
# Triton gRPC API. Idempotent: a second run only checks. Not run by CI.
#
#   bench/setup_load_tools.sh                # then: source ~/.cache/strata/loadtools-venv/env.sh
#   TRITONCLIENT_VERSION=2.41.0 bench/setup_load_tools.sh   # perf_analyzer only (see below)
#
# What it installs and why:
# - tritonclient[all]==$TRITONCLIENT_VERSION (PyPI): its wheel carries the real perf_analyzer
#   binary (<venv>/bin/perf_analyzer); PyPI's `perf-analyzer` 0.1.0 is an empty placeholder.
#   Default 2.48.0: genai-perf (every PyPI release, 0.0.8 onwards) reads the fields
#   `service_kind`, `endpoint` and per-request `response_outputs` from perf_analyzer's
#   --profile-export-file, which perf_analyzer 2.41.0 does not write yet (genai-perf then
#   fails with KeyError: 'service_kind'). perf_analyzer 2.41.0 by itself works against Strata.
# - genai-perf==0.0.8 (PyPI): the oldest release on PyPI; later ones (0.0.16) require the
#   placeholder `perf-analyzer` package and drive newer perf_analyzer flags.
# - nvidia-cuda-runtime-cu12 (PyPI): perf_analyzer links libcudart.so.12 (needed to start,
#   not used without --shared-memory=cuda); env.sh puts it on LD_LIBRARY_PATH.
# - Debian libb64-0d: perf_analyzer 2.41.0 links libb64.so.0d (2.48.0 does not).
# - A local copy of SmolLM2's tokenizer (tokenizer.json rebuilt from the default model's GGUF by
#   tests/common/tokenizer/make_reference.py) for genai-perf's --tokenizer: genai-perf counts
#   tokens with a Hugging Face tokenizer and would otherwise try to download one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STRATA_LOADTOOLS_VENV:-$HOME/.cache/strata/loadtools-venv}"
TRITONCLIENT_VERSION="${TRITONCLIENT_VERSION:-2.48.0}"
GENAI_PERF_VERSION="${GENAI_PERF_VERSION:-0.0.8}"
MODEL="${STRATA_DEFAULT_MODEL:-$HOME/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
PY="${PYTHON:-python3}"

log() { echo "[setup_load_tools] $*" >&2; }

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)

have_pkg() {  # name version
  "$VENV/bin/python" - "$1" "$2" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    sys.exit(0 if version(sys.argv[1]) == sys.argv[2] else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
}

if have_pkg tritonclient "$TRITONCLIENT_VERSION" && have_pkg genai-perf "$GENAI_PERF_VERSION" &&
   "$VENV/bin/python" -c "import gguf, jinja2, tokenizers, nvidia.cuda_runtime" 2>/dev/null; then
  log "tritonclient $TRITONCLIENT_VERSION and genai-perf $GENAI_PERF_VERSION already installed"
else
  log "installing tritonclient[all]==$TRITONCLIENT_VERSION genai-perf==$GENAI_PERF_VERSION"
  # One resolve, so genai-perf's unpinned `tritonclient` keeps the pinned one.
  "${PIP[@]}" "tritonclient[all]==$TRITONCLIENT_VERSION" "genai-perf==$GENAI_PERF_VERSION" \
      nvidia-cuda-runtime-cu12 gguf jinja2 tokenizers
fi

CUDART_DIR="$("$VENV/bin/python" -c \
  'import nvidia.cuda_runtime, os; print(os.path.join(list(nvidia.cuda_runtime.__path__)[0], "lib"))')"

# Shared libraries perf_analyzer needs from Debian.
missing="$(LD_LIBRARY_PATH="$CUDART_DIR" ldd "$VENV/bin/perf_analyzer" | awk '/not found/ {print $1}')"
if [[ -n "$missing" ]]; then
  pkgs=()
  for lib in $missing; do
    case "$lib" in
      libb64.so.0d) pkgs+=(libb64-0d) ;;
      *) log "perf_analyzer needs $lib, which this script does not know how to install"; exit 1 ;;
    esac
  done
  SUDO=""
  [[ "$(id -u)" == 0 ]] || SUDO="sudo"
  log "installing Debian packages: ${pkgs[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${pkgs[@]}"
fi

# SmolLM2's tokenizer for genai-perf --tokenizer.
TOK="$VENV/share/smollm2-tokenizer"
if [[ ! -f "$TOK/tokenizer.json" ]]; then
  if [[ ! -f "$MODEL" ]]; then
    log "default model not found at $MODEL (scripts/setup.sh downloads it); skipping the tokenizer"
  else
    log "building $TOK from $MODEL"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$VENV/bin/python" "$ROOT/tests/common/tokenizer/make_reference.py" "$tmp" "$MODEL" >/dev/null
    mkdir -p "$TOK"
    cp "$tmp/smollm/tokenizer.json" "$TOK/"
    "$VENV/bin/python" - "$tmp/smollm/tokenizer_config.json" "$TOK/tokenizer_config.json" <<'EOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
json.dump(cfg, open(sys.argv[2], "w"))
EOF
  fi
fi

cat >"$VENV/env.sh" <<EOF
# source this before running perf_analyzer / genai-perf
export PATH="$VENV/bin:\$PATH"
export LD_LIBRARY_PATH="$CUDART_DIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export STRATA_TOKENIZER_DIR="$TOK"
EOF

# Smoke checks: both tools start.
. "$VENV/env.sh"
pa_help="$(perf_analyzer --help 2>&1 || true)"  # --help exits non-zero
grep -q -- "--concurrency-range" <<<"$pa_help" || { log "perf_analyzer does not start: $pa_help"; exit 1; }
genai-perf --version >/dev/null
log "ready: source $VENV/env.sh; perf_analyzer (tritonclient $TRITONCLIENT_VERSION), $(genai-perf --version 2>&1 | tail -1)"
