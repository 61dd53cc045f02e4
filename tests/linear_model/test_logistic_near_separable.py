"""L1-logistic regression where the loss's curvature vanishes on many samples
(near-separable, imbalanced, very sparse data at a small alpha)."""
import warnings

import numpy as np
import pytest
from scipy.special import expit, log_expit, xlogy

from sparsecore.datasets import make_sparse_linear
from sparsecore.linear_model import GreedyBCDLogisticRegression


def _rel_gap(X, y, w, b, alpha, fit_intercept):
    """(P - D) / P by the direct formula: the dual point sigma(-y z) (with an
    intercept: at the intercept optimal for ``w``, by 1-D Newton), rescaled
    to be feasible."""
    n = X.shape[0]
    z = X @ w
    P = -np.mean(log_expit(y * (z + b))) + alpha * np.abs(w).sum()
    bs = b
    for _ in range(100 if fit_intercept else 0):
        u = expit(-y * (z + bs))
        g, h = -np.mean(y * u), np.mean(u * (1 - u))
        if abs(g) < 1e-16:
            break
        bs -= g / h
    u = expit(-y * (z + bs))
    s = min(1.0, alpha / (np.max(np.abs(X.T @ (y * u))) / n))
    v = s * u
    D = -np.mean(xlogy(v, v) + xlogy(1 - v, 1 - v))
    return (P - D) / P


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_small_alpha_on_near_separable_sparse_data_converges(fit_intercept):
    # 6124 x 6124 at density 1e-3 (about 6 entries per row), 98 % positive
    # labels: at alpha_max / 1000 many samples end with |z| in the hundreds,
    # where the curvature underflows (the proximal-Newton step once blew up
    # to 1e296 here and the fit ended with a NaN objective)
    n = 6124
    X, y, _ = make_sparse_linear(n, n, density=1e-3, n_informative=50, nonnegative=True,
                                 seed=0)
    y = np.where(y + 0.5 * np.std(y) > 0, 1.0, -1.0)
    if fit_intercept:
        frac = np.mean(y > 0)
        u = expit(-y * np.log(frac / (1 - frac)))
    else:
        u = np.full(n, 0.5)
    alpha = np.max(np.abs(X.T @ (y * u))) / n / 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no ConvergenceWarning
        est = GreedyBCDLogisticRegression(C=1 / (n * alpha), l1_ratio=1.0, tol=1e-6,
                                          fit_intercept=fit_intercept).fit(X, y)
    w, b = est.coef_[0], float(est.intercept_[0])
    assert np.all(np.isfinite(w)) and np.isfinite(b)
    # float64 arithmetic: the gap the solver stopped at, recomputed outside it
    assert _rel_gap(X, y, w, b, alpha, fit_intercept) <= 1.5e-6
