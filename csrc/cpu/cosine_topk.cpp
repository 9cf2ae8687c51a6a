#include "cpu/cosine_topk.hpp"

#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "common/parallel.hpp"
#include "common/sparse_accumulator.hpp"
#include "common/topk.hpp"

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

  const int64_t n_blocks = (n + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<std::vector<J>> block_idx(static_cast<size_t>(n_blocks));
  std::vector<std::vector<T>> block_val(static_cast<size_t>(n_blocks));
  // The threshold is compared in double (a float32 rounding of, say,
  // 1 - 1e-9 would be 1.0 and wrongly reject exact 1.0 scores); `thr_lo` is
  // the largest T not above it, a safe pre-filter in the score's own type.
  const double thr = params.threshold;
  T thr_lo = static_cast<T>(thr);
  if (static_cast<double>(thr_lo) > thr) thr_lo = std::nextafter(thr_lo, -std::numeric_limits<T>::infinity());
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
          }
          st.acc.start_row(work);
          for (int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e) {
            if (A.data[e] == T(0)) continue;
            const T a = static_cast<T>(double(A.data[e]) * ia);
            const int64_t c = A.indices[e];
            st.acc.axpy(a, bt_idx.data(), bt_val.data(), bt_ptr[c], bt_ptr[c + 1]);
          }
          st.top.clear();
          st.acc.drain_scored(
              T(1), nullptr, [&] { return use_thr ? std::max(st.top.floor(), thr_lo) : st.top.floor(); },
              [&](J j, T s) {
                if (skip_self && static_cast<int64_t>(j) == i) return;
                if (use_thr && !(static_cast<double>(s) > thr)) return;
                st.top.push(s, j);
              });
          const auto& best = st.top.sorted();
          for (const auto& sc : best) {
            idx_out.push_back(sc.id);
            val_out.push_back(sc.score);
          }
          out.indptr[i + 1] = static_cast<int64_t>(best.size());
        }
      });

  for (int64_t i = 0; i < n; ++i) out.indptr[i + 1] += out.indptr[i];
  out.indices.resize(static_cast<size_t>(out.indptr[n]));
  out.data.resize(static_cast<size_t>(out.indptr[n]));
  parallel_for(n_blocks, params.n_threads, [&](int64_t blk) {
    const int64_t start = out.indptr[blk * kRowsPerBlock];
    std::copy(block_idx[blk].begin(), block_idx[blk].end(), out.indices.begin() + start);
    std::copy(block_val[blk].begin(), block_val[blk].end(), out.data.begin() + start);
  });
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
