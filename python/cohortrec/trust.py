"""How much to trust discovered groups: stability across seeds and resamples, and profiles on held-out data.

:func:`group_trust` takes a fitted :class:`~cohortrec.GroupDiscovery` and
answers three questions about its groups:

1. **Seeds.** Refit with other random seeds (the number of groups fixed to
   the fitted :attr:`~cohortrec.GroupDiscovery.n_groups_`, so the question is
   "at the chosen K"): are the groups the same? Adjusted Rand index (ARI)
   between every refit's labels and the fitted labels.
2. **Resamples of users.** Refit on random subsamples of the users (80%,
   drawn without replacement, the model's own seed): ARI with the fitted
   labels on the users in both. Subsampling rather than the classical
   bootstrap with replacement: a duplicated user is an exact copy that
   always lands in the same group as itself, which inflates the agreement
   and distorts the clustering (every duplicate doubles a user's weight).
   Per group, the best Jaccard overlap with a group of each refit (seed
   refits and resamples alike), averaged over the refits: the cluster-wise
   stability of C. Hennig (2007), "Cluster-wise assessment of cluster
   stability", *Computational Statistics & Data Analysis* 52(1), 258-271.
3. **Profiles on held-out interactions.** 20% of every user's interactions
   are held out at random; the same settings (same seed) are fitted on the
   other 80%, and every group's top categories and items by lift, computed
   on the 80%, are measured again on the held-out 20% of the same users
   with the same labels. Per group: the share of its top lifted categories
   and items whose lift is still above 1 on the holdout, and the Spearman
   rank correlation of the lifts. The groups of the 80% fit are matched to
   the fitted groups by maximum overlap (Hungarian matching).

Every group gets a verdict (thresholds below): ``"solid"`` when its mean
Jaccard stability is at least :data:`SOLID_JACCARD` (Hennig: a valid, stable
cluster) and its measured holdout lifts hold (at least :data:`LIFT_HOLDS`
of its top entries), ``"unstable"`` below :data:`UNSTABLE_JACCARD` (Hennig:
such clusters should not be trusted), ``"shaky"`` in between or when the
profile does not hold.

Cost: ``n_seeds + n_bootstrap + 1`` fits of the discovery at the chosen K
(no search over K), and sparse sums over the interactions for the lifts
(O(nnz); no dense users x items array). Data with more than ``max_users``
users is measured on a uniform sample of that many users.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from cohortrec._errors import check_fitted
from cohortrec._validation import check_float, check_int, group_indicator
from cohortrec.discovery import GroupDiscovery
from cohortrec.interactions import Interactions
from cohortrec.preprocessing import weight

__all__ = ["GroupTrust", "group_trust", "SOLID_JACCARD", "UNSTABLE_JACCARD", "LIFT_HOLDS"]

#: mean Jaccard stability at or above which a group is "solid" (Hennig 2007: "a valid, stable cluster")
SOLID_JACCARD = 0.75
#: mean Jaccard stability below which a group is "unstable" (Hennig 2007: "should not be trusted")
UNSTABLE_JACCARD = 0.6
#: share of a group's top lifted categories / items that must stay lifted (> 1) on the holdout for "solid"
LIFT_HOLDS = 0.6
#: at most this many of a group's most supported items (categories) enter the Spearman correlation of lifts
SPEARMAN_ITEMS = 200
#: a category enters a group's Spearman correlation when it holds at least this share of the group's
#: interactions in training (rarer ones are mostly sampling noise, and picking them by their training
#: share biases the correlation downwards)
CATEGORY_SHARE = 0.01

_COLUMNS = ["group", "size", "jaccard_stability", "jaccard_seed", "jaccard_bootstrap", "category_lift_holds",
            "category_lift_spearman", "item_lift_holds", "item_lift_spearman", "verdict"]
_INT_COLUMNS = ("group", "size")
_TEXT_COLUMNS = ("verdict",)


# ----------------------------------------------------------------- result
@dataclass
class GroupTrust:
    """How stable the groups of a fitted discovery are, and whether their profiles hold on held-out data.

    Made by :func:`group_trust`; :meth:`to_dict` / :meth:`from_dict` give a
    JSON-safe round trip (NaN becomes ``None``).

    Attributes
    ----------
    seed_ari : list of float
        ARI between each refit with another seed and the fitted labels.
    bootstrap_ari : list of float
        ARI between each refit on a subsample of users and the fitted
        labels, on the users of the subsample.
    per_group : pandas.DataFrame
        One row per non-empty group: ``group``, ``size`` (users in the
        fitted group), ``jaccard_stability`` (mean best Jaccard over all
        refits), ``jaccard_seed`` and ``jaccard_bootstrap`` (the same over
        the seed refits / the resamples), ``category_lift_holds`` and
        ``item_lift_holds`` (share of the top lifted categories / items still
        lifted on the holdout), ``category_lift_spearman`` and
        ``item_lift_spearman`` (rank correlation of lifts, training vs
        holdout), ``verdict`` (``"solid"``, ``"shaky"``, ``"unstable"``, or
        ``"unmeasured"`` when no refit saw the group). NaN where a figure
        could not be measured (no categories, no holdout, too few entries).
    holdout_ari : float or None
        ARI between the fit on 80% of every user's interactions and the
        fitted labels (None without a holdout).
    n_users : int
        Users of the fitted model.
    n_users_used : int
        Users the refits ran on (``max_users`` sample, else all).
    n_groups : int
        The fitted ``n_groups_`` (the K every refit used).
    settings : dict
        The arguments of :func:`group_trust` and the thresholds used.
    seconds : float
        Wall time of :func:`group_trust`.
    """

    seed_ari: list[float]
    bootstrap_ari: list[float]
    per_group: pd.DataFrame
    holdout_ari: float | None = None
    n_users: int = 0
    n_users_used: int = 0
    n_groups: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The headline figures as a flat dict (JSON-safe).

        Returns
        -------
        dict
            ``n_groups``, ``n_users``, ``n_users_used``, ``sampled``,
            ``seed_ari_mean`` / ``_min``, ``bootstrap_ari_mean`` / ``_min``
            (None when no refit of that kind ran), ``holdout_ari``,
            ``n_solid`` / ``n_shaky`` / ``n_unstable`` / ``n_unmeasured``,
            ``share_users_solid`` (users in solid groups over users in
            groups), ``jaccard_mean`` (size-weighted mean Jaccard
            stability), ``category_lift_holds`` and ``item_lift_holds``
            (means over the groups where measured), ``seconds``.
        """
        pg = self.per_group
        verdicts = pg["verdict"].tolist() if len(pg) else []
        sizes = pg["size"].to_numpy(dtype=np.float64) if len(pg) else np.zeros(0)
        total = float(sizes.sum())
        solid = float(sizes[np.asarray([v == "solid" for v in verdicts], dtype=bool)].sum()) if len(pg) else 0.0
        jac = pg["jaccard_stability"].to_numpy(dtype=np.float64) if len(pg) else np.zeros(0)
        ok = np.isfinite(jac)
        out: dict[str, Any] = {
            "n_groups": int(self.n_groups), "n_users": int(self.n_users), "n_users_used": int(self.n_users_used),
            "sampled": bool(self.n_users_used < self.n_users),
            "seed_ari_mean": _mean(self.seed_ari), "seed_ari_min": _min(self.seed_ari),
            "bootstrap_ari_mean": _mean(self.bootstrap_ari), "bootstrap_ari_min": _min(self.bootstrap_ari),
            "holdout_ari": _num(self.holdout_ari),
            **{f"n_{v}": int(sum(x == v for x in verdicts)) for v in ("solid", "shaky", "unstable", "unmeasured")},
            "share_users_solid": _num(solid / total) if total else None,
            "jaccard_mean": _num(float(np.average(jac[ok], weights=sizes[ok]))) if ok.any() and sizes[ok].sum()
            else None,
            "category_lift_holds": _nanmean(pg["category_lift_holds"]) if len(pg) else None,
            "item_lift_holds": _nanmean(pg["item_lift_holds"]) if len(pg) else None,
            "seconds": round(float(self.seconds), 3),
        }
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (lists, dicts, numbers, strings, None for NaN).

        Returns
        -------
        dict
            ``seed_ari``, ``bootstrap_ari``, ``holdout_ari``, ``n_users``,
            ``n_users_used``, ``n_groups``, ``settings``, ``seconds``,
            ``per_group`` (a list of records) and ``summary``.
        """
        return {
            "seed_ari": [_num(v) for v in self.seed_ari],
            "bootstrap_ari": [_num(v) for v in self.bootstrap_ari],
            "holdout_ari": _num(self.holdout_ari),
            "n_users": int(self.n_users), "n_users_used": int(self.n_users_used), "n_groups": int(self.n_groups),
            "settings": {k: _plain(v) for k, v in self.settings.items()},
            "seconds": round(float(self.seconds), 3),
            "per_group": [{c: _plain(r[c]) for c in _COLUMNS} for r in self.per_group.to_dict(orient="records")],
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupTrust:
        """A :class:`GroupTrust` from :meth:`to_dict`'s output (e.g. read back from JSON).

        Parameters
        ----------
        data : mapping
            As written by :meth:`to_dict` (``summary`` is ignored: it is
            recomputed).

        Returns
        -------
        GroupTrust

        Raises
        ------
        TypeError
            If ``data`` is not a mapping.
        ValueError
            If a required key is missing or malformed.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"trust data must be a mapping (GroupTrust.to_dict()), got {type(data).__name__}")
        try:
            rows = list(data["per_group"])
            frame = pd.DataFrame([{c: r.get(c) for c in _COLUMNS} for r in rows], columns=_COLUMNS)
            for c in _COLUMNS:
                if c in _INT_COLUMNS:
                    frame[c] = frame[c].astype(np.int64)
                elif c not in _TEXT_COLUMNS:
                    frame[c] = pd.to_numeric(frame[c], errors="raise").astype(np.float64)
            frame["verdict"] = frame["verdict"].astype(object)
            hold = data.get("holdout_ari")
            return cls(
                seed_ari=[_float(v) for v in data["seed_ari"]],
                bootstrap_ari=[_float(v) for v in data["bootstrap_ari"]],
                per_group=frame,
                holdout_ari=None if hold is None else float(hold),
                n_users=int(data["n_users"]), n_users_used=int(data["n_users_used"]),
                n_groups=int(data["n_groups"]), settings=dict(data.get("settings") or {}),
                seconds=float(data.get("seconds") or 0.0),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"trust data is not a GroupTrust.to_dict() record: {exc!r}") from None


def _float(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _num(v: Any) -> float | None:
    """A float, or None for None / NaN / inf (JSON has no NaN)."""
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _plain(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (numbers.Integral, np.integer)):
        return int(v)
    if isinstance(v, (numbers.Real, np.floating)):
        return _num(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    return v if v is None or isinstance(v, str) else str(v)


def _mean(values: list[float]) -> float | None:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def _min(values: list[float]) -> float | None:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.min()) if a.size else None


def _nanmean(col: pd.Series) -> float | None:
    a = col.to_numpy(dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


# --------------------------------------------------------------- helpers
def _ari(a: np.ndarray, b: np.ndarray) -> float:
    return float(adjusted_rand_score(a, b))


def _contingency(ref: np.ndarray, other: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of (ref group, other label) over users with ``ref >= 0``, and the other labels' values."""
    vals, inv = np.unique(other, return_inverse=True)
    ok = ref >= 0
    C = sp.coo_matrix((np.ones(int(ok.sum())), (ref[ok], inv[ok])), shape=(k, vals.size)).toarray()
    return C, vals


def _best_jaccard(ref: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    """For every group g of ``ref``: max over groups h of ``other`` of |g & h| / |g | h| (NaN if g is empty).

    Users labelled -1 (noise) in ``other`` are in no group: they count in the
    union of g but never in an intersection.
    """
    C, vals = _contingency(ref, other, k)
    n_g = np.bincount(ref[ref >= 0], minlength=k)[:k].astype(np.float64)
    n_h = np.bincount(np.searchsorted(vals, other), minlength=vals.size).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        J = C / (n_g[:, None] + n_h[None, :] - C)
    J[:, vals < 0] = 0.0
    J = np.nan_to_num(J, nan=0.0)
    best = J.max(axis=1) if vals.size else np.zeros(k)
    return np.where(n_g > 0, best, np.nan)


def _match(ref: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    """For every group of ``ref``, the label of ``other`` matched to it by maximum overlap (-1: none)."""
    from scipy.optimize import linear_sum_assignment  # noqa: PLC0415  (loaded on use: report imports this module)

    C, vals = _contingency(ref, other, k)
    keep = vals >= 0
    C, vals = C[:, keep], vals[keep]
    out = np.full(k, -1, dtype=np.int64)
    if C.size == 0:
        return out
    rows, cols = linear_sum_assignment(C, maximize=True)
    for r, c in zip(rows, cols):
        if C[r, c] > 0:
            out[r] = int(vals[c])
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN for fewer than 3 pairs or a constant side."""
    from scipy.stats import rankdata  # noqa: PLC0415  (scipy.stats takes a while to import)

    if a.size < 3:
        return float("nan")
    ra, rb = rankdata(a), rankdata(b)
    sa, sb = ra.std(), rb.std()
    if sa == 0 or sb == 0:
        return float("nan")
    return float(np.mean((ra - ra.mean()) * (rb - rb.mean())) / (sa * sb))


def _subset(X: Interactions, rows: np.ndarray) -> Interactions:
    """The users ``rows`` of ``X`` (matrix, ids, user and item side data; the event log is not needed to fit)."""
    return Interactions(X.matrix[rows], X.user_ids[rows], X.item_ids,
                        users=None if X.users is None else X.users.iloc[rows], items=X.items)


def _split_holdout(M: sp.csr_matrix, share: float, rng: np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out ``round(share * n_u)`` random entries of every user's row (at most ``n_u - 1``).

    Returns the training matrix (values kept) and the binary holdout matrix.
    """
    M = sp.csr_matrix(M)
    n_per = np.diff(M.indptr)
    rows = np.repeat(np.arange(M.shape[0]), n_per)
    order = np.lexsort((rng.random(M.nnz), rows))  # entries of each row in random order
    rank = np.empty(M.nnz, dtype=np.int64)
    rank[order] = np.arange(M.nnz) - M.indptr[rows[order]]
    k_u = np.minimum(np.floor(share * n_per + 0.5).astype(np.int64), np.maximum(n_per - 1, 0))
    hold = rank < k_u[rows]
    train = sp.csr_matrix((M.data[~hold], (rows[~hold], M.indices[~hold])), shape=M.shape)
    test = sp.csr_matrix((np.ones(int(hold.sum())), (rows[hold], M.indices[hold])), shape=M.shape)
    return train, test


def _item_lifts(B: sp.csr_matrix, labels: np.ndarray, k: int, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(support k x len(cols), lift k x len(cols)) of the items ``cols``: share of a group's active users who
    have the item, and that over the share among all active users (users with at least one entry in ``B``)."""
    active = np.diff(B.indptr) > 0
    lab = np.where(active, labels, -1)
    Bc = B[:, cols]
    counts = np.asarray((group_indicator(lab, k) @ Bc).todense(), dtype=np.float64)
    n_g = np.bincount(lab[lab >= 0], minlength=k)[:k].astype(np.float64)
    sup = counts / np.maximum(n_g, 1.0)[:, None]
    base = np.asarray(Bc[np.flatnonzero(lab >= 0)].sum(axis=0), dtype=np.float64).ravel() / max(n_g.sum(), 1.0)
    lift = np.divide(sup, base[None, :], out=np.zeros_like(sup), where=base[None, :] > 0)
    return sup, lift


def _category_lifts(B: sp.csr_matrix, labels: np.ndarray, k: int, Cm: sp.csr_matrix
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(share k x c, lift k x c): a group's share of interactions in each category, and that over all users'."""
    UC = sp.csr_matrix(B @ Cm)
    GC = np.asarray((group_indicator(labels, k) @ UC).todense(), dtype=np.float64)
    tot = GC.sum(axis=1, keepdims=True)
    share = np.divide(GC, tot, out=np.zeros_like(GC), where=tot > 0)
    allc = GC.sum(axis=0)
    base = allc / max(float(allc.sum()), 1.0)
    lift = np.divide(share, base[None, :], out=np.zeros_like(share), where=base[None, :] > 0)
    return share, lift


def _top(sup: np.ndarray, lift: np.ndarray, top_n: int, min_support: float) -> np.ndarray:
    """The entries a profile lists (as :meth:`GroupDiscovery.profile`): lift > 1 and support >= min_support,
    ranked by ``support * log(lift)``."""
    cand = np.flatnonzero((sup >= min_support) & (lift > 1.0))
    if cand.size == 0:
        return cand
    score = sup[cand] * np.log(lift[cand])
    return cand[np.lexsort((-sup[cand], -score))][:top_n]


def _holds(lift_ho: np.ndarray, top: np.ndarray) -> float:
    return float(np.mean(lift_ho[top] > 1.0)) if top.size else float("nan")


def _verdict(jac: float, cat_holds: float, item_holds: float) -> str:
    if not math.isfinite(jac):
        return "unmeasured"
    if jac < UNSTABLE_JACCARD:
        return "unstable"
    holds = all(not math.isfinite(h) or h >= LIFT_HOLDS for h in (cat_holds, item_holds))
    return "solid" if jac >= SOLID_JACCARD and holds else "shaky"


def _refit(discovery: GroupDiscovery, X: Interactions, n_groups: int, seed: int | None) -> np.ndarray:
    """Labels of a clone of ``discovery`` fitted on ``X`` with K fixed (and another seed when given)."""
    model = clone(discovery)
    names = model.get_params(deep=False)
    params: dict[str, Any] = {}
    if "verbose" in names:
        params["verbose"] = False
    if "n_groups" in names and getattr(discovery, "clusterer", None) is None:
        params["n_groups"] = int(n_groups)
    if seed is not None:
        params["random_state"] = int(seed)
        for j, name in enumerate(("encoder", "clusterer")):  # estimators passed in keep their own seeds
            est = names.get(name)
            if hasattr(est, "get_params") and "random_state" in est.get_params(deep=False):
                params[f"{name}__random_state"] = int((seed + 7919 * (j + 1)) % (2**31 - 1))
    model.set_params(**params)
    with warnings.catch_warnings():  # the fit's own warnings (e.g. users without interactions), said once already
        warnings.simplefilter("ignore")
        model.fit(X)
    return np.asarray(model.labels_, dtype=np.int64)


def _check_data(discovery: GroupDiscovery, X: Any) -> Interactions:
    n = int(np.asarray(discovery.labels_).shape[0])
    if X is None:
        if not getattr(discovery, "_has_data", True) or getattr(discovery, "interactions_", None) is None:
            raise ValueError("discovery holds no training data (saved with include_data=False): pass X, the "
                             "interactions it was fitted on")
        X = discovery.interactions_
    elif not isinstance(X, Interactions):
        if not sp.issparse(X):
            raise TypeError(f"X must be an Interactions, a scipy.sparse matrix or None, got {type(X).__name__}")
        X = Interactions.from_sparse(X)
    if X.n_users != n:
        raise ValueError(f"X must hold the {n} users the discovery was fitted on (in the same order), "
                         f"got {X.n_users} users")
    n_items = getattr(discovery, "n_features_in_", X.n_items)
    if X.n_items != n_items:
        raise ValueError(f"X must have the {n_items} items the discovery was fitted on, got {X.n_items}")
    ids = getattr(discovery, "user_ids_", None)
    if ids is not None and len(ids) == n and not X.user_ids.equals(ids) and not isinstance(X.user_ids, pd.RangeIndex):
        raise ValueError("X's user ids differ from the users the discovery was fitted on (same users, same order "
                         "needed)")
    if X.matrix.nnz == 0:
        raise ValueError("X holds no interaction at all")
    return X


# ------------------------------------------------------------------ main
def group_trust(
    discovery: GroupDiscovery,
    X: Any = None,
    *,
    n_seeds: int = 3,
    n_bootstrap: int = 3,
    holdout: float = 0.2,
    top_n: int = 5,
    subsample: float = 0.8,
    min_support: float = 0.05,
    max_users: int | None = 20_000,
    random_state: int | None = 0,
    verbose: bool = False,
) -> GroupTrust:
    """Measure how much to trust the groups of a fitted discovery (see the module docstring).

    Parameters
    ----------
    discovery : GroupDiscovery
        A fitted :class:`~cohortrec.GroupDiscovery`.
    X : Interactions or scipy.sparse matrix, optional
        The interactions it was fitted on (same users in the same order);
        default ``discovery.interactions_``.
    n_seeds : int, default 3
        Refits with other random seeds (seed stability).
    n_bootstrap : int, default 3
        Refits on random subsamples of the users (resampling stability).
        ``n_seeds + n_bootstrap`` must be at least 1.
    holdout : float in [0, 1), default 0.2
        Share of every user's interactions held out to check the profiles;
        0 skips the holdout check.
    top_n : int, default 5
        Top lifted categories and items checked per group.
    subsample : float in (0, 1), default 0.8
        Share of the users in each resample (drawn without replacement).
    min_support : float in [0, 1], default 0.05
        An item enters a group's top list only when at least this share of
        the group's users has it (as in :meth:`GroupDiscovery.profile`).
    max_users : int or None, default 20000
        Above this many users, everything runs on a uniform sample of
        ``max_users`` users (compared with the model's labels of those users,
        so seed and sampling variation add up: a conservative figure).
        None: all users.
    random_state : int or None, default 0
        Seeds of the refits, resamples and the holdout split.
    verbose : bool, default False
        One line per refit on stderr.

    Returns
    -------
    GroupTrust

    Raises
    ------
    TypeError
        If ``discovery`` is not a :class:`~cohortrec.GroupDiscovery`, or an
        argument has the wrong type.
    sklearn.exceptions.NotFittedError
        (a ``ValueError``) if ``discovery`` is not fitted.
    ValueError
        For out-of-range arguments, or ``X`` that does not match the fitted
        users and items.

    Examples
    --------
    >>> from cohortrec import GroupDiscovery
    >>> from cohortrec.datasets import make_shop
    >>> from cohortrec.trust import group_trust
    >>> shop = make_shop(400, 200, 3, seed=0)
    >>> gd = GroupDiscovery(n_groups=3, random_state=0).fit(shop.interactions)
    >>> trust = group_trust(gd, n_seeds=1, n_bootstrap=1)
    >>> sorted(trust.per_group.columns)[:3]
    ['category_lift_holds', 'category_lift_spearman', 'group']
    """
    t0 = time.perf_counter()
    if not isinstance(discovery, GroupDiscovery):
        raise TypeError(f"discovery must be a fitted cohortrec.GroupDiscovery, got {type(discovery).__name__}")
    check_fitted(discovery, "labels_", "measuring how much to trust its groups")
    n_seeds = check_int(n_seeds, "n_seeds", minimum=0)
    n_bootstrap = check_int(n_bootstrap, "n_bootstrap", minimum=0)
    if n_seeds + n_bootstrap < 1:
        raise ValueError(f"n_seeds + n_bootstrap must be at least 1 (no refit measures nothing), got n_seeds="
                         f"{n_seeds}, n_bootstrap={n_bootstrap}")
    holdout = check_float(holdout, "holdout", minimum=0.0)
    if holdout >= 1.0:
        raise ValueError(f"holdout must lie in [0, 1), got {holdout}")
    top_n = check_int(top_n, "top_n", minimum=1)
    subsample = check_float(subsample, "subsample", minimum=0.0, min_inclusive=False)
    if subsample >= 1.0:
        raise ValueError(f"subsample must lie in (0, 1), got {subsample}")
    min_support = check_float(min_support, "min_support", minimum=0.0, maximum=1.0)
    if max_users is not None:
        max_users = check_int(max_users, "max_users", minimum=2)
    if random_state is not None and not isinstance(random_state, (numbers.Integral, np.integer)):
        raise TypeError(f"random_state must be an int or None, got {type(random_state).__name__}")
    if isinstance(random_state, bool):
        raise TypeError("random_state must be an int or None, got a bool")
    if not isinstance(verbose, (bool, np.bool_)):
        raise TypeError(f"verbose must be a bool, got {type(verbose).__name__}")
    X = _check_data(discovery, X)

    def say(msg: str) -> None:
        if verbose:
            print(f"group_trust: {msg}", file=sys.stderr, flush=True)

    rng = np.random.default_rng(random_state)
    labels_all = np.asarray(discovery.labels_, dtype=np.int64)
    k = int(discovery.n_groups_)
    n = X.n_users
    if max_users is not None and n > max_users:
        rows = np.sort(rng.choice(n, max_users, replace=False))
        Xs, ref = _subset(X, rows), labels_all[rows]
        say(f"measuring on a uniform sample of {max_users:,} of {n:,} users")
    else:
        Xs, ref = X, labels_all
    n_s = Xs.n_users
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=n_seeds)]
    own = discovery.random_state if isinstance(discovery.random_state, (numbers.Integral, np.integer)) else None
    seeds = [s + 1 if own is not None and s == int(own) else s for s in seeds]

    jac_seed, jac_boot, seed_ari, boot_ari = [], [], [], []
    for i, s in enumerate(seeds):
        t = time.perf_counter()
        lab = _refit(discovery, Xs, k, s)
        seed_ari.append(_ari(ref, lab))
        jac_seed.append(_best_jaccard(ref, lab, k))
        say(f"seed refit {i + 1}/{n_seeds}: ARI {seed_ari[-1]:.3f} ({time.perf_counter() - t:.1f} s)")
    m = max(2, min(n_s - 1, int(round(subsample * n_s)))) if n_s > 2 else n_s
    for i in range(n_bootstrap):
        t = time.perf_counter()
        sub = np.sort(rng.choice(n_s, m, replace=False))
        lab = _refit(discovery, _subset(Xs, sub), k, None)
        boot_ari.append(_ari(ref[sub], lab))
        jac_boot.append(_best_jaccard(ref[sub], lab, k))
        say(f"resample {i + 1}/{n_bootstrap} ({m:,} users): ARI {boot_ari[-1]:.3f} "
            f"({time.perf_counter() - t:.1f} s)")

    cat_holds = np.full(k, np.nan)
    cat_rho = np.full(k, np.nan)
    item_holds = np.full(k, np.nan)
    item_rho = np.full(k, np.nan)
    holdout_ari = None
    if holdout > 0:
        t = time.perf_counter()
        train, test = _split_holdout(Xs.matrix, holdout, rng)
        Xt = Interactions(train, Xs.user_ids, Xs.item_ids, users=Xs.users, items=Xs.items)
        lab = _refit(discovery, Xt, k, None)
        holdout_ari = _ari(ref, lab)
        k2 = int(lab.max()) + 1 if (lab >= 0).any() else 0
        match = _match(ref, lab, k)
        B_tr, B_ho = (weight(M, "binary").astype(np.float64) for M in (train, test))
        cols = np.unique(B_tr.indices)  # items someone has in training: every other lift is 0
        sup_tr, lift_tr = _item_lifts(B_tr, lab, k2, cols)
        _, lift_ho = _item_lifts(B_ho, lab, k2, cols)
        Cm, cats = Xs.item_categories()
        if cats:
            csh_tr, clift_tr = _category_lifts(B_tr, lab, k2, Cm)
            _, clift_ho = _category_lifts(B_ho, lab, k2, Cm)
        for g in range(k):
            h = int(match[g])
            if h < 0:
                continue
            top = _top(sup_tr[h], lift_tr[h], top_n, min_support)
            item_holds[g] = _holds(lift_ho[h], top)
            pool = np.flatnonzero(sup_tr[h] >= max(min_support, 1e-12))
            pool = pool[np.argsort(-sup_tr[h][pool], kind="stable")[:SPEARMAN_ITEMS]]
            item_rho[g] = _spearman(lift_tr[h][pool], lift_ho[h][pool])
            if cats:
                top = _top(csh_tr[h], clift_tr[h], top_n, 0.0)
                cat_holds[g] = _holds(clift_ho[h], top)
                pool = np.flatnonzero(csh_tr[h] >= CATEGORY_SHARE)
                pool = pool[np.argsort(-csh_tr[h][pool], kind="stable")[:SPEARMAN_ITEMS]]
                cat_rho[g] = _spearman(clift_tr[h][pool], clift_ho[h][pool])
        say(f"holdout: {int(test.nnz):,} held-out interactions; fit on the rest ARI {holdout_ari:.3f} "
            f"({time.perf_counter() - t:.1f} s)")

    sizes = np.bincount(labels_all[labels_all >= 0], minlength=k)[:k]
    js = np.vstack(jac_seed) if jac_seed else np.full((0, k), np.nan)
    jb = np.vstack(jac_boot) if jac_boot else np.full((0, k), np.nan)
    rows_out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an all-NaN slice -> NaN
        j_all = np.nanmean(np.vstack([js, jb]), axis=0)
        j_seed = np.nanmean(js, axis=0) if len(js) else np.full(k, np.nan)
        j_boot = np.nanmean(jb, axis=0) if len(jb) else np.full(k, np.nan)
    for g in range(k):
        if sizes[g] == 0:
            continue
        rows_out.append({
            "group": g, "size": int(sizes[g]), "jaccard_stability": float(j_all[g]),
            "jaccard_seed": float(j_seed[g]), "jaccard_bootstrap": float(j_boot[g]),
            "category_lift_holds": float(cat_holds[g]), "category_lift_spearman": float(cat_rho[g]),
            "item_lift_holds": float(item_holds[g]), "item_lift_spearman": float(item_rho[g]),
            "verdict": _verdict(float(j_all[g]), float(cat_holds[g]), float(item_holds[g])),
        })
    per_group = pd.DataFrame(rows_out, columns=_COLUMNS)
    per_group["group"] = per_group["group"].astype(np.int64)
    per_group["size"] = per_group["size"].astype(np.int64)
    per_group["verdict"] = per_group["verdict"].astype(object)
    settings = {"n_seeds": n_seeds, "n_bootstrap": n_bootstrap, "holdout": holdout, "top_n": top_n,
                "subsample": subsample, "resampling": "subsample without replacement",
                "min_support": min_support, "max_users": max_users, "random_state": random_state,
                "solid_jaccard": SOLID_JACCARD, "unstable_jaccard": UNSTABLE_JACCARD, "lift_holds": LIFT_HOLDS}
    return GroupTrust(seed_ari=seed_ari, bootstrap_ari=boot_ari, per_group=per_group, holdout_ari=holdout_ari,
                      n_users=n, n_users_used=n_s, n_groups=k, settings=settings,
                      seconds=time.perf_counter() - t0)
