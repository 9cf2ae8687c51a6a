"""discover_parquet / cohortrec discover --scheduler on a LocalCluster started by the test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from sklearn.metrics import adjusted_rand_score  # noqa: E402

from cohortrec.datasets import make_shop  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None, silence_logs=40, protocol="tcp://",
                                       host="127.0.0.1")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def shop_folder(tmp_path_factory):
    shop = make_shop(1500, 300, 4, seed=3)
    ev = shop.events[["user_id", "item_id", "timestamp"]].copy()
    folder = tmp_path_factory.mktemp("shop")
    users = ev["user_id"].unique()
    for i, part in enumerate(np.array_split(users, 3)):
        ev[ev["user_id"].isin(part)].to_parquet(folder / f"part-{i}.parquet", index=False)
    ev.iloc[:0].to_parquet(folder / "part-9-empty.parquet", index=False)  # an empty partition
    truth = pd.Series(shop.labels, index=shop.interactions.user_ids)
    return folder, truth


def test_discover_parquet_finds_the_planted_groups(client, shop_folder):
    from cohortrec.distributed_discovery import discover_parquet

    folder, truth = shop_folder
    res = discover_parquet(folder, user="user_id", item="item_id", client=client, n_groups=4,
                           max_train_users=800, random_state=0)
    assert len(res.user_ids) == len(truth) == len(res.labels)
    assert res.encoder_training["n_train_users"] <= 800
    ari = adjusted_rand_score(truth.reindex(res.user_ids).to_numpy(), res.labels)
    assert ari > 0.6
    assert int(res.profile["size"].iloc[:-1].sum()) == len(truth)
    ids, items, scores = client.gather(res.recommend(5)[0])
    assert items.shape == (len(ids), 5) and np.all(np.diff(scores, axis=1) <= 1e-6)


def test_discover_parquet_auto_k(client, shop_folder):
    from cohortrec.distributed_discovery import discover_parquet

    folder, _ = shop_folder
    res = discover_parquet(folder, user="user_id", item="item_id", client=client, n_groups="auto",
                           k_range=range(2, 7), random_state=0)
    assert res.k_curve is not None and 2 <= res.n_groups <= 6


def test_discover_parquet_bad_folders(client, tmp_path):
    from cohortrec.distributed_discovery import discover_parquet

    pd.DataFrame({"user_id": [1, 2], "item_id": [3, 4]}).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"user_id": ["x"], "item_id": [3.5]}).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(ValueError, match="different schemas"):
        discover_parquet(tmp_path, user="user_id", item="item_id", client=client)
    with pytest.raises(ValueError, match="not found"):
        discover_parquet(tmp_path / "a.parquet", user="customer", item="item_id", client=client)


def test_cli_scheduler(client, shop_folder, tmp_path, capsys):
    from cohortrec.cli import main

    folder, truth = shop_folder
    addr = client.scheduler.address
    rc = main(["discover", str(folder), "--scheduler", addr, "--groups", "4", "--encoder", "svd",
               "--out", str(tmp_path / "o")])
    assert rc == 0
    g = pd.read_parquet(tmp_path / "o" / "groups.parquet")
    assert len(g) == len(truth)
    assert adjusted_rand_score(truth.reindex(g["user_id"]).to_numpy(), g["group"]) > 0.6
    doc = json.loads((tmp_path / "o" / "profiles.json").read_text())
    assert doc["n_groups"] == 4 and doc["encoder_training"]["n_users"] == len(truth)
    rec = pd.read_parquet(tmp_path / "o" / "recommendations")
    assert set(rec.columns) >= {"user_id", "rank", "item_id", "score"} and rec["user_id"].nunique() == len(truth)


def test_cli_scheduler_that_does_not_answer(capsys, tmp_path, shop_folder):
    import time

    from cohortrec.cli import main

    folder, _ = shop_folder
    t = time.perf_counter()
    rc = main(["discover", str(folder), "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "2",
               "--out", str(tmp_path / "o")])
    assert rc == 2 and time.perf_counter() - t < 30
    err = capsys.readouterr().err
    assert "scheduler" in err and "tcp://127.0.0.1:9" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------ distributed.KMeans as an estimator
def test_distributed_kmeans_is_sklearn_shaped(client):
    from sklearn.base import clone, is_classifier
    from sklearn.exceptions import NotFittedError

    from cohortrec import distributed as cd

    rng = np.random.default_rng(0)
    centers = rng.normal(scale=6.0, size=(4, 3))
    X = centers[rng.integers(4, size=1200)] + rng.normal(size=(1200, 3))
    blocks = [X[:500], X[500:900], X[900:]]
    km = cd.KMeans(4, random_state=0)
    assert km.get_params()["n_init"] == 1 and km.get_params()["init"] == "k-means||"
    km.set_params(n_init=3, init="k-means++")
    assert km.n_init == 3 and km.init == "k-means++"
    c2 = clone(km)
    assert c2.get_params() == km.get_params() and not is_classifier(c2)
    with pytest.raises(NotFittedError):
        km.predict(blocks)
    fitted = km.fit(blocks)
    assert fitted is km and km.cluster_centers_.shape == (4, 3) and km.labels_.shape == (1200,)
    assert km.n_features_in_ == 3 and km.n_iter_ >= 1
    one = cd.KMeans(4, init="k-means++", n_init=1, random_state=0).fit(blocks)
    assert km.inertia_ <= one.inertia_ + 1e-9  # the best of 3 runs is no worse than the first
    labels = cd.KMeans(4, init="random", n_init=2, random_state=1).fit_predict(blocks)
    assert labels.shape == (1200,) and len(np.unique(labels)) == 4
    arr = cd.KMeans(4, init=centers, n_init=5).fit(blocks)  # an array init runs once
    assert adjusted_rand_score(arr.labels_, km.labels_) > 0.95
    np.testing.assert_array_equal(km.predict(blocks), km.labels_)
    for bad, match in ((dict(n_init=0), "n_init"), (dict(init="nope"), "init must be")):
        with pytest.raises(ValueError, match=match):
            cd.KMeans(4, **bad).fit(blocks)


def test_read_parquet_events_skips_the_shuffle_only_for_whole_user_partitions(client, shop_folder, tmp_path):
    import scipy.sparse as sp

    from cohortrec import distributed as cd

    folder, truth = shop_folder
    auto = cd.read_parquet_events(folder, user="user_id", item="item_id", client=client)
    forced = cd.read_parquet_events(folder, user="user_id", item="item_id", client=client, shuffle=True)

    def as_frame(blocks):
        mats = client.gather(blocks.futures)
        ids = np.concatenate(blocks.row_ids)
        M = sp.vstack(mats, format="csr")
        order = np.argsort(ids)
        return ids[order], M[order]

    ia, Ma = as_frame(auto)
    ib, Mb = as_frame(forced)
    np.testing.assert_array_equal(ia, ib)
    assert (Ma != Mb).nnz == 0 and len(ia) == len(truth)
    # interleaved users across files: the ranges overlap, so the events are shuffled (no user split in two)
    ev = pd.read_parquet(folder)
    ev.iloc[::2].to_parquet(tmp_path / "a.parquet", index=False)
    ev.iloc[1::2].to_parquet(tmp_path / "b.parquet", index=False)
    mixed = cd.read_parquet_events(tmp_path, user="user_id", item="item_id", client=client)
    im, Mm = as_frame(mixed)
    np.testing.assert_array_equal(im, ia)
    assert (Mm != Ma).nnz == 0


def test_refinement_on_the_workers_is_the_one_machine_em(client, shop_folder):
    """The distributed EM from the same K-means labels gives the labels of MultinomialMixture.fit."""
    from cohortrec import distributed as cd
    from cohortrec.cluster import MultinomialMixture
    from cohortrec.discovery import MIXTURE_SETTINGS
    from cohortrec.distributed_discovery import _refine_distributed, discover_parquet

    folder, truth = shop_folder
    plain = discover_parquet(folder, user="user_id", item="item_id", client=client, n_groups=4, refine=None,
                             max_train_users=800, random_state=0)
    blocks = plain.blocks
    sizes = np.array([s[0] for s in blocks.shapes])
    Z = np.zeros((len(plain.labels), 2))
    zblocks = cd.RowBlocks(client.scatter(np.split(Z, np.cumsum(sizes)[:-1]), hash=False),
                           [(int(s), 2) for s in sizes])
    labels, _ = _refine_distributed(client, blocks, zblocks, plain.labels, sizes, 4, MIXTURE_SETTINGS)
    M = sp.vstack(client.gather(list(blocks.futures)), format="csr")
    local = MultinomialMixture(4, **MIXTURE_SETTINGS).fit(M, init=plain.labels)
    assert adjusted_rand_score(local.labels_, labels) > 0.999
    refined = discover_parquet(folder, user="user_id", item="item_id", client=client, n_groups=4,
                               max_train_users=800, random_state=0)
    y = truth.reindex(refined.user_ids).to_numpy()
    assert adjusted_rand_score(y, refined.labels) >= adjusted_rand_score(y, plain.labels) - 0.02
    assert int(refined.profile["size"].iloc[:-1].sum()) == len(truth)
