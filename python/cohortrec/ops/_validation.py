"""Input checking and conversion shared by the ops.

Everything that turns a user's argument into the exact arrays the native
bindings accept lives here, and every error names the argument at fault.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec._validation import as_csr, as_dense, check_finite, check_int, value_dtype

__all__ = ["as_csr", "as_dense", "check_finite", "check_int", "compress_columns", "csr_arrays",
           "index_dtype_for", "sparse_dtype", "value_dtype"]

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
