"""Quality and speed of user-group discovery (GroupDiscovery).

1. Synthetic shop (``make_shop``, planted groups, dirty log): ARI / NMI /
   silhouette of GroupDiscovery (Mult-VAE encoder, and the SVD encoder)
   against scikit-learn KMeans on tf-idf rows and on a 64-dim TruncatedSVD.
2. Real data (ml-latest-small, hetrec2011-lastfm-2k, read from
   ``/work/shared/data`` or ``--data``; skipped when absent): silhouette,
   group profiles, wall time of the full discovery (encoder + clustering +
   profiles), and whether group membership carries signal: 20% of every
   user's interactions are held out; each user is recommended the 20 most
   popular training items *of their group* versus the 20 most popular
   overall (both excluding the user's training items); recall@20 of both.

    python benchmarks/bench_discovery.py                  # everything
    python benchmarks/bench_discovery.py --skip-shop      # real data only
    python benchmarks/bench_discovery.py --shop-users 20000 --out -

Writes ``benchmarks/results/discovery-<date>.md`` unless ``--out -``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEFAULT_DATA = "/work/shared/data"


def _load_movielens(folder: str):
    import pandas as pd

    from cohortrec.interactions import Interactions

    r = pd.read_csv(os.path.join(folder, "ratings.csv"))
    m = pd.read_csv(os.path.join(folder, "movies.csv"))
    items = m.rename(columns={"genres": "categories"}).set_index("movieId")
    return Interactions.from_frame(r, user="userId", item="movieId", weight="rating", time="timestamp",
                                   items=items), r.rename(columns={"userId": "user_id", "movieId": "item_id"})


def _load_lastfm(folder: str):
    import pandas as pd

    from cohortrec.interactions import Interactions

    ua = pd.read_csv(os.path.join(folder, "user_artists.dat"), sep="\t")
    art = pd.read_csv(os.path.join(folder, "artists.dat"), sep="\t", usecols=["id", "name"])
    tags = pd.read_csv(os.path.join(folder, "tags.dat"), sep="\t", encoding="latin-1")
    uta = pd.read_csv(os.path.join(folder, "user_taggedartists.dat"), sep="\t")
    top = (uta.merge(tags, on="tagID").groupby(["artistID", "tagValue"]).size().rename("n").reset_index()
           .sort_values(["artistID", "n"], ascending=[True, False]).groupby("artistID").head(3))
    cats = top.groupby("artistID")["tagValue"].apply(list)
    items = art.rename(columns={"name": "title"}).set_index("id")
    items["categories"] = cats.reindex(items.index)
    items["categories"] = items["categories"].apply(lambda v: v if isinstance(v, list) else [])
    return Interactions.from_frame(ua, user="userID", item="artistID", weight="weight", items=items), None


def _split(X, frac, seed):
    """Hold out ``frac`` of every user's pairs (users with >= 5 pairs)."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    M = X.matrix.tocsr()
    n_per = np.diff(M.indptr)
    hold = np.zeros(M.nnz, dtype=bool)
    for u in np.flatnonzero(n_per >= 5):
        s, e = M.indptr[u], M.indptr[u + 1]
        k = max(1, int(round(frac * (e - s))))
        hold[s + rng.choice(e - s, k, replace=False)] = True
    rows = np.repeat(np.arange(M.shape[0]), n_per)
    train = sp.csr_matrix((M.data[~hold], (rows[~hold], M.indices[~hold])), shape=M.shape)
    test = sp.csr_matrix((np.ones(hold.sum()), (rows[hold], M.indices[hold])), shape=M.shape)
    return X.with_matrix(train), test


def _recall_at(train, test, labels, n=20):
    import numpy as np
    import scipy.sparse as sp

    from cohortrec import ops

    B = train.copy()
    B.data[:] = 1.0
    k = int(labels.max()) + 1
    G = sp.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(k, len(labels)))
    pop_g = sp.csr_matrix(G @ B)  # group x item counts
    pop_all = sp.csr_matrix(np.asarray(B.sum(axis=0)))
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    # scoring through the native top-n op: row u of (onehot(u's group) @ pop_g)
    W_g = sp.csr_matrix((np.ones(len(users)), (np.arange(len(users)), labels[users])), shape=(len(users), k))
    W_a = sp.csr_matrix((np.ones(len(users)), (np.arange(len(users)), np.zeros(len(users), int))),
                        shape=(len(users), 1))
    excl = B[users]
    it_g, _ = ops.topk_scores(W_g, pop_g, n=n, exclude=excl)
    it_a, _ = ops.topk_scores(W_a, pop_all, n=n, exclude=excl)
    T = test[users]
    rec_g, rec_a = [], []
    for r in range(len(users)):
        truth = set(T.indices[T.indptr[r]:T.indptr[r + 1]])
        denom = min(n, len(truth))
        rec_g.append(len(truth & set(it_g[r])) / denom)
        rec_a.append(len(truth & set(it_a[r])) / denom)
    return float(np.mean(rec_g)), float(np.mean(rec_a)), len(users)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("COHORTREC_DATA", DEFAULT_DATA))
    ap.add_argument("--shop-users", type=int, default=50_000)
    ap.add_argument("--shop-items", type=int, default=5_000)
    ap.add_argument("--shop-groups", type=int, default=12)
    ap.add_argument("--vae-epochs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the encoder (default 1)")
    ap.add_argument("--k-min", type=int, default=4, help="smallest number of groups tried on real data")
    ap.add_argument("--skip-shop", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import numpy as np
    import sklearn
    from sklearn.cluster import KMeans as SKKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    import cohortrec
    from cohortrec.datasets import make_shop
    from cohortrec.discovery import GroupDiscovery
    from cohortrec.encoders import InteractionEncoder

    lines: list[str] = []

    def log(msg: str = "") -> None:
        print(msg, flush=True)
        lines.append(msg)

    try:
        import torch

        tv = torch.__version__
    except ImportError:
        tv = "absent"
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    log(f"# Group discovery quality and speed ({_dt.date.today()})")
    log()
    log(f"- command: `python {' '.join([os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:]))}`")
    log(f"- machine: {cpu}, {os.cpu_count()} logical CPUs (shared with other jobs; load average "
        f"{' '.join(open('/proc/loadavg').read().split()[:3])} at start)")
    log(f"- python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
        f"torch {tv}, cohortrec {cohortrec.__version__}; torch threads for the encoder: {args.threads}")
    log()

    def vae(seed, epochs=args.vae_epochs, dim=32, hidden=(256,)):
        return InteractionEncoder(dim, hidden=hidden, epochs=epochs, random_state=seed, verbose=False,
                                  n_threads=args.threads)

    if not args.skip_shop:
        t = time.perf_counter()
        shop = make_shop(args.shop_users, args.shop_items, args.shop_groups, seed=args.seed, dirty=True)
        X, y = shop
        t_gen = time.perf_counter() - t
        log(f"## Synthetic shop: make_shop({args.shop_users}, {args.shop_items}, {args.shop_groups}, "
            f"seed={args.seed}, dirty=True)")
        log()
        log(f"{X}; generated and cleaned in {t_gen:.1f} s. Cleaning report:")
        log()
        log(_md(shop.interactions.cleaning_report, index=False))
        log()
        log("| method | ARI | NMI | silhouette (cosine, 5k sample) | time s |")
        log("|---|---:|---:|---:|---:|")
        rows = []
        for name, enc in (("GroupDiscovery(InteractionEncoder Mult-VAE 32-d) + spherical KMeans", vae(args.seed)),
                          ("GroupDiscovery(SVDEncoder bm25 24-d) + spherical KMeans", "svd")):
            t = time.perf_counter()
            gd = GroupDiscovery(enc, n_groups=args.shop_groups, random_state=args.seed).fit(X)
            dt = time.perf_counter() - t
            q = gd.quality(y)
            rows.append((name, q["ari"], q["nmi"], q.get("silhouette", float("nan")), dt))
            if "VAE" in name:
                best = gd
        T = TfidfTransformer().fit_transform(X.matrix)
        t = time.perf_counter()
        lab = SKKMeans(args.shop_groups, random_state=args.seed).fit_predict(T)
        rows.append(("sklearn KMeans on tf-idf rows", adjusted_rand_score(y, lab),
                     normalized_mutual_info_score(y, lab), float("nan"), time.perf_counter() - t))
        t = time.perf_counter()
        S = TruncatedSVD(64, random_state=args.seed).fit_transform(T)
        lab = SKKMeans(args.shop_groups, random_state=args.seed).fit_predict(S)
        rows.append(("sklearn TruncatedSVD(64) + KMeans on tf-idf", adjusted_rand_score(y, lab),
                     normalized_mutual_info_score(y, lab), float("nan"), time.perf_counter() - t))
        for name, a, nmi, sil, dt in rows:
            log(f"| {name} | {a:.3f} | {nmi:.3f} | {sil:.3f} | {dt:.1f} |")
        log()
        log("Planted groups (ground truth) and the discovered profiles (Mult-VAE run):")
        log()
        log(_md(shop.groups[["group", "share", "core_categories", "style"]], index=False))
        log()
        P = best.profile(top_n=3)
        log(_profile_md(P))
        log()

    if not args.skip_real:
        for name, loader, sub, _k in (("ml-latest-small", _load_movielens, "ml-latest-small", 8),
                                     ("hetrec2011-lastfm-2k", _load_lastfm, "hetrec2011-lastfm-2k", 8)):
            folder = os.path.join(args.data, sub)
            if not os.path.isdir(folder):
                log(f"## {name}: skipped ({folder} not found)")
                continue
            X, _ = loader(folder)
            train, test = _split(X, 0.2, args.seed)
            log(f"## {name}")
            log()
            log(f"{X}. Held out 20% of each user's pairs (users with >= 5 pairs); groups fitted on the rest.")
            log()
            t = time.perf_counter()
            gd = GroupDiscovery(vae(args.seed, epochs=30, dim=32, hidden=(128,)), n_groups="auto",
                                k_range=range(args.k_min, 13), random_state=args.seed).fit(train)
            t_fit = time.perf_counter() - t
            P = gd.profile(top_n=3)
            t_all = time.perf_counter() - t
            q = gd.quality()
            rg, ra, nu = _recall_at(train.matrix, test, gd.labels_)
            log(f"- full discovery (Mult-VAE encoder, auto number of groups over {args.k_min}..12 by silhouette, "
                f"clustering, profiles): **{t_all:.1f} s** (encoder + clustering {t_fit:.1f} s); "
                f"{gd.n_groups_} groups, stopped after epoch {gd.encoder_.best_epoch_ + 1}")
            log(f"- silhouette (cosine): {q.get('silhouette', float('nan')):.3f}")
            log(f"- recall@20 on held-out items over {nu} users: group popularity **{rg:.4f}** vs "
                f"global popularity {ra:.4f} ({(rg / ra - 1) * 100 if ra else float('nan'):+.0f}%)")
            log()
            log("Auto-k curve:")
            log()
            log(_md(gd.k_curve_, index=False))
            log()
            log(_profile_md(P))
            log()
    out = args.out
    if out is None:
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           f"discovery-{_dt.date.today()}.md")
    if out != "-":
        from _harness import write_text

        write_text(out, "\n".join(lines) + "\n")
    return 0


def _md(df, index: bool = True) -> str:
    """A Markdown table (no tabulate dependency)."""
    import pandas as pd

    df = df.reset_index() if index else df
    def cell(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.0f}"
        return str(v).replace("|", "/")
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    del pd
    return "\n".join([head, sep, *body])


def _profile_md(P) -> str:
    cols = [c for c in ("size", "share", "small", "label", "top_categories", "keywords", "mean_dwell_vs_all",
                        "total_spend_vs_all", "conversion_vs_all", "n_items_vs_all", "mean_weight_vs_all",
                        "recency_days_vs_all",
                        "events_per_day_vs_all", "user_age_band")
            if c in P.columns]
    Q = P[cols].copy()
    for c in ("top_categories",):
        if c in Q.columns:
            Q[c] = Q[c].apply(lambda v: "; ".join(f"{n} (lift {lift:.1f}, {sup:.0%})" for n, lift, sup in v))
    if "keywords" in Q.columns:
        Q["keywords"] = Q["keywords"].apply(lambda v: ", ".join(v))
    if "share" in Q.columns:
        Q["share"] = Q["share"].map(lambda v: f"{v:.1%}")
    return _md(Q)


if __name__ == "__main__":
    raise SystemExit(main())
