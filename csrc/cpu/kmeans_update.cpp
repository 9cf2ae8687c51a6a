#include "cpu/kmeans_update.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "common/parallel.hpp"

namespace cohortrec::cpu {
namespace {

constexpr int64_t kSegmentRows = 4096;
// Sums are accumulated in float64, where finite float32 data cannot overflow:
// a non-finite sum means a NaN/inf in X (or float64 data summing past 1e308).
constexpr const char* kNonFinite = "contains NaN or infinite values (or its sums overflow float64)";

/// Rows grouped by label (stable), and the segments that cut each group.
struct Grouping {
  std::vector<int64_t> order;        // row ids sorted by label, stable
  std::vector<int64_t> offsets;      // k + 1 group boundaries into `order`
  std::vector<int64_t> seg_begin;    // segment s covers order[seg_begin[s], seg_begin[s+1])
  std::vector<int64_t> cluster_seg;  // k + 1 boundaries into the segment list
};

Grouping group_by_label(const int64_t* labels, int64_t n, int64_t k, int n_threads) {
  // Chunking depends on n only (never on n_threads) so the order is fixed.
  const int64_t chunk = std::max<int64_t>(65536, (n + 63) / 64);
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  std::vector<int64_t> hist(static_cast<size_t>(n_chunks * k), 0);
  parallel_for(n_chunks, n_threads, [&](int64_t c) {
    int64_t* h = hist.data() + c * k;
    const int64_t r1 = std::min(n, (c + 1) * chunk);
    for (int64_t i = c * chunk; i < r1; ++i) {
      const int64_t l = labels[i];
      if (l < 0 || l >= k) throw std::out_of_range("labels must lie in [0, n_clusters)");
      ++h[l];
    }
  });
  Grouping g;
  g.offsets.assign(static_cast<size_t>(k) + 1, 0);
  // Exclusive prefix over (label, chunk) so each chunk knows where to write.
  int64_t pos = 0;
  for (int64_t l = 0; l < k; ++l) {
    g.offsets[l] = pos;
    for (int64_t c = 0; c < n_chunks; ++c) {
      const int64_t cnt = hist[c * k + l];
      hist[c * k + l] = pos;
      pos += cnt;
    }
  }
  g.offsets[k] = pos;
  g.order.resize(static_cast<size_t>(n));
  parallel_for(n_chunks, n_threads, [&](int64_t c) {
    int64_t* h = hist.data() + c * k;
    const int64_t r1 = std::min(n, (c + 1) * chunk);
    for (int64_t i = c * chunk; i < r1; ++i) g.order[h[labels[i]]++] = i;
  });
  g.cluster_seg.assign(static_cast<size_t>(k) + 1, 0);
  for (int64_t l = 0; l < k; ++l) {
    g.cluster_seg[l] = static_cast<int64_t>(g.seg_begin.size());
    for (int64_t s = g.offsets[l]; s < g.offsets[l + 1]; s += kSegmentRows) g.seg_begin.push_back(s);
  }
  g.cluster_seg[k] = static_cast<int64_t>(g.seg_begin.size());
  return g;
}

/// Runs add_row(acc, row, w) over every segment into float64 partials, then
/// adds each cluster's partials in segment order.
template <typename T, class AddRow>
void segmented_sums(const Grouping& g, int64_t k, int64_t d, const T* weights, T* sums, T* counts, int n_threads,
                    AddRow&& add_row) {
  const int64_t n_seg = static_cast<int64_t>(g.seg_begin.size());
  std::vector<double> part(static_cast<size_t>(n_seg * d), 0.0);
  std::vector<double> wsum(static_cast<size_t>(n_seg), 0.0);
  std::vector<int64_t> seg_end(static_cast<size_t>(n_seg));
  for (int64_t l = 0; l < k; ++l)
    for (int64_t s = g.cluster_seg[l]; s < g.cluster_seg[l + 1]; ++s)
      seg_end[s] = std::min(g.seg_begin[s] + kSegmentRows, g.offsets[l + 1]);
  parallel_for(n_seg, n_threads, [&](int64_t s) {
    double* acc = part.data() + s * d;
    double ws = 0.0;
    const int64_t e = seg_end[s];
    for (int64_t q = g.seg_begin[s]; q < e; ++q) {
      if (q + 8 < e) add_row.prefetch(g.order[q + 8]);
      const int64_t i = g.order[q];
      const double w = weights ? double(weights[i]) : 1.0;
      add_row(acc, i, w);
      ws += w;
    }
    wsum[s] = ws;
  });
  std::atomic<bool> nonfinite{false};
  parallel_for(k, n_threads, [&](int64_t l) {
    T* out = sums + l * d;
    double ws = 0.0;
    std::vector<double> tot(static_cast<size_t>(d), 0.0);
    for (int64_t s = g.cluster_seg[l]; s < g.cluster_seg[l + 1]; ++s) {
      const double* p = part.data() + s * d;
      for (int64_t t = 0; t < d; ++t) tot[t] += p[t];
      ws += wsum[s];
    }
    for (int64_t t = 0; t < d; ++t) {
      if (!std::isfinite(tot[t])) nonfinite.store(true, std::memory_order_relaxed);
      out[t] = static_cast<T>(tot[t]);
    }
    counts[l] = static_cast<T>(ws);
  });
  if (nonfinite.load()) throw std::invalid_argument(kNonFinite);
}

template <typename T>
struct DenseRowAdder {
  const DenseMatrix<T>& X;
  void prefetch(int64_t i) const { __builtin_prefetch(X.data + i * X.row_stride); }
  void operator()(double* acc, int64_t i, double w) const {
    const T* x = X.data + i * X.row_stride;
    const int64_t d = X.n_cols;
    if (X.col_stride == 1) {
      if (w == 1.0)
        for (int64_t t = 0; t < d; ++t) acc[t] += double(x[t]);
      else
        for (int64_t t = 0; t < d; ++t) acc[t] += w * double(x[t]);
    } else {
      for (int64_t t = 0; t < d; ++t) acc[t] += w * double(x[t * X.col_stride]);
    }
  }
};

template <typename T, typename I>
struct CsrRowAdder {
  const CsrView<T, I>& X;
  void prefetch(int64_t i) const { __builtin_prefetch(X.indices + X.indptr[i]); }
  void operator()(double* acc, int64_t i, double w) const {
    for (int64_t e = X.indptr[i]; e < X.indptr[i + 1]; ++e) acc[X.indices[e]] += w * double(X.data[e]);
  }
};

/// Streaming alternative for small k * d: rows are read in order, each
/// fixed-size chunk adds into its own k x d float64 partial (which stays in
/// cache), and the partials are added in chunk order. Chunking depends only
/// on n, so this too is bit-identical for any thread count.
constexpr int64_t kStreamMaxCells = 1 << 16;  // k * d doubles = 512 KiB per partial

/// `before_chunk(r0, r1)` runs first in each chunk's task (kmeans_step uses
/// it to assign the chunk's rows while they are still in cache).
template <typename T, class AddRow, class BeforeChunk>
void streamed_sums(const int64_t* labels, int64_t n, int64_t k, int64_t d, const T* weights, T* sums, T* counts,
                   int n_threads, AddRow&& add_row, BeforeChunk&& before_chunk) {
  const int64_t chunk = std::max<int64_t>(16384, (n + 63) / 64);
  const int64_t n_chunks = std::max<int64_t>(1, (n + chunk - 1) / chunk);
  std::vector<double> part(static_cast<size_t>(n_chunks * k * d), 0.0);
  std::vector<double> wpart(static_cast<size_t>(n_chunks * k), 0.0);
  parallel_for(n_chunks, n_threads, [&](int64_t c) {
    double* acc = part.data() + c * k * d;
    double* wacc = wpart.data() + c * k;
    const int64_t r1 = std::min(n, (c + 1) * chunk);
    if (c * chunk < r1) before_chunk(c * chunk, r1);
    for (int64_t i = c * chunk; i < r1; ++i) {
      const int64_t l = labels[i];
      if (l < 0 || l >= k) throw std::out_of_range("labels must lie in [0, n_clusters)");
      const double w = weights ? double(weights[i]) : 1.0;
      add_row(acc + l * d, i, w);
      wacc[l] += w;
    }
  });
  std::atomic<bool> nonfinite{false};
  parallel_for(k, n_threads, [&](int64_t l) {
    for (int64_t t = 0; t < d; ++t) {
      double s = 0.0;
      for (int64_t c = 0; c < n_chunks; ++c) s += part[(c * k + l) * d + t];
      if (!std::isfinite(s)) nonfinite.store(true, std::memory_order_relaxed);
      sums[l * d + t] = static_cast<T>(s);
    }
    double ws = 0.0;
    for (int64_t c = 0; c < n_chunks; ++c) ws += wpart[c * k + l];
    counts[l] = static_cast<T>(ws);
  });
  if (nonfinite.load()) throw std::invalid_argument(kNonFinite);
}

template <typename T, class AddRow>
void cluster_sums(const int64_t* labels, int64_t n, int64_t k, int64_t d, const T* weights, T* sums, T* counts,
                  int n_threads, AddRow&& add_row) {
  if (k * d <= kStreamMaxCells) {
    streamed_sums<T>(labels, n, k, d, weights, sums, counts, n_threads, add_row, [](int64_t, int64_t) {});
  } else {
    const Grouping g = group_by_label(labels, n, k, n_threads);
    segmented_sums<T>(g, k, d, weights, sums, counts, n_threads, add_row);
  }
}

}  // namespace

template <typename T>
void kmeans_update_dense(const DenseMatrix<T>& X, const int64_t* labels, int64_t k, const T* weights, T* sums,
                         T* counts, int n_threads) {
  if (k < 1) throw std::invalid_argument("n_clusters must be >= 1");
  cluster_sums<T>(labels, X.n_rows, k, X.n_cols, weights, sums, counts, n_threads, DenseRowAdder<T>{X});
}

template <typename T>
void kmeans_step_dense(const DenseMatrix<T>& X, const T* centers, int64_t k, const T* weights, int64_t* labels,
                       T* sq_dist, T* sums, T* counts, int n_threads) {
  if (k < 1) throw std::invalid_argument("centers must hold at least one centre");
  if (k * X.n_cols > kStreamMaxCells) {  // segmented update: it needs every label first
    kmeans_assign_dense<T>(X, centers, k, labels, sq_dist, n_threads);
    kmeans_update_dense<T>(X, labels, k, weights, sums, counts, n_threads);
    return;
  }
  // Same chunks as kmeans_update's streamed sums (so the same bits), each
  // chunk assigned on one thread just before its rows are summed.
  streamed_sums<T>(labels, X.n_rows, k, X.n_cols, weights, sums, counts, n_threads, DenseRowAdder<T>{X},
                   [&](int64_t r0, int64_t r1) {
                     DenseMatrix<T> rows = X;
                     rows.data = X.data + r0 * X.row_stride;
                     rows.n_rows = r1 - r0;
                     kmeans_assign_dense<T>(rows, centers, k, labels + r0, sq_dist + r0, 1);
                   });
}

template <typename T, typename I>
void kmeans_update_csr(const CsrView<T, I>& X, const int64_t* labels, int64_t k, const T* weights, T* sums, T* counts,
                       int n_threads) {
  if (k < 1) throw std::invalid_argument("n_clusters must be >= 1");
  cluster_sums<T>(labels, X.n_rows, k, X.n_cols, weights, sums, counts, n_threads, CsrRowAdder<T, I>{X});
}

template void kmeans_update_dense<float>(const DenseMatrix<float>&, const int64_t*, int64_t, const float*, float*,
                                         float*, int);
template void kmeans_update_dense<double>(const DenseMatrix<double>&, const int64_t*, int64_t, const double*, double*,
                                          double*, int);
template void kmeans_step_dense<float>(const DenseMatrix<float>&, const float*, int64_t, const float*, int64_t*, float*,
                                       float*, float*, int);
template void kmeans_step_dense<double>(const DenseMatrix<double>&, const double*, int64_t, const double*, int64_t*,
                                        double*, double*, double*, int);
template void kmeans_update_csr<float, int32_t>(const CsrView<float, int32_t>&, const int64_t*, int64_t, const float*,
                                                float*, float*, int);
template void kmeans_update_csr<float, int64_t>(const CsrView<float, int64_t>&, const int64_t*, int64_t, const float*,
                                                float*, float*, int);
template void kmeans_update_csr<double, int32_t>(const CsrView<double, int32_t>&, const int64_t*, int64_t,
                                                 const double*, double*, double*, int);
template void kmeans_update_csr<double, int64_t>(const CsrView<double, int64_t>&, const int64_t*, int64_t,
                                                 const double*, double*, double*, int);

}  // namespace cohortrec::cpu
