"""User datafits compiled with numba in the greedy BCD engine: the same
optimum as the built-in losses (objective values within 1e-6 relative, the
solver's tolerance), and errors."""
import sys

import numpy as np
import pytest

from sparsecore.optimize import L1, Logistic, Quadratic, greedy_bcd, user_datafit

numba = pytest.importorskip("numba")


def _sq_loss(y, z):
    return 0.5 * (y - z) * (y - z)


def _sq_grad(y, z):
    return z - y


def _log_loss(y, z):
    t = -y * z
    return t + np.log1p(np.exp(-t)) if t > 0 else np.log1p(np.exp(t))


def _log_grad(y, z):
    return -y / (1.0 + np.exp(y * z))


def _log_hess(y, z):
    p = 1.0 / (1.0 + np.exp(-z))
    return p * (1.0 - p)


def _problem(seed=0, n=120, p=30):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    w = np.zeros(p)
    w[[1, 4, 9]] = [1.5, -2.0, 1.0]
    return X, X @ w + 0.1 * rng.standard_normal(n)


def test_user_squared_loss_matches_quadratic():
    X, y = _problem()
    user = user_datafit(_sq_loss, _sq_grad, curvature=1.0, name="squared")
    ours = greedy_bcd(user, L1(0.05), X, y, tol=1e-10, max_iter=5000)
    ref = greedy_bcd(Quadratic(), L1(0.05), X, y, tol=1e-10, max_iter=5000)
    pen = L1(0.05)
    obj = lambda w: 0.5 * np.mean((y - X @ w) ** 2) + pen.value(w.reshape(-1, 1))
    assert abs(obj(ours.coef) - obj(ref.coef)) <= 1e-6 * obj(ref.coef)
    np.testing.assert_allclose(ours.coef, ref.coef, atol=1e-4)


def test_user_logistic_matches_builtin():
    X, y = _problem(1)
    yb = np.where(y > 0, 1.0, -1.0)
    user = user_datafit(_log_loss, _log_grad, _log_hess, curvature=0.25, name="logistic")
    ours = greedy_bcd(user, L1(0.01), X, yb, tol=1e-10, max_iter=5000)
    ref = greedy_bcd(Logistic(), L1(0.01), X, yb, tol=1e-10, max_iter=5000)
    np.testing.assert_allclose(ours.coef, ref.coef, atol=1e-4)
    D = user_datafit(_log_loss, _log_grad, _log_hess, curvature=0.25)
    Y, Z, h = yb.reshape(-1, 1), (X @ ours.coef).reshape(-1, 1), np.full(len(y), 1 / len(y))
    assert abs(D.value(Y, Z, h) - Logistic().value(Y, Z, h)) < 1e-12
    np.testing.assert_allclose(D.gradient(Y, Z), Logistic().gradient(Y, Z), rtol=1e-12)
    np.testing.assert_allclose(D.hessian_diag(Y, Z), Logistic().hessian_diag(Y, Z), rtol=1e-12)


def test_user_datafit_compiled_once():
    a = user_datafit(_sq_loss, _sq_grad, curvature=1.0)
    b = user_datafit(_sq_loss, _sq_grad, curvature=1.0)
    assert a._loss is b._loss and a._gradient is b._gradient


def test_user_datafit_errors(monkeypatch):
    with pytest.raises(ValueError, match="curvature must be positive"):
        user_datafit(_sq_loss, _sq_grad, curvature=0.0)
    with pytest.raises(TypeError, match="could not compile gradient"):
        user_datafit(_sq_loss, lambda y, z: y.undefined_attribute, curvature=1.0)
    with pytest.raises(TypeError, match="must be a function"):
        user_datafit(_sq_loss, 3, curvature=1.0)
    monkeypatch.setitem(sys.modules, "numba", None)
    with pytest.raises(ImportError, match=r'pip install "sparsecore\[jit\]"'):
        user_datafit(lambda y, z: y, lambda y, z: z, curvature=1.0)


def test_user_datafit_accepts_cfunc_and_njit():
    X, y = _problem(2)
    loss = numba.cfunc("float64(float64, float64)")(_sq_loss)
    grad = numba.njit(_sq_grad)
    user = user_datafit(loss, grad, curvature=1.0)
    assert user._loss is loss
    # the njit dispatcher shares the cache entry of its Python function
    assert user._gradient is user_datafit(_sq_loss, _sq_grad, curvature=1.0)._gradient
    ours = greedy_bcd(user, L1(0.05), X, y, tol=1e-10, max_iter=5000)
    ref = greedy_bcd(Quadratic(), L1(0.05), X, y, tol=1e-10, max_iter=5000)
    np.testing.assert_allclose(ours.coef, ref.coef, atol=1e-4)


def test_user_datafit_per_sample_values():
    # the compiled loop over samples against the Python functions, with
    # non-contiguous inputs (a column of a 2-column array)
    rng = np.random.default_rng(3)
    Y2 = np.where(rng.random((40, 2)) > 0.5, 1.0, -1.0)
    Z2 = rng.standard_normal((40, 2)) * 3
    Y, Z = Y2[:, :1], Z2[:, 1:]
    h = rng.random(40)
    D = user_datafit(_log_loss, _log_grad, _log_hess, curvature=0.25)
    expect = np.array([_log_loss(a, b) for a, b in zip(Y[:, 0], Z[:, 0])])
    assert D.value(Y, Z, h) == pytest.approx(float(h @ expect), rel=1e-14)
    np.testing.assert_allclose(D.gradient(Y, Z)[:, 0],
                               [_log_grad(a, b) for a, b in zip(Y[:, 0], Z[:, 0])], rtol=1e-14)
    np.testing.assert_allclose(D.hessian_diag(Y, Z)[:, 0],
                               [_log_hess(a, b) for a, b in zip(Y[:, 0], Z[:, 0])], rtol=1e-14)
    assert D.gradient(Y, Z).shape == (40, 1)
    np.testing.assert_array_equal(user_datafit(_sq_loss, _sq_grad, curvature=2.0)
                                  .hessian_diag(Y, Z), 2.0)


def test_user_datafit_wrong_cfunc_signature():
    bad = numba.cfunc("float64(float64)")(lambda z: z)
    with pytest.raises(TypeError, match=r"user_datafit: the gradient cfunc has signature .*"
                                        r"must be float64\(float64, float64\)"):
        user_datafit(_sq_loss, bad, curvature=1.0)
