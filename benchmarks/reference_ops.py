"""Slow pure NumPy/SciPy implementation of the ``cohortrec.ops`` API.

Only used to exercise the benchmark harness itself (``compare.py
--ops-module reference_ops``, ``test_bench_ops.py`` when cohortrec is not
built).  It is *not* a benchmark anchor and its timings mean nothing.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize


def cosine_topk(A, B=None, *, k=50, threshold=None, exclude_self=True, device="auto", n_threads=None):
    A = sp.csr_matrix(A, dtype=np.float32)
    same = B is None
    An = normalize(A)
    Bn = An if same else normalize(sp.csr_matrix(B, dtype=np.float32))
    BnT = sp.csc_matrix(Bn.T)
    nb = Bn.shape[0]
    out_r, out_c, out_d = [], [], []
    step = max(1, min(2000, 50_000_000 // max(nb, 1)))
    for s in range(0, An.shape[0], step):
        blk = An[s : s + step]
        S = (blk @ BnT).toarray()
        present = np.zeros(S.shape, bool)
        Sc = sp.csr_matrix(blk @ BnT)
        present[np.repeat(np.arange(S.shape[0]), np.diff(Sc.indptr)), Sc.indices] = True
        S[~present] = -np.inf
        if threshold is not None:
            S[S <= threshold] = -np.inf
        if same and exclude_self:
            r = np.arange(S.shape[0])
            S[r, r + s] = -np.inf
        kk = min(k, nb)
        part = np.argpartition(-S, kk - 1, axis=1)[:, :kk] if kk < nb else np.tile(np.arange(nb), (S.shape[0], 1))
        vals = np.take_along_axis(S, part, 1)
        order = np.argsort(-vals, axis=1, kind="stable")
        part = np.take_along_axis(part, order, 1)
        vals = np.take_along_axis(vals, order, 1)
        ok = np.isfinite(vals)
        rr = np.repeat(np.arange(S.shape[0]), kk).reshape(S.shape[0], kk)
        out_r.append(rr[ok] + s)
        out_c.append(part[ok])
        out_d.append(vals[ok])
    r = np.concatenate(out_r)
    c = np.concatenate(out_c)
    d = np.concatenate(out_d).astype(np.float32)
    indptr = np.r_[0, np.cumsum(np.bincount(r, minlength=An.shape[0]))]
    # keep the desc-sorted order inside rows (do not call sort_indices)
    return sp.csr_matrix((d, c, indptr), shape=(An.shape[0], nb))


def kmeans_assign(X, centers, *, device="auto", n_threads=None):
    X = np.asarray(X, np.float32)
    C = np.asarray(centers, np.float32)
    cn = (C.astype(np.float64) ** 2).sum(1)
    labels = np.empty(X.shape[0], np.int64)
    d2 = np.empty(X.shape[0], np.float32)
    for s in range(0, X.shape[0], 8192):
        x = X[s : s + 8192].astype(np.float64)
        d = (x**2).sum(1)[:, None] - 2 * x @ C.T.astype(np.float64) + cn
        lab = d.argmin(1)
        labels[s : s + 8192] = lab
        d2[s : s + 8192] = np.maximum(d[np.arange(d.shape[0]), lab], 0)
    return labels, d2


def kmeans_update(X, labels, n_clusters, *, sample_weight=None, device="auto", n_threads=None):
    X = np.asarray(X, np.float32)
    labels = np.asarray(labels)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    sums = np.zeros((n_clusters, X.shape[1]))
    order = np.argsort(labels, kind="stable")
    ls = labels[order]
    if ls.size:
        starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
        sums[ls[starts]] = np.add.reduceat(X[order].astype(np.float64) * w[order, None], starts, axis=0)
    counts = np.bincount(labels, weights=w, minlength=n_clusters)
    return sums.astype(np.float32), counts.astype(np.float32 if sample_weight is not None else np.int64)


def topk_scores(W, R, *, n=10, exclude=None, device="auto", n_threads=None):
    from bench_topk_scores import scipy_topk

    W = sp.csr_matrix(W, dtype=np.float32)
    R = sp.csr_matrix(R, dtype=np.float32)
    E = sp.csr_matrix((W.shape[0], R.shape[1]), dtype=np.float32) if exclude is None else sp.csr_matrix(exclude)
    return scipy_topk(W, R, E, n, 1)
