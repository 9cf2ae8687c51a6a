#pragma once
#include <cstdint>

#include "common/csr.hpp"
#include "cpu/kmeans_assign.hpp"

namespace cohortrec::cpu {

/// sums[c] = sum_{i: labels[i] == c} w_i x_i and counts[c] = sum w_i
/// (w_i = 1 when `weights` is null), written as (k x d) and (k,) arrays.
/// \brief Deterministic reduction. For small k * d, rows are streamed in
/// order into per-chunk float64 partials; otherwise a segmented reduction: a stable counting sort groups
/// the rows by label, each cluster's rows are cut into fixed-size segments
/// summed in float64, and each cluster adds its segments in order. Segment
/// boundaries depend only on the data, so the result is bit-identical for
/// any thread count (no order-dependent atomics).
template <typename T>
void kmeans_update_dense(const DenseMatrix<T>& X, const int64_t* labels, int64_t k, const T* weights, T* sums,
                         T* counts, int n_threads);

/// One Lloyd iteration in a single pass over X: kmeans_assign_dense then
/// kmeans_update_dense, with each fixed-size chunk of rows assigned and summed
/// by the same thread while it is in cache (X is read once, not twice). The
/// outputs are bit-identical to the two separate calls, for any thread count.
template <typename T>
void kmeans_step_dense(const DenseMatrix<T>& X, const T* centers, int64_t k, const T* weights, int64_t* labels,
                       T* sq_dist, T* sums, T* counts, int n_threads);

template <typename T, typename I>
void kmeans_update_csr(const CsrView<T, I>& X, const int64_t* labels, int64_t k, const T* weights, T* sums, T* counts,
                       int n_threads);

}  // namespace cohortrec::cpu
