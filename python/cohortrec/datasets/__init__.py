"""Datasets: the built-in synthetic generators and loaders for public data.

The library never downloads data: loaders read files you already have and
raise a clear error naming the file they expected.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule that defines it (imported on first use)
_EXPORTS = {
    "make_shop": "cohortrec.datasets._synthetic",
    "make_world": "cohortrec.datasets._worlds",
    "world_grid": "cohortrec.datasets._worlds",
    "Dataset": "cohortrec.datasets._loaders",
    "from_events": "cohortrec.datasets._loaders",
    "load_movielens": "cohortrec.datasets._loaders",
    "load_lastfm_hetrec": "cohortrec.datasets._loaders",
    "load_csv": "cohortrec.datasets._loaders",
    "load_parquet": "cohortrec.datasets._loaders",
}

__all__ = [
    "Dataset",
    "from_events",
    "load_csv",
    "load_lastfm_hetrec",
    "load_movielens",
    "load_parquet",
    "make_shop",
    "make_world",
    "world_grid",
]  # the keys of _EXPORTS (a test checks that they agree)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cohortrec.datasets' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
