// Top-n of a weighted sum of normalised ranked lists (see merge_topn.hpp).
// Built with -ffp-contract=off like the rest of _core: floor + (1 - floor) *
// frac must round twice, as NumPy does, to give the batch path's bits.
#include "cpu/merge_topn.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace cohortrec::cpu {

namespace {

struct Entry {
  int64_t item;
  double value;  // weight * normalised value
};

inline int64_t id_at(const RankedList& l, int64_t p) {
  return l.ids64 ? static_cast<const int64_t*>(l.ids)[p] : static_cast<const int32_t*>(l.ids)[p];
}

inline double score_at(const RankedList& l, int64_t p) {
  return l.scores64 ? static_cast<const double*>(l.scores)[p]
                    : static_cast<double>(static_cast<const float*>(l.scores)[p]);
}

}  // namespace

void merge_topn(const std::vector<RankedList>& lists, bool by_score, int64_t width, int64_t n_items,
                const uint8_t* keep, const int64_t* exclude, int64_t n_exclude, int64_t n, int64_t* out_ids,
                float* out_scores) {
  const double dwidth = static_cast<double>(width);
  const double floor = 1.0 / dwidth;
  std::vector<int64_t> excluded(exclude, exclude + n_exclude);
  std::sort(excluded.begin(), excluded.end());
  std::vector<Entry> entries;
  size_t total = 0;
  for (const auto& l : lists) total += static_cast<size_t>(l.len);
  entries.reserve(total);
  for (size_t m = 0; m < lists.size(); ++m) {
    const RankedList& l = lists[m];
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (int64_t p = 0; p < l.len; ++p) {
      const int64_t id = id_at(l, p);
      const double s = score_at(l, p);
      if (id >= n_items)
        throw std::out_of_range("lists[" + std::to_string(m) + "]: item id " + std::to_string(id) +
                                " out of range for " + std::to_string(n_items) + " items");
      if (id < 0 || !std::isfinite(s)) continue;
      lo = std::min(lo, s);
      hi = std::max(hi, s);
    }
    const double span = hi - lo;
    const bool spread = std::isfinite(span) && span > 0;
    for (int64_t p = 0; p < l.len; ++p) {
      const int64_t id = id_at(l, p);
      const double s = score_at(l, p);
      if (id < 0 || !std::isfinite(s)) continue;
      if (keep && !keep[id]) continue;
      if (!excluded.empty() && std::binary_search(excluded.begin(), excluded.end(), id)) continue;
      double v;
      if (by_score) {
        const double frac = spread ? (s - lo) / span : 1.0;
        v = floor + (1.0 - floor) * frac;
      } else {
        v = 1.0 - static_cast<double>(p) / dwidth;
      }
      entries.push_back({id, v * l.weight});
    }
  }
  // by item, list order kept among equal items: the sums run in list order (as np.bincount adds)
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.item < b.item; });
  std::vector<Entry> sums;
  sums.reserve(entries.size());
  for (size_t t = 0; t < entries.size();) {
    const int64_t item = entries[t].item;
    double s = 0.0;
    for (; t < entries.size() && entries[t].item == item; ++t) s += entries[t].value;
    if (s > 0) sums.push_back({item, s});
  }
  const auto better = [](const Entry& a, const Entry& b) {
    return a.value > b.value || (a.value == b.value && a.item < b.item);
  };
  const size_t k = std::min(sums.size(), static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::partial_sort(sums.begin(), sums.begin() + static_cast<std::ptrdiff_t>(k), sums.end(), better);
  for (size_t t = 0; t < k; ++t) {
    out_ids[t] = sums[t].item;
    out_scores[t] = static_cast<float>(sums[t].value);
  }
}

}  // namespace cohortrec::cpu
