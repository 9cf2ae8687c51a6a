"""Reading the DATA argument: built-in data, a dataset folder, or a CSV/Parquet event log."""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohortrec.cli._common import CLIError, Console
from cohortrec.interactions import Interactions

__all__ = ["DEFAULT_SHOP_USERS", "LoadedData", "load_data"]

#: size of the built-in ``make_shop`` data used when no DATA is given
DEFAULT_SHOP_USERS = 20_000
DEFAULT_SHOP_ITEMS = 2_000
DEFAULT_SHOP_GROUPS = 8

# accepted column names for auto-detection, compared after lower-casing and
# removing "_", "-", " " and "."; the first match in each list wins
_USER_NAMES = ("userid", "user", "customerid", "customer", "visitorid", "visitor", "clientid", "client",
               "memberid", "member", "accountid", "account", "uid", "personid", "buyerid", "listenerid",
               "readerid", "viewerid")
_ITEM_NAMES = ("itemid", "item", "productid", "product", "movieid", "movie", "artistid", "artist",
               "trackid", "track", "songid", "song", "bookid", "book", "isbn", "articleid", "article",
               "stockcode", "sku", "asin", "contentid", "iid", "docid", "objectid")
_WEIGHT_NAMES = ("weight", "rating", "score", "value", "count", "plays", "playcount", "quantity", "qty",
                 "clicks", "strength", "amount")
_TIME_NAMES = ("timestamp", "time", "datetime", "date", "eventtime", "ts", "invoicedate", "createdat",
               "eventdate", "datetimeutc")
_TITLE_NAMES = ("title", "name", "itemname", "productname", "description", "movietitle", "artistname")
_CATEGORY_NAMES = ("categories", "category", "genres", "genre", "tags")

_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", ".csv.gz", ".tsv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class LoadedData:
    """What :func:`load_data` returns.

    Attributes
    ----------
    interactions : Interactions
        Users x items, with item side data (titles, categories) where known.
    name : str
        Short name of the data for reports.
    kind : str
        ``"shop"``, ``"movielens"``, ``"lastfm"`` or ``"events"``.
    positive_threshold : float or None
        Default value from which an interaction counts as positive in
        ``evaluate`` (4 stars for MovieLens, else any interaction).
    description : str
        One line on what was read and how columns were mapped.
    """

    interactions: Interactions
    name: str
    kind: str
    positive_threshold: float | None
    description: str


def _norm(name: Any) -> str:
    return "".join(ch for ch in str(name).lower() if ch not in "_- .")


def _find(columns: list[Any], names: tuple[str, ...], exclude: set[Any]) -> Any | None:
    normed = {}
    for c in columns:
        if c not in exclude:
            normed.setdefault(_norm(c), c)
    for n in names:
        if n in normed:
            return normed[n]
    return None


def load_data(
    data: str | None,
    console: Console,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    weight_col: str | None = None,
    time_col: str | None = None,
    shop_users: int = DEFAULT_SHOP_USERS,
    seed: int = 0,
) -> LoadedData:
    """Read ``data`` (``None`` = the built-in synthetic shop).

    Raises
    ------
    CLIError
        With a one-line message for a missing file, an empty file, a
        duplicate header, columns that cannot be mapped (listing the
        columns found), non-numeric weights, or an unknown folder format.
    """
    if data is None:
        return _shop(shop_users, seed)
    for flag, v in (("--user-col", user_col), ("--item-col", item_col)):
        if v is not None and not str(v).strip():
            raise CLIError(f"{flag} must name a column, got an empty string")
    path = Path(data).expanduser()
    if not path.exists():
        raise CLIError(f"DATA {str(data)!r} does not exist (give a CSV/Parquet event log or a dataset folder, "
                       "or no DATA for the built-in synthetic data)")
    if path.is_dir():
        if parquet_parts(path):
            return _event_file(path, user_col=user_col, item_col=item_col, weight_col=weight_col, time_col=time_col)
        return _folder(path)
    return _event_file(path, user_col=user_col, item_col=item_col, weight_col=weight_col, time_col=time_col)


def parquet_parts(path: Path) -> list[Path]:
    """The Parquet files of a folder (a Parquet dataset: ``*.parquet`` / ``*.pq``, sorted, recursive)."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(_PARQUET_SUFFIXES)
                  and not p.name.startswith((".", "_")))


def parquet_schema(path: Path) -> Any:
    """The Arrow schema of a Parquet file or folder; a folder's files must agree (else CLIError)."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    files = parquet_parts(path) if path.is_dir() else [path]
    if not files:
        raise CLIError(f"DATA folder {str(path)!r} holds no Parquet files")
    schema = None
    for f in files:
        try:
            sch = pq.read_schema(f)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise CLIError(f"DATA {str(f)!r} could not be read as Parquet ({_first_line(exc)})") from None
        sch = sch.remove_metadata()
        if schema is None:
            schema, first = sch, f
        elif not sch.equals(schema):
            a = {n: str(t) for n, t in zip(schema.names, schema.types)}
            b = {n: str(t) for n, t in zip(sch.names, sch.types)}
            diff = sorted(set(a.items()) ^ set(b.items()))
            raise CLIError(f"the Parquet files of {str(path)!r} have different schemas: {f.name} differs from "
                           f"{first.name} in {diff[:4]} (all files of a dataset need the same columns and types)")
    return schema


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _read_parquet_columns(path: Path, columns: list[Any]) -> pd.DataFrame:
    """Only ``columns`` of a Parquet file or folder, through pyarrow (no copy of the other columns).

    Dictionary-encoded strings become pandas categoricals; a folder's files are concatenated
    (empty files included: they add no rows).
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    files = parquet_parts(path) if path.is_dir() else [path]
    _check_fits_in_memory(path, files, columns)
    try:
        tables = [pq.read_table(f, columns=[str(c) for c in columns]) for f in files]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise CLIError(f"DATA {str(path)!r} could not be read as Parquet ({_first_line(exc)})") from None
    return table.to_pandas(self_destruct=True, split_blocks=True)


def _check_fits_in_memory(path: Path, files: list[Path], columns: list[Any]) -> None:
    """One-line error when the columns to read clearly exceed the memory available."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        import psutil  # noqa: PLC0415

        avail = psutil.virtual_memory().available
    except ImportError:
        return
    need = 0
    for f in files:
        md = pq.ParquetFile(f).metadata
        names = md.schema.names
        for rg in range(md.num_row_groups):
            g = md.row_group(rg)
            for ci in range(g.num_columns):
                if names[ci] in columns:
                    need += g.column(ci).total_uncompressed_size
    # the events, their codes and the matrix take several times the raw columns
    if need * 4 > avail:
        raise CLIError(f"DATA {str(path)!r} needs about {need * 4 / 1024**3:.1f} GiB of memory to load "
                       f"({need / 1024**3:.1f} GiB of columns), more than the {avail / 1024**3:.1f} GiB available: "
                       "split it into a folder of Parquet files and run on a Dask cluster "
                       "(cohortrec discover DATA --scheduler ADDRESS)")


def _shop(n_users: int, seed: int) -> LoadedData:
    from cohortrec.datasets import make_shop  # noqa: PLC0415

    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 50:
        raise CLIError(f"--shop-users must be an integer >= 50, got {n_users!r}")
    n_items = min(DEFAULT_SHOP_ITEMS, max(200, n_users // 5))
    shop = make_shop(int(n_users), n_items, DEFAULT_SHOP_GROUPS, seed=seed)
    X = shop.interactions
    return LoadedData(X, f"built-in synthetic shop ({X.n_users} users)", "shop", None,
                      f"built-in synthetic shop: make_shop({n_users}, {n_items}, {DEFAULT_SHOP_GROUPS}, "
                      f"seed={seed}), {DEFAULT_SHOP_GROUPS} planted groups")


def _folder(path: Path) -> LoadedData:
    from cohortrec.datasets import load_lastfm_hetrec, load_movielens  # noqa: PLC0415

    files = {p.name for p in path.iterdir()}
    if files & {"u.data", "ratings.csv", "ratings.dat"}:
        ds, kind, thr = load_movielens(path), "movielens", 4.0
    elif "user_artists.dat" in files:
        ds, kind, thr = load_lastfm_hetrec(path), "lastfm", None
    else:
        shown = sorted(files)[:12]
        more = f" and {len(files) - 12} more" if len(files) > 12 else ""
        raise CLIError(f"DATA folder {str(path)!r} is not a known dataset format (MovieLens: u.data, ratings.csv "
                       f"or ratings.dat; Last.fm HetRec: user_artists.dat); files found: {shown}{more}")
    X = ds.to_interactions()
    if X.nnz == 0:
        raise CLIError(f"DATA folder {str(path)!r} holds no interactions")
    return LoadedData(X, ds.name, kind, thr, f"{ds.name} from {path}: {X.n_users} users x {X.n_items} items, "
                      f"{X.nnz} interactions")


def _sniff_sep(path: Path) -> str:
    if path.name.endswith((".tsv", ".tsv.gz")):
        return "\t"
    if path.name.endswith(".gz"):
        return ","
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        head = fh.read(65536)
    first = head.splitlines()[0] if head.splitlines() else ""
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        return "\t" if first.count("\t") > first.count(",") else ","


def _header(path: Path, sep: str) -> list[str]:
    import gzip  # noqa: PLC0415

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        for row in csv.reader(fh, delimiter=sep):
            return row
    return []


def _read_events(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if path.stat().st_size == 0:
        raise CLIError(f"DATA {str(path)!r} is empty (0 bytes): expected a header line and one event per line")
    if name.endswith(_PARQUET_SUFFIXES):
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise CLIError(f"DATA {str(path)!r} could not be read as Parquet ({exc})") from None
    elif name.endswith(_TEXT_SUFFIXES) or "." not in name:
        sep = _sniff_sep(path)
        header = [h.strip() for h in _header(path, sep)]
        if not any(header):
            raise CLIError(f"DATA {str(path)!r} has no header line: expected column names first "
                           "(e.g. user_id,item_id,rating)")
        dups = sorted({h for h in header if header.count(h) > 1})
        if dups:
            raise CLIError(f"DATA {str(path)!r} has duplicate column names in its header: {dups} "
                           f"(columns found: {header})")
        try:
            df = pd.read_csv(path, sep=sep, dtype=str,  # "", "NA", "null"... are missing values
                             skipinitialspace=True)
        except pd.errors.EmptyDataError:
            raise CLIError(f"DATA {str(path)!r} is empty: expected a header line and one event per line") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise CLIError(f"DATA {str(path)!r} could not be parsed as a delimited text file ({exc})") from None
        df.columns = [str(c).strip() for c in df.columns]
    else:
        raise CLIError(f"DATA {str(path)!r} has an unknown file type: give a .csv, .tsv or .parquet event log "
                       "or a dataset folder")
    if df.columns.duplicated().any():
        dups = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise CLIError(f"DATA {str(path)!r} has duplicate column names: {dups}")
    if len(df) == 0:
        raise CLIError(f"DATA {str(path)!r} has a header but no rows (columns found: {list(df.columns)})")
    return df


def _pick(df: pd.DataFrame, given: str | None, names: tuple[str, ...], flag: str, what: str, path: Path,
          used: set[Any], required: bool) -> Any | None:
    cols = list(df.columns)
    if given is not None:
        if str(given).lower() in ("", "none"):
            if required:
                raise CLIError(f"{flag} is required: name the {what} column (columns found: {cols})")
            return None
        if given not in df.columns:
            raise CLIError(f"{flag} {given!r} is not a column of {str(path)!r} (columns found: {cols})")
        if given in used:
            raise CLIError(f"{flag} {given!r} is already used for another role")
        return given
    found = _find(cols, names, used)
    if found is None and required:
        raise CLIError(f"cannot tell which column of {str(path)!r} holds the {what}; columns found: {cols}; "
                       f"name it with {flag}")
    return found


def _event_file(path: Path, *, user_col: str | None, item_col: str | None, weight_col: str | None,
                time_col: str | None) -> LoadedData:
    if path.is_dir() or path.name.lower().endswith(_PARQUET_SUFFIXES):
        return _parquet_events(path, user_col=user_col, item_col=item_col, weight_col=weight_col,
                               time_col=time_col)
    return _events_frame(_read_events(path), path, user_col=user_col, item_col=item_col, weight_col=weight_col,
                         time_col=time_col)


def _parquet_events(path: Path, *, user_col: str | None, item_col: str | None, weight_col: str | None,
                    time_col: str | None) -> LoadedData:
    """A Parquet file or folder: the columns are chosen on the schema, then only those are read."""
    if path.is_file() and path.stat().st_size == 0:
        raise CLIError(f"DATA {str(path)!r} is empty (0 bytes): expected a Parquet event log")
    schema = parquet_schema(path)
    names = list(schema.names)
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise CLIError(f"DATA {str(path)!r} has duplicate column names: {dups}")
    head = pd.DataFrame(columns=names)
    roles = _roles(head, path, user_col=user_col, item_col=item_col, weight_col=weight_col, time_col=time_col)
    cols = [c for c in roles.values() if c is not None]
    df = _read_parquet_columns(path, cols)
    if len(df) == 0:
        raise CLIError(f"DATA {str(path)!r} has a header but no rows (columns found: {names})")
    return _events_frame(df, path, user_col=roles["user"], item_col=roles["item"], weight_col=roles["weight"],
                         time_col=roles["time"], title_col=roles["title"], cats_col=roles["cats"],
                         explicit={"weight": weight_col is not None})


def _roles(df: pd.DataFrame, path: Path, *, user_col: str | None, item_col: str | None, weight_col: str | None,
           time_col: str | None) -> dict[str, Any]:
    """Which column plays which role (user, item, weight, time, title, cats); CLIError when unclear."""
    used: set[Any] = set()
    user = _pick(df, user_col, _USER_NAMES, "--user-col", "user ids", path, used, True)
    used.add(user)
    item = _pick(df, item_col, _ITEM_NAMES, "--item-col", "item ids", path, used, True)
    used.add(item)
    weight = _pick(df, weight_col, _WEIGHT_NAMES, "--weight-col", "weights", path, used, False)
    if weight is not None:
        used.add(weight)
    tcol = _pick(df, time_col, _TIME_NAMES, "--time-col", "event times", path, used, False)
    if tcol is not None:
        used.add(tcol)
    title = _find(list(df.columns), _TITLE_NAMES, used)
    cats = _find(list(df.columns), _CATEGORY_NAMES, used | ({title} if title is not None else set()))
    return {"user": user, "item": item, "weight": weight, "time": tcol, "title": title, "cats": cats}


def _events_frame(df: pd.DataFrame, path: Path, *, user_col: str | None, item_col: str | None,
                  weight_col: str | None, time_col: str | None, title_col: Any = None, cats_col: Any = None,
                  explicit: dict[str, bool] | None = None) -> LoadedData:
    if explicit is not None:  # roles already chosen on the schema
        user, item, weight, tcol, title, cats = user_col, item_col, weight_col, time_col, title_col, cats_col
        weight_given = explicit.get("weight", False)
        used = {c for c in (user, item, weight, tcol) if c is not None}
    else:
        roles = _roles(df, path, user_col=user_col, item_col=item_col, weight_col=weight_col, time_col=time_col)
        user, item, weight, tcol, title, cats = (roles[k] for k in ("user", "item", "weight", "time", "title",
                                                                      "cats"))
        weight_given = weight_col is not None
        used = {c for c in (user, item, weight, tcol) if c is not None}
    return _build_loaded(df, path, user, item, weight, tcol, title, cats, weight_given, used)


def _build_loaded(df: pd.DataFrame, path: Path, user: Any, item: Any, weight: Any, tcol: Any, title: Any,
                  cats: Any, weight_given: bool, used: set[Any]) -> LoadedData:
    weight_col = weight if weight_given else None
    frame = pd.DataFrame({"user_id": df[user], "item_id": df[item]})
    if frame["user_id"].isna().all() or frame["item_id"].isna().all():
        raise CLIError(f"the {'user' if frame['user_id'].isna().all() else 'item'} column of {str(path)!r} "
                       "is empty on every row")
    if weight is not None:
        raw = df[weight]
        w = pd.to_numeric(raw, errors="coerce")
        bad = w.isna() & raw.notna()
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            how = "--weight-col" if weight_col is not None else "the weight column (--weight-col, auto-detected)"
            raise CLIError(f"{how} {weight!r} of {str(path)!r} must hold numbers, but data row {first + 1} has "
                           f"{str(raw.iloc[first])!r} ({int(bad.sum())} non-numeric values; use --weight-col none "
                           "to count events instead)")
        frame["weight"] = w.astype(np.float64)
    if tcol is not None:
        t = df[tcol]
        if pd.api.types.is_datetime64_any_dtype(t):
            ts = t.dt.tz_convert(None) if getattr(t.dt, "tz", None) is not None else t
        elif pd.api.types.is_numeric_dtype(t) or pd.to_numeric(t, errors="coerce").notna().mean() > 0.99:
            num = pd.to_numeric(t, errors="coerce")
            med = float(num.abs().median()) if num.notna().any() else 0.0
            unit = "ms" if med > 1e11 else "s"  # epoch milliseconds beyond year 5000 in seconds
            ts = pd.to_datetime(num, unit=unit, errors="coerce")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ts = pd.to_datetime(t, errors="coerce")
        if ts.isna().all():
            raise CLIError(f"the time column {tcol!r} of {str(path)!r} holds no readable dates or epoch seconds")
        frame["timestamp"] = ts
    # item side data carried in the event log: a title and categories
    items = None
    side = [c for c in (title, cats) if c is not None]
    if side:
        items = df[[item] + side].dropna(subset=[item]).drop_duplicates(item).set_index(item)
        items = items.rename(columns={c: n for c, n in ((title, "title"), (cats, "categories")) if c is not None})
        if items.index.dtype == object:
            items.index = items.index.astype(str)
    X = Interactions.from_frame(frame, user="user_id", item="item_id",
                                weight="weight" if weight is not None else None,
                                time="timestamp" if tcol is not None else None, items=items)
    if X.nnz == 0 or X.n_users == 0:
        raise CLIError(f"DATA {str(path)!r} holds no usable interactions after cleaning "
                       "(missing ids, negative or zero weights are dropped)")
    cleaned = ""
    rep = X.cleaning_report
    if rep is not None and len(rep):
        touched = rep[(rep["rows_touched"] > 0) & (rep["step"] != "aggregate")]
        if len(touched):
            cleaned = "; cleaning: " + ", ".join(f"{r.step} {int(r.rows_touched)}" for r in touched.itertuples())
    mapping = f"user={user!r}, item={item!r}, weight={weight!r}, time={tcol!r}"
    if side:
        mapping += f", item text={side!r}"
    return LoadedData(X, path.name, "events", None,
                      f"{path.name}: {X.n_users} users x {X.n_items} items, {X.nnz} interactions ({mapping})"
                      f"{cleaned}")


def data_label(data: str | None) -> str:
    """How DATA is named in messages."""
    return "built-in synthetic data" if data is None else os.fspath(data)
