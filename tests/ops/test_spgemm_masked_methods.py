"""The two methods of the masked product C<M> = A (+.*) B: saxpy (scattered
mask, Gustavson) and dot (one merge per mask entry, GraphBLAS's dot3), and
the cost model that chooses between them.

References: the dense evaluation of test_spgemm_semiring (exact for min/max,
lor_land and plus_pair; rtol 1e-12 float64 / 1e-5 float32 for sums), and each
method against the other: with A's rows sorted both add the products of an
entry in increasing inner index, so they must agree bit for bit.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from helpers import SHARED, interrupt_child, posix_signals, requires_shared
from sparsecore import spgemm
from sparsecore.ops import SEMIRINGS, _spgemm
from semiring_cases import assert_matches, dense_semiring, lower_pattern, rand

METHODS = ["saxpy", "dot"]


@pytest.fixture(params=METHODS)
def method(request, monkeypatch):
    monkeypatch.setattr(_spgemm, "_MASKED_METHOD", request.param)
    return request.param


def _masked(A, B, M, name, method, monkeypatch, **kw):
    monkeypatch.setattr(_spgemm, "_MASKED_METHOD", method)
    C = spgemm(A, B, mask=M, semiring=name, **kw)
    assert _spgemm._last_masked_method == method
    return C


def assert_identical(C1, C2):
    assert C1.dtype == C2.dtype
    np.testing.assert_array_equal(C1.indptr, C2.indptr)
    np.testing.assert_array_equal(C1.indices, C2.indices)
    np.testing.assert_array_equal(C1.data, C2.data)


@pytest.mark.parametrize("name", SEMIRINGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_method_matches_dense(name, dtype, method):
    A = rand(23, 17, 0.3, 1, dtype)
    B = rand(17, 19, 0.3, 2, dtype)
    M = rand(23, 19, 0.4, 3)
    C = spgemm(A, B, mask=M, semiring=name)
    assert _spgemm._last_masked_method == method
    vals, present = dense_semiring(A, B, name, M)
    assert_matches(C, vals, present, name, dtype)


@pytest.mark.parametrize("name", SEMIRINGS)
def test_methods_bit_identical_and_thread_invariant(name, monkeypatch):
    # long rows of A against short columns of B and the reverse: both
    # binary-search branches of the dot kernel, and the plain merge
    rng = np.random.default_rng(4)
    A = rand(300, 2000, 0.02, 5)
    A = sp.vstack([A, rand(5, 2000, 0.9, 6)], format="csr")  # rows of ~1800
    B = sp.hstack([rand(2000, 200, 0.002, 7), rand(2000, 20, 0.5, 8)], format="csr")
    M = sp.random_array(A.shape[:1] + B.shape[1:], density=0.3, format="csr", rng=rng)
    ref = _masked(A, B, M, name, "saxpy", monkeypatch, n_threads=1)
    for t in (1, 2):
        assert_identical(_masked(A, B, M, name, "dot", monkeypatch, n_threads=t), ref)
        assert_identical(_masked(A, B, M, name, "saxpy", monkeypatch, n_threads=t), ref)
    vals, present = dense_semiring(A[295:], B, name, M[295:])
    assert_matches(_masked(A[295:], B, M[295:], name, "dot", monkeypatch), vals, present, name)


def test_dot_with_unsorted_operands_and_duplicates(method):
    # A: every row stored twice, the second copy reversed (unsorted rows with
    # duplicates: the dot method sorts and sums a copy); B: duplicates too
    def doubled(X):
        X = sp.csr_array(X)
        rows = [np.concatenate([X.indices[X.indptr[i]:X.indptr[i + 1]],
                                X.indices[X.indptr[i]:X.indptr[i + 1]][::-1]])
                for i in range(X.shape[0])]
        vals = [np.concatenate([X.data[X.indptr[i]:X.indptr[i + 1]],
                                0.5 * X.data[X.indptr[i]:X.indptr[i + 1]][::-1]])
                for i in range(X.shape[0])]
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
        return sp.csr_array((np.concatenate(vals), np.concatenate(rows).astype(np.int32),
                             indptr), shape=X.shape)

    A = doubled(rand(40, 30, 0.2, 9))
    B = doubled(rand(30, 35, 0.2, 10))
    M = rand(40, 35, 0.5, 11)
    for name in SEMIRINGS:
        C = spgemm(A, B, mask=M, semiring=name)
        vals, present = dense_semiring(A, B, name, M)
        assert_matches(C, vals, present, name)


def test_dot_with_unsorted_rows_of_a(monkeypatch):
    A = rand(30, 30, 0.3, 12)
    A.has_canonical_format = False
    for i in range(A.shape[0]):  # reverse every row
        s = slice(A.indptr[i], A.indptr[i + 1])
        A.indices[s] = A.indices[s][::-1].copy()
        A.data[s] = A.data[s][::-1].copy()
    M = rand(30, 30, 0.3, 13)
    C = _masked(A, A, M, "plus_times", "dot", monkeypatch)
    vals, present = dense_semiring(A, A, "plus_times", M)
    assert_matches(C, vals, present, "plus_times")
    # auto never takes dot with unsorted rows of A
    monkeypatch.setattr(_spgemm, "_MASKED_METHOD", "auto")
    spgemm(A, A, mask=M)
    assert _spgemm._last_masked_method == "saxpy"


def test_complement_always_saxpy(monkeypatch):
    A = rand(20, 20, 0.3, 14)
    M = rand(20, 20, 0.3, 15)
    C = spgemm(A, A, mask=M, complement=True)
    monkeypatch.setattr(_spgemm, "_MASKED_METHOD", "dot")
    C2 = spgemm(A, A, mask=M, complement=True)
    assert _spgemm._last_masked_method == "saxpy"
    assert_identical(C, C2)


def test_cost_model_choices(monkeypatch):
    monkeypatch.setattr(_spgemm, "_MASKED_METHOD", "auto")
    rng = np.random.default_rng(16)
    # a dense product with a very sparse mask: each mask entry costs two
    # short merges, the saxpy every multiply -> dot
    A = sp.random_array((400, 400), density=0.2, format="csr", rng=rng)
    M = sp.random_array((400, 400), density=0.001, format="csr", rng=rng)
    spgemm(A, A, mask=M, semiring="plus_pair")
    assert _spgemm._last_masked_method == "dot"
    # a sparse product under a dense mask: few multiplies -> saxpy
    A = sp.random_array((400, 400), density=0.003, format="csr", rng=rng)
    M = sp.random_array((400, 400), density=0.5, format="csr", rng=rng)
    spgemm(A, A, mask=M, semiring="plus_pair")
    assert _spgemm._last_masked_method == "saxpy"


def test_empty_and_edge_shapes(method):
    for m, k, n in [(0, 3, 4), (3, 0, 4), (3, 4, 0), (1, 1, 1), (5, 5, 5)]:
        A = rand(m, k, 0.5, 17)
        B = rand(k, n, 0.5, 18)
        M = sp.csr_array(np.ones((m, n)))
        for name in ("plus_times", "min_plus", "plus_pair"):
            C = spgemm(A, B, mask=M, semiring=name)
            vals, present = dense_semiring(A, B, name, M)
            assert_matches(C, vals, present, name)
    # all-zero mask and all-zero operand
    A = rand(6, 6, 0.5, 19)
    assert spgemm(A, A, mask=sp.csr_array((6, 6))).nnz == 0
    assert spgemm(sp.csr_array((6, 6)), A, mask=A).nnz == 0


def test_int64_indices(method):
    A = rand(30, 25, 0.3, 20)
    A64 = sp.csr_array((A.data, A.indices.astype(np.int64), A.indptr.astype(np.int64)),
                       shape=A.shape)
    M = rand(30, 30, 0.3, 21)
    C = spgemm(A64, A64.T.tocsr(), mask=M, semiring="max_plus")
    vals, present = dense_semiring(A, A.T, "max_plus", M)
    assert_matches(C, vals, present, "max_plus")


def test_user_semiring_both_methods(monkeypatch):
    pytest.importorskip("numba")
    from sparsecore.ops import user_semiring

    def fmin(a, b):
        return a if a < b else b

    def fplus(a, b):
        return a + b

    sr = user_semiring(fmin, fplus, name="my_min_plus_dot", identity=np.inf)
    A = rand(60, 50, 0.1, 22)
    B = rand(50, 70, 0.1, 23)
    M = rand(60, 70, 0.3, 24)
    ref = _masked(A, B, M, "min_plus", "saxpy", monkeypatch)
    assert_identical(_masked(A, B, M, sr, "dot", monkeypatch, n_threads=2), ref)
    assert_identical(_masked(A, B, M, sr, "saxpy", monkeypatch), ref)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(0, 9), k=st.integers(0, 9), n=st.integers(0, 9),
    da=st.floats(0.0, 1.0), db=st.floats(0.0, 1.0), dm=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1), name=st.sampled_from(SEMIRINGS),
)
def test_methods_property(m, k, n, da, db, dm, seed, name):
    rng = np.random.default_rng(seed)
    A = sp.random_array((m, k), density=da, format="csr", rng=rng)
    B = sp.random_array((k, n), density=db, format="coo", rng=rng)
    A.data = np.round(rng.standard_normal(A.nnz), 1)  # exact zeros and ties happen
    B.data = np.round(rng.standard_normal(B.nnz), 1)
    M = sp.random_array((m, n), density=dm, format="csr", rng=rng)
    vals, present = dense_semiring(A, B, name, M)
    results = []
    old = _spgemm._MASKED_METHOD
    try:
        for meth in METHODS:
            _spgemm._MASKED_METHOD = meth
            C = spgemm(A, B, mask=M, semiring=name)
            assert _spgemm._last_masked_method == meth
            assert_matches(C, vals, present, name)
            results.append(C)
    finally:
        _spgemm._MASKED_METHOD = old
    assert_identical(*results)


@requires_shared
@pytest.mark.parametrize("graph", ["hangGlider_2", "dwt_992", "bcspwr10"])
def test_triangle_counts_both_methods(graph, monkeypatch):
    import scipy.io
    L = lower_pattern(scipy.io.mmread(SHARED / f"{graph}.mtx"))
    L.sort_indices()
    expected = int(((L @ L).multiply(L)).sum())
    counts = {}
    for meth in METHODS:
        C = _masked(L, L, L, "plus_pair", meth, monkeypatch, n_threads=2)
        counts[meth] = C
        assert int(C.sum()) == expected
    assert_identical(counts["saxpy"], counts["dot"])


def test_output_wrapper_matches_scipy_constructor():
    # kernel outputs are wrapped without scipy's constructor: the result must
    # be the same object scipy builds
    A = rand(50, 40, 0.1, 25)
    C = spgemm(A, A.T, mask=rand(50, 50, 0.5, 26))
    R = sp.csr_array((C.data, C.indices, C.indptr), shape=C.shape)
    R.has_canonical_format = True
    assert type(C) is type(R)
    assert set(vars(C)) == set(vars(R))
    assert C.shape == R.shape and C.maxprint == R.maxprint
    assert C.indices.dtype == R.indices.dtype == np.int32
    C.check_format(full_check=True)
    np.testing.assert_array_equal((C @ C).toarray(), (R @ R).toarray())


DOT_CHILD = r"""
import time
import numpy as np
import scipy.sparse as sp
from sparsecore import spgemm
from sparsecore.ops import _spgemm

_spgemm._MASKED_METHOD = "dot"
rng = np.random.default_rng(0)
A = sp.random_array((2000, 2000), density=0.25, format="csr", rng=rng)
M = sp.csr_array(np.ones((2000, 2000)))  # 4 M merges of ~1000 steps
print("ready", flush=True)
t0 = time.perf_counter()
try:
    spgemm(A, A, mask=M, semiring="plus_pair", n_threads={threads})
    print("finished", time.perf_counter() - t0, flush=True)
except KeyboardInterrupt:
    print("interrupted", time.perf_counter() - t0, flush=True)
C = spgemm(A[:10], A, mask=M[:10], semiring="plus_pair")
print("usable", C.shape, flush=True)
"""


@posix_signals
@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_stops_a_long_dot_product(threads):
    assert "usable (10, 2000)" in interrupt_child(DOT_CHILD.format(threads=threads))
