// ValidateRegister / ValidateStepResult / ValidateLeave: every bound, each
// error naming the field and the limit.
#include "coordinator/worker_message_validator.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace strata::coordinator {
namespace {

namespace w = ::strata::worker::v1;

w::Register GoodRegister() {
  w::Register r;
  r.set_protocol_version(1);
  r.set_tp_size(2);
  r.set_tp_rank(1);
  r.set_pp_size(1);
  r.set_device("cpu");
  r.set_kv_capacity_blocks(257);
  r.set_block_size(16);
  r.set_peer_address("10.0.0.2:0");
  r.mutable_model()->set_name("smol");
  r.mutable_model()->set_source("/models/smol.gguf");
  r.mutable_model()->set_fingerprint("size:1-fnv1a64:00");
  r.mutable_model()->set_vocab_size(49152);
  r.mutable_model()->set_num_layers(30);
  r.mutable_model()->set_context_length(2048);
  return r;
}

// The error of `reg` after `edit`, which must mention each of `parts`.
void ExpectRefused(void (*edit)(w::Register&), std::initializer_list<const char*> parts) {
  w::Register r = GoodRegister();
  edit(r);
  const absl::Status s = ValidateRegister(r, RegisterLimits{});
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  for (const char* p : parts) EXPECT_NE(s.message().find(p), absl::string_view::npos) << s << " lacks " << p;
}

TEST(ValidateRegisterTest, AGoodRegisterPasses) {
  EXPECT_TRUE(ValidateRegister(GoodRegister(), RegisterLimits{}).ok());
}

TEST(ValidateRegisterTest, KvCapacityIsBounded) {
  ExpectRefused([](w::Register& r) { r.set_kv_capacity_blocks(2147483647); },
                {"Register.kv_capacity_blocks", "2147483647", "4194304"});
  ExpectRefused([](w::Register& r) { r.set_kv_capacity_blocks(4294967295u); }, {"kv_capacity_blocks"});
  ExpectRefused([](w::Register& r) { r.set_kv_capacity_blocks(1); }, {"kv_capacity_blocks", "null block"});
  w::Register at_limit = GoodRegister();
  at_limit.set_kv_capacity_blocks(RegisterLimits{}.max_kv_capacity_blocks);
  EXPECT_TRUE(ValidateRegister(at_limit, RegisterLimits{}).ok());
}

TEST(ValidateRegisterTest, BlockSizeAndRanksAreBounded) {
  ExpectRefused([](w::Register& r) { r.set_block_size(0); }, {"Register.block_size", "[1, 1024]"});
  ExpectRefused([](w::Register& r) { r.set_block_size(1025); }, {"Register.block_size"});
  ExpectRefused([](w::Register& r) { r.set_tp_size(0); }, {"Register.tp_size"});
  ExpectRefused([](w::Register& r) { r.set_tp_size(65); }, {"Register.tp_size", "64"});
  ExpectRefused([](w::Register& r) { r.set_pp_size(100000); }, {"Register.pp_size"});
  ExpectRefused([](w::Register& r) { r.set_tp_rank(2); }, {"Register.tp_rank 2", "tp_size 2"});
  ExpectRefused([](w::Register& r) { r.set_pp_stage(1); }, {"Register.pp_stage 1"});
}

TEST(ValidateRegisterTest, ModelIdentityIsBounded) {
  ExpectRefused([](w::Register& r) { r.clear_model(); }, {"Register.model is missing"});
  ExpectRefused([](w::Register& r) { r.mutable_model()->set_name(""); }, {"Register.model.name is empty"});
  ExpectRefused([](w::Register& r) { r.mutable_model()->set_vocab_size(0); }, {"Register.model.vocab_size"});
  ExpectRefused([](w::Register& r) { r.mutable_model()->set_vocab_size(1u << 25); }, {"Register.model.vocab_size"});
  ExpectRefused([](w::Register& r) { r.mutable_model()->set_num_layers(5000); }, {"Register.model.num_layers"});
  ExpectRefused([](w::Register& r) { r.mutable_model()->set_context_length(0); },
                {"Register.model.context_length"});
  ExpectRefused([](w::Register& r) { r.mutable_model()->set_context_length(1u << 30); },
                {"Register.model.context_length"});
}

TEST(ValidateRegisterTest, EveryStringIsBoundedAndFreeOfControlCharacters) {
  ExpectRefused([](w::Register& r) { r.mutable_model()->set_name(std::string(257, 'a')); },
                {"Register.model.name", "257 bytes", "256"});
  ExpectRefused([](w::Register& r) { r.mutable_model()->set_name("smol\n[coordinator] forged"); },
                {"Register.model.name", "control character"});
  ExpectRefused([](w::Register& r) { r.mutable_model()->set_fingerprint(std::string(300, 'f')); },
                {"Register.model.fingerprint"});
  ExpectRefused([](w::Register& r) { r.mutable_model()->set_source(std::string(5000, '/')); },
                {"Register.model.source", "4096"});
  ExpectRefused([](w::Register& r) { r.set_device(std::string(1000, 'd')); }, {"Register.device"});
  ExpectRefused([](w::Register& r) { r.set_peer_address(std::string(513, 'p')); }, {"Register.peer_address", "512"});
  ExpectRefused([](w::Register& r) { r.set_peer_address("a\rb"); }, {"Register.peer_address", "control"});
}

class ValidateStepResultTest : public ::testing::Test {
 protected:
  StepExpectation Expect() {
    StepExpectation e;
    e.step_id = 7;
    e.vocab_size = 100;
    e.scheduled = &scheduled_;
    e.mentioned = &mentioned_;
    return e;
  }
  w::StepResult Good() {
    w::StepResult r;
    r.set_step_id(7);
    auto* t = r.add_tokens();
    t->set_seq_id(1);
    t->set_token_id(99);
    t->set_logprob(-0.5f);
    return r;
  }
  void ExpectRefused(const w::StepResult& r, std::initializer_list<const char*> parts) {
    const absl::Status s = ValidateStepResult(r, Expect());
    ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    for (const char* p : parts) EXPECT_NE(s.message().find(p), absl::string_view::npos) << s << " lacks " << p;
  }
  absl::flat_hash_set<uint64_t> scheduled_{1, 2};
  absl::flat_hash_set<uint64_t> mentioned_{1, 2, 3};
};

TEST_F(ValidateStepResultTest, AGoodResultPasses) {
  EXPECT_TRUE(ValidateStepResult(Good(), Expect()).ok());
  w::StepResult none;
  none.set_step_id(7);
  EXPECT_TRUE(ValidateStepResult(none, Expect()).ok());
  w::StepResult err = none;
  err.mutable_error()->set_code(13);
  err.mutable_error()->add_seq_ids(3);  // a finished sequence the plan named
  EXPECT_TRUE(ValidateStepResult(err, Expect()).ok());
}

TEST_F(ValidateStepResultTest, StepIdMustBeTheOutstandingOne) {
  w::StepResult r = Good();
  r.set_step_id(8);
  ExpectRefused(r, {"StepResult.step_id 8", "outstanding step 7"});
}

TEST_F(ValidateStepResultTest, TokenIdsMustBeInTheVocabulary) {
  for (int32_t bad : {100, 2147483647, -1, std::numeric_limits<int32_t>::min()}) {
    w::StepResult r = Good();
    r.mutable_tokens(0)->set_token_id(bad);
    ExpectRefused(r, {"token_id", "outside the vocabulary [0, 100)"});
  }
  w::StepResult edge = Good();
  edge.mutable_tokens(0)->set_token_id(0);
  EXPECT_TRUE(ValidateStepResult(edge, Expect()).ok());
}

TEST_F(ValidateStepResultTest, TokensOnlyForScheduledSequencesAtMostOneEach) {
  w::StepResult unscheduled = Good();
  unscheduled.mutable_tokens(0)->set_seq_id(3);  // finished, not scheduled
  ExpectRefused(unscheduled, {"seq_id 3", "not scheduled in step 7"});
  w::StepResult twice = Good();
  *twice.add_tokens() = twice.tokens(0);
  ExpectRefused(twice, {"seq_id 1", "more than one token"});
  StepExpectation none = Expect();
  none.scheduled = nullptr;
  EXPECT_FALSE(ValidateStepResult(Good(), none).ok());
}

TEST_F(ValidateStepResultTest, LogprobMustBeALogProbability) {
  w::StepResult nan = Good();
  nan.mutable_tokens(0)->set_logprob(std::nanf(""));
  ExpectRefused(nan, {"logprob"});
  w::StepResult positive = Good();
  positive.mutable_tokens(0)->set_logprob(3.0f);
  ExpectRefused(positive, {"logprob"});
  w::StepResult minus_inf = Good();
  minus_inf.mutable_tokens(0)->set_logprob(-std::numeric_limits<float>::infinity());
  EXPECT_TRUE(ValidateStepResult(minus_inf, Expect()).ok());
}

TEST_F(ValidateStepResultTest, ErrorCodeMustBeANonOkRpcCodeAndSeqIdsKnown) {
  for (int32_t bad : {0, 17, -3, 1000}) {
    w::StepResult r = Good();
    r.mutable_error()->set_code(bad);
    ExpectRefused(r, {"StepResult.error.code", "1..16"});
  }
  w::StepResult unknown = Good();
  unknown.mutable_error()->set_code(13);
  unknown.mutable_error()->add_seq_ids(42);
  ExpectRefused(unknown, {"StepResult.error.seq_ids", "seq_id 42"});
}

TEST_F(ValidateStepResultTest, ExecuteMicrosIsBounded) {
  w::StepResult r = Good();
  r.set_execute_micros(kMaxExecuteMicros + 1);
  ExpectRefused(r, {"StepResult.execute_micros"});
}

TEST(TruncatedErrorMessageTest, LongMessagesAreCutOnACharacterBoundary) {
  EXPECT_EQ(TruncatedErrorMessage("short"), "short");
  const std::string long_ascii(10000, 'x');
  const std::string cut = TruncatedErrorMessage(long_ascii);
  EXPECT_EQ(cut, std::string(kMaxStepErrorMessageBytes, 'x') + " ... (truncated)");
  // A 3-byte character straddling the limit is dropped whole.
  std::string utf8(kMaxStepErrorMessageBytes - 1, 'y');
  utf8 += "\xe2\x82\xac";  // U+20AC
  utf8 += std::string(100, 'z');
  const std::string cut8 = TruncatedErrorMessage(utf8);
  EXPECT_EQ(cut8, std::string(kMaxStepErrorMessageBytes - 1, 'y') + " ... (truncated)");
}

TEST(ValidateLeaveTest, ReasonIsBounded) {
  w::Leave ok;
  ok.set_reason("SIGTERM received");
  EXPECT_TRUE(ValidateLeave(ok).ok());
  w::Leave long_reason;
  long_reason.set_reason(std::string(kMaxLeaveReasonBytes + 1, 'r'));
  const absl::Status s = ValidateLeave(long_reason);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("Leave.reason"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace strata::coordinator
