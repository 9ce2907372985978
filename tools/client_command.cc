// `strata client`: streams a completion from a running coordinator over the
// native strata.v1 API (Generate), printing text as it arrives.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/net/transport_security.h"
#include "grpcpp/grpcpp.h"
#include "strata/v1/strata.grpc.pb.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace strata {

namespace {

int ClientUsage() {
  std::fprintf(stderr,
               "usage: strata client [--address 127.0.0.1:8001] [--model NAME] (--prompt TEXT | --chat TEXT)\n"
               "         [--system TEXT] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
               "         [--stop TEXT] [--ignore-eos] [--print-token-ids] [--timeout-s S]\n"
               "         [--tls-ca PEM [--tls-cert PEM --tls-key PEM] [--tls-server-name NAME]]\n"
               "         [--api-key-file FILE] (or $STRATA_API_KEY)\n");
  return 2;
}

}  // namespace

int RunClient(const std::vector<std::string>& args) {
  auto f = CliFlags::Parse(args,
                           {"address", "model", "prompt", "chat", "system", "max-tokens", "temperature", "top-k",
                            "top-p", "seed", "stop", "timeout-s", "tls-ca", "tls-cert", "tls-key",
                            "tls-server-name", "api-key-file"},
                           {"ignore-eos", "print-token-ids"});
  if (!f.ok()) {
    std::fprintf(stderr, "strata client: %s\n", std::string(f.status().message()).c_str());
    return ClientUsage();
  }
  if (f->Has("prompt") == f->Has("chat")) {
    std::fprintf(stderr, "strata client: give exactly one of --prompt and --chat\n");
    return ClientUsage();
  }
  strata::v1::GenerateRequest req;
  req.set_model(f->Get("model", ""));
  if (f->Has("prompt")) {
    req.set_text(f->Get("prompt", ""));
  } else {
    auto* chat = req.mutable_chat();
    if (f->Has("system")) {
      auto* m = chat->add_messages();
      m->set_role("system");
      m->set_content(f->Get("system", ""));
    }
    auto* m = chat->add_messages();
    m->set_role("user");
    m->set_content(f->Get("chat", ""));
  }
  auto max_tokens = f->GetInt("max-tokens", 128);
  auto temperature = f->GetDouble("temperature", 0.0);
  auto top_k = f->GetInt("top-k", 0);
  auto top_p = f->GetDouble("top-p", 1.0);
  auto timeout = f->GetDouble("timeout-s", 300);
  for (const absl::Status& s : {max_tokens.status(), temperature.status(), top_k.status(), top_p.status(),
                                timeout.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "strata client: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  if (*max_tokens < 0) {
    std::fprintf(stderr, "strata client: --max-tokens must be >= 0\n");
    return 2;
  }
  req.set_max_tokens(static_cast<uint32_t>(*max_tokens));
  req.mutable_sampling()->set_temperature(static_cast<float>(*temperature));
  req.mutable_sampling()->set_top_k(static_cast<int32_t>(*top_k));
  req.mutable_sampling()->set_top_p(static_cast<float>(*top_p));
  if (f->Has("seed")) {
    auto seed = f->GetInt("seed", 0);
    if (!seed.ok()) {
      std::fprintf(stderr, "strata client: %s\n", std::string(seed.status().message()).c_str());
      return 2;
    }
    req.mutable_sampling()->set_seed(static_cast<uint64_t>(*seed));
  }
  if (f->Has("stop")) req.add_stop(f->Get("stop", ""));
  req.set_ignore_eos(f->Has("ignore-eos"));

  net::ChannelSecurity security;
  security.files = {f->Get("tls-cert", ""), f->Get("tls-key", ""), f->Get("tls-ca", "")};
  security.server_name = f->Get("tls-server-name", "");
  auto credentials = net::MakeChannelCredentials(security, "--tls");
  if (!credentials.ok()) {
    std::fprintf(stderr, "strata client: %s\n", std::string(credentials.status().message()).c_str());
    return 2;
  }
  // The API key: from a file (first line) so it stays out of `ps`, or the
  // environment; never printed.
  std::string api_key;
  if (f->Has("api-key-file")) {
    std::ifstream in(f->Get("api-key-file", ""));
    if (!in || !std::getline(in, api_key)) {
      std::fprintf(stderr, "strata client: --api-key-file %s: cannot read a key\n",
                   f->Get("api-key-file", "").c_str());
      return 2;
    }
    api_key = std::string(absl::StripAsciiWhitespace(api_key));
  } else if (const char* env = std::getenv("STRATA_API_KEY"); env != nullptr) {
    api_key = env;
  }
  grpc::ChannelArguments channel_args;
  net::AddChannelArguments(security, &channel_args);
  auto channel = grpc::CreateCustomChannel(f->Get("address", "127.0.0.1:8001"), *credentials, channel_args);
  auto stub = strata::v1::Strata::NewStub(channel);
  grpc::ClientContext ctx;
  if (!api_key.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", api_key));
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(*timeout * 1000)));
  auto reader = stub->Generate(&ctx, req);
  strata::v1::GenerateResponse chunk;
  std::vector<int32_t> ids;
  strata::v1::GenerateResponse last;
  while (reader->Read(&chunk)) {
    std::fwrite(chunk.text().data(), 1, chunk.text().size(), stdout);
    std::fflush(stdout);
    ids.insert(ids.end(), chunk.token_ids().begin(), chunk.token_ids().end());
    last = chunk;
  }
  grpc::Status st = reader->Finish();
  std::printf("\n");
  if (!st.ok()) {
    std::fprintf(stderr, "strata client: %s (gRPC code %d)\n", st.error_message().c_str(),
                 static_cast<int>(st.error_code()));
    return 1;
  }
  if (f->Has("print-token-ids")) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&s, i ? "," : "", ids[i]);
    std::printf("token_ids: %s\n", s.c_str());
  }
  std::fprintf(stderr, "[%u prompt + %u generated tokens, finish: %s]\n", last.usage().prompt_tokens(),
               last.usage().completion_tokens(), strata::v1::FinishReason_Name(last.finish_reason()).c_str());
  return 0;
}

}  // namespace strata
