#include "coordinator/frontend/kserve_tensor_codec.h"
#include "coordinator/frontend/quote.h"

#include <bit>
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace strata::coordinator::frontend {
namespace {

using InferInputTensor = inference::ModelInferRequest::InferInputTensor;

absl::Status Invalid(const InferInputTensor& t, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("input ", QuoteForError(t.name()), ": ", what));
}

bool HasTypedContents(const inference::InferTensorContents& c) {
  return c.bool_contents_size() > 0 || c.int_contents_size() > 0 ||
         c.int64_contents_size() > 0 || c.uint_contents_size() > 0 ||
         c.uint64_contents_size() > 0 || c.fp32_contents_size() > 0 ||
         c.fp64_contents_size() > 0 || c.bytes_contents_size() > 0;
}

absl::StatusOr<int64_t> CheckDatatype(const InputTensor& input, absl::string_view datatype) {
  const InferInputTensor& t = *input.tensor;
  if (t.datatype() != datatype) {
    return Invalid(t, absl::StrCat("datatype is ", QuoteForError(t.datatype()), ", expected ", datatype));
  }
  return ElementCount(t);
}

uint64_t LoadLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void StoreLe(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Fixed-size elements: raw buffers hold `width` little-endian bytes each,
// typed contents come from `typed` (a repeated field of the proto).
template <typename T, typename Repeated, typename FromBits>
absl::StatusOr<std::vector<T>> DecodeFixed(const InputTensor& input, absl::string_view datatype,
                                           int width, const Repeated& typed, FromBits from_bits) {
  absl::StatusOr<int64_t> count = CheckDatatype(input, datatype);
  if (!count.ok()) return count.status();
  const InferInputTensor& t = *input.tensor;
  std::vector<T> out;
  if (input.raw != nullptr) {
    const std::string& raw = *input.raw;
    if (static_cast<int64_t>(raw.size()) != *count * width) {
      return Invalid(t, absl::StrCat("raw_input_contents has ", raw.size(), " bytes, expected ",
                                     *count * width, " (", *count, " ", datatype, " elements)"));
    }
    out.reserve(*count);
    for (int64_t i = 0; i < *count; ++i) out.push_back(from_bits(LoadLe(raw.data() + i * width, width)));
    return out;
  }
  if (typed.size() != *count) {
    return Invalid(t, absl::StrCat("contents hold ", typed.size(), " ", datatype,
                                   " elements, the shape says ", *count));
  }
  out.assign(typed.begin(), typed.end());
  return out;
}

}  // namespace

absl::StatusOr<std::vector<InputTensor>> CollectInputTensors(
    const inference::ModelInferRequest& request) {
  std::vector<InputTensor> out;
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != request.inputs_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw_input_contents has ", request.raw_input_contents_size(),
                     " entries for ", request.inputs_size(), " inputs; it needs one per input"));
  }
  for (int i = 0; i < request.inputs_size(); ++i) {
    const InferInputTensor& t = request.inputs(i);
    if (raw && HasTypedContents(t.contents())) {
      return Invalid(t, "has typed contents while the request uses raw_input_contents");
    }
    out.push_back({&t, raw ? &request.raw_input_contents(i) : nullptr});
  }
  return out;
}

absl::StatusOr<int64_t> ElementCount(const InferInputTensor& tensor) {
  int64_t count = 1;
  for (int64_t d : tensor.shape()) {
    if (d < 0) return Invalid(tensor, absl::StrCat("shape has a negative dimension ", d));
    if (d != 0 && count > std::numeric_limits<int32_t>::max() / d) {
      return Invalid(tensor, "shape has too many elements");
    }
    count *= d;
  }
  return count;
}

absl::StatusOr<std::vector<std::string>> DecodeBytes(const InputTensor& input) {
  absl::StatusOr<int64_t> count = CheckDatatype(input, "BYTES");
  if (!count.ok()) return count.status();
  const InferInputTensor& t = *input.tensor;
  if (input.raw == nullptr) {
    if (t.contents().bytes_contents_size() != *count) {
      return Invalid(t, absl::StrCat("contents hold ", t.contents().bytes_contents_size(),
                                     " BYTES elements, the shape says ", *count));
    }
    return std::vector<std::string>(t.contents().bytes_contents().begin(),
                                    t.contents().bytes_contents().end());
  }
  absl::StatusOr<std::vector<std::string>> out = DecodeRawBytes(t.name(), *input.raw);
  if (!out.ok()) return out.status();
  if (static_cast<int64_t>(out->size()) != *count) {
    return Invalid(t, absl::StrCat("raw_input_contents holds ", out->size(),
                                   " BYTES elements, the shape says ", *count));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> DecodeRawBytes(absl::string_view name,
                                                        absl::string_view raw) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input ", QuoteForError(name), ": raw BYTES contents end inside a 4-byte length prefix"));
    }
    const uint64_t len = LoadLe(raw.data() + pos, 4);
    pos += 4;
    if (len > raw.size() - pos) {
      return absl::InvalidArgumentError(absl::StrCat("input ", QuoteForError(name), ": raw BYTES element ",
                                                     out.size(), " claims ", len, " bytes, only ",
                                                     raw.size() - pos, " remain"));
    }
    out.emplace_back(raw.substr(pos, len));
    pos += len;
  }
  return out;
}

absl::StatusOr<std::vector<bool>> DecodeBool(const InputTensor& input) {
  return DecodeFixed<bool>(input, "BOOL", 1, input.tensor->contents().bool_contents(),
                           [](uint64_t b) { return b != 0; });
}

absl::StatusOr<std::vector<int32_t>> DecodeInt32(const InputTensor& input) {
  return DecodeFixed<int32_t>(input, "INT32", 4, input.tensor->contents().int_contents(),
                              [](uint64_t b) { return static_cast<int32_t>(static_cast<uint32_t>(b)); });
}

absl::StatusOr<std::vector<uint64_t>> DecodeUint64(const InputTensor& input) {
  return DecodeFixed<uint64_t>(input, "UINT64", 8, input.tensor->contents().uint64_contents(),
                               [](uint64_t b) { return b; });
}

absl::StatusOr<std::vector<float>> DecodeFp32(const InputTensor& input) {
  return DecodeFixed<float>(input, "FP32", 4, input.tensor->contents().fp32_contents(),
                            [](uint64_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b)); });
}

std::string EncodeRawBytes(const std::vector<std::string>& elements) {
  std::string out;
  for (const std::string& e : elements) {
    StoreLe(e.size(), 4, &out);
    out += e;
  }
  return out;
}

std::string EncodeRawUint32(const std::vector<uint32_t>& elements) {
  std::string out;
  for (uint32_t e : elements) StoreLe(e, 4, &out);
  return out;
}

std::string EncodeRawInt32(const std::vector<int32_t>& elements) {
  std::string out;
  for (int32_t e : elements) StoreLe(static_cast<uint32_t>(e), 4, &out);
  return out;
}

std::string EncodeRawUint64(const std::vector<uint64_t>& elements) {
  std::string out;
  for (uint64_t e : elements) StoreLe(e, 8, &out);
  return out;
}

std::string EncodeRawFp32(const std::vector<float>& elements) {
  std::string out;
  for (float e : elements) StoreLe(std::bit_cast<uint32_t>(e), 4, &out);
  return out;
}

std::string EncodeRawBool(const std::vector<bool>& elements) {
  std::string out;
  for (bool e : elements) out.push_back(e ? 1 : 0);
  return out;
}

void AddRawOutput(absl::string_view name, absl::string_view datatype,
                  const std::vector<int64_t>& shape, std::string raw,
                  inference::ModelInferResponse* response) {
  inference::ModelInferResponse::InferOutputTensor* out = response->add_outputs();
  out->set_name(std::string(name));
  out->set_datatype(std::string(datatype));
  for (int64_t d : shape) out->add_shape(d);
  response->add_raw_output_contents(std::move(raw));
}

}  // namespace strata::coordinator::frontend
