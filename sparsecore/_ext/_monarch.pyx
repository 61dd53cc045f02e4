"""Thin bindings of the Monarch kernels (see monarch.h for the contracts).

The Python layer (sparsecore.formats._monarch, sparsecore.ops._monarch)
validates shapes and dtypes and resolves the thread count; these functions
only read the array layouts, release the GIL and map status codes.
"""
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t

import numpy as np

cnp.import_array()
register_interrupt_check()  # the kernels poll for Ctrl-C

from sparsecore._ext._arrays cimport register_interrupt_check, raise_interrupt

cdef extern from "sc_common.h" nogil:
    int SC_OK
    int SC_ERR_NOMEM
    int SC_ERR_INTERRUPTED

cdef extern from "monarch.h" nogil:
    int sc_monarch_matmul(int vtype, int transpose,
                          int64_t k, int64_t q, int64_t p,
                          int64_t l, int64_t s, int64_t r,
                          const void *w1, const void *w2,
                          const void *w1t, const void *w2t, int64_t nb,
                          const void *X, int64_t x_rs, int64_t x_cs,
                          void *Y, int64_t y_rs, int64_t y_cs,
                          int64_t panel, int n_threads)
    int sc_monarch_project_power(int vtype,
                                 int64_t k, int64_t q, int64_t p,
                                 int64_t l, int64_t s, int64_t r,
                                 const void *W, int64_t ldw,
                                 int max_iter, double tol,
                                 void *w1, void *w2, double *err2, int32_t *iters,
                                 int n_threads)

__all__ = ["matmul", "project_power", "KERNEL_DTYPES"]

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
cdef object F32 = np.dtype(np.float32)
cdef object F64 = np.dtype(np.float64)


cdef int _vtype(object dt) except -1:
    if dt == F32:
        return 0
    if dt == F64:
        return 1
    raise RuntimeError(f"internal error: Monarch kernel called with dtype {dt}")


cdef int64_t _stride(cnp.ndarray a, int axis, int64_t itemsize) except? -1:
    cdef int64_t st = a.strides[axis]
    if st % itemsize:
        raise RuntimeError("internal error: Monarch kernel got a stride that is not "
                           "a multiple of the item size")
    return st // itemsize


cdef _check_blocks(cnp.ndarray w1, cnp.ndarray w2, object dt):
    if (w1.ndim != 3 or w2.ndim != 3 or w1.dtype != dt or w2.dtype != dt
            or not cnp.PyArray_IS_C_CONTIGUOUS(w1) or not cnp.PyArray_IS_C_CONTIGUOUS(w2)):
        raise RuntimeError("internal error: Monarch blocks must be C-contiguous 3-D "
                           f"arrays of dtype {dt}")


def matmul(cnp.ndarray w1, cnp.ndarray w2, cnp.ndarray X, cnp.ndarray Y,
           bint transpose, int n_threads, cnp.ndarray w1t=None, cnp.ndarray w2t=None,
           int64_t panel=0):
    """Write ``op(M) @ X`` into ``Y`` (1-D or 2-D, any strides) and return it.

    ``w1`` has shape (k, q, p), ``w2`` (l, s, r); with ``transpose`` the
    product is ``M.T @ X``. ``w1t``/``w2t``: optional transposed blocks for
    batch-1 products. ``panel`` (0: automatic) is the number of batch columns
    a task works on.
    """
    cdef object dt = w1.dtype
    cdef int vtype = _vtype(dt)
    _check_blocks(w1, w2, dt)
    cdef const void *pw1t = NULL
    cdef const void *pw2t = NULL
    if w1t is not None or w2t is not None:
        _check_blocks(w1t, w2t, dt)
        if (w1t.shape[0] != w1.shape[0] or w1t.shape[1] != w1.shape[2]
                or w1t.shape[2] != w1.shape[1] or w2t.shape[0] != w2.shape[0]
                or w2t.shape[1] != w2.shape[2] or w2t.shape[2] != w2.shape[1]):
            raise RuntimeError("internal error: transposed Monarch blocks have wrong shapes")
        pw1t = cnp.PyArray_DATA(w1t)
        pw2t = cnp.PyArray_DATA(w2t)
    if X.dtype != dt or Y.dtype != dt or X.ndim != Y.ndim or X.ndim not in (1, 2):
        raise RuntimeError("internal error: Monarch operands must share the blocks' "
                           "dtype and have 1 or 2 dimensions")
    if not cnp.PyArray_ISWRITEABLE(Y):
        raise RuntimeError("internal error: Monarch output is read-only")
    cdef int64_t k = w1.shape[0], q = w1.shape[1], p = w1.shape[2]
    cdef int64_t l = w2.shape[0], s = w2.shape[1], r = w2.shape[2]
    cdef int64_t n_in = l * s if transpose else k * p
    cdef int64_t n_out = k * p if transpose else l * s
    cdef int64_t isz = dt.itemsize
    cdef int64_t nb = 1 if X.ndim == 1 else X.shape[1]
    cdef int64_t x_rs = _stride(X, 0, isz), y_rs = _stride(Y, 0, isz)
    cdef int64_t x_cs = 1, y_cs = 1
    if X.ndim == 2:
        x_cs = _stride(X, 1, isz)
        y_cs = _stride(Y, 1, isz)
        if Y.shape[1] != nb:
            raise RuntimeError("internal error: Monarch operands differ in batch size")
    if X.shape[0] != n_in or Y.shape[0] != n_out or k * q != l * r:
        raise RuntimeError("internal error: Monarch operand shapes do not match the blocks")
    cdef const void *pw1 = cnp.PyArray_DATA(w1)
    cdef const void *pw2 = cnp.PyArray_DATA(w2)
    cdef const void *px = cnp.PyArray_DATA(X)
    cdef void *py = cnp.PyArray_DATA(Y)
    cdef int status
    if n_in == 0 or n_out == 0 or nb == 0 or k * q == 0:
        if n_out and nb:
            Y[...] = 0
        return Y
    with nogil:
        status = sc_monarch_matmul(vtype, transpose, k, q, p, l, s, r, pw1, pw2,
                                   pw1t, pw2t, nb,
                                   px, x_rs, x_cs, py, y_rs, y_cs, panel, n_threads)
    if status == SC_ERR_INTERRUPTED:
        raise_interrupt()
    if status == SC_ERR_NOMEM:
        raise MemoryError("Monarch product: a workspace allocation failed")
    if status != SC_OK:
        raise RuntimeError(f"Monarch product: kernel failed with status {status}")
    return Y


def project_power(cnp.ndarray W, int64_t k, int64_t q, int64_t p,
                  int64_t l, int64_t s, int64_t r, int max_iter, double tol,
                  int n_threads):
    """Power-iteration projection of the C-contiguous 2-D ``W`` onto Monarch
    blocks of shapes (k, q, p) and (l, s, r).

    Returns ``(w1, w2, err2, iters)``: the blocks, each slice's squared
    residual norm (shape (l, k)) and its power iterations (shape (l, k)).
    """
    cdef object dt = W.dtype
    cdef int vtype = _vtype(dt)
    if W.ndim != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(W):
        raise RuntimeError("internal error: projection input must be C-contiguous 2-D")
    if W.shape[0] != l * s or W.shape[1] != k * p or k * q != l * r:
        raise RuntimeError("internal error: projection block shapes do not match W")
    if max_iter < 1:
        raise RuntimeError("internal error: max_iter must be positive")
    w1 = np.empty((k, q, p), dtype=dt)
    w2 = np.empty((l, s, r), dtype=dt)
    err2 = np.zeros((l, k), dtype=np.float64)
    iters = np.zeros((l, k), dtype=np.int32)
    if w1.size == 0 or w2.size == 0 or W.size == 0:
        w1.fill(0)
        w2.fill(0)
        return w1, w2, err2, iters
    cdef const void *pw = cnp.PyArray_DATA(W)
    cdef void *pw1 = cnp.PyArray_DATA(w1)
    cdef void *pw2 = cnp.PyArray_DATA(w2)
    cdef double *pe = <double *>cnp.PyArray_DATA(err2)
    cdef int32_t *pi = <int32_t *>cnp.PyArray_DATA(iters)
    cdef int64_t ldw = W.shape[1]
    cdef int status
    with nogil:
        status = sc_monarch_project_power(vtype, k, q, p, l, s, r, pw, ldw, max_iter, tol,
                                          pw1, pw2, pe, pi, n_threads)
    if status == SC_ERR_INTERRUPTED:
        raise_interrupt()
    if status == SC_ERR_NOMEM:
        raise MemoryError("Monarch projection: a workspace allocation failed")
    if status != SC_OK:
        raise RuntimeError(f"Monarch projection: kernel failed with status {status}")
    return w1, w2, err2, iters
