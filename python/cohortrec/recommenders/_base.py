"""Common base of the recommenders: input checking, filtering, batching, save/load.

Call conventions follow :mod:`implicit` (``fit(user_items)``,
``recommend(userid, user_items, N=10, filter_already_liked_items=True,
filter_items=None, recalculate_user=False, items=None)``, ``similar_users``,
``similar_items``, ``save``/``load``), so a user of implicit can switch by
changing an import. Every model validates its inputs here, the same way.
"""

from __future__ import annotations

import io
import operator
import os
import threading
import warnings
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from cohortrec import ops
from cohortrec._errors import NotFittedError
from cohortrec._io import check_header, csr_from_arrays, csr_to_arrays, read_npz, require, write_npz
from cohortrec._validation import check_int, check_sparse_structure
from cohortrec.ops import resolve_device, resolve_threads

__all__ = ["NotFittedError", "RecommenderBase", "RecommenderWarning", "load_model"]

_FORMAT_VERSION = 1
_REGISTRY: dict[str, type[RecommenderBase]] = {}
#: guards the lazily built serving caches (built once per fitted state)
_SERVE_LOCK = threading.RLock()


class RecommenderWarning(UserWarning):
    """Warns about an input that was accepted after a conversion (e.g. COO to CSR)."""


# ---------------------------------------------------------------------------
# input checking
# ---------------------------------------------------------------------------
def check_user_items(X: Any, name: str = "user_items", *, n_items: int | None = None,
                     stacklevel: int = 3) -> sp.csr_matrix:
    """A canonical float32 CSR matrix from ``X`` (users x items).

    Non-CSR sparse input and dense arrays are converted with a
    :class:`RecommenderWarning`; wrong dimensionality, a wrong number of
    columns, non-numeric or non-finite values raise.
    """
    if sp.issparse(X):
        check_sparse_structure(X, name)  # before SciPy walks a corrupt indptr
    if isinstance(X, (sp.csr_matrix, sp.csr_array)):
        pass
    elif sp.issparse(X):
        warnings.warn(f"{name} should be a scipy.sparse CSR matrix (users x items), got "
                      f"{X.format.upper()}; converting to CSR", RecommenderWarning,
                      stacklevel=stacklevel)
        X = X.tocsr()
    elif isinstance(X, np.ndarray) or hasattr(X, "__array__"):
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-D users x items matrix, got shape {arr.shape}")
        warnings.warn(f"{name} should be a scipy.sparse CSR matrix (users x items), got a dense "
                      f"{type(X).__name__}; converting to CSR", RecommenderWarning,
                      stacklevel=stacklevel)
        X = sp.csr_matrix(arr)
    else:
        raise TypeError(f"{name} must be a scipy.sparse CSR matrix (users x items), got "
                        f"{type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (users x items), got shape {X.shape}")
    dt = X.dtype
    if not (np.issubdtype(dt, np.floating) or np.issubdtype(dt, np.integer) or dt == np.bool_):
        raise TypeError(f"{name} must hold real numbers, got dtype {dt}")
    if n_items is not None and X.shape[1] != n_items:
        raise ValueError(f"{name} must have {n_items} columns (the items the model was fit on), "
                         f"got shape {X.shape}")
    X = sp.csr_matrix(X, dtype=np.float32, copy=False)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if X.nnz and not np.isfinite(X.data).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if X.nnz and not X.data.all():  # explicit zeros are not interactions
        X = X.copy()
        X.eliminate_zeros()
    return X


def _check_ids(ids: Any, name: str, upper: int | None, what: str) -> tuple[np.ndarray, bool]:
    """(1-D int64 ids, was_scalar); ``upper`` None means any id >= 0."""
    scalar = np.ndim(ids) == 0
    arr = np.atleast_1d(np.asarray(ids))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be an integer or a 1-D array of integers, got shape {arr.shape}")
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer {what} ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or (upper is not None and hi >= upper):
            bad = lo if lo < 0 else hi
            rng_txt = f"[0, {upper})" if upper is not None else ">= 0"
            raise IndexError(f"{name} contains {what} id {bad}, outside the valid range "
                             f"{rng_txt} of the {upper} {what}s the model was fit on"
                             if upper is not None else
                             f"{name} contains {what} id {bad}; ids must be {rng_txt}")
    return arr, scalar


def _checked_row(X: Any, r: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Row ``r`` of a user-given CSR matrix, its structure checked where it is read
    (the same errors as :func:`cohortrec._validation.check_csr_structure`)."""
    ptr, ind = X.indptr, X.indices
    if ptr.ndim != 1 or ptr.shape[0] != X.shape[0] + 1 or ind.shape != X.data.shape:
        check_sparse_structure(X, "user_items")  # raises with the full message
    if not np.issubdtype(ind.dtype, np.integer) or not np.issubdtype(ptr.dtype, np.integer):
        check_sparse_structure(X, "user_items")
    b, e = int(ptr[r]), int(ptr[r + 1])
    if not 0 <= b <= e <= ind.shape[0]:
        raise ValueError(f"user_items: indptr is corrupt at row {r} ({b}, {e}) for {ind.shape[0]} stored values")
    idx = ind[b:e]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n_items):
        raise ValueError(f"user_items: row {r} holds a column index outside [0, {n_items})")
    return idx, X.data[b:e]


#: per-instance caches of the serving path, never copied or pickled
_SERVING_CACHES = ("_serve_cache", "_row_server_hit", "_blend_server_hit")
#: a fitted model's count of attribute assignments: the row server found for one value stays valid while it holds
_STATE_VERSION = "_state_version"


def _same_source(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) != len(b):
            return False
        # the common case first, as a C-level loop: every part the same object (this runs on every request)
        return all(map(operator.is_, a, b)) or all(_same_source(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == b
    return a is b


def _scalar_id(value: Any, upper: int | None) -> int | None:
    """A scalar user id checked as :func:`_check_ids` would; None for the general path."""
    if type(value) is not int and not isinstance(value, np.integer):
        return None  # bools, other types, 0-d arrays: the general path (and its messages)
    v = int(value)
    if v < 0 or (upper is not None and v >= upper):
        return None
    return v


_INT32, _INT64, _INT32_MAX = np.dtype(np.int32), np.dtype(np.int64), int(np.iinfo(np.int32).max)


def _id_dtype(n: int) -> np.dtype:
    """int32 ids (as implicit returns them) unless they do not fit."""
    return np.dtype(np.int32) if n <= np.iinfo(np.int32).max else np.dtype(np.int64)


def _id_mask(n: int, include: Any, exclude: Any, names: tuple[str, str], what: str) -> np.ndarray | None:
    """Boolean candidate mask from an include list or an exclude list (not both)."""
    if include is not None and exclude is not None:
        raise ValueError(f"{names[0]} and {names[1]} cannot both be set")
    if include is None and exclude is None:
        return None
    ids, _ = _check_ids(include if include is not None else exclude,
                        names[0] if include is not None else names[1], n, what)
    mask = np.zeros(n, dtype=bool) if include is not None else np.ones(n, dtype=bool)
    mask[ids] = include is not None
    return mask


# ---------------------------------------------------------------------------
# small sparse helpers shared by the models
# ---------------------------------------------------------------------------
def mask_columns(M: sp.csr_matrix, keep: np.ndarray | None) -> sp.csr_matrix:
    """``M`` without the entries in columns where ``keep`` is False (same shape)."""
    if keep is None or keep.all():
        return M
    sel = keep[M.indices]
    counts = np.add.reduceat(sel.astype(np.int64), M.indptr[:-1]) if M.nnz else np.zeros(M.shape[0], np.int64)
    counts[np.diff(M.indptr) == 0] = 0  # reduceat quirk on empty rows
    indptr = np.zeros(M.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return sp.csr_matrix((M.data[sel], M.indices[sel], indptr), shape=M.shape)


def rows_of(M: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """Rows of ``M`` (CSR fancy indexing, canonical result)."""
    return M[rows] if len(rows) else sp.csr_matrix((0, M.shape[1]), dtype=M.dtype)


def scale_rows(M: sp.csr_matrix, factors: np.ndarray) -> sp.csr_matrix:
    out = M.copy()
    out.data = out.data * np.repeat(factors.astype(out.dtype), np.diff(out.indptr))
    return out


def dense_topn(scores: np.ndarray, n: int, exclude: sp.csr_matrix | None = None,
               keep: np.ndarray | None = None, n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` columns per row of a dense score matrix.

    Excluded entries (stored in ``exclude``) and columns where ``keep`` is
    False are never returned, nor are non-finite scores. Ties go to the
    smaller item id; rows with fewer than ``n`` candidates are padded with
    ``-1`` / ``-inf``. C-contiguous float32 ``scores`` go through a native
    kernel (one pass per row); other input is ranked with NumPy and
    modified in place.
    """
    u, m = scores.shape
    n = min(n, m)
    ids = np.full((u, n), -1, dtype=np.int64)
    out = np.full((u, n), -np.inf, dtype=np.float32)
    if u == 0 or n == 0:
        return ids, out
    if scores.dtype == np.float32 and scores.flags.c_contiguous and m <= 2**32:
        ops.dense_topn_into(scores, keep, exclude, ids, out, n_threads)
        return ids, out
    if keep is not None:
        scores[:, ~keep] = -np.inf
    if exclude is not None and exclude.nnz:
        r = np.repeat(np.arange(u), np.diff(exclude.indptr))
        scores[r, exclude.indices] = -np.inf
    if n < m:
        part = np.argpartition(scores, m - n, axis=1)[:, m - n:]  # n largest, any order
        thr = np.take_along_axis(scores, part, axis=1).min(axis=1)
        above = scores > thr[:, None]
        need = n - above.sum(axis=1)
        eq = scores == thr[:, None]
        sel = above | (eq & (np.cumsum(eq, axis=1) <= need[:, None]))  # ties: smallest ids
        cand = np.nonzero(sel)[1].reshape(u, n)
    else:
        cand = np.broadcast_to(np.arange(m), (u, m))
    cs = np.take_along_axis(scores, cand, axis=1)
    order = np.lexsort((cand, -cs), axis=1) if cand.size else cand
    ids[:] = np.take_along_axis(cand, order, axis=1)
    out[:] = np.take_along_axis(cs, order, axis=1)
    bad = ~np.isfinite(out)
    ids[bad] = -1
    out[bad] = -np.inf
    return ids, out


# ---------------------------------------------------------------------------
# the base class
# ---------------------------------------------------------------------------
class RecommenderBase(ABC):
    """Base of every cohortrec recommender (implicit-compatible API).

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"}, default "auto"
        Passed to the :mod:`cohortrec.ops` kernels; ``"cuda"`` raises
        :class:`cohortrec.DeviceUnavailableError` where an op has no CUDA
        kernel in this build.
    n_threads : int, optional
        CPU threads for the native kernels (all available cores by default).
    batch_size : int, default 2048
        Users scored per batch in :meth:`recommend`.

    Attributes
    ----------
    user_items_ : scipy.sparse.csr_matrix
        The (float32, canonical) training matrix, users x items.
    n_users_, n_items_ : int
    """

    #: names of ``__init__`` parameters, saved as JSON by :meth:`save`
    _param_names: ClassVar[tuple[str, ...]] = ()
    #: names of fitted attributes (arrays or CSR matrices) saved by :meth:`save`
    _state_names: ClassVar[tuple[str, ...]] = ("user_items_",)

    def __init__(self, *, device: str = "auto", n_threads: int | None = None,
                 batch_size: int = 2048) -> None:
        self.device = device
        self.n_threads = n_threads
        self.batch_size = batch_size

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    # -- parameters ---------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (a JSON-serialisable dict)."""
        names = self._param_names + ("device", "n_threads", "batch_size")
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _ops_kwargs(self) -> dict[str, Any]:
        return {"device": self.device, "n_threads": self.n_threads}

    def _check_device_dense(self, what: str) -> None:
        """Validate ``device`` for a step computed with NumPy on the CPU."""
        resolve_device(self.device, op=f"{type(self).__name__}.{what}", cuda_kernel=False)
        resolve_threads(self.n_threads)

    @property
    def n_users_(self) -> int:
        self._check_fitted()
        return self.user_items_.shape[0]

    @property
    def n_items_(self) -> int:
        self._check_fitted()
        return self.user_items_.shape[1]

    def _check_fitted(self) -> None:
        if getattr(self, "user_items_", None) is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(user_items) first")

    # -- fit ----------------------------------------------------------------
    def fit(self, user_items: Any, show_progress: bool = False) -> RecommenderBase:
        """Fit the model on a users x items matrix.

        Parameters
        ----------
        user_items : scipy.sparse.csr_matrix, shape (n_users, n_items)
            Interaction strengths (nonzero = the user interacted). Other
            sparse formats and dense arrays are converted with a
            :class:`RecommenderWarning`.
        show_progress : bool, default False
            Accepted for compatibility with implicit; unused.

        Returns
        -------
        self
        """
        check_int(self.batch_size, "batch_size", minimum=1)
        resolve_threads(self.n_threads)
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be one of ('auto', 'cpu', 'cuda'), got {self.device!r}")
        X = check_user_items(user_items)
        self._item_users_cache = None  # derived from the previous training matrix
        self.user_items_ = X
        self._fit(X)
        return self

    @abstractmethod
    def _fit(self, X: sp.csr_matrix) -> None:
        """Learn the model's state from the canonical training matrix."""

    # -- recommend ----------------------------------------------------------
    def recommend(
        self,
        userid: int | Any,
        user_items: Any | None = None,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: Any | None = None,
        recalculate_user: bool = False,
        items: Any | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``N`` items for one user or a batch of users.

        Parameters
        ----------
        userid : int or array-like of int
            One user id (1-D results) or an array of them (2-D results, one
            row per user, computed in batches without a Python loop per
            user).
        user_items : scipy.sparse.csr_matrix, optional
            The users' interactions: either one row per entry of ``userid``
            (implicit's convention) or the whole training-shaped matrix, from
            which the rows of ``userid`` are taken. Used to filter the items
            already liked and by models that score from a user's items
            (ItemKNN, EASE, and every model with ``recalculate_user=True``).
            ``None`` uses the rows of the training matrix.
        N : int, default 10
            Number of items returned (at most the number of candidate items).
        filter_already_liked_items : bool, default True
            Never return items stored in the user's row of ``user_items``.
        filter_items : array-like of int, optional
            Items never returned, for every user.
        recalculate_user : bool, default False
            Compute the user's representation from ``user_items`` instead of
            the state learned in :meth:`fit` (folding in new users). With it,
            ``userid`` may lie outside the training users.
        items : array-like of int, optional
            Rank only these items. Cannot be combined with ``filter_items``.

        Returns
        -------
        ids : ndarray of int32 (int64 for catalogues beyond 2**31 items)
        scores : ndarray of float32
            Best first (ties by smaller item id). For a single user, 1-D and
            holding only actual candidates; for an array of users, 2-D of
            width ``min(N, candidates)`` with rows padded with ``-1`` /
            ``-inf`` where a user has fewer candidates.
        """
        if (type(userid) is int and type(N) is int and filter_items is None and items is None
                and recalculate_user is False):
            # One user as implicit calls it: the bound native path (three scalars in, the GIL released). The
            # lookup of _row_server is inlined: with two threads every Python instruction here is time the
            # other thread may wait for the GIL (one more method call cut ItemKNN's 2-thread gain 1.75x -> 1.67x).
            d = self.__dict__
            hit = d.get("_row_server_hit")
            srv = hit[1] if hit is not None and hit[0] == d.get(_STATE_VERSION, 0) else self._row_server()
            if srv is not None:
                if user_items is None:
                    out = srv.topn(userid, N, bool(filter_already_liked_items))
                elif type(user_items) is sp.csr_matrix:
                    out = srv.topn_row(userid, user_items.indptr, user_items.indices, user_items.data,
                                       user_items.shape[0], user_items.shape[1], N, bool(filter_already_liked_items))
                else:
                    out = None
                if out is not None:
                    return out
        self._check_fitted()
        N = check_int(N, "N", minimum=0)
        if isinstance(userid, (int, np.integer)) or np.ndim(userid) == 0:
            one = self._recommend_one(userid, user_items, N, filter_already_liked_items, filter_items,
                                      recalculate_user, items)
            if one is not None:
                return one
        upper = None if recalculate_user else self.n_users_
        ids, scalar = _check_ids(userid, "userid", upper, "user")
        keep = _id_mask(self.n_items_, items, filter_items, ("items", "filter_items"), "item")
        rows = self._user_rows(ids, scalar, user_items,
                               required=recalculate_user and user_items is None)
        n_cand = self.n_items_ if keep is None else int(keep.sum())
        width = min(N, n_cand)
        out_ids = np.full((len(ids), width), -1, dtype=_id_dtype(self.n_items_))
        out_sc = np.full((len(ids), width), -np.inf, dtype=np.float32)
        bs = check_int(self.batch_size, "batch_size", minimum=1)
        if width > 0:
            for s in range(0, len(ids), bs):
                b_ids = ids[s:s + bs]
                b_rows = rows[s:s + bs]
                excl = b_rows if filter_already_liked_items else None
                bi, bsc = self._topn(b_ids, b_rows, width, excl, keep, bool(recalculate_user))
                out_ids[s:s + bs] = bi
                out_sc[s:s + bs] = bsc
        if scalar:
            valid = out_ids[0] >= 0
            return out_ids[0][valid], out_sc[0][valid]
        return out_ids, out_sc

    def _user_rows(self, ids: np.ndarray, scalar: bool, user_items: Any | None,
                   required: bool) -> sp.csr_matrix:
        """The interaction rows aligned with ``ids``."""
        if user_items is None:
            if required:
                raise ValueError("recalculate_user=True needs user_items: the interactions "
                                 "to compute the users' representation from")
            return rows_of(self.user_items_, ids)
        X = check_user_items(user_items, n_items=self.n_items_, stacklevel=4)
        if X.shape[0] == len(ids):
            return X
        if scalar:
            if ids[0] >= X.shape[0]:
                raise IndexError(f"userid {ids[0]} is out of range for user_items with "
                                 f"{X.shape[0]} rows")
            return rows_of(X, ids)
        if X.shape[0] == self.n_users_ and (ids < X.shape[0]).all():
            return rows_of(X, ids)
        raise ValueError(f"user_items must hold one row per userid ({len(ids)} rows) or be the "
                         f"full users x items matrix ({self.n_users_} rows), got shape {X.shape}")

    @abstractmethod
    def _topn(self, userids: np.ndarray, rows: sp.csr_matrix, n: int,
              exclude: sp.csr_matrix | None, keep: np.ndarray | None,
              recalculate: bool) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), shape (len(userids), n), padded -1 / -inf."""

    # -- per-request fast path ----------------------------------------------
    def _recommend_one(self, userid: Any, user_items: Any | None, N: int, filter_already_liked_items: bool,
                       filter_items: Any | None, recalculate_user: bool,
                       items: Any | None) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`recommend` for one scalar ``userid`` without the batch machinery.

        The same checks as the batch path, applied to what one user reads:
        the id, ``N``, the item filters, and ``user_items``' type, shape and
        dtype, with the values of the user's row checked (finite) instead of
        the whole matrix. Returns ``None`` where the batch path must decide
        (a conversion with a warning, a non-canonical row, a model without a
        per-user kernel), which then gives the same answer.
        """
        recalculate = bool(recalculate_user)
        uid = _scalar_id(userid, None if recalculate else self.n_users_)
        if uid is None:
            return None
        keep = _id_mask(self.n_items_, items, filter_items, ("items", "filter_items"), "item")
        row = self._user_row_one(uid, user_items, required=recalculate and user_items is None)
        if row is None:
            return None
        idx, val = row
        n_cand = self.n_items_ if keep is None else int(keep.sum())
        width = min(N, n_cand)
        id_dtype = _INT32 if self.n_items_ <= _INT32_MAX else _INT64
        if width == 0:
            return np.zeros(0, dtype=id_dtype), np.zeros(0, dtype=np.float32)
        out = self._topn_one(uid, idx, val, width, idx if filter_already_liked_items else None, keep, recalculate)
        if out is None:
            return None
        ids, sc = out
        valid = ids >= 0
        return ids[valid].astype(id_dtype, copy=False), sc[valid].astype(np.float32, copy=False)

    def _user_row_one(self, uid: int, user_items: Any | None,
                      required: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """(indices, float32 values) of the user's canonical row, or None to use the batch path."""
        if user_items is None:
            if required:
                raise ValueError("recalculate_user=True needs user_items: the interactions "
                                 "to compute the users' representation from")
            X = self.user_items_
            r = uid
        else:
            X = user_items
            if not isinstance(X, (sp.csr_matrix, sp.csr_array)) or X.ndim != 2:
                return None  # conversions (with their warnings) and errors: the batch path
            dt = X.dtype
            if not (np.issubdtype(dt, np.floating) or np.issubdtype(dt, np.integer) or dt == np.bool_):
                return None
            if X.shape[1] != self.n_items_:
                return None
            if X.shape[0] == 1:
                check_sparse_structure(X, "user_items")  # one row: the whole check is cheap
                r = 0
            elif uid < X.shape[0]:
                r = uid
            else:
                raise IndexError(f"userid {uid} is out of range for user_items with {X.shape[0]} rows")
        if user_items is None:
            b, e = int(X.indptr[r]), int(X.indptr[r + 1])
            return X.indices[b:e], X.data[b:e]
        idx, val = _checked_row(X, r, self.n_items_)
        if idx.size > 1 and not (idx[1:] > idx[:-1]).all():
            return None  # unsorted or duplicate entries: canonicalised by the batch path
        val = val.astype(np.float32, copy=False)
        if val.size and not np.isfinite(val).all():
            raise ValueError("user_items contains NaN or infinite values")
        if val.size and not val.all():  # explicit zeros are not interactions
            nz = val != 0
            idx, val = idx[nz], val[nz]
        return idx, val

    def _topn_one(self, userid: int, idx: np.ndarray, val: np.ndarray, n: int, exclude: np.ndarray | None,
                  keep: np.ndarray | None, recalculate: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """(ids, scores) of length ``n`` (padded -1 / -inf) for one user given as a row.

        The default builds a one-row matrix and calls :meth:`_topn`; models
        override it with a direct kernel call. ``None``: use the batch path.
        """
        m = self.n_items_
        row = sp.csr_matrix((val.astype(np.float32, copy=False), idx, np.array([0, idx.size])), shape=(1, m))
        excl = None
        if exclude is not None:
            excl = sp.csr_matrix((np.ones(exclude.size, np.float32), exclude, np.array([0, exclude.size])),
                                 shape=(1, m))
        ids, sc = self._topn(np.array([userid], dtype=np.int64), row, n, excl, keep, recalculate)
        return ids[0], sc[0]

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        self._bump_state()

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        self._bump_state()

    def _bump_state(self) -> None:
        # After the assignment, so that a request that read the previous count cannot keep a server built
        # from the previous arrays. Only once fitted: __init__ sets nothing but the parameters (scikit-learn).
        d = self.__dict__
        if "user_items_" in d:
            d[_STATE_VERSION] = d.get(_STATE_VERSION, 0) + 1

    def __getstate__(self) -> dict[str, Any]:
        # the serving caches are derived from the fitted arrays (and hold native objects that cannot be
        # copied): a deepcopy or an in-memory pickle drops them and the copy rebuilds them on first use
        state = self.__dict__.copy()
        for key in _SERVING_CACHES:
            state.pop(key, None)
        return state

    def _row_server(self) -> Any | None:
        """The model's arrays bound for one-user requests (:func:`cohortrec.ops.row_server`), or None.

        Built once per fitted state (see :meth:`_serve_cached`) from
        :meth:`_server_source` and :meth:`_make_server`; ``None`` before
        ``fit``, with ``device="cuda"`` and for models without one, which then
        take :meth:`_recommend_one` or the batch path.

        Every request asks for it: the answer is kept with the count of
        attribute assignments it was found at (one dict lookup per request
        instead of building and comparing the source tuple, a third of the
        Python time of a request). fit, load, the partial fits and a changed
        parameter assign attributes and so move the count; arrays changed in place are
        not seen (as :meth:`_serve_cached` does not see them).
        """
        d = self.__dict__
        version = d.get(_STATE_VERSION, 0)
        hit = d.get("_row_server_hit")
        if hit is not None and hit[0] == version:
            return hit[1]
        srv = None
        if d.get("user_items_") is not None and self.device != "cuda":
            source = self._server_source()
            if source is not None:
                srv = self._serve_cached("row_server", source, self._make_server)
        d["_row_server_hit"] = (version, srv)
        return srv

    def _server_source(self) -> Any | None:
        """The objects the row server is built from, as a tuple compared by identity (arrays and the
        parameter objects themselves, not converted copies), or None: no row server."""
        return None

    def _make_server(self) -> Any:
        raise NotImplementedError

    def _serve_cached(self, name: str, source: Any, build: Any) -> Any:
        """A serving structure derived from ``source``, built once per fitted state.

        Keyed by the identity of ``source`` (an array, or a tuple of arrays
        and float parameters compared by value): fit, load and the partial
        fits replace the model's arrays, never change them in place. Built
        under a lock, read-only afterwards: safe to share between threads.
        """
        cache = self.__dict__.get("_serve_cache")
        hit = None if cache is None else cache.get(name)
        if hit is not None and _same_source(hit[0], source):
            return hit[1]
        with _SERVE_LOCK:
            cache = self.__dict__.setdefault("_serve_cache", {})
            hit = cache.get(name)
            if hit is not None and _same_source(hit[0], source):
                return hit[1]
            value = build()
            cache[name] = (source, value)
            return value

    # -- similar users / items ---------------------------------------------
    def _user_vectors(self) -> sp.csr_matrix:
        """Rows representing users for :meth:`similar_users` (cosine)."""
        return self.user_items_

    def _item_vectors(self) -> sp.csr_matrix:
        """Rows representing items for :meth:`similar_items` (cosine)."""
        cached = getattr(self, "_item_users_cache", None)
        if cached is None:
            cached = self.user_items_.T.tocsr()
            self._item_users_cache = cached
        return cached

    def _similar(self, V: sp.csr_matrix, qids: np.ndarray, Q: sp.csr_matrix, N: int,
                 keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        n_cand = V.shape[0] if keep is None else int(keep.sum())
        width = min(N, n_cand)
        out_ids = np.full((len(qids), width), -1, dtype=_id_dtype(V.shape[0]))
        out_sc = np.full((len(qids), width), -np.inf, dtype=np.float32)
        if width == 0 or len(qids) == 0:
            return out_ids, out_sc
        B = V
        if keep is not None:
            B = mask_columns(V.T.tocsr(), keep).T.tocsr()  # zero the rows not kept
        S = ops.cosine_topk(Q, B, k=width, exclude_self=False, **self._ops_kwargs())
        counts = np.diff(S.indptr)
        r = np.repeat(np.arange(S.shape[0]), counts)
        pos = np.arange(S.nnz) - np.repeat(S.indptr[:-1], counts)
        out_ids[r, pos] = S.indices
        out_sc[r, pos] = S.data
        return out_ids, out_sc

    def similar_users(self, userid: int | Any, N: int = 10, filter_users: Any | None = None,
                      users: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Most similar training users (cosine of the users' interaction rows).

        Parameters
        ----------
        userid : int or array-like of int
        N : int, default 10
        filter_users : array-like of int, optional
            Users never returned.
        users : array-like of int, optional
            Only these users are candidates (not with ``filter_users``).

        Returns
        -------
        ids, scores : ndarray
            As in :meth:`recommend`; the user itself is included (score 1)
            unless filtered, like implicit.
        """
        self._check_fitted()
        N = check_int(N, "N", minimum=0)
        ids, scalar = _check_ids(userid, "userid", self.n_users_, "user")
        keep = _id_mask(self.n_users_, users, filter_users, ("users", "filter_users"), "user")
        V = self._user_vectors()
        out = self._similar(V, ids, rows_of(V, ids), N, keep)
        return self._finish(out, scalar)

    def similar_items(self, itemid: int | Any, N: int = 10, recalculate_item: bool = False,
                      item_users: Any | None = None, filter_items: Any | None = None,
                      items: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items (cosine of the model's item representation).

        Parameters
        ----------
        itemid : int or array-like of int
        N : int, default 10
        recalculate_item : bool, default False
            Use ``item_users`` (items x users rows aligned with ``itemid``)
            as the query items' representation.
        item_users : scipy.sparse.csr_matrix, optional
        filter_items : array-like of int, optional
        items : array-like of int, optional

        Returns
        -------
        ids, scores : ndarray
            As in :meth:`recommend`; the item itself is included unless
            filtered.
        """
        self._check_fitted()
        N = check_int(N, "N", minimum=0)
        ids, scalar = _check_ids(itemid, "itemid", None if recalculate_item else self.n_items_, "item")
        keep = _id_mask(self.n_items_, items, filter_items, ("items", "filter_items"), "item")
        V = self._item_vectors()
        if recalculate_item:
            if item_users is None:
                raise ValueError("recalculate_item=True needs item_users")
            Q = check_user_items(item_users, "item_users", n_items=self.n_users_)
            if Q.shape[0] != len(ids):
                raise ValueError(f"item_users must hold one row per itemid ({len(ids)}), got {Q.shape}")
            Q = self._item_query(Q)
        else:
            Q = rows_of(V, ids)
        return self._finish(self._similar(V, ids, Q, N, keep), scalar)

    def _item_query(self, item_users: sp.csr_matrix) -> sp.csr_matrix:
        """Representation of new items given as item x user rows."""
        return item_users

    @staticmethod
    def _finish(out: tuple[np.ndarray, np.ndarray], scalar: bool) -> tuple[np.ndarray, np.ndarray]:
        ids, sc = out
        if scalar:
            valid = ids[0] >= 0
            return ids[0][valid], sc[0][valid]
        return ids, sc

    # -- persistence --------------------------------------------------------
    def save(self, file: str | os.PathLike[str] | io.IOBase) -> None:
        """Save the fitted model to a ``.npz`` file (no pickle).

        Parameters are stored as JSON, fitted arrays and sparse matrices as
        plain arrays; :meth:`load` reads them with ``allow_pickle=False``.

        Parameters
        ----------
        file : str, os.PathLike or file object
            ``.npz`` is appended to a path without it (like implicit).
        """
        self._check_fitted()
        arrays: dict[str, np.ndarray] = {}
        kinds: dict[str, str] = {}
        for name in self._state_names:
            value = getattr(self, name, None)
            if value is None:
                kinds[name] = "none"
            elif sp.issparse(value):
                kinds[name] = "csr"
                arrays.update(csr_to_arrays(name, value))
            else:
                kinds[name] = "array"
                arrays[name] = np.asarray(value)
        meta = {"format": _FORMAT_VERSION, "class": type(self).__name__,
                "params": self._json_params(), "state": kinds, "extra": self._extra_meta()}
        if isinstance(file, (str, os.PathLike)):
            file = os.fspath(file)
            if not file.endswith(".npz"):
                file += ".npz"
        write_npz(file, arrays, meta)

    def _json_params(self) -> dict[str, Any]:
        """The parameters as saved (JSON-serialisable)."""
        return self.get_params()

    def _extra_meta(self) -> dict[str, Any]:
        """JSON-serialisable fitted values that are not arrays."""
        return {}

    def _set_extra_meta(self, extra: dict[str, Any]) -> None:
        for k, v in extra.items():
            setattr(self, k, v)

    @classmethod
    def load(cls, file: str | os.PathLike[str] | io.IOBase) -> RecommenderBase:
        """Load a model saved with :meth:`save`.

        Parameters
        ----------
        file : str, os.PathLike or file object

        Returns
        -------
        RecommenderBase
            An instance of the saved class (which must be ``cls`` or a
            subclass of it).
        """
        if isinstance(file, (str, os.PathLike)):
            file = os.fspath(file)
            if not file.endswith(".npz") and not os.path.exists(file):
                file += ".npz"
        meta, data = read_npz(file)
        kind = check_header(meta, classes=tuple(_REGISTRY), version=_FORMAT_VERSION, path=file)
        klass = _REGISTRY[kind]
        if not issubclass(klass, cls):
            raise TypeError(f"the file holds a {kind}, which is not a {cls.__name__}")
        try:
            model = klass(**meta["params"])
            state = dict(meta["state"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"model file {file!r} has an invalid header: {exc!r}") from None
        for name, kind_ in state.items():
            if name not in klass._state_names:
                raise ValueError(f"model file {file!r} stores an unknown state {name!r} for a {kind}")
            if kind_ == "none":
                value = None
            elif kind_ == "csr":
                value = csr_from_arrays(data, name, file)
            elif kind_ == "array":
                require(data, {name: None}, file)
                value = data[name]
            else:
                raise ValueError(f"model file {file!r}: state {name!r} has an unknown kind {kind_!r}")
            setattr(model, name, value)
        model._set_extra_meta(meta.get("extra", {}))
        model._after_load()
        model._check_loaded(file)
        return model

    def _check_loaded(self, file: Any) -> None:
        """Consistency of a loaded model, checked now rather than at the first ``recommend``.

        The training matrix must be there, and one recommendation for the
        first user must run: a tampered array shape or id out of range
        raises here, naming the file.
        """
        UI = getattr(self, "user_items_", None)
        if not sp.issparse(UI):
            raise ValueError(f"model file {file!r} lacks the training matrix user_items_")
        try:
            if UI.shape[0]:  # the batch path (an array of one id): it validates every model array
                self.recommend(np.zeros(1, dtype=np.int64), UI[0], N=1)
        except (ValueError, IndexError, TypeError) as exc:
            raise ValueError(f"model file {file!r} is inconsistent: {exc}") from None

    def _after_load(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Rebuild derived caches after :meth:`load`."""


def load_model(file: str | os.PathLike[str] | io.IOBase) -> RecommenderBase:
    """Load any cohortrec model saved with :meth:`RecommenderBase.save`."""
    return RecommenderBase.load(file)
