"""The parity self-check that ``device="auto"`` runs before it trusts the GPU.

A CUDA module that imports and sees a device is not yet a CUDA path that
gives the right answers (a driver bug, a mis-built kernel, a card the
kernels were never run on). So the first time ``device="auto"`` could pick
CUDA in a process, every op runs once on a small fixed input on both
devices, and the results must agree:

* ``cosine_topk`` and ``topk_scores``: the sorted top scores of every row
  within ``RTOL`` (relative to the row's largest score; the ids of near-ties
  may differ, the scores may not);
* ``kmeans_assign`` (dense and CSR): the distance to the chosen centre
  within ``RTOL * (||x||^2 + ||c||^2)`` of the best one;
* ``kmeans_update`` (dense and CSR): sums and counts within ``RTOL``.

If any op disagrees or raises, ``auto`` stays on the CPU for the rest of the
process, a ``RuntimeWarning`` says why once, and ``cohortrec info`` shows
the reason. An explicit ``device="cuda"`` is not affected: it still means
CUDA.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

RTOL = 1e-4  # float32 inputs: products of ~30 terms carry relative errors near 1e-6
_lock = threading.RLock()
_results: dict[int, tuple[bool, str]] = {}


def _inputs() -> dict[str, Any]:
    rng = np.random.default_rng(20261205)
    A = sp.random(48, 40, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    A.data[:] = rng.uniform(0.1, 1.0, A.nnz).astype(np.float32)
    B = sp.random(36, 40, density=0.25, format="csr", random_state=rng, dtype=np.float32)
    B.data[:] = rng.uniform(0.1, 1.0, B.nnz).astype(np.float32)
    X = rng.standard_normal((64, 12)).astype(np.float32) + 3.0  # uncentred, as real embeddings are
    C = X[rng.choice(64, 6, replace=False)] + rng.normal(0, 0.1, (6, 12)).astype(np.float32)
    return {"A": A, "B": B, "X": X, "Xs": sp.csr_matrix(np.where(np.abs(X - 3) > 1, X, 0)), "C": C,
            "labels": rng.integers(0, 6, 64)}


def _rowwise_scores(M: sp.csr_matrix) -> list[np.ndarray]:
    return [np.sort(M.data[M.indptr[i]:M.indptr[i + 1]])[::-1] for i in range(M.shape[0])]


def _close(a: np.ndarray, b: np.ndarray, scale: float) -> bool:
    return a.shape == b.shape and bool(np.all(np.abs(a.astype(np.float64) - b.astype(np.float64))
                                              <= RTOL * max(scale, 1e-30)))


def _check_cosine(run: Callable[..., Any], d: dict[str, Any]) -> str:
    for B in (None, d["B"]):
        cpu, gpu = run("cosine_topk", d["A"], B, k=5)
        for i, (c, g) in enumerate(zip(_rowwise_scores(cpu), _rowwise_scores(gpu))):
            if not _close(c, g, float(np.abs(c).max(initial=0.0))):
                return f"cosine_topk row {i}: scores {g.tolist()} on CUDA, {c.tolist()} on the CPU"
    return ""


def _check_topk_scores(run: Callable[..., Any], d: dict[str, Any]) -> str:
    R = d["B"].T.tocsr()  # 40 x 36
    (ci, cs), (gi, gs) = run("topk_scores", d["A"], R, n=4, exclude=d["A"] @ R)
    if ci.shape != gi.shape:
        return f"topk_scores: shapes {gi.shape} on CUDA, {ci.shape} on the CPU"
    if not (np.isfinite(cs) == np.isfinite(gs)).all():
        return "topk_scores: rows with a different number of candidates"
    fin = np.isfinite(cs)
    if not _close(cs[fin], gs[fin], float(np.abs(cs[fin]).max(initial=0.0))):
        return "topk_scores: the top scores differ"
    return ""


def _check_assign(run: Callable[..., Any], d: dict[str, Any]) -> str:
    C64 = d["C"].astype(np.float64)
    for name, X in (("dense", d["X"]), ("CSR", d["Xs"])):
        (cl, _), (gl, _) = run("kmeans_assign", X, d["C"])
        X64 = X.toarray().astype(np.float64) if sp.issparse(X) else X.astype(np.float64)
        if gl.shape != cl.shape or gl.min(initial=0) < 0 or gl.max(initial=0) >= C64.shape[0]:
            return f"kmeans_assign ({name}): labels out of range on CUDA"
        dist = ((X64[:, None, :] - C64[None, :, :]) ** 2).sum(axis=2)
        scale = (X64 ** 2).sum(axis=1) + (C64 ** 2).sum(axis=1).max()
        gap = dist[np.arange(len(gl)), gl] - dist.min(axis=1)
        if (gap > RTOL * scale).any():
            i = int(np.argmax(gap - RTOL * scale))
            return f"kmeans_assign ({name}): row {i} got centre {int(gl[i])}, not the nearest ({int(cl[i])})"
    return ""


def _check_update(run: Callable[..., Any], d: dict[str, Any]) -> str:
    for name, X in (("dense", d["X"]), ("CSR", d["Xs"])):
        (cs, cc), (gs, gc) = run("kmeans_update", X, d["labels"], 6)
        if not (_close(cs, gs, float(np.abs(cs).max())) and _close(cc, gc, float(np.abs(cc).max()))):
            return f"kmeans_update ({name}): sums or counts differ"
    return ""


def parity_check() -> tuple[bool, str]:
    """Run every op on both devices; (agree, reason they do not)."""
    from cohortrec import ops  # noqa: PLC0415 - the ops import this module's caller

    def run(op: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        fn = getattr(ops, op)
        return fn(*args, device="cpu", **kwargs), fn(*args, device="cuda", **kwargs)

    d = _inputs()
    for check in (_check_cosine, _check_topk_scores, _check_assign, _check_update):
        try:
            why = check(run, d)
        except Exception as exc:  # noqa: BLE001 - any failure of the CUDA path means: do not auto-select it
            why = f"{check.__name__[7:]} raised {type(exc).__name__}: {exc}"
        if why:
            return False, why
    return True, ""


def auto_cuda_ok(module: object) -> tuple[bool, str]:
    """The parity verdict for ``module`` (the CUDA module in use), computed once per process."""
    key = id(module)
    with _lock:
        if key not in _results:
            ok, why = parity_check()
            _results[key] = (ok, why)
            if not ok:
                warnings.warn(f"cohortrec: the CUDA path failed its parity self-check ({why}); "
                              "device='auto' uses the CPU in this process (device='cuda' still forces CUDA; "
                              "`cohortrec info` shows the reason)", RuntimeWarning, stacklevel=4)
        return _results[key]
