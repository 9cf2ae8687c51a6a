"""Run-time choice of device and thread count: the one place that decides.

This module and the other ``cohortrec.ops`` modules are the only ones that
import the native modules ``cohortrec._core`` and ``cohortrec._cuda``.

``device="auto"`` picks CUDA when :mod:`cohortrec._cuda` is built, a GPU is
visible, the op has a CUDA kernel *and* the CUDA path passed its parity
self-check in this process (:mod:`cohortrec.ops._selfcheck`); otherwise the
native CPU path. An
explicit ``device="cuda"`` that cannot be honoured raises
:class:`DeviceUnavailableError` saying why; it never falls back silently.
"""

from __future__ import annotations

import functools
import importlib
import os
import warnings
from typing import Any, Literal

from cohortrec import _core
from cohortrec._validation import check_device

Device = Literal["auto", "cpu", "cuda"]


class DeviceUnavailableError(RuntimeError):
    """Raised when ``device="cuda"`` is asked for but cannot be used."""


@functools.lru_cache(maxsize=1)
def _cuda_status() -> tuple[object | None, str]:
    """Returns (module or None, reason it is unusable or "")."""
    try:
        from cohortrec import _cuda  # type: ignore[attr-defined]
    except ImportError as exc:
        return None, f"cohortrec was built without its CUDA module ({exc})"
    try:
        count = _cuda.device_count()
    except RuntimeError as exc:  # no driver, old driver, broken driver
        # Not a warning: a CPU-only machine with the module built is normal.
        # The reason is shown by device="cuda" errors and `cohortrec info`.
        return None, f"the CUDA driver could not be initialised ({exc})"
    if count < 1:
        return None, "no CUDA device is visible"
    return _cuda, ""


def devices() -> list[str]:
    """List the devices usable in this process: ``["cpu"]`` or ``["cpu", "cuda"]``."""
    module, _ = _cuda_status()
    return ["cpu", "cuda"] if module is not None else ["cpu"]


def cuda_unavailable_reason() -> str:
    """Why CUDA cannot be used here ("" when it can)."""
    return _cuda_status()[1]


def resolve_device(device: str, *, op: str, cuda_kernel: bool) -> str:
    """Map ``device`` to ``"cpu"`` or ``"cuda"`` for the op named ``op``.

    ``cuda_kernel`` says whether the op has a CUDA implementation.
    """
    check_device(device)
    module, reason = _cuda_status()
    has_kernel = module is not None and cuda_kernel
    if device == "cpu":
        return "cpu"
    if device == "cuda":
        if module is None:
            raise DeviceUnavailableError(f"device='cuda' was requested for {op}, but {reason}")
        if not has_kernel:
            raise DeviceUnavailableError(
                f"device='cuda' was requested for {op}, but this build has no CUDA kernel for it"
            )
        return "cuda"
    if not has_kernel:
        return "cpu"
    return "cuda" if _auto_cuda_ok(module)[0] else "cpu"


def _auto_cuda_ok(module: object) -> tuple[bool, str]:
    # function-level import: ops._selfcheck runs the ops, which import this module
    from cohortrec.ops._selfcheck import auto_cuda_ok  # noqa: PLC0415

    return auto_cuda_ok(module)


def auto_device() -> tuple[str, str]:
    """(what ``device="auto"`` selects in this process, why not CUDA or "").

    Runs the parity self-check (once) when a CUDA device is usable.
    """
    module, reason = _cuda_status()
    if module is None:
        return "cpu", reason
    ok, why = _auto_cuda_ok(module)
    return ("cuda", "") if ok else ("cpu", f"the CUDA path failed its parity self-check: {why}")


def n_threads_default() -> int:
    """Cores available to this process (respects CPU affinity / cgroups)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(n_threads: int | None) -> int:
    """Validate ``n_threads``; ``None`` means all available cores."""
    if n_threads is None:
        return n_threads_default()
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int,)) and not hasattr(n_threads, "__index__"):
        raise TypeError(f"n_threads must be an int or None, got {type(n_threads).__name__}")
    n = int(n_threads)
    if n < 1:
        raise ValueError(f"n_threads must be >= 1 or None, got {n}")
    if n > 1 and not _core.has_openmp:
        warnings.warn(
            "cohortrec was compiled without OpenMP; ignoring n_threads",
            RuntimeWarning,
            stacklevel=3,
        )
        return 1
    return n


def kernels(device: str) -> Any:
    """The kernel module for a resolved ``device``: ``_core``, or the host adapter of ``_cuda``.

    Both expose the same signatures (``cosine_topk``, ``topk_scores``,
    ``kmeans_assign_dense`` ...), so an op switches devices in one line.
    """
    if device == "cuda":
        from cohortrec.ops import _cuda as cuda_host  # noqa: PLC0415 - ops._cuda imports this module

        return cuda_host
    return _core


has_openmp = bool(_core.has_openmp)


def build_info() -> dict[str, Any]:
    """What the native build offers: OpenMP, the CPU kernels' ISA, the CUDA module."""
    try:
        importlib.import_module("cohortrec._cuda")
        cuda_built, why = True, ""
    except ImportError as exc:
        cuda_built, why = False, f"not built ({exc})"
    return {"openmp": has_openmp, "isa": _core.isa(), "cuda_built": cuda_built, "cuda_not_built_reason": why}
