"""Online updates (``partial_fit_users`` / ``partial_fit_items``) shared by the models.

Conventions follow implicit: ``partial_fit_users(userids, user_items)`` takes
one row of ``user_items`` per id and *replaces* those users' interactions
(ids at or beyond ``n_users`` add users; a gap is filled with users without
items); ``partial_fit_items(itemids, item_users)`` does the same for item
columns given as items x users rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec import ops
from cohortrec.ops import merge_topk_rows

__all__ = ["changed_neighbours", "check_update", "merge_neighbours", "replace_rows"]


def check_update(ids: Any, rows: Any, n_cols: int, *, id_name: str, rows_name: str,
                 what: str) -> tuple[np.ndarray, sp.csr_matrix]:
    """(unique int64 ids, canonical float32 CSR rows aligned with them)."""
    from cohortrec.recommenders._base import _check_ids, check_user_items  # noqa: PLC0415

    arr, _ = _check_ids(ids, id_name, None, what)
    R = check_user_items(rows, rows_name, n_items=n_cols, stacklevel=4)
    if R.shape[0] != arr.size:
        raise ValueError(f"{rows_name} must hold one row per entry of {id_name} ({arr.size}), got shape {R.shape}")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"{id_name} holds an id twice")
    return arr, R


def replace_rows(X: sp.csr_matrix, ids: np.ndarray, rows: sp.csr_matrix) -> sp.csr_matrix:
    """``X`` with row ``ids[r]`` set to ``rows[r]`` (grown to ``max(ids) + 1`` rows); a new matrix."""
    n = max(X.shape[0], int(ids.max()) + 1 if ids.size else 0)
    if ids.size and int(ids.min()) >= X.shape[0]:  # only new rows: the old arrays are copied whole, then appended to
        return _append_rows(X, ids, rows, n)
    keep = np.ones(n, dtype=bool)
    keep[ids] = False
    src_old = np.flatnonzero(keep[:X.shape[0]])
    # rows of the result: old rows not replaced, then the new rows, placed by a permutation
    counts = np.zeros(n, dtype=np.int64)
    counts[src_old] = np.diff(X.indptr)[src_old]
    counts[ids] = np.diff(rows.indptr)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    idx_dtype = np.int64 if max(X.shape[1], nnz) > np.iinfo(np.int32).max else np.int32
    indices = np.empty(nnz, dtype=idx_dtype)
    data = np.empty(nnz, dtype=np.float32)
    for (M, src, dst) in ((X, src_old, src_old), (rows, np.arange(ids.size), ids)):
        if src.size == 0:
            continue
        lens = np.diff(M.indptr)[src]
        starts_src = np.repeat(M.indptr[src], lens)
        starts_dst = np.repeat(indptr[dst], lens)
        off = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        indices[starts_dst + off] = M.indices[starts_src + off]
        data[starts_dst + off] = M.data[starts_src + off]
    return sp.csr_matrix((data, indices, indptr), shape=(n, X.shape[1]))


def _append_rows(X: sp.csr_matrix, ids: np.ndarray, rows: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """:func:`replace_rows` when every id lies beyond ``X``: the new users of an online update (ids in a gap
    get empty rows). Block copies instead of an index per stored entry."""
    n_old = X.shape[0]
    order = np.argsort(ids, kind="stable")
    R = sp.csr_matrix(rows[order]) if not np.array_equal(order, np.arange(ids.size)) else sp.csr_matrix(rows)
    counts = np.zeros(n - n_old, dtype=np.int64)
    counts[ids[order] - n_old] = np.diff(R.indptr)
    nnz = int(X.indptr[-1]) + int(counts.sum())
    idx_dtype = np.int64 if max(X.shape[1], nnz) > np.iinfo(np.int32).max else np.int32
    indptr = np.empty(n + 1, dtype=np.int64)
    indptr[:n_old + 1] = X.indptr
    np.cumsum(counts, out=indptr[n_old + 1:])
    indptr[n_old + 1:] += X.indptr[-1]
    indices = np.concatenate([X.indices[:X.indptr[-1]], R.indices[:R.indptr[-1]]]).astype(idx_dtype, copy=False)
    data = np.concatenate([X.data[:X.indptr[-1]], R.data[:R.indptr[-1]]]).astype(np.float32, copy=False)
    return sp.csr_matrix((data, indices, indptr), shape=(n, X.shape[1]))


def replace_cols(X: sp.csr_matrix, ids: np.ndarray, cols: sp.csr_matrix) -> sp.csr_matrix:
    """``X`` with column ``ids[r]`` set to row ``r`` of ``cols`` (items x users), grown as needed."""
    Xt = sp.csr_matrix(X.T)
    Xt.sort_indices()
    if cols.shape[1] < X.shape[0]:
        cols = sp.csr_matrix((cols.data, cols.indices, cols.indptr), shape=(cols.shape[0], X.shape[0]))
    if Xt.shape[1] < cols.shape[1]:
        Xt = sp.csr_matrix((Xt.data, Xt.indices, Xt.indptr), shape=(Xt.shape[0], cols.shape[1]))
    Yt = replace_rows(Xt, ids, cols)
    Y = sp.csr_matrix(Yt.T)
    Y.sort_indices()
    return Y


def drop_self_keep_k(S: sp.csr_matrix, self_ids: np.ndarray, k: int) -> sp.csr_matrix:
    from cohortrec.recommenders._knn import _drop_ids_keep_k  # noqa: PLC0415

    return _drop_ids_keep_k(S, self_ids, k)


def affected_rows(S_old: sp.csr_matrix, changed: np.ndarray) -> np.ndarray:
    """Rows (not in ``changed``) whose stored neighbours include a changed row.

    Such a row lost a neighbour whose similarity changed, and its
    replacement may lie beyond the stored top-k: it must be recomputed.
    """
    n_old = S_old.shape[0]
    if S_old.nnz == 0 or changed.size == 0:
        return np.zeros(0, dtype=np.int64)
    is_changed = np.zeros(max(n_old, S_old.shape[1], int(changed.max()) + 1), dtype=bool)
    is_changed[changed] = True
    r = np.repeat(np.arange(n_old), np.diff(S_old.indptr))
    hit = np.unique(r[is_changed[S_old.indices]])
    return hit[~is_changed[hit]].astype(np.int64)


def merge_neighbours(S_old: sp.csr_matrix, n: int, redo: np.ndarray, S_redo: sp.csr_matrix,
                     changed: np.ndarray, C_others: sp.csr_matrix, k: int, **kw: Any) -> sp.csr_matrix:
    """New top-``k`` neighbour matrix (n x n) after the rows ``changed`` changed.

    Rows ``redo`` (the changed rows and the rows whose old neighbours
    included one, see :func:`affected_rows`) are ``S_redo``, recomputed.
    Every other row kept all its old neighbours (none changed) and adds its
    top-``k`` among the changed rows (``C_others``, n x len(changed),
    columns = positions in ``changed``): the top-``k`` of that union is the
    exact new top-``k``, since its similarities to the unchanged rows did
    not change and its old list was their top-``k``.

    Only the rows that change are touched: the redo rows, and the rows with
    a candidate in ``C_others`` (merged by :func:`~cohortrec.ops.merge_topk_rows`);
    every other row is copied as it was. When ``S_old`` has sorted indices
    (UserKNN, ItemKNN) the new rows are sorted too; otherwise they stay best
    first (GroupRecommender's lists, as its fit stores them).
    """
    redo = np.asarray(redo, dtype=np.int64)
    S = sp.csr_matrix(S_old)
    sort = bool(S.has_sorted_indices)
    indptr = np.r_[S.indptr, np.full(n - S.shape[0], S.indptr[-1])]  # new rows: empty
    S = sp.csr_matrix((S.data, S.indices, indptr), shape=(n, n))
    is_redo = np.zeros(n, dtype=bool)
    is_redo[redo] = True
    Cc = sp.csr_matrix(C_others)
    c_rows = np.repeat(np.arange(Cc.shape[0]), np.diff(Cc.indptr))
    stay = ~is_redo[c_rows] & (Cc.data != 0)  # a zero similarity is no neighbour (the kernels keep none)
    add = sp.csr_matrix((Cc.data[stay], (c_rows[stay], changed[Cc.indices[stay]])), shape=(n, n))
    out = merge_topk_rows(S, add, k, rows=redo, new_rows=S_redo, sort_indices=sort, n_threads=kw.get("n_threads"))
    out.has_sorted_indices = sort
    return out


def knn_update(X_new: sp.csr_matrix, S_old: sp.csr_matrix, changed: np.ndarray, k: int,
               threshold: float | None, kw: dict[str, Any]) -> sp.csr_matrix:
    """Top-k cosine neighbour matrix of the rows of ``X_new`` after ``changed`` rows changed.

    The changed rows and the rows whose old neighbours included one are
    searched anew; every other row merges its top-k among the changed rows
    into its old list (exact: :func:`merge_neighbours`). When a quarter of
    the rows or more must be searched, all are (the refit).
    """
    n = X_new.shape[0]
    redo = np.union1d(changed, affected_rows(S_old, changed)).astype(np.int64)
    if redo.size * 4 >= n:
        S = ops.cosine_topk(X_new, k=k, threshold=threshold, exclude_self=True, **kw)
        S.sort_indices()
        return S
    S_redo = ops.cosine_topk(X_new[redo], X_new, k=k + 1, threshold=threshold, exclude_self=False, **kw)
    S_redo = drop_self_keep_k(S_redo, redo, k)
    C = changed_neighbours(X_new, changed, S_old, redo, k, threshold, kw)
    return merge_neighbours(S_old, n, redo, S_redo, changed, C, k, **kw)


#: quantiles of the rows' k-th similarities that split the search among the changed rows into tiers
FLOOR_TIERS = (0.0, 0.01, 0.05, 0.25)


def changed_neighbours(X: sp.csr_matrix, changed: np.ndarray, S_old: sp.csr_matrix, redo: np.ndarray, k: int,
                       threshold: float | None, kw: dict[str, Any], only_rows: np.ndarray | None = None,
                       allowed: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> sp.csr_matrix:
    """Every row's top-``k`` among the changed rows (n x len(changed)), searched only above each row's floor.

    A changed row can enter an unchanged row's list only with a similarity at
    least that row's current k-th one (its floor). The kernel skips work below
    a threshold, so the rows are searched in tiers (quantiles of their floors),
    each with the lowest floor of its tier, just below it so that ties at the
    floor are kept: the same entries that matter as a search without floor.
    Rows in ``redo`` are searched anew anyway and get no entries; with
    ``only_rows``, only those rows are searched. ``allowed(rows, cols)``
    (cols = positions in ``changed``) masks the pairs that may be neighbours
    (GroupRecommender: the changed user's group is among the row's routed
    groups); then every candidate above the floor is kept and filtered, not
    a top-k that a filter would cut afterwards (rows without a floor in
    blocks, so that the unfiltered candidates stay bounded).
    """
    n = X.shape[0]
    kc = min(k, changed.size)
    floor = np.full(n, -np.inf)
    n_old = min(S_old.shape[0], n)
    cnt = np.diff(S_old.indptr)[:n_old]
    full = np.flatnonzero(cnt >= k)
    if full.size and S_old.nnz:
        floor[full] = np.minimum.reduceat(S_old.data, S_old.indptr[full])
    floor[redo] = np.nan  # not searched here
    if only_rows is not None:
        searched = np.zeros(n, dtype=bool)
        searched[only_rows] = True
        floor[~searched] = np.nan
    rows = np.flatnonzero(~np.isnan(floor))
    Xc = X[changed]
    kt = changed.size if allowed is not None else kc
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def search(idx: np.ndarray, thr: float | None) -> None:
        C = sp.csr_matrix(ops.cosine_topk(X[idx], Xc, k=kt, threshold=thr, exclude_self=False, **kw))
        r, c, v = np.repeat(idx, np.diff(C.indptr)), C.indices, C.data
        if allowed is not None:
            ok = allowed(r, c)
            r, c, v = r[ok], c[ok], v[ok]
        parts.append((r, c, v))

    bounded = rows[np.isfinite(floor[rows])]
    cuts = np.unique(np.quantile(floor[bounded], FLOOR_TIERS)) if bounded.size else np.zeros(0)
    remaining = bounded
    for lo in cuts[::-1]:  # highest tier first
        tier = remaining[floor[remaining] >= lo]
        remaining = remaining[floor[remaining] < lo]
        if tier.size:
            t = np.nextafter(lo, -np.inf) - 1e-6 * abs(lo)  # ties at the floor stay
            search(tier, t if threshold is None else max(t, float(threshold)))
    rest = np.concatenate([remaining, rows[~np.isfinite(floor[rows])]])
    block = max(rest.size, 1) if allowed is None else max(1, (1 << 21) // max(changed.size, 1))
    for s in range(0, rest.size, block):
        search(rest[s:s + block], threshold)
    if not parts:
        return sp.csr_matrix((n, changed.size), dtype=np.float32)
    r, c, v = (np.concatenate(a) for a in zip(*parts))
    return sp.csr_matrix((v, (r, c)), shape=(n, changed.size), dtype=np.float32)


def users_of_items(X: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """Users (rows of ``X``) with an entry in one of the columns ``items`` (ids beyond X ignored)."""
    items = items[items < X.shape[1]]
    if items.size == 0 or X.nnz == 0:
        return np.zeros(0, dtype=np.int64)
    mask = np.zeros(X.shape[1], dtype=bool)
    mask[items] = True
    r = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return np.unique(r[mask[X.indices]]).astype(np.int64)


def items_of_users(X: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    users = users[users < X.shape[0]]
    if users.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(X[users].indices).astype(np.int64)


class OnlineMixin:
    """``partial_fit_users`` / ``partial_fit_items`` on top of a model's ``_update``.

    ``_update(X_new, changed_users, changed_items)`` receives the whole new
    training matrix and the ids of the users / items whose interactions
    changed (new ones included) and replaces the fitted state.
    """

    #: the model is item-item (ItemKNN, EASE): a user is scored from its own row, so
    #: ``partial_fit_users(..., update_items=False)`` can keep the item model as it is
    _item_model = False

    def partial_fit_users(self, userids: Any, user_items: Any, *, update_items: bool = True) -> Any:
        """Add or replace users without a refit (implicit's ``partial_fit_users``).

        Parameters
        ----------
        userids : array-like of int
            Users to set; ids at or beyond :attr:`n_users_` add users (users in a gap
            get no items).
        user_items : scipy.sparse.csr_matrix, shape (len(userids), n_items)
            The users' complete interactions (they replace the stored rows).
        update_items : bool, default True
            Item-item models (ItemKNN, EASE) only. ``True`` updates the item
            model exactly (what a refit gives). ``False`` keeps it as fitted
            and stores the users' rows: they are served at once, in time
            proportional to their rows, as implicit's ALS ``partial_fit_users``
            keeps its item factors; the item model then drifts from a refit
            until the next fit or update (a bounded difference: see
            ``docs/serving.md``).

        Returns
        -------
        self
        """
        self._check_fitted()
        if not update_items and not self._item_model:
            raise ValueError(f"update_items=False is for item-item models; {type(self).__name__} scores users "
                             "from their neighbours, which new users must get")
        ids, R = check_update(userids, user_items, self.n_items_, id_name="userids", rows_name="user_items",
                              what="user")
        if ids.size == 0:
            return self
        old = self.user_items_
        X = replace_rows(old, ids, R)
        if update_items:  # else the item model stays as fitted: storing the rows is the whole update
            changed_items = np.unique(np.concatenate([items_of_users(old, ids), R.indices.astype(np.int64)]))
            self._update(X, ids, changed_items)
        self.user_items_ = X
        self._item_users_cache = None
        return self

    def partial_fit_items(self, itemids: Any, item_users: Any) -> Any:
        """Add or replace items without a refit (implicit's ``partial_fit_items``).

        Parameters
        ----------
        itemids : array-like of int
            Items to set; ids at or beyond :attr:`n_items_` add items.
        item_users : scipy.sparse.csr_matrix, shape (len(itemids), n_users)
            The items' complete interactions, items x users (they replace the
            stored columns).

        Returns
        -------
        self
        """
        self._check_fitted()
        ids, R = check_update(itemids, item_users, self.n_users_, id_name="itemids", rows_name="item_users",
                              what="item")
        if ids.size == 0:
            return self
        old = self.user_items_
        X = replace_cols(old, ids, R)
        changed_users = np.unique(np.concatenate([users_of_items(old, ids), R.indices.astype(np.int64)]))
        self._update(X, changed_users, ids)
        self.user_items_ = X
        self._item_users_cache = None
        return self

    def _update(self, X: sp.csr_matrix, changed_users: np.ndarray, changed_items: np.ndarray) -> None:
        raise NotImplementedError
