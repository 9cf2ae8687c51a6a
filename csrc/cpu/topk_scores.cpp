#include "cpu/topk_scores.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/parallel.hpp"
#include "common/sparse_accumulator.hpp"
#include "common/topk.hpp"

namespace cohortrec::cpu {

namespace {

// Below this n the bounded heap (one comparison per hopeless candidate)
// wins; from it on, collecting the candidates and selecting them in one go
// (RadixSelect; nth_element + sort for double scores) costs less than the
// ~n log(candidates / n) heap updates with log n steps each. Measured on
// the 2-core dev machine, 100k users x 20k items, 2 threads, wall s with
// heap / select: user-kNN (~4k candidates per row) n=20 1.37 / 1.69,
// n=32 1.60 / 1.69, n=50 2.7 / 1.85; item-kNN n=20 0.72 / 0.74,
// n=32 0.95 / 0.84, n=50 1.18 / 0.88.
constexpr int64_t kHeapMaxN = 24;
// The same for double scores, selected with nth_element + sort on
// (score, id) pairs: measured break-even with the heap near n = 40-50.
constexpr int64_t kHeapMaxNGeneric = 48;

/// Order-preserving map of a float to uint32 (larger float -> larger key).
/// -0 is folded onto +0 first, so keys agree with float equality.
inline uint32_t ordered_bits(float s) {
  s += 0.0f;
  uint32_t b;
  std::memcpy(&b, &s, sizeof b);
  return b ^ (static_cast<uint32_t>(static_cast<int32_t>(b) >> 31) | 0x80000000u);
}

/// One 64-bit key per candidate whose ascending order is "score descending,
/// then id ascending" (float scores, ids < 2^32).
inline uint64_t pack_key(float s, int64_t j) {
  return (static_cast<uint64_t>(~ordered_bits(s)) << 32) | static_cast<uint64_t>(j);
}

inline float unpack_score(uint64_t key) {
  uint32_t o = ~static_cast<uint32_t>(key >> 32);
  const uint32_t b = (o & 0x80000000u) ? (o ^ 0x80000000u) : ~o;
  float s;
  std::memcpy(&s, &b, sizeof s);
  return s;
}

/// Keeps the best n of `keys` (ascending order = best first) sorted at the front.
template <typename K, class Less>
void select_sorted(std::vector<K>& keys, int64_t n, Less less) {
  if (static_cast<int64_t>(keys.size()) > n) {
    std::nth_element(keys.begin(), keys.begin() + (n - 1), keys.end(), less);
    keys.resize(static_cast<size_t>(n));
  }
  std::sort(keys.begin(), keys.end(), less);
}

/// The same for packed keys, by a radix pass on the score half: a histogram
/// of the scores (2^kBits buckets spanning the row's score range) finds the
/// bucket holding the n-th best; the keys of the buckets up to it are
/// scattered in bucket order, the boundary bucket trimmed with nth_element,
/// and each bucket sorted on its own (a few keys each). About 2.5x faster
/// than nth_element + sort for n = 100 of ~500 candidates.
class RadixSelect {
 public:
  void run(std::vector<uint64_t>& keys, int64_t n) {
    const int64_t c = static_cast<int64_t>(keys.size());
    if (c <= 1) return;
    uint32_t lo = ~0u, hi = 0;
    for (int64_t i = 0; i < c; ++i) {
      const uint32_t s = static_cast<uint32_t>(keys[i] >> 32);
      lo = std::min(lo, s);
      hi = std::max(hi, s);
    }
    if (lo == hi) {  // a single score: the order is by id alone
      select_sorted(keys, n, std::less<uint64_t>());
      return;
    }
    const int width = 32 - __builtin_clz(hi - lo);
    const int shift = width > kBits ? width - kBits : 0;
    uint32_t* h = hist_;
    std::memset(h, 0, sizeof hist_);
    for (int64_t i = 0; i < c; ++i) ++h[(static_cast<uint32_t>(keys[i] >> 32) - lo) >> shift];
    const int64_t want = std::min(n, c);
    int64_t b = 0, before = 0;  // b: first bucket where the running count reaches `want`
    while (before + h[b] < want) before += h[b++];
    uint32_t off = 0;  // exclusive offsets of buckets 0..b
    for (int64_t q = 0; q <= b; ++q) {
      const uint32_t t = h[q];
      h[q] = off;
      off += t;
    }
    tmp_.resize(off);
    uint64_t* out = tmp_.data();
    for (int64_t i = 0; i < c; ++i) {
      const uint32_t bk = (static_cast<uint32_t>(keys[i] >> 32) - lo) >> shift;
      if (bk <= static_cast<uint32_t>(b)) out[h[bk]++] = keys[i];
    }
    // h[q] is now the end of bucket q; of bucket b keep the (want - before) best
    if (static_cast<int64_t>(off) > want) std::nth_element(out + before, out + (want - 1), out + off);
    int64_t start = 0;
    for (int64_t q = 0; q <= b && start < want; ++q) {
      const int64_t end = std::min<int64_t>(h[q], want);
      if (end - start > 16) {
        std::sort(out + start, out + end);
      } else {
        for (int64_t i = start + 1; i < end; ++i) {  // insertion sort of a small bucket
          const uint64_t x = out[i];
          int64_t j = i;
          for (; j > start && out[j - 1] > x; --j) out[j] = out[j - 1];
          out[j] = x;
        }
      }
      start = end;
    }
    keys.assign(out, out + want);
  }

 private:
  static constexpr int kBits = 9;
  uint32_t hist_[(1 << kBits) + 1];
  std::vector<uint64_t> tmp_;
};

}  // namespace

template <typename T, typename I>
void topk_scores(const CsrView<T, I>& W, const CsrView<T, I>& R, const CsrView<T, I>* exclude, int64_t n,
                 int64_t* items, T* scores, int n_threads) {
  if (W.n_cols != R.n_rows) throw std::invalid_argument("W.shape[1] must equal R.shape[0]");
  if (exclude && (exclude->n_rows != W.n_rows || exclude->n_cols != R.n_cols))
    throw std::invalid_argument("exclude must have shape (W.shape[0], R.shape[1])");
  if (n < 0) throw std::invalid_argument("n must be >= 0");
  const int64_t u = W.n_rows, m = R.n_cols;
  if (u == 0 || m == 0 || n == 0) return;

  // Selection strategy (same result either way: the order is total).
  constexpr bool kFloat = std::is_same<T, float>::value;
  const bool packed = kFloat && n > kHeapMaxN && m <= (int64_t(1) << 32);
  const bool buffered = !packed && n > kHeapMaxNGeneric;

  constexpr int64_t kRowsPerTask = 64;
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
  struct State {
    SparseAccumulator<T, int64_t> acc;
    TopK<T, int64_t> top;
    std::vector<uint64_t> keys;
    std::vector<Scored<T, int64_t>> cand;
    RadixSelect radix;
  };
  parallel_tasks(
      n_tasks, n_threads,
      [&] {
        State st{SparseAccumulator<T, int64_t>(m), TopK<T, int64_t>(packed || buffered ? 0 : n), {}, {}, {}};
        if (exclude) st.acc.enable_exclusion();
        return st;
      },
      [&](State& st, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
        const T neg_inf = -std::numeric_limits<T>::infinity();
        for (int64_t r = r0; r < r1; ++r) {
          int64_t work = 0;
          for (int64_t e = W.indptr[r]; e < W.indptr[r + 1]; ++e) {
            const int64_t j = W.indices[e];
            work += R.indptr[j + 1] - R.indptr[j];
          }
          st.acc.start_row(work);
          for (int64_t e = W.indptr[r]; e < W.indptr[r + 1]; ++e) {
            const T w = W.data[e];
            if (w == T(0)) continue;
            const int64_t j = W.indices[e];
            st.acc.axpy(w, R.indices, R.data, R.indptr[j], R.indptr[j + 1]);
          }
          if (exclude)
            for (int64_t e = exclude->indptr[r]; e < exclude->indptr[r + 1]; ++e)
              st.acc.exclude(static_cast<int64_t>(exclude->indices[e]));
          int64_t* it = items + r * n;
          T* sc = scores + r * n;
          if (packed) {
            // Collect every candidate; when the buffer fills up, keep the n
            // best and let the floor (the n-th best score) skip hopeless ones.
            auto& keys = st.keys;
            keys.clear();
            T floor = neg_inf;
            const size_t cap = static_cast<size_t>(std::max<int64_t>(8 * n, 2048));
            st.acc.drain_scored(
                T(1), nullptr, [&] { return floor; },
                [&](int64_t j, T v) {
                  if (v < floor || (exclude && st.acc.excluded(j))) return;
                  keys.push_back(pack_key(static_cast<float>(v), j));
                  if (keys.size() >= cap) {
                    st.radix.run(keys, n);
                    floor = static_cast<T>(unpack_score(keys[static_cast<size_t>(n - 1)]));
                  }
                });
            st.radix.run(keys, n);
            for (size_t q = 0; q < keys.size(); ++q) {
              it[q] = static_cast<int64_t>(keys[q] & 0xffffffffu);
              sc[q] = static_cast<T>(unpack_score(keys[q]));
            }
            continue;
          }
          if (buffered) {
            auto& cand = st.cand;
            cand.clear();
            T floor = neg_inf;
            const size_t cap = static_cast<size_t>(std::max<int64_t>(8 * n, 2048));
            st.acc.drain_scored(
                T(1), nullptr, [&] { return floor; },
                [&](int64_t j, T v) {
                  if (v < floor || (exclude && st.acc.excluded(j))) return;
                  cand.push_back({v, j});
                  if (cand.size() >= cap) {
                    std::nth_element(cand.begin(), cand.begin() + (n - 1), cand.end(), Better{});
                    cand.resize(static_cast<size_t>(n));
                    floor = cand[static_cast<size_t>(n - 1)].score;
                  }
                });
            select_sorted(cand, n, Better{});
            for (size_t q = 0; q < cand.size(); ++q) {
              it[q] = cand[q].id;
              sc[q] = cand[q].score;
            }
            continue;
          }
          st.top.clear();
          st.acc.drain_scored(
              T(1), nullptr, [&] { return st.top.floor(); },
              [&](int64_t j, T v) {
                if (exclude && st.acc.excluded(j)) return;
                st.top.push(v, j);
              });
          const auto& best = st.top.sorted();
          for (size_t q = 0; q < best.size(); ++q) {
            it[q] = best[q].id;
            sc[q] = best[q].score;
          }
        }
      });
}
template <typename I>
void ranked_topn(const int64_t* order, int64_t n_order, const CsrView<float, I>& exclude, int64_t n, int64_t* items,
                 int n_threads) {
  if (n < 0 || n_order < 0) throw std::invalid_argument("n and n_order must be >= 0");
  const int64_t u = exclude.n_rows, m = exclude.n_cols;
  for (int64_t q = 0; q < n_order; ++q)
    if (order[q] < 0 || order[q] >= m) throw std::out_of_range("order: item id out of range");
  if (u == 0 || n == 0 || n_order == 0) return;
  // A row costs well under a microsecond: give every task ~2^20 steps of
  // work (a batch of a few thousand users is then one task on one thread;
  // waking a second thread would cost more than it saves, and on a busy
  // machine much more).
  const int64_t per_row = n + exclude.nnz() / u + 1;
  const int64_t rows_per_task = std::max<int64_t>(256, (int64_t(1) << 20) / per_row);
  const int64_t n_tasks = (u + rows_per_task - 1) / rows_per_task;
  struct State {
    std::vector<uint32_t> mark;
    uint32_t epoch = 0;
  };
  parallel_tasks(
      n_tasks, n_threads, [&] { return State{std::vector<uint32_t>(static_cast<size_t>(m), 0u), 0u}; },
      [&](State& st, int64_t task) {
        const int64_t r0 = task * rows_per_task, r1 = std::min(u, r0 + rows_per_task);
        uint32_t* mark = st.mark.data();
        for (int64_t r = r0; r < r1; ++r) {
          if (++st.epoch == std::numeric_limits<uint32_t>::max()) {
            std::fill(st.mark.begin(), st.mark.end(), 0u);
            st.epoch = 1;
          }
          const uint32_t ep = st.epoch;
          for (int64_t e = exclude.indptr[r]; e < exclude.indptr[r + 1]; ++e)
            mark[static_cast<int64_t>(exclude.indices[e])] = ep;
          int64_t* it = items + r * n;
          int64_t got = 0;
          for (int64_t q = 0; q < n_order && got < n; ++q) {
            const int64_t j = order[q];
            if (mark[j] != ep) it[got++] = j;
          }
        }
      });
}

template <typename I>
void dense_topn(const float* scores, int64_t u, int64_t m, int64_t row_stride, const uint8_t* keep,
                const CsrView<float, I>* exclude, int64_t n, int64_t* items, float* out, int n_threads) {
  if (n < 0 || u < 0 || m < 0) throw std::invalid_argument("n, u and m must be >= 0");
  if (row_stride < m) throw std::invalid_argument("row_stride must be >= m");
  if (exclude && (exclude->n_rows != u || exclude->n_cols != m))
    throw std::invalid_argument("exclude must have shape (u, m)");
  if (m > (int64_t(1) << 32)) throw std::invalid_argument("dense_topn: m must be <= 2^32");
  if (u == 0 || m == 0 || n == 0) return;
  constexpr int64_t kRowsPerTask = 16;
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
  struct State {
    std::vector<uint32_t> mark;
    uint32_t epoch = 0;
    std::vector<uint64_t> keys;
    RadixSelect radix;
  };
  const size_t cap = static_cast<size_t>(std::max<int64_t>(8 * n, 2048));
  parallel_tasks(
      n_tasks, n_threads,
      [&] {
        State st;
        if (exclude) st.mark.assign(static_cast<size_t>(m), 0u);
        st.keys.reserve(cap);
        return st;
      },
      [&](State& st, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
        for (int64_t r = r0; r < r1; ++r) {
          uint32_t ep = 0;
          if (exclude) {
            if (++st.epoch == std::numeric_limits<uint32_t>::max()) {
              std::fill(st.mark.begin(), st.mark.end(), 0u);
              st.epoch = 1;
            }
            ep = st.epoch;
            for (int64_t e = exclude->indptr[r]; e < exclude->indptr[r + 1]; ++e)
              st.mark[static_cast<int64_t>(exclude->indices[e])] = ep;
          }
          const float* row = scores + r * row_stride;
          auto& keys = st.keys;
          keys.clear();
          float floor = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < m; ++j) {
            const float s = row[j];
            // !(s >= floor) also drops NaN; -inf never enters (s > -inf below)
            if (!(s >= floor) || !(s > -std::numeric_limits<float>::infinity()) ||
                s == std::numeric_limits<float>::infinity())
              continue;
            if (keep && !keep[j]) continue;
            if (exclude && st.mark[j] == ep) continue;
            keys.push_back(pack_key(s, j));
            if (keys.size() >= cap) {
              st.radix.run(keys, n);
              floor = unpack_score(keys[static_cast<size_t>(n - 1)]);
            }
          }
          st.radix.run(keys, n);
          int64_t* it = items + r * n;
          float* sc = out + r * n;
          for (size_t q = 0; q < keys.size(); ++q) {
            it[q] = static_cast<int64_t>(keys[q] & 0xffffffffu);
            sc[q] = unpack_score(keys[q]);
          }
        }
      });
}

template void dense_topn<int32_t>(const float*, int64_t, int64_t, int64_t, const uint8_t*,
                                  const CsrView<float, int32_t>*, int64_t, int64_t*, float*, int);
template void dense_topn<int64_t>(const float*, int64_t, int64_t, int64_t, const uint8_t*,
                                  const CsrView<float, int64_t>*, int64_t, int64_t*, float*, int);

template <typename I>
int64_t ranked_topn_row(const int64_t* order, int64_t n_order, int64_t m, const I* excl, int64_t n_excl,
                        const float* score_of, int64_t n, int64_t* items, float* scores) {
  int64_t k = 0;
  for (int64_t t = 0; t < n_order && k < n; ++t) {
    const int64_t c = order[t];
    if (c < 0 || c >= m) throw std::out_of_range("order: item id out of range");
    if (n_excl && std::binary_search(excl, excl + n_excl, static_cast<I>(c))) continue;
    items[k] = c;
    scores[k] = score_of[c];
    ++k;
  }
  return k;
}

template <typename I>
CsrResult<float, I> merge_topk_rows(const CsrView<float, I>& old, const int64_t* replace, const CsrView<float, I>& R,
                                    const CsrView<float, I>& add, int64_t k, bool sort_cols, int n_threads) {
  const int64_t n = old.n_rows;
  if (k < 0) throw std::invalid_argument("k must be >= 0");
  if (add.n_rows != n || add.n_cols != old.n_cols || R.n_cols != old.n_cols)
    throw std::invalid_argument("old, R and add must have the same number of columns, add one row per row of old");
  for (int64_t r = 0; r < n; ++r)
    if (replace[r] < -1 || replace[r] >= R.n_rows) throw std::out_of_range("replace: row of R out of range");
  CsrResult<float, I> out;
  out.n_rows = n;
  out.n_cols = old.n_cols;
  out.indptr.assign(static_cast<size_t>(n) + 1, 0);
  if (n == 0) return out;
  using Entry = std::pair<float, I>;
  // best first: score descending, then column ascending
  const auto better = [](const Entry& a, const Entry& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  const auto by_col = [](const Entry& a, const Entry& b) { return a.second < b.second; };
  // the merged row r in `buf` (best k, in output order); returns its length
  const auto merge_row = [&](std::vector<Entry>& buf, int64_t r) {
    buf.clear();
    for (int64_t e = old.indptr[r]; e < old.indptr[r + 1]; ++e)
      if (std::isfinite(old.data[e])) buf.emplace_back(old.data[e], old.indices[e]);
    for (int64_t e = add.indptr[r]; e < add.indptr[r + 1]; ++e)
      if (std::isfinite(add.data[e])) buf.emplace_back(add.data[e], add.indices[e]);
    if (static_cast<int64_t>(buf.size()) > k) {
      std::nth_element(buf.begin(), buf.begin() + k, buf.end(), better);
      buf.resize(static_cast<size_t>(k));
    }
    if (sort_cols)
      std::sort(buf.begin(), buf.end(), by_col);
    else
      std::sort(buf.begin(), buf.end(), better);
    return static_cast<int64_t>(buf.size());
  };
  const auto copied = [&](int64_t r) -> std::pair<const CsrView<float, I>*, int64_t> {
    if (replace[r] >= 0) return {&R, replace[r]};
    return {&old, r};
  };
  constexpr int64_t kRowsPerTask = 2048;
  const int64_t n_tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
  // pass 1: lengths; the merged rows of each task are kept, in row order, for pass 2
  std::vector<std::vector<Entry>> merged(static_cast<size_t>(n_tasks));
  parallel_tasks(
      n_tasks, n_threads, [] { return std::vector<Entry>(); },
      [&](std::vector<Entry>& buf, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(n, r0 + kRowsPerTask);
        auto& keep = merged[static_cast<size_t>(task)];
        for (int64_t r = r0; r < r1; ++r) {
          if (replace[r] < 0 && add.indptr[r + 1] > add.indptr[r]) {
            out.indptr[r + 1] = merge_row(buf, r);
            keep.insert(keep.end(), buf.begin(), buf.end());
          } else {
            const auto [M, row] = copied(r);
            out.indptr[r + 1] = M->indptr[row + 1] - M->indptr[row];
          }
        }
      });
  for (int64_t r = 0; r < n; ++r) out.indptr[r + 1] += out.indptr[r];
  out.indices.resize(static_cast<size_t>(out.indptr[n]));
  out.data.resize(static_cast<size_t>(out.indptr[n]));
  // pass 2: fill
  parallel_tasks(
      n_tasks, n_threads, [] { return std::vector<Entry>(); },
      [&](std::vector<Entry>& buf, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(n, r0 + kRowsPerTask);
        const Entry* next = merged[static_cast<size_t>(task)].data();
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t o = out.indptr[r];
          if (replace[r] < 0 && add.indptr[r + 1] > add.indptr[r]) {
            const int64_t len = out.indptr[r + 1] - o;
            for (int64_t q = 0; q < len; ++q, ++next) {
              out.data[o + q] = next->first;
              out.indices[o + q] = next->second;
            }
            continue;
          }
          const auto [M, row] = copied(r);
          const int64_t b = M->indptr[row], len = M->indptr[row + 1] - b;
          if (replace[r] >= 0 && sort_cols) {
            buf.clear();
            for (int64_t e = b; e < b + len; ++e) buf.emplace_back(M->data[e], M->indices[e]);
            std::sort(buf.begin(), buf.end(), by_col);
            for (int64_t q = 0; q < len; ++q) {
              out.data[o + q] = buf[q].first;
              out.indices[o + q] = buf[q].second;
            }
            continue;
          }
          std::copy(M->data + b, M->data + b + len, out.data.begin() + o);
          std::copy(M->indices + b, M->indices + b + len, out.indices.begin() + o);
        }
        std::vector<Entry>().swap(merged[static_cast<size_t>(task)]);
      });
  return out;
}

template int64_t ranked_topn_row<int32_t>(const int64_t*, int64_t, int64_t, const int32_t*, int64_t, const float*,
                                          int64_t, int64_t*, float*);
template int64_t ranked_topn_row<int64_t>(const int64_t*, int64_t, int64_t, const int64_t*, int64_t, const float*,
                                          int64_t, int64_t*, float*);
template void ranked_topn<int32_t>(const int64_t*, int64_t, const CsrView<float, int32_t>&, int64_t, int64_t*, int);
template void ranked_topn<int64_t>(const int64_t*, int64_t, const CsrView<float, int64_t>&, int64_t, int64_t*, int);
template CsrResult<float, int32_t> merge_topk_rows<int32_t>(const CsrView<float, int32_t>&, const int64_t*,
                                                            const CsrView<float, int32_t>&,
                                                            const CsrView<float, int32_t>&, int64_t, bool, int);
template CsrResult<float, int64_t> merge_topk_rows<int64_t>(const CsrView<float, int64_t>&, const int64_t*,
                                                            const CsrView<float, int64_t>&,
                                                            const CsrView<float, int64_t>&, int64_t, bool, int);

template void topk_scores<float, int32_t>(const CsrView<float, int32_t>&, const CsrView<float, int32_t>&,
                                          const CsrView<float, int32_t>*, int64_t, int64_t*, float*, int);
template void topk_scores<float, int64_t>(const CsrView<float, int64_t>&, const CsrView<float, int64_t>&,
                                          const CsrView<float, int64_t>*, int64_t, int64_t*, float*, int);
template void topk_scores<double, int32_t>(const CsrView<double, int32_t>&, const CsrView<double, int32_t>&,
                                           const CsrView<double, int32_t>*, int64_t, int64_t*, double*, int);
template void topk_scores<double, int64_t>(const CsrView<double, int64_t>&, const CsrView<double, int64_t>&,
                                           const CsrView<double, int64_t>*, int64_t, int64_t*, double*, int);

}  // namespace cohortrec::cpu
