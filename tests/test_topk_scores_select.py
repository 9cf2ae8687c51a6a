"""Exact tests of the top-n selection inside ``cohortrec.ops.topk_scores``.

The kernel selects small ``n`` with a bounded heap and larger ``n`` by
collecting the candidates (radix select on packed float32 keys, or
nth_element for float64), compacting the buffer when it fills up. With
small integer values every sum is exact in float32 and float64, so the
result must equal a dense reference exactly, ties (broken by the smaller
item id) included.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cohortrec import ops


def int_csr(rng: np.random.Generator, n: int, m: int, density: float, dtype, index_dtype,
            *, signed: bool = True, values: int = 3) -> sp.csr_matrix:
    """Random CSR with small integer values (nonzero), exact in any float type."""
    M = sp.random(n, m, density=density, format="csr", random_state=np.random.RandomState(rng.integers(2**31)))
    v = rng.integers(1, values + 1, size=M.nnz).astype(np.float64)
    if signed:
        v *= rng.choice([-1.0, 1.0], size=M.nnz)
    M.data = v
    M = M.astype(dtype)
    M.indices = M.indices.astype(index_dtype)
    M.indptr = M.indptr.astype(np.int64 if index_dtype == np.int64 else M.indptr.dtype)
    return M


def reference_topn(W: sp.csr_matrix, R: sp.csr_matrix, n: int, exclude: sp.csr_matrix | None):
    """(items, scores) by a dense product: candidates are the items reachable through stored nonzeros."""
    S = W.toarray().astype(np.float64) @ R.toarray().astype(np.float64)
    reach = (W.toarray() != 0).astype(np.float64) @ (R.toarray() != 0).astype(np.float64) > 0
    if exclude is not None:
        E = sp.csr_matrix(exclude)
        reach[np.repeat(np.arange(E.shape[0]), np.diff(E.indptr)), E.indices] = False
    u = S.shape[0]
    items = np.full((u, n), -1, dtype=np.int64)
    scores = np.full((u, n), -np.inf)
    for r in range(u):
        cand = np.flatnonzero(reach[r])
        order = np.lexsort((cand, -S[r, cand]))[:n]
        items[r, :len(order)] = cand[order]
        scores[r, :len(order)] = S[r, cand[order]]
    return items, scores


@pytest.mark.parametrize("n", [1, 8, 9, 24, 25, 100, 300, 2500, 5000])
def test_exact_against_dense_reference(dtype, index_dtype, n):
    """Rows with more candidates than the collection buffer (compaction), sparse rows, ties."""
    rng = np.random.default_rng(n)
    u, j, m = 24, 60, 4000
    W = sp.vstack([sp.csr_matrix((4, j), dtype=dtype),  # empty rows
                   int_csr(rng, 4, j, 0.02, dtype, index_dtype),  # few candidates (list mode, n > candidates)
                   int_csr(rng, u - 8, j, 0.3, dtype, index_dtype)],  # more than the buffer holds
                  format="csr")
    W.indices = W.indices.astype(index_dtype)
    R = int_csr(rng, j, m, 0.08, dtype, index_dtype)
    E = int_csr(rng, u, m, 0.2, dtype, index_dtype)
    for exclude in (None, E):
        items, scores = ops.topk_scores(W, R, n=n, exclude=exclude, device="cpu")
        want_items, want_scores = reference_topn(W, R, n, exclude)
        np.testing.assert_array_equal(items, want_items)
        np.testing.assert_array_equal(scores.astype(np.float64), want_scores)


@pytest.mark.parametrize("n", [5, 40, 3000])
def test_single_score_and_zero_sums(dtype, n):
    """All candidates tied (order by id alone) and candidates whose sum is exactly 0."""
    rng = np.random.default_rng(7)
    m = 3500
    R = sp.csr_matrix(np.ones((2, m), dtype=dtype))
    W = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, -1.0], [2.0, 0.0]], dtype=dtype))
    E = sp.csr_matrix((rng.random((3, m)) < 0.3).astype(dtype))
    items, scores = ops.topk_scores(W, R, n=n, exclude=E, device="cpu")
    want_items, want_scores = reference_topn(W, R, n, E)
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_array_equal(scores.astype(np.float64), want_scores)
    assert (scores[1][items[1] >= 0] == 0).all()  # zero sums are candidates, never -0 vs 0 issues
    assert not np.signbit(scores[1][items[1] >= 0]).any()


def test_negative_and_mixed_scores_float32_order():
    """Packed float32 keys order negative, zero and positive scores like floats do."""
    vals = np.array([-3.5, -0.0, 0.0, 1e-30, -1e-30, 2.0, np.float32(1e30), -np.float32(1e30), 0.5, -0.5],
                    dtype=np.float32)
    m = vals.size
    W = sp.csr_matrix(np.ones((1, 1), dtype=np.float32))
    R = sp.csr_matrix((vals, np.arange(m), [0, m]), shape=(1, m))
    items, scores = ops.topk_scores(W, R, n=m, device="cpu")
    # explicit zeros of R are not candidates; -0.0 is stored as a zero too
    keep = vals != 0
    cand = np.flatnonzero(keep)
    order = cand[np.lexsort((cand, -vals[cand].astype(np.float64)))]
    np.testing.assert_array_equal(items[0, :order.size], order)
    np.testing.assert_array_equal(scores[0, :order.size], vals[order])
    assert (items[0, order.size:] == -1).all()


@pytest.mark.parametrize("n", [3, 100])
def test_same_result_for_any_thread_count(dtype, n):
    rng = np.random.default_rng(11)
    W = int_csr(rng, 300, 80, 0.2, dtype, np.int32)
    R = sp.random(80, 3000, density=0.05, format="csr", dtype=dtype,
                  random_state=np.random.RandomState(3))
    E = int_csr(rng, 300, 3000, 0.05, dtype, np.int32)
    a = ops.topk_scores(W, R, n=n, exclude=E, n_threads=1, device="cpu")
    b = ops.topk_scores(W, R, n=n, exclude=E, n_threads=2, device="cpu")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
