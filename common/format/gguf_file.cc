#include "common/format/gguf_file.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/format/byte_reader.h"
#include "common/status_macros.h"

namespace strata {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr char kAlignmentKey[] = "general.alignment";
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

// Smallest encodings, used to reject counts that cannot fit in the file
// before looping over them (a 2^63 count must fail fast, not spin).
//   kv:          key length (8) + value type (4) + smallest value (1 byte)
//   tensor info: name length (8) + n_dims (4) + type (4) + offset (8)
//   string:      length (8)
constexpr uint64_t kMinKvBytes = 13;
constexpr uint64_t kMinTensorInfoBytes = 24;
constexpr uint64_t kMinStringBytes = 8;

constexpr uint32_t kMaxValueType = static_cast<uint32_t>(GgufValueType::kFloat64);

absl::string_view ValueTypeName(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: return "uint8";
    case GgufValueType::kInt8: return "int8";
    case GgufValueType::kUint16: return "uint16";
    case GgufValueType::kInt16: return "int16";
    case GgufValueType::kUint32: return "uint32";
    case GgufValueType::kInt32: return "int32";
    case GgufValueType::kFloat32: return "float32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "uint64";
    case GgufValueType::kInt64: return "int64";
    case GgufValueType::kFloat64: return "float64";
  }
  return "unknown";
}

// Bytes of a fixed-size value; 0 for string and array.
uint64_t ScalarSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

bool IsInteger(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsFloat(GgufValueType t) { return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64; }

// Decodes an integer of type t at p; only uint64 values above INT64_MAX fail.
// Precondition: IsInteger(t) and p has ScalarSize(t) readable bytes.
std::optional<int64_t> IntAt(GgufValueType t, const uint8_t* p) {
  switch (t) {
    case GgufValueType::kUint8: return LoadLe<uint8_t>(p);
    case GgufValueType::kInt8: return LoadLe<int8_t>(p);
    case GgufValueType::kUint16: return LoadLe<uint16_t>(p);
    case GgufValueType::kInt16: return LoadLe<int16_t>(p);
    case GgufValueType::kUint32: return LoadLe<uint32_t>(p);
    case GgufValueType::kInt32: return LoadLe<int32_t>(p);
    case GgufValueType::kInt64: return LoadLe<int64_t>(p);
    case GgufValueType::kUint64: {
      const uint64_t v = LoadLe<uint64_t>(p);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(v);
    }
    default:
      return std::nullopt;
  }
}

// Precondition: IsFloat(t).
double FloatAt(GgufValueType t, const uint8_t* p) {
  return t == GgufValueType::kFloat32 ? LoadLe<float>(p) : LoadLe<double>(p);
}

// Adds "<file>: <context>" in front of a reader error, keeping its code.
absl::Status WithContext(const absl::Status& s, absl::string_view file, absl::string_view context) {
  return absl::Status(s.code(), absl::StrCat(file, ": ", context, ": ", s.message()));
}

std::string PrintableMagic(const uint8_t* p) {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>(p[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      out += absl::StrFormat("\\x%02x", p[i]);
    }
  }
  return out;
}

// Where a metadata value lives in the image; mirrors GgufFile::Value, which is
// private to the class.
struct ParsedValue {
  GgufValueType type;
  GgufValueType elem_type;
  uint64_t count = 0;
  size_t offset = 0;
};

absl::Status TypeError(absl::string_view file, absl::string_view key, GgufValueType type,
                       GgufValueType elem_type, absl::string_view want) {
  std::string have(ValueTypeName(type));
  if (type == GgufValueType::kArray) have = absl::StrCat("array of ", ValueTypeName(elem_type));
  return absl::InvalidArgumentError(absl::StrCat(file, ": key '", key, "' is ", have, ", expected ", want));
}

// Reads one value of type `raw_type` (already read) and records where its
// payload lives. Arrays of strings are walked once here so that every later
// getter can trust the lengths.
absl::StatusOr<ParsedValue> ReadValue(ByteReader& r, uint32_t raw_type, absl::string_view file,
                                      absl::string_view key);

// A tensor info as read, before the data section start is known.
struct RawTensor {
  GgufTensorInfo info;
  uint64_t offset = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> map, MappedFile::Open(path));
  auto file = std::unique_ptr<GgufFile>(new GgufFile());
  file->data_ = map->data();
  file->size_ = map->size();
  file->name_ = path;
  file->map_ = std::move(map);
  RETURN_IF_ERROR(file->ParseImage());
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Parse(const uint8_t* data, size_t size,
                                                          std::string name) {
  auto file = std::unique_ptr<GgufFile>(new GgufFile());
  file->data_ = data;
  file->size_ = size;
  file->name_ = std::move(name);
  RETURN_IF_ERROR(file->ParseImage());
  return file;
}

absl::Status GgufFile::ParseImage() {
  ByteReader r(data_, size_);
  if (size_ < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": not a GGUF file (only ", size_, " bytes, too small for the header)"));
  }
  ASSIGN_OR_RETURN(const uint32_t magic, r.Read<uint32_t>("magic"));
  if (magic != kGgufMagic) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": not a GGUF file (magic is '",
                                                   PrintableMagic(data_), "', expected 'GGUF')"));
  }
  absl::StatusOr<uint32_t> version = r.Read<uint32_t>("version");
  if (!version.ok()) return WithContext(version.status(), name_, "header");
  version_ = *version;
  if (version_ == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": GGUF version 1 is not supported (only versions 2 and 3); "
                            "re-convert the model with a current llama.cpp"));
  }
  if (version_ != 2 && version_ != 3) {
    // A big-endian v2/v3 file stores the version as 0x02000000 / 0x03000000.
    if ((version_ & 0xffff) == 0 && (version_ >> 16) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": big-endian GGUF files are not supported (version field ", version_, ")"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": unsupported GGUF version ", version_, " (only versions 2 and 3)"));
  }
  absl::StatusOr<uint64_t> n_tensors = r.Read<uint64_t>("tensor count");
  if (!n_tensors.ok()) return WithContext(n_tensors.status(), name_, "header");
  absl::StatusOr<uint64_t> n_kv = r.Read<uint64_t>("metadata count");
  if (!n_kv.ok()) return WithContext(n_kv.status(), name_, "header");
  if (*n_kv > r.remaining() / kMinKvBytes) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": metadata count ", *n_kv,
                                                   " cannot fit in a file of ", size_, " bytes"));
  }
  if (*n_tensors > r.remaining() / kMinTensorInfoBytes) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": tensor count ", *n_tensors,
                                                   " cannot fit in a file of ", size_, " bytes"));
  }

  // Metadata.
  // Counts are only bounded by the file size here; cap the up-front
  // reservation so a lying header cannot make us allocate several times the
  // file size before the entries themselves fail to parse.
  constexpr uint64_t kMaxReserve = 4096;
  kv_.reserve(static_cast<size_t>(std::min(*n_kv, kMaxReserve)));
  for (uint64_t i = 0; i < *n_kv; ++i) {
    absl::StatusOr<absl::string_view> key = r.ReadString("key");
    if (!key.ok()) return WithContext(key.status(), name_, absl::StrCat("metadata entry ", i));
    absl::StatusOr<uint32_t> raw_type = r.Read<uint32_t>("value type");
    if (!raw_type.ok()) return WithContext(raw_type.status(), name_, absl::StrCat("key '", *key, "'"));
    ASSIGN_OR_RETURN(const ParsedValue parsed, ReadValue(r, *raw_type, name_, *key));
    Value value{parsed.type, parsed.elem_type, parsed.count, parsed.offset};
    if (!kv_.emplace(std::string(*key), value).second) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": duplicate metadata key '", *key, "'"));
    }
  }

  uint64_t alignment = kDefaultAlignment;
  if (HasKey(kAlignmentKey)) {
    ASSIGN_OR_RETURN(const int64_t a, GetInt(kAlignmentKey));
    if (a <= 0 || (a & (a - 1)) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": ", kAlignmentKey, " is ", a, ", must be a positive power of two"));
    }
    alignment = static_cast<uint64_t>(a);
  }

  // Tensor infos.
  std::vector<RawTensor> raw;
  raw.reserve(static_cast<size_t>(std::min(*n_tensors, kMaxReserve)));
  for (uint64_t i = 0; i < *n_tensors; ++i) {
    const std::string where = absl::StrCat("tensor info ", i);
    absl::StatusOr<absl::string_view> name = r.ReadString("tensor name");
    if (!name.ok()) return WithContext(name.status(), name_, where);
    const std::string tensor = absl::StrCat("tensor '", *name, "'");
    absl::StatusOr<uint32_t> n_dims = r.Read<uint32_t>("n_dims");
    if (!n_dims.ok()) return WithContext(n_dims.status(), name_, tensor);
    if (*n_dims > kMaxDims) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": ", tensor, " has ", *n_dims, " dimensions, at most ", kMaxDims, " allowed"));
    }
    RawTensor t;
    t.info.name = std::string(*name);
    int64_t elements = 1;
    for (uint32_t d = 0; d < *n_dims; ++d) {
      absl::StatusOr<uint64_t> ne = r.Read<uint64_t>("dimension");
      if (!ne.ok()) return WithContext(ne.status(), name_, tensor);
      if (*ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError(
            absl::StrCat(name_, ": ", tensor, " dimension ", d, " is ", *ne, ", too large"));
      }
      const int64_t n = static_cast<int64_t>(*ne);
      if (n != 0 && elements > std::numeric_limits<int64_t>::max() / n) {
        return absl::InvalidArgumentError(
            absl::StrCat(name_, ": ", tensor, " element count overflows 64 bits"));
      }
      elements *= n;
      t.info.shape.push_back(n);
    }
    t.info.num_elements = elements;
    absl::StatusOr<uint32_t> type_id = r.Read<uint32_t>("tensor type");
    if (!type_id.ok()) return WithContext(type_id.status(), name_, tensor);
    std::optional<TensorType> type = TensorTypeFromGgml(*type_id);
    if (!type.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": ", tensor, " has unknown or unsupported GGML type id ", *type_id));
    }
    t.info.type = *type;
    absl::StatusOr<uint64_t> offset = r.Read<uint64_t>("tensor data offset");
    if (!offset.ok()) return WithContext(offset.status(), name_, tensor);
    t.offset = *offset;

    // Size = bytes of one row (shape[0] elements) x number of rows.
    const int64_t row_len = t.info.shape.empty() ? 1 : t.info.shape[0];
    absl::StatusOr<int64_t> row_bytes = RowBytes(*type, row_len);
    if (!row_bytes.ok()) return WithContext(row_bytes.status(), name_, tensor);
    const int64_t rows = row_len == 0 ? 0 : elements / row_len;
    if (rows != 0 && *row_bytes > std::numeric_limits<int64_t>::max() / rows) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": ", tensor, " byte size overflows 64 bits"));
    }
    t.info.size_bytes = static_cast<uint64_t>(*row_bytes * rows);

    if (!tensor_index_.emplace(t.info.name, raw.size()).second) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": duplicate tensor name '", *name, "'"));
    }
    raw.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t info_end = r.pos();
  if (info_end > std::numeric_limits<uint64_t>::max() - (alignment - 1)) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": data section start overflows"));
  }
  const uint64_t data_start = (info_end + alignment - 1) / alignment * alignment;
  if (!raw.empty() && data_start > size_) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": data section starts at ", data_start,
                                                   ", past the end of the file (size ", size_, ")"));
  }

  tensors_.reserve(raw.size());
  for (RawTensor& t : raw) {
    if (t.offset % alignment != 0) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": tensor '", t.info.name, "' data offset ",
                                                     t.offset, " is not a multiple of the alignment ",
                                                     alignment));
    }
    // Overflow-safe form of data_start + offset + size <= size_.
    const uint64_t available = size_ - data_start;
    if (t.offset > available || t.info.size_bytes > available - t.offset) {
      // Saturate the printed end rather than wrap around.
      const uint64_t begin =
          t.offset > std::numeric_limits<uint64_t>::max() - data_start ? std::numeric_limits<uint64_t>::max()
                                                                       : data_start + t.offset;
      const uint64_t end = t.info.size_bytes > std::numeric_limits<uint64_t>::max() - begin
                               ? std::numeric_limits<uint64_t>::max()
                               : begin + t.info.size_bytes;
      return absl::InvalidArgumentError(absl::StrCat(name_, ": tensor '", t.info.name, "' data [", begin,
                                                     ", ", end, ") extends past end of file (size ",
                                                     size_, ")"));
    }
    t.info.data = data_ + data_start + t.offset;
    tensors_.push_back(std::move(t.info));
  }
  return absl::OkStatus();
}

namespace {
absl::StatusOr<ParsedValue> ReadValue(ByteReader& r, uint32_t raw_type, absl::string_view file,
                                      absl::string_view key) {
  const std::string where = absl::StrCat("key '", key, "'");
  if (raw_type > kMaxValueType) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": ", where, " has unknown value type ", raw_type));
  }
  ParsedValue v;
  v.type = static_cast<GgufValueType>(raw_type);
  v.elem_type = v.type;
  if (v.type == GgufValueType::kString) {
    v.offset = r.pos();
    absl::StatusOr<absl::string_view> s = r.ReadString("string value");
    if (!s.ok()) return WithContext(s.status(), file, where);
    return v;
  }
  if (v.type != GgufValueType::kArray) {
    v.offset = r.pos();
    absl::Status s = r.Skip(ScalarSize(v.type), ValueTypeName(v.type));
    if (!s.ok()) return WithContext(s, file, where);
    return v;
  }

  absl::StatusOr<uint32_t> elem = r.Read<uint32_t>("array element type");
  if (!elem.ok()) return WithContext(elem.status(), file, where);
  if (*elem > kMaxValueType) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": ", where, " is an array of unknown value type ", *elem));
  }
  v.elem_type = static_cast<GgufValueType>(*elem);
  if (v.elem_type == GgufValueType::kArray) {
    // llama.cpp neither writes nor reads nested arrays.
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", where, " is a nested array (not supported)"));
  }
  absl::StatusOr<uint64_t> count = r.Read<uint64_t>("array length");
  if (!count.ok()) return WithContext(count.status(), file, where);
  v.count = *count;
  v.offset = r.pos();
  if (v.elem_type == GgufValueType::kString) {
    if (v.count > r.remaining() / kMinStringBytes) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": ", where, " array of ", v.count,
                                                     " strings cannot fit in the ", r.remaining(),
                                                     " bytes left in the file"));
    }
    for (uint64_t i = 0; i < v.count; ++i) {
      absl::StatusOr<absl::string_view> s = r.ReadString("string array element");
      if (!s.ok()) return WithContext(s.status(), file, absl::StrCat(where, " element ", i));
    }
    return v;
  }
  const uint64_t elem_size = ScalarSize(v.elem_type);
  if (v.count > r.remaining() / elem_size) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", where, " array of ", v.count, " ",
                                                   ValueTypeName(v.elem_type), " extends past end of file (",
                                                   r.remaining(), " bytes left)"));
  }
  RETURN_IF_ERROR(r.Skip(v.count * elem_size, "array data"));
  return v;
}
}  // namespace

std::vector<std::string> GgufFile::keys() const {
  std::vector<std::string> out;
  out.reserve(kv_.size());
  for (const auto& [key, value] : kv_) out.push_back(key);
  std::sort(out.begin(), out.end());
  return out;
}

bool GgufFile::HasKey(std::string_view key) const { return kv_.contains(AbslView(key)); }

absl::StatusOr<const GgufFile::Value*> GgufFile::Find(std::string_view std_key, std::string_view want) const {
  const absl::string_view key = AbslView(std_key);
  auto it = kv_.find(key);
  if (it == kv_.end()) {
    return absl::NotFoundError(absl::StrCat(name_, ": key '", key, "' (", AbslView(want), ") not found"));
  }
  return &it->second;
}

absl::StatusOr<std::string> GgufFile::GetString(std::string_view std_key) const {
  const absl::string_view key = AbslView(std_key);
  ASSIGN_OR_RETURN(const Value* v, Find(std_key, "string"));
  if (v->type != GgufValueType::kString) return TypeError(name_, key, v->type, v->elem_type, "string");
  // Length validated at parse time.
  const uint64_t len = LoadLe<uint64_t>(data_ + v->offset);
  return std::string(reinterpret_cast<const char*>(data_ + v->offset + 8), static_cast<size_t>(len));
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view std_key) const {
  const absl::string_view key = AbslView(std_key);
  ASSIGN_OR_RETURN(const Value* v, Find(std_key, "integer"));
  if (!IsInteger(v->type)) return TypeError(name_, key, v->type, v->elem_type, "an integer");
  std::optional<int64_t> value = IntAt(v->type, data_ + v->offset);
  if (!value.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": key '", key, "' value ",
                                                   LoadLe<uint64_t>(data_ + v->offset),
                                                   " does not fit in int64"));
  }
  return *value;
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view std_key) const {
  const absl::string_view key = AbslView(std_key);
  ASSIGN_OR_RETURN(const Value* v, Find(std_key, "float"));
  if (!IsFloat(v->type)) return TypeError(name_, key, v->type, v->elem_type, "float32 or float64");
  return FloatAt(v->type, data_ + v->offset);
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view std_key) const {
  const absl::string_view key = AbslView(std_key);
  ASSIGN_OR_RETURN(const Value* v, Find(std_key, "bool"));
  if (v->type != GgufValueType::kBool) return TypeError(name_, key, v->type, v->elem_type, "bool");
  return data_[v->offset] != 0;
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view std_key) const {
  const absl::string_view key = AbslView(std_key);
  ASSIGN_OR_RETURN(const Value* v, Find(std_key, "string array"));
  if (v->type != GgufValueType::kArray || v->elem_type != GgufValueType::kString) {
    return TypeError(name_, key, v->type, v->elem_type, "array of string");
  }
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(v->count));
  // Every element's length was validated at parse time.
  size_t pos = v->offset;
  for (uint64_t i = 0; i < v->count; ++i) {
    const size_t len = static_cast<size_t>(LoadLe<uint64_t>(data_ + pos));
    out.emplace_back(reinterpret_cast<const char*>(data_ + pos + 8), len);
    pos += 8 + len;
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view std_key) const {
  const absl::string_view key = AbslView(std_key);
  ASSIGN_OR_RETURN(const Value* v, Find(std_key, "integer array"));
  if (v->type != GgufValueType::kArray || !IsInteger(v->elem_type)) {
    return TypeError(name_, key, v->type, v->elem_type, "array of integers");
  }
  const uint64_t elem_size = ScalarSize(v->elem_type);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(v->count));
  for (uint64_t i = 0; i < v->count; ++i) {
    const uint8_t* p = data_ + v->offset + i * elem_size;
    std::optional<int64_t> value = IntAt(v->elem_type, p);
    if (!value.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": key '", key, "' element ", i, " value ",
                                                     LoadLe<uint64_t>(p), " does not fit in int64"));
    }
    out.push_back(*value);
  }
  return out;
}

absl::StatusOr<std::vector<float>> GgufFile::GetFloatArray(std::string_view std_key) const {
  const absl::string_view key = AbslView(std_key);
  ASSIGN_OR_RETURN(const Value* v, Find(std_key, "float array"));
  if (v->type != GgufValueType::kArray || !IsFloat(v->elem_type)) {
    return TypeError(name_, key, v->type, v->elem_type, "array of float32 or float64");
  }
  const uint64_t elem_size = ScalarSize(v->elem_type);
  std::vector<float> out;
  out.reserve(static_cast<size_t>(v->count));
  for (uint64_t i = 0; i < v->count; ++i) {
    out.push_back(static_cast<float>(FloatAt(v->elem_type, data_ + v->offset + i * elem_size)));
  }
  return out;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(AbslView(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace strata
