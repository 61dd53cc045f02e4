"""The greedy block coordinate descent engine (functional API).

After J. Nutini, I. Laradji and M. Schmidt, "Let's Make Block Coordinate
Descent Converge Faster: Faster Greedy Rules, Message-Passing, Active-Set
Complexity, and Superlinear Convergence", JMLR 23(131), 2022.

Each outer iteration computes the gradient, the duality gap and the scores of
the selection rule; picks one block (from a fixed partition or, with variable
blocks, any set of coordinates); and updates it with a gradient step, a
matrix (block Hessian bound) step or a (proximal) Newton solve. With variable
blocks and ``block_size="auto"`` the block always contains the current
support and grows geometrically: the greedy rule becomes a working-set
strategy, the block solve an exact (least squares) or proximal-Newton
(logistic, multinomial) solve, and once the support stops changing a Newton
step on the support finishes the problem (the paper's active-set phase).
"""
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from sparsecore._ext import _bcd
from sparsecore._threads import effective_n_threads
from sparsecore._validation import check_choice, check_scalar, contiguous, fortran
from sparsecore.optimize._datafits import Datafit, Multinomial
from sparsecore.optimize._design import Design, as_design
from sparsecore.optimize._graph import GraphQuadratic, graph_bcd
from sparsecore.optimize._partitions import PARTITIONS, make_partition
from sparsecore.optimize._penalties import SeparablePenalty as _SeparablePenalty
from sparsecore.optimize._user_penalty import UserPenalty

__all__ = ["BCDResult", "greedy_bcd", "SELECTIONS", "UPDATES", "PARTITIONS"]

SELECTIONS = ("gs", "gsl", "gsd", "gsq", "cyclic", "random", "lipschitz")
GREEDY = ("gs", "gsl", "gsd", "gsq")
UPDATES = ("gradient", "matrix", "newton")

_DATAFIT_NEEDS = {
    "gradient": ("value", "gradient", "encode", "curvature"),
    "matrix": ("value", "gradient", "encode", "curvature"),
    "newton": ("value", "gradient", "hessian_diag", "encode"),
}
_PENALTY_NEEDS = {
    "gradient": ("value", "prox", "coordinate_minimum", "progress", "subdiff_distance"),
    "matrix": ("value", "params", "coordinate_minimum", "progress", "subdiff_distance"),
    "newton": ("value", "params", "coordinate_minimum", "progress", "subdiff_distance"),
}
# a user penalty (numba cfuncs) replaces the closed form ``params`` in the
# compiled block solver
_USER_PENALTY_NEEDS = ("value", "prox", "coordinate_minimum", "progress", "subdiff_distance")
_GAP_NEEDS = (("dual_direction", "fenchel_young"), ("dual_scaling", "fenchel_young"))
_KAPPA = 0.05         # inner solves stop at this fraction of the outer gap
_NEWTON_MAX = 2000    # largest support for a direct active-set Newton solve
# epochs per proximal-Newton model solve (non-quadratic datafits): an inexact
# model solve plus the line search beats an accurate solve of an
# ill-conditioned model (near-separable logistic problems), measured 4x
_NEWTON_EPOCHS = 100
# proximal-Newton models of non-quadratic datafits: a sample's curvature is
# floored at _CURV_FLOOR times its weight (the logistic loss's curvature
# vanishes as |z| grows: 1e-12 at |z| = 28). A curvature near zero gives a
# feature whose samples all have it a near-zero coordinate curvature and a
# step of up to 1e300 that no line search recovers from (near-separable
# data at small alpha); the floor keeps the model positive definite with a
# bounded step, and the line search on the true objective keeps descent.
_CURV_FLOOR = 1e-12
# samples whose curvature is below _CURV_GAP times their weight enter the
# block model through their gradient only: their g_i^2 / H_i term (up to
# 1e12 times the loss) would swamp the block solver's duality gap so that it
# never stops before its epoch cap; they are left out of that gap
_CURV_GAP = 1e-10


@dataclass
class BCDResult:
    """What :func:`greedy_bcd` returns.

    Attributes
    ----------
    coef : ndarray of shape (n_features,) or (n_features, n_outputs)
    intercept : float or ndarray of shape (n_outputs,)
    primal : float
        Objective value P(w) at ``coef``.
    gap : float
        Duality gap P(w) - D(theta) (nan where the problem has no finite one).
    rel_gap : float
        ``gap / P(w)``, the quantity ``tol`` bounds.
    n_iter : int
        Outer iterations (blocks updated).
    converged : bool
    criterion : str
        ``"gap"`` (relative duality gap), ``"kkt"`` (relative coordinate
        optimality violation) where the duality gap is not finite, or
        ``"residual"`` for ``GraphQuadratic`` (then ``rel_gap`` holds the
        relative residual ||b - A x|| / ||b||).
    history : dict of ndarray or None
        Per outer iteration: ``time``, ``primal``, ``gap`` (nan where not
        evaluated), ``block_size``, ``n_nonzero``, ``epochs``.
    """

    coef: np.ndarray
    intercept: object
    primal: float
    gap: float
    rel_gap: float
    n_iter: int
    converged: bool
    criterion: str
    history: dict = field(default=None, repr=False)


def _check_attrs(obj, names, what, mode):
    missing = [n for n in names if not hasattr(obj, n)]
    if missing:
        raise AttributeError(
            f"{type(obj).__name__} cannot be used with update={mode!r}: the {what} "
            f"lacks {', '.join(missing)} (see sparsecore.optimize for the protocol)"
        )


# ---------------------------------------------------------------------------
# problem state


class _State:
    """X, targets, weights, coefficients and the quantities kept up to date."""

    def __init__(self, datafit, penalty, design, Y, h, fit_intercept, n_threads):
        self.datafit = datafit
        self.penalty = penalty
        self.X = design
        self.Y = Y
        self.n, self.p = design.shape
        self.K = Y.shape[1]
        self.h = h
        self.sum_h = float(h.sum())
        self.uniform = bool(np.all(h == h[0])) if self.n else True
        self.h0 = float(h[0]) if self.n else 1.0
        self.fit_intercept = fit_intercept
        self.n_threads = n_threads
        self.quadratic = bool(getattr(datafit, "is_quadratic", False))
        self.curv = float(datafit.curvature)
        l1, l2, lo, hi = penalty.params() if hasattr(penalty, "params") else (0.0, 0.0, -np.inf, np.inf)
        self.l1, self.l2, self.lo, self.hi = l1, l2, lo, hi
        # a user penalty: the addresses of its value and prox cfuncs for the
        # compiled block solver (0, 0: the closed form l1, l2, lo, hi)
        self.pen_addr = penalty.addresses if isinstance(penalty, UserPenalty) else (0, 0)
        # column statistics with the sample weights
        colsum, sqn = design.col_stats(None if self.uniform else h, n_threads=n_threads)
        if self.uniform:
            colsum *= self.h0
            sqn *= self.h0
        self.colsum, self.sqn = colsum, sqn
        if self.quadratic and fit_intercept and self.sum_h > 0:
            self.xbar = colsum / self.sum_h
            self.Lcol = np.maximum(sqn - self.xbar * colsum, 0.0)
        else:
            self.xbar = None
            self.Lcol = sqn
        self.W = np.zeros((self.p, self.K), order="F")
        self.b = np.zeros(self.K)
        self.active = np.ones(self.p, dtype=bool)   # not screened out
        if self.n:
            with np.errstate(divide="ignore"):
                self.inv_h = np.where(h > 0, 1.0 / np.where(h > 0, h, 1.0), 0.0)
        else:
            self.inv_h = h
        self._Zt = None
        self._U = None
        self.off = np.zeros(self.K)

    # -- initialisation ------------------------------------------------------
    def start(self, W0, b0):
        if W0 is not None:
            self.W[:] = W0
        if self.quadratic:
            ybar = (self.h @ self.Y) / self.sum_h if (self.fit_intercept and self.sum_h > 0) else np.zeros(self.K)
            self.ybar = ybar
            XW = np.zeros((self.n, self.K), order="F")
            nz = np.flatnonzero(np.any(self.W != 0, axis=1))
            self.X.block_matvec(nz, self.W[nz], XW)
            self._U = fortran(self.h[:, None] * (self.Y - ybar - XW))
            self.off = (self.xbar @ self.W) if self.xbar is not None else np.zeros(self.K)
        else:
            self._Zt = np.zeros((self.n, self.K), order="F")
            nz = np.flatnonzero(np.any(self.W != 0, axis=1))
            self.X.block_matvec(nz, self.W[nz], self._Zt)
            if self.fit_intercept:
                if b0 is not None:
                    self.b[:] = b0
                elif not nz.size:
                    self.b[:] = self.datafit.intercept_init(self.Y, self.h)

    @property
    def intercept(self):
        if not self.fit_intercept:
            return np.zeros(self.K)
        if self.quadratic:
            return self.ybar - self.off
        return self.b.copy()

    def Z(self):
        """Linear predictor X w + b (n, K)."""
        if self.quadratic:
            with np.errstate(divide="ignore", invalid="ignore"):
                R = np.where(self.h[:, None] > 0, self._U / np.where(self.h > 0, self.h, 1.0)[:, None], 0.0)
            return self.Y - (R + self.off) if self.xbar is not None else self.Y - R
        return self._Zt + self.b

    # -- objective, gradient and gap ------------------------------------------
    def objective(self):
        if self.quadratic:
            Q = self._quad()
            return 0.5 * float(Q.sum()) + self.penalty.value(self.W)
        return self.datafit.value(self.Y, self.Z(), self.h) + self.penalty.value(self.W)

    def _quad(self):
        U = self._U
        q = (U * U * self.inv_h[:, None]).sum(axis=0) if not self.uniform else (U * U).sum(axis=0) / self.h0
        if self.xbar is not None:
            q = q - self.off ** 2 * self.sum_h
        return np.maximum(q, 0.0)

    def neg_gradient(self, cols):
        """c = -grad of the datafit on ``cols`` (len(cols), K)."""
        if self.quadratic:
            C = self.X.xt_dot(self._U, cols, self.n_threads)
            if self.xbar is not None:
                C += np.outer(self.colsum[cols], self.off)
            return C
        G = self.h[:, None] * self.datafit.gradient(self.Y, self.Z())
        return -self.X.xt_dot(G, cols, self.n_threads)

    def gradient_and_gap(self, cols, want_gap=True):
        """(c on cols, primal, gap, gap_is_exact). ``cols`` are the features
        not screened out (the others are zero at the optimum)."""
        pen = self.penalty
        if self.quadratic:
            C = self.neg_gradient(cols)
            Q = self._quad()
            P = 0.5 * float(Q.sum()) + pen.value(self.W)
            if not want_gap or not hasattr(pen, "dual_scaling"):
                return C, P, np.nan, False
            t = self._dual_scaling(C)
            gap = 0.5 * (1 - t) ** 2 * float(Q.sum()) + self._pen_fy(cols, C, t)
            if t == 0.0:
                gap = np.inf
            return C, P, gap, True
        Z = self.Z()
        G = self.h[:, None] * self.datafit.gradient(self.Y, Z)
        P = self.datafit.value(self.Y, Z, self.h) + pen.value(self.W)
        if not want_gap or not hasattr(self.datafit, "dual_direction") or not hasattr(pen, "dual_scaling"):
            return -self.X.xt_dot(G, cols, self.n_threads), P, np.nan, False
        Theta, exact = self.datafit.dual_direction(self.Y, Z, self.h, self.fit_intercept)
        diff = Theta - G
        if np.any(diff):
            both = self.X.xt_dot(np.hstack([G, diff]), cols, self.n_threads)
            C = -both[:, :self.K]
            Cd = C - both[:, self.K:]
        else:
            C = -self.X.xt_dot(G, cols, self.n_threads)
            Cd = C
        t = self._dual_scaling(Cd)
        gap = self.datafit.fenchel_young(self.Y, Z, self.h, t * Theta) + self._pen_fy(cols, Cd, t)
        if t == 0.0:
            gap = np.inf
        return C, P, gap, exact

    # -- compiled passes for the built-in penalties ---------------------------
    @property
    def fast_penalty(self):
        cls = type(self.penalty)
        return getattr(cls, "fenchel_young", None) is _SeparablePenalty.fenchel_young and \
            getattr(cls, "dual_scaling", None) is _SeparablePenalty.dual_scaling

    def _pass(self, what, cols, C, L=None, t=1.0):
        out = np.empty(len(cols)) if what in (0, 1, 4) else np.empty(0)
        Lx = np.empty(0) if L is None else contiguous(L, dtype=np.float64)
        r = _bcd.coord_passes(what, self.W, contiguous(cols, dtype=np.int64),
                              contiguous(C, dtype=np.float64), Lx, float(t),
                              self.l1, self.l2, self.lo, self.hi, out)
        return out if what in (0, 1, 4) else r

    def _dual_scaling(self, C):
        if self.fast_penalty:
            return float(self._pass(3, np.zeros(len(C), dtype=np.int64), C))
        return self.penalty.dual_scaling(C)

    def _pen_fy(self, cols, C, t):
        if self.fast_penalty:
            return float(self._pass(2, cols, C, t=t))
        return float(self.penalty.fenchel_young(self.W[cols], t * C).sum())

    # -- block updates --------------------------------------------------------
    def _kernel_common(self):
        return self.X.kernel_args()

    def newton_quadratic(self, ws, tol, max_epochs, anderson=True, curvature_weights=None):
        """Exact (to ``tol``) minimisation over the block by the compiled CD."""
        ws = contiguous(ws, dtype=np.int64)
        nws = len(ws)
        K_and = 5 if (anderson and nws > 1 and 5 * self.X.col_nnz(ws) >= self.n) else 0
        buf = np.empty((K_and + 1 if K_and else 0, nws))
        u_tmp = np.empty(self.n)
        cbuf = np.empty(nws)
        h = np.empty(0) if self.uniform else self.h
        ih = np.empty(0) if self.uniform else self.inv_h
        xbar = self.xbar if self.xbar is not None else np.empty(0)
        epochs = 0
        gaps = []
        for k in range(self.K):
            wk = self.W[:, k]
            uk = self._U[:, k]
            e, g, off = _bcd.wls_cd(
                *self.X.kernel_args(), ws, wk, uk, h, self.h0, ih, self.sum_h,
                xbar, self.colsum, float(self.off[k]), self.Lcol,
                self.l1, self.l2, self.lo, self.hi,
                max_epochs, tol / self.K, 5, buf, u_tmp, cbuf, *self.pen_addr)
            self.off[k] = off
            epochs += e
            gaps.append(g)
        return epochs, float(np.sum(gaps))

    def softmax_newton_step(self, ws, tol, max_epochs):
        """Proximal-Newton direction of the multinomial loss with its exact
        Hessian (classes coupled), by the compiled CD."""
        ws = contiguous(ws, dtype=np.int64)
        Z = self.Z()
        Pm = self.datafit._proba(Z)
        Gr = Pm - self.Y
        HP = fortran(self.h[:, None] * Pm)
        G = contiguous(self.X.xt_dot(self.h[:, None] * Gr, ws, self.n_threads))
        # diagonal of the Hessian: sum_i h_i p_ic (1 - p_ic) x_ij^2
        Lc = np.empty((len(ws), self.K))
        for c in range(self.K):
            _, Lc[:, c] = self.X.col_stats(HP[:, c] * (1.0 - Pm[:, c]), ws, self.n_threads)
        Wb = contiguous(self.W[ws])
        D = np.zeros((len(ws), self.K))
        Q = np.zeros((self.n, self.K), order="F")
        S = np.zeros(self.n)
        gb = contiguous((self.h[:, None] * Gr).sum(axis=0))
        db = np.zeros(self.K)
        epochs = _bcd.softmax_cd(*self.X.kernel_args(), ws, Wb, D, G, HP, fortran(Pm),
                                 Q, S, Lc, self.fit_intercept, gb, db,
                                 self.l1, self.l2, self.lo, self.hi, max_epochs, tol, 1e-4)
        return D, db, Gr, epochs

    def glm_model_step(self, ws, tol, max_epochs, exact_hessian):
        """One proximal-Newton (or bound-majorisation) step on the block:
        returns the direction (len(ws), K), intercept direction, and the
        predicted decrease."""
        ws = contiguous(ws, dtype=np.int64)
        nws = len(ws)
        Z = self.Z()
        Gr = self.datafit.gradient(self.Y, Z)
        if exact_hessian:
            Hd = self.datafit.hessian_diag(self.Y, Z)
        else:
            Hd = np.full_like(Z, self.curv)
        D = np.zeros((nws, self.K))
        db = np.zeros(self.K)
        K_and = 5 if (nws > 1 and 5 * self.X.col_nnz(ws) >= self.n) else 0
        buf = np.empty((K_and + 1 if K_and else 0, nws))
        u_tmp = np.empty(self.n)
        cbuf = np.empty(nws)
        xbar_full = np.zeros(self.p) if self.fit_intercept else np.empty(0)
        colsum_full = np.zeros(self.p)
        L_full = np.zeros(self.p)
        epochs = 0
        for k in range(self.K):
            hk = self.h * Hd[:, k]
            ihk = np.where(hk > _CURV_GAP * self.h, 1.0 / np.where(hk > 0, hk, 1.0), 0.0)
            hk = np.maximum(hk, _CURV_FLOOR * self.h)
            sum_hk = float(hk.sum())
            if sum_hk <= 0:
                continue
            s1, s2 = self.X.col_stats(hk, ws, self.n_threads)
            colsum_full[ws] = s1
            gk = self.h * Gr[:, k]
            u = -gk
            if self.fit_intercept:
                rho_bar = -float(gk.sum()) / sum_hk
                u = u - hk * rho_bar
                xbar_full[ws] = s1 / sum_hk
                L_full[ws] = np.maximum(s2 - s1 * s1 / sum_hk, 0.0)
            else:
                L_full[ws] = s2
            u = contiguous(u)
            wk = self.W[:, k].copy()
            e, g, off = _bcd.wls_cd(
                *self.X.kernel_args(), ws, wk, u, hk, 1.0, ihk, sum_hk,
                xbar_full, colsum_full, 0.0, L_full,
                self.l1, self.l2, self.lo, self.hi,
                max_epochs, tol / self.K, 5, buf, u_tmp, cbuf, *self.pen_addr)
            epochs += e
            D[:, k] = wk[ws] - self.W[ws, k]
            if self.fit_intercept:
                db[k] = rho_bar - off
        return D, db, Gr, epochs

    def apply_glm_direction(self, ws, D, db, Gr, line_search=True):
        """Backtracking line search along (D, db) on the true objective."""
        dZ = np.zeros((self.n, self.K), order="F")
        self.X.block_matvec(ws, D, dZ)
        Wb = self.W[ws]
        pen = self.penalty
        Z0 = self._Zt + self.b
        f0 = self.datafit.value(self.Y, Z0, self.h)
        p0 = pen.value(Wb)
        full = dZ + db
        slope = float(np.einsum("i,ik,ik->", self.h, Gr, full)) + pen.value(Wb + D) - p0
        step = 1.0
        # a predicted decrease below the rounding of the objective cannot be
        # verified by comparing objective values: near the solution the full
        # (proximal) Newton step is the accurate one, so it is taken as is
        if line_search and -slope > 1e-13 * max(abs(f0 + p0), 1e-300):
            for _ in range(40):
                f = self.datafit.value(self.Y, Z0 + step * full, self.h) + pen.value(Wb + step * D)
                if f <= f0 + p0 + 1e-4 * step * min(slope, 0.0):
                    break
                if step < 1e-10:
                    # no decrease along this direction, or a non-finite
                    # objective on it: stay where we are
                    if not (np.isfinite(f) and f <= f0 + p0):
                        step = 0.0
                    break
                step *= 0.5
        self.W[ws] = Wb + step * D
        self._Zt += step * dZ
        self.b += step * db
        return step, slope

    def gradient_step(self, ws, Lb):
        """One proximal gradient step on the block with step 1 / Lb."""
        ws = np.asarray(ws, dtype=np.int64)
        C = self.neg_gradient(ws)
        Wb = self.W[ws]
        new = self.penalty.prox(Wb + C / Lb, 1.0 / Lb)
        D = new - Wb
        self._apply_delta(ws, D)
        if self.fit_intercept and not self.quadratic:
            Gr = self.h[:, None] * self.datafit.gradient(self.Y, self.Z())
            self.b -= Gr.sum(axis=0) / (self.curv * self.sum_h)
        return D

    def _apply_delta(self, ws, D):
        if not np.any(D):
            return
        self.W[ws] += D
        if self.quadratic:
            tmp = np.zeros((self.n, self.K), order="F")
            self.X.block_matvec(ws, D, tmp)
            self._U -= self.h[:, None] * tmp
            if self.xbar is not None:
                self.off += self.xbar[ws] @ D
        else:
            self.X.block_matvec(ws, D, self._Zt)

    # -- active-set Newton ----------------------------------------------------
    def active_newton(self):
        """One Newton step on the free support with the signs held (the paper's
        Section 6). Returns True when a step was taken."""
        pen = self.penalty
        if self.K != 1:
            return False
        w = self.W[:, 0]
        S = np.flatnonzero(pen.generalized_support(w))
        if S.size == 0 or S.size > _NEWTON_MAX or S.size > max(self.n, 1):
            return False
        sign = np.sign(w[S])
        if self.quadratic:
            h = self.h
            colsum = self.colsum[S] if self.xbar is not None else None
            H = self.X.gram(S, h, colsum, self.sum_h)
            c = self.neg_gradient(S)[:, 0]
        else:
            Z = self.Z()
            Hd = self.datafit.hessian_diag(self.Y, Z)[:, 0]
            hk = self.h * Hd
            c = self.neg_gradient(S)[:, 0]
            H = self.X.gram(S, hk)
            if self.fit_intercept:
                # the intercept joins as an unpenalised coordinate
                s1, _ = self.X.col_stats(hk, S)
                gb = -float((self.h * self.datafit.gradient(self.Y, Z)[:, 0]).sum())
                H = np.block([[H, s1[:, None]], [s1[None, :], np.array([[hk.sum()]])]])
                c = np.append(c, gb)
        rhs = c.copy()
        rhs[:S.size] -= self.l2 * w[S] + self.l1 * sign
        if self.l2:
            H[np.arange(S.size), np.arange(S.size)] += self.l2
        try:
            cf = scipy.linalg.cho_factor(H, lower=False, check_finite=False)
            d = scipy.linalg.cho_solve(cf, rhs, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            return False
        if not np.all(np.isfinite(d)):
            return False
        dS = d[:S.size]
        # largest step keeping every sign (and the bounds)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(sign * dS < 0, -w[S] / dS, np.inf)
            up = np.where(dS > 0, (self.hi - w[S]) / dS, np.inf)
            dn = np.where(dS < 0, (self.lo - w[S]) / dS, np.inf)
        eta = min(1.0, float(np.min(ratio, initial=np.inf)), float(np.min(up, initial=np.inf)),
                  float(np.min(dn, initial=np.inf)))
        eta = max(eta, 0.0)
        if eta == 0.0:
            return False
        if self.quadratic:
            D = (eta * dS)[:, None]
            self._apply_delta(S, D)
            hit = S[np.abs(self.W[S, 0]) <= 1e-15 * np.abs(w[S]).max()]
        else:
            db = np.array([eta * d[S.size]]) if self.fit_intercept else np.zeros(1)
            Gr = self.datafit.gradient(self.Y, self.Z())
            W_old = self.W[S].copy()
            step, _ = self.apply_glm_direction(S, (eta * dS)[:, None], db, Gr, line_search=True)
            hit = S[(np.sign(self.W[S, 0]) != np.sign(W_old[:, 0]))]
        # coordinates whose step ended on zero (or a bound) are snapped there
        if eta < 1.0:
            lim = np.isclose(ratio, eta, rtol=1e-12, atol=0) | np.isclose(up, eta, rtol=1e-12, atol=0) | np.isclose(dn, eta, rtol=1e-12, atol=0)
            hit = np.union1d(hit, S[lim])
        if hit.size:
            target = np.where(np.abs(self.W[hit, 0] - self.lo) < np.abs(self.W[hit, 0]), self.lo,
                              np.where(np.abs(self.W[hit, 0] - self.hi) < np.abs(self.W[hit, 0]), self.hi, 0.0))
            D = (target - self.W[hit, 0])[:, None]
            if self.quadratic:
                self._apply_delta(hit, D)
            else:
                self.W[hit, 0] = target
                self.X.block_matvec(hit, D, self._Zt)
        return True


# ---------------------------------------------------------------------------
# selection


def _scores(rule, state, C, cols, Dgersh):
    """Per-coordinate scores (len(cols),) of a greedy rule (summed over outputs)."""
    pen = state.penalty
    fast = state.fast_penalty and getattr(type(pen), "subdiff_distance", None) is \
        _SeparablePenalty.subdiff_distance and getattr(type(pen), "progress", None) is \
        _SeparablePenalty.progress
    if rule == "gs":
        if fast:
            return state._pass(0, cols, C)
        s = pen.subdiff_distance(state.W[cols], C)
        return np.sqrt((s * s).sum(axis=1))
    L = state.curv * state.Lcol[cols] if rule == "gsl" else Dgersh[cols]
    L = np.maximum(L, 1e-300)
    if fast:
        return state._pass(1, cols, C, L)
    return pen.progress(state.W[cols], C, L[:, None]).sum(axis=1)


def _gershgorin(state):
    """d_j = curvature * sum_k |(X^T H X)_jk| bounded by |X_j|^T H |X| 1: a
    diagonal matrix above the Hessian bound of every block (the paper's GSD
    for variable blocks, "GSDHb")."""
    X = state.X
    if X.is_sparse:
        A = abs(X.X)
        row = np.asarray(A.sum(axis=1)).ravel()
        d = A.T @ (state.h * row)
    else:
        A = np.abs(X.dense)
        row = A.sum(axis=1)
        d = A.T @ (state.h * row)
    return state.curv * np.asarray(d, dtype=np.float64).ravel()


def _iht_block(state, C, cols, tau, n_iter=10):
    """Variable-block GSQ by iterative hard thresholding (the paper's "IHT"):
    approximately solve min_{|d|_0 <= tau} -c.d + d^T H d / 2 + g(w + d) - g(w)."""
    pen = state.penalty
    L = np.maximum(state.curv * state.Lcol[cols], 1e-300)[:, None]
    W = state.W[cols]
    # start from the exact proximal coordinate steps: zero at coordinates that
    # are already optimal (the paper's g / sqrt(L) start, meant for smooth
    # problems, keeps picking optimal nonzero coordinates under an L1 penalty)
    d = pen.coordinate_minimum(W, C, L) - W
    keep = np.argpartition(-(np.abs(d) * np.sqrt(L)).sum(axis=1), min(tau, len(cols)) - 1)[:tau]
    mask = np.zeros(len(cols), dtype=bool)
    mask[keep] = True
    d[~mask] = 0
    mu = 1.0 / state._lambda_max()
    for _ in range(n_iter):
        sup = np.flatnonzero(np.any(d != 0, axis=1))
        Hd = state.hessian_bound_times(cols[sup], d[sup], cols)
        v = pen.prox(W + d - mu * (Hd - C), mu) - W
        score = np.abs(v).sum(axis=1)
        keep = np.argpartition(-score, min(tau, len(cols)) - 1)[:tau]
        new = np.zeros_like(d)
        new[keep] = v[keep]
        if np.linalg.norm(new - d) < 1e-10:
            d = new
            break
        d = new
    sel = np.flatnonzero(np.any(d != 0, axis=1))
    if sel.size < tau:  # pad with the best GSL scores
        rest = np.setdiff1d(np.argsort(-pen.progress(W, C, L).sum(axis=1))[:tau], sel)
        sel = np.concatenate([sel, rest[:tau - sel.size]])
    return cols[sel]


def _lambda_max(self):
    if getattr(self, "_lmax", None) is None:
        rng = np.random.default_rng(0)
        v = rng.standard_normal((self.p, self.K))
        lam = 1.0
        cols = np.arange(self.p)
        for _ in range(30):
            v /= np.linalg.norm(v)
            hv = self.hessian_bound_times(cols, v, cols)
            lam = float(np.linalg.norm(hv))
            v = hv
        self._lmax = max(lam * 1.01, 1e-300)
    return self._lmax


def _hessian_bound_times(self, src_cols, D, out_cols):
    """(curvature X^T H X) restricted: rows out_cols, columns src_cols, times D."""
    tmp = np.zeros((self.n, self.K), order="F")
    self.X.block_matvec(src_cols, D, tmp)
    if self.xbar is not None:
        tmp -= (self.xbar[src_cols] @ D)[None, :]
    return self.curv * self.X.xt_dot(self.h[:, None] * tmp, out_cols, self.n_threads)


_State._lambda_max = _lambda_max
_State.hessian_bound_times = _hessian_bound_times


class _Selector:
    """Picks the block of each iteration for one (rule, partition, size)."""

    def __init__(self, state, selection, partition, block_size, rng):
        self.state = state
        self.rule = selection
        self.partition = partition
        self.rng = rng
        p = state.p
        self.auto = block_size == "auto"
        if self.auto:
            # first working set: 100 coordinates (an inner epoch on them costs
            # a small fraction of the full-gradient pass each outer iteration needs)
            self.tau = min(p, 100) if (partition == "variable" and selection in GREEDY) else min(p, 64)
        else:
            self.tau = min(int(block_size), p) if p else 0
        self.working_set = self.auto and partition == "variable" and selection in GREEDY
        self.Dg = _gershgorin(state) if selection == "gsd" else None
        self.blocks = None
        self._perm = None
        self._pos = 0
        self._k = 0
        if partition != "variable" and p:
            self.blocks = make_partition(partition, state.curv * state.Lcol, self.tau, rng)
            self._block_bounds()

    def _block_bounds(self):
        st = self.state
        nb, tau = len(self.blocks), max(len(b) for b in self.blocks)
        self.bidx = np.zeros((nb, tau), dtype=np.int64)
        self.bmask = np.zeros((nb, tau), dtype=bool)
        self.B3 = np.zeros((nb, tau, tau))
        for i, b in enumerate(self.blocks):
            m = len(b)
            self.bidx[i, :m] = b
            self.bmask[i, :m] = True
            self.B3[i, :m, :m] = st.curv * st.X.gram(
                b, st.h, st.colsum[b] if st.xbar is not None else None, st.sum_h)
        self.Lb = np.maximum(np.linalg.eigvalsh(self.B3)[:, -1], 1e-300)
        self.Dblk = np.abs(self.B3).sum(axis=2)

    @property
    def needs_full_gradient(self):
        return self.rule in GREEDY

    @property
    def epoch_length(self):
        st = self.state
        if self.rule in GREEDY:
            return 1
        if self.blocks is not None:
            return len(self.blocks)
        return max(1, -(-int(st.active.sum()) // max(self.tau, 1)))

    def block_lipschitz(self, ws):
        st = self.state
        if self.blocks is not None and self._last_block is not None:
            return self.Lb[self._last_block]
        if len(ws) == 1:
            return max(st.curv * st.Lcol[ws[0]], 1e-300)
        if len(ws) <= 512:
            B = st.curv * st.X.gram(ws, st.h, st.colsum[ws] if st.xbar is not None else None, st.sum_h)
            return max(float(np.linalg.eigvalsh(B)[-1]), 1e-300)
        # a bound from the diagonal: lambda_max <= trace
        return max(float(st.curv * st.Lcol[ws].sum()), 1e-300)

    def select(self, C, cols):
        """Return the block (int64 array of feature indices)."""
        st = self.state
        self._last_block = None
        if self.blocks is not None:
            return self._select_fixed(C, cols)
        active = cols
        m = len(active)
        if m == 0:
            return active
        if self.rule == "cyclic":
            if self._perm is None or self._pos >= len(self._perm):
                self._perm = self.rng.permutation(active)
                self._pos = 0
            ws = self._perm[self._pos:self._pos + self.tau]
            self._pos += self.tau
            return np.sort(ws)
        if self.rule == "random":
            return np.sort(self.rng.choice(active, size=min(self.tau, m), replace=False))
        if self.rule == "lipschitz":
            Lc = st.Lcol[active]
            prob = Lc / Lc.sum() if Lc.sum() > 0 else None
            k = min(self.tau, m, int(np.count_nonzero(Lc)) if prob is not None else m)
            return np.sort(self.rng.choice(active, size=k, replace=False, p=prob))
        if self.rule == "gsq":
            tau = self._ws_size(m) if self.working_set else self.tau
            ws = _iht_block(st, C, active, tau)
            if self.working_set:
                ws = np.union1d(ws, active[np.any(st.W[active] != 0, axis=1)])
            return np.sort(ws)
        scores = _scores(self.rule, st, C, active, self.Dg)
        if self.working_set:
            tau = self._ws_size(m)
            support = np.any(st.W[active] != 0, axis=1)
            scores = np.where(support, np.inf, scores)
            if tau < m:
                top = np.argpartition(-scores, tau - 1)[:tau]
                # a coordinate with zero score cannot move: leave it out
                top = top[(scores[top] > 0)]
                return np.sort(active[top])
            return active[scores > 0] if np.any(scores > 0) else active
        tau = min(self.tau, m)
        top = np.argpartition(-scores, tau - 1)[:tau]
        return np.sort(active[top])

    def _ws_size(self, m):
        nsupp = int(np.count_nonzero(np.any(self.state.W != 0, axis=1)))
        self.tau = min(m, max(self.tau, 2 * nsupp, 10))
        return self.tau

    def grow(self):
        """The inner solve converged but the outer gap did not: double the
        working set."""
        self.tau = min(self.state.p, 2 * self.tau)

    def _select_fixed(self, C, cols):
        st = self.state
        nb = len(self.blocks)
        if self.rule == "cyclic":
            k = self._k % nb
            self._k += 1
        elif self.rule == "random":
            k = int(self.rng.integers(nb))
        elif self.rule == "lipschitz":
            k = int(self.rng.choice(nb, p=self.Lb / self.Lb.sum()))
        else:
            Cf = np.zeros((st.p, st.K))
            Cf[cols] = C
            Wb = st.W[self.bidx]            # (nb, tau, K)
            Cb = Cf[self.bidx]
            Cb[~self.bmask] = 0.0
            Wb[~self.bmask] = 0.0
            pen = st.penalty
            if self.rule == "gs":
                s = np.square(pen.subdiff_distance(Wb, Cb)).sum(axis=(1, 2))
            elif self.rule == "gsl":
                s = pen.progress(Wb, Cb, self.Lb[:, None, None]).sum(axis=(1, 2))
            elif self.rule == "gsd":
                s = pen.progress(Wb, Cb, np.maximum(self.Dblk, 1e-300)[:, :, None]).sum(axis=(1, 2))
            else:
                s = _block_qp_progress(pen, self.B3, Wb, Cb)
            s = np.where(self.bmask.any(axis=1), s, -np.inf)
            k = int(np.argmax(s))
        self._last_block = k
        b = self.blocks[k]
        return b[st.active[b]]


def _block_qp_progress(pen, B3, Wb, Cb, sweeps=20):
    """Decrease of  min_d -c.d + d^T B_b d / 2 + g(w + d) - g(w)  for every
    block at once (the GSQ score), by CD sweeps vectorised over blocks."""
    nb, tau, K = Wb.shape
    diag = np.maximum(np.einsum("bii->bi", B3), 1e-300)
    total = np.zeros(nb)
    for k in range(K):
        w0 = Wb[:, :, k]
        c = Cb[:, :, k]
        v = w0.copy()
        for _ in range(sweeps):
            for i in range(tau):
                ci = c[:, i] - np.einsum("bj,bj->b", B3[:, i, :], v - w0)
                v[:, i] = pen.coordinate_minimum(v[:, i], ci, diag[:, i])
        d = v - w0
        quad = np.einsum("bi,bij,bj->b", d, B3, d)
        dpen = (pen.l1 * (np.abs(v) - np.abs(w0)) + 0.5 * pen.l2 * (v * v - w0 * w0)).sum(axis=1)
        total += (c * d).sum(axis=1) - 0.5 * quad - dpen
    return np.maximum(total, 0.0)


# ---------------------------------------------------------------------------
# the engine


def _prepare_inputs(X, y, sample_weight, datafit):
    if isinstance(X, Design):
        pass
    elif not sp.issparse(X):
        Xa = np.asarray(X)
        if Xa.dtype == object or not (np.issubdtype(Xa.dtype, np.number) or Xa.dtype == bool):
            raise TypeError(f"X must be a numeric array or a scipy.sparse matrix, got dtype {Xa.dtype}")
        if np.iscomplexobj(Xa):
            raise TypeError("X must be real; complex X is not supported by the BCD solvers")
    elif np.iscomplexobj(X.data):
        raise TypeError("X must be real; complex X is not supported by the BCD solvers")
    design = as_design(X)
    if not design.checked_finite:
        data = design.data if design.is_sparse else design.dense
        if data.size and not np.all(np.isfinite(data)):
            raise ValueError("X contains NaN or infinity")
        design.checked_finite = True
    n = design.shape[0]
    ya = np.asarray(y)
    if ya.dtype == object or not (np.issubdtype(ya.dtype, np.number) or ya.dtype == bool):
        raise TypeError(f"y must be numeric, got dtype {ya.dtype}")
    if ya.size and not np.all(np.isfinite(ya)):
        raise ValueError("y contains NaN or infinity")
    if ya.ndim == 0 or ya.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has shape {ya.shape}")
    Y = datafit.encode(ya)
    if Y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {Y.shape[0]}")
    if sample_weight is None:
        h = np.full(n, 1.0 / n) if n else np.zeros(0)
    else:
        sw = np.asarray(sample_weight, dtype=np.float64)
        if sw.ndim != 1 or sw.shape[0] != n:
            raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}")
        if not np.all(np.isfinite(sw)) or np.any(sw < 0):
            raise ValueError("sample_weight must be finite and non-negative")
        total = sw.sum()
        if total <= 0:
            raise ValueError("sample_weight must have a positive sum")
        h = sw / total
    return design, Y, h


def greedy_bcd(datafit, penalty, X, y, *, sample_weight=None, fit_intercept=False,
               selection="gsl", partition="variable", block_size="auto",
               update="newton", tol=1e-6, max_iter=1000, max_epochs=2000,
               coef_init=None, intercept_init=None, screening=True,
               active_set=True, random_state=None, history=False,
               n_threads=None, verbose=0):
    """Minimise ``datafit(X w + b) + penalty(w)`` by greedy block coordinate descent.

    Parameters
    ----------
    datafit : Datafit
        ``Quadratic()``, ``Logistic()``, ``Multinomial()`` or any object with
        the methods the chosen ``update`` needs (see Notes); or
        ``GraphQuadratic()``, for which X is the sparse SPD matrix A, y is b,
        and the blocks are forests solved exactly by tree elimination
        (:func:`~sparsecore.optimize.graph_bcd`).
    penalty : SeparablePenalty
        ``NoPenalty()``, ``L2``, ``L1``, ``ElasticNet``, ``Box``,
        ``NonNegative`` or compatible.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Dense (used Fortran-ordered) or sparse (used as CSC, never densified).
        float32 data stay float32; the iterations run in float64.
    y : array-like of shape (n_samples,)
        Targets as the datafit expects them (``Logistic``: -1/+1;
        ``Multinomial``: class indices).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights; the datafit is their weighted mean.
    fit_intercept : bool, default=False
        Fit an unpenalised intercept (least squares: by implicit centring).
    selection : {"gsl", "gs", "gsd", "gsq", "cyclic", "random", "lipschitz"}, default="gsl"
        Block selection rule: Gauss-Southwell on the subdifferential distance
        (``gs``), on the progress bound of a step with the coordinate
        Lipschitz constants (``gsl``), with a diagonal bound of the whole
        Hessian (``gsd``), or with the block Hessian bound (``gsq``; variable
        blocks by iterative hard thresholding); or cyclic, uniformly random,
        or random with probabilities proportional to the Lipschitz constants.
    partition : {"variable", "order", "sort", "avg", "random"}, default="variable"
        Any ``block_size`` coordinates per iteration (``variable``), or a fixed
        partition into consecutive chunks of an ordering (by index, by
        Lipschitz constant, interleaved, random).
    block_size : int or "auto", default="auto"
        Coordinates per block. ``"auto"`` with a greedy rule and variable
        blocks is the working-set mode: the block holds the support plus the
        best-scored coordinates, at least twice the support size. Otherwise
        ``"auto"`` means 64.
    update : {"newton", "matrix", "gradient"}, default="newton"
        Block update: a proximal-Newton solve of the block (exact block
        minimisation for least squares), one step with the block Hessian
        upper bound (``matrix``), or one proximal gradient step of length
        1 / L_b (``gradient``).
    tol : float, default=1e-6
        Stop when the duality gap is at most ``tol * P(w)`` (relative
        duality gap). Where the gap is not finite (no penalty, bounds only),
        stop when the largest coordinate optimality violation (GS score) is
        at most ``tol`` times its value at the start.
    max_iter : int, default=1000
        Outer iterations (block updates).
    max_epochs : int, default=2000
        Inner coordinate-descent epochs per block solve.
    coef_init, intercept_init : ndarray, default=None
        Warm start.
    screening : bool, default=True
        Gap-safe screening of features that are zero at the optimum (L1 parts).
    active_set : bool, default=True
        Newton steps on the support once it stops changing (L1 parts, one output).
    random_state : int, Generator or None
        Seeds random partitions and the random rules.
    history : bool, default=False
        Record the per-iteration history.
    n_threads : int or None, default=None
        Threads for the full-gradient passes (the block solves are sequential).
    verbose : int, default=0

    Returns
    -------
    BCDResult

    Notes
    -----
    The objective is ``sum_i h_i l(y_i, z_i) + penalty(w)`` with ``h`` the
    sample weights divided by their sum (``1/n`` without weights): Lasso's
    ``||y - Xw||^2 / (2 n) + alpha ||w||_1`` is ``Quadratic()`` with
    ``L1(alpha)``. The duality gap uses the dual point theta = t h l'(z),
    scaled by the largest t <= 1 that makes it feasible, which is the rule
    every solver in the benchmarks is measured with. With an intercept the
    multinomial gap is that of the problem with the intercepts held at their
    current values.

    Solver needs (a missing method raises ``AttributeError`` naming it):
    ``gradient`` updates need ``datafit.value/gradient/curvature`` and
    ``penalty.value/prox``; ``matrix`` and ``newton`` updates need
    ``penalty.params`` (the closed form the compiled solver evaluates) and,
    for ``newton``, ``datafit.hessian_diag``; a duality gap needs
    ``datafit.dual_direction/fenchel_young`` and
    ``penalty.dual_scaling/fenchel_young``.

    A :func:`~sparsecore.optimize.user_penalty` (numba cfuncs called by the
    compiled block solver) works with every ``update`` except ``"newton"``
    with a multi-class ``Multinomial`` datafit (``ValueError``); it has no
    duality gap, so the solver stops on the ``"kkt"`` criterion, without
    screening or the active-set phase.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.optimize import L1, Quadratic, greedy_bcd
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 20))
    >>> y = X[:, :3] @ [2., -1., .5]
    >>> res = greedy_bcd(Quadratic(), L1(0.01), X, y, tol=1e-10)
    >>> res.converged, np.flatnonzero(res.coef)
    (True, array([0, 1, 2]))
    >>> res.coef[:3].round(2)
    array([ 1.99, -0.99,  0.48])
    """
    t_start = time.perf_counter()
    if isinstance(datafit, GraphQuadratic):
        return _graph_problem(penalty, X, y, selection, tol, max_iter, random_state, history)
    if not isinstance(datafit, Datafit) and not hasattr(datafit, "encode"):
        raise TypeError(f"datafit must be a Datafit, got {type(datafit).__name__}")
    update = check_choice(update, "update", UPDATES)
    selection = check_choice(selection, "selection", SELECTIONS)
    partition = check_choice(partition, "partition", PARTITIONS)
    if not (isinstance(block_size, str) and block_size == "auto"):
        block_size = check_scalar(block_size, "block_size", int, min_val=1)
    _check_attrs(datafit, _DATAFIT_NEEDS[update], "datafit", update)
    user_pen = isinstance(penalty, UserPenalty)
    _check_attrs(penalty, _USER_PENALTY_NEEDS if user_pen else _PENALTY_NEEDS[update],
                 "penalty", update)
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real) or not tol >= 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    max_iter = check_scalar(max_iter, "max_iter", int, min_val=1)
    max_epochs = check_scalar(max_epochs, "max_epochs", int, min_val=1)
    n_threads = effective_n_threads(n_threads)
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)

    design, Y, h = _prepare_inputs(X, y, sample_weight, datafit)
    n, p = design.shape
    if user_pen and update == "newton" and Y.shape[1] > 1 and isinstance(datafit, Multinomial):
        raise ValueError(
            "update='newton' with a multi-class Multinomial datafit solves the classes "
            "jointly with the closed-form penalties only; a user penalty "
            f"({penalty!r}) needs update='matrix' or update='gradient'"
        )
    state = _State(datafit, penalty, design, Y, h, bool(fit_intercept), n_threads)
    K = state.K
    W0 = None
    if coef_init is not None:
        W0 = np.asarray(coef_init, dtype=np.float64).reshape(p, K) if np.size(coef_init) == p * K else None
        if W0 is None:
            raise ValueError(f"coef_init must have {p * K} entries (shape ({p},) or ({p}, {K})), "
                             f"got shape {np.shape(coef_init)}")
        W0 = np.clip(W0, state.lo, state.hi)
    b0 = None if intercept_init is None else np.broadcast_to(np.asarray(intercept_init, dtype=float), (K,))
    state.start(W0, b0)
    selector = _Selector(state, selection, partition, block_size, rng)
    has_gap = all(hasattr(datafit, a) for a in _GAP_NEEDS[0]) and all(hasattr(penalty, a) for a in _GAP_NEEDS[1])
    can_screen = bool(screening) and state.l1 > 0 and has_gap
    can_newton = bool(active_set) and update == "newton" and getattr(penalty, "sparsifying", False) and K == 1

    hist = {k: [] for k in ("time", "primal", "gap", "block_size", "n_nonzero", "epochs")} if history else None
    converged = False
    criterion = "gap"
    gap = np.nan
    P = np.nan
    kkt0 = None
    last_support = None
    last_sign = None
    epochs = 0
    it = 0
    ws = np.empty(0, dtype=np.int64)
    every = selector.epoch_length
    C = None
    cols = np.flatnonzero(state.active)

    if p == 0 or n == 0:
        P = state.objective() if n else penalty.value(state.W)
        return _result(state, P, 0.0, 0, True, "gap", hist)

    for it in range(max_iter + 1):
        check = selector.needs_full_gradient or it % every == 0 or it == max_iter
        if check:
            cols = np.flatnonzero(state.active)
            C, P, gap, exact = state.gradient_and_gap(cols, has_gap)
            if np.isfinite(gap):
                criterion = "gap"
                if gap <= tol * max(P, 0.0) or gap <= 1e-300:
                    converged = True
            else:
                criterion = "kkt"
                kkt = float(np.max(penalty.subdiff_distance(state.W[cols], C), initial=0.0))
                if kkt0 is None:
                    kkt0 = max(kkt, 1e-300)
                if kkt <= tol * kkt0:
                    converged = True
            if verbose:
                print(f"iter {it:4d}  P={P:.10g}  gap={gap:.3e}  block={len(ws)}  "
                      f"nnz={int(np.count_nonzero(state.W))}  epochs={epochs}")
        if hist is not None:
            hist["time"].append(time.perf_counter() - t_start)
            hist["primal"].append(P if check else state.objective())
            hist["gap"].append(gap if check else np.nan)
            hist["block_size"].append(len(ws))
            hist["n_nonzero"].append(int(np.count_nonzero(state.W)))
            hist["epochs"].append(epochs)
        if converged or it == max_iter:
            break

        # gap-safe screening
        if check and can_screen and exact and np.isfinite(gap) and gap > 0:
            _screen(state, C, cols, gap)
            keep = state.active[cols]
            cols, C = cols[keep], C[keep]

        # active-set phase: a Newton step on a support that stopped changing
        if can_newton and selector.working_set:
            supp = np.flatnonzero(penalty.generalized_support(state.W[:, 0]))
            sgn = np.sign(state.W[supp, 0])
            if last_support is not None and supp.size and np.array_equal(supp, last_support) \
                    and np.array_equal(sgn, last_sign):
                if state.active_newton():
                    last_support = None
                    continue
            last_support, last_sign = supp, sgn

        # select and update one block
        if not selector.needs_full_gradient:
            C = None
        ws = selector.select(C, cols)
        if len(ws) == 0:
            if selector.working_set:
                selector.grow()
            continue
        inner_tol = _KAPPA * gap if (selector.working_set and np.isfinite(gap)) else 1e-12 * max(abs(P), 1e-300)
        if update == "gradient":
            Lb = selector.block_lipschitz(ws)
            state.gradient_step(ws, Lb)
            epochs = 1
        elif state.quadratic:
            epochs, inner_gap = state.newton_quadratic(ws, inner_tol, max_epochs)
        else:
            exact_h = update == "newton"
            steps = 20 if selector.working_set else 1
            epochs = 0
            cap = min(max_epochs, _NEWTON_EPOCHS) if exact_h else max_epochs
            for _ in range(steps):
                if exact_h and K > 1 and isinstance(datafit, Multinomial):
                    D, db, Gr, e = state.softmax_newton_step(ws, 1e-3 * inner_tol, cap)
                else:
                    D, db, Gr, e = state.glm_model_step(ws, inner_tol, cap, exact_h)
                epochs += e
                step, slope = state.apply_glm_direction(ws, D, db, Gr, line_search=exact_h)
                if not selector.working_set or -slope * step <= inner_tol:
                    break
    return _result(state, P, gap, it, converged, criterion, hist)


def _graph_problem(penalty, A, b, selection, tol, max_iter, random_state, history):
    """``GraphQuadratic``: forest blocks with exact tree solves (graph_bcd)."""
    if not (isinstance(penalty, _SeparablePenalty) and penalty.is_smooth and penalty.l2 == 0):
        raise ValueError("GraphQuadratic is solved without a penalty; pass NoPenalty()")
    rules = {"gs": "gs", "gsl": "gsl", "gsd": "gsd", "cyclic": "cyclic", "random": "random"}
    if selection not in rules:
        raise ValueError(f"selection {selection!r} is not available for GraphQuadratic; "
                         f"use one of {', '.join(map(repr, rules))}")
    res = graph_bcd(A, b, method="bcd", selection=rules[selection], tol=tol,
                    max_iter=max_iter, random_state=random_state, history=history)
    A_ = sp.csr_array(A)
    x = res.x
    P = GraphQuadratic.value(A_, np.asarray(b, dtype=float), x)
    hist = None
    if history:
        hist = {"time": res.history["time"], "primal": res.history["objective"],
                "gap": np.full(len(res.history["objective"]), np.nan),
                "residual": res.history["residual"]}
    return BCDResult(x, 0.0, float(P), np.nan, float(res.residual), res.n_iter, res.converged,
                     "residual", hist)


def _screen(state, C, cols, gap):
    """Gap-safe sphere test (Fercoq, Gramfort & Salmon 2015) on every output."""
    t = state._dual_scaling(C)
    radius = np.sqrt(2.0 * gap * state.curv * np.maximum(state.Lcol[cols], 0.0))
    # with w >= 0 only the upper side can make a coefficient nonzero
    out = state._pass(4, cols, C, radius, t).astype(bool)
    if not np.any(out):
        return
    drop = cols[out]
    nz = drop[np.any(state.W[drop] != 0, axis=1)]
    if nz.size:
        state._apply_delta(nz, -state.W[nz])
    state.active[drop] = False


def _result(state, P, gap, n_iter, converged, criterion, hist):
    coef = state.W[:, 0].copy() if state.K == 1 else state.W.copy()
    b = state.intercept
    intercept = float(b[0]) if state.K == 1 else b
    rel = gap / P if (np.isfinite(gap) and P > 0) else (0.0 if gap == 0 else np.nan)
    if hist is not None:
        hist = {k: np.asarray(v) for k, v in hist.items()}
    return BCDResult(coef, intercept, float(P), float(gap), float(rel), int(n_iter),
                     bool(converged), criterion, hist)
