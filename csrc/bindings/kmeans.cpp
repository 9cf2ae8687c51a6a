// Bindings of the K-means kernels: assignment, bounded (Yinyang) assignment, k-means++ seeding, update, step.
#include "bindings/common.hpp"
#include "cpu/kmeans_assign.hpp"
#include "cpu/kmeans_bounded.hpp"
#include "cpu/kmeans_plusplus.hpp"
#include "cpu/kmeans_update.hpp"

namespace cohortrec::bindings {
namespace {

template <typename T, typename I>
void bind_csr_t(py::module_& m) {
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
         const CArray<int64_t>& labels, int64_t k, std::optional<CArray<T>> weights, CArray<T>& sums, CArray<T>& counts,
         int n_threads) {
        const auto X = csr_view<T, I>(x_ptr, x_idx, x_val, n, d, "X");
        check_out(labels, n, "labels");
        if (weights) check_out(*weights, n, "sample_weight");
        if (sums.ndim() != 2 || sums.shape(0) != k || sums.shape(1) != d)
          throw std::invalid_argument("sums must be (k, d)");
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
void bind_dense_t(py::module_& m) {
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
      py::arg("sq_dist").noconvert(), py::arg("n_threads"), "Nearest centre of every row of a strided 2-D X.");

  m.def(
      "kmeans_assign_bounded_dense",
      [](const CArray<T>& X, const CArray<T>& centers, const CArray<int64_t>& slots,
         std::optional<CArray<double>> shift, std::optional<CArray<double>> s_half, const CArray<double>& x_sq,
         CArray<int64_t>& labels, CArray<double>& upper, CArray<double>& lower, CArray<float>& group_lower,
         CArray<double>& dcum, std::optional<CArray<T>> weights, std::optional<CArray<double>> sums,
         std::optional<CArray<double>> counts, std::optional<CArray<int64_t>> members, bool rebuild_sums,
         int n_threads) {
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
      py::arg("sums").noconvert(), py::arg("counts").noconvert(), py::arg("members").noconvert(),
      py::arg("rebuild_sums"), py::arg("n_threads"),
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
      [](const py::array_t<T>& X, const CArray<T>& centers, std::optional<CArray<T>> weights, CArray<int64_t>& labels,
         CArray<T>& sq, CArray<T>& sums, CArray<T>& counts, int n_threads) {
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

void bind_kmeans(py::module_& m) {
  bind_csr_t<float, int32_t>(m);
  bind_csr_t<float, int64_t>(m);
  bind_csr_t<double, int32_t>(m);
  bind_csr_t<double, int64_t>(m);
  bind_dense_t<float>(m);
  bind_dense_t<double>(m);
  m.def("kmeans_group_lanes", &cpu::kmeans_group_lanes, py::arg("item_size"),
        "Centres per group of the bounded K-means assignment (SIMD lanes).");
}

}  // namespace cohortrec::bindings
