"""Tests of ``cohortrec.ops.cosine_topk`` against ``reference.cosine_topk``."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _helpers import (
    BIG_M,
    assert_snapshot_equal,
    check_cosine,
    csr_from_rows,
    csr_rows,
    csr_snapshot,
    random_csr,
    result_dtype,
    rtol_for,
    run_memory_limited,
    safe_threshold,
    to_format,
    with_index_dtype,
)
from cohortrec import ops
from cohortrec.ops import reference

# ---------------------------------------------------------------------------
# random inputs (hypothesis chooses the shape of the problem, numpy the data)
# ---------------------------------------------------------------------------
matrix_opts = st.fixed_dictionaries({
    "density": st.sampled_from([0.0, 0.02, 0.1, 0.3, 0.8]),
    "signed": st.booleans(),
    "kind": st.sampled_from(["normal", "normal", "int", "wide"]),
    "powerlaw": st.booleans(),
    "empty_rows": st.sampled_from([0.0, 0.2]),
    "zero_rows": st.sampled_from([0.0, 0.2]),
    "explicit_zeros": st.sampled_from([0.0, 0.1]),
    "duplicates": st.sampled_from([0.0, 0.0, 0.2]),
    "unsorted": st.booleans(),
})


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40), m=st.integers(0, 60),
       k=st.sampled_from([0, 1, 2, 3, 5, 10, 50]), opts=matrix_opts,
       exclude_self=st.booleans(), use_threshold=st.booleans())
def test_self_join_random(device, dtype, index_dtype, seed, n, m, k, opts,
                          exclude_self, use_threshold):
    rng = np.random.default_rng(seed)
    A = random_csr(rng, n, m, dtype=dtype, index_dtype=index_dtype, **opts)
    threshold = None
    if use_threshold:
        full = reference._cosine_rows(A, None, exclude_self=exclude_self)
        threshold = safe_threshold(rng, full, dtype)
    snap = csr_snapshot(A)
    res = ops.cosine_topk(A, k=k, threshold=threshold, exclude_self=exclude_self,
                          device=device)
    assert_snapshot_equal(A, snap)
    check_cosine(res, A, None, k=k, threshold=threshold, exclude_self=exclude_self)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 30), p=st.integers(0, 40),
       m=st.integers(0, 50), k=st.sampled_from([0, 1, 4, 8, 100]),
       opts_a=matrix_opts, opts_b=matrix_opts,
       b_dtype=st.sampled_from(["same", "float32", "float64"]),
       use_threshold=st.booleans(), exclude_self=st.booleans())
def test_cross_join_random(device, dtype, index_dtype, seed, n, p, m, k, opts_a,
                           opts_b, b_dtype, use_threshold, exclude_self):
    rng = np.random.default_rng(seed)
    bdt = dtype if b_dtype == "same" else np.dtype(b_dtype)
    A = random_csr(rng, n, m, dtype=dtype, index_dtype=index_dtype, **opts_a)
    B = random_csr(rng, p, m, dtype=bdt, index_dtype=index_dtype, **opts_b)
    threshold = None
    if use_threshold:
        full = reference._cosine_rows(A, B)
        threshold = safe_threshold(rng, full, result_dtype(A.dtype, B.dtype))
    snaps = csr_snapshot(A), csr_snapshot(B)
    res = ops.cosine_topk(A, B, k=k, threshold=threshold, exclude_self=exclude_self,
                          device=device)
    assert_snapshot_equal(A, snaps[0])
    assert_snapshot_equal(B, snaps[1])
    # exclude_self has no effect when B is given
    check_cosine(res, A, B, k=k, threshold=threshold)


@pytest.mark.parametrize("shape", [(200, 500, 0.02), (120, 40, 0.3), (60, 3000, 0.01)])
def test_larger_powerlaw(device, dtype, index_dtype, rng, shape):
    n, m, density = shape
    A = random_csr(rng, n, m, density=density, dtype=dtype, index_dtype=index_dtype,
                   powerlaw=True, empty_rows=0.05, zero_rows=0.05, explicit_zeros=0.05)
    for k in (1, 7, 1000):
        res = ops.cosine_topk(A, k=k, device=device)
        check_cosine(res, A, None, k=k)


# ---------------------------------------------------------------------------
# hand-checked cases
# ---------------------------------------------------------------------------
def test_known_values(device, dtype, index_dtype):
    # rows: a=(1,1,0) b=(1,0,0) c=(0,0,2) d=(-1,-1,0) e=() f=(0 stored)
    A = csr_from_rows([[(0, 1.0), (1, 1.0)], [(0, 1.0)], [(2, 2.0)],
                       [(0, -1.0), (1, -1.0)], [], [(1, 0.0)]],
                      shape=(6, 3), dtype=dtype, index_dtype=index_dtype)
    res = ops.cosine_topk(A, k=5, device=device)
    r = np.sqrt(0.5)
    expected = [([1, 3], [r, -1.0]), ([0, 3], [r, -r]), ([], []),
                ([1, 0], [-r, -1.0]), ([], []), ([], [])]
    got = csr_rows(res)
    tol = rtol_for(dtype)
    ref_rows = csr_rows(reference.cosine_topk(A, k=5))  # the oracle agrees
    assert [r[0].tolist() for r in ref_rows] == [e[0] for e in expected]
    for (gi, gs), (ei, es) in zip(got, expected):
        assert gi.tolist() == ei
        np.testing.assert_allclose(gs, es, rtol=tol, atol=tol)
    assert res.dtype == dtype
    check_cosine(res, A, None, k=5)


def test_exact_zero_score_is_stored(device, dtype, index_dtype):
    # (1,1) . (1,-1) = 0: a candidate (shared columns) with score exactly 0
    A = csr_from_rows([[(0, 1.0), (1, 1.0)]], shape=(1, 2), dtype=dtype,
                      index_dtype=index_dtype)
    B = csr_from_rows([[(0, 1.0), (1, -1.0)], [(0, 3.0)]], shape=(2, 2),
                      dtype=dtype, index_dtype=index_dtype)
    res = ops.cosine_topk(A, B, k=5, device=device)
    gi, gs = csr_rows(res)[0]
    assert gi.tolist() == [1, 0]
    assert gs[1] == 0.0 and res.nnz == 2
    res = ops.cosine_topk(A, B, k=5, threshold=-0.5, device=device)
    assert res.nnz == 2
    res = ops.cosine_topk(A, B, k=5, threshold=0.0, device=device)  # strict >
    assert csr_rows(res)[0][0].tolist() == [1]


def test_threshold_is_strict(device, dtype, index_dtype):
    # single-entry rows: all scores are exactly +1 or -1
    A = csr_from_rows([[(0, 1.0)], [(0, 1.0)], [(0, -1.0)]], shape=(3, 1),
                      dtype=dtype, index_dtype=index_dtype)
    res = ops.cosine_topk(A, k=5, threshold=1.0, device=device)
    assert res.nnz == 0
    res = ops.cosine_topk(A, k=5, threshold=float(np.nextafter(np.float32(1), 0)),
                          device=device)
    assert [r[0].tolist() for r in csr_rows(res)] == [[1], [0], []]
    res = ops.cosine_topk(A, k=5, threshold=-1.0, device=device)
    assert [r[0].tolist() for r in csr_rows(res)] == [[1], [0], []]
    res = ops.cosine_topk(A, k=5, threshold=-1.5, device=device)
    assert [r[0].tolist() for r in csr_rows(res)] == [[1, 2], [0, 2], [0, 1]]


@pytest.mark.parametrize("threshold,want", [
    (1 - 1e-9, [[1], [0], []]),            # 1.0 > 1 - 1e-9 (not representable in float32)
    (-1 - 1e-9, [[1, 2], [0, 2], [0, 1]]),  # -1.0 > -1 - 1e-9
    (1 + 1e-9, [[], [], []]),
    (-1 + 1e-9, [[1], [0], []])])
def test_threshold_compared_exactly(device, dtype, index_dtype, threshold, want):
    # scores are exactly +1 / -1; the threshold is a Python float and the
    # comparison "score > threshold" must not round the threshold to float32
    A = csr_from_rows([[(0, 2.0)], [(0, 3.0)], [(0, -1.0)]], shape=(3, 1),
                      dtype=dtype, index_dtype=index_dtype)
    res = ops.cosine_topk(A, k=5, threshold=threshold, device=device)
    assert [r[0].tolist() for r in csr_rows(res)] == want


def test_scale_invariance(device, dtype, index_dtype, rng):
    # cosine does not depend on the magnitude of a row: rows scaled by
    # 10**[-30, 30] (float32) or 10**[-150, 150] (float64) must give the
    # same scores (no overflow/underflow of products), all within [-1, 1]
    lim = 30 if dtype == np.float32 else 150
    A = random_csr(rng, 40, 12, density=0.3, dtype=np.float64, index_dtype=index_dtype)
    B = random_csr(rng, 30, 12, density=0.3, dtype=np.float64, index_dtype=index_dtype)
    for M in (A, B):
        M.data *= np.repeat(10.0 ** rng.uniform(-lim, lim, M.shape[0]), np.diff(M.indptr))
    A = with_index_dtype(A.astype(dtype), index_dtype)
    B = with_index_dtype(B.astype(dtype), index_dtype)
    for args in ((A,), (A, B)):
        res = ops.cosine_topk(*args, k=6, device=device)
        assert np.all(np.abs(res.data) <= 1 + 10 * rtol_for(dtype)), res.data.max()
        check_cosine(res, *args, k=6)


def test_exact_ties_smaller_index_first(device, dtype, index_dtype):
    # B rows 0..5: identical rows 1,2,4,5 -> identical scores
    q = [(0, 1.0), (3, 2.0)]
    same = [(0, 2.0), (2, 1.0), (3, 1.0)]
    B = csr_from_rows([[(1, 1.0)], same, same, [(0, 1.0)], same, same],
                      shape=(6, 4), dtype=dtype, index_dtype=index_dtype)
    A = csr_from_rows([q], shape=(1, 4), dtype=dtype, index_dtype=index_dtype)
    full = reference._cosine_rows(A, B)[0]
    assert full[0].tolist() == [1, 2, 4, 5, 3]
    for k, want in [(1, [1]), (2, [1, 2]), (3, [1, 2, 4]), (4, [1, 2, 4, 5]),
                    (5, [1, 2, 4, 5, 3]), (9, [1, 2, 4, 5, 3])]:
        res = ops.cosine_topk(A, B, k=k, device=device)
        assert csr_rows(res)[0][0].tolist() == want, k
    # a self-join with duplicated rows: every row's neighbours tie
    D = csr_from_rows([same] * 7, shape=(7, 4), dtype=dtype, index_dtype=index_dtype)
    res = ops.cosine_topk(D, k=3, device=device)
    rows = [r[0].tolist() for r in csr_rows(res)]
    assert rows == [[j for j in range(7) if j != i][:3] for i in range(7)]


@pytest.mark.parametrize("k", [0, 1, 10**9, 2**40, 2**63])
def test_k_extremes(device, dtype, index_dtype, rng, k):
    A = random_csr(rng, 25, 15, density=0.3, dtype=dtype, index_dtype=index_dtype)
    res = ops.cosine_topk(A, k=k, device=device)
    check_cosine(res, A, None, k=k)
    if k == 0:
        assert res.nnz == 0 and res.shape == (25, 25)


def test_exclude_self_semantics(device, dtype, index_dtype, rng):
    A = random_csr(rng, 20, 10, density=0.4, dtype=dtype, index_dtype=index_dtype,
                   empty_rows=0.1, zero_rows=0.1)
    nonzero_row = np.asarray(abs(A).sum(axis=1)).ravel() > 0
    excl = ops.cosine_topk(A, k=50, exclude_self=True, device=device)
    incl = ops.cosine_topk(A, k=50, exclude_self=False, device=device)
    explicit_b = ops.cosine_topk(A, A, k=50, exclude_self=True, device=device)
    check_cosine(excl, A, None, k=50, exclude_self=True)
    check_cosine(incl, A, None, k=50, exclude_self=False)
    check_cosine(explicit_b, A, A, k=50)
    tol = 10 * rtol_for(dtype)
    for i, ((ei, _), (ii, isc), (bi, _)) in enumerate(zip(csr_rows(excl), csr_rows(incl),
                                                        csr_rows(explicit_b))):
        assert i not in ei.tolist()
        # self is a candidate with score 1 iff the row has a nonzero
        assert (i in ii.tolist()) == bool(nonzero_row[i])
        assert (i in bi.tolist()) == bool(nonzero_row[i])
        if nonzero_row[i]:
            assert abs(isc[ii.tolist().index(i)] - 1.0) <= tol


# ---------------------------------------------------------------------------
# empty / degenerate inputs
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("n,m", [(0, 0), (0, 7), (5, 0), (4, 6)])
def test_empty(device, dtype, index_dtype, n, m):
    A = random_csr(np.random.default_rng(0), n, m, density=0.0, dtype=dtype,
                   index_dtype=index_dtype)
    assert A.nnz == 0
    res = ops.cosine_topk(A, k=3, device=device)
    check_cosine(res, A, None, k=3)
    assert res.nnz == 0 and res.shape == (n, n)
    B = random_csr(np.random.default_rng(1), 3, m, density=0.5, dtype=dtype,
                   index_dtype=index_dtype)
    res = ops.cosine_topk(A, B, k=3, device=device)
    assert res.nnz == 0 and res.shape == (n, 3)
    res = ops.cosine_topk(B, A, k=3, device=device)
    assert res.nnz == 0 and res.shape == (3, n)


def test_all_zero_rows_and_cancelling_duplicates(device, dtype, index_dtype):
    # row 0: explicit zeros only; row 1: duplicates that sum to 0 in col 0 and
    # a real entry in col 1; row 2: (1, 1); row 3: duplicate summing to 2 in col 0
    A = csr_from_rows([[(0, 0.0), (1, 0.0)], [(0, 1.0), (1, 3.0), (0, -1.0)],
                       [(0, 1.0), (1, 1.0)], [(0, 1.0), (0, 1.0)]],
                      shape=(4, 2), dtype=dtype, index_dtype=index_dtype)
    res = ops.cosine_topk(A, k=5, device=device)
    check_cosine(res, A, None, k=5)
    rows = [r[0].tolist() for r in csr_rows(res)]
    assert rows[0] == []          # all-zero row: no neighbours, never a candidate
    assert rows[1] == [2]         # col 0 cancelled: only shares col 1 with row 2
    assert rows[3] == [2]
    assert 0 not in rows[2]


@pytest.mark.parametrize("fmt", ["csr_array", "csc", "coo", "lil", "dok", "bsr"])
def test_input_formats(device, dtype, index_dtype, rng, fmt):
    A = random_csr(rng, 15, 12, density=0.3, dtype=dtype, index_dtype=index_dtype,
                   duplicates=0.2 if fmt == "coo" else 0.0)
    B = random_csr(rng, 9, 12, density=0.3, dtype=dtype, index_dtype=index_dtype)
    res = ops.cosine_topk(to_format(A, fmt), to_format(B, fmt), k=4, device=device)
    check_cosine(res, A, B, k=4)
    res = ops.cosine_topk(to_format(A, fmt), k=4, device=device)
    check_cosine(res, A, None, k=4)


@pytest.mark.parametrize("data_dtype,expected", [
    (np.bool_, np.float64), (np.int8, np.float64), (np.int32, np.float64),
    (np.int64, np.float64), (np.uint16, np.float64),
    (np.float32, np.float32), (np.float64, np.float64)])
def test_data_dtype_conversion(device, index_dtype, rng, data_dtype, expected):
    A = random_csr(rng, 12, 10, density=0.4, dtype=np.float64, index_dtype=index_dtype,
                   kind="int", signed=np.issubdtype(data_dtype, np.signedinteger)
                   or np.issubdtype(data_dtype, np.floating))
    A = with_index_dtype(A.astype(data_dtype), index_dtype)
    res = ops.cosine_topk(A, k=4, device=device)
    assert res.dtype == expected
    check_cosine(res, A, None, k=4)


def test_mixed_dtypes(device, dtype, index_dtype, rng):
    other = np.float64 if dtype == np.float32 else np.float32
    A = random_csr(rng, 10, 8, density=0.4, dtype=dtype, index_dtype=index_dtype)
    B = random_csr(rng, 11, 8, density=0.4, dtype=other, index_dtype=index_dtype)
    res = ops.cosine_topk(A, B, k=3, device=device)
    assert res.dtype == np.float64
    check_cosine(res, A, B, k=3)
    res = ops.cosine_topk(A, B.astype(np.int64), k=3, device=device)
    assert res.dtype == np.float64


# ---------------------------------------------------------------------------
# huge column ids (int64 indices, m > 2**31): must not allocate m
# ---------------------------------------------------------------------------
def _big_column_matrix(rng, n, dtype):
    return random_csr(rng, n, BIG_M, density=4 / BIG_M, dtype=dtype,
                      index_dtype=np.int64, powerlaw=True, max_row_nnz=8)


def test_huge_column_ids(device, dtype, rng):
    M = _big_column_matrix(rng, 70, dtype)  # rows share a pool of popular columns
    A = with_index_dtype(M[:40], np.int64)
    B = with_index_dtype(M[40:], np.int64)
    assert A.indices.max() > 2**31
    res = ops.cosine_topk(A, k=5, device=device)
    check_cosine(res, A, None, k=5)
    res = ops.cosine_topk(A, B, k=5, device=device)
    check_cosine(res, A, B, k=5)
    # a hand-made pair sharing only the very last column
    C = csr_from_rows([[(BIG_M - 1, 2.0)], [(BIG_M - 1, 3.0), (5, 1.0)], [(5, 1.0)]],
                      shape=(3, BIG_M), dtype=dtype, index_dtype=np.int64)
    res = ops.cosine_topk(C, k=5, device=device)
    check_cosine(res, C, None, k=5)
    assert [r[0].tolist() for r in csr_rows(res)] == [[1], [0, 2], [1]]


def test_huge_column_ids_memory_bounded():
    """In a process with a ~2 GiB address-space allowance, m = 3e9 must work."""
    if not sys.platform.startswith("linux"):
        pytest.skip("needs /proc and RLIMIT_AS")
    proc = run_memory_limited(f"""
        rows = 50
        rng = np.random.default_rng(5)
        indptr = np.arange(0, 3 * rows + 1, 3, dtype=np.int64)
        indices = np.sort(rng.integers(0, {BIG_M}, size=(rows, 3)), axis=1).ravel()
        indices[2::3] = {BIG_M} - 1  # every row shares the last column
        A = sp.csr_matrix((rng.random(3 * rows) + 0.1, indices, indptr), shape=(rows, {BIG_M}))
        A.indices = A.indices.astype(np.int64); A.indptr = A.indptr.astype(np.int64)
        res = ops.cosine_topk(A, k=4, device="cpu", n_threads=2)
        assert res.shape == (rows, rows)
        assert np.all(np.diff(res.indptr) == 4), np.diff(res.indptr)
        print("OK")
    """)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


# ---------------------------------------------------------------------------
# the hybrid sparse/dense CPU path (nonnegative data, popular columns dense)
# ---------------------------------------------------------------------------
# ``_dense_min_density`` forces the column density above which columns are
# multiplied densely: 0.0 = every column dense, 2.0 = pure sparse path. The
# hybrid must give the reference's neighbours whatever the split.
hybrid_opts = st.fixed_dictionaries({
    "density": st.sampled_from([0.0, 0.05, 0.3, 0.9]),
    "signed": st.sampled_from([False, False, False, True]),  # signed: falls back to sparse
    "kind": st.sampled_from(["normal", "int", "wide"]),
    "powerlaw": st.booleans(),
    "empty_rows": st.sampled_from([0.0, 0.2]),
    "zero_rows": st.sampled_from([0.0, 0.2]),
    "explicit_zeros": st.sampled_from([0.0, 0.1]),
    "duplicates": st.sampled_from([0.0, 0.2]),
})


def _nonneg(M):
    M = M.copy()
    M.data = np.abs(M.data)
    return M


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), m=st.integers(0, 40),
       k=st.sampled_from([1, 3, 10, 50, 400]), opts=hybrid_opts,
       split=st.sampled_from([0.0, 0.05, 0.3]), exclude_self=st.booleans(),
       use_threshold=st.booleans(), threads=st.sampled_from([1, 2, 3]))
def test_hybrid_self_join_random(dtype, index_dtype, seed, n, m, k, opts, split,
                                 exclude_self, use_threshold, threads):
    rng = np.random.default_rng(seed)
    A = random_csr(rng, n, m, dtype=dtype, index_dtype=index_dtype, **opts)
    threshold = None
    if use_threshold:
        full = reference._cosine_rows(A, None, exclude_self=exclude_self)
        threshold = safe_threshold(rng, full, dtype)
    res = ops.cosine_topk(A, k=k, threshold=threshold, exclude_self=exclude_self,
                          device="cpu", n_threads=threads, _dense_min_density=split)
    check_cosine(res, A, None, k=k, threshold=threshold, exclude_self=exclude_self)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 80), p=st.integers(0, 400),
       m=st.integers(0, 40), k=st.sampled_from([1, 4, 50, 500]), opts_a=hybrid_opts,
       opts_b=hybrid_opts, split=st.sampled_from([0.0, 0.05, 0.3]),
       use_threshold=st.booleans())
def test_hybrid_cross_join_random(dtype, index_dtype, seed, n, p, m, k, opts_a, opts_b,
                                  split, use_threshold):
    rng = np.random.default_rng(seed)
    A = random_csr(rng, n, m, dtype=dtype, index_dtype=index_dtype, **opts_a)
    B = random_csr(rng, p, m, dtype=dtype, index_dtype=index_dtype, **opts_b)
    threshold = None
    if use_threshold:
        threshold = safe_threshold(rng, reference._cosine_rows(A, B), dtype)
    res = ops.cosine_topk(A, B, k=k, threshold=threshold, device="cpu",
                          _dense_min_density=split)
    check_cosine(res, A, B, k=k, threshold=threshold)


def _heavy_powerlaw(rng, n, m, dtype):
    """User x item data whose first columns are in most rows (hybrid territory)."""
    pop = 1.0 / np.arange(1, m + 1) ** 1.1
    A = (rng.random((n, m)) < np.minimum(1.0, 30 * pop / pop.sum())).astype(dtype)
    A *= rng.uniform(1.0, 3.0, size=A.shape).astype(dtype)
    import scipy.sparse as sp
    return sp.csr_matrix(A)


@pytest.mark.parametrize("split", [None, 0.0, 0.02, 0.2, 2.0])
def test_hybrid_split_does_not_change_neighbours(dtype, index_dtype, rng, split):
    A = with_index_dtype(_heavy_powerlaw(rng, 700, 300, dtype), index_dtype)
    assert (A.getnnz(axis=0) > 0.5 * A.shape[0]).sum() >= 3  # really has popular columns
    for k in (1, 20, 1000):
        res = ops.cosine_topk(A, k=k, device="cpu", _dense_min_density=split)
        check_cosine(res, A, None, k=k)


@pytest.mark.parametrize("split", [None, 0.0, 0.05])
def test_hybrid_thread_count_independent(dtype, rng, split):
    A = _heavy_powerlaw(rng, 900, 200, dtype)
    ref = ops.cosine_topk(A, k=25, device="cpu", n_threads=1, _dense_min_density=split)
    for t in (2, 3, 5):
        got = ops.cosine_topk(A, k=25, device="cpu", n_threads=t, _dense_min_density=split)
        assert np.array_equal(got.indptr, ref.indptr)
        assert np.array_equal(got.indices, ref.indices)
        assert np.array_equal(got.data, ref.data)  # bit-identical


def test_hybrid_guards_against_underflow(dtype):
    # A product of two tiny normalised values would round to 0 in a dense tile
    # and drop the pair; such inputs must take the sparse path and keep it.
    tiny = 1e-30 if dtype == np.float32 else 1e-200
    rows = [[(0, 1.0), (1, tiny)], [(2, 1.0), (1, tiny)], [(0, 1.0), (3, 1.0)]]
    A = csr_from_rows(rows, shape=(3, 4), dtype=dtype)
    res = ops.cosine_topk(A, k=5, device="cpu", _dense_min_density=0.0)
    check_cosine(res, A, None, k=5)
    assert 1 in res[0].indices  # shares only the tiny column with row 0


# The sparse path finds the candidates of positive data by scanning the dense
# accumulator when a row touches many ids (_dense_min_density=1.5: no hybrid,
# scan allowed; 2.0: bitmap walk only).
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120), p=st.integers(60, 700),
       m=st.integers(1, 60), density=st.sampled_from([0.05, 0.2, 0.6]),
       k=st.sampled_from([1, 5, 50, 1000]), same=st.booleans(), exclude_self=st.booleans(),
       use_threshold=st.booleans(), knob=st.sampled_from([1.5, None]))
def test_positive_scan_random(dtype, seed, n, p, m, density, k, same, exclude_self,
                              use_threshold, knob):
    rng = np.random.default_rng(seed)
    A = random_csr(rng, p if same else n, m, density=density, dtype=dtype, signed=False,
                   empty_rows=0.1, explicit_zeros=0.05)
    B = None if same else random_csr(rng, p, m, density=density, dtype=dtype, signed=False)
    threshold = None
    if use_threshold:
        full = reference._cosine_rows(A, B, exclude_self=exclude_self)
        threshold = safe_threshold(rng, full, dtype)
    res = ops.cosine_topk(A, B, k=k, threshold=threshold, exclude_self=exclude_self,
                          device="cpu", _dense_min_density=knob)
    check_cosine(res, A, B, k=k, threshold=threshold, exclude_self=exclude_self)
    if knob is not None:
        other = ops.cosine_topk(A, B, k=k, threshold=threshold, exclude_self=exclude_self,
                                device="cpu", n_threads=3, _dense_min_density=knob)
        assert np.array_equal(other.indices, res.indices) and np.array_equal(other.data, res.data)
