"""Deterministic synthetic data for the cohortrec benchmarks.

Every generator takes an explicit ``seed`` and only uses
``numpy.random.default_rng(seed)``, so the same arguments always give
bit-identical arrays (on the same numpy version).

* :func:`interactions`   -- user x item CSR (float32), Zipf-like item
  popularity, Poisson-distributed row lengths.
* :func:`blobs`          -- dense Gaussian blobs (n x d float32) for k-means,
  plus :func:`init_centers` to pick deterministic initial centres.
* :func:`user_neighbours` -- user x user weight matrix W with a fixed number
  of neighbours per user (random or cosine based).
* :func:`item_neighbours` -- item x item similarity matrix with a fixed number
  of neighbours per item (cosine, computed with an anchor library).

Nothing here imports ``cohortrec``: the data must not depend on the library
being benchmarked.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

#: Row-L2 normalisation (zero rows stay zero): scikit-learn's, as a user would
#: pick it; the name stays for gpu/bench_gpu.py.
l2_normalize_rows = normalize

__all__ = [
    "interactions",
    "blobs",
    "init_centers",
    "user_neighbours",
    "item_neighbours",
    "l2_normalize_rows",
    "describe_sparse",
]


def _zipf_probs(n_items: int, exponent: float, offset: float) -> np.ndarray:
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    w = 1.0 / (ranks + offset) ** exponent
    return w / w.sum()


def interactions(
    n_users: int,
    n_items: int,
    *,
    mean_nnz: float = 85.0,
    min_nnz: int = 5,
    zipf_exponent: float = 1.0,
    zipf_offset: float = 0.0,
    values: str = "continuous",
    seed: int = 0,
) -> sp.csr_matrix:
    """Sparse user x item interaction matrix (CSR, float32, sorted indices).

    * Row lengths ~ Poisson(``mean_nnz``) clipped to ``[min_nnz, n_items]``
      (mean 85 gives ~95% of rows within 67..103 nonzeros).
    * Items are drawn with probability ``p(r) ~ 1 / (r + offset)^exponent``
      (Zipf-like; item id == popularity rank after a fixed random
      permutation, so popular items are not all at low column indices).
      Items are drawn without replacement within a row, so very popular
      items saturate (appear in almost every row) -- as in real data.
    * ``values``: ``"continuous"`` -> 1 + Exp(1) "confidence" weights (few
      exact ties), ``"counts"`` -> 1 + Poisson(1), ``"ones"`` -> binary.
    """
    rng = np.random.default_rng(seed)
    target = rng.poisson(mean_nnz, size=n_users)
    target = np.clip(target, min_nnz, n_items).astype(np.int64)
    probs = _zipf_probs(n_items, zipf_exponent, zipf_offset)
    perm = rng.permutation(n_items)  # rank -> item id
    cdf = np.cumsum(probs)
    cdf[-1] = 1.0

    # Draw with replacement, deduplicate within each row, keep a random subset
    # of the uniques of the requested size.  Rows short of their target after
    # deduplication (popular items drawn twice) are topped up in further
    # rounds that only touch those rows.
    got_r = []
    got_c = []
    todo = np.arange(n_users, dtype=np.int64)
    extra_r = np.zeros(0, dtype=np.int64)  # uniques kept so far for rows in todo
    extra_c = np.zeros(0, dtype=np.int64)
    for _round in range(20):
        if todo.size == 0:
            break
        have = np.bincount(extra_r, minlength=n_users)[todo]
        need = target[todo] - have
        draw = np.ceil(need * 1.3 + 4).astype(np.int64)
        r = np.repeat(todo, draw)
        u = rng.random(r.size)
        c = perm[np.minimum(np.searchsorted(cdf, u, side="right"), n_items - 1)]
        r = np.concatenate([extra_r, r])
        c = np.concatenate([extra_c, c])
        key = r * n_items + c
        key.sort()  # sort-based unique (np.unique's hash path is slow here)
        key = key[np.r_[True, key[1:] != key[:-1]]]
        r = key // n_items
        c = key % n_items
        # random order within each row (row + U[0,1) keeps rows grouped), then
        # keep the first target[row] of each row
        order = np.argsort(r + rng.random(r.size), kind="stable")
        r = r[order]
        c = c[order]
        first = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        rank = np.arange(r.size) - np.repeat(first, np.diff(np.r_[first, r.size]))
        keep = rank < target[r]
        r = r[keep]
        c = c[keep]
        counts = np.bincount(r, minlength=n_users)
        done_mask = (counts >= target) | (counts >= n_items)
        fin = done_mask[r]
        got_r.append(r[fin])
        got_c.append(c[fin])
        extra_r = r[~fin]
        extra_c = c[~fin]
        todo = todo[~done_mask[todo]]
    got_r.append(extra_r)
    got_c.append(extra_c)
    rows_out = np.concatenate(got_r)
    cols_out = np.concatenate(got_c)

    nnz = rows_out.size
    if values == "continuous":
        data = (1.0 + rng.exponential(1.0, size=nnz)).astype(np.float32)
    elif values == "counts":
        data = (1.0 + rng.poisson(1.0, size=nnz)).astype(np.float32)
    elif values == "ones":
        data = np.ones(nnz, dtype=np.float32)
    else:
        raise ValueError(f"unknown values={values!r}")
    X = sp.csr_matrix(
        (data, (rows_out.astype(np.int32), cols_out.astype(np.int32))),
        shape=(n_users, n_items),
        dtype=np.float32,
    )
    X.sum_duplicates()
    X.sort_indices()
    return X


def blobs(
    n: int,
    d: int,
    *,
    n_blobs: int = 100,
    spread: float = 4.0,
    seed: int = 0,
) -> np.ndarray:
    """Dense Gaussian blobs, C-contiguous float32 of shape (n, d).

    ``n_blobs`` true centres ~ N(0, spread^2 I); each point is its blob centre
    plus N(0, I) noise.  The number of true blobs deliberately differs from
    the k used in the benchmarks, so Lloyd's iterations do not converge in a
    handful of steps.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, spread, size=(n_blobs, d)).astype(np.float32)
    lab = rng.integers(0, n_blobs, size=n)
    X = rng.standard_normal(size=(n, d), dtype=np.float32)
    X += centres[lab]
    return X


def init_centers(X: np.ndarray, k: int, *, seed: int = 1) -> np.ndarray:
    """k distinct rows of X chosen uniformly at random (float32, C order)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(X.shape[0], size=k, replace=False)
    idx.sort()
    return np.ascontiguousarray(X[idx], dtype=np.float32)


def user_neighbours(
    n_users: int,
    n_neighbours: int = 50,
    *,
    kind: str = "random",
    user_items: sp.csr_matrix | None = None,
    seed: int = 0,
    n_threads: int | None = None,
) -> sp.csr_matrix:
    """User x user weight matrix W (CSR float32) with ``n_neighbours`` per row.

    * ``kind="random"``: neighbours uniform at random (no self), weights
      uniform in (0, 1].  Fast and deterministic for any size.
    * ``kind="cosine"``: the true cosine top-``n_neighbours`` of the rows of
      ``user_items`` (self excluded), computed with sparse_dot_topn (an anchor,
      not cohortrec).  Expensive for large, popularity-skewed data.
    """
    if kind == "random":
        rng = np.random.default_rng(seed)
        k = n_neighbours
        # sample k+1 candidates with replacement, dedupe; retry the rare short rows
        cols = rng.integers(0, n_users - 1, size=(n_users, k))
        # shift to skip self: values >= row are incremented
        rows = np.arange(n_users)[:, None]
        cols = cols + (cols >= rows)
        cols.sort(axis=1)
        dup = np.zeros_like(cols, dtype=bool)
        dup[:, 1:] = cols[:, 1:] == cols[:, :-1]
        while dup.any():
            r, c = np.nonzero(dup)
            new = rng.integers(0, n_users - 1, size=r.size)
            new = new + (new >= r)
            cols[r, c] = new
            cols.sort(axis=1)
            dup[:] = False
            dup[:, 1:] = cols[:, 1:] == cols[:, :-1]
        data = rng.uniform(0.0, 1.0, size=cols.shape)
        data = (1.0 - data).astype(np.float32)  # (0, 1]
        indptr = np.arange(0, n_users * k + 1, k, dtype=np.int64)
        W = sp.csr_matrix(
            (data.ravel(), cols.ravel().astype(np.int32), indptr),
            shape=(n_users, n_users),
        )
        W.sort_indices()
        return W
    if kind == "cosine":
        if user_items is None:
            raise ValueError("kind='cosine' needs user_items")
        return _cosine_knn_anchor(user_items, n_neighbours, n_threads=n_threads)
    raise ValueError(f"unknown kind={kind!r}")


def item_neighbours(
    user_items: sp.csr_matrix, n_neighbours: int = 50, *, n_threads: int | None = None
) -> sp.csr_matrix:
    """Item x item cosine similarity, top ``n_neighbours`` per item, self excluded
    (CSR float32), computed with sparse_dot_topn."""
    return _cosine_knn_anchor(
        sp.csr_matrix(user_items.T), n_neighbours, n_threads=n_threads
    )


def _cosine_knn_anchor(X, k, *, n_threads=None):
    from sparse_dot_topn import sp_matmul_topn

    Xn = normalize(sp.csr_matrix(X, dtype=np.float32))
    C = sp_matmul_topn(Xn, Xn.T.tocsr(), top_n=k + 1, sort=True, n_threads=n_threads)
    C = sp.csr_matrix(C)
    C.setdiag(0)
    C.eliminate_zeros()
    # keep at most k per row (self may not have been among the top k+1 when
    # there are exact duplicates)
    return _truncate_rows(C, k)


def _truncate_rows(C: sp.csr_matrix, k: int) -> sp.csr_matrix:
    C = sp.csr_matrix(C)
    lengths = np.diff(C.indptr)
    if lengths.max(initial=0) <= k:
        C.sort_indices()
        return C.astype(np.float32)
    rows = np.repeat(np.arange(C.shape[0]), lengths)
    order = np.lexsort((-C.data, rows))
    rank = np.arange(C.nnz) - C.indptr[rows]
    keep = order[rank < k]
    out = sp.csr_matrix(
        (C.data[keep].astype(np.float32), (rows[keep], C.indices[keep])), shape=C.shape
    )
    out.sort_indices()
    return out


def describe_sparse(X: sp.csr_matrix) -> str:
    lengths = np.diff(X.indptr)
    col = np.bincount(X.indices, minlength=X.shape[1])
    # multiply-adds of X @ X.T (user-user) and X.T @ X (item-item)
    uu = int(np.sum(col.astype(np.float64) ** 2))
    ii = int(np.sum(lengths.astype(np.float64) ** 2))
    return (
        f"{X.shape[0]}x{X.shape[1]} nnz={X.nnz} "
        f"row nnz mean={lengths.mean():.1f} min={lengths.min()} max={lengths.max()} "
        f"top item in {col.max() / X.shape[0]:.1%} of rows; "
        f"X@X.T madds={uu:.3g}, X.T@X madds={ii:.3g}"
    )
