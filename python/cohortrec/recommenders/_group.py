"""Group-aware collaborative filtering (the seed design's GroupRecommender).

A user's score for item ``j`` blends

(a) user-kNN CF where the neighbours are searched *inside the user's group*
    (far fewer user-user similarities than a search over all users), and
(b) the preference profiles ``p_kj`` of the groups the user belongs to, with
    soft membership: ``r_uj = sum_k w(u,k) p_kj / sum_k w(u,k)``, ``w(u,k)``
    from the user's similarity to group ``k``'s centroid.

``score(u, j) = (1 - blend) * cf(u, j) + blend * r_uj``. Both parts are
weighted averages (of the neighbours' interactions and of the groups'
interaction rates), so they share a scale when interactions are 0/1.
Everything is one call of :func:`cohortrec.ops.topk_scores` on the stacked
matrices ``[W_cf | W_groups] @ [X ; P]``.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from cohortrec import ops
from cohortrec._validation import as_generator, check_int, l2_normalize_rows
from cohortrec.cluster import KMeans
from cohortrec.ops import prepare_csr, row_server, row_topk
from cohortrec.recommenders._base import (
    RecommenderBase,
    RecommenderWarning,
    mask_columns,
    rows_of,
    scale_rows,
)
from cohortrec.recommenders._knn import _powered
from cohortrec.recommenders._online import OnlineMixin, affected_rows, changed_neighbours, merge_neighbours
from cohortrec.recommenders._serving import sparse_one as _sparse_one

__all__ = ["GroupRecommender"]

#: candidate (query, neighbour) entries held at once by the neighbour search (queries are taken in
#: blocks of about this many / (search_groups * (k + 1)))
_NEIGHBOUR_BLOCK_PAIRS = 4_000_000


def _dot_dense(X: sp.csr_matrix | np.ndarray, C: np.ndarray) -> np.ndarray:
    """``X @ C.T`` as a dense float64 array."""
    out = X @ C.T
    return np.asarray(out, dtype=np.float64)


def _seed(random_state: Any) -> int | np.random.RandomState | None:
    """``random_state`` as KMeans takes it (a Generator gives one draw)."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31))
    return random_state


def _merge_topk(r: np.ndarray, c: np.ndarray, v: np.ndarray, n_rows: int, n_cols: int,
                k: int, drop: np.ndarray | None, **kw: Any) -> sp.csr_matrix:
    """CSR of the best ``k`` (value desc, col asc) entries per row, rows sorted best first.

    ``(r, c)`` pairs are distinct; ``drop[row]`` (>= 0) is a column removed
    from that row (the user itself). Zero values are dropped (a neighbour of
    weight 0 scores nothing).
    """
    M = sp.csr_matrix((v, (r, c)), shape=(n_rows, n_cols))
    E = None
    if drop is not None:
        rows = np.flatnonzero(drop >= 0)
        E = sp.csr_matrix((np.ones(rows.size, dtype=M.dtype), (rows, drop[rows])), shape=(n_rows, n_cols))
    return row_topk(M, k, exclude=E, **kw).astype(np.float32)


class GroupRecommender(OnlineMixin, RecommenderBase):
    """Group-aware CF: in-group neighbours blended with soft group profiles.

    Parameters
    ----------
    n_groups : int, default 64
        Groups found by the built-in spherical k-means (ignored when labels
        or a clusterer are given); at most the number of users with items
        (more raises ``ValueError``, as ``KMeans`` does).
        Many small groups route the neighbour search finely (like the lists
        of an IVF index); the profiles of small groups are noisier.
    k : int, default 50
        Neighbours per user, searched among the members of the user's
        group(s).
    blend : float in [0, 1], default 0.1
        Weight of the group-profile part; 0 is pure in-group user-kNN, 1
        the pure group profile.
    soft : int, default 3
        Number of most similar groups in a user's soft membership ``w(u, .)``
        (1 = hard membership).
    membership_power : float, default 4.0
        ``w(u, k) = max(cos(u, c_k), 0) ** membership_power`` over those
        groups (larger = closer to hard membership).
    search_groups : int, default 8
        Neighbours are searched among the members of the user's own group
        and of its ``search_groups - 1`` most similar other groups (cosine to
        the centroids); 1 = the user's own group only. With balanced groups
        the search covers about ``search_groups / n_groups`` of the users.
    power : float, default 1.0
        Neighbour similarities are raised to this power (as in
        :class:`UserKNN`).
    profile_size : int, default 1000
        Items kept in each group profile (its most frequent ones).
    n_components : int, optional
        Cluster on a truncated-SVD embedding of this size instead of the
        L2-normalised interaction rows.
    clusterer : object with ``fit``, optional
        Used instead of the built-in k-means, e.g.
        ``cohortrec.cluster.KMeans(32, spherical=True)``, a scikit-learn
        clusterer or ``cohortrec.GroupDiscovery``. Its ``labels_`` after
        ``fit`` (else ``predict``) give the groups (negative labels = no
        group: such users join the nearest group centroid); new users are
        assigned with its ``predict`` (else ``assign``), falling back to the
        nearest centroid. Users without any item are not passed to it.
    clusterer_input : {"embedding", "interactions"}, default "embedding"
        What the clusterer is fitted on: the L2-normalised user rows (or the
        SVD embedding with ``n_components``), or the raw ``user_items`` rows
        (for clusterers that embed by themselves, like ``GroupDiscovery``).
    max_iter : int, default 30
        Built-in k-means iterations.
    max_candidates : int or None, default None
        Search each group's neighbours among at most this many of its
        members (a fixed random sample of the group, drawn with
        ``random_state``); ``None`` searches all members. Without a cap the
        search costs about ``n_users**2 * search_groups / n_groups`` pairs,
        which dominates at a million users with a few large groups; with it
        the cost is linear in the users (``n_users * search_groups *
        max_candidates`` pairs at most). Neighbours are then the best of the
        sample, not of the whole group.
    random_state : int or None
    device, n_threads, batch_size
        See :class:`~cohortrec.recommenders.RecommenderBase`.

    Attributes
    ----------
    labels_ : ndarray of int64, shape (n_users,)
        Group of every training user.
    centroids_ : ndarray of float32, shape (n_groups_, d)
        Unit-norm group centroids (in item space, or in the SVD space).
    profiles_ : scipy.sparse.csr_matrix, shape (n_groups_, n_items)
        ``p_kj``: fraction of group ``k``'s members who interacted with ``j``
        (top ``profile_size`` items per group).
    memberships_ : scipy.sparse.csr_matrix, shape (n_users, n_groups_)
        Normalised soft membership weights ``w(u, k) / sum_k w(u, k)``.
    similarity_ : scipy.sparse.csr_matrix, shape (n_users, n_users)
        In-group top-k cosine neighbours.
    clusterer_labels_ : ndarray or None
        The clusterer's label of each group (``None`` without a clusterer).
    n_similarities_ : int
        User pairs whose similarity the neighbour search considered
        (compare with :attr:`UserKNN.n_similarities_`).

    Examples
    --------
    >>> from cohortrec.recommenders import GroupRecommender
    >>> model = GroupRecommender(n_groups=8, k=30).fit(X)         # doctest: +SKIP
    >>> ids, scores = model.recommend(userids, X[userids], N=10)   # doctest: +SKIP
    >>> GroupRecommender().fit(X, groups=my_labels)                # doctest: +SKIP
    """

    _param_names: ClassVar[tuple[str, ...]] = (
        "n_groups", "k", "blend", "soft", "membership_power", "search_groups", "power",
        "profile_size", "n_components", "clusterer", "clusterer_input", "max_iter", "random_state",
        "max_candidates")
    _state_names: ClassVar[tuple[str, ...]] = (
        "user_items_", "labels_", "centroids_", "profiles_", "memberships_", "similarity_",
        "components_", "group_sizes_", "clusterer_labels_")

    def __init__(self, n_groups: int = 64, k: int = 50, blend: float = 0.1, soft: int = 3,
                 membership_power: float = 4.0, search_groups: int = 8, power: float = 1.0,
                 profile_size: int = 1000, n_components: int | None = None,
                 clusterer: Any | None = None, clusterer_input: str = "embedding", max_iter: int = 30,
                 random_state: Any = None, *, max_candidates: int | None = None,
                 device: str = "auto", n_threads: int | None = None, batch_size: int = 2048) -> None:
        super().__init__(device=device, n_threads=n_threads, batch_size=batch_size)
        self.n_groups = n_groups
        self.k = k
        self.blend = blend
        self.soft = soft
        self.membership_power = membership_power
        self.search_groups = search_groups
        self.power = power
        self.profile_size = profile_size
        self.n_components = n_components
        self.clusterer = clusterer
        self.clusterer_input = clusterer_input
        self.max_iter = max_iter
        self.random_state = random_state
        self.max_candidates = max_candidates

    # -- fit -----------------------------------------------------------------
    def fit(self, user_items: Any, show_progress: bool = False,
            groups: Any | None = None) -> GroupRecommender:
        """Fit on a users x items matrix, optionally with precomputed groups.

        Parameters
        ----------
        user_items : scipy.sparse.csr_matrix, shape (n_users, n_items)
        show_progress : bool, default False
            Progress of the neighbour search (a bar on a terminal, else a
            line every 10 s: users done, rate, time left).
        groups : array-like of int, shape (n_users,), optional
            Precomputed group label of every user (any integers; relabelled
            to ``0..n_groups_-1`` in sorted order). New users are then
            assigned to the nearest group centroid.

        Returns
        -------
        self
        """
        self._given_groups = None if groups is None else np.asarray(groups)
        self._show_progress = bool(show_progress)
        try:
            super().fit(user_items, show_progress)
        finally:
            self._given_groups = None
            self._show_progress = False
        return self

    def _check_params(self) -> None:
        check_int(self.k, "k", minimum=1)
        check_int(self.n_groups, "n_groups", minimum=1)
        check_int(self.soft, "soft", minimum=1)
        check_int(self.search_groups, "search_groups", minimum=1)
        check_int(self.profile_size, "profile_size", minimum=1)
        check_int(self.max_iter, "max_iter", minimum=1)
        if self.max_candidates is not None:
            check_int(self.max_candidates, "max_candidates", minimum=1)
        if not 0.0 <= float(self.blend) <= 1.0:
            raise ValueError(f"blend must lie in [0, 1], got {self.blend!r}")
        if self.n_components is not None:
            check_int(self.n_components, "n_components", minimum=1)
        if self.clusterer is not None and not hasattr(self.clusterer, "fit"):
            raise TypeError("clusterer must have a fit method (and labels_ or predict), got "
                            f"{type(self.clusterer).__name__}")
        if self.clusterer_input not in ("embedding", "interactions"):
            raise ValueError("clusterer_input must be 'embedding' or 'interactions', got "
                             f"{self.clusterer_input!r}")

    def _fit(self, X: sp.csr_matrix) -> None:
        self._check_params()
        self._stacked_cache = None
        self.clusterer_labels_ = None
        n_users, _n_items = X.shape
        active = np.diff(X.indptr) > 0
        self.components_ = None
        Z = self._embed_fit(X, active)
        given = getattr(self, "_given_groups", None)
        if given is not None:
            if given.shape != (n_users,):
                raise ValueError(f"groups must hold one label per user, shape ({n_users},), got {given.shape}")
            _, labels = np.unique(given, return_inverse=True)
            labels = labels.astype(np.int64).ravel()
            n_groups = int(labels.max()) + 1 if n_users else 1
            centroids = self._centroids(Z, labels, n_groups)
        elif self.clusterer is not None:
            labels, n_groups = self._cluster_with(X, Z, active)
            centroids = self._centroids(Z, labels, n_groups, active & (labels >= 0))
            lost = active & (labels < 0)  # "noise" users of the clusterer: nearest group
            if lost.any():
                labels[lost] = np.argmax(_dot_dense(Z[lost], centroids.astype(np.float64)), axis=1)
        else:
            n_act = int(active.sum())
            if n_act and int(self.n_groups) > n_act:  # as KMeans and GroupDiscovery: no silent cap
                raise ValueError(f"n_groups={int(self.n_groups)} is larger than the number of users with "
                                 f"interactions ({n_act}); give at most that many groups")
            n_groups = max(1, min(int(self.n_groups), n_act))
            labels = np.zeros(n_users, dtype=np.int64)
            if n_act:
                # the package's one K-means core, in cosine geometry (unit rows and centres)
                km = KMeans(n_groups, spherical=True, n_init=1, max_iter=int(self.max_iter),
                            random_state=_seed(self.random_state), **self._ops_kwargs()).fit(Z[active])
                labels[active] = km.labels_
                centroids = np.asarray(km.cluster_centers_, dtype=np.float32)
            else:
                centroids = np.zeros((1, Z.shape[1]), np.float32)
        sizes = np.bincount(labels[active], minlength=n_groups).astype(np.int64)
        if given is None and (~active).any():  # users with no items: the largest group
            labels[~active] = int(np.argmax(sizes)) if sizes.size else 0
        self.labels_ = labels
        self.centroids_ = np.asarray(centroids, dtype=np.float32)
        self.group_sizes_ = sizes
        self.profiles_ = self._profiles(X, labels, active, n_groups)
        self.memberships_ = self._memberships(Z, active)
        S, self.n_similarities_ = self._neighbours(X, np.arange(n_users), X, labels, active, fit=True)
        S.sort_indices()  # canonical: the scoring kernel would sort a copy on every call
        self.similarity_ = S

    # -- pieces --------------------------------------------------------------
    def _cluster_with(self, X: sp.csr_matrix, Z, active: np.ndarray) -> tuple[np.ndarray, int]:
        """Labels from the user's clusterer (-1 = none), relabelled 0..n_groups-1."""
        src = X[active] if self.clusterer_input == "interactions" else Z[active]
        self.clusterer.fit(src)
        lab = getattr(self.clusterer, "labels_", None)
        if lab is None:
            if not hasattr(self.clusterer, "predict"):
                raise TypeError("the clusterer has neither labels_ after fit nor a predict method")
            lab = self.clusterer.predict(src)
        lab = np.asarray(lab).ravel()
        if lab.shape != (int(active.sum()),):
            raise ValueError(f"the clusterer gave {lab.shape[0]} labels for {int(active.sum())} users")
        ok = lab >= 0
        self.clusterer_labels_ = np.unique(lab[ok])
        labels = np.full(X.shape[0], -1, dtype=np.int64)
        sub = np.full(lab.shape, -1, dtype=np.int64)
        sub[ok] = np.searchsorted(self.clusterer_labels_, lab[ok])
        labels[active] = sub
        return labels, max(len(self.clusterer_labels_), 1)

    def _embed_fit(self, X: sp.csr_matrix, active: np.ndarray) -> sp.csr_matrix | np.ndarray:
        Xn = l2_normalize_rows(X)
        if self.n_components is None:
            return Xn
        d = min(int(self.n_components), max(min(X.shape) - 1, 1))
        if Xn.nnz == 0 or min(X.shape) < 2:
            self.components_ = np.zeros((X.shape[1], d), np.float32)
        else:
            from sklearn.utils.extmath import randomized_svd
            _, _, Vt = randomized_svd(Xn.astype(np.float64), d, random_state=_seed_of(self.random_state))
            self.components_ = np.ascontiguousarray(Vt.T, dtype=np.float32)
        return self._embed(Xn)

    def _embed(self, Xn: sp.csr_matrix) -> sp.csr_matrix | np.ndarray:
        """Representation used for groups: normalised rows, or their SVD projection."""
        if self.components_ is None:
            return Xn
        return l2_normalize_rows(np.asarray(Xn @ self.components_, dtype=np.float64)).astype(np.float32)

    def _centroids(self, Z, labels, n_groups, active=None) -> np.ndarray:
        sel = np.ones(len(labels), bool) if active is None else active
        sums, _ = ops.kmeans_update(Z[sel] if sel.size else Z, labels[sel], n_groups,
                                    **self._ops_kwargs())
        return l2_normalize_rows(np.asarray(sums, np.float64)).astype(np.float32)

    def _profiles(self, X, labels, active, n_groups) -> sp.csr_matrix:
        """p_kj = share of group k's members (with items) who interacted with j."""
        B = X.copy()
        B.data[:] = 1.0
        members = sp.csr_matrix((np.ones(int(active.sum()), np.float32),
                                 (labels[active], np.flatnonzero(active))),
                                shape=(n_groups, X.shape[0]))
        counts = np.asarray(members.sum(axis=1)).ravel()
        P = sp.csr_matrix(members @ B)
        inv = np.divide(1.0, counts, out=np.zeros_like(counts, dtype=np.float64), where=counts > 0)
        P = _keep_top_per_row(scale_rows(P, inv), int(self.profile_size))
        P.sort_indices()
        return P

    def _memberships(self, Z, active: np.ndarray) -> sp.csr_matrix:
        """Soft membership rows w(u, k) / sum_k w(u, k), top ``soft`` groups."""
        n = Z.shape[0]
        K = self.centroids_.shape[0]
        sims = _dot_dense(Z, self.centroids_.astype(np.float64)) if n else np.zeros((0, K))
        s = min(int(self.soft), K)
        top = np.argsort(-sims, axis=1, kind="stable")[:, :s]
        w = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0) ** float(self.membership_power)
        tot = w.sum(axis=1)
        sizes = self.group_sizes_.astype(np.float64)
        prior = sizes / sizes.sum() if sizes.sum() > 0 else np.full(K, 1.0 / K)
        rows = np.repeat(np.arange(n), s)
        M = sp.csr_matrix((w.ravel(), (rows, top.ravel())), shape=(n, K))
        M = scale_rows(M, np.divide(1.0, tot, out=np.zeros_like(tot), where=tot > 0))
        lost = (tot <= 0) | ~active  # no similarity to any group: group-size prior
        if lost.any():
            nl = int(lost.sum())
            fill = sp.csr_matrix((np.tile(prior, nl), (np.repeat(np.flatnonzero(lost), K),
                                                      np.tile(np.arange(K), nl))), shape=(n, K))
            M = sp.csr_matrix(scale_rows(M, (~lost).astype(np.float64)) + fill)
        M.eliminate_zeros()
        return M.astype(np.float32)

    def _routing(self, Q: sp.csr_matrix, q_labels: np.ndarray) -> np.ndarray:
        """Groups searched for each query row, shape (n_queries, search_groups).

        Column 0 is the row's own group, the others its most similar other
        groups (cosine to the centroids).
        """
        K = self.centroids_.shape[0]
        sg = min(int(self.search_groups), K)
        q_labels = np.asarray(q_labels, dtype=np.int64)
        if sg == 1:
            return q_labels[:, None]
        sims = _dot_dense(self._embed(l2_normalize_rows(Q)), self.centroids_.astype(np.float64))
        order = np.argsort(-sims, axis=1, kind="stable")
        others = order[order != q_labels[:, None]].reshape(len(q_labels), K - 1)
        return np.concatenate([q_labels[:, None], others[:, :sg - 1]], axis=1)

    def _neighbours(self, Q: sp.csr_matrix, qids: np.ndarray, X: sp.csr_matrix, labels: np.ndarray,
                    q_active: np.ndarray, fit: bool = False,
                    q_labels: np.ndarray | None = None) -> tuple[sp.csr_matrix, int]:
        """In-group top-k neighbours of the query rows ``Q`` among the training users.

        Returns the neighbour matrix (queries x training users, self
        excluded) and the number of user pairs searched. Queries are taken
        in blocks, each merged to its top ``k`` before the next, so that the
        candidate lists never hold more than one block's worth of pairs.
        """
        K = self.centroids_.shape[0]
        train_active = np.diff(X.indptr) > 0
        q_labels = labels[qids] if q_labels is None else q_labels
        route = self._routing(Q, q_labels)  # (n_queries, search_groups)
        pools, sampled = self._candidate_pools(labels, train_active, K)
        n_q = len(qids)
        block = max(1, _NEIGHBOUR_BLOCK_PAIRS // max(route.shape[1] * (int(self.k) + 1), 1))
        if n_q <= block:
            return self._neighbours_block(Q, qids, X, route, q_active, pools, sampled, fit)
        from cohortrec._progress import Progress  # noqa: PLC0415

        parts, pairs = [], 0
        bar = Progress(n_q, "GroupRecommender: neighbours", unit="user",
                       enabled=fit and getattr(self, "_show_progress", False))
        for s in range(0, n_q, block):
            e = min(s + block, n_q)
            S, p = self._neighbours_block(Q[s:e], qids[s:e], X, route[s:e], q_active[s:e], pools, sampled,
                                          fit)
            parts.append(S)
            pairs += p
            bar.update(e - s)
        bar.close()
        return sp.vstack(parts, format="csr", dtype=np.float32), int(pairs)

    def _candidate_pools(self, labels: np.ndarray, train_active: np.ndarray,
                         K: int) -> tuple[list[np.ndarray], list[bool]]:
        """Training users searched in every group: its members with items, at most ``max_candidates``."""
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(K + 1))
        cap = self.max_candidates
        seed = _seed_of(self.random_state)
        pools, sampled = [], []
        for g in range(K):
            mem = order[bounds[g]:bounds[g + 1]]
            mem = np.sort(mem[train_active[mem]])
            if cap is not None and mem.size > int(cap):
                rng = np.random.default_rng(None if seed is None else [seed, g])
                mem = np.sort(rng.choice(mem, int(cap), replace=False))
                sampled.append(True)
            else:
                sampled.append(False)
            pools.append(mem)
        return pools, sampled

    def _neighbours_block(self, Q: sp.csr_matrix, qids: np.ndarray, X: sp.csr_matrix, route: np.ndarray,
                          q_active: np.ndarray, pools: list[np.ndarray], sampled: list[bool],
                          fit: bool) -> tuple[sp.csr_matrix, int]:
        """:meth:`_neighbours` of one block of queries (rows of ``route``)."""
        n_train = X.shape[0]
        K = len(pools)
        k = int(self.k)
        kw = self._ops_kwargs()
        sg = route.shape[1]
        # the queries of each group, from the (query, group) pairs of the routing
        pq = np.repeat(np.arange(len(qids)), sg)
        pg = route.ravel()
        ok = (pg >= 0) & q_active[pq]
        pq, pg = pq[ok], pg[ok]
        order = np.argsort(pg, kind="stable")
        bounds = np.searchsorted(pg[order], np.arange(K + 1))
        rr, cc, vv = [], [], []
        pairs = 0
        for g in range(K):
            mem = pools[g]
            qsel = np.unique(pq[order[bounds[g]:bounds[g + 1]]])
            if mem.size == 0 or qsel.size == 0:
                continue
            if fit and sg == 1 and not sampled[g] and qsel.size == mem.size and np.array_equal(qids[qsel], mem):
                S = ops.cosine_topk(X[mem], k=k, exclude_self=True, **kw)  # queries = members: symmetric
                pairs += mem.size * (mem.size - 1)
                qrows = qsel
            else:
                S = ops.cosine_topk(Q[qsel], X[mem], k=k + 1, exclude_self=False, **kw)
                pairs += qsel.size * mem.size - int(np.isin(qids[qsel], mem).sum())
                qrows = qsel
            rr.append(np.repeat(qrows, np.diff(S.indptr)))
            cc.append(mem[S.indices])
            vv.append(S.data)
        if rr:
            r, c, v = np.concatenate(rr), np.concatenate(cc), np.concatenate(vv)
        else:
            r = c = np.zeros(0, np.int64)
            v = np.zeros(0, np.float32)
        drop = np.where(qids < n_train, qids, -1)
        return _merge_topk(r, c, v, len(qids), n_train, k, drop, **kw), int(pairs)

    # -- scoring -------------------------------------------------------------
    def _fold_in(self, userids: np.ndarray, rows: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(neighbour weights, memberships) of users computed from ``rows``."""
        known = (userids < self.n_users_)
        had_items = np.zeros(len(userids), bool)
        had_items[known] = np.diff(self.user_items_.indptr)[userids[known]] > 0
        active = np.diff(rows.indptr) > 0
        Z = self._embed(l2_normalize_rows(rows))
        labels = np.zeros(len(userids), np.int64)
        labels[known & had_items] = self.labels_[userids[known & had_items]]
        new = ~(known & had_items)
        if new.any():
            labels[new] = self._assign(Z, new, rows)
        M = self._memberships(Z, active)
        S, _ = self._neighbours(rows, userids, self.user_items_, self.labels_, active,
                                q_labels=labels)
        return S, M

    def _assign(self, Z, sel: np.ndarray, rows: sp.csr_matrix | None = None) -> np.ndarray:
        """Groups of new users: the clusterer's ``predict`` / ``assign``, else the nearest centroid."""
        Zs = Z[sel]
        sims = _dot_dense(Zs, self.centroids_.astype(np.float64))
        nearest = np.argmax(sims, axis=1).astype(np.int64) if sims.size else np.zeros(Zs.shape[0], np.int64)
        method = None
        if self.clusterer is not None:
            method = getattr(self.clusterer, "predict", None) or getattr(self.clusterer, "assign", None)
        if method is None or getattr(self, "clusterer_labels_", None) is None:
            return nearest
        src = rows[sel] if self.clusterer_input == "interactions" and rows is not None else Zs
        try:
            raw = np.asarray(method(src)).ravel()
        except Exception as exc:  # noqa: BLE001 - fall back, but say so
            warnings.warn(f"the clusterer could not assign new users ({exc}); using the nearest "
                          "group centroid", RecommenderWarning, stacklevel=5)
            return nearest
        pos = np.searchsorted(self.clusterer_labels_, raw)
        pos = np.minimum(pos, len(self.clusterer_labels_) - 1)
        known = (raw >= 0) & (self.clusterer_labels_[pos] == raw)
        return np.where(known, pos, nearest)

    def _topn(self, userids, rows, n, exclude, keep, recalculate):
        if recalculate:
            W = self._blend_weights(*self._fold_in(userids, rows))
        else:
            W = rows_of(self._weights(), userids)
        R = mask_columns(self._stacked(), keep)
        ids, sc = ops.topk_scores(W, R, n=n, exclude=exclude, **self._ops_kwargs())
        return ids, sc.astype(np.float32, copy=False)

    def _blend_weights(self, S: sp.csr_matrix, M: sp.csr_matrix) -> sp.csr_matrix:
        """``[(1 - blend) S / rowsum(S) | blend M]``: the scoring weights of users
        with neighbours ``S`` and memberships ``M`` (row by row)."""
        S = _powered(S, float(self.power))
        tot = np.asarray(S.sum(axis=1)).ravel()
        S = scale_rows(S, np.divide(1.0, tot, out=np.zeros_like(tot), where=tot > 0))
        blend = float(self.blend)
        return sp.hstack([S * (1.0 - blend), M * blend], format="csr", dtype=np.float32)

    # -- online updates --------------------------------------------------------
    def _update(self, X, changed_users, changed_items):
        """Online update with the group centroids (and the SVD basis) held fixed.

        Changed and new users are put in the group of the nearest centroid
        (the clusterer's ``predict`` when it has one, as for new users in
        :meth:`recommend`); users without items join the largest group. The
        profiles, sizes and soft memberships are recomputed from the new
        matrix and labels (what a fit with these groups gives), the changed
        users' in-group neighbours are searched anew (with those of the users
        whose old neighbours included a changed user), and every other user
        merges its top-k among the changed users into its unchanged
        neighbours: exact, since the others' routing and similarities do
        not change.
        """
        n = X.shape[0]
        self._stacked_cache = None
        grow = X.shape[1] - self.user_items_.shape[1]
        if grow > 0:  # new items: zero weight in the fixed group space
            if self.components_ is None:
                self.centroids_ = np.hstack([self.centroids_, np.zeros((self.centroids_.shape[0], grow),
                                                                       self.centroids_.dtype)])
            else:
                self.components_ = np.vstack([self.components_, np.zeros((grow, self.components_.shape[1]),
                                                                         self.components_.dtype)])
        active = np.diff(X.indptr) > 0
        Z = self._embed(l2_normalize_rows(X))
        labels = np.zeros(n, dtype=np.int64)
        labels[:len(self.labels_)] = self.labels_[:n]
        ch = changed_users
        K = self.centroids_.shape[0]
        ch_active = ch[active[ch]]
        if ch_active.size:
            sel = np.zeros(n, dtype=bool)
            sel[ch_active] = True
            labels[ch_active] = self._assign(Z, sel, X)
        sizes = np.bincount(labels[active], minlength=K).astype(np.int64)
        empty = ch[~active[ch]]
        if empty.size:
            labels[empty] = int(np.argmax(sizes)) if sizes.size else 0
        grown = np.arange(len(self.labels_), n)  # users in an id gap: no items
        gap = np.setdiff1d(grown, ch)
        if gap.size:
            labels[gap] = int(np.argmax(sizes)) if sizes.size else 0
        self.labels_ = labels
        self.group_sizes_ = sizes
        self.profiles_ = self._profiles(X, labels, active, K)
        self.memberships_ = self._memberships(Z, active)
        redo = np.union1d(ch, affected_rows(self.similarity_, ch)).astype(np.int64)
        S_redo, pairs = self._neighbours(X[redo], redo, X, labels, active[redo])
        C, pairs2 = self._changed_candidates(X, ch, redo, labels, active)
        S = merge_neighbours(self.similarity_, n, redo, S_redo, ch, C, int(self.k), **self._ops_kwargs())
        self.similarity_ = S
        self.n_similarities_ = int(self.n_similarities_) + int(pairs) + int(pairs2)

    def _changed_candidates(self, X: sp.csr_matrix, ch: np.ndarray, redo: np.ndarray, labels: np.ndarray,
                            active: np.ndarray) -> tuple[sp.csr_matrix, int]:
        """Every other user's candidates among the changed users ``ch`` (n x len(ch)) and the pairs searched.

        A changed user in group g is a candidate of the users whose routing
        includes g; it can enter a user's list only above that user's k-th
        similarity, so the changed users are searched in tiers of those floors
        (:func:`changed_neighbours`, as for UserKNN) and the pairs outside a
        user's routing dropped, instead of scoring every user against them.
        With ``max_candidates`` the pools are sampled, and the general search
        runs instead.
        """
        n = X.shape[0]
        if self.max_candidates is not None:
            return self._neighbours(X, np.full(n, -1, dtype=np.int64), X[ch], labels[ch], active, q_labels=labels)
        searched = active.copy()
        searched[redo] = False
        rows = np.flatnonzero(searched)
        pos = np.flatnonzero(active[ch])  # the changed users with items, as positions in ch
        ch_act = ch[pos]
        if rows.size == 0 or ch_act.size == 0:
            return sp.csr_matrix((n, ch.size), dtype=np.float32), 0
        route = np.full((n, min(int(self.search_groups), self.centroids_.shape[0])), -1, dtype=np.int64)
        route[rows] = self._routing(X[rows], labels[rows])
        ch_labels = labels[ch_act]

        def routed(r: np.ndarray, c: np.ndarray) -> np.ndarray:
            return (route[r] == ch_labels[c][:, None]).any(axis=1)

        C = changed_neighbours(X, ch_act, self.similarity_, redo, int(self.k), None, self._ops_kwargs(),
                               only_rows=rows, allowed=routed).tocoo()
        C = sp.csr_matrix((C.data, (C.row, pos[C.col])), shape=(n, ch.size), dtype=np.float32)
        per_group = np.bincount(ch_labels, minlength=self.centroids_.shape[0])
        pairs = int(per_group[route[rows]].sum())  # each row against the changed users of its routed groups
        return C, int(pairs)

    # -- serving ---------------------------------------------------------------
    def _weights(self) -> sp.csr_matrix:
        """Scoring weights of every training user, built once per fitted state."""
        key = (self.similarity_, self.memberships_, float(self.power), float(self.blend))
        return self._serve_cached("weights", key, lambda: self._blend_weights(self.similarity_, self.memberships_))

    def _server_source(self):
        return (self.similarity_, self.memberships_, self.power, self.blend, self.user_items_, self.profiles_)

    def _make_server(self):
        R = self._serve_cached("R", (self.user_items_, self.profiles_),
                               lambda: prepare_csr(self._stacked(), "stacked"))
        return row_server(self._weights(), self.user_items_, self.user_items_.shape[1], R=R)

    def _topn_one(self, userid, idx, val, n, exclude, keep, recalculate):
        if recalculate:
            return None  # fold-in routes the user through the groups: the batch path
        W = self._weights()
        R = self._serve_cached("R", (self.user_items_, self.profiles_),
                               lambda: prepare_csr(self._stacked(), "stacked"))
        b, e = W.indptr[userid], W.indptr[userid + 1]
        return _sparse_one(R, W.indices[b:e], W.data[b:e], n, exclude, keep)

    def _stacked(self) -> sp.csr_matrix:
        R = getattr(self, "_stacked_cache", None)
        if R is None:
            R = sp.vstack([self.user_items_, self.profiles_], format="csr", dtype=np.float32)
            self._stacked_cache = R
        return R

    # -- persistence ---------------------------------------------------------
    def _json_params(self) -> dict[str, Any]:
        params = self.get_params()
        if params.get("clusterer") is not None:
            warnings.warn("the clusterer object is not saved (no pickle); the loaded model "
                          "assigns new users to the nearest group centroid", RecommenderWarning,
                          stacklevel=4)
            params["clusterer"] = None
        rs = params.get("random_state")
        if rs is not None and not isinstance(rs, (int, np.integer)):
            params["random_state"] = None
        elif rs is not None:
            params["random_state"] = int(rs)
        return params

    def _extra_meta(self) -> dict[str, Any]:
        return {"n_similarities_": int(self.n_similarities_)}

    def _after_load(self) -> None:
        self._stacked_cache = None
        if self.components_ is not None and np.size(self.components_) == 0:
            self.components_ = None

    @property
    def n_groups_(self) -> int:
        """Number of groups found (or given)."""
        self._check_fitted()
        return int(self.centroids_.shape[0])


def _seed_of(random_state: Any) -> int | None:
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return None if random_state is None else int(random_state)
    return int(as_generator(random_state).integers(2**31))


def _keep_top_per_row(P: sp.csr_matrix, size: int) -> sp.csr_matrix:
    """The ``size`` largest entries of every row (ties: smaller column)."""
    P = sp.csr_matrix(P)
    counts = np.diff(P.indptr)
    if not P.nnz or counts.max() <= size:
        return P
    r = np.repeat(np.arange(P.shape[0]), counts)
    order = np.lexsort((P.indices, -P.data, r))
    rank = np.empty(P.nnz, np.int64)
    rank[order] = np.arange(P.nnz) - P.indptr[r[order]]
    keep = rank < size
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r[keep], minlength=P.shape[0]))])
    return sp.csr_matrix((P.data[keep], P.indices[keep], indptr), shape=P.shape)
