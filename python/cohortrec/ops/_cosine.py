"""Sparse cosine similarity with top-k per row."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec.ops import _cuda
from cohortrec.ops._backend import kernels, resolve_device, resolve_threads
from cohortrec.ops._validation import (
    as_csr,
    check_int,
    compress_columns,
    csr_arrays,
    index_dtype_for,
    sparse_dtype,
)


def cosine_topk(
    A: Any,
    B: Any | None = None,
    *,
    k: int = 50,
    threshold: float | None = None,
    exclude_self: bool = True,
    device: str = "auto",
    n_threads: int | None = None,
    _dense_min_density: float | None = None,
) -> sp.csr_matrix:
    """Top-``k`` cosine neighbours of every row of ``A`` among the rows of ``B``.

    Parameters
    ----------
    A : scipy.sparse matrix, shape (n, m)
        Query rows (e.g. users x items). Converted to canonical CSR.
    B : scipy.sparse matrix, shape (p, m), optional
        Candidate rows; ``None`` means ``A`` itself.
    k : int, default 50
        Neighbours kept per row (``0`` gives empty rows).
    threshold : float, optional
        Keep only scores strictly greater than this.
    exclude_self : bool, default True
        With ``B=None``, drop each row's similarity to itself.
    device : {"auto", "cpu", "cuda"}
        Where to compute; see :func:`cohortrec.devices`.
    n_threads : int, optional
        CPU threads; all available cores by default.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n, p)
        Row ``i`` holds the best ``k`` scores ``cos(a_i, b_j)`` over the
        ``j`` that share at least one nonzero column with ``a_i``, stored in
        order of score descending, ties by smaller ``j``. Negative scores are
        kept (signed data); rows with no nonzeros have no neighbours. The
        dtype is float32 when both inputs are float32, else float64.

    Notes
    -----
    Memory is O(threads * p + nnz(B) + output): no n x p matrix is built.
    Results are identical for any ``n_threads``.

    The CPU kernel is Gustavson's row-by-row sparse product with a dense
    per-thread accumulator. For nonnegative data whose popular columns carry
    most of the work (power-law item popularity), a cost model may switch to
    a hybrid: columns of ``B`` denser than about 1/24 are multiplied as dense
    rows (vectorised, cache-blocked), the rest sparsely. Both give the same
    neighbours; scores may differ in the last bits, since the terms are
    summed in another order. ``_dense_min_density`` (private, for tests and
    benchmarks) forces that column density threshold (``> 1``: never;
    ``> 1.5``: also no accumulator scan, the bitmap walk only).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from cohortrec.ops import cosine_topk
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype="float32")
    >>> cosine_topk(X, k=1).toarray()
    array([[0. , 0.5, 0. ],
           [0.5, 0. , 0. ],
           [0. , 0.70710677, 0. ]], dtype=float32)
    """
    k = check_int(k, "k", minimum=0)
    if threshold is not None:
        threshold = float(threshold)
        if np.isnan(threshold):
            raise ValueError("threshold must be a number or None, got NaN")
    threads = resolve_threads(n_threads)
    dev = resolve_device(device, op="cosine_topk", cuda_kernel=True)
    if _cuda.on_device(A, B):  # cupyx.scipy.sparse input: validated and computed on its device
        return _cuda.cosine_topk_device(A, B, k=k, threshold=threshold, exclude_self=exclude_self,
                                        device=device)
    same = B is None
    dtype = sparse_dtype(A, "A") if same else np.result_type(sparse_dtype(A, "A"), sparse_dtype(B, "B"))
    A_ = as_csr(A, "A", dtype)
    B_ = A_ if same else as_csr(B, "B", dtype)
    if not same and A_.shape[1] != B_.shape[1]:
        raise ValueError(
            f"B must have as many columns as A: A has shape {A_.shape}, B has shape {B_.shape}"
        )
    n, m = A_.shape
    p = B_.shape[0]
    k = min(k, p)  # no row has more than p neighbours (and k must fit in int64)
    mats, m, _ = compress_columns([A_] if same else [A_, B_], m)
    A_ = mats[0]
    B_ = A_ if same else mats[1]
    idx_dtype = index_dtype_for(A_, B_, n_cols=m)
    a = csr_arrays(A_, idx_dtype)
    b = (None, None, None) if same else csr_arrays(B_, idx_dtype)
    indptr, indices, data = kernels(dev).cosine_topk(
        *a, n, m, *b, p, k, threshold, bool(exclude_self), threads,
        **({} if dev == "cuda" else {"dense_min_density": -1.0 if _dense_min_density is None
                                     else float(_dense_min_density)}),
    )
    return sp.csr_matrix((data, indices, indptr), shape=(n, p), copy=False)
