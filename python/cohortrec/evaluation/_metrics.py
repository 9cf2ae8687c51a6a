"""Top-k ranking metrics, computed for many users at once (no Python loop per user)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cohortrec import ops

__all__ = ["METRICS", "hits_matrix", "per_user_metrics", "ranking_metrics"]

#: metric names in the order :func:`ranking_metrics` and ``evaluate`` report them
METRICS: tuple[str, ...] = (
    "precision",        # hits@k / k
    "recall",           # hits@k / |test|
    "recall_capped",    # hits@k / min(k, |test|)
    "ndcg",             # binary-relevance NDCG@k, ideal DCG over min(k, |test|) hits
    "map",              # sum over hits of precision@rank, / min(k, |test|)
    "hit_rate",         # 1 if hits@k > 0
    "coverage",         # distinct recommended items / catalogue size (list-level)
    "mean_popularity",  # mean training popularity of the recommended items (list-level)
)
_USER_METRICS = METRICS[:6]


def _check_ks(k: int | Iterable[int]) -> tuple[int, ...]:
    ks = (k,) if np.ndim(k) == 0 else tuple(k)  # type: ignore[arg-type]
    if not ks:
        raise ValueError("k must be a positive integer or a non-empty sequence of them")
    out = []
    for v in ks:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"every k must be an integer >= 1, got {v!r}")
        out.append(int(v))
    return tuple(sorted(set(out)))




def _hits(recs: np.ndarray, rows: np.ndarray, test: sp.csr_matrix,
          n_threads: int | None = None) -> np.ndarray:
    """Native hits of ``recs`` (u, K) against rows ``rows`` of canonical CSR ``test``.

    No validation beyond dtypes: callers have checked that the ids are
    below ``test.shape[1]`` and the row ids are valid.
    """
    return ops.ranking_hits(recs, rows, test.indptr, test.indices, int(test.shape[1]), n_threads)


def hits_matrix(recommended: np.ndarray, test: sp.csr_matrix) -> np.ndarray:
    """Boolean ``(u, K)``: is ``recommended[r, i]`` one of the items stored in ``test[r]``.

    Parameters
    ----------
    recommended : ndarray of int, shape (u, K)
        Item ids, ``-1`` (any negative id) = no item.
    test : scipy.sparse matrix, shape (u, n_items)
        One row per row of ``recommended``; every stored entry counts,
        whatever its value.

    Returns
    -------
    ndarray of bool, shape (u, K)

    Raises
    ------
    ValueError
        If the shapes disagree or ``recommended`` holds an id >= n_items.
    """
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (users x ranked items), got shape {rec.shape}")
    if rec.size and not np.issubdtype(rec.dtype, np.integer):
        raise TypeError(f"recommended must hold integer item ids, got dtype {rec.dtype}")
    u = rec.shape[0]
    if not sp.issparse(test):
        raise TypeError(f"test must be a scipy.sparse matrix, got {type(test).__name__}")
    if test.shape[0] != u:
        raise ValueError(f"test must have one row per recommendation list ({u}), got shape {test.shape}")
    T = sp.csr_matrix(test)
    if rec.size and int(rec.max()) >= T.shape[1]:
        raise ValueError(f"recommended holds item id {int(rec.max())} >= n_items={T.shape[1]}")
    return _hits(rec, np.arange(u, dtype=np.int64), T)


def _discounts(kmax: int) -> np.ndarray:
    """DCG position discounts 1 / log2(rank + 1) for ranks 1..kmax."""
    return 1.0 / np.log2(np.arange(2, kmax + 2))


def per_user_metrics(hits: np.ndarray, n_test: np.ndarray, ks: tuple[int, ...]) -> dict[tuple[str, int], np.ndarray]:
    """Per-user values of the user-level metrics for every ``k`` in ``ks``.

    ``hits`` has shape ``(u, K)`` (``K`` may be smaller than ``max(ks)``
    when fewer items could be recommended: missing positions are misses).
    Users with ``n_test == 0`` get NaN.
    """
    u = hits.shape[0]
    kmax = max(ks)
    # work on the hit positions only (a few per user), not on u x K dense arrays
    rows, pos = np.nonzero(hits[:, :kmax])  # row-major: sorted by row, then position
    pos = pos.astype(np.int64)
    first = np.searchsorted(rows, np.arange(u))  # index of each row's first hit
    rank = np.arange(rows.size) - first[rows]  # 0-based rank of the hit among the row's hits
    gain = _discounts(kmax)[pos]
    prec_at_hit = (rank + 1) / (pos + 1.0)  # precision at each hit position (for AP)
    stats = {}
    for k in ks:
        sel = pos < k
        r = rows[sel]
        stats[k] = (np.bincount(r, minlength=u).astype(np.float64),
                    np.bincount(r, weights=gain[sel], minlength=u),
                    np.bincount(r, weights=prec_at_hit[sel], minlength=u))
    return _metrics_from_stats(stats, n_test, ks)


def _per_user_metrics_native(recs: np.ndarray, rows: np.ndarray, test: sp.csr_matrix, ks: tuple[int, ...],
                             n_threads: int | None = None) -> dict[tuple[str, int], np.ndarray]:
    """:func:`per_user_metrics` of ``hits_matrix(recs, test[rows])`` in one native pass.

    The hits are never materialised; the per-user sums are the same
    floating-point operations in the same order, so the values are
    identical. ``recs`` ids must be < ``test.shape[1]`` (checked by the
    caller); ``test`` must be CSR.
    """
    hk, dcg, ap = ops.ranking_hit_stats(recs, rows, test.indptr, test.indices, int(test.shape[1]), ks,
                                        _discounts(max(ks)), n_threads)
    n_test = np.diff(test.indptr)[rows]
    return _metrics_from_stats({k: (hk[t], dcg[t], ap[t]) for t, k in enumerate(ks)}, n_test, ks)


def _metrics_from_stats(stats: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], n_test: np.ndarray,
                        ks: tuple[int, ...]) -> dict[tuple[str, int], np.ndarray]:
    """The user-level metrics from per-user (hits, DCG, AP sums) at every k."""
    cdisc = np.cumsum(_discounts(max(ks)))
    nt = np.asarray(n_test, dtype=np.float64)
    valid = nt > 0
    out: dict[tuple[str, int], np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in ks:
            hk, dcg, ap = stats[k]
            cap = np.minimum(k, nt)
            idcg = cdisc[np.maximum(cap.astype(np.int64), 1) - 1]
            vals = {
                "precision": hk / k,
                "recall": hk / nt,
                "recall_capped": hk / cap,
                "ndcg": dcg / idcg,
                "map": ap / cap,
                "hit_rate": (hk > 0).astype(np.float64),
            }
            for name, v in vals.items():
                out[(name, k)] = np.where(valid, v, np.nan)
    return out


def _list_metrics(recommended: np.ndarray, k: int, n_items: int,
                  item_popularity: np.ndarray | None) -> tuple[float, float]:
    top = recommended[:, :k]
    items = top[top >= 0]
    seen = np.zeros(max(n_items, 1), dtype=bool)
    seen[items] = True
    coverage = int(seen.sum()) / n_items if n_items else float("nan")
    if item_popularity is None or items.size == 0:
        pop = float("nan")
    else:
        pop = float(np.asarray(item_popularity, dtype=np.float64)[items].mean())
    return coverage, pop


def ranking_metrics(
    recommended: Any,
    test: Any,
    k: int | Iterable[int] = (10, 20, 100),
    *,
    n_items: int | None = None,
    item_popularity: Any | None = None,
    per_user: bool = False,
) -> pd.DataFrame:
    """Top-k metrics of recommendation lists against held-out items.

    Parameters
    ----------
    recommended : ndarray of int, shape (u, K)
        Ranked item ids per user, best first; ``-1`` marks an empty slot.
    test : scipy.sparse matrix, shape (u, n_items)
        Held-out items of the same users (row ``r`` for list ``r``).
    k : int or sequence of int, default (10, 20, 100)
    n_items : int, optional
        Catalogue size for coverage (default ``test.shape[1]``).
    item_popularity : array-like of shape (n_items,), optional
        Popularity of every item (e.g. the fraction of training users who
        interacted with it) for ``mean_popularity``.
    per_user : bool, default False
        Return one row per user and k (user-level metrics only) instead of
        the means.

    Returns
    -------
    pandas.DataFrame
        Tidy: columns ``metric``, ``k``, ``value``, ``n_users`` (users with
        at least one test item, over which user-level metrics are averaged;
        coverage and mean popularity are computed over their lists).
        With ``per_user=True``: columns ``user`` (row of ``test``),
        ``metric``, ``k``, ``value``.

    Notes
    -----
    ``precision`` = hits/k; ``recall`` = hits/|test|; ``recall_capped`` =
    hits/min(k, |test|) (the "normalised" recall of Liang et al. 2018;
    implicit's ``precision`` is its micro-average); ``ndcg`` uses binary
    gains and an ideal DCG of min(k, |test|) hits; ``map`` = sum over hit
    positions i of precision@i, divided by min(k, |test|) (as implicit).
    """
    ks = _check_ks(k)
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (users x ranked items), got shape {rec.shape}")
    if not np.issubdtype(rec.dtype, np.integer):
        raise TypeError(f"recommended must hold integer item ids, got dtype {rec.dtype}")
    if not sp.issparse(test):
        raise TypeError(f"test must be a scipy.sparse matrix, got {type(test).__name__}")
    T = sp.csr_matrix(test, copy=True)
    T.sum_duplicates()
    T.eliminate_zeros()
    n_items = T.shape[1] if n_items is None else int(n_items)
    if rec.size and rec.max() >= n_items:
        raise ValueError(f"recommended holds item id {rec.max()} >= n_items={n_items}")
    if T.shape[0] != rec.shape[0]:
        raise ValueError(f"test must have one row per recommendation list ({rec.shape[0]}), got shape {T.shape}")
    if n_items > T.shape[1]:  # a larger catalogue than test's columns: ids beyond them are misses
        T = sp.csr_matrix((T.data, T.indices, T.indptr), shape=(T.shape[0], n_items))
    n_test = np.diff(T.indptr)
    pu = _per_user_metrics_native(rec, np.arange(rec.shape[0]), T, ks)
    valid = n_test > 0
    if per_user:
        frames = [pd.DataFrame({"user": np.flatnonzero(valid), "metric": name, "k": kk,
                                "value": v[valid]}) for (name, kk), v in pu.items()]
        return pd.concat(frames, ignore_index=True)
    return _summarise(pu, rec[valid], int(valid.sum()), ks, n_items, item_popularity)


def _summarise(pu: dict[tuple[str, int], np.ndarray], rec_valid: np.ndarray, n_users: int,
               ks: tuple[int, ...], n_items: int, item_popularity: Any | None) -> pd.DataFrame:
    rows = []
    for kk in ks:
        for name in _USER_METRICS:
            v = pu[(name, kk)]
            rows.append((name, kk, float(np.nanmean(v)) if n_users else float("nan"), n_users))
        cov, pop = _list_metrics(rec_valid, kk, n_items, item_popularity)
        rows.append(("coverage", kk, cov, n_users))
        rows.append(("mean_popularity", kk, pop, n_users))
    df = pd.DataFrame(rows, columns=["metric", "k", "value", "n_users"])
    order = {m: i for i, m in enumerate(METRICS)}
    df = df.sort_values(["metric", "k"], key=lambda s: s.map(order) if s.name == "metric" else s)
    return df.reset_index(drop=True)
