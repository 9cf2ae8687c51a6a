#pragma once
#include <cstdint>
#include <string>

#include "common/csr.hpp"

namespace cohortrec::cpu {

/// Dense input: X[i, t] lives at X[i * row_stride + t * col_stride] (C or F
/// order without a copy). Centres are C-contiguous (k x d).
template <typename T>
struct DenseMatrix {
  const T* data = nullptr;
  int64_t n_rows = 0, n_cols = 0, row_stride = 0, col_stride = 1;
};

/// labels[i] = argmin_j ||x_i - c_j||^2 (ties to the smaller j) and
/// sq_dist[i] = max(0, ||x_i||^2 - 2 x_i.c_j + ||c_j||^2).
/// \brief Blocked register-tiled X.C^T (a GEMM micro-kernel in the style of
/// Goto & van de Geijn 2008, "Anatomy of high-performance matrix
/// multiplication") fused with a lane-wise running argmin, so the n x k
/// distance matrix never exists. Picks the widest ISA the CPU supports.
template <typename T>
void kmeans_assign_dense(const DenseMatrix<T>& X, const T* centers, int64_t k, int64_t* labels, T* sq_dist,
                         int n_threads);

/// Same for CSR X: per row, acc = sum over nonzeros of x_t * C^T[t, :].
template <typename T, typename I>
void kmeans_assign_csr(const CsrView<T, I>& X, const T* centers, int64_t k, int64_t* labels, T* sq_dist, int n_threads);

/// Name of the instruction set the kernels use ("avx512", "avx2", "generic").
std::string active_isa();
/// Forces an instruction set (for tests and benchmarks); "auto" restores
/// detection. Throws std::invalid_argument when the CPU lacks it.
void set_isa(const std::string& name);

}  // namespace cohortrec::cpu
