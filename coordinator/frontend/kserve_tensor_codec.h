// KServe v2 tensor contents <-> C++ values.
//
// A ModelInferRequest input carries its elements either in the tensor's typed
// `contents` (bool_contents, int_contents, ...) or, as tritonclient does by
// default, in `raw_input_contents[i]` for inputs[i]: the elements packed
// little-endian, BOOL one byte each, BYTES elements each a 4-byte little-endian
// length followed by the bytes:
//
//   BYTES ["ab", "c"]  ->  02 00 00 00 'a' 'b' 01 00 00 00 'c'
//   INT32 [5]          ->  05 00 00 00
//
// Responses always use raw_output_contents (one per output, same encoding),
// which is what tritonclient's InferResult reads.
//
// Every error is INVALID_ARGUMENT naming the input tensor.
//
// Thread ownership: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "inference/grpc_service.pb.h"

namespace strata::coordinator::frontend {

// One input tensor and where its elements are: `raw` points at its
// raw_input_contents entry, or is null when the elements are typed contents.
struct InputTensor {
  const inference::ModelInferRequest::InferInputTensor* tensor = nullptr;
  const std::string* raw = nullptr;
};

// Pairs inputs with raw_input_contents. When raw_input_contents is used it
// must have one entry per input, and no input may also have typed contents.
absl::StatusOr<std::vector<InputTensor>> CollectInputTensors(
    const inference::ModelInferRequest& request);

// Product of the shape; negative dimensions are an error.
absl::StatusOr<int64_t> ElementCount(const inference::ModelInferRequest::InferInputTensor& tensor);

// Decoders: the tensor's datatype must be the one named (e.g. "INT32"), and
// its contents must hold exactly ElementCount elements.
absl::StatusOr<std::vector<std::string>> DecodeBytes(const InputTensor& input);
absl::StatusOr<std::vector<bool>> DecodeBool(const InputTensor& input);
absl::StatusOr<std::vector<int32_t>> DecodeInt32(const InputTensor& input);
absl::StatusOr<std::vector<uint64_t>> DecodeUint64(const InputTensor& input);
absl::StatusOr<std::vector<float>> DecodeFp32(const InputTensor& input);

// Encoders for raw_output_contents / raw_input_contents.
std::string EncodeRawBytes(const std::vector<std::string>& elements);
std::string EncodeRawUint32(const std::vector<uint32_t>& elements);
std::string EncodeRawInt32(const std::vector<int32_t>& elements);
std::string EncodeRawUint64(const std::vector<uint64_t>& elements);
std::string EncodeRawFp32(const std::vector<float>& elements);
std::string EncodeRawBool(const std::vector<bool>& elements);

// Appends an output {name, datatype, shape} to the response with its raw
// contents in the matching raw_output_contents entry.
void AddRawOutput(absl::string_view name, absl::string_view datatype,
                  const std::vector<int64_t>& shape, std::string raw,
                  inference::ModelInferResponse* response);

// Reads an output added by AddRawOutput back (tests, clients): the BYTES
// elements of the raw buffer. INVALID_ARGUMENT when malformed.
absl::StatusOr<std::vector<std::string>> DecodeRawBytes(absl::string_view name,
                                                        absl::string_view raw);

}  // namespace strata::coordinator::frontend
