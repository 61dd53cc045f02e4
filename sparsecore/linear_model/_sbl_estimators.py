"""scikit-learn estimators for sparse Bayesian learning: SBLRegressor (classic
EM-SBL on a 2-D X) and KroneckerSBL (Kronecker-structured dictionaries)."""
import numbers

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from sparsecore._validation import check_scalar
from sparsecore.formats._kronecker import KroneckerOperator
from sparsecore.linear_model._kronecker_sbl import check_noise_var, kronecker_sbl
from sparsecore.linear_model._sbl import _sbl_em, blas_threads

__all__ = ["KroneckerSBL", "SBLRegressor"]


def _check_prune(prune):
    if isinstance(prune, bool) or not isinstance(prune, numbers.Real) or not 0 <= prune < 1:
        raise ValueError(f"prune must be a float in [0, 1), got {prune!r}")
    return float(prune)


def _fit_dense(estimator, X, y, fit_intercept, prune):
    """Classic EM-SBL on a validated 2-D X. Returns (result, intercept, dtype)."""
    X, y = validate_data(estimator, X, y, dtype=[np.float64, np.float32], y_numeric=True)
    noise_var = check_noise_var(estimator.noise_var)
    prune = _check_prune(prune)
    max_iter = check_scalar(estimator.max_iter, "max_iter", int, min_val=1)
    tol = check_scalar(estimator.tol, "tol", float, min_val=0)
    Xw = np.asarray(X, dtype=np.float64)
    yw = np.asarray(y, dtype=np.float64)
    if fit_intercept:
        x_offset = Xw.mean(axis=0)
        y_offset = float(yw.mean())
        Xw = Xw - x_offset
        yw = yw - y_offset
    else:
        x_offset = np.zeros(X.shape[1])
        y_offset = 0.0
    with blas_threads(estimator.n_threads):
        res = _sbl_em(Xw, yw, noise_var, prune, max_iter, tol)
    return res, float(y_offset - x_offset @ res.coef), X.dtype


class SBLRegressor(RegressorMixin, BaseEstimator):
    """Sparse Bayesian learning regression by EM (classic SBL).

    Each coefficient has a zero-mean Gaussian prior with its own variance
    gamma_j; the variances and the noise variance maximise the marginal
    likelihood by expectation-maximisation (Tipping 2001; Wipf and Rao
    2004). Most variances go to zero, which prunes their columns: the
    posterior mean is sparse. Unlike :class:`sklearn.linear_model.ARDRegression`
    (MacKay's fixed-point updates on precisions) this is the EM form used as
    the reference of Kronecker SBL, with relative pruning and the cheaper of
    the ``n_samples`` and ``n_active`` square systems per iteration.

    Parameters
    ----------
    noise_var : float or None, default=None
        Known noise variance, or None to estimate it.
    prune : float in [0, 1), default=1e-3
        Coefficients whose variance falls below ``prune`` times the largest
        are removed (set to zero).
    max_iter : int, default=300
    tol : float, default=1e-4
        Stop when the relative change of the variances is below tol.
    fit_intercept : bool, default=True
        Centre X and y (the intercept is not penalised).
    n_threads : int or None, default=None
        BLAS threads during fit (through threadpoolctl).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    gamma_ : ndarray of shape (n_features,)
        Prior variances (0 for pruned coefficients).
    posterior_var_ : ndarray of shape (n_features,)
        Posterior variances of the coefficients.
    noise_var_ : float
    n_iter_ : int
    objective_ : ndarray
        Negative log marginal likelihood (up to constants) per iteration.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X has string column names.

    See Also
    --------
    KroneckerSBL : the same model for Kronecker-structured dictionaries.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.linear_model import SBLRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 20))
    >>> y = 3 * X[:, 2] - 2 * X[:, 7] + 0.01 * rng.standard_normal(50)
    >>> reg = SBLRegressor().fit(X, y)
    >>> np.flatnonzero(np.abs(reg.coef_) > 0.1).tolist()
    [2, 7]
    """

    def __init__(self, *, noise_var=None, prune=1e-3, max_iter=300, tol=1e-4,
                 fit_intercept=True, n_threads=None):
        self.noise_var = noise_var
        self.prune = prune
        self.max_iter = max_iter
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.n_threads = n_threads

    def fit(self, X, y):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : SBLRegressor
        """
        res, intercept, dtype = _fit_dense(self, X, y, self.fit_intercept, self.prune)
        self.coef_ = res.coef.astype(dtype, copy=False)
        self.intercept_ = intercept
        self.gamma_ = res.gamma
        self.posterior_var_ = res.posterior_var
        self.noise_var_ = res.noise_var
        self.n_iter_ = res.n_iter
        self.objective_ = res.objective
        return self

    def predict(self, X):
        """Predict with the posterior mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_ + self.intercept_


class KroneckerSBL(RegressorMixin, BaseEstimator):
    """Sparse Bayesian learning for Kronecker-structured dictionaries
    (KroSBL), never forming the Kronecker product.

    Fits ``y = (A_1 kron ... kron A_I) x + noise`` with a Kronecker-supported
    x (He & Joseph, IEEE TSP 2024, arXiv 2307.14719); see
    :func:`kronecker_sbl` for the algorithm and its cost. Complex
    dictionaries and measurements are supported on this path.

    ``fit(X, y)`` takes X as a :class:`~sparsecore.formats.KroneckerOperator`,
    or X=None with the ``factors`` parameter. A plain 2-D array X is a
    one-factor dictionary, for which the model is classic SBL (no intercept):
    that path is what scikit-learn's estimator checks exercise.

    Parameters
    ----------
    factors : sequence of array-like of shape (m_i, n_i) or None, default=None
        The Kronecker factors, when ``fit`` is called with X=None.
    method : {"svd", "am"}, default="svd"
    noise_var : float or None, default=None
    block : {None, "pattern_coupled"}, default=None
    beta : float or sequence of float, default=0.8
    prune : float, sequence of float or None, default=None
        For a 2-D X (classic SBL), None means 1e-3.
    max_iter : int, default=500
    tol : float, default=1e-4
    n_threads : int or None, default=None
        See :func:`kronecker_sbl`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Posterior mean (one row per measurement vector when y is 2-D).
    posterior_var_ : ndarray of shape (n_features,)
    gammas_ : list of ndarray
        Prior variance factors per mode (one entry for a 2-D X).
    support_ : list of ndarray of int
        Indices each mode kept.
    noise_var_ : float
    n_iter_ : int
    objective_ : ndarray
    intercept_ : float
        Always 0.
    n_features_in_ : int
    operator_ : KroneckerOperator
        The dictionary of a structured fit (absent for a 2-D X).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.formats import KroneckerOperator
    >>> from sparsecore.linear_model import KroneckerSBL
    >>> rng = np.random.default_rng(1)
    >>> A1, A2 = rng.standard_normal((12, 24)), rng.standard_normal((12, 24))
    >>> x1, x2 = np.zeros(24), np.zeros(24)
    >>> x1[[2, 11]] = [1.0, 2.0]
    >>> x2[[5, 6]] = [-1.0, 0.5]
    >>> K = KroneckerOperator([A1, A2])
    >>> est = KroneckerSBL(noise_var=1e-6).fit(K, K @ np.kron(x1, x2))
    >>> [s.tolist() for s in est.support_]
    [[2, 11], [5, 6]]
    """

    def __init__(self, factors=None, *, method="svd", noise_var=None, block=None,
                 beta=0.8, prune=None, max_iter=500, tol=1e-4, n_threads=None):
        self.factors = factors
        self.method = method
        self.noise_var = noise_var
        self.block = block
        self.beta = beta
        self.prune = prune
        self.max_iter = max_iter
        self.tol = tol
        self.n_threads = n_threads

    def _operator(self, X):
        if isinstance(X, KroneckerOperator):
            if self.factors is not None:
                raise ValueError("pass the dictionary either as X or as factors=, not both")
            return X
        if X is None:
            if self.factors is None:
                raise ValueError(
                    "X is None and no factors were given: pass a KroneckerOperator "
                    "as X, set factors=[A_1, ..., A_I], or pass a 2-D array X"
                )
            return KroneckerOperator(self.factors)
        if self.factors is not None:
            raise ValueError(
                "factors= is set, so X must be None (or the same KroneckerOperator); "
                f"got {type(X).__name__}"
            )
        return None

    def fit(self, X=None, y=None):
        """Fit the model.

        Parameters
        ----------
        X : KroneckerOperator, array-like of shape (n_samples, n_features), or None
            The dictionary: a Kronecker operator, None to use ``factors``, or
            a plain 2-D array (classic SBL).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Measurements (several columns share the support; structured
            path only).

        Returns
        -------
        self : KroneckerSBL
        """
        op = self._operator(X)
        if op is None:
            if self.method not in ("svd", "am"):
                raise ValueError(f"method must be 'svd' or 'am', got {self.method!r}")
            res, _, dtype = _fit_dense(self, X, y, fit_intercept=False,
                                       prune=1e-3 if self.prune is None else self.prune)
            if hasattr(self, "operator_"):
                del self.operator_
            self.coef_ = res.coef.astype(dtype, copy=False)
            self.intercept_ = 0.0
            self.posterior_var_ = res.posterior_var
            self.gammas_ = [res.gamma]
            self.support_ = [np.flatnonzero(res.gamma)]
            self.noise_var_ = res.noise_var
            self.n_iter_ = res.n_iter
            self.objective_ = res.objective
            return self
        if y is None:
            raise ValueError("KroneckerSBL requires y to be passed, but the target y is None")
        res = kronecker_sbl(
            op, y, method=self.method, noise_var=self.noise_var, block=self.block,
            beta=self.beta, prune=self.prune, max_iter=self.max_iter, tol=self.tol,
            n_threads=self.n_threads,
        )
        self.operator_ = op
        self.coef_ = res.coef.T if res.coef.ndim == 2 else res.coef
        self.intercept_ = 0.0
        self.posterior_var_ = res.posterior_var
        self.gammas_ = list(res.gammas)
        self.support_ = list(res.support)
        self.noise_var_ = res.noise_var
        self.n_iter_ = res.n_iter
        self.objective_ = res.objective
        self.n_features_in_ = op.shape[1]
        return self

    def predict(self, X=None):
        """Predict measurements with the posterior mean.

        Parameters
        ----------
        X : KroneckerOperator, array-like of shape (n_samples, n_features), or None
            None uses the fitted operator.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        check_is_fitted(self)
        if X is None or isinstance(X, KroneckerOperator):
            if X is None:
                if not hasattr(self, "operator_"):
                    raise ValueError("X is None but the model was fitted on a 2-D array X")
                X = self.operator_
            if X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but KroneckerSBL was fitted "
                    f"with {self.n_features_in_}"
                )
            return X @ (self.coef_.T if self.coef_.ndim == 2 else self.coef_)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_ + self.intercept_
