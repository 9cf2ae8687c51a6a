"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with a native CG solver."""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from cohortrec._errors import NotFittedError
from cohortrec._validation import check_float, check_int
from cohortrec.ops import als_gram, als_loss, als_solve, prepare_dense, resolve_threads, row_server, user_topn_factors
from cohortrec.recommenders._base import RecommenderBase, check_user_items

__all__ = ["ALS"]


class ALS(RecommenderBase):
    """Implicit-feedback matrix factorisation by alternating least squares.

    Minimises ``sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + regularization
    (|X|^2 + |Y|^2)`` over user factors ``X`` and item factors ``Y``
    (Hu, Koren & Volinsky 2008), with confidence ``c_ui = alpha * r_ui`` on
    the stored interactions (1 elsewhere) and preference ``p_ui = 1`` where
    ``r_ui > 0`` (0 elsewhere; a negative value is a dislike with confidence
    ``alpha * |r_ui|``). These are :mod:`implicit`'s conventions and
    parameter names: ``implicit.als.AlternatingLeastSquares`` with the same
    parameters and ``random_state`` starts from the same factors and
    computes the same updates. Each half-step runs a few conjugate-gradient
    steps per row from the previous solution (Takacs, Pilaszy & Tikk 2011)
    in a native OpenMP kernel (float32), or solves each row exactly with
    ``use_cg=False``.

    Parameters
    ----------
    factors : int, default 100
        Number of latent factors.
    regularization : float, default 0.01
        L2 penalty on the factors.
    alpha : float, default 1.0
        Confidence scale of the stored interactions.
    iterations : int, default 15
        ALS sweeps (users then items).
    calculate_training_loss : bool, default False
        Compute the (normalised) training loss after each sweep into
        ``loss_history_`` (costs about one extra half-step each).
    random_state : int or None, default None
        Seed of the initial factors (``numpy.random.default_rng``); an
        ``numpy.random.Generator`` is accepted too (not saved by :meth:`save`).
    use_cg : bool, default True
        Conjugate gradient (``cg_steps`` per row and half-step); False solves
        every row exactly (slower by about ``factors / cg_steps``).
    cg_steps : int, default 3
        Conjugate-gradient steps per row and half-step.
    frequency_scaling : float, default 0.0
        Frequency-scaled regularisation (Rendle et al. 2022, "Revisiting the
        performance of iALS on item recommendation benchmarks"): a user with
        ``n`` interactions gets ``regularization * ((n + 1) / (n_mean + 1))
        ** frequency_scaling``, ``n_mean`` the training users' mean (items
        alike with the items' mean), so that ``regularization`` keeps its
        scale for an average row. 0 is implicit's uniform penalty; 0.25-0.5
        penalises heavy users and popular items more than light ones
        (validation NDCG@10 in ``benchmarks/results/recommenders-2026-12-06-freqscale.md``:
        ml-latest-small, 32 factors, 0.171 -> 0.183 at 0.5; Last.fm, 512
        factors, 0.183 -> 0.185 at 0.25). Not an implicit parameter.
    device, n_threads, batch_size
        See :class:`~cohortrec.recommenders.RecommenderBase`. Only
        ``device="cpu"``/``"auto"`` are supported.

    Attributes
    ----------
    user_factors : ndarray of float32, shape (n_users, factors)
    item_factors : ndarray of float32, shape (n_items, factors)
    loss_history_ : list of float
        Training loss after each sweep (only with ``calculate_training_loss``).

    Notes
    -----
    ``recommend(..., recalculate_user=True)`` solves the users' factors
    exactly from ``user_items`` and the item factors (as implicit does), so
    users unseen in training can be served. Scores are ``x_u . y_i``; items
    the user has are filtered by default, and a score of exactly 0 (a user
    or an item without interactions has zero factors) is not a candidate,
    as in the other models.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from cohortrec.recommenders import ALS
    >>> X = sp.random(50, 30, density=0.2, format="csr", random_state=0, dtype="float32")
    >>> model = ALS(factors=8, iterations=5, random_state=0).fit(X)
    >>> model.user_factors.shape, model.item_factors.shape
    ((50, 8), (30, 8))
    """

    _param_names: ClassVar[tuple[str, ...]] = (
        "factors", "regularization", "alpha", "iterations", "calculate_training_loss", "random_state",
        "use_cg", "cg_steps", "frequency_scaling")
    _state_names: ClassVar[tuple[str, ...]] = ("user_items_", "user_factors", "item_factors")

    def __init__(self, factors: int = 100, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, calculate_training_loss: bool = False,
                 random_state: int | np.random.Generator | None = None, use_cg: bool = True,
                 cg_steps: int = 3, *, frequency_scaling: float = 0.0, device: str = "auto",
                 n_threads: int | None = None, batch_size: int = 2048) -> None:
        super().__init__(device=device, n_threads=n_threads, batch_size=batch_size)
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.calculate_training_loss = calculate_training_loss
        self.random_state = random_state
        self.use_cg = use_cg
        self.cg_steps = cg_steps
        self.frequency_scaling = frequency_scaling
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    # -- fit ----------------------------------------------------------------
    def _check_params(self) -> tuple[int, float, float, int, int]:
        f = check_int(self.factors, "factors", minimum=1)
        reg = check_float(self.regularization, "regularization", minimum=0.0)
        alpha = check_float(self.alpha, "alpha", minimum=0.0, min_inclusive=False)
        iters = check_int(self.iterations, "iterations", minimum=0)
        steps = check_int(self.cg_steps, "cg_steps", minimum=1) if self.use_cg else 0
        check_float(self.frequency_scaling, "frequency_scaling", minimum=0.0)
        return f, reg, alpha, iters, steps

    def _row_regularization(self, R: sp.csr_matrix, mean_count: float, reg: float) -> np.ndarray | None:
        """Each row's penalty under ``frequency_scaling`` (None: the uniform ``reg``); after :meth:`_check_params`."""
        nu = float(self.frequency_scaling)
        if nu == 0.0:
            return None
        return reg * ((np.diff(R.indptr) + 1.0) / (mean_count + 1.0)) ** nu

    def _mean_counts(self, X: sp.csr_matrix) -> tuple[float, float]:
        """Mean interactions per user and per item of the training matrix (the scale of frequency_scaling)."""
        return X.nnz / max(X.shape[0], 1), X.nnz / max(X.shape[1], 1)

    def _rng(self) -> np.random.Generator:
        rs = self.random_state
        if isinstance(rs, np.random.Generator):
            return rs
        if rs is not None and (isinstance(rs, bool) or not isinstance(rs, (numbers.Integral, np.integer))):
            raise TypeError(f"random_state must be an int, a numpy Generator or None, got {rs!r}")
        return np.random.default_rng(rs)

    def fit(self, user_items: Any, show_progress: bool = False,
            callback: Callable[[int, float, float | None], Any] | None = None) -> ALS:
        """Factorise ``user_items`` (users x items).

        Parameters
        ----------
        user_items : scipy.sparse.csr_matrix, shape (n_users, n_items)
            Interaction strengths (see the class docstring for the
            confidence and preference they define).
        show_progress : bool, default False
            Accepted for compatibility with implicit; unused.
        callback : callable, optional
            ``callback(iteration, seconds, loss)`` after each sweep, like
            implicit's (``loss`` is None without ``calculate_training_loss``).

        Returns
        -------
        self
        """
        self._callback = callback
        try:
            return super().fit(user_items, show_progress)  # type: ignore[return-value]
        finally:
            self._callback = None

    def _fit(self, X: sp.csr_matrix) -> None:
        self._check_device_dense("fit")
        f, reg, alpha, iters, steps = self._check_params()
        rng = self._rng()
        n_users, n_items = X.shape
        # implicit's initialisation: uniform [0, 0.01), users first
        U = np.ascontiguousarray(rng.random((n_users, f), dtype=np.float32) * np.float32(0.01))
        V = np.ascontiguousarray(rng.random((n_items, f), dtype=np.float32) * np.float32(0.01))
        Xt = X.T.tocsr()
        kw = {"regularization": reg, "alpha": alpha, "cg_steps": steps, "n_threads": self.n_threads}
        mean_user, mean_item = self._mean_counts(X)
        reg_users, reg_items = self._row_regularization(X, mean_user, reg), self._row_regularization(Xt, mean_item, reg)
        self.loss_history_: list[float] = []
        callback = getattr(self, "_callback", None)
        for it in range(iters):
            t0 = time.perf_counter()
            als_solve(X, V, U, row_regularization=reg_users, **kw)
            als_solve(Xt, U, V, row_regularization=reg_items, **kw)
            loss = None
            if self.calculate_training_loss:
                loss = als_loss(X, U, V, regularization=reg, alpha=alpha, n_threads=self.n_threads,
                                row_regularization=reg_users, col_regularization=reg_items)
                self.loss_history_.append(loss)
            if callback is not None:
                callback(it, time.perf_counter() - t0, loss)
        self.user_factors = U
        self.item_factors = V
        self._yty = None

    # -- scoring ------------------------------------------------------------
    def _check_fitted(self) -> None:
        super()._check_fitted()
        if self.user_factors is None or self.item_factors is None:
            raise NotFittedError("this ALS is not fitted yet: call fit(user_items) first")

    def _gram(self, side: str) -> np.ndarray:
        reg = check_float(self.regularization, "regularization", minimum=0.0)
        if side == "items":
            if getattr(self, "_yty", None) is None:
                self._yty = als_gram(self.item_factors, reg)
            return self._yty
        return als_gram(self.user_factors, reg)

    def recalculate_user(self, userid: Any, user_items: Any) -> np.ndarray:
        """Users' factors solved exactly from their interactions (not stored).

        Parameters
        ----------
        userid : int or array-like of int
            Used only for the shape of the result (as in implicit).
        user_items : scipy.sparse.csr_matrix, shape (n, n_items)
            One row per entry of ``userid``.

        Returns
        -------
        ndarray of float32, shape (factors,) or (n, factors)
        """
        self._check_fitted()
        scalar = np.ndim(userid) == 0
        n = 1 if scalar else len(userid)
        R = check_user_items(user_items, n_items=self.n_items_)
        if R.shape[0] != n:
            raise ValueError(f"user_items must hold one row per userid ({n}), got shape {R.shape}")
        out = self._solve_users(R)
        return out[0] if scalar else out

    def _solve_users(self, R: sp.csr_matrix) -> np.ndarray:
        f, reg, alpha, _, _ = self._check_params()
        out = np.zeros((R.shape[0], self.item_factors.shape[1]), dtype=np.float32)
        per_row = self._row_regularization(R, self._mean_counts(self.user_items_)[0], reg)
        als_solve(R, self.item_factors, out, regularization=reg, alpha=alpha, cg_steps=0,
                  gram=self._gram("items"), n_threads=self.n_threads, row_regularization=per_row)
        return out

    def _topn(self, userids, rows, n, exclude, keep, recalculate):
        self._check_device_dense("recommend")
        U = self._solve_users(rows) if recalculate else self.user_factors[userids]
        e_ptr = e_idx = None
        if exclude is not None:
            E = sp.csr_matrix(exclude)
            e_ptr, e_idx = E.indptr, E.indices
        # The factor kernel for batches and (through the bound row server) for one user: the same scores
        # bit for bit, and no (batch x items) score matrix materialised. Zero scores (a user or an item
        # without interactions has zero factors) are not candidates.
        return user_topn_factors(U, self._items_t(), n, keep=keep, e_indptr=e_ptr, e_indices=e_idx,
                                 n_threads=resolve_threads(self.n_threads))

    def _items_t(self) -> np.ndarray:
        """``item_factors.T`` as a C-contiguous float32 (factors x items) matrix, built once per fitted state."""
        return self._serve_cached("items_t", self.item_factors,
                                  lambda: prepare_dense(np.asarray(self.item_factors, dtype=np.float32).T,
                                                        "item_factors"))

    def _server_source(self):
        return (self.user_factors, self.item_factors, self.user_items_)

    def _make_server(self):
        return row_server(np.ascontiguousarray(self.user_factors, dtype=np.float32), self.user_items_,
                          self.user_items_.shape[1], B=self._items_t())

    # -- similar users / items: cosine of the factors ---------------------------
    def _user_vectors(self) -> sp.csr_matrix:
        return sp.csr_matrix(self.user_factors)

    def _item_vectors(self) -> sp.csr_matrix:
        return sp.csr_matrix(self.item_factors)

    def _item_query(self, item_users: sp.csr_matrix) -> sp.csr_matrix:
        f, reg, alpha, _, _ = self._check_params()
        out = np.zeros((item_users.shape[0], self.user_factors.shape[1]), dtype=np.float32)
        per_row = self._row_regularization(item_users, self._mean_counts(self.user_items_)[1], reg)
        als_solve(item_users, self.user_factors, out, regularization=reg, alpha=alpha, cg_steps=0,
                  gram=self._gram("users"), n_threads=self.n_threads, row_regularization=per_row)
        return sp.csr_matrix(out)

    # -- persistence --------------------------------------------------------
    def _json_params(self) -> dict[str, Any]:
        params = self.get_params()
        rs = params["random_state"]
        params["random_state"] = int(rs) if isinstance(rs, (numbers.Integral, np.integer)) and \
            not isinstance(rs, bool) else None
        return params

    def _extra_meta(self) -> dict[str, Any]:
        return {"loss_history_": [float(v) for v in getattr(self, "loss_history_", [])]}

    def _after_load(self) -> None:
        self._yty = None
        for name in ("user_factors", "item_factors"):
            arr = getattr(self, name)
            if arr is not None:
                setattr(self, name, np.ascontiguousarray(arr, dtype=np.float32))
