"""Classic sparse Bayesian learning by EM (Tipping 2001; Wipf and Rao 2004) on
a plain 2-D dictionary: the reference for Kronecker SBL, and the model for
data without Kronecker structure."""
import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.linalg.blas import get_blas_funcs

from sparsecore._validation import check_scalar, fortran
from sparsecore.linear_model._kronecker_sbl import (
    _INIT_BREADTH,
    blas_threads,
    check_noise_var,
)

__all__ = ["SBLResult", "sbl"]


@dataclass(frozen=True)
class SBLResult:
    """What :func:`sbl` returns.

    Attributes
    ----------
    coef : ndarray of shape (n_features,)
        Posterior mean (zero where pruned).
    posterior_var : ndarray of shape (n_features,)
        Diagonal of the posterior covariance (zero where pruned).
    gamma : ndarray of shape (n_features,)
        Prior variances (zero where pruned).
    noise_var : float
    n_iter : int
    converged : bool
    objective : ndarray of shape (n_iter,)
        ``log det(Sigma_y) + y^H Sigma_y^{-1} y`` at each E-step.
    """

    coef: np.ndarray
    posterior_var: np.ndarray
    gamma: np.ndarray
    noise_var: float
    n_iter: int
    converged: bool
    objective: np.ndarray


def _gram(B, lower):
    """B @ B^H through BLAS syrk/herk (one triangle, as ``lower`` says)."""
    B = fortran(B)
    kind = "herk" if np.iscomplexobj(B) else "syrk"
    (fn,) = get_blas_funcs((kind,), (B,))
    return fn(1.0, B, lower=lower)


def _estep_small(gram, Xy, yy, g, s2, M):
    """E-step through the K x K system (K active columns < M samples):
    Sigma_x = G^{1/2} (I + G^{1/2} X^H X G^{1/2} / s2)^{-1} G^{1/2}."""
    sq = np.sqrt(g)
    C = (sq[:, None] * gram) * (sq[None, :] / s2)
    C[np.diag_indices_from(C)] += 1.0
    L = sla.cholesky(C, lower=True, check_finite=False)
    w = sla.cho_solve((L, True), sq * Xy / s2, check_finite=False)
    mu = sq * w
    Linv = sla.solve_triangular(L, np.eye(len(g)), lower=True, check_finite=False)
    cdiag = np.einsum("ij,ij->j", Linv.conj(), Linv).real
    sig = g * cdiag
    yXmu = float(np.vdot(Xy, mu).real)
    logdet = M * math.log(s2) + 2.0 * float(np.log(np.diag(L).real).sum())
    quad = (yy - yXmu) / s2
    resid2 = max(yy - 2.0 * yXmu + float(np.vdot(mu, gram @ mu).real), 0.0)
    trace = s2 * float(np.sum(1.0 - cdiag))
    return mu, sig, (logdet, quad, resid2, trace)


def _estep_large(Xa, y, g, s2):
    """E-step through the M x M system Sigma_y = s2 I + X Gamma X^H
    (Cholesky), for K active columns >= M samples."""
    S = _gram(Xa * np.sqrt(g), lower=True)
    S[np.diag_indices_from(S)] += s2
    L = sla.cholesky(S, lower=True, check_finite=False, overwrite_a=True)
    W = sla.solve_triangular(L, Xa, lower=True, check_finite=False)
    v = sla.solve_triangular(L, y, lower=True, check_finite=False)
    q = np.einsum("ij,ij->j", W.conj(), W).real
    mu = g * (W.conj().T @ v)
    gq = g * q
    sig = np.maximum(g * (1.0 - gq), 0.0)
    logdet = 2.0 * float(np.log(np.diag(L).real).sum())
    quad = float(np.vdot(v, v).real)
    r = y - Xa @ mu
    resid2 = float(np.vdot(r, r).real)
    trace = s2 * float(gq.sum())
    return mu, sig, (logdet, quad, resid2, trace)


def _sbl_em(X, y, noise_var, prune, max_iter, tol, warn=True):
    """EM for SBL on validated float64/complex128 X (M, N) and y (M,).

    Columns whose variance falls below ``prune`` times the largest are
    removed; the E-step uses whichever of the M x M and K x K systems is
    smaller (K active columns)."""
    M, N = X.shape
    yy = float(np.vdot(y, y).real)
    power = yy / M if M else 0.0
    estimate = noise_var is None
    if power == 0.0 or N == 0:
        return SBLResult(
            coef=np.zeros(N, dtype=X.dtype), posterior_var=np.zeros(N), gamma=np.zeros(N),
            noise_var=float(noise_var if noise_var is not None else 0.0), n_iter=0,
            converged=True, objective=np.zeros(0),
        )
    s2 = 0.1 * power if estimate else noise_var
    s2_floor = 1e-12 * power
    frob = float(np.vdot(X, X).real)
    g = np.full(N, _INIT_BREADTH * power * M / frob if frob > 0 else 1.0)
    act = np.arange(N)
    Xa = fortran(X)
    gram = Xy = None
    objective = []
    converged = False
    n_iter = 0

    def estep():
        nonlocal gram, Xy
        if len(g) < M:
            if gram is None:
                gram = _gram(Xa.conj().T, lower=True)
                gram = np.tril(gram) + np.tril(gram, -1).conj().T
                Xy = Xa.conj().T @ y
            return _estep_small(gram, Xy, yy, g, s2, M)
        return _estep_large(Xa, y, g, s2)

    for n_iter in range(1, max_iter + 1):
        old = np.zeros(N)
        old[act] = g
        keep = g > max(prune * g.max(), 0.0)
        if not keep.all():
            g, act = g[keep], act[keep]
            Xa = fortran(Xa[:, keep])
            if gram is not None:
                gram, Xy = gram[np.ix_(keep, keep)], Xy[keep]
        mu, sig, (logdet, quad, resid2, trace) = estep()
        objective.append(logdet + quad)
        if estimate:
            s2 = max((resid2 + trace) / M, s2_floor)
        g = sig + (mu * mu.conj()).real
        new = np.zeros(N)
        new[act] = g
        if not np.all(np.isfinite(g)) or g.max() <= 0:
            break
        if np.linalg.norm(new - old) < tol * np.linalg.norm(old):
            converged = True
            break
    positive = g > 0
    if not positive.all():
        g, act, Xa = g[positive], act[positive], fortran(Xa[:, positive])
        if gram is not None:
            gram, Xy = gram[np.ix_(positive, positive)], Xy[positive]
    coef = np.zeros(N, dtype=X.dtype)
    post = np.zeros(N)
    if len(g):
        mu, sig, _ = estep()
        coef[act] = mu
        post[act] = sig
    if warn and not converged:
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(
            f"SBL did not converge in max_iter={max_iter} iterations (relative "
            f"change of the prior variances above tol={tol}); increase max_iter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )
    gamma = np.zeros(N)
    gamma[act] = g
    return SBLResult(coef=coef, posterior_var=post, gamma=gamma, noise_var=float(s2),
                     n_iter=n_iter, converged=converged, objective=np.asarray(objective))


def sbl(X, y, *, noise_var=None, prune=1e-3, max_iter=300, tol=1e-4, n_threads=None):
    """Classic sparse Bayesian learning by EM on a plain 2-D dictionary.

    Prior ``x ~ N(0, diag(gamma))`` (complex Gaussian for complex data) with
    one variance per column, learned by maximising the marginal likelihood
    (Tipping 2001; Wipf and Rao 2004). Each iteration costs
    ``O(min(M, K)^2 max(M, K))`` for M rows and K columns still active.

    Parameters
    ----------
    X : array-like of shape (M, N)
        Dictionary, real or complex.
    y : array-like of shape (M,)
    noise_var : float or None, default=None
        Known noise variance, or None to estimate it by EM.
    prune : float in [0, 1), default=1e-3
        Columns whose variance falls below ``prune`` times the largest are
        removed.
    max_iter : int, default=300
    tol : float, default=1e-4
        Stop at this relative change of the variances.
    n_threads : int or None, default=None
        BLAS threads (through threadpoolctl); None leaves the default.

    Returns
    -------
    SBLResult

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.linear_model import sbl
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 100))
    >>> x = np.zeros(100)
    >>> x[[5, 50, 70]] = [1.0, -2.0, 0.5]
    >>> res = sbl(X, X @ x, noise_var=1e-6)
    >>> bool(np.allclose(res.coef, x, atol=1e-3))
    True
    """
    X = np.asarray(X)
    y = np.asarray(y)
    for name, arr in (("X", X), ("y", y)):
        if arr.dtype == object or arr.dtype.kind not in "biufc":
            raise TypeError(f"{name} has dtype {arr.dtype}; a numeric dtype was expected")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with {X.shape[0]} entries (the rows of X), got shape {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must not contain NaN or infinity")
    noise_var = check_noise_var(noise_var)
    if isinstance(prune, bool) or not isinstance(prune, (int, float, np.floating)) or not 0 <= prune < 1:
        raise ValueError(f"prune must be a float in [0, 1), got {prune!r}")
    max_iter = check_scalar(max_iter, "max_iter", int, min_val=1)
    tol = check_scalar(tol, "tol", float, min_val=0)
    work = np.complex128 if np.result_type(X.dtype, y.dtype).kind == "c" else np.float64
    with blas_threads(n_threads):
        return _sbl_em(np.asarray(X, dtype=work), np.asarray(y, dtype=work),
                       noise_var, float(prune), max_iter, tol)
