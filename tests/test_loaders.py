"""Tests of the dataset loaders on tiny synthetic fixture files (and real data if present).

The fixture files imitate each release's format (separators, encodings, line
endings, headers) with made-up content. Tests on the real datasets in
``/work/shared/data`` (or ``$COHORTREC_DATA``) skip when the folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cohortrec.datasets import (
    load_csv,
    load_lastfm_hetrec,
    load_movielens,
    load_parquet,
)
from cohortrec.datasets._loaders import Dataset, from_events

DATA = Path(os.environ.get("COHORTREC_DATA", "/work/shared/data"))


def write(path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> None:
    path.write_bytes(text.replace("\n", newline).encode(encoding))


# ---------------------------------------------------------------------------
# MovieLens 100K
# ---------------------------------------------------------------------------
@pytest.fixture
def ml100k(tmp_path: Path) -> Path:
    d = tmp_path / "ml-100k"
    d.mkdir()
    # user item rating timestamp, tab-separated, no header; user 7 re-rates item 2
    write(d / "u.data", "7\t2\t3\t100\n1\t1\t5\t50\n1\t3\t4\t60\n7\t1\t2\t70\n7\t2\t5\t200\n")
    genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
              "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
              "Romance", "Sci-Fi", "Thriller", "War", "Western"]
    write(d / "u.genre", "".join(f"{g}|{i}\n" for i, g in enumerate(genres)) + "\n", "latin-1")

    def flags(*on):
        return "|".join("1" if g in on else "0" for g in genres)
    write(d / "u.item",
          f"1|Café Society (1995)|01-Jan-1995||http://x/1|{flags('Comedy', 'Drama')}\n"
          f"2|Zorro (1998)|01-Jan-1998||http://x/2|{flags('Action')}\n"
          f"3|Unrated \"Quoted\" (1990)|||http://x/3|{flags('unknown')}\n", "latin-1")
    write(d / "u.user", "1|24|M|technician|85711\n7|53|F|other|0A123\n")
    return d


def test_movielens_100k(ml100k: Path):
    ds = load_movielens(ml100k)
    assert isinstance(ds, Dataset)
    assert ds.shape == (2, 3)
    assert ds.user_ids.tolist() == [1, 7] and ds.item_ids.tolist() == [1, 2, 3]
    # the latest rating of a repeated pair wins (7, 2): 5 at t=200
    np.testing.assert_array_equal(ds.user_items.toarray(), [[5, 0, 4], [2, 5, 0]])
    assert ds.user_items.dtype == np.float32
    np.testing.assert_array_equal(ds.timestamps.toarray(), [[50, 0, 60], [70, 200, 0]])
    assert ds.items["title"].tolist()[0] == "Café Society (1995)"  # latin-1 decoded
    assert ds.items["genres"].tolist() == ["Comedy|Drama", "Action", "unknown"]
    assert ds.users.columns.tolist() == ["user_id", "age", "gender", "occupation", "zip"]
    assert ds.users["zip"].tolist() == ["85711", "0A123"]
    assert len(ds.events) == 5 and {"user", "item", "rating", "timestamp"} <= set(ds.events.columns)
    assert ds.positives(4).toarray().tolist() == [[1, 0, 1], [0, 1, 0]]
    assert ds.item_text()[0] == "Café Society (1995). Comedy, Drama"


def test_movielens_100k_ratings_only(ml100k: Path):
    for f in ("u.item", "u.user", "u.genre"):
        (ml100k / f).unlink()
    ds = load_movielens(ml100k)
    assert ds.items.columns.tolist() == ["item_id"]
    assert ds.users.columns.tolist() == ["user_id"]


# ---------------------------------------------------------------------------
# MovieLens CSV releases (latest, 20M, 25M) and 1M
# ---------------------------------------------------------------------------
@pytest.fixture
def mlcsv(tmp_path: Path) -> Path:
    d = tmp_path / "ml-latest-tiny"
    d.mkdir()
    write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4.5,1000\n1,20,2.0,1001\n"
          "3,10,5.0,900\n3,30,3.5,950\n", newline="\r\n")
    write(d / "movies.csv", 'movieId,title,genres\n10,"Good, Bad and Ugly (1966)",Action|Western\n'
          "20,Amélie (2001),Comedy|Romance\n30,Nothing (2000),(no genres listed)\n"
          "40,Never Rated (1999),Drama\n", newline="\r\n")
    write(d / "tags.csv", "userId,movieId,tag,timestamp\n1,10,classic,1\n3,10,Classic,2\n"
          "3,10,western,3\n1,20,paris,4\n", newline="\r\n")
    write(d / "links.csv", "movieId,imdbId,tmdbId\n10,0060196,429\n20,0211915,\n", newline="\r\n")
    return d


def test_movielens_csv(mlcsv: Path):
    ds = load_movielens(mlcsv)
    assert ds.shape == (2, 3)  # movie 40 has no rating: not a column
    np.testing.assert_allclose(ds.user_items.toarray(), [[4.5, 2.0, 0], [5.0, 0, 3.5]])
    it = ds.items.set_index("item_id")
    assert it.loc[10, "title"] == "Good, Bad and Ugly (1966)"  # quoted comma
    assert it.loc[20, "title"] == "Amélie (2001)"
    assert it.loc[30, "genres"] == ""
    assert it.loc[10, "tags"] == "classic|western"  # case-folded, most frequent first
    assert pd.isna(it.loc[30, "tags"])
    assert it.loc[10, "imdb_id"] == "0060196" and pd.isna(it.loc[20, "tmdb_id"])
    assert ds.extras["tags"].shape == (4, 4)
    assert ds.timestamps[1, 0] == 900
    assert ds.positives(4.0).nnz == 2


def test_movielens_1m(tmp_path: Path):
    d = tmp_path / "ml-1m"
    d.mkdir()
    write(d / "ratings.dat", "1::1193::5::978300760\n2::1193::4::978298413\n2::661::3::978302109\n")
    write(d / "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
          "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n", "latin-1")
    write(d / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = load_movielens(d)
    assert ds.shape == (2, 2) and ds.item_ids.tolist() == [661, 1193]
    assert ds.items["genres"].tolist()[0] == "Animation|Children's|Musical"
    assert ds.users["gender"].tolist() == ["F", "M"]


def test_movielens_missing(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="u.data.*ratings.csv"):
        load_movielens(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist.*never downloads"):
        load_movielens(tmp_path / "nope")


# ---------------------------------------------------------------------------
# Last.fm HetRec 2011
# ---------------------------------------------------------------------------
@pytest.fixture
def lastfm(tmp_path: Path) -> Path:
    d = tmp_path / "hetrec2011-lastfm-2k"
    d.mkdir()
    write(d / "user_artists.dat", "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n"
          "5\t51\t7\n", "ascii", "\r\n")
    write(d / "artists.dat", "id\tname\turl\tpictureURL\n51\tDuran Duran\thttp://a/51\thttp://p/51\n"
          "52\t東京事変\thttp://a/52\t\n53\tUnheard\thttp://a/53\t\n", "utf-8", "\n")
    write(d / "tags.dat", "tagID\ttagValue\n1\trock français\n2\tfußball\n3\tpop\n", "latin-1", "\r\n")
    write(d / "user_taggedartists.dat", "userID\tartistID\ttagID\tday\tmonth\tyear\n"
          "2\t51\t3\t1\t4\t2009\n5\t51\t3\t2\t4\t2009\n5\t52\t1\t1\t5\t2010\n2\t52\t2\t1\t5\t2010\n",
          "ascii", "\r\n")
    write(d / "user_friends.dat", "userID\tfriendID\n2\t5\n5\t2\n", "ascii", "\r\n")
    return d


def test_lastfm(lastfm: Path):
    ds = load_lastfm_hetrec(lastfm)
    assert ds.shape == (2, 2)
    np.testing.assert_array_equal(ds.user_items.toarray(), [[13883, 11690], [7, 0]])
    it = ds.items.set_index("item_id")
    assert it.loc[52, "title"] == "東京事変"
    assert it.loc[51, "tags"] == "pop"
    assert set(it.loc[52, "tags"].split("|")) == {"rock français", "fußball"}
    assert ds.timestamps is None
    assert ds.users["n_friends"].tolist() == [1, 1]
    assert ds.extras["friends"].shape == (2, 2)
    assert ds.extras["tags"]["tag"].tolist() == ["rock français", "fußball", "pop"]
    ta = ds.extras["tag_assignments"]
    assert ta["date"].iloc[0] == pd.Timestamp("2009-04-01")
    assert not any(c.endswith("\r") for c in ds.items.columns)
    assert "plays" in ds.events.columns
    # without genres, the most used tags are the items' categories (and all tags their description)
    X = ds.to_interactions()
    cats = X.items["categories"]
    assert cats.loc[51] == ["pop"] and cats.loc[52] == it.loc[52, "tags"].split("|")[:3]
    C, names = X.item_categories()
    assert C.shape == (2, 3) and set(names) == {"pop", "rock français", "fußball"}
    assert X.items.loc[51, "description"] == "pop"


def test_lastfm_missing(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="user_artists.dat"):
        load_lastfm_hetrec(tmp_path)


# ---------------------------------------------------------------------------
# own files
# ---------------------------------------------------------------------------
def test_load_csv_mapping_and_aggregation(tmp_path: Path):
    write(tmp_path / "log.csv", "cust;sku;qty;when\nA;x1;2;2021-01-01 10:00\nA;x1;3;2021-01-02 10:00\n"
          "B;x2;1;2021-01-03\n;x2;5;2021-01-04\nB;x1;-1;2021-01-05\n")
    write(tmp_path / "items.csv", "sku;title;genres\nx1;Mug;kitchen|gift\nx2;Lamp;home\nx9;Other;\n")
    with pytest.warns(UserWarning, match="1 events without"):
        ds = load_csv(tmp_path / "log.csv", user="cust", item="sku", value="qty", timestamp="when",
                      sep=";", items=tmp_path / "items.csv")
    assert ds.user_ids.tolist() == ["A", "B"] and ds.item_ids.tolist() == ["x1", "x2"]
    np.testing.assert_array_equal(ds.user_items.toarray(), [[5, 0], [-1, 1]])
    assert ds.items["title"].tolist() == ["Mug", "Lamp"]
    t = ds.timestamps.toarray()
    assert t[0, 0] == pd.Timestamp("2021-01-02 10:00", tz="UTC").timestamp()
    with pytest.warns(UserWarning):
        last = load_csv(tmp_path / "log.csv", user="cust", item="sku", value="qty", timestamp="when",
                        sep=";", aggregate="last")
    assert last.user_items[0, 0] == 3
    with pytest.warns(UserWarning):
        cnt = load_csv(tmp_path / "log.csv", user="cust", item="sku", sep=";", aggregate="count")
    assert cnt.user_items[0, 0] == 2
    with pytest.raises(ValueError, match="not a column"):
        load_csv(tmp_path / "log.csv", user="nope", item="sku", sep=";")
    with pytest.raises(ValueError, match="aggregate"):
        load_csv(tmp_path / "log.csv", user="cust", item="sku", sep=";", aggregate="mean")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_csv(tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_csv(tmp_path / "log.csv", user="cust", item="sku", sep=";", items=tmp_path / "nope.csv")


def test_load_parquet(tmp_path: Path):
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"u": [1, 1, 2], "i": [10, 11, 10], "r": [1.0, 2.0, 3.0],
                       "t": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"])})
    df.to_parquet(tmp_path / "ev.parquet")
    ds = load_parquet(tmp_path / "ev.parquet", user="u", item="i", value="r", timestamp="t")
    np.testing.assert_array_equal(ds.user_items.toarray(), [[1, 2], [3, 0]])
    assert ds.timestamps[1, 0] == pd.Timestamp("2020-01-03", tz="UTC").timestamp()
    with pytest.raises(FileNotFoundError, match="x.parquet"):
        load_parquet(tmp_path / "x.parquet")


def test_from_events_pattern_and_interactions():
    ev = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 5, 6], "v": [1.0, -1.0, 2.0],
                       "ts": [1, 2, 3]})
    ds = from_events(ev, value="v", timestamp="ts")
    assert ds.user_items.nnz == 1  # the pair summing to 0 is not stored
    assert ds.timestamps.nnz == 1
    assert isinstance(ds.user_items, sp.csr_matrix)
    inter = ds.to_interactions()
    assert inter.shape == ds.shape


# ---------------------------------------------------------------------------
# real data (skipped when absent)
# ---------------------------------------------------------------------------
@pytest.mark.skipif(not (DATA / "ml-latest-small" / "ratings.csv").is_file(),
                    reason="ml-latest-small not available")
def test_real_ml_latest_small():
    ds = load_movielens(DATA / "ml-latest-small")
    assert ds.shape == (610, 9724) and ds.user_items.nnz == 100_836
    assert ds.items["title"].notna().all() and ds.items["genres"].notna().all()
    assert ds.timestamps.nnz == 100_836
    assert len(ds.extras["tags"]) == 3_683


@pytest.mark.skipif(not (DATA / "hetrec2011-lastfm-2k" / "user_artists.dat").is_file(),
                    reason="hetrec2011-lastfm-2k not available")
def test_real_lastfm():
    ds = load_lastfm_hetrec(DATA / "hetrec2011-lastfm-2k")
    assert ds.shape == (1892, 17632) and ds.user_items.nnz == 92_834
    assert ds.user_items.sum() == 69_183_975
    assert ds.items["title"].notna().all()
    assert len(ds.extras["tag_assignments"]) == 186_479
    assert len(ds.extras["friends"]) == 25_434
    tags = ds.extras["tags"]
    assert len(tags) == 11_946 and {"fußball", "rock français", "die Ärzte"} <= set(tags["tag"])


@pytest.mark.skipif(not (DATA / "uci-online-retail-sample" / "online_retail_sample.csv").is_file(),
                    reason="uci-online-retail-sample not available")
def test_real_retail_sample():
    with pytest.warns(UserWarning, match="668 events"):
        ds = load_csv(DATA / "uci-online-retail-sample" / "online_retail_sample.csv",
                      user="CustomerID", item="StockCode", value="Quantity", timestamp="InvoiceDate")
    assert ds.n_users == 1171
