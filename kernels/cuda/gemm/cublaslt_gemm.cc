#include "kernels/cuda/gemm/cublaslt_gemm.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/gemm/launchers.h"

namespace strata::cuda {

// gemm_plan.h mirrors these values so it needs no CUDA header.
static_assert(static_cast<int>(GemmDtype::kF32) == CUDA_R_32F);
static_assert(static_cast<int>(GemmDtype::kF16) == CUDA_R_16F);
static_assert(static_cast<int>(GemmDtype::kBF16) == CUDA_R_16BF);
static_assert(static_cast<int>(GemmDtype::kFp8E4M3) == CUDA_R_8F_E4M3);
static_assert(kCublasOpN == CUBLAS_OP_N && kCublasOpT == CUBLAS_OP_T);
static_assert(kCublasCompute32F == CUBLAS_COMPUTE_32F);
static_assert(kCublasLtEpilogueDefault == CUBLASLT_EPILOGUE_DEFAULT);
static_assert(kCublasLtEpilogueBias == CUBLASLT_EPILOGUE_BIAS);

namespace {

absl::Status LtStatus(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  const std::string msg = absl::StrCat(what, ": ", cublasLtGetStatusName(s), " (",
                                       cublasLtGetStatusString(s), ")");
  if (s == CUBLAS_STATUS_INVALID_VALUE) return absl::InvalidArgumentError(msg);
  if (s == CUBLAS_STATUS_NOT_SUPPORTED) return absl::UnimplementedError(msg);
  if (s == CUBLAS_STATUS_ALLOC_FAILED) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

#define STRATA_LT_RETURN(expr, what)                         \
  do {                                                       \
    absl::Status _st = LtStatus((expr), what);               \
    if (!_st.ok()) return _st;                               \
  } while (0)

// RAII owners of the per-Run descriptors.
struct Desc {
  cublasLtMatmulDesc_t d = nullptr;
  ~Desc() { if (d) cublasLtMatmulDescDestroy(d); }
};
struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  ~Layout() { if (l) cublasLtMatrixLayoutDestroy(l); }
};
struct Pref {
  cublasLtMatmulPreference_t p = nullptr;
  ~Pref() { if (p) cublasLtMatmulPreferenceDestroy(p); }
};

template <typename T>
cublasStatus_t SetDesc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const T& v) {
  return cublasLtMatmulDescSetAttribute(d, a, &v, sizeof(v));
}

cublasStatus_t MakeLayout(const MatrixLayoutPlan& m, Layout* out) {
  return cublasLtMatrixLayoutCreate(&out->l, static_cast<cudaDataType_t>(m.dtype),
                                    static_cast<uint64_t>(m.rows), static_cast<uint64_t>(m.cols), m.ld);
}


}  // namespace

absl::StatusOr<std::unique_ptr<CublasLtGemm>> CublasLtGemm::Create(int device, size_t workspace_bytes) {
  std::unique_ptr<CublasLtGemm> g(new CublasLtGemm());
  g->device_ = device;
  absl::Status s = CudaStatus(cudaSetDevice(device), "cudaSetDevice");
  if (!s.ok()) return s;
  int major = 0, minor = 0;
  s = CudaStatus(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
                 "cudaDeviceGetAttribute");
  if (!s.ok()) return s;
  s = CudaStatus(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device),
                 "cudaDeviceGetAttribute");
  if (!s.ok()) return s;
  g->sm_ = major * 10 + minor;
  STRATA_LT_RETURN(cublasLtCreate(&g->handle_), "cublasLtCreate");
  if (workspace_bytes > 0) {
    s = CudaStatus(cudaMalloc(&g->workspace_, workspace_bytes), "cudaMalloc(cuBLASLt workspace)");
    if (!s.ok()) return s;
    g->workspace_bytes_ = workspace_bytes;
  }
  return g;
}

CublasLtGemm::~CublasLtGemm() {
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

absl::Status CublasLtGemm::Run(const CublasLtGemmPlan& plan, const GemmOperands& ops,
                               cudaStream_t stream) {
  const GemmRequest& req = plan.request;
  if (req.sm != sm_) {
    return absl::FailedPreconditionError(absl::StrCat("GEMM plan made for sm_", req.sm,
                                                      ", device ", device_, " is sm_", sm_));
  }
  if (absl::Status ok = CheckGemmOperands(plan, ops); !ok.ok()) return ok;
  if (plan.n == 0) return absl::OkStatus();  // no tokens

  Desc desc;
  STRATA_LT_RETURN(cublasLtMatmulDescCreate(&desc.d, static_cast<cublasComputeType_t>(plan.compute_type),
                                            static_cast<cudaDataType_t>(plan.scale_type)),
                   "cublasLtMatmulDescCreate");
  const auto transa = static_cast<cublasOperation_t>(plan.transa);
  const auto transb = static_cast<cublasOperation_t>(plan.transb);
  STRATA_LT_RETURN(SetDesc(desc.d, CUBLASLT_MATMUL_DESC_TRANSA, transa), "set TRANSA");
  STRATA_LT_RETURN(SetDesc(desc.d, CUBLASLT_MATMUL_DESC_TRANSB, transb), "set TRANSB");
  const auto epilogue = static_cast<cublasLtEpilogue_t>(plan.epilogue);
  STRATA_LT_RETURN(SetDesc(desc.d, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue), "set EPILOGUE");
  if (plan.epilogue == kCublasLtEpilogueBias) {
    const void* bias = ops.bias;
    STRATA_LT_RETURN(SetDesc(desc.d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias), "set BIAS_POINTER");
  }
  if (plan.set_a_scale) {
    const void* a_scale = ops.w_scale;
    STRATA_LT_RETURN(SetDesc(desc.d, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, a_scale), "set A_SCALE_POINTER");
  }
  if (plan.set_b_scale) {
    const void* b_scale = ops.x_scale;
    STRATA_LT_RETURN(SetDesc(desc.d, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, b_scale), "set B_SCALE_POINTER");
  }
  if (plan.fast_accum) {
    const int8_t fast = 1;
    STRATA_LT_RETURN(SetDesc(desc.d, CUBLASLT_MATMUL_DESC_FAST_ACCUM, fast), "set FAST_ACCUM");
  }
  Layout a, b, c, d;
  STRATA_LT_RETURN(MakeLayout(plan.a, &a), "layout A");
  STRATA_LT_RETURN(MakeLayout(plan.b, &b), "layout B");
  STRATA_LT_RETURN(MakeLayout(plan.c, &c), "layout C");
  STRATA_LT_RETURN(MakeLayout(plan.d, &d), "layout D");

  const uint64_t ws = std::min<uint64_t>(static_cast<uint64_t>(plan.workspace_bytes), workspace_bytes_);
  auto it = algos_.find(plan.key);
  if (it == algos_.end()) {
    Pref pref;
    STRATA_LT_RETURN(cublasLtMatmulPreferenceCreate(&pref.p), "cublasLtMatmulPreferenceCreate");
    STRATA_LT_RETURN(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &ws, sizeof(ws)),
                     "set MAX_WORKSPACE_BYTES");
    const uint32_t align = static_cast<uint32_t>(plan.pointer_alignment);
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
      STRATA_LT_RETURN(cublasLtMatmulPreferenceSetAttribute(pref.p, attr, &align, sizeof(align)),
                       "set MIN_ALIGNMENT");
    }
    cublasLtMatmulHeuristicResult_t result = {};
    int found = 0;
    STRATA_LT_RETURN(cublasLtMatmulAlgoGetHeuristic(handle_, desc.d, a.l, b.l, c.l, d.l, pref.p, 1, &result,
                                                    &found),
                     "cublasLtMatmulAlgoGetHeuristic");
    if (found == 0) {
      return absl::NotFoundError(absl::StrCat("cuBLASLt has no algorithm for GEMM ", plan.key));
    }
    it = algos_.emplace(plan.key, result.algo).first;
  }
  STRATA_LT_RETURN(cublasLtMatmul(handle_, desc.d, &plan.alpha, ops.w, a.l, ops.x, b.l, &plan.beta, ops.y,
                                  c.l, ops.y, d.l, &it->second, workspace_, ws, stream),
                   "cublasLtMatmul");
  if (plan.epilogue_kernel) {
    return CudaStatus(LaunchColumnEpilogue(ColumnEpilogueFor(plan, ops.y, ops.bias, ops.w_scale), stream),
                      "ColumnEpilogue");
  }
  return absl::OkStatus();
}

}  // namespace strata::cuda
