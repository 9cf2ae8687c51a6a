"""k-means++ seeding kernels (Arthur & Vassilvitskii 2007) for :mod:`cohortrec.cluster`.

Private ops: one pass over ``X`` folds a chosen centre into the closest
distances (:func:`kmeanspp_update`); another gives the candidates'
potentials (:func:`kmeanspp_trials`). Dtypes and shapes are checked here.
"""

from __future__ import annotations

import numpy as np

from cohortrec import _core
from cohortrec.ops._backend import resolve_threads

__all__ = ["kmeanspp_trials", "kmeanspp_update"]


def _check(X: np.ndarray, w: np.ndarray | None, closest: np.ndarray) -> None:
    if X.dtype not in (np.float32, np.float64) or X.ndim != 2 or not X.flags.c_contiguous:
        raise ValueError("X must be a C-contiguous 2-D float32/float64 array")
    if w is not None and (w.dtype != X.dtype or w.shape != (X.shape[0],)):
        raise ValueError(f"sample_weight must be a ({X.shape[0]},) array of X's dtype")
    if closest.dtype != np.float64 or closest.shape != (X.shape[0],):
        raise ValueError(f"closest must be a float64 array of shape ({X.shape[0]},)")


def kmeanspp_update(X: np.ndarray, center: np.ndarray, closest: np.ndarray, sample_weight: np.ndarray | None,
                    cum: np.ndarray, n_threads: int | None = None) -> None:
    """Fold ``center`` into ``closest`` (in place) and write the prefix sums of ``w * closest`` into ``cum``."""
    _check(X, sample_weight, closest)
    c = np.ascontiguousarray(center, dtype=np.float64)
    _core.kmeanspp_update_dense(X, c, closest, sample_weight, cum, resolve_threads(n_threads))


def kmeanspp_trials(X: np.ndarray, candidates: np.ndarray, closest: np.ndarray, sample_weight: np.ndarray | None,
                    pot: np.ndarray, n_threads: int | None = None) -> None:
    """Potential ``sum_i w_i min(closest_i, ||x_i - cand_t||^2)`` of every candidate, into ``pot``."""
    _check(X, sample_weight, closest)
    cand = np.ascontiguousarray(candidates, dtype=np.float64)
    _core.kmeanspp_trials_dense(X, cand, closest, sample_weight, pot, resolve_threads(n_threads))
