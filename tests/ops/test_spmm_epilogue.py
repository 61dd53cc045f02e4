"""spmm's epilogue, ``act(S @ X + bias[:, None])`` applied by the kernels:
against numpy/scipy references for every format, dtype, batch width and
layout; the same bits at any thread count and SIMD level; the float32
approximations against the exact functions over a wide range; bad input."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import erf

import sparsecore
from sparsecore.formats import BlockSparseMatrix
from sparsecore.ops import nm_prune, spmm

ACTS = [None, "relu", "gelu", "gelu_tanh", "silu"]


def reference(Y, bias, act):
    Y = Y.astype(np.float64)
    if bias is not None:
        Y = Y + bias.astype(np.float64).reshape((-1,) + (1,) * (Y.ndim - 1))
    if act == "relu":
        return np.maximum(Y, 0)
    if act == "gelu":
        return 0.5 * Y * (1 + erf(Y / np.sqrt(2)))
    if act == "gelu_tanh":
        return 0.5 * Y * (1 + np.tanh(np.sqrt(2 / np.pi) * (Y + 0.044715 * Y ** 3)))
    if act == "silu":
        return Y / (1 + np.exp(-Y))
    return Y


def operands(kind, dtype, rng):
    W = rng.standard_normal((96, 64)).astype(dtype)
    if kind == "nm":
        return nm_prune(W, 2, 4)
    if kind == "block":
        keep = np.kron(rng.random((6, 4)) < 0.5, np.ones((16, 16), dtype))
        return BlockSparseMatrix.from_dense(W * keep, (16, 16))
    return sp.csr_array(W * (rng.random(W.shape) < 0.1))


def close(Y, R, dtype):
    # relative to the largest entry (float32: the activations' approximations
    # and the product's rounding; float64: libm and rounding)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    return np.abs(Y - R).max() <= tol * max(1.0, np.abs(R).max())


@pytest.mark.parametrize("kind", ["nm", "block", "csr"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B", [1, 5, 64, 133])
@pytest.mark.parametrize("act", ACTS)
def test_epilogue_matches_reference(kind, dtype, B, act):
    rng = np.random.default_rng(B)
    S = operands(kind, dtype, rng)
    X = (3 * rng.standard_normal((64, B))).astype(dtype)
    bias = rng.standard_normal(96).astype(dtype)
    plain = spmm(S, X)
    for b in (None, bias):
        Y = spmm(S, X, bias=b, activation=act)
        assert Y.dtype == dtype
        assert close(Y, reference(plain, b, act), dtype)
        # batch-major output and input (a layer's orientation), 1 and 2 threads
        out = np.empty((B, 96), dtype).T
        spmm(S, np.asfortranarray(X), out=out, bias=b, activation=act, n_threads=2)
        assert np.array_equal(out, Y)


@pytest.mark.skipif(not sparsecore.get_simd() == "avx512", reason="needs a CPU with AVX-512")
@pytest.mark.parametrize("kind", ["nm", "block"])
@pytest.mark.parametrize("act", ["gelu", "silu"])
def test_epilogue_same_at_every_simd_level(kind, act):
    rng = np.random.default_rng(0)
    S = operands(kind, np.float32, rng)
    X = (3 * rng.standard_normal((64, 77))).astype(np.float32)
    bias = rng.standard_normal(96).astype(np.float32)
    old = sparsecore.set_simd("avx2")
    try:
        a = spmm(S, X, bias=bias, activation=act)
        sparsecore.set_simd("avx512")
        b = spmm(S, X, bias=bias, activation=act)
    finally:
        sparsecore.set_simd(old)
    assert close(a, b, np.float32)


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh", "silu"])
def test_float32_activations_over_a_wide_range(act):
    x = np.linspace(-60, 60, 240001).astype(np.float32)
    one = sp.csr_array(np.ones((1, 1), np.float32))
    y = spmm(one, x[None, :], activation=act)[0]
    ref = reference(x.astype(np.float64), None, act)
    # within 2e-7 of max(1, |f(x)|): about two units in the last place
    assert np.all(np.abs(y - ref) <= 2e-7 * np.maximum(1.0, np.abs(ref)))
    special = np.array([[np.nan, np.inf, 0.0]], np.float32)
    z = spmm(one, special, activation=act)[0]
    assert np.isnan(z[0]) and z[1] == np.inf and z[2] == 0


def test_relu_keeps_nan():
    one = sp.csr_array(np.ones((1, 1)))
    y = spmm(one, np.array([[np.nan, -1.0, 2.0]]), activation="relu")
    assert np.isnan(y[0, 0]) and list(y[0, 1:]) == [0.0, 2.0]


def test_no_stored_values_still_applies_bias_and_activation():
    S = sp.csr_array((3, 4))
    y = spmm(S, np.ones((4, 2)), bias=[1.0, -1.0, 0.5], activation="relu")
    assert np.array_equal(y, [[1, 1], [0, 0], [0.5, 0.5]])


def test_bad_epilogue_arguments():
    S = nm_prune(np.ones((8, 8)), 2, 4)
    X = np.ones((8, 3))
    with pytest.raises(ValueError, match="activation must be"):
        spmm(S, X, activation="tanh")
    with pytest.raises(ValueError, match=r"bias must have shape \(8,\)"):
        spmm(S, X, bias=np.ones(7))
    with pytest.raises(TypeError, match="bias"):
        spmm(S, X, bias=np.ones(8, complex))
    with pytest.raises(TypeError, match="bias must be a dense"):
        spmm(S, X, bias=sp.csr_array(np.ones((1, 8))))
    out = np.zeros((8, 3), order="F")
    with pytest.raises(ValueError, match="overlaps bias"):
        spmm(S, X, out=out, bias=out[:, 0])
