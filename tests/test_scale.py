"""Scale work: bounded-cost pieces of the discover pipeline (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import silhouette_score

from cohortrec.cluster._auto import cosine_silhouette


@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 120), d=st.integers(1, 6), k=st.integers(2, 8), seed=st.integers(0, 2**31 - 1),
       zero=st.floats(0.0, 0.3))
def test_cosine_silhouette_matches_sklearn(n, d, k, seed, zero):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[rng.random(n) < zero] = 0.0
    lab = rng.integers(0, min(k, n - 1), n)
    if not 2 <= len(np.unique(lab)) <= n - 1:
        return
    assert cosine_silhouette(X, lab) == pytest.approx(silhouette_score(X, lab, metric="cosine"), abs=1e-9)


def test_cosine_silhouette_edge_cases():
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.0, 1.0]])
    assert cosine_silhouette(X, [0, 0, 1, 1, 1]) == pytest.approx(
        silhouette_score(X, [0, 0, 1, 1, 1], metric="cosine"))
    # a singleton cluster scores 0, as in scikit-learn
    assert cosine_silhouette(X, [0, 1, 1, 2, 2]) == pytest.approx(
        silhouette_score(X, [0, 1, 1, 2, 2], metric="cosine"))
    with pytest.raises(ValueError, match="number of labels"):
        cosine_silhouette(X, [0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="one label per row"):
        cosine_silhouette(X, [0, 1])
