"""Fuzzing the public entry points with corrupted inputs: no input may crash the process.

Every op, estimator and loader gets CSR matrices with random corruptions of
their structure (``indptr``, ``indices``, ``data``, shape, dtypes), odd
dense arrays (strides, NaN, zero sizes, wrong dtypes) and huge sizes. The
only outcomes allowed are a result or ``ValueError`` / ``TypeError`` /
``IndexError`` (cohortrec's errors subclass them). A segmentation fault
kills the test run, which fails CI.

Before the structure checks in :mod:`cohortrec._validation`, a corrupt
``indptr`` (``A.indptr[3] = 10**6``) crashed the process inside SciPy's
``sum_duplicates`` (issue 14).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohortrec import ops

ALLOWED = (ValueError, TypeError, IndexError)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CORRUPTIONS = (
    "none", "indptr_big", "indptr_negative", "indptr_decreasing", "indptr_short", "indptr_long",
    "indptr_start", "indptr_end_short", "indptr_end_long", "indices_big", "indices_negative",
    "data_nan", "data_inf", "data_short", "shape_narrow", "shape_short", "indices_float",
    "data_complex", "data_object", "zero_rows", "zero_cols", "indices_int8", "unsorted_dups",
)


def valid_csr(seed: int, n: int = 12, m: int = 9, density: float = 0.3) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    A = sp.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float32)
    A.data[:] = rng.uniform(0.1, 2.0, A.nnz).astype(np.float32)
    return A


def corrupt(A: sp.csr_matrix, how: str, rng: np.random.Generator) -> sp.csr_matrix:
    """``A`` with one structural corruption, bypassing SciPy's constructor checks."""
    A = A.copy()
    n, m = A.shape
    if how == "none":
        return A
    if how == "zero_rows":
        return sp.csr_matrix((0, m), dtype=A.dtype)
    if how == "zero_cols":
        return sp.csr_matrix((n, 0), dtype=A.dtype)
    if how == "unsorted_dups":
        A.indices = A.indices[::-1].copy()
        if A.nnz > 1:
            A.indices[0] = A.indices[1]
        return A
    if how.startswith("indptr"):
        p = A.indptr.astype(np.int64)
        i = int(rng.integers(1, n))
        if how == "indptr_big":
            p[i] = 10**6
        elif how == "indptr_negative":
            p[i] = -5
        elif how == "indptr_decreasing":
            p[i] = p[i + 1] + 3
        elif how == "indptr_short":
            p = p[:-2]
        elif how == "indptr_long":
            p = np.append(p, p[-1])
        elif how == "indptr_start":
            p[0] = 1
        elif how == "indptr_end_short":
            p[-1] = max(p[-1] - 1, 0)
        elif how == "indptr_end_long":
            p[-1] = p[-1] + 7
        A.indptr = p
        return A
    if how == "indices_big" and A.nnz:
        A.indices[int(rng.integers(A.nnz))] = m + 10**6
    elif how == "indices_negative" and A.nnz:
        A.indices[int(rng.integers(A.nnz))] = -1
    elif how == "indices_float":
        A.indices = A.indices.astype(np.float64)
    elif how == "indices_int8":
        A.indices = A.indices.astype(np.int8)
    elif how == "data_nan" and A.nnz:
        A.data[0] = np.nan
    elif how == "data_inf" and A.nnz:
        A.data[-1] = np.inf
    elif how == "data_short" and A.nnz:
        A.data = A.data[:-1]
    elif how == "shape_narrow":
        A._shape = (n, max(m - 4, 1))
    elif how == "shape_short":
        A._shape = (max(n - 3, 1), m)
    elif how == "data_complex":
        A.data = A.data.astype(np.complex64)
    elif how == "data_object":
        A.data = A.data.astype(object)
    return A


def run_allowed(fn, *args, **kwargs):
    """Call ``fn``; anything but a result or an allowed error fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except ALLOWED:
            return None


corruption = st.sampled_from(CORRUPTIONS)
seeds = st.integers(0, 2**16)


# ---------------------------------------------------------------------- ops
@FUZZ
@given(how=corruption, seed=seeds, k=st.sampled_from([0, 1, 5, 10**12]))
def test_cosine_topk_never_crashes(how, seed, k):
    rng = np.random.default_rng(seed)
    A = corrupt(valid_csr(seed), how, rng)
    run_allowed(ops.cosine_topk, A, k=k, device="cpu")
    run_allowed(ops.cosine_topk, valid_csr(seed + 1), A, k=k, device="cpu")


@FUZZ
@given(how=corruption, seed=seeds, which=st.sampled_from(["W", "R", "exclude"]),
       n=st.sampled_from([0, 3, 10**12]))
def test_topk_scores_never_crashes(how, seed, which, n):
    rng = np.random.default_rng(seed)
    W, R = valid_csr(seed, 12, 12), valid_csr(seed + 1, 12, 9)
    E = valid_csr(seed + 2, 12, 9)
    args = {"W": W, "R": R, "exclude": E}
    args[which] = corrupt(args[which], how, rng)
    run_allowed(ops.topk_scores, args["W"], args["R"], n=n, exclude=args["exclude"], device="cpu")


@FUZZ
@given(how=corruption, seed=seeds, k=st.sampled_from([1, 3]))
def test_kmeans_ops_never_crash(how, seed, k):
    rng = np.random.default_rng(seed)
    X = corrupt(valid_csr(seed), how, rng)
    C = rng.normal(size=(k, 9))
    run_allowed(ops.kmeans_assign, X, C, device="cpu")
    run_allowed(ops.kmeans_update, X, rng.integers(0, k, 12), k, device="cpu")
    run_allowed(ops.kmeans_step, X, C, device="cpu")


@FUZZ
@given(seed=seeds, kind=st.sampled_from(["strided", "fortran", "nan", "inf", "empty", "1d", "3d", "int",
                                         "complex", "object", "negative_strides", "wrong_d", "huge_k_labels"]))
def test_dense_kmeans_ops_never_crash(seed, kind):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20, 6)).astype(np.float32)
    C = rng.normal(size=(3, 6)).astype(np.float32)
    labels = rng.integers(0, 3, 20)
    if kind == "strided":
        X = np.repeat(X, 2, axis=1)[:, ::2]
    elif kind == "fortran":
        X = np.asfortranarray(X)
    elif kind == "nan":
        X[3, 2] = np.nan
    elif kind == "inf":
        C[1, 0] = np.inf
    elif kind == "empty":
        X = X[:0]
        labels = labels[:0]
    elif kind == "1d":
        X = X[:, 0]
    elif kind == "3d":
        X = X[None]
    elif kind == "int":
        X = (X * 10).astype(np.int64)
    elif kind == "complex":
        X = X.astype(np.complex64)
    elif kind == "object":
        X = X.astype(object)
    elif kind == "negative_strides":
        X = X[::-1, ::-1]
    elif kind == "wrong_d":
        C = C[:, :4]
    elif kind == "huge_k_labels":
        labels = labels + 2**40
    run_allowed(ops.kmeans_assign, X, C, device="cpu")
    run_allowed(ops.kmeans_update, X, labels, 3, device="cpu")
    run_allowed(ops.kmeans_step, X, C, device="cpu")


# --------------------------------------------------------------- estimators
def _estimators():
    from cohortrec.cluster import DBSCAN, KMeans, MiniBatchKMeans
    from cohortrec.encoders import SVDEncoder
    from cohortrec.recommenders import EASE, GroupRecommender, ItemKNN, Popularity, RP3beta, UserKNN

    return [
        lambda X: KMeans(2, n_init=1, random_state=0).fit(X),
        lambda X: MiniBatchKMeans(2, n_init=1, random_state=0, batch_size=8).fit(X),
        lambda X: DBSCAN(eps=0.5, min_samples=2).fit(X),
        lambda X: SVDEncoder(n_components=2).fit(X),
        lambda X: ItemKNN(k=3).fit(X),
        lambda X: UserKNN(k=3).fit(X),
        lambda X: EASE().fit(X),
        lambda X: EASE(solver="dual").fit(X),
        lambda X: RP3beta(k=3).fit(X),
        lambda X: Popularity().fit(X),
        lambda X: GroupRecommender(n_groups=2, k=3, random_state=0).fit(X),
    ]


@FUZZ
@given(how=corruption, seed=seeds, which=st.integers(0, 10))
def test_estimator_fit_never_crashes(how, seed, which):
    rng = np.random.default_rng(seed)
    X = corrupt(valid_csr(seed, 30, 9), how, rng)
    run_allowed(_estimators()[which], X)


@FUZZ
@given(how=corruption, seed=seeds, model=st.sampled_from(["ItemKNN", "UserKNN", "EASE", "EASE-dual", "Popularity",
                                                           "GroupRecommender", "RP3beta", "ALS"]),
       N=st.sampled_from([0, 3, 10**12]))
def test_recommend_never_crashes(how, seed, model, N):
    from cohortrec import recommenders

    rng = np.random.default_rng(seed)
    X = valid_csr(seed, 30, 9)
    kwargs = {"GroupRecommender": {"n_groups": 2, "random_state": 0}, "EASE-dual": {"solver": "dual"}}.get(model, {})
    rec = getattr(recommenders, model.removesuffix("-dual"))(**kwargs).fit(X)
    rows = corrupt(X[:5], how, rng)
    run_allowed(rec.recommend, np.arange(5), rows, N=N)
    run_allowed(rec.recommend, np.arange(5), X[:5], N=N, items=np.array([0, 3, 10**9]))
    # one user per call: the bound native path reads the user's row of the corrupt matrix
    run_allowed(rec.recommend, 2, rows, N=N)
    run_allowed(rec.recommend, 1, corrupt(X[:2], how, rng), N=N)
    run_allowed(rec.recommend, 2, N=N)


@FUZZ
@given(how=corruption, seed=seeds)
def test_interactions_and_discovery_never_crash(how, seed):
    from cohortrec import GroupDiscovery, Interactions

    rng = np.random.default_rng(seed)
    X = corrupt(valid_csr(seed, 40, 9), how, rng)
    run_allowed(Interactions.from_sparse, X)
    run_allowed(lambda: GroupDiscovery(encoder="svd", n_groups=2, random_state=0).fit(X))


# ------------------------------------------------------------------ blend merge
@FUZZ
@given(seed=st.integers(0, 2**31 - 1), n_items=st.integers(-2, 30), n=st.integers(-2, 40),
       width=st.integers(-1, 30), id_dtype=st.sampled_from(["int64", "int32", "int8", "uint64", "float64"]),
       score_dtype=st.sampled_from(["float64", "float32", "float16", "int64"]))
def test_merge_topn_never_crashes(seed, n_items, n, width, id_dtype, score_dtype):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 8, size=rng.integers(0, 4))
    ids = [rng.integers(-3, 40, size=k).astype(id_dtype) for k in lengths]
    scores = [rng.choice([1.0, -2.0, np.nan, np.inf, -np.inf, 1e308], size=k + int(rng.integers(0, 2))).astype(
        score_dtype) if score_dtype.startswith("float") else rng.integers(0, 9, size=k).astype(score_dtype)
        for k in lengths]
    weights = rng.choice([0.0, 1.0, -1.0, np.nan], size=len(lengths) + int(rng.integers(0, 2)))
    keep = rng.random(max(n_items, 0)) < 0.5 if rng.random() < 0.5 else None
    try:
        ops.merge_topn(ids, scores, weights, how="score" if seed % 2 else "rank", width=width, n=n, n_items=n_items,
                       keep=keep, exclude=rng.integers(-5, 50, size=4))
    except ALLOWED:
        pass


# ------------------------------------------------------------------ loaders
@FUZZ
@given(content=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".parquet", ".tsv", ""]))
def test_loaders_never_crash_on_garbage(tmp_path_factory, content, suffix):
    from cohortrec.datasets import load_csv, load_parquet

    path = tmp_path_factory.mktemp("garbage") / f"events{suffix}"
    path.write_bytes(content)
    run_allowed(load_csv, path)
    run_allowed(load_parquet, path)


@pytest.mark.parametrize("how", [c for c in CORRUPTIONS if c != "none"])
def test_every_corruption_names_the_argument(how):
    """A deterministic pass: each corruption that is really invalid gets an error naming ``A``."""
    A = corrupt(valid_csr(3), how, np.random.default_rng(0))
    try:
        ops.cosine_topk(A, k=3, device="cpu")
    except ALLOWED as exc:
        assert "A" in str(exc) or "indices" in str(exc) or "dtype" in str(exc), str(exc)
