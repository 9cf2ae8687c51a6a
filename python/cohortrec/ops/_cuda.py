"""The GPU path of :mod:`cohortrec.ops`: conversion and dispatch to ``cohortrec._cuda``.

Two entry kinds, used by the ops once :func:`cohortrec._backend.resolve_device`
has chosen CUDA:

* **Host arrays** (NumPy / SciPy): the ops validate and convert exactly as for
  the CPU, then call the function of this module with the *same signature as*
  the :mod:`cohortrec._core` kernel (``cosine_topk``, ``topk_scores``,
  ``kmeans_assign_dense`` ...). The arrays are copied to the device, the result
  comes back as NumPy arrays, just as from the CPU kernel.
* **Device arrays** -- CuPy arrays, ``cupyx.scipy.sparse`` matrices, PyTorch
  CUDA tensors (anything exposing ``__cuda_array_interface__`` for dense
  data): ``*_device`` functions validate on the device (the same checks and
  messages as the host path), pass raw pointers and the caller's current
  stream to the kernels (zero-copy), and return results on the same device
  and in the same library (CuPy / ``cupyx.scipy.sparse`` / torch).

``cupy`` and ``torch`` are imported lazily, only when such inputs arrive.

Limits of the GPU kernels (checked, with a clear ``ValueError``): fewer than
2**31 - 1 rows per matrix and column ids below 2**31 once the column space is
compressed to the columns in use.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

from cohortrec.ops import _backend
from cohortrec.ops._backend import DeviceUnavailableError
from cohortrec.ops._validation import as_csr, check_int, value_dtype

_INT32_MAX = np.iinfo(np.int32).max
PRECISIONS = ("fp32", "tf32", "bf16")


# ---------------------------------------------------------------------------
# module / device
# ---------------------------------------------------------------------------
def _module():
    module, reason = _backend._cuda_status()
    if module is None:
        raise DeviceUnavailableError(f"the CUDA path cannot be used: {reason}")
    return module


def _host_device() -> int:
    """Device for host inputs: $COHORTREC_CUDA_DEVICE, else the runtime's current one."""
    try:
        return int(os.environ.get("COHORTREC_CUDA_DEVICE", "-1"))
    except ValueError:
        return -1


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def _as_int32_ids(ids: np.ndarray, bound: int, what: str) -> np.ndarray:
    if bound > _INT32_MAX:
        raise ValueError(f"{what} has {bound} columns; the CUDA kernels need fewer than 2**31")
    return np.ascontiguousarray(ids, dtype=np.int32)


def _compress_host(idx_list, n_cols):
    """Renumber the column ids in use (needed when n_cols >= 2**31)."""
    used = np.unique(np.concatenate([np.asarray(i, dtype=np.int64) for i in idx_list]))
    return [np.searchsorted(used, i).astype(np.int32) for i in idx_list], len(used), used


def _rows_ok(n: int, what: str) -> None:
    if n >= _INT32_MAX:
        raise ValueError(f"{what} has {n} rows; the CUDA kernels need fewer than 2**31 - 1")


# ---------------------------------------------------------------------------
# host arrays: same signatures as cohortrec._core (n_threads is ignored)
# ---------------------------------------------------------------------------
def cosine_topk(a_indptr, a_indices, a_data, n, m, b_indptr, b_indices, b_data, p, k, threshold,
                exclude_self, n_threads=None):
    """``_core.cosine_topk`` on the GPU: returns (indptr int64, indices int32, data)."""
    mod = _module()
    same = b_indptr is None
    _rows_ok(n, "A")
    _rows_ok(p, "B")
    if m > _INT32_MAX:
        ids, m, _ = _compress_host([a_indices] if same else [a_indices, b_indices], m)
        a_indices = ids[0]
        b_indices = None if same else ids[1]
    a_indices = _as_int32_ids(a_indices, m, "A")
    if not same:
        b_indices = _as_int32_ids(b_indices, m, "B")
    return mod.cosine_topk(
        np.ascontiguousarray(a_indptr, dtype=np.int64), a_indices, np.ascontiguousarray(a_data), n, m,
        None if same else np.ascontiguousarray(b_indptr, dtype=np.int64), b_indices,
        None if same else np.ascontiguousarray(b_data), p, int(k), threshold, bool(exclude_self),
        _host_device())


def topk_scores(w_indptr, w_indices, w_data, u, j, r_indptr, r_indices, r_data, m_items, e_indptr,
                e_indices, items, scores, n_threads=None):
    """``_core.topk_scores`` on the GPU: fills the (u, n) ``items`` / ``scores``."""
    mod = _module()
    _rows_ok(u, "W")
    _rows_ok(j, "R")
    used = None
    if m_items > _INT32_MAX:
        ids, m_items, used = _compress_host([r_indices] + ([] if e_indices is None else [e_indices]), m_items)
        r_indices = ids[0]
        if e_indices is not None:
            e_indices = ids[1]
    w_indices = _as_int32_ids(w_indices, j, "W")
    r_indices = _as_int32_ids(r_indices, m_items, "R")
    if e_indices is not None:
        e_indices = _as_int32_ids(e_indices, m_items, "exclude")
        e_indptr = np.ascontiguousarray(e_indptr, dtype=np.int64)
    mod.topk_scores(np.ascontiguousarray(w_indptr, dtype=np.int64), w_indices, np.ascontiguousarray(w_data), u, j,
                    np.ascontiguousarray(r_indptr, dtype=np.int64), r_indices, np.ascontiguousarray(r_data),
                    m_items, e_indptr, e_indices, items, scores, _host_device())
    if used is not None:
        found = items >= 0
        items[found] = used[items[found]]


def kmeans_assign_dense(X, centers, labels, sq_dist, n_threads=None, *, precision="fp32"):
    """``_core.kmeans_assign_dense`` on the GPU (X is made C-contiguous)."""
    check_precision(precision)
    _rows_ok(X.shape[0], "X")
    _module().kmeans_assign_dense(np.ascontiguousarray(X), np.ascontiguousarray(centers), labels, sq_dist,
                                  precision, _host_device())


def kmeans_assign_csr(indptr, indices, data, n, d, centers, labels, sq_dist, n_threads=None, *,
                      precision="fp32"):
    """``_core.kmeans_assign_csr`` on the GPU (``precision`` only matters for dense X)."""
    check_precision(precision)
    _rows_ok(n, "X")
    _module().kmeans_assign_csr(np.ascontiguousarray(indptr, dtype=np.int64), _as_int32_ids(indices, d, "X"),
                                np.ascontiguousarray(data), n, d, np.ascontiguousarray(centers), labels, sq_dist,
                                _host_device())


def kmeans_update_dense(X, labels, n_clusters, sample_weight, sums, counts, n_threads=None):
    """``_core.kmeans_update_dense`` on the GPU."""
    _rows_ok(X.shape[0], "X")
    _module().kmeans_update_dense(np.ascontiguousarray(X), np.ascontiguousarray(labels, dtype=np.int64),
                                  int(n_clusters), sample_weight, sums, counts, _host_device())


def kmeans_update_csr(indptr, indices, data, n, d, labels, n_clusters, sample_weight, sums, counts,
                      n_threads=None):
    """``_core.kmeans_update_csr`` on the GPU."""
    _rows_ok(n, "X")
    _module().kmeans_update_csr(np.ascontiguousarray(indptr, dtype=np.int64), _as_int32_ids(indices, d, "X"),
                                np.ascontiguousarray(data), n, d, np.ascontiguousarray(labels, dtype=np.int64),
                                int(n_clusters), sample_weight, sums, counts, _host_device())


# ---------------------------------------------------------------------------
# device arrays
# ---------------------------------------------------------------------------
def _is_cupyx_sparse(x: Any) -> bool:
    return type(x).__module__.startswith("cupyx.scipy.sparse")


def _is_torch_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_device_array(x: Any) -> bool:
    """True for CuPy arrays, cupyx sparse matrices and CUDA torch tensors."""
    if x is None or isinstance(x, np.ndarray) or sp.issparse(x):
        return False
    if _is_cupyx_sparse(x):
        return True
    if _is_torch_tensor(x):
        return bool(x.is_cuda)
    return hasattr(x, "__cuda_array_interface__")


def on_device(*arrays: Any) -> bool:
    """Whether any of ``arrays`` lives in CUDA device memory."""
    return any(is_device_array(a) for a in arrays)


def _require_cuda(op: str, device: str):
    """The _cuda module for device inputs, or a clear error."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be one of ('auto', 'cpu', 'cuda'), got {device!r}")
    if device == "cpu":
        raise ValueError(
            f"{op}: the inputs are CUDA arrays but device='cpu'; use device='cuda' or 'auto', or move "
            "them to the host first (CuPy: .get(), torch: .cpu())")
    module, reason = _backend._cuda_status()
    if module is None:
        raise DeviceUnavailableError(f"{op}: the inputs are CUDA arrays, but {reason}")
    if not getattr(module, "has_kernels", False):
        raise DeviceUnavailableError(f"{op}: this build of cohortrec has no CUDA kernels")
    return module


class _CuPy:
    """CuPy adapter (dense arrays and cupyx.scipy.sparse matrices)."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy
        import cupyx.scipy.sparse

        self.cp = cupy
        self.sparse = cupyx.scipy.sparse

    def device_of(self, x) -> int:
        if _is_cupyx_sparse(x):
            return int(x.data.device.id)
        return int(x.device.id)

    def context(self, dev: int):
        return self.cp.cuda.Device(dev)

    def stream(self, dev: int) -> int:
        return int(self.cp.cuda.get_current_stream().ptr)

    @staticmethod
    def ptr(x) -> int:
        return int(x.data.ptr) if x is not None and x.size else 0

    def asarray(self, x, dev: int, dtype=None):
        with self.cp.cuda.Device(dev):
            return self.cp.asarray(x, dtype=dtype)

    def contiguous(self, x, dtype):
        return self.cp.ascontiguousarray(x, dtype=dtype)

    def np_dtype(self, x) -> np.dtype:
        return np.dtype(x.dtype)

    def empty(self, shape, dtype, dev):
        with self.cp.cuda.Device(dev):
            return self.cp.empty(shape, dtype=dtype)

    def full(self, shape, value, dtype, dev):
        with self.cp.cuda.Device(dev):
            return self.cp.full(shape, value, dtype=dtype)

    def all_finite(self, x) -> bool:
        return bool(self.cp.isfinite(x).all()) if x.size else True

    def min_max(self, x):
        return int(x.min()), int(x.max())

    def wrap(self, device_array, dtype, dev):
        """Zero-copy view of a _cuda.DeviceArray (keeps it alive)."""
        if len(device_array) == 0:
            return self.empty(0, dtype, dev)
        with self.cp.cuda.Device(dev):
            return self.cp.asarray(device_array)


class _Torch:
    """PyTorch adapter (dense CUDA tensors)."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        self.t = torch
        self._to_torch = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
                          np.dtype(np.int64): torch.int64, np.dtype(np.int32): torch.int32}

    def device_of(self, x) -> int:
        return int(x.device.index if x.device.index is not None else self.t.cuda.current_device())

    def device(self, dev: int):
        return self.t.device("cuda", dev)

    def context(self, dev: int):
        return self.t.cuda.device(dev)

    def stream(self, dev: int) -> int:
        return int(self.t.cuda.current_stream(dev).cuda_stream)

    @staticmethod
    def ptr(x) -> int:
        return int(x.data_ptr()) if x is not None and x.numel() else 0

    def np_dtype(self, x) -> np.dtype:
        t = self.t
        mapping = {t.float32: np.float32, t.float64: np.float64, t.float16: np.float16,
                   t.bfloat16: np.float16, t.bool: np.bool_, t.uint8: np.uint8, t.int8: np.int8,
                   t.int16: np.int16, t.int32: np.int32, t.int64: np.int64}
        if x.dtype in mapping:
            return np.dtype(mapping[x.dtype])
        return np.dtype(np.complex128) if x.is_complex() else np.dtype(object)

    def asarray(self, x, dev: int, dtype=None):
        device = self.device(dev)
        if isinstance(x, self.t.Tensor):
            x = x.detach().to(device)
            return x if dtype is None else x.to(self._to_torch[np.dtype(dtype)])
        if hasattr(x, "__cuda_array_interface__"):
            x = self.t.as_tensor(x, device=device)
            return x if dtype is None else x.to(self._to_torch[np.dtype(dtype)])
        arr = np.asarray(x)
        if dtype is not None:
            arr = arr.astype(dtype)
        elif arr.dtype.kind == "u" and arr.dtype.itemsize > 1:  # torch lacks most unsigned types
            arr = arr.astype(np.int64)
        return self.t.as_tensor(arr, device=device)

    def contiguous(self, x, dtype):
        return x.detach().to(self._to_torch[np.dtype(dtype)]).contiguous()

    def empty(self, shape, dtype, dev):
        return self.t.empty(shape, dtype=self._to_torch[np.dtype(dtype)], device=self.device(dev))

    def full(self, shape, value, dtype, dev):
        return self.t.full(shape, value, dtype=self._to_torch[np.dtype(dtype)], device=self.device(dev))

    def all_finite(self, x) -> bool:
        return bool(self.t.isfinite(x).all()) if x.numel() else True

    def min_max(self, x):
        return int(x.min()), int(x.max())

    def wrap(self, device_array, dtype, dev):
        if len(device_array) == 0:
            return self.empty(0, dtype, dev)
        return self.t.as_tensor(device_array, device=self.device(dev))


def _lib_for(x):
    if _is_torch_tensor(x):
        if x.layout != _Torch().t.strided:
            raise TypeError("sparse torch tensors are not supported; pass a cupyx.scipy.sparse or "
                            "scipy.sparse matrix, or a dense tensor")
        return _Torch()
    return _CuPy()


def _dtype_str(dtype) -> str:
    return "float32" if np.dtype(dtype) == np.float32 else "float64"


# ------------------------------------------------------------ sparse helpers
def _device_csr(lib: _CuPy, M, name: str, dtype=None):
    """A canonical cupyx CSR matrix of float ``dtype`` (host scipy input is copied over)."""
    csp = lib.sparse
    if not (sp.issparse(M) or _is_cupyx_sparse(M)):
        raise TypeError(f"{name} must be a sparse matrix (cupyx.scipy.sparse or scipy.sparse, CSR preferred), "
                        f"got {type(M).__name__}")
    if dtype is None:
        dtype = value_dtype(M.dtype, name)
    else:
        value_dtype(M.dtype, name)
    if sp.issparse(M):  # a host matrix next to device ones: convert as the CPU path does, then copy
        M = M.tocsr() if M.format != "csr" else M
        M = csp.csr_matrix(sp.csr_matrix(M, dtype=dtype))
    if M.format != "csr":
        M = M.tocsr()
    if M.dtype != dtype:
        M = M.astype(dtype)
    if not M.has_canonical_format:
        M = M.copy()
        M.sum_duplicates()
    if M.nnz and not lib.all_finite(M.data):
        raise ValueError(f"{name} contains NaN or infinite values")
    return M


def _sparse_dtype(M, name: str) -> np.dtype:
    if not (sp.issparse(M) or _is_cupyx_sparse(M)):
        raise TypeError(f"{name} must be a sparse matrix (cupyx.scipy.sparse or scipy.sparse, CSR preferred), "
                        f"got {type(M).__name__}")
    return value_dtype(M.dtype, name)


def _compress_device(lib: _CuPy, idx_list, n_cols: int, total_nnz: int):
    """Device twin of _validation.compress_columns on index arrays (also used when n_cols >= 2**31)."""
    cp = lib.cp
    if n_cols <= 4 * total_nnz + 4096 and n_cols <= _INT32_MAX:
        return [i.astype(cp.int32, copy=False) for i in idx_list], n_cols, None
    used = cp.unique(cp.concatenate([i.astype(cp.int64) for i in idx_list]))
    return [cp.searchsorted(used, i.astype(cp.int64)).astype(cp.int32) for i in idx_list], int(used.size), used


# ------------------------------------------------------------------- ops
def cosine_topk_device(A, B, *, k: int, threshold: Optional[float], exclude_self: bool, device: str):
    """cosine_topk for cupyx.scipy.sparse input; returns a cupyx CSR matrix on the same device."""
    mod = _require_cuda("cosine_topk", device)
    for M in (A, B):
        if _is_torch_tensor(M):
            raise TypeError("cosine_topk takes sparse matrices: pass cupyx.scipy.sparse or scipy.sparse, "
                            "not torch tensors")
    lib = _CuPy()
    same = B is None
    dtype = _sparse_dtype(A, "A") if same else np.result_type(_sparse_dtype(A, "A"), _sparse_dtype(B, "B"))
    dev = lib.device_of(A) if _is_cupyx_sparse(A) else lib.device_of(B)
    with lib.context(dev):
        A_ = _device_csr(lib, A, "A", dtype)
        B_ = A_ if same else _device_csr(lib, B, "B", dtype)
        if not same and A_.shape[1] != B_.shape[1]:
            raise ValueError(f"B must have as many columns as A: A has shape {A_.shape}, B has shape {B_.shape}")
        n, m = A_.shape
        p = B_.shape[0]
        _rows_ok(n, "A")
        _rows_ok(p, "B")
        ids, m_c, _ = _compress_device(lib, [A_.indices] if same else [A_.indices, B_.indices], m,
                                       A_.nnz + (0 if same else B_.nnz))
        a_ptr = A_.indptr.astype(lib.cp.int64)
        b_ptr = a_ptr if same else B_.indptr.astype(lib.cp.int64)
        b_ids = ids[0] if same else ids[1]
        ip, ix, dv = mod.cosine_topk_ptr(
            _dtype_str(dtype), lib.ptr(a_ptr), lib.ptr(ids[0]), lib.ptr(A_.data), n, m_c, A_.nnz,
            lib.ptr(b_ptr), lib.ptr(b_ids), lib.ptr(B_.data), p, B_.nnz, same, int(k), threshold,
            bool(exclude_self), lib.stream(dev), dev)
        indptr = lib.wrap(ip, np.int64, dev)
        indices = lib.wrap(ix, np.int32, dev)
        data = lib.wrap(dv, dtype, dev)
        if int(indptr[-1]) > _INT32_MAX:
            raise ValueError("the result has more than 2**31 - 1 entries, more than cupyx.scipy.sparse can index")
        return lib.sparse.csr_matrix((data, indices, indptr.astype(lib.cp.int32)), shape=(n, p))


def topk_scores_device(W, R, *, n: int, exclude, device: str):
    """topk_scores for cupyx.scipy.sparse input; returns CuPy (items, scores)."""
    mod = _require_cuda("topk_scores", device)
    lib = _CuPy()
    dtype = np.result_type(_sparse_dtype(W, "W"), _sparse_dtype(R, "R"))
    dev = next(lib.device_of(M) for M in (W, R, exclude) if M is not None and _is_cupyx_sparse(M))
    with lib.context(dev):
        W_ = _device_csr(lib, W, "W", dtype)
        R_ = _device_csr(lib, R, "R", dtype)
        if W_.shape[1] != R_.shape[0]:
            raise ValueError(f"R must have W.shape[1] = {W_.shape[1]} rows, got shape {R_.shape}")
        u, m = W_.shape[0], R_.shape[1]
        E_ = None
        if exclude is not None:
            if not (sp.issparse(exclude) or _is_cupyx_sparse(exclude)):
                raise TypeError(f"exclude must be a sparse matrix or None, got {type(exclude).__name__}")
            if tuple(exclude.shape) != (u, m):
                raise ValueError(f"exclude must have shape {(u, m)} (W.shape[0], R.shape[1]), got {exclude.shape}")
            E_ = exclude
            if sp.issparse(E_):
                E_ = lib.sparse.csr_matrix(sp.csr_matrix(E_, dtype=np.float64))
            elif E_.format != "csr":
                E_ = E_.tocsr()
        if R_.nnz and not bool((R_.data != 0).all()):  # explicit zeros are not candidates
            R_ = R_.copy()
            R_.eliminate_zeros()
        items = lib.full((u, n), -1, np.int64, dev)
        scores = lib.full((u, n), -np.inf, dtype, dev)
        if u == 0 or n == 0 or m == 0:
            return items, scores
        _rows_ok(u, "W")
        _rows_ok(R_.shape[0], "R")
        idx_list = [R_.indices] + ([] if E_ is None else [E_.indices])
        ids, m_c, used = _compress_device(lib, idx_list, m, sum(int(i.size) for i in idx_list))
        w_ptr = W_.indptr.astype(lib.cp.int64)
        r_ptr = R_.indptr.astype(lib.cp.int64)
        w_idx = W_.indices.astype(lib.cp.int32)
        e_ptr = None if E_ is None else E_.indptr.astype(lib.cp.int64)
        e_idx = None if E_ is None else ids[1]
        mod.topk_scores_ptr(
            _dtype_str(dtype), lib.ptr(w_ptr), lib.ptr(w_idx), lib.ptr(W_.data), u, W_.shape[1], W_.nnz,
            lib.ptr(r_ptr), lib.ptr(ids[0]), lib.ptr(R_.data), m_c, R_.nnz,
            0 if E_ is None else lib.ptr(e_ptr), 0 if E_ is None else lib.ptr(e_idx), n,
            0 if used is None else lib.ptr(used), lib.ptr(items), lib.ptr(scores), lib.stream(dev), dev)
        return items, scores


class _TorchCsr:
    """A host scipy CSR matrix copied to torch tensors (the CSR kernels only need its arrays)."""

    def __init__(self, lib: _Torch, M: sp.csr_matrix, dev: int) -> None:
        self.shape = M.shape
        self.nnz = int(M.nnz)
        self.dtype = np.dtype(M.dtype)
        self.indptr = lib.asarray(np.asarray(M.indptr, dtype=np.int64), dev)
        self.indices = lib.asarray(np.asarray(M.indices, dtype=np.int32), dev)
        self.data = lib.asarray(M.data, dev)


def _points(X, *others):
    """(lib, X on the device -- contiguous dense or canonical CSR --, dtype, sparse?, device id).

    The library and device are those of the first device array among X and
    ``others`` (X itself is copied over when it is a host array): a scipy X
    next to torch tensors becomes torch tensors, so results come back in torch.
    """
    anchor = next(a for a in (X,) + others if is_device_array(a))
    if sp.issparse(X) and _is_torch_tensor(anchor):
        lib = _Torch()
        dev = lib.device_of(anchor)
        if X.shape[1] > _INT32_MAX:
            raise ValueError(f"X has {X.shape[1]} columns; the CUDA kernels need fewer than 2**31")
        X_ = as_csr(X, "X")
        with lib.context(dev):
            return lib, _TorchCsr(lib, X_, dev), np.dtype(X_.dtype), True, dev
    if _is_cupyx_sparse(X) or sp.issparse(X):
        lib = _CuPy()
        dev = lib.device_of(anchor) if not _is_torch_tensor(anchor) else _Torch().device_of(anchor)
        with lib.context(dev):
            X_ = _device_csr(lib, X, "X")
        return lib, X_, np.dtype(X_.dtype), True, dev
    lib = _lib_for(anchor)
    dev = lib.device_of(anchor)
    with lib.context(dev):
        X_ = X if is_device_array(X) else lib.asarray(X, dev)
        if X_.ndim != 2:
            raise ValueError(f"X must be 2-D, got an array of shape {tuple(X_.shape)}")
        dtype = value_dtype(lib.np_dtype(X_), "X")
        X_ = lib.contiguous(X_, dtype)
    return lib, X_, dtype, False, dev


def kmeans_assign_device(X, centers, *, precision: str = "fp32", device: str = "auto"):
    """kmeans_assign for device X (CuPy / torch / cupyx CSR); returns (labels, sq_dist) there."""
    mod = _require_cuda("kmeans_assign", device)
    check_precision(precision)
    lib, X_, dtype, sparse, dev = _points(X, centers)
    with lib.context(dev):
        n, d = X_.shape
        C = lib.asarray(centers, dev)
        if C.ndim != 2:
            raise ValueError(f"centers must be 2-D (k, d), got shape {tuple(C.shape)}")
        value_dtype(lib.np_dtype(C), "centers")
        if C.shape[0] < 1:
            raise ValueError("centers must hold at least one centre, got 0 rows")
        if C.shape[1] != d:
            raise ValueError(f"centers must have d = {d} columns like X, got shape {tuple(C.shape)}")
        C = lib.contiguous(C, dtype)
        if not lib.all_finite(C):
            raise ValueError("centers contains NaN or infinite values")
        k = int(C.shape[0])
        _rows_ok(n, "X")
        labels = lib.empty(n, np.int64, dev)
        sq = lib.empty(n, dtype, dev)
        if n == 0:
            return labels, sq
        if sparse:
            # Keep the converted index arrays referenced until the call returns.
            x_ptr, x_idx = lib.contiguous(X_.indptr, np.int64), lib.contiguous(X_.indices, np.int32)
            ok = mod.kmeans_assign_csr_ptr(
                _dtype_str(dtype), lib.ptr(x_ptr), lib.ptr(x_idx), lib.ptr(X_.data), n, d, X_.nnz, lib.ptr(C), k,
                lib.ptr(labels), lib.ptr(sq), lib.stream(dev), dev)
        else:
            ok = mod.kmeans_assign_dense_ptr(_dtype_str(dtype), lib.ptr(X_), n, d, lib.ptr(C), k, lib.ptr(labels),
                                             lib.ptr(sq), precision, lib.stream(dev), dev)
        if not ok:
            raise ValueError("X contains NaN or infinite values")
        return labels, sq


def kmeans_update_device(X, labels, n_clusters, *, sample_weight=None, device: str = "auto"):
    """kmeans_update for device X (CuPy / torch / cupyx CSR); returns (sums, counts) there."""
    mod = _require_cuda("kmeans_update", device)
    k = check_int(n_clusters, "n_clusters", minimum=1)
    lib, X_, dtype, sparse, dev = _points(X, labels, sample_weight)
    with lib.context(dev):
        n, d = X_.shape
        lab = lib.asarray(labels, dev)
        ldt = lib.np_dtype(lab)
        if lab.ndim != 1 or lab.shape[0] != n:
            raise ValueError(f"labels must have shape ({n},) to match X, got {tuple(lab.shape)}")
        if not (np.issubdtype(ldt, np.integer) and ldt != np.bool_):
            raise TypeError(f"labels must be integers, got dtype {ldt}")
        if n:
            lo, hi = lib.min_max(lab)
            if lo < 0 or hi >= k:
                raise ValueError(f"labels must lie in [0, n_clusters={k}), got values in [{lo}, {hi}]")
        lab = lib.contiguous(lab, np.int64)
        w = None
        if sample_weight is not None:
            w = lib.asarray(sample_weight, dev)
            if w.ndim != 1 or w.shape[0] != n:
                raise ValueError(f"sample_weight must have shape ({n},) to match X, got {tuple(w.shape)}")
            value_dtype(lib.np_dtype(w), "sample_weight")
            w = lib.contiguous(w, dtype)
            if not lib.all_finite(w):
                raise ValueError("sample_weight contains NaN or infinite values")
            if n and float(w.min()) < 0:
                raise ValueError("sample_weight must be non-negative")
        _rows_ok(n, "X")
        sums = lib.empty((k, d), dtype, dev)
        counts = lib.empty(k, dtype, dev)
        wp = lib.ptr(w) if w is not None else 0
        try:
            if sparse:
                x_ptr, x_idx = lib.contiguous(X_.indptr, np.int64), lib.contiguous(X_.indices, np.int32)
                mod.kmeans_update_csr_ptr(_dtype_str(dtype), lib.ptr(x_ptr), lib.ptr(x_idx), lib.ptr(X_.data), n,
                                          d, X_.nnz, lib.ptr(lab), k, wp, lib.ptr(sums), lib.ptr(counts),
                                          lib.stream(dev), dev)
            else:
                mod.kmeans_update_dense_ptr(_dtype_str(dtype), lib.ptr(X_), n, d, lib.ptr(lab), k, wp,
                                            lib.ptr(sums), lib.ptr(counts), lib.stream(dev), dev)
        except ValueError as exc:  # non-finite float64 sums: NaN/inf in X
            raise ValueError(f"X {exc}") from None
        return sums, counts
