"""Group discovery on planted worlds we did not tune on: median and worst case over a grid (issue 15).

Every world of :func:`cohortrec.datasets.world_grid` (noise, overlapping
tastes, imbalance, activity skew, 4-40 groups, popularity, tastes over items,
users mixing two groups) is generated and every setting is run on it with
the planted number of groups and with ``n_groups="auto"``:

* ``default``       - ``GroupDiscovery()`` as shipped (SVD + K-means + multinomial refinement, its prior over the
  item categories where held-out items say so)
* ``background-prior`` - ``GroupDiscovery(category_prior=None)``: the refinement's prior always centred on the
  overall item distribution (the default before the category prior)
* ``svd-kmeans``    - ``GroupDiscovery(refine=None)`` (the previous default)
* ``vae``           - ``GroupDiscovery("vae")`` (bounded-cost Mult-VAE; needs torch)
* ``tfidf-sklearn`` - TF-IDF -> TruncatedSVD(24) -> L2 -> scikit-learn KMeans(n_init=10): the baseline a user
  would write by hand
* ``text+vae`` where item text exists and a local sentence-transformers model is installed
* ``oracle``        - naive Bayes over items fitted on the planted labels, each user scored against their own
  group's profile without their own events: the fair ceiling (what the events can tell)
* ``oracle-in-sample`` - the same with each user's events in their own group's profile (the label leaks through
  the user's rare items: an optimistic ceiling, kept to compare with earlier results)
* ``oracle-categories`` - the better of ``oracle`` and the leave-one-out oracle over the planted item categories:
  the ceiling of a method that also recovered the categories exactly
* ``oracle-bayes``  - every user's exact posterior over the groups under the generator itself (its view
  distributions, noise share, group sizes and mixing, all known): the Bayes-optimal assignment. No method that sees
  the events can beat its expected accuracy, which is reported beside it (the mean of the users' top posterior)

Recorded per world and setting: ARI and NMI against the planted groups, the
accuracy (share of users in their planted group after the best one-to-one matching of the groups), the
auto-K error, the wall time, stability (ARI between seeds 0 and 1 at the
planted K) and, on worlds with mixed users, how well the membership weights
find the second group (mean absolute error of the planted mix weight, and the AUC of the weight outside the
user's own group at telling mixed from one-group users).

    python benchmarks/bench_discovery_robustness.py                 # 27 worlds x 3,000 users
    python benchmarks/bench_discovery_robustness.py --settings default,tfidf-sklearn --users 1000

Writes ``benchmarks/results/discovery-robustness-<date>.{md,json,png}``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
SETTINGS = ("default", "background-prior", "svd-kmeans", "vae", "tfidf-sklearn", "text+vae", "oracle",
            "oracle-in-sample", "oracle-categories", "oracle-bayes")
ORACLES = ("oracle", "oracle-in-sample", "oracle-categories", "oracle-bayes")
#: points of the midpoint rule over a mixed user's second-group weight (uniform on make_world's range)
MIX_GRID = 8


def _oracle(X: Any, y: np.ndarray, k: int, *, leave_one_out: bool = True, categories: bool = False) -> np.ndarray:
    """Every user put in the group whose event distribution, estimated from the planted labels, explains them best.

    A supervised naive Bayes with the mixture's own smoothing (``alpha=1``,
    binary counts): an estimate of the ceiling of any unsupervised method of
    this family on the world (what the events can tell about the group).

    ``leave_one_out=True`` (the fair ceiling) scores each user against their
    own group's profile *without their own events*, as an unsupervised
    method must: estimated in sample, a profile holds the user's own rare
    items (an item seen once contributes ``1 + alpha * background`` against
    ``alpha * background`` elsewhere), which leaks the label and inflated the
    ceiling by 0.02-0.3 ARI (0.939 against 0.890 on ``sparse``).

    ``categories=True`` estimates each group's profile over the planted item
    categories (``world.items['categories']``), an item's probability being
    its category's times its share of the category: what a method that
    recovered the categories perfectly could reach. The share is the same
    for every group and so leaves the choice of group alone: only the
    category counts are scored.
    """
    from cohortrec.cluster import MultinomialMixture  # noqa: PLC0415

    B = MultinomialMixture(k, alpha=1.0, binary=True)._counts_of(X.matrix).tocsr()
    n, m = B.shape
    total = np.asarray(B.sum(axis=0)).ravel()
    if categories:
        codes = np.asarray(X.items.reindex(X.item_ids)["categories"].astype("category").cat.codes, dtype=np.int64)
        P = sp.csr_matrix((np.ones(m), (np.arange(m), codes)))
        B = (B @ P).tocsr()  # events per category
        m = B.shape[1]
        total = np.asarray(B.sum(axis=0)).ravel()
    bg = (total + 1.0) / (total.sum() + m)
    prior = 1.0 * m  # MultinomialMixture(alpha=1): one pseudo-event per column, spread as the background
    one = sp.csr_matrix((np.ones(n), (np.arange(n), y)), shape=(n, k))
    C = np.asarray((one.T @ B).todense())  # events of every group on every column
    N = C.sum(axis=1)
    sizes = np.bincount(y, minlength=k).astype(np.float64)
    S = np.asarray(B @ np.log((C + prior * bg) / (N[:, None] + prior)).T) + np.log(sizes / n)[None, :]
    if leave_one_out:
        rows = np.repeat(np.arange(n), np.diff(B.indptr))
        g = y[rows]
        own = B.data * np.log(C[g, B.indices] - B.data + prior * bg[B.indices])
        n_u = np.asarray(B.sum(axis=1)).ravel()
        S[np.arange(n), y] = (np.bincount(rows, weights=own, minlength=n) - n_u * np.log(N[y] - n_u + prior)
                              + np.log(np.maximum(sizes[y] - 1.0, 1e-12) / max(n - 1, 1)))
    return np.argmax(S, axis=1)


def _bayes(world: Any, kw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(MAP group, posterior of the MAP group) of every user under the generator that built ``world``.

    :func:`~cohortrec.datasets.make_world` draws each view's item from
    ``noise * popularity + (1 - noise) * taste``, the taste being the user's
    group's (``view_probs``) or, for a share ``mixed`` of the users, a blend
    ``(1 - w) * own + w * second`` with the second group uniform among the
    others and ``w`` uniform on the mixing range. Carts and purchases repeat
    the latest view's item and the event types, counts and times do not
    depend on the group, so the views hold everything the events say about
    the group: the posterior below is exact (``w`` integrated by the midpoint
    rule with :data:`MIX_GRID` points). Its MAP is the Bayes-optimal
    assignment: for any assignment from the events, the expected share of
    users in their planted group is at most the mean top posterior.
    """
    import inspect  # noqa: PLC0415

    import pandas as pd  # noqa: PLC0415
    from scipy.special import logsumexp  # noqa: PLC0415

    from cohortrec.datasets import make_world  # noqa: PLC0415
    from cohortrec.datasets._worlds import _MIX_RANGE  # noqa: PLC0415

    defaults = {k: p.default for k, p in inspect.signature(make_world).parameters.items()}
    noise, mixed = float(kw.get("noise", defaults["noise"])), float(kw.get("mixed", defaults["mixed"]))
    X, ev = world.interactions, world.events
    views = ev[ev["event"] == "view"]
    rows = pd.Index(X.user_ids).get_indexer(views["user_id"])
    cols = pd.Index(X.item_ids).get_indexer(views["item_id"])
    V = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=X.matrix.shape)
    taste, pop = world.view_probs[:-1], world.view_probs[-1]
    k = taste.shape[0]
    log_prior = np.log(world.groups["size"].to_numpy(np.float64) / X.n_users)
    # one-group users: log P(views | g); log(0) cannot occur (noise > 0 or the item came from this taste)
    with np.errstate(divide="ignore"):
        L = np.asarray(V @ np.log((1 - noise) * taste + noise * pop).T)
        if mixed > 0 and k > 1:
            lo, hi = _MIX_RANGE
            ws = lo + (hi - lo) * (np.arange(MIX_GRID) + 0.5) / MIX_GRID
            # every (own g, second h != g, weight w): columns g-major
            g_idx, h_idx = np.nonzero(~np.eye(k, dtype=bool))
            M = np.empty((g_idx.size * ws.size, taste.shape[1]))
            for j, w in enumerate(ws):
                M[j::ws.size] = (1 - noise) * ((1 - w) * taste[g_idx] + w * taste[h_idx]) + noise * pop
            Lm = np.asarray(V @ np.log(M).T).reshape(X.n_users, k, (k - 1) * ws.size)
            Lm = logsumexp(Lm, axis=2) - np.log((k - 1) * ws.size)
            L = np.logaddexp(np.log1p(-mixed) + L, np.log(mixed) + Lm)
    S = L + log_prior[None, :]
    post = np.exp(S - logsumexp(S, axis=1, keepdims=True))
    return post.argmax(axis=1), post.max(axis=1)


def _tfidf_sklearn(X: Any, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans  # noqa: PLC0415
    from sklearn.decomposition import TruncatedSVD  # noqa: PLC0415
    from sklearn.feature_extraction.text import TfidfTransformer  # noqa: PLC0415
    from sklearn.preprocessing import normalize  # noqa: PLC0415

    Z = TruncatedSVD(24, random_state=seed).fit_transform(TfidfTransformer().fit_transform(X.matrix))
    return KMeans(k, n_init=10, random_state=seed).fit_predict(normalize(Z))


def _discovery(setting: str, k: Any, seed: int) -> Any:
    from cohortrec import GroupDiscovery  # noqa: PLC0415

    if setting == "default":
        return GroupDiscovery(n_groups=k, random_state=seed)
    if setting == "background-prior":
        return GroupDiscovery(n_groups=k, category_prior=None, random_state=seed)
    if setting == "svd-kmeans":
        return GroupDiscovery(n_groups=k, refine=None, random_state=seed)
    if setting == "vae":
        return GroupDiscovery("vae", n_groups=k, random_state=seed)
    if setting == "text+vae":
        from cohortrec.cli._discover import _text_model  # noqa: PLC0415
        from cohortrec.encoders import TextEncoder  # noqa: PLC0415

        return GroupDiscovery("vae", n_groups=k, random_state=seed, text_encoder=TextEncoder(_text_model()))
    raise ValueError(setting)


def _available(setting: str) -> str | None:
    """None when the setting can run here, else why not."""
    import importlib.util  # noqa: PLC0415

    if setting in ("vae", "text+vae") and importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    if setting == "text+vae":
        try:
            from cohortrec.cli._discover import _text_model  # noqa: PLC0415

            _text_model()
        except Exception as exc:  # noqa: BLE001 - reported, the other settings still run
            return f"no local text model ({exc})"
    return None


def _matched_accuracy(y: np.ndarray, labels: np.ndarray) -> float:
    """Share of users in their planted group after the best one-to-one matching of found groups to planted ones."""
    from scipy.optimize import linear_sum_assignment  # noqa: PLC0415

    C = sp.coo_matrix((np.ones(y.size), (y, labels))).toarray()
    r, c = linear_sum_assignment(C, maximize=True)
    return float(C[r, c].sum() / y.size)


def run_setting(setting: str, X: Any, y: np.ndarray, k: int, world: Any, k_range: tuple[int, ...], *,
                auto: bool = True, world_kw: dict[str, Any] | None = None) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # noqa: PLC0415

    out: dict[str, Any] = {}
    fit: Callable[[Any, int], tuple[np.ndarray, Any]]
    if setting == "oracle-bayes":
        labels_b, top = _bayes(world, world_kw or {})
        out["bayes_accuracy"] = float(top.mean())

        def fit(kk: Any, seed: int) -> tuple[np.ndarray, Any]:
            return labels_b, None
    elif setting in ORACLES:
        def fit(kk: Any, seed: int) -> tuple[np.ndarray, Any]:
            labels = _oracle(X, y, k, leave_one_out=setting != "oracle-in-sample")
            if setting == "oracle-categories":  # the better of the two (worlds with tastes over items: the item one)
                by_cat = _oracle(X, y, k, categories=True)
                if adjusted_rand_score(y, by_cat) > adjusted_rand_score(y, labels):
                    labels = by_cat
            return labels, None
    elif setting == "tfidf-sklearn":
        def fit(kk: Any, seed: int) -> tuple[np.ndarray, Any]:
            return _tfidf_sklearn(X, kk, seed), None
    else:
        def fit(kk: Any, seed: int) -> tuple[np.ndarray, Any]:
            gd = _discovery(setting, kk, seed)
            if kk == "auto":
                gd.set_params(k_range=k_range)
            gd.fit(X)
            return gd.labels_, gd
    t = time.perf_counter()
    labels, gd = fit(k, 0)
    out["time_s"] = time.perf_counter() - t
    out["ari"] = float(adjusted_rand_score(y, labels))
    out["nmi"] = float(normalized_mutual_info_score(y, labels))
    out["accuracy"] = _matched_accuracy(y, labels)
    if gd is not None and hasattr(gd, "category_prior_"):
        out["category_prior"] = gd.category_prior_  # None: the background prior
    labels1, _ = fit(k, 1)
    out["stability"] = float(adjusted_rand_score(labels, labels1))
    users = world.users
    if gd is not None and "mix_weight" in users.columns and (users["mix_weight"] > 0).any():
        W = gd.memberships()
        # match found groups to planted ones by majority, then read the planted second group's weight
        found_of = {int(g): int(np.bincount(labels[y == g], minlength=W.shape[1]).argmax()) for g in np.unique(y)}
        mixed = users["mix_weight"].to_numpy() > 0
        second = users["second_group"].to_numpy()
        est = np.array([W[u, found_of[int(second[u])]] for u in np.flatnonzero(mixed)])
        out["mix_mae"] = float(np.mean(np.abs(est - users["mix_weight"].to_numpy()[mixed])))
        # can the weights tell mixed users from one-group users? AUC of the weight outside the user's own group
        from sklearn.metrics import roc_auc_score  # noqa: PLC0415

        outside = 1.0 - W[np.arange(len(labels)), np.clip(labels, 0, W.shape[1] - 1)]
        out["mix_auc"] = float(roc_auc_score(mixed, outside))
    if auto and setting not in ("tfidf-sklearn", *ORACLES):
        t = time.perf_counter()
        auto_labels, gd_auto = fit("auto", 0)
        out["auto_time_s"] = time.perf_counter() - t
        out["auto_k"] = int(gd_auto.n_groups_)
        out["auto_ari"] = float(adjusted_rand_score(y, auto_labels))
    return out


def _plot(rows: list[dict], settings: list[str], path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    worlds = sorted({r["world"] for r in rows}, key=lambda w: next(r["order"] for r in rows if r["world"] == w))
    fig, ax = plt.subplots(figsize=(max(8, 0.42 * len(worlds)), 4.2), layout="constrained")
    width = 0.8 / max(len(settings), 1)
    for i, s in enumerate(settings):
        vals = [next((r["ari"] for r in rows if r["world"] == w and r["setting"] == s), np.nan) for w in worlds]
        ax.bar(np.arange(len(worlds)) + (i - (len(settings) - 1) / 2) * width, vals, width, label=s)
    ax.axhline(0.8, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(worlds)), worlds, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("ARI vs planted groups (K given)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, ncol=len(settings))
    fig.savefig(path, dpi=120)
    print(f"wrote {path}", flush=True)


def _summary(rows: list[dict], settings: list[str], k_max_auto: int) -> list[dict]:
    out = []
    for s in settings:
        rs = [r for r in rows if r["setting"] == s]
        if not rs:
            continue
        ari = np.array([r["ari"] for r in rs])
        worst = rs[int(np.argmin(ari))]["world"]
        row = {"setting": s, "worlds": len(rs), "median_ari": float(np.median(ari)), "worst_ari": float(ari.min()),
               "worst_world": worst, "median_nmi": float(np.median([r["nmi"] for r in rs])),
               "median_accuracy": float(np.median([r["accuracy"] for r in rs])),
               "worst_accuracy": float(np.min([r["accuracy"] for r in rs])),
               "median_stability": float(np.median([r["stability"] for r in rs])),
               "worst_stability": float(np.min([r["stability"] for r in rs])),
               "median_time_s": float(np.median([r["time_s"] for r in rs]))}
        auto = [r for r in rs if "auto_k" in r]
        if auto:
            small = [r for r in auto if r["k"] <= k_max_auto]
            row["auto_k_within_1"] = float(np.mean([abs(r["auto_k"] - r["k"]) <= 1 for r in small])) if small else None
            row["median_auto_ari"] = float(np.median([r["auto_ari"] for r in auto]))
            row["worst_auto_ari"] = float(np.min([r["auto_ari"] for r in auto]))
        mixed = [r for r in rs if "mix_mae" in r]
        if mixed:
            row["mix_mae"] = float(np.mean([r["mix_mae"] for r in mixed]))
            row["mix_auc"] = float(np.mean([r["mix_auc"] for r in mixed]))
        out.append(row)
    return out


def _identifiable(rows: list[dict], settings: list[str], floor: float = 0.8) -> list[str]:
    """Lines on the worlds whose oracle reaches ``floor``: where the events determine the groups at all."""
    oracle = {r["world"]: r["ari"] for r in rows if r["setting"] == "oracle"}
    if not oracle:
        return []
    ok = [w for w, a in oracle.items() if a >= floor]
    out = [f"On the {len(ok)} of {len(oracle)} worlds whose oracle reaches ARI {floor} (where the events determine "
           "the groups well enough to ask for 0.8), and the gap to the oracle on all worlds:", "",
           "| setting | median ARI | worst ARI (world) | median / worst gap to the oracle |", "|---|---:|---:|---:|"]
    for s in settings:
        if s in ORACLES:
            continue
        rs = {r["world"]: r["ari"] for r in rows if r["setting"] == s}
        a = [(rs[w], w) for w in ok if w in rs]
        if not a:
            continue
        gap = [rs[w] - oracle[w] for w in rs]
        worst = min(a)
        out.append(f"| {s} | {np.median([v for v, _ in a]):.3f} | {worst[0]:.3f} ({worst[1]}) | "
                   f"{np.median(gap):.3f} / {min(gap):.3f} |")
    return out + [""]


def _bayes_lines(rows: list[dict], settings: list[str], floor: float = 0.8) -> list[str]:
    """What no method can beat: the Bayes-optimal assignment's ARI and expected accuracy, and each setting's gap."""
    bayes = {r["world"]: r for r in rows if r["setting"] == "oracle-bayes"}
    if not bayes:
        return []
    below = sorted((r["ari"], w) for w, r in bayes.items() if r["ari"] < floor)
    ceil = np.array([r["bayes_accuracy"] for r in bayes.values()])
    out = ["## The Bayes ceiling (`oracle-bayes`)", "",
           "The exact posterior of every user under the generator, which knows every parameter of the world. Its MAP "
           "assignment maximises the expected share of users put in their planted group, so no method that sees the "
           f"events can beat that share (the mean top posterior: median {np.median(ceil):.3f}, worst {ceil.min():.3f} "
           "over the worlds).", "",
           f"- Median ARI of the Bayes assignment: {np.median([r['ari'] for r in bayes.values()]):.3f}.",
           f"- Worlds where it is below ARI {floor}: {len(below)} of {len(bayes)}"
           + (" (" + ", ".join(f"{w} {a:.3f}" for a, w in below) + ")." if below else "."), "",
           "| setting | median ARI gap to Bayes | worst gap (world) | median accuracy / Bayes ceiling | "
           "worlds over the ceiling's accuracy (> 2 SE) |", "|---|---:|---:|---:|---:|"]
    for s in settings:
        if s == "oracle-bayes":
            continue
        rs = {r["world"]: r for r in rows if r["setting"] == s}
        ws = [w for w in rs if w in bayes]
        if not ws:
            continue
        gap = [(rs[w]["ari"] - bayes[w]["ari"], w) for w in ws]
        # a realised share can beat the expected one by chance: count only beyond two standard errors of a share
        over = sum(rs[w]["accuracy"] > c + 2 * np.sqrt(c * (1 - c) / bayes[w]["n_users"])
                   for w in ws for c in [bayes[w]["bayes_accuracy"]])
        out.append(f"| {s} | {np.median([g for g, _ in gap]):+.3f} | {min(gap)[0]:+.3f} ({min(gap)[1]}) | "
                   f"{np.median([rs[w]['accuracy'] for w in ws]):.3f} / "
                   f"{np.median([bayes[w]['bayes_accuracy'] for w in ws]):.3f} | {over} of {len(ws)} |")
    return out + [""]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings",
                   default="oracle,oracle-in-sample,oracle-categories,default,svd-kmeans,vae,tfidf-sklearn",
                   help=f"comma-separated, from {', '.join(SETTINGS)}")
    p.add_argument("--users", type=int, default=3000)
    p.add_argument("--items", type=int, default=1500)
    p.add_argument("--worlds", default=None, help="comma-separated world names (default: the whole grid)")
    p.add_argument("--no-auto", action="store_true", help="skip the n_groups='auto' runs")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--tag", default=None, help="file name suffix (default: today's date)")
    args = p.parse_args(argv)

    from cohortrec import __version__  # noqa: PLC0415
    from cohortrec.datasets import make_world, world_grid  # noqa: PLC0415

    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        p.error(f"unknown settings {bad}; choose from {SETTINGS}")
    skipped = {s: why for s in settings if (why := _available(s))}
    settings = [s for s in settings if s not in skipped]
    grid = world_grid(n_users=args.users, n_items=args.items, seed=0)
    if args.worlds:
        keep = set(args.worlds.split(","))
        grid = [(n, kw) for n, kw in grid if n in keep]
    started = _dt.datetime.now()
    t0 = time.perf_counter()
    rows: list[dict] = []
    for order, (name, kw) in enumerate(grid):
        world = make_world(**kw)
        X, y = world.interactions, np.asarray(world.labels)
        k = int(kw.get("n_groups", len(np.unique(y))))
        k_range = tuple(range(2, max(21, k + 6)))
        for s in settings:
            r = run_setting(s, X, y, k, world, k_range, auto=not args.no_auto, world_kw=kw)
            r.update(world=name, setting=s, k=k, order=order, n_users=X.n_users, nnz=int(X.matrix.nnz))
            rows.append(r)
            extra = f" auto K {r['auto_k']} (ARI {r['auto_ari']:.3f})" if "auto_k" in r else ""
            print(f"[{time.perf_counter() - t0:6.0f} s] {order + 1}/{len(grid)} {name:14s} {s:14s} K={k:2d} "
                  f"ARI {r['ari']:.3f} NMI {r['nmi']:.3f} stab {r['stability']:.3f} {r['time_s']:.1f} s{extra}",
                  flush=True)
    elapsed = time.perf_counter() - t0
    summary = _summary(rows, settings, 20)
    tag = args.tag or f"{started:%Y-%m-%d}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"discovery-robustness-{tag}"
    cmd = shlex.join([sys.executable, *sys.argv])
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
    (stem.with_suffix(".json")).write_text(json.dumps(
        {"command": cmd, "machine": machine, "cohortrec": __version__, "started": started.isoformat(),
         "elapsed_s": elapsed, "skipped": skipped, "summary": summary, "rows": rows}, indent=1))
    L = [f"# Group discovery over planted worlds ({started:%Y-%m-%d %H:%M})", "",
         f"`{cmd}` - cohortrec {__version__}, {machine}; {len(grid)} worlds of {args.users} users x {args.items} "
         f"items; wall {elapsed:.0f} s." + (f" Skipped: {skipped}." if skipped else ""), "",
         "## Summary (median and worst over worlds)", "",
         "| setting | median ARI | worst ARI (world) | median NMI | median / worst accuracy | median / worst "
         "stability | auto-K within ±1 (K ≤ 20) | median / worst ARI, auto K | mixed users: 2nd-group weight MAE / "
         "AUC | median time |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary:
        L.append(f"| {r['setting']} | {_fmt(r['median_ari'])} | {_fmt(r['worst_ari'])} ({r['worst_world']}) | "
                 f"{_fmt(r['median_nmi'])} | {_fmt(r['median_accuracy'])} / {_fmt(r['worst_accuracy'])} | "
                 f"{_fmt(r['median_stability'])} / {_fmt(r['worst_stability'])} | "
                 f"{_fmt(r.get('auto_k_within_1'))} | {_fmt(r.get('median_auto_ari'))} / "
                 f"{_fmt(r.get('worst_auto_ari'))} | {_fmt(r.get('mix_mae'))} / {_fmt(r.get('mix_auc'))} | "
                 f"{r['median_time_s']:.2f} s |")
    L += ["", *_identifiable(rows, settings), *_bayes_lines(rows, settings),
          "## Every world (ARI with K given; auto K and its ARI)", "",
          "| world | K | " + " | ".join(settings) + " |", "|---|---:|" + "---:|" * len(settings)]
    for name, kw in grid:
        cells = []
        for s in settings:
            r = next(r for r in rows if r["world"] == name and r["setting"] == s)
            cells.append(f"{r['ari']:.3f}" + (f" (auto {r['auto_k']}: {r['auto_ari']:.3f})" if "auto_k" in r else ""))
        L.append(f"| {name} | {kw.get('n_groups')} | " + " | ".join(cells) + " |")
    (stem.with_suffix(".md")).write_text("\n".join(L) + "\n")
    print(f"wrote {stem.with_suffix('.md')}", flush=True)
    _plot(rows, settings, stem.with_suffix(".png"))
    print("\n".join(L[:9 + len(summary)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
