// strata bench: prefill and decode speed of one sequence on a model, as the
// median over repeats, plus the decode figure as a fraction of the memory-
// bandwidth bound (weight bytes read per token / measured read bandwidth).
// Prints one JSON object on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "worker/engine.h"

namespace strata {

absl::StatusOr<EngineConfig> EngineConfigFromFlags(const CliFlags& f);

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]));
}

// Read bandwidth of `threads` threads streaming a buffer much larger than the
// caches (GB/s, best of 5).
double MeasureReadBandwidth(ThreadPool* pool) {
  const size_t n = size_t{512} << 20;  // bytes; far beyond the last-level cache
  std::vector<uint64_t> buf(n / 8, 1);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<uint64_t> sums(pool->num_threads(), 0);
    const auto t0 = std::chrono::steady_clock::now();
    pool->ParallelFor(static_cast<int64_t>(buf.size()), 4096, [&](int64_t b, int64_t e, int thread) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        s0 += buf[i];
        s1 += buf[i + 1];
        s2 += buf[i + 2];
        s3 += buf[i + 3];
      }
      for (; i < e; ++i) s0 += buf[i];
      sums[thread] += s0 + s1 + s2 + s3;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t total = 0;
    for (uint64_t x : sums) total += x;
    if (total != buf.size()) return 0;  // keeps the loads alive
    best = std::max(best, n / s / 1e9);
  }
  return best;
}

int64_t WeightBytesPerToken(const ModelWeights& w) {
  auto bytes = [](const WeightMatrix& m) { return m.rows * m.row_stride; };
  int64_t total = bytes(w.output);  // the LM head; the embedding row read is negligible
  for (const LayerWeights& l : w.layers) {
    total += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo) + bytes(l.w_gate) + bytes(l.w_up) +
             bytes(l.w_down);
  }
  return total;
}

absl::Status Bench(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(CliFlags f, CliFlags::Parse(args, {"model", "threads", "prompt-tokens", "gen-tokens",
                                                      "repeats", "ctx-size", "kv-dtype"},
                                               {"no-bandwidth"}));
  ASSIGN_OR_RETURN(EngineConfig ec, EngineConfigFromFlags(f));
  ASSIGN_OR_RETURN(int64_t prompt_len, f.GetInt("prompt-tokens", 128));
  ASSIGN_OR_RETURN(int64_t gen, f.GetInt("gen-tokens", 128));
  ASSIGN_OR_RETURN(int64_t repeats, f.GetInt("repeats", 5));
  if (prompt_len < 1 || gen < 2 || repeats < 1) {
    return absl::InvalidArgumentError("--prompt-tokens >= 1, --gen-tokens >= 2, --repeats >= 1");
  }
  if (ec.max_context == 0) ec.max_context = prompt_len + gen;
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(ec));
  // A fixed pseudo-random prompt of ordinary tokens.
  std::mt19937 rng(1234);
  const int32_t vocab = engine->tokenizer().vocab_size();
  GenerateRequest req;
  while (static_cast<int64_t>(req.prompt.size()) < prompt_len) {
    const int32_t t = static_cast<int32_t>(rng() % vocab);
    if (!engine->tokenizer().IsSpecial(t)) req.prompt.push_back(t);
  }
  req.max_tokens = static_cast<int32_t>(gen);
  req.stop_at_eog = false;
  req.sampling.temperature = 0;
  std::vector<double> prefill, decode;
  for (int64_t r = 0; r < repeats + 1; ++r) {
    ASSIGN_OR_RETURN(std::vector<GenerateResult> res, engine->Generate({req}, nullptr));
    if (r == 0) continue;  // warm-up: page in the weights
    prefill.push_back(prompt_len / res[0].ttft_s);
    decode.push_back((res[0].tokens.size() - 1) / res[0].decode_s);
  }
  const double bytes = static_cast<double>(WeightBytesPerToken(engine->weights()));
  double bw = 0;
  if (!f.Has("no-bandwidth")) {
    ASSIGN_OR_RETURN(auto pool, ThreadPool::Create(ec.threads));
    bw = MeasureReadBandwidth(pool.get());
  }
  const double dec = Median(decode);
  std::printf("%s\n", absl::StrFormat("{\"threads\": %d, \"prompt_tokens\": %d, \"gen_tokens\": %d, "
                                      "\"prefill_tok_s\": %.1f, \"decode_tok_s\": %.1f, "
                                      "\"weight_bytes_per_token\": %.0f, \"read_bw_gbs\": %.2f, "
                                      "\"decode_fraction_of_bw_bound\": %.3f}",
                                      ec.threads, prompt_len, gen, Median(prefill), dec, bytes, bw,
                                      bw > 0 ? dec * bytes / (bw * 1e9) : 0.0)
                          .c_str());
  return absl::OkStatus();
}

}  // namespace

int RunBench(const std::vector<std::string>& args) {
  absl::Status st = Bench(args);
  if (!st.ok()) {
    std::fprintf(stderr, "strata bench: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace strata
