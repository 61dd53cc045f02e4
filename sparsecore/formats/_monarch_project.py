"""Projection of a dense matrix onto Monarch matrices (the nearest one in
Frobenius norm)."""
import numbers

import numpy as np
import scipy.sparse as sp

from sparsecore import _threads
from sparsecore._ext import _monarch
from sparsecore._validation import check_allocation, contiguous
from sparsecore.formats._monarch import MonarchMatrix, as_block_dtype, monarch_layout

__all__ = ["monarch_project"]

_METHODS = ("svd", "power")
_DEFAULT_TOL = {np.dtype(np.float32): 1e-6, np.dtype(np.complex64): 1e-6,
                np.dtype(np.float64): 1e-9, np.dtype(np.complex128): 1e-9}
_DEFAULT_MAX_ITER = 300


def monarch_project(W, n_blocks=None, *, method="power", max_iter=None, tol=None,
                    return_error=False, n_threads=None):
    """The Monarch matrix nearest to ``W`` in Frobenius norm.

    Rearranged as a 4-tensor, ``W`` splits into ``l*k`` disjoint slices
    ``T[i, kk] = W[i::l, kk*p:(kk+1)*p]`` (shape ``(s, p)``), and a matrix is
    Monarch exactly when every slice has rank at most ``t`` (the number of
    intermediate indices the slice owns: 1 for ``sqrt(n)`` blocks). The
    slices share no parameters, so the best Monarch approximation is the best
    rank-``t`` approximation of every slice (Eckart-Young), as in Dao et al.,
    "Monarch: Expressive Structured Matrices for Efficient and Accurate
    Training" (ICML 2022), Theorem 1 and Algorithm 1.

    Parameters
    ----------
    W : array_like of shape (m, n)
        float32/float64 (complex64/complex128 too; integers become float64).
        Must be finite. Never modified.
    n_blocks : int, (int, int) or None
        ``b``: ``L`` and ``R`` both get ``b`` blocks (the paper's class; ``b``
        must divide m and n). ``(b_L, b_R)``: separate counts. None: about
        ``sqrt(min(m, n))`` blocks with rank-one slices (``32`` for n = 1024).
    method : {"power", "svd"}, default="power"
        "power": power iteration on each slice in cache (compiled, OpenMP over
        slices; numpy for complex input), deflated for ranks above one; a
        slice still iterating after ``max_iter`` steps (leading singular
        values too close for power iteration, which converges as
        ``(sigma_2/sigma_1)^2`` per step) is finished by the SVD. It reaches
        the same optimum as "svd" up to ``tol`` in a fraction of the time.
        "svd": a batched LAPACK SVD of every slice.
    max_iter : int, default=300
        Power iterations per slice before the SVD takes over (power method
        only).
    tol : float, default=1e-6 (single precision) or 1e-9 (double)
        Stop a slice's iteration when its singular value estimate changes by
        at most ``tol`` relative (power method only).
    return_error : bool, default=False
        Also return ``||W - M||_F / ||W||_F``, computed from the residuals of
        the slices (no dense product).
    n_threads : int or None
        Threads for the power method and for products of the result.

    Returns
    -------
    M : MonarchMatrix
    rel_error : float
        Only with ``return_error=True``.

    Examples
    --------
    >>> from sparsecore.formats import MonarchMatrix
    >>> from sparsecore.ops import monarch_project
    >>> M = MonarchMatrix.random((256, 256), random_state=0)
    >>> P, err = monarch_project(M.toarray(), return_error=True)
    >>> err < 1e-13
    True
    """
    if method not in _METHODS:
        raise ValueError(f"method must be 'svd' or 'power', got {method!r}")
    if not isinstance(return_error, (bool, np.bool_)):
        raise TypeError(f"return_error must be a bool, got {return_error!r}")
    W = _as_matrix(W)
    dtype = W.dtype
    if max_iter is None:
        max_iter = _DEFAULT_MAX_ITER
    elif isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if tol is None:
        tol = _DEFAULT_TOL[dtype]
    elif not isinstance(tol, numbers.Real) or not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    nt = _threads.effective_n_threads(n_threads)
    (k, q, p), (l, s, r) = monarch_layout(W.shape, n_blocks)
    _check_finite(W)
    if method == "svd":
        check_allocation(4 * W.nbytes, "the batched SVD of the Monarch projection")
        w1, w2, err2 = _project_svd(W, k, q, p, l, s, r)
    else:
        if dtype.kind == "c":
            w1, w2, err2, stalled = _project_power_numpy(W, k, q, p, l, s, r, int(max_iter),
                                                         float(tol))
        else:
            W = contiguous(W)
            w1, w2, err2, iters = _monarch.project_power(W, k, q, p, l, s, r, int(max_iter),
                                                         float(tol), nt)
            # iters counts every term of a slice: reaching max_iter in all is
            # a superset of the slices one of whose terms did not converge
            stalled = iters.reshape(-1) >= max_iter
        if stalled.any():
            # power iteration converges as (sigma_2/sigma_1)^2 per step: a
            # slice with nearly equal leading singular values is finished by
            # the SVD, so the result is the optimum whatever the spectrum
            _refine_svd(W, w1, w2, err2, np.flatnonzero(stalled), k, q, p, l, s, r)
    M = MonarchMatrix(w2, w1, n_threads=n_threads, copy=False)
    if not return_error:
        return M
    norm2 = _sum_squares(W)
    err = float(np.sqrt(np.sum(err2) / norm2)) if norm2 > 0 else 0.0
    return M, err


def _as_matrix(W):
    if sp.issparse(W):
        W = W.toarray()
    elif not isinstance(W, np.ndarray):
        W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D matrix, got {W.ndim}-D with shape {W.shape}")
    if W.dtype.kind not in "biufc":
        raise TypeError(f"W has unsupported dtype {W.dtype}; numeric dtypes only")
    dtype = as_block_dtype(W.dtype, "W")
    if W.dtype != dtype:
        W = W.astype(dtype)
    return W


def _check_finite(W):
    # one cheap pass; the exact (allocating) check only when the sum is not
    # finite (a NaN or inf, or an overflowing sum of finite values)
    with np.errstate(all="ignore"):
        total = np.sum(W)
    if np.isfinite(total):
        return
    bad = ~np.isfinite(W)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"W must be finite, but W[{i}, {j}] = {W[i, j]} ({int(bad.sum())} non-finite "
            f"entries); a Monarch factorisation of it would be NaN"
        )


def _sum_squares(W):
    v = W.ravel() if W.flags.c_contiguous else W.reshape(-1)
    return float(np.real(np.vdot(v, v)))


def _slice_ranks(k, q, l):
    """t[i, kk]: intermediate indices j in [kk*q, kk*q + q) with j % l == i."""
    j = np.arange(k * q)
    t = np.zeros((l, k), dtype=np.int64)
    np.add.at(t, (j % l, j // q), 1)
    return t


def slices(W, k, p, l, s):
    """The (l*k, s, p) stack of slices T[i*k + kk] = W[i::l, kk*p:(kk+1)*p]."""
    return W.reshape(s, l, k, p).transpose(1, 2, 0, 3).reshape(l * k, s, p)


def _scatter_terms(U, S, Vh, k, q, p, l, s, r, dtype, which=None, out=None):
    """Blocks from the slices' singular triples: intermediate index j is term
    (j - kk*q) // l of slice (j % l, j // q).

    ``which``: the flat slice indices (i*k + kk) that U, S, Vh hold, in that
    order (None: all of them); ``out``: the (w1, w2) to write those slices'
    entries into (None: new zero blocks)."""
    j = np.arange(k * q)
    lm, kk, rh, qq = j % l, j // q, j // l, j % q
    term = (j - kk * q) // l
    sl = lm * k + kk
    if which is not None:
        pos = np.full(l * k, -1, dtype=np.int64)
        pos[which] = np.arange(len(which))
        mine = pos[sl] >= 0
        lm, kk, rh, qq, term, sl = (a[mine] for a in (lm, kk, rh, qq, term, pos[sl]))
    c = S.shape[1]
    keep = term < c  # a term beyond the slice's size stays zero
    term = np.minimum(term, c - 1)
    root = np.sqrt(S[sl, term]) * keep
    if out is None:
        out = np.zeros((k, q, p), dtype=dtype), np.zeros((l, s, r), dtype=dtype)
    w1, w2 = out
    w2[lm, :, rh] = U[sl, :, term] * root[:, None]
    w1[kk, qq, :] = Vh[sl, term, :] * root[:, None]
    return w1, w2


def _refine_svd(W, w1, w2, err2, which, k, q, p, l, s, r):
    """Replace the slices ``which`` (flat indices i*k + kk) of a projection by
    their SVD optimum, in place in w1, w2 and err2 (l*k values, C order)."""
    T = slices(W, k, p, l, s)[which]
    with _threads.one_blas_thread():
        U, S, Vh = np.linalg.svd(T, full_matrices=False)
    t = _slice_ranks(k, q, l).reshape(-1)[which]
    dropped = np.arange(S.shape[1])[None, :] >= t[:, None]
    flat = err2.reshape(-1)  # a view: err2 is contiguous
    flat[which] = np.sum(np.where(dropped, S.astype(np.float64) ** 2, 0.0), axis=1)
    _scatter_terms(U, S, Vh, k, q, p, l, s, r, W.dtype, which=which, out=(w1, w2))


def _project_svd(W, k, q, p, l, s, r):
    T = slices(W, k, p, l, s)
    with _threads.one_blas_thread():  # one small LAPACK call per slice
        U, S, Vh = np.linalg.svd(T, full_matrices=False)
    t = _slice_ranks(k, q, l).reshape(-1)
    dropped = np.arange(S.shape[1])[None, :] >= t[:, None]
    err2 = np.sum(np.where(dropped, S.astype(np.float64) ** 2, 0.0), axis=1)
    w1, w2 = _scatter_terms(U, S, Vh, k, q, p, l, s, r, W.dtype)
    return w1, w2, err2


def _project_power_numpy(W, k, q, p, l, s, r, max_iter, tol):
    """Batched power iteration with deflation (the complex path; the same
    algorithm as the compiled kernel)."""
    T = np.array(slices(W, k, p, l, s))  # a copy: deflated in place
    t = _slice_ranks(k, q, l).reshape(-1)
    nsl, c = T.shape[0], min(s, p)
    tmax = int(min(t.max(initial=0), c))
    stalled = np.zeros(nsl, dtype=bool)
    U = np.zeros((nsl, s, max(tmax, 1)), dtype=W.dtype)
    S = np.zeros((nsl, max(tmax, 1)), dtype=np.float64)
    Vh = np.zeros((nsl, max(tmax, 1), p), dtype=W.dtype)
    for term in range(tmax):
        active = np.nonzero(t > term)[0]
        A = T[active]
        rows = np.einsum("nij,nij->ni", A, A.conj()).real
        best = np.argmax(rows, axis=1)
        norm = np.sqrt(rows[np.arange(len(active)), best])
        nz = norm > 0
        v = A[np.arange(len(active)), best].conj() / np.where(nz, norm, 1)[:, None]
        prev = np.zeros(len(active))
        sig = np.zeros(len(active))
        u = np.zeros((len(active), s), dtype=W.dtype)
        w = np.zeros((len(active), p), dtype=W.dtype)
        running = nz.copy()
        for _ in range(max_iter):
            idx = np.nonzero(running)[0]
            if idx.size == 0:
                break
            uu = np.einsum("nij,nj->ni", A[idx], v[idx])
            nu = np.linalg.norm(uu, axis=1)
            uu /= np.where(nu > 0, nu, 1)[:, None]
            ww = np.einsum("nij,ni->nj", A[idx].conj(), uu)  # conj(A)^T u = conj(A^H u)
            sg = np.linalg.norm(ww, axis=1)
            u[idx], w[idx], sig[idx] = uu, ww.conj(), sg
            v[idx] = ww / np.where(sg > 0, sg, 1)[:, None]
            done = (sg - prev[idx] <= tol * sg) | (sg == 0)
            prev[idx] = sg
            running[idx[done]] = False
        stalled[active[running]] = True  # still iterating after max_iter
        # term u (u^H A) = u w with w = u^H A (a row), sigma = |w|
        A -= u[:, :, None] * w[:, None, :]
        T[active] = A
        root = np.sqrt(sig)
        safe = np.where(root > 0, root, 1)
        U[active, :, term] = u * root[:, None]
        Vh[active, term, :] = w / safe[:, None]
        S[active, term] = 1.0
    err2 = np.einsum("nij,nij->n", T, T.conj()).real
    # S holds ones: U and Vh already carry the square roots of the values
    w1, w2 = _scatter_terms(U, S, Vh, k, q, p, l, s, r, W.dtype)
    return w1, w2, err2, stalled
