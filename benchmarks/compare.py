#!/usr/bin/env python
"""Compare cohortrec.ops against established CPU libraries on the same data.

    python benchmarks/compare.py [--only cosine|kmeans|topk] [--quick]
                                 [--threads 2] [--out benchmarks/results/cpu-<date>.md]

Runs the per-op benchmarks in one process, on one shared harness
(benchmarks/_harness.py), and writes one results file:

* ``cosine`` -- bench_cosine_topk.py (sparse_dot_topn, implicit);
* ``kmeans`` -- bench_kmeans_step.py (scikit-learn, faiss);
* ``topk``   -- bench_topk_scores.py (SciPy, sparse_dot_topn, implicit).

For every case each library runs once (warm-up, peak memory; its output is
checked against the anchors, and the anchors against each other, *before*
timing), then further runs are timed with time.perf_counter (best / median).
Ratios are anchor_time / cohortrec_time (> 1 means cohortrec is faster). The
Markdown file has the machine, library versions, BLAS (threadpoolctl), thread
settings, load and the exact command.

Correctness mismatches are reported as FAIL (with examples) and make the
script exit with status 1; they are never silently tolerated. See
benchmarks/README.md for what each case measures and how the anchors are
made comparable.
"""

from __future__ import annotations

import sys

import _harness as H

GROUPS = {"cosine": "bench_cosine_topk", "kmeans": "bench_kmeans_step", "topk": "bench_topk_scores"}


def parse_args(argv=None):
    p = H.parser(__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", choices=list(GROUPS), help="run only this group (repeatable); "
                   "default: all")
    return H.finish_args(p.parse_args(argv), "cpu")


def main(argv=None) -> int:
    args = parse_args(argv)
    H.prepare_env(args.threads)  # before the op modules import numpy
    import importlib

    chosen = [g for g in GROUPS if g in (args.only or GROUPS)]
    return H.main(args, [(g, importlib.import_module(GROUPS[g]).bench) for g in chosen])


if __name__ == "__main__":
    sys.exit(main())
