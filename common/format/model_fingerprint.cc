#include "common/format/model_fingerprint.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace strata {

namespace {

constexpr int64_t kFingerprintChunk = 1 << 20;  // bytes hashed at each end of a file

uint64_t Fnv1a(uint64_t h, const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<uint8_t>(data[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Hashes `file`'s size and its first and last kFingerprintChunk bytes into `h`.
absl::Status HashFile(const std::filesystem::path& file, uint64_t* h, int64_t* total) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot stat ", file.string(), ": ", ec.message()));
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", file.string()));
  const std::string size_text = absl::StrCat(size, ";");
  *h = Fnv1a(*h, size_text.data(), size_text.size());
  std::string buf(static_cast<size_t>(std::min<int64_t>(kFingerprintChunk, size)), '\0');
  in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
  *h = Fnv1a(*h, buf.data(), static_cast<size_t>(in.gcount()));
  if (static_cast<int64_t>(size) > kFingerprintChunk) {
    const int64_t tail = std::min<int64_t>(kFingerprintChunk, size - kFingerprintChunk);
    in.seekg(static_cast<std::streamoff>(size - tail));
    buf.resize(static_cast<size_t>(tail));
    in.read(buf.data(), tail);
    *h = Fnv1a(*h, buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", file.string()));
  *total += static_cast<int64_t>(size);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ModelFingerprint(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  uint64_t h = 0xcbf29ce484222325ULL;
  int64_t total = 0;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    if (ec) return absl::NotFoundError(absl::StrCat("cannot list ", path, ": ", ec.message()));
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      const std::string name = f.filename().string() + ";";
      h = Fnv1a(h, name.data(), name.size());
      RETURN_IF_ERROR(HashFile(f, &h, &total));
    }
  } else {
    RETURN_IF_ERROR(HashFile(path, &h, &total));
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016" PRIx64, h);
  return absl::StrCat("size:", total, "-fnv1a64:", hex);
}

}  // namespace strata
