"""Shared pieces of the command-line interface: errors, messages, stages and timings."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["CLIError", "Console", "format_table"]


class CLIError(Exception):
    """Bad input or an impossible request: reported as one line, exit code 2."""


class Console:
    """Messages and progress on stderr; results go to stdout.

    Parameters
    ----------
    quiet : bool
        No messages and no progress bars (errors and warnings still show).
    stream : file, optional
        Where messages go (default ``sys.stderr``).
    """

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.timings: dict[str, float] = {}
        #: peak resident memory (GiB) of the process during every stage (Linux; else the peak so far)
        self.peak_rss: dict[str, float] = {}

    @property
    def bars(self) -> bool:
        """Whether progress bars are shown (not quiet and stderr is a terminal)."""
        return not self.quiet and bool(getattr(self.stream, "isatty", lambda: False)())

    def say(self, message: str) -> None:
        """A progress message (suppressed with ``--quiet``)."""
        if not self.quiet:
            print(message, file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        """A one-line warning (shown even with ``--quiet``)."""
        print(f"cohortrec: warning: {one_line(message)}", file=self.stream, flush=True)

    def progress(self, iterable: Any = None, *, total: int | None = None, desc: str = "") -> Any:
        """A tqdm bar on stderr, disabled when quiet or not a terminal."""
        from tqdm.auto import tqdm  # noqa: PLC0415

        return tqdm(iterable, total=total, desc=desc, disable=not self.bars, file=self.stream, leave=False,
                    dynamic_ncols=True)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage (kept in :attr:`timings`) and report it when done.

        On a terminal a transient status line with the elapsed time shows
        while the stage runs (it is cleared afterwards, so a failing stage
        leaves only the one-line error).
        """
        status = None
        if self.bars:
            from tqdm.auto import tqdm  # noqa: PLC0415

            status = tqdm(total=None, desc=f"- {name}", bar_format="{desc} ... {elapsed}", file=self.stream,
                          leave=False)
        t = time.perf_counter()
        _reset_peak_rss()
        beat = None
        if status is None and not self.quiet:
            beat = _Heartbeat(self, name)
        try:
            yield
        finally:
            dt = time.perf_counter() - t
            if status is not None:
                status.close()
            if beat is not None:
                beat.stop()
        self.timings[name] = self.timings.get(name, 0.0) + dt
        peak = peak_rss_gib()
        if peak is not None:
            self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), peak)
        self.say(f"- {name}: {dt:.2f} s" + (f" (peak memory {peak:.2f} GiB)" if peak is not None and dt >= 2.0
                                             else ""))

    def report_timings(self) -> None:
        """The time of every stage, and the total, on stderr."""
        if self.quiet or not self.timings:
            return
        width = max(len(k) for k in self.timings)
        lines = ["timings:"]
        lines += [f"  {k:<{width}}  {v:8.2f} s" for k, v in self.timings.items()]
        lines.append(f"  {'total':<{width}}  {sum(self.timings.values()):8.2f} s")
        print("\n".join(lines), file=self.stream, flush=True)


class _Heartbeat:
    """A line every ``interval`` seconds while a stage runs (stderr not a terminal), so a job log
    shows the run is alive even in a stage without its own progress lines."""

    interval = 30.0

    def __init__(self, console: Console, name: str) -> None:
        self._console = console
        self._name = name
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="cohortrec-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            peak = peak_rss_gib()
            mem = f", memory {peak:.2f} GiB" if peak is not None else ""
            self._console.say(f"  ... {self._name}: running for {time.perf_counter() - self._t0:.0f} s{mem}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


def _reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS counter (Linux: ``/proc/self/clear_refs``); no-op elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_rss_gib() -> float | None:
    """Peak resident memory (GiB) since the last reset (VmHWM), else of the whole process; None if unknown."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource  # noqa: PLC0415

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    except (ImportError, OSError):
        return None


def one_line(message: Any) -> str:
    """``message`` as a single line (newlines folded, surrounding space trimmed)."""
    return " ".join(str(message).split())


def format_table(rows: list[dict[str, Any]], columns: list[str], *, floats: str = "{:.4f}",
                 formats: dict[str, str] | None = None) -> str:
    """A plain-text table with aligned columns (numbers right-aligned).

    ``floats`` formats float cells; ``formats`` overrides it per column.
    """
    def cell(v: Any, col: str) -> str:
        if isinstance(v, float):
            return (formats or {}).get(col, floats).format(v)
        return "" if v is None else str(v)

    cells = [[cell(r.get(c), c) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows)
               for c in columns]
    out = ["  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(columns, widths, numeric)).rstrip()]
    for row in cells:
        out.append("  ".join(v.rjust(w) if num else v.ljust(w)
                             for v, w, num in zip(row, widths, numeric)).rstrip())
    return "\n".join(out)


def check_device_available(device: str) -> None:
    """A one-line :class:`CLIError` when ``--device cuda`` cannot be honoured here."""
    if device == "cuda":
        from cohortrec import ops  # noqa: PLC0415 - keeps `cohortrec --help` light

        if "cuda" not in ops.devices():
            raise CLIError(f"--device cuda is not available: {ops.cuda_unavailable_reason()}")
