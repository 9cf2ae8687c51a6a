"""DBSCAN(metric="cosine") on cosine_topk neighbourhoods == scikit-learn's DBSCAN."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import DBSCAN as SKDBSCAN

from cohortrec.cluster import DBSCAN


@pytest.mark.parametrize("eps,min_samples,k", [(0.3, 3, 2), (0.5, 5, 64), (0.6, 10, 4), (0.2, 1, 8)])
def test_labels_identical_to_sklearn(rng, eps, min_samples, k):
    X = sp.random(300, 25, density=0.15, format="lil", random_state=int(rng.integers(1 << 30)))
    X[5] = 0  # an empty row is noise
    X[7] = X[8]  # duplicates
    X = X.tocsr()
    ours = DBSCAN(eps=eps, min_samples=min_samples, k=k).fit(X)
    ref = SKDBSCAN(eps=eps, min_samples=min_samples, metric="cosine").fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_array_equal(ours.core_sample_indices_, ref.core_sample_indices_)


def test_dense_input_and_weights(rng):
    X = np.abs(rng.normal(size=(120, 4)))
    w = rng.integers(1, 3, 120)
    ours = DBSCAN(eps=0.05, min_samples=6, k=3).fit(X, sample_weight=w)
    ref = SKDBSCAN(eps=0.05, min_samples=6, metric="cosine").fit(X, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)


def test_validation():
    X = np.eye(3)
    with pytest.raises(ValueError, match="metric"):
        DBSCAN(metric="euclidean").fit(X)
    with pytest.raises(ValueError, match="eps"):
        DBSCAN(eps=1.5).fit(X)
    with pytest.raises(ValueError):
        DBSCAN().fit(np.zeros((0, 3)))
