"""Speed of evaluate + recommend for all users: cohortrec.evaluation vs implicit.evaluation.

Data: ``benchmarks/datasets.interactions(U, I, values="ones")`` (default 100k
users x 20k items, ~85 items per user, Zipf item popularity), split with a
20 % per-user random holdout. For each model the script times

* ``fit`` on the train matrix;
* ``cohortrec.evaluation.evaluate(model, train, test, k=(10, 20, 100))``:
  full ranking of every test user (train items excluded) in batches, then
  8 metrics at 3 cut-offs, split into the recommend part and the metrics
  part;
* ``implicit.evaluation.ranking_metrics_at_k(model, train, test, K=100)``
  (one cut-off, its 4 metrics), with ``num_threads`` 1 and ``--threads``
  (best reported).

Models: cohortrec ``ItemKNN(k=50)``, implicit ``CosineRecommender(K=50)``,
cohortrec ``Popularity`` and implicit ``AlternatingLeastSquares(64 factors,
15 iterations)``; both harnesses run every model (the call conventions are
the same). Before timing, the two harnesses' NDCG and MAP are compared on a
user subset (they must agree to 1e-9).

Usage (repository root)::

    python benchmarks/bench_evaluate.py            # 100k x 20k (~5 min on 2 cores)
    python benchmarks/bench_evaluate.py --quick    # 20k x 20k
    python benchmarks/bench_evaluate.py --only itemknn,popularity --no-implicit-eval --out -
                                                   # quick look at cohortrec's own models

The log line of every model also gives the CPU time (``time.process_time``,
all threads) of fit and evaluate next to the wall times.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _harness as H
import bench_recommenders as br
import datasets


def timed(fn, *args, **kwargs):
    """(fn(*args, **kwargs), wall seconds), after a garbage collection."""
    out, wall, _ = timed_cpu(fn, *args, **kwargs)
    return out, wall


def timed_cpu(fn, *args, **kwargs):
    """(fn(*args, **kwargs), wall seconds, CPU seconds of the process), after a garbage collection."""
    gc.collect()
    c = time.process_time()
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t, time.process_time() - c


MODEL_KEYS = ("itemknn", "cosine", "popularity", "als")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--mean-nnz", type=float, default=85.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="threads for implicit (fit and the second ranking_metrics_at_k run); "
                         "cohortrec uses all available cores")
    ap.add_argument("--quick", action="store_true", help="20k users")
    ap.add_argument("--skip-als", action="store_true")
    ap.add_argument("--only", default=None, metavar="NAMES",
                    help=f"comma-separated subset of the models to time: {', '.join(MODEL_KEYS)} "
                         "(the harness check still runs)")
    ap.add_argument("--no-implicit-eval", action="store_true",
                    help="do not time implicit's ranking_metrics_at_k (cohortrec's evaluate only)")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                    help="first wait up to this long for the 1-minute load average to drop below 0.5")
    ap.add_argument("--out", default=None, help="results file ('-' = none); default "
                    "benchmarks/results/evaluate-<date>.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.users = 20_000
    only = None
    if args.only:
        only = {k.strip() for k in args.only.split(",") if k.strip()}
        bad = only - set(MODEL_KEYS)
        if bad:
            ap.error(f"--only: unknown model(s) {', '.join(sorted(bad))}; choose from {', '.join(MODEL_KEYS)}")

    import implicit.evaluation as iev
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import CosineRecommender

    from cohortrec import evaluation as ev
    from cohortrec import recommenders as rec

    waited = 0.0
    while args.wait_idle > waited and os.getloadavg()[0] >= 0.5:
        time.sleep(10)
        waited += 10
    load_start = os.getloadavg()
    started = _dt.datetime.now().isoformat(timespec="seconds")
    command = "python " + " ".join(["benchmarks/bench_evaluate.py"] + (argv if argv is not None else sys.argv[1:]))
    log = lambda s: print(s, flush=True)
    t0 = time.perf_counter()
    X, t_data = timed(datasets.interactions, args.users, args.items, mean_nnz=args.mean_nnz,
                      values="ones", seed=args.seed)
    (train, test), t_split = timed(ev.random_holdout, X, 0.2, random_state=args.seed)
    n_eval = int((np.diff(test.indptr) > 0).sum())
    log(f"data {X.shape}, {X.nnz} nnz ({t_data:.1f}s); split train {train.nnz} / test {test.nnz} "
        f"({t_split:.1f}s); {n_eval} users evaluated")

    models = {
        "cohortrec ItemKNN(k=50)": lambda: rec.ItemKNN(k=50),
        "implicit CosineRecommender(K=50)": lambda: br.ImplicitModel(
            lambda: CosineRecommender(K=50, num_threads=args.threads)),
        "cohortrec Popularity": lambda: rec.Popularity(),
    }
    if not args.skip_als:
        models["implicit ALS(factors=64, iterations=15)"] = lambda: br.ImplicitModel(lambda: AlternatingLeastSquares(
            factors=64, iterations=15, random_state=args.seed, num_threads=args.threads))
    keys = dict(zip(["cohortrec ItemKNN(k=50)", "implicit CosineRecommender(K=50)", "cohortrec Popularity",
                     "implicit ALS(factors=64, iterations=15)"], MODEL_KEYS))
    timed_models = {n: f for n, f in models.items() if only is None or keys[n] in only}

    # ---- correctness: the two harnesses agree (subset of users, K=10 and 100)
    sub = np.arange(min(3000, X.shape[0]))
    m = models["implicit CosineRecommender(K=50)"]().fit(train)
    checks = []
    for K in (10, 100):
        ours = ev.evaluate(m, train[sub], test[sub], k=K).set_index("metric")["value"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = iev.ranking_metrics_at_k(m, train[sub], test[sub], K=K, show_progress=False)
        for name in ("ndcg", "map"):
            d = abs(ours[name] - theirs[name])
            checks.append((K, name, ours[name], theirs[name], d))
            if d > 1e-9:
                log(f"CHECK FAILED: {name}@{K} cohortrec {ours[name]} vs implicit {theirs[name]}")
    log("harness check: " + ", ".join(f"{n}@{K} |diff|={d:.1e}" for K, n, _, _, d in checks))
    # warm-up of every code path on a few users
    for make in timed_models.values():
        w = make().fit(train[:2000])
        ev.evaluate(w, train[:2000], test[:2000], k=(10, 20, 100))

    rows = []
    for name, make in timed_models.items():
        model = make()
        _, fit_s, fit_cpu = timed_cpu(model.fit, train)
        tim: dict[str, float] = {}
        table, ours_s, ours_cpu = timed_cpu(ev.evaluate, model, train, test, k=(10, 20, 100), timings=tim)
        vals = table.set_index(["metric", "k"])["value"]
        theirs = {}
        for nt in ([] if args.no_implicit_eval else sorted({1, args.threads})):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res, s = timed(iev.ranking_metrics_at_k, model, train, test, K=100,
                               show_progress=False, num_threads=nt)
            theirs[nt] = (res, s)
        if theirs:
            best_nt = min(theirs, key=lambda t: theirs[t][1])
            res, imp_s = theirs[best_nt]
        else:  # not timed: placeholders
            best_nt, res, imp_s = 0, {"ndcg": float("nan"), "map": float("nan")}, float("nan")
        rows.append({"name": name, "fit": fit_s, "fit_cpu": fit_cpu, "ours_cpu": ours_cpu, "ours": ours_s,
                     "rec": tim["recommend_s"], "met": tim["metrics_s"],
                     "imp": imp_s, "imp_nt": best_nt, "imp_all": {t: v[1] for t, v in theirs.items()},
                     "ndcg_ours": vals[("ndcg", 100)], "ndcg_imp": res["ndcg"], "map_ours": vals[("map", 100)],
                     "map_imp": res["map"], "ndcg10": vals[("ndcg", 10)]})
        log(f"{name}: fit {fit_s:.2f}s (CPU {fit_cpu:.2f}s) | cohortrec evaluate {ours_s:.2f}s "
            f"(CPU {ours_cpu:.2f}s; recommend {tim['recommend_s']:.2f}"
            f" + metrics {tim['metrics_s']:.2f}) | implicit ranking_metrics_at_k {imp_s:.2f}s "
            f"(num_threads={best_nt}; all: {', '.join(f'{t}: {v[1]:.2f}s' for t, v in theirs.items())}) | "
            f"NDCG@100 {vals[('ndcg', 100)]:.5f} vs {res['ndcg']:.5f}")
        del model
        gc.collect()
    wall = time.perf_counter() - t0
    load_end = os.getloadavg()

    L = [f"# Evaluation speed: cohortrec.evaluation vs implicit.evaluation ({started[:10]})", "",
         "Command (repository root):", "", "```sh", command, "```", "",
         (f"Started {started}, wall time {wall / 60:.1f} min. Load average (1, 5, 15 min) at the start "
         f"{', '.join(f'{x:.2f}' for x in load_start)} (after waiting {waited:.0f}s), at the end "
         f"{', '.join(f'{x:.2f}' for x in load_end)}: on this {os.cpu_count()}-CPU machine anything well above "
         "0 means other processes competed for the CPUs and the timings are inflated."), "",
         "## Machine", "", "| | |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in br.machine_info().items()]
    L += ["", "## Versions", "", "| | |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in br.versions().items()]
    L += ["", "## Setup", "",
          (f"* Data: `benchmarks/datasets.interactions({args.users}, {args.items}, mean_nnz={args.mean_nnz}, "
          f"values='ones', seed={args.seed})`: {X.shape[0]} users x {X.shape[1]} items, {X.nnz:,} interactions "
          "(Zipf item popularity)."),
          (f"* Split: `cohortrec.evaluation.random_holdout(X, 0.2)` ({t_split:.1f}s): train {train.nnz:,}, "
          f"test {test.nnz:,}; {n_eval:,} users with test items are evaluated."),
          ("* cohortrec: `evaluate(model, train, test, k=(10, 20, 100))` -- recommends the top 100 of every "
          "test user in batches of 4096 (full ranking, train items excluded) and computes precision, recall, "
          "recall_capped, NDCG, MAP, hit rate, coverage and mean popularity at the 3 cut-offs; "
          "cohortrec kernels use all cores."),
          ("* implicit: `ranking_metrics_at_k(model, train, test, K=100)` -- the same ranking, one cut-off, "
          "precision/MAP/NDCG/AUC; run with `num_threads=1` and "
          f"`num_threads={args.threads}`, the faster is reported."),
          ("* Each harness runs every model (implicit models with BLAS limited to 1 thread around their "
          "calls, as implicit asks). One timed run per cell after a warm-up on 2000 users."),
          "* Harness check before timing (3000 users, implicit CosineRecommender): "
          + "; ".join(f"{n}@{K}: {o:.6f} vs {t:.6f}" for K, n, o, t, _ in checks) + ".", "",
          "## Results", "",
          ("| model | fit s | cohortrec evaluate s (in model.recommend + rest) | implicit ranking_metrics_at_k s | "
          "implicit / cohortrec | cohortrec evaluate / fit | NDCG@100 cohortrec / implicit |"),
          "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        L.append(f"| {r['name']} | {r['fit']:.2f} | {r['ours']:.2f} ({r['rec']:.2f} + {r['met']:.2f}) | "
                 f"{r['imp']:.2f} (num_threads={r['imp_nt']}) | {r['imp'] / r['ours']:.2f}x | "
                 f"{r['ours'] / r['fit']:.2f} | {r['ndcg_ours']:.5f} / {r['ndcg_imp']:.5f} |")
    byname = {r["name"]: r for r in rows}
    a, b = byname.get("cohortrec ItemKNN(k=50)"), byname.get("implicit CosineRecommender(K=50)")
    if a and b:
        L += ["", (f"**End to end, same algorithm (item-kNN, 50 cosine neighbours):** cohortrec ItemKNN + "
              f"cohortrec evaluate {a['ours']:.2f}s (3 cut-offs, 8 metrics) vs implicit CosineRecommender + "
              f"implicit ranking_metrics_at_k {b['imp']:.2f}s (1 cut-off): {b['imp'] / a['ours']:.2f}x; "
              f"with fitting {a['fit'] + a['ours']:.2f}s vs {b['fit'] + b['imp']:.2f}s. The metric code's own "
              f"cost (slicing, hits, metrics; everything outside model.recommend) is "
              f"{min(r['met'] for r in rows):.2f}-{max(r['met'] for r in rows):.2f}s for "
              f"{n_eval:,} users.")]
    L += ["", "Notes:", "",
          ("* 'implicit / cohortrec' > 1 means cohortrec's evaluate (3 cut-offs, 8 metrics) is faster than "
          "implicit's (1 cut-off, 4 metrics) on the same model."),
          ("* The recommend part is the model's own `recommend` (native kernels for cohortrec models, "
          "implicit's code for implicit models); the metrics part is cohortrec's metric code "
          "(native kernels: per-user hits, DCG and AP sums with a per-thread item marker, item counts "
          "for coverage and popularity; no Python loop per user)."),
          "* NDCG@100 of the two harnesses agree up to the float32 rounding of tied scores.", ""]
    text = "\n".join(L) + "\n"
    print(text)
    if args.out != "-":
        H.write_text(args.out or str(HERE / "results" / f"evaluate-{started[:10]}.md"), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
