"""Pure NumPy/SciPy reference implementations ("oracles") of the native ops.

Every function here mirrors one public op in :mod:`cohortrec.ops` (same
arguments, minus ``device`` and ``n_threads``) and is written for clarity,
not speed:

* all arithmetic is done in float64 and only the returned values are cast to
  the op's result dtype (for cosine scores, rows are first scaled by exact
  powers of two, so huge or tiny magnitudes cannot overflow or underflow);
* inputs are assumed to be valid (no argument checking is done); the only
  input normalisation is what the contract of the ops prescribes (sparse
  inputs converted to CSR, duplicate entries summed, explicitly stored zeros
  ignored, integer/bool data converted to float64, float16 to float32);
* intermediate results are allowed to be dense in the number of *rows*
  (``n x p`` for :func:`cosine_topk`, ``u x m'`` for :func:`topk_scores`), so
  use them on small inputs only.  The number of *columns* of the sparse inputs
  is never materialised: column ids are compacted to the ids that actually
  occur, so matrices with billions of (mostly empty) columns are fine.

The private helpers ``_cosine_rows`` and ``_topk_rows`` return the full,
untruncated candidate lists (float64 scores) and are used by the test-suite
to judge near-ties.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import scipy.sparse as sp

__all__ = ["cosine_topk", "kmeans_assign", "kmeans_step", "kmeans_update", "topk_scores"]

Rows = List[Tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------
def value_dtype(dtype: np.dtype) -> np.dtype:
    """Return the value dtype the ops use for input data of ``dtype``.

    Parameters
    ----------
    dtype : numpy.dtype
        dtype of the input data.

    Returns
    -------
    numpy.dtype
        float32 and float64 are kept, float16 becomes float32, bool and
        integer types become float64.  (Other kinds are rejected by the ops;
        here they map to float64.)
    """
    dtype = np.dtype(dtype)
    if dtype == np.float32 or dtype == np.float16:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _canonical_csr64(M) -> sp.csr_matrix:
    """Return ``M`` as a canonical float64 CSR copy without stored zeros."""
    M = sp.csr_matrix(M, copy=True).astype(np.float64)
    M.sum_duplicates()
    M.eliminate_zeros()
    return M


def _compact_columns(*mats: sp.csr_matrix) -> Tuple[np.ndarray, List[sp.csr_matrix]]:
    """Renumber the columns of several CSR matrices to the ids that occur.

    Parameters
    ----------
    *mats : scipy.sparse.csr_matrix
        Matrices with the same number of columns.

    Returns
    -------
    cols : numpy.ndarray of int64
        Sorted original column ids that occur in any of the matrices.
    compacted : list of scipy.sparse.csr_matrix
        The matrices with column ``cols[t]`` renumbered to ``t``.
    """
    used = [np.asarray(M.indices, dtype=np.int64) for M in mats]
    cols = np.unique(np.concatenate(used)) if used else np.zeros(0, np.int64)
    out = []
    for M, ind in zip(mats, used):
        new = sp.csr_matrix(
            (M.data, np.searchsorted(cols, ind), np.asarray(M.indptr, np.int64)),
            shape=(M.shape[0], len(cols)),
        )
        out.append(new)
    return cols, out


def _rescale_rows(M: sp.csr_matrix) -> sp.csr_matrix:
    """Scale every row by a power of two so that its largest |value| is in [0.5, 1).

    Cosine scores do not change (the factor is exact in binary floating
    point), but squares and products can no longer overflow or underflow for
    rows of huge or tiny magnitude.
    """
    M = M.copy()
    for r in range(M.shape[0]):
        s, e = M.indptr[r], M.indptr[r + 1]
        if e > s:
            _, exponent = np.frexp(np.max(np.abs(M.data[s:e])))
            M.data[s:e] = np.ldexp(M.data[s:e], -exponent)
    return M


def _pattern(M: sp.csr_matrix) -> sp.csr_matrix:
    """0/1 float64 matrix with the sparsity pattern of ``M``."""
    P = M.copy()
    P.data = np.ones_like(P.data, dtype=np.float64)
    return P


def _order(idx: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Permutation sorting by score descending, ties by smaller index."""
    return np.lexsort((idx, -scores))


# ---------------------------------------------------------------------------
# cosine_topk
# ---------------------------------------------------------------------------
def _cosine_rows(A, B=None, *, threshold: Optional[float] = None,
                 exclude_self: bool = True) -> Rows:
    """All cosine candidates per row of ``A``, sorted, with float64 scores.

    Parameters
    ----------
    A, B, threshold, exclude_self
        As in :func:`cosine_topk`.

    Returns
    -------
    list of (indices int64, scores float64)
        One entry per row of ``A``, ordered by score descending and ties by
        smaller column index; not truncated to ``k``.
    """
    self_join = B is None
    A64 = _canonical_csr64(A)
    B64 = A64 if self_join else _canonical_csr64(B)
    n, p = A64.shape[0], B64.shape[0]

    _, (Ac, Bc) = _compact_columns(_rescale_rows(A64), _rescale_rows(B64))
    norm_a = np.sqrt(np.asarray(Ac.multiply(Ac).sum(axis=1)).ravel())
    norm_b = np.sqrt(np.asarray(Bc.multiply(Bc).sum(axis=1)).ravel())
    dots = np.asarray((Ac @ Bc.T).todense()).reshape(n, p)
    shared = np.asarray((_pattern(Ac) @ _pattern(Bc).T).todense()).reshape(n, p) > 0

    rows: Rows = []
    for i in range(n):
        cand = shared[i] & (norm_b > 0)
        if norm_a[i] == 0:
            cand[:] = False
        if self_join and exclude_self:
            cand[i] = False
        idx = np.flatnonzero(cand).astype(np.int64)
        scores = dots[i, idx] / (norm_a[i] * norm_b[idx])
        if threshold is not None:
            keep = scores > threshold
            idx, scores = idx[keep], scores[keep]
        o = _order(idx, scores)
        rows.append((idx[o], scores[o]))
    return rows


def cosine_topk(A, B=None, *, k: int = 50, threshold: Optional[float] = None,
                exclude_self: bool = True) -> sp.csr_matrix:
    """Reference for :func:`cohortrec.ops.cosine_topk`.

    Parameters
    ----------
    A : scipy sparse matrix, shape (n, m)
        Query rows (any sparse format).
    B : scipy sparse matrix, shape (p, m), optional
        Candidate rows; ``None`` means ``B = A``.
    k : int, default 50
        Number of neighbours kept per row (``k >= 0``).
    threshold : float, optional
        If given, only scores strictly greater than ``threshold`` are kept.
    exclude_self : bool, default True
        When ``B is None``, drop the pair ``(i, i)``.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n, p)
        Row ``i`` holds the ``k`` best candidates ``j`` (score descending,
        ties by smaller ``j``) stored in that order, with
        ``score = a_i . b_j / (|a_i| |b_j|)``.  A candidate is any ``j`` that
        shares a nonzero column with ``a_i``; zero-norm rows have no
        neighbours.  Scores that are exactly 0 are stored explicitly.
        The data dtype is ``result_type`` of the converted value dtypes.
    """
    dtype = np.result_type(value_dtype(A.dtype),
                           value_dtype(A.dtype if B is None else B.dtype))
    n = A.shape[0]
    p = n if B is None else B.shape[0]
    rows = _cosine_rows(A, B, threshold=threshold, exclude_self=exclude_self)
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices, data = [], []
    for i, (idx, scores) in enumerate(rows):
        idx, scores = idx[:k], scores[:k]
        indices.append(idx)
        data.append(scores)
        indptr[i + 1] = indptr[i] + len(idx)
    indices_arr = np.concatenate(indices) if indices else np.zeros(0, np.int64)
    data_arr = np.concatenate(data) if data else np.zeros(0)
    return sp.csr_matrix((data_arr.astype(dtype), indices_arr, indptr),
                         shape=(n, p), dtype=dtype)


# ---------------------------------------------------------------------------
# k-means
# ---------------------------------------------------------------------------
def _dense64(X) -> Tuple[np.ndarray, np.dtype]:
    """``X`` (dense or sparse) as a float64 ndarray, plus its value dtype."""
    dtype = value_dtype(X.dtype)
    if sp.issparse(X):
        return np.asarray(X.toarray(), dtype=np.float64), dtype
    return np.asarray(X).astype(dtype).astype(np.float64), dtype


def _kmeans_sq_distances(X, centers) -> np.ndarray:
    """Exact float64 squared distances, shape (n, k).

    ``centers`` are first cast to the value dtype of ``X`` (as the op does),
    then everything is computed in float64 as ``sum((x - c)**2)``.
    """
    X64, dtype = _dense64(X)
    C64 = np.asarray(centers).astype(dtype).astype(np.float64)
    n, k = X64.shape[0], C64.shape[0]
    d2 = np.empty((n, k), dtype=np.float64)
    for j in range(k):
        d2[:, j] = ((X64 - C64[j]) ** 2).sum(axis=1)
    return d2


def kmeans_assign(X, centers) -> Tuple[np.ndarray, np.ndarray]:
    """Reference for :func:`cohortrec.ops.kmeans_assign`.

    Parameters
    ----------
    X : ndarray or scipy sparse CSR, shape (n, d)
        Points; integer data is treated as float64.
    centers : ndarray, shape (k, d)
        Cluster centres (``k >= 1``), cast to X's value dtype.

    Returns
    -------
    labels : ndarray of int64, shape (n,)
        Index of the nearest centre; ties go to the smaller index.
    sq_dist : ndarray, shape (n,)
        Squared distance to that centre, in X's value dtype.
    """
    dtype = value_dtype(X.dtype)
    d2 = _kmeans_sq_distances(X, centers)
    if d2.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, dtype)
    labels = np.argmin(d2, axis=1).astype(np.int64)  # first minimum wins
    sq = d2[np.arange(d2.shape[0]), labels]
    return labels, np.maximum(sq, 0.0).astype(dtype)


def kmeans_step(X, centers, *, sample_weight=None):
    """Reference for :func:`cohortrec.ops.kmeans_step`: the two references in turn."""
    labels, sq = kmeans_assign(X, centers)
    sums, counts = kmeans_update(X, labels, np.asarray(centers).shape[0], sample_weight=sample_weight)
    return labels, sq, sums, counts


def kmeans_update(X, labels, n_clusters: int, *,
                  sample_weight=None) -> Tuple[np.ndarray, np.ndarray]:
    """Reference for :func:`cohortrec.ops.kmeans_update`.

    Parameters
    ----------
    X : ndarray or scipy sparse CSR, shape (n, d)
        Points.
    labels : array of int, shape (n,)
        Cluster of each point, in ``[0, n_clusters)``.
    n_clusters : int
        Number of clusters ``k >= 1``.
    sample_weight : array, shape (n,), optional
        Non-negative weights; ``None`` means all ones.

    Returns
    -------
    sums : ndarray, shape (k, d)
        ``sums[c] = sum_{i: labels[i] == c} w_i x_i``.
    counts : ndarray, shape (k,)
        ``counts[c] = sum_{i: labels[i] == c} w_i``.
    Both in X's value dtype.
    """
    dtype = value_dtype(X.dtype)
    n, d = X.shape
    labels = np.asarray(labels).astype(np.int64)
    w = (np.ones(n) if sample_weight is None
         else np.asarray(sample_weight, dtype=np.float64))
    if sp.issparse(X):
        # sums = G @ X with the (k x n) weighted one-hot matrix G[labels[i], i] = w_i
        G = sp.csr_matrix((w, (labels, np.arange(n))), shape=(n_clusters, n))
        sums = np.asarray((G @ sp.csr_matrix(X).astype(np.float64)).todense())
        sums = sums.reshape(n_clusters, d)
    else:
        X64, _ = _dense64(X)
        sums = np.zeros((n_clusters, d), dtype=np.float64)
        np.add.at(sums, labels, w[:, None] * X64)
    counts = np.bincount(labels, weights=w, minlength=n_clusters)
    return sums.astype(dtype), counts.astype(dtype)


# ---------------------------------------------------------------------------
# topk_scores
# ---------------------------------------------------------------------------
def _topk_rows(W, R, *, exclude=None) -> Rows:
    """All ``topk_scores`` candidates per user, sorted, float64 scores.

    Returns
    -------
    list of (items int64, scores float64)
        One entry per row of ``W``, ordered by score descending and ties by
        smaller item id; not truncated to ``n``.
    """
    W64 = _canonical_csr64(W)
    R64 = _canonical_csr64(R)
    u = W64.shape[0]
    cols, (Rc,) = _compact_columns(R64)
    scores = np.asarray((W64 @ Rc).todense()).reshape(u, len(cols))
    cand = np.asarray((_pattern(W64) @ _pattern(Rc)).todense()).reshape(u, len(cols)) > 0

    if exclude is not None:
        E = sp.coo_matrix(exclude)  # every stored entry counts, even zeros
        er = np.asarray(E.row, np.int64)
        ec = np.asarray(E.col, np.int64)
        pos = np.searchsorted(cols, ec)
        hit = pos < len(cols)
        hit[hit] = cols[pos[hit]] == ec[hit]
        cand[er[hit], pos[hit]] = False

    rows: Rows = []
    for r in range(u):
        t = np.flatnonzero(cand[r])
        items, sc = cols[t], scores[r, t]
        o = _order(items, sc)
        rows.append((items[o].astype(np.int64), sc[o]))
    return rows


def topk_scores(W, R, *, n: int = 10, exclude=None) -> Tuple[np.ndarray, np.ndarray]:
    """Reference for :func:`cohortrec.ops.topk_scores`.

    Parameters
    ----------
    W : scipy sparse matrix, shape (u, j)
        User-to-neighbour weights.
    R : scipy sparse matrix, shape (j, m)
        Neighbour-to-item interactions.
    n : int, default 10
        Number of items returned per user (``n >= 0``).
    exclude : scipy sparse matrix, shape (u, m), optional
        Every stored entry (whatever its value) excludes that item.

    Returns
    -------
    items : ndarray of int64, shape (u, n)
        Best items by ``(W @ R)[u, i]`` descending, ties by smaller id,
        among the structurally reachable, non-excluded items; padded with -1.
    scores : ndarray, shape (u, n)
        Their scores in the result dtype, padded with ``-inf``.
    """
    dtype = np.result_type(value_dtype(W.dtype), value_dtype(R.dtype))
    u = W.shape[0]
    items = np.full((u, n), -1, dtype=np.int64)
    scores = np.full((u, n), -np.inf, dtype=dtype)
    for r, (it, sc) in enumerate(_topk_rows(W, R, exclude=exclude)):
        t = min(n, len(it))
        items[r, :t] = it[:t]
        scores[r, :t] = sc[:t]
    return items, scores


# ---------------------------------------------------------------------------
# merge_topn
# ---------------------------------------------------------------------------
def merge_topn(ids, scores, weights, *, how: str, width: int, n: int, n_items: int,
               exclude=None, keep=None) -> Tuple[np.ndarray, np.ndarray]:
    """Oracle of :func:`cohortrec.ops.merge_topn`: a dict of float64 sums, list by list."""
    total: dict = {}
    floor = 1.0 / width
    for ids_m, sc_m, w in zip(ids, scores, weights):
        ids_m = np.asarray(ids_m, dtype=np.int64)
        sc_m = np.asarray(sc_m, dtype=np.float64)
        valid = [p for p in range(ids_m.size) if ids_m[p] >= 0 and np.isfinite(sc_m[p])]
        lo = min((sc_m[p] for p in valid), default=0.0)
        hi = max((sc_m[p] for p in valid), default=0.0)
        for p in valid:
            if how == "rank":
                v = 1.0 - p / width
            else:
                span = hi - lo
                v = floor + (1.0 - floor) * ((sc_m[p] - lo) / span if np.isfinite(span) and span > 0 else 1.0)
            item = int(ids_m[p])
            total[item] = total.get(item, 0.0) + v * float(w)
    banned = set() if exclude is None else {int(i) for i in exclude}
    rows = [(-s, i) for i, s in total.items()
            if s > 0 and i not in banned and (keep is None or keep[i])]
    rows.sort()
    out_ids = np.full(n, -1, dtype=np.int64)
    out_sc = np.full(n, -np.inf, dtype=np.float32)
    for t, (s, i) in enumerate(rows[:n]):
        out_ids[t], out_sc[t] = i, -s
    return out_ids, out_sc
