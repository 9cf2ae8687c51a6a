"""ops.merge_topn: the blend's per-request merge against its reference, edge cases and bad input.

The op must return the reference's lists bit for bit (the same float64
operations in the same order), because Blend's one-user path is tested to
equal its batch path exactly (tests/test_serving.py).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohortrec import ops
from cohortrec.ops import reference


def random_lists(seed: int, n_items: int, n_lists: int, width: int, ties: bool, pad: bool, int32: bool):
    """Ranked lists as members return them: distinct ids best first, scores descending."""
    rng = np.random.default_rng(seed)
    ids, scores = [], []
    for m in range(n_lists):
        length = int(rng.integers(0, min(width, n_items) + 1))
        ids_m = rng.choice(n_items, size=length, replace=False)
        raw = rng.integers(0, 3, length) if ties else rng.normal(size=length) * 10.0 ** rng.integers(-3, 4)
        sc_m = -np.sort(-raw)
        sc_m = sc_m.astype(np.float32 if m % 2 else np.float64)
        if pad and length:
            cut = int(rng.integers(0, length + 1))
            ids_m[cut:] = -1
            if m % 3 == 0:
                sc_m[cut:] = -np.inf
        ids.append(ids_m.astype(np.int32 if int32 else np.int64))
        scores.append(sc_m)
    return ids, scores


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_items=st.integers(1, 60), n_lists=st.integers(1, 4),
       width=st.integers(1, 30), n=st.integers(0, 40), how=st.sampled_from(["rank", "score"]),
       ties=st.booleans(), pad=st.booleans(), int32=st.booleans(), filters=st.booleans())
def test_merge_topn_equals_reference(seed, n_items, n_lists, width, n, how, ties, pad, int32, filters):
    ids, scores = random_lists(seed, n_items, n_lists, width, ties, pad, int32)
    rng = np.random.default_rng(seed + 1)
    weights = rng.choice([0.0, 0.25, 1 / 3, 0.5, 1.0], size=n_lists)
    n = min(n, n_items)
    exclude = rng.choice(n_items, size=int(rng.integers(0, n_items + 1)), replace=False) if filters else None
    keep = rng.random(n_items) < 0.7 if filters else None
    got = ops.merge_topn(ids, scores, weights, how=how, width=width, n=n, n_items=n_items, exclude=exclude, keep=keep)
    want = reference.merge_topn(ids, scores, weights, how=how, width=width, n=n, n_items=n_items,
                                exclude=exclude, keep=keep)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])  # bit for bit, not approximately
    assert got[0].dtype == np.int64 and got[1].dtype == np.float32 and got[0].shape == (n,)


def test_merge_topn_worked_example():
    # list 0 (rank): items 3, 1, 2 -> 1, 2/3, 1/3; list 1: items 1, 4 -> 1, 2/3 (width 3)
    ids = [np.array([3, 1, 2]), np.array([1, 4, -1])]
    scores = [np.array([9.0, 5.0, 1.0]), np.array([2.0, 1.0, np.nan])]
    got_ids, got_sc = ops.merge_topn(ids, scores, np.array([0.6, 0.4]), how="rank", width=3, n=5, n_items=5)
    np.testing.assert_array_equal(got_ids, [1, 3, 4, 2, -1])
    np.testing.assert_allclose(got_sc[:4], [0.6 * 2 / 3 + 0.4, 0.6, 0.4 * 2 / 3, 0.6 / 3], rtol=1e-6)
    assert got_sc[4] == -np.inf
    # score: list 0 spans [1, 9] -> item 1 gets 1/3 + 2/3 * 4/8 = 2/3; list 1 spans [1, 2]
    got_ids, got_sc = ops.merge_topn(ids, scores, np.array([0.6, 0.4]), how="score", width=3, n=2, n_items=5)
    np.testing.assert_array_equal(got_ids, [1, 3])
    np.testing.assert_allclose(got_sc, [0.6 * 2 / 3 + 0.4, 0.6], rtol=1e-6)


def test_merge_topn_ties_go_to_the_smaller_id_and_zero_sums_are_dropped():
    ids = [np.array([7, 2, 5]), np.array([2, 7, 5])]
    scores = [np.ones(3), np.ones(3)]
    got, _ = ops.merge_topn(ids, scores, np.array([0.5, 0.5]), how="rank", width=3, n=3, n_items=8)
    np.testing.assert_array_equal(got, [2, 7, 5])  # 2 and 7 tie at 5/6: the smaller id first
    got, _ = ops.merge_topn(ids, scores, np.array([0.0, 0.0]), how="rank", width=3, n=3, n_items=8)
    np.testing.assert_array_equal(got, [-1, -1, -1])  # no weight behind any item: nothing recommended


def test_merge_topn_equal_scores_normalise_to_one():
    got, sc = ops.merge_topn([np.array([4, 1])], [np.array([2.5, 2.5])], np.array([1.0]), how="score", width=10,
                             n=2, n_items=5)
    np.testing.assert_array_equal(got, [1, 4])
    np.testing.assert_array_equal(sc, [1.0, 1.0])


def test_merge_topn_filters_after_normalising():
    # the excluded best item still sets the list's top: the others keep their values
    ids, scores = [np.array([0, 1, 2])], [np.array([3.0, 2.0, 1.0])]
    kw = dict(how="score", width=3, n=3, n_items=3)
    _, all_sc = ops.merge_topn(ids, scores, np.array([1.0]), **kw)
    got, sc = ops.merge_topn(ids, scores, np.array([1.0]), exclude=np.array([0]), **kw)
    np.testing.assert_array_equal(got, [1, 2, -1])
    np.testing.assert_array_equal(sc[:2], all_sc[1:])
    got, _ = ops.merge_topn(ids, scores, np.array([1.0]), keep=np.array([True, False, True]), **kw)
    np.testing.assert_array_equal(got, [0, 2, -1])


def test_merge_topn_no_lists_and_empty_lists():
    got, sc = ops.merge_topn([], [], np.zeros(0), how="rank", width=5, n=3, n_items=4)
    np.testing.assert_array_equal(got, [-1, -1, -1])
    got, _ = ops.merge_topn([np.zeros(0, np.int64)], [np.zeros(0)], np.ones(1), how="score", width=5, n=0, n_items=4)
    assert got.shape == (0,)


@pytest.mark.parametrize("case, error, match", [
    ("id_too_big", IndexError, r"lists\[1\]: item id 9 out of range"),
    ("lengths", ValueError, "equal length"),
    ("ids_dtype", ValueError, "int32 or int64"),
    ("scores_dtype", ValueError, "float32 or float64"),
    ("not_array", ValueError, "NumPy arrays"),
    ("two_d", ValueError, "1-D"),
    ("strided", ValueError, "contiguous"),
    ("weights_count", ValueError, "one entry per list"),
    ("weights_nan", ValueError, "finite"),
    ("how", ValueError, "how must be"),
    ("width", ValueError, "width must be >= 1"),
    ("n", ValueError, r"n must lie in \[0, n_items\]"),
    ("keep_len", ValueError, "one flag per item"),
    ("keep_dtype", ValueError, "boolean"),
])
def test_merge_topn_bad_input_names_the_argument(case, error, match):
    ids = [np.array([0, 1]), np.array([2, 3])]
    scores = [np.array([2.0, 1.0]), np.array([2.0, 1.0])]
    kw = dict(how="rank", width=2, n=2, n_items=5)
    w = np.array([0.5, 0.5])
    if case == "id_too_big":
        ids[1] = np.array([2, 9])
    elif case == "lengths":
        scores[0] = np.array([1.0])
    elif case == "ids_dtype":
        ids[0] = ids[0].astype(np.float64)
    elif case == "scores_dtype":
        scores[0] = scores[0].astype(np.int64)
    elif case == "not_array":
        ids[0] = [0, 1]
    elif case == "two_d":
        ids[0], scores[0] = ids[0][None, :], scores[0][None, :]
    elif case == "strided":
        ids[0], scores[0] = np.arange(4)[::2], np.arange(4.0)[::2]
    elif case == "weights_count":
        w = np.ones(3)
    elif case == "weights_nan":
        w = np.array([np.nan, 1.0])
    elif case == "how":
        kw["how"] = "borda"
    elif case == "width":
        kw["width"] = 0
    elif case == "n":
        kw["n"] = 10**12
    elif case == "keep_len":
        kw["keep"] = np.ones(4, bool)
    elif case == "keep_dtype":
        kw["keep"] = np.ones(5)
    with pytest.raises(error, match=match):
        ops.merge_topn(ids, scores, w, **kw)


def test_merge_topn_from_threads_equals_serial():
    cases = [random_lists(s, 500, 3, 100, False, True, s % 2 == 0) for s in range(40)]
    w = np.array([0.5, 0.3, 0.2])
    serial = [ops.merge_topn(i, s, w, how="score", width=100, n=10, n_items=500) for i, s in cases]
    out: dict = {}

    def work(t: int) -> None:
        out[t] = [ops.merge_topn(i, s, w, how="score", width=100, n=10, n_items=500) for i, s in cases]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in range(4):
        for (a, b), (c, d) in zip(out[t], serial):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


def test_blend_server_binds_row_servers_only_and_checks_its_arguments():
    import scipy.sparse as sp

    from cohortrec.recommenders import EASE, ItemKNN

    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((30, 12)) < 0.3).astype(np.float32))
    servers = [EASE(l2=1.0).fit(X)._row_server(), ItemKNN(k=4).fit(X)._row_server()]
    kw = dict(how="rank", n_candidates=5, E=X, n_items=12)
    srv = ops.blend_server(servers, np.array([0.5, 0.5]), **kw)
    ids, sc = srv.topn(3, 4, True)
    assert ids.dtype == np.int32 and sc.dtype == np.float32 and ids.size <= 4
    assert not set(ids) & set(X[3].indices)  # filter drops the user's items
    assert srv.topn(30, 4, True) is None and srv.topn(-1, 4, True) is None and srv.topn(0, -1, True) is None
    assert srv.topn(0, 0, True)[0].size == 0
    assert ops.blend_server([srv], np.ones(1), **kw) is None  # a blend's server is not a model's
    with pytest.raises(ValueError, match="one weight per server"):
        ops.blend_server(servers, np.ones(3), **kw)
    with pytest.raises(ValueError, match="how must be"):
        ops.blend_server(servers, np.ones(2), **{**kw, "how": "mean"})
    with pytest.raises(ValueError, match="columns"):
        ops.blend_server(servers, np.ones(2), **{**kw, "E": X[:, :5]})
    with pytest.raises(ValueError, match="n_candidates"):
        ops.blend_server(servers, np.ones(2), **{**kw, "n_candidates": 0})
