"""Choosing the number of groups: silhouette on a sample and stability across seeds."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.utils import check_random_state

__all__ = ["choose_n_clusters"]

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
            km = KMeans(k, spherical=spherical, n_init=1, random_state=rs.randint(2**31 - 1)).fit(Xf)
            runs.append(km)
        best = min(runs, key=lambda r: r.inertia_)
        lab = best.labels_[sample]
        sil = float(silhouette_score(Xf[sample], lab, metric=metric)) if len(np.unique(lab)) > 1 else -1.0
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
