#pragma once
// Row-by-row sparse products with per-row top-k, on the GPU: the engine
// behind cosine_topk (A @ B^T) and topk_scores (W @ R).
//
// For each row r of the left matrix L and its stored entries (c, a) in
// column order, every row c of the right matrix M contributes
//     acc[j] += a * M[c, j]            (Gustavson 1978, row-by-row SpGEMM).
// The candidates of row r are the ids j reached this way (whatever their
// sum); an op-specific functor turns each acc[j] into a score, filters it,
// and the survivors are sorted per row (score descending, id ascending) so
// the first k of each row are the answer.
//
// GPU mapping (one thread block per row, rows processed in batches):
//  * Accumulator: an open-addressing hash table per row, with linear probing
//    (keys claimed with atomicCAS), sized twice the row's bound on distinct
//    candidates, cap(r) = min(sum of the lengths of the rows of M it visits,
//    width). Memory is O(batch budget), independent of the width p or m, so
//    inputs with millions of rows and columns stay bounded (the budget is a
//    fraction of the free device memory; rows are cut into batches whose
//    caps sum to at most the budget).
//  * Determinism: the block walks the entries of row r one at a time, with a
//    barrier between them; inside one row of M every id j occurs once, so
//    each acc[j] receives its terms in exactly the CPU kernel's order, each
//    product and sum rounded separately (no FMA contraction). The scores are
//    therefore the CPU's, bit for bit; only the hash-table order of the
//    candidates varies between runs, and the sort removes it.
//  * Selection: survivors are compacted (block-wide scan) into the row's
//    slice of a batch buffer. A row with more than k of them finds its k-th
//    largest score exactly by a block-wide radix select (MSD, 8-bit digits,
//    shared-memory histograms: the selection step of Alabi et al. 2012,
//    "Fast k-selection algorithms for graphics processing units") and keeps
//    only the candidates scoring at least that much (k plus any ties), so
//    real data with 10^5 candidates per row sorts ~k per row. Then all rows
//    of the batch are sorted at once by two stable segmented sorts (CUB
//    DeviceSegmentedSort): by id, then by score descending. Scores are
//    handled as order-preserving unsigned keys (ScoreKey), with -0.0 folded
//    into +0.0 so equal scores tie exactly as under float comparison.
//
// The functor `Op` supplies, as __device__ members:
//   bool    skip_row(int64 r)          row has no candidates at all
//   int64   extra_slots(int64 r)       ids pre-inserted as "excluded"
//   void    pre_insert(r, keys, tsize) inserts those ids (block-cooperative)
//   T       l_value(int64 r, T a)      the multiplier used for a stored a != 0
//                                      of row r (cosine: a / ||row r||)
//   bool    skip_pair(int64 r, int32 j)
//   bool    keep(int64 r, int32 j, T acc, T& score)
// Entries of L that are stored zeros are skipped (before l_value); entries
// of M are all used (the callers drop M's stored zeros beforehand, as the
// CPU kernels do).
#include <cub/block/block_scan.cuh>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/primitives.cuh"

namespace cohortrec::cuda::rowwise {

/// L (rows processed) and M (rows addressed by L's column ids), device CSR.
template <typename T>
struct Problem {
  const int64_t* l_ptr = nullptr;
  const int32_t* l_idx = nullptr;
  const T* l_val = nullptr;
  int64_t n_rows = 0;
  const int64_t* m_ptr = nullptr;
  const int32_t* m_idx = nullptr;
  const T* m_val = nullptr;
  int64_t width = 0;  // ids j lie in [0, width)
};

constexpr int kBlock = 128;
constexpr int32_t kEmpty = -1;
constexpr int32_t kExcludedBit = static_cast<int32_t>(0x80000000u);  // key | bit marks an excluded id

/// Slot of id j in a table of `tsize` slots (Knuth's multiplicative hash,
/// mapped onto [0, tsize) by a multiply-high, exact for tsize <= 2^32).
__device__ __forceinline__ uint64_t hash_slot(int32_t j, int64_t tsize) {
  const uint32_t h = static_cast<uint32_t>(j) * 2654435769u;
  return (static_cast<uint64_t>(h) * static_cast<uint64_t>(tsize)) >> 32;
}

/// acc[j] += prod in the row's table. Only this thread touches id j between
/// two barriers, so the value update needs no atomic; the slot claim does.
/// Excluded ids (pre-inserted with kExcludedBit) absorb their terms.
/// Keys and values bypass L1 (ld/st.global.cg): the table is written by
/// atomics, which act at L2.
template <typename T>
__device__ __forceinline__ void table_add(int32_t* keys, T* vals, int64_t tsize, int32_t j, T prod) {
  const int32_t excluded = j | kExcludedBit;
  uint64_t slot = hash_slot(j, tsize);
  for (;;) {
    int32_t cur = __ldcg(keys + slot);
    if (cur == kEmpty) {
      cur = atomicCAS(keys + slot, kEmpty, j);
      if (cur == kEmpty) {  // claimed: first term (0 + prod, as the CPU's zeroed accumulator)
        __stcg(vals + slot, add_rn(T(0), prod));
        return;
      }
    }
    if (cur == j) {
      __stcg(vals + slot, add_rn(__ldcg(vals + slot), prod));
      return;
    }
    if (cur == excluded) return;
    if (++slot == static_cast<uint64_t>(tsize)) slot = 0;
  }
}

/// Inserts id j as excluded (several threads may insert the same id).
__device__ __forceinline__ void table_exclude(int32_t* keys, int64_t tsize, int32_t j) {
  const int32_t key = j | kExcludedBit;
  uint64_t slot = hash_slot(j, tsize);
  for (;;) {
    int32_t cur = __ldcg(keys + slot);
    if (cur == kEmpty) {
      cur = atomicCAS(keys + slot, kEmpty, key);
      if (cur == kEmpty) return;
    }
    if (cur == key) return;
    if (++slot == static_cast<uint64_t>(tsize)) slot = 0;
  }
}

/// The kth largest (1-based) of keys[0, cnt) for kth <= cnt, by MSD radix
/// select over the low KEY_BITS bits (8 bits per pass; a pass histograms the
/// keys that match the digits chosen so far). Called by the whole block;
/// every thread gets the result. `hist` is 256 counters of shared memory.
/// `keys` is deliberately not `const __restrict__`: the calling kernel wrote
/// them (other threads, before a barrier), so they must not be read through
/// the non-coherent read-only path (ld.global.nc) that the qualifiers allow.
template <int KEY_BITS>
__device__ uint64_t block_kth_largest(const uint64_t* keys, int64_t cnt, int64_t kth, unsigned* hist,
                                      uint64_t* s_prefix, int64_t* s_want) {
  uint64_t prefix = 0, mask = 0;
  int64_t want = kth;
  for (int shift = KEY_BITS - 8; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0u;
    __syncthreads();
    for (int64_t s = threadIdx.x; s < cnt; s += blockDim.x) {
      const uint64_t x = keys[s];
      if ((x & mask) == prefix) atomicAdd(hist + ((x >> shift) & 255u), 1u);
    }
    __syncthreads();
    if (threadIdx.x < 32) {  // warp 0 finds the digit: bins are scanned from the top
      const int lane = threadIdx.x;
      unsigned local[8];
      int64_t sum = 0;
#pragma unroll
      for (int b = 0; b < 8; ++b) {
        local[b] = hist[lane * 8 + b];
        sum += local[b];
      }
      int64_t incl = sum;  // keys in this lane's bins and all higher bins
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        const int64_t t = __shfl_down_sync(0xffffffffu, incl, off);
        if (lane + off < 32) incl += t;
      }
      const int64_t excl = incl - sum;
      if (excl < want && want <= incl) {  // exactly one lane
        int64_t c = excl;
        for (int b = 7; b >= 0; --b) {
          if (c + local[b] >= want) {
            *s_prefix = prefix | (static_cast<uint64_t>(lane * 8 + b) << shift);
            *s_want = want - c;
            break;
          }
          c += local[b];
        }
      }
    }
    __syncthreads();
    prefix = *s_prefix;
    want = *s_want;
    mask |= static_cast<uint64_t>(255u) << shift;
    __syncthreads();
  }
  return prefix;
}

/// caps[r] = bound on the distinct candidates of row r (plus its excluded
/// ids); caps[n_rows] = 0 so that an exclusive scan gives the offsets.
template <typename T, class Op>
__global__ void row_caps_kernel(Problem<T> P, Op op, int64_t* caps) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r <= P.n_rows; r += stride) {
    if (r == P.n_rows) {
      caps[r] = 0;
      continue;
    }
    int64_t work = 0;
    if (!op.skip_row(r)) {
      for (int64_t e = P.l_ptr[r]; e < P.l_ptr[r + 1]; ++e) {
        if (P.l_val[e] == T(0)) continue;
        const int64_t c = P.l_idx[e];
        work += P.m_ptr[c + 1] - P.m_ptr[c];
      }
    }
    caps[r] = work > 0 ? min(work, P.width) + op.extra_slots(r) : 0;
  }
}

/// One block per row of the batch [row_begin, row_begin + gridDim.x).
/// Row r owns table slots [2 (off[r] - base), 2 off[r+1] - 2 base) and
/// candidate slots [off[r] - base, off[r+1] - base).
/// Rows with more than `k_select` survivors keep only those scoring at
/// least the k_select-th best (k_select = 0: keep all).
template <typename T, class Op>
__global__ void __launch_bounds__(kBlock)
    accumulate_kernel(Problem<T> P, Op op, int64_t k_select, int64_t row_begin, const int64_t* __restrict__ off,
                      int64_t base, int32_t* __restrict__ tkeys, T* __restrict__ tvals, int32_t* __restrict__ cand_id,
                      uint64_t* __restrict__ cand_key, int64_t* __restrict__ cnt) {
  using Scan = cub::BlockScan<int, kBlock>;
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ int64_t s_written;
  __shared__ unsigned s_hist[256];
  __shared__ uint64_t s_prefix;
  __shared__ int64_t s_want;

  const int64_t r = row_begin + blockIdx.x;
  const int64_t o = off[r] - base;
  const int64_t cap = off[r + 1] - off[r];
  if (cap == 0) {  // uniform across the block
    if (threadIdx.x == 0) cnt[r] = 0;
    return;
  }
  const int64_t tsize = 2 * cap;
  int32_t* keys = tkeys + 2 * o;
  T* vals = tvals + 2 * o;
  for (int64_t s = threadIdx.x; s < tsize; s += kBlock) keys[s] = kEmpty;
  __syncthreads();
  op.pre_insert(r, keys, tsize);
  __syncthreads();

  // Accumulation, one entry (c, a) of row r at a time, in stored order.
  const int64_t e1 = P.l_ptr[r + 1];
  for (int64_t e = P.l_ptr[r]; e < e1; ++e) {
    const T raw = P.l_val[e];
    if (raw == T(0)) continue;  // the same value for every thread: the barrier below stays uniform
    const T a = op.l_value(r, raw);
    const int64_t c = P.l_idx[e];
    const int64_t q1 = P.m_ptr[c + 1];
    for (int64_t q = P.m_ptr[c] + threadIdx.x; q < q1; q += kBlock) {
      const int32_t j = P.m_idx[q];
      if (op.skip_pair(r, j)) continue;
      table_add(keys, vals, tsize, j, mul_rn(a, P.m_val[q]));
    }
    __syncthreads();
  }

  // Extraction: score, filter, compact (order-preserving block scan).
  if (threadIdx.x == 0) s_written = 0;
  __syncthreads();
  for (int64_t s0 = 0; s0 < tsize; s0 += kBlock) {
    const int64_t s = s0 + threadIdx.x;
    int keep = 0;
    int32_t j = kEmpty;
    T score = T(0);
    if (s < tsize) {
      j = __ldcg(keys + s);
      if (j >= 0) keep = op.keep(r, j, __ldcg(vals + s), score) ? 1 : 0;
    }
    int pos = 0, total = 0;
    Scan(scan_tmp).ExclusiveSum(keep, pos, total);
    const int64_t w = s_written;
    if (keep) {
      cand_id[o + w + pos] = j;
      cand_key[o + w + pos] = ScoreKey<T>::encode(score);
    }
    __syncthreads();  // all have read s_written; scan_tmp may be reused
    if (threadIdx.x == 0) s_written = w + total;
    __syncthreads();
  }

  // Selection: keep the candidates whose key is >= the k_select-th largest.
  const int64_t found = s_written;
  if (k_select > 0 && found > k_select) {  // uniform across the block
    const uint64_t tau = block_kth_largest<8 * sizeof(T)>(cand_key + o, found, k_select, s_hist, &s_prefix, &s_want);
    if (threadIdx.x == 0) s_written = 0;
    __syncthreads();
    for (int64_t s0 = 0; s0 < found; s0 += kBlock) {
      const int64_t s = s0 + threadIdx.x;
      int keep = 0;
      int32_t j = 0;
      uint64_t key = 0;
      if (s < found) {
        j = cand_id[o + s];
        key = cand_key[o + s];
        keep = key >= tau ? 1 : 0;
      }
      int pos = 0, total = 0;
      Scan(scan_tmp).ExclusiveSum(keep, pos, total);
      const int64_t w = s_written;
      __syncthreads();  // in-place compaction: every read of this chunk precedes any write (w <= s0)
      if (keep) {
        cand_id[o + w + pos] = j;
        cand_key[o + w + pos] = key;
      }
      __syncthreads();
      if (threadIdx.x == 0) s_written = w + total;
      __syncthreads();
    }
  }
  if (threadIdx.x == 0) cnt[r] = s_written;
}

/// Segment bounds of the batch for the sort: [off[r] - base, + cnt[r]).
static __global__ void segments_kernel(int64_t row_begin, int64_t n_batch, const int64_t* __restrict__ off,
                                       int64_t base, const int64_t* __restrict__ cnt, int64_t* __restrict__ seg_begin,
                                       int64_t* __restrict__ seg_end) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n_batch; i += stride) {
    const int64_t r = row_begin + i;
    seg_begin[i] = off[r] - base;
    seg_end[i] = off[r] - base + cnt[r];
  }
}

/// A batch of sorted candidates, handed to the op's output step.
struct Batch {
  int64_t row_begin = 0, n_rows = 0;
  const int64_t* seg_begin = nullptr;  // per batch row
  const int64_t* cnt = nullptr;        // per row of L (global index)
  const int32_t* id = nullptr;
  const uint64_t* key = nullptr;
};

/// Largest candidate extent of one row and of one batch: the segmented sorts
/// take it as their item count / segment size (32-bit in CUB before CCCL 3).
constexpr int64_t kMaxExtent = 0x7fffffffLL;

/// Candidate-slot budget of one batch: about a quarter of the free device
/// memory at ~48 bytes per slot (table, candidates, sort scratch), between
/// 2^20 and 2^26 slots, and never less than the largest row needs.
inline int64_t batch_budget(int64_t largest_row) {
  size_t free_b = 0, total_b = 0;
  mem_info(free_b, total_b);
  int64_t budget = static_cast<int64_t>(free_b / 4 / 48);
  budget = std::max<int64_t>(budget, int64_t(1) << 20);
  budget = std::min<int64_t>(budget, int64_t(1) << 26);
  if (const char* env = std::getenv("COHORTREC_CUDA_BATCH_SLOTS")) {  // tests: force many small batches
    const long long v = std::atoll(env);
    if (v > 0) budget = v;
  }
  budget = std::min<int64_t>(budget, kMaxExtent);  // a batch is one sort of at most 2^31 - 1 items
  return std::max(budget, largest_row);
}

/// Runs the engine over all rows of P; rows keep their best `k_select`
/// candidates (and ties; 0 = all). `plan(h_off)` is called once with
/// the host copy of the candidate-slot offsets (h_off[r+1] - h_off[r] bounds
/// the candidates of row r); `emit(const Batch&)` is called on the host once
/// per batch (stream-ordered, no synchronisation needed) to turn the batch's
/// sorted candidates into output. Every row belongs to exactly one batch.
template <typename T, class Op, class Plan, class Emit>
void run(const Problem<T>& P, const Op& op, int64_t k_select, Plan&& plan, Emit&& emit, cudaStream_t stream) {
  const int64_t n = P.n_rows;
  if (n == 0) return;
  DeviceBuffer caps = device_alloc<int64_t>(n + 1, stream);
  DeviceBuffer off = device_alloc<int64_t>(n + 1, stream);
  row_caps_kernel<T, Op><<<grid_for(n + 1, 256), 256, 0, stream>>>(P, op, caps.as<int64_t>());
  CHECK_LAUNCH("row_caps_kernel", stream);
  exclusive_sum_i64(caps.as<int64_t>(), off.as<int64_t>(), n + 1, stream);
  std::vector<int64_t> h_off(static_cast<size_t>(n) + 1);
  to_host(h_off.data(), off.get(), (n + 1) * sizeof(int64_t), stream);
  caps.release();

  int64_t largest = 0, largest_row = 0;
  for (int64_t r = 0; r < n; ++r)
    if (h_off[r + 1] - h_off[r] > largest) {
      largest = h_off[r + 1] - h_off[r];
      largest_row = r;
    }
  // One row is one segment of the sorts (and its table has 2 x extent
  // slots, hashed exactly only below 2^32): refuse rather than truncate.
  if (largest > kMaxExtent)
    throw std::invalid_argument("row " + std::to_string(largest_row) + " of the left matrix reaches " +
                                std::to_string(largest) +
                                " candidate columns; the GPU kernels handle at most 2**31 - 1 per row "
                                "(use device='cpu')");
  plan(static_cast<const std::vector<int64_t>&>(h_off));
  const int64_t budget = batch_budget(largest);

  // Plan the batches: maximal row ranges whose caps sum to <= budget.
  std::vector<int64_t> cuts{0};
  int64_t max_batch_rows = 0;
  while (cuts.back() < n) {
    const int64_t r0 = cuts.back();
    const auto it = std::upper_bound(h_off.begin() + r0 + 1, h_off.end(), h_off[r0] + budget);
    int64_t r1 = static_cast<int64_t>(it - h_off.begin()) - 1;
    r1 = std::min<int64_t>(std::max<int64_t>(r1, r0 + 1), std::min<int64_t>(n, r0 + 0x7fffffff));
    max_batch_rows = std::max(max_batch_rows, r1 - r0);
    cuts.push_back(r1);
  }
  int64_t max_extent = 0;
  for (size_t b = 0; b + 1 < cuts.size(); ++b) max_extent = std::max(max_extent, h_off[cuts[b + 1]] - h_off[cuts[b]]);

  // Table (2 slots per candidate slot) doubles as the sort's scratch: it is
  // dead once a batch's candidates are extracted.
  const int64_t ext = std::max<int64_t>(max_extent, 1);
  DeviceBuffer tkeys = device_alloc<int32_t>(2 * ext, stream);
  DeviceBuffer tvals = device_alloc<T>(std::max<int64_t>(2 * ext, (ext * 8 + sizeof(T) - 1) / sizeof(T)), stream);
  DeviceBuffer cand_id = device_alloc<int32_t>(ext, stream);
  DeviceBuffer cand_key = device_alloc<uint64_t>(ext, stream);
  DeviceBuffer cnt = device_alloc<int64_t>(n, stream);
  DeviceBuffer seg_b = device_alloc<int64_t>(std::max<int64_t>(max_batch_rows, 1), stream);
  DeviceBuffer seg_e = device_alloc<int64_t>(std::max<int64_t>(max_batch_rows, 1), stream);

  for (size_t b = 0; b + 1 < cuts.size(); ++b) {
    const int64_t r0 = cuts[b], r1 = cuts[b + 1], nb = r1 - r0;
    const int64_t base = h_off[r0], extent = h_off[r1] - h_off[r0];
    accumulate_kernel<T, Op><<<static_cast<unsigned>(nb), kBlock, 0, stream>>>(
        P, op, k_select, r0, off.as<int64_t>(), base, tkeys.as<int32_t>(), tvals.as<T>(), cand_id.as<int32_t>(),
        cand_key.as<uint64_t>(), cnt.as<int64_t>());
    CHECK_LAUNCH("accumulate_kernel", stream);
    segments_kernel<<<grid_for(nb, 256), 256, 0, stream>>>(r0, nb, off.as<int64_t>(), base, cnt.as<int64_t>(),
                                                           seg_b.as<int64_t>(), seg_e.as<int64_t>());
    CHECK_LAUNCH("segments_kernel", stream);
    if (extent > 0)
      sort_candidates(cand_id.as<int32_t>(), cand_key.as<uint64_t>(), tkeys.as<int32_t>(),
                      reinterpret_cast<uint64_t*>(tvals.get()), extent, nb, seg_b.as<int64_t>(), seg_e.as<int64_t>(),
                      stream);
    Batch batch;
    batch.row_begin = r0;
    batch.n_rows = nb;
    batch.seg_begin = seg_b.as<int64_t>();
    batch.cnt = cnt.as<int64_t>();
    batch.id = cand_id.as<int32_t>();
    batch.key = cand_key.as<uint64_t>();
    emit(batch);
  }
}

}  // namespace cohortrec::cuda::rowwise
