"""Blend: the common recommender behaviour, a NumPy reference of the blended
scores, the weight search against cohortrec.evaluation, and its contract."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import test_fuzz
from cohortrec import evaluation
from cohortrec.recommenders import (
    ALS,
    EASE,
    Blend,
    GroupRecommender,
    ItemKNN,
    Popularity,
    RecommenderWarning,
    UserKNN,
    load_model,
)
from cohortrec.recommenders._blend import _Candidates, _ndcg_at_k
from test_recommenders import RecommenderMixin, planted, random_interactions


class TestBlendCommon(RecommenderMixin):
    def make(self, **kw):
        return Blend([EASE(l2=10.0), ItemKNN(k=30)], random_state=0, **kw)


class TestBlendScoreFixed(RecommenderMixin):
    def make(self, **kw):
        return Blend([ItemKNN(k=30), EASE(l2=10.0)], weights=[0.3, 0.7], normalize="score", **kw)


# ---------------------------------------------------------------------------
# reference
# ---------------------------------------------------------------------------
def reference_scores(members, weights, users, X, how, n_cand):
    """Dense blended scores from the members' own top-n_cand lists (float64)."""
    n_items = X.shape[1]
    out = np.zeros((len(users), n_items))
    for m, w in zip(members, weights):
        if w == 0:
            continue
        ids, sc = m.recommend(users, X[users], N=n_cand)
        for r in range(len(users)):
            ok = np.isfinite(sc[r]) & (ids[r] >= 0)
            i, s = ids[r][ok], sc[r][ok].astype(np.float64)
            if how == "rank":
                v = 1.0 - np.arange(len(i)) / n_cand
            else:
                span = s.max() - s.min() if len(s) else 0.0
                frac = (s - s.min()) / span if span > 0 else np.ones(len(s))
                v = 1.0 / n_cand + (1.0 - 1.0 / n_cand) * frac
            out[r, i] += w * v
    out[out <= 0] = -np.inf
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=st.lists(st.floats(0.0, 3.0), min_size=3, max_size=3).filter(lambda v: sum(v) > 0.01),
       how=st.sampled_from(["rank", "score"]), n_cand=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
def test_blend_matches_reference(w, how, n_cand, seed):
    rng = np.random.default_rng(seed)
    X = random_interactions(rng, 50, 30, 0.2, continuous=True)
    members = [EASE(l2=5.0).fit(X), ItemKNN(k=10).fit(X), ALS(factors=4, iterations=3, random_state=0).fit(X)]
    blend = Blend(members, weights=w, normalize=how, n_candidates=n_cand, prefit=True).fit(X)
    wn = np.asarray(w) / sum(w)
    np.testing.assert_allclose(blend.weights_, wn)
    users = np.arange(50)
    ref = reference_scores(members, wn, users, X, how, min(max(n_cand, 8), 30))  # >= N, <= items
    ids, sc = blend.recommend(users, X, N=8)
    for r in range(50):
        ok = ids[r] >= 0
        np.testing.assert_allclose(sc[r][ok], ref[r][ids[r][ok]], rtol=1e-5, atol=1e-6)
        expect = np.sort(ref[r][np.isfinite(ref[r])])[::-1][:8]  # the best scores, whatever ties
        np.testing.assert_allclose(sc[r][ok], expect, rtol=1e-5, atol=1e-6)
        assert ok.sum() == len(expect)


def test_search_objective_equals_evaluate():
    """The fast NDCG of the weight search is cohortrec.evaluation's NDCG of the blend."""
    rng = np.random.default_rng(3)
    X = random_interactions(rng, 120, 50, 0.15, continuous=True)
    train, val = evaluation.random_holdout(X, 0.3, random_state=0)
    members = [EASE(l2=5.0).fit(train), UserKNN(k=20).fit(train), Popularity().fit(train)]
    users = np.flatnonzero(np.diff(val.indptr) > 0)
    for how in ("rank", "score"):
        blend = Blend(members, weights=[1, 1, 1], prefit=True, normalize=how, n_candidates=30)
        lists = blend._member_lists(members, users, train[users], 30)
        cands = _Candidates(lists, how, 30)
        Vu = val[users]
        keys_v = np.repeat(np.arange(len(users)), np.diff(Vu.indptr)) * X.shape[1] + Vu.indices
        keys_c = np.arange(len(users))[:, None] * X.shape[1] + cands.items
        relevant = np.isin(keys_c, keys_v) & (cands.items >= 0)
        for w in ([1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]):
            fast = _ndcg_at_k(cands, np.asarray(w), relevant, np.diff(Vu.indptr), 10).mean()
            b = Blend(members, weights=w, prefit=True, normalize=how, n_candidates=30).fit(train)
            full = evaluation.evaluate(b, train, val, k=10).set_index("metric")["value"]["ndcg"]
            assert fast == pytest.approx(full, abs=1e-9)


def test_weight_search_never_worse_than_best_member_on_validation():
    rng = np.random.default_rng(4)
    X, _ = planted(rng, n_users=150, n_items=60)
    b = Blend([Popularity(), EASE(l2=10.0), ItemKNN(k=20)], random_state=1).fit(X)
    assert b.validation_ndcg_ >= b.member_validation_ndcg_.max() - 1e-12
    assert b.weights_.sum() == pytest.approx(1.0) and (b.weights_ >= 0).all()
    assert len(b.models_) == 3 and all(m.user_items_.shape == X.shape for m in b.models_)
    assert all(m.user_items_.nnz == X.nnz for m in b.models_)  # refit on all of user_items


def test_min_gain_se_takes_only_gains_beyond_the_noise():
    """min_gain_se=0 takes any strict validation gain; a huge one keeps the best member alone; the default
    (1 SE of the paired per-user difference) lies in between."""
    rng = np.random.default_rng(4)
    X, _ = planted(rng, n_users=150, n_items=60)
    members = [Popularity(), EASE(l2=10.0), ItemKNN(k=20), UserKNN(k=10)]
    any_gain = Blend(members, random_state=1, min_gain_se=0.0).fit(X)
    one_se = Blend(members, random_state=1).fit(X)
    never = Blend(members, random_state=1, min_gain_se=1e9).fit(X)
    best = int(np.argmax(never.member_validation_ndcg_))
    np.testing.assert_array_equal(never.weights_, np.eye(4)[best])
    assert never.validation_ndcg_ == pytest.approx(never.member_validation_ndcg_.max())
    assert any_gain.validation_ndcg_ >= one_se.validation_ndcg_ >= never.validation_ndcg_
    assert any_gain.validation_ndcg_ > never.validation_ndcg_  # the data leave a gain to take


def test_single_member_blend_keeps_its_ranking():
    rng = np.random.default_rng(5)
    X = random_interactions(rng, 60, 40, 0.2, continuous=True)
    ease = EASE(l2=5.0).fit(X)
    for how in ("rank", "score"):
        b = Blend([ease], normalize=how, prefit=True, weights=[1.0]).fit(X)
        np.testing.assert_array_equal(b.recommend(np.arange(60), X, N=10)[0],
                                      ease.recommend(np.arange(60), X, N=10)[0])


def test_useless_member_gets_no_weight():
    """A member recommending noise must not be blended in when it does not help on validation."""
    rng = np.random.default_rng(6)
    X, _ = planted(rng, n_users=200, n_items=60)

    class Noise(Popularity):
        def _topn(self, userids, rows, n, exclude, keep, recalculate):
            from cohortrec.recommenders._base import dense_topn
            sc = np.random.default_rng(0).random((len(userids), rows.shape[1])).astype(np.float32)
            return dense_topn(sc, n, exclude, keep)

    b = Blend([EASE(l2=10.0), Noise()], random_state=0).fit(X)
    assert b.weights_[1] < 0.2 and b.weights_[0] > 0.8


def _recording(cls):
    """A subclass of cls whose instances append every matrix they are fit on to ``fits``."""
    class Recording(cls):
        fits: list = []

        def fit(self, user_items, show_progress=False):
            Recording.fits.append(sp.csr_matrix(user_items, copy=True))
            return super().fit(user_items, show_progress)

    return Recording


def test_cross_fitting_leaves_out_one_fold_of_users_per_fit():
    """cv=3: each member is fit 3 times, each time on all interactions but the held-out ones of one fold of
    users (the folds split the users, their held-out sets make up the validation_fraction holdout), then once
    on everything."""
    X, _ = planted(np.random.default_rng(10), n_users=150, n_items=60)
    Rec = _recording(EASE)
    Blend([Rec(l2=10.0), ItemKNN(k=20)], cv=3, random_state=1).fit(X)
    *folds, final = Rec.fits
    assert len(folds) == 3 and (final != X).nnz == 0
    _, val = evaluation.random_holdout(X, 0.2, min_items=2, random_state=np.random.default_rng(1))
    left_out = [X - F for F in folds]
    for L in left_out:
        L.eliminate_zeros()
        assert L.min() >= 0 and (L.multiply(val) != L).nnz == 0  # only held-out interactions are left out
    fold_users = [set(np.flatnonzero(np.diff(L.indptr))) for L in left_out]
    assert all(fold_users) and sum(map(len, fold_users)) == len(set.union(*fold_users))  # disjoint folds
    assert (sum(left_out) != val).nnz == 0  # together: the whole holdout, once


def test_cross_fitted_validation_scores_match_evaluate():
    """validation_ndcg_ and member_validation_ndcg_ are the NDCG@10 of every validation user, each
    scored by the members fit without their fold's held-out interactions (cohortrec.evaluation)."""
    X, _ = planted(np.random.default_rng(11), n_users=160, n_items=60)
    Rec = _recording(EASE)
    b = Blend([Rec(l2=10.0), ItemKNN(k=20)], cv=4, random_state=2, min_gain_se=0.0).fit(X)
    per_weights = {"blend": b.weights_, "EASE": [1.0, 0.0], "ItemKNN": [0.0, 1.0]}
    values = {name: [] for name in per_weights}
    for F in Rec.fits[:-1]:
        held = X - F
        held.eliminate_zeros()
        members = [EASE(l2=10.0).fit(F), ItemKNN(k=20).fit(F)]
        for name, w in per_weights.items():
            frame = evaluation.evaluate(Blend(members, weights=w, prefit=True, normalize=b.normalize_).fit(F), F,
                                        held, k=10, per_user=True)
            values[name].extend(frame.query("metric == 'ndcg'")["value"])
    assert len(values["blend"]) == len(set().union(*[np.flatnonzero(np.diff((X - F).indptr))
                                                     for F in Rec.fits[:-1]]))
    assert b.validation_ndcg_ == pytest.approx(np.mean(values["blend"]), abs=1e-9)
    np.testing.assert_allclose(b.member_validation_ndcg_, [np.mean(values["EASE"]), np.mean(values["ItemKNN"])],
                               atol=1e-9)


def test_one_fold_is_a_single_holdout():
    """cv=1 holds out every user's validation interactions at once: the weights found by passing that
    holdout as ``validation``."""
    X, _ = planted(np.random.default_rng(12), n_users=150, n_items=60)
    members = [EASE(l2=10.0), ItemKNN(k=20), UserKNN(k=10)]
    one = Blend(members, cv=1, random_state=3, min_gain_se=0.0).fit(X)
    train, val = evaluation.random_holdout(X, 0.2, min_items=2, random_state=3)
    given_split = Blend(members, min_gain_se=0.0).fit(train, validation=val)
    np.testing.assert_array_equal(one.weights_, given_split.weights_)
    assert one.validation_ndcg_ == given_split.validation_ndcg_


def test_more_folds_than_users_is_leave_one_user_out():
    """cv above the number of users puts every user in a fold of their own (and fits no empty fold)."""
    X, _ = planted(np.random.default_rng(14), n_users=30, n_items=60)
    Rec = _recording(ItemKNN)
    huge = Blend([Rec(k=10), Popularity()], cv=10**12, random_state=5).fit(X)
    n_fits = len(Rec.fits)
    per_user = Blend([ItemKNN(k=10), Popularity()], cv=30, random_state=5).fit(X)
    np.testing.assert_array_equal(huge.weights_, per_user.weights_)
    assert huge.validation_ndcg_ == per_user.validation_ndcg_
    users_with_validation = len(np.flatnonzero(np.diff(
        evaluation.random_holdout(X, 0.2, min_items=2, random_state=np.random.default_rng(5))[1].indptr)))
    assert n_fits == users_with_validation + 1  # one fit per user holding validation items, then the refit


def test_auto_normalisation_keeps_the_better_search():
    """normalize="auto" searches with rank and with score on the same validation lists and keeps the
    one with the higher validation NDCG (the weights and scores of that search)."""
    X, _ = planted(np.random.default_rng(13), n_users=150, n_items=60)
    members = [EASE(l2=10.0), ItemKNN(k=20), UserKNN(k=10)]
    found = {how: Blend(members, normalize=how, random_state=4, min_gain_se=0.0).fit(X) for how in ("rank", "score")}
    auto = Blend(members, random_state=4, min_gain_se=0.0).fit(X)  # "auto" is the default
    better = max(("rank", "score"), key=lambda h: (found[h].validation_ndcg_, h == "rank"))
    assert auto.normalize_ == better and found["rank"].normalize_ == "rank"
    np.testing.assert_array_equal(auto.weights_, found[better].weights_)
    assert auto.validation_ndcg_ == found[better].validation_ndcg_
    np.testing.assert_array_equal(auto.recommend(np.arange(20), X[:20], N=5)[0],
                                  found[better].recommend(np.arange(20), X[:20], N=5)[0])
    fixed = Blend(members, normalize="auto", weights=[1, 1, 1]).fit(X)
    assert fixed.normalize_ == "rank"


def test_validation_argument_and_prefit():
    rng = np.random.default_rng(7)
    X, _ = planted(rng)
    train, val = evaluation.random_holdout(X, 0.2, random_state=0)
    ease = EASE(l2=10.0)
    b = Blend([ease, ItemKNN(k=20)]).fit(train, validation=val)
    assert getattr(ease, "user_items_", None) is None  # templates are never fitted
    assert b.models_[0].user_items_.nnz == train.nnz
    fitted = [EASE(l2=10.0).fit(train), ItemKNN(k=20).fit(train)]
    p = Blend(fitted, prefit=True).fit(train, validation=val)
    assert p.models_[0] is fitted[0]
    np.testing.assert_allclose(p.weights_, b.weights_)
    with pytest.raises(ValueError, match="prefit=True needs"):
        Blend(fitted, prefit=True).fit(train)
    with pytest.raises(ValueError, match="validation must have"):
        Blend([EASE()]).fit(train, validation=val[:, :5])


def test_group_inputs_and_implicit_members():
    rng = np.random.default_rng(8)
    X, _ = planted(rng)
    groups = GroupRecommender(n_groups=3, k=20, blend=1.0, random_state=0)  # group popularity only
    b = Blend([EASE(l2=10.0), groups], random_state=0).fit(X)
    ids, _ = b.recommend(np.arange(10), X[:10], N=5)
    assert ids.shape == (10, 5)
    ials = pytest.importorskip("implicit.nearest_neighbours")
    cos = ials.CosineRecommender(K=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cos.fit(X, show_progress=False)
    with pytest.raises(TypeError, match="prefit=True"):
        Blend([cos]).fit(X)
    b = Blend([EASE(l2=10.0).fit(X), cos], prefit=True, weights=[1, 1]).fit(X)
    assert b.recommend(np.arange(5), X[:5], N=4)[0].shape == (5, 4)
    with pytest.raises(TypeError, match="not a cohortrec model"):
        b.save(b"x")  # checked before anything is written


def test_empty_validation_gives_equal_weights():
    X = sp.csr_matrix(np.eye(6, dtype=np.float32))  # one item per user: nothing to hold out
    with pytest.warns(RecommenderWarning, match="equal weights"):
        b = Blend([EASE(l2=1.0), Popularity()]).fit(X)
    np.testing.assert_allclose(b.weights_, [0.5, 0.5])


def test_save_load_roundtrip(tmp_path):
    rng = np.random.default_rng(9)
    X = random_interactions(rng)
    b = Blend([EASE(l2=10.0), ALS(factors=4, iterations=3, random_state=0)], random_state=0,
              normalize="score").fit(X)
    b.save(tmp_path / "blend")
    loaded = load_model(tmp_path / "blend.npz")
    assert isinstance(loaded, Blend) and [type(m) for m in loaded.models_] == [EASE, ALS]
    np.testing.assert_array_equal(loaded.weights_, b.weights_)
    assert loaded.validation_ndcg_ == pytest.approx(b.validation_ndcg_)
    assert loaded.normalize_ == "score"
    a1, s1 = b.recommend(np.arange(60), X, N=7)
    a2, s2 = loaded.recommend(np.arange(60), X, N=7)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_allclose(s1, s2)


@pytest.mark.parametrize("kw, exc, match", [
    ({"models": []}, ValueError, "non-empty"),
    ({"models": None}, ValueError, "non-empty"),
    ({"models": [object()]}, TypeError, "recommend"),
    ({"normalize": "zscore"}, ValueError, "normalize"),
    ({"weights": [1.0]}, ValueError, "one weight per model"),
    ({"weights": [1.0, -1.0]}, ValueError, ">= 0"),
    ({"weights": [0.0, 0.0]}, ValueError, "not all 0"),
    ({"n_candidates": 0}, ValueError, "n_candidates"),
    ({"k": 0}, ValueError, "k must"),
    ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
    ({"weight_grid": [-1.0]}, ValueError, "weight_grid"),
    ({"min_gain_se": -0.5}, ValueError, "min_gain_se"),
    ({"cv": 0}, ValueError, "cv"),
    ({"cv": 2.5}, TypeError, "cv"),
])
def test_parameter_errors(kw, exc, match):
    X = random_interactions(np.random.default_rng(0))
    kw.setdefault("models", [EASE(l2=10.0), ItemKNN(k=10)])
    with pytest.raises(exc, match=match):
        Blend(**kw).fit(X)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(how=st.sampled_from(test_fuzz.CORRUPTIONS), seed=st.integers(0, 2**16))
def test_corrupt_inputs_never_crash(how, seed):
    rng = np.random.default_rng(seed)
    C = test_fuzz.corrupt(test_fuzz.valid_csr(seed, 30, 9), how, rng)
    test_fuzz.run_allowed(Blend([EASE(l2=1.0), Popularity()], random_state=0).fit, C)
    X = test_fuzz.valid_csr(seed, 30, 9)
    b = Blend([EASE(l2=1.0), Popularity()], weights=[1, 1]).fit(X)
    rows = test_fuzz.corrupt(X[:5], how, rng)
    for N in (0, 3, 10**12):
        test_fuzz.run_allowed(b.recommend, np.arange(5), rows, N=N)
        test_fuzz.run_allowed(b.fit, X, validation=rows)
