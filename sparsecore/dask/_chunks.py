"""Work on single CSR chunks, run inside Dask tasks: canonical conversion,
row and column slices, stacking and sums. Everything returns a canonical
:class:`scipy.sparse.csr_array` (sorted indices, no duplicates) with int32
indices when they fit, as :func:`sparsecore.spgemm` does."""
import numpy as np
import scipy.sparse as sp

from sparsecore._validation import index_dtype_for

__all__ = [
    "as_canonical_csr",
    "chunk_nnz",
    "col_slice",
    "csr_nbytes",
    "empty_csr",
    "hstack",
    "row_slice",
    "sum_csr",
    "vstack",
]


def _csr(data, indices, indptr, shape):
    itype = index_dtype_for(int(indptr[-1]) if len(indptr) else 0, *shape)
    C = sp.csr_array(
        (data, indices.astype(itype, copy=False), indptr.astype(itype, copy=False)),
        shape=shape, copy=False,
    )
    C.has_canonical_format = True
    return C


def empty_csr(shape, dtype):
    """An all-zero canonical CSR chunk."""
    return _csr(np.empty(0, dtype=dtype), np.empty(0, np.int32),
                np.zeros(shape[0] + 1, np.int32), tuple(shape))


def as_canonical_csr(X, what="chunk"):
    """``X`` as a canonical csr_array (a copy only when it is not one)."""
    if not sp.issparse(X):
        raise TypeError(
            f"{what} is a {type(X).__module__}.{type(X).__name__}; sparsecore.dask "
            f"needs scipy.sparse chunks"
        )
    if X.ndim != 2:
        raise ValueError(f"{what} must be 2-D, got shape {X.shape}")
    if not isinstance(X, sp.csr_array):
        X = sp.csr_array(X)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def chunk_nnz(X, expected_shape, what):
    """Stored entries of one input chunk, after checking it is a numeric
    scipy.sparse matrix with the shape the dask array declares."""
    if not sp.issparse(X):
        raise TypeError(
            f"{what} is a {type(X).__module__}.{type(X).__name__}, not a scipy.sparse "
            f"matrix; build sparse dask arrays with sparsecore.dask.from_scipy, "
            f"from_row_blocks or read_matrix_market"
        )
    if tuple(X.shape) != tuple(expected_shape):
        raise ValueError(
            f"{what} has shape {X.shape} but the dask array declares {tuple(expected_shape)}"
        )
    if X.dtype.kind not in "iufc":
        raise TypeError(f"{what} has dtype {X.dtype}; numeric sparse chunks expected")
    return int(X.nnz)


def csr_nbytes(nnz, shape, value_itemsize):
    """Bytes of a CSR matrix with scipy's int32/int64 index choice."""
    isz = np.dtype(index_dtype_for(nnz, *shape)).itemsize
    return int(nnz) * (isz + int(value_itemsize)) + (int(shape[0]) + 1) * isz


def row_slice(X, start, stop):
    """Rows ``start:stop`` of a CSR chunk (views of its arrays)."""
    X = as_canonical_csr(X)
    if start == 0 and stop == X.shape[0]:
        return X
    p0, p1 = int(X.indptr[start]), int(X.indptr[stop])
    return _csr(X.data[p0:p1], X.indices[p0:p1], X.indptr[start:stop + 1] - p0,
                (stop - start, X.shape[1]))


def col_slice(X, start, stop):
    """Columns ``start:stop`` of a CSR chunk."""
    X = as_canonical_csr(X)
    if start == 0 and stop == X.shape[1]:
        return X
    keep = (X.indices >= start) & (X.indices < stop)
    kept_before = np.zeros(X.indices.size + 1, dtype=np.int64)
    np.cumsum(keep, out=kept_before[1:])
    indptr = kept_before[X.indptr]
    return _csr(X.data[keep], X.indices[keep] - start, indptr, (X.shape[0], stop - start))


def vstack(blocks):
    """Stack CSR chunks of equal width on top of each other."""
    blocks = [as_canonical_csr(b) for b in blocks]
    if len(blocks) == 1:
        return blocks[0]
    n = blocks[0].shape[1]
    dtype = np.result_type(*[b.dtype for b in blocks])
    offsets = np.cumsum([0] + [b.nnz for b in blocks])
    indptr = np.concatenate([[0]] + [b.indptr[1:].astype(np.int64) + o
                                     for b, o in zip(blocks, offsets)])
    indices = np.concatenate([b.indices for b in blocks]) if offsets[-1] else np.empty(0, np.int32)
    data = np.concatenate([b.data.astype(dtype, copy=False) for b in blocks])
    return _csr(data, indices, indptr, (sum(b.shape[0] for b in blocks), n))


def hstack(blocks):
    """Put CSR chunks of equal height side by side (rows stay sorted)."""
    blocks = [as_canonical_csr(b) for b in blocks]
    if len(blocks) == 1:
        return blocks[0]
    m = blocks[0].shape[0]
    dtype = np.result_type(*[b.dtype for b in blocks])
    counts = np.stack([np.diff(b.indptr).astype(np.int64) for b in blocks])  # (blocks, m)
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(counts.sum(axis=0), out=indptr[1:])
    nnz = int(indptr[-1])
    indices = np.empty(nnz, dtype=np.int64)
    data = np.empty(nnz, dtype=dtype)
    before = np.cumsum(counts, axis=0) - counts  # entries of earlier blocks, per row
    col0 = 0
    for b, blk in enumerate(blocks):
        if blk.nnz:
            rows = np.repeat(np.arange(m), counts[b])
            dest = indptr[rows] + before[b, rows] + (np.arange(blk.nnz) - blk.indptr[rows])
            indices[dest] = blk.indices.astype(np.int64) + col0
            data[dest] = blk.data
        col0 += blk.shape[1]
    return _csr(data, indices, indptr, (m, col0))


def sum_csr(parts):
    """Sum of CSR chunks of one shape, added pairwise in a fixed order (the
    result does not depend on which task finished first); entries that cancel
    to exactly zero are dropped, as scipy and sparsecore.spgemm drop them."""
    parts = [as_canonical_csr(p) for p in parts]
    while len(parts) > 1:
        nxt = [parts[i] + parts[i + 1] for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = [as_canonical_csr(p) for p in nxt]
    C = parts[0]
    return _csr(C.data, C.indices, C.indptr, C.shape)
