"""The small harness shared by the per-op benchmarks (``bench_cosine_topk.py``,
``bench_kmeans_step.py``, ``bench_topk_scores.py``) and ``compare.py``.

It does the parts every comparison needs, the same way for every op:

* **environment** -- :func:`prepare_env` fixes the thread variables and drops
  the ``OPENBLAS_*`` variables that force a slow kernel; it must run before
  NumPy is imported, so this module imports only the standard library at
  import time (NumPy, SciPy and threadpoolctl are imported inside functions);
* **command line** -- :func:`parser` has the flags of ``compare.py`` (``--quick``,
  ``--threads``, ``--repeats``, ``--budget``, ``--device``, ``--ops-module``,
  ``--anchors-only``, ``--wait-idle``, ``--seed``, ``--out``, ``--json``);
* **timing** -- :func:`timeit`: one warm-up run (its output is what the
  correctness checks use), then up to ``repeats`` timed runs within a budget;
* **peak memory** -- :class:`PeakRSS`: the process's resident-set high-water
  mark over the warm-up run, above the resident set before it (native
  allocations and every thread included, which ``tracemalloc`` misses). On
  Linux the kernel's mark is reset first (``/proc/self/clear_refs``), after a
  ``gc.collect()`` and ``malloc_trim(0)`` so freed memory kept by the
  allocator does not hide the next allocation; elsewhere a thread samples
  the resident set every 2 ms;
* **bookkeeping and output** -- :class:`Case` / :class:`Row`, :func:`check`,
  ratio tables (anchor time / cohortrec time, > 1 means cohortrec is faster),
  and the results Markdown with the machine and versions from ``_machine.py``
  and the exact command (:func:`main`).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime as _dt
import functools
import gc
import importlib
import json
import os
import shlex
import statistics
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from _machine import git_revision, machine_info

ANCHOR_MODULES = ("numpy", "scipy", "sklearn", "sparse_dot_topn", "implicit", "faiss", "threadpoolctl")
_SLOW_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REMOVED_ENV: dict[str, str] = {}


# --------------------------------------------------------------------------
# Environment and command line
# --------------------------------------------------------------------------


def prepare_env(threads: int) -> None:
    """Set the thread variables and drop the OpenBLAS variables that force a
    slow kernel on this machine. OpenBLAS reads them when it is loaded, so
    call this before NumPy is imported (``"numpy" in sys.modules`` is a bug)."""
    for var in _SLOW_BLAS_VARS:
        if var in os.environ:
            REMOVED_ENV[var] = os.environ.pop(var)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def parser(description: str) -> argparse.ArgumentParser:
    """The flags every op benchmark (and ``compare.py``) takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes")
    p.add_argument("--threads", type=int, default=2, help="threads for every library")
    p.add_argument("--repeats", type=int, default=3, help="max timed repeats per library")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds per library per case for timed repeats (default 15, --quick 8); a first run "
                        "slower than this is reported as the (single, cold) timing")
    p.add_argument("--device", default="cpu", help="device= passed to cohortrec.ops (default cpu)")
    p.add_argument("--ops-module", default="cohortrec.ops",
                   help="module implementing the cohortrec.ops API (e.g. reference_ops to test this harness "
                        "with the slow NumPy reference)")
    p.add_argument("--anchors-only", action="store_true", help="do not import cohortrec; time the anchors only")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before starting, wait up to SECONDS for other processes to use < 0.2 CPUs "
                        "(measured over 5 s windows)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None,
                   help="Markdown results file ('-' to skip writing; default benchmarks/results/<name>-<date>.md, "
                        "<name>-<date>-quick.md with --quick)")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="also write the rows (times, peak memory, ratios, checks) as JSON")
    return p


def finish_args(args: argparse.Namespace, stem: str) -> argparse.Namespace:
    """Fill in the defaults that depend on --quick."""
    if args.out is None:
        suffix = "-quick" if args.quick else ""
        args.out = os.path.join(HERE, "results", f"{stem}-{_dt.date.today().isoformat()}{suffix}.md")
    if args.budget is None:
        args.budget = 8.0 if args.quick else 15.0
    return args


# --------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------


@dataclass
class Timing:
    times: list
    cold: bool = False  # True: only the first (cold) run was timed
    peak_mib: float | None = None  # RSS high-water mark over the first run, above the RSS before it

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


@dataclass
class Row:
    library: str
    timing: Timing | None = None
    error: str | None = None
    note: str = ""
    gflops: float | None = None  # for k-means rows


@dataclass
class Case:
    group: str
    name: str
    data: str
    rows: list = field(default_factory=list)
    checks: list = field(default_factory=list)  # (what, ok, detail)
    notes: list = field(default_factory=list)
    snap: tuple = field(default_factory=lambda: cpu_snapshot())
    load: float | None = None  # CPUs used by other processes during the case


CASES: list[Case] = []
LOG_LINES: list[str] = []


def log(msg: str = "") -> None:
    print(msg, flush=True)
    LOG_LINES.append(msg)


def new_case(group: str, name: str, data: str = "") -> Case:
    case = Case(group, name, data)
    CASES.append(case)
    log(f"\n== {name}")
    return case


def check(case: Case, what: str, ok: Any, detail: str = "") -> bool:
    case.checks.append((what, bool(ok), detail))
    log(f"  check {'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")
    return bool(ok)


def fmt_examples(idx, *cols, limit: int = 5) -> str:
    """'(i, a[i], b[i]); ...' for the first `limit` entries: failure details."""
    def fmt(v):
        return f"{v:.6g}" if isinstance(v, float) or type(v).__name__.startswith("float") else str(v)

    return "; ".join("(" + ", ".join(fmt(c[t]) for c in (idx, *cols)) + ")" for t in range(min(limit, len(idx))))


# --------------------------------------------------------------------------
# Load of the machine
# --------------------------------------------------------------------------


def cpu_snapshot() -> tuple[float, float, float]:
    """(wall, machine busy CPU-seconds, this process's CPU-seconds)."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
        idle = f[3] + (f[4] if len(f) > 4 else 0)
        busy = (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        busy = float("nan")
    t = os.times()
    return time.perf_counter(), busy, t.user + t.system


def other_load(a, b) -> float:
    """Average number of CPUs kept busy by *other* processes between two
    snapshots (0 = machine was otherwise idle)."""
    wall = b[0] - a[0]
    if wall <= 0:
        return float("nan")
    return max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / wall)


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def wait_idle(limit_s: float, threshold: float = 0.2, window: float = 5.0, needed: int = 6) -> bool:
    """Wait until `needed` consecutive windows had other load < threshold."""
    deadline = time.perf_counter() + limit_s
    quiet = 0
    while True:
        a = cpu_snapshot()
        time.sleep(window)
        load = other_load(a, cpu_snapshot())
        quiet = quiet + 1 if load < threshold else 0
        if quiet >= needed:
            log(f"machine idle for {needed * window:.0f}s (other load {load:.2f} CPUs)")
            return True
        if time.perf_counter() > deadline:
            log(f"WARNING: machine still busy after {limit_s:.0f}s (other load {load:.2f} CPUs); starting anyway")
            return False


# --------------------------------------------------------------------------
# Peak memory and timing
# --------------------------------------------------------------------------


def _status_kib(*keys: str) -> dict[str, int]:
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except (OSError, ValueError):
        pass
    return out


def _rss_kib() -> int | None:
    return _status_kib("VmRSS").get("VmRSS")


_LIBC = None


def _trim() -> None:
    """Collect garbage and give freed heap memory back to the OS (glibc)."""
    global _LIBC
    gc.collect()
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim(0)
        except (OSError, AttributeError):
            _LIBC = False
            return
    elif _LIBC:
        _LIBC.malloc_trim(0)


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # "5": reset the peak RSS to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


class PeakRSS:
    """``with PeakRSS() as p: ...`` then ``p.mib``: the most resident memory the
    process held during the block above what it held before it, in MiB
    (None when the platform gives no way to measure it)."""

    def __init__(self) -> None:
        self.mib: float | None = None
        self._stop = threading.Event()
        self._peak = 0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRSS:
        _trim()
        self._base = _rss_kib()
        self._hwm = _reset_hwm()
        if not self._hwm and self._base is not None:
            self._peak = self._base
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            rss = _rss_kib()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __exit__(self, *exc) -> None:
        if self._base is None:
            return
        if self._hwm:
            peak = _status_kib("VmHWM").get("VmHWM", self._base)
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _rss_kib() or 0)
        self.mib = max(0, peak - self._base) / 1024.0


def timeit(fn: Callable[[], Any], *, repeats: int, budget: float) -> tuple[Timing, Any]:
    """Run fn once (warm-up; its output is returned for the correctness
    checks, and its peak memory is measured), then time up to `repeats`
    further runs within `budget` seconds (``gc.collect()`` before each, no
    memory measurement). If the first run alone exceeds `budget`, it is the
    only timing (marked cold). The peak includes what the first call of a
    library costs once (lazy imports, thread pools): a few MiB."""
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        out = fn()
        first = time.perf_counter() - t0
    if first > budget:
        return Timing([first], cold=True, peak_mib=mem.mib), out
    n = int(max(1, min(repeats, budget // max(first, 1e-9))))
    times = []
    for _ in range(n):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(times, peak_mib=mem.mib), out


def run_lib(case: Case, library: str, fn: Callable[[], Any], *, args, note: str = ""):
    """Time `fn` for `library` into a new row of `case`; an exception is
    recorded in the row (and returns (None, None)) instead of raising."""
    try:
        timing, out = timeit(fn, repeats=args.repeats, budget=args.budget)
    except Exception as exc:  # recorded: the table shows the error, the exit status counts it
        tb = traceback.format_exc(limit=3)
        case.rows.append(Row(library, error=f"{type(exc).__name__}: {exc}", note=note))
        log(f"  {library}: ERROR {type(exc).__name__}: {exc}\n{tb}")
        return None, None
    row = Row(library, timing=timing, note=note)
    case.rows.append(row)
    log(f"  {library}: best {timing.best:.4f}s median {timing.median:.4f}s "
        f"(n={len(timing.times)}{', cold' if timing.cold else ''}), peak +{_mib(timing.peak_mib)}")
    return row, out


def per_iteration(case: Case, library: str, fit: Callable[[int], Any], *, n_extra: int, iterations: Callable,
                  args, note: str, flops: float | None = None):
    """Per-iteration time of an iterative fit by differencing: (fit(1 + n_extra)
    - fit(1)) / (iterations(long) - iterations(short)), which cancels the fit's
    fixed costs (validation, copies, a final pass). Adds a row whose "best"
    is the difference of the best fits and "median" that of the medians;
    returns the fit(1) result (for centre checks) or None on error."""
    try:
        t1, short = timeit(lambda: fit(1), repeats=args.repeats, budget=args.budget)
        tN, long = timeit(lambda: fit(1 + n_extra), repeats=args.repeats, budget=args.budget)
        it = iterations(long) - iterations(short)
        if it <= 0:
            raise RuntimeError(f"{library} converged early (iterations {iterations(short)}, {iterations(long)})")
        per = Timing([max((tN.best - t1.best) / it, 1e-9), max((tN.median - t1.median) / it, 1e-9)],
                     peak_mib=tN.peak_mib)
    except Exception as exc:  # recorded in the table
        case.rows.append(Row(library, error=f"{type(exc).__name__}: {exc}"))
        log(f"  {library}: ERROR {exc}")
        return None
    case.rows.append(Row(library, timing=per, note=f"{note}; {library} fit with 1 iteration = {t1.best:.3f}s",
                         gflops=flops / per.best / 1e9 if flops else None))
    log(f"  {library}: per-iter {per.best:.4f}s (1 iteration {t1.best:.3f}s, {1 + n_extra} iterations "
        f"{tN.best:.3f}s, differing by {it}), peak +{_mib(tN.peak_mib)}")
    return short


@functools.lru_cache(maxsize=None)
def interactions(n_users: int, n_items: int, seed: int, zipf_exponent: float = 1.0):
    """``datasets.interactions``, built once per run (the cases of several ops share it)."""
    import datasets

    t0 = time.perf_counter()
    X = datasets.interactions(n_users, n_items, seed=seed, zipf_exponent=zipf_exponent)
    log(f"  data: {datasets.describe_sparse(X)} (built in {time.perf_counter() - t0:.1f}s)")
    return X


# --------------------------------------------------------------------------
# Libraries
# --------------------------------------------------------------------------


def opt_import(name: str):
    """The module, or None when it is not installed (or fails to import)."""
    try:
        return importlib.import_module(name)
    except Exception:  # an anchor that fails to import is reported as missing
        return None


def load_ops(args) -> tuple[Any, str | None]:
    if args.anchors_only:
        return None, "skipped (--anchors-only)"
    try:
        return importlib.import_module(args.ops_module), None
    except Exception as exc:  # reported in the results file; the anchors still run
        return None, f"not importable: {type(exc).__name__}: {exc}"


def versions(ops) -> dict[str, str]:
    vs = {}
    for name in ANCHOR_MODULES:
        mod = opt_import(name)
        vs[name] = getattr(mod, "__version__", "?") if mod is not None else "not installed"
    if ops is not None and not ops.__name__.startswith("cohortrec"):
        vs["ops module"] = f"{ops.__name__} ({ops.__file__}) -- NOT cohortrec"
    elif ops is not None:
        import cohortrec

        where = os.path.dirname(cohortrec.__file__)
        rev = git_revision() if where.startswith(os.path.dirname(HERE)) else "not this checkout"
        vs["cohortrec"] = f"{getattr(cohortrec, '__version__', '?')} (git {rev})"
        vs["cohortrec location"] = where
    return vs


def blas_info() -> list[dict]:
    import threadpoolctl

    return [{"user_api": i.get("user_api"), "internal_api": i.get("internal_api"),
             "lib": os.path.basename(i.get("filepath", "")), "version": i.get("version"),
             "architecture (kernel)": i.get("architecture", "-"), "threading": i.get("threading_layer", "-"),
             "num_threads": i.get("num_threads")} for i in threadpoolctl.threadpool_info()]


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


def _t(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f} s"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1e3:.1f} ms"


def _mib(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} MiB" if x < 10 else f"{x:.0f} MiB"


def _cohortrec_row(case: Case) -> Row | None:
    return next((r for r in case.rows if r.library == "cohortrec" and r.timing), None)


def ratio(case: Case, row: Row) -> float | None:
    """anchor best time / cohortrec best time (> 1: cohortrec is faster)."""
    co = _cohortrec_row(case)
    if co is None or row.timing is None or row.library.startswith("cohortrec"):
        return None
    return row.timing.best / co.timing.best


def case_table(case: Case, gemm: float | None) -> list[str]:
    co = _cohortrec_row(case)
    has_gf = any(r.gflops for r in case.rows)
    hdr = ["library", "best", "median", "runs", "anchor / cohortrec", "peak memory"]
    if has_gf:
        hdr += ["GFLOP/s (assign flops / time)", "% of GEMM"]
    hdr += ["how"]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r in case.rows:
        if r.timing is None:
            cells = [r.library, "ERROR", "", "", "", ""] + (["", ""] if has_gf else [])
            cells.append(f"{r.error} {r.note}".strip())
        else:
            rt = ratio(case, r)
            shown = f"{rt:.2f}x" if rt is not None else ("1.00x" if r is co else "-")
            runs = "diff" if r.library in ("scikit-learn", "faiss") else \
                f"{len(r.timing.times)}{' (cold)' if r.timing.cold else ''}"
            cells = [r.library, _t(r.timing.best), _t(r.timing.median), runs, shown, _mib(r.timing.peak_mib)]
            if has_gf:
                cells += [f"{r.gflops:.1f}" if r.gflops else "-",
                          f"{100 * r.gflops / gemm:.0f}%" if (r.gflops and gemm) else "-"]
            cells.append(r.note)
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return lines


def summary_table() -> list[str]:
    lines = ["| case | cohortrec | anchor | anchor time | anchor / cohortrec | peak memory cohortrec / anchor "
             "| correctness | other load |",
             "|---|---|---|---|---|---|---|---|"]
    for c in CASES:
        co = _cohortrec_row(c)
        nfail = sum(1 for _, ok, _ in c.checks if not ok)
        corr = "-" if not c.checks else ("ok" if nfail == 0 else f"**{nfail} FAIL**")
        for r in c.rows:
            if r.library.startswith("cohortrec"):
                continue
            rt = ratio(c, r)
            mem = f"{_mib(co.timing.peak_mib)} / {_mib(r.timing.peak_mib)}" if (co and r.timing) else "-"
            lines.append(f"| {c.name} | {_t(co.timing.best) if co else '-'} | {r.library} | "
                         f"{_t(r.timing.best) if r.timing else 'ERROR'} | "
                         f"{'-' if rt is None else f'{rt:.2f}x'} | {mem} | {corr} | "
                         f"{'-' if c.load is None else f'{c.load:.2f}'} |")
    return lines


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def _command() -> str:
    return shlex.join([sys.executable] + sys.argv)


def write_text(path: str, text: str) -> None:
    """Write a results file (creating its folder) and say so."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)
    print(f"wrote {path}", flush=True)


def write_markdown(path, args, ops, ops_err, gemm, started, elapsed, run_load, title) -> None:
    env_note = ("removed by the script before numpy was imported: "
                + ", ".join(f"{k}={v}" for k, v in REMOVED_ENV.items())) if REMOVED_ENV else "not set"
    lines = [f"# {title} ({started:%Y-%m-%d %H:%M})", "",
             f"Generated by `benchmarks/{os.path.basename(sys.argv[0])}`; ratios are anchor_time / cohortrec_time "
             "on best-of-n times (> 1 means cohortrec is faster); peak memory is the process's resident-set "
             "high-water mark during each library's first run, above its resident set before that run. See "
             "benchmarks/README.md for what each case measures.",
             "", "## Command", "", "```", f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE {_command()}", "```", "",
             f"- wall time: {elapsed:.0f} s; threads for every library: {args.threads}; "
             f"cohortrec device: `{args.device}`; seed {args.seed}; quick: {args.quick}",
             f"- OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: {env_note}",
             f"- load average at the start: {STARTED_LOADAVG[0] if STARTED_LOADAVG else '?'}; at the end: {loadavg()}",
             f"- CPU used by other processes during the run: {run_load:.2f} CPUs on average (the 'other load' "
             "column gives it per case; above ~0.2 the timings are disturbed)",
             f"- OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
             f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} (set by the script); threadpoolctl "
             f"limit {args.threads}; sparse_dot_topn n_threads, implicit num_threads, faiss.omp_set_num_threads "
             f"and cohortrec n_threads all = {args.threads}"]
    if ops is None:
        lines.append(f"- **cohortrec: {ops_err}** -- anchors only")
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in machine_info().items()]
    if gemm:
        lines.append(f"- measured numpy float32 GEMM (4096^3, {args.threads} threads): **{gemm:.1f} GFLOP/s**")
    lines += ["", "## Library versions", ""] + [f"- {k}: {v}" for k, v in versions(ops).items()]
    lines += ["", "## BLAS / OpenMP (threadpoolctl)", ""]
    bi = blas_info()
    if bi:
        keys = list(bi[0].keys())
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in bi]
    lines += ["", "## Summary", ""] + summary_table() + ["", "## Cases", ""]
    for c in CASES:
        lines += [f"### {c.name}", "", f"Data: {c.data}", ""] + case_table(c, gemm)
        lines += [f"\nNote: {note}" for note in c.notes]
        if c.checks:
            lines += ["", "Correctness checks (on the output of each library's first run -- the warm-up, or the "
                      "only timed run for cases marked cold -- before any further timed repeat):", ""]
            lines += [f"- {'ok' if ok else '**FAIL**'} -- {w}{': ' + d if d else ''}" for w, ok, d in c.checks]
        lines.append("")
    write_text(path, "\n".join(lines) + "\n")


def write_json(path: str, args, ops, run_load: float, elapsed: float) -> None:
    """The rows as JSON (for scripts that compare runs, e.g. bench_ab.py)."""
    cases = []
    for c in CASES:
        rows = [{"library": r.library, "error": r.error, "note": r.note,
                 "best": r.timing.best if r.timing else None, "median": r.timing.median if r.timing else None,
                 "runs": len(r.timing.times) if r.timing else 0, "peak_mib": r.timing.peak_mib if r.timing else None,
                 "ratio": ratio(c, r)} for r in c.rows]
        cases.append({"group": c.group, "name": c.name, "load": c.load, "rows": rows,
                      "checks_failed": [w for w, ok, _ in c.checks if not ok], "n_checks": len(c.checks)})
    doc = {"command": _command(), "loadavg_start": STARTED_LOADAVG[0] if STARTED_LOADAVG else None,
           "loadavg_end": loadavg(), "other_load": run_load, "elapsed_s": elapsed, "versions": versions(ops),
           "quick": args.quick, "threads": args.threads, "cases": cases}
    write_text(path, json.dumps(doc, indent=1) + "\n")


STARTED_LOADAVG: list[str] = []


def main(args, groups: list[tuple[str, Callable]], *, title: str = "cohortrec CPU benchmark") -> int:
    """Run each ``(name, bench(args, ops, T, state))`` of `groups`, print the
    tables, write the results file(s); exit status 1 when a correctness
    check fails or a cohortrec call raises."""
    import threadpoolctl

    if args.wait_idle > 0:
        wait_idle(args.wait_idle)
    start_snap = cpu_snapshot()
    STARTED_LOADAVG[:] = [loadavg()]
    log(f"loadavg at start: {STARTED_LOADAVG[0]}")
    started = _dt.datetime.now()
    t_start = time.perf_counter()
    T = args.threads
    threadpoolctl.threadpool_limits(T)
    ops, ops_err = load_ops(args)
    # import the anchors up front so threadpoolctl sees every runtime
    for name in ("sklearn.cluster", "implicit.nearest_neighbours", "sparse_dot_topn"):
        opt_import(name)
    faiss = opt_import("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(T)
    threadpoolctl.threadpool_limits(T)
    log(f"cohortrec: {'available' if ops is not None else ops_err}")
    if REMOVED_ENV:
        log(f"removed before importing numpy: {REMOVED_ENV}")
    for r in blas_info():
        log(f"  {r}")
    state: dict[str, Any] = {}  # what a group leaves for the report (the GEMM rate)
    for _name, bench in groups:
        bench(args, ops, T, state)
    elapsed = time.perf_counter() - t_start
    end_snap = cpu_snapshot()
    for c, nxt in zip(CASES, CASES[1:] + [None]):
        c.load = other_load(c.snap, nxt.snap if nxt is not None else end_snap)
    run_load = other_load(start_snap, end_snap)
    noisy = [c.name for c in CASES if c.load is not None and c.load > 0.2]
    if noisy:
        log(f"\nWARNING: other processes used CPU during: {noisy} -- timings are unreliable")
    gemm = state.get("gemm")
    log("\n\n## Summary")
    for line in summary_table():
        log(line)
    for c in CASES:
        log(f"\n### {c.name}")
        for line in case_table(c, gemm):
            log(line)
    fails = [(c.name, w, d) for c in CASES for (w, ok, d) in c.checks if not ok]
    errors = [(c.name, r.library, r.error) for c in CASES for r in c.rows if r.error]
    if fails:
        log("\nCORRECTNESS FAILURES:")
        for name, w, d in fails:
            log(f"  [{name}] {w}: {d}")
    if errors:
        log("\nERRORS:")
        for name, lib, e in errors:
            log(f"  [{name}] {lib}: {e}")
    log(f"\ntotal {elapsed:.0f}s")
    if args.out and args.out != "-":
        write_markdown(args.out, args, ops, ops_err, gemm, started, elapsed, run_load, title)
    if args.json:
        write_json(args.json, args, ops, run_load, elapsed)
    return 1 if (fails or (ops is not None and any(lib.startswith("cohortrec") for _, lib, _ in errors))) else 0
