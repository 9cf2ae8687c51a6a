"""Tests of cohortrec.evaluation: splits, metrics (hand-computed and vs implicit), evaluate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cohortrec.evaluation import (
    METRICS,
    evaluate,
    evaluate_by_group,
    leave_last_out,
    random_holdout,
    ranking_metrics,
    user_holdout,
)
from cohortrec.recommenders import ItemKNN, Popularity, UserKNN


def random_matrix(rng, n_users=200, n_items=60, density=0.1) -> sp.csr_matrix:
    X = sp.random(n_users, n_items, density=density, format="csr", dtype=np.float32,
                  random_state=np.random.RandomState(rng.integers(2**31)))
    X.data[:] = 1.0
    return X


def as_dict(df: pd.DataFrame, k: int) -> dict[str, float]:
    return df[df["k"] == k].set_index("metric")["value"].to_dict()


class FixedModel:
    """A 'model' returning fixed lists (to test the metrics through evaluate)."""

    def __init__(self, lists: np.ndarray):
        self.lists = np.asarray(lists)

    def recommend(self, userid, user_items, N=10, filter_already_liked_items=True,
                  recalculate_user=False, **kw):
        ids = self.lists[np.asarray(userid)][:, :N]
        return ids, -np.arange(ids.shape[1], dtype=np.float32)[None, :].repeat(len(ids), 0)


# ---------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------
def test_random_holdout_partitions(rng):
    X = random_matrix(rng)
    train, test = random_holdout(X, 0.2, min_items=5, random_state=3)
    assert train.shape == test.shape == X.shape
    assert (train + test - X).count_nonzero() == 0
    assert train.multiply(test).nnz == 0
    n = np.diff(X.indptr)
    nt = np.diff(test.indptr)
    expect = np.where(n >= 5, np.clip(np.floor(0.2 * n + 0.5), 1, n - 1), 0)
    np.testing.assert_array_equal(nt, expect)
    again = random_holdout(X, 0.2, min_items=5, random_state=3)[1]
    assert (again != test).nnz == 0
    other = random_holdout(X, 0.2, min_items=5, random_state=4)[1]
    assert (other != test).nnz > 0


def test_random_holdout_keeps_values_and_rejects_bad_args(rng):
    X = random_matrix(rng)
    X.data = np.arange(1, X.nnz + 1, dtype=np.float32)
    train, test = random_holdout(X, 0.5, random_state=0)
    assert sorted(np.concatenate([train.data, test.data])) == sorted(X.data)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            random_holdout(X, bad)
    with pytest.raises(ValueError, match="min_items"):
        random_holdout(X, 0.2, min_items=1)
    with pytest.raises(TypeError, match="scipy.sparse"):
        random_holdout(X.toarray(), 0.2)


def test_leave_last_out_takes_latest(rng):
    X = random_matrix(rng, 50, 30, 0.3)
    T = X.copy()
    T.data = rng.permutation(T.nnz).astype(np.float64)  # distinct times
    train, test = leave_last_out(X, T, n=2, min_items=3)
    assert (train + test - X).count_nonzero() == 0
    for u in range(50):
        items = X[u].indices
        times = T[u].toarray().ravel()[items]
        if len(items) >= 3:
            latest = set(items[np.argsort(times)[-2:]])
            assert set(test[u].indices) == latest
        else:
            assert test[u].nnz == 0
    # same with the times as an array aligned with X.data
    t2 = np.asarray(T[X.nonzero()]).ravel()
    _tr2, te2 = leave_last_out(X, t2, n=2, min_items=3)
    assert (te2 != test).nnz == 0


def test_leave_last_out_ties_and_errors():
    X = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 0, 0, 1]], dtype=np.float32))
    T = sp.csr_matrix(np.array([[5, 5, 1, 0], [2, 0, 0, 1]], dtype=np.float64))
    _, test = leave_last_out(X, T)
    assert test[0].indices.tolist() == [1]  # tie on time 5: the larger item id is later
    assert test[1].indices.tolist() == [0]
    with pytest.raises(ValueError, match="every interaction"):
        leave_last_out(X, sp.csr_matrix(np.array([[5, 5, 0, 0], [2, 0, 0, 1]], dtype=float)))
    with pytest.raises(ValueError, match="shape"):
        leave_last_out(X, np.ones(3))
    with pytest.raises(ValueError, match="n must be"):
        leave_last_out(X, T, n=0)


def test_user_holdout(rng):
    X = random_matrix(rng, 300, 50, 0.15)
    split = user_holdout(X, 0.25, 0.8, min_items=5, random_state=0)
    n = np.diff(X.indptr)
    assert np.all(n[split.test_users] >= 5)
    assert len(split.test_users) == round(0.25 * np.sum(n >= 5))
    assert np.all(np.diff(split.train.indptr)[split.test_users] == 0)
    others = np.setdiff1d(np.arange(300), split.test_users)
    assert (split.train[others] != X[others]).nnz == 0
    held = split.fold_in + split.test
    assert (held[split.test_users] != X[split.test_users]).nnz == 0
    assert held[others].nnz == 0
    nt = np.diff(split.test.indptr)[split.test_users]
    assert np.all(nt == np.clip(np.floor(0.2 * n[split.test_users] + 0.5), 1, None))
    assert len(user_holdout(X, 10, random_state=0).test_users) == 10
    ids = user_holdout(X, np.array([5, 3]), min_items=2).test_users
    assert ids.tolist() == sorted(i for i in (3, 5))
    with pytest.raises(ValueError, match="only"):
        user_holdout(X, 10_000)
    with pytest.raises(ValueError, match="fold_in_fraction"):
        user_holdout(X, 0.2, 1.0)


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------
def test_metrics_hand_computed():
    rec = np.array([[1, 2, 3, 4], [0, 5, -1, -1], [7, 8, 9, 6]])
    test = sp.csr_matrix((np.ones(5), ([0, 0, 0, 1, 1], [2, 4, 9, 5, 6])), shape=(3, 10))
    df = ranking_metrics(rec, test, k=(2, 4), item_popularity=np.arange(10) / 10)
    assert list(df.columns) == ["metric", "k", "value", "n_users"]
    assert set(df["metric"]) == set(METRICS)
    assert (df["n_users"] == 2).all()  # user 2 has no test items
    d4, d2 = as_dict(df, 4), as_dict(df, 2)
    lg = np.log2
    # user 0: hits at ranks 2 and 4 of {2, 4, 9}; user 1: hit at rank 2 of {5, 6}
    u0 = {"precision": 2 / 4, "recall": 2 / 3, "recall_capped": 2 / 3,
          "ndcg": (1 / lg(3) + 1 / lg(5)) / (1 + 1 / lg(3) + 1 / lg(4)),
          "map": (1 / 2 + 2 / 4) / 3, "hit_rate": 1.0}
    u1 = {"precision": 1 / 4, "recall": 1 / 2, "recall_capped": 1 / 2,
          "ndcg": (1 / lg(3)) / (1 + 1 / lg(3)), "map": (1 / 2) / 2, "hit_rate": 1.0}
    for m, v0 in u0.items():
        assert d4[m] == pytest.approx((v0 + u1[m]) / 2), m
    assert d2["precision"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert d2["recall"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert d2["recall_capped"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert d2["map"] == pytest.approx(((1 / 2) / 2 + (1 / 2) / 2) / 2)
    # list-level: users 0 and 1 only
    assert d4["coverage"] == pytest.approx(len({1, 2, 3, 4, 0, 5}) / 10)
    assert d2["coverage"] == pytest.approx(len({1, 2, 0, 5}) / 10)
    assert d4["mean_popularity"] == pytest.approx(np.mean([1, 2, 3, 4, 0, 5]) / 10)
    per = ranking_metrics(rec, test, k=4, per_user=True)
    v = per[(per.metric == "ndcg")].set_index("user")["value"]
    assert v[0] == pytest.approx(u0["ndcg"]) and v[1] == pytest.approx(u1["ndcg"])
    assert 2 not in v.index


def test_metrics_perfect_and_empty_lists():
    rec = np.array([[3, 1, 2], [-1, -1, -1]])
    test = sp.csr_matrix((np.ones(4), ([0, 0, 0, 1], [1, 2, 3, 0])), shape=(2, 5))
    d = as_dict(ranking_metrics(rec, test, k=3), 3)
    assert d["ndcg"] == pytest.approx(0.5) and d["recall"] == pytest.approx(0.5)
    assert d["map"] == pytest.approx(0.5) and d["hit_rate"] == pytest.approx(0.5)


def test_metrics_k_beyond_list_length():
    rec = np.array([[1, 2]])
    test = sp.csr_matrix((np.ones(3), ([0, 0, 0], [1, 5, 6])), shape=(1, 8))
    d = as_dict(ranking_metrics(rec, test, k=5), 5)
    assert d["precision"] == pytest.approx(1 / 5)
    assert d["recall_capped"] == pytest.approx(1 / 3)


def test_metrics_errors():
    test = sp.csr_matrix((2, 5))
    with pytest.raises(ValueError, match="k must"):
        ranking_metrics(np.zeros((2, 3), int), test, k=0)
    with pytest.raises(ValueError, match="one row per"):
        ranking_metrics(np.zeros((3, 3), int), test, k=1)
    with pytest.raises(TypeError, match="integer"):
        ranking_metrics(np.zeros((2, 3)), test, k=1)
    with pytest.raises(ValueError, match="n_items"):
        ranking_metrics(np.full((2, 3), 9), test, k=1)


@pytest.mark.filterwarnings("ignore:Method expects CSR input")  # raised inside implicit's fit
def test_metrics_match_implicit(rng):
    """NDCG, MAP and implicit's micro-averaged 'precision' agree with implicit."""
    iev = pytest.importorskip("implicit.evaluation")
    nn = pytest.importorskip("implicit.nearest_neighbours")
    X = random_matrix(rng, 400, 80, 0.08)
    train, test = random_holdout(X, 0.3, random_state=2)
    model = nn.CosineRecommender(K=20)
    model.fit(train, show_progress=False)
    for K in (5, 20):
        theirs = iev.ranking_metrics_at_k(model, train, test, K=K, show_progress=False)
        ours = as_dict(evaluate(model, train, test, k=K), K)
        assert ours["ndcg"] == pytest.approx(theirs["ndcg"], rel=1e-9)
        assert ours["map"] == pytest.approx(theirs["map"], rel=1e-9)
        per = evaluate(model, train, test, k=K, per_user=True)
        hits = per[per.metric == "precision"]["value"].to_numpy() * K
        nt = np.diff(test.indptr)[per[per.metric == "precision"]["user"].to_numpy()]
        assert hits.sum() / np.minimum(K, nt).sum() == pytest.approx(theirs["precision"], rel=1e-9)


# ---------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------
def test_evaluate_fixed_lists_equals_ranking_metrics(rng):
    X = random_matrix(rng, 50, 20, 0.2)
    train, test = random_holdout(X, 0.3, random_state=0)
    lists = np.array([rng.permutation(20)[:6] for _ in range(50)])
    ours = evaluate(FixedModel(lists), train, test, k=(3, 6), batch_size=7)
    pop = np.bincount(train.indices, minlength=20) / 50
    ref = ranking_metrics(lists, test, k=(3, 6), item_popularity=pop)
    pd.testing.assert_frame_equal(ours, ref)


def test_evaluate_filters_train_items_and_is_batched(rng):
    X = random_matrix(rng)
    train, test = random_holdout(X, 0.2, random_state=0)
    model = ItemKNN(k=20).fit(train)
    timings: dict[str, float] = {}
    a = evaluate(model, train, test, k=(5, 10), batch_size=13, timings=timings)
    b = evaluate(model, train, test, k=(5, 10), batch_size=10_000)
    pd.testing.assert_frame_equal(a, b)
    assert set(timings) == {"recommend_s", "metrics_s"}
    assert a.groupby("k").size().tolist() == [len(METRICS)] * 2


def test_evaluate_users_subset_and_groups(rng):
    X = random_matrix(rng)
    train, test = random_holdout(X, 0.2, random_state=0)
    model = Popularity().fit(train)
    labels = rng.integers(0, 3, size=200)
    by = evaluate_by_group(model, train, test, labels, k=(5, 10))
    assert list(by.columns) == ["group", "metric", "k", "value", "n_users"]
    for g in range(3):
        sub = evaluate(model, train, test, k=(5, 10), users=np.flatnonzero(labels == g))
        mine = by[by.group == g].drop(columns="group").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, sub)
    total = by[(by.metric == "ndcg") & (by.k == 5)]["n_users"].sum()
    assert total == (np.diff(test.indptr) > 0).sum()
    per = evaluate(model, train, test, k=5, groups=labels, per_user=True)
    assert {"group", "user", "metric", "k", "value"} <= set(per.columns)


def test_evaluate_strong_generalisation(rng):
    # two planted taste groups: folding in a held-out user must find its group
    n_users, n_items = 300, 40
    grp = np.arange(n_users) % 2
    rows, cols = [], []
    for u in range(n_users):
        its = rng.choice(np.arange(grp[u] * 20, grp[u] * 20 + 20), size=8, replace=False)
        rows += [u] * 8
        cols += its.tolist()
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    split = user_holdout(X, 0.2, 0.75, min_items=5, random_state=0)
    model = UserKNN(k=20).fit(split.train)
    res = as_dict(evaluate(model, split.fold_in, split.test, k=10, users=split.test_users,
                           recalculate_user=True), 10)
    assert res["hit_rate"] > 0.9
    assert res["coverage"] <= 1.0


def test_evaluate_errors(rng):
    X = random_matrix(rng)
    model = Popularity().fit(X)
    with pytest.raises(ValueError, match="same shape"):
        evaluate(model, X, X[:10])
    with pytest.raises(TypeError, match="scipy.sparse"):
        evaluate(model, X.toarray(), X)
    with pytest.raises(ValueError, match="groups"):
        evaluate(model, X, X, groups=np.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(model, X, X, batch_size=0)
    with pytest.raises(IndexError, match="users"):
        evaluate(model, X, X, users=[500])


def test_evaluate_rejects_out_of_range_ids(rng):
    X = random_matrix(rng, 30, 20, 0.3)
    train, test = random_holdout(X, 0.3, random_state=0)
    with pytest.raises(ValueError, match="item id 99"):
        evaluate(FixedModel(np.full((30, 5), 99)), train, test, k=5)
