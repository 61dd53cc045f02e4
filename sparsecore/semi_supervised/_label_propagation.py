"""Harmonic label propagation solved by forest-block BCD with message passing."""
import numbers

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from sparsecore.optimize._graph import GRAPH_SELECTIONS, harmonic_solve

__all__ = ["GreedyBCDLabelPropagation"]


class GreedyBCDLabelPropagation(ClassifierMixin, BaseEstimator):
    """Semi-supervised classification by harmonic label propagation.

    Unlabelled points (``y == -1``) get the label distribution F minimising
    ``sum_ij W_ij ||F_i - F_j||^2 / 2`` with F fixed to the one-hot labels on
    the labelled points (Zhu, Ghahramani & Lafferty 2003), i.e. the linear
    system ``L_uu F_u = W_ul Y_l`` of the graph Laplacian. The system is solved
    by exact updates of forest blocks (tree elimination, the message passing
    of Nutini, Laradji & Schmidt, JMLR 2022, Section 5), accelerated by
    conjugate gradients (``method="cg"``), or by the plain greedy/cyclic block
    iteration (``method="bcd"``). Unlike scikit-learn's
    :class:`~sklearn.semi_supervised.LabelPropagation` (a row-normalised,
    non-symmetric graph iterated to ``tol=1e-3``), the graph is symmetric and
    ``tol`` bounds the relative residual of the linear system.

    Parameters
    ----------
    kernel : {"knn", "rbf", "precomputed"} or callable, default="knn"
        ``knn``: symmetrised k-nearest-neighbour connectivity graph (sparse);
        ``rbf``: dense exp(-gamma ||x - x'||^2) affinities (O(n^2) memory,
        solved by a dense Cholesky factorisation); ``precomputed``: X is the
        (n_samples, n_samples) affinity matrix, sparse or dense (symmetrised
        as (W + W^T) / 2); a callable returns the affinities of two arrays.
    gamma : float, default=20
        RBF width.
    n_neighbors : int, default=7
        Neighbours of the knn graph (capped at n_samples - 1).
    tol : float, default=1e-8
        Relative residual ||b - A x|| / ||b|| at which the solve stops.
    max_iter : int, default=1000
    method : {"cg", "bcd"}, default="cg"
    selection : {"cyclic", "gs", "gsl", "gsd", "random", "redblack"}, default="cyclic"
        Block rule of ``method="bcd"`` (see
        :func:`sparsecore.optimize.graph_bcd`).
    n_jobs : int or None, default=None
        Jobs of the nearest-neighbour search.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    label_distributions_ : ndarray of shape (n_samples, n_classes)
    transduction_ : ndarray of shape (n_samples,)
    n_iter_ : int
        Iterations of the solve (at least 1).
    residual_ : float
        Relative residual of the solve (0 when nothing had to be solved).
    X_ : {ndarray, sparse matrix}
        Training input, kept for :meth:`predict`.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_moons
    >>> from sparsecore.semi_supervised import GreedyBCDLabelPropagation
    >>> X, y = make_moons(400, noise=0.05, random_state=0)
    >>> y_partial = np.full_like(y, -1); y_partial[:20] = y[:20]
    >>> model = GreedyBCDLabelPropagation(n_neighbors=5).fit(X, y_partial)
    >>> bool((model.transduction_ == y).mean() > 0.99)
    True
    """

    _parameter_constraints = {
        "kernel": [StrOptions({"knn", "rbf", "precomputed"}), callable],
        "gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "method": [StrOptions({"cg", "bcd"})],
        "selection": [StrOptions(set(GRAPH_SELECTIONS))],
        "n_jobs": [None, numbers.Integral],
    }

    def __init__(self, kernel="knn", *, gamma=20, n_neighbors=7, tol=1e-8, max_iter=1000,
                 method="cg", selection="cyclic", n_jobs=None):
        self.kernel = kernel
        self.gamma = gamma
        self.n_neighbors = n_neighbors
        self.tol = tol
        self.max_iter = max_iter
        self.method = method
        self.selection = selection
        self.n_jobs = n_jobs

    # -- graphs -----------------------------------------------------------------
    def _affinity_train(self, X):
        n = X.shape[0]
        if self.kernel == "knn":
            k = min(self.n_neighbors, n - 1)
            if k < 1:
                return sp.csr_array((n, n))
            self._nn = NearestNeighbors(n_neighbors=k, n_jobs=self.n_jobs).fit(X)
            G = sp.csr_array(self._nn.kneighbors_graph(mode="connectivity"))
            return sp.csr_array(G.maximum(G.T))
        if self.kernel == "rbf":
            W = rbf_kernel(X, X, gamma=self.gamma)
            np.fill_diagonal(W, 0.0)
            return W
        W = X if self.kernel == "precomputed" else self.kernel(X, X)
        if sp.issparse(W):
            W = sp.csr_array(W, dtype=np.float64)
            W = (W + W.T) * 0.5
            W.setdiag(0)
            W.eliminate_zeros()
        else:
            W = np.asarray(W, dtype=np.float64)
            if W.shape != (n, n):
                raise ValueError(f"the affinity matrix must be ({n}, {n}), got {W.shape}")
            W = (W + W.T) * 0.5
            np.fill_diagonal(W, 0.0)
        if (W.data if sp.issparse(W) else W).min(initial=0.0) < 0:
            raise ValueError("affinities must be non-negative")
        return W

    def _affinity_predict(self, X):
        if self.kernel == "knn":
            k = min(self.n_neighbors, self.X_.shape[0])
            nn = NearestNeighbors(n_neighbors=k, n_jobs=self.n_jobs).fit(self.X_)
            return sp.csr_array(nn.kneighbors_graph(X, mode="connectivity"))
        if self.kernel == "rbf":
            return rbf_kernel(X, self.X_, gamma=self.gamma)
        if self.kernel == "precomputed":
            return X
        return self.kernel(X, self.X_)

    # -- fit / predict ------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Propagate the labels of ``y`` (-1 marks an unlabelled point).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Features, or the affinity matrix with ``kernel="precomputed"``.
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : object
        """
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], reset=True)
        if self.kernel == "precomputed" and X.shape[0] != X.shape[1]:
            raise ValueError(f"with kernel='precomputed' X must be square, got shape {X.shape}")
        check_classification_targets(y)
        self.X_ = X
        classes = np.unique(y)
        self.classes_ = classes[classes != -1]
        if self.classes_.size == 0:
            raise ValueError("y has no labelled point (every entry is -1)")
        labelled = y != -1
        K = self.classes_.size
        Yl = (y[labelled][:, None] == self.classes_[None, :]).astype(np.float64)
        W = self._affinity_train(X)
        kwargs = dict(method=self.method, selection=self.selection, tol=self.tol,
                      max_iter=self.max_iter)
        if sp.issparse(W):
            F, res = harmonic_solve(W, labelled, Yl, **kwargs)
            # with every point labelled the labels are the solution: one step
            self.n_iter_ = 1 if res is None else max(res.n_iter, 1)
            self.residual_ = 0.0 if res is None else res.residual
        else:
            F = self._dense_harmonic(W, labelled, Yl)
            self.n_iter_ = 1
        F = np.clip(F, 0.0, None)
        s = F.sum(axis=1, keepdims=True)
        F = np.where(s > 0, F / np.where(s > 0, s, 1.0), 1.0 / K)
        self.label_distributions_ = F
        self.transduction_ = self.classes_[np.argmax(F, axis=1)]
        return self

    def _dense_harmonic(self, W, labelled, Yl):
        n, K = W.shape[0], Yl.shape[1]
        F = np.zeros((n, K))
        F[labelled] = Yl
        u = ~labelled
        if not u.any():
            self.residual_ = 0.0
            return F
        deg = W.sum(axis=1)
        A = np.diag(deg[u]) - W[np.ix_(u, u)]
        rhs = W[np.ix_(u, labelled)] @ Yl
        try:
            Fu = scipy.linalg.solve(A, rhs, assume_a="pos")
        except (np.linalg.LinAlgError, ValueError):
            Fu = np.linalg.lstsq(A, rhs, rcond=None)[0]  # components without labels
        self.residual_ = float(np.linalg.norm(rhs - A @ Fu) / (np.linalg.norm(rhs) or 1.0))
        F[u] = Fu
        return F

    def predict_proba(self, X):
        """Label distributions of new points: the affinity-weighted average of
        the training points' distributions.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Features, or affinities to the training points with
            ``kernel="precomputed"``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        Wx = self._affinity_predict(X)
        P = np.asarray(Wx @ self.label_distributions_)
        s = P.sum(axis=1, keepdims=True)
        K = self.classes_.size
        return np.where(s > 0, P / np.where(s > 0, s, 1.0), 1.0 / K)

    def predict(self, X):
        """Most probable class of new points.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.pairwise = self.kernel == "precomputed"
        tags.classifier_tags.multi_class = True
        return tags
