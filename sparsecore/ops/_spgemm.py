"""Sparse times sparse: ``C = A @ B`` with canonical CSR output."""
import numpy as np
import scipy.sparse as sp

from sparsecore import _threads
from sparsecore._ext import _sparse
from sparsecore.ops._semiring import USER_OPS_LOCK, get_semiring
from sparsecore._validation import (
    INT32_MAX,
    as_csr_parts,
    check_allocation,
    contiguous,
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
        return contiguous(data.astype(np.int64, copy=False).view(np.uint64))
    return contiguous(data, dtype=kernel_dtype)


def spgemm(A, B, *, semiring="plus_times", mask=None, complement=False, n_threads=None):
    """Sparse matrix product ``C = A @ B``, over a semiring, optionally masked.

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
    semiring : str or Semiring, default="plus_times"
        ``C[i, j] = add_k multiply(A[i, k], B[k, j])`` over the ``k`` where
        both entries are stored. Built-ins (see
        :data:`sparsecore.ops.SEMIRINGS`): ``plus_times``, ``min_plus``,
        ``max_plus``, ``max_times``, ``min_times``, ``lor_land`` (boolean:
        stored nonzeros are True), ``plus_pair`` (counts of shared indices,
        values ignored), ``plus_first``, ``plus_second``; or a user semiring
        from :func:`sparsecore.ops.user_semiring`. An entry that is not stored
        stands for the identity of ``add``: 0 for plus, +inf for min (a
        missing edge in a shortest-path product, not a zero-length one),
        -inf for max, False for lor. Only ``plus_times`` drops sums that are
        exactly zero (as scipy does); the others keep every entry reached.
    mask : scipy.sparse array or matrix of shape (m, n) or None
        Structural mask: compute only the entries in the pattern of ``mask``
        (every stored entry counts, whatever its value), without forming the
        rest of the product: by Gustavson's row-wise method or, when a cost
        estimate favours it (masks much sparser than the product), by one
        sorted merge of ``A[i, :]`` and ``B[:, j]`` per mask entry (both
        give the same result; see the user guide, "Masked products").
    complement : bool, default=False
        Compute only the entries outside the pattern of ``mask`` instead.
    n_threads : int or None, default=None
        Threads to use: None or -1 for all, -2 for all but one. Small products
        run on one thread regardless.

    Returns
    -------
    C : scipy.sparse.csr_array or csr_matrix of shape (m, n)
        A csr_matrix when ``A`` is a scipy.sparse matrix (``spmatrix``), a
        csr_array otherwise: the kind scipy's ``A @ B`` returns. Canonical
        CSR: sorted column indices, no duplicates. With plus_times, entries
        that cancel to exactly zero are dropped, as in scipy, and the dtype
        follows numpy promotion of ``A.dtype`` and ``B.dtype``. The
        other semirings give float32 when both operands are float32 and
        float64 otherwise; ``lor_land`` gives bool, ``plus_pair`` int64, a user
        semiring float64. Masked plus_times computes in float32/float64 too.
        Index arrays are int32 when nnz and the shape fit, int64 otherwise.

    Raises
    ------
    ValueError
        If the inner dimensions differ, ``mask`` does not have the shape of
        the product, the semiring name is unknown, or an operand is not a
        valid CSR structure (indices out of range, decreasing ``indptr``).
    TypeError
        If an operand is not scipy.sparse, or has a dtype the semiring does
        not support (bool with plus_times, complex with any semiring but
        plus_times unmasked).
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

    Shortest paths of length two, and a masked product:

    >>> D = sp.csr_array(np.array([[0.0, 4.0, 1.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    >>> spgemm(D, D, semiring="min_plus").toarray()   # only D[0,2] + D[2,1] = 3 exists
    array([[0., 3., 0.],
           [0., 0., 0.],
           [0., 0., 0.]])
    >>> spgemm(D, D, mask=D, semiring="plus_pair").toarray()
    array([[0, 1, 0],
           [0, 0, 0],
           [0, 0, 0]])
    """
    C = _spgemm(A, B, semiring, mask, complement, n_threads)
    return like_left_operand(C, A)


def like_left_operand(C, A):
    """``C`` (a csr_array) as a csr_matrix when ``A`` is a scipy.sparse *matrix*
    (``spmatrix``): scipy's ``A @ B`` returns the kind of its left operand,
    and code written for the matrix API (``*`` is a product there) keeps
    working. The arrays are shared, not copied."""
    if not isinstance(A, sp.spmatrix) or not isinstance(C, sp.csr_array):
        return C
    if _MATRIX_SHARES_ATTRS:
        # wrap without the constructor's checks (C is valid canonical CSR)
        M = sp.csr_matrix.__new__(sp.csr_matrix)
        vars(M).update(vars(C))
        return M
    M = sp.csr_matrix((C.data, C.indices, C.indptr), shape=C.shape, copy=False)
    M.has_canonical_format = C.has_canonical_format
    return M


def _spgemm(A, B, semiring, mask, complement, n_threads):
    sr = get_semiring(semiring)
    if not isinstance(complement, (bool, np.bool_)):
        raise TypeError(f"spgemm: complement must be a bool, got {type(complement).__name__}")
    if mask is None and complement:
        raise ValueError("spgemm: complement=True needs a mask")
    if mask is not None or sr.code != 0:
        return _spgemm_semiring(A, B, sr, mask, bool(complement), n_threads)
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
    # A @ A: one structure check, not two (it is a pass over the matrix)
    b = a if B is A else as_csr_parts(B, "B", nt)
    itype = index_dtype_for(m, k, n, a.nnz, b.nnz)
    a = a.with_index_dtype(itype)
    b = a if B is A else b.with_index_dtype(itype)
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


def _semiring_dtypes(A, B, sr, masked):
    """(output dtype, kernel dtype) of a product over semiring ``sr``."""
    for name, X in (("A", A), ("B", B)):
        if not hasattr(X, "dtype") or X.dtype.kind not in "biufc":
            dtype = getattr(X, "dtype", type(X).__name__)
            raise TypeError(f"spgemm: {name} has unsupported dtype {dtype}")
    if sr._kind == "bool":
        return np.dtype(np.bool_), np.dtype(np.uint8)
    if sr._kind == "count":
        return np.dtype(np.int64), np.dtype(np.uint64)
    for name, X in (("A", A), ("B", B)):
        if X.dtype.kind == "c":
            what = "a masked product" if masked and sr.code == 0 else f"semiring {sr.name}"
            raise TypeError(
                f"spgemm: {name} has complex dtype {X.dtype}; {what} takes real values"
            )
    if sr._kind == "user":
        return np.dtype(np.float64), np.dtype(np.float64)
    if A.dtype == np.float32 and B.dtype == np.float32:
        return np.dtype(np.float32), np.dtype(np.float32)
    return np.dtype(np.float64), np.dtype(np.float64)


def _semiring_values(data, kernel_dtype, kind):
    if kind == "bool":
        return (data != 0).view(np.uint8)
    if kind == "count":
        # never read by the kernel, but it takes an array of 8-byte entries
        if data.dtype.itemsize == 8:
            return contiguous(data).view(np.uint64)
        return np.zeros(data.shape[0], dtype=np.uint64)
    return contiguous(data, dtype=kernel_dtype)


def _summed(parts, name, nt, sr):
    """Duplicate entries stand for their sum: add them up before a semiring
    product (min-plus of two duplicates is not min-plus of their sum)."""
    if parts.sorted or sr.code == 0:
        return parts
    X = sp.csr_array((parts.data, parts.indices, parts.indptr), shape=parts.shape, copy=True)
    X.sum_duplicates()
    return as_csr_parts(X, name, nt)


def _canonical_mask(M, m, n, nt):
    if not hasattr(M, "shape") or not sp.issparse(M):
        raise TypeError(
            f"spgemm: mask must be a scipy.sparse array or matrix or None, got "
            f"{type(M).__module__}.{type(M).__name__}"
        )
    if M.ndim != 2 or M.shape != (m, n):
        raise ValueError(
            f"spgemm: mask has shape {M.shape}, expected {(m, n)} (the shape of A @ B)"
        )
    parts = as_csr_parts(M, "mask", nt)
    if not parts.sorted:
        # sorted rows without duplicates: the pattern of a canonical copy
        # (copy=True: parts may share the caller's index arrays, which
        # sum_duplicates would sort in place)
        C = sp.csr_array(
            (np.ones(parts.indices.shape[0], dtype=np.int8), parts.indices, parts.indptr),
            shape=(m, n), copy=True,
        )
        C.sum_duplicates()
        parts = as_csr_parts(C, "mask", nt)
    return parts


def _spgemm_semiring(A, B, sr, mask, complement, n_threads):
    masked = mask is not None
    out_dtype, kernel_dtype = _semiring_dtypes(A, B, sr, masked)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(
            f"spgemm: dimension mismatch: A has shape {A.shape} and B has shape "
            f"{B.shape}; A.shape[1] must equal B.shape[0]"
        )
    nt = _threads.effective_n_threads(n_threads)
    m, k = A.shape
    n = B.shape[1]
    # an operand passed twice (triangle counting: L, L, mask=L) is checked once
    a = _summed(as_csr_parts(A, "A", nt), "A", nt, sr)
    b = a if B is A else _summed(as_csr_parts(B, "B", nt), "B", nt, sr)
    mparts = None
    if masked:
        same = a if mask is A else b if mask is B else None
        if same is not None and same.sorted and same.shape == (m, n):
            mparts = same
        else:
            mparts = _canonical_mask(mask, m, n, nt)
    ax = _semiring_values(a.data, kernel_dtype, sr._kind)
    bx = _semiring_values(b.data, kernel_dtype, sr._kind)
    value_size = kernel_dtype.itemsize

    def run():
        if masked:
            return _masked(a, b, ax, bx, mparts, sr.code, complement, m, k, n, nt, value_size,
                           sr._kind, kernel_dtype)
        return _unmasked(a, b, ax, bx, sr.code, m, k, n, nt, value_size)

    if sr._kind == "user":
        add_cf, mul_cf = sr._ops
        with USER_OPS_LOCK:
            _sparse.set_user_ops(add_cf.address, mul_cf.address)
            try:
                indptr, indices, data, kept = run()
            finally:
                _sparse.set_user_ops(0, 0)
    else:
        indptr, indices, data, kept = run()
    if kept < indices.shape[0]:
        indices.resize(kept, refcheck=False)
        data.resize(kept, refcheck=False)
    if out_dtype != kernel_dtype:
        data = data.view(out_dtype) if out_dtype.itemsize == kernel_dtype.itemsize else \
            data.astype(out_dtype)
    if masked:
        # the kernel writes the input index type; shrink it when it fits
        otype = index_dtype_for(kept, m, n)
        if otype != indices.dtype:
            indices = indices.astype(otype)
            indptr = indptr.astype(otype)
    return _canonical_csr(data, indices, indptr, (m, n))


def _unmasked(a, b, ax, bx, code, m, k, n, nt, value_size):
    itype = index_dtype_for(m, k, n, a.nnz, b.nnz)
    a = a.with_index_dtype(itype)
    b = b.with_index_dtype(itype)

    def plan_output(nnz_lower, nnz):
        if nnz is None:
            nnz = min(nnz_lower, m * n)
        return _check_output_memory(nnz, m, n, value_size)

    return _sparse.spgemm(
        a.indptr, a.indices, ax, b.indptr, b.indices, bx, m, k, n, b.sorted, nt,
        _FLOPS_PER_THREAD, _TASKS_PER_THREAD, _ROW_COST, _ONE_PASS_SURE_FLOPS,
        _ONE_PASS_COMPRESSION, _ONE_PASS_BYTES, _ONE_PASS_ROOM_BYTES, _PREFETCH_BYTES,
        plan_output, code,
    )


# How a masked product C<M> = A (+.*) B is computed (see the user guide,
# "Masked products"): "saxpy" scatters each mask row and runs the row's
# multiplies, dropping those outside the mask (cost: multiplies + nnz(M));
# "dot" merges row i of A with column j of B for each mask entry (i, j)
# (cost: sum over the mask of |A(i,:)| + |B(:,j)|, or binary searches when
# one is much longer, plus a transpose of B). "auto" estimates both and takes
# the cheaper; _DOT_WEIGHT is the cost of a merge step relative to a saxpy
# multiply. Complemented masks always use saxpy, and auto takes dot only when
# A's rows are sorted without duplicates (the dot method needs that; a forced
# "dot" sorts a copy). Tests set _MASKED_METHOD to force a method.
_MASKED_METHOD = "auto"
_METHOD_CODES = {"auto": 0, "saxpy": 1, "dot": 2}
_DOT_WEIGHT = 1.5
# the method the last masked product used (for tests and benchmarks)
_last_masked_method = None


def _masked(a, b, ax, bx, mparts, code, complement, m, k, n, nt, value_size, kind, kernel_dtype):
    global _last_masked_method
    itype = index_dtype_for(m, k, n, a.nnz, b.nnz, mparts.nnz)
    method = _METHOD_CODES[_MASKED_METHOD]
    if method == 2 and not complement and not a.sorted:
        # the dot method merges sorted rows: sort (and sum) a copy of A
        X = sp.csr_array((a.data, a.indices, a.indptr), shape=a.shape, copy=True)
        X.sum_duplicates()
        a = as_csr_parts(X, "A", nt)
        ax = _semiring_values(a.data, kernel_dtype, kind)

    def check_output(room):
        otype = np.dtype(itype)
        nbytes = room * (otype.itemsize + value_size) + (m + 1) * otype.itemsize
        if nbytes >= _CHECK_MEMORY_ABOVE:
            check_allocation(nbytes, f"spgemm: the masked product's {room:,} output slots")

    for attempt in (itype, np.int64):
        a2 = a.with_index_dtype(attempt)
        b2 = b.with_index_dtype(attempt)
        m2 = mparts.with_index_dtype(attempt)
        itype = attempt
        result = _sparse.spgemm_masked(
            code, a2.indptr, a2.indices, ax, b2.indptr, b2.indices, bx, m2.indptr, m2.indices,
            complement, m, k, n, nt, _FLOPS_PER_THREAD, _TASKS_PER_THREAD, _ROW_COST,
            check_output, method, a.sorted, _DOT_WEIGHT,
        )
        if result is not None:
            _last_masked_method = "dot" if result[4] == 2 else "saxpy"
            return result[:4]
    raise AssertionError("spgemm: int64 masked product refused")  # pragma: no cover


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


def _csr_template():
    """The attributes scipy gives a canonical csr_array, or None if they are
    not the ones the fast path of :func:`_canonical_csr` knows how to set."""
    T = sp.csr_array(
        (np.zeros(1), np.zeros(1, dtype=np.int32), np.array([0, 1], dtype=np.int32)),
        shape=(1, 1),
    )
    T.has_canonical_format = True
    known = {"_shape", "maxprint", "indices", "indptr", "data",
             "_has_canonical_format", "_has_sorted_indices"}
    if set(vars(T)) != known or T._shape != (1, 1):
        return None
    return {key: value for key, value in vars(T).items()
            if key not in ("_shape", "indices", "indptr", "data")}


# scipy's csr_array constructor checks and re-derives the index dtype (about
# 25 us, as much as a whole product on a small graph). Kernel outputs are
# valid canonical CSR with index arrays of one dtype, int32 unless a value
# needs int64 (what scipy would choose), so they are wrapped directly when
# this scipy's csr_array has the known attributes; otherwise (another scipy
# layout) through the constructor.
_CSR_ATTRS = _csr_template()


def _same_attributes():
    """True when this scipy's csr_matrix holds exactly the attributes of its
    csr_array (then an array's state makes a valid matrix)."""
    parts = (np.zeros(1), np.zeros(1, dtype=np.int32), np.array([0, 1], dtype=np.int32))
    a, m = sp.csr_array(parts, shape=(1, 1)), sp.csr_matrix(parts, shape=(1, 1))
    a.has_canonical_format = m.has_canonical_format = True
    return set(vars(a)) == set(vars(m))


_MATRIX_SHARES_ATTRS = _same_attributes()


def _canonical_csr(data, indices, indptr, shape):
    m, n = int(shape[0]), int(shape[1])
    if (
        _CSR_ATTRS is not None
        and indices.dtype == indptr.dtype
        and (indices.dtype == np.int32
             or (indices.dtype == np.int64
                 and max(m, n, indptr[-1] if m > 0 else 0) > INT32_MAX))
    ):
        C = sp.csr_array.__new__(sp.csr_array)
        attrs = vars(C)
        attrs.update(_CSR_ATTRS)
        attrs.update(_shape=(m, n), indices=indices, indptr=indptr, data=data)
        return C
    C = sp.csr_array((data, indices, indptr), shape=(m, n), copy=False)
    C.has_canonical_format = True
    return C
