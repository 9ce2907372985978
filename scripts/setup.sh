#!/usr/bin/env bash
# First README command: install what is needed, build, start the cluster service
# (a coordinator and one worker on this machine, `strata cluster up`), answer one
# streamed chat request through it over gRPC, and stop the cluster again.
# `scripts/setup.sh --keep` leaves the cluster running (Ctrl-C stops it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
KEEP=0
if [ "${1:-}" = "--keep" ]; then KEEP=1; shift; fi
PROMPT="${1:-Explain in two sentences what a KV cache is in LLM inference.}"
scripts/install_deps.sh
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
ninja -C build strata strata-coordinator strata-worker

PORTS="$(mktemp -u /tmp/strata-setup-XXXXXX.ports)"
build/bin/strata cluster up --model default --port 8001 --worker-port 8003 --metrics-port 8002 \
  --port-file "$PORTS" &
CLUSTER=$!
cleanup() { kill -INT "$CLUSTER" 2>/dev/null || true; wait "$CLUSTER" 2>/dev/null || true; rm -f "$PORTS"; }
trap cleanup EXIT
for _ in $(seq 1 600); do
  [ -f "$PORTS" ] && break
  kill -0 "$CLUSTER" 2>/dev/null || { echo "setup: the cluster failed to start" >&2; exit 1; }
  sleep 0.1
done
[ -f "$PORTS" ] || { echo "setup: the cluster did not become ready" >&2; exit 1; }
build/bin/strata client --address 127.0.0.1:8001 --chat "$PROMPT" --temperature 0 --max-tokens 96
if [ "$KEEP" = 1 ]; then
  echo "cluster running: KServe v2 / strata.v1 on 127.0.0.1:8001, metrics on http://127.0.0.1:8002/metrics (Ctrl-C stops)" >&2
  wait "$CLUSTER"
fi
