#pragma once
// Shared helpers of the pybind11 bindings (cohortrec._core, one file per op,
// and cohortrec._cuda): array aliases, zero-copy hand-over of results,
// views of CSR and strided dense arguments, length checks.
//
// The bindings are thin by design: every array argument must already have
// the exact dtype (`.noconvert()`), so a mismatch raises instead of being
// copied silently. Conversion, validation and error messages that name the
// user's argument live in python/cohortrec/ops/; the checks here guard the
// memory the kernels touch. Compute runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/csr.hpp"
#include "cpu/kmeans_assign.hpp"

namespace cohortrec::bindings {

namespace py = pybind11;
using namespace cohortrec;

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

/// Hands a std::vector to NumPy without copying.
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, {static_cast<py::ssize_t>(sizeof(T))}, heap->data(),
                        owner);
}

template <typename T, typename I>
CsrView<T, I> csr_view(const CArray<int64_t>& indptr, const CArray<I>& indices, const CArray<T>& data, int64_t n_rows,
                       int64_t n_cols, const char* name) {
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

// One registration function per op family (csrc/bindings/<op>.cpp).
void bind_cosine_topk(py::module_& m);
void bind_topk_scores(py::module_& m);
void bind_kmeans(py::module_& m);
void bind_ranking(py::module_& m);
void bind_topn(py::module_& m);
void bind_user_topn(py::module_& m);
void bind_als(py::module_& m);
void bind_merge_topn(py::module_& m);

}  // namespace cohortrec::bindings
