"""Truncated-SVD user embeddings: the cheap alternative to the neural encoder."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.extmath import randomized_svd
from cohortrec._errors import check_fitted

from cohortrec.encoders._base import as_matrix, check_n_items
from cohortrec._validation import l2_normalize_rows
from cohortrec.preprocessing import normalize, weight

__all__ = ["SVDEncoder"]


class SVDEncoder(TransformerMixin, BaseEstimator):
    """User embeddings from a truncated SVD of the weighted interaction matrix.

    ``X`` is reweighted (``weighting``), rows are L2-normalised, and the
    user embedding is the projection ``x V_k`` on the top ``n_components``
    right singular vectors (LSA). New users are folded in with the same
    projection, so :meth:`transform` needs no refit.

    Parameters
    ----------
    n_components : int, default 64
    weighting : {"none", "binary", "log1p", "tfidf", "bm25"}, default "tfidf"
        See :func:`cohortrec.preprocessing.weight`.
    normalize : bool, default True
        L2-normalise the output rows (cosine geometry for clustering).
    n_iter : int, default 7
        Power iterations of the randomized SVD.
    random_state : int, RandomState or None

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_items)
    singular_values_ : ndarray of shape (n_components,)
    idf_ : ndarray of shape (n_items,) or None
        Item weights learned for tf-idf / bm25 (reused for new users).
    n_items_ : int
    """

    def __init__(self, n_components: int = 64, *, weighting: str = "tfidf", normalize: bool = True,
                 n_iter: int = 7, random_state: int | np.random.RandomState | None = None) -> None:
        self.n_components = n_components
        self.weighting = weighting
        self.normalize = normalize
        self.n_iter = n_iter
        self.random_state = random_state

    def _weighted(self, M: sp.csr_matrix, fit: bool) -> sp.csr_matrix:
        if self.weighting in ("tfidf", "bm25"):
            if fit:
                df = np.bincount(M.indices, minlength=M.shape[1]).astype(np.float64)
                n = M.shape[0]
                if self.weighting == "tfidf":
                    self.idf_ = np.log((1.0 + n) / (1.0 + df)) + 1.0
                else:
                    self.idf_ = np.log1p((n - df + 0.5) / (df + 0.5))
            W = weight(M, "log1p")
            W.data *= self.idf_[W.indices].astype(W.dtype)
        else:
            if fit:
                self.idf_ = None
            W = weight(M, self.weighting)
        return normalize(W, "l2")

    def fit(self, X: Any, y: Any = None) -> SVDEncoder:
        """Learn the item factors from ``X`` (Interactions or users x items)."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit and return the embeddings of the training users."""
        M = as_matrix(X)
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_components must be an integer >= 1, got {k!r}")
        k = int(min(k, min(M.shape) - 1 if min(M.shape) > 1 else 1))
        W = self._weighted(M, fit=True).astype(np.float64)
        rs = check_random_state(self.random_state)
        U, S, VT = randomized_svd(W, k, n_iter=self.n_iter, random_state=rs)
        self.components_ = VT
        self.singular_values_ = S
        self.n_items_ = M.shape[1]
        Z = np.asarray(W @ VT.T)  # = U S for an exact SVD; the same projection as transform()
        return l2_normalize_rows(Z) if self.normalize else Z

    def transform(self, X: Any) -> np.ndarray:
        """Embeddings of (new) users: fold-in ``x V_k``."""
        check_fitted(self, "components_")
        M = as_matrix(X)
        check_n_items(M, self.n_items_)
        Z = np.asarray(self._weighted(M, fit=False) @ self.components_.T)
        return l2_normalize_rows(Z) if self.normalize else Z
