"""How much to trust the groups on real data (issue 15): stability across seeds and subsamples, holdout lifts.

For ml-latest-small (positives: ratings >= 4; categories: the genres) and Last.fm HetRec 2K (play counts;
categories: the three most used tags of each artist), the default ``GroupDiscovery`` is fitted with
``n_groups="auto"`` and with a fixed K (default 8), then :func:`cohortrec.trust.group_trust` measures, at the
chosen K:

* seed stability: ARI between refits with ``--seeds`` other seeds and the fitted labels (target: mean >= 0.9);
* resampling stability: ARI on the users in both, refits on ``--bootstrap`` random 80% subsamples of the users
  (without replacement), and per group the mean best Jaccard overlap over all refits (Hennig 2007);
* holdout: 20% of every user's interactions hidden, the same settings fitted on the rest, and each group's top-5
  categories / items by lift measured again on the hidden part (share still lifted, Spearman of lifts).

    python benchmarks/bench_group_trust.py            # -> benchmarks/results/group-trust-<date>.md and .json
    python benchmarks/bench_group_trust.py --k 12 --out -

Datasets are read from ``--data`` (default ``$COHORTREC_DATA`` or ``/work/shared/data``); a missing one is
skipped and said so.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

DEFAULT_DATA = os.environ.get("COHORTREC_DATA", "/work/shared/data")
TARGET_SEED_ARI = 0.9


def _movielens(folder: Path) -> Any:
    from cohortrec.datasets import load_movielens

    ds = load_movielens(folder)
    return ds.to_interactions().with_matrix(ds.positives(4.0))


def _lastfm(folder: Path) -> Any:
    from cohortrec.datasets import load_lastfm_hetrec

    return load_lastfm_hetrec(folder).to_interactions()  # categories: each artist's 3 most used tags


DATASETS = (("ml-latest-small", "ml-latest-small", _movielens,
             "ratings >= 4 as positives (binary); categories = genres"),
            ("lastfm-2k", "hetrec2011-lastfm-2k", _lastfm,
             "play counts as weights; categories = each artist's 3 most used tags"))


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if v != v else f"{v:.{digits}f}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--k", type=int, default=8, help="the fixed number of groups next to 'auto' (default 8)")
    ap.add_argument("--seeds", type=int, default=5, help="refits with other seeds (default 5)")
    ap.add_argument("--bootstrap", type=int, default=5, help="refits on 80%% subsamples of users (default 5)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fitted model and of group_trust")
    ap.add_argument("--out", default=None, help="Markdown file ('-': do not write; default "
                    "benchmarks/results/group-trust-<date>.md, and the .json beside it)")
    args = ap.parse_args(argv)

    from _machine import git_revision, library_versions, machine_info
    from cohortrec.discovery import GroupDiscovery
    from cohortrec.trust import group_trust

    started = _dt.datetime.now()
    load = " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "?"
    cmd = "python " + " ".join([os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:]))
    lines: list[str] = []

    def log(msg: str = "") -> None:
        print(msg, flush=True)
        lines.append(msg)

    versions = library_versions(("cohortrec", "numpy", "scipy", "sklearn", "pandas"))
    machine = machine_info()
    blas_env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")
                if k in os.environ}
    log(f"# How much to trust the groups: stability and holdout lifts ({started:%Y-%m-%d})")
    log()
    log(f"- command: `{cmd}`")
    log(f"- machine: {machine['cpu model']}, {machine['cpus (logical)']} logical CPUs, {machine['memory']}; "
        f"load average {load} at start (shared machine)")
    log(f"- versions: {', '.join(f'{k} {v}' for k, v in versions.items())}; python {machine['python']}")
    log(f"- environment: {', '.join(f'{k}={v}' for k, v in blas_env.items()) or 'no BLAS variables set'}")
    log(f"- method: default `GroupDiscovery(n_groups=K, random_state={args.seed})` (K = auto and {args.k}); "
        f"`group_trust(gd, n_seeds={args.seeds}, n_bootstrap={args.bootstrap}, holdout=0.2, top_n=5, "
        f"random_state={args.seed})`; target: mean seed-to-seed ARI >= {TARGET_SEED_ARI} at the chosen K")
    log()

    results: list[dict[str, Any]] = []
    summary_rows = []
    for name, sub, loader, how in DATASETS:
        folder = Path(args.data) / sub
        if not folder.is_dir():
            log(f"## {name}: skipped ({folder} not found)")
            log()
            continue
        X = loader(folder)
        for K in ("auto", args.k):
            t = time.perf_counter()
            gd = GroupDiscovery(n_groups=K, random_state=args.seed).fit(X)
            fit_s = time.perf_counter() - t
            trust = group_trust(gd, n_seeds=args.seeds, n_bootstrap=args.bootstrap, random_state=args.seed)
            s = trust.summary()
            met = s["seed_ari_mean"] is not None and s["seed_ari_mean"] >= TARGET_SEED_ARI
            labels = gd.profile(top_n=2, features=False)["label"]
            pg = trust.per_group.copy()
            pg.insert(2, "label", [str(labels.loc[g]) for g in pg["group"]])
            results.append({"dataset": name, "data": how, "n_users": int(X.n_users), "n_items": int(X.n_items),
                            "nnz": int(X.nnz), "groups_requested": str(K), "chosen_k": int(gd.n_groups_),
                            "fit_seconds": round(fit_s, 3), "target_seed_ari": TARGET_SEED_ARI,
                            "target_met": bool(met), "trust": trust.to_dict(), "labels": pg["label"].tolist()})
            summary_rows.append([name, str(K), gd.n_groups_, s["seed_ari_mean"], s["seed_ari_min"],
                                 s["bootstrap_ari_mean"], s["bootstrap_ari_min"], s["holdout_ari"],
                                 f"{s['n_solid']}/{s['n_shaky']}/{s['n_unstable']}", s["share_users_solid"],
                                 s["category_lift_holds"], s["item_lift_holds"], fit_s, s["seconds"],
                                 "met" if met else "not met"])
            log(f"## {name}, n_groups={K!r} -> K = {gd.n_groups_}")
            log()
            log(f"{X.n_users:,} users x {X.n_items:,} items, {X.nnz:,} interactions ({how}). Fit {fit_s:.1f} s; "
                f"group_trust {s['seconds']:.1f} s.")
            log()
            log(f"- seed ARI: {', '.join(f'{a:.3f}' for a in trust.seed_ari)} (mean {_fmt(s['seed_ari_mean'])}; "
                f"target >= {TARGET_SEED_ARI}: **{'met' if met else 'not met'}**)")
            log(f"- subsample ARI: {', '.join(f'{a:.3f}' for a in trust.bootstrap_ari)} "
                f"(mean {_fmt(s['bootstrap_ari_mean'])})")
            log(f"- fit on 80% of each user's interactions vs the fitted groups: ARI {_fmt(s['holdout_ari'])}")
            log()
            cols = ["group", "size", "label", "jaccard_stability", "jaccard_seed", "jaccard_bootstrap",
                    "category_lift_holds", "category_lift_spearman", "item_lift_holds", "item_lift_spearman",
                    "verdict"]
            log("| " + " | ".join(cols) + " |")
            log("|" + "|".join("---:" if c not in ("label", "verdict") else "---" for c in cols) + "|")
            for r in pg[cols].itertuples(index=False):
                log("| " + " | ".join(_fmt(v, 2) if isinstance(v, float) else str(v).replace("|", "/")
                                      for v in r) + " |")
            log()
    if summary_rows:
        head = ["dataset", "n_groups", "K", "seed ARI mean", "seed ARI min", "subsample ARI mean",
                "subsample ARI min", "holdout-fit ARI", "solid/shaky/unstable", "users in solid groups",
                "top-5 categories hold", "top-5 items hold", "fit s", "trust s", "seed ARI >= 0.9"]
        table = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 3) + "---|"]
        for r in summary_rows:
            table.append("| " + " | ".join(_fmt(v) for v in r) + " |")
        log("## Summary")
        log()
        for t in table:
            log(t)
        log()
        log("ARI: adjusted Rand index between two groupings of the same users (1 identical, 0 chance). "
            "Verdicts per group: solid = mean best Jaccard over all refits >= 0.75 and >= 60% of its top-5 "
            "categories and items still lifted on the holdout; unstable = Jaccard < 0.6 (Hennig 2007); shaky "
            "otherwise. Lift columns: share of a group's top-5 entries (by support x log lift on the 80% "
            "training part) whose lift is still > 1 on the 20% holdout, mean over groups.")
    elapsed = (_dt.datetime.now() - started).total_seconds()
    load_end = " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "?"
    log()
    log(f"Total wall time {elapsed:.0f} s; load average {load_end} at the end (timings are inflated when other "
        "jobs share the 2 CPUs; the stability figures do not depend on the load).")
    out = args.out
    if out is None:
        out = str(HERE / "results" / f"group-trust-{started:%Y-%m-%d}.md")
    if out != "-":
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")
        doc = {"date": started.isoformat(timespec="seconds"), "command": cmd, "machine": machine,
               "load_average_at_start": load, "load_average_at_end": load_end, "versions": versions,
               "git": git_revision(), "environment": blas_env, "target_seed_ari": TARGET_SEED_ARI, "results": results,
               "wall_seconds": round(elapsed, 1)}
        jpath = Path(out).with_suffix(".json")
        jpath.write_text(json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False), encoding="utf-8")
        print(f"wrote {out} and {jpath}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
