"""The saved model folder (``DIR/model``) that ``cohortrec recommend`` serves from.

Layout (no pickle anywhere):

* ``meta.json`` - version, data name, encoder, sizes, group labels;
* ``recommender.npz`` - a :class:`~cohortrec.recommenders.GroupRecommender`
  fitted with the discovered groups (its own ``save``);
* ``discovery/`` - the :class:`~cohortrec.GroupDiscovery` (encoder weights,
  centroids; :meth:`~cohortrec.GroupDiscovery.save` without the training
  data), used to assign new users to a group from the items they touched;
* ``users.parquet`` - ``user_id`` and ``group`` in the row order of the model;
* ``items.parquet`` - ``item_id`` and ``title`` (when known) in column order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cohortrec._io import read_json
from cohortrec.cli._common import CLIError

__all__ = ["FORMAT", "Bundle", "load_bundle", "save_bundle"]

FORMAT = 1


@dataclass
class Bundle:
    """A loaded model folder."""

    folder: Path
    meta: dict[str, Any]
    recommender: Any
    discovery: Any | None
    user_ids: pd.Index        # as strings, row order
    item_ids: pd.Index        # as strings, column order
    raw_item_ids: pd.Series   # original ids (as stored), column order
    titles: np.ndarray | None
    popularity: np.ndarray    # users per item
    group_values: np.ndarray  # discovery label of each recommender group
    device: str = "auto"

    def get_discovery(self) -> Any:
        """The GroupDiscovery, loaded on first use (only cold-start users with items need it)."""
        if self.discovery is None:
            from cohortrec.discovery import GroupDiscovery  # noqa: PLC0415

            self.discovery = GroupDiscovery.load(self.folder / "discovery", device=self.device)
        return self.discovery

    def group_label(self, g: int) -> str:
        labels = self.meta.get("group_labels") or []
        return labels[g] if 0 <= g < len(labels) else f"group {g}"


def _ids_frame(index: pd.Index, name: str) -> pd.DataFrame:
    values = index.to_numpy()
    if values.dtype.kind not in "iuf":
        values = np.asarray([str(v) for v in values], dtype=object)
    return pd.DataFrame({name: values})


def save_bundle(folder: Path, *, discovery: Any, recommender: Any, data_name: str, encoder: str,
                group_labels: list[str]) -> Path:
    """Write the model folder; returns it."""
    from cohortrec._version import __version__  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    X = discovery.interactions_
    recommender.save(folder / "recommender.npz")
    discovery.save(folder / "discovery", include_data=False)
    users = _ids_frame(X.user_ids, "user_id")
    users["group"] = np.asarray(discovery.labels_, dtype=np.int64)
    users.to_parquet(folder / "users.parquet", index=False)
    items = _ids_frame(X.item_ids, "item_id")
    if X.items is not None and "title" in X.items.columns:
        items["title"] = [None if pd.isna(t) else str(t) for t in X.items["title"]]
    items.to_parquet(folder / "items.parquet", index=False)
    meta = {
        "format": FORMAT,
        "cohortrec": __version__,
        "data": data_name,
        "encoder": encoder,
        "n_users": int(X.n_users),
        "n_items": int(X.n_items),
        "n_groups": int(discovery.n_groups_),
        "group_labels": list(group_labels),
        "group_values": [int(v) for v in np.unique(discovery.labels_)],
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    return folder


def load_bundle(path: str | Path, *, device: str = "auto", with_discovery: bool = True) -> Bundle:
    """Read a model folder: ``DIR`` (a ``discover`` output) or ``DIR/model``."""
    from cohortrec.recommenders import load_model  # noqa: PLC0415

    p = Path(path).expanduser()
    if not p.exists():
        raise CLIError(f"--model {str(path)!r} does not exist (give the --out folder of 'cohortrec discover')")
    folder = p / "model" if (p / "model" / "meta.json").is_file() else p
    if not (folder / "meta.json").is_file():
        raise CLIError(f"--model {str(path)!r} holds no cohortrec model (expected {str(p / 'model' / 'meta.json')!r}; "
                       "run 'cohortrec discover --out DIR' first)")
    try:
        meta = read_json(folder / "meta.json", "model file")
        if meta.get("format") != FORMAT:
            raise ValueError(f"unsupported model format {meta.get('format')!r} (this cohortrec reads {FORMAT})")
        rec = load_model(folder / "recommender.npz")  # a GroupRecommender from discover; any saved model serves
        disc = None
        if with_discovery:
            from cohortrec.discovery import GroupDiscovery  # noqa: PLC0415

            disc = GroupDiscovery.load(folder / "discovery", device=device)
        users = pd.read_parquet(folder / "users.parquet")
        items = pd.read_parquet(folder / "items.parquet")
        if "user_id" not in users.columns or "item_id" not in items.columns:
            raise ValueError("users.parquet / items.parquet lack their id columns")
        if len(users) != rec.user_items_.shape[0] or len(items) != rec.user_items_.shape[1]:
            raise ValueError(f"users.parquet / items.parquet list {len(users)} users and {len(items)} items, "
                             f"but the recommender holds {rec.user_items_.shape}")
    except (ValueError, TypeError, OSError) as exc:  # damaged or mismatched files (pyarrow's errors are ValueErrors)
        raise CLIError(f"--model {str(path)!r}: {exc}") from None
    X = rec.user_items_
    pop = np.bincount(sp.csr_matrix(X).indices, minlength=X.shape[1]).astype(np.float64)
    titles = items["title"].to_numpy(dtype=object) if "title" in items.columns else None
    return Bundle(folder, meta, rec, disc, pd.Index(users["user_id"].astype(str)),
                  pd.Index(items["item_id"].astype(str)), items["item_id"], titles, pop,
                  np.asarray(meta.get("group_values", []), dtype=np.int64), device)
