"""``cohortrec discover DATA --scheduler ADDRESS``: the pipeline on an existing Dask cluster."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohortrec.cli._common import CLIError, Console

__all__ = ["connect", "run_discover_dask"]


def connect(address: str, timeout: float) -> Any:
    """A ``distributed.Client`` for ``address``; CLIError (one line) when it does not answer in ``timeout`` s."""
    try:
        from distributed import Client  # noqa: PLC0415
    except ImportError:
        raise CLIError("--scheduler needs dask and distributed: pip install 'cohortrec[dask]'") from None
    if not timeout > 0:
        raise CLIError(f"--scheduler-timeout must be > 0 seconds, got {timeout!r}")
    try:
        return Client(address, timeout=float(timeout))
    except (OSError, TimeoutError, ValueError) as exc:
        raise CLIError(f"the Dask scheduler at {address!r} did not answer within {timeout:g} s "
                       f"({' '.join(str(exc).split())[:200]})") from None


def run_discover_dask(args: argparse.Namespace, console: Console) -> int:
    from cohortrec.cli._data import _roles, parquet_schema  # noqa: PLC0415
    from cohortrec.cli._discover import (  # noqa: PLC0415
        SAMPLE_REASON,
        VAE_SETTINGS,
        choose_encoder,
        profiles_json,
        profiles_markdown,
    )

    if args.data is None:
        raise CLIError("--scheduler needs DATA: a Parquet event log (a file or a folder of files)")
    path = Path(args.data).expanduser()
    if not path.exists():
        raise CLIError(f"DATA {str(args.data)!r} does not exist")
    if path.is_file() and not path.name.lower().endswith((".parquet", ".pq")):
        raise CLIError(f"--scheduler reads Parquet (a file or a folder of files); {str(path)!r} is not one")
    if args.encoder == "text+vae":
        raise CLIError("--encoder text+vae is not available with --scheduler (use vae or svd)")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} is a file; give a folder")
    schema = parquet_schema(path)
    roles = _roles(pd.DataFrame(columns=list(schema.names)), path, user_col=args.user_col, item_col=args.item_col,
                   weight_col=args.weight_col, time_col=args.time_col)
    encoder, why = choose_encoder(args.encoder)
    with console.stage(f"connect to {args.scheduler}"):
        client = connect(args.scheduler, args.scheduler_timeout)
    try:
        workers = len(client.scheduler_info().get("workers", {}))
        console.say(f"  cluster: {workers} workers; encoder: {encoder} ({why}); groups: {args.groups}")
        from cohortrec.distributed_discovery import discover_parquet  # noqa: PLC0415

        settings = dict(VAE_SETTINGS)
        with console.stage("discover groups on the cluster"):
            res = discover_parquet(path, user=roles["user"], item=roles["item"], weight=roles["weight"],
                                   client=client, encoder=encoder, n_groups=args.groups,
                                   max_train_users=int(settings.pop("max_train_users")), vae_settings=settings,
                                   random_state=args.seed, progress=lambda m: console.say(f"  {m}"))
        meta = {"data": path.name, "n_users": int(len(res.labels)), "n_items": int(len(res.item_ids)),
                "n_groups": int(res.n_groups), "encoder": encoder, "groups_requested": str(args.groups),
                "scheduler": args.scheduler, "workers": workers,
                "encoder_training": {**res.encoder_training, "reason": SAMPLE_REASON}}
        with console.stage("write groups, profiles and recommendations"):
            out.mkdir(parents=True, exist_ok=True)
            labels_txt = [str(v) for v in res.profile["label"].iloc[:-1]]
            _write_groups(out / "groups.parquet", res, labels_txt)
            doc = profiles_json(res.profile, meta)
            if res.k_curve is not None:
                doc["k_curve"] = json.loads(res.k_curve.to_json(orient="records"))
            (out / "profiles.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False))
            (out / "profiles.md").write_text(profiles_markdown(res.profile, meta))
            _write_recommendations(out / "recommendations", res, client)
    finally:
        client.close()
    (out / "timings.json").write_text(json.dumps({k: round(v, 3) for k, v in console.timings.items()}, indent=1))
    from cohortrec.cli._common import format_table  # noqa: PLC0415

    rows = [{"group": int(i), "size": int(r["size"]), "share": float(r["share"]), "label": str(r["label"])}
            for i, r in res.profile.iloc[:-1].iterrows()]
    print(format_table(rows, ["group", "size", "share", "label"], floats="{:.3f}"), flush=True)
    console.say(f"wrote {out}/: groups.parquet, profiles.json, profiles.md, recommendations/")
    console.report_timings()
    return 0


def _write_groups(path: Path, res: Any, labels_txt: list[str]) -> None:
    ids = res.user_ids
    if ids.dtype.kind not in "iuf":
        ids = np.asarray([str(v) for v in ids], dtype=object)
    names = np.asarray(list(labels_txt) + [""], dtype=object)
    lab = res.labels
    pd.DataFrame({"user_id": ids, "group": lab,
                  "label": names[np.where(lab >= 0, lab, len(labels_txt))]}).to_parquet(
        path, index=False, row_group_size=262_144)


def _write_recommendations(folder: Path, res: Any, client: Any, n: int = 10) -> None:
    """recommendations/part-NNNNN.parquet: user_id, rank, item_id, score (one part per block, gathered one at
    a time)."""
    from distributed import as_completed  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    items = np.asarray(res.item_ids)
    futs = res.recommend(n)
    index = {f.key: i for i, f in enumerate(futs)}
    for fut in as_completed(futs):
        users, ids, sc = fut.result()
        fut.release()
        ok = ids >= 0
        r, c = np.nonzero(ok)
        users = np.asarray(users)
        pd.DataFrame({"user_id": users[r], "rank": (c + 1).astype(np.int32), "item_id": items[ids[r, c]],
                      "score": sc[r, c].astype(np.float32)}).to_parquet(folder / f"part-{index[fut.key]:05d}.parquet",
                                                                         index=False)
