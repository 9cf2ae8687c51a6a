"""Truncated-SVD user embeddings: the cheap alternative to the neural encoder."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.extmath import randomized_svd

from cohortrec._errors import check_fitted
from cohortrec._io import check_header, read_npz, require, write_npz
from cohortrec._validation import l2_normalize_rows
from cohortrec.encoders._base import as_matrix, check_n_items
from cohortrec.preprocessing import item_idf, normalize, weight

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
                self.idf_ = item_idf(M, self.weighting)
            W = weight(M, "log1p")
            W.data *= self.idf_[W.indices].astype(W.dtype)
        else:
            if fit:
                self.idf_ = None
            W = weight(M, self.weighting)
        return normalize(W, "l2")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

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
        self.n_items_ = self.n_features_in_ = M.shape[1]
        Z = np.asarray(W @ VT.T)  # = U S for an exact SVD; the same projection as transform()
        return l2_normalize_rows(Z) if self.normalize else Z

    def transform(self, X: Any) -> np.ndarray:
        """Embeddings of (new) users: fold-in ``x V_k``."""
        check_fitted(self, "components_")
        M = as_matrix(X)
        check_n_items(M, self.n_items_, owner=type(self).__name__)
        Z = np.asarray(self._weighted(M, fit=False) @ self.components_.T)
        return l2_normalize_rows(Z) if self.normalize else Z

    def _transform_row(self, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
        """:meth:`transform` of one canonical row (sorted distinct ``indices``, float32
        ``values``), shape (1, n_components), without building sparse matrices.

        The same floating-point operations in the same order as
        :meth:`transform` on the one-row CSR matrix (scipy's row sum and
        sequential sparse-dense product), so the same embedding bit for bit:
        the per-request path of :meth:`cohortrec.GroupDiscovery.assign_items`.
        """
        check_fitted(self, "components_")
        v = np.asarray(values)
        if v.dtype not in (np.float32, np.float64):
            v = v.astype(np.float64)
        nz = v != 0
        idx, v = np.asarray(indices)[nz], v[nz]
        if self.weighting in ("tfidf", "bm25"):
            v = np.log1p(v) * self.idf_[idx].astype(v.dtype)
        elif self.weighting == "binary":
            v = np.ones_like(v)
        elif self.weighting == "log1p":
            v = np.log1p(v)
        # scipy's row sum is np.add.reduceat over the row's squares
        s = np.sqrt(np.add.reduceat(v * v, [0])) if v.size else np.zeros(1, v.dtype)
        inv = np.divide(1.0, s, out=np.zeros_like(s, dtype=np.float64), where=s > 0)
        v = v * inv.astype(v.dtype)
        # scipy's sparse x dense product: y += x_j * V[:, j] in the row's order (cumsum is sequential)
        terms = self.components_[:, idx] * v.astype(np.float64)[None, :]
        z = np.cumsum(terms, axis=1)[:, -1:].T if idx.size else np.zeros((1, self.components_.shape[0]))
        z = np.ascontiguousarray(z)
        return l2_normalize_rows(z) if self.normalize else z

    # ---------------------------------------------------------- persistence
    _FORMAT = 1

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the settings and fitted factors to the ``.npz`` file ``path`` (no pickle)."""
        check_fitted(self, "components_")
        arrays = {"components": self.components_, "singular_values": self.singular_values_}
        if getattr(self, "idf_", None) is not None:
            arrays["idf"] = self.idf_
        params = {k: v for k, v in self.get_params().items() if k != "random_state"}
        if isinstance(self.random_state, (int, type(None))):
            params["random_state"] = self.random_state
        meta = {"format": self._FORMAT, "class": "SVDEncoder", "params": params, "n_items": int(self.n_items_)}
        write_npz(path, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SVDEncoder:
        """Read an encoder written by :meth:`save`; ``ValueError`` naming the file if it is damaged."""
        meta, arrays = read_npz(path, "encoder file")
        check_header(meta, classes="SVDEncoder", version=cls._FORMAT, path=path, what="encoder file")
        return cls._from_arrays(path, meta, arrays)

    @classmethod
    def _load_v1(cls, path: str | os.PathLike[str], params: dict[str, Any]) -> SVDEncoder:
        """An encoder.npz of GroupDiscovery format 1: bare arrays, the settings kept by the caller."""
        _, arrays = read_npz(path, "encoder file")
        require(arrays, {"n_items": 0}, path, "encoder file")
        return cls._from_arrays(path, {"params": params, "n_items": int(arrays["n_items"])}, arrays)

    @classmethod
    def _from_arrays(cls, path: str | os.PathLike[str], meta: dict[str, Any],
                     arrays: dict[str, np.ndarray]) -> SVDEncoder:
        require(arrays, {"components": 2, "singular_values": 1}, path, "encoder file")
        try:
            enc = cls(**meta["params"])
            n_items = int(meta["n_items"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"encoder file {os.fspath(path)!r} has an invalid header: {exc!r}") from None
        C, S = arrays["components"], arrays["singular_values"]
        idf = arrays.get("idf")
        if C.shape[1] != n_items or S.shape != (C.shape[0],) or (idf is not None and idf.shape != (n_items,)):
            raise ValueError(f"encoder file {os.fspath(path)!r} is inconsistent: components {C.shape}, "
                             f"singular values {S.shape}, idf {None if idf is None else idf.shape}, "
                             f"{n_items} items")
        if not (np.isfinite(C).all() and np.isfinite(S).all()):
            raise ValueError(f"encoder file {os.fspath(path)!r} holds NaN or infinite factors")
        enc.components_, enc.singular_values_, enc.idf_ = C, S, idf
        enc.n_items_ = enc.n_features_in_ = n_items
        return enc
