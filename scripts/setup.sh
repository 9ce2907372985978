#!/usr/bin/env bash
# First README command: install what is needed, build, and run the main job
# on the default model (a streamed chat completion).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/install_deps.sh
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
ninja -C build strata
build/bin/strata generate --model default --chat --temperature 0 --max-tokens 96 \
  --prompt "${1:-Explain in two sentences what a KV cache is in LLM inference.}"
