"""Native kernels: sparse cosine top-k, K-means steps, top-n CF scoring.

Every op takes ``device="auto"|"cpu"|"cuda"`` and ``n_threads``; inputs are
validated here and computed in :mod:`cohortrec._core` (C++/OpenMP) or
:mod:`cohortrec._cuda`. :mod:`cohortrec.ops.reference` holds NumPy/SciPy
oracles for the tests.
"""

from __future__ import annotations

from cohortrec.ops._cosine import cosine_topk
from cohortrec.ops._kmeans import kmeans_assign, kmeans_step, kmeans_update
from cohortrec.ops._topk_scores import topk_scores

__all__ = ["cosine_topk", "kmeans_assign", "kmeans_step", "kmeans_update", "topk_scores"]
