#include "coordinator/frontend/model_lookup.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/frontend/quote.h"
#include "coordinator/frontend/request_limits.h"

namespace strata::coordinator::frontend {

absl::StatusOr<const ServedModel*> LookUpModel(const InferenceBackend& backend, absl::string_view field,
                                               absl::string_view name) {
  RETURN_IF_ERROR(CheckModelName(field, name));
  absl::StatusOr<const ServedModel*> model = backend.FindModel(name);
  if (model.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("model ", QuoteForError(name), " is not served here"));
  }
  return model;
}

}  // namespace strata::coordinator::frontend
