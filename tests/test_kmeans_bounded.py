"""The bounded (Yinyang) K-means assignment: kernel invariants and the fit.

Against references: every pass must give the labels of the plain native
assignment (same arithmetic for recomputed points, bounds with a rounding
margin for skipped ones), valid bounds (checked against float64 distances),
cluster sums equal to a NumPy sum over the labels, and the same result for
any thread count and instruction set.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cohortrec import _core
from cohortrec.cluster import KMeans, _lloyd
from cohortrec.cluster._lloyd import _balanced_groups, _Yinyang


def _isas() -> list[str]:
    out = []
    for name in ("generic", "avx2", "avx512"):
        try:
            _core._set_isa(name)
        except ValueError:
            continue
        finally:
            _core._set_isa("auto")
        out.append(name)
    return out


ISAS = _isas()


@pytest.fixture(params=ISAS)
def isa(request):
    _core._set_isa(request.param)
    yield request.param
    _core._set_isa("auto")


def _plain(X, C):
    lab = np.empty(X.shape[0], dtype=np.int64)
    sq = np.empty(X.shape[0], dtype=X.dtype)
    _core.kmeans_assign_dense(X, np.ascontiguousarray(C), lab, sq, 1)
    return lab


def _check_state(st_, X, C, w):
    """Bounds, labels and sums of a _Yinyang state against float64 references."""
    X64, C64 = X.astype(np.float64), C.astype(np.float64)
    D = np.sqrt(((X64[:, None, :] - C64[None, :, :]) ** 2).sum(-1))
    n, k = D.shape
    lab = st_.labels
    np.testing.assert_array_equal(lab, _plain(X, C))
    own = D[np.arange(n), lab]
    tol = 1e-9 * (1 + D.max())
    assert np.all(st_.upper >= own - tol), "upper bound below the true distance"
    if k > 1:
        other = D.copy()
        other[np.arange(n), lab] = np.inf
        assert np.all(st_.lower <= other.min(axis=1) + tol), "lower bound above the nearest other centre"
        lanes = st_.slots.size // st_.dcum.size
        for g in range(st_.dcum.size):
            members = st_.slots[g * lanes:(g + 1) * lanes]
            members = members[members >= 0]
            og = other[:, members].min(axis=1)
            eff = st_.group_lower[:, g].astype(np.float64) - st_.dcum[g]
            assert np.all(eff <= og + tol), f"group {g} bound above its nearest centre"
    if st_.sums is not None:
        ref = np.zeros_like(st_.sums)
        wt = np.ones(n) if w is None else w.astype(np.float64)
        np.add.at(ref, lab, X64 * wt[:, None])
        np.testing.assert_allclose(st_.sums, ref, rtol=1e-10, atol=1e-10 * (1 + np.abs(ref).max()))
        np.testing.assert_allclose(st_.counts, np.bincount(lab, weights=wt, minlength=k), rtol=1e-12,
                                   atol=1e-12 * wt.sum())
        np.testing.assert_array_equal(st_.members, np.bincount(lab, minlength=k))
        sums, counts = st_.update(X, w, "cpu", 1)
        empty = st_.members == 0
        assert np.all(counts[empty] == 0) and np.all(sums[empty] == 0)


def _run_passes(X, C, rng, w, n_threads, passes=6, jump=0.3):
    """First pass, then passes after random centre moves (some centres still, some jumping)."""
    st_ = _Yinyang(X, C)
    st_.assign(X, C, None, w, n_threads, True)
    _check_state(st_, X, C, w)
    states = []
    for p in range(passes):
        moves = rng.normal(size=C.shape) * rng.choice([0.0, 0.01, jump], size=(C.shape[0], 1))
        if p == passes - 1:
            moves[:] = 0.0  # nothing moves: nothing may change
        newC = (C.astype(np.float64) + moves).astype(X.dtype)
        shift = np.sqrt(((newC.astype(np.float64) - C.astype(np.float64)) ** 2).sum(1))
        C = newC
        old = st_.labels.copy()
        moved, frac = st_.assign(X, C, shift, w, n_threads, True)
        assert moved == int((old != st_.labels).sum())
        assert 0.0 <= frac <= 1.0
        if p == passes - 1:
            assert moved == 0  # (tied points may still be recomputed)
        _check_state(st_, X, C, w)
        states.append((st_.labels.copy(), st_.upper.copy(), st_.lower.copy(), st_.group_lower.copy(),
                       st_.sums.copy()))
    return states


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120), d=st.integers(1, 40), k=st.integers(1, 70),
       weighted=st.booleans(), f64=st.booleans())
def test_passes_random(seed, n, d, k, weighted, f64):
    rng = np.random.default_rng(seed)
    dtype = np.float64 if f64 else np.float32
    X = (rng.normal(size=(n, d)) * rng.choice([0.1, 1.0, 30.0])).astype(dtype)
    C = X[rng.integers(0, n, k)].copy() if rng.random() < 0.5 else rng.normal(size=(k, d)).astype(dtype)
    w = rng.uniform(0.5, 2.0, n).astype(dtype) if weighted else None
    _run_passes(X, C, rng, w, 2)


def test_passes_clustered_with_duplicates(rng, dtype, isa):
    # structured data (most points skipped) with duplicated rows and duplicated centres
    centres = rng.normal(0, 6, size=(25, 12))
    X = (centres[rng.integers(0, 25, 1500)] + rng.normal(size=(1500, 12))).astype(dtype)
    X[1000:1100] = X[0]
    C = X[rng.choice(1500, 40, replace=False)].copy()
    C[39] = C[38]
    _run_passes(X, C, rng, None, 2, passes=8, jump=0.05)


def test_thread_count_and_isa_do_not_change_results(rng, dtype):
    centres = rng.normal(0, 4, size=(30, 20))
    X = (centres[rng.integers(0, 30, 20000)] + rng.normal(size=(20000, 20))).astype(dtype)
    C = X[rng.choice(20000, 50, replace=False)].copy()
    w = rng.uniform(0.5, 2.0, 20000).astype(dtype)
    ref = _run_passes(X, C, np.random.default_rng(1), w, 1)
    for threads in (2, 3):
        got = _run_passes(X, C, np.random.default_rng(1), w, threads)
        for a, b in zip(ref, got):
            for u, v in zip(a, b):
                np.testing.assert_array_equal(u, v)
    for name in ISAS:
        _core._set_isa(name)
        try:
            got = _run_passes(X, C, np.random.default_rng(1), w, 2)
        finally:
            _core._set_isa("auto")
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(a[0], b[0])  # labels; bounds depend on the lane count


def test_balanced_groups():
    rng = np.random.default_rng(0)
    for k, lanes in [(1, 16), (16, 16), (17, 16), (256, 16), (70, 4), (5, 8)]:
        C = rng.normal(size=(k, 3))
        slots = _balanced_groups(C, lanes)
        assert slots.size % lanes == 0 and slots.size // lanes == -(-k // lanes)
        assert sorted(slots[slots >= 0].tolist()) == list(range(k))
    # groups hold nearby centres: two far-apart blobs of 16 never share a group
    C = np.vstack([rng.normal(size=(16, 2)), rng.normal(size=(16, 2)) + 100])
    slots = _balanced_groups(C, 16).reshape(2, 16)
    assert all(len({int(j >= 16) for j in row}) == 1 for row in slots)


def test_fit_matches_plain_lloyd(rng, dtype):
    centres = rng.normal(0, 3, size=(40, 16))
    X = (centres[rng.integers(0, 40, 6000)] + rng.normal(size=(6000, 16))).astype(dtype)
    init = X[rng.choice(6000, 70, replace=False)]
    w = rng.uniform(0.5, 2.0, 6000)
    for sw in (None, w):
        a = KMeans(70, init=init, n_init=1, algorithm="yinyang").fit(X, sample_weight=sw)
        b = KMeans(70, init=init, n_init=1, algorithm="lloyd").fit(X, sample_weight=sw)
        np.testing.assert_array_equal(a.labels_, b.labels_)
        assert a.n_iter_ == b.n_iter_
        assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-6)
        np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-4, atol=1e-4)
        assert max(a.recomputed_[3:]) < 0.5  # the bounds skip most distances once settled


def test_fit_auto_uses_bounds_within_the_memory_budget(rng, monkeypatch):
    X = rng.normal(size=(3000, 8)).astype(np.float32)
    init = X[:100]
    a = KMeans(100, init=init, n_init=1).fit(X)
    assert min(a.recomputed_[1:]) < 1.0
    monkeypatch.setattr(_lloyd, "_BOUNDS_MAX_BYTES", 0)
    assert not _lloyd.bounds_fit_memory(3000, 100, np.float32)
    b = KMeans(100, init=init, n_init=1).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_fit_empty_cluster_relocation():
    # 3 distinct points, 4 centres two of which coincide: a cluster empties and is relocated
    X = np.repeat(np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]), 50, axis=0)
    X += np.random.default_rng(0).normal(scale=0.01, size=X.shape)
    init = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    a = KMeans(4, init=init, n_init=1, algorithm="yinyang").fit(X)
    b = KMeans(4, init=init, n_init=1, algorithm="lloyd").fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-9)
    assert len(np.unique(a.labels_)) == 4


def test_kernel_rejects_bad_input():
    X = np.zeros((10, 3), dtype=np.float32)
    C = np.zeros((5, 3), dtype=np.float32)
    st_ = _Yinyang(X, C)
    lanes = _core.kmeans_group_lanes(4)

    def call(slots=None, labels=None, shift=None):
        return _core.kmeans_assign_bounded_dense(
            X, C, st_.slots if slots is None else slots, shift, None, st_.x_sq,
            st_.labels if labels is None else labels, st_.upper, st_.lower, st_.group_lower, st_.dcum,
            None, None, None, None, False, 1)

    bad = st_.slots.copy()
    bad[1] = bad[0]
    with pytest.raises(ValueError, match="twice"):
        call(slots=bad)
    bad = st_.slots.copy()
    bad[0] = 7
    with pytest.raises(IndexError, match="slots"):
        call(slots=bad)
    with pytest.raises(ValueError, match="slots"):
        call(slots=np.full(lanes + 1, -1, dtype=np.int64))
    call()
    with pytest.raises(IndexError, match="labels"):
        call(labels=np.full(10, 9, dtype=np.int64), shift=np.zeros(5))
    with pytest.raises(ValueError, match="shift"):
        call(shift=np.full(5, np.nan))
    with pytest.raises(ValueError, match="item_size"):
        _core.kmeans_group_lanes(2)


def test_half_nearest_centre_never_exceeds_the_true_value(rng, dtype):
    from cohortrec.cluster._lloyd import _half_nearest_centre

    for k, d, scale in [(1, 3, 1.0), (2, 1, 1.0), (50, 8, 1e3), (300, 64, 1.0), (40, 16, 1e-3)]:
        C = (rng.normal(size=(k, d)) * scale + rng.normal(size=d) * 10 * scale).astype(dtype)
        C[-1] = C[0]  # a duplicated centre: its half distance is 0
        C64 = C.astype(np.float64)
        D = np.sqrt(((C64[:, None] - C64[None]) ** 2).sum(-1))
        np.fill_diagonal(D, np.inf)
        got = _half_nearest_centre(C)
        assert np.all(got <= 0.5 * D.min(axis=1) * (1 + 1e-12))
        ok = np.isfinite(D.min(axis=1)) & (D.min(axis=1) > 0)
        np.testing.assert_allclose(got[ok], 0.5 * D.min(axis=1)[ok], rtol=1e-2)  # and not far below


def test_fit_with_zero_weights_matches_plain_lloyd(rng):
    # points of weight 0 move between clusters: a cluster can hold members and no weight
    centres = rng.normal(0, 3, size=(8, 4))
    X = centres[rng.integers(0, 8, 2000)] + rng.normal(size=(2000, 4))
    w = rng.uniform(0.5, 2.0, 2000)
    w[rng.random(2000) < 0.3] = 0.0
    init = X[rng.choice(2000, 12, replace=False)]
    init[0] = X[np.flatnonzero(w == 0)[0]] + 50  # far away: its cluster only ever holds zero weights
    a = KMeans(12, init=init, n_init=1, algorithm="yinyang").fit(X, sample_weight=w)
    b = KMeans(12, init=init, n_init=1, algorithm="lloyd").fit(X, sample_weight=w)
    assert np.all(np.isfinite(a.cluster_centers_))
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-9)


def test_update_recounts_members_of_zero_weight():
    # a cluster whose members weigh 0 but whose running count kept a rounding residue
    X = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [0.1, 10.0]])
    w = np.array([0.0, 1.0, 1.0, 3.0])
    C = X[:3].copy()
    st_ = _Yinyang(X, C)
    st_.assign(X, C, None, w, 1, True)
    np.testing.assert_array_equal(st_.labels, [0, 1, 2, 2])
    st_.counts[0] = 1e-17  # residue of +0.7 + 1.3 - 0.7 - 1.3, say
    st_.sums[0] = 1e-17
    sums, counts = st_.update(X, w, "cpu", 1)
    np.testing.assert_array_equal(counts, [0.0, 1.0, 4.0])
    np.testing.assert_allclose(sums, [[0.0, 0.0], [10.0, 0.0], [0.3, 40.0]])


@pytest.mark.parametrize("block", [1, 7, 1 << 20])
def test_exact_sq_dist_sparse_matches_dense(rng, dtype, block, monkeypatch):
    import scipy.sparse as sp

    monkeypatch.setattr(_lloyd, "_SPARSE_BLOCK", block)
    for n, d, dens in [(0, 5, 0.1), (1, 5, 0.0), (300, 40, 0.2), (200, 9, 0.0), (500, 300, 0.5)]:
        X = sp.random(n, d, density=dens, format="csr", random_state=int(rng.integers(1 << 30)), dtype=dtype)
        if n > 10:  # an empty row
            X = sp.csr_matrix(X.multiply(sp.csr_matrix((np.arange(n) != 3).astype(dtype)[:, None])))
        C = (rng.normal(size=(7, d)) * 3).astype(dtype)
        lab = rng.integers(0, 7, n)
        ref = ((X.toarray().astype(np.float64) - C[lab].astype(np.float64)) ** 2).sum(axis=1)
        got = _lloyd.exact_sq_dist(X, C, lab)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * (1 + (ref.max() if n else 0)))
        np.testing.assert_allclose(_lloyd._row_sq_norms(X), (X.toarray().astype(np.float64) ** 2).sum(1),
                                   rtol=1e-12)
