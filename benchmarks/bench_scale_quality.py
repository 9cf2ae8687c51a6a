"""Quality of the bounded-cost Mult-VAE against the VAE trained on every user (issue 12).

On a planted-group shop (``bench_scale.write_shop``, 100k users by default),
trains ``InteractionEncoder`` with the CLI's settings (``VAE_SETTINGS``) and a
given ``max_train_users`` / ``output_items`` / ``lr``, embeds every user, runs
spherical K-means with the planted number of groups (8) and reports the ARI
against the planted groups, with the training and fold-in times.

    python benchmarks/bench_scale_quality.py none,none,0.001 50000,4096,0.003
    # each spec: max_train_users,output_items[,lr]  ("none" = all users / every item)

Prints one JSON line per spec (the results file is written by hand from them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import write_shop  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from sklearn.metrics import adjusted_rand_score  # noqa: PLC0415

    from cohortrec.cli._common import Console  # noqa: PLC0415
    from cohortrec.cli._data import load_data  # noqa: PLC0415
    from cohortrec.cli._discover import VAE_SETTINGS  # noqa: PLC0415
    from cohortrec.cluster import KMeans  # noqa: PLC0415
    from cohortrec.encoders import InteractionEncoder  # noqa: PLC0415

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("specs", nargs="+")
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--groups", type=int, default=8)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shop.parquet"
        y_all, _ = write_shop(path, args.users, 0)
        X = load_data(str(path), Console(quiet=True)).interactions
    y = y_all[X.user_ids.to_numpy()]
    base = {k: v for k, v in VAE_SETTINGS.items() if k not in ("max_train_users", "output_items", "lr")}
    for spec in args.specs:
        parts = spec.split(",")
        mt, oi = [None if v == "none" else int(v) for v in parts[:2]]
        lr = float(parts[2]) if len(parts) > 2 else 1e-3
        enc = InteractionEncoder(**base, max_train_users=mt, output_items=oi, lr=lr, random_state=0, verbose=False)
        t = time.perf_counter()
        enc.fit(X)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        Z = enc.transform(X)
        tr_s = time.perf_counter() - t
        lab = KMeans(args.groups, spherical=True, n_init=10, random_state=0).fit(Z).labels_
        print(json.dumps({"spec": spec, "fit_s": round(fit_s, 1), "transform_s": round(tr_s, 2),
                          "epochs": len(enc.history_), "ari": round(float(adjusted_rand_score(y, lab)), 4),
                          **enc.training_summary_}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
