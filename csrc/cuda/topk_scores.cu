// topk_scores on the GPU: the best n items of every row of the sparse
// product W @ R, minus the items stored in the same row of `exclude`.
//
// Same definition, and the same bits, as the CPU kernel
// (csrc/cpu/topk_scores.cpp): score(u, i) = sum over the stored w_uj != 0 in
// column order of w_uj * r_ji (R's explicit zeros are not candidates), each
// product and sum rounded in T; candidates are the items reached through a
// stored nonzero, minus the excluded ones; the best n by (score desc, item
// asc), padded with -1 / -inf.
//
// The row-wise engine (sparse_rowwise.cuh) does the work; excluded items
// are pre-inserted into each row's hash table with a marker bit, so they
// absorb their terms and never become candidates (any order of E's column
// ids, duplicates included, is fine).
#include "cuda/api.hpp"
#include "cuda/common.cuh"
#include "cuda/sparse_rowwise.cuh"

namespace cohortrec::cuda {
namespace {

template <typename T>
struct TopkOp {
  const int64_t* e_ptr;  // may be null: no exclusion
  const int32_t* e_idx;

  __device__ bool skip_row(int64_t) const { return false; }
  __device__ int64_t extra_slots(int64_t r) const { return e_ptr ? e_ptr[r + 1] - e_ptr[r] : 0; }
  __device__ void pre_insert(int64_t r, int32_t* keys, int64_t tsize) const {
    if (!e_ptr) return;
    const int64_t e1 = e_ptr[r + 1];
    for (int64_t e = e_ptr[r] + threadIdx.x; e < e1; e += blockDim.x) rowwise::table_exclude(keys, tsize, e_idx[e]);
  }
  __device__ T l_value(int64_t, T a) const { return a; }
  __device__ bool skip_pair(int64_t, int32_t) const { return false; }
  __device__ bool keep(int64_t, int32_t, T acc, T& score) const {
    score = acc;
    return true;
  }
};

/// Writes each batch row's (items, scores) row: the first min(n, cnt)
/// sorted candidates, then -1 / -inf (one warp per row).
template <typename T>
__global__ void topk_emit_kernel(rowwise::Batch b, int64_t n, const int64_t* __restrict__ item_map,
                                 int64_t* __restrict__ items, T* __restrict__ scores) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t i = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; i < b.n_rows; i += warps) {
    const int64_t r = b.row_begin + i;
    const int64_t c = min(b.cnt[r], n);
    const int64_t src = b.seg_begin[i];
    int64_t* it = items + r * n;
    T* sc = scores + r * n;
    for (int64_t q = lane; q < n; q += 32) {
      if (q < c) {
        const int64_t j = b.id[src + q];
        it[q] = item_map ? item_map[j] : j;
        sc[q] = ScoreKey<T>::decode(b.key[src + q]);
      } else {
        it[q] = -1;
        sc[q] = neg_inf<T>();
      }
    }
  }
}

template <typename T>
__global__ void fill_padding_kernel(int64_t total, int64_t* __restrict__ items, T* __restrict__ scores) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < total; q += stride) {
    items[q] = -1;
    scores[q] = neg_inf<T>();
  }
}

template <typename T>
void topk_impl(const DeviceCsr& W, const DeviceCsr& R, const int64_t* e_ptr, const int32_t* e_idx, int64_t n,
               const int64_t* item_map, int64_t* items, T* scores, cudaStream_t stream) {
  if (W.n_cols != R.n_rows) throw std::invalid_argument("W.shape[1] must equal R.shape[0]");
  if (n < 0) throw std::invalid_argument("n must be >= 0");
  const int64_t u = W.n_rows, m = R.n_cols;
  if (u == 0 || n == 0) return;
  if (u >= 0x7fffffffLL) throw std::invalid_argument("topk_scores on the GPU needs fewer than 2**31 - 1 rows in W");
  if (m == 0 || W.nnz == 0 || R.nnz == 0) {
    fill_padding_kernel<T><<<grid_for(u * n, 256), 256, 0, stream>>>(u * n, items, scores);
    CHECK_LAUNCH("fill_padding_kernel", stream);
    CHECK_CUDA(cudaStreamSynchronize(stream));
    return;
  }
  rowwise::Problem<T> P;
  P.l_ptr = W.indptr;
  P.l_idx = W.indices;
  P.l_val = static_cast<const T*>(W.data);
  P.n_rows = u;
  P.m_ptr = R.indptr;
  P.m_idx = R.indices;
  P.m_val = static_cast<const T*>(R.data);
  P.width = m;
  TopkOp<T> op{e_ptr, e_idx};
  auto plan = [](const std::vector<int64_t>&) {};
  auto emit = [&](const rowwise::Batch& b) {
    topk_emit_kernel<T><<<grid_for(b.n_rows * 32, 256), 256, 0, stream>>>(b, n, item_map, items, scores);
    CHECK_LAUNCH("topk_emit_kernel", stream);
  };
  rowwise::run(P, op, n, plan, emit, stream);
  CHECK_CUDA(cudaStreamSynchronize(stream));
}

}  // namespace

void topk_scores(Dtype dtype, const DeviceCsr& W, const DeviceCsr& R, const int64_t* e_indptr, const int32_t* e_indices,
                 int64_t n, const int64_t* item_map, int64_t* items, void* scores, cudaStream_t stream) {
  if (dtype == Dtype::f32)
    topk_impl<float>(W, R, e_indptr, e_indices, n, item_map, items, static_cast<float*>(scores), stream);
  else
    topk_impl<double>(W, R, e_indptr, e_indices, n, item_map, items, static_cast<double*>(scores), stream);
}

}  // namespace cohortrec::cuda
