"""Top-n of a weighted sum of normalised ranked lists: a blend's per-request merge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec import _core
from cohortrec._validation import check_int

_HOW = {"rank": False, "score": True}


def _how_and_weights(how: str, weights: Any, keep: np.ndarray | None = None) -> tuple[bool, np.ndarray]:
    """The kernels' ``by_score`` flag and the weights as a contiguous float64 vector, checked (and ``keep``,
    whose length the kernels check)."""
    if how not in _HOW:
        raise ValueError(f"how must be 'rank' or 'score', got {how!r}")
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if w.ndim != 1 or not np.isfinite(w).all():
        raise ValueError("weights must be a 1-D array of finite values")
    if keep is not None and (not isinstance(keep, np.ndarray) or keep.dtype != np.bool_):
        raise ValueError("keep must be a boolean array with one flag per item")
    return _HOW[how], w


def merge_topn(ids: Sequence[np.ndarray], scores: Sequence[np.ndarray], weights: np.ndarray, *, how: str,
               width: int, n: int, n_items: int, exclude: np.ndarray | None = None,
               keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One user's top-``n`` items of the weighted sum of several members' ranked lists.

    The merge of :class:`cohortrec.recommenders.Blend`'s one-user path, in
    native code with the GIL released (it is what kept that path from
    scaling with threads). List ``m`` (``ids[m]``, ``scores[m]``, best
    first) is normalised on its own, in float64:

    * ``"rank"``: ``1 - p / width`` at position ``p`` (Borda count);
    * ``"score"``: ``1 / width + (1 - 1 / width) * (s - lo) / (hi - lo)``,
      ``lo`` and ``hi`` over the list's valid entries (1 when equal);

    an entry is valid when its id is ``>= 0`` and its score finite. An
    item's blend score is ``0 + w_0 v_0 + w_1 v_1 + ...`` over the lists
    that name it, in list order: the same float64 operations as the batch
    blend, so the same result bit for bit.

    Parameters
    ----------
    ids : sequence of ndarray
        One 1-D int32 or int64 array per list (negative = padding).
    scores : sequence of ndarray
        One 1-D float32 or float64 array per list, as long as its ids.
    weights : ndarray of float64, shape (n_lists,)
        Each list's weight.
    how : {"rank", "score"}
    width : int
        The candidate count of the normalisation (``>= 1``).
    n : int
        Number of items returned, at most ``n_items``.
    n_items : int
        Catalogue size: every id must be below it.
    exclude : ndarray of int64, optional
        Items never returned (the user's own).
    keep : ndarray of bool, shape (n_items,), optional
        Only items flagged True are returned.

    Returns
    -------
    ids : ndarray of int64, shape (n,)
        Best first (score desc, id asc); ``-1`` padding when fewer items
        have a positive blend score.
    scores : ndarray of float32, shape (n,)
        ``-inf`` padding.

    Raises
    ------
    ValueError
        On a bad ``how``, mismatched or non-array lists, or a wrong dtype.
    IndexError
        On an id ``>= n_items``.
    """
    by_score, w = _how_and_weights(how, weights, keep)
    if exclude is not None:
        exclude = np.ascontiguousarray(exclude, dtype=np.int64)
    return _core.merge_topn(ids, scores, w, by_score, int(width), int(n_items), keep, exclude, int(n))


def blend_topn_row(servers: Sequence[Any], weights: np.ndarray, *, how: str, width: int, user: int,
                   indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_items: int, n: int, filter: bool,
                   keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """One user's blended top-``n`` from the members' bound row servers, in one native call.

    Each server (:func:`row_server`) lists its top ``width`` for the user's
    one-row CSR (``indptr``, ``indices``, ``data``) exactly as its
    ``topn_row`` does, and :func:`merge_topn` blends the lists; the GIL is
    released once for all of it, so a request holds the GIL only for its
    Python. The result equals ``topn_row`` per server followed by
    :func:`merge_topn` (the members already drop the user's items when
    ``filter``).

    Returns
    -------
    (ids, scores) as :func:`merge_topn`, or None where a server's
    ``topn_row`` would return None (a row the general path must check).
    """
    by_score, w = _how_and_weights(how, weights, keep)
    return _core.blend_topn_row(servers, w, by_score, int(width), int(user), indptr, indices, data, 1,
                                int(n_items), bool(filter), keep, int(n))


def blend_server(servers: Sequence[Any], weights: np.ndarray, *, how: str, n_candidates: int, E: Any,
                 n_items: int) -> Any | None:
    """Bind a fitted blend for one-user requests, as :func:`row_server` binds one model.

    ``server.topn(user, n, filter)`` and ``server.topn_row(user, indptr,
    indices, data, n_rows, n_cols, n, filter)`` return what
    :func:`blend_topn_row` returns for the user's row of ``E`` (or the
    given row), with ``n`` capped at ``n_items`` and every member listing
    ``max(n_candidates, n)`` items: ids int32 (int64 beyond 2**31 items) and
    float32 scores, only the items found; or None where the general path
    must decide. The GIL is released once per request.

    Parameters
    ----------
    servers : sequence of row servers
        The weighted members' :func:`row_server` objects.
    weights : ndarray of float64
        Their weights.
    how : {"rank", "score"}
    n_candidates : int
    E : CSR matrix, shape (n_users, n_items)
        The blend's interactions (the rows ``topn`` reads).
    n_items : int

    Returns
    -------
    BlendServer32, BlendServer64 or None
        Thread-safe: every call has its own scratch. None when a server is
        not a :func:`row_server` (a nested blend's, say).
    """
    if not all(isinstance(s, (_core.RowServer32, _core.RowServer64)) for s in servers):
        return None
    by_score, w = _how_and_weights(how, weights)
    n_candidates = check_int(n_candidates, "n_candidates", minimum=1)
    n_items = check_int(n_items, "n_items", minimum=0)
    Em = sp.csr_matrix(E)
    if Em.shape[1] != n_items:
        raise ValueError(f"E must have n_items ({n_items}) columns, got {Em.shape[1]}")
    idx_dtype = np.dtype(np.int32) if Em.indices.dtype == np.int32 else np.dtype(np.int64)
    cls = _core.BlendServer32 if idx_dtype == np.int32 else _core.BlendServer64
    return cls(list(servers), w, by_score, n_candidates, n_items, np.ascontiguousarray(Em.indptr, dtype=np.int64),
               np.ascontiguousarray(Em.indices, dtype=idx_dtype), np.ascontiguousarray(Em.data, dtype=np.float32))
