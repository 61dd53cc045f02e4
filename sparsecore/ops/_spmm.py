"""Sparse times dense (SpMM / GEMV) and sampled dense-dense (SDDMM) products
for block-sparse, N:M and general (scipy CSR) matrices."""
import numpy as np
import scipy.sparse as sp

from sparsecore.formats._products import sampled_dense_dense, sparse_times_dense
from sparsecore.ops._spgemm import like_left_operand

__all__ = ["sddmm", "spmm"]


def spmm(S, X, *, out=None, bias=None, activation=None, n_threads=None):
    """Sparse times dense: ``S @ X``, optionally finished as a layer,
    ``act(S @ X + bias[:, None])``.

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
    bias : array_like, shape (m,), optional
        Added to every column of the product (one value per row of S).
    activation : {None, "relu", "gelu", "gelu_tanh", "silu"}, optional
        Applied to the product (plus bias) as it is stored, while it is in
        cache: "gelu" is ``x * Phi(x)`` (erf form), "gelu_tanh" its tanh
        approximation, "silu" ``x * sigmoid(x)``. float32 results use
        vectorised approximations within a few units in the last place of
        the exact function; float64 results call libm.
    n_threads : int, optional
        Threads (None: all OpenMP offers, honouring threadpoolctl and
        OMP_NUM_THREADS). Small products run on one thread. The result is
        the same to the last bit for any thread count.

    Returns
    -------
    ndarray, shape (m, B) or (m,)
        C order, unless ``out`` was given (then ``out`` itself). As scipy's
        ``S @ X``: an ``np.matrix`` (a view of the result) when ``S`` is a
        scipy.sparse matrix (``spmatrix``) and ``X`` an ``np.matrix``.

    Notes
    -----
    Threads own disjoint output rows, cut so each gets the same number of
    stored values; register-tiled micro-kernels (tiles of up to 4 rows x 2
    vectors of batch columns, 8 rows x 3 vectors with AVX-512) accumulate while the stored
    values stream past, and X is packed into panels that fit in L2 (Goto & van
    de Geijn, ACM TOMS 2008; XNNPACK's sparse kernels, Elsen et al., CVPR
    2020). The N:M kernel reads each group's window of M rows of X from L1
    for a strip of rows. Only stored entries take part: a NaN or inf in X
    reaches the rows that store a value in its row of X (explicit zeros
    included), as in scipy.

    On Linux in the transparent-huge-page "madvise" mode, a contiguous output
    of 4 MiB or more is advised for huge pages before it is written (fewer
    page faults on fresh memory, as numpy does for its own large arrays); the
    advice stays on those pages. ``SPARSECORE_HUGE_PAGES=0`` in the
    environment turns it off.

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
    Y = sparse_times_dense(S, X, out=out, bias=bias, activation=activation,
                           n_threads=n_threads)
    if out is None and isinstance(S, sp.spmatrix) and isinstance(X, np.matrix):
        return np.asmatrix(Y)
    return Y


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
        csr_array, a csr_matrix for a scipy.sparse matrix), values of the
        result dtype of G and X.

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
    return like_left_operand(sampled_dense_dense(G, X, pattern, n_threads=n_threads), pattern)
