#!/usr/bin/env bash
# Second README command: build everything and run the whole test suite.
# Exits non-zero when any test fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/install_deps.sh
# ccache keys on paths relative to the checkout, so a fresh clone in another
# folder (CI) reuses what an earlier build of the same sources compiled.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_BUILD_TESTS=ON -DSTRATA_BUILD_BENCH=ON > /dev/null
ninja -C build
ctest --test-dir build --output-on-failure --no-tests=error --timeout 900 -j "${STRATA_TEST_JOBS:-2}"
