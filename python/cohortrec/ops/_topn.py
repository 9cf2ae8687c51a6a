"""Top-n selection kernels the recommenders rank with (dense scores, a global ranking).

Private ops: :mod:`cohortrec.recommenders` calls these instead of ``_core``.
The exclusion matrix is structure-checked before the kernel walks it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec import _core
from cohortrec._validation import check_csr_structure
from cohortrec.ops._backend import resolve_threads

__all__ = ["dense_topn_into", "ranked_topn_into"]


def _exclude_arrays(exclude: Any, u: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    E = exclude if isinstance(exclude, (sp.csr_matrix, sp.csr_array)) else sp.csr_matrix(exclude)
    if E.shape != (u, m):
        raise ValueError(f"exclude must have shape {(u, m)}, got {E.shape}")
    check_csr_structure(E.indptr, E.indices, E.data, E.shape, "exclude")
    idx = E.indices if E.indices.dtype in (np.int32, np.int64) else E.indices.astype(np.int64)
    return np.ascontiguousarray(E.indptr, dtype=np.int64), np.ascontiguousarray(idx)


def _check_out(ids: np.ndarray, out: np.ndarray | None, u: int) -> None:
    if ids.dtype != np.int64 or ids.ndim != 2 or ids.shape[0] != u or not ids.flags.c_contiguous:
        raise ValueError(f"ids must be a C-contiguous int64 ({u}, n) array")
    if out is not None and (out.dtype != np.float32 or out.shape != ids.shape or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous float32 array of shape {ids.shape}")


def dense_topn_into(scores: np.ndarray, keep: np.ndarray | None, exclude: Any | None, ids: np.ndarray,
                    out: np.ndarray, n_threads: int | None = None) -> None:
    """Best ``n = ids.shape[1]`` finite entries per row of C-contiguous float32 ``scores``, into ``ids``/``out``.

    Entries stored in ``exclude`` (CSR, same shape) and columns where
    ``keep`` is False are skipped; ties go to the smaller column; rows with
    fewer candidates keep the pre-filled ``-1`` / ``-inf``.
    """
    if scores.dtype != np.float32 or scores.ndim != 2 or not scores.flags.c_contiguous:
        raise ValueError("scores must be a C-contiguous 2-D float32 array")
    u, m = scores.shape
    _check_out(ids, out, u)
    k = None
    if keep is not None:
        k = np.ascontiguousarray(keep, dtype=bool)
        if k.shape != (m,):
            raise ValueError(f"keep must have shape ({m},), got {k.shape}")
    e_ptr = e_idx = None
    if exclude is not None:
        e_ptr, e_idx = _exclude_arrays(exclude, u, m)
    _core.dense_topn(scores, k, e_ptr, e_idx, ids, out, resolve_threads(n_threads))


def ranked_topn_into(order: np.ndarray, exclude: Any, ids: np.ndarray, n_threads: int | None = None) -> None:
    """First ``n = ids.shape[1]`` ids of the global ranking ``order`` per row, skipping each row's excluded items."""
    order = np.ascontiguousarray(order, dtype=np.int64)
    u = ids.shape[0] if ids.ndim == 2 else -1
    _check_out(ids, None, u)
    m = int(exclude.shape[1])
    if order.ndim != 1 or (order.size and (int(order.min()) < 0 or int(order.max()) >= m)):
        raise ValueError(f"order must be a 1-D array of item ids in [0, {m})")
    e_ptr, e_idx = _exclude_arrays(exclude, u, m)
    _core.ranked_topn(order, e_ptr, e_idx, u, m, ids, resolve_threads(n_threads))
