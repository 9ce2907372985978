#include "common/tokenizer/bpe_merge.h"

#include <queue>

namespace strata::tokenizer_internal {

void MergeTable::Add(int32_t left, int32_t right, float priority, int32_t result) {
  // The first (best) entry for a pair wins, as in a merges list read in order.
  map_.try_emplace(Key(left, right), Merge{priority, result});
}

void MergeTable::MergeWord(std::vector<int32_t>* symbols) const {
  std::vector<int32_t>& ids = *symbols;
  const int n = static_cast<int>(ids.size());
  if (n < 2) return;

  struct Candidate {
    float priority;
    int pos;  // index of the left symbol
    int32_t left, right;
  };
  struct Worse {
    bool operator()(const Candidate& a, const Candidate& b) const {
      if (a.priority != b.priority) return a.priority > b.priority;
      return a.pos > b.pos;
    }
  };
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::vector<Candidate> storage;
  storage.reserve(n);
  std::priority_queue<Candidate, std::vector<Candidate>, Worse> heap(Worse{}, std::move(storage));
  auto consider = [&](int pos) {
    if (pos < 0) return;
    const int right = next[pos];
    if (right < 0 || ids[pos] < 0 || ids[right] < 0) return;
    if (const Merge* m = Find(ids[pos], ids[right])) heap.push({m->priority, pos, ids[pos], ids[right]});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);

  constexpr int32_t kGone = -2;  // a symbol merged into its left neighbour
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    // Stale when either side changed since the entry was pushed. A symbol's
    // id only changes by growing, so equal ids mean equal spans.
    if (ids[c.pos] != c.left) continue;
    const int right = next[c.pos];
    if (right < 0 || ids[right] != c.right) continue;
    ids[c.pos] = Find(c.left, c.right)->result;
    ids[right] = kGone;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  int out = 0;
  for (int i = 0; i < n; ++i) {
    if (ids[i] != kGone) ids[out++] = ids[i];
  }
  ids.resize(out);
}

}  // namespace strata::tokenizer_internal
