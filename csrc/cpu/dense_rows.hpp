#pragma once
// out[0:len] = sum_h coef[h] * rows[h][0:len]: a short linear combination of
// dense rows, the dense half of the hybrid sparse/dense cosine_topk (the
// popular columns of a user x item matrix, stored densely).
#include <cstdint>

namespace cohortrec::cpu {

/// Requirements: `len` is a multiple of kDenseRowsStrip; `out` and every
/// rows[h] are 64-byte aligned. With n == 0, out is zero-filled. Picks the
/// widest instruction set the CPU supports (see active_isa()).
constexpr int64_t kDenseRowsStrip = 128;

void dense_rows_combine(float* out, int64_t len, const float* const* rows, const float* coef, int64_t n);
void dense_rows_combine(double* out, int64_t len, const double* const* rows, const double* coef, int64_t n);

/// As dense_rows_combine (the same bits) for any `len` and any alignment:
/// the scoring of a user against dense model rows (EASE's B, ALS's factors).
void dense_rows_combine_any(float* out, int64_t len, const float* const* rows, const float* coef, int64_t n);

/// outs[u][0:len] = sum_h coef[u * n + h] * rows[h][0:len] for nu users
/// sharing the rows (factor models), any length and alignment; each user's
/// sums are those of dense_rows_combine_any with every coefficient kept.
void dense_rows_combine_shared(float* const* outs, int64_t nu, int64_t len, const float* const* rows, const float* coef,
                               int64_t n);

}  // namespace cohortrec::cpu
