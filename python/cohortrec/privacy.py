"""Privacy protection of published group profiles (design note, sections 6.5.5 and 8.4).

A :class:`Policy` turns the group profile of a fitted
:class:`~cohortrec.GroupDiscovery` into a *release* that may be shared with
people who must not learn about any one user (a marketing team, a partner,
a report sent by e-mail):

* **Minimum group size (k-anonymity style suppression).** Every published
  figure is computed from at least ``min_group_size`` distinct users: groups,
  items, categories, keyword sources, user-feature values and behaviour means
  supported by fewer users are suppressed. Totals and overall ("all")
  figures are sums over the *released* cells only, so no suppressed figure
  can be recovered by differencing two published numbers (a total minus its
  published parts is a sum of released cells, each of at least
  ``min_group_size`` users, or zero).
* **Differential privacy** (``epsilon`` given). Counts, interaction masses
  and sums get calibrated noise from `diffprivlib
  <https://github.com/IBM/differential-privacy-library>`_ (the optional
  ``privacy`` extra): group sizes (:class:`diffprivlib.mechanisms.Geometric`,
  one user changes one count by 1), category masses
  (:class:`~diffprivlib.mechanisms.Laplace`, each user's category counts
  clipped to ``max_interactions_per_user``), item user-counts
  (:class:`~diffprivlib.mechanisms.GaussianAnalytic` when ``delta > 0``, else
  Geometric; each user counts for at most ``max_items_per_user`` items) and
  behaviour sums (Laplace, values must lie in ``bounds``). Groups and items
  are released when their noisy distinct-user count reaches the threshold
  (a thresholded release replaces plain suppression). Everything published
  (shares, lifts, means, labels, keywords, the overall row) is computed from
  these noisy figures only (post-processing), and the budget is tracked by a
  :class:`diffprivlib.accountant.BudgetAccountant`.

The release is drawn once per policy and fitted model and cached, so the
profile, ``profiles.json`` and ``report.html`` of one run show the same
noisy figures and spend the budget once.

What is *not* protected: the clustering itself (the groups are fitted on the
raw data; the guarantees are for the published figures given the groups),
the item catalogue (item ids, titles and categories are treated as public)
and the model files (``model/``, ``groups.parquet``), which hold per-user
data and stay private to their owner.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import sys
import types
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cohortrec._errors import check_fitted
from cohortrec._validation import check_float, check_int

__all__ = ["PARTS", "Policy", "Release"]

#: the noisy parts of a differentially private release, and their default share of epsilon
PARTS: dict[str, float] = {"sizes": 0.2, "categories": 0.4, "items": 0.2, "features": 0.2}

#: relative error of the largest group's size above which a release is too noisy to be useful (a warning)
USEFUL_ERROR = 0.2


# ---------------------------------------------------------------- diffprivlib
def _diffprivlib() -> Any:
    """Import diffprivlib's mechanisms and accountant.

    diffprivlib 0.6.6 (the latest release) imports its machine-learning
    models from its package ``__init__``, and those need scikit-learn
    internals removed in scikit-learn 1.9 (``sklearn.tree._tree.DOUBLE``).
    The mechanisms and the accountant used here do not depend on them: when
    that import fails, ``diffprivlib.models`` is replaced by a module that
    raises the original error on use, and the import is retried.
    """
    try:
        import diffprivlib  # noqa: PLC0415
    except ModuleNotFoundError:
        raise ImportError("a differentially private release (Policy(epsilon=...)) needs diffprivlib: "
                          "pip install 'cohortrec[privacy]'") from None
    except ImportError as exc:
        if "sklearn" not in str(exc) or "diffprivlib.models" in sys.modules:
            raise
        message = (f"diffprivlib.models is unavailable with this scikit-learn ({exc}); "
                   "cohortrec uses only diffprivlib's mechanisms and accountant")

        class _Unavailable(types.ModuleType):
            def __getattr__(self, name: str) -> Any:
                if name.startswith("__"):
                    raise AttributeError(name)
                raise ImportError(message)

        for name in [m for m in sys.modules if m == "diffprivlib" or m.startswith("diffprivlib.")]:
            del sys.modules[name]  # the half-imported package: import it afresh
        sys.modules["diffprivlib.models"] = _Unavailable("diffprivlib.models")
        import diffprivlib  # noqa: PLC0415
    import diffprivlib.accountant  # noqa: PLC0415
    import diffprivlib.mechanisms  # noqa: PLC0415

    return diffprivlib


# ---------------------------------------------------------------- validation
def _check_bounds(bounds: Any) -> dict[str, tuple[float, float]]:
    if bounds is None:
        return {}
    if not isinstance(bounds, Mapping):
        raise TypeError("bounds must be a mapping of behaviour feature name -> (low, high), "
                        f"got {type(bounds).__name__}")
    out: dict[str, tuple[float, float]] = {}
    for name, b in bounds.items():
        if not isinstance(name, str):
            raise TypeError(f"bounds keys must be feature names (str), got {name!r}")
        try:
            lo, hi = b
        except (TypeError, ValueError):
            raise ValueError(f"bounds[{name!r}] must be a pair (low, high), got {b!r}") from None
        lo = check_float(lo, f"bounds[{name!r}][0] (low)")
        hi = check_float(hi, f"bounds[{name!r}][1] (high)")
        if lo >= hi:
            raise ValueError(f"bounds[{name!r}] must have low < high, got ({lo!r}, {hi!r})")
        out[name] = (lo, hi)
    return out


def _check_random_state(value: Any) -> Any:
    if value is None or isinstance(value, np.random.RandomState):
        return value
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"random_state must be None, an int or a numpy RandomState, got {type(value).__name__}")
    if not 0 <= int(value) < 2 ** 32:
        raise ValueError(f"random_state must lie in [0, 2**32), got {value!r}")
    return int(value)


# ------------------------------------------------------------------- release
@dataclass
class Release:
    """The protected tables a published profile is computed from.

    All arrays have one row per group of the model (``n_groups_``); rows of
    suppressed groups, and suppressed cells, are zero. Produced by
    :meth:`Policy.release`; :meth:`Policy.profile` turns it into the profile
    frame.
    """

    sizes: np.ndarray                 # (k,) published group sizes (exact or noisy), 0 when suppressed
    released: np.ndarray              # (k,) bool
    items: np.ndarray                 # (k, n_items) users per item (clipped/noisy), 0 where suppressed
    cats: np.ndarray                  # (k, n_cats) interaction mass per category, 0 where suppressed
    cat_names: list[str]
    feature_sums: pd.DataFrame        # (k, F) sums of released behaviour features
    feature_counts: pd.DataFrame      # (k, F) users behind each sum (the size under DP)
    user_values: dict[str, pd.DataFrame] = field(default_factory=dict)  # column -> (k, values) counts
    info: dict[str, Any] = field(default_factory=dict)   # what was protected and how (JSON-able)


def _fingerprint(discovery: Any) -> str:
    X = discovery.interactions_
    M = X.matrix
    h = hashlib.sha1()
    for a in (np.asarray(discovery.labels_, dtype=np.int64), M.indptr, M.indices, M.data):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr((M.shape, int(discovery.n_groups_))).encode())
    return h.hexdigest()


class Policy:
    """What a published group profile may reveal, and how it is protected.

    Parameters
    ----------
    min_group_size : int, default 10
        Every published figure is computed from at least this many distinct
        users (groups, items, categories, user-feature values, behaviour
        means); smaller cells are suppressed. With ``epsilon`` it is the
        threshold of the noisy distinct-user counts.
    epsilon : float or None, default None
        Total privacy budget of the release. ``None``: suppression only, with
        exact figures. A number > 0: differential privacy, split between the
        parts by ``split``.
    delta : float, default 1e-6
        Used by the Gaussian mechanism of the item counts (``0`` uses the
        pure-epsilon Geometric mechanism instead). Keep it well below one
        over the number of users.
    bounds : mapping of str to (float, float), optional
        ``{feature: (low, high)}`` for the behaviour features of
        :meth:`~cohortrec.GroupDiscovery.user_features` (e.g.
        ``{"n_events": (0, 500), "conversion": (0, 1)}``). Under differential
        privacy only features with bounds are published; the bounds must be
        chosen without looking at the data and must contain it (a value
        outside is an error, not silently clipped).
    max_items_per_user : int, default 10
        Under differential privacy each user counts for at most this many
        items (a random subset of theirs) in the item counts.
    max_interactions_per_user : float, default 50
        Under differential privacy each user's category counts are scaled
        down to sum to at most this (a user's category mix is kept, heavy
        users weigh like this many interactions).
    split : mapping of str to float, optional
        Relative share of ``epsilon`` per part (``"sizes"``,
        ``"categories"``, ``"items"``, ``"features"``); default
        :data:`PARTS`. Parts the data does not have are dropped and the rest
        rescaled.
    random_state : int, RandomState or None, default None
        Source of the noise. ``None`` (the default, and the only safe choice
        for a real publication) draws from the operating system's secure
        generator; a fixed seed makes the release reproducible, for tests and
        for re-rendering, but anyone who knows the seed and the data could
        remove the noise.

    Attributes
    ----------
    spent_ : (float, float)
        ``(epsilon, delta)`` spent by the latest release (``(0, 0)`` without
        differential privacy).

    Notes
    -----
    One policy object gives one release per fitted model: calling
    :meth:`~cohortrec.GroupDiscovery.profile`, ``write_report`` or the CLI
    again with the same policy returns the same noisy figures and spends no
    further budget. A *new* policy object with ``random_state=None`` draws
    new noise, and publishing both releases spends the budget twice.

    Examples
    --------
    >>> from cohortrec import GroupDiscovery
    >>> from cohortrec.datasets import make_shop
    >>> from cohortrec.privacy import Policy
    >>> shop = make_shop(300, 100, 3, seed=0)
    >>> gd = GroupDiscovery(n_groups=4, random_state=0).fit(shop.interactions)
    >>> prof = gd.profile(policy=Policy(min_group_size=20))
    >>> bool((prof["size"] >= 20).all())
    True
    """

    def __init__(
        self,
        min_group_size: int = 10,
        epsilon: float | None = None,
        delta: float = 1e-6,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        *,
        max_items_per_user: int = 10,
        max_interactions_per_user: float = 50.0,
        split: Mapping[str, float] | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.min_group_size = check_int(min_group_size, "min_group_size", minimum=1)
        if epsilon is not None:  # None: suppression only
            epsilon = check_float(epsilon, "epsilon", minimum=0.0, min_inclusive=False)
        self.epsilon = epsilon
        delta = check_float(delta, "delta", minimum=0.0)
        if delta >= 1.0:
            raise ValueError(f"delta must lie in [0, 1), got {delta!r}")
        self.delta = delta
        self.bounds = _check_bounds(bounds)
        self.max_items_per_user = check_int(max_items_per_user, "max_items_per_user", minimum=1)
        self.max_interactions_per_user = check_float(max_interactions_per_user, "max_interactions_per_user",
                                                     minimum=0.0, min_inclusive=False)
        sp_ = dict(PARTS) if split is None else dict(split)
        if not isinstance(sp_, dict) or not sp_:
            raise ValueError(f"split must be a non-empty mapping of part -> share, got {split!r}")
        for key, v in sp_.items():
            if key not in PARTS:
                raise ValueError(f"split keys must be among {sorted(PARTS)}, got {key!r}")
            sp_[key] = check_float(v, f"split[{key!r}]", minimum=0.0)
        if not any(v > 0 for v in sp_.values()):
            raise ValueError(f"split must give some part a share > 0, got {split!r}")
        if self.epsilon is not None and sp_.get("sizes", 0) <= 0:
            raise ValueError("split['sizes'] must be > 0: group sizes are always published")
        self.split = sp_
        self.random_state = _check_random_state(random_state)
        self.spent_: tuple[float, float] = (0.0, 0.0)
        self._cache: weakref.WeakKeyDictionary[Any, tuple[str, Release]] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------ describe
    def __repr__(self) -> str:
        parts = [f"min_group_size={self.min_group_size}", f"epsilon={self.epsilon!r}"]
        if self.epsilon is not None:
            parts += [f"delta={self.delta!r}", f"max_items_per_user={self.max_items_per_user}",
                      f"max_interactions_per_user={self.max_interactions_per_user:g}"]
        if self.bounds:
            parts.append(f"bounds={self.bounds!r}")
        return f"Policy({', '.join(parts)})"

    def describe(self) -> dict[str, Any]:
        """The policy as a JSON-able dict (stated in reports)."""
        return {"min_group_size": self.min_group_size, "epsilon": self.epsilon,
                "delta": self.delta if self.epsilon is not None else None,
                "bounds": {k: list(v) for k, v in self.bounds.items()},
                "max_items_per_user": self.max_items_per_user if self.epsilon is not None else None,
                "max_interactions_per_user": self.max_interactions_per_user if self.epsilon is not None else None,
                "split": dict(self.split) if self.epsilon is not None else None,
                "seeded": self.random_state is not None}

    def _epsilons(self, present: list[str]) -> dict[str, float]:
        w = {p: self.split.get(p, 0.0) for p in present}
        tot = sum(w.values())
        return {p: float(self.epsilon) * v / tot for p, v in w.items() if v > 0}

    def size_error(self) -> float:
        """Standard deviation of the noise on a group size (0 without differential privacy).

        Uses the share of epsilon of the ``"sizes"`` part when every part is
        present (the worst case: fewer parts leave more budget to sizes).
        """
        if self.epsilon is None:
            return 0.0
        eps = self._epsilons(list(PARTS))["sizes"]
        p = math.exp(-eps)  # two-sided geometric: variance 2p / (1 - p)^2
        return math.sqrt(2 * p) / (1 - p)

    # ------------------------------------------------------------- release
    def release(self, discovery: Any) -> Release:
        """The protected tables of a fitted discovery (drawn once, then cached).

        Parameters
        ----------
        discovery : GroupDiscovery
            Fitted, with its training data.

        Returns
        -------
        Release
        """
        check_fitted(discovery, "labels_", "a private release")
        if hasattr(discovery, "_require_data"):
            discovery._require_data("a private release")
        fp = _fingerprint(discovery)
        hit = self._cache.get(discovery)
        if hit is not None and hit[0] == fp:
            self.spent_ = tuple(hit[1].info["spent"])  # type: ignore[assignment]
            return hit[1]
        rel = _make_release(self, discovery)
        self._cache[discovery] = (fp, rel)
        self.spent_ = tuple(rel.info["spent"])  # type: ignore[assignment]
        return rel

    def profile(self, discovery: Any, *, top_n: int = 5, min_support: float = 0.05,
                features: bool = True) -> pd.DataFrame:
        """The published profile: :meth:`GroupDiscovery.profile` computed from :meth:`release` only.

        Suppressed groups have no row; the ``"all"`` row sums the released
        groups. What was protected, the epsilon spent and the expected error
        of every noisy figure are in ``frame.attrs["privacy"]``.
        """
        return _profile(self, discovery, self.release(discovery), top_n=top_n, min_support=min_support,
                        features=features)


# --------------------------------------------------------------- the tables
def _noisy(values: np.ndarray, mech: Any, integer: bool) -> np.ndarray:
    flat = np.asarray(values).ravel()
    if integer:
        out = np.fromiter((mech.randomise(int(v)) for v in flat), dtype=np.float64, count=flat.size)
    else:
        out = np.fromiter((mech.randomise(float(v)) for v in flat), dtype=np.float64, count=flat.size)
    return out.reshape(np.shape(values))


def _clip_items(B: sp.csr_matrix, m: int, rng: np.random.RandomState) -> sp.csr_matrix:
    """Keep at most ``m`` (random) nonzeros per row of a binary CSR matrix."""
    B = B.tocsr()
    counts = np.diff(B.indptr)
    if counts.max(initial=0) <= m:
        return B
    rows = np.repeat(np.arange(B.shape[0]), counts)
    keys = rng.random_sample(B.nnz)
    order = np.lexsort((keys, rows))
    pos = np.empty(B.nnz, dtype=np.int64)
    pos[order] = np.arange(B.nnz) - B.indptr[rows[order]]
    keep = pos < m
    C = sp.csr_matrix((B.data[keep], B.indices[keep], np.concatenate([[0], np.cumsum(np.minimum(counts, m))])),
                      shape=B.shape)
    return C


def _behaviour(discovery: Any, ok: np.ndarray) -> pd.DataFrame:
    F = discovery.user_features().iloc[np.flatnonzero(ok)]
    return F[[c for c in F.columns if not c.startswith("cat_")]].astype(np.float64)


def _user_columns(X: Any, ok: np.ndarray) -> dict[str, pd.Series]:
    if X.users is None:
        return {}
    users = X.users.iloc[np.flatnonzero(ok)]
    out = {}
    for col in users.columns:
        s = users[col]
        if s.dtype.kind in "OUSb" or isinstance(s.dtype, pd.CategoricalDtype) or s.nunique() <= 12:
            out[str(col)] = s.reset_index(drop=True)
    return out


def _make_release(policy: Policy, discovery: Any) -> Release:
    X = discovery.interactions_
    lab = np.asarray(discovery.labels_, dtype=np.int64)
    k = int(discovery.n_groups_)
    ok = lab >= 0
    lab_ok = lab[ok]
    kmin = policy.min_group_size
    dp = policy.epsilon is not None
    G = sp.csr_matrix((np.ones(lab_ok.size), (lab_ok, np.arange(lab_ok.size))), shape=(k, lab_ok.size))
    B = X.matrix[ok].tocsr().copy()
    B.data[:] = 1.0
    B.eliminate_zeros()
    Cm, cat_names = X.item_categories()
    Fb = _behaviour(discovery, ok)
    for name in policy.bounds:  # the bounds must name features and contain the data
        if name not in Fb.columns:
            raise ValueError(f"bounds names the unknown behaviour feature {name!r}; the features are "
                             f"{sorted(Fb.columns)}")
        lo, hi = policy.bounds[name]
        v = Fb[name].to_numpy()
        v = v[np.isfinite(v)]
        if v.size and (v.min() < lo or v.max() > hi):
            raise ValueError(f"bounds[{name!r}] = ({lo:g}, {hi:g}) do not contain the data: {name} ranges over "
                             f"[{v.min():g}, {v.max():g}]; widen the bounds (chosen without looking at the data)")
    sizes_true = np.bincount(lab_ok, minlength=k)[:k].astype(np.float64)
    info: dict[str, Any] = {"policy": policy.describe(), "mode": "differential privacy" if dp else "suppression",
                            "parts": [], "not_released": {}}
    user_values: dict[str, pd.DataFrame] = {}

    if not dp:
        released = sizes_true >= kmin
        sizes = np.where(released, sizes_true, 0.0)
        items = np.asarray((G @ B).todense(), dtype=np.float64)
        items[items < kmin] = 0.0
        items[~released] = 0.0
        if cat_names:
            UC = sp.csr_matrix(B @ Cm)
            cats = np.asarray((G @ UC).todense(), dtype=np.float64)
            UCb = UC.copy()
            UCb.data[:] = 1.0
            cat_users = np.asarray((G @ UCb).todense(), dtype=np.float64)
            cats[cat_users < kmin] = 0.0
            cats[~released] = 0.0
        else:
            cats = np.zeros((k, 0))
        valid = Fb.notna()
        fsums = Fb.fillna(0.0).groupby(lab_ok).sum().reindex(range(k), fill_value=0.0)
        fcounts = valid.astype(np.float64).groupby(lab_ok).sum().reindex(range(k), fill_value=0.0)
        low = (fcounts < kmin).to_numpy() | ~released[:, None]
        fsums = fsums.mask(low, 0.0)
        fcounts = fcounts.mask(low, 0.0)
        for col, s in _user_columns(X, ok).items():
            tab = pd.crosstab(pd.Series(lab_ok), s).reindex(range(k), fill_value=0).astype(np.float64)
            tab = tab.mask(tab < kmin, 0.0)
            tab.loc[~released] = 0.0
            tab = tab.loc[:, tab.sum(axis=0) > 0]
            user_values[col] = tab
        info["spent"] = [0.0, 0.0]
        info["threshold"] = {"groups": kmin, "items": kmin, "categories (distinct users)": kmin}
    else:
        dpl = _diffprivlib()
        mech = dpl.mechanisms
        rng = (np.random.RandomState(policy.random_state) if isinstance(policy.random_state, int)
               else policy.random_state)
        clip_rng = rng if rng is not None else np.random.RandomState()
        feats = [c for c in Fb.columns if c in policy.bounds and Fb[c].notna().all()]
        for c in Fb.columns:
            if c not in policy.bounds:
                info["not_released"][c] = "no bounds given"
            elif c not in feats:
                info["not_released"][c] = "missing values"
        for col in _user_columns(X, ok):
            info["not_released"][f"user_{col}"] = "user attributes are not released under differential privacy"
        present = ["sizes", "items"] + (["categories"] if cat_names else []) + (["features"] if feats else [])
        eps = policy._epsilons(present)
        acc = dpl.accountant.BudgetAccountant(epsilon=float(policy.epsilon), delta=float(policy.delta))

        def part(name: str, mechanism: Any, sensitivity: float, what: str, e: float, d: float = 0.0) -> float:
            acc.spend(e, d)
            std = float(math.sqrt(mechanism.variance(0)))
            info["parts"].append({"part": name, "figure": what, "mechanism": type(mechanism).__name__,
                                  "epsilon": e, "delta": d, "sensitivity": float(sensitivity), "noise_std": std})
            return std

        # group sizes: one user changes one count by one
        m_size = mech.Geometric(epsilon=eps["sizes"], sensitivity=1, random_state=rng)
        size_std = part("sizes", m_size, 1, "users per group", eps["sizes"])
        biggest = float(sizes_true.max(initial=0.0))
        if size_std > USEFUL_ERROR * biggest:  # a warning to the data's owner, not published
            warnings.warn(
                f"epsilon={policy.epsilon:g} is too small for a useful release of this data: group sizes get an "
                f"expected error of \u00b1{size_std:.1f} users (noise standard deviation), more than "
                f"{USEFUL_ERROR:.0%} of the largest group; every share and mean will be mostly noise",
                UserWarning, stacklevel=4)
        sizes = np.maximum(_noisy(sizes_true, m_size, integer=True), 0.0)
        released = sizes >= kmin
        sizes = np.where(released, sizes, 0.0)
        # item user-counts: each user counts for at most m items
        m = policy.max_items_per_user
        Bc = _clip_items(B, m, clip_rng)
        items_true = np.asarray((G @ Bc).todense(), dtype=np.float64)
        n_items = max(X.n_items, 2)
        if policy.delta > 0:
            e_i, d_i = eps["items"], float(policy.delta)
            m_items = mech.GaussianAnalytic(epsilon=e_i, delta=d_i, sensitivity=math.sqrt(m), random_state=rng)
            items_std = part("items", m_items, math.sqrt(m), f"users per item and group (L2, <= {m} items a user)",
                             e_i, d_i)
            from scipy.stats import norm  # noqa: PLC0415

            margin = float(norm.isf(1.0 / n_items)) * items_std
            integer = False
        else:
            e_i, d_i = eps["items"], 0.0
            m_items = mech.Geometric(epsilon=e_i, sensitivity=m, random_state=rng)
            items_std = part("items", m_items, m, f"users per item and group (<= {m} items a user)", e_i)
            p = math.exp(-e_i / m)
            margin = math.log(n_items / (1 + p)) * m / e_i
            integer = True
        items = np.zeros_like(items_true)
        if released.any():
            items[released] = _noisy(items_true[released], m_items, integer=integer)
        item_tau = kmin + margin
        items[items < item_tau] = 0.0
        # category masses: each user's category counts scaled to sum to <= C
        cats = np.zeros((k, len(cat_names)))
        cat_std = 0.0
        if cat_names:
            C = policy.max_interactions_per_user
            UC = np.asarray((B @ Cm).todense(), dtype=np.float64)
            tot = UC.sum(axis=1, keepdims=True)
            UC *= np.minimum(1.0, C / np.maximum(tot, 1e-300))
            cats_true = np.asarray(G @ UC, dtype=np.float64)
            m_cat = mech.Laplace(epsilon=eps["categories"], sensitivity=C, random_state=rng)
            cat_std = part("categories", m_cat, C, f"interactions per category and group (<= {C:g} a user)",
                           eps["categories"])
            if released.any():
                cats[released] = _noisy(cats_true[released], m_cat, integer=False)
            # the categories are public: no threshold is needed for privacy, and one would bias the shares
            cats = np.maximum(cats, 0.0)
        # behaviour sums: values in [lo, hi]
        fsums = pd.DataFrame(0.0, index=range(k), columns=feats)
        feat_std: dict[str, float] = {}
        if feats:
            e_f = eps["features"] / len(feats)
            true = Fb[feats].groupby(lab_ok).sum().reindex(range(k), fill_value=0.0)
            for c in feats:
                lo, hi = policy.bounds[c]
                sens = max(abs(lo), abs(hi))
                m_f = mech.Laplace(epsilon=e_f, sensitivity=sens, random_state=rng)
                feat_std[c] = part("features", m_f, sens, f"sum of {c} per group (values in [{lo:g}, {hi:g}])", e_f)
                col = np.zeros(k)
                if released.any():
                    col[released] = _noisy(true[c].to_numpy()[released], m_f, integer=False)
                fsums[c] = col
        fcounts = pd.DataFrame(np.repeat(sizes[:, None], len(feats), axis=1), index=range(k), columns=feats)
        total = acc.total()
        info["spent"] = [float(total[0]), float(total[1])]
        info["threshold"] = {"groups": kmin, "items": float(item_tau)}
        info["noise_std"] = {"size": size_std, "item_count": items_std, "category_mass": cat_std, **{
            f"sum of {c}": s for c, s in feat_std.items()}}
        if not released.any():
            warnings.warn(f"no group reached min_group_size={kmin} after noise (group sizes have an expected "
                          f"error of \u00b1{size_std:.1f}); nothing is released", UserWarning, stacklevel=3)
    info["n_groups"] = k
    info["released_groups"] = [int(g) for g in np.flatnonzero(released)]
    info["suppressed_groups"] = [int(g) for g in np.flatnonzero(~released)]
    info["suppressed_cells"] = {"items": int(((items == 0) & released[:, None]).sum()),
                                "categories": int(((cats == 0) & released[:, None]).sum())}
    return Release(sizes=sizes, released=released, items=items, cats=cats, cat_names=list(cat_names),
                   feature_sums=fsums, feature_counts=fcounts, user_values=user_values, info=info)


# -------------------------------------------------------------- the profile
def _ranked(sup: np.ndarray, base: np.ndarray, names: np.ndarray, top_n: int, min_support: float,
            allowed: np.ndarray) -> list[tuple[str, float, float]]:
    """As GroupDiscovery's ranking (``support * log(lift)`` among ``support >= min_support`` and
    lift > 1, else the most supported), restricted to the released entries ``allowed``."""
    lift = np.divide(sup, base, out=np.zeros_like(sup), where=base > 0)
    cand = np.flatnonzero(allowed & (sup >= min_support) & (lift > 1.0))
    if cand.size == 0:
        a = np.flatnonzero(allowed)
        cand = a[np.argsort(-sup[a], kind="stable")][:top_n]
    score = sup[cand] * np.log(np.maximum(lift[cand], 1e-12))
    order = cand[np.lexsort((-sup[cand], -score))][:top_n]
    return [(str(names[j]), round(float(lift[j]), 3), round(float(sup[j]), 3)) for j in order]


def _keywords(X: Any, items: np.ndarray, rows: list[int], top_n: int) -> dict[int, list[str]]:
    """Class-based tf-idf keywords of each released group, from the released item counts only."""
    texts = X.item_text()
    if not rows or not any(texts):
        return {g: [] for g in rows}
    from sklearn.feature_extraction.text import CountVectorizer  # noqa: PLC0415

    try:
        cv = CountVectorizer(stop_words="english", min_df=2, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
        T = cv.fit_transform(texts)
    except ValueError:  # empty vocabulary
        return {g: [] for g in rows}
    tf = np.asarray((sp.csr_matrix(np.log1p(items[rows])) @ T).toarray(), dtype=np.float64)  # group x term
    tot = tf.sum(axis=1, keepdims=True)
    tfn = np.divide(tf, tot, out=np.zeros_like(tf), where=tot > 0)
    idf = np.log1p(tot.mean() / np.maximum(tf.sum(axis=0), 1e-12))
    score = tfn * idf
    vocab = np.asarray(cv.get_feature_names_out())
    out = {}
    for i, g in enumerate(rows):
        order = [j for j in np.argsort(-score[i], kind="stable") if score[i, j] > 0][:top_n]
        out[g] = [str(vocab[j]) for j in order]
    return out


def _profile(policy: Policy, discovery: Any, rel: Release, *, top_n: int, min_support: float,
             features: bool) -> pd.DataFrame:
    X = discovery.interactions_
    rows = [int(g) for g in np.flatnonzero(rel.released)]
    sizes = rel.sizes
    n_rel = float(sizes[rows].sum())
    dp = policy.epsilon is not None
    min_size = discovery.min_group_size
    min_size = min_size * n_rel if isinstance(min_size, float) and min_size < 1 else float(min_size)
    out: dict[str, list[Any]] = {
        "size": [int(round(sizes[g])) for g in rows] + [int(round(n_rel))],
        "share": [float(sizes[g] / n_rel) for g in rows] + [1.0],
        "small": [bool(sizes[g] < min_size) for g in rows] + [False],
    }
    # items: support = users with the item / group size; the base sums released cells only
    titles = (X.items["title"].astype(str).to_numpy() if X.items is not None and "title" in X.items.columns
              else np.asarray(X.item_ids.astype(str)))
    It = rel.items
    item_all = It[rows].sum(axis=0) / max(n_rel, 1.0)
    tops = []
    for g in rows:
        sup = np.clip(It[g] / max(sizes[g], 1.0), 0.0, 1.0)
        tops.append(_ranked(sup, item_all, titles, top_n, min_support, It[g] > 0))
    allowed = item_all > 0
    a_idx = np.flatnonzero(allowed)
    a_idx = a_idx[np.argsort(-item_all[a_idx], kind="stable")][:top_n]
    out["top_items"] = tops + [[(str(titles[j]), 1.0, round(float(min(item_all[j], 1.0)), 3)) for j in a_idx]]
    # categories: share of the group's released interaction mass
    top_cats: dict[int, list[Any]] = {g: [] for g in rows}
    all_cats: list[Any] = []
    if rel.cat_names:
        Cg = rel.cats
        names = np.asarray(rel.cat_names, dtype=object)
        allc = Cg[rows].sum(axis=0)
        cat_all = allc / max(float(allc.sum()), 1e-12)
        for g in rows:
            tot = Cg[g].sum()
            share = Cg[g] / tot if tot > 0 else np.zeros_like(Cg[g])
            top_cats[g] = _ranked(share, cat_all, names, top_n, 0.0, Cg[g] > 0)
        a_idx = np.flatnonzero(cat_all > 0)
        a_idx = a_idx[np.argsort(-cat_all[a_idx], kind="stable")][:top_n]
        all_cats = [(str(names[j]), 1.0, round(float(cat_all[j]), 3)) for j in a_idx]
    out["top_categories"] = [top_cats[g] for g in rows] + [all_cats]
    kw = _keywords(X, It, rows, top_n)
    out["keywords"] = [kw[g] for g in rows] + [[]]
    labels = []
    for g in rows:
        parts = [c[0] for c in top_cats[g][:2]]
        words = [w for w in kw[g] if not any(w in p.lower() for p in parts)][:2]
        labels.append(" + ".join(parts) + (" | " if parts and words else "") + ", ".join(words)
                      if parts or words else f"group {g}")
    out["label"] = labels + ["all users"]
    for col, tab in rel.user_values.items():
        overall_cnt = tab.loc[rows].sum(axis=0) if rows else tab.sum(axis=0) * 0
        overall = overall_cnt / max(float(overall_cnt.sum()), 1e-12)
        vals: list[Any] = []
        for g in rows:
            cnt = tab.loc[g]
            cnt = cnt[cnt > 0]
            if cnt.empty:
                vals.append(None)
                continue
            share = cnt / float(cnt.sum())
            lift = share / overall.reindex(share.index)
            v = lift.idxmax()
            vals.append((v, float(share[v]), float(overall[v])))
        ov = overall[overall > 0]
        vals.append((ov.idxmax(), float(ov.max()), float(ov.max())) if not ov.empty else None)
        out[f"user_{col}"] = vals
    frame = pd.DataFrame(out, index=pd.Index(rows + ["all"], dtype=object, name="group"))
    if features and rel.feature_sums.shape[1]:
        S = rel.feature_sums.loc[rows]
        N = rel.feature_counts.loc[rows]
        means = (S / N.where(N > 0)).astype(np.float64)
        overall = S.sum(axis=0) / N.sum(axis=0).where(N.sum(axis=0) > 0)
        if dp:
            for c in means.columns:
                lo, hi = policy.bounds[c]
                means[c] = means[c].clip(lo, hi)
                overall[c] = float(np.clip(overall[c], lo, hi)) if np.isfinite(overall[c]) else np.nan
        means.loc["all"] = overall
        means.index = frame.index
        rel_ = means / overall.replace(0, np.nan)
        rel_.columns = [f"{c}_vs_all" for c in rel_.columns]
        frame = pd.concat([frame, means, rel_], axis=1)
    cols = ["size", "share", "small", "label"] + [c for c in frame.columns
                                                  if c not in ("size", "share", "small", "label")]
    frame = frame[cols]
    frame.attrs["privacy"] = _summary(policy, rel, rows, features)
    return frame


def _summary(policy: Policy, rel: Release, rows: list[int], features: bool) -> dict[str, Any]:
    """What was protected, the budget spent and the expected error of every noisy figure (JSON-able)."""
    info = dict(rel.info)
    errors: dict[str, dict[str, float]] = {}
    if policy.epsilon is not None:
        std = info["noise_std"]
        for g in rows:
            n = max(float(rel.sizes[g]), 1.0)
            e: dict[str, float] = {"size": std["size"], "item_support": min(std["item_count"] / n, 1.0)}
            if rel.cat_names:
                mass = float(rel.cats[g].sum())
                e["category_share"] = min(std["category_mass"] / mass, 1.0) if mass > 0 else 1.0
            if features:
                for c in rel.feature_sums.columns:
                    e[f"mean {c}"] = std[f"sum of {c}"] / n
            errors[str(g)] = e
    info["expected_error"] = errors
    return info
