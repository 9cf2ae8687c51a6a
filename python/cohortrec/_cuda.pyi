# Type stubs of the native module cohortrec._cuda, generated from the bindings with
#   pybind11-stubgen cohortrec._cuda -o <dir> --numpy-array-remove-parameters
# tests/test_architecture.py checks they list every function of the module.
"""
cohortrec CUDA kernels. Use cohortrec.ops, which validates inputs and dispatches.
"""
from __future__ import annotations
import numpy
import numpy.typing
import typing
__all__: list[str] = ['CudaError', 'DeviceArray', 'cosine_topk', 'cosine_topk_ptr', 'current_device', 'device_count', 'device_info', 'driver_version', 'has_kernels', 'kmeans_assign_csr', 'kmeans_assign_csr_ptr', 'kmeans_assign_dense', 'kmeans_assign_dense_ptr', 'kmeans_update_csr', 'kmeans_update_csr_ptr', 'kmeans_update_dense', 'kmeans_update_dense_ptr', 'memory_info', 'runtime_version', 'synchronize', 'topk_scores', 'topk_scores_ptr']
class CudaError(RuntimeError):
    pass
class DeviceArray:
    """
    A 1-D device array owning its memory (exposes __cuda_array_interface__).
    """
    def __len__(self) -> int:
        ...
    @property
    def __cuda_array_interface__(self) -> dict:
        ...
    @property
    def device(self) -> int:
        ...
    @property
    def ptr(self) -> int:
        ...
    @property
    def shape(self) -> tuple[int]:
        ...
    @property
    def typestr(self) -> str:
        ...
@typing.overload
def cosine_topk(a_indptr: numpy.typing.NDArray[numpy.int64], a_indices: numpy.typing.NDArray[numpy.int32], a_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, b_indptr: numpy.typing.NDArray[numpy.int64] | None, b_indices: numpy.typing.NDArray[numpy.int32] | None, b_data: numpy.typing.NDArray[numpy.float32] | None, p: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, threshold: typing.SupportsFloat | typing.SupportsIndex | None, exclude_self: bool, device: typing.SupportsInt | typing.SupportsIndex = -1) -> tuple:
    """
    Top-k cosine neighbours of host CSR arrays (int64 indptr, int32 indices); returns (indptr, indices, data) NumPy arrays. Pass None for B to use A.
    """
@typing.overload
def cosine_topk(a_indptr: numpy.typing.NDArray[numpy.int64], a_indices: numpy.typing.NDArray[numpy.int32], a_data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, b_indptr: numpy.typing.NDArray[numpy.int64] | None, b_indices: numpy.typing.NDArray[numpy.int32] | None, b_data: numpy.typing.NDArray[numpy.float64] | None, p: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, threshold: typing.SupportsFloat | typing.SupportsIndex | None, exclude_self: bool, device: typing.SupportsInt | typing.SupportsIndex = -1) -> tuple:
    """
    Top-k cosine neighbours of host CSR arrays (int64 indptr, int32 indices); returns (indptr, indices, data) NumPy arrays. Pass None for B to use A.
    """
def cosine_topk_ptr(dtype: str, a_indptr: typing.SupportsInt | typing.SupportsIndex, a_indices: typing.SupportsInt | typing.SupportsIndex, a_data: typing.SupportsInt | typing.SupportsIndex, n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, nnz_a: typing.SupportsInt | typing.SupportsIndex, b_indptr: typing.SupportsInt | typing.SupportsIndex, b_indices: typing.SupportsInt | typing.SupportsIndex, b_data: typing.SupportsInt | typing.SupportsIndex, p: typing.SupportsInt | typing.SupportsIndex, nnz_b: typing.SupportsInt | typing.SupportsIndex, same: bool, k: typing.SupportsInt | typing.SupportsIndex, threshold: typing.SupportsFloat | typing.SupportsIndex | None, exclude_self: bool, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    """
    cosine_topk on device pointers; returns (indptr, indices, data) DeviceArrays.
    """
def current_device() -> int:
    """
    The CUDA runtime's current device.
    """
def device_count() -> int:
    """
    Number of visible CUDA devices.
    """
def device_info(device: typing.SupportsInt | typing.SupportsIndex = 0) -> dict:
    """
    Name, compute capability, SMs, memory, L2 size.
    """
def driver_version() -> int:
    """
    Version of the installed CUDA driver (0 if none).
    """
@typing.overload
def kmeans_assign_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, centers: numpy.typing.NDArray[numpy.float32], labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float32], device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    ...
@typing.overload
def kmeans_assign_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, centers: numpy.typing.NDArray[numpy.float64], labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float64], device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    ...
def kmeans_assign_csr_ptr(dtype: str, indptr: typing.SupportsInt | typing.SupportsIndex, indices: typing.SupportsInt | typing.SupportsIndex, data: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, d: typing.SupportsInt | typing.SupportsIndex, nnz: typing.SupportsInt | typing.SupportsIndex, centers: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, labels: typing.SupportsInt | typing.SupportsIndex, sq_dist: typing.SupportsInt | typing.SupportsIndex, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> bool:
    ...
@typing.overload
def kmeans_assign_dense(X: numpy.typing.NDArray[numpy.float32], centers: numpy.typing.NDArray[numpy.float32], labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float32], precision: str = 'fp32', device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    """
    Nearest centre of every row of a C-contiguous X.
    """
@typing.overload
def kmeans_assign_dense(X: numpy.typing.NDArray[numpy.float64], centers: numpy.typing.NDArray[numpy.float64], labels: numpy.typing.NDArray[numpy.int64], sq_dist: numpy.typing.NDArray[numpy.float64], precision: str = 'fp32', device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    """
    Nearest centre of every row of a C-contiguous X.
    """
def kmeans_assign_dense_ptr(dtype: str, X: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, d: typing.SupportsInt | typing.SupportsIndex, centers: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, labels: typing.SupportsInt | typing.SupportsIndex, sq_dist: typing.SupportsInt | typing.SupportsIndex, precision: str, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> bool:
    """
    Returns False when a row of X is not finite.
    """
@typing.overload
def kmeans_update_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, labels: numpy.typing.NDArray[numpy.int64], n_clusters: typing.SupportsInt | typing.SupportsIndex, sample_weight: numpy.typing.NDArray[numpy.float32] | None, sums: numpy.typing.NDArray[numpy.float32], counts: numpy.typing.NDArray[numpy.float32], device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    ...
@typing.overload
def kmeans_update_csr(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_cols: typing.SupportsInt | typing.SupportsIndex, labels: numpy.typing.NDArray[numpy.int64], n_clusters: typing.SupportsInt | typing.SupportsIndex, sample_weight: numpy.typing.NDArray[numpy.float64] | None, sums: numpy.typing.NDArray[numpy.float64], counts: numpy.typing.NDArray[numpy.float64], device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    ...
def kmeans_update_csr_ptr(dtype: str, indptr: typing.SupportsInt | typing.SupportsIndex, indices: typing.SupportsInt | typing.SupportsIndex, data: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, d: typing.SupportsInt | typing.SupportsIndex, nnz: typing.SupportsInt | typing.SupportsIndex, labels: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, sample_weight: typing.SupportsInt | typing.SupportsIndex, sums: typing.SupportsInt | typing.SupportsIndex, counts: typing.SupportsInt | typing.SupportsIndex, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
@typing.overload
def kmeans_update_dense(X: numpy.typing.NDArray[numpy.float32], labels: numpy.typing.NDArray[numpy.int64], n_clusters: typing.SupportsInt | typing.SupportsIndex, sample_weight: numpy.typing.NDArray[numpy.float32] | None, sums: numpy.typing.NDArray[numpy.float32], counts: numpy.typing.NDArray[numpy.float32], device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    ...
@typing.overload
def kmeans_update_dense(X: numpy.typing.NDArray[numpy.float64], labels: numpy.typing.NDArray[numpy.int64], n_clusters: typing.SupportsInt | typing.SupportsIndex, sample_weight: numpy.typing.NDArray[numpy.float64] | None, sums: numpy.typing.NDArray[numpy.float64], counts: numpy.typing.NDArray[numpy.float64], device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    ...
def kmeans_update_dense_ptr(dtype: str, X: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, d: typing.SupportsInt | typing.SupportsIndex, labels: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, sample_weight: typing.SupportsInt | typing.SupportsIndex, sums: typing.SupportsInt | typing.SupportsIndex, counts: typing.SupportsInt | typing.SupportsIndex, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def memory_info(device: typing.SupportsInt | typing.SupportsIndex = -1) -> tuple:
    """
    (free, total) bytes of device memory.
    """
def runtime_version() -> int:
    """
    CUDA runtime version built against.
    """
def synchronize() -> None:
    ...
@typing.overload
def topk_scores(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int32], w_data: numpy.typing.NDArray[numpy.float32], n_rows: typing.SupportsInt | typing.SupportsIndex, n_inner: typing.SupportsInt | typing.SupportsIndex, r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int32], r_data: numpy.typing.NDArray[numpy.float32], n_items: typing.SupportsInt | typing.SupportsIndex, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int32] | None, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float32], device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    """
    Top-n of W @ R per row of host CSR arrays into (u, n) NumPy arrays.
    """
@typing.overload
def topk_scores(w_indptr: numpy.typing.NDArray[numpy.int64], w_indices: numpy.typing.NDArray[numpy.int32], w_data: numpy.typing.NDArray[numpy.float64], n_rows: typing.SupportsInt | typing.SupportsIndex, n_inner: typing.SupportsInt | typing.SupportsIndex, r_indptr: numpy.typing.NDArray[numpy.int64], r_indices: numpy.typing.NDArray[numpy.int32], r_data: numpy.typing.NDArray[numpy.float64], n_items: typing.SupportsInt | typing.SupportsIndex, e_indptr: numpy.typing.NDArray[numpy.int64] | None, e_indices: numpy.typing.NDArray[numpy.int32] | None, items: numpy.typing.NDArray[numpy.int64], scores: numpy.typing.NDArray[numpy.float64], device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    """
    Top-n of W @ R per row of host CSR arrays into (u, n) NumPy arrays.
    """
def topk_scores_ptr(dtype: str, w_indptr: typing.SupportsInt | typing.SupportsIndex, w_indices: typing.SupportsInt | typing.SupportsIndex, w_data: typing.SupportsInt | typing.SupportsIndex, n_rows: typing.SupportsInt | typing.SupportsIndex, n_inner: typing.SupportsInt | typing.SupportsIndex, nnz_w: typing.SupportsInt | typing.SupportsIndex, r_indptr: typing.SupportsInt | typing.SupportsIndex, r_indices: typing.SupportsInt | typing.SupportsIndex, r_data: typing.SupportsInt | typing.SupportsIndex, n_items: typing.SupportsInt | typing.SupportsIndex, nnz_r: typing.SupportsInt | typing.SupportsIndex, e_indptr: typing.SupportsInt | typing.SupportsIndex, e_indices: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, item_map: typing.SupportsInt | typing.SupportsIndex, items: typing.SupportsInt | typing.SupportsIndex, scores: typing.SupportsInt | typing.SupportsIndex, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    topk_scores on device pointers (0 = none) into (u, n) arrays.
    """
has_kernels: bool = True
