#!/usr/bin/env python
"""A/B of two cohortrec builds on the compare.py cases, in one session.

    python benchmarks/bench_ab.py --before /tmp/old/.venv/bin/python [--after python] \\
        [--groups cosine,kmeans,topk] [--rounds 1] [--out results/ab-<date>.md] [-- compare.py flags]

Each interpreter runs ``compare.py --only GROUP --json ...`` (default flags
``--quick``) in its own process, group by group, alternating which build goes
first, so that a change of load on a shared machine hits both builds. The
benchmark code is this checkout's for both; only the ``cohortrec`` each
interpreter imports differs. The table gives, per case and anchor, the ratio
anchor / cohortrec of each build (each against the anchors timed in the same
process) and cohortrec's own time before and after.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import tempfile

import _harness as H

HERE = os.path.dirname(os.path.abspath(__file__))


def run_one(python: str, group: str, flags: list[str], tmp: str, tag: str) -> dict:
    out = os.path.join(tmp, f"{group}-{tag}.json")
    cmd = [python, os.path.join(HERE, "compare.py"), "--only", group, "--out", "-", "--json", out, *flags]
    print(f"\n### {tag}: {' '.join(cmd)}  (loadavg {H.loadavg()})", flush=True)
    rc = subprocess.run(cmd, check=False).returncode
    with open(out) as fh:
        doc = json.load(fh)
    doc["rc"] = rc
    return doc


def rows(doc: dict) -> dict[tuple[str, str], dict]:
    """(case, library) -> row, plus the case's cohortrec row under (case, "cohortrec")."""
    return {(c["name"], r["library"]): dict(r, load=c["load"], fails=len(c["checks_failed"]))
            for c in doc["cases"] for r in c["rows"]}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", required=True, help="python of the environment with the old build")
    p.add_argument("--after", default=sys.executable, help="python of the new build (default: this one)")
    p.add_argument("--label-before", default="before")
    p.add_argument("--label-after", default="after")
    p.add_argument("--groups", default="cosine,kmeans,topk")
    p.add_argument("--rounds", type=int, default=1, help="before/after pairs per group")
    p.add_argument("--after-first", action="store_true", help="the new build runs first in the first group")
    p.add_argument("--include", default=None, metavar="DIR",
                   help="also tabulate the JSON runs an earlier bench_ab.py left in DIR (as further rounds)")
    p.add_argument("--out", default=os.path.join(HERE, "results", f"ab-{_dt.date.today().isoformat()}.md"))
    args = p.parse_args(argv)
    flags = rest or ["--quick"]
    started = _dt.datetime.now()
    load0 = H.loadavg()
    runs: dict[str, list] = {"before": [], "after": []}
    tmp = tempfile.mkdtemp(prefix="bench_ab-")  # kept: the JSON of every run
    print(f"JSON of the runs in {tmp}", flush=True)
    if args.include:
        for name in sorted(os.listdir(args.include)):
            tag = name.split("-", 1)[-1].rstrip("0123456789.json")
            if name.endswith(".json") and tag in runs:
                with open(os.path.join(args.include, name)) as fh:
                    runs[tag].append(dict(json.load(fh), rc=0))
    k = int(args.after_first)
    for group in args.groups.split(","):
        for r in range(args.rounds):
            order = ("before", "after") if k % 2 == 0 else ("after", "before")
            k += 1
            for tag in order:
                py = args.before if tag == "before" else args.after
                runs[tag].append(run_one(py, group, flags, tmp, f"{tag}{r}"))
    load1 = H.loadavg()
    n_fail = {tag: sum(len(c["checks_failed"]) for d in docs for c in d["cases"]) for tag, docs in runs.items()}
    L = [f"# A/B: {args.label_before} vs {args.label_after} ({started:%Y-%m-%d %H:%M})", "",
         f"Command: `python benchmarks/bench_ab.py {' '.join(sys.argv[1:])}`; compare.py flags: `{' '.join(flags)}`; "
         f"{args.rounds} round(s) per group, the order of the builds alternating"
         + (f", plus the runs in {args.include}" if args.include else "") + ".", "",
         f"- load average at the start: {load0}; at the end: {load1}",
         f"- before: `{args.before}` -> cohortrec at {runs['before'][0]['versions'].get('cohortrec location')}",
         f"- after: `{args.after}` -> cohortrec at {runs['after'][0]['versions'].get('cohortrec location')}",
         f"- correctness failures: before {n_fail['before']}, after {n_fail['after']}; exit statuses "
         f"{[d['rc'] for d in runs['before']]} / {[d['rc'] for d in runs['after']]}", "",
         "Ratios are anchor / cohortrec (best times) with the anchor timed in the same process; "
         "'change' is after / before of the ratio (< 1: the new build lost ground against the anchor). With "
         "several rounds the cells give the median.", "",
         f"| case | anchor | ratio {args.label_before} | ratio {args.label_after} | change | cohortrec s "
         f"{args.label_before} | cohortrec s {args.label_after} | cohortrec peak MiB {args.label_before} / "
         f"{args.label_after} | other load (CPUs) |",
         "|---|---|---:|---:|---:|---:|---:|---|---|"]
    merged = {tag: [rows(d) for d in docs] for tag, docs in runs.items()}
    keys = [k for d in merged["after"] for k in d]
    seen = set()
    for case, lib in keys:
        if (case, lib) in seen or lib.startswith("cohortrec"):
            continue
        seen.add((case, lib))

        def med(tag, key, lib=lib, case=case):
            vals = [d[(case, lib)][key] for d in merged[tag] if (case, lib) in d and d[(case, lib)][key] is not None]
            return statistics.median(vals) if vals else None

        def co(tag, key, case=case):
            return med(tag, key, lib="cohortrec", case=case)

        rb, ra = med("before", "ratio"), med("after", "ratio")
        loads = [d[(case, lib)]["load"] for tag in merged for d in merged[tag] if (case, lib) in d]
        fmt = lambda v, f: "-" if v is None else format(v, f)
        L.append(f"| {case} | {lib} | {fmt(rb, '.2f')}x | {fmt(ra, '.2f')}x | "
                 f"{fmt(ra / rb if (ra and rb) else None, '.2f')} | {fmt(co('before', 'best'), '.3f')} | "
                 f"{fmt(co('after', 'best'), '.3f')} | {fmt(co('before', 'peak_mib'), '.0f')} / "
                 f"{fmt(co('after', 'peak_mib'), '.0f')} | {', '.join(f'{x:.1f}' for x in loads if x is not None)} |")
    H.write_text(args.out, "\n".join(L) + "\n")
    return 0 if all(d["rc"] == 0 for tag in runs for d in runs[tag]) else 1


if __name__ == "__main__":
    sys.exit(main())
