"""Sparse times dense (SpMM / GEMV) and sampled dense-dense (SDDMM) products
for block-sparse, N:M and general (scipy CSR) matrices."""
import numpy as np
import scipy.sparse as sp

from sparsecore import _threads
from sparsecore._ext import _spmm
from sparsecore._validation import as_csr_parts, contiguous
from sparsecore.formats import BlockSparseMatrix, NMSparseMatrix
from sparsecore.formats._base import StructuredSparseMatrix

__all__ = ["sddmm", "spmm"]

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _kind(S, name):
    if isinstance(S, BlockSparseMatrix):
        return "block"
    if isinstance(S, NMSparseMatrix):
        return "nm"
    if sp.issparse(S):
        if S.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got {S.ndim}-D")
        return "scipy"
    raise TypeError(
        f"{name} must be a sparsecore BlockSparseMatrix or NMSparseMatrix or a "
        f"scipy.sparse matrix, got {type(S).__module__}.{type(S).__name__}"
    )


def _check_real(dtype, name):
    if dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {dtype}; spmm and sddmm work on real values "
            f"(float32, float64; integers and bools are promoted)"
        )


def result_dtype(S, X, name="X"):
    """float32 or float64: numpy's promotion of the operands' dtypes, with
    integer-only products computed in float64."""
    if S.dtype == X.dtype and X.dtype in _KERNEL_DTYPES:
        return X.dtype
    _check_real(np.dtype(S.dtype), "S")
    _check_real(np.dtype(X.dtype), name)
    dt = np.result_type(S.dtype, X.dtype)
    if dt not in _KERNEL_DTYPES:
        dt = np.dtype(np.float32) if dt == np.float16 else np.dtype(np.float64)
    return dt


def _as_operand(X, dtype, name):
    """X as an array of ``dtype`` with whole-element strides (a copy only
    when the dtype or the strides need one; X itself is never modified)."""
    if X.dtype != dtype:
        X = X.astype(dtype, order="K")
    if not X.flags.aligned or any(s % X.itemsize for s in X.strides):
        X = contiguous(X)
    return X


def _check_out(out, shape, dtype, inputs):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}; the product has shape {shape}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}; the product has dtype {dtype}")
    if not (out.flags.c_contiguous or out.flags.f_contiguous):
        raise ValueError("out must be C- or F-contiguous (a non-contiguous view was given)")
    if not out.flags.aligned:
        raise ValueError("out must be aligned to its dtype (a misaligned view was given)")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    for name, a in inputs:
        if np.may_share_memory(out, a):
            raise ValueError(f"out overlaps {name}; give a separate output array")


def _dense(X, name):
    if sp.issparse(X):
        raise TypeError(
            f"{name} is a scipy.sparse matrix; spmm takes a dense {name} (use "
            f"sparsecore.spgemm for sparse @ sparse)"
        )
    if isinstance(X, StructuredSparseMatrix):
        raise TypeError(f"{name} must be dense, got a {type(X).__name__}")
    X = np.asarray(X)
    if X.dtype == object:
        raise TypeError(f"{name} has dtype object; a numeric array is needed")
    if X.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D or 2-D, got {X.ndim}-D with shape {X.shape} "
            f"(stacks of matrices are not supported)"
        )
    return X


def spmm(S, X, *, out=None, n_threads=None):
    """Sparse times dense: ``S @ X``.

    Parameters
    ----------
    S : BlockSparseMatrix, NMSparseMatrix or scipy.sparse matrix, shape (m, n)
        Any scipy format is used as CSR (never modified). ``S.T`` of the
        sparsecore formats reuses a cached transposed structure, so ``S.T @ G``
        (an input gradient) costs what ``S @ X`` does.
    X : array_like, shape (n, B) or (n,)
        Dense, C or F order or any strided view, float32 or float64 (other
        real dtypes are promoted as numpy promotes; integer-only products are
        computed in float64). A 1-D X is a matrix-vector product. For a
        layer's ``Xb @ S.T`` (Xb of shape (batch, n)) pass ``X=Xb.T`` and
        ``out=Y.T``; ``Xb @ S.T`` does exactly that.
    out : ndarray, optional
        Where to write the result: shape (m, B) or (m,), the result dtype,
        C- or F-contiguous, not overlapping X.
    n_threads : int, optional
        Threads (None: all OpenMP offers, honouring threadpoolctl and
        OMP_NUM_THREADS). Small products run on one thread. The result is
        the same to the last bit for any thread count.

    Returns
    -------
    ndarray, shape (m, B) or (m,)
        C order, unless ``out`` was given.

    Notes
    -----
    Threads own disjoint output rows, cut so each gets the same number of
    stored values; register-tiled micro-kernels (4 block rows x 16 batch
    columns in float32) accumulate while the stored values stream past, and X
    is packed into panels that fit in L2 (Goto & van de Geijn, ACM TOMS 2008;
    XNNPACK's sparse kernels, Elsen et al., CVPR 2020). The N:M kernel reads
    each group's window of M rows of X from L1 for a strip of rows. Only
    stored entries take part: a NaN or inf in X reaches the rows that store a
    value in its row of X (explicit zeros included), as in scipy.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.formats import BlockSparseMatrix
    >>> from sparsecore.ops import spmm
    >>> W = np.kron(np.eye(2), np.ones((2, 2)))   # two 2 x 2 blocks on the diagonal
    >>> S = BlockSparseMatrix.from_dense(W, (2, 2))
    >>> S.nnzb
    2
    >>> X = np.arange(8.0).reshape(4, 2)
    >>> spmm(S, X)
    array([[ 2.,  4.],
           [ 2.,  4.],
           [10., 12.],
           [10., 12.]])
    >>> np.array_equal(spmm(S, X), W @ X)
    True
    """
    kind = _kind(S, "S")
    X = _dense(X, "X")
    m, n = S.shape
    if X.shape[0] != n:
        raise ValueError(
            f"spmm: S has shape {S.shape} but X has shape {X.shape}; X.shape[0] must "
            f"equal S.shape[1] = {n}"
        )
    dtype = result_dtype(S, X, "X")
    shape = (m,) if X.ndim == 1 else (m, X.shape[1])
    csr = as_csr_parts(S, "S") if kind == "scipy" else None
    nt = _threads.effective_n_threads(n_threads)
    if out is None:
        out = np.empty(shape, dtype=dtype)
    else:
        _check_out(out, shape, dtype, [("X", X)])
    B = 1 if X.ndim == 1 else X.shape[1]
    if m == 0 or B == 0:
        return out
    stored = (S.nnzb if kind == "block" else S.values.size if kind == "nm" else csr.nnz)
    if n == 0 or stored == 0:
        out.fill(0)
        return out
    X = _as_operand(X, dtype, "X")
    if kind == "block":
        r, c = S.block_shape
        _spmm.spmm_bsr(S.indptr, S.indices, _values(S.blocks, dtype), m, n, r, c,
                       X, out, nt)
    elif kind == "nm" and S.axis == 1:
        _spmm.spmm_nm(_values(S.values, dtype), S.indices, m, n, S.n, S.m, X, out, nt)
    else:
        if kind == "nm":
            indptr, indices, data = S.csr_parts()
        else:
            indptr, indices, data = csr.indptr, csr.indices, csr.data
        _spmm.spmm_bsr(indptr, indices, _values(data, dtype).reshape(-1, 1, 1), m, n,
                       1, 1, X, out, nt)
    return out


def _values(a, dtype):
    return a if a.dtype == dtype else a.astype(dtype)


def sddmm(G, X, pattern, *, n_threads=None):
    """Sampled dense-dense product: ``G @ X.T`` at the stored entries of ``pattern``.

    The weight gradient of a sparse layer ``Y = S @ X`` restricted to the
    weights that exist: ``dS = (dY @ X.T) * mask(S)``, computed only where S
    stores values (a dot product along the batch for each).

    Parameters
    ----------
    G : array_like, shape (m, B) or (m,)
        Dense (e.g. the output gradient dY), any layout.
    X : array_like, shape (n, B) or (n,)
        Dense (e.g. the layer input), any layout.
    pattern : BlockSparseMatrix, NMSparseMatrix or scipy.sparse matrix, shape (m, n)
        Only its structure is used (its values are ignored).
    n_threads : int, optional

    Returns
    -------
    BlockSparseMatrix, NMSparseMatrix or scipy.sparse.csr_array
        ``pattern``'s format and structure (a scipy input gives a canonical
        csr_array), values of the result dtype of G and X.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from sparsecore.ops import sddmm
    >>> G = np.arange(6.0).reshape(2, 3)     # e.g. the output gradient, (out, batch)
    >>> X = np.ones((4, 3))                  # the layer input, (in, batch)
    >>> pattern = sp.csr_array(np.eye(2, 4))    # only these weights exist
    >>> sddmm(G, X, pattern).toarray()
    array([[ 3.,  0.,  0.,  0.],
           [ 0., 12.,  0.,  0.]])
    """
    kind = _kind(pattern, "pattern")
    G = _dense(G, "G")
    X = _dense(X, "X")
    m, n = pattern.shape
    if G.ndim != X.ndim:
        raise ValueError(f"G and X must both be 1-D or both 2-D, got shapes {G.shape} and {X.shape}")
    if G.shape[0] != m or X.shape[0] != n:
        raise ValueError(
            f"sddmm: pattern has shape {pattern.shape}, so G must have {m} rows and X "
            f"{n} rows; got G {G.shape} and X {X.shape}"
        )
    if G.ndim == 2 and G.shape[1] != X.shape[1]:
        raise ValueError(
            f"sddmm: G has {G.shape[1]} columns but X has {X.shape[1]}; the batch "
            f"dimensions must agree"
        )
    _check_real(G.dtype, "G")
    _check_real(X.dtype, "X")
    dtype = np.result_type(G.dtype, X.dtype)
    if dtype not in _KERNEL_DTYPES:
        dtype = np.dtype(np.float32) if dtype == np.float16 else np.dtype(np.float64)
    nt = _threads.effective_n_threads(n_threads)
    if G.ndim == 1:
        G, X = G[:, None], X[:, None]
    B = G.shape[1]
    G = _as_operand(G, dtype, "G")
    X = _as_operand(X, dtype, "X")
    work = B > 0 and m > 0 and n > 0
    if kind == "block":
        out = np.zeros(pattern.blocks.shape, dtype=dtype)
        r, c = pattern.block_shape
        if work and pattern.nnzb:
            _spmm.sddmm_bsr(pattern.indptr, pattern.indices, m, n, r, c, G, X, out, nt)
        return BlockSparseMatrix._from_trusted(out, pattern.indices, pattern.indptr, pattern.shape)
    if kind == "nm":
        out = np.zeros(pattern.values.shape, dtype=dtype)
        R, K = pattern._core_shape
        if work and out.size:
            # core rows are rows of the matrix (axis 1) or of its transpose
            a, b = (G, X) if pattern.axis == 1 else (X, G)
            _spmm.sddmm_nm(pattern.indices, R, K, pattern.n, pattern.m, a, b, out, nt)
        return NMSparseMatrix._from_trusted(out, pattern.indices, pattern._core_shape,
                                            pattern.pattern, pattern.axis)
    parts = as_csr_parts(pattern, "pattern")
    indptr, indices = parts.indptr, parts.indices
    if not parts.sorted:
        # copy=True: parts may share the caller's index arrays, which
        # sum_duplicates would sort in place
        C = sp.csr_array((np.ones(parts.nnz), indices, indptr), shape=(m, n), copy=True)
        C.sum_duplicates()
        indptr, indices = C.indptr, C.indices
    out = np.zeros(indices.shape[0], dtype=dtype)
    if work and out.size:
        _spmm.sddmm_bsr(indptr, indices, m, n, 1, 1, G, X, out.reshape(-1, 1, 1), nt)
    return sp.csr_array((out, indices.copy(), indptr.copy()), shape=(m, n))
