import numpy as np
import pytest
import scipy.sparse as sp

from sparsecore import datasets


@pytest.mark.parametrize("name", sorted(datasets.list_matrices()))
def test_shipped_matrices_load_as_canonical_csr(name):
    A = datasets.load_matrix(name)
    assert isinstance(A, sp.csr_array)
    assert A.has_canonical_format
    assert A.nnz > 0
    if name == "young1c":
        assert np.iscomplexobj(A.data)


def test_symmetric_files_are_expanded():
    A = datasets.load_matrix("dwt_992")  # pattern, symmetric
    assert (A != A.T).nnz == 0
    assert np.all(A.data == 1.0)
    assert A.nnz == 2 * 8868 - 992  # both triangles, diagonal once


def test_unknown_matrix():
    with pytest.raises(ValueError, match="shipped matrices"):
        datasets.load_matrix("nope")


def test_generators_are_deterministic_and_shaped():
    A = datasets.make_rmat(8, seed=3)
    B = datasets.make_rmat(8, seed=3)
    assert A.shape == (256, 256)
    assert (A != B).nnz == 0
    L = datasets.make_laplacian((4, 5))
    assert L.shape == (20, 20)
    assert L.diagonal().max() == 4.0
    L27 = datasets.make_laplacian((3, 3, 3), stencil=27)
    assert L27[13].nnz == 27  # the centre point touches all 27
    with pytest.raises(ValueError, match="stencil"):
        datasets.make_laplacian((3, 3), stencil=27)
    E = datasets.make_erdos_renyi(100, 5, n_cols=50)
    assert E.shape == (100, 50) and E.has_canonical_format


def test_make_powerlaw_has_heavy_tailed_degrees():
    A = datasets.make_powerlaw(20_000, 4, seed=1)
    deg = np.diff(A.indptr)
    assert A.shape == (20_000, 20_000) and A.has_canonical_format
    assert np.all((A.data >= 0.5) & (A.data < 1.5))
    # a power law has hubs far above the mean; Erdos-Renyi with the same
    # mean degree has none above a few times the mean
    assert deg.max() > 50 * deg.mean()
    er_deg = np.diff(datasets.make_erdos_renyi(20_000, 4, seed=1).indptr)
    assert er_deg.max() < 5 * er_deg.mean()
    B = datasets.make_powerlaw(20_000, 4, seed=1)
    assert (A != B).nnz == 0


def test_make_powerlaw_rejects_exponent_at_most_two():
    with pytest.raises(ValueError, match="exponent"):
        datasets.make_powerlaw(100, 3, exponent=2.0)
    with pytest.raises(ValueError, match="avg_degree"):
        datasets.make_powerlaw(100, 0)
    with pytest.raises(TypeError, match="n"):
        datasets.make_powerlaw(100.5, 3)


def test_make_banded_rejects_bad_sizes():
    with pytest.raises(ValueError, match="bandwidth"):
        datasets.make_banded(100, -1, 3)
    with pytest.raises(ValueError, match="per_row"):
        datasets.make_banded(100, 5, 0)


def test_make_banded_stays_in_band():
    A = datasets.make_banded(5000, 30, 7, seed=2).tocoo()
    assert A.shape == (5000, 5000)
    assert np.abs(A.row - A.col).max() <= 30
    assert 6 <= A.nnz / 5000 <= 7


@pytest.mark.parametrize("density", [1.0, 0.05, 1e-3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_make_sparse_linear(density, dtype):
    X, y, coef = datasets.make_sparse_linear(300, 120, density=density, n_informative=7,
                                             dtype=dtype, seed=4)
    assert X.shape == (300, 120) and X.dtype == dtype
    assert y.shape == (300,) and y.dtype == np.float64
    assert np.count_nonzero(coef) == 7
    if density == 1.0:
        assert isinstance(X, np.ndarray) and X.flags.f_contiguous
        # neighbouring features correlated rho = 0.5 (AR(1)), distant ones not
        C = np.corrcoef(X, rowvar=False)
        assert abs(np.mean(np.diag(C, 1)) - 0.5) < 0.05
        assert abs(np.mean(np.diag(C, 10))) < 0.05
    else:
        assert isinstance(X, sp.csc_array) and X.has_canonical_format
        assert X.nnz == round(density * 300 * 120)
        assert X.indices.dtype == np.int32
    # y = X coef + noise at SNR 10 (a direct formula)
    z = np.asarray(X @ coef, dtype=np.float64)
    if np.std(z) > 0:
        assert np.std(y - z) == pytest.approx(np.std(z) / 10, rel=0.25)
    X2, y2, c2 = datasets.make_sparse_linear(300, 120, density=density, n_informative=7,
                                             dtype=dtype, seed=4)
    assert np.array_equal(y, y2) and np.array_equal(coef, c2)


def test_make_sparse_linear_options():
    X, y, coef = datasets.make_sparse_linear(200, 50, task="classification", intercept=0.5,
                                             nonnegative=True, seed=1)
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert X.min() >= 0
    X, y, coef = datasets.make_sparse_linear(5, 3, n_informative=0, density=0.5)
    assert not np.any(coef) and X.shape == (5, 3)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(n_samples=0), ValueError, "n_samples"),
    (dict(n_samples=2.0), TypeError, "n_samples"),
    (dict(n_informative=60), ValueError, "n_informative"),
    (dict(density=0.0), ValueError, "density"),
    (dict(density=1.5), ValueError, "density"),
    (dict(task="ranking"), ValueError, "task"),
    (dict(snr=0.0), ValueError, "snr"),
    (dict(rho=1.0), ValueError, "rho"),
    (dict(dtype=np.int32), TypeError, "dtype"),
])
def test_make_sparse_linear_errors(kwargs, exc, match):
    args = dict(n_samples=20, n_features=50)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        datasets.make_sparse_linear(args.pop("n_samples"), args.pop("n_features"), **args)
