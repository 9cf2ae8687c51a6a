"""Per-row top-k of a sparse matrix's stored entries, on the top-n scoring kernel."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec import _core
from cohortrec._validation import check_csr_structure, check_int
from cohortrec.ops._backend import resolve_threads
from cohortrec.ops._topk_scores import topk_scores
from cohortrec.ops._validation import csr_arrays, index_dtype_for


def row_topk(M: Any, k: int, *, exclude: Any | None = None, device: str = "auto",
             n_threads: int | None = None) -> sp.csr_matrix:
    """The ``k`` best stored entries of every row of ``M`` (value desc, column asc).

    Used to merge neighbour candidates found in several blocks or groups:
    ``M`` holds each row's candidates (at most one entry per column).
    Computed as the top-``k`` of ``M @ I`` with :func:`topk_scores`
    (identity ``I``: each candidate is one accumulation), so it runs in
    O(nnz + rows * k log k) in native code instead of a global
    ``lexsort`` of all candidates.

    Parameters
    ----------
    M : scipy.sparse matrix, shape (n, m)
    k : int
    exclude : scipy.sparse matrix, shape (n, m), optional
        Entries never kept (e.g. each row's own column).
    device, n_threads
        As for :func:`topk_scores`.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n, m)
        Rows sorted best first; stored entries that are not finite are dropped.
    """
    M = sp.csr_matrix(M)
    n, m = M.shape
    if M.dtype not in (np.float32, np.float64):
        M = M.astype(np.float64)
    if M.nnz == 0 or k <= 0:
        return sp.csr_matrix((n, m), dtype=M.dtype)
    eye = sp.identity(m, dtype=M.dtype, format="csr")
    items, scores = topk_scores(M, eye, n=int(k), exclude=exclude, device=device, n_threads=n_threads)
    valid = items >= 0
    indptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1), dtype=np.int64)])
    return sp.csr_matrix((scores[valid].astype(M.dtype, copy=False), items[valid], indptr), shape=(n, m))


def merge_topk_rows(old: Any, add: Any, k: int, *, rows: Any = None, new_rows: Any = None,
                    sort_indices: bool = False, n_threads: int | None = None) -> sp.csr_matrix:
    """Neighbour lists after some rows changed: rows replaced, or merged with new candidates.

    Row ``r`` of the result is

    * ``new_rows[q]`` where ``rows[q] == r`` (a list searched anew);
    * else the best ``k`` entries (value descending, column ascending) of
      ``old[r]`` together with ``add[r]``, when ``add[r]`` holds any;
    * else ``old[r]`` as it is.

    This is the merge step of the kNN models' online updates (an unchanged
    row keeps its old neighbours and adds its best among the changed rows),
    in one native pass that touches only the rows that change, instead of
    a top-k over every row.

    Parameters
    ----------
    old : scipy.sparse matrix, shape (n, m)
        The current lists.
    add : scipy.sparse matrix, shape (n, m)
        Candidates per row; a column stored in both ``old[r]`` and
        ``add[r]`` is a caller error (the merged row would hold it twice).
    k : int
        Entries kept in a merged row.
    rows : array-like of int, optional
        Rows replaced by ``new_rows`` (distinct, in ``[0, n)``).
    new_rows : scipy.sparse matrix, shape (len(rows), m), optional
    sort_indices : bool, default False
        Merged and replaced rows sorted by column (else merged rows come out
        best first and replaced rows as given); copied rows are never
        reordered.
    n_threads : int, optional
        CPU threads; all available cores by default.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n, m), float32
        Non-finite candidates of merged rows are dropped.
    """
    k = check_int(k, "k", minimum=0)
    O = sp.csr_matrix(old, dtype=np.float32)
    A = sp.csr_matrix(add, dtype=np.float32)
    n, m = O.shape
    if A.shape != (n, m):
        raise ValueError(f"add must have the shape of old {(n, m)}, got {A.shape}")
    replace = np.full(n, -1, dtype=np.int64)
    if rows is None:
        R = sp.csr_matrix((0, m), dtype=np.float32)
    else:
        r = np.asarray(rows)
        if r.ndim != 1 or (r.size and not np.issubdtype(r.dtype, np.integer)):
            raise ValueError("rows must be a 1-D array of row ids")
        r = r.astype(np.int64, copy=False)
        if r.size and (int(r.min()) < 0 or int(r.max()) >= n):
            raise ValueError(f"rows must lie in [0, {n})")
        if np.unique(r).size != r.size:
            raise ValueError("rows holds a row twice")
        R = sp.csr_matrix(new_rows, dtype=np.float32) if new_rows is not None else None
        if R is None or R.shape != (r.size, m):
            raise ValueError(f"new_rows must have shape {(r.size, m)}, got {None if R is None else R.shape}")
        replace[r] = np.arange(r.size)
    for M, name in ((O, "old"), (A, "add"), (R, "new_rows")):
        check_csr_structure(M.indptr, M.indices, M.data, M.shape, name)
    idx = index_dtype_for(O, A, R, n_cols=m)
    indptr, indices, data = _core.merge_topk_rows(*csr_arrays(O, idx), n, m, replace, *csr_arrays(R, idx),
                                                  R.shape[0], *csr_arrays(A, idx), k, bool(sort_indices),
                                                  resolve_threads(n_threads))
    return sp.csr_matrix((data, indices, indptr), shape=(n, m), copy=False)
