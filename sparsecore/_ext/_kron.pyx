"""Compiled core of the Kronecker operator and of Kronecker-structured sparse
Bayesian learning (Y. He and G. Joseph, "Bayesian Algorithms for
Kronecker-structured Sparse Vector Recovery With Application to IRS-MIMO
Channel Estimation", IEEE Trans. Signal Process., 2024; arXiv 2307.14719).

Tensors are C-ordered: a vector x of length prod(n_i) is the tensor X of shape
(n_1, ..., n_I) with x == X.ravel(), so that (A_1 kron ... kron A_I) @ x is the
chain of mode products X x_1 A_1 x_2 A_2 ... x_I A_I, in numpy.kron's order. A
trailing "tail" axis (the columns of a matrix operand, or several measurement
vectors) rides along untouched.

Every function takes arrays the Python layer has validated and made
C-contiguous, calls BLAS and LAPACK through scipy.linalg.cython_blas and
cython_lapack with the GIL released, and never forms a Kronecker product.
"""
cimport cython
cimport numpy as cnp
from libc.math cimport log, log1p, sqrt, fabs
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from scipy.linalg.cython_blas cimport sgemm, dgemm, cgemm, zgemm
from scipy.linalg.cython_lapack cimport dsyevd, dsyevr, zheevd

from sparsecore._ext._arrays cimport data_ptr, register_interrupt_check, raise_interrupt

import numpy as np

cnp.import_array()

cdef extern from "sc_common.h" nogil:
    ctypedef struct sc_poll_t:
        int stop
        double next
    void sc_poll_init(sc_poll_t *p)
    int sc_poll(sc_poll_t *p)

# Ctrl-C reaches the E-step (between modes and products) and the AM M-step
# (between sweeps and modes): see sc_poll in sc_common.h
register_interrupt_check()

cdef enum:
    _INTERRUPTED = -2000

__all__ = ["MAX_MODES", "kron_apply", "estep", "svd_mstep", "am_mstep", "am_contract"]

cdef enum:
    _MAX_MODES = 32

MAX_MODES = _MAX_MODES

ctypedef fused scalar_t:
    float
    double
    float complex
    double complex

# Sparse Bayesian learning runs in double precision (real or complex).
ctypedef fused dscalar_t:
    double
    double complex

cdef object F64 = np.dtype(np.float64)
cdef object C128 = np.dtype(np.complex128)


# ---------------------------------------------------------------------------
# BLAS / LAPACK helpers
# ---------------------------------------------------------------------------

cdef void _gemm_rm(char opa, char opb, int m, int n, int k,
                   scalar_t *a, int lda, scalar_t *b, int ldb,
                   scalar_t *c, int ldc) noexcept nogil:
    """Row-major C (m x n) = op(A) @ op(B) with op in 'N', 'T', 'C' (conjugate
    transpose). A row-major matrix is the transpose of the column-major one
    BLAS sees, so this is the column-major product C^T = op(B)^T op(A)^T:
    the same flags with the operands swapped."""
    cdef scalar_t one = 1
    cdef scalar_t zero = 0
    if scalar_t is float:
        sgemm(&opb, &opa, &n, &m, &k, &one, b, &ldb, a, &lda, &zero, c, &ldc)
    elif scalar_t is double:
        dgemm(&opb, &opa, &n, &m, &k, &one, b, &ldb, a, &lda, &zero, c, &ldc)
    elif scalar_t is cython.floatcomplex:
        cgemm(&opb, &opa, &n, &m, &k, &one, b, &ldb, a, &lda, &zero, c, &ldc)
    else:
        zgemm(&opb, &opa, &n, &m, &k, &one, b, &ldb, a, &lda, &zero, c, &ldc)


cdef int _eigh_inplace(dscalar_t *a, int n, double *w) noexcept nogil:
    """Eigen-decompose the Hermitian n x n matrix in ``a`` (column-major,
    lower triangle read) with LAPACK ?syevd / ?heevd: on return ``a`` holds the
    eigenvectors column by column and ``w`` the eigenvalues in ascending
    order. Returns LAPACK's info, or -1000 when a workspace allocation fails."""
    cdef char jobz = c'V'
    cdef char uplo = c'L'
    cdef int info = 0
    cdef int lwork, liwork, lrwork
    cdef int *iwork
    cdef double *dwork
    cdef double complex *zwork
    cdef double *rwork
    liwork = 3 + 5 * n
    iwork = <int *> malloc(liwork * sizeof(int))
    if iwork == NULL:
        return -1000
    if dscalar_t is double:
        lwork = 1 + 6 * n + 2 * n * n
        dwork = <double *> malloc(lwork * sizeof(double))
        if dwork == NULL:
            free(iwork)
            return -1000
        dsyevd(&jobz, &uplo, &n, a, &n, w, dwork, &lwork, iwork, &liwork, &info)
        free(dwork)
    else:
        lwork = 2 * n + n * n
        lrwork = 1 + 5 * n + 2 * n * n
        zwork = <double complex *> malloc(lwork * sizeof(double complex))
        rwork = <double *> malloc(lrwork * sizeof(double))
        if zwork == NULL or rwork == NULL:
            free(iwork)
            free(zwork)
            free(rwork)
            return -1000
        zheevd(&jobz, &uplo, &n, a, &n, w, zwork, &lwork, rwork, &lrwork,
               iwork, &liwork, &info)
        free(zwork)
        free(rwork)
    free(iwork)
    return info


cdef inline double _abs2(dscalar_t v) noexcept nogil:
    if dscalar_t is double:
        return v * v
    else:
        return v.real * v.real + v.imag * v.imag


cdef void _outer(double **vecs, const Py_ssize_t *lens, int count, double *out) noexcept nogil:
    """out = vecs[0] kron vecs[1] kron ... (C order), expanded in place from
    the back so no scratch is needed. ``count`` may be 0 (out = [1])."""
    cdef Py_ssize_t size = 1, j, t, n
    cdef int i
    cdef double a
    out[0] = 1.0
    for i in range(count):
        n = lens[i]
        j = size - 1
        while j >= 0:
            a = out[j]
            for t in range(n - 1, -1, -1):
                out[j * n + t] = a * vecs[i][t]
            j -= 1
        size *= n


# ---------------------------------------------------------------------------
# Mode products
# ---------------------------------------------------------------------------

cdef void _chain(scalar_t *src, scalar_t *dst, scalar_t *buf0, scalar_t *buf1,
                 int n_modes, const Py_ssize_t *dims_in, Py_ssize_t tail,
                 scalar_t **mats, const Py_ssize_t *rows,
                 const Py_ssize_t *order) noexcept nogil:
    """dst = src x_{order[0]} mats[order[0]] x_{order[1]} ... : mode products
    of the C-ordered tensor of shape dims_in + (tail,) with the row-major
    matrices mats[i] of shape (rows[i], dims_in[i]). Intermediates alternate
    between buf0 and buf1 (each large enough for every intermediate); src,
    dst and the buffers are distinct. Every size is positive and every
    product P, Q below fits in an int (checked by the caller)."""
    cdef Py_ssize_t dims[_MAX_MODES]
    cdef Py_ssize_t s, i, l, p, P, Q, n, m
    cdef scalar_t *cur = src
    cdef scalar_t *out
    for l in range(n_modes):
        dims[l] = dims_in[l]
    for s in range(n_modes):
        i = order[s]
        P = 1
        for l in range(i):
            P *= dims[l]
        Q = tail
        for l in range(i + 1, n_modes):
            Q *= dims[l]
        n = dims[i]
        m = rows[i]
        if s == n_modes - 1:
            out = dst
        elif s % 2 == 0:
            out = buf0
        else:
            out = buf1
        if Q == 1:
            # (P x n) @ mats[i]^T in one product
            _gemm_rm(c'N', c'T', <int>P, <int>m, <int>n, cur, <int>n,
                     mats[i], <int>n, out, <int>m)
        else:
            # one (m x n) @ (n x Q) product per leading index
            for p in range(P):
                _gemm_rm(c'N', c'N', <int>m, <int>Q, <int>n, mats[i], <int>n,
                         cur + p * n * Q, <int>Q, out + p * m * Q, <int>Q)
        dims[i] = m
        cur = out


def kron_apply(const scalar_t[::1] x, list mats, tuple dims_in, Py_ssize_t tail,
               tuple order, Py_ssize_t bufsize):
    """(mats[0] kron mats[1] kron ...) applied to the C-ordered tensor
    ``x`` of shape dims_in + (tail,); returns the flat result.

    ``mats`` are C-contiguous 2-D arrays of x's dtype with
    ``mats[i].shape[1] == dims_in[i]``; ``order`` is the order the modes are
    applied in and ``bufsize`` the largest intermediate (elements, tail
    included). Sizes are positive and fit BLAS's 32-bit ints (checked in
    Python)."""
    cdef int n_modes = len(mats)
    cdef Py_ssize_t i, out_size = tail
    cdef Py_ssize_t dims[_MAX_MODES]
    cdef Py_ssize_t rows[_MAX_MODES]
    cdef Py_ssize_t ordr[_MAX_MODES]
    cdef scalar_t *mp[_MAX_MODES]
    if scalar_t is float:
        dt = np.dtype(np.float32)
    elif scalar_t is double:
        dt = np.dtype(np.float64)
    elif scalar_t is cython.floatcomplex:
        dt = np.dtype(np.complex64)
    else:
        dt = np.dtype(np.complex128)
    if n_modes < 1 or n_modes > _MAX_MODES:
        raise RuntimeError(f"internal error: kron_apply got {n_modes} factors")
    for i in range(n_modes):
        A = mats[i]
        rows[i] = A.shape[0]
        dims[i] = dims_in[i]
        ordr[i] = order[i]
        if A.shape[1] != dims[i]:
            raise RuntimeError("internal error: factor shape does not match the tensor")
        mp[i] = <scalar_t *> data_ptr(A, dt, rows[i] * dims[i])
        out_size *= rows[i]
    out = np.empty(out_size, dtype=dt)
    cdef scalar_t[::1] ov = out
    b0 = np.empty(bufsize if n_modes > 1 else 0, dtype=dt)
    b1 = np.empty(bufsize if n_modes > 2 else 0, dtype=dt)
    cdef scalar_t *p0 = <scalar_t *> data_ptr(b0, dt, 0)
    cdef scalar_t *p1 = <scalar_t *> data_ptr(b1, dt, 0)
    with nogil:
        _chain(<scalar_t *> &x[0], &ov[0], p0, p1, n_modes, dims, tail, mp, rows, ordr)
    return out


# ---------------------------------------------------------------------------
# E-step of Kronecker-structured SBL
# ---------------------------------------------------------------------------

cdef void _plan(int n_modes, const Py_ssize_t *rows, const Py_ssize_t *cols,
                Py_ssize_t *order) noexcept nogil:
    """Order of the mode products: by 1/rows - 1/cols, largest first (the
    most shrinking modes first; see formats._kronecker.mode_product_plan)."""
    cdef int i, j
    cdef Py_ssize_t t
    for i in range(n_modes):
        order[i] = i
    for i in range(1, n_modes):
        j = i
        while j > 0 and (1.0 / rows[order[j]] - 1.0 / cols[order[j]]
                         > 1.0 / rows[order[j - 1]] - 1.0 / cols[order[j - 1]]):
            t = order[j]
            order[j] = order[j - 1]
            order[j - 1] = t
            j -= 1


cdef inline dscalar_t _conj(dscalar_t v) noexcept nogil:
    if dscalar_t is double:
        return v
    else:
        return v.conjugate()


cdef int _factor_mode(dscalar_t *A, const double *gam, Py_ssize_t m, Py_ssize_t k,
                      dscalar_t *G, dscalar_t *E, dscalar_t *T, double *ev,
                      dscalar_t *W, dscalar_t *F, double *N2, double *P,
                      Py_ssize_t *rank) noexcept nogil:
    """Thin eigen-factorisation of one mode, G = A diag(sqrt(gamma)) (m x k):
    G^H G = W diag(P) W^H on its range (r columns, P > 0), from the smaller
    of G^H G (k x k) and G G^H (m x m). Fills W (k x r), F = W^H G^H (r x m),
    N2 (k x (r+1): |W|^2 and, last, the share 1 - sum |W|^2 of the null
    space), P (r) and rank = r. G (m k), E and T (max(m,k)^2) and ev
    (max(m,k)) are scratch. Returns LAPACK's info or -1000."""
    cdef Py_ssize_t r = 0, s, t, j, c0
    cdef int info
    cdef double top, thr, acc, w2
    for s in range(m):
        for t in range(k):
            G[s * k + t] = A[s * k + t] * sqrt(gam[t])
    if k <= m:
        # E = G^H G; LAPACK reads this row-major Hermitian matrix as its
        # conjugate, so the eigenvectors come back as the rows of W^H
        _gemm_rm(c'C', c'N', <int>k, <int>k, <int>m, G, <int>k, G, <int>k, E, <int>k)
        info = _eigh_inplace(E, <int>k, ev)
        if info != 0:
            return info
        c0 = 0
        while c0 < k and not ev[c0] > 0.0:
            c0 += 1
        r = k - c0
        for j in range(r):
            P[j] = ev[c0 + j]
            for t in range(k):
                W[t * r + j] = _conj(E[(c0 + j) * k + t])
        # F = W_r^H G^H: rows c0.. of E times G^H
        if r > 0:
            _gemm_rm(c'N', c'C', <int>r, <int>m, <int>k, E + c0 * k, <int>k,
                     G, <int>k, F, <int>m)
    else:
        # E = G G^H (m x m): rows of the result are U^H
        _gemm_rm(c'N', c'C', <int>m, <int>m, <int>k, G, <int>k, G, <int>k, E, <int>m)
        info = _eigh_inplace(E, <int>m, ev)
        if info != 0:
            return info
        top = ev[m - 1]
        thr = top * 1e-12
        c0 = 0
        while c0 < m and not (ev[c0] > thr and ev[c0] > 0.0):
            c0 += 1
        r = m - c0
        if r > 0:
            # F = P^(1/2) U_r^H (the rows c0.. of E are U_r^H)
            for j in range(r):
                P[j] = ev[c0 + j]
                for s in range(m):
                    F[j * m + s] = E[(c0 + j) * m + s] * sqrt(P[j])
            # W_r = G^H U_r P^(-1/2): T = U_r^H G (r x k), W[t, j] = conj(T[j, t]) / sqrt(p_j)
            _gemm_rm(c'N', c'N', <int>r, <int>k, <int>m, E + c0 * m, <int>m,
                     G, <int>k, T, <int>k)
            for j in range(r):
                for t in range(k):
                    W[t * r + j] = _conj(T[j * k + t]) / sqrt(P[j])
    rank[0] = r
    for t in range(k):
        acc = 0.0
        for j in range(r):
            w2 = _abs2(W[t * r + j])
            N2[t * (r + 1) + j] = w2
            acc += w2
        N2[t * (r + 1) + r] = 1.0 - acc if acc < 1.0 else 0.0
    return 0


cdef int _estep_impl(int n_modes, Py_ssize_t L, double s2, double yy,
                     dscalar_t *y, dscalar_t **A, double **gam,
                     const Py_ssize_t *m, const Py_ssize_t *k,
                     dscalar_t *G, dscalar_t *E, dscalar_t *T, double *ev,
                     dscalar_t **W, dscalar_t **F, double **N2, double **P,
                     dscalar_t *h, dscalar_t *mu, double *d, double *gvec,
                     double *sig, double *lam,
                     dscalar_t *buf0, dscalar_t *buf1, double *rbuf0, double *rbuf1,
                     double *stats, sc_poll_t *poll) noexcept nogil:
    """One E-step of KroSBL at gammas ``gam`` and noise variance ``s2``, in
    the feature-space form (never forming A, Sigma_y or Sigma_x):

    per mode, G_i = A_i diag(gamma_i)^(1/2) = (range) V_i P_i^(1/2) W_i^H, so
    with F_i = W_i^H G_i^H, W = kron W_i and P = kron P_i,
      h     = (kron F_i) y                     (M -> R = prod r_i)
      mu    = gamma^(1/2) * W (h / (s2 + P))   posterior mean
      Sigma_x = Gamma^(1/2) W (I + P/s2)^(-1) W^H Gamma^(1/2), whose diagonal
      sig   = gamma * (kron |W_i|^2, null share) (s2 / (s2 + P_ext))
    has only positive terms (no cancellation), and lam = sig + mean |mu|^2.
    stats = [log det Sigma_y, sum_l y_l^H Sigma_y^-1 y_l, ||Y - A Mu||_F^2,
    tr(A Sigma_x A^H) per column]. yy = ||Y||_F^2. Cost O(sum min(m_i,k_i)^3
    + sum m_i k_i min(m_i,k_i) + L (M sum r_i + N sum k_i)).
    Returns 0, or a LAPACK info / -1000 on failure, or _INTERRUPTED when
    ``poll`` reports Ctrl-C (checked between the per-mode factorisations and
    the Kronecker products)."""
    cdef int i, info
    cdef Py_ssize_t M = 1, N = 1, R = 1, RE = 1, c, j, l
    cdef Py_ssize_t r[_MAX_MODES]
    cdef Py_ssize_t r1[_MAX_MODES]
    cdef Py_ssize_t order[_MAX_MODES]
    cdef double Pc, dc, a2, logdet = 0.0, hd = 0.0, hres = 0.0, trace = 0.0
    cdef double g, mean2
    for i in range(_MAX_MODES):
        r[i] = 0
        r1[i] = 1
    for i in range(n_modes):
        if sc_poll(poll):
            return _INTERRUPTED
        M *= m[i]
        N *= k[i]
        info = _factor_mode(A[i], gam[i], m[i], k[i], G, E, T, ev, W[i], F[i], N2[i],
                            P[i], &r[i])
        if info != 0:
            return info
        r1[i] = r[i] + 1
        R *= r[i]
        RE *= r1[i]
    if R == 0:
        # some mode has no range: A Gamma A^H = 0, the posterior is the prior
        for j in range(N):
            for l in range(L):
                mu[j * L + l] = 0.0
        _outer(gam, k, n_modes, gvec)
        for j in range(N):
            sig[j] = gvec[j]
            lam[j] = gvec[j]
        stats[0] = M * log(s2)
        stats[1] = yy / s2
        stats[2] = yy
        stats[3] = 0.0
        return 0
    if sc_poll(poll):
        return _INTERRUPTED
    # h = (kron F_i) y
    _plan(n_modes, r, m, order)
    _chain(y, h, buf0, buf1, n_modes, m, L, F, r, order)
    # d = 1 / (s2 + P) and the scalar statistics
    _outer(P, r, n_modes, d)
    for c in range(R):
        Pc = d[c]
        dc = 1.0 / (s2 + Pc)
        d[c] = dc
        logdet += log1p(Pc / s2)
        trace += s2 * Pc * dc
        for l in range(L):
            a2 = _abs2(h[c * L + l])
            hd += a2 * dc
            hres += a2 * dc * (1.0 + s2 * dc)
            h[c * L + l] = h[c * L + l] * dc
    if sc_poll(poll):
        return _INTERRUPTED
    # mu = gamma^(1/2) * (kron W_i) (d * h)
    _plan(n_modes, k, r, order)
    _chain(h, mu, buf0, buf1, n_modes, r, L, W, k, order)
    _outer(gam, k, n_modes, gvec)
    # sig = gamma * (kron N2_i) (s2 / (s2 + P_ext)), P_ext = kron [P_i, 0]
    for i in range(n_modes):
        P[i][r[i]] = 0.0
    _outer(P, r1, n_modes, d)
    for c in range(RE):
        d[c] = s2 / (s2 + d[c])
    if sc_poll(poll):
        return _INTERRUPTED
    _plan(n_modes, k, r1, order)
    _chain(d, sig, rbuf0, rbuf1, n_modes, r1, 1, N2, k, order)
    for j in range(N):
        g = gvec[j]
        a2 = sqrt(g)
        mean2 = 0.0
        for l in range(L):
            mu[j * L + l] = mu[j * L + l] * a2
            mean2 += _abs2(mu[j * L + l])
        sig[j] = g * sig[j]
        lam[j] = sig[j] + mean2 / L
    stats[0] = M * log(s2) + logdet
    stats[1] = (yy - hd) / s2
    stats[2] = yy - hres if yy > hres else 0.0
    stats[3] = trace
    return 0


def estep(const dscalar_t[::1] y, list factors, list gammas, double noise_var,
          Py_ssize_t n_rhs, Py_ssize_t bufsize):
    """Structured E-step (see _estep_impl) on validated inputs.

    ``y`` is the C-ordered (M, n_rhs) data, ``factors`` the active
    C-contiguous (m_i, k_i) factors of y's dtype (float64 or complex128),
    ``gammas`` positive float64 arrays of length k_i, and ``bufsize`` at
    least prod(max(m_i, k_i + 1)) * n_rhs.

    Returns (mu (N*n_rhs), sigma_diag (N), lam (N), stats) with stats =
    (log det Sigma_y, quadratic form, squared residual norm, trace term per
    column)."""
    cdef int n_modes = len(factors), i, status
    cdef Py_ssize_t M = 1, N = 1, big = 1, RE = 1, maxmk = 1
    cdef Py_ssize_t m[_MAX_MODES]
    cdef Py_ssize_t k[_MAX_MODES]
    cdef dscalar_t *Ap[_MAX_MODES]
    cdef dscalar_t *Wp[_MAX_MODES]
    cdef dscalar_t *Fp[_MAX_MODES]
    cdef double *N2p[_MAX_MODES]
    cdef double *gp[_MAX_MODES]
    cdef double *Pp[_MAX_MODES]
    cdef double stats[4]
    cdef double yy = 0.0
    cdef Py_ssize_t t
    if dscalar_t is double:
        dt = F64
    else:
        dt = C128
    if n_modes < 1 or n_modes > _MAX_MODES:
        raise RuntimeError(f"internal error: estep got {n_modes} factors")
    keep = []
    for i in range(n_modes):
        A = factors[i]
        m[i] = A.shape[0]
        k[i] = A.shape[1]
        M *= m[i]
        N *= k[i]
        big = max(big, m[i], k[i])
        maxmk = max(maxmk, m[i] * k[i])
        RE *= min(m[i], k[i]) + 1
        Ap[i] = <dscalar_t *> data_ptr(A, dt, m[i] * k[i])
        gp[i] = <double *> data_ptr(gammas[i], F64, k[i])
        rmax = min(m[i], k[i])
        Wm = np.empty(k[i] * rmax, dtype=dt)
        Fm = np.empty(rmax * m[i], dtype=dt)
        N2 = np.empty(k[i] * (rmax + 1), dtype=F64)
        Pv = np.empty(rmax + 1, dtype=F64)
        keep.append((Wm, Fm, N2, Pv))
        Wp[i] = <dscalar_t *> data_ptr(Wm, dt, 0)
        Fp[i] = <dscalar_t *> data_ptr(Fm, dt, 0)
        N2p[i] = <double *> data_ptr(N2, F64, 0)
        Pp[i] = <double *> data_ptr(Pv, F64, 0)
    if y.shape[0] != M * n_rhs:
        raise RuntimeError("internal error: y does not match the factors")
    for t in range(y.shape[0]):
        yy += _abs2(y[t])
    Gs = np.empty(maxmk, dtype=dt)
    Es = np.empty(big * big, dtype=dt)
    Ts = np.empty(big * big, dtype=dt)
    evs = np.empty(big, dtype=F64)
    h = np.empty(bufsize, dtype=dt)
    mu = np.empty(N * n_rhs, dtype=dt)
    d = np.empty(max(M, RE), dtype=F64)
    gvec = np.empty(N, dtype=F64)
    sig = np.empty(N, dtype=F64)
    lam = np.empty(N, dtype=F64)
    b0 = np.empty(bufsize, dtype=dt)
    b1 = np.empty(bufsize, dtype=dt)
    rb0 = np.empty(bufsize, dtype=F64)
    rb1 = np.empty(bufsize, dtype=F64)
    cdef dscalar_t *Gsp = <dscalar_t *> data_ptr(Gs, dt, 0)
    cdef dscalar_t *Esp = <dscalar_t *> data_ptr(Es, dt, 0)
    cdef dscalar_t *Tsp = <dscalar_t *> data_ptr(Ts, dt, 0)
    cdef double *evp = <double *> data_ptr(evs, F64, 0)
    cdef dscalar_t *hp = <dscalar_t *> data_ptr(h, dt, 0)
    cdef dscalar_t *mup = <dscalar_t *> data_ptr(mu, dt, 0)
    cdef double *dp = <double *> data_ptr(d, F64, 0)
    cdef double *gvp = <double *> data_ptr(gvec, F64, 0)
    cdef double *sgp = <double *> data_ptr(sig, F64, 0)
    cdef double *lp = <double *> data_ptr(lam, F64, 0)
    cdef dscalar_t *b0p = <dscalar_t *> data_ptr(b0, dt, 0)
    cdef dscalar_t *b1p = <dscalar_t *> data_ptr(b1, dt, 0)
    cdef double *rb0p = <double *> data_ptr(rb0, F64, 0)
    cdef double *rb1p = <double *> data_ptr(rb1, F64, 0)
    cdef sc_poll_t poll
    sc_poll_init(&poll)
    with nogil:
        status = _estep_impl(n_modes, n_rhs, noise_var, yy, <dscalar_t *> &y[0], Ap, gp,
                             m, k, Gsp, Esp, Tsp, evp, Wp, Fp, N2p, Pp, hp, mup, dp, gvp,
                             sgp, lp, b0p, b1p, rb0p, rb1p, stats, &poll)
    if status == _INTERRUPTED:
        raise_interrupt()
    if status == -1000:
        raise MemoryError("KroneckerSBL E-step: a LAPACK workspace allocation failed")
    if status != 0:
        raise np.linalg.LinAlgError(
            f"KroneckerSBL E-step: the eigendecomposition failed (LAPACK info {status})")
    return mu, sig, lam, (stats[0], stats[1], stats[2], stats[3])


# ---------------------------------------------------------------------------
# M-steps
# ---------------------------------------------------------------------------

cdef int _top_eigh(double *a, int n, double *top, double *vec) noexcept nogil:
    """Largest eigenvalue and its eigenvector of the symmetric n x n matrix
    ``a`` (lower triangle read, destroyed), by LAPACK dsyevr restricted to
    that one pair. Returns LAPACK's info or -1000."""
    cdef char jobz = c'V'
    cdef char rng = c'I'
    cdef char uplo = c'L'
    cdef int il = n, iu = n, found = 0, info = 0
    cdef int lwork = 26 * n, liwork = 10 * n
    cdef double vl = 0.0, vu = 0.0, abstol = 0.0
    cdef int isuppz[2]
    cdef double *w = <double *> malloc((n + lwork) * sizeof(double))
    cdef int *iwork = <int *> malloc(liwork * sizeof(int))
    if w == NULL or iwork == NULL:
        free(w)
        free(iwork)
        return -1000
    dsyevr(&jobz, &rng, &uplo, &n, a, &n, &vl, &vu, &il, &iu, &abstol, &found,
           w, vec, &n, isuppz, w + n, &lwork, iwork, &liwork, &info)
    top[0] = w[0]
    free(w)
    free(iwork)
    return info


cdef int _rank1(const double *mat, Py_ssize_t a, Py_ssize_t b, double *left,
                double *right) noexcept nogil:
    """Leading singular pair of the nonnegative row-major a x b matrix:
    left = |u| (unit norm) and right = s |v|, so that left right^T is its
    nearest rank-1 matrix in the Frobenius norm (Van Loan and Pitsianis). The
    top eigenpair of the smaller Gram matrix gives it. Returns 0, 1 when the
    matrix is zero, or a LAPACK info / -1000."""
    cdef Py_ssize_t g = a if a <= b else b
    cdef Py_ssize_t i, j
    cdef double s, acc, top = 0.0
    cdef int info
    cdef double *G = <double *> malloc((g * g + g) * sizeof(double))
    if G == NULL:
        return -1000
    cdef double *vec = G + g * g
    if a <= b:
        _gemm_rm(c'N', c'T', <int>a, <int>a, <int>b, <double *>mat, <int>b,
                 <double *>mat, <int>b, G, <int>a)
    else:
        _gemm_rm(c'T', c'N', <int>b, <int>b, <int>a, <double *>mat, <int>b,
                 <double *>mat, <int>b, G, <int>b)
    info = _top_eigh(G, <int>g, &top, vec)
    if info != 0:
        free(G)
        return info
    if not top > 0.0:
        free(G)
        return 1
    s = sqrt(top)
    if a <= b:
        for i in range(a):
            left[i] = fabs(vec[i])
        for j in range(b):
            acc = 0.0
            for i in range(a):
                acc += mat[i * b + j] * vec[i]
            right[j] = fabs(acc)
    else:
        for j in range(b):
            right[j] = s * fabs(vec[j])
        for i in range(a):
            acc = 0.0
            for j in range(b):
                acc += mat[i * b + j] * vec[j]
            left[i] = fabs(acc) / s
    free(G)
    return 0


def svd_mstep(const double[::1] lam, list gammas):
    """SVD-KroSBL M-step: the Kronecker factors nearest to ``lam`` (the
    tensor of shape (len(g) for g in gammas)), by sequential rank-1
    approximations: gammas[0] = |u| of the (k_0 x rest) unfolding, the scaled
    right vector carries on to the next mode, and the last mode takes what
    is left. ``gammas`` (float64, C-contiguous) are overwritten. Returns
    False when lam is zero."""
    cdef int n_modes = len(gammas), i, status = 0
    cdef Py_ssize_t N = lam.shape[0], a, b
    cdef double *gp[_MAX_MODES]
    cdef Py_ssize_t k[_MAX_MODES]
    for i in range(n_modes):
        k[i] = gammas[i].shape[0]
        gp[i] = <double *> data_ptr(gammas[i], F64, k[i])
    work = np.empty(2 * N, dtype=F64)
    cdef double *cur = <double *> data_ptr(work, F64, 2 * N)
    cdef double *nxt = cur + N
    cdef double *tmp
    with nogil:
        memcpy(cur, &lam[0], N * sizeof(double))
        b = N
        for i in range(n_modes - 1):
            a = k[i]
            b = b // a
            status = _rank1(cur, a, b, gp[i], nxt)
            if status != 0:
                break
            tmp = cur
            cur = nxt
            nxt = tmp
        if status == 0:
            memcpy(gp[n_modes - 1], cur, k[n_modes - 1] * sizeof(double))
    if status == 1:
        return False
    if status == -1000:
        raise MemoryError("SVD-KroSBL M-step: a workspace allocation failed")
    if status != 0:
        raise np.linalg.LinAlgError(
            f"SVD-KroSBL M-step: the eigendecomposition failed (LAPACK info {status})")
    return True


cdef void _contract(const double *lam, int n_modes, const Py_ssize_t *k,
                    double **gam, int i, double *u, double *v,
                    double *c) noexcept nogil:
    """c[t] = sum over entries j with j_i == t of lam_j / prod_{l != i}
    gamma_l[j_l]: the tensor contracted with 1/gamma_l on every mode but i.
    O(N)."""
    cdef Py_ssize_t P = 1, Q = 1, n = k[i], p, t, s, base
    cdef int l
    cdef double acc
    cdef double *inv[_MAX_MODES]
    for l in range(i):
        P *= k[l]
    for l in range(i + 1, n_modes):
        Q *= k[l]
    # u = kron_{l<i} 1/gamma_l, v = kron_{l>i} 1/gamma_l (expanded in place)
    u[0] = 1.0
    P = 1
    for l in range(i):
        for s in range(P - 1, -1, -1):
            acc = u[s]
            for t in range(k[l] - 1, -1, -1):
                u[s * k[l] + t] = acc / gam[l][t]
        P *= k[l]
    v[0] = 1.0
    Q = 1
    for l in range(i + 1, n_modes):
        for s in range(Q - 1, -1, -1):
            acc = v[s]
            for t in range(k[l] - 1, -1, -1):
                v[s * k[l] + t] = acc / gam[l][t]
        Q *= k[l]
    for t in range(n):
        c[t] = 0.0
    for p in range(P):
        for t in range(n):
            base = (p * n + t) * Q
            acc = 0.0
            for s in range(Q):
                acc += lam[base + s] * v[s]
            c[t] += u[p] * acc


def am_contract(const double[::1] lam, list gammas, int mode):
    """The AM target of one mode before scaling: the tensor ``lam``
    contracted with 1/gammas[l] on every mode l != mode (see _contract)."""
    cdef int n_modes = len(gammas), i
    cdef double *gp[_MAX_MODES]
    cdef Py_ssize_t k[_MAX_MODES]
    cdef Py_ssize_t N = lam.shape[0]
    for i in range(n_modes):
        k[i] = gammas[i].shape[0]
        gp[i] = <double *> data_ptr(gammas[i], F64, k[i])
    out = np.empty(k[mode], dtype=F64)
    u = np.empty(N, dtype=F64)
    v = np.empty(N, dtype=F64)
    cdef double *op = <double *> data_ptr(out, F64, 0)
    cdef double *up = <double *> data_ptr(u, F64, 0)
    cdef double *vp = <double *> data_ptr(v, F64, 0)
    with nogil:
        _contract(&lam[0], n_modes, k, gp, mode, up, vp, op)
    return out


def am_mstep(const double[::1] lam, list gammas, Py_ssize_t max_sweeps, double tol):
    """AM-KroSBL M-step: cyclic exact minimisation of
    Q(gamma) = sum_j lam_j / gamma_j + log gamma_j over the Kronecker factors,
    gamma_i[t] = (k_i / N) * contraction (He & Joseph, Sec. III-A), then the
    scale normalisation (every factor but the last to unit norm, the last
    takes the scale). Sweeps stop when the relative change of kron(gamma_i)
    is below ``tol``. ``gammas`` (float64) are updated in place, starting
    from their current values. Returns the number of sweeps."""
    cdef int n_modes = len(gammas), i
    cdef Py_ssize_t N = lam.shape[0], t, total = 0, sweep, off
    cdef double *gp[_MAX_MODES]
    cdef Py_ssize_t k[_MAX_MODES]
    cdef double nrm, scale, gmax, floor, na, nb, nab, diff2, sa, sb, sab
    for i in range(n_modes):
        k[i] = gammas[i].shape[0]
        total += k[i]
        gp[i] = <double *> data_ptr(gammas[i], F64, k[i])
    work = np.empty(2 * N + 2 * total + 1, dtype=F64)
    cdef double *u = <double *> data_ptr(work, F64, 0)
    cdef double *v = u + N
    cdef double *old = v + N
    cdef double *c = old + total
    cdef sc_poll_t poll
    cdef int stopped = 0
    sc_poll_init(&poll)
    with nogil:
        sweep = 0
        while sweep < max_sweeps and not stopped:
            sweep += 1
            off = 0
            for i in range(n_modes):
                memcpy(old + off, gp[i], k[i] * sizeof(double))
                off += k[i]
            for i in range(n_modes):
                if sc_poll(&poll):
                    stopped = 1
                    break
                _contract(&lam[0], n_modes, k, gp, i, u, v, c)
                gmax = 0.0
                for t in range(k[i]):
                    gp[i][t] = c[t] * k[i] / N
                    if gp[i][t] > gmax:
                        gmax = gp[i][t]
                # keep every gamma positive so the next contraction can divide
                floor = gmax * 1e-16
                if floor <= 0.0:
                    floor = 1e-300
                for t in range(k[i]):
                    if not gp[i][t] > floor:
                        gp[i][t] = floor
            scale = 1.0
            for i in range(n_modes - 1):
                nrm = 0.0
                for t in range(k[i]):
                    nrm += gp[i][t] * gp[i][t]
                nrm = sqrt(nrm)
                for t in range(k[i]):
                    gp[i][t] /= nrm
                scale *= nrm
            if stopped:
                break
            for t in range(k[n_modes - 1]):
                gp[n_modes - 1][t] *= scale
            # ||kron g - kron o||^2 = prod|g|^2 + prod|o|^2 - 2 prod <g, o>
            na = 1.0
            nb = 1.0
            nab = 1.0
            off = 0
            for i in range(n_modes):
                sa = 0.0
                sb = 0.0
                sab = 0.0
                for t in range(k[i]):
                    sa += gp[i][t] * gp[i][t]
                    sb += old[off + t] * old[off + t]
                    sab += gp[i][t] * old[off + t]
                na *= sa
                nb *= sb
                nab *= sab
                off += k[i]
            diff2 = na + nb - 2.0 * nab
            if diff2 < 0.0:
                diff2 = 0.0
            if diff2 <= tol * tol * nb:
                break
    if stopped:
        # the factors are left part-way through a sweep; the caller's
        # KroneckerSBL state is discarded with the exception
        raise_interrupt()
    return sweep
