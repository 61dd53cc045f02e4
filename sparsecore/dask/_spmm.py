"""SpMM on Dask: ``Y = S @ X`` for an in-memory sparse weight S and a dask
dense X chunked along the batch (its columns).

S is one key of the graph: each worker fetches it once, whatever the number
of batch chunks it multiplies. Each task multiplies S by one chunk with the
kernel threads its worker offers.
"""
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from sparsecore.dask._resources import task_threads

__all__ = ["spmm"]


def _kernel_operand(S):
    """True when :func:`sparsecore.ops.spmm` takes S (scipy.sparse or a
    sparsecore structured format); other matrix-like objects use their ``@``."""
    from sparsecore.formats import StructuredSparseMatrix

    return sp.issparse(S) or isinstance(S, StructuredSparseMatrix)


def local_spmm(S, X, n_threads=1):
    """``S @ X`` on one machine: :func:`sparsecore.ops.spmm` for the formats
    it takes, else the operand's own ``@``."""
    if _kernel_operand(S):
        from sparsecore.ops import spmm as kernel

        return kernel(S, X, n_threads=n_threads)
    return np.asarray(S @ X)


def _spmm_task(S, X, n_threads):
    return local_spmm(S, X, task_threads(n_threads))


def _check_weight(S):
    if isinstance(S, da.Array):
        raise TypeError(
            "S must be an in-memory sparse matrix (it is shipped whole to each "
            "worker), not a dask array; for a distributed sparse S use "
            "sparsecore.dask.spgemm"
        )
    if sp.issparse(S):
        if S.ndim != 2:
            raise ValueError(f"S must be 2-D, got shape {S.shape}")
        if S.dtype.kind not in "biuf":
            raise TypeError(f"S has dtype {S.dtype}; spmm works on real values")
        return
    shape, dtype = getattr(S, "shape", None), getattr(S, "dtype", None)
    if isinstance(S, np.ndarray) or shape is None or dtype is None or not hasattr(S, "__matmul__") or len(shape) != 2:
        raise TypeError(
            f"S must be a scipy.sparse matrix or a sparsecore structured sparse "
            f"matrix (block-sparse, N:M), got {type(S).__module__}.{type(S).__name__}"
        )


def spmm(S, X, *, n_threads=None):
    """Sparse times dense, ``Y = S @ X``, with X a dask array chunked along
    the batch.

    Parameters
    ----------
    S : scipy.sparse matrix, or a sparsecore structured sparse matrix
        Shape (m, k), real values. Any format :func:`sparsecore.ops.spmm`
        takes (block-sparse, N:M, scipy.sparse); another matrix-like object
        with ``shape``, ``dtype`` and ``@`` is multiplied by its own ``@``.
        Shipped once to each worker.
    X : dask array, shape (k,) or (k, batch)
        Dense (numpy) chunks. Chunks along the batch axis are kept; X is
        rechunked to one chunk along k if it has several. For activations
        stored batch-major (batch, k), use ``spmm(S, X.T).T``.
    n_threads : int or None
        Kernel threads per task; None derives them from each worker's
        resources (:func:`sparsecore.dask.task_threads`).

    Returns
    -------
    dask.array.Array
        Shape (m,) or (m, batch), chunked like X along the batch; float32
        or float64 as :func:`sparsecore.ops.spmm` gives (integer-only
        products in float64).

    Examples
    --------
    >>> import dask.array as da, scipy.sparse as sp
    >>> from sparsecore.dask import spmm
    >>> S = sp.random_array((50, 40), density=0.1, format="csr", rng=0)
    >>> X = da.ones((40, 1000), chunks=(40, 250))
    >>> Y = spmm(S, X)
    >>> Y.chunks
    ((50,), (250, 250, 250, 250))
    """
    _check_weight(S)
    if isinstance(X, np.ndarray):
        X = da.from_array(X, chunks=X.shape or ())
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask array (or numpy array), got {type(X).__name__}")
    if X.ndim not in (1, 2):
        raise ValueError(f"X must be 1-D or 2-D, got shape {X.shape}")
    if sp.issparse(X._meta) or not isinstance(X._meta, np.ndarray):
        raise TypeError(
            f"X must have dense numpy chunks, got {type(X._meta).__name__}; for a "
            f"sparse X use sparsecore.dask.spgemm"
        )
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X has dtype {X.dtype}; spmm works on real values")
    m, k = S.shape
    if X.shape[0] != k:
        raise ValueError(
            f"spmm: dimension mismatch: S has shape {S.shape} and X has shape "
            f"{X.shape}; X.shape[0] must equal S.shape[1] = {k}"
        )
    if n_threads is not None:
        task_threads(n_threads)  # validates
    if len(X.chunks[0]) > 1:
        X = X.rechunk({0: -1})
    if _kernel_operand(S):
        from sparsecore.formats._products import result_dtype

        dtype = result_dtype(S, X)  # the kernel's rule: integer products in float64
    else:
        dtype = np.result_type(S.dtype, X.dtype)
    weight = "spmm-weight-" + tokenize(S)
    name = "spmm-" + tokenize(weight, X.name, n_threads)
    dsk = {weight: S}
    if X.ndim == 1:
        dsk[(name, 0)] = (_spmm_task, weight, (X.name, 0), n_threads)
        chunks = ((m,),)
    else:
        for b in range(len(X.chunks[1])):
            dsk[(name, 0, b)] = (_spmm_task, weight, (X.name, 0, b), n_threads)
        chunks = ((m,), X.chunks[1])
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[X])
    return da.Array(graph, name, chunks, meta=np.empty((0,) * X.ndim, dtype=dtype))
