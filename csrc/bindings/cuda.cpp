// pybind11 bindings of the CUDA module: cohortrec._cuda.
//
// Thin by design; two flavours per op:
//  * `<op>(...)`: host (NumPy) arrays of the exact dtypes, like cohortrec._core
//    (`.noconvert()`); they are copied to the device, computed on a private
//    stream, and the results copied back (into the caller's output arrays,
//    or returned as new NumPy arrays);
//  * `<op>_ptr(...)`: raw device pointers (Python ints), sizes, the caller's
//    stream and device, for CuPy / PyTorch data (zero-copy). cosine_topk_ptr
//    returns DeviceArray objects (owning device memory, exposing
//    __cuda_array_interface__ v3) that CuPy or PyTorch wrap without a copy.
// Input validation and conversion live in python/cohortrec/ops/_cuda.py.
// Every call releases the GIL while it runs. CUDA failures raise
// cohortrec._cuda.CudaError (a RuntimeError) naming the failing call and
// its source line; out-of-memory raises MemoryError with the size asked for.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/common.hpp"
#include "cuda/api.hpp"
#include "cuda/device.cuh"
#include "cuda/errors.hpp"
#include "cuda/memory.hpp"

namespace py = pybind11;
using namespace cohortrec::cuda;
namespace bindings = cohortrec::bindings;

namespace {

using bindings::CArray;
using bindings::to_numpy;

template <typename T>
constexpr Dtype dtype_of() {
  return sizeof(T) == 4 ? Dtype::f32 : Dtype::f64;
}

Dtype parse_dtype(const std::string& s) {
  if (s == "float32" || s == "f4" || s == "<f4") return Dtype::f32;
  if (s == "float64" || s == "f8" || s == "<f8") return Dtype::f64;
  throw std::invalid_argument("dtype must be float32 or float64, got " + s);
}

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::fp32;
  if (s == "tf32") return Precision::tf32;
  if (s == "bf16") return Precision::bf16;
  throw std::invalid_argument("precision must be 'fp32', 'tf32' or 'bf16', got '" + s + "'");
}

/// A private non-blocking stream for host-array calls.
struct OwnedStream {
  cudaStream_t s = nullptr;
  OwnedStream() { CHECK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~OwnedStream() {
    if (s && cudaStreamDestroy(s) != cudaSuccess) (void)cudaGetLastError();
  }
  OwnedStream(const OwnedStream&) = delete;
  OwnedStream& operator=(const OwnedStream&) = delete;
};

template <typename T>
DeviceBuffer upload(const CArray<T>& a, cudaStream_t s) {
  return to_device(a.data(), static_cast<size_t>(a.size()) * sizeof(T), s);
}

/// Shape checks of a host CSR triplet (the Python layer validated content).
template <typename T>
void check_host_csr(const CArray<int64_t>& ptr, const CArray<int32_t>& idx, const CArray<T>* val, int64_t n_rows,
                    const char* name) {
  if (n_rows < 0) throw std::invalid_argument(std::string(name) + ": negative number of rows");
  if (ptr.ndim() != 1 || ptr.shape(0) != n_rows + 1)
    throw std::invalid_argument(std::string(name) + ": indptr must have n_rows + 1 entries");
  if (idx.ndim() != 1 || (val && (val->ndim() != 1 || val->shape(0) != idx.shape(0))))
    throw std::invalid_argument(std::string(name) + ": indices and data must be 1-D of equal length");
  if (ptr.data()[0] != 0 || ptr.data()[n_rows] > idx.shape(0))
    throw std::invalid_argument(std::string(name) + ": indptr must start at 0 and end at most at nnz");
}

template <typename T>
DeviceCsr device_csr(const CArray<int64_t>& ptr, const DeviceBuffer& d_ptr, const DeviceBuffer& d_idx,
                     const DeviceBuffer* d_val, int64_t n_rows, int64_t n_cols) {
  DeviceCsr c;
  c.indptr = d_ptr.as<int64_t>();
  c.indices = d_idx.as<int32_t>();
  c.data = d_val ? d_val->get() : nullptr;
  c.n_rows = n_rows;
  c.n_cols = n_cols;
  c.nnz = ptr.data()[n_rows];
  return c;
}

template <typename T>
T* ptr_of(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

cudaStream_t stream_of(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

DeviceCsr ptr_csr(std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t data, int64_t n_rows, int64_t n_cols,
                  int64_t nnz) {
  DeviceCsr c;
  c.indptr = ptr_of<const int64_t>(indptr);
  c.indices = ptr_of<const int32_t>(indices);
  c.data = ptr_of<const void>(data);
  c.n_rows = n_rows;
  c.n_cols = n_cols;
  c.nnz = nnz;
  return c;
}

// ------------------------------------------------------------ DeviceArray
/// One-dimensional device array owning its memory; CuPy (cupy.asarray) and
/// PyTorch (torch.as_tensor) wrap it through __cuda_array_interface__
/// and keep it alive.
struct DeviceArray {
  DeviceBuffer buf;
  int64_t length = 0;
  std::string typestr;
  int device = 0;
};

py::dict cuda_array_interface(const DeviceArray& a) {
  py::dict d;
  d["shape"] = py::make_tuple(a.length);
  d["typestr"] = a.typestr;
  d["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(a.buf.get()), false);
  d["version"] = 3;
  d["strides"] = py::none();
  return d;  // no "stream": the producing call synchronised before returning
}

// ------------------------------------------------------------ host flavour
template <typename T>
py::tuple cosine_topk_host(const CArray<int64_t>& a_ptr, const CArray<int32_t>& a_idx, const CArray<T>& a_val,
                           int64_t n, int64_t m, std::optional<CArray<int64_t>> b_ptr,
                           std::optional<CArray<int32_t>> b_idx, std::optional<CArray<T>> b_val, int64_t p, int64_t k,
                           std::optional<double> threshold, bool exclude_self, int device) {
  check_host_csr<T>(a_ptr, a_idx, &a_val, n, "A");
  const bool same = !b_ptr.has_value();
  if (!same) {
    if (!b_idx || !b_val) throw std::invalid_argument("B: indptr, indices and data must be given together");
    check_host_csr<T>(*b_ptr, *b_idx, &*b_val, p, "B");
  } else if (p != n) {
    throw std::invalid_argument("p must equal n when B is None");
  }
  std::vector<int64_t> indptr;
  std::vector<int32_t> indices;
  std::vector<T> data;
  {
    py::gil_scoped_release nogil;
    DeviceGuard guard(device);
    OwnedStream st;
    DeviceBuffer ap = upload(a_ptr, st.s), ai = upload(a_idx, st.s), av = upload(a_val, st.s);
    const DeviceCsr A = device_csr<T>(a_ptr, ap, ai, &av, n, m);
    DeviceBuffer bp, bi, bv;
    DeviceCsr B;
    if (!same) {
      bp = upload(*b_ptr, st.s);
      bi = upload(*b_idx, st.s);
      bv = upload(*b_val, st.s);
      B = device_csr<T>(*b_ptr, bp, bi, &bv, p, m);
    }
    DeviceCsrResult r = cosine_topk(dtype_of<T>(), A, same ? nullptr : &B, k, threshold.has_value(),
                                    threshold.value_or(0.0), same && exclude_self, st.s);
    indptr.resize(static_cast<size_t>(n) + 1);
    indices.resize(static_cast<size_t>(r.nnz));
    data.resize(static_cast<size_t>(r.nnz));
    to_host(indptr.data(), r.indptr.get(), indptr.size() * sizeof(int64_t), st.s);
    to_host(indices.data(), r.indices.get(), indices.size() * sizeof(int32_t), st.s);
    to_host(data.data(), r.data.get(), data.size() * sizeof(T), st.s);
  }
  return py::make_tuple(to_numpy(std::move(indptr)), to_numpy(std::move(indices)), to_numpy(std::move(data)));
}

template <typename T>
void topk_scores_host(const CArray<int64_t>& w_ptr, const CArray<int32_t>& w_idx, const CArray<T>& w_val, int64_t u,
                      int64_t j, const CArray<int64_t>& r_ptr, const CArray<int32_t>& r_idx, const CArray<T>& r_val,
                      int64_t m_items, std::optional<CArray<int64_t>> e_ptr, std::optional<CArray<int32_t>> e_idx,
                      CArray<int64_t>& items, CArray<T>& scores, int device) {
  check_host_csr<T>(w_ptr, w_idx, &w_val, u, "W");
  check_host_csr<T>(r_ptr, r_idx, &r_val, j, "R");
  if (e_ptr) {
    if (!e_idx) throw std::invalid_argument("exclude: indptr and indices must be given together");
    check_host_csr<T>(*e_ptr, *e_idx, nullptr, u, "exclude");
  }
  if (items.ndim() != 2 || scores.ndim() != 2 || items.shape(0) != u || scores.shape(0) != u ||
      items.shape(1) != scores.shape(1))
    throw std::invalid_argument("items/scores must be (u, n) arrays");
  const int64_t n = items.shape(1);
  int64_t* it = items.mutable_data();
  T* sc = scores.mutable_data();
  py::gil_scoped_release nogil;
  if (u == 0 || n == 0) return;
  DeviceGuard guard(device);
  OwnedStream st;
  DeviceBuffer wp = upload(w_ptr, st.s), wi = upload(w_idx, st.s), wv = upload(w_val, st.s);
  DeviceBuffer rp = upload(r_ptr, st.s), ri = upload(r_idx, st.s), rv = upload(r_val, st.s);
  DeviceBuffer ep, ei;
  if (e_ptr) {
    ep = upload(*e_ptr, st.s);
    ei = upload(*e_idx, st.s);
  }
  DeviceBuffer d_items = device_alloc<int64_t>(u * n, st.s), d_scores = device_alloc<T>(u * n, st.s);
  topk_scores(dtype_of<T>(), device_csr<T>(w_ptr, wp, wi, &wv, u, j), device_csr<T>(r_ptr, rp, ri, &rv, j, m_items),
              e_ptr ? ep.as<int64_t>() : nullptr, e_ptr ? ei.as<int32_t>() : nullptr, n, nullptr, d_items.as<int64_t>(),
              d_scores.get(), st.s);
  to_host(it, d_items.get(), static_cast<size_t>(u * n) * sizeof(int64_t), st.s);
  to_host(sc, d_scores.get(), static_cast<size_t>(u * n) * sizeof(T), st.s);
}

template <typename T>
void kmeans_assign_dense_host(const CArray<T>& X, const CArray<T>& C, CArray<int64_t>& labels, CArray<T>& sq,
                              const std::string& precision, int device) {
  if (X.ndim() != 2 || C.ndim() != 2 || C.shape(1) != X.shape(1))
    throw std::invalid_argument("X must be (n, d) and centers (k, d)");
  const int64_t n = X.shape(0), d = X.shape(1), k = C.shape(0);
  if (labels.ndim() != 1 || labels.shape(0) != n || sq.ndim() != 1 || sq.shape(0) != n)
    throw std::invalid_argument("labels and sq_dist must have n entries");
  const Precision prec = parse_precision(precision);
  int64_t* lab = labels.mutable_data();
  T* s = sq.mutable_data();
  bool finite = true;
  {
    py::gil_scoped_release nogil;
    if (n == 0) return;
    DeviceGuard guard(device);
    OwnedStream st;
    DeviceBuffer dx = upload(X, st.s), dc = upload(C, st.s);
    DeviceBuffer dl = device_alloc<int64_t>(n, st.s), ds = device_alloc<T>(n, st.s);
    finite = kmeans_assign_dense(dtype_of<T>(), dx.get(), n, d, dc.get(), k, dl.as<int64_t>(), ds.get(), prec, st.s);
    if (finite) {
      to_host(lab, dl.get(), static_cast<size_t>(n) * sizeof(int64_t), st.s);
      to_host(s, ds.get(), static_cast<size_t>(n) * sizeof(T), st.s);
    }
  }
  if (!finite) throw std::invalid_argument("contains NaN or infinite values");
}

template <typename T>
void kmeans_assign_csr_host(const CArray<int64_t>& x_ptr, const CArray<int32_t>& x_idx, const CArray<T>& x_val,
                            int64_t n, int64_t d, const CArray<T>& C, CArray<int64_t>& labels, CArray<T>& sq,
                            int device) {
  check_host_csr<T>(x_ptr, x_idx, &x_val, n, "X");
  if (C.ndim() != 2 || C.shape(1) != d) throw std::invalid_argument("centers must be (k, d)");
  if (labels.ndim() != 1 || labels.shape(0) != n || sq.ndim() != 1 || sq.shape(0) != n)
    throw std::invalid_argument("labels and sq_dist must have n entries");
  const int64_t k = C.shape(0);
  int64_t* lab = labels.mutable_data();
  T* s = sq.mutable_data();
  bool finite = true;
  {
    py::gil_scoped_release nogil;
    if (n == 0) return;
    DeviceGuard guard(device);
    OwnedStream st;
    DeviceBuffer xp = upload(x_ptr, st.s), xi = upload(x_idx, st.s), xv = upload(x_val, st.s), dc = upload(C, st.s);
    DeviceBuffer dl = device_alloc<int64_t>(n, st.s), ds = device_alloc<T>(n, st.s);
    finite = kmeans_assign_csr(dtype_of<T>(), device_csr<T>(x_ptr, xp, xi, &xv, n, d), dc.get(), k, dl.as<int64_t>(),
                               ds.get(), st.s);
    if (finite) {
      to_host(lab, dl.get(), static_cast<size_t>(n) * sizeof(int64_t), st.s);
      to_host(s, ds.get(), static_cast<size_t>(n) * sizeof(T), st.s);
    }
  }
  if (!finite) throw std::invalid_argument("contains NaN or infinite values");
}

/// Shapes shared by the dense and CSR update bindings.
template <typename T>
void check_update_args(const CArray<int64_t>& labels, const std::optional<CArray<T>>& w, const CArray<T>& sums,
                       const CArray<T>& counts, int64_t n, int64_t k, int64_t d) {
  if (labels.ndim() != 1 || labels.shape(0) != n) throw std::invalid_argument("labels must have n entries");
  if (w && (w->ndim() != 1 || w->shape(0) != n)) throw std::invalid_argument("sample_weight must have n entries");
  if (sums.ndim() != 2 || sums.shape(0) != k || sums.shape(1) != d || counts.ndim() != 1 || counts.shape(0) != k)
    throw std::invalid_argument("sums must be (k, d) and counts (k,)");
}

template <typename T>
void kmeans_update_dense_host(const CArray<T>& X, const CArray<int64_t>& labels, int64_t k, std::optional<CArray<T>> w,
                              CArray<T>& sums, CArray<T>& counts, int device) {
  if (X.ndim() != 2) throw std::invalid_argument("X must be 2-D");
  const int64_t n = X.shape(0), d = X.shape(1);
  check_update_args<T>(labels, w, sums, counts, n, k, d);
  T* s = sums.mutable_data();
  T* c = counts.mutable_data();
  py::gil_scoped_release nogil;
  DeviceGuard guard(device);
  OwnedStream st;
  DeviceBuffer dx = upload(X, st.s), dl = upload(labels, st.s), dw;
  if (w) dw = upload(*w, st.s);
  DeviceBuffer ds = device_alloc<T>(k * d, st.s), dc = device_alloc<T>(k, st.s);
  kmeans_update_dense(dtype_of<T>(), dx.get(), n, d, dl.as<int64_t>(), k, w ? dw.get() : nullptr, ds.get(), dc.get(),
                      st.s);
  to_host(s, ds.get(), static_cast<size_t>(k * d) * sizeof(T), st.s);
  to_host(c, dc.get(), static_cast<size_t>(k) * sizeof(T), st.s);
}

template <typename T>
void kmeans_update_csr_host(const CArray<int64_t>& x_ptr, const CArray<int32_t>& x_idx, const CArray<T>& x_val,
                            int64_t n, int64_t d, const CArray<int64_t>& labels, int64_t k, std::optional<CArray<T>> w,
                            CArray<T>& sums, CArray<T>& counts, int device) {
  check_host_csr<T>(x_ptr, x_idx, &x_val, n, "X");
  check_update_args<T>(labels, w, sums, counts, n, k, d);
  T* s = sums.mutable_data();
  T* c = counts.mutable_data();
  py::gil_scoped_release nogil;
  DeviceGuard guard(device);
  OwnedStream st;
  DeviceBuffer xp = upload(x_ptr, st.s), xi = upload(x_idx, st.s), xv = upload(x_val, st.s);
  DeviceBuffer dl = upload(labels, st.s), dw;
  if (w) dw = upload(*w, st.s);
  DeviceBuffer ds = device_alloc<T>(k * d, st.s), dc = device_alloc<T>(k, st.s);
  kmeans_update_csr(dtype_of<T>(), device_csr<T>(x_ptr, xp, xi, &xv, n, d), dl.as<int64_t>(), k, w ? dw.get() : nullptr,
                    ds.get(), dc.get(), st.s);
  to_host(s, ds.get(), static_cast<size_t>(k * d) * sizeof(T), st.s);
  to_host(c, dc.get(), static_cast<size_t>(k) * sizeof(T), st.s);
}

template <typename T>
void bind_host_ops(py::module_& m) {
  m.def("cosine_topk", &cosine_topk_host<T>, py::arg("a_indptr").noconvert(), py::arg("a_indices").noconvert(),
        py::arg("a_data").noconvert(), py::arg("n_rows"), py::arg("n_cols"), py::arg("b_indptr").noconvert(),
        py::arg("b_indices").noconvert(), py::arg("b_data").noconvert(), py::arg("p"), py::arg("k"),
        py::arg("threshold"), py::arg("exclude_self"), py::arg("device") = -1,
        "Top-k cosine neighbours of host CSR arrays (int64 indptr, int32 indices); returns "
        "(indptr, indices, data) NumPy arrays. Pass None for B to use A.");
  m.def("topk_scores", &topk_scores_host<T>, py::arg("w_indptr").noconvert(), py::arg("w_indices").noconvert(),
        py::arg("w_data").noconvert(), py::arg("n_rows"), py::arg("n_inner"), py::arg("r_indptr").noconvert(),
        py::arg("r_indices").noconvert(), py::arg("r_data").noconvert(), py::arg("n_items"),
        py::arg("e_indptr").noconvert(), py::arg("e_indices").noconvert(), py::arg("items").noconvert(),
        py::arg("scores").noconvert(), py::arg("device") = -1,
        "Top-n of W @ R per row of host CSR arrays into (u, n) NumPy arrays.");
  m.def("kmeans_assign_dense", &kmeans_assign_dense_host<T>, py::arg("X").noconvert(), py::arg("centers").noconvert(),
        py::arg("labels").noconvert(), py::arg("sq_dist").noconvert(), py::arg("precision") = "fp32",
        py::arg("device") = -1, "Nearest centre of every row of a C-contiguous X.");
  m.def("kmeans_assign_csr", &kmeans_assign_csr_host<T>, py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
        py::arg("data").noconvert(), py::arg("n_rows"), py::arg("n_cols"), py::arg("centers").noconvert(),
        py::arg("labels").noconvert(), py::arg("sq_dist").noconvert(), py::arg("device") = -1);
  m.def("kmeans_update_dense", &kmeans_update_dense_host<T>, py::arg("X").noconvert(), py::arg("labels").noconvert(),
        py::arg("n_clusters"), py::arg("sample_weight").noconvert(), py::arg("sums").noconvert(),
        py::arg("counts").noconvert(), py::arg("device") = -1);
  m.def("kmeans_update_csr", &kmeans_update_csr_host<T>, py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
        py::arg("data").noconvert(), py::arg("n_rows"), py::arg("n_cols"), py::arg("labels").noconvert(),
        py::arg("n_clusters"), py::arg("sample_weight").noconvert(), py::arg("sums").noconvert(),
        py::arg("counts").noconvert(), py::arg("device") = -1);
}

// ----------------------------------------------------------- pointer flavour
py::tuple cosine_topk_ptr(const std::string& dtype, std::uintptr_t a_indptr, std::uintptr_t a_indices,
                          std::uintptr_t a_data, int64_t n, int64_t m, int64_t nnz_a, std::uintptr_t b_indptr,
                          std::uintptr_t b_indices, std::uintptr_t b_data, int64_t p, int64_t nnz_b, bool same,
                          int64_t k, std::optional<double> threshold, bool exclude_self, std::uintptr_t stream,
                          int device) {
  const Dtype dt = parse_dtype(dtype);
  DeviceCsrResult r;
  {
    py::gil_scoped_release nogil;
    DeviceGuard guard(device);
    const DeviceCsr A = ptr_csr(a_indptr, a_indices, a_data, n, m, nnz_a);
    const DeviceCsr B = ptr_csr(b_indptr, b_indices, b_data, p, m, nnz_b);
    r = cosine_topk(dt, A, same ? nullptr : &B, k, threshold.has_value(), threshold.value_or(0.0), same && exclude_self,
                    stream_of(stream));
  }
  const int dev = r.indptr.device();
  const std::string fts = dt == Dtype::f32 ? "<f4" : "<f8";
  DeviceArray ip{std::move(r.indptr), n + 1, "<i8", dev};
  DeviceArray ix{std::move(r.indices), r.nnz, "<i4", dev};
  DeviceArray dv{std::move(r.data), r.nnz, fts, dev};
  return py::make_tuple(std::move(ip), std::move(ix), std::move(dv));
}

void topk_scores_ptr(const std::string& dtype, std::uintptr_t w_indptr, std::uintptr_t w_indices, std::uintptr_t w_data,
                     int64_t u, int64_t j, int64_t nnz_w, std::uintptr_t r_indptr, std::uintptr_t r_indices,
                     std::uintptr_t r_data, int64_t m, int64_t nnz_r, std::uintptr_t e_indptr, std::uintptr_t e_indices,
                     int64_t n, std::uintptr_t item_map, std::uintptr_t items, std::uintptr_t scores,
                     std::uintptr_t stream, int device) {
  const Dtype dt = parse_dtype(dtype);
  py::gil_scoped_release nogil;
  DeviceGuard guard(device);
  topk_scores(dt, ptr_csr(w_indptr, w_indices, w_data, u, j, nnz_w), ptr_csr(r_indptr, r_indices, r_data, j, m, nnz_r),
              ptr_of<const int64_t>(e_indptr), ptr_of<const int32_t>(e_indices), n, ptr_of<const int64_t>(item_map),
              ptr_of<int64_t>(items), ptr_of<void>(scores), stream_of(stream));
}

bool kmeans_assign_dense_ptr(const std::string& dtype, std::uintptr_t X, int64_t n, int64_t d, std::uintptr_t C,
                             int64_t k, std::uintptr_t labels, std::uintptr_t sq, const std::string& precision,
                             std::uintptr_t stream, int device) {
  const Dtype dt = parse_dtype(dtype);
  const Precision prec = parse_precision(precision);
  py::gil_scoped_release nogil;
  DeviceGuard guard(device);
  return kmeans_assign_dense(dt, ptr_of<const void>(X), n, d, ptr_of<const void>(C), k, ptr_of<int64_t>(labels),
                             ptr_of<void>(sq), prec, stream_of(stream));
}

bool kmeans_assign_csr_ptr(const std::string& dtype, std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t data,
                           int64_t n, int64_t d, int64_t nnz, std::uintptr_t C, int64_t k, std::uintptr_t labels,
                           std::uintptr_t sq, std::uintptr_t stream, int device) {
  const Dtype dt = parse_dtype(dtype);
  py::gil_scoped_release nogil;
  DeviceGuard guard(device);
  return kmeans_assign_csr(dt, ptr_csr(indptr, indices, data, n, d, nnz), ptr_of<const void>(C), k,
                           ptr_of<int64_t>(labels), ptr_of<void>(sq), stream_of(stream));
}

void kmeans_update_dense_ptr(const std::string& dtype, std::uintptr_t X, int64_t n, int64_t d, std::uintptr_t labels,
                             int64_t k, std::uintptr_t w, std::uintptr_t sums, std::uintptr_t counts,
                             std::uintptr_t stream, int device) {
  const Dtype dt = parse_dtype(dtype);
  py::gil_scoped_release nogil;
  DeviceGuard guard(device);
  kmeans_update_dense(dt, ptr_of<const void>(X), n, d, ptr_of<const int64_t>(labels), k, ptr_of<const void>(w),
                      ptr_of<void>(sums), ptr_of<void>(counts), stream_of(stream));
}

void kmeans_update_csr_ptr(const std::string& dtype, std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t data,
                           int64_t n, int64_t d, int64_t nnz, std::uintptr_t labels, int64_t k, std::uintptr_t w,
                           std::uintptr_t sums, std::uintptr_t counts, std::uintptr_t stream, int device) {
  const Dtype dt = parse_dtype(dtype);
  py::gil_scoped_release nogil;
  DeviceGuard guard(device);
  kmeans_update_csr(dt, ptr_csr(indptr, indices, data, n, d, nnz), ptr_of<const int64_t>(labels), k,
                    ptr_of<const void>(w), ptr_of<void>(sums), ptr_of<void>(counts), stream_of(stream));
}

py::dict device_info_dict(int device) {
  const DeviceInfo info = device_info(device);
  py::dict d;
  d["name"] = info.name;
  d["compute_capability"] = py::make_tuple(info.major, info.minor);
  d["multiprocessors"] = info.multiprocessors;
  d["total_memory"] = info.total_memory;
  d["l2_cache_bytes"] = info.l2_cache_bytes;
  return d;
}

py::tuple memory_info(int device) {
  DeviceGuard guard(device);
  size_t free_b = 0, total_b = 0;
  mem_info(free_b, total_b);
  return py::make_tuple(free_b, total_b);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "cohortrec CUDA kernels. Use cohortrec.ops, which validates inputs and dispatches.";

  py::register_exception<CudaError>(m, "CudaError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const CudaOutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });

  m.def("device_count", &device_count, "Number of visible CUDA devices.");
  m.def("runtime_version", &runtime_version, "CUDA runtime version built against.");
  m.def("driver_version", &driver_version, "Version of the installed CUDA driver (0 if none).");
  m.def("current_device", &current_device, "The CUDA runtime's current device.");
  m.def("device_info", &device_info_dict, py::arg("device") = 0, "Name, compute capability, SMs, memory, L2 size.");
  m.def("memory_info", &memory_info, py::arg("device") = -1, "(free, total) bytes of device memory.");
  m.def("synchronize", [] {
    py::gil_scoped_release nogil;
    synchronize_device();
  });

  py::class_<DeviceArray>(m, "DeviceArray", "A 1-D device array owning its memory (exposes __cuda_array_interface__).")
      .def_property_readonly("__cuda_array_interface__", &cuda_array_interface)
      .def_property_readonly("shape", [](const DeviceArray& a) { return py::make_tuple(a.length); })
      .def_property_readonly("typestr", [](const DeviceArray& a) { return a.typestr; })
      .def_property_readonly("device", [](const DeviceArray& a) { return a.device; })
      .def_property_readonly("ptr", [](const DeviceArray& a) { return reinterpret_cast<std::uintptr_t>(a.buf.get()); })
      .def("__len__", [](const DeviceArray& a) { return a.length; });

  bind_host_ops<float>(m);
  bind_host_ops<double>(m);

  m.def("cosine_topk_ptr", &cosine_topk_ptr, py::arg("dtype"), py::arg("a_indptr"), py::arg("a_indices"),
        py::arg("a_data"), py::arg("n_rows"), py::arg("n_cols"), py::arg("nnz_a"), py::arg("b_indptr"),
        py::arg("b_indices"), py::arg("b_data"), py::arg("p"), py::arg("nnz_b"), py::arg("same"), py::arg("k"),
        py::arg("threshold"), py::arg("exclude_self"), py::arg("stream"), py::arg("device"),
        "cosine_topk on device pointers; returns (indptr, indices, data) DeviceArrays.");
  m.def("topk_scores_ptr", &topk_scores_ptr, py::arg("dtype"), py::arg("w_indptr"), py::arg("w_indices"),
        py::arg("w_data"), py::arg("n_rows"), py::arg("n_inner"), py::arg("nnz_w"), py::arg("r_indptr"),
        py::arg("r_indices"), py::arg("r_data"), py::arg("n_items"), py::arg("nnz_r"), py::arg("e_indptr"),
        py::arg("e_indices"), py::arg("n"), py::arg("item_map"), py::arg("items"), py::arg("scores"), py::arg("stream"),
        py::arg("device"), "topk_scores on device pointers (0 = none) into (u, n) arrays.");
  m.def("kmeans_assign_dense_ptr", &kmeans_assign_dense_ptr, py::arg("dtype"), py::arg("X"), py::arg("n"), py::arg("d"),
        py::arg("centers"), py::arg("k"), py::arg("labels"), py::arg("sq_dist"), py::arg("precision"),
        py::arg("stream"), py::arg("device"), "Returns False when a row of X is not finite.");
  m.def("kmeans_assign_csr_ptr", &kmeans_assign_csr_ptr, py::arg("dtype"), py::arg("indptr"), py::arg("indices"),
        py::arg("data"), py::arg("n"), py::arg("d"), py::arg("nnz"), py::arg("centers"), py::arg("k"),
        py::arg("labels"), py::arg("sq_dist"), py::arg("stream"), py::arg("device"));
  m.def("kmeans_update_dense_ptr", &kmeans_update_dense_ptr, py::arg("dtype"), py::arg("X"), py::arg("n"), py::arg("d"),
        py::arg("labels"), py::arg("k"), py::arg("sample_weight"), py::arg("sums"), py::arg("counts"),
        py::arg("stream"), py::arg("device"));
  m.def("kmeans_update_csr_ptr", &kmeans_update_csr_ptr, py::arg("dtype"), py::arg("indptr"), py::arg("indices"),
        py::arg("data"), py::arg("n"), py::arg("d"), py::arg("nnz"), py::arg("labels"), py::arg("k"),
        py::arg("sample_weight"), py::arg("sums"), py::arg("counts"), py::arg("stream"), py::arg("device"));

  m.attr("has_kernels") = true;
}
