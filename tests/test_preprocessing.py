"""Cleaning rules, weighting schemes, normalisation and per-user features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer

from cohortrec import preprocessing as pp
from cohortrec.interactions import Interactions


def test_clean_events_rules():
    df = pd.DataFrame({"user_id": [1, 1, None, 2, 2], "item_id": [1, 1, 2, 3, 4],
                       "quantity": [1, 1, 1, -2, 1], "dwell": [5.0, 5.0, 1.0, -1.0, np.inf]})
    out, rep = pp.clean_events(df)
    touched = rep.set_index("step")["rows_touched"]
    assert touched["missing ids"] == 1 and touched["negative values"] == 1
    assert touched["duplicate events"] == 1 and touched["non-finite side values"] == 1
    assert len(out) == 2 and np.isnan(out["dwell"].iloc[-1])
    with pytest.raises(ValueError, match="negative"):
        pp.clean_events(df, negative="bad")


def test_weighting_schemes(rng):
    X = sp.random(50, 30, density=0.2, format="csr", random_state=1) * 5
    np.testing.assert_array_equal(pp.weight(X, "binary").data, 1)
    np.testing.assert_allclose(pp.weight(X, "log1p").data, np.log1p(sp.csr_matrix(X).data))
    ref = TfidfTransformer(norm=None, sublinear_tf=False).fit(pp.weight(X, "binary"))
    got = pp.weight(X, "tfidf")
    np.testing.assert_allclose(got.data, np.log1p(sp.csr_matrix(X).data) * ref.idf_[got.indices], rtol=1e-6)
    b = pp.weight(X, "bm25")
    assert b.nnz == X.nnz and (b.data > 0).all()
    with pytest.raises(ValueError, match="scheme"):
        pp.weight(X, "nope")
    with pytest.raises(ValueError, match="non-negative"):
        pp.weight(-X, "log1p")


def test_normalize_rows_keeps_zero_rows():
    X = sp.csr_matrix(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(pp.normalize(X).toarray(), [[0.6, 0.8], [0, 0]])
    np.testing.assert_allclose(pp.normalize(np.array([[1.0, 3.0]]), "l1"), [[0.25, 0.75]])


def test_user_features_shop():
    from cohortrec.datasets import make_shop

    X, _ = make_shop(200, 80, 3, seed=0)
    F = pp.user_features(X)
    assert len(F) == X.n_users and F.index.equals(X.user_ids)
    for col in ("n_events", "n_view", "n_purchase", "recency_days", "events_per_day", "mean_dwell",
                "total_spend", "mean_spend", "conversion"):
        assert col in F.columns
    shares = F[[c for c in F.columns if c.startswith("cat_")]].to_numpy()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    M = pp.event_weighted(X)
    assert M.shape == X.shape and M.nnz == X.nnz


def test_user_features_without_events():
    X = Interactions.from_sparse(sp.csr_matrix(np.array([[2.0, 0.0], [0.0, 0.0]])))
    F = pp.user_features(X)
    assert F["mean_value"].tolist() == [2.0, 0.0]
