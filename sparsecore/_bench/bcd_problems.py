"""The Lasso and L1-logistic problems of the bcd suite and one relative duality
gap for every solver.

Problems (no intercept, float64):

* ``sparse``: scipy.sparse.random 10,000 x 100,000, density 1e-3, N(0, 1)
  values, CSC; a 50-sparse w* ~ N(0, 1); y = X w* + 0.1 std(X w*) eps
  (logistic: the sign of it);
* ``dense``: 1,000 x 10,000 Gaussian with AR(1) (Toeplitz) correlation
  rho^|i - j|, rho = 0.5, across features; same targets;
* ``diabetes`` / ``breast_cancer``: scikit-learn's data with polynomial
  features (degree 3 / 2), standardised (used when scikit-learn is installed).

``lasso_rel_gap`` and ``logistic_rel_gap`` evaluate (P(w) - D(theta)) / P(w)
outside every solver with the standard rescaled dual point, so each solver's
own stopping rule plays no part in the comparison.
"""
import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit, xlogy

__all__ = [
    "alpha_max_lasso",
    "alpha_max_logistic",
    "lasso_objective",
    "lasso_rel_gap",
    "logistic_objective",
    "logistic_rel_gap",
    "make_problem",
    "PROBLEMS",
]

PROBLEMS = ("sparse", "dense", "diabetes", "breast_cancer", "small_sparse", "small_dense")


def _targets(X, rng, k=50):
    n, p = X.shape
    w = np.zeros(p)
    w[rng.choice(p, size=min(k, p), replace=False)] = rng.standard_normal(min(k, p))
    z = X @ w
    y = z + 0.1 * np.std(z) * rng.standard_normal(n)
    return y


def _ar1(n, p, rho, rng):
    X = np.empty((n, p), order="F")
    X[:, 0] = rng.standard_normal(n)
    s = np.sqrt(1 - rho * rho)
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + s * rng.standard_normal(n)
    return X


def make_problem(name, kind="lasso", seed=0):
    """``(X, y)`` of a named problem; ``kind="logistic"`` gives y in {-1, 1}."""
    rng = np.random.default_rng(seed)
    if name in ("sparse", "small_sparse"):
        n, p = (10_000, 100_000) if name == "sparse" else (1_000, 10_000)
        X = sp.random(n, p, density=1e-3 if name == "sparse" else 1e-2, format="csc",
                      random_state=rng, data_rvs=rng.standard_normal)
        y = _targets(X, rng)
    elif name in ("dense", "small_dense"):
        n, p = (1_000, 10_000) if name == "dense" else (200, 2_000)
        X = _ar1(n, p, 0.5, rng)
        y = _targets(X, rng)
    elif name in ("diabetes", "breast_cancer"):
        from sklearn.datasets import load_breast_cancer, load_diabetes
        from sklearn.preprocessing import PolynomialFeatures, StandardScaler

        if name == "diabetes":
            X, y = load_diabetes(return_X_y=True)
            X = PolynomialFeatures(3, include_bias=False).fit_transform(X)
            X = np.asfortranarray(StandardScaler().fit_transform(X))
            y = y - y.mean()
        else:
            X, y = load_breast_cancer(return_X_y=True)
            X = PolynomialFeatures(2, include_bias=False).fit_transform(X)
            X = np.asfortranarray(StandardScaler().fit_transform(X))
            y = 2.0 * y - 1.0
            return X, y
    else:
        raise ValueError(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)}")
    if kind == "logistic":
        y = np.where(y > 0, 1.0, -1.0)
    return X, y


def alpha_max_lasso(X, y):
    return float(np.max(np.abs(X.T @ y))) / X.shape[0]


def alpha_max_logistic(X, y):
    return float(np.max(np.abs(X.T @ y))) / (2 * X.shape[0])


def lasso_objective(X, y, w, alpha):
    r = y - X @ w
    return float(r @ r) / (2 * X.shape[0]) + alpha * float(np.abs(w).sum())


def lasso_rel_gap(X, y, w, alpha):
    """(P - D) / P with theta = r / max(n alpha, ||X^T r||_inf)."""
    n = X.shape[0]
    r = y - X @ w
    P = float(r @ r) / (2 * n) + alpha * float(np.abs(w).sum())
    theta = r / max(n * alpha, float(np.max(np.abs(X.T @ r))))
    d = y - n * alpha * theta
    D = (float(y @ y) - float(d @ d)) / (2 * n)
    return (P - D) / P


def logistic_objective(X, y, w, alpha):
    return float(-np.mean(log_expit(y * (X @ w)))) + alpha * float(np.abs(w).sum())


def logistic_rel_gap(X, y, w, alpha):
    """(P - D) / P with v = s sigma(-y Xw), s = min(1, alpha / (||X^T(y u)||_inf / n))."""
    n = X.shape[0]
    z = y * (X @ w)
    P = float(-np.mean(log_expit(z))) + alpha * float(np.abs(w).sum())
    u = expit(-z)
    s = min(1.0, alpha / (float(np.max(np.abs(X.T @ (y * u)))) / n))
    v = s * u
    D = -float(np.mean(xlogy(v, v) + xlogy(1 - v, 1 - v)))
    return (P - D) / P
