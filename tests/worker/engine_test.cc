// The engine on the real default model: batched generation gives each
// sequence the same tokens as running it alone, seeds reproduce, stops and
// limits are honoured, bad requests are refused with a clear status.
#include "worker/engine.h"

#include "common/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace strata {
namespace {

std::unique_ptr<Engine> MakeEngine(int32_t max_sequences, int threads = 2) {
  const std::string path = STRATA_DEFAULT_MODEL;
  if (!std::ifstream(path).good()) {
    if (std::getenv("CI")) {
      ADD_FAILURE() << "default model missing at " << path << " (run scripts/install_deps.sh)";
    }
    return nullptr;
  }
  EngineConfig c;
  c.model_path = path;
  c.threads = threads;
  c.max_context = 256;
  c.max_sequences = max_sequences;
  auto e = Engine::Create(c);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

#define REQUIRE_ENGINE(e)                                                      \
  if (!(e)) {                                                                  \
    GTEST_SKIP() << "default model not installed (scripts/install_deps.sh)"; \
  }

GenerateRequest Request(const Engine& e, const std::string& text, int max_tokens) {
  GenerateRequest r;
  r.prompt = e.tokenizer().Encode(text, true, false);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  return r;
}

TEST(Engine, BatchedGenerationMatchesSequential) {
  auto e = MakeEngine(3);
  REQUIRE_ENGINE(e);
  std::vector<GenerateRequest> reqs = {Request(*e, "The capital of France is", 12),
                                       Request(*e, "Once upon a time, in a small village by the sea,", 20),
                                       Request(*e, "def add(a, b):", 7)};
  reqs[2].stop_at_eog = false;
  std::vector<std::vector<int32_t>> alone;
  for (const auto& r : reqs) {
    auto res = e->Generate({r}, nullptr);
    ASSERT_TRUE(res.ok()) << res.status();
    alone.push_back((*res)[0].tokens);
  }
  std::vector<std::vector<int32_t>> streamed(3);
  auto res = e->Generate(reqs, [&](size_t i, int32_t t) {
    streamed[i].push_back(t);
    return true;
  });
  ASSERT_TRUE(res.ok()) << res.status();
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ((*res)[i].tokens, alone[i]) << "request " << i;
    EXPECT_EQ(streamed[i], alone[i]) << "request " << i;
  }
  EXPECT_EQ((*res)[2].tokens.size(), 7u);
  EXPECT_EQ((*res)[2].finish, FinishReason::kLength);
}

TEST(Engine, SameSeedSameTokensDifferentSeedDifferentTokens) {
  auto e = MakeEngine(2);
  REQUIRE_ENGINE(e);
  GenerateRequest r = Request(*e, "Write a story about a robot:", 24);
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 42;
  r.stop_at_eog = false;
  auto a = e->Generate({r}, nullptr);
  auto b = e->Generate({r}, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0].tokens, (*b)[0].tokens);
  // The same seeded request next to another one: still the same tokens.
  GenerateRequest other = Request(*e, "Hello", 30);
  auto c = e->Generate({other, r}, nullptr);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[1].tokens, (*a)[0].tokens);
  r.sampling.seed = 43;
  auto d = e->Generate({r}, nullptr);
  ASSERT_TRUE(d.ok());
  EXPECT_NE((*d)[0].tokens, (*a)[0].tokens);
}

TEST(Engine, StopsAtEndOfGeneration) {
  auto e = MakeEngine(1);
  REQUIRE_ENGINE(e);
  // The model's own chat format: the answer ends in <|im_end|> well within
  // 200 tokens.
  auto tmpl = ChatTemplate::FromJinja(e->tokenizer().chat_template());
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  GenerateRequest r;
  r.prompt = e->tokenizer().Encode(tmpl->Apply({{"user", "Say hi."}}, true), true, true);
  r.max_tokens = 200;
  r.sampling.temperature = 0;
  auto res = e->Generate({r}, nullptr);
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_FALSE((*res)[0].tokens.empty());
  EXPECT_EQ((*res)[0].finish, FinishReason::kStop);
  EXPECT_TRUE(e->tokenizer().IsEndOfGeneration((*res)[0].tokens.back()));
  EXPECT_LT((*res)[0].tokens.size(), 200u);
}

TEST(Engine, StopsAtRequestedStopToken) {
  auto e = MakeEngine(1);
  REQUIRE_ENGINE(e);
  GenerateRequest r = Request(*e, "The capital of France is", 30);
  r.stop_at_eog = false;
  auto full = e->Generate({r}, nullptr);
  ASSERT_TRUE(full.ok());
  ASSERT_GE((*full)[0].tokens.size(), 4u);
  // Stop at the third generated token's id: generation ends right there.
  const int32_t stop = (*full)[0].tokens[2];
  r.stop_token_ids = {stop};
  auto res = e->Generate({r}, nullptr);
  ASSERT_TRUE(res.ok());
  const auto& toks = (*res)[0].tokens;
  ASSERT_FALSE(toks.empty());
  EXPECT_EQ(toks.back(), stop);
  EXPECT_LE(toks.size(), 3u);
  EXPECT_EQ((*res)[0].finish, FinishReason::kStop);
}

TEST(Engine, RefusesBadRequests) {
  auto e = MakeEngine(1);
  REQUIRE_ENGINE(e);
  GenerateRequest r = Request(*e, "hi", 10);
  r.prompt.assign(250, 100);
  auto res = e->Generate({r}, nullptr);
  EXPECT_EQ(res.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(res.status().message().find("context limit of 256"), absl::string_view::npos) << res.status();
  r = Request(*e, "hi", 10);
  r.sampling.top_p = 0;
  res = e->Generate({r}, nullptr);
  EXPECT_NE(res.status().message().find("top_p"), absl::string_view::npos) << res.status();
  r = Request(*e, "hi", 10);
  res = e->Generate({r, r}, nullptr);
  EXPECT_EQ(res.status().code(), absl::StatusCode::kResourceExhausted);
  r.prompt = {};
  EXPECT_FALSE(e->Generate({r}, nullptr).ok());
  r.prompt = {49152};
  EXPECT_FALSE(e->Generate({r}, nullptr).ok());
}

}  // namespace
}  // namespace strata
