"""``cohortrec info``: version, devices, CUDA build status, threads, optional parts."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import shutil
from typing import Any

from cohortrec.cli._common import Console

__all__ = ["collect_info", "run_info"]

OPTIONAL = (("torch", "torch"), ("safetensors", "safetensors"), ("sentence-transformers", "sentence_transformers"),
            ("dask", "dask"), ("distributed", "distributed"), ("pyarrow", "pyarrow"),
            ("matplotlib", "matplotlib"), ("tqdm", "tqdm"), ("implicit", "implicit"))


def _version(dist: str, module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def collect_info() -> dict[str, Any]:
    """What ``cohortrec info`` prints, as a dict."""
    import cohortrec  # noqa: PLC0415
    from cohortrec import _core  # noqa: PLC0415
    from cohortrec._backend import cuda_unavailable_reason, n_threads_default  # noqa: PLC0415

    try:
        importlib.import_module("cohortrec._cuda")
        cuda_built, why_not_built = True, ""
    except ImportError as exc:
        cuda_built, why_not_built = False, f"not built ({exc})"
    reason = cuda_unavailable_reason()
    info: dict[str, Any] = {
        "cohortrec": cohortrec.__version__,
        "devices": cohortrec.devices(),
        "cuda module built": cuda_built,
        "cuda": "usable" if not reason else reason,
        "threads": n_threads_default(),
        "openmp": bool(getattr(_core, "has_openmp", False)),
    }
    if not cuda_built:
        info["cuda"] = why_not_built + "; rebuild with nvcc on PATH or COHORTREC_CUDA=ON to get it"
    isa = getattr(_core, "isa", None)
    if callable(isa):
        try:
            info["cpu kernels"] = isa()
        except Exception:  # noqa: BLE001 - informational only
            pass
    info["optional"] = {name: _version(name, mod) for name, mod in OPTIONAL}
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "chrome")
                    if shutil.which(b)), None)
    info["chromium (report test)"] = browser
    return info


def run_info(args: argparse.Namespace, console: Console) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    lines = []
    for k, v in info.items():
        if k == "optional":
            lines.append("optional:")
            lines += [f"  {name}: {ver or 'not installed'}" for name, ver in v.items()]
            continue
        if isinstance(v, list):
            v = ", ".join(v)
        elif isinstance(v, bool):
            v = "yes" if v else "no"
        elif v is None:
            v = "not found"
        lines.append(f"{k}: {v}")
    print("\n".join(lines))
    return 0
