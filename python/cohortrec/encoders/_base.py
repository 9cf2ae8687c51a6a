"""Input handling shared by the encoders."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec._validation import as_csr
from cohortrec.interactions import Interactions


def as_matrix(X: Any, name: str = "X") -> sp.csr_matrix:
    """The user x item CSR matrix of an Interactions, sparse matrix or dense array."""
    if isinstance(X, Interactions):
        M = X.matrix
    elif sp.issparse(X):
        M = as_csr(X, name)
    else:
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an Interactions, a scipy.sparse matrix or a 2-D array, "
                            f"got {type(X).__name__}") from None
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
        M = sp.csr_matrix(arr)
    if M.dtype not in (np.float32, np.float64):
        M = M.astype(np.float64)
    if M.nnz and not np.isfinite(M.data).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if M.nnz and M.data.min() < 0:
        raise ValueError(f"{name} must be non-negative")
    return M


def check_n_items(M: sp.csr_matrix, n_items: int, name: str = "X") -> None:
    if M.shape[1] != n_items:
        raise ValueError(f"{name} has {M.shape[1]} items (columns), but the encoder was fitted on {n_items}; "
                         "build new interactions with item_ids=<training item ids>")

