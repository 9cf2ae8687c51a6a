"""User encoders: interaction, text and SVD embeddings, and their combination.

* :class:`InteractionEncoder` - Mult-VAE / Mult-DAE (Liang et al. 2018) in
  PyTorch (imported lazily; ``pip install torch==2.13.0 safetensors``).
* :class:`TextEncoder` - item text to vectors with a sentence-transformers
  model; users get the normalised weighted mean of their items' vectors.
* :class:`SVDEncoder` - truncated SVD of the weighted matrix (no torch).
* :func:`combine_views` - weighted concatenation of normalised blocks.
* :func:`as_matrix` - the validated users x items CSR matrix every encoder reads.
"""

from __future__ import annotations

import importlib
from typing import Any

from cohortrec.encoders._base import as_matrix, check_n_items
from cohortrec.encoders._combine import combine_views
from cohortrec.encoders._svd import SVDEncoder

_LAZY = {
    "InteractionEncoder": "cohortrec.encoders._vae",
    "TextEncoder": "cohortrec.encoders._text",
}

__all__ = ["InteractionEncoder", "SVDEncoder", "TextEncoder", "as_matrix", "check_n_items", "combine_views"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cohortrec.encoders' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
