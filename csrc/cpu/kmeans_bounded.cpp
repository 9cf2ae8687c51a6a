// Bounded K-means assignment: dispatch to the ISA-specific kernel
// (kmeans_bounded_isa.inc, yinyang_impl).
#include "cpu/kmeans_bounded.hpp"

#include <stdexcept>

#include "cpu/isa_dispatch.hpp"
#include "cpu/kmeans_assign_isa.hpp"

namespace cohortrec::cpu {

int kmeans_group_lanes(int item_size) {
  if (item_size != 4 && item_size != 8) throw std::invalid_argument("item_size must be 4 or 8");
  COHORTREC_ISA_DISPATCH(isa::vector_lanes(item_size));
}

template <typename T>
int64_t kmeans_assign_bounded(const DenseMatrix<T>& X, const T* C, int64_t k, const int64_t* slots, int64_t n_groups,
                              const YinyangArgs& a, const T* weights, int64_t* n_distances, int n_threads) {
  if (k < 1) throw std::invalid_argument("centers must hold at least one centre");
  if (X.n_rows > 0 && X.n_cols > 1 && X.col_stride != 1) throw std::invalid_argument("X must be C-contiguous");
  if (n_groups < 1) throw std::invalid_argument("n_groups must be >= 1");
  COHORTREC_ISA_DISPATCH(isa::yinyang_dense(X, C, k, slots, n_groups, a, weights, n_distances, n_threads));
}

template int64_t kmeans_assign_bounded<float>(const DenseMatrix<float>&, const float*, int64_t, const int64_t*, int64_t,
                                              const YinyangArgs&, const float*, int64_t*, int);
template int64_t kmeans_assign_bounded<double>(const DenseMatrix<double>&, const double*, int64_t, const int64_t*,
                                               int64_t, const YinyangArgs&, const double*, int64_t*, int);

}  // namespace cohortrec::cpu
