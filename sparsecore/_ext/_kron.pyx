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
from libc.math cimport log, sqrt, fabs
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from scipy.linalg.cython_blas cimport sgemm, dgemm, cgemm, zgemm
from scipy.linalg.cython_lapack cimport dsyevd, zheevd

from sparsecore._ext._arrays cimport data_ptr

import numpy as np

cnp.import_array()

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

cdef int _estep_impl(int n_modes, Py_ssize_t L, double s2,
                     dscalar_t *y, dscalar_t **A, double **gam,
                     const Py_ssize_t *m, const Py_ssize_t *k,
                     const Py_ssize_t *order2,
                     dscalar_t **R, dscalar_t **B, double **B2, double **p,
                     dscalar_t *scaled, dscalar_t *z, dscalar_t *mu,
                     double *d, double *gvec, double *q, double *sig, double *lam,
                     dscalar_t *buf0, dscalar_t *buf1, double *rbuf0, double *rbuf1,
                     double *stats) noexcept nogil:
    """One E-step of KroSBL at gammas ``gam`` and noise variance ``s2``.

    Per mode: S_i = A_i diag(gamma_i) A_i^H = U_i diag(p_i) U_i^H (LAPACK),
    R_i = U_i^H, B_i = A_i^H U_i and B2_i = |B_i|^2. Then, with
    P = kron(p_i) and d = 1 / (s2 + P),
      z  = (kron U_i^H) y,                 Sigma_y^{-1} y = (kron U_i) (d * z)
      mu = gamma * (kron B_i) (d * z)      posterior mean, gamma = kron(gamma_i)
      q  = (kron B2_i) d                   = diag(A^H Sigma_y^{-1} A)
      sig = gamma * (1 - gamma * q)        = diag(Sigma_x)
      lam = sig + mean_l |mu_l|^2          the M-step's second moments
    and stats = [log det Sigma_y, sum_l y_l^H Sigma_y^{-1} y_l,
    ||Y - A Mu||_F^2, tr(A Sigma_x A^H)]. Costs O(sum m_i^2 k_i + sum m_i^3
    + L (M sum m_i + N sum m_i)); nothing of size M x N or N x N is formed.
    Returns 0, or a LAPACK info / -1000 (allocation) on failure."""
    cdef int i, info
    cdef Py_ssize_t M = 1, N = 1, c, j, l, t, r, mi, ki
    cdef double Pc, dc, a2, logdet = 0.0, quad = 0.0, res = 0.0, trace = 0.0
    cdef double g, mean2
    cdef Py_ssize_t nat[_MAX_MODES]
    for i in range(n_modes):
        M *= m[i]
        N *= k[i]
        nat[i] = i
    for i in range(n_modes):
        mi = m[i]
        ki = k[i]
        # scaled = A_i diag(sqrt(gamma_i)), then R_i = scaled @ scaled^H
        for r in range(mi):
            for t in range(ki):
                scaled[r * ki + t] = A[i][r * ki + t] * sqrt(gam[i][t])
        _gemm_rm(c'N', c'C', <int>mi, <int>mi, <int>ki, scaled, <int>ki,
                 scaled, <int>ki, R[i], <int>mi)
        # LAPACK reads the row-major Hermitian S as its transpose conj(S);
        # its eigenvectors V of conj(S) give U = conj(V), and the buffer read
        # row-major is V^T = U^H.
        info = _eigh_inplace(R[i], <int>mi, p[i])
        if info != 0:
            return info
        for t in range(mi):
            if p[i][t] < 0.0:
                p[i][t] = 0.0
        # B_i = A_i^H U_i = A_i^H R_i^H  (k_i x m_i)
        _gemm_rm(c'C', c'C', <int>ki, <int>mi, <int>mi, A[i], <int>ki,
                 R[i], <int>mi, B[i], <int>mi)
        for t in range(ki * mi):
            B2[i][t] = _abs2(B[i][t])

    # z = (kron R_i) y
    _chain(y, z, buf0, buf1, n_modes, m, L, R, m, nat)
    # d = 1 / (s2 + kron(p_i)) and the scalar statistics
    _outer(p, m, n_modes, d)
    for c in range(M):
        Pc = d[c]
        dc = 1.0 / (s2 + Pc)
        d[c] = dc
        logdet += log(s2 + Pc)
        trace += s2 * Pc * dc
        for l in range(L):
            a2 = _abs2(z[c * L + l])
            quad += a2 * dc
            res += a2 * dc * dc
            z[c * L + l] = z[c * L + l] * dc
    # mu = gamma * (kron B_i) (d * z)
    _chain(z, mu, buf0, buf1, n_modes, m, L, B, k, order2)
    _outer(gam, k, n_modes, gvec)
    # q = (kron |B_i|^2) d
    _chain(d, q, rbuf0, rbuf1, n_modes, m, 1, B2, k, order2)
    for j in range(N):
        g = gvec[j]
        mean2 = 0.0
        for l in range(L):
            mu[j * L + l] = mu[j * L + l] * g
            mean2 += _abs2(mu[j * L + l])
        sig[j] = g * (1.0 - g * q[j])
        if sig[j] < 0.0:
            sig[j] = 0.0
        lam[j] = sig[j] + mean2 / L
    stats[0] = logdet
    stats[1] = quad
    stats[2] = s2 * s2 * res
    stats[3] = trace
    return 0


def estep(const dscalar_t[::1] y, list factors, list gammas, double noise_var,
          Py_ssize_t n_rhs, tuple order2, Py_ssize_t bufsize):
    """Structured E-step (see _estep_impl) on validated inputs.

    ``y`` is the C-ordered (M, n_rhs) data, ``factors`` the active
    C-contiguous (m_i, k_i) factors of y's dtype (float64 or complex128),
    ``gammas`` float64 arrays of length k_i, ``order2`` the order of the
    m -> k mode products and ``bufsize`` the largest intermediate of any
    chain (elements, n_rhs included).

    Returns (mu (N*n_rhs), sigma_diag (N), lam (N), eigenvalues [p_i],
    stats) with stats = (log det Sigma_y, quadratic form, squared residual
    norm, trace term)."""
    cdef int n_modes = len(factors), i, status
    cdef Py_ssize_t M = 1, N = 1, max_mk = 1
    cdef Py_ssize_t m[_MAX_MODES]
    cdef Py_ssize_t k[_MAX_MODES]
    cdef Py_ssize_t o2[_MAX_MODES]
    cdef dscalar_t *Ap[_MAX_MODES]
    cdef dscalar_t *Rp[_MAX_MODES]
    cdef dscalar_t *Bp[_MAX_MODES]
    cdef double *B2p[_MAX_MODES]
    cdef double *gp[_MAX_MODES]
    cdef double *pp[_MAX_MODES]
    cdef double stats[4]
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
        o2[i] = order2[i]
        M *= m[i]
        N *= k[i]
        max_mk = max(max_mk, m[i] * max(m[i], k[i]))
        Ap[i] = <dscalar_t *> data_ptr(A, dt, m[i] * k[i])
        gp[i] = <double *> data_ptr(gammas[i], F64, k[i])
        R = np.empty((m[i], m[i]), dtype=dt)
        Bm = np.empty((k[i], m[i]), dtype=dt)
        B2 = np.empty((k[i], m[i]), dtype=F64)
        pv = np.empty(m[i], dtype=F64)
        keep.append((R, Bm, B2, pv))
        Rp[i] = <dscalar_t *> data_ptr(R, dt, 0)
        Bp[i] = <dscalar_t *> data_ptr(Bm, dt, 0)
        B2p[i] = <double *> data_ptr(B2, F64, 0)
        pp[i] = <double *> data_ptr(pv, F64, 0)
    if y.shape[0] != M * n_rhs:
        raise RuntimeError("internal error: y does not match the factors")
    scaled = np.empty(max_mk, dtype=dt)
    z = np.empty(M * n_rhs, dtype=dt)
    mu = np.empty(N * n_rhs, dtype=dt)
    d = np.empty(max(M, N), dtype=F64)
    gvec = np.empty(N, dtype=F64)
    q = np.empty(N, dtype=F64)
    sig = np.empty(N, dtype=F64)
    lam = np.empty(N, dtype=F64)
    b0 = np.empty(bufsize, dtype=dt)
    b1 = np.empty(bufsize, dtype=dt)
    rb0 = np.empty(bufsize, dtype=F64)
    rb1 = np.empty(bufsize, dtype=F64)
    cdef dscalar_t *sp = <dscalar_t *> data_ptr(scaled, dt, 0)
    cdef dscalar_t *zp = <dscalar_t *> data_ptr(z, dt, 0)
    cdef dscalar_t *mup = <dscalar_t *> data_ptr(mu, dt, 0)
    cdef double *dp = <double *> data_ptr(d, F64, 0)
    cdef double *gvp = <double *> data_ptr(gvec, F64, 0)
    cdef double *qp = <double *> data_ptr(q, F64, 0)
    cdef double *sgp = <double *> data_ptr(sig, F64, 0)
    cdef double *lp = <double *> data_ptr(lam, F64, 0)
    cdef dscalar_t *b0p = <dscalar_t *> data_ptr(b0, dt, 0)
    cdef dscalar_t *b1p = <dscalar_t *> data_ptr(b1, dt, 0)
    cdef double *rb0p = <double *> data_ptr(rb0, F64, 0)
    cdef double *rb1p = <double *> data_ptr(rb1, F64, 0)
    with nogil:
        status = _estep_impl(n_modes, n_rhs, noise_var, <dscalar_t *> &y[0], Ap, gp,
                             m, k, o2, Rp, Bp, B2p, pp, sp, zp, mup, dp, gvp, qp,
                             sgp, lp, b0p, b1p, rb0p, rb1p, stats)
    if status == -1000:
        raise MemoryError("KroneckerSBL E-step: a LAPACK workspace allocation failed")
    if status != 0:
        raise np.linalg.LinAlgError(
            f"KroneckerSBL E-step: the eigendecomposition failed (LAPACK info {status})")
    return (mu, sig, lam, [t[3] for t in keep],
            (stats[0], stats[1], stats[2], stats[3]))


# ---------------------------------------------------------------------------
# M-steps
# ---------------------------------------------------------------------------

cdef int _rank1(const double *mat, Py_ssize_t a, Py_ssize_t b, double *left,
                double *right) noexcept nogil:
    """Leading singular pair of the nonnegative row-major a x b matrix:
    left = |u| (unit norm) and right = s |v|, so that left right^T is its
    nearest rank-1 matrix in the Frobenius norm (Van Loan and Pitsianis). The
    smaller Gram matrix is eigen-decomposed. Returns 0, 1 when the matrix is
    zero, or a LAPACK info / -1000."""
    cdef Py_ssize_t g = a if a <= b else b
    cdef Py_ssize_t i, j
    cdef double s, acc, top
    cdef int info
    cdef double *G = <double *> malloc(g * g * sizeof(double))
    cdef double *w = <double *> malloc(g * sizeof(double))
    if G == NULL or w == NULL:
        free(G)
        free(w)
        return -1000
    if a <= b:
        _gemm_rm(c'N', c'T', <int>a, <int>a, <int>b, <double *>mat, <int>b,
                 <double *>mat, <int>b, G, <int>a)
    else:
        _gemm_rm(c'T', c'N', <int>b, <int>b, <int>a, <double *>mat, <int>b,
                 <double *>mat, <int>b, G, <int>b)
    info = _eigh_inplace(G, <int>g, w)
    if info != 0:
        free(G)
        free(w)
        return info
    top = w[g - 1]
    if not top > 0.0:
        free(G)
        free(w)
        return 1
    s = sqrt(top)
    # the top eigenvector is the last column (contiguous in column-major)
    if a <= b:
        for i in range(a):
            left[i] = fabs(G[(g - 1) * g + i])
        for j in range(b):
            acc = 0.0
            for i in range(a):
                acc += mat[i * b + j] * G[(g - 1) * g + i]
            right[j] = fabs(acc)
    else:
        for j in range(b):
            right[j] = s * fabs(G[(g - 1) * g + j])
        for i in range(a):
            acc = 0.0
            for j in range(b):
                acc += mat[i * b + j] * G[(g - 1) * g + j]
            left[i] = fabs(acc) / s
    free(G)
    free(w)
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
    with nogil:
        sweep = 0
        while sweep < max_sweeps:
            sweep += 1
            off = 0
            for i in range(n_modes):
                memcpy(old + off, gp[i], k[i] * sizeof(double))
                off += k[i]
            for i in range(n_modes):
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
    return sweep
