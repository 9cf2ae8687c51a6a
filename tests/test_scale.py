"""Scale work: bounded-cost pieces of the discover pipeline (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import silhouette_score

from cohortrec.cluster._auto import cosine_silhouette


@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 120), d=st.integers(1, 6), k=st.integers(2, 8), seed=st.integers(0, 2**31 - 1),
       zero=st.floats(0.0, 0.3))
def test_cosine_silhouette_matches_sklearn(n, d, k, seed, zero):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[rng.random(n) < zero] = 0.0
    lab = rng.integers(0, min(k, n - 1), n)
    if not 2 <= len(np.unique(lab)) <= n - 1:
        return
    assert cosine_silhouette(X, lab) == pytest.approx(silhouette_score(X, lab, metric="cosine"), abs=1e-9)


def test_cosine_silhouette_edge_cases():
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.0, 1.0]])
    assert cosine_silhouette(X, [0, 0, 1, 1, 1]) == pytest.approx(
        silhouette_score(X, [0, 0, 1, 1, 1], metric="cosine"))
    # a singleton cluster scores 0, as in scikit-learn
    assert cosine_silhouette(X, [0, 1, 1, 2, 2]) == pytest.approx(
        silhouette_score(X, [0, 1, 1, 2, 2], metric="cosine"))
    with pytest.raises(ValueError, match="number of labels"):
        cosine_silhouette(X, [0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="one label per row"):
        cosine_silhouette(X, [0, 1])


# ------------------------------------------------------------ GroupRecommender neighbour search
def _shop_matrix(n=600, m=120, seed=0):
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    X = sp.random(n, m, density=0.06, format="csr", random_state=seed, dtype=np.float32)
    X.data[:] = 1.0
    X = X.tolil()
    X[rng.integers(0, n, 5)] = 0  # some users without items
    return sp.csr_matrix(X)


@pytest.mark.parametrize("search_groups", [1, 3])
def test_group_neighbours_blocked_equal_unblocked(monkeypatch, search_groups):
    from cohortrec.recommenders import GroupRecommender, _group

    X = _shop_matrix()
    labels = np.random.default_rng(1).integers(0, 5, X.shape[0])
    a = GroupRecommender(k=7, search_groups=search_groups, random_state=0).fit(X, groups=labels)
    monkeypatch.setattr(_group, "_NEIGHBOUR_BLOCK_PAIRS", 50)  # blocks of a couple of queries
    b = GroupRecommender(k=7, search_groups=search_groups, random_state=0).fit(X, groups=labels)
    assert a.n_similarities_ == b.n_similarities_
    assert (a.similarity_ != b.similarity_).nnz == 0
    np.testing.assert_array_equal(a.similarity_.indices, b.similarity_.indices)
    users = np.arange(40)
    ia, sa = a.recommend(users, X[users], N=5)
    ib, sb = b.recommend(users, X[users], N=5, recalculate_user=True)
    ia2, sa2 = a.recommend(users, X[users], N=5, recalculate_user=True)
    np.testing.assert_array_equal(ia2, ib)
    np.testing.assert_allclose(sa2, sb, rtol=1e-6)


def test_group_max_candidates_bounds_the_search():
    from cohortrec.recommenders import GroupRecommender

    X = _shop_matrix(800)
    labels = np.random.default_rng(2).integers(0, 3, X.shape[0])
    full = GroupRecommender(k=5, search_groups=1, random_state=0).fit(X, groups=labels)
    big = GroupRecommender(k=5, search_groups=1, random_state=0, max_candidates=10_000).fit(X, groups=labels)
    assert (full.similarity_ != big.similarity_).nnz == 0  # a cap above every group changes nothing
    cap = GroupRecommender(k=5, search_groups=1, random_state=0, max_candidates=50).fit(X, groups=labels)
    S = cap.similarity_.tocoo()
    # neighbours come from at most 50 members of each group, and from the user's own group
    assert np.all(labels[S.row] == labels[S.col])
    for g in range(3):
        assert np.unique(S.col[labels[S.col] == g]).size <= 50
    assert cap.n_similarities_ < full.n_similarities_
    # every user with items still gets neighbours (the sample is searched for all of them)
    has = np.diff(X.indptr) > 0
    assert (np.diff(cap.similarity_.indptr)[has] > 0).mean() > 0.9
    again = GroupRecommender(k=5, search_groups=1, random_state=0, max_candidates=50).fit(X, groups=labels)
    assert (again.similarity_ != cap.similarity_).nnz == 0  # the sample is fixed by random_state
    with pytest.raises(ValueError, match="max_candidates"):
        GroupRecommender(max_candidates=0).fit(X)


def test_discovery_restarts_on_a_sample(monkeypatch):
    from sklearn.metrics import adjusted_rand_score

    import cohortrec.discovery as disc
    from cohortrec.datasets import make_shop
    from cohortrec.discovery import GroupDiscovery

    X, y = make_shop(3000, 300, 5, seed=4)
    full = GroupDiscovery("svd", n_groups=5, random_state=0).fit(X)
    monkeypatch.setattr(disc, "KMEANS_SAMPLE", 600)
    sampled = GroupDiscovery("svd", n_groups=5, random_state=0).fit(X)
    assert sampled.labels_.shape == (3000,) and sampled.n_groups_ == 5
    assert adjusted_rand_score(full.labels_, sampled.labels_) > 0.9
    assert adjusted_rand_score(y, sampled.labels_) > adjusted_rand_score(y, full.labels_) - 0.05
    # the model refined on everyone: its centres fit the full data (one Lloyd run from the sample's best)
    assert sampled.clusterer_.labels_.shape == (3000,)


# ------------------------------------------------------------ duplicate events
@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 60), seed=st.integers(0, 2**31 - 1), kinds=st.lists(st.sampled_from("ifdz"), min_size=1,
                                                                             max_size=4))
def test_duplicated_rows_matches_pandas(n, seed, kinds):
    import pandas as pd

    from cohortrec.preprocessing import _duplicated_rows

    rng = np.random.default_rng(seed)
    cols = {}
    for j, kind in enumerate(kinds):
        if kind == "i":
            cols[f"c{j}"] = rng.integers(0, 3, n)
        elif kind == "f":
            cols[f"c{j}"] = rng.choice([0.0, -0.0, 1.5, 2.0], n)
        elif kind == "d":
            cols[f"c{j}"] = pd.to_datetime(rng.integers(0, 3, n), unit="s")
        else:
            cols[f"c{j}"] = rng.choice([1.0, np.nan], n)
    df = pd.DataFrame(cols)
    np.testing.assert_array_equal(_duplicated_rows(df), df.duplicated().to_numpy())


def test_duplicated_rows_survives_hash_collisions(monkeypatch):
    import pandas as pd

    from cohortrec import preprocessing
    from cohortrec.preprocessing import _duplicated_rows

    df = pd.DataFrame({"a": [1, 2, 1, 2, 3, 1], "b": [5, 6, 5, 6, 7, 9]})
    # every row hashes alike: distinct rows collide, and the function must still agree with pandas
    monkeypatch.setattr(preprocessing, "_row_hash", lambda cols, n: np.zeros(n, np.uint64))
    np.testing.assert_array_equal(_duplicated_rows(df), df.duplicated().to_numpy())
    same = pd.DataFrame({"a": [4, 4, 4], "b": [1, 1, 1]})  # all equal: no collision between distinct rows
    np.testing.assert_array_equal(_duplicated_rows(same), [False, True, True])


# ------------------------------------------------------------ progress lines
def test_progress_plain_lines_when_not_a_terminal():
    import io

    from cohortrec._progress import Progress, format_seconds

    out = io.StringIO()
    p = Progress(100, "stage x", stream=out, unit="row", interval=0.0)
    p.update(25, loss=0.5)
    p.update(25)
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("  stage x: 25/100 row (25%)")
    assert "row/s" in lines[0] and "ETA" in lines[0] and "loss=0.5" in lines[0]
    assert "50/100 row (50%)" in lines[1]
    quiet = io.StringIO()
    q = Progress(10, "s", stream=quiet, interval=3600.0)  # nothing before the first interval
    q.update(10)
    assert quiet.getvalue() == ""
    off = io.StringIO()
    Progress(10, "s", stream=off, interval=0.0, enabled=False).update(5)
    assert off.getvalue() == ""
    assert format_seconds(75) == "1:15" and format_seconds(4000) == "1:06:40"


def test_console_stage_records_peak_memory_and_heartbeat(monkeypatch):
    import io
    import time

    from cohortrec.cli import _common

    monkeypatch.setattr(_common._Heartbeat, "interval", 0.05)
    out = io.StringIO()
    c = _common.Console(stream=out)
    with c.stage("slow step"):
        time.sleep(0.2)
    text = out.getvalue()
    assert "... slow step: running for" in text and "- slow step:" in text
    assert c.peak_rss["slow step"] > 0
    q = io.StringIO()
    cq = _common.Console(quiet=True, stream=q)
    with cq.stage("quiet step"):
        time.sleep(0.1)
    assert q.getvalue() == "" and "quiet step" in cq.timings


# ------------------------------------------------------------ Parquet files and folders in the CLI loader
def _events_frame(n_users=60, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = n_users * 6
    return pd.DataFrame({"user_id": rng.integers(0, n_users, n), "item_id": rng.integers(0, 40, n),
                         "timestamp": pd.to_datetime(rng.integers(0, 10**6, n), unit="s"),
                         "category": rng.choice(["a", "b", "c"], n), "unused": rng.random(n)})


def test_load_parquet_folder_reads_only_used_columns(tmp_path):
    import pandas as pd

    from cohortrec.cli._common import Console
    from cohortrec.cli._data import load_data

    df = _events_frame()
    folder = tmp_path / "events"
    folder.mkdir()
    df.iloc[:150].to_parquet(folder / "part-0.parquet", index=False)
    df.iloc[150:].to_parquet(folder / "part-1.parquet", index=False)
    df.iloc[:0].to_parquet(folder / "part-2.parquet", index=False)  # an empty partition adds nothing
    one = tmp_path / "one.parquet"
    df.to_parquet(one, index=False)
    a = load_data(str(folder), Console(quiet=True)).interactions
    b = load_data(str(one), Console(quiet=True)).interactions
    assert a.shape == b.shape and (a.matrix != b.matrix).nnz == 0
    assert list(a.item_ids) == list(b.item_ids) and "categories" in a.items.columns
    assert "unused" not in a.events.columns
    ref = pd.crosstab(df["user_id"], df["item_id"])
    assert a.nnz == int((ref.to_numpy() > 0).sum())


def test_load_parquet_bad_inputs(tmp_path, monkeypatch):
    import pandas as pd

    from cohortrec.cli import _data
    from cohortrec.cli._common import CLIError, Console

    folder = tmp_path / "mixed"
    folder.mkdir()
    pd.DataFrame({"user_id": [1, 2], "item_id": [3, 4]}).to_parquet(folder / "a.parquet")
    pd.DataFrame({"user_id": ["x"], "item_id": [3]}).to_parquet(folder / "b.parquet")
    with pytest.raises(CLIError, match="different schemas: b.parquet differs from a.parquet"):
        _data.load_data(str(folder), Console(quiet=True))
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"user_id": pd.Series([], dtype="int64"), "item_id": pd.Series([], dtype="int64")}).to_parquet(empty)
    with pytest.raises(CLIError, match="no rows"):
        _data.load_data(str(empty), Console(quiet=True))
    big = tmp_path / "big.parquet"
    _events_frame().to_parquet(big, index=False)

    class Tiny:
        available = 1000

    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny())
    with pytest.raises(CLIError, match="more than the .* available.*--scheduler"):
        _data.load_data(str(big), Console(quiet=True))
