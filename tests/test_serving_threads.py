"""recommend / assign from many Python threads at once give the serial results.

Each model is fresh (no serving cache built yet) so the threads also race
to build the lazily built serving structures.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp

from cohortrec.datasets import make_shop
from cohortrec.discovery import GroupDiscovery
from cohortrec.recommenders import ALS, EASE, Blend, GroupRecommender, ItemKNN, Popularity, RP3beta, UserKNN

N_THREADS = 6

MODELS = {
    "itemknn": lambda: ItemKNN(k=20),
    "userknn": lambda: UserKNN(k=15),
    "rp3beta": lambda: RP3beta(k=30),
    "ease": lambda: EASE(l2=10.0, min_item_users=2),
    "popularity": lambda: Popularity(),
    "group": lambda: GroupRecommender(n_groups=6, k=15, random_state=0),
    "als": lambda: ALS(factors=8, iterations=3, random_state=0),
    # the blend's server and its members' servers are all built under contention
    "blend": lambda: Blend([EASE(l2=10.0, min_item_users=2), ItemKNN(k=20), ALS(factors=8, iterations=3,
                                                                               random_state=0)],
                           weights=[2.0, 1.0, 1.0], normalize="score"),
}


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    M = sp.random(400, 150, density=0.08, format="csr", dtype=np.float32, random_state=np.random.RandomState(0))
    M.data = (1 + rng.integers(0, 3, M.nnz)).astype(np.float32)
    return M


def _calls(X, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(600):
        u = int(rng.integers(X.shape[0]))
        kind = int(rng.integers(4))
        if kind == 0:
            out.append((u, {}))
        elif kind == 1:
            out.append((u, {"user_items": X[u], "N": 5}))
        elif kind == 2:
            out.append((u, {"filter_items": rng.choice(X.shape[1], 10, replace=False), "N": 7}))
        else:
            out.append((np.array([u, (u + 1) % X.shape[0]]), {"N": 4}))  # small batches too
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recommend_from_threads_equals_serial(X, name):
    calls = _calls(X)
    serial_model = MODELS[name]().fit(X)
    serial = [serial_model.recommend(u, **kw) for u, kw in calls]
    model = MODELS[name]().fit(X)  # fresh: caches are built under contention
    with ThreadPoolExecutor(N_THREADS) as pool:
        got = list(pool.map(lambda c: model.recommend(c[0], **c[1]), calls))
    for (ids_a, sc_a), (ids_b, sc_b) in zip(serial, got):
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_array_equal(sc_a, sc_b)


def test_assign_from_threads_equals_serial(tmp_path):
    shop = make_shop(800, 200, 4, seed=5, mean_events=20)
    X = shop.interactions
    g = GroupDiscovery(n_groups=4, random_state=0).fit(X)
    rng = np.random.default_rng(2)
    lists = [list(X.item_ids[rng.choice(X.n_items, int(rng.integers(1, 15)), replace=False)])
             for _ in range(400)]
    serial = [g.assign_items(items) for items in lists]
    serial_frames = g.assign(X.subset_users(np.arange(100)))
    g.save(tmp_path / "g")
    g2 = GroupDiscovery.load(tmp_path / "g")  # fresh: the item lookup is built under contention
    with ThreadPoolExecutor(N_THREADS) as pool:
        got = list(pool.map(g2.assign_items, lists))
        frames = list(pool.map(lambda s: g2.assign(X.subset_users(np.arange(s, s + 10))), range(0, 100, 10)))
    assert got == serial
    np.testing.assert_array_equal(np.concatenate(frames), serial_frames)

