"""Progress of long loops: a tqdm bar on a terminal, plain periodic lines elsewhere.

A run in a job log (stderr not a terminal) must never be silent for minutes,
and must not fill the log with carriage-return bars either: :class:`Progress`
prints one line every ``interval`` seconds with the stage, done/total, the
rate and the estimated time left, and nothing for loops that end sooner.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress", "format_seconds"]

#: seconds between two plain progress lines
DEFAULT_INTERVAL = 10.0


def format_seconds(s: float) -> str:
    """``75`` -> ``"1:15"``, ``4000`` -> ``"1:06:40"``."""
    s = max(0, int(round(s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """Count work done; show it as a bar on a terminal or as periodic lines.

    Parameters
    ----------
    total : int or None
        Units of work expected (None: unknown; no percentage or ETA).
    desc : str
        What is being done (the start of every line).
    enabled : bool, default True
        False shows nothing.
    stream : file, optional
        Default ``sys.stderr``.
    unit : str, default "it"
    interval : float, default 10
        Seconds between plain lines (the first after ``interval`` seconds).
    bar : bool or None
        Force a tqdm bar (True) or plain lines (False); default: a bar when
        ``stream`` is a terminal.
    """

    def __init__(self, total: int | None, desc: str, *, enabled: bool = True, stream: TextIO | None = None,
                 unit: str = "it", interval: float = DEFAULT_INTERVAL, bar: bool | None = None) -> None:
        self.total = None if total is None else int(total)
        self.desc = desc
        self.enabled = bool(enabled)
        self.stream = stream if stream is not None else sys.stderr
        self.unit = unit
        self.interval = float(interval)
        self.done = 0
        self.postfix = ""
        self._t0 = time.perf_counter()
        self._last = self._t0
        self._bar = None
        if bar is None:
            bar = bool(getattr(self.stream, "isatty", lambda: False)())
        if self.enabled and bar:
            from tqdm.auto import tqdm  # noqa: PLC0415

            self._bar = tqdm(total=self.total, desc=desc, file=self.stream, leave=False, unit=unit,
                             dynamic_ncols=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        """``n`` more units done; ``postfix`` values (e.g. a loss) are shown too."""
        self.done += int(n)
        if postfix:
            self.postfix = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in postfix.items())
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(int(n))
            if postfix:
                self._bar.set_postfix_str(self.postfix, refresh=False)
            return
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float | None = None) -> str:
        """The plain progress line: ``desc: done/total unit (pct), rate, ETA``."""
        now = time.perf_counter() if now is None else now
        el = max(now - self._t0, 1e-9)
        rate = self.done / el
        parts = [f"  {self.desc}: {self.done}" + (f"/{self.total}" if self.total else "") + f" {self.unit}"]
        if self.total:
            parts[0] += f" ({100.0 * self.done / self.total:.0f}%)"
        parts.append(f"{rate:.3g} {self.unit}/s")
        parts.append(f"elapsed {format_seconds(el)}")
        if self.total and rate > 0:
            parts.append(f"ETA {format_seconds(max(self.total - self.done, 0) / rate)}")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
