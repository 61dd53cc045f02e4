"""Classic EM-SBL (SBLRegressor, sbl) against a direct dense implementation of
the EM updates, the estimators' scikit-learn contract, and KroneckerSBL.

Tolerances: after the same number of EM iterations without pruning, the
coefficients agree with the dense reference (explicit N x N inverse) to a
relative 1e-7: both follow the same iterates, which amplify round-off
mildly over 15 iterations.
"""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from sparsecore import datasets
from sparsecore.formats import KroneckerOperator
from sparsecore.linear_model import KroneckerSBL, SBLRegressor, sbl


def _dense_em(X, y, noise_var, n_iter):
    """EM-SBL written from the textbook formulas, with the flat start that
    sparsecore uses (100 times the level that explains the power of y)."""
    M, N = X.shape
    power = float(y @ y) / M
    g = np.full(N, 100 * power * M / np.sum(X * X))
    s2 = 0.1 * power if noise_var is None else noise_var

    def estep(g, s2):
        Sx = np.linalg.inv(X.T @ X / s2 + np.diag(1 / g))
        mu = Sx @ X.T @ y / s2
        return mu, Sx

    for _ in range(n_iter):
        mu, Sx = estep(g, s2)
        if noise_var is None:
            r = y - X @ mu
            s2 = (r @ r + s2 * np.sum(1 - np.diag(Sx) / g)) / M
        g = np.diag(Sx) + mu**2
    mu, Sx = estep(g, s2)
    return mu, np.diag(Sx), g, s2


@pytest.mark.parametrize("shape", [(40, 25), (25, 60)])  # K x K and M x M systems
@pytest.mark.parametrize("noise_var", [0.01, None])
def test_regressor_equals_dense_em(shape, noise_var):
    rng = np.random.default_rng(7)
    X = rng.standard_normal(shape)
    x = np.zeros(shape[1])
    x[[1, 5, 9]] = [1.5, -1.0, 0.7]
    y = X @ x + 0.1 * rng.standard_normal(shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = SBLRegressor(noise_var=noise_var, prune=0.0, tol=0.0, max_iter=15,
                           fit_intercept=False).fit(X, y)
    mu, var, g, s2 = _dense_em(X, y, noise_var, 15)
    assert reg.n_iter_ == 15
    np.testing.assert_allclose(reg.coef_, mu, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(reg.posterior_var_, var, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(reg.gamma_, g, rtol=1e-7, atol=1e-12)
    assert reg.noise_var_ == pytest.approx(s2, rel=1e-7)
    # EM never increases the negative log marginal likelihood
    assert np.all(np.diff(reg.objective_) <= 1e-9 * np.abs(reg.objective_[:-1]))


def test_regressor_recovers_sparse_and_intercept():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 30)) + 3.0
    coef = np.zeros(30)
    coef[[2, 11, 20]] = [2.0, -1.0, 0.5]
    y = X @ coef + 4.0 + 0.01 * rng.standard_normal(80)
    reg = SBLRegressor().fit(X, y)
    np.testing.assert_allclose(reg.coef_, coef, atol=0.02)
    assert reg.intercept_ == pytest.approx(4.0, abs=0.1)
    assert np.count_nonzero(reg.coef_) <= 6
    np.testing.assert_allclose(reg.predict(X), X @ reg.coef_ + reg.intercept_)
    assert reg.score(X, y) > 0.999


def test_regressor_float32_and_zero_target():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 10)).astype(np.float32)
    reg = SBLRegressor().fit(X, X[:, 3] * 2)
    assert reg.coef_.dtype == np.float32
    zero = SBLRegressor().fit(X, np.full(30, 5.0))
    np.testing.assert_array_equal(zero.coef_, 0)
    assert zero.intercept_ == pytest.approx(5.0)


def test_sbl_function_complex():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 50)) + 1j * rng.standard_normal((30, 50))
    x = np.zeros(50, dtype=complex)
    x[[4, 30]] = [1 + 1j, -0.5j]
    res = sbl(X, X @ x, noise_var=1e-8)
    np.testing.assert_allclose(res.coef, x, atol=1e-4)
    with pytest.raises(ValueError, match="1-D with 30 entries"):
        sbl(X, np.ones(29))
    with pytest.raises(ValueError, match="prune must be"):
        sbl(X, X @ x, prune=2)


def _checks_estimators():
    return [SBLRegressor(), KroneckerSBL()]


@parametrize_with_checks(_checks_estimators())
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_kronecker_estimator_structured_paths():
    prob = datasets.make_kronecker_sparse([(12, 20), (10, 20)], 2, snr_db=30, seed=9)
    K = KroneckerOperator(prob.factors)
    est = KroneckerSBL(noise_var=prob.noise_var).fit(K, prob.y)
    assert est.coef_.shape == (400,)
    assert est.n_features_in_ == 400
    assert len(est.gammas_) == 2 and len(est.support_) == 2
    np.testing.assert_allclose(est.predict(), K @ est.coef_)
    np.testing.assert_allclose(est.predict(K), K @ est.coef_)
    assert est.score(K, prob.y) > 0.99
    by_factors = KroneckerSBL(factors=prob.factors, noise_var=prob.noise_var).fit(None, prob.y)
    np.testing.assert_allclose(by_factors.coef_, est.coef_)
    # several measurement vectors: coef_ is (n_targets, n_features)
    Y = np.stack([prob.y, 2 * prob.y], axis=1)
    multi = KroneckerSBL(method="am", noise_var=prob.noise_var).fit(K, Y)
    assert multi.coef_.shape == (2, 400)
    assert multi.predict().shape == (120, 2)


def test_kronecker_estimator_errors():
    prob = datasets.make_kronecker_sparse([(6, 8), (5, 8)], 2, snr_db=20, seed=0)
    K = KroneckerOperator(prob.factors)
    with pytest.raises(ValueError, match="either as X or as factors"):
        KroneckerSBL(factors=prob.factors).fit(K, prob.y)
    with pytest.raises(ValueError, match="no factors were given"):
        KroneckerSBL().fit(None, prob.y)
    with pytest.raises(ValueError, match="requires y"):
        KroneckerSBL().fit(K)
    with pytest.raises(ValueError, match="y has 29 rows"):
        KroneckerSBL().fit(K, prob.y[:-1])
    est = KroneckerSBL().fit(np.ones((5, 3)), np.arange(5.0))
    with pytest.raises(ValueError, match="fitted on a 2-D array"):
        est.predict()
