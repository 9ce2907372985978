// strata eval-logits: logits of every position of a token list, written as
// raw little-endian f32 [n_tokens, vocab] (for reference comparisons; with
// --prefill N only the first N tokens share a pass and the rest are decoded
// one per pass, as generation does), and
// strata tokenize: print the ids of a text.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tokenizer/tokenizer.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "worker/engine.h"

namespace strata {

absl::StatusOr<EngineConfig> EngineConfigFromFlags(const CliFlags& f);

namespace {

absl::Status EvalLogits(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(CliFlags f, CliFlags::Parse(args, {"model", "tokens", "out", "threads", "ctx-size", "kv-dtype",
                                                      "prefill"}, {}));
  if (!f.Has("tokens") || !f.Has("out")) return absl::InvalidArgumentError("--tokens and --out are required");
  ASSIGN_OR_RETURN(std::vector<int32_t> tokens, f.GetIntList("tokens"));
  ASSIGN_OR_RETURN(EngineConfig ec, EngineConfigFromFlags(f));
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(ec));
  ASSIGN_OR_RETURN(int64_t prefill, f.GetInt("prefill", 0));
  if (prefill < 0) return absl::InvalidArgumentError("--prefill must be >= 0");
  ASSIGN_OR_RETURN(std::vector<float> logits, engine->EvalLogits(tokens, static_cast<size_t>(prefill)));
  const std::string out = f.Get("out", "");
  FILE* fp = std::fopen(out.c_str(), "wb");
  if (!fp) return absl::PermissionDeniedError(absl::StrCat("cannot write '", out, "'"));
  const size_t n = std::fwrite(logits.data(), sizeof(float), logits.size(), fp);
  const bool closed = std::fclose(fp) == 0;
  if (n != logits.size() || !closed) return absl::DataLossError(absl::StrCat("short write to '", out, "'"));
  return absl::OkStatus();
}

absl::Status Tokenize(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(CliFlags f, CliFlags::Parse(args, {"model", "text"}, {"special", "no-bos"}));
  ASSIGN_OR_RETURN(EngineConfig ec, EngineConfigFromFlags(f));
  ec.max_context = 16;  // no generation: keep the KV cache tiny
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(ec));
  const std::vector<int32_t> ids =
      engine->tokenizer().Encode(f.Get("text", ""), !f.Has("no-bos"), f.Has("special"));
  for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
  std::printf("\n");
  return absl::OkStatus();
}

}  // namespace

int RunEvalLogits(const std::vector<std::string>& args) {
  absl::Status st = EvalLogits(args);
  if (!st.ok()) {
    std::fprintf(stderr, "strata eval-logits: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}

int RunTokenize(const std::vector<std::string>& args) {
  absl::Status st = Tokenize(args);
  if (!st.ok()) {
    std::fprintf(stderr, "strata tokenize: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace strata
