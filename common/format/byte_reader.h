// Bounds-checked little-endian cursor over an untrusted byte image (a model
// file). Every read checks the remaining length first, so a truncated or
// lying file produces a Status, never an out-of-bounds access. Errors carry
// the offset but not the file name; the format parser adds that context.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>


#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace strata {

// The formats Strata reads are little-endian; a memcpy load is only a correct
// decode on a little-endian host.
static_assert(std::endian::native == std::endian::little, "model readers assume a little-endian host");

// Debian's abseil is built with its own absl::string_view (not an alias of
// absl::string_view), so heterogeneous lookups in string-keyed absl maps need
// an explicit conversion.
inline absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Unaligned load of a trivially copyable T; the caller has checked the bounds.
template <typename T>
T LoadLe(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const uint8_t* current() const { return data_ + pos_; }

  // Advances by n bytes; `what` names the field in the error.
  absl::Status Skip(uint64_t n, absl::string_view what) {
    if (n > remaining()) return Truncated(n, what);
    pos_ += static_cast<size_t>(n);
    return absl::OkStatus();
  }

  template <typename T>
  absl::StatusOr<T> Read(absl::string_view what) {
    if (sizeof(T) > remaining()) return Truncated(sizeof(T), what);
    T v = LoadLe<T>(data_ + pos_);
    pos_ += sizeof(T);
    return v;
  }

  // A u64 length followed by that many bytes (GGUF string). The view points
  // into the image.
  absl::StatusOr<absl::string_view> ReadString(absl::string_view what) {
    absl::StatusOr<uint64_t> len = Read<uint64_t>(what);
    if (!len.ok()) return len.status();
    if (*len > remaining()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " at offset ", pos_ - 8, " has length ", *len,
                                                     " but only ", remaining(),
                                                     " bytes remain in the file"));
    }
    absl::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(*len));
    pos_ += static_cast<size_t>(*len);
    return s;
  }

 private:
  absl::Status Truncated(uint64_t need, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("unexpected end of file reading ", what, " at offset ",
                                                   pos_, " (need ", need, " bytes, ", remaining(),
                                                   " remain)"));
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace strata
