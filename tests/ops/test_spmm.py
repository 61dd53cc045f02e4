"""spmm / sddmm on block-sparse, N:M and scipy CSR matrices against dense
numpy: every format x dtype x layout x transposition, generated shapes
(empty, 1 x 1, not divisible by the blocks or by M), real matrices, thread
invariance, NaN propagation, bad input and untouched inputs."""
import mmap
import os

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsecore import datasets
from sparsecore.formats import BlockSparseMatrix, NMSparseMatrix
from sparsecore.ops import block_prune, nm_prune, sddmm, spmm
from helpers import (SHARED, SHARED_MATRICES, interrupt_child, posix_signals,
                     requires_shared, vm_flags)

# Error bound of a float sum of k products, relative to sum |a_i||b_i|:
# k * eps in the worst case; the tests use the products |S| @ |X| as scale.
RTOL = {np.float32: 4e-6, np.float64: 1e-14}

BLOCK_SHAPES = [(1, 1), (4, 1), (8, 1), (16, 1), (32, 1), (1, 4), (1, 32), (2, 2),
                (4, 4), (8, 8), (16, 16), (2, 16)]
NM_PATTERNS = [(2, 4), (1, 4), (2, 8), (1, 8), (3, 7), (4, 16), (5, 16), (1, 2)]


def assert_product_close(Y, Sd, X, dtype, transpose_x=False):
    """|Y - Sd @ X| <= rtol * (|Sd| @ |X|), computed in float64."""
    Sd = Sd.astype(np.float64)
    Xd = np.asarray(X, dtype=np.float64)
    ref = Sd @ Xd
    scale = np.abs(Sd) @ np.abs(Xd)
    assert Y.shape == ref.shape
    assert Y.dtype == dtype
    # scale grows with the number of terms, which the k * eps bound needs
    k = max(1, Sd.shape[1])
    tol = RTOL[dtype] * np.sqrt(k) * 8 * scale + np.finfo(dtype).tiny
    bad = np.abs(Y - ref) > tol
    assert not bad.any(), f"max error {np.abs(Y - ref).max()} at {np.argwhere(bad)[:3]}"


def random_block(rng, shape, bs, density, dtype):
    W = rng.standard_normal(shape).astype(dtype)
    return block_prune(W, bs, density)


def random_nm(rng, shape, n, m, dtype, axis=1):
    W = rng.standard_normal(shape).astype(dtype)
    return nm_prune(W, n, m, axis=axis)


def random_csr(rng, shape, density, dtype):
    return sp.random_array(shape, density=density, format="csr", dtype=dtype, rng=rng)


def make(kind, rng, shape, dtype):
    if kind[0] == "block":
        return random_block(rng, shape, kind[1], 0.4, dtype)
    if kind[0] == "nm":
        return random_nm(rng, shape, *kind[1], dtype)
    if kind[0] == "nm0":
        return random_nm(rng, shape, *kind[1], dtype, axis=0)
    return random_csr(rng, shape, 0.2, dtype)


def dense_of(S):
    return S.toarray()


KINDS = ([("block", bs) for bs in BLOCK_SHAPES]
         + [("nm", p) for p in NM_PATTERNS]
         + [("nm0", (2, 4)), ("nm0", (1, 8)), ("csr", None)])
KIND_IDS = [f"{k[0]}{'' if k[1] is None else '-' + 'x'.join(map(str, k[1]))}" for k in KINDS]


def layouts(X):
    """The same values as C order, F order and a non-contiguous view."""
    big = np.zeros((X.shape[0], 2 * X.shape[1] + 1), dtype=X.dtype)
    big[:, 1::2] = X
    return {"C": np.ascontiguousarray(X), "F": np.asfortranarray(X), "strided": big[:, 1::2]}


# ---- every format x dtype x layout x transposition ------------------------

@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_against_dense(kind, dtype, rng):
    m, n, B = 45, 70, 19  # no block shape or M divides all of these
    S = make(kind, rng, (m, n), dtype)
    Sd = dense_of(S)
    X = rng.standard_normal((n, B)).astype(dtype)
    G = rng.standard_normal((m, B)).astype(dtype)
    Xb = rng.standard_normal((B, n)).astype(dtype)
    for name, Xl in layouts(X).items():
        assert_product_close(spmm(S, Xl), Sd, X, dtype)
        assert_product_close(S @ Xl, Sd, X, dtype)
    for name, Gl in layouts(G).items():
        # S.T @ G: the input gradient, through the cached transposed structure
        ST = S.T if not sp.issparse(S) else S.T
        assert_product_close(spmm(ST, Gl), Sd.T, G, dtype)
    for name, Xbl in layouts(Xb).items():
        # Xb @ S.T: a layer's forward product in batch-major layout
        ST = S.T
        Y = Xbl @ ST if not sp.issparse(S) else np.asarray(Xbl @ ST)
        assert_product_close(Y.T, Sd, Xbl.T, dtype)
        if not sp.issparse(S):
            assert Y.flags.c_contiguous
    # vectors: matvec both ways
    x = X[:, 0].copy()
    assert_product_close(spmm(S, x)[:, None], Sd, x[:, None], dtype)
    assert_product_close(spmm(S, X[:, 3])[:, None], Sd, X[:, 3:4], dtype)  # strided
    g = G[:, 0]
    if not sp.issparse(S):
        assert_product_close((g @ S)[:, None], Sd.T, g[:, None], dtype)


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_batch_sizes_and_out(kind, rng):
    dtype = np.float32
    m, n = 33, 40
    S = make(kind, rng, (m, n), dtype)
    Sd = dense_of(S)
    for B in (1, 2, 3, 7, 8, 9, 16, 17, 31, 64, 65, 200):
        X = rng.standard_normal((n, B)).astype(dtype)
        assert_product_close(spmm(S, X), Sd, X, dtype)
        for order in "CF":
            out = np.full((m, B), np.nan, dtype=dtype, order=order)
            res = spmm(S, X, out=out)
            assert res is out
            assert_product_close(out, Sd, X, dtype)


def test_mixed_dtypes_promote_like_numpy(rng):
    S = random_block(rng, (20, 24), (4, 4), 0.5, np.float32)
    X64 = rng.standard_normal((24, 5))
    Y = spmm(S, X64)
    assert Y.dtype == np.float64
    assert_product_close(Y, S.toarray(), X64, np.float64)
    Xi = rng.integers(-3, 4, size=(24, 5))
    assert spmm(S, Xi).dtype == np.float64
    Xh = X64.astype(np.float16)
    assert spmm(S, Xh).dtype == np.float32
    Ci = sp.csr_array(rng.integers(-2, 3, size=(20, 24)))
    Yi = spmm(Ci, Xi)
    assert Yi.dtype == np.float64
    np.testing.assert_array_equal(Yi, Ci.toarray() @ Xi)


# ---- generated shapes (hypothesis) ----------------------------------------

@st.composite
def problems(draw):
    kind = draw(st.sampled_from(["block", "nm", "nm0", "csr"]))
    m = draw(st.integers(0, 70))
    n = draw(st.integers(0, 70))
    B = draw(st.integers(0, 40))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**31))
    if kind == "block":
        spec = draw(st.sampled_from(BLOCK_SHAPES))
    elif kind in ("nm", "nm0"):
        M = draw(st.integers(2, 16))
        spec = (draw(st.integers(1, M - 1)), M)
    else:
        spec = None
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    return kind, spec, m, n, B, dtype, seed, density


def build(kind, spec, m, n, dtype, rng, density):
    W = rng.standard_normal((m, n)).astype(dtype)
    if kind == "block":
        return block_prune(W, spec, density)
    if kind == "nm":
        W[rng.random(W.shape) > max(density, 0.05)] = 0
        return nm_prune(W, *spec)
    if kind == "nm0":
        return nm_prune(W, *spec, axis=0)
    W[rng.random(W.shape) > density] = 0
    return sp.csr_array(W)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_hypothesis_spmm_and_transposes(p):
    kind, spec, m, n, B, dtype, seed, density = p
    rng = np.random.default_rng(seed)
    S = build(kind, spec, m, n, dtype, rng, density)
    Sd = S.toarray()
    X = rng.standard_normal((n, B)).astype(dtype)
    G = rng.standard_normal((m, B)).astype(dtype)
    assert_product_close(spmm(S, X), Sd, X, dtype)
    assert_product_close(spmm(S.T, G), Sd.T, G, dtype)
    if not sp.issparse(S):
        Xb = np.asfortranarray(X.T)
        assert_product_close((Xb @ S.T).T, Sd, X, dtype)
    # sddmm on the same structure
    D = sddmm(G, X, S)
    ref = (G.astype(np.float64) @ X.T.astype(np.float64)) * (S.mask() if not sp.issparse(S) else (Sd != 0))
    Dd = D.toarray()
    scale = np.abs(G.astype(np.float64)) @ np.abs(X.T.astype(np.float64))
    assert np.all(np.abs(Dd - ref) <= RTOL[dtype] * 8 * np.sqrt(max(B, 1)) * scale + 1e-30)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31), st.sampled_from([1, 2, 3, 5]))
def test_results_do_not_depend_on_the_thread_count(B, seed, threads):
    rng = np.random.default_rng(seed)
    m, n = 300, 260
    for S in (random_block(rng, (m, n), (8, 1), 0.3, np.float32),
              random_block(rng, (m, n), (1, 1), 0.3, np.float32),
              random_nm(rng, (m, n), 2, 4, np.float32),
              random_nm(rng, (m, n), 1, 8, np.float32, axis=0)):
        X = rng.standard_normal((n, B * 13)).astype(np.float32)
        ref = spmm(S, X, n_threads=1)
        np.testing.assert_array_equal(spmm(S, X, n_threads=threads), ref)
        G = rng.standard_normal((m, B * 13)).astype(np.float32)
        ref = sddmm(G, X, S, n_threads=1)
        got = sddmm(G, X, S, n_threads=threads)
        np.testing.assert_array_equal(got.toarray(), ref.toarray())


def test_large_product_splits_across_threads_bit_identically(rng):
    # big enough for the work threshold to give every thread rows
    S = random_block(rng, (1024, 768), (16, 16), 0.3, np.float32)
    X = rng.standard_normal((768, 96)).astype(np.float32)
    ref = spmm(S, X, n_threads=1)
    for t in (2, 3, 4, 7):
        np.testing.assert_array_equal(spmm(S, X, n_threads=t), ref)
    N = random_nm(rng, (1024, 768), 2, 4, np.float32)
    ref = spmm(N, X, n_threads=1)
    for t in (2, 3, 7):
        np.testing.assert_array_equal(spmm(N, X, n_threads=t), ref)


@pytest.mark.parametrize("nm", [(1, 2), (1, 4), (2, 4), (4, 8), (2, 8), (3, 8)])
@pytest.mark.parametrize("groups", [1, 3, 5, 34, 131])
def test_nm_products_around_group_runs_and_chunks(nm, groups, rng):
    # float32 tiles take N of 1, 2 or 4 four kept values at a time and K in
    # chunks of groups: group counts below, around and past both, rows that
    # leave one-row tiles, batches wide enough for the panel kernel; a
    # column's result does not depend on the other columns
    n, m = nm
    for dtype in (np.float32, np.float64):
        S = random_nm(rng, (37, groups * m), n, m, dtype)
        Xb = rng.standard_normal((40, groups * m)).astype(dtype)
        Y = Xb @ S.T
        assert_product_close(Y.T, S.toarray(), Xb.T, dtype)
        np.testing.assert_array_equal((Xb[:17] @ S.T), Y[:17])
        np.testing.assert_array_equal(spmm(S, np.ascontiguousarray(Xb.T[:, 9:40])), Y.T[:, 9:40])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_block_rows_walked_in_chunks(dtype, rng):
    # rows long enough (33000 columns) that a two-vector panel of X outgrows
    # half of any L2 up to 4 MiB: batch-major and epilogue outputs then walk
    # each block row in chunks with wide panels; odd row counts leave one-row
    # tiles that take their rows whole. Every layout gives the same bits.
    m, n, B = 37, 33000, 40
    X = rng.standard_normal((n, B)).astype(dtype)
    bias = rng.standard_normal(m).astype(dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for bs in [(16, 16), (4, 4), (2, 8), (8, 1)]:
        S = random_block(rng, (m, n), bs, 0.3, dtype)
        D = S.toarray().astype(np.float64)
        plain = spmm(S, X)  # column-major output: no staging, no chunks
        ref = D @ X.astype(np.float64)
        scale = np.abs(D) @ np.abs(X).astype(np.float64) + 1
        assert np.all(np.abs(plain - ref) <= tol * scale), bs
        for t in (1, 2):
            out = np.full((B, m), np.nan, dtype)
            spmm(S, np.asfortranarray(X), out=out.T, n_threads=t)
            np.testing.assert_array_equal(out.T, plain, err_msg=repr(bs))
            act = spmm(S, X, bias=bias, activation="relu", n_threads=t)
            np.testing.assert_array_equal(act, np.maximum(plain + bias[:, None], 0),
                                          err_msg=repr(bs))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B", [1, 2, 3, 6, 8])
def test_few_columns_every_shape_and_layout(dtype, B, rng):
    # the vector kernels that read the weights once for a few columns, and
    # the shapes that walk each column on its own: padded n, C/F/strided X,
    # batch-major out, bias and activation, threads
    m, n = 96, 203
    mats = [random_block(rng, (m, n), bs, 0.4, dtype) for bs in BLOCK_SHAPES + [(8, 2), (16, 4)]]
    mats += [random_nm(rng, (m, n), a, b, dtype) for a, b in ((2, 4), (1, 4), (4, 8), (3, 7))]
    X = rng.standard_normal((n, B)).astype(dtype)
    strided = np.zeros((n, 3 * B), dtype)[:, ::3]
    strided[...] = X
    bias = rng.standard_normal(m).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for S in mats:
        D = S.toarray().astype(np.float64)
        ref = D @ X.astype(np.float64) + bias[:, None]
        first = spmm(S, X, bias=bias, activation="relu")
        np.testing.assert_allclose(first, np.maximum(ref, 0), rtol=tol, atol=tol,
                                   err_msg=repr(S))
        for layout in (np.asfortranarray(X), strided):
            for t in (1, 2):
                out = np.empty((B, m), dtype).T
                spmm(S, layout, out=out, bias=bias, activation="relu", n_threads=t)
                np.testing.assert_array_equal(out, first, err_msg=repr(S))


# ---- edge cases -------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS[:3] + KINDS[12:14] + KINDS[-1:], ids=KIND_IDS[:3] + KIND_IDS[12:14] + KIND_IDS[-1:])
@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (5, 0), (1, 1), (1, 9), (9, 1)])
def test_degenerate_shapes(kind, shape, rng):
    S = make(kind, rng, shape, np.float64)
    for B in (0, 1, 3):
        X = rng.standard_normal((shape[1], B))
        Y = spmm(S, X)
        assert Y.shape == (shape[0], B)
        np.testing.assert_allclose(Y, S.toarray() @ X, rtol=1e-13, atol=1e-300)
    y = spmm(S, np.ones(shape[1]))
    assert y.shape == (shape[0],)


def test_all_zero_matrices(rng):
    Z = np.zeros((30, 20))
    X = rng.standard_normal((20, 5))
    for S in (BlockSparseMatrix.from_dense(Z, (4, 4)), NMSparseMatrix.from_dense(Z, 2, 4),
              sp.csr_array(Z), block_prune(Z, (2, 2), 0.5)):
        Y = spmm(S, X, out=np.full((30, 5), np.nan))
        np.testing.assert_array_equal(Y, 0)
    S = BlockSparseMatrix.from_dense(Z, (4, 4))
    assert S.nnzb == 0 and S.nnz == 0
    D = sddmm(rng.standard_normal((30, 5)), X, S)
    assert D.nnzb == 0


def test_nan_and_inf_in_x_reach_the_rows_that_store_values(rng):
    W = np.zeros((6, 8))
    W[0, 2] = 1.0
    W[3, 5] = 2.0
    W[4, 2] = 0.0  # inside a stored block below
    X = np.ones((8, 3))
    X[2, 1] = np.nan
    X[5, 0] = np.inf
    S = BlockSparseMatrix.from_dense(W, (1, 1))
    Y = spmm(S, X)
    assert np.isnan(Y[0, 1]) and np.isinf(Y[3, 0])
    assert np.isfinite(np.delete(Y, [0, 3], axis=0)).all()
    # explicit zeros stored inside blocks meet the NaN and inf: 0 * NaN and
    # 0 * inf are NaN, as in BLAS; scipy on the stored entries agrees
    Sb = BlockSparseMatrix.from_dense(W, (2, 4))
    Yb = spmm(Sb, X)
    with np.errstate(invalid="ignore"):
        ref = Sb.to_scipy("csr") @ X
    assert np.isnan(Yb[1, 1]) and np.isnan(Yb[2, 0])
    np.testing.assert_array_equal(np.isnan(Yb), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(Yb), np.isinf(ref))
    N = nm_prune(W, 1, 4)
    with np.errstate(invalid="ignore"):
        ref = N.to_scipy() @ X
    np.testing.assert_array_equal(np.isnan(spmm(N, X)), np.isnan(ref))


def test_noncontiguous_and_negative_strides(rng):
    S = random_nm(rng, (40, 64), 2, 8, np.float64)
    X = rng.standard_normal((64, 30))
    for Xv in (X[::-1], X[:, ::-2], X[::2][:32].repeat(2, axis=0), np.broadcast_to(X[0], (64, 30))):
        assert_product_close(spmm(S, Xv), S.toarray(), Xv, np.float64)


# ---- real matrices ----------------------------------------------------------

def test_shipped_dnn_layer(rng):
    A = sp.csr_array(datasets.load_matrix("n1024-l1"))
    X = rng.standard_normal((A.shape[1], 64))
    np.testing.assert_allclose(spmm(A, X), A @ X, rtol=1e-12, atol=1e-12)
    S = BlockSparseMatrix.from_scipy(A, (4, 1))
    np.testing.assert_allclose(S @ X, A @ X, rtol=1e-12, atol=1e-12)
    N = nm_prune(A.toarray(), 1, 8)
    np.testing.assert_allclose(N @ X, N.toarray() @ X, rtol=1e-12, atol=1e-12)


@requires_shared
@pytest.mark.parametrize("name", SHARED_MATRICES)
def test_shared_matrices(name, rng):
    A = datasets.read_matrix_market(SHARED / f"{name}.mtx")
    A = sp.csr_array(A.real if np.iscomplexobj(A.data) else A)
    X = rng.standard_normal((A.shape[1], 5))
    ref = A @ X
    scale = abs(A) @ np.abs(X)
    assert np.all(np.abs(spmm(A, X) - ref) <= 1e-13 * scale + 1e-300)
    G = rng.standard_normal((A.shape[0], 5))
    assert np.all(np.abs(spmm(A.T, G) - A.T @ G) <= 1e-13 * (abs(A.T) @ np.abs(G)) + 1e-300)
    if A.shape[0] * A.shape[1] <= 4e7:
        S = BlockSparseMatrix.from_scipy(A, (4, 4))
        assert np.all(np.abs(S @ X - ref) <= 1e-13 * scale + 1e-300)
        assert np.all(np.abs(S.T @ G - A.T @ G) <= 1e-13 * (abs(A.T) @ np.abs(G)) + 1e-300)
        D = sddmm(G, X, A)
        Ac = A.copy()
        Ac.sum_duplicates()
        np.testing.assert_allclose(D.toarray()[Ac.nonzero()], (G @ X.T)[Ac.nonzero()],
                                   rtol=1e-12, atol=1e-12)


# ---- sddmm ------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sddmm_against_dense(kind, dtype, rng):
    m, n, B = 45, 70, 21
    S = make(kind, rng, (m, n), dtype)
    mask = S.mask() if not sp.issparse(S) else (S.toarray() != 0)
    G = rng.standard_normal((m, B)).astype(dtype)
    X = rng.standard_normal((n, B)).astype(dtype)
    ref = (G.astype(np.float64) @ X.T.astype(np.float64)) * mask
    scale = np.abs(G.astype(np.float64)) @ np.abs(X.T.astype(np.float64))
    for Gl, Xl in zip(layouts(G).values(), layouts(X).values()):
        D = sddmm(Gl, Xl, S)
        assert type(D) is (type(S) if not sp.issparse(S) else sp.csr_array)
        assert D.dtype == dtype
        err = np.abs(D.toarray() - ref)
        assert np.all(err <= RTOL[dtype] * 8 * np.sqrt(B) * scale + 1e-30)
        if isinstance(S, BlockSparseMatrix):
            assert D.indices is S.indices and D.block_shape == S.block_shape
        if isinstance(S, NMSparseMatrix):
            assert D.indices is S.indices and D.axis == S.axis
    # the layer orientation: dW = dY.T @ Xb with batch-major dY, Xb
    D = sddmm(np.asfortranarray(G.T).T, np.asfortranarray(X.T).T, S)
    assert np.all(np.abs(D.toarray() - ref) <= RTOL[dtype] * 8 * np.sqrt(B) * scale + 1e-30)


def test_sddmm_vectors_and_unsorted_pattern(rng):
    P = sp.csr_array(np.array([[0, 1, 1], [1, 0, 0]], dtype=float))
    P = sp.csr_array((P.data, P.indices[[1, 0, 2]], P.indptr), shape=P.shape)  # unsorted
    g, x = np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])
    D = sddmm(g, x, P)
    assert D.has_canonical_format
    np.testing.assert_array_equal(D.toarray(), np.outer(g, x) * np.array([[0, 1, 1], [1, 0, 0]]))


# ---- formats ----------------------------------------------------------------

@pytest.mark.parametrize("bs", BLOCK_SHAPES)
def test_block_constructors_round_trip(bs, rng):
    r, c = bs
    W = rng.standard_normal((4 * r, 3 * c))
    W[rng.random(W.shape) < 0.6] = 0
    S = BlockSparseMatrix.from_dense(W, bs)
    np.testing.assert_array_equal(S.toarray(), W)
    B = S.to_scipy("bsr")
    assert isinstance(B, sp.bsr_array) and B.blocksize == bs
    np.testing.assert_array_equal(B.toarray(), W)
    S2 = BlockSparseMatrix.from_scipy(B)
    np.testing.assert_array_equal(S2.blocks, S.blocks)
    S3 = BlockSparseMatrix.from_scipy(sp.csr_array(W), bs)
    np.testing.assert_array_equal(S3.toarray(), W)
    assert S3.nnzb <= S.nnzb
    S4 = BlockSparseMatrix((S.blocks, S.indices, S.indptr), shape=S.shape)
    np.testing.assert_array_equal(S4.toarray(), W)
    C = S.to_scipy("csr")
    assert C.has_canonical_format
    np.testing.assert_array_equal(C.toarray(), W)
    np.testing.assert_array_equal(S.T.toarray(), W.T)
    assert S.T.T is S
    assert S.T.block_shape == (c, r)
    np.testing.assert_array_equal(S.mask(), np.repeat(np.repeat(
        (W.reshape(4, r, 3, c) != 0).any(axis=(1, 3)), r, 0), c, 1))


def test_block_partial_shapes_and_nnz(rng):
    W = rng.standard_normal((10, 13))
    S = BlockSparseMatrix.from_dense(W, (4, 8))
    assert S.shape == (10, 13)
    assert S.nnz == 130  # every block is stored; padding is not counted
    np.testing.assert_array_equal(S.toarray(), W)
    np.testing.assert_array_equal(S.T.toarray(), W.T)
    assert S.mask().all() and S.mask().shape == W.shape
    with pytest.raises(ValueError, match="multiple of the 4x8 blocks"):
        S.to_scipy("bsr")
    np.testing.assert_array_equal(S.to_scipy("csr").toarray(), W)
    blocks = S.blocks.copy()
    blocks[-1, -1, -1] = 1.0  # a value below row 9 / right of column 12
    with pytest.raises(ValueError, match="outside the shape"):
        BlockSparseMatrix((blocks, S.indices, S.indptr), shape=(10, 13))


def test_block_parts_are_sorted_and_copied():
    blocks = np.arange(3 * 2 * 2, dtype=np.float64).reshape(3, 2, 2)
    indices = np.array([2, 0, 1])
    indptr = np.array([0, 2, 3])
    S = BlockSparseMatrix((blocks, indices, indptr), shape=(4, 6))
    np.testing.assert_array_equal(S.indices, [0, 2, 1])
    ref = np.zeros((4, 6))
    ref[0:2, 4:6] = blocks[0]
    ref[0:2, 0:2] = blocks[1]
    ref[2:4, 2:4] = blocks[2]
    np.testing.assert_array_equal(S.toarray(), ref)
    np.testing.assert_array_equal(indices, [2, 0, 1])  # input untouched
    assert not S.blocks.flags.writeable
    with pytest.raises(ValueError, match="stored twice"):
        BlockSparseMatrix((blocks, np.array([1, 1, 0]), indptr), shape=(4, 6))


@pytest.mark.parametrize("nm", NM_PATTERNS)
@pytest.mark.parametrize("axis", [1, 0])
def test_nm_constructors_round_trip(nm, axis, rng):
    n, m = nm
    W = nm_prune(rng.standard_normal((9, 3 * m + 1)), n, m).toarray()
    if axis == 0:
        W = W.T.copy()
    S = NMSparseMatrix.from_dense(W, n, m, axis=axis)
    np.testing.assert_array_equal(S.toarray(), W)
    assert S.values.shape[1] % n == 0 and S.indices.dtype == np.uint8
    S2 = NMSparseMatrix((S.values, S.indices), shape=S.shape, n=n, m=m, axis=axis)
    np.testing.assert_array_equal(S2.toarray(), W)
    S3 = NMSparseMatrix.from_mask(W, S.mask(), n, m, axis=axis)
    np.testing.assert_array_equal(S3.toarray(), W)
    np.testing.assert_array_equal(S.T.toarray(), W.T)
    assert S.T.T is S and S.T.axis == 1 - axis and S.T.values is S.values
    np.testing.assert_array_equal(S.to_scipy().toarray(), W)
    assert S.to_scipy().has_canonical_format
    mask = S.mask()
    core = mask if axis == 1 else mask.T
    K = core.shape[1]
    for g in range(-(-K // m)):
        counts = core[:, g * m:(g + 1) * m].sum(axis=1)
        assert np.all(counts <= n)
    assert S.nnz == mask.sum()


def test_nm_not_nm_names_the_group():
    W = np.zeros((3, 8))
    W[2, 4:7] = 1.0
    with pytest.raises(ValueError, match=r"not 2:4 along axis 1: row 2, columns 4\.\.7 hold 3"):
        NMSparseMatrix.from_dense(W, 2, 4)
    with pytest.raises(ValueError, match=r"column 2, rows 4\.\.7 hold 3"):
        NMSparseMatrix.from_dense(W.T, 2, 4, axis=0)
    mask = W != 0
    with pytest.raises(ValueError, match="True entries"):
        NMSparseMatrix.from_mask(W, mask, 2, 4)


def test_nm_from_mask_keeps_masked_zeros():
    W = np.array([[0.0, 5.0, 0.0, 7.0, 1.0, 0.0, 0.0, 0.0]])
    mask = np.array([[True, True, False, False, False, False, True, False]])
    S = NMSparseMatrix.from_mask(W, mask, 2, 4)
    np.testing.assert_array_equal(S.mask(), np.array([[1, 1, 0, 0, 1, 0, 1, 0]], bool) | mask)
    np.testing.assert_array_equal(S.toarray(), W * mask)


def test_nm_parts_validation():
    vals = np.ones((2, 4))
    idx = np.array([[0, 1, 2, 3], [1, 0, 0, 1]], dtype=np.uint8)
    with pytest.raises(ValueError, match="strictly increasing"):
        NMSparseMatrix((vals, idx), n=2, m=4)
    with pytest.raises(ValueError, match="0..3"):
        NMSparseMatrix((vals, np.full((2, 4), 4)), n=2, m=4)
    with pytest.raises(ValueError, match="past column 6"):
        NMSparseMatrix((vals, np.array([[0, 1, 2, 3]] * 2)), shape=(2, 7), n=2, m=4)
    with pytest.raises(ValueError, match="needs"):
        NMSparseMatrix((vals, np.array([[0, 1, 0, 1]] * 2)), shape=(2, 12), n=2, m=4)


def test_linear_operator_and_operators(rng):
    from scipy.sparse.linalg import aslinearoperator, cg

    S = random_block(rng, (30, 30), (2, 2), 0.3, np.float64)
    Sd = S.toarray()
    A = S.aslinearoperator()
    x = rng.standard_normal(30)
    np.testing.assert_allclose(A @ x, Sd @ x, rtol=1e-12)
    np.testing.assert_allclose(A.T @ x, Sd.T @ x, rtol=1e-12)
    L = aslinearoperator(S)
    np.testing.assert_allclose(L.matmat(np.eye(30)), Sd, rtol=1e-12)
    SPD = BlockSparseMatrix.from_dense(Sd @ Sd.T + 30 * np.eye(30), (2, 2))
    sol, info = cg(SPD.aslinearoperator(), x, rtol=1e-10)
    assert info == 0
    np.testing.assert_allclose(SPD.toarray() @ sol, x, rtol=1e-8, atol=1e-8)
    C = sp.csr_array(rng.standard_normal((30, 4)))
    np.testing.assert_allclose((S @ C).toarray(), Sd @ C.toarray(), rtol=1e-12)
    np.testing.assert_allclose((C.T @ S).toarray(), C.toarray().T @ Sd, rtol=1e-12)
    assert "BlockSparseMatrix 30x30" in repr(S)
    with pytest.raises(ValueError, match="scalar"):
        S @ 2.0


def test_astype_and_copy(rng):
    S = random_nm(rng, (8, 16), 2, 4, np.float64)
    S32 = S.astype(np.float32)
    assert S32.dtype == np.float32 and S32.indices is S.indices
    assert S.astype(np.float64) is S
    with pytest.raises(TypeError, match="complex"):
        S.astype(np.complex128)
    B = random_block(rng, (8, 16), (4, 4), 0.5, np.float32)
    assert B.copy().blocks is not B.blocks


# ---- pruning ----------------------------------------------------------------

def nm_prune_reference(W, score, n, m):
    R, K = W.shape
    G = -(-K // m)
    out = np.zeros_like(W)
    for i in range(R):
        for g in range(G):
            cols = np.arange(g * m, min(K, g * m + m))
            s = score[i, cols]
            order = sorted(range(len(cols)), key=lambda j: (-s[j], j))[:n]
            out[i, cols[order]] = W[i, cols[order]]
    return out


@pytest.mark.parametrize("nm", [(2, 4), (1, 4), (2, 8), (3, 5), (7, 16)])
def test_nm_prune_against_reference(nm, rng):
    n, m = nm
    W = rng.standard_normal((13, 37))
    W[0, :8] = 1.0  # ties go to the lower offset
    W[1, :8] = -1.0
    S = nm_prune(W, n, m)
    np.testing.assert_array_equal(S.toarray(), nm_prune_reference(W, np.abs(W), n, m))
    score = rng.random(W.shape).astype(np.float32)
    S = nm_prune(W, n, m, score=score)
    np.testing.assert_array_equal(S.toarray(), nm_prune_reference(W, score.astype(np.float64), n, m))
    S = nm_prune(W.T, n, m, axis=0)
    np.testing.assert_array_equal(S.toarray(), nm_prune_reference(W, np.abs(W), n, m).T)


def test_nm_prune_keeps_explicit_zeros_out_of_sight(rng):
    W = np.zeros((2, 8))
    W[0, 1] = 3.0
    S = nm_prune(W, 2, 4)
    np.testing.assert_array_equal(S.toarray(), W)
    assert S.nnz == 8  # two slots in every group, zeros included


@pytest.mark.parametrize("bs", [(1, 1), (4, 1), (8, 8), (16, 16), (2, 32)])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.37, 1.0])
def test_block_prune_against_reference(bs, density, rng):
    r, c = bs
    W = rng.standard_normal((3 * r + 1, 5 * c - 1)).astype(np.float32)
    S = block_prune(W, bs, density)
    m, n = W.shape
    mb, nb = -(-m // r), -(-n // c)
    P = np.zeros((mb * r, nb * c))
    P[:m, :n] = W
    norms = (P.reshape(mb, r, nb, c) ** 2).sum(axis=(1, 3)).ravel()
    k = round(density * norms.size)
    keep = np.zeros(norms.size, bool)
    keep[np.argsort(-norms, kind="stable")[:k]] = True
    assert S.nnzb == k
    ref = np.where(np.repeat(np.repeat(keep.reshape(mb, nb), r, 0), c, 1)[:m, :n], W, 0)
    np.testing.assert_array_equal(S.toarray(), ref)


def test_block_prune_ties_go_to_the_earlier_block():
    W = np.ones((4, 4))
    S = block_prune(W, (2, 2), 0.5)
    np.testing.assert_array_equal(S.mask(), np.array([[1, 1, 1, 1]] * 2 + [[0] * 4] * 2, bool))


# ---- bad input --------------------------------------------------------------

def test_errors_are_raised_before_any_work(rng):
    S = random_block(rng, (20, 24), (4, 4), 0.5, np.float32)
    X = rng.standard_normal((24, 5)).astype(np.float32)
    with pytest.raises(ValueError, match=r"X.shape\[0\] must equal S.shape\[1\] = 24"):
        spmm(S, X[:20])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        spmm(S, X[None])
    with pytest.raises(TypeError, match="complex"):
        spmm(S, X.astype(np.complex64))
    with pytest.raises(TypeError, match="object"):
        spmm(S, X.astype(object))
    with pytest.raises(TypeError, match="BlockSparseMatrix or NMSparseMatrix"):
        spmm(S.toarray(), X)
    with pytest.raises(TypeError, match="dense"):
        spmm(S, sp.csr_array(X))
    with pytest.raises(ValueError, match=r"out has shape \(20, 4\)"):
        spmm(S, X, out=np.empty((20, 4), np.float32))
    with pytest.raises(TypeError, match="out has dtype float64"):
        spmm(S, X, out=np.empty((20, 5)))
    with pytest.raises(ValueError, match="C- or F-contiguous"):
        spmm(S, X, out=np.empty((20, 10), np.float32)[:, ::2])
    ro = np.empty((20, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        spmm(S, X, out=ro)
    Xs = np.zeros((24, 24), np.float32)
    with pytest.raises(ValueError, match="overlaps X"):
        spmm(random_block(rng, (24, 24), (4, 4), 0.5, np.float32), Xs, out=Xs)
    with pytest.raises(TypeError, match="n_threads"):
        spmm(S, X, n_threads=1.5)
    with pytest.raises(ValueError, match="n_threads=0"):
        spmm(S, X, n_threads=0)
    with pytest.raises(ValueError, match="G must have 20 rows"):
        sddmm(X, X, S)
    with pytest.raises(ValueError, match="batch"):
        sddmm(np.ones((20, 3)), np.ones((24, 4)), S)


def test_pattern_and_block_shape_errors(rng):
    W = rng.standard_normal((8, 8))
    for n, m in [(0, 4), (4, 4), (5, 4), (1, 17), (1, 1)]:
        with pytest.raises(ValueError):
            nm_prune(W, n, m)
    with pytest.raises(TypeError):
        nm_prune(W, 2.0, 4)
    with pytest.raises(ValueError, match="axis"):
        nm_prune(W, 2, 4, axis=2)
    for bs in [(3, 1), (64, 1), (0, 2)]:
        with pytest.raises(ValueError, match="one of"):
            block_prune(W, bs, 0.5)
    with pytest.raises(TypeError, match="pair"):
        block_prune(W, 4, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        block_prune(W, (2, 2), 1.5)
    Wn = W.copy()
    Wn[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        nm_prune(Wn, 2, 4)
    with pytest.raises(ValueError, match="NaN"):
        block_prune(Wn, (2, 2), 0.5)
    with pytest.raises(ValueError, match="score"):
        nm_prune(W, 2, 4, score=np.ones((8, 7)))
    with pytest.raises(TypeError, match="complex"):
        BlockSparseMatrix.from_dense(W.astype(complex), (2, 2))
    with pytest.raises(ValueError, match="needs 4"):
        BlockSparseMatrix((np.ones((1, 2, 2)), [0], [0, 1]), shape=(5, 4))
    with pytest.raises(ValueError, match="out of range"):
        BlockSparseMatrix((np.ones((1, 2, 2)), [2], [0, 1]), shape=(2, 4))
    with pytest.raises(ValueError, match="non-decreasing"):
        BlockSparseMatrix((np.ones((1, 2, 2)), [0], [0, 2, 1]), shape=(4, 4))


def test_inputs_are_not_modified(rng):
    W = rng.standard_normal((24, 32)).astype(np.float32)
    W0 = W.copy()
    S = block_prune(W, (4, 4), 0.5)
    N = nm_prune(W, 2, 4, score=np.abs(W))
    C = sp.csr_array(W)
    C_data, C_ind, C_ptr = C.data.copy(), C.indices.copy(), C.indptr.copy()
    X = np.asfortranarray(rng.standard_normal((32, 7)).astype(np.float32))
    X0 = X.copy()
    G = rng.standard_normal((24, 7))
    G0 = G.copy()
    for A in (S, N, C, N.T.T):
        spmm(A, X)
        spmm(A.T, G)
        sddmm(G, X, A)
    X.T @ S.T
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(X, X0)
    assert X.flags.f_contiguous
    np.testing.assert_array_equal(G, G0)
    np.testing.assert_array_equal(C.data, C_data)
    np.testing.assert_array_equal(C.indices, C_ind)
    np.testing.assert_array_equal(C.indptr, C_ptr)
    # a failing call leaves the output and inputs alone
    out = np.full((24, 7), 3.0, np.float32)
    with pytest.raises(ValueError):
        spmm(S, X[:30], out=out)
    assert (out == 3.0).all()


# ---- command line ------------------------------------------------------------

def test_bench_spmm_suite_and_demo(tmp_path):
    import json
    import subprocess
    import sys

    path = tmp_path / "spmm.json"
    out = subprocess.run(
        [sys.executable, "-P", "-m", "sparsecore", "bench", "spmm", "--cases", "real",
         "--rounds", "1", "--threads", "1", "--json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "n1024-l1" in out and "of ideal" in out
    rec = json.loads(path.read_text())
    assert rec["suite"] == "spmm"
    assert all(r["speedup"] > 0 for r in rec["results"])
    out = subprocess.run([sys.executable, "-P", "-m", "sparsecore", "demo"],
                         capture_output=True, text=True, check=True).stdout
    assert "SpMM" in out and "1:8 pruned" in out


# ---- Ctrl-C -----------------------------------------------------------------

INTERRUPT_CHILD = r"""
import time
import numpy as np
import scipy.sparse as sp
from sparsecore.ops import spmm

# a product of a few seconds: 8.4 M stored values times 4096 columns
rng = np.random.default_rng(0)
A = sp.random_array((4096, 4096), density=0.5, format="csr", dtype=np.float32, rng=rng)
X = np.ones((4096, 4096), np.float32)
print("ready", flush=True)
t0 = time.perf_counter()
try:
    spmm(A, X, n_threads=1)
    print("finished", time.perf_counter() - t0, flush=True)
except KeyboardInterrupt:
    print("interrupted", time.perf_counter() - t0, flush=True)
print("usable", spmm(A[:10], X[:, :3]).shape, flush=True)
"""


@posix_signals
def test_ctrl_c_stops_a_long_spmm():
    assert "usable (10, 3)" in interrupt_child(INTERRUPT_CHILD, timeout=120)


# ---- result kinds, as scipy gives them ------------------------------------

@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_result_kind_follows_scipy(rng):
    """A sparse matrix times an np.matrix gives an np.matrix; every other
    combination an ndarray; as scipy's ``S @ X``."""
    A = sp.random_array((12, 9), density=0.3, rng=rng, format="csr")
    X = rng.standard_normal((9, 4))
    ref = A @ X
    cases = [(sp.csr_matrix(A), np.asmatrix(X), np.matrix),
             (sp.csr_matrix(A), X, np.ndarray),
             (sp.csc_matrix(A), np.asmatrix(X), np.matrix),
             (A, np.asmatrix(X), np.ndarray),
             (A, X, np.ndarray),
             (sp.csr_matrix(A), X[:, 0], np.ndarray)]
    for S, XX, kind in cases:
        assert type(S @ XX) is kind  # scipy's own answer
        Y = spmm(S, XX)
        assert type(Y) is kind, (type(S), type(XX))
        expected = ref if np.ndim(XX) == 2 else ref[:, 0]
        np.testing.assert_allclose(np.asarray(Y), expected, rtol=1e-13, atol=1e-13)
    # given out=, the result is out itself
    out = np.empty((12, 4))
    assert spmm(sp.csr_matrix(A), np.asmatrix(X), out=out) is out


def test_sddmm_pattern_matrix_gives_a_matrix(rng):
    P = sp.random_array((6, 5), density=0.4, rng=rng, format="csr")
    G, X = rng.standard_normal((6, 3)), rng.standard_normal((5, 3))
    ref = sddmm(G, X, P)
    assert type(ref) is sp.csr_array
    C = sddmm(G, X, sp.csr_matrix(P))
    assert type(C) is sp.csr_matrix
    np.testing.assert_array_equal(C.toarray(), ref.toarray())


def _thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read()
    except OSError:
        return ""


needs_thp = pytest.mark.skipif(
    "[madvise]" not in _thp_mode() or os.environ.get("SPARSECORE_HUGE_PAGES") == "0",
    reason="huge pages are advised only in Linux's THP 'madvise' mode "
           "(and not with SPARSECORE_HUGE_PAGES=0)")


@needs_thp
@pytest.mark.parametrize("kind", ["nm", "block"])
@pytest.mark.parametrize("batch_major", [False, True])
def test_large_fresh_outputs_are_advised_huge_pages(kind, batch_major):
    # a 16 MiB output in untouched anonymous memory (as torch.empty gives):
    # the product asks for huge pages on it before writing, so that writing
    # it does not fault once per 4 KiB page
    rng = np.random.default_rng(0)
    m, n, B = 1024, 64, 4096
    W = rng.standard_normal((m, n)).astype(np.float32)
    S = nm_prune(W, 2, 4) if kind == "nm" else block_prune(W, (16, 16), 0.5)
    X = rng.standard_normal((n, B)).astype(np.float32)
    buf = mmap.mmap(-1, m * B * 4)
    flat = np.frombuffer(buf, dtype=np.float32)
    out = flat.reshape(B, m).T if batch_major else flat.reshape(m, B)
    middle = flat.ctypes.data + flat.nbytes // 2
    assert "hg" not in vm_flags(middle)
    spmm(S, X, out=out)
    assert "hg" in vm_flags(middle)
    assert_product_close(out, S.toarray(), X, np.float32)
    del out, flat
    buf.close()


@needs_thp
def test_small_outputs_are_left_alone():
    # below two huge pages nothing is advised
    rng = np.random.default_rng(1)
    S = nm_prune(rng.standard_normal((256, 64)).astype(np.float32), 2, 4)
    X = rng.standard_normal((64, 2048)).astype(np.float32)
    buf = mmap.mmap(-1, 256 * 2048 * 4)
    flat = np.frombuffer(buf, dtype=np.float32)
    out = flat.reshape(256, 2048)
    spmm(S, X, out=out)
    assert "hg" not in vm_flags(flat.ctypes.data + flat.nbytes // 2)
    assert_product_close(out, S.toarray(), X, np.float32)
    del out, flat
    buf.close()


@needs_thp
def test_huge_page_advice_can_be_turned_off(tmp_path):
    import subprocess
    import sys

    code = (
        "import mmap, numpy as np\n"
        "from sparsecore.ops import nm_prune, spmm\n"
        "from helpers import vm_flags\n"
        "rng = np.random.default_rng(0)\n"
        "S = nm_prune(rng.standard_normal((1024, 64)).astype(np.float32), 2, 4)\n"
        "X = rng.standard_normal((64, 4096)).astype(np.float32)\n"
        "buf = mmap.mmap(-1, 1024 * 4096 * 4)\n"
        "flat = np.frombuffer(buf, dtype=np.float32)\n"
        "spmm(S, X, out=flat.reshape(1024, 4096))\n"
        "print('hg' in vm_flags(flat.ctypes.data + flat.nbytes // 2))\n"
    )
    support = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_support")
    env = dict(os.environ, SPARSECORE_HUGE_PAGES="0", PYTHONPATH=support)
    # run outside the checkout, which must not shadow the installed package
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
