"""Argument checks and conversions shared by every layer: one helper per job.

This is the bottom floor of the package: it imports no other cohortrec
module, so anything (ops, estimators, discovery, the CLI) may use it.

* :func:`check_int`, :func:`check_float` -- scalar parameters;
* :func:`as_generator` -- a ``random_state`` as a NumPy ``Generator``;
* :func:`check_device` and :data:`DEVICES` -- the ``device`` argument;
* :func:`check_csr_structure` -- the structural invariants of a CSR/CSC
  matrix (``indptr`` starts at 0, is monotone and ends within the stored
  values; indices lie in range), checked in O(nnz) with vectorised NumPy (or
  CuPy) *before* SciPy or a native kernel walks the arrays: a corrupt
  ``indptr`` makes SciPy's own C++ routines read out of bounds;
* :func:`as_csr` -- the canonicaliser (checked, sorted, summed duplicates,
  float data, finite);
* :func:`l2_normalize_rows` -- unit-length rows, dense or CSR.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "DEVICES",
    "ParameterError",
    "as_csr",
    "as_dense",
    "as_generator",
    "check_alloc",
    "check_csr_structure",
    "check_device",
    "check_finite",
    "check_float",
    "check_int",
    "l2_normalize_rows",
    "value_dtype",
]

DEVICES = ("auto", "cpu", "cuda")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class ParameterError(ValueError, TypeError):
    """A parameter of the wrong type or value.

    It subclasses both ``ValueError`` and ``TypeError``, as scikit-learn's
    ``InvalidParameterError`` does, so code written against either keeps
    working.
    """


# ---------------------------------------------------------------------------
# scalars
# ---------------------------------------------------------------------------
def check_int(value: Any, name: str, *, minimum: int | None = 0, maximum: int | None = None) -> int:
    """An integer parameter within ``[minimum, maximum]``.

    Bools and floats are rejected with a :class:`ParameterError` (a
    ``TypeError`` and a ``ValueError``); a value out of range raises
    ``ValueError``. Both messages name the parameter.
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ParameterError(f"{name} must be an integer{bound}, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value}")
    return value


def check_float(value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
                min_inclusive: bool = True) -> float:
    """A finite real parameter within the given bounds (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ParameterError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value < minimum or (not min_inclusive and value == minimum)):
        op = ">=" if min_inclusive else ">"
        raise ValueError(f"{name} must be {op} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 1 << 62


def check_alloc(n_bytes: int, what: str) -> None:
    """ValueError when an output of ``n_bytes`` could never fit in this machine's memory.

    Turns an absurd size argument (``n=10**12``) into an error that names it,
    instead of a ``MemoryError`` from deep inside NumPy.
    """
    if n_bytes > _physical_memory():
        raise ValueError(f"{what} would need {n_bytes / 2**30:.1f} GiB, more than this machine's "
                         f"{_physical_memory() / 2**30:.1f} GiB of memory")


def as_generator(random_state: Any) -> np.random.Generator:
    """``random_state`` (None, int, seed sequence, ``Generator`` or ``RandomState``) as a ``Generator``.

    A ``Generator`` is used as is (its stream is shared); a ``RandomState``
    seeds a new ``Generator`` from one draw, so that it advances as
    scikit-learn's helpers would advance it.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    return np.random.default_rng(random_state)


def check_device(device: Any, name: str = "device") -> str:
    """``device`` as one of :data:`DEVICES` (ValueError otherwise)."""
    if device not in DEVICES:
        raise ValueError(f"{name} must be one of {DEVICES}, got {device!r}")
    return str(device)


# ---------------------------------------------------------------------------
# arrays
# ---------------------------------------------------------------------------
def value_dtype(dtype: Any, name: str) -> np.dtype:
    """The float dtype a kernel computes in for data of ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype in _FLOATS:
        return dtype
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype == np.bool_ or np.issubdtype(dtype, np.integer):
        return np.dtype(np.float64)
    raise TypeError(f"{name} must hold real numbers (float32/float64, int or bool), got dtype {dtype}")


def check_finite(values: Any, name: str) -> None:
    """ValueError naming ``name`` when ``values`` holds NaN or infinity (NumPy or CuPy)."""
    if values.size and not bool(_xp(values).isfinite(values).all()):
        raise ValueError(f"{name} contains NaN or infinite values")


def _xp(a: Any) -> Any:
    """The array module of ``a``: NumPy, or CuPy for device arrays."""
    mod = type(a).__module__
    if mod.startswith("cupy"):
        import cupy  # noqa: PLC0415 - only when CuPy arrays arrive

        return cupy
    return np


def check_csr_structure(indptr: Any, indices: Any, data: Any, shape: tuple[int, int], name: str, *,
                        compressed_axis: int = 0) -> None:
    """Check the arrays of a compressed sparse matrix before anything walks them.

    Parameters
    ----------
    indptr, indices, data : NumPy or CuPy arrays
        The matrix's arrays (``M.indptr``, ``M.indices``, ``M.data``).
    shape : (int, int)
    name : str
        The argument's name, used in every message.
    compressed_axis : {0, 1}
        0 for CSR (``indptr`` runs over rows), 1 for CSC.

    Raises
    ------
    ValueError
        When ``indptr`` does not have ``n + 1`` entries, does not start at
        0, decreases, or ends beyond the stored values; when ``indices`` and
        ``data`` differ in length; when a stored index lies outside
        ``[0, n_minor)``.
    TypeError
        When the index arrays are not of an integer dtype.

    Notes
    -----
    O(n + nnz) vectorised passes with no copy of the data: at 27M stored
    values they take tens of milliseconds, against seconds for any kernel.
    It runs on the device for CuPy arrays (one host sync for the verdict).
    """
    xp = _xp(indptr)
    n_major, n_minor = (shape[0], shape[1]) if compressed_axis == 0 else (shape[1], shape[0])
    for arr, what in ((indptr, "indptr"), (indices, "indices")):
        if getattr(arr, "ndim", None) != 1:
            raise ValueError(f"{name}: {what} must be 1-D, got shape {getattr(arr, 'shape', None)}")
        dt = np.dtype(arr.dtype)
        if dt == np.bool_ or not np.issubdtype(dt, np.integer):
            raise TypeError(f"{name}: {what} must hold integers, got dtype {dt}")
    if getattr(data, "ndim", None) != 1:
        raise ValueError(f"{name}: data must be 1-D, got shape {getattr(data, 'shape', None)}")
    if n_major < 0 or n_minor < 0:
        raise ValueError(f"{name}: negative shape {shape}")
    if indptr.shape[0] != n_major + 1:
        raise ValueError(f"{name}: indptr must have {n_major + 1} entries for shape {tuple(shape)}, "
                         f"got {indptr.shape[0]}")
    if indices.shape[0] != data.shape[0]:
        raise ValueError(f"{name}: indices and data must have the same length, got {indices.shape[0]} "
                         f"and {data.shape[0]}")
    first, last = int(indptr[0]), int(indptr[-1])
    if first != 0:
        raise ValueError(f"{name}: indptr must start at 0, got {first}")
    if last > indices.shape[0]:
        raise ValueError(f"{name}: indptr ends at {last}, beyond the {indices.shape[0]} stored values")
    if n_major > 1 and bool((xp.diff(indptr) < 0).any()):
        at = int(xp.flatnonzero(xp.diff(indptr) < 0)[0])
        raise ValueError(f"{name}: indptr must be non-decreasing, but indptr[{at + 1}] = {int(indptr[at + 1])} "
                         f"< indptr[{at}] = {int(indptr[at])}")
    if last:
        used = indices[:last]
        lo, hi = int(used.min()), int(used.max())
        if lo < 0 or hi >= n_minor:
            what = "column" if compressed_axis == 0 else "row"
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name}: {what} index {bad} out of range [0, {n_minor}) for shape {tuple(shape)}")


def _check_coo_structure(M: Any, name: str) -> None:
    n, m = M.shape
    row, col, data = M.row, M.col, M.data
    if not (row.ndim == col.ndim == data.ndim == 1) or not (row.shape[0] == col.shape[0] == data.shape[0]):
        raise ValueError(f"{name}: row, col and data must be 1-D arrays of equal length")
    if row.size:
        if int(row.min()) < 0 or int(row.max()) >= n:
            raise ValueError(f"{name}: row index out of range [0, {n})")
        if int(col.min()) < 0 or int(col.max()) >= m:
            raise ValueError(f"{name}: column index out of range [0, {m})")


def check_sparse_structure(M: Any, name: str) -> None:
    """:func:`check_csr_structure` for any SciPy/cupyx CSR, CSC or COO matrix (others: nothing to check)."""
    fmt = getattr(M, "format", None)
    if fmt in ("csr", "csc"):
        check_csr_structure(M.indptr, M.indices, M.data, M.shape, name,
                            compressed_axis=0 if fmt == "csr" else 1)
    elif fmt == "coo":
        _check_coo_structure(M, name)


def as_csr(M: Any, name: str, dtype: Any | None = None, *, copy: bool = False) -> sp.csr_matrix:
    """A canonical CSR matrix (structure checked, sorted, summed duplicates, float data, finite).

    ``dtype`` (default: from the data) is applied *before* duplicates are
    summed, so they add up in the precision of the computation. Never
    modifies the caller's matrix: a copy is made when anything changes.
    With ``copy=True`` the result shares no memory with ``M``, so the
    caller may modify it in place.
    """
    source = M
    if not sp.issparse(M):
        raise TypeError(
            f"{name} must be a scipy.sparse matrix or array (CSR preferred), got {type(M).__name__}"
        )
    if M.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {M.shape}")
    if dtype is None:
        dtype = value_dtype(M.dtype, name)
    else:
        value_dtype(M.dtype, name)  # still reject complex/object data
    check_sparse_structure(M, name)
    if M.format != "csr":
        M = M.tocsr()
    M = sp.csr_matrix(M, dtype=dtype, copy=False)
    if M.indptr[-1] != M.indices.shape[0]:  # trailing storage beyond nnz: drop it (scipy's prune)
        M = M.copy()
        M.prune()
    if not M.has_canonical_format:
        M = M.copy()
        M.sum_duplicates()
    check_finite(M.data, name)
    if copy and any(np.shares_memory(a, b) for a in (M.data, M.indices, M.indptr)
                    for b in _arrays_of(source)):
        M = M.copy()
    return M


def _arrays_of(M: Any) -> list[np.ndarray]:
    return [a for a in (getattr(M, n, None) for n in ("data", "indices", "indptr", "row", "col"))
            if isinstance(a, np.ndarray)]


def as_dense(X: Any, name: str, dtype: Any | None = None) -> np.ndarray:
    """A 2-D float array, without copying when the dtype already fits.

    Non-contiguous and Fortran-ordered arrays are passed to the kernels as
    strided views (no copy); strides that are not a multiple of the item
    size (or negative) get a contiguous copy.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got an array of shape {X.shape}")
    target = value_dtype(X.dtype, name) if dtype is None else np.dtype(dtype)
    if X.dtype != target:
        X = X.astype(target)
    if X.strides[0] % X.itemsize or X.strides[1] % X.itemsize or min(X.strides) < 0:
        X = np.ascontiguousarray(X)
    return X


def group_indicator(labels: Any, k: int) -> sp.csr_matrix:
    """The ``k x n`` 0/1 matrix of group membership: ``G @ X`` sums the rows of every group.

    Labels outside ``[0, k)`` (such as ``-1``, no group) belong to no group.
    """
    labels = np.asarray(labels)
    ok = (labels >= 0) & (labels < k)
    return sp.csr_matrix((np.ones(int(ok.sum())), (labels[ok], np.flatnonzero(ok))), shape=(k, labels.shape[0]))


def l2_normalize_rows(X: Any) -> Any:
    """Rows scaled to unit L2 norm; all-zero rows stay zero. Dense or sparse; never in place.

    Norms are computed in float64 and the result keeps ``X``'s float dtype
    (float64 for other dtypes); a sparse input comes back as CSR.
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X, copy=True)
        if X.dtype not in _FLOATS:
            X = X.astype(np.float64)
        sq = np.bincount(np.repeat(np.arange(X.shape[0]), np.diff(X.indptr)),
                         weights=np.square(X.data, dtype=np.float64), minlength=X.shape[0])
        norms = np.sqrt(sq)
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        X.data *= np.repeat(inv, np.diff(X.indptr)).astype(X.dtype)
        return X
    A = np.asarray(X)
    if A.dtype not in _FLOATS:
        A = A.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", A, A, dtype=np.float64))
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return A * inv[:, None].astype(A.dtype)
