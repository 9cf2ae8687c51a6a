#include "cpu/topk_scores.hpp"

#include <stdexcept>

#include "common/parallel.hpp"
#include "common/sparse_accumulator.hpp"
#include "common/topk.hpp"

namespace cohortrec::cpu {

template <typename T, typename I>
void topk_scores(const CsrView<T, I>& W, const CsrView<T, I>& R, const CsrView<T, I>* exclude, int64_t n,
                 int64_t* items, T* scores, int n_threads) {
  if (W.n_cols != R.n_rows) throw std::invalid_argument("W.shape[1] must equal R.shape[0]");
  if (exclude && (exclude->n_rows != W.n_rows || exclude->n_cols != R.n_cols))
    throw std::invalid_argument("exclude must have shape (W.shape[0], R.shape[1])");
  if (n < 0) throw std::invalid_argument("n must be >= 0");
  const int64_t u = W.n_rows, m = R.n_cols;
  if (u == 0 || m == 0 || n == 0) return;

  constexpr int64_t kRowsPerTask = 64;
  const int64_t n_tasks = (u + kRowsPerTask - 1) / kRowsPerTask;
  struct State {
    SparseAccumulator<T, int64_t> acc;
    TopK<T, int64_t> top;
  };
  parallel_tasks(
      n_tasks, n_threads,
      [&] {
        State st{SparseAccumulator<T, int64_t>(m), TopK<T, int64_t>(n)};
        if (exclude) st.acc.enable_exclusion();
        return st;
      },
      [&](State& st, int64_t task) {
        const int64_t r0 = task * kRowsPerTask, r1 = std::min(u, r0 + kRowsPerTask);
        for (int64_t r = r0; r < r1; ++r) {
          int64_t work = 0;
          for (int64_t e = W.indptr[r]; e < W.indptr[r + 1]; ++e) {
            const int64_t j = W.indices[e];
            work += R.indptr[j + 1] - R.indptr[j];
          }
          st.acc.start_row(work);
          for (int64_t e = W.indptr[r]; e < W.indptr[r + 1]; ++e) {
            const T w = W.data[e];
            if (w == T(0)) continue;
            const int64_t j = W.indices[e];
            st.acc.axpy(w, R.indices, R.data, R.indptr[j], R.indptr[j + 1]);
          }
          if (exclude)
            for (int64_t e = exclude->indptr[r]; e < exclude->indptr[r + 1]; ++e)
              st.acc.exclude(static_cast<int64_t>(exclude->indices[e]));
          st.top.clear();
          st.acc.drain_scored(
              T(1), nullptr, [&] { return st.top.floor(); },
              [&](int64_t j, T v) {
                if (exclude && st.acc.excluded(j)) return;
                st.top.push(v, j);
              });
          const auto& best = st.top.sorted();
          int64_t* it = items + r * n;
          T* sc = scores + r * n;
          for (size_t q = 0; q < best.size(); ++q) {
            it[q] = best[q].id;
            sc[q] = best[q].score;
          }
        }
      });
}

template void topk_scores<float, int32_t>(const CsrView<float, int32_t>&, const CsrView<float, int32_t>&,
                                          const CsrView<float, int32_t>*, int64_t, int64_t*, float*, int);
template void topk_scores<float, int64_t>(const CsrView<float, int64_t>&, const CsrView<float, int64_t>&,
                                          const CsrView<float, int64_t>*, int64_t, int64_t*, float*, int);
template void topk_scores<double, int32_t>(const CsrView<double, int32_t>&, const CsrView<double, int32_t>&,
                                           const CsrView<double, int32_t>*, int64_t, int64_t*, double*, int);
template void topk_scores<double, int64_t>(const CsrView<double, int64_t>&, const CsrView<double, int64_t>&,
                                           const CsrView<double, int64_t>*, int64_t, int64_t*, double*, int);

}  // namespace cohortrec::cpu
