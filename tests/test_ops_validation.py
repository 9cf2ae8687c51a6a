"""Argument validation of the public ops: bad input raises ValueError or
TypeError whose message names the offending argument."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import cohortrec
from _helpers import random_csr
from cohortrec import ops


def name(arg: str) -> str:
    """Regex matching ``arg`` as a whole word in an error message."""
    return rf"(?<![A-Za-z0-9_]){arg}(?![A-Za-z0-9_])"


@pytest.fixture
def A(rng):
    return random_csr(rng, 6, 5, density=0.5)


@pytest.fixture
def B(rng):
    return random_csr(rng, 4, 5, density=0.5)


@pytest.fixture
def X(rng):
    return rng.standard_normal((10, 3))


@pytest.fixture
def C(rng):
    return rng.standard_normal((2, 3))


@pytest.fixture
def W(rng):
    return random_csr(rng, 5, 4, density=0.5)


@pytest.fixture
def R(rng):
    return random_csr(rng, 4, 7, density=0.5)


def with_value(M, value, pos=0):
    M = M.copy().astype(np.float64)
    M.data[pos] = value
    return M


# ---------------------------------------------------------------------------
# cosine_topk
# ---------------------------------------------------------------------------
def test_cosine_dense_inputs_are_type_errors(A, B, device):
    with pytest.raises(TypeError, match=name("A")):
        ops.cosine_topk(A.toarray(), device=device)
    with pytest.raises(TypeError, match=name("A")):
        ops.cosine_topk(A.toarray(), B, device=device)
    with pytest.raises(TypeError, match=name("B")):
        ops.cosine_topk(A, B.toarray(), device=device)
    with pytest.raises(TypeError, match=name("B")):
        ops.cosine_topk(A, np.asmatrix(B.toarray()), device=device)


def test_cosine_bad_data_dtype(A, B, device):
    with pytest.raises(TypeError, match=name("A")):
        ops.cosine_topk(A.astype(np.complex128), device=device)
    with pytest.raises(TypeError, match=name("B")):
        ops.cosine_topk(A, B.astype(np.complex64), device=device)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_cosine_non_finite(A, B, device, bad):
    with pytest.raises(ValueError, match=name("A")):
        ops.cosine_topk(with_value(A, bad), device=device)
    with pytest.raises(ValueError, match=name("A")):
        ops.cosine_topk(with_value(A, bad, -1), B, device=device)
    with pytest.raises(ValueError, match=name("B")):
        ops.cosine_topk(A, with_value(B, bad), device=device)
    with pytest.raises(ValueError, match=name("B")):
        ops.cosine_topk(A.astype(np.float32), with_value(B, bad).astype(np.float32),
                        device=device)


def test_cosine_shape_mismatch(A, device, rng):
    B = random_csr(rng, 4, 6, density=0.5)
    with pytest.raises(ValueError, match=name("B")):
        ops.cosine_topk(A, B, device=device)
    with pytest.raises(ValueError, match=name("B")):
        ops.cosine_topk(A, sp.csr_matrix((0, 4)), device=device)


@pytest.mark.parametrize("k", [-1, -100, 1.5, "3", None])
def test_cosine_bad_k(A, device, k):
    exc = ValueError if isinstance(k, (int, float)) else (ValueError, TypeError)
    with pytest.raises(exc, match=name("k")):
        ops.cosine_topk(A, k=k, device=device)


# ---------------------------------------------------------------------------
# kmeans_assign
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5,), (2, 3, 3), ()])
def test_assign_X_not_2d(C, device, shape):
    with pytest.raises(ValueError, match=name("X")):
        ops.kmeans_assign(np.ones(shape), C, device=device)


def test_assign_bad_centers(X, device):
    with pytest.raises(ValueError, match=name("centers")):
        ops.kmeans_assign(X, np.zeros((0, 3)), device=device)
    with pytest.raises(ValueError, match=name("centers")):
        ops.kmeans_assign(X, np.zeros((2, 4)), device=device)
    with pytest.raises(ValueError, match=name("centers")):
        ops.kmeans_assign(sp.csr_matrix(X), np.zeros((2, 2)), device=device)
    with pytest.raises((ValueError, TypeError), match=name("centers")):
        ops.kmeans_assign(X, np.zeros(3), device=device)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_assign_non_finite(X, C, device, bad):
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match=name("X")):
        ops.kmeans_assign(Xb, C, device=device)
    with pytest.raises(ValueError, match=name("X")):
        ops.kmeans_assign(Xb.astype(np.float32), C, device=device)
    with pytest.raises(ValueError, match=name("X")):
        ops.kmeans_assign(sp.csr_matrix(Xb), C, device=device)
    Cb = C.copy()
    Cb[1, 2] = bad
    with pytest.raises(ValueError, match=name("centers")):
        ops.kmeans_assign(X, Cb, device=device)


# ---------------------------------------------------------------------------
# kmeans_update
# ---------------------------------------------------------------------------
def test_update_bad_labels(X, device):
    with pytest.raises(TypeError, match=name("labels")):
        ops.kmeans_update(X, np.zeros(10, dtype=np.float64), 2, device=device)
    with pytest.raises(TypeError, match=name("labels")):
        ops.kmeans_update(X, np.zeros(10, dtype=np.float32), 2, device=device)
    with pytest.raises(ValueError, match=name("labels")):
        ops.kmeans_update(X, np.zeros(9, dtype=np.int64), 2, device=device)
    with pytest.raises(ValueError, match=name("labels")):
        ops.kmeans_update(X, np.zeros(11, dtype=np.int64), 2, device=device)
    for bad in (-1, 2, 1000):
        labels = np.zeros(10, dtype=np.int64)
        labels[7] = bad
        with pytest.raises(ValueError, match=name("labels")):
            ops.kmeans_update(X, labels, 2, device=device)
        with pytest.raises(ValueError, match=name("labels")):
            ops.kmeans_update(sp.csr_matrix(X), labels, 2, device=device)
    labels = np.full(10, 2**32, dtype=np.int64)  # would wrap to 0 as int32
    with pytest.raises(ValueError, match=name("labels")):
        ops.kmeans_update(X, labels, 2, device=device)
    labels = np.full(10, 255, dtype=np.uint8)
    with pytest.raises(ValueError, match=name("labels")):
        ops.kmeans_update(X, labels, 2, device=device)


@pytest.mark.parametrize("k", [0, -1])
def test_update_bad_n_clusters(X, device, k):
    with pytest.raises(ValueError, match=name("n_clusters")):
        ops.kmeans_update(X, np.zeros(10, dtype=np.int64), k, device=device)


def test_update_non_integer_n_clusters(X, device):
    with pytest.raises((ValueError, TypeError), match=name("n_clusters")):
        ops.kmeans_update(X, np.zeros(10, dtype=np.int64), 2.5, device=device)


@pytest.mark.parametrize("w", [
    np.full(10, -1.0), np.r_[np.ones(9), -1e-300], np.r_[np.ones(9), np.nan],
    np.r_[np.ones(9), np.inf], np.ones(9), np.ones(11)])
def test_update_bad_sample_weight(X, device, w):
    with pytest.raises(ValueError, match=name("sample_weight")):
        ops.kmeans_update(X, np.zeros(10, dtype=np.int64), 2, sample_weight=w,
                          device=device)


def test_update_X_checks(device):
    with pytest.raises(ValueError, match=name("X")):
        ops.kmeans_update(np.ones(5), np.zeros(5, dtype=np.int64), 2, device=device)
    Xb = np.ones((5, 2))
    Xb[2, 0] = np.nan
    with pytest.raises(ValueError, match=name("X")):
        ops.kmeans_update(Xb, np.zeros(5, dtype=np.int64), 2, device=device)


# ---------------------------------------------------------------------------
# topk_scores
# ---------------------------------------------------------------------------
def test_topk_shape_mismatch(W, R, device, rng):
    with pytest.raises(ValueError, match=name("R")):
        ops.topk_scores(W, random_csr(rng, 5, 7, density=0.5), device=device)
    with pytest.raises(ValueError, match=name("exclude")):
        ops.topk_scores(W, R, exclude=sp.csr_matrix((5, 6)), device=device)
    with pytest.raises(ValueError, match=name("exclude")):
        ops.topk_scores(W, R, exclude=sp.csr_matrix((4, 7)), device=device)


def test_topk_dense_inputs(W, R, device):
    # the contract requires sparse W, R, exclude (cosine_topk raises TypeError)
    with pytest.raises((TypeError, ValueError), match=name("W")):
        ops.topk_scores(W.toarray(), R, device=device)
    with pytest.raises((TypeError, ValueError), match=name("R")):
        ops.topk_scores(W, R.toarray(), device=device)
    with pytest.raises((TypeError, ValueError), match=name("exclude")):
        ops.topk_scores(W, R, exclude=np.zeros((5, 7)), device=device)


@pytest.mark.parametrize("n", [-1, 1.5, "2", None])
def test_topk_bad_n(W, R, device, n):
    exc = ValueError if isinstance(n, (int, float)) else (ValueError, TypeError)
    with pytest.raises(exc, match=name("n")):
        ops.topk_scores(W, R, n=n, device=device)


# ---------------------------------------------------------------------------
# common arguments: device and n_threads
# ---------------------------------------------------------------------------
def _calls(A, X, C, W, R):
    return {
        "cosine_topk": lambda **kw: ops.cosine_topk(A, k=3, **kw),
        "kmeans_assign": lambda **kw: ops.kmeans_assign(X, C, **kw),
        "kmeans_update": lambda **kw: ops.kmeans_update(X, np.zeros(10, np.int64), 2, **kw),
        "topk_scores": lambda **kw: ops.topk_scores(W, R, n=3, **kw),
    }


OPS = ["cosine_topk", "kmeans_assign", "kmeans_update", "topk_scores"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("bad", ["gpu", "", "cuda:0", "tpu"])
def test_bad_device(A, X, C, W, R, op, bad):
    with pytest.raises(ValueError, match=name("device")):
        _calls(A, X, C, W, R)[op](device=bad)


@pytest.mark.parametrize("op", OPS)
def test_cuda_unavailable(A, X, C, W, R, op):
    if "cuda" in cohortrec.devices():
        pytest.skip("cuda is available")
    with pytest.raises(Exception, match="cuda|CUDA"):
        _calls(A, X, C, W, R)[op](device="cuda")


@pytest.mark.parametrize("op", OPS)
def test_auto_device_works(A, X, C, W, R, op):
    _calls(A, X, C, W, R)[op](device="auto")
    _calls(A, X, C, W, R)[op]()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("bad", [0, -1, -8])
def test_bad_n_threads(A, X, C, W, R, device, op, bad):
    with pytest.raises(ValueError, match=name("n_threads")):
        _calls(A, X, C, W, R)[op](device=device, n_threads=bad)


@pytest.mark.parametrize("op", OPS)
def test_non_integer_n_threads(A, X, C, W, R, device, op):
    with pytest.raises((ValueError, TypeError), match=name("n_threads")):
        _calls(A, X, C, W, R)[op](device=device, n_threads=1.5)
