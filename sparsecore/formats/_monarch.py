"""Monarch matrices: ``M = P L P^T R`` with block-diagonal ``L`` and ``R``.

After T. Dao, B. Chen, N. Sohoni, A. Desai, M. Poli, J. Grogan, A. Liu,
A. Rao, A. Rudra and C. Re, "Monarch: Expressive Structured Matrices for
Efficient and Accurate Training", ICML 2022. The block layout follows the
authors' reference code (HazyResearch/fly, ``blockdiag_butterfly_multiply``):

* ``right`` (shape ``(k, q, p)``): ``R = blockdiag(right[0], ..., right[k-1])``,
  ``n = k*p`` columns, ``k*q`` rows;
* ``left`` (shape ``(l, s, r)``): ``L = blockdiag(left[0], ..., left[l-1])``,
  ``m = l*s`` rows, ``l*r == k*q`` columns;
* ``y = M x``: ``z = R x``, then block ``i`` of ``L`` reads ``z[i::l]`` and
  writes ``y[i::l]``.

With ``k = l = sqrt(n)`` square blocks this is the paper's ``P L P^T R`` with
the perfect-shuffle ``P``.
"""
import math
import numbers

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from sparsecore import _threads
from sparsecore._ext import _monarch
from sparsecore._validation import contiguous

__all__ = ["MonarchMatrix", "MonarchProduct"]

_KERNEL = {np.dtype(np.float32), np.dtype(np.float64)}
_SUPPORTED = _KERNEL | {np.dtype(np.complex64), np.dtype(np.complex128)}


def as_block_dtype(dtype, what):
    """float32/float64/complex64/complex128; integers and bool become float64
    and float16 becomes float32, as numpy would promote them in a product."""
    dtype = np.dtype(dtype)
    if dtype in _SUPPORTED:
        return dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    raise TypeError(
        f"{what} has dtype {dtype}; Monarch matrices hold float32, float64, "
        f"complex64 or complex128 values"
    )


def _divisors(n):
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def monarch_layout(shape, n_blocks=None):
    """Block shapes ``((k, q, p), (l, s, r))`` of an ``(m, n)`` Monarch matrix.

    The intermediate size is ``min(m, n)``. ``n_blocks`` is an int ``b`` (both
    ``L`` and ``R`` get ``b`` blocks, the paper's class), a pair
    ``(b_L, b_R)``, or None: about ``sqrt(min(m, n))`` blocks, chosen so that
    every slice of the projection has rank one (as ``fly`` picks its default
    sizes).
    """
    m, n = (int(d) for d in shape)
    mid = min(m, n)
    if mid == 0:
        raise ValueError(f"a Monarch matrix needs a non-empty shape, got {(m, n)}")
    if n_blocks is None:
        root = math.isqrt(mid)
        divs = _divisors(mid)
        # k blocks in R, l = mid / k in L: rank-one slices (q == l)
        order = [d for d in divs if d >= root] + [d for d in reversed(divs) if d < root]
        for k in order:
            if n % k == 0 and m % (mid // k) == 0:
                b_r, b_l = k, mid // k
                break
        else:  # pragma: no cover - k = mid always divides when mid == n
            raise ValueError(
                f"no default block counts for shape {(m, n)}; pass n_blocks=(b_L, b_R)"
            )
    else:
        if isinstance(n_blocks, numbers.Integral) and not isinstance(n_blocks, bool):
            b_l = b_r = int(n_blocks)
        elif (isinstance(n_blocks, (tuple, list)) and len(n_blocks) == 2
              and all(isinstance(b, numbers.Integral) and not isinstance(b, bool)
                      for b in n_blocks)):
            b_l, b_r = (int(b) for b in n_blocks)
        else:
            raise TypeError(
                f"n_blocks must be an int, a pair of ints (blocks of L, blocks of R) "
                f"or None, got {n_blocks!r}"
            )
        if b_l < 1 or b_r < 1:
            raise ValueError(f"n_blocks must be positive, got {n_blocks!r}")
        bad = []
        if n % b_r or mid % b_r:
            bad.append(f"R's {b_r} blocks must divide n = {n} and min(m, n) = {mid}")
        if m % b_l or mid % b_l:
            bad.append(f"L's {b_l} blocks must divide m = {m} and min(m, n) = {mid}")
        if bad:
            raise ValueError(
                f"n_blocks={n_blocks!r} does not fit shape {(m, n)}: " + "; ".join(bad)
            )
    k, l = b_r, b_l
    return (k, mid // k, n // k), (l, m // l, mid // l)


class MonarchMatrix(LinearOperator):
    """A Monarch matrix ``M = P L P^T R`` (Dao et al., ICML 2022).

    Stores the diagonal blocks of ``L`` and ``R`` only: ``k*q*p + l*s*r``
    numbers instead of ``m*n`` (``2 n^1.5`` for ``sqrt(n)`` blocks). Products
    run in a compiled kernel (float32/float64, OpenMP over batch panels or
    blocks, bit-identical for any thread count); complex blocks use stacked
    numpy products.

    Parameters
    ----------
    left : array_like, shape (l, s, r)
        Diagonal blocks of ``L``.
    right : array_like, shape (k, q, p)
        Diagonal blocks of ``R``; ``k*q`` must equal ``l*r``.
    n_threads : int or None, default=None
        Threads for products with ``@`` (None: all, as scikit-learn).
    copy : bool, default=True
        Copy the blocks (False keeps them when they are already C-contiguous
        of a supported dtype; do not modify them afterwards).

    Attributes
    ----------
    shape : (int, int)
        ``(l*s, k*p)``.
    dtype : numpy.dtype
    left, right : ndarray
        The blocks (read-only views).
    n_params : int
        Number of stored values.

    Notes
    -----
    ``y = M x`` computes ``z[kk*q + i] = right[kk] @ x[kk*p:(kk+1)*p]``, then
    ``y[j::l] = left[j] @ z[j::l]``. ``M.T`` is a view with the same blocks,
    ``M @ N`` of two Monarch matrices a :class:`MonarchProduct`, and
    ``scipy.sparse.linalg.aslinearoperator(M)`` is ``M`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.formats import MonarchMatrix
    >>> M = MonarchMatrix.random((1024, 1024), random_state=0)
    >>> M.n_params, M.left.shape
    (65536, (32, 32, 32))
    >>> x = np.ones(1024)
    >>> bool(np.allclose(M @ x, M.toarray() @ x))
    True
    """

    def __init__(self, left, right, *, n_threads=None, copy=True):
        left = _as_blocks(left, "left", copy)
        right = _as_blocks(right, "right", copy)
        dtype = np.result_type(left.dtype, right.dtype)
        left = contiguous(left, dtype=dtype)
        right = contiguous(right, dtype=dtype)
        k, q, p = right.shape
        l, s, r = left.shape
        if k * q != l * r:
            raise ValueError(
                f"block shapes do not chain: right has shape {right.shape} "
                f"({k}*{q} = {k * q} rows) but left has shape {left.shape} "
                f"({l}*{r} = {l * r} columns)"
            )
        if n_threads is not None:
            _threads.effective_n_threads(n_threads)  # validates
        left.flags.writeable = False
        right.flags.writeable = False
        self._left = left
        self._right = right
        self._transposed = False
        self.n_threads = n_threads
        self._cast = {}
        self._tcast = {}
        super().__init__(dtype, (l * s, k * p))

    # ------------------------------------------------------------ builders
    @classmethod
    def random(cls, shape, n_blocks=None, *, dtype=np.float64, random_state=None,
               n_threads=None):
        """A Monarch matrix with N(0, 1/fan-in) blocks.

        Parameters
        ----------
        shape : (int, int)
        n_blocks : int, (int, int) or None
            As in :func:`sparsecore.ops.monarch_project`.
        dtype : float32, float64, complex64 or complex128
        random_state : int, numpy Generator or None
        n_threads : int or None

        Returns
        -------
        MonarchMatrix
        """
        (k, q, p), (l, s, r) = monarch_layout(shape, n_blocks)
        rng = np.random.default_rng(random_state)
        dtype = as_block_dtype(dtype, "dtype")

        def draw(size, fan_in):
            x = rng.standard_normal(size)
            if dtype.kind == "c":
                x = (x + 1j * rng.standard_normal(size)) / np.sqrt(2)
            return (x / np.sqrt(fan_in)).astype(dtype)

        return cls(draw((l, s, r), r), draw((k, q, p), p), n_threads=n_threads, copy=False)

    @classmethod
    def from_dense(cls, W, n_blocks=None, **kwargs):
        """The Monarch matrix nearest to ``W`` in Frobenius norm; see
        :func:`sparsecore.ops.monarch_project` for the arguments.

        Parameters
        ----------
        W : array_like of shape (m, n)
            Dense matrix.
        n_blocks : int or tuple of int, optional
            Number of blocks, passed to :func:`sparsecore.ops.monarch_project`.
        **kwargs
            Further arguments of :func:`sparsecore.ops.monarch_project`.

        Returns
        -------
        MonarchMatrix
        """
        from sparsecore.formats._monarch_project import monarch_project

        return monarch_project(W, n_blocks, **kwargs)

    # ---------------------------------------------------------- attributes
    @property
    def left(self):
        """Blocks of ``L``, shape (l, s, r)."""
        return self._left

    @property
    def right(self):
        """Blocks of ``R``, shape (k, q, p)."""
        return self._right

    @property
    def n_blocks(self):
        """(blocks of L, blocks of R)."""
        return self._left.shape[0], self._right.shape[0]

    @property
    def n_params(self):
        """Number of stored values (the FLOP count of a matvec is twice it)."""
        return self._left.size + self._right.size

    @property
    def transposed(self):
        """True for ``M.T`` views: products then apply the transpose of the
        Monarch matrix held by ``left`` and ``right``."""
        return self._transposed

    def __repr__(self):
        t = ".T" if self._transposed else ""
        return (
            f"<{self.shape[0]}x{self.shape[1]} MonarchMatrix{t} with dtype={self.dtype}, "
            f"L: {self._left.shape[0]} blocks of {self._left.shape[1]}x{self._left.shape[2]}, "
            f"R: {self._right.shape[0]} blocks of {self._right.shape[1]}x{self._right.shape[2]}>"
        )

    def _view(self, transposed, left=None, right=None):
        out = object.__new__(type(self))
        out._left = self._left if left is None else left
        out._right = self._right if right is None else right
        out._transposed = transposed
        out.n_threads = self.n_threads
        shared = left is None and right is None
        out._cast = self._cast if shared else {}
        out._tcast = self._tcast if shared else {}
        m, n = out._left.shape[0] * out._left.shape[1], out._right.shape[0] * out._right.shape[2]
        LinearOperator.__init__(out, out._left.dtype, (n, m) if transposed else (m, n))
        return out

    def _transpose(self):
        return self._view(not self._transposed)

    def _adjoint(self):
        if self.dtype.kind != "c":
            return self._transpose()
        left, right = np.conj(self._left), np.conj(self._right)
        left.flags.writeable = False
        right.flags.writeable = False
        return self._view(not self._transposed, left, right)

    def conj(self):
        """The complex conjugate (``self`` for real matrices).

        Returns
        -------
        MonarchMatrix
        """
        if self.dtype.kind != "c":
            return self
        left, right = np.conj(self._left), np.conj(self._right)
        left.flags.writeable = False
        right.flags.writeable = False
        return self._view(self._transposed, left, right)

    def astype(self, dtype):
        """This matrix with blocks of ``dtype`` (``self`` if it is already).

        Parameters
        ----------
        dtype : dtype
            Block dtype: float32, float64, complex64 or complex128 (integers and
            bool become float64, float16 float32).

        Returns
        -------
        MonarchMatrix
        """
        dtype = as_block_dtype(dtype, "dtype")
        if dtype == self.dtype:
            return self
        left, right = self._blocks(dtype)
        return self._view(self._transposed, left, right)

    def _transposed_blocks(self, dtype):
        """Each block transposed (made once, on the first matrix-vector
        product): the kernel then sweeps columns instead of taking short dot
        products, about 1.5x faster for 32x32 blocks."""
        if dtype not in self._tcast:
            left, right = self._blocks(dtype)
            self._tcast[dtype] = (contiguous(left.transpose(0, 2, 1)),
                                  contiguous(right.transpose(0, 2, 1)))
        return self._tcast[dtype]

    def _blocks(self, dtype):
        if dtype == self.dtype:
            return self._left, self._right
        if dtype not in self._cast:
            left = self._left.astype(dtype)
            right = self._right.astype(dtype)
            left.flags.writeable = False
            right.flags.writeable = False
            self._cast[dtype] = (left, right)
        return self._cast[dtype]

    # ------------------------------------------------------------ products
    def toarray(self):
        """The dense matrix (``M @ I``, computed by the product kernel).

        Returns
        -------
        ndarray of shape ``self.shape``
        """
        m, n = self.shape
        out = np.zeros((m, n), dtype=self.dtype)
        if m and n:
            eye = np.eye(n, dtype=self.dtype)
            self._apply(eye, out, self._transposed, self._threads(None))
        return out

    def todense(self):
        """Same as :meth:`toarray`.

        Returns
        -------
        ndarray of shape ``self.shape``
        """
        return self.toarray()

    def matmul(self, X, *, n_threads=None):
        """``self @ X`` with an explicit thread count.

        Parameters
        ----------
        X : array_like, shape (n,) or (n, B) (or (..., n, B))
        n_threads : int or None
            None uses ``self.n_threads``.

        Returns
        -------
        ndarray of shape (m,) or (m, B) (or (..., m, B))
        """
        return self._matmul_array(X, n_threads, "X")

    def __matmul__(self, other):
        if isinstance(other, (MonarchMatrix, MonarchProduct)):
            return MonarchProduct(self, other)
        if isinstance(other, LinearOperator):
            return super().__matmul__(other)
        if np.isscalar(other):
            raise ValueError("matmul: scalar operands are not allowed, use '*' instead")
        return self._matmul_array(other, None, "other")

    def __rmatmul__(self, other):
        if isinstance(other, (MonarchMatrix, MonarchProduct)):
            return MonarchProduct(other, self)
        if isinstance(other, LinearOperator):
            return super().__rmatmul__(other)
        if np.isscalar(other):
            raise ValueError("matmul: scalar operands are not allowed, use '*' instead")
        return self._rmatmul_array(other, None)

    def dot(self, x):
        if isinstance(x, (MonarchMatrix, MonarchProduct)):
            return MonarchProduct(self, x)
        if isinstance(x, LinearOperator) or np.isscalar(x):
            return super().dot(x)
        return self._matmul_array(x, None, "x")

    def _matvec(self, x):
        return self._matmul_array(x, None, "x")

    def _matmat(self, X):
        return self._matmul_array(X, None, "X")

    def _rmatvec(self, x):
        return self.H._matmul_array(x, None, "x")

    def _rmatmat(self, X):
        return self.H._matmul_array(X, None, "X")

    def _threads(self, n_threads):
        if n_threads is None:
            n_threads = self.n_threads
        return _threads.effective_n_threads(n_threads)

    def _operand(self, X, name):
        if sp.issparse(X):
            X = X.toarray()
        elif not isinstance(X, np.ndarray):
            X = np.asarray(X)
        if X.ndim == 0:
            raise ValueError("matmul: scalar operands are not allowed, use '*' instead")
        if X.dtype.kind not in "biufc":
            raise TypeError(f"matmul: {name} has unsupported dtype {X.dtype}")
        return X

    def _out_dtype(self, X):
        if X.dtype == self.dtype:
            return self.dtype
        dtype = np.result_type(self.dtype, X.dtype)
        return as_block_dtype(dtype, "the product")

    def _matmul_array(self, X, n_threads, name):
        """self @ X for an array X of shape (n,), (n, B) or (..., n, B)."""
        if type(X) is not np.ndarray or X.ndim == 0 or X.dtype.kind not in "biufc":
            X = self._operand(X, name)
        m, n = self.shape
        rows = X.shape[0] if X.ndim <= 2 else X.shape[-2]
        if rows != n:
            raise ValueError(
                f"matmul: dimension mismatch: the Monarch matrix has shape {self.shape}, so "
                f"{name} needs {n} rows, but {name} has shape {X.shape}"
            )
        nt = self._threads(n_threads)
        dtype = self._out_dtype(X)
        if X.ndim > 2:  # a stack: (..., n, B) -> (n, ... * B)
            lead = X.shape[:-2]
            flat = np.moveaxis(X, -2, 0).reshape(n, -1)
            Y = self._matmul_array(flat, nt, name)
            return np.moveaxis(Y.reshape((m,) + lead + (X.shape[-1],)), 0, -2)
        if X.dtype != dtype:
            X = X.astype(dtype)
        Y = np.empty((m,) + X.shape[1:], dtype=dtype)
        return self._apply(X, Y, self._transposed, nt)

    def _rmatmul_array(self, X, n_threads):
        """X @ self for X of shape (m,), (B, m) or (..., m): (self.T @ X.T).T."""
        X = self._operand(X, "other")
        m, n = self.shape
        if X.shape[-1] != m:
            raise ValueError(
                f"matmul: dimension mismatch: the Monarch matrix has shape {self.shape}, so "
                f"the left operand needs {m} columns, but it has shape {X.shape}"
            )
        nt = self._threads(n_threads)
        dtype = self._out_dtype(X)
        if X.dtype != dtype:
            X = X.astype(dtype)
        if X.ndim == 1:
            Y = np.empty(n, dtype=dtype)
            return self._apply(X, Y, not self._transposed, nt)
        lead = X.shape[:-1]
        X2 = X.reshape(-1, m)
        Y = np.empty((X2.shape[0], n), dtype=dtype)
        self._apply(X2.T, Y.T, not self._transposed, nt)
        return Y.reshape(lead + (n,))

    def _apply(self, X, Y, transpose, n_threads):
        """Y[...] = (M or M^T) @ X with M held by the blocks; X, Y 1-D or 2-D
        arrays of Y's dtype (any strides)."""
        left, right = self._blocks(Y.dtype)
        if Y.dtype in _KERNEL:
            if not X.flags.aligned or any(st % X.itemsize for st in X.strides):
                X = contiguous(X)   # the kernel reads typed elements at any stride
            if not transpose and (X.ndim == 1 or X.shape[1] == 1):
                left_t, right_t = self._transposed_blocks(Y.dtype)
                return _monarch.matmul(right, left, X, Y, False, n_threads, right_t, left_t)
            return _monarch.matmul(right, left, X, Y, transpose, n_threads)
        Y[...] = _stacked_apply(right, left, X, transpose)
        return Y

    # ---------------------------------------------------------------- misc
    def __neg__(self):
        left = -self._left
        left.flags.writeable = False
        return self._view(self._transposed, left, self._right)


def _as_blocks(a, name, copy):
    if sp.issparse(a) or isinstance(a, LinearOperator):
        raise TypeError(f"{name} must be a 3-D array of blocks, got {type(a).__name__}")
    a = np.array(a, copy=True) if copy else np.asarray(a)
    if a.ndim != 3:
        raise ValueError(
            f"{name} must be a 3-D array (blocks, rows, columns), got {a.ndim}-D "
            f"with shape {a.shape}"
        )
    if a.dtype.kind not in "biufc":
        raise TypeError(f"{name} has unsupported dtype {a.dtype}")
    dtype = as_block_dtype(a.dtype, name)
    return contiguous(a, dtype=dtype)


def _stacked_apply(right, left, X, transpose):
    """(M or M^T) @ X with numpy's stacked matmul (any dtype; the complex
    path, and the reference the kernel is tested against)."""
    k, q, p = right.shape
    l, s, r = left.shape
    vec = X.ndim == 1
    X2 = X[:, None] if vec else X
    B = X2.shape[1]
    if not transpose:
        Z = np.matmul(right, X2.reshape(k, p, B))            # (k, q, B)
        Z = Z.reshape(r, l, B).transpose(1, 0, 2)             # rows j = rh*l + lm
        U = np.matmul(left, Z)                                # (l, s, B)
        Y = U.transpose(1, 0, 2).reshape(l * s, B)
    else:
        G = X2.reshape(s, l, B).transpose(1, 0, 2)            # rows sg*l + lm
        V = np.matmul(left.transpose(0, 2, 1), G)             # (l, r, B)
        Z = V.transpose(1, 0, 2).reshape(k, q, B)
        Y = np.matmul(right.transpose(0, 2, 1), Z).reshape(k * p, B)
    return Y[:, 0] if vec else Y


class MonarchProduct(LinearOperator):
    """A product ``A_1 @ A_2 @ … @ A_t`` of Monarch matrices, kept as the
    factors (the paper's ``MM^*`` class for two factors) and applied right to
    left with the product kernel.

    Parameters
    ----------
    *factors : MonarchMatrix or MonarchProduct
        Shapes must chain: ``factors[i].shape[1] == factors[i+1].shape[0]``.
    """

    def __init__(self, *factors):
        flat = []
        for f in factors:
            if isinstance(f, MonarchProduct):
                flat.extend(f.factors)
            elif isinstance(f, MonarchMatrix):
                flat.append(f)
            else:
                raise TypeError(
                    f"MonarchProduct factors must be MonarchMatrix or MonarchProduct, "
                    f"got {type(f).__name__}"
                )
        if not flat:
            raise ValueError("MonarchProduct needs at least one factor")
        for a, b in zip(flat[:-1], flat[1:]):
            if a.shape[1] != b.shape[0]:
                raise ValueError(
                    f"matmul: dimension mismatch between factors of shapes {a.shape} and "
                    f"{b.shape}"
                )
        self.factors = tuple(flat)
        dtype = np.result_type(*[f.dtype for f in flat])
        super().__init__(dtype, (flat[0].shape[0], flat[-1].shape[1]))

    def __repr__(self):
        return (f"<{self.shape[0]}x{self.shape[1]} MonarchProduct of {len(self.factors)} "
                f"factors with dtype={self.dtype}>")

    @property
    def n_params(self):
        """Number of stored values over all factors."""
        return sum(f.n_params for f in self.factors)

    def matmul(self, X, *, n_threads=None):
        """``self @ X`` for an array ``X``, applying the factors right to left.

        Parameters
        ----------
        X : ndarray of shape (n,) or (n, B)
            Right operand.
        n_threads : int or None, optional
            Threads for each factor's product (None: each factor's own setting).

        Returns
        -------
        ndarray of shape (m,) or (m, B)
        """
        for f in reversed(self.factors):
            X = f.matmul(X, n_threads=n_threads)
        return X

    def __matmul__(self, other):
        if isinstance(other, (MonarchMatrix, MonarchProduct)):
            return MonarchProduct(self, other)
        if isinstance(other, LinearOperator):
            return super().__matmul__(other)
        if np.isscalar(other):
            raise ValueError("matmul: scalar operands are not allowed, use '*' instead")
        return self.matmul(other)

    def __rmatmul__(self, other):
        if isinstance(other, (MonarchMatrix, MonarchProduct)):
            return MonarchProduct(other, self)
        if isinstance(other, LinearOperator):
            return super().__rmatmul__(other)
        if np.isscalar(other):
            raise ValueError("matmul: scalar operands are not allowed, use '*' instead")
        for f in self.factors:
            other = f.__rmatmul__(other)
        return other

    def dot(self, x):
        if isinstance(x, (MonarchMatrix, MonarchProduct)):
            return MonarchProduct(self, x)
        if isinstance(x, LinearOperator) or np.isscalar(x):
            return super().dot(x)
        return self.matmul(x)

    def _matvec(self, x):
        return self.matmul(x)

    def _matmat(self, X):
        return self.matmul(X)

    def _rmatvec(self, x):
        return self.H.matmul(x)

    def _rmatmat(self, X):
        return self.H.matmul(X)

    def _transpose(self):
        return MonarchProduct(*[f.T for f in reversed(self.factors)])

    def _adjoint(self):
        return MonarchProduct(*[f.H for f in reversed(self.factors)])

    def toarray(self):
        """The dense product (the last factor's dense form times the others).

        Returns
        -------
        ndarray of shape ``self.shape``
        """
        m, n = self.shape
        if m == 0 or n == 0:
            return np.zeros((m, n), dtype=self.dtype)
        return self.matmul(np.eye(n, dtype=self.dtype))
