#include "cpu/user_topn.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "common/parallel.hpp"
#include "common/topk.hpp"
#include "cpu/dense_rows.hpp"

namespace cohortrec::cpu {

namespace {

// Up to this n the bounded heap; above it the buffered selection (same
// total order, so the same result either way).
constexpr int64_t kHeapMaxN = 48;
constexpr int64_t kRowsPerTask = 8;

/// Selection of the best n under "score desc, id asc", heap or buffer.
class Selector {
 public:
  explicit Selector(int64_t n)
      : heap_(n <= kHeapMaxN ? n : 0), buf_(n > kHeapMaxN ? n : 0), use_heap_(n <= kHeapMaxN) {}
  void clear() {
    if (use_heap_)
      heap_.clear();
    else
      buf_.clear();
  }
  float floor() const { return use_heap_ ? heap_.floor() : buf_.floor(); }
  void push(float s, int64_t j) {
    if (use_heap_)
      heap_.push(s, j);
    else
      buf_.push(s, j);
  }
  void write(int64_t* it, float* sc) {
    const auto& best = use_heap_ ? heap_.sorted() : buf_.sorted();
    for (size_t q = 0; q < best.size(); ++q) {
      it[q] = best[q].id;
      sc[q] = best[q].score;
    }
  }

 private:
  TopK<float, int64_t> heap_;
  TopKBuffer<float, int64_t> buf_;
  bool use_heap_;
};

/// Epoch-stamped marks over m ids: a row marks its ids, the next row's
/// epoch invalidates them without clearing.
struct Marks {
  std::vector<uint32_t> stamp;
  uint32_t epoch = 0;
  void reset(int64_t m) {
    stamp.assign(static_cast<size_t>(m), 0u);
    epoch = 0;
  }
  uint32_t next() {
    if (++epoch == std::numeric_limits<uint32_t>::max()) {
      std::fill(stamp.begin(), stamp.end(), 0u);
      epoch = 1;
    }
    return epoch;
  }
};

/// The best n of one dense score row: finite scores (non-zero with
/// drop_zero), keep[c] != 0, not in row r of `exclude`; written to it / sc.
template <typename I>
void select_dense_row(const float* acc, int64_t m, bool drop_zero, const uint8_t* keep,
                      const CsrView<float, I>* exclude, int64_t r, Marks& excl, Selector& top, int64_t* it, float* sc) {
  uint32_t ex = 0;
  if (exclude) {
    ex = excl.next();
    for (int64_t e = exclude->indptr[r]; e < exclude->indptr[r + 1]; ++e)
      excl.stamp[static_cast<int64_t>(exclude->indices[e])] = ex;
  }
  top.clear();
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t c = 0; c < m; ++c) {
    const float s = acc[c];
    if (!(s >= top.floor())) continue;  // also drops NaN
    if (s == inf || s == -inf || (drop_zero && s == 0.0f)) continue;
    if (keep && !keep[c]) continue;
    if (exclude && excl.stamp[c] == ex) continue;
    top.push(s, c);
  }
  top.write(it, sc);
}

template <typename I>
void check_shapes(const CsrView<float, I>& W, const CsrView<float, I>* exclude, int64_t m, int64_t n) {
  if (n < 0) throw std::invalid_argument("n must be >= 0");
  if (m < 0) throw std::invalid_argument("the model must have >= 0 items");
  if (exclude && (exclude->n_rows != W.n_rows || exclude->n_cols != m))
    throw std::invalid_argument("exclude must have shape (W.shape[0], n_items)");
}

}  // namespace

/// Per-OS-thread scratch of the sparse kernel, reused across calls (no
/// per-request allocation or clearing): for every item its accumulator next
/// to the epoch of the row that last touched it (one cache line per update),
/// and epoch stamps of the excluded items. thread_local: never shared
/// between threads; a stale stamp (an older epoch, also after a row that
/// threw) is simply not the current one.
struct SparseScratch {
  struct Slot {
    float acc;
    uint32_t epoch;
  };
  std::vector<Slot> slots;
  Marks excl;
  std::vector<int64_t> touched;
  std::vector<float> dacc;   // dense mode: accumulators, -0.0 per row (not reached)
  std::vector<uint8_t> hit;  // dense mode: reached only through products that underflowed to zero
  uint32_t epoch = 0;
  void fit_dense(int64_t m) {
    // -0.0 marks an item no update reached: a product that is not zero turns
    // it into a nonzero or +0.0 sum (x + -x = +0.0 when rounding to nearest)
    dacc.assign(static_cast<size_t>(m), -0.0f);
    hit.assign(static_cast<size_t>(m), uint8_t{0});
  }
  void fit(int64_t m) {
    if (static_cast<int64_t>(slots.size()) < m) {
      slots.assign(static_cast<size_t>(m), Slot{0.0f, 0u});
      excl.reset(m);
      epoch = 0;
    }
  }
  uint32_t next() {
    if (++epoch == std::numeric_limits<uint32_t>::max()) {
      for (auto& sl : slots) sl.epoch = 0;
      epoch = 1;
    }
    return epoch;
  }
};

template <typename I>
void user_topn_sparse(const CsrView<float, I>& W, const LazyCsr<I>& R, const uint8_t* keep,
                      const CsrView<float, I>* exclude, int64_t n, int64_t* items, float* scores, int n_threads) {
  const int64_t m = R.n_cols;
  check_shapes(W, exclude, m, n);
  if (W.n_cols != R.n_rows) throw std::invalid_argument("W.shape[1] must equal R.shape[0]");
  if (R.n_rows > 0 && (R.indptr[0] < 0 || R.indptr[R.n_rows] > R.nnz))
    throw std::out_of_range("R: indptr out of range of the stored entries");
  const int64_t u = W.n_rows;
  if (u == 0 || m == 0 || n == 0) return;
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
  parallel_tasks(
      n_tasks, n_threads, [&] { return Selector(n); },
      [&](Selector& top, int64_t task) {
        thread_local SparseScratch scratch;
        SparseScratch& st = scratch;
        st.fit(m);
        SparseScratch::Slot* slots = st.slots.data();
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
        for (int64_t r = r0; r < r1; ++r) {
          // Rows reaching many items (heavy users) accumulate into a dense
          // array and scan every item once: no epoch test or touched list per
          // update. Same sums in the same order, same candidates (hit), so
          // the same result as the sparse walk.
          int64_t work = 0;
          for (int64_t e = W.indptr[r]; e < W.indptr[r + 1]; ++e) {
            const int64_t j = static_cast<int64_t>(W.indices[e]);
            work += R.indptr[j + 1] - R.indptr[j];
          }
          const bool dense = work > m;
          uint32_t ep = 0;
          if (dense) {
            st.fit_dense(m);
          } else {
            ep = st.next();
            st.touched.clear();
          }
          float* __restrict dacc = dense ? st.dacc.data() : nullptr;
          uint8_t* __restrict hit = dense ? st.hit.data() : nullptr;
          for (int64_t e = W.indptr[r]; e < W.indptr[r + 1]; ++e) {
            const float w = W.data[e];
            if (w == 0.0f) continue;
            const int64_t j = static_cast<int64_t>(W.indices[e]);  // < R.n_rows: W was checked
            const int64_t b = R.indptr[j], f = R.indptr[j + 1];
            if (b < 0 || f < b || f > R.nnz)
              throw std::out_of_range("R: indptr is not monotone within the stored entries");
            if (dense) {
              // the row's column ids first (one vectorised pass), so that the
              // accumulation below has no test per update but a rare one
              bool bad = false;
              for (int64_t t = b; t < f; ++t) bad |= static_cast<uint64_t>(R.indices[t]) >= static_cast<uint64_t>(m);
              if (bad) throw std::out_of_range("R: column index out of range");
              for (int64_t t = b; t < f; ++t) {
                const float v = R.data[t];
                const int64_t c = static_cast<int64_t>(R.indices[t]);
                const float p = w * v;
                if (p == 0.0f) {  // an explicit zero (not a candidate) or an underflow (a candidate)
                  hit[c] |= static_cast<uint8_t>(v != 0.0f);
                  continue;
                }
                dacc[c] += p;
              }
              continue;
            }
            for (int64_t t = b; t < f; ++t) {
              const float v = R.data[t];
              if (v == 0.0f) continue;  // explicit zeros are not candidates
              const int64_t c = static_cast<int64_t>(R.indices[t]);
              if (c < 0 || c >= m) throw std::out_of_range("R: column index out of range");
              SparseScratch::Slot& sl = slots[c];
              if (sl.epoch != ep) {
                sl.epoch = ep;
                sl.acc = 0.0f;
                st.touched.push_back(c);
              }
              sl.acc += w * v;
            }
          }
          uint32_t ex = 0;
          if (exclude) {
            ex = st.excl.next();
            for (int64_t e = exclude->indptr[r]; e < exclude->indptr[r + 1]; ++e)
              st.excl.stamp[static_cast<int64_t>(exclude->indices[e])] = ex;
          }
          top.clear();
          if (dense) {
            for (int64_t c = 0; c < m; ++c) {
              const float s = dacc[c];
              if (s < top.floor()) continue;
              if (s == 0.0f && std::signbit(s) && !hit[c]) continue;  // not reached
              if (keep && !keep[c]) continue;
              if (exclude && st.excl.stamp[c] == ex) continue;
              top.push(s, c);
            }
          } else {
            for (const int64_t c : st.touched) {
              const float s = slots[c].acc;
              if (s < top.floor()) continue;
              if (keep && !keep[c]) continue;
              if (exclude && st.excl.stamp[c] == ex) continue;
              top.push(s, c);
            }
          }
          top.write(items + r * n, scores + r * n);
        }
      });
}

template <typename I>
void user_topn_dense(const CsrView<float, I>& W, const float* B, int64_t b_stride, int64_t m, const uint8_t* keep,
                     const CsrView<float, I>* exclude, bool drop_zero, int64_t n, int64_t* items, float* scores,
                     int n_threads) {
  check_shapes(W, exclude, m, n);
  if (b_stride < m) throw std::invalid_argument("B: row stride must be >= its number of columns");
  const int64_t u = W.n_rows;
  if (u == 0 || m == 0 || n == 0) return;
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
  struct State {
    std::unique_ptr<float[]> acc;
    Marks excl;
    Selector top;
    std::vector<const float*> rows;
    std::vector<float> coef;
  };
  parallel_tasks(
      n_tasks, n_threads,
      [&] {
        State st{std::unique_ptr<float[]>(new float[static_cast<size_t>(m)]), {}, Selector(n), {}, {}};
        if (exclude) st.excl.reset(m);
        return st;
      },
      [&](State& st, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
        float* __restrict acc = st.acc.get();
        for (int64_t r = r0; r < r1; ++r) {
          // acc = sum of w * B[j] over the row's nonzero entries, in their order,
          // register-blocked and vectorised for the CPU (dense_rows_combine_any)
          st.rows.clear();
          st.coef.clear();
          for (int64_t e = W.indptr[r]; e < W.indptr[r + 1]; ++e) {
            const float w = W.data[e];
            if (w == 0.0f) continue;
            st.rows.push_back(B + static_cast<int64_t>(W.indices[e]) * b_stride);
            st.coef.push_back(w);
          }
          dense_rows_combine_any(acc, m, st.rows.data(), st.coef.data(), static_cast<int64_t>(st.rows.size()));
          select_dense_row(acc, m, drop_zero, keep, exclude, r, st.excl, st.top, items + r * n, scores + r * n);
        }
      });
}

template <typename I>
void user_topn_dual(const CsrView<float, I>& W, const LazyCsr<int32_t>& C, const LazyCsr<I>& R, const float* M,
                    int64_t m_stride, const float* diag, const uint8_t* keep, const CsrView<float, I>* exclude,
                    bool drop_zero, int64_t n, int64_t* items, float* scores, int n_threads) {
  const int64_t m = C.n_rows, nu = C.n_cols;
  check_shapes(W, exclude, m, n);
  if (W.n_cols != m) throw std::invalid_argument("W must have one column per item of the model");
  if (R.n_rows != nu || R.n_cols != m) throw std::invalid_argument("dual model: R must be (n_users, n_items)");
  if (m_stride < nu) throw std::invalid_argument("dual model: M's row stride must be >= its number of rows");
  const int64_t u = W.n_rows;
  if (u == 0 || m == 0 || n == 0) return;
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
  struct State {
    std::unique_ptr<float[]> acc;  // m scores
    std::vector<float> v, w;       // nu each
    Marks excl;
    Selector top;
    std::vector<const float*> rows;
    std::vector<float> coef;
  };
  parallel_tasks(
      n_tasks, n_threads,
      [&] {
        State st{std::unique_ptr<float[]>(new float[static_cast<size_t>(m)]),
                 std::vector<float>(static_cast<size_t>(nu)),
                 std::vector<float>(static_cast<size_t>(m_stride)),
                 {},
                 Selector(n),
                 {},
                 {}};
        if (exclude) st.excl.reset(m);
        return st;
      },
      [&](State& st, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
        float* __restrict acc = st.acc.get();
        float* __restrict v = st.v.data();
        float* __restrict w = st.w.data();
        for (int64_t r = r0; r < r1; ++r) {
          // v = the users who hold the row's items, weighted: x Lambda^-1 X^T (the items' columns, in order)
          std::fill(v, v + nu, 0.0f);
          for (int64_t e = W.indptr[r]; e < W.indptr[r + 1]; ++e) {
            const float x = W.data[e];
            if (x == 0.0f) continue;
            const int64_t i = static_cast<int64_t>(W.indices[e]);
            const int64_t b = C.indptr[i], end = C.indptr[i + 1];
            if (b < 0 || end < b || end > C.nnz) throw std::out_of_range("dual model: indptr out of range");
            for (int64_t t = b; t < end; ++t) {
              const int32_t k = C.indices[t];
              if (k < 0 || k >= nu) throw std::out_of_range("dual model: user index out of range");
              v[k] += x * C.data[t];
            }
          }
          // w = v M over the users v reaches, in user order (the rows of M, register-blocked)
          st.rows.clear();
          st.coef.clear();
          for (int64_t k = 0; k < nu; ++k)
            if (v[k] != 0.0f) {
              st.rows.push_back(M + k * m_stride);
              st.coef.push_back(v[k]);
            }
          dense_rows_combine_any(w, m_stride, st.rows.data(), st.coef.data(), static_cast<int64_t>(st.rows.size()));
          // scores = w R: the training rows of the users w reaches, scattered in user order (independent
          // updates; a gather per item would chain one dependent add per entry), then the row's self terms
          std::fill(acc, acc + m, 0.0f);
          for (int64_t k = 0; k < nu; ++k) {
            const float wk = w[k];
            if (wk == 0.0f) continue;
            const int64_t b = R.indptr[k], end = R.indptr[k + 1];
            if (b < 0 || end < b || end > R.nnz) throw std::out_of_range("dual model: indptr out of range");
            for (int64_t t = b; t < end; ++t) {
              const int64_t j = static_cast<int64_t>(R.indices[t]);
              if (j < 0 || j >= m) throw std::out_of_range("dual model: item index out of range");
              acc[j] += wk * R.data[t];
            }
          }
          for (int64_t e = W.indptr[r]; e < W.indptr[r + 1]; ++e) {
            const int64_t i = static_cast<int64_t>(W.indices[e]);
            acc[i] += W.data[e] * diag[i];
          }
          select_dense_row(acc, m, drop_zero, keep, exclude, r, st.excl, st.top, items + r * n, scores + r * n);
        }
      });
}

template <typename I>
void user_topn_factors(const float* U, int64_t u, int64_t f, const float* B, int64_t m, const uint8_t* keep,
                       const CsrView<float, I>* exclude, int64_t n, int64_t* items, float* scores, int n_threads) {
  if (n < 0 || f < 0 || m < 0) throw std::invalid_argument("n, f and m must be >= 0");
  if (exclude && (exclude->n_rows != u || exclude->n_cols != m))
    throw std::invalid_argument("exclude must have shape (U.shape[0], n_items)");
  if (u == 0 || m == 0 || n == 0) return;
  constexpr int64_t kBlock = 4;  // users scored together: each strip of B is read once for four
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
  struct State {
    std::unique_ptr<float[]> acc;  // kBlock x m
    Marks excl;
    Selector top;
    std::vector<const float*> rows;
  };
  parallel_tasks(
      n_tasks, n_threads,
      [&] {
        State st{std::unique_ptr<float[]>(new float[static_cast<size_t>(kBlock * m)]), {}, Selector(n), {}};
        if (exclude) st.excl.reset(m);
        st.rows.resize(static_cast<size_t>(f));
        for (int64_t h = 0; h < f; ++h) st.rows[static_cast<size_t>(h)] = B + h * m;
        return st;
      },
      [&](State& st, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
        for (int64_t b0 = r0; b0 < r1; b0 += kBlock) {
          const int64_t nb = std::min(kBlock, r1 - b0);
          float* outs[kBlock];
          for (int64_t q = 0; q < nb; ++q) outs[q] = st.acc.get() + q * m;
          dense_rows_combine_shared(outs, nb, m, st.rows.data(), U + b0 * f, f);
          for (int64_t q = 0; q < nb; ++q) {
            const int64_t r = b0 + q;
            select_dense_row(outs[q], m, true, keep, exclude, r, st.excl, st.top, items + r * n, scores + r * n);
          }
        }
      });
}

template void user_topn_factors<int32_t>(const float*, int64_t, int64_t, const float*, int64_t, const uint8_t*,
                                         const CsrView<float, int32_t>*, int64_t, int64_t*, float*, int);
template void user_topn_factors<int64_t>(const float*, int64_t, int64_t, const float*, int64_t, const uint8_t*,
                                         const CsrView<float, int64_t>*, int64_t, int64_t*, float*, int);
template void user_topn_sparse<int32_t>(const CsrView<float, int32_t>&, const LazyCsr<int32_t>&, const uint8_t*,
                                        const CsrView<float, int32_t>*, int64_t, int64_t*, float*, int);
template void user_topn_sparse<int64_t>(const CsrView<float, int64_t>&, const LazyCsr<int64_t>&, const uint8_t*,
                                        const CsrView<float, int64_t>*, int64_t, int64_t*, float*, int);
template void user_topn_dual<int32_t>(const CsrView<float, int32_t>&, const LazyCsr<int32_t>&, const LazyCsr<int32_t>&,
                                      const float*, int64_t, const float*, const uint8_t*,
                                      const CsrView<float, int32_t>*, bool, int64_t, int64_t*, float*, int);
template void user_topn_dual<int64_t>(const CsrView<float, int64_t>&, const LazyCsr<int32_t>&, const LazyCsr<int64_t>&,
                                      const float*, int64_t, const float*, const uint8_t*,
                                      const CsrView<float, int64_t>*, bool, int64_t, int64_t*, float*, int);
template void user_topn_dense<int32_t>(const CsrView<float, int32_t>&, const float*, int64_t, int64_t, const uint8_t*,
                                       const CsrView<float, int32_t>*, bool, int64_t, int64_t*, float*, int);
template void user_topn_dense<int64_t>(const CsrView<float, int64_t>&, const float*, int64_t, int64_t, const uint8_t*,
                                       const CsrView<float, int64_t>*, bool, int64_t, int64_t*, float*, int);

}  // namespace cohortrec::cpu
