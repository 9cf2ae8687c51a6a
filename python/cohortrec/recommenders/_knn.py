"""Neighbourhood models: user-kNN and item-kNN on the native kernels."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from cohortrec import ops
from cohortrec._validation import check_int
from cohortrec.ops import prepare_csr, row_server
from cohortrec.recommenders._base import (
    RecommenderBase,
    mask_columns,
    rows_of,
)
from cohortrec.recommenders._online import OnlineMixin, knn_update
from cohortrec.recommenders._serving import sparse_one as _sparse_one

__all__ = ["ItemKNN", "UserKNN", "bm25_weight"]


def bm25_weight(item_users: sp.csr_matrix, K1: float = 100.0, B: float = 0.8, *,
                reference: sp.csr_matrix | None = None) -> sp.csr_matrix:
    """BM25 weighting of an items x users matrix (as implicit's ``bm25_weight``).

    Each entry becomes ``x (K1 + 1) / (K1 * norm_i + x) * idf_u`` with
    ``idf_u = log(n_items) - log1p(#items of user u)`` and
    ``norm_i = (1 - B) + B * len_i / mean(len)``, ``len_i`` the row sum.

    Parameters
    ----------
    item_users : scipy.sparse.csr_matrix, shape (n_items, n_users)
    K1, B : float
    reference : scipy.sparse.csr_matrix, shape (n_ref_items, n_users), optional
        Take ``idf`` and the mean row length from this matrix (the training
        items) instead of ``item_users`` (e.g. to weight new items).

    Returns
    -------
    scipy.sparse.csr_matrix, float32, same shape and pattern.
    """
    X = sp.csr_matrix(item_users, dtype=np.float64, copy=True)
    ref = X if reference is None else sp.csr_matrix(reference, dtype=np.float64)
    n = float(max(ref.shape[0], 1))
    idf = np.log(n) - np.log1p(np.bincount(ref.indices, minlength=ref.shape[1]))
    row_sums = np.asarray(X.sum(axis=1)).ravel()
    ref_sums = np.asarray(ref.sum(axis=1)).ravel()
    avg = ref_sums.mean() if ref_sums.size and ref_sums.mean() > 0 else 1.0
    length_norm = (1.0 - B) + B * row_sums / avg
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    X.data = X.data * (K1 + 1.0) / (K1 * length_norm[rows] + X.data) * idf[X.indices]
    return X.astype(np.float32)


def _drop_ids_keep_k(S: sp.csr_matrix, drop: np.ndarray, k: int) -> sp.csr_matrix:
    """Remove entry ``(r, drop[r])`` of each row (if stored), then keep the first ``k``.

    Rows of ``S`` are sorted best first (as :func:`cohortrec.ops.cosine_topk`
    returns them); ``drop[r] < 0`` drops nothing.
    """
    counts = np.diff(S.indptr)
    r = np.repeat(np.arange(S.shape[0]), counts)
    keep = S.indices != drop[r]
    c0 = np.concatenate([[0], np.cumsum(keep)])
    rank = c0[:-1] - c0[S.indptr[:-1]][r]  # rank of each entry among its row's kept ones
    keep &= rank < k
    new_counts = np.bincount(r[keep], minlength=S.shape[0])
    indptr = np.concatenate([[0], np.cumsum(new_counts)])
    return sp.csr_matrix((S.data[keep], S.indices[keep], indptr), shape=S.shape)


def _sorted(S: sp.csr_matrix) -> sp.csr_matrix:
    """``S`` with column indices sorted in every row (canonical CSR).

    :func:`cohortrec.ops.cosine_topk` stores rows best first; the scoring
    kernel wants canonical input and would sort a copy on every call.
    """
    S.sort_indices()
    return S


def _powered(S: sp.csr_matrix, power: float) -> sp.csr_matrix:
    if power == 1.0:
        return S
    S = S.copy()
    S.data = np.sign(S.data) * np.abs(S.data) ** power
    return S


class UserKNN(OnlineMixin, RecommenderBase):
    """User-based collaborative filtering with cosine neighbours.

    ``score(u, j) = sum over the k most similar users v of sim(u, v)^power
    * x_vj``. Neighbours come from :func:`cohortrec.ops.cosine_topk`, scores
    from :func:`cohortrec.ops.topk_scores` (no users x items matrix is
    built).

    Parameters
    ----------
    k : int, default 50
        Neighbours per user.
    power : float, default 1.0
        Similarities are raised to this power (values > 1 favour the
        closest neighbours).
    threshold : float, optional
        Neighbours with similarity not above this are ignored.
    device, n_threads, batch_size
        See :class:`~cohortrec.recommenders.RecommenderBase`.

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix, shape (n_users, n_users)
        Top-k cosine neighbours of every training user (self excluded).
    n_similarities_ : int
        User pairs searched at fit time: ``n_users * (n_users - 1)``.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from cohortrec.recommenders import UserKNN
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype="float32")
    >>> UserKNN(k=1).fit(X).recommend(0, X, N=1)[0]
    array([2], dtype=int32)
    """

    _param_names: ClassVar[tuple[str, ...]] = ("k", "power", "threshold")
    _state_names: ClassVar[tuple[str, ...]] = ("user_items_", "similarity_")

    def __init__(self, k: int = 50, power: float = 1.0, threshold: float | None = None, *,
                 device: str = "auto", n_threads: int | None = None,
                 batch_size: int = 2048) -> None:
        super().__init__(device=device, n_threads=n_threads, batch_size=batch_size)
        self.k = k
        self.power = power
        self.threshold = threshold

    def _fit(self, X: sp.csr_matrix) -> None:
        check_int(self.k, "k", minimum=1)
        self.similarity_ = _sorted(ops.cosine_topk(X, k=self.k, threshold=self.threshold,
                                                   exclude_self=True, **self._ops_kwargs()))

    @property
    def n_similarities_(self) -> int:
        n = self.n_users_
        return n * (n - 1)

    def _neighbours(self, userids: np.ndarray, rows: sp.csr_matrix, recalculate: bool) -> sp.csr_matrix:
        if not recalculate:
            return rows_of(self.similarity_, userids)
        # fold in: search the training users, then drop the user itself
        S = ops.cosine_topk(rows, self.user_items_, k=self.k + 1, threshold=self.threshold,
                            exclude_self=False, **self._ops_kwargs())
        drop = np.where(userids < self.n_users_, userids, -1)
        return _drop_ids_keep_k(S, drop, self.k)

    def _topn(self, userids, rows, n, exclude, keep, recalculate):
        if recalculate:
            W = _powered(self._neighbours(userids, rows, recalculate), float(self.power))
        else:
            W = rows_of(self._weights(), userids)
        R = mask_columns(self.user_items_, keep)
        ids, sc = ops.topk_scores(W, R, n=n, exclude=exclude, **self._ops_kwargs())
        return ids, sc.astype(np.float32, copy=False)

    # -- online updates --------------------------------------------------------
    def _update(self, X, changed_users, changed_items):
        """Neighbours of the changed users, and of the users whose neighbours
        included one, recomputed; the others merge their top-k among the changed
        users into their unchanged lists: the lists a refit gives."""
        self.similarity_ = knn_update(X, self.similarity_, changed_users, int(self.k), self.threshold,
                                      self._ops_kwargs())

    # -- serving ---------------------------------------------------------------
    def _weights(self) -> sp.csr_matrix:
        """Neighbour weights ``sim ** power`` of every training user (built once)."""
        return self._serve_cached("weights", (self.similarity_, float(self.power)),
                                  lambda: _powered(self.similarity_, float(self.power)))

    def _server_source(self):
        return (self.similarity_, self.power, self.user_items_)

    def _make_server(self):
        R = self._serve_cached("R", self.user_items_, lambda: prepare_csr(self.user_items_, "user_items_"))
        return row_server(self._weights(), self.user_items_, self.user_items_.shape[1], R=R)

    def _topn_one(self, userid, idx, val, n, exclude, keep, recalculate):
        if recalculate:
            return None  # fold-in searches all users: the batch path
        W = self._weights()
        R = self._serve_cached("R", self.user_items_, lambda: prepare_csr(self.user_items_, "user_items_"))
        b, e = W.indptr[userid], W.indptr[userid + 1]
        return _sparse_one(R, W.indices[b:e], W.data[b:e], n, exclude, keep)


class ItemKNN(OnlineMixin, RecommenderBase):
    """Item-based collaborative filtering with cosine or BM25-weighted neighbours.

    ``score(u, j) = sum over the user's items i of x_ui * sim(i, j)`` where
    ``sim(i, .)`` keeps item ``i``'s ``k`` nearest items (cosine of the item
    columns, optionally BM25-weighted first, as implicit's
    ``BM25Recommender``).

    Parameters
    ----------
    k : int, default 50
        Neighbours per item.
    similarity : {"cosine", "bm25"}, default "cosine"
    K1, B : float, default 100.0, 0.8
        BM25 parameters (``similarity="bm25"``).
    threshold : float, optional
        Similarities not above this are dropped.
    device, n_threads, batch_size
        See :class:`~cohortrec.recommenders.RecommenderBase`.

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix, shape (n_items, n_items)
        Row ``i`` holds item ``i``'s top-k neighbours (self excluded).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from cohortrec.recommenders import ItemKNN
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype="float32")
    >>> ItemKNN(k=2).fit(X).recommend(0, X, N=1)[0]
    array([2], dtype=int32)
    """

    _item_model = True  # partial_fit_users(update_items=False) keeps the item model

    _param_names: ClassVar[tuple[str, ...]] = ("k", "similarity", "K1", "B", "threshold")
    _state_names: ClassVar[tuple[str, ...]] = ("user_items_", "similarity_")

    def __init__(self, k: int = 50, similarity: str = "cosine", K1: float = 100.0, B: float = 0.8,
                 threshold: float | None = None, *, device: str = "auto",
                 n_threads: int | None = None, batch_size: int = 2048) -> None:
        super().__init__(device=device, n_threads=n_threads, batch_size=batch_size)
        self.k = k
        self.similarity = similarity
        self.K1 = K1
        self.B = B
        self.threshold = threshold

    def _item_matrix(self, X: sp.csr_matrix) -> sp.csr_matrix:
        item_users = X.T.tocsr()
        if self.similarity == "cosine":
            return item_users
        if self.similarity == "bm25":
            return bm25_weight(item_users, float(self.K1), float(self.B))
        raise ValueError(f"similarity must be 'cosine' or 'bm25', got {self.similarity!r}")

    def _fit(self, X: sp.csr_matrix) -> None:
        check_int(self.k, "k", minimum=1)
        V = self._item_matrix(X)
        self._item_users_cache = V
        self.similarity_ = _sorted(ops.cosine_topk(V, k=self.k, threshold=self.threshold,
                                                   exclude_self=True, **self._ops_kwargs()))

    def _item_vectors(self) -> sp.csr_matrix:
        V = getattr(self, "_item_users_cache", None)
        if V is None:
            V = self._item_matrix(self.user_items_)
            self._item_users_cache = V
        return V

    def _item_query(self, item_users: sp.csr_matrix) -> sp.csr_matrix:
        if self.similarity != "bm25":
            return item_users
        return bm25_weight(item_users, float(self.K1), float(self.B),
                           reference=self.user_items_.T.tocsr())

    def _after_load(self) -> None:
        self._item_users_cache = None

    def _topn(self, userids, rows, n, exclude, keep, recalculate):
        R = mask_columns(self.similarity_, keep)
        ids, sc = ops.topk_scores(rows, R, n=n, exclude=exclude, **self._ops_kwargs())
        return ids, sc.astype(np.float32, copy=False)

    def _server_source(self):
        return (self.user_items_, self.similarity_)

    def _make_server(self):
        R = self._serve_cached("R", self.similarity_, lambda: prepare_csr(self.similarity_, "similarity_"))
        return row_server(self.user_items_, self.user_items_, self.user_items_.shape[1], R=R, row_is_query=True)

    def _topn_one(self, userid, idx, val, n, exclude, keep, recalculate):
        R = self._serve_cached("R", self.similarity_, lambda: prepare_csr(self.similarity_, "similarity_"))
        return _sparse_one(R, idx, val, n, exclude, keep)

    # -- online updates --------------------------------------------------------
    def _update(self, X, changed_users, changed_items):
        """Neighbours of the changed items, and of the items whose neighbours
        included one, recomputed; the others merge their top-k among the changed
        items: the lists a refit gives with cosine. With ``similarity="bm25"``
        the weights of the other items also move a little (idf and lengths):
        not recomputed, a bounded difference."""
        V = self._item_matrix(X)
        self.similarity_ = knn_update(V, self.similarity_, changed_items, int(self.k), self.threshold,
                                      self._ops_kwargs())
