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

