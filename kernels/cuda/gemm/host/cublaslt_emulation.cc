// cuBLASLt emulated on the host from a CublasLtGemmPlan's column-major fields, so
// the code that plans GEMMs (gemm_plan.h) and the code that calls them
// (worker/backend/cuda) run in CI without a GPU. It reads the plan literally, as
// cuBLASLt would:
//
//   D[i + j * ldd] = alpha * a_scale * b_scale * sum_kk op(A)[i, kk] * B[kk + j * ldb]
//                    (+ bias[i] for the BIAS epilogue)
//   op(A)[i, kk] = A[kk + i * lda]   (transa = T, the only layout PlanGemm makes)
//
// then the column epilogue kernel on the harness when plan.epilogue_kernel. Inputs
// are widened exactly to f32 and the sum is kept in double: the device's f32
// tensor-core accumulation differs from it by rounding only.
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/float16.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cuda/gemm/host/host_ops.h"

namespace strata::cuda {
namespace {

float Load(GemmDtype t, const uint8_t* base, int64_t index) {
  switch (t) {
    case GemmDtype::kF32: {
      float v;
      std::memcpy(&v, base + index * 4, 4);
      return v;
    }
    case GemmDtype::kF16: {
      uint16_t h;
      std::memcpy(&h, base + index * 2, 2);
      return F16ToF32(h);
    }
    case GemmDtype::kBF16: {
      uint16_t b;
      std::memcpy(&b, base + index * 2, 2);
      return BF16ToF32(b);
    }
    case GemmDtype::kFp8E4M3:
      return E4M3ToF32(base[index]);
  }
  return 0.0f;
}

void Store(GemmDtype t, uint8_t* base, int64_t index, float v) {
  switch (t) {
    case GemmDtype::kF32:
      std::memcpy(base + index * 4, &v, 4);
      return;
    case GemmDtype::kF16: {
      const uint16_t h = F32ToF16(v);
      std::memcpy(base + index * 2, &h, 2);
      return;
    }
    case GemmDtype::kBF16: {
      const uint16_t b = F32ToBF16(v);
      std::memcpy(base + index * 2, &b, 2);
      return;
    }
    case GemmDtype::kFp8E4M3:
      base[index] = F32ToE4M3(v);
      return;
  }
}

}  // namespace

absl::Status HostRunGemm(const CublasLtGemmPlan& plan, const GemmOperands& ops) {
  if (absl::Status ok = CheckGemmOperands(plan, ops); !ok.ok()) return ok;
  if (plan.transa != kCublasOpT || plan.transb != kCublasOpN) {
    return absl::UnimplementedError(
        absl::StrCat("HostRunGemm: only the TN layout PlanGemm makes (transa ", plan.transa, ", transb ",
                     plan.transb, ")"));
  }
  if (plan.n == 0) return absl::OkStatus();
  const auto* a = static_cast<const uint8_t*>(ops.w);
  const auto* b = static_cast<const uint8_t*>(ops.x);
  auto* d = static_cast<uint8_t*>(ops.y);
  const double scale = double{plan.alpha} * (plan.set_a_scale ? *ops.w_scale : 1.0f) *
                       (plan.set_b_scale ? *ops.x_scale : 1.0f);
  // B's columns (the tokens) widened once; A one column of op(A) at a time.
  std::vector<float> bf(static_cast<size_t>(plan.n * plan.k));
  for (int64_t j = 0; j < plan.n; ++j) {
    for (int64_t kk = 0; kk < plan.k; ++kk) bf[j * plan.k + kk] = Load(plan.b.dtype, b, kk + j * plan.b.ld);
  }
  std::vector<float> af(static_cast<size_t>(plan.k));
  for (int64_t i = 0; i < plan.m; ++i) {
    for (int64_t kk = 0; kk < plan.k; ++kk) af[kk] = Load(plan.a.dtype, a, kk + i * plan.a.ld);
    for (int64_t j = 0; j < plan.n; ++j) {
      const float* col = bf.data() + j * plan.k;
      double acc = 0.0;
      for (int64_t kk = 0; kk < plan.k; ++kk) acc += double{af[kk]} * col[kk];
      double v = scale * acc;
      if (plan.epilogue == kCublasLtEpilogueBias) v += ops.bias[i];
      Store(plan.d.dtype, d, i + j * plan.d.ld, static_cast<float>(v));
    }
  }
  if (plan.epilogue_kernel) return HostRunColumnEpilogue(ColumnEpilogueFor(plan, ops.y, ops.bias, ops.w_scale));
  return absl::OkStatus();
}

}  // namespace strata::cuda
