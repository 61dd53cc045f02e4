"""The ``k`` largest entries of every row of a sparse product, as sparse output."""
import numbers

import numpy as np
import scipy.sparse as sp

from sparsecore import _threads
from sparsecore._ext import _sparse
from sparsecore._validation import as_csr_parts, check_allocation, contiguous, index_dtype_for

__all__ = ["spgemm_topk"]

# Row blocks of the fallback path hold about this many multiplies, so its
# scratch stays bounded whatever the size of the full product.
_BLOCK_FLOPS = 1 << 22
# The per-row kernel runs on row chunks of m / _CHUNKS rows (at least
# _CHUNK_MIN_ROWS): small scratch next to the output, few kernel calls.
_CHUNKS = 64
_CHUNKS_THREADED = 8
_CHUNK_MIN_ROWS = 256
# rows post-processed together (numpy temporaries of this many rows)
_POST_ROWS = 512


def _per_row_kernel():
    """``sparsecore.ops.topk_product`` (the per-row top-k kernel of the
    recommendation work), when this build has it."""
    import sparsecore.ops as ops

    return getattr(ops, "topk_product", None)


def spgemm_topk(A, B, k, *, threshold=None, n_threads=None):
    """Keep the ``k`` largest entries of every row of ``A @ B``.

    The product is never formed: with the per-row top-k kernel
    (:func:`sparsecore.ops.topk_product`) each row is accumulated in a
    per-thread workspace and only its ``k`` best entries are kept, so memory
    is the ``m x k`` result plus per-thread workspaces (as in
    sparse_dot_topn's ``sp_matmul_topn``). Builds without that kernel
    compute the product in row blocks of bounded size and select from each
    block. The typical use is cosine-similarity search: with
    L2-normalised TF-IDF rows ``X``, ``spgemm_topk(X, X.T, 10)`` holds every
    document's 10 nearest neighbours.

    Parameters
    ----------
    A : scipy.sparse array or matrix of shape (m, d)
    B : scipy.sparse array or matrix of shape (d, n)
        Real values (any format; inputs are never modified).
    k : int
        Entries kept per row, ``k >= 1`` (at most ``n`` can exist).
    threshold : float or None, default=None
        Keep only entries greater than ``threshold``.
    n_threads : int or None, default=None
        Threads (None or -1: all).

    Returns
    -------
    C : scipy.sparse.csr_array of shape (m, n)
        Canonical CSR holding, for every row, the (at most) ``k`` largest
        stored entries of ``A @ B`` (plus-times; exact-zero sums are not
        stored, as in :func:`sparsecore.spgemm`), ties broken by the lower
        column. float32 if both operands are float32, float64 otherwise.

    Raises
    ------
    ValueError
        ``k < 1``, mismatched shapes, a NaN threshold.
    TypeError
        Non-sparse operands, complex dtypes, a non-integer ``k``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from sparsecore.ops import spgemm_topk
    >>> X = sp.csr_array(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0]]))
    >>> spgemm_topk(X, X.T, 1).toarray()
    array([[ 5.,  0.],
           [ 0., 10.]])
    """
    for name, X in (("A", A), ("B", B)):
        if not sp.issparse(X):
            raise TypeError(
                f"spgemm_topk: {name} must be a scipy.sparse array or matrix, got "
                f"{type(X).__module__}.{type(X).__name__}"
            )
        if X.dtype.kind not in "biuf":
            raise TypeError(
                f"spgemm_topk: {name} has dtype {X.dtype}; real values are needed to rank entries"
            )
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(
            f"spgemm_topk: dimension mismatch: A has shape {A.shape} and B has shape "
            f"{B.shape}; A.shape[1] must equal B.shape[0]"
        )
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise TypeError(f"spgemm_topk: k must be an int, got {type(k).__name__} {k!r}")
    if k < 1:
        raise ValueError(f"spgemm_topk: k must be at least 1, got {k}")
    if threshold is not None:
        if not isinstance(threshold, numbers.Real) or isinstance(threshold, (bool, np.bool_)):
            raise TypeError(
                f"spgemm_topk: threshold must be a real number or None, got "
                f"{type(threshold).__name__}"
            )
        if np.isnan(threshold):
            raise ValueError("spgemm_topk: threshold is NaN")
        threshold = float(threshold)
    m, n = A.shape[0], B.shape[1]
    dtype = np.dtype(np.float32) if (A.dtype == np.float32 and B.dtype == np.float32) \
        else np.dtype(np.float64)
    k = int(min(k, n)) if n > 0 else 1
    # the structure is checked before anything reads it (A.nnz of a CSR
    # without row pointers would raise an IndexError)
    a, b = as_csr_parts(A, "A"), as_csr_parts(B, "B")
    if m == 0 or n == 0 or a.nnz == 0 or b.nnz == 0:
        return _empty(m, n, dtype)
    nt = _threads.effective_n_threads(n_threads)
    kernel = _per_row_kernel()
    finite = bool(np.all(np.isfinite(a.data)) and np.all(np.isfinite(b.data)))
    del a, b
    if kernel is not None and finite:
        return _topk_by_kernel(A, B, k, threshold, nt, dtype)
    return _topk_blocked(A, B, k, threshold, nt, dtype)


def _empty(m, n, dtype):
    return sp.csr_array((np.zeros(0, dtype), np.zeros(0, np.int32), np.zeros(m + 1, np.int32)),
                        shape=(m, n))


def _topk_by_kernel(A, B, k, threshold, nt, dtype):
    """With the per-row kernel of ``topk_product``, in row chunks written
    straight into the CSR output.

    The kernel also ranks the columns the product does not store (as value
    0): only stored entries are kept, and the rows where unstored columns may
    have displaced stored negative entries are redone exactly. Each chunk of
    about ``m / _CHUNKS`` rows goes through the kernel into small (rows, k)
    buffers, then its kept entries, sorted by column, are appended to output
    arrays with room for ``m * k`` entries (pages past the end are never
    touched) that are shrunk in place at the end: memory is the output plus a
    chunk plus the kernel's per-thread workspaces, not a dense (m, k) result
    and its copies.
    """
    from sparsecore.ops import _topk

    m, d = A.shape
    n = B.shape[1]
    a = as_csr_parts(A, "A")
    if not a.sorted:  # the kernel sums each row in column order: canonical A
        X = sp.csr_array((a.data, a.indices, a.indptr), shape=A.shape, copy=True)
        X.sum_duplicates()
        a = as_csr_parts(X, "A")
    b = as_csr_parts(B, "B")
    # keep the operands' index dtype when they share one (int64 indices would
    # otherwise be copied to int32: more memory than the output here)
    if a.indptr.dtype == b.indptr.dtype:
        itype = a.indptr.dtype
    else:
        itype = index_dtype_for(m, d, n, a.nnz, b.nnz)
    a = a.with_index_dtype(itype)
    b = b.with_index_dtype(itype)
    ax = contiguous(a.data, dtype=dtype)
    bx = contiguous(b.data, dtype=dtype)
    flops = _sparse.topk_product_flops(a.indptr, a.indices, b.indptr, m, d)
    blocked = flops * _topk._BLOCKED_DIV >= m * n
    nt = _threads.threads_for_work(nt, flops + m * min(n, 64), _topk._FLOPS_PER_THREAD)
    otype = np.dtype(index_dtype_for(m * k, n))
    need = m * k * (otype.itemsize + dtype.itemsize) + (m + 1) * otype.itemsize
    if need >= 1 << 26:
        check_allocation(need, f"spgemm_topk: room for the ({m}, {k}) best entries")
    out_idx = np.empty(m * k, dtype=otype)
    out_val = np.empty(m * k, dtype=dtype)
    indptr = np.empty(m + 1, dtype=otype)
    indptr[0] = 0
    may_miss = threshold is None or threshold < 0
    A_rows = None
    slots = np.arange(k)
    # every kernel call is a parallel region ending in a barrier, which costs
    # a scheduler slice when the machine is busy: fewer, larger chunks on
    # several threads
    chunks = _CHUNKS if nt == 1 else _CHUNKS_THREADED
    rows_per_chunk = max(_CHUNK_MIN_ROWS, -(-m // chunks))
    w = 0
    for r0 in range(0, m, rows_per_chunk):
        r1 = min(m, r0 + rows_per_chunk)
        p0, p1 = int(a.indptr[r0]), int(a.indptr[r1])
        idx_c, val_c = _sparse.topk_product(
            a.indptr[r0:r1 + 1] - a.indptr[r0], a.indices[p0:p1], ax[p0:p1],
            b.indptr, b.indices, bx, None, None, r1 - r0, d, n, k, blocked, nt)
        # post-process a few rows at a time: small temporaries
        for s0 in range(0, r1 - r0, _POST_ROWS):
            s1 = min(r1 - r0, s0 + _POST_ROWS)
            idx, val = idx_c[s0:s1], val_c[s0:s1]
            filled = idx >= 0
            keep = filled & (val != 0)
            if threshold is not None:
                keep &= val > threshold
            counts = keep.sum(axis=1)
            cols = np.where(keep, idx, n)
            order = np.argsort(cols, axis=1, kind="stable")  # kept first, by column
            cols = np.take_along_axis(cols, order, axis=1)
            vals = np.take_along_axis(val, order, axis=1)
            if may_miss:
                redo = np.flatnonzero((filled & (val == 0)).any(axis=1))
                if redo.size:
                    if A_rows is None:
                        A_rows = sp.csr_array((ax, a.indices, a.indptr), shape=(m, d))
                    part = _topk_blocked(A_rows[r0 + s0 + redo], B, k, threshold, nt, dtype)
                    per_row = np.diff(part.indptr)
                    at = np.repeat(redo, per_row)
                    pos = np.arange(part.indices.shape[0]) - np.repeat(part.indptr[:-1], per_row)
                    counts[redo] = per_row
                    cols[at, pos] = part.indices
                    vals[at, pos] = part.data
            c = int(counts.sum())
            sel = slots < counts[:, None]
            out_idx[w:w + c] = cols[sel]
            out_val[w:w + c] = vals[sel]
            rows = slice(r0 + s0 + 1, r0 + s1 + 1)
            np.cumsum(counts, out=indptr[rows])
            indptr[rows] += w
            w += c
        del idx_c, val_c
    out_idx.resize(w, refcheck=False)
    out_val.resize(w, refcheck=False)
    C = sp.csr_array((out_val, out_idx, indptr), shape=(m, n), copy=False)
    C.has_canonical_format = True
    return C


def _csr_from_sorted(rows, cols, vals, m, n):
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=m), out=indptr[1:])
    itype = np.int32 if max(n, indptr[-1]) <= np.iinfo(np.int32).max else np.int64
    C = sp.csr_array((vals, cols.astype(itype), indptr.astype(itype)), shape=(m, n), copy=False)
    C.has_canonical_format = True
    return C


def _select_rows(C, k, threshold):
    """Positions of the ``k`` largest entries (> threshold) of each row of a
    canonical CSR matrix, in CSR order."""
    nnz = C.indices.shape[0]
    if nnz == 0:
        return np.zeros(0, dtype=np.int64)
    rowid = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
    order = np.lexsort((C.indices, -C.data, rowid))
    rank = np.arange(nnz) - C.indptr[rowid[order]]
    keep = rank < k
    if threshold is not None:
        keep &= C.data[order] > threshold
    sel = order[keep]
    sel.sort()
    return sel


def _topk_blocked(A, B, k, threshold, nt, dtype):
    """Top-k per row from the product of row blocks of ``A`` with ``B``, each
    of about ``_BLOCK_FLOPS`` multiplies."""
    from sparsecore.ops._spgemm import spgemm

    m, n = A.shape[0], B.shape[1]
    a = as_csr_parts(A, "A")
    b = as_csr_parts(B, "B")
    A = sp.csr_array((a.data.astype(dtype, copy=False), a.indices, a.indptr), shape=A.shape)
    B = sp.csr_array((b.data.astype(dtype, copy=False), b.indices, b.indptr), shape=B.shape)
    row_flops = np.zeros(m + 1, dtype=np.int64)
    if a.indices.size:
        per_entry = np.diff(b.indptr).astype(np.int64)[a.indices]
        np.cumsum(per_entry, out=per_entry)
        ends = a.indptr[1:].astype(np.int64)
        row_flops[1:] = np.where(ends > 0, per_entry[np.maximum(ends - 1, 0)], 0)
    cuts = np.searchsorted(row_flops, np.arange(0, row_flops[-1], _BLOCK_FLOPS), side="right") - 1
    cuts = np.unique(np.concatenate([cuts, [m]]))
    cuts = cuts[(cuts >= 0)]
    if cuts[0] != 0:
        cuts = np.concatenate([[0], cuts])
    rows_out, cols_out, vals_out = [], [], []
    for r0, r1 in zip(cuts[:-1], cuts[1:]):
        if r1 <= r0:
            continue
        C = spgemm(A[r0:r1], B, n_threads=nt)
        sel = _select_rows(C, k, threshold)
        rowid = np.repeat(np.arange(r0, r1), np.diff(C.indptr))
        rows_out.append(rowid[sel])
        cols_out.append(C.indices[sel])
        vals_out.append(C.data[sel])
    if not rows_out:
        return _empty(m, n, dtype)
    return _csr_from_sorted(np.concatenate(rows_out), np.concatenate(cols_out).astype(np.int64),
                            np.concatenate(vals_out).astype(dtype, copy=False), m, n)
