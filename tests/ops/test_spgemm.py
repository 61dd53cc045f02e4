"""spgemm against scipy: real matrices, generated ones, every dtype, edge
cases, thread-count invariance and bad input."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsecore import datasets, spgemm
from helpers import SHARED, SHARED_MATRICES, requires_shared


def reference(A, B):
    """scipy's product in canonical form (scipy drops exact zeros too)."""
    C = sp.csr_array(A @ B)
    C.sum_duplicates()
    C.sort_indices()
    return C


def assert_same_csr(C, R, *, exact=True, rtol=0):
    assert isinstance(C, sp.csr_array)
    assert C.shape == R.shape
    assert C.has_canonical_format
    indptr, indices = C.indptr, C.indices
    # canonical: sorted, no duplicates
    for i in range(C.shape[0]):
        row = indices[indptr[i]:indptr[i + 1]]
        assert np.all(np.diff(row) > 0)
    np.testing.assert_array_equal(C.indptr, R.indptr)
    np.testing.assert_array_equal(C.indices, R.indices)
    if exact:
        np.testing.assert_array_equal(C.data, R.data)
    else:
        np.testing.assert_allclose(C.data, R.data, rtol=rtol)


def snapshot(X):
    X = X.tocsr() if X.format != "csr" else X
    return X.format, X.dtype, X.indptr.copy(), X.indices.copy(), X.data.copy()


def assert_unchanged(X, snap):
    fmt, dtype, indptr, indices, data = snap
    assert X.dtype == dtype
    Y = X.tocsr() if X.format != "csr" else X
    np.testing.assert_array_equal(Y.indptr, indptr)
    np.testing.assert_array_equal(Y.indices, indices)
    np.testing.assert_array_equal(Y.data, data)


# ---- real matrices -------------------------------------------------------

@pytest.mark.parametrize("name", sorted(datasets.list_matrices()))
def test_shipped_matrices_equal_scipy(name):
    A = datasets.load_matrix(name)
    # same summation order as scipy, so equal to the last bit
    assert_same_csr(spgemm(A, A), reference(A, A))
    assert_same_csr(spgemm(A, A.T), reference(A, A.T))


@requires_shared
@pytest.mark.parametrize("name", [m for m in SHARED_MATRICES if m != "arrow"])
def test_shared_matrices_equal_scipy(name):
    A = datasets.read_matrix_market(SHARED / f"{name}.mtx")
    B = A if A.shape[0] == A.shape[1] else sp.csr_array(A.T)
    R = reference(A, B)
    C1 = spgemm(A, B, n_threads=1)
    C2 = spgemm(A, B, n_threads=2)
    assert_same_csr(C1, R)
    assert_same_csr(C2, R)
    # A @ A.T too (a different sparsity structure for unsymmetric matrices)
    At = sp.csr_array(A.T)
    assert_same_csr(spgemm(A, At), reference(A, At))


@requires_shared
def test_arrow_squared_raises_memory_error_before_allocating():
    # arrow @ arrow has 2.16e9 nonzeros (about 35 GB): refused from the
    # cheap lower bound, before any large allocation or the exact count
    A = datasets.read_matrix_market(SHARED / "arrow.mtx")
    with pytest.raises(MemoryError, match="bytes"):
        spgemm(A, A)


def test_memory_error_names_the_bytes():
    # a column of ones times a row of ones: 1e12 nonzeros
    n = 10**6
    col = sp.csr_array((np.ones(n), (np.arange(n), np.zeros(n, int))), shape=(n, 1))
    row = sp.csr_array((np.ones(n), (np.zeros(n, int), np.arange(n))), shape=(1, n))
    with pytest.raises(MemoryError, match=r"1,000,000,000,000 nonzeros needs [\d,]+ bytes"):
        spgemm(col, row)


# ---- generated matrices --------------------------------------------------

@pytest.mark.parametrize(
    "make",
    [
        lambda: datasets.make_rmat(10),
        lambda: datasets.make_erdos_renyi(3000, 12, n_cols=40_000),
        lambda: datasets.make_laplacian((30, 30)),
        lambda: datasets.make_laplacian((12, 12, 12), stencil=27),
    ],
    ids=["rmat10", "er_wide", "lap2d", "lap3d27"],
)
def test_generated_equal_scipy(make):
    A = make()
    B = sp.csr_array(A.T) if A.shape[0] != A.shape[1] else A
    for nt in (1, 2):
        assert_same_csr(spgemm(A, B, n_threads=nt), reference(A, B))


def test_wide_rows_use_every_accumulator():
    # rows of every length against many columns: tiny rows, hashed rows,
    # ordered-hash rows and dense rows in one product
    rng = np.random.default_rng(0)
    m, k, n = 400, 300, 100_000
    lengths = rng.integers(0, 60, m)
    lengths[:5] = [0, 1, 2, 250, 300]
    rows = np.repeat(np.arange(m), lengths)
    cols = np.concatenate([rng.choice(k, size=l, replace=False) for l in lengths])
    A = sp.csr_array((rng.standard_normal(rows.size), (rows, cols)), shape=(m, k))
    B = sp.random_array((k, n), density=0.002, rng=rng, format="csr")
    B = sp.vstack([B[:7], sp.csr_array(np.ones((1, n))), B[8:]], format="csr")  # one dense row
    for nt in (1, 2):
        assert_same_csr(spgemm(A, B, n_threads=nt), reference(A, B))


def test_clustered_columns_fall_back_from_the_ordered_hash():
    # columns crowd into one end of a wide range: the ordered hash probes
    # too long and the row is redone with the scrambling hash
    rng = np.random.default_rng(1)
    n = 1 << 20
    m, k = 50, 200
    B_rows, B_cols = [], []
    for r in range(k):
        cols = np.concatenate([rng.choice(4000, 40, replace=False), [n - 1 - r]])
        B_rows.append(np.full(cols.size, r))
        B_cols.append(cols)
    B = sp.csr_array(
        (rng.standard_normal(sum(c.size for c in B_cols)), (np.concatenate(B_rows), np.concatenate(B_cols))),
        shape=(k, n),
    )
    A = sp.random_array((m, k), density=0.3, rng=rng, format="csr")
    assert_same_csr(spgemm(A, B), reference(A, B))


# ---- dtypes ----------------------------------------------------------------

@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.complex64, np.complex128]
)
def test_float_and_complex_dtypes(dtype, rng):
    A = sp.random_array((60, 50), density=0.2, rng=rng, format="csr", dtype=np.float64)
    B = sp.random_array((50, 70), density=0.2, rng=rng, format="csr", dtype=np.float64)
    A = A.astype(dtype)
    B = B.astype(dtype)
    if np.iscomplexobj(A.data):
        A.data = (A.data + 1j * rng.standard_normal(A.nnz)).astype(dtype)
        B.data = (B.data - 2j * rng.standard_normal(B.nnz)).astype(dtype)
    C = spgemm(A, B)
    assert C.dtype == dtype
    assert_same_csr(C, reference(A, B))


@pytest.mark.parametrize(
    "dta, dtb", [(np.int32, np.int32), (np.int64, np.int64), (np.int8, np.int16),
                 (np.uint8, np.uint8), (np.int32, np.float32), (np.float32, np.float64),
                 (np.int64, np.complex64)]
)
def test_promotion_follows_numpy(dta, dtb, rng):
    A = sp.random_array((30, 40), density=0.3, rng=rng, format="csr")
    B = sp.random_array((40, 20), density=0.3, rng=rng, format="csr")
    A.data = (A.data * 5).astype(dta)
    B.data = (B.data * 5).astype(dtb)
    A.eliminate_zeros()
    B.eliminate_zeros()
    C = spgemm(A, B)
    out = np.result_type(dta, dtb)
    assert C.dtype == out
    D = A.toarray() @ B.toarray()
    if out.kind in "iu":
        np.testing.assert_array_equal(C.toarray(), D)
    else:
        # dense BLAS sums in another order: round-off differs by a few ulps
        rtol = 1e-5 if np.finfo(out).bits <= 32 else 1e-13
        np.testing.assert_allclose(C.toarray(), D, rtol=rtol)


def test_integer_overflow_wraps_like_numpy():
    A = sp.csr_array(np.array([[100, 100]], dtype=np.int8))
    B = sp.csr_array(np.array([[2], [1]], dtype=np.int8))
    np.testing.assert_array_equal(spgemm(A, B).toarray(), A.toarray() @ B.toarray())


def test_bool_and_object_are_refused():
    A = sp.csr_array(np.eye(3, dtype=bool))
    with pytest.raises(TypeError, match="bool"):
        spgemm(A, A)
    with pytest.raises(TypeError, match=r"astype"):
        spgemm(A, A.astype(float))


# ---- structure edge cases ---------------------------------------------------

@pytest.mark.parametrize("shapes", [((0, 5), (5, 3)), ((4, 0), (0, 3)), ((3, 4), (4, 0)), ((1, 1), (1, 1))])
def test_empty_and_tiny_shapes(shapes):
    A = sp.csr_array(np.ones(shapes[0]))
    B = sp.csr_array(np.ones(shapes[1]))
    C = spgemm(A, B)
    assert C.shape == (shapes[0][0], shapes[1][1])
    np.testing.assert_array_equal(C.toarray(), A.toarray() @ B.toarray())


def test_all_zero_and_cancelling_products():
    A = sp.csr_array((5, 5))
    assert spgemm(A, A).nnz == 0
    # [1, 1] @ [[1], [-1]] cancels to an exact zero, which is dropped
    A = sp.csr_array(np.array([[1.0, 1.0]]))
    B = sp.csr_array(np.array([[1.0], [-1.0]]))
    C = spgemm(A, B)
    assert C.nnz == 0 and C.shape == (1, 1)


def test_duplicates_and_unsorted_input_are_summed(rng):
    rows = np.array([0, 0, 0, 1, 1, 2])
    cols = np.array([3, 1, 3, 2, 0, 1])
    vals = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    A = sp.coo_array((vals, (rows, cols)), shape=(3, 4))
    # a CSR with duplicates and unsorted columns, built without summing
    Acsr = sp.csr_array((vals, cols, np.array([0, 3, 5, 6])), shape=(3, 4))
    assert not Acsr.has_canonical_format
    B = sp.random_array((4, 6), density=0.6, rng=rng, format="csr")
    Bbad = sp.csr_array((B.data[::-1].copy(), B.indices.copy(), B.indptr.copy()), shape=B.shape)
    # reverse each row's entries: unsorted B
    for i in range(4):
        s, e = B.indptr[i], B.indptr[i + 1]
        Bbad.indices[s:e] = B.indices[s:e][::-1]
        Bbad.data[s:e] = B.data[s:e][::-1]
    expected = A.toarray() @ B.toarray()
    for X in (A, Acsr):
        for Y in (B, Bbad):
            C = spgemm(X, Y)
            np.testing.assert_allclose(C.toarray(), expected, rtol=1e-14)
            assert C.has_canonical_format


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "lil", "dok", "dia"])
def test_any_scipy_format_and_matrix_class(fmt, rng):
    A = sp.random_array((20, 30), density=0.2, rng=rng, format=fmt)
    B = sp.random_array((30, 10), density=0.2, rng=rng, format="csr")
    C = spgemm(A, B)
    np.testing.assert_allclose(C.toarray(), A.toarray() @ B.toarray(), rtol=1e-14)
    Am = sp.csr_matrix(A)
    np.testing.assert_allclose(spgemm(Am, B).toarray(), C.toarray())


@pytest.mark.parametrize("semiring, mask", [("plus_times", None), ("min_plus", None),
                                           ("plus_times", "mask")])
def test_result_kind_follows_scipy(semiring, mask, rng):
    """A scipy.sparse matrix on the left gives a csr_matrix, an array a
    csr_array: the kinds scipy's A @ B returns (the left operand decides)."""
    A = sp.random_array((20, 30), density=0.2, rng=rng, format="csr")
    B = sp.random_array((30, 10), density=0.2, rng=rng, format="csr")
    M = sp.random_array((20, 10), density=0.5, rng=rng, format="csr") if mask else None
    ref = spgemm(A, B, semiring=semiring, mask=M)
    assert type(ref) is sp.csr_array
    for a, b in [(sp.csr_matrix(A), sp.csr_matrix(B)), (sp.csc_matrix(A), B),
                 (sp.coo_matrix(A), sp.csr_matrix(B)), (A, sp.csr_matrix(B)),
                 (A.tocoo(), B)]:
        left_is_matrix = isinstance(a, sp.spmatrix)
        if semiring == "plus_times" and mask is None:
            # scipy's own product: a matrix on the left gives a matrix (csr for
            # a csr or coo left operand)
            assert isinstance(a @ b, sp.spmatrix) == left_is_matrix
        C = spgemm(a, b, semiring=semiring, mask=M)
        assert type(C) is (sp.csr_matrix if left_is_matrix else sp.csr_array)
        assert C.has_canonical_format
        np.testing.assert_array_equal(C.indptr, ref.indptr)
        np.testing.assert_array_equal(C.indices, ref.indices)
        np.testing.assert_array_equal(C.data, ref.data)
    # matrix semantics carry over: * is the product, and the result is usable
    Cm = spgemm(sp.csr_matrix(A), B)
    np.testing.assert_allclose((Cm * np.ones((10, 1))).ravel(), (A @ B) @ np.ones(10),
                               rtol=1e-13)
    assert type(Cm[:3]) is sp.csr_matrix


def test_int64_indices_in_and_int32_out(rng):
    A = sp.random_array((50, 40), density=0.1, rng=rng, format="csr")
    A64 = sp.csr_array((A.data, A.indices.astype(np.int64), A.indptr.astype(np.int64)), shape=A.shape)
    assert A64.indices.dtype == np.int64
    snap = snapshot(A64)
    C = spgemm(A64, A64.T)
    assert C.indices.dtype == np.int32 and C.indptr.dtype == np.int32
    assert_same_csr(C, reference(A, A.T))
    assert_unchanged(A64, snap)
    assert A64.indices.dtype == np.int64  # never recast in place


def test_non_contiguous_index_arrays(rng):
    A = sp.random_array((30, 30), density=0.2, rng=rng, format="csr")
    big = np.zeros(2 * A.nnz, dtype=A.indices.dtype)
    big[::2] = A.indices
    Anc = sp.csr_array((A.data, A.indices, A.indptr), shape=A.shape)
    Anc.indices = big[::2]
    assert not Anc.indices.flags.c_contiguous
    assert_same_csr(spgemm(Anc, A), reference(A, A))


# ---- threads ----------------------------------------------------------------

def test_bit_identical_for_any_thread_count():
    A = datasets.make_rmat(11)  # skewed rows: threads get uneven work
    R = spgemm(A, A, n_threads=1)
    for nt in (2, 3, 4, -1, None):
        C = spgemm(A, A, n_threads=nt)
        np.testing.assert_array_equal(C.indptr, R.indptr)
        np.testing.assert_array_equal(C.indices, R.indices)
        np.testing.assert_array_equal(C.data, R.data)


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_bad_n_threads(bad):
    A = sp.csr_array(np.eye(2))
    with pytest.raises((ValueError, TypeError), match="n_threads"):
        spgemm(A, A, n_threads=bad)


# ---- bad input ----------------------------------------------------------------

def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"A has shape \(2, 3\) and B has shape \(2, 3\)"):
        spgemm(sp.csr_array((2, 3)), sp.csr_array((2, 3)))


def test_dense_input_is_refused():
    with pytest.raises(TypeError, match="scipy.sparse"):
        spgemm(np.eye(3), sp.csr_array(np.eye(3)))


@pytest.mark.parametrize(
    "indptr, indices, match",
    [
        ([0, 2, 1, 3], [0, 1, 2], "non-decreasing"),
        ([0, 1, 2, 3], [0, 5, 1], r"out of range: indices\[1\] = 5"),
        ([0, 1, 2, 3], [0, -1, 1], r"out of range: indices\[1\] = -1"),
        ([1, 1, 2, 3], [0, 1, 2], r"indptr\[0\] must be 0"),
    ],
)
def test_malformed_csr_is_refused_and_left_alone(indptr, indices, match):
    A = sp.csr_array((3, 3))
    # bypass scipy's own checks the way a user mutating the arrays would
    A.indptr = np.array(indptr, dtype=np.int32)
    A.indices = np.array(indices, dtype=np.int32)
    A.data = np.ones(3)
    snap = snapshot(A)
    B = sp.csr_array(np.eye(3))
    with pytest.raises(ValueError, match=match):
        spgemm(A, B)
    with pytest.raises(ValueError, match=match.replace("A", "B") if "A" in match else match):
        spgemm(B, A)
    assert_unchanged(A, snap)


def test_inputs_never_modified(rng):
    A = sp.random_array((40, 40), density=0.1, rng=rng, format="coo")
    B = sp.csr_array((rng.standard_normal(3), [2, 0, 2], [0, 3, 3] + [3] * 38), shape=(40, 40))
    sa, sb = snapshot(A), snapshot(B)
    spgemm(A, B)
    assert_unchanged(A, sa)
    assert_unchanged(B, sb)
    assert not B.has_canonical_format  # scipy's cached flag untouched too


# ---- property-based ---------------------------------------------------------

@st.composite
def sparse_pair(draw):
    m = draw(st.integers(0, 12))
    k = draw(st.integers(0, 12))
    n = draw(st.integers(0, 40))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.complex128, np.int64]))
    index_dtype = draw(st.sampled_from([np.int32, np.int64]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    def make(r, c):
        nnz = int(rng.integers(0, max(1, r * c) + 3)) if r and c else 0
        rows = rng.integers(0, r, nnz) if r else np.zeros(0, int)
        cols = rng.integers(0, c, nnz) if c else np.zeros(0, int)
        vals = rng.integers(-3, 4, nnz).astype(dtype)  # small ints: cancellation happens
        # COO -> CSR keeps duplicates and input order within rows
        order = np.argsort(rows, kind="stable")
        rows, cols, vals = rows[order], cols[order], vals[order]
        indptr = np.searchsorted(rows, np.arange(r + 1)).astype(index_dtype)
        X = sp.csr_array((r, c), dtype=dtype)
        X.indptr, X.indices, X.data = indptr, cols.astype(index_dtype), vals
        return X

    return make(m, k), make(k, n)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_pair(), st.sampled_from([1, 2]))
def test_property_equals_dense_product(pair, nt):
    A, B = pair
    sa, sb = snapshot(A), snapshot(B)
    C = spgemm(A, B, n_threads=nt)
    D = A.toarray() @ B.toarray()
    assert C.dtype == D.dtype
    np.testing.assert_array_equal(C.toarray(), D)
    assert C.has_canonical_format
    assert not np.any(C.data == 0)
    assert C.indices.dtype == np.int32
    assert_unchanged(A, sa)
    assert_unchanged(B, sb)
