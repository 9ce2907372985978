// One request's state in the engine loop: its tokens, how many of them the
// workers have computed (their K/V written), its KV block table and its status.
//
//   tokens:   [ prompt ............ | generated ...... ]
//             [ computed .................. | pending ]
//             0                  num_computed    num_tokens()
//
// Thread ownership: owned by the Scheduler, touched only by the engine loop thread.
#pragma once

#include <cstdint>
#include <vector>

namespace strata::coordinator {

enum class SequenceStatus { kWaiting, kRunning, kPreempted, kFinished };

enum class StopReason { kNone, kMaxTokens, kStopToken, kAborted };

struct SequenceRequest {
  int64_t id = 0;
  std::vector<int32_t> prompt;
  int32_t max_tokens = 16;               // generated tokens, >= 1
  int32_t priority = 0;                  // higher runs first
  std::vector<int32_t> stop_token_ids;   // generating one of these finishes
};

class Sequence {
 public:
  Sequence(SequenceRequest request, int64_t arrival);

  int64_t id() const { return id_; }
  int32_t priority() const { return priority_; }
  int64_t arrival() const { return arrival_; }
  int32_t max_tokens() const { return max_tokens_; }
  int32_t prompt_len() const { return prompt_len_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int32_t num_tokens() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t num_generated() const { return num_tokens() - prompt_len_; }
  std::vector<int32_t> generated() const {
    return {tokens_.begin() + prompt_len_, tokens_.end()};
  }
  int32_t num_computed() const { return num_computed_; }
  int32_t num_uncomputed() const { return num_tokens() - num_computed_; }
  const std::vector<int32_t>& block_table() const { return block_table_; }
  SequenceStatus status() const { return status_; }
  StopReason stop_reason() const { return stop_reason_; }
  bool IsStopToken(int32_t token) const;

  // Mutators used by the scheduler.
  void set_status(SequenceStatus s) { status_ = s; }
  void set_stop_reason(StopReason r) { stop_reason_ = r; }
  void AdvanceComputed(int32_t n) { num_computed_ += n; }
  void AppendBlocks(const std::vector<int32_t>& blocks) {
    block_table_.insert(block_table_.end(), blocks.begin(), blocks.end());
  }
  void AppendToken(int32_t token) { tokens_.push_back(token); }
  // Preemption by recompute: K/V and blocks are dropped, tokens are kept.
  void ResetForRecompute() {
    num_computed_ = 0;
    block_table_.clear();
    num_registered_blocks_ = 0;
  }

  // Prefix caching: the chained hashes of the full blocks of tokens()
  // (coordinator/prefix_hash.h), extended lazily as tokens arrive.
  const std::vector<uint64_t>& FullBlockHashes(int32_t block_size);
  // Leading blocks of the table already registered in the prefix cache.
  int32_t num_registered_blocks() const { return num_registered_blocks_; }
  void set_num_registered_blocks(int32_t n) { num_registered_blocks_ = n; }

 private:
  int64_t id_;
  int32_t priority_;
  int64_t arrival_;
  int32_t max_tokens_;
  int32_t prompt_len_;
  std::vector<int32_t> stop_token_ids_;
  std::vector<int32_t> tokens_;
  int32_t num_computed_ = 0;
  std::vector<int32_t> block_table_;
  std::vector<uint64_t> block_hashes_;
  int32_t num_registered_blocks_ = 0;
  SequenceStatus status_ = SequenceStatus::kWaiting;
  StopReason stop_reason_ = StopReason::kNone;
};

}  // namespace strata::coordinator
