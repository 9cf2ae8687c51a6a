"""K-means assignment and update steps (one Lloyd iteration = both)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec import _core
from cohortrec.ops import _cuda
from cohortrec.ops._backend import kernels, resolve_device, resolve_threads
from cohortrec.ops._validation import as_csr, as_dense, check_finite, check_int, csr_arrays, value_dtype


def _as_points(X: Any) -> tuple[np.ndarray | sp.csr_matrix, bool]:
    if sp.issparse(X):
        return as_csr(X, "X"), True
    X = as_dense(X, "X")
    return X, False


def _csr_call_arrays(X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = np.int64 if X.indices.dtype == np.int64 else np.int32
    return csr_arrays(X, np.dtype(idx))


def _check_centers(centers: Any, d: int, dtype: np.dtype) -> np.ndarray:
    C = np.asarray(centers)
    if C.ndim != 2:
        raise ValueError(f"centers must be 2-D (k, d), got shape {C.shape}")
    value_dtype(C.dtype, "centers")
    if C.shape[0] < 1:
        raise ValueError("centers must hold at least one centre, got 0 rows")
    if C.shape[1] != d:
        raise ValueError(f"centers must have d = {d} columns like X, got shape {C.shape}")
    C = np.ascontiguousarray(C, dtype=dtype)
    check_finite(C, "centers")
    return C


def _check_weights(sample_weight: Any, n: int, dtype: np.dtype) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},) to match X, got {w.shape}")
    value_dtype(w.dtype, "sample_weight")
    w = np.ascontiguousarray(w, dtype=dtype)
    check_finite(w, "sample_weight")
    if n and w.min() < 0:
        raise ValueError("sample_weight must be non-negative")
    return w


def kmeans_assign(
    X: Any,
    centers: Any,
    *,
    device: str = "auto",
    n_threads: int | None = None,
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of every row of ``X`` (the K-means assignment step).

    Parameters
    ----------
    X : array-like of shape (n, d) or scipy.sparse matrix
        float32/float64 (C or F order, strided views accepted without a
        copy) or CSR. Integer data is converted to float64.
    centers : array-like of shape (k, d)
        Cast to ``X``'s dtype.
    device : {"auto", "cpu", "cuda"}
    n_threads : int, optional
    precision : {"fp32", "tf32", "bf16"}, default "fp32"
        Arithmetic the GPU may use for the x.c products of float32 dense X:
        "tf32" / "bf16" allow tensor cores (faster; products carry relative
        errors of about 1e-3 / 1e-2, so near-ties may resolve differently).
        The CPU, CSR X and float64 data always compute exactly in their dtype.

    Returns
    -------
    labels : ndarray of int64, shape (n,)
        Index of the nearest centre; ties go to the smaller index.
    sq_dist : ndarray, shape (n,)
        Squared distance to it, computed as ||x||^2 - 2 x.c + ||c||^2 and
        clipped at 0 (so float32 results carry rounding of order
        1e-7 * (||x||^2 + ||c||^2)). Same dtype as ``X``.

    Notes
    -----
    Blocked register-tiled distance computation fused with the argmin: no
    n x k matrix is built. Identical results for any ``n_threads``.
    """
    threads = resolve_threads(n_threads)
    dev = resolve_device(device, op="kmeans_assign", cuda_kernel=True)
    _cuda.check_precision(precision)
    if _cuda.on_device(X, centers):  # CuPy / torch / cupyx input: results stay on its device
        return _cuda.kmeans_assign_device(X, centers, precision=precision, device=device)
    X_, sparse = _as_points(X)
    n, d = X_.shape
    C = _check_centers(centers, d, X_.dtype)
    labels = np.empty(n, dtype=np.int64)
    sq = np.empty(n, dtype=X_.dtype)
    lib = kernels(dev)
    extra = {"precision": precision} if dev == "cuda" else {}
    try:
        if sparse:
            lib.kmeans_assign_csr(*_csr_call_arrays(X_), n, d, C, labels, sq, threads, **extra)
        else:
            lib.kmeans_assign_dense(X_, C, labels, sq, threads, **extra)
    except ValueError as exc:  # the kernel finds non-finite rows while computing ||x||^2
        raise ValueError(f"X {exc}") from None
    return labels, sq


def kmeans_update(
    X: Any,
    labels: Any,
    n_clusters: int,
    *,
    sample_weight: Any | None = None,
    device: str = "auto",
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster weighted sums and weights (the K-means update step).

    New centres are ``sums / counts[:, None]`` for clusters with
    ``counts > 0``.

    Parameters
    ----------
    X : array-like of shape (n, d) or scipy.sparse matrix
    labels : array-like of int, shape (n,)
        Cluster of each row, in ``[0, n_clusters)``.
    n_clusters : int
    sample_weight : array-like of shape (n,), optional
        Non-negative finite weights (1 by default).
    device : {"auto", "cpu", "cuda"}
    n_threads : int, optional

    Returns
    -------
    sums : ndarray, shape (n_clusters, d)
    counts : ndarray, shape (n_clusters,)
        Sum of the weights of each cluster's rows. Both in ``X``'s dtype,
        accumulated in float64, and bit-identical for any ``n_threads``.
    """
    threads = resolve_threads(n_threads)
    dev = resolve_device(device, op="kmeans_update", cuda_kernel=True)
    if _cuda.on_device(X, labels, sample_weight):  # results stay on the inputs' device
        return _cuda.kmeans_update_device(X, labels, n_clusters, sample_weight=sample_weight, device=device)
    k = check_int(n_clusters, "n_clusters", minimum=1)
    X_, sparse = _as_points(X)
    n, d = X_.shape
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},) to match X, got {lab.shape}")
    if not (np.issubdtype(lab.dtype, np.integer) and lab.dtype != np.bool_):
        raise TypeError(f"labels must be integers, got dtype {lab.dtype}")
    if n and (int(lab.min()) < 0 or int(lab.max()) >= k):
        raise ValueError(f"labels must lie in [0, n_clusters={k}), got values in [{lab.min()}, {lab.max()}]")
    lab = np.ascontiguousarray(lab, dtype=np.int64)
    w = _check_weights(sample_weight, n, X_.dtype)
    sums = np.zeros((k, d), dtype=X_.dtype)
    counts = np.zeros(k, dtype=X_.dtype)
    lib = kernels(dev)
    try:
        if sparse:
            lib.kmeans_update_csr(*_csr_call_arrays(X_), n, d, lab, k, w, sums, counts, threads)
        else:
            lib.kmeans_update_dense(X_, lab, k, w, sums, counts, threads)
    except ValueError as exc:  # non-finite float64 sums: NaN/inf in X
        raise ValueError(f"X {exc}") from None
    return sums, counts


def kmeans_step(
    X: Any,
    centers: Any,
    *,
    sample_weight: Any | None = None,
    device: str = "auto",
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One Lloyd iteration: :func:`kmeans_assign` then :func:`kmeans_update`.

    Parameters
    ----------
    X : array-like of shape (n, d) or scipy.sparse matrix
    centers : array-like of shape (k, d)
    sample_weight : array-like of shape (n,), optional
    device : {"auto", "cpu", "cuda"}
    n_threads : int, optional

    Returns
    -------
    labels, sq_dist, sums, counts
        Exactly what ``kmeans_assign(X, centers)`` and
        ``kmeans_update(X, labels, k, sample_weight=...)`` return (the same
        bits), for any ``n_threads``.

    Notes
    -----
    For dense X on the CPU with ``k * d <= 65536`` the two steps run in one
    pass: each fixed chunk of rows is assigned and summed by the same thread
    while it is in cache, so X is read from memory once instead of twice.
    Otherwise (CSR X, larger ``k * d``, GPU) it makes the two calls.
    """
    threads = resolve_threads(n_threads)
    dev = resolve_device(device, op="kmeans_step", cuda_kernel=True)
    if dev == "cuda" or sp.issparse(X) or _cuda.on_device(X, centers, sample_weight):
        labels, sq = kmeans_assign(X, centers, device=device, n_threads=n_threads)
        sums, counts = kmeans_update(X, labels, int(centers.shape[0]) if hasattr(centers, "shape")
                                     else len(centers), sample_weight=sample_weight, device=device,
                                     n_threads=n_threads)
        return labels, sq, sums, counts
    X_ = as_dense(X, "X")
    n, d = X_.shape
    C = _check_centers(centers, d, X_.dtype)
    w = _check_weights(sample_weight, n, X_.dtype)
    k = C.shape[0]
    labels = np.empty(n, dtype=np.int64)
    sq = np.empty(n, dtype=X_.dtype)
    sums = np.zeros((k, d), dtype=X_.dtype)
    counts = np.zeros(k, dtype=X_.dtype)
    try:
        _core.kmeans_step_dense(X_, C, w, labels, sq, sums, counts, threads)
    except ValueError as exc:  # NaN/inf rows found while computing ||x||^2 or the sums
        raise ValueError(f"X {exc}") from None
    return labels, sq, sums, counts
