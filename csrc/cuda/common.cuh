#pragma once
// Device-side helpers shared by the CUDA kernels of cohortrec.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cuda/errors.hpp"
#include "cuda/memory.hpp"

namespace cohortrec::cuda {

// ------------------------------------------------------------ launch sizes
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Blocks for a grid-stride loop over `n` items (bounded so the grid stays
/// legal and modest; the kernels loop over the rest).
inline unsigned grid_for(int64_t n, int block, int64_t max_blocks = 65535LL * 16) {
  int64_t g = ceil_div(n > 0 ? n : 1, block);
  if (g > max_blocks) g = max_blocks;
  return static_cast<unsigned>(g);
}

/// Runs a CUB device-wide algorithm with its two-phase temporary storage
/// protocol: `f(void* temp, size_t& bytes)` returns a cudaError_t. Its
/// kernels are checked like ours (COHORTREC_CUDA_SYNC=1: synchronised, so a
/// fault inside them is reported under `what`).
template <class F>
void cub_call(F&& f, const char* what, cudaStream_t stream) {
  size_t bytes = 0;
  check_cuda(f(nullptr, bytes), what, __FILE__, __LINE__);
  DeviceBuffer tmp(bytes ? bytes : 16, stream);
  check_cuda(f(tmp.get(), bytes), what, __FILE__, __LINE__);
  check_launch(what, stream, __FILE__, __LINE__);
}

// ------------------------------------------- correctly rounded arithmetic
// The sparse kernels reproduce the CPU kernels bit for bit, so products and
// sums are rounded separately (nvcc would otherwise contract a*b+c into one
// fused multiply-add, which rounds once).
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }

// ------------------------------------------------ order-preserving keys
/// Maps a score to an unsigned 64-bit key whose unsigned order is the
/// score's order (the classic radix-sort bit twiddle: flip all bits of
/// negatives, the sign bit of positives). -0.0 is first mapped to +0.0 so
/// that the two zeros tie, as they do under float comparison. float keys use
/// the low 32 bits.
template <typename T>
struct ScoreKey;

template <>
struct ScoreKey<float> {
  __device__ __forceinline__ static uint64_t encode(float s) {
    uint32_t u = __float_as_uint(s == 0.0f ? 0.0f : s);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return u;
  }
  __device__ __forceinline__ static float decode(uint64_t key) {
    uint32_t u = static_cast<uint32_t>(key);
    u = (u & 0x80000000u) ? (u ^ 0x80000000u) : ~u;
    return __uint_as_float(u);
  }
};

template <>
struct ScoreKey<double> {
  __device__ __forceinline__ static uint64_t encode(double s) {
    uint64_t u = static_cast<uint64_t>(__double_as_longlong(s == 0.0 ? 0.0 : s));
    u = (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
    return u;
  }
  __device__ __forceinline__ static double decode(uint64_t key) {
    uint64_t u = (key & 0x8000000000000000ull) ? (key ^ 0x8000000000000000ull) : ~key;
    return __longlong_as_double(static_cast<long long>(u));
  }
};

template <typename T>
__device__ __forceinline__ T pos_inf() {
  return static_cast<T>(INFINITY);
}
template <typename T>
__device__ __forceinline__ T neg_inf() {
  return -static_cast<T>(INFINITY);
}

// ------------------------------------------------------- argmin helpers
/// (dist, index) pairs ordered by distance, ties to the smaller index.
template <typename T>
__device__ __forceinline__ bool better_min(T d1, int64_t i1, T d2, int64_t i2) {
  return d1 < d2 || (d1 == d2 && i1 < i2);
}

/// Warp-wide argmin (butterfly, fixed order): every lane ends with the
/// smallest (dist, index).
template <typename T>
__device__ __forceinline__ void warp_argmin(T& d, int64_t& i) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const T d2 = __shfl_xor_sync(0xffffffffu, d, off);
    const int64_t i2 = __shfl_xor_sync(0xffffffffu, i, off);
    if (better_min(d2, i2, d, i)) {
      d = d2;
      i = i2;
    }
  }
}

/// Warp-wide sum in a fixed butterfly order (so the result is reproducible).
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

}  // namespace cohortrec::cuda
