"""Tests of the recommenders: one mixin run against every model, plus references.

The mixin (like implicit's ``RecommenderBaseTestMixin``) fits each model on a
checkerboard whose right answer is known: even users like even items, odd
users odd items, and the diagonal is withheld, so user ``u``'s best new item
is item ``u``. Reference tests compare UserKNN / ItemKNN / EASE / Popularity
scores with dense NumPy computations on small data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import cohortrec
from cohortrec import evaluation
from cohortrec import recommenders as recs
from cohortrec.recommenders import (
    EASE,
    GroupRecommender,
    ItemKNN,
    NotFittedError,
    Popularity,
    RecommenderBase,
    RecommenderWarning,
    UserKNN,
    load_model,
)
from cohortrec.recommenders._ease import prefers_dual

CUDA = "cuda" in cohortrec.devices()


def checkerboard(n: int = 50) -> sp.csr_matrix:
    """Even users liked even items, odd users odd items; diagonal withheld."""
    M = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        M[i, i % 2::2] = 1.0
    np.fill_diagonal(M, 0.0)
    return sp.csr_matrix(M)


def random_interactions(rng: np.random.Generator, n_users: int = 60, n_items: int = 40,
                        density: float = 0.15, continuous: bool = False) -> sp.csr_matrix:
    """Random counts 1..3 (many ties), or continuous values (no ties, for references)."""
    X = sp.random(n_users, n_items, density=density, format="csr", dtype=np.float32,
                  random_state=np.random.RandomState(rng.integers(2**31)))
    if continuous:
        X.data = (0.5 + rng.random(X.nnz)).astype(np.float32)
    else:
        X.data = (1.0 + rng.integers(0, 3, size=X.nnz)).astype(np.float32)
    return X


def dense_topn(scores: np.ndarray, n: int):
    """Reference top-n: score descending, ties by smaller id, -inf excluded."""
    ids = np.lexsort((np.arange(scores.size), -scores))[:n]
    ids = ids[np.isfinite(scores[ids])]
    return ids, scores[ids]


def cosine_dense(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(A, axis=1)
    nb = np.linalg.norm(B, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        S = (A @ B.T) / np.outer(na, nb)
    return np.nan_to_num(S)


def keep_topk_rows(S: np.ndarray, k: int, pattern: np.ndarray) -> np.ndarray:
    """Keep the k largest entries of each row among ``pattern`` (ties: smaller id)."""
    out = np.zeros_like(S)
    for i in range(S.shape[0]):
        cand = np.flatnonzero(pattern[i])
        order = cand[np.lexsort((cand, -S[i, cand]))][:k]
        out[i, order] = S[i, order]
    return out


# ---------------------------------------------------------------------------
# the mixin
# ---------------------------------------------------------------------------
class RecommenderMixin:
    """Common behaviour every model must show. Subclasses define ``make``."""

    knows_checkerboard = True

    def make(self, **kwargs) -> RecommenderBase:
        raise NotImplementedError

    @pytest.fixture
    def fitted(self):
        X = checkerboard(50)
        return self.make().fit(X), X

    # -- right answers ------------------------------------------------------
    def test_checkerboard_single(self, fitted):
        if not self.knows_checkerboard:
            pytest.skip("non-personalised model")
        model, X = fitted
        for u in range(50):
            ids, scores = model.recommend(u, X[u], N=1)
            assert ids.shape == (1,) and scores.shape == (1,)
            assert ids[0] == u

    def test_checkerboard_batch(self, fitted):
        if not self.knows_checkerboard:
            pytest.skip("non-personalised model")
        model, X = fitted
        ids, scores = model.recommend(np.arange(50), X, N=3)
        assert ids.shape == (50, 3) and scores.shape == (50, 3)
        np.testing.assert_array_equal(ids[:, 0], np.arange(50))
        fin = np.isfinite(scores)
        assert np.all(scores[:, :-1][fin[:, 1:]] >= scores[:, 1:][fin[:, 1:]])

    def test_similar_items_same_parity(self, fitted):
        model, _ = fitted
        for itemid in range(0, 50, 7):
            ids, _scores = model.similar_items(itemid, N=10)
            assert len(ids) == 10
            assert np.all(ids % 2 == itemid % 2)
        ids, _ = model.similar_items(np.arange(6), N=5)
        assert ids.shape == (6, 5)
        assert np.all(ids % 2 == (np.arange(6) % 2)[:, None])

    def test_similar_users_same_parity(self, fitted):
        model, _ = fitted
        ids, _scores = model.similar_users(3, N=10)
        assert ids[0] == 3 and np.all(ids % 2 == 1)
        ids, _ = model.similar_users(3, N=10, filter_users=[3])
        assert 3 not in ids
        ids, _ = model.similar_users(3, N=10, users=[1, 2, 5])
        assert set(ids) <= {1, 5}

    # -- call conventions ---------------------------------------------------
    def test_batch_equals_single(self, rng):
        X = random_interactions(rng)
        model = self.make().fit(X)
        users = np.array([0, 5, 7, 59, 5])
        b_ids, b_sc = model.recommend(users, X[users], N=7)
        full_ids, _ = model.recommend(users, X, N=7)  # the whole matrix works too
        np.testing.assert_array_equal(b_ids, full_ids)
        for r, u in enumerate(users):
            ids, sc = model.recommend(int(u), X[u], N=7)
            valid = b_ids[r] >= 0
            np.testing.assert_array_equal(ids, b_ids[r][valid])
            np.testing.assert_allclose(sc, b_sc[r][valid], rtol=1e-6)
            ids2, _ = model.recommend(int(u), X, N=7)
            np.testing.assert_array_equal(ids, ids2)

    def test_batch_size_does_not_matter(self, rng):
        X = random_interactions(rng)
        a = self.make().fit(X).recommend(np.arange(60), X, N=5)
        b = self.make(batch_size=7).fit(X).recommend(np.arange(60), X, N=5)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)

    def test_output_types(self, rng):
        X = random_interactions(rng)
        model = self.make().fit(X)
        ids, sc = model.recommend(np.arange(3), X[:3], N=4)
        assert ids.dtype == np.int32 and sc.dtype == np.float32
        ids, sc = model.recommend(np.int64(2), X[2], N=4)
        assert ids.ndim == 1 and sc.ndim == 1

    def test_filter_already_liked(self, rng):
        X = random_interactions(rng)
        model = self.make().fit(X)
        ids, _ = model.recommend(np.arange(60), X, N=10)
        for u in range(60):
            assert not set(ids[u][ids[u] >= 0]) & set(X[u].indices)
        ids, _ = model.recommend(np.arange(60), X, N=40, filter_already_liked_items=False)
        liked_returned = sum(len(set(ids[u]) & set(X[u].indices)) for u in range(60))
        if self.knows_checkerboard or isinstance(model, Popularity):
            assert liked_returned > 0

    def test_filter_items(self, rng):
        X = random_interactions(rng)
        model = self.make().fit(X)
        banned = np.array([0, 3, 5, 7, 11])
        ids, _ = model.recommend(np.arange(60), X, N=40, filter_items=banned)
        assert not np.isin(ids, banned).any()
        ids1, _ = model.recommend(4, X, N=40, filter_items=banned.tolist())
        assert not np.isin(ids1, banned).any()
        # the other items keep their order
        all_ids, _ = model.recommend(4, X, N=40)
        np.testing.assert_array_equal(ids1, all_ids[~np.isin(all_ids, banned)][:len(ids1)])

    def test_items_subset(self, rng):
        X = random_interactions(rng)
        model = self.make().fit(X)
        subset = np.array([1, 2, 4, 8, 16, 32, 33])
        ids, _sc = model.recommend(np.arange(60), X, N=10, items=subset)
        assert ids.shape == (60, len(subset))  # width min(N, len(items))
        valid = ids >= 0
        assert np.isin(ids[valid], subset).all()
        full, _full_sc = model.recommend(np.arange(60), X, N=40)
        for u in range(60):  # same order as the full ranking restricted to the subset
            expect = full[u][np.isin(full[u], subset)]
            np.testing.assert_array_equal(ids[u][valid[u]], expect[:valid[u].sum()])

    def test_items_and_filter_items_exclusive(self, fitted):
        model, X = fitted
        with pytest.raises(ValueError, match="cannot both be set"):
            model.recommend(0, X, items=[1, 2], filter_items=[3])

    def test_N_larger_than_items(self, fitted):
        model, X = fitted
        ids, sc = model.recommend(np.arange(50), X, N=1000)
        assert ids.shape == (50, 50)
        for u in range(50):
            v = ids[u][ids[u] >= 0]
            assert len(np.unique(v)) == len(v)
            assert np.all(np.isneginf(sc[u][ids[u] < 0]))
        one, _ = model.recommend(0, X, N=1000)
        assert len(one) <= 50 and (one >= 0).all()
        ids, sc = model.recommend(np.arange(5), X[:5], N=0)
        assert ids.shape == (5, 0)

    def test_user_with_no_items(self, rng):
        X = random_interactions(rng).tolil()
        X[3, :] = 0
        X = X.tocsr()
        model = self.make().fit(X)
        ids, sc = model.recommend(3, X, N=5)
        assert len(ids) == len(sc) <= 5
        ids, _ = model.recommend(np.array([3, 4]), X, N=5)
        assert ids.shape == (2, 5)
        empty = sp.csr_matrix((1, X.shape[1]), dtype=np.float32)
        ids, _ = model.recommend(np.array([10**6]), empty, N=5, recalculate_user=True)
        assert ids.shape == (1, 5)

    def test_empty_matrices(self):
        for shape in [(4, 6), (4, 0), (0, 6)]:
            X = sp.csr_matrix(shape, dtype=np.float32)
            model = self.make().fit(X)
            assert (model.n_users_, model.n_items_) == shape
            if shape[0]:
                ids, _sc = model.recommend(np.arange(shape[0]), X, N=3)
                assert ids.shape == (shape[0], min(3, shape[1]))
                assert (ids == -1).all()
                assert len(model.recommend(0, X, N=3)[0]) == 0
            else:
                with pytest.raises(IndexError):
                    model.recommend(0, X)

    def test_recalculate_user_new_users(self, rng):
        X = random_interactions(rng)
        model = self.make().fit(X[:50])
        new = X[50:]
        ids, _sc = model.recommend(np.arange(50, 60), new, N=5, recalculate_user=True)
        assert ids.shape == (10, 5)
        for r in range(10):
            assert not set(ids[r][ids[r] >= 0]) & set(new[r].indices)
        with pytest.raises(IndexError, match="outside the valid range"):
            model.recommend(55, new[5], N=5)
        with pytest.raises(ValueError, match="needs user_items"):
            model.recommend(55, None, recalculate_user=True)

    def test_recalculate_user_known_users(self, rng):
        X = random_interactions(rng)
        model = self.make().fit(X)
        users = np.arange(0, 60, 3)
        a_ids, a_sc = model.recommend(users, X[users], N=6)
        b_ids, b_sc = model.recommend(users, X[users], N=6, recalculate_user=True)
        np.testing.assert_array_equal(a_ids, b_ids)
        np.testing.assert_allclose(a_sc, b_sc, rtol=1e-5)

    def test_user_items_none_uses_training_rows(self, rng):
        X = random_interactions(rng)
        model = self.make().fit(X)
        a = model.recommend(np.arange(10), None, N=5)
        b = model.recommend(np.arange(10), X[:10], N=5)
        np.testing.assert_array_equal(a[0], b[0])

    # -- validation -----------------------------------------------------------
    def test_not_fitted(self):
        with pytest.raises(NotFittedError, match="fit"):
            self.make().recommend(0, sp.csr_matrix((1, 3)))

    def test_fit_converts_with_warning(self, rng):
        X = random_interactions(rng)
        ref = self.make().fit(X).recommend(np.arange(60), X, N=5)
        for other in (X.tocoo(), X.tocsc(), X.toarray()):
            with pytest.warns(RecommenderWarning, match="CSR"):
                model = self.make().fit(other)
            got = model.recommend(np.arange(60), X, N=5)
            np.testing.assert_array_equal(ref[0], got[0])
        with pytest.warns(RecommenderWarning, match="CSR"):
            got = self.make().fit(X).recommend(np.arange(60), X.tocoo(), N=5)
        np.testing.assert_array_equal(ref[0], got[0])

    def test_fit_errors(self):
        with pytest.raises(TypeError, match="user_items"):
            self.make().fit("not a matrix")
        with pytest.raises(ValueError, match="2-D"):
            self.make().fit(np.ones(5))
        X = sp.csr_matrix(np.array([[1.0, np.nan]]))
        with pytest.raises(ValueError, match="NaN"):
            self.make().fit(X)

    def test_recommend_errors(self, fitted):
        model, X = fitted
        with pytest.raises(IndexError, match="user id 50, outside the valid range"):
            model.recommend(50, X)
        with pytest.raises(IndexError, match="-1"):
            model.recommend(np.array([0, -1]), X[:2])
        with pytest.raises(TypeError, match="integer"):
            model.recommend(1.5, X)
        with pytest.raises(ValueError, match="50 columns"):
            model.recommend(0, sp.csr_matrix((1, 7)))
        with pytest.raises(ValueError, match="one row per userid"):
            model.recommend(np.arange(3), X[:5])
        with pytest.raises(ValueError, match="N must be"):
            model.recommend(0, X, N=-1)
        with pytest.raises(TypeError, match="N must be"):
            model.recommend(0, X, N=2.0)
        with pytest.raises(IndexError, match="item id 99"):
            model.recommend(0, X, filter_items=[99])
        with pytest.raises(IndexError):
            model.similar_items(50)
        with pytest.raises(IndexError):
            model.similar_users(-2)

    def test_memoryview_userids(self, fitted):
        model, X = fitted  # implicit's ranking_metrics_at_k passes memoryviews
        users = np.arange(10, dtype=np.int32)
        ids, _ = model.recommend(memoryview(users), X[users], N=2)
        assert ids.shape == (10, 2)

    # -- persistence ----------------------------------------------------------
    def test_save_load(self, rng, tmp_path):
        X = random_interactions(rng)
        model = self.make().fit(X)
        path = tmp_path / "model"
        model.save(str(path))
        assert (tmp_path / "model.npz").exists()
        with np.load(tmp_path / "model.npz", allow_pickle=False) as data:  # no pickle inside
            assert "__meta__" in data
        for loaded in (type(model).load(str(path)), load_model(tmp_path / "model.npz"),
                       RecommenderBase.load(str(tmp_path / "model.npz"))):
            assert type(loaded) is type(model)
            assert loaded.get_params() == model.get_params()
            a = model.recommend(np.arange(60), X, N=8)
            b = loaded.recommend(np.arange(60), X, N=8)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
        other = Popularity if not isinstance(model, Popularity) else UserKNN
        with pytest.raises(TypeError, match="not a"):
            other.load(str(path))

    def test_save_unfitted_raises(self, tmp_path):
        with pytest.raises(NotFittedError):
            self.make().save(str(tmp_path / "x"))

    # -- devices -------------------------------------------------------------
    def test_device_cpu(self, rng):
        X = random_interactions(rng)
        a = self.make(device="cpu", n_threads=1).fit(X).recommend(np.arange(60), X, N=5)
        b = self.make(device="auto", n_threads=2).fit(X).recommend(np.arange(60), X, N=5)
        np.testing.assert_array_equal(a[0], b[0])

    @pytest.mark.skipif(CUDA, reason="CUDA is available here")
    def test_device_cuda_unavailable(self, rng):
        X = random_interactions(rng)
        with pytest.raises(cohortrec.DeviceUnavailableError):  # at fit or at recommend
            self.make(device="cuda").fit(X).recommend(np.arange(3), X[:3])

    def test_bad_device(self, rng):
        with pytest.raises(ValueError, match="device"):
            self.make(device="tpu").fit(random_interactions(rng))

    # -- implicit interoperability -----------------------------------------
    def test_implicit_ranking_metrics_accepts_model(self, rng):
        iev = pytest.importorskip("implicit.evaluation")
        X = random_interactions(rng, 200, 50, 0.1)
        train, test = evaluation.random_holdout(X, 0.3, random_state=1)
        model = self.make().fit(train)
        ours = evaluation.evaluate(model, train, test, k=5).set_index("metric")["value"]
        theirs = iev.ranking_metrics_at_k(model, train, test, K=5, show_progress=False)
        assert ours["ndcg"] == pytest.approx(theirs["ndcg"], rel=1e-9)
        assert ours["map"] == pytest.approx(theirs["map"], rel=1e-9)


class TestPopularity(RecommenderMixin):
    knows_checkerboard = False

    def make(self, **kw):
        return Popularity(**kw)


class TestUserKNN(RecommenderMixin):
    def make(self, **kw):
        return UserKNN(k=kw.pop("k", 20), **kw)


class TestItemKNN(RecommenderMixin):
    # k above the 24 equally similar items of the checkerboard, so every item is reachable
    def make(self, **kw):
        return ItemKNN(k=kw.pop("k", 30), **kw)


class TestItemKNNBM25(RecommenderMixin):
    def make(self, **kw):
        return ItemKNN(k=kw.pop("k", 30), similarity="bm25", **kw)


class TestEASE(RecommenderMixin):
    def make(self, **kw):
        return EASE(l2=kw.pop("l2", 10.0), **kw)


class TestEASEDual(RecommenderMixin):
    def make(self, **kw):
        return EASE(l2=kw.pop("l2", 10.0), solver="dual", **kw)


class TestEASEDualPopularityPenalty(RecommenderMixin):
    def make(self, **kw):
        return EASE(l2=kw.pop("l2", 10.0), dropout=0.5, beta=0.3, solver="dual", **kw)


class TestEASEPopularityPenalty(RecommenderMixin):
    def make(self, **kw):
        return EASE(l2=kw.pop("l2", 10.0), dropout=0.5, beta=0.3, **kw)


class TestGroupRecommender(RecommenderMixin):
    def make(self, **kw):
        kw.setdefault("n_groups", 3)
        kw.setdefault("k", 20)
        kw.setdefault("random_state", 0)
        return GroupRecommender(**kw)


# ---------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------
def _check_against(ids, sc, ref_scores, n, rtol=1e-4):
    """Compare a batch of results with dense reference scores (ties allowed)."""
    for u in range(ids.shape[0]):
        r_ids, r_sc = dense_topn(ref_scores[u], n)
        valid = ids[u] >= 0
        assert valid.sum() == len(r_ids)
        np.testing.assert_allclose(sc[u][valid], r_sc, rtol=rtol, atol=1e-6)
        # ids must carry the reference score (equal scores may swap)
        np.testing.assert_allclose(ref_scores[u][ids[u][valid]], r_sc, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("k,power", [(5, 1.0), (15, 2.0), (200, 1.0)])
def test_userknn_matches_dense(rng, k, power):
    X = random_interactions(rng, 80, 50, 0.12, continuous=True)
    Xd = X.toarray().astype(np.float64)
    S = cosine_dense(Xd, Xd)
    pattern = (Xd > 0).astype(float) @ (Xd > 0).T.astype(float) > 0
    np.fill_diagonal(pattern, False)
    Sk = keep_topk_rows(S, k, pattern) ** power
    ref = Sk @ Xd
    reach = ((Sk != 0).astype(float) @ (Xd != 0).astype(float)) > 0
    ref[~reach] = -np.inf
    ref[Xd != 0] = -np.inf
    model = UserKNN(k=k, power=power).fit(X)
    ids, sc = model.recommend(np.arange(80), X, N=10)
    _check_against(ids, sc, ref, 10)
    assert model.n_similarities_ == 80 * 79


@pytest.mark.parametrize("similarity", ["cosine", "bm25"])
def test_itemknn_matches_dense(rng, similarity):
    X = random_interactions(rng, 70, 40, 0.15, continuous=True)
    Xd = X.toarray().astype(np.float64)
    V = Xd.T
    if similarity == "bm25":
        from cohortrec.recommenders._knn import bm25_weight
        V = bm25_weight(sp.csr_matrix(Xd.T), 100.0, 0.8).toarray().astype(np.float64)
    S = cosine_dense(V, V)
    pattern = (V != 0).astype(float) @ (V != 0).T.astype(float) > 0
    np.fill_diagonal(pattern, False)
    Sk = keep_topk_rows(S, 8, pattern)
    ref = Xd @ Sk
    reach = ((Xd != 0).astype(float) @ (Sk != 0).astype(float)) > 0
    ref[~reach] = -np.inf
    ref[Xd != 0] = -np.inf
    model = ItemKNN(k=8, similarity=similarity).fit(X)
    ids, sc = model.recommend(np.arange(70), X, N=10)
    _check_against(ids, sc, ref, 10)


def test_bm25_matches_implicit(rng):
    nn = pytest.importorskip("implicit.nearest_neighbours")
    from cohortrec.recommenders._knn import bm25_weight
    X = random_interactions(rng, 30, 20, 0.3).T.tocsr()
    ours = bm25_weight(X, 50.0, 0.7).toarray()
    theirs = nn.bm25_weight(X.astype(np.float64), K1=50.0, B=0.7).toarray()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


@pytest.mark.parametrize("shape", [(90, 30), (25, 70)], ids=["tall", "wide"])
@pytest.mark.parametrize("solver", ["primal", "dual", "auto"])
@pytest.mark.parametrize("l2,dropout,beta", [(1.0, 0.0, 0.0), (25.0, 0.0, 0.0), (5.0, 0.5, 0.0),
                                             (5.0, 0.5, 0.3), (25.0, 0.0, 1.0)])
def test_ease_matches_closed_form(rng, l2, dropout, beta, solver, shape):
    n, m = shape
    X = random_interactions(rng, n, m, 0.2, continuous=True)
    X = X[:, np.flatnonzero(X.getnnz(axis=0))].tocsr()  # every item kept (min_item_users=1)
    m = X.shape[1]
    Xd = X.toarray().astype(np.float64)
    G = Xd.T @ Xd
    Lam = l2 * np.eye(m) + dropout / (1 - dropout) * np.diag(np.diag(G))
    P = np.linalg.inv(G + Lam)
    B = np.eye(m) - P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    pop = np.maximum((Xd != 0).sum(axis=0), 1)
    model = EASE(l2=l2, dropout=dropout, beta=beta, solver=solver).fit(X)
    dual = solver == "dual" or (solver == "auto" and prefers_dual(n, m, X.nnz))
    np.testing.assert_allclose(model.gram_inverse_diag_, np.diag(P), rtol=1e-6)
    if dual:
        assert model.item_weights_ is None and model.dual_gram_inverse_.shape == (n, n)
    else:
        # beta: every item's score divided by its number of users ** beta
        np.testing.assert_allclose(model.item_weights_, B / pop[None, :] ** beta, rtol=1e-4, atol=1e-6)
        assert model.dual_gram_inverse_ is None
    ref = (Xd @ B) / pop[None, :] ** beta
    ref[ref == 0] = -np.inf  # no connection to the user's items (e.g. a user without items)
    ref[Xd != 0] = -np.inf
    # the dual form with more users than items (which "auto" never picks) sums over many users: the
    # float32 rounding of M grows with its condition number (l2 = 1 here; measured up to 1.4e-4)
    rtol = 1e-3 if dual and n > m else 1e-4
    ids, sc = model.recommend(np.arange(n), X, N=10)
    _check_against(ids, sc, ref, 10, rtol)
    # the items a user holds, scored too (their self term B_jj = 0 in both forms)
    full = (Xd @ B) / pop[None, :] ** beta
    full[full == 0] = -np.inf
    ids, sc = model.recommend(np.arange(n), X, N=10, filter_already_liked_items=False)
    _check_against(ids, sc, full, 10, rtol)
    # the defining property: B solves the constrained ridge problem
    grad = -Xd.T @ (Xd - Xd @ B) + Lam @ B
    off = ~np.eye(m, dtype=bool)
    np.testing.assert_allclose(grad[off], 0.0, atol=1e-6 * np.abs(Xd.T @ Xd).max())


def test_ease_dual_keeps_disconnected_items_out(rng):
    # two blocks of users and items with nothing in common: the exact zeros of B (an item unreachable from
    # the user's items is not a candidate) survive the dual form, whose M is block-diagonal too
    A = random_interactions(rng, 10, 30, 0.3, continuous=True)
    X = sp.block_diag([A, A[:, :20]], format="csr", dtype=np.float32)
    X = sp.csr_matrix(sp.hstack([X, sp.csr_matrix((20, 3), dtype=np.float32)]))  # and items without users
    primal = EASE(l2=2.0, min_item_users=0, solver="primal").fit(X)
    dual = EASE(l2=2.0, min_item_users=0, solver="dual").fit(X)
    for u in range(20):
        for kw in ({}, {"filter_already_liked_items": False}):
            p_ids, p_sc = primal.recommend(u, N=60, **kw)
            d_ids, d_sc = dual.recommend(u, N=60, **kw)
            np.testing.assert_array_equal(np.sort(p_ids), np.sort(d_ids))
            block = np.arange(30) if u < 10 else np.arange(30, 50)
            assert np.isin(d_ids, block).all()
            np.testing.assert_allclose(np.sort(d_sc), np.sort(p_sc), rtol=1e-4, atol=1e-6)


def test_ease_large_inverse_runs_on_one_blas_thread(rng, monkeypatch):
    # OpenBLAS's threaded dpotrf crashes the process on large orders with two threads (see
    # SAFE_THREADED_CHOLESKY): above the bound the factorisation must run on one BLAS thread, with the same result
    from threadpoolctl import threadpool_info, threadpool_limits

    from cohortrec.recommenders import _ease

    real, seen = _ease.lapack, []

    def blas_threads():
        return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)

    class Spy:  # the LAPACK module, recording the BLAS thread count each factorisation runs with
        def __getattr__(self, name):
            return getattr(real, name)

        def dpotrf(self, *a, **kw):
            seen.append(blas_threads())
            return real.dpotrf(*a, **kw)

    X = random_interactions(rng, 60, 25, 0.2, continuous=True)
    ref = EASE(l2=5.0, solver="primal").fit(X)
    monkeypatch.setattr(_ease, "lapack", Spy())
    with threadpool_limits(limits=2, user_api="blas"):  # two threads outside, as on the 2-core machines
        for bound, threads in ((10, 1), (10**6, min(2, blas_threads()))):
            monkeypatch.setattr(_ease, "SAFE_THREADED_CHOLESKY", bound)
            for solver in ("primal", "dual"):
                model = EASE(l2=5.0, solver=solver).fit(X)
                assert seen[-1] == threads
                np.testing.assert_allclose(model.gram_inverse_diag_, ref.gram_inverse_diag_, rtol=1e-9)
    np.testing.assert_allclose(EASE(l2=5.0, solver="primal").fit(X).item_weights_, ref.item_weights_)


def test_ease_auto_solver_compares_the_cost_of_a_request():
    # few users, many items (ml-latest-small's shape): the dual form; Last.fm's (more users, fewer items
    # kept): the primal; a catalogue whose Gram matrix would not fit: the dual even if a request costs more
    assert prefers_dual(610, 6298, 48_580)
    assert not prefers_dual(1877, 4614, 74_000)
    assert not prefers_dual(100_000, 20_000, 4_000_000)
    assert prefers_dual(30_000, 200_000, 600_000)
    assert not prefers_dual(0, 10, 0) and not prefers_dual(10, 0, 0)


def test_ease_solver_rejects_unknown(rng):
    with pytest.raises(ValueError, match="solver"):
        EASE(solver="qr").fit(random_interactions(rng))


def test_ease_dual_partial_fit_equals_refit(rng):
    X = random_interactions(rng, 40, 90, 0.1, continuous=True)
    model = EASE(l2=3.0, beta=0.2, solver="dual").fit(X[:30])
    assert model.item_weights_ is None
    model.partial_fit_users(np.arange(30, 40), X[30:])
    ref = EASE(l2=3.0, beta=0.2, solver="dual").fit(X)
    for u in range(40):
        a, b = model.recommend(u, N=10), ref.recommend(u, N=10)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_ease_min_item_users(rng):
    X = random_interactions(rng, 90, 30, 0.2, continuous=True).tolil()
    X[:, 5] = 0
    X[1:, 7] = 0  # item 7 has one user
    X = X.tocsr()
    model = EASE(l2=5.0, min_item_users=2).fit(X)
    kept = np.setdiff1d(np.arange(30), [5, 7])
    np.testing.assert_array_equal(model.items_, kept)
    ref = EASE(l2=5.0).fit(X[:, kept])
    np.testing.assert_allclose(model.item_weights_, ref.item_weights_, rtol=1e-5, atol=1e-7)
    ids, _sc = model.recommend(np.arange(90), X, N=5)
    r_ids, _r_sc = ref.recommend(np.arange(90), X[:, kept], N=5)
    np.testing.assert_array_equal(ids, np.where(r_ids >= 0, kept[r_ids], -1))
    assert not np.isin(ids, [5, 7]).any()


def test_ease_bad_l2(rng):
    with pytest.raises(ValueError, match="l2"):
        EASE(l2=0.0).fit(random_interactions(rng))
    with pytest.raises(ValueError, match="dropout"):
        EASE(dropout=1.0).fit(random_interactions(rng))
    with pytest.raises(ValueError, match="beta"):
        EASE(beta=-0.5).fit(random_interactions(rng))
    with pytest.raises(ValueError, match="beta"):
        EASE(beta=float("nan")).fit(random_interactions(rng))
    with pytest.raises(TypeError, match="beta"):
        EASE(beta="0.2").fit(random_interactions(rng))


def test_ease_beta_penalises_popular_items(rng):
    X = random_interactions(rng, 200, 40, 0.15)
    pop = np.bincount(X.indices, minlength=40)
    mean_pop = []
    for beta in (0.0, 0.5, 1.0):
        ids, _ = EASE(l2=10.0, beta=beta).fit(X).recommend(np.arange(200), X, N=3)
        mean_pop.append(pop[ids[ids >= 0]].mean())
    assert mean_pop[0] > mean_pop[1] > mean_pop[2]


def test_popularity_matches_counts(rng):
    X = random_interactions(rng, 100, 30, 0.2)
    Xd = X.toarray()
    for weighting, pop in (("users", (Xd != 0).sum(0)), ("sum", Xd.sum(0))):
        model = Popularity(weighting=weighting).fit(X)
        np.testing.assert_allclose(model.item_popularity_, pop)
        ref = np.tile(pop.astype(np.float64), (100, 1))
        ref[:, pop == 0] = -np.inf
        ref[Xd != 0] = -np.inf
        ids, sc = model.recommend(np.arange(100), X, N=7)
        _check_against(ids, sc, ref, 7)
    with pytest.raises(ValueError, match="weighting"):
        Popularity(weighting="x").fit(X)


def test_similar_users_includes_self_and_scores(rng):
    X = random_interactions(rng)
    model = UserKNN().fit(X)
    ids, sc = model.similar_users(np.arange(60), N=5)
    Xd = X.toarray().astype(np.float64)
    S = cosine_dense(Xd, Xd)
    for u in range(60):
        if X[u].nnz:
            assert ids[u, 0] == u or np.isclose(S[u, ids[u, 0]], 1.0)
            np.testing.assert_allclose(sc[u][ids[u] >= 0], S[u, ids[u][ids[u] >= 0]], rtol=1e-5)


@pytest.mark.parametrize("similarity", ["cosine", "bm25"])
def test_similar_items_recalculate(rng, similarity):
    X = random_interactions(rng, continuous=True)
    model = ItemKNN(similarity=similarity).fit(X)
    item_users = X.T.tocsr()[[3, 4]]
    a = model.similar_items(np.array([3, 4]), N=5)
    b = model.similar_items(np.array([3, 4]), N=5, recalculate_item=True, item_users=item_users)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)
    with pytest.raises(ValueError, match="item_users"):
        model.similar_items(3, recalculate_item=True)


def test_params_and_repr():
    m = UserKNN(k=7, power=2.0)
    assert m.get_params()["k"] == 7
    assert "UserKNN(k=7" in repr(m)


def test_fit_returns_self_and_refits(rng):
    X = random_interactions(rng)
    m = ItemKNN()
    assert m.fit(X) is m
    m.fit(X[:, :20])
    assert m.n_items_ == 20


def test_public_exports():
    for name in ("Popularity", "UserKNN", "ItemKNN", "EASE", "RP3beta", "GroupRecommender",
                 "RecommenderBase", "load_model"):
        assert hasattr(recs, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        UserKNN().fit(checkerboard(10))  # a canonical CSR input warns about nothing


# ---------------------------------------------------------------------------
# GroupRecommender specifics
# ---------------------------------------------------------------------------
def planted(rng, n_users=120, n_items=60, n_groups=3, per_user=10, noise=0.1):
    """Users of group g mostly pick items of slice g of the catalogue."""
    g = np.arange(n_users) % n_groups
    width = n_items // n_groups
    rows, cols = [], []
    for u in range(n_users):
        own = rng.choice(np.arange(g[u] * width, (g[u] + 1) * width), size=per_user, replace=False)
        other = rng.choice(n_items, size=max(1, int(noise * per_user)), replace=False)
        items = np.unique(np.concatenate([own, other]))
        rows += [u] * len(items)
        cols += items.tolist()
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    return X, g


def test_spherical_kmeans_finds_planted_groups(rng):
    """GroupRecommender's groups come from the package's one K-means core, in cosine geometry."""
    from cohortrec._validation import l2_normalize_rows
    from cohortrec.cluster import KMeans
    X, g = planted(rng, noise=0.0)
    Xn = l2_normalize_rows(X)
    km = KMeans(3, spherical=True, n_init=1, random_state=0).fit(Xn)
    labels, centers = km.labels_, km.cluster_centers_
    # same partition up to renaming
    assert len({(a, b) for a, b in zip(labels, g)}) == 3
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(labels, np.argmax(Xn @ centers.T, axis=1))
    dense_labels = KMeans(3, spherical=True, n_init=1, random_state=0).fit(Xn.toarray()).labels_
    assert len({(a, b) for a, b in zip(dense_labels, g)}) == 3
    model = GroupRecommender(n_groups=3, k=5, random_state=0).fit(X)
    assert len({(a, b) for a, b in zip(model.labels_, g)}) == 3


def test_group_blend0_single_group_equals_userknn(rng):
    X = random_interactions(rng, 80, 40, 0.15, continuous=True)
    a = UserKNN(k=10, power=2.0).fit(X).recommend(np.arange(80), X, N=8)
    model = GroupRecommender(n_groups=1, k=10, power=2.0, blend=0.0).fit(X)
    b = model.recommend(np.arange(80), X, N=8)
    np.testing.assert_array_equal(a[0], b[0])  # per-user normalisation keeps the order
    assert model.n_similarities_ == UserKNN().fit(X).n_similarities_


def test_group_neighbours_stay_in_group(rng):
    X = random_interactions(rng, 90, 40, 0.2, continuous=True)
    labels = rng.integers(0, 3, size=90)
    model = GroupRecommender(k=5, blend=0.0, search_groups=1).fit(X, groups=labels * 10 + 7)
    np.testing.assert_array_equal(model.labels_, labels)  # relabelled 0..2
    S = model.similarity_.tocoo()
    assert np.all(labels[S.row] == labels[S.col])
    for g in range(3):  # = UserKNN on each group's submatrix
        mem = np.flatnonzero(labels == g)
        ref = UserKNN(k=5).fit(X[mem]).similarity_
        got = model.similarity_[mem][:, mem]
        np.testing.assert_allclose(got.toarray(), ref.toarray(), rtol=1e-5)
    sizes = np.bincount(labels)
    assert model.n_similarities_ == int((sizes * (sizes - 1)).sum())


def test_group_profile_formula(rng):
    """blend=1: r_uj = sum_k w(u,k) p_kj / sum_k w(u,k), computed densely."""
    X, _ = planted(rng)
    model = GroupRecommender(n_groups=3, blend=1.0, soft=2, membership_power=3.0,
                             profile_size=1000, random_state=0).fit(X)
    Xd = X.toarray().astype(np.float64)
    Xn = Xd / np.linalg.norm(Xd, axis=1, keepdims=True)
    labels = model.labels_
    # profiles: share of each group's members with the item
    P = np.stack([(Xd[labels == k] > 0).mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(model.profiles_.toarray(), P, rtol=1e-6)
    C = np.stack([Xn[labels == k].sum(0) for k in range(3)])
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    sims = Xn @ C.T
    W = np.zeros_like(sims)
    for u in range(len(sims)):
        top = np.argsort(-sims[u], kind="stable")[:2]
        W[u, top] = np.maximum(sims[u, top], 0) ** 3.0
    W /= W.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.memberships_.toarray(), W, rtol=1e-4, atol=1e-6)
    ref = W @ P
    reach = (W > 0).astype(float) @ (P > 0).astype(float) > 0
    ref[~reach] = -np.inf
    ref[Xd > 0] = -np.inf
    ids, sc = model.recommend(np.arange(X.shape[0]), X, N=10)
    _check_against(ids, sc, ref, 10)


def test_group_blend_mixes_parts(rng):
    X, _ = planted(rng)
    cf = GroupRecommender(n_groups=3, blend=0.0, random_state=0).fit(X)
    prof = GroupRecommender(n_groups=3, blend=1.0, random_state=0).fit(X)
    mid = GroupRecommender(n_groups=3, blend=0.4, random_state=0).fit(X)
    users = np.arange(20)
    # score of any returned item = 0.6 * normalised CF + 0.4 * profile
    ids, sc = mid.recommend(users, X[users], N=5)
    S = cf.similarity_[users].toarray() ** cf.power
    S /= S.sum(axis=1, keepdims=True)
    cf_scores = S @ X.toarray()
    pr_scores = mid.memberships_[users].toarray() @ mid.profiles_.toarray()
    for r in range(len(users)):
        v = ids[r] >= 0
        np.testing.assert_allclose(sc[r][v], 0.6 * cf_scores[r, ids[r][v]] + 0.4 * pr_scores[r, ids[r][v]],
                                   rtol=1e-4)
    assert prof.recommend(0, X, N=3)[0].size == 3


def test_group_cold_start_and_fewer_similarities(rng):
    X, _g = planted(rng, n_users=200, n_items=80, n_groups=4, noise=0.0)
    model = GroupRecommender(n_groups=4, search_groups=1, k=10, blend=0.3, random_state=0).fit(X)
    assert model.n_similarities_ * 3 <= UserKNN().fit(X).n_similarities_
    # a brand-new user with a few items of slice 2 is served from slice 2
    new = sp.csr_matrix((np.ones(3, np.float32), ([0, 0, 0], [40, 41, 45])), shape=(1, 80))
    ids, _ = model.recommend(np.array([10**9]), new, N=10, recalculate_user=True)
    assert np.all((ids[0] >= 40) & (ids[0] < 60))
    # a new user with no items at all gets the group-size-weighted profile
    empty = sp.csr_matrix((1, 80), dtype=np.float32)
    ids, _sc = model.recommend(np.array([10**9]), empty, N=5, recalculate_user=True)
    assert (ids >= 0).all()


def test_group_with_clusterer_object(rng):
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    X, _g = planted(rng, noise=0.0)
    km = KMeans(n_clusters=3, n_init=3, random_state=0)
    model = GroupRecommender(clusterer=km, k=10, blend=0.2).fit(X)
    np.testing.assert_array_equal(model.labels_, km.labels_)
    assert model.n_groups_ == 3
    new = sp.csr_matrix((np.ones(2, np.float32), ([0, 0], [0, 1])), shape=(1, 60))
    ids, _ = model.recommend(np.array([500]), new, N=5, recalculate_user=True)
    assert np.all(ids[0] < 20)


class _NoiseClusterer:
    """Labels 10 / 20 by the majority item half, -1 ('noise') for every 7th user; assign() only."""

    @staticmethod
    def _first_half(X):
        X = sp.csr_matrix(X)
        return np.asarray(X[:, :30].sum(axis=1)).ravel() > np.asarray(X[:, 30:].sum(axis=1)).ravel()

    def fit(self, X):
        self.labels_ = np.where(self._first_half(X), 10, 20)
        self.labels_[::7] = -1
        return self

    def assign(self, X):
        return np.where(self._first_half(X), 10, 99)


def test_group_clusterer_noise_labels_and_assign(rng):
    X, g = planted(rng, n_groups=2, noise=0.0)
    model = GroupRecommender(clusterer=_NoiseClusterer(), clusterer_input="interactions",
                             k=10).fit(X)
    assert model.n_groups_ == 2
    np.testing.assert_array_equal(model.clusterer_labels_, [10, 20])
    np.testing.assert_array_equal(model.labels_, g)  # the noise users joined the nearest group
    new = sp.csr_matrix((np.ones(2, np.float32), ([0, 1], [3, 45])), shape=(2, 60))
    ids, _ = model.recommend(np.array([500, 501]), new, N=5, recalculate_user=True)
    assert np.all(ids[0] < 30)      # assigned 10 -> group 0
    assert np.all(ids[1] >= 30)     # unknown label 99 -> nearest centroid (group 1)


def test_group_with_cohortrec_cluster_and_discovery(rng):
    X, g = planted(rng, noise=0.0)
    try:
        from cohortrec.cluster import KMeans
    except (ImportError, AttributeError):
        pytest.skip("cohortrec.cluster.KMeans is not available")
    model = GroupRecommender(clusterer=KMeans(3, spherical=True, random_state=0), k=10).fit(X)
    assert len({(a, b) for a, b in zip(model.labels_, g)}) == 3
    new = sp.csr_matrix((np.ones(2, np.float32), ([0, 0], [41, 42])), shape=(1, 60))
    ids, _ = model.recommend(np.array([500]), new, N=5, recalculate_user=True)
    assert np.all(ids[0] >= 40)
    try:
        from cohortrec.discovery import GroupDiscovery
    except ImportError:
        return
    disc = GroupDiscovery(n_groups=3, random_state=0, min_group_size=0)
    try:
        model = GroupRecommender(clusterer=disc, clusterer_input="interactions", k=10).fit(X)
    except TypeError as exc:  # pragma: no cover - depends on GroupDiscovery's signature
        pytest.skip(f"GroupDiscovery signature differs: {exc}")
    assert model.n_groups_ >= 2
    ids, _ = model.recommend(np.array([500]), new, N=5, recalculate_user=True)
    assert ids.shape == (1, 5)


def test_group_svd_embedding(rng):
    X, g = planted(rng, noise=0.0)
    model = GroupRecommender(n_groups=3, n_components=8, k=10, random_state=0).fit(X)
    assert model.components_.shape == (60, 8)
    assert len({(a, b) for a, b in zip(model.labels_, g)}) == 3
    ids, _ = model.recommend(np.arange(5), X[:5], N=4, recalculate_user=True)
    np.testing.assert_array_equal(ids, model.recommend(np.arange(5), X[:5], N=4)[0])


def test_group_save_load_with_clusterer_warns(rng, tmp_path):
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    X, _ = planted(rng)
    model = GroupRecommender(clusterer=KMeans(n_clusters=3, n_init=2, random_state=0)).fit(X)
    with pytest.warns(RecommenderWarning, match="clusterer"):
        model.save(tmp_path / "g.npz")
    loaded = GroupRecommender.load(tmp_path / "g.npz")
    assert loaded.clusterer is None and loaded.n_similarities_ == model.n_similarities_
    np.testing.assert_array_equal(loaded.recommend(np.arange(9), X[:9])[0], model.recommend(np.arange(9), X[:9])[0])


def test_group_errors(rng):
    X = random_interactions(rng)
    with pytest.raises(ValueError, match="blend"):
        GroupRecommender(blend=1.5).fit(X)
    with pytest.raises(TypeError, match="fit method"):
        GroupRecommender(clusterer=object()).fit(X)
    with pytest.raises(ValueError, match="clusterer_input"):
        GroupRecommender(clusterer_input="raw").fit(X)
    with pytest.raises(ValueError, match="one label per user"):
        GroupRecommender().fit(X, groups=np.zeros(3))
    with pytest.raises(ValueError, match="n_groups"):
        GroupRecommender(n_groups=0).fit(X)


def test_group_evaluate_by_group(rng):
    X, _ = planted(rng)
    train, test = evaluation.random_holdout(X, 0.2, random_state=0)
    model = GroupRecommender(n_groups=3, random_state=0).fit(train)
    by = evaluation.evaluate_by_group(model, train, test, model.labels_, k=5)
    assert sorted(by["group"].unique()) == [0, 1, 2]


def test_refit_drops_cached_item_vectors(rng):
    X1 = random_interactions(rng, continuous=True)
    X2 = random_interactions(rng, continuous=True)
    for make in (UserKNN, lambda: ItemKNN(similarity="bm25")):
        model = make().fit(X1)
        model.similar_items(0)
        model.fit(X2)
        np.testing.assert_array_equal(model.similar_items(np.arange(5))[0],
                                      make().fit(X2).similar_items(np.arange(5))[0])
