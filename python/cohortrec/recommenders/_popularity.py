"""Most-popular baseline."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from cohortrec import ops
from cohortrec.recommenders._base import RecommenderBase

__all__ = ["Popularity"]


class Popularity(RecommenderBase):
    """Recommend the items most users interacted with (non-personalised).

    Every user gets the same ranking minus their own items (computed with
    NumPy from one global ordering; items nobody interacted with are never
    returned).

    Parameters
    ----------
    weighting : {"users", "sum"}, default "users"
        ``"users"``: score = number of training users with the item;
        ``"sum"``: score = sum of the interaction values.
    device, n_threads, batch_size
        See :class:`~cohortrec.recommenders.RecommenderBase` (CPU only:
        ``device="cuda"`` raises).

    Attributes
    ----------
    item_popularity_ : ndarray of float32, shape (n_items,)

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from cohortrec.recommenders import Popularity
    >>> X = sp.csr_matrix([[1, 1, 0], [0, 1, 0], [0, 1, 1]], dtype="float32")
    >>> Popularity().fit(X).recommend(1, X, N=2)[0]
    array([0, 2], dtype=int32)
    """

    _param_names: ClassVar[tuple[str, ...]] = ("weighting",)
    _state_names: ClassVar[tuple[str, ...]] = ("user_items_", "item_popularity_")

    def __init__(self, weighting: str = "users", *, device: str = "auto",
                 n_threads: int | None = None, batch_size: int = 2048) -> None:
        super().__init__(device=device, n_threads=n_threads, batch_size=batch_size)
        self.weighting = weighting

    def _fit(self, X: sp.csr_matrix) -> None:
        self._order_cache = None
        if self.weighting == "users":
            pop = np.bincount(X.indices, minlength=X.shape[1])
        elif self.weighting == "sum":
            pop = np.asarray(X.sum(axis=0)).ravel()
        else:
            raise ValueError(f"weighting must be 'users' or 'sum', got {self.weighting!r}")
        self.item_popularity_ = pop.astype(np.float32)

    def _topn(self, userids: np.ndarray, rows: sp.csr_matrix, n: int,
              exclude: sp.csr_matrix | None, keep: np.ndarray | None,
              recalculate: bool) -> tuple[np.ndarray, np.ndarray]:
        # Every user gets the same global ranking minus their own items: the
        # native kernel walks the precomputed ranking per user and skips the
        # user's items (O(n + skipped) per user, no per-user scoring or sort).
        self._check_device_dense("recommend")
        order = self._order()
        if keep is not None:
            order = np.ascontiguousarray(order[keep[order]])
        u = len(userids)
        ids = np.full((u, n), -1, dtype=np.int64)
        if u == 0 or n == 0 or order.size == 0:
            return ids, np.full((u, n), -np.inf, dtype=np.float32)
        if exclude is None or not exclude.nnz:
            width = min(n, order.size)
            ids[:, :width] = order[:width]
        else:
            ops.ranked_topn_into(order, exclude, ids, self.n_threads)
        pop = np.append(self.item_popularity_, np.float32(-np.inf))  # slot -1: padding
        return ids, pop[ids]

    def _server_source(self):
        return (self.item_popularity_, self.user_items_)

    def _make_server(self):
        # the fixed ranking minus the user's items; W only sizes the users
        u = self.user_items_.shape[0]
        W = sp.csr_matrix((np.ones(u, np.float32), np.zeros(u, np.int32), np.arange(u + 1)), shape=(u, 1))
        B = self.item_popularity_.astype(np.float32).reshape(1, -1)
        return ops.row_server(W, self.user_items_, self.user_items_.shape[1], B=B, order=self._order())

    def _topn_one(self, userid, idx, val, n, exclude, keep, recalculate):
        # The global ranking minus the user's items, with NumPy on a prefix of
        # it: the first n + |exclude| ranked items always hold the answer.
        order = self._order()
        if keep is not None:
            order = order[keep[order]]
        ids = np.full(n, -1, dtype=np.int64)
        if exclude is None or exclude.size == 0:
            cand = order[:n]
        else:
            cand = order[:n + exclude.size]
            ex = np.sort(exclude) if exclude.size > 1 and not (exclude[1:] > exclude[:-1]).all() else exclude
            at = np.minimum(np.searchsorted(ex, cand), ex.size - 1)
            cand = cand[ex[at] != cand][:n]
        ids[:cand.size] = cand
        sc = np.full(n, -np.inf, dtype=np.float32)
        sc[:cand.size] = self.item_popularity_[cand]
        return ids, sc

    def _order(self) -> np.ndarray:
        """Items with a positive score, best first (ties: smaller id)."""
        order = getattr(self, "_order_cache", None)
        if order is None:
            pop = self.item_popularity_
            order = np.lexsort((np.arange(pop.size), -pop))
            order = order[pop[order] > 0].astype(np.int64)
            self._order_cache = order
        return order

    def _after_load(self) -> None:
        self._order_cache = None
