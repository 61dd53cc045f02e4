"""Misaligned arrays (numpy keeps them when they are contiguous, e.g. arrays
unpickled from a byte buffer, as Dask ships blocks to its workers) are
copied to aligned memory before a kernel reads them through typed pointers.

The UBSan run of ``.ci/sanitize`` reported misaligned int32 loads in the CSR
structure check from a Dask worker; these tests repeat that situation in
process, so under the sanitizer a regression is a report, and everywhere the
results must equal those of aligned inputs.
"""
import numpy as np
import pytest
import scipy.sparse as sp

import sparsecore
from sparsecore import ops
from sparsecore._validation import contiguous, fortran
from sparsecore.formats import BlockSparseMatrix, MonarchMatrix
from sparsecore.linear_model import GreedyBCDLasso


def misaligned(a):
    """A C-contiguous copy of ``a`` that starts one byte past an aligned address."""
    a = np.asarray(a)
    buf = np.empty(a.nbytes + 1, dtype=np.uint8)
    out = buf[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned and out.flags.c_contiguous
    return out


def misaligned_csr(A):
    B = sp.csr_array(A.shape, dtype=A.dtype)
    B.indptr, B.indices, B.data = misaligned(A.indptr), misaligned(A.indices), misaligned(A.data)
    return B


@pytest.mark.parametrize("helper", [contiguous, fortran])
def test_helpers_return_aligned_arrays(helper):
    a = misaligned(np.arange(12, dtype=np.int32))
    out = helper(a)
    assert out.flags.aligned
    np.testing.assert_array_equal(out, a)
    b = np.arange(6.0)
    assert helper(b) is b   # aligned, contiguous input: no copy


@pytest.mark.parametrize("semiring", ["plus_times", "min_plus"])
def test_spgemm_with_misaligned_operands(semiring):
    A = sp.random_array((40, 30), density=0.2, format="csr", rng=np.random.default_rng(0))
    B = sp.random_array((30, 50), density=0.2, format="csr", rng=np.random.default_rng(1))
    want = sparsecore.spgemm(A, B, semiring=semiring)
    got = sparsecore.spgemm(misaligned_csr(A), misaligned_csr(B), semiring=semiring,
                            mask=misaligned_csr(want) if semiring != "plus_times" else None)
    np.testing.assert_array_equal(got.toarray(), want.toarray())
    top = ops.spgemm_topk(misaligned_csr(A), misaligned_csr(B), 3)
    np.testing.assert_array_equal(top.toarray(), ops.spgemm_topk(A, B, 3).toarray())


def test_spmm_and_monarch_with_misaligned_dense_inputs():
    rng = np.random.default_rng(2)
    S = BlockSparseMatrix.from_dense(rng.standard_normal((32, 32)), (8, 8))
    X = rng.standard_normal((32, 5))
    np.testing.assert_array_equal(ops.spmm(S, misaligned(X)), ops.spmm(S, X))
    Y = misaligned(np.zeros((32, 5)))
    with pytest.raises(ValueError, match="aligned"):
        ops.spmm(S, X, out=Y)
    N = ops.nm_prune(rng.standard_normal((32, 32)), 2, 4)
    np.testing.assert_array_equal(ops.spmm(N, misaligned(X)), ops.spmm(N, X))
    M = MonarchMatrix.random((16, 16), random_state=0)
    np.testing.assert_allclose(M.matmul(misaligned(X[:16])), M.matmul(X[:16]), rtol=1e-14)


def test_greedy_bcd_with_misaligned_design():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 8))
    y = X @ rng.standard_normal(8)
    want = GreedyBCDLasso(alpha=0.01).fit(X, y).coef_
    Xs = sp.csr_array(X)
    Xm = sp.csc_array(Xs)
    Xm.indptr, Xm.indices, Xm.data = (misaligned(Xm.indptr), misaligned(Xm.indices),
                                      misaligned(Xm.data))
    np.testing.assert_allclose(GreedyBCDLasso(alpha=0.01).fit(misaligned(X), y).coef_, want,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(GreedyBCDLasso(alpha=0.01).fit(Xm, misaligned(y)).coef_, want,
                               rtol=1e-7, atol=1e-9)
