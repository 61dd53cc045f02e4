"""Property-based fuzzing of every public kernel entry point.

Each case gets either the right answer (checked against numpy/scipy) or a
clear exception (ValueError, TypeError, MemoryError); never a crash, never a
silently wrong result, and inputs are left byte-identical either way.

The default run keeps the example counts small (the whole module takes a few
seconds); ``SPARSECORE_FUZZ=1 pytest tests/properties/test_fuzz.py`` runs 50 times as
many examples per property (the ``slow`` fuzzing mode, see
docs/dev/hardening.rst).
"""
import os

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import sparsecore
from sparsecore import formats, ops

SLOW = bool(os.environ.get("SPARSECORE_FUZZ"))


def fuzz(n):
    """Hypothesis settings: ``n`` examples, 50 n in the slow fuzzing mode."""
    return settings(max_examples=50 * n if SLOW else n, deadline=None,
                    suppress_health_check=list(HealthCheck))


# Tolerances: rtol per value dtype, relative to the size of the products.
RTOL = {np.float32: 2e-4, np.float64: 1e-11, np.complex64: 2e-4, np.complex128: 1e-11}
REAL = [np.float32, np.float64]
VALUE_DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def snapshot(*arrays):
    """Bytes, dtype, shape and strides of every array (to compare after a call)."""
    out = []
    for a in arrays:
        if sp.issparse(a):
            out.append(("sparse", a.format, a.shape)
                       + tuple(snapshot(*(getattr(a, n) for n in ("indptr", "indices", "data")
                                          if hasattr(a, n)))))
        elif isinstance(a, np.ndarray):
            out.append((a.dtype.str, a.shape, a.strides, a.flags.writeable,
                        np.ascontiguousarray(a).tobytes()))
        else:
            out.append(repr(a))
    return out


def special_values(draw, n, dtype):
    """Values with NaN, +-inf, -0.0 and denormals mixed into ordinary ones."""
    pool = [0.0, -0.0, 1.0, -2.5, 3e-310 if dtype in (np.float64, np.complex128) else 1e-40,
            np.inf, -np.inf, np.nan]
    special = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    vals = rng.standard_normal(n)
    if special and n:
        picks = rng.integers(0, len(pool), n)
        mask = rng.random(n) < 0.3
        vals = np.where(mask, np.array(pool)[picks], vals)
    if np.dtype(dtype).kind == "c":
        vals = vals + 1j * rng.standard_normal(n)
    return vals.astype(dtype)


@st.composite
def csr_matrices(draw, m=None, n=None, dtypes=VALUE_DTYPES, max_dim=9):
    m = draw(st.integers(0, max_dim)) if m is None else m
    n = draw(st.integers(0, max_dim)) if n is None else n
    dtype = draw(st.sampled_from(dtypes))
    nnz = draw(st.integers(0, 2 * m * n)) if m * n else 0
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = rng.integers(0, max(m, 1), nnz)
    cols = rng.integers(0, max(n, 1), nnz)
    vals = special_values(draw, nnz, dtype)
    A = sp.coo_array((vals, (rows, cols)), shape=(m, n)).tocsr()  # may hold duplicates
    if draw(st.booleans()):  # unsorted, duplicated indices straight from COO
        order = rng.permutation(nnz)
        r = rows[order]
        perm = np.argsort(r, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=m))]) if m else np.zeros(1)
        A = sp.csr_array((vals[order][perm], cols[order][perm], indptr.astype(np.int32)),
                         shape=(m, n))
    itype = draw(st.sampled_from([np.int32, np.int64]))
    A.indptr = A.indptr.astype(itype)
    A.indices = A.indices.astype(itype)
    layout = draw(st.sampled_from(["plain", "readonly", "strided", "bigendian"]))
    if layout == "readonly":
        for a in (A.indptr, A.indices, A.data):
            a.flags.writeable = False
    elif layout == "strided":  # non-contiguous index and value arrays
        A.indices = np.repeat(A.indices, 2)[::2]
        A.data = np.repeat(A.data, 2)[::2]
    elif layout == "bigendian":
        A.data = A.data.astype(A.data.dtype.newbyteorder(">"))
        A.indices = A.indices.astype(A.indices.dtype.newbyteorder(">"))
    return A


def dense_of(A):
    """The dense matrix a CSR structure means (duplicates summed), in
    complex128/float64, computed by hand (no scipy canonicalisation)."""
    m, n = A.shape
    D = np.zeros((m, n), dtype=np.complex128 if A.dtype.kind == "c" else np.float64)
    for i in range(m):
        for p in range(A.indptr[i], A.indptr[i + 1]):
            D[i, A.indices[p]] += A.data[p]
    return D


def sparse_product_reference(A, B):
    """Gustavson's product by hand: only stored entries multiply (a structural
    zero times inf is no term at all, as in scipy), in complex128/float64."""
    m, n = A.shape[0], B.shape[1]
    out = np.zeros((m, n), dtype=np.complex128 if "c" in (A.dtype.kind, B.dtype.kind)
                   else np.float64)
    for i in range(m):
        for p in range(A.indptr[i], A.indptr[i + 1]):
            k, a = A.indices[p], A.data[p]
            for q in range(B.indptr[k], B.indptr[k + 1]):
                out[i, B.indices[q]] += a * B.data[q]
    return out


def assert_close_with_specials(got, want, dtype, scale):
    """Equal where the reference is finite (to rtol * scale), and the same
    non-finite pattern (NaN where NaN, same infinities) elsewhere."""
    got = np.asarray(got, dtype=want.dtype)
    for part in ((lambda z: z.real, lambda z: z.imag) if want.dtype.kind == "c" else (lambda z: z,)):
        g, w = part(got), part(want)
        fin = np.isfinite(w)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_array_equal(g[np.isinf(w)], w[np.isinf(w)])
        np.testing.assert_allclose(g[fin], w[fin], rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


# ---------------------------------------------------------------------------
# spgemm and spgemm_symbolic
# ---------------------------------------------------------------------------

@fuzz(60)
@given(st.data(), st.sampled_from([1, 2]))
def test_spgemm_any_csr_equals_dense_reference(data, nt):
    A = data.draw(csr_matrices())
    B = data.draw(csr_matrices(m=A.shape[1]))
    before = snapshot(A, B)
    with np.errstate(all="ignore"):
        C = sparsecore.spgemm(A, B, n_threads=nt)
        want = sparse_product_reference(A, B)
    assert snapshot(A, B) == before
    assert C.shape == (A.shape[0], B.shape[1])
    assert C.has_canonical_format
    Cs = C.copy()
    Cs.sum_duplicates()
    np.testing.assert_array_equal(Cs.indices, C.indices)  # sorted, no duplicates
    dt = np.result_type(A.dtype, B.dtype).newbyteorder("=").type
    assert C.dtype == np.result_type(A.dtype, B.dtype).newbyteorder("=")
    scale = 1.0 + (np.abs(dense_of(A)[np.isfinite(dense_of(A))]).sum()
                   * np.abs(dense_of(B)[np.isfinite(dense_of(B))]).sum())
    assert_close_with_specials(C.toarray(), want, dt, scale)


@fuzz(30)
@given(st.data())
def test_spgemm_symbolic_counts_equal_scipy_structure(data):
    A = data.draw(csr_matrices(dtypes=[np.float64]))
    B = data.draw(csr_matrices(m=A.shape[1], dtypes=[np.float64]))
    before = snapshot(A, B)
    sym = ops.spgemm_symbolic(A, B)
    assert snapshot(A, B) == before
    pa = sp.csr_array((np.ones(A.nnz), A.indices.astype(np.int64), A.indptr.astype(np.int64)),
                      shape=A.shape)
    pb = sp.csr_array((np.ones(B.nnz), B.indices.astype(np.int64), B.indptr.astype(np.int64)),
                      shape=B.shape)
    P = (pa @ pb).tocsr()
    P.sum_duplicates()
    assert sym.total_nnz == P.nnz  # structural nonzeros (no cancellation in a pattern)


CORRUPTIONS = ["negative index", "index >= n", "indptr decreasing", "indptr[0] != 0",
               "indptr[-1] > len(indices)", "data too short", "indptr too short", "no indptr"]


MALFORMED_ENTRIES = {
    "spgemm": lambda A, B: sparsecore.spgemm(A, B),
    "semiring": lambda A, B: sparsecore.spgemm(A, B, semiring="min_plus"),
    "masked": lambda A, B: sparsecore.spgemm(
        A, B, mask=sp.csr_array(np.ones((A.shape[0], B.shape[1])))),
    "topk": lambda A, B: ops.spgemm_topk(A, B, 2),
}


@fuzz(60)
@given(st.data(), st.sampled_from(CORRUPTIONS), st.sampled_from(["A", "B"]),
       st.sampled_from(sorted(MALFORMED_ENTRIES)))
def test_spgemm_malformed_csr_is_a_clear_error(data, corruption, which, entry):
    # the atheris harness found spgemm_topk accepting a malformed empty operand
    A = data.draw(csr_matrices(dtypes=REAL))
    B = data.draw(csr_matrices(m=A.shape[1], dtypes=REAL))
    X = A if which == "A" else B
    m, n = X.shape
    indptr, indices, dat = (np.array(X.indptr), np.array(X.indices), np.array(X.data))
    if corruption == "negative index":
        assume(X.nnz > 0)
        indices[data.draw(st.integers(0, X.nnz - 1))] = -data.draw(st.integers(1, 2**31 - 1))
    elif corruption == "index >= n":
        assume(X.nnz > 0)
        indices[data.draw(st.integers(0, X.nnz - 1))] = n + data.draw(st.integers(0, 2**20))
    elif corruption == "indptr decreasing":
        assume(m >= 1 and X.nnz > 0)
        i = data.draw(st.integers(1, m))
        assume(indptr[i] > 0)
        indptr[i - 1] = indptr[i] + 1 if i > 1 else indptr[0]
        indptr[i] = indptr[i - 1] - 1
        assume(np.any(np.diff(indptr) < 0) and indptr[0] == 0)
    elif corruption == "indptr[0] != 0":
        indptr[0] = data.draw(st.integers(1, 5))
    elif corruption == "indptr[-1] > len(indices)":
        indptr[-1] = len(indices) + data.draw(st.integers(1, 5))
    elif corruption == "data too short":
        assume(X.nnz > 0)
        dat = dat[:-1]
    elif corruption == "indptr too short":   # with m == 0: no row pointer at all
        indptr = indptr[:-1]
    elif corruption == "no indptr":
        indptr = indptr[:0]
    # build the corrupted matrix without scipy's checks
    Y = sp.csr_array((m, n))
    Y.indptr, Y.indices, Y.data = indptr, indices, dat
    A2, B2 = (Y, B) if which == "A" else (A, Y)
    before = snapshot(A2, B2)
    with pytest.raises((ValueError, TypeError)) as info:
        MALFORMED_ENTRIES[entry](A2, B2)
    assert which in str(info.value)  # the message names the argument
    assert snapshot(A2, B2) == before


@pytest.mark.parametrize("itype", [np.int32, np.int64])
def test_spgemm_with_2_31_minus_1_columns(itype):
    """The widest int32 shape: only the columns of B can be that large
    cheaply (rows cost an indptr entry each), and the accumulators must not
    be sized by the width. Rows of 1 term (a scaled copy), a few terms (the
    tiny path) and more than 8 (the hash path) are all exercised."""
    n = 2**31 - 1
    cols = np.array([0, 5, 2**20, 2**30, n - 7, n - 3, n - 2, n - 1], dtype=np.int64)
    bx = np.arange(1.0, 9.0)
    B = sp.csr_array((np.concatenate([bx, bx[:7]]), np.concatenate([cols, cols[1:][::-1] - 1]),
                      np.array([0, 8, 15])), shape=(2, n))
    A = sp.csr_array((np.array([2.0, 3.0, -1.0, 1.0]), np.array([0, 1, 0, 1], dtype=itype),
                      np.array([0, 1, 2, 4], dtype=itype)), shape=(3, 2))
    C = sparsecore.spgemm(A, B)
    assert C.shape == (3, n) and C.has_canonical_format
    # reference: the same product over the distinct columns only
    uniq, inv = np.unique(B.indices, return_inverse=True)
    Bc = sp.csr_array((B.data, inv, B.indptr), shape=(2, len(uniq)))
    want = (A.astype(np.float64) @ Bc).toarray()
    got = np.zeros((3, len(uniq)))
    pos = np.searchsorted(uniq, C.indices)
    for i in range(3):
        got[i, pos[C.indptr[i]:C.indptr[i + 1]]] = C.data[C.indptr[i]:C.indptr[i + 1]]
    np.testing.assert_array_equal(got, want)
    assert C.indices.dtype == np.int32  # the shape fits int32
    sym = ops.spgemm_symbolic(A, B)
    assert sym.total_nnz == C.nnz + int(np.sum(want == 0) - np.sum(got == 0))


def test_spgemm_huge_empty_shapes():
    big = 2**31 - 1
    C = sparsecore.spgemm(sp.csr_array((3, 4)), sp.csr_array((4, big)))
    assert C.shape == (3, big) and C.nnz == 0
    C = sparsecore.spgemm(sp.csr_array((0, 4)), sp.csr_array((4, big)))
    assert C.shape == (0, big)


# ---------------------------------------------------------------------------
# spmm / sddmm on scipy, block-sparse and N:M operands
# ---------------------------------------------------------------------------

@st.composite
def dense_arrays(draw, shape, dtype):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal(shape).astype(dtype)
    layout = draw(st.sampled_from(["C", "F", "strided", "negstride", "readonly", "bigendian"]))
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "strided" and X.ndim == 2:
        Y = np.zeros((shape[0], 2 * shape[1] + 1), dtype=dtype)
        Y[:, 1::2] = X
        X = Y[:, 1::2]
    elif layout == "negstride":
        X = np.ascontiguousarray(X[::-1])[::-1]
    elif layout == "readonly":
        X.flags.writeable = False
    elif layout == "bigendian":
        X = X.astype(X.dtype.newbyteorder(">"))
    if draw(st.booleans()) and X.size:
        flat = X.reshape(-1) if X.flags.c_contiguous else None
        if flat is not None and X.flags.writeable:
            flat[rng.integers(0, X.size)] = draw(st.sampled_from([np.nan, np.inf, -0.0, 1e-42]))
    return X


@st.composite
def structured(draw, dtype):
    kind = draw(st.sampled_from(["csr", "block", "nm"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "nm":
        n, m = draw(st.sampled_from([(1, 2), (2, 4), (1, 4), (2, 8)]))
        rows = draw(st.integers(0, 9))
        cols = draw(st.integers(0, 3)) * m + draw(st.sampled_from([0, 0, 1]))
        W = rng.standard_normal((rows, cols)).astype(dtype)
        return ops.nm_prune(W, n, m)
    if kind == "block":
        bs = draw(st.sampled_from([(1, 1), (2, 2), (4, 1), (1, 4), (4, 4)]))
        W = rng.standard_normal((draw(st.integers(0, 11)), draw(st.integers(0, 11)))).astype(dtype)
        return ops.block_prune(W, bs, draw(st.floats(0, 1)))
    return sp.random_array((draw(st.integers(0, 9)), draw(st.integers(0, 9))),
                           density=draw(st.floats(0, 1)), dtype=dtype, rng=rng, format="csr")


def dense_matrix(S):
    return S.toarray() if sp.issparse(S) else S.toarray()


@fuzz(60)
@given(st.data(), st.sampled_from(REAL), st.sampled_from([None, 1, 3]), st.sampled_from([1, 2]))
def test_spmm_any_operand_and_layout(data, dtype, batch, nt):
    S = data.draw(structured(dtype))
    shape = (S.shape[1],) if batch is None else (S.shape[1], batch)
    X = data.draw(dense_arrays(shape, dtype))
    before = snapshot(S if sp.issparse(S) else np.zeros(0), X)
    with np.errstate(all="ignore"):
        Y = ops.spmm(S, X, n_threads=nt)
        want = dense_matrix(S).astype(np.float64) @ np.asarray(X, dtype=np.float64)
    assert snapshot(S if sp.issparse(S) else np.zeros(0), X) == before
    assert Y.shape == want.shape
    assert Y.dtype == np.dtype(dtype)
    scale = 1.0 + np.abs(dense_matrix(S)).sum() * np.nan_to_num(np.abs(np.asarray(X, float)),
                                                                  posinf=0).max(initial=0)
    if np.all(np.isfinite(X)):
        np.testing.assert_allclose(Y, want, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)
    else:  # non-finite values reach exactly the rows that store a value in their column
        Sd = dense_matrix(S) != 0
        bad = ~np.isfinite(np.asarray(X, float))
        hit = (Sd.astype(float) @ bad.astype(float)) > 0
        np.testing.assert_array_equal(~np.isfinite(Y), hit)


@fuzz(40)
@given(st.data(), st.sampled_from(REAL), st.sampled_from([None, 1, 5]))
def test_sddmm_any_pattern_and_layout(data, dtype, batch):
    P = data.draw(structured(dtype))
    m, n = P.shape
    gshape = (m,) if batch is None else (m, batch)
    xshape = (n,) if batch is None else (n, batch)
    G = data.draw(dense_arrays(gshape, dtype))
    X = data.draw(dense_arrays(xshape, dtype))
    assume(np.all(np.isfinite(G)) and np.all(np.isfinite(X)))
    before = snapshot(G, X)
    out = ops.sddmm(G, X, P)
    assert snapshot(G, X) == before
    full = (np.asarray(G, np.float64).reshape(m, batch or 1)
            @ np.asarray(X, np.float64).reshape(n, batch or 1).T)
    mask = dense_matrix(P) != 0 if not sp.issparse(P) else None
    got = out.toarray()
    if sp.issparse(P):
        pat = P.copy()
        pat.data = np.ones_like(pat.data)
        mask = pat.toarray() != 0
    want = np.where(mask, full, 0.0)
    np.testing.assert_allclose(np.where(mask, got, 0.0), want, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * (1 + np.abs(full).max(initial=0)))
    np.testing.assert_array_equal(np.where(mask, 0.0, got), 0.0)


@fuzz(40)
@given(st.data(), st.sampled_from(REAL), st.sampled_from([(1, 2), (2, 4), (1, 8), (3, 16)]),
       st.sampled_from([0, 1]))
def test_nm_prune_keeps_the_n_largest_of_every_group(data, dtype, nm, axis):
    n, m = nm
    rows = data.draw(st.integers(0, 7))
    cols = data.draw(st.integers(0, 3)) * m
    shape = (rows, cols) if axis == 1 else (cols, rows)
    W = data.draw(dense_arrays(shape, dtype))
    assume(np.all(np.isfinite(W)))
    before = snapshot(W)
    S = ops.nm_prune(W, n, m, axis=axis)
    assert snapshot(W) == before
    D = S.toarray()
    Wn = np.asarray(W, np.float64)
    groups = (Wn if axis == 1 else Wn.T).reshape(-1, m)
    kept = (D if axis == 1 else D.T).reshape(-1, m) != 0
    # what is kept is W itself
    np.testing.assert_array_equal(np.where(D != 0, Wn, 0), D)
    for g, k in zip(groups, kept):
        if k.any() and (~k).any():
            assert np.abs(g[k]).min() >= np.abs(g[~k]).max()


@fuzz(30)
@given(st.data(), st.sampled_from(REAL), st.sampled_from([(1, 1), (2, 2), (4, 2)]),
       st.floats(0, 1))
def test_block_prune_keeps_the_largest_blocks(data, dtype, bs, density):
    W = data.draw(dense_arrays((data.draw(st.integers(0, 9)), data.draw(st.integers(0, 9))),
                               dtype))
    assume(np.all(np.isfinite(W)))
    before = snapshot(W)
    S = ops.block_prune(W, bs, density)
    assert snapshot(W) == before
    D = S.toarray()
    Wn = np.asarray(W)
    np.testing.assert_array_equal(D[D != 0], Wn[D != 0])


# ---------------------------------------------------------------------------
# Monarch and Kronecker operators
# ---------------------------------------------------------------------------

@fuzz(40)
@given(st.data(), st.sampled_from(VALUE_DTYPES), st.sampled_from([1, 4, 9, 16]),
       st.sampled_from([None, 1, 3]), st.booleans())
def test_monarch_matmul_equals_its_dense_matrix(data, dtype, size, batch, transpose):
    M = formats.MonarchMatrix.random((size, size), dtype=dtype,
                                     random_state=data.draw(st.integers(0, 2**31)))
    if transpose:
        M = M.T
    shape = (size,) if batch is None else (size, batch)
    X = data.draw(dense_arrays(shape, np.float64)).astype(
        np.dtype(dtype).newbyteorder(data.draw(st.sampled_from(["=", ">"]))))
    assume(np.all(np.isfinite(X)))
    before = snapshot(X)
    Y = M @ X
    assert snapshot(X) == before
    want = M.toarray().astype(np.complex128) @ np.asarray(X, np.complex128)
    np.testing.assert_allclose(Y, want, rtol=RTOL[dtype] * 10,
                               atol=RTOL[dtype] * 10 * (1 + np.abs(want).max(initial=0)))


@fuzz(25)
@given(st.data(), st.sampled_from([np.float32, np.float64]), st.sampled_from(["svd", "power"]))
def test_monarch_project_is_exact_on_monarch_matrices(data, dtype, method):
    size = data.draw(st.sampled_from([4, 9, 16]))
    M = formats.MonarchMatrix.random((size, size), dtype=dtype,
                                     random_state=data.draw(st.integers(0, 2**31)))
    W = M.toarray()
    W.flags.writeable = False
    before = snapshot(W)
    P = ops.monarch_project(W, method=method)
    assert snapshot(W) == before
    np.testing.assert_allclose(P.toarray(), W, rtol=RTOL[dtype] * 100,
                               atol=RTOL[dtype] * 100 * np.abs(W).max())


@fuzz(40)
@given(st.data(), st.sampled_from(VALUE_DTYPES), st.lists(st.tuples(st.integers(1, 4),
                                                                    st.integers(1, 4)),
                                                          min_size=1, max_size=3),
       st.sampled_from([None, 1, 2]))
def test_kronecker_operator_equals_numpy_kron(data, dtype, dims, tail):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    factors = []
    for r, c in dims:
        F = rng.standard_normal((r, c))
        if np.dtype(dtype).kind == "c":
            F = F + 1j * rng.standard_normal((r, c))
        F = F.astype(dtype)
        if data.draw(st.booleans()):
            F = np.asfortranarray(F)
        factors.append(F)
    K = formats.KroneckerOperator(factors)
    n = K.shape[1]
    X = rng.standard_normal((n,) if tail is None else (n, tail)).astype(dtype)
    before = snapshot(X, *factors)
    Y = K @ X
    assert snapshot(X, *factors) == before
    dense = factors[0].astype(np.complex128)
    for F in factors[1:]:
        dense = np.kron(dense, F.astype(np.complex128))
    want = dense @ X.astype(np.complex128)
    np.testing.assert_allclose(Y, want, rtol=RTOL[dtype] * 10,
                               atol=RTOL[dtype] * 10 * (1 + np.abs(want).max()))


# ---------------------------------------------------------------------------
# solvers: bad data is refused before any work
# ---------------------------------------------------------------------------

@fuzz(20)
@given(st.data(), st.sampled_from(["nan", "inf", "shape", "dtype"]))
def test_bcd_estimators_refuse_bad_data_before_work(data, problem):
    from sparsecore.linear_model import GreedyBCDLasso
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((12, 5))
    y = rng.standard_normal(12)
    if problem == "nan":
        X[data.draw(st.integers(0, 11)), data.draw(st.integers(0, 4))] = np.nan
    elif problem == "inf":
        y[data.draw(st.integers(0, 11))] = np.inf
    elif problem == "shape":
        y = y[:-1]
    else:
        X = X.astype(object)
        X[0, 0] = "a"
    before = snapshot(X, y)
    with pytest.raises((ValueError, TypeError)):
        GreedyBCDLasso(alpha=0.1).fit(X, y)
    assert snapshot(X, y) == before
