// Binding of the top-n sparse product scoring kernel (cpu/topk_scores.cpp).
#include "cpu/topk_scores.hpp"
#include "bindings/common.hpp"

namespace cohortrec::bindings {
namespace {

template <typename T, typename I>
void bind_t(py::module_& m) {
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
}

}  // namespace

void bind_topk_scores(py::module_& m) {
  bind_t<float, int32_t>(m);
  bind_t<float, int64_t>(m);
  bind_t<double, int32_t>(m);
  bind_t<double, int64_t>(m);
}

}  // namespace cohortrec::bindings
