"""make_world / world_grid: shapes, determinism, and that every axis does what it says, measured."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from cohortrec.datasets import make_world, world_grid


def _event_frame(w) -> pd.DataFrame:
    """One row per event: the user's label, second group and mix weight, the item's category."""
    ev = w.events
    lab = pd.Series(w.labels, index=w.interactions.user_ids)
    users = w.users.set_index("user_id")
    items = w.items.set_index("item_id")
    return pd.DataFrame({
        "user": ev["user_id"].to_numpy(),
        "g": lab.loc[ev["user_id"]].to_numpy(),
        "second": users["second_group"].loc[ev["user_id"]].to_numpy(),
        "cat": items["categories"].loc[ev["item_id"]].to_numpy(),
    })


def _cores(w) -> list[set[str]]:
    return [set(s.split(", ")) for s in w.groups["core_categories"]]


def _category_shares(w) -> np.ndarray:
    df = _event_frame(w)
    return pd.crosstab(df["g"], df["cat"], normalize="index").to_numpy()


def test_shapes_and_frames():
    w = make_world(400, 200, 4, seed=1)
    X, y = w
    assert X.shape == (400, 200) and y.shape == (400,)
    assert set(np.unique(y)) == set(range(4))
    assert list(X.user_ids[:2]) == ["u0000000", "u0000001"] and X.item_ids[0] == "i000000"
    assert {"user_id", "item_id", "timestamp", "event"} <= set(w.events.columns)
    assert set(w.events["event"].unique()) == {"view", "cart", "purchase"}
    assert (w.events["event"] == "view").mean() > 0.8
    assert {"title", "categories", "price"} <= set(X.items.columns)
    assert {"item_id", "title", "categories", "price"} <= set(w.items.columns)
    assert {"user_id", "second_group", "mix_weight"} <= set(w.users.columns)
    assert len(w.groups) == 4 and {"group", "share", "core_categories"} <= set(w.groups.columns)
    assert (np.diff(X.matrix.indptr) > 0).all()
    # matrix follows make_shop's conventions: event-type weighted (view 1, cart 3, purchase 5)
    ev = w.events
    u0 = ev[ev["user_id"] == "u0000000"]
    wts = u0["event"].map({"view": 1.0, "cart": 3.0, "purchase": 5.0}).astype(float)
    assert X.matrix[0].sum() == pytest.approx(wts.sum())


def test_deterministic_by_seed():
    a = make_world(300, 120, 5, seed=3, mixed=0.2, overlap=0.5)
    b = make_world(300, 120, 5, seed=3, mixed=0.2, overlap=0.5)
    c = make_world(300, 120, 5, seed=4, mixed=0.2, overlap=0.5)
    assert (a.interactions.matrix != b.interactions.matrix).nnz == 0
    np.testing.assert_array_equal(a.labels, b.labels)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert (a.interactions.matrix != c.interactions.matrix).nnz > 0


@pytest.mark.parametrize("noise", [0.0, 0.1, 0.5])
def test_noise_share_of_events_outside_the_taste(noise):
    w = make_world(2000, 600, 8, seed=0, noise=noise)
    df = _event_frame(w)
    cores = _cores(w)
    inside = np.array([c in cores[g] for g, c in zip(df["g"], df["cat"])])
    if noise == 0:
        assert inside.all()
        return
    # a noise event lands in the group's own core by chance with the core's popularity mass
    pop = w.items.groupby("categories")["popularity"].sum()
    core_mass = np.array([pop[list(c)].sum() for c in cores])
    est = (~inside).mean() / (1 - core_mass[df["g"]].mean())
    assert est == pytest.approx(noise, abs=0.05)


def test_overlap_shares_categories_but_groups_stay_distinct():
    sims, own = [], []
    for o in (0.0, 0.5, 1.0):
        w = make_world(2000, 600, 8, seed=0, noise=0.0, overlap=o)
        S = _category_shares(w)
        sim = np.minimum(S[:, None, :], S[None, :, :]).sum(-1)  # histogram intersection of two groups
        np.fill_diagonal(sim, np.nan)
        sims.append(sim)
        own.append(w.groups["own_weight"].to_numpy())
        if o == 0:
            cores = _cores(w)
            assert all(not (cores[g] & cores[h]) for g in range(8) for h in range(g))
    assert np.nanmax(sims[0]) == 0.0
    assert np.nanmean(sims[0]) < np.nanmean(sims[1]) < np.nanmean(sims[2])
    np.testing.assert_allclose(own[2], 0.4)  # 0.3 on the core of each of two neighbours
    # the neighbours share heavily, but no two groups have the same taste
    ring = np.array([sims[2][g, (g + 1) % 8] for g in range(8)])
    assert ring.min() > 0.4 and np.nanmax(sims[2]) < 0.85


@pytest.mark.parametrize("imbalance", [1.0, 3.0, 10.0])
def test_imbalance_is_the_largest_over_smallest_group(imbalance):
    w = make_world(2000, 300, 8, seed=0, imbalance=imbalance)
    sizes = np.bincount(w.labels, minlength=8)
    assert sizes.max() / sizes.min() == pytest.approx(imbalance, rel=0.3)
    np.testing.assert_array_equal(sizes, w.groups["size"].to_numpy())


def test_activity_clipped_and_skew_grows_with_sigma():
    skews = []
    for sigma in (0.5, 1.0, 1.5):
        w = make_world(3000, 300, 4, seed=0, activity_sigma=sigma, min_events=3, max_events=500, mean_events=20)
        n = w.events.groupby("user_id", sort=True).size().to_numpy()
        np.testing.assert_array_equal(n, w.users["n_events"].to_numpy())
        assert n.min() >= 3 and n.max() <= 500
        assert n.mean() == pytest.approx(20, rel=0.2)
        skews.append(scipy.stats.skew(np.log(n)) + scipy.stats.skew(n))
        if sigma == 1.5:
            assert n.max() == 500 and (n == 3).sum() > 100
    assert skews[0] < skews[1] < skews[2]
    w = make_world(200, 100, 2, seed=0, activity_sigma=0.0, mean_events=12)
    assert (w.users["n_events"] == 12).all()


def test_taste_items_hides_the_groups_from_category_counts():
    tv = {}
    for taste in ("categories", "items"):
        w = make_world(2000, 600, 8, seed=0, noise=0.0, taste=taste)
        S = _category_shares(w)
        tv[taste] = 0.5 * np.abs(S - S.mean(0)).sum(1)  # each group's distance from the average group
    assert tv["categories"].min() > 0.7
    assert tv["items"].max() < 0.1
    # the groups are still there: each draws on its own items
    w = make_world(2000, 600, 8, seed=0, noise=0.0, taste="items")
    A = w.interactions.matrix.tocsr()
    per_group = np.vstack([np.asarray(A[w.labels == g].sum(0)).ravel() > 0 for g in range(8)])
    assert per_group.sum(1).max() <= w.groups["n_taste_items"].max()
    assert (per_group.sum(0) <= 1).mean() > 0.95


def test_mixed_users_share_and_weight():
    w = make_world(2000, 600, 8, seed=0, noise=0.0, mixed=0.3)
    users = w.users
    m = users["mix_weight"].to_numpy() > 0
    assert m.mean() == pytest.approx(0.3, abs=0.005)
    assert users["mix_weight"][m].between(0.3, 0.5).all() and (users["mix_weight"][~m] == 0).all()
    assert (users["second_group"][~m] == -1).all()
    second = users["second_group"].to_numpy()[m]
    assert ((second >= 0) & (second < 8) & (second != w.labels[m])).all()
    # measured: the share of a mixed user's events in the second group's core is its mix weight
    df = _event_frame(w)
    cores = _cores(w)
    df = df[df["second"] >= 0]
    df["in_second"] = [c in cores[s] for s, c in zip(df["second"], df["cat"])]
    got = df.groupby("user")["in_second"].mean()
    want = users.set_index("user_id")["mix_weight"].loc[got.index]
    assert got.mean() == pytest.approx(want.mean(), abs=0.03)
    assert np.corrcoef(got, want)[0, 1] > 0.2
    assert (make_world(300, 100, 4, seed=0).users["mix_weight"] == 0).all()


def test_popularity_flattens_or_steepens_item_counts():
    top = {}
    for p in (0.0, 1.5):
        w = make_world(2000, 600, 8, seed=0, popularity=p)
        c = np.sort(np.bincount(pd.Index(w.items["item_id"]).get_indexer(w.events["item_id"]), minlength=600))
        top[p] = c[-60:].sum() / c.sum()  # share of events on the top 10% of items
    assert top[0.0] < 0.3 and top[1.5] > 0.6  # uniform: only the preferred items stand out


def test_n_groups_range_and_few_categories():
    for k in (1, 4, 40):
        w = make_world(600, 400, k, seed=0)
        assert set(np.unique(w.labels)) == set(range(k))
    w = make_world(600, 200, 8, seed=0, n_categories=4)
    assert w.items["categories"].nunique() == 4
    assert len(set(w.groups["core_categories"])) == 6  # only 6 distinct pairs of 4 categories


def test_world_grid_generates_every_world():
    grid = world_grid(n_users=300, n_items=200, seed=0)
    names = [n for n, _ in grid]
    assert len(names) >= 24 and len(set(names)) == len(names) and names[0] == "base"
    ks = set()
    for name, kw in grid:
        assert kw["n_users"] == 300 and kw["n_items"] == 200 and kw["seed"] == 0, name
        w = make_world(**kw)
        assert w.interactions.shape == (300, 200), name
        ks.add(kw["n_groups"])
    assert {4, 8, 20, 40} <= ks
    kws = dict(grid)
    assert kws["noise50"]["noise"] == 0.5 and kws["k40"]["n_groups"] == 40 and kws["items"]["taste"] == "items"
    assert kws["skew"]["activity_sigma"] == 1.5 and kws["imb10"]["imbalance"] == 10
    assert {"mixed20", "mixed40", "overlap50", "overlap100", "pop0", "pop15", "realistic", "hardest"} <= set(kws)


@pytest.mark.parametrize("name, value", [
    ("n_users", 0), ("n_items", 1.5), ("n_groups", 0), ("n_groups", True), ("noise", 1.0), ("noise", -0.1),
    ("overlap", 1.5), ("imbalance", 0.5), ("imbalance", float("inf")), ("activity_sigma", -1.0),
    ("min_events", 0), ("max_events", 2), ("mean_events", 0.0), ("popularity", -0.5), ("popularity", "high"),
    ("taste", "genres"), ("n_categories", 0), ("n_categories", 500), ("mixed", 1.0), ("mixed", -0.2),
])
def test_bad_arguments_name_themselves(name, value):
    with pytest.raises(ValueError, match=name):
        make_world(**{"n_users": 50, "n_items": 40, "n_groups": 3, "min_events": 3, name: value})


def test_mixed_needs_two_groups():
    with pytest.raises(ValueError, match="mixed"):
        make_world(50, 40, 1, mixed=0.2)
    with pytest.raises(ValueError, match="n_users"):
        world_grid(n_users=0)


@pytest.mark.parametrize("taste", ["categories", "items"])
def test_view_probs_are_the_distribution_the_views_are_drawn_from(taste):
    """Each group's views, and the noise ones, follow ``view_probs``: a chi-square test of the counts per item."""
    w = make_world(3000, 120, 4, seed=2, noise=0.0, taste=taste, mean_events=40)
    P = w.view_probs
    assert P.shape == (5, 120) and np.allclose(P.sum(1), 1) and (P >= 0).all()
    ev = w.events[w.events["event"] == "view"]
    lab = pd.Series(w.labels, index=w.interactions.user_ids).loc[ev["user_id"]].to_numpy()
    col = pd.Index(w.interactions.item_ids).get_indexer(ev["item_id"])
    for g in range(4):
        counts = np.bincount(col[lab == g], minlength=120)
        expected = P[g] * counts.sum()
        ok = expected > 5  # the chi-square approximation needs filled cells; the rest must be (nearly) empty
        assert counts[expected == 0].sum() == 0
        stat = ((counts[ok] - expected[ok]) ** 2 / expected[ok]).sum()
        assert scipy.stats.chi2.sf(stat, ok.sum() - 1) > 1e-4, g
        # a wrong row (another group's) is rejected by the same test: the check can fail
        other = P[(g + 1) % 4] * counts.sum()
        bad = ((counts[ok] - other[ok]) ** 2 / np.maximum(other[ok], 1e-9)).sum()
        assert scipy.stats.chi2.sf(bad, ok.sum() - 1) < 1e-6
    noise_world = make_world(3000, 120, 4, seed=2, noise=0.999, mean_events=40)  # nearly every view is noise
    v = noise_world.events[noise_world.events["event"] == "view"]
    counts = np.bincount(pd.Index(noise_world.interactions.item_ids).get_indexer(v["item_id"]), minlength=120)
    expected = noise_world.view_probs[-1] * counts.sum()
    stat = ((counts - expected) ** 2 / expected).sum()
    assert scipy.stats.chi2.sf(stat, 119) > 1e-4


@pytest.mark.parametrize("kw", [{}, {"noise": 0.5, "overlap": 1.0}, {"mixed": 0.4, "imbalance": 5.0}])
def test_bayes_posterior_of_the_benchmark_is_calibrated(kw):
    """benchmarks/bench_discovery_robustness.py's ``oracle-bayes``: the posterior is exact, so the share of users
    its MAP puts right equals the mean top posterior (within sampling noise), and it beats the supervised
    naive-Bayes oracle fitted on the labels. A posterior of the wrong model (noise ignored) is miscalibrated."""
    import importlib.util
    from pathlib import Path

    from sklearn.metrics import adjusted_rand_score

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_discovery_robustness.py"
    spec = importlib.util.spec_from_file_location("bench_discovery_robustness", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = {"n_users": 3000, "n_items": 400, "n_groups": 6, "seed": 3, **kw}
    w = make_world(**args)
    y = np.asarray(w.labels)
    labels, top = bench._bayes(w, args)
    se = np.sqrt(top.mean() * (1 - top.mean()) / y.size)
    assert abs((labels == y).mean() - top.mean()) < 4 * se + 1e-9
    assert adjusted_rand_score(y, labels) >= adjusted_rand_score(y, bench._oracle(w.interactions, y, 6)) - 0.005
    if kw.get("noise"):
        wrong, top_w = bench._bayes(w, {**args, "noise": 0.05})
        assert abs((wrong == y).mean() - top_w.mean()) > 4 * se
