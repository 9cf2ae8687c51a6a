"""ALS: the native half-step against dense NumPy references, plus the model.

The reference of a half-step solves, for every row ``u``, the exact normal
equations of Hu, Koren & Volinsky (2008) in float64:
``(Y^T Y + reg I + Y^T (C_u - I) Y) x = Y^T C_u p_u``. The exact path
(``cg_steps=0``) must match it to float32 rounding, and so must the
conjugate gradient given enough steps; with few steps the kernel must match
a NumPy transcription of implicit's ``least_squares_cg`` step for step.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import test_fuzz
from cohortrec import _core
from cohortrec.ops import als_gram, als_loss, als_solve
from cohortrec.recommenders import ALS, RecommenderBase, load_model
from test_recommenders import RecommenderMixin, random_interactions

ISAS = ["generic", "avx2", "avx512"]


def supported_isas() -> list[str]:
    out = []
    for name in ISAS:
        try:
            _core._set_isa(name)
            out.append(name)
        except ValueError:
            pass
        finally:
            _core._set_isa("auto")
    return out


# ---------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------
def row_reg(reg, u: int) -> float:
    """Row u's penalty: ``reg`` itself, or its entry u where it is one per row."""
    return float(reg[u]) if np.ndim(reg) else float(reg)


def exact_reference(C: sp.csr_matrix, Y: np.ndarray, reg, alpha: float) -> np.ndarray:
    """Row-by-row dense solve of the ALS normal equations (float64); ``reg`` a scalar or one per row."""
    Yd = Y.astype(np.float64)
    f = Y.shape[1]
    X = np.zeros((C.shape[0], f))
    for u in range(C.shape[0]):
        s, e = C.indptr[u], C.indptr[u + 1]
        if s == e:
            continue
        i = C.indices[s:e]
        c = alpha * C.data[s:e].astype(np.float64)
        conf = np.abs(c)
        A = Yd.T @ Yd + row_reg(reg, u) * np.eye(f) + (Yd[i].T * (conf - 1.0)) @ Yd[i]
        b = Yd[i].T @ np.where(c > 0, c, 0.0)
        X[u] = np.linalg.solve(A, b)
    return X


def cg_reference(C: sp.csr_matrix, Y: np.ndarray, X0: np.ndarray, reg, alpha: float,
                 steps: int, early: list | None = None) -> np.ndarray:
    """implicit's least_squares_cg, transcribed in float64 (one row at a time; ``reg`` a scalar or one per row).

    ``early`` collects the rows whose squared residual fell below 1e-6 of the start before a step: in exact
    arithmetic CG has converged there (a matrix with few distinct eigenvalues, e.g. more factors than items),
    and further float32 steps follow rounding noise, not the float64 iterates.
    """
    Yd = Y.astype(np.float64)
    f = Y.shape[1]
    X = X0.astype(np.float64).copy()
    for u in range(C.shape[0]):
        G = Yd.T @ Yd + row_reg(reg, u) * np.eye(f)
        s, e = C.indptr[u], C.indptr[u + 1]
        if s == e:
            X[u] = 0
            continue
        i = C.indices[s:e]
        c = alpha * C.data[s:e].astype(np.float64)
        w = np.abs(c) - 1.0
        Yu = Yd[i]
        x = X[u]
        r = -G @ x + Yu.T @ (np.where(c > 0, c, 0.0) - w * (Yu @ x))
        p = r.copy()
        rsold = r @ r
        if rsold < 1e-20:
            continue
        start = rsold
        for step in range(steps):
            if early is not None and step > 0 and rsold < 1e-6 * start:
                early.append(u)
            Ap = G @ p + Yu.T @ (w * (Yu @ p))
            a = rsold / (p @ Ap)
            x = x + a * p
            r = r - a * Ap
            rsnew = r @ r
            if rsnew < 1e-20:
                break
            p = r + rsnew / rsold * p
            rsold = rsnew
        X[u] = x
    return X


def loss_reference(C: sp.csr_matrix, X: np.ndarray, Y: np.ndarray, reg: float, alpha: float,
                   reg_rows=None, reg_cols=None) -> float:
    S = X.astype(np.float64) @ Y.astype(np.float64).T
    D = C.toarray().astype(np.float64) * alpha
    conf = np.where(D != 0, np.abs(D), 1.0)
    pref = (D > 0).astype(np.float64)
    rx = reg if reg_rows is None else np.asarray(reg_rows, dtype=np.float64)
    ry = reg if reg_cols is None else np.asarray(reg_cols, dtype=np.float64)
    total = (conf * (pref - S) ** 2).sum() + (rx * (X.astype(np.float64) ** 2).sum(axis=1)).sum() \
        + (ry * (Y.astype(np.float64) ** 2).sum(axis=1)).sum()
    denom = np.abs(D).sum() + C.shape[0] * C.shape[1] - C.nnz
    return total / denom if denom > 0 else 0.0


def random_case(rng: np.random.Generator, n: int, m: int, f: int, density: float, *, negatives: bool = False,
                low: float = 1.0, high: float = 5.0) -> tuple[sp.csr_matrix, np.ndarray]:
    C = sp.random(n, m, density=density, format="csr", dtype=np.float32,
                  random_state=np.random.RandomState(rng.integers(2**31)))
    C.data = rng.uniform(low, high, C.nnz).astype(np.float32)
    if negatives and C.nnz:
        C.data[rng.random(C.nnz) < 0.2] *= -1
    Y = rng.standard_normal((m, f)).astype(np.float32)
    return C, Y


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-6)) if a.size else 0.0


# ---------------------------------------------------------------------------
# the half-step kernel
# ---------------------------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 30), m=st.integers(1, 60), f=st.integers(1, 70), density=st.floats(0.0, 0.6),
       reg=st.floats(0.05, 20.0), alpha=st.floats(1.0, 10.0), negatives=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_exact_solve_matches_dense_reference(n, m, f, density, reg, alpha, negatives, seed):
    rng = np.random.default_rng(seed)
    C, Y = random_case(rng, n, m, f, density, negatives=negatives)
    X = rng.standard_normal((n, f)).astype(np.float32)  # overwritten: exact solve ignores the start
    als_solve(C, Y, X, regularization=reg, alpha=alpha, cg_steps=0)
    ref = exact_reference(C, Y, reg, alpha)
    assert rel_err(X, ref) < 2e-4


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 25), m=st.integers(1, 50), f=st.integers(1, 40), density=st.floats(0.05, 0.6),
       reg=st.floats(1.0, 20.0), alpha=st.floats(1.0, 10.0), seed=st.integers(0, 2**31 - 1))
def test_cg_converges_to_the_solve(n, m, f, density, reg, alpha, seed):
    """Confidences >= 1 make every row's matrix positive definite: CG converges."""
    rng = np.random.default_rng(seed)
    C, Y = random_case(rng, n, m, f, density)
    Y /= np.sqrt(m)  # keeps the condition number moderate
    X = np.zeros((n, f), dtype=np.float32)
    als_solve(C, Y, X, regularization=reg, alpha=alpha, cg_steps=4 * f + 10)
    ref = exact_reference(C, Y, reg, alpha)
    assert rel_err(X, ref) < 1e-3


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 30), m=st.integers(1, 60), f=st.integers(1, 70), density=st.floats(0.0, 0.6),
       steps=st.integers(1, 4), reg=st.floats(0.1, 10.0), alpha=st.floats(1.0, 10.0),
       negatives=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_cg_steps_match_implicit_iteration(n, m, f, density, steps, reg, alpha, negatives, seed):
    """Few steps from a warm start: the same iterates as implicit's CG (float32 rounding).

    With more factors than items the row matrices have few distinct eigenvalues: CG converges within a
    few steps in exact arithmetic and further float32 steps follow rounding noise (seen at m=3, f=7..15).
    """
    f = min(f, m)
    rng = np.random.default_rng(seed)
    C, Y = random_case(rng, n, m, f, density, negatives=negatives)
    Y /= np.sqrt(m)
    X0 = (0.1 * rng.standard_normal((n, f))).astype(np.float32)
    X = X0.copy()
    als_solve(C, Y, X, regularization=reg, alpha=alpha, cg_steps=steps)
    early: list = []
    ref = cg_reference(C, Y, X0, reg, alpha, steps, early)
    assume(np.isfinite(ref).all())
    follow = np.setdiff1d(np.arange(n), early)  # rows converged early: see test_cg_converges_to_the_solve
    np.testing.assert_allclose(X[follow], ref[follow], atol=2e-3 * max(1.0, np.abs(ref).max(initial=0.0)),
                               rtol=2e-3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 25), m=st.integers(1, 50), f=st.integers(1, 70), density=st.floats(0.0, 0.6),
       reg=st.floats(0.5, 20.0), alpha=st.floats(1.0, 10.0), negatives=st.booleans(), steps=st.integers(0, 4),
       seed=st.integers(0, 2**31 - 1))
def test_per_row_regularization_matches_references(n, m, f, density, reg, alpha, negatives, steps, seed):
    """row_regularization replaces the penalty row by row, in the exact solve and in every CG step alike."""
    rng = np.random.default_rng(seed)
    C, Y = random_case(rng, n, m, f, density, negatives=negatives)
    Y /= np.sqrt(m)
    per_row = reg * rng.uniform(0.5, 2.0, n)  # away from 0: a near-singular row makes float32 CG diverge
    X0 = (0.1 * rng.standard_normal((n, f))).astype(np.float32)
    X = X0.copy()
    als_solve(C, Y, X, regularization=reg, alpha=alpha, cg_steps=steps, row_regularization=per_row)
    if steps == 0:
        ref = exact_reference(C, Y, per_row, alpha)
        assert rel_err(X, ref) < 2e-3
    elif f <= m:  # more factors than items: degenerate spectra, float32 CG steps follow rounding noise
        # (test_cg_steps_match_implicit_iteration); the exact branch above covers any f
        early: list = []
        ref = cg_reference(C, Y, X0, per_row, alpha, steps, early)
        assume(np.isfinite(ref).all())
        follow = np.setdiff1d(np.arange(n), early)
        np.testing.assert_allclose(X[follow], ref[follow], atol=2e-3 * max(1.0, np.abs(ref).max(initial=0.0)),
                                   rtol=2e-3)
    # the same penalty for every row given per row: the scalar path's results
    X1, X2 = X0.copy(), X0.copy()
    als_solve(C, Y, X1, regularization=reg, alpha=alpha, cg_steps=steps)
    als_solve(C, Y, X2, regularization=reg, alpha=alpha, cg_steps=steps, row_regularization=np.full(n, reg))
    np.testing.assert_array_equal(X1, X2)


def test_per_row_regularization_is_validated():
    rng = np.random.default_rng(3)
    C, Y = random_case(rng, 6, 8, 3, 0.5)
    X = np.zeros((6, 3), np.float32)
    for bad, match in ((np.ones(5), "one value per row"), (np.array([1, 1, np.nan, 1, 1, 1.0]), "finite"),
                       (-np.ones(6), ">= 0"), (np.full(6, 1e39), "float32")):
        with pytest.raises(ValueError, match="row_regularization"):
            als_solve(C, Y, X, regularization=1.0, row_regularization=bad)
        with pytest.raises(ValueError, match=match):
            als_solve(C, Y, X, regularization=1.0, row_regularization=bad)
    with pytest.raises(ValueError, match="col_regularization"):
        als_loss(C, X, Y, regularization=1.0, col_regularization=np.ones(3))


@pytest.mark.parametrize("f", [1, 3, 4, 7, 15, 16, 17, 31, 33, 63, 64, 65, 96, 127, 128, 129, 200])
def test_factor_counts_and_isas(f):
    """Every width (vector tails, chunk tails) on every instruction set the CPU has."""
    rng = np.random.default_rng(f)
    C, Y = random_case(rng, 13, 40, f, 0.3, negatives=True)
    Y /= np.sqrt(40)
    X0 = (0.1 * rng.standard_normal((13, f))).astype(np.float32)
    ref = cg_reference(C, Y, X0, 2.0, 3.0, 3)
    exact = exact_reference(C, Y, 2.0, 3.0)
    for isa in supported_isas():
        _core._set_isa(isa)
        try:
            X = X0.copy()
            als_solve(C, Y, X, regularization=2.0, alpha=3.0, cg_steps=3)
            np.testing.assert_allclose(X, ref, atol=1e-3 * max(1.0, np.abs(ref).max()), err_msg=isa)
            X = X0.copy()
            als_solve(C, Y, X, regularization=2.0, alpha=3.0, cg_steps=0)
            assert rel_err(X, exact) < 2e-4, isa
        finally:
            _core._set_isa("auto")


def test_threads_do_not_change_results():
    rng = np.random.default_rng(5)
    C, Y = random_case(rng, 301, 120, 24, 0.1)
    X0 = rng.random((301, 24), dtype=np.float32)
    outs = []
    for nt in (1, 2, 3):
        X = X0.copy()
        als_solve(C, Y, X, regularization=1.0, alpha=4.0, cg_steps=3, n_threads=nt)
        outs.append(X)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def test_edge_cases():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((5, 4)).astype(np.float32)
    # empty rows get zero factors; other rows untouched by them
    C = sp.csr_matrix(np.array([[0, 0, 0, 0, 0], [1, 0, 2, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    X = np.ones((3, 4), dtype=np.float32)
    als_solve(C, Y, X, regularization=0.5, alpha=2.0, cg_steps=3)
    assert (X[0] == 0).all() and (X[2] == 0).all() and np.abs(X[1]).sum() > 0
    # no rows, no stored values
    als_solve(sp.csr_matrix((0, 5), dtype=np.float32), Y, np.zeros((0, 4), np.float32), regularization=1.0)
    X = np.ones((4, 4), dtype=np.float32)
    als_solve(sp.csr_matrix((4, 5), dtype=np.float32), Y, X, regularization=1.0)
    assert (X == 0).all()
    # one item, one factor
    C1 = sp.csr_matrix(np.array([[3.0], [0.0], [1.0]], dtype=np.float32))
    Y1 = np.array([[0.5]], dtype=np.float32)
    X1 = np.zeros((3, 1), dtype=np.float32)
    als_solve(C1, Y1, X1, regularization=0.1, alpha=1.0, cg_steps=1)  # 1-D: one CG step is exact
    np.testing.assert_allclose(X1[:, 0], [3 * 0.5 / (0.25 * 3 + 0.1), 0.0, 0.5 / (0.25 + 0.1)], rtol=1e-5)
    # zero factors on the other side: only the regulariser is left, x = 0
    X = np.ones((3, 4), dtype=np.float32)
    als_solve(C, np.zeros((5, 4), np.float32), X, regularization=1.0, cg_steps=3)
    assert (X == 0).all()
    # a long row (many more entries than the lockstep lanes and vector widths)
    Cl, Yl = random_case(rng, 6, 3000, 9, 0.9)
    Yl /= 50
    X = np.zeros((6, 9), dtype=np.float32)
    als_solve(Cl, Yl, X, regularization=1.0, alpha=2.0, cg_steps=0)
    assert rel_err(X, exact_reference(Cl, Yl, 1.0, 2.0)) < 2e-4
    # int64 indices
    C64 = C.copy()
    C64.indices = C64.indices.astype(np.int64)
    C64.indptr = C64.indptr.astype(np.int64)
    Xa = np.zeros((3, 4), np.float32)
    Xb = np.zeros((3, 4), np.float32)
    als_solve(C, Y, Xa, regularization=0.5, alpha=2.0)
    als_solve(C64, Y, Xb, regularization=0.5, alpha=2.0)
    np.testing.assert_array_equal(Xa, Xb)


def test_confidence_below_one_uses_exact_fallback():
    """0 < c < 1 gives a matrix that may be indefinite: LU still solves it."""
    rng = np.random.default_rng(3)
    C, Y = random_case(rng, 20, 30, 6, 0.4, low=0.1, high=0.9)
    X = np.zeros((20, 6), dtype=np.float32)
    als_solve(C, Y, X, regularization=0.01, alpha=1.0, cg_steps=0)
    ref = exact_reference(C, Y, 0.01, 1.0)
    assert rel_err(X, ref) < 1e-3
    X = np.zeros((20, 6), dtype=np.float32)
    als_solve(C, Y, X, regularization=0.01, alpha=1.0, cg_steps=3)  # CG stops instead of diverging
    assert np.isfinite(X).all()


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 20), m=st.integers(1, 30), f=st.integers(1, 12), density=st.floats(0.0, 0.5),
       reg=st.floats(0.0, 5.0), alpha=st.floats(0.5, 20.0), seed=st.integers(0, 2**31 - 1))
def test_loss_matches_dense_reference(n, m, f, density, reg, alpha, seed):
    rng = np.random.default_rng(seed)
    C, Y = random_case(rng, n, m, f, density, negatives=True)
    X = rng.standard_normal((n, f)).astype(np.float32)
    got = als_loss(C, X, Y, regularization=reg, alpha=alpha)
    assert got == pytest.approx(loss_reference(C, X, Y, reg, alpha), rel=1e-6, abs=1e-9)
    rows, cols = rng.uniform(0, 5, n), rng.uniform(0, 5, m)
    got = als_loss(C, X, Y, regularization=reg, alpha=alpha, row_regularization=rows, col_regularization=cols)
    assert got == pytest.approx(loss_reference(C, X, Y, reg, alpha, rows, cols), rel=1e-6, abs=1e-9)


def test_gram():
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((50, 7)).astype(np.float32)
    G = als_gram(Y, 0.5)
    assert G.dtype == np.float32 and G.flags.c_contiguous
    np.testing.assert_array_equal(G, G.T)
    np.testing.assert_allclose(G, Y.astype(np.float64).T @ Y + 0.5 * np.eye(7), rtol=1e-5, atol=1e-4)


def test_validation_errors():
    rng = np.random.default_rng(2)
    C, Y = random_case(rng, 4, 6, 3, 0.5)
    X = np.zeros((4, 3), dtype=np.float32)
    kw = {"regularization": 1.0}
    with pytest.raises(TypeError, match="C must be"):
        als_solve(C.toarray(), Y, X, **kw)
    with pytest.raises(TypeError, match="C must hold float32"):
        als_solve(C.astype(np.float64), Y, X, **kw)
    with pytest.raises(TypeError, match="C must be a scipy.sparse CSR"):
        als_solve(C.tocsc(), Y, X, **kw)
    bad = C.copy()
    bad.indptr = bad.indptr.copy()
    bad.indptr[0] = 1
    with pytest.raises(ValueError, match="start at 0"):
        als_solve(bad, Y, X, **kw)
    bad = C.copy()
    bad.indptr = bad.indptr.copy()
    bad.indptr[-1] -= 1
    with pytest.raises(ValueError, match="end at|ends at"):
        als_solve(bad, Y, X, **kw)
    bad = sp.csr_matrix((C.data, C.indices, C.indptr.copy()), shape=C.shape)
    bad.indptr[2], bad.indptr[3] = bad.indptr[3], bad.indptr[2] - 0
    if (np.diff(bad.indptr) >= 0).all():  # make sure it is decreasing somewhere
        bad.indptr[1] = bad.indptr[-1]
    with pytest.raises(ValueError, match="non-decreasing"):
        als_solve(bad, Y, X, **kw)
    bad = C.copy()
    bad.indices = bad.indices.copy()
    bad.indices[0] = 6
    with pytest.raises(ValueError, match="column index 6 out of range"):
        als_solve(bad, Y, X, **kw)
    bad = C.copy()
    bad.data = bad.data.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        als_solve(bad, Y, X, **kw)
    with pytest.raises(ValueError, match="Y must have shape"):
        als_solve(C, Y[:5], X, **kw)
    with pytest.raises(TypeError, match="Y must be float32"):
        als_solve(C, Y.astype(np.float64), X, **kw)
    Yn = Y.copy()
    Yn[0, 0] = np.inf
    with pytest.raises(ValueError, match="Y contains NaN"):
        als_solve(C, Yn, X, **kw)
    with pytest.raises(ValueError, match="X must have shape"):
        als_solve(C, Y, np.zeros((4, 2), np.float32), **kw)
    with pytest.raises(ValueError, match="C-contiguous"):
        als_solve(C, Y, np.zeros((3, 4), np.float32).T, **kw)
    ro = np.zeros((4, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        als_solve(C, Y, ro, **kw)
    with pytest.raises(ValueError, match="share memory"):
        sq = sp.csr_matrix((6, 6), dtype=np.float32)
        Z = np.zeros((6, 3), np.float32)
        als_solve(sq, Z, Z, **kw)
    with pytest.raises(ValueError, match="gram must be symmetric"):
        G = np.arange(9, dtype=np.float32).reshape(3, 3)
        als_solve(C, Y, X, gram=G, **kw)
    with pytest.raises(ValueError, match="gram must have shape"):
        als_solve(C, Y, X, gram=np.eye(4, dtype=np.float32), **kw)
    with pytest.raises(ValueError, match="alpha"):
        als_solve(C, Y, X, regularization=1.0, alpha=0.0)
    with pytest.raises(ValueError, match="regularization"):
        als_solve(C, Y, X, regularization=-1.0)
    with pytest.raises(ValueError, match="cg_steps"):
        als_solve(C, Y, X, regularization=1.0, cg_steps=-1)
    with pytest.raises(ValueError, match="n_threads"):
        als_solve(C, Y, X, regularization=1.0, n_threads=0)
    # the binding itself refuses wrong dtypes (no silent conversion)
    with pytest.raises(TypeError):
        _core.als_solve(C.indptr.astype(np.int32), C.indices, C.data, 4, 6, 1.0, Y, np.eye(3, dtype=np.float32),
                        X, 3, 1)


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
class TestALSCommon(RecommenderMixin):
    def make(self, **kw):
        kw.setdefault("factors", 8)
        kw.setdefault("regularization", 0.1)
        kw.setdefault("iterations", 10)
        kw.setdefault("random_state", 0)
        return ALS(**kw)

    def test_similar_users_same_parity(self, fitted):
        """Dense factors: every user is a candidate, the same-parity users rank first."""
        model, _ = fitted
        ids, _scores = model.similar_users(3, N=10)
        assert ids[0] == 3 and np.all(ids % 2 == 1)
        ids, _ = model.similar_users(3, N=10, filter_users=[3])
        assert 3 not in ids
        ids, _ = model.similar_users(3, N=3, users=[1, 2, 5])
        assert set(ids[:2]) == {1, 5} and ids[2] == 2

    def test_recalculate_user_known_users(self, rng):
        """recalculate_user solves exactly; compare with the dense solve, not the stored factors."""
        X = random_interactions(rng)
        model = self.make(alpha=2.0).fit(X)
        users = np.arange(0, 60, 3)
        got = model.recalculate_user(users, X[users])
        ref = exact_reference(X[users], model.item_factors, 0.1, 2.0)
        assert rel_err(got, ref) < 1e-4
        ids, sc = model.recommend(users, X[users], N=6, recalculate_user=True)
        for r in range(len(users)):
            s = ref[r] @ model.item_factors.astype(np.float64).T
            s[X[users[r]].indices] = -np.inf
            order = np.lexsort((np.arange(len(s)), -s))[:6]
            np.testing.assert_allclose(sc[r], s[order], rtol=1e-4, atol=1e-5)
        one = model.recalculate_user(3, X[3])
        assert one.shape == (8,)


class TestALSFrequencyScaledCommon(TestALSCommon):
    def make(self, **kw):
        kw.setdefault("frequency_scaling", 0.5)
        return super().make(**kw)

    def test_recalculate_user_known_users(self, rng):
        """Each user folded in with the penalty of their own count (the dense solve with per-row penalties)."""
        X = random_interactions(rng)
        model = self.make(alpha=2.0).fit(X)
        users = np.arange(0, 60, 3)
        reg_u, _ = frequency_penalties(X, 0.1, 0.5)
        got = model.recalculate_user(users, X[users])
        assert rel_err(got, exact_reference(X[users], model.item_factors, reg_u[users], 2.0)) < 1e-4


def frequency_penalties(X: sp.csr_matrix, reg: float, nu: float) -> tuple[np.ndarray, np.ndarray]:
    """The documented rule: reg * ((n + 1) / (mean n + 1)) ** nu, users and items each with their own mean."""
    n_users, n_items = np.diff(X.indptr), np.diff(X.tocsc().indptr)
    return (reg * ((n_users + 1.0) / (X.nnz / X.shape[0] + 1.0)) ** nu,
            reg * ((n_items + 1.0) / (X.nnz / X.shape[1] + 1.0)) ** nu)


@pytest.mark.parametrize("nu", [0.25, 1.0])
def test_frequency_scaling_matches_dense_reference(nu):
    """One exact sweep from implicit's initial factors, each row with its frequency-scaled penalty."""
    X = random_interactions(np.random.default_rng(5))
    reg, alpha, f = 0.5, 3.0, 6
    model = ALS(factors=f, regularization=reg, alpha=alpha, iterations=1, use_cg=False, random_state=4,
                frequency_scaling=nu, calculate_training_loss=True).fit(X)
    rng = np.random.default_rng(4)
    rng.random((X.shape[0], f), dtype=np.float32)  # the users' initial factors (replaced by the first solve)
    V0 = rng.random((X.shape[1], f), dtype=np.float32) * np.float32(0.01)
    reg_u, reg_i = frequency_penalties(X, reg, nu)
    U1 = exact_reference(X, V0, reg_u, alpha)
    V1 = exact_reference(X.T.tocsr(), U1.astype(np.float32), reg_i, alpha)
    assert rel_err(model.user_factors, U1) < 1e-4
    assert rel_err(model.item_factors, V1) < 1e-3
    assert model.loss_history_[0] == pytest.approx(
        loss_reference(X, model.user_factors, model.item_factors, reg, alpha, reg_u, reg_i), rel=1e-5)
    # a user folded in gets the penalty of their own count, on the training users' scale
    users = np.arange(0, 40, 7)
    got = model.recalculate_user(users, X[users])
    assert rel_err(got, exact_reference(X[users], model.item_factors, reg_u[users], alpha)) < 1e-4
    # and the uniform penalty is the special case nu = 0
    plain = ALS(factors=f, regularization=reg, alpha=alpha, iterations=2, random_state=4).fit(X)
    zero = ALS(factors=f, regularization=reg, alpha=alpha, iterations=2, random_state=4, frequency_scaling=0.0).fit(X)
    np.testing.assert_array_equal(plain.user_factors, zero.user_factors)
    scaled = ALS(factors=f, regularization=reg, alpha=alpha, iterations=2, random_state=4,
                 frequency_scaling=nu).fit(X)
    assert not np.array_equal(plain.user_factors, scaled.user_factors)


def test_matches_implicit():
    """Same parameters and seed: the same initial factors and (up to float32 rounding) the same updates."""
    ials = pytest.importorskip("implicit.cpu.als")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(7)
    X = random_interactions(rng, 300, 200, 0.05)
    ours = ALS(factors=16, regularization=0.1, alpha=2.0, iterations=1, random_state=3, n_threads=1).fit(X)
    with threadpoolctl.threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # implicit's advice on BLAS threads, heeded above
        theirs = ials.AlternatingLeastSquares(factors=16, regularization=0.1, alpha=2.0, iterations=1,
                                              random_state=3, num_threads=1)
        theirs.fit(X, show_progress=False)
    np.testing.assert_allclose(ours.user_factors, theirs.user_factors, atol=1e-4)
    np.testing.assert_allclose(ours.item_factors, theirs.item_factors, atol=1e-3)
    a = ours.recommend(np.arange(300), X, N=10)[0]
    b = theirs.recommend(np.arange(300), X, N=10)[0]
    assert (a == b).mean() > 0.95


def test_exact_als_loss_never_increases():
    """Each exact half-step minimises the objective: the loss is non-increasing."""
    rng = np.random.default_rng(11)
    X = random_interactions(rng, 80, 50, 0.1)
    m = ALS(factors=6, regularization=0.5, alpha=3.0, iterations=8, use_cg=False,
            calculate_training_loss=True, random_state=1).fit(X)
    h = np.array(m.loss_history_)
    assert len(h) == 8 and np.all(np.diff(h) <= 1e-6 * h[:-1])
    m2 = ALS(factors=6, regularization=0.5, alpha=3.0, iterations=8, calculate_training_loss=True,
             random_state=1).fit(X)
    assert m2.loss_history_[-1] < m2.loss_history_[0]
    assert m2.loss_history_[-1] == pytest.approx(
        als_loss(m2.user_items_, m2.user_factors, m2.item_factors, regularization=0.5, alpha=3.0))


def test_callback_and_reproducibility():
    rng = np.random.default_rng(12)
    X = random_interactions(rng)
    calls = []
    a = ALS(factors=4, iterations=3, random_state=5).fit(X, callback=lambda i, s, loss: calls.append((i, loss)))
    assert [c[0] for c in calls] == [0, 1, 2] and all(c[1] is None for c in calls)
    b = ALS(factors=4, iterations=3, random_state=5).fit(X)
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    c = ALS(factors=4, iterations=3, random_state=np.random.default_rng(5)).fit(X)
    np.testing.assert_array_equal(a.item_factors, c.item_factors)
    assert a.user_factors.dtype == np.float32 and a.user_factors.shape == (60, 4)
    zero = ALS(factors=4, iterations=0, random_state=5).fit(X)
    assert zero.user_factors.max() < 0.01  # implicit's initialisation only


def test_save_load_generator_state_and_loss(tmp_path):
    rng = np.random.default_rng(13)
    X = random_interactions(rng)
    m = ALS(factors=4, iterations=2, random_state=np.random.default_rng(0), calculate_training_loss=True).fit(X)
    m.save(tmp_path / "als")
    loaded = load_model(tmp_path / "als.npz")
    assert isinstance(loaded, ALS) and loaded.random_state is None
    assert loaded.loss_history_ == pytest.approx(m.loss_history_)
    np.testing.assert_array_equal(loaded.user_factors, m.user_factors)
    assert isinstance(RecommenderBase.load(tmp_path / "als.npz"), ALS)


def test_negative_values_are_dislikes():
    X = sp.csr_matrix(np.array([[1, 1, -1, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]], dtype=np.float32))
    m = ALS(factors=3, regularization=0.01, iterations=20, alpha=5.0, random_state=0).fit(X)
    assert np.isfinite(m.user_factors).all()
    s = m.user_factors[0] @ m.item_factors.T
    assert s[2] < s[0]


@pytest.mark.parametrize("kw, exc, match", [
    ({"factors": 0}, ValueError, "factors"),
    ({"factors": 2.5}, TypeError, "factors"),
    ({"regularization": -1}, ValueError, "regularization"),
    ({"alpha": 0.0}, ValueError, "alpha"),
    ({"alpha": float("nan")}, ValueError, "alpha"),
    ({"iterations": -1}, ValueError, "iterations"),
    ({"cg_steps": 0}, ValueError, "cg_steps"),
    ({"frequency_scaling": -0.5}, ValueError, "frequency_scaling"),
    ({"frequency_scaling": float("nan")}, ValueError, "frequency_scaling"),
    ({"random_state": "x"}, TypeError, "random_state"),
])
def test_parameter_errors(kw, exc, match):
    X = random_interactions(np.random.default_rng(0))
    with pytest.raises(exc, match=match):
        ALS(**kw).fit(X)


def test_use_cg_false_allows_any_cg_steps():
    X = random_interactions(np.random.default_rng(0))
    m = ALS(factors=4, iterations=2, use_cg=False, cg_steps=0, random_state=0).fit(X)
    assert np.isfinite(m.user_factors).all()


# ---------------------------------------------------------------------------
# corrupted inputs never reach native memory (tests/test_fuzz.py's corruptions)
# ---------------------------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(how=st.sampled_from(test_fuzz.CORRUPTIONS), seed=st.integers(0, 2**16), steps=st.sampled_from([0, 3]))
def test_corrupt_inputs_never_crash(how, seed, steps):
    rng = np.random.default_rng(seed)
    C = test_fuzz.corrupt(test_fuzz.valid_csr(seed, 12, 9), how, rng)
    Y = rng.random((9, 4), dtype=np.float32)
    X = np.zeros((max(C.shape[0], 0), 4), dtype=np.float32)
    test_fuzz.run_allowed(als_solve, C, Y, X, regularization=1.0, cg_steps=steps)
    test_fuzz.run_allowed(als_loss, C, X, Y, regularization=1.0)
    test_fuzz.run_allowed(ALS(factors=3, iterations=2, random_state=0).fit, C)
    model = ALS(factors=3, iterations=2, random_state=0).fit(test_fuzz.valid_csr(seed, 30, 9))
    rows = test_fuzz.corrupt(test_fuzz.valid_csr(seed, 5, 9), how, rng)
    for N in (0, 3, 10**12):
        test_fuzz.run_allowed(model.recommend, np.arange(5), rows, N=N, recalculate_user=bool(seed % 2))
