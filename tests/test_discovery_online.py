"""GroupDiscovery's per-request assignment (assign_items) and online updates (partial_fit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cohortrec.datasets import make_shop
from cohortrec.discovery import GroupDiscovery
from cohortrec.encoders import SVDEncoder
from cohortrec.interactions import Interactions


@pytest.fixture(scope="module")
def shop():
    return make_shop(1500, 300, 4, seed=3, mean_events=25)


@pytest.fixture(scope="module")
def fitted(shop):
    return GroupDiscovery(n_groups=4, random_state=0).fit(shop.interactions)


def one_user(items, item_ids, values=None):
    cols = item_ids.get_indexer(items)
    vals = np.ones(len(cols), np.float32) if values is None else np.asarray(values, np.float32)
    M = sp.csr_matrix((vals, (np.zeros(len(cols), int), cols)), shape=(1, len(item_ids)))
    return Interactions(M, pd.Index(["x"]), item_ids)


def test_assign_items_equals_assign(shop, fitted):
    X = shop.interactions
    rng = np.random.default_rng(0)
    item_ids = X.item_ids
    for _ in range(150):
        k = int(rng.integers(1, 25))
        cols = rng.choice(X.n_items, k, replace=False)
        items = list(item_ids[cols])
        vals = rng.integers(1, 4, size=k).astype(np.float32)
        assert fitted.assign_items(items) == fitted.assign(one_user(items, item_ids))[0]
        assert fitted.assign_items(items, vals) == fitted.assign(one_user(items, item_ids, vals))[0]
    # the training users' own histories
    for u in range(0, X.n_users, 37):
        row = X.matrix[u]
        assert fitted.assign_items(list(item_ids[row.indices]), row.data) == fitted.assign(X.subset_users([u]))[0]


def test_assign_items_edge_cases(fitted, shop):
    ids = shop.interactions.item_ids
    assert fitted.assign_items([]) == -1
    assert fitted.assign_items(["no-such-item"]) == -1
    a = list(ids[[3, 7]])
    # unknown ids ignored, repeated ids add up
    assert fitted.assign_items(a + ["nope"]) == fitted.assign_items(a)
    assert fitted.assign_items([a[0], a[0], a[1]]) == fitted.assign_items(a, [2.0, 1.0])
    with pytest.raises(TypeError, match="item_ids"):
        fitted.assign_items("abc")
    with pytest.raises(ValueError, match="values"):
        fitted.assign_items(a, [1.0])
    with pytest.raises(ValueError, match="values"):
        fitted.assign_items(a, [1.0, np.nan])


def test_svd_transform_row_is_bit_exact():
    rng = np.random.default_rng(1)
    X = sp.random(200, 80, density=0.1, format="csr", dtype=np.float32, random_state=np.random.RandomState(1))
    X.data = (0.5 + 3 * rng.random(X.nnz)).astype(np.float32)
    for w in ("bm25", "tfidf", "binary", "log1p", "none"):
        e = SVDEncoder(8, weighting=w, random_state=0).fit(X)
        for u in range(X.shape[0]):
            r = X[u]
            np.testing.assert_array_equal(e._transform_row(r.indices, r.data), e.transform(r))


def test_partial_fit_new_users_equals_centroid_recompute(shop):
    X = shop.interactions
    n0 = 1200
    base = X.subset_users(np.arange(n0))
    new = X.subset_users(np.arange(n0, X.n_users))
    g = GroupDiscovery(n_groups=4, random_state=0).fit(base)
    expected_labels = g.assign(new)
    Z_new = g.transform(new)
    c_before = g.centroids_.copy()
    g.partial_fit(new)
    assert g.labels_.shape == (X.n_users,)
    np.testing.assert_array_equal(g.labels_[n0:], expected_labels)
    assert list(g.user_ids_) == list(X.user_ids)
    # the maths: centroids = normalised sums of all members' embeddings
    Z = np.vstack([g.embeddings_[:n0], Z_new])
    np.testing.assert_allclose(g.embeddings_, Z)
    for k in range(g.n_groups_):
        s = Z[g.labels_ == k].sum(axis=0)
        np.testing.assert_allclose(g.centroids_[k], s / np.linalg.norm(s), rtol=1e-10, atol=1e-12)
    drift = 1 - np.sum(c_before * g.centroids_, axis=1)
    np.testing.assert_allclose(g.drift_, drift, atol=1e-12)
    rep = g.partial_fit_report_
    assert rep["n_new_users"] == X.n_users - n0 and rep["n_updated_users"] == 0
    assert 0 <= rep["max_drift"] < 0.05  # same population: the centroids barely move
    assert g.interactions_.n_users == X.n_users
    assert (g.interactions_.matrix != X.matrix).nnz == 0
    # a refit on everything finds the same groups on the same population (up to label names)
    from sklearn.metrics import adjusted_rand_score
    full = GroupDiscovery(n_groups=4, random_state=0).fit(X)
    assert adjusted_rand_score(full.labels_, g.labels_) > 0.9


def test_partial_fit_known_users_and_without_data(shop, tmp_path):
    X = shop.interactions
    g = GroupDiscovery(n_groups=4, random_state=0).fit(X)
    # user 5 gets more events: its history grows, it is re-embedded, the sums follow
    extra_items = list(X.item_ids[[1, 2, 3]])
    upd = Interactions(sp.csr_matrix(np.ones((1, 3), np.float32)), pd.Index([X.user_ids[5]]),
                       pd.Index(extra_items))
    g.partial_fit(upd)
    assert g.partial_fit_report_["n_updated_users"] == 1 and g.labels_.shape == (X.n_users,)
    row = g.interactions_.matrix[5].toarray().ravel()
    expect = X.matrix[5].toarray().ravel()
    expect[[1, 2, 3]] += 1
    np.testing.assert_allclose(row, expect)
    for k in range(g.n_groups_):
        s = g.embeddings_[g.labels_ == k].sum(axis=0)
        np.testing.assert_allclose(g.centroids_[k], s / np.linalg.norm(s), rtol=1e-9, atol=1e-12)
    # a model saved without data: new users only, bounded drift
    g.save(tmp_path / "d", include_data=False)
    h = GroupDiscovery.load(tmp_path / "d")
    with pytest.raises(ValueError, match="include_data"):
        h.partial_fit(upd)
    new = Interactions(X.matrix[:50], pd.Index([f"n{i}" for i in range(50)]), X.item_ids)
    before = h.centroids_.copy()
    h.partial_fit(new)
    assert h.labels_.shape == (X.n_users + 50,)
    assert np.all(h.drift_ >= 0) and h.drift_.max() < 0.05
    assert np.allclose(np.linalg.norm(h.centroids_, axis=1), 1.0)
    assert not np.array_equal(before, h.centroids_)
    with pytest.raises(TypeError, match="new_interactions"):
        h.partial_fit("nope")
