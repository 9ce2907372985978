#include "kernels/cuda/gemm/gemm_plan.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace strata::cuda {
namespace {

bool IsInputDtype(GemmDtype t) {
  return t == GemmDtype::kBF16 || t == GemmDtype::kF16 || t == GemmDtype::kFp8E4M3;
}

// Resolves a row stride in bytes (0 = packed) and checks it against the row length.
absl::StatusOr<int64_t> ResolveStride(const char* field, int64_t stride, int64_t row_elems,
                                      GemmDtype t) {
  const int64_t elem = GemmDtypeBytes(t);
  const int64_t packed = row_elems * elem;
  if (stride == 0) stride = packed;
  if (stride < packed) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " = ", stride, " bytes is less than a row (", packed, " bytes)"));
  }
  if (stride % elem != 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " = ", stride,
                                                   " bytes is not a multiple of the ",
                                                   GemmDtypeName(t), " element size (", elem, ")"));
  }
  return stride;
}

}  // namespace

const char* GemmDtypeName(GemmDtype t) {
  switch (t) {
    case GemmDtype::kF32: return "F32";
    case GemmDtype::kF16: return "F16";
    case GemmDtype::kBF16: return "BF16";
    case GemmDtype::kFp8E4M3: return "FP8_E4M3";
  }
  return "?";
}

int64_t GemmDtypeBytes(GemmDtype t) {
  switch (t) {
    case GemmDtype::kF32: return 4;
    case GemmDtype::kF16:
    case GemmDtype::kBF16: return 2;
    case GemmDtype::kFp8E4M3: return 1;
  }
  return 0;
}

absl::StatusOr<CublasLtGemmPlan> PlanGemm(const GemmRequest& req) {
  const GemmShape& s = req.shape;
  if (s.m < 0) return absl::InvalidArgumentError(absl::StrCat("shape.m = ", s.m, " < 0"));
  if (s.n <= 0) return absl::InvalidArgumentError(absl::StrCat("shape.n = ", s.n, " must be > 0"));
  if (s.k <= 0) return absl::InvalidArgumentError(absl::StrCat("shape.k = ", s.k, " must be > 0"));
  if (!IsInputDtype(req.w_dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("w_dtype ", GemmDtypeName(req.w_dtype), " is not BF16, F16 or FP8_E4M3"));
  }
  if (!IsInputDtype(req.x_dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("x_dtype ", GemmDtypeName(req.x_dtype), " is not BF16, F16 or FP8_E4M3"));
  }
  if (req.y_dtype != GemmDtype::kF32 && req.y_dtype != GemmDtype::kBF16) {
    return absl::InvalidArgumentError(
        absl::StrCat("y_dtype ", GemmDtypeName(req.y_dtype), " is not F32 or BF16"));
  }
  const bool fp8 = req.w_dtype == GemmDtype::kFp8E4M3 || req.x_dtype == GemmDtype::kFp8E4M3;
  if (fp8) {
    if (req.w_dtype != req.x_dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "FP8 GEMM needs W and X both in FP8_E4M3 (quantise X first); got w_dtype ",
          GemmDtypeName(req.w_dtype), ", x_dtype ", GemmDtypeName(req.x_dtype)));
    }
    if (req.scale_mode == Fp8ScaleMode::kNone) {
      return absl::InvalidArgumentError("scale_mode: FP8 GEMM needs kPerTensor or kPerChannel scales");
    }
    if (req.sm < 89) {
      return absl::FailedPreconditionError(absl::StrCat(
          "FP8 GEMM refused on sm_", req.sm, ": FP8 tensor cores need sm_89+ (Ada, Hopper)"));
    }
    if (s.k % 16 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape.k = ", s.k, " is not a multiple of 16 (FP8 GEMM requirement)"));
    }
  } else {
    if (req.w_dtype != req.x_dtype) {
      return absl::InvalidArgumentError(absl::StrCat("W and X must share one 16-bit dtype; got w_dtype ",
                                                     GemmDtypeName(req.w_dtype), ", x_dtype ",
                                                     GemmDtypeName(req.x_dtype)));
    }
    if (req.scale_mode != Fp8ScaleMode::kNone) {
      return absl::InvalidArgumentError("scale_mode: scales apply to FP8 GEMMs only");
    }
    if (req.w_dtype == GemmDtype::kF16 && req.y_dtype == GemmDtype::kBF16) {
      return absl::InvalidArgumentError(
          "y_dtype BF16 with F16 inputs: cuBLASLt gives F16 inputs an F16 or F32 output only");
    }
  }
  if (req.max_workspace_bytes < 0) {
    return absl::InvalidArgumentError("max_workspace_bytes < 0");
  }

  CublasLtGemmPlan p;
  p.request = req;
  absl::StatusOr<int64_t> ws = ResolveStride("w_row_stride", req.w_row_stride, s.k, req.w_dtype);
  if (!ws.ok()) return ws.status();
  absl::StatusOr<int64_t> xs = ResolveStride("x_row_stride", req.x_row_stride, s.k, req.x_dtype);
  if (!xs.ok()) return xs.status();
  absl::StatusOr<int64_t> ys = ResolveStride("y_row_stride", req.y_row_stride, s.n, req.y_dtype);
  if (!ys.ok()) return ys.status();
  p.request.w_row_stride = *ws;
  p.request.x_row_stride = *xs;
  p.request.y_row_stride = *ys;
  if (fp8) {
    // cuBLASLt's FP8 kernels load 16-byte vectors: leading dimensions in bytes must
    // be multiples of 16 (pointers too: checked at Run).
    const struct {
      const char* field;
      int64_t bytes;
    } lds[] = {{"w_row_stride", *ws}, {"x_row_stride", *xs}, {"y_row_stride", *ys}};
    for (const auto& ld : lds) {
      if (ld.bytes % 16 != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            ld.field, " = ", ld.bytes, " bytes is not a multiple of 16 (FP8 GEMM requirement)"));
      }
    }
  }

  p.transa = kCublasOpT;
  p.transb = kCublasOpN;
  p.m = s.n;
  p.n = s.m;
  p.k = s.k;
  p.a = {req.w_dtype, s.k, s.n, *ws / GemmDtypeBytes(req.w_dtype)};
  p.b = {req.x_dtype, s.k, s.m, *xs / GemmDtypeBytes(req.x_dtype)};
  p.d = {req.y_dtype, s.n, s.m, *ys / GemmDtypeBytes(req.y_dtype)};
  p.c = p.d;
  p.compute_type = kCublasCompute32F;
  p.scale_type = GemmDtype::kF32;
  p.alpha = 1.0f;
  p.beta = 0.0f;

  const bool per_channel = fp8 && req.scale_mode == Fp8ScaleMode::kPerChannel;
  p.set_a_scale = fp8 && req.scale_mode == Fp8ScaleMode::kPerTensor;
  p.set_b_scale = fp8;
  p.fast_accum = fp8 && req.fp8_fast_accum ? 1 : 0;
  const bool fused_bias = req.has_bias && !fp8 && req.y_dtype == GemmDtype::kF32;
  p.epilogue = fused_bias ? kCublasLtEpilogueBias : kCublasLtEpilogueDefault;
  p.epilogue_scale = per_channel;
  p.epilogue_bias = req.has_bias && !fused_bias;
  p.epilogue_kernel = p.epilogue_scale || p.epilogue_bias;
  p.pointer_alignment = 16;
  p.workspace_bytes = req.max_workspace_bytes;
  p.key = absl::StrCat(static_cast<int>(p.a.dtype), ":", static_cast<int>(p.d.dtype), ":", p.m, "x",
                       p.n, "x", p.k, ":", p.a.ld, ",", p.b.ld, ",", p.d.ld, ":e", p.epilogue, ":s",
                       p.set_a_scale, p.set_b_scale, ":f", p.fast_accum, ":w", p.workspace_bytes);
  return p;
}

absl::Status CheckGemmOperands(const CublasLtGemmPlan& plan, const GemmOperands& ops) {
  const GemmRequest& req = plan.request;
  if (!ops.w || !ops.x || !ops.y) return absl::InvalidArgumentError("GEMM: null w, x or y");
  const auto aligned = [&](const void* p) { return reinterpret_cast<uintptr_t>(p) % plan.pointer_alignment == 0; };
  if (!aligned(ops.w) || !aligned(ops.x) || !aligned(ops.y)) {
    return absl::InvalidArgumentError(
        absl::StrCat("GEMM: w, x and y must be ", plan.pointer_alignment, "-byte aligned"));
  }
  if (req.has_bias && !ops.bias) return absl::InvalidArgumentError("GEMM: plan has a bias, bias is null");
  if ((plan.set_a_scale || plan.epilogue_scale) && !ops.w_scale) {
    return absl::InvalidArgumentError("GEMM: FP8 plan needs w_scale");
  }
  if (plan.set_b_scale && !ops.x_scale) return absl::InvalidArgumentError("GEMM: FP8 plan needs x_scale");
  return absl::OkStatus();
}

ColumnEpilogueParams ColumnEpilogueFor(const CublasLtGemmPlan& plan, void* y, const float* bias,
                                       const float* w_scale) {
  ColumnEpilogueParams e;
  e.y = y;
  e.dtype = plan.request.y_dtype == GemmDtype::kBF16 ? EpilogueDtype::kBF16 : EpilogueDtype::kF32;
  e.rows = plan.request.shape.m;
  e.cols = plan.request.shape.n;
  e.y_stride = plan.d.ld;
  e.scale = plan.epilogue_scale ? w_scale : nullptr;
  e.bias = plan.epilogue_bias ? bias : nullptr;
  return e;
}

}  // namespace strata::cuda
