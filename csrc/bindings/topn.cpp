// Bindings of the top-n selection kernels the recommenders rank with: a global ranking minus
// each row's items (Popularity), dense score rows (EASE), and the merged neighbour lists of the
// online updates. I = dtype of the exclusion (and column) indices.
#include "bindings/common.hpp"
#include "cpu/topk_scores.hpp"

namespace cohortrec::bindings {
namespace {

template <typename I>
void bind_t(py::module_& m) {
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
      "merge_topk_rows",
      [](const CArray<int64_t>& o_ptr, const CArray<I>& o_idx, const CArray<float>& o_val, int64_t n_rows,
         int64_t n_cols, const CArray<int64_t>& replace, const CArray<int64_t>& r_ptr, const CArray<I>& r_idx,
         const CArray<float>& r_val, int64_t r_rows, const CArray<int64_t>& a_ptr, const CArray<I>& a_idx,
         const CArray<float>& a_val, int64_t k, bool sort_cols, int n_threads) {
        const auto O = csr_view<float, I>(o_ptr, o_idx, o_val, n_rows, n_cols, "old");
        const auto R = csr_view<float, I>(r_ptr, r_idx, r_val, r_rows, n_cols, "R");
        const auto A = csr_view<float, I>(a_ptr, a_idx, a_val, n_rows, n_cols, "add");
        check_out(replace, n_rows, "replace");
        const int64_t* rp = replace.data();
        auto r = [&] {
          py::gil_scoped_release release;
          return cpu::merge_topk_rows<I>(O, rp, R, A, k, sort_cols, n_threads);
        }();
        return py::make_tuple(to_numpy(std::move(r.indptr)), to_numpy(std::move(r.indices)),
                              to_numpy(std::move(r.data)));
      },
      py::arg("old_indptr").noconvert(), py::arg("old_indices").noconvert(), py::arg("old_data").noconvert(),
      py::arg("n_rows"), py::arg("n_cols"), py::arg("replace").noconvert(), py::arg("r_indptr").noconvert(),
      py::arg("r_indices").noconvert(), py::arg("r_data").noconvert(), py::arg("r_rows"),
      py::arg("add_indptr").noconvert(), py::arg("add_indices").noconvert(), py::arg("add_data").noconvert(),
      py::arg("k"), py::arg("sort_cols"), py::arg("n_threads"),
      "Neighbour lists after an online update: rows replaced, or their best k merged with added candidates.");

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

}  // namespace

void bind_topn(py::module_& m) {
  bind_t<int32_t>(m);
  bind_t<int64_t>(m);
}

}  // namespace cohortrec::bindings
