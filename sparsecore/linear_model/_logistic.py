"""Logistic regression (binary and multinomial) by greedy block coordinate descent."""
import numbers

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.utils import compute_sample_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from sparsecore._validation import contiguous
from sparsecore.linear_model._base import BCD_PARAMETER_CONSTRAINTS, bcd_kwargs, warn_not_converged
from sparsecore.optimize import ElasticNet, Logistic, Multinomial, greedy_bcd

__all__ = ["GreedyBCDLogisticRegression"]


class GreedyBCDLogisticRegression(LinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """L1 / L2 / elastic-net logistic regression by greedy block coordinate descent.

    Minimises scikit-learn's :class:`~sklearn.linear_model.LogisticRegression`
    objective::

        C sum_i s_i loss_i + l1_ratio ||w||_1 + (1 - l1_ratio) / 2 ||w||_2^2

    with the binary logistic loss for two classes and the multinomial
    (softmax) loss with one coefficient vector per class for more. Internally
    it is divided by ``C sum(s)``, i.e. a weighted mean loss plus
    ``alpha = 1 / (C sum(s))`` times the penalty, and solved by
    :func:`sparsecore.optimize.greedy_bcd`: greedy working sets, proximal
    Newton block solves with a line search (class-wise Hessian blocks for the
    multinomial loss), gap-safe screening, and Newton steps on the support
    once it settles (Nutini, Laradji & Schmidt, JMLR 2022).

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength (> 0).
    l1_ratio : float, default=0.0
        0 is the L2 penalty, 1 the L1 penalty, in between the elastic net.
    fit_intercept : bool, default=True
    class_weight : dict, "balanced" or None, default=None
        Multiplies the sample weights per class, as in scikit-learn.
    tol : float, default=1e-6
        Stop when the duality gap is at most ``tol`` times the objective
        (relative duality gap). For more than two classes with an intercept
        the gap is that of the problem with the intercepts held.
    max_iter : int, default=1000
    max_epochs : int, default=2000
    warm_start : bool, default=False
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
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    dual_gap_ : float
    n_iter_ : ndarray of shape (1,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)

    See Also
    --------
    sparsecore.linear_model.logistic_path, sklearn.linear_model.LogisticRegression

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import scale
    >>> from sparsecore.linear_model import GreedyBCDLogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = GreedyBCDLogisticRegression(C=0.1, l1_ratio=1.0).fit(scale(X), y)
    >>> bool(clf.score(scale(X), y) > 0.95), int((clf.coef_ != 0).sum()) < 15
    (True, True)
    """

    _parameter_constraints = {
        "C": [Interval(numbers.Real, 0, None, closed="neither")],
        "l1_ratio": [Interval(numbers.Real, 0, 1, closed="both")],
        "fit_intercept": ["boolean"],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        **BCD_PARAMETER_CONSTRAINTS,
    }

    def __init__(self, C=1.0, *, l1_ratio=0.0, fit_intercept=True, class_weight=None,
                 tol=1e-6, max_iter=1000, max_epochs=2000, warm_start=False,
                 random_state=None, selection="gsl", partition="variable",
                 block_size="auto", update="newton", screening=True, n_threads=None,
                 verbose=0):
        self.C = C
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.tol = tol
        self.max_iter = max_iter
        self.max_epochs = max_epochs
        self.warm_start = warm_start
        self.random_state = random_state
        self.selection = selection
        self.partition = partition
        self.block_size = block_size
        self.update = update
        self.screening = screening
        self.n_threads = n_threads
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        X, y = validate_data(self, X, y, accept_sparse=["csc", "csr", "coo"],
                             dtype=[np.float64, np.float32], ensure_min_samples=1)
        if sp.issparse(X):
            X = sp.csc_array(X)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        k = len(self.classes_)
        if k < 2:
            raise ValueError(
                f"This solver needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {self.classes_[0]!r}")
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if self.class_weight is not None:
            sw = sw * compute_sample_weight(self.class_weight, y)
        total = float(sw.sum())
        if total <= 0:
            raise ValueError("sample_weight (times class_weight) must have a positive sum")
        alpha = 1.0 / (self.C * total)
        penalty = ElasticNet(alpha, self.l1_ratio)
        warm = self.warm_start and hasattr(self, "coef_") and self.coef_.shape[1] == X.shape[1]
        if k == 2:
            datafit, target = Logistic(), np.where(y_idx == 1, 1.0, -1.0)
            coef_init = self.coef_[0] if (warm and self.coef_.shape[0] == 1) else None
            b_init = self.intercept_ if (coef_init is not None and self.fit_intercept) else None
        else:
            datafit, target = Multinomial(k), y_idx
            coef_init = self.coef_.T if (warm and self.coef_.shape[0] == k) else None
            b_init = self.intercept_ if (coef_init is not None and self.fit_intercept) else None
        res = greedy_bcd(datafit, penalty, X, target, sample_weight=sw,
                         fit_intercept=self.fit_intercept, coef_init=coef_init,
                         intercept_init=b_init, **bcd_kwargs(self))
        warn_not_converged(self, res)
        coef = np.asarray(res.coef, dtype=np.float64)
        if k == 2:
            self.coef_ = coef.reshape(1, -1).astype(X.dtype, copy=False)
            self.intercept_ = np.array([res.intercept if self.fit_intercept else 0.0], dtype=X.dtype)
        else:
            self.coef_ = contiguous(coef.T).astype(X.dtype, copy=False)
            self.intercept_ = (np.asarray(res.intercept, dtype=X.dtype) if self.fit_intercept
                               else np.zeros(k, dtype=X.dtype))
        self.dual_gap_ = res.gap
        self.n_iter_ = np.array([res.n_iter])
        return self

    def predict_proba(self, X):
        """Class probabilities (sigmoid for two classes, softmax for more).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        d = self.decision_function(X)
        if d.ndim == 1:
            p = expit(d)
            return np.column_stack([1 - p, p])
        return softmax(d, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = True
        return tags
