"""Loaders for public recommender datasets and for your own event logs.

Nothing is ever downloaded: every loader reads files you already have and
raises :class:`FileNotFoundError` naming the file it expected.

* :func:`load_movielens` -- MovieLens 100K (``u.data``, ``u.item``,
  ``u.user``), 1M (``ratings.dat``, ``movies.dat``, ``users.dat``) and the
  latest / 20M / 25M CSV releases (``ratings.csv``, ``movies.csv``,
  ``tags.csv``, ``links.csv``).
* :func:`load_lastfm_hetrec` -- HetRec 2011 Last.fm 2K.
* :func:`load_csv`, :func:`load_parquet` -- an event log with your own column
  names.

Each returns a :class:`Dataset`.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "Dataset",
    "from_events",
    "load_csv",
    "load_lastfm_hetrec",
    "load_movielens",
    "load_parquet",
]

PathLike = str | os.PathLike  # type: ignore[type-arg]

# genres of MovieLens 100K, in the column order of u.item (used when u.genre is absent)
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western")


@dataclass
class Dataset:
    """A loaded dataset: interaction matrix, id maps, side tables and raw events.

    Attributes
    ----------
    name : str
    user_items : scipy.sparse.csr_matrix, shape (n_users, n_items), float32
        Aggregated interaction value of every user-item pair (the rating
        for MovieLens, the play count for Last.fm).
    user_ids, item_ids : ndarray
        External id of every row / column (sorted).
    items : pandas.DataFrame
        One row per column of ``user_items`` (same order): ``item_id`` and,
        where the dataset has them, ``title``, ``genres`` (``|``-joined),
        ``tags`` (``|``-joined, most frequent first) and other fields.
    users : pandas.DataFrame
        One row per row of ``user_items``: ``user_id`` and any user features.
    events : pandas.DataFrame
        The raw events: ``user_id``, ``item_id``, ``user`` / ``item`` (row /
        column index), the value column and ``timestamp`` where known.
    timestamps : scipy.sparse.csr_matrix or None
        Same pattern as ``user_items``: the latest event time of every pair
        (seconds since the epoch), for :func:`cohortrec.evaluation.leave_last_out`.
    extras : dict of str to pandas.DataFrame
        Other tables (e.g. Last.fm ``friends`` and ``tag_assignments``,
        MovieLens ``tags``).
    """

    name: str
    user_items: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    items: pd.DataFrame
    users: pd.DataFrame
    events: pd.DataFrame
    timestamps: sp.csr_matrix | None = None
    extras: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_users, n_items)."""
        return self.user_items.shape

    @property
    def n_users(self) -> int:
        return self.user_items.shape[0]

    @property
    def n_items(self) -> int:
        return self.user_items.shape[1]

    def __repr__(self) -> str:
        n, m = self.shape
        extra = f", extras={sorted(self.extras)}" if self.extras else ""
        return (f"Dataset({self.name!r}, {n} users x {m} items, {self.user_items.nnz} "
                f"interactions, item columns={list(self.items.columns)}{extra})")

    def positives(self, min_value: float | None = None) -> sp.csr_matrix:
        """Binary (0/1 float32) matrix of the pairs with value ``>= min_value`` (all if None).

        E.g. ``ds.positives(4.0)`` keeps MovieLens ratings of 4 and above.
        """
        X = self.user_items.copy()
        if min_value is not None:
            X.data = np.where(X.data >= min_value, 1.0, 0.0).astype(np.float32)
            X.eliminate_zeros()
        X.data[:] = 1.0
        return X

    def item_text(self, fields: Sequence[str] = ("title", "genres", "tags")) -> list[str]:
        """One text per item: the given fields joined with ``". "`` (``|`` becomes ``", "``)."""
        cols = [c for c in fields if c in self.items.columns]
        if not cols:
            return [""] * self.n_items
        parts = [self.items[c].fillna("").astype(str).str.replace("|", ", ", regex=False).tolist()
                 for c in cols]
        return [". ".join(p for p in row if p) for row in zip(*parts)]

    def to_interactions(self) -> Any:
        """The same data as a :class:`cohortrec.interactions.Interactions`.

        Item ``genres`` become ``categories`` and ``tags`` the
        ``description``; without genres, an item's :data:`TAG_CATEGORIES`
        most used tags are its ``categories`` (Last.fm's artists: "rock",
        "indie", ...), so that group profiles report category lifts and
        :class:`~cohortrec.GroupDiscovery` can centre its prior on them.
        Events keep ``timestamp`` and the value as ``weight``.
        """
        try:
            from cohortrec.interactions import Interactions
        except ImportError as exc:  # pragma: no cover - depends on the installed version
            raise ImportError("cohortrec.interactions.Interactions is not available") from exc
        items = self.items.set_index("item_id", drop=True)
        items.index.name = None
        if "genres" in items.columns and "categories" not in items.columns:
            items["categories"] = items["genres"]
        if "tags" in items.columns and "categories" not in items.columns:  # most used first (the loaders' order)
            items["categories"] = items["tags"].map(
                lambda v: [t for t in str(v).split("|") if t][:TAG_CATEGORIES] if isinstance(v, str) else [])
        if "tags" in items.columns and "description" not in items.columns:
            items["description"] = items["tags"].fillna("").str.replace("|", ", ", regex=False)
        users = self.users.set_index("user_id", drop=True)
        users.index.name = None
        events = self.events.copy()
        value_col = next((c for c in ("rating", "weight", "value", "plays") if c in events.columns), None)
        keep = ["user", "item"] + [c for c in ("timestamp",) if c in events.columns]
        ev = events[keep].copy()
        if value_col is not None:
            ev["weight"] = events[value_col].to_numpy()
        return Interactions(self.user_items, pd.Index(self.user_ids), pd.Index(self.item_ids),
                            events=ev, users=users, items=items)


#: how many of an item's most used tags become its categories in :meth:`Dataset.to_interactions` (without genres);
#: beyond the first few, an artist's tags are personal ("seen live", "favourites") more than genres
TAG_CATEGORIES = 3


# ---------------------------------------------------------------------------
# shared builder
# ---------------------------------------------------------------------------
def _require(path: Path, *names: str, what: str) -> Path:
    """The first of ``names`` that exists under ``path``, else a clear error."""
    if not path.exists():
        raise FileNotFoundError(f"{what}: the path {str(path)!r} does not exist "
                                f"(expected a folder holding {' or '.join(repr(n) for n in names)}); "
                                "cohortrec never downloads data")
    for n in names:
        if (path / n).is_file():
            return path / n
    raise FileNotFoundError(f"{what}: expected the file {' or '.join(repr(str(path / n)) for n in names)}, "
                            "which does not exist; cohortrec never downloads data")


def _to_seconds(t: pd.Series) -> np.ndarray:
    """Event times as float seconds since the epoch (numbers are taken as seconds)."""
    if pd.api.types.is_numeric_dtype(t):
        return t.to_numpy(np.float64)
    dt = pd.to_datetime(t, errors="coerce", utc=True)
    out = (dt - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return out.to_numpy(np.float64)


def from_events(
    events: pd.DataFrame,
    *,
    user: str = "user_id",
    item: str = "item_id",
    value: str | None = None,
    timestamp: str | None = None,
    aggregate: str = "sum",
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    name: str = "events",
    extras: dict[str, pd.DataFrame] | None = None,
) -> Dataset:
    """Build a :class:`Dataset` from an event table.

    Parameters
    ----------
    events : pandas.DataFrame
    user, item : str
        Columns with the external user / item ids.
    value : str, optional
        Column with the event value (rating, count, quantity); 1 per event
        when omitted.
    timestamp : str, optional
        Column with the event time (numbers = seconds since the epoch, or
        anything :func:`pandas.to_datetime` parses).
    aggregate : {"sum", "last", "max", "count"}, default "sum"
        How events of the same pair combine into the matrix value
        (``"last"`` = the latest by ``timestamp``, else the last row).
    items, users : pandas.DataFrame, optional
        Side tables with a column named like ``item`` / ``user`` (or
        ``item_id`` / ``user_id``); joined onto the ids present.
    name : str
    extras : dict, optional

    Returns
    -------
    Dataset
        Rows with a missing user or item id are dropped (with a warning);
        pairs whose aggregate is 0 are not stored.
    """
    for arg, col in (("user", user), ("item", item), ("value", value), ("timestamp", timestamp)):
        if col is not None and col not in events.columns:
            raise ValueError(f"{arg}={col!r} is not a column of the events "
                             f"(columns: {list(events.columns)})")
    if aggregate not in ("sum", "last", "max", "count"):
        raise ValueError(f"aggregate must be 'sum', 'last', 'max' or 'count', got {aggregate!r}")
    ev = events.copy()
    missing = ev[user].isna() | ev[item].isna()
    if missing.any():
        warnings.warn(f"{int(missing.sum())} events without a {user!r} or {item!r} were dropped",
                      UserWarning, stacklevel=3)
        ev = ev.loc[~missing]
    ev = ev.reset_index(drop=True)
    u_codes, user_ids = pd.factorize(ev[user], sort=True)
    i_codes, item_ids = pd.factorize(ev[item], sort=True)
    n, m = len(user_ids), len(item_ids)
    vals = ev[value].to_numpy(np.float64) if value is not None else np.ones(len(ev))
    secs = _to_seconds(ev[timestamp]) if timestamp is not None else None
    if aggregate in ("sum", "count"):
        v = np.ones(len(ev)) if aggregate == "count" else vals
        X = sp.csr_matrix((v, (u_codes, i_codes)), shape=(n, m), dtype=np.float64)
        X.sum_duplicates()
    else:
        key = u_codes.astype(np.int64) * max(m, 1) + i_codes
        order = np.lexsort(((secs if secs is not None else np.arange(len(ev))), key)) \
            if aggregate == "last" else np.lexsort((vals, key))
        last = np.r_[key[order][1:] != key[order][:-1], True]
        sel = order[last]
        X = sp.csr_matrix((vals[sel], (u_codes[sel], i_codes[sel])), shape=(n, m), dtype=np.float64)
    X.eliminate_zeros()
    X = X.astype(np.float32)
    T = None
    if secs is not None:
        ok = np.isfinite(secs)
        key = u_codes[ok].astype(np.int64) * max(m, 1) + i_codes[ok]
        s = secs[ok]
        order = np.lexsort((s, key))
        last = np.r_[key[order][1:] != key[order][:-1], True] if order.size else np.zeros(0, bool)
        sel = order[last]
        T = sp.csr_matrix((s[sel], (u_codes[ok][sel], i_codes[ok][sel])), shape=(n, m))
        # keep the pattern of X (pairs aggregated to 0 are not interactions)
        T = T.multiply(X != 0).tocsr() if X.nnz else sp.csr_matrix((n, m))
        T.sort_indices()
    ev.insert(0, "item", i_codes.astype(np.int64))
    ev.insert(0, "user", u_codes.astype(np.int64))
    item_ids = np.asarray(item_ids)
    user_ids = np.asarray(user_ids)
    item_table = _side_table(items, item_ids, (item, "item_id"), "item_id")
    user_table = _side_table(users, user_ids, (user, "user_id"), "user_id")
    return Dataset(name=name, user_items=X, user_ids=user_ids, item_ids=item_ids, items=item_table,
                   users=user_table, events=ev, timestamps=T, extras=dict(extras or {}))


def _side_table(table: pd.DataFrame | None, ids: np.ndarray, keys: tuple[str, str],
                out_key: str) -> pd.DataFrame:
    base = pd.DataFrame({out_key: ids})
    if table is None:
        return base
    key = next((k for k in keys if k in table.columns), None)
    if key is None:
        raise ValueError(f"the side table needs a column {keys[0]!r} (or {keys[1]!r}) with the ids; "
                         f"columns: {list(table.columns)}")
    t = table.drop_duplicates(key).rename(columns={key: out_key})
    try:
        t[out_key] = t[out_key].astype(base[out_key].dtype)
    except (TypeError, ValueError):
        pass
    return base.merge(t, on=out_key, how="left")


def _tags_text(tags: pd.DataFrame, item_col: str, tag_col: str) -> pd.DataFrame:
    """``item -> "tag1|tag2|..."`` (distinct, case-folded, most frequent first)."""
    t = tags[[item_col, tag_col]].dropna()
    t = t.assign(**{tag_col: t[tag_col].astype(str).str.strip()})
    t = t[t[tag_col] != ""]
    t = t.assign(_k=t[tag_col].str.lower())
    counts = t.groupby([item_col, "_k"], sort=False).agg(tag=(tag_col, "first"), n=(tag_col, "size"))
    counts = counts.reset_index().sort_values([item_col, "n", "_k"], ascending=[True, False, True])
    out = counts.groupby(item_col, sort=False)["tag"].agg("|".join).reset_index()
    return out.rename(columns={"tag": "tags"})


# ---------------------------------------------------------------------------
# MovieLens
# ---------------------------------------------------------------------------
def load_movielens(path: PathLike) -> Dataset:
    """Load a MovieLens release from a folder (100K, 1M, or the CSV releases).

    The format is detected from the files present: ``u.data`` (100K:
    ``u.item`` latin-1 ``|``-separated titles and genre flags, ``u.user``
    demographics, ``u.genre``), ``ratings.dat`` (1M: ``::``-separated,
    ``movies.dat``, ``users.dat``), or ``ratings.csv`` (ml-latest,
    ml-latest-small, 20M, 25M: ``movies.csv``, ``tags.csv``,
    ``links.csv``). Only the ratings file is required.

    Parameters
    ----------
    path : str or os.PathLike
        The folder holding the files.

    Returns
    -------
    Dataset
        ``user_items`` holds the ratings (one per user-movie pair, the
        latest if repeated); ``items`` has ``title``, ``genres`` and
        ``tags`` (CSV releases) text; ``users`` has ``age``, ``gender``,
        ``occupation``, ``zip`` where the release has them; ``timestamps``
        the rating times. Movies without ratings are not columns.

    Raises
    ------
    FileNotFoundError
        Naming the ratings file expected when none is found.

    Examples
    --------
    >>> from cohortrec.datasets import load_movielens
    >>> ds = load_movielens("/data/ml-latest-small")  # doctest: +SKIP
    >>> X = ds.positives(4.0)                          # doctest: +SKIP
    """
    p = Path(path)
    ratings = _require(p, "u.data", "ratings.csv", "ratings.dat", what="MovieLens ratings")
    if ratings.name == "u.data":
        return _movielens_100k(p)
    if ratings.name == "ratings.dat":
        return _movielens_1m(p)
    return _movielens_csv(p)


def _movielens_100k(p: Path) -> Dataset:
    ev = pd.read_csv(p / "u.data", sep="\t", header=None,
                     names=["user_id", "item_id", "rating", "timestamp"], dtype=np.int64)
    items = None
    if (p / "u.item").is_file():
        genres = list(ML100K_GENRES)
        if (p / "u.genre").is_file():
            g = pd.read_csv(p / "u.genre", sep="|", header=None, names=["genre", "idx"],
                            encoding="latin-1", dtype={"genre": str}).dropna()
            genres = [name for name, _ in sorted(zip(g["genre"], g["idx"].astype(int)), key=lambda t: t[1])]
        raw = pd.read_csv(p / "u.item", sep="|", header=None, encoding="latin-1",
                          quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
        flags = raw.iloc[:, 5:5 + len(genres)].to_numpy() == "1"
        items = pd.DataFrame({
            "item_id": raw[0].astype(np.int64),
            "title": raw[1],
            "release_date": raw[2].replace("", None),
            "imdb_url": raw[4].replace("", None),
            "genres": ["|".join(g for g, f in zip(genres, row) if f) for row in flags],
        })
    users = None
    if (p / "u.user").is_file():
        users = pd.read_csv(p / "u.user", sep="|", header=None, encoding="latin-1",
                            names=["user_id", "age", "gender", "occupation", "zip"],
                            dtype={"user_id": np.int64, "age": np.int64, "zip": str})
    return from_events(ev, user="user_id", item="item_id", value="rating", timestamp="timestamp",
                       aggregate="last", items=items, users=users, name="movielens-100k")


def _movielens_1m(p: Path) -> Dataset:
    def read(name: str, cols: list[str]) -> pd.DataFrame:
        # '::' separators; latin-1 titles
        rows = (line.rstrip("\r\n").split("::")
                for line in (p / name).read_text(encoding="latin-1").splitlines() if line.strip())
        return pd.DataFrame(list(rows), columns=cols)

    ev = read("ratings.dat", ["user_id", "item_id", "rating", "timestamp"]).astype(np.int64)
    items = users = None
    if (p / "movies.dat").is_file():
        items = read("movies.dat", ["item_id", "title", "genres"])
        items["item_id"] = items["item_id"].astype(np.int64)
    if (p / "users.dat").is_file():
        users = read("users.dat", ["user_id", "gender", "age", "occupation", "zip"])
        users = users.astype({"user_id": np.int64, "age": np.int64, "occupation": np.int64})
    return from_events(ev, user="user_id", item="item_id", value="rating", timestamp="timestamp",
                       aggregate="last", items=items, users=users, name="movielens-1m")


def _movielens_csv(p: Path) -> Dataset:
    ev = pd.read_csv(p / "ratings.csv", encoding="utf-8",
                     dtype={"userId": np.int64, "movieId": np.int64, "rating": np.float64,
                            "timestamp": np.int64})
    ev = ev.rename(columns={"userId": "user_id", "movieId": "item_id"})
    items = None
    extras: dict[str, pd.DataFrame] = {}
    if (p / "movies.csv").is_file():
        items = pd.read_csv(p / "movies.csv", encoding="utf-8", dtype={"movieId": np.int64, "title": str,
                                                                     "genres": str})
        items = items.rename(columns={"movieId": "item_id"})
        items["genres"] = items["genres"].replace("(no genres listed)", "")
    if (p / "tags.csv").is_file():
        tags = pd.read_csv(p / "tags.csv", encoding="utf-8", dtype={"userId": np.int64, "movieId": np.int64,
                                                                  "tag": str, "timestamp": np.int64})
        tags = tags.rename(columns={"userId": "user_id", "movieId": "item_id"})
        extras["tags"] = tags
        tt = _tags_text(tags, "item_id", "tag")
        items = tt if items is None else items.merge(tt, on="item_id", how="left")
    if (p / "links.csv").is_file():
        links = pd.read_csv(p / "links.csv", dtype={"movieId": np.int64, "imdbId": str, "tmdbId": "Int64"})
        links = links.rename(columns={"movieId": "item_id", "imdbId": "imdb_id", "tmdbId": "tmdb_id"})
        items = links if items is None else items.merge(links, on="item_id", how="left")
    name = "movielens-" + p.name if p.name else "movielens"
    return from_events(ev, user="user_id", item="item_id", value="rating", timestamp="timestamp",
                       aggregate="last", items=items, name=name, extras=extras)


# ---------------------------------------------------------------------------
# Last.fm HetRec 2011
# ---------------------------------------------------------------------------
def _read_dat(path: Path, encoding: str) -> pd.DataFrame:
    """A HetRec ``.dat``: tab-separated, one header line, LF or CRLF, no quoting."""
    return pd.read_csv(path, sep="\t", encoding=encoding, quoting=csv.QUOTE_NONE, dtype=str,
                       keep_default_na=False, lineterminator="\n").apply(
        lambda c: c.str.rstrip("\r")).rename(columns=lambda c: c.rstrip("\r"))


def load_lastfm_hetrec(path: PathLike) -> Dataset:
    """Load HetRec 2011 Last.fm 2K (``hetrec2011-lastfm-2k``) from a folder.

    Reads ``user_artists.dat`` (required: user, artist, play count),
    ``artists.dat`` (UTF-8 names and URLs), ``tags.dat`` (latin-1) with
    ``user_taggedartists.dat`` (tag assignments with dates), and
    ``user_friends.dat`` (the friendship graph). Every ``.dat`` has a header
    line; ``artists.dat`` uses LF line endings, the others CRLF.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Dataset
        ``user_items`` holds play counts; ``items`` has ``title`` (artist
        name), ``url`` and ``tags`` (``|``-joined, most used first);
        ``users`` has ``n_friends``; ``extras`` holds ``friends`` (user_id,
        friend_id), ``tag_assignments`` (user_id, item_id, tag_id, tag,
        date) and ``tags`` (tag_id, tag).
        Listening has no timestamps (``timestamps`` is None).

    Raises
    ------
    FileNotFoundError
        Naming ``user_artists.dat`` when it is missing.
    """
    p = Path(path)
    ua = _read_dat(_require(p, "user_artists.dat", what="Last.fm HetRec 2011"), "ascii")
    ev = pd.DataFrame({"user_id": ua["userID"].astype(np.int64), "item_id": ua["artistID"].astype(np.int64),
                       "plays": ua["weight"].astype(np.int64)})
    items = None
    extras: dict[str, pd.DataFrame] = {}
    if (p / "artists.dat").is_file():
        a = _read_dat(p / "artists.dat", "utf-8")
        items = pd.DataFrame({"item_id": a["id"].astype(np.int64), "title": a["name"],
                              "url": a["url"].replace("", None)})
    if (p / "user_taggedartists.dat").is_file():
        ut = _read_dat(p / "user_taggedartists.dat", "ascii")
        assign = pd.DataFrame({"user_id": ut["userID"].astype(np.int64),
                               "item_id": ut["artistID"].astype(np.int64),
                               "tag_id": ut["tagID"].astype(np.int64)})
        assign["date"] = pd.to_datetime(pd.DataFrame({"year": ut["year"].astype(int),
                                                      "month": ut["month"].astype(int),
                                                      "day": ut["day"].astype(int)}), errors="coerce")
        if (p / "tags.dat").is_file():
            tg = _read_dat(p / "tags.dat", "latin-1")
            names = pd.Series(tg["tagValue"].to_numpy(), index=tg["tagID"].astype(np.int64))
            extras["tags"] = pd.DataFrame({"tag_id": names.index, "tag": names.to_numpy()})
            assign.insert(3, "tag", assign["tag_id"].map(names))
            tt = _tags_text(assign, "item_id", "tag")
            items = tt if items is None else items.merge(tt, on="item_id", how="left")
        extras["tag_assignments"] = assign
    users = None
    if (p / "user_friends.dat").is_file():
        fr = _read_dat(p / "user_friends.dat", "ascii")
        friends = pd.DataFrame({"user_id": fr["userID"].astype(np.int64),
                                "friend_id": fr["friendID"].astype(np.int64)})
        extras["friends"] = friends
        users = friends.groupby("user_id").size().rename("n_friends").reset_index()
    ds = from_events(ev, user="user_id", item="item_id", value="plays", aggregate="sum", items=items,
                     users=users, name="lastfm-hetrec2011-2k", extras=extras)
    if "n_friends" in ds.users.columns:
        ds.users["n_friends"] = ds.users["n_friends"].fillna(0).astype(np.int64)
    return ds


# ---------------------------------------------------------------------------
# your own files
# ---------------------------------------------------------------------------
def _read_side(table: Any, what: str, reader) -> pd.DataFrame | None:
    if table is None or isinstance(table, pd.DataFrame):
        return table
    p = Path(table)
    if not p.is_file():
        raise FileNotFoundError(f"{what}: expected the file {str(p)!r}, which does not exist")
    return reader(p)


def load_csv(
    path: PathLike,
    *,
    user: str = "user_id",
    item: str = "item_id",
    value: str | None = None,
    timestamp: str | None = None,
    aggregate: str = "sum",
    items: PathLike | pd.DataFrame | None = None,
    users: PathLike | pd.DataFrame | None = None,
    sep: str = ",",
    encoding: str = "utf-8",
    **read_kwargs: Any,
) -> Dataset:
    """Load your own event log from a CSV file with a column mapping.

    Parameters
    ----------
    path : str or os.PathLike
        The event file, one event per line, with a header.
    user, item : str
        Names of the user-id and item-id columns.
    value : str, optional
        Column with the event value (rating, count, quantity); 1 per event
        when omitted.
    timestamp : str, optional
        Column with the event time (seconds since the epoch or a date string).
    aggregate : {"sum", "last", "max", "count"}, default "sum"
        How events of the same user-item pair combine.
    items, users : path or DataFrame, optional
        Side tables (CSV with the same ``sep``/``encoding``) holding an
        ``item``/``item_id`` (``user``/``user_id``) column; e.g. item
        ``title``, ``genres``, ``tags``.
    sep, encoding : str
    **read_kwargs
        Passed to :func:`pandas.read_csv` for the event file.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = load_csv("retail.csv", user="CustomerID", item="StockCode",
    ...               value="Quantity", timestamp="InvoiceDate")  # doctest: +SKIP
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"load_csv: expected the file {str(p)!r}, which does not exist")
    dtypes = {user: str, item: str}
    dtypes.update(read_kwargs.pop("dtype", {}) or {})
    ev = pd.read_csv(p, sep=sep, encoding=encoding, dtype=dtypes, **read_kwargs)

    def reader(q: Path) -> pd.DataFrame:
        return pd.read_csv(q, sep=sep, encoding=encoding, dtype=str, keep_default_na=False)

    return from_events(ev, user=user, item=item, value=value, timestamp=timestamp, aggregate=aggregate,
                       items=_read_side(items, "items", reader), users=_read_side(users, "users", reader),
                       name=p.stem)


def load_parquet(
    path: PathLike,
    *,
    user: str = "user_id",
    item: str = "item_id",
    value: str | None = None,
    timestamp: str | None = None,
    aggregate: str = "sum",
    items: PathLike | pd.DataFrame | None = None,
    users: PathLike | pd.DataFrame | None = None,
    **read_kwargs: Any,
) -> Dataset:
    """Load your own event log from a Parquet file with a column mapping.

    Parameters are those of :func:`load_csv` (side tables given as paths
    are read as Parquet); ``read_kwargs`` go to :func:`pandas.read_parquet`.

    Returns
    -------
    Dataset
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"load_parquet: expected the file {str(p)!r}, which does not exist")
    ev = pd.read_parquet(p, **read_kwargs)
    return from_events(ev, user=user, item=item, value=value, timestamp=timestamp, aggregate=aggregate,
                       items=_read_side(items, "items", pd.read_parquet),
                       users=_read_side(users, "users", pd.read_parquet), name=p.stem)
