// KV-cache block ids of one replica. The coordinator decides which block ids a
// sequence uses; workers own the bytes behind them.
//
// Invariants (tested in tests/coordinator/block_allocator_test.cc):
//   1. Block 0 is the null block: never handed out, never freed, ref count 0.
//   2. Every other block is either free (ref count 0, in the free queue) or used
//      (ref count >= 1, not in the free queue). num_free() + num_used() ==
//      num_blocks() - 1 at all times.
//   3. Unref of a block whose ref count is 0 is an error (no double free) and
//      changes nothing.
//   4. The free queue is LRU: Allocate takes from the head (least recently
//      freed), a block whose ref count drops to 0 goes to the tail.
//   5. FreeSequence releases a block table tail-first, so a sequence's last
//      blocks become reusable before its first ones (its prefix, the part other
//      requests are most likely to share, stays cached longest).
//   6. "No room" is a value: Allocate returns std::nullopt and allocates nothing.
//   7. A block may carry a prefix-cache hash (a full block's chained token hash).
//      The hash survives while the block is free (a later prefix hit can Ref it
//      back) and is cleared when Allocate hands the block out for new content, so
//      cached blocks are evicted in LRU order of their release.
//   8. The cache index maps each hash to at most one block and always agrees
//      with the blocks' hash slots: FindCached(h) == b  <=>  BlockHash(b) == h.
//      A second block computed with the same contents is not indexed (the first
//      one stays the cached copy).
//
// Thread ownership: not thread-safe. The engine loop thread of the replica owns
// the allocator (through the scheduler) and is its only caller.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace strata::coordinator {

inline constexpr int32_t kNullBlock = 0;

class BlockAllocator {
 public:
  struct Config {
    // Total blocks including the null block, so num_blocks - 1 are usable.
    int32_t num_blocks = 0;
  };

  static absl::StatusOr<std::unique_ptr<BlockAllocator>> Create(const Config& config);

  // Takes n blocks from the head of the free queue, each with ref count 1, or
  // returns nullopt (allocating nothing) when fewer than n are free. n >= 0.
  std::optional<std::vector<int32_t>> Allocate(int32_t n);

  // Adds a reference to a block (sharing). A free block is taken out of the free
  // queue (a prefix-cache hit revives it). Error on the null block or a bad id.
  absl::Status Ref(int32_t block);

  // Drops a reference; at 0 the block goes to the tail of the free queue.
  // Error (and no change) on the null block, a bad id or a block already free.
  absl::Status Unref(int32_t block);

  // Unrefs a sequence's block table tail-first. Null entries are skipped. Stops at
  // the first error (the blocks after it in table order stay referenced).
  absl::Status FreeSequence(absl::Span<const int32_t> block_table);

  // Prefix-cache hash slot of a block: set for full blocks once their KV is
  // written. Returns false (and leaves the block unhashed) when another block
  // already holds `hash`.
  absl::StatusOr<bool> SetBlockHash(int32_t block, uint64_t hash);
  std::optional<uint64_t> BlockHash(int32_t block) const;
  // The block whose content has this chained hash, used or free.
  std::optional<int32_t> FindCached(uint64_t hash) const;
  int32_t num_cached() const { return static_cast<int32_t>(index_.size()); }
  // Called with (hash, true) when a hash enters the index and (hash, false)
  // when it leaves, so others can mirror the cache's contents (the router).
  void set_index_observer(std::function<void(uint64_t, bool)> fn) { observer_ = std::move(fn); }

  int32_t num_blocks() const { return static_cast<int32_t>(ref_.size()); }
  int32_t num_free() const { return num_free_; }
  int32_t num_used() const { return num_blocks() - 1 - num_free_; }
  // 0 for free blocks, the null block and bad ids.
  int32_t ref_count(int32_t block) const;
  // The free queue from head (next to be allocated) to tail; for tests and metrics.
  std::vector<int32_t> FreeQueue() const;

 private:
  explicit BlockAllocator(int32_t num_blocks);
  bool Valid(int32_t block) const { return block > kNullBlock && block < num_blocks(); }
  void PushTail(int32_t block);
  void Remove(int32_t block);

  // Intrusive doubly linked free queue over block ids; kNullBlock is the sentinel.
  std::vector<int32_t> next_;
  std::vector<int32_t> prev_;
  std::vector<int32_t> ref_;
  std::vector<std::optional<uint64_t>> hash_;
  absl::flat_hash_map<uint64_t, int32_t> index_;  // hash -> block (invariant 8)
  std::function<void(uint64_t, bool)> observer_;
  int32_t num_free_ = 0;
};

}  // namespace strata::coordinator
