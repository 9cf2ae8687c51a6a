#!/usr/bin/env python
"""topk_scores (W @ R, exclusions, per-row top-n) against SciPy, sparse_dot_topn and implicit.

    python benchmarks/bench_topk_scores.py [--quick] [--threads 2] [--out ...]

Cases (README "topk_scores"): 100k users (``--quick``: 20k) x 20k items, 50
neighbours, n = 20, exclude = the user's own interactions; user-based
(random user kNN) and item-based (implicit's item kNN). The anchors are
checked against each other before cohortrec is checked against them. Also
run by ``compare.py`` (``--only topk``). Writes
``benchmarks/results/topk_scores-<date>.md`` unless ``--out -``.

``scipy_topk`` and ``sdtn_topk`` (the anchors) are imported by
``test_bench_ops.py`` and ``reference_ops.py``.
"""

from __future__ import annotations

import sys
import time

import _harness as H

if __name__ == "__main__":
    ARGS = H.finish_args(H.parser(__doc__.split("\n\n")[0]).parse_args(), "topk_scores")
    H.prepare_env(ARGS.threads)

import warnings

import numpy as np
import scipy.sparse as sp

import datasets as D

warnings.filterwarnings("ignore", module="implicit")
warnings.filterwarnings("ignore", message=".*Method expects CSR input.*")

N = 20  # top-n per user
NEIGHBOURS = 50
N_ITEMS = 20_000
USERS_FULL, USERS_QUICK = 100_000, 20_000


# --------------------------------------------------------------------------
# Anchors
# --------------------------------------------------------------------------


def _csr_topn_rows(S, n, excl_mask=None):
    """Per-row top-n of a CSR block (vectorised): returns (items, scores) with
    -1 / -inf padding.  `excl_mask` flags stored entries to drop."""
    S = sp.csr_matrix(S)
    rows_n = S.shape[0]
    data = S.data.astype(np.float32, copy=True)
    if excl_mask is not None:
        data[excl_mask] = -np.inf
    lengths = np.diff(S.indptr)
    width = max(int(lengths.max(initial=0)), n)
    P = np.full((rows_n, width), -np.inf, dtype=np.float32)
    I = np.full((rows_n, width), -1, dtype=np.int64)
    rows = np.repeat(np.arange(rows_n), lengths)
    pos = np.arange(S.nnz) - S.indptr[rows]
    P[rows, pos] = data
    I[rows, pos] = S.indices
    if width > n:
        part = np.argpartition(P, width - n, axis=1)[:, width - n :]
        P = np.take_along_axis(P, part, 1)
        I = np.take_along_axis(I, part, 1)
    order = np.argsort(-P, axis=1, kind="stable")
    P = np.take_along_axis(P, order, 1)
    I = np.take_along_axis(I, order, 1)
    I[~np.isfinite(P)] = -1
    return I[:, :n], P[:, :n]


def scipy_topk(W, R, E, n, T, batch=2048):
    """Anchor: SciPy W @ R in row batches; excluded (user, item) entries are
    found with a boolean (batch x items) scratch array and set to -inf; per-row
    top-n by a padded argpartition.  Batches run on T Python threads (SciPy's
    SpGEMM and numpy's partition release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    u, m = W.shape[0], R.shape[1]
    items = np.empty((u, n), np.int64)
    scores = np.empty((u, n), np.float32)

    def work(s):
        e = min(s + batch, u)
        S = sp.csr_matrix(W[s:e] @ R)
        Eb = E[s:e]
        mask = np.zeros((e - s, m), dtype=bool)
        mask[np.repeat(np.arange(e - s), np.diff(Eb.indptr)), Eb.indices] = True
        rows = np.repeat(np.arange(e - s), np.diff(S.indptr))
        I, P = _csr_topn_rows(S, n, mask[rows, S.indices])
        items[s:e] = I
        scores[s:e] = P

    if T > 1:
        with ThreadPoolExecutor(T) as ex:
            list(ex.map(work, range(0, u, batch)))
    else:
        for s in range(0, u, batch):
            work(s)
    return items, scores


def sdtn_topk(W, R, E, n, T):
    """Anchor: sparse_dot_topn with exclusion folded into the product:
    [W | E] @ [R ; -BIG * I] = W @ R - BIG * E, so excluded items score
    about -BIG and can never beat a real candidate; entries <= -BIG/2 are
    dropped afterwards (and sp_matmul_topn may drop negatives itself)."""
    from sparse_dot_topn import sp_matmul_topn

    u, m = W.shape[0], R.shape[1]
    w_abs = abs(W).sum(axis=1).max() if W.nnz else 0.0
    big = np.float32(4.0 * float(w_abs) * float(abs(R).max() if R.nnz else 1.0) + 1.0)
    Ef = sp.csr_matrix((np.ones(E.nnz, np.float32), E.indices, E.indptr), shape=E.shape)
    A = sp.hstack([W.astype(np.float32), Ef], format="csr")
    B = sp.vstack([R.astype(np.float32), sp.identity(m, np.float32, format="csr") * -big], format="csr")
    C = sp.csr_matrix(sp_matmul_topn(A, B, top_n=n, sort=True, n_threads=T))
    keep = C.data > -big / 2
    rows = np.repeat(np.arange(u), np.diff(C.indptr))
    rows, cols, vals = rows[keep], C.indices[keep], C.data[keep]
    # entries are sorted desc within each row (sort=True) -> rank = position
    counts = np.bincount(rows, minlength=u)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    pos = np.arange(rows.size) - starts[rows]
    items = np.full((u, n), -1, np.int64)
    scores = np.full((u, n), -np.inf, np.float32)
    items[rows, pos] = cols
    scores[rows, pos] = vals
    return items, scores


def implicit_topk(model, user_items, n):
    """Anchor: implicit's recommend for every user, padding mapped to -1 / -inf."""
    ids, sc = model.recommend(np.arange(user_items.shape[0]), user_items, N=n, filter_already_liked_items=True)
    ids = np.asarray(ids, np.int64)
    sc = np.asarray(sc, np.float64)
    pad = (ids < 0) | (sc <= -np.finfo(np.float32).max)
    ids[pad] = -1
    sc[pad] = -np.inf
    return ids, sc


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def compare_topk(case, label, got, ref, W, R, E, n, *, sample_users=5000):
    """Per-user counts, padding, top-n scores and order against `ref`; on
    sampled users every item distinct, not excluded, and scored (W@R)[u, item]."""
    ok = True
    gi, gs = (np.asarray(a) for a in got)
    ri, rs = (np.asarray(a) for a in ref)
    u = W.shape[0]
    ok &= H.check(case, f"{label}: shapes/dtypes", gi.shape == (u, n) and gs.shape == (u, n) and gi.dtype == np.int64,
                  f"items {gi.dtype}{gi.shape}, scores {gs.dtype}{gs.shape}")
    if gi.shape != (u, n) or gs.shape != (u, n):
        return False
    gs64 = gs.astype(np.float64)
    rs64 = rs.astype(np.float64)
    gpad = gi < 0
    rpad = ri < 0
    bad_pad = np.flatnonzero((gpad != rpad).any(1))
    ok &= H.check(case, f"{label}: same number of results per user (padding -1)", bad_pad.size == 0,
                  f"{bad_pad.size} users differ"
                  + (f"; (user, cohortrec count, anchor count): "
                     f"{H.fmt_examples(bad_pad, (~gpad[bad_pad]).sum(1), (~rpad[bad_pad]).sum(1))}"
                     if bad_pad.size else ""))
    ok &= H.check(case, f"{label}: padded scores are -inf", np.all(np.isneginf(gs64[gpad])), "")
    both = ~gpad & ~rpad
    with np.errstate(invalid="ignore"):
        diff = np.where(both, np.abs(gs64 - rs64), 0.0)
    tol = 1e-5 + 1e-4 * np.abs(rs64)
    bad = np.flatnonzero(((diff > tol) & both).any(1))
    ok &= H.check(case, f"{label}: top-{n} scores (atol 1e-5, rtol 1e-4)", bad.size == 0,
                  f"max |diff| {diff.max(initial=0):.3g}; {bad.size} users differ"
                  + (f"; (user, cohortrec top score, anchor top score): "
                     f"{H.fmt_examples(bad, gs64[bad, 0], rs64[bad, 0])}" if bad.size else ""))
    unsorted = np.flatnonzero((np.diff(np.where(gpad, -np.inf, gs64), axis=1) > 0).any(1))
    ok &= H.check(case, f"{label}: scores sorted desc", unsorted.size == 0, f"{unsorted.size} users not sorted")
    # per-user item validity on a sample: distinct, not excluded, score == (W@R)[u, item]
    rng = np.random.default_rng(7)
    us = np.sort(rng.choice(u, size=min(sample_users, u), replace=False))
    S = sp.csr_matrix(W[us].astype(np.float64) @ R.astype(np.float64))
    it = gi[us]
    valid = it >= 0
    rr = np.repeat(np.arange(us.size), n).reshape(us.size, n)
    vals = np.zeros(it.shape)
    if valid.any():
        vals[valid] = np.asarray(S[rr[valid], it[valid]]).ravel()
        ex = np.asarray(sp.csr_matrix(E[us])[rr[valid], it[valid]]).ravel() != 0
    else:
        ex = np.zeros(0, bool)
    nexcl = int(ex.sum())
    ok &= H.check(case, f"{label}: no excluded item returned ({us.size} sampled users)", nexcl == 0,
                  f"{nexcl} excluded items returned")
    srt = np.sort(np.where(valid, it, -1 - np.arange(n)[None, :]), axis=1)
    dups = int((srt[:, 1:] == srt[:, :-1]).sum())
    ok &= H.check(case, f"{label}: items distinct per user", dups == 0, f"{dups} duplicates")
    verr = np.abs(vals - gs64[us]) * valid
    badv = np.argwhere(verr > 1e-5 + 1e-4 * np.abs(vals))
    ok &= H.check(case, f"{label}: score == (W@R)[u, item] ({us.size} sampled users)", badv.size == 0,
                  f"max err {verr.max(initial=0):.3g}; {len(badv)} bad"
                  + ("; (user, item, score, true): "
                     + "; ".join(f"({us[a]}, {it[a, b]}, {gs64[us][a, b]:.6g}, {vals[a, b]:.6g})" for a, b in badv[:5])
                     if len(badv) else ""))
    return ok


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

VARIANTS = {
    "user-based": "W = random user kNN (u x u, 50/row), R = user_items, exclude = user_items",
    "item-based": "W = user_items, R = implicit CosineRecommender(K=50).similarity (item x item, self included), "
                  "exclude = user_items",
}


def topk_case(args, ops, T, UI, vname):
    implicit_nn = H.opt_import("implicit.nearest_neighbours")
    n_users = UI.shape[0]
    case = H.new_case("topk", f"topk_scores {vname} {n_users // 1000}k users x {N_ITEMS // 1000}k items, "
                      f"{NEIGHBOURS} nbrs, n={N}")
    model = None
    t0 = time.perf_counter()
    if vname == "user-based":
        W, R = D.user_neighbours(n_users, NEIGHBOURS, kind="random", seed=args.seed + 11), UI
        H.log(f"  W built in {time.perf_counter() - t0:.1f}s")
    else:
        if implicit_nn is None:
            case.notes.append("implicit not importable; item-based variant skipped")
            return
        model = implicit_nn.CosineRecommender(K=NEIGHBOURS, num_threads=T)
        model.fit(UI, show_progress=False)
        W, R = UI, sp.csr_matrix(model.similarity, dtype=np.float32)
        R.sort_indices()
        H.log(f"  R (implicit item kNN) built in {time.perf_counter() - t0:.1f}s, nnz {R.nnz}")
    E = UI
    madds = int(np.diff(R.indptr)[W.indices].sum())
    case.data = (f"{VARIANTS[vname]}; W {W.shape[0]}x{W.shape[1]} nnz={W.nnz}, R {R.shape[0]}x{R.shape[1]} "
                 f"nnz={R.nnz}, E nnz={E.nnz}; W@R multiply-adds={madds:.3g}")
    H.log(f"  {case.data}")

    _, ref = H.run_lib(case, "scipy", lambda: scipy_topk(W, R, E, N, T), args=args,
                       note=f"W@R (float32) in 2048-row batches on {T} threads, exclusion via bool scratch, "
                       "padded argpartition")
    _, sd = H.run_lib(case, "sparse_dot_topn", lambda: sdtn_topk(W, R, E, N, T), args=args,
                      note="sp_matmul_topn([W|E], [R; -BIG*I], top_n=n, sort=True) + unpack")
    imp = None
    if model is not None:
        _, imp = H.run_lib(case, "implicit", lambda: implicit_topk(model, UI, N), args=args,
                           note="ItemItemRecommender.recommend(all users, N=n) (single-threaded Python loop over "
                           "users; float64)")
    # anchors agree with each other (validates the anchor implementations)
    if ref is not None and sd is not None:
        compare_topk(case, "anchor sparse_dot_topn vs scipy", sd, ref, W, R, E, N, sample_users=1000)
    if ref is not None and imp is not None:
        compare_topk(case, "anchor implicit vs scipy", imp, ref, W, R, E, N, sample_users=1000)
    if ops is None:
        return
    _, got = H.run_lib(case, "cohortrec",
                       lambda: ops.topk_scores(W, R, n=N, exclude=E, device=args.device, n_threads=T), args=args)
    if got is not None and ref is not None:
        compare_topk(case, "vs scipy", got, ref, W, R, E, N)
    if got is not None and imp is not None:
        compare_topk(case, "vs implicit", got, imp, W, R, E, N, sample_users=1000)


def bench(args, ops, T, state=None):
    UI = H.interactions(USERS_QUICK if args.quick else USERS_FULL, N_ITEMS, args.seed + 10)
    for vname in VARIANTS:
        topk_case(args, ops, T, UI, vname)


if __name__ == "__main__":
    sys.exit(H.main(ARGS, [("topk", bench)], title="topk_scores benchmark"))
