"""Thin bindings of the structured SpMM, SDDMM and N:M kernels (spmm.h).

Every function takes arrays the Python layer has validated: index and value
arrays C-contiguous with the kernel dtypes, dense operands 1-D or 2-D with
strides that are whole elements (C order, F order or any view), and sizes
at least 1 in every dimension. Each releases the GIL around the C call and
maps status codes to exceptions.
"""
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t

from sparsecore._ext._arrays cimport (
    data_ptr, writable_ptr, register_interrupt_check, raise_interrupt,
)

import numpy as np

cnp.import_array()
register_interrupt_check()

cdef extern from "spmm.h" nogil:
    ctypedef struct sc_epilogue:
        const void *bias
        int act
    int sc_spmm_bsr(int itype, int vtype, int64_t m, int64_t n, int64_t B, int r, int c,
                    const void *indptr, const void *indices, const void *blocks,
                    const void *X, int64_t xrs, int64_t xcs,
                    void *Y, int64_t yrs, int64_t ycs, int n_threads, const sc_epilogue *ep)
    int sc_spmm_nm(int vtype, int64_t m, int64_t K, int64_t B, int N, int M,
                   const void *values, const uint8_t *idx,
                   const void *X, int64_t xrs, int64_t xcs,
                   void *Y, int64_t yrs, int64_t ycs, int n_threads, const sc_epilogue *ep)
    int sc_spmm_bitmask(int vtype, int64_t m, int64_t K, int64_t B, const void *values,
                        const uint8_t *mask, int64_t mld, const int64_t *start, int64_t nnz,
                        const void *X, int64_t xrs, int64_t xcs,
                        void *Y, int64_t yrs, int64_t ycs, int n_threads,
                        const sc_epilogue *ep)
    int sc_bitmask_expand(int vtype, int64_t m, int64_t K, const void *values,
                          const uint8_t *mask, int64_t mld, const int64_t *start,
                          void *W, int64_t wld, int n_threads)
    int sc_sddmm_bsr(int itype, int vtype, int64_t m, int64_t n, int64_t B, int r, int c,
                     const void *indptr, const void *indices,
                     const void *G, int64_t grs, int64_t gcs,
                     const void *X, int64_t xrs, int64_t xcs,
                     void *out, int n_threads)
    int sc_sddmm_nm(int vtype, int64_t m, int64_t K, int64_t B, int N, int M,
                    const uint8_t *idx,
                    const void *G, int64_t grs, int64_t gcs,
                    const void *X, int64_t xrs, int64_t xcs,
                    void *out, int n_threads)
    int sc_nm_compress(int vtype, int64_t rows, int64_t K, int N, int M,
                       const void *W, int64_t wrs, int64_t wcs,
                       const uint8_t *mask, int64_t mrs, int64_t mcs,
                       void *values, uint8_t *idx, int64_t *bad, int n_threads)
    int sc_nm_prune(int vtype, int stype, int64_t rows, int64_t K, int N, int M,
                    const void *W, int64_t wrs, int64_t wcs,
                    const void *score, int64_t srs, int64_t scs,
                    void *values, uint8_t *idx, int n_threads)
    int64_t sc_spmm_l2_bytes()
    int sc_spmm_set_simd(int level)
    int sc_spmm_simd()
    int sc_spmm_build_has_avx512()

cdef extern from "sc_common.h" nogil:
    int sc_cpu_has_avx512()

cdef extern from "sc_common.h" nogil:
    int SC_OK
    int SC_ERR_NOMEM
    int SC_ERR_VALUE
    int SC_ERR_INTERRUPTED

INDEX_CODES = {np.dtype(np.int32): 0, np.dtype(np.int64): 1}
VALUE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1}
cdef object U8 = np.dtype(np.uint8)
cdef object I64 = np.dtype(np.int64)


cdef _check(int status, str what):
    if status == SC_OK:
        return
    if status == SC_ERR_INTERRUPTED:
        raise_interrupt()
    if status == SC_ERR_NOMEM:
        raise MemoryError(f"{what}: a workspace allocation failed")
    raise RuntimeError(f"internal error: {what} kernel returned status {status}")


cdef class _Dense:
    """Pointer, shape and element strides of a validated dense operand."""
    cdef void *ptr
    cdef int64_t rows, cols, rs, cs

    def __cinit__(self, cnp.ndarray a, object dtype, bint writable):
        if a.dtype != dtype or a.ndim not in (1, 2):
            raise RuntimeError(f"internal error: dense operand of dtype {a.dtype} "
                               f"and ndim {a.ndim}; expected {dtype}, 1-D or 2-D")
        if writable and not cnp.PyArray_ISWRITEABLE(a):
            raise RuntimeError("internal error: kernel output array is read-only")
        cdef int64_t es = a.itemsize
        cdef int64_t s0 = a.strides[0]
        cdef int64_t s1 = a.strides[1] if a.ndim == 2 else es
        if s0 % es or s1 % es or a.size == 0:
            raise RuntimeError("internal error: dense operand with partial-element "
                               "strides or no elements")
        self.ptr = cnp.PyArray_DATA(a)
        self.rows = a.shape[0]
        self.cols = a.shape[1] if a.ndim == 2 else 1
        self.rs = s0 // es
        self.cs = s1 // es


def l2_bytes():
    """Bytes of L2 per core the panel planner assumes."""
    return sc_spmm_l2_bytes()


SIMD_LEVELS = {"auto": -1, "baseline": 0, "avx2": 1, "avx512": 2}


def set_simd(str level):
    """Request a SIMD level for the products; the caller checked the name.
    Returns False when the CPU or build lacks it."""
    return sc_spmm_set_simd(SIMD_LEVELS[level]) == SC_OK


def simd():
    """The widest SIMD level the products take now, by name."""
    cdef int level = sc_spmm_simd()
    return {v: k for k, v in SIMD_LEVELS.items()}[level]


def build_has_avx512():
    """Whether this build carries the AVX-512 instances of the products."""
    return bool(sc_spmm_build_has_avx512())


def cpu_has_avx512():
    """Whether this CPU (and OS) runs AVX-512 F, BW, DQ and VL."""
    return bool(sc_cpu_has_avx512())


#: the epilogue's activations by name (spmm.h's SC_ACT_*)
ACTIVATIONS = {"none": 0, "relu": 1, "gelu": 2, "gelu_tanh": 3, "silu": 4}


cdef const sc_epilogue *_epilogue(sc_epilogue *ep, object bias, object vt, int64_t m,
                                  str activation):
    """Fill `ep` for a bias (None or m values of dtype vt) and an activation
    name; NULL when there is nothing to apply."""
    ep.act = ACTIVATIONS[activation]
    ep.bias = NULL
    if bias is not None:
        ep.bias = data_ptr(bias, vt, m)
    if ep.bias == NULL and ep.act == 0:
        return NULL
    return ep


def spmm_bsr(cnp.ndarray indptr, cnp.ndarray indices, cnp.ndarray blocks,
             int64_t m, int64_t n, int r, int c, cnp.ndarray X, cnp.ndarray Y,
             int n_threads, object bias=None, str activation="none"):
    """Y = act(A @ X + bias[:, None]) for block-sparse A (blocks of shape
    (nnzb, r, c))."""
    cdef object it = indptr.dtype, vt = blocks.dtype
    cdef int itype = INDEX_CODES[it], vtype = VALUE_CODES[vt]
    cdef int64_t mb = (m + r - 1) // r
    cdef const void *p = data_ptr(indptr, it, mb + 1)
    cdef const void *j = data_ptr(indices, it, 0)
    cdef const void *b = data_ptr(blocks, vt, 0)
    cdef _Dense x = _Dense(X, vt, False)
    cdef _Dense y = _Dense(Y, vt, True)
    if x.rows != n or y.rows != m or x.cols != y.cols:
        raise RuntimeError("internal error: spmm_bsr operand shapes disagree")
    cdef sc_epilogue ep_store
    cdef const sc_epilogue *ep = _epilogue(&ep_store, bias, vt, m, activation)
    cdef int status
    with nogil:
        status = sc_spmm_bsr(itype, vtype, m, n, x.cols, r, c, p, j, b,
                             x.ptr, x.rs, x.cs, y.ptr, y.rs, y.cs, n_threads, ep)
    _check(status, "spmm (block-sparse)")


def spmm_nm(cnp.ndarray values, cnp.ndarray idx, int64_t m, int64_t K, int N, int M,
            cnp.ndarray X, cnp.ndarray Y, int n_threads, object bias=None,
            str activation="none"):
    """Y = act(A @ X + bias[:, None]) for N:M A with values/idx of shape
    (m, G * N)."""
    cdef object vt = values.dtype
    cdef int vtype = VALUE_CODES[vt]
    cdef int64_t G = (K + M - 1) // M
    cdef const void *v = data_ptr(values, vt, m * G * N)
    cdef const uint8_t *ix = <const uint8_t *>data_ptr(idx, U8, m * G * N)
    cdef _Dense x = _Dense(X, vt, False)
    cdef _Dense y = _Dense(Y, vt, True)
    if x.rows != K or y.rows != m or x.cols != y.cols:
        raise RuntimeError("internal error: spmm_nm operand shapes disagree")
    cdef sc_epilogue ep_store
    cdef const sc_epilogue *ep = _epilogue(&ep_store, bias, vt, m, activation)
    cdef int status
    with nogil:
        status = sc_spmm_nm(vtype, m, K, x.cols, N, M, v, ix,
                            x.ptr, x.rs, x.cs, y.ptr, y.rs, y.cs, n_threads, ep)
    _check(status, "spmm (N:M)")


def spmm_bitmask(cnp.ndarray values, cnp.ndarray mask, cnp.ndarray start, int64_t K,
                 cnp.ndarray X, cnp.ndarray Y, int n_threads, object bias=None,
                 str activation="none"):
    """Y = act(A @ X + bias[:, None]) for A stored as a row bitmask: its
    nonzeros ``values`` (row-major), ``mask`` (m, mld) uint8 (column j of row
    i is bit j % 8 of byte j // 8; clear past K) and ``start`` (m,) int64,
    where each row's values begin. Trusted inputs."""
    cdef object vt = values.dtype
    cdef int vtype = VALUE_CODES[vt]
    cdef int64_t m = mask.shape[0], mld = mask.shape[1], nnz = values.shape[0]
    cdef const void *v = data_ptr(values, vt, 0)
    cdef const uint8_t *mk = <const uint8_t *>data_ptr(mask, U8, m * mld)
    cdef const int64_t *st = <const int64_t *>data_ptr(start, I64, m)
    cdef _Dense x = _Dense(X, vt, False)
    cdef _Dense y = _Dense(Y, vt, True)
    if x.rows != K or y.rows != m or x.cols != y.cols or mld * 8 < K:
        raise RuntimeError("internal error: spmm_bitmask operand shapes disagree")
    cdef sc_epilogue ep_store
    cdef const sc_epilogue *ep = _epilogue(&ep_store, bias, vt, m, activation)
    cdef int status
    with nogil:
        status = sc_spmm_bitmask(vtype, m, K, x.cols, v, mk, mld, st, nnz,
                                 x.ptr, x.rs, x.cs, y.ptr, y.rs, y.cs, n_threads, ep)
    _check(status, "spmm (bitmask)")


def bitmask_expand(cnp.ndarray values, cnp.ndarray mask, cnp.ndarray start, int64_t K,
                   cnp.ndarray W, int n_threads):
    """W[:, :K] = the dense form of a row bitmask (as for spmm_bitmask); W
    C-contiguous rows. Trusted inputs."""
    cdef object vt = values.dtype
    cdef int vtype = VALUE_CODES[vt]
    cdef int64_t m = mask.shape[0], mld = mask.shape[1]
    cdef const void *v = data_ptr(values, vt, 0)
    cdef const uint8_t *mk = <const uint8_t *>data_ptr(mask, U8, m * mld)
    cdef const int64_t *st = <const int64_t *>data_ptr(start, I64, m)
    cdef void *w = writable_ptr(W, vt, m * K)
    if W.shape[0] != m or W.shape[1] < K or mld * 8 < K:
        raise RuntimeError("internal error: bitmask_expand operand shapes disagree")
    cdef int64_t wld = W.shape[1]
    cdef int status
    with nogil:
        status = sc_bitmask_expand(vtype, m, K, v, mk, mld, st, w, wld, n_threads)
    _check(status, "bitmask expand")


def sddmm_bsr(cnp.ndarray indptr, cnp.ndarray indices, int64_t m, int64_t n, int r, int c,
              cnp.ndarray G, cnp.ndarray X, cnp.ndarray out, int n_threads):
    """out (nnzb, r, c) = (G @ X.T) at the stored blocks."""
    cdef object it = indptr.dtype, vt = out.dtype
    cdef int itype = INDEX_CODES[it], vtype = VALUE_CODES[vt]
    cdef int64_t mb = (m + r - 1) // r
    cdef const void *p = data_ptr(indptr, it, mb + 1)
    cdef const void *j = data_ptr(indices, it, 0)
    cdef void *o = writable_ptr(out, vt, 0)
    cdef _Dense g = _Dense(G, vt, False)
    cdef _Dense x = _Dense(X, vt, False)
    if g.rows != m or x.rows != n or g.cols != x.cols:
        raise RuntimeError("internal error: sddmm_bsr operand shapes disagree")
    cdef int status
    with nogil:
        status = sc_sddmm_bsr(itype, vtype, m, n, g.cols, r, c, p, j,
                              g.ptr, g.rs, g.cs, x.ptr, x.rs, x.cs, o, n_threads)
    _check(status, "sddmm (block-sparse)")


def sddmm_nm(cnp.ndarray idx, int64_t m, int64_t K, int N, int M,
             cnp.ndarray G, cnp.ndarray X, cnp.ndarray out, int n_threads):
    """out (m, G * N) = (G @ X.T) at the stored N:M positions."""
    cdef object vt = out.dtype
    cdef int vtype = VALUE_CODES[vt]
    cdef int64_t ng = (K + M - 1) // M
    cdef const uint8_t *ix = <const uint8_t *>data_ptr(idx, U8, m * ng * N)
    cdef void *o = writable_ptr(out, vt, m * ng * N)
    cdef _Dense g = _Dense(G, vt, False)
    cdef _Dense x = _Dense(X, vt, False)
    if g.rows != m or x.rows != K or g.cols != x.cols:
        raise RuntimeError("internal error: sddmm_nm operand shapes disagree")
    cdef int status
    with nogil:
        status = sc_sddmm_nm(vtype, m, K, g.cols, N, M, ix,
                             g.ptr, g.rs, g.cs, x.ptr, x.rs, x.cs, o, n_threads)
    _check(status, "sddmm (N:M)")


def nm_compress(cnp.ndarray W, object mask, int N, int M, cnp.ndarray values,
                cnp.ndarray idx, int n_threads):
    """Fill values/idx (rows, G * N) from an N:M matrix W (its nonzeros, or
    the True entries of mask). Returns None, or (row, group) of the first
    group with more than N entries."""
    cdef object vt = W.dtype
    cdef int vtype = VALUE_CODES[vt]
    cdef _Dense w = _Dense(W, vt, False)
    cdef int64_t rows = w.rows, K = w.cols, ng = (K + M - 1) // M
    cdef void *v = writable_ptr(values, vt, rows * ng * N)
    cdef uint8_t *ix = <uint8_t *>writable_ptr(idx, U8, rows * ng * N)
    cdef const uint8_t *mk = NULL
    cdef int64_t mrs = 0, mcs = 0
    cdef _Dense md
    if mask is not None:
        md = _Dense(mask, U8, False)
        if md.rows != rows or md.cols != K:
            raise RuntimeError("internal error: nm_compress mask shape")
        mk = <const uint8_t *>md.ptr
        mrs = md.rs
        mcs = md.cs
    cdef int64_t bad[2]
    cdef int status
    with nogil:
        status = sc_nm_compress(vtype, rows, K, N, M, w.ptr, w.rs, w.cs, mk, mrs, mcs,
                                v, ix, bad, n_threads)
    if status == SC_ERR_VALUE:
        return int(bad[0]), int(bad[1])
    _check(status, "N:M compression")
    return None


def nm_prune(cnp.ndarray W, object score, int N, int M, cnp.ndarray values,
             cnp.ndarray idx, int n_threads):
    """Keep the N entries of largest |W| (or score) in every group of M."""
    cdef object vt = W.dtype
    cdef int vtype = VALUE_CODES[vt]
    cdef _Dense w = _Dense(W, vt, False)
    cdef int64_t rows = w.rows, K = w.cols, ng = (K + M - 1) // M
    cdef void *v = writable_ptr(values, vt, rows * ng * N)
    cdef uint8_t *ix = <uint8_t *>writable_ptr(idx, U8, rows * ng * N)
    cdef const void *sp = NULL
    cdef int64_t srs = 0, scs = 0
    cdef int stype = 0
    cdef _Dense sd
    if score is not None:
        stype = VALUE_CODES[score.dtype]
        sd = _Dense(score, score.dtype, False)
        if sd.rows != rows or sd.cols != K:
            raise RuntimeError("internal error: nm_prune score shape")
        sp = sd.ptr
        srs = sd.rs
        scs = sd.cs
    cdef int status
    with nogil:
        status = sc_nm_prune(vtype, stype, rows, K, N, M, w.ptr, w.rs, w.cs, sp, srs, scs,
                             v, ix, n_threads)
    _check(status, "N:M pruning")
