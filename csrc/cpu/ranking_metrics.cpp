#include "cpu/ranking_metrics.hpp"

#include <algorithm>
#include <atomic>
#include <limits>
#include <stdexcept>
#include <vector>

#include "common/parallel.hpp"

namespace cohortrec::cpu {

namespace {

/// Per-thread marker of the test items of the current row (epoch-stamped:
/// starting a row invalidates the previous row's marks without clearing).
struct Marker {
  std::vector<uint32_t> mark;
  uint32_t epoch = 0;

  template <typename I>
  void start(const int64_t* t_indptr, const I* t_indices, int64_t t, int64_t n_items) {
    if (++epoch == std::numeric_limits<uint32_t>::max()) {
      std::fill(mark.begin(), mark.end(), 0u);
      epoch = 1;
    }
    for (int64_t e = t_indptr[t]; e < t_indptr[t + 1]; ++e) {
      const int64_t i = static_cast<int64_t>(t_indices[e]);
      if (i < 0 || i >= n_items) throw std::out_of_range("test: column index out of range");
      mark[i] = epoch;
    }
  }

  /// Whether recommended id i (< 0: empty slot) is a test item of the row.
  bool hit(int64_t i, int64_t n_items) const {
    if (i < 0) return false;
    if (i >= n_items) throw std::out_of_range("recs: item id >= n_items");
    return mark[i] == epoch;
  }
};

void check_rows(const int64_t* rows, int64_t u, int64_t t_rows) {
  for (int64_t r = 0; r < u; ++r)
    if (rows[r] < 0 || rows[r] >= t_rows) throw std::out_of_range("rows: test row id out of range");
}

constexpr int64_t kRowsPerTask = 512;

}  // namespace

template <typename J, typename I>
void ranking_hits(const J* recs, int64_t u, int64_t K, const int64_t* rows, const int64_t* t_indptr, int64_t t_rows,
                  const I* t_indices, int64_t n_items, uint8_t* hits, int n_threads) {
  if (u < 0 || K < 0 || t_rows < 0 || n_items < 0) throw std::invalid_argument("negative size");
  check_rows(rows, u, t_rows);
  if (u == 0 || K == 0) return;
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
  parallel_tasks(
      n_tasks, n_threads, [&] { return Marker{std::vector<uint32_t>(static_cast<size_t>(n_items), 0u), 0u}; },
      [&](Marker& mk, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
        for (int64_t r = r0; r < r1; ++r) {
          mk.start(t_indptr, t_indices, rows[r], n_items);
          const J* rec = recs + r * K;
          uint8_t* h = hits + r * K;
          for (int64_t q = 0; q < K; ++q) h[q] = mk.hit(static_cast<int64_t>(rec[q]), n_items) ? 1 : 0;
        }
      });
}

template <typename J, typename I>
void ranking_hit_stats(const J* recs, int64_t u, int64_t K, const int64_t* rows, const int64_t* t_indptr,
                       int64_t t_rows, const I* t_indices, int64_t n_items, const int64_t* ks, int64_t n_k,
                       const double* disc, double* n_hits, double* dcg, double* ap, int n_threads) {
  if (u < 0 || K < 0 || t_rows < 0 || n_items < 0 || n_k < 1) throw std::invalid_argument("bad size");
  for (int64_t t = 0; t < n_k; ++t)
    if (ks[t] < 1 || (t && ks[t] <= ks[t - 1])) throw std::invalid_argument("ks must be increasing and >= 1");
  check_rows(rows, u, t_rows);
  if (u == 0) return;
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
  parallel_tasks(
      n_tasks, n_threads, [&] { return Marker{std::vector<uint32_t>(static_cast<size_t>(n_items), 0u), 0u}; },
      [&](Marker& mk, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
        for (int64_t r = r0; r < r1; ++r) {
          mk.start(t_indptr, t_indices, rows[r], n_items);
          const J* rec = recs + r * K;
          int64_t h = 0, q = 0;
          double g = 0.0, a = 0.0;
          for (int64_t t = 0; t < n_k; ++t) {
            const int64_t stop = std::min(ks[t], K);
            for (; q < stop; ++q) {
              if (!mk.hit(static_cast<int64_t>(rec[q]), n_items)) continue;
              ++h;
              g += disc[q];
              a += static_cast<double>(h) / (static_cast<double>(q) + 1.0);
            }
            n_hits[t * u + r] = static_cast<double>(h);
            dcg[t * u + r] = g;
            ap[t * u + r] = a;
          }
        }
      });
}

template <typename J>
void item_counts(const J* recs, int64_t u, int64_t K, const int64_t* cuts, int64_t n_blocks, int64_t n_items,
                 int64_t* counts, int n_threads) {
  if (u < 0 || K < 0 || n_blocks < 0 || n_items < 0) throw std::invalid_argument("negative size");
  for (int64_t b = 0; b <= n_blocks; ++b)
    if (cuts[b] < 0 || cuts[b] > K || (b && cuts[b] < cuts[b - 1]))
      throw std::invalid_argument("cuts must be non-decreasing within [0, K]");
  const size_t total = static_cast<size_t>(n_blocks) * static_cast<size_t>(n_items);
  std::fill(counts, counts + total, int64_t(0));
  if (u == 0 || n_blocks == 0 || n_items == 0) return;
  // Fixed chunks of rows, each counted into its own thread's partial; the
  // partials are then added (integer sums: any order gives the same result).
  constexpr int64_t kCountRowsPerTask = 4096;
  const int64_t n_tasks = (u + kCountRowsPerTask - 1) / kCountRowsPerTask;
  const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n_threads, n_tasks)));
  std::vector<std::vector<int64_t>> partial(static_cast<size_t>(nt));
  std::atomic<int> next_slot{0};
  parallel_tasks(
      n_tasks, nt,
      [&] {
        const int slot = next_slot.fetch_add(1);
        partial[static_cast<size_t>(slot)].assign(total, 0);
        return partial[static_cast<size_t>(slot)].data();
      },
      [&](int64_t* cnt, int64_t task) {
        const int64_t r0 = task * kCountRowsPerTask, r1 = std::min(u, r0 + kCountRowsPerTask);
        for (int64_t r = r0; r < r1; ++r) {
          const J* rec = recs + r * K;
          for (int64_t b = 0; b < n_blocks; ++b) {
            int64_t* c = cnt + b * n_items;
            for (int64_t q = cuts[b]; q < cuts[b + 1]; ++q) {
              const int64_t i = static_cast<int64_t>(rec[q]);
              if (i < 0) continue;
              if (i >= n_items) throw std::out_of_range("recs: item id >= n_items");
              ++c[i];
            }
          }
        }
      });
  for (const auto& p : partial)
    if (!p.empty())
      for (size_t i = 0; i < total; ++i) counts[i] += p[i];
}

template void ranking_hits<int32_t, int32_t>(const int32_t*, int64_t, int64_t, const int64_t*, const int64_t*, int64_t,
                                             const int32_t*, int64_t, uint8_t*, int);
template void ranking_hits<int32_t, int64_t>(const int32_t*, int64_t, int64_t, const int64_t*, const int64_t*, int64_t,
                                             const int64_t*, int64_t, uint8_t*, int);
template void ranking_hits<int64_t, int32_t>(const int64_t*, int64_t, int64_t, const int64_t*, const int64_t*, int64_t,
                                             const int32_t*, int64_t, uint8_t*, int);
template void ranking_hits<int64_t, int64_t>(const int64_t*, int64_t, int64_t, const int64_t*, const int64_t*, int64_t,
                                             const int64_t*, int64_t, uint8_t*, int);
template void ranking_hit_stats<int32_t, int32_t>(const int32_t*, int64_t, int64_t, const int64_t*, const int64_t*,
                                                  int64_t, const int32_t*, int64_t, const int64_t*, int64_t,
                                                  const double*, double*, double*, double*, int);
template void ranking_hit_stats<int32_t, int64_t>(const int32_t*, int64_t, int64_t, const int64_t*, const int64_t*,
                                                  int64_t, const int64_t*, int64_t, const int64_t*, int64_t,
                                                  const double*, double*, double*, double*, int);
template void ranking_hit_stats<int64_t, int32_t>(const int64_t*, int64_t, int64_t, const int64_t*, const int64_t*,
                                                  int64_t, const int32_t*, int64_t, const int64_t*, int64_t,
                                                  const double*, double*, double*, double*, int);
template void ranking_hit_stats<int64_t, int64_t>(const int64_t*, int64_t, int64_t, const int64_t*, const int64_t*,
                                                  int64_t, const int64_t*, int64_t, const int64_t*, int64_t,
                                                  const double*, double*, double*, double*, int);
template void item_counts<int32_t>(const int32_t*, int64_t, int64_t, const int64_t*, int64_t, int64_t, int64_t*, int);
template void item_counts<int64_t>(const int64_t*, int64_t, int64_t, const int64_t*, int64_t, int64_t, int64_t*, int);

}  // namespace cohortrec::cpu
