"""Evaluate a fitted recommender: batched full ranking with training items excluded."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cohortrec import ops
from cohortrec._validation import as_csr
from cohortrec.evaluation._metrics import (
    METRICS,
    _check_ks,
    _per_user_metrics_native,
)

__all__ = ["evaluate", "evaluate_by_group"]

_USER_METRICS = METRICS[:6]


def _csr(X: Any, name: str) -> sp.csr_matrix:
    if not sp.issparse(X):
        raise TypeError(f"{name} must be a scipy.sparse matrix (users x items), got {type(X).__name__}")
    return as_csr(X, name, dtype=X.dtype)


def _recommend_all(model: Any, train: sp.csr_matrix, users: np.ndarray, kmax: int, batch_size: int,
                   recalculate_user: bool) -> tuple[np.ndarray, float]:
    """Recommendation lists (int32 or int64, -1 padded) of ``users``, batched.

    Also returns the wall seconds spent inside ``model.recommend``.
    """
    n_items = train.shape[1]
    width = min(kmax, n_items)
    recs = np.full((len(users), width), -1, dtype=np.int32 if n_items <= np.iinfo(np.int32).max else np.int64)
    in_model = 0.0
    for s in range(0, len(users), batch_size):
        b = users[s:s + batch_size]
        rows = train[b]
        t = time.perf_counter()
        ids, _ = model.recommend(b, rows, N=width, filter_already_liked_items=True,
                                 recalculate_user=recalculate_user)
        in_model += time.perf_counter() - t
        ids = np.asarray(ids)
        if ids.ndim == 1:  # a model answering a 1-user batch with 1-D arrays
            ids = ids[None, :]
        w = min(ids.shape[1], width)
        if ids.size and ids.max() >= n_items:
            raise ValueError(f"model.recommend returned item id {ids.max()} >= n_items={n_items}")
        recs[s:s + len(b), :w] = ids[:, :w]
    return recs, in_model


def evaluate(
    model: Any,
    train: Any,
    test: Any,
    k: int | Iterable[int] = (10, 20, 100),
    *,
    users: Any | None = None,
    groups: Any | None = None,
    recalculate_user: bool = False,
    item_popularity: Any | None = None,
    batch_size: int = 4096,
    per_user: bool = False,
    timings: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Full-ranking top-k evaluation of a fitted model.

    Every evaluated user's items in ``train`` are excluded from the ranking
    (``filter_already_liked_items=True``); all other items are candidates.
    Users are processed in batches through ``model.recommend(userids,
    train[userids], N=max(k))``, so any model with implicit's call
    convention (cohortrec or implicit) can be evaluated.

    Parameters
    ----------
    model : fitted recommender
    train : scipy.sparse matrix, shape (n_users, n_items)
        What the model saw for each user (training matrix, or the fold-in
        matrix with ``recalculate_user=True``).
    test : scipy.sparse matrix, same shape
        Held-out interactions; users without any are skipped.
    k : int or sequence of int, default (10, 20, 100)
    users : array-like of int, optional
        Evaluate only these users (default: every user with test items).
    groups : array-like of shape (n_users,), optional
        A group label per user: the metrics are then reported per group
        (see :func:`evaluate_by_group`).
    recalculate_user : bool, default False
        Ask the model to compute users from ``train`` rows (held-out users;
        see :func:`~cohortrec.evaluation.user_holdout`).
    item_popularity : array-like of shape (n_items,), optional
        For ``mean_popularity``; default: the fraction of training users
        (rows of ``train``) who interacted with each item.
    batch_size : int, default 4096
    per_user : bool, default False
        Return the user-level metrics of every user instead of means.
    timings : dict, optional
        Filled with ``"recommend_s"`` (wall seconds inside
        ``model.recommend``) and ``"metrics_s"`` (everything else: slicing,
        hits, metrics).

    Returns
    -------
    pandas.DataFrame
        Tidy table with columns ``metric``, ``k``, ``value``, ``n_users``
        (plus ``group`` first when ``groups`` is given; plus ``user`` and
        no ``n_users`` with ``per_user=True``). Metric definitions: see
        :func:`~cohortrec.evaluation.ranking_metrics`.

    Notes
    -----
    Only the ``(users, max(k))`` recommendation lists are kept in memory.
    The hits are never materialised: one native pass marks each user's
    test items in a per-thread array and sums the hits, DCG and AP terms
    at every cut-off (the same floating-point operations, in the same
    order, as :func:`~cohortrec.evaluation.per_user_metrics` on
    :func:`~cohortrec.evaluation.hits_matrix`); coverage
    and mean popularity come from native per-item counts of the lists.

    Examples
    --------
    >>> from cohortrec.evaluation import evaluate, random_holdout
    >>> train, test = random_holdout(X, 0.2, random_state=0)  # doctest: +SKIP
    >>> evaluate(model.fit(train), train, test, k=10)          # doctest: +SKIP
    """
    ks = _check_ks(k)
    tr = _csr(train, "train")
    te = _csr(test, "test")
    if tr.shape != te.shape:
        raise ValueError(f"train and test must have the same shape, got {tr.shape} and {te.shape}")
    te = te.copy()
    te.eliminate_zeros()
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    n_users, n_items = tr.shape
    n_test = np.diff(te.indptr)
    if users is None:
        ev = np.flatnonzero(n_test > 0)
    else:
        ev = np.unique(np.asarray(users, dtype=np.int64))
        if ev.size and (ev.min() < 0 or ev.max() >= n_users):
            raise IndexError(f"users must be row ids in [0, {n_users})")
        ev = ev[n_test[ev] > 0]
    if item_popularity is None:
        item_popularity = np.bincount(tr.indices, minlength=n_items) / max(n_users, 1)
    else:
        item_popularity = np.asarray(item_popularity, dtype=np.float64)
        if item_popularity.shape != (n_items,):
            raise ValueError(f"item_popularity must have shape ({n_items},), got {item_popularity.shape}")
    labels = None
    if groups is not None:
        labels = np.asarray(groups)
        if labels.shape != (n_users,):
            raise ValueError(f"groups must hold one label per user, shape ({n_users},), got {labels.shape}")

    t0 = time.perf_counter()
    recs, in_model = _recommend_all(model, tr, ev, max(ks), int(batch_size), recalculate_user)
    pu = _per_user_metrics_native(recs, ev, te, ks)
    if per_user:
        frames = [pd.DataFrame({"user": ev, "metric": name, "k": kk, "value": v})
                  for (name, kk), v in pu.items()]
        out = pd.concat(frames, ignore_index=True)
        if labels is not None:
            out.insert(0, "group", labels[out["user"].to_numpy()])
    elif labels is None:
        out = _table(pu, recs, np.ones(len(ev), bool), ks, n_items, item_popularity)
    else:
        lab = labels[ev]
        parts = []
        for g in pd.unique(lab):
            sel = lab == g
            t = _table(pu, recs, sel, ks, n_items, item_popularity)
            t.insert(0, "group", g)
            parts.append(t)
        out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["group", "metric", "k", "value", "n_users"])
        out = out.sort_values("group", kind="stable").reset_index(drop=True)
    if timings is not None:
        total = time.perf_counter() - t0
        timings["recommend_s"] = in_model
        timings["metrics_s"] = total - in_model
    return out


def _table(pu: dict[tuple[str, int], np.ndarray], recs: np.ndarray, sel: np.ndarray,
           ks: tuple[int, ...], n_items: int, item_popularity: np.ndarray) -> pd.DataFrame:
    n = int(sel.sum())
    sub = recs if sel.all() else recs[sel]
    lists = _list_metrics_nested(sub, ks, n_items, item_popularity)
    rows = []
    for name in METRICS:
        for kk in ks:
            if name in _USER_METRICS:
                val = float(pu[(name, kk)][sel].mean()) if n else float("nan")
            else:
                val = lists[kk][0] if name == "coverage" else lists[kk][1]
            rows.append((name, kk, val, n))
    return pd.DataFrame(rows, columns=["metric", "k", "value", "n_users"])


def _list_metrics_nested(recs: np.ndarray, ks: tuple[int, ...], n_items: int,
                         item_popularity: np.ndarray) -> dict[int, tuple[float, float]]:
    """(coverage, mean popularity) at every k, reading each list column once.

    One native pass counts every item's occurrences in the column blocks
    ``[0, k1), [k1, k2), ...``; the running sums over the blocks give the
    values at each cut-off.
    """
    pop = np.asarray(item_popularity, dtype=np.float64)
    order = sorted(ks)
    cuts = np.zeros(len(order) + 1, dtype=np.int64)
    for i, kk in enumerate(order):
        cuts[i + 1] = max(cuts[i], min(kk, recs.shape[1]))
    counts = ops.item_counts(recs, cuts, int(n_items))
    seen = np.zeros(n_items, dtype=bool)
    pop_sum, count = 0.0, 0
    out = {}
    for kk, c in zip(order, counts):
        seen |= c > 0
        pop_sum += float(c @ pop) if n_items else 0.0
        count += int(c.sum())
        out[kk] = (int(seen.sum()) / n_items if n_items else float("nan"),
                   pop_sum / count if count else float("nan"))
    return out


def evaluate_by_group(
    model: Any,
    train: Any,
    test: Any,
    groups: Any,
    k: int | Iterable[int] = (10, 20, 100),
    **kwargs: Any,
) -> pd.DataFrame:
    """The metrics of :func:`evaluate` broken down by user group.

    Parameters
    ----------
    model, train, test, k
        As in :func:`evaluate`.
    groups : array-like of shape (n_users,)
        Group label of every user (e.g. ``GroupRecommender.labels_`` or a
        clusterer's ``labels_``).
    **kwargs
        Passed to :func:`evaluate`.

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``metric``, ``k``, ``value``, ``n_users``; the
        coverage of a group is over the lists of its users.
    """
    return evaluate(model, train, test, k, groups=groups, **kwargs)
