// CUB instantiations shared by the ops (see primitives.cuh).
//
// CUB algorithms are deterministic for integer data; the float sums of this
// module never go through CUB scans or reductions (CUB's decoupled
// look-back scan may associate floating-point sums differently from run to
// run), only through the fixed-order kernels of each op.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include "cuda/common.cuh"
#include "cuda/primitives.cuh"

namespace cohortrec::cuda {

void exclusive_sum_i64(const int64_t* in, int64_t* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  cub_call([&](void* tmp, size_t& bytes) { return cub::DeviceScan::ExclusiveSum(tmp, bytes, in, out, n, stream); },
           "cub::DeviceScan::ExclusiveSum", stream);
}

void sort_candidates(int32_t* id, uint64_t* key, int32_t* id_alt, uint64_t* key_alt, int64_t n_items,
                     int64_t n_segments, const int64_t* begin, const int64_t* end, cudaStream_t stream) {
  if (n_items <= 0 || n_segments <= 0) return;
  // 1. ids ascending (candidates arrive in hash-table order).
  cub_call(
      [&](void* tmp, size_t& bytes) {
        return cub::DeviceSegmentedSort::StableSortPairs(tmp, bytes, id, id_alt, key, key_alt, n_items, n_segments,
                                                         begin, end, stream);
      },
      "cub::DeviceSegmentedSort::StableSortPairs (candidate ids)", stream);
  // 2. scores descending; stability keeps equal scores in id order.
  cub_call(
      [&](void* tmp, size_t& bytes) {
        return cub::DeviceSegmentedSort::StableSortPairsDescending(tmp, bytes, key_alt, key, id_alt, id, n_items,
                                                                   n_segments, begin, end, stream);
      },
      "cub::DeviceSegmentedSort::StableSortPairsDescending (candidate scores)", stream);
}

void radix_sort_pairs(const uint32_t* keys_in, uint32_t* keys_out, const int32_t* vals_in, int32_t* vals_out, int64_t n,
                      int end_bit, cudaStream_t stream) {
  if (n <= 0) return;
  cub_call(
      [&](void* tmp, size_t& bytes) {
        return cub::DeviceRadixSort::SortPairs(tmp, bytes, keys_in, keys_out, vals_in, vals_out, n, 0, end_bit, stream);
      },
      "cub::DeviceRadixSort::SortPairs (uint32 -> int32)", stream);
}

void radix_sort_pairs(const uint64_t* keys_in, uint64_t* keys_out, const double* vals_in, double* vals_out, int64_t n,
                      int end_bit, cudaStream_t stream) {
  if (n <= 0) return;
  cub_call(
      [&](void* tmp, size_t& bytes) {
        return cub::DeviceRadixSort::SortPairs(tmp, bytes, keys_in, keys_out, vals_in, vals_out, n, 0, end_bit, stream);
      },
      "cub::DeviceRadixSort::SortPairs (uint64 -> float64)", stream);
}

}  // namespace cohortrec::cuda
