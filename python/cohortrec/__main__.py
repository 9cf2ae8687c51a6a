"""``python -m cohortrec``: a one-minute tour on built-in synthetic data.

Generates a user x item matrix with planted taste groups, then runs the
native kernels on it: user-user cosine neighbours, K-means on user
profiles, and top-n recommendation scores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

import cohortrec
from cohortrec import ops


def _synthetic(n_users: int, n_items: int, n_groups: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Users of each group favour their own slice of the catalogue."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(n_groups, size=n_users)
    per_user = rng.poisson(40, size=n_users).clip(5, n_items)
    rows = np.repeat(np.arange(n_users), per_user)
    own = rng.random(rows.size) < 0.8
    slice_width = n_items // n_groups
    cols = np.where(
        own,
        groups[rows] * slice_width + rng.integers(slice_width, size=rows.size),
        rng.integers(n_items, size=rows.size),
    )
    X = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n_users, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X, groups


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cohortrec", description=__doc__)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(f"cohortrec {cohortrec.__version__}; devices: {cohortrec.devices()}; "
          f"threads: {cohortrec.n_threads_default()}")
    X, truth = _synthetic(args.users, args.items, args.groups, args.seed)
    print(f"data: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} interactions, {args.groups} planted groups")

    t = time.perf_counter()
    S = ops.cosine_topk(X, k=50)
    print(f"cosine_topk  (50 neighbours per user)   {time.perf_counter() - t:7.3f} s")

    # K-means (Lloyd) on row-normalised profiles, k = number of groups.
    P = sp.diags(1.0 / np.sqrt(np.asarray(X.sum(axis=1)).ravel())) @ X
    rng = np.random.default_rng(args.seed)
    centers = P[rng.choice(P.shape[0], args.groups, replace=False)].toarray()
    t = time.perf_counter()
    for _ in range(20):
        labels, _ = ops.kmeans_assign(P, centers)
        sums, counts = ops.kmeans_update(P, labels, args.groups)
        nonempty = counts > 0
        centers[nonempty] = sums[nonempty] / counts[nonempty, None]
    purity = sum(np.bincount(truth[labels == c]).max() for c in np.unique(labels)) / len(labels)
    print(f"kmeans       (20 Lloyd iterations)       {time.perf_counter() - t:7.3f} s   purity {purity:.2f}")

    t = time.perf_counter()
    items, scores = ops.topk_scores(S, X, n=10, exclude=X)
    print(f"topk_scores  (top-10 for every user)     {time.perf_counter() - t:7.3f} s")
    print(f"user 0 gets items {items[0][:5].tolist()} ...")


if __name__ == "__main__":
    main()
