"""``dense_topn`` (the ranking step of EASE): native float32 kernel vs NumPy and a plain reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cohortrec import _core
from cohortrec.recommenders import EASE
from cohortrec.recommenders._base import dense_topn


def reference(scores: np.ndarray, n: int, exclude, keep) -> tuple[np.ndarray, np.ndarray]:
    u, m = scores.shape
    n = min(n, m)
    E = None if exclude is None else sp.csr_matrix(exclude)
    ids = np.full((u, n), -1, dtype=np.int64)
    out = np.full((u, n), -np.inf, dtype=np.float32)
    for r in range(u):
        banned = set() if E is None else set(E.indices[E.indptr[r]:E.indptr[r + 1]].tolist())
        cand = [j for j in range(m) if np.isfinite(scores[r, j]) and j not in banned
                and (keep is None or keep[j])]
        cand.sort(key=lambda j: (-float(scores[r, j]), j))
        cand = cand[:n]
        ids[r, :len(cand)] = cand
        out[r, :len(cand)] = scores[r, cand]
    return ids, out


@pytest.mark.parametrize("u,m,n", [(1, 1, 1), (30, 7, 3), (30, 7, 7), (30, 7, 50), (25, 3000, 1),
                                   (25, 3000, 40), (25, 3000, 300), (12, 5000, 4999)])
@pytest.mark.parametrize("ties", [False, True])
def test_native_matches_reference(rng, u, m, n, ties, index_dtype):
    scores = (rng.integers(-3, 4, size=(u, m)) if ties else rng.standard_normal((u, m))).astype(np.float32)
    scores[rng.random((u, m)) < 0.02] = -np.inf  # never returned
    E = sp.random(u, m, density=0.3, format="csr", random_state=np.random.RandomState(1))
    E.indices = E.indices.astype(index_dtype)
    keep = rng.random(m) < 0.9
    for exclude, kp in ((None, None), (E, None), (E, keep), (None, keep)):
        want = reference(scores, n, exclude, kp)
        got = dense_topn(scores.copy(), n, exclude, kp)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        # the NumPy path (non-float32 input) ranks the same way
        slow = dense_topn(scores.astype(np.float64), n, exclude, kp)
        np.testing.assert_array_equal(slow[0], want[0])
        np.testing.assert_array_equal(slow[1], want[1])


def test_native_skips_nan_and_inf_and_fully_excluded_rows():
    scores = np.array([[np.nan, 1.0, np.inf, 2.0, -np.inf], [1, 2, 3, 4, 5]], dtype=np.float32)
    E = sp.csr_matrix(np.array([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]))
    ids, sc = dense_topn(scores, 5, E)
    np.testing.assert_array_equal(ids, [[3, 1, -1, -1, -1], [-1] * 5])
    np.testing.assert_array_equal(sc[0, :2], [2.0, 1.0])
    assert np.isneginf(sc[0, 2:]).all() and np.isneginf(sc[1]).all()


def test_same_for_any_thread_count(rng):
    scores = rng.integers(0, 50, size=(200, 1500)).astype(np.float32)
    E = sp.random(200, 1500, density=0.1, format="csr", random_state=np.random.RandomState(4))
    a = dense_topn(scores, 120, E, n_threads=1)
    b = dense_topn(scores, 120, E, n_threads=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_binding_rejects_bad_shapes():
    s = np.zeros((2, 3), np.float32)
    ids, out = np.full((2, 1), -1, np.int64), np.full((2, 1), -np.inf, np.float32)
    with pytest.raises(ValueError):
        _core.dense_topn(s, np.ones(4, bool), None, None, ids, out, 1)
    with pytest.raises(ValueError):
        _core.dense_topn(s, None, np.array([0, 1], np.int64), np.array([0], np.int32), ids, out, 1)
    with pytest.raises(IndexError):
        _core.dense_topn(s, None, np.array([0, 1, 1], np.int64), np.array([3], np.int32), ids, out, 1)


def test_ease_recommend_unchanged_by_the_kernel(rng):
    """EASE's lists equal the NumPy ranking of its own float32 scores."""
    X = sp.random(80, 40, density=0.15, format="csr", dtype=np.float32,
                  random_state=np.random.RandomState(3))
    X.data[:] = 1
    model = EASE(l2=50.0).fit(X)
    users = np.arange(80)
    ids, sc = model.recommend(users, X, N=15, filter_items=[0, 5])
    full = np.asarray(X @ model.item_weights_, dtype=np.float32) if model.item_weights_.shape[0] == 40 else None
    if full is None:
        pytest.skip("EASE with an item subset")
    full[full == 0] = -np.inf  # as EASE: no connection to the user's items
    keep = np.ones(40, bool)
    keep[[0, 5]] = False
    want_ids, want_sc = dense_topn(full.astype(np.float64), 15, X, keep)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(sc, want_sc)
