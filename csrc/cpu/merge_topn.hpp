#pragma once
// Top-n of a weighted sum of several ranked candidate lists (one user): the
// merge step of a blended recommender's per-request path
// (python/cohortrec/recommenders/_blend.py). Each list is normalised on its
// own -- by rank (Borda count) or by score (min-max over the listed
// candidates) -- weighted, and the values of an item listed by several
// members are added up. Runs without the GIL: the Python it replaces
// (np.unique + np.bincount + np.lexsort) held it for about half of a
// blended request (benchmarks/results/serve-2026-12-07-merge.md).
#include <cstdint>
#include <vector>

namespace cohortrec::cpu {

/// One member's ranked list: ids (int32 or int64, < 0 = padding) and
/// scores (float32 or float64), best first, `len` entries, and its weight.
struct RankedList {
  const void* ids = nullptr;
  bool ids64 = true;
  const void* scores = nullptr;
  bool scores64 = true;
  int64_t len = 0;
  double weight = 0.0;
};

/// The blend of `lists` in float64, the same operations in the same order
/// as the NumPy path of the batch blend (so the same bits):
///   rank:  value = 1 - p / width at list position p;
///   score: value = floor + (1 - floor) * (s - lo) / (hi - lo), floor =
///          1 / width, lo/hi over the list's valid entries (1 when hi == lo);
/// an entry is valid when its id is >= 0 and its score finite. An item's
/// score is 0 + w_0 v_0 + w_1 v_1 + ... over the lists naming it, in list
/// order. Items with keep[item] == 0 (keep may be null), items in
/// `exclude` (n_exclude ids, may be 0) and items whose sum is not > 0 are
/// dropped. The best n (score desc, id asc) are written to out_ids /
/// out_scores (pre-filled by the caller with -1 / -inf). Throws
/// std::out_of_range naming the list when an id is >= n_items.
void merge_topn(const std::vector<RankedList>& lists, bool by_score, int64_t width, int64_t n_items,
                const uint8_t* keep, const int64_t* exclude, int64_t n_exclude, int64_t n, int64_t* out_ids,
                float* out_scores);

}  // namespace cohortrec::cpu
