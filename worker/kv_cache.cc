#include "worker/kv_cache.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace strata {

int64_t KvCache::BytesPerBlock(const KvCacheConfig& c) {
  return 2 * c.n_layers * c.n_kv_heads * c.block_size * c.head_dim * KvDtypeBytes(c.dtype);
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const KvCacheConfig& c) {
  if (c.n_layers <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 || c.block_size <= 0 ||
      c.block_size > 1024) {
    return absl::InvalidArgumentError("KV cache: bad shape or block size (1..1024)");
  }
  if (c.num_blocks < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache: needs at least 2 blocks (block 0 is the null block), got ", c.num_blocks));
  }
  const int64_t per_block_pool = c.n_kv_heads * c.block_size * c.head_dim * KvDtypeBytes(c.dtype);
  if (per_block_pool > std::numeric_limits<int64_t>::max() / c.num_blocks / (2 * c.n_layers)) {
    return absl::InvalidArgumentError("KV cache: size overflows");
  }
  auto cache = std::unique_ptr<KvCache>(new KvCache(c));
  cache->pool_bytes_ = per_block_pool * c.num_blocks;
  const int64_t total = cache->pool_bytes_ * 2 * c.n_layers;
  try {
    cache->storage_.assign(static_cast<size_t>(total), 0);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache: cannot allocate ", total, " bytes"));
  }
  return cache;
}

PagedKvView KvCache::LayerView(int64_t layer, const int32_t* block_tables,
                               int32_t max_blocks_per_seq, int32_t n_seqs) {
  PagedKvView v;
  uint8_t* base = storage_.data() + 2 * layer * pool_bytes_;
  v.k = base;
  v.v = base + pool_bytes_;
  v.dtype = config_.dtype;
  v.num_blocks = config_.num_blocks;
  v.block_size = config_.block_size;
  v.n_kv_heads = static_cast<int32_t>(config_.n_kv_heads);
  v.head_dim = static_cast<int32_t>(config_.head_dim);
  v.block_tables = block_tables;
  v.max_blocks_per_seq = max_blocks_per_seq;
  v.n_seqs = n_seqs;
  return v;
}

}  // namespace strata
