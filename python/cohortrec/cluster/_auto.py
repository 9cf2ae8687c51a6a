"""Choosing the number of groups: silhouette on a sample and stability across seeds."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.utils import check_random_state

__all__ = ["choose_n_clusters", "cosine_silhouette"]

_CRITERIA = ("silhouette", "stability", "combined")


def choose_n_clusters(
    X: Any,
    k_range: Sequence[int] = tuple(range(2, 21)),
    *,
    criterion: str = "silhouette",
    n_seeds: int = 3,
    sample_size: int = 5000,
    fit_size: int = 50_000,
    spherical: bool = True,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[int, pd.DataFrame]:
    """Pick the number of clusters from ``k_range`` and report the curve.

    For every ``k``, K-means (:class:`cohortrec.KMeans`, ``spherical``) is
    fitted ``n_seeds`` times with different seeds on at most ``fit_size``
    rows. Two numbers are recorded:

    * ``silhouette`` - mean silhouette (cosine when ``spherical``, else
      Euclidean) of the best-inertia run on a sample of ``sample_size``
      rows (higher = tighter, better separated groups);
    * ``stability`` - mean adjusted Rand index between the labelings of the
      different seeds (1 = the same groups whatever the seed).

    ``criterion`` picks the ``k`` maximising ``silhouette``, ``stability``,
    or their product (``"combined"``); ties go to the smaller ``k``.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features)
    k_range : sequence of int
    criterion : {"silhouette", "stability", "combined"}
    n_seeds : int, default 3
    sample_size : int, default 5000
    fit_size : int, default 50000
    spherical : bool, default True
    random_state : int, RandomState or None

    Returns
    -------
    best_k : int
    curve : pandas.DataFrame
        Columns ``k, silhouette, stability, inertia``.
    """
    from cohortrec.cluster._kmeans import KMeans  # noqa: PLC0415

    if criterion not in _CRITERIA:
        raise ValueError(f"criterion must be one of {_CRITERIA}, got {criterion!r}")
    ks = sorted({int(k) for k in k_range})
    if not ks or ks[0] < 2:
        raise ValueError(f"k_range must hold integers >= 2, got {list(k_range)!r}")
    if isinstance(n_seeds, bool) or int(n_seeds) < 1:
        raise ValueError(f"n_seeds must be >= 1, got {n_seeds!r}")
    rs = check_random_state(random_state)
    n = X.shape[0]
    ks = [k for k in ks if k < n]
    if not ks:
        raise ValueError(f"k_range must hold values below n_samples={n}")
    rows = np.sort(rs.choice(n, fit_size, replace=False)) if n > fit_size else np.arange(n)
    Xf = X[rows]
    sample = rs.choice(len(rows), min(sample_size, len(rows)), replace=False)
    metric = "cosine" if spherical else "euclidean"
    out = []
    for k in ks:
        runs = []
        for _ in range(int(n_seeds)):
            with warnings.catch_warnings():  # fewer distinct clusters than k is what the curve measures
                warnings.simplefilter("ignore", ConvergenceWarning)
                km = KMeans(k, spherical=spherical, n_init=1, random_state=rs.randint(2**31 - 1)).fit(Xf)
            runs.append(km)
        best = min(runs, key=lambda r: r.inertia_)
        lab = best.labels_[sample]
        if len(np.unique(lab)) < 2:
            sil = -1.0
        elif spherical and not sp.issparse(Xf):
            sil = cosine_silhouette(Xf[sample], lab)
        else:
            sil = float(silhouette_score(Xf[sample], lab, metric=metric))
        pairs = [adjusted_rand_score(runs[i].labels_, runs[j].labels_)
                 for i in range(len(runs)) for j in range(i + 1, len(runs))]
        stab = float(np.mean(pairs)) if pairs else float("nan")
        out.append({"k": k, "silhouette": sil, "stability": stab, "inertia": best.inertia_})
    curve = pd.DataFrame(out)
    if criterion == "silhouette":
        score = curve["silhouette"]
    elif criterion == "stability":
        score = curve["stability"].fillna(0)
    else:
        score = curve["silhouette"] * curve["stability"].fillna(1)
    curve["score"] = score
    best_k = int(curve.loc[score.idxmax(), "k"])
    return best_k, curve


def cosine_silhouette(X: Any, labels: Any) -> float:
    """Mean silhouette with the cosine distance, in O(n * k * d) time and O(k * d) extra memory.

    Equal to ``sklearn.metrics.silhouette_score(X, labels, metric="cosine")``
    but without the n x n distance matrix: with unit rows ``u_i`` the mean
    cosine distance from ``u_i`` to the members of cluster ``c`` is
    ``1 - u_i . s_c / n_c`` (``s_c`` the sum of the members), and the
    intra-cluster mean leaves ``u_i`` itself out. Rows of norm 0 count as
    distance 1 from everything (as scikit-learn's ``cosine_distances``).
    Points in clusters of one get 0 (scikit-learn's convention).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    labels : array-like of int, shape (n_samples,)

    Returns
    -------
    float
    """
    X = np.asarray(X, dtype=np.float64)
    lab = np.asarray(labels).ravel()
    if X.ndim != 2 or lab.shape[0] != X.shape[0]:
        raise ValueError(f"labels must hold one label per row of X ({X.shape[0]}), got {lab.shape[0]}")
    uniq, y = np.unique(lab, return_inverse=True)
    k = uniq.size
    if not 2 <= k <= X.shape[0] - 1:
        raise ValueError(f"the number of labels must lie in [2, n_samples - 1], got {k}")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    U = np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    sizes = np.bincount(y, minlength=k).astype(np.float64)
    S = np.zeros((k, X.shape[1]))
    np.add.at(S, y, U)
    sim = U @ S.T                                  # (n, k): sum of cosines to every cluster
    dist_sum = sizes[None, :] - sim                # sum of cosine distances (1 - cos)
    rows = np.arange(X.shape[0])
    self_sim = (norms[:, 0] > 0).astype(np.float64)  # u_i . u_i (1, or 0 for a zero row)
    own = sizes[y]
    a = np.divide(dist_sum[rows, y] - (1.0 - self_sim), own - 1.0, out=np.zeros(X.shape[0]), where=own > 1)
    other = dist_sum / sizes[None, :]
    other[rows, y] = np.inf
    b = other.min(axis=1)
    s = np.divide(b - a, np.maximum(a, b), out=np.zeros(X.shape[0]), where=np.maximum(a, b) > 0)
    s[own <= 1] = 0.0
    return float(np.mean(s))
