"""KroneckerOperator: A_1 kron A_2 kron ... kron A_I, applied by mode products
and never formed."""
import math
import numbers
from functools import reduce

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from sparsecore._validation import contiguous

__all__ = ["KroneckerOperator", "mode_product_plan"]

# BLAS (scipy.linalg.cython_blas) takes 32-bit sizes.
_BLAS_INT_MAX = 2**31 - 1
_FLOAT_TYPES = (np.float32, np.float64, np.complex64, np.complex128)


def mode_product_plan(rows, cols, tail=1):
    """The order of the mode products and the largest intermediate.

    Applying mode i to a tensor of size S costs S * rows[i] multiply-adds and
    leaves a tensor of size S * rows[i] / cols[i]. By an exchange argument the
    cheapest order sorts the modes by 1/rows[i] - 1/cols[i], largest first
    (the most shrinking factors go first).

    Parameters
    ----------
    rows, cols : sequence of int
        Output and input size of every mode.
    tail : int, default=1
        Trailing dimension carried along (columns of the operand).

    Returns
    -------
    order : tuple of int
    bufsize : int
        Largest intermediate tensor, in elements (tail included).
    """
    n_modes = len(rows)
    order = tuple(sorted(range(n_modes), key=lambda i: -(1.0 / rows[i] - 1.0 / cols[i])))
    dims = list(cols)
    size = math.prod(dims) * tail
    biggest = size
    for i in order:
        size = size // dims[i] * rows[i]
        dims[i] = rows[i]
        biggest = max(biggest, size)
    return order, int(biggest)


def _check_blas_sizes(rows, cols, tail, what):
    _, biggest = mode_product_plan(rows, cols, tail)
    if biggest > _BLAS_INT_MAX:
        raise ValueError(
            f"{what}: an intermediate tensor of {biggest:,} elements exceeds the "
            f"32-bit BLAS limit of {_BLAS_INT_MAX:,}; apply it to fewer columns "
            f"at a time"
        )


def _as_factor(A, i):
    name = f"factors[{i}]"
    if sp.issparse(A):
        A = A.toarray()
    elif isinstance(A, LinearOperator):
        raise TypeError(f"{name} must be a 2-D array, got a LinearOperator")
    try:
        A = np.asarray(A)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a 2-D array; numpy could not convert it: {exc}") from None
    if A.dtype == object or A.dtype.kind not in "biufc":
        raise TypeError(f"{name} has dtype {A.dtype}; a numeric dtype was expected")
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {A.ndim}-D with shape {A.shape}")
    return A


def _working_dtype(dtype):
    """float32/float64/complex64/complex128 for a numeric dtype: integers and
    booleans become float64, float16 float32, extended precision double."""
    dtype = np.dtype(dtype)
    if dtype.type in _FLOAT_TYPES:
        return dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind == "c":
        return np.dtype(np.complex128)
    if dtype.kind == "f":
        return np.dtype(np.float64)
    raise TypeError(f"dtype {dtype} is not numeric")


class KroneckerOperator(LinearOperator):
    """The Kronecker product ``A_1 kron A_2 kron … kron A_I`` as a linear
    operator that is never formed.

    ``x`` of length ``prod(n_i)`` is read as the C-ordered tensor of shape
    ``(n_1, ..., n_I)``, and ``K @ x`` is the chain of mode products
    ``X x_1 A_1 x_2 ... x_I A_I``, the same vector as
    ``np.kron(A_1, np.kron(A_2, ...)) @ x``. A product costs
    ``O(size * sum m_i)`` flops through BLAS and ``O(sum m_i n_i)`` memory
    besides the operands, against ``O(prod m_i * prod n_i)`` for the formed
    matrix.

    Parameters
    ----------
    factors : sequence of array-like of shape (m_i, n_i)
        One or more dense matrices (scipy.sparse factors are densified).
        Integer and boolean factors are promoted to float64; the operator's
        dtype is the common float or complex type of the factors.

    Attributes
    ----------
    factors : tuple of ndarray
        The C-contiguous factors, in the operator's dtype.
    shape : tuple of int
        ``(prod(m_i), prod(n_i))``.
    dtype : numpy.dtype
    n_modes : int
    in_shape, out_shape : tuple of int
        ``(n_1, ..., n_I)`` and ``(m_1, ..., m_I)``: the tensor shapes of the
        operand and of the result.

    Notes
    -----
    It is a :class:`scipy.sparse.linalg.LinearOperator`, so it works with
    ``@``, ``.H``, ``.T``, ``matvec``/``rmatvec``/``matmat`` and the scipy
    iterative solvers. The product of two Kronecker operators with matching
    modes is again one: ``(A kron B) @ (C kron D) = (A C) kron (B D)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.formats import KroneckerOperator
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.standard_normal((3, 4)), rng.standard_normal((5, 6))
    >>> K = KroneckerOperator([A, B])
    >>> K.shape
    (15, 24)
    >>> x = rng.standard_normal(24)
    >>> bool(np.allclose(K @ x, np.kron(A, B) @ x))
    True
    """

    def __init__(self, factors):
        if isinstance(factors, KroneckerOperator):
            factors = factors.factors
        if isinstance(factors, np.ndarray) and factors.ndim == 2:
            raise TypeError(
                "factors must be a sequence of 2-D arrays, got one 2-D array; "
                "wrap it in a list for a single factor"
            )
        if sp.issparse(factors) or not isinstance(factors, (list, tuple)) and not (
            isinstance(factors, np.ndarray) and factors.ndim == 3
        ):
            raise TypeError(
                f"factors must be a list or tuple of 2-D arrays, got "
                f"{type(factors).__name__}"
            )
        factors = [_as_factor(A, i) for i, A in enumerate(factors)]
        if not factors:
            raise ValueError("factors must hold at least one matrix, got an empty sequence")
        from sparsecore._ext._kron import MAX_MODES

        if len(factors) > MAX_MODES:
            raise ValueError(f"at most {MAX_MODES} factors are supported, got {len(factors)}")
        dtype = _working_dtype(np.result_type(*[A.dtype for A in factors]))
        factors = tuple(contiguous(A, dtype=dtype) for A in factors)
        self._factors = factors
        self._cache = {dtype: (factors, None)}
        shape = (
            math.prod(A.shape[0] for A in factors),
            math.prod(A.shape[1] for A in factors),
        )
        super().__init__(dtype=dtype, shape=shape)

    # -- description ------------------------------------------------------
    @property
    def factors(self):
        """The factors ``(A_1, ..., A_I)``."""
        return self._factors

    @property
    def n_modes(self):
        """Number of factors ``I``."""
        return len(self._factors)

    @property
    def in_shape(self):
        """``(n_1, ..., n_I)``: the tensor shape of ``x``."""
        return tuple(A.shape[1] for A in self._factors)

    @property
    def out_shape(self):
        """``(m_1, ..., m_I)``: the tensor shape of ``y``."""
        return tuple(A.shape[0] for A in self._factors)

    @property
    def nnz(self):
        """Nonzeros the formed product would have: the product of the
        factors' nonzero counts."""
        return math.prod(int(np.count_nonzero(A)) for A in self._factors)

    def __repr__(self):
        modes = " kron ".join(f"{A.shape[0]}x{A.shape[1]}" for A in self._factors)
        return (
            f"<{self.shape[0]}x{self.shape[1]} KroneckerOperator of {modes} "
            f"with dtype={self.dtype}>"
        )

    # -- products ---------------------------------------------------------
    def _factors_as(self, dtype, adjoint):
        """Factors (or their conjugate transposes) in ``dtype``, cached."""
        plain, adj = self._cache.get(dtype, (None, None))
        if plain is None:
            plain = tuple(contiguous(A, dtype=dtype) for A in self._factors)
        if adjoint and adj is None:
            adj = tuple(contiguous(A.conj().T) for A in plain)
        self._cache[dtype] = (plain, adj)
        return adj if adjoint else plain

    def _apply(self, X, adjoint):
        """Apply the operator (or its adjoint) to the columns of 2-D X."""
        from sparsecore._ext import _kron

        X = np.asarray(X)
        dtype = _working_dtype(np.result_type(self.dtype, X.dtype))
        mats = self._factors_as(dtype, adjoint)
        rows = [A.shape[0] for A in mats]
        cols = [A.shape[1] for A in mats]
        tail = X.shape[1]
        out_rows = math.prod(rows)
        if out_rows == 0 or tail == 0:
            return np.zeros((out_rows, tail), dtype=dtype)
        if math.prod(cols) == 0:  # an empty inner dimension: the product is zero
            return np.zeros((out_rows, tail), dtype=dtype)
        _check_blas_sizes(rows, cols, tail, "KroneckerOperator product")
        order, bufsize = mode_product_plan(rows, cols, tail)
        x = contiguous(X, dtype=dtype).reshape(-1)
        out = _kron.kron_apply(x, list(mats), tuple(cols), tail, order, bufsize)
        return out.reshape(out_rows, tail)

    def _matvec(self, x):
        return self._apply(np.reshape(x, (-1, 1)), adjoint=False)

    def _matmat(self, X):
        return self._apply(X, adjoint=False)

    def _rmatvec(self, x):
        return self._apply(np.reshape(x, (-1, 1)), adjoint=True)

    def _rmatmat(self, X):
        return self._apply(X, adjoint=True)

    def _adjoint(self):
        return KroneckerOperator([A.conj().T for A in self._factors])

    def _transpose(self):
        return KroneckerOperator([A.T for A in self._factors])

    def dot(self, x):
        """``self @ x``; Kronecker operators with matching modes multiply
        mode by mode and stay Kronecker operators.

        Parameters
        ----------
        x : array_like, LinearOperator or KroneckerOperator
            Right operand.

        Returns
        -------
        KroneckerOperator, LinearOperator or ndarray
            A KroneckerOperator for a compatible Kronecker operand, otherwise
            what ``LinearOperator.dot`` returns.
        """
        if isinstance(x, KroneckerOperator) and self._compatible(x):
            return KroneckerOperator([A @ B for A, B in zip(self._factors, x.factors)])
        return super().dot(x)

    def __matmul__(self, other):
        if isinstance(other, numbers.Number) or np.isscalar(other):
            raise ValueError("Scalar operands are not allowed, use '*' instead")
        return self.dot(other)

    def _compatible(self, other):
        return self.n_modes == other.n_modes and all(
            A.shape[1] == B.shape[0] for A, B in zip(self._factors, other.factors)
        )

    # -- conversions ------------------------------------------------------
    def toarray(self):
        """The formed dense matrix ``np.kron(A_1, np.kron(A_2, ...))``.

        Returns
        -------
        ndarray of shape ``self.shape``

        Raises
        ------
        MemoryError
            When the dense matrix would not fit in the available memory.
        """
        from sparsecore._validation import check_allocation

        nbytes = self.shape[0] * self.shape[1] * self.dtype.itemsize
        check_allocation(2 * nbytes, f"the dense {self.shape[0]:,} x {self.shape[1]:,} Kronecker product")
        return reduce(np.kron, self._factors)

    todense = toarray

    def tocsr(self):
        """The formed product as a ``scipy.sparse.csr_array`` (only the
        nonzeros are stored; useful when the factors are sparse).

        Returns
        -------
        scipy.sparse.csr_array
            With sorted indices.
        """
        from sparsecore._validation import check_allocation

        nnz = self.nnz
        check_allocation(nnz * (self.dtype.itemsize + 16), f"a CSR Kronecker product with {nnz:,} nonzeros")
        out = reduce(
            lambda A, B: sp.kron(A, B, format="csr"),
            [sp.csr_array(A) for A in self._factors],
        )
        out = sp.csr_array(out)
        out.sort_indices()
        return out
