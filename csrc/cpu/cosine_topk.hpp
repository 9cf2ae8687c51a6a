#pragma once
#include <cstdint>

#include "common/csr.hpp"

namespace cohortrec::cpu {

struct CosineTopkParams {
  int64_t k = 50;
  bool has_threshold = false;
  double threshold = 0.0;
  bool exclude_self = false;  // only meaningful when A and B are the same matrix
  int n_threads = 1;
  // Hybrid sparse/dense product for nonnegative data: columns of B with at
  // least this share of nonzero rows are multiplied densely. < 0: chosen
  // from a cost model (and only used when it pays); > 1: never (pure sparse).
  // Values above 1.5 also turn off the sparse path's scan of the dense
  // accumulator for positive data (tests reach every path this way).
  double dense_min_density = -1.0;
};

/// Top-k cosine neighbours of each row of A among the rows of B.
/// \brief Gustavson row-by-row product of A with B^T (built here by a
/// counting-sort transpose), a dense epoch-marked accumulator per thread and
/// bounded top-k selection; O(threads * p + nnz(B) + output) memory.
/// For nonnegative data whose popular columns dominate the work, those
/// columns are multiplied as dense rows instead (see cosine_topk.cpp).
template <typename T, typename I, typename J>
CsrResult<T, J> cosine_topk(const CsrView<T, I>& A, const CsrView<T, I>& B, const CosineTopkParams& params);

}  // namespace cohortrec::cpu
