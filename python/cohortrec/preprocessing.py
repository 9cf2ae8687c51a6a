"""Cleaning, weighting, normalisation and per-user behavioural features.

The first stage of group discovery: clean the raw events (each step reports
how many rows it touched), turn interaction strength into weights suited to
the encoder, and summarise every user's behaviour (activity, frequency,
recency, dwell time, spend, category shares) for group profiles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cohortrec._validation import as_csr

if TYPE_CHECKING:
    from cohortrec.interactions import Interactions

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "clean_events",
    "weight",
    "normalize",
    "event_weighted",
    "user_features",
]

#: Event-type weights used by :func:`event_weighted`: purchase > cart > view.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "cart": 3.0, "purchase": 5.0}

_NEGATIVE_RULES = ("drop", "clip", "keep")


def clean_events(df: pd.DataFrame, *, negative: str = "drop") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean an event table with canonical column names.

    Steps, in order (each reports the rows it touched):

    1. **missing ids** - rows whose ``user_id`` or ``item_id`` is missing are
       dropped.
    2. **non-finite weight** - rows whose ``weight`` is NaN or infinite are
       dropped.
    3. **non-finite side values** - NaN/inf in ``dwell``, ``price``,
       ``quantity`` become NaN (kept; ignored by the per-user means).
    4. **negative values** - negative ``weight`` or ``quantity`` (returns,
       cancellations): ``negative="drop"`` drops the row, ``"clip"`` sets the
       value to 0, ``"keep"`` leaves it. Negative ``dwell`` or ``price``
       always becomes NaN.
    5. **duplicate events** - rows identical in every column (the same
       event logged twice) are dropped. Repeated events of one user-item
       pair that differ (time, type) are *not* dropped; they are summed into
       one matrix entry later.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``user_id``, ``item_id`` and any of ``weight``,
        ``timestamp``, ``event``, ``dwell``, ``quantity``, ``price``.
    negative : {"drop", "clip", "keep"}

    Returns
    -------
    clean : pandas.DataFrame
        A new table (the input is not modified).
    report : pandas.DataFrame
        Columns ``step``, ``rows_in``, ``rows_touched``, ``rule``.
    """
    if negative not in _NEGATIVE_RULES:
        raise ValueError(f"negative must be one of {_NEGATIVE_RULES}, got {negative!r}")
    for col in ("user_id", "item_id"):
        if col not in df.columns:
            raise ValueError(f"df must have a {col!r} column, got {list(df.columns)}")
    rows: list[dict[str, Any]] = []

    def log(step: str, n_in: int, touched: int, rule: str) -> None:
        rows.append({"step": step, "rows_in": n_in, "rows_touched": int(touched), "rule": rule})

    out = df.copy()
    bad = out["user_id"].isna().to_numpy() | out["item_id"].isna().to_numpy()
    log("missing ids", len(out), bad.sum(), "rows without user or item id dropped")
    out = out.loc[~bad]

    if "weight" in out.columns:
        w = pd.to_numeric(out["weight"], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(w)
        log("non-finite weight", len(out), bad.sum(), "rows with NaN/inf/non-numeric weight dropped")
        out = out.loc[~bad].assign(weight=w[~bad])

    touched = 0
    for col in ("dwell", "price", "quantity"):
        if col in out.columns:
            v = pd.to_numeric(out[col], errors="coerce").to_numpy(np.float64)
            bad = np.isinf(v)
            v = np.where(bad, np.nan, v)
            touched += int(bad.sum())
            out[col] = v
    if any(c in out.columns for c in ("dwell", "price", "quantity")):
        log("non-finite side values", len(out), touched, "inf in dwell/price/quantity set to NaN (ignored in means)")

    neg = np.zeros(len(out), dtype=bool)
    for col in ("weight", "quantity"):
        if col in out.columns:
            neg |= (out[col].to_numpy(np.float64) < 0)
    if "weight" in out.columns or "quantity" in out.columns:
        if negative == "drop":
            out = out.loc[~neg]
            rule = "rows with negative weight/quantity dropped"
        elif negative == "clip":
            for col in ("weight", "quantity"):
                if col in out.columns:
                    out[col] = out[col].clip(lower=0)
            rule = "negative weight/quantity clipped to 0"
        else:
            rule = "negative weight/quantity kept"
        log("negative values", len(neg), neg.sum(), rule)
    touched = 0
    for col in ("dwell", "price"):
        if col in out.columns:
            v = out[col].to_numpy(np.float64)
            bad = v < 0
            touched += int(bad.sum())
            if bad.any():
                out[col] = np.where(bad, np.nan, v)
    if "dwell" in out.columns or "price" in out.columns:
        log("negative dwell/price", len(out), touched, "negative dwell/price set to NaN")

    dup = _duplicated_rows(out)
    log("duplicate events", len(out), dup.sum(), "exact duplicate rows dropped")
    out = out.loc[~dup]
    if "timestamp" in out.columns and not pd.api.types.is_datetime64_any_dtype(out["timestamp"]):
        ts = out["timestamp"]
        if pd.api.types.is_numeric_dtype(ts):
            out["timestamp"] = pd.to_datetime(ts, unit="s")
        else:
            out["timestamp"] = pd.to_datetime(ts)
    return out.reset_index(drop=True), pd.DataFrame(rows)


def _duplicated_rows(df: pd.DataFrame) -> np.ndarray:
    """``df.duplicated().to_numpy()`` (keep the first of exact duplicates), faster for numeric columns.

    When every column is numeric or datetime (with no missing values, whose
    equality pandas treats specially), rows are hashed to 64 bits, sorted
    by hash (stably), and rows equal to their predecessor in that order are
    duplicates, checked column by column, so a hash collision can never drop
    a row. If colliding distinct rows interleave with duplicates, it falls back
    to pandas. Other frames go to pandas directly.
    """
    n = len(df)
    if n < 2:
        return np.zeros(n, dtype=bool)
    cols = []
    for c in df.columns:
        s = df[c]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s)) \
                or pd.api.types.is_bool_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype) or s.isna().any():
            return df.duplicated().to_numpy()
        a = s.to_numpy()
        if a.dtype.kind == "M":
            a = a.view(np.int64)
        elif a.dtype.kind == "f":
            a = a.astype(np.float64)
            a = np.where(a == 0.0, 0.0, a).view(np.int64)  # -0.0 == 0.0
        else:
            a = a.astype(np.int64, copy=False)
        cols.append(a)
    h = _row_hash(cols, n)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    same_hash = hs[1:] == hs[:-1]
    equal = same_hash.copy()
    for a in cols:
        ao = a[order]
        equal &= ao[1:] == ao[:-1]
    if (same_hash & ~equal).any():  # a collision between distinct rows: let pandas decide
        return df.duplicated().to_numpy()
    dup = np.zeros(n, dtype=bool)
    dup[order[1:][equal]] = True  # a run of equal rows keeps its first (stable sort: earliest row)
    return dup


def _row_hash(cols: list[np.ndarray], n: int) -> np.ndarray:
    """64-bit hash of every row of int64 columns (splitmix-style mixing)."""
    h = np.full(n, 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for a in cols:
            x = a.view(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
            x ^= x >> np.uint64(31)
            h = (h ^ x) * np.uint64(0x94D049BB133111EB)
    return h


def _check_csr(X: Any, name: str = "X") -> sp.csr_matrix:
    X = as_csr(X, name, copy=True)  # callers weight it in place
    if X.nnz and X.data.min() < 0:
        raise ValueError(f"{name} must be non-negative for weighting")
    return X


def _matrix_of(X: Any) -> sp.csr_matrix:
    return X.matrix if hasattr(X, "matrix") and hasattr(X, "user_ids") else X


_SCHEMES = ("none", "binary", "log1p", "tfidf", "bm25")


def item_idf(X: sp.csr_matrix, scheme: str) -> np.ndarray:
    """Inverse document frequency of every item (column) of a users x items matrix.

    ``"tfidf"``: ``log((1 + n_users) / (1 + df)) + 1`` (scikit-learn's smooth
    idf); ``"bm25"``: ``log(1 + (n - df + 0.5) / (df + 0.5))`` (Okapi BM25).
    ``df`` counts the users with a stored entry for the item.
    """
    n = X.shape[0]
    df = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)
    if scheme == "tfidf":
        return np.log((1.0 + n) / (1.0 + df)) + 1.0
    if scheme == "bm25":
        return np.log1p((n - df + 0.5) / (df + 0.5))
    raise ValueError(f"scheme must be 'tfidf' or 'bm25', got {scheme!r}")


def weight(X: Any, scheme: str = "log1p", *, k1: float = 1.2, b: float = 0.75) -> sp.csr_matrix:
    """Reweight interaction strengths.

    Parameters
    ----------
    X : scipy.sparse matrix or Interactions, shape (n_users, n_items)
        Non-negative strengths (counts, summed event weights, ratings).
    scheme : {"none", "binary", "log1p", "tfidf", "bm25"}
        * ``binary``: 1 for every stored pair.
        * ``log1p``: ``log(1 + x)`` (damps heavy users and play counts).
        * ``tfidf``: ``log(1 + x) * idf(item)`` with
          ``idf = log((1 + n_users) / (1 + df)) + 1`` (scikit-learn's smooth
          idf), so rare items count more.
        * ``bm25``: Okapi BM25 term weight with user-length normalisation,
          ``x (k1 + 1) / (x + k1 (1 - b + b len/avglen)) * idf``, with
          ``idf = log(1 + (n - df + 0.5) / (df + 0.5))``.
    k1, b : float
        BM25 parameters.

    Returns
    -------
    scipy.sparse.csr_matrix
        A new matrix; stored zeros are removed.
    """
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {_SCHEMES}, got {scheme!r}")
    X = _check_csr(_matrix_of(X))
    X.eliminate_zeros()
    n = X.shape[0]
    if scheme == "none":
        return X
    if scheme == "binary":
        X.data[:] = 1
        return X
    if scheme == "log1p":
        np.log1p(X.data, out=X.data)
        return X
    if scheme == "tfidf":
        idf = item_idf(X, "tfidf")
        np.log1p(X.data, out=X.data)
        X.data *= idf[X.indices].astype(X.dtype)
        return X
    if not (k1 >= 0 and 0 <= b <= 1):
        raise ValueError(f"bm25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
    idf = item_idf(X, "bm25")
    length = np.asarray(X.sum(axis=1)).ravel()
    avg = length.mean() if n and length.mean() > 0 else 1.0
    norm = k1 * (1.0 - b + b * length / avg)
    row_norm = np.repeat(norm, np.diff(X.indptr))
    x = X.data.astype(np.float64)
    X.data[:] = x * (k1 + 1.0) / (x + row_norm) * idf[X.indices]
    return X


def normalize(X: Any, norm: str = "l2") -> Any:
    """Scale every row to unit ``l2``/``l1``/``max`` norm (all-zero rows stay zero).

    Accepts a sparse matrix, an Interactions (its matrix is used) or a dense array.
    """
    if norm not in ("l1", "l2", "max"):
        raise ValueError(f"norm must be 'l1', 'l2' or 'max', got {norm!r}")
    X = _matrix_of(X)
    if sp.issparse(X):
        X = sp.csr_matrix(X, copy=True)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        a = abs(X)
        if norm == "l2":
            s = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        elif norm == "l1":
            s = np.asarray(a.sum(axis=1)).ravel()
        else:
            s = np.asarray(a.max(axis=1).toarray()).ravel()
        inv = np.divide(1.0, s, out=np.zeros_like(s, dtype=np.float64), where=s > 0)
        X.data *= np.repeat(inv, np.diff(X.indptr)).astype(X.dtype)
        return X
    A = np.asarray(X)
    if A.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {A.shape}")
    A = A.astype(np.result_type(A.dtype, np.float32), copy=True)
    if norm == "l2":
        s = np.sqrt((A * A).sum(axis=1))
    elif norm == "l1":
        s = np.abs(A).sum(axis=1)
    else:
        s = np.abs(A).max(axis=1) if A.shape[1] else np.zeros(A.shape[0])
    s = np.where(s > 0, s, 1.0)
    A /= s[:, None].astype(A.dtype)
    return A


def event_weighted(
    interactions: Interactions,
    weights: Mapping[str, float] | None = None,
    *,
    value: str | None = None,
) -> sp.csr_matrix:
    """User x item matrix with events weighted by type (purchase > cart > view).

    Parameters
    ----------
    interactions : Interactions
        Must hold events with an ``event`` column.
    weights : mapping, optional
        Weight per event type, default :data:`DEFAULT_EVENT_WEIGHTS`; other
        types weigh 0.
    value : str, optional
        Per-event column to multiply by (e.g. ``"quantity"``); NaN counts 1.
    """
    ev = interactions.events
    if ev is None or "event" not in ev.columns:
        raise ValueError("interactions must hold events with an 'event' column (use keep_events=True and event=...)")
    weights = DEFAULT_EVENT_WEIGHTS if weights is None else dict(weights)
    w = ev["event"].map(weights).fillna(0.0).to_numpy(np.float64)
    if value is not None:
        if value not in ev.columns:
            raise ValueError(f"value={value!r} is not an event column ({list(ev.columns)})")
        v = ev[value].to_numpy(np.float64)
        w = w * np.where(np.isnan(v), 1.0, v)
    M = sp.csr_matrix((w, (ev["user"].to_numpy(), ev["item"].to_numpy())), shape=interactions.shape)
    M.sum_duplicates()
    M.eliminate_zeros()
    return M.astype(np.float32)


def _group_mean(idx: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    ok = ~np.isnan(v)
    s = np.bincount(idx[ok], weights=v[ok], minlength=n)
    c = np.bincount(idx[ok], minlength=n)
    return np.divide(s, c, out=np.full(n, np.nan), where=c > 0)


def user_features(
    interactions: Interactions,
    *,
    now: Any | None = None,
    categories: str | None = "categories",
    category_shares: bool = True,
) -> pd.DataFrame:
    """Per-user behavioural features (the inputs of group profiles).

    Columns (those whose data is present):

    * ``n_events``, ``n_items`` - activity (events; distinct items);
    * ``n_<type>`` for every event type, and ``conversion`` =
      purchases / views when both exist;
    * ``active_days`` (span first-to-last event, at least 1 day),
      ``events_per_day`` (frequency), ``recency_days`` (``now`` minus the
      last event; ``now`` defaults to the latest event in the data);
    * ``mean_weight`` (e.g. the mean rating, when events carry a weight);
    * ``mean_dwell`` (over events with a dwell time);
    * ``total_spend`` and ``mean_spend`` (``price * quantity`` summed over
      purchase events, or over all events when there are no event types;
      mean per purchase);
    * ``mean_value`` - the mean matrix value (e.g. mean rating) when there
      are no events;
    * ``cat_<name>`` - the share of the user's interactions falling in each
      item category (``category_shares=True`` and item categories present).

    Parameters
    ----------
    interactions : Interactions
    now : datetime-like, optional
    categories : str or None
        Item side-data column with categories.
    category_shares : bool, default True

    Returns
    -------
    pandas.DataFrame
        Indexed by external user id, in row order.
    """
    X = interactions.matrix
    n = interactions.n_users
    out: dict[str, np.ndarray] = {}
    ev = interactions.events
    if ev is not None and len(ev):
        u = ev["user"].to_numpy()
        out["n_events"] = np.bincount(u, minlength=n).astype(np.float64)
        out["n_items"] = np.diff(X.indptr).astype(np.float64)
        types = None
        if "event" in ev.columns:
            types = ev["event"].astype(str).to_numpy()
            for t in sorted(set(types)):
                out[f"n_{t}"] = np.bincount(u[types == t], minlength=n).astype(np.float64)
            if "n_view" in out and "n_purchase" in out:
                out["conversion"] = np.divide(out["n_purchase"], out["n_view"],
                                              out=np.zeros(n), where=out["n_view"] > 0)
        if "timestamp" in ev.columns:
            ts = pd.to_datetime(ev["timestamp"]).to_numpy("datetime64[s]").astype(np.int64).astype(np.float64)
            first = np.full(n, np.inf)
            last = np.full(n, -np.inf)
            np.minimum.at(first, u, ts)
            np.maximum.at(last, u, ts)
            ref = ts.max() if now is None else float(pd.Timestamp(now).timestamp())
            has = np.isfinite(first)
            span = np.where(has, np.maximum((last - first) / 86400.0, 1.0), np.nan)
            out["active_days"] = span
            out["events_per_day"] = np.where(has, out["n_events"] / np.where(has, span, 1.0), np.nan)
            out["recency_days"] = np.where(has, (ref - np.where(has, last, 0.0)) / 86400.0, np.nan)
        if "weight" in ev.columns:
            out["mean_weight"] = _group_mean(u, ev["weight"].to_numpy(np.float64), n)
        if "dwell" in ev.columns:
            out["mean_dwell"] = _group_mean(u, ev["dwell"].to_numpy(np.float64), n)
        if "price" in ev.columns:
            price = ev["price"].to_numpy(np.float64)
            qty = ev["quantity"].to_numpy(np.float64) if "quantity" in ev.columns else np.ones(len(ev))
            qty = np.where(np.isnan(qty), 1.0, qty)
            sel = (types == "purchase") if types is not None and (types == "purchase").any() else np.ones(len(ev), bool)
            amount = np.where(np.isnan(price), 0.0, price) * qty
            total = np.bincount(u[sel], weights=amount[sel], minlength=n)
            cnt = np.bincount(u[sel], minlength=n)
            out["total_spend"] = total
            out["mean_spend"] = np.divide(total, cnt, out=np.zeros(n), where=cnt > 0)
    else:
        out["n_items"] = np.diff(X.indptr).astype(np.float64)
        s = np.asarray(X.sum(axis=1)).ravel()
        out["mean_value"] = np.divide(s, out["n_items"], out=np.zeros(n), where=out["n_items"] > 0)
    if category_shares and categories is not None:
        C, names = interactions.item_categories(categories)
        if names:
            B = X.copy()
            B.data[:] = 1.0
            counts = np.asarray((B @ C).todense(), dtype=np.float64)
            tot = counts.sum(axis=1, keepdims=True)
            shares = np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)
            for j, name in enumerate(names):
                out[f"cat_{name}"] = shares[:, j]
    return pd.DataFrame(out, index=interactions.user_ids)
