// GGUF v2/v3 reader over a memory map.
//
// File layout (little endian):
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x { string key | u32 value type | value }
//   n_tensors x { string name | u32 n_dims | n_dims x u64 ne | u32 ggml type | u64 offset }
//   padding to general.alignment (default 32)
//   tensor data; each tensor at data_start + offset
// Strings are u64 length + bytes (no terminator). Arrays are u32 elem type +
// u64 count + elems.
//
// Every length, count, offset and shape is bounds-checked against the file;
// a bad file is an INVALID_ARGUMENT naming the file and the offending key or
// tensor, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/format/mapped_file.h"
#include "common/tensor_type.h"

namespace strata {

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

struct GgufTensorInfo {
  std::string name;
  TensorType type;
  // GGML order: shape[0] is the innermost (contiguous) dimension, i.e. the
  // row length of a 2-D weight; shape[1] is the number of rows.
  std::vector<int64_t> shape;
  int64_t num_elements = 0;
  uint64_t size_bytes = 0;
  const void* data = nullptr;  // points into the map
};

class GgufFile {
 public:
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses an in-memory image (used by the fuzzer); `name` appears in errors.
  // The bytes must outlive the returned object.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Parse(const uint8_t* data, size_t size,
                                                         std::string name);

  uint32_t version() const { return version_; }
  const std::string& name() const { return name_; }
  bool HasKey(std::string_view key) const;
  // All metadata keys, sorted (for dumps, diagnostics and the fuzzer).
  std::vector<std::string> keys() const;

  // Typed getters. NOT_FOUND when the key is missing, INVALID_ARGUMENT when the
  // stored type does not convert (integers convert between widths when the
  // value fits; floats accept float32/float64).
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  absl::StatusOr<std::vector<float>> GetFloatArray(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  // nullptr when absent.
  const GgufTensorInfo* FindTensor(std::string_view name) const;

 private:
  struct Value {
    GgufValueType type;
    GgufValueType elem_type;  // for arrays
    uint64_t count = 0;       // for arrays
    size_t offset = 0;        // of the payload within the file image
  };
  GgufFile() = default;
  absl::Status ParseImage();
  absl::StatusOr<const Value*> Find(std::string_view key, std::string_view want) const;

  std::unique_ptr<MappedFile> map_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string name_;
  uint32_t version_ = 0;
  absl::flat_hash_map<std::string, Value> kv_;
  std::vector<GgufTensorInfo> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;
};

}  // namespace strata
