// A real KServe + strata.v1 frontend over an echo backend, for the
// tritonclient compatibility test (tritonclient_test.py). The "completion" of
// every request is a JSON summary of the GenerationRequest the frontend built,
// in three chunks, so a Python client can check the parsing end to end.
//
// Prints "PORT <n>" once serving on 127.0.0.1 and runs until its stdin closes.
#include <cstdio>
#include <iostream>
#include <string>

#include <grpcpp/grpcpp.h>

#include "coordinator/frontend/kserve_service.h"
#include "coordinator/frontend/strata_service.h"
#include "nlohmann/json.hpp"
#include "tests/coordinator/frontend/fake_backend.h"

namespace strata::coordinator::testing {
namespace {

class EchoBackend : public FakeBackend {
 public:
  absl::StatusOr<std::shared_ptr<RequestStream>> Submit(absl::string_view model,
                                                        GenerationRequest request) override {
    nlohmann::json j;
    j["prompt"] = tokenizer().Decode(request.prompt, /*skip_special=*/false);
    j["prompt_tokens"] = request.prompt.size();
    j["request_id"] = request.request_id;
    j["max_tokens"] = request.max_tokens;
    j["temperature"] = request.sampling.temperature;
    j["top_k"] = request.sampling.top_k;
    j["top_p"] = request.sampling.top_p;
    j["min_p"] = request.sampling.min_p;
    j["repetition_penalty"] = request.sampling.repetition_penalty;
    j["presence_penalty"] = request.sampling.presence_penalty;
    j["frequency_penalty"] = request.sampling.frequency_penalty;
    j["seed"] = request.sampling.seed.has_value() ? nlohmann::json(*request.sampling.seed)
                                                  : nlohmann::json();
    j["stop"] = request.stop;
    j["stop_token_ids"] = request.stop_token_ids;
    j["ignore_eos"] = request.ignore_eos;
    j["skip_special_tokens"] = request.skip_special_tokens;
    j["has_deadline"] = request.deadline != absl::InfiniteFuture();
    const std::string text = j.dump();
    const size_t third = text.size() / 3;
    Script s;
    s.chunks = {Chunk(text.substr(0, third), {1}, FinishReason::kNone, 1),
                Chunk(text.substr(third, third), {2}, FinishReason::kNone, 2),
                Chunk(text.substr(2 * third), {3}, FinishReason::kStop, 3)};
    QueueScript(std::move(s));
    return FakeBackend::Submit(model, std::move(request));
  }
};

int Main() {
  EchoBackend backend;
  KServeService kserve(&backend);
  StrataService native(&backend);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&kserve);
  builder.RegisterService(&native);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port <= 0) {
    std::fprintf(stderr, "fake_frontend_server: could not start a server\n");
    return 1;
  }
  std::printf("PORT %d\n", port);
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace
}  // namespace strata::coordinator::testing

int main() { return strata::coordinator::testing::Main(); }
