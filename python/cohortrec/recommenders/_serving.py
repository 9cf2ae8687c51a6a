"""Helpers of the per-request (one user) scoring path shared by the recommenders."""

from __future__ import annotations

import numpy as np

from cohortrec.ops import DualModel, ModelCsr, user_topn_dense, user_topn_dual, user_topn_sparse

__all__ = ["dense_one", "dual_one", "sparse_one"]


def _one_row(exclude: np.ndarray | None) -> np.ndarray | None:
    return None if exclude is None else np.array([0, exclude.size], dtype=np.int64)


def sparse_one(R: ModelCsr, idx: np.ndarray, val: np.ndarray, n: int, exclude: np.ndarray | None,
               keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` of one query row ``(idx, val)`` times a prepared sparse model matrix.

    The same candidates and float32 scores as :func:`cohortrec.ops.topk_scores`
    on the one-row matrix; one thread (requests run in parallel instead). The
    row's values were validated by the caller (the model's own state, or a
    row checked finite by the fast path).
    """
    ids, sc = user_topn_sparse(np.array([0, idx.size], dtype=np.int64), idx, val, R, n, keep=keep,
                               e_indptr=_one_row(exclude), e_indices=exclude, n_threads=1,
                               check=False)
    return ids[0], sc[0]


def dense_one(B: np.ndarray, idx: np.ndarray, val: np.ndarray, n: int, exclude: np.ndarray | None,
              keep: np.ndarray | None, drop_zero: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` of one query row ``(idx, val)`` times a dense model matrix (EASE)."""
    ids, sc = user_topn_dense(np.array([0, idx.size], dtype=np.int64), idx, val, B, n, keep=keep,
                              e_indptr=_one_row(exclude), e_indices=exclude, drop_zero=drop_zero,
                              n_threads=1, check=False)
    return ids[0], sc[0]


def dual_one(D: DualModel, idx: np.ndarray, val: np.ndarray, n: int, exclude: np.ndarray | None,
             keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` of one query row ``(idx, val)`` scored by EASE's dual form (zero scores dropped)."""
    ids, sc = user_topn_dual(np.array([0, idx.size], dtype=np.int64), idx, val, D, n, keep=keep,
                             e_indptr=_one_row(exclude), e_indices=exclude, n_threads=1, check=False)
    return ids[0], sc[0]
