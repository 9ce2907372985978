// Device sampling (sample_params.h): one CTA per row, no sort. Per row:
//
//   1 pass         count of candidates (not NaN/-inf) and of +inf, best rank key
//   greedy         the best rank key's id; logprob = -log(sum exp(v - max))   (1 pass)
//   top_k          RadixFind with unit weights: the k-th rank key           (<= 8 passes)
//   top_p          sum of exp(v - max) over the top_k survivors (1 pass), then
//                  RadixFind to the first rank where the mass >= top_p * sum (<= 8 passes)
//   min_p          a threshold on the value: v >= max + log(min_p)           (no pass)
//   draw           total = sum exp((v - max) / T) over the survivors (1 pass), then
//                  RadixFind to the first token (rank order, or id order when neither
//                  top_k cut nor top_p ran, as the CPU walks them) whose cumulative
//                  weight > u * total, and one pass to read its key  (<= 9 passes)
//
// Every filter keeps a prefix of the rank order, so the survivors are always
// "value > -inf and rank key >= lo" for one 64-bit lo (block_radix.cuh). Sums are
// double like the CPU's, but in a different order (and shared-memory atomics make
// the order vary between runs on a GPU): a draw whose target lies within ~1e-12
// relative of a CDF boundary may pick the neighbouring token.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/cuda/harness/cuda_compat.h"
#include "kernels/cuda/kernel_shape.h"
#include "kernels/cuda/sampling/block_radix.cuh"
#include "kernels/cuda/sampling/sample_params.h"

namespace strata::cuda {

inline constexpr int kSampleThreadsSmallVocab = 256;
inline constexpr int kSampleThreadsLargeVocab = 1024;
inline constexpr int32_t kSampleLargeVocab = 8192;

inline const char* CheckSample(const SampleParams& p) {
  if (p.rows < 0) return "Sample: negative rows";
  if (p.rows > 0x7fffffff) return "Sample: more than 2^31-1 rows";
  if (p.rows == 0) return nullptr;
  if (p.vocab <= 0) return "Sample: vocab must be positive";
  if (p.logits_stride < p.vocab) return "Sample: logits_stride < vocab";
  if (!p.logits || !p.u || !p.tokens || !p.logprobs) return "Sample: null logits/u/tokens/logprobs";
  return nullptr;
}

inline KernelShape SampleShape(const SampleParams& p) {
  const int threads = p.vocab >= kSampleLargeVocab ? kSampleThreadsLargeVocab : kSampleThreadsSmallVocab;
  return KernelShape{dim3(static_cast<unsigned>(p.rows)), dim3(threads), 0};
}

__global__ void __launch_bounds__(kSampleThreadsLargeVocab) SampleKernel(SampleParams p) {
  const int64_t r = blockIdx.x;
  const float* x = p.logits + r * p.logits_stride;
  const float inf = KvBitsToF32(0x7F800000u);

  // Candidates (low 32 bits) and +inf logits (high 32 bits); the best rank key.
  uint64_t counts = 0;
  uint64_t best = 0;
  for (int32_t i = threadIdx.x; i < p.vocab; i += blockDim.x) {
    const float l = x[i];
    if (l != l || l == -inf) continue;
    counts += 1u + (l == inf ? (uint64_t{1} << 32) : 0u);
    const uint64_t key = RankKey(l, i);
    best = key > best ? key : best;
  }
  counts = BlockReduceAll(counts, SumOp{}, uint64_t{0});
  best = BlockReduceAll(best, MaxOp{}, uint64_t{0});
  const uint32_t n_pos_inf = static_cast<uint32_t>(counts >> 32);
  const uint32_t n = n_pos_inf > 0 ? n_pos_inf : static_cast<uint32_t>(counts);
  if (n == 0) {  // all NaN/-inf: nothing to draw (uniform over the block)
    if (threadIdx.x == 0) {
      p.tokens[r] = -1;
      p.logprobs[r] = KvBitsToF32(0x7FC00000u);
    }
    return;
  }
  const SampleRow row{x, p.vocab, n_pos_inf > 0};
  const float max_value = n_pos_inf > 0 ? 0.0f : FromOrderedBits(static_cast<uint32_t>(best >> 32));
  const float temperature = p.temperature ? p.temperature[r] : 1.0f;
  const SampleWeight t1{SampleWeight::kSoftmaxT1, max_value, 1.0f};

  if (temperature == 0.0f) {  // greedy: the best rank key is the argmax, lowest id on ties
    const double sum = SumWeights(row, 0, t1);
    if (threadIdx.x == 0) {
      p.tokens[r] = IdOfKey(best);
      p.logprobs[r] = static_cast<float>(-log(sum));
    }
    return;
  }

  const int32_t top_k = p.top_k ? p.top_k[r] : 0;
  const float top_p = p.top_p ? p.top_p[r] : 1.0f;
  const float min_p = p.min_p ? p.min_p[r] : 0.0f;
  uint64_t lo = 0;        // survivors: value > -inf and rank key >= lo
  bool id_order = true;   // the CPU walks ids ascending unless top_k cut or top_p ran
  if (top_k > 0 && static_cast<uint32_t>(top_k) < n) {
    lo = RadixFind(row, 0, false, SampleWeight{SampleWeight::kCount, 0.0f, 1.0f},
                   static_cast<double>(top_k), /*inclusive=*/true);
    id_order = false;
  }
  // top_p normalises over the top_k survivors, before min_p shrinks them.
  const double top_k_mass = top_p < 1.0f ? SumWeights(row, lo, t1) : 0.0;
  if (min_p > 0.0f) {
    const uint64_t min_lo = static_cast<uint64_t>(OrderedBits(max_value + logf(min_p))) << 32;
    lo = min_lo > lo ? min_lo : lo;
  }
  if (top_p < 1.0f) {
    const uint64_t p_lo = RadixFind(row, lo, false, t1,
                                    static_cast<double>(top_p) * top_k_mass, /*inclusive=*/true);
    lo = p_lo > lo ? p_lo : lo;
    id_order = false;
  }

  const SampleWeight w{SampleWeight::kSoftmaxT, max_value, temperature};
  const double total = SumWeights(row, lo, w);
  const double target = p.u[r] * total;
  const uint64_t at = RadixFind(row, lo, id_order, w, target, /*inclusive=*/false);
  const uint64_t key = MinKeyAtLeast(row, lo, id_order, at);
  if (threadIdx.x == 0) {
    const int32_t id = IdOfKey(key);
    p.tokens[r] = id;
    p.logprobs[r] = static_cast<float>(log(w(row.Value(id))) - log(total));
  }
}

}  // namespace strata::cuda
