#include "cpu/cosine_topk.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <numeric>
#include <stdexcept>

#include "common/parallel.hpp"
#include "common/sparse_accumulator.hpp"
#include "common/topk.hpp"
#include "cpu/dense_rows.hpp"
#include "cpu/isa_dispatch.hpp"

namespace cohortrec::cpu {

namespace {

/// 1 / ||row|| for every row (0 for rows whose norm is 0), in double and
/// scaled by the row's largest magnitude first, so rows of 1e-200 or 1e200
/// neither underflow nor overflow (LAPACK dnrm2's idea).
template <typename T, typename I>
std::vector<double> inverse_row_norms(const CsrView<T, I>& M, int n_threads) {
  std::vector<double> inv(static_cast<size_t>(M.n_rows));
  constexpr int64_t kRows = 4096;
  parallel_for((M.n_rows + kRows - 1) / kRows, n_threads, [&](int64_t blk) {
    const int64_t r1 = std::min(M.n_rows, (blk + 1) * kRows);
    for (int64_t r = blk * kRows; r < r1; ++r) {
      double mx = 0.0;
      for (int64_t e = M.indptr[r]; e < M.indptr[r + 1]; ++e) mx = std::max(mx, std::fabs(double(M.data[e])));
      double s = 0.0;
      if (mx > 0.0)
        for (int64_t e = M.indptr[r]; e < M.indptr[r + 1]; ++e) {
          const double v = double(M.data[e]) / mx;
          s += v * v;
        }
      inv[r] = mx > 0.0 ? 1.0 / (mx * std::sqrt(s)) : 0.0;
    }
  });
  return inv;
}

// Rows are grouped in fixed-size blocks; each block's output is buffered and
// the blocks are stitched together in order at the end.
constexpr int64_t kRowsPerBlock = 64;

/// The threshold is compared in double (a float32 rounding of, say,
/// 1 - 1e-9 would be 1.0 and wrongly reject exact 1.0 scores); this is the
/// largest T not above it, a safe pre-filter in the score's own type.
template <typename T>
T threshold_floor(double thr) {
  T lo = static_cast<T>(thr);
  if (static_cast<double>(lo) > thr) lo = std::nextafter(lo, -std::numeric_limits<T>::infinity());
  return lo;
}

/// Rows are computed in blocks whose output is buffered per block; fills
/// out.indptr (given per-row counts at indptr[i + 1]) and stitches the
/// blocks together in order.
template <typename T, typename J>
void stitch_blocks(CsrResult<T, J>& out, const std::vector<std::vector<J>>& block_idx,
                   const std::vector<std::vector<T>>& block_val, int64_t rows_per_block, int n_threads) {
  const int64_t n = out.n_rows;
  for (int64_t i = 0; i < n; ++i) out.indptr[i + 1] += out.indptr[i];
  out.indices.resize(static_cast<size_t>(out.indptr[n]));
  out.data.resize(static_cast<size_t>(out.indptr[n]));
  parallel_for(static_cast<int64_t>(block_idx.size()), n_threads, [&](int64_t blk) {
    const int64_t start = out.indptr[blk * rows_per_block];
    std::copy(block_idx[blk].begin(), block_idx[blk].end(), out.indices.begin() + start);
    std::copy(block_val[blk].begin(), block_val[blk].end(), out.data.begin() + start);
  });
}

// ---------------------------------------------------------------------------
// Hybrid sparse/dense product.
//
// In user x item data with power-law popularity, a few popular columns carry
// most of the Gustavson work: a column with nnz_c nonzeros costs nnz_c^2
// scattered updates (load, add, store into the accumulator plus the bitmap),
// about 1 ns each. Stored as a dense row over all p candidates, the same
// column costs nnz_c(A) * p contiguous FMAs at 16-32 per cycle -- cheaper
// once its density nnz_c / p exceeds ~1/30. So the columns of B above a
// density are laid out densely (chunk-major, so a chunk of every dense row
// sits in L2), and for every row of A and chunk of candidates:
//   tile  = sum over A's dense columns of a_c * dense_c[chunk]   (registers)
//   tile += A's sparse columns via Gustavson, restricted to the chunk
//   top-k <- entries of tile above the current floor (vectorised scan).
// Rows of A are processed in blocks so that each dense chunk, loaded once
// into L2, serves the whole block (the reuse a GEMM gets from packing).
//
// "Pairs that share a nonzero column" is the candidate set; with
// nonnegative data and no underflow a pair shares a column exactly when its
// dot product is > 0, so a dense tile loses nothing. Signed data, or values
// so small that a product could underflow, take the sparse path.
// ---------------------------------------------------------------------------

template <typename T>
struct AlignedArray {
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T[], Free> ptr;
  explicit AlignedArray(size_t n) {
    const size_t bytes = std::max<size_t>(64, (n * sizeof(T) + 63) / 64 * 64);
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    ptr.reset(static_cast<T*>(p));
  }
  T* get() const { return ptr.get(); }
};

/// Cost model, in units of one Gustavson update of the pure sparse path
/// (fitted on 20k x 50k power-law data, 1 thread, AVX-512; the dense rate is
/// scaled by the vector width elsewhere): a dense multiply-add, a sparse
/// update inside the hybrid (it also buffers the partial product and adds
/// it to the tile later), and one scanned tile entry.
inline double dense_madd_cost() { return isa_level() >= kAvx512 ? 1.0 / 12 : isa_level() == kAvx2 ? 1.0 / 6 : 1.0 / 2; }
constexpr double kHybridSparseCost = 2.5;
constexpr double kScanCost = 1.0 / 8;

/// True when every stored value of A and B^T is >= 0 and no product of two
/// nonzero normalised values can underflow: then a pair shares a nonzero
/// column exactly when its dot product is > 0, and candidates can be found
/// from the scores alone.
template <typename T, typename I>
bool positive_products(const CsrView<T, I>& A, const std::vector<double>& inv_a, const std::vector<T>& bt_val) {
  T min_a = std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < A.n_rows; ++i) {
    for (int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e) {
      const T v = A.data[e];
      if (v < T(0)) return false;
      if (v > T(0)) min_a = std::min(min_a, static_cast<T>(double(v) * inv_a[i]));
    }
  }
  T min_b = std::numeric_limits<T>::infinity();
  for (const T v : bt_val) {
    if (v < T(0)) return false;
    if (v > T(0)) min_b = std::min(min_b, v);
  }
  return double(min_a) * double(min_b) >= 1e6 * double(std::numeric_limits<T>::min());
}

template <typename T, typename I, typename J>
struct HybridInputs {
  const CsrView<T, I>& A;
  const std::vector<double>& inv_a;
  const std::vector<int64_t>& bt_ptr;
  const std::vector<J>& bt_idx;
  const std::vector<T>& bt_val;
  int64_t p;
};

/// Columns to treat densely (most popular first), or empty when the hybrid
/// does not apply or does not pay.
template <typename T, typename I, typename J>
std::vector<int64_t> choose_dense_columns(const HybridInputs<T, I, J>& in, bool same, bool positive,
                                          const CosineTopkParams& params) {
  const auto& A = in.A;
  const int64_t m = A.n_cols, p = in.p;
  const double min_density = params.dense_min_density;
  if (min_density > 1.0 || (min_density < 0.0 && p < 2 * kDenseRowsStrip)) return {};
  if (!positive) return {};

  std::vector<int64_t> nnz_a(static_cast<size_t>(m), 0);
  if (same) {
    for (int64_t c = 0; c < m; ++c) nnz_a[c] = in.bt_ptr[c + 1] - in.bt_ptr[c];
  } else {
    for (int64_t e = 0; e < A.nnz(); ++e)
      if (A.data[e] != T(0)) ++nnz_a[static_cast<int64_t>(A.indices[e])];
  }
  // A column moves to the dense side when nnz_a * p * dense_madd_cost() <
  // nnz_a * nnz_b * kHybridSparseCost, i.e. above this density.
  const double gamma = min_density >= 0.0 ? min_density : dense_madd_cost() / kHybridSparseCost;
  std::vector<int64_t> cols;
  for (int64_t c = 0; c < m; ++c) {
    const int64_t nb = in.bt_ptr[c + 1] - in.bt_ptr[c];
    if (nb > 0 && nnz_a[c] > 0 && double(nb) >= gamma * double(p)) cols.push_back(c);
  }
  std::sort(cols.begin(), cols.end(), [&](int64_t x, int64_t y) {
    const int64_t nx = in.bt_ptr[x + 1] - in.bt_ptr[x], ny = in.bt_ptr[y + 1] - in.bt_ptr[y];
    return nx != ny ? nx > ny : x < y;
  });
  // Dense storage is |cols| x p values: keep it under 512 MiB.
  const int64_t max_cols = std::max<int64_t>(1, (int64_t(512) << 20) / (int64_t(sizeof(T)) * (p + kDenseRowsStrip)));
  if (static_cast<int64_t>(cols.size()) > max_cols) cols.resize(static_cast<size_t>(max_cols));
  if (cols.empty()) return {};
  if (min_density < 0.0) {  // auto: only when the model predicts a clear gain
    double total = 0.0, moved = 0.0, dense_madds = 0.0;
    for (int64_t c = 0; c < m; ++c) total += double(nnz_a[c]) * double(in.bt_ptr[c + 1] - in.bt_ptr[c]);
    for (const int64_t c : cols) {
      moved += double(nnz_a[c]) * double(in.bt_ptr[c + 1] - in.bt_ptr[c]);
      dense_madds += double(nnz_a[c]) * double(p);
    }
    int64_t rows = 0;
    for (int64_t i = 0; i < A.n_rows; ++i) rows += in.inv_a[i] != 0.0;
    const double hybrid =
        (total - moved) * kHybridSparseCost + dense_madds * dense_madd_cost() + double(rows) * double(p) * kScanCost;
    if (!(hybrid < 0.8 * total)) return {};
  }
  std::sort(cols.begin(), cols.end());
  return cols;
}

template <typename T, typename I, typename J>
void cosine_topk_hybrid(const HybridInputs<T, I, J>& in, const std::vector<int64_t>& dense_cols,
                        const CosineTopkParams& params, bool same, CsrResult<T, J>& out) {
  const auto& A = in.A;
  const int64_t n = A.n_rows, m = A.n_cols, p = in.p;
  const int64_t H = static_cast<int64_t>(dense_cols.size());
  std::vector<int64_t> slot(static_cast<size_t>(m), -1);  // column -> dense row, or -1
  for (int64_t h = 0; h < H; ++h) slot[dense_cols[h]] = h;

  // Chunk of candidates: a chunk of all H dense rows is ~256 KiB (L2).
  int64_t chunk = (int64_t(256) << 10) / (H * int64_t(sizeof(T)));
  chunk = std::clamp<int64_t>(chunk / kDenseRowsStrip * kDenseRowsStrip, kDenseRowsStrip, 8192);
  chunk = std::min(chunk, (p + kDenseRowsStrip - 1) / kDenseRowsStrip * kDenseRowsStrip);
  const int64_t n_chunks = (p + chunk - 1) / chunk;
  AlignedArray<T> dense(static_cast<size_t>(n_chunks * H * chunk));  // [chunk][h][j - j0], zero-filled
  parallel_for(H, params.n_threads, [&](int64_t h) {
    const int64_t c = dense_cols[h];
    for (int64_t e = in.bt_ptr[c]; e < in.bt_ptr[c + 1]; ++e) {
      const int64_t j = static_cast<int64_t>(in.bt_idx[e]);
      dense.get()[((j / chunk) * H + h) * chunk + j % chunk] = in.bt_val[e];
    }
  });

  const double thr = params.threshold;
  const T thr_lo = threshold_floor<T>(thr);
  const bool use_thr = params.has_threshold;
  const bool skip_self = params.exclude_self && same;
  // Rows per block: enough blocks to balance the threads, at most 1024 rows
  // (the block's per-row state stays within L2/L3).
  // ... and the rows' buffered sparse partial products (bounded by their
  // work, sum over sparse columns of nnz(B column)) about 1M entries.
  double sparse_work = 0.0;
  for (int64_t e = 0; e < A.nnz(); ++e) {
    const int64_t c = static_cast<int64_t>(A.indices[e]);
    if (slot[c] < 0) sparse_work += double(in.bt_ptr[c + 1] - in.bt_ptr[c]);
  }
  const int64_t by_work = static_cast<int64_t>(double(1 << 20) / std::max(1.0, sparse_work / std::max<int64_t>(1, n)));
  const int64_t rows_per_block =
      std::clamp<int64_t>(std::min(n / (4 * int64_t(std::max(1, params.n_threads))), by_work), 32, 1024);
  const int64_t n_blocks = (n + rows_per_block - 1) / rows_per_block;
  std::vector<std::vector<J>> block_idx(static_cast<size_t>(n_blocks));
  std::vector<std::vector<T>> block_val(static_cast<size_t>(n_blocks));

  struct State {
    AlignedArray<T> tile;
    SparseAccumulator<T, J> acc;
    std::vector<TopKBuffer<T, J>> tops;
    std::vector<int64_t> dptr, lptr, lpos;  // per-row offsets into the lists below
    std::vector<int64_t> dslot;
    std::vector<T> dcoef;
    std::vector<J> lidx;  // the sparse columns' partial products of each row, by increasing id
    std::vector<T> lval;
    std::vector<const T*> rows;
  };
  const T denorm = std::numeric_limits<T>::denorm_min();
  parallel_tasks(
      n_blocks, params.n_threads,
      [&] {
        return State{AlignedArray<T>(static_cast<size_t>(chunk)),
                     SparseAccumulator<T, J>(p),
                     std::vector<TopKBuffer<T, J>>(static_cast<size_t>(rows_per_block), TopKBuffer<T, J>(params.k)),
                     {},
                     {},
                     {},
                     {},
                     {},
                     {},
                     {},
                     std::vector<const T*>(static_cast<size_t>(H))};
      },
      [&](State& st, int64_t blk) {
        const int64_t r0 = blk * rows_per_block, r1 = std::min(n, r0 + rows_per_block), R = r1 - r0;
        st.dptr.assign(1, 0);
        st.lptr.assign(1, 0);
        st.dslot.clear(), st.dcoef.clear(), st.lidx.clear(), st.lval.clear();
        // Sparse columns first, row by row (Gustavson), kept as sorted
        // partial products: the chunk loop below then reads each row's list
        // sequentially instead of peeking into B^T at random.
        for (int64_t i = r0; i < r1; ++i) {
          const double ia = in.inv_a[i];
          if (ia != 0.0) {
            int64_t work = 0;
            for (int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e) {
              const int64_t c = static_cast<int64_t>(A.indices[e]);
              if (slot[c] < 0) work += in.bt_ptr[c + 1] - in.bt_ptr[c];
            }
            st.acc.start_row(work);
            for (int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e) {
              if (A.data[e] == T(0)) continue;
              const int64_t c = static_cast<int64_t>(A.indices[e]);
              const T a = static_cast<T>(double(A.data[e]) * ia);
              if (slot[c] >= 0) {
                st.dslot.push_back(slot[c]);
                st.dcoef.push_back(a);
              } else {
                st.acc.axpy(a, in.bt_idx.data(), in.bt_val.data(), in.bt_ptr[c], in.bt_ptr[c + 1]);
              }
            }
            st.acc.drain_ordered([&](J j, T v) {
              st.lidx.push_back(j);
              st.lval.push_back(v);
            });
          }
          st.dptr.push_back(static_cast<int64_t>(st.dslot.size()));
          st.lptr.push_back(static_cast<int64_t>(st.lidx.size()));
          st.tops[i - r0].clear();
        }
        st.lpos.assign(st.lptr.begin(), st.lptr.end() - 1);
        T* tile = st.tile.get();
        for (int64_t q = 0; q < n_chunks; ++q) {
          const int64_t j0 = q * chunk, j1 = std::min(p, j0 + chunk);
          const T* base = dense.get() + q * H * chunk;
          for (int64_t r = 0; r < R; ++r) {
            const int64_t d0 = st.dptr[r], d1 = st.dptr[r + 1], l1 = st.lptr[r + 1];
            if (d0 == d1 && st.lptr[r] == l1) continue;  // empty row, or no candidate at all
            for (int64_t t = d0; t < d1; ++t) st.rows[t - d0] = base + st.dslot[t] * chunk;
            dense_rows_combine(tile, chunk, st.rows.data(), st.dcoef.data() + d0, d1 - d0);
            int64_t e = st.lpos[r];
            for (; e < l1 && static_cast<int64_t>(st.lidx[e]) < j1; ++e)
              tile[static_cast<int64_t>(st.lidx[e]) - j0] += st.lval[e];
            st.lpos[r] = e;
            // Scan: a 64-entry group is looked at only if one entry reaches
            // the floor (the k-th best so far, the threshold, and > 0).
            TopKBuffer<T, J>& top = st.tops[r];
            const int64_t i = r0 + r;
            const int64_t width = j1 - j0;
            for (int64_t g = 0; g < width; g += 64) {
              T f = top.floor();
              if (use_thr) f = std::max(f, thr_lo);
              f = std::max(f, denorm);
              const int64_t ge = std::min<int64_t>(64, width - g);
              const T* tv = tile + g;
              int any = 0;
              for (int64_t t = 0; t < ge; ++t) any |= tv[t] >= f;
              if (!any) continue;
              for (int64_t t = 0; t < ge; ++t) {
                const T s = tv[t];
                if (!(s >= f)) continue;
                const int64_t j = j0 + g + t;
                if (skip_self && j == i) continue;
                if (use_thr && !(static_cast<double>(s) > thr)) continue;
                top.push(s, static_cast<J>(j));
                f = std::max(f, top.floor());
              }
            }
          }
        }
        auto& idx_out = block_idx[blk];
        auto& val_out = block_val[blk];
        for (int64_t r = 0; r < R; ++r) {
          const auto& best = st.tops[r].sorted();
          for (const auto& sc : best) {
            idx_out.push_back(sc.id);
            val_out.push_back(sc.score);
          }
          out.indptr[r0 + r + 1] = static_cast<int64_t>(best.size());
        }
      });

  stitch_blocks(out, block_idx, block_val, rows_per_block, params.n_threads);
}

}  // namespace

template <typename T, typename I, typename J>
CsrResult<T, J> cosine_topk(const CsrView<T, I>& A, const CsrView<T, I>& B, const CosineTopkParams& params) {
  if (A.n_cols != B.n_cols) throw std::invalid_argument("A and B must have the same number of columns");
  if (params.k < 0) throw std::invalid_argument("k must be >= 0");
  const int64_t n = A.n_rows, p = B.n_rows;
  CsrResult<T, J> out;
  out.n_rows = n;
  out.n_cols = p;
  out.indptr.assign(static_cast<size_t>(n) + 1, 0);
  if (n == 0 || p == 0 || params.k == 0) return out;

  // Both sides are normalised before multiplying (B^T's values while
  // transposing, A's on the fly), so every product is at most 1 in
  // magnitude and the accumulated dot product is the cosine itself.
  const std::vector<double> inv_a = inverse_row_norms(A, params.n_threads);
  const std::vector<double> inv_b = (&A == &B) ? inv_a : inverse_row_norms(B, params.n_threads);
  std::vector<int64_t> bt_ptr;
  std::vector<J> bt_idx;
  std::vector<T> bt_val;
  transpose_csr(B, bt_ptr, bt_idx, bt_val, inv_b.data());

  // Scanned once: both the hybrid and the sparse path's accumulator scan need it.
  const bool positive = params.dense_min_density <= 1.5 && positive_products(A, inv_a, bt_val);
  {
    const HybridInputs<T, I, J> in{A, inv_a, bt_ptr, bt_idx, bt_val, p};
    const bool same = &A == &B;
    const std::vector<int64_t> dense_cols = choose_dense_columns(in, same, positive, params);
    if (!dense_cols.empty()) {
      cosine_topk_hybrid(in, dense_cols, params, same, out);
      return out;
    }
  }

  const int64_t n_blocks = (n + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<std::vector<J>> block_idx(static_cast<size_t>(n_blocks));
  std::vector<std::vector<T>> block_val(static_cast<size_t>(n_blocks));
  const double thr = params.threshold;
  const T thr_lo = threshold_floor<T>(thr);
  const bool use_thr = params.has_threshold;
  const bool skip_self = params.exclude_self;

  struct State {
    SparseAccumulator<T, J> acc;
    TopK<T, J> top;
  };
  parallel_tasks(
      n_blocks, params.n_threads, [&] { return State{SparseAccumulator<T, J>(p), TopK<T, J>(params.k)}; },
      [&](State& st, int64_t blk) {
        const int64_t r0 = blk * kRowsPerBlock, r1 = std::min(n, r0 + kRowsPerBlock);
        auto& idx_out = block_idx[blk];
        auto& val_out = block_val[blk];
        for (int64_t i = r0; i < r1; ++i) {
          const double ia = inv_a[i];
          if (ia == 0.0) continue;  // empty / all-zero row: no neighbours
          int64_t work = 0;
          for (int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e) {
            const int64_t c = A.indices[e];
            work += bt_ptr[c + 1] - bt_ptr[c];
            // The row's columns are known now: start fetching the head of
            // every B^T list at once, rather than missing on each in turn.
            __builtin_prefetch(bt_idx.data() + bt_ptr[c]);
            __builtin_prefetch(bt_val.data() + bt_ptr[c]);
          }
          st.top.clear();
          auto floor = [&] { return use_thr ? std::max(st.top.floor(), thr_lo) : st.top.floor(); };
          auto visit = [&](J j, T s) {
            if (skip_self && static_cast<int64_t>(j) == i) return;
            if (use_thr && !(static_cast<double>(s) > thr)) return;
            st.top.push(s, j);
          };
          if (positive && work * 4 >= p) {
            // Many candidates: skip the touched-bitmap bookkeeping and find
            // them by a vectorised scan of the accumulator (score > 0).
            for (int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e) {
              if (A.data[e] == T(0)) continue;
              const T a = static_cast<T>(double(A.data[e]) * ia);
              const int64_t c = A.indices[e];
              st.acc.axpy_untracked(a, bt_idx.data(), bt_val.data(), bt_ptr[c], bt_ptr[c + 1]);
            }
            st.acc.drain_positive(floor, visit);
          } else {
            st.acc.start_row(work);
            for (int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e) {
              if (A.data[e] == T(0)) continue;
              const T a = static_cast<T>(double(A.data[e]) * ia);
              const int64_t c = A.indices[e];
              st.acc.axpy(a, bt_idx.data(), bt_val.data(), bt_ptr[c], bt_ptr[c + 1]);
            }
            st.acc.drain_scored(T(1), nullptr, floor, visit);
          }
          const auto& best = st.top.sorted();
          for (const auto& sc : best) {
            idx_out.push_back(sc.id);
            val_out.push_back(sc.score);
          }
          out.indptr[i + 1] = static_cast<int64_t>(best.size());
        }
      });

  stitch_blocks(out, block_idx, block_val, kRowsPerBlock, params.n_threads);
  return out;
}

#define COHORTREC_INSTANTIATE(T, I, J) \
  template CsrResult<T, J> cosine_topk<T, I, J>(const CsrView<T, I>&, const CsrView<T, I>&, const CosineTopkParams&);
COHORTREC_INSTANTIATE(float, int32_t, int32_t)
COHORTREC_INSTANTIATE(float, int32_t, int64_t)
COHORTREC_INSTANTIATE(float, int64_t, int32_t)
COHORTREC_INSTANTIATE(float, int64_t, int64_t)
COHORTREC_INSTANTIATE(double, int32_t, int32_t)
COHORTREC_INSTANTIATE(double, int32_t, int64_t)
COHORTREC_INSTANTIATE(double, int64_t, int32_t)
COHORTREC_INSTANTIATE(double, int64_t, int64_t)
#undef COHORTREC_INSTANTIATE

}  // namespace cohortrec::cpu
