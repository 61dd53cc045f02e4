"""Sparse times sparse: ``C = A @ B`` with canonical CSR output."""
import numpy as np
import scipy.sparse as sp

from sparsecore import _threads
from sparsecore._ext import _sparse
from sparsecore._validation import (
    INT32_MAX,
    as_csr_parts,
    check_allocation,
    index_dtype_for,
)

__all__ = ["spgemm"]

# Below this many multiplies per thread a parallel region costs more than it
# saves (measured here: 8 Ki multiplies, about 10 us of work, already gain on
# 2 threads; GraphBLAS uses 64 Ki).
_FLOPS_PER_THREAD = 1 << 13
# Tasks per thread for dynamic load balancing, and the cost of a row on top of
# its multiplies when cutting tasks.
_TASKS_PER_THREAD = 8
_ROW_COST = 4
# The count pass is skipped (rows are written into scratch with room for every
# multiply, then copied into the exact output) for tiny products, and for
# products that compress well (a sample of rows shows at least
# _ONE_PASS_COMPRESSION multiplies per output entry) with an estimated output
# of at most _ONE_PASS_BYTES: the scratch is only touched where rows land, so
# it costs about one more output's worth of memory. Otherwise the count pass
# sizes the output exactly, which matters when outputs are large.
_ONE_PASS_SURE_FLOPS = 1 << 17
_ONE_PASS_COMPRESSION = 2.0
_ONE_PASS_BYTES = 1 << 26
_ONE_PASS_ROOM_BYTES = 1 << 30
# Prefetch B rows only when B is larger than the L2 cache.
_PREFETCH_BYTES = 1 << 19

_KERNEL_DTYPES = {
    np.dtype(np.float32): np.dtype(np.float32),
    np.dtype(np.float64): np.dtype(np.float64),
    np.dtype(np.complex64): np.dtype(np.complex64),
    np.dtype(np.complex128): np.dtype(np.complex128),
}


def _kernel_dtype(A, B):
    """The dtype of the result (numpy promotion) and the one we compute in."""
    for name, X in (("A", A), ("B", B)):
        if X.dtype == np.bool_:
            raise TypeError(
                f"spgemm: {name} has dtype bool, which has no plus-times product; "
                f"cast it first, e.g. {name}.astype(np.int64)"
            )
        if X.dtype.kind not in "iufc":
            raise TypeError(f"spgemm: {name} has unsupported dtype {X.dtype}")
    out = np.result_type(A.dtype, B.dtype)
    if out.kind in "iu":
        # Integer products wrap modulo 2**bits as numpy's do: computing modulo
        # 2**64 and truncating gives the same bits for every integer type.
        return out, np.dtype(np.uint64)
    if out not in _KERNEL_DTYPES:
        raise TypeError(
            f"spgemm: result dtype {out} is not supported; use float32, float64, "
            f"complex64, complex128 or an integer dtype"
        )
    return out, out


def _as_kernel_values(data, kernel_dtype):
    if kernel_dtype == np.uint64 and data.dtype != np.uint64:
        return np.ascontiguousarray(data.astype(np.int64, copy=False).view(np.uint64))
    return np.ascontiguousarray(data, dtype=kernel_dtype)


def spgemm(A, B, *, n_threads=None):
    """Sparse matrix product ``C = A @ B``.

    Gustavson's row-wise product with hash-table accumulators (Nagasaka et
    al., "High-performance sparse matrix-matrix products on Intel KNL and
    multicore architectures", ICPP workshops 2018; the SMASH thesis,
    Shivdikar 2021): a count pass sizes the output exactly, then a numeric
    pass fills it in parallel with rows balanced by their multiplies. Every
    row is summed in the same order on any thread count, so results are
    bit-identical for any ``n_threads`` (and equal to scipy's).

    Parameters
    ----------
    A : scipy.sparse array or matrix of shape (m, k)
        Any sparse format (converted once to CSR, never modified). Unsorted
        indices and duplicate entries are allowed (duplicates are summed).
    B : scipy.sparse array or matrix of shape (k, n)
    n_threads : int or None, default=None
        Threads to use: None or -1 for all, -2 for all but one. Small products
        run on one thread regardless.

    Returns
    -------
    C : scipy.sparse.csr_array of shape (m, n)
        Canonical CSR: sorted column indices, no duplicates, and entries that
        cancel to exactly zero dropped, as in scipy. The dtype follows numpy
        promotion of ``A.dtype`` and ``B.dtype``; index arrays are int32 when
        nnz and the shape fit, int64 otherwise.

    Raises
    ------
    ValueError
        If the inner dimensions differ or an operand is not a valid CSR
        structure (indices out of range, decreasing ``indptr``).
    TypeError
        If an operand is not scipy.sparse, or has a boolean or unsupported
        dtype.
    MemoryError
        If the output cannot fit in the available memory; raised before it is
        allocated, with the number of bytes.

    See Also
    --------
    scipy.sparse.csr_array.__matmul__ : scipy's product (single-threaded,
        unsorted output).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from sparsecore import spgemm
    >>> A = sp.csr_array(np.array([[1.0, 0.0], [2.0, 3.0]]))
    >>> C = spgemm(A, A)
    >>> C.toarray()
    array([[1., 0.],
           [8., 9.]])
    >>> C.has_canonical_format
    True
    """
    out_dtype, kernel_dtype = _kernel_dtype(A, B)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(
            f"spgemm: dimension mismatch: A has shape {A.shape} and B has shape "
            f"{B.shape}; A.shape[1] must equal B.shape[0]"
        )
    nt = _threads.effective_n_threads(n_threads)
    m, k = A.shape
    n = B.shape[1]

    a = as_csr_parts(A, "A", nt)
    b = as_csr_parts(B, "B", nt)
    itype = index_dtype_for(m, k, n, a.nnz, b.nnz)
    a = a.with_index_dtype(itype)
    b = b.with_index_dtype(itype)
    ax = _as_kernel_values(a.data, kernel_dtype)
    bx = _as_kernel_values(b.data, kernel_dtype)

    value_size = kernel_dtype.itemsize

    def plan_output(nnz_lower, nnz):
        # called with a cheap lower bound first (each output row holds at
        # least as many entries as the longest B row it draws from), so a
        # hopeless product is refused before the exact count
        if nnz is None:
            nnz = min(nnz_lower, m * n)
        return _check_output_memory(nnz, m, n, value_size)

    indptr, indices, data, kept = _sparse.spgemm(
        a.indptr, a.indices, ax, b.indptr, b.indices, bx, m, k, n, b.sorted, nt,
        _FLOPS_PER_THREAD, _TASKS_PER_THREAD, _ROW_COST, _ONE_PASS_SURE_FLOPS, _ONE_PASS_COMPRESSION,
        _ONE_PASS_BYTES, _ONE_PASS_ROOM_BYTES, _PREFETCH_BYTES, plan_output,
    )
    nnz = indices.shape[0]
    if kept < nnz:
        indices.resize(kept, refcheck=False)
        data.resize(kept, refcheck=False)
    if kernel_dtype != out_dtype:
        data = data.view(np.int64).astype(out_dtype, copy=False)
    return _canonical_csr(data, indices, indptr, (m, n))


# Outputs smaller than this are not checked against the available memory
# (reading /proc/meminfo costs more than a small product); numpy still raises
# MemoryError if one cannot be allocated.
_CHECK_MEMORY_ABOVE = 1 << 26


def _check_output_memory(nnz, m, n, value_size):
    otype = np.dtype(index_dtype_for(nnz, m, n))
    nbytes = nnz * (otype.itemsize + value_size) + (m + 1) * otype.itemsize
    if nbytes >= _CHECK_MEMORY_ABOVE:
        check_allocation(nbytes, f"spgemm: the product with {nnz:,} nonzeros")
    return otype


def _canonical_csr(data, indices, indptr, shape):
    C = sp.csr_array((data, indices, indptr), shape=shape, copy=False)
    C.has_canonical_format = True
    return C
