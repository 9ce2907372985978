#include "coordinator/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace strata::coordinator {
namespace {

// Best first: higher priority, then earlier arrival.
bool Better(const Sequence* a, const Sequence* b) {
  if (a->priority() != b->priority()) return a->priority() > b->priority();
  return a->arrival() < b->arrival();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const SchedulerConfig& config) {
  if (config.max_num_seqs < 1 || config.max_batched_tokens < 1 || config.block_size < 1 ||
      config.long_prefill_chunk < 0 || config.watermark_blocks < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SchedulerConfig: max_num_seqs (", config.max_num_seqs, "), max_batched_tokens (",
        config.max_batched_tokens, ") and block_size (", config.block_size,
        ") must be >= 1; long_prefill_chunk and watermark_blocks >= 0"));
  }
  auto allocator = BlockAllocator::Create({.num_blocks = config.num_blocks});
  if (!allocator.ok()) return allocator.status();
  return std::unique_ptr<Scheduler>(new Scheduler(config, std::move(allocator).value()));
}

Scheduler::Scheduler(const SchedulerConfig& config, std::unique_ptr<BlockAllocator> allocator)
    : config_(config), allocator_(std::move(allocator)) {}

absl::Status Scheduler::Add(SequenceRequest request) {
  if (seqs_.count(request.id)) {
    return absl::InvalidArgumentError(absl::StrCat("sequence ", request.id, " already exists"));
  }
  if (request.prompt.empty()) return absl::InvalidArgumentError("empty prompt");
  if (request.max_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens must be >= 1, got ", request.max_tokens));
  }
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.max_tokens;
  const int64_t usable = allocator_->num_blocks() - 1 - config_.watermark_blocks;
  if ((total + config_.block_size - 1) / config_.block_size > usable) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt + max_tokens = ", total, " tokens needs more KV blocks than the replica has (",
        usable, " of ", config_.block_size, " tokens)"));
  }
  auto seq = std::make_unique<Sequence>(std::move(request), next_arrival_++);
  Sequence* raw = seq.get();
  seqs_.emplace(raw->id(), std::move(seq));
  InsertWaiting(raw);
  return absl::OkStatus();
}

void Scheduler::InsertWaiting(Sequence* seq) {
  waiting_.insert(std::upper_bound(waiting_.begin(), waiting_.end(), seq, Better), seq);
}

void Scheduler::RemoveFrom(std::vector<Sequence*>& list, Sequence* seq) {
  list.erase(std::remove(list.begin(), list.end(), seq), list.end());
}

absl::Status Scheduler::Abort(int64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return absl::NotFoundError(absl::StrCat("no sequence ", seq_id));
  Finish(it->second.get(), StopReason::kAborted);
  return absl::OkStatus();
}

void Scheduler::Finish(Sequence* seq, StopReason reason) {
  const bool held_by_workers = seq->status() == SequenceStatus::kRunning;
  // The allocator only rejects ids it did not hand out; the table holds only its ids.
  allocator_->FreeSequence(seq->block_table()).IgnoreError();
  seq->ResetForRecompute();
  seq->set_status(SequenceStatus::kFinished);
  seq->set_stop_reason(reason);
  RemoveFrom(running_, seq);
  RemoveFrom(waiting_, seq);
  if (held_by_workers) pending_finished_.push_back(seq->id());
  seqs_.erase(seq->id());
}

void Scheduler::Preempt(Sequence* seq, SchedulerOutput& out) {
  allocator_->FreeSequence(seq->block_table()).IgnoreError();
  seq->ResetForRecompute();
  seq->set_status(SequenceStatus::kPreempted);
  RemoveFrom(running_, seq);
  InsertWaiting(seq);
  out.preempted_ids.push_back(seq->id());
}

SchedulerOutput Scheduler::Schedule(int32_t max_seqs) {
  SchedulerOutput out;
  out.finished_ids = std::move(pending_finished_);
  pending_finished_.clear();
  int32_t budget = config_.max_batched_tokens;
  const int32_t chunk = config_.long_prefill_chunk > 0 ? config_.long_prefill_chunk : budget;

  // 1. Running sequences, best first, so the victim of a preemption is always the
  // tail (the worst of those not yet scheduled this step).
  std::stable_sort(running_.begin(), running_.end(), Better);
  bool preempted = false;
  int32_t scheduled = 0;
  for (size_t i = 0; i < running_.size() && budget > 0 && scheduled < max_seqs; ++i) {
    Sequence* seq = running_[i];
    int32_t n = std::min(seq->num_uncomputed(), budget);
    if (seq->num_computed() < seq->num_tokens() - 1) n = std::min(n, chunk);  // prefill
    if (n <= 0) continue;
    const int32_t need = BlocksFor(seq->num_computed() + n) -
                         static_cast<int32_t>(seq->block_table().size());
    std::optional<std::vector<int32_t>> blocks;
    bool self_preempted = false;
    while (!(blocks = allocator_->Allocate(std::max(need, 0)))) {
      Sequence* victim = running_.back();
      Preempt(victim, out);
      preempted = true;
      if (victim == seq) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;  // seq was the tail: nothing after it is left
    seq->AppendBlocks(*blocks);
    RunningDelta d;
    d.seq_id = seq->id();
    d.num_new_tokens = n;
    d.new_token_ids.assign(seq->tokens().begin() + seq->num_computed(),
                           seq->tokens().begin() + seq->num_computed() + n);
    d.new_block_ids = std::move(*blocks);
    seq->AdvanceComputed(n);
    budget -= n;
    ++scheduled;
    out.total_tokens += n;
    out.running_deltas.push_back(std::move(d));
  }

  // 2. Waiting sequences, unless this step had to preempt (memory is short).
  while (!preempted && budget > 0 && !waiting_.empty() && scheduled < max_seqs &&
         static_cast<int32_t>(running_.size()) < config_.max_num_seqs) {
    Sequence* seq = waiting_.front();
    // Prefix cache: the longest run of cached leading blocks is reused as is.
    // Cached blocks that are free right now still come out of the free pool.
    const std::vector<int32_t> hits = CachedPrefix(seq);
    int32_t free_hits = 0;
    for (int32_t b : hits) free_hits += allocator_->ref_count(b) == 0 ? 1 : 0;
    const int32_t hit_blocks = static_cast<int32_t>(hits.size());
    if (BlocksFor(seq->num_tokens()) - hit_blocks + free_hits >
        allocator_->num_free() - config_.watermark_blocks) {
      break;
    }
    const int32_t computed = hit_blocks * config_.block_size;
    const int32_t n = std::min({seq->num_tokens() - computed, budget, chunk});
    // Ref the hits first so Allocate cannot hand a free cached block out again.
    for (int32_t b : hits) allocator_->Ref(b).IgnoreError();  // ids come from the index
    std::optional<std::vector<int32_t>> blocks = allocator_->Allocate(BlocksFor(computed + n) - hit_blocks);
    if (!blocks) {  // unreachable given the check above; undo and stop admitting
      for (int32_t b : hits) allocator_->Unref(b).IgnoreError();
      break;
    }
    waiting_.erase(waiting_.begin());
    seq->AppendBlocks(hits);
    seq->AppendBlocks(*blocks);
    seq->set_num_registered_blocks(hit_blocks);
    seq->set_status(SequenceStatus::kRunning);
    running_.push_back(seq);
    if (config_.enable_prefix_caching) {
      prefix_query_tokens_ += seq->num_tokens();
      prefix_hit_tokens_ += computed;
    }
    NewSequence ns;
    ns.seq_id = seq->id();
    ns.token_ids = seq->tokens();
    ns.block_ids = seq->block_table();
    ns.num_computed = computed;
    ns.num_new_tokens = n;
    seq->AdvanceComputed(computed + n);
    budget -= n;
    ++scheduled;
    out.total_tokens += n;
    out.new_sequences.push_back(std::move(ns));
  }
  return out;
}

std::vector<int32_t> Scheduler::CachedPrefix(Sequence* seq) {
  std::vector<int32_t> hits;
  if (!config_.enable_prefix_caching) return hits;
  const std::vector<uint64_t>& hashes = seq->FullBlockHashes(config_.block_size);
  const size_t max_hits = static_cast<size_t>((seq->num_tokens() - 1) / config_.block_size);
  for (size_t i = 0; i < std::min(hashes.size(), max_hits); ++i) {
    std::optional<int32_t> b = allocator_->FindCached(hashes[i]);
    if (!b) break;
    hits.push_back(*b);
  }
  return hits;
}

void Scheduler::RegisterComputedBlocks(Sequence* seq) {
  if (!config_.enable_prefix_caching) return;
  const int32_t full = seq->num_computed() / config_.block_size;
  if (full <= seq->num_registered_blocks()) return;
  const std::vector<uint64_t>& hashes = seq->FullBlockHashes(config_.block_size);
  for (int32_t i = seq->num_registered_blocks(); i < full; ++i) {
    // A block another sequence already caches with the same contents stays
    // unindexed; the ids come from the table, so this cannot fail otherwise.
    allocator_->SetBlockHash(seq->block_table()[i], hashes[i]).IgnoreError();
  }
  seq->set_num_registered_blocks(full);
}

UpdateResult Scheduler::Update(const std::vector<SampledToken>& results) {
  UpdateResult r;
  // The step these results answer has written the KV of every computed token:
  // full blocks become reusable by later requests (before any is freed below).
  for (Sequence* seq : running_) RegisterComputedBlocks(seq);
  for (const SampledToken& t : results) {
    auto it = seqs_.find(t.seq_id);
    if (it == seqs_.end() || it->second->status() != SequenceStatus::kRunning ||
        it->second->num_uncomputed() != 0) {
      ++r.num_dropped;  // aborted or preempted meanwhile, or still prefilling
      continue;
    }
    Sequence* seq = it->second.get();
    seq->AppendToken(t.token);
    StopReason reason = StopReason::kNone;
    if (seq->IsStopToken(t.token)) {
      reason = StopReason::kStopToken;
    } else if (seq->num_generated() >= seq->max_tokens()) {
      reason = StopReason::kMaxTokens;
    }
    if (reason != StopReason::kNone) {
      r.finished.push_back({seq->id(), seq->generated(), reason});
      Finish(seq, reason);
    }
  }
  return r;
}

const Sequence* Scheduler::Find(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? nullptr : it->second.get();
}

}  // namespace strata::coordinator
