// strata generate: stream a completion of a prompt to stdout.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/incremental_detokenizer.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "worker/engine.h"

namespace strata {

namespace {

absl::StatusOr<KvDtype> ParseKvDtype(const std::string& s) {
  if (s == "f16") return KvDtype::kF16;
  if (s == "f32") return KvDtype::kF32;
  if (s == "fp8") return KvDtype::kFp8E4M3;
  if (s == "int8") return KvDtype::kInt8;
  if (s == "bf16") return KvDtype::kBF16;
  if (s == "fp8-unscaled") return KvDtype::kFp8E4M3Unscaled;
  return absl::InvalidArgumentError(
      absl::StrCat("--kv-dtype: '", s, "' is not one of f16, f32, bf16, fp8, fp8-unscaled, int8"));
}

absl::StatusOr<SamplingParams> SamplingFromFlags(const CliFlags& f) {
  SamplingParams s;
  ASSIGN_OR_RETURN(double temperature, f.GetDouble("temperature", 0.8));
  ASSIGN_OR_RETURN(int64_t top_k, f.GetInt("top-k", 40));
  ASSIGN_OR_RETURN(double top_p, f.GetDouble("top-p", 0.95));
  ASSIGN_OR_RETURN(double min_p, f.GetDouble("min-p", 0.05));
  ASSIGN_OR_RETURN(double rep, f.GetDouble("repeat-penalty", 1.0));
  ASSIGN_OR_RETURN(double presence, f.GetDouble("presence-penalty", 0.0));
  ASSIGN_OR_RETURN(double frequency, f.GetDouble("frequency-penalty", 0.0));
  ASSIGN_OR_RETURN(int64_t last_n, f.GetInt("repeat-last-n", 64));
  s.temperature = static_cast<float>(temperature);
  s.top_k = static_cast<int>(top_k);
  s.top_p = static_cast<float>(top_p);
  s.min_p = static_cast<float>(min_p);
  s.repetition_penalty = static_cast<float>(rep);
  s.presence_penalty = static_cast<float>(presence);
  s.frequency_penalty = static_cast<float>(frequency);
  s.penalty_last_n = static_cast<int>(last_n);
  if (f.Has("seed")) {
    ASSIGN_OR_RETURN(int64_t seed, f.GetInt("seed", 0));
    s.seed = static_cast<uint64_t>(seed);
  }
  RETURN_IF_ERROR(ValidateSamplingParams(s));
  return s;
}

}  // namespace

// Shared by the subcommands that load a model.
absl::StatusOr<EngineConfig> EngineConfigFromFlags(const CliFlags& f) {
  EngineConfig c;
  c.model_path = ResolveModelPath(f.Get("model", "default"));
  const int64_t hw = std::max(1u, std::thread::hardware_concurrency());
  ASSIGN_OR_RETURN(int64_t threads, f.GetInt("threads", hw));
  if (threads < 1 || threads > 256) return absl::InvalidArgumentError("--threads must be in [1, 256]");
  c.threads = static_cast<int>(threads);
  ASSIGN_OR_RETURN(c.max_context, f.GetInt("ctx-size", 0));
  ASSIGN_OR_RETURN(c.kv_dtype, ParseKvDtype(f.Get("kv-dtype", "f16")));
  return c;
}

absl::Status Generate(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(CliFlags f,
                   CliFlags::Parse(args,
                                   {"model", "prompt", "prompt-tokens", "system", "max-tokens", "temperature",
                                    "top-k", "top-p", "min-p", "repeat-penalty", "presence-penalty",
                                    "frequency-penalty", "repeat-last-n", "seed", "threads", "ctx-size",
                                    "kv-dtype", "stop-token-ids"},
                                   {"chat", "print-token-ids", "ignore-eos"}));
  if (f.Has("prompt") == f.Has("prompt-tokens")) {
    return absl::InvalidArgumentError("give exactly one of --prompt TEXT or --prompt-tokens IDS");
  }
  ASSIGN_OR_RETURN(EngineConfig ec, EngineConfigFromFlags(f));
  GenerateRequest req;
  ASSIGN_OR_RETURN(req.sampling, SamplingFromFlags(f));
  ASSIGN_OR_RETURN(int64_t max_tokens, f.GetInt("max-tokens", 128));
  if (max_tokens < 0) return absl::InvalidArgumentError("--max-tokens must be >= 0");
  req.max_tokens = static_cast<int32_t>(max_tokens);
  req.stop_at_eog = !f.Has("ignore-eos");
  ASSIGN_OR_RETURN(req.stop_token_ids, f.GetIntList("stop-token-ids"));
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(ec));
  const Tokenizer& tok = engine->tokenizer();
  if (f.Has("prompt-tokens")) {
    ASSIGN_OR_RETURN(req.prompt, f.GetIntList("prompt-tokens"));
  } else if (f.Has("chat")) {
    ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::FromJinja(tok.chat_template()));
    std::vector<ChatMessage> messages;
    if (f.Has("system")) messages.push_back({"system", f.Get("system", "")});
    messages.push_back({"user", f.Get("prompt", "")});
    // As the coordinator encodes chats: the template's markup with special
    // tokens, the messages' text without (docs/protocol.md).
    const std::vector<ChatSegment> rendered = tmpl.Render(messages, /*add_generation_prompt=*/true);
    std::vector<TextSegment> segments;
    for (const ChatSegment& s : rendered) segments.push_back({s.text, /*parse_special=*/s.is_markup});
    ASSIGN_OR_RETURN(req.prompt, tok.EncodeSegments(segments, /*add_special=*/true, EncodeLimits{}));
  } else {
    req.prompt = tok.Encode(f.Get("prompt", ""), /*add_special=*/true, /*parse_special=*/false);
  }
  if (req.prompt.empty()) return absl::InvalidArgumentError("the prompt encodes to no tokens");
  if (!f.Has("max-tokens")) {
    // No explicit limit: generate at most what fits in the context. An
    // explicit --max-tokens that does not fit is refused by the engine.
    const int64_t room = engine->max_context() - static_cast<int64_t>(req.prompt.size());
    req.max_tokens = static_cast<int32_t>(std::clamp<int64_t>(room, 0, req.max_tokens));
    if (room <= 0) req.max_tokens = 1;  // let the engine report the context limit
  }
  const bool print_ids = f.Has("print-token-ids");
  IncrementalDetokenizer detok(&tok, /*skip_special=*/true);
  std::vector<int32_t> ids;
  auto on_token = [&](size_t, int32_t id) {
    if (print_ids) {
      ids.push_back(id);
    } else if (!(req.stop_at_eog && tok.IsEndOfGeneration(id)) &&
               std::find(req.stop_token_ids.begin(), req.stop_token_ids.end(), id) == req.stop_token_ids.end()) {
      const std::string text = detok.Push(id);
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  ASSIGN_OR_RETURN(std::vector<GenerateResult> results, engine->Generate({req}, on_token));
  if (print_ids) {
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
    std::printf("\n");
  } else {
    const std::string rest = detok.Flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::printf("\n");
  }
  std::fflush(stdout);
  const GenerateResult& r = results[0];
  const double decode_tps = r.tokens.size() > 1 ? (r.tokens.size() - 1) / r.decode_s : 0.0;
  std::fprintf(stderr, "%s\n",
               absl::StrFormat("prompt tokens: %d, generated tokens: %d, time to first token: %.1f ms, "
                               "decode: %.1f tokens/s (%d threads)",
                               req.prompt.size(), r.tokens.size(), r.ttft_s * 1e3, decode_tps, ec.threads)
                   .c_str());
  return absl::OkStatus();
}

int RunGenerate(const std::vector<std::string>& args) {
  absl::Status st = Generate(args);
  if (!st.ok()) {
    std::fprintf(stderr, "strata generate: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace strata
