"""Clustering estimators (scikit-learn compatible) on cohortrec's native kernels.

* :class:`KMeans` - drop-in for :class:`sklearn.cluster.KMeans` (Lloyd on
  the native kernels, centres pruned per cluster by Elkan's lemma, ``spherical=True``
  for cosine geometry, dense or CSR).
* :class:`MiniBatchKMeans` - mini-batch K-means with ``partial_fit``.
* :class:`DBSCAN` - ``metric="cosine"`` DBSCAN on sparse cosine top-k
  neighbourhoods (no n x n matrix).
* :func:`choose_n_clusters` - pick the number of groups from a range by
  silhouette on a sample and stability across seeds.
"""

from __future__ import annotations

from cohortrec.cluster._auto import choose_n_clusters
from cohortrec.cluster._dbscan import DBSCAN
from cohortrec.cluster._kmeans import KMeans, MiniBatchKMeans, tolerance_from_variances
from cohortrec.cluster._lloyd import relocate, update_centers

__all__ = ["DBSCAN", "KMeans", "MiniBatchKMeans", "choose_n_clusters"]
# The steps of the one K-means core that distributed fits reuse (not a stable public API).
_CORE = ["relocate", "tolerance_from_variances", "update_centers"]
