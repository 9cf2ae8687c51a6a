// k-means++ seeding passes: dispatch to the ISA-specific kernels
// (kmeans_plusplus_isa.inc, kmeanspp_update_impl / kmeanspp_trials_impl).
#include "cpu/kmeans_plusplus.hpp"

#include <stdexcept>

#include "cpu/isa_dispatch.hpp"
#include "cpu/kmeans_assign_isa.hpp"

namespace cohortrec::cpu {

template <typename T>
void kmeanspp_update(const DenseMatrix<T>& X, const double* c, double* closest, const T* w, double* cum,
                     int n_threads) {
  if (X.n_rows > 0 && X.n_cols > 1 && X.col_stride != 1) throw std::invalid_argument("X must be C-contiguous");
  COHORTREC_ISA_DISPATCH(isa::kmeanspp_update(X, c, closest, w, cum, n_threads));
}

template <typename T>
void kmeanspp_trials(const DenseMatrix<T>& X, const double* cand, int64_t m, const double* closest, const T* w,
                     double* pot, int n_threads) {
  if (X.n_rows > 0 && X.n_cols > 1 && X.col_stride != 1) throw std::invalid_argument("X must be C-contiguous");
  if (m < 0) throw std::invalid_argument("negative number of candidates");
  COHORTREC_ISA_DISPATCH(isa::kmeanspp_trials(X, cand, m, closest, w, pot, n_threads));
}

template void kmeanspp_update<float>(const DenseMatrix<float>&, const double*, double*, const float*, double*, int);
template void kmeanspp_update<double>(const DenseMatrix<double>&, const double*, double*, const double*, double*, int);
template void kmeanspp_trials<float>(const DenseMatrix<float>&, const double*, int64_t, const double*, const float*,
                                     double*, int);
template void kmeanspp_trials<double>(const DenseMatrix<double>&, const double*, int64_t, const double*, const double*,
                                      double*, int);

}  // namespace cohortrec::cpu
