// The worker's KV-cache memory: one K pool and one V pool per layer, carved
// into fixed-size blocks (layout in kernels/paged_kv_view.h; the quantised
// dtypes add one f32 scale pool per data pool). Which block
// belongs to which sequence is decided elsewhere (the coordinator's block
// allocator, or the single-process engine); this class only owns the bytes.
//
// Threading: immutable shape; the pools are written by the step thread's
// kernels only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/paged_kv_view.h"
#include "worker/backend/backend.h"

namespace strata {

struct KvCacheConfig {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int32_t block_size = 16;
  int32_t num_blocks = 0;  // including the null block 0
  KvDtype dtype = KvDtype::kF16;  // f16 | f32 | bf16 | fp8 (E4M3) | fp8-unscaled | int8
};

class KvCache {
 public:
  // In host memory.
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(const KvCacheConfig& config);
  // In `backend`'s memory (device memory for CudaBackend), zeroed; `backend`
  // must outlive the cache.
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(const KvCacheConfig& config, Backend* backend);

  // Bytes one block takes across all layers, K and V, scales included (so a
  // byte budget gives fp8/int8 about twice the blocks of f16). 0 on overflow.
  static int64_t BytesPerBlock(const KvCacheConfig& config);

  const KvCacheConfig& config() const { return config_; }
  int64_t total_bytes() const { return total_bytes_; }  // all pools, scales included

  // The view kernels use for `layer`, over the given block tables.
  PagedKvView LayerView(int64_t layer, const int32_t* block_tables, int32_t max_blocks_per_seq,
                        int32_t n_seqs);

 private:
  explicit KvCache(const KvCacheConfig& config) : config_(config) {}
  // Checks `c` and computes the pool sizes; the caller provides the storage.
  static absl::StatusOr<std::unique_ptr<KvCache>> Plan(const KvCacheConfig& c);
  KvCacheConfig config_;
  // Per layer: [K data][V data][K scales][V scales], each region padded to a
  // multiple of 64 bytes from a 64-byte aligned base_.
  int64_t pool_bytes_ = 0;        // one data pool (K or V of one layer)
  int64_t scale_pool_bytes_ = 0;  // one scale pool (0 for f16/f32)
  std::vector<uint8_t> storage_;  // host memory, or
  DeviceBuffer device_storage_;   // the backend's
  uint8_t* base_ = nullptr;
  int64_t total_bytes_ = 0;
};

}  // namespace strata
