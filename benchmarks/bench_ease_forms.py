"""EASE in its primal and dual forms on real data: fit, memory, one request, a batch, and what "auto" picks.

The primal form inverts the items x items Gram matrix and scores a user with
``|x_u|`` rows of ``B``; the dual form inverts the users x users matrix
``I + X Lambda^-1 X^T`` (Woodbury) and scores a user in
O(nnz(X) + n_users^2) whatever ``|x_u|`` (``EASE(solver=...)``,
:func:`cohortrec.recommenders._ease.prefers_dual`). For each data set and
``min_item_users`` both forms are fitted on the same binary matrix and
recorded side by side: fit seconds and the peak memory the fit adds, one
user's top-10 as implicit calls it (p50 / p99 over every user, warm, one
thread), every user's top-10 in one batch call, and the share of users
whose top-10 is the same in both forms.

    python benchmarks/bench_ease_forms.py                       # ml-latest-small and Last.fm
    python benchmarks/bench_ease_forms.py --datasets ml --min-item-users 1

Writes ``benchmarks/results/ease-forms-<date>.md`` (``--out -`` prints only).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # the fit uses BLAS; requests run one per thread

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("COHORTREC_DATA", "/work/shared/data"))


def one_form(X, solver: str, min_item_users: int, l2: float) -> dict:
    from _harness import PeakRSS  # noqa: PLC0415
    from cohortrec.recommenders import EASE  # noqa: PLC0415

    with PeakRSS() as mem:
        t = time.perf_counter()
        model = EASE(l2=l2, min_item_users=min_item_users, solver=solver).fit(X)
        fit_s = time.perf_counter() - t
    rows = [X[u] for u in range(X.shape[0])]
    for u in range(min(50, X.shape[0])):  # warm: the serving arrays are built on the first call
        model.recommend(u, rows[u], N=10)
    lat = []
    for _ in range(2):
        for u in range(X.shape[0]):
            t = time.perf_counter()
            model.recommend(u, rows[u], N=10)
            lat.append(time.perf_counter() - t)
    lat_ms = np.asarray(lat) * 1e3
    t = time.perf_counter()
    ids, _ = model.recommend(np.arange(X.shape[0]), X, N=10)
    batch_s = time.perf_counter() - t
    return {"fit_s": fit_s, "fit_mib": mem.mib, "p50": float(np.percentile(lat_ms, 50)),
            "p99": float(np.percentile(lat_ms, 99)), "batch_s": batch_s, "ids": ids, "kept": len(model.items_),
            "dual": model.item_weights_ is None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="ml,lastfm")
    ap.add_argument("--min-item-users", default="1,3", help="comma-separated values of EASE's min_item_users")
    ap.add_argument("--l2", type=float, default=200.0)
    ap.add_argument("--out", default=None, help="results file ('-': print only)")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(HERE))
    import _machine as mi  # noqa: PLC0415
    from bench_recommenders import load  # noqa: PLC0415
    from cohortrec.recommenders._ease import prefers_dual  # noqa: PLC0415

    started = time.perf_counter()
    rows = []
    for name in args.datasets.split(","):
        X, label = load(name, DATA)
        X.data[:] = 1.0
        for mi_users in (int(v) for v in args.min_item_users.split(",")):
            res = {s: one_form(X, s, mi_users, args.l2) for s in ("primal", "dual")}
            kept = res["primal"]["kept"]
            Xk = X[:, np.flatnonzero(np.diff(X.tocsc().indptr) >= mi_users)]
            auto = "dual" if prefers_dual(Xk.shape[0], Xk.shape[1], Xk.nnz) else "primal"
            same = float(np.mean([(a == b).all() for a, b in zip(res["primal"]["ids"], res["dual"]["ids"])]))
            rows.append((label, X.shape, mi_users, kept, auto, res, same))
            for s in ("primal", "dual"):
                r = res[s]
                print(f"{label} min_item_users={mi_users} ({kept} items kept) {s}: fit {r['fit_s']:.2f} s "
                      f"(+{r['fit_mib'] or 0:.0f} MiB), one user p50 {r['p50']:.3f} / p99 {r['p99']:.3f} ms, "
                      f"batch {r['batch_s']:.2f} s", flush=True)
    wall = time.perf_counter() - started
    cmd = "python benchmarks/bench_ease_forms.py " + " ".join(argv if argv is not None else sys.argv[1:])
    info = mi.machine_info()
    L = [f"# EASE: primal and dual forms ({_dt.date.today()})", "", f"Command: `{cmd.strip()}`", "",
         f"Wall time {wall / 60:.1f} min. Machine: {info.get('cpu model', '?')}, {info.get('cpus (logical)', '?')} "
         f"logical CPUs, git {mi.git_revision()}; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']} for the "
         f"fit, one thread per request. EASE(l2={args.l2:g}); binary positives, users with >= 5 "
         "(as `bench_recommenders.py`). `fit MiB`: the peak resident memory the fit adds. One user: "
         "`recommend(u, X[u], N=10)` over every user, twice, warm. `batch`: every user's top-10 in one call. "
         "`same top-10`: share of users whose ten ids are equal in both forms (scores agree to float32 rounding; "
         "near-ties may swap). `auto`: what `solver=\"auto\"` picks (`prefers_dual`).", "",
         "| data | min_item_users | items kept | form | fit s | fit MiB | one user p50 ms | one user p99 ms "
         "| batch s | auto | same top-10 |",
         "|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|"]
    for label, shape, mi_users, kept, auto, res, same in rows:
        for s in ("primal", "dual"):
            r = res[s]
            mib = "?" if r["fit_mib"] is None else f"{r['fit_mib']:,.0f}"
            L.append(f"| {label}, {shape[0]:,} users | {mi_users} | {kept:,} | {s} | {r['fit_s']:.2f} | {mib} | "
                     f"{r['p50']:.3f} | {r['p99']:.3f} | {r['batch_s']:.2f} | {'**picked**' if s == auto else ''} "
                     f"| {same:.1%} |")
    text = "\n".join(L) + "\n"
    if args.out == "-":
        print(text)
        return 0
    out = Path(args.out) if args.out else HERE / "results" / f"ease-forms-{_dt.date.today()}.md"
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
