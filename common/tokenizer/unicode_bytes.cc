#include "common/tokenizer/unicode_bytes.h"

#include <array>

namespace strata::tokenizer_internal {
namespace {

struct ByteTable {
  std::array<uint32_t, 256> code_point{};
  std::array<std::string, 256> utf8;
  ByteTable() {
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      code_point[b] = printable(b) ? static_cast<uint32_t>(b) : next++;
      AppendUtf8(code_point[b], &utf8[b]);
    }
  }
};

const ByteTable& Table() {
  static const ByteTable* table = new ByteTable();
  return *table;
}

}  // namespace

int Utf8SequenceLength(uint8_t lead) {
  if (lead < 0xC2) return 1;  // ASCII, continuation bytes, overlong leads
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 1;
}

int32_t DecodeUtf8(std::string_view text, size_t* pos) {
  const size_t i = *pos;
  const auto b0 = static_cast<uint8_t>(text[i]);
  if (b0 < 0x80) {
    *pos = i + 1;
    return b0;
  }
  const int len = Utf8SequenceLength(b0);
  if (len == 1 || i + len > text.size()) {
    *pos = i + 1;
    return -1;
  }
  uint32_t cp = b0 & (0xFF >> (len + 1));
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(text[i + k]);
    if ((b & 0xC0) != 0x80) {
      *pos = i + 1;
      return -1;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  // Reject overlong forms, surrogates and values past U+10FFFF.
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    *pos = i + 1;
    return -1;
  }
  *pos = i + len;
  return static_cast<int32_t>(cp);
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t CompleteUtf8PrefixLength(std::string_view bytes) {
  // Only the last 3 bytes can belong to an unfinished sequence.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<uint8_t>(bytes[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const int len = Utf8SequenceLength(b);
    if (len <= static_cast<int>(back)) return n;  // complete (or invalid lead)
    // A lead byte whose sequence is still open; hold it back only if what
    // follows it so far could still become valid.
    size_t pos = n - back;
    std::string probe(bytes.substr(pos));
    // Pad with the smallest continuation and check validity of the prefix.
    while (static_cast<int>(probe.size()) < len) probe.push_back(static_cast<char>(0x80));
    size_t p = 0;
    if (DecodeUtf8(probe, &p) >= 0) return pos;
    // 0x80 padding may be below the valid range for E0/F0 leads (overlong);
    // try the largest continuation as well.
    probe.resize(n - pos);
    while (static_cast<int>(probe.size()) < len) probe.push_back(static_cast<char>(0xBF));
    p = 0;
    if (DecodeUtf8(probe, &p) >= 0) return pos;
    return n;
  }
  return n;
}

std::string SanitizeUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t start = pos;
    if (DecodeUtf8(bytes, &pos) < 0) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(bytes.substr(start, pos - start));
    }
  }
  return out;
}

uint32_t ByteToCodePoint(uint8_t byte) { return Table().code_point[byte]; }
const std::string& ByteToUnicode(uint8_t byte) { return Table().utf8[byte]; }

int CodePointToByte(int32_t cp) {
  if (cp < 0) return -1;
  if ((cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return cp;
  if (cp >= 256 && cp < 256 + 68) {
    // The 68 remapped bytes, in order.
    static const std::array<int, 68>* inverse = [] {
      auto* inv = new std::array<int, 68>();
      int k = 0;
      for (int b = 0; b < 256; ++b) {
        if (Table().code_point[b] >= 256) (*inv)[k++] = b;
      }
      return inv;
    }();
    return (*inverse)[cp - 256];
  }
  return -1;
}

std::string BytesToUnicode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += ByteToUnicode(static_cast<uint8_t>(c));
  return out;
}

std::string UnicodeToBytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const int32_t cp = DecodeUtf8(text, &pos);
    const int b = CodePointToByte(cp);
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      out.append(text.substr(start, pos - start));
    }
  }
  return out;
}

}  // namespace strata::tokenizer_internal
