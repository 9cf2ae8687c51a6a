"""Native k-means++ seeding: the kernels against NumPy, the seeding against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.cluster import kmeans_plusplus

from cohortrec import _core
from cohortrec.cluster import KMeans
from cohortrec.cluster._seeding import kmeans_plusplus_dense


def _sq(X, c):
    return ((X.astype(np.float64) - c[None, :]) ** 2).sum(axis=1)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), d=st.integers(1, 40), m=st.integers(1, 20),
       weighted=st.booleans(), f64=st.booleans(), threads=st.sampled_from([1, 2, 3]))
def test_kernels_against_numpy(seed, n, d, m, weighted, f64, threads):
    rng = np.random.default_rng(seed)
    dt = np.float64 if f64 else np.float32
    X = (rng.normal(size=(n, d)) * rng.choice([0.01, 1.0, 100.0])).astype(dt)
    w = rng.uniform(0.0, 2.0, n).astype(dt) if weighted else None
    wt = np.ones(n) if w is None else w.astype(np.float64)
    closest = np.where(rng.random(n) < 0.3, np.inf, rng.uniform(0, 50, n))
    c = rng.normal(size=d)
    ref_closest = np.minimum(closest, _sq(X, c))
    cum = np.empty(n)
    got = closest.copy()
    _core.kmeanspp_update_dense(X, c, got, w, cum, threads)
    np.testing.assert_allclose(got, ref_closest, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(cum, np.cumsum(wt * ref_closest), rtol=1e-10)
    cand = rng.normal(size=(m, d))
    pot = np.empty(m)
    _core.kmeanspp_trials_dense(X, cand, got, w, pot, threads)
    ref_pot = np.array([(wt * np.minimum(ref_closest, _sq(X, cand[t]))).sum() for t in range(m)])
    np.testing.assert_allclose(pot, ref_pot, rtol=1e-10)


def test_kernels_same_for_any_thread_count(rng):
    X = rng.normal(size=(50000, 33)).astype(np.float32)
    c, cand = rng.normal(size=33), rng.normal(size=(7, 33))
    outs = []
    for threads in (1, 2, 3):
        closest, cum, pot = np.full(50000, np.inf), np.empty(50000), np.empty(7)
        _core.kmeanspp_update_dense(X, c, closest, None, cum, threads)
        _core.kmeanspp_trials_dense(X, cand, closest, None, pot, threads)
        outs.append((closest, cum, pot))
    for o in outs[1:]:
        for a, b in zip(outs[0], o):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n, d, k, weighted", [(600, 8, 5, False), (600, 8, 5, True), (5000, 17, 40, False),
                                               (3, 2, 3, False), (20000, 32, 100, True), (50, 3, 1, False)])
def test_same_centres_as_sklearn_float64(rng, n, d, k, weighted):
    C = rng.normal(0, 5, size=(12, d))
    X = C[rng.integers(0, 12, n)] + rng.normal(size=(n, d))
    w = rng.uniform(0.5, 2, n) if weighted else np.ones(n)
    a, ia = kmeans_plusplus_dense(X, k, np.random.RandomState(7), w, 2)
    b, ib = kmeans_plusplus(X, k, random_state=np.random.RandomState(7), sample_weight=w)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_array_equal(a, b)


def test_float32_seeding_is_kmeanspp(rng):
    # float32: scikit-learn rounds its norms to float32, we compute in float64, so late picks
    # may differ; the seeding must still pick distinct rows, spread out like scikit-learn's
    C = rng.normal(0, 5, size=(30, 16))
    X = (C[rng.integers(0, 30, 20000)] + rng.normal(size=(20000, 16))).astype(np.float32)
    a, ia = kmeans_plusplus_dense(X, 30, np.random.RandomState(3), np.ones(20000, np.float32), 2)
    b, _ = kmeans_plusplus(X, 30, random_state=np.random.RandomState(3))
    assert len(set(ia.tolist())) == 30
    np.testing.assert_array_equal(a, X[ia])

    def pot(centres):
        D = ((X[:, None, :].astype(np.float64) - centres[None].astype(np.float64)) ** 2).sum(-1)
        return D.min(axis=1).sum()

    assert pot(a) <= 1.2 * pot(b)


def test_kmeans_fit_uses_it_and_matches_sklearn(rng):
    from sklearn.cluster import KMeans as SKKMeans

    C = rng.normal(0, 5, size=(6, 8))
    X = C[rng.integers(0, 6, 3000)] + rng.normal(size=(3000, 8))
    ours = KMeans(6, random_state=11, n_init=3).fit(X)
    ref = SKKMeans(6, random_state=11, n_init=3).fit(X)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-8)
