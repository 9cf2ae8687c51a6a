// k-means++ seeding passes: dispatch to the ISA-specific kernels
// (kmeans_assign_isa.inc, kmeanspp_update_impl / kmeanspp_trials_impl).
#include "cpu/kmeans_plusplus.hpp"

#include <stdexcept>

#include "cpu/kmeans_assign_isa.hpp"

namespace cohortrec::cpu {

int isa_level();

template <typename T>
void kmeanspp_update(const DenseMatrix<T>& X, const double* c, double* closest, const T* w, double* cum,
                     int n_threads) {
  if (X.n_rows > 0 && X.n_cols > 1 && X.col_stride != 1) throw std::invalid_argument("X must be C-contiguous");
  switch (isa_level()) {
    case 2: return isa_avx512::kmeanspp_update(X, c, closest, w, cum, n_threads);
    case 1: return isa_avx2::kmeanspp_update(X, c, closest, w, cum, n_threads);
    default: return isa_generic::kmeanspp_update(X, c, closest, w, cum, n_threads);
  }
}

template <typename T>
void kmeanspp_trials(const DenseMatrix<T>& X, const double* cand, int64_t m, const double* closest, const T* w,
                     double* pot, int n_threads) {
  if (X.n_rows > 0 && X.n_cols > 1 && X.col_stride != 1) throw std::invalid_argument("X must be C-contiguous");
  if (m < 0) throw std::invalid_argument("negative number of candidates");
  switch (isa_level()) {
    case 2: return isa_avx512::kmeanspp_trials(X, cand, m, closest, w, pot, n_threads);
    case 1: return isa_avx2::kmeanspp_trials(X, cand, m, closest, w, pot, n_threads);
    default: return isa_generic::kmeanspp_trials(X, cand, m, closest, w, pot, n_threads);
  }
}

template void kmeanspp_update<float>(const DenseMatrix<float>&, const double*, double*, const float*, double*, int);
template void kmeanspp_update<double>(const DenseMatrix<double>&, const double*, double*, const double*, double*,
                                      int);
template void kmeanspp_trials<float>(const DenseMatrix<float>&, const double*, int64_t, const double*, const float*,
                                     double*, int);
template void kmeanspp_trials<double>(const DenseMatrix<double>&, const double*, int64_t, const double*,
                                      const double*, double*, int);

}  // namespace cohortrec::cpu
