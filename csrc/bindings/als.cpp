// pybind11 bindings of the implicit-ALS kernels (cpu/als.hpp), registered on
// cohortrec._core by bind_als(). Exact dtypes only (`.noconvert()`); the
// Python wrapper cohortrec.ops._als validates and converts. The GIL is
// released while the kernels run.
#include "cpu/als.hpp"
#include "bindings/common.hpp"

namespace cohortrec::bindings {
namespace {

template <typename T>
void check_matrix(const CArray<T>& a, int64_t rows, int64_t cols, const char* name) {
  if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols)
    throw std::invalid_argument(std::string(name) + " must have shape (" + std::to_string(rows) + ", " +
                                std::to_string(cols) + ")");
}

template <typename I>
void bind_als_typed(py::module_& m) {
  m.def(
      "als_solve",
      [](const CArray<int64_t>& indptr, const CArray<I>& indices, const CArray<float>& data, int64_t n_rows,
         int64_t n_cols, float alpha, const CArray<float>& Y, const CArray<float>& G, CArray<float>& X, int cg_steps,
         int n_threads, std::optional<CArray<float>> extra) {
        const auto C = csr_view<float, I>(indptr, indices, data, n_rows, n_cols, "C");
        if (Y.ndim() != 2) throw std::invalid_argument("Y must be 2-D");
        const int64_t f = Y.shape(1);
        check_matrix(Y, n_cols, f, "Y");
        check_matrix(G, f, f, "G");
        check_matrix(X, n_rows, f, "X");
        if (X.data() == Y.data() && n_rows > 0 && f > 0) throw std::invalid_argument("X and Y must not overlap");
        const float* y = Y.data();
        const float* g = G.data();
        float* x = X.mutable_data();
        if (extra && (extra->ndim() != 1 || extra->shape(0) != n_rows))
          throw std::invalid_argument("extra must hold one value per row of C");
        const float* ex = extra ? extra->data() : nullptr;
        py::gil_scoped_release release;
        cohortrec::cpu::als_solve<I>(C, alpha, y, f, g, x, cg_steps, n_threads, ex);
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("n_rows"),
      py::arg("n_cols"), py::arg("alpha"), py::arg("Y").noconvert(), py::arg("G").noconvert(), py::arg("X").noconvert(),
      py::arg("cg_steps"), py::arg("n_threads"), py::arg("extra").noconvert() = py::none(),
      "One implicit-ALS half-step in place on X (cg_steps conjugate-gradient steps; 0: exact solve); extra: "
      "per-row additions to G's diagonal.");
  m.def(
      "als_loss_rows",
      [](const CArray<int64_t>& indptr, const CArray<I>& indices, const CArray<float>& data, int64_t n_rows,
         int64_t n_cols, float alpha, const CArray<float>& X, const CArray<float>& Y, const CArray<double>& YtY,
         CArray<double>& out, int n_threads) {
        const auto C = csr_view<float, I>(indptr, indices, data, n_rows, n_cols, "C");
        if (Y.ndim() != 2) throw std::invalid_argument("Y must be 2-D");
        const int64_t f = Y.shape(1);
        check_matrix(Y, n_cols, f, "Y");
        check_matrix(X, n_rows, f, "X");
        check_matrix(YtY, f, f, "YtY");
        if (out.ndim() != 1 || out.shape(0) != n_rows) throw std::invalid_argument("out must have n_rows entries");
        const float* x = X.data();
        const float* y = Y.data();
        const double* g = YtY.data();
        double* o = out.mutable_data();
        py::gil_scoped_release release;
        cohortrec::cpu::als_loss_rows<I>(C, alpha, x, y, f, g, o, n_threads);
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("n_rows"),
      py::arg("n_cols"), py::arg("alpha"), py::arg("X").noconvert(), py::arg("Y").noconvert(),
      py::arg("YtY").noconvert(), py::arg("out").noconvert(), py::arg("n_threads"),
      "Per-row terms of the weighted squared ALS loss (float64).");
}

}  // namespace

void bind_als(py::module_& m) {
  bind_als_typed<int32_t>(m);
  bind_als_typed<int64_t>(m);
}

}  // namespace cohortrec::bindings
