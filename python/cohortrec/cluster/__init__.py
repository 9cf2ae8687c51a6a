"""Clustering estimators (scikit-learn compatible) on cohortrec's native kernels.

* :class:`KMeans` - drop-in for :class:`sklearn.cluster.KMeans` (Lloyd on
  the native kernels, centres pruned per cluster by Elkan's lemma, ``spherical=True``
  for cosine geometry, dense or CSR).
* :class:`MiniBatchKMeans` - mini-batch K-means with ``partial_fit``.
* :class:`DBSCAN` - ``metric="cosine"`` DBSCAN on sparse cosine top-k
  neighbourhoods (no n x n matrix).
* :class:`MultinomialMixture` - groups as item distributions, fitted by EM
  (refines the K-means groups of :class:`~cohortrec.GroupDiscovery`);
  :func:`admixture_weights` - every user's mix of groups;
  :func:`heldout_k_curve` - the number of groups by held-out likelihood;
  :func:`heldout_prior_choice` - whether item categories should centre its prior.
* :func:`choose_n_clusters` - pick the number of groups from a range by
  silhouette on a sample and stability across seeds.
"""

from __future__ import annotations

from cohortrec.cluster._auto import choose_n_clusters
from cohortrec.cluster._dbscan import DBSCAN
from cohortrec.cluster._kmeans import KMeans, MiniBatchKMeans, tolerance_from_variances
from cohortrec.cluster._lloyd import relocate, update_centers
from cohortrec.cluster._mixture import MultinomialMixture, admixture_weights, heldout_k_curve, heldout_prior_choice

__all__ = ["DBSCAN", "KMeans", "MiniBatchKMeans", "MultinomialMixture", "admixture_weights", "choose_n_clusters",
           "heldout_k_curve", "heldout_prior_choice"]
# The steps of the one K-means core that distributed fits reuse (not a stable public API).
_CORE = ["relocate", "tolerance_from_variances", "update_centers"]
