"""Shared pieces of the semiring SpGEMM tests: a dense evaluation of every
semiring over the stored patterns, random operands and result checks."""
import numpy as np
import scipy.sparse as sp

from helpers import SEMIRING_OPS

RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def dense_semiring(A, B, name, mask=None, complement=False):
    """(values, present) of the product over the stored patterns."""
    A = sp.csr_array(A)
    B = sp.csr_array(B)
    A.sum_duplicates()
    B.sum_duplicates()
    Ad, Bd = A.toarray(), B.toarray()
    PA = sp.csr_array((np.ones(A.nnz, bool), A.indices, A.indptr), shape=A.shape).toarray()
    PB = sp.csr_array((np.ones(B.nnz, bool), B.indices, B.indptr), shape=B.shape).toarray()
    add, ident, mul = SEMIRING_OPS[name]
    prod = mul(Ad[:, :, None], Bd[None, :, :])
    valid = PA[:, :, None] & PB[None, :, :]
    vals = add.reduce(np.where(valid, prod, ident), axis=1, initial=ident)
    present = valid.any(axis=1)
    if mask is not None:
        pm = sp.csr_array(mask).toarray() != 0
        pm |= sp.csr_array((np.ones(sp.csr_array(mask).nnz), sp.csr_array(mask).indices,
                            sp.csr_array(mask).indptr), shape=mask.shape).toarray() != 0
        present &= ~pm if complement else pm
    if name == "plus_times":
        present &= vals != 0
    return vals, present


def assert_matches(C, vals, present, name, dtype=np.float64):
    assert isinstance(C, sp.csr_array)
    assert C.has_canonical_format
    C2 = C.copy()
    C2.has_canonical_format = False
    C2.sort_indices()
    np.testing.assert_array_equal(C2.indices, C.indices)
    got_present = np.zeros(C.shape, bool)
    rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
    got_present[rows, C.indices] = True
    np.testing.assert_array_equal(got_present, present)
    got = C.toarray()
    if name in ("min_plus", "max_plus", "max_times", "min_times", "lor_land", "plus_pair"):
        np.testing.assert_array_equal(got[present], vals[present])
    else:
        np.testing.assert_allclose(got[present], vals[present], rtol=RTOL[dtype], atol=1e-12)


def rand(m, n, density, seed, dtype=np.float64, fmt="csr", negative=True):
    rng = np.random.default_rng(seed)
    X = sp.random_array((m, n), density=density, format=fmt, rng=rng, dtype=np.float64)
    X.data = (rng.standard_normal(X.nnz) if negative else rng.random(X.nnz) + 0.5)
    return X.astype(dtype)


def lower_pattern(G):
    G = sp.csr_array(G)
    G = ((G + G.T) != 0).astype(np.float64)
    G.setdiag(0)
    G.eliminate_zeros()
    return sp.tril(G, k=-1, format="csr")
