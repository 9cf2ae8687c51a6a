"""Train/test splits of a users x items matrix."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec._validation import as_csr, as_generator

__all__ = ["UserHoldout", "leave_last_out", "random_holdout", "user_holdout"]


def _as_csr(X: Any, name: str = "user_items") -> sp.csr_matrix:
    if not sp.issparse(X):
        raise TypeError(f"{name} must be a scipy.sparse matrix (users x items), got {type(X).__name__}")
    M = as_csr(X, name, dtype=X.dtype, copy=True)
    M.eliminate_zeros()
    return M


def _check_fraction(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")
    return value


def _check_min_items(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < 2:
        raise ValueError(f"min_items must be an integer >= 2 (one item to train, one to test), got {value!r}")
    return int(value)


def _split_by_mask(X: sp.csr_matrix, test_mask: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))

    def build(sel: np.ndarray) -> sp.csr_matrix:
        counts = np.bincount(rows[sel], minlength=X.shape[0])
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return sp.csr_matrix((X.data[sel], X.indices[sel], indptr), shape=X.shape)

    return build(~test_mask), build(test_mask)


def _rank_within_rows(X: sp.csr_matrix, key: np.ndarray) -> np.ndarray:
    """Rank (0 = smallest key) of every stored entry within its row."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    order = np.lexsort((X.indices, key, rows))  # by row, then key, then item id
    rank = np.empty(X.nnz, dtype=np.int64)
    rank[order] = np.arange(X.nnz) - X.indptr[rows[order]]
    return rank


def random_holdout(
    user_items: Any,
    test_fraction: float = 0.2,
    *,
    min_items: int = 2,
    random_state: Any = None,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per-user random holdout.

    Every user with at least ``min_items`` interactions has
    ``round(test_fraction * n_u)`` of them (at least 1, at most ``n_u - 1``)
    moved to the test matrix at random; other users stay in train only.

    Parameters
    ----------
    user_items : scipy.sparse matrix, shape (n_users, n_items)
    test_fraction : float, default 0.2
    min_items : int, default 2
        Users with fewer interactions get no test items.
    random_state : int, numpy Generator or None

    Returns
    -------
    train, test : scipy.sparse.csr_matrix
        Same shape as ``user_items``; together they hold every interaction
        exactly once.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from cohortrec.evaluation import random_holdout
    >>> X = sp.random(100, 50, density=0.2, format="csr", random_state=0)
    >>> train, test = random_holdout(X, 0.2, random_state=0)
    >>> (train + test - X).nnz
    0
    """
    X = _as_csr(user_items)
    frac = _check_fraction(test_fraction, "test_fraction")
    min_items = _check_min_items(min_items)
    rng = as_generator(random_state)
    n_u = np.diff(X.indptr)
    n_test = np.where(n_u >= min_items,
                      np.clip(np.floor(frac * n_u + 0.5), 1, np.maximum(n_u - 1, 1)), 0).astype(np.int64)
    rows = np.repeat(np.arange(X.shape[0]), n_u)
    # rank of a uniform random key within each row: one argsort of row + U[0, 1)
    order = np.argsort(rows + rng.random(X.nnz), kind="stable")
    rank = np.empty(X.nnz, dtype=np.int64)
    rank[order] = np.arange(X.nnz) - X.indptr[rows[order]]
    return _split_by_mask(X, rank < n_test[rows])


def leave_last_out(
    user_items: Any,
    timestamps: Any,
    n: int = 1,
    *,
    min_items: int = 2,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per-user temporal split: each user's ``n`` latest interactions are the test set.

    Parameters
    ----------
    user_items : scipy.sparse matrix, shape (n_users, n_items)
    timestamps : scipy.sparse matrix of the same shape and pattern, or array
        The time of every interaction: a sparse matrix storing a time at
        every stored entry of ``user_items`` (e.g. ``Dataset.timestamps``),
        or a 1-D array aligned with the canonical CSR data of
        ``user_items``. Ties are broken by the larger item id being later.
    n : int, default 1
    min_items : int, default 2
        Users need at least ``max(min_items, n + 1)`` interactions to get
        a test set.

    Returns
    -------
    train, test : scipy.sparse.csr_matrix
    """
    X = _as_csr(user_items)
    if isinstance(n, bool) or not isinstance(n, (numbers.Integral, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    min_items = max(_check_min_items(min_items), int(n) + 1)
    if sp.issparse(timestamps):
        T = sp.csr_matrix(timestamps, copy=True)
        T.sum_duplicates()
        if T.shape != X.shape:
            raise ValueError(f"timestamps must have the shape of user_items {X.shape}, got {T.shape}")
        # look up the time of every stored entry of X (missing -> error)
        keys_x = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr)) * X.shape[1] + X.indices
        keys_t = np.repeat(np.arange(T.shape[0], dtype=np.int64), np.diff(T.indptr)) * T.shape[1] + T.indices
        pos = np.searchsorted(keys_t, keys_x)
        ok = pos < len(keys_t)
        ok[ok] = keys_t[pos[ok]] == keys_x[ok]
        if not ok.all():
            raise ValueError("timestamps must store a time for every interaction of user_items; "
                             f"{int((~ok).sum())} are missing")
        t = np.asarray(T.data[pos], dtype=np.float64)
    else:
        t = np.asarray(timestamps, dtype=np.float64).ravel()
        if t.shape != (X.nnz,):
            raise ValueError(f"timestamps must be a sparse matrix like user_items or an array of "
                             f"{X.nnz} times (one per interaction), got shape {np.shape(timestamps)}")
    if t.size and not np.isfinite(t).all():
        raise ValueError("timestamps contains NaN or infinite values")
    n_u = np.diff(X.indptr)
    rank_from_end = (n_u[np.repeat(np.arange(X.shape[0]), n_u)] - 1) - _rank_within_rows(X, t)
    eligible = (n_u >= min_items)[np.repeat(np.arange(X.shape[0]), n_u)]
    return _split_by_mask(X, eligible & (rank_from_end < n))


@dataclass(frozen=True)
class UserHoldout:
    """Result of :func:`user_holdout` (strong generalisation).

    Attributes
    ----------
    train : scipy.sparse.csr_matrix
        Interactions of the training users (test users' rows are empty).
    fold_in : scipy.sparse.csr_matrix
        The part of each test user's interactions the model may see.
    test : scipy.sparse.csr_matrix
        The rest of each test user's interactions, to predict.
    test_users : ndarray of int64
        Row ids of the held-out users (sorted).
    """

    train: sp.csr_matrix
    fold_in: sp.csr_matrix
    test: sp.csr_matrix
    test_users: np.ndarray


def user_holdout(
    user_items: Any,
    test_users: float | Any = 0.2,
    fold_in_fraction: float = 0.8,
    *,
    min_items: int = 2,
    random_state: Any = None,
) -> UserHoldout:
    """Held-out users (strong generalisation).

    The model is trained on some users; for each held-out user it is given
    ``fold_in_fraction`` of the user's interactions (fold-in) and must
    predict the rest. Evaluate with
    ``evaluate(model, split.fold_in, split.test, users=split.test_users,
    recalculate_user=True)``.

    Parameters
    ----------
    user_items : scipy.sparse matrix, shape (n_users, n_items)
    test_users : float, int or array-like of int, default 0.2
        Fraction of the eligible users, their number, or their ids.
    fold_in_fraction : float, default 0.8
    min_items : int, default 2
        Only users with at least this many interactions can be held out.
    random_state : int, numpy Generator or None

    Returns
    -------
    UserHoldout
        All matrices keep the shape of ``user_items`` (row ids unchanged).
    """
    X = _as_csr(user_items)
    min_items = _check_min_items(min_items)
    keep_frac = _check_fraction(fold_in_fraction, "fold_in_fraction")
    rng = as_generator(random_state)
    n_u = np.diff(X.indptr)
    eligible = np.flatnonzero(n_u >= min_items)
    if isinstance(test_users, (float, np.floating)):
        frac = _check_fraction(test_users, "test_users")
        chosen = rng.choice(eligible, size=round(frac * len(eligible)), replace=False)
    elif isinstance(test_users, (numbers.Integral, np.integer)) and not isinstance(test_users, bool):
        if not 0 <= test_users <= len(eligible):
            raise ValueError(f"test_users={test_users} but only {len(eligible)} users have "
                             f">= {min_items} interactions")
        chosen = rng.choice(eligible, size=int(test_users), replace=False)
    else:
        chosen = np.unique(np.asarray(test_users, dtype=np.int64))
        if chosen.size and (chosen.min() < 0 or chosen.max() >= X.shape[0]):
            raise IndexError(f"test_users must be row ids in [0, {X.shape[0]})")
        short = chosen[n_u[chosen] < min_items]
        if short.size:
            raise ValueError(f"test users need >= {min_items} interactions; user {short[0]} has {n_u[short[0]]}")
    chosen = np.sort(chosen.astype(np.int64))
    is_test = np.zeros(X.shape[0], dtype=bool)
    is_test[chosen] = True
    rows = np.repeat(np.arange(X.shape[0]), n_u)
    entry_test_user = is_test[rows]
    train, held = _split_by_mask(X, entry_test_user)
    fold_in, test = random_holdout(held, 1.0 - keep_frac, min_items=2, random_state=rng) \
        if held.nnz else (held, held.copy())
    return UserHoldout(train=train, fold_in=fold_in, test=test, test_users=chosen)
