"""Lloyd's K-means iterations on the native kernels, with distance bounds.

Every iteration is one assignment and one update. The loop mirrors
scikit-learn's ``_kmeans_single_lloyd`` step for step (empty-cluster
relocation, strict convergence when no label changes, the centre-shift
tolerance, the final re-assignment), so the same data and initial centres
give the same clustering. The assignment is one of:

* plain: :func:`cohortrec.ops.kmeans_assign` over all points;
* pruned (:class:`_Pruner`): each cluster's points against the centres that
  Elkan's inter-centre lemma cannot rule out, one native call per cluster;
* bounded (:class:`_Yinyang`, the default on dense CPU data): Yinyang
  K-means (Ding et al. 2015) with Hamerly's inter-centre test (Hamerly
  2010), entirely native (``ops.kmeans_assign_bounded``). The
  centres are split once into groups of one SIMD vector of nearby centres
  (:func:`_balanced_groups`). Every point keeps an upper bound on the
  distance to its centre, a global lower bound on the distance to every
  other centre, and one lower bound per group. After the centres move, the
  upper bound grows by the centre's shift, the global bound drops by the
  largest other shift and each group bound by its group's largest shift
  (stored lazily against a cumulative drift, so untouched points cost
  nothing). A point keeps its label with no distance computed when its
  upper bound stays below ``max(global bound, s[label])`` (``s`` = half
  the distance from its centre to the nearest other one), or below every
  group bound; otherwise only the groups whose bound is below the upper
  bound (and the own group) are computed, with the per-lane arithmetic of
  the plain kernel. The bounds carry a rounding margin, so the labels are
  plain Lloyd's. The cluster sums (float64) are kept up to date by moving
  only the points that changed cluster, so late iterations cost O(n) bound
  checks plus the few points near a boundary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from cohortrec import ops
from cohortrec.ops import resolve_device

_SMALL_WORK = 1 << 24  # n * k * d below which the kernels run on one thread


@dataclass
class LloydResult:
    labels: np.ndarray
    inertia: float
    centers: np.ndarray
    n_iter: int
    recomputed: list[float]


def _row_sq_norms(X: np.ndarray | sp.csr_matrix) -> np.ndarray:
    if sp.issparse(X):  # squares and sums in float64 (X.multiply(X) would square in X's dtype)
        X = sp.csr_matrix(X)
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        return np.bincount(rows, weights=np.square(X.data, dtype=np.float64), minlength=X.shape[0])
    out = np.empty(X.shape[0], dtype=np.float64)
    step = 65536
    for s in range(0, X.shape[0], step):
        blk = X[s:s + step]
        out[s:s + step] = np.einsum("ij,ij->i", blk, blk, dtype=np.float64)
    return out


_SPARSE_BLOCK = 1 << 20  # stored entries per block of exact_sq_dist on CSR rows


def exact_sq_dist(X: np.ndarray | sp.csr_matrix, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """||x_i - c_{labels_i}||^2 in float64 accumulation.

    Dense rows: from differences. CSR rows: ``|x|^2 - 2 x.c + |c|^2`` with
    ``x.c`` gathered per stored entry, in blocks of about ``_SPARSE_BLOCK`` entries (never
    an n x d array: ``X.multiply(C[labels])`` would build one).
    """
    n = X.shape[0]
    out = np.empty(n, dtype=np.float64)
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        xx = _row_sq_norms(X)
        C = centers.astype(np.float64)
        cc = np.einsum("ij,ij->i", C, C)
        xc = np.zeros(n, dtype=np.float64)
        indptr = X.indptr
        s = 0
        while s < n:
            e = int(np.searchsorted(indptr, indptr[s] + _SPARSE_BLOCK, side="right")) - 1
            e = min(n, max(e, s + 1))
            lo, hi = int(indptr[s]), int(indptr[e])
            rows = np.repeat(np.arange(s, e), np.diff(indptr[s:e + 1]))
            vals = X.data[lo:hi].astype(np.float64) * C[labels[rows], X.indices[lo:hi]]
            xc[s:e] = np.bincount(rows - s, weights=vals, minlength=e - s)
            s = e
        return np.maximum(xx - 2 * xc + cc[labels], 0.0)
    step = 32768
    for s in range(0, n, step):
        diff = X[s:s + step] - centers[labels[s:s + step]]
        out[s:s + step] = np.einsum("ij,ij->i", diff, diff, dtype=np.float64)
    return out


def _relocate_empty(X, sample_weight, centers_old, sums, counts, labels, sq_dist) -> int:
    """scikit-learn's rule: each empty cluster takes the point farthest from its centre."""
    empty = np.flatnonzero(counts == 0)
    n_empty = min(empty.size, X.shape[0])
    if n_empty == 0:
        return 0
    far = np.argpartition(sq_dist, -n_empty)[: -n_empty - 1: -1]
    rows = [X[i].toarray().ravel() if sp.issparse(X) else X[i] for i in far]
    relocate(sums, counts, empty[:n_empty], rows, sample_weight[far], labels[far])
    return n_empty


def relocate(sums: np.ndarray, counts: np.ndarray, empty: np.ndarray, rows: Any, weights: Any,
             old_labels: Any) -> None:
    """Move each row (a point far from its centre) from its old cluster into an empty one, in place.

    The update of scikit-learn's empty-cluster rule on the running sums and
    counts; the in-memory fit and the Dask fit (which gathers the farthest
    points of every block) both apply it.
    """
    for new_id, xi, w, old_id in zip(empty, rows, weights, old_labels):
        sums[old_id] -= xi * w
        sums[new_id] = xi * w
        counts[new_id] = w
        counts[old_id] -= w


def update_centers(sums: np.ndarray, counts: np.ndarray, old: np.ndarray, spherical: bool = False) -> np.ndarray:
    """New centres from cluster sums and weights; a cluster with no weight keeps its old centre."""
    new = old.copy()
    nz = counts > 0
    new[nz] = sums[nz] / counts[nz, None]
    if spherical:
        norms = np.sqrt(np.einsum("ij,ij->i", new, new, dtype=np.float64))
        ok = norms > 0
        new[ok] /= norms[ok, None].astype(new.dtype)
    return new


_BOUNDS_MAX_BYTES = 1 << 30  # group bounds of the "auto" algorithm


def bounds_fit_memory(n: int, k: int, dtype: np.dtype) -> bool:
    """Whether the per-point group bounds of the bounded assignment fit the budget."""
    lanes = ops.kmeans_group_lanes(np.dtype(dtype).itemsize)
    return 4 * n * -(-k // lanes) <= _BOUNDS_MAX_BYTES


def _balanced_groups(C: np.ndarray, size: int) -> np.ndarray:
    """Slots of centre groups of exactly ``size`` lanes (``-1`` pads the last ones).

    Recursive bisection along the principal axis of each subset (a k-d tree
    with leaves of ``size`` centres), so a group holds nearby centres, as the
    Yinyang paper's grouping by a few K-means steps does, but balanced: every
    group fills one SIMD vector.
    """
    k = C.shape[0]
    C64 = C.astype(np.float64)
    leaves: list[np.ndarray] = []

    def split(ids: np.ndarray) -> None:
        if ids.size <= size:
            leaves.append(ids)
            return
        Y = C64[ids] - C64[ids].mean(axis=0)
        axis = np.linalg.svd(Y, full_matrices=False)[2][0] if Y.shape[1] else np.zeros(0)
        order = ids[np.argsort(Y @ axis, kind="stable")]
        cut = size * ((ids.size + size - 1) // size // 2 or 1)
        split(order[:cut])
        split(order[cut:])

    split(np.arange(k))
    slots = np.full((len(leaves), size), -1, dtype=np.int64)
    for g, ids in enumerate(leaves):
        slots[g, : ids.size] = np.sort(ids)
    return slots.ravel()


_S_HALF_EVERY = 8  # passes between exact inter-centre distances (k^2 d work)


def _half_nearest_centre(C: np.ndarray) -> np.ndarray:
    """Half the distance from each centre to its nearest other centre, rounded down.

    One BLAS product in the centres' dtype and in-place updates (the k x k
    matrix is the only temporary); the dot form's rounding, at most
    ``(d + 8) eps (|c_i|^2 + |c_j|^2)``, is subtracted so the result never
    exceeds the true value.
    """
    k, d = C.shape
    cc = np.einsum("ij,ij->i", C, C, dtype=np.float64)
    G = C @ C.T
    G *= -2
    G += cc.astype(G.dtype)[:, None]
    G += cc.astype(G.dtype)[None, :]
    np.fill_diagonal(G, np.inf)
    nearest = G.min(axis=1).astype(np.float64)
    slack = (d + 8) * float(np.finfo(C.dtype).eps) * (cc + cc.max()) + 1e-300
    return 0.5 * np.sqrt(np.maximum(nearest - slack, 0.0))


class _Yinyang:
    """State of the native bounded assignment (see the module docstring)."""

    def __init__(self, X: np.ndarray, centers: np.ndarray) -> None:
        n = X.shape[0]
        lanes = ops.kmeans_group_lanes(X.dtype.itemsize)
        self.slots = _balanced_groups(centers, lanes)
        t = self.slots.size // lanes
        self.x_sq = _row_sq_norms(X)
        self.labels = np.zeros(n, dtype=np.int64)
        self.upper = np.empty(n, dtype=np.float64)
        self.lower = np.empty(n, dtype=np.float64)
        self.group_lower = np.empty((n, t), dtype=np.float32)
        self.dcum = np.zeros(t, dtype=np.float64)
        self.sums = np.zeros((centers.shape[0], X.shape[1]), dtype=np.float64)  # kept in step with labels
        self.counts = np.zeros(centers.shape[0], dtype=np.float64)
        self.members = np.zeros(centers.shape[0], dtype=np.int64)  # exact: weighted counts drift
        self.stale = True  # sums must be rebuilt from all points on the next pass
        self.s_half: np.ndarray | None = None  # half the distance to the nearest other centre
        self.s_age = 0

    def assign(self, X, centers, shift, w_arg, n_threads, track_sums) -> tuple[int, float]:
        """One pass (``shift=None``: from scratch); returns (points moved, share of n*k computed)."""
        s_half = None
        if shift is not None:
            # exact every _S_HALF_EVERY passes; in between a valid lower bound:
            # d(c_i', c_j') >= d(c_i, c_j) - shift_i - shift_j
            if self.s_half is None or self.s_age >= _S_HALF_EVERY:
                self.s_half, self.s_age = _half_nearest_centre(centers), 0
            else:
                self.s_half = np.maximum(self.s_half - 0.5 * (shift + shift.max()), 0.0)
                self.s_age += 1
            s_half = self.s_half
        moved, n_dist = ops.kmeans_assign_bounded(
            X, centers, self.slots, shift, s_half, self.x_sq, self.labels, self.upper, self.lower,
            self.group_lower, self.dcum, w_arg, self.sums if track_sums else None,
            self.counts if track_sums else None, self.members if track_sums else None, bool(self.stale),
            int(n_threads))
        if track_sums:
            self.stale = False
        return int(moved), n_dist / max(X.shape[0] * centers.shape[0], 1)

    def update(self, X, w_arg, device, n_threads) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the cluster sums and counts (float64) of the current labels.

        A weighted count that went through additions and subtractions may be
        a rounding residue instead of 0: clusters without members get exact
        zeros, and when a cluster with members has a count that small
        (members of weight 0), the sums are recomputed from all points.
        """
        k = self.counts.size
        total = float(self.counts.sum())
        suspect = (self.members > 0) & (self.counts <= 1e-9 * max(total, 1e-300))
        if suspect.any():
            sums, counts = ops.kmeans_update(X, self.labels, k, sample_weight=w_arg, device=device,
                                             n_threads=n_threads)
            self.sums[...] = sums
            self.counts[...] = counts
        sums, counts = self.sums.copy(), self.counts.copy()
        empty = self.members == 0
        sums[empty] = 0.0
        counts[empty] = 0.0
        return sums, counts


_PRUNE_MIN_KD = 4096  # k * d from which the pruned pass is tried
_RESORT = 0.05  # re-sort the cluster-ordered copy of X when this share of points moved
_PRUNE_MAX_WORK = 0.6  # pruned pass only when it computes < 60% of the n * k distances


class _Pruner:
    """Exact assignment that only compares each cluster's points with nearby centres.

    Elkan's lemma: if ``d(c_j, c') >= 2 d(x, c_j)`` then ``c'`` is not closer to
    ``x`` than ``c_j``. For the points of cluster ``j`` (labels of the previous
    step), ``d(x, c_j) <= sqrt(sq_prev) + shift_j`` (previous distance plus the
    centre's move), so every centre farther than twice the largest such bound
    from ``c_j`` is ruled out. The points are kept in a copy of ``X`` sorted by
    cluster (re-sorted only when more than 5% of them changed cluster; points
    that moved since widen their block's candidate set), and each block is
    assigned with one native ``kmeans_assign`` call against its candidate
    centres. :meth:`assign` returns ``None`` when the candidate sets are too
    large to pay off (the caller then does a full pass).
    """

    def __init__(self, X: np.ndarray, n_threads: int, device: str) -> None:
        self.X = X
        self.n_threads = max(1, int(n_threads))
        self.device = device
        self.order = None
        self.Xs = None
        self.block_lab = None
        self.starts = None

    def _sort(self, labels: np.ndarray, k: int) -> None:
        small = labels.astype(np.int16) if k <= np.iinfo(np.int16).max else labels
        self.order = np.argsort(small, kind="stable")  # radix sort for 16-bit keys
        self.Xs = np.take(self.X, self.order, axis=0)
        self.block_lab = labels[self.order]
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=k))])

    def assign(self, centers, labels, sq_prev, shift):
        X = self.X
        n, k = X.shape[0], centers.shape[0]
        if resolve_device(self.device, op="kmeans_assign", cuda_kernel=True) != "cpu":
            return None  # the full pass runs on the GPU
        C64 = centers.astype(np.float64)
        cc = np.einsum("ij,ij->i", C64, C64)
        slack = 64 * float(np.finfo(X.dtype).eps) * (cc.max() + float(np.max(sq_prev)) + 1.0)
        if self.order is None:
            # first call: check that pruning pays before paying for the sorted copy
            umax0 = np.zeros(k)
            np.maximum.at(umax0, labels, np.sqrt(sq_prev.astype(np.float64) + slack))
            reach0 = (2.0 * (umax0 + shift) * (1.0 + 1e-6)) ** 2 + 4 * slack
            G = centers @ centers.T
            d2 = cc[:, None] + cc[None, :] - 2.0 * G.astype(np.float64)
            counts = np.bincount(labels, minlength=k)
            if float(np.dot(counts, (d2 < reach0[:, None]).sum(axis=1))) > _PRUNE_MAX_WORK * n * k:
                return None
            self._sort(labels, k)
        cur = labels[self.order]
        movers = np.flatnonzero(cur != self.block_lab)
        if movers.size > _RESORT * n:
            self._sort(labels, k)
            cur = self.block_lab
            movers = movers[:0]
        starts = self.starts
        # largest distance bound per current cluster
        u = np.sqrt(sq_prev.astype(np.float64)[self.order] + slack)
        umax = np.zeros(k)
        blocks = np.flatnonzero(np.diff(starts))
        if movers.size:
            u_stay = u.copy()
            u_stay[movers] = 0.0
            umax[blocks] = np.maximum.reduceat(u_stay, starts[blocks])
            np.maximum.at(umax, cur[movers], u[movers])
        else:
            umax[blocks] = np.maximum.reduceat(u, starts[blocks])
        umax += shift
        CC2 = centers @ centers.T
        CC2 *= -2.0
        CC2 += cc.astype(CC2.dtype)[:, None]
        CC2 += cc.astype(CC2.dtype)[None, :]
        reach2 = (2.0 * umax * (1.0 + 1e-6)) ** 2 + 4 * slack
        cand = CC2 < reach2.astype(CC2.dtype)[:, None]
        np.fill_diagonal(cand, True)
        if movers.size:  # a block also holds points now in other clusters
            cand_b = cand.copy()
            moved_to = np.zeros((k, k), dtype=bool)  # (old block, new cluster) pairs, O(movers)
            moved_to[self.block_lab[movers], cur[movers]] = True
            for b, j in zip(*np.nonzero(moved_to)):
                cand_b[b] |= cand[j]
        else:
            cand_b = cand
        sizes = np.diff(starts)
        n_cand = cand_b.sum(axis=1)
        work = float(np.dot(sizes, n_cand))
        if work > _PRUNE_MAX_WORK * n * k:
            return None
        Xs = self.Xs
        lab_s = np.empty(n, dtype=np.int64)  # in sorted order
        sq_s = np.empty(n, dtype=X.dtype)
        jobs = [int(j) for j in blocks[np.argsort(-(sizes * n_cand)[blocks], kind="stable")]]

        def run(js) -> None:
            for j in js:
                s, e = starts[j], starts[j + 1]
                idx = np.flatnonzero(cand_b[j])
                if idx.size == 1:
                    diff = Xs[s:e] - centers[idx[0]]
                    sq_s[s:e] = np.einsum("ij,ij->i", diff, diff)
                    lab_s[s:e] = idx[0]
                    continue
                # the unchecked native call (inputs already validated, contiguous, finite)
                ops.kmeans_assign_dense_into(Xs[s:e], centers[idx], lab_s[s:e], sq_s[s:e], 1)
                lab_s[s:e] = idx[lab_s[s:e]]

        if self.n_threads == 1:
            run(jobs)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.n_threads) as ex:
                list(ex.map(run, [jobs[w::self.n_threads] for w in range(self.n_threads)]))
        new_lab = np.empty(n, dtype=np.int64)
        new_sq = np.empty(n, dtype=X.dtype)
        new_lab[self.order] = lab_s
        new_sq[self.order] = sq_s
        return new_lab, new_sq, work / (n * k)


def lloyd(
    X: np.ndarray | sp.csr_matrix,
    sample_weight: np.ndarray,
    centers_init: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    n_threads: int,
    device: str,
    bounds: bool,
    spherical: bool,
    verbose: int | bool = 0,
    prune: bool = False,
) -> LloydResult:
    """One K-means run from ``centers_init`` (see the module docstring)."""
    n = X.shape[0]
    k = centers_init.shape[0]
    if n * k * max(X.shape[1], 1) < _SMALL_WORK:
        n_threads = 1  # OpenMP start-up and barriers cost more than such a small pass
    centers = np.array(centers_init, dtype=X.dtype, order="C", copy=True)
    use_bounds = (bool(bounds) and not sp.issparse(X) and k > 1 and n > 0
                  and resolve_device(device, op="kmeans_assign", cuda_kernel=True) == "cpu")
    if use_bounds:
        X = np.ascontiguousarray(X)
    weighted = not np.all(sample_weight == 1)
    w_arg = sample_weight if weighted else None
    labels_old: np.ndarray | None = None
    strict = False
    recomputed: list[float] = []
    state = _Yinyang(X, centers) if use_bounds else None
    moved = -1
    # pruning costs a sort and a gather of X per iteration: worth it when k * d is large
    use_prune = (bool(prune) and not use_bounds and not sp.issparse(X) and n > 0
                 and k >= 64 and k * X.shape[1] >= _PRUNE_MIN_KD)
    prune_ok, prune_misses = True, 0
    pruner = _Pruner(X, n_threads, device) if use_prune else None
    shift = np.zeros(k)
    labels = np.zeros(n, dtype=np.int64)
    sq = None
    it = 0
    t0 = time.perf_counter()
    for it in range(max_iter):
        # ---------------- assignment with the current centres
        if use_bounds:
            moved, frac = state.assign(X, centers, shift if it > 0 else None, w_arg, n_threads, True)
            labels = state.labels
            recomputed.append(frac)
        else:
            res = None
            if use_prune and it > 0 and prune_ok:
                res = pruner.assign(centers, labels, sq, shift)
                if res is None:
                    prune_misses += 1
                    prune_ok = prune_misses < 3 or it % 8 == 0  # retry now and then
                else:
                    prune_misses = 0
            elif use_prune and it > 0:
                prune_ok = it % 8 == 0
            if res is not None:
                labels, sq, frac = res
            else:
                labels, sq = ops.kmeans_assign(X, centers, device=device, n_threads=n_threads)
                frac = 1.0
            recomputed.append(frac)

        # ---------------- update
        # (bit-identical for any thread count; 2 threads halve it on the quiet 2-core
        # dev machine: 20.2 -> 10.8 ms at 1M x 32, k=256)
        if use_bounds:  # sums moved incrementally by the assignment pass
            sums, counts = state.update(X, w_arg, device, n_threads)
        else:
            sums, counts = ops.kmeans_update(X, labels, k, sample_weight=w_arg, device=device,
                                             n_threads=n_threads)
            if not weighted:
                counts = counts.astype(X.dtype)
        if (counts == 0).any():
            dist = sq.astype(np.float64) if sq is not None and not use_bounds else exact_sq_dist(X, centers, labels)
            _relocate_empty(X, sample_weight, centers, sums, counts, labels, dist)
            if use_bounds:
                state.stale = True  # the relocated sums no longer match the labels
        new = update_centers(sums, counts, centers, spherical)
        shift = np.sqrt(np.einsum("ij,ij->i", (new - centers).astype(np.float64), (new - centers).astype(np.float64)))
        centers = new
        if verbose:
            msg = f"  iter {it:3d}: centre shift^2 {float((shift ** 2).sum()):.4g}"
            if recomputed:
                msg += f", distance work {recomputed[-1]:.1%} of n*k"
            print(msg + f"  [{time.perf_counter() - t0:.2f} s]")
        if use_bounds:
            if it > 0 and moved == 0:
                strict = True
                break
        elif labels_old is not None and np.array_equal(labels, labels_old):
            strict = True
            break
        if float((shift ** 2).sum()) <= tol:
            break
        if not use_bounds:
            labels_old = labels.copy()

    if not strict and use_bounds:
        state.assign(X, centers, shift, w_arg, n_threads, False)
        labels = state.labels
    elif not strict:
        res = pruner.assign(centers, labels, sq, shift) if pruner is not None and it > 0 and sq is not None else None
        if res is not None:
            labels, sq = res[0], res[1]
        else:
            labels, sq = ops.kmeans_assign(X, centers, device=device, n_threads=n_threads)
    d = exact_sq_dist(X, centers, labels)
    inertia = float(np.dot(d, sample_weight.astype(np.float64)))
    return LloydResult(labels, inertia, centers, it + 1, recomputed)
