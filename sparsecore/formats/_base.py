"""The small base every structured format shares: shape, dtype, nnz, ``@`` on
both sides, ``toarray`` and the scipy ``LinearOperator`` protocol."""
import numbers

import numpy as np
import scipy.sparse as sp

__all__ = ["StructuredSparseMatrix"]

# Value dtypes the structured formats store.
VALUE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_value_dtype(dtype, name):
    """The storage dtype for values of ``dtype``: float32 stays float32,
    other real numbers become float64 (as numpy promotes integers). Byte
    order does not matter: values are stored in the native one."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biufc" and not dtype.isnative:
        dtype = dtype.newbyteorder("=")
    if dtype in VALUE_DTYPES:
        return dtype
    if dtype.kind in "biu" or dtype == np.float16:
        return np.dtype(np.float64) if dtype.kind != "f" else np.dtype(np.float32)
    raise TypeError(
        f"{name} has dtype {dtype}; structured sparse formats store float32 or "
        f"float64 values (integers are converted to float64)"
    )


def check_shape(shape, name="shape"):
    """A validated (rows, cols) tuple of non-negative ints."""
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a (rows, cols) tuple, got {shape!r}") from None
    if len(shape) != 2 or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape
    ):
        raise TypeError(f"{name} must be a (rows, cols) tuple of ints, got {shape!r}")
    if shape[0] < 0 or shape[1] < 0:
        raise ValueError(f"{name} must be non-negative, got {shape!r}")
    return (int(shape[0]), int(shape[1]))


def readonly(a):
    """``a`` marked read-only (the formats cache derived structure)."""
    a.flags.writeable = False
    return a


class StructuredSparseMatrix:
    """Base class of the structured sparse formats.

    Subclasses hold numpy arrays and define ``shape``, ``dtype``, ``nnz``,
    ``T``, ``toarray`` and ``astype``; the base class gives them ``@`` with
    dense numpy operands on either side (through :func:`sparsecore.ops.spmm`),
    ``@`` with scipy.sparse operands (through scipy), and the protocol of
    :func:`scipy.sparse.linalg.aslinearoperator` (``matvec``, ``rmatvec``,
    ``matmat``, ``rmatmat``).

    Instances are immutable: their arrays are read-only, so derived structure
    (such as the transpose) can be cached.
    """

    # numpy's operators defer to ours (ndarray @ S calls S.__rmatmul__)
    __array_ufunc__ = None
    ndim = 2

    @property
    def shape(self):
        """(rows, cols) of the matrix."""
        return self._shape

    @property
    def dtype(self):
        """Value dtype (float32 or float64)."""
        raise NotImplementedError

    @property
    def nnz(self):
        """Number of stored values inside the shape (explicit zeros included)."""
        raise NotImplementedError

    @property
    def T(self):
        """The transpose (cached)."""
        raise NotImplementedError

    def transpose(self):
        """The transpose, as :attr:`T`.

        Returns
        -------
        StructuredSparseMatrix
        """
        return self.T

    def toarray(self):
        """The matrix as a dense numpy array."""
        raise NotImplementedError

    def to_scipy(self, format="csr"):
        """The matrix as a scipy.sparse array.

        Parameters
        ----------
        format : str, optional
            A scipy.sparse format name (default ``'csr'``).
        """
        raise NotImplementedError

    def astype(self, dtype):
        """A copy with values of ``dtype`` (float32 or float64).

        Parameters
        ----------
        dtype : dtype
            Target value dtype.
        """
        raise NotImplementedError

    @property
    def density(self):
        """Stored values over rows * cols."""
        m, n = self.shape
        return self.nnz / (m * n) if m and n else 0.0

    # ---- products ----

    def matmul(self, X, *, out=None, n_threads=None):
        """``self @ X`` for a dense X, with an output array and a thread count.

        Parameters
        ----------
        X : array_like of shape (n,) or (n, B)
            Dense operand (any layout; see :func:`sparsecore.ops.spmm`).
        out : ndarray, optional
            Where to write the result (shape (m,) or (m, B), the result dtype).
        n_threads : int, optional
            Threads (None: all OpenMP offers).

        Returns
        -------
        ndarray of shape (m,) or (m, B)
        """
        from sparsecore.formats._products import sparse_times_dense

        return sparse_times_dense(self, X, out=out, n_threads=n_threads)

    def __matmul__(self, other):
        if sp.issparse(other):
            return self.to_scipy("csr") @ other
        if isinstance(other, StructuredSparseMatrix):
            return self.to_scipy("csr") @ other.to_scipy("csr")
        if np.isscalar(other):
            raise ValueError("matmul: a scalar operand is not allowed; use *")
        return self.matmul(other)

    def __rmatmul__(self, other):
        from sparsecore.formats._products import result_dtype

        if sp.issparse(other):
            return other @ self.to_scipy("csr")
        if np.isscalar(other):
            raise ValueError("matmul: a scalar operand is not allowed; use *")
        X = np.asarray(other)
        if X.ndim == 1:
            return self.T.matmul(X)
        if X.ndim != 2:
            raise ValueError(
                f"matmul: the dense operand must be 1-D or 2-D, got shape {X.shape}"
            )
        if X.shape[1] != self.shape[0]:
            raise ValueError(
                f"matmul: X has shape {X.shape} but the sparse operand has shape "
                f"{self.shape}; X.shape[1] must equal {self.shape[0]}"
            )
        # X @ S = (S.T @ X.T).T, written straight into a C-order result
        out = np.empty((X.shape[0], self.shape[1]), dtype=result_dtype(self, X, "X"))
        self.T.matmul(X.T, out=out.T)
        return out

    def dot(self, other):
        """``self @ other``.

        Parameters
        ----------
        other : array_like or matrix
            Right operand.

        Returns
        -------
        ndarray or matrix
            As ``self @ other``.
        """
        return self @ other

    # ---- scipy.sparse.linalg.aslinearoperator protocol ----

    def matvec(self, x):
        """``self @ x`` for a vector.

        Parameters
        ----------
        x : array_like of shape (n,) or (n, 1)
            Vector (flattened).

        Returns
        -------
        ndarray of shape (m,)
        """
        return self @ np.asarray(x).reshape(-1)

    def rmatvec(self, x):
        """``self.conj().T @ x`` (real values: ``self.T @ x``).

        Parameters
        ----------
        x : array_like of shape (m,) or (m, 1)
            Vector (flattened).

        Returns
        -------
        ndarray of shape (n,)
        """
        return self.T @ np.asarray(x).reshape(-1)

    def matmat(self, X):
        """``self @ X`` for a 2-D X.

        Parameters
        ----------
        X : array_like of shape (n, B)
            Right operand.

        Returns
        -------
        ndarray of shape (m, B)
        """
        return self @ np.asarray(X)

    def rmatmat(self, X):
        """``self.conj().T @ X`` for a 2-D X.

        Parameters
        ----------
        X : array_like of shape (m, B)
            Right operand.

        Returns
        -------
        ndarray of shape (n, B)
        """
        return self.T @ np.asarray(X)

    def aslinearoperator(self):
        """This matrix as a :class:`scipy.sparse.linalg.LinearOperator`.

        Returns
        -------
        scipy.sparse.linalg.LinearOperator
        """
        from scipy.sparse.linalg import LinearOperator

        return LinearOperator(
            self.shape,
            matvec=self.matvec,
            rmatvec=self.rmatvec,
            matmat=self.matmat,
            rmatmat=self.rmatmat,
            dtype=self.dtype,
        )

    def __repr__(self):
        m, n = self.shape
        return (
            f"<{type(self).__name__} {m}x{n}, {self._describe()}, {self.nnz} stored "
            f"{self.dtype} values>"
        )

    def _describe(self):
        return ""
