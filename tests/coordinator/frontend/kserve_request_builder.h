// Builds ModelInferRequests the way tritonclient does (raw_input_contents, its
// default) or with typed contents, and reads responses' raw outputs back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/frontend/kserve_tensor_codec.h"
#include "inference/grpc_service.pb.h"

namespace strata::coordinator::testing {

class InferRequestBuilder {
 public:
  explicit InferRequestBuilder(bool raw, std::string model = "tiny") : raw_(raw) {
    request_.set_model_name(std::move(model));
  }
  InferRequestBuilder& Id(std::string id) {
    request_.set_id(std::move(id));
    return *this;
  }
  InferRequestBuilder& Text(std::string text) { return Bytes("text_input", {std::move(text)}); }
  InferRequestBuilder& Bytes(const std::string& name, std::vector<std::string> v,
                             std::vector<int64_t> shape = {}) {
    auto* t = Add(name, "BYTES", shape.empty() ? std::vector<int64_t>{int64_t(v.size())} : shape);
    if (raw_) {
      request_.add_raw_input_contents(frontend::EncodeRawBytes(v));
    } else {
      for (auto& s : v) t->mutable_contents()->add_bytes_contents(s);
    }
    return *this;
  }
  InferRequestBuilder& Bool(const std::string& name, bool v) {
    auto* t = Add(name, "BOOL", {1});
    if (raw_) request_.add_raw_input_contents(frontend::EncodeRawBool({v}));
    else t->mutable_contents()->add_bool_contents(v);
    return *this;
  }
  InferRequestBuilder& Int32(const std::string& name, int32_t v) {
    auto* t = Add(name, "INT32", {1});
    if (raw_) request_.add_raw_input_contents(frontend::EncodeRawInt32({v}));
    else t->mutable_contents()->add_int_contents(v);
    return *this;
  }
  InferRequestBuilder& Uint64(const std::string& name, uint64_t v) {
    auto* t = Add(name, "UINT64", {1});
    if (raw_) request_.add_raw_input_contents(frontend::EncodeRawUint64({v}));
    else t->mutable_contents()->add_uint64_contents(v);
    return *this;
  }
  InferRequestBuilder& Fp32(const std::string& name, float v) {
    auto* t = Add(name, "FP32", {1});
    if (raw_) request_.add_raw_input_contents(frontend::EncodeRawFp32({v}));
    else t->mutable_contents()->add_fp32_contents(v);
    return *this;
  }
  InferRequestBuilder& BoolParam(const std::string& name, bool v) {
    (*request_.mutable_parameters())[name].set_bool_param(v);
    return *this;
  }
  InferRequestBuilder& StringParam(const std::string& name, std::string v) {
    (*request_.mutable_parameters())[name].set_string_param(std::move(v));
    return *this;
  }
  InferRequestBuilder& Int64Param(const std::string& name, int64_t v) {
    (*request_.mutable_parameters())[name].set_int64_param(v);
    return *this;
  }
  InferRequestBuilder& Output(const std::string& name) {
    request_.add_outputs()->set_name(name);
    return *this;
  }
  inference::ModelInferRequest& request() { return request_; }
  inference::ModelInferRequest Build() const { return request_; }

 private:
  inference::ModelInferRequest::InferInputTensor* Add(const std::string& name,
                                                      const std::string& datatype,
                                                      const std::vector<int64_t>& shape) {
    auto* t = request_.add_inputs();
    t->set_name(name);
    t->set_datatype(datatype);
    for (int64_t d : shape) t->add_shape(d);
    return t;
  }
  bool raw_;
  inference::ModelInferRequest request_;
};

// Index of output `name`, or -1.
inline int OutputIndex(const inference::ModelInferResponse& r, const std::string& name) {
  for (int i = 0; i < r.outputs_size(); ++i) {
    if (r.outputs(i).name() == name) return i;
  }
  return -1;
}

// The single BYTES element of output `name`; nullopt when absent or malformed.
inline std::optional<std::string> OutputText(const inference::ModelInferResponse& r,
                                             const std::string& name = "text_output") {
  const int i = OutputIndex(r, name);
  if (i < 0 || i >= r.raw_output_contents_size()) return std::nullopt;
  auto v = frontend::DecodeRawBytes(name, r.raw_output_contents(i));
  if (!v.ok() || v->size() != 1) return std::nullopt;
  return (*v)[0];
}

inline std::optional<uint32_t> OutputUint32(const inference::ModelInferResponse& r,
                                            const std::string& name) {
  const int i = OutputIndex(r, name);
  if (i < 0 || i >= r.raw_output_contents_size()) return std::nullopt;
  const std::string& raw = r.raw_output_contents(i);
  if (raw.size() != 4 || r.outputs(i).datatype() != "UINT32") return std::nullopt;
  uint32_t v = 0;
  for (int b = 3; b >= 0; --b) v = (v << 8) | static_cast<uint8_t>(raw[b]);
  return v;
}

// triton_final_response, or nullopt when the parameter is absent.
inline std::optional<bool> FinalFlag(const inference::ModelInferResponse& r) {
  auto it = r.parameters().find("triton_final_response");
  if (it == r.parameters().end()) return std::nullopt;
  return it->second.bool_param();
}

}  // namespace strata::coordinator::testing
