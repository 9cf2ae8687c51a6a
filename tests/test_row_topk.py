"""ops._row_topk.row_topk (candidate merging) against a lexsort reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cohortrec.ops._row_topk import row_topk


def _reference(M, k, drop=None):
    """Best k nonzero stored entries per row, value desc then column asc; drop[row] removed."""
    c = sp.csr_matrix(M).tocoo()
    r, col, v = c.row, c.col, c.data
    keep = v != 0
    if drop is not None:
        keep &= col != drop[r]
    r, col, v = r[keep], col[keep], v[keep]
    o = np.lexsort((col, -v, r))
    r, col, v = r[o], col[o], v[o]
    rank = np.arange(r.size) - np.searchsorted(r, np.arange(M.shape[0]))[r]
    keep = rank < k
    r, col, v = r[keep], col[keep], v[keep]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=M.shape[0]))])
    return sp.csr_matrix((v, col, indptr), shape=M.shape)


@pytest.mark.parametrize("trial", range(40))
def test_matches_reference(trial, device):
    rng = np.random.default_rng(trial)
    n, m, k = int(rng.integers(1, 40)), int(rng.integers(1, 60)), int(rng.integers(1, 70))
    dt = [np.float32, np.float64][trial % 2]
    M = sp.random(n, m, density=rng.uniform(0, 0.6), format="csr", random_state=trial, dtype=dt)
    # ties (rounded values), negative values and explicit zeros
    M.data = (np.round(M.data * rng.choice([1, 4]), 1) * rng.choice([1, -1], size=M.nnz)).astype(dt)
    M.data[rng.random(M.nnz) < 0.1] = 0
    drop = rng.integers(-1, m, n)
    rows = np.flatnonzero(drop >= 0)
    E = sp.csr_matrix((np.ones(rows.size, dt), (rows, drop[rows])), shape=(n, m))
    got = row_topk(M, k, exclude=E, device=device)
    ref = _reference(M, k, drop)
    np.testing.assert_array_equal(got.indptr, ref.indptr)
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_array_equal(got.data, ref.data)
    assert got.dtype == dt and got.shape == (n, m)


def test_empty_and_zero_k():
    M = sp.csr_matrix((3, 4), dtype=np.float32)
    assert row_topk(M, 5).nnz == 0 and row_topk(M, 5).shape == (3, 4)
    M = sp.csr_matrix(np.eye(3, 4, dtype=np.float32))
    assert row_topk(M, 0).nnz == 0
    assert row_topk(sp.csr_matrix((0, 4), dtype=np.float32), 3).shape == (0, 4)
