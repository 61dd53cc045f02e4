# Raw data pointers of numpy arrays for the C kernels, with a last check of
# dtype, contiguity and length: the Python layer has validated everything, so a
# failure here is a bug in sparsecore, reported instead of corrupting memory.
cimport numpy as cnp
from libc.stdint cimport int64_t

cdef extern from *:
    """
    static long long sc_empty_sentinel_ = 0;
    """
    long long sc_empty_sentinel_


cdef inline void* data_ptr(cnp.ndarray arr, object dtype, int64_t min_len) except NULL:
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or arr.dtype != dtype or arr.size < min_len:
        raise RuntimeError(
            f"internal error: kernel got an array of dtype {arr.dtype}, size "
            f"{arr.size}, contiguous={bool(arr.flags.c_contiguous)}; expected "
            f"{dtype} with at least {min_len} contiguous elements"
        )
    if arr.size == 0:
        # numpy may hand out NULL for empty arrays; the kernels never read it
        return <void*>&sc_empty_sentinel_
    return cnp.PyArray_DATA(arr)


cdef inline void* writable_ptr(cnp.ndarray arr, object dtype, int64_t min_len) except NULL:
    if not cnp.PyArray_ISWRITEABLE(arr):
        raise RuntimeError("internal error: kernel output array is read-only")
    return data_ptr(arr, dtype, min_len)



# ---- Ctrl-C for running kernels (see sc_poll in sc_common.h) ----
from cpython.exc cimport PyErr_Fetch, PyErr_Restore
from cpython.object cimport PyObject

cdef extern from "Python.h":
    # declared here without Cython's `except -1`: the exception it may raise
    # is fetched by hand below
    int check_signals_raw "PyErr_CheckSignals" () noexcept

cdef extern from "sc_common.h":
    ctypedef int (*sc_check_fn)() noexcept nogil
    void sc_set_interrupt_check(sc_check_fn fn) nogil

cdef extern from *:
    """
    /* the exception a signal handler raised while a kernel ran */
    static PyObject *sc_pending_exc[3] = {NULL, NULL, NULL};
    """
    PyObject *sc_pending_exc[3]


cdef inline int _check_signals() noexcept nogil:
    # Runs Python's signal handlers (Ctrl-C raises KeyboardInterrupt there);
    # what they raise is kept until the binding re-raises it after the kernel.
    with gil:
        if check_signals_raw() == 0:
            return 0
        PyErr_Fetch(&sc_pending_exc[0], &sc_pending_exc[1], &sc_pending_exc[2])
        return 1


cdef inline void register_interrupt_check() noexcept:
    """Let the kernels linked into this module poll for Ctrl-C."""
    sc_set_interrupt_check(_check_signals)


cdef inline int raise_interrupt() except -1:
    """After a kernel returned SC_ERR_INTERRUPTED: raise what stopped it."""
    if sc_pending_exc[0] != NULL:
        PyErr_Restore(sc_pending_exc[0], sc_pending_exc[1], sc_pending_exc[2])
        sc_pending_exc[0] = sc_pending_exc[1] = sc_pending_exc[2] = NULL
        return -1
    raise KeyboardInterrupt
