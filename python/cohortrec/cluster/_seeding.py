"""Greedy k-means++ seeding on the native kernels.

The algorithm and the random draws are scikit-learn's ``kmeans_plusplus``
(Arthur & Vassilvitskii 2007, with ``2 + log(k)`` local trials per centre
and the candidate that lowers the potential most kept), so the same
``random_state`` picks the same points. Each centre costs two native passes
over ``X`` (:func:`cohortrec.ops.kmeanspp_trials` for the
candidates' potentials, :func:`cohortrec.ops.kmeanspp_update` to
fold the chosen one in and build the sampling distribution) instead of
float64 distance matrices of the trials against all points.
"""

from __future__ import annotations

import numpy as np

from cohortrec import ops


def kmeans_plusplus_dense(X: np.ndarray, n_clusters: int, random_state: np.random.RandomState,
                          sample_weight: np.ndarray, n_threads: int,
                          n_local_trials: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centres and their row indices, as ``sklearn.cluster.kmeans_plusplus``.

    ``X`` is a C-contiguous float32/float64 array, ``sample_weight`` of
    ``X``'s dtype; ``random_state`` a ``RandomState`` (consumed exactly as
    scikit-learn does).
    """
    n, d = X.shape
    k = int(n_clusters)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(k))
    X = np.ascontiguousarray(X)
    w = np.ascontiguousarray(sample_weight, dtype=X.dtype)
    w_arg = None if np.all(w == 1) else w
    centers = np.empty((k, d), dtype=X.dtype)
    indices = np.full(k, -1, dtype=np.int64)
    center_id = random_state.choice(n, p=w / w.sum())
    centers[0] = X[center_id]
    indices[0] = center_id
    closest = np.full(n, np.inf)
    cum = np.empty(n)
    ops.kmeanspp_update(X, X[center_id], closest, w_arg, cum, n_threads)
    current_pot = cum[-1]
    pot = np.empty(n_local_trials)
    for c in range(1, k):
        rand_vals = random_state.uniform(size=n_local_trials) * current_pot
        candidate_ids = np.searchsorted(cum, rand_vals)
        np.clip(candidate_ids, None, n - 1, out=candidate_ids)
        ops.kmeanspp_trials(X, X[candidate_ids], closest, w_arg, pot, n_threads)
        best = int(np.argmin(pot))
        current_pot = pot[best]
        best_id = candidate_ids[best]
        centers[c] = X[best_id]
        indices[c] = best_id
        if c + 1 < k:
            ops.kmeanspp_update(X, X[best_id], closest, w_arg, cum, n_threads)
    return centers, indices
