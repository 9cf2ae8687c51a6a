#include "cpu/ranking_metrics.hpp"

#include <algorithm>
#include <atomic>
#include <limits>
#include <stdexcept>
#include <vector>

#include "common/parallel.hpp"

namespace cohortrec::cpu {

template <typename J, typename I>
void ranking_hits(const J* recs, int64_t u, int64_t K, const int64_t* rows, const int64_t* t_indptr,
                  int64_t t_rows, const I* t_indices, int64_t n_items, uint8_t* hits, int n_threads) {
  if (u < 0 || K < 0 || t_rows < 0 || n_items < 0) throw std::invalid_argument("negative size");
  for (int64_t r = 0; r < u; ++r)
    if (rows[r] < 0 || rows[r] >= t_rows) throw std::out_of_range("rows: test row id out of range");
  if (u == 0 || K == 0) return;
  constexpr int64_t kRowsPerTask = 512;
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
  struct State {
    std::vector<uint32_t> mark;
    uint32_t epoch = 0;
  };
  parallel_tasks(
      n_tasks, n_threads, [&] { return State{std::vector<uint32_t>(static_cast<size_t>(n_items), 0u), 0u}; },
      [&](State& st, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
        uint32_t* mark = st.mark.data();
        for (int64_t r = r0; r < r1; ++r) {
          if (++st.epoch == std::numeric_limits<uint32_t>::max()) {
            std::fill(st.mark.begin(), st.mark.end(), 0u);
            st.epoch = 1;
          }
          const uint32_t ep = st.epoch;
          const int64_t t = rows[r];
          for (int64_t e = t_indptr[t]; e < t_indptr[t + 1]; ++e) {
            const int64_t i = static_cast<int64_t>(t_indices[e]);
            if (i < 0 || i >= n_items) throw std::out_of_range("test: column index out of range");
            mark[i] = ep;
          }
          const J* rec = recs + r * K;
          uint8_t* h = hits + r * K;
          for (int64_t q = 0; q < K; ++q) {
            const int64_t i = static_cast<int64_t>(rec[q]);
            if (i < 0) {
              h[q] = 0;
              continue;
            }
            if (i >= n_items) throw std::out_of_range("recs: item id >= n_items");
            h[q] = mark[i] == ep ? 1 : 0;
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
  constexpr int64_t kRowsPerTask = 4096;
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
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
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
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

template void ranking_hits<int32_t, int32_t>(const int32_t*, int64_t, int64_t, const int64_t*, const int64_t*,
                                             int64_t, const int32_t*, int64_t, uint8_t*, int);
template void ranking_hits<int32_t, int64_t>(const int32_t*, int64_t, int64_t, const int64_t*, const int64_t*,
                                             int64_t, const int64_t*, int64_t, uint8_t*, int);
template void ranking_hits<int64_t, int32_t>(const int64_t*, int64_t, int64_t, const int64_t*, const int64_t*,
                                             int64_t, const int32_t*, int64_t, uint8_t*, int);
template void ranking_hits<int64_t, int64_t>(const int64_t*, int64_t, int64_t, const int64_t*, const int64_t*,
                                             int64_t, const int64_t*, int64_t, uint8_t*, int);
template void item_counts<int32_t>(const int32_t*, int64_t, int64_t, const int64_t*, int64_t, int64_t, int64_t*,
                                   int);
template void item_counts<int64_t>(const int64_t*, int64_t, int64_t, const int64_t*, int64_t, int64_t, int64_t*,
                                   int);

}  // namespace cohortrec::cpu
