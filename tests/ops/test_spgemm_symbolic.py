"""spgemm_symbolic: multiplies and exact nonzeros per row block, against the
row pointers of the product and the direct flop formula (integers: exact)."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsecore import datasets, spgemm
from sparsecore.ops import SymbolicProduct, spgemm_symbolic
from helpers import SHARED, requires_shared


def direct_flops(A, B):
    """Multiplies of each row of A @ B: sum over A's entries of B's row lengths."""
    A = sp.csr_array(A)
    blen = np.diff(sp.csr_array(B).indptr)
    per_entry = blen[A.indices]
    return np.array([per_entry[A.indptr[i]:A.indptr[i + 1]].sum() for i in range(A.shape[0])],
                    dtype=np.int64)


def structural_nnz(A, B):
    """Nonzeros of the pattern product (ones times ones: nothing cancels)."""
    A, B = sp.csr_array(A), sp.csr_array(B)
    P = sp.csr_array((np.ones(A.indices.size), A.indices, A.indptr), shape=A.shape)
    Q = sp.csr_array((np.ones(B.indices.size), B.indices, B.indptr), shape=B.shape)
    return np.diff(sp.csr_array(P @ Q).indptr)


@pytest.mark.parametrize("name", ["olm1000", "bcspwr10", "young1c", "n1024-l1"])
def test_rows_match_the_product(name):
    A = datasets.load_matrix(name)
    s = spgemm_symbolic(A, A)
    assert isinstance(s, SymbolicProduct) and s.shape == A.shape
    np.testing.assert_array_equal(s.row_bounds, np.arange(A.shape[0] + 1))
    np.testing.assert_array_equal(s.flops, direct_flops(A, A))
    np.testing.assert_array_equal(s.nnz, structural_nnz(A, A))
    # no cancellation in these products: the numeric pass keeps every entry
    np.testing.assert_array_equal(s.nnz, np.diff(spgemm(A, A).indptr))


@requires_shared
def test_real_rectangular_product():
    A = datasets.read_matrix_market(SHARED / "rajat01.mtx")
    At = sp.csr_array(A.T)
    s = spgemm_symbolic(A, At, row_bounds=[0, 7, 7, A.shape[0]])
    full = structural_nnz(A, At)
    np.testing.assert_array_equal(s.nnz, [full[:7].sum(), 0, full[7:].sum()])
    assert s.total_flops == direct_flops(A, At).sum()


def test_row_blocks_sum_rows_and_threads_agree():
    A = datasets.make_rmat(11)
    cuts = [0, 1, 500, 500, 2048]
    s1 = spgemm_symbolic(A, A, row_bounds=cuts, n_threads=1)
    s2 = spgemm_symbolic(A, A, row_bounds=np.array(cuts, dtype=np.int32), n_threads=2)
    rows = spgemm_symbolic(A, A)
    for s in (s1, s2):
        np.testing.assert_array_equal(s.flops, np.add.reduceat(rows.flops, cuts[:-1]) * (np.diff(cuts) > 0))
        np.testing.assert_array_equal(s.nnz, np.add.reduceat(rows.nnz, cuts[:-1]) * (np.diff(cuts) > 0))
    assert s1.total_nnz == spgemm(A, A).nnz
    assert s1.csr_bytes(np.float64) == s1.total_nnz * 12 + (2048 + 1) * 4


def test_unsorted_duplicates_int64_and_other_formats():
    rng = np.random.default_rng(0)
    r, c = rng.integers(0, 30, 200), rng.integers(0, 40, 200)
    A = sp.coo_array((np.ones(200), (r, c)), shape=(30, 40))  # duplicates
    B = sp.random_array((40, 25), density=0.2, format="csr", rng=1)
    B.indices = B.indices.astype(np.int64)
    B.indptr = B.indptr.astype(np.int64)
    Bu = B.copy()  # the same rows with their columns in reverse order
    for i in range(Bu.shape[0]):
        lo, hi = Bu.indptr[i], Bu.indptr[i + 1]
        Bu.indices[lo:hi] = Bu.indices[lo:hi][::-1].copy()
        Bu.data[lo:hi] = Bu.data[lo:hi][::-1].copy()
    Bu.has_sorted_indices = False
    s = spgemm_symbolic(A, B)
    su = spgemm_symbolic(A, Bu)
    np.testing.assert_array_equal(s.nnz, su.nnz)
    np.testing.assert_array_equal(s.flops, su.flops)
    Acsr = sp.csr_array(A)
    Acsr.sum_duplicates()
    np.testing.assert_array_equal(s.nnz, structural_nnz(Acsr, B))
    # duplicates of A count once per stored entry in the multiplies
    np.testing.assert_array_equal(s.flops, direct_flops(A.tocsr(), B))


def test_edge_shapes():
    Z = sp.csr_array((0, 5))
    s = spgemm_symbolic(Z, sp.csr_array((5, 3)))
    assert s.shape == (0, 3) and s.flops.size == 0 and s.total_nnz == 0
    s = spgemm_symbolic(sp.csr_array((4, 0)), sp.csr_array((0, 6)))
    np.testing.assert_array_equal(s.nnz, np.zeros(4))
    one = sp.csr_array(np.array([[2.0]]))
    s = spgemm_symbolic(one, one)
    assert s.total_flops == 1 and s.total_nnz == 1
    s = spgemm_symbolic(sp.csr_array((3, 3)), sp.csr_array((3, 3)), row_bounds=[0, 3])
    assert s.total_nnz == 0


def test_errors_and_inputs_unchanged():
    A = sp.random_array((10, 8), density=0.3, format="csr", rng=0)
    before = (A.indptr.copy(), A.indices.copy(), A.data.copy())
    with pytest.raises(ValueError, match="dimension mismatch"):
        spgemm_symbolic(A, A)
    with pytest.raises(TypeError, match="scipy.sparse"):
        spgemm_symbolic(A.toarray(), A.T)
    with pytest.raises(ValueError, match="row_bounds must rise from 0"):
        spgemm_symbolic(A, A.T, row_bounds=[0, 5, 4, 10])
    with pytest.raises(ValueError, match="row_bounds must rise from 0"):
        spgemm_symbolic(A, A.T, row_bounds=[0, 9])
    with pytest.raises(ValueError, match="1-D sequence of integer"):
        spgemm_symbolic(A, A.T, row_bounds=[0.0, 10.0])
    with pytest.raises(ValueError, match="n_threads=0"):
        spgemm_symbolic(A, A.T, n_threads=0)
    for x, y in zip(before, (A.indptr, A.indices, A.data)):
        np.testing.assert_array_equal(x, y)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(0, 30), k=st.integers(0, 30), n=st.integers(0, 60),
       density=st.floats(0, 0.5), seed=st.integers(0, 2**16))
def test_property_matches_pattern_product(m, k, n, density, seed):
    A = sp.random_array((m, k), density=density, format="csr", rng=seed)
    B = sp.random_array((k, n), density=density, format="csr", rng=seed + 1)
    s = spgemm_symbolic(A, B)
    np.testing.assert_array_equal(s.nnz, structural_nnz(A, B) if m else np.zeros(0))
    np.testing.assert_array_equal(s.flops, direct_flops(A, B))
