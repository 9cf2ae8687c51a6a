#!/usr/bin/env python3
"""GPU benchmark of cohortrec.ops against the anchors present on a GPU machine.

Run by ``benchmarks/gpu/check.sh`` (which builds cohortrec with CUDA first);
standalone: ``PYTHONPATH=python python3 benchmarks/gpu/bench_gpu.py``.

For each op, on deterministic synthetic data (benchmarks/datasets.py):

* cohortrec on the GPU, with host (NumPy/SciPy) inputs -- copies included --
  and with device inputs (CuPy / cupyx.scipy.sparse / torch, zero-copy);
* the anchors: torch ``matmul``+``argmin`` and ``cdist``+``argmin`` (K-means
  assignment), ``index_add_`` (update), cupyx sparse products + top-k
  (cosine, top-n scoring), faiss-gpu when installed;
* cohortrec on the CPU (all cores), for reference;
* K-means rates as a fraction of the GEMM rate measured on the same card.

Every cohortrec GPU result is checked (sparse ops: identical to the CPU op;
K-means: the chosen centre's exact float64 distance is within a stated
rounding bound of the nearest one -- see ``assign_tolerance`` -- on a sample
of rows; label agreement with the fp32 anchor is reported, not checked, since
near-ties legitimately resolve either way and low-precision products
perturb them more).

Sizes: ``--quick`` (default, about a minute on an H100), ``--full`` (the
issue's targets: 1M x 256 k=1024, 100k users), ``--tiny`` (seconds; for
``check.sh --dry-run``). The table goes to ``<out>/gpu-<date>-<card>.md``
*row by row* (each finished row is on disk at once, so a run stopped by a
timeout keeps them), then the checks. ``--budget`` seconds: sections not
started by 80% of it are skipped and listed as skipped (not as failures).
``--cpu-stand-in`` replaces cohortrec._cuda by the CPU stand-in of the tests
(``tests/_cuda_standin.py``), to test this script without a GPU.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import time
import traceback

import numpy as np
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/ (datasets.py)
import datasets as D  # noqa: E402

if "--cpu-stand-in" in sys.argv:  # before cohortrec is imported
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests"))
    import _cuda_standin  # noqa: E402

    _cuda_standin.install()


def _opt(name):
    try:
        return __import__(name)
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None


torch = _opt("torch")
cupy = _opt("cupy")
if cupy is not None:
    try:
        import cupyx.scipy.sparse as csp
    except Exception:  # noqa: BLE001
        cupy = csp = None
faiss = _opt("faiss")

import cohortrec  # noqa: E402
from cohortrec import ops  # noqa: E402

ROWS: list[dict] = []
FAILURES: list[str] = []
SKIPPED: list[str] = []
REPORT: list = [None]  # the open results file (rows are appended as they finish)


def log(msg: str) -> None:
    print(msg, flush=True)


def _emit(line: str) -> None:
    f = REPORT[0]
    if f is not None:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def sync() -> None:
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize()
    elif cupy is not None:
        cupy.cuda.Device().synchronize()


def timed(fn, *, warmup=1, repeats=5, budget=8.0):
    """Median wall time of fn() (synchronised), after `warmup` calls."""
    out = None
    for _ in range(warmup):
        out = fn()
        sync()
    times = []
    stop = time.perf_counter() + budget
    while len(times) < repeats:
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() > stop:
            break
    return float(np.median(times)), out


def row(op, case, impl, seconds, note="", base=None):
    r = {"op": op, "case": case, "impl": impl, "ms": None if seconds is None else seconds * 1e3,
         "base": base, "note": note}
    ROWS.append(r)
    ms = "-" if seconds is None else f"{seconds * 1e3:.1f} ms"
    log(f"  {op:14s} {impl:34s} {ms:>12s}  {note}")
    _emit(table_line(r))


def check(what, ok, detail=""):
    log(f"  check: {what}: {'ok' if ok else 'FAILED'} {detail}")
    if not ok:
        FAILURES.append(f"{what}: {detail}")
    return ok


DEADLINE = [float("inf")]


def guarded(section):
    def wrap(fn):
        def run(*a, **k):
            if time.perf_counter() > DEADLINE[0]:
                SKIPPED.append(f"{section}{list(a[:3])}: not started, out of time (--budget)")
                log(f"  {section}: skipped, out of time")
                return None
            try:
                return fn(*a, **k)
            except Exception as exc:  # noqa: BLE001 - a failing section is reported, the rest runs
                FAILURES.append(f"{section}: {type(exc).__name__}: {exc}")
                log(f"  {section} FAILED: {type(exc).__name__}: {exc}")
                traceback.print_exc()
                return None
        return run
    return wrap


def gpu_ops_reachable() -> bool:
    try:
        ops.cosine_topk(sp.csr_matrix(np.eye(2, dtype=np.float32)), k=1, device="cuda")
        return True
    except Exception as exc:  # noqa: BLE001
        log(f"cohortrec GPU path not reachable: {type(exc).__name__}: {exc}")
        return False


# --------------------------------------------------------------------- GEMM
@guarded("gemm")
def bench_gemm(size):
    if torch is None or not torch.cuda.is_available():
        return {}
    rates = {}
    a = torch.randn(size, size, device="cuda")
    b = torch.randn(size, size, device="cuda")
    flops = 2.0 * size**3
    for name, dt, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                           ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        x, y = a.to(dt), b.to(dt)
        t, _ = timed(lambda: x @ y, warmup=2, repeats=5)
        rates[name] = flops / t
        row("gemm", f"{size}^3", f"torch matmul {name}", t, f"{rates[name] / 1e12:.0f} TFLOP/s")
    torch.backends.cuda.matmul.allow_tf32 = False
    return rates


# ------------------------------------------------------------------- K-means
UNIT_ROUNDOFF = {"fp32": 2.0**-24, "tf32": 2.0**-11, "bf16": 2.0**-8}


def assign_tolerance(X, C, precision):
    """Bound on d(x, c_label) - min_j d(x, c_j) (exact float64 distances) per row of X.

    fp32 (||x||^2 - 2 x.c + ||c||^2 in float32, as on the CPU): the dot
    product carries at most d u sum|x_t c_t| <= d u ||x|| ||c||, u = 2^-24, so
    a difference of two distances is off by at most
    (2 d u + 1e-5) (||x||^2 + max_j ||c_j||^2), 1e-5 covering the rounding of
    the formula. tf32/bf16: the kernel multiplies x - s and c - s, s = mean of
    C, rounded to u = 2^-11 / 2^-8: 8 (u + d 2^-23) ||x - s|| max_j ||c_j - s||
    + 1e-5 (||x - s||^2 + max_j ||c_j - s||^2) (tests/test_cuda.py checks this
    bound on an emulation of the rounding, and that it fails without the shift).
    """
    X64, C64 = X.astype(np.float64), C.astype(np.float64)
    d = X.shape[1]
    if precision == "fp32":
        return (2 * d * UNIT_ROUNDOFF["fp32"] + 1e-5) * ((X64**2).sum(1) + (C64**2).sum(1).max())
    s = C64.mean(axis=0)
    xs = np.linalg.norm(X64 - s, axis=1)
    cs = np.linalg.norm(C64 - s, axis=1).max()
    return 8 * (UNIT_ROUNDOFF[precision] + d * 2.0**-23) * xs * cs + 1e-5 * (xs**2 + cs**2)


def check_assignment(precision, X, C, labels, sample):
    """The chosen centre is the nearest up to assign_tolerance, on the rows `sample`."""
    Xs = X[sample].astype(np.float64)
    C64 = C.astype(np.float64)
    d2 = (Xs**2).sum(1)[:, None] - 2.0 * (Xs @ C64.T) + (C64**2).sum(1)[None, :]
    gap = d2[np.arange(len(sample)), labels[sample]] - d2.min(axis=1)
    tol = assign_tolerance(X[sample], C, precision)
    worst = float(np.max(gap / tol)) if len(sample) else 0.0
    check(f"kmeans_assign {precision}: chosen centre within the rounding bound of the nearest",
          bool(np.all(gap <= tol)), f"{int(np.sum(gap > tol))} of {len(sample)} rows over; max gap/bound {worst:.3f}")


@guarded("kmeans")
def bench_kmeans(n, d, k, rates, gpu_ok, offset=0.0, anchors=True):
    case = f"n={n:,} d={d} k={k}" + (f", uncentred (+{offset:g})" if offset else "")
    X = D.blobs(n, d, seed=0)
    if offset:
        X += np.float32(offset)
    C = D.init_centers(X, k, seed=1)
    sample = np.sort(np.random.default_rng(2).choice(n, min(n, 20_000), replace=False))
    flops = 2.0 * n * k * d
    have_torch = torch is not None and torch.cuda.is_available()
    anchor_t = None
    ref_labels = None
    if have_torch:
        torch.backends.cuda.matmul.allow_tf32 = False
        Xt = torch.as_tensor(X, device="cuda")
        Ct = torch.as_tensor(C, device="cuda")
        cn = (Ct * Ct).sum(1)

        def mm_argmin():
            return torch.argmin(cn[None, :] - 2.0 * (Xt @ Ct.T), dim=1)

        anchor_t, lab_t = timed(mm_argmin)
        ref_labels = lab_t.cpu().numpy()
        if anchors:
            row("kmeans_assign", case, "torch matmul+argmin fp32", anchor_t,
                f"{flops / anchor_t / 1e12:.1f} TFLOP/s", base=True)
            t, _ = timed(lambda: torch.argmin(torch.cdist(Xt, Ct), dim=1), repeats=3)
            row("kmeans_assign", case, "torch cdist+argmin fp32", t, f"x{anchor_t / t:.2f} vs matmul anchor")
    if anchors and faiss is not None and hasattr(faiss, "StandardGpuResources"):
        res = faiss.StandardGpuResources()
        index = faiss.GpuIndexFlatL2(res, d)
        index.add(C)
        t, _ = timed(lambda: index.search(X, 1), repeats=3)
        row("kmeans_assign", case, "faiss-gpu IndexFlatL2 (host in)", t, "")
    if gpu_ok:
        for prec in ("fp32", "tf32", "bf16"):
            src = Xt if have_torch else X
            t, (lab, sq) = timed(lambda: ops.kmeans_assign(src, Ct if have_torch else C, device="cuda",
                                                         precision=prec))
            lab = lab.cpu().numpy() if have_torch else lab
            rate = flops / t
            gemm = rates.get(prec)
            note = f"{rate / 1e12:.1f} TFLOP/s" + (f" = {100 * rate / gemm:.0f}% of {prec} GEMM" if gemm else "")
            if anchor_t:
                note += f"; x{anchor_t / t:.2f} vs anchor"
            if ref_labels is not None:
                note += f"; labels = torch fp32 on {100 * float(np.mean(lab == ref_labels)):.2f}%"
            row("kmeans_assign", case, f"cohortrec cuda {prec} (device in)", t, note)
            check_assignment(prec, X, C, lab, sample)
        if not anchors:
            return
        t, _ = timed(lambda: ops.kmeans_assign(X, C, device="cuda"), repeats=3)
        row("kmeans_assign", case, "cohortrec cuda fp32 (host in)", t,
            f"x{anchor_t / t:.2f} vs anchor" if anchor_t else "")
    t, (lab_cpu, _) = timed(lambda: ops.kmeans_assign(X, C, device="cpu"), warmup=0, repeats=1)
    row("kmeans_assign", case, f"cohortrec cpu ({cohortrec.n_threads_default()} threads)", t,
        f"x{anchor_t / t:.2f} vs anchor" if anchor_t else "")

    # update step, with the labels of the assignment
    labels = lab_cpu
    if have_torch:
        Lt = torch.as_tensor(labels, device="cuda")

        def index_add():
            return torch.zeros(k, d, device="cuda").index_add_(0, Lt, Xt), torch.bincount(Lt, minlength=k)

        upd_anchor, (s_ref, _) = timed(index_add)
        row("kmeans_update", case, "torch index_add_ (atomics)", upd_anchor, "not deterministic", base=True)
    else:
        upd_anchor = None
    if not anchors:
        return
    if gpu_ok:
        src = (Xt, Lt) if have_torch else (X, labels)
        t, (sums, counts) = timed(lambda: ops.kmeans_update(src[0], src[1], k, device="cuda"))
        row("kmeans_update", case, "cohortrec cuda (device in)", t,
            f"deterministic; x{upd_anchor / t:.2f} vs anchor" if upd_anchor else "deterministic")
        again = ops.kmeans_update(src[0], src[1], k, device="cuda")
        same = bool(torch.equal(again[0], sums)) if have_torch else np.array_equal(again[0], sums)
        check("kmeans_update bit-identical on repeat", same)
        cpu_sums, _ = ops.kmeans_update(X, labels, k, device="cpu")
        got = sums.cpu().numpy() if have_torch else sums
        err = np.max(np.abs(got - cpu_sums) / (np.abs(cpu_sums) + 1e-3))
        check("kmeans_update vs cpu", err < 1e-5, f"max rel err {err:.2e}")
    t, _ = timed(lambda: ops.kmeans_update(X, labels, k, device="cpu"), warmup=0, repeats=1)
    row("kmeans_update", case, "cohortrec cpu", t, "")


# ---------------------------------------------------------------- cosine_topk
def _same_csr(a, b):
    return (a.shape == b.shape and np.array_equal(np.diff(a.indptr), np.diff(b.indptr))
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


@guarded("cosine_topk")
def bench_cosine(n_users, n_items, mean_nnz, zipf, offset, k, gpu_ok):
    A = D.interactions(n_users, n_items, mean_nnz=mean_nnz, zipf_exponent=zipf, zipf_offset=offset, seed=0)
    case = f"{n_users:,}x{n_items:,} nnz={A.nnz:,} k={k}"
    anchor_t = None
    if cupy is not None:
        An = csp.csr_matrix(D.l2_normalize_rows(A))
        batch = max(1, min(4096, int(6e8 // max(n_users, 1))))

        def spmm_topk():
            out = []
            for b0 in range(0, n_users, batch):
                b1 = min(n_users, b0 + batch)
                S = An @ cupy.ascontiguousarray(An[b0:b1].toarray().T)  # (n_users x batch), cuSPARSE SpMM
                S[cupy.arange(b0, b1), cupy.arange(b1 - b0)] = -cupy.inf  # no self
                if torch is not None:
                    v, i = torch.topk(torch.as_tensor(S, device="cuda"), k, dim=0)
                    out.append(i)
                else:
                    out.append(cupy.argpartition(-S, k, axis=0)[:k])
            return out

        anchor_t, _ = timed(spmm_topk, repeats=3, budget=20)
        row("cosine_topk", case, "cupyx SpMM + top-k (dense batches)", anchor_t, "anchor", base=True)
    t_cpu, cpu_res = timed(lambda: ops.cosine_topk(A, k=k, device="cpu"), warmup=0, repeats=1)
    if gpu_ok:
        t, res = timed(lambda: ops.cosine_topk(A, k=k, device="cuda"), repeats=3, budget=20)
        row("cosine_topk", case, "cohortrec cuda (host in/out)", t,
            f"x{anchor_t / t:.2f} vs anchor" if anchor_t else "")
        check("cosine_topk cuda == cpu (bit-identical)", _same_csr(res, cpu_res))
        if cupy is not None:
            Ad = csp.csr_matrix(A)
            t, resd = timed(lambda: ops.cosine_topk(Ad, k=k), repeats=3, budget=20)
            row("cosine_topk", case, "cohortrec cuda (cupyx in/out)", t,
                f"x{anchor_t / t:.2f} vs anchor" if anchor_t else "")
            check("cosine_topk cupyx == cpu", _same_csr(resd.get(), cpu_res))
    row("cosine_topk", case, f"cohortrec cpu ({cohortrec.n_threads_default()} threads)", t_cpu,
        f"x{anchor_t / t_cpu:.2f} vs anchor" if anchor_t else "")


# ---------------------------------------------------------------- topk_scores
@guarded("topk_scores")
def bench_topk(n_users, n_items, mean_nnz, zipf, offset, n, gpu_ok):
    R = D.interactions(n_users, n_items, mean_nnz=mean_nnz, zipf_exponent=zipf, zipf_offset=offset, seed=0)
    W = D.user_neighbours(n_users, 50, kind="random", seed=1)
    case = f"W {n_users:,}x50nn, R nnz={R.nnz:,}, n={n}, exclude=R"
    anchor_t = None
    if cupy is not None and torch is not None:
        Wd, Rd = csp.csr_matrix(W), csp.csr_matrix(R)
        batch = max(1, min(8192, int(5e8 // max(n_items, 1))))

        def spgemm_topk():
            out = []
            for b0 in range(0, n_users, batch):
                b1 = min(n_users, b0 + batch)
                S = (Wd[b0:b1] @ Rd).toarray()  # cuSPARSE SpGEMM, then dense
                E = Rd[b0:b1].tocoo()
                S[E.row, E.col] = -cupy.inf
                v, i = torch.topk(torch.as_tensor(S, device="cuda"), n, dim=1)
                out.append(i)
            return out

        anchor_t, _ = timed(spgemm_topk, repeats=3, budget=20)
        row("topk_scores", case, "cupyx SpGEMM + mask + top-k", anchor_t, "anchor (unreached items score 0)",
            base=True)
    t_cpu, (ci, cs) = timed(lambda: ops.topk_scores(W, R, n=n, exclude=R, device="cpu"), warmup=0, repeats=1)
    if gpu_ok:
        t, (gi, gs) = timed(lambda: ops.topk_scores(W, R, n=n, exclude=R, device="cuda"), repeats=3, budget=20)
        row("topk_scores", case, "cohortrec cuda (host in/out)", t,
            f"x{anchor_t / t:.2f} vs anchor" if anchor_t else "")
        check("topk_scores cuda == cpu (bit-identical)", np.array_equal(gi, ci) and np.array_equal(gs, cs))
        if cupy is not None:
            Wd, Rd = csp.csr_matrix(W), csp.csr_matrix(R)
            t, (di, ds) = timed(lambda: ops.topk_scores(Wd, Rd, n=n, exclude=Rd), repeats=3, budget=20)
            row("topk_scores", case, "cohortrec cuda (cupyx in)", t,
                f"x{anchor_t / t:.2f} vs anchor" if anchor_t else "")
            check("topk_scores cupyx == cpu", np.array_equal(di.get(), ci) and np.array_equal(ds.get(), cs))
    row("topk_scores", case, f"cohortrec cpu ({cohortrec.n_threads_default()} threads)", t_cpu,
        f"x{anchor_t / t_cpu:.2f} vs anchor" if anchor_t else "")


# ------------------------------------------------------------------- report
def card_name() -> str:
    try:
        from cohortrec import _cuda
        return _cuda.device_info(0)["name"]
    except Exception:  # noqa: BLE001
        if torch is not None and torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    return "no-gpu"


TABLE_HEAD = "| op | case | implementation | time | notes |\n|---|---|---|---:|---|"


def table_line(r) -> str:
    ms = "-" if r["ms"] is None else f"{r['ms']:.1f} ms"
    return f"| {r['op']} | {r['case']} | {r['impl']} | {ms} | {r['note']} |"


def table() -> str:
    return "\n".join([TABLE_HEAD] + [table_line(r) for r in ROWS])


def results_path(out: str, card: str) -> str:
    """<out>/gpu-<date>-<card>.md; -HHMMSS is added when that file exists (a second run the same day)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", card).strip("-").lower() or "gpu"
    now = datetime.datetime.now()
    path = os.path.join(out, f"gpu-{now:%Y-%m-%d}-{slug}.md")
    if os.path.exists(path):
        path = os.path.join(out, f"gpu-{now:%Y-%m-%d}-{slug}-{now:%H%M%S}.md")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick",
                      help="small sizes, about a minute on an H100 (the default)")
    size.add_argument("--full", dest="size", action="store_const", const="full",
                      help="the sizes of the targets (1M x 256, k=1024; 100k users), several minutes")
    size.add_argument("--tiny", dest="size", action="store_const", const="tiny",
                      help="seconds even on a CPU (check.sh --dry-run)")
    ap.set_defaults(size="quick")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "results"),
                    help="folder for the results file ('-' = do not write)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds; sections not started by 80%% of it are skipped (and listed)")
    ap.add_argument("--cpu-stand-in", action="store_true",
                    help="use the CPU stand-in of cohortrec._cuda (tests/_cuda_standin.py): no GPU needed")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    if args.budget:
        # a section is only started with at least a fifth of the budget left
        DEADLINE[0] = t_start + 0.8 * args.budget
    card = card_name()
    versions = (f"torch {getattr(torch, '__version__', '-')}, cupy {getattr(cupy, '__version__', '-')}, "
                f"faiss {getattr(faiss, '__version__', '-')}")
    log(f"card: {card}; cohortrec devices: {cohortrec.devices()}; {versions}")
    gpu_ok = "cuda" in cohortrec.devices() and gpu_ops_reachable()
    path = None
    if args.out != "-":
        os.makedirs(args.out, exist_ok=True)
        path = results_path(args.out, card)
        REPORT[0] = open(path, "w")  # noqa: SIM115 - kept open: rows are appended as they finish
        log(f"writing {path} (row by row)")
        _emit(f"# cohortrec GPU benchmark: {card}\n\n"
              f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
              f"{os.cpu_count()} CPUs, python {platform.python_version()}, {versions}; {args.size} run"
              f"{' on the CPU stand-in (no GPU)' if args.cpu_stand_in else ''}. "
              f"Command: `{' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])}`. "
              "Times are medians of up to 5 runs (GPU synchronised); 'host in' includes the copies to and "
              "from the device. Rows are written as they finish.\n\n" + TABLE_HEAD)
    if args.size == "tiny":
        rates = bench_gemm(512) or {}
        bench_kmeans(3_000, 16, 8, rates, gpu_ok)
        bench_kmeans(3_000, 16, 8, rates, gpu_ok, offset=50.0, anchors=False)
        bench_cosine(2_000, 1_500, 10, 0.7, 100.0, 10, gpu_ok)
        bench_topk(2_000, 1_500, 10, 0.7, 100.0, 5, gpu_ok)
    elif args.size == "quick":
        rates = bench_gemm(4096) or {}
        bench_kmeans(200_000, 64, 256, rates, gpu_ok)
        bench_kmeans(200_000, 64, 256, rates, gpu_ok, offset=50.0, anchors=False)
        bench_cosine(30_000, 30_000, 20, 0.7, 100.0, 50, gpu_ok)
        bench_topk(30_000, 30_000, 20, 0.7, 100.0, 10, gpu_ok)
    else:
        rates = bench_gemm(8192) or {}
        bench_kmeans(1_000_000, 256, 1024, rates, gpu_ok)
        bench_kmeans(1_000_000, 256, 1024, rates, gpu_ok, offset=50.0, anchors=False)
        bench_kmeans(2_000_000, 32, 64, rates, gpu_ok)
        bench_cosine(100_000, 50_000, 20, 0.7, 100.0, 50, gpu_ok)
        bench_topk(100_000, 50_000, 20, 0.7, 100.0, 10, gpu_ok)
    elapsed = time.perf_counter() - t_start

    tail = f"\n\nRun time {elapsed:.0f} s. Checks: " + (
        "all passed." if not FAILURES else "FAILED:\n" + "\n".join(f"- {f}" for f in FAILURES))
    if SKIPPED:
        tail += "\n\nSkipped (out of time):\n" + "\n".join(f"- {s_}" for s_ in SKIPPED)
    print("\n" + table() + tail, flush=True)
    if REPORT[0] is not None:
        _emit(tail)
        REPORT[0].close()
        REPORT[0] = None
        print(f"wrote {path}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
