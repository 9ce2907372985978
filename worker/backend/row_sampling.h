// Sampling a row of logits where they were computed (Backend::SampleLogits):
// the CPU Sampler's chain without penalties (worker/sampler.h,
// kernels/cuda/sampling/sample_params.h). The knobs and u come from the
// sequence's Sampler (Sampler::NextBackendDraw), so a seed gives the same
// token stream on either side.
#pragma once

#include <cstdint>

namespace strata {

struct RowSamplingKnobs {
  float temperature = 1.0f;  // 0 = greedy
  int32_t top_k = 0;         // 0 = off
  float top_p = 1.0f;
  float min_p = 0.0f;
  double u = 0.0;            // uniform in [0, 1), unread when greedy
};

struct RowSample {
  int32_t token = -1;  // -1: every logit of the row was NaN or -inf
  float logprob = 0.0f;
};

}  // namespace strata
