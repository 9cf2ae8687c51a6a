"""Threading behaviour of the ops.

* results do not depend on ``n_threads`` (bit-identical, also for the
  floating-point reductions of ``kmeans_update``);
* concurrent calls from several Python threads are safe;
* the GIL is released while a kernel runs.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

from _helpers import (
    check_cosine,
    check_kmeans_assign,
    check_kmeans_update,
    check_topk_scores,
    random_csr,
    with_index_dtype,
)
from cohortrec import ops

THREADS = [None, 1, 2, 3, 7]


def assert_csr_identical(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)
    assert np.array_equal(np.signbit(a.data), np.signbit(b.data))


def assert_arrays_identical(a, b) -> None:
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y), "results differ between thread counts"


# ---------------------------------------------------------------------------
# n_threads independence
# ---------------------------------------------------------------------------
def test_cosine_topk_thread_independent(device, dtype, index_dtype, rng):
    A = random_csr(rng, 600, 300, density=0.05, dtype=dtype, index_dtype=index_dtype,
                   powerlaw=True, empty_rows=0.05, zero_rows=0.02, kind="normal")
    B = random_csr(rng, 250, 300, density=0.05, dtype=dtype, index_dtype=index_dtype)
    base = ops.cosine_topk(A, k=10, threshold=-0.2, device=device, n_threads=1)
    check_cosine(base, A, None, k=10, threshold=-0.2)
    base_ab = ops.cosine_topk(A, B, k=10, device=device, n_threads=1)
    for t in THREADS:
        assert_csr_identical(ops.cosine_topk(A, k=10, threshold=-0.2, device=device,
                                             n_threads=t), base)
        assert_csr_identical(ops.cosine_topk(A, B, k=10, device=device, n_threads=t),
                             base_ab)


@pytest.mark.parametrize("sparse", [False, True])
def test_kmeans_assign_thread_independent(device, dtype, index_dtype, rng, sparse):
    X = rng.standard_normal((4000, 24)).astype(dtype)
    if sparse:
        X[rng.random(X.shape) < 0.7] = 0
        X = with_index_dtype(sp.csr_matrix(X), index_dtype)
    C = rng.standard_normal((19, 24)).astype(dtype)
    base = ops.kmeans_assign(X, C, device=device, n_threads=1)
    check_kmeans_assign(*base, X, C)
    for t in THREADS:
        assert_arrays_identical(ops.kmeans_assign(X, C, device=device, n_threads=t), base)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_update_bit_identical(device, dtype, index_dtype, rng, sparse, weighted):
    n, d, k = 20000, 9, 5
    # wide magnitudes make the float sums sensitive to the summation order
    X = (rng.standard_normal((n, d)) * 10.0 ** rng.uniform(-4, 4, (n, 1))).astype(dtype)
    if sparse:
        X[rng.random(X.shape) < 0.5] = 0
        X = with_index_dtype(sp.csr_matrix(X), index_dtype)
    labels = rng.integers(0, k, n).astype(index_dtype)
    w = rng.random(n) * 10.0 ** rng.uniform(-3, 3, n) if weighted else None
    base = ops.kmeans_update(X, labels, k, sample_weight=w, device=device, n_threads=1)
    check_kmeans_update(*base, X, labels, k, w)
    for t in THREADS:
        got = ops.kmeans_update(X, labels, k, sample_weight=w, device=device, n_threads=t)
        assert_arrays_identical(got, base)


@pytest.mark.parametrize("case", ["csr_wide", "dense_many_clusters"])
def test_kmeans_update_bit_identical_large_k_times_d(device, dtype, index_dtype, rng, case):
    # k * d beyond the small-problem path: rows are grouped by label and
    # summed in segments; several segments per cluster / several chunks
    if case == "csr_wide":
        n, d, k = 20000, 20000, 4
        X = random_csr(rng, n, d, density=5 / d, dtype=dtype, index_dtype=index_dtype,
                       kind="wide")
    else:
        n, d, k = 70000, 2, 40000
        X = (rng.standard_normal((n, d)) * 10.0 ** rng.uniform(-3, 3, (n, 1))).astype(dtype)
    labels = rng.integers(0, k, n).astype(index_dtype)
    w = rng.random(n) * 10.0
    base = ops.kmeans_update(X, labels, k, sample_weight=w, device=device, n_threads=1)
    check_kmeans_update(*base, X, labels, k, w)
    for t in (None, 2, 3, 7):
        got = ops.kmeans_update(X, labels, k, sample_weight=w, device=device, n_threads=t)
        assert_arrays_identical(got, base)


def test_topk_scores_thread_independent(device, dtype, index_dtype, rng):
    W = random_csr(rng, 500, 200, density=0.05, dtype=dtype, index_dtype=index_dtype,
                   empty_rows=0.05)
    R = random_csr(rng, 200, 800, density=0.03, dtype=dtype, index_dtype=index_dtype,
                   powerlaw=True)
    E = random_csr(rng, 500, 800, density=0.02, index_dtype=index_dtype)
    base = ops.topk_scores(W, R, n=15, exclude=E, device=device, n_threads=1)
    check_topk_scores(*base, W, R, n=15, exclude=E)
    for t in THREADS:
        assert_arrays_identical(
            ops.topk_scores(W, R, n=15, exclude=E, device=device, n_threads=t), base)


# ---------------------------------------------------------------------------
# concurrent calls from Python threads
# ---------------------------------------------------------------------------
def _problems(rng, dtype, index_dtype, seed):
    r = np.random.default_rng([seed, 99])
    A = random_csr(r, 300, 200, density=0.05, dtype=dtype, index_dtype=index_dtype)
    X = r.standard_normal((3000, 16)).astype(dtype)
    C = r.standard_normal((11, 16)).astype(dtype)
    labels = r.integers(0, 11, 3000).astype(index_dtype)
    W = random_csr(r, 300, 100, density=0.05, dtype=dtype, index_dtype=index_dtype)
    R = random_csr(r, 100, 400, density=0.05, dtype=dtype, index_dtype=index_dtype)
    return {
        "cosine_topk": lambda **kw: ops.cosine_topk(A, k=7, **kw),
        "kmeans_assign": lambda **kw: ops.kmeans_assign(X, C, **kw),
        "kmeans_update": lambda **kw: ops.kmeans_update(X, labels, 11, **kw),
        "topk_scores": lambda **kw: ops.topk_scores(W, R, n=9, **kw),
    }


def _same(a, b) -> None:
    if sp.issparse(a):
        assert_csr_identical(a, b)
    else:
        assert_arrays_identical(a, b)


@pytest.mark.parametrize("op", ["cosine_topk", "kmeans_assign", "kmeans_update",
                                "topk_scores"])
@pytest.mark.parametrize("n_threads", [1, None])
def test_concurrent_calls(device, dtype, index_dtype, rng, op, n_threads):
    calls = [_problems(rng, dtype, index_dtype, s)[op] for s in (1, 2)]
    expected = [c(device=device, n_threads=1) for c in calls]
    assert not all(np.array_equal(np.asarray(x.todense() if sp.issparse(x) else x),
                                  np.asarray(y.todense() if sp.issparse(y) else y))
                   for x, y in zip(_flat(expected[0]), _flat(expected[1])))
    barrier = threading.Barrier(2)
    errors, results = [], [[], []]

    def worker(t):
        try:
            barrier.wait(timeout=30)
            for _ in range(6):
                results[t].append(calls[t](device=device, n_threads=n_threads))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    for t in (0, 1):
        assert len(results[t]) == 6
        for got in results[t]:
            _same(got, expected[t])


def _flat(res):
    return res if isinstance(res, tuple) else (res,)


# ---------------------------------------------------------------------------
# GIL release
# ---------------------------------------------------------------------------
def _max_gap_while(fn) -> float:
    """Run ``fn`` in a thread; return the longest stall of this thread meanwhile."""
    done = threading.Event()
    err = []

    def target():
        try:
            fn()
        except BaseException as e:  # pragma: no cover
            err.append(e)
        finally:
            done.set()

    th = threading.Thread(target=target)
    last = time.perf_counter()
    gap = 0.0
    th.start()
    while not done.is_set():
        now = time.perf_counter()
        gap = max(gap, now - last)
        last = now
    th.join()
    assert not err, err
    return gap


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _grow_until_slow(make, sizes, min_seconds=0.25):
    """Return (fn, seconds) for the first size whose call takes min_seconds."""
    for s in sizes:
        fn = make(s)
        fn()  # warm-up (also JIT/GPU context initialisation)
        t = _timed(fn)
        if t >= min_seconds:
            return fn, t
    pytest.skip(f"op too fast to observe GIL release ({t:.3f}s at the largest size)")


def test_gil_released_kmeans_assign(device, rng):
    X = rng.standard_normal((40000, 32))

    def make(k):
        C = rng.standard_normal((k, 32))
        return lambda: ops.kmeans_assign(X, C, device=device, n_threads=1)

    fn, t = _grow_until_slow(make, [128, 512, 2048, 8192, 32768])
    gap = _max_gap_while(fn)
    assert gap < 0.5 * t, f"Python thread stalled {gap:.3f}s during a {t:.3f}s call"


def test_gil_released_cosine_topk(device, rng):
    def make(n):
        A = random_csr(rng, n, 500, density=0.1, max_row_nnz=50)
        return lambda: ops.cosine_topk(A, k=20, device=device, n_threads=1)

    fn, t = _grow_until_slow(make, [1000, 4000, 8000, 16000])
    gap = _max_gap_while(fn)
    assert gap < 0.5 * t, f"Python thread stalled {gap:.3f}s during a {t:.3f}s call"
