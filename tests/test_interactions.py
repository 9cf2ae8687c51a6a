"""Interactions: construction from frames, sparse matrices and files; id maps; side data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cohortrec.interactions import Interactions


def _events():
    return pd.DataFrame({
        "u": ["b", "a", "a", "a", None, "c", "b"],
        "i": [2, 1, 1, 3, 1, 2, 2],
        "w": [1.0, 2.0, 3.0, np.nan, 1.0, -1.0, 1.0],
        "ev": ["view", "cart", "purchase", "view", "view", "view", "view"],
    })


def test_from_frame_aggregates_and_reports():
    X = Interactions.from_frame(_events(), user="u", item="i", weight="w", event="ev")
    assert list(X.user_ids) == ["a", "b"]  # c only had a negative weight, None was dropped
    assert list(X.item_ids) == [1, 2]
    np.testing.assert_allclose(X.matrix.toarray(), [[5.0, 0.0], [0.0, 1.0]])
    rep = X.cleaning_report.set_index("step")["rows_touched"]
    assert rep["missing ids"] == 1
    assert rep["non-finite weight"] == 1
    assert rep["negative values"] == 1
    assert rep["duplicate events"] == 1  # the two identical ("b", 2, 1.0, "view") rows
    assert rep["aggregate"] == 1
    assert X.events is not None and set(X.events.columns) >= {"user", "item", "event", "weight"}


def test_event_weights_and_clip_rule():
    X = Interactions.from_frame(_events(), user="u", item="i", event="ev",
                                event_weights={"view": 1, "cart": 3, "purchase": 5}, negative="clip")
    a = X.user_index("a")
    assert X.matrix[a, X.item_index(1)] == 8.0
    assert X.matrix[a, X.item_index(3)] == 1.0


@pytest.mark.parametrize("kind", ["polars", "pyarrow"])
def test_from_other_tables(kind):
    mod = pytest.importorskip(kind)
    df = pd.DataFrame({"user_id": [1, 1, 2], "item_id": ["x", "y", "x"]})
    table = mod.from_pandas(df) if kind == "polars" else mod.Table.from_pandas(df)
    X = Interactions.from_frame(table)
    assert X.shape == (2, 2) and X.nnz == 3


def test_from_sparse_and_lookup():
    M = sp.random(5, 4, density=0.5, format="csr", random_state=0)
    X = Interactions.from_sparse(M, user_ids=list("abcde"))
    assert X.shape == (5, 4)
    np.testing.assert_array_equal(X.user_index(["c", "a"]), [2, 0])
    assert X.user_index(["zz"], missing="ignore").tolist() == [-1]
    with pytest.raises(KeyError):
        X.user_index("zz")
    with pytest.raises(ValueError, match="user_ids"):
        Interactions.from_sparse(M, user_ids=list("abc"))
    with pytest.raises(ValueError, match="NaN"):
        Interactions.from_sparse(sp.csr_matrix(np.array([[np.nan]])))


def test_vocabulary_alignment_drops_unknown():
    df = pd.DataFrame({"user_id": [1, 1, 2], "item_id": ["x", "q", "y"]})
    X = Interactions.from_frame(df, item_ids=["x", "y", "z"])
    assert list(X.item_ids) == ["x", "y", "z"] and X.nnz == 2
    assert "unknown ids" in set(X.cleaning_report["step"])


def test_side_data_text_and_categories():
    df = pd.DataFrame({"user_id": [1, 2], "item_id": [10, 11]})
    items = pd.DataFrame({"item_id": [11, 10], "title": ["B", "A"], "categories": ["x|y", "y"]})
    X = Interactions.from_frame(df, items=items)
    assert X.item_text(("title", "categories")) == ["A y", "B x y"]
    C, names = X.item_categories()
    assert names == ["x", "y"]
    np.testing.assert_array_equal(C.toarray(), [[0, 1], [1, 1]])


def test_subset_and_files(tmp_path):
    df = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [1, 2, 2, 3], "t": [0, 1, 2, 3]})
    path = tmp_path / "ev.csv"
    df.to_csv(path, index=False)
    X = Interactions.from_files(path, time="t")
    assert X.shape == (3, 3)
    S = X.subset_users([2, 0])
    assert list(S.user_ids) == [3, 1] and S.events["user"].tolist() == [1, 1, 0]
    with pytest.raises(FileNotFoundError):
        Interactions.from_files(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="user="):
        Interactions.from_frame(df, user="nope")
