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
