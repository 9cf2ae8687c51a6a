// Bindings of the evaluation kernels (cohortrec.evaluation): hits, per-user DCG/AP sums, item counts.
// J = dtype of the recommended ids, I = of the test CSR indices.
#include "bindings/common.hpp"
#include "cpu/ranking_metrics.hpp"

namespace cohortrec::bindings {
namespace {

template <typename J, typename I>
void bind_t(py::module_& m) {
  m.def(
      "ranking_hits",
      [](const CArray<J>& recs, const CArray<int64_t>& rows, const CArray<int64_t>& t_ptr, const CArray<I>& t_idx,
         int64_t n_items, CArray<bool>& hits, int n_threads) {
        if (recs.ndim() != 2 || hits.ndim() != 2 || hits.shape(0) != recs.shape(0) || hits.shape(1) != recs.shape(1))
          throw std::invalid_argument("recs and hits must be (u, K) arrays");
        const int64_t u = recs.shape(0), K = recs.shape(1);
        check_out(rows, u, "rows");
        const int64_t t_rows = checked_test_rows(t_ptr, t_idx);
        const int64_t* tp = t_ptr.data();
        const J* rc = recs.data();
        const int64_t* rw = rows.data();
        const I* ti = t_idx.data();
        auto* h = reinterpret_cast<uint8_t*>(hits.mutable_data());
        py::gil_scoped_release release;
        cpu::ranking_hits<J, I>(rc, u, K, rw, tp, t_rows, ti, n_items, h, n_threads);
      },
      py::arg("recs").noconvert(), py::arg("rows").noconvert(), py::arg("test_indptr").noconvert(),
      py::arg("test_indices").noconvert(), py::arg("n_items"), py::arg("hits").noconvert(), py::arg("n_threads"),
      "hits[r, q] = recs[r, q] is stored in test row rows[r] (into a pre-allocated bool (u, K) array).");

  m.def(
      "ranking_hit_stats",
      [](const CArray<J>& recs, const CArray<int64_t>& rows, const CArray<int64_t>& t_ptr, const CArray<I>& t_idx,
         int64_t n_items, const CArray<int64_t>& ks, const CArray<double>& disc, CArray<double>& n_hits,
         CArray<double>& dcg, CArray<double>& ap, int n_threads) {
        if (recs.ndim() != 2) throw std::invalid_argument("recs must be a (u, K) array");
        const int64_t u = recs.shape(0), K = recs.shape(1);
        check_out(rows, u, "rows");
        if (ks.ndim() != 1 || ks.shape(0) < 1) throw std::invalid_argument("ks must be 1-D, non-empty");
        const int64_t n_k = ks.shape(0);
        const int64_t* kp = ks.data();
        if (disc.ndim() != 1 || disc.shape(0) < std::min(kp[n_k - 1], K))
          throw std::invalid_argument("disc must hold min(max(ks), K) discounts");
        for (const CArray<double>* a : {&n_hits, &dcg, &ap})
          if (a->ndim() != 2 || a->shape(0) != n_k || a->shape(1) != u)
            throw std::invalid_argument("n_hits, dcg and ap must be (len(ks), u) arrays");
        const int64_t t_rows = checked_test_rows(t_ptr, t_idx);
        const int64_t* tp = t_ptr.data();
        const J* rc = recs.data();
        const int64_t* rw = rows.data();
        const I* ti = t_idx.data();
        const double* dp = disc.data();
        double* hp = n_hits.mutable_data();
        double* gp = dcg.mutable_data();
        double* ap_ = ap.mutable_data();
        py::gil_scoped_release release;
        cpu::ranking_hit_stats<J, I>(rc, u, K, rw, tp, t_rows, ti, n_items, kp, n_k, dp, hp, gp, ap_, n_threads);
      },
      py::arg("recs").noconvert(), py::arg("rows").noconvert(), py::arg("test_indptr").noconvert(),
      py::arg("test_indices").noconvert(), py::arg("n_items"), py::arg("ks").noconvert(), py::arg("disc").noconvert(),
      py::arg("n_hits").noconvert(), py::arg("dcg").noconvert(), py::arg("ap").noconvert(), py::arg("n_threads"),
      "Per-user hits, DCG and AP sums at increasing cut-offs ks (into (len(ks), u) float64 arrays).");
}

template <typename J>
void bind_counts_t(py::module_& m) {
  m.def(
      "item_counts",
      [](const CArray<J>& recs, const CArray<int64_t>& cuts, int64_t n_items, CArray<int64_t>& counts, int n_threads) {
        if (recs.ndim() != 2) throw std::invalid_argument("recs must be a (u, K) array");
        if (cuts.ndim() != 1 || cuts.shape(0) < 1) throw std::invalid_argument("cuts must be 1-D, non-empty");
        const int64_t n_blocks = cuts.shape(0) - 1;
        if (counts.ndim() != 2 || counts.shape(0) != n_blocks || counts.shape(1) != n_items)
          throw std::invalid_argument("counts must be a (len(cuts) - 1, n_items) array");
        const J* rc = recs.data();
        const int64_t u = recs.shape(0), K = recs.shape(1);
        const int64_t* c = cuts.data();
        int64_t* out = counts.mutable_data();
        py::gil_scoped_release release;
        cpu::item_counts<J>(rc, u, K, c, n_blocks, n_items, out, n_threads);
      },
      py::arg("recs").noconvert(), py::arg("cuts").noconvert(), py::arg("n_items"), py::arg("counts").noconvert(),
      py::arg("n_threads"), "Occurrences of every item in column blocks [cuts[b], cuts[b+1]) of recs.");
}

}  // namespace

void bind_ranking(py::module_& m) {
  bind_t<int32_t, int32_t>(m);
  bind_t<int32_t, int64_t>(m);
  bind_t<int64_t, int32_t>(m);
  bind_t<int64_t, int64_t>(m);
  bind_counts_t<int32_t>(m);
  bind_counts_t<int64_t>(m);
}

}  // namespace cohortrec::bindings
