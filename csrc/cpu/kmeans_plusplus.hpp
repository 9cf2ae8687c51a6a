#pragma once
#include <cstdint>

#include "cpu/kmeans_assign.hpp"

namespace cohortrec::cpu {

/// One k-means++ step's two passes over a dense X (float64 distances from
/// differences; results independent of the thread count):
///
/// kmeanspp_update: closest[i] = min(closest[i], ||x_i - c||^2) for the new
/// centre c (d values), and cum = prefix sums of w * closest (w = 1 when null),
/// the distribution the next candidates are drawn from.
template <typename T>
void kmeanspp_update(const DenseMatrix<T>& X, const double* c, double* closest, const T* weights, double* cum,
                     int n_threads);

/// kmeanspp_trials: pot[t] = sum_i w_i min(closest_i, ||x_i - cand_t||^2) for
/// the m candidates (m x d, row-major): the potential each would leave.
template <typename T>
void kmeanspp_trials(const DenseMatrix<T>& X, const double* cand, int64_t m, const double* closest, const T* weights,
                     double* pot, int n_threads);

}  // namespace cohortrec::cpu
