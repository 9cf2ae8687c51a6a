"""Tests of the CUDA path of :mod:`cohortrec.ops`.

(``dtype`` arguments are parametrized over float32/float64 by conftest.py.)

Three groups:

* **everywhere** (no GPU needed): without a usable GPU, ``device="cuda"``
  raises :class:`cohortrec.DeviceUnavailableError` saying why; device-resident
  inputs are recognised; the Python glue of the GPU path
  (:mod:`cohortrec.ops._cuda`) is exercised against a stand-in for the
  compiled module that computes with the CPU kernels (``_cuda_standin.py``),
  so the conversions it performs (index dtypes, contiguity, compressed
  column ids, which library the results come back in) are checked on every
  CI run; the tolerance of the tensor-core assignment check is itself
  checked against an emulation of TF32/BF16 rounding;
* **compiled module** (``cohortrec._cuda`` importable, GPU or not): its
  surface;
* **GPU** (skipped unless ``"cuda" in cohortrec.devices()``): CPU/GPU parity
  on random inputs -- bit-identical for the sparse ops, within rounding for
  K-means -- and against :mod:`cohortrec.ops.reference`; determinism; forced
  batching; CuPy / cupyx.scipy.sparse / PyTorch inputs staying on the device;
  errors (MemoryError with the size, CudaError naming the call).

The rest of the suite runs on every device in ``cohortrec.devices()`` (see
``conftest.py``), so on a GPU machine every op test also runs with
``device="cuda"``. ``pytest -p _cuda_standin`` (``benchmarks/gpu/check.sh
--dry-run``) installs the stand-in for the whole session: the GPU group then
runs on the CPU (tests that need the real module skip).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import cohortrec
from _cuda_standin import StandIn
from _helpers import check_cosine, check_kmeans_assign, check_kmeans_update, check_topk_scores, random_csr
from cohortrec import DeviceUnavailableError, ops
from cohortrec.ops import _backend, reference
from cohortrec.ops import _cuda as gpu

HAS_CUDA = "cuda" in cohortrec.devices()
needs_gpu = pytest.mark.skipif(
    not HAS_CUDA, reason=f"no usable CUDA device: {_backend.cuda_unavailable_reason() or 'unknown'}")


def _hooks_installed() -> bool:
    """Whether the ops dispatch to cohortrec.ops._cuda (the integration hooks)."""
    from cohortrec.ops import _cosine, _kmeans, _topk_scores
    return all("_cuda." in inspect.getsource(m) for m in (_cosine, _kmeans, _topk_scores))


needs_hooks = pytest.mark.skipif(not _hooks_installed(),
                                 reason="cohortrec.ops does not dispatch to the CUDA path yet")


# ===========================================================================
# everywhere
# ===========================================================================
def _all_ops_on(device):
    A = random_csr(np.random.default_rng(0), 6, 5, density=0.5)
    X = np.random.default_rng(1).standard_normal((6, 3))
    return [
        lambda: ops.cosine_topk(A, k=2, device=device),
        lambda: ops.topk_scores(A, A.T.tocsr(), n=2, device=device),
        lambda: ops.kmeans_assign(X, X[:2], device=device),
        lambda: ops.kmeans_update(X, np.zeros(6, dtype=np.int64), 2, device=device),
    ]


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is available")
def test_cuda_unavailable_raises_with_reason():
    assert cohortrec.devices() == ["cpu"]
    reason = _backend.cuda_unavailable_reason()
    assert reason, "a missing CUDA device needs a reason"
    for call in _all_ops_on("cuda"):
        with pytest.raises(DeviceUnavailableError) as info:
            call()
        msg = str(info.value)
        assert "device='cuda'" in msg and (reason in msg or "no CUDA kernel" in msg), msg
    for call in _all_ops_on("auto"):  # auto falls back to the CPU without a fuss
        call()


def test_host_arrays_are_not_device_arrays():
    A = sp.random(4, 3, density=0.5, format="csr")
    for x in (None, np.ones(3), A, A.tocoo(), [1, 2], 3.0):
        assert not gpu.is_device_array(x)
    assert not gpu.on_device(A, None, np.ones(2))


class _FakeDeviceArray:
    """Looks like a CUDA array (exposes __cuda_array_interface__), holds nothing."""

    __cuda_array_interface__ = {"shape": (2, 2), "typestr": "<f4", "data": (0, False), "version": 3}


def test_device_inputs_need_cuda():
    x = _FakeDeviceArray()
    assert gpu.is_device_array(x) and gpu.on_device(None, x)
    with pytest.raises(ValueError, match="device='cpu'"):
        gpu.kmeans_assign_device(x, x, device="cpu")
    if not HAS_CUDA:
        with pytest.raises(DeviceUnavailableError, match="CUDA arrays"):
            gpu.kmeans_assign_device(x, x, device="auto")
        with pytest.raises(DeviceUnavailableError):
            gpu.cosine_topk_device(x, None, k=3, threshold=None, exclude_self=True, device="cuda")


def test_precision_values():
    assert gpu.check_precision("tf32") == "tf32"
    with pytest.raises(ValueError, match="precision"):
        gpu.check_precision("fp16")


# --------------------------------------------- the glue, on a CPU stand-in
@pytest.fixture
def stand_in(monkeypatch):
    """The compiled module's API computed by the CPU kernels (tests/_cuda_standin.py)."""
    fake = StandIn()
    monkeypatch.setattr(_backend, "_cuda_status", lambda: (fake, ""))
    return fake


def test_glue_direct_calls(stand_in, rng):
    """The host-array functions of ops._cuda, called as the ops call _core."""
    A = random_csr(rng, 30, 3_000_000_000, density=3e-9, index_dtype=np.int64, max_row_nnz=6,
                   powerlaw=True)
    a = (A.indptr.astype(np.int64), A.indices, A.data)
    # column ids >= 2**31 are renumbered by the glue (the kernels take int32)
    got = gpu.cosine_topk(*a, 30, A.shape[1], None, None, None, 30, 5, None, True)
    used = np.unique(A.indices)
    Ac = sp.csr_matrix((A.data, np.searchsorted(used, A.indices), A.indptr), shape=(30, len(used)))
    want = stand_in.core.cosine_topk(Ac.indptr.astype(np.int64), Ac.indices.astype(np.int32), Ac.data, 30,
                                     len(used), None, None, None, 30, 5, None, True, 1)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # topk_scores with item ids >= 2**31: items come back in the caller's ids
    W = random_csr(rng, 8, 30, density=0.3)
    items = np.full((8, 4), -1, np.int64)
    scores = np.full((8, 4), -np.inf)
    gpu.topk_scores(W.indptr, W.indices, W.data, 8, 30, A.indptr, A.indices, A.data, A.shape[1], None, None,
                    items, scores)
    ref_items, ref_scores = reference.topk_scores(W, A, n=4)
    np.testing.assert_array_equal(items, ref_items)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-12)
    # strided dense X is made contiguous
    X = np.asfortranarray(rng.standard_normal((20, 4)))
    labels, sq = np.empty(20, np.int64), np.empty(20)
    gpu.kmeans_assign_dense(X, X[:3].copy(), labels, sq, 1, precision="tf32")
    assert labels[:3].tolist() == [0, 1, 2]
    assert stand_in.calls == ["cosine_topk", "topk_scores", "kmeans_assign_dense"]


@needs_hooks
def test_glue_through_ops(stand_in, rng, dtype):
    """device='cuda' goes through ops._cuda and gives the CPU results."""
    A = random_csr(rng, 40, 25, density=0.2, dtype=dtype, index_dtype=np.int64)
    B = random_csr(rng, 30, 25, density=0.2, dtype=dtype)
    res = ops.cosine_topk(A, B, k=4, threshold=0.1, device="cuda")
    check_cosine(res, A, B, k=4, threshold=0.1)
    R = B.T.tocsr()  # 25 x 30
    E = random_csr(rng, 40, 30, density=0.2, explicit_zeros=0.3)
    items, scores = ops.topk_scores(A, R, n=5, exclude=E, device="cuda")
    check_topk_scores(items, scores, A, R, n=5, exclude=E)
    X = rng.standard_normal((50, 6)).astype(dtype)
    C = X[:4].copy()
    for Xv in (X, sp.csr_matrix(X)):
        labels, sq = ops.kmeans_assign(Xv, C, device="cuda", precision="bf16")
        check_kmeans_assign(labels, sq, Xv, C)
        lab = rng.integers(0, 4, 50)
        sums, counts = ops.kmeans_update(Xv, lab, 4, device="cuda")
        check_kmeans_update(sums, counts, Xv, lab, 4)
    assert set(stand_in.calls) == {"cosine_topk", "topk_scores", "kmeans_assign_dense", "kmeans_assign_csr",
                                   "kmeans_update_dense", "kmeans_update_csr"}
    with pytest.raises(ValueError, match="X contains NaN"):
        ops.kmeans_assign(np.full((3, 2), np.nan, dtype), C[:, :2], device="cuda")


class _CpuTorch(gpu._Torch):
    """The torch adapter of ops._cuda with "cuda" replaced by the CPU (for the stand-in's *_ptr ops)."""

    def device_of(self, x) -> int:
        return 0

    def device(self, dev: int):
        return self.t.device("cpu")

    def context(self, dev: int):
        return contextlib.nullcontext()

    def stream(self, dev: int) -> int:
        return 0


@pytest.fixture
def torch_on_cpu(stand_in, monkeypatch):
    """CPU torch tensors treated as device arrays, computed by the stand-in through raw pointers."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(gpu, "_Torch", _CpuTorch)
    real = gpu.is_device_array
    monkeypatch.setattr(gpu, "is_device_array", lambda x: isinstance(x, torch.Tensor) or real(x))
    return torch


@needs_hooks
def test_scipy_points_with_torch_arrays_give_torch(torch_on_cpu, stand_in, rng, dtype):
    """A scipy X next to torch centres / labels is copied into torch: torch results, never CuPy."""
    torch = torch_on_cpu
    X = rng.standard_normal((60, 7)).astype(dtype)
    X[rng.random(X.shape) < 0.5] = 0
    Xs = sp.csr_matrix(X)
    C = X[:4].copy()
    labels, sq = ops.kmeans_assign(Xs, torch.as_tensor(C), device="cuda")
    assert isinstance(labels, torch.Tensor) and isinstance(sq, torch.Tensor)
    check_kmeans_assign(labels.numpy(), sq.numpy(), Xs, C)
    lab = rng.integers(0, 4, 60)
    w = rng.random(60).astype(dtype)
    sums, counts = ops.kmeans_update(Xs, torch.as_tensor(lab), 4, sample_weight=w, device="cuda")
    assert isinstance(sums, torch.Tensor) and isinstance(counts, torch.Tensor)
    check_kmeans_update(sums.numpy(), counts.numpy(), Xs, lab, 4, w)
    assert stand_in.calls == ["kmeans_assign_csr_ptr", "kmeans_update_csr_ptr"]
    # the host checks still apply before anything is copied
    bad = Xs.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        ops.kmeans_assign(bad, torch.as_tensor(C), device="cuda")


# ------------------------------- tolerance of the tensor-core assignment
_MANTISSA_BITS = {"tf32": 10, "bf16": 7}


def _round_mantissa(a, bits):
    """float32 values rounded to `bits` explicit mantissa bits (nearest, ties away: cvt.rna)."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    drop = 23 - bits
    u = (u + (1 << (drop - 1))) & ~np.uint64((1 << drop) - 1)
    return u.astype(np.uint32).view(np.float32)


def _assign_tolerance(X, C, precision):
    """Bound on d(x, c_label) - min_j d(x, c_j) for precision "tf32" / "bf16".

    The kernel multiplies x - s and c - s, s = mean of C, rounded to
    TF32/BF16 (unit roundoff u = 2^-11 / 2^-8), accumulating in float32: each
    product x.c is off by at most (2u + d 2^-23) ||x - s|| ||c - s||, each
    distance by twice that, a difference of two distances by
    8 (u + d 2^-23) ||x - s|| max_j ||c_j - s||; plus 1e-5 (||x - s||^2 +
    max_j ||c_j - s||^2) for the float32 rounding of the distance formula.
    Without the shift the error scales with ||x|| ||c|| instead, which on
    uncentred data exceeds this bound (test_low_precision_tolerance_is_meaningful).
    """
    u = {"tf32": 2.0**-11, "bf16": 2.0**-8}[precision]
    X64, C64 = np.asarray(X, np.float64), np.asarray(C, np.float64)
    s = C64.mean(axis=0)
    xs = np.linalg.norm(X64 - s, axis=1)
    cs = np.linalg.norm(C64 - s, axis=1).max()
    return 8 * (u + X.shape[1] * 2.0**-23) * xs * cs + 1e-5 * (xs**2 + cs**2)


def _assign_gap(X, C, labels):
    """Exact d(x, c_label) - min_j d(x, c_j), in float64."""
    d2 = reference._kmeans_sq_distances(X, C)
    return d2[np.arange(len(X)), labels] - d2.min(axis=1), d2


def _emulated_low_precision_labels(X, C, precision, shift):
    s = C.astype(np.float64).mean(axis=0).astype(np.float32) if shift else np.zeros(X.shape[1], np.float32)
    xr = _round_mantissa(X - s, _MANTISSA_BITS[precision]).astype(np.float64)
    cr = _round_mantissa(C - s, _MANTISSA_BITS[precision]).astype(np.float64)
    cn = ((C.astype(np.float64) - s) ** 2).sum(axis=1).astype(np.float32)
    return np.argmin(cn[None, :] - np.float32(2) * (xr @ cr.T).astype(np.float32), axis=1)


def _uncentred(rng, offset):
    X = (rng.standard_normal((3000, 96)) + offset).astype(np.float32)
    return X, X[:70] + np.float32(0.05)


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_low_precision_tolerance_is_meaningful(rng, precision):
    """On an emulation of the kernel's rounding: with the shift every label is within the
    tolerance of test_kmeans_assign_tensor_cores; without it (products of x and c rounded
    as they are) many are not, so that test catches a kernel that does not shift."""
    X, C = _uncentred(rng, 40.0)
    tol = _assign_tolerance(X, C, precision)
    gap, _ = _assign_gap(X, C, _emulated_low_precision_labels(X, C, precision, shift=True))
    assert np.all(gap <= tol)
    gap, _ = _assign_gap(X, C, _emulated_low_precision_labels(X, C, precision, shift=False))
    assert np.mean(gap > tol) > 0.1


# ===========================================================================
# the compiled module
# ===========================================================================
def _compiled():
    try:
        from cohortrec import _cuda as mod  # the extension module
    except ImportError as exc:
        pytest.skip(f"cohortrec was built without its CUDA module ({exc})")
    if getattr(mod, "IS_CPU_STANDIN", False):
        pytest.skip("cohortrec._cuda is the CPU stand-in (pytest -p _cuda_standin)")
    return mod


def test_compiled_module_surface():
    mod = _compiled()
    assert mod.has_kernels is True
    assert issubclass(mod.CudaError, RuntimeError)
    assert mod.runtime_version() >= 11000
    for name in ("cosine_topk", "topk_scores", "kmeans_assign_dense", "kmeans_assign_csr",
                 "kmeans_update_dense", "kmeans_update_csr", "cosine_topk_ptr", "topk_scores_ptr",
                 "kmeans_assign_dense_ptr", "kmeans_assign_csr_ptr", "kmeans_update_dense_ptr",
                 "kmeans_update_csr_ptr", "DeviceArray"):
        assert hasattr(mod, name), name
    if not HAS_CUDA:
        try:
            n = mod.device_count()
        except RuntimeError as exc:
            assert "cudaGetDeviceCount" in str(exc)
        else:
            assert n == 0 or not _backend._cuda_status()[0]


# ===========================================================================
# GPU
# ===========================================================================
def _csr_equal(a, b):
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.diff(a.indptr), np.diff(b.indptr))
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a.data, b.data)


@needs_gpu
@pytest.mark.parametrize("case", ["self", "cross", "threshold", "powerlaw", "ints"])
def test_cosine_parity(rng, dtype, case):
    """Same candidates, same order, same bits as the CPU kernel (x86-64)."""
    kw = dict(density=0.05, dtype=dtype, empty_rows=0.05, zero_rows=0.05, explicit_zeros=0.05)
    if case == "powerlaw":
        kw.update(powerlaw=True, density=0.02)
    if case == "ints":
        kw.update(kind="int", signed=False)
    A = random_csr(rng, 400, 300, **kw)
    B = random_csr(rng, 250, 300, **kw) if case == "cross" else None
    thr = 0.05 if case == "threshold" else None
    for k in (1, 10, 1000):
        gpu_res = ops.cosine_topk(A, B, k=k, threshold=thr, device="cuda")
        cpu_res = ops.cosine_topk(A, B, k=k, threshold=thr, device="cpu")
        _csr_equal(gpu_res, cpu_res)
        check_cosine(gpu_res, A, B, k=k, threshold=thr)


@needs_gpu
@pytest.mark.parametrize("with_exclude", [False, True])
def test_topk_scores_parity(rng, dtype, with_exclude):
    W = random_csr(rng, 300, 200, density=0.05, dtype=dtype, empty_rows=0.05)
    R = random_csr(rng, 200, 900, density=0.05, dtype=dtype, powerlaw=True, signed=False)
    E = random_csr(rng, 300, 900, density=0.02, explicit_zeros=0.3) if with_exclude else None
    for n in (1, 20, 500):
        gi, gs = ops.topk_scores(W, R, n=n, exclude=E, device="cuda")
        ci, cs = ops.topk_scores(W, R, n=n, exclude=E, device="cpu")
        np.testing.assert_array_equal(gi, ci)
        np.testing.assert_array_equal(gs, cs)
        check_topk_scores(gi, gs, W, R, n=n, exclude=E)


@needs_gpu
def test_sparse_ops_batched(rng, monkeypatch):
    """Tiny batches (many launches, rows split across batches) change nothing."""
    A = random_csr(rng, 300, 120, density=0.1, powerlaw=True)
    R = random_csr(rng, 120, 400, density=0.05)
    E = random_csr(rng, 300, 400, density=0.02)
    want_c = ops.cosine_topk(A, k=7, device="cuda")
    want_t = ops.topk_scores(A, R, n=9, exclude=E, device="cuda")
    monkeypatch.setenv("COHORTREC_CUDA_BATCH_SLOTS", "64")
    _csr_equal(ops.cosine_topk(A, k=7, device="cuda"), want_c)
    got_t = ops.topk_scores(A, R, n=9, exclude=E, device="cuda")
    np.testing.assert_array_equal(got_t[0], want_t[0])
    np.testing.assert_array_equal(got_t[1], want_t[1])


@needs_gpu
@pytest.mark.parametrize("shape", [(3000, 8, 5), (2000, 64, 40), (1500, 130, 300), (700, 3, 1)])
@pytest.mark.parametrize("sparse", [False, True])
def test_kmeans_assign_parity(rng, dtype, shape, sparse):
    n, d, k = shape
    X = (rng.standard_normal((n, d)) + 2.0).astype(dtype)
    C = X[rng.choice(n, k, replace=False)] + rng.standard_normal((k, d)).astype(dtype) * 0.1
    Xv = sp.csr_matrix(X) if sparse else X
    labels, sq = ops.kmeans_assign(Xv, C, device="cuda")
    check_kmeans_assign(labels, sq, Xv, C)
    cpu_labels, _ = ops.kmeans_assign(Xv, C, device="cpu")
    assert np.mean(labels == cpu_labels) > 0.995  # other summation order: near-ties may differ
    again = ops.kmeans_assign(Xv, C, device="cuda")
    np.testing.assert_array_equal(again[0], labels)
    np.testing.assert_array_equal(again[1], sq)


@needs_gpu
@pytest.mark.parametrize("offset", [0.0, 40.0])
@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_kmeans_assign_tensor_cores(rng, precision, offset):
    """The chosen centre is the nearest up to the stated rounding bound, also on
    uncentred data (offset 40: ||x|| ~ 400 against gaps of order 1)."""
    X, C = _uncentred(rng, offset)
    labels, sq = ops.kmeans_assign(X, C, device="cuda", precision=precision)
    assert labels.dtype == np.int64 and sq.dtype == np.float32
    tol = _assign_tolerance(X, C, precision)
    gap, d2 = _assign_gap(X, C, labels)
    assert np.all(gap <= tol), f"{np.sum(gap > tol)} rows off by more than the tolerance"
    chosen = d2[np.arange(len(X)), labels]
    assert np.all(np.abs(sq.astype(np.float64) - chosen) <= tol)  # sq_dist is ||x - c||^2 (shift undone)
    assert np.all(sq >= 0)


@needs_gpu
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("shape", [(5000, 16, 7), (3000, 40, 300), (100, 5, 1000)])
def test_kmeans_update_parity_and_determinism(rng, dtype, sparse, shape):
    n, d, k = shape
    X = rng.standard_normal((n, d)).astype(dtype)
    if sparse:
        X[rng.random((n, d)) < 0.7] = 0
        X = sp.csr_matrix(X)
    labels = rng.integers(0, k, n)
    w = rng.random(n)
    for weights in (None, w):
        sums, counts = ops.kmeans_update(X, labels, k, sample_weight=weights, device="cuda")
        check_kmeans_update(sums, counts, X, labels, k, weights)
        cpu_sums, cpu_counts = ops.kmeans_update(X, labels, k, sample_weight=weights, device="cpu")
        np.testing.assert_allclose(sums, cpu_sums, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
        np.testing.assert_allclose(counts, cpu_counts, rtol=1e-6)
        again = ops.kmeans_update(X, labels, k, sample_weight=weights, device="cuda")
        assert again[0].tobytes() == sums.tobytes() and again[1].tobytes() == counts.tobytes()


@needs_gpu
def test_kmeans_update_nonfinite(rng):
    X = rng.standard_normal((50, 3))
    X[7, 1] = 1e308
    X[8, 1] = 1e308
    with pytest.raises(ValueError, match="X contains NaN or infinite values"):
        ops.kmeans_update(X, np.zeros(50, dtype=np.int64), 2, device="cuda")


@needs_gpu
def test_memory_error_names_size():
    mod = _compiled()
    # ||x||^2 of 2**40 rows in float64 (8 TiB): the first allocation fails.
    with pytest.raises(MemoryError, match=r"could not allocate \d+ bytes"):
        mod.kmeans_assign_dense_ptr("float32", 0, 2**40, 1, 0, 32, 0, 0, "fp32", 0, -1)


@needs_gpu
def test_csr_assign_wide_sparse_x(rng, dtype):
    """C^T is built for the columns X uses only (40 of 50,000 here); the results are those
    of the equivalent narrow problem: X on its used columns plus a zero column, C on the
    same columns plus sqrt(sum of its squares over the unused ones)."""
    d, k = 50_000, 40
    cols = np.sort(rng.choice(d, 40, replace=False))
    Xs = sp.random(500, 40, density=0.3, random_state=np.random.RandomState(1), dtype=dtype, format="csr")
    X = sp.csr_matrix((Xs.data, cols[Xs.indices], Xs.indptr), shape=(500, d))
    C = np.zeros((k, d), dtype)
    C[:, cols] = rng.standard_normal((k, 40)).astype(dtype)
    C[:, rng.choice(d, 50)] += rng.random((k, 50)).astype(dtype)  # unused columns still count in ||c||^2
    unused = np.ones(d, bool)
    unused[cols] = False
    X_eq = sp.hstack([Xs, sp.csr_matrix((500, 1), dtype=dtype)], format="csr")
    C_eq = np.hstack([C[:, cols], np.sqrt((C[:, unused].astype(np.float64) ** 2).sum(axis=1))[:, None]])
    labels, sq = ops.kmeans_assign(X, C, device="cuda")
    check_kmeans_assign(labels, sq, X_eq, C_eq.astype(dtype))
    Xfull = sp.csr_matrix(np.hstack([X[:, :100].toarray(), np.ones((500, 1), dtype)]))  # every column used
    check_kmeans_assign(*ops.kmeans_assign(Xfull, C[:, :101], device="cuda"), Xfull, C[:, :101])


@needs_gpu
def test_cuda_error_names_the_call():
    mod = _compiled()
    with pytest.raises(mod.CudaError, match=r"cudaSetDevice.*csrc/cuda/device\.cu:\d+"):
        mod.kmeans_update_dense_ptr("float32", 0, 1, 1, 0, 1, 0, 0, 0, 0, 10_000)


# ---------------------------------------------------- device-resident inputs
def _cupy():
    if not HAS_CUDA:
        pytest.skip(f"no usable CUDA device: {_backend.cuda_unavailable_reason()}")
    cupy = pytest.importorskip("cupy")
    pytest.importorskip("cupyx.scipy.sparse")
    return cupy


def _torch_cuda():
    if not HAS_CUDA:
        pytest.skip(f"no usable CUDA device: {_backend.cuda_unavailable_reason()}")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this torch build has no CUDA")
    return torch


@needs_hooks
def test_cupy_sparse_inputs(rng, dtype):
    cupy = _cupy()
    import cupyx.scipy.sparse as csp
    A = random_csr(rng, 200, 150, density=0.05, dtype=dtype)
    R = random_csr(rng, 150, 300, density=0.05, dtype=dtype)
    E = random_csr(rng, 200, 300, density=0.02, dtype=dtype)
    res = ops.cosine_topk(csp.csr_matrix(A), k=5, threshold=0.0)
    assert csp.isspmatrix_csr(res) and res.dtype == dtype
    _csr_equal(res.get(), ops.cosine_topk(A, k=5, threshold=0.0, device="cpu"))
    res = ops.cosine_topk(csp.csr_matrix(A), A[:50], k=5)  # mixed: the host matrix is copied over
    _csr_equal(res.get(), ops.cosine_topk(A, A[:50], k=5, device="cpu"))
    items, scores = ops.topk_scores(csp.csr_matrix(A), csp.csr_matrix(R), n=7, exclude=csp.csr_matrix(E))
    assert isinstance(items, cupy.ndarray) and isinstance(scores, cupy.ndarray)
    ci, cs = ops.topk_scores(A, R, n=7, exclude=E, device="cpu")
    np.testing.assert_array_equal(items.get(), ci)
    np.testing.assert_array_equal(scores.get(), cs)
    with pytest.raises(ValueError, match="device='cpu'"):
        ops.cosine_topk(csp.csr_matrix(A), k=5, device="cpu")


@needs_hooks
def test_cupy_dense_inputs(rng):
    cupy = _cupy()
    X = rng.standard_normal((500, 12)).astype(np.float32)
    C = X[:6].copy()
    labels, sq = ops.kmeans_assign(cupy.asarray(X), cupy.asarray(C))
    assert isinstance(labels, cupy.ndarray) and labels.dtype == np.int64 and sq.dtype == np.float32
    check_kmeans_assign(labels.get(), sq.get(), X, C)
    labels2, _ = ops.kmeans_assign(cupy.asarray(X), C)  # host centres are copied over
    np.testing.assert_array_equal(labels2.get(), labels.get())
    lab = rng.integers(0, 6, 500)
    sums, counts = ops.kmeans_update(cupy.asarray(X), cupy.asarray(lab), 6)
    assert isinstance(sums, cupy.ndarray)
    check_kmeans_update(sums.get(), counts.get(), X, lab, 6)
    with pytest.raises(ValueError, match="labels must lie"):
        ops.kmeans_update(cupy.asarray(X), cupy.asarray(lab) + 1, 6)
    Xbad = cupy.asarray(X)
    Xbad[3, 3] = cupy.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        ops.kmeans_assign(Xbad, C)


@needs_hooks
def test_torch_inputs(rng):
    torch = _torch_cuda()
    X = rng.standard_normal((400, 10))
    C = X[:5].copy()
    Xt = torch.as_tensor(X, device="cuda")
    labels, sq = ops.kmeans_assign(Xt, torch.as_tensor(C, device="cuda"))
    assert isinstance(labels, torch.Tensor) and labels.is_cuda and labels.dtype == torch.int64
    assert sq.dtype == torch.float64
    check_kmeans_assign(labels.cpu().numpy(), sq.cpu().numpy(), X, C)
    Xf = torch.as_tensor(X.astype(np.float32), device="cuda").t().contiguous().t()  # strided view
    labels_f, sq_f = ops.kmeans_assign(Xf, C)
    assert sq_f.dtype == torch.float32
    lab = torch.as_tensor(rng.integers(0, 5, 400), device="cuda")
    sums, counts = ops.kmeans_update(Xt, lab, 5, sample_weight=torch.rand(400, device="cuda", dtype=torch.float64))
    assert isinstance(sums, torch.Tensor) and sums.is_cuda and sums.shape == (5, 10)
    with pytest.raises(TypeError, match="labels must be integers"):
        ops.kmeans_update(Xt, lab.double(), 5)


@needs_gpu
def test_device_array_interface():
    cupy = _cupy()
    mod = _compiled()
    A = cupy.asarray(np.array([0, 1, 2], dtype=np.int64))
    ind = cupy.asarray(np.array([0, 0], dtype=np.int32))
    val = cupy.asarray(np.array([1.0, 2.0], dtype=np.float32))
    stream = cupy.cuda.get_current_stream().ptr
    ip, ix, dv = mod.cosine_topk_ptr("float32", A.data.ptr, ind.data.ptr, val.data.ptr, 2, 1, 2, 0, 0, 0, 2, 2,
                                     True, 5, None, False, stream, int(A.device.id))
    assert ip.__cuda_array_interface__["typestr"] == "<i8" and len(ip) == 3
    got = cupy.asarray(dv)
    np.testing.assert_allclose(got.get(), [1, 1, 1, 1])
    del ip, ix, dv  # the CuPy view keeps the memory alive
    np.testing.assert_allclose(got.get(), [1, 1, 1, 1])


@needs_gpu
def test_env_device_selection(monkeypatch):
    monkeypatch.setenv("COHORTREC_CUDA_DEVICE", "0")
    assert gpu._host_device() == 0
    A = random_csr(np.random.default_rng(3), 20, 10, density=0.3)
    check_cosine(ops.cosine_topk(A, k=3, device="cuda"), A, None, k=3)
    assert os.environ["COHORTREC_CUDA_DEVICE"] == "0"


# ------------------------------------------- device="auto" and its self-check
class _WrongStandIn(StandIn):
    """A CUDA module that runs but answers wrong: every assignment goes to centre 0."""

    def kmeans_assign_dense(self, X, C, labels, sq, precision, device):
        super().kmeans_assign_dense(X, C, labels, sq, precision, device)
        labels[:] = 0


@pytest.fixture
def fresh_selfcheck(monkeypatch):
    from cohortrec.ops import _selfcheck

    monkeypatch.setattr(_selfcheck, "_results", {})
    return _selfcheck


def test_auto_selects_cuda_after_parity_check(monkeypatch, fresh_selfcheck, rng):
    fake = StandIn()
    monkeypatch.setattr(_backend, "_cuda_status", lambda: (fake, ""))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a passing check warns nothing
        assert _backend.resolve_device("auto", op="kmeans_assign", cuda_kernel=True) == "cuda"
    assert ops.auto_device() == ("cuda", "")
    assert {"cosine_topk", "topk_scores", "kmeans_assign_dense", "kmeans_assign_csr", "kmeans_update_dense",
            "kmeans_update_csr"} <= set(fake.calls)  # every op took part
    n_calls = len(fake.calls)
    _backend.resolve_device("auto", op="cosine_topk", cuda_kernel=True)
    assert len(fake.calls) == n_calls  # once per process


def test_auto_stays_on_cpu_when_parity_fails(monkeypatch, fresh_selfcheck, rng):
    fake = _WrongStandIn()
    monkeypatch.setattr(_backend, "_cuda_status", lambda: (fake, ""))
    with pytest.warns(RuntimeWarning, match="parity self-check.*kmeans_assign"):
        assert _backend.resolve_device("auto", op="cosine_topk", cuda_kernel=True) == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not at every call
        assert _backend.resolve_device("auto", op="kmeans_assign", cuda_kernel=True) == "cpu"
    dev, why = ops.auto_device()
    assert dev == "cpu" and "kmeans_assign (dense)" in why
    assert _backend.resolve_device("cuda", op="kmeans_assign", cuda_kernel=True) == "cuda"  # explicit still means CUDA
    X = rng.standard_normal((20, 3)).astype(np.float32)
    labels, _ = ops.kmeans_assign(X, X[:4].copy(), device="auto")  # runs on the CPU: right answer
    assert labels[:4].tolist() == [0, 1, 2, 3]
    from cohortrec.cli._info import collect_info

    assert "parity self-check" in collect_info()["auto device"]


def test_auto_stays_on_cpu_when_cuda_path_raises(monkeypatch, fresh_selfcheck):
    class Broken(StandIn):
        def cosine_topk(self, *args):
            raise RuntimeError("an illegal memory access was encountered")

    monkeypatch.setattr(_backend, "_cuda_status", lambda: (Broken(), ""))
    with pytest.warns(RuntimeWarning, match="illegal memory access"):
        assert _backend.resolve_device("auto", op="topk_scores", cuda_kernel=True) == "cpu"
