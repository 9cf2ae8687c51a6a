#pragma once
// Row-by-row sparse product (Gustavson 1978, "Two fast algorithms for sparse
// matrices") with a dense per-thread accumulator.
//
// For one sparse row a, accumulates acc[j] = sum_c a[c] * Bt[c, j] over the
// columns c of a, and records every j reached (the "touched" list), whether
// or not the sum ends up 0. Marks are epoch-stamped so nothing is cleared
// between rows: memory is O(p) per thread, never O(n * p).
#include <cstdint>
#include <limits>
#include <vector>

namespace cohortrec {

template <typename T, typename J>
class SparseAccumulator {
 public:
  explicit SparseAccumulator(int64_t width)
      : acc_(static_cast<size_t>(width)), mark_(static_cast<size_t>(width), 0), touched_(static_cast<size_t>(width)) {}

  /// Starts a new row; returns nothing, invalidates the previous row's sums.
  void next_row() {
    if (++epoch_ == std::numeric_limits<uint32_t>::max()) {
      std::fill(mark_.begin(), mark_.end(), 0u);
      std::fill(excl_.begin(), excl_.end(), 0u);
      epoch_ = 1;
    }
    n_touched_ = 0;
  }

  /// acc[idx[e]] += a * val[e] for e in [begin, end).
  /// Branch-free first-touch handling: the marker decides between "start
  /// from 0" and "add", so the unpredictable first-touch branch of the
  /// textbook version (SciPy's csr_matmat) becomes two conditional moves.
  template <typename I2>
  inline void axpy(T a, const I2* idx, const T* val, int64_t begin, int64_t end) {
    T* acc = acc_.data();
    uint32_t* mark = mark_.data();
    J* touched = touched_.data();
    const uint32_t ep = epoch_;
    int64_t nt = n_touched_;
    for (int64_t e = begin; e < end; ++e) {
      const J j = static_cast<J>(idx[e]);
      const bool seen = mark[j] == ep;
      const T prev = seen ? acc[j] : T(0);
      acc[j] = prev + a * val[e];
      mark[j] = ep;
      touched[nt] = j;
      nt += seen ? 0 : 1;
    }
    n_touched_ = nt;
  }

  int64_t n_touched() const { return n_touched_; }
  const J* touched() const { return touched_.data(); }
  T value(J j) const { return acc_[j]; }

  /// Separate marker set for excluded ids (same epoch).
  void enable_exclusion(int64_t width) { excl_.assign(static_cast<size_t>(width), 0u); }
  void exclude(J j) { excl_[j] = epoch_; }
  bool excluded(J j) const { return excl_[j] == epoch_; }

 private:
  std::vector<T> acc_;
  std::vector<uint32_t> mark_;
  std::vector<J> touched_;
  std::vector<uint32_t> excl_;
  uint32_t epoch_ = 0;
  int64_t n_touched_ = 0;
};

}  // namespace cohortrec
