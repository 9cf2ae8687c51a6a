"""Scale out on a Dask cluster: K-means, cosine neighbours, batch recommendation.

Optional extra: ``pip install "cohortrec[dask]"``. Every function here maps
the native kernels of :mod:`cohortrec.ops` over row blocks on the workers (CPU
or GPU per worker, through ``device``) and reduces the small per-block
results on the client in a fixed order, so results are deterministic and equal
to the single-machine ones (to float tolerance) whatever the number of
workers.

Fault handling: blocks that come from a Dask graph (a Dask array, delayed
objects, Parquet partitions) are recomputed by Dask when a worker is lost;
blocks scattered from local memory are replicated on two workers. Each task is
a pure function of its inputs and the reduction runs on the client in block
order, so a retried task cannot change the result.

Inputs are *row blocks*: a row-chunked :class:`dask.array.Array`, a sequence
of NumPy arrays or SciPy CSR matrices (e.g. one per ``dask.bag`` or
``dask.dataframe`` partition), a sequence of ``dask.delayed`` objects, or
:class:`RowBlocks` from :func:`read_parquet_events`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from cohortrec import ops
from cohortrec._validation import check_int, check_sparse_structure
from cohortrec.cluster import relocate, tolerance_from_variances, update_centers
from cohortrec.ops import row_topk

try:  # optional extra
    import dask  # noqa: F401 - the extra must be installed
    import dask.array as da
    from dask.delayed import Delayed, delayed
    from distributed import Client, get_client
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "cohortrec.distributed needs dask and distributed: pip install 'cohortrec[dask]'"
    ) from exc

__all__ = [
    "KMeans",
    "RowBlocks",
    "as_row_blocks",
    "cosine_topk",
    "read_parquet_events",
    "recommend_all",
]


# --------------------------------------------------------------------- inputs
@dataclass
class RowBlocks:
    """Row blocks of one matrix living on the cluster.

    Attributes
    ----------
    futures : list of distributed.Future
        One per block, in row order.
    shapes : list of (int, int)
        Shape of each block.
    row_ids : list of ndarray or None
        External ids of the rows of each block (from Parquet), if known.
    col_ids : ndarray or None
        External ids of the columns (items), if known.
    """

    futures: list[Any]
    shapes: list[tuple[int, int]]
    row_ids: list[np.ndarray] | None = None
    col_ids: np.ndarray | None = None
    sources: list[Any] | None = None  # delayed objects or local blocks, to rebuild lost ones
    offsets: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        widths = {s[1] for s in self.shapes}
        if len(widths) > 1:
            raise ValueError(f"row blocks must all have the same number of columns, got {sorted(widths)}")
        self.offsets = np.concatenate([[0], np.cumsum([s[0] for s in self.shapes])]).astype(np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.offsets[-1]), (self.shapes[0][1] if self.shapes else 0)

    def __len__(self) -> int:
        return len(self.futures)

    def heal(self, client: Client) -> None:
        """Recreate the futures of blocks lost with a worker (from ``sources``)."""
        if self.sources is None:
            return
        for i, f in enumerate(self.futures):
            if f.status in ("lost", "cancelled", "error"):
                src = self.sources[i]
                self.futures[i] = (client.compute(src) if isinstance(src, Delayed)
                                   else client.scatter(src, hash=False))


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    try:
        return get_client()
    except ValueError:
        raise ValueError(
            "no Dask client: pass client=... or create one first (distributed.Client(...))"
        ) from None


def _map_blocks(c: Client, fn: Callable[..., Any], blocks: RowBlocks, *args: Any,
                per_block: Sequence[Sequence[Any]] | None = None, retries: int = 3) -> list[Any]:
    """``[fn(block, *args, *per_block[i]) for each block]`` on the workers, gathered in order.

    Array arguments are broadcast once. If a worker dies mid-round and takes
    a block, a broadcast copy or a result with it, lost blocks are rebuilt
    from their sources and the round is run again: the tasks are pure, so a
    retried round gives the same answer.
    """
    from distributed.client import FutureCancelledError, FuturesCancelledError

    last: Exception | None = None
    for _ in range(retries + 1):
        blocks.heal(c)
        try:
            # hash=False: equal arrays scattered in two rounds must not share a
            # key, or releasing the old round's future would drop the new one's.
            shared = [c.scatter(a, broadcast=True, hash=False) if isinstance(a, np.ndarray) else a
                      for a in args]
            futs = [c.submit(fn, b, *shared, *(per_block[i] if per_block else ()), pure=False)
                    for i, b in enumerate(blocks.futures)]
            return c.gather(futs)
        except (FutureCancelledError, FuturesCancelledError, OSError) as exc:
            last = exc
    raise RuntimeError(f"a distributed round kept failing after {retries} retries: {last}") from last


def _shape(block: Any) -> tuple[int, int]:
    if block.ndim != 2:
        raise ValueError(f"every row block must be 2-D, got shape {block.shape}")
    return tuple(int(s) for s in block.shape)  # type: ignore[return-value]


def as_row_blocks(X: Any, client: Client | None = None) -> RowBlocks:
    """Put the row blocks of ``X`` on the cluster (see the module docstring).

    Parameters
    ----------
    X : dask.array.Array, RowBlocks, or sequence of ndarray / CSR / dask.delayed
    client : distributed.Client, optional
        Defaults to the current client.

    Returns
    -------
    RowBlocks
    """
    if isinstance(X, RowBlocks):
        return X
    c = _client(client)
    if isinstance(X, da.Array):
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got a dask array of shape {X.shape}")
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})  # row blocks hold whole rows
        # Computed from the graph (not persisted and dropped), so a block lost
        # with its worker is recomputed by the scheduler.
        parts = list(X.to_delayed().ravel())
        futures = c.compute(parts)
        shapes = [(int(r), int(X.shape[1])) for r in X.chunks[0]]
        return RowBlocks(futures, shapes, sources=parts)
    if isinstance(X, (np.ndarray, sp.spmatrix, sp.sparray)):
        raise TypeError(
            "X must be row blocks (a dask array or a sequence of blocks); for one in-memory "
            "matrix use cohortrec.ops / cohortrec.KMeans directly"
        )
    if not isinstance(X, Sequence) or len(X) == 0:
        raise ValueError("X must be a non-empty sequence of row blocks or a dask array")
    if all(isinstance(b, Delayed) for b in X):
        futures = c.compute(list(X))
        shapes = c.gather(c.map(_shape, futures))
        return RowBlocks(futures, shapes, sources=list(X))
    blocks = []
    for i, b in enumerate(X):
        if sp.issparse(b):
            check_sparse_structure(b, f"row block {i}")
            blocks.append(sp.csr_matrix(b))
        elif isinstance(b, np.ndarray):
            blocks.append(b)
        else:
            raise TypeError(f"row block {i} must be an ndarray or a scipy.sparse matrix, got {type(b).__name__}")
    shapes = [_shape(b) for b in blocks]
    futures = c.scatter(blocks, hash=False)
    return RowBlocks(futures, shapes, sources=blocks)


def read_parquet_events(
    path: str | os.PathLike[str],
    *,
    user: str,
    item: str,
    weight: str | None = None,
    client: Client | None = None,
    shuffle: bool | None = None,
) -> RowBlocks:
    """Row blocks of a user x item CSR from a Parquet event log.

    The log is read with :func:`dask.dataframe.read_parquet`; events are
    shuffled by user unless each partition already holds whole users, and
    duplicate (user, item) events are summed. Items get one global index
    (sorted external ids) shared by every block.

    Parameters
    ----------
    path : str or path-like
        Parquet file or directory (partitioned by user for best results).
    user, item : str
        Column names of the user and item ids.
    weight : str, optional
        Column of event weights (1 per event by default).
    client : distributed.Client, optional
    shuffle : bool, optional
        Shuffle the events by user (True), or trust that every partition
        holds whole users (False). Default: shuffle unless the partitions'
        user-id ranges are disjoint (then no user can span two), which one
        pass over the user column finds out.

    Returns
    -------
    RowBlocks
        With ``row_ids`` (users of each block) and ``col_ids`` (items).
    """
    import dask.dataframe as dd

    c = _client(client)
    cols = [user, item] + ([weight] if weight else [])
    ddf = dd.read_parquet(os.fspath(path))
    missing = [col for col in cols if col not in ddf.columns]
    if missing:
        raise ValueError(f"columns {missing} not found in {path}; it has {list(ddf.columns)}")
    ddf = ddf[cols]
    items = np.sort(np.asarray(ddf[item].dropna().unique().compute()))
    if shuffle is None:
        shuffle = not _disjoint_user_ranges(ddf, user)
    if shuffle:
        ddf = ddf.shuffle(on=user)
    item_f = c.scatter(items, broadcast=True)
    parts = ddf.to_delayed()
    blocks = c.compute([delayed(_events_to_csr)(p, user, item, weight, item_f) for p in parts])
    meta = c.gather(c.map(_block_meta, blocks))
    keep = [i for i, (shape, _) in enumerate(meta) if shape[0] > 0]
    return RowBlocks(
        [c.submit(_pick_matrix, blocks[i]) for i in keep],
        [meta[i][0] for i in keep],
        row_ids=[meta[i][1] for i in keep],
        col_ids=items,
    )


def _user_range(df: Any, user: str) -> list:
    u = df[user].dropna()
    return [[u.min(), u.max()]] if len(u) else []


def _disjoint_user_ranges(ddf: Any, user: str) -> bool:
    """Whether the partitions' [min, max] user ids do not overlap (so each holds whole users)."""
    parts = dask.compute(*[delayed(_user_range)(p, user) for p in ddf.to_delayed()])
    ranges = sorted(r[0] for r in parts if r)
    try:
        return all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))
    except TypeError:  # ids that do not order
        return False


def _events_to_csr(df: Any, user: str, item: str, weight: str | None, items: np.ndarray) -> tuple:
    df = df.dropna(subset=[user, item])
    users, u_idx = np.unique(np.asarray(df[user]), return_inverse=True)
    i_idx = np.searchsorted(items, np.asarray(df[item]))
    w = np.asarray(df[weight], dtype=np.float64) if weight else np.ones(len(df))
    M = sp.csr_matrix((w, (u_idx, i_idx)), shape=(len(users), len(items)))
    M.sum_duplicates()
    return M, users


def _block_meta(block: tuple) -> tuple[tuple[int, int], np.ndarray]:
    return _shape(block[0]), block[1]


def _pick_matrix(block: tuple) -> sp.csr_matrix:
    return block[0]


# -------------------------------------------------------------------- K-means
def _block_stats(
    block: Any, centers: np.ndarray, device: str, n_threads: int | None
) -> tuple[np.ndarray, np.ndarray, float, bytes]:
    """One Lloyd step on one block: (sums, counts, inertia, digest of the labels).

    Only a 16-byte digest of the labels travels back (for the "no label
    changed" convergence test), not 8 bytes per row every iteration.
    """
    import hashlib

    labels, sq = ops.kmeans_assign(block, centers, device=device, n_threads=n_threads)
    sums, counts = ops.kmeans_update(block, labels, centers.shape[0], device=device, n_threads=n_threads)
    digest = hashlib.blake2b(np.ascontiguousarray(labels).tobytes(), digest_size=16).digest()
    return sums.astype(np.float64), counts.astype(np.float64), float(np.sum(sq, dtype=np.float64)), digest


def _block_farthest(block: Any, centers: np.ndarray, m: int, device: str,
                    n_threads: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``m`` rows of a block farthest from their centres: (squared distances, rows, labels)."""
    labels, sq = ops.kmeans_assign(block, centers, device=device, n_threads=n_threads)
    m = min(m, labels.size)
    idx = np.sort(np.argpartition(sq, -m)[-m:]) if m else np.zeros(0, np.int64)
    rows = block[idx].toarray() if sp.issparse(block) else np.asarray(block)[idx]
    return sq[idx].astype(np.float64), np.asarray(rows, dtype=np.float64).reshape(m, centers.shape[1]), labels[idx]


def _block_moments(block: Any) -> tuple[int, np.ndarray, np.ndarray]:
    """(rows, column sums, column sums of squares) for the tolerance scale."""
    if sp.issparse(block):
        s = np.asarray(block.sum(axis=0), dtype=np.float64).ravel()
        s2 = np.asarray(block.multiply(block).sum(axis=0), dtype=np.float64).ravel()
    else:
        b = np.asarray(block, dtype=np.float64)
        s, s2 = b.sum(axis=0), (b * b).sum(axis=0)
    return block.shape[0], s, s2


def _block_min_sq(block: Any, centers: np.ndarray, n_threads: int | None) -> np.ndarray:
    return ops.kmeans_assign(block, centers, n_threads=n_threads)[1].astype(np.float64)


def _block_sample(block: Any, centers: np.ndarray, ell: float, phi: float, seed: list[int],
                  n_threads: int | None) -> np.ndarray:
    """k-means|| oversampling: row i kept with probability min(1, ell d_i^2 / phi)."""
    sq = ops.kmeans_assign(block, centers, n_threads=n_threads)[1].astype(np.float64)
    rng = np.random.default_rng(seed)
    keep = np.flatnonzero(rng.random(sq.shape[0]) < np.minimum(1.0, ell * sq / phi))
    rows = block[keep]
    return rows.toarray() if sp.issparse(rows) else np.asarray(rows)


def _block_sample_seeded(block: Any, centers: np.ndarray, ell: float, phi: float, n_threads: int | None,
                         seed: list[int]) -> np.ndarray:
    return _block_sample(block, centers, ell, phi, seed, n_threads)


def _block_counts(block: Any, centers: np.ndarray, n_threads: int | None) -> np.ndarray:
    labels = ops.kmeans_assign(block, centers, n_threads=n_threads)[0]
    return np.bincount(labels, minlength=centers.shape[0]).astype(np.float64)


def _block_assign(block: Any, centers: np.ndarray, device: str, n_threads: int | None
                  ) -> tuple[np.ndarray, float]:
    labels, sq = ops.kmeans_assign(block, centers, device=device, n_threads=n_threads)
    return labels, float(np.sum(sq, dtype=np.float64))


def _block_labels(block: Any, centers: np.ndarray, device: str, n_threads: int | None) -> np.ndarray:
    return ops.kmeans_assign(block, centers, device=device, n_threads=n_threads)[0]


def _block_row(block: Any, i: int) -> np.ndarray:
    row = block[i]
    return (row.toarray() if sp.issparse(row) else np.asarray(row)).reshape(-1)


class KMeans(ClusterMixin, BaseEstimator):
    """K-means (Lloyd) over row blocks on a Dask cluster.

    A scikit-learn estimator: ``get_params`` / ``set_params``, ``fit``,
    ``predict``, ``fit_predict``, fitted attributes ending in ``_``.

    Each iteration maps ``ops.kmeans_assign`` + ``ops.kmeans_update`` over
    the blocks on the workers and adds the per-block sums and counts on the
    client in block order. With the same data and initial centres, the
    result equals single-machine Lloyd (``cohortrec.KMeans(algorithm="lloyd")``
    or scikit-learn's) to float tolerance.

    Parameters
    ----------
    n_clusters : int, default 8
    init : {"k-means||", "k-means++", "random"} or ndarray of shape (n_clusters, d)
        ``"k-means||"`` is scalable k-means++ (Bahmani et al. 2012): a few
        oversampling rounds on the cluster, then weighted k-means++ on the
        candidates. ``"k-means++"`` runs k-means++ on a uniform sample of
        at most ``init_sample`` rows gathered to the client. ``"random"``:
        ``n_clusters`` distinct random rows. An array gives the initial
        centres (then ``n_init`` runs are all the same: one is run).
    n_init : int, default 1
        Runs with different initialisations (seeds drawn from
        ``random_state``); the one with the lowest inertia is kept. Every
        run is a full distributed Lloyd, so each costs as much as a fit.
    max_iter : int, default 300
    tol : float, default 1e-4
        Relative tolerance on the centre shift, scaled like scikit-learn's
        (by the mean per-feature variance).
    random_state : int or None
    oversampling : float, default 2.0
        k-means|| draws ``oversampling * n_clusters`` candidates per round.
    init_rounds : int, default 5
    init_sample : int, default 100_000
    device : {"auto", "cpu", "cuda"}
        Device used on each worker.
    n_threads : int, optional
        Threads per task on each worker.
    client : distributed.Client, optional
    verbose : bool, default False

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, d)
    labels_ : ndarray of int64, shape (n,)
        Gathered to the client (8 bytes per row).
    inertia_ : float
    n_iter_ : int
    n_features_in_ : int
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: str | np.ndarray = "k-means||",
        n_init: int = 1,
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: int | None = None,
        oversampling: float = 2.0,
        init_rounds: int = 5,
        init_sample: int = 100_000,
        device: str = "auto",
        n_threads: int | None = None,
        client: Client | None = None,
        verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.oversampling = oversampling
        self.init_rounds = init_rounds
        self.init_sample = init_sample
        self.device = device
        self.n_threads = n_threads
        self.client = client
        self.verbose = verbose

    # hook for tests (e.g. killing a worker between iterations)
    _after_iteration: Callable[[int], None] | None = None

    def fit(self, X: Any, y: None = None) -> KMeans:
        """Cluster the rows of ``X`` (see :func:`as_row_blocks` for the inputs).

        Parameters
        ----------
        X : dask.array.Array, RowBlocks, or sequence of ndarray / CSR / dask.delayed
        y : ignored

        Returns
        -------
        self
        """
        k = check_int(self.n_clusters, "n_clusters", minimum=1)
        check_int(self.max_iter, "max_iter", minimum=1)
        n_init = check_int(self.n_init, "n_init", minimum=1)
        if isinstance(self.init, str):
            if self.init not in ("k-means||", "k-means++", "random"):
                raise ValueError(f"init must be 'k-means||', 'k-means++', 'random' or an array, got {self.init!r}")
        else:
            n_init = 1  # the same centres every run
        c = _client(self.client)
        blocks = as_row_blocks(X, c)
        n, d = blocks.shape
        if n < k:
            raise ValueError(f"n_samples={n} should be >= n_clusters={k}")
        rng = np.random.default_rng(self.random_state)

        moments = _map_blocks(c, _block_moments, blocks)
        s = sum(m[1] for m in moments)
        s2 = sum(m[2] for m in moments)
        variance = np.maximum(s2 / n - (s / n) ** 2, 0.0)
        tol_abs = tolerance_from_variances(variance, float(self.tol))
        best = None
        for _ in range(n_init):
            run = self._fit_once(c, blocks, k, d, rng, tol_abs)
            if best is None or run[2] < best[2]:
                best = run
        centers, labels, inertia, it = best
        self.cluster_centers_ = centers
        self.labels_ = labels
        self.inertia_ = inertia
        self.n_iter_ = it
        self.n_features_in_ = d
        return self

    def _fit_once(self, c: Client, blocks: RowBlocks, k: int, d: int, rng: np.random.Generator,
                  tol_abs: float) -> tuple[np.ndarray, np.ndarray, float, int]:
        """One initialisation and its Lloyd iterations: (centres, labels, inertia, iterations)."""
        max_iter = int(self.max_iter)
        centers = self._initial_centers(c, blocks, k, d, rng)
        labels_prev: list[bytes] | None = None
        it = 0
        for it in range(1, max_iter + 1):
            stats = self._stats(c, blocks, centers)
            sums = np.zeros((k, d))
            counts = np.zeros(k)
            for b_sums, b_counts, _, _ in stats:  # fixed block order: deterministic
                sums += b_sums
                counts += b_counts
            labels = [st[3] for st in stats]
            empty = np.flatnonzero(counts == 0)
            if empty.size:  # the core's rule: each empty cluster takes a point farthest from its centre
                self._relocate_empty(c, blocks, centers, sums, counts, empty)
            new = update_centers(sums, counts, centers)
            shift = float(((new - centers) ** 2).sum())
            centers = new
            if self.verbose:
                print(f"iteration {it}: inertia {sum(st[2] for st in stats):.6g}, shift {shift:.3g}")
            if self._after_iteration is not None:
                self._after_iteration(it)
            if labels_prev is not None and labels == labels_prev:
                break
            if shift <= tol_abs:
                break
            labels_prev = labels
        # Final E-step so labels_ and inertia_ match the returned centres
        # (gathers the labels once, at the end).
        final = _map_blocks(c, _block_assign, blocks, centers, self.device, self.n_threads)
        labels_out = np.concatenate([lab for lab, _ in final]) if final else np.zeros(0, np.int64)
        return centers, labels_out, float(sum(inertia for _, inertia in final)), it

    def _relocate_empty(self, c: Client, blocks: RowBlocks, centers: np.ndarray, sums: np.ndarray,
                        counts: np.ndarray, empty: np.ndarray) -> None:
        """The in-memory fit's empty-cluster rule over blocks: the farthest points of all blocks win."""
        m = int(empty.size)
        found = _map_blocks(c, _block_farthest, blocks, centers, m, self.device, self.n_threads)
        dist = np.concatenate([f[0] for f in found])
        rows = np.vstack([f[1] for f in found])
        old = np.concatenate([f[2] for f in found])
        m = min(m, dist.size)
        best = np.argsort(-dist, kind="stable")[:m]  # block order breaks ties: deterministic
        relocate(sums, counts, empty[:m], rows[best], np.ones(m), old[best])

    def _stats(self, c: Client, blocks: RowBlocks, centers: np.ndarray) -> list[tuple]:
        return _map_blocks(c, _block_stats, blocks, centers, self.device, self.n_threads)

    def _initial_centers(self, c: Client, blocks: RowBlocks, k: int, d: int,
                         rng: np.random.Generator) -> np.ndarray:
        init = self.init
        if not isinstance(init, str):
            centers = np.array(init, dtype=np.float64)
            if centers.shape != (k, d):
                raise ValueError(f"init must have shape ({k}, {d}), got {centers.shape}")
            return centers
        if init == "k-means++":
            return self._init_plusplus_sample(c, blocks, k, rng)
        if init == "k-means||":
            return self._init_parallel(c, blocks, k, rng)
        if init == "random":
            return self._random_rows(c, blocks, k, rng).astype(np.float64)
        raise ValueError(f"init must be 'k-means||', 'k-means++', 'random' or an array, got {init!r}")

    def _random_rows(self, c: Client, blocks: RowBlocks, m: int, rng: np.random.Generator) -> np.ndarray:
        n = blocks.shape[0]
        idx = np.sort(rng.choice(n, size=min(m, n), replace=False))
        which = np.searchsorted(blocks.offsets, idx, side="right") - 1
        futs = [c.submit(_block_row, blocks.futures[b], int(i - blocks.offsets[b]))
                for b, i in zip(which, idx)]
        return np.vstack(c.gather(futs)) if futs else np.zeros((0, blocks.shape[1]))

    def _init_plusplus_sample(self, c: Client, blocks: RowBlocks, k: int,
                              rng: np.random.Generator) -> np.ndarray:
        from sklearn.cluster import kmeans_plusplus

        sample = self._random_rows(c, blocks, max(int(self.init_sample), k), rng)
        centers, _ = kmeans_plusplus(sample, k, random_state=int(rng.integers(2**31)))
        return centers.astype(np.float64)

    def _init_parallel(self, c: Client, blocks: RowBlocks, k: int, rng: np.random.Generator) -> np.ndarray:
        """k-means|| (Bahmani et al. 2012, "Scalable K-Means++")."""
        from sklearn.cluster import kmeans_plusplus

        cand = self._random_rows(c, blocks, 1, rng)
        ell = float(self.oversampling) * k
        seed0 = int(rng.integers(2**31))
        for r in range(int(self.init_rounds)):
            phi = float(sum(np.sum(x) for x in _map_blocks(c, _block_min_sq, blocks, cand,
                                                            self.n_threads)))
            if phi <= 0:
                break
            # per-(round, block) seeds: the draw does not depend on scheduling
            seeds = [([seed0, r, i],) for i in range(len(blocks))]
            new = _map_blocks(c, _block_sample_seeded, blocks, cand, ell, phi, self.n_threads,
                              per_block=seeds)
            cand = np.vstack([cand] + [x for x in new if len(x)])
        if cand.shape[0] <= k:  # degenerate data: top up with random rows
            extra = self._random_rows(c, blocks, k, rng)
            cand = np.unique(np.vstack([cand, extra]), axis=0)
            if cand.shape[0] < k:
                cand = np.vstack([cand, extra[: k - cand.shape[0]]])
            return cand[:k].astype(np.float64)
        weights = sum(_map_blocks(c, _block_counts, blocks, cand, self.n_threads))
        centers, _ = kmeans_plusplus(cand, k, sample_weight=weights + 1e-12,
                                     random_state=int(rng.integers(2**31)))
        return centers.astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Nearest learned centre of every row of ``X`` (gathered)."""
        check_is_fitted(self, "cluster_centers_")
        c = _client(self.client)
        blocks = as_row_blocks(X, c)
        out = _map_blocks(c, _block_labels, blocks, self.cluster_centers_, self.device, self.n_threads)
        return np.concatenate(out) if out else np.zeros(0, np.int64)


# ---------------------------------------------------------- cosine neighbours
def _cosine_block(a: Any, b: Any, same: bool, k: int, threshold: float | None,
                  exclude_self: bool, n_threads: int | None, device: str) -> sp.csr_matrix:
    if same:
        return ops.cosine_topk(a, None, k=k, threshold=threshold, exclude_self=exclude_self,
                               device=device, n_threads=n_threads)
    return ops.cosine_topk(a, b, k=k, threshold=threshold, device=device, n_threads=n_threads)


def _merge_topk(parts: list[sp.csr_matrix], offsets: list[int], width: int, k: int) -> sp.csr_matrix:
    """Per-row top-k of side-by-side candidate blocks (score desc, column asc)."""
    n = parts[0].shape[0]
    rows, cols, vals = [], [], []
    for part, off in zip(parts, offsets):
        coo = part.tocoo()
        rows.append(coo.row)
        cols.append(coo.col.astype(np.int64) + off)
        vals.append(coo.data)
    M = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, width))
    return row_topk(M, k, device="cpu", n_threads=1)


def cosine_topk(
    A: Any,
    B: Any | None = None,
    *,
    k: int = 50,
    threshold: float | None = None,
    exclude_self: bool = True,
    broadcast_B: bool = True,
    device: str = "auto",
    n_threads: int | None = None,
    client: Client | None = None,
) -> sp.csr_matrix:
    """:func:`cohortrec.ops.cosine_topk` over row blocks on the cluster.

    Each block of ``A`` is compared with ``B`` on a worker. With
    ``broadcast_B=True`` (default) ``B`` (or all of ``A`` when ``B`` is None)
    is gathered once and broadcast; otherwise every (A block, B block) pair
    is a task and the per-row top-k lists are merged on the workers, so no
    worker ever holds all of ``B``. The result equals the single-machine op.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n, p), gathered to the client.
    """
    k = check_int(k, "k", minimum=0)
    c = _client(client)
    a = as_row_blocks(A, c)
    same = B is None
    b = a if same else as_row_blocks(B, c)
    n, p = a.shape[0], b.shape[0]
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"B must have as many columns as A: {a.shape} vs {b.shape}")
    if broadcast_B:
        whole = c.submit(_stack_csr, *b.futures)
        outs = []
        for i, blk in enumerate(a.futures):
            off = int(a.offsets[i])
            outs.append(c.submit(_cosine_vs_whole, blk, whole, off, same, k, threshold, exclude_self,
                                 n_threads, device, pure=False))
    else:
        outs = []
        for i, blk in enumerate(a.futures):
            parts = [c.submit(_cosine_block, blk, bb, same and i == j, k, threshold, exclude_self,
                              n_threads, device, pure=False) for j, bb in enumerate(b.futures)]
            offs = [int(o) for o in b.offsets[:-1]]
            outs.append(c.submit(_merge_topk, parts, offs, p, k, pure=False))
    result = sp.vstack(c.gather(outs), format="csr")
    return sp.csr_matrix(result, shape=(n, p))


def _stack_csr(*blocks: Any) -> sp.csr_matrix:
    return sp.vstack([sp.csr_matrix(x) for x in blocks], format="csr")


def _cosine_vs_whole(a: Any, whole: sp.csr_matrix, offset: int, same: bool, k: int,
                     threshold: float | None, exclude_self: bool, n_threads: int | None,
                     device: str) -> sp.csr_matrix:
    res = ops.cosine_topk(a, whole, k=k + (1 if same and exclude_self else 0), threshold=threshold,
                          device=device, n_threads=n_threads)
    if same and exclude_self:  # drop each row's own column, keep k
        coo = res.tocoo()
        keep = coo.col != coo.row + offset
        res = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=res.shape)
        res = _merge_topk([res], [0], res.shape[1], k)
    return res


# ------------------------------------------------------ batch recommendation
def _recommend_block(model: Any, block: sp.csr_matrix, offset: int, N: int,
                     filter_already_liked_items: bool, row_ids: np.ndarray | None,
                     out: str | None, part: int) -> Any:
    import pandas as pd

    users = np.arange(offset, offset + block.shape[0])
    ids, scores = model.recommend(users, block, N=N, filter_already_liked_items=filter_already_liked_items)
    ids = np.asarray(ids).reshape(len(users), -1)
    scores = np.asarray(scores).reshape(len(users), -1)
    n = ids.shape[1]
    df = pd.DataFrame({
        "user": np.repeat(row_ids if row_ids is not None else users, n),
        "rank": np.tile(np.arange(n, dtype=np.int32), len(users)),
        "item": ids.ravel(),
        "score": scores.ravel(),
    })
    df = df[df["item"] >= 0]
    if out is None:
        return df
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"part-{part:05d}.parquet")
    df.to_parquet(path, index=False)
    return path


def recommend_all(
    model: Any,
    user_items: Any,
    *,
    N: int = 10,
    filter_already_liked_items: bool = True,
    path: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> Any:
    """Top-``N`` recommendations for every user, users partitioned by block.

    The fitted ``model`` (any recommender with implicit's
    ``recommend(userids, user_items, N=...)`` convention, e.g.
    :class:`cohortrec.recommenders.ItemKNN`) is broadcast to the workers once;
    each block of ``user_items`` rows is scored on a worker. Row ``i`` of
    block ``b`` is user ``offsets[b] + i`` (or its external id when the blocks
    come from :func:`read_parquet_events`).

    Parameters
    ----------
    model : fitted recommender
    user_items : row blocks of the user x item CSR
    N : int, default 10
    filter_already_liked_items : bool, default True
    path : str, optional
        Directory to write ``part-*.parquet`` files to (columns user, rank,
        item, score). Without it, one pandas DataFrame is returned.
    client : distributed.Client, optional

    Returns
    -------
    str or pandas.DataFrame
        ``path`` when given, else the gathered recommendations.
    """
    import pandas as pd

    N = check_int(N, "N", minimum=1)
    c = _client(client)
    blocks = as_row_blocks(user_items, c)
    mf = c.scatter(model, broadcast=True)
    out = None if path is None else os.fspath(path)
    futs = [c.submit(_recommend_block, mf, b, int(blocks.offsets[i]), N, filter_already_liked_items,
                     None if blocks.row_ids is None else blocks.row_ids[i], out, i, pure=False)
            for i, b in enumerate(blocks.futures)]
    res = c.gather(futs)
    if out is not None:
        return out
    return pd.concat(res, ignore_index=True)
