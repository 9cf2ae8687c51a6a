#pragma once
// Device-wide building blocks (CUB) used by several ops. Each is compiled
// once, in primitives.cu, so the heavy CUB templates are instantiated in one
// translation unit only (compile time matters: CI builds on two cores).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cohortrec::cuda {

/// out[i] = in[0] + ... + in[i-1] for i in [0, n) (int64, exact).
/// `in` and `out` must not overlap.
void exclusive_sum_i64(const int64_t* in, int64_t* out, int64_t n, cudaStream_t stream);

/// Sorts every segment [begin[s], end[s]) of the candidate pairs (id, key)
/// by key descending, ties by id ascending: a stable sort by id, then a
/// stable sort by key (descending). The sorted pairs end up back in
/// (id, key); (id_alt, key_alt) are scratch of the same extent. Items
/// outside the segments are neither read nor written.
void sort_candidates(int32_t* id, uint64_t* key, int32_t* id_alt, uint64_t* key_alt, int64_t n_items,
                     int64_t n_segments, const int64_t* begin, const int64_t* end, cudaStream_t stream);

/// Stable LSD radix sort of (key, value) pairs on bits [0, end_bit).
void radix_sort_pairs(const uint32_t* keys_in, uint32_t* keys_out, const int32_t* vals_in, int32_t* vals_out, int64_t n,
                      int end_bit, cudaStream_t stream);
void radix_sort_pairs(const uint64_t* keys_in, uint64_t* keys_out, const double* vals_in, double* vals_out, int64_t n,
                      int end_bit, cudaStream_t stream);

/// Number of bits needed to represent every value in [0, max_value].
inline int bits_for(uint64_t max_value) {
  int b = 1;
  while (b < 64 && (max_value >> b) != 0) ++b;
  return b;
}

}  // namespace cohortrec::cuda
