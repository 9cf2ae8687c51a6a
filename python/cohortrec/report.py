"""A self-contained HTML report of the user groups found by :class:`~cohortrec.GroupDiscovery`.

:func:`render_report` turns a fitted discovery into one HTML page and
:func:`write_report` saves it. The page needs no network to be viewed: no
external CSS, JavaScript, fonts or images; the plots are drawn with
matplotlib (the Agg renderer, through :class:`matplotlib.figure.Figure`, so
the user's pyplot backend is left alone) and embedded as base64 PNG data
URIs. Every string that comes from the data (item titles, category names,
labels, table cells) is HTML-escaped.

Sections, each with a stable ``id``:

* ``header`` - dataset name, numbers of users, items, interactions and
  groups, date, cohortrec version, encoder and clusterer;
* ``overview`` - a compact table of the groups (label, size, share, top
  categories), linking to the group cards;
* ``quality`` - silhouette and other figures of :meth:`GroupDiscovery.quality`;
* ``sizes`` - group sizes;
* ``map`` - a 2-D PCA map of (a sample of) the users coloured by group;
* ``k-curve`` - the choice-of-K curve, only when ``n_groups="auto"`` was used;
* ``groups`` with one card ``group-<k>`` per group (``group-noise`` for the
  users a density clusterer left unassigned): behavioural features vs all
  users, top categories and items by lift with support, keywords and
  over-represented user features (with more than 60 groups the cards show
  feature tables instead of charts);
* ``trust`` - "How much to trust these groups": stability across seeds and
  subsamples of users and whether the profiles hold on held-out interactions
  (:func:`cohortrec.trust.group_trust`), only when given;
* ``evaluation`` and ``timings`` - only when given.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
import numbers
import os
import pathlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cohortrec._errors import NotFittedError
from cohortrec._validation import l2_normalize_rows
from cohortrec._version import __version__
from cohortrec.discovery import GroupDiscovery
from cohortrec.trust import GroupTrust

__all__ = ["render_report", "write_report"]

_NOISE_COLOR = "#9e9e9e"
_MAX_CARD_CHARTS = 60  # beyond this many groups the cards show feature tables without charts
_MAX_TABLE_ROWS = 500
_FEATURE_NAMES = {
    "n_events": "events",
    "n_items": "distinct items",
    "n_view": "views",
    "n_cart": "add-to-carts",
    "n_purchase": "purchases",
    "conversion": "conversion (purchases / views)",
    "active_days": "active span (days)",
    "events_per_day": "events per day",
    "recency_days": "days since last event",
    "mean_weight": "mean weight",
    "mean_dwell": "mean dwell time (s)",
    "total_spend": "total spend",
    "mean_spend": "spend per purchase",
    "mean_value": "mean value",
}


# ----------------------------------------------------------------- helpers
def _esc(value: Any) -> str:
    """HTML-escape ``str(value)`` (quotes included)."""
    return html.escape(str(value), quote=True)


def _mpl_text(value: Any, limit: int = 40) -> str:
    """A data string made safe for matplotlib text (no mathtext), shortened."""
    s = str(value).replace("\n", " ")
    if len(s) > limit:
        s = s[: limit - 1] + "\u2026"
    return s.replace("$", r"\$")


def _fmt_num(value: Any, digits: int = 4) -> str:
    """Format a number for a table cell (integers plainly, floats to ``digits`` significant)."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (numbers.Integral, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (numbers.Real, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "\u2013"
        if math.isinf(v):
            return "\u221e" if v > 0 else "\u2212\u221e"
        if v != 0 and v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.{digits}g}"
    return str(value)


def _pct(share: float) -> str:
    share = float(share)
    if math.isnan(share):
        return "\u2013"
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{100 * share:.1f}%" if share < 0.1 else f"{100 * share:.0f}%"


def _feature_name(col: str) -> str:
    if col in _FEATURE_NAMES:
        return _FEATURE_NAMES[col]
    if col.startswith("n_"):
        return col[2:].replace("_", " ") + " events"
    return col.replace("_", " ")


def _group_colors(k: int) -> list[str]:
    """One distinct colour per group (tab10, tab20, then a sampled colormap)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if k <= 0:
        return []
    if k <= 10:
        cmap = colormaps["tab10"]
        return [to_hex(cmap(i)) for i in range(k)]
    if k <= 20:
        cmap = colormaps["tab20"]
        order = list(range(0, 20, 2)) + list(range(1, 20, 2))  # strong colours first
        return [to_hex(cmap(order[i])) for i in range(k)]
    cmap = colormaps["turbo"]  # golden-ratio steps: consecutive groups get distant colours
    return [to_hex(cmap(0.05 + 0.9 * ((i * 0.6180339887) % 1.0))) for i in range(k)]


def _text_color(color: str) -> str:
    """Black or white, whichever reads better on ``color``."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.55 else "white"


def _png(fig: Any, dpi: int = 144) -> str:
    """Encode a matplotlib Figure as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs in data-derived labels
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None},
                    facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(uri: str, alt: str, cls: str = "plot") -> str:
    return f'<img class="{cls}" src="{uri}" alt="{_esc(alt)}">'


def _rc() -> Any:
    import matplotlib

    return matplotlib.rc_context({
        "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "axes.spines.top": False,
        "axes.spines.right": False, "axes.edgecolor": "#888888", "axes.grid": False,
        "xtick.color": "#444444", "ytick.color": "#444444", "legend.frameon": False,
        "svg.fonttype": "none", "text.usetex": False,
    })


def _figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout=layout)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "", raw: bool = False,
           numeric: Sequence[bool] | None = None) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they are trusted HTML)."""
    numeric = list(numeric) if numeric is not None else [False] * len(header)
    th = "".join(f'<th{" class=num" if n else ""}>{_esc(h)}</th>' for h, n in zip(header, numeric))
    body = []
    for r in rows:
        cells = "".join(f'<td{" class=num" if n else ""}>{c if raw else _esc(c)}</td>'
                        for c, n in zip(r, numeric))
        body.append(f"<tr>{cells}</tr>")
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _frame_table(df: pd.DataFrame) -> str:
    """Render any DataFrame as an escaped HTML table (index kept when it is informative)."""
    shown = df
    note = ""
    if len(df) > _MAX_TABLE_ROWS:
        shown = df.iloc[:_MAX_TABLE_ROWS]
        note = f'<p class="note">First {_MAX_TABLE_ROWS:,} of {len(df):,} rows.</p>'
    keep_index = not (isinstance(shown.index, pd.RangeIndex) and shown.index.name is None)
    if keep_index:
        shown = shown.reset_index(allow_duplicates=True)
    cols = [" / ".join(str(x) for x in c) if isinstance(c, tuple) else str(c) for c in shown.columns]
    numeric = [pd.api.types.is_numeric_dtype(shown.iloc[:, j]) and not pd.api.types.is_bool_dtype(
        shown.iloc[:, j]) for j in range(shown.shape[1])]
    rows = [[_fmt_num(v) if isinstance(v, (numbers.Number, np.generic)) else ("" if v is None else str(v))
             for v in row] for row in shown.itertuples(index=False, name=None)]
    return _table(cols, rows, cls="data", numeric=numeric) + note


def _pivot_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """Tidy ``metric, k, value`` tables (from :func:`cohortrec.evaluation.evaluate`) as one row per model/group."""
    cols = set(df.columns)
    if not {"metric", "k", "value"} <= cols or "user" in cols or df.empty:
        return df
    ids = [c for c in df.columns if c not in ("metric", "k", "value", "n_users")]
    try:
        wide = df.assign(_col=df["metric"].astype(str) + "@" + df["k"].astype(str))
        if ids:
            out = wide.pivot(index=ids, columns="_col", values="value")
        else:
            out = wide.set_index("_col")["value"].to_frame().T
            out.index = pd.Index(["all"], name="")
        order = list(dict.fromkeys(wide["_col"]))
        out = out[order]
        out.columns.name = None
        if "n_users" in cols:
            n = df.groupby(ids)["n_users"].max() if ids else pd.Series([df["n_users"].max()], index=out.index)
            out["users"] = n.reindex(out.index).to_numpy()
        return out
    except (ValueError, KeyError, TypeError):  # duplicates or odd columns: show as given
        return df


# -------------------------------------------------------------- validation
def _check_discovery(discovery: Any) -> None:
    if not isinstance(discovery, GroupDiscovery):
        raise TypeError(f"discovery must be a fitted cohortrec.GroupDiscovery, got {type(discovery).__name__}")
    if not hasattr(discovery, "labels_"):
        raise NotFittedError("discovery is not fitted: call discovery.fit(interactions) before making a report")
    if getattr(discovery, "embeddings_", None) is None or not getattr(discovery, "_has_data", True):
        raise ValueError("discovery holds no training data (a model saved with include_data=False); "
                         "a report needs the users' interactions and embeddings")
    n = discovery.interactions_.n_users
    if discovery.labels_.shape != (n,) or discovery.embeddings_.shape[0] != n:
        raise ValueError(f"discovery is inconsistent: {discovery.labels_.shape[0]} labels and "
                         f"{discovery.embeddings_.shape[0]} embeddings for {n} users")


def _check_options(evaluation: Any, timings: Any, title: Any, data_name: Any, max_points: Any,
                   random_state: Any) -> dict[str, float] | None:
    if evaluation is not None and not isinstance(evaluation, pd.DataFrame):
        raise TypeError(f"evaluation must be a pandas DataFrame or None, got {type(evaluation).__name__}")
    for name, v in (("title", title), ("data_name", data_name)):
        if v is not None and not isinstance(v, str):
            raise TypeError(f"{name} must be a str or None, got {type(v).__name__}")
    if isinstance(max_points, bool) or not isinstance(max_points, (numbers.Integral, np.integer)):
        raise TypeError(f"max_points must be an integer, got {type(max_points).__name__}")
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if random_state is not None and not isinstance(random_state, (numbers.Integral, np.random.RandomState)):
        raise TypeError(f"random_state must be an int, a numpy RandomState or None, got {type(random_state).__name__}")
    if timings is None:
        return None
    if not isinstance(timings, Mapping):
        raise TypeError(f"timings must be a mapping of stage name -> seconds, got {type(timings).__name__}")
    out: dict[str, float] = {}
    for stage, sec in timings.items():
        if isinstance(sec, bool) or not isinstance(sec, (numbers.Real, np.integer, np.floating)):
            raise TypeError(f"timings[{stage!r}] must be a number of seconds, got {type(sec).__name__}")
        if not math.isfinite(float(sec)) or float(sec) < 0:
            raise ValueError(f"timings[{stage!r}] must be a finite number of seconds >= 0, got {sec!r}")
        out[str(stage)] = float(sec)
    return out


# ------------------------------------------------------------------- plots
def _sizes_plot(sizes: np.ndarray, n_noise: int, colors: list[str], groups: Sequence[int] | None = None) -> str:
    groups = list(range(len(sizes))) if groups is None else list(groups)
    names = [str(g) for g in groups] + (["noise"] if n_noise else [])
    vals = [int(sizes[g]) for g in groups] + ([n_noise] if n_noise else [])
    cols = [colors[g] for g in groups] + ([_NOISE_COLOR] if n_noise else [])
    with _rc():
        fig = _figure(6.4, min(0.26 * len(vals) + 0.9, 12.0))
        ax = fig.subplots()
        y = np.arange(len(vals))
        ax.barh(y, vals, color=cols, height=0.72)
        ax.set_yticks(y, names if len(vals) <= 60 else [""] * len(vals))
        ax.invert_yaxis()
        ax.set_xlabel("users")
        ax.set_ylabel("group")
        top = max(vals) if vals else 1
        if len(vals) <= 40:
            total = max(sum(vals), 1)
            for yi, v in zip(y, vals):
                ax.text(v + 0.01 * top, yi, f"{v:,} ({_pct(v / total)})", va="center", fontsize=8, color="#333333")
        ax.set_xlim(0, top * 1.22 if top else 1)
        ax.set_title("Users per group")
        return _png(fig)


def _pca_2d(Z: np.ndarray, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Project rows to 2-D: returns (coords, mean, components (d, 2), axis labels)."""
    n, d = Z.shape
    mean = Z.mean(axis=0) if n else np.zeros(d)
    Zc = Z - mean
    if d >= 2 and n >= 2:
        _, s, vt = np.linalg.svd(Zc, full_matrices=False)
        comps = vt[:2].T
        if comps.shape[1] < 2:  # n == 1 edge: pad
            comps = np.column_stack([comps, np.zeros(d)])
        var = s ** 2
        tot = var.sum()
        ratio = var[:2] / tot if tot > 0 else np.zeros(2)
        ratio = np.pad(ratio, (0, 2 - ratio.size))
        for j in range(2):  # deterministic sign: largest loading positive
            if comps[np.argmax(np.abs(comps[:, j])), j] < 0:
                comps[:, j] *= -1
        return Zc @ comps, mean, comps, [f"PC1 ({_pct(ratio[0])} of variance)",
                                         f"PC2 ({_pct(ratio[1])} of variance)"]
    if d >= 2:  # a single user
        comps = np.eye(d)[:, :2]
        return Zc @ comps, mean, comps, ["dimension 1", "dimension 2"]
    comps = np.zeros((d, 2))
    comps[0, 0] = 1.0
    XY = np.column_stack([Zc[:, 0], rng.uniform(-0.5, 0.5, n)])
    return XY, mean, comps, ["embedding (1-D)", "random jitter"]


def _map_plot(Z: np.ndarray, labels: np.ndarray, centroids: np.ndarray, colors: list[str], group_names: list[str],
              max_points: int, random_state: Any, groups: Sequence[int] | None = None) -> tuple[str, int]:
    rng = np.random.RandomState(random_state) if not isinstance(random_state, np.random.RandomState) \
        else random_state
    n = Z.shape[0]
    idx = np.sort(rng.choice(n, max_points, replace=False)) if n > max_points else np.arange(n)
    idx = idx[rng.permutation(idx.size)]  # draw in random order so no group hides the others,
    idx = idx[np.argsort(labels[idx] >= 0, kind="stable")]  # noise first, underneath
    Zs = np.nan_to_num(np.asarray(Z[idx], dtype=np.float64))
    Zs = l2_normalize_rows(Zs) if Zs.shape[1] > 1 else Zs  # cosine geometry of the clustering
    XY, mean, comps, axis_labels = _pca_2d(Zs, rng)
    lab = labels[idx]
    pal = np.array(colors + [_NOISE_COLOR], dtype=object)
    col = pal[np.where(lab >= 0, lab, len(colors))]
    with _rc():
        fig = _figure(6.8, 5.2)
        ax = fig.subplots()
        size = float(np.clip(6000.0 / max(idx.size, 1), 4.0, 40.0))
        nz = lab < 0
        if nz.any():
            ax.scatter(XY[nz, 0], XY[nz, 1], c=_NOISE_COLOR, s=size * 0.6, alpha=0.35, linewidths=0, rasterized=True)
        ax.scatter(XY[~nz, 0], XY[~nz, 1], c=list(col[~nz]), s=size, alpha=0.55, linewidths=0, rasterized=True)
        k = centroids.shape[0]
        # a group's marker sits at the mean of its points on the map (its projected centroid if none is drawn)
        C = (np.nan_to_num(centroids) - mean) @ comps if k and Z.shape[1] > 1 else np.full((k, 2), np.nan)
        for g in (range(k) if groups is None else groups):  # no marker for a group not published
            pts = XY[lab == g]
            c = pts.mean(axis=0) if len(pts) else C[g]
            if not np.isfinite(c).all():
                continue
            ax.scatter([c[0]], [c[1]], s=200, c=[colors[g]], edgecolors="black", linewidths=1.0, zorder=3)
            ax.annotate(str(g), (c[0], c[1]), ha="center", va="center", fontsize=7, fontweight="bold",
                        color=_text_color(colors[g]), zorder=4)
        legend = list(range(k)) if groups is None else list(groups)
        if 0 < len(legend) <= 12 or (k == 0 and (lab < 0).any()):
            from matplotlib.lines import Line2D

            handles = [Line2D([], [], marker="o", linestyle="", color=colors[g],
                              label=f"{g} \u00b7 {_mpl_text(group_names[g], 28)}") for g in legend]
            if (labels < 0).any():
                handles.append(Line2D([], [], marker="o", linestyle="", color=_NOISE_COLOR, label="noise"))
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        ax.set_title("Users in embedding space (PCA), coloured by group")
        return _png(fig), int(idx.size)


def _features_plot(names: list[str], ratios: np.ndarray, color: str, lim: float) -> str:
    """Horizontal bars of log2(group / all) centred at x1."""
    r = np.asarray(ratios, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log2(r)
    shown = np.clip(np.nan_to_num(lr, nan=0.0, posinf=lim, neginf=-lim), -lim, lim)
    with _rc():
        # one chart per group: a fixed layout (the tight bounding box still keeps every label) is
        # about twice as fast as the constrained layout
        height = 0.24 * len(names) + 0.75
        fig = _figure(4.6, height, layout=None)
        fig.subplots_adjust(left=0.42, right=0.97, top=1 - 0.1 / height, bottom=0.55 / height)
        ax = fig.subplots()
        y = np.arange(len(names))
        bar_colors = [color if v >= 0 else "#b0b7c3" for v in shown]
        ax.barh(y, shown, color=bar_colors, height=0.7)
        ax.axvline(0, color="#333333", linewidth=0.8)
        ax.set_yticks(y, [_mpl_text(s, 34) for s in names])
        ax.invert_yaxis()
        ax.set_xlim(-lim * 1.5, lim * 1.5)
        ticks = ((0.125, 1.0, 8.0) if lim >= 2.5 else (0.25, 1.0, 4.0) if lim >= 1.5
                 else (0.5, 1.0, 2.0) if lim >= 0.75 else (0.8, 1.0, 1.25))
        ax.set_xticks([math.log2(t) for t in ticks], [f"\u00d7{t:g}" for t in ticks])
        ax.set_xticks([v for v in range(-3, 4) if abs(v) <= lim * 1.5], minor=True)
        for yi, v, rv in zip(y, shown, r):
            txt = "n/a" if not math.isfinite(rv) else f"\u00d7{rv:.2f}"
            ax.text(v + (0.04 * lim if v >= 0 else -0.04 * lim), yi, txt, va="center",
                    ha="left" if v >= 0 else "right", fontsize=7, color="#333333")
        ax.set_xlabel("group mean / all users (log scale)")
        ax.tick_params(axis="y", length=0)
        return _png(fig, dpi=120)


def _k_curve_plot(curve: pd.DataFrame, chosen: int) -> str:
    k = curve["k"].to_numpy()
    left = [c for c in curve.columns if c not in ("k", "inertia", "se") and pd.api.types.is_numeric_dtype(curve[c])]
    style: dict[str, dict[str, Any]] = {
        "score": {"linewidth": 2.4, "color": "#1f77b4"},
        "silhouette": {"color": "#2ca02c", "linestyle": "--"},
        "stability": {"color": "#ff7f0e", "linestyle": "-."},
    }
    with _rc():
        fig = _figure(6.4, 3.6)
        ax = fig.subplots()
        for c in left:
            ax.plot(k, curve[c].to_numpy(dtype=float), marker="o", markersize=3.5, label=_mpl_text(c),
                    **style.get(c, {}))
        ax.set_xlabel("number of groups k")
        ax.set_ylabel("score (higher is better)")
        ax.axvline(chosen, color="#d62728", linestyle=":", linewidth=1.4, label=f"chosen k = {chosen}")
        if "inertia" in curve.columns and pd.api.types.is_numeric_dtype(curve["inertia"]):
            ax2 = ax.twinx()
            ax2.spines["right"].set_visible(True)
            ax2.plot(k, curve["inertia"].to_numpy(dtype=float), color="#7f7f7f", linewidth=1.0, alpha=0.7,
                     label="inertia (right axis)")
            ax2.set_ylabel("inertia (lower = tighter)", color="#7f7f7f")
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = ax2.get_legend_handles_labels()
            ax.legend(h1 + h2, l1 + l2, loc="best", fontsize=8)
        else:
            ax.legend(loc="best", fontsize=8)
        if len(k) and len(k) <= 30:
            ax.set_xticks(k)
        ax.set_title("Choosing the number of groups")
        return _png(fig)


# ------------------------------------------------------------------ report
_CSS = """
:root{--fg:#1d2430;--muted:#5d6675;--line:#e3e7ee;--bg:#f6f8fb;--card:#fff;--accent:#2f6fdb}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:var(--fg);background:var(--bg);line-height:1.45;font-size:15px}
header.top{background:#18233a;color:#fff;padding:28px 40px 22px}
header.top h1{margin:0 0 6px;font-size:26px;font-weight:650}
header.top .sub{color:#c8d3e6;font-size:14px}
.facts{display:flex;flex-wrap:wrap;gap:10px;margin-top:16px;padding:0;list-style:none}
.facts li{background:rgba(255,255,255,.09);border-radius:8px;padding:8px 14px;min-width:110px}
.facts .v{display:block;font-size:20px;font-weight:650}
.facts .k{font-size:12px;color:#c8d3e6;text-transform:uppercase;letter-spacing:.04em}
nav{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line);padding:8px 40px;
 font-size:14px}
nav a{color:var(--accent);text-decoration:none;margin-right:18px}
main{max-width:1180px;margin:0 auto;padding:10px 40px 40px}
section{margin:28px 0}
h2{font-size:20px;margin:0 0 10px;padding-bottom:6px;border-bottom:2px solid var(--line)}
h3{font-size:16px;margin:0}
h4{font-size:13px;margin:14px 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
p.note,.note{color:var(--muted);font-size:13px}
img.plot{max-width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:6px}
img.small{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:13.5px;background:#fff}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#eef2f8;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.data{max-width:100%;display:block;overflow-x:auto}
.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:6px;vertical-align:-1px}
.bar{display:inline-block;height:8px;border-radius:4px;background:var(--accent);vertical-align:middle;
 margin-right:6px}
.badge{display:inline-block;font-size:11px;padding:1px 7px;border-radius:9px;background:#fde9c8;color:#7a4a00;
 margin-left:6px;vertical-align:2px}
.verdict{display:inline-block;font-size:12px;padding:1px 8px;border-radius:9px;background:#eef2f8}
.v-solid{background:#d9f2de;color:#1d5b2a}.v-shaky{background:#fde9c8;color:#7a4a00}
.v-unstable{background:#fbd9d6;color:#8a1f14}
ul.trust{margin:0 0 12px;padding-left:20px}ul.trust li{margin:4px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:18px}
.card{background:var(--card);border:1px solid var(--line);border-top:5px solid var(--c,#888);border-radius:8px;
 padding:14px 18px}
.card .meta{color:var(--muted);font-size:13px;margin:2px 0 6px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.chips{display:flex;flex-wrap:wrap;gap:6px;padding:0;margin:0;list-style:none}
.chips li{background:#eef2f8;border-radius:12px;padding:2px 10px;font-size:13px}
.lift{margin:0;padding-left:20px;font-size:13.5px}
.lift li{margin:2px 0}
.lift .m{color:var(--muted);font-size:12.5px;white-space:nowrap}
.grid2{display:grid;grid-template-columns:minmax(0,1.4fr) minmax(0,1fr);gap:18px;align-items:start}
details summary{cursor:pointer;color:var(--accent);font-size:13px;margin-top:8px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:20px}
@media (max-width:760px){.cards{grid-template-columns:1fr}.cols,.grid2{grid-template-columns:1fr}
 main,header.top,nav{padding-left:16px;padding-right:16px}}
@media print{nav{display:none}.card{break-inside:avoid}body{background:#fff}}
"""


def _lift_list(entries: Any, what: str) -> str:
    if not isinstance(entries, (list, tuple)) or not entries:
        return f'<p class="note">No {what} data.</p>'
    lis = []
    for e in entries:
        try:
            name, lift, sup = e[0], float(e[1]), float(e[2])
        except (TypeError, ValueError, IndexError):
            lis.append(f"<li>{_esc(e)}</li>")
            continue
        lis.append(f'<li>{_esc(name)} <span class="m">\u00d7{lift:.2f} lift \u00b7 {_pct(sup)} of group</span></li>')
    return f'<ol class="lift">{"".join(lis)}</ol>'


def _user_feature_lines(row: pd.Series, cols: list[str]) -> str:
    lis = []
    for c in cols:
        v = row.get(c)
        if not isinstance(v, tuple) or len(v) != 3:
            continue
        val, in_g, overall = v
        lis.append(f"<li><b>{_esc(c[len('user_'):].replace('_', ' '))}</b>: {_esc(val)} "
                   f'<span class="m">{_pct(in_g)} of group vs {_pct(overall)} overall</span></li>')
    return f'<ul class="lift">{"".join(lis)}</ul>' if lis else ""


@dataclass
class _Context:
    """What the sections share: the discovery, group sizes, colours, names and the profile."""

    discovery: Any
    k: int
    n: int
    labels: np.ndarray
    sizes: np.ndarray
    n_noise: int
    colors: list[str]
    names: list[str]
    profile: pd.DataFrame  # one row per group, without the "all" row
    overall: pd.Series | None  # the "all" row
    quality: dict[str, float]
    has_cats: bool
    shown: list[int] = field(default_factory=list)  # the groups published (all without a policy)
    privacy: dict[str, Any] | None = None  # the policy's summary (profile.attrs["privacy"])

    @classmethod
    def of(cls, discovery: Any, policy: Any = None) -> _Context:
        if policy is not None:
            return cls._private(discovery, policy)
        labels = np.asarray(discovery.labels_)
        k = int(discovery.n_groups_)
        noise = labels < 0
        sizes = np.bincount(labels[~noise], minlength=k)[:k] if k else np.zeros(0, dtype=np.int64)
        # profile() needs a user in some group; silhouette needs 2 <= groups <= assigned users - 1
        profile = discovery.profile() if k else pd.DataFrame(index=pd.Index(["all"], name="group"))
        n_ok = int((~noise).sum())
        n_used = int(np.unique(labels[~noise]).size)
        quality = discovery.quality() if 2 <= n_used <= n_ok - 1 else {"n_groups": float(k)}
        groups = profile.drop(index="all") if "all" in profile.index else profile
        names = [str(groups.loc[g, "label"]) if g in groups.index and "label" in groups.columns else f"group {g}"
                 for g in range(k)]
        cats = groups["top_categories"] if "top_categories" in groups.columns else pd.Series(dtype=object)
        return cls(discovery=discovery, k=k, n=int(labels.shape[0]), labels=labels, sizes=sizes,
                   n_noise=int(noise.sum()), colors=_group_colors(k), names=names, profile=groups,
                   overall=profile.loc["all"] if "all" in profile.index else None, quality=quality,
                   has_cats=any(isinstance(v, list) and v for v in cats), shown=list(range(k)))

    @classmethod
    def _private(cls, discovery: Any, policy: Any) -> _Context:
        """The context of a protected report: only the policy's release (published sizes, released groups)."""
        k = int(discovery.n_groups_)
        profile = discovery.profile(policy=policy)
        groups = profile.drop(index="all")
        shown = [int(g) for g in groups.index]
        sizes = np.zeros(k, dtype=np.int64)
        for g in shown:
            sizes[g] = int(groups.loc[g, "size"])
        names = [str(groups.loc[g, "label"]) if g in shown else f"group {g}" for g in range(k)]
        cats = groups["top_categories"] if "top_categories" in groups.columns else pd.Series(dtype=object)
        return cls(discovery=discovery, k=k, n=int(profile.loc["all", "size"]),
                   labels=np.asarray(discovery.labels_), sizes=sizes, n_noise=0, colors=_group_colors(k),
                   names=names, profile=groups, overall=profile.loc["all"], quality={},
                   has_cats=any(isinstance(v, list) and v for v in cats), shown=shown,
                   privacy=profile.attrs.get("privacy"))

    def row(self, g: int) -> pd.Series:
        return self.profile.loc[g] if g in self.profile.index else pd.Series(dtype=object)


def _header_html(ctx: _Context, page_title: str, data_label: str, now: str, version: str,
                 nav: list[tuple[str, str]]) -> str:
    X = ctx.discovery.interactions_
    if ctx.privacy is not None:  # published figures only: users of the released groups
        facts = [("users", f"{ctx.n:,}"), ("items", f"{X.n_items:,}"),
                 ("groups", f"{len(ctx.shown):,} of {ctx.k:,}")]
    else:
        facts = [("users", f"{ctx.n:,}"), ("items", f"{X.n_items:,}"), ("interactions", f"{X.nnz:,}")]
        if X.events is not None:
            facts.append(("events", f"{len(X.events):,}"))
        facts.append(("groups", f"{ctx.k:,}"))
    if ctx.n_noise:
        facts.append(("unassigned", f"{ctx.n_noise:,}"))
    if "silhouette" in ctx.quality:
        facts.append(("silhouette", f"{ctx.quality['silhouette']:.3f}"))
    facts_html = "".join(f'<li><span class="v">{_esc(v)}</span><span class="k">{_esc(key)}</span></li>'
                         for key, v in facts)
    enc = type(getattr(ctx.discovery, "encoder_", None)).__name__
    trained = getattr(getattr(ctx.discovery, "encoder_", None), "training_summary_", None) or {}
    if trained and trained.get("n_train_users", 0) < trained.get("n_users", 0):
        enc += (f" (trained on an activity-stratified sample of {int(trained['n_train_users']):,} users; "
                "everyone embedded by fold-in)")
    clu = type(getattr(ctx.discovery, "clusterer_", None)).__name__
    nav_html = "".join(f'<a href="#{i}">{_esc(t)}</a>' for i, t in nav)
    return (f'<header class="top" id="header"><h1>{_esc(page_title)}</h1>'
            f'<div class="sub">Dataset <b>{_esc(data_label)}</b> \u00b7 generated {_esc(now)} \u00b7 '
            f"cohortrec {_esc(version)} \u00b7 encoder {_esc(enc)} \u00b7 clustering {_esc(clu)}</div>"
            f'<ul class="facts">{facts_html}</ul></header>'
            f"<nav>{nav_html}</nav>")


def _badge(row: pd.Series) -> str:
    return '<span class="badge">small</span>' if bool(row.get("small", False)) else ""


def _overview_html(ctx: _Context) -> str:
    rows = []
    biggest = max(int(ctx.sizes.max()) if ctx.k else 1, 1)
    for g in ctx.shown:
        r = ctx.row(g)
        tops = r.get("top_categories") if ctx.has_cats else r.get("top_items")
        tops_txt = ", ".join(_esc(c[0]) for c in tops[:3]) if isinstance(tops, list) and tops else "\u2013"
        width = max(1.0, 80 * ctx.sizes[g] / biggest)
        rows.append([f'<span class="swatch" style="background:{ctx.colors[g]}"></span><a href="#group-{g}">{g}</a>',
                     f"{_esc(ctx.names[g])}{_badge(r)}", f"{int(ctx.sizes[g]):,}",
                     f'<span class="bar" style="width:{width:.0f}px"></span>{_pct(ctx.sizes[g] / ctx.n)}', tops_txt])
    if ctx.n_noise:
        rows.append([f'<span class="swatch" style="background:{_NOISE_COLOR}"></span><a href="#group-noise">noise</a>',
                     "noise (not assigned to a group)", f"{ctx.n_noise:,}",
                     (f'<span class="bar" style="width:1px;background:{_NOISE_COLOR}"></span>'
                      f"{_pct(ctx.n_noise / ctx.n)}"), "\u2013"])
    table = _table(["group", "label", "users", "share", "top categories" if ctx.has_cats else "top items"],
                   rows, raw=True, numeric=[False, False, True, False, False], cls="overview")
    n_shown = len(ctx.shown)
    held = (f" ({ctx.k - n_shown} suppressed by the privacy policy)" if ctx.privacy is not None and n_shown < ctx.k
            else "")
    return (f'<section id="overview"><h2>Overview</h2><p class="note">{n_shown} group{"s" if n_shown != 1 else ""}'
            f"{held} of {ctx.n:,} users. Labels are built from each group's most over-represented categories and "
            f"distinguishing keywords; follow a group number to its card.</p>{table}</section>")


_QUALITY_NAMES = {
    "n_groups": "groups found",
    "silhouette": "silhouette (cosine, sampled): -1..1, higher = tighter and better separated groups",
    "ari": "adjusted Rand index vs true labels",
    "nmi": "normalised mutual information vs true labels",
}


def _quality_html(ctx: _Context) -> str:
    if ctx.privacy is not None:
        return ('<section id="quality"><h2>Quality</h2><p class="note">Clustering quality figures (silhouette, '
                "agreement with true labels, the choice-of-K curve) are computed from every user and are not "
                "published under the privacy policy; they stay with the model's owner.</p></section>")
    rows = [[_esc(_QUALITY_NAMES.get(key, key)), _fmt_num(int(v) if key == "n_groups" else v)]
            for key, v in ctx.quality.items()]
    if ctx.k:
        rows.append(["largest group (share of users)", _pct(ctx.sizes.max() / ctx.n)])
        rows.append(["smallest group (share of users)", _pct(ctx.sizes.min() / ctx.n)])
        if "small" in ctx.profile.columns:
            rows.append(["groups flagged small", f"{int(ctx.profile['small'].astype(bool).sum())}"])
    if ctx.n_noise:
        rows.append(["users left unassigned (noise)", f"{ctx.n_noise:,} ({_pct(ctx.n_noise / ctx.n)})"])
    return ('<section id="quality"><h2>Quality</h2>'
            + _table(["measure", "value"], rows, raw=True, numeric=[False, True], cls="quality") + "</section>")


def _sizes_map_html(ctx: _Context, max_points: int, random_state: Any) -> str:
    if ctx.privacy is not None:
        return _private_sizes_map_html(ctx, max_points, random_state)
    Z = np.asarray(ctx.discovery.embeddings_)
    sizes_uri = _sizes_plot(ctx.sizes, ctx.n_noise, ctx.colors)
    map_uri, n_shown = _map_plot(Z, ctx.labels, np.asarray(ctx.discovery.centroids_), ctx.colors, ctx.names,
                                 max_points, random_state)
    shown = f"all {ctx.n:,} users" if n_shown == ctx.n else f"a random sample of {n_shown:,} of {ctx.n:,} users"
    dim = Z.shape[1]
    how = ("Principal-component projection of the " + f"{dim}-dimensional user embeddings (rows scaled to unit "
           "length, as the default clustering compares users by cosine similarity)" if dim > 1
           else "The 1-dimensional user embeddings, spread vertically by random jitter")
    return (f'<section id="sizes"><h2>Group sizes</h2>{_img(sizes_uri, "Bar chart of users per group")}</section>'
            f'<section id="map"><h2>Map of users</h2>{_img(map_uri, "Scatter plot of users coloured by group")}'
            f'<p class="note">{how}; {shown} shown. Each numbered dot marks the centre of the points of its '
            "group. Distances in two dimensions only approximate the separation in the full space.</p></section>")


def _private_sizes_map_html(ctx: _Context, max_points: int, random_state: Any) -> str:
    """Sizes and map of a protected report: released groups only; no map of users under differential privacy."""
    dp = ctx.privacy is not None and ctx.privacy.get("policy", {}).get("epsilon") is not None
    noisy = " (noisy counts)" if dp else ""
    sizes_html = (f'<section id="sizes"><h2>Group sizes</h2>'
                  f'{_img(_sizes_plot(ctx.sizes, 0, ctx.colors, ctx.shown), "Bar chart of users per group")}'
                  f'<p class="note">Released groups only{noisy}.</p></section>')
    if dp or not ctx.shown:
        why = ("A map places every user individually, which a differentially private release cannot publish."
               if dp else "No group was released.")
        return sizes_html + f'<section id="map"><h2>Map of users</h2><p class="note">{why}</p></section>'
    keep = np.isin(ctx.labels, ctx.shown)  # users of released groups only: no point of a suppressed group
    Z = np.asarray(ctx.discovery.embeddings_)[keep]
    labels = np.where(np.isin(ctx.labels[keep], ctx.shown), ctx.labels[keep], -1)
    C = np.asarray(ctx.discovery.centroids_, dtype=np.float64).copy()
    C[[g for g in range(ctx.k) if g not in ctx.shown]] = np.nan  # no marker for a suppressed group
    names = list(ctx.names)
    map_uri, n_shown = _map_plot(Z, labels, C, ctx.colors, names, max_points, random_state, groups=ctx.shown)
    shown = (f"all {n_shown:,} users of the released groups" if n_shown == Z.shape[0]
             else f"a random sample of {n_shown:,} users of the released groups")
    return (sizes_html + f'<section id="map"><h2>Map of users</h2>'
            f'{_img(map_uri, "Scatter plot of users coloured by group")}<p class="note">Principal-component '
            f"projection of the user embeddings (rows scaled to unit length); {shown}. Users of suppressed groups "
            "are not drawn.</p></section>")


def _k_curve_html(curve: pd.DataFrame, k: int) -> str:
    if "heldout_loglik" in curve.columns:  # GroupDiscovery's default (refine="multinomial"): heldout_k_curve
        how = (f"k = {k} groups. A fifth of every user's items was held out; for each k the groups were fitted on "
               "the rest, and <b>heldout_loglik</b> is the mean log-probability of a held-out item under the "
               "user's groups (higher: the groups predict what users do next; more groups than the data hold "
               "stop helping). <b>train_loglik</b> is the same on the items fitted, which always rises with k. "
               "The smallest k whose held-out score is within one standard error (<b>se</b>, over users) of the "
               "best was kept: the one-standard-error rule.")
    else:
        how = (f"The number of groups with the best score was kept (k = {k}). Silhouette measures separation on "
               "a sample; stability is the agreement of clusterings from different seeds.")
    return (f'<section id="k-curve"><h2>Choice of the number of groups</h2><div class="grid2">'
            f'{_img(_k_curve_plot(curve, k), "Line chart of scores by number of groups")}'
            f'<div>{_frame_table(curve)}<p class="note">{how}</p></div></div></section>')


def _prior_html(curve: pd.DataFrame, chosen: float | None) -> str:
    """The held-out choice between the background prior and the priors over item categories."""
    used = ("the background prior (the categories did not predict held-out items better)" if chosen is None
            else f"the prior over item categories with strength {chosen:g}")
    how = ("The groups are item distributions (a multinomial mixture). Each is smoothed towards a prior: the overall "
           "item distribution (<b>background</b>), or the group's own profile over the item categories "
           "(<b>categories</b>, with <b>alpha</b> pseudo-events per item), so that a group's few events on an item "
           "borrow strength from its events on the item's category. A fifth of every user's items was held out and "
           "<b>heldout_loglik</b> is their mean log-probability under each prior; the first prior within one "
           f"standard error (<b>se</b>) of the best was kept: {used}.")
    return (f'<section id="prior"><h2>Choice of the groups\' prior</h2>{_frame_table(curve)}'
            f'<p class="note">{how}</p></section>')


def _check_trust(trust: Any, discovery: Any) -> GroupTrust | None:
    """``trust`` as a :class:`~cohortrec.trust.GroupTrust` (from itself or its ``to_dict()``), None if None."""
    if trust is None:
        return None
    if isinstance(trust, Mapping):
        trust = GroupTrust.from_dict(trust)
    if not isinstance(trust, GroupTrust):
        raise TypeError(f"trust must be a cohortrec.trust.GroupTrust, its to_dict() or None, "
                        f"got {type(trust).__name__}")
    n, k = int(np.asarray(discovery.labels_).shape[0]), int(discovery.n_groups_)
    if trust.n_users != n or trust.n_groups != k:
        raise ValueError(f"trust was measured on another model ({trust.n_users} users, {trust.n_groups} groups; "
                         f"this one has {n} users, {k} groups)")
    return trust


def _agreement_words(ari: float) -> str:
    """Plain words for an adjusted Rand index between two groupings of the same users."""
    if ari >= 0.9:
        return "essentially the same groups"
    if ari >= 0.75:
        return "mostly the same groups"
    if ari >= 0.5:
        return "partly different groups"
    return "largely different groups"


def _ari_line(values: list[float], what: str) -> str:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    if not a.size:
        return ""
    mean, low = float(a.mean()), float(a.min())
    return (f"<li>{what}: <b>{_esc(_agreement_words(mean))}</b> \u2014 adjusted Rand index {mean:.2f} on average "
            f"(lowest {low:.2f}) over {a.size} run{'s' if a.size != 1 else ''}.</li>")


def _share_cell(v: Any) -> str:
    f = float(v) if v is not None else float("nan")
    return "\u2013" if not math.isfinite(f) else f"{100 * f:.0f}%"


def _trust_html(ctx: _Context, trust: GroupTrust) -> str:
    """The stability and holdout figures of :func:`cohortrec.trust.group_trust` in plain words."""
    if ctx.privacy is not None:
        return ('<section id="trust"><h2>How much to trust these groups</h2><p class="note">Stability figures are '
                "computed from every user and are not published under the privacy policy; they stay with the "
                "model's owner.</p></section>")
    s = trust.summary()
    st = trust.settings
    sub = float(st.get("subsample", 0.8))
    hold = float(st.get("holdout", 0.2))
    top_n = int(st.get("top_n", 5))
    lines = [
        _ari_line(trust.seed_ari, f"Refitting with {len(trust.seed_ari)} other random seed"
                  f"{'s' if len(trust.seed_ari) != 1 else ''} at the same number of groups (K = {trust.n_groups}) "
                  "gives"),
        _ari_line(trust.bootstrap_ari, f"Refitting on random {100 * sub:.0f}% subsamples of the users (compared "
                  "on the users in both) gives"),
    ]
    if trust.holdout_ari is not None:
        lines.append(f"<li>Fitting on {100 * (1 - hold):.0f}% of every user's interactions gives "
                     f"{_esc(_agreement_words(trust.holdout_ari))} (adjusted Rand index {trust.holdout_ari:.2f}).</li>")
    cat, item = s.get("category_lift_holds"), s.get("item_lift_holds")
    if cat is not None or item is not None:
        parts = [f"{_share_cell(v)} of a group's top {top_n} {w}" for v, w in ((cat, "categories"), (item, "items"))
                 if v is not None]
        lines.append(f"<li>Profiles on held-out interactions: {' and '.join(parts)} (mean over groups) are still "
                     f"over-represented (lift &gt; 1) in the {100 * hold:.0f}% of interactions held out.</li>")
    n_rows = len(trust.per_group)
    counts = ", ".join(f"{s[f'n_{v}']} {v}" for v in ("solid", "shaky", "unstable", "unmeasured") if s[f"n_{v}"])
    solid = s.get("share_users_solid")
    lines.append(f"<li>Verdict per group: <b>{_esc(counts or 'none')}</b> of {n_rows}"
                 + (f"; {_pct(solid)} of the users are in solid groups" if solid is not None else "") + ".</li>")
    sampled = (f" The refits ran on a uniform sample of {trust.n_users_used:,} of the {trust.n_users:,} users and "
               "were compared with the model's groups of those users." if s.get("sampled") else "")
    n_solid = int(s["n_solid"])
    if n_rows and n_solid == n_rows:
        lead = ("Every group is <b>solid</b>: the grouping comes back with other seeds and other samples of users, "
                "and the group profiles hold on held-out interactions.")
    elif n_solid:
        lead = (f"Trust the <b>solid</b> groups ({n_solid} of {n_rows}"
                + (f", {_pct(solid)} of the users" if solid is not None else "") + "); treat shaky groups as "
                "tentative and unstable ones as artefacts of this particular fit.")
    else:
        lead = ("No group is solid: read these groups as one possible split of the users, not as stable "
                "segments.")
    has_cats = bool(np.isfinite(trust.per_group["category_lift_holds"].to_numpy(dtype=np.float64)).any())
    rows = []
    for r in trust.per_group.to_dict(orient="records"):
        g = int(r["group"])
        color = ctx.colors[g] if 0 <= g < len(ctx.colors) else _NOISE_COLOR
        name = ctx.names[g] if 0 <= g < len(ctx.names) else f"group {g}"
        verdict = str(r["verdict"])
        rows.append([f'<span class="swatch" style="background:{color}"></span><a href="#group-{g}">{g}</a>',
                     _esc(name), f"{int(r['size']):,}", _fmt_num(r["jaccard_stability"], 2)]
                    + ([_share_cell(r["category_lift_holds"])] if has_cats else [])
                    + [_share_cell(r["item_lift_holds"]), _fmt_num(r["item_lift_spearman"], 2),
                       f'<span class="verdict v-{_esc(verdict)}">{_esc(verdict)}</span>'])
    header = (["group", "label", "users", "stability (Jaccard)"]
              + ([f"top {top_n} categories hold"] if has_cats else [])
              + [f"top {top_n} items hold", "item lift rank corr.", "verdict"])
    table = _table(header, rows, raw=True, numeric=[False, False, True, True] + [True] * has_cats
                   + [True, True, False], cls="trust")
    solid_j, unstable_j = st.get("solid_jaccard", 0.75), st.get("unstable_jaccard", 0.6)
    lift_holds = st.get("lift_holds", 0.6)
    note = (
        "The adjusted Rand index compares two groupings of the same users: 1 means identical, 0 what random "
        "groups would give. A group's stability is its best Jaccard overlap (shared users / users in either) "
        "with a group of each refit, averaged over all refits (seeds and subsamples), as in C. Hennig (2007), "
        f"\u201cCluster-wise assessment of cluster stability\u201d. <b>solid</b>: stability \u2265 {solid_j:g} "
        f"and at least {100 * lift_holds:.0f}% of its top categories and items still over-represented on held-out "
        f"interactions; <b>unstable</b>: stability below {unstable_j:g} (the group largely dissolves when the "
        "data or the seed changes: do not build on it); <b>shaky</b>: in between, or its profile does not hold. "
        f"Held-out check: {100 * hold:.0f}% of every user's interactions were hidden, the groups fitted on the "
        "rest, and each group's top categories and items (by lift) measured again on the hidden part; the rank "
        "correlation compares the hidden part's lifts with the training lifts over the items held by at least "
        f"{100 * float(st.get('min_support', 0.05)):.0f}% of the group. Measured in "
        f"{trust.seconds:.1f} s." + sampled)
    return (f'<section id="trust"><h2>How much to trust these groups</h2><p>{lead}</p>'
            f'<ul class="trust">{"".join(lines)}</ul>'
            f'{table}<p class="note">{note}</p></section>')


def _feature_block(ctx: _Context, g: int, feat_cols: list[str], lim: float) -> str:
    r = ctx.row(g)
    ratios = np.array([float(r.get(f"{c}_vs_all", np.nan)) for c in feat_cols])
    names = [_feature_name(c) for c in feat_cols]
    overall = ctx.overall
    rows = [[_esc(fn), _fmt_num(r.get(c)), _fmt_num(overall.get(c) if overall is not None else None),
             "\u2013" if not math.isfinite(rt) else f"\u00d7{rt:.2f}"]
            for fn, c, rt in zip(names, feat_cols, ratios)]
    table = _table(["feature", "group mean", "all users", "ratio"], rows, raw=True, numeric=[False, True, True, True])
    if ctx.k > _MAX_CARD_CHARTS:
        return table
    chart = _img(_features_plot(names, ratios, ctx.colors[g], lim),
                 f"Bar chart of behavioural features of group {g} relative to all users", "small")
    return f"<h4>Behaviour vs all users</h4>{chart}<details><summary>Feature values</summary>{table}</details>"


def _group_card(ctx: _Context, g: int, feat_cols: list[str], user_cols: list[str], lim: float) -> str:
    r = ctx.row(g)
    body = [_feature_block(ctx, g, feat_cols, lim) if feat_cols
            else '<p class="note">No behavioural features (the data has no events).</p>']
    lists = []
    if ctx.has_cats:
        lists.append("<div><h4>Top categories</h4>" + _lift_list(r.get("top_categories"), "category") + "</div>")
    lists.append("<div><h4>Top items</h4>" + _lift_list(r.get("top_items"), "item") + "</div>")
    body.append(f'<div class="cols">{"".join(lists)}</div>')
    kw = r.get("keywords")
    if isinstance(kw, list) and kw:
        body.append('<h4>Keywords</h4><ul class="chips">' + "".join(f"<li>{_esc(w)}</li>" for w in kw) + "</ul>")
    uf = _user_feature_lines(r, user_cols)
    if uf:
        body.append(f"<h4>Over-represented user features</h4>{uf}")
    err = _error_line(ctx, g)
    if err:
        body.append(err)
    label = "" if ctx.names[g] == f"group {g}" else ": " + _esc(ctx.names[g])
    return (f'<article class="card" id="group-{g}" style="--c:{ctx.colors[g]}">'
            f'<h3><span class="swatch" style="background:{ctx.colors[g]}"></span>Group {g}{label}{_badge(r)}</h3>'
            f'<div class="meta">{int(ctx.sizes[g]):,} users \u00b7 {_pct(ctx.sizes[g] / ctx.n)} of all</div>'
            f'{"".join(body)}</article>')


def _error_line(ctx: _Context, g: int) -> str:
    """The expected error (one noise standard deviation) of the group's noisy figures."""
    errs = (ctx.privacy or {}).get("expected_error", {}).get(str(g))
    if not errs:
        return ""
    parts = []
    for key, v in errs.items():
        if key == "size":
            parts.append(f"size \u00b1{v:.1f} users")
        elif key == "item_support":
            parts.append(f"item support \u00b1{100 * v:.1f} pp")
        elif key == "category_share":
            parts.append(f"category shares \u00b1{100 * v:.1f} pp")
        else:
            parts.append(f"{_esc(_feature_name(key[len('mean '):]) if key.startswith('mean ') else key)} "
                         f"\u00b1{_fmt_num(v, 3)}")
    return ('<p class="note privacy-error">Expected error of the noisy figures (one standard deviation): '
            + "; ".join(parts) + ".</p>")


def _privacy_html(ctx: _Context, evaluation_held: bool) -> str:
    """The policy, what was suppressed, the epsilon spent and the noise of every noisy figure."""
    info = ctx.privacy or {}
    pol = info.get("policy", {})
    dp = pol.get("epsilon") is not None
    k = pol.get("min_group_size")
    rows = [["minimum distinct users behind a published figure", _esc(k)]]
    if dp:
        spent = info.get("spent", [0.0, 0.0])
        rows += [["privacy budget (epsilon, delta)", f"{_fmt_num(pol['epsilon'])}, {_fmt_num(pol['delta'])}"],
                 ["<b>epsilon spent by this report</b>", f"<b>{_fmt_num(spent[0])}</b> (delta {_fmt_num(spent[1])})"],
                 ["items counted per user (clipping)", _esc(pol.get("max_items_per_user"))],
                 ["interactions counted per user (clipping)", _esc(_fmt_num(pol.get("max_interactions_per_user")))]]
    sup = info.get("suppressed_groups", [])
    rows.append(["groups suppressed", f"{len(sup)} of {info.get('n_groups', ctx.k)}"
                 + (f" (groups {', '.join(map(str, sup))})" if sup else "")])
    cells = info.get("suppressed_cells", {})
    rows.append(["item and category entries suppressed in released groups",
                 f"{cells.get('items', 0):,} items, {cells.get('categories', 0):,} categories"])
    for name, why in info.get("not_released", {}).items():
        rows.append([f"not published: {_esc(_feature_name(name))}", _esc(why)])
    for what, tau in info.get("threshold", {}).items():
        rows.append([f"release threshold: {_esc(what)}", _fmt_num(tau, 3)])
    table = _table(["", ""], rows, raw=True, cls="privacy")
    mech = ""
    if dp and info.get("parts"):
        mrows = [[_esc(p["part"]), _esc(p["figure"]), _esc(p["mechanism"]), _fmt_num(p["epsilon"], 3),
                  _fmt_num(p["delta"], 3), _fmt_num(p["sensitivity"], 3), _fmt_num(p["noise_std"], 3)]
                 for p in info["parts"]]
        mech = ("<h4>Noise added (diffprivlib mechanisms)</h4>"
                + _table(["part", "figure", "mechanism", "epsilon", "delta", "sensitivity", "noise std"], mrows,
                         raw=True, numeric=[False, False, False, True, True, True, True], cls="privacy"))
    how = ("Every published count, share and mean is computed from differentially private noisy counts and sums "
           "(user-level: each user's contribution is clipped as stated); groups and items are published only "
           "when their noisy number of users reaches the threshold. Shares, lifts, labels, keywords and the "
           "overall figures are computed from the released noisy figures only. Each group card gives the "
           "expected error of its figures." if dp else
           "Groups, items, categories, keywords, user-feature values and behaviour means backed by fewer "
           "distinct users than the minimum are suppressed. Overall figures and shares are computed from the "
           "released groups and entries only, so no suppressed figure can be recovered by subtracting published "
           "ones.")
    held = (" The evaluation table is not published (it is computed from every user)." if evaluation_held else "")
    private = ("The clustering itself is fitted on the raw data; item names and categories are treated as "
               "public. The model files (the <code>model/</code> folder, <code>groups.parquet</code>) hold "
               "per-user data and unprotected figures: they are private to their owner and must not be shared "
               "with this report." + held)
    return (f'<section id="privacy"><h2>Privacy</h2><p class="note">{how}</p>{table}{mech}'
            f'<p class="note">{private}</p></section>')


def _groups_html(ctx: _Context) -> str:
    cols = ctx.profile.columns
    feat_cols = [c[: -len("_vs_all")] for c in cols if c.endswith("_vs_all") and c[: -len("_vs_all")] in cols]
    user_cols = [c for c in cols if c.startswith("user_")]
    lim = 1.0  # common scale of the feature charts: the largest |log2 ratio|, within [0.5, 3]
    if feat_cols and ctx.k:
        R = ctx.profile[[f"{c}_vs_all" for c in feat_cols]].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            L = np.abs(np.log2(R))
        L = L[np.isfinite(L)]
        lim = float(np.clip(L.max() if L.size else 1.0, 0.5, 3.0))
    cards = [_group_card(ctx, g, feat_cols, user_cols, lim) for g in ctx.shown]
    if ctx.n_noise:
        cards.append(f'<article class="card" id="group-noise" style="--c:{_NOISE_COLOR}">'
                     "<h3>Unassigned users (noise)</h3>"
                     f'<div class="meta">{ctx.n_noise:,} users \u00b7 {_pct(ctx.n_noise / ctx.n)} of all</div>'
                     '<p class="note">The clustering left these users outside every group (e.g. DBSCAN noise: '
                     "too few similar neighbours). They are not part of any group profile.</p></article>")
    note = ("Lift = share of the group's users who have a category or item, divided by that share among all "
            "users; only entries held by a meaningful share of the group are listed. Feature bars show the "
            "group mean divided by the mean over all users on a log scale (\u00d71 = typical).")
    return (f'<section id="groups"><h2>Groups</h2><p class="note">{note}</p>'
            f'<div class="cards">{"".join(cards) or "<p class=note>No groups.</p>"}</div></section>')


def _evaluation_html(evaluation: pd.DataFrame) -> str:
    ev = _pivot_metrics(evaluation)
    body = _frame_table(ev) if len(ev) else '<p class="note">The evaluation table is empty.</p>'
    return f'<section id="evaluation"><h2>Evaluation</h2>{body}</section>'


def _timings_html(timings: dict[str, float]) -> str:
    total = sum(timings.values())
    rows = []
    for stage, sec in timings.items():
        share = (f'<span class="bar" style="width:{120 * sec / total:.0f}px"></span>{_pct(sec / total)}'
                 if total else "\u2013")
        rows.append([_esc(stage), f"{sec:.2f}", share])
    rows.append(["<b>total</b>", f"<b>{total:.2f}</b>", ""])
    return ('<section id="timings"><h2>Timings</h2>'
            + _table(["stage", "seconds", "share"], rows, raw=True, numeric=[False, True, False], cls="timings")
            + "</section>")


def render_report(
    discovery: Any,
    *,
    evaluation: pd.DataFrame | None = None,
    timings: Mapping[str, float] | None = None,
    title: str | None = None,
    data_name: str | None = None,
    max_points: int = 5000,
    random_state: int | np.random.RandomState | None = 0,
    policy: Any = None,
    trust: Any = None,
) -> str:
    """The HTML text of a self-contained report on the groups of a fitted discovery.

    Parameters
    ----------
    discovery : GroupDiscovery
        A fitted :class:`~cohortrec.GroupDiscovery`.
    evaluation : pandas.DataFrame, optional
        A table of results (e.g. from :func:`cohortrec.evaluation.evaluate`,
        one row per model or a tidy ``metric, k, value`` table, which is
        shown with one column per ``metric@k``).
    timings : mapping of str to float, optional
        Seconds spent in each stage of the run.
    title : str, optional
        Page title; default ``"User groups in <data_name>"``.
    data_name : str, optional
        Name of the dataset shown in the header.
    max_points : int, default 5000
        At most this many users (a random sample) are drawn on the map.
    random_state : int, RandomState or None, default 0
        Seed of that sample (the page is deterministic for a fixed seed,
        apart from its date).
    policy : cohortrec.privacy.Policy, optional
        Publish only what the privacy policy releases: the profile of
        :meth:`GroupDiscovery.profile(policy=...) <cohortrec.GroupDiscovery.profile>`
        (suppressed groups get no card, bar or map point; with
        differential privacy there is no map of users), no clustering
        quality figures, no choice-of-K curve and no evaluation table; a
        ``privacy`` section states the policy, what was suppressed, the
        epsilon spent and the noise of every noisy figure.
    trust : GroupTrust or dict, optional
        The result of :func:`cohortrec.trust.group_trust` on ``discovery``
        (or its :meth:`~cohortrec.trust.GroupTrust.to_dict`): adds the
        section "How much to trust these groups" (stability across seeds and
        subsamples in plain words, a verdict per group, and whether the
        profiles hold on held-out interactions). Under a ``policy`` the
        section only says that these figures are not published.

    Returns
    -------
    str
        The whole HTML document.

    Raises
    ------
    TypeError
        If ``discovery`` is not a :class:`~cohortrec.GroupDiscovery` or an
        option has the wrong type.
    sklearn.exceptions.NotFittedError
        (a ``ValueError``) if ``discovery`` is not fitted.
    ValueError
        For out-of-range options (``max_points < 1``, negative timings), or
        ``trust`` measured on another model.

    Examples
    --------
    >>> from cohortrec import GroupDiscovery
    >>> from cohortrec.datasets import make_shop
    >>> from cohortrec.report import render_report
    >>> shop = make_shop(300, 100, 3, seed=0)
    >>> gd = GroupDiscovery(n_groups=3, random_state=0).fit(shop.interactions)
    >>> page = render_report(gd, data_name="make_shop")
    >>> page.startswith("<!DOCTYPE html>") and 'id="group-2"' in page
    True
    """
    _check_discovery(discovery)
    timings_ = _check_options(evaluation, timings, title, data_name, max_points, random_state)
    trust_ = _check_trust(trust, discovery)
    if policy is not None:
        from cohortrec.privacy import Policy

        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a cohortrec.privacy.Policy or None, got {type(policy).__name__}")
    ctx = _Context.of(discovery, policy)
    private = policy is not None
    held_evaluation = private and evaluation is not None
    if private:
        evaluation = None
    version = __version__
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    data_label = data_name or "interactions"
    page_title = title if title is not None else f"User groups in {data_label}"
    curve = discovery.k_curve_
    show_curve = isinstance(curve, pd.DataFrame) and "k" in curve.columns and len(curve) > 0 and not private

    nav = [("overview", "Overview"), ("quality", "Quality"), ("sizes", "Sizes"), ("map", "Map")]
    nav += [("k-curve", "Choice of K")] if show_curve else []
    prior_curve = getattr(discovery, "category_curve_", None)
    show_prior = isinstance(prior_curve, pd.DataFrame) and len(prior_curve) > 0 and not private
    nav += [("prior", "Prior")] if show_prior else []
    nav += [("trust", "Trust")] if trust_ is not None else []
    nav += [("groups", "Groups")]
    nav += [("privacy", "Privacy")] if private else []
    nav += [("evaluation", "Evaluation")] if evaluation is not None else []
    nav += [("timings", "Timings")] if timings_ is not None else []
    parts = [
        _header_html(ctx, page_title, data_label, now, version, nav),
        "<main>",
        _overview_html(ctx),
        _quality_html(ctx),
        _sizes_map_html(ctx, int(max_points), random_state),
        _k_curve_html(curve, ctx.k) if show_curve else "",
        _prior_html(prior_curve, getattr(discovery, "category_prior_", None)) if show_prior else "",
        _trust_html(ctx, trust_) if trust_ is not None else "",
        _groups_html(ctx),
        _privacy_html(ctx, held_evaluation) if private else "",
        _evaluation_html(evaluation) if evaluation is not None else "",
        _timings_html(timings_) if timings_ is not None else "",
        (f"</main><footer>Made with cohortrec {_esc(version)} on {_esc(now)}. This page is self-contained: "
         "it loads nothing from the network.</footer>"),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="cohortrec {_esc(version)}">'
            f"<title>{_esc(page_title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(p for p in parts if p) + "\n</body></html>\n")


def write_report(
    path: str | os.PathLike[str],
    discovery: Any,
    *,
    evaluation: pd.DataFrame | None = None,
    timings: Mapping[str, float] | None = None,
    title: str | None = None,
    data_name: str | None = None,
    max_points: int = 5000,
    random_state: int | np.random.RandomState | None = 0,
    policy: Any = None,
    trust: Any = None,
) -> pathlib.Path:
    """Write the report of :func:`render_report` to ``path`` (UTF-8).

    Parameters
    ----------
    path : str or os.PathLike
        Output file (conventionally ``report.html``); missing parent folders
        are created and an existing file is replaced.
    discovery : GroupDiscovery
        A fitted :class:`~cohortrec.GroupDiscovery`.
    evaluation, timings, title, data_name, max_points, random_state, policy, trust
        As in :func:`render_report`.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like, or as :func:`render_report`.
    ValueError
        If ``path`` is an existing directory, or as :func:`render_report`.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = pathlib.Path(path)
    if p.is_dir():
        raise ValueError(f"path must be a file, got the directory {str(p)!r}")
    text = render_report(discovery, evaluation=evaluation, timings=timings, title=title, data_name=data_name,
                         max_points=max_points, random_state=random_state, policy=policy, trust=trust)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return p
