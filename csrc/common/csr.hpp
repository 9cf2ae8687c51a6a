#pragma once
// Non-owning views of CSR matrices and an owning result type.
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace cohortrec {

/// A read-only CSR matrix: `indptr` has n_rows + 1 entries (int64 so that
/// nnz may exceed 2^31), `indices` are column ids of type I.
template <typename T, typename I>
struct CsrView {
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  const int64_t* indptr = nullptr;
  const I* indices = nullptr;
  const T* data = nullptr;  // may be null: pattern-only matrix

  int64_t nnz() const { return n_rows ? indptr[n_rows] : 0; }

  /// Checks the invariants the kernels rely on; the Python layer validates
  /// first, this guards direct users of the bindings.
  void check(const char* name) const {
    if (n_rows < 0 || n_cols < 0) throw std::invalid_argument(std::string(name) + ": negative shape");
    if (n_rows == 0) return;
    if (indptr[0] != 0) throw std::invalid_argument(std::string(name) + ": indptr[0] must be 0");
    for (int64_t r = 0; r < n_rows; ++r)
      if (indptr[r + 1] < indptr[r]) throw std::invalid_argument(std::string(name) + ": indptr must be non-decreasing");
    const int64_t nz = indptr[n_rows];
    for (int64_t e = 0; e < nz; ++e)
      if (indices[e] < 0 || static_cast<int64_t>(indices[e]) >= n_cols)
        throw std::out_of_range(std::string(name) + ": column index out of range");
  }
};

/// Owning CSR result; the bindings hand the vectors to NumPy without a copy.
template <typename T, typename J>
struct CsrResult {
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  std::vector<int64_t> indptr;
  std::vector<J> indices;
  std::vector<T> data;
};

/// Transposes a CSR matrix (counting sort by column), dropping explicitly
/// stored zeros, so that B^T can drive Gustavson's row-by-row product.
/// Output row ids (= source rows) are of type J. With `row_scale`, every
/// value of source row r is multiplied by row_scale[r] (in double).
template <typename T, typename I, typename J>
void transpose_csr(const CsrView<T, I>& B, std::vector<int64_t>& t_ptr, std::vector<J>& t_idx, std::vector<T>& t_val,
                   const double* row_scale = nullptr) {
  const int64_t m = B.n_cols;
  t_ptr.assign(static_cast<size_t>(m) + 1, 0);
  const int64_t nz = B.nnz();
  for (int64_t e = 0; e < nz; ++e)
    if (B.data[e] != T(0)) ++t_ptr[static_cast<int64_t>(B.indices[e]) + 1];
  for (int64_t c = 0; c < m; ++c) t_ptr[c + 1] += t_ptr[c];
  t_idx.resize(static_cast<size_t>(t_ptr[m]));
  t_val.resize(static_cast<size_t>(t_ptr[m]));
  std::vector<int64_t> next(t_ptr.begin(), t_ptr.end() - 1);
  for (int64_t r = 0; r < B.n_rows; ++r) {
    for (int64_t e = B.indptr[r]; e < B.indptr[r + 1]; ++e) {
      const T v = B.data[e];
      if (v == T(0)) continue;
      const int64_t pos = next[B.indices[e]]++;
      t_idx[pos] = static_cast<J>(r);
      t_val[pos] = row_scale ? static_cast<T>(double(v) * row_scale[r]) : v;
    }
  }
}

}  // namespace cohortrec
