"""Least-squares estimators solved by greedy block coordinate descent."""
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.linear_model._base import LinearModel
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from sparsecore.linear_model._base import BCD_PARAMETER_CONSTRAINTS, bcd_kwargs, warn_not_converged
from sparsecore.optimize import ElasticNet, Quadratic, greedy_bcd

__all__ = ["GreedyBCDElasticNet", "GreedyBCDLasso"]


class _BaseBCDRegressor(RegressorMixin, LinearModel, BaseEstimator):
    """Fit logic shared by the least-squares estimators."""

    _parameter_constraints = {
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "positive": ["boolean"],
        **BCD_PARAMETER_CONSTRAINTS,
    }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            float32 input gives float32 coefficients.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        X, y = validate_data(self, X, y, accept_sparse=["csc", "csr", "coo"],
                             dtype=[np.float64, np.float32], multi_output=True,
                             y_numeric=True, ensure_min_samples=1)
        if sp.issparse(X):
            X = sp.csc_array(X)
        y = np.asarray(y, dtype=np.float64)
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        n_targets = 1 if y.ndim == 1 else y.shape[1]
        coef_init = None
        if self.warm_start and hasattr(self, "coef_") and np.size(self.coef_) == X.shape[1] * n_targets:
            coef_init = np.asarray(self.coef_, dtype=np.float64).reshape(n_targets, -1).T
        res = greedy_bcd(Quadratic(), ElasticNet(self.alpha, self._l1_ratio(), positive=self.positive),
                         X, y, sample_weight=sw, fit_intercept=self.fit_intercept,
                         coef_init=coef_init, **bcd_kwargs(self))
        warn_not_converged(self, res)
        coef = np.asarray(res.coef)
        if y.ndim == 1:
            self.coef_ = coef.astype(X.dtype, copy=False)
            self.intercept_ = float(res.intercept) if self.fit_intercept else 0.0
            self.dual_gap_ = res.gap
        else:
            self.coef_ = coef.T.astype(X.dtype, copy=True)
            self.intercept_ = (np.asarray(res.intercept, dtype=X.dtype) if self.fit_intercept
                               else np.zeros(n_targets, dtype=X.dtype))
            self.dual_gap_ = res.gap
        self.n_iter_ = res.n_iter
        return self

    def _decision_function(self, X):
        check_is_fitted(self)
        return super()._decision_function(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags


class GreedyBCDElasticNet(_BaseBCDRegressor):
    """Elastic net by greedy block coordinate descent.

    Minimises, with ``h`` the sample weights divided by their sum (``1/n``
    without weights)::

        sum_i h_i (y_i - x_i w - b)^2 / 2
            + alpha * l1_ratio * ||w||_1 + alpha * (1 - l1_ratio) / 2 * ||w||_2^2

    which is :class:`sklearn.linear_model.ElasticNet`'s objective. The solver
    is :func:`sparsecore.optimize.greedy_bcd` (Nutini, Laradji & Schmidt,
    JMLR 2022): greedy working sets, exact block solves by compiled coordinate
    descent, gap-safe screening and a Newton step once the support settles.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation strength (>= 0).
    l1_ratio : float, default=0.5
        Mix of the L1 and L2 parts, in [0, 1].
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (sparse X is centred implicitly, never
        densified).
    tol : float, default=1e-6
        Stop when the duality gap is at most ``tol`` times the objective
        (relative duality gap (P - D) / P). Unlike scikit-learn's ``tol`` it
        does not depend on the scale of ``y``.
    max_iter : int, default=1000
        Block updates (outer iterations).
    max_epochs : int, default=2000
        Coordinate-descent epochs per block solve.
    warm_start : bool, default=False
        Start from the previous ``coef_``.
    positive : bool, default=False
        Constrain the coefficients to be non-negative.
    random_state : int, RandomState instance or None, default=None
        Seeds the random partition and the random/cyclic rules.
    selection : {"gsl", "gs", "gsd", "gsq", "cyclic", "random", "lipschitz"}, default="gsl"
        Block selection rule (see :func:`~sparsecore.optimize.greedy_bcd`).
    partition : {"variable", "order", "sort", "avg", "random"}, default="variable"
        Variable blocks or a fixed partition.
    block_size : int or "auto", default="auto"
        Coordinates per block; "auto" is the greedy working-set mode.
    update : {"newton", "matrix", "gradient"}, default="newton"
        Block update rule.
    screening : bool, default=True
        Gap-safe screening.
    n_threads : int or None, default=None
        Threads for the full-gradient passes.
    verbose : int, default=0

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    dual_gap_ : float or ndarray of shape (n_targets,)
        Duality gap at the end, in the objective's units.
    n_iter_ : int or list of int
        Block updates run.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)

    See Also
    --------
    GreedyBCDLasso, sparsecore.linear_model.enet_path, sklearn.linear_model.ElasticNet

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.linear_model import GreedyBCDElasticNet
    >>> X = np.array([[0., 1.], [1., 0.], [2., 2.], [3., 1.]]); y = X @ [1., -2.] + 1
    >>> GreedyBCDElasticNet(alpha=0.01).fit(X, y).coef_.round(2)
    array([ 0.98, -1.96])
    """

    _parameter_constraints = {
        **_BaseBCDRegressor._parameter_constraints,
        "l1_ratio": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, alpha=1.0, *, l1_ratio=0.5, fit_intercept=True, tol=1e-6,
                 max_iter=1000, max_epochs=2000, warm_start=False, positive=False,
                 random_state=None, selection="gsl", partition="variable",
                 block_size="auto", update="newton", screening=True, n_threads=None,
                 verbose=0):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.max_epochs = max_epochs
        self.warm_start = warm_start
        self.positive = positive
        self.random_state = random_state
        self.selection = selection
        self.partition = partition
        self.block_size = block_size
        self.update = update
        self.screening = screening
        self.n_threads = n_threads
        self.verbose = verbose

    def _l1_ratio(self):
        return self.l1_ratio


class GreedyBCDLasso(_BaseBCDRegressor):
    """Lasso by greedy block coordinate descent.

    Minimises ``sum_i h_i (y_i - x_i w - b)^2 / 2 + alpha ||w||_1`` with ``h``
    the sample weights divided by their sum (``1/n`` without weights), which is
    :class:`sklearn.linear_model.Lasso`'s objective. See
    :class:`GreedyBCDElasticNet` for the solver and every other parameter.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation strength (>= 0).
    fit_intercept : bool, default=True
    tol : float, default=1e-6
        Relative duality gap (P - D) / P at which to stop.
    max_iter : int, default=1000
    max_epochs : int, default=2000
    warm_start : bool, default=False
    positive : bool, default=False
    random_state : int, RandomState instance or None, default=None
    selection : {"gsl", "gs", "gsd", "gsq", "cyclic", "random", "lipschitz"}, default="gsl"
    partition : {"variable", "order", "sort", "avg", "random"}, default="variable"
    block_size : int or "auto", default="auto"
    update : {"newton", "matrix", "gradient"}, default="newton"
    screening : bool, default=True
    n_threads : int or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    dual_gap_ : float
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.linear_model import GreedyBCDLasso
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 30)); y = 3 * X[:, 4] - 2 * X[:, 7]
    >>> np.flatnonzero(GreedyBCDLasso(alpha=0.1).fit(X, y).coef_).tolist()
    [4, 7]
    """

    def __init__(self, alpha=1.0, *, fit_intercept=True, tol=1e-6, max_iter=1000,
                 max_epochs=2000, warm_start=False, positive=False, random_state=None,
                 selection="gsl", partition="variable", block_size="auto",
                 update="newton", screening=True, n_threads=None, verbose=0):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.max_epochs = max_epochs
        self.warm_start = warm_start
        self.positive = positive
        self.random_state = random_state
        self.selection = selection
        self.partition = partition
        self.block_size = block_size
        self.update = update
        self.screening = screening
        self.n_threads = n_threads
        self.verbose = verbose

    def _l1_ratio(self):
        return 1.0
