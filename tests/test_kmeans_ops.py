"""Tests of ``cohortrec.ops.kmeans_assign`` / ``kmeans_update``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from _helpers import (
    assert_snapshot_equal,
    check_kmeans_assign,
    check_kmeans_update,
    csr_snapshot,
    dense_with_layout,
    random_csr,
    to_format,
    with_index_dtype,
)
from cohortrec import ops
from cohortrec.ops import reference

LAYOUTS = ["C", "F", "strided", "transposed", "reversed", "readonly", "csr",
           "csr_noncanonical", "csr_readonly"]


def make_X(rng, n, d, dtype, index_dtype, layout, *, scale=1.0, offset=0.0):
    """Random points in the requested layout (dense or CSR)."""
    if layout.startswith("csr"):
        nc = layout == "csr_noncanonical"
        X = random_csr(rng, n, d, density=0.5, dtype=np.float64, index_dtype=index_dtype,
                       empty_rows=0.1, explicit_zeros=0.1 if nc else 0.0,
                       duplicates=0.2 if nc else 0.0, unsorted=nc)
        X.data = (X.data * scale).astype(dtype)
        X = with_index_dtype(X, index_dtype)
        return to_format(X, "readonly") if layout == "csr_readonly" else X
    X = (rng.standard_normal((n, d)) * scale + offset).astype(dtype)
    return dense_with_layout(X, layout)


def make_centers(rng, X, k, dtype):
    """Centres: some copied from the data, some random."""
    d = X.shape[1]
    C = rng.standard_normal((k, d))
    if X.shape[0]:
        Xd = X.toarray() if sp.issparse(X) else np.asarray(X)
        take = rng.random(k) < 0.5
        C[take] = Xd[rng.integers(0, X.shape[0], int(take.sum()))]
    return C.astype(dtype)


# ---------------------------------------------------------------------------
# kmeans_assign
# ---------------------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 80), d=st.integers(1, 20),
       k=st.integers(1, 12), layout=st.sampled_from(LAYOUTS),
       scale=st.sampled_from([1.0, 1e-3, 1e3]),
       center_dtype=st.sampled_from(["same", "float32", "float64"]))
def test_assign_random(device, dtype, index_dtype, seed, n, d, k, layout, scale,
                       center_dtype):
    rng = np.random.default_rng(seed)
    X = make_X(rng, n, d, dtype, index_dtype, layout, scale=scale)
    cdt = dtype if center_dtype == "same" else np.dtype(center_dtype)
    C = make_centers(rng, X, k, cdt)
    snap_x, snap_c = csr_snapshot(X), C.copy()
    labels, sq = ops.kmeans_assign(X, C, device=device)
    assert_snapshot_equal(X, snap_x)
    assert np.array_equal(C, snap_c)
    check_kmeans_assign(labels, sq, X, C)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n,d,k", [(500, 16, 8), (300, 64, 33), (1000, 3, 2), (200, 257, 70)])
def test_assign_larger(device, dtype, index_dtype, rng, layout, n, d, k):
    X = make_X(rng, n, d, dtype, index_dtype, layout, offset=2.0)
    C = make_centers(rng, X, k, dtype)
    labels, sq = ops.kmeans_assign(X, C, device=device)
    check_kmeans_assign(labels, sq, X, C)


def test_assign_known(device, dtype, index_dtype):
    X = np.array([[0, 0], [1, 1], [4, 4], [10, 0], [2, 2]], dtype=dtype)
    C = np.array([[0, 0], [4, 4], [10, 1]], dtype=dtype)
    assert reference.kmeans_assign(X, C)[0].tolist() == [0, 0, 1, 2, 0]  # the oracle agrees
    for Xv in (X, with_index_dtype(sp.csr_matrix(X), index_dtype)):
        labels, sq = ops.kmeans_assign(Xv, C, device=device)
        assert labels.tolist() == [0, 0, 1, 2, 0]   # (2,2): tie 8 vs 8 -> 0
        np.testing.assert_allclose(sq, [0, 2, 0, 1, 8], rtol=1e-6)


def test_assign_exact_ties_smaller_index(device, dtype, index_dtype, rng):
    # duplicated centres: identical computations -> exact ties -> smaller index
    d = 5
    base = rng.standard_normal((3, d)).astype(dtype)
    C = np.stack([base[0], base[1], base[1], base[2], base[0], base[1]]).astype(dtype)
    X = np.concatenate([base, base, rng.standard_normal((20, d)).astype(dtype)])
    for Xv in (X, with_index_dtype(sp.csr_matrix(X), index_dtype)):
        labels, sq = ops.kmeans_assign(Xv, C, device=device)
        check_kmeans_assign(labels, sq, Xv, C)
        assert np.all(np.isin(labels, [0, 1, 3])), labels  # never 2, 4, 5
        assert labels[:6].tolist() == [0, 1, 3, 0, 1, 3]
    # mirrored centres: x = (0, y) is exactly equidistant from (1, 0) and (-1, 0)
    C2 = np.array([[1, 0], [-1, 0], [50, 50]], dtype=dtype)
    Y = np.stack([np.zeros(8), np.arange(8) - 2.0], axis=1).astype(dtype)
    labels, _ = ops.kmeans_assign(Y, C2, device=device)
    assert labels.tolist() == [0] * 8
    C3 = C2[[1, 0, 2]]
    labels, _ = ops.kmeans_assign(Y, C3, device=device)
    assert labels.tolist() == [0] * 8


def test_assign_duplicated_points(device, dtype, index_dtype, rng):
    P = rng.standard_normal((7, 4)).astype(dtype)
    X = P[rng.integers(0, 7, 200)]
    C = rng.standard_normal((5, 4)).astype(dtype)
    for Xv in (X, with_index_dtype(sp.csr_matrix(X), index_dtype)):
        labels, sq = ops.kmeans_assign(Xv, C, device=device)
        check_kmeans_assign(labels, sq, Xv, C)
        # identical points get identical results
        for j in range(7):
            same = np.all(X == P[j], axis=1)
            assert len(set(labels[same].tolist())) <= 1
            assert len(set(sq[same].tolist())) <= 1


def test_assign_one_cluster(device, dtype, index_dtype, rng):
    X = rng.standard_normal((50, 6)).astype(dtype)
    C = rng.standard_normal((1, 6)).astype(dtype)
    for Xv in (X, with_index_dtype(sp.csr_matrix(X), index_dtype)):
        labels, sq = ops.kmeans_assign(Xv, C, device=device)
        assert np.all(labels == 0)
        check_kmeans_assign(labels, sq, Xv, C)


def test_assign_points_on_centers_clip(device, dtype, index_dtype, rng):
    # large-norm points equal to a centre: |x|^2 - 2x.c + |c|^2 may round
    # below zero; the result must be clipped at 0
    C = (rng.standard_normal((4, 30)) * 1e3 + 1e4).astype(dtype)
    X = C[rng.integers(0, 4, 64)]
    for Xv in (X, with_index_dtype(sp.csr_matrix(X), index_dtype)):
        labels, sq = ops.kmeans_assign(Xv, C, device=device)
        assert np.all(sq >= 0)
        check_kmeans_assign(labels, sq, Xv, C)


@pytest.mark.parametrize("n,d,k", [(0, 3, 2), (0, 0, 1), (4, 0, 3), (1, 1, 1)])
def test_assign_zero_size(device, dtype, index_dtype, n, d, k):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(dtype)
    C = rng.standard_normal((k, d)).astype(dtype)
    for Xv in (X, with_index_dtype(sp.csr_matrix(X), index_dtype)):
        labels, sq = ops.kmeans_assign(Xv, C, device=device)
        assert labels.shape == (n,) and sq.shape == (n,)
        assert labels.dtype == np.int64 and sq.dtype == dtype
        check_kmeans_assign(labels, sq, Xv, C)
        if d == 0:
            assert np.all(labels == 0) and np.all(sq == 0)


@pytest.mark.parametrize("xdt", [np.int8, np.int32, np.int64, np.uint8, np.bool_])
def test_assign_integer_X_is_float64(device, index_dtype, rng, xdt):
    X = rng.integers(0, 3, (40, 5)).astype(xdt)
    C = rng.standard_normal((4, 5)).astype(np.float32)
    labels, sq = ops.kmeans_assign(X, C, device=device)
    assert sq.dtype == np.float64
    check_kmeans_assign(labels, sq, X, C)
    Xs = with_index_dtype(sp.csr_matrix(X), index_dtype)
    labels, sq = ops.kmeans_assign(Xs, C, device=device)
    assert sq.dtype == np.float64
    check_kmeans_assign(labels, sq, Xs, C)


def test_assign_centers_cast_to_X_dtype(device, dtype, index_dtype, rng):
    other = np.float64 if dtype == np.float32 else np.float32
    X = rng.standard_normal((60, 8)).astype(dtype)
    C = rng.standard_normal((5, 8)).astype(other)
    labels, sq = ops.kmeans_assign(X, C, device=device)
    assert sq.dtype == dtype
    check_kmeans_assign(labels, sq, X, C)
    # centres given as a list / integer array
    labels2, sq2 = ops.kmeans_assign(X, np.round(C * 3).astype(np.int64), device=device)
    check_kmeans_assign(labels2, sq2, X, np.round(C * 3).astype(np.int64))


# ---------------------------------------------------------------------------
# kmeans_update
# ---------------------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 80), d=st.integers(0, 12),
       k=st.integers(1, 10), layout=st.sampled_from(LAYOUTS),
       weights=st.sampled_from([None, "random", "int", "with_zeros"]),
       label_dtype=st.sampled_from(["index", "int8", "uint8", "int16", "uint32", "uint64"]))
def test_update_random(device, dtype, index_dtype, seed, n, d, k, layout, weights,
                       label_dtype):
    rng = np.random.default_rng(seed)
    if d == 0 and layout.startswith("csr"):
        layout = "C"
    X = make_X(rng, n, d, dtype, index_dtype, layout)
    ldt = index_dtype if label_dtype == "index" else np.dtype(label_dtype)
    # leave some clusters empty
    labels = rng.integers(0, max(1, k - 1) if k > 2 else k, n).astype(ldt)
    w = None
    if weights == "random":
        w = rng.random(n) * 3
    elif weights == "int":
        w = rng.integers(0, 4, n)
    elif weights == "with_zeros":
        w = np.where(rng.random(n) < 0.5, 0.0, rng.random(n)).astype(np.float32)
    snap_x, snap_l = csr_snapshot(X), labels.copy()
    sums, counts = ops.kmeans_update(X, labels, k, sample_weight=w, device=device)
    assert_snapshot_equal(X, snap_x)
    assert np.array_equal(labels, snap_l)
    check_kmeans_update(sums, counts, X, labels, k, w)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_update_larger(device, dtype, index_dtype, rng, layout):
    n, d, k = 3000, 20, 17
    X = make_X(rng, n, d, dtype, index_dtype, layout)
    labels = rng.integers(0, k, n).astype(index_dtype)
    w = rng.random(n)
    for weights in (None, w):
        sums, counts = ops.kmeans_update(X, labels, k, sample_weight=weights, device=device)
        check_kmeans_update(sums, counts, X, labels, k, weights)


def test_update_known(device, dtype, index_dtype):
    X = np.array([[1, 2], [3, 4], [5, 6], [7, 8]], dtype=dtype)
    labels = np.array([2, 0, 2, 2], dtype=index_dtype)
    ref_sums, _ = reference.kmeans_update(X, labels, 4)  # the oracle agrees
    assert np.array_equal(ref_sums, np.array([[3, 4], [0, 0], [13, 16], [0, 0]], dtype))
    for Xv in (X, with_index_dtype(sp.csr_matrix(X), index_dtype)):
        sums, counts = ops.kmeans_update(Xv, labels, 4, device=device)
        assert np.array_equal(sums, np.array([[3, 4], [0, 0], [13, 16], [0, 0]], dtype))
        assert np.array_equal(counts, np.array([1, 0, 3, 0], dtype))
        sums, counts = ops.kmeans_update(Xv, labels, 3, sample_weight=np.array([0.5, 2, 0, 1]),
                                         device=device)
        assert np.array_equal(sums, np.array([[6, 8], [0, 0], [7.5, 9], ], dtype))
        assert np.array_equal(counts, np.array([2, 0, 1.5], dtype))


def test_update_one_cluster(device, dtype, index_dtype, rng):
    X = rng.standard_normal((40, 3)).astype(dtype)
    labels = np.zeros(40, dtype=index_dtype)
    for Xv in (X, with_index_dtype(sp.csr_matrix(X), index_dtype)):
        sums, counts = ops.kmeans_update(Xv, labels, 1, device=device)
        check_kmeans_update(sums, counts, Xv, labels, 1)
        assert counts[0] == 40


@pytest.mark.parametrize("n,d,k", [(0, 3, 2), (0, 0, 1), (5, 0, 3)])
def test_update_zero_size(device, dtype, index_dtype, n, d, k):
    X = np.ones((n, d), dtype=dtype)
    labels = (np.arange(n) % k).astype(index_dtype)
    for Xv in (X, with_index_dtype(sp.csr_matrix(X), index_dtype)):
        sums, counts = ops.kmeans_update(Xv, labels, k, device=device)
        assert sums.shape == (k, d) and counts.shape == (k,)
        assert sums.dtype == dtype and counts.dtype == dtype
        assert np.all(sums == 0)
        assert np.array_equal(counts, np.bincount(labels.astype(np.int64), minlength=k)
                              .astype(dtype))


def test_update_integer_X_is_float64(device, index_dtype, rng):
    X = rng.integers(-5, 5, (30, 4))
    labels = rng.integers(0, 3, 30).astype(index_dtype)
    sums, counts = ops.kmeans_update(X, labels, 3, device=device)
    assert sums.dtype == np.float64 and counts.dtype == np.float64
    check_kmeans_update(sums, counts, X, labels, 3)


def test_assign_broadcast_rows(device, dtype, rng):
    # a zero-stride (read-only) view: every row is the same point
    row = rng.standard_normal(6).astype(dtype)
    X = np.broadcast_to(row, (9, 6))
    C = rng.standard_normal((4, 6)).astype(dtype)
    labels, sq = ops.kmeans_assign(X, C, device=device)
    check_kmeans_assign(labels, sq, X, C)
    assert len(set(labels.tolist())) == 1 and len(set(sq.tolist())) == 1
    sums, counts = ops.kmeans_update(X, np.arange(9) % 2, 2, device=device)
    check_kmeans_update(sums, counts, X, np.arange(9) % 2, 2)


def test_update_float32_overflow_is_not_reported_as_nan(device, index_dtype):
    # finite float32 points whose sum exceeds float32's range: the exact sum
    # rounds to inf in the output dtype; X itself is valid input
    X = np.full((3, 2), 2e38, dtype=np.float32)
    labels = np.array([0, 0, 1], dtype=index_dtype)
    for Xv in (X, with_index_dtype(sp.csr_matrix(X), index_dtype)):
        sums, counts = ops.kmeans_update(Xv, labels, 2, device=device)
        assert np.all(np.isposinf(sums[0])) and np.array_equal(sums[1], X[2])
        assert counts.tolist() == [2.0, 1.0]


# ---------------------------------------------------------------------------
# kmeans_step: one pass, the same bits as kmeans_assign + kmeans_update
# ---------------------------------------------------------------------------
def _assert_step_equals_two_calls(X, C, w, device, threads):
    lab, sq, sums, counts = ops.kmeans_step(X, C, sample_weight=w, device=device, n_threads=threads)
    lab2, sq2 = ops.kmeans_assign(X, C, device=device, n_threads=threads)
    sums2, counts2 = ops.kmeans_update(X, lab2, C.shape[0], sample_weight=w, device=device,
                                       n_threads=threads)
    np.testing.assert_array_equal(lab, lab2)
    np.testing.assert_array_equal(sq, sq2)
    np.testing.assert_array_equal(sums, sums2)
    np.testing.assert_array_equal(counts, counts2)
    assert lab.dtype == np.int64 and sums.dtype == sq.dtype == counts.dtype
    check_kmeans_assign(lab, sq, X, C)
    check_kmeans_update(sums, counts, X, lab, C.shape[0], w)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 120), d=st.integers(1, 20),
       k=st.integers(1, 12), layout=st.sampled_from(LAYOUTS), weights=st.booleans(),
       threads=st.sampled_from([1, 2, 3]))
def test_step_random(device, dtype, index_dtype, seed, n, d, k, layout, weights, threads):
    rng = np.random.default_rng(seed)
    X = make_X(rng, n, d, dtype, index_dtype, layout)
    C = make_centers(rng, X, k, dtype)
    w = rng.uniform(0, 3, n).astype(dtype) if weights else None
    _assert_step_equals_two_calls(X, C, w, device, threads)


# several streamed chunks (n > 16384), and k * d above the streaming limit
@pytest.mark.parametrize("n,d,k", [(40000, 8, 5), (20000, 3, 1), (3000, 300, 250)])
@pytest.mark.parametrize("layout", ["C", "F"])
def test_step_larger(device, dtype, rng, n, d, k, layout):
    X = make_X(rng, n, d, dtype, np.int32, layout)
    C = make_centers(rng, X, k, dtype)
    _assert_step_equals_two_calls(X, C, rng.uniform(0, 2, n).astype(dtype), device, 2)
    ref = ops.kmeans_step(X, C, device=device, n_threads=1)
    for t in (2, 5):
        got = ops.kmeans_step(X, C, device=device, n_threads=t)
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(a, b)


def test_step_bad_input(device):
    X = np.ones((5, 3), np.float32)
    with pytest.raises(ValueError, match="centers"):
        ops.kmeans_step(X, np.ones((2, 4)), device=device)
    with pytest.raises(ValueError, match="centers"):
        ops.kmeans_step(X, np.ones((0, 3)), device=device)
    with pytest.raises(ValueError, match="sample_weight"):
        ops.kmeans_step(X, np.ones((2, 3)), sample_weight=np.ones(4), device=device)
    with pytest.raises(ValueError, match="sample_weight"):
        ops.kmeans_step(X, np.ones((2, 3)), sample_weight=-np.ones(5), device=device)
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        ops.kmeans_step(bad, np.ones((2, 3)), device=device)


def test_step_against_reference(device, dtype, rng):
    X = rng.standard_normal((500, 6)).astype(dtype)
    C = X[:7].copy()
    w = rng.uniform(0, 2, 500).astype(dtype)
    lab, sq, sums, counts = ops.kmeans_step(X, C, sample_weight=w, device=device)
    rlab, rsq, rsums, rcounts = reference.kmeans_step(X, C, sample_weight=w)
    np.testing.assert_array_equal(lab, rlab)  # random data: no near-ties
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(sq, rsq, rtol=tol, atol=tol)
    np.testing.assert_allclose(sums, rsums, rtol=tol, atol=tol)
    np.testing.assert_allclose(counts, rcounts, rtol=tol)
