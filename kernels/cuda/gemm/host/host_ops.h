// The gemm group's kernels on the host harness (kernels/cuda/harness/host_launch.h):
// same Params, launch shape and kernel source as kernels/cuda/gemm/launchers.h, with
// host pointers. For parity tests, not for speed.
#pragma once

#include "absl/status/status.h"
#include "kernels/cuda/gemm/column_epilogue_params.h"
#include "kernels/cuda/gemm/dequant_bf16_params.h"
#include "kernels/cuda/gemm/gemm_operands.h"
#include "kernels/cuda/gemm/gemm_plan.h"
#include "kernels/cuda/gemm/qgemv_params.h"

namespace strata::cuda {

absl::Status HostRunDequantBf16(const DequantBf16Params& p);
absl::Status HostRunQGemv(const QGemvParams& p);
absl::Status HostRunColumnEpilogue(const ColumnEpilogueParams& p);
// cuBLASLt emulated from `plan` (host/cublaslt_emulation.cc): what
// CublasLtGemm::Run computes, on host pointers, column epilogue included.
absl::Status HostRunGemm(const CublasLtGemmPlan& plan, const GemmOperands& ops);

}  // namespace strata::cuda
