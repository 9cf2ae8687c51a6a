#pragma once
#include <cstdint>

#include "cpu/kmeans_assign.hpp"

namespace cohortrec::cpu {

/// Per-point state of the bounded assignment, owned by the caller and kept
/// between iterations (n points, t centre groups).
struct YinyangArgs {
  const double* x_sq = nullptr;    ///< (n) ||x_i||^2, fixed during the fit
  const double* shift = nullptr;   ///< (k) how far each centre moved; null = first pass
  const double* s_half = nullptr;  ///< (k) half the distance to the nearest other centre; may be null
  int64_t* labels = nullptr;       ///< (n) current centre of every point
  double* upper = nullptr;         ///< (n) upper bound on d(x_i, c_{labels_i})
  double* lower = nullptr;         ///< (n) lower bound on min_{j != labels_i} d(x_i, c_j)
  float* group_lower = nullptr;    ///< (n, t) per group, lower bound + dcum[g] when stored
  double* dcum = nullptr;          ///< (t) cumulative largest shift per group
  double* sums = nullptr;          ///< (k, d) cluster sums kept in step with labels; may be null
  double* counts = nullptr;        ///< (k) cluster weights, with sums
  int64_t* members = nullptr;      ///< (k) points per cluster, with sums (exact emptiness)
  bool rebuild_sums = false;       ///< recompute sums from all points (always on the first pass)
};

/// One bounded assignment pass (Ding et al. 2015, "Yinyang K-means", global
/// and group filters, with Hamerly's inter-centre test). The centres are
/// split into `t` groups of one SIMD vector each (`slots[g * lanes + l]` is
/// the centre in lane l of group g, -1 for padding; see kmeans_group_lanes).
///
/// A point keeps its label without any distance computed when its upper
/// bound (loosened by its centre's shift) stays below max(global lower bound,
/// s_half[label]). Otherwise the distances to the centres of the groups
/// whose lower bound is below the upper bound (and of the own group) are
/// computed with the arithmetic of kmeans_assign_dense, and the bounds carry
/// a rounding margin, so the labels are those of plain Lloyd. Group bounds
/// are stored lazily (value + cumulative drift), so a pass touches only the
/// points that fail the global filter. When `sums` is given, the points that
/// changed cluster are moved between the sums in increasing point order (or,
/// on the first pass and with `rebuild_sums`, all points are summed), so the
/// result is the same for any thread count.
///
/// Returns the number of points whose label changed; `n_distances` gets the
/// number of point-centre distances computed.
template <typename T>
int64_t kmeans_assign_bounded(const DenseMatrix<T>& X, const T* centers, int64_t k, const int64_t* slots,
                              int64_t n_groups, const YinyangArgs& args, const T* weights, int64_t* n_distances,
                              int n_threads);

/// Centres per group (the SIMD lane count of the active instruction set).
int kmeans_group_lanes(int item_size);

}  // namespace cohortrec::cpu
