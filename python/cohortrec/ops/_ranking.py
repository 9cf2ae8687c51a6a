"""Ranking-metric kernels for :mod:`cohortrec.evaluation` (hits, DCG/AP sums, item counts).

Private ops: the evaluation layer calls these instead of ``_core``; each
checks the arrays the kernel walks (ids, row numbers, the test CSR) before
the native call.
"""

from __future__ import annotations

import numpy as np

from cohortrec import _core
from cohortrec._validation import check_csr_structure
from cohortrec.ops._backend import resolve_threads

__all__ = ["id_array", "item_counts", "ranking_hit_stats", "ranking_hits"]


def id_array(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous int32 or int64 array (what the native kernels take)."""
    a = np.asarray(a)
    if a.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"recommended ids must be integers, got dtype {a.dtype}")
        a = a.astype(np.int32 if a.dtype.itemsize <= 4 and a.dtype.kind == "i" else np.int64)
    return np.ascontiguousarray(a)


def _checked(recs: np.ndarray, rows: np.ndarray, test_indptr: np.ndarray, test_indices: np.ndarray,
             n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(recs, rows, indptr, indices) as the kernels take them, the test CSR's structure checked."""
    recs = id_array(recs)
    if recs.ndim != 2:
        raise ValueError(f"recs must be a (u, K) array, got shape {recs.shape}")
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    indptr = np.ascontiguousarray(test_indptr, dtype=np.int64)
    indices = id_array(test_indices)
    n_rows = indptr.shape[0] - 1
    check_csr_structure(indptr, indices, indices, (n_rows, int(n_items)), "test")
    if rows.shape != (recs.shape[0],):
        raise ValueError(f"rows must have {recs.shape[0]} entries (one per row of recs), got shape {rows.shape}")
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= n_rows):
        raise ValueError(f"rows must lie in [0, {n_rows}) (the test matrix's rows)")
    return recs, rows, indptr, indices


def ranking_hits(recs: np.ndarray, rows: np.ndarray, test_indptr: np.ndarray, test_indices: np.ndarray,
                 n_items: int, n_threads: int | None = None) -> np.ndarray:
    """Boolean ``(u, K)``: ``recs[r, q]`` is stored in test row ``rows[r]`` (ids >= n_items are misses)."""
    recs, rows, indptr, indices = _checked(recs, rows, test_indptr, test_indices, n_items)
    hits = np.empty(recs.shape, dtype=bool)
    _core.ranking_hits(recs, rows, indptr, indices, int(n_items), hits, resolve_threads(n_threads))
    return hits


def ranking_hit_stats(recs: np.ndarray, rows: np.ndarray, test_indptr: np.ndarray, test_indices: np.ndarray,
                      n_items: int, ks: np.ndarray, discounts: np.ndarray,
                      n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user (hits, DCG, AP) sums at increasing cut-offs ``ks``: three ``(len(ks), u)`` float64 arrays."""
    recs, rows, indptr, indices = _checked(recs, rows, test_indptr, test_indices, n_items)
    kk = np.ascontiguousarray(ks, dtype=np.int64)
    if kk.ndim != 1 or kk.size == 0 or (kk < 1).any() or (np.diff(kk) < 0).any():
        raise ValueError(f"ks must be a non-empty increasing list of positive cut-offs, got {ks!r}")
    disc = np.ascontiguousarray(discounts, dtype=np.float64)
    u = recs.shape[0]
    out = tuple(np.empty((kk.size, u)) for _ in range(3))
    _core.ranking_hit_stats(recs, rows, indptr, indices, int(n_items), kk, disc, *out, resolve_threads(n_threads))
    return out


def item_counts(recs: np.ndarray, cuts: np.ndarray, n_items: int, n_threads: int | None = None) -> np.ndarray:
    """Occurrences of every item in the column blocks ``[cuts[b], cuts[b+1])`` of ``recs``.

    Returns an int64 array of shape ``(len(cuts) - 1, n_items)``.
    """
    recs = id_array(recs)
    if recs.ndim != 2:
        raise ValueError(f"recs must be a (u, K) array, got shape {recs.shape}")
    cuts = np.ascontiguousarray(cuts, dtype=np.int64)
    if cuts.ndim != 1 or cuts.size < 1 or cuts[0] < 0 or (np.diff(cuts) < 0).any() or cuts[-1] > recs.shape[1]:
        raise ValueError(f"cuts must be increasing column offsets within [0, {recs.shape[1]}], got {cuts!r}")
    counts = np.zeros((cuts.size - 1, int(n_items)), dtype=np.int64)
    if n_items:
        _core.item_counts(recs, cuts, int(n_items), counts, resolve_threads(n_threads))
    return counts
