#pragma once
// Kernels of cohortrec.evaluation: which recommended items are held-out
// items (hits), and how often each item is recommended (coverage and mean
// popularity of the lists).
#include <cstdint>

namespace cohortrec::cpu {

/// hits[r, q] = 1 when recs[r, q] is an item stored in row rows[r] of the
/// test matrix (t_indptr, t_indices; n_items columns), else 0. Ids < 0 mark
/// empty slots (never hits); ids >= n_items throw std::out_of_range.
/// \brief Per thread one epoch-stamped marker per item: the test items of a
/// row are marked, its K recommended ids read, and the next row's epoch
/// invalidates the marks, so a row costs O(|test row| + K) and nothing is
/// cleared (no (user, item) key search).
template <typename J, typename I>
void ranking_hits(const J* recs, int64_t u, int64_t K, const int64_t* rows, const int64_t* t_indptr, int64_t t_rows,
                  const I* t_indices, int64_t n_items, uint8_t* hits, int n_threads);

/// Per-user hit statistics at the cut-offs ks[0] < ks[1] < ... (n_k of
/// them), without materialising the hits: for row r and cut-off c = ks[t]
/// (positions >= K are misses),
///   n_hits[t * u + r] = number of hits in positions [0, c),
///   dcg[t * u + r]    = sum of disc[q] over hit positions q < c,
///   ap[t * u + r]     = sum over hit positions q < c of (hits in [0, q]) / (q + 1),
/// the sums taken in increasing q from 0.0 (the same floating-point
/// operations as NumPy's bincount over the hits in row-major order). disc
/// holds at least min(ks[n_k - 1], K) discounts. Ids as in ranking_hits.
template <typename J, typename I>
void ranking_hit_stats(const J* recs, int64_t u, int64_t K, const int64_t* rows, const int64_t* t_indptr,
                       int64_t t_rows, const I* t_indices, int64_t n_items, const int64_t* ks, int64_t n_k,
                       const double* disc, double* n_hits, double* dcg, double* ap, int n_threads);

/// counts[b * n_items + i] = how often item i occurs in columns
/// [cuts[b], cuts[b + 1]) of the (u x K) recs, for b in [0, n_blocks).
/// Ids < 0 are not counted; ids >= n_items throw std::out_of_range. Per
/// thread partial counts, summed in a fixed order (integers: exact).
template <typename J>
void item_counts(const J* recs, int64_t u, int64_t K, const int64_t* cuts, int64_t n_blocks, int64_t n_items,
                 int64_t* counts, int n_threads);

}  // namespace cohortrec::cpu
