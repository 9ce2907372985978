#include "coordinator/scheduler.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace strata::coordinator {
namespace {

// Prefix caching is off unless a test turns it on: these tests count blocks of
// sequences whose prompts are identical.
SchedulerConfig Cfg(int32_t num_blocks, int32_t budget = 64, int32_t max_seqs = 8,
                    int32_t block_size = 4, int32_t chunk = 0, bool prefix_caching = false) {
  return {.max_num_seqs = max_seqs, .max_batched_tokens = budget, .block_size = block_size,
          .long_prefill_chunk = chunk, .num_blocks = num_blocks, .watermark_blocks = 0,
          .enable_prefix_caching = prefix_caching};
}

std::unique_ptr<Scheduler> Make(const SchedulerConfig& c) {
  auto s = Scheduler::Create(c);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(s).value();
}

SequenceRequest Req(int64_t id, int32_t prompt_len, int32_t max_tokens, int32_t priority = 0) {
  return {.id = id, .prompt = std::vector<int32_t>(prompt_len, 7), .max_tokens = max_tokens,
          .priority = priority, .stop_token_ids = {}};
}

// The fake model: every sequence whose tokens are all computed samples token 1.
std::vector<SampledToken> Sample(const Scheduler& s, const SchedulerOutput& out, int32_t token = 1) {
  std::vector<SampledToken> r;
  auto add = [&](int64_t id) {
    const Sequence* q = s.Find(id);
    if (q && q->num_uncomputed() == 0) r.push_back({id, token});
  };
  for (const auto& n : out.new_sequences) add(n.seq_id);
  for (const auto& d : out.running_deltas) add(d.seq_id);
  return r;
}

std::map<int64_t, int32_t> Tokens(const SchedulerOutput& out) {
  std::map<int64_t, int32_t> m;
  for (const auto& n : out.new_sequences) m[n.seq_id] = n.num_new_tokens;
  for (const auto& d : out.running_deltas) m[d.seq_id] = d.num_new_tokens;
  return m;
}

TEST(SchedulerTest, RejectsBadConfigAndRequests) {
  EXPECT_FALSE(Scheduler::Create(Cfg(1)).ok());
  EXPECT_FALSE(Scheduler::Create(Cfg(10, 0)).ok());
  auto s = Make(Cfg(5));
  EXPECT_FALSE(s->Add(Req(1, 0, 4)).ok());
  EXPECT_FALSE(s->Add(Req(1, 4, 0)).ok());
  EXPECT_FALSE(s->Add(Req(1, 100, 4)).ok());  // can never fit in 4 blocks of 4
  EXPECT_TRUE(s->Add(Req(1, 4, 4)).ok());
  EXPECT_FALSE(s->Add(Req(1, 4, 4)).ok());    // duplicate
  EXPECT_FALSE(s->Abort(99).ok());
}

TEST(SchedulerTest, ContinuousBatchingShortJoinsWhileLongRuns) {
  auto s = Make(Cfg(64));
  ASSERT_TRUE(s->Add(Req(1, 4, 50)).ok());
  auto o = s->Schedule();
  ASSERT_EQ(o.new_sequences.size(), 1u);
  s->Update(Sample(*s, o));
  ASSERT_TRUE(s->Add(Req(2, 4, 2)).ok());
  o = s->Schedule();
  EXPECT_EQ(Tokens(o), (std::map<int64_t, int32_t>{{1, 1}, {2, 4}}));
  ASSERT_EQ(o.running_deltas.size(), 1u);
  ASSERT_EQ(o.new_sequences.size(), 1u);
  EXPECT_EQ(o.new_sequences[0].token_ids.size(), 4u);
  s->Update(Sample(*s, o));
  o = s->Schedule();
  auto r = s->Update(Sample(*s, o));
  ASSERT_EQ(r.finished.size(), 1u);  // the short one finished while the long one runs
  EXPECT_EQ(r.finished[0].seq_id, 2);
  EXPECT_EQ(r.finished[0].generated.size(), 2u);
  EXPECT_EQ(r.finished[0].reason, StopReason::kMaxTokens);
  o = s->Schedule();
  EXPECT_EQ(o.finished_ids, std::vector<int64_t>{2});
  EXPECT_EQ(Tokens(o), (std::map<int64_t, int32_t>{{1, 1}}));
}

TEST(SchedulerTest, ChunkedPrefillSplitsLongPromptWhileDecodesContinue) {
  auto s = Make(Cfg(64, /*budget=*/8, 8, 4, /*chunk=*/6));
  ASSERT_TRUE(s->Add(Req(1, 3, 20)).ok());
  auto o = s->Schedule();
  s->Update(Sample(*s, o));
  ASSERT_TRUE(s->Add(Req(2, 20, 2)).ok());
  int prefilled = 0;
  for (int step = 0; step < 4; ++step) {
    o = s->Schedule();
    auto t = Tokens(o);
    EXPECT_EQ(t[1], 1) << "decode continues at step " << step;
    EXPECT_LE(o.total_tokens, 8);
    EXPECT_LE(t[2], 6);
    prefilled += t[2];
    s->Update(Sample(*s, o));
  }
  EXPECT_EQ(prefilled, 20);
  EXPECT_EQ(s->Find(2)->num_generated(), 1);
  EXPECT_EQ(s->Find(2)->block_table().size(), 5u);
}

TEST(SchedulerTest, MaxNumSeqs) {
  auto s = Make(Cfg(64, 64, /*max_seqs=*/2));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(s->Add(Req(i, 2, 3)).ok());
  auto o = s->Schedule();
  EXPECT_EQ(o.new_sequences.size(), 2u);
  EXPECT_EQ(s->num_waiting(), 1);
}

TEST(SchedulerTest, AdmissionRefusesWhenBlocksDoNotFit) {
  auto s = Make(Cfg(/*num_blocks=*/5));  // 4 usable blocks of 4 tokens
  ASSERT_TRUE(s->Add(Req(1, 12, 2)).ok());  // 3 blocks
  ASSERT_TRUE(s->Add(Req(2, 8, 2)).ok());   // 2 blocks: does not fit next to 1
  auto o = s->Schedule();
  ASSERT_EQ(o.new_sequences.size(), 1u);
  EXPECT_EQ(o.new_sequences[0].seq_id, 1);
  EXPECT_EQ(s->num_waiting(), 1);
  EXPECT_EQ(s->allocator().num_free(), 1);
}

TEST(SchedulerTest, PreemptsLowestPriorityNewestAndItResumes) {
  auto s = Make(Cfg(/*num_blocks=*/5));  // 4 usable blocks of 4
  ASSERT_TRUE(s->Add(Req(1, 4, 8, /*priority=*/1)).ok());
  ASSERT_TRUE(s->Add(Req(2, 4, 8, 0)).ok());
  ASSERT_TRUE(s->Add(Req(3, 4, 8, 0)).ok());
  auto o = s->Schedule();
  ASSERT_EQ(o.new_sequences.size(), 3u);
  std::map<int64_t, std::vector<int32_t>> out;
  bool saw_preempt = false;
  for (int step = 0; step < 200 && s->HasUnfinished(); ++step) {
    auto r = s->Update(Sample(*s, o));
    for (auto& f : r.finished) out[f.seq_id] = f.generated;
    o = s->Schedule();
    if (!o.preempted_ids.empty() && !saw_preempt) {
      saw_preempt = true;
      EXPECT_EQ(o.preempted_ids[0], 3);  // lowest priority, latest arrival
      const Sequence* p = s->Find(3);
      EXPECT_EQ(p->status(), SequenceStatus::kPreempted);
      EXPECT_EQ(p->num_computed(), 0);
      EXPECT_TRUE(p->block_table().empty());
    }
  }
  EXPECT_TRUE(saw_preempt);
  ASSERT_EQ(out.size(), 3u);
  for (auto& [id, g] : out) EXPECT_EQ(g.size(), 8u) << id;
  EXPECT_EQ(s->allocator().num_free(), 4);
}

TEST(SchedulerTest, AbortFreesBlocksImmediately) {
  auto s = Make(Cfg(17));
  ASSERT_TRUE(s->Add(Req(1, 10, 5)).ok());
  ASSERT_TRUE(s->Add(Req(2, 10, 5)).ok());
  s->Schedule();
  EXPECT_GT(s->allocator().num_used(), 0);
  ASSERT_TRUE(s->Abort(1).ok());
  ASSERT_TRUE(s->Abort(2).ok());
  EXPECT_EQ(s->allocator().num_free(), 16);
  EXPECT_FALSE(s->HasUnfinished());
  EXPECT_EQ(s->Schedule().finished_ids, (std::vector<int64_t>{1, 2}));
}

TEST(SchedulerTest, PriorityThenFifo) {
  auto s = Make(Cfg(64, 64, /*max_seqs=*/1));
  ASSERT_TRUE(s->Add(Req(1, 2, 1, 0)).ok());
  ASSERT_TRUE(s->Add(Req(2, 2, 1, 5)).ok());
  ASSERT_TRUE(s->Add(Req(3, 2, 1, 5)).ok());
  ASSERT_TRUE(s->Add(Req(4, 2, 1, 1)).ok());
  std::vector<int64_t> order;
  while (s->HasUnfinished()) {
    auto o = s->Schedule();
    for (auto& n : o.new_sequences) order.push_back(n.seq_id);
    s->Update(Sample(*s, o));
  }
  EXPECT_EQ(order, (std::vector<int64_t>{2, 3, 4, 1}));
}

TEST(SchedulerTest, StopTokenFinishes) {
  auto s = Make(Cfg(64));
  auto req = Req(1, 3, 10);
  req.stop_token_ids = {9};
  ASSERT_TRUE(s->Add(req).ok());
  auto o = s->Schedule();
  s->Update(Sample(*s, o, 1));
  o = s->Schedule();
  auto r = s->Update(Sample(*s, o, 9));
  ASSERT_EQ(r.finished.size(), 1u);
  EXPECT_EQ(r.finished[0].reason, StopReason::kStopToken);
  EXPECT_EQ(r.finished[0].generated, (std::vector<int32_t>{1, 9}));
}

TEST(SchedulerTest, RandomizedSimulationKeepsInvariants) {
  std::mt19937 rng(1234);
  auto s = Make(Cfg(/*num_blocks=*/41, /*budget=*/32, /*max_seqs=*/6, /*block_size=*/4, /*chunk=*/12));
  const int kSeqs = 150;
  std::map<int64_t, int32_t> max_tokens, stop;  // stop token per seq, or -1
  int64_t next = 0;
  std::map<int64_t, FinishedSequence> done;
  int preemptions = 0, admitted_while_running = 0;
  for (int step = 0; step < 20000 && (next < kSeqs || s->HasUnfinished()); ++step) {
    while (next < kSeqs && rng() % 3 == 0) {
      SequenceRequest r = Req(next, 1 + rng() % 40, 1 + rng() % 40, rng() % 3);
      stop[next] = (rng() % 4 == 0) ? 100 + static_cast<int32_t>(rng() % 3) : -1;
      if (stop[next] >= 0) r.stop_token_ids = {stop[next]};
      max_tokens[next] = r.max_tokens;
      ASSERT_TRUE(s->Add(r).ok());
      ++next;
    }
    auto o = s->Schedule();
    preemptions += static_cast<int>(o.preempted_ids.size());
    if (!o.new_sequences.empty() && !o.running_deltas.empty()) ++admitted_while_running;
    EXPECT_LE(o.total_tokens, 32);
    EXPECT_LE(s->num_running(), 6);
    // Block accounting exact; no block shared between running sequences.
    std::set<int32_t> seen;
    int32_t used = 0;
    for (const Sequence* q : s->running()) {
      EXPECT_GE(static_cast<int32_t>(q->block_table().size()) * 4, q->num_computed());
      for (int32_t b : q->block_table()) {
        EXPECT_NE(b, kNullBlock);
        EXPECT_TRUE(seen.insert(b).second) << "block " << b << " shared";
        EXPECT_EQ(s->allocator().ref_count(b), 1);
        ++used;
      }
    }
    ASSERT_EQ(used, s->allocator().num_used());
    // Fake model: random tokens in [100, 110).
    std::vector<SampledToken> res;
    for (auto& [id, n] : Tokens(o)) {
      const Sequence* q = s->Find(id);
      if (q->num_uncomputed() == 0) res.push_back({id, 100 + static_cast<int32_t>(rng() % 10)});
    }
    for (auto& f : s->Update(res).finished) done[f.seq_id] = f;
  }
  ASSERT_EQ(done.size(), static_cast<size_t>(kSeqs));
  EXPECT_GT(preemptions, 0);  // the run exercises preemption and continuous batching
  EXPECT_GT(admitted_while_running, 0);
  for (auto& [id, f] : done) {
    if (f.reason == StopReason::kStopToken) {
      EXPECT_EQ(f.generated.back(), stop[id]);
      EXPECT_LE(static_cast<int32_t>(f.generated.size()), max_tokens[id]);
    } else {
      EXPECT_EQ(f.reason, StopReason::kMaxTokens);
      EXPECT_EQ(static_cast<int32_t>(f.generated.size()), max_tokens[id]);
      EXPECT_EQ(std::count(f.generated.begin(), f.generated.end(), stop[id]), 0);
    }
  }
  EXPECT_EQ(s->allocator().num_free(), 40);
}

// ---- prefix caching

SequenceRequest Prompt(int64_t id, std::vector<int32_t> prompt, int32_t max_tokens) {
  return {.id = id, .prompt = std::move(prompt), .max_tokens = max_tokens, .priority = 0, .stop_token_ids = {}};
}

std::vector<int32_t> Range(int32_t from, int32_t n) {
  std::vector<int32_t> v(n);
  for (int32_t i = 0; i < n; ++i) v[i] = from + i;
  return v;
}

// Runs the scheduler until every sequence finished; returns the tokens computed.
int64_t RunToEnd(Scheduler& s) {
  int64_t computed = 0;
  for (int step = 0; step < 1000 && s.HasUnfinished(); ++step) {
    SchedulerOutput out = s.Schedule();
    computed += out.total_tokens;
    s.Update(Sample(s, out));
  }
  EXPECT_FALSE(s.HasUnfinished());
  return computed;
}

// The randomized run again with prefix caching on and prompts drawn from a few
// shared prefixes: a block may now sit in several tables, but then it covers the
// same tokens at the same positions in each (the content a hit relies on), its
// ref count is the number of tables holding it, and the index agrees with the
// hash slots.
TEST(PrefixCacheTest, RandomizedSimulationSharesOnlyIdenticalContent) {
  std::mt19937 rng(99);
  auto s = Make(Cfg(/*num_blocks=*/41, /*budget=*/32, /*max_seqs=*/6, /*block_size=*/4, /*chunk=*/12,
                    /*prefix_caching=*/true));
  const int kSeqs = 150;
  int64_t next = 0;
  int finished = 0, preemptions = 0;
  for (int step = 0; step < 20000 && (next < kSeqs || s->HasUnfinished()); ++step) {
    while (next < kSeqs && rng() % 3 == 0) {
      const int32_t family = static_cast<int32_t>(rng() % 3);
      std::vector<int32_t> prompt;
      const int32_t len = 1 + static_cast<int32_t>(rng() % 30);
      for (int32_t i = 0; i < len; ++i) prompt.push_back(i < 12 ? 1000 * family + i : 50 + static_cast<int32_t>(rng() % 5));
      ASSERT_TRUE(s->Add(Prompt(next, prompt, 1 + static_cast<int32_t>(rng() % 30))).ok());
      ++next;
    }
    auto o = s->Schedule();
    preemptions += static_cast<int>(o.preempted_ids.size());
    std::map<int32_t, std::vector<int32_t>> content;  // block -> tokens it covers
    std::map<int32_t, int32_t> holders;
    for (const Sequence* q : s->running()) {
      const auto& table = q->block_table();
      for (size_t i = 0; i < table.size(); ++i) {
        const int32_t b = table[i];
        ++holders[b];
        const int32_t from = static_cast<int32_t>(i) * 4;
        const int32_t to = std::min(from + 4, q->num_computed());
        if (holders[b] > 1) {
          // Shared: only full, computed blocks, with identical tokens.
          ASSERT_EQ(to - from, 4) << "partial block " << b << " shared";
          std::vector<int32_t> mine(q->tokens().begin() + from, q->tokens().begin() + to);
          ASSERT_EQ(content[b], mine) << "block " << b << " shared with different tokens";
        } else if (to - from == 4) {
          content[b].assign(q->tokens().begin() + from, q->tokens().begin() + to);
        }
      }
    }
    for (const auto& [b, n] : holders) ASSERT_EQ(s->allocator().ref_count(b), n) << b;
    ASSERT_EQ(static_cast<int32_t>(holders.size()), s->allocator().num_used());
    for (int32_t b = 1; b < 41; ++b) {
      if (auto h = s->allocator().BlockHash(b)) ASSERT_EQ(s->allocator().FindCached(*h), b);
    }
    std::vector<SampledToken> res;
    for (auto& [id, n] : Tokens(o)) {
      const Sequence* q = s->Find(id);
      if (q->num_uncomputed() == 0) res.push_back({id, 100 + static_cast<int32_t>(rng() % 10)});
    }
    finished += static_cast<int>(s->Update(res).finished.size());
  }
  EXPECT_EQ(finished, kSeqs);
  EXPECT_GT(s->prefix_hit_tokens(), 0);
  EXPECT_GT(preemptions, 0);
  EXPECT_EQ(s->allocator().num_free(), 40);
}

// The same shared-prefix workload with the cache off and on: fewer tokens
// computed and fewer blocks allocated with it.
TEST(PrefixCacheTest, SharedPrefixWorkloadComputesAndAllocatesLessWithTheCache) {
  auto run = [](bool caching, int64_t* computed, int32_t* peak_used) {
    auto s = Make(Cfg(200, 64, 4, 4, 0, caching));
    for (int64_t i = 0; i < 12; ++i) {
      std::vector<int32_t> p = Range(100, 32);  // shared system prompt: 8 blocks
      for (int32_t k = 0; k < 5; ++k) p.push_back(1000 + static_cast<int32_t>(i) * 10 + k);
      ASSERT_TRUE(s->Add(Prompt(i, p, 4)).ok());
    }
    *computed = 0;
    *peak_used = 0;
    for (int step = 0; step < 1000 && s->HasUnfinished(); ++step) {
      SchedulerOutput out = s->Schedule();
      *computed += out.total_tokens;
      *peak_used = std::max(*peak_used, s->allocator().num_used());
      s->Update(Sample(*s, out));
    }
  };
  int64_t computed_off, computed_on;
  int32_t peak_off, peak_on;
  run(false, &computed_off, &peak_off);
  run(true, &computed_on, &peak_on);
  EXPECT_EQ(computed_off, 12 * (37 + 3));
  // The first step's budget (64) admits requests 0 and 1 (37 + 27 tokens), both
  // before anything is cached; every later request reuses the 8 cached blocks.
  EXPECT_EQ(computed_on, computed_off - 10 * 32);
  EXPECT_LT(peak_on, peak_off);
}

TEST(PrefixCacheTest, HashChainCoversTheWholePrefix) {
  Sequence a(Prompt(1, Range(10, 12), 4), 0);
  Sequence b(Prompt(2, Range(10, 12), 4), 1);
  std::vector<int32_t> other = Range(10, 12);
  other[1] = 99;  // differs in block 0 only
  Sequence c(Prompt(3, other, 4), 2);
  const auto& ha = a.FullBlockHashes(4);
  ASSERT_EQ(ha.size(), 3u);
  EXPECT_EQ(ha, b.FullBlockHashes(4));
  const auto& hc = c.FullBlockHashes(4);
  // Block 2 has the same tokens in a and c, but its hash chains the prefix.
  for (size_t i = 0; i < 3; ++i) EXPECT_NE(ha[i], hc[i]) << i;
  Sequence partial(Prompt(4, Range(10, 7), 4), 3);
  EXPECT_EQ(partial.FullBlockHashes(4).size(), 1u);  // only full blocks
  EXPECT_EQ(partial.FullBlockHashes(4)[0], ha[0]);
}

TEST(PrefixCacheTest, SharedPrefixReusesBlocksAndSkipsTheirComputation) {
  auto s = Make(Cfg(64, 256, 8, 4, 0, /*prefix_caching=*/true));
  std::vector<int32_t> system = Range(100, 16);  // 4 full blocks shared
  auto prompt = [&](int32_t salt) {
    std::vector<int32_t> p = system;
    for (int i = 0; i < 6; ++i) p.push_back(500 + salt * 10 + i);
    return p;
  };
  ASSERT_TRUE(s->Add(Prompt(1, prompt(1), 3)).ok());
  EXPECT_EQ(RunToEnd(*s), 22 + 2);  // cold: the whole prompt, then 2 decodes
  EXPECT_EQ(s->prefix_hit_tokens(), 0);
  // Same system prompt: its 4 blocks come from the cache, free but kept.
  ASSERT_TRUE(s->Add(Prompt(2, prompt(2), 3)).ok());
  SchedulerOutput first = s->Schedule();
  ASSERT_EQ(first.new_sequences.size(), 1u);
  EXPECT_EQ(first.new_sequences[0].num_computed, 16);
  EXPECT_EQ(first.new_sequences[0].num_new_tokens, 6);
  s->Update(Sample(*s, first));
  EXPECT_EQ(RunToEnd(*s), 2);
  EXPECT_EQ(s->prefix_query_tokens(), 44);
  EXPECT_EQ(s->prefix_hit_tokens(), 16);
}

TEST(PrefixCacheTest, ConcurrentSharersHoldOneCopyAndFreeItLast) {
  auto s = Make(Cfg(64, 256, 8, 4, 0, true));
  ASSERT_TRUE(s->Add(Prompt(1, Range(100, 13), 20)).ok());
  SchedulerOutput o1 = s->Schedule();
  s->Update(Sample(*s, o1));  // seq 1 computed 13 tokens: blocks 0..2 registered
  const std::vector<int32_t> table1 = s->Find(1)->block_table();
  ASSERT_TRUE(s->Add(Prompt(2, Range(100, 14), 20)).ok());
  SchedulerOutput o2 = s->Schedule();
  ASSERT_EQ(o2.new_sequences.size(), 1u);
  const NewSequence& ns = o2.new_sequences[0];
  EXPECT_EQ(ns.num_computed, 12);
  ASSERT_GE(ns.block_ids.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ns.block_ids[i], table1[i]);
    EXPECT_EQ(s->allocator().ref_count(table1[i]), 2);
  }
  EXPECT_NE(ns.block_ids[3], table1[3]);  // the partial block is never shared
  ASSERT_TRUE(s->Abort(1).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s->allocator().ref_count(table1[i]), 1);
  ASSERT_TRUE(s->Abort(2).ok());
  EXPECT_EQ(s->allocator().num_used(), 0);
  EXPECT_EQ(s->allocator().num_cached(), 3);  // still cached while free
}

TEST(PrefixCacheTest, WholePromptCachedStillComputesItsLastToken) {
  auto s = Make(Cfg(64, 256, 8, 4, 0, true));
  ASSERT_TRUE(s->Add(Prompt(1, Range(100, 8), 2)).ok());
  RunToEnd(*s);
  ASSERT_TRUE(s->Add(Prompt(2, Range(100, 8), 2)).ok());
  SchedulerOutput o = s->Schedule();
  ASSERT_EQ(o.new_sequences.size(), 1u);
  // 2 full blocks cached, but a sampled token needs a computed last position:
  // the last block is recomputed (computation starts on a block boundary).
  EXPECT_EQ(o.new_sequences[0].num_computed, 4);
  EXPECT_EQ(o.new_sequences[0].num_new_tokens, 4);
}

TEST(PrefixCacheTest, EvictionIsLeastRecentlyFreedAndClearsTheIndex) {
  // 6 usable blocks of 4 tokens.
  auto s = Make(Cfg(7, 256, 8, 4, 0, true));
  ASSERT_TRUE(s->Add(Prompt(1, Range(100, 9), 1)).ok());  // blocks A0 A1 (+1 partial)
  RunToEnd(*s);
  ASSERT_TRUE(s->Add(Prompt(2, Range(300, 9), 1)).ok());  // blocks B0 B1 (+1 partial)
  RunToEnd(*s);
  EXPECT_EQ(s->allocator().num_cached(), 4);
  // A 13-token prompt needs 4 blocks: the free queue's head goes first. The 2
  // never-cached blocks and the partial ones precede the older cached prefix.
  ASSERT_TRUE(s->Add(Prompt(3, Range(700, 13), 1)).ok());
  RunToEnd(*s);
  // The prefix of sequence 2 (freed last) survives longer than that of 1.
  ASSERT_TRUE(s->Add(Prompt(4, Range(300, 9), 1)).ok());
  SchedulerOutput o = s->Schedule();
  ASSERT_EQ(o.new_sequences.size(), 1u);
  EXPECT_EQ(o.new_sequences[0].num_computed, 8);
  s->Update(Sample(*s, o));
  RunToEnd(*s);
  // Sequence 1's prefix was the least recently freed: evicted by sequence 3.
  ASSERT_TRUE(s->Add(Prompt(5, Range(100, 9), 1)).ok());
  SchedulerOutput o5 = s->Schedule();
  ASSERT_EQ(o5.new_sequences.size(), 1u);
  EXPECT_EQ(o5.new_sequences[0].num_computed, 0);
  s->Update(Sample(*s, o5));
  RunToEnd(*s);
  for (int32_t b = 1; b < 7; ++b) {
    if (auto h = s->allocator().BlockHash(b)) EXPECT_EQ(s->allocator().FindCached(*h), b);
  }
}

TEST(PrefixCacheTest, PreemptedSequenceResumesFromItsOwnCachedBlocks) {
  // 5 usable blocks; two sequences that each grow to 4 blocks cannot both run.
  auto s = Make(Cfg(6, 256, 8, 4, 0, true));
  ASSERT_TRUE(s->Add(Prompt(1, Range(100, 8), 8)).ok());
  ASSERT_TRUE(s->Add(Prompt(2, Range(200, 8), 8)).ok());
  int preempted = 0;
  int64_t hits_before = 0;
  for (int step = 0; step < 200 && s->HasUnfinished(); ++step) {
    SchedulerOutput out = s->Schedule();
    preempted += static_cast<int>(out.preempted_ids.size());
    for (const NewSequence& ns : out.new_sequences) {
      EXPECT_EQ(ns.num_computed % 4, 0);
      EXPECT_LT(ns.num_computed, static_cast<int32_t>(ns.token_ids.size()));
    }
    s->Update(Sample(*s, out));
    if (step == 0) hits_before = s->prefix_hit_tokens();
  }
  EXPECT_FALSE(s->HasUnfinished());
  EXPECT_GT(preempted, 0);
  EXPECT_GT(s->prefix_hit_tokens(), hits_before);  // a resumed sequence hit its own prefix
}

// Two plans in flight (pipeline parallelism): with a cap of half the
// sequences the second schedule takes the other half; a sequence waiting for
// its sample is never scheduled again before its token arrives; cohorts then
// alternate.
TEST(SchedulerTest, StepsInFlightAlternateCohortsAndSkipSequencesAwaitingSamples) {
  auto s = Make(Cfg(64, 64));
  for (int64_t id = 1; id <= 4; ++id) ASSERT_TRUE(s->Add(Req(id, 3, 10)).ok());
  SchedulerOutput a = s->Schedule(2);
  EXPECT_EQ(Tokens(a), (std::map<int64_t, int32_t>{{1, 3}, {2, 3}}));
  SchedulerOutput b = s->Schedule(2);  // a still in flight
  EXPECT_EQ(Tokens(b), (std::map<int64_t, int32_t>{{3, 3}, {4, 3}}));
  EXPECT_TRUE(s->Schedule(2).empty());  // everyone awaits a sample
  s->Update(Sample(*s, a));
  SchedulerOutput c = s->Schedule(2);
  EXPECT_EQ(Tokens(c), (std::map<int64_t, int32_t>{{1, 1}, {2, 1}}));
  s->Update(Sample(*s, b));
  SchedulerOutput d = s->Schedule(2);
  EXPECT_EQ(Tokens(d), (std::map<int64_t, int32_t>{{3, 1}, {4, 1}}));
  // A sample for a sequence preempted or aborted while in flight is dropped.
  ASSERT_TRUE(s->Abort(1).ok());
  UpdateResult u = s->Update(Sample(*s, c));
  EXPECT_EQ(s->Find(2)->num_tokens(), 5);
  EXPECT_EQ(s->Find(1), nullptr);
  EXPECT_EQ(u.num_dropped, 0);  // Sample() skipped the aborted id; a stale one would count
  UpdateResult stale = s->Update({{1, 9}});
  EXPECT_EQ(stale.num_dropped, 1);
}

}  // namespace
}  // namespace strata::coordinator
