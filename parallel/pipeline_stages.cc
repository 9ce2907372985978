#include "parallel/pipeline_stages.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace strata::parallel {

absl::StatusOr<std::vector<LayerRange>> PlanPipelineStages(int64_t n_layers, int pp_size,
                                                           const std::vector<int64_t>& counts) {
  if (pp_size < 1) return absl::InvalidArgumentError(absl::StrCat("pipeline size ", pp_size, " must be >= 1"));
  if (n_layers < pp_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipeline size ", pp_size, " exceeds the model's ", n_layers, " layers"));
  }
  std::vector<LayerRange> stages(pp_size);
  if (counts.empty()) {
    const int64_t base = n_layers / pp_size, extra = n_layers % pp_size;
    int64_t at = 0;
    for (int s = 0; s < pp_size; ++s) {
      stages[s] = {at, at + base + (s < extra ? 1 : 0)};
      at = stages[s].end;
    }
    return stages;
  }
  if (static_cast<int>(counts.size()) != pp_size) {
    return absl::InvalidArgumentError(absl::StrCat("layer split '", absl::StrJoin(counts, ","), "' has ",
                                                   counts.size(), " stages, the pipeline size is ", pp_size));
  }
  int64_t at = 0;
  for (int s = 0; s < pp_size; ++s) {
    if (counts[s] < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer split '", absl::StrJoin(counts, ","), "': stage ", s, " has no layers"));
    }
    stages[s] = {at, at + counts[s]};
    at += counts[s];
  }
  if (at != n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer split '", absl::StrJoin(counts, ","), "' sums to ",
                                                   at, ", the model has ", n_layers, " layers"));
  }
  return stages;
}

absl::StatusOr<std::vector<int64_t>> ParseLayerSplit(const std::string& text) {
  std::vector<int64_t> out;
  if (text.empty()) return out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v) || v < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer split '", text, "': '", part, "' is not a positive layer count"));
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace strata::parallel
