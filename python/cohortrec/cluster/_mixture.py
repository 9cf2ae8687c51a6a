"""A mixture of multinomials over items: groups as item distributions, fitted by EM.

K-means on embeddings treats every user as one point of the same weight. A
user with 3 events and one with 500 are placed with the same confidence,
and the share of events that ignore the user's group (noise) pulls both
towards the centre. A mixture of multinomials (Nigam et al. 2000, "Text
classification from labeled and unlabeled documents using EM", Machine
Learning 39) models what the data is: every group ``g`` has a distribution
``theta_g`` over items, and a user's events are draws from the distribution
of their group. The evidence for a group then grows with the number of
events, and events spread over popular items weigh little against the few
that only one group makes.

Each ``theta_g`` is smoothed towards the overall item distribution with
``alpha`` pseudo-events (a Dirichlet prior centred on the background), so
that an item a group never touched is unlikely for it, not impossible, and
noise events cost every group alike.

With item categories (``fit(..., item_categories=)``) the prior of each
group is centred on the group's own profile over categories instead: an
item the group never touched is as likely as its category is for the group
(times the item's share of the category). A group's few events on an item
then borrow strength from its events on the item's category, the
hierarchical smoothing of a two-level model (the category level pooled over
many items, the item level shrunk towards it). On the planted worlds whose
tastes are over categories this recovers groups that the background prior
merges (``benchmarks/bench_discovery_robustness.py``); where categories
carry no signal the centre is the background again, only with a stronger
prior, so whether to use it is chosen on held-out events
(:func:`heldout_prior_choice`).

The E-step is one sparse-dense product, ``X @ log(theta).T``: ``O(nnz * k)``
time and ``O(n * k + k * n_items)`` memory per iteration.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp, softmax
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from cohortrec._errors import check_fitted
from cohortrec._validation import as_csr, as_dense, check_finite, check_float, check_int, group_indicator

__all__ = ["MultinomialMixture", "admixture_weights", "heldout_k_curve", "heldout_prior_choice"]


def _as_counts(X: Any, name: str = "X") -> sp.csr_matrix:
    M = as_csr(X, name, np.float64) if sp.issparse(X) else sp.csr_matrix(as_dense(X, name, np.float64))
    if M.ndim != 2:
        raise ValueError(f"{name} must be 2-D (users x items), got shape {M.shape}")
    if M.nnz and (M.data < 0).any():
        raise ValueError(f"{name} must hold non-negative counts")
    return M


def _check_init(init: Any, n: int) -> np.ndarray:
    """``init`` as integer labels of shape ``(n,)`` (every user's starting group), else a clear error."""
    labels = np.asarray(init)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"init must be integer labels of shape ({n},), got {labels.dtype} {labels.shape}")
    return labels


def _category_matrix(C: Any, n_items: int) -> sp.csr_matrix:
    """``item_categories`` checked and row-normalised: every categorised item's membership sums to 1."""
    A = as_csr(C, "item_categories", np.float64) if sp.issparse(C) else \
        sp.csr_matrix(as_dense(C, "item_categories", np.float64))
    if A.ndim != 2 or A.shape[0] != n_items:
        raise ValueError(f"item_categories must have one row per item ({n_items}), got shape {A.shape}")
    check_finite(A.data, "item_categories")
    if A.nnz and (A.data < 0).any():
        raise ValueError("item_categories must be non-negative (memberships of items in categories)")
    A.eliminate_zeros()
    if A.nnz == 0:
        raise ValueError("item_categories puts no item in any category")
    rows = np.asarray(A.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(np.divide(1.0, rows, out=np.zeros_like(rows), where=rows > 0)) @ A)


class MultinomialMixture(ClusterMixin, BaseEstimator):
    """Mixture of multinomials over items (users = bags of item events), fitted by EM.

    Parameters
    ----------
    n_components : int, default 8
        Number of groups.
    alpha : float, default 1.0
        Prior strength per item: each group's item distribution gets
        ``alpha * n_items`` pseudo-events spread as the overall item
        distribution (larger = smoother, closer to the background), or, when
        ``fit`` is given ``item_categories``, as the group's own profile over
        categories.
    binary : bool, default False
        Count every user-item pair once, whatever its value. Event-type
        weights (a purchase worth 5 views) are not counts: read as counts
        they make a purchase five independent draws and the posterior
        overconfident. :class:`~cohortrec.GroupDiscovery` sets it (on
        ``make_shop`` worlds, ARI +0.05 to +0.13 over the weighted counts).
    max_iter : int, default 100
        Most EM iterations.
    tol : float, default 1e-3
        Stop when at most this share of users changed group in an iteration.
    random_state : int, RandomState or None
        Used only without ``init`` (random initial assignment).

    Attributes
    ----------
    labels_ : ndarray of int64, shape (n_users,)
        Most probable group of every training user.
    n_components_ : int
        Groups kept: a group that no user prefers at the end of EM is
        dropped (the data do not support it), so this may be below
        ``n_components``; ``labels_`` run over ``0 .. n_components_ - 1``.
    weights_ : ndarray of shape (n_components,)
        Group shares.
    log_theta_ : ndarray of shape (n_components, n_items)
        Log item distribution of every group.
    counts_ : ndarray of shape (n_components, n_items)
        Expected events of every group on every item (the sufficient
        statistics; :meth:`update` adds to them).
    background_ : ndarray of shape (n_items,)
        Overall item distribution (add-one smoothed), the prior's centre
        (without categories).
    item_categories_ : scipy.sparse.csr_matrix of shape (n_items, n_categories) or None
        The categories given to ``fit``, each item's row summing to 1 (0 for
        items without a category); None without them.
    n_iter_ : int
    log_likelihood_ : float
        Mean log-likelihood per event at the end.
    """

    def __init__(self, n_components: int = 8, *, alpha: float = 1.0, binary: bool = False, max_iter: int = 100,
                 tol: float = 1e-3, random_state: int | np.random.RandomState | None = None) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.binary = binary
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _m_step(self, X: sp.csr_matrix, R: np.ndarray) -> None:
        self._m_step_from_sums(np.asarray((X.T @ R).T), R.sum(axis=0))

    def _m_step_from_sums(self, counts: np.ndarray, users: np.ndarray) -> None:
        """The M-step from its sufficient statistics: expected events of every group on every item
        (``k x n_items``) and expected users of every group; shared with the Dask refinement, whose
        workers compute the sums of their blocks."""
        self.counts_ = np.asarray(counts, dtype=np.float64)
        nk = np.asarray(users, dtype=np.float64) + 1e-10
        self.weights_ = nk / nk.sum()
        self._refresh()

    def _refresh(self) -> None:
        """``log_theta_`` from ``counts_``, ``alpha`` and the prior's centre (the M-step's smoothing)."""
        prior = float(self.alpha) * self.counts_.shape[1]
        A = getattr(self, "item_categories_", None)
        centre = self.background_ if A is None else self._category_centre(A)
        theta = (self.counts_ + prior * centre) / (self.counts_.sum(axis=1, keepdims=True) + prior)
        self.log_theta_ = np.log(theta)

    def _set_item_categories(self, item_categories: Any, n_items: int) -> None:
        """Checks and stores the categories of :meth:`fit` (also how a saved model gets its own back)."""
        self.item_categories_ = None if item_categories is None else _category_matrix(item_categories, n_items)

    def _category_centre(self, A: sp.csr_matrix) -> np.ndarray:
        """Every group's prior centre over items (``k x n_items``, rows sum to 1) from its profile over categories.

        ``phi_g(c)``: the group's share of events in category ``c``, with one
        pseudo-event per category spread as the background. An item's centre
        is its background probability times ``phi_g / background`` of its
        categories (their mean for an item in several), so within a category
        the items keep their overall shares; an item without a category
        keeps its background probability.
        """
        bg = self.background_
        c = A.shape[1]
        bg_cat = np.asarray(A.T @ bg).ravel()
        bg_cat_share = bg_cat / bg_cat.sum()
        counts_cat = np.asarray(A.T @ self.counts_.T).T  # (k, c): expected events of every group per category
        phi = (counts_cat + c * bg_cat_share) / (counts_cat.sum(axis=1, keepdims=True) + c)
        ratio = np.divide(phi, bg_cat_share, out=np.zeros_like(phi), where=bg_cat_share > 0)
        factor = np.asarray(A @ ratio.T).T  # (k, n_items)
        factor[:, np.diff(A.indptr) == 0] = 1.0
        centre = bg * factor
        return centre / centre.sum(axis=1, keepdims=True)

    def update(self, X_add: Any = None, labels_add: Any = None, X_remove: Any = None,
               labels_remove: Any = None) -> MultinomialMixture:
        """Online M-step: add (and remove) users' events to (from) their groups.

        With every other user's group fixed, the result equals an M-step on
        all users with hard assignments. Used by
        :meth:`cohortrec.GroupDiscovery.partial_fit`.
        """
        check_fitted(self, "log_theta_")
        k = self.counts_.shape[0]
        sizes = self.weights_ * self.n_users_
        for Xs, labs, sign in ((X_add, labels_add, 1.0), (X_remove, labels_remove, -1.0)):
            if Xs is None:
                continue
            M = self._check_X(Xs)
            one = group_indicator(np.asarray(labs, dtype=np.int64), k)
            self.counts_ = np.maximum(self.counts_ + sign * np.asarray((one @ M).todense()), 0.0)
            sizes = np.maximum(sizes + sign * np.asarray(one.sum(axis=1)).ravel(), 0.0)
        self.n_users_ = float(sizes.sum())
        self.weights_ = (sizes + 1e-10) / (sizes.sum() + k * 1e-10)
        self._refresh()
        return self

    def _log_joint(self, X: sp.csr_matrix) -> np.ndarray:
        return np.asarray(X @ self.log_theta_.T) + np.log(self.weights_)[None, :]

    def fit(self, X: Any, y: Any = None, *, init: Any = None, item_categories: Any = None) -> MultinomialMixture:
        """Fit by EM.

        Parameters
        ----------
        X : sparse matrix or array of shape (n_users, n_items)
            Non-negative event counts (or weights).
        y : ignored
        init : array of int, shape (n_users,), optional
            Initial group of every user (e.g. K-means labels); labels outside
            ``[0, n_components)`` (such as ``-1``) start with no group.
        item_categories : sparse matrix or array of shape (n_items, n_categories), optional
            Non-negative membership of every item in categories (an
            indicator matrix such as
            :meth:`~cohortrec.interactions.Interactions.item_categories`).
            Centres each group's prior on its own profile over the categories
            instead of the overall item distribution (see the module notes).

        Returns
        -------
        self
        """
        k = check_int(self.n_components, "n_components", minimum=1)
        check_int(self.max_iter, "max_iter", minimum=1)
        check_float(self.alpha, "alpha", minimum=0.0, min_inclusive=False)
        check_float(self.tol, "tol", minimum=0.0)
        M = self._counts_of(X)
        n, m = M.shape
        if k > n:
            raise ValueError(f"n_components={k} is larger than the number of users ({n})")
        if M.nnz == 0:
            raise ValueError("X holds no event: there is nothing to fit")
        total = np.asarray(M.sum(axis=0)).ravel()
        self.background_ = (total + 1.0) / (total.sum() + m)
        self._set_item_categories(item_categories, m)
        if init is None:
            labels = check_random_state(self.random_state).randint(k, size=n)
        else:
            labels = _check_init(init, n)
        R = np.zeros((n, k))
        ok = (labels >= 0) & (labels < k)
        R[np.flatnonzero(ok), labels[ok]] = 1.0
        events = max(float(M.sum()), 1.0)
        prev_ll = -np.inf
        self._m_step(M, R)
        for it in range(1, int(self.max_iter) + 1):
            L = self._log_joint(M)
            lse = logsumexp(L, axis=1, keepdims=True)  # log p(user's items), once for the posterior and the ll
            logR = L - lse
            ll = float(lse.sum()) / events
            new = np.argmax(logR, axis=1)
            changed = float(np.mean(new != labels))
            labels = new
            R = np.exp(logR)
            # a group that lost every user restarts on the users its rivals explain worst
            empty = np.flatnonzero(np.bincount(labels, minlength=k) == 0)
            if empty.size:
                worst = np.argsort(L[np.arange(n), labels] / np.maximum(np.diff(M.indptr), 1))[: empty.size]
                for g, u in zip(empty, worst):
                    R[u] = 0.0
                    R[u, g] = 1.0
                    labels[u] = g
            self._m_step(M, R)
            self.n_iter_ = it
            prev_ll = ll
            if changed <= self.tol:
                break
        labels = np.argmax(self._log_joint(M), axis=1)
        used = np.flatnonzero(np.bincount(labels, minlength=k))
        if used.size < k:  # the data support fewer groups: drop the empty ones rather than keep hollow groups
            self.counts_ = self.counts_[used]
            self.weights_ = self.weights_[used] / self.weights_[used].sum()
            self._refresh()
            labels = np.argmax(self._log_joint(M), axis=1)
        self.n_components_ = int(used.size)
        self.labels_ = labels.astype(np.int64)
        self.log_likelihood_ = prev_ll
        self.n_features_in_ = m
        self.n_users_ = float(n)
        return self

    def _counts_of(self, X: Any) -> sp.csr_matrix:
        M = _as_counts(X)
        if self.binary and M.nnz:
            M = sp.csr_matrix(((M.data != 0).astype(np.float64), M.indices, M.indptr), shape=M.shape)
            M.eliminate_zeros()
        return M

    def _check_X(self, X: Any) -> sp.csr_matrix:
        check_fitted(self, "log_theta_")
        M = self._counts_of(X)
        if M.shape[1] != self.log_theta_.shape[1]:
            raise ValueError(f"X has {M.shape[1]} items, but {type(self).__name__} was fitted with "
                             f"{self.log_theta_.shape[1]}")
        return M

    def predict(self, X: Any) -> np.ndarray:
        """Most probable group of every row (users with no event: the largest group)."""
        return np.argmax(self._log_joint(self._check_X(X)), axis=1).astype(np.int64)

    def _predict_row(self, indices: np.ndarray, data: np.ndarray) -> int:
        """:meth:`predict` of one user given their items' columns and values (the serving path)."""
        data = np.asarray(data, dtype=np.float64)
        if self.binary:
            data = (data != 0).astype(np.float64)
        scores = self.log_theta_[:, indices] @ data + np.log(self.weights_)
        return int(np.argmax(scores))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior probability of every group for every row (rows sum to 1)."""
        return softmax(self._log_joint(self._check_X(X)), axis=1)

    def admixture(self, X: Any, *, n_iter: int = 20) -> np.ndarray:
        """Share of every user's events explained by every group (rows sum to 1).

        See :func:`admixture_weights`.
        """
        return _admixture(self._check_X(X), self.log_theta_, n_iter=n_iter, tol=1e-4)


def admixture_weights(X: Any, log_theta: np.ndarray, *, n_iter: int = 20, tol: float = 1e-4) -> np.ndarray:
    """Mixing weights of fixed group distributions that best explain every user.

    For every user ``u`` this maximises ``sum_i x_ui log(sum_g w_ug theta_gi)``
    over the simplex (EM on the mixing weights with the group distributions
    fixed, as the fold-in of a topic model). A user who is 70% one group and
    30% another gets about ``(0.7, 0.3)``, where the posterior of a
    one-group-per-user mixture would say ``(1, 0)``. ``O(nnz * k)`` per
    iteration.

    Parameters
    ----------
    X : sparse matrix of shape (n_users, n_items)
    log_theta : ndarray of shape (k, n_items)
    n_iter : int, default 20
        Most EM iterations. On the planted worlds 20 leave a mean absolute
        error of 0.001 against 500 iterations (a few near-tied users move
        slower); the cost is ``O(nnz * k)`` per iteration (about 0.5 s per
        iteration at 27M events).
    tol : float, default 1e-4
        Stop early when no weight moved by more than this in an iteration.

    Returns
    -------
    ndarray of shape (n_users, k)
        Rows of users with no event are uniform.
    """
    return _admixture(_as_counts(X), np.asarray(log_theta, dtype=np.float64), n_iter=n_iter, tol=tol)


def _admixture(M: sp.csr_matrix, log_theta: np.ndarray, *, n_iter: int, tol: float) -> np.ndarray:
    """:func:`admixture_weights` of counts already checked (the estimator's path checks them once)."""
    k = log_theta.shape[0]
    n = M.shape[0]
    W = np.full((n, k), 1.0 / k)
    if M.nnz == 0:
        return W
    theta_t = np.ascontiguousarray(np.exp(log_theta - log_theta.max(axis=0, keepdims=True)).T)  # (items, k)
    # rows in chunks of about 2M events: the per-event arrays stay bounded
    bounds = np.searchsorted(M.indptr, np.arange(0, M.nnz, 2_000_000), side="right") - 1
    starts = np.unique(np.r_[bounds, n])
    for a, b in zip(starts[:-1], starts[1:]):
        C = M[a:b]
        rows = np.repeat(np.arange(b - a), np.diff(C.indptr))
        T = theta_t[C.indices]  # (events, k); a per-item scale cancels in the update
        w = W[a:b]
        for _ in range(int(n_iter)):
            mix = np.einsum("ij,ij->i", w[rows], T)
            ratio = sp.csr_matrix((C.data / np.maximum(mix, 1e-300), C.indices, C.indptr), shape=C.shape)
            new = w * np.asarray(ratio @ theta_t)  # E[events of u from g] = w_ug sum_i x_ui theta_gi / mix_ui
            s = new.sum(axis=1, keepdims=True)
            new = np.where(s > 0, new / np.where(s > 0, s, 1.0), 1.0 / k)
            done = np.abs(new - w).max() <= tol
            w = new
            if done:
                break
        W[a:b] = w
    return W


def heldout_k_curve(
    Z: np.ndarray,
    X: Any,
    k_range: Any,
    *,
    holdout: float = 0.2,
    fit_size: int = 20_000,
    n_init: int = 3,
    alpha: float = 1.0,
    binary: bool = True,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[int, Any]:
    """Choose the number of groups by held-out likelihood, with the one-standard-error rule.

    A share ``holdout`` of every user's items (users with at least two) is
    held out. For each ``k``, spherical K-means on the embeddings ``Z`` starts
    a :class:`MultinomialMixture` fitted on the remaining items, and the
    held-out items are scored by each user's predictive distribution
    ``sum_g p(g | kept items) theta_g``. More groups fit the kept items
    better, but only groups that exist predict items a user has not shown:
    the held-out log-likelihood rises while real groups are being split
    apart and flattens after. The chosen ``k`` is the smallest whose
    held-out log-likelihood is within one standard error (over users) of the
    best (Hastie, Tibshirani and Friedman, *The Elements of Statistical
    Learning*, 2nd ed., sec. 7.10: the one-standard-error rule).

    Parameters
    ----------
    Z : ndarray of shape (n_users, d)
        User embeddings (the K-means starts).
    X : sparse matrix of shape (n_users, n_items)
        The interactions.
    k_range : sequence of int
    holdout : float, default 0.2
    fit_size : int, default 20000
        Users sampled for the search (the cost is bounded by the sample).
    n_init : int, default 3
        K-means restarts per ``k``.
    alpha, binary :
        The mixture's settings (:class:`MultinomialMixture`).
    random_state : int, RandomState or None

    Returns
    -------
    best_k : int
    curve : pandas.DataFrame
        ``k, heldout_loglik`` (mean per held-out item), ``se`` (its standard
        error relative to the best ``k``), ``train_loglik``.
    """
    from cohortrec.cluster._kmeans import KMeans  # noqa: PLC0415

    check_float(holdout, "holdout", minimum=0.0, maximum=0.9, min_inclusive=False)
    check_int(fit_size, "fit_size", minimum=2)
    rs = check_random_state(random_state)
    M = MultinomialMixture(binary=binary)._counts_of(X)
    n = M.shape[0]
    Z = np.asarray(Z)
    if Z.shape[0] != n:
        raise ValueError(f"Z has {Z.shape[0]} rows and X {n}: one row per user in both")
    ks = sorted({int(k) for k in k_range})
    rows = np.sort(rs.choice(n, fit_size, replace=False)) if n > fit_size else np.arange(n)
    ks = [k for k in ks if 2 <= k < len(rows)]
    if not ks:
        raise ValueError(f"k_range must hold integers in [2, {len(rows)}), got {list(k_range)!r}")
    Ms, Zs = M[rows], Z[rows]
    train, test = _holdout_split(Ms, holdout, rs, "the number of groups")
    scores = []
    out = []
    for k in ks:
        with warnings.catch_warnings():  # "fewer distinct clusters than k" is what the curve measures, not news
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(k, spherical=True, n_init=n_init, random_state=rs.randint(2**31 - 1)).fit(Zs)
        mm = MultinomialMixture(k, alpha=alpha, binary=binary).fit(train, init=np.asarray(km.labels_))
        scores.append(_heldout_scores(mm, train, test))
        out.append({"k": k, "train_loglik": mm.log_likelihood_})
    first, curve = _first_within_one_se(scores, test, out)
    return int(curve.loc[first, "k"]), curve


def heldout_prior_choice(
    X: Any,
    init: Any,
    n_components: int,
    item_categories: Any,
    *,
    alphas: Any = (3.0, 10.0),
    background_alpha: float = 1.0,
    holdout: float = 0.2,
    fit_size: int = 20_000,
    binary: bool = True,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[float | None, Any]:
    """Choose the mixture's prior, over the background or over item categories, by held-out likelihood.

    The candidates, in this order: the prior centred on the overall item
    distribution with strength ``background_alpha``, then the prior centred
    on each group's profile over ``item_categories`` with each strength of
    ``alphas`` (see :class:`MultinomialMixture`). A share ``holdout`` of every
    user's items is held out, a mixture of each kind is fitted on the rest
    from the same start ``init``, and the held-out items are scored by each
    user's predictive distribution, as :func:`heldout_k_curve` does. The
    first candidate within one standard error of the best is chosen, so the
    categories are used only where they predict events the users have not
    shown better than the background does (where tastes are not over
    categories, a strong prior towards uninformative categories would only
    blur the groups).

    Parameters
    ----------
    X : sparse matrix of shape (n_users, n_items)
    init : array of int, shape (n_users,)
        Initial group of every user (the K-means labels the mixture starts from).
    n_components : int
    item_categories : sparse matrix or array of shape (n_items, n_categories)
    alphas : sequence of float, default (3.0, 10.0)
        Strengths of the category-centred prior to try.
    background_alpha : float, default 1.0
    holdout : float, default 0.2
    fit_size : int, default 20000
        Users sampled for the choice (the cost is bounded by the sample).
    binary : bool, default True
    random_state : int, RandomState or None

    Returns
    -------
    alpha : float or None
        The chosen strength of the category-centred prior, or None for the
        background prior.
    curve : pandas.DataFrame
        ``prior`` (``"background"`` or ``"categories"``), ``alpha``,
        ``heldout_loglik`` (mean per held-out item), ``train_loglik``, ``se``
        (the standard error of the difference to the best).
    """
    check_float(holdout, "holdout", minimum=0.0, maximum=0.9, min_inclusive=False)
    check_int(fit_size, "fit_size", minimum=2)
    k = check_int(n_components, "n_components", minimum=1)
    rs = check_random_state(random_state)
    M = MultinomialMixture(binary=binary)._counts_of(X)
    n = M.shape[0]
    labels = _check_init(init, n)
    A = _category_matrix(item_categories, M.shape[1])
    cands = [("background", float(background_alpha))] + [("categories", float(a)) for a in alphas]
    for _, a in cands:
        check_float(a, "alphas", minimum=0.0, min_inclusive=False)
    rows = np.sort(rs.choice(n, fit_size, replace=False)) if n > fit_size else np.arange(n)
    train, test = _holdout_split(M[rows], holdout, rs, "the mixture's prior")
    scores = []
    out = []
    for kind, a in cands:
        mm = MultinomialMixture(k, alpha=a, binary=binary).fit(
            train, init=labels[rows], item_categories=A if kind == "categories" else None)
        scores.append(_heldout_scores(mm, train, test))
        out.append({"prior": kind, "alpha": a, "train_loglik": mm.log_likelihood_})
    first, curve = _first_within_one_se(scores, test, out)
    return (None if curve.loc[first, "prior"] == "background" else float(curve.loc[first, "alpha"])), curve


def _holdout_split(M: sp.csr_matrix, holdout: float, rs: np.random.RandomState,
                   what: str) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(kept, held-out) entries: a share ``holdout`` of every user's items, users with two or more only."""
    lengths = np.diff(M.indptr)
    held = rs.rand(M.nnz) < holdout
    # every user keeps at least one item: the first of each row is never held out
    held[M.indptr[:-1][lengths > 0]] = False
    held[np.repeat(lengths < 2, lengths)] = False
    train = M.copy()
    train.data = np.where(held, 0.0, train.data)
    train.eliminate_zeros()
    test = M.copy()
    test.data = np.where(held, test.data, 0.0)
    test.eliminate_zeros()
    if test.nnz == 0:
        raise ValueError(f"no user has two or more items: there is nothing to hold out to choose {what} by "
                         "held-out likelihood")
    return train, test


def _heldout_scores(mm: MultinomialMixture, train: sp.csr_matrix, test: sp.csr_matrix) -> np.ndarray:
    """Every user's held-out log-likelihood: ``log sum_g p(g | kept) prod_i theta_gi`` over the held-out items."""
    post = mm.predict_proba(train)  # (users, k)
    lt = np.asarray(test @ mm.log_theta_.T) + np.log(np.maximum(post, 1e-300))
    s_u = logsumexp(lt, axis=1)
    s_u[np.diff(test.indptr) == 0] = 0.0
    return s_u


def _first_within_one_se(scores: list[np.ndarray], test: sp.csr_matrix, rows: list[dict]) -> tuple[int, Any]:
    """(index of the first candidate within one standard error of the best, the curve as a DataFrame).

    The standard error is that of the summed per-user difference to the best
    candidate, per held-out item (Hastie, Tibshirani and Friedman, *The
    Elements of Statistical Learning*, 2nd ed., sec. 7.10: the
    one-standard-error rule).
    """
    import pandas as pd  # noqa: PLC0415

    n_test = float(test.sum())
    S = np.vstack(scores)
    best = int(np.argmax(S.sum(axis=1)))
    diff = S - S[best]
    se = np.sqrt(S.shape[1]) * diff.std(axis=1) / n_test
    curve = pd.DataFrame(rows)
    curve.insert(int(curve.columns.get_loc("train_loglik")), "heldout_loglik", S.sum(axis=1) / n_test)
    curve["se"] = se
    ok = diff.sum(axis=1) / n_test >= -se  # within one standard error of the best (the best itself: 0 >= 0)
    return int(np.flatnonzero(ok)[0]), curve
