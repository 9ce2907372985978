// The tensors every Strata model declares on the KServe v2 API: the inputs
// and outputs of Triton's vLLM and TensorRT-LLM backends (both conventions at
// once), used by ModelMetadata, ModelConfig and the request parser, so the
// three cannot disagree.
//
// Thread ownership: immutable tables.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "inference/grpc_service.pb.h"
#include "inference/model_config.pb.h"

namespace strata::coordinator::frontend {

struct TensorSpec {
  const char* name;
  const char* datatype;           // KServe spelling: "BYTES", "INT32", ...
  inference::DataType data_type;  // model_config spelling: TYPE_STRING, TYPE_INT32, ...
  int64_t dim;                    // 1: one element; -1: any number of elements
  bool optional;
};

// Input and output names the frontend understands.
const std::vector<TensorSpec>& KServeInputs();
const std::vector<TensorSpec>& KServeOutputs();
// Null when `name` is not declared.
const TensorSpec* FindInput(absl::string_view name);
const TensorSpec* FindOutput(absl::string_view name);

void FillModelMetadata(const std::string& model_name, inference::ModelMetadataResponse* out);
void FillModelConfig(const std::string& model_name, inference::ModelConfig* out);

}  // namespace strata::coordinator::frontend
