"""``cohortrec evaluate``: the recommender evaluation protocol on one dataset.

Protocol (the one of ``benchmarks/bench_recommenders.py``): positives
(MovieLens ratings >= 4, otherwise any interaction; ``--min-value`` to
change) as a binary matrix; users with at least 5 positives, items with at
least one; a 20% per-user random holdout with a fixed seed
(:func:`cohortrec.evaluation.random_holdout`); full ranking over all items
with the user's training items excluded (:func:`cohortrec.evaluation.evaluate`).
Models use their default parameters (no tuning).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cohortrec.cli._common import CLIError, Console, check_device_available, format_table

__all__ = ["MODELS", "evaluation_rows", "parse_models", "run_evaluate", "run_protocol"]

MIN_POSITIVES = 5
TEST_FRACTION = 0.2
# EASE inverts an items x items matrix: skip it beyond this many items
EASE_MAX_ITEMS = 20_000


def _models(seed: int, device: str) -> dict[str, Callable[[], Any]]:
    from cohortrec import recommenders as rec  # noqa: PLC0415

    return {
        "popularity": lambda: rec.Popularity(device=device),
        "userknn": lambda: rec.UserKNN(device=device),
        "itemknn": lambda: rec.ItemKNN(device=device),
        "rp3beta": lambda: rec.RP3beta(device=device),
        "ease": lambda: rec.EASE(device=device),
        "group": lambda: rec.GroupRecommender(random_state=seed, device=device),
    }


MODELS = ("popularity", "userknn", "itemknn", "rp3beta", "ease", "group")


def parse_models(text: str) -> list[str]:
    """``"popularity,ease"`` -> ``["popularity", "ease"]`` (``all`` = every model)."""
    names = [t.strip().lower() for t in str(text).replace(" ", ",").split(",") if t.strip()]
    if not names:
        raise CLIError(f"--models must name at least one of {', '.join(MODELS)}")
    if names == ["all"]:
        return list(MODELS)
    bad = [n for n in names if n not in MODELS]
    if bad:
        raise CLIError(f"--models: unknown model(s) {bad}; choose from {', '.join(MODELS)} (or 'all')")
    return list(dict.fromkeys(names))


def positives(data: Any, min_value: float | None) -> tuple[sp.csr_matrix, str]:
    """Binary matrix of the positives, users with >= 5 of them, items with >= 1."""
    X = sp.csr_matrix(data.interactions.matrix, dtype=np.float32, copy=True)
    thr = data.positive_threshold if min_value is None else float(min_value)
    if thr is not None:
        X.data = np.where(X.data >= thr, 1.0, 0.0).astype(np.float32)
        X.eliminate_zeros()
    X.data[:] = 1.0
    X = X[np.diff(X.indptr) >= MIN_POSITIVES]
    X = X[:, np.diff(X.tocsc().indptr) > 0].tocsr()
    X.sort_indices()
    what = f"value >= {thr:g}" if thr is not None else "any interaction"
    return X, what


def run_protocol(data: Any, models: list[str], *, seed: int, device: str, console: Console,
                 min_value: float | None = None, ks: tuple[int, ...] = (10, 20)) -> dict[str, Any]:
    """Split, fit every model, evaluate; returns the protocol and one result per model."""
    from cohortrec.evaluation import evaluate, random_holdout  # noqa: PLC0415

    X, what = positives(data, min_value)
    if X.shape[0] < 2 or X.nnz == 0:
        raise CLIError(f"evaluate needs users with at least {MIN_POSITIVES} positives ({what}); "
                       f"{data.name} has {X.shape[0]}")
    train, test = random_holdout(X, TEST_FRACTION, min_items=MIN_POSITIVES, random_state=seed)
    makers = _models(seed, device)
    results = []
    for name in console.progress(models, desc="models"):
        if name == "ease" and X.shape[1] > EASE_MAX_ITEMS:
            console.warn(f"skipping ease: {X.shape[1]} items is more than {EASE_MAX_ITEMS} (dense items x items)")
            continue
        model = makers[name]()
        t = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        table = evaluate(model, train, test, k=ks)
        eval_s = time.perf_counter() - t
        vals = {(m, int(k)): float(v) for m, k, v in table[["metric", "k", "value"]].itertuples(index=False)}
        n_users = int(table["n_users"].iloc[0]) if len(table) else 0
        results.append({"model": name, "values": vals, "fit_s": fit_s, "eval_s": eval_s, "n_users": n_users})
        console.say(f"  {name}: NDCG@10 {vals.get(('ndcg', 10), float('nan')):.4f} "
                    f"(fit {fit_s:.2f} s, evaluate {eval_s:.2f} s)")
    return {"data": data.name, "positives": what, "shape": X.shape, "nnz": int(X.nnz), "train": int(train.nnz),
            "test": int(test.nnz), "seed": seed, "ks": ks, "results": results}


def evaluation_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model: NDCG@10, Recall@20, Precision@10, Coverage@10, times."""
    rows = []
    for r in res["results"]:
        v = r["values"]
        rows.append({"model": r["model"], "ndcg@10": v.get(("ndcg", 10)), "recall@20": v.get(("recall", 20)),
                     "precision@10": v.get(("precision", 10)), "coverage@10": v.get(("coverage", 10)),
                     "users": r["n_users"], "fit_s": round(r["fit_s"], 3), "eval_s": round(r["eval_s"], 3)})
    return rows


COLUMNS = ["model", "ndcg@10", "recall@20", "precision@10", "coverage@10", "users", "fit_s", "eval_s"]


def protocol_text(res: dict[str, Any]) -> str:
    n, m = res["shape"]
    return (f"{res['data']}: positives = {res['positives']}, binary; users with >= {MIN_POSITIVES} positives "
            f"({n} users x {m} items, {res['nnz']} positives); {TEST_FRACTION:.0%} per-user random holdout "
            f"(seed {res['seed']}): train {res['train']}, test {res['test']}; full ranking, training items "
            "excluded; default model parameters")


def run_evaluate(args: argparse.Namespace, console: Console) -> int:
    from cohortrec.cli._data import load_data  # noqa: PLC0415

    check_device_available(args.device)
    models = parse_models(args.models)
    out = Path(args.out).expanduser() if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} is a file; give a folder")
    with console.stage("load data"):
        data = load_data(args.data, console, user_col=args.user_col, item_col=args.item_col,
                         weight_col=args.weight_col, time_col=args.time_col, shop_users=args.shop_users)
    console.say(f"  data: {data.description}")
    with console.stage("split, fit and evaluate"):
        res = run_protocol(data, models, seed=args.seed, device=args.device, console=console,
                           min_value=args.min_value)
    rows = evaluation_rows(res)
    console.say("protocol: " + protocol_text(res))
    print(format_table(rows, COLUMNS, formats={"fit_s": "{:.2f}", "eval_s": "{:.2f}"}), flush=True)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=COLUMNS).to_csv(out / "evaluation.csv", index=False)
        md = ["# Evaluation", "", protocol_text(res), "", "| " + " | ".join(COLUMNS) + " |",
              "|---|" + "---:|" * (len(COLUMNS) - 1)]
        for r in rows:
            md.append("| " + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) and "_s" not in c else str(r[c])
                                        for c in COLUMNS) + " |")
        (out / "evaluation.md").write_text("\n".join(md) + "\n")
        console.say(f"wrote {out / 'evaluation.csv'} and {out / 'evaluation.md'}")
    console.report_timings()
    return 0
