"""KroneckerOperator against the formed np.kron product.

Tolerances: products of Gaussian factors are compared with a relative max
error of 1e-12 (float64/complex128) and 2e-5 (float32/complex64), scaled by
the largest entry of the dense reference.
"""
from functools import reduce

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, aslinearoperator, lsqr

from sparsecore.formats import KroneckerOperator
from sparsecore.formats._kronecker import mode_product_plan

TOL = {
    np.float32: 2e-5,
    np.float64: 1e-12,
    np.complex64: 2e-5,
    np.complex128: 1e-12,
}


def _factors(rng, shapes, dtype):
    out = []
    for m, n in shapes:
        A = rng.standard_normal((m, n))
        if np.dtype(dtype).kind == "c":
            A = A + 1j * rng.standard_normal((m, n))
        out.append(A.astype(dtype))
    return out


def _close(got, ref, dtype):
    scale = max(np.abs(ref).max(), 1.0)
    assert np.abs(got - ref).max() <= TOL[dtype] * scale * 10


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize(
    "shapes",
    [
        [(3, 4)],
        [(3, 4), (5, 2)],
        [(2, 3), (4, 4), (3, 2)],
        [(2, 2), (1, 3), (3, 1), (2, 4)],
        [(6, 2), (5, 3)],  # tall factors: the product grows
    ],
)
def test_products_match_dense(rng, dtype, shapes):
    factors = _factors(rng, shapes, dtype)
    K = KroneckerOperator(factors)
    D = reduce(np.kron, factors)
    assert K.shape == D.shape and K.dtype == D.dtype
    x = rng.standard_normal(D.shape[1]).astype(dtype)
    X = rng.standard_normal((D.shape[1], 3)).astype(dtype)
    yv = rng.standard_normal(D.shape[0]).astype(dtype)
    Y = rng.standard_normal((D.shape[0], 2)).astype(dtype)
    _close(K @ x, D @ x, dtype)
    _close(K.matvec(x), D @ x, dtype)
    _close(K @ X, D @ X, dtype)
    _close(K.rmatvec(yv), D.conj().T @ yv, dtype)
    _close(K.H @ Y, D.conj().T @ Y, dtype)
    _close(K.T @ yv, D.T @ yv, dtype)
    _close(K.toarray(), D, dtype)
    assert (K @ x).dtype == dtype


def test_column_vector_and_layouts(rng):
    factors = _factors(rng, [(3, 4), (2, 5)], np.float64)
    K = KroneckerOperator([np.asfortranarray(factors[0]), factors[1][:, ::1]])
    D = reduce(np.kron, factors)
    Xf = np.asfortranarray(rng.standard_normal((20, 4)))
    np.testing.assert_allclose(K @ Xf, D @ Xf, rtol=1e-12, atol=1e-12)
    x = rng.standard_normal(40)[::2]  # non-contiguous
    np.testing.assert_allclose(K @ x, D @ x, rtol=1e-12, atol=1e-12)
    col = x.reshape(-1, 1)
    assert (K.matvec(col)).shape == (6, 1)
    # a non-contiguous factor (every other column)
    big = rng.standard_normal((3, 8))
    K2 = KroneckerOperator([big[:, ::2], factors[1]])
    np.testing.assert_allclose(K2 @ x, np.kron(big[:, ::2], factors[1]) @ x, rtol=1e-12)


def test_mixed_dtypes_promote(rng):
    A = rng.standard_normal((3, 4)).astype(np.float32)
    B = rng.standard_normal((2, 2)).astype(np.float32)
    K = KroneckerOperator([A, B])
    assert K.dtype == np.float32
    z = rng.standard_normal(8) + 1j * rng.standard_normal(8)
    out = K @ z
    assert out.dtype == np.complex128
    np.testing.assert_allclose(out, np.kron(A, B).astype(np.float64) @ z, rtol=1e-6)
    Ki = KroneckerOperator([np.arange(6).reshape(2, 3), np.eye(2, dtype=bool)])
    assert Ki.dtype == np.float64
    np.testing.assert_array_equal(Ki.toarray(), np.kron(np.arange(6).reshape(2, 3), np.eye(2)))
    assert (K @ np.arange(8)).dtype == np.float64


def test_inputs_not_modified(rng):
    factors = _factors(rng, [(3, 4), (2, 5)], np.complex128)
    copies = [A.copy() for A in factors]
    x = rng.standard_normal(20)
    xc = x.copy()
    K = KroneckerOperator(factors)
    K @ x
    K.H @ np.ones(6)
    for A, C in zip(factors, copies):
        np.testing.assert_array_equal(A, C)
    np.testing.assert_array_equal(x, xc)


def test_linear_operator_interface(rng):
    factors = _factors(rng, [(6, 4), (5, 3)], np.float64)
    K = KroneckerOperator(factors)
    assert isinstance(K, LinearOperator)
    assert aslinearoperator(K) is K
    x = rng.standard_normal(12)
    b = K @ x
    sol = lsqr(K, b, atol=1e-14, btol=1e-14, iter_lim=500)[0]
    np.testing.assert_allclose(sol, x, rtol=1e-8, atol=1e-8)
    # operator algebra from scipy still works
    np.testing.assert_allclose((2 * K) @ x, 2 * b)
    np.testing.assert_allclose((K + K) @ x, 2 * b)


def test_mixed_product_property(rng):
    A, B = _factors(rng, [(3, 4), (2, 5)], np.float64)
    C, D = _factors(rng, [(4, 2), (5, 3)], np.float64)
    P = KroneckerOperator([A, B]) @ KroneckerOperator([C, D])
    assert isinstance(P, KroneckerOperator)
    np.testing.assert_allclose(P.toarray(), np.kron(A, B) @ np.kron(C, D), rtol=1e-12, atol=1e-12)
    # modes that do not line up fall back to a generic product operator
    R = rng.standard_normal((20, 2))
    Q = KroneckerOperator([A, B]) @ KroneckerOperator([R])
    assert not isinstance(Q, KroneckerOperator)
    np.testing.assert_allclose(Q @ np.ones(2), np.kron(A, B) @ (R @ np.ones(2)), rtol=1e-12)


def test_conversions_and_properties(rng):
    A = np.array([[1.0, 0.0], [0.0, 2.0]])
    B = np.array([[0.0, 3.0, 0.0]])
    K = KroneckerOperator([A, B])
    assert K.n_modes == 2 and K.in_shape == (2, 3) and K.out_shape == (2, 1)
    assert K.nnz == 2
    C = K.tocsr()
    assert isinstance(C, sp.csr_array)
    np.testing.assert_array_equal(C.toarray(), np.kron(A, B))
    assert C.nnz == 2
    assert "KroneckerOperator of 2x2 kron 1x3" in repr(K)
    # sparse factors are accepted (densified)
    K2 = KroneckerOperator([sp.csr_array(A), B])
    np.testing.assert_array_equal(K2.toarray(), np.kron(A, B))
    # a KroneckerOperator can be re-wrapped
    assert KroneckerOperator(K).shape == K.shape


def test_one_by_one_and_empty(rng):
    K = KroneckerOperator([np.array([[2.0]]), np.array([[3.0]])])
    np.testing.assert_array_equal(K @ np.array([1.5]), [9.0])
    E = KroneckerOperator([np.zeros((0, 3)), np.ones((2, 2))])
    assert E.shape == (0, 6)
    assert (E @ np.ones(6)).shape == (0,)
    Z = KroneckerOperator([np.ones((2, 0)), np.ones((2, 2))])
    assert Z.shape == (4, 0)
    np.testing.assert_array_equal(Z @ np.ones(0), np.zeros(4))
    assert (KroneckerOperator([np.ones((2, 2))]) @ np.zeros((2, 0))).shape == (2, 0)


def test_errors(rng):
    with pytest.raises(TypeError, match="list or tuple"):
        KroneckerOperator(np.ones(3))
    with pytest.raises(TypeError, match="one 2-D array"):
        KroneckerOperator(np.ones((2, 2)))
    with pytest.raises(ValueError, match="at least one"):
        KroneckerOperator([])
    with pytest.raises(ValueError, match=r"factors\[1\] must be 2-D"):
        KroneckerOperator([np.ones((2, 2)), np.ones(3)])
    with pytest.raises(TypeError, match=r"factors\[0\] has dtype"):
        KroneckerOperator([np.array([["a"]])])
    with pytest.raises(TypeError, match="LinearOperator"):
        KroneckerOperator([aslinearoperator(np.eye(2))])
    with pytest.raises(ValueError, match="at most 32"):
        KroneckerOperator([np.ones((1, 1))] * 33)
    K = KroneckerOperator([np.ones((2, 3)), np.ones((2, 2))])
    with pytest.raises(ValueError, match="dimension mismatch"):
        K @ np.ones(5)
    with pytest.raises(ValueError, match="Scalar"):
        K @ 2.0


def test_plan_orders_shrinking_modes_first():
    order, biggest = mode_product_plan([2, 10], [10, 10])
    assert order[0] == 0  # the 10 -> 2 mode shrinks the tensor first
    assert biggest == 100


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
    tail=st.integers(1, 3),
    complex_=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_matches_kron(shapes, tail, complex_, seed):
    rng = np.random.default_rng(seed)
    dtype = np.complex128 if complex_ else np.float64
    factors = _factors(rng, shapes, dtype)
    K = KroneckerOperator(factors)
    D = reduce(np.kron, factors)
    X = rng.standard_normal((D.shape[1], tail))
    np.testing.assert_allclose(K @ X, D @ X, rtol=1e-11, atol=1e-11)
    Y = rng.standard_normal((D.shape[0], tail))
    np.testing.assert_allclose(K.H @ Y, D.conj().T @ Y, rtol=1e-11, atol=1e-11)
