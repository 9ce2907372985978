#!/usr/bin/env bash
# unexpected_skips_test.sh FILTER: the GPU script's skip filter on GoogleTest logs.
set -euo pipefail
filter=${1:?usage: unexpected_skips_test.sh path/to/unexpected_skips.sh}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/explained.log" <<'LOG'
Running main() from gtest_main.cc
/src/tests/parallel/nccl_communicator_test.cc:176: Skipped
a CUDA GPU is present
/src/tests/parallel/nccl_communicator_test.cc:586: Skipped
needs 2 GPUs, found 1
/src/tests/kernels/cuda/gemm/gemm_device_test.cc:170: Skipped
FP8 needs sm_89+, device is sm_80
[==========] 16 tests from 3 test suites ran. (0 ms total)
[  PASSED  ] 13 tests.
[  SKIPPED ] 3 tests.
LOG
cat > "$tmp/unexplained.log" <<'LOG'
/src/tests/parallel/nccl_communicator_test.cc:586: Skipped
needs 2 GPUs, found 1
/src/tests/parallel/nccl_communicator_test.cc:275: Skipped
no CUDA GPU present: cudaErrorInsufficientDriver: CUDA driver version is insufficient
[  SKIPPED ] 2 tests.
LOG
printf '[  PASSED  ] 9 tests.\n' > "$tmp/none.log"
"$filter" "$tmp/explained.log" || { echo "FAIL: hardware-explained skips were flagged"; exit 1; }
"$filter" "$tmp/none.log" || { echo "FAIL: a log without skips was flagged"; exit 1; }
if out=$("$filter" "$tmp/unexplained.log"); then echo "FAIL: a 'no CUDA GPU present' skip passed"; exit 1; fi
case "$out" in
  *"nccl_communicator_test.cc:275: Skipped: no CUDA GPU present"*) ;;
  *) echo "FAIL: the report does not name the skip: $out"; exit 1 ;;
esac
case "$out" in
  *"needs 2 GPUs"*) echo "FAIL: an explained skip was reported: $out"; exit 1 ;;
esac
echo "ok"
