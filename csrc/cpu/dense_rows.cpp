#include "cpu/dense_rows.hpp"

#include "cpu/isa_dispatch.hpp"

namespace cohortrec::cpu {

#define COHORTREC_DECLARE(NS)                                                                                       \
  namespace NS {                                                                                                    \
  void dense_rows_combine_f32(float* out, int64_t len, const float* const* rows, const float* coef, int64_t n);     \
  void dense_rows_combine_f64(double* out, int64_t len, const double* const* rows, const double* coef, int64_t n);  \
  void dense_rows_combine_any_f32(float* out, int64_t len, const float* const* rows, const float* coef, int64_t n); \
  void dense_rows_combine_shared_f32(float* const* outs, int64_t nu, int64_t len, const float* const* rows,         \
                                     const float* coef, int64_t n);                                                 \
  }
COHORTREC_DECLARE(isa_generic)
COHORTREC_DECLARE(isa_avx2)
COHORTREC_DECLARE(isa_avx512)
#undef COHORTREC_DECLARE

void dense_rows_combine(float* out, int64_t len, const float* const* rows, const float* coef, int64_t n) {
  COHORTREC_ISA_DISPATCH(isa::dense_rows_combine_f32(out, len, rows, coef, n));
}

void dense_rows_combine(double* out, int64_t len, const double* const* rows, const double* coef, int64_t n) {
  COHORTREC_ISA_DISPATCH(isa::dense_rows_combine_f64(out, len, rows, coef, n));
}

void dense_rows_combine_any(float* out, int64_t len, const float* const* rows, const float* coef, int64_t n) {
  COHORTREC_ISA_DISPATCH(isa::dense_rows_combine_any_f32(out, len, rows, coef, n));
}

void dense_rows_combine_shared(float* const* outs, int64_t nu, int64_t len, const float* const* rows, const float* coef,
                               int64_t n) {
  COHORTREC_ISA_DISPATCH(isa::dense_rows_combine_shared_f32(outs, nu, len, rows, coef, n));
}

}  // namespace cohortrec::cpu
