"""float32 sparse X: the estimators' full-gradient passes read the float32
data directly (no float64 copy); results against scikit-learn on the same
values in float64."""
import warnings

import numpy as np
import pytest
from sklearn.linear_model import ElasticNet, Lasso

from sparsecore.datasets import make_sparse_linear
from sparsecore.linear_model import GreedyBCDElasticNet, GreedyBCDLasso


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("est, ref, kw", [
    (GreedyBCDLasso, Lasso, {}),
    (GreedyBCDElasticNet, ElasticNet, {"l1_ratio": 0.5}),
])
def test_float32_sparse_matches_sklearn_float64(est, ref, kw, fit_intercept):
    X, y, _ = make_sparse_linear(300, 800, density=0.02, n_informative=10, nonnegative=True,
                                 dtype=np.float32, seed=3)
    y = y + 1.0
    X64 = X.astype(np.float64)   # the same values
    alpha = float(np.max(np.abs(X64.T @ (y - y.mean() * fit_intercept)))) / 300 / 20
    ours = est(alpha=alpha, tol=1e-10, fit_intercept=fit_intercept, n_threads=1, **kw).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ref(alpha=alpha, tol=1e-14, max_iter=10**6, fit_intercept=fit_intercept,
                     **kw).fit(X64, y)
    assert ours.coef_.dtype == np.float32
    # float32 coefficients: agreement to their rounding (relative 6e-8) times
    # the conditioning of the support
    scale = np.abs(theirs.coef_).max()
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-5 * scale)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, abs=1e-5 * max(1, abs(theirs.intercept_)))
