// K-means assignment and update steps on the GPU.
//
// kmeans_assign (dense X): dist(i, j) = ||c_j||^2 - 2 x_i.c_j, minimised over
// j, with ||x_i||^2 added at the end and the result clipped at 0 (the CPU
// kernel's formula; ||c||^2 summed in float64 and rounded to T, ||x||^2 in
// float64). The products x_i.c_j come from a tiled GEMM (shared-memory tiles,
// a TM x TN register tile per thread: the classic SGEMM blocking of Volkov &
// Demmel 2008 and CUTLASS) that is fused with the argmin: a block owns BM rows
// and walks all centres in tiles of BN, keeping a running (dist, index) per
// row in registers, so no n x k matrix is ever stored. Each dot product is
// accumulated in one fixed order (a single thread, d ascending), so equal
// centres give equal distances, and ties go to the smaller index. Optional
// tensor-core variants for float32 input (precision="tf32" | "bf16") use
// WMMA 16x16 tiles with float accumulators. They first subtract a common
// shift s = mean of the centres from X and C (distances do not change): the
// rounding of the inputs to TF32/BF16 perturbs x.c by about u ||x|| ||c||
// (u = 2^-11 / 2^-8), which on uncentred data (||x||, ||c|| >> the distances
// between centres) would swamp the differences the argmin has to see; after
// the shift it is u ||x - s|| ||c - s||. The norms are those of the shifted
// vectors, so sq_dist is still ||x - c||^2.
//
// kmeans_assign (CSR X): one warp per row; lanes own centres (C^T is stored
// d' x k so a lane's loads are coalesced, for the d' <= d columns that X
// actually uses: a wide, sparse X does not make it allocate d x k), the
// row's nonzeros are broadcast by shuffles; warp-wide argmin with ties to
// the smaller index.
//
// kmeans_update: deterministic, no float atomics.
//  * dense X: row ids are sorted by label (stable LSD radix sort), the
//    sorted list is cut into pieces of at most kPiece rows that never span
//    two clusters, each piece is summed in float64 in row order (one thread
//    per (piece, column); the last column is the weight), then each cluster
//    adds its pieces in order.
//  * CSR X: the nonzeros become (label * d + column, w * x) pairs, sorted by
//    key (stable, so each key's terms stay in row order), cut into pieces of
//    at most kPiece terms within one key, summed in float64, and each key
//    adds its pieces in order. Counts go through the same path with the
//    label as key.
// The piece boundaries depend only on the data, so the sums are bit-identical
// from run to run and across GPUs.
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "cuda/api.hpp"
#include "cuda/common.cuh"
#include "cuda/primitives.cuh"

namespace cohortrec::cuda {
namespace {

constexpr int64_t kPiece = 256;
// The CPU kernels' message (cohortrec.ops prefixes the argument name).
constexpr const char* kNonFinite = "contains NaN or infinite values (or its sums overflow float64)";

// ------------------------------------------------------------------ norms
/// xn[r] = ||X[r] - shift||^2 in float64 (one warp per row; shift may be
/// null: 0); *bad = 1 if not finite.
template <typename T>
__global__ void row_sqnorms_kernel(const T* __restrict__ X, int64_t n, int64_t d, const T* __restrict__ shift,
                                   double* __restrict__ xn, int* __restrict__ bad) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; r < n; r += warps) {
    const T* x = X + r * d;
    double s = 0.0;
    for (int64_t t = lane; t < d; t += 32) {
      const double v = static_cast<double>(x[t]) - (shift ? static_cast<double>(shift[t]) : 0.0);
      s += v * v;
    }
    s = warp_sum(s);
    if (lane == 0) {
      xn[r] = s;
      if (!isfinite(s)) *bad = 1;
    }
  }
}

/// cn[j] = ||C[j] - shift||^2 summed in float64, rounded to T (one warp per
/// centre; shift may be null: 0).
template <typename T>
__global__ void center_sqnorms_kernel(const T* __restrict__ C, int64_t k, int64_t d, const T* __restrict__ shift,
                                      T* __restrict__ cn) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t j = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; j < k; j += warps) {
    double s = 0.0;
    for (int64_t t = lane; t < d; t += 32) {
      const double v = static_cast<double>(C[j * d + t]) - (shift ? static_cast<double>(shift[t]) : 0.0);
      s += v * v;
    }
    s = warp_sum(s);
    if (lane == 0) cn[j] = static_cast<T>(s);
  }
}

/// shift[t] = mean of the centres' column t (float64 sum in index order,
/// rounded to T): the common shift of the low-precision products.
template <typename T>
__global__ void center_mean_kernel(const T* __restrict__ C, int64_t k, int64_t d, T* __restrict__ shift) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < d; t += stride) {
    double s = 0.0;
    for (int64_t j = 0; j < k; ++j) s += static_cast<double>(C[j * d + t]);
    shift[t] = static_cast<T>(s / static_cast<double>(k));
  }
}

/// Final value of one row: label (a sentinel >= k means no centre ever
/// compared smaller than +inf: the CPU's initial label 0) and
/// max(0, T(||x||^2) + best).
template <typename T>
__device__ __forceinline__ void write_result(int64_t row, T best, int64_t best_i, int64_t k, double xn, int64_t* labels,
                                             T* sq) {
  labels[row] = best_i < k ? best_i : 0;
  const T s = static_cast<T>(xn) + best;
  sq[row] = s > T(0) ? s : T(0);
}

// ------------------------------------------------- fused GEMM + argmin (SIMT)
/// Block: BM rows x all centres (tiles of BN), NT = (BM/TM) (BN/TN) threads;
/// thread (ty, tx) owns rows ty*TM.. and centres tx*TN.. of each tile.
template <typename T, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 2)
    assign_gemm_kernel(const T* __restrict__ X, int64_t n, int64_t d, const T* __restrict__ C, int64_t k,
                       const T* __restrict__ cn, const double* __restrict__ xn, int64_t* __restrict__ labels,
                       T* __restrict__ sq) {
  constexpr int TX = BN / TN;
  constexpr int NT = (BM / TM) * TX;
  constexpr int PAD = 4;  // keeps the transposed tile stores free of bank conflicts
  __shared__ T As[BK][BM + PAD];
  __shared__ T Bs[BK][BN + PAD];
  __shared__ T red_d[BM][TX];
  __shared__ int32_t red_i[BM][TX];

  const int tid = threadIdx.x;
  const int tx = tid % TX, ty = tid / TX;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * BM;

  T best_d[TM];
  int32_t best_i[TM];  // k < 2^31 (checked by the caller)
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    best_d[i] = pos_inf<T>();
    best_i[i] = static_cast<int32_t>(k);  // sentinel
  }

  for (int64_t c0 = 0; c0 < k; c0 += BN) {
    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

    for (int64_t k0 = 0; k0 < d; k0 += BK) {
      for (int e = tid; e < BM * BK; e += NT) {
        const int r = e / BK, kk = e % BK;
        const int64_t gr = row0 + r, gk = k0 + kk;
        As[kk][r] = (gr < n && gk < d) ? X[gr * d + gk] : T(0);
      }
      for (int e = tid; e < BN * BK; e += NT) {
        const int c = e / BK, kk = e % BK;
        const int64_t gc = c0 + c, gk = k0 + kk;
        Bs[kk][c] = (gc < k && gk < d) ? C[gc * d + gk] : T(0);
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
        T a[TM], b[TN];
#pragma unroll
        for (int i = 0; i < TM; ++i) a[i] = As[kk][ty * TM + i];
#pragma unroll
        for (int j = 0; j < TN; ++j) b[j] = Bs[kk][tx * TN + j];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
      }
      __syncthreads();
    }
    // Centres are visited in increasing index order within a thread and the
    // comparison is strict: each thread keeps the smallest index of a tie.
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t cj = c0 + tx * TN + j;
      if (cj < k) {
        const T cnj = cn[cj];
#pragma unroll
        for (int i = 0; i < TM; ++i) {
          const T dist = cnj - T(2) * acc[i][j];
          if (dist < best_d[i]) {
            best_d[i] = dist;
            best_i[i] = static_cast<int32_t>(cj);
          }
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    red_d[ty * TM + i][tx] = best_d[i];
    red_i[ty * TM + i][tx] = best_i[i];
  }
  __syncthreads();
  for (int r = tid; r < BM; r += NT) {
    const int64_t gr = row0 + r;
    if (gr >= n) continue;
    T bd = red_d[r][0];
    int64_t bi = red_i[r][0];
    for (int t = 1; t < TX; ++t)
      if (better_min(red_d[r][t], static_cast<int64_t>(red_i[r][t]), bd, bi)) {
        bd = red_d[r][t];
        bi = red_i[r][t];
      }
    write_result(gr, bd, bi, k, xn[gr], labels, sq);
  }
}

// --------------------------------------- fused GEMM + argmin (tensor cores)
/// float32 input, products on tensor cores (TF32 or BF16 operands, float32
/// accumulators) of the shifted X - shift and C - shift (cn, xn: their
/// norms). Block: 64 rows x all centres in tiles of 64, 4 warps each
/// computing a 32 x 32 quarter as 2 x 2 WMMA 16x16 fragments; the tile of
/// products goes through shared memory to the argmin (2 threads per row).
template <bool BF16>
__global__ void __launch_bounds__(128)
    assign_wmma_kernel(const float* __restrict__ X, int64_t n, int64_t d, const float* __restrict__ C, int64_t k,
                       const float* __restrict__ shift, const float* __restrict__ cn, const double* __restrict__ xn,
                       int64_t* __restrict__ labels, float* __restrict__ sq) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  using InT = typename std::conditional<BF16, __nv_bfloat16, float>::type;
  constexpr int BM = 64, BN = 64, KT = 32;
  constexpr int FK = BF16 ? 16 : 8;         // k of one WMMA step
  constexpr int LDA = KT + (BF16 ? 8 : 4);  // rows stay 32-byte aligned, banks staggered
  constexpr int LDC = BN + 4;
  using FragA = typename std::conditional<
      BF16, wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major>,
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major>>::type;
  using FragB = typename std::conditional<
      BF16, wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major>,
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major>>::type;
  using FragC = wmma::fragment<wmma::accumulator, 16, 16, FK, float>;

  __shared__ __align__(32) InT As[BM * LDA];
  __shared__ __align__(32) InT Bs[BN * LDA];
  __shared__ __align__(32) float Cs[BM * LDC];

  const int tid = threadIdx.x, warp = tid / 32;
  const int wm = warp / 2, wn = warp % 2;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int my_row = tid / 2, half = tid % 2;
  float best = pos_inf<float>();
  int64_t best_i = k;

  auto convert = [](float v) -> InT {
    if constexpr (BF16)
      return __float2bfloat16_rn(v);
    else
      return wmma::__float_to_tf32(v);
  };

  for (int64_t c0 = 0; c0 < k; c0 += BN) {
    FragC acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int64_t k0 = 0; k0 < d; k0 += KT) {
      for (int e = tid; e < BM * KT; e += 128) {
        const int r = e / KT, kk = e % KT;
        const int64_t gr = row0 + r, gk = k0 + kk;
        As[r * LDA + kk] = convert((gr < n && gk < d) ? X[gr * d + gk] - shift[gk] : 0.0f);
      }
      for (int e = tid; e < BN * KT; e += 128) {
        const int c = e / KT, kk = e % KT;
        const int64_t gc = c0 + c, gk = k0 + kk;
        Bs[c * LDA + kk] = convert((gc < k && gk < d) ? C[gc * d + gk] - shift[gk] : 0.0f);
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < KT; kk += FK) {
        FragA a[2];
        FragB b[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], As + (wm * 32 + i * 16) * LDA + kk, LDA);
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], Bs + (wn * 32 + j * 16) * LDA + kk, LDA);
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * LDC + wn * 32 + j * 16, acc[i][j], LDC, wmma::mem_row_major);
    __syncthreads();
    for (int cc = 0; cc < 32; ++cc) {
      const int col = half * 32 + cc;
      const int64_t cj = c0 + col;
      if (cj < k) {
        const float dist = cn[cj] - 2.0f * Cs[my_row * LDC + col];
        if (dist < best) {
          best = dist;
          best_i = cj;
        }
      }
    }
    __syncthreads();
  }
  // Combine the two halves of each row (adjacent lanes of one warp).
  const float ob = __shfl_xor_sync(0xffffffffu, best, 1);
  const int64_t oi = __shfl_xor_sync(0xffffffffu, best_i, 1);
  if (better_min(ob, oi, best, best_i)) {
    best = ob;
    best_i = oi;
  }
  const int64_t gr = row0 + my_row;
  if (half == 0 && gr < n) write_result(gr, best, best_i, k, xn[gr], labels, sq);
#else
  __trap();  // tensor-core path needs sm_80+; the host only launches it there
#endif
}

// -------------------------------------------------------------- CSR assign
/// used[c] = 1 for every column id c stored in X (`used` zeroed by the caller;
/// racing threads write the same value).
__global__ void mark_columns_kernel(const int32_t* __restrict__ idx, int64_t nnz, int64_t* __restrict__ used) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < nnz; e += stride) used[idx[e]] = 1;
}

/// cols[pos[t]] = t for every used column t (pos = exclusive scan of used).
__global__ void used_columns_kernel(const int64_t* __restrict__ pos, int64_t d, int64_t* __restrict__ cols) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < d; t += stride)
    if (pos[t + 1] > pos[t]) cols[pos[t]] = t;
}

/// Ct[u * kp + j] = C[j, cols[u]] (cols null: C[j, u]) for the dc used
/// columns u, j < k; 0 for the padding centres.
template <typename T>
__global__ void transpose_centers_kernel(const T* __restrict__ C, int64_t k, int64_t d,
                                         const int64_t* __restrict__ cols, int64_t dc, int64_t kp, T* __restrict__ Ct) {
  const int64_t total = dc * kp;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < total; q += stride) {
    const int64_t u = q / kp, j = q % kp;
    const int64_t t = cols ? cols[u] : u;
    Ct[q] = j < k ? C[j * d + t] : T(0);
  }
}

/// One warp per row; lane l owns centres c0 + l + 32 q (q < CR) of each
/// chunk of 32 CR centres. Column c of X is row colmap[c] of Ct (colmap
/// null: row c).
template <typename T, int CR>
__global__ void assign_csr_kernel(const int64_t* __restrict__ ptr, const int32_t* __restrict__ idx,
                                  const T* __restrict__ val, int64_t n, const int64_t* __restrict__ colmap,
                                  const T* __restrict__ Ct, int64_t kp, const T* __restrict__ cn, int64_t k,
                                  int64_t* __restrict__ labels, T* __restrict__ sq, int* __restrict__ bad) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; r < n; r += warps) {
    const int64_t e0 = ptr[r], e1 = ptr[r + 1];
    double s = 0.0;
    for (int64_t e = e0 + lane; e < e1; e += 32) {
      const double v = static_cast<double>(val[e]);
      s += v * v;
    }
    s = warp_sum(s);
    if (lane == 0 && !isfinite(s)) *bad = 1;

    T best = pos_inf<T>();
    int64_t best_i = k;
    for (int64_t c0 = 0; c0 < k; c0 += 32 * CR) {
      T acc[CR];
#pragma unroll
      for (int q = 0; q < CR; ++q) acc[q] = T(0);
      for (int64_t eb = e0; eb < e1; eb += 32) {
        const int64_t e = eb + lane;
        int64_t my_col = e < e1 ? idx[e] : 0;
        if (colmap != nullptr && e < e1) my_col = colmap[my_col];
        const T my_val = e < e1 ? val[e] : T(0);
        const int cnt = static_cast<int>(min(static_cast<int64_t>(32), e1 - eb));
        for (int t = 0; t < cnt; ++t) {
          const int64_t col = __shfl_sync(0xffffffffu, my_col, t);
          const T v = __shfl_sync(0xffffffffu, my_val, t);
          const T* crow = Ct + col * kp + c0 + lane;
#pragma unroll
          for (int q = 0; q < CR; ++q) acc[q] += v * crow[q * 32];
        }
      }
#pragma unroll
      for (int q = 0; q < CR; ++q) {
        const int64_t cj = c0 + q * 32 + lane;
        if (cj < k) {
          const T dist = cn[cj] - T(2) * acc[q];
          if (dist < best) {
            best = dist;
            best_i = cj;
          }
        }
      }
    }
    warp_argmin(best, best_i);
    if (lane == 0) write_result(r, best, best_i, k, s, labels, sq);
  }
}

template <typename T>
bool assign_dense_impl(const T* X, int64_t n, int64_t d, const T* C, int64_t k, int64_t* labels, T* sq,
                       Precision precision, cudaStream_t stream) {
  if (k < 1) throw std::invalid_argument("centers must hold at least one centre");
  if (n == 0) return true;
  DeviceBuffer xn = device_alloc<double>(n, stream);
  DeviceBuffer cn = device_alloc<T>(k, stream);
  DeviceBuffer bad = device_alloc<int>(1, stream);
  CHECK_CUDA(cudaMemsetAsync(bad.get(), 0, sizeof(int), stream));
  if (ceil_div(n, 64) > 0x7fffffffLL) throw std::invalid_argument("kmeans_assign: too many rows for one grid");
  if (k >= 0x7fffffffLL) throw std::invalid_argument("kmeans_assign on the GPU needs fewer than 2**31 - 1 centres");
  // Tensor-core products work on X - s and C - s, s = mean of C (see the top).
  const bool shifted = std::is_same_v<T, float> && precision != Precision::fp32;
  DeviceBuffer shift;
  if (shifted) {
    shift = device_alloc<T>(std::max<int64_t>(d, 1), stream);
    if (d > 0) {
      center_mean_kernel<T><<<grid_for(d, 256), 256, 0, stream>>>(C, k, d, shift.as<T>());
      CHECK_LAUNCH("center_mean_kernel", stream);
    }
  }
  const T* sh = shifted ? shift.as<T>() : nullptr;
  row_sqnorms_kernel<T><<<grid_for(n * 32, 256), 256, 0, stream>>>(X, n, d, sh, xn.as<double>(), bad.as<int>());
  CHECK_LAUNCH("row_sqnorms_kernel", stream);
  center_sqnorms_kernel<T><<<grid_for(k * 32, 256), 256, 0, stream>>>(C, k, d, sh, cn.as<T>());
  CHECK_LAUNCH("center_sqnorms_kernel", stream);

  if constexpr (std::is_same_v<T, float>) {
    if (precision != Precision::fp32) {
      int dev = 0, major = 0;
      CHECK_CUDA(cudaGetDevice(&dev));
      CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
      if (major < 8)
        throw std::invalid_argument("precision='tf32'/'bf16' needs a GPU of compute capability 8.0 or newer");
      const unsigned grid = static_cast<unsigned>(ceil_div(n, 64));
      if (precision == Precision::tf32)
        assign_wmma_kernel<false>
            <<<grid, 128, 0, stream>>>(X, n, d, C, k, sh, cn.as<float>(), xn.as<double>(), labels, sq);
      else
        assign_wmma_kernel<true>
            <<<grid, 128, 0, stream>>>(X, n, d, C, k, sh, cn.as<float>(), xn.as<double>(), labels, sq);
      CHECK_LAUNCH("assign_wmma_kernel", stream);
    } else if (k <= 32) {
      assign_gemm_kernel<float, 128, 32, 8, 8, 2><<<static_cast<unsigned>(ceil_div(n, 128)), 256, 0, stream>>>(
          X, n, d, C, k, cn.as<float>(), xn.as<double>(), labels, sq);
      CHECK_LAUNCH("assign_gemm_kernel<float, 128x32>", stream);
    } else {
      assign_gemm_kernel<float, 128, 128, 8, 8, 8><<<static_cast<unsigned>(ceil_div(n, 128)), 256, 0, stream>>>(
          X, n, d, C, k, cn.as<float>(), xn.as<double>(), labels, sq);
      CHECK_LAUNCH("assign_gemm_kernel<float, 128x128>", stream);
    }
  } else {
    // float64 has no tensor-core path here: `precision` only relaxes float32.
    assign_gemm_kernel<double, 64, 64, 8, 4, 4><<<static_cast<unsigned>(ceil_div(n, 64)), 256, 0, stream>>>(
        X, n, d, C, k, cn.as<double>(), xn.as<double>(), labels, sq);
    CHECK_LAUNCH("assign_gemm_kernel<double, 64x64>", stream);
  }
  int h_bad = 0;
  to_host(&h_bad, bad.get(), sizeof(int), stream);
  return h_bad == 0;
}

template <typename T>
bool assign_csr_impl(const DeviceCsr& X, const T* C, int64_t k, int64_t* labels, T* sq, cudaStream_t stream) {
  if (k < 1) throw std::invalid_argument("centers must hold at least one centre");
  const int64_t n = X.n_rows, d = X.n_cols;
  if (n == 0) return true;
  const int cr = k <= 32 ? 1 : 4;
  const int64_t kp = ceil_div(k, 32 * cr) * 32 * cr;
  // C^T only for the columns X uses: dc x kp instead of d x kp.
  int64_t dc = 0;
  DeviceBuffer pos, cols;
  if (X.nnz > 0 && d > 0) {
    DeviceBuffer used = device_alloc<int64_t>(d + 1, stream);
    pos = device_alloc<int64_t>(d + 1, stream);
    CHECK_CUDA(cudaMemsetAsync(used.get(), 0, static_cast<size_t>(d + 1) * sizeof(int64_t), stream));
    mark_columns_kernel<<<grid_for(X.nnz, 256), 256, 0, stream>>>(X.indices, X.nnz, used.as<int64_t>());
    CHECK_LAUNCH("mark_columns_kernel", stream);
    exclusive_sum_i64(used.as<int64_t>(), pos.as<int64_t>(), d + 1, stream);
    to_host(&dc, pos.as<int64_t>() + d, sizeof(int64_t), stream);
    used.release();
    if (dc < d) {
      cols = device_alloc<int64_t>(std::max<int64_t>(dc, 1), stream);
      used_columns_kernel<<<grid_for(d, 256), 256, 0, stream>>>(pos.as<int64_t>(), d, cols.as<int64_t>());
      CHECK_LAUNCH("used_columns_kernel", stream);
    } else {
      pos.release();  // every column is used: no renumbering
    }
  }
  const int64_t* colmap = cols.get() ? pos.as<int64_t>() : nullptr;
  DeviceBuffer ct = device_alloc<T>(std::max<int64_t>(dc, 1) * kp, stream);
  DeviceBuffer cn = device_alloc<T>(k, stream);
  DeviceBuffer bad = device_alloc<int>(1, stream);
  CHECK_CUDA(cudaMemsetAsync(bad.get(), 0, sizeof(int), stream));
  if (dc > 0) {
    transpose_centers_kernel<T>
        <<<grid_for(dc * kp, 256), 256, 0, stream>>>(C, k, d, cols.as<int64_t>(), dc, kp, ct.as<T>());
    CHECK_LAUNCH("transpose_centers_kernel", stream);
  }
  center_sqnorms_kernel<T><<<grid_for(k * 32, 256), 256, 0, stream>>>(C, k, d, nullptr, cn.as<T>());
  CHECK_LAUNCH("center_sqnorms_kernel", stream);
  const T* val = static_cast<const T*>(X.data);
  if (cr == 1)
    assign_csr_kernel<T, 1><<<grid_for(n * 32, 256), 256, 0, stream>>>(X.indptr, X.indices, val, n, colmap, ct.as<T>(),
                                                                       kp, cn.as<T>(), k, labels, sq, bad.as<int>());
  else
    assign_csr_kernel<T, 4><<<grid_for(n * 32, 256), 256, 0, stream>>>(X.indptr, X.indices, val, n, colmap, ct.as<T>(),
                                                                       kp, cn.as<T>(), k, labels, sq, bad.as<int>());
  CHECK_LAUNCH("assign_csr_kernel", stream);
  int h_bad = 0;
  to_host(&h_bad, bad.get(), sizeof(int), stream);
  return h_bad == 0;
}

// ------------------------------------------------------------------ update
/// keys[i] = labels[i] (uint32), ids[i] = i.
__global__ void label_keys_kernel(const int64_t* __restrict__ labels, int64_t n, uint32_t* __restrict__ keys,
                                  int32_t* __restrict__ ids) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    keys[i] = static_cast<uint32_t>(labels[i]);
    ids[i] = static_cast<int32_t>(i);
  }
}

/// flags[q] = 1 where a piece starts: q = 0, a new key, or (period > 0)
/// every `period` items; flags[n] = 0 (so the exclusive scan's last entry is
/// the count).
template <typename K>
__global__ void piece_flags_kernel(const K* __restrict__ keys, int64_t n, int64_t period, int64_t* __restrict__ flags) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q <= n; q += stride)
    flags[q] = q < n && (q == 0 || keys[q] != keys[q - 1] || (period > 0 && q % period == 0)) ? 1 : 0;
}

/// start[pos[q]] = q for every flagged q; start[count] = n.
__global__ void flagged_positions_kernel(const int64_t* __restrict__ flags, const int64_t* __restrict__ pos, int64_t n,
                                         int64_t* __restrict__ start) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q <= n; q += stride) {
    if (q == n)
      start[pos[n]] = n;
    else if (flags[q])
      start[pos[q]] = q;
  }
}

/// Positions where a new piece starts in a sorted key list (a new key, or
/// every `period` items when period > 0); returns their number (start gets
/// count + 1 entries, the last = n).
template <typename K>
int64_t piece_starts(const K* keys, int64_t n, int64_t period, DeviceBuffer& start, cudaStream_t stream) {
  DeviceBuffer flags = device_alloc<int64_t>(n + 1, stream);
  DeviceBuffer pos = device_alloc<int64_t>(n + 1, stream);
  piece_flags_kernel<K><<<grid_for(n + 1, 256), 256, 0, stream>>>(keys, n, period, flags.as<int64_t>());
  CHECK_LAUNCH("piece_flags_kernel", stream);
  exclusive_sum_i64(flags.as<int64_t>(), pos.as<int64_t>(), n + 1, stream);
  int64_t count = 0;
  to_host(&count, pos.as<int64_t>() + n, sizeof(int64_t), stream);
  start = device_alloc<int64_t>(count + 1, stream);
  flagged_positions_kernel<<<grid_for(n + 1, 256), 256, 0, stream>>>(flags.as<int64_t>(), pos.as<int64_t>(), n,
                                                                     start.as<int64_t>());
  CHECK_LAUNCH("flagged_positions_kernel", stream);
  return count;
}

/// partial[p, t] = sum over the rows q of piece p (in order) of w_q X[q, t];
/// column t = d holds sum w_q. One thread per (piece, column).
template <typename T>
__global__ void dense_piece_sums_kernel(const T* __restrict__ X, int64_t d, const T* __restrict__ w,
                                        const int32_t* __restrict__ rows, const int64_t* __restrict__ start,
                                        int64_t n_pieces, double* __restrict__ partial) {
  const int64_t cols = d + 1, total = n_pieces * cols;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < total; g += stride) {
    const int64_t p = g / cols, t = g % cols;
    double s = 0.0;
    for (int64_t q = start[p]; q < start[p + 1]; ++q) {
      const int64_t i = rows[q];
      const double wi = w ? static_cast<double>(w[i]) : 1.0;
      s += t < d ? wi * static_cast<double>(X[i * d + t]) : wi;
    }
    partial[g] = s;
  }
}

/// first[c] = first piece of cluster c (lower bound of c among the pieces'
/// labels), for c in [0, k]; first[k] = n_pieces.
__global__ void cluster_first_piece_kernel(const uint32_t* __restrict__ keys, const int64_t* __restrict__ start,
                                           int64_t n_pieces, int64_t k, int64_t* __restrict__ first) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c <= k; c += stride) {
    int64_t lo = 0, hi = n_pieces;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (static_cast<int64_t>(keys[start[mid]]) < c)
        lo = mid + 1;
      else
        hi = mid;
    }
    first[c] = lo;
  }
}

/// sums[c, t] / counts[c] = the pieces of cluster c added in order;
/// *bad = 1 when a float64 sum is not finite (NaN/inf in X, or overflow).
template <typename T>
__global__ void dense_cluster_sums_kernel(const double* __restrict__ partial, const int64_t* __restrict__ first,
                                          int64_t k, int64_t d, T* __restrict__ sums, T* __restrict__ counts,
                                          int* __restrict__ bad) {
  const int64_t cols = d + 1, total = k * cols;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < total; g += stride) {
    const int64_t c = g / cols, t = g % cols;
    double s = 0.0;
    for (int64_t p = first[c]; p < first[c + 1]; ++p) s += partial[p * cols + t];
    if (t < d) {
      if (!isfinite(s)) *bad = 1;
      sums[c * d + t] = static_cast<T>(s);
    } else {
      counts[c] = static_cast<T>(s);
    }
  }
}

template <typename T>
void update_dense_impl(const T* X, int64_t n, int64_t d, const int64_t* labels, int64_t k, const T* w, T* sums,
                       T* counts, cudaStream_t stream) {
  if (k < 1) throw std::invalid_argument("n_clusters must be >= 1");
  if (n >= 0x7fffffffLL || k > 0xffffffffLL)
    throw std::invalid_argument("kmeans_update on the GPU needs fewer than 2**31 - 1 rows and 2**32 clusters");
  if (k * d > 0) CHECK_CUDA(cudaMemsetAsync(sums, 0, static_cast<size_t>(k * d) * sizeof(T), stream));
  CHECK_CUDA(cudaMemsetAsync(counts, 0, static_cast<size_t>(k) * sizeof(T), stream));
  if (n == 0) {
    CHECK_CUDA(cudaStreamSynchronize(stream));
    return;
  }
  DeviceBuffer keys = device_alloc<uint32_t>(n, stream), ids = device_alloc<int32_t>(n, stream);
  DeviceBuffer keys_s = device_alloc<uint32_t>(n, stream), ids_s = device_alloc<int32_t>(n, stream);
  label_keys_kernel<<<grid_for(n, 256), 256, 0, stream>>>(labels, n, keys.as<uint32_t>(), ids.as<int32_t>());
  CHECK_LAUNCH("label_keys_kernel", stream);
  radix_sort_pairs(keys.as<uint32_t>(), keys_s.as<uint32_t>(), ids.as<int32_t>(), ids_s.as<int32_t>(), n,
                   bits_for(static_cast<uint64_t>(k - 1)), stream);
  keys.release();
  ids.release();

  DeviceBuffer start;
  const int64_t n_pieces = piece_starts(keys_s.as<uint32_t>(), n, kPiece, start, stream);
  DeviceBuffer partial = device_alloc<double>(n_pieces * (d + 1), stream);
  dense_piece_sums_kernel<T><<<grid_for(n_pieces * (d + 1), 256), 256, 0, stream>>>(
      X, d, w, ids_s.as<int32_t>(), start.as<int64_t>(), n_pieces, partial.as<double>());
  CHECK_LAUNCH("dense_piece_sums_kernel", stream);
  DeviceBuffer first = device_alloc<int64_t>(k + 1, stream);
  DeviceBuffer bad = device_alloc<int>(1, stream);
  CHECK_CUDA(cudaMemsetAsync(bad.get(), 0, sizeof(int), stream));
  cluster_first_piece_kernel<<<grid_for(k + 1, 256), 256, 0, stream>>>(keys_s.as<uint32_t>(), start.as<int64_t>(),
                                                                       n_pieces, k, first.as<int64_t>());
  CHECK_LAUNCH("cluster_first_piece_kernel", stream);
  dense_cluster_sums_kernel<T><<<grid_for(k * (d + 1), 256), 256, 0, stream>>>(
      partial.as<double>(), first.as<int64_t>(), k, d, sums, counts, bad.as<int>());
  CHECK_LAUNCH("dense_cluster_sums_kernel", stream);
  int h_bad = 0;
  to_host(&h_bad, bad.get(), sizeof(int), stream);
  if (h_bad) throw std::invalid_argument(kNonFinite);
}

/// (label * d + column, w * x) for every stored entry (one warp per row).
template <typename T>
__global__ void csr_terms_kernel(const int64_t* __restrict__ ptr, const int32_t* __restrict__ idx,
                                 const T* __restrict__ val, int64_t n, int64_t d, const int64_t* __restrict__ labels,
                                 const T* __restrict__ w, uint64_t* __restrict__ keys, double* __restrict__ terms) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; r < n; r += warps) {
    const uint64_t base = static_cast<uint64_t>(labels[r]) * static_cast<uint64_t>(d);
    const double wr = w ? static_cast<double>(w[r]) : 1.0;
    for (int64_t e = ptr[r] + lane; e < ptr[r + 1]; e += 32) {
      keys[e] = base + static_cast<uint64_t>(idx[e]);
      terms[e] = wr * static_cast<double>(val[e]);
    }
  }
}

/// (label, w) for every row.
template <typename T>
__global__ void row_terms_kernel(const int64_t* __restrict__ labels, const T* __restrict__ w, int64_t n,
                                 uint64_t* __restrict__ keys, double* __restrict__ terms) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    keys[i] = static_cast<uint64_t>(labels[i]);
    terms[i] = w ? static_cast<double>(w[i]) : 1.0;
  }
}

/// psum[p] = terms of piece p added in order; pkey[p] = its key.
__global__ void piece_term_sums_kernel(const uint64_t* __restrict__ keys, const double* __restrict__ terms,
                                       const int64_t* __restrict__ start, int64_t n_pieces, double* __restrict__ psum,
                                       uint64_t* __restrict__ pkey) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < n_pieces; p += stride) {
    double s = 0.0;
    for (int64_t q = start[p]; q < start[p + 1]; ++q) s += terms[q];
    psum[p] = s;
    pkey[p] = keys[start[p]];
  }
}

/// out[key] = the pieces of each key (consecutive) added in order.
/// (*bad = 1 when a sum is not finite; `bad` may be null.)
template <typename T>
__global__ void key_sums_kernel(const double* __restrict__ psum, const uint64_t* __restrict__ pkey,
                                const int64_t* __restrict__ run_start, int64_t n_runs, T* __restrict__ out,
                                int* __restrict__ bad) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < n_runs; q += stride) {
    double s = 0.0;
    for (int64_t p = run_start[q]; p < run_start[q + 1]; ++p) s += psum[p];
    if (bad && !isfinite(s)) *bad = 1;
    out[pkey[run_start[q]]] = static_cast<T>(s);
  }
}

/// Sorts (key, term) pairs by key (stable) and writes out[key] = the sum of
/// the key's terms in their original order, in fixed-size pieces. Keys lie
/// in [0, n_keys); `out` must be zeroed by the caller. Non-finite sums set
/// *bad (if not null).
template <typename T>
void sum_by_key(DeviceBuffer& keys, DeviceBuffer& terms, int64_t n, uint64_t n_keys, T* out, int* bad,
                cudaStream_t stream) {
  if (n == 0) return;
  DeviceBuffer keys_s = device_alloc<uint64_t>(n, stream), terms_s = device_alloc<double>(n, stream);
  radix_sort_pairs(keys.as<uint64_t>(), keys_s.as<uint64_t>(), terms.as<double>(), terms_s.as<double>(), n,
                   bits_for(n_keys > 0 ? n_keys - 1 : 0), stream);
  keys.release();
  terms.release();
  DeviceBuffer start;
  const int64_t n_pieces = piece_starts(keys_s.as<uint64_t>(), n, kPiece, start, stream);
  DeviceBuffer psum = device_alloc<double>(n_pieces, stream), pkey = device_alloc<uint64_t>(n_pieces, stream);
  piece_term_sums_kernel<<<grid_for(n_pieces, 256), 256, 0, stream>>>(keys_s.as<uint64_t>(), terms_s.as<double>(),
                                                                      start.as<int64_t>(), n_pieces, psum.as<double>(),
                                                                      pkey.as<uint64_t>());
  CHECK_LAUNCH("piece_term_sums_kernel", stream);
  // Runs of consecutive pieces with one key (no periodic cuts).
  DeviceBuffer run_start;
  const int64_t n_runs = piece_starts(pkey.as<uint64_t>(), n_pieces, 0, run_start, stream);
  key_sums_kernel<T><<<grid_for(n_runs, 256), 256, 0, stream>>>(psum.as<double>(), pkey.as<uint64_t>(),
                                                                run_start.as<int64_t>(), n_runs, out, bad);
  CHECK_LAUNCH("key_sums_kernel", stream);
}

template <typename T>
void update_csr_impl(const DeviceCsr& X, const int64_t* labels, int64_t k, const T* w, T* sums, T* counts,
                     cudaStream_t stream) {
  if (k < 1) throw std::invalid_argument("n_clusters must be >= 1");
  const int64_t n = X.n_rows, d = X.n_cols, nnz = X.nnz;
  if (k * d > 0) CHECK_CUDA(cudaMemsetAsync(sums, 0, static_cast<size_t>(k * d) * sizeof(T), stream));
  CHECK_CUDA(cudaMemsetAsync(counts, 0, static_cast<size_t>(k) * sizeof(T), stream));
  DeviceBuffer bad = device_alloc<int>(1, stream);
  CHECK_CUDA(cudaMemsetAsync(bad.get(), 0, sizeof(int), stream));
  if (n > 0 && nnz > 0 && d > 0) {
    DeviceBuffer keys = device_alloc<uint64_t>(nnz, stream), terms = device_alloc<double>(nnz, stream);
    csr_terms_kernel<T><<<grid_for(n * 32, 256), 256, 0, stream>>>(
        X.indptr, X.indices, static_cast<const T*>(X.data), n, d, labels, w, keys.as<uint64_t>(), terms.as<double>());
    CHECK_LAUNCH("csr_terms_kernel", stream);
    sum_by_key<T>(keys, terms, nnz, static_cast<uint64_t>(k) * static_cast<uint64_t>(d), sums, bad.as<int>(), stream);
  }
  if (n > 0) {
    DeviceBuffer keys = device_alloc<uint64_t>(n, stream), terms = device_alloc<double>(n, stream);
    row_terms_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(labels, w, n, keys.as<uint64_t>(), terms.as<double>());
    CHECK_LAUNCH("row_terms_kernel", stream);
    sum_by_key<T>(keys, terms, n, static_cast<uint64_t>(k), counts, nullptr, stream);
  }
  int h_bad = 0;
  to_host(&h_bad, bad.get(), sizeof(int), stream);
  if (h_bad) throw std::invalid_argument(kNonFinite);
}

}  // namespace

bool kmeans_assign_dense(Dtype dtype, const void* X, int64_t n, int64_t d, const void* centers, int64_t k,
                         int64_t* labels, void* sq_dist, Precision precision, cudaStream_t stream) {
  if (dtype == Dtype::f32)
    return assign_dense_impl<float>(static_cast<const float*>(X), n, d, static_cast<const float*>(centers), k, labels,
                                    static_cast<float*>(sq_dist), precision, stream);
  return assign_dense_impl<double>(static_cast<const double*>(X), n, d, static_cast<const double*>(centers), k, labels,
                                   static_cast<double*>(sq_dist), precision, stream);
}

bool kmeans_assign_csr(Dtype dtype, const DeviceCsr& X, const void* centers, int64_t k, int64_t* labels, void* sq_dist,
                       cudaStream_t stream) {
  if (dtype == Dtype::f32)
    return assign_csr_impl<float>(X, static_cast<const float*>(centers), k, labels, static_cast<float*>(sq_dist),
                                  stream);
  return assign_csr_impl<double>(X, static_cast<const double*>(centers), k, labels, static_cast<double*>(sq_dist),
                                 stream);
}

void kmeans_update_dense(Dtype dtype, const void* X, int64_t n, int64_t d, const int64_t* labels, int64_t k,
                         const void* weights, void* sums, void* counts, cudaStream_t stream) {
  if (dtype == Dtype::f32)
    update_dense_impl<float>(static_cast<const float*>(X), n, d, labels, k, static_cast<const float*>(weights),
                             static_cast<float*>(sums), static_cast<float*>(counts), stream);
  else
    update_dense_impl<double>(static_cast<const double*>(X), n, d, labels, k, static_cast<const double*>(weights),
                              static_cast<double*>(sums), static_cast<double*>(counts), stream);
}

void kmeans_update_csr(Dtype dtype, const DeviceCsr& X, const int64_t* labels, int64_t k, const void* weights,
                       void* sums, void* counts, cudaStream_t stream) {
  if (dtype == Dtype::f32)
    update_csr_impl<float>(X, labels, k, static_cast<const float*>(weights), static_cast<float*>(sums),
                           static_cast<float*>(counts), stream);
  else
    update_csr_impl<double>(X, labels, k, static_cast<const double*>(weights), static_cast<double*>(sums),
                            static_cast<double*>(counts), stream);
}

}  // namespace cohortrec::cuda
