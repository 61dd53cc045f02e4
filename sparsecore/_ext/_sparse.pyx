"""Thin bindings of the general sparse kernels (CSR checks and SpGEMM).

Each function takes numpy arrays the Python layer has already validated and
converted, releases the GIL around the C call, and maps status codes to
exceptions. See spgemm.h for the contracts.
"""
cimport numpy as cnp
from libc.stdint cimport int64_t, uintptr_t
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer
from cpython.ref cimport Py_INCREF
from libc.stdlib cimport realloc, free

from sparsecore._ext._kernels cimport (
    sc_alloc_room, SC_OK, SC_ERR_NOMEM, SC_ERR_INTERRUPTED, sc_csr_check, sc_spgemm_flops,
    sc_partition, sc_spgemm_symbolic, sc_spgemm_numeric,
    sc_spgemm_onepass, sc_spgemm_count_ranges, sc_binop_f64, sc_spgemm_set_user_ops,
    sc_spgemm_semiring_numeric, sc_spgemm_semiring_onepass, sc_spgemm_masked,
    sc_spgemm_dot_cost, sc_spgemm_masked_dot, sc_semiring_table, sc_semiring_count,
    sc_topk_product, sc_topk_product_flops,
)
from sparsecore._ext._arrays cimport (
    data_ptr, writable_ptr, register_interrupt_check, raise_interrupt,
)

import numpy as np

cnp.import_array()
register_interrupt_check()

INDEX_CODES = {np.dtype(np.int32): 0, np.dtype(np.int64): 1}
VALUE_CODES = {
    np.dtype(np.float32): 0,
    np.dtype(np.float64): 1,
    np.dtype(np.complex64): 2,
    np.dtype(np.complex128): 3,
    np.dtype(np.uint64): 4,
    np.dtype(np.uint8): 5,
}

cdef object I64 = np.dtype(np.int64)


cdef _raise_status(int status, str what):
    if status == SC_ERR_INTERRUPTED:
        raise_interrupt()
    if status == SC_ERR_NOMEM:
        raise MemoryError(f"{what}: a workspace allocation failed")
    raise RuntimeError(f"{what}: kernel failed with status {status}")


def csr_check(cnp.ndarray indptr, cnp.ndarray indices, int64_t m, int64_t n,
              int n_threads=1):
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
        code = sc_csr_check(itype, m, n, nnz, p, j, n_threads, &where, &ordered)
    return code, where, bool(ordered)


cdef int64_t _SAMPLE_RANGES = 8
# Structure scans (checks, flop counts) run in parallel from this many entries.
cdef int64_t _PARALLEL_SCAN = 1 << 18
PARALLEL_SCAN = _PARALLEL_SCAN


cdef void _free_capsule(object capsule) noexcept:
    free(PyCapsule_GetPointer(capsule, NULL))


cdef cnp.ndarray _adopt(void *ptr, int64_t n, object dtype):
    """A numpy array over malloc'd memory, which it frees when collected."""
    cdef cnp.npy_intp dims = n
    cdef cnp.ndarray arr = cnp.PyArray_SimpleNewFromData(1, &dims, dtype.num, ptr)
    capsule = PyCapsule_New(ptr, NULL, _free_capsule)
    Py_INCREF(capsule)  # PyArray_SetBaseObject steals a reference
    cnp.PyArray_SetBaseObject(arr, capsule)
    return arr


cdef double _estimated_compression(int itype, int64_t m, int64_t n, const void *ap,
                                   const void *aj, const void *bp, const void *bj,
                                   bint b_sorted, const int64_t *f) except -1.0:
    """Multiplies per output entry, from the exact counts of a few row blocks
    spread over A."""
    cdef int64_t block = max(1, m // 512)
    cdef cnp.ndarray ranges = np.empty(2 * _SAMPLE_RANGES, dtype=np.int64)
    cdef cnp.ndarray counts = np.zeros(_SAMPLE_RANGES, dtype=np.int64)
    cdef int64_t *r = <int64_t *>cnp.PyArray_DATA(ranges)
    cdef int64_t *c = <int64_t *>cnp.PyArray_DATA(counts)
    cdef int64_t s, start, sampled_flops = 0, sampled_nnz = 0
    cdef int status
    for s in range(_SAMPLE_RANGES):
        start = min(m - block, (m * s) // _SAMPLE_RANGES)
        r[2 * s] = start
        r[2 * s + 1] = start + block
        sampled_flops += f[start + block] - f[start]
    with nogil:
        status = sc_spgemm_count_ranges(itype, n, ap, aj, bp, bj, b_sorted,
                                        <int>_SAMPLE_RANGES, r, c)
    if status != SC_OK:
        _raise_status(status, "spgemm (sampling the row counts)")
    for s in range(_SAMPLE_RANGES):
        sampled_nnz += c[s]
    return sampled_flops / max(1, sampled_nnz)


def spgemm(cnp.ndarray Ap, cnp.ndarray Aj, cnp.ndarray Ax,
           cnp.ndarray Bp, cnp.ndarray Bj, cnp.ndarray Bx,
           int64_t m, int64_t k, int64_t n, bint b_sorted, int n_threads,
           int64_t flops_per_thread, int tasks_per_thread, int64_t row_cost,
           int64_t one_pass_sure_flops, double one_pass_compression,
           int64_t one_pass_bytes, int64_t one_pass_room_bytes,
           int64_t prefetch_bytes, object plan_output, int semiring=0):
    """C = A @ B on validated CSR arrays of one index dtype and one value dtype.

    ``semiring`` is a code of spgemm_semiring.h: 0 (plus-times) runs the
    kernels of spgemm.c, any other the semiring instantiations.

    ``plan_output(nnz_lower_bound, nnz)`` is called with the cheap lower bound
    (nnz None) and then with the exact nnz; it returns the output index dtype
    after checking that the output fits (it raises MemoryError otherwise).

    The one-pass mode (no symbolic pass; rows written into scratch with room
    for every multiply, then copied out) is taken for products of at most
    ``one_pass_sure_flops`` multiplies, and for products whose room takes at
    most ``one_pass_room_bytes`` when a sample of rows shows at least
    ``one_pass_compression`` multiplies per output entry and an estimated
    output of at most ``one_pass_bytes``. B rows are
    prefetched when B takes more than ``prefetch_bytes``. Returns (indptr,
    indices, data, kept nnz).
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
    cdef bint one_pass
    # the flop count is a parallel loop too, worth it on large A
    nt = n_threads if Aj.size >= _PARALLEL_SCAN else 1
    with nogil:
        flops = sc_spgemm_flops(itype, m, ap, aj, bp, nt, f, &lower)
    if b_sorted:
        plan_output(lower, None)
    nt = <int>max(1, min(n_threads, flops // flops_per_thread))
    ntasks = 1 if nt == 1 else <int>min(m, nt * tasks_per_thread)
    cdef cnp.ndarray bounds
    cdef int64_t *bd
    cdef double compression
    # On one thread the rows land back to back, so the room costs only the
    # pages written: one pass is then always the cheaper choice.
    one_pass = flops <= one_pass_sure_flops or (
        nt == 1 and flops * (4 + vt.itemsize) <= one_pass_room_bytes)
    if not one_pass and flops * (4 + vt.itemsize) <= one_pass_room_bytes:
        compression = _estimated_compression(itype, m, n, ap, aj, bp, bj, b_sorted, f)
        one_pass = (compression >= one_pass_compression
                    and flops / compression * (4 + vt.itemsize) <= one_pass_bytes)
    cdef cnp.ndarray Cp, Cj, Cx
    cdef object ot
    if not one_pass:
        bounds = np.empty(ntasks + 1, dtype=np.int64)
        bd = <int64_t *>cnp.PyArray_DATA(bounds)
        with nogil:
            sc_partition(m, f, row_cost, ntasks, bd)
    cdef void *room_j = NULL
    cdef void *room_x = NULL
    cdef void *p
    if one_pass:
        # One task per thread: each writes its rows back to back from its
        # flop offset, so only the pages that receive rows are touched; the
        # tasks are closed up and the memory shrunk and handed to numpy
        # without a copy.
        ntasks = nt
        bounds = np.empty(ntasks + 1, dtype=np.int64)
        bd = <int64_t *>cnp.PyArray_DATA(bounds)
        with nogil:
            sc_partition(m, f, row_cost, ntasks, bd)
        ot = np.dtype(np.int32) if max(flops, m, n) <= 2147483647 else np.dtype(np.int64)
        otype = INDEX_CODES[ot]
        Cp = np.empty(m + 1, dtype=ot)
        room_j = sc_alloc_room(max(1, flops) * ot.itemsize)
        room_x = sc_alloc_room(max(1, flops) * vt.itemsize)
        try:
            if room_j == NULL or room_x == NULL:
                raise MemoryError(
                    f"spgemm: cannot reserve {flops * (ot.itemsize + vt.itemsize):,} bytes"
                )
            with nogil:
                if semiring == 0:
                    status = sc_spgemm_onepass(itype, otype, vtype, m, n, ap, aj, ax, bp, bj,
                                               bx, b_sorted, prefetch, f, ntasks, bd, nt,
                                               cnp.PyArray_DATA(Cp), room_j, room_x, &kept)
                else:
                    status = sc_spgemm_semiring_onepass(
                        semiring, itype, otype, vtype, m, n, ap, aj, ax, bp, bj, bx,
                        b_sorted, prefetch, f, ntasks, bd, nt, cnp.PyArray_DATA(Cp),
                        room_j, room_x, &kept)
            if status != SC_OK:
                _raise_status(status, "spgemm (one-pass numeric pass)")
            p = realloc(room_j, max(1, kept) * ot.itemsize)
            if p != NULL:
                room_j = p
            Cj = _adopt(room_j, kept, ot)
            room_j = NULL
            p = realloc(room_x, max(1, kept) * vt.itemsize)
            if p != NULL:
                room_x = p
            Cx = _adopt(room_x, kept, vt)
            room_x = NULL
        finally:
            free(room_j)
            free(room_x)
        return Cp, Cj, Cx, kept
    with nogil:
        # the symbolic pass overwrites the flop counts with row sizes
        status = sc_spgemm_symbolic(itype, m, n, ap, aj, bp, bj, b_sorted,
                                    prefetch, ntasks, bd, nt, f)
    if status != SC_OK:
        _raise_status(status, "spgemm (symbolic pass)")
    nnz = f[m]
    ot = np.dtype(plan_output(None, nnz))
    otype = INDEX_CODES[ot]
    Cp = np.empty(m + 1, dtype=ot)
    Cj = np.empty(nnz, dtype=ot)
    Cx = np.empty(nnz, dtype=vt)
    cdef void *cp = cnp.PyArray_DATA(Cp)
    cdef void *cj = cnp.PyArray_DATA(Cj)
    cdef void *cx = cnp.PyArray_DATA(Cx)
    with nogil:
        if semiring == 0:
            status = sc_spgemm_numeric(itype, otype, vtype, m, n, ap, aj, ax, bp, bj, bx,
                                       b_sorted, prefetch, f, ntasks, bd, nt, cp, cj, cx,
                                       &kept)
        else:
            status = sc_spgemm_semiring_numeric(semiring, itype, otype, vtype, m, n, ap, aj,
                                                ax, bp, bj, bx, b_sorted, prefetch, f, ntasks,
                                                bd, nt, cp, cj, cx, &kept)
    if status != SC_OK:
        _raise_status(status, "spgemm (numeric pass)")
    return Cp, Cj, Cx, kept


def spgemm_symbolic(cnp.ndarray Ap, cnp.ndarray Aj, cnp.ndarray Bp, cnp.ndarray Bj,
                    int64_t m, int64_t k, int64_t n, bint b_sorted, int n_threads,
                    int64_t flops_per_thread, int tasks_per_thread, int64_t row_cost,
                    int64_t prefetch_bytes):
    """Multiplies and structural nnz of every row of C = A @ B, without values.

    Runs the flop count and the exact symbolic pass of :func:`spgemm` on
    validated CSR structures of one index dtype. Returns (fp, cs): int64
    prefix sums of length m + 1, fp[i + 1] - fp[i] the multiplies and
    cs[i + 1] - cs[i] the distinct columns of row i.
    """
    cdef object it = Ap.dtype
    cdef int itype = INDEX_CODES[it]
    cdef const void *ap = data_ptr(Ap, it, m + 1)
    cdef const void *aj = data_ptr(Aj, it, 0)
    cdef const void *bp = data_ptr(Bp, it, k + 1)
    cdef const void *bj = data_ptr(Bj, it, 0)
    cdef cnp.ndarray fp = np.empty(m + 1, dtype=np.int64)
    cdef cnp.ndarray cs = np.empty(m + 1, dtype=np.int64)
    cdef int64_t *f = <int64_t *>cnp.PyArray_DATA(fp)
    cdef int64_t *c = <int64_t *>cnp.PyArray_DATA(cs)
    cdef int64_t lower = 0, flops
    cdef int status, nt, ntasks
    cdef int prefetch = Bj.size * it.itemsize > prefetch_bytes
    with nogil:
        flops = sc_spgemm_flops(itype, m, ap, aj, bp, 1, f, &lower)
    nt = <int>max(1, min(n_threads, flops // flops_per_thread))
    ntasks = 1 if nt == 1 else <int>min(m, nt * tasks_per_thread)
    cdef cnp.ndarray bounds = np.empty(max(ntasks, 1) + 1, dtype=np.int64)
    cdef int64_t *bd = <int64_t *>cnp.PyArray_DATA(bounds)
    with nogil:
        sc_partition(m, f, row_cost, ntasks, bd)
        status = sc_spgemm_symbolic(itype, m, n, ap, aj, bp, bj, b_sorted,
                                    prefetch, ntasks, bd, nt, c)
    if status != SC_OK:
        _raise_status(status, "spgemm_symbolic")
    return fp, cs


def semiring_codes():
    """``{name: code}`` of the semirings compiled into the core (the table
    SC_SEMIRINGS of spgemm_semirings.h)."""
    return {sc_semiring_table[i].name.decode(): sc_semiring_table[i].code
            for i in range(sc_semiring_count)}


def set_user_ops(uintptr_t add_address, uintptr_t mul_address):
    """Install the operators of the user semiring (addresses of C functions
    ``double f(double, double)``; 0, 0 to clear). The caller holds a lock
    across this call and the product that uses them."""
    sc_spgemm_set_user_ops(<sc_binop_f64>add_address, <sc_binop_f64>mul_address)


def spgemm_masked(int semiring, cnp.ndarray Ap, cnp.ndarray Aj, cnp.ndarray Ax,
                  cnp.ndarray Bp, cnp.ndarray Bj, cnp.ndarray Bx,
                  cnp.ndarray Mp, cnp.ndarray Mj, bint complement,
                  int64_t m, int64_t k, int64_t n, int n_threads,
                  int64_t flops_per_thread, int tasks_per_thread, int64_t row_cost,
                  object check_output, int method=0, bint a_sorted=False,
                  double dot_weight=1.0):
    """C<M> = A (+.*) B (or C<!M>) on validated CSR arrays of one index dtype
    (also the output's), M with sorted rows and no duplicates.

    ``method``: 1 saxpy (Gustavson, scattered mask), 2 dot products (needs
    ``a_sorted``: rows of A strictly increasing; no complement), 0 choose:
    dot when ``a_sorted``, no complement and ``dot_weight`` times its
    estimated steps (merge steps over the mask entries, plus the transpose
    of B) is below the saxpy's (multiplies plus mask entries).

    ``check_output(room)`` is called with the number of output slots the
    kernel needs before they are allocated; it raises MemoryError if they do
    not fit. Returns (indptr, indices, data, kept nnz, method used), or None
    when the complement needs more slots than int32 indices can address (the
    caller retries with int64).
    """
    cdef object it = Ap.dtype, vt = Ax.dtype
    cdef int itype = INDEX_CODES[it], vtype = VALUE_CODES[vt]
    cdef const void *ap = data_ptr(Ap, it, m + 1)
    cdef const void *aj = data_ptr(Aj, it, 0)
    cdef const void *ax = data_ptr(Ax, vt, 0)
    cdef const void *bp = data_ptr(Bp, it, k + 1)
    cdef const void *bj = data_ptr(Bj, it, 0)
    cdef const void *bx = data_ptr(Bx, vt, 0)
    cdef const void *mp = data_ptr(Mp, it, m + 1)
    cdef const void *mj = data_ptr(Mj, it, 0)
    cdef cnp.ndarray fp = np.empty(m + 1, dtype=np.int64)
    cdef int64_t *f = <int64_t *>cnp.PyArray_DATA(fp)
    cdef int64_t lower = 0, flops, kept = 0, total, mnnz, bnnz, dot_steps
    cdef int status, nt, ntasks
    cdef cnp.ndarray colptr = None, cost, room
    if complement:
        method = 1
    elif method == 0 and not a_sorted:
        method = 1
    mnnz = Mp[m]
    bnnz = Bj.shape[0]
    nt = n_threads if Aj.size >= _PARALLEL_SCAN else 1
    if method != 2:
        with nogil:
            flops = sc_spgemm_flops(itype, m, ap, aj, bp, nt, f, &lower)
        # the dot method costs at least one step per mask entry plus the
        # transpose of B: only then is it worth estimating
        if method == 0 and dot_weight * (mnnz + bnnz + n) >= flops + mnnz:
            method = 1
    if method != 1:
        colptr = np.empty(n + 1, dtype=np.int64)
        cost = np.empty(m + 1, dtype=np.int64)
        with nogil:
            dot_steps = sc_spgemm_dot_cost(
                itype, m, k, n, ap, bp, bj, mp, mj,
                <int64_t *>cnp.PyArray_DATA(colptr), <int64_t *>cnp.PyArray_DATA(cost))
        if method == 0:
            method = 2 if dot_weight * (dot_steps + bnnz + n) < flops + mnnz else 1
    if method == 1 and complement:
        room = np.empty(m + 1, dtype=np.int64)
        room[0] = 0
        np.cumsum(np.minimum(np.diff(fp), n - np.diff(Mp)), out=room[1:])
    else:
        # the mask's own row pointers: row i's slots are its mask row's
        room = Mp.astype(np.int64, copy=False)
    total = room[m]
    if itype == 0 and total > 2147483647:
        return None
    # the work of a row: its multiplies plus scattering its mask row (saxpy),
    # or its merge steps (dot)
    flops = flops + mnnz if method == 1 else dot_steps
    nt = <int>max(1, min(n_threads, flops // flops_per_thread))
    ntasks = 1 if nt == 1 else <int>min(m, nt * tasks_per_thread)
    ntasks = max(ntasks, 1)
    cdef cnp.ndarray bounds = np.empty(ntasks + 1, dtype=np.int64)
    cdef int64_t *bd = <int64_t *>cnp.PyArray_DATA(bounds)
    cdef int64_t *c
    if ntasks == 1:
        bd[0] = 0
        bd[1] = m
    else:
        if method == 1:
            cost = fp
            cost[1:] += np.cumsum(np.diff(Mp))
        c = <int64_t *>cnp.PyArray_DATA(cost)
        with nogil:
            sc_partition(m, c, row_cost, ntasks, bd)
    check_output(total)
    cdef cnp.ndarray Cp = np.empty(m + 1, dtype=it)
    cdef cnp.ndarray Cj = np.empty(total, dtype=it)
    cdef cnp.ndarray Cx = np.empty(total, dtype=vt)
    cdef const int64_t *r = <const int64_t *>cnp.PyArray_DATA(room)
    cdef void *cp = cnp.PyArray_DATA(Cp)
    cdef void *cj = cnp.PyArray_DATA(Cj)
    cdef void *cx = cnp.PyArray_DATA(Cx)
    cdef const int64_t *cptr = NULL
    if method == 1:
        with nogil:
            status = sc_spgemm_masked(semiring, itype, vtype, m, n, ap, aj, ax, bp, bj, bx,
                                      mp, mj, complement, r, ntasks, bd, nt, cp, cj, cx, &kept)
    else:
        cptr = <const int64_t *>cnp.PyArray_DATA(colptr)
        with nogil:
            status = sc_spgemm_masked_dot(semiring, itype, vtype, m, k, n, ap, aj, ax,
                                          bp, bj, bx, cptr, mp, mj, r, ntasks, bd, nt,
                                          cp, cj, cx, &kept)
    if status != SC_OK:
        _raise_status(status, "spgemm (masked product)")
    return Cp, Cj, Cx, kept, method


def topk_product_flops(cnp.ndarray Ap, cnp.ndarray Aj, cnp.ndarray Bp, int64_t m, int64_t k):
    """Multiplies of A @ B (validated CSR arrays of one index dtype)."""
    cdef object it = Ap.dtype
    cdef int itype = INDEX_CODES[it]
    cdef const void *ap = data_ptr(Ap, it, m + 1)
    cdef const void *aj = data_ptr(Aj, it, 0)
    cdef const void *bp = data_ptr(Bp, it, k + 1)
    cdef int64_t flops
    with nogil:
        flops = sc_topk_product_flops(itype, m, ap, aj, bp)
    return flops


def topk_product(cnp.ndarray Ap, cnp.ndarray Aj, cnp.ndarray Ax,
                 cnp.ndarray Bp, cnp.ndarray Bj, cnp.ndarray Bx,
                 object Ep, object Ej, int64_t m, int64_t d, int64_t n, int64_t k,
                 bint blocked, int n_threads):
    """Per-row top-k of A @ B on validated CSR arrays (one index dtype, one
    float value dtype); E (or None) is the excluded pattern. Returns (columns
    int64 (m, k), values (m, k))."""
    cdef object it = Ap.dtype, vt = Ax.dtype
    cdef int itype = INDEX_CODES[it], vtype = VALUE_CODES[vt]
    cdef const void *ap = data_ptr(Ap, it, m + 1)
    cdef const void *aj = data_ptr(Aj, it, 0)
    cdef const void *ax = data_ptr(Ax, vt, 0)
    cdef const void *bp = data_ptr(Bp, it, d + 1)
    cdef const void *bj = data_ptr(Bj, it, 0)
    cdef const void *bx = data_ptr(Bx, vt, 0)
    cdef const void *ep = NULL
    cdef const void *ej = NULL
    if Ep is not None:
        ep = data_ptr(Ep, it, m + 1)
        ej = data_ptr(Ej, it, 0)
    cdef cnp.ndarray idx = np.empty((m, k), dtype=np.int64)
    cdef cnp.ndarray val = np.empty((m, k), dtype=vt)
    cdef int64_t *oi = <int64_t *>writable_ptr(idx, I64, m * k)
    cdef void *ov = writable_ptr(val, vt, m * k)
    cdef int status
    with nogil:
        status = sc_topk_product(itype, vtype, m, d, n, k, blocked, ap, aj, ax, bp, bj, bx,
                                 ep, ej, n_threads, oi, ov)
    if status != SC_OK:
        _raise_status(status, "topk_product")
    return idx, val
