// Which layers each pipeline stage runs: contiguous ranges covering all layers
// in order. Stage 0 also embeds the tokens; the last stage also applies the
// final norm and the LM head (and its tensor-parallel rank 0 samples).
//
//   30 layers, pp=2 (even):          [0, 15) [15, 30)
//   30 layers, pp=2, split "12,18":  [0, 12) [12, 30)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::parallel {

struct LayerRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

// `layers_per_stage` empty: as even as possible, earlier stages taking the
// remainder (the last stage also runs the LM head). Otherwise one positive
// count per stage summing to n_layers. INVALID_ARGUMENT naming the counts.
absl::StatusOr<std::vector<LayerRange>> PlanPipelineStages(int64_t n_layers, int pp_size,
                                                           const std::vector<int64_t>& layers_per_stage);

// "12,18" -> {12, 18}; "" -> {}. INVALID_ARGUMENT naming the bad element.
absl::StatusOr<std::vector<int64_t>> ParseLayerSplit(const std::string& text);

}  // namespace strata::parallel
