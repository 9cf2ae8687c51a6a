"""Implicit-feedback ALS half-steps (private wrapper of the native kernel).

:func:`als_solve` updates one side's factors given the other side's
(Hu, Koren & Volinsky 2008; conjugate gradient of Takacs et al. 2011), and
:func:`als_loss` evaluates the weighted squared loss. Everything the native
code relies on (CSR structure, index range, exact dtypes, finiteness,
shapes) is checked here first; errors name the argument at fault.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from cohortrec import _core
from cohortrec._validation import check_csr_structure, check_float
from cohortrec.ops._backend import resolve_threads
from cohortrec.ops._validation import check_finite, check_int

__all__ = ["als_gram", "als_loss", "als_solve"]


def _check_scalar(value: Any, name: str, *, positive: bool = False) -> float:
    v = check_float(value, name, minimum=0.0, min_inclusive=not positive)
    if v > np.finfo(np.float32).max:
        raise ValueError(f"{name} must fit in float32, got {value!r}")
    return v


def _per_row(values: Any, name: str, n: int) -> np.ndarray:
    """Per-row regularisation: float64 of shape (n,), finite, >= 0 and within float32."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"{name} must hold one value per row ({n}), got shape {v.shape}")
    check_finite(v, name)
    if (v < 0).any() or (v > np.finfo(np.float32).max).any():
        raise ValueError(f"{name} must be finite, >= 0 and fit in float32")
    return v


def _check_csr(C: Any, name: str, n_cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr int64, indices int32/int64, data float32) of a valid CSR matrix, no copy of the data."""
    if not isinstance(C, (sp.csr_matrix, sp.csr_array)):
        raise TypeError(f"{name} must be a scipy.sparse CSR matrix, got {type(C).__name__}")
    if C.data.dtype != np.float32:
        raise TypeError(f"{name} must hold float32 values, got dtype {C.data.dtype}")
    if C.shape[1] != n_cols:
        raise ValueError(f"{name} must have {n_cols} columns, got shape {C.shape}")
    indptr, indices, data = C.indptr, C.indices, C.data
    check_csr_structure(indptr, indices, data, C.shape, name)
    if indices.dtype not in (np.int32, np.int64):
        raise TypeError(f"{name}.indices must be int32 or int64, got {indices.dtype}")
    if indptr[-1] != indices.shape[0]:
        raise ValueError(f"{name}: indptr must end at the number of stored values {indices.shape[0]}, "
                         f"got {indptr[-1]}")
    check_finite(data, name)
    return (np.ascontiguousarray(indptr, dtype=np.int64), np.ascontiguousarray(indices),
            np.ascontiguousarray(data))


def _check_factors(F: Any, name: str, rows: int, f: int | None, *, writable: bool = False) -> np.ndarray:
    if not isinstance(F, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(F).__name__}")
    if F.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got dtype {F.dtype}")
    if F.ndim != 2 or F.shape[0] != rows or (f is not None and F.shape[1] != f):
        want = f"({rows}, {f if f is not None else 'factors'})"
        raise ValueError(f"{name} must have shape {want}, got {F.shape}")
    if not F.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if writable and not F.flags.writeable:
        raise ValueError(f"{name} must be writable (it is updated in place)")
    check_finite(F, name)
    return F


def als_gram(Y: np.ndarray, regularization: float = 0.0) -> np.ndarray:
    """``Y^T Y + regularization * I`` as C-contiguous float32 (f x f).

    Parameters
    ----------
    Y : ndarray of float32, shape (n, f)
    regularization : float, default 0

    Returns
    -------
    ndarray of float32, shape (f, f)
    """
    Y = _check_factors(Y, "Y", np.shape(Y)[0] if np.ndim(Y) == 2 else -1, None)
    reg = _check_scalar(regularization, "regularization")
    # BLAS on one thread: its worker threads would otherwise keep spinning
    # after the call and fight the kernel's OpenMP threads for the cores
    # (5x slower fits measured on a 2-core machine; implicit asks the same)
    with threadpool_limits(limits=1, user_api="blas"):
        G = np.ascontiguousarray(Y.T @ Y, dtype=np.float32)
    iu = np.triu_indices_from(G, 1)
    G.T[iu] = G[iu]  # exactly symmetric (the kernel reads rows as columns)
    G[np.diag_indices_from(G)] += np.float32(reg)
    return G


def als_solve(C: Any, Y: np.ndarray, X: np.ndarray, *, regularization: float, alpha: float = 1.0,
              cg_steps: int = 3, gram: np.ndarray | None = None, n_threads: int | None = None,
              row_regularization: Any | None = None) -> None:
    """One ALS half-step: update every row of ``X`` in place.

    Row ``u`` of ``X`` becomes the solution of
    ``(Y^T Y + regularization I + Y^T (C_u - I) Y) x = Y^T C_u p_u`` with
    confidences ``c_ui = |alpha * C[u, i]|`` on the stored entries (1
    elsewhere) and preferences ``p_ui = 1`` where ``C[u, i] > 0`` (0 for
    negative values -- dislikes -- and for entries not stored), as in
    :mod:`implicit`. Rows of ``C`` without stored values get ``x = 0``.

    Parameters
    ----------
    C : scipy.sparse.csr_matrix of float32, shape (n_rows, n_other)
    Y : ndarray of float32, shape (n_other, f), C-contiguous
        The other side's factors.
    X : ndarray of float32, shape (n_rows, f), C-contiguous, writable
        Updated in place; the starting point of the conjugate gradient.
    regularization : float >= 0
    alpha : float > 0, default 1
    cg_steps : int >= 0, default 3
        Conjugate-gradient steps per row; 0 solves each row exactly
        (Cholesky in float64, LU where the matrix is not positive definite).
    gram : ndarray of float32, shape (f, f), optional
        ``Y^T Y + regularization I`` if already computed (see :func:`als_gram`);
        must be symmetric.
    n_threads : int, optional
    row_regularization : array-like of float, shape (n_rows,), optional
        Each row's own regularisation, used instead of ``regularization``
        for that row (``regularization`` remains the one in ``gram``; the
        kernel adds the difference to the diagonal). For frequency-scaled
        regularisation (Rendle et al. 2022).
    """
    threads = resolve_threads(n_threads)
    steps = check_int(cg_steps, "cg_steps", minimum=0)
    reg = _check_scalar(regularization, "regularization")
    a = _check_scalar(alpha, "alpha", positive=True)
    if not sp.issparse(C):
        raise TypeError(f"C must be a scipy.sparse CSR matrix, got {type(C).__name__}")
    if np.ndim(Y) != 2:
        raise ValueError(f"Y must be 2-D (n_other, factors), got shape {np.shape(Y)}")
    Y = _check_factors(Y, "Y", C.shape[1], None)
    f = Y.shape[1]
    X = _check_factors(X, "X", C.shape[0], f, writable=True)
    if np.shares_memory(X, Y):
        raise ValueError("X and Y must not share memory")
    ptr, idx, data = _check_csr(C, "C", Y.shape[0])
    if gram is None:
        G = als_gram(Y, reg)
    else:
        G = _check_factors(gram, "gram", f, f)
        if not np.array_equal(G, G.T):
            raise ValueError("gram must be symmetric")
    extra = None
    if row_regularization is not None:
        extra = np.ascontiguousarray(_per_row(row_regularization, "row_regularization", C.shape[0]) - reg,
                                     dtype=np.float32)
    _core.als_solve(ptr, idx, data, C.shape[0], C.shape[1], a, Y, G, X, steps, threads, extra)


def als_loss(C: Any, X: np.ndarray, Y: np.ndarray, *, regularization: float, alpha: float = 1.0,
             n_threads: int | None = None, row_regularization: Any | None = None,
             col_regularization: Any | None = None) -> float:
    """Weighted squared loss of an implicit ALS model, normalised like implicit's.

    ``(sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + regularization (|X|^2 + |Y|^2))
    / (sum of stored confidences + number of pairs not stored)``, with
    ``c`` and ``p`` as in :func:`als_solve`; computed in float64.

    Parameters
    ----------
    C : scipy.sparse.csr_matrix of float32, shape (n_rows, n_other)
    X : ndarray of float32, shape (n_rows, f)
    Y : ndarray of float32, shape (n_other, f)
    regularization, alpha : float
    n_threads : int, optional
    row_regularization, col_regularization : array-like of float, optional
        Per-row penalties of ``X`` (n_rows) and of ``Y`` (n_other) instead of
        ``regularization`` (see :func:`als_solve`).

    Returns
    -------
    float
    """
    threads = resolve_threads(n_threads)
    reg = _check_scalar(regularization, "regularization")
    a = _check_scalar(alpha, "alpha", positive=True)
    if not sp.issparse(C):
        raise TypeError(f"C must be a scipy.sparse CSR matrix, got {type(C).__name__}")
    if np.ndim(Y) != 2:
        raise ValueError(f"Y must be 2-D (n_other, factors), got shape {np.shape(Y)}")
    Y = _check_factors(Y, "Y", C.shape[1], None)
    X = _check_factors(X, "X", C.shape[0], Y.shape[1])
    ptr, idx, data = _check_csr(C, "C", Y.shape[0])
    Yd = Y.astype(np.float64)
    with threadpool_limits(limits=1, user_api="blas"):  # see als_gram
        YtY = np.ascontiguousarray(Yd.T @ Yd)
    rows = np.empty(C.shape[0], dtype=np.float64)
    _core.als_loss_rows(ptr, idx, data, C.shape[0], C.shape[1], a, X, Y, YtY, rows, threads)
    total = float(rows.sum())
    for F, per, name in ((X, row_regularization, "row_regularization"), (Y, col_regularization, "col_regularization")):
        sq = np.square(F, dtype=np.float64).sum(axis=1)
        total += reg * float(sq.sum()) if per is None else float(_per_row(per, name, F.shape[0]) @ sq)
    conf = float(np.abs(data.astype(np.float64) * a).sum())
    denom = conf + float(C.shape[0]) * float(C.shape[1]) - data.shape[0]
    return total / denom if denom > 0 else 0.0
