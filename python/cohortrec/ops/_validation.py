"""Input checking and conversion shared by the ops.

Everything that turns a user's argument into the exact arrays the native
bindings accept lives here, and every error names the argument at fault.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def value_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """The float dtype a kernel computes in for data of ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype in _FLOATS:
        return dtype
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype == np.bool_ or np.issubdtype(dtype, np.integer):
        return np.dtype(np.float64)
    raise TypeError(f"{name} must hold real numbers (float32/float64, int or bool), got dtype {dtype}")


def check_int(value: Any, name: str, *, minimum: int) -> int:
    """An integer parameter >= ``minimum`` (bools and floats are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def check_finite(values: np.ndarray, name: str) -> None:
    if values.size and not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def as_csr(M: Any, name: str, dtype: np.dtype | None = None) -> sp.csr_matrix:
    """A canonical CSR matrix (sorted, summed duplicates) with float data.

    ``dtype`` (default: from the data) is applied *before* duplicates are
    summed, so they add up in the precision of the computation. Never
    modifies the caller's matrix: a copy is made when anything changes.
    """
    if not sp.issparse(M):
        raise TypeError(
            f"{name} must be a scipy.sparse matrix or array (CSR preferred), got {type(M).__name__}"
        )
    if M.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {M.shape}")
    if dtype is None:
        dtype = value_dtype(M.dtype, name)
    else:
        value_dtype(M.dtype, name)  # still reject complex/object data
    if M.format != "csr":
        M = M.tocsr()
    M = sp.csr_matrix(M, dtype=dtype, copy=False)
    if not M.has_canonical_format:
        M = M.copy()
        M.sum_duplicates()
    check_finite(M.data, name)
    return M


def csr_arrays(M: sp.csr_matrix, index_dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr int64, indices ``index_dtype``, data) as contiguous arrays."""
    return (
        np.ascontiguousarray(M.indptr, dtype=np.int64),
        np.ascontiguousarray(M.indices, dtype=index_dtype),
        np.ascontiguousarray(M.data),
    )


def index_dtype_for(*mats: sp.csr_matrix, n_cols: int) -> np.dtype:
    """int32 when every column id fits, else int64."""
    if n_cols > np.iinfo(np.int32).max or any(m.indices.dtype == np.int64 and m.nnz and
                                               int(m.indices.max()) > np.iinfo(np.int32).max for m in mats):
        return np.dtype(np.int64)
    return np.dtype(np.int32)


def compress_columns(mats: list[sp.csr_matrix], n_cols: int) -> tuple[list[sp.csr_matrix], int, np.ndarray | None]:
    """Renumber columns to those used when the column space dwarfs the data.

    Kernels allocate O(n_cols) workspaces (a transposed matrix, an
    accumulator); a matrix with 3e9 columns and a few nonzeros must not make
    them allocate 3e9 entries. Dot products do not change.
    Returns (matrices, new n_cols, used columns or None when unchanged).
    """
    total = sum(m.nnz for m in mats)
    if n_cols <= 4 * total + 4096:
        return mats, n_cols, None
    used = np.unique(np.concatenate([m.indices for m in mats]))
    out = []
    for m in mats:
        idx = np.searchsorted(used, m.indices).astype(np.int64)
        out.append(sp.csr_matrix((m.data, idx, m.indptr), shape=(m.shape[0], len(used)), copy=False))
    return out, len(used), used


def sparse_dtype(M: Any, name: str) -> np.dtype:
    """The float dtype a sparse argument computes in (TypeError if not sparse)."""
    if not sp.issparse(M):
        raise TypeError(
            f"{name} must be a scipy.sparse matrix or array (CSR preferred), got {type(M).__name__}"
        )
    return value_dtype(M.dtype, name)


def as_dense(X: Any, name: str, dtype: np.dtype | None = None) -> np.ndarray:
    """A 2-D float array, without copying when the dtype already fits.

    Non-contiguous and Fortran-ordered arrays are passed to the kernels as
    strided views (no copy).
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got an array of shape {X.shape}")
    target = value_dtype(X.dtype, name) if dtype is None else np.dtype(dtype)
    if X.dtype != target:
        X = X.astype(target)
    if X.strides[0] % X.itemsize or X.strides[1] % X.itemsize:
        X = np.ascontiguousarray(X)
    return X
