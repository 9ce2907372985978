// Parameters of the FP8 E4M3 quantisation of f32 activations [rows, cols]
// (row-major, contiguous) for an FP8 GEMM. Codes and scales are bit-exact with the
// CPU reference (kernels/cpu/kv_quant.h: QuantizeRowFp8, F32ToE4M3), with "a row"
// being the whole tensor for kPerTensor:
//
//   mode        scale                                   codes
//   kPerTensor  scales[0] = amax(tensor) / 448          E4M3(x / scales[0])
//   kPerRow     scales[r] = amax(row r) / 448           E4M3(x / scales[r])
//   kStatic     static_scale[0], given (not written)    E4M3(x / static_scale[0])
//
// E4M3 rounds to nearest even and saturates at +-448 (inf too). Dynamic scales:
// amax = 0 stores scale 0 and zero codes; a NaN or +-inf anywhere in the tensor
// (kPerTensor) or row (kPerRow) stores scale NaN and codes 0x7F (E4M3 NaN) for the
// non-finite elements, 0 for the others, so everything the GEMM computes from
// them is NaN rather than silently wrong. kStatic applies the formula as is
// (NaN -> 0x7F|sign, a zero scale gives +-448 or NaN codes).
//
// kPerTensor runs two kernels: an amax reduction into *amax_bits (the f32 bits of
// max |x|, by atomicMax on the bits: valid because |x| is non-negative, and a NaN's
// bits exceed inf's), then the encode. The launcher zeroes *amax_bits first
// (cudaMemsetAsync on the same stream), so the sequence is graph-capturable.
// scales[0] is a device f32 a GEMM can take as its scale pointer.
#pragma once

#include <cstdint>

namespace strata::cuda {

enum class Fp8QuantizeMode : int32_t { kPerTensor = 0, kPerRow = 1, kStatic = 2 };

struct Fp8QuantizeParams {
  const float* x = nullptr;             // [rows, cols]
  uint8_t* codes = nullptr;             // [rows, cols] E4M3 codes
  int64_t rows = 0;
  int64_t cols = 0;
  Fp8QuantizeMode mode = Fp8QuantizeMode::kPerTensor;
  float* scales = nullptr;              // kPerTensor: [1], kPerRow: [rows]; written
  const float* static_scale = nullptr;  // kStatic: [1]; read
  uint32_t* amax_bits = nullptr;        // kPerTensor: [1] workspace
};

}  // namespace strata::cuda
