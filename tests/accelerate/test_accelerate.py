"""sparsecore.accelerate(): unchanged scipy products through sparsecore give
what scipy gives (class, format, shape, dtypes, values).

Reference: the same product with the accelerator off. Tolerances: sparse @
sparse is compared bit for bit (same summation order as scipy's csr_matmat);
sparse @ dense within rtol 1e-12 (float64) / 1e-5 (float32) and atol scaled
by the row norms (fused multiply-adds and blocked sums round differently).
"""
import threading
import warnings

import numpy as np
import pytest
import scipy
import scipy.sparse as sp
from scipy.sparse import _compressed
from scipy.sparse.linalg import aslinearoperator

import sparsecore
from sparsecore import _accelerate
from sparsecore._accelerate import AccelerateWarning

METHODS = ("_matmul_vector", "_matmul_multivector", "_matmul_sparse")
ORIGINALS = {name: _compressed._cs_matrix.__dict__[name] for name in METHODS}
CLASSES = [sp.csr_array, sp.csr_matrix, sp.csc_array, sp.csc_matrix]
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def _patched():
    return {name: _compressed._cs_matrix.__dict__[name] is not ORIGINALS[name]
            for name in METHODS}


def _is_original():
    return not any(_patched().values())


@pytest.fixture(autouse=True)
def _off_after():
    """Every test starts and ends with the accelerator off."""
    assert _is_original()
    yield
    sparsecore.accelerate(False)
    assert _is_original()


@pytest.fixture
def on():
    _accelerate.reset_stats()
    with sparsecore.accelerate(min_flops=0) as state:
        yield state


def _random(cls, shape, density, dtype, rng):
    A = sp.random_array(shape, density=density, format="csr", dtype=dtype, rng=rng)
    return cls(A)


def _plain(fn):
    with sparsecore.accelerate(False):
        return fn()


def _assert_same_sparse(C, D):
    """C (accelerated) is what scipy returned (D), bit for bit."""
    assert type(C) is type(D)
    assert C.format == D.format
    assert C.shape == D.shape
    assert C.dtype == D.dtype
    assert C.indptr.dtype == D.indptr.dtype and C.indices.dtype == D.indices.dtype
    assert C.has_canonical_format
    D = D.copy()
    D.sum_duplicates()   # scipy's rows come out unsorted
    assert C.nnz == D.nnz
    np.testing.assert_array_equal(C.indptr, D.indptr)
    np.testing.assert_array_equal(C.indices, D.indices)
    np.testing.assert_array_equal(C.data, D.data)
    assert not np.any(C.data == 0)


def _assert_same_dense(y, z):
    assert type(y) is type(z)
    assert y.shape == z.shape
    assert y.dtype == z.dtype
    rtol = RTOL[np.dtype(y.dtype)]
    scale = np.max(np.abs(z)) if z.size else 0.0
    np.testing.assert_allclose(np.asarray(y), np.asarray(z), rtol=rtol, atol=rtol * scale)


# -- sparse @ sparse ------------------------------------------------------------


@pytest.mark.parametrize("left", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("right", CLASSES + [sp.coo_array, sp.lil_matrix],
                         ids=lambda c: c.__name__)
def test_sparse_products_match_scipy(on, rng, left, right):
    A = _random(left, (40, 30), 0.2, np.float64, rng)
    B = _random(right, (30, 50), 0.2, np.float64, rng)
    C = A @ B
    _assert_same_sparse(C, _plain(lambda: A @ B))
    assert _accelerate.stats()["sparse"] >= 1


@pytest.mark.parametrize("da, db", [(np.float32, np.float32), (np.float64, np.float64),
                                    (np.float32, np.float64), (np.float64, np.float32)])
def test_sparse_dtypes(on, rng, da, db):
    A = _random(sp.csr_array, (60, 45), 0.1, da, rng)
    B = _random(sp.csr_array, (45, 70), 0.1, db, rng)
    _assert_same_sparse(A @ B, _plain(lambda: A @ B))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_sparse_bit_identical_on_real_sizes(rng, n_threads):
    A = _random(sp.csr_array, (3000, 2500), 0.004, np.float64, rng)
    B = _random(sp.csr_array, (2500, 2000), 0.004, np.float64, rng)
    D = A @ B
    with sparsecore.accelerate(n_threads=n_threads, min_flops=0):
        C = A @ B
        Ct = A.T @ A
    _assert_same_sparse(C, D)
    _assert_same_sparse(Ct, A.T @ A)


def test_transposed_operands(on, rng):
    A = _random(sp.csr_array, (50, 40), 0.15, np.float64, rng)
    B = _random(sp.csr_array, (50, 30), 0.15, np.float64, rng)
    for fn in (lambda: A.T @ B, lambda: A @ A.T, lambda: A.T @ A, lambda: B.T @ A):
        _assert_same_sparse(fn(), _plain(fn))
    assert (A.T @ B).format == "csc"


def test_dot_star_and_matrix_classes(on, rng):
    A = _random(sp.csr_matrix, (30, 30), 0.2, np.float64, rng)
    B = _random(sp.csr_array, (30, 30), 0.2, np.float64, rng)
    _assert_same_sparse(A * A, _plain(lambda: A * A))
    _assert_same_sparse(A.dot(B), _plain(lambda: A.dot(B)))
    _assert_same_sparse(B.dot(A), _plain(lambda: B.dot(A)))
    assert isinstance(A @ B, sp.csr_matrix) and isinstance(B @ A, sp.csr_array)


def test_non_canonical_inputs(on, rng):
    # duplicates, unsorted rows and explicit zeros, in both operands
    indptr = np.array([0, 4, 6, 9])
    indices = np.array([2, 0, 2, 1, 1, 1, 0, 2, 0])
    data = np.array([1.5, -2.0, 0.25, 0.0, 3.0, -3.0, 1.0, 2.0, 4.0])
    A = sp.csr_array((data, indices, indptr), shape=(3, 3))
    assert not A.has_canonical_format
    B = sp.csr_array((data[::-1].copy(), indices.copy(), indptr.copy()), shape=(3, 3))
    for fn in (lambda: A @ B, lambda: B @ A, lambda: A.T @ B,
               lambda: sp.csc_array(A) @ B):
        _assert_same_sparse(fn(), _plain(fn))
    assert not A.has_canonical_format   # inputs untouched
    np.testing.assert_array_equal(A.indices, indices)


def test_cancellation_and_empty(on):
    A = sp.csr_array(np.array([[1.0, 1.0]]))
    B = sp.csr_array(np.array([[1.0], [-1.0]]))
    for fn in (lambda: A @ B,
               lambda: sp.csr_array((0, 5)) @ sp.csr_array((5, 3)),
               lambda: sp.csr_array((4, 0)) @ sp.csr_array((0, 3)),
               lambda: sp.csr_array((4, 5)) @ sp.csr_array((5, 3)),
               lambda: sp.csc_matrix((4, 5)) @ sp.csc_matrix((5, 0))):
        C, D = fn(), _plain(fn)
        assert type(C) is type(D) and C.shape == D.shape and C.dtype == D.dtype
        assert C.nnz == D.nnz == 0
        assert C.indices.dtype == D.indices.dtype


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_int64_indices(on, rng, cls):
    A = _random(sp.csr_array, (40, 40), 0.2, np.float64, rng)
    A = cls(A)
    A.indptr = A.indptr.astype(np.int64)
    A.indices = A.indices.astype(np.int64)
    C = A @ A
    _assert_same_sparse(C, _plain(lambda: A @ A))


@pytest.mark.parametrize("forced", [np.int32, np.int64])
def test_index_dtype_follows_scipy_get_index_dtype(on, rng, monkeypatch, forced):
    # scipy's test_64bit monkeypatches the index-dtype choice; the accelerated
    # product asks scipy the same question
    from scipy.sparse import _base

    A = _random(sp.csr_array, (40, 40), 0.2, np.float64, rng)

    def fake(self, arrays=(), maxval=None, check_contents=False):
        return forced

    monkeypatch.setattr(_base._spbase, "_get_index_dtype", fake)
    C = A @ A
    _assert_same_sparse(C, _plain(lambda: A @ A))
    assert C.indices.dtype == forced


def test_low_int32_limit_hands_back_to_scipy(on, rng, monkeypatch):
    # like scipy's test_64bit "int32 limit lowered to 10": the product's own
    # size decides the dtype, which only scipy's symbolic pass knows exactly
    from scipy.sparse import _base, _sputils

    real = _sputils.get_index_dtype

    def low_limit(arrays=(), maxval=None, check_contents=False):
        if maxval is not None and maxval > 10:
            return np.int64
        return real(arrays, maxval, check_contents)

    def method(self, arrays=(), maxval=None, check_contents=False):
        return low_limit(arrays, maxval, check_contents)

    monkeypatch.setattr(_base._spbase, "_get_index_dtype", method)
    A = _random(sp.csr_array, (40, 40), 0.2, np.float64, rng)
    _assert_same_sparse(A @ A, _plain(lambda: A @ A))


# -- sparse @ dense -------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_products(on, rng, cls, dtype):
    A = _random(cls, (50, 40), 0.2, dtype, rng)
    x = rng.standard_normal(40).astype(dtype)
    X = rng.standard_normal((40, 9)).astype(dtype)
    Y = rng.standard_normal((7, 50)).astype(dtype)
    cases = [
        lambda: A @ x, lambda: A @ x[:, None], lambda: A @ X,
        lambda: A @ np.asfortranarray(X), lambda: A @ X[:, ::2],
        lambda: A @ rng_fixed[::2], lambda: Y @ A, lambda: A.dot(x), lambda: A.dot(X),
        lambda: A.T @ Y.T, lambda: x[:, None].T @ A.T,
        lambda: A @ np.asmatrix(X), lambda: A @ X.astype(np.float64),
    ]
    rng_fixed = rng.standard_normal(80).astype(dtype)
    if isinstance(A, sp.spmatrix):
        cases.append(lambda: A * X)
    for fn in cases:
        _assert_same_dense(fn(), _plain(fn))
    counts = _accelerate.stats()
    assert counts["multivector"] >= 1
    if A.format == "csr":
        assert counts["vector"] >= 1


def test_dense_zero_sizes(on):
    for A, X in [(sp.csr_array((0, 4)), np.ones((4, 3))),
                 (sp.csr_array((3, 4)), np.ones((4, 0))),
                 (sp.csr_array((3, 0)), np.ones((0, 2))),
                 (sp.csr_array((3, 4)), np.ones(4)),
                 (sp.csc_array((3, 4)), np.ones((4, 8)))]:
        _assert_same_dense(A @ X, _plain(lambda: A @ X))


def test_linear_operator_and_sklearn_style(on, rng):
    A = _random(sp.csr_array, (60, 40), 0.1, np.float64, rng)
    x = rng.standard_normal(40)
    op = aslinearoperator(A)
    _assert_same_dense(op.matvec(x), _plain(lambda: op.matvec(x)))
    _assert_same_dense(op.rmatvec(rng_vec := rng.standard_normal(60)),
                       _plain(lambda: op.rmatvec(rng_vec)))


# -- what stays on scipy -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex128, np.longdouble,
                                   np.int32])
def test_other_dtypes_stay_on_scipy(on, rng, dtype):
    A = sp.csr_array((rng.random((20, 20)) < 0.3).astype(dtype))
    x = np.ones(20, dtype=dtype)
    C = A @ A
    D = _plain(lambda: A @ A)
    assert type(C) is type(D) and C.dtype == D.dtype
    np.testing.assert_array_equal(C.toarray(), D.toarray())
    np.testing.assert_array_equal(A @ x, _plain(lambda: A @ x))
    counts = _accelerate.stats()
    assert counts["sparse"] == counts["vector"] == 0
    assert counts["fallback"] >= 2


def test_one_dimensional_and_other_formats(on):
    v = sp.csr_array(np.array([1.0, 0.0, 2.0]))   # 1-D
    M = sp.csr_array(np.arange(9.0).reshape(3, 3))
    for fn in (lambda: v @ M, lambda: M @ v, lambda: v @ v,
               lambda: sp.bsr_array(M) @ sp.bsr_array(M), lambda: sp.dia_array(M) @ M):
        C, D = fn(), _plain(fn)
        assert type(C) is type(D)
        np.testing.assert_array_equal(np.asarray(C.todense() if sp.issparse(C) else C),
                                      np.asarray(D.todense() if sp.issparse(D) else D))


def test_small_products_stay_below_threshold(rng):
    A = _random(sp.csr_array, (20, 20), 0.2, np.float64, rng)
    _accelerate.reset_stats()
    with sparsecore.accelerate():
        A @ A
        A @ np.ones(20)
    counts = _accelerate.stats()
    assert counts["sparse"] == counts["vector"] == 0


# -- switching -----------------------------------------------------------------


def test_on_off_restores_originals_exactly():
    state = sparsecore.accelerate()
    # with the default thresholds only sparse products can be routed: the
    # dense-product methods stay scipy's own
    assert state.enabled and _patched() == {"_matmul_vector": False,
                                            "_matmul_multivector": False,
                                            "_matmul_sparse": True}
    sparsecore.accelerate(min_flops=0)
    assert all(_patched().values())
    sparsecore.accelerate(False)
    assert _is_original()
    for name in METHODS:
        assert _compressed._cs_matrix.__dict__[name] is ORIGINALS[name]


def test_context_nesting():
    with sparsecore.accelerate(n_threads=1, min_flops=10) as outer:
        assert outer.enabled and all(_patched().values())
        with sparsecore.accelerate(False) as inner:
            assert not inner.enabled and _is_original()
            with sparsecore.accelerate():
                assert _patched()["_matmul_sparse"]
            assert _is_original()
        assert all(_patched().values())
        assert _accelerate._state == {"enabled": True, "n_threads": 1, "min_flops": 10}
    assert _is_original()


def test_context_restores_on_error():
    with pytest.raises(ZeroDivisionError):
        with sparsecore.accelerate():
            1 / 0
    assert _is_original()


def test_argument_errors():
    with pytest.raises(ValueError, match="n_threads"):
        sparsecore.accelerate(n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        sparsecore.accelerate(n_threads=1.5)
    with pytest.raises(ValueError, match="min_flops"):
        sparsecore.accelerate(min_flops=-1)
    with pytest.raises(TypeError, match="min_flops"):
        sparsecore.accelerate(min_flops="0")
    assert _is_original()


def test_refuses_when_scipy_internals_differ(monkeypatch):
    monkeypatch.delattr(_compressed._cs_matrix, "_matmul_sparse")
    with pytest.warns(AccelerateWarning, match="_matmul_sparse is missing"):
        state = sparsecore.accelerate()
    assert not state.enabled
    assert _compressed._cs_matrix.__dict__["_matmul_vector"] is ORIGINALS["_matmul_vector"]
    assert _compressed._cs_matrix.__dict__["_matmul_multivector"] is \
        ORIGINALS["_matmul_multivector"]


def test_refuses_untested_scipy_version(monkeypatch):
    monkeypatch.setattr(scipy, "__version__", "1.99.0")
    with pytest.warns(AccelerateWarning, match="1.99.0"):
        with sparsecore.accelerate() as state:
            assert not state.enabled and _is_original()
    assert issubclass(AccelerateWarning, RuntimeWarning)


def test_threads_switching_while_multiplying(rng):
    A = _random(sp.csr_array, (200, 200), 0.05, np.float64, rng)
    x = rng.standard_normal(200)
    D, y = A @ A, A @ x
    errors = []

    def worker(k):
        try:
            for i in range(30):
                if k % 2:
                    with sparsecore.accelerate(min_flops=0):
                        C, z = A @ A, A @ x
                else:
                    C, z = A @ A, A @ x
                np.testing.assert_array_equal(C.toarray(), D.toarray())
                np.testing.assert_allclose(z, y, rtol=1e-12, atol=1e-12)
        except Exception as exc:   # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    sparsecore.accelerate(False)
    assert _is_original()


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, sparsecore; bad = [m for m in ('sklearn', 'torch', 'pytest') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_no_warning_on_supported_scipy():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with sparsecore.accelerate() as state:
            assert state.enabled


def test_bench_workload_gives_scipys_result():
    pytest.importorskip("sklearn")
    from sparsecore._bench.accelerate import build_workload

    _, flops, fn = build_workload("knn digits G@G")
    assert flops > 0
    D = fn()
    with sparsecore.accelerate(min_flops=0):
        C = fn()
    _assert_same_sparse(C, D)


def test_multiply_estimate(rng):
    # exact up to the sample size, within 10 % above it on uniform rows
    for n, density in [(40, 0.2), (3000, 0.003)]:
        A = _random(sp.csr_array, (n, n), density, np.float64, rng)
        exact = int(np.diff(A.indptr)[A.indices].sum())
        est = _accelerate._estimate_mults(A.indices, A.nnz, A.indptr)
        if A.nnz <= _accelerate._SAMPLE:
            assert est == exact
        else:
            assert abs(est - exact) <= 0.1 * exact
    assert _accelerate._estimate_mults(np.zeros(0, np.int32), 0, np.zeros(1, np.int32)) == 0
