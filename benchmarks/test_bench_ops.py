"""pytest-benchmark micro-suite for cohortrec.ops (modest sizes, ~1 min).

Not part of the normal test run (the project's pytest ``testpaths`` is
``tests``).  Run explicitly:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python -m pytest benchmarks/test_bench_ops.py --benchmark-group-by=group

Each op is timed next to its anchor(s) in the same benchmark group, on the
same data and with the same thread count (``COHORTREC_BENCH_THREADS``,
default 2).  ``COHORTREC_BENCH_OPS=reference_ops`` benchmarks the slow NumPy
reference instead of ``cohortrec.ops`` (only useful to test this file).

The whole module is skipped when pytest-benchmark or the ops module is not
importable; an anchor library that is missing skips only its own benchmark.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest

pytest.importorskip("pytest_benchmark")

np = pytest.importorskip("numpy")
sp = pytest.importorskip("scipy.sparse")
threadpoolctl = pytest.importorskip("threadpoolctl")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets as D

OPS_MODULE = os.environ.get("COHORTREC_BENCH_OPS", "cohortrec.ops")
try:
    ops = importlib.import_module(OPS_MODULE)
except ImportError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"{OPS_MODULE} not importable: {exc}", allow_module_level=True)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Number of distinct clusters"),  # sklearn, max_iter=1
    pytest.mark.filterwarnings("ignore:Method expects CSR input"),  # implicit internals
]

T = int(os.environ.get("COHORTREC_BENCH_THREADS", "2"))
DEVICE = os.environ.get("COHORTREC_BENCH_DEVICE", "cpu")
K = 50


@pytest.fixture(scope="module", autouse=True)
def _limit_threads():
    with threadpoolctl.threadpool_limits(T):
        faiss = _maybe("faiss")
        if faiss is not None:
            faiss.omp_set_num_threads(T)
        yield


def _maybe(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _need(name):
    mod = _maybe(name)
    if mod is None:
        pytest.skip(f"{name} not installed")
    return mod


# ----------------------------------------------------------------- data


@pytest.fixture(scope="module")
def user_items():
    return D.interactions(5_000, 20_000, seed=0)


@pytest.fixture(scope="module")
def blobs():
    X = D.blobs(200_000, 32, seed=0)
    return X, D.init_centers(X, 64, seed=1)


@pytest.fixture(scope="module")
def topk_data():
    UI = D.interactions(10_000, 5_000, seed=3)
    W = D.user_neighbours(10_000, 50, seed=4)
    return W, UI


# ----------------------------------------------------------------- cosine


@pytest.mark.benchmark(group="cosine_topk 5k x 20k k=50")
def test_cosine_cohortrec(benchmark, user_items):
    C = benchmark(ops.cosine_topk, user_items, k=K, device=DEVICE, n_threads=T)
    assert C.shape == (user_items.shape[0], user_items.shape[0])
    assert np.diff(C.indptr).max() <= K


@pytest.mark.benchmark(group="cosine_topk 5k x 20k k=50")
def test_cosine_sparse_dot_topn(benchmark, user_items):
    sdtn = _need("sparse_dot_topn")

    from sklearn.preprocessing import normalize

    def run():
        Xn = normalize(user_items)
        return sdtn.sp_matmul_topn(Xn, Xn.T, top_n=K + 1, sort=True, n_threads=T)

    benchmark(run)


@pytest.mark.benchmark(group="cosine_topk item-item 20k items k=50")
def test_cosine_items_cohortrec(benchmark, user_items):
    benchmark(lambda: ops.cosine_topk(user_items.T.tocsr(), k=K, device=DEVICE, n_threads=T))


@pytest.mark.benchmark(group="cosine_topk item-item 20k items k=50")
def test_cosine_items_implicit(benchmark, user_items):
    nn = _need("implicit.nearest_neighbours")

    def run():
        m = nn.CosineRecommender(K=K + 1, num_threads=T)
        m.fit(user_items, show_progress=False)
        return m.similarity

    benchmark(run)


# ----------------------------------------------------------------- k-means


@pytest.mark.benchmark(group="kmeans_assign 200k x 32 k=64")
def test_kmeans_assign_cohortrec(benchmark, blobs):
    X, C = blobs
    labels, d2 = benchmark(ops.kmeans_assign, X, C, device=DEVICE, n_threads=T)
    assert labels.shape == (X.shape[0],)


@pytest.mark.benchmark(group="kmeans_assign 200k x 32 k=64")
def test_kmeans_assign_faiss(benchmark, blobs):
    faiss = _need("faiss")
    X, C = blobs

    def run():
        index = faiss.IndexFlatL2(X.shape[1])
        index.add(C)
        return index.search(X, 1)

    benchmark(run)


@pytest.mark.benchmark(group="kmeans_assign 200k x 32 k=64")
def test_kmeans_assign_numpy(benchmark, blobs):
    X, C = blobs
    cn = (C * C).sum(1)

    def run():
        out = np.empty(X.shape[0], np.int64)
        for s in range(0, X.shape[0], 16384):
            x = X[s : s + 16384]
            out[s : s + 16384] = (cn - 2.0 * (x @ C.T)).argmin(1)
        return out

    benchmark(run)


@pytest.mark.benchmark(group="kmeans_update 200k x 32 k=64")
def test_kmeans_update_cohortrec(benchmark, blobs):
    X, C = blobs
    labels = np.random.default_rng(0).integers(0, C.shape[0], X.shape[0]).astype(np.int64)
    sums, counts = benchmark(ops.kmeans_update, X, labels, C.shape[0], device=DEVICE, n_threads=T)
    assert np.asarray(counts).sum() == X.shape[0]


@pytest.mark.benchmark(group="kmeans_update 200k x 32 k=64")
def test_kmeans_update_numpy(benchmark, blobs):
    X, C = blobs
    k = C.shape[0]
    labels = np.random.default_rng(0).integers(0, k, X.shape[0]).astype(np.int64)

    def run():
        # one-hot sparse matrix product: the usual vectorised NumPy/SciPy way
        M = sp.csr_matrix((np.ones(X.shape[0], np.float32), (labels, np.arange(X.shape[0]))), shape=(k, X.shape[0]))
        return M @ X, np.bincount(labels, minlength=k)

    benchmark(run)


@pytest.mark.benchmark(group="kmeans Lloyd iteration 200k x 32 k=64")
def test_lloyd_cohortrec(benchmark, blobs):
    X, C = blobs
    k = C.shape[0]

    def run():
        labels, _ = ops.kmeans_assign(X, C, device=DEVICE, n_threads=T)
        sums, counts = ops.kmeans_update(X, labels, k, device=DEVICE, n_threads=T)
        counts = np.asarray(counts)
        return np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], C)

    benchmark(run)


@pytest.mark.benchmark(group="kmeans Lloyd iteration 200k x 32 k=64")
def test_lloyd_sklearn_one_iter(benchmark, blobs):
    # a full fit(max_iter=1): includes sklearn's input validation, data
    # centring and final label pass, so it is an upper bound for one iteration
    from sklearn.cluster import KMeans

    X, C = blobs

    def run():
        return KMeans(C.shape[0], init=C, n_init=1, max_iter=1, algorithm="lloyd", tol=0).fit(X)

    benchmark(run)


# ----------------------------------------------------------------- topk_scores


@pytest.mark.benchmark(group="topk_scores 10k users x 5k items n=20")
def test_topk_cohortrec(benchmark, topk_data):
    W, UI = topk_data
    items, scores = benchmark(ops.topk_scores, W, UI, n=20, exclude=UI, device=DEVICE, n_threads=T)
    assert np.asarray(items).shape == (W.shape[0], 20)


@pytest.mark.benchmark(group="topk_scores 10k users x 5k items n=20")
def test_topk_scipy(benchmark, topk_data):
    from bench_topk_scores import scipy_topk

    W, UI = topk_data
    benchmark(scipy_topk, W, UI, UI, 20, T)


@pytest.mark.benchmark(group="topk_scores 10k users x 5k items n=20")
def test_topk_sparse_dot_topn(benchmark, topk_data):
    _need("sparse_dot_topn")
    from bench_topk_scores import sdtn_topk

    W, UI = topk_data
    benchmark(sdtn_topk, W, UI, UI, 20, T)
