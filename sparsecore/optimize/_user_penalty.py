"""User-defined separable penalties for the greedy BCD engine, compiled with
numba (``pip install "sparsecore[jit]"``).

A penalty ``g(w) = sum_j g_1(w_j)`` is given by two scalar functions: its
value ``g_1(v)`` and its proximal operator
``prox(v, step) = argmin_x (x - v)**2 / (2 step) + g_1(x)``. Both are
compiled once into numba ``cfunc``\\ s; the engine's compiled block solver
calls them through C function pointers in every coordinate update (the
exact coordinate step with curvature ``L`` and negative gradient ``c`` is
``prox(w + c / L, 1 / L)``), and the engine's vectorised methods (value,
prox, selection scores) apply them over arrays in a compiled loop.
"""
import numpy as np

from sparsecore._ext import _bcd
from sparsecore._validation import contiguous
from sparsecore._jit import as_cfunc

__all__ = ["UserPenalty", "user_penalty"]

_VALUE_SIG = "float64(float64)"
_PROX_SIG = "float64(float64, float64)"
_WHAT = "user-defined penalties compile their functions"
_EMPTY = np.empty(0)


def _flat(x, shape):
    return contiguous(np.broadcast_to(np.asarray(x, dtype=np.float64), shape)).ravel()


class UserPenalty:
    """A separable penalty from numba-compiled scalar functions; build it
    with :func:`user_penalty`.

    Parameters
    ----------
    value, prox : numba cfunc
        ``g_1(v)`` with signature ``float64(float64)`` and its proximal
        operator ``prox(v, step)`` with signature ``float64(float64, float64)``.
    name : str
        Shown by ``repr``.

    Attributes
    ----------
    name : str
    sparsifying : bool
        False: the engine's active-set Newton phase needs the closed form of
        a built-in penalty and is skipped.
    """

    sparsifying = False

    def __init__(self, value, prox, name):
        self._value = value
        self._prox = prox
        self.name = name
        self.addresses = (int(value.address), int(prox.address))

    def __repr__(self):
        return f"UserPenalty({self.name!r})"

    def value(self, w):
        """Penalty value ``sum_j g_1(w_j)`` over all entries of ``w``.

        Parameters
        ----------
        w : array_like

        Returns
        -------
        float
        """
        a = _flat(w, np.shape(w))
        return float(_bcd.user_sum(self.addresses[0], 1, a, _EMPTY, _EMPTY))

    def prox(self, v, step):
        """Proximal operator ``argmin_x (x - v)**2 / (2 step) + g_1(x)``,
        elementwise.

        Parameters
        ----------
        v : array_like
        step : float or array_like
            Positive step, broadcasting against ``v``.

        Returns
        -------
        ndarray
        """
        shape = np.broadcast_shapes(np.shape(v), np.shape(step))
        a, b = _flat(v, shape), _flat(step, shape)
        out = np.empty(a.size)
        _bcd.user_map(self.addresses[1], 2, a, b, out)
        return out.reshape(shape)

    def coordinate_minimum(self, w, c, L):
        """Exact coordinate step ``argmin_v -c (v - w) + L/2 (v - w)**2 + g_1(v)``
        ``= prox(w + c / L, 1 / L)``, elementwise (``w`` where ``L <= 0``).

        Parameters
        ----------
        w, c, L : array_like
            Coefficients, negative gradients of the smooth part and
            curvatures, broadcasting against each other.

        Returns
        -------
        ndarray
        """
        shape = np.broadcast_shapes(np.shape(w), np.shape(c), np.shape(L))
        out = np.empty(int(np.prod(shape, dtype=np.int64)))
        _bcd.user_coord_min(self.addresses[1], _flat(w, shape), _flat(c, shape),
                            _flat(L, shape), out)
        return out.reshape(shape)

    def subdiff_distance(self, w, c):
        """Stationarity measure ``|prox(w + c, 1) - w|`` (the proximal-gradient
        mapping with unit step), elementwise: zero exactly where ``w`` is
        coordinate-wise optimal. It stands for the distance to the
        subdifferential (the GS score and the ``"kkt"`` stopping criterion),
        which needs more than a prox to compute.

        Parameters
        ----------
        w, c : array_like
            Coefficients and negative gradients of the smooth part.

        Returns
        -------
        ndarray
        """
        w = np.asarray(w, dtype=np.float64)
        return np.abs(self.coordinate_minimum(w, c, 1.0) - w)

    def progress(self, w, c, L):
        """``L d**2 / 2`` for the exact coordinate step ``d`` with curvature
        ``L``: a lower bound of the decrease of the coordinate model for a
        convex ``g_1`` (the GS-q score used by the GSL and GSD rules).

        Parameters
        ----------
        w, c, L : array_like

        Returns
        -------
        ndarray
        """
        w = np.asarray(w, dtype=np.float64)
        d = self.coordinate_minimum(w, c, L) - w
        return 0.5 * np.asarray(L, dtype=np.float64) * d * d

    def generalized_support(self, w):
        """Mask of the nonzero coefficients.

        Parameters
        ----------
        w : array_like

        Returns
        -------
        ndarray of bool
        """
        return np.asarray(w) != 0


def user_penalty(value, prox, *, name="user"):
    """A separable penalty for :func:`sparsecore.optimize.greedy_bcd` from
    scalar functions compiled with numba (``pip install "sparsecore[jit]"``).

    ``g(w) = sum_j value(w_j)``. Each function may be a ``numba.cfunc`` with
    the signature below, a ``numba.njit`` function or a plain Python
    function (compiled here once per process and cached). The engine's
    compiled block solver calls them through C function pointers, without
    the GIL: the coordinate step with curvature ``L`` and negative gradient
    ``c`` is ``prox(w + c / L, 1 / L)``.

    ``value`` must be convex (the engine's steps and stopping rules assume
    it) and return ``inf`` outside its domain; ``prox`` must return points
    of the domain.

    Parameters
    ----------
    value : callable ``(v) -> float`` or numba cfunc ``float64(float64)``
        The penalty of one coefficient.
    prox : callable ``(v, step) -> float`` or numba cfunc ``float64(float64, float64)``
        ``argmin_x (x - v)**2 / (2 step) + value(x)`` for ``step > 0``.
    name : str, default="user"
        Shown by ``repr``.

    Returns
    -------
    UserPenalty
        The penalty to pass to the solver.

    Raises
    ------
    ImportError
        If numba is not installed.
    TypeError
        If a cfunc has another signature, or numba cannot compile a function
        with its signature.

    Notes
    -----
    No convex conjugate is known, so the solver stops on its coordinate
    optimality criterion (``criterion="kkt"``: the largest
    :meth:`UserPenalty.subdiff_distance` at most ``tol`` times its value at
    the start) instead of the duality gap, and skips gap-safe screening and
    the active-set Newton phase. ``update="gradient"``, ``"matrix"`` and
    ``"newton"`` are supported, except ``"newton"`` with a multi-class
    ``Multinomial`` datafit (its compiled solver takes the closed form only).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.optimize import Quadratic, greedy_bcd, user_penalty
    >>> def l1(v):
    ...     return 0.1 * abs(v)
    >>> def soft(v, step):
    ...     t = 0.1 * step
    ...     return v - t if v > t else (v + t if v < -t else 0.0)
    >>> pen = user_penalty(l1, soft, name="l1")        # doctest: +SKIP
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 20)); y = X[:, 0] - 2 * X[:, 3]
    >>> res = greedy_bcd(Quadratic(), pen, X, y)        # doctest: +SKIP
    >>> np.flatnonzero(res.coef).tolist()               # doctest: +SKIP
    [0, 3]
    """
    value_cf = as_cfunc(value, "value", _VALUE_SIG, where="user_penalty", what=_WHAT)
    prox_cf = as_cfunc(prox, "prox", _PROX_SIG, where="user_penalty", what=_WHAT)
    return UserPenalty(value_cf, prox_cf, str(name))
