"""Serving benchmark: one user per request, in process and over HTTP, and online updates.

One run, one machine, everything compared in the same run (the dev machine
is shared, so only ratios within a run mean much):

1. **In process**, ml-latest-small (positives = rating >= 4, binary): p50 /
   p99 of one user's top-10 over ``--users`` random users (warm, one
   thread), for every cohortrec model next to implicit's
   AlternatingLeastSquares (the EASE target) and CosineRecommender (the
   ItemKNN target), all called as implicit is called,
   ``recommend(u, X[u], N=10)`` (rows sliced before timing), plus
   cohortrec's ``recommend(u)`` (no row given) and the batch path
   ``recommend([u])`` for the before/after; and
   :meth:`~cohortrec.GroupDiscovery.assign_items` for one new user.
2. **Threads**: one-user requests/s with 1 and 2 Python threads (windows
   of ``--thread-seconds``).
3. **HTTP** (loopback only): ``cohortrec serve`` in a subprocess, an asyncio
   keep-alive client in this process; a fixed number of requests per level
   and a time limit; p50 / p99 and requests/s at concurrency 1, 8, 32, for
   a bundle serving ItemKNN (the target) and the default GroupRecommender
   bundle, beside the in-process latency of the same model.
4. **Online updates**: ``partial_fit_users`` of 1,000 new users (rows
   resampled from the real users, each keeping ~80 % of the items) vs a
   refit on all users, for UserKNN, ItemKNN, EASE and GroupRecommender.

Writes ``benchmarks/results/serve-<date>.md`` (machine, versions, load
average before each section, peak memory of this process and of the
server).

Usage (repository root; needs the ``serve`` extra and implicit)::

    python benchmarks/bench_serve.py                 # ~5-8 min on the 2-core dev machine
    python benchmarks/bench_serve.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import os

# one BLAS thread for every library: per-request work is tiny, and on a shared
# 2-core machine extra BLAS threads only add noise
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import resource  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import library_versions, machine_info  # noqa: E402

DATA = Path(os.environ.get("COHORTREC_DATA", "/work/shared/data")) / "ml-latest-small"
LOADS: list[tuple[str, str]] = []


def load_avg(section: str) -> None:
    LOADS.append((section, " / ".join(f"{x:.2f}" for x in os.getloadavg())))


def pct(ts: Any) -> tuple[float, float]:
    """(p50, p99) in ms; for several passes over the same calls, the smallest of each
    percentile over the passes (the pass least disturbed by the other jobs of the
    shared machine; every library is measured the same way)."""
    passes = ts if ts and isinstance(ts[0], list) else [ts]
    a = [np.asarray(p) * 1e3 for p in passes]
    return min(float(np.percentile(x, 50)) for x in a), min(float(np.percentile(x, 99)) for x in a)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------
# data and models
# --------------------------------------------------------------------------
def movielens() -> sp.csr_matrix:
    from cohortrec.datasets import load_movielens

    X = load_movielens(DATA).positives(4.0)
    X = sp.csr_matrix(X, dtype=np.float32)
    X.data[:] = 1.0
    return X


def cohortrec_models(seed: int) -> dict[str, Callable[[], Any]]:
    from cohortrec.recommenders import ALS, EASE, Blend, GroupRecommender, ItemKNN, Popularity, RP3beta, UserKNN

    return {
        "EASE": lambda: EASE(l2=200.0),  # solver="auto": the dual form on ml-latest-small (610 users < 6,298 items)
        "EASE primal": lambda: EASE(l2=200.0, solver="primal"),
        "ALS": lambda: ALS(factors=64, iterations=15, random_state=seed, n_threads=1),
        "ItemKNN": lambda: ItemKNN(k=50),
        "UserKNN": lambda: UserKNN(k=50),
        "GroupRecommender": lambda: GroupRecommender(n_groups=8, random_state=seed),
        "RP3beta": lambda: RP3beta(k=200),
        "Popularity": lambda: Popularity(),
        # the blend bench_recommenders picks on both data sets (weights 2/3 and 1/3, score-normalised)
        "Blend (EASE + ALS)": lambda: Blend([EASE(l2=200.0), ALS(factors=64, iterations=15, random_state=seed,
                                                                 n_threads=1)], weights=[2.0, 1.0], normalize="score"),
    }


def implicit_models(seed: int) -> dict[str, Callable[[], Any]]:
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import CosineRecommender

    return {
        "implicit ALS": lambda: AlternatingLeastSquares(factors=64, iterations=15, random_state=seed,
                                                        num_threads=1),
        "implicit CosineRecommender": lambda: CosineRecommender(K=50, num_threads=1),
    }


REPEATS = 3


CPU: dict[int, list[list[float]]] = {}


def time_calls(fn: Callable[[int], Any], users: np.ndarray, warm: int = 50) -> list[list[float]]:
    """Per-call wall seconds over ``users``, in REPEATS passes (see :func:`pct`).

    The calling thread's CPU seconds of the same calls are kept in ``CPU[id(result)]``:
    on a shared machine a call that is preempted shows the other jobs' time slice in
    its wall time (a few ms), not in its CPU time.
    """
    for u in users[:warm]:
        fn(int(u))
    passes, cpu = [], []
    for _ in range(REPEATS):
        out, c = [], []
        for u in users:
            t0, c0 = time.perf_counter(), time.thread_time()
            fn(int(u))
            c.append(time.thread_time() - c0)
            out.append(time.perf_counter() - t0)
        passes.append(out)
        cpu.append(c)
    CPU[id(passes)] = cpu
    return passes


def cpu_p99(passes: list[list[float]]) -> str:
    return f"{pct(CPU[id(passes)])[1]:.3f}"


# --------------------------------------------------------------------------
# 1. in-process latency
# --------------------------------------------------------------------------
def in_process(X: sp.csr_matrix, n_users: int, seed: int) -> tuple[list[list[str]], dict[str, Any]]:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, X.shape[0], n_users)
    rows = [X[u] for u in range(X.shape[0])]
    fitted: dict[str, Any] = {}
    out = []
    for name, make in {**cohortrec_models(seed), **implicit_models(seed)}.items():
        t0 = time.perf_counter()
        m = make()
        if name.startswith("implicit"):
            m.fit(X, show_progress=False)
        else:
            m.fit(X)
        fit_s = time.perf_counter() - t0
        fitted[name] = m
        row_call = time_calls(lambda u: m.recommend(u, rows[u], N=10), users)
        p50, p99 = pct(row_call)
        cells = [name, f"{fit_s:.2f}", f"{p50:.3f}", f"{p99:.3f}", cpu_p99(row_call)]
        if name.startswith("implicit"):
            cells += ["", "", "", ""]
        else:
            no_row = time_calls(lambda u: m.recommend(u, N=10), users)
            a50, a99 = pct(no_row)
            b50, b99 = pct(time_calls(lambda u: m.recommend(np.array([u]), rows[u], N=10), users[:300]))
            cells += [f"{a50:.3f}", f"{a99:.3f}", cpu_p99(no_row), f"{b50:.3f} / {b99:.3f}"]
        out.append(cells)
        print("  ", " | ".join(cells), flush=True)
    return out, fitted


def assign_latency(X: sp.csr_matrix, n_users: int, seed: int) -> list[str]:
    import pandas as pd

    from cohortrec import GroupDiscovery, Interactions

    I = Interactions.from_sparse(X)
    g = GroupDiscovery("svd", n_groups=8, random_state=seed).fit(I)
    rng = np.random.default_rng(seed + 1)
    lists = []
    active = np.flatnonzero(np.diff(X.indptr) > 0)
    for u in rng.choice(active, n_users):
        row = X[int(u)]
        k = max(1, int(0.2 * row.nnz))  # a new user with a fifth of a real user's items
        lists.append(list(I.item_ids[rng.choice(row.indices, k, replace=False)]))
    fast = time_calls(lambda i: g.assign_items(lists[i]), np.arange(len(lists)))
    fast_cpu = cpu_p99(fast)

    def frame(i: int) -> None:  # what assign needs: an event frame -> Interactions -> assign
        df = pd.DataFrame({"user_id": "new", "item_id": lists[i]})
        g.assign(Interactions.from_frame(df, user="user_id", item="item_id"))

    slow = time_calls(frame, np.arange(min(len(lists), 300)))
    a, b = pct(fast)
    c, d = pct(slow)
    return [f"{a:.3f}", f"{b:.3f}", f"{c:.3f}", f"{d:.3f}", fast_cpu]


# --------------------------------------------------------------------------
# 2. threads
# --------------------------------------------------------------------------
def thread_throughput(m: Any, X: sp.csr_matrix, seconds: float, n_threads: int, seed: int,
                      max_calls: int = 10_000_000) -> float:
    """One-user requests/s of ``n_threads`` Python threads calling ``m.recommend(u, N=10)`` for ``seconds``.

    The window is a fixed time, not a fixed number of calls: a count of calls makes a window of a few
    milliseconds for the fastest models (3,000 Popularity calls take 4 ms), the length of a scheduler time
    slice, and the best of several such windows then measures the luck of the window more than the model.
    Every thread stops at the same deadline (checked every 32 calls) or after ``max_calls``.
    """
    rng = np.random.default_rng(seed)
    users = rng.integers(0, X.shape[0], (n_threads, 4096)).tolist()
    barrier = threading.Barrier(n_threads + 1)
    done = [0] * n_threads
    deadline = [0.0]

    def work(t: int) -> None:
        mine = users[t]
        barrier.wait()
        end, n, clock = deadline[0], 0, time.perf_counter
        while n < max_calls:
            for u in mine[n % 4096:n % 4096 + 32]:
                m.recommend(u, N=10)
            n += 32
            if clock() >= end:
                break
        done[t] = n

    ts = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in ts:
        t.start()
    t0 = time.perf_counter()
    deadline[0] = t0 + seconds
    barrier.wait()
    for t in ts:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


# --------------------------------------------------------------------------
# 3. HTTP
# --------------------------------------------------------------------------
def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_bundles(X: sp.csr_matrix, tmp: Path, seed: int) -> dict[str, Path]:
    """A discover output on ml-latest-small, and a copy serving ItemKNN instead of the GroupRecommender."""
    from cohortrec.cli import main
    from cohortrec.cli._bundle import load_bundle
    from cohortrec.recommenders import ItemKNN

    out = tmp / "ml"
    code = main(["discover", str(DATA), "--out", str(out), "--encoder", "svd", "--groups", "8", "--seed",
                 str(seed), "-q"])
    if code != 0:
        raise RuntimeError("cohortrec discover failed")
    b = load_bundle(out, with_discovery=False)
    knn = tmp / "ml-itemknn"
    shutil.copytree(out / "model", knn / "model")
    ItemKNN(k=50).fit(b.recommender.user_items_).save(knn / "model" / "recommender.npz")
    return {"ItemKNN": knn, "GroupRecommender": out}


async def _client(port: int, paths: list[str], concurrency: int, limit_s: float) -> tuple[list[float], int, float]:
    lat: list[float] = []
    errors = 0
    it = iter(paths)
    deadline = time.perf_counter() + limit_s

    async def conn() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for path in it:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                lat.append(time.perf_counter() - t0)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(concurrency)))
    return lat, errors, time.perf_counter() - t0


def http_levels(bundle: Path, user_ids: list[str], n_requests: int, limit_s: float,
                levels: tuple[int, ...], seed: int) -> tuple[list[list[str]], float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cohortrec", "serve", "--model", str(bundle), "--port",
                             str(port), "--device", "cpu", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        t0 = time.time()
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() - t0 > 120:
                    raise RuntimeError("server did not start: " + proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)
        rng = np.random.default_rng(seed)
        rows = []
        for c in levels:
            paths = [f"/recommend?user={user_ids[int(u)]}&n=10" for u in rng.integers(0, len(user_ids), n_requests)]
            asyncio.run(_client(port, paths[:200], c, limit_s))  # warm-up
            lat, errors, wall = asyncio.run(_client(port, paths, c, limit_s))
            p50, p99 = pct(lat)
            rows.append([str(c), str(len(lat)), f"{len(lat) / wall:,.0f}", f"{p50:.2f}", f"{p99:.2f}", str(errors)])
            print("  ", bundle.name, " | ".join(rows[-1]), flush=True)
        hwm = 0.0
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM"):
                        hwm = int(line.split()[1]) / 1024
        except OSError:
            pass
        return rows, hwm
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# --------------------------------------------------------------------------
# 4. online updates
# --------------------------------------------------------------------------
def new_users(X: sp.csr_matrix, n: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, X.shape[0], n)
    rows, cols = [], []
    for r, u in enumerate(src):
        idx = X[int(u)].indices
        keep = idx[rng.random(idx.size) < 0.8]
        if keep.size == 0:
            keep = idx[:1]
        rows.append(np.full(keep.size, r))
        cols.append(keep)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(r.size, np.float32), (r, c)), shape=(n, X.shape[1]))


def online(X: sp.csr_matrix, n_new: int, seed: int, label: str) -> list[list[str]]:
    from cohortrec.recommenders import EASE, GroupRecommender, ItemKNN, UserKNN

    N = new_users(X, n_new, seed)
    full = sp.vstack([X, N], format="csr")
    out = []
    makers = {"UserKNN": lambda: UserKNN(k=50), "ItemKNN": lambda: ItemKNN(k=50),
              "EASE": lambda: EASE(l2=200.0),
              "GroupRecommender": lambda: GroupRecommender(n_groups=8, random_state=seed)}
    runs = [(name, make, {}) for name, make in makers.items()]
    # the item-item models can also keep their item model (update_items=False), as implicit's ALS keeps its
    # item factors: the new users are served from their rows, and the table shows how far that is from a refit
    runs += [(f"{name} (items held)", makers[name], {"update_items": False}) for name in ("ItemKNN", "EASE")]
    refits: dict[str, tuple[float, object]] = {}
    for name, make, kw in runs:
        m = make().fit(X)
        t0 = time.perf_counter()
        m.partial_fit_users(np.arange(X.shape[0], full.shape[0]), N, **kw)
        tp = time.perf_counter() - t0
        base_name = name.split(" (")[0]
        if base_name not in refits:
            t0 = time.perf_counter()
            fitted = make().fit(full)
            refits[base_name] = (time.perf_counter() - t0, fitted)
        tr, ref = refits[base_name]
        users = np.random.default_rng(seed).integers(0, full.shape[0], 300)
        tops = [(m.recommend(int(u), N=10)[0], ref.recommend(int(u), N=10)[0]) for u in users]
        same = np.mean([np.array_equal(a, b) for a, b in tops])
        overlap = np.mean([np.intersect1d(a, b).size / max(b.size, 1) for a, b in tops])
        out.append([label, f"{n_new:,}", name, f"{tp:.3f}", f"{tr:.3f}", f"{tr / tp:.1f}x", f"{same:.1%}",
                    f"{overlap:.1%}"])
        print("  ", " | ".join(out[-1]), flush=True)
    return out


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def table(header: list[str], rows: list[list[str]]) -> str:
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def targets(lat_rows: list[list[str]], assign: list[str], thr_rows: list[list[str]],
            http_rows: dict[str, list[list[str]]], onl_rows: list[list[str]]) -> list[str]:
    """The issue's targets, each with the measured value and met / not met."""
    lat = {r[0]: r for r in lat_rows}

    def f(x: str) -> float:
        return float(x.replace(",", "").rstrip("x"))

    rows = []

    def check(what: str, value: str, ok: bool) -> None:
        rows.append([what, value, "met" if ok else "**not met**"])

    for ours, theirs in (("ItemKNN", "implicit CosineRecommender"), ("EASE", "implicit ALS")):
        if ours in lat and theirs in lat:
            a, b = lat[ours], lat[theirs]
            check(f"{ours} p99 <= {theirs} p99 (wall, `row` calls)", f"{a[3]} vs {b[3]} ms", f(a[3]) <= f(b[3]))
            check(f"{ours} p99 <= {theirs} p99 (CPU, `row` calls)", f"{a[4]} vs {b[4]} ms", f(a[4]) <= f(b[4]))
    for name, r in lat.items():
        if not name.startswith("implicit"):
            rows.append([f"{name} p99 <= 1 ms (wall / CPU, `row` calls)", f"{r[3]} / {r[4]} ms",
                         ("met" if f(r[3]) <= 1.0 else "**not met**") + " / " +
                         ("met" if f(r[4]) <= 1.0 else "**not met**")])
    rows.append(["assign_items p99 <= 0.5 ms (wall / CPU)", f"{assign[1]} / {assign[4]} ms",
                 ("met" if f(assign[1]) <= 0.5 else "**not met**") + " / " +
                 ("met" if f(assign[4]) <= 0.5 else "**not met**")])
    for r in http_rows.get("ItemKNN", []):
        if r[0] == "8":
            check("HTTP ItemKNN, concurrency 8: >= 2,000 requests/s with p99 <= 10 ms",
                  f"{r[2]} requests/s, p99 {r[4]} ms", f(r[2]) >= 2000 and f(r[4]) <= 10)
    for r in thr_rows:
        check(f"{r[0]}: 2 threads >= 1.7x one thread", r[3], f(r[3]) >= 1.7)
    for r in onl_rows:
        if r[1] == f"{1000:,}":
            check(f"partial fit of 1,000 new users >= 20x faster than a refit: {r[2]}, {r[0]}", r[5], f(r[5]) >= 20)
    return ["## Targets of issue 13 (this run, this machine)", "",
            "Wall-time targets are judged on wall time; the CPU column says what the call itself costs when "
            "the shared machine's other jobs preempt it.", "",
            table(["target", "measured", ""], rows), ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=2000, help="users timed per model (default 2000)")
    ap.add_argument("--requests", type=int, default=4000, help="HTTP requests per concurrency level")
    ap.add_argument("--limit", type=float, default=20.0, help="seconds per HTTP level at most")
    ap.add_argument("--thread-seconds", type=float, default=0.5, help="length of every window of the thread test")
    ap.add_argument("--new-users", type=int, default=1000)
    ap.add_argument("--big-users", type=int, default=20000, help="users of the synthetic base of the online test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="fewer users and requests")
    ap.add_argument("--out", default=None, help="result file (default benchmarks/results/serve-<date>.md)")
    args = ap.parse_args()
    if args.quick:
        args.users, args.requests, args.thread_seconds, args.limit, args.big_users = 300, 600, 0.05, 8.0, 5000
    if not (DATA / "ratings.csv").is_file():
        sys.exit(f"ml-latest-small not found at {DATA} (set COHORTREC_DATA)")
    started = _dt.datetime.now()
    t_start = time.perf_counter()
    X = movielens()
    print(f"ml-latest-small positives: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} positives", flush=True)

    print("1. in process", flush=True)
    load_avg("in process")
    lat_rows, fitted = in_process(X, args.users, args.seed)
    assign = assign_latency(X, args.users, args.seed)
    print("   assign_items", assign, flush=True)

    print("2. threads", flush=True)
    load_avg("threads")
    thr_rows = []
    for name, m in fitted.items():
        if name.startswith("implicit"):
            continue
        # the best of REPEATS alternating rounds for each count (as the latency passes): a preempted round on
        # the shared machine says nothing about the model
        one = two = 0.0
        for _ in range(REPEATS):
            one = max(one, thread_throughput(m, X, args.thread_seconds, 1, args.seed))
            two = max(two, thread_throughput(m, X, args.thread_seconds, 2, args.seed))
        thr_rows.append([name, f"{one:,.0f}", f"{two:,.0f}", f"{two / one:.2f}x"])
        print("  ", " | ".join(thr_rows[-1]), flush=True)

    print("3. HTTP", flush=True)
    load_avg("HTTP")
    http_rows: dict[str, list[list[str]]] = {}
    server_mem: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bundles = make_bundles(X, Path(tmp), args.seed)
        from cohortrec.cli._bundle import load_bundle

        user_ids = load_bundle(bundles["ItemKNN"], with_discovery=False).user_ids.tolist()
        for name, path in bundles.items():
            http_rows[name], server_mem[name] = http_levels(path, user_ids, args.requests, args.limit, (1, 8, 32),
                                                            args.seed)

    print("4. online updates", flush=True)
    load_avg("online updates")
    onl_rows = online(X, args.new_users, args.seed, "ml-latest-small")
    onl_rows += online(X, 10, args.seed, "ml-latest-small")  # where an update pays: few users
    from datasets import interactions as synthetic

    big = synthetic(args.big_users, 4000, mean_nnz=40, values="ones", seed=args.seed)
    onl_rows += online(big, args.new_users, args.seed, f"synthetic {args.big_users:,} x 4,000")
    wall = (time.perf_counter() - t_start) / 60

    # ------------------------------------------------------------------ write
    date = started.date().isoformat()
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"serve-{date}.md"
    inproc = {r[0]: r for r in lat_rows}
    md = [f"# Serving: one user per request, HTTP and online updates ({date})", "",
          "Command (repository root):", "", "```sh", "python benchmarks/bench_serve.py" +
          (" --quick" if args.quick else ""), "```", "",
          f"Started {started.isoformat(timespec='seconds')}, wall time {wall:.1f} min. "
          f"Peak memory of this process {peak_rss_mib():,.0f} MiB; of the server "
          + ", ".join(f"{k} {v:,.0f} MiB" for k, v in server_mem.items()) + ".", "",
          "Load average (1 / 5 / 15 min) at the start of each section, on a machine shared with other jobs:", "",
          table(["section", "load average"], [[a, b] for a, b in LOADS]), "",
          "One BLAS / OpenMP thread for every library (OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1): per-request "
          "work is small and concurrency comes from requests. Timings on this shared 2-core machine are noisy; "
          "compare within the run.", "",
          "## Machine", "", table(["", ""], [[k, v] for k, v in machine_info().items()]), "",
          "## Versions", "", table(["", ""], [[k, v] for k, v in library_versions(
              ("cohortrec", "numpy", "scipy", "implicit", "starlette", "uvicorn", "prometheus_client")).items()]), "",
          f"## 1. In process: one user's top-10 on ml-latest-small ({X.shape[0]} users x {X.shape[1]} items, "
          f"{X.nnz} positives, rating >= 4, binary), {args.users} random users, warm, one thread", "",
          "`row`: `recommend(u, X[u], N=10)` as implicit is called (rows sliced before timing); `no row`: "
          "`recommend(u, N=10)`; `batch [u]`: the batch machinery for one user, `recommend([u], X[u])` "
          "(300 users; this is the path every call took before the per-request path, though EASE's and the "
          "neighbour models' batch scoring is now faster too: issue 13 measured EASE at 184 / 325 ms, ItemKNN "
          "0.49 / 0.63, UserKNN 0.25 / 0.37, GroupRecommender 0.49 / 1.56 ms). Each percentile is the "
          f"smallest over {REPEATS} passes over the same users (all libraries alike).", "",
          "`CPU p99`: the 99th percentile of the calling thread's CPU time per call (what the call costs, "
          "without the time slices of other jobs that preempted it).", "",
          table(["model", "fit s", "row p50 ms", "row p99 ms", "row CPU p99 ms", "no row p50 ms", "no row p99 ms",
                 "no row CPU p99 ms", "batch [u] p50 / p99 ms"], lat_rows), "",
          f"`GroupDiscovery.assign_items` (one new user, a fifth of a real user's items, SVD encoder, 8 groups): "
          f"p50 {assign[0]} ms, p99 {assign[1]} ms (CPU p99 {assign[4]} ms); `assign` from an event frame "
          f"(`Interactions.from_frame` + `assign`): p50 {assign[2]} ms, p99 {assign[3]} ms.", "",
          "## 2. Threads: one-user requests/s (`recommend(u, N=10)`), "
          f"windows of {args.thread_seconds:g} s (the threads stop at a common deadline), the best of {REPEATS} "
          "alternating rounds for each", "",
          table(["model", "1 thread", "2 threads", "2 / 1"], thr_rows), "",
          "## 3. HTTP (loopback): `GET /recommend?user=ID&n=10`", "",
          f"`cohortrec serve` in a subprocess (uvicorn, one process, model calls on the event loop), an asyncio "
          f"keep-alive client in the benchmark process on the same 2 cores; {args.requests} requests per level "
          f"(after 200 warm-up requests), at most {args.limit:.0f} s per level.", ""]
    for name, rows in http_rows.items():
        ip = inproc.get(name)
        beside = f" In process, same model: p50 {ip[5]} ms, p99 {ip[6]} ms." if ip else ""
        md += [f"**{name}** bundle.{beside}", "",
               table(["concurrency", "requests", "requests/s", "p50 ms", "p99 ms", "non-200"], rows), ""]
    md += [f"## 4. Online updates: `partial_fit_users` of {args.new_users} new users vs a refit", "",
           f"The model is fit on the base users (ml-latest-small's {X.shape[0]}, or a synthetic Zipf matrix of "
           f"{args.big_users:,} users x 4,000 items, ~40 items per user, from `benchmarks/datasets.py`); the new "
           "users are base users' rows resampled (each keeps ~80 % of the items); the refit is on base + new. "
           "`same top-10`: share of 300 random users whose top-10 after the partial fit equals the refit's, "
           "`top-10 overlap`: mean share of the refit's top-10 it holds "
           "(GroupRecommender's refit re-clusters, the partial fit keeps the groups; `(items held)`: "
           "`update_items=False`, the item model as fitted on the base).", "",
           table(["base", "new users", "model", "partial fit s", "refit s", "speed-up", "same top-10",
                  "top-10 overlap"], onl_rows), ""]
    md += targets(lat_rows, assign, thr_rows, http_rows, onl_rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md) + "\n")
    print(f"wrote {out} ({wall:.1f} min)")


if __name__ == "__main__":
    main()
