// The model a request names, looked up with the name bounded first and
// quoted (QuoteForError) in the NOT_FOUND message: the backend's own message
// would echo the whole client-sent name.
//
// Thread ownership: stateless; the backend is thread-safe.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/inference_backend.h"

namespace strata::coordinator::frontend {

// INVALID_ARGUMENT naming `field` when the name is over kMaxNameBytes;
// NOT_FOUND "model '<name>' is not served here" for an unknown name; other
// backend errors as they are (they echo no client text).
absl::StatusOr<const ServedModel*> LookUpModel(const InferenceBackend& backend, absl::string_view field,
                                               absl::string_view name);

}  // namespace strata::coordinator::frontend
