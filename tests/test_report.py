"""The self-contained HTML report (cohortrec.report): content, escaping, edge cases, a real browser."""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from cohortrec.datasets import make_shop
from cohortrec.discovery import GroupDiscovery
from cohortrec.interactions import Interactions
from cohortrec.report import render_report, write_report

PNG_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
EXTERNAL_REF = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.IGNORECASE)
SECTION = re.compile(r'<(?:section|article|header)[^>]*\bid="([^"]+)"')


# ---------------------------------------------------------------- fixtures
class _ProjEncoder(BaseEstimator):
    """Embeds users by a fixed random projection to ``dim`` dimensions."""

    def __init__(self, dim: int = 2) -> None:
        self.dim = dim

    def fit(self, X, y=None):
        return self

    def fit_transform(self, X, y=None):
        return self.transform(X)

    def transform(self, X):
        P = np.random.RandomState(0).standard_normal((X.matrix.shape[1], self.dim))
        return np.asarray(X.matrix @ P)


class _FixedClusterer(BaseEstimator):
    """A clusterer returning given labels (e.g. with DBSCAN's -1 noise)."""

    def __init__(self, labels=None) -> None:
        self.labels = labels

    def fit(self, X, y=None):
        self.labels_ = np.asarray(self.labels, dtype=np.int64)
        return self


@pytest.fixture(scope="module")
def shop():
    return make_shop(300, 120, 3, seed=0)


@pytest.fixture(scope="module")
def gd(shop):
    return GroupDiscovery(n_groups=3, random_state=0).fit(shop.interactions)


@pytest.fixture(scope="module")
def evaluation():
    return pd.DataFrame({"model": ["Popularity", "Popularity", "GroupRecommender", "GroupRecommender"],
                         "metric": ["ndcg", "recall"] * 2, "k": [10] * 4, "value": [0.11, 0.21, 0.31, 0.41],
                         "n_users": [300] * 4})


@pytest.fixture(scope="module")
def page(gd, evaluation):
    return render_report(gd, evaluation=evaluation, timings={"load": 0.25, "fit": 1.5, "report": 0.75},
                         data_name="make_shop demo")


def _pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b, validate=True) for b in PNG_URI.findall(page)]


def _section(page: str, sid: str) -> str:
    """The HTML of the element with id ``sid`` up to the next section/article."""
    start = page.index(f'id="{sid}"')
    m = re.compile(r"<(section|article) ").search(page, start + 1)
    return page[start: m.start() if m else len(page)]


# ------------------------------------------------------------------ content
def test_sections_and_header(page, gd):
    ids = SECTION.findall(page)
    for sid in ("header", "overview", "quality", "sizes", "map", "groups", "evaluation", "timings"):
        assert sid in ids, sid
    assert [i for i in ids if i.startswith("group-")] == [f"group-{g}" for g in range(gd.n_groups_)]
    assert len(ids) == len(set(ids)), "section ids must be unique"
    assert "k-curve" not in ids  # n_groups was an integer
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    head = _section(page, "header")
    assert "make_shop demo" in head
    X = gd.interactions_
    for v in (X.n_users, X.n_items, X.nnz):
        assert f"{v:,}" in head
    import cohortrec

    assert f"cohortrec {cohortrec.__version__}" in head
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", head)


def test_group_cards_show_profile(page, gd):
    prof = gd.profile()
    for g in range(gd.n_groups_):
        card = _section(page, f"group-{g}")
        row = prof.loc[g]
        assert f"{int(row['size']):,} users" in card
        import html

        assert html.escape(row["label"]) in card
        for name, lift, _sup in row["top_categories"]:
            assert html.escape(name) in card and f"\u00d7{lift:.2f}" in card
        for name, _lift, _sup in row["top_items"][:3]:
            assert html.escape(name) in card
        for w in row["keywords"]:
            assert f"<li>{html.escape(w)}</li>" in card
        assert "Behaviour vs all users" in card and len(PNG_URI.findall(card)) == 1
        assert f"\u00d7{row['n_events_vs_all']:.2f}" in card  # feature table
        assert "age band" in card  # over-represented user features
    overview = _section(page, "overview")
    assert overview.count('href="#group-') == gd.n_groups_


def test_images_are_embedded_pngs(page, gd):
    from PIL import Image

    blobs = _pngs(page)
    assert len(blobs) == page.count("<img ") == 2 + gd.n_groups_  # sizes, map, one per group card
    for b in blobs:
        assert b[:8] == b"\x89PNG\r\n\x1a\n"
        im = Image.open(io.BytesIO(b))
        im.verify()
        assert im.size[0] > 50 and im.size[1] > 50


def test_self_contained(page):
    assert "http://" not in page and "https://" not in page
    assert not EXTERNAL_REF.search(page)
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs and all(h.startswith("#") for h in hrefs)
    ids = set(re.findall(r'id="([^"]+)"', page))
    assert {h[1:] for h in hrefs} <= ids, "internal links point to existing ids"


def test_external_ref_detector_can_fail():
    for bad in ('<img src="https://x.org/a.png">', "<link href='//cdn.x/a.css'>", '<a href="http://x">'):
        assert EXTERNAL_REF.search(bad), bad
    assert not EXTERNAL_REF.search('<a href="#group-1"><img src="data:image/png;base64,AAAA">')


def test_evaluation_and_timings_tables(page):
    ev = _section(page, "evaluation")
    assert "ndcg@10" in ev and "recall@10" in ev  # tidy table pivoted to one row per model
    assert "GroupRecommender" in ev and "Popularity" in ev and "0.41" in ev
    tm = _section(page, "timings")
    for stage, sec in (("load", "0.25"), ("fit", "1.50"), ("report", "0.75"), ("total", "2.50")):
        assert stage in tm and sec in tm
    assert "60%" in tm  # fit share


def test_optional_sections_absent(gd):
    page = render_report(gd)
    ids = SECTION.findall(page)
    assert "evaluation" not in ids and "timings" not in ids and "k-curve" not in ids
    assert 'href="#evaluation"' not in page and 'href="#k-curve"' not in page
    assert "User groups in interactions" in page  # default title


def test_evaluation_wide_table_and_title(gd):
    ev = pd.DataFrame({"model": ["a", "b"], "ndcg@10": [0.5, 0.25]}).set_index("model")
    page = render_report(gd, evaluation=ev, title="Q3 cohorts")
    sec = _section(page, "evaluation")
    assert "ndcg@10" in sec and ">model<" in sec and "0.25" in sec
    assert "<title>Q3 cohorts</title>" in page and "<h1>Q3 cohorts</h1>" in page


def test_evaluation_missing_values_and_index_clash(gd):
    # the CLI's rows: one per model, a metric may be missing; here also an index named like a column
    rows = pd.DataFrame([{"model": "popularity", "ndcg@10": None, "users": 5},
                         {"model": "group", "ndcg@10": 0.125, "users": 5}])
    sec = _section(render_report(gd, evaluation=rows.set_index(rows["model"])), "evaluation")
    assert "popularity" in sec and "0.125" in sec and "None" not in sec and "nan" not in sec.lower()


def test_empty_evaluation_and_timings(gd):
    page = render_report(gd, evaluation=pd.DataFrame(), timings={})
    assert "evaluation table is empty" in _section(page, "evaluation")
    assert "<b>0.00</b>" in _section(page, "timings")


def test_k_curve_section_only_with_auto(shop):
    gd = GroupDiscovery(n_groups="auto", k_range=range(2, 5), random_state=0).fit(shop.interactions)
    assert gd.k_curve_ is not None
    page = render_report(gd, max_points=200)
    sec = _section(page, "k-curve")
    assert len(PNG_URI.findall(sec)) == 1
    assert f"k = {gd.n_groups_}" in sec
    for kk in gd.k_curve_["k"]:
        assert f"<td class=num>{kk}</td>" in sec
    assert 'href="#k-curve"' in page
    # the note explains the criterion that chose k: held-out likelihood by default, the silhouette without refine
    assert "one-standard-error rule" in sec and "Silhouette" not in sec
    plain = GroupDiscovery(n_groups="auto", k_range=range(2, 5), refine=None, random_state=0).fit(shop.interactions)
    sec = _section(render_report(plain, max_points=200), "k-curve")
    assert "Silhouette" in sec and "one-standard-error" not in sec


def test_prior_section_shows_the_held_out_choice(shop):
    """With item categories the default chooses the mixture's prior on held-out items: the page shows the table
    and which prior was kept; without categories (or with a fixed prior) there is no such section."""
    gd = GroupDiscovery(n_groups=4, random_state=0).fit(shop.interactions)
    assert gd.category_curve_ is not None
    page = render_report(gd, max_points=200)
    sec = _section(page, "prior")
    assert 'href="#prior"' in page and "one" in sec and "standard error" in sec
    assert sec.count("<tr>") >= len(gd.category_curve_)
    kept = "the background prior" if gd.category_prior_ is None else f"strength {gd.category_prior_:g}"
    assert kept in sec
    fixed = GroupDiscovery(n_groups=4, random_state=0, category_prior=None).fit(shop.interactions)
    assert 'id="prior"' not in render_report(fixed, max_points=200)


def test_hostile_strings_are_escaped(shop):
    X = shop.interactions
    items = X.items.copy()
    items["title"] = [f'<script>alert({j})</script> "q" & $x$' for j in range(len(items))]
    items["categories"] = [[f"<b>zz{j % 3}</b>$1$"] for j in range(len(items))]
    users = X.users.copy()
    users["device"] = "<img src=x onerror=alert(2)>"
    Xh = dataclasses.replace(X, items=items, users=users)
    gd = GroupDiscovery(n_groups=2, random_state=0).fit(Xh)
    hostile_eval = pd.DataFrame({"model": ["<script>alert(3)</script>"], "ndcg@10": [0.5]})
    page = render_report(gd, evaluation=hostile_eval, timings={"<i>stage</i>": 1.0},
                         title="<script>alert(4)</script>", data_name="<u>data</u>")
    low = page.lower()
    assert "<script" not in low and "<img src=x" not in low and "<b>zz" not in page
    assert "<u>" not in page and "<i>stage" not in page
    assert re.search(r"&lt;script&gt;alert\(\d+\)&lt;/script&gt; &quot;q&quot; &amp; \$x\$", page)  # top items
    assert "&lt;b&gt;zz" in page and "&lt;script&gt;alert(3)" in page and "&lt;i&gt;stage" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert len(_pngs(page)) == 2 + gd.n_groups_  # '$' in labels does not break matplotlib


# --------------------------------------------------------------- edge cases
def _check_page(page: str, n_groups: int) -> None:
    ids = SECTION.findall(page)
    assert {"overview", "quality", "sizes", "map", "groups"} <= set(ids)
    assert [i for i in ids if re.fullmatch(r"group-\d+", i)] == [f"group-{g}" for g in range(n_groups)]
    for b in _pngs(page):
        assert b[:8] == b"\x89PNG\r\n\x1a\n"


def test_noise_group(shop):
    n = shop.interactions.n_users
    labels = np.r_[np.full(25, -1), np.arange(n - 25) % 3]
    gd = GroupDiscovery(clusterer=_FixedClusterer(labels), random_state=0).fit(shop.interactions)
    page = render_report(gd)
    _check_page(page, 3)
    card = _section(page, "group-noise")
    assert "25 users" in card and "noise" in card.lower()
    assert 'href="#group-noise"' in _section(page, "overview")
    assert "unassigned" in _section(page, "header")


def test_all_noise(shop):
    n = shop.interactions.n_users
    gd = GroupDiscovery(clusterer=_FixedClusterer(np.full(n, -1)), random_state=0).fit(shop.interactions)
    assert gd.n_groups_ == 0
    page = render_report(gd)
    _check_page(page, 0)
    assert f"{n:,} users" in _section(page, "group-noise")


def test_many_groups_cards_without_charts(shop):
    n = shop.interactions.n_users
    gd = GroupDiscovery(clusterer=_FixedClusterer(np.arange(n) % 61), random_state=0).fit(shop.interactions)
    page = render_report(gd, max_points=100)
    _check_page(page, 61)
    assert len(_pngs(page)) == 2  # sizes and map only
    card = _section(page, "group-60")
    assert "Behaviour vs all users" not in card and "<th class=num>group mean</th>" in card
    assert len(set(re.findall(r'class="swatch" style="background:(#[0-9a-f]{6})"', _section(page, "overview")))) == 61


def test_one_group(shop):
    gd = GroupDiscovery(n_groups=1, random_state=0).fit(shop.interactions)
    page = render_report(gd)
    _check_page(page, 1)
    assert "1 group of" in page and "silhouette" not in _section(page, "header")


def test_no_side_data_no_events(shop):
    X = Interactions.from_sparse(shop.interactions.matrix)  # no items, users or events
    gd = GroupDiscovery(n_groups=3, random_state=0).fit(X)
    page = render_report(gd)
    _check_page(page, 3)
    card = _section(page, "group-0")
    assert "Top categories" not in card and "Top items" in card and "Keywords" not in card
    assert "user features" not in card.lower()
    assert "top items" in _section(page, "overview")


def test_tiny_data():
    M = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1.0]]))
    with pytest.raises(ValueError, match="n_groups=8 is larger than the number of users"):  # issue 14: no silent cap
        GroupDiscovery(n_groups=8, random_state=0).fit(Interactions.from_sparse(M))
    gd = GroupDiscovery(n_groups=3, random_state=0).fit(Interactions.from_sparse(M))
    page = render_report(gd)
    _check_page(page, gd.n_groups_)
    assert "all 3 users shown" in page


@pytest.mark.parametrize("dim", [1, 2])
def test_low_dimensional_embeddings(shop, dim):
    gd = GroupDiscovery(_ProjEncoder(dim), n_groups=2 if dim == 1 else 3, random_state=0).fit(shop.interactions)
    assert gd.embeddings_.shape[1] == dim
    page = render_report(gd)
    _check_page(page, gd.n_groups_)  # 1-D spherical K-means finds at most 2 directions
    assert ("1-dimensional user embeddings, spread vertically by random jitter" if dim == 1
            else "projection of the 2-dimensional user embeddings") in page


def test_sampling_is_deterministic(gd):
    from cohortrec.report import _map_plot

    args = (gd.embeddings_, gd.labels_, gd.centroids_, ["#1f77b4", "#ff7f0e", "#2ca02c"], ["a", "b", "c"], 50)
    a, b, c = (_map_plot(*args, seed) for seed in (1, 1, 2))
    assert a == b and a[0] != c[0] and a[1] == c[1] == 50
    assert _map_plot(*args[:5], 10_000, 0)[1] == gd.interactions_.n_users
    sec = _section(render_report(gd, max_points=50, random_state=1), "map")
    assert "a random sample of 50 of 300 users" in sec


def test_write_report(tmp_path, gd):
    out = write_report(tmp_path / "new" / "report.html", gd, data_name="x")
    assert out == tmp_path / "new" / "report.html" and out.is_file()
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and 'id="map"' in text
    assert not list(out.parent.glob("*.tmp"))
    out2 = write_report(str(out), gd)  # replaces, accepts str
    assert isinstance(out2, Path) and "User groups in interactions" in out2.read_text(encoding="utf-8")


def test_leaves_matplotlib_state_alone(gd):
    """No pyplot import, no backend switch and rcParams restored after rendering."""
    import matplotlib as mpl

    def rc():  # dict.__getitem__: reading rcParams["backend"] normally resolves (and may switch) it
        return {k: repr(dict.__getitem__(mpl.rcParams, k)) for k in mpl.rcParams}

    had_pyplot = "matplotlib.pyplot" in sys.modules
    before = rc()
    assert 'src="data:image/png;base64,' in render_report(gd)
    after = rc()
    assert after == before, [k for k in before if after.get(k) != before[k]]
    if not had_pyplot:  # (another test module may have imported it already)
        assert "matplotlib.pyplot" not in sys.modules


# --------------------------------------------------------------- bad input
def test_bad_discovery(gd):
    with pytest.raises(TypeError, match="discovery must be a fitted cohortrec.GroupDiscovery, got str"):
        render_report("groups")
    with pytest.raises(NotFittedError, match="discovery is not fitted"):
        render_report(GroupDiscovery())
    assert issubclass(NotFittedError, ValueError)

    copy = GroupDiscovery(n_groups=3)
    copy.__dict__.update(gd.__dict__)
    copy.embeddings_ = None  # e.g. a model saved without its training data
    with pytest.raises(ValueError, match="discovery holds no training data"):
        render_report(copy)


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"evaluation": [1, 2]}, TypeError, "evaluation must be a pandas DataFrame"),
    ({"timings": [1.0]}, TypeError, "timings must be a mapping"),
    ({"timings": {"fit": "2s"}}, TypeError, r"timings\['fit'\] must be a number"),
    ({"timings": {"fit": -1.0}}, ValueError, r"timings\['fit'\] must be a finite number"),
    ({"timings": {"fit": float("nan")}}, ValueError, r"timings\['fit'\]"),
    ({"title": 3}, TypeError, "title must be a str"),
    ({"data_name": b"x"}, TypeError, "data_name must be a str"),
    ({"max_points": 0}, ValueError, "max_points must be >= 1"),
    ({"max_points": 10.5}, TypeError, "max_points must be an integer"),
    ({"max_points": True}, TypeError, "max_points must be an integer"),
    ({"random_state": "seed"}, TypeError, "random_state must be"),
])
def test_bad_options(gd, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        render_report(gd, **kwargs)


def test_bad_path(tmp_path, gd):
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        write_report(3, gd)
    with pytest.raises(ValueError, match="path must be a file"):
        write_report(tmp_path, gd)


# ---------------------------------------------------------------- real data
ML_SMALL = Path(os.environ.get("COHORTREC_DATA", "/work/shared/data")) / "ml-latest-small"


@pytest.mark.skipif(not (ML_SMALL / "ratings.csv").is_file(), reason="shared/data/ml-latest-small not present")
def test_movielens_report(tmp_path):
    from cohortrec.datasets import load_movielens

    X = load_movielens(ML_SMALL).to_interactions()
    gd = GroupDiscovery(n_groups=4, random_state=0).fit(X)
    out = write_report(tmp_path / "report.html", gd, data_name="ml-latest-small")
    page = out.read_text(encoding="utf-8")
    _check_page(page, 4)
    assert "610" in _section(page, "header") and "ml-latest-small" in page
    genres = {"Drama", "Comedy", "Action", "Thriller", "Romance", "Adventure", "Crime", "Sci-Fi", "Horror",
              "Fantasy", "Children", "Animation", "Mystery", "Documentary", "War", "Musical", "Western",
              "IMAX", "Film-Noir"}
    cells = re.findall(r"<td>([^<]*)</td></tr>", _section(page, "overview"))  # top-categories column
    assert len(cells) == 4 and all(set(c.split(", ")) <= genres for c in cells)


# ------------------------------------------------------------------ browser
_PROBE = """<script>window.addEventListener("load", () => {
  let ok = 0;
  for (const im of document.images) {
    if (im.complete && im.naturalWidth > 0) ok++; else console.error("broken image " + im.alt);
  }
  const ext = performance.getEntriesByType("resource").map(e => e.name).filter(u => !u.startsWith("data:"));
  document.body.setAttribute("data-images-ok", String(ok));
  document.body.setAttribute("data-external", String(ext.length));
});</script>"""
_CONSOLE = re.compile(r"CONSOLE[(:]\d+|Uncaught", re.IGNORECASE)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium (chromium, chromium-browser or google-chrome) on PATH")


def _browse(page: str, tmp_path: Path) -> tuple[str, list[str]]:
    """Load ``page`` (with a probe that checks images and resource loads) in headless Chromium.

    Returns the DOM after the load event and the console lines Chromium logged.
    """
    html_path = tmp_path / "page.html"
    html_path.write_text(page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    cmd = [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000", "--dump-dom",
           html_path.as_uri()]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("headless Chromium did not finish within 90 s")
    assert "<body" in res.stdout, f"Chromium dumped no DOM (rc={res.returncode}): {res.stderr[-2000:]}"
    return res.stdout, [ln for ln in res.stderr.splitlines() if _CONSOLE.search(ln)]


def test_browser_renders_report(page, tmp_path):
    dom, console = _browse(page, tmp_path)
    assert console == []
    ids = set(re.findall(r'\bid="([^"]+)"', dom))
    assert {"header", "overview", "quality", "sizes", "map", "groups", "evaluation", "timings",
            "group-0", "group-1", "group-2"} <= ids
    n_img = page.count("<img ")
    assert re.search(rf'data-images-ok="{n_img}"', dom), "every image decodes in the browser"
    assert 'data-external="0"' in dom, "the page loads no external resource"
    assert "<script>alert" not in dom


def test_browser_check_catches_errors(tmp_path):
    """The browser check fails on a page with a script error, a broken image and an external stylesheet."""
    broken = ('<!DOCTYPE html><html><head><link rel="stylesheet" href="https://cdn.example.org/a.css"></head>'
              '<body><section id="map"><img alt="bad" src="data:image/png;base64,AAAA"></section>'
              "<script>undefined_function()</script></body></html>")
    dom, console = _browse(broken, tmp_path)
    assert any("Uncaught ReferenceError" in ln for ln in console)
    assert any("broken image bad" in ln for ln in console)
    assert 'data-images-ok="0"' in dom and 'data-external="1"' in dom
