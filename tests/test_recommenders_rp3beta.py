"""RP3beta: the common recommender behaviour plus a dense NumPy reference.

The reference builds the random-walk matrix densely, straight from the
definition (Paudel et al. 2016): ``W = P_iu^alpha @ P_ui^alpha``, columns
divided by ``popularity^beta``, diagonal removed, ``k`` largest per row.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cohortrec.recommenders import RecommenderBase, RP3beta, load_model
from cohortrec.recommenders import _rp3beta as rp3mod
from cohortrec.recommenders._rp3beta import rp3beta_weights
from test_recommenders import (
    RecommenderMixin,
    _check_against,
    checkerboard,
    keep_topk_rows,
    random_interactions,
)


def rp3beta_dense(Xd: np.ndarray, k: int, alpha: float, beta: float, normalize: bool) -> np.ndarray:
    """Dense reference of the kept item-item weights."""
    Xd = Xd.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        Pui = np.nan_to_num(Xd / Xd.sum(axis=1, keepdims=True))
        Piu = np.nan_to_num(Xd.T / Xd.T.sum(axis=1, keepdims=True))
    W = (Piu ** alpha) @ (Pui ** alpha)
    pop = (Xd != 0).sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore"):
        W = W * np.where(pop > 0, pop ** -beta, 0.0)[None, :]
    pattern = ((Xd.T != 0).astype(float) @ (Xd != 0).astype(float)) > 0  # reachable in 2 steps
    np.fill_diagonal(pattern, False)
    Wk = keep_topk_rows(W, k, pattern)
    if normalize:
        s = Wk.sum(axis=1, keepdims=True)
        Wk = np.divide(Wk, s, out=np.zeros_like(Wk), where=s > 0)
    return Wk


class TestRP3beta(RecommenderMixin):
    # k above the 24 items of the same parity on the checkerboard, so every item is reachable
    def make(self, **kw):
        return RP3beta(k=kw.pop("k", 30), **kw)


class TestRP3betaNormalized(RecommenderMixin):
    def make(self, **kw):
        return RP3beta(k=kw.pop("k", 30), alpha=0.8, beta=0.3, normalize=True, **kw)


@pytest.mark.parametrize("k,alpha,beta,normalize", [
    (5, 1.0, 0.5, False),
    (12, 0.7, 0.0, False),
    (8, 1.3, 0.8, True),
    (100, 1.0, 0.3, False),   # k above the catalogue: every reachable item kept
])
def test_matches_dense_reference(rng, k, alpha, beta, normalize):
    X = random_interactions(rng, 90, 45, 0.12, continuous=True)
    Xd = X.toarray().astype(np.float64)
    Wk = rp3beta_dense(Xd, k, alpha, beta, normalize)
    model = RP3beta(k=k, alpha=alpha, beta=beta, normalize=normalize).fit(X)
    np.testing.assert_allclose(model.similarity_.toarray(), Wk, rtol=1e-5, atol=1e-9)
    assert (np.diff(model.similarity_.indptr) <= k).all()
    assert model.similarity_.diagonal().sum() == 0
    ref = Xd @ Wk
    reach = ((Xd != 0).astype(float) @ (Wk != 0).astype(float)) > 0
    ref[~reach] = -np.inf
    ref[Xd != 0] = -np.inf
    ids, sc = model.recommend(np.arange(90), X, N=10)
    _check_against(ids, sc, ref, 10)


def test_hand_computed_example():
    # users: 0 -> {0, 1}, 1 -> {1, 2}, 2 -> {1}
    X = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [0, 1, 0]], dtype=np.float32))
    W = rp3beta_weights(X, k=5, alpha=1.0, beta=1.0).toarray()
    # from item 0: walk to user 0 (prob 1), then items 0/1 with 1/2 each; item 1 has 3 users
    # W[0, 1] = 1/2 / 3 ; from item 2 (user 1 only): W[2, 1] = 1/2 / 3
    # from item 1: users 0, 1, 2 with 1/3 each; user 0 -> item 0 (1/2), user 1 -> item 2 (1/2)
    expect = np.array([[0, 1 / 6, 0], [1 / 6, 0, 1 / 6], [0, 1 / 6, 0]])
    np.testing.assert_allclose(W, expect, rtol=1e-6)


def test_fit_blocks_do_not_change_the_result(rng, monkeypatch):
    X = random_interactions(rng, 80, 60, 0.1, continuous=True)
    a = RP3beta(k=7).fit(X).similarity_
    monkeypatch.setattr(rp3mod, "_FIT_BLOCK_ENTRIES", 20)  # 2 item rows per kernel call
    b = RP3beta(k=7).fit(X).similarity_
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-6)


def test_beta_penalises_popular_items(rng):
    X = random_interactions(rng, 200, 40, 0.1)
    pop = np.bincount(X.indices, minlength=40)
    mean_pop = []
    for beta in (0.0, 0.5, 1.0):
        ids, _ = RP3beta(k=40, beta=beta).fit(X).recommend(np.arange(200), X, N=3)
        mean_pop.append(pop[ids[ids >= 0]].mean())
    assert mean_pop[0] > mean_pop[1] > mean_pop[2]


def test_save_load_roundtrip_keeps_weights(rng, tmp_path):
    X = random_interactions(rng)
    m = RP3beta(k=9, alpha=0.9, beta=0.4, normalize=True).fit(X)
    m.save(tmp_path / "rp3")
    loaded = load_model(tmp_path / "rp3.npz")
    assert isinstance(loaded, RP3beta) and isinstance(loaded, RecommenderBase)
    assert loaded.get_params() == m.get_params()
    np.testing.assert_array_equal(loaded.similarity_.toarray(), m.similarity_.toarray())


def test_public_export():
    from cohortrec import recommenders
    assert recommenders.RP3beta is RP3beta
    assert "RP3beta" in recommenders.__all__


@pytest.mark.parametrize("kw,exc,match", [
    ({"k": 0}, ValueError, "k must be"),
    ({"k": 2.5}, TypeError, "k must be"),
    ({"k": True}, TypeError, "k must be"),
    ({"alpha": 0.0}, ValueError, "alpha"),
    ({"alpha": float("nan")}, ValueError, "alpha"),
    ({"alpha": "1"}, TypeError, "alpha"),
    ({"beta": -0.1}, ValueError, "beta"),
    ({"beta": float("inf")}, ValueError, "beta"),
    ({"normalize": "yes"}, TypeError, "normalize"),
])
def test_bad_parameters(rng, kw, exc, match):
    with pytest.raises(exc, match=match):
        RP3beta(**kw).fit(random_interactions(rng))


def test_negative_interactions_rejected():
    X = sp.csr_matrix(np.array([[1.0, -1.0], [1.0, 1.0]], dtype=np.float32))
    with pytest.raises(ValueError, match="non-negative"):
        RP3beta().fit(X)


def test_checkerboard_similarity_stays_in_parity():
    X = checkerboard(20)
    S = RP3beta(k=30).fit(X).similarity_
    r = np.repeat(np.arange(20), np.diff(S.indptr))
    assert S.nnz and np.all(r % 2 == S.indices % 2)
