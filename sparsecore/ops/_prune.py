"""Magnitude pruning of dense matrices to N:M and block-sparse structure."""
import numbers

import numpy as np

from sparsecore import _threads
from sparsecore._ext import _spmm
from sparsecore.formats import BlockShape, BlockSparseMatrix, NMPattern, NMSparseMatrix
from sparsecore.formats._base import as_value_dtype
from sparsecore.formats._nm import check_axis, element_strides

__all__ = ["block_prune", "nm_prune"]


def _dense_2d(W, name):
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {W.shape}")
    return W


def nm_prune(W, n, m, *, score=None, axis=1, n_threads=None):
    """Keep the n largest entries of every group of m consecutive entries.

    Parameters
    ----------
    W : array_like, shape (rows, cols)
        Real weights (not modified).
    n, m : int
        The N:M pattern, 1 <= n < m <= 16 (2:4, 1:4, 2:8, 1:8, ...).
    score : array_like, shape (rows, cols), optional
        What "largest" means (e.g. a saliency such as ``|W| * |grad|``);
        default ``|W|``. Ties go to the lower position in the group.
    axis : {1, 0}, default=1
        Groups run along rows (the reduction axis of ``S @ X``) or columns.
    n_threads : int, optional

    Returns
    -------
    NMSparseMatrix
        If the last group is partial (cols not a multiple of m) it keeps at
        most n of its entries.

    Raises
    ------
    ValueError
        If the scores contain NaN, or n, m are out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.ops import nm_prune
    >>> W = np.array([[1., -4., 3., 2., 0., 5., -6., 1.]])
    >>> S = nm_prune(W, 2, 4)                # keep 2 of every 4 consecutive entries
    >>> S.toarray()
    array([[ 0., -4.,  3.,  0.,  0.,  5., -6.,  0.]])
    >>> S.nnz
    4
    """
    pattern = NMPattern.of(n, m)
    axis = check_axis(axis)
    W = _dense_2d(W, "W")
    dtype = as_value_dtype(W.dtype, "W")
    W = np.asarray(W, dtype=dtype)
    if score is not None:
        score = _dense_2d(score, "score")
        if score.shape != W.shape:
            raise ValueError(f"score has shape {score.shape} but W has shape {W.shape}")
        if score.dtype.kind not in "biuf":
            raise TypeError(f"score has dtype {score.dtype}; real scores are needed")
        if score.dtype not in (np.float32, np.float64):
            score = score.astype(np.float64)
        if np.isnan(score).any():
            raise ValueError("score contains NaN; every score must be comparable")
    elif np.isnan(W).any():
        raise ValueError(
            "W contains NaN, which has no magnitude to rank; clean it or pass score="
        )
    nt = _threads.effective_n_threads(n_threads)
    core = W if axis == 1 else W.T
    R, K = core.shape
    G = -(-K // pattern.m)
    values = np.zeros((R, G * pattern.n), dtype=dtype)
    idx = np.zeros((R, G * pattern.n), dtype=np.uint8)
    if R and K:
        cscore = None
        if score is not None:
            cscore = element_strides(score if axis == 1 else score.T)
        _spmm.nm_prune(element_strides(core), cscore, pattern.n, pattern.m, values, idx, nt)
    return NMSparseMatrix._from_trusted(values, idx, (R, K), pattern, axis)


def block_prune(W, block_shape, density):
    """Keep the blocks of largest Frobenius norm.

    Parameters
    ----------
    W : array_like, shape (rows, cols)
        Real weights (not modified); need not be a multiple of the blocks.
    block_shape : (int, int)
        r, c in {1, 2, 4, 8, 16, 32}.
    density : float in [0, 1]
        Fraction of blocks kept: ``round(density * number of blocks)``. Ties
        in norm go to the earlier block (row-major block order).

    Returns
    -------
    BlockSparseMatrix
        Kept blocks are stored whole (zeros inside them included).

    Raises
    ------
    ValueError
        If W contains NaN or density is outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sparsecore.ops import block_prune
    >>> W = np.arange(16.0).reshape(4, 4)
    >>> S = block_prune(W, (2, 2), 0.5)      # keep the 2 blocks of largest norm
    >>> S.toarray()
    array([[ 0.,  0.,  0.,  0.],
           [ 0.,  0.,  0.,  0.],
           [ 8.,  9., 10., 11.],
           [12., 13., 14., 15.]])
    """
    bs = BlockShape.of(block_shape)
    if not isinstance(density, numbers.Real) or isinstance(density, bool):
        raise TypeError(f"density must be a number in [0, 1], got {density!r}")
    if not 0 <= density <= 1:
        raise ValueError(f"density must be in [0, 1], got {density}")
    W = _dense_2d(W, "W")
    dtype = as_value_dtype(W.dtype, "W")
    r, c = bs
    m, n = W.shape
    mb, nb = -(-m // r), -(-n // c)
    if (m, n) != (mb * r, nb * c):
        P = np.zeros((mb * r, nb * c), dtype=dtype)
        P[:m, :n] = W
    else:
        P = np.asarray(W, dtype=dtype)
    P4 = P.reshape(mb, r, nb, c)
    if r == 1 and c == 1:
        norms = np.abs(P)  # same order as the squares, exactly
    else:
        norms = np.einsum("irjc,irjc->ij", P4, P4, dtype=np.float64)
    flat = norms.ravel()
    if np.isnan(flat).any():
        raise ValueError("W contains NaN, which has no magnitude to rank")
    k = int(round(density * flat.size))
    if k >= flat.size:
        keep = np.ones(flat.size, dtype=bool)
    elif k > 0:
        # the k-th largest norm; everything above it, then ties in block order
        t = np.partition(flat, flat.size - k)[flat.size - k]
        keep = flat > t
        above = int(np.count_nonzero(keep))
        if above < k:
            keep[np.flatnonzero(flat == t)[: k - above]] = True
    else:
        keep = np.zeros(flat.size, dtype=bool)
    return BlockSparseMatrix._from_pattern(P4, keep.reshape(mb, nb), (m, n), bs)
