"""The design matrix as the compiled BCD kernels take it (private).

Dense X is used Fortran-ordered (one contiguous column per feature); sparse X
as CSC arrays with int32 or int64 indices. float32 data stay float32 (the
solver state is float64). Nothing here densifies a sparse X.
"""
import numpy as np
import scipy.sparse as sp

from sparsecore._ext import _bcd
from sparsecore._validation import contiguous, fortran

__all__ = ["Design", "as_design"]

_I32 = np.iinfo(np.int32).max


class Design:
    """Validated X with the kernel calls the engine needs."""

    def __init__(self, X, name="X"):
        if sp.issparse(X):
            if X.ndim != 2:
                raise ValueError(f"{name} must be 2-D, got shape {X.shape}")
            X = sp.csc_array(X)  # no copy when already CSC
            if X.dtype not in (np.float32, np.float64):
                X = X.astype(np.float64)
            # the kernels need neither sorted indices nor unique entries
            # (duplicates add up), so X is used as given, never modified
            data = contiguous(X.data)
            idx_dtype = np.int32 if (X.nnz <= _I32 and max(X.shape) <= _I32) else np.int64
            self.indices = contiguous(X.indices, dtype=idx_dtype)
            self.indptr = contiguous(X.indptr, dtype=idx_dtype)
            self.data = data
            self.dense = np.empty((0, 0), dtype=data.dtype, order="F")
            self.is_sparse = True
            self.X = X
        else:
            X = np.asarray(X)
            if X.ndim != 2:
                raise ValueError(f"{name} must be 2-D, got shape {X.shape}")
            if X.dtype not in (np.float32, np.float64):
                X = X.astype(np.float64)
            X = fortran(X)
            self.dense = X
            self.data = np.empty(0, dtype=X.dtype)
            self.indices = np.empty(0, dtype=np.int32)
            self.indptr = np.empty(0, dtype=np.int32)
            self.is_sparse = False
            self.X = X
        self.shape = X.shape
        self.dtype = X.dtype
        self.checked_finite = False   # set once the values were checked
        self._stats = {}              # column statistics per sample weighting

    @property
    def nnz(self):
        return int(self.indptr[-1]) if self.is_sparse else self.shape[0] * self.shape[1]

    def col_nnz(self, cols):
        if self.is_sparse:
            return int((self.indptr[cols + 1] - self.indptr[cols]).sum())
        return self.shape[0] * len(cols)

    def kernel_args(self):
        return (self.is_sparse, self.dense, self.data, self.indices, self.indptr)

    # -- products -------------------------------------------------------------
    def xt_dot(self, U, cols=None, n_threads=1):
        """X[:, cols]^T U as a (len(cols), K) array; U is (n, K)."""
        U = fortran(U, dtype=np.float64)
        full = cols is None or len(cols) == self.shape[1]
        if full and n_threads == 1 and self.dtype == np.float64:
            # every column: scipy's CSR kernel on X^T / BLAS gemv are the
            # fastest in float64; scipy would convert float32 data to float64
            # (a copy of X) on every call, so the compiled kernel (float32
            # data, float64 sums) takes those: 2-4x faster per pass
            if self.is_sparse:
                return contiguous(self.X.T @ U, dtype=np.float64)
            return contiguous(self.dense.T @ U)
        if cols is None:
            cols = np.arange(self.shape[1], dtype=np.int64)
        out = np.empty((len(cols), U.shape[1]), dtype=np.float64)
        if len(cols):
            _bcd.xt_dot(*self.kernel_args(), np.asarray(cols, dtype=np.int64), U, out, n_threads)
        return out

    def block_matvec(self, cols, D, out):
        """out (n, K, Fortran) += X[:, cols] @ D."""
        if len(cols):
            _bcd.block_matvec(*self.kernel_args(), np.asarray(cols, dtype=np.int64),
                              contiguous(D, dtype=np.float64), out)
        return out

    def col_stats(self, h=None, cols=None, n_threads=1):
        """(sum_i h_i x_ij, sum_i h_i x_ij^2) for j in cols (h None: ones).
        Statistics of all columns are cached per weighting (a path reuses them)."""
        if cols is None:
            key = None if h is None else hash(contiguous(h, dtype=np.float64).tobytes())
            if key not in self._stats:
                self._stats.clear()
                self._stats[key] = self.col_stats(h, np.arange(self.shape[1], dtype=np.int64), n_threads)
            s1, s2 = self._stats[key]
            return s1.copy(), s2.copy()
        cols = np.asarray(cols, dtype=np.int64)
        s1 = np.empty(len(cols))
        s2 = np.empty(len(cols))
        hh = np.empty(0) if h is None else contiguous(h, dtype=np.float64)
        if len(cols):
            _bcd.col_stats(*self.kernel_args(), cols, hh, s1, s2, n_threads)
        return s1, s2

    def columns_dense(self, cols):
        """X[:, cols] as a dense float64 (n, len(cols)) array."""
        if self.is_sparse:
            return self.X[:, cols].toarray().astype(np.float64, copy=False)
        return np.asarray(self.dense[:, cols], dtype=np.float64)

    def gram(self, cols, h, colsum=None, sum_h=None):
        """X_c[:, cols]^T diag(h) X_c[:, cols] for the (implicitly) centred
        columns when ``colsum`` is given (colsum = sum_i h_i x_ij)."""
        if self.is_sparse:
            Xs = self.X[:, cols]
            G = (Xs.T @ (Xs.multiply(h[:, None]))).toarray() if Xs.nnz else np.zeros((len(cols),) * 2)
            G = np.asarray(G, dtype=np.float64)
        else:
            Xs = np.asarray(self.dense[:, cols], dtype=np.float64)
            Xh = Xs * np.sqrt(h)[:, None]
            G = Xh.T @ Xh
        if colsum is not None:
            G -= np.outer(colsum, colsum) / sum_h
        return G


def as_design(X, name="X"):
    return X if isinstance(X, Design) else Design(X, name)
