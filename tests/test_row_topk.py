"""ops._row_topk.row_topk (candidate merging) against a lexsort reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cohortrec.ops import merge_topk_rows, row_topk


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


# -- merge_topk_rows: the merge step of the online updates --------------------
def _merge_reference(old, add, k, rows, new_rows, sort):
    """Row by row in Python: replaced, merged (best k of the union, then by column or best first) or copied."""
    old, add = sp.csr_matrix(old), sp.csr_matrix(add)
    where = {int(r): q for q, r in enumerate(rows)}
    out = []
    for r in range(old.shape[0]):
        if r in where:
            row = new_rows.getrow(where[r])
            ent = list(zip(row.data.tolist(), row.indices.tolist()))
            if sort:
                ent.sort(key=lambda e: e[1])
        elif add.indptr[r + 1] > add.indptr[r]:
            ent = [(v, c) for M in (old, add) for v, c in zip(M.getrow(r).data.tolist(), M.getrow(r).indices.tolist())
                   if np.isfinite(v)]
            ent = sorted(ent, key=lambda e: (-e[0], e[1]))[:k]
            if sort:
                ent.sort(key=lambda e: e[1])
        else:
            ent = list(zip(old.data[old.indptr[r]:old.indptr[r + 1]].tolist(),
                           old.indices[old.indptr[r]:old.indptr[r + 1]].tolist()))
        out.append(ent)
    return out


def _rows_of(M):
    return [list(zip(M.data[M.indptr[r]:M.indptr[r + 1]].tolist(), M.indices[M.indptr[r]:M.indptr[r + 1]].tolist()))
            for r in range(M.shape[0])]


@pytest.mark.parametrize("trial", range(30))
def test_merge_topk_rows_matches_reference(trial):
    rng = np.random.default_rng(100 + trial)
    n, m, k = int(rng.integers(1, 30)), int(rng.integers(2, 50)), int(rng.integers(0, 12))
    dense = np.round(rng.uniform(-1, 1, (n, m)), 1).astype(np.float32)  # ties
    in_old = rng.random((n, m)) < 0.3
    in_add = (rng.random((n, m)) < 0.2) & ~in_old  # no column in both (the caller's contract)
    old = sp.csr_matrix(np.where(in_old, dense, 0))
    if trial % 2 == 0:
        old.data[rng.random(old.nnz) < 0.05] = np.inf  # kept by a copied row, dropped from a merged one
    add = sp.csr_matrix(np.where(in_add, dense, 0))
    if trial % 3 == 0 and add.nnz:
        add.data[0] = np.nan  # a non-finite candidate is dropped
    rows = rng.choice(n, int(rng.integers(0, n + 1)), replace=False)
    new_rows = sp.random(rows.size, m, density=0.3, format="csr", random_state=trial, dtype=np.float32)
    for sort in (False, True):
        got = merge_topk_rows(old, add, k, rows=rows, new_rows=new_rows, sort_indices=sort, n_threads=2)
        assert got.shape == (n, m) and got.dtype == np.float32
        ref = _merge_reference(old, add, k, rows, new_rows, sort)
        assert _rows_of(got) == ref


def test_merge_topk_rows_equals_row_topk_of_the_union():
    """Without replaced rows, every row with candidates is the row_topk of old + add."""
    old = sp.random(200, 300, density=0.05, format="csr", random_state=1, dtype=np.float32)
    mask = sp.random(200, 300, density=0.02, format="csr", random_state=2, dtype=np.float32)
    add = mask - mask.multiply(old != 0)
    add.eliminate_zeros()
    got = merge_topk_rows(old, add, 8)
    touched = np.flatnonzero(np.diff(add.indptr))
    ref = row_topk(old + add, 8)
    assert _rows_of(got[touched]) == _rows_of(ref[touched])
    untouched = np.setdiff1d(np.arange(200), touched)
    assert _rows_of(got[untouched]) == _rows_of(old[untouched])


@pytest.mark.parametrize("bad", ["shape", "rows_range", "rows_twice", "new_rows_shape", "indices", "indptr", "k"])
def test_merge_topk_rows_rejects_bad_input(bad):
    old = sp.csr_matrix(np.eye(4, 5, dtype=np.float32))
    add = sp.csr_matrix((4, 5), dtype=np.float32)
    kw = dict(rows=np.array([1]), new_rows=sp.csr_matrix(np.ones((1, 5), np.float32)))
    k = 3
    if bad == "shape":
        add = sp.csr_matrix((3, 5), dtype=np.float32)
    elif bad == "rows_range":
        kw["rows"] = np.array([4])
    elif bad == "rows_twice":
        kw = dict(rows=np.array([1, 1]), new_rows=sp.csr_matrix(np.ones((2, 5), np.float32)))
    elif bad == "new_rows_shape":
        kw["new_rows"] = sp.csr_matrix(np.ones((2, 5), np.float32))
    elif bad == "indices":
        old.indices[0] = 7
    elif bad == "indptr":
        old.indptr[2] = 0
    elif bad == "k":
        k = -1
    with pytest.raises(ValueError):
        merge_topk_rows(old, add, k, **kw)
