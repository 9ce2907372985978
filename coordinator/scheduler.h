// Token scheduler of one replica (vLLM-v1 style): every step each scheduled
// sequence gets a number of new tokens to compute; there are no prefill/decode
// phases, so chunked prefill and decodes mix in one step.
//
// Per Schedule():
//   1. Running sequences first, best first (priority desc, arrival asc): a decode
//      gets 1 token, a partial prefill up to min(token budget, long_prefill_chunk).
//      When a running sequence cannot get the blocks it needs, the worst running
//      sequence (lowest priority, latest arrival; possibly itself) is preempted by
//      recompute: its blocks are freed, num_computed = 0, back to waiting.
//   2. If nothing was preempted this step, waiting sequences in (priority desc,
//      arrival asc) order while budget, max_num_seqs and blocks allow. Admission
//      requires the blocks of the whole (prompt + generated) sequence to fit with
//      `watermark_blocks` to spare; admission stops at the first that does not fit
//      (no skipping: strict priority).
// Scheduled tokens count as computed when Schedule() returns (the plan is sent);
// Update() then appends sampled tokens to sequences whose tokens are all computed.
//
// Thread ownership: not thread-safe. The replica's engine loop thread owns the
// scheduler and makes every call (Add/Abort requests are handed to it).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/block_allocator.h"
#include "coordinator/sequence.h"

namespace strata::coordinator {

struct SchedulerConfig {
  int32_t max_num_seqs = 256;
  int32_t max_batched_tokens = 2048;  // token budget per step
  int32_t block_size = 16;
  int32_t long_prefill_chunk = 0;     // max prefill tokens per sequence per step; 0 = budget
  int32_t num_blocks = 0;             // KV blocks of the replica including null block 0
  int32_t watermark_blocks = 0;       // kept free at admission
  bool enable_prefix_caching = true;  // reuse cached full blocks of a prompt's prefix
};

// A sequence the workers have not seen (new, or resumed after preemption): sent
// once in full.
struct NewSequence {
  int64_t seq_id = 0;
  std::vector<int32_t> token_ids;   // all tokens known so far (prompt + generated)
  std::vector<int32_t> block_ids;   // whole block table
  int32_t num_computed = 0;         // tokens already computed before this step (0)
  int32_t num_new_tokens = 0;       // tokens [num_computed, num_computed + n) run now
};

// A sequence the workers already hold: only what changed.
struct RunningDelta {
  int64_t seq_id = 0;
  int32_t num_new_tokens = 0;
  std::vector<int32_t> new_token_ids;  // the tokens run this step
  std::vector<int32_t> new_block_ids;  // appended to its block table
};

struct SchedulerOutput {
  std::vector<NewSequence> new_sequences;
  std::vector<RunningDelta> running_deltas;
  std::vector<int64_t> finished_ids;   // finished or aborted since the last step: drop them
  std::vector<int64_t> preempted_ids;  // preempted this step: drop their state
  int32_t total_tokens = 0;
  bool empty() const { return new_sequences.empty() && running_deltas.empty(); }
};

struct SampledToken {
  int64_t seq_id = 0;
  int32_t token = 0;
};

struct FinishedSequence {
  int64_t seq_id = 0;
  std::vector<int32_t> generated;
  StopReason reason = StopReason::kNone;
};

struct UpdateResult {
  std::vector<FinishedSequence> finished;
  int32_t num_dropped = 0;  // tokens for unknown / not-yet-sampling sequences
};

class Scheduler {
 public:
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerConfig& config);

  // Queues a request. InvalidArgument on a duplicate id, empty prompt,
  // max_tokens < 1, or a sequence that could never fit in KV memory.
  absl::Status Add(SequenceRequest request);
  // Cancels a request: its blocks are freed at once. NotFound if unknown/finished.
  absl::Status Abort(int64_t seq_id);

  // At most `max_seqs` sequences (running and newly admitted) this step. A
  // running sequence whose tokens are all computed (its sample is still on
  // its way back: an earlier step is in flight) gets nothing; with a cap of
  // about running / steps-in-flight, sequences alternate between the steps in
  // flight, as pipeline-parallel micro-batches.
  SchedulerOutput Schedule(int32_t max_seqs = std::numeric_limits<int32_t>::max());
  UpdateResult Update(const std::vector<SampledToken>& results);

  // Prefix caching, cumulative since Create: tokens of admitted sequences
  // looked up in the cache, and those found (computation skipped).
  int64_t prefix_query_tokens() const { return prefix_query_tokens_; }
  int64_t prefix_hit_tokens() const { return prefix_hit_tokens_; }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  bool HasUnfinished() const { return !running_.empty() || !waiting_.empty(); }
  const Sequence* Find(int64_t seq_id) const;
  const BlockAllocator& allocator() const { return *allocator_; }
  // See BlockAllocator::set_index_observer.
  void set_prefix_cache_observer(std::function<void(uint64_t, bool)> fn) {
    allocator_->set_index_observer(std::move(fn));
  }
  const std::vector<Sequence*>& running() const { return running_; }

 private:
  Scheduler(const SchedulerConfig& config, std::unique_ptr<BlockAllocator> allocator);
  int32_t BlocksFor(int32_t num_tokens) const {
    return (num_tokens + config_.block_size - 1) / config_.block_size;
  }
  void InsertWaiting(Sequence* seq);
  void Preempt(Sequence* seq, SchedulerOutput& out);
  void Finish(Sequence* seq, StopReason reason);
  void RemoveFrom(std::vector<Sequence*>& list, Sequence* seq);
  // The cached blocks of the longest cached prefix of `seq`, leaving at least
  // one token to compute.
  std::vector<int32_t> CachedPrefix(Sequence* seq);
  // Registers the full, computed blocks of `seq` in the prefix cache.
  void RegisterComputedBlocks(Sequence* seq);

  SchedulerConfig config_;
  std::unique_ptr<BlockAllocator> allocator_;
  std::unordered_map<int64_t, std::unique_ptr<Sequence>> seqs_;
  std::vector<Sequence*> running_;   // admitted; workers hold their state
  std::vector<Sequence*> waiting_;   // sorted best first
  std::vector<int64_t> pending_finished_;
  int64_t next_arrival_ = 0;
  int64_t prefix_query_tokens_ = 0;
  int64_t prefix_hit_tokens_ = 0;
};

}  // namespace strata::coordinator
