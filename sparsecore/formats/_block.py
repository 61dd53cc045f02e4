"""Block-sparse matrices: dense r x c blocks on a sparse block pattern."""
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sparsecore.formats._base import (
    StructuredSparseMatrix,
    as_value_dtype,
    check_shape,
    readonly,
)
from sparsecore._validation import contiguous, index_dtype_for

__all__ = ["BlockShape", "BlockSparseMatrix"]

BLOCK_DIMS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True, eq=False)
class BlockShape:
    """Rows and columns of the blocks of a :class:`BlockSparseMatrix`.

    Each is one of 1, 2, 4, 8, 16 or 32: square blocks (8 x 8, 16 x 16),
    column blocks r x 1 (the shape CPU kernels tile best: r output rows share
    one input row) and row blocks 1 x c.

    Parameters
    ----------
    rows, cols : int
        Block height and width.
    """

    rows: int
    cols: int

    def __post_init__(self):
        for name, v in (("rows", self.rows), ("cols", self.cols)):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool):
                raise TypeError(f"block_shape {name} must be an int, got {v!r}")
            if v not in BLOCK_DIMS:
                raise ValueError(
                    f"block_shape {name} must be one of {BLOCK_DIMS}, got {v}"
                )

    @classmethod
    def of(cls, spec, name="block_shape"):
        """A BlockShape from a BlockShape or an (r, c) pair.

        Parameters
        ----------
        spec : BlockShape or (int, int)
            The block shape.
        name : str, optional
            Argument name used in error messages.

        Returns
        -------
        BlockShape
        """
        if isinstance(spec, cls):
            return spec
        try:
            r, c = spec
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an (r, c) pair, got {spec!r}") from None
        return cls(int(r) if isinstance(r, np.integer) else r,
                   int(c) if isinstance(c, np.integer) else c)

    def __iter__(self):
        yield self.rows
        yield self.cols

    def __eq__(self, other):
        if isinstance(other, (BlockShape, tuple)):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self):
        return hash((self.rows, self.cols))

    @property
    def size(self):
        """Values per block."""
        return self.rows * self.cols


def _ceil_div(a, b):
    return -(-a // b)


class BlockSparseMatrix(StructuredSparseMatrix):
    """A sparse matrix of dense r x c blocks, stored per block row (BSR).

    Parameters
    ----------
    arg : tuple (blocks, indices, indptr), ndarray or scipy.sparse matrix
        ``blocks`` has shape (nnzb, r, c): the stored blocks, block row by
        block row; ``indices[k]`` is the block column of ``blocks[k]``;
        ``indptr`` (length ceil(rows / r) + 1) delimits the block rows, as in
        :class:`scipy.sparse.bsr_array`. Block columns of a block row are
        sorted here if needed; a repeated block is an error. A dense array
        or a scipy.sparse matrix is converted as by :meth:`from_dense` or
        :meth:`from_scipy`.
    shape : (int, int), optional
        The matrix shape. It need not be a multiple of the block shape: the
        last block row and column are then partial, and stored values outside
        the shape must be zero. Default: the block grid.
    block_shape : (int, int), optional
        Required with a dense ``arg``; for a scipy input it re-blocks it.
    copy : bool, default=True
        Copy the arrays of ``arg`` (they are then made read-only). With
        False, arrays already of the right dtype and layout are used as they
        are, and must not be modified afterwards.

    Attributes
    ----------
    blocks, indices, indptr : ndarray
        The stored blocks and their pattern (read-only).
    block_shape : BlockShape
    nnzb : int
        Number of stored blocks.

    See Also
    --------
    scipy.sparse.bsr_array : the same storage, with scipy's kernels.
    sparsecore.ops.block_prune : block-magnitude pruning of a dense matrix.
    sparsecore.ops.spmm : the products.
    """

    def __init__(self, arg, shape=None, *, block_shape=None, copy=True):
        if isinstance(arg, tuple) and len(arg) == 3:
            self._init_parts(*arg, shape=shape, copy=copy)
            return
        if sp.issparse(arg):
            other = type(self).from_scipy(arg, block_shape)
        elif isinstance(arg, BlockSparseMatrix):
            other = arg if block_shape is None else type(self).from_dense(arg.toarray(), block_shape)
        else:
            if block_shape is None:
                raise TypeError("BlockSparseMatrix from a dense array needs block_shape=(r, c)")
            other = type(self).from_dense(arg, block_shape)
        if shape is not None and check_shape(shape) != other.shape:
            raise ValueError(f"shape {tuple(shape)} differs from the input's shape {other.shape}")
        self.__dict__.update(other.__dict__)
        self._T = None

    # ---- construction ----

    @classmethod
    def _from_trusted(cls, blocks, indices, indptr, shape):
        """Wrap arrays that are already canonical (no checks, no copies)."""
        self = cls.__new__(cls)
        self._blocks = readonly(blocks)
        self._indices = readonly(indices)
        self._indptr = readonly(indptr)
        self._shape = shape
        self._block_shape = BlockShape(blocks.shape[1], blocks.shape[2])
        self._T = None
        return self

    def _init_parts(self, blocks, indices, indptr, shape, copy):
        blocks = np.asarray(blocks)
        if blocks.ndim != 3:
            raise ValueError(
                f"blocks must have shape (nnzb, r, c), got an array of shape {blocks.shape}"
            )
        bs = BlockShape(int(blocks.shape[1]), int(blocks.shape[2]))
        r, c = bs
        dtype = as_value_dtype(blocks.dtype, "blocks")
        indices = np.asarray(indices)
        indptr = np.asarray(indptr)
        for name, a in (("indices", indices), ("indptr", indptr)):
            if a.ndim != 1:
                raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
            if a.dtype.kind not in "iu":
                raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
        nnzb = blocks.shape[0]
        if indices.shape[0] != nnzb:
            raise ValueError(
                f"indices has {indices.shape[0]} entries but blocks holds {nnzb} blocks"
            )
        if shape is None:
            mb = indptr.shape[0] - 1
            nb = int(indices.max()) + 1 if nnzb else 0
            if mb < 0:
                raise ValueError("indptr must have at least one entry")
            shape = (mb * r, nb * c)
        shape = check_shape(shape)
        m, n = shape
        mb, nb = _ceil_div(m, r), _ceil_div(n, c)
        if indptr.shape[0] != mb + 1:
            raise ValueError(
                f"indptr has {indptr.shape[0]} entries; shape {shape} with {r}x{c} "
                f"blocks has {mb} block rows, so it needs {mb + 1}"
            )
        if indptr[0] != 0:
            raise ValueError(f"indptr[0] must be 0, got {indptr[0]}")
        if indptr[-1] != nnzb:
            raise ValueError(f"indptr[-1] = {indptr[-1]} but blocks holds {nnzb} blocks")
        steps = np.diff(indptr)
        if (steps < 0).any():
            i = int(np.argmax(steps < 0))
            raise ValueError(
                f"indptr must be non-decreasing, but indptr[{i + 1}] = {indptr[i + 1]} "
                f"< indptr[{i}] = {indptr[i]}"
            )
        if nnzb and (indices.min() < 0 or indices.max() >= nb):
            k = int(np.argmax((indices < 0) | (indices >= nb)))
            raise ValueError(
                f"indices[{k}] = {indices[k]} is out of range: shape {shape} has {nb} "
                f"block columns of width {c}"
            )
        itype = index_dtype_for(nnzb, nb)
        # sort block columns within block rows; reject repeated blocks
        rows = np.repeat(np.arange(mb), steps)
        order = None
        if nnzb > 1:
            same_row = rows[1:] == rows[:-1]
            d = np.diff(indices.astype(np.int64))
            if (same_row & (d <= 0)).any():
                order = np.lexsort((indices, rows))
                si = indices[order]
                dup = same_row & (np.diff(si.astype(np.int64)) == 0)
                if dup.any():
                    k = int(np.argmax(dup))
                    raise ValueError(
                        f"block ({rows[k]}, {si[k]}) is stored twice; "
                        f"each block may appear once"
                    )
        given = (blocks, indices, indptr)
        if order is not None:
            blocks = blocks[order]
            indices = indices[order]
        arrays = []
        for a, orig, dt in zip((blocks, indices, indptr), given, (dtype, itype, itype)):
            b = np.array(a, dtype=dt, order="C", copy=(copy and a is orig) or None)
            # arrays we made are ours to freeze; the caller's stay as they are
            arrays.append(readonly(b) if b is not orig else b)
        blocks, indices, indptr = arrays
        _check_padding(blocks, indices, indptr, shape, bs, "blocks")
        self._blocks = blocks
        self._indices = indices
        self._indptr = indptr
        self._shape = shape
        self._block_shape = bs
        self._T = None

    @classmethod
    def from_dense(cls, A, block_shape):
        """Store the blocks of ``A`` that hold a nonzero (NaN counts as one).

        Parameters
        ----------
        A : array_like, shape (m, n)
            Real values; need not be a multiple of the block shape.
        block_shape : (int, int)

        Returns
        -------
        BlockSparseMatrix
        """
        A = np.asarray(A)
        bs = BlockShape.of(block_shape)
        if A.ndim != 2:
            raise ValueError(f"A must be 2-D, got shape {A.shape}")
        dtype = as_value_dtype(A.dtype, "A")
        r, c = bs
        m, n = A.shape
        mb, nb = _ceil_div(m, r), _ceil_div(n, c)
        if (m, n) != (mb * r, nb * c):
            P = np.zeros((mb * r, nb * c), dtype=dtype)
            P[:m, :n] = A
        else:
            P = np.asarray(A, dtype=dtype)
        P4 = P.reshape(mb, r, nb, c)
        keep = (P4 != 0).any(axis=(1, 3))
        return cls._from_pattern(P4, keep, (m, n), bs)

    @classmethod
    def _from_pattern(cls, P4, keep, shape, bs):
        """Blocks of a padded (mb, r, nb, c) view at the True entries of keep."""
        mb, nb = keep.shape
        ib, jb = np.divmod(np.flatnonzero(keep), nb) if nb else (np.zeros(0, np.intp),) * 2
        nnzb = ib.shape[0]
        itype = index_dtype_for(nnzb, nb)
        if P4.shape[1] == 1 and P4.shape[3] == 1:
            blocks = P4[:, 0, :, 0][ib, jb].reshape(nnzb, 1, 1)
        else:
            blocks = contiguous(P4.transpose(0, 2, 1, 3)[ib, jb])
        indptr = np.zeros(mb + 1, dtype=itype)
        np.cumsum(np.bincount(ib, minlength=mb), out=indptr[1:])
        return cls._from_trusted(blocks, jb.astype(itype), indptr, shape)

    @classmethod
    def from_scipy(cls, S, block_shape=None):
        """Convert a scipy.sparse matrix.

        A ``bsr_array`` keeps its blocks (its blocksize must be allowed);
        other formats, or a different ``block_shape``, are re-blocked: every
        block holding a stored entry is stored. ``S`` is not modified.

        Parameters
        ----------
        S : scipy.sparse array or matrix
        block_shape : (int, int), optional
            Default: ``S.blocksize`` for BSR input, else required.
        """
        if not sp.issparse(S):
            raise TypeError(
                f"S must be a scipy.sparse array or matrix, got {type(S).__name__}"
            )
        if S.format == "bsr" and (block_shape is None or tuple(BlockShape.of(block_shape)) == S.blocksize):
            BlockShape.of(S.blocksize, "S.blocksize")
            S = S.copy()
            S.sum_duplicates()
            S.sort_indices()
            out = cls((S.data, S.indices, S.indptr), shape=S.shape, copy=False)
            for a in (out._blocks, out._indices, out._indptr):
                readonly(a)  # copies made here
            return out
        if block_shape is None:
            raise TypeError(
                f"converting a scipy {S.format} matrix needs block_shape=(r, c)"
            )
        bs = BlockShape.of(block_shape)
        r, c = bs
        A = S.tocoo(copy=True)
        A.sum_duplicates()
        dtype = as_value_dtype(A.dtype, "S")
        m, n = A.shape
        mb, nb = _ceil_div(m, r), _ceil_div(n, c)
        rows = A.row.astype(np.int64)
        cols = A.col.astype(np.int64)
        keys = (rows // r) * nb + cols // c
        uniq, inv = np.unique(keys, return_inverse=True)
        nnzb = uniq.shape[0]
        itype = index_dtype_for(nnzb, nb)
        blocks = np.zeros((nnzb, r, c), dtype=dtype)
        blocks[inv, rows % r, cols % c] = A.data
        ib = uniq // nb
        indptr = np.zeros(mb + 1, dtype=itype)
        np.cumsum(np.bincount(ib, minlength=mb), out=indptr[1:])
        return cls._from_trusted(blocks, (uniq % nb).astype(itype), indptr, (m, n))

    # ---- attributes ----

    @property
    def blocks(self):
        """Stored blocks, shape (nnzb, r, c)."""
        return self._blocks

    @property
    def indices(self):
        """Block column of each stored block."""
        return self._indices

    @property
    def indptr(self):
        """Block-row pointers into blocks/indices."""
        return self._indptr

    @property
    def block_shape(self):
        """The :class:`BlockShape` (r, c)."""
        return self._block_shape

    @property
    def dtype(self):
        return self._blocks.dtype

    @property
    def nnzb(self):
        """Number of stored blocks."""
        return int(self._blocks.shape[0])

    @property
    def nnz(self):
        m, n = self.shape
        r, c = self._block_shape
        total = self._blocks.size
        if m % r == 0 and n % c == 0:
            return int(total)
        # leave out the padding of partial block rows / columns
        mb, nb = _ceil_div(m, r), _ceil_div(n, c)
        last_row = np.diff(self._indptr)[-1] if mb else 0
        last_col = int(np.count_nonzero(self._indices == nb - 1))
        both = int(np.count_nonzero(self._indices[self._indptr[mb - 1]:] == nb - 1)) if mb else 0
        pr, pc = mb * r - m, nb * c - n
        padded = last_row * pr * c + last_col * pc * r - both * pr * pc
        return int(total - padded)

    def _describe(self):
        r, c = self._block_shape
        return f"{r}x{c} blocks, {self.nnzb} stored"

    # ---- conversions ----

    def toarray(self):
        m, n = self.shape
        r, c = self._block_shape
        mb, nb = _ceil_div(m, r), _ceil_div(n, c)
        D = np.zeros((mb * r, nb * c), dtype=self.dtype)
        ib = np.repeat(np.arange(mb), np.diff(self._indptr))
        D.reshape(mb, r, nb, c).transpose(0, 2, 1, 3)[ib, self._indices] = self._blocks
        return D[:m, :n].copy() if (mb * r, nb * c) != (m, n) else D

    def mask(self):
        """Boolean (m, n) array: True where a stored block covers the entry.

        Returns
        -------
        ndarray of bool, shape (m, n)
        """
        m, n = self.shape
        r, c = self._block_shape
        mb, nb = _ceil_div(m, r), _ceil_div(n, c)
        keep = np.zeros((mb, nb), dtype=bool)
        ib = np.repeat(np.arange(mb), np.diff(self._indptr))
        keep[ib, self._indices] = True
        full = np.repeat(np.repeat(keep, r, axis=0), c, axis=1)
        return full[:m, :n].copy() if full.shape != (m, n) else full

    def to_scipy(self, format="bsr"):
        """The matrix as ``scipy.sparse.bsr_array`` (default) or ``csr_array``.

        BSR needs the shape to be a multiple of the block shape; CSR keeps
        every stored value, explicit zeros inside stored blocks included.

        Parameters
        ----------
        format : str, optional
            A scipy.sparse format name: ``'bsr'`` (default) or ``'csr'``.

        Returns
        -------
        scipy.sparse.bsr_array or scipy.sparse.csr_array
        """
        m, n = self.shape
        r, c = self._block_shape
        mb, nb = _ceil_div(m, r), _ceil_div(n, c)
        B = sp.bsr_array(
            (self._blocks.copy(), self._indices.copy(), self._indptr.copy()),
            shape=(mb * r, nb * c),
        )
        if format == "bsr":
            if (mb * r, nb * c) != (m, n):
                raise ValueError(
                    f"a bsr_array needs a shape that is a multiple of the {r}x{c} "
                    f"blocks, but this matrix is {m}x{n}; use to_scipy('csr')"
                )
            return B
        if format == "csr":
            C = sp.csr_array(B.tocsr())
            if C.shape != (m, n):
                C = sp.csr_array(C[:m, :n])
            C.sort_indices()
            return C
        raise ValueError(f"format must be 'bsr' or 'csr', got {format!r}")

    tobsr = to_scipy

    def tocsr(self):
        """The matrix as a canonical ``scipy.sparse.csr_array``.

        Returns
        -------
        scipy.sparse.csr_array
        """
        return self.to_scipy("csr")

    def astype(self, dtype):
        dtype = as_value_dtype(dtype, "dtype")
        if dtype == self.dtype:
            return self
        return type(self)._from_trusted(
            self._blocks.astype(dtype), self._indices, self._indptr, self.shape
        )

    def copy(self):
        """A copy with its own arrays.

        Returns
        -------
        BlockSparseMatrix
        """
        return type(self)._from_trusted(
            self._blocks.copy(), self._indices.copy(), self._indptr.copy(), self.shape
        )

    @property
    def T(self):
        if self._T is None:
            m, n = self.shape
            r, c = self._block_shape
            mb, nb = _ceil_div(m, r), _ceil_div(n, c)
            ib = np.repeat(np.arange(mb, dtype=np.int64), np.diff(self._indptr))
            jb = self._indices
            order = np.lexsort((ib, jb))
            itype = index_dtype_for(self.nnzb, mb)
            blocks = contiguous(self._blocks[order].transpose(0, 2, 1))
            indptr = np.zeros(nb + 1, dtype=itype)
            np.cumsum(np.bincount(jb, minlength=nb), out=indptr[1:])
            T = type(self)._from_trusted(blocks, ib[order].astype(itype), indptr, (n, m))
            T._T = self
            self._T = T
        return self._T


def _check_padding(blocks, indices, indptr, shape, bs, name):
    """Stored values outside a partial last block row/column must be zero."""
    m, n = shape
    r, c = bs
    mb, nb = _ceil_div(m, r), _ceil_div(n, c)
    if m % r and mb:
        tail = blocks[indptr[mb - 1]:indptr[mb], m - (mb - 1) * r:, :]
        if tail.size and np.any(tail != 0):
            raise ValueError(
                f"{name} of the last block row hold nonzeros below row {m - 1}, "
                f"outside the shape {shape}"
            )
    if n % c and nb:
        last = indices == nb - 1
        tail = blocks[last][:, :, n - (nb - 1) * c:]
        if tail.size and np.any(tail != 0):
            raise ValueError(
                f"{name} of the last block column hold nonzeros right of column "
                f"{n - 1}, outside the shape {shape}"
            )
