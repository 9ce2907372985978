#include "common/format/safetensors_file.h"

#include <algorithm>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/format/byte_reader.h"
#include "common/status_macros.h"

namespace strata {

namespace {

// The reference implementation caps the header at 100 MB; a bigger length is
// a corrupt or hostile file, and refusing it bounds JSON parsing time.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeInfo {
  const char* name;
  uint64_t bytes;                   // per element
  std::optional<TensorType> type;  // nullopt: listed, but not a weight type Strata reads
};

// dtypes of the safetensors spec with a whole-byte element size. Sub-byte
// types (F4, F6_*) are not here: they are accepted without a size check.
constexpr DtypeInfo kDtypes[] = {
    {"F32", 4, TensorType::kF32},   {"F16", 2, TensorType::kF16},   {"BF16", 2, TensorType::kBF16},
    {"F64", 8, std::nullopt},       {"I64", 8, std::nullopt},       {"U64", 8, std::nullopt},
    {"I32", 4, std::nullopt},       {"U32", 4, std::nullopt},       {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt},       {"I8", 1, std::nullopt},        {"U8", 1, std::nullopt},
    {"BOOL", 1, std::nullopt},      {"F8_E4M3", 1, std::nullopt},   {"F8_E5M2", 1, std::nullopt},
    {"F8_E8M0", 1, std::nullopt},   {"C64", 8, std::nullopt},
};

const DtypeInfo* FindDtype(const std::string& name) {
  for (const DtypeInfo& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

// Reads a JSON number as a non-negative int64 (shape dims, offsets).
std::optional<int64_t> NonNegativeInt(const nlohmann::json& j) {
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (v < 0) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> map, MappedFile::Open(path));
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, Parse(map->data(), map->size(), path));
  // Tensor data pointers point into the map; handing the map to the file
  // keeps them valid for its lifetime.
  file->map_ = std::move(map);
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(const uint8_t* data, size_t size,
                                                                        std::string name) {
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->name_ = std::move(name);
  const std::string& fname = file->name_;

  ByteReader r(data, size);
  absl::StatusOr<uint64_t> header_len = r.Read<uint64_t>("header length");
  if (!header_len.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(fname, ": not a safetensors file (", size, " bytes, too small for the header length)"));
  }
  if (*header_len > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(fname, ": header length ", *header_len,
                                                   " exceeds the 100 MiB limit (corrupt or not safetensors)"));
  }
  if (*header_len > r.remaining()) {
    return absl::InvalidArgumentError(absl::StrCat(fname, ": header length ", *header_len,
                                                   " extends past end of file (size ", size, ")"));
  }
  const char* header_begin = reinterpret_cast<const char*>(r.current());
  const char* header_end = header_begin + *header_len;
  const uint8_t* data_section = r.current() + *header_len;
  const uint64_t data_size = r.remaining() - *header_len;

  // nlohmann throws on malformed input; keep the exception local and turn it
  // into a Status so callers never see one.
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_end);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(fname, ": header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(fname, ": header is not a JSON object"));
  }

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& tname = it.key();
    if (tname == "__metadata__") continue;  // free-form strings; nothing Strata needs
    const std::string where = absl::StrCat(fname, ": tensor '", tname, "'");
    const nlohmann::json& entry = it.value();
    if (!entry.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, " is not a JSON object"));

    SafetensorsTensor t;
    t.name = tname;
    auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has no string \"dtype\""));
    }
    t.dtype = dtype->get<std::string>();
    const DtypeInfo* info = FindDtype(t.dtype);
    if (info != nullptr) t.type = info->type;

    auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has no \"shape\" array"));
    }
    int64_t elements = 1;
    for (const nlohmann::json& d : *shape) {
      std::optional<int64_t> n = NonNegativeInt(d);
      if (!n.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " shape ", shape->dump(), " has an entry that is not a non-negative integer"));
      }
      if (*n != 0 && elements > std::numeric_limits<int64_t>::max() / *n) {
        return absl::InvalidArgumentError(absl::StrCat(where, " shape ", shape->dump(), " overflows"));
      }
      elements *= *n;
      t.shape.push_back(*n);
    }
    t.num_elements = elements;

    auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has no \"data_offsets\" [begin, end] pair"));
    }
    std::optional<int64_t> begin = NonNegativeInt((*offsets)[0]);
    std::optional<int64_t> end = NonNegativeInt((*offsets)[1]);
    if (!begin.has_value() || !end.has_value() || *begin > *end) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has invalid data_offsets ", offsets->dump()));
    }
    if (static_cast<uint64_t>(*end) > data_size) {
      return absl::InvalidArgumentError(absl::StrCat(where, " data_offsets [", *begin, ", ", *end,
                                                     ") extend past the data section (", data_size,
                                                     " bytes)"));
    }
    t.size_bytes = static_cast<uint64_t>(*end - *begin);
    if (info != nullptr) {
      const uint64_t elements_u = static_cast<uint64_t>(elements);
      if (elements_u > std::numeric_limits<uint64_t>::max() / info->bytes ||
          elements_u * info->bytes != t.size_bytes) {
        return absl::InvalidArgumentError(absl::StrCat(where, " data_offsets span ", t.size_bytes,
                                                       " bytes but shape ", ShapeString(t.shape), " of ",
                                                       t.dtype, " needs ", elements, " x ", info->bytes));
      }
    }
    t.data = data_section + *begin;
    file->tensors_.push_back(std::move(t));
  }

  // nlohmann keeps object keys sorted by name; file (offset) order is the
  // natural order for sequential loading.
  std::stable_sort(file->tensors_.begin(), file->tensors_.end(),
                   [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.data < b.data; });
  file->index_.reserve(file->tensors_.size());
  for (size_t i = 0; i < file->tensors_.size(); ++i) {
    // JSON object keys are unique after parsing, so emplace cannot fail here.
    file->index_.emplace(file->tensors_[i].name, i);
  }
  return file;
}

const SafetensorsTensor* SafetensorsFile::FindTensor(std::string_view name) const {
  auto it = index_.find(AbslView(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace strata
