// Parameters of the row gather: dst[r, :] = src[rows[r], :] (cols f32 each) for
// r < n_rows, CpuBackend::GatherRows (worker/backend/cpu_backend.cc) on the device
// (there the row indices are a host span; here they are in device memory).
//
// Row indices live in device memory, so the kernel cannot return a status per row:
// an index outside [0, src_rows) zero-fills its dst row and adds 1 to *bad_rows (when
// not null); treat *bad_rows != 0 as an internal error. Only the first cols floats
// of each dst row are written.
#pragma once

#include <cstdint>

namespace strata::cuda {

struct GatherRowsParams {
  const float* src = nullptr;     // [src_rows, src_stride]; must not overlap dst
  const int32_t* rows = nullptr;  // [n_rows] indices into src, device memory
  float* dst = nullptr;           // [n_rows, dst_stride]
  int64_t n_rows = 0;
  int64_t cols = 0;
  int64_t src_rows = 0;
  int64_t src_stride = 0;   // floats between src rows; 0 means cols
  int64_t dst_stride = 0;   // floats between dst rows; 0 means cols
  int* bad_rows = nullptr;  // optional counter of indices outside [0, src_rows)
};

}  // namespace strata::cuda
