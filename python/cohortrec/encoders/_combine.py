"""Combining behaviour and text views of users."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cohortrec._validation import l2_normalize_rows

__all__ = ["combine_views"]


def combine_views(blocks: Sequence[Any], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted concatenation of row-normalised embedding blocks.

    Each block (n_users x d_b) is L2-normalised row by row and scaled by
    ``sqrt(w_b / sum(w))``, so the result has unit rows and the squared
    Euclidean distance (and cosine) of two users is the weighted average of
    the per-view distances (cosines).

    Parameters
    ----------
    blocks : sequence of array-like, each of shape (n_users, d_b)
    weights : sequence of float, optional
        Non-negative weight per block (default equal).

    Returns
    -------
    ndarray of shape (n_users, sum d_b)
    """
    blocks = [np.asarray(b, dtype=np.float64) for b in blocks]
    if not blocks:
        raise ValueError("blocks must hold at least one array")
    n = blocks[0].shape[0]
    for i, b in enumerate(blocks):
        if b.ndim != 2 or b.shape[0] != n:
            raise ValueError(f"blocks[{i}] must be 2-D with {n} rows, got shape {b.shape}")
    w = np.ones(len(blocks)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(blocks),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be {len(blocks)} non-negative numbers with a positive sum, got {weights!r}")
    w = w / w.sum()
    return np.hstack([l2_normalize_rows(b) * np.sqrt(wi) for b, wi in zip(blocks, w)])
