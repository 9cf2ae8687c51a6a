"""The native paths of cohortrec.evaluation against plain Python references.

* ``hits_matrix`` (native marker kernel) against a per-user set lookup and
  against the former vectorised (user, item) key search, on random lists
  with padding, negative ids, duplicates and users without test items.
* ``evaluate`` (hits, per-user metrics, coverage / mean popularity from the
  native item counts) against a per-user Python loop of every metric.
* ``Popularity.recommend`` (native walk of the global ranking) against the
  ranking filtered in Python.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cohortrec import _core
from cohortrec.evaluation import evaluate, hits_matrix, random_holdout, ranking_metrics
from cohortrec.evaluation._evaluate import _list_metrics_nested
from cohortrec.evaluation._metrics import _per_user_metrics_native, per_user_metrics
from cohortrec.recommenders import Popularity


def random_lists(rng: np.random.Generator, u: int, K: int, n_items: int, dtype=np.int64) -> np.ndarray:
    """Random (u, K) lists with -1 padding, other negative ids and repeated ids."""
    rec = rng.integers(0, max(n_items, 1), size=(u, K)).astype(dtype)
    if n_items == 0:
        rec[:] = -1
    pad = rng.random((u, K)) < 0.15
    rec[pad] = -1
    rec[rng.random((u, K)) < 0.03] = -7  # any negative id is "no item"
    return rec


def random_test(rng: np.random.Generator, u: int, n_items: int, density: float,
                index_dtype=np.int32) -> sp.csr_matrix:
    T = sp.random(u, n_items, density=density, format="csr", dtype=np.float64,
                  random_state=np.random.RandomState(rng.integers(2**31)))
    T.data[:] = rng.choice([1.0, 2.5, 0.0], size=T.nnz)  # explicit zeros are stored items too
    if u:
        T = sp.csr_matrix(T.multiply((rng.random(u) > 0.2)[:, None]))  # users without test items
    T.indices = T.indices.astype(index_dtype)
    return T


def hits_reference(rec: np.ndarray, test: sp.csr_matrix) -> np.ndarray:
    T = sp.csr_matrix(test)
    out = np.zeros(rec.shape, dtype=bool)
    for r in range(rec.shape[0]):
        items = set(T.indices[T.indptr[r]:T.indptr[r + 1]].tolist())
        out[r] = [int(i) >= 0 and int(i) in items for i in rec[r]]
    return out


def hits_key_search(rec: np.ndarray, test: sp.csr_matrix) -> np.ndarray:
    """The former vectorised implementation (binary search of (user, item) keys)."""
    u, K = rec.shape
    T = sp.csr_matrix(test, copy=True)
    T.sum_duplicates()
    m = np.int64(max(T.shape[1], 1))
    tkeys = np.repeat(np.arange(u, dtype=np.int64), np.diff(T.indptr)) * m + T.indices
    rkeys = np.arange(u, dtype=np.int64)[:, None] * m + rec
    pos = np.minimum(np.searchsorted(tkeys, rkeys), max(len(tkeys) - 1, 0))
    hit = (tkeys[pos] == rkeys) if len(tkeys) else np.zeros((u, K), dtype=bool)
    return hit & (rec >= 0)


@pytest.mark.parametrize("u,K,n_items", [(0, 5, 10), (1, 1, 1), (40, 7, 12), (300, 50, 30),
                                         (25, 3, 0), (2000, 20, 500)])
@pytest.mark.parametrize("rec_dtype", [np.int32, np.int64, np.int16, np.uint32])
def test_hits_matrix_matches_references(rng, u, K, n_items, rec_dtype, index_dtype):
    rec = random_lists(rng, u, K, n_items)
    if np.dtype(rec_dtype).kind == "u":  # unsigned ids: no padding
        if n_items == 0:
            pytest.skip("unsigned ids cannot express 'no item'")
        rec[rec < 0] = 0
    rec = rec.astype(rec_dtype)
    test = random_test(rng, u, n_items, 0.2, index_dtype)
    got = hits_matrix(rec, test)
    assert got.dtype == np.bool_ and got.shape == (u, K)
    np.testing.assert_array_equal(got, hits_reference(rec, test))
    if n_items:
        np.testing.assert_array_equal(got, hits_key_search(rec.astype(np.int64), test))


@pytest.mark.parametrize("ks", [(1,), (2, 5), (3, 7, 50), (100,)])
@pytest.mark.parametrize("rec_dtype", [np.int32, np.int64])
def test_fused_per_user_metrics_identical(rng, ks, rec_dtype, index_dtype):
    """The one-pass native statistics give bit-identical metrics to hits + per_user_metrics."""
    u, K, n_items = 700, 9, 25
    rec = random_lists(rng, u, K, n_items, dtype=rec_dtype)
    test = random_test(rng, 900, n_items, 0.25, index_dtype)
    rows = rng.choice(900, size=u, replace=False)
    sub = test[rows]
    want = per_user_metrics(hits_matrix(rec, sub), np.diff(sub.indptr), ks)
    got = _per_user_metrics_native(rec, rows, test, ks, n_threads=2)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=str(key))


def test_ranking_metrics_catalogue_larger_than_test_columns():
    """ids beyond test's columns (n_items > test.shape[1]) are misses, not hits of the next user."""
    test = sp.csr_matrix((np.ones(2), ([0, 1], [0, 1])), shape=(2, 3))
    rec = np.array([[4, 0], [2, 1]])  # 4 = 1 * 3 + 1: the former key search took it for user 1's item 1
    d = ranking_metrics(rec, test, k=2, n_items=6).set_index("metric")["value"]
    assert d["hit_rate"] == 1.0 and d["recall"] == 1.0 and d["precision"] == 0.5
    assert d["map"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="n_items=6"):
        ranking_metrics(np.array([[6, 0], [2, 1]]), test, k=2, n_items=6)


def test_hits_matrix_unsorted_and_duplicate_test_entries():
    test = sp.csr_matrix((np.ones(5), np.array([4, 1, 4, 0, 2]), np.array([0, 3, 5])), shape=(2, 6))
    assert not test.has_canonical_format
    rec = np.array([[4, 1, 0, -1], [2, 0, 4, 5]])
    np.testing.assert_array_equal(hits_matrix(rec, test),
                                  [[True, True, False, False], [True, True, False, False]])


def test_hits_matrix_errors():
    test = sp.csr_matrix((2, 5))
    with pytest.raises(ValueError, match="n_items=5"):
        hits_matrix(np.array([[0, 5], [1, 2]]), test)
    with pytest.raises(ValueError, match="one row per"):
        hits_matrix(np.zeros((3, 2), int), test)
    with pytest.raises(ValueError, match="2-D"):
        hits_matrix(np.zeros(3, int), test)
    with pytest.raises(TypeError, match="integer"):
        hits_matrix(np.zeros((2, 2)), test)
    with pytest.raises(TypeError, match="scipy.sparse"):
        hits_matrix(np.zeros((2, 2), int), np.zeros((2, 5)))


def test_native_kernels_reject_out_of_range_ids():
    """The bindings guard direct callers too (Python validates first)."""
    rec = np.array([[0, 9]], dtype=np.int32)
    ptr = np.array([0, 1], dtype=np.int64)
    idx = np.array([1], dtype=np.int32)
    with pytest.raises(IndexError):
        _core.ranking_hits(rec, np.zeros(1, np.int64), ptr, idx, 5, np.empty((1, 2), bool), 1)
    with pytest.raises(IndexError):
        _core.ranking_hits(rec[:, :1], np.array([3], np.int64), ptr, idx, 5, np.empty((1, 1), bool), 1)
    stats = [np.empty((1, 1)) for _ in range(3)]
    with pytest.raises(IndexError):
        _core.ranking_hit_stats(rec, np.zeros(1, np.int64), ptr, idx, 5, np.array([2], np.int64),
                                np.ones(2), *stats, 1)
    with pytest.raises(ValueError):
        _core.ranking_hit_stats(rec, np.zeros(1, np.int64), ptr, idx, 10, np.array([2, 2], np.int64),
                                np.ones(2), *[np.empty((2, 1)) for _ in range(3)], 1)
    with pytest.raises(IndexError):
        _core.item_counts(rec, np.array([0, 2], np.int64), 5, np.zeros((1, 5), np.int64), 1)
    with pytest.raises(ValueError):
        _core.item_counts(rec, np.array([0, 3], np.int64), 10, np.zeros((1, 10), np.int64), 1)


def metrics_reference(rec: np.ndarray, test: sp.csr_matrix, ks, pop: np.ndarray) -> dict:
    """Every metric by a per-user Python loop (the definitions in ranking_metrics' notes)."""
    T = sp.csr_matrix(test)
    n_items = T.shape[1]
    users = [r for r in range(T.shape[0]) if T.indptr[r + 1] > T.indptr[r]]
    out = {}
    for k in ks:
        vals = {m: [] for m in ("precision", "recall", "recall_capped", "ndcg", "map", "hit_rate")}
        listed = []
        for r in users:
            truth = set(T.indices[T.indptr[r]:T.indptr[r + 1]].tolist())
            top = [int(i) for i in rec[r, :k]]
            listed += [i for i in top if i >= 0]
            hits = [i >= 0 and i in truth for i in top]
            h = sum(hits)
            cap = min(k, len(truth))
            dcg = sum(1 / np.log2(p + 2) for p, x in enumerate(hits) if x)
            idcg = sum(1 / np.log2(p + 2) for p in range(cap))
            ap = sum(sum(hits[:p + 1]) / (p + 1) for p, x in enumerate(hits) if x)
            vals["precision"].append(h / k)
            vals["recall"].append(h / len(truth))
            vals["recall_capped"].append(h / cap)
            vals["ndcg"].append(dcg / idcg)
            vals["map"].append(ap / cap)
            vals["hit_rate"].append(float(h > 0))
        for m, v in vals.items():
            out[(m, k)] = float(np.mean(v)) if v else float("nan")
        out[("coverage", k)] = len(set(listed)) / n_items
        out[("mean_popularity", k)] = float(np.mean(pop[listed])) if listed else float("nan")
    return out


class FixedModel:
    def __init__(self, lists: np.ndarray):
        self.lists = lists

    def recommend(self, userid, user_items, N=10, filter_already_liked_items=True,
                  recalculate_user=False, **kw):
        ids = self.lists[np.asarray(userid)][:, :N]
        return ids, np.zeros(ids.shape, dtype=np.float32)


@pytest.mark.parametrize("ks", [(1,), (3, 10), (5, 40, 200)])
def test_evaluate_matches_python_reference(rng, ks):
    """Includes K larger than n_items (lists narrower than k) and -1 padded lists."""
    u, n_items = 150, 60
    X = sp.random(u, n_items, density=0.15, format="csr", dtype=np.float32,
                  random_state=np.random.RandomState(5))
    X.data[:] = 1
    train, test = random_holdout(X, 0.3, random_state=1)
    lists = random_lists(rng, u, min(max(ks), n_items), n_items)
    lists[lists < 0] = -1
    pop = np.bincount(train.indices, minlength=n_items) / u
    got = evaluate(FixedModel(lists), train, test, k=ks, batch_size=17).set_index(["metric", "k"])["value"]
    want = metrics_reference(lists, test, ks, pop)
    for key, v in want.items():
        assert got[key] == pytest.approx(v, rel=1e-12, abs=1e-15), key
    # and the ranking_metrics path agrees with evaluate
    ref = ranking_metrics(lists, test, k=ks, item_popularity=pop).set_index(["metric", "k"])["value"]
    for key in want:
        assert got[key] == pytest.approx(ref[key], rel=1e-12), key


@pytest.mark.parametrize("cuts", [[0, 0], [0, 3], [0, 1, 4, 9], [0, 9, 9]])
def test_item_counts_and_list_metrics(rng, cuts):
    rec = random_lists(rng, 500, 9, 40, dtype=np.int32)
    counts = np.zeros((len(cuts) - 1, 40), dtype=np.int64)
    _core.item_counts(rec, np.array(cuts, dtype=np.int64), 40, counts, 2)
    for b in range(len(cuts) - 1):
        block = rec[:, cuts[b]:cuts[b + 1]]
        np.testing.assert_array_equal(counts[b], np.bincount(block[block >= 0], minlength=40))
    pop = rng.random(40)
    got = _list_metrics_nested(rec, (2, 5, 9, 30), 40, pop)
    for k, (cov, mp) in got.items():
        items = rec[:, :k][rec[:, :k] >= 0]
        assert cov == len(set(items.tolist())) / 40
        assert mp == pytest.approx(pop[items].mean(), rel=1e-12)


def test_item_counts_same_for_any_thread_count(rng):
    rec = random_lists(rng, 20000, 12, 300, dtype=np.int64)
    cuts = np.array([0, 5, 12], dtype=np.int64)
    a = np.zeros((2, 300), np.int64)
    b = np.zeros((2, 300), np.int64)
    _core.item_counts(rec, cuts, 300, a, 1)
    _core.item_counts(rec, cuts, 300, b, 2)
    np.testing.assert_array_equal(a, b)


def popularity_reference(model: Popularity, liked: sp.csr_matrix, N: int, filter_items=None, items=None):
    pop = model.item_popularity_
    order = [int(i) for i in np.lexsort((np.arange(pop.size), -pop)) if pop[i] > 0]
    if items is not None:
        order = [i for i in order if i in set(items)]
    if filter_items is not None:
        order = [i for i in order if i not in set(filter_items)]
    width = min(N, model.n_items_ if items is None and filter_items is None
                else (len(items) if items is not None else model.n_items_ - len(set(filter_items))))
    ids = np.full((liked.shape[0], width), -1)
    for r in range(liked.shape[0]):
        mine = set(liked.indices[liked.indptr[r]:liked.indptr[r + 1]].tolist())
        row = [i for i in order if i not in mine][:width]
        ids[r, :len(row)] = row
    return ids


@pytest.mark.parametrize("N", [1, 5, 30, 500])
def test_popularity_recommend_matches_python_reference(rng, N):
    X = sp.random(120, 30, density=0.2, format="csr", dtype=np.float32,
                  random_state=np.random.RandomState(8))
    X.data[:] = rng.integers(1, 4, size=X.nnz)
    D = X.toarray()
    D[3] = 1  # a user who has every item: nothing left to recommend
    D[:, 7] = 0  # an item nobody has: never recommended
    X = sp.csr_matrix(D)
    model = Popularity(batch_size=16).fit(X)
    users = np.arange(120)
    cases = [{}, {"filter_items": [0, 1, 2, 29]}, {"items": [5, 6, 7, 8, 9, 10, 11]}]
    for kw in cases:
        ids, scores = model.recommend(users, X, N=N, **kw)
        want = popularity_reference(model, X, N, **kw)
        np.testing.assert_array_equal(ids, want)
        assert ids.dtype == np.int32 and scores.dtype == np.float32
        ok = ids >= 0
        np.testing.assert_array_equal(scores[ok], model.item_popularity_[ids[ok]])
        assert np.isneginf(scores[~ok]).all()
        assert not ok[3].any()
    ids, _ = model.recommend(users, X, N=N, filter_already_liked_items=False)
    pop = model.item_popularity_
    order = [int(i) for i in np.lexsort((np.arange(pop.size), -pop)) if pop[i] > 0][:N]
    assert (ids[:, :len(order)] == order).all() and (ids[:, len(order):] == -1).all()


def test_ranked_topn_many_tasks_any_thread_count(rng):
    """Enough rows for several tasks: same result on 1 and 2 threads, and as the filtered ranking."""
    u, m, n = 300_000, 40, 3
    order = rng.permutation(m).astype(np.int64)[:30]  # a ranking of 30 of the 40 items
    E = sp.random(u, m, density=0.05, format="csr", random_state=np.random.RandomState(2))
    ptr, idx = E.indptr.astype(np.int64), E.indices.astype(np.int32)
    out = []
    for nt in (1, 2):
        ids = np.full((u, n), -1, dtype=np.int64)
        _core.ranked_topn(order, ptr, idx, u, m, ids, nt)
        out.append(ids)
    np.testing.assert_array_equal(out[0], out[1])
    for r in rng.choice(u, size=200, replace=False):
        mine = set(idx[ptr[r]:ptr[r + 1]].tolist())
        want = [int(i) for i in order if i not in mine][:n]
        assert out[0][r, :len(want)].tolist() == want and (out[0][r, len(want):] == -1).all()
    with pytest.raises(IndexError):
        _core.ranked_topn(np.array([m], np.int64), ptr, idx, u, m, np.full((u, 1), -1, np.int64), 1)
