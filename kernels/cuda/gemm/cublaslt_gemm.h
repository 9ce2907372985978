// Executes CublasLtGemmPlans (gemm_plan.h) with cuBLASLt on one device.
//
//   auto gemm = CublasLtGemm::Create(device, 32 << 20);          // once per stream
//   auto plan = PlanGemm(request);                               // once per shape
//   RETURN_IF_ERROR((*gemm)->Run(*plan, {w, x, y, bias, w_scale, x_scale}, stream));
//
// Run builds the matmul descriptor and layouts from the plan (cheap host calls),
// picks the algorithm with cublasLtMatmulAlgoGetHeuristic once per plan key (then
// cached), enqueues cublasLtMatmul on `stream`, and then the column epilogue kernel
// when the plan asks for it (FP8 per-channel scales, unfused bias).
//
// Threading contract: an instance owns one workspace, so its Runs must not overlap
// on different streams: use one CublasLtGemm per stream (and per thread; Run is not
// thread-safe). Errors name the cuBLAS status (cublasLtGetStatusName).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/gemm/gemm_operands.h"
#include "kernels/cuda/gemm/gemm_plan.h"

namespace strata::cuda {

class CublasLtGemm {
 public:
  // Makes `device` current, creates the cuBLASLt handle and a workspace of
  // workspace_bytes on it.
  static absl::StatusOr<std::unique_ptr<CublasLtGemm>> Create(int device, size_t workspace_bytes);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // FAILED_PRECONDITION when the plan was made for another sm than this device's;
  // INVALID_ARGUMENT for null or misaligned operands; NOT_FOUND when cuBLASLt has no
  // algorithm for the problem; INTERNAL naming the cuBLAS status otherwise.
  absl::Status Run(const CublasLtGemmPlan& plan, const GemmOperands& ops, cudaStream_t stream);

  int device() const { return device_; }
  int sm() const { return sm_; }  // major * 10 + minor

 private:
  CublasLtGemm() = default;

  int device_ = 0;
  int sm_ = 0;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::unordered_map<std::string, cublasLtMatmulAlgo_t> algos_;  // per plan key
};

}  // namespace strata::cuda
