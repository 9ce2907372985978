#include "coordinator/frontend/request_parse_errors.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace strata::coordinator::frontend {
namespace {

using grpc::experimental::InterceptionHookPoints;

class ParseErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit ParseErrorInterceptor(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::INTERNAL && status.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, Message()));
      }
    }
    methods->Proceed();
  }

 private:
  std::string Message() const {
    return absl::StrCat(
        "the request to ", method_,
        " is not a valid protobuf message: a string field (model, text, chat role or content, stop, "
        "request_id, parameter or tensor names, ...) holds invalid UTF-8, which proto3 strings may not, or "
        "the message is malformed; send text as UTF-8 (KServe BYTES tensors may carry any bytes)");
  }
  const std::string method_;
};

class ParseErrorInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    const std::string method = info->method() == nullptr ? "" : info->method();
    // Only Strata's client services; health and reflection keep gRPC's answers.
    if (!absl::StartsWith(method, "/inference.") && !absl::StartsWith(method, "/strata.v1.")) return nullptr;
    return new ParseErrorInterceptor(method);
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeRequestParseErrorInterceptorFactory() {
  return std::make_unique<ParseErrorInterceptorFactory>();
}

}  // namespace strata::coordinator::frontend
