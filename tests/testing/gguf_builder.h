// Test-only writer of GGUF images, so format tests and fuzz seeds need no
// checked-in binaries. It writes exactly what it is told, including bad
// values (wrong counts, misaligned offsets, unknown types) for negative tests.
//
// Layout written:
//   "GGUF" | u32 version | u64 n_tensors | u64 n_kv | kvs | tensor infos
//   | zero padding to the alignment | each tensor's bytes, padded to the alignment
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "common/format/gguf_file.h"
#include "common/tensor_type.h"

namespace strata::testing {

class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3) : version_(version) {}

  // Scalars. The value bytes are the little-endian image of `v`.
  template <typename T>
  GgufBuilder& AddScalar(const std::string& key, GgufValueType type, T v) {
    Bytes value;
    Put(value, v);
    return AddRaw(key, static_cast<uint32_t>(type), value);
  }
  GgufBuilder& AddU8(const std::string& k, uint8_t v) { return AddScalar(k, GgufValueType::kUint8, v); }
  GgufBuilder& AddI8(const std::string& k, int8_t v) { return AddScalar(k, GgufValueType::kInt8, v); }
  GgufBuilder& AddU16(const std::string& k, uint16_t v) { return AddScalar(k, GgufValueType::kUint16, v); }
  GgufBuilder& AddI16(const std::string& k, int16_t v) { return AddScalar(k, GgufValueType::kInt16, v); }
  GgufBuilder& AddU32(const std::string& k, uint32_t v) { return AddScalar(k, GgufValueType::kUint32, v); }
  GgufBuilder& AddI32(const std::string& k, int32_t v) { return AddScalar(k, GgufValueType::kInt32, v); }
  GgufBuilder& AddU64(const std::string& k, uint64_t v) { return AddScalar(k, GgufValueType::kUint64, v); }
  GgufBuilder& AddI64(const std::string& k, int64_t v) { return AddScalar(k, GgufValueType::kInt64, v); }
  GgufBuilder& AddF32(const std::string& k, float v) { return AddScalar(k, GgufValueType::kFloat32, v); }
  GgufBuilder& AddF64(const std::string& k, double v) { return AddScalar(k, GgufValueType::kFloat64, v); }
  GgufBuilder& AddBool(const std::string& k, bool v) {
    return AddScalar(k, GgufValueType::kBool, static_cast<uint8_t>(v ? 1 : 0));
  }
  GgufBuilder& AddString(const std::string& k, const std::string& v) {
    Bytes value;
    PutString(value, v);
    return AddRaw(k, static_cast<uint32_t>(GgufValueType::kString), value);
  }

  // Array of fixed-size elements; `count` overrides the written length.
  template <typename T>
  GgufBuilder& AddArray(const std::string& key, GgufValueType elem, const std::vector<T>& v,
                        std::optional<uint64_t> count = std::nullopt) {
    Bytes value;
    Put(value, static_cast<uint32_t>(elem));
    Put(value, count.value_or(v.size()));
    for (const T& x : v) Put(value, x);
    return AddRaw(key, static_cast<uint32_t>(GgufValueType::kArray), value);
  }
  GgufBuilder& AddStringArray(const std::string& key, const std::vector<std::string>& v,
                              std::optional<uint64_t> count = std::nullopt) {
    Bytes value;
    Put(value, static_cast<uint32_t>(GgufValueType::kString));
    Put(value, count.value_or(v.size()));
    for (const std::string& s : v) PutString(value, s);
    return AddRaw(key, static_cast<uint32_t>(GgufValueType::kArray), value);
  }

  // A kv with an arbitrary type id and payload (for unknown types).
  GgufBuilder& AddRaw(const std::string& key, uint32_t type, const std::vector<uint8_t>& payload) {
    kvs_.push_back({key, type, payload});
    return *this;
  }

  // Writes general.alignment (u32) and uses it for padding.
  GgufBuilder& SetAlignment(uint32_t alignment) {
    alignment_ = alignment;
    return AddU32("general.alignment", alignment);
  }

  // A tensor whose data is `data`. `type_id` is the raw GGML id so unknown
  // types can be written. `offset` overrides the computed data offset.
  GgufBuilder& AddTensor(const std::string& name, uint32_t type_id, const std::vector<uint64_t>& shape,
                         const std::vector<uint8_t>& data, std::optional<uint64_t> offset = std::nullopt) {
    tensors_.push_back({name, type_id, shape, data, offset});
    return *this;
  }
  GgufBuilder& AddTensor(const std::string& name, TensorType type, const std::vector<uint64_t>& shape,
                         const std::vector<uint8_t>& data, std::optional<uint64_t> offset = std::nullopt) {
    return AddTensor(name, static_cast<uint32_t>(type), shape, data, offset);
  }
  // F32 tensor from values.
  GgufBuilder& AddF32Tensor(const std::string& name, const std::vector<uint64_t>& shape,
                            const std::vector<float>& values) {
    std::vector<uint8_t> data(values.size() * 4);
    std::memcpy(data.data(), values.data(), data.size());
    return AddTensor(name, TensorType::kF32, shape, data);
  }

  // Overrides for the header counts (huge-count tests).
  GgufBuilder& OverrideTensorCount(uint64_t n) {
    n_tensors_override_ = n;
    return *this;
  }
  GgufBuilder& OverrideKvCount(uint64_t n) {
    n_kv_override_ = n;
    return *this;
  }

  std::vector<uint8_t> Build() const {
    Bytes out;
    Put(out, static_cast<uint32_t>(0x46554747));  // "GGUF"
    Put(out, version_);
    Put(out, n_tensors_override_.value_or(tensors_.size()));
    Put(out, n_kv_override_.value_or(kvs_.size()));
    for (const Kv& kv : kvs_) {
      PutString(out, kv.key);
      Put(out, kv.type);
      out.insert(out.end(), kv.payload.begin(), kv.payload.end());
    }
    // Data offsets: each tensor starts at the next aligned offset.
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const Tensor& t : tensors_) {
      offsets.push_back(next);
      next = Align(next + t.data.size());
    }
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const Tensor& t = tensors_[i];
      PutString(out, t.name);
      Put(out, static_cast<uint32_t>(t.shape.size()));
      for (uint64_t d : t.shape) Put(out, d);
      Put(out, t.type_id);
      Put(out, t.offset.value_or(offsets[i]));
    }
    if (tensors_.empty()) return out;
    out.resize(Align(out.size()), 0);
    const size_t data_start = out.size();
    for (size_t i = 0; i < tensors_.size(); ++i) {
      out.resize(data_start + offsets[i], 0);
      out.insert(out.end(), tensors_[i].data.begin(), tensors_[i].data.end());
    }
    out.resize(data_start + next, 0);
    return out;
  }

  void WriteTo(const std::string& path) const {
    const std::vector<uint8_t> bytes = Build();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }

 private:
  using Bytes = std::vector<uint8_t>;
  struct Kv {
    std::string key;
    uint32_t type;
    Bytes payload;
  };
  struct Tensor {
    std::string name;
    uint32_t type_id;
    std::vector<uint64_t> shape;
    Bytes data;
    std::optional<uint64_t> offset;
  };

  template <typename T>
  static void Put(Bytes& out, T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.insert(out.end(), b, b + sizeof(T));
  }
  static void PutString(Bytes& out, const std::string& s) {
    Put(out, static_cast<uint64_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
  }
  uint64_t Align(uint64_t n) const {
    const uint64_t a = alignment_ == 0 ? 1 : alignment_;
    return (n + a - 1) / a * a;
  }

  uint32_t version_;
  uint64_t alignment_ = 32;
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
  std::optional<uint64_t> n_tensors_override_;
  std::optional<uint64_t> n_kv_override_;
};

}  // namespace strata::testing
