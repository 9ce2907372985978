// The worker's step executor on the real default model, driven by hand-built
// StepPlans the way a coordinator would send them: the sampled tokens equal
// Engine::Generate's for the same prompts and seeds whatever the chunking,
// batching, block ids, joins, absences, finishes and preemptions; every bad
// plan is answered with a StepError naming the sequence and field, and the
// executor keeps working afterwards.
#include "worker/step_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "worker/engine.h"
#ifdef STRATA_TEST_CUDA_HARNESS
#include "worker/backend/cuda/cuda_backend.h"
#include "worker/backend/cuda/host_kernel_ops.h"
#endif

namespace strata {
namespace {

namespace wire = ::strata::worker::v1;
using ::testing::HasSubstr;

constexpr int32_t kBlockSize = 16;
constexpr int64_t kMaxContext = 256;
constexpr int32_t kBlocks = 1 + 6 * (kMaxContext / kBlockSize);  // six full-length sequences

bool HaveModel() {
  if (std::ifstream(STRATA_DEFAULT_MODEL).good()) return true;
  if (std::getenv("CI")) ADD_FAILURE() << "default model missing at " << STRATA_DEFAULT_MODEL;
  return false;
}

// One Engine and one StepExecutor for the whole file (loading takes a while).
class StepExecutorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveModel()) return;
    EngineConfig ec;
    ec.model_path = STRATA_DEFAULT_MODEL;
    ec.threads = 2;
    ec.max_context = kMaxContext;
    ec.max_sequences = 1;
    auto engine = Engine::Create(ec);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = engine->release();
    StepExecutorConfig xc;
    xc.model_path = STRATA_DEFAULT_MODEL;
    xc.threads = 2;
    xc.max_context = kMaxContext;
    xc.block_size = kBlockSize;
    xc.kv_blocks = kBlocks;
    auto executor = StepExecutor::Create(xc);
    ASSERT_TRUE(executor.ok()) << executor.status();
    executor_ = executor->release();
  }
  static void TearDownTestSuite() {
    delete executor_;
    delete engine_;
    executor_ = nullptr;
    engine_ = nullptr;
  }
  void SetUp() override {
    if (executor_ == nullptr) GTEST_SKIP() << "default model not installed (scripts/install_deps.sh)";
    ASSERT_TRUE(executor_->Reset().ok());
  }

  static std::vector<int32_t> Prompt(const std::string& text) {
    return engine_->tokenizer().Encode(text, true, false);
  }
  // Engine::Generate's tokens for one request run alone.
  static std::vector<int32_t> Reference(const std::vector<int32_t>& prompt, const wire::SamplingParams& p,
                                        int max_tokens) {
    GenerateRequest r;
    r.prompt = prompt;
    r.sampling = FromProto(p);
    r.max_tokens = max_tokens;
    r.stop_at_eog = false;
    auto res = engine_->Generate({r}, nullptr);
    EXPECT_TRUE(res.ok()) << res.status();
    return res.ok() ? (*res)[0].tokens : std::vector<int32_t>{};
  }

  static Engine* engine_;
  static StepExecutor* executor_;
};
Engine* StepExecutorTest::engine_ = nullptr;
StepExecutor* StepExecutorTest::executor_ = nullptr;

wire::SamplingParams Greedy() {
  wire::SamplingParams p;
  p.set_temperature(0);
  p.set_top_p(1);
  p.set_repetition_penalty(1);
  p.set_penalty_last_n(64);
  p.set_seed(1);
  return p;
}

wire::SamplingParams Seeded(uint64_t seed, float temperature = 0.9f) {
  wire::SamplingParams p = Greedy();
  p.set_temperature(temperature);
  p.set_top_k(40);
  p.set_top_p(0.95f);
  p.set_repetition_penalty(1.1f);
  p.set_seed(seed);
  return p;
}

// A minimal coordinator: schedules jobs step by step as a token scheduler
// would and builds the diffs worker.proto describes.
struct Job {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  wire::SamplingParams sampling;
  int max_tokens = 8;
  std::vector<int> chunks = {1 << 20};  // prefill chunk sizes, cycled per prefill step
  int join_step = 1;                    // first step it may be scheduled in
  int skip_every = 0;                   // absent from steps with step % skip_every == 0
  int preempt_after = -1;               // preempt once after this many generated tokens
  int resume_delay = 1;                 // steps it stays preempted

  // Coordinator-side state.
  std::vector<int32_t> tokens;  // known tokens
  std::vector<int32_t> generated;
  std::vector<uint32_t> blocks;
  int64_t computed = 0;
  size_t worker_known = 0;  // tokens the worker holds
  size_t worker_blocks = 0;
  bool sent = false, done = false, preempted = false;
  int resume_at = 0;
  int prefill_steps = 0;
};

class Driver {
 public:
  Driver(StepExecutor* executor, std::vector<Job> jobs, uint32_t shuffle_seed)
      : executor_(executor), jobs_(std::move(jobs)) {
    for (uint32_t b = 1; b < static_cast<uint32_t>(executor->kv_capacity_blocks()); ++b) free_.push_back(b);
    std::shuffle(free_.begin(), free_.end(), std::mt19937(shuffle_seed));
    for (Job& j : jobs_) j.tokens = j.prompt;
  }

  // Runs until every job is done (bounded); false on a failed expectation.
  void Run() {
    for (int guard = 0; guard < 1000 && !AllDone(); ++guard) {
      ASSERT_NO_FATAL_FAILURE(Step());
    }
    ASSERT_TRUE(AllDone());
  }
  const std::vector<Job>& jobs() const { return jobs_; }
  int steps() const { return step_; }
  int batched_steps() const { return batched_steps_; }
  // Finished ids not yet sent (the last step's).
  const std::vector<uint64_t>& pending_finished() const { return finished_; }

 private:
  bool AllDone() const {
    return std::all_of(jobs_.begin(), jobs_.end(), [](const Job& j) { return j.done; });
  }
  void Free(Job& j) {
    for (uint32_t b : j.blocks) free_.push_back(b);  // reused soon: stale KV must not matter
    j.blocks.clear();
  }

  void Step() {
    wire::StepPlan plan;
    plan.set_step_id(++step_);
    for (uint64_t id : finished_) plan.add_finished_seq_ids(id);
    for (uint64_t id : preempted_) plan.add_preempted_seq_ids(id);
    finished_.clear();
    preempted_.clear();
    std::set<uint64_t> expect_sample;
    int scheduled_seqs = 0;
    for (Job& j : jobs_) {
      if (j.done || step_ < j.join_step || (j.preempted && step_ < j.resume_at)) continue;
      if (j.sent && j.skip_every > 0 && step_ % j.skip_every == 0) continue;
      const int64_t known = static_cast<int64_t>(j.tokens.size());
      int64_t n = known - j.computed;
      if (n > 1) n = std::min<int64_t>(n, j.chunks[j.prefill_steps++ % j.chunks.size()]);
      const size_t need = static_cast<size_t>((j.computed + n + kBlockSize - 1) / kBlockSize);
      while (j.blocks.size() < need) {
        ASSERT_FALSE(free_.empty());
        j.blocks.push_back(free_.back());
        free_.pop_back();
      }
      if (!j.sent) {
        wire::NewSequence* s = plan.add_new_sequences();
        s->set_seq_id(j.id);
        for (int32_t t : j.tokens) s->add_token_ids(t);
        s->set_num_prompt_tokens(static_cast<uint32_t>(j.prompt.size()));
        *s->mutable_sampling() = j.sampling;
        for (uint32_t b : j.blocks) s->add_block_ids(b);
        s->set_num_computed_tokens(static_cast<uint32_t>(j.computed));
        s->set_num_scheduled_tokens(static_cast<uint32_t>(n));
        s->set_num_sampled_before(static_cast<uint32_t>(j.generated.size()));
        j.sent = true;
        j.preempted = false;
      } else {
        wire::RunningSequence* s = plan.add_running_sequences();
        s->set_seq_id(j.id);
        for (size_t i = j.worker_known; i < j.tokens.size(); ++i) s->add_new_token_ids(j.tokens[i]);
        for (size_t i = j.worker_blocks; i < j.blocks.size(); ++i) s->add_new_block_ids(j.blocks[i]);
        s->set_num_scheduled_tokens(static_cast<uint32_t>(n));
      }
      j.worker_known = j.tokens.size();
      j.worker_blocks = j.blocks.size();
      j.computed += n;
      ++scheduled_seqs;
      if (j.computed == known) expect_sample.insert(j.id);
    }
    if (scheduled_seqs > 1) ++batched_steps_;
    const wire::StepResult r = executor_->Execute(plan);
    ASSERT_FALSE(r.has_error()) << "step " << step_ << ": " << r.error().message();
    ASSERT_EQ(r.step_id(), plan.step_id());
    std::set<uint64_t> got;
    for (const wire::SampledToken& t : r.tokens()) {
      ASSERT_TRUE(got.insert(t.seq_id()).second) << "two tokens for seq " << t.seq_id();
      auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](const Job& j) { return j.id == t.seq_id(); });
      ASSERT_NE(it, jobs_.end());
      it->tokens.push_back(t.token_id());
      it->generated.push_back(t.token_id());
    }
    // Exactly the sequences whose computed tokens reached their known tokens
    // sample; sequences in the middle of a chunked prefill get nothing.
    ASSERT_EQ(got, expect_sample) << "step " << step_;
    for (Job& j : jobs_) {
      if (!got.count(j.id)) continue;
      if (static_cast<int>(j.generated.size()) >= j.max_tokens) {
        j.done = true;
        finished_.push_back(j.id);
        Free(j);
      } else if (static_cast<int>(j.generated.size()) == j.preempt_after) {
        j.preempt_after = -1;
        j.preempted = true;
        j.sent = false;
        j.computed = 0;
        j.worker_known = j.worker_blocks = 0;
        j.prefill_steps = 0;
        j.resume_at = step_ + 1 + j.resume_delay;
        preempted_.push_back(j.id);
        Free(j);
      }
    }
  }

  StepExecutor* executor_;
  std::vector<Job> jobs_;
  std::vector<uint32_t> free_;
  std::vector<uint64_t> finished_, preempted_;
  int step_ = 0;
  int batched_steps_ = 0;
};

TEST_F(StepExecutorTest, RegisterFacts) {
  EXPECT_EQ(executor_->kv_capacity_blocks(), kBlocks);
  EXPECT_EQ(executor_->block_size(), kBlockSize);
  EXPECT_EQ(executor_->max_context(), kMaxContext);
  const ModelIdentityInfo& id = executor_->model_identity();
  EXPECT_EQ(id.name, "SmolLM2-135M-Instruct.Q4_1");
  EXPECT_EQ(id.source, STRATA_DEFAULT_MODEL);
  EXPECT_EQ(id.vocab_size, engine_->model_config().vocab_size);
  EXPECT_EQ(id.num_layers, engine_->model_config().n_layers);
  EXPECT_EQ(id.context_length, kMaxContext);
  EXPECT_THAT(id.fingerprint, HasSubstr("-fnv1a64:"));
  auto again = ModelFingerprint(STRATA_DEFAULT_MODEL);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, id.fingerprint);
  EXPECT_FALSE(ModelFingerprint("/nonexistent/model.gguf").ok());
}

TEST_F(StepExecutorTest, TokensMatchEngineAcrossChunksJoinsAbsencesAndFinishes) {
  std::vector<Job> jobs(5);
  jobs[0].id = 11;
  jobs[0].prompt = Prompt("The capital of France is");
  jobs[0].sampling = Greedy();
  jobs[0].max_tokens = 10;
  jobs[0].chunks = {3, 2};
  jobs[1].id = 7;
  jobs[1].prompt = Prompt("Once upon a time, in a small village by the sea, there lived an old fisherman who");
  jobs[1].sampling = Seeded(42);
  jobs[1].max_tokens = 12;
  jobs[1].chunks = {5, 16, 1};
  jobs[1].join_step = 2;
  jobs[2].id = 3;
  jobs[2].prompt = Prompt("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n");
  jobs[2].sampling = Seeded(7, 1.2f);
  jobs[2].max_tokens = 6;
  jobs[2].join_step = 4;
  jobs[2].skip_every = 3;  // absent from some plans: its state must stay untouched
  jobs[3].id = 100;
  jobs[3].prompt = Prompt("List three colors:");
  jobs[3].sampling = Greedy();
  jobs[3].max_tokens = 4;
  jobs[3].chunks = {4};
  jobs[3].join_step = 6;
  jobs[4].id = 5;
  jobs[4].prompt = Prompt("Explain photosynthesis in one sentence.");
  jobs[4].sampling = Seeded(2024);
  jobs[4].max_tokens = 8;
  jobs[4].chunks = {7};
  jobs[4].join_step = 12;  // joins after job 3 finished: reuses its blocks
  Driver d(executor_, jobs, /*shuffle_seed=*/99);
  ASSERT_NO_FATAL_FAILURE(d.Run());
  EXPECT_GT(d.batched_steps(), 5);  // sequences really shared forward passes
  for (const Job& j : d.jobs()) {
    EXPECT_EQ(j.generated, Reference(j.prompt, j.sampling, j.max_tokens)) << "seq " << j.id;
  }
  // Finished sequences were dropped.
  wire::StepPlan last;
  last.set_step_id(d.steps() + 1);
  for (uint64_t id : d.pending_finished()) last.add_finished_seq_ids(id);
  EXPECT_EQ(executor_->num_sequences(), d.pending_finished().size());
  EXPECT_FALSE(executor_->Execute(last).has_error());
  EXPECT_EQ(executor_->num_sequences(), 0u);
}

TEST_F(StepExecutorTest, PreemptedSequencesResumeAsIfUninterrupted) {
  std::vector<Job> jobs(3);
  jobs[0].id = 1;
  jobs[0].prompt = Prompt("Write a short poem about the moon:");
  jobs[0].sampling = Seeded(1234, 1.0f);
  jobs[0].max_tokens = 14;
  jobs[0].preempt_after = 5;
  jobs[0].resume_delay = 2;
  jobs[0].chunks = {4, 9};  // the resumed prefill is chunked too
  jobs[1].id = 2;
  jobs[1].prompt = Prompt("The three primary colors are");
  jobs[1].sampling = Greedy();
  jobs[1].max_tokens = 10;
  jobs[1].preempt_after = 3;
  jobs[1].resume_delay = 1;
  jobs[2].id = 3;
  jobs[2].prompt = Prompt("My favourite recipe is");
  jobs[2].sampling = Seeded(99);
  jobs[2].max_tokens = 16;
  Driver d(executor_, jobs, /*shuffle_seed=*/5);
  ASSERT_NO_FATAL_FAILURE(d.Run());
  for (const Job& j : d.jobs()) {
    EXPECT_EQ(j.generated, Reference(j.prompt, j.sampling, j.max_tokens)) << "seq " << j.id;
  }
}

// A prefix-cache hit: the new sequence's first block is another sequence's,
// num_computed_tokens skips it, and the output is still the engine's.
TEST_F(StepExecutorTest, PrefixCacheHitReadsSharedBlocks) {
  const std::string common =
      "You are a helpful assistant. Answer briefly and precisely, and never make things up. ";
  const std::vector<int32_t> a = Prompt(common + "What is the capital of Italy?");
  const std::vector<int32_t> b = Prompt(common + "Name a large mammal.");
  ASSERT_GT(a.size(), 20u);
  ASSERT_TRUE(std::equal(a.begin(), a.begin() + kBlockSize, b.begin()));
  wire::StepPlan p1;
  p1.set_step_id(1);
  wire::NewSequence* na = p1.add_new_sequences();
  na->set_seq_id(1);
  for (int32_t t : a) na->add_token_ids(t);
  na->set_num_prompt_tokens(a.size());
  *na->mutable_sampling() = Greedy();
  for (uint32_t blk : {40u, 9u, 77u}) na->add_block_ids(blk);
  na->set_num_scheduled_tokens(a.size());
  wire::StepResult r1 = executor_->Execute(p1);
  ASSERT_FALSE(r1.has_error()) << r1.error().message();
  // b reuses block 40 (a's positions 0..15) and computes from 16 on.
  const int kTokens = 6;
  std::vector<int32_t> got;
  wire::StepPlan p2;
  p2.set_step_id(2);
  p2.add_finished_seq_ids(1);
  wire::NewSequence* nb = p2.add_new_sequences();
  nb->set_seq_id(2);
  for (int32_t t : b) nb->add_token_ids(t);
  nb->set_num_prompt_tokens(b.size());
  *nb->mutable_sampling() = Greedy();
  for (uint32_t blk : {40u, 12u, 13u}) nb->add_block_ids(blk);
  nb->set_num_computed_tokens(kBlockSize);
  nb->set_num_scheduled_tokens(b.size() - kBlockSize);
  wire::StepResult r = executor_->Execute(p2);
  for (uint64_t step = 3; got.size() < kTokens; ++step) {
    ASSERT_FALSE(r.has_error()) << r.error().message();
    ASSERT_EQ(r.tokens_size(), 1);
    got.push_back(r.tokens(0).token_id());
    wire::StepPlan p;
    p.set_step_id(step);
    wire::RunningSequence* rs = p.add_running_sequences();
    rs->set_seq_id(2);
    rs->add_new_token_ids(got.back());
    rs->set_num_scheduled_tokens(1);
    r = executor_->Execute(p);
  }
  EXPECT_EQ(got, Reference(b, Greedy(), kTokens));
}

TEST_F(StepExecutorTest, LogprobsOnlyWhenAskedAndTimingFilled) {
  wire::StepPlan p;
  p.set_step_id(1);
  for (uint64_t id : {1, 2}) {
    wire::NewSequence* n = p.add_new_sequences();
    n->set_seq_id(id);
    for (int32_t t : Prompt("Hello there")) n->add_token_ids(t);
    *n->mutable_sampling() = Seeded(3);
    n->mutable_sampling()->set_logprobs(id == 1);
    n->add_block_ids(static_cast<uint32_t>(id));
    n->set_num_scheduled_tokens(n->token_ids_size());
  }
  const wire::StepResult r = executor_->Execute(p);
  ASSERT_FALSE(r.has_error()) << r.error().message();
  ASSERT_EQ(r.tokens_size(), 2);
  for (const wire::SampledToken& t : r.tokens()) {
    if (t.seq_id() == 1) {
      EXPECT_LT(t.logprob(), 0.0f);
      EXPECT_GT(t.logprob(), -30.0f);
    } else {
      EXPECT_EQ(t.logprob(), 0.0f);
    }
  }
  EXPECT_GT(r.execute_micros(), 0u);
}

// ----------------------------------------------------------------------------
// Validation.
//
// Each case: seq 1 (control) and seq 2 (victim) are prefilled in step 1; step 2
// carries seq 1's decode plus the case's bad entry. Expect: code 3, the message
// names the sequence and field, error.seq_ids = {the bad id}, seq 1 still
// samples; step 3 (seq 1 decodes again, a fresh seq 50 joins) runs cleanly and
// seq 1's tokens are the engine's.

struct BadCase {
  std::string name;
  uint64_t bad_id;
  std::string expect;  // substring of the message
  std::function<void(wire::StepPlan&, int64_t vocab)> add;
};

wire::NewSequence* AddNew(wire::StepPlan& p, uint64_t id, std::vector<int32_t> tokens,
                          std::vector<uint32_t> blocks) {
  wire::NewSequence* n = p.add_new_sequences();
  n->set_seq_id(id);
  for (int32_t t : tokens) n->add_token_ids(t);
  n->set_num_prompt_tokens(tokens.size());
  *n->mutable_sampling() = Greedy();
  for (uint32_t b : blocks) n->add_block_ids(b);
  n->set_num_scheduled_tokens(tokens.size());
  return n;
}

TEST_F(StepExecutorTest, PerSequenceErrorsNameSequenceAndFieldAndOthersRun) {
  const std::vector<int32_t> prompt = Prompt("The quick brown fox");
  const std::vector<int32_t> ref = Reference(prompt, Greedy(), 3);
  ASSERT_EQ(ref.size(), 3u);
  const std::vector<int32_t> three = {prompt[0], prompt[1], prompt[2]};
  std::vector<BadCase> cases = {
      {"null block", 3, "new_sequences.block_ids[1] = 0",
       [&](wire::StepPlan& p, int64_t) { AddNew(p, 3, three, {20, 0}); }},
      {"block twice in table", 3, "new_sequences.block_ids[2] = 20 appears twice",
       [&](wire::StepPlan& p, int64_t) { AddNew(p, 3, three, {20, 21, 20}); }},
      {"running block already in table", 2, "seq 2: running_sequences.new_block_ids[1] = 31 is already",
       [&](wire::StepPlan& p, int64_t) {
         auto* r = p.add_running_sequences();
         r->set_seq_id(2);
         r->add_new_block_ids(44);
         r->add_new_block_ids(31);
         r->set_num_scheduled_tokens(0);
       }},
      {"block beyond capacity", 3, "new_sequences.block_ids[0] = " + std::to_string(kBlocks),
       [&](wire::StepPlan& p, int64_t) { AddNew(p, 3, three, {kBlocks}); }},
      {"token outside vocab", 3, "new_sequences.token_ids[2]",
       [&](wire::StepPlan& p, int64_t v) { AddNew(p, 3, {1, 2, static_cast<int32_t>(v)}, {20}); }},
      {"negative token", 3, "new_sequences.token_ids[0] = -5",
       [&](wire::StepPlan& p, int64_t) { AddNew(p, 3, {-5, 2}, {20}); }},
      {"empty tokens", 3, "new_sequences.token_ids is empty",
       [&](wire::StepPlan& p, int64_t) { AddNew(p, 3, {}, {20}); }},
      {"scheduled beyond known", 3, "num_scheduled_tokens 4 from num_computed_tokens 0 goes beyond the 3 known",
       [&](wire::StepPlan& p, int64_t) { AddNew(p, 3, three, {20})->set_num_scheduled_tokens(4); }},
      {"beyond block table", 3, "beyond the block table",
       [&](wire::StepPlan& p, int64_t) {
         std::vector<int32_t> t(20, prompt[0]);
         AddNew(p, 3, t, {20});
       }},
      {"computed not block multiple", 3, "num_computed_tokens 1 is not a multiple",
       [&](wire::StepPlan& p, int64_t) {
         auto* n = AddNew(p, 3, three, {20});
         n->set_num_computed_tokens(1);
         n->set_num_scheduled_tokens(2);
       }},
      {"prompt count", 3, "num_prompt_tokens 9",
       [&](wire::StepPlan& p, int64_t) { AddNew(p, 3, three, {20})->set_num_prompt_tokens(9); }},
      {"bad sampling", 3, "new_sequences.sampling: ",
       [&](wire::StepPlan& p, int64_t) { AddNew(p, 3, three, {20})->mutable_sampling()->set_top_p(0); }},
      {"beyond context", 3, "exceeds the worker's context length",
       [&](wire::StepPlan& p, int64_t) {
         std::vector<int32_t> t(kMaxContext + 1, prompt[0]);
         std::vector<uint32_t> b;
         for (uint32_t i = 0; i < kMaxContext / kBlockSize + 1; ++i) b.push_back(20 + i);
         AddNew(p, 3, t, b);
       }},
      {"already held", 2, "seq 2: new_sequences.seq_id is already held",
       [&](wire::StepPlan& p, int64_t) { AddNew(p, 2, three, {20}); }},
      {"twice in new", 3, "seq 3: new_sequences.seq_id appears twice",
       [&](wire::StepPlan& p, int64_t) {
         AddNew(p, 3, three, {20});
         AddNew(p, 3, three, {21});
       }},
      {"unknown running", 9, "seq 9: running_sequences.seq_id is not held",
       [&](wire::StepPlan& p, int64_t) {
         auto* r = p.add_running_sequences();
         r->set_seq_id(9);
         r->set_num_scheduled_tokens(1);
       }},
      {"running null block", 2, "seq 2: running_sequences.new_block_ids[0] = 0",
       [&](wire::StepPlan& p, int64_t) {
         auto* r = p.add_running_sequences();
         r->set_seq_id(2);
         r->add_new_token_ids(1);
         r->add_new_block_ids(0);
         r->set_num_scheduled_tokens(1);
       }},
      {"running token outside vocab", 2, "seq 2: running_sequences.new_token_ids[0]",
       [&](wire::StepPlan& p, int64_t v) {
         auto* r = p.add_running_sequences();
         r->set_seq_id(2);
         r->add_new_token_ids(static_cast<int32_t>(v + 7));
         r->set_num_scheduled_tokens(1);
       }},
      {"running beyond known", 2, "seq 2: running_sequences.num_scheduled_tokens 2",
       [&](wire::StepPlan& p, int64_t) {
         auto* r = p.add_running_sequences();
         r->set_seq_id(2);
         r->add_new_token_ids(1);
         r->set_num_scheduled_tokens(2);
       }},
      {"running beyond block table", 2, "seq 2: running_sequences.num_scheduled_tokens 14",
       [&](wire::StepPlan& p, int64_t) {
         auto* r = p.add_running_sequences();
         r->set_seq_id(2);
         for (int i = 0; i < 14; ++i) r->add_new_token_ids(1);  // 5 + 14 > one block
         r->set_num_scheduled_tokens(14);
       }},
      {"twice in running", 2, "seq 2: running_sequences.seq_id appears twice",
       [&](wire::StepPlan& p, int64_t) {
         for (int i = 0; i < 2; ++i) {
           auto* r = p.add_running_sequences();
           r->set_seq_id(2);
           r->set_num_scheduled_tokens(0);
         }
       }},
      {"new and running", 3, "seq 3: running_sequences.seq_id is also in new_sequences",
       [&](wire::StepPlan& p, int64_t) {
         AddNew(p, 3, three, {20});
         auto* r = p.add_running_sequences();
         r->set_seq_id(3);
         r->set_num_scheduled_tokens(0);
       }},
  };
  const int64_t vocab = engine_->model_config().vocab_size;
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(executor_->Reset().ok());
    wire::StepPlan p1;
    p1.set_step_id(1);
    AddNew(p1, 1, prompt, {30});
    AddNew(p1, 2, {prompt[0], prompt[1], prompt[2], prompt[3], prompt[0]}, {31});
    wire::StepResult r1 = executor_->Execute(p1);
    ASSERT_FALSE(r1.has_error()) << r1.error().message();
    ASSERT_EQ(r1.tokens_size(), 2);
    int32_t t1 = r1.tokens(0).seq_id() == 1 ? r1.tokens(0).token_id() : r1.tokens(1).token_id();

    wire::StepPlan p2;
    p2.set_step_id(2);
    wire::RunningSequence* good = p2.add_running_sequences();
    good->set_seq_id(1);
    good->add_new_token_ids(t1);
    good->set_num_scheduled_tokens(1);
    c.add(p2, vocab);
    wire::StepResult r2 = executor_->Execute(p2);
    ASSERT_TRUE(r2.has_error());
    EXPECT_EQ(r2.error().code(), 3);
    EXPECT_THAT(r2.error().message(), HasSubstr(c.expect));
    EXPECT_THAT(r2.error().message(), HasSubstr("seq " + std::to_string(c.bad_id) + ": "));
    ASSERT_EQ(r2.error().seq_ids_size(), 1);
    EXPECT_EQ(r2.error().seq_ids(0), c.bad_id);
    ASSERT_EQ(r2.tokens_size(), 1);  // the control sequence ran
    EXPECT_EQ(r2.tokens(0).seq_id(), 1u);
    const int32_t t2 = r2.tokens(0).token_id();

    // The executor keeps working; the failed sequence was dropped.
    wire::StepPlan p3;
    p3.set_step_id(3);
    wire::RunningSequence* again = p3.add_running_sequences();
    again->set_seq_id(1);
    again->add_new_token_ids(t2);
    again->set_num_scheduled_tokens(1);
    AddNew(p3, 50, three, {40});
    wire::StepResult r3 = executor_->Execute(p3);
    ASSERT_FALSE(r3.has_error()) << r3.error().message();
    ASSERT_EQ(r3.tokens_size(), 2);
    const int32_t t3 = r3.tokens(0).seq_id() == 1 ? r3.tokens(0).token_id() : r3.tokens(1).token_id();
    EXPECT_EQ((std::vector<int32_t>{t1, t2, t3}), ref);
    if (c.bad_id == 2) {
      wire::StepPlan p4;
      p4.set_step_id(4);
      p4.add_running_sequences()->set_seq_id(2);
      wire::StepResult r4 = executor_->Execute(p4);
      EXPECT_THAT(r4.error().message(), HasSubstr("seq 2: running_sequences.seq_id is not held"));
    }
  }
}

TEST_F(StepExecutorTest, SeveralBadSequencesShareOneError) {
  wire::StepPlan p;
  p.set_step_id(1);
  AddNew(p, 4, {1, 2}, {0});
  AddNew(p, 5, {1, 2}, {3});
  AddNew(p, 6, {1, -1}, {4});
  const wire::StepResult r = executor_->Execute(p);
  ASSERT_TRUE(r.has_error());
  EXPECT_EQ(r.error().code(), 3);
  EXPECT_THAT(r.error().seq_ids(), ::testing::ElementsAre(4u, 6u));
  EXPECT_THAT(r.error().message(), HasSubstr("seq 4: "));
  EXPECT_THAT(r.error().message(), HasSubstr("; seq 6: "));
  ASSERT_EQ(r.tokens_size(), 1);
  EXPECT_EQ(r.tokens(0).seq_id(), 5u);
  EXPECT_EQ(executor_->num_sequences(), 1u);
}

TEST_F(StepExecutorTest, StepIdMustBeConsecutiveWholeStepError) {
  wire::StepPlan p;
  p.set_step_id(2);  // expected 1
  AddNew(p, 1, {1, 2, 3}, {5});
  wire::StepResult r = executor_->Execute(p);
  ASSERT_TRUE(r.has_error());
  EXPECT_EQ(r.error().code(), 3);
  EXPECT_THAT(r.error().message(), HasSubstr("step_id 2 is not the expected 1"));
  EXPECT_EQ(r.error().seq_ids_size(), 0);  // whole step
  EXPECT_EQ(r.tokens_size(), 0);
  EXPECT_EQ(executor_->num_sequences(), 0u);  // nothing applied
  p.set_step_id(1);
  r = executor_->Execute(p);
  ASSERT_FALSE(r.has_error()) << r.error().message();
  EXPECT_EQ(r.tokens_size(), 1);
  r = executor_->Execute(p);  // step 1 again
  ASSERT_TRUE(r.has_error());
  EXPECT_THAT(r.error().message(), HasSubstr("step_id 1 is not the expected 2"));
  EXPECT_EQ(executor_->num_sequences(), 1u);
}

TEST_F(StepExecutorTest, UnknownFinishedIdsAreIgnoredAndResetEmptiesState) {
  wire::StepPlan p;
  p.set_step_id(1);
  p.add_finished_seq_ids(77);
  p.add_preempted_seq_ids(78);
  AddNew(p, 1, {1, 2, 3}, {5});
  wire::StepResult r = executor_->Execute(p);
  ASSERT_FALSE(r.has_error()) << r.error().message();
  EXPECT_EQ(executor_->num_sequences(), 1u);
  ASSERT_TRUE(executor_->Reset().ok());
  EXPECT_EQ(executor_->num_sequences(), 0u);
  EXPECT_EQ(executor_->next_step_id(), 1u);
  wire::StepPlan q;
  q.set_step_id(1);
  q.add_running_sequences()->set_seq_id(1);
  r = executor_->Execute(q);
  EXPECT_THAT(r.error().message(), HasSubstr("seq 1: running_sequences.seq_id is not held"));
}

TEST(PlanKvTest, SizesAndErrorsNameTheField) {
  ModelConfig m;
  m.n_layers = 2;
  m.n_kv_heads = 2;
  m.head_dim = 8;
  m.context_length = 1000;
  StepExecutorConfig c;
  c.block_size = 16;
  c.kv_cache_bytes = 1 << 20;
  auto plan = PlanKv(c, m);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->max_context, 1000);
  EXPECT_EQ(plan->bytes_per_block, 2 * 2 * 2 * 16 * 8 * 2);
  EXPECT_EQ(plan->num_blocks, (1 << 20) / plan->bytes_per_block);
  EXPECT_EQ(plan->blocks_per_max_sequence, 63);
  c.kv_cache_bytes = 62 * plan->bytes_per_block;
  EXPECT_THAT(std::string(PlanKv(c, m).status().message()), HasSubstr("kv_cache_bytes"));
  c.kv_blocks = 63;  // one short of 63 + null block
  EXPECT_THAT(std::string(PlanKv(c, m).status().message()), HasSubstr("kv_blocks 63 is too small"));
  c.kv_blocks = 64;
  EXPECT_EQ(PlanKv(c, m)->num_blocks, 64);
  c.max_context = 1001;
  EXPECT_THAT(std::string(PlanKv(c, m).status().message()), HasSubstr("max_context 1001 exceeds"));
  c.max_context = 0;
  c.block_size = 0;
  EXPECT_THAT(std::string(PlanKv(c, m).status().message()), HasSubstr("block_size 0"));
}

// ---- KV pool sized from device memory (numbers in, blocks out) ----

ModelConfig SmallModel() {
  ModelConfig m;
  m.n_layers = 2;
  m.n_kv_heads = 2;
  m.n_heads = 4;
  m.head_dim = 8;
  m.d_model = 32;
  m.d_ff = 64;
  m.vocab_size = 1000;
  m.context_length = 1000;
  return m;
}

ModelShard WholeShard(const ModelConfig& m) {
  ModelShard s;
  s.tp.q_end = m.n_heads;
  s.tp.kv_end = m.n_kv_heads;
  s.tp.ff_end = m.d_ff;
  s.tp.vocab_end = m.vocab_size;
  s.tp.vocab_padded = m.vocab_size;
  s.layers = {0, m.n_layers};
  return s;
}

StepExecutorConfig CudaAutoConfig() {
  StepExecutorConfig c;
  c.device = DeviceSpec{DeviceKind::kCuda, 0};
  c.block_size = 16;
  c.gpu_memory_utilization = 0.9;
  return c;
}

TEST(DeviceKvPlanTest, OnlyCudaWithoutAConfiguredSizeIsSizedFromTheDevice) {
  StepExecutorConfig c = CudaAutoConfig();
  EXPECT_TRUE(SizesKvFromDevice(c));
  c.kv_blocks = 100;
  EXPECT_FALSE(SizesKvFromDevice(c));
  c.kv_blocks = 0;
  c.kv_cache_bytes = 1 << 20;
  EXPECT_FALSE(SizesKvFromDevice(c));
  c.kv_cache_bytes = 0;
  c.device = DeviceSpec{DeviceKind::kCpu, 0};
  EXPECT_FALSE(SizesKvFromDevice(c));  // the CPU path keeps PlanKv's error for an empty budget
  EXPECT_THAT(std::string(PlanKv(c, SmallModel()).status().message()),
              HasSubstr("kv_blocks or kv_cache_bytes must be positive"));
}

TEST(DeviceKvPlanTest, BlocksFromTheMeasuredNumbers) {
  const ModelConfig m = SmallModel();
  const StepExecutorConfig c = CudaAutoConfig();
  constexpr int64_t GiB = int64_t{1} << 30;
  DeviceKvMeasurement d;
  d.total_bytes = 80 * GiB;
  d.free_bytes_before_weights = 79 * GiB;           // 1 GiB: CUDA context, other processes
  d.free_bytes_after_weights = 79 * GiB - 16 * GiB - GiB / 2;  // 16.5 GiB dropped
  d.weight_device_bytes = 16 * GiB;                 // allocated for the weights
  d.activation_reserve_bytes = GiB;
  absl::StatusOr<KvPlan> plan = PlanKvFromDevice(c, m, WholeShard(m), d);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->bytes_per_block, 2 * 2 * 2 * 16 * 8 * 2);  // K+V, layers, KV heads, tokens, dim, f16
  EXPECT_EQ(plan->max_context, 1000);
  EXPECT_EQ(plan->blocks_per_max_sequence, 63);
  // 72 GiB budget - 1 GiB others - 16.5 GiB weights (the larger: the measured drop) - 1 GiB reserve.
  const int64_t kv = 72 * GiB - GiB - 16 * GiB - GiB / 2 - GiB;
  EXPECT_EQ(plan->num_blocks, kv / plan->bytes_per_block);
  EXPECT_THAT(plan->device_breakdown, HasSubstr("weights 16896 MiB"));
  EXPECT_THAT(plan->device_breakdown, HasSubstr("= 54784 MiB of KV"));

  // Weights counted by the backend larger than the drop (e.g. memory reused
  // from a pool): the larger number wins.
  d.weight_device_bytes = 20 * GiB;
  EXPECT_EQ(PlanKvFromDevice(c, m, WholeShard(m), d)->num_blocks,
            (72 * GiB - GiB - 20 * GiB - GiB) / plan->bytes_per_block);

  // Huge devices: the block count is capped at INT32_MAX.
  DeviceKvMeasurement big;
  big.total_bytes = int64_t{8} << 40;
  big.free_bytes_before_weights = big.total_bytes;
  big.free_bytes_after_weights = big.total_bytes;
  StepExecutorConfig all = c;
  all.gpu_memory_utilization = 1.0;
  EXPECT_EQ(PlanKvFromDevice(all, m, WholeShard(m), big)->num_blocks, std::numeric_limits<int32_t>::max());
}

TEST(DeviceKvPlanTest, ErrorsNameTheFlagWhenOneSequenceDoesNotFit) {
  const ModelConfig m = SmallModel();
  StepExecutorConfig c = CudaAutoConfig();
  c.gpu_memory_utilization = 0.5;  // exact in binary: the budget is exactly half
  constexpr int64_t MiB = int64_t{1} << 20;
  constexpr int64_t kOneSequence = 64 * 2048;  // 63 blocks of 2048 B plus the null block
  DeviceKvMeasurement d;
  d.total_bytes = 2000 * MiB;
  d.free_bytes_before_weights = 2000 * MiB;
  d.free_bytes_after_weights = 1200 * MiB;  // 800 MiB of weights
  // 1000 MiB budget - 800 MiB weights - reserve = exactly one max-context sequence.
  d.activation_reserve_bytes = 200 * MiB - kOneSequence;
  absl::StatusOr<KvPlan> fits = PlanKvFromDevice(c, m, WholeShard(m), d);
  ASSERT_TRUE(fits.ok()) << fits.status();
  EXPECT_EQ(fits->num_blocks, 64);
  d.activation_reserve_bytes += 1;  // one byte short
  absl::StatusOr<KvPlan> plan = PlanKvFromDevice(c, m, WholeShard(m), d);
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  const std::string message(plan.status().message());
  EXPECT_THAT(message, ::testing::StartsWith("gpu_memory_utilization 0.5: "));
  EXPECT_THAT(message, HasSubstr("weights 800 MiB"));
  EXPECT_THAT(message, HasSubstr("raise --gpu-memory-utilization"));
  EXPECT_THAT(message, HasSubstr("one sequence of max_context 1000 tokens needs 63 blocks"));
  d.activation_reserve_bytes = 300 * MiB;  // nothing left at all
  EXPECT_EQ(PlanKvFromDevice(c, m, WholeShard(m), d).status().code(), absl::StatusCode::kResourceExhausted);

  c.gpu_memory_utilization = 0;
  EXPECT_EQ(PlanKvFromDevice(c, m, WholeShard(m), d).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(PlanKvFromDevice(c, m, WholeShard(m), d).status().message()),
              ::testing::StartsWith("gpu_memory_utilization 0: "));
  c.gpu_memory_utilization = 1.5;
  EXPECT_EQ(PlanKvFromDevice(c, m, WholeShard(m), d).status().code(), absl::StatusCode::kInvalidArgument);
  c.gpu_memory_utilization = 0.9;
  c.max_context = 1001;  // the shape's own checks come first and name their field
  EXPECT_THAT(std::string(PlanKvFromDevice(c, m, WholeShard(m), d).status().message()),
              ::testing::StartsWith("max_context 1001 exceeds"));
  EXPECT_THAT(std::string(PlanKvShape(c, m, WholeShard(m)).status().message()),
              ::testing::StartsWith("max_context 1001 exceeds"));
  c.max_context = 0;
  absl::StatusOr<KvPlan> shape = PlanKvShape(c, m, WholeShard(m));
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(shape->num_blocks, 0);
  EXPECT_EQ(shape->blocks_per_max_sequence, 63);
}

TEST(DeviceKvPlanTest, ActivationReserveFollowsTheScratchLayout) {
  const ModelConfig m = SmallModel();
  ModelShard whole = WholeShard(m);
  // Per token: x, xn (2 x 32) + q, att (2 x 32) + k, v (2 x 16) + gate, up (2 x 64) = 288 f32,
  // plus 3 int32 inputs; R rows of 1000 logits.
  const int64_t per_token = 288 * 4 + 3 * 4;
  EXPECT_EQ(ActivationReserveBytes(m, whole, 100, 10), 100 * per_token + 10 * 1000 * 4 + kBackendWorkspaceBytes);
  EXPECT_EQ(ActivationReserveBytes(m, whole, 0, 10), kBackendWorkspaceBytes);  // rows <= tokens
  // A non-last pipeline stage has no logits but a pp communicator.
  ModelShard first = whole;
  first.topology.pp_size = 2;
  EXPECT_EQ(ActivationReserveBytes(m, first, 100, 10),
            100 * per_token + kBackendWorkspaceBytes + kCommunicatorReserveBytes);
  // Tensor parallel, last stage: local + tp gathered logits of vocab_padded rows, and a tp communicator.
  ModelShard tp = whole;
  tp.topology.tp_size = 2;
  tp.topology.pp_size = 2;
  tp.topology.pp_stage = 1;
  tp.tp.size = 2;
  tp.tp.q_end = 2;
  tp.tp.kv_end = 1;
  tp.tp.ff_end = 32;
  tp.tp.vocab_end = 500;
  tp.tp.vocab_padded = 500;
  const int64_t tp_per_token = (2 * 32 + 2 * 16 + 2 * 8 + 2 * 32) * 4 + 3 * 4;
  EXPECT_EQ(ActivationReserveBytes(m, tp, 100, 10),
            100 * tp_per_token + 3 * 10 * 500 * 4 + kBackendWorkspaceBytes + 2 * kCommunicatorReserveBytes);
}

// Connect binds every communicator to the backend's stream: null on the CPU,
// which host-buffer communicators accept; one that refuses fails Connect.
class RecordingCommunicator : public parallel::Communicator {
 public:
  RecordingCommunicator(int rank, int size, bool refuse, std::vector<void*>* bound)
      : rank_(rank), size_(size), refuse_(refuse), bound_(bound), description_("recording communicator") {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& Describe() const override { return description_; }
  absl::Status AllReduceSum(void*, int64_t, parallel::DataType) override { return absl::OkStatus(); }
  absl::Status AllGather(const void*, void*, int64_t, parallel::DataType) override { return absl::OkStatus(); }
  absl::Status Broadcast(void*, int64_t, parallel::DataType, int) override { return absl::OkStatus(); }
  absl::Status Send(const void*, int64_t, parallel::DataType, int) override { return absl::OkStatus(); }
  absl::Status Recv(void*, int64_t, parallel::DataType, int) override { return absl::OkStatus(); }
  absl::Status Barrier() override { return absl::OkStatus(); }
  absl::Status BindStream(void* stream) override {
    bound_->push_back(stream);
    if (refuse_) return absl::FailedPreconditionError("recording communicator: BindStream refused");
    return absl::OkStatus();
  }
  absl::Status AsyncError() override { return async_error != nullptr ? *async_error : absl::OkStatus(); }
  void Abort(const absl::Status& why) override {
    if (aborts != nullptr) aborts->push_back(why);
  }

  absl::Status* async_error = nullptr;       // what AsyncError answers (OK when null)
  std::vector<absl::Status>* aborts = nullptr;  // Abort's calls

 private:
  int rank_, size_;
  bool refuse_;
  std::vector<void*>* bound_;
  std::string description_;
};

TEST(StepExecutorConnectTest, BindsEachCommunicatorToTheBackendStream) {
  if (!HaveModel()) GTEST_SKIP() << "default model not installed";
  std::vector<void*> bound;
  bool refuse = false;
  StepExecutorConfig xc;
  xc.model_path = STRATA_DEFAULT_MODEL;
  xc.max_context = kMaxContext;
  xc.block_size = kBlockSize;
  xc.kv_blocks = kBlocks;
  xc.topology.tp_size = 1;
  xc.topology.pp_size = 2;  // stage 0 of 2: one pp communicator
  xc.make_communicator = [&](const CommunicatorSpec& spec)
      -> absl::StatusOr<std::unique_ptr<parallel::Communicator>> {
    return std::make_unique<RecordingCommunicator>(spec.rank, spec.size, refuse, &bound);
  };
  auto executor = StepExecutor::Create(xc);
  ASSERT_TRUE(executor.ok()) << executor.status();
  ASSERT_TRUE((*executor)->Connect("rendezvous/gen-1").ok());
  EXPECT_TRUE((*executor)->connected());
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_EQ(bound[0], nullptr);  // CpuBackend has no native stream
  refuse = true;
  absl::Status refused = (*executor)->Connect("rendezvous/gen-2");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("BindStream refused"));
  EXPECT_FALSE((*executor)->connected());
}

#ifdef STRATA_TEST_CUDA_HARNESS
// StepExecutorConfig::make_backend for CudaBackend on the host harness; *ops
// is its HostKernelOps once the executor was created.
std::function<absl::StatusOr<std::unique_ptr<Backend>>(ThreadPool*)> HarnessBackend(HostKernelOps** ops) {
  return [ops](ThreadPool*) -> absl::StatusOr<std::unique_ptr<Backend>> {
    auto host = std::make_unique<HostKernelOps>();
    *ops = host.get();
    absl::StatusOr<std::unique_ptr<CudaBackend>> b = CudaBackend::Create(std::move(host));
    if (!b.ok()) return b.status();
    return std::unique_ptr<Backend>(std::move(*b));
  };
}

// Connect hands the device backend a watch over its communicators (the NCCL
// watchdog's hooks, collective_watch.h): active once connected, bounded by
// collective_timeout, its check and abort reaching the communicators; gone
// before the communicators are.
TEST(StepExecutorConnectTest, WatchesItsCommunicatorsOnTheDeviceBackend) {
  if (!HaveModel()) GTEST_SKIP() << "default model not installed";
  std::vector<void*> bound;
  bool refuse = false;
  absl::Status async_error;
  std::vector<absl::Status> aborts;
  HostKernelOps* ops = nullptr;
  StepExecutorConfig xc;
  xc.model_path = STRATA_DEFAULT_MODEL;
  xc.max_context = kMaxContext;
  xc.block_size = kBlockSize;
  xc.kv_blocks = kBlocks;
  xc.topology.pp_size = 2;  // stage 0 of 2: one pp communicator
  xc.collective_timeout = absl::Seconds(7);
  xc.make_backend = HarnessBackend(&ops);
  xc.make_communicator = [&](const CommunicatorSpec& spec)
      -> absl::StatusOr<std::unique_ptr<parallel::Communicator>> {
    auto c = std::make_unique<RecordingCommunicator>(spec.rank, spec.size, refuse, &bound);
    c->async_error = &async_error;
    c->aborts = &aborts;
    return c;
  };
  auto executor = StepExecutor::Create(xc);
  ASSERT_TRUE(executor.ok()) << executor.status();
  EXPECT_FALSE(ops->collective_watch().active());
  ASSERT_TRUE((*executor)->Connect("rendezvous/gen-1").ok());
  const CollectiveWatch& watch = ops->collective_watch();
  ASSERT_TRUE(watch.active());
  EXPECT_EQ(watch.timeout, absl::Seconds(7));
  EXPECT_TRUE(watch.check().ok());
  async_error = absl::UnavailableError("pp group: peer stage 1 gone");
  EXPECT_EQ(watch.check(), async_error);
  watch.abort_communicators(async_error);
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_EQ(aborts[0], async_error);
  // A reconnect drops the old communicators, and their watch with them.
  refuse = true;
  EXPECT_FALSE((*executor)->Connect("rendezvous/gen-2").ok());
  EXPECT_FALSE(ops->collective_watch().active());
}

// Sampling on the backend: the default model on CudaBackend (host harness),
// two sequences decoding together, once with the sampling kernel on the
// device (only token ids copied back) and once with the logits copied to the
// host Sampler. Same logits, same seeds: the same tokens, and the sampling
// kernel really ran for the first executor and never for the second.
TEST(StepExecutorDeviceSamplingTest, DeviceSamplingDrawsTheHostSamplersTokens) {
  if (!HaveModel()) GTEST_SKIP() << "default model not installed";
  auto run = [](bool device_sampling, int64_t* sample_launches) {
    HostKernelOps* ops = nullptr;
    StepExecutorConfig xc;
    xc.model_path = STRATA_DEFAULT_MODEL;
    xc.threads = 2;
    xc.max_context = 64;
    xc.block_size = kBlockSize;
    xc.kv_blocks = 1 + 2 * (64 / kBlockSize);
    xc.backend.device_sampling = device_sampling;
    xc.make_backend = HarnessBackend(&ops);
    auto executor = StepExecutor::Create(xc);
    EXPECT_TRUE(executor.ok()) << executor.status();
    if (!executor.ok()) return std::vector<std::vector<int32_t>>{};
    std::vector<Job> jobs(2);
    jobs[0].id = 1;
    jobs[0].prompt = {1, 504, 2365, 3987, 359, 253};  // ids of the model's vocabulary
    jobs[0].sampling = Greedy();
    jobs[0].max_tokens = 4;
    jobs[1].id = 2;
    jobs[1].prompt = {1, 2, 1345, 314, 260, 3881, 28};
    jobs[1].sampling = Seeded(7, 1.2f);
    jobs[1].sampling.set_repetition_penalty(1.0f);  // no penalties: the device may sample it
    jobs[1].max_tokens = 4;
    Driver d(executor->get(), jobs, /*shuffle_seed=*/3);
    d.Run();
    const auto& launches = ops->launches();
    *sample_launches = launches.count("Sample") ? launches.at("Sample") : 0;
    std::vector<std::vector<int32_t>> out;
    for (const Job& j : d.jobs()) out.push_back(j.generated);
    return out;
  };
  int64_t on_launches = 0, off_launches = 0;
  const auto on = run(true, &on_launches);
  const auto off = run(false, &off_launches);
  ASSERT_EQ(on.size(), 2u);
  EXPECT_EQ(on, off);
  EXPECT_EQ(on[0].size(), 4u);
  EXPECT_GE(on_launches, 4);  // every step that sampled
  EXPECT_EQ(off_launches, 0);
}
#endif  // STRATA_TEST_CUDA_HARNESS

}  // namespace
}  // namespace strata
