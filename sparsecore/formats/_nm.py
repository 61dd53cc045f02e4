"""N:M sparse matrices: at most N nonzeros in every group of M consecutive
entries along the reduction axis (NVIDIA's 2:4 "semi-structured" sparsity
and its generalisations)."""
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

__all__ = ["NMPattern", "NMSparseMatrix"]

MAX_M = 16


@dataclass(frozen=True)
class NMPattern:
    """N stored values in every group of M consecutive entries, 1 <= N < M <= 16.

    Parameters
    ----------
    n : int
        Stored values per group.
    m : int
        Group length.
    """

    n: int
    m: int

    def __post_init__(self):
        for name, v in (("n", self.n), ("m", self.m)):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool):
                raise TypeError(f"N:M pattern {name} must be an int, got {v!r}")
        if not 1 <= self.m <= MAX_M or self.m < 2:
            raise ValueError(f"m must be in 2..{MAX_M}, got m={self.m}")
        if not 1 <= self.n < self.m:
            raise ValueError(f"n must satisfy 1 <= n < m = {self.m}, got n={self.n}")

    @classmethod
    def of(cls, n, m):
        """A pattern from ints (numpy integers accepted).

        Parameters
        ----------
        n : int
            Stored entries per group.
        m : int
            Group size.

        Returns
        -------
        NMPattern
        """
        n = int(n) if isinstance(n, np.integer) else n
        m = int(m) if isinstance(m, np.integer) else m
        return cls(n, m)

    @property
    def density(self):
        """Fraction of stored values, n / m."""
        return self.n / self.m

    def __str__(self):
        return f"{self.n}:{self.m}"


def _ceil_div(a, b):
    return -(-a // b)


def check_axis(axis):
    if axis not in (0, 1) or isinstance(axis, bool):
        raise ValueError(f"axis must be 0 or 1, got {axis!r}")
    return int(axis)


class NMSparseMatrix(StructuredSparseMatrix):
    """A matrix with N stored values in every group of M consecutive entries.

    With ``axis=1`` (the default) the groups run along each row, i.e. along
    the reduction axis of ``S @ X``; ``axis=0`` groups along columns (the
    transpose of an ``axis=1`` matrix, which is what ``S.T`` returns without
    copying anything).

    Storage ("core" orientation: the rows are the rows of the matrix for
    ``axis=1`` and its columns for ``axis=0``): ``values`` of shape
    (rows, G * N) and ``indices`` (uint8) of the same shape, G = ceil(K / M)
    groups per row of length K. ``indices`` holds each value's offset inside
    its group, increasing within a group. A group with fewer than N nonzeros
    stores explicit zeros. When K is not a multiple of M the last group is
    partial: slots pointing past K must hold zeros.

    Parameters
    ----------
    arg : tuple (values, indices), ndarray or NMSparseMatrix
        The compressed parts (core orientation), or a dense matrix that is
        already N:M (as :meth:`from_dense`).
    shape : (int, int), optional
        The matrix shape. Default: G * M entries per core row.
    n, m : int
        The pattern N:M, 1 <= n < m <= 16.
    axis : {1, 0}, default=1
    copy : bool, default=True
        Copy the parts (then made read-only).

    See Also
    --------
    sparsecore.ops.nm_prune : magnitude (or score) pruning to N:M.
    sparsecore.ops.spmm : the products.
    """

    def __init__(self, arg, shape=None, *, n, m, axis=1, copy=True):
        pattern = NMPattern.of(n, m)
        axis = check_axis(axis)
        if isinstance(arg, tuple) and len(arg) == 2:
            self._init_parts(arg[0], arg[1], shape, pattern, axis, copy)
            return
        other = type(self).from_dense(arg, n, m, axis=axis)
        if shape is not None and check_shape(shape) != other.shape:
            raise ValueError(f"shape {tuple(shape)} differs from the input's shape {other.shape}")
        self.__dict__.update(other.__dict__)

    # ---- construction ----

    @classmethod
    def _from_trusted(cls, values, idx, core_shape, pattern, axis):
        self = cls.__new__(cls)
        self._values = readonly(values)
        self._idx = readonly(idx)
        self._core_shape = core_shape
        self._pattern = pattern
        self._axis = axis
        self._shape = core_shape if axis == 1 else core_shape[::-1]
        self._T = None
        self._csr = None
        self._nnz = None
        return self

    def _init_parts(self, values, indices, shape, pattern, axis, copy):
        N, M = pattern.n, pattern.m
        values = np.asarray(values)
        indices = np.asarray(indices)
        if values.ndim != 2:
            raise ValueError(f"values must be 2-D (rows, groups * n), got shape {values.shape}")
        dtype = as_value_dtype(values.dtype, "values")
        if indices.shape != values.shape:
            raise ValueError(
                f"indices has shape {indices.shape} but values has shape {values.shape}"
            )
        if indices.dtype.kind not in "iu":
            raise TypeError(f"indices must hold integers, got dtype {indices.dtype}")
        R, GN = values.shape
        if GN % N:
            raise ValueError(
                f"values has {GN} columns, not a multiple of n = {N} ({pattern} stores "
                f"{N} values per group)"
            )
        G = GN // N
        if shape is None:
            core = (R, G * M)
        else:
            shape = check_shape(shape)
            core = shape if axis == 1 else shape[::-1]
            if core[0] != R or _ceil_div(core[1], M) != G:
                raise ValueError(
                    f"values has shape {values.shape}; a {shape} matrix {pattern} along "
                    f"axis {axis} needs ({core[0]}, {_ceil_div(core[1], M) * N})"
                )
        if indices.size and (indices.min() < 0 or indices.max() >= M):
            k = np.unravel_index(int(np.argmax((indices < 0) | (indices >= M))), indices.shape)
            raise ValueError(
                f"indices[{k[0]}, {k[1]}] = {indices[k]}: in-group offsets must be in "
                f"0..{M - 1} for {pattern}"
            )
        idx3 = indices.reshape(R, G, N).astype(np.int16)
        if N > 1 and R and G:
            bad = np.diff(idx3, axis=2) <= 0
            if bad.any():
                i, g, _ = np.unravel_index(int(np.argmax(bad)), bad.shape)
                raise ValueError(
                    f"offsets of group {g} of row {i} are {idx3[i, g].tolist()}; they must "
                    f"be strictly increasing (each position stored once)"
                )
        K = core[1]
        if K % M and R and G:
            cols = (G - 1) * M + idx3[:, -1, :]
            past = (cols >= K) & (values.reshape(R, G, N)[:, -1, :] != 0)
            if past.any():
                i = int(np.argmax(past.any(axis=1)))
                raise ValueError(
                    f"row {i} stores a nonzero past column {K - 1} in its last, partial "
                    f"group; values outside the shape must be zero"
                )
        vals = np.array(values, dtype=dtype, order="C", copy=copy or None)
        idx = np.array(indices, dtype=np.uint8, order="C", copy=copy or None)
        self._values = readonly(vals) if (copy or vals is not values) else vals
        self._idx = readonly(idx) if (copy or idx is not indices) else idx
        self._core_shape = core
        self._pattern = pattern
        self._axis = axis
        self._shape = core if axis == 1 else core[::-1]
        self._T = None
        self._csr = None
        self._nnz = None

    @classmethod
    def from_dense(cls, A, n, m, *, axis=1, n_threads=None):
        """Compress a dense matrix that is already N:M.

        Parameters
        ----------
        A : array_like, shape (rows, cols)
        n, m : int
        axis : {1, 0}, default=1
            Groups of m run along axis 1 (rows) or axis 0 (columns).
        n_threads : int, optional

        Raises
        ------
        ValueError
            If a group holds more than n nonzeros; the message names it.
            Use :func:`sparsecore.ops.nm_prune` to make a matrix N:M.
        """
        return cls._compress(A, None, n, m, axis, n_threads, "A")

    @classmethod
    def from_mask(cls, A, mask, n, m, *, axis=1, n_threads=None):
        """Store ``A`` at the True entries of ``mask`` (an N:M boolean pattern).

        Entries of ``A`` outside the mask are dropped; masked entries are
        stored even when zero.

        Parameters
        ----------
        A : array_like, 2-D
            Dense values.
        mask : ndarray of bool, same shape as ``A``
            N:M pattern: the entries to store.
        n, m : int
            The pattern: at most ``n`` stored entries in every ``m`` consecutive ones.
        axis : {0, 1}, optional
            Axis along which the groups of ``m`` run.
        n_threads : int or None, optional
            Threads for the compression.

        Returns
        -------
        NMSparseMatrix
        """
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"mask must be a boolean array, got dtype {mask.dtype}")
        return cls._compress(A, mask, n, m, axis, n_threads, "mask")

    @classmethod
    def _compress(cls, A, mask, n, m, axis, n_threads, what):
        from sparsecore._ext import _spmm
        from sparsecore._threads import effective_n_threads

        pattern = NMPattern.of(n, m)
        axis = check_axis(axis)
        A = np.asarray(A)
        if A.ndim != 2:
            raise ValueError(f"A must be 2-D, got shape {A.shape}")
        dtype = as_value_dtype(A.dtype, "A")
        if mask is not None and mask.shape != A.shape:
            raise ValueError(f"mask has shape {mask.shape} but A has shape {A.shape}")
        nt = effective_n_threads(n_threads)
        A = np.asarray(A, dtype=dtype)
        core = A if axis == 1 else A.T
        R, K = core.shape
        G = _ceil_div(K, pattern.m)
        values = np.zeros((R, G * pattern.n), dtype=dtype)
        idx = np.zeros((R, G * pattern.n), dtype=np.uint8)
        if R and K:
            core = element_strides(core)
            cmask = None
            if mask is not None:
                cmask = element_strides((mask if axis == 1 else mask.T).view(np.uint8))
            bad = _spmm.nm_compress(core, cmask, pattern.n, pattern.m, values, idx, nt)
            if bad is not None:
                i, g = bad
                lo, hi = g * pattern.m, min(K, (g + 1) * pattern.m)
                src = cmask if cmask is not None else core
                count = int(np.count_nonzero(src[i, lo:hi]))
                where = (f"row {i}, columns {lo}..{hi - 1}" if axis == 1
                         else f"column {i}, rows {lo}..{hi - 1}")
                kind = "True entries" if mask is not None else "nonzeros"
                raise ValueError(
                    f"{what} is not {pattern} along axis {axis}: {where} hold {count} "
                    f"{kind}, at most {pattern.n} allowed"
                    + ("" if mask is not None else "; prune it with sparsecore.ops.nm_prune")
                )
        return cls._from_trusted(values, idx, (R, K), pattern, axis)

    # ---- attributes ----

    @property
    def values(self):
        """Stored values, (core rows, G * n), read-only."""
        return self._values

    @property
    def indices(self):
        """In-group offsets (uint8) of the stored values, read-only."""
        return self._idx

    @property
    def pattern(self):
        """The :class:`NMPattern`."""
        return self._pattern

    @property
    def n(self):
        """N, the stored values per group."""
        return self._pattern.n

    @property
    def m(self):
        """M, the group length."""
        return self._pattern.m

    @property
    def axis(self):
        """1: groups run along rows; 0: along columns."""
        return self._axis

    @property
    def dtype(self):
        return self._values.dtype

    @property
    def nnz(self):
        if self._nnz is None:
            R, K = self._core_shape
            M = self._pattern.m
            total = self._values.size
            if K % M and R:
                N = self._pattern.n
                G = _ceil_div(K, M)
                last = self._idx.reshape(R, G, N)[:, -1, :].astype(np.int64) + (G - 1) * M
                total -= int(np.count_nonzero(last >= K))
            self._nnz = int(total)
        return self._nnz

    def _describe(self):
        return f"{self._pattern} along axis {self._axis}"

    # ---- conversions ----

    def _core_dense(self, fill=None, dtype=None):
        R, K = self._core_shape
        N, M = self._pattern.n, self._pattern.m
        G = _ceil_div(K, M)
        D = np.zeros((R, G, M), dtype=dtype or self.dtype)
        src = self._values if fill is None else np.full(self._values.shape, fill, dtype=D.dtype)
        np.put_along_axis(D, self._idx.reshape(R, G, N).astype(np.intp), src.reshape(R, G, N), axis=2)
        D = D.reshape(R, G * M)[:, :K]
        return D

    def toarray(self):
        D = self._core_dense()
        return contiguous(D if self._axis == 1 else D.T)

    def mask(self):
        """Boolean array of the stored positions (explicit zeros included).

        Returns
        -------
        ndarray of bool, shape (m, n)
        """
        D = self._core_dense(fill=True, dtype=bool)
        return contiguous(D if self._axis == 1 else D.T)

    def csr_parts(self):
        """(indptr, indices, data) of this matrix as canonical CSR, cached.

        The N:M structure along axis 1 is CSR with an implicit row pointer;
        along axis 0 this is the transposed structure the products use.

        Returns
        -------
        indptr, indices : ndarray of int
            CSR structure.
        data : ndarray
            Stored values (the cached arrays; do not modify).
        """
        if self._csr is None:
            R, K = self._core_shape
            N, M = self._pattern.n, self._pattern.m
            GN = self._values.shape[1]
            cols = (np.arange(GN, dtype=np.int64) // N * M)[None, :] + self._idx
            rows = np.broadcast_to(np.arange(R, dtype=np.int64)[:, None], cols.shape)
            keep = cols < K
            r, c, v = rows[keep], cols[keep], self._values[keep]
            if self._axis == 0:
                r, c = c, r
            C = sp.csr_array((v, (r, c)), shape=self.shape)
            C.sum_duplicates()  # none: also sorts the columns of every row
            itype = index_dtype_for(C.nnz, max(self.shape))
            self._csr = tuple(
                readonly(contiguous(a, dtype=t))
                for a, t in ((C.indptr, itype), (C.indices, itype), (C.data, self.dtype))
            )
        return self._csr

    def to_scipy(self, format="csr"):
        """The matrix as a canonical ``scipy.sparse.csr_array`` (explicit zeros kept).

        Parameters
        ----------
        format : str, optional
            A scipy.sparse format name (default ``'csr'``); other formats are converted
            from CSR.

        Returns
        -------
        scipy.sparse array
        """
        if format != "csr":
            return self.to_scipy("csr").asformat(format)
        indptr, indices, data = self.csr_parts()
        return sp.csr_array((data.copy(), indices.copy(), indptr.copy()), shape=self.shape)

    def tocsr(self):
        """The matrix as a ``scipy.sparse.csr_array``.

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
            self._values.astype(dtype), self._idx, self._core_shape, self._pattern, self._axis
        )

    def copy(self):
        """A copy that shares no memory with this matrix.

        Returns
        -------
        NMSparseMatrix
        """
        return type(self)._from_trusted(
            self._values.copy(), self._idx.copy(), self._core_shape, self._pattern, self._axis
        )

    @property
    def T(self):
        """The transpose: the same arrays, grouped along the other axis."""
        if self._T is None:
            T = type(self)._from_trusted(
                self._values, self._idx, self._core_shape, self._pattern, 1 - self._axis
            )
            T._T = self
            self._T = T
        return self._T


def element_strides(a):
    """``a`` itself when it is aligned with whole-element strides, else a C copy."""
    if a.flags.aligned and all(s % a.itemsize == 0 for s in a.strides):
        return a
    return contiguous(a)
