// RequestOutput against the real default model's tokenizer: chunks concatenate
// to the detokenized text, stop strings cut the output exactly (never sent,
// even when split across tokens), held-back text is released when it cannot
// become a stop string.
#include "coordinator/request_output.h"

#include <string>

#include "coordinator/model_metadata.h"
#include "gtest/gtest.h"

namespace strata::coordinator {
namespace {

const ModelMetadata& Meta() {
  static auto* meta = [] {
    auto m = LoadModelMetadata(STRATA_DEFAULT_MODEL);
    EXPECT_TRUE(m.ok()) << m.status();
    return m->release();
  }();
  return *meta;
}

struct FedText {
  std::string text;
  FinishReason finish = FinishReason::kNone;
  int32_t tokens = 0;
};

// Feeds the tokens of `text` one by one; finishes with kLength when no stop matched.
FedText Feed(const std::string& text, std::vector<std::string> stop) {
  const Tokenizer& tok = *Meta().tokenizer;
  GenerationRequest req;
  req.prompt = {1, 2, 3};
  req.stop = std::move(stop);
  RequestOutput out(&tok, req);
  std::vector<int32_t> ids = tok.Encode(text, false, false);
  FedText run;
  for (size_t i = 0; i < ids.size(); ++i) {
    GenerationChunk c;
    if (i + 1 == ids.size()) {
      c = out.Finish(FinishReason::kLength, ids[i], 0);
    } else {
      bool stopped = false;
      c = out.Append(ids[i], 0, &stopped);
      EXPECT_EQ(stopped, c.finish == FinishReason::kStop);
    }
    EXPECT_EQ(c.prompt_tokens, 3);
    run.text += c.text;
    run.tokens += static_cast<int32_t>(c.token_ids.size());
    if (c.finish != FinishReason::kNone) {
      run.finish = c.finish;
      break;
    }
  }
  return run;
}

TEST(RequestOutputTest, ChunksConcatenateToTheText) {
  const std::string text = "Hello world, naïve café — 42 tokens of ünïcode.";
  FedText r = Feed(text, {});
  EXPECT_EQ(r.text, text);
  EXPECT_EQ(r.finish, FinishReason::kLength);
}

TEST(RequestOutputTest, StopStringCutsAndIsNotSent) {
  FedText r = Feed("The answer is 42. Then more text follows here.", {"42."});
  EXPECT_EQ(r.text, "The answer is ");
  EXPECT_EQ(r.finish, FinishReason::kStop);
}

TEST(RequestOutputTest, EarliestOfSeveralStopStringsWins) {
  FedText r = Feed("alpha beta gamma delta", {"delta", "beta"});
  EXPECT_EQ(r.text, "alpha ");
  EXPECT_EQ(r.finish, FinishReason::kStop);
}

TEST(RequestOutputTest, PartialStopPrefixIsReleasedWhenItDoesNotMatch) {
  // "lo" could start "lol!" but the text goes on differently: nothing is lost.
  FedText r = Feed("hello lot of words", {"lol!"});
  EXPECT_EQ(r.text, "hello lot of words");
  EXPECT_EQ(r.finish, FinishReason::kLength);
}

TEST(RequestOutputTest, StopStringsCountOnlyFromMinTokensOn) {
  const Tokenizer& tok = *Meta().tokenizer;
  GenerationRequest req;
  req.prompt = {1};
  req.stop = {"cat"};
  req.min_tokens = 100;
  RequestOutput out(&tok, req);
  std::string sent;
  for (int32_t id : tok.Encode("the cat sat", false, false)) {
    bool stopped = false;
    sent += out.Append(id, 0, &stopped).text;
    EXPECT_FALSE(stopped);
  }
  EXPECT_EQ(sent + out.Finish(FinishReason::kLength).text, "the cat sat");
}

TEST(RequestOutputTest, HeldBackTextIsNotEmittedEarly) {
  const Tokenizer& tok = *Meta().tokenizer;
  GenerationRequest req;
  req.prompt = {1};
  req.stop = {"END!"};
  req.logprobs = true;
  RequestOutput out(&tok, req);
  std::vector<int32_t> ids = tok.Encode("abc EN", false, false);
  std::string sent;
  for (int32_t id : ids) {
    bool stopped = false;
    GenerationChunk c = out.Append(id, -0.5f, &stopped);
    ASSERT_FALSE(stopped);
    ASSERT_EQ(c.logprobs.size(), 1u);
    EXPECT_FLOAT_EQ(c.logprobs[0], -0.5f);
    sent += c.text;
  }
  EXPECT_EQ(sent, "abc ");  // "EN" may still become "END!": held back
  GenerationChunk last = out.Finish(FinishReason::kLength);
  EXPECT_EQ(sent + last.text, "abc EN");
  EXPECT_EQ(last.completion_tokens, static_cast<int32_t>(ids.size()));
}

}  // namespace
}  // namespace strata::coordinator
