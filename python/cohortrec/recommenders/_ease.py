"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019)."""

from __future__ import annotations

import contextlib
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from cohortrec._validation import check_float, check_int
from cohortrec.ops import (
    DualModel,
    prepare_dense,
    prepare_dual,
    resolve_threads,
    row_server,
    user_topn_dense,
    user_topn_dual,
)
from cohortrec.recommenders._base import RecommenderBase
from cohortrec.recommenders._online import OnlineMixin
from cohortrec.recommenders._serving import dense_one, dual_one

__all__ = ["EASE", "ease_dual", "ease_weights", "prefers_dual"]


def ease_weights(X: sp.csr_matrix, l2: float, dropout: float = 0.0, *,
                 return_diag: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Closed-form EASE item-item weights.

    ``P = (X^T X + Lambda)^-1``, ``B = I - P diag(1 / diag(P))``, i.e.
    ``B_ij = -P_ij / P_jj`` off the diagonal and ``B_jj = 0``, with
    ``Lambda = l2 I + dropout / (1 - dropout) diag(X^T X)`` (``dropout=0``:
    plain EASE, Steck 2019; ``dropout > 0``: the emphasised-denoising
    regulariser of Steck 2020, "Autoencoders that don't overfit towards the
    identity", which penalises popular items' weights more).

    Parameters
    ----------
    X : scipy.sparse matrix, shape (n_users, n_items)
    l2 : float
        L2 regularisation ``lambda`` (> 0 makes the Gram matrix invertible).
    dropout : float in [0, 1), default 0

    return_diag : bool, default False
        Also return ``diag(P)`` (with ``B`` it determines ``P``: what the
        online update :meth:`EASE.partial_fit_users` starts from).

    Returns
    -------
    ndarray of float64, shape (n_items, n_items)
        ``B`` (and ``diag(P)``, shape (n_items,), with ``return_diag``).
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    G = np.asarray((X.T @ X).toarray(), dtype=np.float64, order="F")
    G[np.diag_indices_from(G)] += _regulariser(np.diag(G), l2, dropout)
    if G.shape[0] == 0:
        return (G, np.zeros(0)) if return_diag else G
    P = _spd_inverse(G, "X^T X + l2 I")  # Cholesky inverse of the symmetric positive definite Gram matrix
    d = np.diag(P).copy()
    P /= -d[None, :]  # in place: B = -P / diag(P) column-wise
    P[np.diag_indices_from(P)] = 0.0
    return (P, d) if return_diag else P


def _symmetrize_upper(P: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle onto the lower one, in place, block by block."""
    n = P.shape[0]
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        # rows i0:i1, columns < i0 come from the transposed upper block
        P[i0:i1, :i0] = P[:i0, i0:i1].T
        sub = P[i0:i1, i0:i1]
        sub[np.tril_indices(i1 - i0, -1)] = sub.T[np.tril_indices(i1 - i0, -1)]


def _regulariser(gram_diag: np.ndarray, l2: float, dropout: float) -> np.ndarray:
    """``diag(Lambda) = l2 + dropout / (1 - dropout) diag(X^T X)`` from ``diag(X^T X)``."""
    return l2 + dropout / (1.0 - dropout) * gram_diag


def _gram_diag(X: sp.csr_matrix) -> np.ndarray:
    """``diag(X^T X)`` (the sum of squares of every column), float64, without forming ``X^T X``."""
    return np.bincount(X.indices, weights=np.asarray(X.data, dtype=np.float64) ** 2, minlength=X.shape[1])


#: above this order the Cholesky factorisation and inverse run on one BLAS thread. OpenBLAS's threaded
#: dpotrf crashes the process (SIGSEGV) on large matrices with two threads (OpenBLAS issue #2562; reproduced
#: with scipy-openblas 0.3.31 at order 16,380 on two cores, fine at 12,000 and with one thread).
SAFE_THREADED_CHOLESKY = 8192


def _spd_inverse(G: np.ndarray, what: str) -> np.ndarray:
    """Inverse of a symmetric positive definite float64 matrix (Cholesky), overwriting ``G``."""
    guard = (threadpool_limits(limits=1, user_api="blas") if G.shape[0] > SAFE_THREADED_CHOLESKY
             else contextlib.nullcontext())
    with guard:
        c, info = lapack.dpotrf(G, lower=False, overwrite_a=True, clean=False)
        if info != 0:
            raise np.linalg.LinAlgError(f"{what} is not positive definite (potrf info={info}); increase l2")
        P, info = lapack.dpotri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverting {what} failed (potri info={info})")
    _symmetrize_upper(P)
    return P


def ease_dual(X: sp.csr_matrix, l2: float, dropout: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """EASE in its dual (user-side) form, for more items than users.

    By the Woodbury identity ``P = (X^T X + Lambda)^-1 = Lambda^-1 -
    Lambda^-1 X^T M X Lambda^-1`` with the users x users matrix
    ``M = (I + X Lambda^-1 X^T)^-1``; ``B = I - P diag(1 / diag(P))`` is then
    never formed. Costs O(n^3 + n nnz(X)) time and O(n^2) memory for n users,
    against O(m^3) and O(m^2) for m items in :func:`ease_weights`; the scores
    ``x B`` are computed from ``M`` by :func:`cohortrec.ops.user_topn_dual`.
    ``Lambda`` as in :func:`ease_weights`.

    Parameters
    ----------
    X : scipy.sparse matrix, shape (n_users, n_items)
    l2 : float
    dropout : float in [0, 1), default 0

    Returns
    -------
    M : ndarray of float64, shape (n_users, n_users)
    diag_p : ndarray of float64, shape (n_items,)
        ``diag(P)``, equal to :func:`ease_weights`' ``return_diag`` up to rounding.
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    n, m = X.shape
    lam = _regulariser(_gram_diag(X), l2, dropout)
    Y = X @ sp.diags(1.0 / lam)
    K = np.asarray((Y @ X.T).toarray(), dtype=np.float64, order="F")
    K[np.diag_indices_from(K)] += 1.0
    M = _spd_inverse(K, "I + X Lambda^-1 X^T") if n else K
    # diag(P)_j = 1 / lam_j - X_j^T M X_j / lam_j^2, over blocks of items (a dense block of M X at a time)
    Xc = X.tocsc()
    s = np.zeros(m)
    step = max(1, (1 << 24) // max(n, 1))
    for j0 in range(0, m, step):
        Xb = Xc[:, j0:j0 + step]
        Zt = np.asarray(Xb.T @ M)  # block x n
        s[j0:j0 + step] = np.asarray(Xb.T.multiply(Zt).sum(axis=1)).ravel()
    return M, 1.0 / lam - s / lam ** 2


#: the primal form's float64 Gram matrix above which solver="auto" takes the dual form whatever a request costs
PRIMAL_GRAM_BYTES = 4 << 30


def prefers_dual(n_users: int, n_items: int, nnz: int) -> bool:
    """Whether ``EASE(solver="auto")`` takes the dual form for a training matrix of this shape.

    A request reads ``|x_u|`` rows of ``B`` in the primal form, ``n_items``
    floats each: ``nnz / n_users * n_items`` on average. In the dual form it
    reads ``M`` (``n_users^2`` at most) and the training matrix once
    (``nnz``), whatever ``|x_u|``. The dual form is taken where it reads
    less, or where the primal's ``n_items^2`` Gram matrix (float64) would
    pass :data:`PRIMAL_GRAM_BYTES` and the dual's would not: on
    ml-latest-small (610 users, 6,298 items) a request reads 0.42 M values
    against 0.50 M on average (and 4.4 M for the heaviest 1 %), on Last.fm
    (1,877 users, 4,614 items kept) 3.6 M against 0.23 M.
    """
    if n_users <= 0 or n_items <= 0:
        return False
    if 8 * n_items ** 2 > PRIMAL_GRAM_BYTES and n_users < n_items:
        return True
    return n_users ** 2 + nnz < nnz / n_users * n_items


class EASE(OnlineMixin, RecommenderBase):
    """EASE^R linear item-item model (Steck 2019), fitted in closed form.

    ``score(u, .) = x_u B`` with ``B`` minimising
    ``||X - X B||^2 + l2 ||B||^2`` subject to ``diag(B) = 0``. In the
    primal form memory and time grow with ``n_items^2`` and ``n_items^3``
    (dense Gram matrix); in the dual form (more items than users) with
    ``n_users^2`` and ``n_users^3``, and ``B`` is never formed. Items whose
    score is exactly 0 (no connection to the user's items) are not returned,
    as in the neighbourhood models.

    Parameters
    ----------
    l2 : float, default 100.0
        Regularisation ``lambda``.
    min_item_users : int, default 1
        Items with fewer training users are left out of the model (never
        recommended, not used for scoring): the cost is cubic in the number
        of items kept.
    dropout : float in [0, 1), default 0.0
        0 is EASE as published (Steck 2019). Otherwise the diagonal of the
        regulariser grows by ``dropout / (1 - dropout) * diag(X^T X)``: the
        closed form of emphasised denoising with this dropout rate (Steck
        2020, "Autoencoders that don't overfit towards the identity"),
        which regularises popular items more.
    beta : float, default 0.0
        Popularity penalty at scoring time: the score of item ``j`` is
        divided by ``n_users(j) ** beta`` (its number of training users),
        i.e. column ``j`` of ``B`` is scaled by ``n_users(j) ** -beta``, the
        same penalty as in :class:`~cohortrec.recommenders.RP3beta`
        (Paudel et al. 2016; see also Steck 2011, "Item popularity and
        recommendation accuracy"). 0 is EASE as published. It changes the
        ranking across items, never which items are candidates.
    solver : {"auto", "primal", "dual"}, default "auto"
        ``"primal"`` inverts the items x items Gram matrix and stores ``B``
        (one user costs ``|x_u|`` rows of ``B``). ``"dual"`` inverts the
        users x users matrix ``I + X Lambda^-1 X^T`` instead (Woodbury) and
        scores one user in O(nnz(X) + n_users^2) whatever their number of
        items (:func:`ease_dual`). ``"auto"``: the form in which an average
        request costs less (:func:`prefers_dual`), the dual form also when
        the primal's Gram matrix would not fit in 4 GiB. Both give the same
        scores up to float32 rounding.
    device, n_threads, batch_size
        See :class:`~cohortrec.recommenders.RecommenderBase`. Only
        ``device="cpu"``/``"auto"`` are supported (NumPy/LAPACK).

    Attributes
    ----------
    item_weights_ : ndarray of float32, shape (n_kept, n_kept), or None
        The matrix ``B`` over the kept items (columns scaled by the
        popularity penalty when ``beta > 0``); None when fitted in the dual form.
    dual_gram_inverse_ : ndarray of float32, shape (n_train, n_train), or None
        ``M = (I + X Lambda^-1 X^T)^-1`` of the dual form (None in the primal).
    dual_user_items_ : scipy.sparse.csr_matrix, shape (n_train, n_kept), or None
        The training matrix over the kept items, which the dual form scores
        against (None in the primal).
    gram_inverse_diag_ : ndarray of float64, shape (n_kept,)
        ``diag(P)``.
    items_ : ndarray of int64, shape (n_kept,)
        Ids of the kept items (all items with a training user by default).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from cohortrec.recommenders import EASE
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype="float32")
    >>> EASE(l2=0.5).fit(X).recommend(0, X, N=1)[0]
    array([2], dtype=int32)
    """

    _item_model = True  # partial_fit_users(update_items=False) keeps the item model

    _param_names: ClassVar[tuple[str, ...]] = ("l2", "min_item_users", "dropout", "beta", "solver")
    _state_names: ClassVar[tuple[str, ...]] = ("user_items_", "item_weights_", "items_", "gram_inverse_diag_",
                                               "dual_gram_inverse_", "dual_user_items_")

    def __init__(self, l2: float = 100.0, min_item_users: int = 1, dropout: float = 0.0,
                 beta: float = 0.0, solver: str = "auto", *, device: str = "auto", n_threads: int | None = None,
                 batch_size: int = 2048) -> None:
        super().__init__(device=device, n_threads=n_threads, batch_size=batch_size)
        self.l2 = l2
        self.min_item_users = min_item_users
        self.dropout = dropout
        self.beta = beta
        self.solver = solver

    def _fit(self, X: sp.csr_matrix) -> None:
        self._check_device_dense("fit")
        l2 = float(self.l2)
        if not l2 > 0:
            raise ValueError(f"l2 must be > 0, got {self.l2!r}")
        min_users = check_int(self.min_item_users, "min_item_users", minimum=0)
        dropout = float(self.dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")
        beta = check_float(self.beta, "beta", minimum=0.0)
        if self.solver not in ("auto", "primal", "dual"):
            raise ValueError(f"solver must be 'auto', 'primal' or 'dual', got {self.solver!r}")
        counts = np.bincount(X.indices, minlength=X.shape[1])
        self.items_ = np.flatnonzero(counts >= min_users).astype(np.int64)
        Xs = X[:, self.items_] if len(self.items_) < X.shape[1] else X
        if self.solver == "dual" or (self.solver == "auto" and prefers_dual(*Xs.shape, Xs.nnz)):
            M, self.gram_inverse_diag_ = ease_dual(Xs, l2, dropout)
            self.dual_gram_inverse_ = M.astype(np.float32)
            self.dual_user_items_ = sp.csr_matrix(Xs, dtype=np.float32)
            self.item_weights_ = None
            return
        self.dual_gram_inverse_ = self.dual_user_items_ = None
        B, self.gram_inverse_diag_ = ease_weights(Xs, l2, dropout, return_diag=True)
        if beta > 0:
            pop = np.maximum(counts[self.items_], 1).astype(np.float64)
            B *= (pop ** -beta)[None, :]
        self.item_weights_ = B.astype(np.float32)

    def _topn(self, userids, rows, n, exclude, keep, recalculate):
        # x_u B for a batch of users with the fused native kernel (sparse rows
        # times the dense B, exclusion and top-n in one pass per user; no
        # users x items score matrix). The one-user path calls the same kernel.
        self._check_device_dense("recommend")
        B, pos = self._serving_state()
        R = rows if pos is None else _to_kept(rows, pos)
        e_ptr = e_idx = None
        if exclude is not None:
            E = sp.csr_matrix(exclude) if pos is None else _to_kept(exclude, pos)
            e_ptr, e_idx = E.indptr, E.indices
        k = keep if keep is None or pos is None else keep[self.items_]
        kernel = user_topn_dual if isinstance(B, DualModel) else user_topn_dense
        ids, sc = kernel(R.indptr, R.indices, R.data, B, n, keep=k, e_indptr=e_ptr, e_indices=e_idx,
                         drop_zero=True, n_threads=resolve_threads(self.n_threads))
        return self._to_items(ids), sc

    # -- online updates --------------------------------------------------------
    def _update(self, X, changed_users, changed_items):
        """Users, primal form: a Woodbury update of ``P = (X^T X + l2 I)^-1`` by the changed rows
        (``P`` is rebuilt from ``B`` and ``diag(P)``; the kept items stay those
        of the fit). Exact up to float32 rounding of ``B``; O(n_kept^2 r) for
        r changed users instead of O(n_kept^3). Items (new or changed
        columns), ``dropout > 0`` or a model saved before ``diag(P)`` was
        stored, and the dual form (whose fit is cheap: fewer users than
        items): a refit on the new matrix."""
        d = getattr(self, "gram_inverse_diag_", None)
        old = self.user_items_
        if (X.shape[1] != old.shape[1] or float(self.dropout) != 0.0 or d is None or self.item_weights_ is None
                or np.size(d) != len(self.items_) or len(self.items_) == 0):
            self._fit(X)
            return
        if changed_users.size == 0:
            return
        items = self.items_
        full = len(items) == X.shape[1]
        existing = changed_users[changed_users < old.shape[0]]
        U_new = X[changed_users]
        U_old = old[existing]
        if not full:
            U_new, U_old = U_new[:, items], U_old[:, items]
        U = sp.vstack([U_new, U_old], format="csr", dtype=np.float64)
        sign = np.r_[np.ones(U_new.shape[0]), -np.ones(U_old.shape[0])]
        counts_old = np.bincount(old.indices, minlength=old.shape[1])[items]
        counts_new = np.bincount(X.indices, minlength=X.shape[1])[items]
        beta = float(self.beta)
        P = np.asarray(self.item_weights_, dtype=np.float64)
        if beta > 0:
            P = P / (np.maximum(counts_old, 1).astype(np.float64) ** -beta)[None, :]
        P *= -d[None, :]  # P_ij = -B_ij P_jj off the diagonal
        P[np.diag_indices_from(P)] = d
        UP = np.asarray(U @ P)                          # r x n_kept
        K = np.diag(sign) + np.asarray(UP @ U.T.toarray())  # S^-1 + U P U^T, S = diag(sign)
        KUP = np.linalg.solve(K, UP)
        from scipy.linalg import blas  # noqa: PLC0415

        Pt = P.T  # Fortran-ordered view: dgemm updates P in place
        Pt = blas.dgemm(-1.0, UP, KUP, beta=1.0, c=Pt, trans_a=True, overwrite_c=True)
        P = Pt.T
        d_new = np.diag(P).copy()
        P /= -d_new[None, :]
        P[np.diag_indices_from(P)] = 0.0
        if beta > 0:
            P *= (np.maximum(counts_new, 1).astype(np.float64) ** -beta)[None, :]
        self.item_weights_ = P.astype(np.float32)
        self.gram_inverse_diag_ = d_new

    def _after_load(self) -> None:
        for name in ("gram_inverse_diag_", "dual_gram_inverse_", "dual_user_items_"):
            if getattr(self, name, None) is None:  # files saved before these existed
                setattr(self, name, None)

    # -- serving ---------------------------------------------------------------
    def _serving_state(self) -> tuple[np.ndarray | DualModel, np.ndarray | None]:
        """(B as C-contiguous float32, or the dual model; position of each item among the kept ones or None
        when all are kept)."""
        def positions():
            pos = None
            if len(self.items_) < self.user_items_.shape[1]:
                pos = np.full(self.user_items_.shape[1], -1, dtype=np.int64)
                pos[self.items_] = np.arange(len(self.items_))
            return pos

        if self.item_weights_ is None and getattr(self, "dual_gram_inverse_", None) is not None:
            return self._serve_cached("dual", (self.dual_gram_inverse_, self.dual_user_items_,
                                               self.gram_inverse_diag_, self.items_),
                                      lambda: (self._dual_model(), positions()))
        return self._serve_cached("dense", self.item_weights_,
                                  lambda: (prepare_dense(self.item_weights_, "item_weights_"), positions()))

    def _dual_model(self) -> DualModel:
        """The dual form's serving arrays (:func:`cohortrec.ops.prepare_dual`) from the fitted state."""
        X = sp.csr_matrix(self.dual_user_items_)
        d = np.asarray(self.gram_inverse_diag_, dtype=np.float64)
        if X.shape[1] != len(self.items_) or d.shape != (X.shape[1],):
            raise ValueError(f"dual_user_items_ has shape {X.shape} and gram_inverse_diag_ {d.shape}, "
                             f"for {len(self.items_)} kept items")
        counts = np.bincount(X.indices, minlength=X.shape[1])
        lam = _regulariser(_gram_diag(X), float(self.l2), float(self.dropout))
        c = np.maximum(counts, 1).astype(np.float64) ** -float(self.beta)
        with np.errstate(divide="ignore", invalid="ignore"):
            col = lam * d  # Lambda_j P_jj, in (0, 1]
            diag = np.where(counts > 0, c * (1.0 - 1.0 / col), 0.0)  # an item without users: B_jj = 0, exactly
            scale = np.where(counts > 0, c / col, 0.0)
        return prepare_dual(X, 1.0 / lam, scale, self.dual_gram_inverse_, diag)

    def _to_items(self, ids: np.ndarray) -> np.ndarray:
        if len(self.items_) == self.user_items_.shape[1]:
            return ids
        if len(self.items_) == 0:
            return np.full_like(ids, -1)
        out = np.where(ids >= 0, self.items_[np.maximum(ids, 0)], -1)
        return out.astype(np.int64, copy=False)

    def _server_source(self):
        if len(self.items_) == 0:
            return None
        if self.item_weights_ is None:
            return (self.dual_gram_inverse_, self.dual_user_items_, self.gram_inverse_diag_, self.user_items_)
        return (self.item_weights_, self.user_items_)

    def _make_server(self):
        B, pos = self._serving_state()
        model = {"dual": B} if isinstance(B, DualModel) else {"B": B}
        if pos is None:
            return row_server(self.user_items_, self.user_items_, self.user_items_.shape[1], row_is_query=True,
                              **model)
        kept = _to_kept(self.user_items_, pos)
        return row_server(kept, kept, self.user_items_.shape[1], in_map=pos, out_map=self.items_,
                          row_is_query=True, **model)

    def _topn_one(self, userid, idx, val, n, exclude, keep, recalculate):
        B, pos = self._serving_state()
        if pos is not None:
            p = pos[idx]
            sel = p >= 0
            idx, val = p[sel], val[sel]
            if exclude is not None:
                pe = pos[exclude]
                exclude = pe[pe >= 0]
            if keep is not None:
                keep = keep[self.items_]
        one = dual_one if isinstance(B, DualModel) else dense_one
        ids, sc = one(B, idx, val, n, exclude, keep)
        return self._to_items(ids), sc


def _to_kept(M: sp.csr_matrix, pos: np.ndarray) -> sp.csr_matrix:
    """The columns of ``M`` that are kept items, renumbered by ``pos`` (-1 = dropped); stays canonical."""
    M = sp.csr_matrix(M)
    p = pos[M.indices]
    sel = p >= 0
    counts = np.bincount(np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))[sel], minlength=M.shape[0])
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return sp.csr_matrix((M.data[sel], p[sel], indptr), shape=(M.shape[0], int((pos >= 0).sum())))
