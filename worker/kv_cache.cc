#include "worker/kv_cache.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace strata {

namespace {

// Scale pools start on a 64-byte boundary (f32 loads, cache lines).
int64_t AlignUp64(int64_t n) { return (n + 63) / 64 * 64; }

}  // namespace

int64_t KvCache::BytesPerBlock(const KvCacheConfig& c) {
  KvPoolBytes one;
  if (!ComputeKvPoolBytes(c.dtype, 1, c.n_kv_heads, c.block_size, c.head_dim, &one)) return 0;
  return 2 * c.n_layers * (one.data + one.scales);
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Plan(const KvCacheConfig& c) {
  if (c.n_layers <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 || c.block_size <= 0 ||
      c.block_size > 1024) {
    return absl::InvalidArgumentError("KV cache: bad shape or block size (1..1024)");
  }
  if (KvDtypeBytes(c.dtype) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("KV cache: unknown dtype ", static_cast<int>(c.dtype)));
  }
  if (c.num_blocks < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache: needs at least 2 blocks (block 0 is the null block), got ", c.num_blocks));
  }
  KvPoolBytes pool;
  if (!ComputeKvPoolBytes(c.dtype, c.num_blocks, c.n_kv_heads, c.block_size, c.head_dim, &pool) ||
      pool.data > std::numeric_limits<int64_t>::max() / 4 ||
      pool.scales > std::numeric_limits<int64_t>::max() / 4) {
    return absl::InvalidArgumentError("KV cache: size overflows");
  }
  auto cache = std::unique_ptr<KvCache>(new KvCache(c));
  cache->pool_bytes_ = AlignUp64(pool.data);
  cache->scale_pool_bytes_ = AlignUp64(pool.scales);
  const int64_t per_layer = 2 * (cache->pool_bytes_ + cache->scale_pool_bytes_);
  if (per_layer > std::numeric_limits<int64_t>::max() / c.n_layers - 64) {
    return absl::InvalidArgumentError("KV cache: size overflows");
  }
  cache->total_bytes_ = per_layer * c.n_layers;
  return cache;
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const KvCacheConfig& c) {
  ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache, Plan(c));
  const int64_t total = cache->total_bytes_;
  try {
    cache->storage_.assign(static_cast<size_t>(total + 64), 0);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache: cannot allocate ", total, " bytes"));
  }
  // 64-byte aligned base so every pool (all multiples of 64) is aligned too.
  const uintptr_t addr = reinterpret_cast<uintptr_t>(cache->storage_.data());
  cache->base_ = cache->storage_.data() + (64 - addr % 64) % 64;
  return cache;
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const KvCacheConfig& c, Backend* backend) {
  if (backend == nullptr) return absl::InvalidArgumentError("KV cache: null backend");
  ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache, Plan(c));
  absl::StatusOr<DeviceBuffer> buf = backend->Allocate(cache->total_bytes_);
  if (!buf.ok()) {
    return absl::Status(buf.status().code(), absl::StrCat("KV cache: ", buf.status().message()));
  }
  cache->device_storage_ = std::move(*buf);
  // Both backends align allocations to >= 64 bytes (cudaMalloc: 256).
  cache->base_ = cache->device_storage_.as<uint8_t>();
  RETURN_IF_ERROR(backend->FillZero(cache->base_, cache->total_bytes_));
  return cache;
}

PagedKvView KvCache::LayerView(int64_t layer, const int32_t* block_tables,
                               int32_t max_blocks_per_seq, int32_t n_seqs) {
  PagedKvView v;
  uint8_t* base = base_ + 2 * layer * (pool_bytes_ + scale_pool_bytes_);
  v.k = base;
  v.v = base + pool_bytes_;
  if (scale_pool_bytes_ > 0) {
    v.k_scale = reinterpret_cast<float*>(base + 2 * pool_bytes_);
    v.v_scale = reinterpret_cast<float*>(base + 2 * pool_bytes_ + scale_pool_bytes_);
  }
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
