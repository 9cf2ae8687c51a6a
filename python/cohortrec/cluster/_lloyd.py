"""Lloyd's K-means iterations on the native kernels, with Hamerly bounds.

Every iteration is one assignment (:func:`cohortrec.ops.kmeans_assign`, the
per-cluster pruned variant :class:`_Pruner`, or the bounded variant below)
and one update (:func:`cohortrec.ops.kmeans_update`).
The loop mirrors scikit-learn's ``_kmeans_single_lloyd`` step for step
(empty-cluster relocation, strict convergence when no label changes, the
centre-shift tolerance, the final re-assignment), so the same data and
initial centres give the same clustering.

Bounded assignment (Hamerly 2010; Ding et al. 2015 "Yinyang K-means", global
filter): every point keeps an upper bound ``u`` on the distance to its centre
and, per group of centres, a lower bound on the distance to the group's other
centres. After the centres move, ``u += shift[label]`` and each group bound
drops by the group's largest shift; a point whose ``u <= max(min group bound,
s[label])`` (``s`` = half the distance from its centre to the nearest other
centre) cannot change cluster and is skipped. The bounds only decide which
points are recomputed, so the labels are those of plain Lloyd (up to
floating-point ties).

Recomputed points need their nearest centre *and* the nearest other centre
of every group; the native ``kmeans_assign`` only returns the nearest, so
that step is a blocked BLAS product with a per-group minimum scan, measured
at 2-5x the cost of a native assignment per point on the 2-core machine. A
cost model picks, per iteration, between that path on the failing points
and one native pass over all points (keeping the bounds valid). With the
measured filter rates (>50% of points fail in the first tens of iterations
at d=128, k=1024) it does not beat plain Lloyd, so it is opt-in. A native
kernel returning, fused with the assignment GEMM, the nearest centre and the
per-group minimum distance excluding it (for a row subset given by index)
would make a recomputed point cost the same as a plain assignment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from cohortrec import _core, ops
from cohortrec._backend import resolve_device

_SMALL_WORK = 1 << 24  # n * k * d below which the kernels run on one thread
_EPS_MARGIN = 16.0  # safety margin on bounds, in units of eps * (|x|^2 + max|c|^2)


@dataclass
class LloydResult:
    labels: np.ndarray
    inertia: float
    centers: np.ndarray
    n_iter: int
    recomputed: list[float]


def _row_sq_norms(X: np.ndarray | sp.csr_matrix) -> np.ndarray:
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
    out = np.empty(X.shape[0], dtype=np.float64)
    step = 65536
    for s in range(0, X.shape[0], step):
        blk = X[s:s + step]
        out[s:s + step] = np.einsum("ij,ij->i", blk, blk, dtype=np.float64)
    return out


def exact_sq_dist(X: np.ndarray | sp.csr_matrix, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """||x_i - c_{labels_i}||^2 computed from differences (dense) in float64 accumulation."""
    n = X.shape[0]
    out = np.empty(n, dtype=np.float64)
    if sp.issparse(X):
        xx = _row_sq_norms(X)
        C = centers.astype(np.float64)
        cc = np.einsum("ij,ij->i", C, C)
        xc = np.asarray(X.multiply(C[labels]).sum(axis=1) if n else np.zeros((0, 1))).ravel()
        return np.maximum(xx - 2 * xc + cc[labels], 0.0)
    step = 32768
    for s in range(0, n, step):
        diff = X[s:s + step] - centers[labels[s:s + step]]
        out[s:s + step] = np.einsum("ij,ij->i", diff, diff, dtype=np.float64)
    return out


def _topg_block(X, CT, half, x_sq, starts, lab, d1, glow, s, e, buf) -> None:
    D = buf[: e - s]
    np.matmul(X[s:e], CT, out=D)
    np.subtract(half, D, out=D)  # |c|^2/2 - x.c ; distance^2 = |x|^2 + 2 * D
    a = D.argmin(axis=1)
    r = np.arange(e - s)
    v1 = D[r, a].astype(np.float64)
    D[r, a] = np.inf
    G = np.minimum.reduceat(D, starts, axis=1) if len(starts) > 1 else D.min(axis=1, keepdims=True)
    lab[s:e] = a
    xs = x_sq[s:e]
    d1[s:e] = np.maximum(xs + 2.0 * v1, 0.0)
    glow[s:e] = np.maximum(xs[:, None] + 2.0 * G.astype(np.float64), 0.0)


def _topg(X: np.ndarray, C: np.ndarray, x_sq: np.ndarray, starts: np.ndarray, n_threads: int = 1
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest centre, its squared distance, and per centre group the squared distance
    to the nearest *other* centre of the group (``C``'s rows sorted by group, groups
    starting at ``starts``).

    Blocked single-threaded BLAS products, the blocks spread over ``n_threads``
    Python threads (NumPy releases the GIL): BLAS's own threads would spin against
    the OpenMP threads of the native kernels.
    """
    m, k = X.shape[0], C.shape[0]
    half = 0.5 * np.einsum("ij,ij->i", C, C, dtype=np.float64).astype(X.dtype)
    lab = np.empty(m, dtype=np.int64)
    d1 = np.empty(m, dtype=np.float64)
    glow = np.empty((m, len(starts)), dtype=np.float64)
    chunk = int(max(64, min(m, (1 << 20) // max(k, 1))))
    CT = C.T
    blocks = list(range(0, m, chunk))
    workers = max(1, min(int(n_threads), len(blocks)))
    if workers == 1:
        buf = np.empty((chunk, k), dtype=X.dtype)
        for s in blocks:
            _topg_block(X, CT, half, x_sq, starts, lab, d1, glow, s, min(m, s + chunk), buf)
        return lab, d1, glow
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    def work(w: int) -> None:
        buf = np.empty((chunk, k), dtype=X.dtype)
        for s in blocks[w::workers]:
            _topg_block(X, CT, half, x_sq, starts, lab, d1, glow, s, min(m, s + chunk), buf)

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(work, range(workers)))
    return lab, d1, glow


def _center_groups(C: np.ndarray, t: int) -> np.ndarray:
    """Group of every centre (a few Lloyd steps on the centres, as Yinyang K-means does)."""
    k = C.shape[0]
    if t <= 1:
        return np.zeros(k, dtype=np.int64)
    rng = np.random.RandomState(0)
    G = C[rng.choice(k, t, replace=False)].astype(np.float64)
    C64 = C.astype(np.float64)
    for _ in range(5):
        d = (C64 * C64).sum(1)[:, None] - 2 * C64 @ G.T + (G * G).sum(1)[None, :]
        g = d.argmin(axis=1)
        for j in range(t):
            if (g == j).any():
                G[j] = C64[g == j].mean(axis=0)
    return np.unique(g, return_inverse=True)[1].astype(np.int64)


def _relocate_empty(X, sample_weight, centers_old, sums, counts, labels, sq_dist) -> int:
    """scikit-learn's rule: each empty cluster takes the point farthest from its centre."""
    empty = np.flatnonzero(counts == 0)
    n_empty = empty.size
    if n_empty == 0:
        return 0
    n = X.shape[0]
    n_empty = min(n_empty, n)
    far = np.argpartition(sq_dist, -n_empty)[: -n_empty - 1: -1]
    for idx in range(n_empty):
        new_id = empty[idx]
        i = far[idx]
        w = sample_weight[i]
        old_id = labels[i]
        xi = X[i].toarray().ravel() if sp.issparse(X) else X[i]
        sums[old_id] -= xi * w
        sums[new_id] = xi * w
        counts[new_id] = w
        counts[old_id] -= w
    return n_empty


def _centers_from(sums, counts, old, spherical):
    new = old.copy()
    nz = counts > 0
    new[nz] = sums[nz] / counts[nz, None]
    if spherical:
        norms = np.sqrt(np.einsum("ij,ij->i", new, new, dtype=np.float64))
        ok = norms > 0
        new[ok] /= norms[ok, None].astype(new.dtype)
    return new


class _Bounds:
    """Yinyang-style bounds (Ding et al. 2015, global filter) and the running cost
    estimates of the two assignment paths.

    Centres are split into ``t`` groups (``t = 1`` is Hamerly's single lower bound).
    Every point keeps an upper bound ``u`` on the distance to its centre and, per
    group, a lower bound on the distance to the group's other centres; after a move
    each group bound drops by the largest shift *in that group*, which stays tight
    in high dimension where one global bound does not.
    """

    def __init__(self, X: np.ndarray, centers: np.ndarray, rng: np.random.RandomState) -> None:
        n = X.shape[0]
        k = centers.shape[0]
        self.x_sq = _row_sq_norms(X)
        self.eps = float(np.finfo(X.dtype).eps)
        self.labels = np.zeros(n, dtype=np.int64)
        self.u = np.full(n, np.inf)
        t = k // 10 if k >= 20 else 1
        group = _center_groups(centers, t)
        self.t = int(group.max()) + 1
        self.group = group
        self.perm = np.argsort(group, kind="stable")  # centre order with groups contiguous
        counts = np.bincount(group, minlength=self.t)
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
        self.low = np.zeros((n, self.t))
        self.t_native = None  # seconds per point, native full assignment
        self.t_top2 = None  # seconds per point, BLAS path
        self.rng = rng
        self.cursor = 0

    def moved(self, shift: np.ndarray) -> None:
        self.u += shift[self.labels]
        drift = np.zeros(self.t)
        np.maximum.at(drift, self.group, shift)
        self.low -= drift[None, :]

    def lowest(self) -> np.ndarray:
        return self.low.min(axis=1)

    def top2(self, X, idx, centers, cmax, n_threads) -> None:
        t = time.perf_counter()
        Xs = X if idx is None else X[idx]
        xs = self.x_sq if idx is None else self.x_sq[idx]
        a, d1, glow = _topg(Xs, centers[self.perm], xs, self.starts, n_threads)
        margin = _EPS_MARGIN * self.eps * (xs + cmax)
        sel = slice(None) if idx is None else idx
        self.labels[sel] = self.perm[a]
        self.u[sel] = np.sqrt(d1 + margin)
        self.low[sel] = np.sqrt(np.maximum(glow - margin[:, None], 0.0))
        if Xs.shape[0] >= 256:
            self.t_top2 = (time.perf_counter() - t) / Xs.shape[0]

    def native(self, X, centers, cmax, device, n_threads) -> None:
        t = time.perf_counter()
        lab, d1 = ops.kmeans_assign(X, centers, device=device, n_threads=n_threads)
        self.t_native = (time.perf_counter() - t) / max(X.shape[0], 1)
        changed = np.flatnonzero(lab != self.labels)
        if changed.size:  # the old centre becomes an "other" centre of its group
            old = self.labels[changed]
            diff = X[changed] - centers[old]
            d_old = np.sqrt(np.einsum("ij,ij->i", diff, diff, dtype=np.float64)) * (1 - 4 * self.eps)
            g = self.group[old]
            self.low[changed, g] = np.minimum(self.low[changed, g], d_old)
        margin = _EPS_MARGIN * self.eps * (self.x_sq + cmax)
        self.u = np.sqrt(d1.astype(np.float64) + margin)
        self.labels = lab


_REFRESH = 0.15  # share of a native pass spent refreshing lower bounds on the BLAS path
_FULL_START = False  # it 0: exact bounds for every point (True) or for a timing sample


def _bounded_assign(state: _Bounds, X, centers, it, device, n_threads) -> float:
    """Assignment of every point to its nearest centre; returns the share recomputed."""
    n = X.shape[0]
    cmax = float(np.max(np.einsum("ij,ij->i", centers, centers, dtype=np.float64)))
    if it == 0:
        # native pass for the labels, BLAS path on a sample to start the bounds and time it
        state.native(X, centers, cmax, device, n_threads)
        m = n if _FULL_START else min(n, 4096)
        state.top2(X, np.sort(state.rng.choice(n, m, replace=False)) if m < n else None, centers, cmax,
                   n_threads)
        return 1.0
    C64 = centers.astype(np.float64)
    cc = np.einsum("ij,ij->i", C64, C64)
    G = np.maximum(cc[:, None] + cc[None, :] - 2.0 * (C64 @ C64.T), 0.0)
    np.fill_diagonal(G, np.inf)
    s_half = 0.5 * np.sqrt(G.min(axis=1))
    bound = np.maximum(s_half[state.labels], state.lowest())
    cand = np.flatnonzero(state.u > bound)
    ratio = (state.t_top2 or 1.0) / (state.t_native or 1.0)
    if cand.size * ratio > 0.9 * n:
        # too many candidates: one native pass, then refresh some bounds on the BLAS path
        state.native(X, centers, cmax, device, n_threads)
        budget = int(_REFRESH * n / ratio)
        fail = cand[state.u[cand] > bound[cand]]
        if budget > 0 and fail.size:
            if fail.size > budget:
                start = state.cursor % fail.size
                pick = np.sort(np.take(fail, np.arange(start, start + budget), mode="wrap"))
                state.cursor = start + budget
            else:
                pick = fail
            state.top2(X, pick, centers, cmax, n_threads)
        return 1.0
    if cand.size:
        lc = state.labels[cand]
        diff = X[cand] - centers[lc]
        state.u[cand] = np.sqrt(np.einsum("ij,ij->i", diff, diff, dtype=np.float64)) * (1 + 4 * state.eps)
        cand = cand[state.u[cand] > bound[cand]]
        if cand.size:
            state.top2(X, cand, centers, cmax, n_threads)
    return cand.size / n


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
                _core.kmeans_assign_dense(Xs[s:e], np.ascontiguousarray(centers[idx]), lab_s[s:e], sq_s[s:e], 1)
                lab_s[s:e] = idx[lab_s[s:e]]

        if self.n_threads == 1:
            run(jobs)
        else:
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

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
    use_bounds = bool(bounds) and not sp.issparse(X) and k > 1 and n > 0
    weighted = not np.all(sample_weight == 1)
    w_arg = sample_weight if weighted else None
    labels_old: np.ndarray | None = None
    strict = False
    recomputed: list[float] = []
    state = _Bounds(X, centers, np.random.RandomState(0)) if use_bounds else None
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
            frac = _bounded_assign(state, X, centers, it, device, n_threads)
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
        sums, counts = ops.kmeans_update(X, labels, k, sample_weight=w_arg, device=device,
                                         n_threads=n_threads)
        if not weighted:
            counts = counts.astype(X.dtype)
        if (counts == 0).any():
            dist = sq.astype(np.float64) if sq is not None and not use_bounds else exact_sq_dist(X, centers, labels)
            _relocate_empty(X, sample_weight, centers, sums, counts, labels, dist)
        new = _centers_from(sums, counts, centers, spherical)
        shift = np.sqrt(np.einsum("ij,ij->i", (new - centers).astype(np.float64), (new - centers).astype(np.float64)))
        centers = new
        if use_bounds:
            state.moved(shift)
        if verbose:
            msg = f"  iter {it:3d}: centre shift^2 {float((shift ** 2).sum()):.4g}"
            if recomputed:
                msg += f", distance work {recomputed[-1]:.1%} of n*k"
            print(msg + f"  [{time.perf_counter() - t0:.2f} s]")
        if labels_old is not None and np.array_equal(labels, labels_old):
            strict = True
            break
        if float((shift ** 2).sum()) <= tol:
            break
        labels_old = labels.copy()

    if not strict:
        res = pruner.assign(centers, labels, sq, shift) if pruner is not None and it > 0 and sq is not None else None
        if res is not None:
            labels, sq = res[0], res[1]
        else:
            labels, sq = ops.kmeans_assign(X, centers, device=device, n_threads=n_threads)
    d = exact_sq_dist(X, centers, labels)
    inertia = float(np.dot(d, sample_weight.astype(np.float64)))
    return LloydResult(labels, inertia, centers, it + 1, recomputed)
