"""Damaged model files: each raises a ValueError that names the file and what is wrong.

Cases from issue 14: truncated, garbled, of the wrong model class, of a
future format version, with a tampered array shape. Consistency is checked
when the file is loaded, not at the first ``recommend``. No pickle anywhere.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from cohortrec import GroupDiscovery
from cohortrec._io import read_npz, write_npz
from cohortrec.encoders import SVDEncoder
from cohortrec.recommenders import EASE, GroupRecommender, ItemKNN, Popularity, UserKNN, load_model


def _data(seed=0, n=60, m=25):
    rng = np.random.default_rng(seed)
    X = sp.random(n, m, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    X.data[:] = 1.0
    return X


MODELS = [lambda: ItemKNN(k=5), lambda: UserKNN(k=5), lambda: EASE(), lambda: Popularity(),
          lambda: GroupRecommender(n_groups=3, k=5, random_state=0), lambda: EASE(solver="dual")]


def _rewrite(path, fn):
    """Apply ``fn(meta, arrays)`` to a saved .npz model and write it back."""
    meta, arrays = read_npz(path)
    fn(meta, arrays)
    write_npz(path, arrays, meta)


@pytest.fixture(params=range(len(MODELS)), ids=["ItemKNN", "UserKNN", "EASE", "Popularity", "GroupRecommender",
                                                      "EASE-dual"])
def saved(request, tmp_path):
    model = MODELS[request.param]().fit(_data())
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path


def test_roundtrip_still_works(saved):
    model, path = saved
    back = load_model(path)
    X = _data()
    want = model.recommend(np.arange(5), X[:5], N=5)[0]
    np.testing.assert_array_equal(back.recommend(np.arange(5), X[:5], N=5)[0], want)


def test_truncated_file(saved):
    _, path = saved
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="model.npz.*truncated or garbled"):
        load_model(path)


def test_garbled_file(saved):
    _, path = saved
    raw = bytearray(path.read_bytes())
    raw[40:200] = bytes(160)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="model.npz"):
        load_model(path)


def test_not_a_zip(tmp_path):
    path = tmp_path / "x.npz"
    path.write_text("hello")
    with pytest.raises(ValueError, match="x.npz.*not a readable"):
        load_model(path)


def test_garbled_header(saved):
    _, path = saved
    meta, arrays = read_npz(path)
    arrays["__meta__"] = np.asarray("{not json")
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="garbled header"):
        load_model(path)


def test_wrong_class(saved):
    model, path = saved
    other = ItemKNN if not isinstance(model, ItemKNN) else UserKNN
    with pytest.raises(TypeError, match=f"not a {other.__name__}"):
        other.load(path)
    _rewrite(path, lambda meta, arrays: meta.update({"class": "Pickle"}))
    with pytest.raises(ValueError, match="holds a 'Pickle'"):
        load_model(path)


def test_future_format(saved):
    _, path = saved
    _rewrite(path, lambda meta, arrays: meta.update({"format": 99}))
    with pytest.raises(ValueError, match="newer cohortrec.*format 99"):
        load_model(path)


def test_tampered_shape_is_caught_at_load(saved):
    _, path = saved

    def tamper(meta, arrays):
        arrays["user_items_.shape"] = np.asarray([3, 4], dtype=np.int64)

    _rewrite(path, tamper)
    with pytest.raises(ValueError, match="model.npz"):
        load_model(path)


def test_tampered_index_is_caught_at_load(saved):
    _, path = saved

    def tamper(meta, arrays):
        arrays["user_items_.indices"] = arrays["user_items_.indices"].copy()
        arrays["user_items_.indices"][0] = 10**6

    _rewrite(path, tamper)
    with pytest.raises(ValueError, match="model.npz.*out of range"):
        load_model(path)


def test_missing_state_array(saved):
    _, path = saved
    _rewrite(path, lambda meta, arrays: arrays.pop("user_items_.indptr"))
    with pytest.raises(ValueError, match="lacks the array 'user_items_.indptr'"):
        load_model(path)


def test_pickled_object_arrays_are_refused(saved):
    _, path = saved
    meta, arrays = read_npz(path)
    arrays["user_items_.data"] = np.array([object()] * 3, dtype=object)
    arrays["__meta__"] = np.asarray(json.dumps(meta))
    np.savez(path, **arrays)  # needs pickle to read back
    with pytest.raises(ValueError, match="model.npz"):
        load_model(path)


# ------------------------------------------------------------ GroupDiscovery
@pytest.fixture
def saved_discovery(tmp_path):
    gd = GroupDiscovery(encoder="svd", n_groups=3, random_state=0).fit(_data(1, 80, 30))
    folder = tmp_path / "gd"
    gd.save(folder)
    return gd, folder


def test_discovery_roundtrip(saved_discovery):
    gd, folder = saved_discovery
    back = GroupDiscovery.load(folder)
    np.testing.assert_array_equal(back.assign(_data(1, 80, 30)[:10]), gd.assign(_data(1, 80, 30)[:10]))


@pytest.mark.parametrize("damage", ["truncate_arrays", "garble_json", "future", "wrong_class", "labels_shape",
                                    "encoder_shape", "encoder_truncated", "matrix_index", "centroids_nan"])
def test_discovery_damage(saved_discovery, damage):
    _, folder = saved_discovery
    arrays_file, meta_file, enc_file = folder / "arrays.npz", folder / "discovery.json", folder / "encoder.npz"
    if damage == "truncate_arrays":
        arrays_file.write_bytes(arrays_file.read_bytes()[:100])
        match = "arrays.npz"
    elif damage == "garble_json":
        meta_file.write_text(meta_file.read_text()[:50])
        match = "discovery.json.*not valid JSON"
    elif damage in ("future", "wrong_class"):
        meta = json.loads(meta_file.read_text())
        meta.update({"format": 7} if damage == "future" else {"class": "KMeans"})
        meta_file.write_text(json.dumps(meta))
        match = "newer cohortrec" if damage == "future" else "holds a 'KMeans'"
    elif damage in ("labels_shape", "matrix_index", "centroids_nan"):
        _, arrays = read_npz(arrays_file)
        if damage == "labels_shape":
            arrays["labels"] = arrays["labels"][:5]
            match = "inconsistent: labels"
        elif damage == "matrix_index":
            arrays["matrix.indices"] = arrays["matrix.indices"].copy()
            arrays["matrix.indices"][-1] = 999
            match = "out of range"
        else:
            arrays["centroids"] = arrays["centroids"].copy()
            arrays["centroids"][0, 0] = np.nan
            match = "centroids"
        write_npz(arrays_file, arrays)
    elif damage == "encoder_shape":
        meta, arrays = read_npz(enc_file)
        arrays["components"] = arrays["components"][:, :-3]
        write_npz(enc_file, arrays, meta)
        match = "encoder.npz.*inconsistent"
    else:
        enc_file.write_bytes(enc_file.read_bytes()[:64])
        match = "encoder.npz"
    with pytest.raises(ValueError, match=match):
        GroupDiscovery.load(folder)


def test_svd_encoder_roundtrip_and_damage(tmp_path):
    enc = SVDEncoder(4, random_state=0).fit(_data(2))
    path = tmp_path / "enc.npz"
    enc.save(path)
    back = SVDEncoder.load(path)
    np.testing.assert_allclose(back.transform(_data(3)), enc.transform(_data(3)))
    meta, arrays = read_npz(path)
    meta["class"] = "GroupDiscovery"
    write_npz(tmp_path / "other.npz", arrays, meta)
    with pytest.raises(ValueError, match="holds a 'GroupDiscovery'"):
        SVDEncoder.load(tmp_path / "other.npz")
    meta["class"] = "SVDEncoder"
    meta["n_items"] = 7
    write_npz(tmp_path / "other.npz", arrays, meta)
    with pytest.raises(ValueError, match="inconsistent"):
        SVDEncoder.load(tmp_path / "other.npz")
