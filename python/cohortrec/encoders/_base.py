"""Input handling shared by the encoders."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

from cohortrec._validation import as_csr, check_sparse_structure
from cohortrec.interactions import Interactions


def as_matrix(X: Any, name: str = "X") -> sp.csr_matrix:
    """The user x item CSR matrix of an Interactions, sparse matrix or dense array.

    Validated as scikit-learn validates (``check_array``: 2-D, real, finite),
    with the CSR structure checked first and strengths required to be
    non-negative.
    """
    if isinstance(X, Interactions):
        M = X.matrix
    else:
        check_sparse_structure(X, name)
        A = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32], input_name=name,
                        accept_large_sparse=True)
        M = as_csr(A, name) if sp.issparse(A) else sp.csr_matrix(A)
    if M.dtype not in (np.float32, np.float64):
        M = M.astype(np.float64)
    if M.nnz and not np.isfinite(M.data).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if M.nnz and M.data.min() < 0:
        raise ValueError(f"Negative values in data passed to {name}: interaction strengths must be non-negative")
    return M


def check_n_items(M: sp.csr_matrix, n_items: int, name: str = "X", owner: str = "the encoder") -> None:
    if M.shape[1] != n_items:
        raise ValueError(f"{name} has {M.shape[1]} features, but {owner} is expecting {n_items} features as "
                         "input (the training items); build new interactions with "
                         "item_ids=<training item ids>")

