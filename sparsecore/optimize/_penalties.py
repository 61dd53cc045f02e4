"""Separable penalties g(w) = sum_j g_j(w_j) for the greedy BCD engine.

Every built-in penalty has the closed form

    g_j(v) = l1 |v| + l2 v**2 / 2   restricted to   lower <= v <= upper,

which is what the compiled block solvers take (:meth:`SeparablePenalty.params`).
From it follow, vectorised over arrays of any shape: the value, the proximal
operator, the convex conjugate, the Fenchel-Young gap terms of the duality gap,
the subdifferential distance (the "GS" score of Nutini et al.) and the
progress bound of an exact coordinate step (the "GS-q" score, used by the GSL
and GSD rules).

A third-party penalty can subclass :class:`SeparablePenalty` (and gets
everything), or provide only the methods a solver mode asks for: ``value`` and
``prox`` for gradient updates; ``params`` for Newton and matrix updates;
``conjugate`` and ``dual_scaling`` for a duality gap (see
``greedy_bcd``'s "Notes").
"""
import numbers

import numpy as np

__all__ = [
    "Box",
    "ElasticNet",
    "L1",
    "L2",
    "NoPenalty",
    "NonNegative",
    "SeparablePenalty",
]


def _check_scalar(value, name, *, low=None, high=None, allow_inf=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if np.isnan(value) or (not allow_inf and not np.isfinite(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return value


class SeparablePenalty:
    """``l1 |w| + l2 w**2 / 2`` on the box ``[lower, upper]``, coordinate-wise.

    Parameters
    ----------
    l1, l2 : float, default=0
        Non-negative weights of the absolute value and of half the square.
    lower, upper : float, default=-inf, inf
        Bounds of every coordinate; ``lower <= 0 <= upper`` is required so
        that w = 0 is feasible (it is the starting point of every solver).
    """

    def __init__(self, l1=0.0, l2=0.0, lower=-np.inf, upper=np.inf):
        self.l1 = _check_scalar(l1, "l1", low=0.0)
        self.l2 = _check_scalar(l2, "l2", low=0.0)
        self.lower = _check_scalar(lower, "lower", high=0.0, allow_inf=True)
        self.upper = _check_scalar(upper, "upper", low=0.0, allow_inf=True)

    def __repr__(self):
        return (f"{type(self).__name__}(l1={self.l1:g}, l2={self.l2:g}, "
                f"lower={self.lower:g}, upper={self.upper:g})")

    # -- what the compiled solvers need --------------------------------------
    def params(self):
        """``(l1, l2, lower, upper)``: the closed form the kernels evaluate.

        Returns
        -------
        l1, l2 : float
            Penalty strengths.
        lower, upper : float
            Box bounds (possibly infinite).
        """
        return self.l1, self.l2, self.lower, self.upper

    @property
    def is_smooth(self):
        """True when the penalty is differentiable and unconstrained."""
        return self.l1 == 0 and self.lower == -np.inf and self.upper == np.inf

    @property
    def sparsifying(self):
        """True when optimal coefficients are typically exactly zero (the
        working-set and active-set machinery pays off)."""
        return self.l1 > 0 or self.lower == 0 or self.upper == 0

    # -- values and operators -------------------------------------------------
    def value(self, w):
        """sum_j g_j(w_j) (``inf`` if a coefficient leaves the box).

        Parameters
        ----------
        w : ndarray
            Coefficients.

        Returns
        -------
        float
            The penalty, ``inf`` outside the box.
        """
        w = np.asarray(w, dtype=float)
        if np.any(w < self.lower) or np.any(w > self.upper):
            return np.inf
        return float(self.l1 * np.abs(w).sum() + 0.5 * self.l2 * np.square(w).sum())

    def prox(self, v, step):
        """argmin_x  (x - v)**2 / (2 step) + g(x), elementwise; ``step`` may
        be an array broadcasting against ``v``.

        Parameters
        ----------
        v : ndarray
            Points to project.
        step : float or ndarray
            Step size(s), broadcasting against ``v``.

        Returns
        -------
        ndarray of float64
            The proximal points, shaped like the broadcast inputs.
        """
        v = np.asarray(v, dtype=float)
        step = np.asarray(step, dtype=float)
        soft = np.sign(v) * np.maximum(np.abs(v) - step * self.l1, 0.0)
        return np.clip(soft / (1.0 + step * self.l2), self.lower, self.upper)

    def coordinate_minimum(self, w, c, L):
        """argmin_v  -c (v - w) + L/2 (v - w)**2 + g(v), elementwise (the
        exact coordinate step for curvature ``L`` and negative gradient ``c``).

        Parameters
        ----------
        w : ndarray
            Coefficients.
        c : ndarray
            Negative gradient of the smooth part, broadcasting against ``w``.
        L : float or ndarray
            Curvature, broadcasting against ``w``.

        Returns
        -------
        ndarray of float64
            The minimisers ``v``, shaped like the broadcast inputs.
        """
        L = np.asarray(L, dtype=float)
        num = L * w + c
        soft = np.sign(num) * np.maximum(np.abs(num) - self.l1, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = soft / (L + self.l2)
        x = np.where(L + self.l2 > 0, x, w)
        return np.clip(x, self.lower, self.upper)

    def conjugate(self, tau):
        """g*(tau) = sup_v tau v - g(v), elementwise (``inf`` outside the domain).

        Parameters
        ----------
        tau : ndarray
            Dual values (one per coefficient).

        Returns
        -------
        ndarray of float64
            ``g*(tau)``, shaped like ``tau``.
        """
        tau = np.asarray(tau, dtype=float)
        l1, l2, lo, hi = self.params()
        if l2 > 0:
            v = np.clip(np.sign(tau) * np.maximum(np.abs(tau) - l1, 0.0) / l2, lo, hi)
            return tau * v - l1 * np.abs(v) - 0.5 * l2 * v * v
        best = np.full(tau.shape, -np.inf)
        if lo <= 0 <= hi:
            best = np.maximum(best, 0.0)
        if np.isfinite(lo):
            best = np.maximum(best, tau * lo - l1 * abs(lo))
        if np.isfinite(hi):
            best = np.maximum(best, tau * hi - l1 * abs(hi))
        # outside [-l1, l1] on an unbounded side the sup is infinite; a relative
        # slack of 1e-12 absorbs the rounding of a dual point scaled onto the edge
        slack = l1 * 1e-12
        if hi == np.inf:
            best = np.where(tau > l1 + slack, np.inf, best)
        if lo == -np.inf:
            best = np.where(tau < -l1 - slack, np.inf, best)
        return best

    def dual_scaling(self, tau):
        """Largest t in [0, 1] with g*(t tau) finite for every entry.

        Parameters
        ----------
        tau : ndarray
            Dual values (one per coefficient).

        Returns
        -------
        float
            The scaling ``t`` in [0, 1].
        """
        tau = np.asarray(tau, dtype=float)
        l1, l2, lo, hi = self.params()
        if l2 > 0 or tau.size == 0:
            return 1.0
        t = 1.0
        if hi == np.inf:
            m = float(tau.max())
            if m > l1:
                t = min(t, l1 / m)
        if lo == -np.inf:
            m = float(-tau.min())
            if m > l1:
                t = min(t, l1 / m)
        return t

    def fenchel_young(self, w, tau):
        """g(w) + g*(tau) - w tau >= 0, elementwise (the penalty's share of the
        duality gap).

        Parameters
        ----------
        w : ndarray
            Coefficients.
        tau : ndarray
            Dual values (one per coefficient).

        Returns
        -------
        ndarray of float64
            Non-negative gap terms, shaped like the broadcast inputs.
        """
        w = np.asarray(w, dtype=float)
        r = (self.l1 * np.abs(w) + 0.5 * self.l2 * w * w) + self.conjugate(tau) - w * tau
        return np.maximum(r, 0.0)

    def subdiff_distance(self, w, c):
        """Distance from ``c - l2 w`` (``c`` the negative gradient of the smooth
        part) to the subdifferential of ``l1 |.|`` plus the box at ``w``; 0 at a
        coordinate-wise stationary point. This is the GS score.

        Parameters
        ----------
        w : ndarray
            Coefficients.
        c : ndarray
            Negative gradient of the smooth part, broadcasting against ``w``.

        Returns
        -------
        ndarray of float64
            The GS scores, shaped like the broadcast inputs.
        """
        w = np.asarray(w, dtype=float)
        c = np.asarray(c, dtype=float)
        l1, l2, lo, hi = self.params()
        g = c - l2 * w
        out = np.abs(g - l1 * np.sign(w))                     # interior, w != 0
        zero = w == 0
        if lo < 0 < hi:
            out = np.where(zero, np.maximum(np.abs(g) - l1, 0.0), out)
        elif lo == 0 and hi > 0:
            out = np.where(zero, np.maximum(g - l1, 0.0), out)
        elif hi == 0 and lo < 0:
            out = np.where(zero, np.maximum(-g - l1, 0.0), out)
        else:  # lo == hi == 0
            out = np.where(zero, 0.0, out)
        if lo < 0:
            out = np.where(w == lo, np.maximum(g + l1, 0.0), out)
        if hi > 0:
            out = np.where(w == hi, np.maximum(l1 - g, 0.0), out)
        return out

    def progress(self, w, c, L):
        """Decrease of the separable model -c d + L/2 d**2 + g(w+d) - g(w) at
        its exact minimiser d: the GS-q score with curvature ``L``.

        The model is (L + l2)-strongly convex, so the decrease equals
        (L + l2) d**2 / 2 when the step stays in one orthant and is at least
        that otherwise; that expression is returned because, unlike the
        difference of model values, it keeps its relative accuracy as the
        steps shrink (the greedy ranking then stays meaningful down to
        rounding level).

        Parameters
        ----------
        w : ndarray
            Coefficients.
        c : ndarray
            Negative gradient of the smooth part, broadcasting against ``w``.
        L : float or ndarray
            Curvature, broadcasting against ``w``.

        Returns
        -------
        ndarray of float64
            The GS-q scores, shaped like the broadcast inputs.
        """
        w = np.asarray(w, dtype=float)
        d = self.coordinate_minimum(w, c, L) - w
        return 0.5 * (np.asarray(L, dtype=float) + self.l2) * d * d

    def generalized_support(self, w):
        """Mask of the coefficients that are free (nonzero and off the bounds).

        Parameters
        ----------
        w : ndarray
            Coefficients.

        Returns
        -------
        ndarray of bool
            Shaped like ``w``.
        """
        w = np.asarray(w)
        return (w != 0) & (w != self.lower) & (w != self.upper)


class NoPenalty(SeparablePenalty):
    """g = 0: unregularised (the smooth problems of the paper's experiments)."""

    def __init__(self):
        super().__init__()


class L2(SeparablePenalty):
    """``alpha / 2 ||w||_2^2`` (ridge).

    Parameters
    ----------
    alpha : float
        Non-negative regularisation strength.
    """

    def __init__(self, alpha):
        self.alpha = _check_scalar(alpha, "alpha", low=0.0)
        super().__init__(l2=self.alpha)


class L1(SeparablePenalty):
    """``alpha ||w||_1``, optionally with ``w >= 0`` (``positive=True``).

    Parameters
    ----------
    alpha : float
        Non-negative regularisation strength.
    positive : bool, default=False
        Constrain ``w >= 0``.
    """

    def __init__(self, alpha, positive=False):
        self.alpha = _check_scalar(alpha, "alpha", low=0.0)
        self.positive = bool(positive)
        super().__init__(l1=self.alpha, lower=0.0 if self.positive else -np.inf)


class ElasticNet(SeparablePenalty):
    """``alpha (l1_ratio ||w||_1 + (1 - l1_ratio) / 2 ||w||_2^2)`` (scikit-learn's
    parametrisation), optionally with ``w >= 0``.

    Parameters
    ----------
    alpha : float
        Non-negative regularisation strength.
    l1_ratio : float, default=0.5
        Mix in [0, 1]: 1 is the lasso, 0 ridge.
    positive : bool, default=False
        Constrain ``w >= 0``.
    """

    def __init__(self, alpha, l1_ratio=0.5, positive=False):
        self.alpha = _check_scalar(alpha, "alpha", low=0.0)
        self.l1_ratio = _check_scalar(l1_ratio, "l1_ratio", low=0.0, high=1.0)
        self.positive = bool(positive)
        super().__init__(l1=self.alpha * self.l1_ratio,
                         l2=self.alpha * (1.0 - self.l1_ratio),
                         lower=0.0 if self.positive else -np.inf)


class Box(SeparablePenalty):
    """Indicator of ``lower <= w <= upper`` (with ``lower <= 0 <= upper``),
    optionally plus ``l1 |w|``.

    Parameters
    ----------
    lower, upper : float, default=-inf, inf
        Bounds of every coordinate, ``lower <= 0 <= upper``.
    l1 : float, default=0
        Non-negative weight of ``|w|``.
    """

    def __init__(self, lower=-np.inf, upper=np.inf, l1=0.0):
        super().__init__(l1=l1, lower=lower, upper=upper)


class NonNegative(Box):
    """Indicator of ``w >= 0`` (non-negative least squares and friends),
    optionally plus ``l1 |w|`` (the paper's NNLS + L1 problem).

    Parameters
    ----------
    l1 : float, default=0
        Non-negative weight of ``|w|``.
    """

    def __init__(self, l1=0.0):
        super().__init__(lower=0.0, upper=np.inf, l1=l1)
