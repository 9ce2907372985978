// The BPE merge loop shared by byte-level and SentencePiece tokenizers.
//
// A word is a list of symbols (token ids). Repeatedly the adjacent pair with
// the best priority (lowest value; ties go to the leftmost pair) is replaced
// by the token it merges into, until no adjacent pair is in the table.
// Byte-level BPE uses the merge rank as priority (Hugging Face semantics);
// SentencePiece GGUF vocabularies have no merges and use -score of the merged
// token (llama.cpp's llm_tokenizer_spm).
//
// Symbols live in a doubly linked list over an array and candidate pairs in a
// binary heap; stale heap entries are skipped when popped. O(n log n) per
// word, so a 100k-character word without spaces is fine.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace strata::tokenizer_internal {

class MergeTable {
 public:
  struct Merge {
    float priority;  // lower merges first
    int32_t result;
  };
  void Add(int32_t left, int32_t right, float priority, int32_t result);
  // nullptr when the pair does not merge.
  const Merge* Find(int32_t left, int32_t right) const {
    auto it = map_.find(Key(left, right));
    return it == map_.end() ? nullptr : &it->second;
  }
  size_t size() const { return map_.size(); }

  // Merges `symbols` in place. Ids < 0 (unknown symbols) never merge.
  void MergeWord(std::vector<int32_t>* symbols) const;

 private:
  static uint64_t Key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  absl::flat_hash_map<uint64_t, Merge> map_;
};

}  // namespace strata::tokenizer_internal
