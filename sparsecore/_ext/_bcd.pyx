"""Inner loops of the greedy block coordinate descent engine (private).

The callers in ``sparsecore.optimize`` validate every input and pass:

* the design X either dense and Fortran-ordered (``Xd``) or as CSC arrays
  (``Xdata``, ``Xind``, ``Xptr``); the unused form is a size-0 dummy of the same
  dtype. X may be float32 or float64; all solver state is float64;
* sample weights ``h`` (length n) or, when ``h`` has length 0, the uniform
  weight ``h0``;
* a separable penalty in the closed form every built-in penalty has,
  ``l1 |w| + l2 w**2 / 2`` restricted to ``lo <= w <= hi``.

The block subproblem solved by :func:`wls_cd` is the weighted least-squares
model of one Newton (or majorisation) step,

    min_v  1/2 sum_i h_i (rho_i - x_i^T v)^2 + sum_{j in block} pen(v_j),

kept through the weighted residual ``u = h * (rho - X v)``; with ``xbar``
given the columns are implicitly centred (an intercept eliminated exactly),
which never densifies a sparse X. See Nutini, Laradji & Schmidt, "Let's Make
Block Coordinate Descent Converge Faster" (JMLR 2022) for the rules built on it.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport fabs, sqrt, INFINITY
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy

import numpy as np

from sparsecore._ext._arrays cimport register_interrupt_check, raise_interrupt

cdef extern from "sc_common.h" nogil:
    ctypedef struct sc_poll_t:
        int stop
        double next
    void sc_poll_init(sc_poll_t *p)
    int sc_poll(sc_poll_t *p)

# Ctrl-C reaches the compiled loops: they poll once per epoch / iteration
register_interrupt_check()

ctypedef fused index_t:
    int32_t
    int64_t


cdef extern from "bcd_dense.h" nogil:
    double sc_bcd_dot_f64(const double *x, const double *u, int64_t n)
    double sc_bcd_dot_f32(const float *x, const double *u, int64_t n)
    void sc_bcd_axpy_f64(double a, const double *x, double *u, int64_t n)
    void sc_bcd_axpy_f32(double a, const float *x, double *u, int64_t n)
    void sc_bcd_waxpy_f64(double a, const double *h, const double *x, double *u, int64_t n)
    void sc_bcd_waxpy_f32(double a, const double *h, const float *x, double *u, int64_t n)
    void sc_bcd_wstats_f64(const double *h, const double *x, int64_t n,
                           double *sum_hx, double *sum_hxx)
    void sc_bcd_wstats_f32(const double *h, const float *x, int64_t n,
                           double *sum_hx, double *sum_hxx)


# ---------------------------------------------------------------------------
# column access, dense or CSC


cdef inline double _col_dot(bint is_sparse, const floating *Xd, int64_t n,
                            const floating *Xdata, const index_t *Xind,
                            const index_t *Xptr, int64_t j,
                            const double *u) noexcept nogil:
    """X[:, j] . u  (dense: column j of the n-row Fortran array Xd)"""
    cdef int64_t k, end
    cdef double s = 0.0, s1 = 0.0
    if is_sparse:
        k = Xptr[j]
        end = Xptr[j + 1]
        while k + 1 < end:
            s += Xdata[k] * u[Xind[k]]
            s1 += Xdata[k + 1] * u[Xind[k + 1]]
            k += 2
        if k < end:
            s += Xdata[k] * u[Xind[k]]
        return s + s1
    if n == 0:
        return 0.0
    if floating is float:
        return sc_bcd_dot_f32(Xd + j * n, u, n)
    else:
        return sc_bcd_dot_f64(Xd + j * n, u, n)


cdef inline void _col_axpy(bint is_sparse, const floating *Xd, int64_t n,
                           const floating *Xdata, const index_t *Xind,
                           const index_t *Xptr, int64_t j, double a,
                           const double *h, double h0, bint uniform,
                           double *u) noexcept nogil:
    """u += a * h * X[:, j]  (h = h0 everywhere when uniform)"""
    cdef int64_t k, i
    if is_sparse:
        if uniform:
            a = a * h0
            for k in range(Xptr[j], Xptr[j + 1]):
                u[Xind[k]] += a * Xdata[k]
        else:
            for k in range(Xptr[j], Xptr[j + 1]):
                i = Xind[k]
                u[i] += a * (h[i] * Xdata[k])
        return
    if n == 0:
        return
    if uniform:
        if floating is float:
            sc_bcd_axpy_f32(a * h0, Xd + j * n, u, n)
        else:
            sc_bcd_axpy_f64(a * h0, Xd + j * n, u, n)
    else:
        if floating is float:
            sc_bcd_waxpy_f32(a, h, Xd + j * n, u, n)
        else:
            sc_bcd_waxpy_f64(a, h, Xd + j * n, u, n)


cdef inline const floating* _dptr(const floating[::1, :] Xd) noexcept nogil:
    return &Xd[0, 0] if Xd.shape[0] > 0 and Xd.shape[1] > 0 else NULL


cdef inline const floating* _vptr(const floating[::1] v) noexcept nogil:
    return &v[0] if v.shape[0] > 0 else NULL


cdef inline const index_t* _iptr(const index_t[::1] v) noexcept nogil:
    return &v[0] if v.shape[0] > 0 else NULL


# ---------------------------------------------------------------------------
# the separable penalty  l1 |v| + l2 v^2 / 2  on  [lo, hi]


cdef inline double _clip(double v, double lo, double hi) noexcept nogil:
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


cdef inline double _soft(double v, double a) noexcept nogil:
    if v > a:
        return v - a
    if v < -a:
        return v + a
    return 0.0


cdef inline double _pen(double v, double l1, double l2) noexcept nogil:
    return l1 * fabs(v) + 0.5 * l2 * v * v


cdef inline double _coord_min(double w, double c, double L, double l1, double l2,
                              double lo, double hi) noexcept nogil:
    """argmin_v  -c (v - w) + L/2 (v - w)^2 + pen(v)."""
    return _clip(_soft(L * w + c, l1) / (L + l2), lo, hi)


cdef inline double _conj(double tau, double l1, double l2, double lo,
                         double hi) noexcept nogil:
    """pen*(tau) = sup_v tau v - pen(v); the caller guarantees it is finite."""
    cdef double v, best
    if l2 > 0:
        v = _clip(_soft(tau, l1) / l2, lo, hi)
        return tau * v - l1 * fabs(v) - 0.5 * l2 * v * v
    best = -INFINITY
    if lo <= 0.0 <= hi:
        best = 0.0
    if lo > -INFINITY:
        v = tau * lo - l1 * fabs(lo)
        if v > best:
            best = v
    if hi < INFINITY:
        v = tau * hi - l1 * fabs(hi)
        if v > best:
            best = v
    return best


cdef inline double _t_max(double tau, double l1, double l2, double lo,
                          double hi) noexcept nogil:
    """Largest t in [0, 1] with pen*(t tau) finite."""
    if l2 > 0:
        return 1.0
    if hi == INFINITY and tau > l1:
        return l1 / tau
    if lo == -INFINITY and tau < -l1:
        return l1 / (-tau)
    return 1.0


cdef inline double _fenchel_young(double v, double tau, double l1, double l2,
                                  double lo, double hi) noexcept nogil:
    cdef double r = _pen(v, l1, l2) + _conj(tau, l1, l2, lo, hi) - v * tau
    return r if r > 0 else 0.0


# ---------------------------------------------------------------------------
# the penalty of the block solver: the closed form above, or a user penalty
# given as two C function pointers (numba cfuncs) value(v) and
# prox(v, step) = argmin_x (x - v)^2 / (2 step) + g(x). The solver is
# instantiated once per kind (fused type), so the closed form pays nothing
# for the user path: the choice is made once per call, not per coordinate.

ctypedef double (*unary_fn)(double) noexcept nogil
ctypedef double (*binary_fn)(double, double) noexcept nogil

ctypedef struct ClosedPen:
    double l1
    double l2
    double lo
    double hi

ctypedef struct UserPen:
    unary_fn value
    binary_fn prox

ctypedef fused pen_t:
    ClosedPen
    UserPen


cdef inline double _p_l2(pen_t *p) noexcept nogil:
    """the strong convexity the coordinate model gains from the penalty"""
    if pen_t is ClosedPen:
        return p.l2
    else:
        return 0.0


cdef inline double _p_step(pen_t *p, double w, double c, double L) noexcept nogil:
    """argmin_v  -c (v - w) + L/2 (v - w)^2 + g(v) = prox_{g/L}(w + c/L)."""
    if pen_t is ClosedPen:
        return _coord_min(w, c, L, p.l1, p.l2, p.lo, p.hi)
    else:
        return p.prox(w + c / L, 1.0 / L)


cdef inline double _p_value(pen_t *p, double v) noexcept nogil:
    if pen_t is ClosedPen:
        return _pen(v, p.l1, p.l2)
    else:
        return p.value(v)


cdef inline double _p_project(pen_t *p, double v) noexcept nogil:
    """onto the domain where the closed form knows it (the box); a user
    penalty's value is +inf outside its domain, which rejects the point"""
    if pen_t is ClosedPen:
        return _clip(v, p.lo, p.hi)
    else:
        return v


# ---------------------------------------------------------------------------
# small dense solve for Anderson extrapolation


cdef int _solve_small(double *A, double *b, int K) noexcept nogil:
    """Solve A z = b in place (b <- z), Gaussian elimination with partial
    pivoting; A is K x K row-major and destroyed. Returns 0 on success."""
    cdef int i, j, k, piv
    cdef double m, t
    for k in range(K):
        piv = k
        for i in range(k + 1, K):
            if fabs(A[i * K + k]) > fabs(A[piv * K + k]):
                piv = i
        if A[piv * K + k] == 0.0:
            return 1
        if piv != k:
            for j in range(K):
                t = A[k * K + j]
                A[k * K + j] = A[piv * K + j]
                A[piv * K + j] = t
            t = b[k]
            b[k] = b[piv]
            b[piv] = t
        for i in range(k + 1, K):
            m = A[i * K + k] / A[k * K + k]
            for j in range(k, K):
                A[i * K + j] -= m * A[k * K + j]
            b[i] -= m * b[k]
    for k in range(K - 1, -1, -1):
        t = b[k]
        for j in range(k + 1, K):
            t -= A[k * K + j] * b[j]
        b[k] = t / A[k * K + k]
    return 0


cdef double _quad(const double *u, const double *inv_h, bint uniform, double h0,
                  int64_t n, double off, double sum_h) noexcept nogil:
    """sum_i h_i r_i^2 with h r = u + off h and sum_i h_i r_i = 0."""
    cdef int64_t i
    cdef double s = 0.0
    if uniform:
        for i in range(n):
            s += u[i] * u[i]
        s /= h0
    else:
        for i in range(n):
            s += u[i] * u[i] * inv_h[i]
    return s - off * off * sum_h


# ---------------------------------------------------------------------------
# the block solver


cdef tuple _wls_cd_impl(pen_t pen, bint is_sparse,
                       const floating[::1, :] Xd,
                       const floating[::1] Xdata, const index_t[::1] Xind,
                       const index_t[::1] Xptr,
                       const int64_t[::1] ws,
                       double[::1] w, double[::1] u,
                       const double[::1] h, double h0, const double[::1] inv_h, double sum_h,
                       const double[::1] xbar, const double[::1] colsum, double offset,
                       const double[::1] L,
                       int max_epochs, double tol, int check_every,
                       double[:, ::1] anderson, double[::1] u_tmp, double[::1] cbuf):
    """The body of :func:`wls_cd` for one kind of penalty."""
    cdef const floating *xd = _dptr(Xd)
    cdef const floating *xdata = _vptr(Xdata)
    cdef const index_t *xind = _iptr(Xind)
    cdef const index_t *xptr = _iptr(Xptr)
    cdef int64_t nrow = Xd.shape[0]
    cdef int64_t nws = ws.shape[0]
    cdef int64_t n = u.shape[0]
    cdef bint uniform = h.shape[0] == 0
    cdef bint center = xbar.shape[0] > 0
    cdef const double *hp = NULL if uniform else &h[0]
    cdef const double *ihp = NULL if uniform else &inv_h[0]
    cdef int K = anderson.shape[0] - 1 if anderson.shape[0] > 0 else 0
    cdef int slot = 0
    cdef int epoch = 0, epochs_done = 0
    cdef int64_t k, j, m
    cdef double raw, cj, wj, new, d, Lj, sqn, t, gap = INFINITY, Q, obj_c, obj_t
    cdef double off = offset, off_t, sum_u2, zsum
    cdef double C[100]
    cdef double z[10]
    cdef int a_, b_
    cdef sc_poll_t poll
    cdef int stopped = 0
    cdef double l2 = _p_l2(&pen)
    if K > 9:
        K = 9
    if nws == 0:
        return 0, 0.0, offset
    sc_poll_init(&poll)
    with nogil:
        sum_u2 = _quad(&u[0], ihp, uniform, h0, n, 0.0, 0.0)
        for epoch in range(max_epochs):
            if sc_poll(&poll):
                stopped = 1
                break
            for k in range(nws):
                j = ws[k]
                Lj = L[j]
                if Lj + l2 <= 0.0:
                    continue
                raw = _col_dot(is_sparse, xd, nrow, xdata, xind, xptr, j, &u[0])
                cj = raw + off * colsum[j] if center else raw
                wj = w[j]
                new = _p_step(&pen, wj, cj, Lj)
                d = new - wj
                if d != 0.0:
                    _col_axpy(is_sparse, xd, nrow, xdata, xind, xptr, j, -d, hp, h0,
                              uniform, &u[0])
                    sqn = Lj + xbar[j] * colsum[j] if center else Lj
                    sum_u2 += d * (d * sqn - 2.0 * raw)
                    if center:
                        off += d * xbar[j]
                    w[j] = new
            epochs_done = epoch + 1

            if K >= 2:
                for k in range(nws):
                    anderson[slot, k] = w[ws[k]]
                slot += 1
                if slot == K + 1:
                    slot = 0
                    # C = U U^T with U_a = iterate_{a+1} - iterate_a
                    for a_ in range(K):
                        for b_ in range(a_, K):
                            t = 0.0
                            for k in range(nws):
                                t += ((anderson[a_ + 1, k] - anderson[a_, k])
                                      * (anderson[b_ + 1, k] - anderson[b_, k]))
                            C[a_ * K + b_] = t
                            C[b_ * K + a_] = t
                    t = 0.0
                    for a_ in range(K):
                        t += C[a_ * K + a_]
                    for a_ in range(K):
                        C[a_ * K + a_] += 1e-10 * t / K + 1e-300
                        z[a_] = 1.0
                    if _solve_small(C, z, K) == 0:
                        zsum = 0.0
                        for a_ in range(K):
                            zsum += z[a_]
                        if zsum != 0.0:
                            # trial point: u_tmp, off_t, cbuf holds the extrapolated block
                            memcpy(&u_tmp[0], &u[0], n * sizeof(double))
                            off_t = off
                            obj_c = 0.0
                            obj_t = 0.0
                            for k in range(nws):
                                t = 0.0
                                for a_ in range(K):
                                    t += z[a_] * anderson[a_ + 1, k]
                                new = _p_project(&pen, t / zsum)
                                cbuf[k] = new
                                j = ws[k]
                                obj_c += _p_value(&pen, w[j])
                                obj_t += _p_value(&pen, new)
                                d = new - w[j]
                                if d != 0.0:
                                    _col_axpy(is_sparse, xd, nrow, xdata, xind, xptr, j, -d,
                                              hp, h0, uniform, &u_tmp[0])
                                    if center:
                                        off_t += d * xbar[j]
                            obj_c += 0.5 * _quad(&u[0], ihp, uniform, h0, n, off, sum_h)
                            obj_t += 0.5 * _quad(&u_tmp[0], ihp, uniform, h0, n, off_t, sum_h)
                            if obj_t < obj_c:
                                memcpy(&u[0], &u_tmp[0], n * sizeof(double))
                                off = off_t
                                for k in range(nws):
                                    w[ws[k]] = cbuf[k]
                    sum_u2 = _quad(&u[0], ihp, uniform, h0, n, 0.0, 0.0)

            if epochs_done % check_every == 0 or epochs_done == max_epochs:
                t = 1.0
                for k in range(nws):
                    j = ws[k]
                    raw = _col_dot(is_sparse, xd, nrow, xdata, xind, xptr, j, &u[0])
                    cj = raw + off * colsum[j] if center else raw
                    cbuf[k] = cj
                    if pen_t is ClosedPen:
                        d = _t_max(cj, pen.l1, pen.l2, pen.lo, pen.hi)
                    else:
                        d = 0.0   # no conjugate: the progress bound below
                    if d < t:
                        t = d
                Q = sum_u2 - off * off * sum_h if center else sum_u2
                if t > 0.0:
                    gap = 0.5 * (1.0 - t) * (1.0 - t) * Q
                    if pen_t is ClosedPen:
                        for k in range(nws):
                            gap += _fenchel_young(w[ws[k]], t * cbuf[k], pen.l1, pen.l2,
                                                  pen.lo, pen.hi)
                else:
                    # no finite dual bound: summed progress of exact coordinate steps
                    gap = 0.0
                    for k in range(nws):
                        j = ws[k]
                        Lj = L[j]
                        if Lj + l2 <= 0.0:
                            continue
                        wj = w[j]
                        new = _p_step(&pen, wj, cbuf[k], Lj)
                        d = new - wj
                        gap += (cbuf[k] * d - 0.5 * Lj * d * d
                                - _p_value(&pen, new) + _p_value(&pen, wj))
                if gap <= tol:
                    break
    if stopped:
        raise_interrupt()
    return epochs_done, gap, off


def wls_cd(bint is_sparse,
           const floating[::1, :] Xd,
           const floating[::1] Xdata, const index_t[::1] Xind, const index_t[::1] Xptr,
           const int64_t[::1] ws,
           double[::1] w, double[::1] u,
           const double[::1] h, double h0, const double[::1] inv_h, double sum_h,
           const double[::1] xbar, const double[::1] colsum, double offset,
           const double[::1] L,
           double l1, double l2, double lo, double hi,
           int max_epochs, double tol, int check_every,
           double[:, ::1] anderson, double[::1] u_tmp, double[::1] cbuf,
           size_t user_value=0, size_t user_prox=0):
    """Cyclic coordinate descent on the block ``ws`` of the weighted
    least-squares model, with Anderson extrapolation and a duality-gap stop.

    ``w`` (length p) and ``u`` (length n) are updated in place; ``L[j]`` is
    the (centred) curvature sum_i h_i (x_ij - xbar_j)^2 and ``colsum[j]`` is
    sum_i h_i x_ij. ``anderson`` has K + 1 rows (K >= 2 turns extrapolation
    on) and len(ws) columns. Returns ``(epochs, gap, offset)``: the gap is the
    duality gap of the block subproblem, or, where the penalty leaves it
    infinite (no penalty, plain bounds), the summed coordinate progress bound.

    With ``user_value`` and ``user_prox`` (addresses of C functions
    ``double value(double)`` and ``double prox(double v, double step)``,
    e.g. numba cfuncs) the penalty is the user's and ``l1, l2, lo, hi`` are
    ignored: the coordinate step is ``prox(w + c / L, 1 / L)`` and the gap
    is the summed progress bound (no conjugate is known).
    """
    cdef ClosedPen cp
    cdef UserPen up
    if user_prox != 0:
        up.value = <unary_fn> user_value
        up.prox = <binary_fn> user_prox
        return _wls_cd_impl(up, is_sparse, Xd, Xdata, Xind, Xptr, ws, w, u, h, h0, inv_h,
                            sum_h, xbar, colsum, offset, L, max_epochs, tol, check_every,
                            anderson, u_tmp, cbuf)
    cp.l1 = l1
    cp.l2 = l2
    cp.lo = lo
    cp.hi = hi
    return _wls_cd_impl(cp, is_sparse, Xd, Xdata, Xind, Xptr, ws, w, u, h, h0, inv_h,
                        sum_h, xbar, colsum, offset, L, max_epochs, tol, check_every,
                        anderson, u_tmp, cbuf)


# ---------------------------------------------------------------------------
# helpers for the Python engine


def col_stats(bint is_sparse,
              const floating[::1, :] Xd,
              const floating[::1] Xdata, const index_t[::1] Xind, const index_t[::1] Xptr,
              const int64_t[::1] cols, const double[::1] h,
              double[::1] sum_hx, double[::1] sum_hxx, int n_threads):
    """sum_i h_i x_ij and sum_i h_i x_ij^2 for j in ``cols`` (h empty: 1)."""
    cdef int64_t ncols = cols.shape[0], k, j, kk, i, n
    cdef bint uniform = h.shape[0] == 0
    cdef const double *hp = NULL if uniform else &h[0]
    cdef double a, b, x, y
    n = Xd.shape[0]
    for k in prange(ncols, nogil=True, schedule="static", num_threads=n_threads):
        j = cols[k]
        if is_sparse:
            a = 0.0
            b = 0.0
            for kk in range(Xptr[j], Xptr[j + 1]):
                x = Xdata[kk]
                if uniform:
                    y = x
                else:
                    y = hp[Xind[kk]] * x
                a = a + y
                b = b + y * x
            sum_hx[k] = a
            sum_hxx[k] = b
        elif n > 0:
            if floating is float:
                sc_bcd_wstats_f32(hp, &Xd[0, j], n, &sum_hx[k], &sum_hxx[k])
            else:
                sc_bcd_wstats_f64(hp, &Xd[0, j], n, &sum_hx[k], &sum_hxx[k])
        else:
            sum_hx[k] = 0.0
            sum_hxx[k] = 0.0


def xt_dot(bint is_sparse,
           const floating[::1, :] Xd,
           const floating[::1] Xdata, const index_t[::1] Xind, const index_t[::1] Xptr,
           const int64_t[::1] cols, const double[::1, :] U, double[:, ::1] out,
           int n_threads):
    """out[k, c] = X[:, cols[k]] . U[:, c]; columns in parallel (disjoint
    outputs, identical for every thread count)."""
    cdef const floating *xd = _dptr(Xd)
    cdef const floating *xdata = _vptr(Xdata)
    cdef const index_t *xind = _iptr(Xind)
    cdef const index_t *xptr = _iptr(Xptr)
    cdef int64_t nrow = Xd.shape[0]
    cdef int64_t ncols = cols.shape[0], k, c, nout = U.shape[1]
    if U.shape[0] == 0:
        out[:, :] = 0.0
        return
    if n_threads == 1:
        with nogil:
            for c in range(nout):
                for k in range(ncols):
                    out[k, c] = _col_dot(is_sparse, xd, nrow, xdata, xind, xptr, cols[k], &U[0, c])
        return
    for k in prange(ncols, nogil=True, schedule="static", chunksize=256, num_threads=n_threads):
        for c in range(nout):
            out[k, c] = _col_dot(is_sparse, xd, nrow, xdata, xind, xptr, cols[k], &U[0, c])


def block_matvec(bint is_sparse,
                 const floating[::1, :] Xd,
                 const floating[::1] Xdata, const index_t[::1] Xind, const index_t[::1] Xptr,
                 const int64_t[::1] cols, const double[:, ::1] D, double[::1, :] out):
    """out[:, c] += sum_k X[:, cols[k]] * D[k, c]."""
    cdef const floating *xd = _dptr(Xd)
    cdef const floating *xdata = _vptr(Xdata)
    cdef const index_t *xind = _iptr(Xind)
    cdef const index_t *xptr = _iptr(Xptr)
    cdef int64_t nrow = Xd.shape[0]
    cdef int64_t ncols = cols.shape[0], k, c, nout = out.shape[1]
    cdef double d
    if out.shape[0] == 0:
        return
    with nogil:
        for c in range(nout):
            for k in range(ncols):
                d = D[k, c]
                if d != 0.0:
                    _col_axpy(is_sparse, xd, nrow, xdata, xind, xptr, cols[k], d, NULL,
                              1.0, True, &out[0, c])


def softmax_cd(bint is_sparse,
               const floating[::1, :] Xd,
               const floating[::1] Xdata, const index_t[::1] Xind, const index_t[::1] Xptr,
               const int64_t[::1] ws,
               const double[:, ::1] W, double[:, ::1] Dlt, const double[:, ::1] G,
               const double[::1, :] HP, const double[::1, :] P,
               double[::1, :] Q, double[::1] S,
               const double[:, ::1] Lc,
               bint intercept, const double[::1] gb, double[::1] db,
               double l1, double l2, double lo, double hi,
               int max_epochs, double tol, double rtol):
    """Coordinate descent on the proximal-Newton model of the multinomial loss
    with its exact Hessian, over the block ``ws`` and every class.

    For coordinate (j, c) the model gradient is ``G[k, c] + X_j . (HP_c *
    (Q_c - S))`` with ``HP = h * P``, ``Q = X delta`` (plus the intercept
    steps) and ``S_i = sum_c P_ic Q_ic``; ``Lc[k, c]`` is the diagonal of the
    Hessian. ``Dlt`` (len(ws), K) holds the step of the coefficients ``W``
    (len(ws), K), ``db`` that of the intercepts (gradient ``gb``). Stops when
    an epoch decreases the model by at most ``tol`` or by at most ``rtol``
    times the decrease of all epochs so far. Returns the epochs run.
    """
    cdef int64_t nws = ws.shape[0], n = Q.shape[0], K = Q.shape[1]
    cdef int64_t k, c, c2, j, kk, i
    cdef int epoch, done = 0
    cdef double g, L, v, new, d, dec, t, total = 0.0
    cdef sc_poll_t poll
    cdef int stopped = 0
    sc_poll_init(&poll)
    with nogil:
        for epoch in range(max_epochs):
            if sc_poll(&poll):
                stopped = 1
                break
            dec = 0.0
            for k in range(nws):
                j = ws[k]
                for c in range(K):
                    L = Lc[k, c]
                    if L + l2 <= 0.0:
                        continue
                    g = G[k, c]
                    if is_sparse:
                        for kk in range(Xptr[j], Xptr[j + 1]):
                            i = Xind[kk]
                            g += Xdata[kk] * HP[i, c] * (Q[i, c] - S[i])
                    else:
                        for i in range(n):
                            g += Xd[i, j] * HP[i, c] * (Q[i, c] - S[i])
                    v = W[k, c] + Dlt[k, c]
                    new = _clip(_soft(L * v - g, l1) / (L + l2), lo, hi)
                    d = new - v
                    if d == 0.0:
                        continue
                    dec += -(g * d + 0.5 * L * d * d + _pen(new, l1, l2) - _pen(v, l1, l2))
                    Dlt[k, c] = Dlt[k, c] + d
                    if is_sparse:
                        for kk in range(Xptr[j], Xptr[j + 1]):
                            i = Xind[kk]
                            Q[i, c] += d * Xdata[kk]
                            S[i] += d * P[i, c] * Xdata[kk]
                    else:
                        for i in range(n):
                            Q[i, c] += d * Xd[i, j]
                            S[i] += d * P[i, c] * Xd[i, j]
            if intercept:
                for c in range(K):
                    g = gb[c]
                    L = 0.0
                    for i in range(n):
                        g += HP[i, c] * (Q[i, c] - S[i])
                        L += HP[i, c] * (1.0 - P[i, c])
                    if L <= 0.0:
                        continue
                    d = -g / L
                    dec += 0.5 * g * g / L
                    db[c] += d
                    for i in range(n):
                        Q[i, c] += d
                        S[i] += d * P[i, c]
            done = epoch + 1
            total += dec
            if dec <= tol or dec <= rtol * total:
                break
    if stopped:
        raise_interrupt()
    return done


# ---------------------------------------------------------------------------
# per-coordinate passes of the outer loop (scores, gap terms, screening)


cdef inline double _subdiff_dist(double w, double c, double l1, double l2,
                                 double lo, double hi) noexcept nogil:
    """Distance of c - l2 w to the subdifferential of l1|.| + box at w."""
    cdef double g = c - l2 * w
    cdef double r
    if w == 0.0:
        if lo < 0.0 < hi:
            r = fabs(g) - l1
        elif lo == 0.0 and hi > 0.0:
            r = g - l1
        elif hi == 0.0 and lo < 0.0:
            r = -g - l1
        else:
            r = 0.0
        return r if r > 0.0 else 0.0
    if w == lo:
        r = g + l1
        return r if r > 0.0 else 0.0
    if w == hi:
        r = l1 - g
        return r if r > 0.0 else 0.0
    return fabs(g - (l1 if w > 0 else -l1))


def coord_passes(int what, const double[::1, :] W, const int64_t[::1] cols,
                 const double[:, ::1] C, const double[::1] L, double t,
                 double l1, double l2, double lo, double hi, double[::1] out):
    """One pass over ``cols`` (C is (len(cols), K), W is (p, K)).

    what = 0: out[k] = sqrt(sum_c subdiff_dist^2)  (GS score);
    what = 1: out[k] = sum_c (L[k] + l2) d^2 / 2 for the exact step d with
              curvature L[k], the model decrease of that step (GS-q score:
              GSL with the coordinate constants, GSD with a diagonal bound);
    what = 2: returns sum_k,c FenchelYoung(w, t c) (penalty part of the gap);
    what = 3: returns the largest t <= 1 with pen*(t c) finite everywhere;
    what = 4: out[k] = 1 if the gap-safe test removes the feature, where
              L[k] holds the sphere radius sqrt(2 gap L_j).
    """
    cdef int64_t m = cols.shape[0], K = C.shape[1], k, c, j
    cdef double s, w, cc, d, new, Lk, r, tt
    cdef double acc = 0.0
    cdef double tmin = 1.0
    # plain L1 (possibly with bounds): at w = 0 a coordinate with |c| <= l1
    # contributes nothing to any of the passes; test that first
    cdef bint plain = l2 == 0.0 and lo < 0.0 < hi
    with nogil:
        for k in range(m):
            j = cols[k]
            if what == 0:
                s = 0.0
                for c in range(K):
                    d = _subdiff_dist(W[j, c], C[k, c], l1, l2, lo, hi)
                    s += d * d
                out[k] = sqrt(s)
            elif what == 1:
                s = 0.0
                Lk = L[k]
                for c in range(K):
                    w = W[j, c]
                    cc = C[k, c]
                    if plain and w == 0.0 and fabs(cc) <= l1:
                        continue
                    new = _coord_min(w, cc, Lk, l1, l2, lo, hi)
                    d = new - w
                    # the model is (L + l2)-strongly convex: its decrease is
                    # (L + l2) d^2 / 2 when the step stays in one orthant and at
                    # least that otherwise; this form has no cancellation
                    s += 0.5 * (Lk + l2) * d * d
                out[k] = s
            elif what == 2:
                for c in range(K):
                    w = W[j, c]
                    if plain and w == 0.0 and fabs(t * C[k, c]) <= l1:
                        continue
                    acc += _fenchel_young(w, t * C[k, c], l1, l2, lo, hi)
            elif what == 3:
                for c in range(K):
                    tt = _t_max(C[k, c], l1, l2, lo, hi)
                    if tt < tmin:
                        tmin = tt
            else:
                s = 1.0
                for c in range(K):
                    cc = t * C[k, c]
                    if lo == 0.0:
                        r = cc + L[k]
                    elif hi == 0.0:
                        r = -cc + L[k]
                    else:
                        r = fabs(cc) + L[k]
                    if r >= l1:
                        s = 0.0
                out[k] = s
    if what == 2:
        return acc
    if what == 3:
        return tmin
    return None


# ---------------------------------------------------------------------------
# user functions (numba cfuncs) applied over arrays, without the GIL


def user_map(size_t fn, int arity, const double[::1] a, const double[::1] b,
             double[::1] out):
    """out[i] = fn(a[i]) (arity 1) or fn(a[i], b[i]) (arity 2), ``fn`` the
    address of a C function on doubles."""
    cdef int64_t i, n = out.shape[0]
    cdef unary_fn f1 = <unary_fn> fn
    cdef binary_fn f2 = <binary_fn> fn
    with nogil:
        if arity == 1:
            for i in range(n):
                out[i] = f1(a[i])
        else:
            for i in range(n):
                out[i] = f2(a[i], b[i])


def user_sum(size_t fn, int arity, const double[::1] a, const double[::1] b,
             const double[::1] h):
    """sum_i h[i] fn(a[i] [, b[i]]) (h empty: weight 1), summed in order."""
    cdef int64_t i, n = a.shape[0]
    cdef unary_fn f1 = <unary_fn> fn
    cdef binary_fn f2 = <binary_fn> fn
    cdef bint weighted = h.shape[0] > 0
    cdef double s = 0.0, v
    with nogil:
        for i in range(n):
            v = f1(a[i]) if arity == 1 else f2(a[i], b[i])
            s += h[i] * v if weighted else v
    return s


def user_coord_min(size_t prox, const double[::1] w, const double[::1] c,
                   const double[::1] L, double[::1] out):
    """out[i] = prox(w[i] + c[i] / L[i], 1 / L[i]): the exact coordinate
    step of a user penalty (w[i] where L[i] <= 0)."""
    cdef int64_t i, n = out.shape[0]
    cdef binary_fn f = <binary_fn> prox
    with nogil:
        for i in range(n):
            if L[i] > 0.0:
                out[i] = f(w[i] + c[i] / L[i], 1.0 / L[i])
            else:
                out[i] = w[i]
