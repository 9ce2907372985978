// Hugging Face safetensors reader over a memory map.
//
// Layout: u64 header length N | N bytes of JSON header | data.
// Header: { "name": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [b, e]}, ...,
//           "__metadata__": {...} } with offsets relative to the data start.
// Every offset/shape is checked against the file; F32, F16 and BF16 tensors
// map to a TensorType, other dtypes (I64, BOOL, F8_E4M3, ...) are listed with
// type == nullopt so a loader can reject them by name.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/format/mapped_file.h"
#include "common/tensor_type.h"

namespace strata {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as written in the header ("BF16", "I64", ...)
  std::optional<TensorType> type;  // nullopt for dtypes Strata cannot use
  // Row-major (PyTorch order): shape[0] is the outermost dimension, so a
  // Linear weight is [out_features, in_features].
  std::vector<int64_t> shape;
  int64_t num_elements = 0;
  uint64_t size_bytes = 0;
  const void* data = nullptr;
};

class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(const uint8_t* data, size_t size,
                                                                std::string name);
  const std::string& name() const { return name_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* FindTensor(std::string_view name) const;

 private:
  SafetensorsFile() = default;
  std::unique_ptr<MappedFile> map_;
  std::string name_;
  std::vector<SafetensorsTensor> tensors_;
  absl::flat_hash_map<std::string, size_t> index_;
};

// A Hugging Face checkpoint directory: config.json, model.safetensors or
// model.safetensors.index.json + shards, tokenizer.json (optional here; the
// tokenizer loader reports its absence).
class HfCheckpoint {
 public:
  static absl::StatusOr<std::unique_ptr<HfCheckpoint>> Open(const std::string& dir);
  const std::string& dir() const { return dir_; }
  // Raw text of config.json (parsed by the model config code).
  const std::string& config_json() const { return config_json_; }
  // Looks a tensor up across all shards; nullptr when absent.
  const SafetensorsTensor* FindTensor(std::string_view name) const;
  // All tensors of all shards.
  std::vector<const SafetensorsTensor*> tensors() const;

 private:
  HfCheckpoint() = default;
  std::string dir_;
  std::string config_json_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  absl::flat_hash_map<std::string, const SafetensorsTensor*> index_;
};

}  // namespace strata
