"""The symbolic pass of SpGEMM on its own: multiplies and exact nonzeros per
row block of ``A @ B``, without computing a value.

Planners (the Dask adapter) use it to size outputs before any numeric work.
"""
from dataclasses import dataclass

import numpy as np

from sparsecore import _threads
from sparsecore._ext import _sparse
from sparsecore._validation import as_csr_parts, index_dtype_for
from sparsecore.ops import _spgemm

__all__ = ["SymbolicProduct", "spgemm_symbolic"]


@dataclass(frozen=True)
class SymbolicProduct:
    """Sizes of ``C = A @ B`` per row block, from :func:`spgemm_symbolic`.

    Attributes
    ----------
    shape : tuple of int
        Shape of C.
    row_bounds : ndarray of int64, shape (n_blocks + 1,)
        Block ``b`` holds rows ``row_bounds[b]:row_bounds[b + 1]``.
    flops : ndarray of int64, shape (n_blocks,)
        Multiplies of each block.
    nnz : ndarray of int64, shape (n_blocks,)
        Structural nonzeros of each block: exact, unless values cancel to
        exactly zero (those are dropped by :func:`sparsecore.spgemm`).
    """

    shape: tuple
    row_bounds: np.ndarray
    flops: np.ndarray
    nnz: np.ndarray

    @property
    def total_flops(self):
        """Multiply-adds of the product (the sum of ``flops``)."""
        return int(self.flops.sum())

    @property
    def total_nnz(self):
        """Stored entries of the product (the sum of ``nnz``)."""
        return int(self.nnz.sum())

    def csr_bytes(self, value_dtype):
        """Bytes of C as CSR with values of ``value_dtype`` and the index
        dtype :func:`sparsecore.spgemm` would choose.

        Parameters
        ----------
        value_dtype : dtype
            Dtype of the values of C.

        Returns
        -------
        int
        """
        return csr_nbytes(self.total_nnz, self.shape, value_dtype)


def csr_nbytes(nnz, shape, value_dtype):
    """Bytes of a CSR matrix (scipy's int32/int64 index choice)."""
    itemsize = np.dtype(index_dtype_for(nnz, *shape)).itemsize
    return int(nnz) * (itemsize + np.dtype(value_dtype).itemsize) + (shape[0] + 1) * itemsize


def spgemm_symbolic(A, B, *, row_bounds=None, n_threads=None):
    """Multiplies and exact nonzeros of ``A @ B`` per row block, no values.

    Runs the first two passes of :func:`sparsecore.spgemm` (multiply count
    and exact symbolic count, Gustavson's row-wise formulation with hash or
    marker accumulators; Nagasaka et al., ICPP workshops 2018): about a third
    to a half of the cost of the product, and memory for two integers per row.

    Parameters
    ----------
    A : scipy.sparse array or matrix of shape (m, k)
    B : scipy.sparse array or matrix of shape (k, n)
        Only the structures are read; any dtype.
    row_bounds : array-like of int, optional
        Non-decreasing cuts ``0 = r_0 <= r_1 <= ... <= r_b = m``; the counts
        are summed over each block ``r_i:r_{i+1}``. Default: one block per
        row.
    n_threads : int or None, default=None
        Threads, as in :func:`sparsecore.spgemm`.

    Returns
    -------
    SymbolicProduct

    Raises
    ------
    ValueError
        If the inner dimensions differ, an operand is not a valid CSR
        structure, or ``row_bounds`` is not a valid list of cuts.
    TypeError
        If an operand is not scipy.sparse.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from sparsecore.ops import spgemm_symbolic
    >>> A = sp.csr_array(np.array([[1.0, 1.0], [0.0, 1.0]]))
    >>> s = spgemm_symbolic(A, A, row_bounds=[0, 1, 2])
    >>> s.flops, s.nnz
    (array([3, 1]), array([2, 1]))
    """
    if getattr(A, "ndim", 2) != 2 or getattr(B, "ndim", 2) != 2:
        raise ValueError("spgemm_symbolic: A and B must be 2-D")
    a = as_csr_parts(A, "A")
    b = as_csr_parts(B, "B")
    if a.shape[1] != b.shape[0]:
        raise ValueError(
            f"spgemm_symbolic: dimension mismatch: A has shape {a.shape} and B has "
            f"shape {b.shape}; A.shape[1] must equal B.shape[0]"
        )
    m, k = a.shape
    n = b.shape[1]
    if row_bounds is None:
        cuts = None
    else:
        cuts = np.asarray(row_bounds)
        if cuts.ndim != 1 or cuts.size < 1 or cuts.dtype.kind not in "iu":
            raise ValueError(
                f"row_bounds must be a 1-D sequence of integer cuts, got {row_bounds!r}"
            )
        cuts = cuts.astype(np.int64)
        if cuts[0] != 0 or cuts[-1] != m or np.any(np.diff(cuts) < 0):
            raise ValueError(
                f"row_bounds must rise from 0 to A.shape[0] = {m} without "
                f"decreasing, got {cuts.tolist() if cuts.size <= 8 else cuts}"
            )
    nt = _threads.effective_n_threads(n_threads)
    itype = index_dtype_for(m, k, n, a.nnz, b.nnz)
    a = a.with_index_dtype(itype)
    b = b.with_index_dtype(itype)
    fp, cs = _sparse.spgemm_symbolic(
        a.indptr, a.indices, b.indptr, b.indices, m, k, n, b.sorted, nt,
        _spgemm._FLOPS_PER_THREAD, _spgemm._TASKS_PER_THREAD, _spgemm._ROW_COST,
        _spgemm._PREFETCH_BYTES,
    )
    if cuts is None:
        cuts = np.arange(m + 1, dtype=np.int64)
    return SymbolicProduct((m, n), cuts, np.diff(fp[cuts]), np.diff(cs[cuts]))
