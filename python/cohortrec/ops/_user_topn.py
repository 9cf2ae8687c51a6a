"""Per-request scoring kernels (private): a few users against a fitted model matrix.

The serving path of the recommenders. The model matrix is validated once
(:func:`prepare_csr`, :func:`prepare_dense`) and then only the parts a
request reads are checked by the kernel, so one user costs O(work), not
O(nnz(model)). Every call allocates its own scratch inside the kernel and
runs with the GIL released: calls from many Python threads run in parallel
and never share mutable state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from cohortrec import _core
from cohortrec._validation import as_csr, check_finite, check_int
from cohortrec.ops._validation import index_dtype_for

__all__ = ["ModelCsr", "prepare_csr", "prepare_dense", "user_topn_dense", "user_topn_sparse"]


class ModelCsr(NamedTuple):
    """A validated, read-only float32 CSR model matrix in the kernels' layout."""

    indptr: np.ndarray   # int64
    indices: np.ndarray  # int32 or int64
    data: np.ndarray     # float32
    n_rows: int
    n_cols: int


def prepare_csr(R: Any, name: str = "R") -> ModelCsr:
    """Validate a sparse model matrix once (canonical float32 CSR, finite).

    The arrays are shared with ``R`` where their dtypes already fit. The
    kernels check every entry they read, so a later change of ``R`` cannot
    make them read out of bounds (it would only change the scores).
    """
    M = as_csr(R, name, np.dtype(np.float32))
    idx_dtype = index_dtype_for(M, n_cols=max(M.shape))
    return ModelCsr(np.ascontiguousarray(M.indptr, dtype=np.int64), np.ascontiguousarray(M.indices, dtype=idx_dtype),
                    np.ascontiguousarray(M.data, dtype=np.float32), int(M.shape[0]), int(M.shape[1]))


def prepare_dense(B: Any, name: str = "B") -> np.ndarray:
    """A C-contiguous float32 copy-free view of a dense model matrix (checked finite once)."""
    B = np.ascontiguousarray(B, dtype=np.float32)
    if B.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {B.shape}")
    check_finite(B, name)
    return B


def _query(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, idx_dtype: np.dtype,
           name: str, check: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = np.ascontiguousarray(data, dtype=np.float32)
    if check:
        check_finite(data, name)
    return (np.ascontiguousarray(indptr, dtype=np.int64), np.ascontiguousarray(indices, dtype=idx_dtype), data)


def _outputs(u: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((u, n), -1, dtype=np.int64), np.full((u, n), -np.inf, dtype=np.float32)


def _exclusion(e_indptr, e_indices, idx_dtype):
    if e_indptr is None:
        return None, None
    return np.ascontiguousarray(e_indptr, dtype=np.int64), np.ascontiguousarray(e_indices, dtype=idx_dtype)


def _keep(keep: np.ndarray | None, m: int) -> np.ndarray | None:
    if keep is None:
        return None
    keep = np.ascontiguousarray(keep, dtype=bool)
    if keep.shape != (m,):
        raise ValueError(f"keep must hold one flag per item ({m}), got shape {keep.shape}")
    return keep


def user_topn_sparse(w_indptr: np.ndarray, w_indices: np.ndarray, w_data: np.ndarray, R: ModelCsr, n: int, *,
                     keep: np.ndarray | None = None, e_indptr: np.ndarray | None = None,
                     e_indices: np.ndarray | None = None, n_threads: int = 1,
                     check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` items per query row of ``W @ R`` (the same scores as :func:`topk_scores`).

    Parameters
    ----------
    w_indptr, w_indices, w_data : ndarray
        The query rows ``W`` (u x R.n_rows) as CSR arrays.
    R : ModelCsr
        From :func:`prepare_csr`.
    n : int
    keep : bool ndarray of shape (R.n_cols,), optional
        Only these items are candidates.
    e_indptr, e_indices : ndarray, optional
        Items never returned per query row (CSR arrays, u rows).
    n_threads : int, default 1
    check : bool, default True
        Check that ``w_data`` is finite (callers that validated it pass False).

    Returns
    -------
    items : int64 ndarray (u, n), scores : float32 ndarray (u, n)
        Padded with -1 / -inf.
    """
    if type(n) is not int or n < 0:
        n = check_int(n, "n", minimum=0)
    u = len(w_indptr) - 1
    dt = R.indices.dtype
    w = _query(w_indptr, w_indices, w_data, dt, "W", check)
    e = _exclusion(e_indptr, e_indices, dt)
    items, scores = _outputs(u, n)
    _core.user_topn_sparse(*w, u, R.indptr, R.indices, R.data, R.n_cols, _keep(keep, R.n_cols), e[0], e[1],
                           items, scores, int(n_threads))
    return items, scores


def user_topn_dense(w_indptr: np.ndarray, w_indices: np.ndarray, w_data: np.ndarray, B: np.ndarray, n: int, *,
                    keep: np.ndarray | None = None, e_indptr: np.ndarray | None = None,
                    e_indices: np.ndarray | None = None, drop_zero: bool = True,
                    n_threads: int = 1, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` items per query row of ``W @ B`` with ``B`` dense (from :func:`prepare_dense`).

    Scores are accumulated in float32 in the order of ``W``'s entries;
    non-finite scores, and zero scores with ``drop_zero``, are never
    returned. Other parameters and the result as in :func:`user_topn_sparse`.
    """
    if type(n) is not int or n < 0:
        n = check_int(n, "n", minimum=0)
    u = len(w_indptr) - 1
    dt = np.dtype(np.int32) if B.shape[0] <= np.iinfo(np.int32).max and B.shape[1] <= np.iinfo(np.int32).max \
        else np.dtype(np.int64)
    w = _query(w_indptr, w_indices, w_data, dt, "W", check)
    e = _exclusion(e_indptr, e_indices, dt)
    items, scores = _outputs(u, n)
    _core.user_topn_dense(*w, u, B, _keep(keep, B.shape[1]), e[0], e[1], bool(drop_zero), items, scores,
                          int(n_threads))
    return items, scores


def csr_query(M: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of a canonical CSR query matrix."""
    return M.indptr, M.indices, M.data
