"""Thin bindings of the general sparse kernels (CSR checks and SpGEMM).

Each function takes numpy arrays the Python layer has already validated and
converted, releases the GIL around the C call, and maps status codes to
exceptions. See spgemm.h for the contracts.
"""
cimport numpy as cnp
from libc.stdint cimport int64_t

from sparsecore._ext._kernels cimport (
    SC_OK, SC_ERR_NOMEM, sc_csr_check, sc_spgemm_flops,
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
    """Return (code, where, sorted): code 0 when the CSR structure is valid,
    else the code of sc_csr_check and the row or position at fault; sorted
    says every row has strictly increasing columns."""
    cdef object it = indptr.dtype
    cdef int itype = INDEX_CODES[it]
    cdef const void *p = data_ptr(indptr, it, m + 1)
    cdef const void *j = data_ptr(indices, it, 0)
    cdef int64_t nnz = indices.size
    cdef int64_t where = -1
    cdef int code, ordered = 0
    with nogil:
        code = sc_csr_check(itype, m, n, nnz, p, j, &where, &ordered)
    return code, where, bool(ordered)


def spgemm(cnp.ndarray Ap, cnp.ndarray Aj, cnp.ndarray Ax,
           cnp.ndarray Bp, cnp.ndarray Bj, cnp.ndarray Bx,
           int64_t m, int64_t k, int64_t n, bint b_sorted, int n_threads,
           int64_t flops_per_thread, int tasks_per_thread, int64_t row_cost,
           int64_t one_pass_flops, int64_t prefetch_bytes, object plan_output):
    """C = A @ B on validated CSR arrays of one index dtype and one value dtype.

    ``plan_output(nnz_lower_bound, nnz)`` is called twice, first with the
    cheap lower bound (nnz None) and then with the exact structural nnz, and
    returns the output index dtype after checking that the output fits (it
    raises MemoryError otherwise). Products of at most ``one_pass_flops``
    multiplies skip the count pass: rows get their multiply count as room and
    are compacted afterwards. B rows are prefetched when B takes more than
    ``prefetch_bytes``. Returns (indptr, indices, data, kept nnz).
    """
    cdef object it = Ap.dtype, vt = Ax.dtype
    cdef int itype = INDEX_CODES[it], vtype = VALUE_CODES[vt]
    cdef const void *ap = data_ptr(Ap, it, m + 1)
    cdef const void *aj = data_ptr(Aj, it, 0)
    cdef const void *ax = data_ptr(Ax, vt, 0)
    cdef const void *bp = data_ptr(Bp, it, k + 1)
    cdef const void *bj = data_ptr(Bj, it, 0)
    cdef const void *bx = data_ptr(Bx, vt, 0)
    cdef cnp.ndarray fp = np.empty(m + 1, dtype=np.int64)
    cdef int64_t *f = <int64_t *>cnp.PyArray_DATA(fp)
    cdef int64_t lower = 0, flops, nnz, kept = 0
    cdef int status, nt, ntasks, otype
    cdef int64_t nnz_b = Bj.size
    cdef int prefetch = nnz_b * (it.itemsize + vt.itemsize) > prefetch_bytes
    with nogil:
        flops = sc_spgemm_flops(itype, m, ap, aj, bp, 1, f, &lower)
    if b_sorted:
        plan_output(lower, None)
    nt = <int>max(1, min(n_threads, flops // flops_per_thread))
    ntasks = 1 if nt == 1 else <int>min(m, nt * tasks_per_thread)
    cdef cnp.ndarray bounds = np.empty(ntasks + 1, dtype=np.int64)
    cdef int64_t *bd = <int64_t *>cnp.PyArray_DATA(bounds)
    with nogil:
        sc_partition(m, f, row_cost, ntasks, bd)
    if flops > one_pass_flops:
        with nogil:
            # the symbolic pass overwrites the flop counts with row sizes
            status = sc_spgemm_symbolic(itype, m, n, ap, aj, bp, bj, b_sorted,
                                        prefetch, ntasks, bd, nt, f)
        if status != SC_OK:
            _raise_status(status, "spgemm (symbolic pass)")
    nnz = f[m]
    ot = np.dtype(plan_output(None, nnz))
    otype = INDEX_CODES[ot]
    cdef cnp.ndarray Cp = np.empty(m + 1, dtype=ot)
    cdef cnp.ndarray Cj = np.empty(nnz, dtype=ot)
    cdef cnp.ndarray Cx = np.empty(nnz, dtype=vt)
    cdef void *cp = cnp.PyArray_DATA(Cp)
    cdef void *cj = cnp.PyArray_DATA(Cj)
    cdef void *cx = cnp.PyArray_DATA(Cx)
    with nogil:
        status = sc_spgemm_numeric(itype, otype, vtype, m, n, ap, aj, ax, bp, bj, bx,
                                   b_sorted, prefetch, f, ntasks, bd, nt, cp, cj, cx,
                                   &kept)
    if status != SC_OK:
        _raise_status(status, "spgemm (numeric pass)")
    return Cp, Cj, Cx, kept
