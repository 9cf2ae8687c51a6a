"""Tests of ``cohortrec.ops.topk_scores`` against ``reference.topk_scores``."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from _helpers import (
    BIG_M,
    assert_snapshot_equal,
    check_topk_scores,
    csr_from_rows,
    csr_snapshot,
    random_csr,
    run_memory_limited,
    to_format,
    with_index_dtype,
)
from cohortrec import ops
from cohortrec.ops import reference

matrix_opts = st.fixed_dictionaries({
    "density": st.sampled_from([0.0, 0.05, 0.2, 0.6]),
    "signed": st.booleans(),
    "kind": st.sampled_from(["normal", "normal", "int", "wide"]),
    "powerlaw": st.booleans(),
    "empty_rows": st.sampled_from([0.0, 0.2]),
    "zero_rows": st.sampled_from([0.0, 0.1]),
    "explicit_zeros": st.sampled_from([0.0, 0.1]),
    "duplicates": st.sampled_from([0.0, 0.0, 0.2]),
    "unsorted": st.booleans(),
})


def random_exclude(rng, W, R, index_dtype, how):
    """Exclusion matrix: random entries, some with explicit zero values."""
    u, m = W.shape[0], R.shape[1]
    if how is None:
        return None
    if how == "seen":  # typical use: the items the user's neighbours touched
        full = reference._topk_rows(W, R)
        rows = []
        for items, _ in full:
            pick = items[rng.random(len(items)) < 0.4]
            rows.append([(int(i), float(rng.choice([0.0, 1.0, -2.0]))) for i in pick])
        return csr_from_rows(rows, shape=(u, m), index_dtype=index_dtype)
    E = random_csr(rng, u, m, density=0.3, dtype=np.float64, index_dtype=index_dtype,
                   explicit_zeros=0.3, zero_rows=0.2, duplicates=0.1)
    return with_index_dtype(E.astype(bool), index_dtype) if how == "bool" else E


@given(seed=st.integers(0, 2**32 - 1), u=st.integers(0, 30), j=st.integers(0, 30),
       m=st.integers(0, 50), n=st.sampled_from([0, 1, 3, 10, 60]),
       opts_w=matrix_opts, opts_r=matrix_opts,
       r_dtype=st.sampled_from(["same", "float32", "float64"]),
       exclude=st.sampled_from([None, "seen", "random", "bool"]))
def test_random(device, dtype, index_dtype, seed, u, j, m, n, opts_w, opts_r, r_dtype,
                exclude):
    rng = np.random.default_rng(seed)
    rdt = dtype if r_dtype == "same" else np.dtype(r_dtype)
    W = random_csr(rng, u, j, dtype=dtype, index_dtype=index_dtype, **opts_w)
    R = random_csr(rng, j, m, dtype=rdt, index_dtype=index_dtype, **opts_r)
    E = random_exclude(rng, W, R, index_dtype, exclude)
    snaps = [csr_snapshot(M) for M in (W, R) + (() if E is None else (E,))]
    items, scores = ops.topk_scores(W, R, n=n, exclude=E, device=device)
    for M, s in zip((W, R, E), snaps):
        assert_snapshot_equal(M, s)
    check_topk_scores(items, scores, W, R, n=n, exclude=E)


@pytest.mark.parametrize("u,j,m", [(300, 200, 1000), (50, 400, 80)])
def test_larger_powerlaw(device, dtype, index_dtype, rng, u, j, m):
    W = random_csr(rng, u, j, density=0.05, dtype=dtype, index_dtype=index_dtype,
                   empty_rows=0.05)
    R = random_csr(rng, j, m, density=0.05, dtype=dtype, index_dtype=index_dtype,
                   powerlaw=True, signed=False)
    E = random_exclude(rng, W, R, index_dtype, "seen")
    for n in (1, 20, 500):
        items, scores = ops.topk_scores(W, R, n=n, exclude=E, device=device)
        check_topk_scores(items, scores, W, R, n=n, exclude=E)


def test_known_values(device, dtype, index_dtype):
    W = csr_from_rows([[(0, 1.0), (1, 2.0)], [(1, 1.0)], [], [(0, 0.0)]],
                      shape=(4, 2), dtype=dtype, index_dtype=index_dtype)
    R = csr_from_rows([[(0, 1.0), (2, 3.0)], [(1, 1.0), (2, -1.0), (3, 0.0)]],
                      shape=(2, 5), dtype=dtype, index_dtype=index_dtype)
    items, scores = ops.topk_scores(W, R, n=4, device=device)
    # user 0: item0=1, item1=2, item2=3-2=1 ; item 3 only via an explicit zero
    assert items.tolist() == [[1, 0, 2, -1], [1, 2, -1, -1], [-1] * 4, [-1] * 4]
    inf = np.inf
    assert np.array_equal(scores, np.array([[2, 1, 1, -inf], [1, -1, -inf, -inf],
                                            [-inf] * 4, [-inf] * 4], dtype=dtype))
    assert scores.dtype == dtype and items.dtype == np.int64


def test_zero_sum_candidate_is_kept(device, dtype, index_dtype):
    # scipy's W @ R drops item 0 (1 - 1 = 0); it is still a candidate
    W = csr_from_rows([[(0, 1.0), (1, 1.0)]], shape=(1, 2), dtype=dtype,
                      index_dtype=index_dtype)
    R = csr_from_rows([[(0, 1.0), (1, -2.0)], [(0, -1.0)]], shape=(2, 3), dtype=dtype,
                      index_dtype=index_dtype)
    assert reference.topk_scores(W, R, n=3)[0].tolist() == [[0, 1, -1]]  # the oracle agrees
    items, scores = ops.topk_scores(W, R, n=3, device=device)
    assert items.tolist() == [[0, 1, -1]]
    assert scores.tolist() == [[0.0, -2.0, -np.inf]]


def test_exact_ties_smaller_index_first(device, dtype, index_dtype):
    W = csr_from_rows([[(0, 1.0), (1, 0.5)]], shape=(1, 2), dtype=dtype,
                      index_dtype=index_dtype)
    R = csr_from_rows([[(7, 2.0), (3, 2.0), (5, 1.0), (1, 2.0)],
                       [(6, 4.0), (0, 2.0)]], shape=(2, 8), dtype=dtype,
                      index_dtype=index_dtype)
    # scores: 1,3,6,7 -> 2 ; 0,5 -> 1
    for n, want in [(1, [1]), (2, [1, 3]), (4, [1, 3, 6, 7]), (5, [1, 3, 6, 7, 0]),
                    (8, [1, 3, 6, 7, 0, 5, -1, -1])]:
        items, _ = ops.topk_scores(W, R, n=n, device=device)
        assert items.tolist() == [want], n


def test_exclude_any_stored_entry(device, dtype, index_dtype):
    W = csr_from_rows([[(0, 1.0)], [(0, 1.0)]], shape=(2, 1), dtype=dtype,
                      index_dtype=index_dtype)
    R = csr_from_rows([[(0, 3.0), (1, 2.0), (2, 1.0)]], shape=(1, 4), dtype=dtype,
                      index_dtype=index_dtype)
    # row 0 excludes item 0 via an explicit zero and item 3 (not a candidate);
    # row 1 excludes item 1 via a negative value and item 2 via cancelling duplicates
    E = csr_from_rows([[(0, 0.0), (3, 1.0)], [(1, -1.0), (2, 1.0), (2, -1.0)]],
                      shape=(2, 4), index_dtype=index_dtype)
    for Ev in (E, E.tocoo(), sp.csr_array(E)):
        items, scores = ops.topk_scores(W, R, n=3, exclude=Ev, device=device)
        assert items.tolist() == [[1, 2, -1], [0, -1, -1]]
    items, _ = ops.topk_scores(W, R, n=3, exclude=E.astype(bool), device=device)
    assert items.tolist() == [[1, 2, -1], [0, -1, -1]]
    # an all-empty exclude changes nothing
    items, _ = ops.topk_scores(W, R, n=3, exclude=sp.csr_matrix((2, 4)), device=device)
    assert items.tolist() == [[0, 1, 2], [0, 1, 2]]


@pytest.mark.parametrize("u,j,m,n", [(0, 0, 0, 3), (0, 4, 5, 2), (3, 0, 5, 2),
                                     (3, 4, 0, 2), (3, 4, 5, 0), (0, 4, 5, 0)])
def test_empty(device, dtype, index_dtype, u, j, m, n):
    rng = np.random.default_rng(1)
    W = random_csr(rng, u, j, density=0.5, dtype=dtype, index_dtype=index_dtype)
    R = random_csr(rng, j, m, density=0.5, dtype=dtype, index_dtype=index_dtype)
    items, scores = ops.topk_scores(W, R, n=n, device=device)
    assert items.shape == (u, n) and scores.shape == (u, n)
    check_topk_scores(items, scores, W, R, n=n)
    E = sp.csr_matrix((u, m))
    items, scores = ops.topk_scores(W, R, n=n, exclude=E, device=device)
    check_topk_scores(items, scores, W, R, n=n, exclude=E)


@pytest.mark.parametrize("n", [1, 2, 3, 1000])
def test_n_versus_candidates(device, dtype, index_dtype, n):
    W = csr_from_rows([[(0, 1.0)], [(0, 2.0), (1, 1.0)]], shape=(2, 2), dtype=dtype,
                      index_dtype=index_dtype)
    R = csr_from_rows([[(2, 1.0), (0, 3.0)], [(1, 5.0)]], shape=(2, 3), dtype=dtype,
                      index_dtype=index_dtype)
    items, scores = ops.topk_scores(W, R, n=n, device=device)
    check_topk_scores(items, scores, W, R, n=n)
    want = [[0, 2], [0, 1, 2]]
    assert [row[row >= 0].tolist() for row in items] == [w[:n] for w in want]


@pytest.mark.parametrize("fmt", ["csr_array", "csc", "coo", "lil", "dok", "bsr"])
def test_input_formats(device, dtype, index_dtype, rng, fmt):
    W = random_csr(rng, 12, 9, density=0.3, dtype=dtype, index_dtype=index_dtype,
                   duplicates=0.2 if fmt == "coo" else 0.0)
    R = random_csr(rng, 9, 14, density=0.3, dtype=dtype, index_dtype=index_dtype)
    E = random_exclude(rng, W, R, index_dtype, "seen")
    E.data[:] = 1.0  # lil/dok do not keep explicit zeros
    items, scores = ops.topk_scores(to_format(W, fmt), to_format(R, fmt), n=5,
                                    exclude=to_format(E, fmt), device=device)
    check_topk_scores(items, scores, W, R, n=5, exclude=E)


@pytest.mark.parametrize("data_dtype,expected", [
    (np.bool_, np.float64), (np.int8, np.float64), (np.int64, np.float64),
    (np.uint32, np.float64), (np.float32, np.float32)])
def test_data_dtype_conversion(device, index_dtype, rng, data_dtype, expected):
    W = random_csr(rng, 10, 8, density=0.4, kind="int", index_dtype=index_dtype,
                   signed=False)
    R = random_csr(rng, 8, 12, density=0.4, kind="int", index_dtype=index_dtype,
                   signed=bool(np.issubdtype(data_dtype, np.signedinteger)))
    W = with_index_dtype(W.astype(data_dtype), index_dtype)
    R = with_index_dtype(R.astype(data_dtype), index_dtype)
    items, scores = ops.topk_scores(W, R, n=4, device=device)
    assert scores.dtype == expected
    check_topk_scores(items, scores, W, R, n=4)


def test_mixed_dtypes(device, dtype, index_dtype, rng):
    other = np.float64 if dtype == np.float32 else np.float32
    W = random_csr(rng, 10, 8, density=0.4, dtype=dtype, index_dtype=index_dtype)
    R = random_csr(rng, 8, 12, density=0.4, dtype=other, index_dtype=index_dtype)
    items, scores = ops.topk_scores(W, R, n=4, device=device)
    assert scores.dtype == np.float64
    check_topk_scores(items, scores, W, R, n=4)


# ---------------------------------------------------------------------------
# huge item ids (int64 indices, m > 2**31): must not allocate m
# ---------------------------------------------------------------------------
def test_huge_item_ids(device, dtype, rng):
    W = random_csr(rng, 30, 40, density=0.2, dtype=dtype, index_dtype=np.int64)
    R = random_csr(rng, 40, BIG_M, density=4 / BIG_M, dtype=dtype, index_dtype=np.int64,
                   powerlaw=True, max_row_nnz=8)
    assert R.indices.max() > 2**31
    E = random_exclude(rng, W, R, np.int64, "seen")
    for exclude in (None, E):
        items, scores = ops.topk_scores(W, R, n=6, exclude=exclude, device=device)
        check_topk_scores(items, scores, W, R, n=6, exclude=exclude)
    W1 = csr_from_rows([[(0, 1.0)]], shape=(1, 1), dtype=dtype)
    R1 = csr_from_rows([[(BIG_M - 1, 2.0), (3, 1.0), (2**31, 1.5)]], shape=(1, BIG_M),
                       dtype=dtype)
    items, scores = ops.topk_scores(W1, R1, n=4, device=device)
    assert items.tolist() == [[BIG_M - 1, 2**31, 3, -1]]
    E1 = csr_from_rows([[(2**31, 1.0)]], shape=(1, BIG_M))
    items, scores = ops.topk_scores(W1, R1, n=4, exclude=E1, device=device)
    assert items.tolist() == [[BIG_M - 1, 3, -1, -1]]


def test_huge_item_ids_memory_bounded():
    """In a process with a ~2 GiB address-space allowance, m = 3e9 must work."""
    if not sys.platform.startswith("linux"):
        pytest.skip("needs /proc and RLIMIT_AS")
    proc = run_memory_limited(f"""
        u, j = 40, 30
        rng = np.random.default_rng(7)
        W = sp.random(u, j, density=0.3, format="csr", random_state=1)
        indptr = np.arange(0, 3 * j + 1, 3, dtype=np.int64)
        indices = np.sort(rng.integers(0, {BIG_M}, size=(j, 3)), axis=1).ravel()
        R = sp.csr_matrix((rng.random(3 * j) + 0.1, indices, indptr), shape=(j, {BIG_M}))
        R.indices = R.indices.astype(np.int64); R.indptr = R.indptr.astype(np.int64)
        E = sp.csr_matrix((np.ones(u), np.full(u, indices[0]), np.arange(u + 1)),
                          shape=(u, {BIG_M}))
        items, scores = ops.topk_scores(W, R, n=5, exclude=E, device="cpu", n_threads=2)
        assert items.shape == (u, 5)
        assert not np.any(items == indices[0])
        print("OK")
    """)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]
