"""Public surface of :mod:`cohortrec.datasets`: lazy exports and ``Dataset``/``from_events``.

The loaders themselves are tested in ``test_loaders.py``; here we check that
every documented name is importable from the package (lazily, through
``_EXPORTS``), is the object defined in its submodule, and that ``Dataset``
and ``from_events`` work when reached through the public path.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cohortrec import datasets

DATA = Path(os.environ.get("COHORTREC_DATA", "/work/shared/data"))
EXPECTED = {"Dataset", "from_events", "load_csv", "load_lastfm_hetrec", "load_movielens",
            "load_parquet", "make_shop", "make_world", "world_grid"}


def test_exports_listed_and_resolve():
    assert set(datasets.__all__) == EXPECTED == set(datasets._EXPORTS)
    assert set(dir(datasets)) == EXPECTED
    for name in EXPECTED:
        obj = getattr(datasets, name)
        module = importlib.import_module(datasets._EXPORTS[name])
        assert obj is getattr(module, name), name


def test_from_import_dataset_and_from_events():
    from cohortrec.datasets import Dataset, from_events
    from cohortrec.datasets._loaders import Dataset as _Dataset
    from cohortrec.datasets._loaders import from_events as _from_events
    assert Dataset is _Dataset and from_events is _from_events


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Datasets'"):
        datasets.Datasets  # noqa: B018
    with pytest.raises(ImportError):
        from cohortrec.datasets import load_everything  # noqa: F401


def test_exports_are_lazy():
    """Importing the package does not import the loaders (pandas) until used."""
    code = ("import sys, cohortrec.datasets as d; "
            "assert 'cohortrec.datasets._loaders' not in sys.modules; "
            "d.Dataset; assert 'cohortrec.datasets._loaders' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_from_events_through_public_path():
    from cohortrec.datasets import Dataset, from_events
    ev = pd.DataFrame({"u": ["b", "a", "a", "c"], "i": [10, 10, 20, 30], "n": [1.0, 2.0, 3.0, 4.0]})
    ds = from_events(ev, user="u", item="i", value="n", name="tiny")
    assert isinstance(ds, Dataset)
    assert ds.name == "tiny"
    assert ds.shape == (3, 3)
    assert ds.user_ids.tolist() == ["a", "b", "c"] and ds.item_ids.tolist() == [10, 20, 30]
    assert isinstance(ds.user_items, sp.csr_matrix)
    np.testing.assert_array_equal(ds.user_items.toarray(),
                                  [[2.0, 3.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 4.0]])
    pos = ds.positives()
    assert pos.nnz == 4 and set(pos.data.tolist()) == {1.0}


def test_from_events_bad_column_named():
    from cohortrec.datasets import from_events
    ev = pd.DataFrame({"user_id": [1], "item_id": [2]})
    with pytest.raises((KeyError, ValueError), match="nope"):
        from_events(ev, value="nope")


@pytest.mark.skipif(not (DATA / "hetrec2011-lastfm-2k" / "user_artists.dat").is_file(),
                    reason="hetrec2011-lastfm-2k not available")
def test_real_loader_returns_public_dataset():
    ds = datasets.load_lastfm_hetrec(DATA / "hetrec2011-lastfm-2k")
    assert isinstance(ds, datasets.Dataset)
