"""cohortrec.privacy: minimum-group-size suppression and differentially private group profiles.

The planted data set has three groups (given labels): group 0 (40 users), group 1 (30) and group 2 (3,
always below the threshold), items held by few users in a group (their cells must be suppressed), items
and a category held only by a handful of users ("Secretwidget", "spyware"), and a user attribute value
held by two users ("platinum"). Every published artefact (the profile frame, profiles.json,
profiles.md, report.html) is checked for figures backed by fewer than ``min_group_size`` users, and for
totals from which a suppressed cell could be recovered by subtraction.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from cohortrec.cli._discover import category_shares, profiles_json, profiles_markdown
from cohortrec.discovery import GroupDiscovery
from cohortrec.interactions import Interactions
from cohortrec.privacy import PARTS, Policy
from cohortrec.report import render_report, write_report

K = 5  # min_group_size of the suppression tests
SIZES = (40, 30, 3)
SECRET = ("secretwidget", "spyware", "platinum", "vip", "delta tent")


class _FixedClusterer(BaseEstimator):
    def __init__(self, labels=None) -> None:
        self.labels = labels

    def fit(self, X, y=None):
        self.labels_ = np.asarray(self.labels, dtype=np.int64)
        return self


def _planted() -> tuple[Interactions, np.ndarray]:
    rng = np.random.RandomState(0)
    labels = np.repeat(np.arange(3), SIZES)
    n = labels.size
    items = [("Alpha lamp", "home"), ("Beta kettle", "kitchen"), ("Gamma boots", "fashion"),
             ("Secretwidget one", "spyware"), ("Secretwidget two", "spyware"), ("Delta tent", "outdoor")]
    items += [(f"Omni pen {c}", "office") for c in "ABCDEF"]
    M = np.zeros((n, len(items)))
    g0, g1, g2 = (np.flatnonzero(labels == g) for g in range(3))
    M[g0, 0] = 1                 # Alpha: all of group 0 ...
    M[g1[:3], 0] = 1             # ... and 3 users of group 1 (a suppressed cell)
    M[g1[:20], 1] = 1            # Beta: 20 of group 1, 10 of group 0
    M[g0[:10], 1] = 1
    M[g0[:25], 2] = 1            # Gamma: 25 + 25
    M[g1[5:30], 2] = 1
    M[g0[:2], 3] = M[g0[:2], 4] = 1   # Secretwidgets: 2 users of group 0 and all of group 2
    M[g2, 3] = M[g2, 4] = 1
    M[g2, 5] = 1                 # Delta tent: group 2 and 4 users of group 1
    M[g1[-4:], 5] = 1
    for u in range(n):           # two pens each
        M[u, 6 + rng.choice(6, 2, replace=False)] = 1
    plan = np.array(["basic"] * n, dtype=object)
    plan[g0[:2]] = "platinum"
    plan[g2] = "vip"
    X = Interactions(sp.csr_matrix(M), pd.Index([f"u{i:03d}" for i in range(n)]),
                     pd.Index([f"i{j:02d}" for j in range(len(items))]),
                     users=pd.DataFrame({"plan": plan}, index=[f"u{i:03d}" for i in range(n)]),
                     items=pd.DataFrame({"title": [t for t, _ in items], "categories": [c for _, c in items]},
                                        index=[f"i{j:02d}" for j in range(len(items))]))
    return X, labels


@pytest.fixture(scope="module")
def planted():
    X, labels = _planted()
    gd = GroupDiscovery(clusterer=_FixedClusterer(labels), random_state=0).fit(X)
    assert gd.n_groups_ == 3
    return gd


@pytest.fixture(scope="module")
def shop_gd():
    from cohortrec.datasets import make_shop

    shop = make_shop(300, 80, 3, seed=0)
    return GroupDiscovery(n_groups=3, random_state=0).fit(shop.interactions)


def _true_counts(gd) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(group x item title) distinct users, (group x category) distinct users, from the raw data."""
    X = gd.interactions_
    B = (X.matrix > 0).astype(np.float64).toarray()
    lab = gd.labels_
    titles = X.items["title"].tolist()
    items = pd.DataFrame([B[lab == g].sum(axis=0) for g in range(gd.n_groups_)], columns=titles)
    cats = X.items["categories"].tolist()
    cat_users = pd.DataFrame({c: [(B[lab == g][:, [j for j, cc in enumerate(cats) if cc == c]].sum(axis=1) > 0).sum()
                                  for g in range(gd.n_groups_)] for c in sorted(set(cats))})
    return items, cat_users


def _artefacts(gd, policy, tmp_path) -> dict[str, str]:
    prof = gd.profile(policy=policy) if policy is not None else gd.profile()
    meta = {"data": "planted", "n_users": int(prof.loc["all", "size"]), "n_items": gd.interactions_.n_items,
            "n_groups": len(prof) - 1, "encoder": "svd", "groups_requested": "3"}
    doc = profiles_json(prof, meta, category_shares(prof))
    page = write_report(tmp_path / "report.html", gd, policy=policy, data_name="planted")
    return {"frame": prof.to_string() + repr(prof.to_dict()), "profiles.json": json.dumps(doc),
            "profiles.md": profiles_markdown(prof, meta), "report.html": page.read_text()}


# -------------------------------------------------------------- validation
@pytest.mark.parametrize("kw, err, match", [
    ({"epsilon": 0}, ValueError, "epsilon"), ({"epsilon": -1.0}, ValueError, "epsilon"),
    ({"epsilon": float("nan")}, ValueError, "epsilon"), ({"epsilon": float("inf")}, ValueError, "epsilon"),
    ({"epsilon": True}, TypeError, "epsilon"), ({"epsilon": "1"}, TypeError, "epsilon"),
    ({"min_group_size": 0}, ValueError, "min_group_size"), ({"min_group_size": -3}, ValueError, "min_group_size"),
    ({"min_group_size": 2.5}, TypeError, "min_group_size"), ({"min_group_size": True}, TypeError, "min_group_size"),
    ({"delta": 1.0}, ValueError, "delta"), ({"delta": -1e-9}, ValueError, "delta"),
    ({"bounds": {"n_items": (5, 1)}}, ValueError, "low < high"), ({"bounds": {"n_items": 3}}, ValueError, "pair"),
    ({"bounds": {"n_items": (0, float("inf"))}}, ValueError, "finite"), ({"bounds": [(0, 1)]}, TypeError, "mapping"),
    ({"max_items_per_user": 0}, ValueError, "max_items_per_user"),
    ({"max_interactions_per_user": 0}, ValueError, "max_interactions_per_user"),
    ({"split": {"sizes": 1, "bogus": 1}}, ValueError, "split"), ({"split": {"sizes": -1}}, ValueError, "split"),
    ({"epsilon": 1.0, "split": {"sizes": 0, "categories": 1}}, ValueError, "sizes"),
    ({"random_state": 1.5}, TypeError, "random_state"), ({"random_state": -1}, ValueError, "random_state"),
])
def test_bad_policy_arguments(kw, err, match):
    with pytest.raises(err, match=match):
        Policy(**kw)


def test_bounds_must_contain_the_data_and_name_features(planted):
    with pytest.raises(ValueError, match=r"bounds\['n_items'\].*do not contain the data"):
        planted.profile(policy=Policy(min_group_size=K, bounds={"n_items": (0, 2)}))
    with pytest.raises(ValueError, match="unknown behaviour feature 'spend'"):
        planted.profile(policy=Policy(min_group_size=K, bounds={"spend": (0, 2)}))
    _need_diffprivlib()
    with pytest.raises(ValueError, match="do not contain the data"):
        planted.profile(policy=Policy(min_group_size=K, epsilon=4.0, bounds={"n_items": (3, 4)}))


def test_policy_type_is_checked(planted):
    with pytest.raises(TypeError, match="policy must be a cohortrec.privacy.Policy"):
        planted.profile(policy={"min_group_size": 5})
    with pytest.raises(TypeError, match="policy must be a cohortrec.privacy.Policy"):
        render_report(planted, policy=5)


def test_too_small_epsilon_warns_with_the_expected_error(planted):
    _need_diffprivlib()
    with pytest.warns(UserWarning, match=r"epsilon=0.01 is too small.*expected error of \u00b1\d+"):
        planted.profile(policy=Policy(min_group_size=10, epsilon=0.01))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        planted.profile(policy=Policy(min_group_size=10, epsilon=2.0))  # sizes within +-3.5 users: no warning


# ------------------------------------------------------------- suppression
def test_no_published_figure_from_fewer_than_k_users(planted, tmp_path):
    items, cat_users = _true_counts(planted)
    prof = planted.profile(policy=Policy(min_group_size=K))
    assert list(prof.index) == [0, 1, "all"]  # group 2 (3 users) has no row
    lab = planted.labels_
    plan = planted.interactions_.users["plan"].to_numpy()
    texts = np.asarray([t.lower() for t in planted.interactions_.item_text()], dtype=object)
    for g in (0, 1):
        row = prof.loc[g]
        assert row["size"] == SIZES[g] >= K
        for name, _lift, _sup in row["top_items"]:
            assert items.loc[g, name] >= K, (g, name)
        for name, _lift, _share in row["top_categories"]:
            assert cat_users.loc[g, name] >= K, (g, name)
        for word in row["keywords"]:  # every keyword comes from an item held by >= K users of the group
            assert any(word in t for t in texts[(items.loc[g] >= K).to_numpy()]), (g, word)
        value, _, _ = row["user_plan"]
        assert ((lab == g) & (plan == value)).sum() >= K
    for name, _lift, _sup in prof.loc["all", "top_items"]:
        assert items.loc[[0, 1], name].max() >= K
    assert prof.loc["all", "size"] == SIZES[0] + SIZES[1]  # totals of released groups only
    info = prof.attrs["privacy"]
    assert info["suppressed_groups"] == [2] and info["released_groups"] == [0, 1]
    assert info["spent"] == [0.0, 0.0]


def test_no_artefact_names_a_suppressed_group_item_category_or_value(planted, tmp_path):
    open_ = _artefacts(planted, None, tmp_path / "open")
    # the unprotected artefacts do show them (so this test can fail)
    assert "Secretwidget" in open_["report.html"] and "vip" in open_["profiles.json"]
    assert 'id="group-2"' in open_["report.html"]
    pub = _artefacts(planted, Policy(min_group_size=K), tmp_path / "pub")
    for where, text in pub.items():
        low = text.lower()
        for secret in SECRET:
            assert secret not in low, (where, secret)
    page = pub["report.html"]
    assert 'id="group-2"' not in page and 'id="group-0"' in page and 'id="group-1"' in page
    doc = json.loads(pub["profiles.json"])
    assert [g["group"] for g in doc["groups"]] == [0, 1]
    assert all(g["size"] >= K for g in doc["groups"])
    assert "| 2 |" not in pub["profiles.md"]
    # the report states the policy, what was suppressed and that the model files are private
    sec = page[page.index('id="privacy"'):]
    assert "groups suppressed" in sec and "1 of 3" in sec and "model/" in sec and "private" in sec
    assert f"{SIZES[0] + SIZES[1]:,}" in page[:page.index("<main>")]  # header counts the released users
    assert f"{sum(SIZES):,}</span>" not in page  # the true number of users is not published


def test_differencing_attack_recovers_nothing(planted):
    """A total minus its published parts must not reveal a suppressed cell."""
    def implied_total(prof, name):
        """Users with item ``name`` overall, as implied by a group's (lift, support) and the "all" row's size."""
        for g in prof.index[:-1]:
            for n, lift, sup in prof.loc[g, "top_items"]:
                if n == name:
                    return sup / lift * prof.loc["all", "size"]
        return None

    open_ = planted.profile()
    # without a policy: Alpha lamp is held by all 40 users of group 0 and 3 of group 1, and the published
    # overall share betrays those 3 (the attack works, so the check below is meaningful)
    assert implied_total(open_, "Alpha lamp") - 40 == pytest.approx(3, abs=0.3)
    prof = planted.profile(policy=Policy(min_group_size=K))
    total = implied_total(prof, "Alpha lamp")
    published = sum(sup * prof.loc[g, "size"] for g in (0, 1)
                    for n, _l, sup in prof.loc[g, "top_items"] if n == "Alpha lamp")
    assert total == pytest.approx(published, abs=0.3)  # nothing left over: the suppressed 3 are not in it
    assert prof.loc["all", "size"] == sum(prof.loc[g, "size"] for g in (0, 1))
    # category shares: the overall share of "home" equals the released groups' masses, without group 1's 3
    for g in (0, 1):
        names = [c[0] for c in prof.loc[g, "top_categories"]]
        assert "outdoor" not in names and "spyware" not in names
    # behaviour means: overall mean x released users = sum of group means x sizes (no hidden remainder)
    feats = [c for c in prof.columns if c.endswith("_vs_all")]
    assert feats
    for f in (c[: -len("_vs_all")] for c in feats):
        parts = sum(prof.loc[g, f] * prof.loc[g, "size"] for g in (0, 1))
        assert prof.loc["all", f] * prof.loc["all", "size"] == pytest.approx(parts, rel=1e-9)
    # user attribute shares are among released values: "basic" in group 0 is 38 of the 38 released, so
    # 1 - share does not reveal the 2 platinum users
    value, share, _ = prof.loc[0, "user_plan"]
    assert value == "basic" and share == pytest.approx(1.0)


def test_suppressed_groups_not_on_the_map(shop_gd):
    """Suppression with a threshold between group sizes: the report has no card, bar or legend for them."""
    sizes = np.bincount(shop_gd.labels_)
    k = int(np.sort(sizes)[1])  # the smallest group is suppressed
    small = int(np.argmin(sizes))
    pol = Policy(min_group_size=k)
    page = render_report(shop_gd, policy=pol)
    assert f'id="group-{small}"' not in page
    assert 'id="map"' in page and "Users of suppressed groups are not drawn" in page
    prof = shop_gd.profile(policy=pol)
    assert small not in prof.index and (prof["size"] >= k).all()


# ------------------------------------------------------ differential privacy
def _need_diffprivlib():
    """diffprivlib through cohortrec's import (which copes with diffprivlib 0.6.6 on scikit-learn 1.9);
    skipped only when diffprivlib is not installed (pytest.importorskip would fail on that ImportError)."""
    if importlib.util.find_spec("diffprivlib") is None:
        pytest.skip("diffprivlib is not installed (pip install 'cohortrec[privacy]')")
    from cohortrec.privacy import _diffprivlib

    return _diffprivlib()


@pytest.fixture(scope="module")
def dpl():
    return _need_diffprivlib()


def _clipped_category_mass(gd, C):
    X = gd.interactions_
    Cm, names = X.item_categories()
    B = (X.matrix > 0).astype(np.float64)
    UC = np.asarray((B @ Cm).todense())
    UC *= np.minimum(1.0, C / np.maximum(UC.sum(axis=1, keepdims=True), 1e-300))
    return np.stack([UC[gd.labels_ == g].sum(axis=0) for g in range(gd.n_groups_)]), names


def test_noise_scale_matches_the_mechanisms(planted, dpl):
    """Over many draws on fixed data the noise has mean 0 and the standard deviation the mechanism states."""
    C, eps = 1.0, 2.0
    true_mass, _ = _clipped_category_mass(planted, C)
    bounds = {"n_items": (0.0, 10.0)}
    true_sum = np.array([planted.user_features()["n_items"].to_numpy()[planted.labels_ == g].sum()
                         for g in range(3)])
    dsize, dcat, dsum = [], [], []
    for seed in range(300):
        pol = Policy(min_group_size=1, epsilon=eps, bounds=bounds, max_interactions_per_user=C, random_state=seed)
        rel = pol.release(planted)
        dsize.append(rel.sizes[:2] - np.array(SIZES[:2]))
        keep = true_mass[:2] > 10  # cells far from the clamp at 0
        dcat.append((rel.cats[:2] - true_mass[:2])[keep])
        dsum.append(rel.feature_sums["n_items"].to_numpy()[:2] - true_sum[:2])
    parts = {p["part"]: p for p in rel.info["parts"]}
    assert sum(p["epsilon"] for p in rel.info["parts"]) == pytest.approx(eps)
    w = {p: PARTS[p] for p in ("sizes", "items", "categories", "features")}
    e = {p: eps * v / sum(w.values()) for p, v in w.items()}
    # expected standard deviations from the mechanisms' definitions (not from the code under test)
    pg = math.exp(-e["sizes"])
    expect = {"sizes": math.sqrt(2 * pg) / (1 - pg), "categories": math.sqrt(2) * C / e["categories"],
              "features": math.sqrt(2) * 10.0 / e["features"]}
    for name, draws in (("sizes", dsize), ("categories", dcat), ("features", dsum)):
        d = np.concatenate([np.ravel(x) for x in draws])
        assert parts[name]["noise_std"] == pytest.approx(expect[name], rel=1e-6), name
        assert d.std() == pytest.approx(expect[name], rel=0.12), name
        assert abs(d.mean()) < 4 * expect[name] / math.sqrt(d.size), name
    assert parts["sizes"]["mechanism"] == "Geometric" and parts["categories"]["mechanism"] == "Laplace"
    assert parts["items"]["mechanism"] == "GaussianAnalytic" and parts["items"]["delta"] == pytest.approx(1e-6)
    assert np.allclose(np.concatenate(dsize), np.round(np.concatenate(dsize)))  # geometric: integer counts


def test_fixed_random_state_reproducible_and_one_release_per_policy(planted, dpl):
    a = planted.profile(policy=Policy(min_group_size=K, epsilon=1.0, random_state=7))
    b = planted.profile(policy=Policy(min_group_size=K, epsilon=1.0, random_state=7))
    c = planted.profile(policy=Policy(min_group_size=K, epsilon=1.0, random_state=8))
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["privacy"] == b.attrs["privacy"]
    assert not a[["size"]].equals(c[["size"]]) or a.attrs["privacy"] != c.attrs["privacy"]
    pol = Policy(min_group_size=K, epsilon=1.0)  # secure noise: still one release per policy and model
    p1 = planted.profile(policy=pol)
    p2 = planted.profile(policy=pol, top_n=3)
    assert list(p1["size"]) == list(p2["size"])
    assert pol.spent_ == pytest.approx((1.0, 1e-6))
    page = render_report(planted, policy=pol)
    for g in p1.index[:-1]:
        assert f'{int(p1.loc[g, "size"]):,} users' in page
    other = Policy(min_group_size=K, epsilon=1.0)
    draws = {tuple(other.release(planted).sizes)} | {tuple(Policy(min_group_size=1, epsilon=1.0).release(
        planted).sizes) for _ in range(5)}
    assert len(draws) > 1  # random_state=None draws fresh noise for a new policy


def test_refit_gives_a_new_release(dpl):
    X, labels = _planted()
    pol = Policy(min_group_size=1, epsilon=1.0, random_state=0)
    gd = GroupDiscovery(clusterer=_FixedClusterer(labels), random_state=0).fit(X)
    r1 = pol.release(gd)
    assert pol.release(gd) is r1
    gd.fit(X)  # the same data and groups: the same release
    assert pol.release(gd) is r1
    gd2 = GroupDiscovery(clusterer=_FixedClusterer(np.where(labels == 2, 1, labels)), random_state=0).fit(X)
    assert pol.release(gd2) is not r1


def test_dp_thresholded_release_and_report(planted, dpl, tmp_path):
    pol = Policy(min_group_size=25, epsilon=1.0, bounds={"n_items": (0, 10)}, random_state=0)
    prof = planted.profile(policy=pol)
    info = prof.attrs["privacy"]
    assert 2 in info["suppressed_groups"]  # 3 users: far below the noisy threshold
    assert (prof.drop(index="all")["size"] >= 25).all()
    assert info["spent"] == pytest.approx([1.0, 1e-6])
    assert set(info["expected_error"]) == {str(g) for g in info["released_groups"]}
    for errs in info["expected_error"].values():
        assert errs["size"] > 0 and 0 < errs["category_share"] <= 1 and "mean n_items" in errs
    assert "n_items" in prof.columns and "mean_value" not in prof.columns  # no bounds: not published
    assert info["not_released"]["mean_value"] == "no bounds given"
    assert not any(c.startswith("user_") for c in prof.columns)
    page = write_report(tmp_path / "r.html", planted, policy=pol).read_text()
    sec = page[page.index('id="privacy"'):]
    assert "epsilon spent by this report" in sec and "GaussianAnalytic" in sec and "Geometric" in sec
    mp = page[page.index('id="map"'):page.index('id="groups"')]
    assert "<img" not in mp  # no map of individual users under differential privacy
    for g in info["released_groups"]:
        card = page[page.index(f'id="group-{g}"'):]
        assert "Expected error of the noisy figures" in card[:card.find("</article>")]
    low = page.lower()
    for secret in ("platinum", "vip"):
        assert secret not in low


def test_k_curve_quality_and_evaluation_not_published(shop_gd):
    ev = pd.DataFrame({"model": ["a"], "metric": ["ndcg"], "k": [10], "value": [0.5]})
    page = render_report(shop_gd, policy=Policy(min_group_size=5), evaluation=ev)
    assert 'id="evaluation"' not in page and "silhouette (cosine" not in page
    assert "evaluation table is not published" in page


# --------------------------------------------------------------------- CLI
def test_cli_min_group_size_and_epsilon(tmp_path, dpl):
    from cohortrec.cli import main

    out = tmp_path / "o"
    rc = main(["discover", "--shop-users", "400", "--encoder", "svd", "--groups", "4", "--out", str(out), "-q",
               "--min-group-size", "20", "--epsilon", "2"])
    assert rc == 0
    doc = json.loads((out / "profiles.json").read_text())
    priv = doc["privacy"]
    assert priv["policy"]["min_group_size"] == 20 and priv["policy"]["epsilon"] == 2.0
    assert priv["spent"][0] == pytest.approx(2.0) and not priv["policy"]["seeded"]
    assert all(g["size"] >= 20 for g in doc["groups"])
    assert doc["n_users"] == sum(g["size"] for g in doc["groups"])
    assert "k_curve" not in doc
    md = (out / "profiles.md").read_text()
    assert "## Privacy" in md and "epsilon spent 2" in md
    page = (out / "report.html").read_text()
    assert 'id="privacy"' in page and "epsilon spent by this report" in page
    notice = (out / "model" / "PRIVATE-README.txt").read_text()
    assert notice.startswith("PRIVATE")
    # the report's figures are the ones of profiles.json (one release)
    for g in doc["groups"]:
        assert f'{g["size"]:,} users' in page


def test_cli_rejects_bad_privacy_options(capsys):
    from cohortrec.cli import main

    assert main(["discover", "--epsilon", "0"]) == 2
    assert "--epsilon" in capsys.readouterr().err
    assert main(["discover", "--min-group-size", "0"]) == 2
    assert "--min-group-size" in capsys.readouterr().err
    assert main(["discover", "--epsilon", "nan"]) == 2


def test_cli_suppression_only(tmp_path):
    from cohortrec.cli import main

    out = tmp_path / "o"
    assert main(["discover", "--shop-users", "300", "--encoder", "svd", "--groups", "5", "--out", str(out), "-q",
                 "--min-group-size", "10000"]) == 0  # more than any group: nothing released
    doc = json.loads((out / "profiles.json").read_text())
    assert doc["groups"] == [] and doc["n_users"] == 0
    page = (out / "report.html").read_text()
    assert not re.search(r'id="group-\d+"', page)
    assert (out / "groups.parquet").is_file()  # the owner's files are still written
