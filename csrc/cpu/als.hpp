#pragma once
// Implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008),
// one half-step at a time, with the conjugate-gradient row solver of
// Takacs, Pilaszy & Tikk (2011) or an exact dense solve.
#include <cstdint>

#include "common/csr.hpp"

namespace cohortrec::cpu {

/// One ALS half-step: for every row u of C (rows x n_other, CSR), replace
/// X[u] (f floats, row-major, X has C.n_rows rows) by the solution of
///
///     (G + sum_i (c_ui - 1) y_i y_i^T) x = sum_{i: v_ui > 0} c_ui y_i
///
/// where y_i = Y[i] (Y is n_other x f, row-major), v_ui the stored value,
/// c_ui = |alpha * v_ui| (a negative value is a dislike: preference 0 with
/// confidence |alpha v|, as in implicit) and G = Y^T Y + regularization I
/// is given (f x f, full symmetric, row-major), plus extra[u] I where
/// extra is given (n_rows floats: a row's own regularisation is
/// regularization + extra[u], e.g. scaled by its frequency). Rows without
/// stored values get x = 0.
///
/// cg_steps > 0: that many conjugate-gradient steps starting from the
/// current X[u] (stops early once the squared residual is below 1e-20).
/// cg_steps == 0: exact solve (Cholesky in double; LU with partial pivoting
/// when the matrix is not positive definite; x = 0 if singular).
/// \brief Rows in parallel (dynamic blocks); the sparse part of the matrix
/// product is applied as y_i (c-1)(y_i . p) without ever forming the f x f
/// matrix; hot loops compiled for AVX-512 / AVX2 / generic and picked at
/// run time. Results do not depend on n_threads.
template <typename I>
void als_solve(const CsrView<float, I>& C, float alpha, const float* Y, int64_t f, const float* G, float* X,
               int cg_steps, int n_threads, const float* extra = nullptr);

/// Per-row terms of the weighted squared loss of an ALS model:
/// out[u] = x_u^T YtY x_u + sum_i [c_ui (p_ui - x_u . y_i)^2 - (x_u . y_i)^2]
/// (c, p as in als_solve; YtY = Y^T Y without regularisation), so that
/// sum(out) = sum over ALL (u, i) of c_ui (p_ui - x_u . y_i)^2 with c = 1,
/// p = 0 for the pairs not stored. Computed in double.
template <typename I>
void als_loss_rows(const CsrView<float, I>& C, float alpha, const float* X, const float* Y, int64_t f,
                   const double* YtY, double* out, int n_threads);

}  // namespace cohortrec::cpu
