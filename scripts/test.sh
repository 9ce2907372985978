#!/usr/bin/env bash
# Second README command: build everything and run the whole test suite.
# Exits non-zero when any test fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/install_deps.sh
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_BUILD_TESTS=ON -DSTRATA_BUILD_BENCH=ON > /dev/null
ninja -C build
ctest --test-dir build --output-on-failure --no-tests=error --timeout 900 -j "${STRATA_TEST_JOBS:-2}"
