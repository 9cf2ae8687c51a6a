#!/usr/bin/env python
"""One Lloyd iteration (kmeans_step / kmeans_assign) against scikit-learn and faiss.

    python benchmarks/bench_kmeans_step.py [--quick] [--threads 2] [--out ...]

Cases (README "k-means"): Gaussian blobs 1M x 32 with k = 64 and 256, 200k
x 128 and 100k x 128 with k = 1024 (``--quick``: 1M x 32, k = 64). The
anchors' per-iteration time is the difference of a long and a one-iteration
fit. Also run by ``compare.py`` (``--only kmeans``). Writes
``benchmarks/results/kmeans_step-<date>.md`` unless ``--out -``.
"""

from __future__ import annotations

import sys
import time

import _harness as H

if __name__ == "__main__":
    ARGS = H.finish_args(H.parser(__doc__.split("\n\n")[0]).parse_args(), "kmeans_step")
    H.prepare_env(ARGS.threads)

import warnings

import numpy as np
import threadpoolctl

import datasets as D

warnings.filterwarnings("ignore", message="Number of distinct clusters")

KMEANS_FULL = [(1_000_000, 32, 64), (1_000_000, 32, 256), (200_000, 128, 1024), (100_000, 128, 1024)]
KMEANS_QUICK = [(1_000_000, 32, 64)]

# float32 rounding allowance for squared distances computed as
# |x|^2 - 2 x.c + |c|^2, relative to |x|^2 + max|c|^2 (observed errors of
# float32 implementations are ~1e-7..8e-7 of that)
TIE_RTOL = 3e-6


def gemm_rate(T, size=4096, repeats=3):
    """numpy float32 GEMM rate in GFLOP/s on T threads (the machine's roof)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    best = float("inf")
    with threadpoolctl.threadpool_limits(T):
        a @ b
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best / 1e9


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def ref_sq_dists(X, C, chunk=16384):
    """Exact (float64, chunked) nearest centre: returns (label, d2 of it,
    second-nearest label, d2 of it)."""
    C64 = C.astype(np.float64)
    cn = (C64**2).sum(1)
    n = X.shape[0]
    lab = np.empty(n, np.int64)
    lab2 = np.empty(n, np.int64)
    d1 = np.empty(n)
    d2 = np.empty(n)
    for s in range(0, n, chunk):
        x = X[s : s + chunk].astype(np.float64)
        d = (x**2).sum(1)[:, None] - 2 * x @ C64.T + cn[None, :]
        if d.shape[1] > 1:
            two = np.argpartition(d, 1, axis=1)[:, :2]
        else:
            two = np.zeros((d.shape[0], 2), np.int64)
        dv = np.take_along_axis(d, two, 1)
        swap = dv[:, 1] < dv[:, 0]
        two[swap] = two[swap][:, ::-1]
        dv[swap] = dv[swap][:, ::-1]
        lab[s : s + chunk], lab2[s : s + chunk] = two[:, 0], two[:, 1]
        d1[s : s + chunk], d2[s : s + chunk] = dv[:, 0], dv[:, 1]
    return lab, d1, lab2, d2


def exact_d2(X, C, labels):
    diff = X.astype(np.float64) - C.astype(np.float64)[labels]
    return (diff**2).sum(1)


def cluster_sums(labels, X, k):
    """float64 per-cluster sums of the rows of X (sorted reduceat)."""
    out = np.zeros((k, X.shape[1]))
    order = np.argsort(labels, kind="stable")
    ls = labels[order]
    if ls.size:
        starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
        out[ls[starts]] = np.add.reduceat(X[order].astype(np.float64), starts, axis=0)
    return out


def check_kmeans(case, X, C0, labels, sqd, sums, counts, k, label="cohortrec"):
    """Labels (exact argmin up to near-ties), distances, counts and sums of
    one step; returns (ok, (X, near-tie points, label, 2nd label, counts))."""
    ok = True
    n = X.shape[0]
    labels = np.asarray(labels)
    sqd = np.asarray(sqd)
    sums = np.asarray(sums)
    counts = np.asarray(counts)
    ok &= H.check(case, f"{label}: output shapes/dtypes",
                  labels.shape == (n,) and sqd.shape == (n,) and sums.shape == (k, X.shape[1])
                  and counts.shape == (k,) and labels.dtype == np.int64,
                  f"labels {labels.dtype}{labels.shape}, sq_dist {sqd.dtype}{sqd.shape}, "
                  f"sums {sums.dtype}{sums.shape}, counts {counts.dtype}{counts.shape}")
    ref_lab, ref_d, ref_lab2, ref_d2 = ref_sq_dists(X, C0)
    xn = (X.astype(np.float64) ** 2).sum(1)
    cmax = (C0.astype(np.float64) ** 2).sum(1).max()
    scale = xn + cmax
    # points whose two nearest centres are within float32 rounding of each
    # other: any implementation may legitimately put them in either cluster
    amb = np.flatnonzero(ref_d2 - ref_d <= TIE_RTOL * scale)
    valid = (labels >= 0) & (labels < k)
    ok &= H.check(case, f"{label}: labels in [0, k)", valid.all(), f"{(~valid).sum()} out of range")
    lab_c = np.where(valid, labels, 0)
    got_true = exact_d2(X, C0, lab_c)
    # a differing label is only wrong if its centre is farther than float32
    # rounding of the ||x||^2 - 2x.c + ||c||^2 expansion can explain
    tie_tol = TIE_RTOL * scale
    diff_lab = np.flatnonzero(lab_c != ref_lab)
    wrong = diff_lab[(got_true[diff_lab] - ref_d[diff_lab]) > tie_tol[diff_lab]]
    ok &= H.check(case, f"{label}: kmeans_assign labels == exact argmin (float64)", wrong.size == 0,
                  f"{diff_lab.size} differ, {diff_lab.size - wrong.size} within near-tie tolerance, "
                  f"{wrong.size} wrong"
                  + (f"; (point, label, ref label, d2(label), d2(ref)): "
                     f"{H.fmt_examples(wrong, lab_c[wrong], ref_lab[wrong], got_true[wrong], ref_d[wrong])}"
                     if wrong.size else ""))
    derr = np.abs(sqd.astype(np.float64) - got_true)
    bad_d = np.flatnonzero(derr > TIE_RTOL * scale + 1e-6)
    ok &= H.check(case, f"{label}: sq_dist == ||x - c[label]||^2 (tol {TIE_RTOL:g}*(|x|^2+max|c|^2))",
                  bad_d.size == 0,
                  f"max rel err {(derr / scale).max(initial=0):.3g}; {bad_d.size} bad; "
                  f"min sq_dist {sqd.min(initial=0):.3g}"
                  + (f"; (point, got, true): {H.fmt_examples(bad_d, sqd[bad_d], got_true[bad_d])}"
                     if bad_d.size else ""))
    # update: against float64 sums of cohortrec's own labels
    cnt_ref = np.bincount(lab_c, minlength=k)
    sums_ref = cluster_sums(lab_c, X, k)
    ok &= H.check(case, f"{label}: kmeans_update counts == bincount(labels)",
                  np.array_equal(counts.astype(np.float64), cnt_ref.astype(np.float64)),
                  f"max |diff| {np.abs(counts.astype(np.float64) - cnt_ref).max(initial=0):.3g}")
    # float32 accumulation of up to n/k values: allow 1e-5 relative to the
    # sum of |x| per cluster (i.e. about 170 float32 ulps)
    abs_ref = cluster_sums(lab_c, np.abs(X), k)
    serr = np.abs(sums.astype(np.float64) - sums_ref)
    bad_s = np.argwhere(serr > 1e-5 * abs_ref + 1e-6)
    ok &= H.check(case, f"{label}: kmeans_update sums == float64 per-cluster sums (tol 1e-5*sum|x|)",
                  bad_s.size == 0,
                  f"max rel err {(serr / np.maximum(abs_ref, 1e-30)).max(initial=0):.3g}; {len(bad_s)} bad"
                  + (f"; (cluster, dim) {bad_s[:5].tolist()}" if len(bad_s) else ""))
    return ok, (X, amb, ref_lab, ref_lab2, cnt_ref.astype(np.float64))


def centre_check(case, lib, anchor_c, co_center, amb_info):
    """Centres after one iteration from C0: cohortrec vs an anchor.

    Tolerance per cluster j: 1e-4*max|c| plus, for every near-tie point p
    whose two nearest centres include j, the most that moving p in or out
    of j can shift the mean: max|x_p - c_j| / (count_j - 1)."""
    X, amb, lab, lab2, counts = amb_info
    anchor_c = np.asarray(anchor_c, np.float64)
    diff = np.abs(anchor_c - co_center).max(axis=1)
    scale = np.abs(co_center).max()
    allow = np.full(diff.size, 1e-4 * scale)
    for labs in (lab[amb], lab2[amb]):
        shift = np.abs(X[amb].astype(np.float64) - co_center[labs]).max(axis=1)
        np.add.at(allow, labs, shift / np.maximum(counts[labs] - 1.0, 1.0))
    bad = np.flatnonzero(diff > allow)
    strict = allow <= 1e-4 * scale
    return H.check(case, f"centres after 1 iteration vs {lib} (max abs diff <= 1e-4*max|c|, plus the shift "
                   f"near-tie points can cause in the {int((~strict).sum())} clusters they touch)",
                   bad.size == 0,
                   f"max abs diff {diff[strict].max(initial=0):.3g} on the other {int(strict.sum())} clusters, "
                   f"{diff.max(initial=0):.3g} overall (max |c| {scale:.3g})"
                   + (f"; (cluster, diff, allowed): {H.fmt_examples(bad, diff[bad], allow[bad])}"
                      if bad.size else ""))


def check_sample_weight(case, ops, X, labels, k, T, device):
    """kmeans_update(sample_weight=w) on a subset == weighted float64 sums / counts."""
    try:
        m = min(X.shape[0], 20000)
        w = np.random.default_rng(5).uniform(0.1, 2.0, m).astype(np.float32)
        s_w, c_w = ops.kmeans_update(X[:m], labels[:m], k, sample_weight=w, device=device, n_threads=T)
        ref_c = np.bincount(labels[:m], weights=w.astype(np.float64), minlength=k)
        ref_s = np.zeros((k, X.shape[1]))
        np.add.at(ref_s, labels[:m], X[:m].astype(np.float64) * w[:, None])
        e1 = np.abs(np.asarray(c_w, np.float64) - ref_c).max()
        e2 = np.abs(np.asarray(s_w, np.float64) - ref_s).max() / max(np.abs(ref_s).max(), 1)
        H.check(case, "cohortrec: kmeans_update(sample_weight=w) == weighted float64 sums/counts",
                e1 <= 1e-3 * max(ref_c.max(), 1) and e2 <= 1e-5, f"max count err {e1:.3g}, max rel sum err {e2:.3g}")
    except Exception as exc:  # a failed path is a failed check
        H.check(case, "cohortrec: kmeans_update(sample_weight=...)", False, f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------


def lloyd_step(ops, X, C, k, T, device):
    """One iteration: labels, distances, sums and counts, then the new centres."""
    if hasattr(ops, "kmeans_step"):  # assign + update in one pass over X (same results)
        labels, sqd, sums, counts = ops.kmeans_step(X, C, device=device, n_threads=T)
    else:
        labels, sqd = ops.kmeans_assign(X, C, device=device, n_threads=T)
        sums, counts = ops.kmeans_update(X, labels, k, device=device, n_threads=T)
    counts = np.asarray(counts)
    newC = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], C)
    return newC.astype(np.float32), labels, sqd, sums, counts


def kmeans_case(args, ops, T, n, d, k, n_extra):
    from sklearn.cluster import KMeans

    faiss = H.opt_import("faiss")
    flops = 2.0 * n * d * k
    case = H.new_case("kmeans", f"Lloyd iteration {n // 1000}k x {d}, k={k}",
                      f"Gaussian blobs n={n} d={d} (100 true blobs), float32; init = {k} random points; "
                      f"assignment = {flops / 1e9:.1f} GFLOP")
    X = D.blobs(n, d, seed=args.seed)
    C0 = D.init_centers(X, k, seed=args.seed + 1)

    co_center = amb_info = None
    if ops is not None:
        row, out = H.run_lib(case, "cohortrec", lambda: lloyd_step(ops, X, C0, k, T, args.device), args=args,
                             note="kmeans_step (kmeans_assign + kmeans_update in one pass) + new centres")
        if row is not None:
            row.gflops = flops / row.timing.best / 1e9
            co_center, labels, sqd, sums, counts = out
            _, amb_info = check_kmeans(case, X, C0, labels, sqd, sums, counts, k)
            case.notes.append(
                f"{amb_info[1].size} points have their two nearest initial centres within float32 "
                f"rounding ({TIE_RTOL:g}*(|x|^2+max|c|^2)); float32 implementations may assign them either "
                "way, so the centre comparisons with scikit-learn / faiss allow for that in the "
                "clusters they touch")
            check_sample_weight(case, ops, X, labels, k, T, args.device)
        row2, _ = H.run_lib(case, "cohortrec assign only",
                            lambda: ops.kmeans_assign(X, C0, device=args.device, n_threads=T), args=args,
                            note="kmeans_assign alone")
        if row2 is not None:
            row2.gflops = flops / row2.timing.best / 1e9

    def sk_fit(iters):
        km = KMeans(n_clusters=k, init=C0, n_init=1, max_iter=iters, algorithm="lloyd", tol=0.0, copy_x=True,
                    random_state=0)
        with threadpoolctl.threadpool_limits(T):
            km.fit(X)
        return km

    km1 = H.per_iteration(case, "scikit-learn", sk_fit, n_extra=n_extra, iterations=lambda km: km.n_iter_,
                          args=args, flops=flops, note=f"(fit(max_iter={1 + n_extra}) - fit(max_iter=1)) / "
                          "difference of n_iter_")
    if km1 is not None and co_center is not None:
        centre_check(case, "scikit-learn", km1.cluster_centers_, co_center, amb_info)

    if faiss is None:
        case.notes.append("faiss not importable")
        return
    faiss.omp_set_num_threads(T)
    mppc = n // k + 1

    def fa_fit(iters):
        km = faiss.Kmeans(d, k, niter=iters, max_points_per_centroid=mppc, min_points_per_centroid=1,
                          verbose=False, seed=1234)
        km.train(X, init_centroids=C0)
        km.niter_done = iters
        return km

    f1 = H.per_iteration(case, "faiss", fa_fit, n_extra=n_extra, iterations=lambda km: km.niter_done, args=args,
                         flops=flops, note=f"(train(niter={1 + n_extra}) - train(niter=1)) / {n_extra}; "
                         f"max_points_per_centroid={mppc} (no subsampling)")
    if f1 is not None and co_center is not None:
        centre_check(case, "faiss", f1.centroids, co_center, amb_info)


def bench(args, ops, T, state):
    state["gemm"] = gemm = gemm_rate(T)
    H.log(f"numpy float32 GEMM rate ({T} threads): {gemm:.1f} GFLOP/s")
    n_extra = 2 if args.quick else 3  # iterations beyond the first for the anchors
    for n, d, k in KMEANS_QUICK if args.quick else KMEANS_FULL:
        kmeans_case(args, ops, T, n, d, k, n_extra)  # returns before the next case's data: one X at a time


if __name__ == "__main__":
    sys.exit(H.main(ARGS, [("kmeans", bench)], title="k-means (one Lloyd iteration) benchmark"))
