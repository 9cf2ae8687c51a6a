"""Bounded (Yinyang) K-means assignment kernels for :mod:`cohortrec.cluster`.

Private ops: the Lloyd core keeps the per-point bounds between passes and
calls these instead of ``_core``. The binding checks every shape against
``X`` and ``centers``; here the dtypes and the state's consistency are
checked so that a wrong array raises instead of being read out of bounds.
"""

from __future__ import annotations

import numpy as np

from cohortrec import _core
from cohortrec.ops._backend import resolve_threads

__all__ = ["kmeans_assign_bounded", "kmeans_assign_dense_into", "kmeans_group_lanes"]


def kmeans_group_lanes(itemsize: int) -> int:
    """Centres per group of the bounded assignment (the SIMD lanes for ``itemsize``-byte floats)."""
    return int(_core.kmeans_group_lanes(int(itemsize)))


def _check_points(X: np.ndarray, centers: np.ndarray) -> None:
    if X.dtype not in (np.float32, np.float64) or X.ndim != 2:
        raise ValueError("X must be a 2-D float32/float64 array")
    if centers.dtype != X.dtype or centers.ndim != 2 or centers.shape[1] != X.shape[1]:
        raise ValueError(f"centers must be a (k, {X.shape[1]}) array of X's dtype")


def kmeans_assign_bounded(X, centers, slots, shift, s_half, x_sq, labels, upper, lower, group_lower, dcum,
                          sample_weight, sums, counts, members, rebuild_sums: bool,
                          n_threads: int | None = None) -> tuple[int, int]:
    """One bounded assignment pass, updating the state arrays in place; returns (points moved, distances computed).

    ``slots`` lists the centres of each group (``-1`` pads); a slot outside
    ``[-1, k)`` is rejected here, since the kernel indexes with it. The
    state arrays (``labels``, bounds) must come from the previous pass
    (``shift=None`` starts from scratch and writes them all).
    """
    _check_points(X, centers)
    k = centers.shape[0]
    if slots.dtype != np.int64 or (slots.size and (int(slots.max()) >= k or int(slots.min()) < -1)):
        raise ValueError(f"slots must be int64 centre ids in [-1, {k})")
    if labels.dtype != np.int64:  # values: written by the previous pass (O(n) rescans would cost ~5%)
        raise ValueError("labels must be an int64 array")
    moved, n_dist = _core.kmeans_assign_bounded_dense(
        X, centers, slots, shift, s_half, x_sq, labels, upper, lower, group_lower, dcum, sample_weight, sums,
        counts, members, bool(rebuild_sums), resolve_threads(n_threads))
    return int(moved), int(n_dist)


def kmeans_assign_dense_into(X: np.ndarray, centers: np.ndarray, labels: np.ndarray, sq_dist: np.ndarray,
                             n_threads: int | None = None) -> None:
    """Nearest centre of every row of finite ``X`` into ``labels``/``sq_dist`` (no copies, no finiteness scan).

    For callers that validated ``X`` once and call many times on slices of it.
    """
    _check_points(X, centers)
    _core.kmeans_assign_dense(X, np.ascontiguousarray(centers), labels, sq_dist, resolve_threads(n_threads))
