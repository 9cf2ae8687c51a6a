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
K-means: labels agree with the fp32 anchor, distances within rounding).
Prints one table and writes it, with the card's name, to
``<out>/gpu-<card>-<date>.md``. ``--quick`` uses smaller sizes.
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


def log(msg: str) -> None:
    print(msg, flush=True)


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
    ROWS.append({"op": op, "case": case, "impl": impl, "ms": None if seconds is None else seconds * 1e3,
                 "base": base, "note": note})
    ms = "-" if seconds is None else f"{seconds * 1e3:.1f} ms"
    log(f"  {op:14s} {impl:34s} {ms:>12s}  {note}")


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
                FAILURES.append(f"{section}: skipped, out of time (--budget)")
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
@guarded("kmeans")
def bench_kmeans(n, d, k, rates, gpu_ok):
    case = f"n={n:,} d={d} k={k}"
    X = D.blobs(n, d, seed=0)
    C = D.init_centers(X, k, seed=1)
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
        row("kmeans_assign", case, "torch matmul+argmin fp32", anchor_t,
            f"{flops / anchor_t / 1e12:.1f} TFLOP/s", base=True)
        t, _ = timed(lambda: torch.argmin(torch.cdist(Xt, Ct), dim=1), repeats=3)
        row("kmeans_assign", case, "torch cdist+argmin fp32", t, f"x{anchor_t / t:.2f} vs matmul anchor")
    if faiss is not None and hasattr(faiss, "StandardGpuResources"):
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
            row("kmeans_assign", case, f"cohortrec cuda {prec} (device in)", t, note)
            if ref_labels is not None:
                agree = float(np.mean(lab == ref_labels))
                want = 0.999 if prec == "fp32" else (0.99 if prec == "tf32" else 0.95)
                check(f"kmeans_assign {prec} labels vs torch fp32", agree >= want, f"agreement {agree:.5f}")
                if prec == "fp32":
                    bad = np.flatnonzero(lab != ref_labels)[:200]
                    if bad.size:
                        Xb = X[bad].astype(np.float64)
                        d_ours = ((Xb - C[lab[bad]].astype(np.float64)) ** 2).sum(1)
                        d_ref = ((Xb - C[ref_labels[bad]].astype(np.float64)) ** 2).sum(1)
                        tol = 1e-5 * ((Xb ** 2).sum(1) + (C[lab[bad]].astype(np.float64) ** 2).sum(1))
                        check("kmeans_assign fp32 disagreements are near-ties", np.all(d_ours <= d_ref + tol),
                              f"{bad.size} checked")
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


def table() -> str:
    lines = ["| op | case | implementation | time | notes |", "|---|---|---|---:|---|"]
    for r in ROWS:
        ms = "-" if r["ms"] is None else f"{r['ms']:.1f} ms"
        lines.append(f"| {r['op']} | {r['case']} | {r['impl']} | {ms} | {r['note']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (~1 minute)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "results"),
                    help="folder for the results file ('-' = do not write)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds; sections not started by then are skipped (and reported)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    if args.budget:
        # a section is only started with at least a fifth of the budget left
        DEADLINE[0] = t_start + 0.8 * args.budget
    card = card_name()
    log(f"card: {card}; cohortrec devices: {cohortrec.devices()}; "
        f"torch {getattr(torch, '__version__', '-')}, cupy {getattr(cupy, '__version__', '-')}, "
        f"faiss {getattr(faiss, '__version__', '-')}")
    gpu_ok = "cuda" in cohortrec.devices() and gpu_ops_reachable()
    if args.quick:
        rates = bench_gemm(4096) or {}
        bench_kmeans(200_000, 64, 256, rates, gpu_ok)
        bench_cosine(30_000, 30_000, 20, 0.7, 100.0, 50, gpu_ok)
        bench_topk(30_000, 30_000, 20, 0.7, 100.0, 10, gpu_ok)
    else:
        rates = bench_gemm(8192) or {}
        bench_kmeans(1_000_000, 128, 1024, rates, gpu_ok)
        bench_kmeans(2_000_000, 32, 64, rates, gpu_ok)
        bench_cosine(100_000, 100_000, 20, 0.7, 100.0, 50, gpu_ok)
        bench_topk(100_000, 100_000, 20, 0.7, 100.0, 10, gpu_ok)
    elapsed = time.perf_counter() - t_start

    text = table()
    head = (f"# cohortrec GPU benchmark: {card}\n\n"
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
            f"{os.cpu_count()} CPUs, python {platform.python_version()}, "
            f"torch {getattr(torch, '__version__', '-')}, cupy {getattr(cupy, '__version__', '-')}, "
            f"{'quick' if args.quick else 'full'} run, {elapsed:.0f} s. Times are medians of up to 5 runs "
            "(GPU synchronised); 'host in' includes the copies to and from the device.\n\n")
    tail = "\n\nChecks: " + ("all passed." if not FAILURES else "FAILED:\n" + "\n".join(f"- {f}" for f in FAILURES))
    print("\n" + text + tail, flush=True)
    if args.out != "-":
        os.makedirs(args.out, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", card).strip("-").lower() or "gpu"
        path = os.path.join(args.out, f"gpu-{slug}-{datetime.datetime.now():%Y%m%d-%H%M}.md")
        with open(path, "w") as f:
            f.write(head + text + tail + "\n")
        print(f"wrote {path}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
