"""``cohortrec info``: version, devices, CUDA build status, threads, optional parts."""

from __future__ import annotations

import argparse
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
    from cohortrec import ops  # noqa: PLC0415
    from cohortrec._version import __version__  # noqa: PLC0415

    build = ops.build_info()
    reason = ops.cuda_unavailable_reason()
    auto, why_not_cuda = ops.auto_device()
    info: dict[str, Any] = {
        "cohortrec": __version__,
        "devices": ops.devices(),
        "cuda module built": build["cuda_built"],
        "cuda": "usable" if not reason else reason,
        "auto device": f"{auto} ({why_not_cuda})" if why_not_cuda else auto,
        "threads": ops.n_threads_default(),
        "openmp": build["openmp"],
    }
    if not build["cuda_built"]:
        info["cuda"] = build["cuda_not_built_reason"] + "; rebuild with nvcc on PATH or COHORTREC_CUDA=ON to get it"
    info["cpu kernels"] = build["isa"]
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
