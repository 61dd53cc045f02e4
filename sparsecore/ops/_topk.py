"""Per-row top-k of a sparse product ``A @ B``, without forming the product."""
import numbers

import numpy as np
import scipy.sparse as sp

from sparsecore import _threads
from sparsecore._ext import _sparse
from sparsecore._validation import as_csr_parts, check_allocation, contiguous, index_dtype_for

__all__ = ["topk_product"]

# Multiplies per thread below which a parallel region does not pay.
_FLOPS_PER_THREAD = 1 << 16
# Rows go through the kernel 8 at a time (one SIMD lane each) when they
# multiply, on average, at least n / _BLOCKED_DIV entries: then almost every
# column is touched anyway and the lanes share every pass over B.
_BLOCKED_DIV = 8


def _float_dtype(A, B):
    for name, X in (("A", A), ("B", B)):
        if X.dtype.kind == "c":
            raise TypeError(
                f"topk_product: {name} has complex dtype {X.dtype}; complex values have no order"
            )
        if X.dtype.kind not in "biuf":
            raise TypeError(f"topk_product: {name} has unsupported dtype {X.dtype}")
    out = np.result_type(A.dtype, B.dtype)
    if out == np.float32:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def topk_product(A, B, k, *, exclude=None, n_threads=None):
    """The ``k`` largest entries of every row of ``A @ B``.

    Row by row (or 8 rows at a time, one SIMD lane each, when rows touch most
    columns), the product row is accumulated in a per-thread workspace over
    the ``B.shape[1]`` columns (Gustavson's sparse accumulator) and the best
    ``k`` columns are selected from those clearing a lower bound of the
    ``k``-th best value, so neither the product nor a dense operand is ever
    formed. With user embeddings ``A`` and item
    embeddings ``V`` (both sparse), ``topk_product(A, V.T, 20,
    exclude=seen)`` recommends 20 unseen items to every user.

    Parameters
    ----------
    A : scipy.sparse array or matrix of shape (m, d)
    B : scipy.sparse array or matrix of shape (d, n)
        Any format (converted once to CSR; inputs are never modified).
    k : int
        Entries per row, ``1 <= k <= n``.
    exclude : scipy.sparse array or matrix of shape (m, n) or None
        Columns never returned for a row: every stored entry of row ``r``
        (whatever its value) excludes that column from row ``r``.
    n_threads : int or None, default=None
        Threads (None or -1: all). Small products run on one thread.

    Returns
    -------
    indices : ndarray of int64, shape (m, k)
        Columns, best first: value descending, then column ascending.
    values : ndarray of shape (m, k)
        The entries of ``A @ B`` at those columns; float32 if both operands
        are float32 (and summed in float32), float64 otherwise. Columns the product does not store are candidates with
        value 0. A row with fewer than ``k`` columns left after exclusion
        is padded with index -1 and value -inf.

    Raises
    ------
    ValueError
        Mismatched shapes, ``k`` out of range, non-finite values, invalid
        CSR structures.
    TypeError
        Non-sparse operands, complex or non-numeric dtypes, non-integer k.

    Notes
    -----
    Results do not depend on ``n_threads``: every row is summed in the same
    order (``A``'s columns ascending, then ``B``'s stored order) without
    fused multiply-adds. Cost: the product's multiplies plus a pass over the
    touched columns (every column for rows that touch many).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from sparsecore.ops import topk_product
    >>> U = sp.csr_array(np.array([[1.0, 0.0], [0.0, 2.0]]))
    >>> V = sp.csr_array(np.array([[3.0, 0.0], [0.0, 1.0], [-1.0, 5.0]]))
    >>> idx, val = topk_product(U, V.T, 2)
    >>> idx
    array([[0, 1],
           [2, 1]])
    >>> val
    array([[ 3.,  0.],
           [10.,  2.]])
    """
    for name, X in (("A", A), ("B", B)):
        if not sp.issparse(X):
            raise TypeError(
                f"topk_product: {name} must be a scipy.sparse array or matrix, got "
                f"{type(X).__module__}.{type(X).__name__}"
            )
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(
            f"topk_product: dimension mismatch: A has shape {A.shape} and B has shape "
            f"{B.shape}; A.shape[1] must equal B.shape[0]"
        )
    dtype = _float_dtype(A, B)
    m, d = A.shape
    n = B.shape[1]
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"topk_product: k must be an int, got {type(k).__name__} {k!r}")
    if not 1 <= k <= n:
        raise ValueError(
            f"topk_product: k must be in [1, {n}] (the number of columns of A @ B), got {k}"
        )
    nt = _threads.effective_n_threads(n_threads)
    a = as_csr_parts(A, "A")
    if not a.sorted:  # each row is summed in column order: canonical A (a copy)
        A = sp.csr_array((a.data, a.indices, a.indptr), shape=A.shape, copy=True)
        A.sum_duplicates()
        a = as_csr_parts(A, "A")
    b = as_csr_parts(B, "B")
    e = None
    if exclude is not None:
        if not sp.issparse(exclude):
            raise TypeError(
                f"topk_product: exclude must be a scipy.sparse array or matrix or None, got "
                f"{type(exclude).__module__}.{type(exclude).__name__}"
            )
        if exclude.shape != (m, n):
            raise ValueError(
                f"topk_product: exclude has shape {exclude.shape}, expected {(m, n)} "
                f"(the shape of A @ B)"
            )
        e = as_csr_parts(exclude, "exclude")
    for name, parts in (("A", a), ("B", b)):
        if parts.data.size and not np.all(np.isfinite(parts.data)):
            raise ValueError(f"topk_product: {name} contains NaN or infinity")
    itype = index_dtype_for(m, d, n, a.nnz, b.nnz, e.nnz if e is not None else 0)
    a = a.with_index_dtype(itype)
    b = b.with_index_dtype(itype)
    ax = contiguous(a.data, dtype=dtype)
    bx = contiguous(b.data, dtype=dtype)
    ep = ej = None
    if e is not None:
        e = e.with_index_dtype(itype)
        ep, ej = e.indptr, e.indices
    flops = _sparse.topk_product_flops(a.indptr, a.indices, b.indptr, m, d)
    blocked = flops * _BLOCKED_DIV >= m * n
    nt = _threads.threads_for_work(nt, flops + m * min(n, 64), _FLOPS_PER_THREAD)
    # the output, and per thread the accumulator, stamps and candidates
    cap = k + max(k, 64)
    per_thread = (n * (8 * dtype.itemsize + 1) + d * (8 * dtype.itemsize + 16) + 8 * 16 * cap
                  if blocked else n * (dtype.itemsize + 24) + 16 * cap)
    need = m * k * (8 + dtype.itemsize) + nt * per_thread
    if need >= 1 << 26:
        check_allocation(need, f"topk_product: the ({m}, {k}) output and workspaces")
    return _sparse.topk_product(a.indptr, a.indices, ax, b.indptr, b.indices, bx, ep, ej,
                                m, d, n, int(k), blocked, nt)
