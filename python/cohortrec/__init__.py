"""cohortrec: discover user groups in interaction data and recommend with them.

The heavy lifting runs in native kernels (:mod:`cohortrec.ops`): C++/OpenMP on
the CPU and CUDA on the GPU, chosen at run time with ``device="auto"``.
Estimators, encoders and recommenders are imported on first use, so
``import cohortrec`` stays light (PyTorch and sentence-transformers are only
loaded by the encoders that need them).
"""

from __future__ import annotations

import importlib
from typing import Any

from cohortrec import ops
from cohortrec._version import __version__
from cohortrec.ops import DeviceUnavailableError, devices, n_threads_default

# public name -> module that defines it (imported lazily)
_LAZY = {
    "Interactions": "cohortrec.interactions",
    "KMeans": "cohortrec.cluster",
    "MiniBatchKMeans": "cohortrec.cluster",
    "DBSCAN": "cohortrec.cluster",
    "GroupDiscovery": "cohortrec.discovery",
    "InteractionEncoder": "cohortrec.encoders",
    "TextEncoder": "cohortrec.encoders",
    "SVDEncoder": "cohortrec.encoders",
    "UserKNN": "cohortrec.recommenders",
    "ItemKNN": "cohortrec.recommenders",
    "Popularity": "cohortrec.recommenders",
    "EASE": "cohortrec.recommenders",
    "GroupRecommender": "cohortrec.recommenders",
}
_SUBMODULES = {"cluster", "datasets", "discovery", "distributed", "encoders", "evaluation",
               "interactions", "preprocessing", "privacy", "recommenders", "report"}

__all__ = sorted(["DeviceUnavailableError", "devices", "n_threads_default", "ops", "__version__",
                  *_LAZY, *_SUBMODULES - {"distributed"}])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"cohortrec.{name}")
    raise AttributeError(f"module 'cohortrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
