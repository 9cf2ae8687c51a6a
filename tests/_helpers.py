"""Shared helpers for the cohortrec op tests.

* random sparse matrix generators (int32/int64 indices, power-law columns,
  empty rows, all-zero rows, explicit zeros, duplicates, unsorted indices,
  huge column ids);
* comparison helpers that judge op results against the float64 oracles in
  :mod:`cohortrec.ops.reference`, tolerant of float rounding (near-ties) but
  strict about structure, ordering and dtypes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from cohortrec.ops import reference

FLOAT_DTYPES = (np.float32, np.float64)
INDEX_DTYPES = (np.int32, np.int64)
BIG_M = 3_000_000_000  # > 2**31: column ids need int64, never allocate m

Rows = List[Tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------
# tolerances
# ---------------------------------------------------------------------------
def rtol_for(dtype) -> float:
    """Relative tolerance for results computed in ``dtype``."""
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-10


def result_dtype(*dtypes) -> np.dtype:
    """Result dtype of an op whose inputs have the given data dtypes."""
    return np.result_type(*[reference.value_dtype(d) for d in dtypes])


# ---------------------------------------------------------------------------
# random sparse matrices
# ---------------------------------------------------------------------------
def with_index_dtype(M, index_dtype) -> sp.csr_matrix:
    """Return CSR ``M`` with ``indices``/``indptr`` of exactly ``index_dtype``.

    scipy downcasts index arrays whenever it can, so the arrays are replaced
    after construction (and checked).
    """
    M = M if isinstance(M, sp.csr_matrix) else sp.csr_matrix(M)
    M.indices = np.asarray(M.indices, dtype=index_dtype)
    M.indptr = np.asarray(M.indptr, dtype=index_dtype)
    assert M.indices.dtype == index_dtype and M.indptr.dtype == index_dtype
    return M


def random_values(rng: np.random.Generator, size: int, *, signed: bool = True,
                  kind: str = "normal") -> np.ndarray:
    """Nonzero random values.

    ``kind="normal"``: continuous (ties are unlikely); ``kind="int"``: small
    integers in 1..3 (many exact ties); ``kind="wide"``: log-uniform
    magnitudes between 1e-3 and 1e3.
    """
    if kind == "normal":
        v = rng.standard_normal(size)
        v[v == 0] = 1.0
        v = np.abs(v) + 0.05  # keep well away from 0
    elif kind == "int":
        v = rng.integers(1, 4, size).astype(np.float64)
    elif kind == "wide":
        v = 10.0 ** rng.uniform(-3, 3, size)
    else:  # pragma: no cover - test bug
        raise ValueError(kind)
    if signed:
        v *= rng.choice([-1.0, 1.0], size)
    return v


def random_csr(rng: np.random.Generator, n: int, m: int, *,
               density: float = 0.1,
               dtype=np.float64,
               index_dtype=np.int32,
               signed: bool = True,
               kind: str = "normal",
               powerlaw: bool = False,
               empty_rows: float = 0.0,
               zero_rows: float = 0.0,
               explicit_zeros: float = 0.0,
               duplicates: float = 0.0,
               unsorted: bool = False,
               max_row_nnz: Optional[int] = None) -> sp.csr_matrix:
    """Random ``n x m`` CSR matrix with exactly the requested index dtype.

    Parameters
    ----------
    density : float
        Expected fraction of nonzero entries per row (capped so that huge
        ``m`` stays cheap: row lengths are drawn, never ``m`` itself).
    powerlaw : bool
        Column ids drawn from a Zipf-like distribution over a random
        permutation of (a prefix of) the columns, so a few columns are very
        popular.
    empty_rows, zero_rows : float
        Fraction of rows with no stored entry / only explicitly stored zeros.
    explicit_zeros : float
        Fraction of the remaining entries whose value is replaced by a stored 0.
    duplicates : float
        Fraction of entries that get a duplicate (same row and column); half
        of the duplicates cancel the original exactly, so the summed entry
        is 0.  Matrices with duplicates are non-canonical.
    unsorted : bool
        Shuffle column ids inside each row.
    max_row_nnz : int, optional
        Cap on entries per row (default ``min(m, 64)``).
    """
    if m == 0 or n == 0:
        M = sp.csr_matrix((n, m), dtype=dtype)
        return with_index_dtype(M, index_dtype)
    cap = min(m, 64 if max_row_nnz is None else max_row_nnz)
    lengths = rng.binomial(cap, min(1.0, max(0.0, density * m / cap)), size=n)
    role = rng.random(n)
    lengths[role < empty_rows] = 0
    zero_row = (role >= empty_rows) & (role < empty_rows + zero_rows)
    lengths[zero_row] = np.maximum(lengths[zero_row], 1)

    if powerlaw:
        pool = min(m, 4 * cap + 16)
        ranked = rng.choice(m, size=pool, replace=False) if m <= 10_000_000 else \
            np.unique(rng.integers(0, m, size=pool))
        weights = 1.0 / (np.arange(len(ranked)) + 1.0) ** 1.1
        weights /= weights.sum()

    rows_i, rows_v = [], []
    for r in range(n):
        L = int(lengths[r])
        if L == 0:
            rows_i.append(np.zeros(0, np.int64))
            rows_v.append(np.zeros(0))
            continue
        if powerlaw:
            cols = np.unique(rng.choice(ranked, size=L, p=weights))
        elif m <= 10_000_000:
            cols = np.sort(rng.choice(m, size=L, replace=False))
        else:
            cols = np.unique(rng.integers(0, m, size=L))
        vals = random_values(rng, len(cols), signed=signed, kind=kind)
        if zero_row[r]:
            vals[:] = 0.0
        elif explicit_zeros:
            vals[rng.random(len(cols)) < explicit_zeros] = 0.0
        if duplicates and not zero_row[r]:
            dup = rng.random(len(cols)) < duplicates
            if dup.any():
                extra_v = random_values(rng, int(dup.sum()), signed=signed, kind=kind)
                cancel = rng.random(int(dup.sum())) < 0.5
                extra_v[cancel] = -vals[dup][cancel]
                cols = np.concatenate([cols, cols[dup]])
                vals = np.concatenate([vals, extra_v])
                o = rng.permutation(len(cols)) if unsorted else np.argsort(cols, kind="stable")
                cols, vals = cols[o], vals[o]
        if unsorted:
            o = rng.permutation(len(cols))
            cols, vals = cols[o], vals[o]
        rows_i.append(cols.astype(np.int64))
        rows_v.append(vals)
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in rows_i])]).astype(np.int64)
    indices = np.concatenate(rows_i).astype(np.int64)
    data = np.concatenate(rows_v).astype(dtype)
    M = sp.csr_matrix((data, indices, indptr), shape=(n, m))
    M = with_index_dtype(M, index_dtype)
    assert M.dtype == dtype
    return M


def to_format(M: sp.csr_matrix, fmt: str):
    """Convert ``M`` to another scipy sparse container (keeps duplicates for COO)."""
    if fmt == "csr":
        return M
    if fmt == "csr_array":
        return sp.csr_array(M)
    if fmt == "csc":
        return M.tocsc()
    if fmt == "coo":  # non-canonical CSR -> COO keeps duplicate entries
        coo = M.tocoo()
        return coo
    if fmt == "lil":
        return M.tolil()
    if fmt == "dok":
        return M.todok()
    if fmt == "bsr":
        return M.tobsr()
    if fmt == "readonly":  # CSR whose arrays are not writeable
        R = M.copy()
        for arr in (R.data, R.indices, R.indptr):
            arr.setflags(write=False)
        return R
    raise ValueError(fmt)


def dense_with_layout(X: np.ndarray, layout: str) -> np.ndarray:
    """Return an array equal to ``X`` in the requested memory layout.

    ``C``/``F``: contiguous; ``strided``: a non-contiguous view (every other
    row and column of a larger buffer); ``transposed``: an F-ordered
    transpose view of a C array; ``reversed``: negative strides;
    ``readonly``: a non-writeable C array.
    """
    if layout == "C":
        return np.ascontiguousarray(X)
    if layout == "F":
        Y = np.asfortranarray(X)
        assert Y.flags.f_contiguous
        return Y
    if layout == "strided":
        n, d = X.shape
        big = np.full((2 * n + 1, 2 * d + 1), np.nan, dtype=X.dtype)
        big[1::2, 1::2] = X
        Y = big[1::2, 1::2]
        assert Y.shape == X.shape and (X.size <= 1 or not Y.flags.c_contiguous)
        return Y
    if layout == "transposed":
        return np.ascontiguousarray(X.T).T
    if layout == "reversed":  # negative strides on both axes
        Y = np.ascontiguousarray(X[::-1, ::-1])[::-1, ::-1]
        assert X.size == 0 or Y.strides[0] < 0 or X.shape[0] <= 1
        return Y
    if layout == "readonly":
        Y = np.array(X, copy=True)
        Y.setflags(write=False)
        return Y
    raise ValueError(layout)


def csr_snapshot(M) -> tuple:
    """Copies of the arrays of a sparse matrix (to check it is not mutated)."""
    if sp.issparse(M) and M.format in ("csr", "csc", "bsr"):
        return (M.data.copy(), M.indices.copy(), M.indptr.copy(), M.shape)
    if sp.issparse(M) and M.format == "coo":
        return (M.data.copy(), M.row.copy(), M.col.copy(), M.shape)
    return (np.array(M, copy=True),)


def assert_snapshot_equal(M, snap: tuple) -> None:
    """Assert ``M`` still holds exactly the arrays in ``snap``."""
    now = csr_snapshot(M)
    assert len(now) == len(snap)
    for a, b in zip(now, snap):
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), \
                "op modified its input"
        else:
            assert a == b


# ---------------------------------------------------------------------------
# top-k comparisons
# ---------------------------------------------------------------------------
def csr_rows(M: sp.csr_matrix) -> Rows:
    """Rows of a CSR result in *stored* order (no canonicalisation)."""
    out = []
    for r in range(M.shape[0]):
        s, e = int(M.indptr[r]), int(M.indptr[r + 1])
        out.append((np.asarray(M.indices[s:e], np.int64),
                    np.asarray(M.data[s:e], np.float64)))
    return out


def assert_rows_topk_close(got: Rows, full: Rows, k: int, *, rtol: float,
                           scale: Optional[Sequence[float]] = None,
                           strict_ties: bool = True,
                           what: str = "row") -> None:
    """Compare per-row top-k lists with the untruncated reference lists.

    For every row ``r`` (``full[r]`` = all reference candidates, sorted):

    * the number of entries is ``min(k, len(full[r]))``;
    * indices are distinct candidates and scores are non-increasing in stored
      order; with ``strict_ties``, exactly equal returned scores are ordered by
      smaller index (only valid when the kernel computes in the output dtype:
      a float32 result may be rounded from a more precise internal score);
    * scores agree position-wise with the reference top-k within
      ``tol = rtol * |ref| + rtol * scale[r]``;
    * each returned index's own reference score agrees with the returned
      score (so an index may differ from the reference only at a near-tie).
    """
    assert len(got) == len(full), (len(got), len(full))
    for r, ((gi, gs), (fi, fs)) in enumerate(zip(got, full)):
        sc = 1.0 if scale is None else float(scale[r])
        ctx = f"{what} {r}: got idx={gi.tolist()} scores={gs.tolist()}; " \
              f"ref idx={fi[:k].tolist()} scores={fs[:k].tolist()}"
        want = min(k, len(fi))
        assert len(gi) == want, f"wrong number of entries; {ctx}"
        if want == 0:
            continue
        assert np.all(np.isfinite(gs)), ctx
        assert len(np.unique(gi)) == len(gi), f"duplicate indices; {ctx}"
        assert np.all(gs[:-1] >= gs[1:]), f"scores not sorted descending; {ctx}"
        eq = gs[:-1] == gs[1:]
        assert not strict_ties or np.all(gi[:-1][eq] < gi[1:][eq]), f"exact tie not ordered by index; {ctx}"
        ref_s = fs[:want]
        tol = rtol * np.abs(ref_s) + rtol * sc + 1e-300
        assert np.all(np.abs(gs - ref_s) <= tol), f"scores differ; {ctx}"
        lookup = dict(zip(fi.tolist(), fs.tolist()))
        for i, s in zip(gi.tolist(), gs.tolist()):
            assert i in lookup, f"index {i} is not a candidate; {ctx}"
            t = rtol * abs(lookup[i]) + rtol * sc + 1e-300
            assert abs(lookup[i] - s) <= t, \
                f"score of index {i} is {s}, reference {lookup[i]}; {ctx}"


def check_cosine(res, A, B=None, *, k: int, threshold=None, exclude_self=True) -> None:
    """Full check of a ``cosine_topk`` result against the reference."""
    n = A.shape[0]
    p = n if B is None else B.shape[0]
    assert isinstance(res, sp.csr_matrix), type(res)
    assert res.shape == (n, p)
    want_dtype = result_dtype(A.dtype, (A if B is None else B).dtype)
    assert res.dtype == want_dtype, (res.dtype, want_dtype)
    assert np.issubdtype(res.indices.dtype, np.integer)
    assert np.issubdtype(res.indptr.dtype, np.integer)
    assert len(res.indptr) == n + 1 and res.indptr[0] == 0
    assert np.all(np.diff(res.indptr) >= 0)
    assert res.indptr[-1] == len(res.indices) == len(res.data)
    if len(res.indices):
        assert res.indices.min() >= 0 and res.indices.max() < p
    full = reference._cosine_rows(A, B, threshold=threshold, exclude_self=exclude_self)
    assert_rows_topk_close(csr_rows(res), full, k, rtol=rtol_for(want_dtype),
                           strict_ties=want_dtype == np.float64)


def topk_scale(W, R) -> np.ndarray:
    """Per-user magnitude scale ``max_i (|W| @ |R|)[u, i]`` for tolerances."""
    Wa = abs(sp.csr_matrix(W).astype(np.float64))
    Ra = abs(sp.csr_matrix(R).astype(np.float64))
    _, (Rc,) = reference._compact_columns(Ra)
    S = Wa @ Rc
    out = np.zeros(W.shape[0])
    if S.nnz:
        out = np.asarray(S.max(axis=1).todense()).ravel()
    return out


def check_topk_scores(items, scores, W, R, *, n: int, exclude=None) -> None:
    """Full check of a ``topk_scores`` result against the reference."""
    u = W.shape[0]
    want_dtype = result_dtype(W.dtype, R.dtype)
    assert isinstance(items, np.ndarray) and isinstance(scores, np.ndarray)
    assert items.dtype == np.int64, items.dtype
    assert scores.dtype == want_dtype, (scores.dtype, want_dtype)
    assert items.shape == (u, n) and scores.shape == (u, n)
    got = []
    for r in range(u):
        valid = items[r] != -1
        t = int(valid.sum())
        assert np.all(valid[:t]) and not np.any(valid[t:]), \
            f"row {r}: padding not at the end: {items[r].tolist()}"
        assert np.all(np.isneginf(scores[r, t:])), f"row {r}: bad padding scores"
        assert np.all(items[r, :t] >= 0) and np.all(items[r, :t] < R.shape[1])
        got.append((items[r, :t].astype(np.int64), scores[r, :t].astype(np.float64)))
    full = reference._topk_rows(W, R, exclude=exclude)
    assert_rows_topk_close(got, full, n, rtol=rtol_for(want_dtype),
                           scale=topk_scale(W, R), what="user",
                           strict_ties=want_dtype == np.float64)


def safe_threshold(rng: np.random.Generator, full: Rows, dtype) -> float:
    """A threshold at least ``10*tol`` away from every reference score.

    Tries random quantiles of the scores and falls back to values outside
    [-1, 1].
    """
    allsc = np.concatenate([s for _, s in full]) if full else np.zeros(0)
    margin = 10 * rtol_for(dtype)
    for _ in range(50):
        if len(allsc) and rng.random() < 0.8:
            t = float(np.quantile(allsc, rng.random()) + rng.uniform(-0.05, 0.05))
        else:
            t = float(rng.uniform(-1, 1))
        if len(allsc) == 0 or np.min(np.abs(allsc - t)) > margin:
            return t
    return -1.5 if rng.random() < 0.5 else 1.5


# ---------------------------------------------------------------------------
# k-means comparisons
# ---------------------------------------------------------------------------
def kmeans_assign_tolerance(X, centers, dtype) -> np.ndarray:
    """Absolute tolerance for each squared distance, shape (n, k).

    The kernel computes ``|x|^2 - 2 x.c + |c|^2``, so the rounding error of
    ``d2[i, j]`` is relative to ``|x_i|^2 + |c_j|^2``.
    """
    X64, _ = reference._dense64(X)
    C64 = np.asarray(centers).astype(dtype).astype(np.float64)
    xx = (X64 ** 2).sum(axis=1)
    cc = (C64 ** 2).sum(axis=1)
    rel = 2e-5 if np.dtype(dtype) == np.float32 else 1e-12
    return rel * (xx[:, None] + cc[None, :]) + 1e-30


def check_kmeans_assign(labels, sq, X, centers) -> None:
    """Check ``kmeans_assign`` results against exact float64 distances.

    ``sq_dist`` must match the exact distance of the returned label, the
    returned label must be optimal up to rounding, and it must equal the
    reference label wherever every other centre is farther than the combined
    rounding tolerance.
    """
    dtype = reference.value_dtype(X.dtype)
    n = X.shape[0]
    k = np.asarray(centers).shape[0]
    assert isinstance(labels, np.ndarray) and isinstance(sq, np.ndarray)
    assert labels.dtype == np.int64, labels.dtype
    assert sq.dtype == dtype, (sq.dtype, dtype)
    assert labels.shape == (n,) and sq.shape == (n,)
    if n == 0:
        return
    assert labels.min() >= 0 and labels.max() < k, labels
    assert np.all(sq >= 0), "sq_dist must be clipped at 0"
    d2 = reference._kmeans_sq_distances(X, centers)
    tol = kmeans_assign_tolerance(X, centers, dtype)
    rows = np.arange(n)
    ref_lab = np.argmin(d2, axis=1)
    best, tol_best = d2[rows, ref_lab], tol[rows, ref_lab]
    chosen, tol_chosen = d2[rows, labels], tol[rows, labels]
    sq64 = sq.astype(np.float64)
    bad = np.abs(sq64 - chosen) > tol_chosen
    assert not bad.any(), f"sq_dist differs at {np.flatnonzero(bad)[:10]}: " \
                          f"got {sq64[bad][:10]}, ref {chosen[bad][:10]}"
    bad = chosen > best + tol_chosen + tol_best
    assert not bad.any(), f"label not (near-)optimal at {np.flatnonzero(bad)[:10]}: " \
                          f"got {labels[bad][:10]}, ref {ref_lab[bad][:10]}"
    # unambiguous points: every other centre is clearly farther
    margin = d2 - best[:, None] - tol - tol_best[:, None]
    margin[rows, ref_lab] = np.inf
    clear = np.all(margin > 0, axis=1)
    bad = clear & (labels != ref_lab)
    assert not bad.any(), f"labels differ at {np.flatnonzero(bad)[:10]}: " \
                          f"got {labels[bad][:10]}, ref {ref_lab[bad][:10]}"


def check_kmeans_update(sums, counts, X, labels, n_clusters, sample_weight=None) -> None:
    """Check ``kmeans_update`` results against the float64 reference.

    The error of each sum is bounded relative to the same sum over absolute
    values, with an allowance growing like ``sqrt(cluster size)`` for
    summation in the output dtype.
    """
    dtype = reference.value_dtype(X.dtype)
    d = X.shape[1]
    assert isinstance(sums, np.ndarray) and isinstance(counts, np.ndarray)
    assert sums.dtype == dtype and counts.dtype == dtype, (sums.dtype, counts.dtype)
    assert sums.shape == (n_clusters, d) and counts.shape == (n_clusters,)
    ref_s, ref_c = reference.kmeans_update(X, labels, n_clusters, sample_weight=sample_weight)
    if sp.issparse(X):  # |x| entrywise (an upper bound if there are duplicates)
        Xabs = abs(sp.csr_matrix(X).astype(np.float64))
    else:
        Xabs = np.abs(reference._dense64(X)[0])
    w = None if sample_weight is None else np.abs(np.asarray(sample_weight, np.float64))
    scale_s, scale_c = reference.kmeans_update(Xabs, labels, n_clusters, sample_weight=w)
    sizes = np.bincount(np.asarray(labels).astype(np.int64), minlength=n_clusters)
    rel = rtol_for(dtype) + 2 * np.finfo(dtype).eps * np.sqrt(sizes)
    tol_s = rel[:, None] * scale_s.astype(np.float64) + 1e-300
    tol_c = rel * scale_c.astype(np.float64) + 1e-300
    err_s = np.abs(sums.astype(np.float64) - ref_s.astype(np.float64))
    err_c = np.abs(counts.astype(np.float64) - ref_c.astype(np.float64))
    assert np.all(err_s <= tol_s), f"sums differ by up to {err_s.max()} " \
                                   f"(relative {np.max(err_s / tol_s)} of tolerance)"
    assert np.all(err_c <= tol_c), f"counts differ by up to {err_c.max()}"


# ---------------------------------------------------------------------------
# memory-limited subprocess
# ---------------------------------------------------------------------------
def run_memory_limited(body: str, extra_bytes: int = 2 << 30, timeout: float = 120.0):
    """Run ``body`` in a fresh interpreter whose address space is capped.

    The cap is the interpreter's size after importing numpy, scipy and
    cohortrec plus ``extra_bytes``, so any allocation proportional to a huge
    dimension fails with MemoryError instead of exhausting the machine.
    Returns the CompletedProcess.
    """
    preamble = textwrap.dedent(
        f"""
        import resource, sys
        import numpy as np, scipy.sparse as sp
        import cohortrec
        from cohortrec import ops
        cohortrec.devices()  # probe (and cache) CUDA before the cap
        with open('/proc/self/status') as f:
            vm = [l for l in f if l.startswith('VmSize:')][0]
        cur = int(vm.split()[1]) * 1024
        lim = cur + {int(extra_bytes)}
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        """
    )
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "2"   # thread stacks and malloc arenas cost
    env["MALLOC_ARENA_MAX"] = "2"  # address space; call ops with n_threads=2
    return subprocess.run([sys.executable, "-c", preamble + textwrap.dedent(body)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def csr_from_rows(rows: Iterable[Iterable[Tuple[int, float]]], shape, dtype=np.float64,
                  index_dtype=np.int64) -> sp.csr_matrix:
    """Build a CSR matrix from explicit ``(col, value)`` lists (kept as given)."""
    indptr, indices, data = [0], [], []
    for row in rows:
        for c, v in row:
            indices.append(c)
            data.append(v)
        indptr.append(len(indices))
    M = sp.csr_matrix((np.array(data, dtype=dtype),
                       np.array(indices, dtype=np.int64),
                       np.array(indptr, dtype=np.int64)), shape=shape)
    return with_index_dtype(M, index_dtype)
