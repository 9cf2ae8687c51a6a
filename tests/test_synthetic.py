"""make_shop: shapes, planted labels, events, side data, determinism, dirty mode."""

from __future__ import annotations

import numpy as np
import pytest

from cohortrec.datasets import make_shop


def test_make_shop_basic():
    d = make_shop(400, 150, 4, seed=3)
    X, y = d
    assert X.shape == (400, 150) and y.shape == (400,)
    assert set(np.unique(y)) == set(range(4))
    assert set(d.events["event"].unique()) == {"view", "cart", "purchase"}
    assert {"title", "description", "categories", "price"} <= set(X.items.columns)
    assert {"age_band", "country", "device"} <= set(X.users.columns)
    assert (np.diff(X.matrix.indptr) > 0).all()
    assert len(d.groups) == 4


def test_make_shop_deterministic_and_dirty():
    a = make_shop(200, 60, 3, seed=1)
    b = make_shop(200, 60, 3, seed=1)
    assert (a.interactions.matrix != b.interactions.matrix).nnz == 0
    np.testing.assert_array_equal(a.labels, b.labels)
    d = make_shop(300, 60, 3, seed=1, dirty=True)
    rep = d.interactions.cleaning_report.set_index("step")["rows_touched"]
    assert rep["missing ids"] > 0 and rep["duplicate events"] > 0
    assert d.interactions.n_users == len(d.labels)


def test_make_shop_groups_are_separable():
    from sklearn.metrics import adjusted_rand_score

    from cohortrec.cluster import KMeans
    from cohortrec.encoders import SVDEncoder

    X, y = make_shop(2000, 400, 4, seed=0, mean_events=40)
    Z = SVDEncoder(16, weighting="bm25", random_state=0).fit_transform(X)
    lab = KMeans(4, spherical=True, n_init=5, random_state=0).fit_predict(Z)
    assert adjusted_rand_score(y, lab) > 0.6


@pytest.mark.parametrize("kw", [{"n_users": 0}, {"noise": 2.0}, {"n_groups": 1.5}])
def test_make_shop_validation(kw):
    args = {"n_users": 10, "n_items": 10, "n_groups": 2, **kw}
    with pytest.raises(ValueError):
        make_shop(**args)
