// StepPlan is a diff (proto/strata/v1/worker.proto): new sequences once in
// full, then only appended tokens/blocks, finished and preempted ids. These
// tests check a two-step diff survives the wire unchanged and that applying
// it with the documented rules rebuilds the coordinator's view of each sequence.
#include "strata/v1/worker.pb.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace strata {
namespace {

namespace wv1 = ::strata::worker::v1;

// The per-sequence state a worker keeps, rebuilt from plans by the rules in
// worker.proto (a test-only model of the step executor's bookkeeping).
struct SeqState {
  std::vector<int32_t> tokens;
  std::vector<uint32_t> blocks;
  uint32_t computed = 0;
};

// Applies one plan; returns the ids the sampling rank would sample this step.
std::vector<uint64_t> Apply(const wv1::StepPlan& plan, std::map<uint64_t, SeqState>& seqs) {
  for (uint64_t id : plan.finished_seq_ids()) seqs.erase(id);
  for (uint64_t id : plan.preempted_seq_ids()) seqs.erase(id);
  std::vector<std::pair<uint64_t, uint32_t>> scheduled;
  for (const auto& n : plan.new_sequences()) {
    EXPECT_FALSE(seqs.count(n.seq_id())) << "new sequence already held: " << n.seq_id();
    SeqState& s = seqs[n.seq_id()];
    s.tokens.assign(n.token_ids().begin(), n.token_ids().end());
    s.blocks.assign(n.block_ids().begin(), n.block_ids().end());
    s.computed = n.num_computed_tokens();
    scheduled.emplace_back(n.seq_id(), n.num_scheduled_tokens());
  }
  for (const auto& r : plan.running_sequences()) {
    auto it = seqs.find(r.seq_id());
    EXPECT_NE(it, seqs.end()) << "running sequence not held: " << r.seq_id();
    if (it == seqs.end()) continue;
    it->second.tokens.insert(it->second.tokens.end(), r.new_token_ids().begin(),
                             r.new_token_ids().end());
    it->second.blocks.insert(it->second.blocks.end(), r.new_block_ids().begin(),
                             r.new_block_ids().end());
    scheduled.emplace_back(r.seq_id(), r.num_scheduled_tokens());
  }
  std::vector<uint64_t> sample;
  for (auto [id, n] : scheduled) {
    SeqState& s = seqs[id];
    s.computed += n;
    EXPECT_LE(s.computed, s.tokens.size()) << "seq " << id << " computes past its tokens";
    if (s.computed == s.tokens.size()) sample.push_back(id);
  }
  return sample;
}

wv1::StepPlan RoundTrip(const wv1::StepPlan& plan) {
  std::string wire;
  EXPECT_TRUE(plan.SerializeToString(&wire));
  wv1::StepPlan back;
  EXPECT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.SerializeAsString(), wire);
  return back;
}

TEST(StepPlanTest, NewSequenceRoundTripsInFull) {
  wv1::StepPlan plan;
  plan.set_step_id(1);
  wv1::NewSequence* n = plan.add_new_sequences();
  n->set_seq_id(7);
  for (int32_t t : {1, 9906, 1917, 0, -1, 2147483647}) n->add_token_ids(t);
  n->set_num_prompt_tokens(6);
  n->add_block_ids(3);
  n->set_num_computed_tokens(0);
  n->set_num_scheduled_tokens(4);  // a prefill chunk
  n->set_num_sampled_before(0);
  wv1::SamplingParams* sp = n->mutable_sampling();
  sp->set_temperature(0.7f);
  sp->set_top_k(40);
  sp->set_top_p(0.9f);
  sp->set_seed(0xFFFFFFFFFFFFFFFFull);
  sp->set_logprobs(true);

  const wv1::StepPlan back = RoundTrip(plan);
  ASSERT_EQ(back.new_sequences_size(), 1);
  const wv1::NewSequence& b = back.new_sequences(0);
  EXPECT_EQ(b.seq_id(), 7u);
  EXPECT_EQ(std::vector<int32_t>(b.token_ids().begin(), b.token_ids().end()),
            (std::vector<int32_t>{1, 9906, 1917, 0, -1, 2147483647}));
  EXPECT_EQ(b.num_prompt_tokens(), 6u);
  EXPECT_EQ(b.num_scheduled_tokens(), 4u);
  EXPECT_FLOAT_EQ(b.sampling().temperature(), 0.7f);
  EXPECT_EQ(b.sampling().top_k(), 40);
  EXPECT_EQ(b.sampling().seed(), 0xFFFFFFFFFFFFFFFFull);
  EXPECT_TRUE(b.sampling().logprobs());
  EXPECT_EQ(back.running_sequences_size(), 0);
}

TEST(StepPlanTest, DiffsRebuildTheCoordinatorsSequences) {
  // Block size 4. Step 1: seq 1 (7-token prompt) whole; seq 2 (6 tokens) a
  // 4-token prefill chunk, so only seq 1 is sampled.
  std::map<uint64_t, SeqState> worker;
  wv1::StepPlan s1;
  s1.set_step_id(1);
  {
    auto* a = s1.add_new_sequences();
    a->set_seq_id(1);
    for (int32_t t : {10, 11, 12, 13, 14, 15, 16}) a->add_token_ids(t);
    a->set_num_prompt_tokens(7);
    a->add_block_ids(1);
    a->add_block_ids(2);
    a->set_num_scheduled_tokens(7);
    auto* b = s1.add_new_sequences();
    b->set_seq_id(2);
    for (int32_t t : {20, 21, 22, 23, 24, 25}) b->add_token_ids(t);
    b->set_num_prompt_tokens(6);
    b->add_block_ids(3);
    b->add_block_ids(4);
    b->set_num_scheduled_tokens(4);
  }
  EXPECT_EQ(Apply(RoundTrip(s1), worker), (std::vector<uint64_t>{1}));

  // Step 2: seq 1 decodes its sampled token 17 (position 7); seq 2 finishes its prefill
  // (2 tokens, nothing new to append).
  wv1::StepPlan s2;
  s2.set_step_id(2);
  {
    auto* a = s2.add_running_sequences();
    a->set_seq_id(1);
    a->add_new_token_ids(17);
    a->set_num_scheduled_tokens(1);
    auto* b = s2.add_running_sequences();
    b->set_seq_id(2);
    b->set_num_scheduled_tokens(2);
  }
  const wv1::StepPlan s2b = RoundTrip(s2);
  EXPECT_EQ(s2b.new_sequences_size(), 0);  // nothing resent in full
  EXPECT_EQ(Apply(s2b, worker), (std::vector<uint64_t>{1, 2}));

  // Step 3: seq 1's sampled token 18 lands at position 8, in a new block; seq 2 is
  // preempted; a new seq 3 hits the prefix cache for its first block.
  wv1::StepPlan s3;
  s3.set_step_id(3);
  {
    auto* a = s3.add_running_sequences();
    a->set_seq_id(1);
    a->add_new_token_ids(18);
    a->add_new_block_ids(5);
    a->set_num_scheduled_tokens(1);
    s3.add_preempted_seq_ids(2);
    auto* c = s3.add_new_sequences();
    c->set_seq_id(3);
    for (int32_t t : {10, 11, 12, 13, 30}) c->add_token_ids(t);
    c->set_num_prompt_tokens(5);
    c->add_block_ids(1);  // shared with seq 1's first full block
    c->add_block_ids(6);
    c->set_num_computed_tokens(4);
    c->set_num_scheduled_tokens(1);
  }
  EXPECT_EQ(Apply(RoundTrip(s3), worker), (std::vector<uint64_t>{3, 1}));

  ASSERT_EQ(worker.size(), 2u);
  EXPECT_FALSE(worker.count(2));
  EXPECT_EQ(worker[1].tokens, (std::vector<int32_t>{10, 11, 12, 13, 14, 15, 16, 17, 18}));
  EXPECT_EQ(worker[1].blocks, (std::vector<uint32_t>{1, 2, 5}));
  EXPECT_EQ(worker[1].computed, 9u);
  EXPECT_EQ(worker[3].blocks, (std::vector<uint32_t>{1, 6}));
  EXPECT_EQ(worker[3].computed, 5u);

  // Step 4: seq 1 finishes; its state is dropped.
  wv1::StepPlan s4;
  s4.set_step_id(4);
  s4.add_finished_seq_ids(1);
  EXPECT_TRUE(Apply(RoundTrip(s4), worker).empty());
  EXPECT_EQ(worker.size(), 1u);
}

TEST(StepPlanTest, WorkerAndCoordinatorMessagesUseTheirOneofs) {
  wv1::WorkerMessage w;
  wv1::Register* r = w.mutable_register_();
  r->set_protocol_version(1);
  r->set_replica(2);
  r->set_pp_stage(1);
  r->set_pp_size(2);
  r->set_tp_rank(3);
  r->set_tp_size(4);
  r->set_device("cuda:3");
  r->set_kv_capacity_blocks(4096);
  r->set_block_size(16);
  r->mutable_model()->set_name("smollm2-135m");
  wv1::WorkerMessage wb;
  ASSERT_TRUE(wb.ParseFromString(w.SerializeAsString()));
  ASSERT_EQ(wb.kind_case(), wv1::WorkerMessage::kRegister);
  EXPECT_EQ(wb.register_().tp_rank(), 3u);
  EXPECT_EQ(wb.register_().model().name(), "smollm2-135m");

  wv1::WorkerMessage res;
  wv1::StepResult* sr = res.mutable_step_result();
  sr->set_step_id(9);
  wv1::SampledToken* t = sr->add_tokens();
  t->set_seq_id(1);
  t->set_token_id(42);
  t->set_logprob(-0.25f);
  wv1::WorkerMessage resb;
  ASSERT_TRUE(resb.ParseFromString(res.SerializeAsString()));
  ASSERT_EQ(resb.kind_case(), wv1::WorkerMessage::kStepResult);
  EXPECT_FALSE(resb.step_result().has_error());
  EXPECT_EQ(resb.step_result().tokens(0).token_id(), 42);
  EXPECT_FLOAT_EQ(resb.step_result().tokens(0).logprob(), -0.25f);

  wv1::CoordinatorMessage c;
  c.mutable_shutdown()->set_reason("drain");
  wv1::CoordinatorMessage cb;
  ASSERT_TRUE(cb.ParseFromString(c.SerializeAsString()));
  EXPECT_EQ(cb.kind_case(), wv1::CoordinatorMessage::kShutdown);
  EXPECT_EQ(cb.shutdown().reason(), "drain");
}

}  // namespace
}  // namespace strata
