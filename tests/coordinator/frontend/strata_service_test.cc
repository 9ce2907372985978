// strata.v1 frontend end to end: a real grpc::Server with StrataService over a
// FakeBackend, called through the generated stub. Proves the GenerateRequest
// -> GenerationRequest mapping for text, token ids and chat prompts, chunk and
// usage streaming, cancellation, Tokenize/Detokenize and ListModels.
#include <chrono>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/coordinator/frontend/test_server.h"

namespace strata::coordinator::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class StrataServiceTest : public FrontendServerTest {
 protected:
  void SetUp() override {
    FrontendServerTest::SetUp();
    stub_ = strata::v1::Strata::NewStub(channel_);
  }

  grpc::Status GenerateAll(const strata::v1::GenerateRequest& req,
                           std::vector<strata::v1::GenerateResponse>* out) {
    grpc::ClientContext ctx;
    Bound(ctx);
    auto reader = stub_->Generate(&ctx, req);
    strata::v1::GenerateResponse r;
    while (reader->Read(&r)) out->push_back(r);
    return reader->Finish();
  }

  std::unique_ptr<strata::v1::Strata::Stub> stub_;
};

TEST_F(StrataServiceTest, GenerateMapsTheRequestAndStreamsChunks) {
  Script s;
  s.chunks = {Chunk("He", {1, 2}, FinishReason::kNone, 2), Chunk("y", {3}, FinishReason::kStop, 3)};
  s.chunks[0].logprobs = {-0.5f, -1.0f};
  s.chunks[1].logprobs = {-0.25f};
  backend_.QueueScript(s);
  strata::v1::GenerateRequest req;
  req.set_model("tiny");
  req.set_text("hello <|im_end|>");
  req.set_parse_special_tokens(true);  // a raw prompt (the default encodes it as plain text)
  req.mutable_sampling()->set_temperature(0.0f);
  req.mutable_sampling()->set_seed(99);
  req.mutable_sampling()->set_top_k(5);
  req.add_stop("\n\n");
  req.add_stop_token_ids(7);
  req.set_ignore_eos(true);
  req.set_logprobs(true);
  req.set_priority(3);
  req.set_request_id("r-1");
  std::vector<strata::v1::GenerateResponse> out;
  const grpc::Status st = GenerateAll(req, &out);
  ASSERT_TRUE(st.ok()) << st.error_message();

  ASSERT_EQ(backend_.requests().size(), 1u);
  const GenerationRequest g = backend_.request(0);
  const std::vector<int32_t> prompt = backend_.tokenizer().Encode("hello <|im_end|>", true, true);
  EXPECT_EQ(g.prompt, prompt);
  EXPECT_EQ(g.prompt.back(), backend_.tokenizer().TokenId("<|im_end|>")) << "special text parsed";
  EXPECT_EQ(g.sampling.temperature, 0.0f);
  EXPECT_EQ(g.sampling.seed, 99u);
  EXPECT_EQ(g.sampling.top_k, 5);
  EXPECT_EQ(g.sampling.top_p, 1.0f) << "unset keeps the default";
  EXPECT_EQ(g.sampling.repetition_penalty, 1.0f);
  EXPECT_EQ(g.max_tokens, 0) << "0 = the server's limit, applied by the backend";
  EXPECT_THAT(g.stop, ElementsAre("\n\n"));
  EXPECT_THAT(g.stop_token_ids, ElementsAre(7));
  EXPECT_TRUE(g.ignore_eos);
  EXPECT_TRUE(g.logprobs);
  EXPECT_EQ(g.priority, 3);
  EXPECT_EQ(g.request_id, "r-1");
  EXPECT_NE(g.deadline, absl::InfiniteFuture());

  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].text(), "He");
  EXPECT_THAT(out[0].token_ids(), ElementsAre(1, 2));
  EXPECT_THAT(out[0].logprobs(), ElementsAre(-0.5f, -1.0f));
  EXPECT_EQ(out[0].finish_reason(), strata::v1::FINISH_REASON_UNSPECIFIED);
  EXPECT_FALSE(out[0].has_usage());
  EXPECT_EQ(out[1].text(), "y");
  EXPECT_EQ(out[1].finish_reason(), strata::v1::FINISH_REASON_STOP);
  EXPECT_EQ(out[1].usage().prompt_tokens(), prompt.size());
  EXPECT_EQ(out[1].usage().completion_tokens(), 3u);
}

TEST_F(StrataServiceTest, GenerateFromTokenIdsAndChat) {
  Script s;
  s.chunks = {Chunk("", {}, FinishReason::kLength, 0)};
  backend_.QueueScript(s);
  backend_.QueueScript(s);
  strata::v1::GenerateRequest ids;
  ids.set_model("tiny");
  ids.mutable_token_ids()->add_ids(104);
  ids.mutable_token_ids()->add_ids(105);
  ids.set_max_tokens(9);
  std::vector<strata::v1::GenerateResponse> out;
  ASSERT_TRUE(GenerateAll(ids, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].finish_reason(), strata::v1::FINISH_REASON_LENGTH);
  EXPECT_THAT(backend_.request(0).prompt, ElementsAre(104, 105));
  EXPECT_EQ(backend_.request(0).max_tokens, 9);

  strata::v1::GenerateRequest chat;
  chat.set_model("tiny");
  auto* m = chat.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content("hello");
  out.clear();
  ASSERT_TRUE(GenerateAll(chat, &out).ok());
  const std::string rendered =
      ChatTemplate(ChatFormat::kChatMl).Apply({{"user", "hello"}}, /*add_generation_prompt=*/true);
  EXPECT_EQ(backend_.request(1).prompt, backend_.tokenizer().Encode(rendered, true, true));
  EXPECT_EQ(backend_.submitted_models()[1], "tiny");
}

TEST_F(StrataServiceTest, GenerateErrors) {
  std::vector<strata::v1::GenerateResponse> out;
  strata::v1::GenerateRequest req;
  req.set_model("nope");
  req.set_text("hi");
  grpc::Status st = GenerateAll(req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("nope"));

  req.set_model("nochat");
  req.mutable_chat()->add_messages()->set_role("user");
  st = GenerateAll(req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(st.error_message(), HasSubstr("weird"));

  req.set_model("tiny");
  req.mutable_chat()->mutable_messages(0)->set_role("wizard");
  st = GenerateAll(req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("chat.messages[0].role"));

  req.mutable_token_ids()->add_ids(1 << 20);
  st = GenerateAll(req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("1048576"));

  strata::v1::GenerateRequest none;
  none.set_model("tiny");
  st = GenerateAll(none, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("prompt"));

  strata::v1::GenerateRequest bad_sampling;
  bad_sampling.set_model("tiny");
  bad_sampling.set_text("hi");
  bad_sampling.mutable_sampling()->set_top_p(0.0f);
  st = GenerateAll(bad_sampling, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("top_p"));
  EXPECT_TRUE(backend_.requests().empty());

  Script failing;
  failing.stream_error = absl::UnavailableError("replica died");
  backend_.QueueScript(failing);
  strata::v1::GenerateRequest ok;
  ok.set_model("tiny");
  ok.set_text("hi");
  st = GenerateAll(ok, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(st.error_message(), HasSubstr("replica died"));
}

TEST_F(StrataServiceTest, CancellingTheCallCancelsTheGeneration) {
  Script held;
  held.chunks = {Chunk("a", {97})};
  held.hold_open = true;
  backend_.QueueScript(held);
  grpc::ClientContext ctx;
  Bound(ctx);
  strata::v1::GenerateRequest req;
  req.set_model("tiny");
  req.set_text("hi");
  auto reader = stub_->Generate(&ctx, req);
  strata::v1::GenerateResponse r;
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.text(), "a");
  ctx.TryCancel();
  EXPECT_TRUE(backend_.WaitUntilCancelled(0, absl::Seconds(5)));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(StrataServiceTest, TokenizeDetokenizeRoundTrip) {
  strata::v1::TokenizeRequest t;
  t.set_model("tiny");
  t.set_text("hello <|im_end|>");
  t.set_add_special_tokens(true);
  t.set_parse_special_tokens(true);
  strata::v1::TokenizeResponse tr;
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    ASSERT_TRUE(stub_->Tokenize(&ctx, t, &tr).ok());
  }
  const Tokenizer& tok = backend_.tokenizer();
  ASSERT_GE(tr.token_ids_size(), 3);
  EXPECT_EQ(tr.token_ids(0), tok.bos_id());
  EXPECT_EQ(tr.token_ids(1), tok.TokenId("hello"));
  EXPECT_EQ(tr.token_ids(tr.token_ids_size() - 1), tok.TokenId("<|im_end|>"));

  t.set_add_special_tokens(false);
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    strata::v1::TokenizeResponse no_bos;
    ASSERT_TRUE(stub_->Tokenize(&ctx, t, &no_bos).ok());
    EXPECT_EQ(no_bos.token_ids_size(), tr.token_ids_size() - 1);
  }

  strata::v1::DetokenizeRequest d;
  d.set_model("tiny");
  *d.mutable_token_ids() = tr.token_ids();
  for (bool skip : {false, true}) {
    d.set_skip_special_tokens(skip);
    grpc::ClientContext ctx;
    Bound(ctx);
    strata::v1::DetokenizeResponse dr;
    ASSERT_TRUE(stub_->Detokenize(&ctx, d, &dr).ok());
    EXPECT_EQ(dr.text(), skip ? "hello " : "<|endoftext|>hello <|im_end|>");
  }

  d.add_token_ids(123456);
  grpc::ClientContext ctx;
  Bound(ctx);
  strata::v1::DetokenizeResponse dr;
  const grpc::Status st = stub_->Detokenize(&ctx, d, &dr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("123456"));
}

TEST_F(StrataServiceTest, TokenizeChat) {
  strata::v1::TokenizeRequest t;
  t.set_model("tiny");
  auto* m = t.mutable_chat()->add_messages();
  m->set_role("system");
  m->set_content("be brief");
  t.mutable_chat()->set_add_generation_prompt(false);
  strata::v1::TokenizeResponse tr;
  grpc::ClientContext ctx;
  Bound(ctx);
  ASSERT_TRUE(stub_->Tokenize(&ctx, t, &tr).ok());
  const std::string rendered = ChatTemplate(ChatFormat::kChatMl).Apply({{"system", "be brief"}}, false);
  EXPECT_EQ(std::vector<int32_t>(tr.token_ids().begin(), tr.token_ids().end()),
            backend_.tokenizer().Encode(rendered, false, true));

  t.set_model("nochat");
  grpc::ClientContext ctx2;
  Bound(ctx2);
  EXPECT_EQ(stub_->Tokenize(&ctx2, t, &tr).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(StrataServiceTest, ListModels) {
  grpc::ClientContext ctx;
  Bound(ctx);
  strata::v1::ListModelsResponse r;
  ASSERT_TRUE(stub_->ListModels(&ctx, {}, &r).ok());
  ASSERT_EQ(r.models_size(), 2);
  EXPECT_EQ(r.models(0).name(), "tiny");
  EXPECT_EQ(r.models(0).context_length(), 64u);
  EXPECT_EQ(r.models(0).vocab_size(), static_cast<uint32_t>(backend_.tokenizer().vocab_size()));
  EXPECT_EQ(r.models(0).ready_replicas(), 1u);
  EXPECT_EQ(r.models(0).replicas(), 2u);
  EXPECT_EQ(r.models(1).name(), "nochat");
  EXPECT_EQ(r.models(1).ready_replicas(), 0u);
}

}  // namespace
}  // namespace strata::coordinator::testing
