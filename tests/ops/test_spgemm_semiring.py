"""Semiring and masked SpGEMM, top-k products and numba user semirings.

References: a dense evaluation of every semiring over the stored patterns
(numpy), scipy's product for plus-times, python-graphblas for min-plus and
masked plus-pair. Tolerances: min/max semirings and plus_pair, lor_land are
exact (no rounding differences: the same operations in any order give the
same result for min/max, and counts are integers); sums (plus_first,
plus_second, plus_times) are compared with rtol 1e-12 (float64) / 1e-5
(float32) since the reference adds in another order.
"""
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from helpers import SHARED, requires_shared
from semiring_cases import RTOL, assert_matches, dense_semiring, lower_pattern, rand
from sparsecore import spgemm
from sparsecore.ops import SEMIRINGS, spgemm_topk, user_semiring
from sparsecore.ops import _spgemm_topk

# ---------------------------------------------------------------------------
# every semiring against the dense reference

@pytest.mark.parametrize("name", SEMIRINGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_semiring_matches_dense(name, dtype):
    A = rand(23, 17, 0.2, 1, dtype)
    B = rand(17, 19, 0.25, 2, dtype)
    C = spgemm(A, B, semiring=name)
    vals, present = dense_semiring(A, B, name)
    assert_matches(C, vals, present, name, dtype)
    expected = {"lor_land": np.bool_, "plus_pair": np.int64}.get(name, dtype)
    if name == "plus_times":
        expected = dtype
    assert C.dtype == expected


@pytest.mark.parametrize("name", SEMIRINGS)
def test_semiring_larger_rows_all_accumulators(name):
    # long rows reach the hash, ordered-hash and dense accumulators
    A = rand(60, 3000, 0.02, 3)
    B = rand(3000, 5000, 0.01, 4)
    C = spgemm(A, B, semiring=name, n_threads=2)
    C1 = spgemm(A, B, semiring=name, n_threads=1)
    np.testing.assert_array_equal(C.indptr, C1.indptr)
    np.testing.assert_array_equal(C.data, C1.data)
    vals, present = dense_semiring(A[:8], B, name)
    assert_matches(spgemm(A[:8], B, semiring=name), vals, present, name)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(0, 9), k=st.integers(0, 9), n=st.integers(0, 9),
    da=st.floats(0.0, 1.0), db=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1),
    name=st.sampled_from(SEMIRINGS), masked=st.sampled_from([None, False, True]),
)
def test_semiring_property(m, k, n, da, db, seed, name, masked):
    rng = np.random.default_rng(seed)
    A = sp.random_array((m, k), density=da, format="csr", rng=rng)
    B = sp.random_array((k, n), density=db, format="coo", rng=rng)
    A.data = np.round(rng.standard_normal(A.nnz), 1)  # exact zeros and ties happen
    B.data = np.round(rng.standard_normal(B.nnz), 1)
    if masked is None:
        C = spgemm(A, B, semiring=name)
        vals, present = dense_semiring(A, B, name)
    else:
        M = sp.random_array((m, n), density=0.5, format="csr", rng=rng)
        C = spgemm(A, B, semiring=name, mask=M, complement=masked)
        vals, present = dense_semiring(A, B, name, M, masked)
    assert_matches(C, vals, present, name)


def test_min_plus_missing_is_infinity_not_zero():
    # edges 0 -> 1 of weight 5 and 1 -> 0 of weight 0 (an explicit zero)
    D = sp.csr_array((np.array([5.0, 0.0]), (np.array([0, 1]), np.array([1, 0]))), shape=(2, 2))
    C = spgemm(D, D, semiring="min_plus")
    # 0 -> 1 -> 0 costs 5 + 0; 1 -> 0 -> 1 costs 0 + 5; nothing else exists
    assert C.nnz == 2
    np.testing.assert_array_equal(C.toarray(), [[5.0, 0.0], [0.0, 5.0]])


def test_duplicates_are_summed_before_the_product():
    A = sp.coo_array((np.array([1.0, 2.0]), (np.array([0, 0]), np.array([0, 0]))), shape=(1, 1))
    B = sp.csr_array(np.array([[10.0]]))
    assert spgemm(A, B, semiring="min_plus").toarray()[0, 0] == 13.0
    assert spgemm(A, B, semiring="plus_pair").toarray()[0, 0] == 1


def test_semiring_index_dtypes_and_layouts():
    A = rand(30, 20, 0.2, 5)
    B = rand(20, 25, 0.2, 6)
    ref = spgemm(A, B, semiring="max_times")
    A64 = sp.csr_array((A.data, A.indices.astype(np.int64), A.indptr.astype(np.int64)),
                       shape=A.shape)
    for a, b in [(A64, B), (A.tocsc(), B.tocoo()), (sp.csr_matrix(A), sp.csr_matrix(B))]:
        C = spgemm(a, b, semiring="max_times")
        np.testing.assert_array_equal(C.toarray(), ref.toarray())
        np.testing.assert_array_equal(C.indices, ref.indices)


def test_semiring_integer_and_bool_inputs():
    A = sp.csr_array(np.array([[1, 0, 2], [0, 3, 0]], dtype=np.int32))
    C = spgemm(A, A.T, semiring="min_plus")
    assert C.dtype == np.float64
    np.testing.assert_array_equal(C.toarray(), [[2.0, 0.0], [0.0, 6.0]])
    Ab = A.astype(bool)
    Cb = spgemm(Ab, Ab.T, semiring="lor_land")
    assert Cb.dtype == np.bool_
    np.testing.assert_array_equal(Cb.toarray(), [[True, False], [False, True]])


@pytest.mark.parametrize("shape", [(0, 3, 4), (3, 0, 4), (3, 4, 0), (1, 1, 1)])
@pytest.mark.parametrize("masked", [False, True])
def test_semiring_edge_shapes(shape, masked):
    m, k, n = shape
    A = sp.csr_array(np.ones((m, k)))
    B = sp.csr_array(np.ones((k, n)))
    kw = {"mask": sp.csr_array(np.ones((m, n)))} if masked else {}
    C = spgemm(A, B, semiring="min_plus", **kw)
    assert C.shape == (m, n)
    np.testing.assert_array_equal(C.toarray(), np.where(np.ones((m, n)) * k > 0, 2.0, 0.0))


def test_semiring_all_zero_pattern():
    A = sp.csr_array((3, 4))
    C = spgemm(A, sp.csr_array((4, 5)), semiring="max_plus")
    assert C.nnz == 0 and C.shape == (3, 5)


def test_inputs_not_modified():
    A = rand(10, 10, 0.3, 7, fmt="coo")
    M = rand(10, 10, 0.3, 8)
    before = (A.data.copy(), M.data.copy(), M.indices.copy())
    spgemm(A, A, semiring="min_plus", mask=M)
    np.testing.assert_array_equal(A.data, before[0])
    np.testing.assert_array_equal(M.data, before[1])
    np.testing.assert_array_equal(M.indices, before[2])


# ---------------------------------------------------------------------------
# masked products

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("complement", [False, True])
def test_masked_plus_times_matches_scipy(dtype, complement):
    A = rand(200, 150, 0.03, 9, dtype)
    B = rand(150, 180, 0.03, 10, dtype)
    M = rand(200, 180, 0.05, 11)
    M.data[::3] = 0.0  # structural: stored zeros still select
    C = spgemm(A, B, mask=M, complement=complement, n_threads=2)
    full = (A @ B).toarray()
    pattern = sp.csr_array((np.ones(M.nnz), M.indices, M.indptr), shape=M.shape).toarray() > 0
    expected = np.where(~pattern if complement else pattern, full, 0)
    np.testing.assert_allclose(C.toarray(), expected, rtol=RTOL[dtype], atol=1e-6)
    assert C.dtype == dtype
    assert np.all(C.data != 0)


def test_masked_unsorted_mask_with_duplicates():
    A = rand(30, 30, 0.2, 12)
    M = rand(30, 30, 0.2, 13, fmt="coo")
    Mdup = sp.coo_array((np.concatenate([M.data, M.data]),
                         (np.concatenate([M.row, M.row]), np.concatenate([M.col, M.col]))),
                        shape=M.shape)
    C1 = spgemm(A, A, mask=Mdup, semiring="plus_pair")
    C2 = spgemm(A, A, mask=M.tocsr(), semiring="plus_pair")
    np.testing.assert_array_equal(C1.toarray(), C2.toarray())


@pytest.mark.parametrize("complement", [False, True])
def test_unsorted_csr_mask_is_not_modified(complement):
    # found by the atheris harness: the canonical copy of an unsorted CSR mask
    # shared the caller's index arrays and sum_duplicates sorted them in place
    A = rand(12, 9, 0.3, 14)
    B = rand(9, 11, 0.3, 15)
    indptr = np.array([0, 3, 6] + [6] * 10, dtype=np.int32)
    indices = np.array([4, 0, 4, 10, 2, 2], dtype=np.int32)
    M = sp.csr_array((np.ones(6), indices, indptr), shape=(12, 11))
    before = (M.indptr.copy(), M.indices.copy(), M.data.copy())
    C = spgemm(A, B, mask=M, complement=complement, semiring="max_times")
    for got, want in zip((M.indptr, M.indices, M.data), before):
        np.testing.assert_array_equal(got, want)
    vals, present = dense_semiring(A, B, "max_times", mask=M, complement=complement)
    assert_matches(C, vals, present, "max_times")


def triangle_count_scipy(L):
    return int(((L @ L).multiply(L)).sum())


def test_triangle_counting_small_graph():
    # K4 has 4 triangles; a pendant edge adds none
    G = np.ones((5, 5)) - np.eye(5)
    G[4, :] = 0
    G[:, 4] = 0
    G[3, 4] = G[4, 3] = 1
    L = lower_pattern(sp.csr_array(G))
    C = spgemm(L, L, mask=L, semiring="plus_pair")
    assert C.dtype == np.int64
    assert int(C.sum()) == 4


@requires_shared
@pytest.mark.parametrize("name", ["bcspwr10", "dwt_992", "olm1000"])
def test_triangle_counting_shared_graphs(name):
    import scipy.io
    L = lower_pattern(scipy.io.mmread(SHARED / f"{name}.mtx"))
    C = spgemm(L, L, mask=L, semiring="plus_pair", n_threads=2)
    assert int(C.sum()) == triangle_count_scipy(L)


def test_masked_matches_graphblas():
    gb = pytest.importorskip("graphblas")
    A = rand(120, 100, 0.05, 14)
    B = rand(100, 110, 0.05, 15)
    M = rand(120, 110, 0.1, 16)
    ga, gbm, gm = (gb.io.from_scipy_sparse(X) for X in (A, B, M))
    for name, op in [("min_plus", gb.semiring.min_plus), ("plus_pair", gb.semiring.plus_pair),
                     ("max_times", gb.semiring.max_times)]:
        ref = ga.mxm(gbm, op).new(mask=gm.S)
        C = spgemm(A, B, mask=M, semiring=name)
        R = gb.io.to_scipy_sparse(ref, format="csr")
        R.sort_indices()
        np.testing.assert_array_equal(C.indptr, R.indptr)
        np.testing.assert_array_equal(C.indices, R.indices)
        np.testing.assert_array_equal(C.data, R.data)


def test_unmasked_matches_graphblas():
    gb = pytest.importorskip("graphblas")
    A = rand(90, 80, 0.06, 17)
    B = rand(80, 70, 0.06, 18)
    ga, gbm = gb.io.from_scipy_sparse(A), gb.io.from_scipy_sparse(B)
    for name in ("min_plus", "max_plus", "min_times", "plus_first", "plus_second"):
        R = gb.io.to_scipy_sparse(ga.mxm(gbm, getattr(gb.semiring, name)).new(), format="csr")
        R.sort_indices()
        C = spgemm(A, B, semiring=name)
        np.testing.assert_array_equal(C.indptr, R.indptr)
        np.testing.assert_array_equal(C.indices, R.indices)
        np.testing.assert_allclose(C.data, R.data, rtol=1e-12)


# ---------------------------------------------------------------------------
# errors

def test_errors():
    A = rand(4, 5, 0.5, 19)
    B = rand(5, 6, 0.5, 20)
    with pytest.raises(ValueError, match="unknown semiring 'min_max'"):
        spgemm(A, B, semiring="min_max")
    with pytest.raises(TypeError, match="semiring must be a name"):
        spgemm(A, B, semiring=3)
    with pytest.raises(ValueError, match=r"mask has shape \(4, 5\), expected \(4, 6\)"):
        spgemm(A, B, mask=A)
    with pytest.raises(TypeError, match="mask must be a scipy.sparse"):
        spgemm(A, B, mask=np.ones((4, 6)))
    with pytest.raises(ValueError, match="complement=True needs a mask"):
        spgemm(A, B, complement=True)
    with pytest.raises(TypeError, match="complement must be a bool"):
        spgemm(A, B, mask=sp.csr_array((4, 6)), complement="yes")
    with pytest.raises(TypeError, match="complex dtype"):
        spgemm(A.astype(np.complex128), B, semiring="min_plus")
    with pytest.raises(TypeError, match="complex dtype"):
        spgemm(A.astype(np.complex128), B, mask=sp.csr_array((4, 6)))
    with pytest.raises(ValueError, match="dimension mismatch"):
        spgemm(A, A, semiring="min_plus")
    with pytest.raises(TypeError, match="must be a scipy.sparse"):
        spgemm(A.toarray(), B, semiring="min_plus")


def test_topk_errors():
    A = rand(4, 5, 0.5, 21)
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        spgemm_topk(A, A.T, 0)
    with pytest.raises(ValueError, match="k must be at least 1, got -2"):
        spgemm_topk(A, A.T, -2)
    with pytest.raises(TypeError, match="k must be an int"):
        spgemm_topk(A, A.T, 2.0)
    with pytest.raises(ValueError, match="threshold is NaN"):
        spgemm_topk(A, A.T, 2, threshold=np.nan)
    with pytest.raises(TypeError, match="real values"):
        spgemm_topk(A.astype(np.complex64), A.T, 2)
    with pytest.raises(ValueError, match="dimension mismatch"):
        spgemm_topk(A, A, 2)
    with pytest.raises(TypeError, match="must be a scipy.sparse"):
        spgemm_topk(A, A.T.toarray(), 2)


# ---------------------------------------------------------------------------
# top-k

def topk_reference(A, B, k, threshold):
    C = (sp.csr_array(A) @ sp.csr_array(B)).tocsr()
    C.sum_duplicates()
    C.eliminate_zeros()
    out = np.zeros(C.shape)
    for i in range(C.shape[0]):
        cols = C.indices[C.indptr[i]:C.indptr[i + 1]]
        vals = C.data[C.indptr[i]:C.indptr[i + 1]]
        order = np.lexsort((cols, -vals))[:k]
        for c, v in zip(cols[order], vals[order]):
            if threshold is None or v > threshold:
                out[i, c] = v
    return out


def _paths():
    paths = ["blocked"]
    if _spgemm_topk._per_row_kernel() is not None:
        paths.append("kernel")
    return paths


@pytest.fixture(params=_paths())
def topk_path(request, monkeypatch):
    if request.param == "blocked":
        monkeypatch.setattr(_spgemm_topk, "_per_row_kernel", lambda: None)
    return request.param


@pytest.mark.parametrize("k", [1, 3, 10, 200])
@pytest.mark.parametrize("threshold", [None, -0.5, 0.0, 0.3])
def test_topk_matches_reference(k, threshold, topk_path):
    A = rand(40, 30, 0.15, 22)
    B = rand(30, 50, 0.15, 23)
    C = spgemm_topk(A, B, k, threshold=threshold)
    assert C.has_canonical_format
    assert np.diff(C.indptr).max() <= k
    np.testing.assert_allclose(C.toarray(), topk_reference(A, B, k, threshold), rtol=1e-12)


def test_topk_small_blocks_and_dtype(topk_path, monkeypatch):
    monkeypatch.setattr(_spgemm_topk, "_BLOCK_FLOPS", 64)
    A = rand(50, 40, 0.2, 24, np.float32, negative=False)
    C = spgemm_topk(A, A.T, 5)
    assert C.dtype == np.float32
    np.testing.assert_allclose(C.toarray(), topk_reference(A, A.T, 5, None), rtol=1e-5)


@pytest.mark.parametrize("threshold", [None, -0.5, 0.3])
def test_topk_kernel_in_small_chunks(threshold, monkeypatch):
    # the per-row kernel path in chunks of 3 rows: rows redone exactly (stored
    # negatives displaced by unstored zeros) land in later chunks too, unsorted
    # rows of A, int64 indices in, and the output stays canonical
    if _spgemm_topk._per_row_kernel() is None:
        pytest.skip("no per-row top-k kernel in this build")
    monkeypatch.setattr(_spgemm_topk, "_CHUNK_MIN_ROWS", 3)
    monkeypatch.setattr(_spgemm_topk, "_CHUNKS", 1000)
    monkeypatch.setattr(_spgemm_topk, "_CHUNKS_THREADED", 1000)
    monkeypatch.setattr(_spgemm_topk, "_POST_ROWS", 2)
    A = rand(41, 30, 0.15, 31)
    B = rand(30, 50, 0.15, 32)
    A64 = sp.csr_array((A.data[::-1].copy(), A.indices[::-1].astype(np.int64).copy(),
                        A.indptr.astype(np.int64)), shape=A.shape)  # rows reversed
    A64.indptr = A.indptr.astype(np.int64)
    for i in range(A.shape[0]):
        s = slice(A.indptr[i], A.indptr[i + 1])
        A64.indices[s] = A.indices[s][::-1]
        A64.data[s] = A.data[s][::-1]
    for k in (1, 4, 60):
        C = spgemm_topk(A64, B, k, threshold=threshold, n_threads=2)
        assert C.has_canonical_format
        C2 = C.copy()
        C2.has_canonical_format = False
        C2.sum_duplicates()
        np.testing.assert_array_equal(C2.indices, C.indices)
        np.testing.assert_allclose(C.toarray(), topk_reference(A, B, k, threshold), rtol=1e-12)


def test_topk_cosine_neighbours_self_first(topk_path):
    X = rand(60, 80, 0.1, 25, negative=False)
    X = sp.csr_array(X.multiply(1 / np.sqrt(X.multiply(X).sum(axis=1))[:, None]))
    C = spgemm_topk(X, X.T, 3)
    nonempty = np.flatnonzero(np.diff(X.indptr) > 0)
    D = C.toarray()
    # a row's best neighbour is as similar as the row itself (1, up to rounding)
    np.testing.assert_allclose(D[nonempty].max(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(D[nonempty, nonempty], 1.0, rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(0, 8), k=st.integers(1, 6), n=st.integers(0, 8),
       seed=st.integers(0, 2**31 - 1), thr=st.sampled_from([None, -1.0, 0.0, 0.5]))
def test_topk_property(m, k, n, seed, thr):
    rng = np.random.default_rng(seed)
    A = sp.random_array((m, 5), density=0.5, format="csr", rng=rng)
    B = sp.random_array((5, n), density=0.5, format="csr", rng=rng)
    A.data = np.round(rng.standard_normal(A.nnz), 1)
    B.data = np.round(rng.standard_normal(B.nnz), 1)
    C = spgemm_topk(A, B, k, threshold=thr)
    assert C.shape == (m, n)
    np.testing.assert_allclose(C.toarray(), topk_reference(A, B, k, thr), rtol=1e-12)


# ---------------------------------------------------------------------------
# user-defined semirings (numba)

def test_user_semiring_matches_builtin():
    pytest.importorskip("numba")
    A = rand(80, 70, 0.05, 26)
    B = rand(70, 90, 0.05, 27)

    def fmin(a, b):
        return a if a < b else b

    def fplus(a, b):
        return a + b

    sr = user_semiring(fmin, fplus, name="my_min_plus", identity=np.inf)
    C = spgemm(A, B, semiring=sr, n_threads=2)
    R = spgemm(A, B, semiring="min_plus")
    np.testing.assert_array_equal(C.indices, R.indices)
    np.testing.assert_array_equal(C.data, R.data)
    M = rand(80, 90, 0.2, 28)
    np.testing.assert_array_equal(spgemm(A, B, semiring=sr, mask=M).toarray(),
                                  spgemm(A, B, semiring="min_plus", mask=M).toarray())
    # compiled once: a second semiring from the same functions reuses the cfuncs
    sr2 = user_semiring(fmin, fplus)
    assert sr2._ops[0] is sr._ops[0] and sr2._ops[1] is sr._ops[1]


def test_user_semiring_accepts_cfunc_and_njit():
    numba = pytest.importorskip("numba")

    @numba.cfunc("float64(float64, float64)")
    def add(a, b):
        return max(a, b)

    @numba.njit
    def mul(a, b):
        return min(a, b)

    sr = user_semiring(add, mul, name="max_min")
    A = sp.csr_array(np.array([[1.0, 4.0], [0.0, 2.0]]))
    C = spgemm(A, A, semiring=sr)
    # widest path of two hops: max over k of min(A[i,k], A[k,j])
    np.testing.assert_array_equal(C.toarray(), [[1.0, 2.0], [0.0, 2.0]])


def test_user_semiring_wrong_signature():
    numba = pytest.importorskip("numba")

    @numba.cfunc("float32(float32, float32)")
    def add32(a, b):
        return a + b

    with pytest.raises(TypeError, match=r"must be float64\(float64, float64\)"):
        user_semiring(add32, add32)
    with pytest.raises(TypeError, match="could not compile multiply"):
        user_semiring(lambda a, b: a + b, lambda a, b: a.nonexistent)
    with pytest.raises(TypeError, match="must be a function or a numba cfunc"):
        user_semiring(lambda a, b: a + b, 3)


def test_user_semiring_without_numba(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)
    with pytest.raises(ImportError, match=r'pip install "sparsecore\[jit\]"'):
        user_semiring(lambda a, b: a + b, lambda a, b: a * b)
    # the built-ins do not need numba
    A = rand(5, 5, 0.5, 29)
    spgemm(A, A, semiring="min_plus")
