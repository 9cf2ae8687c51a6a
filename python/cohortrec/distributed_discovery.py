"""Group discovery over a Parquet event log on a Dask cluster.

:func:`discover_parquet` runs the pipeline of :class:`~cohortrec.GroupDiscovery`
on data that lives as a folder of Parquet files, with the work on the Dask
workers and only small results on the client:

1. the log is read into user row blocks on the workers
   (:func:`cohortrec.distributed.read_parquet_events`);
2. the encoder (SVD or the Mult-VAE) is trained on the client on a bounded,
   activity-stratified sample of users gathered from the blocks;
3. every block is embedded on its worker by fold-in (the encoder travels as
   plain NumPy arrays; the workers need neither torch nor the training data);
4. the number of groups is chosen on the sample (``n_groups="auto"``), and
   distributed K-means (:class:`cohortrec.distributed.KMeans`) clusters all
   embeddings;
5. group profiles (size, most over-represented items) are sparse sums per
   block added on the client, and batch recommendations (the most popular
   items of the user's group that the user has not seen) are computed per
   block on the workers.

The result holds one label per user (gathered: 8 bytes a user) and the
profiles; recommendations stay on the workers until asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cohortrec import distributed as cd
from cohortrec._validation import group_indicator

__all__ = ["DistributedGroups", "discover_parquet"]


@dataclass
class DistributedGroups:
    """What :func:`discover_parquet` returns.

    Attributes
    ----------
    user_ids : ndarray
        External id of every user (block order).
    labels : ndarray of int64
        Group of every user.
    centroids : ndarray of shape (n_groups, d)
        Unit-norm mean embedding of every group.
    item_ids : ndarray
        External id of every item (matrix column order).
    profile : pandas.DataFrame
        One row per group and a last row ``"all"``: ``size``, ``share``,
        ``label``, ``top_items`` (``(item, lift, support)`` lists).
    group_item_counts : scipy.sparse.csr_matrix, shape (n_groups, n_items)
        Users of each group who interacted with each item.
    encoder_training : dict
        The encoder's training sample (size, how it was drawn, why).
    k_curve : pandas.DataFrame or None
        The ``n_groups="auto"`` search (on the sample).
    blocks : RowBlocks
        The user x item blocks on the workers (for :meth:`recommend`).
    """

    user_ids: np.ndarray
    labels: np.ndarray
    centroids: np.ndarray
    item_ids: np.ndarray
    profile: pd.DataFrame
    group_item_counts: sp.csr_matrix
    encoder_training: dict[str, Any]
    k_curve: pd.DataFrame | None
    blocks: Any = field(repr=False)
    label_futures: list[Any] = field(repr=False, default_factory=list)
    client: Any = field(repr=False, default=None)

    @property
    def n_groups(self) -> int:
        return int(self.centroids.shape[0])

    def recommend(self, N: int = 10, profile_size: int = 1000) -> list[Any]:
        """Top-``N`` unseen items of the user's group, per block (futures of ``(user_ids, item_ids, scores)``).

        Scores are the share of the group's users with the item, among the
        group's ``profile_size`` most frequent items (so a block costs
        ``users x profile_size``, not ``users x items``); a user who has
        seen nearly all of them gets fewer than ``N`` (item -1, score 0).
        Computed on the workers; gather them block by block (as
        ``cohortrec discover --scheduler`` does).
        """
        c = cd._client(self.client)
        sizes = np.bincount(self.labels[self.labels >= 0], minlength=self.n_groups).astype(np.float64)
        P = _top_per_row(sp.csr_matrix(self.group_item_counts.multiply(1.0 / np.maximum(sizes, 1.0)[:, None])),
                         int(profile_size))
        Pf = c.scatter(P, broadcast=True, hash=False)
        return [c.submit(_recommend_block, b, lab, ids, Pf, int(N), pure=False)
                for b, lab, ids in zip(self.blocks.futures, self.label_futures, self.blocks.row_ids)]


def _top_per_row(P: sp.csr_matrix, size: int) -> sp.csr_matrix:
    """The ``size`` largest entries of every row (ties: smaller column)."""
    rows, cols, vals = [], [], []
    for g in range(P.shape[0]):
        lo, hi = P.indptr[g], P.indptr[g + 1]
        idx, v = P.indices[lo:hi], P.data[lo:hi]
        keep = np.lexsort((idx, -v))[:size]
        rows.append(np.full(keep.size, g))
        cols.append(idx[keep])
        vals.append(v[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=P.shape)


# ------------------------------------------------------------------ worker functions
def _sample_block(block: sp.csr_matrix, n_take: int, seed: list[int]) -> tuple[sp.csr_matrix, np.ndarray]:
    """``n_take`` rows of a block, activity-stratified (every ``n / n_take``-th by activity)."""
    n = block.shape[0]
    if n_take >= n:
        return block, np.arange(n)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(n), np.diff(block.indptr)))
    step = n / n_take
    picks = np.minimum((rng.random() * step + step * np.arange(n_take)).astype(np.int64), n - 1)
    rows = np.sort(order[picks])
    return block[rows], rows


def _embed_block(block: sp.csr_matrix, kind: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Unit-norm embeddings of a block's users by fold-in (NumPy only)."""
    M = sp.csr_matrix(block, dtype=np.float64, copy=True)
    if kind == "svd":
        from cohortrec.preprocessing import normalize, weight  # noqa: PLC0415

        idf = arrays.get("idf")
        W = weight(M, "log1p")
        if idf is not None:
            W.data *= idf[W.indices]
        Z = np.asarray(normalize(W, "l2") @ arrays["components"].T)
    else:  # the Mult-VAE's encoder: binary rows, L2-normalised, MLP with tanh, posterior mean
        M.data[:] = 1.0
        norms = np.sqrt(np.asarray(M.multiply(M).sum(axis=1)).ravel())
        M = sp.csr_matrix(M.multiply(1.0 / np.maximum(norms, 1e-12)[:, None]))
        layers = int(arrays["n_layers"])
        x = np.asarray(M @ arrays["w0"].T) + arrays["b0"]
        for i in range(1, layers):
            x = np.tanh(x)
            x = x @ arrays[f"w{i}"].T + arrays[f"b{i}"]
        Z = x[:, : int(arrays["latent"])]
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return (Z / np.maximum(norms, 1e-12)).astype(np.float64)


def _block_group_counts(block: sp.csr_matrix, labels: np.ndarray, k: int) -> sp.csr_matrix:
    """Users of each group with each item in one block (k x n_items)."""
    B = sp.csr_matrix(block, copy=True)
    B.data[:] = 1.0
    return sp.csr_matrix(group_indicator(labels, k) @ B)


def _mixture_counts(block: sp.csr_matrix, settings: dict[str, Any]) -> sp.csr_matrix:
    """The block as the mixture counts it (:class:`~cohortrec.cluster.MultinomialMixture` with ``settings``)."""
    from cohortrec.cluster import MultinomialMixture  # noqa: PLC0415

    return MultinomialMixture(**settings)._counts_of(block)


def _mixture_start_block(block: sp.csr_matrix, labels: np.ndarray, k: int, settings: dict[str, Any]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """One block's item totals (the prior's centre) and group item counts under the starting labels."""
    B = _mixture_counts(block, settings)
    return np.asarray(B.sum(axis=0)).ravel(), np.asarray((group_indicator(labels, k) @ B).todense())


def _em_block(block: sp.csr_matrix, log_theta: np.ndarray, log_w: np.ndarray, settings: dict[str, Any]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One E-step of the multinomial mixture on one block, and the block's part of the M-step's sums."""
    from scipy.special import softmax  # noqa: PLC0415

    B = _mixture_counts(block, settings)
    L = np.asarray(B @ log_theta.T) + log_w[None, :]
    R = softmax(L, axis=1)
    return np.asarray((B.T @ R).T), R.sum(axis=0), np.argmax(L, axis=1).astype(np.int64)


def _block_embedding_sums(Z: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(group_indicator(labels, k) @ Z)


def _refine_distributed(c: Any, blocks: Any, zblocks: Any, labels: np.ndarray, sizes: np.ndarray, k: int,
                        settings: dict[str, Any], max_iter: int = 100, tol: float = 1e-3,
                        say: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The mixture refinement of :class:`~cohortrec.GroupDiscovery` (``refine="multinomial"``) on the workers.

    The same EM as :meth:`cohortrec.cluster.MultinomialMixture.fit` started
    from ``labels``: each iteration scatters the group log-distributions,
    every block computes its E-step and its part of the M-step's sums
    (``k x n_items``) on its worker, and the client adds them up. Groups that
    no user prefers at the end are dropped, as on one machine (the
    one-machine fit also restarts a group emptied mid-way; this one does
    not). Returns the labels and the unit-norm mean embedding of each group.
    """
    from cohortrec.cluster import MultinomialMixture  # noqa: PLC0415

    mm = MultinomialMixture(k, **settings)
    m = blocks.shape[1]
    lab_futs = c.scatter(np.split(labels, np.cumsum(sizes)[:-1]), hash=False)
    start = c.gather([c.submit(_mixture_start_block, f, lf, k, settings, pure=False)
                      for f, lf in zip(blocks.futures, lab_futs)])
    totals = np.sum([t for t, _ in start], axis=0)
    mm.background_ = (totals + 1.0) / (totals.sum() + m)
    mm._m_step_from_sums(np.sum([g for _, g in start], axis=0), np.bincount(labels[labels >= 0], minlength=k))
    for it in range(1, int(max_iter) + 1):
        lt = c.scatter(mm.log_theta_, broadcast=True, hash=False)
        lw = c.scatter(np.log(mm.weights_), broadcast=True, hash=False)
        out = c.gather([c.submit(_em_block, f, lt, lw, settings, pure=False) for f in blocks.futures])
        new = np.concatenate([o[2] for o in out]) if out else labels
        changed = float(np.mean(new != labels)) if len(labels) else 0.0
        labels = new
        mm._m_step_from_sums(np.sum([o[0] for o in out], axis=0), np.sum([o[1] for o in out], axis=0))
        if say is not None:
            say(f"  mixture refinement: iteration {it}, {changed:.2%} of users changed group")
        if changed <= tol:
            break
    lt = c.scatter(mm.log_theta_, broadcast=True, hash=False)
    lw = c.scatter(np.log(mm.weights_), broadcast=True, hash=False)
    labels = np.concatenate([o[2] for o in c.gather([c.submit(_em_block, f, lt, lw, settings, pure=False)
                                                     for f in blocks.futures])])
    used = np.flatnonzero(np.bincount(labels, minlength=k))
    remap = np.full(k, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    labels = remap[labels]
    k2 = int(used.size)
    lab_futs = c.scatter(np.split(labels, np.cumsum(sizes)[:-1]), hash=False)
    sums = np.sum(c.gather([c.submit(_block_embedding_sums, z, lf, k2, pure=False)
                            for z, lf in zip(zblocks.futures, lab_futs)]), axis=0)
    C = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return labels, C


def _recommend_block(block: sp.csr_matrix, labels: np.ndarray, user_ids: np.ndarray, P: sp.csr_matrix,
                     N: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from cohortrec import ops  # noqa: PLC0415

    n = block.shape[0]
    lab = np.maximum(labels, 0)
    W = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), lab)), shape=(n, P.shape[0]))
    ids, sc = ops.topk_scores(W, P.astype(np.float32), n=N, exclude=sp.csr_matrix(block, dtype=np.float32))
    return user_ids, ids, sc


# ------------------------------------------------------------------ the pipeline
def _encoder_arrays(enc: Any) -> tuple[str, dict[str, np.ndarray]]:
    from cohortrec.encoders import SVDEncoder  # noqa: PLC0415

    if isinstance(enc, SVDEncoder):
        arrays = {"components": np.asarray(enc.components_, np.float64)}
        if getattr(enc, "idf_", None) is not None:
            arrays["idf"] = np.asarray(enc.idf_, np.float64)
        return "svd", arrays
    net = enc.model_
    layers = [*net.enc, net.head]
    arrays = {"n_layers": np.array(len(layers)), "latent": np.array(int(enc.n_components))}
    for i, lin in enumerate(layers):
        arrays[f"w{i}"] = lin.weight.detach().cpu().numpy().astype(np.float64)
        arrays[f"b{i}"] = lin.bias.detach().cpu().numpy().astype(np.float64)
    return "vae", arrays


def discover_parquet(
    path: str | os.PathLike[str],
    *,
    user: str,
    item: str,
    weight: str | None = None,
    client: Any = None,
    encoder: str = "svd",
    n_groups: int | str = "auto",
    k_range: Sequence[int] = tuple(range(2, 21)),
    max_train_users: int = 50_000,
    vae_settings: dict[str, Any] | None = None,
    n_init: int = 3,
    refine: str | None = "multinomial",
    top_n: int = 5,
    random_state: int = 0,
    progress: Any = None,
) -> DistributedGroups:
    """Discover user groups in a Parquet event log on a Dask cluster.

    Parameters
    ----------
    path : str or path-like
        A Parquet file or a folder of Parquet files (same schema).
    user, item : str
        Columns of the user and item ids.
    weight : str, optional
        Column of event weights (default 1 per event).
    client : distributed.Client, optional
        Default: the current client.
    encoder : {"svd", "vae"}, default "svd"
        ``"vae"``: :class:`~cohortrec.encoders.InteractionEncoder` with
        ``vae_settings`` (needs torch on the client only).
    n_groups : int or "auto"
        ``"auto"`` chooses from ``k_range`` on the training sample
        (:func:`~cohortrec.cluster.heldout_k_curve` with ``refine``, else
        :func:`~cohortrec.cluster.choose_n_clusters`).
    max_train_users : int, default 50000
        Users in the encoder's training sample (activity-stratified in
        every block, in proportion to the block's size).
    n_init : int, default 3
        Distributed K-means runs (the best inertia is kept).
    refine : "multinomial" or None, default "multinomial"
        As :class:`~cohortrec.GroupDiscovery`'s default: the K-means groups
        start a mixture of multinomials over items, fitted by EM on the
        workers (each iteration moves ``n_groups x n_items`` sums per block),
        and ``n_groups="auto"`` is chosen by held-out likelihood on the
        sample. ``None``: the K-means groups (and the silhouette). The
        mixture's prior is the background one (``category_prior=None``): an
        event log carries no item categories.
    top_n : int, default 5
        Items per group in the profile.
    random_state : int
    progress : callable, optional
        Called with one short message per step.

    Returns
    -------
    DistributedGroups
    """
    from cohortrec.cluster import choose_n_clusters  # noqa: PLC0415

    say = progress or (lambda msg: None)
    c = cd._client(client)
    if encoder not in ("svd", "vae"):
        raise ValueError(f"encoder must be 'svd' or 'vae', got {encoder!r}")
    if refine not in ("multinomial", None):
        raise ValueError(f"refine must be 'multinomial' or None, got {refine!r}")
    _check_parquet(path, [user, item] + ([weight] if weight else []))
    say("reading the event log into user blocks on the workers")
    blocks = cd.read_parquet_events(path, user=user, item=item, weight=weight, client=c)
    n, m = blocks.shape
    if n < 3:
        raise ValueError(f"the event log holds {n} users; group discovery needs at least 3")
    # -- the training sample: rows of every block in proportion to its size
    cap = int(max_train_users)
    sizes = np.array([s[0] for s in blocks.shapes])
    take = np.minimum(sizes, np.floor(sizes * min(1.0, cap / max(n, 1))).astype(np.int64))
    say(f"gathering a training sample of {int(take.sum())} of {n} users")
    parts = c.gather([c.submit(_sample_block, f, int(t), [random_state, i], pure=False)
                      for i, (f, t) in enumerate(zip(blocks.futures, take))])
    S = sp.vstack([p[0] for p in parts], format="csr")
    # -- the encoder, trained on the sample on the client
    say(f"training the {encoder} encoder on {S.shape[0]} users")
    if encoder == "svd":
        from cohortrec.discovery import svd_components  # noqa: PLC0415
        from cohortrec.encoders import SVDEncoder  # noqa: PLC0415

        enc = SVDEncoder(svd_components(n_groups, k_range), weighting="bm25", random_state=random_state)
    else:
        from cohortrec.encoders import InteractionEncoder  # noqa: PLC0415

        settings = dict(vae_settings or {})
        settings["max_train_users"] = None  # already a sample
        enc = InteractionEncoder(**settings, random_state=random_state, verbose=False)
    Zs = enc.fit_transform(S)
    Zs = Zs / np.maximum(np.linalg.norm(Zs, axis=1, keepdims=True), 1e-12)
    kind, arrays = _encoder_arrays(enc)
    # -- K on the sample
    k_curve = None
    if n_groups == "auto":
        ks = [k for k in k_range if k < S.shape[0]] or [2]
        say(f"choosing the number of groups in {ks[0]}..{ks[-1]} on the sample")
        if refine == "multinomial" and (np.diff(S.indptr) >= 2).any():  # as GroupDiscovery: held-out likelihood
            from cohortrec.cluster import heldout_k_curve  # noqa: PLC0415
            from cohortrec.discovery import MIXTURE_SETTINGS  # noqa: PLC0415

            k, k_curve = heldout_k_curve(Zs, S, ks, random_state=random_state, **MIXTURE_SETTINGS)
        else:
            k, k_curve = choose_n_clusters(Zs, ks, random_state=random_state, spherical=True)
    else:
        k = int(n_groups)
    # -- fold-in of every block on its worker, then distributed K-means
    say(f"embedding {n} users on the workers")
    arr_f = {key: c.scatter(v, broadcast=True, hash=False) for key, v in arrays.items()}
    z_futs = [c.submit(_embed_block, f, kind, arr_f, pure=False) for f in blocks.futures]
    d = int(Zs.shape[1])
    zblocks = cd.RowBlocks(z_futs, [(s[0], d) for s in blocks.shapes])
    say(f"distributed K-means with {k} groups")
    km = cd.KMeans(k, init="k-means||", n_init=n_init, random_state=random_state, client=c).fit(zblocks)
    labels = np.asarray(km.labels_, dtype=np.int64)
    C = np.asarray(km.cluster_centers_, np.float64)
    C = C / np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
    if refine == "multinomial":
        from cohortrec.discovery import MIXTURE_SETTINGS  # noqa: PLC0415

        say(f"refining the {k} groups with a multinomial mixture (EM on the workers)")
        labels, C = _refine_distributed(c, blocks, zblocks, labels, sizes, k, MIXTURE_SETTINGS, say=say)
        k = int(C.shape[0])
    # -- profiles: sparse sums per block
    say("profiling the groups (sparse sums per block)")
    lab_parts = np.split(labels, np.cumsum(sizes)[:-1])
    lab_futs = c.scatter(lab_parts, hash=False)
    counts = c.gather([c.submit(_block_group_counts, f, lf, k, pure=False)
                       for f, lf in zip(blocks.futures, lab_futs)])
    GC = sp.csr_matrix(counts[0])
    for part in counts[1:]:
        GC = GC + part
    GC = sp.csr_matrix(GC)
    profile = _profile(GC, labels, k, blocks.col_ids, top_n)
    user_ids = np.concatenate(blocks.row_ids) if blocks.row_ids else np.zeros(0)
    training = {"n_users": int(n), "n_train_users": int(S.shape[0]),
                "sampling": f"activity-stratified sample per block (max_train_users={cap})",
                "n_items": int(m)}
    summary = getattr(enc, "training_summary_", None)
    if summary:
        training.update({k2: v for k2, v in summary.items() if k2 in ("n_outputs", "tail_share")})
    return DistributedGroups(user_ids=user_ids, labels=labels, centroids=C, item_ids=blocks.col_ids,
                             profile=profile, group_item_counts=GC, encoder_training=training,
                             k_curve=k_curve, blocks=blocks, label_futures=list(lab_futs), client=c)


def _check_parquet(path: str | os.PathLike[str], columns: list[str]) -> None:
    """ValueError (one line) for a folder whose files disagree on their schema, or missing columns."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    p = os.fspath(path)
    if os.path.isdir(p):
        files = sorted(os.path.join(r, f) for r, _, fs in os.walk(p) for f in fs
                       if f.lower().endswith((".parquet", ".pq")) and not f.startswith((".", "_")))
    else:
        files = [p]
    if not files:
        raise ValueError(f"{p!r} holds no Parquet files")
    first = None
    for f in files:
        sch = pq.read_schema(f).remove_metadata()
        if first is None:
            first, name0 = sch, f
        elif not sch.equals(first):
            diff = sorted({(n, str(t)) for n, t in zip(first.names, first.types)}
                          ^ {(n, str(t)) for n, t in zip(sch.names, sch.types)})
            raise ValueError(f"the Parquet files of {p!r} have different schemas: {os.path.basename(f)} differs "
                             f"from {os.path.basename(name0)} in {diff[:4]}")
    missing = [col for col in columns if col not in first.names]
    if missing:
        raise ValueError(f"columns {missing} not found in {p!r}; it has {list(first.names)}")


def _profile(GC: sp.csr_matrix, labels: np.ndarray, k: int, item_ids: np.ndarray, top_n: int) -> pd.DataFrame:
    sizes = np.bincount(labels[labels >= 0], minlength=k)
    n = len(labels)
    sup = GC.toarray() / np.maximum(sizes, 1)[:, None]
    allv = np.asarray(GC.sum(axis=0)).ravel() / max(n, 1)
    names = np.asarray([str(v) for v in item_ids], dtype=object)
    rows: dict[str, list[Any]] = {"size": list(sizes) + [n], "share": list(sizes / max(n, 1)) + [1.0]}
    tops = []
    for g in range(k):
        lift = np.divide(sup[g], allv, out=np.zeros_like(allv), where=allv > 0)
        cand = np.flatnonzero((sup[g] >= 0.05) & (lift > 1.0))
        if cand.size == 0:
            cand = np.argsort(-sup[g])[:top_n]
        score = sup[g][cand] * np.log(np.maximum(lift[cand], 1e-12))
        order = cand[np.lexsort((-sup[g][cand], -score))][:top_n]
        tops.append([(names[j], round(float(lift[j]), 3), round(float(sup[g][j]), 3)) for j in order])
    tops.append([(names[j], 1.0, float(allv[j])) for j in np.argsort(-allv)[:top_n]])
    rows["top_items"] = tops
    rows["label"] = [", ".join(t[0] for t in tops[g][:2]) or f"group {g}" for g in range(k)] + ["all users"]
    out = pd.DataFrame(rows, index=list(range(k)) + ["all"])
    out.index.name = "group"
    return out[["size", "share", "label", "top_items"]]
