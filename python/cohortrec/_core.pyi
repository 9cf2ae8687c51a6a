# Type stubs of the native module cohortrec._core, generated from the bindings with
#   pybind11-stubgen cohortrec._core -o <dir> --numpy-array-remove-parameters
# tests/test_architecture.py checks they list every function of the module.
"""
cohortrec CPU kernels (C++/OpenMP). Use cohortrec.ops, which validates inputs.
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['BlendServer32', 'BlendServer64', 'RowServer32', 'RowServer64', 'als_loss_rows', 'als_solve', 'blend_topn_row', 'cosine_topk', 'dense_topn', 'has_openmp', 'isa', 'item_counts', 'kmeans_assign_bounded_dense', 'kmeans_assign_csr', 'kmeans_assign_dense', 'kmeans_group_lanes', 'kmeans_step_dense', 'kmeans_update_csr', 'kmeans_update_dense', 'kmeanspp_trials_dense', 'kmeanspp_update_dense', 'merge_topk_rows', 'merge_topn', 'ranked_topn', 'ranking_hit_stats', 'ranking_hits', 'topk_scores', 'user_topn_dense', 'user_topn_dual', 'user_topn_factors', 'user_topn_sparse']
class RowServer32:
    """
    One fitted model's arrays bound for one-user requests (see cohortrec.ops.row_server): topn and topn_row release the GIL and return (ids, scores) or None.
    """
    def __init__(self, w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int32], w_data: numpy.typing.NDArray[numpy.float32], w_cols: typing.SupportsInt | typing.SupportsIndex, e_indptr: numpy.typing.NDArray[numpy.int64], e_indices: numpy.typing.NDArray[numpy.int32], n_items: typing.SupportsInt | typing.SupportsIndex, r_indptr: numpy.typing.NDArray[numpy.int64] | None, r_indices: numpy.typing.NDArray[numpy.int32] | None, r_data: numpy.typing.NDArray[numpy.float32] | None, B: numpy.typing.NDArray[numpy.float32] | None, in_map: numpy.typing.NDArray[numpy.int64] | None, out_map: numpy.typing.NDArray[numpy.int64] | None, order: numpy.typing.NDArray[numpy.int64] | None, w_dense: numpy.typing.NDArray[numpy.float32] | None, row_is_query: bool, drop_zero: bool, dual: tuple | None = None) -> None:
        ...
    def topn(self, user: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, filter: bool) -> typing.Any:
        """
        (ids, scores) of one user's top-n from the bound arrays, or None for the general path.
        """
    def topn_row(self, user: typing.SupportsInt | typing.SupportsIndex, indptr: numpy.ndarray, indices: numpy.ndarray, data: numpy.ndarray, n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, filter: bool) -> typing.Any:
        """
        (ids, scores) of one user given as a one-row CSR (or the user's row of a full matrix), or None for the general path.
        """
class RowServer64:
    """
    One fitted model's arrays bound for one-user requests (see cohortrec.ops.row_server): topn and topn_row release the GIL and return (ids, scores) or None.
    """
    def __init__(self, w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int64], w_data: numpy.typing.NDArray[numpy.float32], w_cols: typing.SupportsInt | typing.SupportsIndex, e_indptr: numpy.typing.NDArray[numpy.int64], e_indices: numpy.typing.NDArray[numpy.int64], n_items: typing.SupportsInt | typing.SupportsIndex, r_indptr: numpy.typing.NDArray[numpy.int64] | None, r_indices: numpy.typing.NDArray[numpy.int64] | None, r_data: numpy.typing.NDArray[numpy.float32] | None, B: numpy.typing.NDArray[numpy.float32] | None, in_map: numpy.typing.NDArray[numpy.int64] | None, out_map: numpy.typing.NDArray[numpy.int64] | None, order: numpy.typing.NDArray[numpy.int64] | None, w_dense: numpy.typing.NDArray[numpy.float32] | None, row_is_query: bool, drop_zero: bool, dual: tuple | None = None) -> None:
        ...
    def topn(self, user: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, filter: bool) -> typing.Any:
        """
        (ids, scores) of one user's top-n from the bound arrays, or None for the general path.
        """
    def topn_row(self, user: typing.SupportsInt | typing.SupportsIndex, indptr: numpy.ndarray, indices: numpy.ndarray, data: numpy.ndarray, n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, filter: bool) -> typing.Any:
        """
        (ids, scores) of one user given as a one-row CSR (or the user's row of a full matrix), or None for the general path.
        """
class BlendServer32:
    """
    A fitted Blend bound for one-user requests (see cohortrec.ops.blend_server): topn and topn_row release the GIL once and return (ids, scores) or None.
    """
    def __init__(self, servers: collections.abc.Sequence, weights: numpy.typing.NDArray[numpy.float64], by_score: bool, n_candidates: typing.SupportsInt | typing.SupportsIndex, n_items: typing.SupportsInt | typing.SupportsIndex, e_indptr: numpy.typing.NDArray[numpy.int64], e_indices: numpy.typing.NDArray[numpy.int32], e_data: numpy.typing.NDArray[numpy.float32]) -> None:
        ...
    def topn(self, user: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, filter: bool) -> typing.Any:
        """
        (ids, scores) of one user's blended top-n from the bound rows, or None for the general path.
        """
    def topn_row(self, user: typing.SupportsInt | typing.SupportsIndex, indptr: numpy.ndarray, indices: numpy.ndarray, data: numpy.ndarray, n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, filter: bool) -> typing.Any:
        """
        (ids, scores) of one user given as a one-row CSR, or None for the general path.
        """
class BlendServer64:
    """
    A fitted Blend bound for one-user requests (see cohortrec.ops.blend_server): topn and topn_row release the GIL once and return (ids, scores) or None.
    """
    def __init__(self, servers: collections.abc.Sequence, weights: numpy.typing.NDArray[numpy.float64], by_score: bool, n_candidates: typing.SupportsInt | typing.SupportsIndex, n_items: typing.SupportsInt | typing.SupportsIndex, e_indptr: numpy.typing.NDArray[numpy.int64], e_indices: numpy.typing.NDArray[numpy.int64], e_data: numpy.typing.NDArray[numpy.float32]) -> None:
        ...
    def topn(self, user: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, filter: bool) -> typing.Any:
        """
        (ids, scores) of one user's blended top-n from the bound rows, or None for the general path.
        """
    def topn_row(self, user: typing.SupportsInt | typing.SupportsIndex, indptr: numpy.ndarray, indices: numpy.ndarray, data: numpy.ndarray, n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, filter: bool) -> typing.Any:
        """
        (ids, scores) of one user given as a one-row CSR, or None for the general path.
        """
def _set_isa(name: str) -> None:
    """
    Force an instruction set (tests/benchmarks); 'auto' resets.
    """
@typing.overload
def als_loss_rows(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex, X: numpy.typing.NDArray[numpy.float32], Y: numpy.typing.NDArray[numpy.float32], YtY: numpy.typing.NDArray[numpy.float64], out: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Per-row terms of the weighted squared ALS loss (float64).
    """
@typing.overload
def als_loss_rows(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int64], data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex, X: numpy.typing.NDArray[numpy.float32], Y: numpy.typing.NDArray[numpy.float32], YtY: numpy.typing.NDArray[numpy.float64], out: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Per-row terms of the weighted squared ALS loss (float64).
    """
@typing.overload
def als_solve(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex, Y: numpy.typing.NDArray[numpy.float32], G: numpy.typing.NDArray[numpy.float32], X: numpy.typing.NDArray[numpy.float32], cg_steps: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex, extra: numpy.typing.NDArray[numpy.float32] | None = None) -> None:
    """
    One implicit-ALS half-step in place on X (cg_steps conjugate-gradient steps; 0: exact solve); extra: per-row additions to G's diagonal.
    """
@typing.overload
def als_solve(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int64], data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex, Y: numpy.typing.NDArray[numpy.float32], G: numpy.typing.NDArray[numpy.float32], X: numpy.typing.NDArray[numpy.float32], cg_steps: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex, extra: numpy.typing.NDArray[numpy.float32] | None = None) -> None:
    """
    One implicit-ALS half-step in place on X (cg_steps conjugate-gradient steps; 0: exact solve); extra: per-row additions to G's diagonal.
    """
def blend_topn_row(servers: collections.abc.Sequence, weights: numpy.typing.NDArray[numpy.float64], by_score: bool, width: typing.SupportsInt | typing.SupportsIndex, user: typing.SupportsInt | typing.SupportsIndex, indptr: numpy.ndarray, indices: numpy.ndarray, data: numpy.ndarray, n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, filter: bool, keep: numpy.typing.NDArray[numpy.bool] | None, n: typing.SupportsInt | typing.SupportsIndex) -> typing.Any:
    """
    A blend's one-user top-n: every row server's topn_row list merged by merge_topn, the GIL released once; None where a server's topn_row returns None.
    """
@typing.overload
def cosine_topk(a_indptr: numpy.typing.NDArray[numpy.int64], a_indices: numpy.typing.NDArray[numpy.int32], a_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, b_indptr: numpy.typing.NDArray[numpy.int64] | None, b_indices: numpy.typing.NDArray[numpy.int32] | None, b_data: numpy.typing.NDArray[numpy.float32] | None, p: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, threshold: typing.SupportsFloat | typing.SupportsIndex | None, exclude_self: bool, n_threads: typing.SupportsInt | typing.SupportsIndex, dense_min_density: typing.SupportsFloat | typing.SupportsIndex = -1.0) -> tuple:
    """
    Top-k cosine neighbours (CSR in, CSR arrays out). Pass None for B to use A. dense_min_density: columns of B at least this dense are multiplied densely (nonnegative data; < 0: cost model, > 1: never).
    """
@typing.overload
def cosine_topk(a_indptr: numpy.typing.NDArray[numpy.int64], a_indices: numpy.typing.NDArray[numpy.int64], a_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, b_indptr: numpy.typing.NDArray[numpy.int64] | None, b_indices: numpy.typing.NDArray[numpy.int64] | None, b_data: numpy.typing.NDArray[numpy.float32] | None, p: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, threshold: typing.SupportsFloat | typing.SupportsIndex | None, exclude_self: bool, n_threads: typing.SupportsInt | typing.SupportsIndex, dense_min_density: typing.SupportsFloat | typing.SupportsIndex = -1.0) -> tuple:
    """
    Top-k cosine neighbours (CSR in, CSR arrays out). Pass None for B to use A. dense_min_density: columns of B at least this dense are multiplied densely (nonnegative data; < 0: cost model, > 1: never).
    """
@typing.overload
def cosine_topk(a_indptr: numpy.typing.NDArray[numpy.int64], a_indices: numpy.typing.NDArray[numpy.int32], a_data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, b_indptr: numpy.typing.NDArray[numpy.int64] | None, b_indices: numpy.typing.NDArray[numpy.int32] | None, b_data: numpy.typing.NDArray[numpy.float64] | None, p: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, threshold: typing.SupportsFloat | typing.SupportsIndex | None, exclude_self: bool, n_threads: typing.SupportsInt | typing.SupportsIndex, dense_min_density: typing.SupportsFloat | typing.SupportsIndex = -1.0) -> tuple:
    """
    Top-k cosine neighbours (CSR in, CSR arrays out). Pass None for B to use A. dense_min_density: columns of B at least this dense are multiplied densely (nonnegative data; < 0: cost model, > 1: never).
    """
@typing.overload
def cosine_topk(a_indptr: numpy.typing.NDArray[numpy.int64], a_indices: numpy.typing.NDArray[numpy.int64], a_data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, b_indptr: numpy.typing.NDArray[numpy.int64] | None, b_indices: numpy.typing.NDArray[numpy.int64] | None, b_data: numpy.typing.NDArray[numpy.float64] | None, p: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, threshold: typing.SupportsFloat | typing.SupportsIndex | None, exclude_self: bool, n_threads: typing.SupportsInt | typing.SupportsIndex, dense_min_density: typing.SupportsFloat | typing.SupportsIndex = -1.0) -> tuple:
    """
    Top-k cosine neighbours (CSR in, CSR arrays out). Pass None for B to use A. dense_min_density: columns of B at least this dense are multiplied densely (nonnegative data; < 0: cost model, > 1: never).
    """
@typing.overload
def dense_topn(scores: numpy.typing.NDArray[numpy.float32], keep: numpy.typing.NDArray[numpy.bool] | None, exclude_indptr: numpy.typing.NDArray[numpy.int64] | None, exclude_indices: numpy.typing.NDArray[numpy.int32] | None, items: numpy.typing.NDArray[numpy.int64], out: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Best n finite entries per row of a dense float32 matrix (into pre-filled (u, n) arrays).
    """
@typing.overload
def dense_topn(scores: numpy.typing.NDArray[numpy.float32], keep: numpy.typing.NDArray[numpy.bool] | None, exclude_indptr: numpy.typing.NDArray[numpy.int64] | None, exclude_indices: numpy.typing.NDArray[numpy.int64] | None, items: numpy.typing.NDArray[numpy.int64], out: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Best n finite entries per row of a dense float32 matrix (into pre-filled (u, n) arrays).
    """
def isa() -> str:
    """
    Instruction set the dense kernels use.
    """
@typing.overload
def item_counts(recs: numpy.typing.NDArray[numpy.int32], cuts: numpy.typing.NDArray[numpy.int64], n_items: typing.SupportsInt | typing.SupportsIndex, counts: numpy.typing.NDArray[numpy.int64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Occurrences of every item in column blocks [cuts[b], cuts[b+1]) of recs.
    """
@typing.overload
def item_counts(recs: numpy.typing.NDArray[numpy.int64], cuts: numpy.typing.NDArray[numpy.int64], n_items: typing.SupportsInt | typing.SupportsIndex, counts: numpy.typing.NDArray[numpy.int64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Occurrences of every item in column blocks [cuts[b], cuts[b+1]) of recs.
    """
@typing.overload
def kmeans_assign_bounded_dense(X: numpy.typing.NDArray[numpy.float32], centers: numpy.typing.NDArray[numpy.float32], slots: numpy.typing.NDArray[numpy.int64], shift: numpy.typing.NDArray[numpy.float64] | None, s_half: numpy.typing.NDArray[numpy.float64] | None, x_sq: numpy.typing.NDArray[numpy.float64], labels: numpy.typing.NDArray[numpy.int64], upper: numpy.typing.NDArray[numpy.float64], lower: numpy.typing.NDArray[numpy.float64], group_lower: numpy.typing.NDArray[numpy.float32], dcum: numpy.typing.NDArray[numpy.float64], sample_weight: numpy.typing.NDArray[numpy.float32] | None, sums: numpy.typing.NDArray[numpy.float64] | None, counts: numpy.typing.NDArray[numpy.float64] | None, members: numpy.typing.NDArray[numpy.int64] | None, rebuild_sums: bool, n_threads: typing.SupportsInt | typing.SupportsIndex) -> tuple[int, int]:
    """
    Bounded (Yinyang) assignment pass, in place; returns (n_moved, n_distances).
    """
@typing.overload
def kmeans_assign_bounded_dense(X: numpy.typing.NDArray[numpy.float64], centers: numpy.typing.NDArray[numpy.float64], slots: numpy.typing.NDArray[numpy.int64], shift: numpy.typing.NDArray[numpy.float64] | None, s_half: numpy.typing.NDArray[numpy.float64] | None, x_sq: numpy.typing.NDArray[numpy.float64], labels: numpy.typing.NDArray[numpy.int64], upper: numpy.typing.NDArray[numpy.float64], lower: numpy.typing.NDArray[numpy.float64], group_lower: numpy.typing.NDArray[numpy.float32], dcum: numpy.typing.NDArray[numpy.float64], sample_weight: numpy.typing.NDArray[numpy.float64] | None, sums: numpy.typing.NDArray[numpy.float64] | None, counts: numpy.typing.NDArray[numpy.float64] | None, members: numpy.typing.NDArray[numpy.int64] | None, rebuild_sums: bool, n_threads: typing.SupportsInt | typing.SupportsIndex) -> tuple[int, int]:
    """
    Bounded (Yinyang) assignment pass, in place; returns (n_moved, n_distances).
    """
@typing.overload
def kmeans_assign_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, centers: numpy.typing.NDArray[numpy.float32], labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeans_assign_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int64], data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, centers: numpy.typing.NDArray[numpy.float32], labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeans_assign_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, centers: numpy.typing.NDArray[numpy.float64], labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeans_assign_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int64], data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, centers: numpy.typing.NDArray[numpy.float64], labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeans_assign_dense(X: numpy.typing.NDArray[numpy.float32], centers: numpy.typing.NDArray[numpy.float32], labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Nearest centre of every row of a strided 2-D X.
    """
@typing.overload
def kmeans_assign_dense(X: numpy.typing.NDArray[numpy.float64], centers: numpy.typing.NDArray[numpy.float64], labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Nearest centre of every row of a strided 2-D X.
    """
def kmeans_group_lanes(item_size: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Centres per group of the bounded K-means assignment (SIMD lanes).
    """
@typing.overload
def kmeans_step_dense(X: numpy.typing.NDArray[numpy.float32], centers: numpy.typing.NDArray[numpy.float32], sample_weight: numpy.typing.NDArray[numpy.float32] | None, labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float32], sums: numpy.typing.NDArray[numpy.float32], counts: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    One Lloyd iteration (assign + update) in one pass over a strided 2-D X.
    """
@typing.overload
def kmeans_step_dense(X: numpy.typing.NDArray[numpy.float64], centers: numpy.typing.NDArray[numpy.float64], sample_weight: numpy.typing.NDArray[numpy.float64] | None, labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float64], sums: numpy.typing.NDArray[numpy.float64], counts: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    One Lloyd iteration (assign + update) in one pass over a strided 2-D X.
    """
@typing.overload
def kmeans_update_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, labels: numpy.typing.NDArray[numpy.int64], n_clusters: typing.SupportsInt | typing.SupportsIndex, sample_weight: numpy.typing.NDArray[numpy.float32] | None, sums: numpy.typing.NDArray[numpy.float32], counts: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeans_update_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int64], data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, labels: numpy.typing.NDArray[numpy.int64], n_clusters: typing.SupportsInt | typing.SupportsIndex, sample_weight: numpy.typing.NDArray[numpy.float32] | None, sums: numpy.typing.NDArray[numpy.float32], counts: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeans_update_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, labels: numpy.typing.NDArray[numpy.int64], n_clusters: typing.SupportsInt | typing.SupportsIndex, sample_weight: numpy.typing.NDArray[numpy.float64] | None, sums: numpy.typing.NDArray[numpy.float64], counts: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeans_update_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int64], data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, labels: numpy.typing.NDArray[numpy.int64], n_clusters: typing.SupportsInt | typing.SupportsIndex, sample_weight: numpy.typing.NDArray[numpy.float64] | None, sums: numpy.typing.NDArray[numpy.float64], counts: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeans_update_dense(X: numpy.typing.NDArray[numpy.float32], labels: numpy.typing.NDArray[numpy.int64], n_clusters: typing.SupportsInt | typing.SupportsIndex, sample_weight: numpy.typing.NDArray[numpy.float32] | None, sums: numpy.typing.NDArray[numpy.float32], counts: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeans_update_dense(X: numpy.typing.NDArray[numpy.float64], labels: numpy.typing.NDArray[numpy.int64], n_clusters: typing.SupportsInt | typing.SupportsIndex, sample_weight: numpy.typing.NDArray[numpy.float64] | None, sums: numpy.typing.NDArray[numpy.float64], counts: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeanspp_trials_dense(X: numpy.typing.NDArray[numpy.float32], cand: numpy.typing.NDArray[numpy.float64], closest: numpy.typing.NDArray[numpy.float64], sample_weight: numpy.typing.NDArray[numpy.float32] | None, pot: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    k-means++: potential sum_i w_i min(closest_i, ||x_i - cand_t||^2) of each candidate.
    """
@typing.overload
def kmeanspp_trials_dense(X: numpy.typing.NDArray[numpy.float64], cand: numpy.typing.NDArray[numpy.float64], closest: numpy.typing.NDArray[numpy.float64], sample_weight: numpy.typing.NDArray[numpy.float64] | None, pot: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    k-means++: potential sum_i w_i min(closest_i, ||x_i - cand_t||^2) of each candidate.
    """
@typing.overload
def kmeanspp_update_dense(X: numpy.typing.NDArray[numpy.float32], c: numpy.typing.NDArray[numpy.float64], closest: numpy.typing.NDArray[numpy.float64], sample_weight: numpy.typing.NDArray[numpy.float32] | None, cum: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    k-means++: fold a new centre into closest (in place) and write the prefix sums of w * closest.
    """
@typing.overload
def kmeanspp_update_dense(X: numpy.typing.NDArray[numpy.float64], c: numpy.typing.NDArray[numpy.float64], closest: numpy.typing.NDArray[numpy.float64], sample_weight: numpy.typing.NDArray[numpy.float64] | None, cum: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    k-means++: fold a new centre into closest (in place) and write the prefix sums of w * closest.
    """
@typing.overload
def merge_topk_rows(old_indptr: numpy.typing.NDArray[numpy.int64], old_indices: numpy.typing.NDArray[numpy.int32], old_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, replace: numpy.typing.NDArray[numpy.int64], r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int32], r_data: numpy.typing.NDArray[numpy.float32], r_rows: typing.SupportsInt | typing.SupportsIndex, add_indptr: numpy.typing.NDArray[numpy.int64], add_indices: numpy.typing.NDArray[numpy.int32], add_data: numpy.typing.NDArray[numpy.float32], k: typing.SupportsInt | typing.SupportsIndex, sort_cols: bool, n_threads: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.int32], numpy.typing.NDArray[numpy.float32]]:
    """
    Neighbour lists after an online update: rows replaced, or their best k merged with added candidates.
    """
@typing.overload
def merge_topk_rows(old_indptr: numpy.typing.NDArray[numpy.int64], old_indices: numpy.typing.NDArray[numpy.int64], old_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, replace: numpy.typing.NDArray[numpy.int64], r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int64], r_data: numpy.typing.NDArray[numpy.float32], r_rows: typing.SupportsInt | typing.SupportsIndex, add_indptr: numpy.typing.NDArray[numpy.int64], add_indices: numpy.typing.NDArray[numpy.int64], add_data: numpy.typing.NDArray[numpy.float32], k: typing.SupportsInt | typing.SupportsIndex, sort_cols: bool, n_threads: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float32]]:
    """
    Neighbour lists after an online update: rows replaced, or their best k merged with added candidates.
    """
def merge_topn(ids: collections.abc.Sequence, scores: collections.abc.Sequence, weights: numpy.typing.NDArray[numpy.float64], by_score: bool, width: typing.SupportsInt | typing.SupportsIndex, n_items: typing.SupportsInt | typing.SupportsIndex, keep: numpy.typing.NDArray[numpy.bool] | None, exclude: numpy.typing.NDArray[numpy.int64] | None, n: typing.SupportsInt | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float32]]:
    """
    Top-n (ids int64, scores float32; -1 / -inf padding) of the weighted sum of rank- or score-normalised ranked lists.
    """
@typing.overload
def ranked_topn(order: numpy.typing.NDArray[numpy.int64], exclude_indptr: numpy.typing.NDArray[numpy.int64], exclude_indices: numpy.typing.NDArray[numpy.int32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_items: typing.SupportsInt | typing.SupportsIndex, items: numpy.typing.NDArray[numpy.int64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    First n ids of a global ranking per row, skipping the row's excluded items (into pre-filled (u, n) items).
    """
@typing.overload
def ranked_topn(order: numpy.typing.NDArray[numpy.int64], exclude_indptr: numpy.typing.NDArray[numpy.int64], exclude_indices: numpy.typing.NDArray[numpy.int64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_items: typing.SupportsInt | typing.SupportsIndex, items: numpy.typing.NDArray[numpy.int64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    First n ids of a global ranking per row, skipping the row's excluded items (into pre-filled (u, n) items).
    """
@typing.overload
def ranking_hit_stats(recs: numpy.typing.NDArray[numpy.int32], rows: numpy.typing.NDArray[numpy.int64], test_indptr: numpy.typing.NDArray[numpy.int64], test_indices: numpy.typing.NDArray[numpy.int32], n_items: typing.SupportsInt | typing.SupportsIndex, ks: numpy.typing.NDArray[numpy.int64], disc: numpy.typing.NDArray[numpy.float64], n_hits: numpy.typing.NDArray[numpy.float64], dcg: numpy.typing.NDArray[numpy.float64], ap: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Per-user hits, DCG and AP sums at increasing cut-offs ks (into (len(ks), u) float64 arrays).
    """
@typing.overload
def ranking_hit_stats(recs: numpy.typing.NDArray[numpy.int32], rows: numpy.typing.NDArray[numpy.int64], test_indptr: numpy.typing.NDArray[numpy.int64], test_indices: numpy.typing.NDArray[numpy.int64], n_items: typing.SupportsInt | typing.SupportsIndex, ks: numpy.typing.NDArray[numpy.int64], disc: numpy.typing.NDArray[numpy.float64], n_hits: numpy.typing.NDArray[numpy.float64], dcg: numpy.typing.NDArray[numpy.float64], ap: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Per-user hits, DCG and AP sums at increasing cut-offs ks (into (len(ks), u) float64 arrays).
    """
@typing.overload
def ranking_hit_stats(recs: numpy.typing.NDArray[numpy.int64], rows: numpy.typing.NDArray[numpy.int64], test_indptr: numpy.typing.NDArray[numpy.int64], test_indices: numpy.typing.NDArray[numpy.int32], n_items: typing.SupportsInt | typing.SupportsIndex, ks: numpy.typing.NDArray[numpy.int64], disc: numpy.typing.NDArray[numpy.float64], n_hits: numpy.typing.NDArray[numpy.float64], dcg: numpy.typing.NDArray[numpy.float64], ap: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Per-user hits, DCG and AP sums at increasing cut-offs ks (into (len(ks), u) float64 arrays).
    """
@typing.overload
def ranking_hit_stats(recs: numpy.typing.NDArray[numpy.int64], rows: numpy.typing.NDArray[numpy.int64], test_indptr: numpy.typing.NDArray[numpy.int64], test_indices: numpy.typing.NDArray[numpy.int64], n_items: typing.SupportsInt | typing.SupportsIndex, ks: numpy.typing.NDArray[numpy.int64], disc: numpy.typing.NDArray[numpy.float64], n_hits: numpy.typing.NDArray[numpy.float64], dcg: numpy.typing.NDArray[numpy.float64], ap: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Per-user hits, DCG and AP sums at increasing cut-offs ks (into (len(ks), u) float64 arrays).
    """
@typing.overload
def ranking_hits(recs: numpy.typing.NDArray[numpy.int32], rows: numpy.typing.NDArray[numpy.int64], test_indptr: numpy.typing.NDArray[numpy.int64], test_indices: numpy.typing.NDArray[numpy.int32], n_items: typing.SupportsInt | typing.SupportsIndex, hits: numpy.typing.NDArray[numpy.bool], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    hits[r, q] = recs[r, q] is stored in test row rows[r] (into a pre-allocated bool (u, K) array).
    """
@typing.overload
def ranking_hits(recs: numpy.typing.NDArray[numpy.int32], rows: numpy.typing.NDArray[numpy.int64], test_indptr: numpy.typing.NDArray[numpy.int64], test_indices: numpy.typing.NDArray[numpy.int64], n_items: typing.SupportsInt | typing.SupportsIndex, hits: numpy.typing.NDArray[numpy.bool], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    hits[r, q] = recs[r, q] is stored in test row rows[r] (into a pre-allocated bool (u, K) array).
    """
@typing.overload
def ranking_hits(recs: numpy.typing.NDArray[numpy.int64], rows: numpy.typing.NDArray[numpy.int64], test_indptr: numpy.typing.NDArray[numpy.int64], test_indices: numpy.typing.NDArray[numpy.int32], n_items: typing.SupportsInt | typing.SupportsIndex, hits: numpy.typing.NDArray[numpy.bool], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    hits[r, q] = recs[r, q] is stored in test row rows[r] (into a pre-allocated bool (u, K) array).
    """
@typing.overload
def ranking_hits(recs: numpy.typing.NDArray[numpy.int64], rows: numpy.typing.NDArray[numpy.int64], test_indptr: numpy.typing.NDArray[numpy.int64], test_indices: numpy.typing.NDArray[numpy.int64], n_items: typing.SupportsInt | typing.SupportsIndex, hits: numpy.typing.NDArray[numpy.bool], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    hits[r, q] = recs[r, q] is stored in test row rows[r] (into a pre-allocated bool (u, K) array).
    """
@typing.overload
def topk_scores(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int32], w_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_inner: typing.SupportsInt | typing.SupportsIndex, r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int32], r_data: numpy.typing.NDArray[numpy.float32], n_items: typing.SupportsInt | typing.SupportsIndex, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int32] | None, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of W @ R per row into pre-filled (u, n) arrays.
    """
@typing.overload
def topk_scores(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int64], w_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_inner: typing.SupportsInt | typing.SupportsIndex, r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int64], r_data: numpy.typing.NDArray[numpy.float32], n_items: typing.SupportsInt | typing.SupportsIndex, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int64] | None, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of W @ R per row into pre-filled (u, n) arrays.
    """
@typing.overload
def topk_scores(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int32], w_data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_inner: typing.SupportsInt | typing.SupportsIndex, r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int32], r_data: numpy.typing.NDArray[numpy.float64], n_items: typing.SupportsInt | typing.SupportsIndex, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int32] | None, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of W @ R per row into pre-filled (u, n) arrays.
    """
@typing.overload
def topk_scores(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int64], w_data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_inner: typing.SupportsInt | typing.SupportsIndex, r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int64], r_data: numpy.typing.NDArray[numpy.float64], n_items: typing.SupportsInt | typing.SupportsIndex, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int64] | None, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of W @ R per row into pre-filled (u, n) arrays.
    """
@typing.overload
def user_topn_dense(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int32], w_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, B: numpy.typing.NDArray[numpy.float32], keep: numpy.typing.NDArray[numpy.bool] | None, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int32] | None, drop_zero: bool, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of W @ B (B dense, C-contiguous float32) per query row into pre-filled (u, n) arrays.
    """
@typing.overload
def user_topn_dense(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int64], w_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, B: numpy.typing.NDArray[numpy.float32], keep: numpy.typing.NDArray[numpy.bool] | None, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int64] | None, drop_zero: bool, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of W @ B (B dense, C-contiguous float32) per query row into pre-filled (u, n) arrays.
    """
@typing.overload
def user_topn_dual(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int32], w_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, c_indptr: numpy.typing.NDArray[numpy.int64], c_indices: numpy.typing.NDArray[numpy.int32], c_data: numpy.typing.NDArray[numpy.float32], r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int32], r_data: numpy.typing.NDArray[numpy.float32], M: numpy.typing.NDArray[numpy.float32], diag: numpy.typing.NDArray[numpy.float32], keep: numpy.typing.NDArray[numpy.bool] | None, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int32] | None, drop_zero: bool, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of the dual-form EASE scores per query row into pre-filled (u, n) arrays (model checked where read).
    """
@typing.overload
def user_topn_dual(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int64], w_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, c_indptr: numpy.typing.NDArray[numpy.int64], c_indices: numpy.typing.NDArray[numpy.int32], c_data: numpy.typing.NDArray[numpy.float32], r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int64], r_data: numpy.typing.NDArray[numpy.float32], M: numpy.typing.NDArray[numpy.float32], diag: numpy.typing.NDArray[numpy.float32], keep: numpy.typing.NDArray[numpy.bool] | None, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int64] | None, drop_zero: bool, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of the dual-form EASE scores per query row into pre-filled (u, n) arrays (model checked where read).
    """
@typing.overload
def user_topn_factors(U: numpy.typing.NDArray[numpy.float32], B: numpy.typing.NDArray[numpy.float32], keep: numpy.typing.NDArray[numpy.bool] | None, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int32] | None, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of U @ B (U dense factors, B dense (f, m)) per row into pre-filled (u, n) arrays; zero scores dropped.
    """
@typing.overload
def user_topn_factors(U: numpy.typing.NDArray[numpy.float32], B: numpy.typing.NDArray[numpy.float32], keep: numpy.typing.NDArray[numpy.bool] | None, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int64] | None, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of U @ B (U dense factors, B dense (f, m)) per row into pre-filled (u, n) arrays; zero scores dropped.
    """
@typing.overload
def user_topn_sparse(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int32], w_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int32], r_data: numpy.typing.NDArray[numpy.float32], n_items: typing.SupportsInt | typing.SupportsIndex, keep: numpy.typing.NDArray[numpy.bool] | None, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int32] | None, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of W @ R per query row (R checked only where read) into pre-filled (u, n) arrays.
    """
@typing.overload
def user_topn_sparse(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int64], w_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int64], r_data: numpy.typing.NDArray[numpy.float32], n_items: typing.SupportsInt | typing.SupportsIndex, keep: numpy.typing.NDArray[numpy.bool] | None, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int64] | None, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Top-n of W @ R per query row (R checked only where read) into pre-filled (u, n) arrays.
    """
has_openmp: bool = True
