"""Sparse times dense (SpMM) and sampled dense-dense (SDDMM) products of the
structured formats and of scipy CSR: operand checks and kernel calls.

The public entry points are :func:`sparsecore.ops.spmm` and
:func:`sparsecore.ops.sddmm` and the formats' ``@``; they all come here.
"""
import numpy as np
import scipy.sparse as sp

from sparsecore import _threads
from sparsecore._ext import _spmm
from sparsecore._validation import as_csr_parts, contiguous
from sparsecore.formats._base import StructuredSparseMatrix
from sparsecore.formats._block import BlockSparseMatrix
from sparsecore.formats._nm import NMSparseMatrix

__all__ = ["dense_operand", "result_dtype", "sampled_dense_dense", "sparse_times_dense"]

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def operand_kind(S, name):
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


def check_real(dtype, name):
    if dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {dtype}; spmm and sddmm work on real values "
            f"(float32, float64; integers and bools are promoted)"
        )


def result_dtype(S, X, name="X"):
    """float32 or float64: numpy's promotion of the operands' dtypes, with
    integer-only products computed in float64."""
    if S.dtype == X.dtype and X.dtype in KERNEL_DTYPES:
        return X.dtype
    check_real(np.dtype(S.dtype), "S")
    check_real(np.dtype(X.dtype), name)
    dt = np.result_type(S.dtype, X.dtype)
    if dt not in KERNEL_DTYPES:
        dt = np.dtype(np.float32) if dt == np.float16 else np.dtype(np.float64)
    return dt


def as_operand(X, dtype, name):
    """X as an array of ``dtype`` with whole-element strides (a copy only
    when the dtype or the strides need one; X itself is never modified)."""
    if X.dtype != dtype:
        X = X.astype(dtype, order="K")
    if not X.flags.aligned or any(s % X.itemsize for s in X.strides):
        X = contiguous(X)
    return X


def check_out(out, shape, dtype, inputs):
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


def dense_operand(X, name):
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


#: activations the products can apply before storing (the C epilogue's)
ACTIVATIONS = tuple(a for a in _spmm.ACTIVATIONS if a != "none")


def check_epilogue(bias, activation, m, dtype):
    """bias as a contiguous (m,) array of ``dtype`` (or None) and the
    activation's kernel name ("none" for None), checked."""
    if activation is None:
        activation = "none"
    elif activation not in ACTIVATIONS:
        raise ValueError(f"activation must be None or one of {ACTIVATIONS}, got {activation!r}")
    if bias is not None:
        if sp.issparse(bias) or isinstance(bias, StructuredSparseMatrix):
            raise TypeError("bias must be a dense 1-D array")
        bias = np.asarray(bias)
        check_real(bias.dtype, "bias")
        if bias.shape != (m,):
            raise ValueError(f"bias must have shape ({m},) (one value per row of S), "
                             f"got {bias.shape}")
        bias = np.ascontiguousarray(bias, dtype=dtype)
    return bias, activation


def apply_epilogue(Y, bias, activation):
    """``Y = act(Y + bias[:, None])`` in place with numpy (where no kernel ran)."""
    if bias is not None:
        Y += bias.reshape((-1,) + (1,) * (Y.ndim - 1))
    if activation == "relu":
        np.maximum(Y, 0, out=Y, where=~np.isnan(Y))
    elif activation == "gelu":
        from scipy.special import erf
        Y *= 0.5 * (1 + erf(Y / np.sqrt(2)))
    elif activation == "gelu_tanh":
        Y *= 0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (Y + 0.044715 * Y ** 3)))
    elif activation == "silu":
        Y /= 1 + np.exp(-Y)


def sparse_times_dense(S, X, *, out=None, bias=None, activation=None, n_threads=None):
    """``act(S @ X + bias)``; see :func:`sparsecore.ops.spmm`."""
    kind = operand_kind(S, "S")
    X = dense_operand(X, "X")
    m, n = S.shape
    if X.shape[0] != n:
        raise ValueError(
            f"spmm: S has shape {S.shape} but X has shape {X.shape}; X.shape[0] must "
            f"equal S.shape[1] = {n}"
        )
    dtype = result_dtype(S, X, "X")
    bias, activation = check_epilogue(bias, activation, m, dtype)
    shape = (m,) if X.ndim == 1 else (m, X.shape[1])
    csr = as_csr_parts(S, "S") if kind == "scipy" else None
    nt = _threads.effective_n_threads(n_threads)
    if out is None:
        out = np.empty(shape, dtype=dtype)
    else:
        check_out(out, shape, dtype, [("X", X)] + ([("bias", bias)] if bias is not None else []))
    B = 1 if X.ndim == 1 else X.shape[1]
    if m == 0 or B == 0:
        return out
    stored = (S.nnzb if kind == "block" else S.values.size if kind == "nm" else csr.nnz)
    if n == 0 or stored == 0:
        out.fill(0)
        apply_epilogue(out, bias, activation)
        return out
    X = as_operand(X, dtype, "X")
    if kind == "block":
        r, c = S.block_shape
        _spmm.spmm_bsr(S.indptr, S.indices, kernel_values(S.blocks, dtype), m, n, r, c,
                       X, out, nt, bias, activation)
    elif kind == "nm" and S.axis == 1:
        _spmm.spmm_nm(kernel_values(S.values, dtype), S.indices, m, n, S.n, S.m, X, out, nt,
                      bias, activation)
    else:
        if kind == "nm":
            indptr, indices, data = S.csr_parts()
        else:
            indptr, indices, data = csr.indptr, csr.indices, csr.data
        _spmm.spmm_bsr(indptr, indices, kernel_values(data, dtype).reshape(-1, 1, 1), m, n,
                       1, 1, X, out, nt, bias, activation)
    return out


def kernel_values(a, dtype):
    return a if a.dtype == dtype else a.astype(dtype)


def sampled_dense_dense(G, X, pattern, *, n_threads=None):
    """``G @ X.T`` at ``pattern``'s entries; see :func:`sparsecore.ops.sddmm`."""
    kind = operand_kind(pattern, "pattern")
    G = dense_operand(G, "G")
    X = dense_operand(X, "X")
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
    check_real(G.dtype, "G")
    check_real(X.dtype, "X")
    dtype = np.result_type(G.dtype, X.dtype)
    if dtype not in KERNEL_DTYPES:
        dtype = np.dtype(np.float32) if dtype == np.float16 else np.dtype(np.float64)
    nt = _threads.effective_n_threads(n_threads)
    if G.ndim == 1:
        G, X = G[:, None], X[:, None]
    B = G.shape[1]
    G = as_operand(G, dtype, "G")
    X = as_operand(X, dtype, "X")
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
