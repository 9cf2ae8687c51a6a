#!/usr/bin/env python
"""How much of each op's wall time is Python (checks, conversions) and how much the native kernel.

    python benchmarks/ops_overhead.py [--repeats 5] [--threads 2]

Runs ``cosine_topk``, ``kmeans_step`` and ``topk_scores`` of whichever
cohortrec this interpreter imports, on the ``compare.py --quick`` data, under
cProfile: the time inside the native ``_core`` call(s) is "native", the rest
of the op's call "Python". Best of ``--repeats`` calls for each. Meant for
comparing two builds on a loaded machine: the Python part is what a change
of validation costs, and the native part shows whether the kernels moved.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time

import _harness as H


def split(call, repeats):
    """(best wall, native seconds, Python seconds) of `call` over `repeats` runs (best of each)."""
    best = (float("inf"), 0.0, 0.0)
    for _ in range(repeats):
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(call)
        wall = time.perf_counter() - t0
        stats = pstats.Stats(prof).stats
        native = sum(tt for (file, _, name), (_, _, tt, _, _) in stats.items()
                     if file == "~" and "cohortrec._core" in name)
        if wall < best[0]:
            best = (wall, native, wall - native)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    H.prepare_env(args.threads)
    import cohortrec
    import datasets as D
    from cohortrec import ops

    T = args.threads
    X = D.interactions(20_000, 50_000, seed=args.seed, zipf_exponent=0.5)
    B = D.blobs(1_000_000, 32, seed=args.seed)
    C0 = D.init_centers(B, 64, seed=args.seed + 1)
    UI = D.interactions(20_000, 20_000, seed=args.seed + 10)
    W = D.user_neighbours(20_000, 50, kind="random", seed=args.seed + 11)
    calls = {
        "cosine_topk 20k x 50k (Zipf 0.5), k=50": lambda: ops.cosine_topk(X, k=50, device="cpu", n_threads=T),
        "kmeans_step 1M x 32, k=64": lambda: ops.kmeans_step(B, C0, device="cpu", n_threads=T),
        "topk_scores user-based 20k x 20k, n=20": lambda: ops.topk_scores(W, UI, n=20, exclude=UI, device="cpu",
                                                                          n_threads=T),
    }
    print(f"cohortrec at {cohortrec.__file__}; loadavg {H.loadavg()}; best of {args.repeats}\n")
    print("| op | wall s | native s | Python s | Python share |")
    print("|---|---:|---:|---:|---:|")
    for name, call in calls.items():
        call()  # warm-up
        wall, native, py = split(call, args.repeats)
        print(f"| {name} | {wall:.3f} | {native:.3f} | {py:.3f} | {py / wall:.1%} |", flush=True)
    print(f"\nloadavg at the end {H.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
