"""Tests of the benchmark harness itself (tiny sizes, ~30 s).

Not part of the normal test run (``testpaths`` is ``tests``); run explicitly:

    python -m pytest benchmarks/test_harness.py

They check that the peak-memory measurement sees native allocations, that
every op benchmark runs end to end on cohortrec.ops with all its
correctness checks passing, and that the checks fail on a wrong result of
each op (a check that cannot fail would make the benchmark's "ok" worthless).
"""

from __future__ import annotations

import os
import sys
import types

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H

np = pytest.importorskip("numpy")
sp = pytest.importorskip("scipy.sparse")
pytest.importorskip("sklearn")
pytest.importorskip("sparse_dot_topn")
ops = pytest.importorskip("cohortrec.ops")

import bench_cosine_topk as C
import bench_kmeans_step as K
import bench_topk_scores as T
import compare

pytestmark = [
    pytest.mark.filterwarnings("ignore:Number of distinct clusters"),  # sklearn, max_iter=1
    pytest.mark.filterwarnings("ignore:Method expects CSR input"),  # implicit internals
]


@pytest.fixture
def tiny(monkeypatch):
    """--quick sizes shrunk to seconds; a fresh list of cases."""
    monkeypatch.setattr(C, "N_ITEMS", 3000)
    monkeypatch.setattr(C, "USERS_QUICK", (1500,))
    monkeypatch.setattr(K, "KMEANS_QUICK", [(20000, 16, 32)])
    monkeypatch.setattr(T, "N_ITEMS", 2000)
    monkeypatch.setattr(T, "USERS_QUICK", 1500)
    monkeypatch.setattr(K, "gemm_rate", lambda T, size=256, repeats=1: 1.0)
    monkeypatch.setattr(H, "CASES", [])
    H.interactions.cache_clear()
    return compare.parse_args(["--quick", "--repeats", "1", "--budget", "1", "--out", "-"])


GROUPS = {"cosine": C.bench, "kmeans": K.bench, "topk": T.bench}


def _failed(group):
    return [w for c in H.CASES if c.group == group for w, ok, _ in c.checks if not ok]


def test_peak_rss_sees_a_native_allocation():
    with H.PeakRSS() as big:
        a = np.ones(25_000_000)  # 191 MiB, touched
        del a
    with H.PeakRSS() as small:
        b = np.ones(1000)
        del b
    assert 150 < big.mib < 400
    assert small.mib < 20


def test_timeit_repeats_within_budget():
    calls = []
    timing, out = H.timeit(lambda: calls.append(1) or len(calls), repeats=3, budget=10.0)
    assert out == 1 and len(calls) == 4 and len(timing.times) == 3 and not timing.cold


@pytest.mark.parametrize("group", list(GROUPS))
def test_bench_passes_on_cohortrec(tiny, group):
    GROUPS[group](tiny, ops, 2, {})
    cases = [c for c in H.CASES if c.group == group]
    assert cases and all(c.checks for c in cases)
    assert _failed(group) == []
    for c in cases:
        co = next(r for r in c.rows if r.library == "cohortrec")
        assert co.timing is not None and co.timing.peak_mib is not None
        assert all(H.ratio(c, r) > 0 for r in c.rows if not r.library.startswith("cohortrec") and r.timing)


def _wrong_ops():
    """cohortrec.ops with one wrong value in each op's result."""

    def cosine_topk(*a, **kw):
        M = ops.cosine_topk(*a, **kw)
        M.data[0] *= 0.5
        return M

    def kmeans_step(X, C, **kw):
        labels, d2, sums, counts = ops.kmeans_step(X, C, **kw)
        labels = labels.copy()
        labels[0] = (labels[0] + 1) % C.shape[0]
        return labels, d2, sums, counts

    def topk_scores(W, R, *, exclude, **kw):
        items, scores = ops.topk_scores(W, R, exclude=exclude, **kw)
        items = items.copy()
        E = sp.csr_matrix(exclude)
        items[0, 0] = E.indices[E.indptr[0]]  # an excluded item
        return items, scores

    return types.SimpleNamespace(cosine_topk=cosine_topk, kmeans_step=kmeans_step, topk_scores=topk_scores,
                                 kmeans_assign=ops.kmeans_assign, kmeans_update=ops.kmeans_update)


@pytest.mark.parametrize("group, expected", [
    ("cosine", "stored value == cosine"),
    ("kmeans", "labels == exact argmin"),
    ("topk", "no excluded item returned"),
])
def test_bench_fails_on_a_wrong_result(tiny, group, expected):
    GROUPS[group](tiny, _wrong_ops(), 2, {})
    failed = _failed(group)
    assert any(expected in w for w in failed), failed
