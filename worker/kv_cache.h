// The worker's KV-cache memory: one K pool and one V pool per layer, carved
// into fixed-size blocks (layout in kernels/paged_kv_view.h). Which block
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

namespace strata {

struct KvCacheConfig {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int32_t block_size = 16;
  int32_t num_blocks = 0;  // including the null block 0
  KvDtype dtype = KvDtype::kF16;
};

class KvCache {
 public:
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(const KvCacheConfig& config);

  // Bytes one block takes across all layers, K and V.
  static int64_t BytesPerBlock(const KvCacheConfig& config);

  const KvCacheConfig& config() const { return config_; }
  int64_t total_bytes() const { return static_cast<int64_t>(storage_.size()); }

  // The view kernels use for `layer`, over the given block tables.
  PagedKvView LayerView(int64_t layer, const int32_t* block_tables, int32_t max_blocks_per_seq,
                        int32_t n_seqs);

 private:
  explicit KvCache(const KvCacheConfig& config) : config_(config) {}
  KvCacheConfig config_;
  int64_t pool_bytes_ = 0;  // one pool (K or V of one layer)
  std::vector<uint8_t> storage_;
};

}  // namespace strata
