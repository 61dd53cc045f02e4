"""Inputs are never modified: every public function leaves every array it
was given byte-identical (values, dtype, shape, strides, flags), on success
and on the error paths. Index arrays that the kernels canonicalise (unsorted
indices, duplicates, int64 or big-endian index types) are the interesting
case: the canonical copies must be copies."""
import numpy as np
import pytest
import scipy.sparse as sp

import sparsecore
from sparsecore import formats, ops


def state(obj):
    """Everything observable about an input, recursively."""
    if isinstance(obj, np.ndarray):
        return ("nd", obj.dtype.str, obj.shape, obj.strides, obj.flags.writeable,
                obj.flags.c_contiguous, obj.flags.f_contiguous,
                np.ascontiguousarray(obj).tobytes())
    if sp.issparse(obj):
        parts = tuple(state(getattr(obj, n)) for n in ("indptr", "indices", "data", "offsets",
                                                       "row", "col", "coords") if hasattr(obj, n)
                      and not callable(getattr(obj, n)))
        canon = getattr(obj, "has_canonical_format", None) if obj.format == "csr" else None
        return ("sp", obj.format, obj.shape, canon, parts)
    if isinstance(obj, (list, tuple)):
        return tuple(state(o) for o in obj)
    if isinstance(obj, dict):
        return tuple((k, state(v)) for k, v in sorted(obj.items()))
    return ("obj", id(obj))


def messy_csr(rng, shape=(30, 25), itype=np.int64, dtype=np.float64):
    """A CSR matrix with unsorted, duplicated indices of a non-default index
    type: the kernels must canonicalise a copy."""
    m, n = shape
    nnz = 120
    rows = np.sort(rng.integers(0, m, nnz))
    cols = rng.integers(0, n, nnz)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=m))]).astype(itype)
    A = sp.csr_array((rng.standard_normal(nnz).astype(dtype), cols.astype(itype), indptr),
                     shape=shape)
    A.has_canonical_format = False
    return A


def call_and_check(fn, *args, raises=None, **kwargs):
    before = state((args, kwargs))
    if raises is None:
        result = fn(*args, **kwargs)
    else:
        with pytest.raises(raises):
            fn(*args, **kwargs)
        result = None
    assert state((args, kwargs)) == before, f"{getattr(fn, '__name__', fn)} modified its input"
    return result


@pytest.fixture
def r():
    return np.random.default_rng(2024)


def test_spgemm_and_symbolic(r):
    A = messy_csr(r, (30, 25))
    B = messy_csr(r, (25, 20), itype=np.int32)
    Bbig = B.copy()
    Bbig.indices = Bbig.indices.astype(">i4")
    Bbig.data = Bbig.data.astype(">f8")
    for fmt in ("csr", "csc", "coo", "bsr", "lil"):
        call_and_check(sparsecore.spgemm, A.asformat(fmt), B)
    call_and_check(sparsecore.spgemm, A, Bbig)
    call_and_check(ops.spgemm_symbolic, A, B)
    call_and_check(ops.spgemm_symbolic, A, B, row_bounds=np.array([0, 10, 30]))
    # error paths
    call_and_check(sparsecore.spgemm, A, A, raises=ValueError)
    bad = B.copy()
    bad.indices = bad.indices.copy()
    bad.indices[3] = 10**6
    call_and_check(sparsecore.spgemm, A, bad, raises=ValueError)
    call_and_check(sparsecore.spgemm, A, B.astype(bool), raises=TypeError)
    call_and_check(ops.spgemm_symbolic, A, B, row_bounds=np.array([0, 20, 10, 30]),
                   raises=ValueError)


def test_spmm_sddmm_and_pruning(r):
    W = r.standard_normal((16, 24)).astype(np.float32)
    Wf = np.asfortranarray(W)
    Wf.flags.writeable = False
    X = r.standard_normal((24, 6)).astype(np.float32)[:, ::1]
    Xs = np.repeat(X, 2, axis=1)[:, ::2]  # strided
    G = r.standard_normal((16, 6)).astype(np.float32)
    score = np.abs(r.standard_normal((16, 24)))
    nm = call_and_check(ops.nm_prune, W, 2, 4)
    call_and_check(ops.nm_prune, Wf, 2, 4, score=score, axis=1)
    call_and_check(ops.nm_prune, W.T.copy(), 2, 4, axis=0)
    blk = call_and_check(ops.block_prune, Wf, (4, 4), 0.5)
    A = messy_csr(r, (16, 24), dtype=np.float32)
    for S in (nm, blk, A, A.tocsc()):
        call_and_check(ops.spmm, S, X)
        call_and_check(ops.spmm, S, Xs)
        call_and_check(ops.spmm, S, Xs[:, 0])
        out = np.empty((16, 6), np.float32)
        call_and_check(ops.spmm, S, X, out=out)
        call_and_check(ops.sddmm, G, X, S)
        # error paths
        call_and_check(ops.spmm, S, X[:-1], raises=ValueError)
        call_and_check(ops.spmm, S, X, out=np.empty((16, 5), np.float32), raises=ValueError)
        call_and_check(ops.sddmm, G[:-1], X, S, raises=ValueError)
    call_and_check(ops.nm_prune, W, 4, 2, raises=ValueError)
    call_and_check(ops.nm_prune, W, 2, 4, score=score[:, :-1], raises=ValueError)
    call_and_check(ops.block_prune, W, (3, 3), 0.5, raises=ValueError)
    call_and_check(ops.block_prune, W, (4, 4), 1.5, raises=ValueError)


def test_format_constructors_copy_or_freeze(r):
    W = r.standard_normal((8, 8))
    call_and_check(formats.NMSparseMatrix.from_dense, ops.nm_prune(W, 2, 4).toarray(), 2, 4)
    call_and_check(formats.NMSparseMatrix.from_dense, W, 2, 4, raises=ValueError)
    call_and_check(formats.BlockSparseMatrix.from_dense, W, (2, 2))
    call_and_check(formats.BlockSparseMatrix.from_scipy, messy_csr(r, (8, 8)), (2, 2))
    L = r.standard_normal((3, 3, 3))
    R = r.standard_normal((3, 3, 3))
    M = call_and_check(formats.MonarchMatrix, L, R)
    # the matrix does not alias the caller's arrays
    L[0, 0, 0] += 1.0
    assert not np.shares_memory(M.left, L)
    factors = [r.standard_normal((3, 2)), np.asfortranarray(r.standard_normal((4, 5)))]
    K = call_and_check(formats.KroneckerOperator, factors)
    x = r.standard_normal(10)
    call_and_check(K.matvec, x)
    call_and_check(K.rmatvec, r.standard_normal(12))
    call_and_check(K.matvec, x[:-1], raises=ValueError)


def test_monarch(r):
    M = formats.MonarchMatrix.random((16, 16), random_state=0)
    X = np.asfortranarray(r.standard_normal((16, 5)))
    call_and_check(M.matmul, X)
    call_and_check(M.__rmatmul__, X.T)
    call_and_check(M.matmul, X[:-1], raises=ValueError)
    W = M.toarray()
    W.flags.writeable = False
    call_and_check(ops.monarch_project, W)
    call_and_check(ops.monarch_project, W, method="power")
    Wn = W.copy()
    Wn[0, 0] = np.nan
    call_and_check(ops.monarch_project, Wn, raises=ValueError)


def test_bcd_solvers_and_estimators(r):
    from sparsecore.linear_model import (GreedyBCDElasticNet, GreedyBCDLasso,
                                         GreedyBCDLogisticRegression, enet_path, lasso_path,
                                         sbl)
    X = np.asfortranarray(r.standard_normal((30, 8)))
    Xs = sp.csr_array(np.where(np.abs(X) > 0.8, X, 0.0))
    y = X[:, 0] - X[:, 3] + 0.1 * r.standard_normal(30)
    yc = (y > 0).astype(np.int64)
    w = r.random(30) + 0.5
    for Xi in (X, Xs):
        call_and_check(GreedyBCDLasso(alpha=0.05).fit, Xi, y)
        call_and_check(GreedyBCDLasso(alpha=0.05).fit, Xi, y, sample_weight=w)
        call_and_check(GreedyBCDElasticNet(alpha=0.05).fit, Xi, y)
        call_and_check(GreedyBCDLogisticRegression(C=1.0).fit, Xi, yc)
        call_and_check(lasso_path, Xi, y, n_alphas=3)
        call_and_check(enet_path, Xi, y, n_alphas=3)
    call_and_check(sbl, X, y)
    call_and_check(GreedyBCDLasso(alpha=0.05).fit, X, y[:-1], raises=ValueError)
    call_and_check(GreedyBCDLasso(alpha=-1.0).fit, X, y, raises=ValueError)


def test_graph_solvers_and_label_propagation(r):
    from sparsecore.optimize import graph_bcd
    from sparsecore.semi_supervised import GreedyBCDLabelPropagation
    n = 40
    A = sp.random_array((n, n), density=0.1, rng=1, format="csr")
    A = A + A.T
    L = sp.diags_array(np.asarray(A.sum(axis=1)).ravel() + 1.0) - A
    L = sp.csr_array(L)
    b = r.standard_normal(n)
    call_and_check(graph_bcd, L, b)
    call_and_check(graph_bcd, L, b[:-1], raises=ValueError)
    X = r.standard_normal((n, 3))
    y = np.full(n, -1)
    y[:4] = [0, 1, 0, 1]
    call_and_check(GreedyBCDLabelPropagation().fit, X, y)


def test_kronecker_sbl(r):
    from sparsecore.linear_model import KroneckerSBL, kronecker_posterior, kronecker_sbl
    factors = [r.standard_normal((6, 4)), r.standard_normal((5, 3))]
    x = np.zeros(12)
    x[[1, 7]] = [1.0, -2.0]
    K = formats.KroneckerOperator(factors)
    y = K @ x + 0.01 * r.standard_normal(30)
    init = [np.ones(4), np.ones(3)]
    for method in ("svd", "am"):
        call_and_check(kronecker_sbl, factors, y, method=method, max_iter=20)
        call_and_check(kronecker_sbl, factors, y, method=method, max_iter=20, init=init)
    call_and_check(kronecker_posterior, factors, init, 0.1, y)
    call_and_check(KroneckerSBL(factors, max_iter=10).fit, None, y)
    call_and_check(kronecker_sbl, factors, y[:-1], raises=ValueError)


def test_dask_paths(r):
    pytest.importorskip("dask")
    import dask
    from sparsecore import dask as scd
    A = messy_csr(r, (40, 30))
    B = messy_csr(r, (30, 20))
    X = np.asfortranarray(r.standard_normal((30, 4)))
    with dask.config.set(scheduler="synchronous"):
        Ad = call_and_check(scd.from_scipy, A, chunks=(10, 15))
        Bd = call_and_check(scd.from_scipy, B, chunks=(15, 10))
        C = call_and_check(scd.spgemm, Ad, Bd)
        C.compute()
        import dask.array as da
        Xd = da.from_array(X, chunks=(30, 2))
        Y = call_and_check(scd.spmm, A, Xd)
        np.asarray(Y)
        call_and_check(scd.spmm, Ad, Xd, raises=TypeError)
    before = state((A, B, X))
    assert state((A, B, X)) == before
