// pybind11 bindings of the per-request scoring kernels (cpu/user_topn):
// exact dtypes (`.noconvert()`), shapes checked here, compute with the GIL
// released. Validation that names the user's argument lives in
// python/cohortrec/ops/_user_topn.py.
#include "cpu/user_topn.hpp"
#include "bindings/common.hpp"

namespace cohortrec::bindings {

namespace {

template <typename I>
CsrView<float, I> query_view(const CArray<int64_t>& indptr, const CArray<I>& indices, const float* data,
                             int64_t data_len, int64_t n_rows, int64_t n_cols, const char* name) {
  if (indptr.ndim() != 1 || indptr.shape(0) != n_rows + 1)
    throw std::invalid_argument(std::string(name) + ": indptr must have n_rows + 1 entries");
  if (indices.ndim() != 1 || (data && data_len != indices.shape(0)))
    throw std::invalid_argument(std::string(name) + ": indices and data must be 1-D of equal length");
  CsrView<float, I> v;
  v.n_rows = n_rows;
  v.n_cols = n_cols;
  v.indptr = indptr.data();
  v.indices = indices.data();
  v.data = data;
  if (n_rows > 0 && v.indptr[n_rows] > indices.shape(0))
    throw std::invalid_argument(std::string(name) + ": indptr[-1] exceeds the number of stored values");
  v.check(name);  // O(rows + nnz) of the query: small
  return v;
}

void check_items_out(const CArray<int64_t>& items, const CArray<float>& scores, int64_t u) {
  if (items.ndim() != 2 || scores.ndim() != 2 || items.shape(0) != u || scores.shape(0) != u ||
      items.shape(1) != scores.shape(1))
    throw std::invalid_argument("items/scores must be (u, n) arrays");
}

template <typename I>
void bind_user_topn_for(py::module_& m) {
  m.def(
      "user_topn_sparse",
      [](const CArray<int64_t>& w_ptr, const CArray<I>& w_idx, const CArray<float>& w_val, int64_t u,
         const CArray<int64_t>& r_ptr, const CArray<I>& r_idx, const CArray<float>& r_val, int64_t m_items,
         std::optional<CArray<bool>> keep, std::optional<CArray<int64_t>> e_ptr, std::optional<CArray<I>> e_idx,
         CArray<int64_t>& items, CArray<float>& scores, int n_threads) {
        if (r_ptr.ndim() != 1 || r_ptr.shape(0) < 1) throw std::invalid_argument("R: indptr must be 1-D, non-empty");
        if (r_idx.ndim() != 1 || r_val.ndim() != 1 || r_idx.shape(0) != r_val.shape(0))
          throw std::invalid_argument("R: indices and data must be 1-D of equal length");
        cpu::LazyCsr<I> R;
        R.n_rows = r_ptr.shape(0) - 1;
        R.n_cols = m_items;
        R.nnz = r_idx.shape(0);
        R.indptr = r_ptr.data();
        R.indices = r_idx.data();
        R.data = r_val.data();
        if (w_val.ndim() != 1) throw std::invalid_argument("W: data must be 1-D");
        const auto W = query_view<I>(w_ptr, w_idx, w_val.data(), w_val.shape(0), u, R.n_rows, "W");
        CsrView<float, I> E;
        if (e_ptr.has_value() != e_idx.has_value()) throw std::invalid_argument("give exclude indptr and indices");
        if (e_ptr) E = query_view<I>(*e_ptr, *e_idx, nullptr, 0, u, m_items, "exclude");
        if (keep && (keep->ndim() != 1 || keep->shape(0) != m_items))
          throw std::invalid_argument("keep must hold one flag per item");
        check_items_out(items, scores, u);
        const auto* kp = keep ? reinterpret_cast<const uint8_t*>(keep->data()) : nullptr;
        const int64_t n = items.shape(1);
        int64_t* it = items.mutable_data();
        float* sc = scores.mutable_data();
        py::gil_scoped_release release;
        cpu::user_topn_sparse<I>(W, R, kp, e_ptr ? &E : nullptr, n, it, sc, n_threads);
      },
      py::arg("w_indptr").noconvert(), py::arg("w_indices").noconvert(), py::arg("w_data").noconvert(),
      py::arg("n_rows"), py::arg("r_indptr").noconvert(), py::arg("r_indices").noconvert(),
      py::arg("r_data").noconvert(), py::arg("n_items"), py::arg("keep").noconvert(), py::arg("e_indptr").noconvert(),
      py::arg("e_indices").noconvert(), py::arg("items").noconvert(), py::arg("scores").noconvert(),
      py::arg("n_threads"), "Top-n of W @ R per query row (R checked only where read) into pre-filled (u, n) arrays.");

  m.def(
      "user_topn_dense",
      [](const CArray<int64_t>& w_ptr, const CArray<I>& w_idx, const CArray<float>& w_val, int64_t u,
         const CArray<float>& B, std::optional<CArray<bool>> keep, std::optional<CArray<int64_t>> e_ptr,
         std::optional<CArray<I>> e_idx, bool drop_zero, CArray<int64_t>& items, CArray<float>& scores, int n_threads) {
        if (B.ndim() != 2) throw std::invalid_argument("B must be a 2-D (j, m) array");
        const int64_t j = B.shape(0), m_items = B.shape(1);
        if (w_val.ndim() != 1) throw std::invalid_argument("W: data must be 1-D");
        const auto W = query_view<I>(w_ptr, w_idx, w_val.data(), w_val.shape(0), u, j, "W");
        CsrView<float, I> E;
        if (e_ptr.has_value() != e_idx.has_value()) throw std::invalid_argument("give exclude indptr and indices");
        if (e_ptr) E = query_view<I>(*e_ptr, *e_idx, nullptr, 0, u, m_items, "exclude");
        if (keep && (keep->ndim() != 1 || keep->shape(0) != m_items))
          throw std::invalid_argument("keep must hold one flag per item");
        check_items_out(items, scores, u);
        const auto* kp = keep ? reinterpret_cast<const uint8_t*>(keep->data()) : nullptr;
        const int64_t n = items.shape(1);
        const float* b = B.data();
        int64_t* it = items.mutable_data();
        float* sc = scores.mutable_data();
        py::gil_scoped_release release;
        cpu::user_topn_dense<I>(W, b, m_items, m_items, kp, e_ptr ? &E : nullptr, drop_zero, n, it, sc, n_threads);
      },
      py::arg("w_indptr").noconvert(), py::arg("w_indices").noconvert(), py::arg("w_data").noconvert(),
      py::arg("n_rows"), py::arg("B").noconvert(), py::arg("keep").noconvert(), py::arg("e_indptr").noconvert(),
      py::arg("e_indices").noconvert(), py::arg("drop_zero"), py::arg("items").noconvert(),
      py::arg("scores").noconvert(), py::arg("n_threads"),
      "Top-n of W @ B (B dense, C-contiguous float32) per query row into pre-filled (u, n) arrays.");
}

}  // namespace

void bind_user_topn(py::module_& m) {
  bind_user_topn_for<int32_t>(m);
  bind_user_topn_for<int64_t>(m);
}

}  // namespace cohortrec::bindings
