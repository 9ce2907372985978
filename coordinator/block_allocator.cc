#include "coordinator/block_allocator.h"

#include "absl/strings/str_cat.h"

namespace strata::coordinator {

absl::StatusOr<std::unique_ptr<BlockAllocator>> BlockAllocator::Create(const Config& config) {
  if (config.num_blocks < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "BlockAllocator: num_blocks must be >= 2 (block 0 is the null block), got ",
        config.num_blocks));
  }
  return std::unique_ptr<BlockAllocator>(new BlockAllocator(config.num_blocks));
}

BlockAllocator::BlockAllocator(int32_t num_blocks)
    : next_(num_blocks, kNullBlock), prev_(num_blocks, kNullBlock), ref_(num_blocks, 0),
      hash_(num_blocks) {
  for (int32_t b = 1; b < num_blocks; ++b) PushTail(b);
}

void BlockAllocator::PushTail(int32_t block) {
  const int32_t tail = prev_[kNullBlock];
  prev_[block] = tail;
  next_[block] = kNullBlock;
  next_[tail] = block;
  prev_[kNullBlock] = block;
  ++num_free_;
}

void BlockAllocator::Remove(int32_t block) {
  next_[prev_[block]] = next_[block];
  prev_[next_[block]] = prev_[block];
  next_[block] = prev_[block] = kNullBlock;
  --num_free_;
}

std::optional<std::vector<int32_t>> BlockAllocator::Allocate(int32_t n) {
  if (n < 0 || n > num_free_) return std::nullopt;
  std::vector<int32_t> out;
  out.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t b = next_[kNullBlock];
    Remove(b);
    ref_[b] = 1;
    if (hash_[b]) {  // new content: the cached block is evicted
      index_.erase(*hash_[b]);
      if (observer_) observer_(*hash_[b], false);
      hash_[b].reset();
    }
    out.push_back(b);
  }
  return out;
}

absl::Status BlockAllocator::Ref(int32_t block) {
  if (!Valid(block)) return absl::InvalidArgumentError(absl::StrCat("Ref: bad block ", block));
  if (ref_[block] == 0) Remove(block);
  ++ref_[block];
  return absl::OkStatus();
}

absl::Status BlockAllocator::Unref(int32_t block) {
  if (!Valid(block)) return absl::InvalidArgumentError(absl::StrCat("Unref: bad block ", block));
  if (ref_[block] == 0) {
    return absl::FailedPreconditionError(absl::StrCat("Unref: block ", block, " is already free"));
  }
  if (--ref_[block] == 0) PushTail(block);
  return absl::OkStatus();
}

absl::Status BlockAllocator::FreeSequence(absl::Span<const int32_t> block_table) {
  for (auto it = block_table.rbegin(); it != block_table.rend(); ++it) {
    if (*it == kNullBlock) continue;
    if (absl::Status s = Unref(*it); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> BlockAllocator::SetBlockHash(int32_t block, uint64_t hash) {
  if (!Valid(block)) return absl::InvalidArgumentError(absl::StrCat("SetBlockHash: bad block ", block));
  if (hash_[block] == hash) return true;
  auto it = index_.find(hash);
  if (it != index_.end()) return false;  // another block is the cached copy
  if (hash_[block]) {
    index_.erase(*hash_[block]);
    if (observer_) observer_(*hash_[block], false);
  }
  hash_[block] = hash;
  index_.emplace(hash, block);
  if (observer_) observer_(hash, true);
  return true;
}

std::optional<int32_t> BlockAllocator::FindCached(uint64_t hash) const {
  auto it = index_.find(hash);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint64_t> BlockAllocator::BlockHash(int32_t block) const {
  if (!Valid(block)) return std::nullopt;
  return hash_[block];
}

int32_t BlockAllocator::ref_count(int32_t block) const {
  return Valid(block) ? ref_[block] : 0;
}

std::vector<int32_t> BlockAllocator::FreeQueue() const {
  std::vector<int32_t> out;
  for (int32_t b = next_[kNullBlock]; b != kNullBlock; b = next_[b]) out.push_back(b);
  return out;
}

}  // namespace strata::coordinator
