"""KMeans / MiniBatchKMeans against scikit-learn; choose_n_clusters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans as SKKMeans
from sklearn.cluster import MiniBatchKMeans as SKMiniBatch
from sklearn.metrics import adjusted_rand_score

from cohortrec.cluster import KMeans, MiniBatchKMeans, choose_n_clusters


def _blobs(rng, n=600, d=8, centres=6, dtype=np.float64):
    C = rng.normal(0, 5, size=(centres, d))
    lab = rng.integers(0, centres, n)
    return (C[lab] + rng.normal(size=(n, d))).astype(dtype), lab


@pytest.mark.parametrize("algorithm", ["lloyd", "yinyang", "hamerly"])
def test_same_inertia_as_sklearn_same_init(rng, dtype, algorithm):
    X, _ = _blobs(rng, n=800, d=10, centres=12, dtype=dtype)
    init = X[rng.choice(len(X), 20, replace=False)]
    ours = KMeans(20, init=init, n_init=1, algorithm=algorithm).fit(X)
    ref = SKKMeans(20, init=init, n_init=1).fit(X)
    assert abs(ours.inertia_ - ref.inertia_) <= 1e-4 * ref.inertia_
    assert adjusted_rand_score(ours.labels_, ref.labels_) > 0.99
    assert ours.cluster_centers_.shape == (20, 10) and ours.n_features_in_ == 10
    assert ours.labels_.dtype == np.int64


@pytest.mark.parametrize("spherical", [False, True])
def test_pruned_assignment_is_exact(rng, spherical):
    # k * d >= 16384 and k >= 64: algorithm="elkan" prunes with Elkan's lemma per cluster
    X, _ = _blobs(rng, n=3000, d=256, centres=40, dtype=np.float32)
    init = X[rng.choice(len(X), 64, replace=False)]
    a = KMeans(64, init=init, n_init=1, algorithm="elkan", spherical=spherical).fit(X)
    b = KMeans(64, init=init, n_init=1, algorithm="lloyd", spherical=spherical).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.n_iter_ == b.n_iter_ and a.inertia_ == pytest.approx(b.inertia_, rel=1e-12)
    assert min(a.recomputed_[1:], default=1.0) < 1.0  # the pruned pass ran
    if not spherical:
        ref = SKKMeans(64, init=init, n_init=1).fit(X)
        assert abs(a.inertia_ - ref.inertia_) <= 1e-4 * ref.inertia_


def test_kmeanspp_matches_sklearn_with_weights(rng):
    X, _ = _blobs(rng)
    w = rng.uniform(0.5, 2.0, len(X))
    ours = KMeans(5, random_state=7).fit(X, sample_weight=w)
    ref = SKKMeans(5, random_state=7).fit(X, sample_weight=w)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-8)
    assert ours.n_iter_ == ref.n_iter_


def test_sparse_input_matches_sklearn(rng):
    X = sp.random(300, 40, density=0.1, format="csr", random_state=2)
    init = X[:6].toarray()
    ours = KMeans(6, init=init, n_init=1).fit(X)
    ref = SKKMeans(6, init=init, n_init=1).fit(X)
    assert abs(ours.inertia_ - ref.inertia_) <= 1e-4 * ref.inertia_


def test_methods_and_edge_cases(rng):
    X, _ = _blobs(rng, n=200)
    km = KMeans(4, random_state=0, n_init=3).fit(X)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    assert km.transform(X).shape == (200, 4)
    np.testing.assert_allclose(-km.score(X), km.inertia_, rtol=1e-6)
    np.testing.assert_array_equal(KMeans(4, random_state=0, n_init=3).fit_predict(X), km.labels_)
    one = KMeans(1).fit(X)  # one cluster: the mean
    np.testing.assert_allclose(one.cluster_centers_[0], X.mean(axis=0))
    with pytest.raises(ValueError, match="n_samples"):
        KMeans(300).fit(X)
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(0).fit(X)
    with pytest.raises(ValueError, match="features"):
        km.predict(X[:, :3])
    with pytest.raises(ValueError, match="init"):
        KMeans(4, init=np.zeros((3, X.shape[1]))).fit(X)


def test_duplicates_warn_and_empty_cluster_relocation():
    X = np.repeat(np.eye(3), 10, axis=0)
    with pytest.warns(Warning, match="distinct clusters"):
        KMeans(5, random_state=0).fit(X)
    # an init centre far away starts empty and is relocated, as in scikit-learn
    init = np.array([[1, 0, 0], [0, 1, 0], [50, 50, 50.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = KMeans(3, init=init, n_init=1).fit(X)
        ref = SKKMeans(3, init=init, n_init=1).fit(X)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, atol=1e-9)


def test_spherical_unit_centres(rng):
    X, lab = _blobs(rng, n=300, d=6, centres=3)
    X = np.abs(X)
    km = KMeans(3, spherical=True, random_state=0).fit(X)
    np.testing.assert_allclose(np.linalg.norm(km.cluster_centers_, axis=1), 1.0, rtol=1e-6)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    d = ((Xn - km.cluster_centers_[km.labels_]) ** 2).sum()
    np.testing.assert_allclose(km.inertia_, d, rtol=1e-6)


def test_objective_monotone_in_k(rng):
    X, _ = _blobs(rng)
    inertias = [KMeans(k, random_state=0, n_init=3).fit(X).inertia_ for k in (2, 4, 8)]
    assert inertias[0] > inertias[1] > inertias[2]


def test_minibatch(rng):
    X, lab = _blobs(rng, n=3000, d=5, centres=4)
    mb = MiniBatchKMeans(4, batch_size=256, random_state=0, n_init=3).fit(X)
    ref = SKMiniBatch(4, batch_size=256, random_state=0, n_init=3).fit(X)
    assert mb.inertia_ <= 1.05 * ref.inertia_
    assert adjusted_rand_score(lab, mb.labels_) > 0.9
    pf = MiniBatchKMeans(4, random_state=0, n_init=3)
    for s in range(0, 3000, 500):
        pf.partial_fit(X[s:s + 500])
    assert adjusted_rand_score(lab, pf.predict(X)) > 0.9
    assert pf.n_steps_ == 6


def test_choose_n_clusters(rng):
    X, _ = _blobs(rng, n=600, d=6, centres=4)
    k, curve = choose_n_clusters(X, range(2, 7), random_state=0, spherical=False)
    assert k == 4
    assert list(curve["k"]) == [2, 3, 4, 5, 6] and {"silhouette", "stability"} <= set(curve.columns)
    with pytest.raises(ValueError, match="criterion"):
        choose_n_clusters(X, range(2, 4), criterion="nope")
