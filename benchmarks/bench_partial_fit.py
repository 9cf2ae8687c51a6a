"""How the cost of a partial fit against a refit grows with the model's size (issue 13).

``partial_fit_users`` of a fixed number of new users (1,000 by default) on synthetic bases of growing size
(``benchmarks/datasets.py``'s Zipf generator, 4,000 items, about 40 items a user), against a refit on base + new,
for UserKNN, ItemKNN, EASE and GroupRecommender: wall time of both, the speed-up, and the share of 300 random
users whose top-10 after the partial fit equals the refit's (GroupRecommender's refit re-clusters; its partial
fit keeps the groups). The same helper as ``bench_serve.py``'s section 4.

    python benchmarks/bench_partial_fit.py                       # -> benchmarks/results/partial-fit-<date>.md
    python benchmarks/bench_partial_fit.py --bases 5000,20000 --out -
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # as bench_serve: one BLAS thread, the kernels' own threads


def discovery_online(n_base: int, n_new: int, seed: int, label: str) -> list[str]:
    """GroupDiscovery.partial_fit of ``n_new`` users against a refit on all, on a planted world (8 groups).

    The world (``cohortrec.datasets.make_world``, 4,000 items) has ``n_base + n_new`` users; the model is fit
    on the first ``n_base`` and the rest are added. Quality columns: the ARI against the planted groups of
    every user after the partial fit, and after the refit.
    """
    import numpy as np  # noqa: PLC0415
    from sklearn.metrics import adjusted_rand_score  # noqa: PLC0415

    from cohortrec import GroupDiscovery  # noqa: PLC0415
    from cohortrec.datasets import make_world  # noqa: PLC0415

    world = make_world(n_users=n_base + n_new, n_items=4000, n_groups=8, seed=seed)
    X, y = world.interactions.matrix.tocsr(), np.asarray(world.labels)
    g = GroupDiscovery(n_groups=8, random_state=seed).fit(X[:n_base])
    t0 = time.perf_counter()
    g.partial_fit(X[n_base:])
    tp = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = GroupDiscovery(n_groups=8, random_state=seed).fit(X)
    tr = time.perf_counter() - t0
    row = [f"planted world {n_base:,} x 4,000", f"{n_new:,}", "GroupDiscovery.partial_fit", f"{tp:.3f}", f"{tr:.3f}",
           f"{tr / tp:.1f}x", f"ARI {adjusted_rand_score(y, np.asarray(g.labels_)):.3f} (planted)",
           f"refit ARI {adjusted_rand_score(y, np.asarray(ref.labels_)):.3f}"]
    print("  ", " | ".join(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bases", default="20000,50000,100000", help="users of the synthetic bases")
    ap.add_argument("--new-users", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="results file ('-': print only)")
    args = ap.parse_args(argv)

    import _machine as mi  # noqa: PLC0415
    from bench_serve import online, peak_rss_mib  # noqa: PLC0415
    from datasets import interactions as synthetic  # noqa: PLC0415

    started = time.perf_counter()
    load_start = os.getloadavg()
    rows = []
    for n in (int(v) for v in args.bases.split(",")):
        base = synthetic(n, 4000, mean_nnz=40, values="ones", seed=args.seed)
        rows += online(base, args.new_users, args.seed, f"{n:,} x 4,000")
        rows.append(discovery_online(n, args.new_users, args.seed, f"{n:,} x 4,000"))
    load_end = os.getloadavg()
    L = [f"# Partial fit against a refit as the base grows ({_dt.date.today()})", "",
         f"Command: `python benchmarks/bench_partial_fit.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
         "", f"{args.new_users:,} new users (base rows resampled, each keeping ~80% of its items) added with "
         "`partial_fit_users` to a model fitted on the base, against a refit on base + new. `same top-10`: share "
         "of 300 random users whose top-10 equals the refit's; `top-10 overlap`: mean share of the refit's top-10 "
         "it holds (GroupRecommender keeps its groups in the partial fit and re-clusters in the refit; "
         "`(items held)`: `update_items=False`, the item model as fitted on the base). "
         "`GroupDiscovery.partial_fit`: on a planted world of the same size (`make_world`, 8 groups), groups "
         "instead of top-10 lists: the ARI of all users' groups against the planted ones, after the partial fit "
         "and after the refit.", "",
         "| base | new users | model | partial fit s | refit s | speed-up | same top-10 | top-10 overlap |",
         "|---|---:|---|---:|---:|---:|---:|---:|"]
    L += ["| " + " | ".join(r) + " |" for r in rows]
    L += ["", f"Peak memory of this process (all bases, fits and refits): {peak_rss_mib():,.0f} MiB.",
          "", f"Wall time {time.perf_counter() - started:.0f} s; load average (1, 5, 15 min) "
          f"{load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} at the start, "
          f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} at the end (a shared machine).", "",
          "| | |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in mi.machine_info().items()]
    L += [f"| {k} | {v} |" for k, v in mi.library_versions(("cohortrec", "numpy", "scipy")).items()]
    text = "\n".join(L) + "\n"
    print(text)
    if args.out != "-":
        out = Path(args.out) if args.out else HERE / "results" / f"partial-fit-{_dt.date.today()}.md"
        out.write_text(text)
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
