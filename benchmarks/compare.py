#!/usr/bin/env python
"""Compare cohortrec.ops against established CPU libraries on the same data.

    python benchmarks/compare.py [--only cosine|kmeans|topk] [--quick]
                                 [--threads 2] [--out benchmarks/results/cpu-<date>.md]

For every case, in one process and on the same data, the script

1. builds deterministic synthetic data (benchmarks/datasets.py),
2. runs each library once (this is the warm-up) and checks cohortrec's output
   against the anchors (and the anchors against each other) *before* timing,
3. times further runs with time.perf_counter and reports best / median,
4. prints a table with ratios anchor_time / cohortrec_time (> 1 means cohortrec
   is faster) and writes a Markdown file with the machine, library versions,
   BLAS (threadpoolctl), thread settings and the exact command.

Correctness mismatches are reported as FAIL (with examples) and make the
script exit with status 1; they are never silently tolerated.  See
benchmarks/README.md for what each case measures and how the anchors are
made comparable.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import sys

# --------------------------------------------------------------------------
# Thread / BLAS environment: must be fixed before numpy (OpenBLAS) is loaded.
# --------------------------------------------------------------------------
_REMOVED_ENV = {}
for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    if __name__ == "__main__" and _var in os.environ:
        # these force a slow OpenBLAS kernel on this machine; OpenBLAS reads
        # them when the library is loaded, i.e. at `import numpy` below.
        _REMOVED_ENV[_var] = os.environ.pop(_var)


def _parse_args(argv=None):
    today = _dt.date.today().isoformat()
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--only",
        action="append",
        choices=["cosine", "kmeans", "topk"],
        help="run only this group (repeatable); default: all",
    )
    p.add_argument("--quick", action="store_true", help="small sizes (~2 min)")
    p.add_argument("--threads", type=int, default=2, help="threads for every library")
    p.add_argument("--repeats", type=int, default=3, help="max timed repeats per library")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds per library per case for timed repeats (default 15, "
        "--quick 8); a first run slower than this is reported as the "
        "(single, cold) timing",
    )
    p.add_argument(
        "--device", default="cpu", help="device= passed to cohortrec.ops (default cpu)"
    )
    p.add_argument(
        "--ops-module",
        default="cohortrec.ops",
        help="module implementing the cohortrec.ops API (e.g. reference_ops to "
        "test this harness with the slow NumPy reference)",
    )
    p.add_argument(
        "--anchors-only",
        action="store_true",
        help="do not import cohortrec; time the anchor libraries only",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before starting, wait up to SECONDS for other processes to use "
        "< 0.2 CPUs (measured over 5 s windows)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        default=None,
        help="Markdown results file ('-' to skip writing; default "
        "benchmarks/results/cpu-<date>.md, cpu-<date>-quick.md with --quick)",
    )
    args = p.parse_args(argv)
    if args.out is None:
        suffix = "-quick" if args.quick else ""
        args.out = os.path.join(here, "results", f"cpu-{today}{suffix}.md")
    if args.budget is None:
        args.budget = 8.0 if args.quick else 15.0
    return args


ARGS = _parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(ARGS.threads)

import gc  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from functools import lru_cache  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import threadpoolctl  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets as D  # noqa: E402
from _machine import git_revision, machine_info  # noqa: E402

warnings.filterwarnings("ignore", module="implicit")
warnings.filterwarnings("ignore", message=".*Method expects CSR input.*")
warnings.filterwarnings("ignore", message="Number of distinct clusters")

# --------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------


@dataclass
class Timing:
    times: list
    cold: bool = False  # True: only the first (cold) run was timed

    @property
    def best(self):
        return min(self.times)

    @property
    def median(self):
        return statistics.median(self.times)


@dataclass
class Row:
    library: str
    timing: Timing | None = None
    error: str | None = None
    note: str = ""
    gflops: float | None = None  # for k-means rows


@dataclass
class Case:
    group: str
    name: str
    data: str
    rows: list = field(default_factory=list)
    checks: list = field(default_factory=list)  # (what, ok, detail)
    notes: list = field(default_factory=list)
    snap: tuple = field(default_factory=lambda: cpu_snapshot())
    load: float | None = None  # CPUs used by other processes during the case


CASES: list[Case] = []
LOG_LINES: list[str] = []


def cpu_snapshot():
    """(wall, machine busy CPU-seconds, this process's CPU-seconds)."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
        idle = f[3] + (f[4] if len(f) > 4 else 0)
        busy = (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        busy = float("nan")
    t = os.times()
    return time.perf_counter(), busy, t.user + t.system


def other_load(a, b):
    """Average number of CPUs kept busy by *other* processes between two
    snapshots (0 = machine was otherwise idle)."""
    wall = b[0] - a[0]
    if wall <= 0:
        return float("nan")
    return max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / wall)


def log(msg=""):
    print(msg, flush=True)
    LOG_LINES.append(msg)


def timeit(fn, *, repeats, budget):
    """Run fn once (warm-up / correctness output), then time up to `repeats`
    further runs within `budget` seconds.  If the first run alone exceeds
    `budget`, it is the only timing (marked cold).  Returns (Timing, output)."""
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    if first > budget:
        return Timing([first], cold=True), out
    n = int(max(1, min(repeats, budget // max(first, 1e-9))))
    times = []
    for _ in range(n):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(times), out


def run_lib(case, library, fn, *, note="", repeats, budget):
    """Time `fn` for `library`; record errors instead of raising."""
    try:
        timing, out = timeit(fn, repeats=repeats, budget=budget)
    except Exception as exc:  # noqa: BLE001
        tb = traceback.format_exc(limit=3)
        case.rows.append(Row(library, error=f"{type(exc).__name__}: {exc}", note=note))
        log(f"  {library}: ERROR {type(exc).__name__}: {exc}\n{tb}")
        return None, None
    row = Row(library, timing=timing, note=note)
    case.rows.append(row)
    log(
        f"  {library}: best {timing.best:.4f}s median {timing.median:.4f}s "
        f"(n={len(timing.times)}{', cold' if timing.cold else ''})"
    )
    return row, out


def check(case, what, ok, detail=""):
    case.checks.append((what, bool(ok), detail))
    log(f"  check {'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")
    return ok


# --------------------------------------------------------------------------
# Library loading
# --------------------------------------------------------------------------


def load_cohortrec(args):
    if args.anchors_only:
        return None, "skipped (--anchors-only)"
    try:
        import importlib  # noqa: PLC0415

        ops = importlib.import_module(args.ops_module)
        return ops, None
    except Exception as exc:  # noqa: BLE001
        return None, f"not importable: {type(exc).__name__}: {exc}"


def _opt_import(name):
    try:
        return __import__(name, fromlist=["_"])
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------
# Helpers shared by the checks
# --------------------------------------------------------------------------


def csr_rows_sorted_values(C, k):
    """(n_rows, k) array of each row's values sorted desc, padded with -inf,
    plus the row lengths."""
    C = sp.csr_matrix(C)
    n = C.shape[0]
    lengths = np.diff(C.indptr)
    rows = np.repeat(np.arange(n), lengths)
    order = np.lexsort((-C.data.astype(np.float64), rows))
    rank = np.arange(C.nnz) - C.indptr[rows]
    out = np.full((n, max(k, lengths.max(initial=0))), -np.inf)
    out[rows, rank] = C.data[order]
    return out[:, : max(k, 1)], lengths


def drop_diag_topk(C, k):
    """Anchor post-processing: remove self-similarity, keep top-k per row."""
    C = sp.csr_matrix(C)
    C = C.tocoo()
    keep = C.row != C.col
    C = sp.csr_matrix((C.data[keep], (C.row[keep], C.col[keep])), shape=C.shape)
    return D._truncate_rows(C, k)


def rows_desc_sorted(C):
    """True where a row's stored values are non-increasing (API: sorted desc)."""
    C = sp.csr_matrix(C)
    if C.nnz < 2:
        return np.ones(C.shape[0], bool)
    dif = np.diff(C.data.astype(np.float64))
    bad = dif > 0
    # differences across row boundaries don't count
    boundaries = C.indptr[1:-1] - 1
    boundaries = boundaries[(boundaries >= 0) & (boundaries < dif.size)]
    bad[boundaries] = False
    rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))[:-1]
    ok = np.ones(C.shape[0], bool)
    ok[rows[bad]] = False
    return ok


def pair_dots(Xn, i, j):
    """Exact (float64) dot products Xn[i[t]] . Xn[j[t]] for index arrays i, j."""
    Xn = sp.csr_matrix(Xn, dtype=np.float64)
    out = np.empty(i.size)
    step = 20000
    for s in range(0, i.size, step):
        a = Xn[i[s : s + step]]
        b = Xn[j[s : s + step]]
        out[s : s + step] = np.asarray(a.multiply(b).sum(axis=1)).ravel()
    return out


def fmt_examples(idx, *cols, limit=5):
    parts = []
    for t in range(min(limit, len(idx))):
        parts.append("(" + ", ".join(_fmt(c[t]) for c in (idx, *cols)) + ")")
    return "; ".join(parts)


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return f"{v:.6g}"
    return str(v)


# --------------------------------------------------------------------------
# cosine_topk
# --------------------------------------------------------------------------


@lru_cache(maxsize=None)
def interactions_cached(n_users, n_items, seed, zipf_exponent=1.0):
    t0 = time.perf_counter()
    X = D.interactions(n_users, n_items, seed=seed, zipf_exponent=zipf_exponent)
    log(f"  data: {D.describe_sparse(X)} (built in {time.perf_counter() - t0:.1f}s)")
    return X


def check_topk_rows(case, label, got, ref, k):
    """Shape, entries per row and sorted top-k scores of a cohortrec CSR result
    against an anchor's (atol 1e-5, rtol 1e-4). False when the shapes differ."""
    ok = check(case, f"{label}: shape", got.shape == ref.shape, f"{got.shape} vs {ref.shape}")
    if not ok:
        return False
    gv, glen = csr_rows_sorted_values(got, k)
    rv, rlen = csr_rows_sorted_values(ref, k)
    bad_len = np.flatnonzero(glen != rlen)
    ok &= check(
        case,
        f"{label}: entries per row",
        bad_len.size == 0,
        f"{bad_len.size} rows differ"
        + (f"; (row, cohortrec, anchor): {fmt_examples(bad_len, glen[bad_len], rlen[bad_len])}" if bad_len.size else ""),
    )
    both = np.isfinite(gv) & np.isfinite(rv)
    with np.errstate(invalid="ignore"):
        diff = np.where(both, np.abs(gv - rv), 0.0)
    tol = 1e-5 + 1e-4 * np.abs(rv)
    bad = np.flatnonzero(((diff > tol) & both).any(axis=1))
    ok &= check(
        case,
        f"{label}: sorted top-{k} scores per row (atol 1e-5, rtol 1e-4)",
        bad.size == 0,
        f"max |diff| {diff.max(initial=0):.3g}; {bad.size} rows differ"
        + (
            f"; (row, cohortrec max, anchor max): {fmt_examples(bad, gv[bad, 0], rv[bad, 0])}"
            if bad.size
            else ""
        ),
    )
    return ok


def compare_cosine_results(case, label, got, ref, X, k, *, exclude_self, sample_pairs=100_000):
    """got: cohortrec CSR; ref: anchor CSR already reduced to the same k
    (self removed when exclude_self)."""
    n = X.shape[0]
    ok_all = check_topk_rows(case, label, got, ref, k)
    if got.shape != ref.shape:
        return False
    g = sp.csr_matrix(got)
    unsorted = np.flatnonzero(~rows_desc_sorted(g))
    ok_all &= check(
        case,
        f"{label}: rows stored sorted desc",
        unsorted.size == 0,
        f"{unsorted.size} rows not sorted" + (f"; rows {unsorted[:5].tolist()}" if unsorted.size else ""),
    )
    rows = np.repeat(np.arange(n), np.diff(g.indptr))
    if exclude_self:
        selfs = np.flatnonzero(rows == g.indices)
        ok_all &= check(case, f"{label}: no self pairs", selfs.size == 0, f"{selfs.size} self pairs")
    # value/index consistency on a sample of stored entries
    rng = np.random.default_rng(123)
    idx = rng.choice(g.nnz, size=min(sample_pairs, g.nnz), replace=False) if g.nnz else np.zeros(0, int)
    Xn = D.l2_normalize_rows(X)
    true = pair_dots(Xn, rows[idx], g.indices[idx].astype(np.int64))
    err = np.abs(true - g.data[idx])
    badp = np.flatnonzero(err > 1e-5 + 1e-4 * np.abs(true))
    ok_all &= check(
        case,
        f"{label}: stored value == cosine(row, col) on {idx.size} sampled entries",
        badp.size == 0,
        f"max err {err.max(initial=0):.3g}; {badp.size} bad"
        + (
            f"; (row, col, stored, true): {fmt_examples(rows[idx][badp], g.indices[idx][badp], g.data[idx][badp], true[badp])}"
            if badp.size
            else ""
        ),
    )
    return ok_all


def extra_cosine_checks(case, ops, X, k, T, device, n_rows=2000, threshold=0.22):
    """Untimed checks of the B= and threshold= paths against sparse_dot_topn."""
    from sparse_dot_topn import sp_matmul_topn  # noqa: PLC0415

    A = sp.csr_matrix(X[:n_rows])
    Xn = D.l2_normalize_rows(X)
    An = D.l2_normalize_rows(A)
    try:
        got = ops.cosine_topk(A, X, k=k, exclude_self=False, device=device, n_threads=T)
        ref = sp_matmul_topn(An, Xn.T, top_n=k, sort=True, n_threads=T)
        compare_cosine_results_ab(case, f"B=X (first {n_rows} rows vs all), exclude_self=False", got, ref, An, Xn, k)
    except Exception as exc:  # noqa: BLE001
        check(case, "cosine_topk(A, B) runs", False, f"{type(exc).__name__}: {exc}")
    try:
        got = ops.cosine_topk(A, X, k=k, threshold=threshold, exclude_self=False, device=device, n_threads=T)
        ref = sp_matmul_topn(An, Xn.T, top_n=k, threshold=threshold, sort=True, n_threads=T)
        g = sp.csr_matrix(got)
        below = int((g.data < threshold - 1e-6).sum())
        check(case, f"threshold={threshold}: no stored value below threshold", below == 0, f"{below} below")
        # entries within 1e-6 of the threshold may legitimately differ (> vs >=)
        near = lambda C: sp.csr_matrix(  # noqa: E731
            (np.where(np.abs(C.data - threshold) <= 1e-6, 0, C.data), C.indices, C.indptr), shape=C.shape
        )
        gg, rr = near(g), near(sp.csr_matrix(ref))
        gg.eliminate_zeros()
        rr.eliminate_zeros()
        compare_cosine_results_ab(case, f"B=X, threshold={threshold}", gg, rr, An, Xn, k)
    except Exception as exc:  # noqa: BLE001
        check(case, "cosine_topk(threshold=...) runs", False, f"{type(exc).__name__}: {exc}")


def compare_cosine_results_ab(case, label, got, ref, An, Bn, k):
    ok = check_topk_rows(case, label, got, ref, k)
    if got.shape != ref.shape:
        return False
    g = sp.csr_matrix(got)
    rows = np.repeat(np.arange(g.shape[0]), np.diff(g.indptr))
    true = pair_dots_ab(An, Bn, rows, g.indices.astype(np.int64))
    err = np.abs(true - g.data)
    badp = np.flatnonzero(err > 1e-5 + 1e-4 * np.abs(true))
    ok &= check(
        case,
        f"{label}: stored value == cosine(row, col)",
        badp.size == 0,
        f"max err {err.max(initial=0):.3g}; {badp.size} bad",
    )
    return ok


def pair_dots_ab(An, Bn, i, j):
    An = sp.csr_matrix(An, dtype=np.float64)
    Bn = sp.csr_matrix(Bn, dtype=np.float64)
    out = np.empty(i.size)
    for s in range(0, i.size, 20000):
        out[s : s + 20000] = np.asarray(
            An[i[s : s + 20000]].multiply(Bn[j[s : s + 20000]]).sum(axis=1)
        ).ravel()
    return out


def _cosine_user_user(args, ops, T, sparse_dot_topn, k, n_users, n_items, zipf, *, extra_checks):
    label = "" if zipf == 1.0 else f", mild popularity (Zipf {zipf})"
    case = Case(
        "cosine",
        f"cosine_topk user-user {n_users // 1000}k x {n_items // 1000}k, k={k}{label}",
        "",
    )
    CASES.append(case)
    log(f"\n== {case.name}")
    X = interactions_cached(n_users, n_items, args.seed, zipf)
    case.data = D.describe_sparse(X)

    def sdtn_fn(X=X):
        Xn = D.l2_normalize_rows(X)
        return sparse_dot_topn.sp_matmul_topn(
            Xn, Xn.T, top_n=k + 1, sort=True, n_threads=T
        )

    _, ref_raw = run_lib(
        case,
        "sparse_dot_topn",
        sdtn_fn,
        note="row-normalise + sp_matmul_topn(top_n=k+1, sort=True); self dropped outside timing",
        repeats=args.repeats,
        budget=args.budget,
    )
    ref = drop_diag_topk(ref_raw, k) if ref_raw is not None else None
    if ops is not None:

        def co_fn(X=X):
            return ops.cosine_topk(X, k=k, device=args.device, n_threads=T)

        row, got = run_lib(case, "cohortrec", co_fn, repeats=args.repeats, budget=args.budget)
        if got is not None and ref is not None:
            compare_cosine_results(case, "vs sparse_dot_topn", got, ref, X, k, exclude_self=True)
        if extra_checks:
            extra_cosine_checks(case, ops, X, k, T, args.device)
    del ref_raw, ref
    return X


def bench_cosine(args, ops, T):
    import sparse_dot_topn  # noqa: PLC0415

    implicit_nn = _opt_import("implicit.nearest_neighbours")
    k = 50
    n_items = 50_000
    sizes = [20_000] if args.quick else [20_000, 100_000]
    for n_users in sizes:
        # ---- user-user: cohortrec vs sparse_dot_topn ----------------------
        # Zipf 1.0: the top item is in ~94% of rows and the popular columns
        # carry most of the work; Zipf 0.5: a milder power law (top item in
        # ~17% of rows), whose sparse_dot_topn time at 20k (~0.8 s on the dev
        # machine) is nearer the issue's ~0.54 s than Zipf 1.0's ~3.6 s.
        for zipf in (1.0, 0.5):
            X = _cosine_user_user(args, ops, T, sparse_dot_topn, k, n_users, n_items, zipf,
                                  extra_checks=(n_users == sizes[0] and zipf == 1.0))
        X = interactions_cached(n_users, n_items, args.seed)

        # ---- item-item: cohortrec vs implicit CosineRecommender -----------
        case = Case(
            "cosine",
            f"cosine_topk item-item (implicit) from {n_users // 1000}k x {n_items // 1000}k, k={k}",
            D.describe_sparse(X),
        )
        CASES.append(case)
        log(f"\n== {case.name}")
        if implicit_nn is None:
            case.notes.append("implicit not importable")
            continue
        case.notes.append(
            "implicit's K neighbours include the item itself, so it is run with "
            f"K={k + 1} and self is dropped (outside timing) to get the same {k} neighbours"
        )

        def imp_fn(X=X):
            m = implicit_nn.CosineRecommender(K=k + 1, num_threads=T)
            m.fit(X, show_progress=False)
            return m.similarity

        _, imp_raw = run_lib(
            case,
            "implicit",
            imp_fn,
            note=f"CosineRecommender(K={k + 1}).fit(user_items)",
            repeats=args.repeats,
            budget=args.budget,
        )
        ref = drop_diag_topk(imp_raw, k) if imp_raw is not None else None
        if ops is not None:

            def co_fn2(X=X):
                return ops.cosine_topk(X.T.tocsr(), k=k, device=args.device, n_threads=T)

            row, got = run_lib(
                case,
                "cohortrec",
                co_fn2,
                note="cosine_topk(user_items.T.tocsr(), k) (transpose timed)",
                repeats=args.repeats,
                budget=args.budget,
            )
            if got is not None and ref is not None:
                compare_cosine_results(
                    case, "vs implicit", got, ref, sp.csr_matrix(X.T), k, exclude_self=True
                )


# --------------------------------------------------------------------------
# k-means
# --------------------------------------------------------------------------


def gemm_rate(T, size=4096, repeats=3):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    with threadpoolctl.threadpool_limits(T):
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * size**3 / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ref_sq_dists(X, C, chunk=16384):
    """Exact (float64, chunked) nearest centre: returns (label, d2 of it,
    second-nearest label, d2 of it)."""
    C64 = C.astype(np.float64)
    cn = (C64**2).sum(1)
    n = X.shape[0]
    lab = np.empty(n, np.int64)
    lab2 = np.empty(n, np.int64)
    d1 = np.empty(n)
    d2 = np.empty(n)
    for s in range(0, n, chunk):
        x = X[s : s + chunk].astype(np.float64)
        d = (x**2).sum(1)[:, None] - 2 * x @ C64.T + cn[None, :]
        if d.shape[1] > 1:
            two = np.argpartition(d, 1, axis=1)[:, :2]
        else:
            two = np.zeros((d.shape[0], 2), np.int64)
        dv = np.take_along_axis(d, two, 1)
        swap = dv[:, 1] < dv[:, 0]
        two[swap] = two[swap][:, ::-1]
        dv[swap] = dv[swap][:, ::-1]
        lab[s : s + chunk], lab2[s : s + chunk] = two[:, 0], two[:, 1]
        d1[s : s + chunk], d2[s : s + chunk] = dv[:, 0], dv[:, 1]
    return lab, d1, lab2, d2


def exact_d2(X, C, labels):
    diff = X.astype(np.float64) - C.astype(np.float64)[labels]
    return (diff**2).sum(1)


# float32 rounding allowance for squared distances computed as
# |x|^2 - 2 x.c + |c|^2, relative to |x|^2 + max|c|^2 (observed errors of
# float32 implementations are ~1e-7..8e-7 of that)
TIE_RTOL = 3e-6


def check_kmeans(case, X, C0, labels, sqd, sums, counts, k, label="cohortrec"):
    ok = True
    n = X.shape[0]
    labels = np.asarray(labels)
    sqd = np.asarray(sqd)
    ok &= check(
        case,
        f"{label}: output shapes/dtypes",
        labels.shape == (n,) and sqd.shape == (n,) and np.asarray(sums).shape == (k, X.shape[1])
        and np.asarray(counts).shape == (k,) and labels.dtype == np.int64,
        f"labels {labels.dtype}{labels.shape}, sq_dist {sqd.dtype}{sqd.shape}, "
        f"sums {np.asarray(sums).dtype}{np.asarray(sums).shape}, counts {np.asarray(counts).dtype}{np.asarray(counts).shape}",
    )
    ref_lab, ref_d, ref_lab2, ref_d2 = ref_sq_dists(X, C0)
    xn = (X.astype(np.float64) ** 2).sum(1)
    cmax = (C0.astype(np.float64) ** 2).sum(1).max()
    scale = xn + cmax
    # points whose two nearest centres are within float32 rounding of each
    # other: any implementation may legitimately put them in either cluster
    amb = np.flatnonzero(ref_d2 - ref_d <= TIE_RTOL * scale)
    valid = (labels >= 0) & (labels < k)
    ok &= check(case, f"{label}: labels in [0, k)", valid.all(), f"{(~valid).sum()} out of range")
    lab_c = np.where(valid, labels, 0)
    got_true = exact_d2(X, C0, lab_c)
    # a differing label is only wrong if its centre is farther than float32
    # rounding of the ||x||^2 - 2x.c + ||c||^2 expansion can explain
    tie_tol = TIE_RTOL * scale
    diff_lab = np.flatnonzero(lab_c != ref_lab)
    wrong = diff_lab[(got_true[diff_lab] - ref_d[diff_lab]) > tie_tol[diff_lab]]
    ok &= check(
        case,
        f"{label}: kmeans_assign labels == exact argmin (float64)",
        wrong.size == 0,
        f"{diff_lab.size} differ, {diff_lab.size - wrong.size} within near-tie tolerance, {wrong.size} wrong"
        + (
            f"; (point, label, ref label, d2(label), d2(ref)): "
            f"{fmt_examples(wrong, lab_c[wrong], ref_lab[wrong], got_true[wrong], ref_d[wrong])}"
            if wrong.size
            else ""
        ),
    )
    derr = np.abs(sqd.astype(np.float64) - got_true)
    bad_d = np.flatnonzero(derr > TIE_RTOL * scale + 1e-6)
    ok &= check(
        case,
        f"{label}: sq_dist == ||x - c[label]||^2 (tol {TIE_RTOL:g}*(|x|^2+max|c|^2))",
        bad_d.size == 0,
        f"max rel err {(derr / scale).max(initial=0):.3g}; {bad_d.size} bad; min sq_dist {sqd.min(initial=0):.3g}"
        + (
            f"; (point, got, true): {fmt_examples(bad_d, sqd[bad_d], got_true[bad_d])}"
            if bad_d.size
            else ""
        ),
    )
    # update: against float64 sums of cohortrec's own labels
    cnt_ref = np.bincount(lab_c, minlength=k)
    sums_ref = np.zeros((k, X.shape[1]))
    np.add.at(sums_ref, lab_c, X.astype(np.float64)) if n <= 200_000 else _add_sorted(
        sums_ref, lab_c, X
    )
    counts = np.asarray(counts)
    ok &= check(
        case,
        f"{label}: kmeans_update counts == bincount(labels)",
        np.array_equal(counts.astype(np.float64), cnt_ref.astype(np.float64)),
        f"max |diff| {np.abs(counts.astype(np.float64) - cnt_ref).max(initial=0):.3g}",
    )
    sums = np.asarray(sums, dtype=np.float64)
    # float32 accumulation of up to n/k values: allow 1e-5 relative to the
    # sum of |x| per cluster (i.e. about 170 float32 ulps)
    abs_ref = np.zeros((k, X.shape[1]))
    _add_sorted(abs_ref, lab_c, np.abs(X))
    serr = np.abs(sums - sums_ref)
    bad_s = np.argwhere(serr > 1e-5 * abs_ref + 1e-6)
    ok &= check(
        case,
        f"{label}: kmeans_update sums == float64 per-cluster sums (tol 1e-5*sum|x|)",
        bad_s.size == 0,
        f"max rel err {(serr / np.maximum(abs_ref, 1e-30)).max(initial=0):.3g}; {len(bad_s)} bad"
        + (f"; (cluster, dim) {bad_s[:5].tolist()}" if len(bad_s) else ""),
    )
    return ok, (X, amb, ref_lab, ref_lab2, cnt_ref.astype(np.float64))


def _add_sorted(out, labels, X):
    order = np.argsort(labels, kind="stable")
    ls = labels[order]
    starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
    if ls.size == 0:
        return
    sums = np.add.reduceat(X[order].astype(np.float64), starts, axis=0)
    out[ls[starts]] += sums


def centre_check(case, lib, anchor_c, co_center, amb_info):
    """Centres after one iteration from C0: cohortrec vs an anchor.

    Tolerance per cluster j: 1e-4*max|c| plus, for every near-tie point p
    whose two nearest centres include j, the most that moving p in or out
    of j can shift the mean: max|x_p - c_j| / (count_j - 1)."""
    X, amb, lab, lab2, counts = amb_info
    anchor_c = np.asarray(anchor_c, np.float64)
    diff = np.abs(anchor_c - co_center).max(axis=1)
    scale = np.abs(co_center).max()
    allow = np.full(diff.size, 1e-4 * scale)
    for labs in (lab[amb], lab2[amb]):
        shift = np.abs(X[amb].astype(np.float64) - co_center[labs]).max(axis=1)
        np.add.at(allow, labs, shift / np.maximum(counts[labs] - 1.0, 1.0))
    bad = np.flatnonzero(diff > allow)
    strict = allow <= 1e-4 * scale
    return check(
        case,
        f"centres after 1 iteration vs {lib} (max abs diff <= 1e-4*max|c|, plus the shift "
        f"near-tie points can cause in the {int((~strict).sum())} clusters they touch)",
        bad.size == 0,
        f"max abs diff {diff[strict].max(initial=0):.3g} on the other {int(strict.sum())} clusters, "
        f"{diff.max(initial=0):.3g} overall (max |c| {scale:.3g})"
        + (
            f"; (cluster, diff, allowed): {fmt_examples(bad, diff[bad], allow[bad])}"
            if bad.size
            else ""
        ),
    )


def lloyd_step(ops, X, C, k, T, device):
    if hasattr(ops, "kmeans_step"):  # assign + update in one pass over X (same results)
        labels, sqd, sums, counts = ops.kmeans_step(X, C, device=device, n_threads=T)
    else:
        labels, sqd = ops.kmeans_assign(X, C, device=device, n_threads=T)
        sums, counts = ops.kmeans_update(X, labels, k, device=device, n_threads=T)
    counts = np.asarray(counts)
    newC = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], C)
    return newC.astype(np.float32), labels, sqd, sums, counts


KMEANS_FULL = [(1_000_000, 32, 64), (1_000_000, 32, 256), (200_000, 128, 1024), (100_000, 128, 1024)]
KMEANS_QUICK = [(1_000_000, 32, 64)]


def bench_kmeans(args, ops, T, gemm):
    faiss = _opt_import("faiss")
    from sklearn.cluster import KMeans  # noqa: PLC0415

    cfgs = KMEANS_QUICK if args.quick else KMEANS_FULL
    n_extra = 2 if args.quick else 3  # iterations beyond the first for the anchors
    for n, d, k in cfgs:
        flops = 2.0 * n * d * k
        case = Case(
            "kmeans",
            f"Lloyd iteration {n // 1000}k x {d}, k={k}",
            f"Gaussian blobs n={n} d={d} (100 true blobs), float32; init = {k} random points; "
            f"assignment = {flops / 1e9:.1f} GFLOP",
        )
        CASES.append(case)
        log(f"\n== {case.name}")
        X = D.blobs(n, d, seed=args.seed)
        C0 = D.init_centers(X, k, seed=args.seed + 1)

        co_center = None
        amb_info = None
        if ops is not None:
            row, out = run_lib(
                case,
                "cohortrec",
                lambda: lloyd_step(ops, X, C0, k, T, args.device),
                note="kmeans_step (kmeans_assign + kmeans_update in one pass) + new centres",
                repeats=args.repeats,
                budget=args.budget,
            )
            if row is not None:
                row.gflops = flops / row.timing.best / 1e9
                co_center, labels, sqd, sums, counts = out
                _, amb_info = check_kmeans(case, X, C0, labels, sqd, sums, counts, k)
                case.notes.append(
                    f"{amb_info[1].size} points have their two nearest initial centres within float32 "
                    f"rounding ({TIE_RTOL:g}*(|x|^2+max|c|^2)); float32 implementations may assign them either "
                    "way, so the centre comparisons with scikit-learn / faiss allow for that in the "
                    "clusters they touch"
                )
                # sample_weight on a subset (semantics: weighted sums / weighted counts)
                try:
                    m = min(n, 20000)
                    w = np.random.default_rng(5).uniform(0.1, 2.0, m).astype(np.float32)
                    s_w, c_w = ops.kmeans_update(
                        X[:m], labels[:m], k, sample_weight=w, device=args.device, n_threads=T
                    )
                    ref_c = np.bincount(labels[:m], weights=w.astype(np.float64), minlength=k)
                    ref_s = np.zeros((k, d))
                    np.add.at(ref_s, labels[:m], X[:m].astype(np.float64) * w[:, None])
                    e1 = np.abs(np.asarray(c_w, np.float64) - ref_c).max()
                    e2 = np.abs(np.asarray(s_w, np.float64) - ref_s).max() / max(np.abs(ref_s).max(), 1)
                    check(
                        case,
                        "cohortrec: kmeans_update(sample_weight=w) == weighted float64 sums/counts",
                        e1 <= 1e-3 * max(ref_c.max(), 1) and e2 <= 1e-5,
                        f"max count err {e1:.3g}, max rel sum err {e2:.3g}",
                    )
                except Exception as exc:  # noqa: BLE001
                    check(case, "cohortrec: kmeans_update(sample_weight=...)", False, f"{type(exc).__name__}: {exc}")
            row2, _ = run_lib(
                case,
                "cohortrec assign only",
                lambda: ops.kmeans_assign(X, C0, device=args.device, n_threads=T),
                note="kmeans_assign alone",
                repeats=args.repeats,
                budget=args.budget,
            )
            if row2 is not None:
                row2.gflops = flops / row2.timing.best / 1e9

        # ---- scikit-learn: per-iteration time by differencing ------------
        def sk_fit(iters):
            km = KMeans(
                n_clusters=k, init=C0, n_init=1, max_iter=iters, algorithm="lloyd", tol=0.0,
                copy_x=True, random_state=0,
            )
            with threadpoolctl.threadpool_limits(T):
                km.fit(X)
            return km

        try:
            t1, km1 = timeit(lambda: sk_fit(1), repeats=args.repeats, budget=args.budget)
            tN, kmN = timeit(lambda: sk_fit(1 + n_extra), repeats=args.repeats, budget=args.budget)
            it = kmN.n_iter_ - km1.n_iter_
            if it <= 0:
                raise RuntimeError(f"sklearn converged early (n_iter_ {km1.n_iter_}, {kmN.n_iter_})")
            per = Timing(
                [max((tN.best - t1.best) / it, 1e-9)],
            )
            per.times = [max((tN.best - t1.best) / it, 1e-9), max((tN.median - t1.median) / it, 1e-9)]
            row = Row(
                "scikit-learn",
                timing=per,
                note=f"(fit(max_iter={1 + n_extra}) - fit(max_iter=1)) / {it}; "
                f"fit(max_iter=1) = {t1.best:.3f}s",
                gflops=flops / per.best / 1e9,
            )
            case.rows.append(row)
            log(f"  scikit-learn: per-iter {per.best:.4f}s (fit1 {t1.best:.3f}s, fit{1 + n_extra} {tN.best:.3f}s, n_iter {km1.n_iter_},{kmN.n_iter_})")
            if co_center is not None:
                centre_check(case, "scikit-learn", km1.cluster_centers_, co_center, amb_info)
        except Exception as exc:  # noqa: BLE001
            case.rows.append(Row("scikit-learn", error=f"{type(exc).__name__}: {exc}"))
            log(f"  scikit-learn: ERROR {exc}")

        # ---- faiss ---------------------------------------------------------
        if faiss is None:
            case.notes.append("faiss not importable")
            continue
        faiss.omp_set_num_threads(T)
        mppc = n // k + 1

        def fa_fit(iters):
            km = faiss.Kmeans(
                d, k, niter=iters, max_points_per_centroid=mppc, min_points_per_centroid=1,
                verbose=False, seed=1234,
            )
            km.train(X, init_centroids=C0)
            return km

        try:
            t1, f1 = timeit(lambda: fa_fit(1), repeats=args.repeats, budget=args.budget)
            tN, _ = timeit(lambda: fa_fit(1 + n_extra), repeats=args.repeats, budget=args.budget)
            per = Timing([max((tN.best - t1.best) / n_extra, 1e-9), max((tN.median - t1.median) / n_extra, 1e-9)])
            row = Row(
                "faiss",
                timing=per,
                note=f"(train(niter={1 + n_extra}) - train(niter=1)) / {n_extra}; "
                f"max_points_per_centroid={mppc} (no subsampling); train(niter=1) = {t1.best:.3f}s",
                gflops=flops / per.best / 1e9,
            )
            case.rows.append(row)
            log(f"  faiss: per-iter {per.best:.4f}s (niter1 {t1.best:.3f}s, niter{1 + n_extra} {tN.best:.3f}s)")
            if co_center is not None:
                centre_check(case, "faiss", f1.centroids, co_center, amb_info)
        except Exception as exc:  # noqa: BLE001
            case.rows.append(Row("faiss", error=f"{type(exc).__name__}: {exc}"))
            log(f"  faiss: ERROR {exc}")
        del X


# --------------------------------------------------------------------------
# topk_scores
# --------------------------------------------------------------------------


def _csr_topn_rows(S, n, excl_mask=None):
    """Per-row top-n of a CSR block (vectorised): returns (items, scores) with
    -1 / -inf padding.  `excl_mask` flags stored entries to drop."""
    S = sp.csr_matrix(S)
    rows_n = S.shape[0]
    data = S.data.astype(np.float32, copy=True)
    if excl_mask is not None:
        data[excl_mask] = -np.inf
    lengths = np.diff(S.indptr)
    width = max(int(lengths.max(initial=0)), n)
    P = np.full((rows_n, width), -np.inf, dtype=np.float32)
    I = np.full((rows_n, width), -1, dtype=np.int64)
    rows = np.repeat(np.arange(rows_n), lengths)
    pos = np.arange(S.nnz) - S.indptr[rows]
    P[rows, pos] = data
    I[rows, pos] = S.indices
    if width > n:
        part = np.argpartition(P, width - n, axis=1)[:, width - n :]
        P = np.take_along_axis(P, part, 1)
        I = np.take_along_axis(I, part, 1)
    order = np.argsort(-P, axis=1, kind="stable")
    P = np.take_along_axis(P, order, 1)
    I = np.take_along_axis(I, order, 1)
    I[~np.isfinite(P)] = -1
    return I[:, :n], P[:, :n]


def scipy_topk(W, R, E, n, T, batch=2048):
    """Anchor: SciPy W @ R in row batches; excluded (user, item) entries are
    found with a boolean (batch x items) scratch array and set to -inf; per-row
    top-n by a padded argpartition.  Batches run on T Python threads (SciPy's
    SpGEMM and numpy's partition release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    u, m = W.shape[0], R.shape[1]
    items = np.empty((u, n), np.int64)
    scores = np.empty((u, n), np.float32)

    def work(s):
        e = min(s + batch, u)
        S = W[s:e] @ R
        S = sp.csr_matrix(S)
        Eb = E[s:e]
        mask = np.zeros((e - s, m), dtype=bool)
        mask[np.repeat(np.arange(e - s), np.diff(Eb.indptr)), Eb.indices] = True
        rows = np.repeat(np.arange(e - s), np.diff(S.indptr))
        excl = mask[rows, S.indices]
        I, P = _csr_topn_rows(S, n, excl)
        items[s:e] = I
        scores[s:e] = P

    if T > 1:
        with ThreadPoolExecutor(T) as ex:
            list(ex.map(work, range(0, u, batch)))
    else:
        for s in range(0, u, batch):
            work(s)
    return items, scores


def sdtn_topk(W, R, E, n, T):
    """Anchor: sparse_dot_topn with exclusion folded into the product:
    [W | E] @ [R ; -BIG * I] = W @ R - BIG * E, so excluded items score
    about -BIG and can never beat a real candidate; entries <= -BIG/2 are
    dropped afterwards (and sp_matmul_topn may drop negatives itself)."""
    from sparse_dot_topn import sp_matmul_topn  # noqa: PLC0415

    u, m = W.shape[0], R.shape[1]
    w_abs = abs(W).sum(axis=1).max() if W.nnz else 0.0
    big = np.float32(4.0 * float(w_abs) * float(abs(R).max() if R.nnz else 1.0) + 1.0)
    Ef = sp.csr_matrix((np.ones(E.nnz, np.float32), E.indices, E.indptr), shape=E.shape)
    A = sp.hstack([W.astype(np.float32), Ef], format="csr")
    B = sp.vstack([R.astype(np.float32), sp.identity(m, np.float32, format="csr") * -big], format="csr")
    C = sp_matmul_topn(A, B, top_n=n, sort=True, n_threads=T)
    C = sp.csr_matrix(C)
    keep = C.data > -big / 2
    lengths = np.diff(C.indptr)
    rows = np.repeat(np.arange(u), lengths)
    rows, cols, vals = rows[keep], C.indices[keep], C.data[keep]
    # entries are sorted desc within each row (sort=True) -> rank = position
    counts = np.bincount(rows, minlength=u)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    pos = np.arange(rows.size) - starts[rows]
    items = np.full((u, n), -1, np.int64)
    scores = np.full((u, n), -np.inf, np.float32)
    items[rows, pos] = cols
    scores[rows, pos] = vals
    return items, scores


def implicit_topk(model, user_items, n):
    ids, sc = model.recommend(
        np.arange(user_items.shape[0]), user_items, N=n, filter_already_liked_items=True
    )
    ids = np.asarray(ids, np.int64)
    sc = np.asarray(sc, np.float64)
    pad = (ids < 0) | (sc <= -np.finfo(np.float32).max)
    ids[pad] = -1
    sc[pad] = -np.inf
    return ids, sc


def compare_topk(case, label, got, ref, W, R, E, n, *, sample_users=5000):
    ok = True
    gi, gs = (np.asarray(a) for a in got)
    ri, rs = (np.asarray(a) for a in ref)
    u = W.shape[0]
    ok &= check(
        case,
        f"{label}: shapes/dtypes",
        gi.shape == (u, n) and gs.shape == (u, n) and gi.dtype == np.int64,
        f"items {gi.dtype}{gi.shape}, scores {gs.dtype}{gs.shape}",
    )
    if gi.shape != (u, n) or gs.shape != (u, n):
        return False
    gs64 = gs.astype(np.float64)
    rs64 = rs.astype(np.float64)
    gpad = gi < 0
    rpad = ri < 0
    bad_pad = np.flatnonzero((gpad != rpad).any(1))
    ok &= check(
        case,
        f"{label}: same number of results per user (padding -1)",
        bad_pad.size == 0,
        f"{bad_pad.size} users differ"
        + (f"; (user, cohortrec count, anchor count): {fmt_examples(bad_pad, (~gpad[bad_pad]).sum(1), (~rpad[bad_pad]).sum(1))}" if bad_pad.size else ""),
    )
    pad_scores_ok = np.all(np.isneginf(gs64[gpad]))
    ok &= check(case, f"{label}: padded scores are -inf", pad_scores_ok, "")
    both = ~gpad & ~rpad
    with np.errstate(invalid="ignore"):
        diff = np.where(both, np.abs(gs64 - rs64), 0.0)
    tol = 1e-5 + 1e-4 * np.abs(rs64)
    bad = np.flatnonzero(((diff > tol) & both).any(1))
    ok &= check(
        case,
        f"{label}: top-{n} scores (atol 1e-5, rtol 1e-4)",
        bad.size == 0,
        f"max |diff| {diff.max(initial=0):.3g}; {bad.size} users differ"
        + (f"; (user, cohortrec top score, anchor top score): {fmt_examples(bad, gs64[bad, 0], rs64[bad, 0])}" if bad.size else ""),
    )
    sorted_ok = np.flatnonzero((np.diff(np.where(gpad, -np.inf, gs64), axis=1) > 0).any(1))
    ok &= check(case, f"{label}: scores sorted desc", sorted_ok.size == 0, f"{sorted_ok.size} users not sorted")
    # per-user item validity on a sample: distinct, not excluded, score == (W@R)[u, item]
    rng = np.random.default_rng(7)
    us = np.sort(rng.choice(u, size=min(sample_users, u), replace=False))
    S = sp.csr_matrix(W[us].astype(np.float64) @ R.astype(np.float64))
    it = gi[us]
    valid = it >= 0
    rr = np.repeat(np.arange(us.size), n).reshape(us.size, n)
    vals = np.zeros(it.shape)
    if valid.any():
        vals[valid] = np.asarray(S[rr[valid], it[valid]]).ravel()
        ex = np.asarray(sp.csr_matrix(E[us])[rr[valid], it[valid]]).ravel() != 0
    else:
        ex = np.zeros(0, bool)
    nexcl = int(ex.sum())
    ok &= check(
        case,
        f"{label}: no excluded item returned ({us.size} sampled users)",
        nexcl == 0,
        f"{nexcl} excluded items returned",
    )
    srt = np.sort(np.where(valid, it, -1 - np.arange(n)[None, :]), axis=1)
    dups = int((srt[:, 1:] == srt[:, :-1]).sum())
    ok &= check(case, f"{label}: items distinct per user", dups == 0, f"{dups} duplicates")
    verr = np.abs(vals - gs64[us]) * valid
    badv = np.argwhere(verr > 1e-5 + 1e-4 * np.abs(vals))
    ok &= check(
        case,
        f"{label}: score == (W@R)[u, item] ({us.size} sampled users)",
        badv.size == 0,
        f"max err {verr.max(initial=0):.3g}; {len(badv)} bad"
        + (
            f"; (user, item, score, true): "
            + "; ".join(
                f"({us[a]}, {it[a, b]}, {gs64[us][a, b]:.6g}, {vals[a, b]:.6g})" for a, b in badv[:5]
            )
            if len(badv)
            else ""
        ),
    )
    return ok


def bench_topk(args, ops, T):
    implicit_nn = _opt_import("implicit.nearest_neighbours")
    n = 20
    nn = 50
    n_users = 20_000 if args.quick else 100_000
    n_items = 20_000
    UI = interactions_cached(n_users, n_items, args.seed + 10)

    variants = []
    # (a) user-based: W = user kNN (u x u), R = user_items, exclude = user_items
    variants.append(("user-based", "W = random user kNN (u x u, 50/row), R = user_items, exclude = user_items"))
    # (b) item-based: W = user_items, R = item kNN (implicit's similarity), exclude = user_items
    variants.append(("item-based", "W = user_items, R = implicit CosineRecommender(K=50).similarity (item x item, self included), exclude = user_items"))

    for vname, vdesc in variants:
        case = Case(
            "topk",
            f"topk_scores {vname} {n_users // 1000}k users x {n_items // 1000}k items, {nn} nbrs, n={n}",
            "",
        )
        CASES.append(case)
        log(f"\n== {case.name}")
        model = None
        if vname == "user-based":
            t0 = time.perf_counter()
            W = D.user_neighbours(n_users, nn, kind="random", seed=args.seed + 11)
            R = UI
            log(f"  W built in {time.perf_counter() - t0:.1f}s")
        else:
            if implicit_nn is None:
                case.notes.append("implicit not importable; item-based variant skipped")
                continue
            t0 = time.perf_counter()
            model = implicit_nn.CosineRecommender(K=nn, num_threads=T)
            model.fit(UI, show_progress=False)
            W = UI
            R = sp.csr_matrix(model.similarity, dtype=np.float32)
            R.sort_indices()
            log(f"  R (implicit item kNN) built in {time.perf_counter() - t0:.1f}s, nnz {R.nnz}")
        E = UI
        madds = int(np.diff(R.indptr)[W.indices].sum())
        case.data = (
            f"{vdesc}; W {W.shape[0]}x{W.shape[1]} nnz={W.nnz}, R {R.shape[0]}x{R.shape[1]} nnz={R.nnz}, "
            f"E nnz={E.nnz}; W@R multiply-adds={madds:.3g}"
        )
        log(f"  {case.data}")

        _, ref = run_lib(
            case,
            "scipy",
            lambda: scipy_topk(W, R, E, n, T),
            note=f"W@R (float32) in 2048-row batches on {T} threads, exclusion via bool scratch, padded argpartition",
            repeats=args.repeats,
            budget=args.budget,
        )
        _, sd = run_lib(
            case,
            "sparse_dot_topn",
            lambda: sdtn_topk(W, R, E, n, T),
            note="sp_matmul_topn([W|E], [R; -BIG*I], top_n=n, sort=True) + unpack",
            repeats=args.repeats,
            budget=args.budget,
        )
        imp = None
        if model is not None:
            _, imp = run_lib(
                case,
                "implicit",
                lambda: implicit_topk(model, UI, n),
                note="ItemItemRecommender.recommend(all users, N=n) (single-threaded Python loop over users; float64)",
                repeats=args.repeats,
                budget=args.budget,
            )
        # anchors agree with each other (validates the anchor implementations)
        if ref is not None and sd is not None:
            compare_topk(case, "anchor sparse_dot_topn vs scipy", sd, ref, W, R, E, n, sample_users=1000)
        if ref is not None and imp is not None:
            compare_topk(case, "anchor implicit vs scipy", imp, ref, W, R, E, n, sample_users=1000)
        if ops is not None:
            _, got = run_lib(
                case,
                "cohortrec",
                lambda: ops.topk_scores(W, R, n=n, exclude=E, device=args.device, n_threads=T),
                repeats=args.repeats,
                budget=args.budget,
            )
            if got is not None and ref is not None:
                compare_topk(case, "vs scipy", got, ref, W, R, E, n)
            if got is not None and imp is not None:
                compare_topk(case, "vs implicit", got, imp, W, R, E, n, sample_users=1000)


# --------------------------------------------------------------------------
# Environment report
# --------------------------------------------------------------------------


def versions(ops):
    vs = {}
    for name in ("numpy", "scipy", "sklearn", "sparse_dot_topn", "implicit", "faiss", "threadpoolctl"):
        mod = _opt_import(name)
        vs[name] = getattr(mod, "__version__", "?") if mod is not None else "not installed"
    if ops is not None and not ops.__name__.startswith("cohortrec"):
        vs["ops module"] = f"{ops.__name__} ({ops.__file__}) -- NOT cohortrec"
    elif ops is not None:
        import cohortrec  # noqa: PLC0415

        vs["cohortrec"] = f"{getattr(cohortrec, '__version__', '?')} (git {git_revision()})"
        vs["cohortrec location"] = os.path.dirname(cohortrec.__file__)
    return vs


def blas_info():
    rows = []
    for i in threadpoolctl.threadpool_info():
        rows.append(
            {
                "user_api": i.get("user_api"),
                "internal_api": i.get("internal_api"),
                "lib": os.path.basename(i.get("filepath", "")),
                "version": i.get("version"),
                "architecture (kernel)": i.get("architecture", "-"),
                "threading": i.get("threading_layer", "-"),
                "num_threads": i.get("num_threads"),
            }
        )
    return rows


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def _t(x):
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f} s"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1e3:.1f} ms"


def case_table(case, gemm):
    co = next((r for r in case.rows if r.library == "cohortrec" and r.timing), None)
    has_gf = any(r.gflops for r in case.rows)
    hdr = ["library", "best", "median", "runs", "anchor / cohortrec"]
    if has_gf:
        hdr += ["GFLOP/s (assign flops / time)", "% of GEMM"]
    hdr += ["how"]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r in case.rows:
        if r.timing is None:
            cells = [r.library, "ERROR", "", "", ""] + (["", ""] if has_gf else []) + [f"{r.error} {r.note}".strip()]
        else:
            ratio = "-"
            if co is not None and r is not co and not r.library.startswith("cohortrec"):
                ratio = f"{r.timing.best / co.timing.best:.2f}x"
            elif r is co:
                ratio = "1.00x"
            runs = f"{len(r.timing.times)}{' (cold)' if r.timing.cold else ''}"
            if r.library in ("scikit-learn", "faiss"):
                runs = "diff"
            cells = [r.library, _t(r.timing.best), _t(r.timing.median), runs, ratio]
            if has_gf:
                cells += [
                    f"{r.gflops:.1f}" if r.gflops else "-",
                    f"{100 * r.gflops / gemm:.0f}%" if (r.gflops and gemm) else "-",
                ]
            cells.append(r.note)
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return lines


def summary_table():
    lines = [
        "| case | cohortrec | anchor | anchor time | anchor / cohortrec | correctness | other load |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in CASES:
        co = next((r for r in c.rows if r.library == "cohortrec" and r.timing), None)
        nfail = sum(1 for _, ok, _ in c.checks if not ok)
        corr = "-" if not c.checks else ("ok" if nfail == 0 else f"**{nfail} FAIL**")
        for r in c.rows:
            if r.library.startswith("cohortrec"):
                continue
            ratio = (
                f"{r.timing.best / co.timing.best:.2f}x" if (co and r.timing) else "-"
            )
            lines.append(
                f"| {c.name} | {_t(co.timing.best) if co else '-'} | {r.library} | "
                f"{_t(r.timing.best) if r.timing else 'ERROR'} | {ratio} | {corr} | "
                f"{'-' if c.load is None else f'{c.load:.2f}'} |"
            )
    return lines


def write_markdown(path, args, ops, ops_err, gemm, started, elapsed):
    cmd = shlex.join([os.path.relpath(sys.executable) if False else sys.executable] + sys.argv)
    env_note = (
        "removed by the script before numpy was imported: "
        + ", ".join(f"{k}={v}" for k, v in _REMOVED_ENV.items())
        if _REMOVED_ENV
        else "not set"
    )
    lines = [f"# cohortrec CPU benchmark ({started:%Y-%m-%d %H:%M})", ""]
    lines += [
        "Generated by `benchmarks/compare.py`; ratios are anchor_time / cohortrec_time on best-of-n "
        "times (> 1 means cohortrec is faster). See benchmarks/README.md for what each case measures.",
        "",
        "## Command",
        "",
        "```",
        f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE {cmd}",
        "```",
        "",
        f"- wall time: {elapsed:.0f} s; threads for every library: {args.threads}; "
        f"cohortrec device: `{args.device}`; seed {args.seed}; quick: {args.quick}",
        f"- OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: {env_note}",
        f"- CPU used by other processes during the run: {RUN_LOAD[0] if RUN_LOAD else float('nan'):.2f} CPUs on average "
        "(the 'other load' column gives it per case; above ~0.2 the timings are disturbed)",
        f"- OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} "
        f"(set by the script); threadpoolctl limit {args.threads}; sparse_dot_topn n_threads, implicit num_threads, "
        f"faiss.omp_set_num_threads and cohortrec n_threads all = {args.threads}",
    ]
    if ops is None:
        lines.append(f"- **cohortrec: {ops_err}** -- anchors only")
    lines += ["", "## Machine", ""]
    for k, v in machine_info().items():
        lines.append(f"- {k}: {v}")
    if gemm:
        lines.append(f"- measured numpy float32 GEMM (4096^3, {args.threads} threads): **{gemm:.1f} GFLOP/s**")
    lines += ["", "## Library versions", ""]
    for k, v in versions(ops).items():
        lines.append(f"- {k}: {v}")
    lines += ["", "## BLAS / OpenMP (threadpoolctl)", ""]
    bi = blas_info()
    if bi:
        keys = list(bi[0].keys())
        lines.append("| " + " | ".join(keys) + " |")
        lines.append("|" + "---|" * len(keys))
        for r in bi:
            lines.append("| " + " | ".join(str(r[k]) for k in keys) + " |")
    lines += ["", "## Summary", ""] + summary_table()
    lines += ["", "## Cases", ""]
    for c in CASES:
        lines += [f"### {c.name}", "", f"Data: {c.data}", ""]
        lines += case_table(c, gemm)
        for note in c.notes:
            lines.append(f"\nNote: {note}")
        if c.checks:
            lines += ["", "Correctness checks (on the output of each library's first run -- the warm-up, or the only "
                "timed run for cases marked cold -- before any further timed repeat):", ""]
            for what, ok, detail in c.checks:
                lines.append(f"- {'ok' if ok else '**FAIL**'} -- {what}{': ' + detail if detail else ''}")
        lines.append("")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    log(f"\nwrote {path}")


START_SNAP: list = []
RUN_LOAD: list = []


def wait_idle(limit_s, threshold=0.2, window=5.0, needed=6):
    """Wait until `needed` consecutive windows had other load < threshold."""
    deadline = time.perf_counter() + limit_s
    quiet = 0
    while True:
        a = cpu_snapshot()
        time.sleep(window)
        load = other_load(a, cpu_snapshot())
        quiet = quiet + 1 if load < threshold else 0
        if quiet >= needed:
            log(f"machine idle for {needed * window:.0f}s (other load {load:.2f} CPUs)")
            return True
        if time.perf_counter() > deadline:
            log(f"WARNING: machine still busy after {limit_s:.0f}s (other load {load:.2f} CPUs); starting anyway")
            return False


def main(args):
    if args.wait_idle > 0:
        wait_idle(args.wait_idle)
    START_SNAP[:] = [cpu_snapshot()]
    try:
        with open("/proc/loadavg") as fh:
            log(f"loadavg at start: {fh.read().strip()}")
    except OSError:
        pass
    started = _dt.datetime.now()
    t_start = time.perf_counter()
    T = args.threads
    threadpoolctl.threadpool_limits(T)
    ops, ops_err = load_cohortrec(args)
    # import the anchors up front so threadpoolctl sees every runtime
    for name in ("sklearn.cluster", "faiss", "implicit.nearest_neighbours", "sparse_dot_topn"):
        _opt_import(name)
    faiss = _opt_import("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(T)
    threadpoolctl.threadpool_limits(T)
    log(f"cohortrec: {'available' if ops is not None else ops_err}")
    if _REMOVED_ENV:
        log(f"removed before importing numpy: {_REMOVED_ENV}")
    for r in blas_info():
        log(f"  {r}")
    groups = args.only or ["cosine", "kmeans", "topk"]
    gemm = None
    if "kmeans" in groups:
        gemm = gemm_rate(T)
        log(f"numpy float32 GEMM rate ({T} threads): {gemm:.1f} GFLOP/s")
    if "cosine" in groups:
        bench_cosine(args, ops, T)
    if "kmeans" in groups:
        bench_kmeans(args, ops, T, gemm)
    if "topk" in groups:
        bench_topk(args, ops, T)
    elapsed = time.perf_counter() - t_start
    end_snap = cpu_snapshot()
    for c, nxt in zip(CASES, CASES[1:] + [None]):
        c.load = other_load(c.snap, nxt.snap if nxt is not None else end_snap)
    RUN_LOAD[:] = [other_load(START_SNAP[0], end_snap)]
    noisy = [c.name for c in CASES if c.load is not None and c.load > 0.2]
    if noisy:
        log(f"\nWARNING: other processes used CPU during: {noisy} -- timings are unreliable")

    log("\n\n## Summary")
    for line in summary_table():
        log(line)
    for c in CASES:
        log(f"\n### {c.name}")
        for line in case_table(c, gemm):
            log(line)
    fails = [(c.name, w, d) for c in CASES for (w, ok, d) in c.checks if not ok]
    errors = [(c.name, r.library, r.error) for c in CASES for r in c.rows if r.error]
    if fails:
        log("\nCORRECTNESS FAILURES:")
        for name, w, d in fails:
            log(f"  [{name}] {w}: {d}")
    if errors:
        log("\nERRORS:")
        for name, lib, e in errors:
            log(f"  [{name}] {lib}: {e}")
    log(f"\ntotal {elapsed:.0f}s")
    if args.out and args.out != "-":
        write_markdown(args.out, args, ops, ops_err, gemm, started, elapsed)
    return 1 if (fails or (ops is not None and any(lib.startswith("cohortrec") for _, lib, _ in errors))) else 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
