"""Scale benchmark: the default ``cohortrec discover`` on 100k .. 1M-user shops.

Generates planted-group event logs with the model of
:func:`cohortrec.datasets.make_shop` (the same group, category, price-tier and
power-law popularity structure), scaled and written in chunks so that the
generator itself never holds the whole log in pandas: 100 items per 1,000
users up to 100,000 items, about 27 events per user (views, carts,
purchases), Parquet with ``user_id, item_id, timestamp, event, category``.
Then runs the default ``cohortrec discover DATA`` in a subprocess and records
per-stage wall time and peak RSS (from the CLI's ``stages.json``), total wall
time and peak RSS of the process, and the adjusted Rand
index of the groups against the planted groups.

    python benchmarks/bench_scale.py --users 100000 300000          # develop
    python benchmarks/bench_scale.py --users 100000 300000 1000000  # the full run
    python benchmarks/bench_scale.py --users 100000 --encoder svd --out -

Writes ``benchmarks/results/scale-<date>.md`` and ``.png`` (time and memory
against users) unless ``--out -``. The machine is shared: the load average
is recorded before and after every case.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import library_versions, machine_info  # noqa: E402

EVENTS_PER_USER = 27.0


def shop_events(n_users: int, *, n_items: int | None = None, n_groups: int = 8, seed: int = 0,
                chunk_users: int = 100_000, noise: float = 0.25):
    """Yield ``(pyarrow.Table, planted labels of the chunk's users)`` chunks of a planted-group log.

    The model of :func:`cohortrec.datasets.make_shop`: every group has two or
    three core categories, a price style, its own favourite items and
    activity / funnel rates; item popularity is a power law inside every
    category; a share ``noise`` of views follows global popularity. User ids
    are ``0..n_users-1`` (int64), item ids ``0..n_items-1``.
    """
    import pyarrow as pa  # noqa: PLC0415

    from cohortrec.datasets import _synthetic as syn  # noqa: PLC0415

    rng = np.random.RandomState(seed)
    if n_items is None:
        n_items = int(min(100_000, max(1_000, n_users // 10)))
    n_cat = 16
    cat_names, _ = syn._category_names(n_cat, rng)
    item_cat = rng.randint(n_cat, size=n_items)
    item_cat[:n_cat] = np.arange(n_cat)
    rng.shuffle(item_cat)
    item_tier = rng.choice(3, size=n_items, p=[0.4, 0.4, 0.2])
    pop = np.empty(n_items)
    for c in range(n_cat):
        idx = np.flatnonzero(item_cat == c)
        pop[idx] = 1.0 / (rng.permutation(idx.size) + 3.0) ** 0.8
    core_sets: list[tuple[int, ...]] = []
    while len(core_sets) < n_groups:
        s = tuple(sorted(rng.choice(n_cat, size=2 if rng.rand() < 0.6 else 3, replace=False)))
        if s not in core_sets:
            core_sets.append(s)
    styles = list(syn._STYLES)
    g_style = [styles[g % 3] for g in rng.permutation(n_groups)]
    cat_pref = np.full((n_groups, n_cat), 0.12 / n_cat)
    for g, s in enumerate(core_sets):
        cat_pref[g, list(s)] += 0.88 * rng.dirichlet(np.full(len(s), 4.0))
    activity = rng.lognormal(0, 0.35, n_groups)
    cart_rate = rng.uniform(0.05, 0.35, n_groups)
    buy_rate = rng.uniform(0.2, 0.7, n_groups)
    shares = rng.dirichlet(np.full(n_groups, 4.0))
    shares = np.maximum(shares, 0.25 / n_groups)
    shares /= shares.sum()
    taste = np.where(rng.rand(n_groups, n_items) < 0.3, 4.0, 1.0)
    cdf = np.empty((n_groups, n_items))
    for g in range(n_groups):
        w = pop * syn._STYLES[g_style[g]][item_tier] * taste[g]
        tot = np.bincount(item_cat, weights=w, minlength=n_cat)
        p = cat_pref[g, item_cat] * w / tot[item_cat]
        cdf[g] = np.cumsum(p / p.sum())
    cdf_pop = np.cumsum(pop / pop.sum())
    # views per user so that views + carts + purchases average EVENTS_PER_USER
    funnel = 1.0 + float(np.dot(shares, cart_rate * (1.0 + buy_rate)))
    mean_views = EVENTS_PER_USER / funnel / float(np.dot(shares, activity))
    t0 = int(np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64))
    span = 90 * 86400.0
    cats = pa.array(np.asarray(cat_names, dtype=object), pa.string())
    for start in range(0, n_users, chunk_users):
        n = min(chunk_users, n_users - start)
        labels = rng.choice(n_groups, size=n, p=shares)
        sigma = 0.8
        nv = rng.lognormal(np.log(mean_views) - sigma**2 / 2, sigma, n) * activity[labels]
        nv = np.clip(np.round(nv), 3, 25 * mean_views).astype(np.int64)
        vu = np.repeat(np.arange(n), nv)
        vg = labels[vu]
        explore = rng.rand(vu.size) < noise
        u = rng.rand(vu.size)
        vi = np.empty(vu.size, np.int64)
        for g in range(n_groups):
            sel = np.flatnonzero((vg == g) & ~explore)
            vi[sel] = np.minimum(np.searchsorted(cdf[g], u[sel]), n_items - 1)
        sel = np.flatnonzero(explore)
        vi[sel] = np.minimum(np.searchsorted(cdf_pop, u[sel]), n_items - 1)
        ustart = rng.uniform(0, span * 0.6, n)
        ulen = np.minimum(span - ustart, rng.uniform(0.2, 1.0, n) * span)
        vt = ustart[vu] + rng.rand(vu.size) * ulen[vu]
        c_idx = np.flatnonzero(rng.rand(vu.size) < cart_rate[vg])
        b_idx = c_idx[rng.rand(c_idx.size) < buy_rate[vg[c_idx]]]
        eu = np.concatenate([vu, vu[c_idx], vu[b_idx]])
        ei = np.concatenate([vi, vi[c_idx], vi[b_idx]])
        et = np.concatenate([vt, vt[c_idx] + 300.0, vt[b_idx] + 1200.0])
        ek = np.concatenate([np.zeros(vu.size, np.int8), np.ones(c_idx.size, np.int8),
                             np.full(b_idx.size, 2, np.int8)])
        order = np.lexsort((et, eu))
        eu, ei, et, ek = eu[order], ei[order], et[order], ek[order]
        ts = (t0 + np.minimum(et, span - 1)).astype("datetime64[s]")
        table = pa.table({
            "user_id": pa.array(eu + start, pa.int64()),
            "item_id": pa.array(ei, pa.int64()),
            "timestamp": pa.array(ts),
            "event": pa.DictionaryArray.from_arrays(pa.array(ek.astype(np.int32)),
                                                    pa.array(["view", "cart", "purchase"])),
            "category": pa.DictionaryArray.from_arrays(pa.array(item_cat[ei].astype(np.int32)), cats),
        })
        yield table, labels


def write_shop(path: Path, n_users: int, seed: int = 0, *, files: int = 1) -> tuple[np.ndarray, dict]:
    """Write the log to ``path`` (one file, or a folder of ``files`` part files); planted labels and stats."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    labels = []
    n_events = 0
    writers: list = []
    try:
        chunk = 100_000
        per_file = -(-n_users // files)
        part = -1
        for i, (table, lab) in enumerate(shop_events(n_users, seed=seed, chunk_users=min(chunk, per_file))):
            first_user = i * min(chunk, per_file)
            want = first_user // per_file if files > 1 else 0
            if want != part:
                if writers:
                    writers[-1].close()
                target = path / f"part-{want:03d}.parquet" if files > 1 else path
                if files > 1:
                    path.mkdir(parents=True, exist_ok=True)
                writers.append(pq.ParquetWriter(target, table.schema))
                part = want
            writers[-1].write_table(table, row_group_size=1 << 20)
            labels.append(lab)
            n_events += table.num_rows
    finally:
        if writers:
            writers[-1].close()
    y = np.concatenate(labels)
    return y, {"users": n_users, "events": n_events,
               "items": int(min(100_000, max(1_000, n_users // 10)))}


def _load() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def run_case(n_users: int, encoder: str, workdir: Path, seed: int, extra: list[str]) -> dict:
    """Generate, run ``cohortrec discover``, score; one result row."""
    import pandas as pd  # noqa: PLC0415
    from sklearn.metrics import adjusted_rand_score  # noqa: PLC0415

    data = workdir / f"shop-{n_users}.parquet"
    t = time.perf_counter()
    y, stats = write_shop(data, n_users, seed)
    gen_s = time.perf_counter() - t
    out = workdir / f"out-{n_users}-{encoder}"
    cmd = [sys.executable, "-m", "cohortrec", "discover", str(data), "--out", str(out), "--encoder", encoder,
           *extra]
    load_before = _load()
    t = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        err.seek(0)
        stderr = err.read()
    rc = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss / 1024 / 1024  # GiB (ru_maxrss is in KiB on Linux)
    row = {"users": n_users, "items": stats["items"], "events": stats["events"], "encoder": encoder,
           "gen_s": gen_s, "wall_s": wall, "peak_rss_gib": peak, "rc": rc,
           "load_before": load_before, "load_after": _load(), "cmd": " ".join(cmd[1:])}
    row["stderr_tail"] = stderr[-1500:]
    if rc != 0:
        row["error"] = (stderr.strip().splitlines() or ["?"])[-1]
        print(stderr[-3000:], file=sys.stderr)
        return row
    stages = json.loads((out / "stages.json").read_text())
    row["stages"] = {"seconds": {r["stage"]: r["seconds"] for r in stages},
                     "peak_rss_gib": {r["stage"]: r["peak_rss_gib"] for r in stages if r["peak_rss_gib"] is not None}}
    g = pd.read_parquet(out / "groups.parquet", columns=["user_id", "group"])
    truth = pd.Series(y, index=np.arange(n_users)).reindex(g["user_id"].to_numpy()).to_numpy()
    row["ari"] = float(adjusted_rand_score(truth, g["group"].to_numpy()))
    row["n_groups"] = int(g["group"].nunique())
    row["largest_group_share"] = float(g["group"].value_counts(normalize=True).iloc[0])
    prof = json.loads((out / "profiles.json").read_text())
    row["encoder_sample"] = prof.get("encoder_training")
    return row


def run_dask_case(n_users: int, workers: list[int], workdir: Path, seed: int, encoder: str,
                  extra: list[str]) -> list[dict]:
    """The same log as a folder of Parquet files; ``discover --scheduler`` on a LocalCluster of each size."""
    import pandas as pd  # noqa: PLC0415
    from distributed import LocalCluster  # noqa: PLC0415
    from sklearn.metrics import adjusted_rand_score  # noqa: PLC0415

    data = workdir / f"shop-{n_users}-parts"
    t = time.perf_counter()
    y, stats = write_shop(data, n_users, seed, files=max(8, n_users // 50_000))
    gen_s = time.perf_counter() - t
    rows = []
    for w in workers:
        out = workdir / f"out-dask-{n_users}-{w}"
        with LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40, protocol="tcp://", host="127.0.0.1") as cluster:
            cmd = [sys.executable, "-m", "cohortrec", "discover", str(data), "--scheduler", cluster.scheduler_address,
                   "--encoder", encoder, "--out", str(out), *extra]
            load_before = _load()
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - t
        row = {"users": n_users, "items": stats["items"], "events": stats["events"], "encoder": encoder,
               "workers": w, "gen_s": gen_s, "wall_s": wall, "rc": proc.returncode, "load_before": load_before,
               "load_after": _load(), "cmd": " ".join(cmd[1:])}
        if proc.returncode == 0:
            g = pd.read_parquet(out / "groups.parquet", columns=["user_id", "group"])
            truth = pd.Series(y, index=np.arange(n_users)).reindex(g["user_id"].to_numpy()).to_numpy()
            row["ari"] = float(adjusted_rand_score(truth, g["group"].to_numpy()))
            row["stages"] = json.loads((out / "timings.json").read_text())
        else:
            row["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(proc.stderr[-3000:], file=sys.stderr)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for enc in sorted({r["encoder"] for r in rows}):
        rr = [r for r in rows if r["encoder"] == enc and r["rc"] == 0]
        if not rr:
            continue
        x = [r["users"] for r in rr]
        a.plot(x, [r["wall_s"] for r in rr], "o-", label=f"{enc}: total")
        b.plot(x, [r["peak_rss_gib"] for r in rr], "o-", label=f"{enc}: peak RSS")
        x0 = x[0]
        a.plot(x, [rr[0]["wall_s"] * u / x0 for u in x], ":", color="grey", label="linear from first")
    a.axhline(300, color="red", lw=0.8, label="target 5 min")
    b.axhline(8, color="red", lw=0.8, label="target 8 GB")
    a.set(xlabel="users", ylabel="wall time (s)", title="cohortrec discover: time")
    b.set(xlabel="users", ylabel="GiB", title="cohortrec discover: peak RSS")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _markdown(rows: list[dict], args: argparse.Namespace) -> str:
    L = [f"# Scale: default `cohortrec discover` ({_dt.date.today()})", "",
         f"Command: `python benchmarks/bench_scale.py {' '.join(sys.argv[1:])}`", "",
         "Planted-group shop logs (make_shop's model, 8 groups, 100 items per 1,000 users up to 100k, "
         "about 27 events per user, Parquet); `cohortrec discover DATA` with the default settings in a "
         "subprocess. Stage times and per-stage peak RSS from the CLI's `stages.json`; total peak RSS "
         "is the child's `ru_maxrss`. The machine is shared with other jobs (2 cores): the load "
         "average before/after each case is recorded, and times vary with it.", "",
         "| users | items | events | encoder | wall s | peak RSS GiB | ARI | groups | largest group | "
         "load before | load after |", "|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        if r["rc"] != 0:
            L.append(f"| {r['users']} | {r['items']} | {r['events']} | {r['encoder']} | failed: "
                     f"{r.get('error')} | | | | | {r['load_before']} | {r['load_after']} |")
            continue
        L.append(f"| {r['users']} | {r['items']} | {r['events']} | {r['encoder']} | {r['wall_s']:.1f} | "
                 f"{r['peak_rss_gib']:.2f} | {r['ari']:.3f} | {r['n_groups']} | {r['largest_group_share']:.2f} | "
                 f"{r['load_before']} | {r['load_after']} |")
    stages = [s for r in rows if r["rc"] == 0 for s in r["stages"].get("seconds", r["stages"])]
    stages = list(dict.fromkeys(stages))
    if stages:
        L += ["", "Per stage: seconds (peak RSS GiB during the stage)", "",
              "| users | encoder | " + " | ".join(stages) + " |", "|---:|---|" + "---:|" * len(stages)]
        for r in rows:
            if r["rc"] != 0:
                continue
            sec = r["stages"].get("seconds", r["stages"])
            mem = r["stages"].get("peak_rss_gib", {})
            cells = [(f"{sec[s]:.1f}" + (f" ({mem[s]:.2f})" if s in mem else "")) if s in sec else ""
                     for s in stages]
            L.append(f"| {r['users']} | {r['encoder']} | " + " | ".join(cells) + " |")
    samples = [r for r in rows if r.get("encoder_sample")]
    if samples:
        L += ["", "Encoder training sample (from profiles.json):", ""]
        for r in samples:
            L.append(f"- {r['users']} users: `{json.dumps(r['encoder_sample'])}`")
    L += ["", "## Machine", "", "| | |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in machine_info().items()]
    L += ["", "| library | version |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in library_versions(("cohortrec", "numpy", "scipy", "torch", "pyarrow",
                                                            "sklearn")).items()]
    return "\n".join(L) + "\n"


def _dask_markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    L = ["", "## Dask: `cohortrec discover FOLDER --scheduler ADDRESS` on a LocalCluster", "",
         "One thread per worker process, on the same shared 2-core machine (so 2 workers can at best use both "
         "cores; the client's own work, the encoder's training on the sample, is not distributed).", "",
         "| users | events | encoder | workers | wall s | ARI | stages (s) | load before | load after |",
         "|---:|---:|---|---:|---:|---:|---|---|---|"]
    for r in rows:
        st = ", ".join(f"{k}: {v:.1f}" for k, v in (r.get("stages") or {}).items())
        L.append(f"| {r['users']} | {r['events']} | {r['encoder']} | {r['workers']} | {r['wall_s']:.1f} | "
                 f"{r.get('ari', float('nan')):.3f} | {st or r.get('error', '')} | {r['load_before']} | "
                 f"{r['load_after']} |")
    if len(rows) >= 2 and all(r["rc"] == 0 for r in rows):
        base = rows[0]["wall_s"]
        L += ["", "Speed-up over the first row: " + ", ".join(f"{r['workers']} workers {base / r['wall_s']:.2f}x"
                                                           for r in rows)]
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, nargs="*", default=[100_000, 300_000, 1_000_000])
    p.add_argument("--encoder", nargs="+", default=["auto"], help="discover --encoder values (default auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tmp", default=None, help="folder for the generated data (default: a temp dir)")
    p.add_argument("--out", default=None, help="results .md path ('-' = print only)")
    p.add_argument("--extra", default="", help="more discover arguments, e.g. '--groups 8'")
    p.add_argument("--dask-users", type=int, default=None,
                   help="also run discover --scheduler on a LocalCluster at this size (a folder of Parquet files)")
    p.add_argument("--dask-workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--dask-encoder", default="auto")
    p.add_argument("--include", nargs="*", default=[],
                   help="results .json files of earlier runs whose rows join this report (e.g. the 1M case run "
                        "separately on a quieter machine)")
    args = p.parse_args(argv)
    rows: list[dict] = []
    dask_rows: list[dict] = []
    for prev in args.include:
        doc = json.loads(Path(prev).read_text())
        rows += doc.get("local", [])
        dask_rows += doc.get("dask", [])
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        if args.dask_users:
            dask_rows = run_dask_case(args.dask_users, args.dask_workers, Path(tmp), args.seed, args.dask_encoder,
                                      args.extra.split())
        for n in args.users:
            for enc in args.encoder:
                r = run_case(n, enc, Path(tmp), args.seed, args.extra.split())
                print(json.dumps(r), flush=True)
                rows.append(r)
            for f in Path(tmp).glob(f"shop-{n}.parquet"):
                f.unlink()
    rows.sort(key=lambda r: (r["users"], r["encoder"]))
    md = _markdown(rows, args) + _dask_markdown(dask_rows)
    if args.out == "-":
        print(md)
        return 0
    out = Path(args.out) if args.out else HERE / "results" / f"scale-{_dt.date.today()}.md"
    out.write_text(md)
    (out.with_suffix(".json")).write_text(json.dumps({"local": rows, "dask": dask_rows}, indent=1))
    if rows:
        _plot(rows, out.with_suffix(".png"))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
