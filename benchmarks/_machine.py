"""What a benchmark report says about the machine and the software it ran on.

Shared by the benchmark scripts; importing it has no side effects (no
environment variables set, no libraries loaded).
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):  # no lscpu: the report shows "?"
        return {}
    info = {}
    for line in out.splitlines():
        if ":" in line:
            key, val = line.split(":", 1)
            info[key.strip()] = val.strip()
    return info


def cpu_model() -> str:
    """The CPU's model name (lscpu, else /proc/cpuinfo, else platform)."""
    name = _lscpu().get("Model name")
    if name:
        return name
    try:
        with open("/proc/cpuinfo") as fh:
            return next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")),
                        platform.processor() or "?")
    except OSError:
        return platform.processor() or "?"


def machine_info() -> dict[str, str]:
    """CPU, caches, SIMD, memory, OS and Python, as table rows."""
    info = _lscpu()
    flags = info.get("Flags", "").split()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni") if f in flags]
    mem = "?"
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "cpu model": info.get("Model name", platform.processor() or "?"),
        "cpus (logical)": info.get("CPU(s)", str(os.cpu_count())),
        "cores per socket": info.get("Core(s) per socket", "?"),
        "threads per core": info.get("Thread(s) per core", "?"),
        "sockets": info.get("Socket(s)", "?"),
        "L2 / L3": f"{info.get('L2 cache', '?')} / {info.get('L3 cache', '?')}",
        "hypervisor": info.get("Hypervisor vendor", "none"),
        "simd": " ".join(simd) or "?",
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def git_revision() -> str:
    """Short revision of the checkout, with "+uncommitted changes" when tracked files differ."""
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=False)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):  # no git
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("+uncommitted changes" if dirty.stdout.strip() else "")


def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    """``__version__`` of each importable module ("not installed" otherwise);
    cohortrec's carries the git revision."""
    out = {}
    for name in names:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            out[name] = "not installed"
            continue
        out[name] = getattr(mod, "__version__", "?")
        if name == "cohortrec":
            out[name] += f" (git {git_revision()})"
    return out
