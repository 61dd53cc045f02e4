"""Regularisation paths with warm starts, mirroring scikit-learn's
``lasso_path`` / ``enet_path``."""
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array, check_consistent_length

from sparsecore.optimize import ElasticNet, Logistic, Quadratic, greedy_bcd
from sparsecore.optimize._design import Design

__all__ = ["enet_path", "lasso_path", "logistic_path"]


def _alpha_grid(X, y, sw, l1_ratio, eps, n_alphas, fit_intercept, logistic):
    h = np.full(X.shape[0], 1.0 / X.shape[0]) if sw is None else sw / sw.sum()
    if logistic:
        if fit_intercept:
            pbar = float(h @ (y > 0))
            r = h * ((y > 0) - pbar)
        else:
            r = h * y / 2.0
    else:
        r = h * (y - (h @ y) / h.sum() if fit_intercept else y)
    Xtr = X.T @ r  # with an intercept sum(r) = 0, so X^T r = X_centred^T r
    amax = float(np.max(np.abs(Xtr))) / max(l1_ratio, 1e-3)
    if amax <= 0:
        amax = 1.0
    return np.geomspace(amax, amax * eps, n_alphas)


def _path(datafit, X, y, *, l1_ratio, eps, n_alphas, alphas, sample_weight,
          fit_intercept, coef_init, positive, logistic, kwargs):
    X = check_array(X, accept_sparse=["csc", "csr", "coo"], dtype=[np.float64, np.float32])
    y = np.asarray(y, dtype=np.float64).ravel()
    check_consistent_length(X, y)
    if sp.issparse(X):
        X = sp.csc_array(X)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if not isinstance(l1_ratio, numbers.Real) or not 0 < l1_ratio <= 1:
        raise ValueError(f"l1_ratio must be in (0, 1], got {l1_ratio!r}")
    if isinstance(alphas, numbers.Integral) and not isinstance(alphas, bool):
        n_alphas, alphas = alphas, None   # scikit-learn >= 1.9: alphas=int is the grid size
    if alphas is None:
        if not isinstance(n_alphas, numbers.Integral) or n_alphas < 1:
            raise ValueError(f"n_alphas must be a positive int, got {n_alphas!r}")
        if not isinstance(eps, numbers.Real) or not 0 < eps <= 1:
            raise ValueError(f"eps must be in (0, 1], got {eps!r}")
        alphas = _alpha_grid(X, y, sw, l1_ratio, eps, n_alphas, fit_intercept, logistic)
    else:
        alphas = np.sort(np.asarray(alphas, dtype=np.float64).ravel())[::-1]
        if np.any(alphas < 0) or not np.all(np.isfinite(alphas)):
            raise ValueError("alphas must be finite and non-negative")
    p = X.shape[1]
    coefs = np.empty((p, len(alphas)), dtype=X.dtype)
    design = Design(X)   # converted, checked and its column statistics computed once
    intercepts = np.empty(len(alphas))
    gaps = np.empty(len(alphas))
    n_iters = np.empty(len(alphas), dtype=np.int64)
    w = None if coef_init is None else np.asarray(coef_init, dtype=np.float64).ravel()
    b = None
    for i, a in enumerate(alphas):
        res = greedy_bcd(datafit, ElasticNet(a, l1_ratio, positive=positive), design, y,
                         sample_weight=sw, fit_intercept=fit_intercept, coef_init=w,
                         intercept_init=b, **kwargs)
        w = res.coef
        b = res.intercept if fit_intercept else None
        coefs[:, i] = w
        intercepts[i] = res.intercept
        gaps[i] = res.gap
        n_iters[i] = res.n_iter
    return alphas, coefs, gaps, n_iters, intercepts


def enet_path(X, y, *, l1_ratio=0.5, eps=1e-3, n_alphas=100, alphas=None,
              sample_weight=None, fit_intercept=False, coef_init=None, positive=False,
              return_n_iter=False, return_intercept=False, tol=1e-6, max_iter=1000, **kwargs):
    """Elastic-net path by greedy BCD with warm starts.

    Same objective and grid as :func:`sklearn.linear_model.enet_path`
    (``alpha_max = ||X^T y||_inf / (n l1_ratio)``, geometric down to
    ``eps * alpha_max``), every alpha solved to relative duality gap ``tol``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    l1_ratio : float, default=0.5
    eps : float, default=1e-3
    n_alphas : int, default=100
    alphas : int or array-like, default=None
        Used as given (sorted decreasing) instead of the grid; an int is the
        number of grid points (as in scikit-learn >= 1.9).
    sample_weight : array-like of shape (n_samples,), default=None
    fit_intercept : bool, default=False
        Unlike scikit-learn's path (which expects centred data) an intercept
        can be fitted here; it is returned with ``return_intercept=True``.
    coef_init : ndarray of shape (n_features,), default=None
    positive : bool, default=False
    return_n_iter : bool, default=False
    return_intercept : bool, default=False
    tol : float, default=1e-6
    max_iter : int, default=1000
    **kwargs
        Other keywords of :func:`sparsecore.optimize.greedy_bcd`.

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
    coefs : ndarray of shape (n_features, n_alphas)
    dual_gaps : ndarray of shape (n_alphas,)
    n_iters : ndarray of shape (n_alphas,)
        With ``return_n_iter=True``.
    intercepts : ndarray of shape (n_alphas,)
        With ``return_intercept=True``.
    """
    alphas, coefs, gaps, n_iters, intercepts = _path(
        Quadratic(), X, y, l1_ratio=l1_ratio, eps=eps, n_alphas=n_alphas, alphas=alphas,
        sample_weight=sample_weight, fit_intercept=fit_intercept, coef_init=coef_init,
        positive=positive, logistic=False, kwargs=dict(tol=tol, max_iter=max_iter, **kwargs))
    out = (alphas, coefs, gaps)
    if return_n_iter:
        out += (n_iters,)
    if return_intercept:
        out += (intercepts,)
    return out


def lasso_path(X, y, *, eps=1e-3, n_alphas=100, alphas=None, **kwargs):
    """Lasso path by greedy BCD with warm starts: :func:`enet_path` with
    ``l1_ratio=1``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    eps : float, default=1e-3
    n_alphas : int, default=100
    alphas : array-like, default=None
    **kwargs
        Keywords of :func:`enet_path`.

    Returns
    -------
    alphas, coefs, dual_gaps[, n_iters][, intercepts]
        As :func:`enet_path`.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.linear_model import lasso_path
    >>> X = np.array([[0., 1.], [1., 0.], [2., 2.], [3., 1.]])
    >>> y = X @ [1., -2.]
    >>> alphas, coefs = lasso_path(X, y, n_alphas=4)[:2]
    >>> bool(alphas[0] > alphas[-1])         # from the largest alpha down
    True
    >>> (coefs != 0).sum(axis=0)             # nonzero coefficients along the path
    array([0, 2, 2, 2])
    >>> coefs[:, -1].round(2)
    array([ 1., -2.])
    """
    return enet_path(X, y, l1_ratio=1.0, eps=eps, n_alphas=n_alphas, alphas=alphas, **kwargs)


def logistic_path(X, y, *, l1_ratio=1.0, eps=1e-3, n_alphas=100, alphas=None,
                  sample_weight=None, fit_intercept=False, coef_init=None,
                  return_n_iter=False, return_intercept=False, tol=1e-6, max_iter=1000,
                  **kwargs):
    """Binary logistic regularisation path by greedy BCD with warm starts.

    The objective is ``mean_i log(1 + exp(-y_i x_i w)) + alpha * penalty``
    (scikit-learn's ``C = 1 / (n alpha)``), y in {-1, 1} (any two values are
    mapped, the larger one to +1).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    l1_ratio : float, default=1.0
    eps : float, default=1e-3
    n_alphas : int, default=100
    alphas : array-like, default=None
    sample_weight : array-like of shape (n_samples,), default=None
    fit_intercept : bool, default=False
    coef_init : ndarray of shape (n_features,), default=None
    return_n_iter : bool, default=False
    return_intercept : bool, default=False
    tol : float, default=1e-6
    max_iter : int, default=1000
    **kwargs
        Other keywords of :func:`sparsecore.optimize.greedy_bcd`.

    Returns
    -------
    alphas, coefs, dual_gaps[, n_iters][, intercepts]
        As :func:`enet_path`.
    """
    y = np.asarray(y)
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(f"logistic_path needs exactly 2 classes, got {len(classes)}")
    y = np.where(y == classes[1], 1.0, -1.0)
    alphas, coefs, gaps, n_iters, intercepts = _path(
        Logistic(), X, y, l1_ratio=l1_ratio, eps=eps, n_alphas=n_alphas, alphas=alphas,
        sample_weight=sample_weight, fit_intercept=fit_intercept, coef_init=coef_init,
        positive=False, logistic=True, kwargs=dict(tol=tol, max_iter=max_iter, **kwargs))
    out = (alphas, coefs, gaps)
    if return_n_iter:
        out += (n_iters,)
    if return_intercept:
        out += (intercepts,)
    return out
