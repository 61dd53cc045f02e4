"""User penalties compiled with numba in the greedy BCD engine.

References: the built-in L1 solved by the same engine (objective values
within 1e-8 relative, coefficients within 1e-5 absolute: both solves stop at
tol=1e-10 on well-conditioned 150 x 40 problems), and, for penalties the
engine does not have, scipy's L-BFGS-B on a smooth objective or a plain
numpy FISTA run to 1e-12 (objective values within 1e-7 relative).
"""
import sys

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp

from sparsecore.optimize import (
    L1,
    Logistic,
    Multinomial,
    Quadratic,
    UserPenalty,
    greedy_bcd,
    user_datafit,
    user_penalty,
)

numba = pytest.importorskip("numba")

ALPHA = 0.05


def _l1_value(v):
    return ALPHA * abs(v)


def _l1_prox(v, step):
    t = ALPHA * step
    if v > t:
        return v - t
    if v < -t:
        return v + t
    return 0.0


# Huber penalty lam * (x^2 / (2 delta) if |x| <= delta else |x| - delta / 2):
# smooth, so a quasi-Newton method gives an independent reference
LAM, DELTA = 0.2, 0.3


def _huber_value(v):
    a = abs(v)
    return LAM * (a * a / (2 * DELTA) if a <= DELTA else a - DELTA / 2)


def _huber_prox(v, step):
    if abs(v) <= DELTA + LAM * step:
        return v / (1.0 + LAM * step / DELTA)
    return v - LAM * step if v > 0 else v + LAM * step


# asymmetric L1: a * x for x > 0, b * |x| for x < 0 (not a built-in)
A_POS, B_NEG = 0.02, 0.08


def _asym_value(v):
    return A_POS * v if v >= 0 else -B_NEG * v


def _asym_prox(v, step):
    if v > A_POS * step:
        return v - A_POS * step
    if v < -B_NEG * step:
        return v + B_NEG * step
    return 0.0


def _problem(seed=0, n=150, p=40, sparse=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    w = np.zeros(p)
    w[[1, 4, 9, 17]] = [1.5, -2.0, 1.0, -0.5]
    y = X @ w + 0.1 * rng.standard_normal(n)
    if sparse:
        X[rng.random(X.shape) < 0.6] = 0.0
        X = sp.csc_array(X)
    return X, y


@pytest.fixture(scope="module")
def user_l1():
    return user_penalty(_l1_value, _l1_prox, name="l1")


def _lasso_obj(X, y, w, b=0.0):
    r = y - X @ w - b
    return 0.5 * np.mean(r * r) + ALPHA * np.abs(w).sum()


@pytest.mark.parametrize("update", ["newton", "matrix", "gradient"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_user_l1_reaches_lasso_optimum(user_l1, update, sparse, fit_intercept):
    X, y = _problem(sparse=sparse)
    kw = dict(tol=1e-10, max_iter=20000, update=update, fit_intercept=fit_intercept)
    ours = greedy_bcd(Quadratic(), user_l1, X, y, **kw)
    ref = greedy_bcd(Quadratic(), L1(ALPHA), X, y, **kw)
    assert ours.converged and ours.criterion == "kkt"
    f_ours = _lasso_obj(X, y, ours.coef, ours.intercept)
    f_ref = _lasso_obj(X, y, ref.coef, ref.intercept)
    assert abs(f_ours - f_ref) <= 1e-8 * f_ref
    np.testing.assert_allclose(ours.coef, ref.coef, atol=1e-5)
    assert abs(ours.primal - f_ours) <= 1e-10 * f_ours


@pytest.mark.parametrize("selection,partition", [
    ("gs", "variable"), ("gsq", "variable"), ("gsd", "variable"),
    ("cyclic", "variable"), ("gsl", "sort"), ("random", "order"),
])
def test_user_l1_every_selection_rule(user_l1, selection, partition):
    X, y = _problem(1)
    kw = dict(tol=1e-10, max_iter=20000, selection=selection, partition=partition,
              random_state=0)
    if partition != "variable" or selection not in ("gs", "gsq", "gsd"):
        kw["block_size"] = 8
    ours = greedy_bcd(Quadratic(), user_l1, X, y, **kw)
    ref = greedy_bcd(Quadratic(), L1(ALPHA), X, y, tol=1e-12, max_iter=20000)
    assert ours.converged
    assert abs(_lasso_obj(X, y, ours.coef) - ref.primal) <= 1e-7 * ref.primal


def test_user_l1_logistic_and_multinomial(user_l1):
    X, y = _problem(2)
    yb = np.where(y > 0, 1.0, -1.0)
    ours = greedy_bcd(Logistic(), user_l1, X, yb, tol=1e-10, max_iter=20000)
    ref = greedy_bcd(Logistic(), L1(ALPHA), X, yb, tol=1e-12, max_iter=20000)
    assert abs(ours.primal - ref.primal) <= 1e-7 * ref.primal
    np.testing.assert_allclose(ours.coef, ref.coef, atol=1e-4)
    # multi-class: the per-class model solves take the user penalty
    yc = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    ours = greedy_bcd(Multinomial(), user_l1, X, yc, update="matrix", tol=1e-10,
                      max_iter=20000)
    ref = greedy_bcd(Multinomial(), L1(ALPHA), X, yc, update="matrix", tol=1e-12,
                     max_iter=20000)
    assert abs(ours.primal - ref.primal) <= 1e-6 * ref.primal


@pytest.mark.parametrize("update", ["newton", "matrix", "gradient"])
@pytest.mark.parametrize("sparse", [False, True])
def test_huber_penalty_against_lbfgs(update, sparse):
    X, y = _problem(3, sparse=sparse)
    Xd = X.toarray() if sparse else X
    pen = user_penalty(_huber_value, _huber_prox, name="huber")
    res = greedy_bcd(Quadratic(), pen, X, y, tol=1e-11, max_iter=20000, update=update)
    n = len(y)

    def fun(w):
        r = Xd @ w - y
        a = np.abs(w)
        quad = a <= DELTA
        g = np.where(quad, a * a / (2 * DELTA), a - DELTA / 2)
        dg = np.where(quad, w / DELTA, np.sign(w))
        return 0.5 * r @ r / n + LAM * g.sum(), Xd.T @ r / n + LAM * dg

    ref = scipy.optimize.minimize(fun, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B",
                                  options=dict(ftol=1e-15, gtol=1e-12, maxiter=10000))
    assert res.converged
    assert abs(res.primal - ref.fun) <= 1e-7 * ref.fun
    assert abs(fun(res.coef)[0] - res.primal) <= 1e-12 * res.primal
    np.testing.assert_allclose(res.coef, ref.x, atol=1e-4)


def _fista_logistic_asym(X, yb, n_iter=20000):
    n, p = X.shape
    L = 0.25 * np.linalg.norm(X, 2) ** 2 / n
    w = np.zeros(p)
    v = w.copy()
    t = 1.0
    for _ in range(n_iter):
        g = X.T @ (-yb / (1.0 + np.exp(yb * (X @ v)))) / n
        u = v - g / L
        s = 1.0 / L
        w_new = np.where(u > A_POS * s, u - A_POS * s, np.where(u < -B_NEG * s, u + B_NEG * s, 0.0))
        t_new = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        v = w_new + (t - 1) / t_new * (w_new - w)
        if np.max(np.abs(w_new - w)) < 1e-13:
            w = w_new
            break
        w, t = w_new, t_new
    return w


def _logistic_asym_obj(X, yb, w):
    return float(np.mean(np.logaddexp(0.0, -yb * (X @ w)))
                 + A_POS * w[w > 0].sum() - B_NEG * w[w < 0].sum())


@pytest.mark.parametrize("update", ["newton", "matrix"])
def test_asymmetric_l1_logistic_against_fista(update):
    X, y = _problem(4, n=120, p=25)
    yb = np.where(y > 0.3, 1.0, -1.0)
    pen = user_penalty(_asym_value, _asym_prox, name="asym-l1")
    res = greedy_bcd(Logistic(), pen, X, yb, tol=1e-10, max_iter=20000, update=update)
    ref = _fista_logistic_asym(X, yb)
    f_ref = _logistic_asym_obj(X, yb, ref)
    assert res.converged
    assert abs(res.primal - f_ref) <= 1e-7 * f_ref
    np.testing.assert_allclose(res.coef, ref, atol=1e-4)
    # the penalty is not symmetric: the solution differs from the symmetric one
    sym = greedy_bcd(Logistic(), L1(A_POS), X, yb, tol=1e-10)
    assert np.max(np.abs(sym.coef - res.coef)) > 1e-3


def test_user_datafit_with_user_penalty(user_l1):
    X, y = _problem(5)
    sq = user_datafit(lambda y, z: 0.5 * (y - z) * (y - z), lambda y, z: z - y, curvature=1.0)
    ours = greedy_bcd(sq, user_l1, X, y, tol=1e-10, max_iter=20000)
    ref = greedy_bcd(Quadratic(), L1(ALPHA), X, y, tol=1e-12)
    assert abs(_lasso_obj(X, y, ours.coef) - ref.primal) <= 1e-7 * ref.primal


def test_vectorised_methods_match_the_scalar_functions(user_l1):
    rng = np.random.default_rng(6)
    v = rng.standard_normal((7, 3))
    step = rng.uniform(0.1, 2.0, (7, 1))
    expect = np.vectorize(_l1_prox)(v, step)
    np.testing.assert_array_equal(user_l1.prox(v, step), expect)
    assert user_l1.prox(v, step).shape == (7, 3)
    assert user_l1.value(v) == pytest.approx(ALPHA * np.abs(v).sum(), rel=1e-15)
    c = rng.standard_normal((7, 3))
    L = rng.uniform(0.5, 3.0, (7, 1))
    np.testing.assert_allclose(user_l1.coordinate_minimum(v, c, L),
                               L1(ALPHA).coordinate_minimum(v, c, L), rtol=1e-14, atol=1e-15)
    # L <= 0 leaves the coordinate where it is
    np.testing.assert_array_equal(user_l1.coordinate_minimum(v, c, 0.0), v)
    # the stationarity measure vanishes exactly at coordinate-wise optima:
    # w = 0 with |c| <= alpha, and w != 0 with c = alpha sign(w) (up to the
    # rounding of w + c - alpha)
    w = np.array([0.0, 0.0, 1.5, -2.0])
    c = np.array([0.03, -0.05, ALPHA, -ALPHA])
    np.testing.assert_allclose(user_l1.subdiff_distance(w, c), 0.0, rtol=0, atol=1e-15)
    assert np.all(user_l1.subdiff_distance(w, c + 0.2) > 0)
    assert np.all(user_l1.progress(w, c + 0.2, 2.0) > 0)
    assert user_l1.value(np.zeros(0)) == 0.0
    assert repr(user_l1) == "UserPenalty('l1')"


def test_user_penalty_accepts_njit_and_cfunc():
    X, y = _problem(7)
    value = numba.cfunc("float64(float64)")(_l1_value)
    prox = numba.njit(_l1_prox)
    pen = user_penalty(value, prox, name="l1")
    assert pen._value is value
    res = greedy_bcd(Quadratic(), pen, X, y, tol=1e-10, max_iter=20000)
    ref = greedy_bcd(Quadratic(), L1(ALPHA), X, y, tol=1e-12)
    assert abs(res.primal - ref.primal) <= 1e-7 * ref.primal


def test_user_penalty_compiled_once():
    a = user_penalty(_l1_value, _l1_prox)
    b = user_penalty(_l1_value, _l1_prox, name="again")
    assert a._value is b._value and a._prox is b._prox
    assert a.addresses == b.addresses
    # an @njit dispatcher shares the cache entry of its Python function
    c = user_penalty(numba.njit(_l1_value), numba.njit(_l1_prox))
    assert c._value is a._value and c._prox is a._prox
    assert isinstance(a, UserPenalty)


def test_user_penalty_errors(monkeypatch, user_l1):
    bad = numba.cfunc("float64(float64, float64)")(_l1_prox)
    with pytest.raises(TypeError, match=r"value cfunc has signature .*must be float64\(float64\)"):
        user_penalty(bad, _l1_prox)
    bad_prox = numba.cfunc("float32(float32, float32)")(_l1_prox)
    with pytest.raises(TypeError, match=r"prox cfunc has signature"):
        user_penalty(_l1_value, bad_prox)
    with pytest.raises(TypeError, match="user_penalty: prox must be a function or a numba cfunc"):
        user_penalty(_l1_value, 3.0)
    with pytest.raises(TypeError, match="numba could not compile prox"):
        user_penalty(_l1_value, lambda v, step: v.undefined_attribute)
    X, y = _problem(8)
    yc = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    with pytest.raises(ValueError, match="update='matrix' or update='gradient'"):
        greedy_bcd(Multinomial(), user_l1, X, yc, update="newton")
    monkeypatch.setitem(sys.modules, "numba", None)
    with pytest.raises(ImportError, match=r'pip install "sparsecore\[jit\]"'):
        user_penalty(lambda v: v, lambda v, s: v)
    # an existing penalty keeps working without numba (nothing is compiled)
    res = greedy_bcd(Quadratic(), user_l1, X, y, tol=1e-8)
    assert res.converged


def _nonneg_value(v):
    return ALPHA * v if v >= 0 else float("inf")


def _nonneg_prox(v, step):
    return max(v - ALPHA * step, 0.0)


@pytest.mark.parametrize("update", ["newton", "gradient"])
def test_constrained_user_penalty_matches_positive_lasso(update):
    # the docs' example: value infinite outside the domain (the solver's
    # extrapolation steps that leave it are rejected)
    X, y = _problem(9)
    pen = user_penalty(_nonneg_value, _nonneg_prox, name="nonneg_l1")
    ours = greedy_bcd(Quadratic(), pen, X, y, tol=1e-10, max_iter=20000, update=update)
    ref = greedy_bcd(Quadratic(), L1(ALPHA, positive=True), X, y, tol=1e-12, max_iter=20000)
    assert np.all(ours.coef >= 0)
    assert abs(ours.primal - ref.primal) <= 1e-7 * ref.primal
    np.testing.assert_allclose(ours.coef, ref.coef, atol=1e-5)
    assert pen.value(np.array([1.0, -1.0])) == np.inf


def test_edge_cases(user_l1):
    # empty designs: nothing to solve, the objective at w = 0
    for shape in [(0, 5), (5, 0)]:
        X = np.zeros(shape)
        res = greedy_bcd(Quadratic(), user_l1, X, np.zeros(shape[0]))
        assert res.converged and res.coef.shape == (shape[1],)
        assert np.all(res.coef == 0)
    # 1 x 1: the soft-thresholded ratio
    res = greedy_bcd(Quadratic(), user_l1, np.array([[2.0]]), np.array([1.0]), tol=1e-12)
    assert res.coef[0] == pytest.approx((2.0 * 1.0 - ALPHA) / 4.0, rel=1e-10)
    # all-zero targets: w = 0 is optimal
    X, y = _problem(10)
    assert np.all(greedy_bcd(Quadratic(), user_l1, X, np.zeros_like(y)).coef == 0)
    # float32, F-order and non-contiguous X, sample weights: as the built-in
    sw = np.random.default_rng(10).uniform(0.5, 2.0, len(y))
    for Xv in (X.astype(np.float32), np.asfortranarray(X), X[:, ::1].copy()[:, :30]):
        kw = dict(sample_weight=sw, tol=1e-10, max_iter=20000, fit_intercept=True)
        ours = greedy_bcd(Quadratic(), user_l1, Xv, y, **kw)
        ref = greedy_bcd(Quadratic(), L1(ALPHA), Xv, y, **dict(kw, tol=1e-12))
        assert abs(ours.primal - ref.primal) <= 1e-7 * ref.primal
        np.testing.assert_allclose(ours.coef, ref.coef, atol=1e-5)
    # inputs are not modified
    X0, y0 = X.copy(), y.copy()
    greedy_bcd(Quadratic(), user_l1, X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

finite = st.floats(-1e6, 1e6, allow_nan=False)
positive = st.floats(1e-6, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(v=st.lists(finite, min_size=1, max_size=20), step=positive, L=positive)
def test_user_prox_matches_builtin_property(v, step, L):
    pen = user_penalty(_l1_value, _l1_prox)
    v = np.array(v)
    np.testing.assert_array_equal(pen.prox(v, step), L1(ALPHA).prox(v, step))
    c = v[::-1].copy()
    np.testing.assert_allclose(pen.coordinate_minimum(v, c, L),
                               L1(ALPHA).coordinate_minimum(v, c, L),
                               rtol=1e-12, atol=1e-12 * (1 + np.abs(v).max() + np.abs(c).max() / L))
    assert pen.value(v) == pytest.approx(ALPHA * np.abs(v).sum(), rel=1e-13)
