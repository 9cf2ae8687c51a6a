"""Full K-means fits: cohortrec.KMeans against scikit-learn's KMeans.

Both start from the same initial centres (k random points of the data) and
run to convergence with the same ``tol`` and ``max_iter``; the script checks
that they end at the same inertia (relative difference <= 1e-4) and reports
the wall time of each fit and the speed-up. Runs alternate between the
libraries so that load changes on a shared machine hit both.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_kmeans_fit.py
    python benchmarks/bench_kmeans_fit.py --cases 200000x32x64 --repeats 1 --out -

Writes ``benchmarks/results/kmeans_fit-<date>.md`` (machine, versions,
command, table) unless ``--out -``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H


def _parse_case(s: str) -> tuple[bool, int, int, int]:
    """"n x d x k" (dense blobs) or "csr" + "n x d x k" (sparse interactions)."""
    s = s.strip().lower()
    sparse = s.startswith("csr")
    n, d, k = (int(v) for v in s[3 if sparse else 0:].split("x"))
    return sparse, n, d, k


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="1000000x32x256,200000x128x1024",
                    help="comma-separated n x d x k, dense Gaussian blobs; prefix csr for sparse "
                         "L2-normalised interaction rows, e.g. csr100000x20000x64 (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--repeats", type=int, default=2, help="fits per library per case (alternating)")
    ap.add_argument("--algorithms", default="auto", help="cohortrec algorithms, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kmeanspp", action="store_true",
                    help="both libraries seed with their own k-means++ (random_state=seed), timed inside fit, "
                         "instead of sharing fixed initial centres")
    ap.add_argument("--out", default=None, help="result file; '-' = print only")
    args = ap.parse_args(argv)
    H.prepare_env(args.threads)

    import numpy as np
    import sklearn
    from sklearn.cluster import KMeans as SKKMeans
    from threadpoolctl import threadpool_info, threadpool_limits

    import cohortrec
    import datasets as D
    from _machine import cpu_model, git_revision
    from cohortrec.cluster import KMeans

    lines: list[str] = []

    def log(msg: str = "") -> None:
        print(msg, flush=True)
        lines.append(msg)

    cpu = cpu_model()
    log(f"# K-means full fit: cohortrec.KMeans vs scikit-learn KMeans ({_dt.date.today()})")
    log()
    log(f"- command: `python {' '.join([os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:]))}`")
    log(f"- machine: {cpu}, {os.cpu_count()} logical CPUs, threads used: {args.threads}")
    log(f"- python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
        f"cohortrec {cohortrec.__version__} (git {git_revision()}, isa {cohortrec._core.isa()})")
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '')})" for i in threadpool_info()]
    log(f"- thread pools: {', '.join(blas)}")
    log(f"- data: `benchmarks/datasets.blobs(n, d)` (100 Gaussian blobs, float32); init = k random points "
        f"(`datasets.init_centers`), the same array for both; tol={args.tol}, max_iter={args.max_iter}, n_init=1; "
        "CSR cases: `sklearn.preprocessing.normalize(datasets.interactions(n, d))` (user x item rows, "
        "~85 items per user, Zipf popularity, float32), init = k random rows"
        + ("; **--kmeanspp: each library seeds with its own k-means++ (random_state=seed), inside the timed fit; "
           "the inertia check then compares two different local optima**" if args.kmeanspp else ""))
    log("- scikit-learn: `KMeans(k, init=C0, n_init=1, algorithm='lloyd')` under threadpool_limits(threads); "
        "cohortrec: `KMeans(k, init=C0, n_init=1, algorithm=A, n_threads=threads)`")
    log("- times are wall-clock seconds of `fit` (best of the repeats, runs alternating between libraries); "
        "load average is /proc/loadavg before each case (other jobs share this machine); peak memory is the "
        "process's resident-set high-water mark during the fit above its resident set before it (largest of "
        "the repeats; `_harness.PeakRSS`)")
    log()
    log("| case | library | fit s (best) | all runs s | iterations | inertia | rel. diff vs sklearn | speed-up "
        "| peak memory |")
    log("|---|---|---:|---|---:|---:|---:|---:|---:|")
    ok = True
    algos = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    for spec in args.cases.split(","):
        sparse, n, d, k = _parse_case(spec)
        if sparse:  # L2-normalised user x item rows (Zipf popularity, ~85 items per user), CSR float32
            from sklearn.preprocessing import normalize

            X = normalize(D.interactions(n, d, seed=args.seed)).tocsr()
            C0 = X[np.random.default_rng(args.seed + 1).choice(n, k, replace=False)].toarray()
        else:
            X = D.blobs(n, d, seed=args.seed)
            C0 = D.init_centers(X, k, seed=args.seed + 1)
        try:
            load = open("/proc/loadavg").read().split()[:3]
        except OSError:
            load = ["?"]
        times: dict[str, list[float]] = {"sklearn": [], **{f"cohortrec[{a}]": [] for a in algos}}
        peak: dict[str, float] = {name: 0.0 for name in times}
        res: dict[str, tuple[float, int]] = {}
        for rep in range(args.repeats):
            for a in algos:
                km = KMeans(k, init="k-means++" if args.kmeanspp else C0, n_init=1, max_iter=args.max_iter,
                            tol=args.tol, algorithm=a, n_threads=args.threads, random_state=args.seed)
                with H.PeakRSS() as mem:
                    t = time.perf_counter()
                    km.fit(X)
                    times[f"cohortrec[{a}]"].append(time.perf_counter() - t)
                peak[f"cohortrec[{a}]"] = max(peak[f"cohortrec[{a}]"], mem.mib or 0.0)
                res[f"cohortrec[{a}]"] = (km.inertia_, km.n_iter_)
                print(f"  {spec} cohortrec[{a}] run {rep}: {times[f'cohortrec[{a}]'][-1]:.2f} s, "
                      f"{km.n_iter_} it, recomputed mean {np.mean(km.recomputed_):.3f}", flush=True)
            with threadpool_limits(limits=args.threads):
                sk = SKKMeans(k, init="k-means++" if args.kmeanspp else C0, n_init=1, max_iter=args.max_iter,
                              tol=args.tol, algorithm="lloyd", random_state=args.seed)
                with H.PeakRSS() as mem:
                    t = time.perf_counter()
                    sk.fit(X)
                    times["sklearn"].append(time.perf_counter() - t)
                peak["sklearn"] = max(peak["sklearn"], mem.mib or 0.0)
            res["sklearn"] = (float(sk.inertia_), sk.n_iter_)
            print(f"  {spec} sklearn run {rep}: {times['sklearn'][-1]:.2f} s, {sk.n_iter_} it", flush=True)
        t_sk = min(times["sklearn"])
        for name in ["sklearn"] + [f"cohortrec[{a}]" for a in algos]:
            inertia, n_iter = res[name]
            rel = abs(inertia - res["sklearn"][0]) / res["sklearn"][0]
            same = rel <= 1e-4
            ok &= same
            best = min(times[name])
            log(f"| {n // 1000}k x {d}{' CSR' if sparse else ''}, k={k} (load {' '.join(load)}) | {name} | "
                f"{best:.2f} | {', '.join(f'{t:.2f}' for t in times[name])} | {n_iter} | {inertia:.6g} | "
                f"{rel:.1e}{'' if same else ' FAIL'} | {t_sk / best:.2f}x | {peak[name]:.0f} MiB |")
    log()
    log("Result: " + ("all inertias within 1e-4 of scikit-learn" if ok else "INERTIA MISMATCH"))
    out = args.out
    if out is None:
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           f"kmeans_fit-{_dt.date.today()}.md")
    if out != "-":
        H.write_text(out, "\n".join(lines) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
