#pragma once
// Row-by-row sparse product (Gustavson 1978, "Two fast algorithms for sparse
// matrices") with a dense per-thread accumulator.
//
// For one sparse row a, accumulates acc[j] = sum_c a[c] * Bt[c, j] over the
// columns c of a, and records every j reached (whether or not the sum ends
// up 0) in a bitmap. Between rows both the accumulator and the bitmap are
// all-zero, so nothing is cleared wholesale: memory is O(p) per thread,
// never O(n * p).
//
// Two ways to find the touched ids, chosen per row from its work bound:
//  * dense rows (work >= p / 16): scan the bitmap (p / 64 words, in L1 for
//    p up to ~10^5) -- no per-update bookkeeping beyond one OR, and the
//    candidates come out in increasing id order (sequential reads);
//  * sparse rows: also append first-touched ids to a list, so extraction
//    costs O(touched) rather than O(p / 64).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace cohortrec {

/// Population count without a libgcc call: the generic x86-64 build has no
/// POPCNT instruction, and __builtin_popcountll would call __popcountdi2 for
/// every bitmap word (SWAR count, Hacker's Delight 5-1).
inline int popcount64(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
}

template <typename T, typename J>
class SparseAccumulator {
 public:
  explicit SparseAccumulator(int64_t width)
      : width_(width),
        acc_(static_cast<size_t>(width), T(0)),
        bits_(static_cast<size_t>((width + 63) / 64), 0),
        touched_(static_cast<size_t>(width)) {}

  /// Starts a row whose work (sum of the lengths of the rows of Bt it will
  /// visit) is `work`; that bound picks the extraction strategy.
  void start_row(int64_t work) {
    list_mode_ = work * 16 < width_;
    n_touched_ = 0;
    if (!excl_.empty() && ++epoch_ == std::numeric_limits<uint32_t>::max()) {
      std::fill(excl_.begin(), excl_.end(), 0u);
      epoch_ = 1;
    }
  }

  /// acc[idx[e]] += a * val[e] for e in [begin, end).
  template <typename I2>
  inline void axpy(T a, const I2* idx, const T* val, int64_t begin, int64_t end) {
    T* acc = acc_.data();
    uint64_t* bits = bits_.data();
    if (!list_mode_) {
      for (int64_t e = begin; e < end; ++e) {
        const int64_t j = static_cast<int64_t>(idx[e]);
        acc[j] += a * val[e];
        bits[j >> 6] |= uint64_t(1) << (j & 63);
      }
      return;
    }
    J* touched = touched_.data();
    int64_t nt = n_touched_;
    for (int64_t e = begin; e < end; ++e) {
      const int64_t j = static_cast<int64_t>(idx[e]);
      acc[j] += a * val[e];
      const uint64_t m = uint64_t(1) << (j & 63);
      const uint64_t w = bits[j >> 6];
      bits[j >> 6] = w | m;
      touched[nt] = static_cast<J>(j);
      nt += (w & m) ? 0 : 1;  // branch-free first-touch bookkeeping
    }
    n_touched_ = nt;
  }

  /// acc[idx[e]] += a * val[e] without recording what was touched: for
  /// rows drained by drain_positive().
  template <typename I2>
  inline void axpy_untracked(T a, const I2* idx, const T* val, int64_t begin, int64_t end) {
    T* acc = acc_.data();
    for (int64_t e = begin; e < end; ++e) acc[static_cast<int64_t>(idx[e])] += a * val[e];
  }

  /// After axpy_untracked() with positive products only: visits, in
  /// increasing id order, every j with acc[j] > 0 and acc[j] >= floor(),
  /// found by scanning the whole accumulator 64 entries at a time (cheaper
  /// than walking a bitmap once more than ~1/8 of the ids are touched), and
  /// restores the all-zero state.
  template <class Floor, class Visit>
  inline void drain_positive(Floor&& floor, Visit&& visit) {
    T* acc = acc_.data();
    const T tiny = std::numeric_limits<T>::denorm_min();
    for (int64_t j0 = 0; j0 < width_; j0 += 64) {
      const int64_t len = std::min<int64_t>(64, width_ - j0);
      T* a = acc + j0;
      const T f = std::max(floor(), tiny);
      int any = 0;
      for (int64_t t = 0; t < len; ++t) any |= a[t] >= f;
      if (any) {
        for (int64_t t = 0; t < len; ++t) {
          const T s = a[t];
          if (s >= f && s >= floor()) visit(static_cast<J>(j0 + t), s);
        }
      }
      for (int64_t t = 0; t < len; ++t) a[t] = T(0);
    }
  }

  /// Calls visit(j, acc[j]) once for every touched j and restores the
  /// all-zero state.
  template <class Visit>
  inline void drain(Visit&& visit) {
    T* acc = acc_.data();
    uint64_t* bits = bits_.data();
    if (list_mode_) {
      const J* touched = touched_.data();
      for (int64_t q = 0; q < n_touched_; ++q) {
        const int64_t j = static_cast<int64_t>(touched[q]);
        visit(static_cast<J>(j), acc[j]);
        acc[j] = T(0);
        bits[j >> 6] = 0;
      }
      return;
    }
    drain_ordered(visit);
  }

  /// Like drain(), but always in increasing id order (scans the bitmap,
  /// which both modes maintain).
  template <class Visit>
  inline void drain_ordered(Visit&& visit) {
    T* acc = acc_.data();
    uint64_t* bits = bits_.data();
    const int64_t n_words = static_cast<int64_t>(bits_.size());
    for (int64_t w = 0; w < n_words; ++w) {
      uint64_t word = bits[w];
      if (!word) continue;
      bits[w] = 0;
      do {
        const int64_t j = (w << 6) + __builtin_ctzll(word);
        visit(static_cast<J>(j), acc[j]);
        acc[j] = T(0);
        word &= word - 1;
      } while (word);
    }
  }

  /// Like drain(), but hands out scores s_j = acc[j] * row_scale *
  /// col_scale[j] (col_scale may be null) and lets the caller skip hopeless
  /// ones cheaply: for densely touched 64-id words -- the common case when
  /// popular columns make most pairs candidates -- all 64 scores are
  /// computed and compared with `floor()` (the worst score still accepted)
  /// in vectorisable loops, and only those >= floor reach visit(j, s).
  /// Words with few touched ids take the scalar path.
  template <class Floor, class Visit>
  inline void drain_scored(T row_scale, const T* col_scale, Floor&& floor, Visit&& visit) {
    if (list_mode_) {
      drain([&](J j, T v) { visit(j, col_scale ? v * row_scale * col_scale[j] : v * row_scale); });
      return;
    }
    T* acc = acc_.data();
    uint64_t* bits = bits_.data();
    const int64_t n_words = static_cast<int64_t>(bits_.size());
    alignas(64) T sc[64];
    for (int64_t w = 0; w < n_words; ++w) {
      uint64_t word = bits[w];
      if (!word) continue;
      bits[w] = 0;
      const int64_t j0 = w << 6;
      if (popcount64(word) >= 12 && j0 + 64 <= width_) {
        // Untouched slots hold acc = 0 and are masked out by `word` below.
        T* a = acc + j0;
        if (col_scale) {
          const T* cs = col_scale + j0;
          for (int t = 0; t < 64; ++t) sc[t] = a[t] * row_scale * cs[t];
        } else {
          for (int t = 0; t < 64; ++t) sc[t] = a[t] * row_scale;
        }
        for (int t = 0; t < 64; ++t) a[t] = T(0);
        const T f = floor();
        int any = 0;
        for (int t = 0; t < 64; ++t) any |= sc[t] >= f;
        if (!any) continue;
        do {
          const int t = __builtin_ctzll(word);
          if (sc[t] >= floor()) visit(static_cast<J>(j0 + t), sc[t]);
          word &= word - 1;
        } while (word);
        continue;
      }
      const T f = floor();
      do {
        const int64_t j = j0 + __builtin_ctzll(word);
        const T sj = col_scale ? acc[j] * row_scale * col_scale[j] : acc[j] * row_scale;
        if (sj >= f) visit(static_cast<J>(j), sj);  // the floor only rises: f is a safe bound
        acc[j] = T(0);
        word &= word - 1;
      } while (word);
    }
  }

  /// Excluded ids (topk_scores): epoch-stamped so they need no clearing.
  void enable_exclusion() {
    excl_.assign(static_cast<size_t>(width_), 0u);
    epoch_ = 0;
  }
  void exclude(int64_t j) { excl_[j] = epoch_; }
  bool excluded(int64_t j) const { return excl_[j] == epoch_; }

 private:
  int64_t width_;
  std::vector<T> acc_;
  std::vector<uint64_t> bits_;
  std::vector<J> touched_;
  std::vector<uint32_t> excl_;
  uint32_t epoch_ = 0;
  int64_t n_touched_ = 0;
  bool list_mode_ = false;
};

}  // namespace cohortrec
