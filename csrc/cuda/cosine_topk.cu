// cosine_topk on the GPU: top-k cosine neighbours of the rows of a sparse A
// among the rows of a sparse B (B = A for a self-join).
//
// Same definition, and the same bits, as the CPU kernel
// (csrc/cpu/cosine_topk.cpp, built for x86-64 without FMA contraction):
//   inv(r)   = 1 / (mx * sqrt(sum_c (x[r,c] / mx)^2)) in float64, with
//              mx = max_c |x[r,c]| (LAPACK dnrm2's scaling: no overflow or
//              underflow), summed in column order; 0 for rows with mx = 0;
//   both sides are normalised before multiplying: a'_ic = T(a_ic * inv_a(i)),
//              b'_jc = T(b_jc * inv_b(j)) (products in float64, rounded to T);
//   s(i,j)   = sum over the shared columns c (a != 0, b != 0 as stored), in
//              A's column order, of a'_ic * b'_jc, each product and sum
//              rounded in T (so |products| <= 1 and s is the cosine);
// candidates of row i: the j sharing a nonzero column with it (j != i with
// exclude_self on a self-join), none at all when inv_a(i) = 0, kept when
// double(s) > threshold (strictly, compared in float64), the best k by
// (s desc, j asc).
//
// Steps: row norms; B^T by a counting-sort transpose (explicit zeros
// dropped, values normalised); the row-wise engine of sparse_rowwise.cuh
// over rows of A against rows of B^T, in memory-bounded batches; each
// batch's first min(k, count) candidates go to a staging area sized by the
// per-row bounds; at the end the staging area is compacted into the CSR
// result.
#include "cuda/api.hpp"
#include "cuda/common.cuh"
#include "cuda/primitives.cuh"
#include "cuda/sparse_rowwise.cuh"

namespace cohortrec::cuda {
namespace {

/// inv[r] = 1 / ||row r|| in float64 (0 for zero rows), scaled by the
/// row's largest magnitude first; every operation separately rounded in the
/// CPU's order (as its x86-64 build computes it).
template <typename T>
__global__ void inv_norms_kernel(const int64_t* __restrict__ ptr, const T* __restrict__ val, int64_t n,
                                 double* __restrict__ inv) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < n; r += stride) {
    const int64_t e0 = ptr[r], e1 = ptr[r + 1];
    double mx = 0.0;
    for (int64_t e = e0; e < e1; ++e) {
      const double a = fabs(static_cast<double>(val[e]));
      if (mx < a) mx = a;  // std::max(mx, a)
    }
    double s = 0.0;
    if (mx > 0.0)
      for (int64_t e = e0; e < e1; ++e) {
        const double v = __ddiv_rn(static_cast<double>(val[e]), mx);
        s = __dadd_rn(s, __dmul_rn(v, v));
      }
    inv[r] = mx > 0.0 ? __ddiv_rn(1.0, __dmul_rn(mx, __dsqrt_rn(s))) : 0.0;
  }
}

/// v / ||row|| rounded to T, as the CPU computes it: T(double(v) * inv).
template <typename T>
__device__ __forceinline__ T normalised(T v, double inv) {
  return static_cast<T>(__dmul_rn(static_cast<double>(v), inv));
}

/// cnt[c] += 1 for every stored nonzero of column c.
template <typename T>
__global__ void count_columns_kernel(const int32_t* __restrict__ idx, const T* __restrict__ val, int64_t nnz,
                                     unsigned long long* __restrict__ cnt) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < nnz; e += stride)
    if (val[e] != T(0)) atomicAdd(cnt + idx[e], 1ull);
}

/// Scatters the nonzeros of B, normalised by their row's inverse norm,
/// into B^T (one warp per row of B). The order of the rows within a column
/// of B^T is irrelevant to the results: within one column every row id
/// occurs once.
template <typename T>
__global__ void scatter_transpose_kernel(const int64_t* __restrict__ ptr, const int32_t* __restrict__ idx,
                                         const T* __restrict__ val, const double* __restrict__ inv, int64_t n_rows,
                                         unsigned long long* __restrict__ cursor, int32_t* __restrict__ t_idx,
                                         T* __restrict__ t_val) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; r < n_rows; r += warps) {
    for (int64_t e = ptr[r] + lane; e < ptr[r + 1]; e += 32) {
      const T v = val[e];
      if (v == T(0)) continue;
      const unsigned long long pos = atomicAdd(cursor + idx[e], 1ull);
      t_idx[pos] = static_cast<int32_t>(r);
      t_val[pos] = normalised(v, inv[r]);
    }
  }
}

template <typename T>
struct CosineOp {
  const double* inv_a;
  bool exclude_self;
  bool has_threshold;
  double threshold;

  __device__ bool skip_row(int64_t r) const { return inv_a[r] == 0.0; }
  __device__ int64_t extra_slots(int64_t) const { return 0; }
  __device__ void pre_insert(int64_t, int32_t*, int64_t) const {}
  __device__ T l_value(int64_t r, T a) const { return normalised(a, inv_a[r]); }
  __device__ bool skip_pair(int64_t r, int32_t j) const { return exclude_self && static_cast<int64_t>(j) == r; }
  __device__ bool keep(int64_t, int32_t, T dot, T& score) const {
    score = dot;  // the CPU's dot * T(1)
    return !has_threshold || static_cast<double>(score) > threshold;
  }
};

/// Copies the first min(k, cnt) sorted candidates of each batch row to its
/// staging slice (one warp per row).
template <typename T>
__global__ void cosine_emit_kernel(rowwise::Batch b, int64_t k, const int64_t* __restrict__ st_off,
                                   int32_t* __restrict__ st_id, T* __restrict__ st_val, int64_t* __restrict__ out_cnt) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t i = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; i < b.n_rows; i += warps) {
    const int64_t r = b.row_begin + i;
    const int64_t c = min(b.cnt[r], k);
    const int64_t src = b.seg_begin[i], dst = st_off[r];
    for (int64_t q = lane; q < c; q += 32) {
      st_id[dst + q] = b.id[src + q];
      st_val[dst + q] = ScoreKey<T>::decode(b.key[src + q]);
    }
    if (lane == 0) out_cnt[r] = c;
  }
}

/// Staging -> final CSR arrays (one warp per row).
template <typename T>
__global__ void compact_rows_kernel(int64_t n, const int64_t* __restrict__ st_off, const int32_t* __restrict__ st_id,
                                    const T* __restrict__ st_val, const int64_t* __restrict__ indptr,
                                    int32_t* __restrict__ out_id, T* __restrict__ out_val) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; r < n; r += warps) {
    const int64_t src = st_off[r], dst = indptr[r], c = indptr[r + 1] - indptr[r];
    for (int64_t q = lane; q < c; q += 32) {
      out_id[dst + q] = st_id[src + q];
      out_val[dst + q] = st_val[src + q];
    }
  }
}

template <typename T>
DeviceCsrResult cosine_impl(const DeviceCsr& A, const DeviceCsr* Bp, int64_t k, bool has_threshold, double threshold,
                            bool exclude_self, cudaStream_t stream) {
  const bool same = Bp == nullptr;
  const DeviceCsr& B = same ? A : *Bp;
  const int64_t n = A.n_rows, p = B.n_rows, m = A.n_cols;
  if (!same && B.n_cols != m) throw std::invalid_argument("A and B must have the same number of columns");
  if (k < 0) throw std::invalid_argument("k must be >= 0");
  if (n >= 0x7fffffffLL || p >= 0x7fffffffLL)
    throw std::invalid_argument("cosine_topk on the GPU needs fewer than 2**31 - 1 rows in A and in B");

  DeviceCsrResult res;
  res.n_rows = n;
  res.n_cols = p;
  res.indptr = device_alloc<int64_t>(n + 1, stream, Alloc::persistent);
  if (n == 0 || p == 0 || k == 0 || m == 0 || A.nnz == 0 || B.nnz == 0) {
    CHECK_CUDA(cudaMemsetAsync(res.indptr.get(), 0, (n + 1) * sizeof(int64_t), stream));
    CHECK_CUDA(cudaStreamSynchronize(stream));
    return res;
  }
  const T* a_val = static_cast<const T*>(A.data);
  const T* b_val = static_cast<const T*>(B.data);

  // Inverse row norms (float64).
  DeviceBuffer inv_a = device_alloc<double>(n, stream);
  inv_norms_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(A.indptr, a_val, n, inv_a.as<double>());
  CHECK_LAUNCH("inv_norms_kernel", stream);
  DeviceBuffer inv_b;
  if (!same) {
    inv_b = device_alloc<double>(p, stream);
    inv_norms_kernel<T><<<grid_for(p, 256), 256, 0, stream>>>(B.indptr, b_val, p, inv_b.as<double>());
    CHECK_LAUNCH("inv_norms_kernel", stream);
  }
  const double* inv_bp = same ? inv_a.as<double>() : inv_b.as<double>();

  // B^T (m x p), nonzeros only.
  DeviceBuffer col_cnt = device_alloc<int64_t>(m + 1, stream);
  CHECK_CUDA(cudaMemsetAsync(col_cnt.get(), 0, (m + 1) * sizeof(int64_t), stream));
  count_columns_kernel<T><<<grid_for(B.nnz, 256), 256, 0, stream>>>(
      B.indices, b_val, B.nnz, reinterpret_cast<unsigned long long*>(col_cnt.get()));
  CHECK_LAUNCH("count_columns_kernel", stream);
  DeviceBuffer bt_ptr = device_alloc<int64_t>(m + 1, stream);
  exclusive_sum_i64(col_cnt.as<int64_t>(), bt_ptr.as<int64_t>(), m + 1, stream);
  CHECK_CUDA(cudaMemcpyAsync(col_cnt.get(), bt_ptr.get(), (m + 1) * sizeof(int64_t), cudaMemcpyDeviceToDevice,
                             stream));  // col_cnt becomes the scatter cursor
  DeviceBuffer bt_idx = device_alloc<int32_t>(B.nnz, stream);
  DeviceBuffer bt_val = device_alloc<T>(B.nnz, stream);
  scatter_transpose_kernel<T><<<grid_for(p * 32, 256), 256, 0, stream>>>(
      B.indptr, B.indices, b_val, inv_bp, p, reinterpret_cast<unsigned long long*>(col_cnt.get()), bt_idx.as<int32_t>(),
      bt_val.as<T>());
  CHECK_LAUNCH("scatter_transpose_kernel", stream);
  col_cnt.release();

  rowwise::Problem<T> P;
  P.l_ptr = A.indptr;
  P.l_idx = A.indices;
  P.l_val = a_val;
  P.n_rows = n;
  P.m_ptr = bt_ptr.as<int64_t>();
  P.m_idx = bt_idx.as<int32_t>();
  P.m_val = bt_val.as<T>();
  P.width = p;

  CosineOp<T> op;
  op.inv_a = inv_a.as<double>();
  op.exclude_self = same && exclude_self;
  op.has_threshold = has_threshold;
  op.threshold = threshold;

  // Staging: row r may emit up to min(k, cap(r)) entries at st_off[r].
  DeviceBuffer st_off = device_alloc<int64_t>(n + 1, stream);
  DeviceBuffer st_id, st_val;
  DeviceBuffer out_cnt = device_alloc<int64_t>(n + 1, stream);
  CHECK_CUDA(cudaMemsetAsync(out_cnt.get(), 0, (n + 1) * sizeof(int64_t), stream));
  auto plan = [&](const std::vector<int64_t>& h_off) {
    std::vector<int64_t> h_st(static_cast<size_t>(n) + 1, 0);
    for (int64_t r = 0; r < n; ++r) h_st[r + 1] = h_st[r] + std::min<int64_t>(k, h_off[r + 1] - h_off[r]);
    CHECK_CUDA(cudaMemcpyAsync(st_off.get(), h_st.data(), (n + 1) * sizeof(int64_t), cudaMemcpyHostToDevice, stream));
    CHECK_CUDA(cudaStreamSynchronize(stream));  // h_st is about to go away
    st_id = device_alloc<int32_t>(std::max<int64_t>(h_st[n], 1), stream);
    st_val = device_alloc<T>(std::max<int64_t>(h_st[n], 1), stream);
  };
  auto emit = [&](const rowwise::Batch& b) {
    cosine_emit_kernel<T><<<grid_for(b.n_rows * 32, 256), 256, 0, stream>>>(
        b, k, st_off.as<int64_t>(), st_id.as<int32_t>(), st_val.as<T>(), out_cnt.as<int64_t>());
    CHECK_LAUNCH("cosine_emit_kernel", stream);
  };
  rowwise::run(P, op, k, plan, emit, stream);

  exclusive_sum_i64(out_cnt.as<int64_t>(), res.indptr.as<int64_t>(), n + 1, stream);
  int64_t nnz = 0;
  to_host(&nnz, res.indptr.as<int64_t>() + n, sizeof(int64_t), stream);
  res.nnz = nnz;
  res.indices = device_alloc<int32_t>(nnz, stream, Alloc::persistent);
  res.data = device_alloc<T>(nnz, stream, Alloc::persistent);
  if (nnz > 0) {
    compact_rows_kernel<T><<<grid_for(n * 32, 256), 256, 0, stream>>>(n, st_off.as<int64_t>(), st_id.as<int32_t>(),
                                                                      st_val.as<T>(), res.indptr.as<int64_t>(),
                                                                      res.indices.as<int32_t>(), res.data.as<T>());
    CHECK_LAUNCH("compact_rows_kernel", stream);
  }
  CHECK_CUDA(cudaStreamSynchronize(stream));
  return res;
}

}  // namespace

DeviceCsrResult cosine_topk(Dtype dtype, const DeviceCsr& A, const DeviceCsr* B, int64_t k, bool has_threshold,
                            double threshold, bool exclude_self, cudaStream_t stream) {
  if (dtype == Dtype::f32) return cosine_impl<float>(A, B, k, has_threshold, threshold, exclude_self, stream);
  return cosine_impl<double>(A, B, k, has_threshold, threshold, exclude_self, stream);
}

}  // namespace cohortrec::cuda
