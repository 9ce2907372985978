#!/usr/bin/env bash
# unexpected_skips.sh LOG: prints each GoogleTest skip in LOG whose reason is not one
# this machine's hardware explains, and exits 1 if there is one (0 otherwise).
# On a GPU machine a device test must not skip for "no CUDA GPU present" (that is a
# broken driver or build); it may skip for what the machine lacks or has:
#   "needs N GPUs, found M"       multi-GPU NCCL tests on fewer GPUs
#   "FP8 needs sm_89+"            FP8 GEMMs on Ampere
#   "a CUDA GPU is present"       the no-GPU error-path tests
set -euo pipefail
log=${1:?usage: unexpected_skips.sh LOG}
awk '
  / Skipped$/ { want = 1; where = $0; next }
  want {
    want = 0
    if ($0 ~ /^needs [0-9]+ GPUs, found [0-9]+/ || $0 ~ /^FP8 needs sm_89\+/ || $0 ~ /^a CUDA GPU is present/) next
    print where ": " $0; bad = 1
  }
  END { exit bad }
' "$log"
