"""Native kernels: sparse cosine top-k, K-means steps, top-n CF scoring.

Every op takes ``device="auto"|"cpu"|"cuda"`` and ``n_threads``; inputs are
validated here and computed in :mod:`cohortrec._core` (C++/OpenMP) or
:mod:`cohortrec._cuda`. :mod:`cohortrec.ops.reference` holds NumPy/SciPy
oracles for the tests.

``cohortrec.ops`` is the single door to native code: no other module of the
package imports ``_core`` or ``_cuda`` (``tests/test_architecture.py``
checks it). The public ops are listed in ``__all__``. The other names
exported here serve cohortrec's own estimators -- the device and thread
choice, bounded K-means assignment, k-means++ seeding, ranking metrics,
top-n selection -- and validate their inputs the same way, but their
signatures may change between releases.
"""

from __future__ import annotations

from cohortrec.ops._als import als_gram, als_loss, als_solve
from cohortrec.ops._backend import (
    DeviceUnavailableError,
    auto_device,
    build_info,
    cuda_unavailable_reason,
    devices,
    has_openmp,
    n_threads_default,
    resolve_device,
    resolve_threads,
)
from cohortrec.ops._cosine import cosine_topk
from cohortrec.ops._kmeans import kmeans_assign, kmeans_step, kmeans_update
from cohortrec.ops._kmeans_bounded import kmeans_assign_bounded, kmeans_assign_dense_into, kmeans_group_lanes
from cohortrec.ops._merge_topn import blend_server, blend_topn_row, merge_topn
from cohortrec.ops._ranking import id_array, item_counts, ranking_hit_stats, ranking_hits
from cohortrec.ops._row_topk import merge_topk_rows, row_topk
from cohortrec.ops._seeding import kmeanspp_trials, kmeanspp_update
from cohortrec.ops._topk_scores import topk_scores
from cohortrec.ops._topn import dense_topn_into, ranked_topn_into
from cohortrec.ops._user_topn import (
    DualModel,
    ModelCsr,
    prepare_csr,
    prepare_dense,
    prepare_dual,
    row_server,
    user_topn_dense,
    user_topn_dual,
    user_topn_factors,
    user_topn_sparse,
)

__all__ = ["cosine_topk", "kmeans_assign", "kmeans_step", "kmeans_update", "topk_scores"]

# For cohortrec's estimators (validated, not a stable public API).
_INTERNAL = [
    "DeviceUnavailableError", "als_gram", "als_loss", "als_solve", "auto_device", "blend_server", "blend_topn_row",
    "build_info", "cuda_unavailable_reason", "dense_topn_into", "devices",
    "has_openmp", "id_array", "merge_topn", "item_counts", "kmeans_assign_bounded", "kmeans_assign_dense_into",
    "kmeans_group_lanes", "kmeanspp_trials", "kmeanspp_update", "n_threads_default", "ranked_topn_into",
    "ranking_hit_stats", "ranking_hits", "resolve_device", "resolve_threads", "row_topk", "merge_topk_rows",
    "DualModel", "ModelCsr", "prepare_csr", "prepare_dense", "prepare_dual", "row_server", "user_topn_dense",
    "user_topn_dual", "user_topn_factors",
    "user_topn_sparse",
]
