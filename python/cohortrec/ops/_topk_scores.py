"""Top-n scoring of sparse products (the scoring step of neighbour CF)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec._validation import check_alloc
from cohortrec.ops import _cuda
from cohortrec.ops._backend import kernels, resolve_device, resolve_threads
from cohortrec.ops._validation import (
    as_csr,
    check_int,
    compress_columns,
    csr_arrays,
    index_dtype_for,
    sparse_dtype,
)


def topk_scores(
    W: Any,
    R: Any,
    *,
    n: int = 10,
    exclude: Any | None = None,
    device: str = "auto",
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` items per row of the sparse product ``W @ R``.

    One kernel serves user-kNN scoring (``W`` = user-user neighbour weights,
    ``R`` = user x item interactions) and item-kNN scoring (``W`` =
    interactions, ``R`` = item-item similarities).

    Parameters
    ----------
    W : scipy.sparse matrix, shape (u, j)
    R : scipy.sparse matrix, shape (j, m)
    n : int, default 10
        Items kept per row.
    exclude : scipy.sparse matrix, shape (u, m), optional
        Items stored in row ``u`` (whatever their value) are never returned
        for row ``u`` (e.g. the items a user already has).
    device : {"auto", "cpu", "cuda"}
    n_threads : int, optional
        CPU threads; all available cores by default.

    Returns
    -------
    items : ndarray of int64, shape (u, n)
    scores : ndarray, shape (u, n)
        Sorted by score descending, ties by smaller item id. Only items
        reachable through a stored nonzero (``W[u, j] != 0`` and
        ``R[j, i] != 0``) are candidates; rows with fewer than ``n`` of them
        are padded with ``-1`` / ``-inf``.
    """
    n = check_int(n, "n", minimum=0)
    threads = resolve_threads(n_threads)
    dev = resolve_device(device, op="topk_scores", cuda_kernel=True)
    if _cuda.on_device(W, R, exclude):  # cupyx.scipy.sparse input: computed on its device
        return _cuda.topk_scores_device(W, R, n=n, exclude=exclude, device=device)
    dtype = np.result_type(sparse_dtype(W, "W"), sparse_dtype(R, "R"))
    W_ = as_csr(W, "W", dtype)
    R_ = as_csr(R, "R", dtype)
    if W_.shape[1] != R_.shape[0]:
        raise ValueError(f"R must have W.shape[1] = {W_.shape[1]} rows, got shape {R_.shape}")
    u, m = W_.shape[0], R_.shape[1]
    E_ = None
    if exclude is not None:
        if not sp.issparse(exclude):
            raise TypeError(f"exclude must be a scipy.sparse matrix or None, got {type(exclude).__name__}")
        if exclude.shape != (u, m):
            raise ValueError(f"exclude must have shape {(u, m)} (W.shape[0], R.shape[1]), got {exclude.shape}")
        E_ = sp.csr_matrix(exclude, copy=False)
    if R_.nnz and not R_.data.all():  # explicit zeros are not candidates
        R_ = R_.copy()
        R_.eliminate_zeros()
    check_alloc(u * n * (8 + np.dtype(dtype).itemsize), f"the ({u}, n={n}) result")
    items = np.full((u, n), -1, dtype=np.int64)
    scores = np.full((u, n), -np.inf, dtype=dtype)
    if u == 0 or n == 0 or m == 0:
        return items, scores
    used = None
    if E_ is not None:
        mats, m_c, used = compress_columns([R_, E_], m)
        R_, E_ = mats
    else:
        mats, m_c, used = compress_columns([R_], m)
        R_ = mats[0]
    others = [E_] if E_ is not None else []
    idx_dtype = index_dtype_for(W_, R_, *others, n_cols=max(m_c, W_.shape[1]))
    w = csr_arrays(W_, idx_dtype)
    r = csr_arrays(R_, idx_dtype)
    if E_ is not None:
        e_ptr = np.ascontiguousarray(E_.indptr, dtype=np.int64)
        e_idx = np.ascontiguousarray(E_.indices, dtype=idx_dtype)
    else:
        e_ptr = e_idx = None
    kernels(dev).topk_scores(*w, u, W_.shape[1], *r, m_c, e_ptr, e_idx, items, scores, threads)
    if used is not None:
        found = items >= 0
        items[found] = used[items[found]]
    return items, scores
