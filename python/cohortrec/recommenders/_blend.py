"""Blend: a weighted ensemble of recommenders, weights chosen on a validation split."""

from __future__ import annotations

import io
import numbers
import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from cohortrec._errors import NotFittedError
from cohortrec._validation import as_generator, check_float, check_int
from cohortrec.ops import blend_server, blend_topn_row, merge_topn
from cohortrec.recommenders._base import (
    _STATE_VERSION,
    RecommenderBase,
    RecommenderWarning,
    check_user_items,
    dense_topn,
    load_model,
)

__all__ = ["Blend"]

#: weights tried for one member at a time by the coordinate search
DEFAULT_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)


def _clone(model: Any) -> Any:
    """A new unfitted model with the same parameters (cohortrec or scikit-learn style)."""
    if not hasattr(model, "get_params"):
        raise TypeError(f"cannot clone a {type(model).__name__} (no get_params): pass fitted models "
                        "with prefit=True instead")
    if isinstance(model, Blend):  # its get_params (JSON-serialisable, as saved) leaves out the members
        return type(model)(model.models, **model.get_params())
    return type(model)(**model.get_params())


def _normalise(ids: np.ndarray, scores: np.ndarray, how: str, n_candidates: int) -> np.ndarray:
    """Per-user normalised candidate values in [1 / n_candidates, 1] (0 for -1 padding).

    ``rank``: ``1 - rank / n_candidates`` (Borda count), the best candidate 1.
    ``score``: the member's scores mapped linearly from [worst listed, best]
    to [1 / n_candidates, 1] per user (all 1 when they are equal), so the
    gaps between scores count, not only their order.

    The masks are skipped where every entry is listed and every span is
    positive (the common case; the same float64 operations either way). The
    one-user path normalises in native code (:func:`cohortrec.ops.merge_topn`,
    the same operations, so the same bits).
    """
    valid = ids >= 0
    if how == "rank":
        vals = 1.0 - np.arange(ids.shape[1], dtype=np.float64)[None, :] / n_candidates
        return np.where(valid, vals, 0.0)
    floor = 1.0 / n_candidates
    every = bool(valid.all())
    s = scores.astype(np.float64) if every else np.where(valid, scores.astype(np.float64), 0.0)
    if s.shape[1] == 0:
        hi = lo = s[:, :0]
    elif every:
        hi, lo = s.max(axis=1, keepdims=True), s.min(axis=1, keepdims=True)
    else:
        hi = np.max(np.where(valid, s, -np.inf), axis=1, keepdims=True)
        lo = np.min(np.where(valid, s, np.inf), axis=1, keepdims=True)
    span = hi - lo
    ok = np.isfinite(span) & (span > 0)
    if ok.all():
        frac = (s - lo) / span
    else:
        frac = np.where(ok, (s - np.where(ok, lo, 0.0)) / np.where(ok, span, 1.0), 1.0)
    out = floor + (1.0 - floor) * frac
    return out if every else np.where(valid, out, 0.0)


class _Candidates:
    """Every member's top candidates for a set of users, merged per user.

    ``items[u, p]`` is the p-th distinct candidate of user u (-1 padding) and
    ``values[u, p, m]`` member m's normalised value for it (0 if m did not
    list it); the blend score of a weight vector w is ``values @ w``.
    """

    def __init__(self, lists: list[tuple[np.ndarray, np.ndarray]], how: str, n_candidates: int):
        n_users = lists[0][0].shape[0]
        cat_ids = np.concatenate([np.asarray(i, dtype=np.int64) for i, _ in lists], axis=1)
        cat_vals = np.concatenate([_normalise(np.asarray(i), np.asarray(s), how, n_candidates)
                                   for i, s in lists], axis=1)
        member = np.concatenate([np.full(np.asarray(i).shape[1], m) for m, (i, _) in enumerate(lists)])
        big = np.iinfo(np.int64).max
        key = np.where(cat_ids >= 0, cat_ids, big)
        order = np.argsort(key, axis=1, kind="stable")
        skey = np.take_along_axis(key, order, axis=1)
        first = np.ones_like(skey, dtype=bool)
        first[:, 1:] = skey[:, 1:] != skey[:, :-1]
        first &= skey != big
        pos = np.cumsum(first, axis=1) - 1  # union position of every sorted entry
        width = int(first.sum(axis=1).max()) if n_users and first.size else 0
        self.items = np.full((n_users, width), -1, dtype=np.int64)
        self.values = np.zeros((n_users, width, len(lists)), dtype=np.float64)
        r, c = np.nonzero(skey != big)
        self.items[r, pos[r, c]] = skey[r, c]
        self.values[r, pos[r, c], member[order[r, c]]] = np.take_along_axis(cat_vals, order, axis=1)[r, c]

    def scores(self, w: np.ndarray) -> np.ndarray:
        """Blend scores for weights w (normalised to sum 1), summed member by
        member in the same order and precision as :meth:`Blend.recommend`."""
        wn = w / w.sum()
        s = np.zeros(self.items.shape)
        for m in np.flatnonzero(wn > 0):
            s += self.values[:, :, m] * wn[m]
        s[self.items < 0] = -np.inf
        return s


def _ndcg_at_k(cands: _Candidates, w: np.ndarray, relevant: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k (binary gain, ideal over min(k, |relevant|)) of the blended lists."""
    s = cands.scores(w)
    # a candidate with no positive weight behind it is not recommended (score 0)
    s[s <= 0] = -np.inf
    width = s.shape[1]
    kk = min(k, width)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    if kk == 0:
        return np.zeros(len(n_rel))
    # best kk by score, ties by smaller item id as recommend does: the
    # candidates are stored in increasing item order, so a stable sort of
    # the negated scores breaks ties the same way
    top = np.argsort(-s, axis=1, kind="stable")[:, :kk]
    ok = np.isfinite(np.take_along_axis(s, top, axis=1))
    gains = np.take_along_axis(relevant, top, axis=1) & ok
    dcg = (gains * disc[:kk]).sum(axis=1)
    idcg = np.cumsum(disc)[np.minimum(n_rel, k) - 1]
    return dcg / idcg


def _coordinate_ascent(per_user: Any, M: int, grid: np.ndarray, z: float) -> tuple[np.ndarray, float, np.ndarray]:
    """Weights of M members by coordinate ascent of ``per_user(w).mean()`` (see :class:`Blend`): from the best
    single member, a weight change is kept when its mean per-user gain exceeds z standard errors.

    Returns the weights (not normalised), their mean score and every member's mean score alone."""
    single_pu = [per_user(np.eye(M)[m]) for m in range(M)]
    single = np.array([float(v.mean()) for v in single_pu])
    first = int(np.argmax(single))
    w, cur = np.eye(M)[first], single_pu[first]
    for _ in range(4):  # rounds of coordinate ascent
        changed = False
        for m in range(M):
            for g in grid:
                if g == w[m]:
                    continue
                trial = w.copy()
                trial[m] = g
                if trial.sum() <= 0:
                    continue
                v = per_user(trial)
                d = v - cur
                se = float(d.std(ddof=1)) / np.sqrt(d.size) if d.size > 1 else 0.0
                if float(d.mean()) > z * se + 1e-12:
                    w, cur, changed = trial, v, True
        if not changed:
            break
    return w, float(cur.mean()), single


class Blend(RecommenderBase):
    """Weighted ensemble of recommenders, with weights chosen on a validation split.

    Every member ranks its ``n_candidates`` best items for the user (with the
    same filters as the call); each list is normalised per user (by rank or
    by score, see ``normalize``) and the blend score of an item is
    ``sum_m weights[m] * value_m(item)`` (0 for a member that did not list
    it). Items no weighted member lists are not recommended; ``filter_items``
    and ``items`` remove items from the blended list (the members' lists
    are not recomputed), so the remaining items keep their order and a
    restriction to a few items may leave fewer than ``N``.

    Weights are chosen by coordinate ascent of NDCG@``k`` on a validation
    split: starting from the best single member (weight 1), each member's
    weight is tried over ``weight_grid`` with the others fixed, for a few
    rounds. A change is kept only when it raises the validation NDCG by more
    than ``min_gain_se`` standard errors of the per-user paired difference
    (the one-standard-error rule of model selection: Breiman et al. 1984;
    Hastie, Tibshirani & Friedman, *Elements of Statistical Learning*,
    section 7.10) -- so a member that does not help keeps weight 0, the blend
    is never worse *on validation* than its best member, and gains within
    the validation split's noise are not taken.

    Without a ``validation`` matrix, :meth:`fit` validates by cross-fitting
    (``cv`` folds of users, see below): every user's validation lists come
    from members fit on all interactions except those of their fold's
    users, so the weights are chosen for members fit on nearly as much data
    as the final ones. A single holdout (``cv=1``) fits them on 80%, and a
    model that gains more from more data than the others is then
    under-weighted: on ml-latest-small and Last.fm ALS leads EASE on such a
    split and EASE leads on test.

    Parameters
    ----------
    models : list of recommenders
        Anything with implicit's ``recommend`` API (cohortrec models,
        implicit models). With ``prefit=False`` (default) they are templates:
        Blend fits clones (``type(m)(**m.get_params())``) and never modifies
        them. With ``prefit=True`` they are used as they are and must have
        been fitted on the ``user_items`` given to :meth:`fit`.
    weights : sequence of float, optional
        Fixed non-negative weights (no search).
    normalize : {"auto", "rank", "score"}, default "auto"
        ``"rank"``: value ``1 - rank / n_candidates`` (Borda count).
        ``"score"``: per-user min-max of the member's scores over its list.
        ``"auto"``: the weights are searched with both on the same
        validation lists and the one with the higher validation NDCG is kept
        (``"rank"`` on ties and with fixed ``weights``); no extra fits.
    n_candidates : int, default 100
        Items each member lists per user (``N`` when a call asks for more).
    k : int, default 10
        Cut-off of the NDCG maximised by the weight search.
    validation_fraction : float, default 0.2
        Share of every user's interactions held out by :meth:`fit` to
        choose the weights when no ``validation`` matrix is given
        (``cohortrec.evaluation.random_holdout``); the members are then
        refit on all of ``user_items``.
    cv : int, default 5
        Folds of users for choosing the weights when no ``validation``
        matrix is given (cross-fitting). The users are dealt into ``cv``
        folds; for each fold the members are fit on everything except the
        fold users' held-out interactions and list candidates for those
        users, and the weights are searched once on all users' lists. Each
        member is then fit ``cv`` times on ``1 - validation_fraction / cv``
        of the interactions, close to the final refit on all of them. With
        ``cv=1`` every user holds out at once and the members are fit on
        ``1 - validation_fraction``: models that gain more from more data
        (EASE more than ALS on ml-latest-small) are then under-weighted.
        With ``bench_recommenders.py``'s tuned members the Blend's test
        NDCG@10 against EASE went from -2.0% (weights from single holdouts)
        to +1.2% with ``cv=5`` on ml-latest-small, and from +2.2% to +2.6%
        on Last.fm (``benchmarks/results/recommenders-2026-12-06-*-crossfit.md``).
        The cost is ``cv`` fits of every member instead of one.
    weight_grid : sequence of float, optional
        Weights tried per member (default 0 ... 5).
    min_gain_se : float, default 1.0
        Smallest gain of a kept weight change, in standard errors of the
        per-user paired NDCG difference on validation (0: any strict gain).
        Chosen by the worse of two data sets (``bench_recommenders.py``'s
        members, weights from single holdouts before ``cv`` existed):
        ml-latest-small test NDCG@10 against EASE went
        from -1.7% (0) to +1.0% (1 and 2; 0.0% with 3), Last.fm from +2.7%
        (0) to +2.9% (1; +2.6% with 2 and 3). A small validation split
        (ml-latest-small's 603 users) otherwise picks weights that fit its
        noise.
    prefit : bool, default False
    random_state : int or None
        Seed of the validation split.
    device, n_threads, batch_size
        See :class:`~cohortrec.recommenders.RecommenderBase`; ``batch_size``
        defaults to 512 (the blend keeps a dense batch x items score
        matrix).

    Attributes
    ----------
    models_ : list
        The fitted members used to recommend.
    weights_ : ndarray of float64
        The weights (summing to 1).
    validation_ndcg_ : float or None
        NDCG@k of the blend on the validation split (None with fixed weights).
    member_validation_ndcg_ : ndarray or None
        NDCG@k of every member alone on the validation split.
    normalize_ : str
        The normalisation used (``normalize``, or the one chosen by
        ``"auto"``).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from cohortrec.recommenders import EASE, Blend, ItemKNN
    >>> X = sp.random(200, 40, density=0.2, format="csr", random_state=0, dtype="float32")
    >>> X.data[:] = 1
    >>> blend = Blend([EASE(l2=10.0), ItemKNN(k=20)], random_state=0).fit(X)
    >>> blend.weights_.shape
    (2,)
    """

    _param_names: ClassVar[tuple[str, ...]] = (
        "weights", "normalize", "n_candidates", "k", "validation_fraction", "weight_grid", "prefit",
        "random_state", "min_gain_se", "cv")
    _state_names: ClassVar[tuple[str, ...]] = ("user_items_", "weights_", "members_bytes_",
                                               "members_offsets_")

    def __init__(self, models: list[Any] | None = None, weights: Any | None = None, normalize: str = "auto",
                 n_candidates: int = 100, k: int = 10, validation_fraction: float = 0.2,
                 weight_grid: Any | None = None, prefit: bool = False, random_state: int | None = None, *,
                 min_gain_se: float = 1.0, cv: int = 5, device: str = "auto", n_threads: int | None = None,
                 batch_size: int = 512) -> None:
        super().__init__(device=device, n_threads=n_threads, batch_size=batch_size)
        self.models = models
        self.weights = weights
        self.normalize = normalize
        self.n_candidates = n_candidates
        self.k = k
        self.validation_fraction = validation_fraction
        self.weight_grid = weight_grid
        self.prefit = prefit
        self.random_state = random_state
        self.min_gain_se = min_gain_se
        self.cv = cv

    # -- fit ----------------------------------------------------------------
    def fit(self, user_items: Any, show_progress: bool = False, *, validation: Any | None = None) -> Blend:
        """Fit the members (unless ``prefit``) and choose the weights.

        Parameters
        ----------
        user_items : scipy.sparse.csr_matrix, shape (n_users, n_items)
        show_progress : bool, default False
            Accepted for compatibility with implicit; unused.
        validation : scipy.sparse matrix, optional
            Held-out interactions (same shape, disjoint from ``user_items``)
            on which the weights are chosen; the members are then fit on
            ``user_items`` only. Without it (and without fixed ``weights``)
            a ``validation_fraction`` split of ``user_items`` is used.

        Returns
        -------
        self
        """
        self._validation_arg = validation
        try:
            return super().fit(user_items, show_progress)  # type: ignore[return-value]
        finally:
            self._validation_arg = None

    def _check_params(self) -> tuple[list[Any], str, int, int, np.ndarray]:
        models = self.models
        if models is None or isinstance(models, (str, bytes)) or len(list(models)) == 0:
            raise ValueError("models must be a non-empty list of recommenders")
        models = list(models)
        for i, m in enumerate(models):
            if not hasattr(m, "recommend"):
                raise TypeError(f"models[{i}] ({type(m).__name__}) has no recommend method")
        if self.normalize not in ("rank", "score", "auto"):
            raise ValueError(f"normalize must be 'rank', 'score' or 'auto', got {self.normalize!r}")
        n_cand = check_int(self.n_candidates, "n_candidates", minimum=1)
        k = check_int(self.k, "k", minimum=1)
        grid = np.asarray(DEFAULT_GRID if self.weight_grid is None else self.weight_grid, dtype=np.float64)
        if grid.ndim != 1 or grid.size == 0 or not np.isfinite(grid).all() or (grid < 0).any():
            raise ValueError("weight_grid must be a non-empty list of finite weights >= 0")
        check_float(self.min_gain_se, "min_gain_se", minimum=0.0)
        check_int(self.cv, "cv", minimum=1)
        return models, self.normalize, n_cand, k, grid

    def _check_weights(self, n: int) -> np.ndarray | None:
        if self.weights is None:
            return None
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"weights must hold one weight per model ({n}), got shape {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be finite, >= 0 and not all 0")
        return w / w.sum()

    def _fit_members(self, templates: list[Any], X: sp.csr_matrix) -> list[Any]:
        out = []
        for m in templates:
            c = _clone(m)
            c.fit(X)
            out.append(c)
        return out

    def _fit(self, X: sp.csr_matrix) -> None:
        models, how, n_cand, k, grid = self._check_params()
        validation = getattr(self, "_validation_arg", None)
        fixed = self._check_weights(len(models))
        self.validation_ndcg_ = None
        self.member_validation_ndcg_ = None
        self.normalize_ = "rank" if how == "auto" else how  # the weight search sets it from "auto"
        if self.prefit:
            members = models
            if fixed is None:
                if validation is None:
                    raise ValueError("prefit=True needs fixed weights or a validation matrix to choose them")
                fixed = self._search(members, X, self._check_validation(validation, X), how, n_cand, k, grid)
        elif fixed is not None:
            members = self._fit_members(models, X)
        elif validation is not None:
            members = self._fit_members(models, X)
            fixed = self._search(members, X, self._check_validation(validation, X), how, n_cand, k, grid)
        else:
            from cohortrec.evaluation import random_holdout  # same floor; no import cycle

            frac = float(self.validation_fraction)
            if not 0.0 < frac < 1.0:
                raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction!r}")
            rng = as_generator(self.random_state)
            train, val = random_holdout(X, frac, min_items=2, random_state=rng)
            fixed = self._cross_fitted_search(models, train, val, rng, how, n_cand, k, grid)
            members = self._fit_members(models, X)
        self.models_ = members
        self.weights_ = fixed
        self.members_bytes_ = None
        self.members_offsets_ = None

    def _check_validation(self, validation: Any, X: sp.csr_matrix) -> sp.csr_matrix:
        V = check_user_items(validation, "validation", n_items=X.shape[1], stacklevel=5)
        if V.shape != X.shape:
            raise ValueError(f"validation must have the shape of user_items {X.shape}, got {V.shape}")
        return V

    def _member_lists(self, members: list[Any], users: np.ndarray | int, rows: sp.csr_matrix, n: int,
                      filter_liked: bool = True,
                      recalculate: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every member's top-n (ids, float64 scores) for ``users`` (an array, or one id: then each member's
        own one-user path, whose lists hold only the items found), non-finite scores as id -1."""
        n_users = 1 if np.ndim(users) == 0 else len(users)
        out = []
        for m in members:
            ids, sc = m.recommend(users, rows, N=n, filter_already_liked_items=filter_liked,
                                  recalculate_user=recalculate)
            ids = np.asarray(ids)
            sc = np.asarray(sc, dtype=np.float64)
            if ids.ndim == 1:
                ids, sc = ids[None, :], sc[None, :]
            if ids.shape[0] != n_users:
                raise ValueError(f"{type(m).__name__}.recommend returned {ids.shape[0]} rows for "
                                 f"{n_users} users")
            sc = np.where(np.isfinite(sc), sc, np.nan)
            ids = np.where(np.isnan(sc), -1, ids)
            out.append((ids.astype(np.int64), sc))
        return out

    def _validation_lists(self, members: list[Any], X: sp.csr_matrix, V: sp.csr_matrix, n: int,
                          users: np.ndarray | None = None) -> tuple[list[tuple[np.ndarray, np.ndarray]], sp.csr_matrix]:
        """Every member's top-n lists (fit on X) for the users with validation interactions (among
        ``users``), and those users' rows of V."""
        has = np.diff(V.indptr) > 0
        users = np.flatnonzero(has) if users is None else users[has[users]]
        lists = self._member_lists(members, users, X[users], n) if len(users) else []
        return lists, V[users]

    def _search(self, members: list[Any], X: sp.csr_matrix, V: sp.csr_matrix, how: str, n_cand: int, k: int,
                grid: np.ndarray) -> np.ndarray:
        n = min(n_cand, X.shape[1])
        lists, Vu = self._validation_lists(members, X, V, n) if n else ([], V[:0])
        return self._search_lists(lists, Vu, len(members), X.shape[1], how, n, k, grid)

    def _cross_fitted_search(self, models: list[Any], train: sp.csr_matrix, val: sp.csr_matrix,
                             rng: np.random.Generator, how: str, n_cand: int, k: int, grid: np.ndarray) -> np.ndarray:
        """Weights searched on every user's validation lists, the members fit once per fold of users on all
        interactions except that fold's held-out ones (``cv`` folds; 1: all users at once)."""
        folds = int(self.cv)
        n_users, n_items = train.shape
        n = min(n_cand, n_items)
        fold_of = rng.permutation(n_users) % folds  # balanced folds
        val_rows = np.repeat(np.arange(n_users), np.diff(val.indptr))
        has_val = np.diff(val.indptr) > 0
        parts: list[list[tuple[np.ndarray, np.ndarray]]] = []
        v_rows = []
        # only the folds holding validation users are fit (cv may exceed the number of users)
        for f in np.unique(fold_of[has_val]) if n else []:
            in_fold = fold_of == f
            users = np.flatnonzero(in_fold & has_val)
            fit_on = train
            if folds > 1:  # the other folds' users keep their held-out interactions (train and val are disjoint)
                keep = ~in_fold[val_rows]
                counts = np.bincount(val_rows[keep], minlength=n_users)
                others = sp.csr_matrix((val.data[keep], val.indices[keep], np.concatenate([[0], np.cumsum(counts)])),
                                       shape=val.shape)
                fit_on = (train + others).tocsr().astype(train.dtype)
                fit_on.sort_indices()
            lists, Vu = self._validation_lists(self._fit_members(models, fit_on), fit_on, val, n, users)
            parts.append(lists)
            v_rows.append(Vu)
        if not parts:
            return self._search_lists([], val[:0], len(models), n_items, how, n, k, grid)
        lists = []
        for m in range(len(models)):  # a member may list fewer than n items for some fold: pad with -1 / NaN
            width = max(p[m][0].shape[1] for p in parts)
            lists.append((np.concatenate([np.pad(p[m][0], ((0, 0), (0, width - p[m][0].shape[1])), constant_values=-1)
                                          for p in parts]),
                          np.concatenate([np.pad(p[m][1], ((0, 0), (0, width - p[m][1].shape[1])),
                                                 constant_values=np.nan) for p in parts])))
        return self._search_lists(lists, sp.vstack(v_rows, format="csr"), len(models), n_items, how, n, k, grid)

    def _search_lists(self, lists: list[tuple[np.ndarray, np.ndarray]], Vu: sp.csr_matrix, M: int, n_items: int,
                      how: str, n: int, k: int, grid: np.ndarray) -> np.ndarray:
        """Coordinate ascent of the weights on the members' lists for the rows of Vu."""
        if Vu.shape[0] == 0 or n_items == 0:
            warnings.warn("the validation split holds no interactions: the members get equal weights",
                          RecommenderWarning, stacklevel=6)
            return np.full(M, 1.0 / M)
        rows = np.arange(Vu.shape[0], dtype=np.int64)
        keys_v = np.repeat(rows, np.diff(Vu.indptr)) * n_items + Vu.indices
        n_rel = np.diff(Vu.indptr)
        z = float(self.min_gain_se)
        best = None
        for norm in (("rank", "score") if how == "auto" else (how,)):  # "auto": the better one, rank on ties
            cands = _Candidates(lists, norm, n)
            relevant = np.isin(rows[:, None] * n_items + cands.items, keys_v) & (cands.items >= 0)
            found = _coordinate_ascent(lambda w, c=cands, r=relevant: _ndcg_at_k(c, w, r, n_rel, k), M, grid, z)
            if best is None or found[1] > best[1][1]:
                best = (norm, found)
        self.normalize_, (w, self.validation_ndcg_, self.member_validation_ndcg_) = best
        return w / w.sum()

    # -- recommend ----------------------------------------------------------
    def _check_fitted(self) -> None:
        super()._check_fitted()
        if getattr(self, "models_", None) is None:
            raise NotFittedError("this Blend is not fitted yet: call fit(user_items) first")

    def _topn(self, userids, rows, n, exclude, keep, recalculate):
        self._check_device_dense("recommend")
        _, _, n_cand, _, _ = self._check_params()
        how = self._normalisation()
        n_items = rows.shape[1]
        # the members rank all items; filter_items / items only remove items
        # from the blended list, so the other items keep their order
        width = min(max(n_cand, n), n_items)
        active = np.flatnonzero(self.weights_ > 0)
        lists = self._member_lists([self.models_[m] for m in active], userids, rows, width,
                                   filter_liked=exclude is not None, recalculate=recalculate)
        scores = np.zeros((len(userids), n_items), dtype=np.float64)
        r = np.broadcast_to(np.arange(len(userids))[:, None], (len(userids), width))
        for (ids, sc), m in zip(lists, active):
            vals = _normalise(ids, sc, how, width) * self.weights_[m]
            ok = ids >= 0
            scores[r[:, :ids.shape[1]][ok], ids[ok]] += vals[ok]  # a member lists an item once per user
        scores[scores <= 0] = -np.inf
        ids, sc = dense_topn(scores, n, exclude, keep, n_threads=self.n_threads)  # float64: exact ties
        return ids, sc.astype(np.float32)

    def _normalisation(self) -> str:
        """The normalisation the fitted blend uses: ``normalize_`` (``normalize`` for files saved before it
        existed)."""
        return getattr(self, "normalize_", None) or self.normalize

    def _row_server(self) -> Any | None:
        """The blend bound for one-user requests (:func:`cohortrec.ops.blend_server`), or None.

        What ``recommend(u)`` calls first, as for a single model: the members' row servers and the merge
        in one native call. None where a weighted member has no row server (an implicit model, a nested
        Blend), before fit and with ``device="cuda"``; :meth:`_topn_one` then serves. Rebuilt when the
        blend's state changes (its attribute count, as for a single model) or when a weighted member's
        own server does (a member refit or partially fit), so a request never reads a stale member.
        """
        d = self.__dict__
        version = d.get(_STATE_VERSION, 0)
        hit = d.get("_blend_server_hit")
        if hit is not None and hit[0] == version and all(m._row_server() is s for m, s in zip(hit[1], hit[2])):
            return hit[3]
        srv, members, servers = None, [], []
        how = self._normalisation()
        n_cand = self.n_candidates
        if (d.get("models_") is not None and d.get("user_items_") is not None and self.device != "cuda"
                and how in ("rank", "score") and isinstance(n_cand, numbers.Integral)
                and not isinstance(n_cand, bool) and n_cand >= 1):
            active = np.flatnonzero(self.weights_ > 0)
            members = [self.models_[a] for a in active]
            if members and all(isinstance(m, RecommenderBase) for m in members):
                servers = [m._row_server() for m in members]
                if all(s is not None for s in servers):
                    srv = blend_server(servers, self.weights_[active], how=how, n_candidates=int(n_cand),
                                       E=self.user_items_, n_items=self.n_items_)
        d["_blend_server_hit"] = (version, members, servers, srv)  # not an attribute assignment: no new version
        return srv

    def _topn_one(self, userid: int, idx: np.ndarray, val: np.ndarray, n: int, exclude: np.ndarray | None,
                  keep: np.ndarray | None, recalculate: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """One user: each member's own one-user path, and the blend of their lists merged sparsely.

        The batch path (:meth:`_topn`) asks every member for a batch of one and adds the normalised
        lists into a dense row of all items (milliseconds per request); here the members answer on
        their per-request paths and only the listed items are added up. Same sums in the same order
        (member by member, float64), same ties (smaller item id), so the same lists as :meth:`_topn`.
        """
        if recalculate:
            return None
        self._check_device_dense("recommend")
        m_items = self.n_items_
        width = min(max(check_int(self.n_candidates, "n_candidates", minimum=1), n), m_items)
        how = self._normalisation()
        val = val.astype(np.float32, copy=False)
        indptr = np.array([0, idx.size], dtype=np.int64)
        flt = exclude is not None
        active = np.flatnonzero(self.weights_ > 0)
        # cohortrec members' bound row servers are what member.recommend(userid, row) calls first (the same
        # answer); with one for every weighted member, the lists and their merge are one native call
        servers = [m._row_server() if isinstance(m, RecommenderBase) else None
                   for m in (self.models_[a] for a in active)]
        if active.size and all(srv is not None for srv in servers):
            out = blend_topn_row(servers, self.weights_[active], how=how, width=width, user=userid,
                                 indptr=indptr, indices=idx, data=val, n_items=m_items, n=n, filter=flt, keep=keep)
            if out is not None:
                return out
        row = None
        ids_parts, sc_parts = [], []
        for a, srv in zip(active, servers):
            member = self.models_[a]
            out = None if srv is None else srv.topn_row(userid, indptr, idx, val, 1, m_items, width, flt)
            if out is None:
                if row is None:
                    row = sp.csr_matrix((val, idx, indptr), shape=(1, m_items))
                (ids_m, sc_m), = self._member_lists([member], userid, row, width, filter_liked=flt)
                out = ids_m[0], sc_m[0]
            ids_parts.append(out[0])
            sc_parts.append(out[1])
        # normalised, weighted and added up over the listed items in native code, the GIL released: the
        # same float64 operations in the same order as _topn (ties to the smaller id), so the same lists
        return merge_topn(ids_parts, sc_parts, self.weights_[active], how=how, width=width, n=n,
                          n_items=m_items, exclude=exclude, keep=keep)

    # -- persistence --------------------------------------------------------
    def save(self, file: Any) -> None:
        """Save the blend and its members in one ``.npz`` file (no pickle).

        Every member must be a cohortrec model (saved with its own
        :meth:`~cohortrec.recommenders.RecommenderBase.save`).
        """
        self._check_fitted()
        blobs = []
        for i, m in enumerate(self.models_):
            if not isinstance(m, RecommenderBase):
                raise TypeError(f"member {i} ({type(m).__name__}) is not a cohortrec model: it cannot be "
                                "saved with the blend")
            buf = io.BytesIO()
            m.save(buf)
            blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
        self.members_offsets_ = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        self.members_bytes_ = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)
        try:
            super().save(file)
        finally:
            self.members_bytes_ = None
            self.members_offsets_ = None

    def _json_params(self) -> dict[str, Any]:
        p = self.get_params()
        for name in ("weights", "weight_grid"):
            if p[name] is not None:
                p[name] = [float(v) for v in p[name]]
        if p["random_state"] is not None and not isinstance(p["random_state"], (numbers.Integral, np.integer)):
            p["random_state"] = None
        elif p["random_state"] is not None:
            p["random_state"] = int(p["random_state"])
        return p

    def _extra_meta(self) -> dict[str, Any]:
        return {"validation_ndcg_": self.validation_ndcg_, "normalize_": self.normalize_,
                "member_validation_ndcg_": None if self.member_validation_ndcg_ is None
                else [float(v) for v in self.member_validation_ndcg_]}

    def _after_load(self) -> None:
        data, offs = self.members_bytes_, self.members_offsets_
        self.models_ = [load_model(io.BytesIO(data[offs[i]:offs[i + 1]].tobytes())) for i in range(len(offs) - 1)]
        self.models = list(self.models_)
        self.members_bytes_ = None
        self.members_offsets_ = None
        if self.member_validation_ndcg_ is not None:
            self.member_validation_ndcg_ = np.asarray(self.member_validation_ndcg_)
