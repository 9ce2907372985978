// Client input quoted inside an error message. A status message is sent back
// in gRPC trailing metadata (grpc-message), so echoing a 100 KB model name or
// JSON key verbatim made the error itself too large for the client to read
// (it saw RESOURCE_EXHAUSTED instead). Every place that puts client text into
// a status uses QuoteForError.
//
// Thread ownership: stateless.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace strata::coordinator::frontend {

// Bytes of client text kept in a quote before it is cut.
inline constexpr size_t kQuoteMaxBytes = 64;

// 'text' with at most max_bytes of it kept (cut at a character boundary),
// followed by "… (N bytes)" when cut. Control characters, quotes and
// backslashes are escaped (\n, \', \x01) and invalid UTF-8 bytes appear as
// \xNN, so the result is always short, printable, valid UTF-8.
std::string QuoteForError(absl::string_view text, size_t max_bytes = kQuoteMaxBytes);

}  // namespace strata::coordinator::frontend
