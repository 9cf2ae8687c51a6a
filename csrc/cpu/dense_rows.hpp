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

}  // namespace cohortrec::cpu
