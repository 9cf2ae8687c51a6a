// Binding of the sparse cosine top-k kernel (cpu/cosine_topk.cpp).
#include "cpu/cosine_topk.hpp"
#include "bindings/common.hpp"

namespace cohortrec::bindings {
namespace {

template <typename T, typename I>
void bind_t(py::module_& m) {
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
}

}  // namespace

void bind_cosine_topk(py::module_& m) {
  bind_t<float, int32_t>(m);
  bind_t<float, int64_t>(m);
  bind_t<double, int32_t>(m);
  bind_t<double, int64_t>(m);
}

}  // namespace cohortrec::bindings
