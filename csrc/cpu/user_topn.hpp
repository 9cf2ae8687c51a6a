#pragma once
// Per-request scoring of a few users against a fitted model matrix, fused
// with exclusion of the users' own items, a candidate mask and top-n
// selection: the serving path of the recommenders (one user per request).
#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/csr.hpp"

namespace cohortrec::cpu {

/// A CSR model matrix (j x m) that is *not* validated up front: only the
/// parts a query touches are checked (row bounds of the rows visited, the
/// column id of every entry read), so a request costs O(work), not
/// O(nnz(R)), and a corrupt matrix still cannot make the kernel read or
/// write out of bounds.
template <typename I>
struct LazyCsr {
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  int64_t nnz = 0;  // length of indices and data
  const int64_t* indptr = nullptr;
  const I* indices = nullptr;
  const float* data = nullptr;
};

/// Row r of a lazily validated CSR matrix as a one-row CsrView whose
/// indptr is `local` (two entries, owned by the caller): the row's bounds
/// are checked against the stored entries and its column ids against
/// M.n_cols, so a request reads O(row) and never out of bounds.
template <typename I>
CsrView<float, I> lazy_row(const LazyCsr<I>& M, int64_t r, int64_t* local, const char* name) {
  if (r < 0 || r >= M.n_rows) throw std::out_of_range(std::string(name) + ": row out of range");
  const int64_t b = M.indptr[r], e = M.indptr[r + 1];
  if (b < 0 || e < b || e > M.nnz) throw std::out_of_range(std::string(name) + ": indptr out of range");
  local[0] = 0;
  local[1] = e - b;
  CsrView<float, I> v;
  v.n_rows = 1;
  v.n_cols = M.n_cols;
  v.indptr = local;
  v.indices = M.indices + b;
  v.data = M.data ? M.data + b : nullptr;
  for (int64_t t = 0; t < e - b; ++t)
    if (v.indices[t] < 0 || static_cast<int64_t>(v.indices[t]) >= M.n_cols)
      throw std::out_of_range(std::string(name) + ": column index out of range");
  return v;
}

/// For each row u of W (u x j): scores = W[u, :] @ R (sparse j x m),
/// accumulated in float32 in the order of W's and R's stored entries (the
/// same operations as topk_scores, so the same scores). Candidates are the
/// items reached through a nonzero W entry and a nonzero R entry, with
/// keep[item] != 0 (keep may be null) and not stored in row u of `exclude`
/// (may be null). The best n (score desc, id asc) are written to
/// items / scores (u x n, pre-filled with -1 / -inf).
/// \brief Per-call, per-thread epoch-stamped dense accumulator over the m
/// items (nothing shared between calls or threads); rows split across
/// n_threads; throws std::out_of_range on an invalid entry of R it reads.
template <typename I>
void user_topn_sparse(const CsrView<float, I>& W, const LazyCsr<I>& R, const uint8_t* keep,
                      const CsrView<float, I>* exclude, int64_t n, int64_t* items, float* scores, int n_threads);

/// For each row u of W (u x j): scores = W[u, :] @ B with B dense (j x m,
/// row-major, row stride b_stride), accumulated in float32 in the order of
/// W's stored entries from 0. Candidates are the finite scores (non-zero
/// when drop_zero) with keep[item] != 0 and not in row u of `exclude`;
/// best n as in user_topn_sparse. The EASE scoring step.
template <typename I>
void user_topn_dense(const CsrView<float, I>& W, const float* B, int64_t b_stride, int64_t m, const uint8_t* keep,
                     const CsrView<float, I>* exclude, bool drop_zero, int64_t n, int64_t* items, float* scores,
                     int n_threads);

/// EASE in its dual (user-side) form, for catalogues with more items than
/// training users (Woodbury: P = (X^T X + L)^-1 = L^-1 - L^-1 X^T M X L^-1
/// with M = (I + X L^-1 X^T)^-1, n x n). The model is the training matrix
/// twice, item-major C (m x n, int32 user ids) and user-major R (n x m),
/// with the values
///   C.data[t] = X[u, i] / L_i                 (query side),
///   R.data[t] = X[u, j] c_j / (L_j P_jj)      (score side, c_j the popularity penalty),
///   diag[j]   = the self term of an item the user holds (B_jj = 0 in the primal),
/// and M (n x n, symmetric, rows m_stride >= n apart, the padding zero: a
/// stride that is a multiple of kDenseRowsStrip has no scalar tail). For each row x of W (u x m):
/// v = x L^-1 X^T (C's columns of x's items), w = v M (rows of M combined
/// in user order), scores = w R + x diag (R's rows in user order): the
/// scores x B of the primal up to float32 rounding, in O(nnz(X) + n nnz(v))
/// per user instead of O(|x| m). Candidates and selection as in
/// user_topn_dense. Every model entry is checked where it is read
/// (std::out_of_range): a corrupt model cannot make it read out of bounds.
template <typename I>
void user_topn_dual(const CsrView<float, I>& W, const LazyCsr<int32_t>& C, const LazyCsr<I>& R, const float* M,
                    int64_t m_stride, const float* diag, const uint8_t* keep, const CsrView<float, I>* exclude,
                    bool drop_zero, int64_t n, int64_t* items, float* scores, int n_threads);

/// For each of the u rows of U (dense, u x f): scores = U[r] @ B with B
/// dense (f x m, row-major), accumulated in float32 over the f factors in
/// order (every product and sum rounded; users blocked four at a time, the
/// same bits for any block or thread count). Candidates are the finite,
/// non-zero scores with keep[item] != 0 and not in row r of `exclude`; best
/// n as in user_topn_sparse. The scoring step of factor models (ALS).
template <typename I>
void user_topn_factors(const float* U, int64_t u, int64_t f, const float* B, int64_t m, const uint8_t* keep,
                       const CsrView<float, I>* exclude, int64_t n, int64_t* items, float* scores, int n_threads);

}  // namespace cohortrec::cpu
