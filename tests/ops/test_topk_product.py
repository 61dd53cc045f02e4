"""sparsecore.ops.topk_product: per-row top-k of a sparse product.

Most tests use small integer values, whose sums are exact in float32 and
float64: results are then compared exactly (columns, values, tie order) with
a dense numpy reference. Real-valued data are compared with rtol 1e-5
(float32) / 1e-12 (float64) on the values.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsecore._ext import _sparse
from sparsecore._validation import as_csr_parts
from sparsecore.ops import topk_product


def reference(A, B, k, exclude=None):
    C = (sp.csr_array(A, dtype=np.float64) @ sp.csr_array(B, dtype=np.float64)).toarray()
    m, n = C.shape
    if exclude is not None:
        E = sp.csr_array(exclude)
        for r in range(m):
            C[r, E.indices[E.indptr[r]:E.indptr[r + 1]]] = np.nan
    idx = np.full((m, k), -1, dtype=np.int64)
    val = np.full((m, k), -np.inf)
    for r in range(m):
        cols = np.flatnonzero(~np.isnan(C[r]))
        order = cols[np.lexsort((cols, -C[r, cols]))][:k]
        idx[r, :order.size] = order
        val[r, :order.size] = C[r, order]
    return idx, val


def integer_sparse(rng, shape, density, dtype=np.float64, low=-3, high=4):
    M = sp.random_array(shape, density=density, rng=rng, format="csr",
                        data_sampler=lambda size: rng.integers(low, high, size))
    return M.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("density", [0.05, 0.3, 0.9])
def test_matches_dense_reference_exactly(rng, dtype, density):
    for _ in range(15):
        m, d, n = rng.integers(1, 40, 3)
        k = int(rng.integers(1, n + 1))
        A = integer_sparse(rng, (m, d), density, dtype)
        B = integer_sparse(rng, (d, n), density, dtype)
        E = sp.random_array((m, n), density=0.3, rng=rng, format="csr")
        for exclude in (None, E):
            idx, val = topk_product(A, B, k, exclude=exclude)
            ridx, rval = reference(A, B, k, exclude)
            assert idx.dtype == np.int64 and val.dtype == dtype
            np.testing.assert_array_equal(idx, ridx)
            np.testing.assert_array_equal(val, rval.astype(dtype))


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_real_values(rng, dtype, rtol):
    A = sp.random_array((60, 16), density=0.3, rng=rng, format="csr", dtype=dtype)
    B = sp.random_array((16, 200), density=0.3, rng=rng, format="csr", dtype=dtype)
    A.data -= 0.5
    B.data -= 0.5
    idx, val = topk_product(A, B, 10)
    C = (A.astype(np.float64) @ B.astype(np.float64)).toarray()
    np.testing.assert_allclose(val, np.take_along_axis(C, idx, 1), rtol=rtol, atol=rtol)
    # the returned values are the 10 largest of each row
    np.testing.assert_allclose(val, -np.sort(-C, axis=1)[:, :10], rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_row_and_blocked_paths_agree_bit_for_bit(rng, dtype, index_dtype):
    A = sp.random_array((37, 24), density=0.4, rng=rng, format="csr", dtype=dtype)
    B = sp.random_array((24, 300), density=0.2, rng=rng, format="csr", dtype=dtype)
    A.data -= 0.5
    B.data -= 0.5
    E = sp.random_array((37, 300), density=0.1, rng=rng, format="csr")
    a, b, e = (as_csr_parts(X, "X").with_index_dtype(index_dtype) for X in (A, B, E))
    outs = [
        _sparse.topk_product(a.indptr, a.indices, a.data, b.indptr, b.indices, b.data,
                             e.indptr, e.indices, 37, 24, 300, 7, blocked, nt)
        for blocked in (False, True) for nt in (1, 2, 3)
    ]
    for idx, val in outs[1:]:
        np.testing.assert_array_equal(idx, outs[0][0])
        assert val.tobytes() == outs[0][1].tobytes()


def test_thread_counts_give_identical_results(rng):
    A = sp.random_array((500, 32), density=0.3, rng=rng, format="csr", dtype=np.float32)
    B = sp.random_array((32, 800), density=0.3, rng=rng, format="csr", dtype=np.float32)
    one = topk_product(A, B, 20, n_threads=1)
    for nt in (2, 4, None):
        idx, val = topk_product(A, B, 20, n_threads=nt)
        np.testing.assert_array_equal(idx, one[0])
        assert val.tobytes() == one[1].tobytes()


def test_implicit_zeros_are_candidates():
    # row 0 touches only column 2 with a negative score: the best are the
    # untouched columns (score 0), lowest index first
    A = sp.csr_array(np.array([[1.0, 0.0]]))
    B = sp.csr_array(np.array([[0.0, 0.0, -1.0, 0.0], [5.0, 5.0, 5.0, 5.0]]))
    idx, val = topk_product(A, B, 4)
    np.testing.assert_array_equal(idx, [[0, 1, 3, 2]])
    np.testing.assert_array_equal(val, [[0.0, 0.0, 0.0, -1.0]])


def test_empty_and_degenerate_shapes():
    B = sp.csr_array(np.eye(3))
    idx, val = topk_product(sp.csr_array((0, 3)), B, 2)
    assert idx.shape == (0, 2) and val.shape == (0, 2)
    # an all-zero A: every score is 0, columns in order
    idx, val = topk_product(sp.csr_array((2, 3)), B, 3)
    np.testing.assert_array_equal(idx, [[0, 1, 2], [0, 1, 2]])
    np.testing.assert_array_equal(val, 0.0)
    # 1 x 1
    idx, val = topk_product(sp.csr_array([[2.0]]), sp.csr_array([[3.0]]), 1)
    assert idx.tolist() == [[0]] and val.tolist() == [[6.0]]
    # inner dimension 0
    idx, val = topk_product(sp.csr_array((2, 0)), sp.csr_array((0, 4)), 2)
    np.testing.assert_array_equal(idx, [[0, 1], [0, 1]])


def test_exclusion_of_everything_pads():
    A = sp.csr_array(np.ones((2, 2)))
    B = sp.csr_array(np.ones((2, 3)))
    E = sp.csr_array(np.array([[1, 1, 0], [1, 1, 1]]))
    idx, val = topk_product(A, B, 2, exclude=E)
    np.testing.assert_array_equal(idx, [[2, -1], [-1, -1]])
    assert val[0, 0] == 2 and np.all(np.isneginf(val[0, 1:])) and np.all(np.isneginf(val[1]))


def test_formats_unsorted_duplicates_and_inputs_unchanged(rng):
    A = integer_sparse(rng, (20, 10), 0.4)
    B = integer_sparse(rng, (10, 30), 0.4)
    expected = reference(A, B, 5)
    # unsorted indices with duplicates (summed) in A, COO and CSC inputs
    coo = sp.coo_array(A)
    rows = np.concatenate([coo.row, coo.row[:5]])
    cols = np.concatenate([coo.col, coo.col[:5]])
    vals = np.concatenate([coo.data, np.zeros(5)])
    perm = rng.permutation(rows.size)
    order = np.argsort(rows[perm], kind="stable")
    r, c, v = rows[perm][order], cols[perm][order], vals[perm][order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=A.shape[0]))])
    A_dup = sp.csr_array((v, c, indptr), shape=A.shape)
    assert not A_dup.has_canonical_format
    copy = (A_dup.data.copy(), A_dup.indices.copy(), A_dup.indptr.copy())
    for AA, BB in ((A_dup, B), (sp.coo_array(A), sp.csc_array(B)), (sp.csr_matrix(A), B)):
        idx, val = topk_product(AA, BB, 5)
        np.testing.assert_array_equal(idx, expected[0])
    np.testing.assert_array_equal(A_dup.data, copy[0])
    np.testing.assert_array_equal(A_dup.indices, copy[1])
    # int64 indices
    A64 = sp.csr_array((A.data, A.indices.astype(np.int64), A.indptr.astype(np.int64)), shape=A.shape)
    np.testing.assert_array_equal(topk_product(A64, B, 5)[0], expected[0])


def test_integer_operands_give_float64(rng):
    A = sp.csr_array(np.array([[1, 2], [0, 3]], dtype=np.int64))
    B = sp.csr_array(np.array([[1, 0, 2], [0, 1, 1]], dtype=np.int32))
    idx, val = topk_product(A, B, 2)
    assert val.dtype == np.float64
    np.testing.assert_array_equal(idx, [[2, 1], [1, 2]])
    np.testing.assert_array_equal(val, [[4, 2], [3, 3]])


def test_errors():
    A = sp.csr_array(np.ones((2, 3)))
    B = sp.csr_array(np.ones((3, 4)))
    with pytest.raises(TypeError, match="A must be a scipy.sparse"):
        topk_product(np.ones((2, 3)), B, 1)
    with pytest.raises(ValueError, match="dimension mismatch"):
        topk_product(A, sp.csr_array(np.ones((2, 4))), 1)
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\]"):
        topk_product(A, B, 5)
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\]"):
        topk_product(A, B, 0)
    with pytest.raises(TypeError, match="k must be an int"):
        topk_product(A, B, 2.0)
    with pytest.raises(TypeError, match="k must be an int"):
        topk_product(A, B, True)
    with pytest.raises(TypeError, match="complex"):
        topk_product(A.astype(np.complex128), B, 1)
    with pytest.raises(ValueError, match="exclude has shape"):
        topk_product(A, B, 1, exclude=sp.csr_array((2, 3)))
    with pytest.raises(TypeError, match="exclude must be"):
        topk_product(A, B, 1, exclude=np.zeros((2, 4)))
    bad = A.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        topk_product(bad, B, 1)
    with pytest.raises(ValueError, match="n_threads=0"):
        topk_product(A, B, 1, n_threads=0)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 12), d=st.integers(0, 8), n=st.integers(1, 25),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1),
       with_exclude=st.booleans(), data=st.data())
def test_property_matches_reference(m, d, n, density, seed, with_exclude, data):
    rng = np.random.default_rng(seed)
    k = data.draw(st.integers(1, n))
    A = integer_sparse(rng, (m, d), density, np.float32)
    B = integer_sparse(rng, (d, n), density, np.float32)
    E = sp.random_array((m, n), density=0.4, rng=rng, format="csr") if with_exclude else None
    idx, val = topk_product(A, B, k, exclude=E)
    ridx, rval = reference(A, B, k, E)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(val, rval.astype(np.float32))
