"""User-group discovery: encoder -> clustering -> group profiles.

:class:`GroupDiscovery` runs the pipeline of the design note (clean ->
features -> embeddings -> clustering -> group profiling -> use in
recommendation) on an :class:`~cohortrec.Interactions`:

1. embed users (:class:`~cohortrec.encoders.SVDEncoder` by default, or the
   Mult-VAE :class:`~cohortrec.encoders.InteractionEncoder`, optionally with
   a text view from :class:`~cohortrec.encoders.TextEncoder`),
2. cluster the embeddings (spherical :class:`~cohortrec.KMeans` by default;
   ``n_groups="auto"`` picks the number of groups),
3. :meth:`~GroupDiscovery.profile` the groups (size, behaviour vs overall,
   over-represented items and categories with lift and support, class-based
   tf-idf keywords, user-feature breakdowns, a short label), and
4. :meth:`~GroupDiscovery.assign` new or cold-start users to the groups.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils import check_random_state

from cohortrec._errors import check_fitted
from cohortrec._io import check_header, csr_from_arrays, csr_to_arrays, read_json, read_npz, require, write_npz
from cohortrec._validation import check_float, group_indicator, l2_normalize_rows
from cohortrec.encoders import as_matrix, check_n_items
from cohortrec.interactions import Interactions

__all__ = ["GroupDiscovery"]

_FORMAT = 3  # 3: the refining mixture; 2: the SVD encoder file carries its own header (1: settings here)


class GroupDiscovery(TransformerMixin, BaseEstimator):
    """Discover, describe and assign user groups.

    Parameters
    ----------
    encoder : "svd", "vae", "dae" or an estimator with fit_transform/transform, default "svd"
        User embeddings. ``"svd"``: :class:`~cohortrec.encoders.SVDEncoder`
        (BM25 weighting, 24 dims, or 2K for a given K > 12); ``"vae"`` / ``"dae"``:
        :class:`~cohortrec.encoders.InteractionEncoder` (needs torch).
    clusterer : estimator, optional
        Any scikit-learn clusterer with ``fit`` and ``labels_`` (``predict``
        is used for :meth:`assign` when present, else the nearest group
        centroid). Default: ``KMeans(n_groups, spherical=True, n_init=50)``
        (:data:`KMEANS_RESTARTS`).
    n_groups : int or "auto", default 8
        Number of groups for the default clusterer. ``"auto"`` searches
        ``k_range`` and keeps the curve in :attr:`k_curve_`: with
        ``refine="multinomial"`` by the held-out likelihood of a share of
        every user's items (:func:`~cohortrec.cluster.heldout_k_curve`, the
        smallest ``k`` within one standard error of the best), else with
        :func:`cohortrec.cluster.choose_n_clusters` (silhouette on a sample). More groups than users raises
        ``ValueError`` (never a silent cap), as ``KMeans`` does.
    k_range : sequence of int, default range(2, 21)
    text_encoder : TextEncoder, optional
        Adds a text view: user text vectors (weighted means of their items'
        text vectors) are concatenated with the behaviour embeddings using
        :func:`~cohortrec.encoders.combine_views` and ``text_weight``, and
        :meth:`assign_text` can place users known only by text.
    text_weight : float, default 0.3
    min_group_size : int or float, default 0.005
        Groups smaller than this (a count, or a share of users when < 1) are
        flagged ``small`` in :meth:`profile`.
    refine : "multinomial" or None, default "multinomial"
        ``"multinomial"``: the groups of the default clusterer start a
        :class:`~cohortrec.cluster.MultinomialMixture` over items (EM), whose
        groups are the result. It weighs every user by how many events they
        have and discounts events on popular items, where K-means on the
        embeddings gives every user the same weight; over the planted worlds
        of :func:`~cohortrec.datasets.world_grid` it raises the worst-case
        ARI (``benchmarks/bench_discovery_robustness.py``). New users are
        then assigned by the mixture's posterior, and :meth:`memberships`
        gives every user's mix of groups. ``None`` keeps the K-means groups.
        Not used with a custom ``clusterer`` or a ``text_encoder`` (the
        groups then come from the embeddings alone).
    category_prior : "auto", float or None, default "auto"
        Where the refining mixture's prior is centred. ``None``: on the
        overall item distribution. A float: on each group's own profile over
        the item categories (``interactions.items["categories"]``, see
        :meth:`~cohortrec.interactions.Interactions.item_categories`), with
        that many pseudo-events per item, so a group's few events on an item
        borrow strength from its events on the item's category. ``"auto"``
        (with categories) chooses among ``None`` and
        :data:`CATEGORY_PRIORS` by the held-out likelihood of a share of
        every user's items (:func:`~cohortrec.cluster.heldout_prior_choice`:
        the categories only where they predict unseen events better by one
        standard error), and keeps the curve in :attr:`category_curve_`.
        Over the planted worlds whose tastes are over categories it raises
        the ARI of the hard worlds by up to 0.15 and keeps the background
        where tastes are over items (``benchmarks/bench_discovery_robustness.py``).
        Without categories (or ``refine=None``) it is ``None``.
    random_state : int, RandomState or None
    device : {"auto", "cpu", "cuda"}
    verbose : bool, default False

    Attributes
    ----------
    labels_ : ndarray of int64, shape (n_users,)
    embeddings_ : ndarray of shape (n_users, d)
    centroids_ : ndarray of shape (n_groups, d)
        Mean embedding of every group (row-normalised).
    n_groups_ : int
    user_ids_ : pandas.Index
        External id of every training user (row order of :attr:`labels_`).
    encoder_, clusterer_ : fitted estimators
    interactions_ : Interactions
        The training data (for profiles).
    k_curve_ : pandas.DataFrame or None
        The ``n_groups="auto"`` search curve.
    mixture_ : MultinomialMixture or None
        The refining mixture (``refine="multinomial"``), else None.
    category_prior_ : float or None
        The strength of the category-centred prior used, or None (the
        background prior, or no mixture).
    category_curve_ : pandas.DataFrame or None
        The held-out likelihood of every candidate prior
        (``category_prior="auto"`` with categories), else None.
    """

    def __init__(
        self,
        encoder: Any = "svd",
        clusterer: Any = None,
        *,
        n_groups: int | str = 8,
        k_range: Sequence[int] = tuple(range(2, 21)),
        text_encoder: Any = None,
        text_weight: float = 0.3,
        min_group_size: int | float = 0.005,
        refine: str | None = "multinomial",
        category_prior: str | float | None = "auto",
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        verbose: bool = False,
    ) -> None:
        self.encoder = encoder
        self.clusterer = clusterer
        self.n_groups = n_groups
        self.k_range = k_range
        self.text_encoder = text_encoder
        self.text_weight = text_weight
        self.min_group_size = min_group_size
        self.refine = refine
        self.category_prior = category_prior
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _category_prior(self, X: Interactions, labels: np.ndarray, k: int, seed: int) -> sp.csr_matrix | None:
        """The item categories to centre the mixture's prior on (sets :attr:`category_prior_`), or None."""
        choice = self.category_prior
        if choice is None:
            return None
        auto = isinstance(choice, str)
        if auto and choice != "auto":
            raise ValueError(f"category_prior must be 'auto', a float > 0 or None, got {choice!r}")
        if not auto:
            check_float(choice, "category_prior", minimum=0.0, min_inclusive=False)
        cats, _ = X.item_categories()
        if cats.shape[1] < 2 or cats.nnz == 0:  # one category (or none) says nothing about the groups
            if auto:
                return None
            raise ValueError(f"category_prior={choice!r} needs item categories (at least two), but the "
                             "interactions have none: give items with a 'categories' column, or category_prior=None")
        if auto:
            from cohortrec.cluster import heldout_prior_choice  # noqa: PLC0415

            if not (np.diff(X.matrix.indptr) >= 2).any():  # nothing to hold out: keep the background
                return None
            choice, self.category_curve_ = heldout_prior_choice(
                X.matrix, labels, k, cats, alphas=CATEGORY_PRIORS, background_alpha=MIXTURE_SETTINGS["alpha"],
                binary=MIXTURE_SETTINGS["binary"], random_state=seed)
            if choice is None:
                return None
        self.category_prior_ = float(choice)
        return cats

    def _svd_components(self) -> int:
        return svd_components(self.n_groups, self.k_range)

    def _make_encoder(self, seed: int) -> Any:
        enc = self.encoder
        if isinstance(enc, str):
            if enc == "svd":
                from cohortrec.encoders import SVDEncoder  # noqa: PLC0415

                return SVDEncoder(self._svd_components(), weighting="bm25", random_state=seed)
            if enc in ("vae", "dae"):
                from cohortrec.encoders import InteractionEncoder  # noqa: PLC0415

                return InteractionEncoder(model=enc, random_state=seed, device=self.device, verbose=self.verbose)
            raise ValueError(f"encoder must be 'svd', 'vae', 'dae' or an estimator, got {enc!r}")
        if not (hasattr(enc, "fit_transform") and hasattr(enc, "transform")):
            raise TypeError(f"encoder must have fit_transform and transform, got {type(enc).__name__}")
        return clone(enc)

    def _check_interactions(self, X: Any, name: str = "interactions") -> Interactions:
        if isinstance(X, Interactions):
            return X
        if not (sp.issparse(X) or hasattr(X, "__array__") or isinstance(X, (list, tuple))):
            raise TypeError(f"{name} must be an Interactions, a scipy.sparse matrix or a 2-D array, "
                            f"got {type(X).__name__}")
        return Interactions.from_sparse(as_matrix(X, name))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

    def _text_vectors(self, X: Interactions) -> np.ndarray:
        return self.text_encoder_.user_vectors(X.matrix, self.item_text_vectors_)

    def _embed(self, X: Interactions, fit: bool) -> np.ndarray:
        from cohortrec.encoders import combine_views  # noqa: PLC0415

        Z = self.encoder_.fit_transform(X) if fit else self.encoder_.transform(X)
        Z = np.asarray(Z, dtype=np.float64)
        if self.text_encoder is not None:
            T = self._text_vectors(X)
            Z = combine_views([Z, T], [1.0 - float(self.text_weight), float(self.text_weight)])
        return Z

    def fit(self, X: Any, y: Any = None) -> GroupDiscovery:
        """Embed and cluster the users of ``X``.

        Parameters
        ----------
        X : Interactions or scipy.sparse matrix (users x items)
        y : ignored

        Returns
        -------
        self
        """
        from cohortrec.cluster import choose_n_clusters  # noqa: PLC0415

        X = self._check_interactions(X)
        if X.n_users < 2:
            raise ValueError(f"interactions must hold at least 2 users, got n_samples={X.n_users}")
        if X.matrix.nnz == 0:
            raise ValueError(f"interactions hold no interaction at all ({X.n_users} users x {X.n_items} items, "
                             "every entry zero): there is nothing to group users by")
        rs = check_random_state(self.random_state)
        seed = int(rs.randint(np.iinfo(np.int32).max))
        self.encoder_ = self._make_encoder(seed)
        if self.text_encoder is not None:
            if not 0.0 <= float(self.text_weight) <= 1.0:
                raise ValueError(f"text_weight must lie in [0, 1], got {self.text_weight!r}")
            self.text_encoder_ = self.text_encoder
            self.item_text_vectors_ = self.text_encoder_.encode(X.item_text(self.text_encoder_.fields))
        Z = self._embed(X, fit=True)
        self.k_curve_ = None
        if self.clusterer is None:
            k = self.n_groups
            if isinstance(k, str):
                if k != "auto":
                    raise ValueError(f"n_groups must be an integer >= 1 or 'auto', got {k!r}")
                if self._refines() and (np.diff(X.matrix.indptr) >= 2).any():
                    from cohortrec.cluster import heldout_k_curve  # noqa: PLC0415

                    k, self.k_curve_ = heldout_k_curve(Z, X.matrix, self.k_range, random_state=seed,
                                                       **MIXTURE_SETTINGS)
                else:  # (every user with one item: nothing to hold out, so the silhouette decides)
                    k, self.k_curve_ = choose_n_clusters(Z, self.k_range, random_state=seed, spherical=True)
            elif isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise ValueError(f"n_groups must be an integer >= 1 or 'auto', got {k!r}")
            if k > X.n_users:
                raise ValueError(f"n_groups={k} is larger than the number of users ({X.n_users}); "
                                 "give at most that many groups, or n_groups='auto'")
            k = int(k)
            self.clusterer_ = _fit_kmeans_restarts_on_sample(Z, k, seed, self.device)
        else:
            self.clusterer_ = clone(self.clusterer)
            self.clusterer_.fit(Z)
        labels = np.asarray(self.clusterer_.labels_, dtype=np.int64)
        empty = np.diff(X.matrix.indptr) == 0
        self.mixture_ = None
        self.category_prior_, self.category_curve_ = None, None
        if self._refines():
            from cohortrec.cluster import MultinomialMixture  # noqa: PLC0415

            k_start = int(labels.max()) + 1
            self.mixture_ = MultinomialMixture(k_start, **MIXTURE_SETTINGS).fit(X.matrix, init=labels)
            labels = self.mixture_.labels_
            # the background mixture first: it drops the groups the data do not support (which the stronger
            # category prior would keep alive), then the category prior, if chosen, refines its groups
            k_kept = self.mixture_.n_components_
            cats = self._category_prior(X, labels, k_kept, seed)
            if cats is not None:
                self.mixture_ = MultinomialMixture(k_kept, **{**MIXTURE_SETTINGS, "alpha": self.category_prior_}).fit(
                    X.matrix, init=labels, item_categories=cats)
                labels = self.mixture_.labels_
            if self.mixture_.n_components_ < k_start and not isinstance(self.n_groups, str):
                warnings.warn(f"n_groups={k_start}: the multinomial refinement left "
                              f"{k_start - self.mixture_.n_components_} group(s) without users, which were "
                              f"dropped ({self.mixture_.n_components_} groups); the data do not support more. "
                              "refine=None keeps the K-means groups", UserWarning, stacklevel=2)
        if empty.any() and self.text_encoder is None:  # as assign(): a user with no interaction has no group
            labels = labels.copy()
            labels[empty] = -1
            warnings.warn(f"{int(empty.sum())} user(s) have no interaction at all: they get group -1 (no group)",
                          UserWarning, stacklevel=2)
        # DBSCAN noise (-1) stays its own group; centroids are over the real groups
        groups = np.unique(labels[labels >= 0])
        self.n_groups_ = int(groups.max() + 1) if groups.size else 0
        C = np.zeros((self.n_groups_, Z.shape[1]))
        if self.n_groups_:
            C = np.asarray(group_indicator(labels, self.n_groups_) @ Z)
            C = l2_normalize_rows(C)
        self.labels_ = labels
        self.embeddings_ = Z
        self.centroids_ = C
        self.interactions_ = X
        self.user_ids_ = X.user_ids
        self.n_features_in_ = X.n_items
        self._features = None
        self._has_data = True
        return self

    def _refines(self) -> bool:
        if self.refine not in ("multinomial", None):
            raise ValueError(f"refine must be 'multinomial' or None, got {self.refine!r}")
        return self.refine == "multinomial" and self.clusterer is None and self.text_encoder is None

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit and return :attr:`labels_`."""
        return self.fit(X).labels_

    # --------------------------------------------------------------- assign
    def _align(self, X: Any) -> Interactions:
        check_fitted(self, "labels_", "assigning or embedding new users")
        if not isinstance(X, Interactions):  # a bare matrix: its columns must be the training items
            X = self._check_interactions(X, "new_interactions")
            check_n_items(X.matrix, self.n_features_in_, "X", type(self).__name__)
            return X
        train = self.interactions_
        if X.n_items == train.n_items and X.item_ids.equals(train.item_ids):
            return X
        pos = train.item_ids.get_indexer(X.item_ids)
        keep = pos >= 0
        M = X.matrix.tocsc()[:, np.flatnonzero(keep)].tocoo()
        A = sp.csr_matrix((M.data, (M.row, pos[keep][M.col])), shape=(X.n_users, train.n_items))
        return Interactions(A, X.user_ids, train.item_ids, users=X.users, items=train.items)

    def transform(self, new_interactions: Any) -> np.ndarray:
        """Embeddings of new users (fold-in; no retraining)."""
        return self._embed(self._align(new_interactions), fit=False)

    def assign(self, new_interactions: Any) -> np.ndarray:
        """Group of every user of ``new_interactions`` (new or cold-start users).

        Items are matched to the training items by id (unknown items are
        ignored). Users are embedded by fold-in and put in the group of the
        nearest centroid (cosine), or by the clusterer's ``predict`` when it
        has one. Users with no known item get ``-1``.
        """
        A = self._align(new_interactions)
        empty = np.diff(A.matrix.indptr) == 0
        if getattr(self, "mixture_", None) is not None:
            labels = self.mixture_.predict(A.matrix)
        else:
            labels = self._labels_of(self._embed(A, fit=False))
        if self.text_encoder is None:
            labels[empty] = -1
        return labels

    def _labels_of(self, Z: np.ndarray) -> np.ndarray:
        """Groups of embedded users without a mixture: the clusterer's predict, else the nearest centroid."""
        if hasattr(self.clusterer_, "predict") and self.clusterer is not None:
            return np.asarray(self.clusterer_.predict(Z), dtype=np.int64)
        return self._nearest(Z)

    def memberships(self, new_interactions: Any = None, *, rows: slice | None = None,
                    n_iter: int = 20) -> np.ndarray:
        """Every user's mix of groups: rows sum to 1.

        With the mixture (``refine="multinomial"``), the share of the user's
        events that each group's item distribution explains best
        (:func:`~cohortrec.cluster.admixture_weights`): a user who shops 70%
        like one group and 30% like another gets about ``(0.7, 0.3)``.
        Otherwise ``max(cos(z_u, c_g), 0) ** 4`` normalised over the groups
        (``z_u`` the embedding, ``c_g`` the centroid). Users with no known
        item get a uniform row (mixture) or weight 1 on their group.

        Parameters
        ----------
        new_interactions : Interactions or sparse matrix, optional
            Users to weigh (items matched by id); default the training users.
        rows : slice, optional
            Only these training users (without ``new_interactions``), from
            their stored matrix rows or embeddings: ``discover`` writes
            ``groups.parquet`` a row group at a time.
        n_iter : int, default 20
            Most EM iterations of the mixture weights
            (:func:`~cohortrec.cluster.admixture_weights`).

        Returns
        -------
        ndarray of shape (n_users, n_groups)
        """
        check_fitted(self, "labels_")
        mixture = getattr(self, "mixture_", None)
        if new_interactions is None:
            self._require_data("memberships of the training users")
            M, Z, labels = self.interactions_.matrix, self.embeddings_, self.labels_
            if rows is not None:
                M, Z, labels = M[rows], Z[rows], labels[rows]
        else:
            if rows is not None:
                raise ValueError("rows selects training users: give it without new_interactions")
            A = self._align(new_interactions)
            M = A.matrix
            if mixture is None:
                Z = self._embed(A, fit=False)
                labels = self._labels_of(Z)
        if mixture is not None:
            return mixture.admixture(M, n_iter=n_iter)
        W = np.maximum(l2_normalize_rows(np.asarray(Z, dtype=np.float64)) @ self.centroids_.T, 0.0) ** 4
        tot = W.sum(axis=1, keepdims=True)
        hard = np.zeros_like(W)
        ok = labels >= 0
        hard[np.flatnonzero(ok), labels[ok]] = 1.0
        return np.where(tot > 0, W / np.where(tot > 0, tot, 1.0), hard)

    predict = assign

    def _nearest(self, Z: np.ndarray) -> np.ndarray:
        Zn = l2_normalize_rows(Z)
        return np.argmax(Zn @ self.centroids_.T, axis=1).astype(np.int64)

    def assign_text(self, texts: Sequence[str]) -> np.ndarray:
        """Groups of users known only by text (e.g. a profile or search queries).

        Needs ``text_encoder``. Each text is embedded and put in the group
        whose mean user text vector is the most similar (cosine).
        """
        check_fitted(self, "labels_")
        if self.text_encoder is None:
            raise ValueError("assign_text needs GroupDiscovery(text_encoder=TextEncoder(...))")
        T = self.text_encoder_.encode(list(texts))
        if not hasattr(self, "_text_centroids"):
            self._require_data("assign_text")
            U = self._text_vectors(self.interactions_)
            C = np.asarray(group_indicator(self.labels_, self.n_groups_) @ U)
            self._text_centroids = l2_normalize_rows(C)
        Tn = l2_normalize_rows(T)
        return np.argmax(Tn @ self._text_centroids.T, axis=1).astype(np.int64)

    # ------------------------------------------------- serving and updates
    def _item_positions(self) -> dict[Any, int]:
        """External item id -> column (built once per training item vocabulary)."""
        ids = self.interactions_.item_ids
        cached = self.__dict__.get("_item_pos")
        if cached is not None and cached[0] is ids:
            return cached[1]
        pos = {v: i for i, v in enumerate(ids.tolist())}
        self._item_pos = (ids, pos)
        return pos

    def _items_row(self, item_ids: Any, values: Any = None) -> sp.csr_matrix:
        """One user's row over the training items from external item ids (unknown ids ignored)."""
        if isinstance(item_ids, (str, bytes)) or not hasattr(item_ids, "__iter__"):
            raise TypeError(f"item_ids must be a list of item ids, got {type(item_ids).__name__}")
        items = list(item_ids)
        if values is None:
            vals = np.ones(len(items), dtype=np.float32)
        else:
            vals = np.asarray(values, dtype=np.float32).ravel()
            if vals.shape != (len(items),):
                raise ValueError(f"values must hold one value per item id ({len(items)}), got shape {vals.shape}")
            if not np.isfinite(vals).all() or (vals < 0).any():
                raise ValueError("values must be finite and non-negative")
        pos = self._item_positions()
        cols = np.fromiter((pos.get(i, -1) for i in items), dtype=np.int64, count=len(items))
        known = cols >= 0
        cols, vals = cols[known], vals[known]
        if cols.size > 1:  # duplicates add up, as in an event log
            order = np.argsort(cols, kind="stable")
            cols, vals = cols[order], vals[order]
            first = np.r_[True, cols[1:] != cols[:-1]]
            vals = np.add.reduceat(vals, np.flatnonzero(first))
            cols = cols[first]
        nz = vals != 0
        cols, vals = cols[nz], vals[nz]
        return sp.csr_matrix((vals, cols.astype(np.int32), np.array([0, cols.size])),
                             shape=(1, self.interactions_.n_items))

    def assign_items(self, item_ids: Sequence[Any], values: Sequence[float] | None = None) -> int:
        """Group of one new user given the ids of the items they interacted with.

        The per-request form of :meth:`assign`: the same group as
        ``assign(Interactions)`` of a one-user matrix with these items (value
        1 each, or ``values``; repeated ids add up; unknown ids are ignored),
        without building a frame or matching item vocabularies.

        Parameters
        ----------
        item_ids : sequence
            External item ids, as in the training data.
        values : sequence of float, optional
            Interaction strengths (default 1).

        Returns
        -------
        int
            The group, or ``-1`` when no item is known (and there is no text view).
        """
        check_fitted(self, "labels_")
        row = self._items_row(item_ids, values)
        if self.text_encoder is not None:  # the text view needs the item side data: general path
            X1 = Interactions(row, pd.Index([0]), self.interactions_.item_ids)
            return int(self.assign(X1)[0])
        if row.nnz == 0:
            return -1
        if getattr(self, "mixture_", None) is not None:
            return self.mixture_._predict_row(row.indices, row.data)
        fast = getattr(self.encoder_, "_transform_row", None)
        Z = fast(row.indices, row.data) if fast is not None else self.encoder_.transform(row)
        Z = np.asarray(Z, dtype=np.float64)
        if hasattr(self.clusterer_, "predict") and self.clusterer is not None:
            return int(np.asarray(self.clusterer_.predict(Z), dtype=np.int64)[0])
        return int(self._nearest(Z)[0])

    def partial_fit(self, new_interactions: Any, y: Any = None) -> GroupDiscovery:
        """Add users (and new events of known users) without refitting.

        The first call on an unfitted model is :meth:`fit`. Afterwards the
        encoder and the clusterer stay as they are. Update rule:

        * every user of ``new_interactions`` is embedded by fold-in (as in
          :meth:`transform`); new users are appended, known users (same
          external id) get the new events added to their history (which
          needs the training data) and are re-embedded;
        * each user goes to the group of the nearest centroid, or with the
          mixture (``refine="multinomial"``) of the highest posterior (as in
          :meth:`assign`); the mixture's group item counts gain the new
          events (and lose a known user's old ones where they change group):
          an online M-step, exact for hard assignments;
        * every centroid stays what :meth:`fit` defines, the normalised sum of
          its members' embeddings: each group's running sum ``S_g`` gains the
          embeddings of the users who joined and loses those who left, and
          ``c_g = S_g / ||S_g||``. With the labels of the other users fixed
          this equals recomputing the centroids from all embeddings.
          (A model loaded without its training data starts from
          ``S_g = size_g * c_g``, i.e. as if its members were unit vectors
          along the centroid.)

        Attributes set: :attr:`drift_` (per group, ``1 - cos`` between the
        centroid before and after) and :attr:`partial_fit_report_` (users
        added and updated, groups moved, largest and mean drift).

        Parameters
        ----------
        new_interactions : Interactions, scipy.sparse matrix or 2-D array
            Items matched by id (unknown items ignored); the rows of a bare
            matrix (columns = the training items) are new users, numbered on
            from the training users.
        y : ignored

        Returns
        -------
        self
        """
        if not hasattr(self, "labels_"):  # the first call fits, as scikit-learn's partial_fit
            return self.fit(new_interactions)
        if self.n_groups_ == 0:
            raise ValueError("partial_fit needs a model with at least one group")
        A = self._align(new_interactions)
        train = self.interactions_
        has_data = getattr(self, "_has_data", True) and self.embeddings_ is not None
        if not isinstance(new_interactions, Interactions):  # a bare matrix: new users, numbered on
            start = len(self.user_ids_)
            A = Interactions(A.matrix, pd.RangeIndex(start, start + A.n_users), train.item_ids)
            old_pos = np.full(A.n_users, -1)
        else:
            old_pos = self.user_ids_.get_indexer(A.user_ids) if len(self.user_ids_) else np.full(A.n_users, -1)
        if len(np.unique(old_pos[old_pos >= 0])) < int((old_pos >= 0).sum()) or A.user_ids.has_duplicates:
            raise ValueError("new_interactions holds a user id twice")
        known = old_pos >= 0
        if known.any() and not has_data:
            raise ValueError("partial_fit of known users needs the training data; this model was saved with "
                             "include_data=False (only new users can be added)")
        M = A.matrix.astype(train.matrix.dtype) if train.matrix.dtype != A.matrix.dtype else A.matrix
        if known.any():  # a known user's row = old history + new events
            M = sp.csr_matrix(M + sp.csr_matrix(
                (np.ones(int(known.sum())), (np.flatnonzero(known), old_pos[known])),
                shape=(A.n_users, train.n_users)) @ train.matrix)
        A2 = Interactions(M, A.user_ids, train.item_ids)
        Z = self._embed(A2, fit=False)
        mixture = getattr(self, "mixture_", None)
        labels = mixture.predict(M) if mixture is not None else self._labels_of(Z)
        empty = np.diff(M.indptr) == 0
        if self.text_encoder is None:
            labels[empty] = -1
        k = self.n_groups_
        if mixture is not None:  # online M-step: known users leave their old group with their old events
            mixture.update(M, labels, train.matrix[old_pos[known]] if known.any() else None,
                           self.labels_[old_pos[known]] if known.any() else None)
        sums = self._centroid_sums()
        old_c = np.asarray(self.centroids_, dtype=np.float64).copy()
        ok = labels >= 0
        sums = sums + np.asarray(group_indicator(labels, k) @ Z)
        if known.any():
            prev = self.labels_[old_pos[known]]
            keep = prev >= 0
            sums = sums - np.asarray(group_indicator(prev[keep], k) @ self.embeddings_[old_pos[known]][keep])
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        C = np.where(norms > 0, sums / np.where(norms > 0, norms, 1.0), old_c)
        self.centroids_ = C
        self._sums = (C, sums)  # valid while centroids_ is this array (fit replaces it)
        if hasattr(self, "_text_centroids"):
            del self._text_centroids
        cos = np.clip(np.sum(old_c * C, axis=1), -1.0, 1.0)
        self.drift_ = 1.0 - cos
        # append new users, update known ones
        labels_all = self.labels_.copy()
        labels_all[old_pos[known]] = labels[known]
        new = ~known
        self.labels_ = np.concatenate([labels_all, labels[new]])
        self.user_ids_ = self.user_ids_.append(A.user_ids[new])
        if has_data:
            E = np.asarray(self.embeddings_, dtype=np.float64).copy()
            E[old_pos[known]] = Z[known]
            self.embeddings_ = np.concatenate([E, Z[new]])
            T = train.matrix.tolil(copy=True) if known.any() else None
            if T is not None:
                T[old_pos[known]] = M[np.flatnonzero(known)]
                base = sp.csr_matrix(T)
            else:
                base = train.matrix
            users = None
            if train.users is not None:
                users = pd.concat([train.users, pd.DataFrame(index=A.user_ids[new])])
            self.interactions_ = Interactions(sp.vstack([base, M[np.flatnonzero(new)]], format="csr"),
                                              self.user_ids_, train.item_ids, users=users, items=train.items)
            self._features = None
        self.partial_fit_report_ = {
            "n_new_users": int(new.sum()), "n_updated_users": int(known.sum()),
            "n_unassigned": int((~ok).sum()), "max_drift": float(self.drift_.max()) if k else 0.0,
            "mean_drift": float(self.drift_.mean()) if k else 0.0,
            "groups_moved": int((self.drift_ > 0).sum()),
        }
        return self

    def _centroid_sums(self) -> np.ndarray:
        """Unnormalised centroid sums ``S_g`` (see :meth:`partial_fit`)."""
        cached = self.__dict__.get("_sums")
        if cached is not None and cached[0] is self.centroids_:
            return cached[1]
        k = self.n_groups_
        ok = self.labels_ >= 0
        if getattr(self, "embeddings_", None) is not None:
            return np.asarray(group_indicator(self.labels_, k) @ np.asarray(self.embeddings_, np.float64))
        sizes = np.bincount(self.labels_[ok], minlength=k).astype(np.float64)
        return np.asarray(self.centroids_, dtype=np.float64) * sizes[:, None]

    # ---------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str], *, include_data: bool = True) -> Path:
        """Write the fitted model to the folder ``path`` (no pickle).

        The folder holds ``discovery.json`` (parameters, fitted scalars, the
        ``n_groups="auto"`` curve, item side data), ``arrays.npz`` (labels,
        centroids, user and item ids, and with ``include_data`` the
        embeddings and the training matrix) and the encoder:
        ``encoder.npz`` for :class:`~cohortrec.encoders.SVDEncoder`,
        ``encoder.safetensors`` for
        :class:`~cohortrec.encoders.InteractionEncoder` (its own
        :meth:`~cohortrec.encoders.InteractionEncoder.save`). A text view
        keeps the item text vectors and the text model's name; the
        sentence-transformers model itself is not copied.

        Parameters
        ----------
        path : str or os.PathLike
            Folder to write (created if needed; files in it are replaced).
        include_data : bool, default True
            Also store the training matrix and the user embeddings, so that
            :meth:`profile`, :meth:`quality` and :meth:`user_features` work
            after :meth:`load`. Without them the loaded model can still
            :meth:`assign` and :meth:`transform` new users, which is all that
            serving needs.

        Returns
        -------
        pathlib.Path
            The folder written.

        Raises
        ------
        ValueError
            When the model is not fitted, or uses a custom ``clusterer`` or
            an encoder other than the SVD or interaction encoders (their
            state cannot be written without pickle).
        """
        check_fitted(self, "labels_")
        from cohortrec.encoders import SVDEncoder  # noqa: PLC0415

        if self.clusterer is not None:
            raise ValueError("save supports the default clusterer only (clusterer=None); got clusterer="
                             f"{type(self.clusterer).__name__}")
        enc = self.encoder_
        enc_kind = "svd" if isinstance(enc, SVDEncoder) else (
            "interaction" if type(enc).__name__ == "InteractionEncoder" else None)
        if enc_kind is None:
            raise ValueError(f"save supports SVDEncoder and InteractionEncoder encoders, got {type(enc).__name__}")
        out = Path(path)
        if out.exists() and not out.is_dir():
            raise ValueError(f"path must be a folder, but {str(out)!r} is a file")
        out.mkdir(parents=True, exist_ok=True)
        X = self.interactions_
        arrays: dict[str, np.ndarray] = {
            "labels": np.asarray(self.labels_, dtype=np.int64),
            "centroids": np.asarray(self.centroids_, dtype=np.float64),
        }
        ids: dict[str, Any] = {}
        for name, index in (("user_ids", X.user_ids), ("item_ids", X.item_ids)):
            arr, kind = _ids_to_array(index)
            arrays[name] = arr
            ids[name] = kind
        if include_data:
            arrays["embeddings"] = np.asarray(self.embeddings_)
            arrays.update(csr_to_arrays("matrix", X.matrix))
        if self.text_encoder is not None:
            arrays["item_text_vectors"] = np.asarray(self.item_text_vectors_)
        mixture = getattr(self, "mixture_", None)
        if mixture is not None:
            arrays["mixture_counts"] = np.asarray(mixture.counts_, dtype=np.float64)
            arrays["mixture_weights"] = np.asarray(mixture.weights_, dtype=np.float64)
            arrays["mixture_background"] = np.asarray(mixture.background_, dtype=np.float64)
            if getattr(mixture, "item_categories_", None) is not None:
                arrays.update(csr_to_arrays("mixture_categories", mixture.item_categories_))
        for old in ("encoder.npz", "encoder.safetensors"):
            (out / old).unlink(missing_ok=True)
        enc.save(out / ("encoder.npz" if enc_kind == "svd" else "encoder.safetensors"))
        text = None
        if self.text_encoder is not None:
            te = self.text_encoder_
            text = {k: _jsonable(v) for k, v in te.get_params().items()}
            text["model"] = os.fspath(te.model) if isinstance(te.model, (str, os.PathLike)) else str(te.model)
        items = None
        if X.items is not None:
            keep = [c for c in ("title", "description", "categories") if c in X.items.columns]
            if keep:
                items = {c: [_text_or_list(v) for v in X.items[c]] for c in keep}
        meta = {
            "format": _FORMAT,
            "class": "GroupDiscovery",
            "params": {
                "encoder": self.encoder if isinstance(self.encoder, str) else None,
                "n_groups": self.n_groups if isinstance(self.n_groups, str) else int(self.n_groups),
                "k_range": [int(k) for k in self.k_range],
                "text_weight": float(self.text_weight),
                "min_group_size": self.min_group_size,
                "refine": self.refine,
                "category_prior": self.category_prior,
                "random_state": self.random_state if isinstance(self.random_state, (int, type(None))) else None,
                "device": self.device,
            },
            "encoder_kind": enc_kind,
            "text_encoder": text,
            "n_groups_": int(self.n_groups_),
            "mixture": None if mixture is None else {"alpha": float(mixture.alpha), "binary": bool(mixture.binary),
                                                     "n_users": mixture.n_users_,
                                                     "categories": mixture.item_categories_ is not None},
            "category_curve": None if getattr(self, "category_curve_", None) is None
            else json.loads(self.category_curve_.to_json(orient="records")),
            "include_data": bool(include_data),
            "ids": ids,
            "items": items,
            "k_curve": None if self.k_curve_ is None else json.loads(self.k_curve_.to_json(orient="records")),
        }
        write_npz(out / "arrays.npz", arrays)
        (out / "discovery.json").write_text(json.dumps(meta, indent=1))
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "auto") -> GroupDiscovery:
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            The folder given to :meth:`save`.
        device : {"auto", "cpu", "cuda"}
            Where the interaction encoder runs.

        Returns
        -------
        GroupDiscovery
            Fitted: :meth:`assign` and :meth:`transform` work; :meth:`profile`
            and :meth:`quality` need a model saved with ``include_data=True``.
        """
        folder = Path(path)
        meta_file = folder / "discovery.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{str(folder)!r} holds no saved GroupDiscovery (expected {str(meta_file)!r})")
        meta = read_json(meta_file, "GroupDiscovery file")
        check_header(meta, classes="GroupDiscovery", version=_FORMAT, path=meta_file, what="GroupDiscovery file")
        try:
            p = meta["params"]
            model = cls(encoder=p["encoder"] or "svd", n_groups=p["n_groups"], k_range=tuple(p["k_range"]),
                        text_weight=p["text_weight"], min_group_size=p["min_group_size"],
                        refine=p.get("refine"), category_prior=p.get("category_prior"),
                        random_state=p["random_state"], device=device)
            enc_kind, n_groups_, id_kinds = meta["encoder_kind"], int(meta["n_groups_"]), meta["ids"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"GroupDiscovery file {str(meta_file)!r} has an invalid header: {exc!r}") from None
        arrays_file = folder / "arrays.npz"
        _, arrays = read_npz(arrays_file, "GroupDiscovery arrays")
        require(arrays, {"labels": 1, "centroids": 2, "user_ids": 1, "item_ids": 1}, arrays_file)
        if enc_kind == "svd":
            from cohortrec.encoders import SVDEncoder  # noqa: PLC0415

            if "encoder_params" in meta:  # format 1
                enc = SVDEncoder._load_v1(folder / "encoder.npz", meta["encoder_params"])
            else:
                enc = SVDEncoder.load(folder / "encoder.npz")
        elif enc_kind == "interaction":
            from cohortrec.encoders import InteractionEncoder  # noqa: PLC0415

            enc = InteractionEncoder.load(folder / "encoder.safetensors", device=device)
        else:
            raise ValueError(f"GroupDiscovery file {str(meta_file)!r} names an unknown encoder {enc_kind!r}")
        if p["encoder"] is None:
            model.encoder = enc
        model.encoder_ = enc
        if meta.get("text_encoder") is not None:
            from cohortrec.encoders import TextEncoder  # noqa: PLC0415

            model.text_encoder = TextEncoder(**{k: (tuple(v) if isinstance(v, list) else v)
                                                for k, v in meta["text_encoder"].items()})
            model.text_encoder_ = model.text_encoder
            model.item_text_vectors_ = arrays["item_text_vectors"]
        user_ids = _ids_from_array(arrays["user_ids"], id_kinds.get("user_ids"))
        item_ids = _ids_from_array(arrays["item_ids"], id_kinds.get("item_ids"))
        items = None
        if meta.get("items"):
            items = pd.DataFrame(meta["items"], index=item_ids)
        if "matrix.data" in arrays:
            M = csr_from_arrays(arrays, "matrix", arrays_file)
            if M.shape != (len(user_ids), len(item_ids)):
                raise ValueError(f"{str(arrays_file)!r} is inconsistent: matrix of shape {M.shape} for "
                                 f"{len(user_ids)} users and {len(item_ids)} items")
            model.interactions_ = Interactions(M, user_ids, item_ids, items=items)
            model.embeddings_ = arrays["embeddings"]
        else:  # no training data: only the item vocabulary (what assign needs)
            model.interactions_ = Interactions(sp.csr_matrix((0, len(item_ids)), dtype=np.float32),
                                               pd.Index([]), item_ids, items=items)
            model.embeddings_ = None
        model.user_ids_ = user_ids
        model.labels_ = arrays["labels"]
        model.centroids_ = arrays["centroids"]
        model.n_groups_ = n_groups_
        model.n_features_in_ = len(item_ids)
        _check_loaded_arrays(model, arrays_file)
        model.clusterer_ = None
        model.mixture_ = _load_mixture(meta.get("mixture"), arrays, n_groups_, len(item_ids), arrays_file)
        model.k_curve_ = None if meta.get("k_curve") is None else pd.DataFrame(meta["k_curve"])
        model.category_prior_ = None if model.mixture_ is None or model.mixture_.item_categories_ is None \
            else float(model.mixture_.alpha)
        model.category_curve_ = None if meta.get("category_curve") is None else pd.DataFrame(meta["category_curve"])
        model._features = None
        model._has_data = "matrix.data" in arrays
        return model

    def _require_data(self, what: str) -> None:
        if not getattr(self, "_has_data", True):
            raise ValueError(f"{what} needs the training data; this model was saved with include_data=False")

    # -------------------------------------------------------------- quality
    def quality(self, labels_true: Any = None, *, sample_size: int = 5000) -> dict[str, float]:
        """Silhouette (cosine, on a sample) and, given true labels, ARI and NMI."""
        from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score  # noqa

        check_fitted(self, "labels_")
        self._require_data("quality")
        out: dict[str, float] = {"n_groups": float(self.n_groups_)}
        ok = self.labels_ >= 0
        if 1 < len(np.unique(self.labels_[ok])) < int(ok.sum()):  # silhouette's domain
            out["silhouette"] = float(silhouette_score(
                self.embeddings_[ok], self.labels_[ok], metric="cosine",
                sample_size=min(sample_size, int(ok.sum())), random_state=0))
        if labels_true is not None:
            y = np.asarray(labels_true)
            if y.shape != self.labels_.shape:
                raise ValueError(f"labels_true must have shape {self.labels_.shape}, got {y.shape}")
            out["ari"] = float(adjusted_rand_score(y, self.labels_))
            out["nmi"] = float(normalized_mutual_info_score(y, self.labels_))
        return out

    # -------------------------------------------------------------- profiles
    def user_features(self) -> pd.DataFrame:
        """Per-user behavioural features of the training users (cached)."""
        from cohortrec.preprocessing import user_features  # noqa: PLC0415

        check_fitted(self, "labels_")
        self._require_data("user_features")
        if self._features is None:
            self._features = user_features(self.interactions_)
        return self._features

    def profile(self, *, top_n: int = 5, min_support: float = 0.05, features: bool = True,
                policy: Any = None) -> pd.DataFrame:
        """One row per group describing who is in it.

        Columns:

        * ``size``, ``share``, ``small`` (below ``min_group_size``), ``label``
          (a short name from top categories and keywords);
        * ``top_items``: the most over-represented items, as lists of
          ``(name, lift, support)`` where support is the share of the group's
          users who have it and lift is that over the share among all users;
          ranked by ``support * log(lift)`` among those with support >=
          ``min_support`` and lift > 1;
        * ``top_categories``: the same for categories, but measured on
          interactions, as ``(name, lift, share)``: share is the fraction of
          the group's interactions (an item with several categories counting
          once per category) in the category, lift that over the same
          fraction among all users. Per-user support would stay near 1 for
          every category when users have long histories (MovieLens users have
          seen every genre), hiding what the group watches *more* of;
        * ``keywords``: distinguishing words of the group's item texts by
          class-based tf-idf (c-TF-IDF);
        * ``user_<column>``: for categorical user features, the most
          over-represented value as ``(value, share in group, share overall)``;
        * one column per behavioural feature (group mean) and
          ``<feature>_vs_all`` (group mean / overall mean).

        A last row, index ``"all"``, holds the overall values.

        With ``policy`` (a :class:`cohortrec.privacy.Policy`) the profile is
        the protected release meant for publication: groups, items,
        categories, keywords, user-feature values and behaviour means backed
        by fewer than ``policy.min_group_size`` distinct users are suppressed
        (suppressed groups have no row), the ``"all"`` row sums the released
        groups only, and with ``policy.epsilon`` every figure carries
        differentially private noise. ``frame.attrs["privacy"]`` states what
        was protected, the epsilon spent and the expected errors.
        """
        check_fitted(self, "labels_")
        self._require_data("profile")
        if policy is not None:
            return self._private_profile(policy, top_n=top_n, min_support=min_support, features=features)
        X = self.interactions_
        lab = self.labels_
        k = self.n_groups_
        ok = lab >= 0
        sizes = np.bincount(lab[ok], minlength=k)
        n = X.n_users
        min_size = self.min_group_size
        min_size = min_size * n if isinstance(min_size, float) and min_size < 1 else float(min_size)
        rows: dict[str, list[Any]] = {
            "size": list(sizes) + [n], "share": list(sizes / n) + [1.0],
            "small": list(sizes < min_size) + [False],
        }
        G = group_indicator(lab[ok], k)
        B = X.matrix[ok].copy()
        B.data[:] = 1.0
        item_sup = np.asarray((G @ B).todense()) / np.maximum(sizes, 1)[:, None]
        item_all = np.asarray(B.sum(axis=0)).ravel() / max(int(ok.sum()), 1)
        titles = (X.items["title"].astype(str).to_numpy() if X.items is not None and "title" in X.items.columns
                  else np.asarray(X.item_ids.astype(str)))
        rows["top_items"] = [_top_lift(item_sup[g], item_all, titles, top_n, min_support) for g in range(k)] + [
            [(titles[j], 1.0, float(item_all[j])) for j in np.argsort(-item_all)[:top_n]]]
        Cm, cats = X.item_categories()
        top_cats: list[Any] = [[] for _ in range(k)] + [[]]
        if cats:
            UC = sp.csr_matrix(B @ Cm)  # user x category interaction counts
            GC = np.asarray((G @ UC).todense(), dtype=np.float64)
            tot = GC.sum(axis=1, keepdims=True)
            cat_share = np.divide(GC, tot, out=np.zeros_like(GC), where=tot > 0)
            allc = np.asarray(UC.sum(axis=0), dtype=np.float64).ravel()
            cat_all = allc / max(float(allc.sum()), 1.0)
            names = np.asarray(cats, dtype=object)
            top_cats = [_top_lift(cat_share[g], cat_all, names, top_n, 0.0) for g in range(k)] + [
                [(names[j], 1.0, round(float(cat_all[j]), 3)) for j in np.argsort(-cat_all)[:top_n]]]
        rows["top_categories"] = top_cats
        kw = self._keywords(G, X.matrix[ok], top_n)
        rows["keywords"] = kw + [[]]
        labels_txt = []
        for g in range(k):
            parts = [c[0] for c in top_cats[g][:2]]
            words = [w for w in kw[g] if not any(w in p.lower() for p in parts)][:2]
            labels_txt.append(" + ".join(parts) + (" | " if parts and words else "") + ", ".join(words)
                              if parts or words else f"group {g}")
        rows["label"] = labels_txt + ["all users"]
        if X.users is not None:
            users = X.users.iloc[np.flatnonzero(ok)]
            for col in users.columns:
                s = users[col]
                if s.dtype.kind in "OUSb" or isinstance(s.dtype, pd.CategoricalDtype) or s.nunique() <= 12:
                    overall = s.value_counts(normalize=True)
                    vals = []
                    for g in range(k):
                        vc = s[lab[ok] == g].value_counts(normalize=True)
                        if vc.empty:
                            vals.append(None)
                            continue
                        lift = (vc / overall.reindex(vc.index)).fillna(0)
                        v = lift.idxmax()
                        vals.append((v, float(vc[v]), float(overall[v])))
                    rows[f"user_{col}"] = vals + [(overall.index[0], float(overall.iloc[0]), float(overall.iloc[0]))]
        out = pd.DataFrame(rows, index=list(range(k)) + ["all"])
        out.index.name = "group"
        if features:
            F = self.user_features().iloc[np.flatnonzero(ok)]
            F = F[[c for c in F.columns if not c.startswith("cat_")]]
            means = F.groupby(lab[ok]).mean().reindex(range(k))
            overall = F.mean()
            means.loc["all"] = overall
            rel = means / overall.replace(0, np.nan)
            rel.columns = [f"{c}_vs_all" for c in rel.columns]
            out = pd.concat([out, means, rel], axis=1)
        cols = ["size", "share", "small", "label"] + [c for c in out.columns
                                                      if c not in ("size", "share", "small", "label")]
        return out[cols]

    def _private_profile(self, policy: Any, *, top_n: int, min_support: float, features: bool) -> pd.DataFrame:
        """:meth:`profile` under a :class:`cohortrec.privacy.Policy` (see there)."""
        from cohortrec.privacy import Policy  # noqa: PLC0415

        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a cohortrec.privacy.Policy or None, got {type(policy).__name__}")
        return policy.profile(self, top_n=top_n, min_support=min_support, features=features)

    def _keywords(self, G: sp.csr_matrix, M: sp.csr_matrix, top_n: int) -> list[list[str]]:
        X = self.interactions_
        texts = X.item_text()
        k = G.shape[0]
        if not any(texts):
            return [[] for _ in range(k)]
        from sklearn.feature_extraction.text import CountVectorizer  # noqa: PLC0415

        try:
            cv = CountVectorizer(stop_words="english", min_df=2, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
            T = cv.fit_transform(texts)
        except ValueError:  # empty vocabulary
            return [[] for _ in range(k)]
        W = M.copy()
        W.data = np.log1p(np.abs(W.data))
        tf = np.asarray((G @ W @ T).todense(), dtype=np.float64)  # group x term
        tot = tf.sum(axis=1, keepdims=True)
        tfn = np.divide(tf, tot, out=np.zeros_like(tf), where=tot > 0)
        f_t = tf.sum(axis=0)
        A = tot.mean()
        idf = np.log1p(A / np.maximum(f_t, 1e-12))
        score = tfn * idf
        vocab = np.asarray(cv.get_feature_names_out())
        return [list(vocab[np.argsort(-score[g])[:top_n]]) for g in range(k)]


def _check_loaded_arrays(model: GroupDiscovery, path: Path) -> None:
    """The loaded labels, centroids and embeddings agree with each other (checked at load, not at use)."""
    n, k = len(model.user_ids_), model.n_groups_
    lab, C = model.labels_, model.centroids_
    problems = []
    if lab.shape != (n,) or lab.dtype.kind not in "iu":
        problems.append(f"labels of shape {lab.shape} and dtype {lab.dtype} for {n} users")
    elif n and (int(lab.min()) < -1 or int(lab.max()) >= k):
        problems.append(f"labels outside [-1, {k})")
    if C.shape[0] != k or not np.isfinite(C).all():
        problems.append(f"centroids of shape {C.shape} (or non-finite) for {k} groups")
    Z = model.embeddings_
    if Z is not None and (Z.ndim != 2 or Z.shape != (n, C.shape[1])):
        problems.append(f"embeddings of shape {Z.shape}, expected ({n}, {C.shape[1]})")
    if problems:
        raise ValueError(f"{str(path)!r} is inconsistent: " + "; ".join(problems))


def _load_mixture(meta: Any, arrays: dict[str, np.ndarray], k: int, n_items: int, path: Path) -> Any:
    """The refining mixture of a saved model (format 3), or None (format 2, or ``refine=None``)."""
    if meta is None:
        return None
    from cohortrec.cluster import MultinomialMixture  # noqa: PLC0415

    require(arrays, {"mixture_counts": 2, "mixture_weights": 1, "mixture_background": 1}, path)
    counts, weights, bg = arrays["mixture_counts"], arrays["mixture_weights"], arrays["mixture_background"]
    try:
        alpha, n_users, binary = float(meta["alpha"]), float(meta["n_users"]), bool(meta["binary"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{str(path)!r}: invalid mixture header {meta!r}: {exc!r}") from None
    good = (counts.shape == (k, n_items) and weights.shape == (k,) and bg.shape == (n_items,)
            and all(np.isfinite(a).all() and (a >= 0).all() for a in (counts, weights, bg))
            and (bg > 0).all() and alpha > 0 and np.isfinite(alpha))
    if not good:
        raise ValueError(f"{str(path)!r} is inconsistent: mixture arrays of shapes {counts.shape}, "
                         f"{weights.shape}, {bg.shape} for {k} groups and {n_items} items (or invalid values)")
    mm = MultinomialMixture(k, alpha=alpha, binary=binary)
    mm.counts_, mm.weights_, mm.background_ = counts, weights, bg
    mm.n_users_, mm.n_features_in_ = n_users, n_items
    try:
        mm._set_item_categories(csr_from_arrays(arrays, "mixture_categories", path) if meta.get("categories")
                                else None, n_items)
    except ValueError as exc:
        raise ValueError(f"{str(path)!r} is inconsistent: {exc}") from None
    mm._refresh()
    return mm


#: the refining mixture (refine="multinomial"): every user-item pair counted once, one pseudo-event per item;
#: chosen by the worst case over the planted worlds (benchmarks/bench_discovery_robustness.py --alphas)
MIXTURE_SETTINGS: dict[str, Any] = {"alpha": 1.0, "binary": True}

#: strengths of the category-centred prior that ``category_prior="auto"`` tries against the background prior;
#: 10 was the best single strength over the planted worlds (median ARI 0.899), 3 the safer one where categories
#: carry little (benchmarks/bench_discovery_robustness.py; the held-out likelihood picks per data set)
CATEGORY_PRIORS: tuple[float, ...] = (3.0, 10.0)

#: dimensions of the default SVD encoder for up to 12 groups (more get 2K: see svd_components)
SVD_COMPONENTS = 24


def svd_components(n_groups: Any, k_range: Any) -> int:
    """Dimensions of the default SVD: :data:`SVD_COMPONENTS`, or twice a given K above half of it.

    K groups need about K dimensions to lie apart in; on the planted worlds with 20 and 40 groups,
    2K dimensions raised the ARI of the 40-group noisy world from 0.882 to 0.905 and lowered none with K given
    (8-group worlds keep 24). With ``n_groups="auto"`` the largest K searched sets it (24 for the
    default ``k_range``). Shared by :class:`GroupDiscovery` and the Dask pipeline.
    """
    if isinstance(n_groups, (int, np.integer)) and not isinstance(n_groups, bool):
        return max(SVD_COMPONENTS, 2 * int(n_groups))
    try:
        top = max(int(v) for v in k_range)
    except (TypeError, ValueError):
        top = 0  # an invalid k_range is reported where it is used
    return max(SVD_COMPONENTS, top)

#: restarts of the default clusterer (spherical K-means, the best inertia kept). Near-equal local optima
#: made the groups depend on the seed with 10: seed-to-seed ARI on Last.fm (K=8) 0.86 -> 0.96 and on
#: ml-latest-small (K=5) 0.87 -> 0.90 with 50; on the 27 planted worlds the same ARI (median 0.882) and
#: stability mean 0.959 -> 0.976, worst 0.706 -> 0.816; 100 restarts gained no more
#: (benchmarks/results/group-trust-2026-12-06-restarts.md). Cost: +0.3 s at 20k users.
KMEANS_RESTARTS = 50

#: above this many users, the default clusterer's restarts run on a sample of this size and only the
#: best one is refined on everyone (the restarts cost KMEANS_RESTARTS full fits otherwise)
KMEANS_SAMPLE = 100_000


def _fit_kmeans_restarts_on_sample(Z: np.ndarray, k: int, seed: int, device: str) -> Any:
    """The default clusterer: spherical K-means with :data:`KMEANS_RESTARTS` restarts, fitted on ``Z``.

    Up to :data:`KMEANS_SAMPLE` rows this is ``KMeans(k, n_init=KMEANS_RESTARTS).fit(Z)``.
    Beyond, the restarts run on a uniform sample of that size and the best
    centres start one Lloyd run on all rows, so the cost on all rows is one
    fit instead of ten.
    """
    from cohortrec.cluster import KMeans  # noqa: PLC0415

    n = Z.shape[0]
    if n <= KMEANS_SAMPLE:
        return KMeans(k, spherical=True, n_init=KMEANS_RESTARTS, random_state=seed, device=device).fit(Z)
    rows = np.sort(np.random.RandomState(seed).choice(n, KMEANS_SAMPLE, replace=False))
    pilot = KMeans(k, spherical=True, n_init=KMEANS_RESTARTS, random_state=seed, device=device).fit(Z[rows])
    return KMeans(k, spherical=True, n_init=1, init=np.asarray(pilot.cluster_centers_), random_state=seed,
                  device=device).fit(Z)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.random.RandomState):
        return None
    return v


def _text_or_list(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (list, tuple, np.ndarray)):
        return [str(x) for x in v]
    return str(v)


def _ids_to_array(index: pd.Index) -> tuple[np.ndarray, str]:
    """Ids as a pickle-free array and the kind needed to restore them."""
    values = index.to_numpy()
    if values.dtype.kind in "iu":
        return values.astype(np.int64), "int"
    if values.dtype.kind == "f":
        return values.astype(np.float64), "float"
    return np.asarray([str(v) for v in values], dtype=str), "str"


def _ids_from_array(arr: np.ndarray, kind: str) -> pd.Index:
    if kind == "str":
        return pd.Index([str(v) for v in arr], dtype=object)
    return pd.Index(arr)


def _top_lift(sup: np.ndarray, base: np.ndarray, names: np.ndarray, top_n: int, min_support: float
              ) -> list[tuple[str, float, float]]:
    """Most over-represented entries: ranked by ``support * log(lift)`` among those with
    ``support >= min_support`` (frequent *and* over-represented; a pure lift ranking
    would favour items seen by a handful of users)."""
    lift = np.divide(sup, base, out=np.zeros_like(sup), where=base > 0)
    cand = np.flatnonzero((sup >= min_support) & (lift > 1.0))
    if cand.size == 0:
        cand = np.argsort(-sup)[:top_n]
    score = sup[cand] * np.log(np.maximum(lift[cand], 1e-12))
    order = cand[np.lexsort((-sup[cand], -score))][:top_n]
    return [(str(names[j]), round(float(lift[j]), 3), round(float(sup[j]), 3)) for j in order]
