"""RP3beta: three-step random walk on the user-item graph (Paudel et al. 2016)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from cohortrec import ops
from cohortrec._validation import check_float, check_int
from cohortrec.ops import prepare_csr, row_server
from cohortrec.recommenders._base import (
    RecommenderBase,
    mask_columns,
    scale_rows,
)
from cohortrec.recommenders._serving import sparse_one as _sparse_one

__all__ = ["RP3beta", "rp3beta_weights"]

#: item rows per call of the scoring kernel at fit time (bounds the dense
#: (rows x k) buffers the kernel returns)
_FIT_BLOCK_ENTRIES = 1 << 23


def _l1_rows(M: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(abs(M).sum(axis=1), dtype=np.float64).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return scale_rows(M, inv)


def _power(M: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    if alpha == 1.0:
        return M
    M = M.copy()
    M.data = np.power(M.data, alpha)
    return M


def rp3beta_weights(X: sp.csr_matrix, k: int = 200, alpha: float = 1.0, beta: float = 0.5,
                    normalize: bool = False, *, device: str = "auto",
                    n_threads: int | None = None) -> sp.csr_matrix:
    """RP3beta item-item weights, the ``k`` largest of every row.

    ``W_ij = (sum_u P_iu^alpha P_uj^alpha) / pop_j^beta`` for ``j != i``,
    where ``P_uj = x_uj / sum_l x_ul`` (user to item) and
    ``P_iu = x_ui / sum_v x_vi`` (item to user) are the random-walk
    transition probabilities of the user-item graph and ``pop_j`` is the
    number of users of item ``j`` (Paudel et al. 2016, "Updatable, accurate,
    diverse, and scalable recommendations for interactive applications",
    ACM TiiS 7(1)). Each row keeps its ``k`` largest entries (ties: smaller
    item id), computed with :func:`cohortrec.ops.topk_scores` without
    building the dense item x item matrix.

    Parameters
    ----------
    X : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Non-negative interactions (canonical CSR).
    k : int, default 200
        Neighbours kept per item.
    alpha : float, default 1.0
        Exponent of the transition probabilities (> 0).
    beta : float, default 0.5
        Popularity penalty exponent (>= 0; ``0`` is plain P3alpha).
    normalize : bool, default False
        Scale each kept row to sum 1 (l1).
    device, n_threads
        Passed to :func:`cohortrec.ops.topk_scores`.

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape (n_items, n_items)
        Row ``i`` holds item ``i``'s kept weights, column indices sorted.
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    n_items = X.shape[1]
    pop = np.bincount(X.indices, minlength=n_items).astype(np.float64)
    Pui = _power(_l1_rows(X), alpha)                       # users x items
    Piu = _power(_l1_rows(X.T.tocsr()), alpha)             # items x users
    penalty = np.divide(1.0, pop ** beta, out=np.zeros_like(pop), where=pop > 0)
    R = Pui.multiply(penalty[None, :]).tocsr()             # columns scaled by pop^-beta
    width = min(k, n_items)
    if n_items == 0 or width == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    block = max(1, _FIT_BLOCK_ENTRIES // width)
    ids_parts, sc_parts = [], []
    for s in range(0, n_items, block):
        e = min(s + block, n_items)
        rows = np.arange(s, e)
        eye = sp.csr_matrix((np.ones(e - s), rows, np.arange(e - s + 1)), shape=(e - s, n_items))
        ids, sc = ops.topk_scores(Piu[s:e], R, n=width, exclude=eye, device=device, n_threads=n_threads)
        ids_parts.append(ids)
        sc_parts.append(sc)
    ids = np.concatenate(ids_parts)
    sc = np.concatenate(sc_parts)
    found = ids >= 0
    counts = found.sum(axis=1)
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    W = sp.csr_matrix((sc[found].astype(np.float64), ids[found], indptr), shape=(n_items, n_items))
    W.sort_indices()
    if normalize:
        W = _l1_rows(W)
    return W.astype(np.float32)


class RP3beta(RecommenderBase):
    """RP3beta graph random-walk item-item model (Paudel et al. 2016).

    ``score(u, j) = sum over the user's items i of x_ui * W_ij`` with
    ``W`` from :func:`rp3beta_weights`: the probability of a three-step
    random walk user -> item -> user -> item reaching ``j`` from ``i``
    (transition probabilities raised to ``alpha``), divided by the
    popularity of ``j`` raised to ``beta``, ``k`` largest per item. A strong,
    cheap baseline on implicit-feedback data (Dacrema et al. 2019, "Are we
    really making much progress?").

    Parameters
    ----------
    k : int, default 200
        Neighbours kept per item.
    alpha : float, default 1.0
        Exponent of the transition probabilities (> 0).
    beta : float, default 0.5
        Popularity penalty (>= 0; 0 gives P3alpha).
    normalize : bool, default False
        l1-normalise every item's kept weights.
    device, n_threads, batch_size
        See :class:`~cohortrec.recommenders.RecommenderBase`.

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix, shape (n_items, n_items)
        Row ``i`` holds item ``i``'s ``k`` largest weights ``W_ij`` (self
        excluded).

    Notes
    -----
    :meth:`similar_items` and :meth:`similar_users` rank by the cosine of the
    interaction columns / rows, as in every cohortrec model (``W`` is not
    symmetric).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from cohortrec.recommenders import RP3beta
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype="float32")
    >>> RP3beta(k=2).fit(X).recommend(0, X, N=1)[0]
    array([2], dtype=int32)
    """

    _param_names: ClassVar[tuple[str, ...]] = ("k", "alpha", "beta", "normalize")
    _state_names: ClassVar[tuple[str, ...]] = ("user_items_", "similarity_")

    def __init__(self, k: int = 200, alpha: float = 1.0, beta: float = 0.5, normalize: bool = False, *,
                 device: str = "auto", n_threads: int | None = None, batch_size: int = 2048) -> None:
        super().__init__(device=device, n_threads=n_threads, batch_size=batch_size)
        self.k = k
        self.alpha = alpha
        self.beta = beta
        self.normalize = normalize

    def _fit(self, X: sp.csr_matrix) -> None:
        k = check_int(self.k, "k", minimum=1)
        alpha = check_float(self.alpha, "alpha", minimum=0.0, min_inclusive=False)
        beta = check_float(self.beta, "beta", minimum=0.0)
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise TypeError(f"normalize must be a bool, got {self.normalize!r}")
        if X.nnz and X.data.min() < 0:
            raise ValueError("user_items must be non-negative for RP3beta (random-walk "
                             "transition probabilities)")
        self.similarity_ = rp3beta_weights(X, k, alpha, beta, bool(self.normalize), **self._ops_kwargs())

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
