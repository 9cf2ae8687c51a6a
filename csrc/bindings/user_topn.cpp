// pybind11 bindings of the per-request scoring kernels (cpu/user_topn):
// exact dtypes (`.noconvert()`), shapes checked here, compute with the GIL
// released. Validation that names the user's argument lives in
// python/cohortrec/ops/_user_topn.py.
#include "cpu/user_topn.hpp"
#include "bindings/common.hpp"
#include "cpu/merge_topn.hpp"
#include "cpu/topk_scores.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

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

/// A model or query matrix bound lazily (cpu::LazyCsr): only the array
/// shapes are checked here; rows are checked where a call reads them.
template <typename I>
cpu::LazyCsr<I> lazy_csr(const CArray<int64_t>& ptr, const CArray<I>& idx, const CArray<float>* val, int64_t n_cols,
                         const char* name) {
  if (ptr.ndim() != 1 || ptr.shape(0) < 1 || idx.ndim() != 1)
    throw std::invalid_argument(std::string(name) + ": indptr and indices must be 1-D, indptr non-empty");
  if (val && (val->ndim() != 1 || val->shape(0) != idx.shape(0)))
    throw std::invalid_argument(std::string(name) + ": indices and data must have equal length");
  cpu::LazyCsr<I> M;
  M.n_rows = ptr.shape(0) - 1;
  M.n_cols = n_cols;
  M.nnz = idx.shape(0);
  M.indptr = ptr.data();
  M.indices = idx.data();
  M.data = val ? val->data() : nullptr;
  return M;
}

/// The optional candidate mask and per-row exclusion of a kernel call, checked.
template <typename I>
struct Filters {
  const uint8_t* keep = nullptr;
  CsrView<float, I> exclude;
  bool has_exclude = false;
  const CsrView<float, I>* excl() const { return has_exclude ? &exclude : nullptr; }
};

template <typename I>
Filters<I> filters(const std::optional<CArray<bool>>& keep, const std::optional<CArray<int64_t>>& e_ptr,
                   const std::optional<CArray<I>>& e_idx, int64_t u, int64_t m_items) {
  Filters<I> f;
  if (e_ptr.has_value() != e_idx.has_value()) throw std::invalid_argument("give exclude indptr and indices");
  if (e_ptr) {
    f.exclude = query_view<I>(*e_ptr, *e_idx, nullptr, 0, u, m_items, "exclude");
    f.has_exclude = true;
  }
  if (keep && (keep->ndim() != 1 || keep->shape(0) != m_items))
    throw std::invalid_argument("keep must hold one flag per item");
  f.keep = keep ? reinterpret_cast<const uint8_t*>(keep->data()) : nullptr;
  return f;
}

/// The pre-filled (u, n) output arrays of a kernel call, checked.
struct Out {
  int64_t n;
  int64_t* items;
  float* scores;
};

Out out_arrays(CArray<int64_t>& items, CArray<float>& scores, int64_t u) {
  if (items.ndim() != 2 || scores.ndim() != 2 || items.shape(0) != u || scores.shape(0) != u ||
      items.shape(1) != scores.shape(1))
    throw std::invalid_argument("items/scores must be (u, n) arrays");
  return {items.shape(1), items.mutable_data(), scores.mutable_data()};
}

/// The u query rows W (u x n_cols) of a kernel call, checked.
template <typename I>
CsrView<float, I> query_rows(const CArray<int64_t>& w_ptr, const CArray<I>& w_idx, const CArray<float>& w_val,
                             int64_t u, int64_t n_cols) {
  if (w_val.ndim() != 1) throw std::invalid_argument("W: data must be 1-D");
  return query_view<I>(w_ptr, w_idx, w_val.data(), w_val.shape(0), u, n_cols, "W");
}

template <typename I>
void bind_user_topn_for(py::module_& m) {
  m.def(
      "user_topn_sparse",
      [](const CArray<int64_t>& w_ptr, const CArray<I>& w_idx, const CArray<float>& w_val, int64_t u,
         const CArray<int64_t>& r_ptr, const CArray<I>& r_idx, const CArray<float>& r_val, int64_t m_items,
         std::optional<CArray<bool>> keep, std::optional<CArray<int64_t>> e_ptr, std::optional<CArray<I>> e_idx,
         CArray<int64_t>& items, CArray<float>& scores, int n_threads) {
        const auto R = lazy_csr<I>(r_ptr, r_idx, &r_val, m_items, "R");
        const auto W = query_rows<I>(w_ptr, w_idx, w_val, u, R.n_rows);
        const auto F = filters<I>(keep, e_ptr, e_idx, u, m_items);
        const Out o = out_arrays(items, scores, u);
        py::gil_scoped_release release;
        cpu::user_topn_sparse<I>(W, R, F.keep, F.excl(), o.n, o.items, o.scores, n_threads);
      },
      py::arg("w_indptr").noconvert(), py::arg("w_indices").noconvert(), py::arg("w_data").noconvert(),
      py::arg("n_rows"), py::arg("r_indptr").noconvert(), py::arg("r_indices").noconvert(),
      py::arg("r_data").noconvert(), py::arg("n_items"), py::arg("keep").noconvert(), py::arg("e_indptr").noconvert(),
      py::arg("e_indices").noconvert(), py::arg("items").noconvert(), py::arg("scores").noconvert(),
      py::arg("n_threads"), "Top-n of W @ R per query row (R checked only where read) into pre-filled (u, n) arrays.");

  m.def(
      "user_topn_factors",
      [](const CArray<float>& U, const CArray<float>& B, std::optional<CArray<bool>> keep,
         std::optional<CArray<int64_t>> e_ptr, std::optional<CArray<I>> e_idx, CArray<int64_t>& items,
         CArray<float>& scores, int n_threads) {
        if (U.ndim() != 2 || B.ndim() != 2 || U.shape(1) != B.shape(0))
          throw std::invalid_argument("U must be (u, f) and B (f, m)");
        const int64_t u = U.shape(0), f = U.shape(1), m_items = B.shape(1);
        const auto F = filters<I>(keep, e_ptr, e_idx, u, m_items);
        const Out o = out_arrays(items, scores, u);
        const float* up = U.data();
        const float* bp = B.data();
        py::gil_scoped_release release;
        cpu::user_topn_factors<I>(up, u, f, bp, m_items, F.keep, F.excl(), o.n, o.items, o.scores, n_threads);
      },
      py::arg("U").noconvert(), py::arg("B").noconvert(), py::arg("keep").noconvert(), py::arg("e_indptr").noconvert(),
      py::arg("e_indices").noconvert(), py::arg("items").noconvert(), py::arg("scores").noconvert(),
      py::arg("n_threads"),
      "Top-n of U @ B (U dense factors, B dense (f, m)) per row into pre-filled (u, n) arrays; zero scores dropped.");

  m.def(
      "user_topn_dual",
      [](const CArray<int64_t>& w_ptr, const CArray<I>& w_idx, const CArray<float>& w_val, int64_t u,
         const CArray<int64_t>& c_ptr, const CArray<int32_t>& c_idx, const CArray<float>& c_val,
         const CArray<int64_t>& r_ptr, const CArray<I>& r_idx, const CArray<float>& r_val, const CArray<float>& M,
         const CArray<float>& diag, std::optional<CArray<bool>> keep, std::optional<CArray<int64_t>> e_ptr,
         std::optional<CArray<I>> e_idx, bool drop_zero, CArray<int64_t>& items, CArray<float>& scores, int n_threads) {
        if (M.ndim() != 2 || M.shape(1) < M.shape(0))
          throw std::invalid_argument("M must be a 2-D (n, stride >= n) array");
        const int64_t nu = M.shape(0), m_stride = M.shape(1);
        const auto C = lazy_csr<int32_t>(c_ptr, c_idx, &c_val, nu, "dual model C");
        const int64_t m_items = C.n_rows;
        const auto R = lazy_csr<I>(r_ptr, r_idx, &r_val, m_items, "dual model R");
        if (diag.ndim() != 1 || diag.shape(0) != m_items)
          throw std::invalid_argument("dual model: diag must have one value per item");
        const auto W = query_rows<I>(w_ptr, w_idx, w_val, u, m_items);
        const auto F = filters<I>(keep, e_ptr, e_idx, u, m_items);
        const Out o = out_arrays(items, scores, u);
        const float* mp = M.data();
        const float* dp = diag.data();
        py::gil_scoped_release release;
        cpu::user_topn_dual<I>(W, C, R, mp, m_stride, dp, F.keep, F.excl(), drop_zero, o.n, o.items, o.scores,
                               n_threads);
      },
      py::arg("w_indptr").noconvert(), py::arg("w_indices").noconvert(), py::arg("w_data").noconvert(),
      py::arg("n_rows"), py::arg("c_indptr").noconvert(), py::arg("c_indices").noconvert(),
      py::arg("c_data").noconvert(), py::arg("r_indptr").noconvert(), py::arg("r_indices").noconvert(),
      py::arg("r_data").noconvert(), py::arg("M").noconvert(), py::arg("diag").noconvert(), py::arg("keep").noconvert(),
      py::arg("e_indptr").noconvert(), py::arg("e_indices").noconvert(), py::arg("drop_zero"),
      py::arg("items").noconvert(), py::arg("scores").noconvert(), py::arg("n_threads"),
      "Top-n of the dual-form EASE scores per query row into pre-filled (u, n) arrays (model checked where read).");

  m.def(
      "user_topn_dense",
      [](const CArray<int64_t>& w_ptr, const CArray<I>& w_idx, const CArray<float>& w_val, int64_t u,
         const CArray<float>& B, std::optional<CArray<bool>> keep, std::optional<CArray<int64_t>> e_ptr,
         std::optional<CArray<I>> e_idx, bool drop_zero, CArray<int64_t>& items, CArray<float>& scores, int n_threads) {
        if (B.ndim() != 2) throw std::invalid_argument("B must be a 2-D (j, m) array");
        const int64_t j = B.shape(0), m_items = B.shape(1);
        const auto W = query_rows<I>(w_ptr, w_idx, w_val, u, j);
        const auto F = filters<I>(keep, e_ptr, e_idx, u, m_items);
        const Out o = out_arrays(items, scores, u);
        const float* b = B.data();
        py::gil_scoped_release release;
        cpu::user_topn_dense<I>(W, b, m_items, m_items, F.keep, F.excl(), drop_zero, o.n, o.items, o.scores, n_threads);
      },
      py::arg("w_indptr").noconvert(), py::arg("w_indices").noconvert(), py::arg("w_data").noconvert(),
      py::arg("n_rows"), py::arg("B").noconvert(), py::arg("keep").noconvert(), py::arg("e_indptr").noconvert(),
      py::arg("e_indices").noconvert(), py::arg("drop_zero"), py::arg("items").noconvert(),
      py::arg("scores").noconvert(), py::arg("n_threads"),
      "Top-n of W @ B (B dense, C-contiguous float32) per query row into pre-filled (u, n) arrays.");
}

/// A per-request top-n as Python returns it: the entries before the first
/// padding (-1), ids mapped through out_map (null: the identity) as int32
/// (int64 beyond 2**31 items) and float32 scores.
py::object topn_result(const std::vector<int64_t>& it, const std::vector<float>& sc, int64_t n_items,
                       const int64_t* out_map) {
  size_t k = 0;
  while (k < it.size() && it[k] >= 0) ++k;
  py::array_t<float> scores(static_cast<py::ssize_t>(k));
  std::copy(sc.begin(), sc.begin() + static_cast<std::ptrdiff_t>(k), scores.mutable_data());
  py::object ids;
  if (n_items <= std::numeric_limits<int32_t>::max()) {
    py::array_t<int32_t> a(static_cast<py::ssize_t>(k));
    for (size_t q = 0; q < k; ++q) a.mutable_data()[q] = static_cast<int32_t>(out_map ? out_map[it[q]] : it[q]);
    ids = std::move(a);
  } else {
    py::array_t<int64_t> a(static_cast<py::ssize_t>(k));
    for (size_t q = 0; q < k; ++q) a.mutable_data()[q] = out_map ? out_map[it[q]] : it[q];
    ids = std::move(a);
  }
  return py::make_tuple(ids, scores);
}

/// The per-request path of one fitted model, bound once: W (the query rows
/// of the users, u x j), E (the items each user has, excluded on request),
/// and the model, a sparse R (j x m) or a dense B (j x m). `topn(user, n,
/// filter)` is one user's top-n with three scalar arguments to convert and
/// the GIL released around the kernel, so requests from many Python threads
/// spend almost all their time in parallel. Every array is validated where
/// a request reads it (lazy_row), the references keep them alive, and each
/// call has its own scratch (thread_local in the sparse kernel).
///
/// `topn_row(user, indptr, indices, data, n_rows, n_cols, n, filter)` takes
/// the user's items as a one-row CSR (implicit's call) or a full matrix: the query row when
/// `row_is_query` (ItemKNN, EASE, RP3beta), else only the exclusion. Both
/// return None where the general path must decide (an id or n out of range,
/// a row that is not canonical float32 with finite non-zero values, another
/// width), which then raises or canonicalises with its own messages.
template <typename I>
class RowServer {
 public:
  RowServer(const CArray<int64_t>& w_ptr, const CArray<I>& w_idx, const CArray<float>& w_val, int64_t w_cols,
            const CArray<int64_t>& e_ptr, const CArray<I>& e_idx, int64_t n_items, std::optional<CArray<int64_t>> r_ptr,
            std::optional<CArray<I>> r_idx, std::optional<CArray<float>> r_val, std::optional<CArray<float>> B,
            std::optional<CArray<int64_t>> in_map, std::optional<CArray<int64_t>> out_map,
            std::optional<CArray<int64_t>> order, std::optional<CArray<float>> w_dense, bool row_is_query,
            bool drop_zero, std::optional<py::tuple> dual)
      : n_items_(n_items), row_is_query_(row_is_query), drop_zero_(drop_zero) {
    W_ = lazy_csr<I>(w_ptr, w_idx, &w_val, w_cols, "W");
    n_users_ = W_.n_rows;
    if (w_dense) {  // one dense query row per user (factors): rows viewed through one shared iota
      if (W_.n_rows != 0) throw std::invalid_argument("give W either as CSR or dense");
      if (w_dense->ndim() != 2 || w_dense->shape(1) != w_cols)
        throw std::invalid_argument("a dense W must be (n_users, W.shape[1])");
      wd_ = w_dense->data();
      n_users_ = w_dense->shape(0);
      iota_.resize(static_cast<size_t>(w_cols));
      for (int64_t t = 0; t < w_cols; ++t) iota_[static_cast<size_t>(t)] = static_cast<I>(t);
      keep(*w_dense);
    }
    const bool sparse = r_ptr.has_value();
    if (sparse == B.has_value()) throw std::invalid_argument("give either R (indptr, indices, data) or B");
    if (dual) {  // EASE's dual form: R is its score side (n_train x m), the tuple the rest
      if (!sparse || !row_is_query) throw std::invalid_argument("a dual model needs R and row_is_query");
      if (dual->size() != 5) throw std::invalid_argument("dual must be (c_indptr, c_indices, c_data, M, diag)");
      const auto arr = [&](size_t q, auto tag) {
        using A = decltype(tag);
        if (!py::isinstance<A>((*dual)[q])) throw std::invalid_argument("dual: an array has the wrong dtype or layout");
        keep((*dual)[q]);
        return py::reinterpret_borrow<A>((*dual)[q]);
      };
      const auto c_ptr = arr(0, CArray<int64_t>{});
      const auto c_idx = arr(1, CArray<int32_t>{});
      const auto c_val = arr(2, CArray<float>{});
      const auto M = arr(3, CArray<float>{});
      const auto diag = arr(4, CArray<float>{});
      if (M.ndim() != 2 || M.shape(1) < M.shape(0)) throw std::invalid_argument("dual: M must be (n, stride >= n)");
      C_ = lazy_csr<int32_t>(c_ptr, c_idx, &c_val, M.shape(0), "dual model C");
      if (C_.n_rows != w_cols) throw std::invalid_argument("dual: C must have one row per column of W");
      if (diag.ndim() != 1 || diag.shape(0) != w_cols) throw std::invalid_argument("dual: diag must hold one per item");
      if (r_ptr->ndim() != 1 || r_ptr->shape(0) != M.shape(0) + 1)
        throw std::invalid_argument("dual: R must have one row per row of M");
      M_ = M.data();
      m_stride_ = M.shape(1);
      diag_ = diag.data();
    }
    if (sparse) {
      if (!r_idx || !r_val) throw std::invalid_argument("R needs indptr, indices and data");
      if (r_ptr->ndim() != 1 || (!dual && r_ptr->shape(0) != w_cols + 1))
        throw std::invalid_argument("R: indptr must have W.shape[1] + 1 entries");
      m_ = -1;  // set below from the mappings or n_items
    } else {
      if (B->ndim() != 2 || B->shape(0) != w_cols) throw std::invalid_argument("B must be a 2-D (W.shape[1], m) array");
      B_ = B->data();
      m_ = B->shape(1);
      keep(*B);
    }
    if (out_map) {
      if (out_map->ndim() != 1) throw std::invalid_argument("out_map must be 1-D");
      if (m_ >= 0 && out_map->shape(0) != m_) throw std::invalid_argument("out_map must map every model column");
      m_ = out_map->shape(0);
      out_ = out_map->data();
      for (int64_t c = 0; c < m_; ++c)
        if (out_[c] < 0 || out_[c] >= n_items_) throw std::out_of_range("out_map: item id out of range");
      keep(*out_map);
    }
    if (m_ < 0) m_ = n_items_;
    if (!out_ && m_ != n_items_) throw std::invalid_argument("the model must have n_items columns (or an out_map)");
    if (M_ && C_.n_rows != m_) throw std::invalid_argument("dual: the model must have one row of C per column");
    if (in_map) {
      if (in_map->ndim() != 1 || in_map->shape(0) != n_items_)
        throw std::invalid_argument("in_map must hold one entry per item");
      in_ = in_map->data();
      keep(*in_map);
    }
    if (order) {
      if (sparse || w_cols != 1) throw std::invalid_argument("a ranked model has one dense row of scores");
      if (order->ndim() != 1) throw std::invalid_argument("order must be 1-D");
      order_ = order->data();
      n_order_ = order->shape(0);
      keep(*order);
    }
    if (sparse) {
      R_ = lazy_csr<I>(*r_ptr, *r_idx, &*r_val, m_, "R");
      keep(*r_ptr);
      keep(*r_idx);
      keep(*r_val);
    }
    E_ = lazy_csr<I>(e_ptr, e_idx, nullptr, m_, "E");
    if (E_.n_rows != n_users_) throw std::invalid_argument("W and E must have one row per user");
    keep(w_ptr);
    keep(w_idx);
    keep(w_val);
    keep(e_ptr);
    keep(e_idx);
  }

  py::object topn(int64_t user, int64_t n, bool filter) const {
    if (user < 0 || user >= n_users_ || n < 0) return py::none();
    int64_t wl[2], el[2];
    const int64_t width = std::min(n, m_);
    std::vector<int64_t> it(static_cast<size_t>(width), -1);
    std::vector<float> sc(static_cast<size_t>(width), -std::numeric_limits<float>::infinity());
    if (width > 0) {
      // A ranked walk over a short row takes well under a microsecond: handing the GIL over and back
      // would cost more than it lets other threads do (with two threads it halved Popularity's rate).
      const bool tiny = order_ && (!filter || E_.indptr[user + 1] - E_.indptr[user] <= kTinyRow);
      std::optional<py::gil_scoped_release> release;
      if (!tiny) release.emplace();
      const auto W = query_row(user, wl);
      CsrView<float, I> E;
      if (filter) E = cpu::lazy_row(E_, user, el, "E");
      run(W, filter ? &E : nullptr, width, it.data(), sc.data());
    }
    return result(it, sc);
  }

  py::object topn_row(int64_t user, const py::array& indptr, const py::array& indices, const py::array& data,
                      int64_t n_rows, int64_t n_cols, int64_t n, bool filter) const {
    std::vector<I> idx;
    std::vector<float> val;
    if (n < 0 || !prepare_row(user, indptr, indices, data, n_rows, n_cols, idx, val)) return py::none();
    const int64_t width = std::min(n, m_);
    std::vector<int64_t> it(static_cast<size_t>(width), -1);
    std::vector<float> sc(static_cast<size_t>(width), -std::numeric_limits<float>::infinity());
    if (width > 0) {
      const bool tiny = order_ && (!filter || static_cast<int64_t>(idx.size()) <= kTinyRow);  // as in topn
      std::optional<py::gil_scoped_release> release;
      if (!tiny) release.emplace();
      run_row(user, idx, val, filter, width, it.data(), sc.data());
    }
    return result(it, sc);
  }

  /// topn_row's checks of the user's row, and the row in the model's columns
  /// (idx, val); false where the general path must decide. Needs the GIL.
  bool prepare_row(int64_t user, const py::array& indptr, const py::array& indices, const py::array& data,
                   int64_t n_rows, int64_t n_cols, std::vector<I>& idx, std::vector<float>& val) const {
    if (user < 0 || user >= n_users_ || n_cols != n_items_ || n_rows < 1) return false;
    if (!py::isinstance<CArray<float>>(data) ||
        (!py::isinstance<CArray<int64_t>>(indptr) && !py::isinstance<CArray<int32_t>>(indptr)))
      return false;
    const auto v = py::reinterpret_borrow<CArray<float>>(data);
    if (v.ndim() != 1 || indices.ndim() != 1 || indices.shape(0) != v.shape(0)) return false;
    if (indptr.ndim() != 1 || indptr.shape(0) != n_rows + 1) return false;
    const int64_t r = n_rows == 1 ? 0 : user;  // one row, or the user's row of a full matrix
    if (r >= n_rows) return false;
    int64_t b, e;
    row_bounds(indptr, r, b, e);
    if (b < 0 || e < b || e > v.shape(0)) return false;
    if (n_rows == 1 && (b != 0 || e != v.shape(0))) return false;  // the general path checks the whole matrix
    return canonical_row(indices, v.data(), b, e, idx, val);
  }

  /// The top-width of a prepared row into it / sc (pre-filled -1 / -inf), in
  /// the model's columns; no Python objects, so callable without the GIL.
  void run_row(int64_t user, const std::vector<I>& idx, const std::vector<float>& val, bool filter, int64_t width,
               int64_t* it, float* sc) const {
    int64_t wl[2], rl[2] = {0, static_cast<int64_t>(idx.size())};
    CsrView<float, I> row;
    row.n_rows = 1;
    row.n_cols = m_;
    row.indptr = rl;
    row.indices = idx.data();
    row.data = val.data();
    if (row_is_query_) {
      run(row, filter ? &row : nullptr, width, it, sc);
    } else {
      const auto W = query_row(user, wl);
      run(W, filter ? &row : nullptr, width, it, sc);
    }
  }

  /// Columns of the model's lists (m_) and their item ids (out_, or null: the identity).
  int64_t n_columns() const { return m_; }
  int64_t n_users() const { return n_users_; }
  int64_t item_of(int64_t column) const { return out_ ? out_[column] : column; }

  /// The given row in the model's columns: strictly increasing ids below
  /// n_items, finite non-zero values (else false: the general path), mapped
  /// by in_map where the model keeps a subset of the items.
  template <typename J>
  bool gather(const J* ids, const float* vals, int64_t b, int64_t e, std::vector<I>& idx,
              std::vector<float>& val) const {
    idx.reserve(static_cast<size_t>(e - b));
    val.reserve(static_cast<size_t>(e - b));
    int64_t prev = -1;
    for (int64_t t = b; t < e; ++t) {
      const int64_t j = static_cast<int64_t>(ids[t]);
      const float x = vals[t];
      if (j <= prev || j >= n_items_ || !std::isfinite(x) || x == 0.0f) return false;
      prev = j;
      const int64_t c = in_ ? in_[j] : j;
      if (c < 0) continue;
      if (c >= m_) return false;
      idx.push_back(static_cast<I>(c));
      val.push_back(x);
    }
    return true;
  }

 private:
  void keep(const py::object& a) { alive_.push_back(a); }

  CsrView<float, I> query_row(int64_t user, int64_t* local) const {
    if (!wd_) return cpu::lazy_row(W_, user, local, "W");
    local[0] = 0;
    local[1] = W_.n_cols;
    CsrView<float, I> v;
    v.n_rows = 1;
    v.n_cols = W_.n_cols;
    v.indptr = local;
    v.indices = iota_.data();
    v.data = wd_ + user * W_.n_cols;
    return v;
  }

  static void row_bounds(const py::array& indptr, int64_t r, int64_t& b, int64_t& e) {
    if (py::isinstance<CArray<int64_t>>(indptr)) {
      const auto* p = static_cast<const int64_t*>(indptr.data());
      b = p[r], e = p[r + 1];
    } else {
      const auto* p = static_cast<const int32_t*>(indptr.data());
      b = p[r], e = p[r + 1];
    }
  }

  bool canonical_row(const py::array& indices, const float* vals, int64_t b, int64_t e, std::vector<I>& idx,
                     std::vector<float>& val) const {
    if (indices.ndim() != 1 || indices.shape(0) < e) return false;
    if (py::isinstance<CArray<int32_t>>(indices))
      return gather(static_cast<const int32_t*>(indices.data()), vals, b, e, idx, val);
    if (py::isinstance<CArray<int64_t>>(indices))
      return gather(static_cast<const int64_t*>(indices.data()), vals, b, e, idx, val);
    return false;
  }

  void run(const CsrView<float, I>& W, const CsrView<float, I>* E, int64_t n, int64_t* it, float* sc) const {
    if (M_)
      cpu::user_topn_dual<I>(W, C_, R_, M_, m_stride_, diag_, nullptr, E, drop_zero_, n, it, sc, 1);
    else if (order_)
      ranked(E, n, it, sc);
    else if (wd_)  // W is a row of dense factors (query_row): the factor kernel, as the batch path
      cpu::user_topn_factors<I>(W.data, 1, W.n_cols, B_, m_, nullptr, E, n, it, sc, 1);
    else if (B_)
      cpu::user_topn_dense<I>(W, B_, m_, m_, nullptr, E, drop_zero_, n, it, sc, 1);
    else
      cpu::user_topn_sparse<I>(W, R_, nullptr, E, n, it, sc, 1);
  }

  /// A model that ranks every user's items alike (Popularity): the first n
  /// of the fixed ranking that the user does not have, O(n + |E| log |E|).
  void ranked(const CsrView<float, I>* E, int64_t n, int64_t* it, float* sc) const {
    // a row of E is canonical (sorted ids): the training rows, or a given row checked by gather
    cpu::ranked_topn_row<I>(order_, n_order_, m_, E ? E->indices : nullptr, E ? E->indptr[1] : 0, B_, n, it, sc);
  }

  py::object result(const std::vector<int64_t>& it, const std::vector<float>& sc) const {
    return topn_result(it, sc, n_items_, out_);
  }

  //: rows up to this long make a ranked walk "tiny" (run without releasing the GIL)
  static constexpr int64_t kTinyRow = 1024;
  cpu::LazyCsr<I> W_, E_;
  const float* wd_ = nullptr;  // dense W (n_users_ x W_.n_cols), or null
  std::vector<I> iota_;
  int64_t n_users_ = 0;
  cpu::LazyCsr<I> R_;
  cpu::LazyCsr<int32_t> C_;  // dual form (EASE): the item-major training matrix, M and the self terms
  const float* M_ = nullptr;
  int64_t m_stride_ = 0;
  const float* diag_ = nullptr;
  const float* B_ = nullptr;
  const int64_t* in_ = nullptr;
  const int64_t* out_ = nullptr;
  const int64_t* order_ = nullptr;
  int64_t n_order_ = 0;
  int64_t m_ = 0;
  int64_t n_items_ = 0;
  bool row_is_query_ = false;
  bool drop_zero_ = true;
  std::vector<py::object> alive_;
};

/// One member of a fused blend request: its bound server and its prepared row.
struct BlendMember {
  const RowServer<int32_t>* s32 = nullptr;
  const RowServer<int64_t>* s64 = nullptr;
  std::vector<int32_t> idx32;
  std::vector<int64_t> idx64;
  std::vector<float> val;
  std::vector<int64_t> items;  // the member's list, item ids, cut at the first padding
  std::vector<float> scores;
};

/// f(server, the member's row indices) on the member's typed server.
template <typename F>
decltype(auto) on_server(BlendMember& b, F&& f) {
  return b.s32 ? f(*b.s32, b.idx32) : f(*b.s64, b.idx64);
}

/// Every member's prepare_row of the given row; false where one must leave it to the general path.
bool prepare_members(std::vector<BlendMember>& members, int64_t user, const py::array& indptr, const py::array& indices,
                     const py::array& data, int64_t n_rows, int64_t n_cols) {
  for (BlendMember& b : members)
    if (!on_server(b, [&](const auto& s, auto& idx) {
          return s.prepare_row(user, indptr, indices, data, n_rows, n_cols, idx, b.val);
        }))
      return false;
  return true;
}

/// Every prepared member's top-`width` list for the user (ids mapped to
/// items, cut at the first padding, as topn_row returns it), blended by
/// cpu::merge_topn into out_ids / out_scores (n, pre-filled -1 / -inf).
/// Touches no Python object: called with the GIL released.
void blend_lists(std::vector<BlendMember>& members, const double* w, bool by_score, int64_t width, int64_t user,
                 bool filter, const uint8_t* keep, int64_t n, int64_t n_items, int64_t* out_ids, float* out_scores) {
  std::vector<cpu::RankedList> lists(members.size());
  for (size_t t = 0; t < members.size(); ++t) {
    BlendMember& b = members[t];
    size_t found = 0;
    on_server(b, [&](const auto& s, const auto& idx) {
      const int64_t len = std::min(width, s.n_columns());
      b.items.assign(static_cast<size_t>(std::max<int64_t>(len, 0)), -1);
      b.scores.assign(b.items.size(), -std::numeric_limits<float>::infinity());
      if (len > 0) s.run_row(user, idx, b.val, filter, len, b.items.data(), b.scores.data());
      while (found < b.items.size() && b.items[found] >= 0) ++found;
      for (size_t q = 0; q < found; ++q) b.items[q] = s.item_of(b.items[q]);
    });
    lists[t] = {b.items.data(), true, b.scores.data(), false, static_cast<int64_t>(found), w[t]};
  }
  cpu::merge_topn(lists, by_score, width, n_items, keep, nullptr, 0, n, out_ids, out_scores);
}

/// The row servers of a blend's members, typed (None where one is not a RowServer).
std::optional<std::vector<BlendMember>> blend_members(const py::sequence& servers) {
  std::vector<BlendMember> members(static_cast<size_t>(py::len(servers)));
  for (size_t t = 0; t < members.size(); ++t) {
    const py::handle s = servers[t];
    if (py::isinstance<RowServer<int32_t>>(s))
      members[t].s32 = s.cast<const RowServer<int32_t>*>();
    else if (py::isinstance<RowServer<int64_t>>(s))
      members[t].s64 = s.cast<const RowServer<int64_t>*>();
    else
      return std::nullopt;
  }
  return members;
}

/// A Blend's one-user request in one call (Blend._topn_one): every member's
/// row server lists its top `width` for the user's row, and cpu::merge_topn
/// blends the lists, all with the GIL released once. The lists are those
/// topn_row returns (ids mapped to items, cut at the first padding), so the
/// result equals topn_row per member followed by merge_topn. None where a
/// server's topn_row would return None, or one is not a RowServer (the
/// caller then asks the members one by one).
py::object blend_topn_row(const py::sequence& servers, const CArray<double>& weights, bool by_score, int64_t width,
                          int64_t user, const py::array& indptr, const py::array& indices, const py::array& data,
                          int64_t n_rows, int64_t n_cols, bool filter, std::optional<CArray<bool>> keep, int64_t n) {
  const size_t k = static_cast<size_t>(py::len(servers));
  if (weights.ndim() != 1 || static_cast<size_t>(weights.shape(0)) != k)
    throw std::invalid_argument("weights must hold one weight per server");
  if (width < 1) throw std::invalid_argument("width must be >= 1");
  if (n < 0 || n > n_cols) throw std::invalid_argument("n must lie in [0, n_items]");
  if (keep && (keep->ndim() != 1 || keep->shape(0) != n_cols))
    throw std::invalid_argument("keep must hold one flag per item");
  auto typed = blend_members(servers);
  if (!typed) return py::none();  // e.g. a nested blend's server: the caller asks the members one by one
  std::vector<BlendMember>& members = *typed;
  if (!prepare_members(members, user, indptr, indices, data, n_rows, n_cols)) return py::none();
  const uint8_t* kp = keep ? reinterpret_cast<const uint8_t*>(keep->data()) : nullptr;
  std::vector<int64_t> out_ids(static_cast<size_t>(n), -1);
  std::vector<float> out_scores(static_cast<size_t>(n), -std::numeric_limits<float>::infinity());
  {
    py::gil_scoped_release release;  // the servers and arrays are owned by the caller's arguments
    blend_lists(members, weights.data(), by_score, width, user, filter, kp, n, n_cols, out_ids.data(),
                out_scores.data());
  }
  return py::make_tuple(to_numpy(std::move(out_ids)), to_numpy(std::move(out_scores)));
}

/// A fitted Blend bound for one-user requests, as RowServer is for one
/// model: `topn(user, n, filter)` (the user's row of the blend's
/// user_items) and `topn_row(...)` (a given row) return what the blend's
/// one-user path returns -- the members' topn_row lists merged by
/// cpu::merge_topn -- with the GIL released once: ids int32 (int64 beyond
/// 2**31 items) and float32 scores, only the items found; or None where
/// that path must decide. Holds the members' servers, the weights and the
/// user_items arrays (kept alive); every call has its own scratch.
template <typename I>
class BlendServer {
 public:
  BlendServer(const py::sequence& servers, const CArray<double>& weights, bool by_score, int64_t n_candidates,
              int64_t n_items, const CArray<int64_t>& e_ptr, const CArray<I>& e_idx, const CArray<float>& e_val)
      : by_score_(by_score), n_cand_(n_candidates), n_items_(n_items) {
    auto typed = blend_members(servers);
    if (!typed) throw std::invalid_argument("every server must be a RowServer");
    members_ = std::move(*typed);
    if (weights.ndim() != 1 || static_cast<size_t>(weights.shape(0)) != members_.size())
      throw std::invalid_argument("weights must hold one weight per server");
    w_.assign(weights.data(), weights.data() + weights.shape(0));
    if (n_candidates < 1 || n_items < 0) throw std::invalid_argument("n_candidates must be >= 1, n_items >= 0");
    E_ = lazy_csr<I>(e_ptr, e_idx, &e_val, n_items, "user_items");
    for (size_t t = 0; t < members_.size(); ++t) alive_.push_back(servers[t]);
    alive_.push_back(e_ptr);
    alive_.push_back(e_idx);
    alive_.push_back(e_val);
  }

  py::object topn(int64_t user, int64_t n, bool filter) const {
    if (user < 0 || user >= E_.n_rows || n < 0) return py::none();
    int64_t el[2];
    const auto row = cpu::lazy_row(E_, user, el, "user_items");
    std::vector<BlendMember> members = members_;  // the typed servers; the rows and lists are this call's
    for (BlendMember& b : members)
      if (!on_server(b, [&](const auto& s, auto& idx) {
            return user < s.n_users() && s.gather(row.indices, row.data, 0, row.indptr[1], idx, b.val);
          }))
        return py::none();
    return serve(members, user, n, filter);
  }

  py::object topn_row(int64_t user, const py::array& indptr, const py::array& indices, const py::array& data,
                      int64_t n_rows, int64_t n_cols, int64_t n, bool filter) const {
    if (user < 0 || user >= E_.n_rows || n < 0) return py::none();
    std::vector<BlendMember> members = members_;
    if (!prepare_members(members, user, indptr, indices, data, n_rows, n_cols)) return py::none();
    return serve(members, user, n, filter);
  }

 private:
  /// As Blend._topn_one: n capped at the catalogue, every member listing max(n_candidates, n).
  py::object serve(std::vector<BlendMember>& members, int64_t user, int64_t n, bool filter) const {
    const int64_t n_out = std::min(n, n_items_);
    const int64_t width = std::min(std::max(n_cand_, n_out), n_items_);
    std::vector<int64_t> ids(static_cast<size_t>(n_out), -1);
    std::vector<float> sc(static_cast<size_t>(n_out), -std::numeric_limits<float>::infinity());
    if (n_out > 0) {
      py::gil_scoped_release release;
      blend_lists(members, w_.data(), by_score_, width, user, filter, nullptr, n_out, n_items_, ids.data(), sc.data());
    }
    return topn_result(ids, sc, n_items_, nullptr);  // merge_topn's ids are items already
  }

  std::vector<BlendMember> members_;
  std::vector<double> w_;
  bool by_score_;
  int64_t n_cand_;
  int64_t n_items_;
  cpu::LazyCsr<I> E_;
  std::vector<py::object> alive_;
};

template <typename I>
void bind_blend_server(py::module_& m, const char* name) {
  py::class_<BlendServer<I>>(m, name,
                             "A fitted Blend bound for one-user requests (see cohortrec.ops.blend_server): topn and "
                             "topn_row release the GIL once and return (ids, scores) or None.")
      .def(py::init<const py::sequence&, const CArray<double>&, bool, int64_t, int64_t, const CArray<int64_t>&,
                    const CArray<I>&, const CArray<float>&>(),
           py::arg("servers"), py::arg("weights").noconvert(), py::arg("by_score"), py::arg("n_candidates"),
           py::arg("n_items"), py::arg("e_indptr").noconvert(), py::arg("e_indices").noconvert(),
           py::arg("e_data").noconvert())
      .def("topn", &BlendServer<I>::topn, py::arg("user"), py::arg("n"), py::arg("filter"),
           "(ids, scores) of one user's blended top-n from the bound rows, or None for the general path.")
      .def("topn_row", &BlendServer<I>::topn_row, py::arg("user"), py::arg("indptr"), py::arg("indices"),
           py::arg("data"), py::arg("n_rows"), py::arg("n_cols"), py::arg("n"), py::arg("filter"),
           "(ids, scores) of one user given as a one-row CSR, or None for the general path.");
}

template <typename I>
void bind_row_server(py::module_& m, const char* name) {
  py::class_<RowServer<I>>(m, name,
                           "One fitted model's arrays bound for one-user requests (see cohortrec.ops.row_server): "
                           "topn and topn_row release the GIL and return (ids, scores) or None.")
      .def(py::init<const CArray<int64_t>&, const CArray<I>&, const CArray<float>&, int64_t, const CArray<int64_t>&,
                    const CArray<I>&, int64_t, std::optional<CArray<int64_t>>, std::optional<CArray<I>>,
                    std::optional<CArray<float>>, std::optional<CArray<float>>, std::optional<CArray<int64_t>>,
                    std::optional<CArray<int64_t>>, std::optional<CArray<int64_t>>, std::optional<CArray<float>>, bool,
                    bool, std::optional<py::tuple>>(),
           py::arg("w_indptr").noconvert(), py::arg("w_indices").noconvert(), py::arg("w_data").noconvert(),
           py::arg("w_cols"), py::arg("e_indptr").noconvert(), py::arg("e_indices").noconvert(), py::arg("n_items"),
           py::arg("r_indptr").noconvert(), py::arg("r_indices").noconvert(), py::arg("r_data").noconvert(),
           py::arg("B").noconvert(), py::arg("in_map").noconvert(), py::arg("out_map").noconvert(),
           py::arg("order").noconvert(), py::arg("w_dense").noconvert(), py::arg("row_is_query"), py::arg("drop_zero"),
           py::arg("dual") = py::none())
      .def("topn", &RowServer<I>::topn, py::arg("user"), py::arg("n"), py::arg("filter"),
           "(ids, scores) of one user's top-n from the bound arrays, or None for the general path.")
      .def("topn_row", &RowServer<I>::topn_row, py::arg("user"), py::arg("indptr"), py::arg("indices"), py::arg("data"),
           py::arg("n_rows"), py::arg("n_cols"), py::arg("n"), py::arg("filter"),
           "(ids, scores) of one user given as a one-row CSR (or the user's row of a full matrix), or None "
           "for the general path.");
}

}  // namespace

void bind_user_topn(py::module_& m) {
  bind_user_topn_for<int32_t>(m);
  bind_user_topn_for<int64_t>(m);
  bind_row_server<int32_t>(m, "RowServer32");
  bind_row_server<int64_t>(m, "RowServer64");
  bind_blend_server<int32_t>(m, "BlendServer32");
  bind_blend_server<int64_t>(m, "BlendServer64");
  m.def("blend_topn_row", &blend_topn_row, py::arg("servers"), py::arg("weights").noconvert(), py::arg("by_score"),
        py::arg("width"), py::arg("user"), py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_rows"),
        py::arg("n_cols"), py::arg("filter"), py::arg("keep").noconvert(), py::arg("n"),
        "A blend's one-user top-n: every row server's topn_row list merged by merge_topn, the GIL released once; "
        "None where a server's topn_row returns None.");
}

}  // namespace cohortrec::bindings
