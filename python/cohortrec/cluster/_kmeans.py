"""K-means estimators on the native kernels: KMeans and MiniBatchKMeans."""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.sparsefuncs import mean_variance_axis

from cohortrec import ops
from cohortrec._errors import check_fitted
from cohortrec._validation import check_int, check_sparse_structure, l2_normalize_rows
from cohortrec.cluster._lloyd import _SMALL_WORK, bounds_fit_memory, exact_sq_dist, lloyd
from cohortrec.cluster._seeding import kmeans_plusplus_dense
from cohortrec.ops import resolve_threads

__all__ = ["KMeans", "MiniBatchKMeans"]

_ALGORITHMS = ("auto", "lloyd", "elkan", "yinyang", "hamerly")


def _check_weight(sample_weight: Any, n: int, dtype: np.dtype, *, fit: bool = False) -> np.ndarray:
    """Weights of the ``n`` rows; for ``fit``, at least one must be positive (else no centre can be drawn)."""
    if sample_weight is None:
        return np.ones(n, dtype=dtype)
    w = np.asarray(sample_weight, dtype=dtype)
    if w.ndim == 0:
        w = np.full(n, w, dtype=dtype)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},) to match X, got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must be finite and non-negative")
    if fit and n and not (w > 0).any():
        raise ValueError("sample_weight is zero for every sample: at least one weight must be positive")
    return np.ascontiguousarray(w)


def _tolerance(X: np.ndarray | sp.csr_matrix, tol: float) -> float:
    """scikit-learn's rule: ``tol`` times the mean per-feature variance."""
    if tol == 0 or X.shape[0] == 0:
        return 0.0
    variances = mean_variance_axis(X, axis=0)[1] if sp.issparse(X) else np.var(X, axis=0)
    return tolerance_from_variances(variances, tol)


def tolerance_from_variances(variances: np.ndarray, tol: float) -> float:
    """The absolute tolerance on the centre shift: ``tol`` times the mean per-feature variance."""
    return float(np.mean(variances) * tol) if len(variances) and tol else 0.0


class _BaseKMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """Shared input handling, predict/transform/score."""

    def _validate_X(self, X: Any, *, reset: bool, copy: bool = False) -> np.ndarray | sp.csr_matrix:
        check_sparse_structure(X, "X")  # before scikit-learn or SciPy walk a corrupt indptr
        X = check_array(
            X, accept_sparse="csr", dtype=[np.float64, np.float32], order="C", copy=copy,
            accept_large_sparse=True, input_name="X",
        )
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        if sp.issparse(X) and not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        return X

    def _prepare(self, X: np.ndarray | sp.csr_matrix) -> np.ndarray | sp.csr_matrix:
        return l2_normalize_rows(X) if getattr(self, "spherical", False) else X

    def _threads(self, work: int | None = None) -> int:
        """Threads for a kernel call; one for passes below ``_SMALL_WORK`` (n * k * d), where
        OpenMP start-up and barriers cost more than the work."""
        threads = resolve_threads(self.n_threads)
        return 1 if work is not None and work < _SMALL_WORK else threads

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    @property
    def _n_features_out(self) -> int:
        return self.cluster_centers_.shape[0]

    def predict(self, X: Any, sample_weight: Any = None) -> np.ndarray:
        """Index of the nearest centre of every row of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        sample_weight : ignored
            Kept for scikit-learn compatibility.

        Returns
        -------
        labels : ndarray of int64, shape (n_samples,)
        """
        check_fitted(self, "cluster_centers_")
        X = self._prepare(self._validate_X(X, reset=False))
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        labels, _ = ops.kmeans_assign(X, self.cluster_centers_.astype(X.dtype), device=self.device,
                                      n_threads=self._threads(X.shape[0] * self.cluster_centers_.size))
        return labels

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distance of every row to every centre, shape (n_samples, n_clusters)."""
        check_fitted(self, "cluster_centers_")
        X = self._prepare(self._validate_X(X, reset=False))
        from sklearn.metrics.pairwise import euclidean_distances  # noqa: PLC0415

        return euclidean_distances(X, self.cluster_centers_.astype(X.dtype))

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit, then :meth:`transform` ``X``."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit and return :attr:`labels_`."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Opposite of the (weighted) inertia of ``X`` under the fitted centres."""
        check_fitted(self, "cluster_centers_")
        X = self._prepare(self._validate_X(X, reset=False))
        w = _check_weight(sample_weight, X.shape[0], X.dtype)
        if X.shape[0] == 0:
            return 0.0
        labels, _ = ops.kmeans_assign(X, self.cluster_centers_.astype(X.dtype), device=self.device,
                                      n_threads=self._threads())
        d = exact_sq_dist(X, self.cluster_centers_.astype(X.dtype), labels)
        return -float(np.dot(d, w.astype(np.float64)))

    def _init_centroids(self, X, init, random_state, sample_weight, n_centroids):
        n = X.shape[0]
        if isinstance(init, str) and init == "k-means++" and not sp.issparse(X):
            centers, _ = kmeans_plusplus_dense(X, n_centroids, random_state, sample_weight,
                                               self._threads(n * n_centroids * X.shape[1]))
        elif isinstance(init, str) and init == "k-means++":  # sparse: scikit-learn's
            x_sq = np.asarray(X.multiply(X).sum(axis=1)).ravel().astype(X.dtype)
            centers, _ = kmeans_plusplus(X, n_centroids, x_squared_norms=x_sq, random_state=random_state,
                                         sample_weight=sample_weight)
        elif isinstance(init, str) and init == "random":
            idx = random_state.choice(n, size=n_centroids, replace=False,
                                      p=sample_weight / sample_weight.sum())
            centers = X[idx]
        elif callable(init):
            centers = init(X, n_centroids, random_state=random_state)
            centers = check_array(centers, dtype=X.dtype, copy=False, order="C")
            self._check_init_shape(centers, X.shape[1], n_centroids)
        else:
            centers = init
        if sp.issparse(centers):
            centers = centers.toarray()
        centers = np.array(centers, dtype=X.dtype, order="C", copy=True)
        if getattr(self, "spherical", False):
            centers = l2_normalize_rows(centers)
        return centers

    def _check_init_shape(self, centers: np.ndarray, d: int, k: int) -> None:
        if centers.shape != (k, d):
            raise ValueError(
                f"init must have shape (n_clusters={k}, n_features={d}), got {centers.shape}"
            )

    def _check_params(self, X) -> None:
        check_int(self.n_clusters, "n_clusters", minimum=1)
        if X.shape[0] < self.n_clusters:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}.")
        check_int(self.max_iter, "max_iter", minimum=1)
        if not (isinstance(self.tol, numbers.Real) and self.tol >= 0):
            raise ValueError(f"tol must be a number >= 0, got {self.tol!r}")
        init = self.init
        if isinstance(init, str):
            if init not in ("k-means++", "random"):
                raise ValueError(f"init must be 'k-means++', 'random', an array or a callable, got {init!r}")
        elif not callable(init):
            arr = check_array(init, dtype=X.dtype, order="C", input_name="init")
            self._check_init_shape(arr, X.shape[1], self.n_clusters)
        if self.n_init == "auto":
            self._n_init = 1 if (not isinstance(init, str) or init == "k-means++") else 10
        else:
            self._n_init = check_int(self.n_init, "n_init", minimum=1)
        if not isinstance(init, str) and not callable(init) and self._n_init != 1:
            warnings.warn(
                f"Explicit initial center position passed: performing only one init in "
                f"{type(self).__name__} instead of n_init={self._n_init}.",
                RuntimeWarning, stacklevel=3,
            )
            self._n_init = 1


class KMeans(_BaseKMeans):
    """K-means clustering on cohortrec's native kernels (drop-in for scikit-learn's).

    Same constructor arguments, fitted attributes and methods as
    :class:`sklearn.cluster.KMeans`, plus ``spherical``, ``device`` and
    ``n_threads``. Every Lloyd iteration runs
    :func:`cohortrec.ops.kmeans_assign` / :func:`cohortrec.ops.kmeans_update`;
    with many clusters the default ``algorithm="auto"`` skips the centres
    that cannot be nearest (Elkan's inter-centre lemma, per cluster), with
    the same result as plain Lloyd. The loop follows
    scikit-learn's step for step (data centring, tolerance, empty-cluster
    relocation, strict convergence), so with the same data and initial
    centres it ends at the same inertia.

    Parameters
    ----------
    n_clusters : int, default 8
    init : {"k-means++", "random"}, callable or array of shape (n_clusters, n_features)
        ``"k-means++"`` is scikit-learn's greedy k-means++ (the same
        random draws), computed natively for dense input (float64
        distances; 4.8 s instead of scikit-learn's 17.6 s at 1M x 32,
        k = 256 on the 2-core dev machine). With the same ``random_state``
        it picks the same initial centres as :class:`sklearn.cluster.KMeans`
        on float64 data; on float32 data scikit-learn rounds its squared
        norms to float32, so a late pick can differ.
    n_init : "auto" or int, default "auto"
        Runs from different initialisations; the lowest inertia wins.
        ``"auto"``: 1 for k-means++ or an explicit init, 10 for ``"random"``.
    max_iter : int, default 300
    tol : float, default 1e-4
        Relative tolerance: stop when the squared centre shift summed over
        centres is at most ``tol`` times the mean per-feature variance.
    verbose : int, default 0
        Print the progress of every iteration.
    random_state : int, RandomState or None
    copy_x : bool, default True
        Dense data is centred during the fit; ``False`` centres the caller's
        array in place and restores it afterwards.
    algorithm : {"auto", "lloyd", "elkan", "yinyang", "hamerly"}, default "auto"
        How each Lloyd step's assignment avoids distance computations; all
        are exact (the labels of plain Lloyd, up to floating-point ties).
        ``"yinyang"`` (``"hamerly"`` is an alias): native per-point distance
        bounds (Ding et al. 2015 Yinyang K-means: a global bound, Hamerly's
        inter-centre test and one bound per group of nearby centres), so a
        point is only recomputed when a bound says its label could change;
        after the first iterations a few percent of the ``n * k`` distances
        are computed. It keeps ``4 * n * ceil(n_clusters / lanes)`` bytes of
        group bounds (lanes = 16 for float32 with AVX-512). ``"elkan"``:
        compares each cluster's points only with the centres that Elkan's
        inter-centre lemma cannot rule out (one native call per cluster,
        a cluster-sorted copy of ``X``). ``"lloyd"``: plain native
        assignment every iteration. ``"auto"``: ``"yinyang"`` on dense data
        on the CPU when the group bounds take at most 1 GiB, else
        ``"elkan"`` on dense data and ``"lloyd"`` on sparse data.
    spherical : bool, default False
        Cosine geometry: rows are L2-normalised and centres re-normalised
        after every update (spherical k-means). ``cluster_centers_`` are then
        unit vectors and ``inertia_`` is ``sum(w * ||x - c||^2) =
        2 * sum(w * (1 - cos))``; :meth:`predict` / :meth:`transform`
        normalise their input too. No centring is done.
    device : {"auto", "cpu", "cuda"}, default "auto"
    n_threads : int, optional
        Threads for the kernels and BLAS (default: all available cores).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of int64, shape (n_samples,)
    inertia_ : float
        Sum of (weighted) squared distances of samples to their centre.
    n_iter_ : int
        Iterations of the best run.
    n_features_in_ : int
    recomputed_ : list of float
        Per iteration of the best run, the share of the ``n * k`` distances
        computed (pruned/bounded assignment; 1.0 for a full pass).

    Examples
    --------
    >>> import numpy as np
    >>> from cohortrec import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[1.0, 2.0], [10.0, 2.0]]
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: str | np.ndarray | Callable[..., Any] = "k-means++",
        n_init: str | int = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        verbose: int = 0,
        random_state: int | np.random.RandomState | None = None,
        copy_x: bool = True,
        algorithm: str = "auto",
        spherical: bool = False,
        device: str = "auto",
        n_threads: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.spherical = spherical
        self.device = device
        self.n_threads = n_threads

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> KMeans:
        """Compute the clustering.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Dense (float32 kept, other types become float64) or CSR.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights (1 by default).

        Returns
        -------
        self
        """
        X = self._validate_X(X, reset=True, copy=self.copy_x and not self.spherical)
        if self.algorithm not in _ALGORITHMS:
            raise ValueError(f"algorithm must be one of {_ALGORITHMS}, got {self.algorithm!r}")
        self._check_params(X)
        threads = self._threads()
        random_state = check_random_state(self.random_state)
        w = _check_weight(sample_weight, X.shape[0], X.dtype, fit=True)
        k = int(self.n_clusters)

        X = self._prepare(X)
        init = self.init
        if hasattr(init, "__array__"):
            init = check_array(init, dtype=X.dtype, copy=True, order="C")
        X_mean = None
        if not sp.issparse(X) and not self.spherical:
            X_mean = X.mean(axis=0)
            X -= X_mean
            if hasattr(init, "__array__"):
                init -= X_mean
        tol = _tolerance(X, self.tol)
        # "auto": bounded (Yinyang) assignment on dense data whose per-point group bounds fit
        # the memory budget, else the pruned pass (see cluster/_lloyd.py)
        bounds = self.algorithm in ("yinyang", "hamerly") or (
            self.algorithm == "auto" and not sp.issparse(X) and bounds_fit_memory(X.shape[0], k, X.dtype))

        import contextlib  # noqa: PLC0415

        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        # the bounded path calls BLAS between OpenMP kernels: BLAS threads would spin against them
        limiter = threadpool_limits(limits=1, user_api="blas") if bounds else contextlib.nullcontext()
        try:
            with limiter:
                best = None
                for run in range(self._n_init):
                    centers0 = self._init_centroids(X, init, random_state, w, k)
                    if self.verbose:
                        print(f"Initialization complete (run {run + 1}/{self._n_init})")
                    res = lloyd(X, w, centers0, max_iter=int(self.max_iter), tol=tol, n_threads=threads,
                                device=self.device, bounds=bounds, spherical=bool(self.spherical),
                                verbose=self.verbose, prune=self.algorithm in ("auto", "elkan"))
                    if self.verbose:
                        print(f"Run {run + 1}: inertia {res.inertia:.6g} after {res.n_iter} iterations")
                    if best is None or res.inertia < best.inertia:
                        best = res
        finally:
            if X_mean is not None and not self.copy_x:
                X += X_mean
        centers = best.centers
        if X_mean is not None:
            centers = centers + X_mean
        distinct = len(np.unique(best.labels))
        if distinct < k:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({k}). "
                "Possibly due to duplicate points in X.",
                ConvergenceWarning, stacklevel=2,
            )
        self.cluster_centers_ = centers
        self.labels_ = best.labels
        self.inertia_ = best.inertia
        self.n_iter_ = best.n_iter
        self.recomputed_ = best.recomputed or [1.0] * best.n_iter
        self._n_threads = threads
        return self


class MiniBatchKMeans(_BaseKMeans):
    """Mini-batch K-means on the native kernels (like :class:`sklearn.cluster.MiniBatchKMeans`).

    Each step assigns a random batch with :func:`cohortrec.ops.kmeans_assign`,
    sums it per cluster with :func:`cohortrec.ops.kmeans_update` and moves
    every centre towards its batch mean with a per-centre learning rate
    ``batch weight / total weight seen`` (Sculley 2010). :meth:`partial_fit`
    consumes one batch at a time (streams, data larger than memory).

    Parameters
    ----------
    n_clusters : int, default 8
    init : {"k-means++", "random"}, callable or array
    max_iter : int, default 100
        Passes over the data (epochs) in :meth:`fit`.
    batch_size : int, default 1024
    verbose : int, default 0
    compute_labels : bool, default True
        Compute ``labels_`` and ``inertia_`` on the full data after fit.
    random_state : int, RandomState or None
    tol : float, default 0.0
        Stop when the squared centre shift of a step, over the mean feature
        variance, is at most ``tol`` (0 disables).
    max_no_improvement : int or None, default 10
        Stop after this many steps without improving the smoothed batch
        inertia (None disables).
    init_size : int, optional
        Samples used for initialisation (default ``3 * batch_size``, at
        least ``3 * n_clusters``).
    n_init : "auto" or int, default "auto"
        Initialisations tried on the init sample (best inertia kept).
    reassignment_ratio : float, default 0.01
        Centres whose accumulated weight falls below this share of the
        largest are moved to random batch points.
    spherical : bool, default False
    device : {"auto", "cpu", "cuda"}
    n_threads : int, optional

    Attributes
    ----------
    cluster_centers_, labels_, inertia_, n_iter_, n_steps_, n_features_in_
        As in scikit-learn (``n_iter_`` counts epochs, ``n_steps_`` batches).
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: str | np.ndarray | Callable[..., Any] = "k-means++",
        max_iter: int = 100,
        batch_size: int = 1024,
        verbose: int = 0,
        compute_labels: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 0.0,
        max_no_improvement: int | None = 10,
        init_size: int | None = None,
        n_init: str | int = "auto",
        reassignment_ratio: float = 0.01,
        spherical: bool = False,
        device: str = "auto",
        n_threads: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.spherical = spherical
        self.device = device
        self.n_threads = n_threads

    # ---------------------------------------------------------------- helpers
    def _init_state(self, X, w, random_state) -> None:
        k = int(self.n_clusters)
        n = X.shape[0]
        init_size = self.init_size if self.init_size is not None else 3 * int(self.batch_size)
        init_size = min(n, max(int(init_size), 3 * k))
        best_c, best_in = None, np.inf
        for _ in range(self._n_init):
            idx = random_state.randint(0, n, init_size) if init_size < n else np.arange(n)
            Xi, wi = X[idx], w[idx]
            init = self.init
            if hasattr(init, "__array__"):
                init = check_array(init, dtype=X.dtype, copy=True, order="C")
            c = self._init_centroids(Xi, init, random_state, wi, k)
            lab, _ = ops.kmeans_assign(Xi, c, device=self.device, n_threads=self._threads())
            inertia = float(np.dot(exact_sq_dist(Xi, c, lab), wi.astype(np.float64)))
            if inertia < best_in:
                best_c, best_in = c, inertia
        self.cluster_centers_ = best_c
        self._counts = np.zeros(k, dtype=np.float64)
        self._ewa_inertia = None
        self._ewa_min = np.inf
        self._no_improvement = 0
        self.n_steps_ = 0

    def _step(self, Xb, wb, random_state, n_total: int) -> tuple[float, float]:
        """One mini-batch update; returns (batch inertia per sample, squared centre shift)."""
        k = int(self.n_clusters)
        C = self.cluster_centers_
        threads = self._threads(Xb.shape[0] * C.size)
        lab, _ = ops.kmeans_assign(Xb, C, device=self.device, n_threads=threads)
        sums, cnt = ops.kmeans_update(Xb, lab, k, sample_weight=wb, device=self.device, n_threads=1)
        sums = sums.astype(np.float64)
        cnt = cnt.astype(np.float64)
        old = C.astype(np.float64)
        total = self._counts + cnt
        new = old.copy()
        upd = cnt > 0
        new[upd] = (old[upd] * self._counts[upd, None] + sums[upd]) / total[upd, None]
        self._counts = total
        if self.spherical:
            new = l2_normalize_rows(new)
        # random reassignment of starved centres (scikit-learn's rule, every 10 * n_clusters steps)
        ratio = float(self.reassignment_ratio)
        if ratio > 0 and self._counts.max() > 0 and (self.n_steps_ + 1) % (10 + k) == 0:
            starved = np.flatnonzero(self._counts < ratio * self._counts.max())
            starved = starved[: max(0, int(0.5 * Xb.shape[0]))]
            if starved.size:
                pick = random_state.choice(Xb.shape[0], size=starved.size, replace=False,
                                           p=wb / wb.sum() if wb.sum() > 0 else None)
                pts = Xb[pick]
                new[starved] = pts.toarray() if sp.issparse(pts) else pts
                self._counts[starved] = min(self._counts[self._counts > 0].min(), self._counts.max())
        shift = float(((new - old) ** 2).sum())
        self.cluster_centers_ = new.astype(C.dtype)
        d = exact_sq_dist(Xb, C, lab)
        batch_inertia = float(np.dot(d, wb.astype(np.float64))) / max(Xb.shape[0], 1)
        self.n_steps_ += 1
        return batch_inertia, shift

    def _converged(self, batch_inertia: float, shift: float, tol: float, n: int) -> bool:
        bs = int(self.batch_size)
        if self._ewa_inertia is None:
            self._ewa_inertia = batch_inertia
        else:
            alpha = min(1.0, bs * 2.0 / (n + 1))
            self._ewa_inertia = self._ewa_inertia * (1 - alpha) + batch_inertia * alpha
        if self.verbose:
            print(f"Minibatch step {self.n_steps_}: mean batch inertia {batch_inertia:.6g}, "
                  f"ewa inertia {self._ewa_inertia:.6g}")
        if tol > 0 and shift <= tol:
            return True
        if self._ewa_inertia < self._ewa_min:
            self._no_improvement = 0
            self._ewa_min = self._ewa_inertia
        else:
            self._no_improvement += 1
        return self.max_no_improvement is not None and self._no_improvement >= self.max_no_improvement

    def _check_mb_params(self, X) -> None:
        self._check_params(X)
        check_int(self.batch_size, "batch_size", minimum=1)
        if self.max_no_improvement is not None:
            check_int(self.max_no_improvement, "max_no_improvement", minimum=0)
        if not (isinstance(self.reassignment_ratio, numbers.Real) and self.reassignment_ratio >= 0):
            raise ValueError(f"reassignment_ratio must be >= 0, got {self.reassignment_ratio!r}")
        if self.n_init == "auto":
            self._n_init = 1 if (not isinstance(self.init, str) or self.init == "k-means++") else 3

    # ---------------------------------------------------------------- public
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> MiniBatchKMeans:
        """Fit on mini-batches of ``X`` (see class docstring)."""
        X = self._prepare(self._validate_X(X, reset=True))
        self._check_mb_params(X)
        random_state = check_random_state(self.random_state)
        self._random_state = random_state
        w = _check_weight(sample_weight, X.shape[0], X.dtype, fit=True)
        n = X.shape[0]
        self._init_state(X, w, random_state)
        tol = _tolerance(X, self.tol)
        bs = min(int(self.batch_size), n)
        n_steps = (int(self.max_iter) * n) // bs
        for step in range(n_steps):
            idx = random_state.randint(0, n, bs)
            bi, shift = self._step(X[idx], w[idx], random_state, n)
            if self._converged(bi, shift, tol, n):
                if self.verbose:
                    print(f"Converged at step {step + 1}")
                break
        self.n_iter_ = int(np.ceil(self.n_steps_ * bs / n))
        if self.compute_labels:
            self.labels_, _ = ops.kmeans_assign(X, self.cluster_centers_, device=self.device,
                                                n_threads=self._threads())
            self.inertia_ = float(np.dot(exact_sq_dist(X, self.cluster_centers_, self.labels_),
                                         w.astype(np.float64)))
        return self

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> MiniBatchKMeans:
        """Update the centres with one batch ``X`` (initialises on the first call)."""
        first = not hasattr(self, "cluster_centers_")
        X = self._prepare(self._validate_X(X, reset=first))
        w = _check_weight(sample_weight, X.shape[0], X.dtype)
        if first:
            self._check_mb_params(X)
            self._random_state = check_random_state(self.random_state)
            self._init_state(X, w, self._random_state)
            self.n_iter_ = 0
        elif X.shape[0] == 0:
            return self
        bi, _ = self._step(X, w, self._random_state, X.shape[0])
        self.n_iter_ = self.n_steps_
        if self.compute_labels:
            self.labels_, _ = ops.kmeans_assign(X, self.cluster_centers_, device=self.device,
                                                n_threads=self._threads())
            self.inertia_ = float(np.dot(exact_sq_dist(X, self.cluster_centers_, self.labels_),
                                         w.astype(np.float64)))
        return self
