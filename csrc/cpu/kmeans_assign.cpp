#include "cpu/kmeans_assign.hpp"

#include <stdexcept>

#include "cpu/isa_dispatch.hpp"
#include "cpu/kmeans_assign_isa.hpp"

namespace cohortrec::cpu {

template <typename T>
void kmeans_assign_dense(const DenseMatrix<T>& X, const T* centers, int64_t k, int64_t* labels, T* sq_dist,
                         int n_threads) {
  if (k < 1) throw std::invalid_argument("centers must hold at least one centre");
  COHORTREC_ISA_DISPATCH(isa::assign_dense(X, centers, k, labels, sq_dist, n_threads));
}

template <typename T, typename I>
void kmeans_assign_csr(const CsrView<T, I>& X, const T* centers, int64_t k, int64_t* labels, T* sq_dist,
                       int n_threads) {
  if (k < 1) throw std::invalid_argument("centers must hold at least one centre");
  COHORTREC_ISA_DISPATCH(isa::assign_csr(X, centers, k, labels, sq_dist, n_threads));
}

template void kmeans_assign_dense<float>(const DenseMatrix<float>&, const float*, int64_t, int64_t*, float*, int);
template void kmeans_assign_dense<double>(const DenseMatrix<double>&, const double*, int64_t, int64_t*, double*, int);
template void kmeans_assign_csr<float, int32_t>(const CsrView<float, int32_t>&, const float*, int64_t, int64_t*, float*,
                                                int);
template void kmeans_assign_csr<float, int64_t>(const CsrView<float, int64_t>&, const float*, int64_t, int64_t*, float*,
                                                int);
template void kmeans_assign_csr<double, int32_t>(const CsrView<double, int32_t>&, const double*, int64_t, int64_t*,
                                                 double*, int);
template void kmeans_assign_csr<double, int64_t>(const CsrView<double, int64_t>&, const double*, int64_t, int64_t*,
                                                 double*, int);

}  // namespace cohortrec::cpu
