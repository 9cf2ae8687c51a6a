#pragma once
#include <cstdint>

#include "common/csr.hpp"

namespace cohortrec::cpu {

/// For each row u of W: scores = W[u, :] @ R (sparse j x m), items stored in
/// row u of `exclude` removed, the best n kept (score desc, id asc).
/// \brief Gustavson row-by-row product with a per-thread dense accumulator
/// over the m items, fused with the exclusion mask and bounded top-n
/// selection, so the u x m score matrix never exists.
/// Writes into caller-provided (u x n) arrays, pre-filled with -1 / -inf.
template <typename T, typename I>
void topk_scores(const CsrView<T, I>& W, const CsrView<T, I>& R, const CsrView<T, I>* exclude, int64_t n,
                 int64_t* items, T* scores, int n_threads);

/// For each row r of `exclude` (u x m): the first n items of the global
/// ranking `order` (n_order distinct ids in [0, m), best first) that are not
/// stored in row r, written to items[r * n ...] (pre-filled with -1 where
/// fewer remain). The top-n of a score that is the same for every user
/// (popularity), with each user's own items skipped.
/// \brief Per thread one epoch-stamped marker per item: a row costs
/// O(|exclude row| + n + skipped items), not O(m).
template <typename I>
void ranked_topn(const int64_t* order, int64_t n_order, const CsrView<float, I>& exclude, int64_t n, int64_t* items,
                 int n_threads);

/// ranked_topn for one request: the first n ids of `order` (in [0, m)) that
/// are not among the row's `n_excl` ids `excl` (sorted ascending), with
/// scores[q] = score_of[items[q]]; returns how many were written.
/// \brief Binary search in the row instead of ranked_topn's per-item
/// markers: no O(m) scratch per call, O((n + skipped) log |row|).
template <typename I>
int64_t ranked_topn_row(const int64_t* order, int64_t n_order, int64_t m, const I* excl, int64_t n_excl,
                        const float* score_of, int64_t n, int64_t* items, float* scores);

/// Best n finite entries of every row of a dense (u x m) float matrix
/// (row r at scores + r * row_stride), skipping columns where keep[j] == 0
/// (keep may be null) and the entries stored in row r of `exclude` (may be
/// null), ordered by score descending, then id ascending. Writes into
/// caller-provided (u x n) arrays pre-filled with -1 / -inf.
/// \brief One pass per row: candidates at or above the running floor are
/// buffered as packed keys; a full buffer is cut to the best n (radix
/// select), which raises the floor, so a row costs O(m) compares plus
/// O(n) per compaction.
template <typename I>
void dense_topn(const float* scores, int64_t u, int64_t m, int64_t row_stride, const uint8_t* keep,
                const CsrView<float, I>* exclude, int64_t n, int64_t* items, float* out, int n_threads);

/// Neighbour lists after some rows changed (the online updates of the kNN
/// models): row r of the result is row replace[r] of `R` when replace[r] >= 0
/// (a list searched anew), else the best k entries of old row r together with
/// row r of `add` (candidates found among the changed rows; no column in
/// both), by score descending then column ascending; a row with nothing to
/// add is copied as it is. Merged rows come out sorted by column when
/// sort_cols, else best first; non-finite candidates are dropped.
/// \brief Two passes over the rows (lengths and merges, then fill), each in
/// parallel: O(nnz(old) + nnz(R) + nnz(add)) copies and one nth_element per
/// merged row (kept per task between the passes).
template <typename I>
CsrResult<float, I> merge_topk_rows(const CsrView<float, I>& old, const int64_t* replace, const CsrView<float, I>& R,
                                    const CsrView<float, I>& add, int64_t k, bool sort_cols, int n_threads);

}  // namespace cohortrec::cpu
