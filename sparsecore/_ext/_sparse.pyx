"""Thin bindings of the general sparse kernels (CSR checks and SpGEMM).

Each function takes numpy arrays the Python layer has already validated and
converted, releases the GIL around the C call, and maps status codes to
exceptions. See spgemm.h for the contracts.
"""
cimport numpy as cnp
from libc.stdint cimport int64_t

from sparsecore._ext._kernels cimport (
    SC_OK, SC_ERR_NOMEM, sc_csr_check, sc_csr_is_sorted, sc_spgemm_flops,
    sc_partition, sc_spgemm_symbolic, sc_spgemm_numeric,
)
from sparsecore._ext._arrays cimport data_ptr, writable_ptr

import numpy as np

cnp.import_array()

INDEX_CODES = {np.dtype(np.int32): 0, np.dtype(np.int64): 1}
VALUE_CODES = {
    np.dtype(np.float32): 0,
    np.dtype(np.float64): 1,
    np.dtype(np.complex64): 2,
    np.dtype(np.complex128): 3,
    np.dtype(np.uint64): 4,
}

cdef object I64 = np.dtype(np.int64)


cdef _raise_status(int status, str what):
    if status == SC_ERR_NOMEM:
        raise MemoryError(f"{what}: a workspace allocation failed")
    raise RuntimeError(f"{what}: kernel failed with status {status}")


def csr_check(cnp.ndarray indptr, cnp.ndarray indices, int64_t m, int64_t n):
    """Return (code, where): 0 when the CSR structure is valid, else the
    code of sc_csr_check and the row or position at fault."""
    cdef object it = indptr.dtype
    cdef int itype = INDEX_CODES[it]
    cdef const void *p = data_ptr(indptr, it, m + 1)
    cdef const void *j = data_ptr(indices, it, 0)
    cdef int64_t nnz = indices.size
    cdef int64_t where = -1
    cdef int code
    with nogil:
        code = sc_csr_check(itype, m, n, nnz, p, j, &where)
    return code, where


def csr_is_sorted(cnp.ndarray indptr, cnp.ndarray indices, int64_t m):
    """True when every row has strictly increasing column indices."""
    cdef object it = indptr.dtype
    cdef int itype = INDEX_CODES[it]
    cdef const void *p = data_ptr(indptr, it, m + 1)
    cdef const void *j = data_ptr(indices, it, 0)
    cdef int res
    with nogil:
        res = sc_csr_is_sorted(itype, m, p, j)
    return bool(res)


def spgemm_flops(cnp.ndarray Ap, cnp.ndarray Aj, cnp.ndarray Bp, int64_t m,
                 int64_t k, int n_threads, cnp.ndarray fp):
    """Fill fp (int64, m + 1) with prefix sums of the multiplies per row of
    A @ B; return (total multiplies, lower bound of nnz(A @ B))."""
    cdef object it = Ap.dtype
    cdef int itype = INDEX_CODES[it]
    cdef const void *ap = data_ptr(Ap, it, m + 1)
    cdef const void *aj = data_ptr(Aj, it, 0)
    cdef const void *bp = data_ptr(Bp, it, k + 1)
    cdef int64_t *out = <int64_t *>writable_ptr(fp, I64, m + 1)
    cdef int64_t lower = 0, total
    with nogil:
        total = sc_spgemm_flops(itype, m, ap, aj, bp, n_threads, out, &lower)
    return total, lower


def partition(cnp.ndarray fp, int64_t m, int64_t row_cost, int ntasks):
    """Cut rows into ntasks ranges of about equal cost (int64 bounds)."""
    bounds = np.empty(ntasks + 1, dtype=np.int64)
    cdef const int64_t *f = <const int64_t *>data_ptr(fp, I64, m + 1)
    cdef int64_t *b = <int64_t *>writable_ptr(bounds, I64, ntasks + 1)
    with nogil:
        sc_partition(m, f, row_cost, ntasks, b)
    return bounds


def spgemm_symbolic(cnp.ndarray Ap, cnp.ndarray Aj, cnp.ndarray Bp, cnp.ndarray Bj,
                    int64_t m, int64_t k, int64_t n, bint b_no_dup,
                    cnp.ndarray bounds, int n_threads, cnp.ndarray Cs):
    """Fill Cs (int64, m + 1) with prefix sums of the structural nnz per row."""
    cdef object it = Ap.dtype
    cdef int itype = INDEX_CODES[it]
    cdef const void *ap = data_ptr(Ap, it, m + 1)
    cdef const void *aj = data_ptr(Aj, it, 0)
    cdef const void *bp = data_ptr(Bp, it, k + 1)
    cdef const void *bj = data_ptr(Bj, it, 0)
    cdef int ntasks = bounds.size - 1
    cdef const int64_t *bd = <const int64_t *>data_ptr(bounds, I64, ntasks + 1)
    cdef int64_t *cs = <int64_t *>writable_ptr(Cs, I64, m + 1)
    cdef int status
    with nogil:
        status = sc_spgemm_symbolic(itype, m, n, ap, aj, bp, bj, b_no_dup,
                                    ntasks, bd, n_threads, cs)
    if status != SC_OK:
        _raise_status(status, "spgemm (symbolic pass)")


def spgemm_numeric(cnp.ndarray Ap, cnp.ndarray Aj, cnp.ndarray Ax,
                   cnp.ndarray Bp, cnp.ndarray Bj, cnp.ndarray Bx,
                   int64_t m, int64_t k, int64_t n, bint b_sorted,
                   cnp.ndarray Cs, cnp.ndarray bounds, int n_threads,
                   cnp.ndarray Cp, cnp.ndarray Cj, cnp.ndarray Cx):
    """Fill Cp, Cj, Cx; return the nnz kept after dropping exact zeros."""
    cdef object it = Ap.dtype, ot = Cp.dtype, vt = Ax.dtype
    cdef int itype = INDEX_CODES[it], otype = INDEX_CODES[ot], vtype = VALUE_CODES[vt]
    cdef int64_t nnz = Cs[m]
    cdef const void *ap = data_ptr(Ap, it, m + 1)
    cdef const void *aj = data_ptr(Aj, it, 0)
    cdef const void *ax = data_ptr(Ax, vt, 0)
    cdef const void *bp = data_ptr(Bp, it, k + 1)
    cdef const void *bj = data_ptr(Bj, it, 0)
    cdef const void *bx = data_ptr(Bx, vt, 0)
    cdef int ntasks = bounds.size - 1
    cdef const int64_t *bd = <const int64_t *>data_ptr(bounds, I64, ntasks + 1)
    cdef const int64_t *cs = <const int64_t *>data_ptr(Cs, I64, m + 1)
    cdef void *cp = writable_ptr(Cp, ot, m + 1)
    cdef void *cj = writable_ptr(Cj, ot, nnz)
    cdef void *cx = writable_ptr(Cx, vt, nnz)
    cdef int64_t kept = 0
    cdef int status
    with nogil:
        status = sc_spgemm_numeric(itype, otype, vtype, m, n, ap, aj, ax, bp, bj, bx,
                                   b_sorted, cs, ntasks, bd, n_threads, cp, cj, cx,
                                   &kept)
    if status != SC_OK:
        _raise_status(status, "spgemm (numeric pass)")
    return kept
