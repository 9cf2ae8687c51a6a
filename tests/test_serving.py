"""The per-request (one user) path of the recommenders and its kernels.

* every model: ``recommend(u)`` (fast path) gives exactly what the batch path
  gives for ``recommend([u])``, for every combination of inputs and filters;
* the kernels: ``user_topn_sparse`` equals :func:`cohortrec.ops.topk_scores`
  bit for bit, ``user_topn_dense`` equals a NumPy reference; corrupt model
  matrices raise instead of reading out of bounds;
* validation: the same errors on both paths.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cohortrec import ops
from cohortrec.ops._user_topn import (
    prepare_csr,
    prepare_dense,
    prepare_dual,
    user_topn_dense,
    user_topn_dual,
    user_topn_factors,
    user_topn_sparse,
)
from cohortrec.recommenders import ALS, EASE, Blend, GroupRecommender, ItemKNN, Popularity, RP3beta, UserKNN


def random_x(seed: int, n_users: int = 70, n_items: int = 45, density: float = 0.12,
             ties: bool = True) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    X = sp.random(n_users, n_items, density=density, format="csr", dtype=np.float32,
                  random_state=np.random.RandomState(seed))
    X.data = ((1.0 + rng.integers(0, 3, size=X.nnz)) if ties else (0.5 + rng.random(X.nnz))).astype(np.float32)
    keep = np.ones(n_users, np.float32)
    keep[3] = 0.0  # an empty user
    X = sp.csr_matrix(sp.diags(keep) @ X)
    X.eliminate_zeros()
    return X


MODELS = {
    "itemknn": lambda: ItemKNN(k=7),
    "itemknn-bm25": lambda: ItemKNN(k=9, similarity="bm25"),
    "userknn": lambda: UserKNN(k=6, power=2.0),
    "rp3beta": lambda: RP3beta(k=10, alpha=0.8, beta=0.4),
    "ease": lambda: EASE(l2=3.0),
    "ease-kept": lambda: EASE(l2=2.0, min_item_users=3, beta=0.3),
    "ease-dual": lambda: EASE(l2=3.0, solver="dual"),
    "ease-dual-kept": lambda: EASE(l2=2.0, min_item_users=3, beta=0.3, dropout=0.3, solver="dual"),
    "popularity": lambda: Popularity(),
    "popularity-sum": lambda: Popularity(weighting="sum"),
    "group": lambda: GroupRecommender(n_groups=4, k=5, soft=2, search_groups=2, random_state=0),
    "als": lambda: ALS(factors=6, iterations=3, random_state=0),
    # its bound server (ops.blend_server) runs the members' servers and the merge in one call
    "blend": lambda: Blend([EASE(l2=3.0, min_item_users=3), ItemKNN(k=7), ALS(factors=6, iterations=3, random_state=0),
                            Popularity()], weights=[2.0, 1.0, 1.0, 0.0], normalize="score", n_candidates=12),
}


def masked_order(s, n, keep=None, exclude=None, drop_zero=True):
    """The reference top-n of a score row: ids by score desc, id asc, among the finite candidates."""
    s = s.copy()
    if keep is not None:
        s[~keep] = -np.inf
    if exclude is not None:
        s[exclude] = -np.inf
    if drop_zero:
        s[s == 0] = -np.inf
    order = np.lexsort((np.arange(s.size), -s))
    return order[np.isfinite(s[order])][:n], s


def batch_one(model, u, **kw):
    ids, sc = model.recommend(np.array([u]), **kw)
    valid = ids[0] >= 0
    return ids[0][valid], sc[0][valid]


def assert_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].dtype == b[0].dtype
    np.testing.assert_array_equal(a[1], b[1])  # bit for bit
    assert a[1].dtype == np.float32 and b[1].dtype == np.float32


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_user_equals_batch(name, seed):
    X = random_x(seed, ties=seed != 2)
    check_one_user_equals_batch(MODELS[name]().fit(X), X, seed)


@pytest.mark.parametrize("how", ["rank", "score"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("nested", [True, False])
def test_blend_one_user_equals_batch(how, seed, nested, monkeypatch):
    """Blend's one-user path against its batch path (a batch of one per member, added into a dense row),
    with ties (seeds 0 and 1) and a member of weight 0. Without a nested Blend every weighted member has a
    row server and the request is one native call (ops.blend_topn_row; EASE with min_item_users lists
    through an item map); a nested Blend has none, so the members are asked one by one and merged by
    ops.merge_topn."""
    from cohortrec.recommenders import _blend

    calls = {"fused": 0, "merged": 0}

    def spy(name, f):
        def wrapped(*args, **kw):
            out = f(*args, **kw)
            calls[name] += out is not None
            return out
        return wrapped

    monkeypatch.setattr(_blend, "blend_topn_row", spy("fused", _blend.blend_topn_row))
    monkeypatch.setattr(_blend, "merge_topn", spy("merged", _blend.merge_topn))
    X = random_x(seed, ties=seed != 2)
    last = Blend([UserKNN(k=6), RP3beta(k=10)], weights=[1.0, 1.0]) if nested else UserKNN(k=6)
    members = [EASE(l2=3.0, min_item_users=6), ItemKNN(k=7), ALS(factors=6, iterations=3, random_state=0),
               Popularity(), last]
    model = Blend(members, weights=[2.0, 1.0, 1.0, 0.0, 0.5], normalize=how, n_candidates=12).fit(X)
    check_one_user_equals_batch(model, X, seed)
    # recommend(u) and recommend(u, row) take the blend's bound server (members and merge in one call); a
    # nested Blend's server is not a model's, so the outer blend has none and merges in _topn_one
    assert (model._row_server() is None) == nested
    if nested:  # the outer blend merges (its inner one, called through recommend, takes the fused call)
        assert calls["merged"] > 0
    else:
        assert calls["fused"] > 0 and calls["merged"] == 0


def test_blend_server_follows_its_members():
    """The blend's bound server holds its members' servers: a member refit or partially fit must not leave
    a request reading the old member (the blend's own attributes do not change then)."""
    X = random_x(3)
    model = Blend([EASE(l2=3.0), ItemKNN(k=7)], weights=[1.0, 1.0], normalize="score").fit(X)
    before = model._row_server()
    assert before is not None and model._row_server() is before  # built once per state
    rng = np.random.default_rng(0)
    X2 = X.copy()
    X2.data = rng.permutation(X2.data)
    model.models_[1].fit(sp.csr_matrix(np.asarray(X2.todense()) * (rng.random(X2.shape) < 0.5)))
    assert model._row_server() is not before
    for u in range(0, X.shape[0], 7):
        assert_same(model.recommend(u), batch_one(model, u))
    model.models_[0].partial_fit_users([1], X[[2]])
    after = model._row_server()
    assert after is not None and after is not before
    assert_same(model.recommend(1, X[[2]]), batch_one(model, 1, user_items=X[[2]]))


def check_one_user_equals_batch(model, X, seed):
    rng = np.random.default_rng(seed)
    filt = rng.choice(X.shape[1], 6, replace=False)
    only = rng.choice(X.shape[1], 20, replace=False)
    variants = [
        {},
        {"user_items": X},
        {"filter_already_liked_items": False},
        {"N": 100},
        {"N": 0},
        {"N": 3, "filter_items": filt},
        {"N": 5, "items": only},
        {"user_items": X, "items": only, "filter_already_liked_items": False},
    ]
    for u in [0, 3, 5, X.shape[0] - 1]:
        for kw in variants:
            assert_same(model.recommend(u, **kw), batch_one(model, u, **kw))
            assert_same(model.recommend(np.int64(u), **kw), batch_one(model, u, **kw))
        # one row given (implicit's convention), also a changed row
        row = X[u]
        assert_same(model.recommend(u, row), batch_one(model, u, user_items=row))
        other = X[(u + 1) % X.shape[0]]
        assert_same(model.recommend(u, other, N=8), batch_one(model, u, user_items=other, N=8))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_one_user_after_save_load(name, tmp_path):
    X = random_x(5)
    model = MODELS[name]().fit(X)
    before = [model.recommend(u) for u in range(X.shape[0])]
    model.save(tmp_path / "m")
    loaded = type(model).load(tmp_path / "m")
    for u in range(X.shape[0]):
        assert_same(loaded.recommend(u), before[u])


@pytest.mark.parametrize("name", ["ease", "ease-kept"])
def test_ease_matches_dense_reference(name):
    X = random_x(11, ties=False)
    model = MODELS[name]().fit(X)
    B = np.zeros((X.shape[1], X.shape[1]), np.float64)
    B[np.ix_(model.items_, model.items_)] = model.item_weights_
    for u in range(X.shape[0]):
        ids, s = masked_order(X[u].toarray().ravel().astype(np.float64) @ B, 10, exclude=X[u].indices)
        got_ids, got_sc = model.recommend(u, N=10)
        np.testing.assert_allclose(got_sc, s[ids], rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(np.sort(got_ids), np.sort(ids))


@pytest.mark.parametrize("kw", [{}, {"min_item_users": 2, "beta": 0.3, "dropout": 0.3}], ids=["plain", "kept"])
def test_ease_dual_matches_primal(kw):
    # more items than users, the dual form's domain; the primal's B is the reference
    X = random_x(13, n_users=30, n_items=80, density=0.1, ties=False)
    dual = EASE(l2=4.0, solver="dual", **kw).fit(X)
    primal = EASE(l2=4.0, solver="primal", **kw).fit(X)
    assert dual.item_weights_ is None and primal.dual_gram_inverse_ is None
    np.testing.assert_allclose(dual.gram_inverse_diag_, primal.gram_inverse_diag_, rtol=1e-9)
    B = np.zeros((X.shape[1], X.shape[1]), np.float64)
    B[np.ix_(primal.items_, primal.items_)] = primal.item_weights_
    for u in range(X.shape[0]):
        for filt in (True, False):
            ids, s = masked_order(X[u].toarray().ravel().astype(np.float64) @ B, 10,
                                  exclude=X[u].indices if filt else None)
            got_ids, got_sc = dual.recommend(u, N=10, filter_already_liked_items=filt)
            np.testing.assert_allclose(got_sc, s[ids], rtol=1e-4, atol=1e-6)
            np.testing.assert_array_equal(np.sort(got_ids), np.sort(ids))


def _random_dual(rng, nu, m, density=0.3):
    X = sp.random(nu, m, density=density, format="csr", dtype=np.float64, random_state=np.random.RandomState(
        int(rng.integers(2**31))))
    A = rng.standard_normal((nu, nu))
    M = A @ A.T / nu + np.eye(nu)
    return X, rng.random(m) + 0.5, rng.standard_normal(m), M, rng.standard_normal(m)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(0, 12), u=st.integers(0, 5), with_keep=st.booleans(),
       with_excl=st.booleans(), drop_zero=st.booleans())
def test_user_topn_dual_matches_numpy(seed, n, u, with_keep, with_excl, drop_zero):
    rng = np.random.default_rng(seed)
    nu, m = int(rng.integers(1, 20)), int(rng.integers(1, 50))
    X, qs, ss, M, diag = _random_dual(rng, nu, m)
    D = prepare_dual(X, qs, ss, M, diag)
    W = sp.random(u, m, density=0.3, format="csr", dtype=np.float32, random_state=np.random.RandomState(seed))
    keep = rng.random(m) < 0.7 if with_keep else None
    E = sp.random(u, m, density=0.2, format="csr", dtype=np.float32,
                  random_state=np.random.RandomState(seed + 2)) if with_excl else None
    ids, sc = user_topn_dual(W.indptr, W.indices, W.data, D, n, keep=keep,
                             e_indptr=None if E is None else E.indptr,
                             e_indices=None if E is None else E.indices, drop_zero=drop_zero, n_threads=2)
    # float64 reference from the definition: x diag + ((x Lambda^-1 X^T) M) X diag(score_scale)
    Xd, Wd = X.toarray(), W.toarray().astype(np.float64)
    S = ((Wd * qs) @ Xd.T) @ M @ (Xd * ss) + Wd * diag
    reach = ((Wd != 0).astype(float) @ (Xd != 0).T.astype(float) > 0).any(axis=1)  # rows that reach a user
    for r in range(u):
        s = S[r].copy()
        if not reach[r]:
            s[Wd[r] == 0] = 0.0  # nothing reached: exactly zero
        order, s = masked_order(s, n, keep, None if E is None else E[r].indices, drop_zero)
        got = ids[r][ids[r] >= 0]
        assert got.size == order.size
        np.testing.assert_allclose(sc[r][:got.size], s[order], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(s[got], s[order], rtol=1e-4, atol=1e-5)  # equal scores may swap
    # one row at a time, one thread: the same bits
    for r in range(u):
        one = np.array([0, W.indptr[r + 1] - W.indptr[r]], dtype=np.int64)
        sl = slice(W.indptr[r], W.indptr[r + 1])
        e1 = None if E is None else np.array([0, E.indptr[r + 1] - E.indptr[r]], dtype=np.int64)
        i1, s1 = user_topn_dual(one, W.indices[sl], W.data[sl], D, n, keep=keep, e_indptr=e1,
                                e_indices=None if E is None else E.indices[E.indptr[r]:E.indptr[r + 1]],
                                drop_zero=drop_zero)
        np.testing.assert_array_equal(i1[0], ids[r])
        np.testing.assert_array_equal(s1[0], sc[r])


def test_user_topn_dual_rejects_corrupt_model():
    rng = np.random.default_rng(0)
    D = prepare_dual(*_random_dual(rng, 6, 9, density=0.5))
    W = (np.array([0, 3], dtype=np.int64), np.array([0, 4, 8], dtype=np.int32), np.ones(3, np.float32))
    user_topn_dual(*W, D, 3)
    for field, value in [("c_indices", 10**6), ("c_indices", -1), ("r_indices", 10**6), ("r_indptr", 10**6),
                         ("c_indptr", -5)]:
        a = getattr(D, field).copy()
        a[1:-1] = value
        with pytest.raises((IndexError, ValueError)):
            user_topn_dual(*W, D._replace(**{field: a}), 3)
    with pytest.raises(ValueError, match="stride"):
        user_topn_dual(*W, D._replace(M=np.ones((6, 3), np.float32)), 3)
    with pytest.raises(ValueError, match="M must have shape"):
        prepare_dual(*_random_dual(rng, 6, 9)[:3], np.eye(5), np.zeros(9))
    with pytest.raises(ValueError, match="NaN"):
        X, qs, ss, M, diag = _random_dual(rng, 6, 9)
        M[0, 0] = np.nan
        prepare_dual(X, qs, ss, M, diag)
    # the bound row server reads the same arrays: corrupt in place after fit, it raises
    X = random_x(4, n_users=20, n_items=60)
    model = EASE(l2=2.0, solver="dual").fit(X)
    model.recommend(0)
    model._serving_state()[0].r_indices[:] = 10**6
    with pytest.raises((IndexError, ValueError)):
        for u in range(X.shape[0]):
            model.recommend(u)


def test_fast_path_validation_matches_batch():
    X = random_x(3)
    for model in (ItemKNN(k=5).fit(X), EASE(l2=1.0).fit(X), UserKNN(k=4).fit(X)):
        for bad, exc in [(-1, IndexError), (X.shape[0], IndexError), (1.5, TypeError), (True, TypeError),
                         ("3", TypeError)]:
            with pytest.raises(exc):
                model.recommend(bad)
            with pytest.raises(exc):
                model.recommend(np.array([bad]) if not isinstance(bad, str) else np.array([bad]))
        with pytest.raises(ValueError, match="N must"):
            model.recommend(0, N=-1)
        with pytest.raises(IndexError, match="items"):
            model.recommend(0, items=[X.shape[1]])
        with pytest.raises(ValueError, match="cannot both"):
            model.recommend(0, items=[1], filter_items=[2])
        with pytest.raises(ValueError, match="columns"):
            model.recommend(0, sp.csr_matrix((1, X.shape[1] + 1), dtype=np.float32))
        with pytest.raises(IndexError, match="out of range"):
            model.recommend(5, X[:3])
        nan_row = X[0].copy()
        nan_row.data = nan_row.data.copy()
        nan_row.data[0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            model.recommend(0, nan_row)
        with pytest.raises(TypeError):
            model.recommend(0, [[1, 2]])


def test_non_canonical_and_dense_rows_fall_back():
    X = random_x(4)
    model = ItemKNN(k=5).fit(X)
    row = X[1].tocoo()
    dup = sp.csr_matrix((np.r_[row.data, row.data], (np.r_[row.row, row.row], np.r_[row.col, row.col])),
                        shape=row.shape)
    dup.has_sorted_indices = False
    assert_same(model.recommend(1, dup), batch_one(model, 1, user_items=dup))
    with pytest.warns(UserWarning):
        got = model.recommend(1, X[1].toarray())
    assert_same(got, batch_one(model, 1))
    row64 = sp.csr_matrix(X[1], dtype=np.float64)
    assert_same(model.recommend(1, row64), batch_one(model, 1, user_items=row64))
    row0 = X[1].copy()
    row0.data[0] = 0.0  # an explicit zero is not an interaction
    assert_same(model.recommend(1, row0), batch_one(model, 1, user_items=row0))


def test_recalculate_user_uses_batch_for_neighbour_models():
    X = random_x(6)
    for model in (UserKNN(k=4).fit(X), GroupRecommender(n_groups=3, k=4, random_state=0).fit(X)):
        new = X[2]
        assert_same(model.recommend(1000, new, recalculate_user=True),
                    batch_one(model, 1000, user_items=new, recalculate_user=True))


# ---------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 70), u=st.integers(0, 12),
       with_keep=st.booleans(), with_excl=st.booleans(), idx64=st.booleans())
def test_user_topn_sparse_equals_topk_scores(seed, n, u, with_keep, with_excl, idx64):
    rng = np.random.default_rng(seed)
    j, m = int(rng.integers(1, 30)), int(rng.integers(1, 60))
    W = sp.random(u, j, density=0.3, format="csr", dtype=np.float32, random_state=np.random.RandomState(seed))
    R = sp.random(j, m, density=0.3, format="csr", dtype=np.float32, random_state=np.random.RandomState(seed + 1))
    R.data = np.round(R.data * 4) / 4  # ties and explicit zeros
    W.data = np.round(W.data * 4) / 4
    keep = rng.random(m) < 0.7 if with_keep else None
    E = sp.random(u, m, density=0.2, format="csr", dtype=np.float32,
                  random_state=np.random.RandomState(seed + 2)) if with_excl else None
    if idx64:
        W.indices = W.indices.astype(np.int64)
    Rm = R.copy()
    if keep is not None:
        Rm = sp.csr_matrix(Rm.multiply(keep[None, :].astype(np.float32)))
    ref_ids, ref_sc = ops.topk_scores(W, Rm, n=n, exclude=E, n_threads=1)
    ids, sc = user_topn_sparse(W.indptr, W.indices, W.data, prepare_csr(R), n, keep=keep,
                               e_indptr=None if E is None else E.indptr,
                               e_indices=None if E is None else E.indices, n_threads=2)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(sc, ref_sc.astype(np.float32))


def test_user_topn_sparse_heavy_rows_keep_zero_sums_and_underflows():
    """A heavy row (more updates than items) accumulates densely; an item reached only through products that
    cancel (+0.0) or underflow to zero is still a candidate, an explicit zero is not -- as in topk_scores."""
    R = sp.csr_matrix((np.array([0.5, 0.0, 0.25, -0.5, 1e-20], np.float32), np.array([0, 1, 2, 0, 3]),
                       np.array([0, 3, 5])), shape=(2, 4))
    W = sp.csr_matrix(np.array([[1.0, 1.0], [1e-30, 1e-30], [2.0, 0.0]], np.float32))
    ref_ids, ref_sc = ops.topk_scores(W, R, n=5, n_threads=1)
    ids, sc = user_topn_sparse(W.indptr, W.indices, W.data, prepare_csr(R), 5, n_threads=1)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(sc, ref_sc.astype(np.float32))
    assert 0 in ids[0] and 1 not in ids[0]  # item 0 sums to exactly 0 (a candidate); item 1 is an explicit zero
    assert 3 in ids[1]  # 1e-30 * 1e-20 underflows to 0: reached, so a candidate


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 70), u=st.integers(0, 12),
       with_keep=st.booleans(), with_excl=st.booleans(), drop_zero=st.booleans())
def test_user_topn_dense_matches_numpy(seed, n, u, with_keep, with_excl, drop_zero):
    rng = np.random.default_rng(seed)
    j, m = int(rng.integers(1, 30)), int(rng.integers(1, 60))
    W = sp.random(u, j, density=0.3, format="csr", dtype=np.float32, random_state=np.random.RandomState(seed))
    B = np.round(rng.standard_normal((j, m)) * 2).astype(np.float32) / 2  # ties, zeros, exact sums
    keep = rng.random(m) < 0.7 if with_keep else None
    E = sp.random(u, m, density=0.2, format="csr", dtype=np.float32,
                  random_state=np.random.RandomState(seed + 2)) if with_excl else None
    W.data = np.round(W.data * 4).astype(np.float32) / 4
    ids, sc = user_topn_dense(W.indptr, W.indices, W.data, prepare_dense(B), n, keep=keep,
                              e_indptr=None if E is None else E.indptr,
                              e_indices=None if E is None else E.indices, drop_zero=drop_zero, n_threads=2)
    S = (W.toarray().astype(np.float64) @ B.astype(np.float64))  # exact: quarter multiples
    for r in range(u):
        order, s = masked_order(S[r], n, keep, None if E is None else E[r].indices, drop_zero)
        exp_ids = np.full(n, -1)
        exp_ids[:order.size] = order
        np.testing.assert_array_equal(ids[r], exp_ids)
        np.testing.assert_array_equal(sc[r][:order.size], s[order].astype(np.float32))


def test_kernel_rejects_corrupt_model_matrix():
    R = prepare_csr(sp.csr_matrix(np.eye(4, dtype=np.float32)))
    bad_idx = R._replace(indices=np.array([0, 1, 9, 3], dtype=R.indices.dtype))
    with pytest.raises(IndexError):
        user_topn_sparse(np.array([0, 1]), np.array([2]), np.array([1.0], np.float32), bad_idx, 3)
    bad_ptr = R._replace(indptr=np.array([0, 1, 7, 3, 4], dtype=np.int64))
    with pytest.raises((IndexError, ValueError)):
        user_topn_sparse(np.array([0, 1]), np.array([1]), np.array([1.0], np.float32), bad_ptr, 3)
    with pytest.raises(IndexError):  # query id beyond the model's rows
        user_topn_sparse(np.array([0, 1]), np.array([4]), np.array([1.0], np.float32), R, 3)
    with pytest.raises(IndexError):
        user_topn_dense(np.array([0, 1]), np.array([4]), np.array([1.0], np.float32), np.eye(4, dtype=np.float32), 3)
    with pytest.raises(ValueError, match="NaN"):
        user_topn_sparse(np.array([0, 1]), np.array([1]), np.array([np.nan], np.float32), R, 3)


# ---------------------------------------------------------------------------
# the bound row server (ops.row_server): what recommend(u) and recommend(u, row) call
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_binds_a_row_server(name):
    # the equality tests above exercise the bound path only if the model has one
    model = MODELS[name]().fit(random_x(7))
    assert model._row_server() is not None
    assert model._row_server() is model._row_server()  # built once per fitted state


@pytest.mark.parametrize("name", ["itemknn", "userknn", "group", "ease-kept", "ease-dual-kept"])
def test_row_server_rebuilt_after_partial_fit(name):
    X = random_x(8)
    model = MODELS[name]().fit(X[:50])
    before = model._row_server()
    model.partial_fit_users(np.arange(50, X.shape[0]), X[50:])
    assert model._row_server() is not before
    for u in (0, 55, X.shape[0] - 1):
        assert_same(model.recommend(u), batch_one(model, u))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_row_server_follows_refit_and_set_params(name):
    # recommend(u) keeps the row server it found with the model's count of attribute assignments: a refit on
    # other data, or a parameter that changes scores, must reach the next request
    X, X2 = random_x(13), random_x(14)
    model = MODELS[name]().fit(X)
    model.recommend(0)
    model.fit(X2)
    fresh = MODELS[name]().fit(X2)
    for u in (0, 3, X2.shape[0] - 1):
        assert_same(model.recommend(u), fresh.recommend(u))
    if "power" in model.get_params():
        model.power += 1.0
        fresh = MODELS[name]()
        fresh.power = model.power
        fresh.fit(X2)
        for u in (0, 3):
            assert_same(model.recommend(u), fresh.recommend(u))
            assert_same(model.recommend(u), batch_one(model, u))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_init_sets_no_serving_state(name):
    # the count of assignments starts with fit (scikit-learn: __init__ stores the parameters and nothing else)
    model = MODELS[name]()
    assert not {"_state_version", "_row_server_hit", "_blend_server_hit"} & set(vars(model))
    import pickle

    model.fit(random_x(15))
    model.recommend(0)
    clone_state = pickle.loads(pickle.dumps(model)).__dict__
    assert not {"_row_server_hit", "_blend_server_hit", "_serve_cache"} & set(clone_state)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_copy_and_pickle_after_serving(name):
    # the row server holds native objects: copies drop the serving caches and rebuild them
    import copy
    import pickle

    X = random_x(12)
    model = MODELS[name]().fit(X)
    before = [model.recommend(u) for u in range(5)]
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        for u in range(5):
            assert_same(clone.recommend(u), before[u])


def test_row_server_reads_corrupt_arrays_safely():
    # the arrays are bound by reference: changing them in place after fit must raise, never read out of bounds
    X = random_x(9)
    model = ItemKNN(k=5).fit(X)
    model.recommend(0)
    model.similarity_.indices[:] = 10**6
    with pytest.raises((IndexError, ValueError)):
        for u in range(X.shape[0]):
            model.recommend(u)
    model = ItemKNN(k=5).fit(X)
    model.recommend(0)
    model.user_items_.indices[:] = 10**6  # the query rows (their indptr is an int64 copy, so unharmed)
    with pytest.raises((IndexError, ValueError)):
        for u in range(X.shape[0]):
            model.recommend(u)


def test_row_server_declines_what_the_general_path_decides():
    X = random_x(10)
    srv = ItemKNN(k=5).fit(X)._row_server()
    row = X[1]
    row.sort_indices()
    assert row.nnz >= 2
    assert srv.topn(-1, 10, True) is None and srv.topn(X.shape[0], 10, True) is None
    assert srv.topn(1, -1, True) is None
    args = (row.indptr, row.indices, row.data)
    assert srv.topn_row(1, *args, 1, X.shape[1] + 1, 10, True) is None  # another width
    bad = row.copy()
    bad.data = bad.data.copy()
    bad.data[0] = np.inf
    assert srv.topn_row(1, bad.indptr, bad.indices, bad.data, 1, X.shape[1], 10, True) is None
    assert srv.topn_row(1, row.indptr, row.indices, row.data.astype(np.float64), 1, X.shape[1], 10, True) is None
    assert srv.topn_row(1, row.indptr, row.indices[::-1].copy(), row.data, 1, X.shape[1], 10, True) is None
    ids, sc = srv.topn_row(1, *args, 1, X.shape[1], 10, True)
    assert_same((ids, sc), batch_one(ItemKNN(k=5).fit(X), 1, user_items=row))


def test_row_server_rejects_inconsistent_arrays():
    X = random_x(11)
    R = prepare_csr(sp.random(X.shape[1], X.shape[1], density=0.1, format="csr", dtype=np.float32,
                              random_state=np.random.RandomState(0)))
    with pytest.raises(ValueError, match="either R or B"):
        ops.row_server(X, X, X.shape[1])
    with pytest.raises(ValueError, match="columns"):
        ops.row_server(X[:, :5], X, X.shape[1], R=R)
    with pytest.raises(ValueError, match="one row per row"):
        ops.row_server(X, X[:3], X.shape[1], R=R)
    with pytest.raises(IndexError):
        ops.row_server(X, X, X.shape[1], B=np.ones((X.shape[1], 3), np.float32),
                       out_map=np.array([0, 1, X.shape[1]]))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 40), u=st.integers(0, 11), f=st.integers(0, 19),
       m=st.integers(1, 300), with_keep=st.booleans(), with_excl=st.booleans(), threads=st.integers(1, 3))
def test_user_topn_factors_matches_sequential_float32(seed, n, u, f, m, with_keep, with_excl, threads):
    # the kernel sums over the factors in order with every product and sum rounded to float32 (no FMA
    # contraction, any ISA): a NumPy float32 loop gives the same bits; zero scores are not candidates
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((u, f)).astype(np.float32)
    if u:
        U[rng.integers(0, u)] = 0.0  # a user without interactions
    B = prepare_dense(rng.integers(-3, 4, size=(f, m)).astype(np.float32) / 2)  # ties and exact zeros
    keep = rng.random(m) < 0.7 if with_keep else None
    E = sp.random(u, m, density=0.1, format="csr", random_state=np.random.RandomState(seed)) if with_excl else None
    ids, sc = user_topn_factors(U, B, n, keep=keep, e_indptr=None if E is None else E.indptr,
                                e_indices=None if E is None else E.indices, n_threads=threads)
    for r in range(u):
        acc = np.zeros(m, np.float32)
        for h in range(f):
            acc = (acc + U[r, h] * B[h]).astype(np.float32)
        ok = np.isfinite(acc) & (acc != 0)
        if keep is not None:
            ok &= keep
        if E is not None:
            ok[E[r].indices] = False
        cand = np.flatnonzero(ok)
        order = cand[np.lexsort((cand, -acc[cand]))][:n]
        want_ids = np.full(n, -1)
        want_ids[:order.size] = order
        np.testing.assert_array_equal(ids[r], want_ids)
        np.testing.assert_array_equal(sc[r][:order.size], acc[order])
        # one user alone gives the same bits as the user in a batch (blocks of four)
        one = user_topn_factors(U[r:r + 1], B, n, keep=keep, e_indptr=None if E is None else E[r].indptr,
                                e_indices=None if E is None else E[r].indices)
        np.testing.assert_array_equal(one[0][0], ids[r])
        np.testing.assert_array_equal(one[1][0], sc[r])


def test_dense_scoring_gives_the_same_bits_on_every_isa():
    # products and sums round separately in every ISA build (no FMA contraction), so the vectorised
    # EASE / ALS scoring of one machine equals the generic build's, bit for bit
    from cohortrec import _core
    from test_als import supported_isas

    rng = np.random.default_rng(0)
    m = 1000 + 37  # whole vector strips and a tail
    B = prepare_dense(rng.standard_normal((60, m)).astype(np.float32))
    W = sp.random(9, 60, density=0.4, format="csr", dtype=np.float32, random_state=np.random.RandomState(1))
    U = rng.standard_normal((9, 60)).astype(np.float32)
    got = {}
    for isa in supported_isas():
        _core._set_isa(isa)
        try:
            got[isa] = (user_topn_dense(W.indptr, W.indices, W.data, B, 50), user_topn_factors(U, B, 50))
        finally:
            _core._set_isa("auto")
    base = got["generic"]
    for isa, res in got.items():
        for a, b in zip(res, base):
            np.testing.assert_array_equal(a[0], b[0], err_msg=isa)
            np.testing.assert_array_equal(a[1], b[1], err_msg=isa)
