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

__all__ = ["DualModel", "ModelCsr", "prepare_csr", "prepare_dense", "prepare_dual", "row_server", "user_topn_dense",
           "user_topn_dual", "user_topn_factors", "user_topn_sparse"]


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


class DualModel(NamedTuple):
    """A validated dual-form EASE model in the layout of :func:`user_topn_dual`."""

    c_indptr: np.ndarray   # int64, (m + 1,): the training matrix item-major (items -> users)
    c_indices: np.ndarray  # int32: users
    c_data: np.ndarray     # float32: X[u, i] * query_scale[i]
    r_indptr: np.ndarray   # int64, (n + 1,): the training matrix user-major (users -> items)
    r_indices: np.ndarray  # int32 or int64: items
    r_data: np.ndarray     # float32: X[u, j] * score_scale[j]
    M: np.ndarray          # float32, (n, stride): symmetric n x n, rows padded with zeros to a multiple of 128
    diag: np.ndarray       # float32, (m,): the self term of an item the user holds


def prepare_dual(X: Any, query_scale: Any, score_scale: Any, M: Any, diag: Any) -> DualModel:
    """Validate a dual-form model once (see :func:`user_topn_dual`).

    Parameters
    ----------
    X : scipy.sparse matrix, shape (n, m)
        The training matrix (users x items).
    query_scale, score_scale : array-like of float, shape (m,)
        Per-item factors of ``X``'s values on the query side (``1 / Lambda``)
        and the score side (``c / (Lambda diag(P))``).
    M : array-like of float, shape (n, n)
        The symmetric inverse ``(I + X Lambda^-1 X^T)^-1``.
    diag : array-like of float, shape (m,)

    Returns
    -------
    DualModel
    """
    X = as_csr(X, "X", np.dtype(np.float64))
    nu, m = X.shape
    if nu > np.iinfo(np.int32).max:
        raise ValueError(f"the dual form needs fewer than 2**31 users, got {nu}")
    arrays = {}
    for a, name, shape in ((query_scale, "query_scale", (m,)), (score_scale, "score_scale", (m,)),
                           (M, "M", (nu, nu)), (diag, "diag", (m,))):
        a = np.asarray(a)
        if a.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
        check_finite(a, name)
        arrays[name] = a
    C = X.T.tocsr()  # items x users, canonical
    c_items = np.repeat(np.arange(m), np.diff(C.indptr))
    c_data = (C.data * arrays["query_scale"][c_items]).astype(np.float32)
    r_data = (X.data * arrays["score_scale"][X.indices]).astype(np.float32)
    check_finite(c_data, "query_scale * X")
    check_finite(r_data, "score_scale * X")
    # rows of M padded to whole strips of the vector kernel (no scalar tail per strip of users)
    Mp = np.zeros((nu, -(-nu // 128) * 128), dtype=np.float32)
    Mp[:, :nu] = arrays["M"]
    return DualModel(np.ascontiguousarray(C.indptr, dtype=np.int64), np.ascontiguousarray(C.indices, dtype=np.int32),
                     c_data, np.ascontiguousarray(X.indptr, dtype=np.int64),
                     np.ascontiguousarray(X.indices, dtype=index_dtype_for(X, n_cols=m)), r_data, Mp,
                     np.ascontiguousarray(arrays["diag"], dtype=np.float32))


def user_topn_dual(w_indptr: np.ndarray, w_indices: np.ndarray, w_data: np.ndarray, D: DualModel, n: int, *,
                   keep: np.ndarray | None = None, e_indptr: np.ndarray | None = None,
                   e_indices: np.ndarray | None = None, drop_zero: bool = True,
                   n_threads: int = 1, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` items per query row of EASE's scores ``W B``, computed in the dual form.

    With ``X`` the training matrix (n users), ``Lambda`` the regulariser and
    ``P = (X^T X + Lambda)^-1 = Lambda^-1 - Lambda^-1 X^T M X Lambda^-1``
    (Woodbury, ``M = (I + X Lambda^-1 X^T)^-1``), a user's scores are
    ``x B = x diag(...) + ((x Lambda^-1 X^T) M) X Lambda^-1 diag(c / diag(P))``:
    two passes over the training matrix and one over ``M``, O(nnz(X) + n^2)
    per user whatever the user's number of items, where the primal form
    reads ``|x|`` rows of the items x items matrix ``B``. The same candidates
    as :func:`user_topn_dense` on ``B`` (scores equal up to float32
    rounding); the same bits for a row alone or in a batch, any thread count.

    Parameters
    ----------
    w_indptr, w_indices, w_data : ndarray
        The query rows (u x m) as CSR arrays, in the model's item columns.
    D : DualModel
        From :func:`prepare_dual`.
    n, keep, e_indptr, e_indices, drop_zero, n_threads, check
        As in :func:`user_topn_dense`.

    Returns
    -------
    items : int64 ndarray (u, n), scores : float32 ndarray (u, n)
        Padded with -1 / -inf.
    """
    m = len(D.c_indptr) - 1
    u, w, e, items, scores = _request(n, w_indptr, w_indices, w_data, e_indptr, e_indices, D.r_indices.dtype, check)
    _core.user_topn_dual(*w, u, D.c_indptr, D.c_indices, D.c_data, D.r_indptr, D.r_indices, D.r_data, D.M, D.diag,
                         _keep(keep, m), e[0], e[1], bool(drop_zero), items, scores, int(n_threads))
    return items, scores


def _request(n: Any, w_indptr: np.ndarray, w_indices: np.ndarray, w_data: np.ndarray, e_indptr: np.ndarray | None,
             e_indices: np.ndarray | None, idx_dtype: np.dtype, check: bool) -> tuple[int, tuple, tuple, np.ndarray,
                                                                                     np.ndarray]:
    """The set-up the CSR query kernels share: the number of query rows, the query and the exclusion in the
    kernel's dtypes (the query's values checked finite unless the caller did), and the padded outputs."""
    u = len(w_indptr) - 1
    data = np.ascontiguousarray(w_data, dtype=np.float32)
    if check:
        check_finite(data, "W")
    w = (np.ascontiguousarray(w_indptr, dtype=np.int64), np.ascontiguousarray(w_indices, dtype=idx_dtype), data)
    return (u, w, _exclusion(e_indptr, e_indices, idx_dtype), *_outputs(u, n))


def _outputs(u: int, n: Any) -> tuple[np.ndarray, np.ndarray]:
    """(items, scores) of shape (u, n), padded -1 / -inf; ``n`` checked (a non-negative int)."""
    if type(n) is not int or n < 0:
        n = check_int(n, "n", minimum=0)
    return np.full((u, n), -1, dtype=np.int64), np.full((u, n), -np.inf, dtype=np.float32)


def _index_dtype(*sizes: int) -> np.dtype:
    """int32 where every size fits it (the kernels' narrow instantiation), else int64."""
    return np.dtype(np.int32) if max(sizes) <= np.iinfo(np.int32).max else np.dtype(np.int64)


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
    u, w, e, items, scores = _request(n, w_indptr, w_indices, w_data, e_indptr, e_indices, R.indices.dtype, check)
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
    u, w, e, items, scores = _request(n, w_indptr, w_indices, w_data, e_indptr, e_indices, _index_dtype(*B.shape),
                                      check)
    _core.user_topn_dense(*w, u, B, _keep(keep, B.shape[1]), e[0], e[1], bool(drop_zero), items, scores,
                          int(n_threads))
    return items, scores


def user_topn_factors(U: np.ndarray, B: np.ndarray, n: int, *, keep: np.ndarray | None = None,
                      e_indptr: np.ndarray | None = None, e_indices: np.ndarray | None = None,
                      n_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` items per row of ``U @ B``: factors ``U`` (u x f) against ``B`` (f x m, :func:`prepare_dense`).

    Sums over the factors in order, every product and sum rounded in
    float32 (the same bits for one user or a batch, any thread count);
    zero and non-finite scores are not candidates (a user or an item without
    interactions has zero factors). Other parameters and the result as in
    :func:`user_topn_sparse`.
    """
    U = np.ascontiguousarray(U, dtype=np.float32)
    check_finite(U, "U")
    e = _exclusion(e_indptr, e_indices, _index_dtype(B.shape[1]))
    items, scores = _outputs(U.shape[0], n)
    _core.user_topn_factors(U, B, _keep(keep, B.shape[1]), e[0], e[1], items, scores, int(n_threads))
    return items, scores


def csr_query(M: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of a canonical CSR query matrix."""
    return M.indptr, M.indices, M.data


def _int_array(a: Any, dtype: np.dtype | type, name: str) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    return a.astype(dtype, copy=False)


def row_server(W: Any, E: Any, n_items: int, *, R: ModelCsr | None = None, B: np.ndarray | None = None,
               in_map: np.ndarray | None = None, out_map: np.ndarray | None = None,
               order: np.ndarray | None = None, row_is_query: bool = False, drop_zero: bool = True,
               dual: DualModel | None = None) -> Any:
    """Bind one fitted model's arrays for the per-request path (one user, one call, the GIL released).

    ``server.topn(user, n, filter)`` returns ``(ids, scores)`` of the user's
    best ``n`` items: ids int32 (int64 beyond 2**31 items), scores float32,
    best first, only actual candidates; the scores of
    :func:`user_topn_sparse` / :func:`user_topn_dense` on ``W[user]``,
    excluding ``E[user]``'s items when ``filter``.
    ``server.topn_row(user, indptr, indices, data, n_cols, n, filter)`` does
    the same with the user's items given as a one-row CSR (implicit's call
    convention), which is the query row when ``row_is_query`` and the
    exclusion in every case. Both return ``None`` where the general path
    must decide (``user`` or ``n`` out of range, a row that is not canonical
    float32 with finite non-zero values), so they never raise for bad input
    of the caller's; the arrays bound here are checked where a call reads
    them.

    Parameters
    ----------
    W : CSR matrix, ModelCsr or 2-D float32 ndarray, shape (n_users, j)
        The query row of every user (their items, neighbour weights, or a
        dense row of factors).
    E : CSR matrix, shape (n_users, m)
        The items of every user, excluded on request (values unused).
    n_items : int
        The catalogue size (ids returned are below it).
    R : ModelCsr, shape (j, m), optional
        A sparse model (from :func:`prepare_csr`); or
    B : ndarray, shape (j, m), optional
        A dense model (from :func:`prepare_dense`).
    in_map : int ndarray of shape (n_items,), optional
        Model column of every item, -1 where the model dropped it (a given
        row is mapped; ``W`` and ``E`` must already be in model columns).
    out_map : int ndarray of shape (m,), optional
        Item id of every model column.
    order : int ndarray, optional
        A ranked model (Popularity): ``B`` is one row of scores and every
        user gets the first ``n`` columns of ``order`` they do not have,
        scored by ``B`` (``W`` must have one column).
    row_is_query : bool, default False
    drop_zero : bool, default True
        Dense models only: zero scores are not candidates.
    dual : DualModel, optional
        EASE's dual form (from :func:`prepare_dual`) instead of ``R`` or
        ``B``; needs ``row_is_query``. Scored as :func:`user_topn_dual`.

    Returns
    -------
    RowServer32 or RowServer64
        Thread-safe: every call has its own scratch.
    """
    d = None
    if dual is not None:
        if R is not None or B is not None:
            raise ValueError("give one of R, B and dual")
        R = ModelCsr(dual.r_indptr, dual.r_indices, dual.r_data, len(dual.r_indptr) - 1, len(dual.c_indptr) - 1)
        d = (dual.c_indptr, dual.c_indices, dual.c_data, dual.M, dual.diag)
    if (R is None) == (B is None):
        raise ValueError("give either R or B")
    n_items = check_int(n_items, "n_items", minimum=0)
    if R is not None:
        idx_dtype = R.indices.dtype
        j = R.n_rows if d is None else R.n_cols
    else:
        B = prepare_dense(B, "B")
        j = B.shape[0]
        idx_dtype = _index_dtype(j, B.shape[1], n_items)
    w_dense = None
    if isinstance(W, np.ndarray):
        w_dense = prepare_dense(W, "W")
        Wm = ModelCsr(np.zeros(1, np.int64), np.zeros(0, idx_dtype), np.zeros(0, np.float32), 0, w_dense.shape[1])
        n_users = w_dense.shape[0]
    else:
        Wm = W if isinstance(W, ModelCsr) else prepare_csr(W, "W")
        n_users = Wm.n_rows
    if Wm.n_cols != j:
        raise ValueError(f"W must have {j} columns (the model's rows), got {Wm.n_cols}")
    Em = sp.csr_matrix(E)
    if Em.shape[0] != n_users:
        raise ValueError(f"E must have one row per row of W ({n_users}), got {Em.shape[0]}")
    cls = _core.RowServer32 if idx_dtype == np.int32 else _core.RowServer64
    r = (None, None, None) if R is None else (R.indptr, R.indices, R.data)
    return cls(Wm.indptr, Wm.indices.astype(idx_dtype, copy=False), Wm.data, int(j),
               _int_array(Em.indptr, np.int64, "E.indptr"), _int_array(Em.indices, idx_dtype, "E.indices"),
               int(n_items), *r, B, None if in_map is None else _int_array(in_map, np.int64, "in_map"),
               None if out_map is None else _int_array(out_map, np.int64, "out_map"),
               None if order is None else _int_array(order, np.int64, "order"), w_dense, bool(row_is_query),
               bool(drop_zero), d)
