"""One container for user x item interaction data.

:class:`Interactions` holds the user x item matrix (CSR), the maps between
external ids and row/column indices, and optionally the per-event table
(timestamps, event types, dwell times, quantities, prices), user features and
item side data (title, description, categories, price). Every estimator in
:mod:`cohortrec` that works on users takes one.

Build it from a table (pandas, polars or pyarrow) with
:meth:`Interactions.from_frame`, from a SciPy sparse matrix with
:meth:`Interactions.from_sparse`, or from a CSV/TSV/Parquet file with
:meth:`Interactions.from_files`. :meth:`~Interactions.from_frame` cleans the
events first (:func:`cohortrec.preprocessing.clean_events`) and keeps the
report of what each cleaning step touched in :attr:`Interactions.cleaning_report`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cohortrec._validation import check_sparse_structure

__all__ = ["Interactions", "to_pandas"]

# canonical names of the optional per-event columns
EVENT_COLUMNS = ("timestamp", "event", "dwell", "quantity", "price")


def to_pandas(table: Any, name: str = "df") -> pd.DataFrame:
    """A pandas DataFrame from a pandas, polars or pyarrow table.

    Parameters
    ----------
    table : pandas.DataFrame, polars.DataFrame, pyarrow.Table or mapping
    name : str
        Argument name used in error messages.
    """
    if isinstance(table, pd.DataFrame):
        return table
    mod = type(table).__module__.split(".")[0]
    if mod in ("polars", "pyarrow") and hasattr(table, "to_pandas"):
        return table.to_pandas()
    if hasattr(table, "__dataframe__") and not isinstance(table, Mapping):
        return pd.api.interchange.from_dataframe(table)
    if isinstance(table, Mapping):
        return pd.DataFrame(dict(table))
    raise TypeError(
        f"{name} must be a pandas/polars DataFrame, a pyarrow Table or a mapping of columns, "
        f"got {type(table).__name__}"
    )


def _as_index(ids: Any, n: int, name: str) -> pd.Index:
    if ids is None:
        return pd.RangeIndex(n)
    idx = pd.Index(ids)
    if len(idx) != n:
        raise ValueError(f"{name} must have {n} entries to match the matrix, got {len(idx)}")
    if not idx.is_unique:
        raise ValueError(f"{name} must be unique; {int(idx.duplicated().sum())} duplicates found")
    return idx


@dataclass
class Interactions:
    """User x item interactions with id maps, events and side data.

    Use the ``from_*`` constructors; the dataclass constructor takes already
    aligned parts.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Aggregated interaction strength (event counts, summed weights,
        ratings...). Stored in canonical CSR form.
    user_ids, item_ids : pandas.Index
        External id of every row / column (unique).
    events : pandas.DataFrame, optional
        One row per event with integer columns ``user`` and ``item`` (row and
        column indices) and any of ``timestamp``, ``event`` (``"view"``,
        ``"cart"``, ``"purchase"`` or other labels), ``dwell`` (seconds),
        ``quantity``, ``price``, ``weight``.
    users : pandas.DataFrame, optional
        User features, indexed by external user id in the row order.
    items : pandas.DataFrame, optional
        Item side data, indexed by external item id in the column order:
        any of ``title``, ``description``, ``categories`` (a list of labels,
        or one string with labels separated by ``|``), ``price``.
    cleaning_report : pandas.DataFrame, optional
        What each cleaning step did (see
        :func:`cohortrec.preprocessing.clean_events`).

    Examples
    --------
    >>> import pandas as pd
    >>> from cohortrec import Interactions
    >>> df = pd.DataFrame({"u": ["a", "a", "b"], "i": [10, 11, 10]})
    >>> X = Interactions.from_frame(df, user="u", item="i")
    >>> X.shape, X.matrix.toarray().tolist()
    ((2, 2), [[1.0, 1.0], [1.0, 0.0]])
    """

    matrix: sp.csr_matrix
    user_ids: pd.Index
    item_ids: pd.Index
    events: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    cleaning_report: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not sp.issparse(self.matrix):
            raise TypeError(f"matrix must be a scipy.sparse matrix, got {type(self.matrix).__name__}")
        check_sparse_structure(self.matrix, "matrix")
        M = sp.csr_matrix(self.matrix)
        if M.dtype not in (np.float32, np.float64):
            M = M.astype(np.float64)
        if not M.has_canonical_format:
            M = M.copy()
            M.sum_duplicates()
        self.matrix = M
        n, m = M.shape
        self.user_ids = _as_index(self.user_ids, n, "user_ids")
        self.item_ids = _as_index(self.item_ids, m, "item_ids")
        if self.users is not None:
            self.users = _align_side(to_pandas(self.users, "users"), self.user_ids, "users")
        if self.items is not None:
            self.items = _align_side(to_pandas(self.items, "items"), self.item_ids, "items")

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, int]:
        """(n_users, n_items)."""
        return self.matrix.shape

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        """Number of stored user-item pairs."""
        return self.matrix.nnz

    def __repr__(self) -> str:
        parts = [f"{self.n_users} users x {self.n_items} items, {self.nnz} pairs"]
        if self.events is not None:
            cols = [c for c in self.events.columns if c not in ("user", "item")]
            parts.append(f"{len(self.events)} events ({', '.join(cols) or 'no columns'})")
        if self.users is not None:
            parts.append(f"user features {list(self.users.columns)}")
        if self.items is not None:
            parts.append(f"item data {list(self.items.columns)}")
        return f"Interactions({'; '.join(parts)})"

    def user_index(self, ids: Any, *, missing: str = "raise") -> np.ndarray:
        """Row indices of external user ids.

        Parameters
        ----------
        ids : scalar or array-like
        missing : {"raise", "ignore"}
            Unknown ids raise ``KeyError``, or map to ``-1``.
        """
        return _lookup(self.user_ids, ids, missing, "user")

    def item_index(self, ids: Any, *, missing: str = "raise") -> np.ndarray:
        """Column indices of external item ids (see :meth:`user_index`)."""
        return _lookup(self.item_ids, ids, missing, "item")

    def copy(self) -> Interactions:
        return Interactions(
            self.matrix.copy(),
            self.user_ids,
            self.item_ids,
            None if self.events is None else self.events.copy(),
            None if self.users is None else self.users.copy(),
            None if self.items is None else self.items.copy(),
            None if self.cleaning_report is None else self.cleaning_report.copy(),
        )

    def with_matrix(self, matrix: Any) -> Interactions:
        """The same users, items and side data with another matrix of the same shape."""
        if not sp.issparse(matrix) or matrix.shape != self.shape:
            raise ValueError(f"matrix must be a sparse matrix of shape {self.shape}")
        check_sparse_structure(matrix, "matrix")
        return Interactions(
            sp.csr_matrix(matrix), self.user_ids, self.item_ids, self.events, self.users, self.items,
            self.cleaning_report,
        )

    def subset_users(self, rows: Any) -> Interactions:
        """The interactions of some users (indices or a boolean mask), events included."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (self.n_users,):
                raise ValueError(f"rows mask must have shape ({self.n_users},), got {rows.shape}")
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64)
        if rows.size and (rows.min() < -self.n_users or rows.max() >= self.n_users):
            raise IndexError(f"rows out of range for {self.n_users} users")
        rows = np.where(rows < 0, rows + self.n_users, rows)
        events = None
        if self.events is not None:
            remap = np.full(self.n_users, -1, dtype=np.int64)
            remap[rows] = np.arange(rows.size)
            new = remap[self.events["user"].to_numpy()]
            events = self.events.loc[new >= 0].copy()
            events["user"] = new[new >= 0]
            events = events.reset_index(drop=True)
        return Interactions(
            self.matrix[rows],
            self.user_ids[rows],
            self.item_ids,
            events,
            None if self.users is None else self.users.iloc[rows],
            self.items,
        )

    # ------------------------------------------------------------ side data
    def item_text(self, fields: Sequence[str] = ("title", "description", "categories")) -> list[str]:
        """One text per item: the given side-data fields joined (``""`` when absent).

        Categories given as lists are joined with spaces.
        """
        if self.items is None:
            return [""] * self.n_items
        parts = []
        for f in fields:
            if f not in self.items.columns:
                continue
            col = self.items[f]
            parts.append([_text_of(v) for v in col])
        if not parts:
            return [""] * self.n_items
        return [" ".join(p for p in row if p) for row in zip(*parts)]

    def item_categories(self, column: str = "categories") -> tuple[sp.csr_matrix, list[str]]:
        """Item x category indicator matrix and the category names.

        ``column`` holds one label, a list of labels or a ``|``-separated
        string per item (MovieLens genres). Items without categories have
        empty rows.
        """
        if self.items is None or column not in self.items.columns:
            return sp.csr_matrix((self.n_items, 0), dtype=np.float32), []
        labels = [_labels_of(v) for v in self.items[column]]
        names = sorted({c for row in labels for c in row})
        pos = {c: j for j, c in enumerate(names)}
        indptr = np.zeros(self.n_items + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r) for r in labels])
        indices = np.fromiter((pos[c] for row in labels for c in row), dtype=np.int64, count=int(indptr[-1]))
        data = np.ones(indices.size, dtype=np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=(self.n_items, len(names))), names

    def to_frame(self) -> pd.DataFrame:
        """The matrix as a long table ``user_id, item_id, value``."""
        coo = self.matrix.tocoo()
        return pd.DataFrame(
            {"user_id": self.user_ids[coo.row], "item_id": self.item_ids[coo.col], "value": coo.data}
        )

    # --------------------------------------------------------- constructors
    @classmethod
    def from_sparse(
        cls,
        X: Any,
        *,
        user_ids: Iterable[Any] | None = None,
        item_ids: Iterable[Any] | None = None,
        users: Any | None = None,
        items: Any | None = None,
    ) -> Interactions:
        """Wrap a SciPy sparse user x item matrix (or a dense array).

        Parameters
        ----------
        X : scipy.sparse matrix or array-like, shape (n_users, n_items)
            Non-negative finite values.
        user_ids, item_ids : sequence, optional
            External ids (default ``0..n-1``).
        users, items : table, optional
            Side data in row / column order, or indexed by the external ids.
        """
        if not sp.issparse(X):
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise ValueError(f"X must be 2-D, got shape {arr.shape}")
            X = sp.csr_matrix(arr)
        check_sparse_structure(X, "X")
        X = sp.csr_matrix(X)
        if not (np.issubdtype(X.dtype, np.number) and not np.issubdtype(X.dtype, np.complexfloating)):
            raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        if X.nnz and not np.isfinite(X.data).all():
            raise ValueError("X contains NaN or infinite values")
        n, m = X.shape
        return cls(X, _as_index(None if user_ids is None else list(user_ids), n, "user_ids"),
                   _as_index(None if item_ids is None else list(item_ids), m, "item_ids"),
                   users=users, items=items)

    @classmethod
    def from_frame(
        cls,
        df: Any,
        *,
        user: str = "user_id",
        item: str = "item_id",
        weight: str | None = None,
        time: str | None = None,
        event: str | None = None,
        dwell: str | None = None,
        quantity: str | None = None,
        price: str | None = None,
        event_weights: Mapping[Any, float] | None = None,
        users: Any | None = None,
        items: Any | None = None,
        user_ids: Iterable[Any] | None = None,
        item_ids: Iterable[Any] | None = None,
        negative: str = "drop",
        keep_events: bool = True,
        dtype: Any = np.float32,
    ) -> Interactions:
        """Build from an event or rating table (pandas, polars or pyarrow).

        Rows are cleaned first (:func:`cohortrec.preprocessing.clean_events`:
        missing ids dropped, non-finite and negative values handled, exact
        duplicate events dropped; the report is kept in
        :attr:`cleaning_report`). The matrix entry of a user-item pair is
        the sum over its events of ``weight`` (or 1 per event), each times
        ``event_weights[event type]`` when given.

        Parameters
        ----------
        df : pandas.DataFrame, polars.DataFrame or pyarrow.Table
        user, item : str
            Columns holding the external user and item ids.
        weight : str, optional
            Column with the strength of each event (rating, play count...);
            default 1 per event.
        time, event, dwell, quantity, price : str, optional
            Per-event columns kept in :attr:`events` as ``timestamp``,
            ``event``, ``dwell``, ``quantity``, ``price``. ``time`` may be
            datetimes or numbers (seconds since the epoch).
        event_weights : mapping, optional
            Multiplier per event type, e.g.
            ``{"view": 1, "cart": 3, "purchase": 5}``; types not listed get
            weight 0 and are left out of the matrix (they stay in
            :attr:`events`). Needs ``event``.
        users, items : table, optional
            User features / item side data indexed by (or with a first
            column holding) the external ids; rows for unknown ids are
            dropped, missing ones are NaN.
        user_ids, item_ids : sequence, optional
            Fix the row / column order to these ids (e.g. a trained model's
            item vocabulary); events with other ids are dropped and counted
            in the report.
        negative : {"drop", "clip", "keep"}
            What to do with negative ``weight`` / ``quantity`` values.
        keep_events : bool, default True
            Keep the per-event table (needed by
            :func:`cohortrec.preprocessing.user_features`).
        dtype : float32 or float64
            Matrix dtype.

        Returns
        -------
        Interactions
        """
        from cohortrec.preprocessing import clean_events  # noqa: PLC0415

        frame = to_pandas(df, "df")
        for arg, col in (("user", user), ("item", item), ("weight", weight), ("time", time),
                         ("event", event), ("dwell", dwell), ("quantity", quantity), ("price", price)):
            if col is not None and col not in frame.columns:
                raise ValueError(f"{arg}={col!r} is not a column of df (columns: {list(frame.columns)})")
        if event_weights is not None and event is None:
            raise ValueError("event_weights needs the event= column")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        rename = {user: "user_id", item: "item_id"}
        for canon, col in (("weight", weight), ("timestamp", time), ("event", event), ("dwell", dwell),
                           ("quantity", quantity), ("price", price)):
            if col is not None:
                rename[col] = canon
        ev = frame[list(rename)].rename(columns=rename)
        ev, report = clean_events(ev, negative=negative)
        if len(ev) == 0:
            raise ValueError(f"df has no valid event left after cleaning ({len(frame)} rows in); what each "
                             f"step removed:\n{report.to_string(index=False)}")
        rows_report = [report]
        # fix vocabularies
        u_index, u_codes, dropped_u = _codes(ev["user_id"], user_ids)
        i_index, i_codes, dropped_i = _codes(ev["item_id"], item_ids)
        keep = (u_codes >= 0) & (i_codes >= 0)
        if not keep.all():
            rows_report.append(pd.DataFrame(
                [{"step": "unknown ids", "rows_in": len(ev), "rows_touched": int((~keep).sum()),
                  "rule": f"dropped: {dropped_u} events of users and {dropped_i} of items outside the given "
                          "user_ids/item_ids"}]))
            ev = ev.loc[keep]
            u_codes, i_codes = u_codes[keep], i_codes[keep]
        n, m = len(u_index), len(i_index)
        w = ev["weight"].to_numpy(np.float64) if "weight" in ev.columns else np.ones(len(ev))
        if event_weights is not None:
            mult = ev["event"].map(dict(event_weights)).fillna(0.0).to_numpy(np.float64)
            w = w * mult
        nz = w != 0
        M = sp.csr_matrix((w[nz], (u_codes[nz], i_codes[nz])), shape=(n, m), dtype=np.float64)
        M.sum_duplicates()
        pairs = int(nz.sum())
        rows_report.append(pd.DataFrame([{
            "step": "aggregate", "rows_in": pairs, "rows_touched": pairs - M.nnz,
            "rule": "events of the same user-item pair summed into one matrix entry",
        }]))
        M.eliminate_zeros()
        M = M.astype(dtype)
        events = None
        if keep_events:
            events = ev.drop(columns=["user_id", "item_id"]).reset_index(drop=True)
            events.insert(0, "item", i_codes.astype(np.int64))
            events.insert(0, "user", u_codes.astype(np.int64))
        return cls(M, u_index, i_index, events, users=users, items=items,
                   cleaning_report=pd.concat(rows_report, ignore_index=True))

    @classmethod
    def from_files(
        cls,
        path: str | os.PathLike[str],
        *,
        items_path: str | os.PathLike[str] | None = None,
        users_path: str | os.PathLike[str] | None = None,
        sep: str | None = None,
        encoding: str | None = None,
        **kwargs: Any,
    ) -> Interactions:
        """Build from an event file (``.csv``, ``.tsv``, ``.dat``, ``.parquet``).

        ``items_path`` / ``users_path`` name side-data files whose first
        column is the id. ``sep`` defaults to ``","`` for ``.csv``, tab
        otherwise. Remaining keyword arguments go to :meth:`from_frame`.
        """
        def read(p: str | os.PathLike[str]) -> pd.DataFrame:
            p = os.fspath(p)
            if not os.path.exists(p):
                raise FileNotFoundError(f"no such file: {p}")
            if p.endswith((".parquet", ".pq")):
                return pd.read_parquet(p)
            s = sep if sep is not None else ("," if p.endswith(".csv") else "\t")
            return pd.read_csv(p, sep=s, encoding=encoding)

        items = read(items_path) if items_path is not None else None
        users = read(users_path) if users_path is not None else None
        return cls.from_frame(read(path), items=items, users=users, **kwargs)


# ---------------------------------------------------------------- helpers
def _lookup(index: pd.Index, ids: Any, missing: str, what: str) -> np.ndarray:
    if missing not in ("raise", "ignore"):
        raise ValueError(f"missing must be 'raise' or 'ignore', got {missing!r}")
    scalar = np.isscalar(ids)
    arr = [ids] if scalar else list(ids)
    pos = index.get_indexer(arr)
    if missing == "raise" and (pos < 0).any():
        bad = [a for a, p in zip(arr, pos) if p < 0][:5]
        raise KeyError(f"unknown {what} ids: {bad}")
    return pos[0] if scalar else pos.astype(np.int64)


def _codes(col: pd.Series, vocab: Iterable[Any] | None) -> tuple[pd.Index, np.ndarray, int]:
    if vocab is None:
        codes, uniques = pd.factorize(col, sort=True)
        return pd.Index(uniques), codes.astype(np.int64), 0
    index = _as_index(list(vocab), len(list(vocab)), "ids")
    codes = index.get_indexer(col)
    return index, codes.astype(np.int64), int((codes < 0).sum())


def _align_side(df: pd.DataFrame, ids: pd.Index, name: str) -> pd.DataFrame:
    """Side data re-indexed to ``ids`` (by index when it matches, else by first column)."""
    if len(df) == len(ids) and df.index.equals(ids):
        return df
    if df.index.isin(ids).any() and not isinstance(df.index, pd.RangeIndex):
        out = df[~df.index.duplicated()].reindex(ids)
    elif len(df.columns) and df.iloc[:, 0].isin(ids).any():
        key = df.columns[0]
        out = df.drop_duplicates(key).set_index(key).reindex(ids)
    elif len(df) == len(ids):
        out = df.set_axis(ids, axis=0)
    else:
        raise ValueError(
            f"{name} must be indexed by the external ids, hold them in its first column, "
            f"or have one row per id in order ({len(ids)} rows)"
        )
    out.index.name = None
    return out


def _text_of(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (list, tuple, np.ndarray)):
        return " ".join(str(x) for x in v)
    return str(v).replace("|", " ")


def _labels_of(v: Any) -> list[str]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return []
    if isinstance(v, (list, tuple, np.ndarray)):
        return list(dict.fromkeys(str(x) for x in v))
    s = str(v)
    if s in ("", "(no genres listed)"):
        return []
    return list(dict.fromkeys(p.strip() for p in s.split("|") if p.strip()))
