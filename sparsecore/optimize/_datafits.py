"""Datafits F(w) = sum_i h_i l(y_i, z_i) with z = X w + b, for the BCD engine.

``h`` are the sample weights normalised to sum to one (``h = 1/n`` without
``sample_weight``), so every datafit is a weighted mean of per-sample losses,
scikit-learn's scaling for ``Lasso`` (1/(2n) ||y - Xw||^2) and, after
``alpha = 1 / (C sum(sample_weight))``, for ``LogisticRegression``.

A datafit works on targets encoded by :meth:`encode` as an (n, K) float array
(K = 1 except for the multinomial loss) and provides, vectorised:

``value(Y, Z, h)``
    the weighted mean loss;
``gradient(Y, Z)``
    d l / d z per sample (n, K), unweighted;
``hessian_diag(Y, Z)``
    d^2 l / d z^2 per sample (n, K) (class-diagonal part for the multinomial
    loss): the weights of a Newton step;
``curvature``
    an upper bound on the second derivative (1 for least squares, 1/4 for the
    logistic loss, 1/2 for the softmax in Bohning's bound): the weights of the
    paper's "matrix" update and the coordinate Lipschitz constants;
``dual_direction(Y, Z, h, fit_intercept)``
    the dual point theta = h * gradient, adjusted so that sum_i theta_i = 0
    when an intercept is fitted (where the loss allows); and
``fenchel_young(Y, Z, h, Theta)``
    the loss's share of the duality gap at the dual point ``Theta``.

Datafits with ``is_quadratic = True`` are solved by exact block minimisation
(their Newton model is exact) and fit an intercept by implicit centring.
"""
import numpy as np
from scipy.special import expit, log_expit, logsumexp, xlogy

from sparsecore._validation import contiguous

__all__ = ["Datafit", "Logistic", "Multinomial", "Quadratic", "UserDatafit", "user_datafit"]


class Datafit:
    """Base class: see the module docstring for the protocol."""

    is_quadratic = False
    curvature = 1.0

    def __repr__(self):
        return f"{type(self).__name__}()"

    def encode(self, y):
        """Targets as an (n, K) float64 array.

        Parameters
        ----------
        y : array_like of shape (n,) or (n, K)
            Targets.

        Returns
        -------
        ndarray of shape (n, K), float64
        """
        y = np.asarray(y, dtype=np.float64)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def intercept_init(self, Y, h):
        """The best constant model (the intercept at w = 0).

        Parameters
        ----------
        Y : ndarray of shape (n, K)
            Encoded targets.
        h : ndarray of shape (n,)
            Non-negative sample weights.

        Returns
        -------
        ndarray of shape (K,)
            Initial intercepts (zeros in this base class).
        """
        return np.zeros(Y.shape[1])


    def value(self, Y, Z, h):
        """Weighted mean loss ``sum_i h_i l(y_i, z_i)``.

        Parameters
        ----------
        Y : ndarray of shape (n, K)
            Encoded targets (see :meth:`Datafit.encode`).
        Z : ndarray of shape (n, K)
            Model outputs (linear predictions).
        h : ndarray of shape (n,)
            Non-negative sample weights.

        Returns
        -------
        float
            The weighted loss.
        """
        raise NotImplementedError

    def gradient(self, Y, Z):
        """Per-sample derivative ``d l / d z`` (n, K), unweighted.

        Parameters
        ----------
        Y : ndarray of shape (n, K)
            Encoded targets (see :meth:`Datafit.encode`).
        Z : ndarray of shape (n, K)
            Model outputs (linear predictions).

        Returns
        -------
        ndarray of shape (n, K)
            ``d l / d z`` for each sample and output.
        """
        raise NotImplementedError

    def hessian_diag(self, Y, Z):
        """Per-sample second derivative ``d^2 l / d z^2`` (n, K): Newton weights.

        Parameters
        ----------
        Y : ndarray of shape (n, K)
            Encoded targets (see :meth:`Datafit.encode`).
        Z : ndarray of shape (n, K)
            Model outputs (linear predictions).

        Returns
        -------
        ndarray of shape (n, K)
            ``d^2 l / d z^2`` for each sample and output.
        """
        raise NotImplementedError


class _DualGapDatafit(Datafit):
    """A datafit with a dual point and its Fenchel-Young term: the solver
    reports the duality gap (a user datafit without them stops on the
    coefficients' change instead)."""

    def dual_direction(self, Y, Z, h, fit_intercept):
        """Dual point ``theta = h * gradient`` (summing to zero when an intercept
        is fitted, where the loss allows) and whether its gap is exact.

        Parameters
        ----------
        Y : ndarray of shape (n, K)
            Encoded targets (see :meth:`Datafit.encode`).
        Z : ndarray of shape (n, K)
            Model outputs (linear predictions).
        h : ndarray of shape (n,)
            Non-negative sample weights.
        fit_intercept : bool
            Whether an intercept is fitted.

        Returns
        -------
        Theta : ndarray of shape (n, K)
            The dual point.
        exact : bool
            Whether the duality gap computed at ``Theta`` is the exact gap.
        """
        raise NotImplementedError

    def fenchel_young(self, Y, Z, h, Theta):
        """The loss's share of the duality gap at the dual point ``Theta``.

        Parameters
        ----------
        Y : ndarray of shape (n, K)
            Encoded targets (see :meth:`Datafit.encode`).
        Z : ndarray of shape (n, K)
            Model outputs (linear predictions).
        h : ndarray of shape (n,)
            Non-negative sample weights.
        Theta : ndarray of shape (n, K)
            Dual point (from :meth:`dual_direction`).

        Returns
        -------
        float
            The loss's share of the duality gap (non-negative up to
            rounding).
        """
        raise NotImplementedError


class Quadratic(_DualGapDatafit):
    """Least squares: ``sum_i h_i (y_i - z_i)**2 / 2``."""

    is_quadratic = True
    curvature = 1.0

    def value(self, Y, Z, h):
        R = Y - Z
        return 0.5 * float(np.einsum("i,ik,ik->", h, R, R))

    def gradient(self, Y, Z):
        return Z - Y

    def hessian_diag(self, Y, Z):
        return np.ones_like(Z)

    def intercept_init(self, Y, h):
        return h @ Y / h.sum()

    def dual_direction(self, Y, Z, h, fit_intercept):
        # theta = h (z - y); with the intercept at its optimum sum(theta) = 0
        return h[:, None] * (Z - Y), True

    def fenchel_young(self, Y, Z, h, Theta):
        # (1 / 2h) (h (y - z) + theta)^2, zero weights contribute nothing
        A = h[:, None] * (Y - Z) + Theta
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(h[:, None] > 0, A * A / (2 * h[:, None]), 0.0)
        return float(terms.sum())


class Logistic(_DualGapDatafit):
    """Binary logistic loss ``sum_i h_i log(1 + exp(-y_i z_i))``, y in {-1, 1}."""

    curvature = 0.25

    def encode(self, y):
        y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
        return y

    def value(self, Y, Z, h):
        return float(-(h @ log_expit(Y * Z)).sum())

    def gradient(self, Y, Z):
        return -Y * expit(-Y * Z)

    def hessian_diag(self, Y, Z):
        p = expit(Z)
        return p * (1.0 - p)

    def intercept_init(self, Y, h):
        pos = float(h @ (Y[:, 0] > 0)) / h.sum()
        pos = min(max(pos, 1e-12), 1 - 1e-12)
        return np.array([np.log(pos / (1 - pos))])

    def dual_direction(self, Y, Z, h, fit_intercept):
        # theta_i = -h_i y_i v_i with v in [0, 1]; an intercept needs
        # sum(theta) = 0, reached by scaling down v on the heavier class
        V = expit(-Y * Z)
        if fit_intercept:
            pos = Y[:, 0] > 0
            a_pos = float(h[pos] @ V[pos, 0])
            a_neg = float(h[~pos] @ V[~pos, 0])
            if a_pos > a_neg and a_pos > 0:
                V[pos, 0] *= a_neg / a_pos
            elif a_neg > a_pos and a_neg > 0:
                V[~pos, 0] *= a_pos / a_neg
        return -h[:, None] * Y * V, True

    def fenchel_young(self, Y, Z, h, Theta):
        with np.errstate(divide="ignore", invalid="ignore"):
            V = np.where(h[:, None] > 0, -Theta * Y / h[:, None], 0.0)
        V = np.clip(V, 0.0, 1.0)
        ent = xlogy(V, V) + xlogy(1 - V, 1 - V)
        terms = -log_expit(Y * Z) + ent + V * Y * Z
        return float(h @ terms.sum(axis=1))


class Multinomial(_DualGapDatafit):
    """Softmax cross-entropy ``sum_i h_i (logsumexp(z_i) - z_{i, y_i})`` with
    one coefficient vector per class (scikit-learn's symmetric
    parametrisation); targets are class indices 0..K-1.

    Parameters
    ----------
    n_classes : int or None, default=None
        Number of classes K; None takes ``max(y) + 1``.
    """

    curvature = 0.5

    def __init__(self, n_classes=None):
        self.n_classes = n_classes

    def __repr__(self):
        return f"Multinomial(n_classes={self.n_classes})"

    def encode(self, y):
        y = np.asarray(y)
        if y.ndim == 2:
            return np.asarray(y, dtype=np.float64)
        k = int(y.max()) + 1 if self.n_classes is None else int(self.n_classes)
        Y = np.zeros((y.shape[0], k))
        Y[np.arange(y.shape[0]), y.astype(np.intp)] = 1.0
        return Y

    @staticmethod
    def _proba(Z):
        P = Z - Z.max(axis=1, keepdims=True)
        np.exp(P, out=P)
        P /= P.sum(axis=1, keepdims=True)
        return P

    def value(self, Y, Z, h):
        return float(h @ (logsumexp(Z, axis=1) - (Y * Z).sum(axis=1)))

    def gradient(self, Y, Z):
        return self._proba(Z) - Y

    def hessian_diag(self, Y, Z):
        P = self._proba(Z)
        return P * (1.0 - P)

    def intercept_init(self, Y, h):
        freq = np.clip(h @ Y / h.sum(), 1e-12, None)
        b = np.log(freq)
        return b - b.mean()

    def dual_direction(self, Y, Z, h, fit_intercept):
        # theta_i = h_i (p_i - e_{y_i}); with an intercept, sum_i theta_i = 0
        # holds only at the optimal intercepts, so the gap is then the gap of
        # the problem with the intercepts held (documented in greedy_bcd)
        return h[:, None] * (self._proba(Z) - Y), not fit_intercept

    def fenchel_young(self, Y, Z, h, Theta):
        # theta = h (q - e_y) with q in the simplex:  lse(z) + sum q log q - q.z
        with np.errstate(divide="ignore", invalid="ignore"):
            Q = np.where(h[:, None] > 0, Theta / h[:, None], 0.0) + Y
        Q = np.clip(Q, 0.0, 1.0)
        terms = logsumexp(Z, axis=1) + xlogy(Q, Q).sum(axis=1) - (Q * Z).sum(axis=1)
        return float(h @ np.maximum(terms, 0.0))


# ---------------------------------------------------------------------------
# user-defined datafits compiled with numba

_SAMPLE_SIG = "float64(float64, float64)"


def _compile_per_sample(fn, role):
    """``fn(y, z) -> float`` as a numba cfunc (compiled once per function and
    process, by the helper user semirings and penalties share)."""
    from sparsecore._jit import as_cfunc

    return as_cfunc(fn, role, _SAMPLE_SIG, where="user_datafit",
                     what="user-defined datafits compile their functions")


def _per_sample(addr, Y, Z):
    """fn(Y[i], Z[i]) over all samples by the compiled loop (no GIL)."""
    from sparsecore._ext import _bcd

    out = np.empty(Z.shape)
    if Z.shape[1] == 1:
        _bcd.user_map(addr, 2, contiguous(Y[:, 0], dtype=np.float64),
                      contiguous(Z[:, 0], dtype=np.float64), out[:, 0])
        return out
    for k in range(Z.shape[1]):
        col = np.empty(Z.shape[0])
        _bcd.user_map(addr, 2, contiguous(Y[:, k], dtype=np.float64),
                      contiguous(Z[:, k], dtype=np.float64), col)
        out[:, k] = col
    return out


class UserDatafit(Datafit):
    """A datafit ``sum_i h_i loss(y_i, z_i)`` from numba-compiled per-sample
    functions; build it with :func:`user_datafit`.

    Parameters
    ----------
    loss, gradient : numba cfunc
        Per-sample loss and ``d loss / d z`` with signature
        ``float64(float64 y, float64 z)``.
    hessian : numba cfunc or None
        Per-sample ``d^2 loss / d z^2``; None uses ``curvature``.
    curvature : float
        Upper bound of ``d^2 loss / d z^2``.
    name : str
        Shown by ``repr``.
    """

    def __init__(self, loss, gradient, hessian, curvature, name):
        self._loss = loss
        self._gradient = gradient
        self._hessian = hessian
        self.curvature = float(curvature)
        self.name = name

    def __repr__(self):
        return f"UserDatafit({self.name!r})"

    def value(self, Y, Z, h):
        from sparsecore._ext import _bcd

        h = contiguous(h, dtype=np.float64)
        return float(sum(_bcd.user_sum(self._loss.address, 2,
                                       contiguous(Y[:, k], dtype=np.float64),
                                       contiguous(Z[:, k], dtype=np.float64), h)
                         for k in range(Z.shape[1])))

    def gradient(self, Y, Z):
        return _per_sample(self._gradient.address, Y, Z)

    def hessian_diag(self, Y, Z):
        if self._hessian is None:
            return np.full_like(Z, self.curvature)
        return _per_sample(self._hessian.address, Y, Z)


def user_datafit(loss, gradient, hessian=None, *, curvature, name="user"):
    """A datafit for :func:`sparsecore.optimize.greedy_bcd` from per-sample
    functions compiled with numba (``pip install "sparsecore[jit]"``).

    Each function may be a ``numba.cfunc`` with the signature
    ``float64(float64 y, float64 z)``, a ``numba.njit`` function or a plain
    Python function (compiled here once per process and cached). A compiled
    loop calls them through C function pointers over all samples, without
    the GIL, at each call of the engine's datafit protocol (value, gradient,
    Hessian diagonal); single-output targets only.
    Without a ``dual_direction``, the solver stops on its other criteria
    (no duality gap).

    Parameters
    ----------
    loss : callable ``(y, z) -> float`` or numba cfunc
        The loss of one sample with target ``y`` and prediction ``z``.
    gradient : callable ``(y, z) -> float`` or numba cfunc
        ``d loss / d z``.
    hessian : callable ``(y, z) -> float``, numba cfunc or None
        ``d^2 loss / d z^2`` (the weights of Newton updates); None uses
        ``curvature`` everywhere.
    curvature : float
        An upper bound of ``d^2 loss / d z^2`` over all ``z`` (the coordinate
        Lipschitz constants and the weights of majorisation updates).
    name : str, default="user"
        Shown by ``repr``.

    Returns
    -------
    UserDatafit
        The datafit to pass to the solver.

    Raises
    ------
    ImportError
        If numba is not installed.
    TypeError
        If a cfunc has another signature, or a function cannot be compiled
        as ``float64(float64, float64)``.
    ValueError
        If ``curvature`` is not positive and finite.
    """
    if not np.isfinite(curvature) or curvature <= 0:
        raise ValueError(f"user_datafit: curvature must be positive and finite, got {curvature}")
    return UserDatafit(
        _compile_per_sample(loss, "loss"),
        _compile_per_sample(gradient, "gradient"),
        None if hessian is None else _compile_per_sample(hessian, "hessian"),
        curvature,
        str(name),
    )
