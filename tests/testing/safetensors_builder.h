// Test-only writer of safetensors images and Hugging Face checkpoint
// directories. Writes exactly what it is told, including inconsistent
// offsets and raw headers for negative tests.
//
// Layout written: u64 header length | JSON header | data (tensors back to back).
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace strata::testing {

class SafetensorsBuilder {
 public:
  // `offsets` overrides the computed [begin, end) for bad-input tests.
  SafetensorsBuilder& AddTensor(const std::string& name, const std::string& dtype,
                                const std::vector<int64_t>& shape, const std::vector<uint8_t>& data,
                                std::optional<std::pair<uint64_t, uint64_t>> offsets = std::nullopt) {
    tensors_.push_back({name, dtype, shape, data, offsets});
    return *this;
  }
  SafetensorsBuilder& AddF32(const std::string& name, const std::vector<int64_t>& shape,
                             const std::vector<float>& values) {
    std::vector<uint8_t> data(values.size() * 4);
    std::memcpy(data.data(), values.data(), data.size());
    return AddTensor(name, "F32", shape, data);
  }
  SafetensorsBuilder& SetMetadata(const std::map<std::string, std::string>& metadata) {
    metadata_ = metadata;
    return *this;
  }
  // Replaces the generated JSON header with this text (data still appended).
  SafetensorsBuilder& SetRawHeader(const std::string& header) {
    raw_header_ = header;
    return *this;
  }
  // Replaces the written header length.
  SafetensorsBuilder& OverrideHeaderLength(uint64_t n) {
    header_len_override_ = n;
    return *this;
  }
  // Pads the header with spaces to a multiple of 8, as the Python writer does.
  SafetensorsBuilder& PadHeader(bool pad) {
    pad_ = pad;
    return *this;
  }

  std::string Header() const {
    if (raw_header_.has_value()) return *raw_header_;
    nlohmann::json h = nlohmann::json::object();
    if (!metadata_.empty()) h["__metadata__"] = metadata_;
    uint64_t next = 0;
    for (const Tensor& t : tensors_) {
      const auto [b, e] = t.offsets.value_or(std::make_pair(next, next + t.data.size()));
      h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {b, e}}};
      next += t.data.size();
    }
    std::string text = h.dump();
    if (pad_) text.resize((text.size() + 7) / 8 * 8, ' ');
    return text;
  }

  std::vector<uint8_t> Build() const {
    const std::string header = Header();
    // Assembled in a string: GCC 12 warns falsely (-Warray-bounds) about
    // inserting into a just-sized vector.
    std::string out(8, '\0');
    const uint64_t len = header_len_override_.value_or(header.size());
    std::memcpy(out.data(), &len, 8);
    out += header;
    for (const Tensor& t : tensors_) out.append(t.data.begin(), t.data.end());
    return std::vector<uint8_t>(out.begin(), out.end());
  }

  void WriteTo(const std::string& path) const {
    const std::vector<uint8_t> bytes = Build();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }

 private:
  struct Tensor {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
    std::optional<std::pair<uint64_t, uint64_t>> offsets;
  };
  std::vector<Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
  std::optional<std::string> raw_header_;
  std::optional<uint64_t> header_len_override_;
  bool pad_ = true;
};

// Writes `text` to `path` (config.json, index files).
inline void WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

}  // namespace strata::testing
