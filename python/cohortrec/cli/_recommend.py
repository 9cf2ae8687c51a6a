"""``cohortrec recommend``: top-n items for known and new users from a saved model."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cohortrec.cli._bundle import Bundle, load_bundle
from cohortrec.cli._common import CLIError, Console

__all__ = ["read_users_file", "recommend_user", "run_recommend"]

COLUMNS = ["user_id", "rank", "item_id", "score", "title", "source"]


def read_users_file(path: str) -> list[tuple[str, list[str] | None]]:
    """``(user id, items or None)`` per line of ``path`` (``-`` = stdin).

    A line holds a user id, optionally followed by a tab and the
    comma-separated ids of items the user interacted with (for new users);
    blank lines and lines starting with ``#`` are skipped.
    """
    if path == "-":
        text = sys.stdin.read()
    else:
        p = Path(path).expanduser()
        if not p.is_file():
            raise CLIError(f"--users-file {path!r} does not exist")
        text = p.read_text(encoding="utf-8", errors="replace")
    ids = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        uid, _, rest = s.partition("\t")
        items = [i.strip() for i in rest.split(",") if i.strip()] or None
        ids.append((uid.strip(), items))
    if not ids:
        raise CLIError(f"--users-file {path!r} holds no user ids (one id per line)")
    return ids


def _top(scores: np.ndarray, n: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).copy()
    s[exclude] = -np.inf
    order = np.lexsort((np.arange(s.size), -s))
    order = order[np.isfinite(s[order])][:n]
    return order, s[order]


def recommend_user(b: Bundle, user: str, n: int, items: list[str] | None,
                   console: Console) -> tuple[list[tuple[int, float]], str]:
    """(item index, score) pairs best first, and where they come from."""
    pos = b.user_ids.get_indexer([user])[0]
    if pos >= 0:
        if items:
            console.warn(f"--items ignored for user {user!r}: the model knows this user's history")
        ids, scores = b.recommender.recommend(int(pos), N=n)
        return list(zip(ids.tolist(), scores.tolist())), "history"
    known: np.ndarray = np.zeros(0, dtype=np.int64)
    if items:
        idx = b.item_ids.get_indexer(items)
        unknown = [i for i, p in zip(items, idx) if p < 0]
        if unknown:
            console.warn(f"{len(unknown)} of the --items are not in the model and are ignored: {unknown[:5]}")
        known = np.unique(idx[idx >= 0])
    if known.size:
        from cohortrec.interactions import Interactions  # noqa: PLC0415

        row = sp.csr_matrix((np.ones(known.size, np.float32), (np.zeros(known.size, np.int64), known)),
                            shape=(1, len(b.item_ids)))
        disc = b.get_discovery()
        X1 = Interactions(row, pd.Index([user]), disc.interactions_.item_ids)
        g = int(disc.assign(X1)[0])
        if g >= 0:
            k = int(np.searchsorted(b.group_values, g)) if b.group_values.size else g
            prof = getattr(b.recommender, "profiles_", None)  # None: a bundle with another model
            has = prof is not None and k < prof.shape[0]
            scores = prof[k].toarray().ravel() if has else np.zeros(len(b.item_ids))
            order, sc = _top(scores, n, known)
            out = [(int(i), float(s)) for i, s in zip(order, sc) if s > 0]
            if len(out) < n:  # a small group profile: fill with popular items
                taken = np.r_[known, np.asarray([i for i, _ in out], dtype=np.int64)].astype(np.int64)
                o2, _ = _top(b.popularity, n - len(out), taken)
                out += [(int(i), 0.0) for i in o2]
            return out, f"cold-start: group {g} ({b.group_label(g)}) from {known.size} known items"
    pop = b.popularity / max(float(b.recommender.user_items_.shape[0]), 1.0)
    order, sc = _top(pop, n, known)
    why = "no known items" if items else "no history"
    return [(int(i), float(s)) for i, s in zip(order, sc)], f"cold-start: most popular ({why})"


def run_recommend(args: argparse.Namespace, console: Console) -> int:
    if args.n < 1:
        raise CLIError(f"-n must be >= 1, got {args.n}")
    if (args.user is None) == (args.users_file is None):
        raise CLIError("give exactly one of --user ID and --users-file FILE")
    items = [s.strip() for s in args.items.split(",") if s.strip()] if args.items else None
    users = [(str(args.user), items)] if args.user is not None else read_users_file(args.users_file)
    b = load_bundle(args.model, device="cpu" if args.device == "cpu" else "auto", with_discovery=False)
    rows: list[dict[str, Any]] = []
    for u, u_items in console.progress(users, desc="users"):
        recs, source = recommend_user(b, u, args.n, u_items if u_items is not None else items, console)
        if source != "history":
            console.say(f"user {u!r} is not in the model: {source}")
        for r, (i, s) in enumerate(recs, 1):
            title = None if b.titles is None else b.titles[i]
            rows.append({"user_id": u, "rank": r, "item_id": str(b.raw_item_ids.iloc[i]), "score": round(s, 6),
                         "title": "" if title is None or (isinstance(title, float) and np.isnan(title)) else title,
                         "source": source})
    _print(rows, args.format)
    return 0


def _print(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([f"{r[c]:.4f}" if c == "score" else r[c] for c in COLUMNS])
    sys.stdout.write(buf.getvalue())
    sys.stdout.flush()
