"""MonarchMatrix products and monarch_project.

References: the paper's formula M = P2 L P1 R built from explicit permutation
matrices and scipy.linalg.block_diag (independent of the kernel's index
arithmetic), numpy dense products, numpy's SVD, and scipy.optimize.

Tolerances: products are compared with ``rtol=RTOL[dtype]`` relative to the
largest entry of |M| @ |X| (the scale of the rounding of any summation
order): 1e-5 for single precision, 1e-12 for double.
"""
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, aslinearoperator, svds

from sparsecore import datasets
from sparsecore.formats import MonarchMatrix, MonarchProduct
from sparsecore.formats._monarch import monarch_layout
from sparsecore.ops import monarch_project
from helpers import interrupt_child, posix_signals

RTOL = {np.float32: 1e-5, np.float64: 1e-12, np.complex64: 1e-5, np.complex128: 1e-12}
REAL = [np.float32, np.float64]
ALL = REAL + [np.complex64, np.complex128]

# (l, s, r), (k, q, p) with k*q == l*r: square sqrt(n), rank-1 rectangular,
# the paper's b-block class (rank-2 slices), uneven slice ranks, tall, 1x1
LAYOUTS = [
    ((4, 4, 4), (4, 4, 4)),
    ((8, 3, 4), (4, 8, 5)),
    ((4, 8, 8), (4, 8, 8)),
    ((6, 5, 4), (8, 3, 2)),
    ((3, 7, 2), (2, 3, 5)),
    ((1, 1, 1), (1, 1, 1)),
    ((2, 9, 6), (3, 4, 1)),
]


def dense_reference(left, right):
    """P2 @ blockdiag(left) @ P1 @ blockdiag(right), permutations explicit."""
    k, q, p = right.shape
    l, s, r = left.shape
    mid = k * q
    R = scipy.linalg.block_diag(*right) if k else np.zeros((0, 0))
    L = scipy.linalg.block_diag(*left) if l else np.zeros((0, 0))
    P1 = np.zeros((mid, mid))
    for j in range(mid):  # z[j] feeds entry rh of block lm: j = rh*l + lm
        P1[(j % l) * r + j // l, j] = 1
    P2 = np.zeros((l * s, l * s))
    for lm in range(l):
        for sg in range(s):  # row sg of block lm is output row sg*l + lm
            P2[sg * l + lm, lm * s + sg] = 1
    return P2 @ L @ P1 @ R


def random_blocks(layout, dtype, rng):
    (l, s, r), (k, q, p) = layout

    def draw(shape):
        x = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            x = x + 1j * rng.standard_normal(shape)
        return x.astype(dtype)

    return draw((l, s, r)), draw((k, q, p))


def assert_product(got, M_dense, X, dtype, transposed=False):
    A = M_dense.T if transposed else M_dense
    ref = A @ X.astype(np.complex128 if np.iscomplexobj(X) or np.iscomplexobj(A) else np.float64)
    scale = (np.abs(A) @ np.abs(X.astype(np.complex128))).max(initial=0.0) or 1.0
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=RTOL[dtype] * scale)


# --------------------------------------------------------------- products
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ALL)
def test_toarray_matches_formula(layout, dtype, rng):
    left, right = random_blocks(layout, dtype, rng)
    M = MonarchMatrix(left, right)
    ref = dense_reference(left.astype(np.complex128), right.astype(np.complex128))
    np.testing.assert_allclose(M.toarray(), ref, rtol=0, atol=RTOL[dtype] * 10 * np.abs(ref).max())
    assert M.shape == ref.shape and M.dtype == dtype


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("batch", [1, 3, 8, 24, 37])
def test_matmul_all_orientations(layout, dtype, batch, rng):
    left, right = random_blocks(layout, dtype, rng)
    M = MonarchMatrix(left, right)
    D = dense_reference(left.astype(np.complex128), right.astype(np.complex128))
    m, n = M.shape
    X = rng.standard_normal((n, batch)).astype(dtype)
    assert_product(M @ X, D, X, dtype)
    assert_product(M.matmul(X, n_threads=1), D, X, dtype)
    G = rng.standard_normal((m, batch)).astype(dtype)
    assert_product(M.T @ G, D, G, dtype, transposed=True)
    # X @ M is (M.T @ X.T).T
    assert_product((G.T @ M).T, D, G, dtype, transposed=True)
    assert_product((X.T @ M.T).T, D, X, dtype)
    if np.dtype(dtype).kind == "c":
        np.testing.assert_allclose(M.H @ G, D.conj().T @ G, rtol=0,
                                   atol=RTOL[dtype] * 10 * np.abs(D).max() * np.abs(G).max() * m)


@pytest.mark.parametrize("dtype", ALL)
def test_vectors_and_layouts(dtype, rng):
    left, right = random_blocks(((8, 6, 4), (4, 8, 6)), dtype, rng)
    M = MonarchMatrix(left, right)
    D = dense_reference(left.astype(np.complex128), right.astype(np.complex128))
    m, n = M.shape
    x = rng.standard_normal(n).astype(dtype)
    assert_product(M @ x, D, x, dtype)
    assert (M @ x).shape == (m,)
    g = rng.standard_normal(m).astype(dtype)
    assert_product(g @ M, D, g, dtype, transposed=True)
    assert_product(M.T @ g, D, g, dtype, transposed=True)
    assert_product(M.rmatvec(g), D.conj(), g, dtype, transposed=True)
    # F-order, strided, negative strides, column vectors
    X = np.asfortranarray(rng.standard_normal((n, 19)).astype(dtype))
    assert_product(M @ X, D, X, dtype)
    Xs = rng.standard_normal((2 * n, 40)).astype(dtype)[::2, ::-2]
    assert_product(M @ Xs, D, Xs, dtype)
    xs = rng.standard_normal(3 * n).astype(dtype)[::-3]
    assert_product(M @ xs, D, xs, dtype)
    assert_product(M @ X[:, :1], D, X[:, :1], dtype)
    Gs = rng.standard_normal((30, 2 * m)).astype(dtype)[:, ::2]
    assert_product((Gs @ M).T, D, Gs.T, dtype, transposed=True)


def test_stacks_lists_sparse_and_promotion(rng):
    M = MonarchMatrix.random((12, 12), dtype=np.float32, random_state=1)
    D = dense_reference(M.left.astype(np.float64), M.right.astype(np.float64))
    X = rng.standard_normal((5, 12, 3))
    np.testing.assert_allclose(M @ X, np.matmul(D, X), rtol=1e-5, atol=1e-5)
    Xr = rng.standard_normal((4, 7, 12))
    np.testing.assert_allclose(Xr @ M, Xr @ D, rtol=1e-5, atol=1e-5)
    # float32 M with float64 X computes in float64, as numpy promotes
    x64 = rng.standard_normal(12)
    assert (M @ x64).dtype == np.float64
    np.testing.assert_allclose(M @ x64, D @ x64, rtol=1e-12, atol=1e-12)
    xi = np.arange(12, dtype=np.int64)
    assert (M @ xi).dtype == np.float64
    np.testing.assert_allclose(M @ xi, D @ xi, rtol=1e-12, atol=1e-10)
    assert (M @ np.ones(12, np.float32)).dtype == np.float32
    np.testing.assert_allclose(M @ list(range(12)), D @ np.arange(12), rtol=1e-10, atol=1e-9)
    S = sp.random(12, 4, density=0.5, random_state=0, format="csr")
    np.testing.assert_allclose(M @ S, D @ S.toarray(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(M @ (1j * x64), D @ (1j * x64), rtol=1e-12, atol=1e-12)


def test_inputs_not_modified(rng):
    left, right = random_blocks(((4, 4, 4), (4, 4, 4)), np.float64, rng)
    l0, r0 = left.copy(), right.copy()
    M = MonarchMatrix(left, right)
    left[0, 0, 0] = 99.0  # copy=True: the matrix keeps its own blocks
    assert M.left[0, 0, 0] == l0[0, 0, 0]
    X = rng.standard_normal((16, 5))
    X0 = X.copy()
    M @ X
    X.T @ M
    np.testing.assert_array_equal(X, X0)
    with pytest.raises(ValueError):
        M.left[0, 0, 0] = 1.0  # blocks are read-only
    np.testing.assert_array_equal(right, r0)


@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("batch", [1, 5, 24, 64, 100, 250])
def test_bit_identical_for_any_thread_count(dtype, batch, rng):
    M = MonarchMatrix.random((1024, 1024), dtype=dtype, random_state=2)
    X = rng.standard_normal((1024, batch)).astype(dtype)
    F = np.asfortranarray(X)
    ref = M.matmul(X, n_threads=1)
    ref_t = M.T.matmul(X, n_threads=1)
    for nt in (2, 3, 4):
        np.testing.assert_array_equal(M.matmul(X, n_threads=nt), ref)
        np.testing.assert_array_equal(M.matmul(F, n_threads=nt), ref)
        np.testing.assert_array_equal(M.T.matmul(X, n_threads=nt), ref_t)


@pytest.mark.parametrize("dtype", REAL)
def test_panel_widths_and_ragged_batches(dtype, rng):
    """Every panel width (vector multiples, ragged last panels, barrier and
    per-thread modes) gives the reference product, bit-identical across
    widths and thread counts: lanes never mix and sums run in one order."""
    from sparsecore._ext import _monarch

    left, right = random_blocks(((6, 7, 4), (8, 3, 5)), dtype, rng)
    D = dense_reference(left.astype(np.float64), right.astype(np.float64))
    for batch in (2, 5, 13, 30, 45):
        X = rng.standard_normal((40, batch)).astype(dtype)
        first = None
        for panel in (0, 3, 8, 16, 20):
            for nt in (1, 2, 3):
                Y = np.full((42, batch), np.nan, dtype=dtype)
                _monarch.matmul(right, left, X, Y, False, nt, None, None, panel)
                assert_product(Y, D, X, dtype)
                if first is None:
                    first = Y.copy()
                np.testing.assert_array_equal(Y, first)


def test_matrix_vector_paths_agree(rng):
    """The batch-1 kernel (transposed blocks, axpy form) and the batch-B
    kernel give the same products up to rounding; the dot-product form used
    without transposed blocks too."""
    from sparsecore._ext import _monarch

    M = MonarchMatrix.random((240, 240), (12, 20), dtype=np.float64, random_state=3)
    x = rng.standard_normal(240)
    y_dot = np.empty(240)
    _monarch.matmul(M.right, M.left, x, y_dot, False, 1)
    ref = M.toarray() @ x
    np.testing.assert_allclose(M @ x, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(y_dot, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(M @ np.stack([x, x], 1), np.stack([ref, ref], 1),
                               rtol=0, atol=1e-12 * np.abs(ref).max())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    l=st.integers(1, 6), s=st.integers(1, 7), k=st.integers(1, 6), p=st.integers(1, 7),
    mid_mult=st.integers(1, 3), batch=st.integers(0, 40), dtype=st.sampled_from(REAL),
    transpose=st.booleans(), seed=st.integers(0, 2**16),
)
def test_property_products(l, s, k, p, mid_mult, batch, dtype, transpose, seed):
    mid = int(np.lcm(l, k)) * mid_mult
    rng = np.random.default_rng(seed)
    left, right = random_blocks(((l, s, mid // l), (k, mid // k, p)), dtype, rng)
    M = MonarchMatrix(left, right)
    D = dense_reference(left.astype(np.float64), right.astype(np.float64))
    A = M.T if transpose else M
    X = rng.standard_normal((A.shape[1], batch)).astype(dtype)
    Y1 = A.matmul(X, n_threads=1)
    assert_product(Y1, D, X, dtype, transposed=transpose)
    np.testing.assert_array_equal(A.matmul(X, n_threads=3), Y1)


# ----------------------------------------------------- edge cases, errors
def test_edge_cases():
    one = MonarchMatrix([[[3.0]]], [[[2.0]]])
    assert one.shape == (1, 1) and one.n_params == 2
    np.testing.assert_array_equal(one @ np.array([5.0]), [30.0])
    np.testing.assert_array_equal(one.toarray(), [[6.0]])
    Z = MonarchMatrix(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)))
    np.testing.assert_array_equal(Z @ np.ones((16, 3)), np.zeros((16, 3)))
    M = MonarchMatrix.random((16, 16), random_state=0)
    assert (M @ np.ones((16, 0))).shape == (16, 0)
    assert (np.ones((0, 16)) @ M).shape == (0, 16)
    # 0 x n: zero rows per block of L
    E = MonarchMatrix(np.zeros((2, 0, 3)), np.ones((3, 2, 4)))
    assert E.shape == (0, 12)
    assert (E @ np.ones((12, 2))).shape == (0, 2)
    assert (E.T @ np.ones((0, 2))).shape == (12, 2)
    np.testing.assert_array_equal(E.T @ np.ones((0, 2)), np.zeros((12, 2)))
    assert E.toarray().shape == (0, 12)
    # integer blocks become float64
    assert MonarchMatrix(np.ones((2, 2, 2), int), np.ones((2, 2, 2), int)).dtype == np.float64


def test_errors():
    M = MonarchMatrix.random((16, 16), random_state=0)
    with pytest.raises(ValueError, match=r"dimension mismatch.*\(16, 16\).*needs 16 rows.*\(15, 2\)"):
        M @ np.ones((15, 2))
    with pytest.raises(ValueError, match="needs 16 columns"):
        np.ones((2, 15)) @ M
    with pytest.raises(ValueError, match="scalar"):
        M @ 2.0
    with pytest.raises(TypeError, match="dtype"):
        M @ np.array(["a"] * 16)
    with pytest.raises(ValueError, match="3-D"):
        MonarchMatrix(np.ones((4, 4)), np.ones((4, 4, 4)))
    with pytest.raises(ValueError, match="do not chain"):
        MonarchMatrix(np.ones((4, 4, 3)), np.ones((4, 4, 4)))
    with pytest.raises(TypeError, match="dtype"):
        MonarchMatrix(np.ones((2, 2, 2), dtype=object), np.ones((2, 2, 2)))
    with pytest.raises(TypeError, match="3-D array of blocks"):
        MonarchMatrix(sp.eye(4), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="n_threads=0"):
        M.matmul(np.ones(16), n_threads=0)
    with pytest.raises(ValueError, match="n_threads=0"):
        MonarchMatrix(M.left, M.right, n_threads=0)
    with pytest.raises(ValueError, match="dimension mismatch"):
        M @ MonarchMatrix.random((8, 8))
    with pytest.raises(TypeError, match="factors"):
        MonarchProduct(M, np.eye(16))


@pytest.mark.parametrize("n_blocks, message", [
    (5, "does not fit"), ((4, 5), "R's 5 blocks"), ((3, 4), "L's 3 blocks"), (0, "positive"),
])
def test_layout_errors(n_blocks, message):
    with pytest.raises(ValueError, match=message):
        monarch_layout((16, 12), n_blocks)
    with pytest.raises(ValueError, match=message):
        MonarchMatrix.random((16, 12), n_blocks)


def test_layouts():
    assert monarch_layout((1024, 1024)) == ((32, 32, 32), (32, 32, 32))
    assert monarch_layout((4096, 4096)) == ((64, 64, 64), (64, 64, 64))
    # fly's default sizes for 768: R has 32 blocks of 24x24, L 24 of 32x32
    assert monarch_layout((768, 768)) == ((32, 24, 24), (24, 32, 32))
    assert monarch_layout((3072, 768)) == ((32, 24, 24), (24, 128, 32))
    assert monarch_layout((1024, 1024), 4) == ((4, 256, 256), (4, 256, 256))
    (k, q, p), (l, s, r) = monarch_layout((12, 8), (4, 2))
    assert (k, l, k * q, l * r, k * p, l * s) == (2, 4, 8, 8, 8, 12)
    with pytest.raises(TypeError, match="n_blocks"):
        monarch_layout((8, 8), 2.5)
    with pytest.raises(ValueError, match="non-empty"):
        monarch_layout((0, 8))


# ------------------------------------------- operators, products, views
def test_linear_operator(rng):
    M = MonarchMatrix.random((64, 48), random_state=4)
    D = M.toarray()
    assert aslinearoperator(M) is M
    X = rng.standard_normal((48, 3))
    np.testing.assert_allclose(M.matmat(X), D @ X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M.rmatmat(rng.standard_normal((64, 2))).shape, (48, 2))
    np.testing.assert_allclose(M.dot(X), D @ X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose((2 * M) @ X, 2 * D @ X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose((-M) @ X, -D @ X, rtol=1e-12, atol=1e-12)
    # scipy solvers take it directly
    u, s, vt = svds(M, k=4, random_state=0)
    np.testing.assert_allclose(np.sort(s), np.sort(np.linalg.svd(D, compute_uv=False)[:4]),
                               rtol=1e-8)
    mixed = aslinearoperator(np.eye(64)) @ M
    assert isinstance(mixed, LinearOperator)
    np.testing.assert_allclose(mixed @ X, D @ X, rtol=1e-12, atol=1e-12)


def test_transpose_views_share_blocks():
    M = MonarchMatrix.random((24, 16), random_state=5, dtype=np.complex128)
    assert M.T.transposed and not M.T.T.transposed
    assert M.T.left is M.left
    np.testing.assert_allclose(M.T.toarray(), M.toarray().T, rtol=1e-14)
    np.testing.assert_allclose(M.H.toarray(), M.toarray().conj().T, rtol=1e-14)
    np.testing.assert_allclose(M.conj().toarray(), M.toarray().conj(), rtol=1e-14)
    assert M.astype(np.complex64).dtype == np.complex64
    assert "MonarchMatrix.T" in repr(M.T)


def test_products_of_monarch_matrices(rng):
    A = MonarchMatrix.random((64, 64), random_state=6)
    B = MonarchMatrix.random((64, 48), random_state=7)
    P = A @ B
    assert isinstance(P, MonarchProduct) and P.shape == (64, 48)
    D = A.toarray() @ B.toarray()
    np.testing.assert_allclose(P.toarray(), D, rtol=1e-12, atol=1e-12)
    X = rng.standard_normal((48, 5))
    np.testing.assert_allclose(P @ X, D @ X, rtol=1e-12, atol=1e-12)
    x = rng.standard_normal(64)
    np.testing.assert_allclose(x @ P, x @ D, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(P.T.toarray(), D.T, rtol=1e-12, atol=1e-12)
    PP = P @ B.T @ A
    assert len(PP.factors) == 4
    np.testing.assert_allclose(PP.toarray(), D @ B.toarray().T @ A.toarray(), rtol=1e-10,
                               atol=1e-10)
    assert P.n_params == A.n_params + B.n_params
    assert aslinearoperator(P) is P


# ------------------------------------------------------------- projection
@pytest.mark.parametrize("method", ["svd", "power"])
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-13),
                                        (np.complex128, 1e-13)])
@pytest.mark.parametrize("shape, n_blocks", [((256, 256), None), ((96, 64), None),
                                             ((64, 64), 4), ((48, 72), (4, 6))])
def test_true_monarch_recovered_to_roundoff(method, dtype, tol, shape, n_blocks):
    M = MonarchMatrix.random(shape, n_blocks, dtype=dtype, random_state=8)
    W = M.toarray()
    P, err = monarch_project(W, n_blocks, method=method, return_error=True)
    direct = np.linalg.norm(P.toarray() - W) / np.linalg.norm(W)
    assert direct <= tol and err <= tol
    assert P.dtype == dtype and P.n_blocks == M.n_blocks


@pytest.mark.parametrize("shape, n_blocks", [((8, 8), None), ((9, 6), None), ((8, 8), 2),
                                             ((12, 8), (4, 2))])
def test_projection_beats_local_optimiser(shape, n_blocks):
    """No Monarch matrix a quasi-Newton optimiser finds from random starting
    factors comes closer to W than the projection."""
    rng = np.random.default_rng(9)
    W = rng.standard_normal(shape)
    P, err = monarch_project(W, n_blocks, return_error=True)
    best_proj = err**2 * np.sum(W**2)
    (k, q, p), (l, s, r) = monarch_layout(shape, n_blocks)
    n1 = k * q * p

    def unpack(theta):
        return theta[n1:].reshape(l, s, r), theta[:n1].reshape(k, q, p)

    mid = k * q
    P1 = np.zeros((mid, mid))
    for j in range(mid):
        P1[(j % l) * r + j // l, j] = 1
    P2 = np.zeros((l * s, l * s))
    for lm in range(l):
        for sg in range(s):
            P2[sg * l + lm, lm * s + sg] = 1

    def f(theta):
        left, right = unpack(theta)
        L = scipy.linalg.block_diag(*left)
        R = scipy.linalg.block_diag(*right)
        E = P2 @ L @ P1 @ R - W
        gL = P2.T @ E @ (P1 @ R).T
        gR = (P2 @ L @ P1).T @ E
        g_left = np.stack([gL[i * s:(i + 1) * s, i * r:(i + 1) * r] for i in range(l)])
        g_right = np.stack([gR[i * q:(i + 1) * q, i * p:(i + 1) * p] for i in range(k)])
        return np.sum(E**2), 2 * np.concatenate([g_right.ravel(), g_left.ravel()])

    found = []
    for _ in range(6):
        theta0 = rng.standard_normal(n1 + l * s * r)
        res = scipy.optimize.minimize(f, theta0, jac=True, method="L-BFGS-B",
                                      options={"maxiter": 5000, "gtol": 1e-12, "ftol": 1e-15})
        found.append(res.fun)
    assert min(found) >= best_proj * (1 - 1e-7)
    # the comparison is tight: the optimiser does find the optimum
    assert min(found) <= best_proj * (1 + 1e-6)
    # and the projection is a stationary point the optimiser cannot improve
    theta_star = np.concatenate([P.right.ravel(), P.left.ravel()])
    res = scipy.optimize.minimize(f, theta_star, jac=True, method="L-BFGS-B")
    assert res.fun >= best_proj * (1 - 1e-9)


def test_projection_is_optimal_per_slice(rng):
    """Perturbing the projected factors never lowers the error."""
    W = rng.standard_normal((64, 64))
    P, err = monarch_project(W, return_error=True)
    for _ in range(20):
        left = P.left + 1e-3 * rng.standard_normal(P.left.shape)
        right = P.right + 1e-3 * rng.standard_normal(P.right.shape)
        Q = MonarchMatrix(left, right)
        assert np.linalg.norm(Q.toarray() - W) >= np.linalg.norm(P.toarray() - W)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
def test_power_matches_svd(dtype, rng):
    W = rng.standard_normal((256, 256)).astype(dtype)
    _, e_svd = monarch_project(W, method="svd", return_error=True)
    P, e_pow = monarch_project(W, method="power", return_error=True)
    assert e_svd <= e_pow <= 1.001 * e_svd
    # the reported error is the actual one
    direct = np.linalg.norm(P.toarray() - W) / np.linalg.norm(W)
    assert abs(direct - e_pow) <= 1e-5 * e_pow


def test_default_method_is_power_and_reaches_the_svd_optimum_up_to_tol(rng):
    """Random slices have close leading singular values (slow power
    iteration): the default still reaches the SVD's squared error up to its
    tolerance (1e-9 relative in float64, float32: 1e-6 plus rounding)."""
    import inspect

    assert inspect.signature(monarch_project).parameters["method"].default == "power"
    for dtype, bound in [(np.float64, 5e-9), (np.float32, 5e-5), (np.complex128, 5e-9)]:
        for shape, nb in [((1024, 1024), None), ((96, 64), None), ((64, 64), 4)]:
            W = rng.standard_normal(shape).astype(dtype)
            _, e_svd = monarch_project(W, nb, method="svd", return_error=True)
            P, e_pow = monarch_project(W, nb, return_error=True)
            assert e_svd**2 * (1 - bound) <= e_pow**2 <= e_svd**2 * (1 + bound), (dtype, shape)
            direct = np.linalg.norm(P.toarray() - W) / np.linalg.norm(W)
            assert abs(direct - e_pow) <= (1e-5 if dtype == np.float32 else 1e-12) * e_pow


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_power_slices_that_do_not_converge_are_finished_by_svd(dtype, rng):
    """With max_iter=1 no slice converges: every one is solved by the SVD,
    and the result is the SVD projection to roundoff."""
    W = rng.standard_normal((64, 64)).astype(dtype)
    for nb in [None, 4, (4, 8)]:
        S, e_svd = monarch_project(W, nb, method="svd", return_error=True)
        P, e_pow = monarch_project(W, nb, method="power", max_iter=1, return_error=True)
        assert abs(e_pow - e_svd) <= 1e-12 * e_svd
        np.testing.assert_allclose(P.toarray(), S.toarray(), rtol=0, atol=1e-12)


def test_power_deflation_ranks(rng):
    """Slices of rank above one (4 blocks of 64: rank 4; uneven ranks for
    (6, 8) blocks of 48) reach the SVD optimum too."""
    for shape, nb in [((64, 64), 4), ((48, 48), (6, 8)), ((48, 48), (8, 6))]:
        W = rng.standard_normal(shape)
        _, e_svd = monarch_project(W, nb, return_error=True)
        _, e_pow = monarch_project(W, nb, method="power", return_error=True, tol=1e-13,
                                   max_iter=20000)
        assert abs(e_pow - e_svd) <= 1e-6 * e_svd


def test_dft_with_shuffled_columns_is_monarch():
    """Cooley-Tukey: the DFT with its columns in perfect-shuffle order is a
    Monarch matrix, which the projection finds exactly."""
    b = 8
    n = b * b
    F = np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n)
    shuffle = np.arange(n).reshape(b, b).T.ravel()
    W = F[:, shuffle]
    for method in ("svd", "power"):
        P, err = monarch_project(W, method=method, return_error=True)
        assert err < 1e-13
        x = np.random.default_rng(0).standard_normal(n)
        np.testing.assert_allclose(P @ x[shuffle], np.fft.fft(x), atol=1e-11)
    _, err_plain = monarch_project(F, return_error=True)
    assert err_plain > 0.1  # without the shuffle it is not


def test_projection_of_real_matrix():
    """A Gram matrix built from a shipped SuiteSparse matrix: power and SVD
    agree, and the result is the best among block counts' nested layouts."""
    A = datasets.load_matrix("dwt_992")
    X = A[:, :64].toarray()  # 992 x 64 feature columns
    sq = (X**2).sum(1)
    K = np.exp(-np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0) / 64.0)
    _, e_svd = monarch_project(K, return_error=True)
    _, e_pow = monarch_project(K, method="power", return_error=True)
    assert 0 <= e_svd <= e_pow <= 1.001 * e_svd + 1e-12
    assert e_svd < 0.9  # a smooth kernel is far from orthogonal to the Monarch set


def test_projection_inputs_and_errors(rng):
    W = rng.standard_normal((16, 16))
    W0 = W.copy()
    monarch_project(W)
    monarch_project(W, method="power")
    np.testing.assert_array_equal(W, W0)
    F = np.asfortranarray(W)
    np.testing.assert_allclose(monarch_project(F).toarray(), monarch_project(W).toarray())
    assert monarch_project(np.arange(256).reshape(16, 16)).dtype == np.float64
    assert monarch_project(W.astype(np.float32), method="power").dtype == np.float32
    S = monarch_project(sp.csr_array(W))
    np.testing.assert_allclose(S.toarray(), monarch_project(W).toarray())
    np.testing.assert_allclose(monarch_project(W[::2, ::2], 2).toarray(),
                               monarch_project(np.ascontiguousarray(W[::2, ::2]), 2).toarray())
    Z = monarch_project(np.zeros((16, 16)), return_error=True)
    assert Z[1] == 0.0 and not Z[0].toarray().any()
    assert MonarchMatrix.from_dense(W, method="power").shape == (16, 16)

    bad = W.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"W must be finite.*W\[3, 5\] = nan"):
        monarch_project(bad)
    bad[3, 5] = np.inf
    with pytest.raises(ValueError, match="finite"):
        monarch_project(bad, method="power")
    huge = np.full((16, 16), 1e308)  # the sum overflows, the entries are fine
    assert monarch_project(huge, method="power").shape == (16, 16)
    with pytest.raises(ValueError, match="2-D"):
        monarch_project(np.ones(16))
    with pytest.raises(ValueError, match="2-D"):
        monarch_project(np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="does not fit"):
        monarch_project(W, 3)
    with pytest.raises(ValueError, match="method"):
        monarch_project(W, method="lanczos")
    with pytest.raises(ValueError, match="max_iter"):
        monarch_project(W, method="power", max_iter=0)
    with pytest.raises(ValueError, match="tol"):
        monarch_project(W, method="power", tol=-1.0)
    with pytest.raises(TypeError, match="dtype"):
        monarch_project(np.array([["a"] * 4] * 4))
    with pytest.raises(ValueError, match="n_threads"):
        monarch_project(W, method="power", n_threads=0)


def test_projection_threads_bit_identical(rng):
    W = rng.standard_normal((256, 256)).astype(np.float32)
    a = monarch_project(W, method="power", n_threads=1)
    for nt in (2, 3):
        b = monarch_project(W, method="power", n_threads=nt)
        np.testing.assert_array_equal(a.left, b.left)
        np.testing.assert_array_equal(a.right, b.right)


INTERRUPT_CHILD = r"""
import time
import numpy as np
from sparsecore.ops import monarch_project

W = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
print("ready", flush=True)
t0 = time.perf_counter()
try:  # 2 blocks: four 1024 x 1024 slices of rank 512, many seconds of iterations
    monarch_project(W, 2, method="power", tol=0.0, max_iter=10**6, n_threads={threads})
    print("finished", time.perf_counter() - t0, flush=True)
except KeyboardInterrupt:
    print("interrupted", time.perf_counter() - t0, flush=True)
print("usable", monarch_project(W[:64, :64], method="power").shape, flush=True)
"""


@posix_signals
@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_stops_a_long_projection(threads):
    assert "usable (64, 64)" in interrupt_child(INTERRUPT_CHILD.format(threads=threads))
