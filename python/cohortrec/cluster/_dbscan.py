"""DBSCAN with cosine distance on sparse top-k neighbourhoods (no n x n matrix)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_array

from cohortrec import ops
from cohortrec._validation import check_sparse_structure

__all__ = ["DBSCAN"]


class DBSCAN(ClusterMixin, BaseEstimator):
    """Density-based clustering with cosine distance (like scikit-learn's DBSCAN).

    The ``eps``-neighbourhood of every row (cosine distance ``<= eps``, i.e.
    cosine similarity ``>= 1 - eps``) comes from
    :func:`cohortrec.ops.cosine_topk` with ``threshold = 1 - eps``: it keeps
    at most ``k`` neighbours per row, so rows whose neighbourhood filled all
    ``k`` slots are recomputed with ``k`` doubled until none is cut off (or
    ``k`` reaches ``n``). Memory is O(threads * n + number of neighbour
    pairs); no n x n distance matrix is built. The labels are those of
    :class:`sklearn.cluster.DBSCAN` with ``metric="cosine"`` (same core
    points, clusters numbered in the same order, border points given to the
    same cluster), up to rounding of similarities within ~1e-7 of
    ``1 - eps``.

    Parameters
    ----------
    eps : float in (0, 1), default 0.5
        Maximum cosine distance between neighbours. (``eps >= 1`` would make
        orthogonal and all-zero rows neighbours, which needs all pairs; it
        is rejected.)
    min_samples : int, default 5
        Neighbourhood weight (the point itself included) for a core point.
    metric : {"cosine"}, default "cosine"
    k : int, default 64
        Neighbours fetched per row in the first pass.
    device : {"auto", "cpu", "cuda"}
    n_threads : int, optional

    Attributes
    ----------
    labels_ : ndarray of int64, shape (n_samples,)
        Cluster of each row; ``-1`` for noise.
    core_sample_indices_ : ndarray of int64
    components_ : ndarray or sparse matrix
        The core rows.
    n_features_in_ : int
    n_neighbors_ : ndarray of int64
        Size of each row's neighbourhood (itself included).
    """

    def __init__(self, eps: float = 0.5, *, min_samples: int = 5, metric: str = "cosine", k: int = 64,
                 device: str = "auto", n_threads: int | None = None) -> None:
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric
        self.k = k
        self.device = device
        self.n_threads = n_threads

    def _neighbourhoods(self, X: sp.csr_matrix) -> sp.csr_matrix:
        n = X.shape[0]
        thr = 1.0 - float(self.eps)
        thr = np.nextafter(thr, -np.inf)  # cosine_topk keeps scores > threshold; DBSCAN wants >=
        k = int(min(max(int(self.k), int(self.min_samples)), max(n - 1, 0)))
        S = ops.cosine_topk(X, k=k, threshold=thr, device=self.device, n_threads=self.n_threads)
        S = sp.csr_matrix(S)
        while True:
            full = np.flatnonzero(np.diff(S.indptr) >= k)
            if full.size == 0 or k >= n - 1:
                break
            k = min(2 * k, n - 1)
            R = ops.cosine_topk(X[full], X, k=k + 1, threshold=thr, device=self.device,
                                n_threads=self.n_threads).tocoo()
            keep = R.col != full[R.row]
            R = sp.csr_matrix((R.data[keep], (full[R.row[keep]], R.col[keep])), shape=(n, n))
            rest = np.ones(n, dtype=bool)
            rest[full] = False
            S = sp.csr_matrix(sp.diags(rest.astype(np.float64)) @ S) + R
            S.eliminate_zeros()
        # a row is in its own neighbourhood, except an all-zero row: its cosine distance to
        # anything, itself included, is 1 in scikit-learn, so its neighbourhood is empty
        nonzero = (np.diff(X.indptr) > 0) & (np.asarray(abs(X).sum(axis=1)).ravel() > 0)
        N = S.tocsr().astype(bool).astype(np.float64) + sp.diags(nonzero.astype(np.float64), format="csr")
        N.eliminate_zeros()
        N.data[:] = 1.0
        return sp.csr_matrix(N)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> DBSCAN:
        """Cluster the rows of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Weight of each row in the core-point count.
        """
        if self.metric != "cosine":
            raise ValueError(f"metric must be 'cosine' (the only metric of this DBSCAN), got {self.metric!r}")
        if not isinstance(self.eps, numbers.Real) or not 0 < float(self.eps) < 1:
            raise ValueError(f"eps must lie in (0, 1) for cosine distance, got {self.eps!r}")
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, numbers.Integral) \
                or self.min_samples < 1:
            raise ValueError(f"min_samples must be an integer >= 1, got {self.min_samples!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, numbers.Integral) or self.k < 1:
            raise ValueError(f"k must be an integer >= 1, got {self.k!r}")
        check_sparse_structure(X, "X")  # before scikit-learn or SciPy walk a corrupt indptr
        Xc = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32], input_name="X")
        self.n_features_in_ = Xc.shape[1]
        A = sp.csr_matrix(Xc) if not sp.issparse(Xc) else Xc
        n = A.shape[0]
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any() or (sample_weight is not None and w.sum() <= 0):
            raise ValueError("sample_weight must be finite, non-negative and not all zero")
        N = self._neighbourhoods(A)
        self.n_neighbors_ = np.diff(N.indptr).astype(np.int64)
        core = np.asarray(N @ w).ravel() >= self.min_samples
        labels = np.full(n, -1, dtype=np.int64)
        core_idx = np.flatnonzero(core)
        if core_idx.size:
            Ncc = N[core_idx][:, core_idx]
            _, comp = connected_components(Ncc, directed=False)
            # number clusters by their smallest core index (scikit-learn's visiting order)
            first = np.full(comp.max() + 1, n, dtype=np.int64)
            np.minimum.at(first, comp, core_idx)
            rank = np.empty_like(first)
            rank[np.argsort(first, kind="stable")] = np.arange(first.size)
            labels[core_idx] = rank[comp]
            border = np.flatnonzero(~core)
            if border.size:
                Nb = N[border][:, core_idx].tocsr()
                has = np.diff(Nb.indptr) > 0
                if has.any():
                    vals = labels[core_idx][Nb.indices]
                    starts = Nb.indptr[:-1][has]
                    labels[border[has]] = np.minimum.reduceat(vals, starts)
        self.labels_ = labels
        self.core_sample_indices_ = core_idx
        self.components_ = Xc[core_idx]
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit and return :attr:`labels_`."""
        return self.fit(X, sample_weight=sample_weight).labels_
