#include "coordinator/frontend/quote.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/tokenizer/unicode_bytes.h"

namespace strata::coordinator::frontend {

std::string QuoteForError(absl::string_view text, size_t max_bytes) {
  std::string out = "'";
  size_t pos = 0;
  const std::string_view s(text.data(), text.size());
  while (pos < s.size() && pos < max_bytes) {
    const size_t start = pos;
    const int32_t cp = tokenizer_internal::DecodeUtf8(s, &pos);
    if (cp < 0) {
      absl::StrAppend(&out, absl::StrFormat("\\x%02X", static_cast<uint8_t>(s[start])));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\'' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
      absl::StrAppend(&out, absl::StrFormat("\\x%02X", cp));
    } else {
      out.append(s.substr(start, pos - start));
    }
  }
  out += "'";
  if (pos < s.size()) absl::StrAppend(&out, "\xE2\x80\xA6 (", s.size(), " bytes)");
  return out;
}

}  // namespace strata::coordinator::frontend
