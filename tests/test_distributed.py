"""cohortrec.distributed on a LocalCluster (2 worker processes) against the
single-machine results."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from sklearn.cluster import KMeans as SkKMeans  # noqa: E402

from cohortrec import distributed as cd  # noqa: E402
from cohortrec import ops  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _blobs(rng, n, d, k):
    centers = rng.normal(scale=5.0, size=(k, d))
    X = centers[rng.integers(k, size=n)] + rng.normal(size=(n, d))
    return X


def _split(X, sizes):
    edges = np.cumsum([0] + list(sizes))
    return [X[a:b] for a, b in zip(edges[:-1], edges[1:])]


@pytest.mark.parametrize("kind", ["list", "dask", "csr"])
def test_kmeans_equals_single_machine(client, kind):
    rng = np.random.default_rng(1)
    X = _blobs(rng, 3000, 6, 5)
    C0 = X[rng.choice(len(X), 5, replace=False)].copy()
    if kind == "list":
        data = _split(X, [700, 1100, 1200])
    elif kind == "dask":
        data = da.from_array(X, chunks=(800, 6))
    else:
        X = sp.random(3000, 40, density=0.2, random_state=3, format="csr", dtype=np.float64)
        C0 = X[rng.choice(3000, 5, replace=False)].toarray()
        data = [X[:1000], X[1000:1500], X[1500:]]
    km = cd.KMeans(5, init=C0, max_iter=50, tol=1e-6, client=client).fit(data)
    ref = SkKMeans(5, init=C0, n_init=1, max_iter=50, tol=1e-6, algorithm="lloyd").fit(X)
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(km.inertia_, ref.inertia_, rtol=1e-6)
    assert km.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(km.predict(data), km.labels_)


def test_kmeans_deterministic_across_block_layouts(client):
    rng = np.random.default_rng(2)
    X = _blobs(rng, 2000, 4, 4)
    C0 = X[:4].copy()
    a = cd.KMeans(4, init=C0, client=client).fit(_split(X, [2000]))
    b = cd.KMeans(4, init=C0, client=client).fit(_split(X, [300, 300, 700, 700]))
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12)


@pytest.mark.parametrize("init", ["k-means||", "k-means++"])
def test_kmeans_init_finds_blobs(client, init):
    rng = np.random.default_rng(4)
    X = _blobs(rng, 4000, 5, 6)
    km = cd.KMeans(6, init=init, random_state=0, client=client).fit(_split(X, [1000] * 4))
    ref = SkKMeans(6, n_init=10, random_state=0).fit(X)
    assert km.inertia_ <= ref.inertia_ * 1.05
    again = cd.KMeans(6, init=init, random_state=0, client=client).fit(_split(X, [1000] * 4))
    np.testing.assert_array_equal(again.labels_, km.labels_)


def test_kmeans_survives_lost_worker(client):
    rng = np.random.default_rng(5)
    X = _blobs(rng, 3000, 4, 4)
    C0 = X[rng.choice(3000, 4, replace=False)].copy()
    data = da.from_array(X, chunks=(500, 4))
    ref = cd.KMeans(4, init=C0, tol=0, max_iter=30, client=client).fit(data)

    km = cd.KMeans(4, init=C0, tol=0, max_iter=30, client=client)

    def kill_one(it: int) -> None:
        if it == 2:
            worker = sorted(client.scheduler_info()["workers"])[0]
            client.restart_workers([worker])

    km._after_iteration = kill_one
    km.fit(data)
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-12)


def test_kmeans_errors(client):
    with pytest.raises(ValueError, match="n_samples"):
        cd.KMeans(10, client=client).fit([np.zeros((3, 2))])
    with pytest.raises(ValueError, match="init"):
        cd.KMeans(2, init=np.zeros((3, 2)), client=client).fit([np.ones((5, 2))])
    with pytest.raises(TypeError, match="row blocks"):
        cd.KMeans(2, client=client).fit(np.ones((5, 2)))
    with pytest.raises(ValueError, match="same number of columns"):
        cd.KMeans(2, client=client).fit([np.ones((5, 2)), np.ones((5, 3))])


@pytest.mark.parametrize("broadcast_B", [True, False])
@pytest.mark.parametrize("same", [True, False])
def test_cosine_topk_equals_single_machine(client, broadcast_B, same):
    A = sp.random(500, 80, density=0.05, random_state=7, format="csr", dtype=np.float32)
    B = None if same else sp.random(300, 80, density=0.05, random_state=8, format="csr", dtype=np.float32)
    want = ops.cosine_topk(A, B, k=7)
    a_blocks = [A[:120], A[120:333], A[333:]]
    b_blocks = None if same else [B[:150], B[150:]]
    got = cd.cosine_topk(a_blocks, b_blocks, k=7, broadcast_B=broadcast_B, client=client)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.data, want.data, rtol=1e-6)


class _PopModel:
    """Minimal implicit-style recommender: global popularity."""

    def __init__(self, pop: np.ndarray) -> None:
        self.pop = pop

    def recommend(self, userids, user_items, N=10, filter_already_liked_items=True):
        scores = np.tile(self.pop.astype(np.float64), (len(userids), 1))
        if filter_already_liked_items:
            scores[user_items.nonzero()] = -np.inf
        ids = np.argsort(-scores, axis=1, kind="stable")[:, :N]
        return ids, np.take_along_axis(scores, ids, axis=1)


def test_recommend_all_writes_parquet(client, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    R = sp.random(90, 30, density=0.1, random_state=9, format="csr")
    model = _PopModel(np.asarray((R != 0).sum(axis=0)).ravel())
    out = cd.recommend_all(model, [R[:40], R[40:]], N=5, path=tmp_path / "recs", client=client)
    df = pd.read_parquet(out).sort_values(["user", "rank"])
    ids, _ = model.recommend(np.arange(90), R, N=5)
    assert df["user"].nunique() == 90
    np.testing.assert_array_equal(df["item"].to_numpy().reshape(90, 5), ids)


def test_read_parquet_events_builds_blocks(client, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(0)
    events = pd.DataFrame({
        "u": rng.choice([f"u{i}" for i in range(40)], 500),
        "i": rng.choice([f"item{i}" for i in range(25)], 500),
        "w": rng.random(500),
    })
    (tmp_path / "log").mkdir()
    for p, lo in enumerate(range(0, 500, 170)):
        events.iloc[lo:lo + 170].to_parquet(tmp_path / "log" / f"part{p}.parquet", index=False)
    blocks = cd.read_parquet_events(tmp_path / "log", user="u", item="i", weight="w", client=client)
    got = sp.vstack(client.gather(blocks.futures), format="csr")
    users = np.concatenate(blocks.row_ids)
    want = events.groupby(["u", "i"])["w"].sum()
    for (u, i), w in want.items():
        r = int(np.flatnonzero(users == u)[0])
        c = int(np.searchsorted(blocks.col_ids, i))
        assert got[r, c] == pytest.approx(w)
    assert got.nnz == len(want)
    with pytest.raises(ValueError, match="not found"):
        cd.read_parquet_events(tmp_path / "log", user="nope", item="i", client=client)


def test_kmeans_relocates_empty_clusters_like_the_core(client):
    """A centre that attracts no point takes the farthest point, as in cluster.KMeans and scikit-learn."""
    from cohortrec.cluster import KMeans as CoreKMeans

    rng = np.random.default_rng(7)
    X = _blobs(rng, 1200, 4, 3)
    C0 = np.vstack([X[rng.choice(len(X), 3, replace=False)], np.full((1, 4), 1e3)])  # the last one is empty
    km = cd.KMeans(4, init=C0, max_iter=50, tol=1e-6, client=client).fit(_split(X, [400, 300, 500]))
    ref = CoreKMeans(4, init=C0, n_init=1, max_iter=50, tol=1e-6, algorithm="lloyd").fit(X)
    assert len(np.unique(km.labels_)) == 4  # no cluster left empty
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-6, atol=1e-9)
