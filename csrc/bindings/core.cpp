// pybind11 bindings of the CPU kernels: cohortrec._core.
//
// Thin by design: every array argument must already have the exact dtype
// (`.noconvert()`), so a mismatch raises instead of being copied silently.
// Conversion, validation and error messages that name the user's argument
// live in python/cohortrec/ops/. Compute runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/parallel.hpp"
#include "cpu/cosine_topk.hpp"
#include "cpu/kmeans_assign.hpp"
#include "cpu/kmeans_bounded.hpp"
#include "cpu/kmeans_plusplus.hpp"
#include "cpu/kmeans_update.hpp"
#include "cpu/ranking_metrics.hpp"
#include "cpu/topk_scores.hpp"

namespace py = pybind11;
using namespace cohortrec;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

/// Hands a std::vector to NumPy without copying.
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, {static_cast<py::ssize_t>(sizeof(T))},
                        heap->data(), owner);
}

template <typename T, typename I>
CsrView<T, I> csr_view(const CArray<int64_t>& indptr, const CArray<I>& indices, const CArray<T>& data,
                       int64_t n_rows, int64_t n_cols, const char* name) {
  if (indptr.ndim() != 1 || indptr.shape(0) != n_rows + 1)
    throw std::invalid_argument(std::string(name) + ": indptr must have n_rows + 1 entries");
  if (indices.ndim() != 1 || data.ndim() != 1 || indices.shape(0) != data.shape(0))
    throw std::invalid_argument(std::string(name) + ": indices and data must be 1-D of equal length");
  CsrView<T, I> v;
  v.n_rows = n_rows;
  v.n_cols = n_cols;
  v.indptr = indptr.data();
  v.indices = indices.data();
  v.data = data.data();
  if (n_rows > 0 && v.indptr[n_rows] > indices.shape(0))
    throw std::invalid_argument(std::string(name) + ": indptr[-1] exceeds the number of stored values");
  v.check(name);
  return v;
}

template <typename T>
cpu::DenseMatrix<T> dense_view(const py::array_t<T>& X, const char* name) {
  if (X.ndim() != 2) throw std::invalid_argument(std::string(name) + " must be 2-D");
  const auto item = static_cast<py::ssize_t>(sizeof(T));
  if (X.strides(0) % item || X.strides(1) % item)
    throw std::invalid_argument(std::string(name) + ": strides must be multiples of the item size");
  cpu::DenseMatrix<T> m;
  m.data = X.data();
  m.n_rows = X.shape(0);
  m.n_cols = X.shape(1);
  m.row_stride = X.strides(0) / item;
  m.col_stride = X.strides(1) / item;
  return m;
}

template <typename T>
void check_out(const CArray<T>& a, int64_t n, const char* name) {
  if (a.ndim() != 1 || a.shape(0) != n) throw std::invalid_argument(std::string(name) + " has the wrong length");
}

template <typename T, typename I>
void bind_sparse_ops(py::module_& m) {
  m.def(
      "cosine_topk",
      [](const CArray<int64_t>& a_ptr, const CArray<I>& a_idx, const CArray<T>& a_val, int64_t n, int64_t m_cols,
         std::optional<CArray<int64_t>> b_ptr, std::optional<CArray<I>> b_idx, std::optional<CArray<T>> b_val,
         int64_t p, int64_t k, std::optional<double> threshold, bool exclude_self, int n_threads,
         double dense_min_density) {
        const auto A = csr_view<T, I>(a_ptr, a_idx, a_val, n, m_cols, "A");
        const bool same = !b_ptr.has_value();
        CsrView<T, I> Bv;
        if (!same) Bv = csr_view<T, I>(*b_ptr, *b_idx, *b_val, p, m_cols, "B");
        const CsrView<T, I>& B = same ? A : Bv;
        cpu::CosineTopkParams params;
        params.k = k;
        params.has_threshold = threshold.has_value();
        params.threshold = threshold.value_or(0.0);
        params.exclude_self = same && exclude_self;
        params.n_threads = n_threads;
        params.dense_min_density = dense_min_density;
        auto run = [&](auto tag) -> py::tuple {
          using J = decltype(tag);
          CsrResult<T, J> r;
          {
            py::gil_scoped_release release;
            r = cpu::cosine_topk<T, I, J>(A, B, params);
          }
          return py::tuple(py::make_tuple(to_numpy(std::move(r.indptr)), to_numpy(std::move(r.indices)),
                                          to_numpy(std::move(r.data))));
        };
        if (B.n_rows <= std::numeric_limits<int32_t>::max()) return run(int32_t{});
        return run(int64_t{});
      },
      py::arg("a_indptr").noconvert(), py::arg("a_indices").noconvert(), py::arg("a_data").noconvert(),
      py::arg("n_rows"), py::arg("n_cols"), py::arg("b_indptr").noconvert(), py::arg("b_indices").noconvert(),
      py::arg("b_data").noconvert(), py::arg("p"), py::arg("k"), py::arg("threshold"), py::arg("exclude_self"),
      py::arg("n_threads"), py::arg("dense_min_density") = -1.0,
      "Top-k cosine neighbours (CSR in, CSR arrays out). Pass None for B to use A. dense_min_density: columns "
      "of B at least this dense are multiplied densely (nonnegative data; < 0: cost model, > 1: never).");

  m.def(
      "topk_scores",
      [](const CArray<int64_t>& w_ptr, const CArray<I>& w_idx, const CArray<T>& w_val, int64_t u, int64_t j,
         const CArray<int64_t>& r_ptr, const CArray<I>& r_idx, const CArray<T>& r_val, int64_t m_items,
         std::optional<CArray<int64_t>> e_ptr, std::optional<CArray<I>> e_idx, CArray<int64_t>& items,
         CArray<T>& scores, int n_threads) {
        const auto W = csr_view<T, I>(w_ptr, w_idx, w_val, u, j, "W");
        const auto R = csr_view<T, I>(r_ptr, r_idx, r_val, j, m_items, "R");
        CsrView<T, I> E;
        std::optional<CArray<T>> e_dummy;
        if (e_ptr) {
          e_dummy = CArray<T>(e_idx->shape(0));
          E = csr_view<T, I>(*e_ptr, *e_idx, *e_dummy, u, m_items, "exclude");
          E.data = nullptr;
        }
        if (items.ndim() != 2 || scores.ndim() != 2 || items.shape(0) != u || scores.shape(0) != u ||
            items.shape(1) != scores.shape(1))
          throw std::invalid_argument("items/scores must be (u, n) arrays");
        const int64_t n = items.shape(1);
        int64_t* it = items.mutable_data();
        T* sc = scores.mutable_data();
        py::gil_scoped_release release;
        cpu::topk_scores<T, I>(W, R, e_ptr ? &E : nullptr, n, it, sc, n_threads);
      },
      py::arg("w_indptr").noconvert(), py::arg("w_indices").noconvert(), py::arg("w_data").noconvert(),
      py::arg("n_rows"), py::arg("n_inner"), py::arg("r_indptr").noconvert(), py::arg("r_indices").noconvert(),
      py::arg("r_data").noconvert(), py::arg("n_items"), py::arg("e_indptr").noconvert(),
      py::arg("e_indices").noconvert(), py::arg("items").noconvert(), py::arg("scores").noconvert(),
      py::arg("n_threads"), "Top-n of W @ R per row into pre-filled (u, n) arrays.");

  m.def(
      "kmeans_assign_csr",
      [](const CArray<int64_t>& x_ptr, const CArray<I>& x_idx, const CArray<T>& x_val, int64_t n, int64_t d,
         const CArray<T>& centers, CArray<int64_t>& labels, CArray<T>& sq, int n_threads) {
        const auto X = csr_view<T, I>(x_ptr, x_idx, x_val, n, d, "X");
        if (centers.ndim() != 2 || centers.shape(1) != d) throw std::invalid_argument("centers must be (k, d)");
        check_out(labels, n, "labels");
        check_out(sq, n, "sq_dist");
        const int64_t k = centers.shape(0);
        const T* C = centers.data();
        int64_t* lab = labels.mutable_data();
        T* s = sq.mutable_data();
        py::gil_scoped_release release;
        cpu::kmeans_assign_csr<T, I>(X, C, k, lab, s, n_threads);
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("n_rows"),
      py::arg("n_cols"), py::arg("centers").noconvert(), py::arg("labels").noconvert(), py::arg("sq_dist").noconvert(),
      py::arg("n_threads"));

  m.def(
      "kmeans_update_csr",
      [](const CArray<int64_t>& x_ptr, const CArray<I>& x_idx, const CArray<T>& x_val, int64_t n, int64_t d,
         const CArray<int64_t>& labels, int64_t k, std::optional<CArray<T>> weights, CArray<T>& sums,
         CArray<T>& counts, int n_threads) {
        const auto X = csr_view<T, I>(x_ptr, x_idx, x_val, n, d, "X");
        check_out(labels, n, "labels");
        if (weights) check_out(*weights, n, "sample_weight");
        if (sums.ndim() != 2 || sums.shape(0) != k || sums.shape(1) != d) throw std::invalid_argument("sums must be (k, d)");
        check_out(counts, k, "counts");
        const T* w = weights ? weights->data() : nullptr;
        const int64_t* lab = labels.data();
        T* s = sums.mutable_data();
        T* c = counts.mutable_data();
        py::gil_scoped_release release;
        cpu::kmeans_update_csr<T, I>(X, lab, k, w, s, c, n_threads);
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("n_rows"),
      py::arg("n_cols"), py::arg("labels").noconvert(), py::arg("n_clusters"), py::arg("sample_weight").noconvert(),
      py::arg("sums").noconvert(), py::arg("counts").noconvert(), py::arg("n_threads"));
}

template <typename T>
void bind_dense_ops(py::module_& m) {
  m.def(
      "kmeans_assign_dense",
      [](const py::array_t<T>& X, const CArray<T>& centers, CArray<int64_t>& labels, CArray<T>& sq, int n_threads) {
        const auto Xv = dense_view(X, "X");
        if (centers.ndim() != 2 || centers.shape(1) != Xv.n_cols) throw std::invalid_argument("centers must be (k, d)");
        check_out(labels, Xv.n_rows, "labels");
        check_out(sq, Xv.n_rows, "sq_dist");
        const int64_t k = centers.shape(0);
        const T* C = centers.data();
        int64_t* lab = labels.mutable_data();
        T* s = sq.mutable_data();
        py::gil_scoped_release release;
        cpu::kmeans_assign_dense<T>(Xv, C, k, lab, s, n_threads);
      },
      py::arg("X").noconvert(), py::arg("centers").noconvert(), py::arg("labels").noconvert(),
      py::arg("sq_dist").noconvert(), py::arg("n_threads"),
      "Nearest centre of every row of a strided 2-D X.");

  m.def(
      "kmeans_assign_bounded_dense",
      [](const CArray<T>& X, const CArray<T>& centers, const CArray<int64_t>& slots, std::optional<CArray<double>> shift,
         std::optional<CArray<double>> s_half, const CArray<double>& x_sq, CArray<int64_t>& labels,
         CArray<double>& upper, CArray<double>& lower, CArray<float>& group_lower, CArray<double>& dcum,
         std::optional<CArray<T>> weights, std::optional<CArray<double>> sums, std::optional<CArray<double>> counts,
         std::optional<CArray<int64_t>> members, bool rebuild_sums, int n_threads) {
        const auto Xv = dense_view<T>(X, "X");
        const int64_t n = Xv.n_rows;
        if (centers.ndim() != 2 || centers.shape(1) != Xv.n_cols) throw std::invalid_argument("centers must be (k, d)");
        const int64_t k = centers.shape(0);
        if (group_lower.ndim() != 2 || group_lower.shape(0) != n)
          throw std::invalid_argument("group_lower must be (n, n_groups)");
        const int64_t t = group_lower.shape(1);
        check_out(slots, t * cpu::kmeans_group_lanes(sizeof(T)), "slots");
        check_out(dcum, t, "dcum");
        if (shift) check_out(*shift, k, "shift");
        if (s_half) check_out(*s_half, k, "s_half");
        check_out(x_sq, n, "x_sq");
        check_out(labels, n, "labels");
        check_out(upper, n, "upper");
        check_out(lower, n, "lower");
        if (weights) check_out(*weights, n, "sample_weight");
        if (sums.has_value() != counts.has_value() || sums.has_value() != members.has_value())
          throw std::invalid_argument("give sums, counts and members, or none of them");
        if (sums && (sums->ndim() != 2 || sums->shape(0) != k || sums->shape(1) != Xv.n_cols))
          throw std::invalid_argument("sums must be (k, d)");
        if (counts) check_out(*counts, k, "counts");
        if (members) check_out(*members, k, "members");
        cpu::YinyangArgs a;
        a.x_sq = x_sq.data();
        a.shift = shift ? shift->data() : nullptr;
        a.s_half = s_half ? s_half->data() : nullptr;
        a.labels = labels.mutable_data();
        a.upper = upper.mutable_data();
        a.lower = lower.mutable_data();
        a.group_lower = group_lower.mutable_data();
        a.dcum = dcum.mutable_data();
        if (sums) {
          a.sums = sums->mutable_data();
          a.counts = counts->mutable_data();
          a.members = members->mutable_data();
        }
        a.rebuild_sums = rebuild_sums;
        const T* w = weights ? weights->data() : nullptr;
        const T* C = centers.data();
        const int64_t* sl = slots.data();
        int64_t n_dist = 0, moved = 0;
        {
          py::gil_scoped_release release;
          moved = cpu::kmeans_assign_bounded<T>(Xv, C, k, sl, t, a, w, &n_dist, n_threads);
        }
        return py::make_tuple(moved, n_dist);
      },
      py::arg("X").noconvert(), py::arg("centers").noconvert(), py::arg("slots").noconvert(),
      py::arg("shift").noconvert(), py::arg("s_half").noconvert(), py::arg("x_sq").noconvert(),
      py::arg("labels").noconvert(), py::arg("upper").noconvert(), py::arg("lower").noconvert(),
      py::arg("group_lower").noconvert(), py::arg("dcum").noconvert(), py::arg("sample_weight").noconvert(),
      py::arg("sums").noconvert(), py::arg("counts").noconvert(), py::arg("members").noconvert(), py::arg("rebuild_sums"), py::arg("n_threads"),
      "Bounded (Yinyang) assignment pass, in place; returns (n_moved, n_distances).");

  m.def(
      "kmeanspp_update_dense",
      [](const CArray<T>& X, const CArray<double>& c, CArray<double>& closest, std::optional<CArray<T>> weights,
         CArray<double>& cum, int n_threads) {
        const auto Xv = dense_view<T>(X, "X");
        check_out(c, Xv.n_cols, "c");
        check_out(closest, Xv.n_rows, "closest");
        check_out(cum, Xv.n_rows, "cum");
        if (weights) check_out(*weights, Xv.n_rows, "sample_weight");
        const double* cp = c.data();
        double* cl = closest.mutable_data();
        double* cu = cum.mutable_data();
        const T* w = weights ? weights->data() : nullptr;
        py::gil_scoped_release release;
        cpu::kmeanspp_update<T>(Xv, cp, cl, w, cu, n_threads);
      },
      py::arg("X").noconvert(), py::arg("c").noconvert(), py::arg("closest").noconvert(),
      py::arg("sample_weight").noconvert(), py::arg("cum").noconvert(), py::arg("n_threads"),
      "k-means++: fold a new centre into closest (in place) and write the prefix sums of w * closest.");

  m.def(
      "kmeanspp_trials_dense",
      [](const CArray<T>& X, const CArray<double>& cand, const CArray<double>& closest,
         std::optional<CArray<T>> weights, CArray<double>& pot, int n_threads) {
        const auto Xv = dense_view<T>(X, "X");
        if (cand.ndim() != 2 || cand.shape(1) != Xv.n_cols) throw std::invalid_argument("cand must be (m, d)");
        const int64_t m = cand.shape(0);
        check_out(closest, Xv.n_rows, "closest");
        check_out(pot, m, "pot");
        if (weights) check_out(*weights, Xv.n_rows, "sample_weight");
        const double* cp = cand.data();
        const double* cl = closest.data();
        double* pp = pot.mutable_data();
        const T* w = weights ? weights->data() : nullptr;
        py::gil_scoped_release release;
        cpu::kmeanspp_trials<T>(Xv, cp, m, cl, w, pp, n_threads);
      },
      py::arg("X").noconvert(), py::arg("cand").noconvert(), py::arg("closest").noconvert(),
      py::arg("sample_weight").noconvert(), py::arg("pot").noconvert(), py::arg("n_threads"),
      "k-means++: potential sum_i w_i min(closest_i, ||x_i - cand_t||^2) of each candidate.");

  m.def(
      "kmeans_update_dense",
      [](const py::array_t<T>& X, const CArray<int64_t>& labels, int64_t k, std::optional<CArray<T>> weights,
         CArray<T>& sums, CArray<T>& counts, int n_threads) {
        const auto Xv = dense_view(X, "X");
        check_out(labels, Xv.n_rows, "labels");
        if (weights) check_out(*weights, Xv.n_rows, "sample_weight");
        if (sums.ndim() != 2 || sums.shape(0) != k || sums.shape(1) != Xv.n_cols)
          throw std::invalid_argument("sums must be (k, d)");
        check_out(counts, k, "counts");
        const T* w = weights ? weights->data() : nullptr;
        const int64_t* lab = labels.data();
        T* s = sums.mutable_data();
        T* c = counts.mutable_data();
        py::gil_scoped_release release;
        cpu::kmeans_update_dense<T>(Xv, lab, k, w, s, c, n_threads);
      },
      py::arg("X").noconvert(), py::arg("labels").noconvert(), py::arg("n_clusters"),
      py::arg("sample_weight").noconvert(), py::arg("sums").noconvert(), py::arg("counts").noconvert(),
      py::arg("n_threads"));

  m.def(
      "kmeans_step_dense",
      [](const py::array_t<T>& X, const CArray<T>& centers, std::optional<CArray<T>> weights,
         CArray<int64_t>& labels, CArray<T>& sq, CArray<T>& sums, CArray<T>& counts, int n_threads) {
        const auto Xv = dense_view(X, "X");
        if (centers.ndim() != 2 || centers.shape(1) != Xv.n_cols) throw std::invalid_argument("centers must be (k, d)");
        const int64_t k = centers.shape(0);
        check_out(labels, Xv.n_rows, "labels");
        check_out(sq, Xv.n_rows, "sq_dist");
        if (weights) check_out(*weights, Xv.n_rows, "sample_weight");
        if (sums.ndim() != 2 || sums.shape(0) != k || sums.shape(1) != Xv.n_cols)
          throw std::invalid_argument("sums must be (k, d)");
        check_out(counts, k, "counts");
        const T* C = centers.data();
        const T* w = weights ? weights->data() : nullptr;
        int64_t* lab = labels.mutable_data();
        T* s = sq.mutable_data();
        T* su = sums.mutable_data();
        T* co = counts.mutable_data();
        py::gil_scoped_release release;
        cpu::kmeans_step_dense<T>(Xv, C, k, w, lab, s, su, co, n_threads);
      },
      py::arg("X").noconvert(), py::arg("centers").noconvert(), py::arg("sample_weight").noconvert(),
      py::arg("labels").noconvert(), py::arg("sq_dist").noconvert(), py::arg("sums").noconvert(),
      py::arg("counts").noconvert(), py::arg("n_threads"),
      "One Lloyd iteration (assign + update) in one pass over a strided 2-D X.");
}

}  // namespace

// Evaluation kernels (cohortrec.evaluation) and the fixed-ranking top-n
/// Rows of the test CSR (indptr, indices), after checking indptr is usable.
template <typename I>
int64_t checked_test_rows(const CArray<int64_t>& t_ptr, const CArray<I>& t_idx) {
  if (t_ptr.ndim() != 1 || t_ptr.shape(0) < 1 || t_idx.ndim() != 1)
    throw std::invalid_argument("test: indptr and indices must be 1-D");
  const int64_t t_rows = t_ptr.shape(0) - 1;
  const int64_t* tp = t_ptr.data();
  if (tp[0] != 0 || tp[t_rows] > t_idx.shape(0)) throw std::invalid_argument("test: bad indptr");
  for (int64_t r = 0; r < t_rows; ++r)
    if (tp[r + 1] < tp[r]) throw std::invalid_argument("test: indptr must be non-decreasing");
  return t_rows;
}

// (Popularity): J = dtype of the recommended ids, I = of the CSR indices.
template <typename J, typename I>
void bind_ranking_ops(py::module_& m) {
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

  if constexpr (!std::is_same<J, int64_t>::value) return;  // ranked_topn depends on I only
  m.def(
      "ranked_topn",
      [](const CArray<int64_t>& order, const CArray<int64_t>& e_ptr, const CArray<I>& e_idx, int64_t u, int64_t m_items,
         CArray<int64_t>& items, int n_threads) {
        if (order.ndim() != 1) throw std::invalid_argument("order must be 1-D");
        if (items.ndim() != 2 || items.shape(0) != u) throw std::invalid_argument("items must be a (u, n) array");
        CsrView<float, I> E;
        E.n_rows = u;
        E.n_cols = m_items;
        if (e_ptr.ndim() != 1 || e_ptr.shape(0) != u + 1 || e_idx.ndim() != 1)
          throw std::invalid_argument("exclude: indptr must have u + 1 entries");
        E.indptr = e_ptr.data();
        E.indices = e_idx.data();
        if (u > 0 && E.indptr[u] > e_idx.shape(0))
          throw std::invalid_argument("exclude: indptr[-1] exceeds the number of stored values");
        E.check("exclude");
        const int64_t n = items.shape(1);
        const int64_t* o = order.data();
        const int64_t n_order = order.shape(0);
        int64_t* it = items.mutable_data();
        py::gil_scoped_release release;
        cpu::ranked_topn<I>(o, n_order, E, n, it, n_threads);
      },
      py::arg("order").noconvert(), py::arg("exclude_indptr").noconvert(), py::arg("exclude_indices").noconvert(),
      py::arg("n_rows"), py::arg("n_items"), py::arg("items").noconvert(), py::arg("n_threads"),
      "First n ids of a global ranking per row, skipping the row's excluded items (into pre-filled (u, n) items).");

  m.def(
      "dense_topn",
      [](const CArray<float>& scores, std::optional<CArray<bool>> keep, std::optional<CArray<int64_t>> e_ptr,
         std::optional<CArray<I>> e_idx, CArray<int64_t>& items, CArray<float>& out, int n_threads) {
        if (scores.ndim() != 2) throw std::invalid_argument("scores must be a (u, m) array");
        const int64_t u = scores.shape(0), m_items = scores.shape(1);
        if (items.ndim() != 2 || out.ndim() != 2 || items.shape(0) != u || out.shape(0) != u ||
            items.shape(1) != out.shape(1))
          throw std::invalid_argument("items/out must be (u, n) arrays");
        if (keep) check_out(*keep, m_items, "keep");
        if (e_ptr.has_value() != e_idx.has_value()) throw std::invalid_argument("give exclude indptr and indices");
        CsrView<float, I> E;
        if (e_ptr) {
          if (e_ptr->ndim() != 1 || e_ptr->shape(0) != u + 1 || e_idx->ndim() != 1)
            throw std::invalid_argument("exclude: indptr must have u + 1 entries");
          E.n_rows = u;
          E.n_cols = m_items;
          E.indptr = e_ptr->data();
          E.indices = e_idx->data();
          if (u > 0 && E.indptr[u] > e_idx->shape(0))
            throw std::invalid_argument("exclude: indptr[-1] exceeds the number of stored values");
          E.check("exclude");
        }
        const float* sc = scores.data();
        const auto* kp = keep ? reinterpret_cast<const uint8_t*>(keep->data()) : nullptr;
        const int64_t n = items.shape(1);
        int64_t* it = items.mutable_data();
        float* o = out.mutable_data();
        py::gil_scoped_release release;
        cpu::dense_topn<I>(sc, u, m_items, m_items, kp, e_ptr ? &E : nullptr, n, it, o, n_threads);
      },
      py::arg("scores").noconvert(), py::arg("keep").noconvert(), py::arg("exclude_indptr").noconvert(),
      py::arg("exclude_indices").noconvert(), py::arg("items").noconvert(), py::arg("out").noconvert(),
      py::arg("n_threads"), "Best n finite entries per row of a dense float32 matrix (into pre-filled (u, n) arrays).");
}

template <typename J>
void bind_item_counts(py::module_& m) {
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

PYBIND11_MODULE(_core, m) {
  m.doc() = "cohortrec CPU kernels (C++/OpenMP). Use cohortrec.ops, which validates inputs.";
  bind_sparse_ops<float, int32_t>(m);
  bind_sparse_ops<float, int64_t>(m);
  bind_sparse_ops<double, int32_t>(m);
  bind_sparse_ops<double, int64_t>(m);
  bind_dense_ops<float>(m);
  bind_dense_ops<double>(m);
  bind_ranking_ops<int32_t, int32_t>(m);
  bind_ranking_ops<int32_t, int64_t>(m);
  bind_ranking_ops<int64_t, int32_t>(m);
  bind_ranking_ops<int64_t, int64_t>(m);
  bind_item_counts<int32_t>(m);
  bind_item_counts<int64_t>(m);
  m.def("max_threads", &max_threads, "Number of processors OpenMP sees.");
  m.def("kmeans_group_lanes", &cpu::kmeans_group_lanes, py::arg("item_size"),
        "Centres per group of the bounded K-means assignment (SIMD lanes).");
  m.def("isa", &cpu::active_isa, "Instruction set the dense kernels use.");
  m.def("_set_isa", &cpu::set_isa, py::arg("name"), "Force an instruction set (tests/benchmarks); 'auto' resets.");
  m.attr("has_openmp") = has_openmp();
}
