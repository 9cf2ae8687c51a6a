#pragma once
// Entry points of the CUDA kernels, at the level of device pointers.
//
// Plain C++ (included by the pybind11 binding). Every function:
//  * reads and writes device memory only (the binding copies host arrays),
//  * runs on `stream` of the current device (the binding sets the device),
//  * computes in `dtype` (float32 or float64; values are `const void*`),
//  * expects validated input: canonical CSR (sorted, unique column ids per
//    row, int64 indptr, int32 column ids), finite values, labels in range.
//    The Python layer (cohortrec.ops) checks all of that first.
// Results are identical from run to run (no order-dependent float atomics).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/memory.hpp"

namespace cohortrec::cuda {

enum class Dtype { f32, f64 };
enum class Precision { fp32, tf32, bf16 };

/// A CSR matrix in device memory. `data` may be null for a pattern-only
/// matrix (the exclusion matrix of topk_scores).
struct DeviceCsr {
  const int64_t* indptr = nullptr;   // n_rows + 1
  const int32_t* indices = nullptr;  // nnz, column ids in [0, n_cols)
  const void* data = nullptr;        // nnz values of the op's dtype
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  int64_t nnz = 0;
};

/// Result of cosine_topk, a CSR matrix owned by persistent device buffers.
struct DeviceCsrResult {
  DeviceBuffer indptr;   // int64, n_rows + 1
  DeviceBuffer indices;  // int32, nnz
  DeviceBuffer data;     // dtype, nnz
  int64_t n_rows = 0, n_cols = 0, nnz = 0;
};

/// Top-k cosine neighbours of each row of A among the rows of B (B == null:
/// A itself, where exclude_self drops the diagonal). Same semantics, and the
/// same bits, as cohortrec::cpu::cosine_topk on x86-64.
DeviceCsrResult cosine_topk(Dtype dtype, const DeviceCsr& A, const DeviceCsr* B, int64_t k, bool has_threshold,
                            double threshold, bool exclude_self, cudaStream_t stream);

/// Top-n of W @ R per row, excluding the items stored in row u of E
/// (`e_indptr == null`: no exclusion; E's column ids need not be sorted).
/// Writes (u x n) row-major `items` (int64; -1 padding) and `scores`
/// (dtype; -inf padding). `item_map` (may be null) maps the compressed item
/// ids of R back to the caller's ids.
void topk_scores(Dtype dtype, const DeviceCsr& W, const DeviceCsr& R, const int64_t* e_indptr, const int32_t* e_indices,
                 int64_t n, const int64_t* item_map, int64_t* items, void* scores, cudaStream_t stream);

/// Nearest centre of each row of the row-major (n x d) X among the row-major
/// (k x d) centres; writes labels (int64) and squared distances (dtype).
/// Returns false (outputs unspecified) when a row of X is not finite.
/// `precision` tf32/bf16 lets float32 inputs use tensor cores.
bool kmeans_assign_dense(Dtype dtype, const void* X, int64_t n, int64_t d, const void* centers, int64_t k,
                         int64_t* labels, void* sq_dist, Precision precision, cudaStream_t stream);
bool kmeans_assign_csr(Dtype dtype, const DeviceCsr& X, const void* centers, int64_t k, int64_t* labels, void* sq_dist,
                       cudaStream_t stream);

/// Per-cluster weighted sums (k x d, row-major) and weights (k) of the rows
/// of X, accumulated in float64 in a fixed order. `weights` may be null (1).
void kmeans_update_dense(Dtype dtype, const void* X, int64_t n, int64_t d, const int64_t* labels, int64_t k,
                         const void* weights, void* sums, void* counts, cudaStream_t stream);
void kmeans_update_csr(Dtype dtype, const DeviceCsr& X, const int64_t* labels, int64_t k, const void* weights,
                       void* sums, void* counts, cudaStream_t stream);

}  // namespace cohortrec::cuda
