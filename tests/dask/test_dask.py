"""sparsecore.dask: CSR dask arrays, SpGEMM and SpMM on the threaded scheduler
and on a LocalCluster of two worker processes started here.

References: :func:`sparsecore.spgemm` on one machine (the broadcast strategy
must equal it to the last bit; the 2-D strategy sums partial products in
another order, so float64 results agree to rtol 1e-12 and float32 to 1e-5,
with the same structure when nothing cancels), scipy's product for SpMM
(float64 rtol 1e-12, float32 1e-5), and scipy's Matrix Market reader.
"""
import os
import signal
import time
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import dask.array as da  # noqa: E402

import sparsecore  # noqa: E402
from sparsecore import datasets  # noqa: E402
from sparsecore.dask import (  # noqa: E402
    SpGEMMPlan,
    cluster_resources,
    from_row_blocks,
    from_scipy,
    plan_spgemm,
    read_matrix_market,
    spgemm,
    spmm,
    task_threads,
)
from sparsecore.dask import _resources, _spmm  # noqa: E402
from helpers import SHARED, SHARED_MATRICES, requires_shared  # noqa: E402

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.complex64): 1e-5}
REAL = [n for n in SHARED_MATRICES if n != "arrow"]  # arrow's square is the MemoryError case


@pytest.fixture
def threads():
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=40,
    ) as cl, distributed.Client(cl, set_as_default=False, timeout="60s") as client:
        yield client


@pytest.fixture
def client(cluster):
    with dask.config.set(scheduler=cluster):
        yield cluster


def assert_csr_equal(C, R):
    """C (computed) is a canonical csr_array equal to R to the last bit."""
    assert isinstance(C, sp.csr_array)
    assert C.shape == R.shape and C.dtype == R.dtype
    assert C.has_canonical_format
    np.testing.assert_array_equal(C.indptr, R.indptr)
    np.testing.assert_array_equal(C.indices, R.indices)
    np.testing.assert_array_equal(C.data, R.data)


def assert_product_close(C, A, B):
    """C (a 2-D product: partial sums added in another order) is a canonical
    csr_array within rounding of A @ B: entrywise |C - R| <= rtol (|A| @ |B|),
    the bound of a reordered sum. Entries that cancel to exactly zero in one
    order may be tiny in another, so structures are not compared."""
    R = sparsecore.spgemm(A, B)
    assert isinstance(C, sp.csr_array)
    assert C.shape == R.shape and C.dtype == R.dtype
    assert C.has_canonical_format
    bound = abs(sp.csr_array(A)) @ abs(sp.csr_array(B))
    excess = abs(C - R) - RTOL.get(R.dtype, 1e-12) * bound
    assert excess.nnz == 0 or excess.max() <= 0


def chunk_nnz(X):
    """Nonzeros of every chunk of a dask array of CSR chunks."""
    return X.map_blocks(lambda b: np.array([[b.nnz]]), dtype=np.int64,
                        chunks=(1, 1)).compute()


def assert_canonical_chunks(X):
    def check(b):
        assert isinstance(b, sp.csr_array) and b.has_canonical_format
        return np.zeros((1, 1))
    X.map_blocks(check, dtype=float, chunks=(1, 1)).compute()


def load_real(name):
    """(A, A) for a square matrix, (A, A.T) for a rectangular one."""
    A = datasets.read_matrix_market(SHARED / f"{name}.mtx")
    return (A, A) if A.shape[0] == A.shape[1] else (A, sp.csr_array(A.T))


# ---- building CSR dask arrays -------------------------------------------

def test_from_scipy_chunkings(threads):
    S = datasets.make_rmat(9)
    for chunks in [(100, 77), ((512,), (200, 312)), 128, (-1, -1), None, "auto"]:
        X = from_scipy(S, chunks=chunks)
        assert isinstance(X._meta, sp.csr_array) and X.dtype == S.dtype
        assert_canonical_chunks(X)
        assert_csr_equal(X.compute(), S)
    assert from_scipy(S, chunks=(100, 77)).chunks == ((100,) * 5 + (12,), (77,) * 6 + (50,))


def test_from_scipy_default_balances_nonzeros(threads):
    rng = np.random.default_rng(0)
    dense_rows = sp.random_array((100, 5000), density=0.5, format="csr", rng=0)
    S = sp.vstack([dense_rows, sp.random_array((20000, 5000), density=1e-4, rng=1)], format="csr")
    with dask.config.set({"array.chunk-size": "600KiB"}):
        X = from_scipy(S)
    assert len(X.chunks[1]) == 1 and len(X.chunks[0]) > 2
    nnz = chunk_nnz(X).ravel()
    assert nnz.max() < 2.5 * S.nnz / len(nnz)  # balanced by nonzeros, not rows
    assert X.chunks[0][0] < 100  # the dense rows are split
    assert_csr_equal(X.compute(), S)
    del rng


def test_from_scipy_other_formats_are_not_modified(threads):
    rng = np.random.default_rng(1)
    r, c = rng.integers(0, 20, 100), rng.integers(0, 30, 100)
    S = sp.coo_array((rng.standard_normal(100), (r, c)), shape=(20, 30))  # duplicates
    snap = (S.row.copy(), S.col.copy(), S.data.copy())
    X = from_scipy(S, chunks=(7, 11))
    R = sp.csr_array(S)
    R.sum_duplicates()
    assert_csr_equal(X.compute(), R)
    for a, b in zip(snap, (S.row, S.col, S.data)):
        np.testing.assert_array_equal(a, b)
    M = sp.csr_matrix(R)
    assert_csr_equal(from_scipy(M, chunks=5).compute(), R)


def test_from_scipy_empty_and_errors(threads):
    for shape in [(0, 5), (4, 0), (0, 0)]:
        X = from_scipy(sp.csr_array(shape), chunks=3)
        assert X.compute().shape == shape
    Z = from_scipy(sp.csr_array((6, 7)), chunks=(2, 3))
    assert Z.compute().nnz == 0
    with pytest.raises(TypeError, match="scipy.sparse"):
        from_scipy(np.eye(3))
    with pytest.raises(TypeError, match="already a dask array"):
        from_scipy(Z)
    with pytest.raises(TypeError, match="numeric"):
        from_scipy(sp.csr_array(np.eye(3, dtype=bool)))


def test_from_row_blocks_concrete_and_delayed(threads):
    S = datasets.make_erdos_renyi(1000, 5, n_cols=700)
    cuts = [0, 0, 333, 334, 1000]
    blocks = [S[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    X = from_row_blocks(blocks)
    assert X.chunks == ((0, 333, 1, 666), (700,))
    assert_csr_equal(X.compute(), S)
    lazy = [dask.delayed(lambda a, b: sp.coo_array(S[a:b]))(a, b)
            for a, b in zip(cuts[:-1], cuts[1:])]
    Y = from_row_blocks(lazy, rows=np.diff(cuts).tolist(), n_cols=700, dtype=np.float64)
    assert_csr_equal(Y.compute(), S)
    # mixed: a concrete block gives the width
    Z = from_row_blocks([blocks[1], lazy[2]], rows=[333, 1], dtype=np.float32)
    assert Z.dtype == np.float32 and Z.compute().dtype == np.float32


def test_from_row_blocks_errors(threads):
    S = sp.random_array((10, 6), density=0.3, format="csr", rng=0)
    lazy = dask.delayed(lambda: S)()
    with pytest.raises(ValueError, match="must be given when a block is"):
        from_row_blocks([lazy])
    with pytest.raises(ValueError, match="same number of columns"):
        from_row_blocks([S, sp.csr_array((3, 5))])
    with pytest.raises(ValueError, match="at least one row block"):
        from_row_blocks([])
    with pytest.raises(ValueError, match=r"rows\[0\] = 9"):
        from_row_blocks([S], rows=[9])
    with pytest.raises(TypeError, match=r"blocks\[1\]"):
        from_row_blocks([S, np.ones((2, 6))])
    X = from_row_blocks([lazy], rows=[9], n_cols=6, dtype=float)  # wrong declared shape
    with pytest.raises(ValueError, match="row block 0 has shape"):
        X.compute()


@requires_shared
@pytest.mark.parametrize("name", SHARED_MATRICES)
def test_read_matrix_market_by_byte_ranges(name, threads):
    path = SHARED / f"{name}.mtx"
    R = datasets.read_matrix_market(path)
    X = read_matrix_market(path, blocksize=40_000)
    assert X.dtype == R.dtype and X.shape == R.shape
    assert_canonical_chunks(X)
    assert_csr_equal(X.compute(), R)


@requires_shared
def test_read_matrix_market_row_chunks_and_file_lists(tmp_path, threads):
    R = datasets.read_matrix_market(SHARED / "bcsstk13.mtx")  # symmetric
    X = read_matrix_market(SHARED / "bcsstk13.mtx", chunks=500, blocksize="100KiB")
    assert X.chunks[0][:3] == (500, 500, 500)
    assert_csr_equal(X.compute(), R)
    X = read_matrix_market(SHARED / "bcsstk13.mtx", chunks=(1000, 1003))
    assert_csr_equal(X.compute(), R)
    paths = []
    for b, (lo, hi) in enumerate([(0, 700), (700, 701), (701, 2003)]):
        p = tmp_path / f"block{b}.mtx"
        scipy.io.mmwrite(p, sp.coo_array(R[lo:hi]))
        paths.append(p)
    Y = read_matrix_market(paths)
    assert Y.chunks == ((700, 1, 1302), (2003,))
    assert_csr_equal(Y.compute(), R)
    with pytest.raises(ValueError, match="add up to"):
        read_matrix_market(SHARED / "bcsstk13.mtx", chunks=(5, 5))


@pytest.mark.parametrize("symmetry,field", [
    ("general", "integer"), ("symmetric", "real"), ("skew-symmetric", "real"),
    ("hermitian", "complex"), ("general", "pattern")])
def test_read_matrix_market_symmetries(tmp_path, symmetry, field, threads):
    rng = np.random.default_rng(3)
    n = 60
    M = sp.random_array((n, n), density=0.1, format="coo", rng=4)
    if field == "integer":
        M = sp.coo_array((rng.integers(-9, 9, M.nnz), (M.row, M.col)), shape=(n, n))
    if field == "complex":
        M = sp.coo_array((M.data + 1j * rng.standard_normal(M.nnz), (M.row, M.col)), shape=(n, n))
    if symmetry == "symmetric":
        M = sp.coo_array(M + M.T)
    elif symmetry == "skew-symmetric":
        M = sp.coo_array(M - M.T)
    elif symmetry == "hermitian":
        M = sp.coo_array(M + M.conj().T)
    path = tmp_path / "m.mtx"
    scipy.io.mmwrite(path, M, symmetry=symmetry, field=field)
    R = datasets.read_matrix_market(path)
    X = read_matrix_market(path, blocksize=300, chunks=7)
    assert X.dtype == R.dtype
    assert_csr_equal(X.compute(), R)


def test_read_matrix_market_compressed_and_errors(tmp_path, threads):
    from importlib import resources

    ref = resources.files("sparsecore.datasets") / "data" / "olm1000.mtx.gz"
    with resources.as_file(ref) as path:
        X = read_matrix_market(path, chunks=300)
        assert X.chunks[0] == (300, 300, 300, 100)
        assert_csr_equal(X.compute(), datasets.load_matrix("olm1000"))
    bad = tmp_path / "bad.mtx"
    bad.write_text("hello\n1 2 3\n")
    with pytest.raises(ValueError, match="not a Matrix Market"):
        read_matrix_market(bad)
    with pytest.raises(ValueError, match="blocksize must be positive"):
        read_matrix_market(SHARED / "olm1000.mtx" if SHARED else bad, blocksize=0)


# ---- SpGEMM, threaded scheduler -------------------------------------------

@requires_shared
@pytest.mark.parametrize("name", REAL)
def test_spgemm_real_matrices_threaded(name, threads):
    A, B = load_real(name)
    R = sparsecore.spgemm(A, B)
    m, k = A.shape
    X = from_scipy(A, chunks=(m // 3 + 1, k // 2 + 3))  # does not divide
    Y = from_scipy(B, chunks=(k // 4 + 5, -1))
    C = spgemm(X, Y, strategy="broadcast")
    assert_csr_equal(C.compute(), R)
    C = spgemm(X, Y, strategy="2d")
    assert_product_close(C.compute(), A, B)


@pytest.mark.parametrize("make", [
    lambda: datasets.make_rmat(11),
    lambda: datasets.make_laplacian((12, 13, 14)),
    lambda: datasets.make_laplacian((40, 45)),
])
def test_spgemm_generated_threaded(make, threads):
    A = make()
    R = sparsecore.spgemm(A, A)
    for ca, cb in [((500, 700), (333, -1)), ((-1, 257), (257, 1000)), (700, 300)]:
        X, Y = from_scipy(A, chunks=ca), from_scipy(A, chunks=cb)
        Cb = spgemm(X, Y, strategy="broadcast", chunk_bytes="256KiB")
        assert_canonical_chunks(Cb)
        assert Cb.chunks[1] == Y.chunks[1]
        assert_csr_equal(Cb.compute(), R)
        C2 = spgemm(X, Y, strategy="2d")
        assert_product_close(C2.compute(), A, A)


def test_plan_sizes_chunks_from_exact_nonzeros(threads):
    A = datasets.make_rmat(11)
    R = sparsecore.spgemm(A, A)
    X = from_scipy(A, chunks=(600, -1))
    plan = plan_spgemm(X, X, strategy="broadcast", chunk_bytes="100KiB")
    assert isinstance(plan, SpGEMMPlan) and plan.nnz_exact
    assert plan.nnz == R.nnz
    assert plan.flops == sparsecore.ops.spgemm_symbolic(A, A).total_flops
    C = spgemm(X, X, plan=plan)
    assert C.chunks[0] == plan.row_chunks and sum(plan.row_chunks) == A.shape[0]
    counts = chunk_nnz(C)
    np.testing.assert_array_equal(counts, plan.chunk_nnz)  # exact, chunk by chunk
    # output chunks were cut to about chunk_bytes (a chunk exceeds it only
    # when one row group alone does)
    assert len(plan.row_chunks) > 10
    assert np.median(counts * 12) <= 100 * 1024
    assert plan.result_bytes == sum(c * 12 + (r + 1) * 4 for c, r in zip(counts.ravel(), plan.row_chunks))
    assert "exact" in plan.summary()
    assert_csr_equal(C.compute(), R)
    # 2-D: an upper bound, never below the truth
    Y = from_scipy(A, chunks=(300, 1000))
    plan2 = plan_spgemm(X, Y, strategy="2d")
    assert not plan2.nnz_exact and plan2.nnz >= R.nnz
    assert (plan2.chunk_nnz >= chunk_nnz(spgemm(X, Y, plan=plan2))).all()


def test_strategy_auto_broadcasts_small_b(threads):
    A = datasets.make_rmat(10)
    X = from_scipy(A, chunks=300)
    assert plan_spgemm(X, X).strategy == "broadcast"
    assert plan_spgemm(X, X, broadcast_bytes=1000).strategy == "2d"
    assert plan_spgemm(X, X, broadcast_bytes="1MiB").strategy == "broadcast"


def test_spgemm_empty_chunks_and_shapes(threads):
    # block diagonal: most partial products of the 2-D strategy are empty
    blocks = [sp.random_array((50, 50), density=0.2, format="csr", rng=i) for i in range(4)]
    A = sp.csr_array(sp.block_diag(blocks))
    R = sparsecore.spgemm(A, A)
    X = from_scipy(A, chunks=50)
    plan = plan_spgemm(X, X, strategy="2d")
    # only the diagonal blocks multiply: one task per output row block
    assert plan.n_multiplies == len(plan.row_chunks)
    C = spgemm(X, X, plan=plan)
    assert_csr_equal(C.compute(), R)  # one term per chunk: no reordered sums
    nnz = chunk_nnz(C)
    block_of_row = np.repeat(np.arange(4), 50)[np.cumsum((0,) + plan.row_chunks[:-1])]
    off_diagonal = block_of_row[:, None] != np.arange(4)[None, :]
    assert (nnz[off_diagonal] == 0).all() and (nnz[~off_diagonal] > 0).all()
    # zero-row chunks, an all-zero operand, empty shapes
    X = from_row_blocks([A[:0], A[:100], A[100:100], A[100:]])
    assert_csr_equal(spgemm(X, from_scipy(A, chunks=70)).compute(), R)
    Z = from_scipy(sp.csr_array((200, 200)), chunks=60)
    assert spgemm(Z, X).compute().nnz == 0
    E = spgemm(from_scipy(sp.csr_array((0, 5))), from_scipy(sp.csr_array((5, 3)))).compute()
    assert E.shape == (0, 3)
    E = spgemm(from_scipy(sp.csr_array((4, 0))), from_scipy(sp.csr_array((0, 6)))).compute()
    assert E.shape == (4, 6) and E.nnz == 0


@pytest.mark.parametrize("da_, db_", [
    (np.float32, np.float32), (np.float32, np.float64), (np.complex128, np.float64),
    (np.int64, np.int64), (np.int32, np.float32)])
def test_spgemm_dtypes(da_, db_, threads):
    rng = np.random.default_rng(5)
    def make(shape, seed, dt):
        M = sp.random_array(shape, density=0.1, format="csr", rng=seed)
        vals = rng.integers(-5, 6, M.nnz) if np.dtype(dt).kind in "iu" else M.data
        if np.dtype(dt).kind == "c":
            vals = vals + 1j * rng.standard_normal(M.nnz)
        return sp.csr_array((vals.astype(dt), M.indices, M.indptr), shape=shape)
    A, B = make((90, 70), 0, da_), make((70, 80), 1, db_)
    R = sparsecore.spgemm(A, B)
    X, Y = from_scipy(A, chunks=(40, 30)), from_scipy(B, chunks=(25, 50))
    C = spgemm(X, Y, strategy="broadcast")
    assert C.dtype == R.dtype
    assert_csr_equal(C.compute(), R)
    C = spgemm(X, Y, strategy="2d").compute()
    if R.dtype.kind in "iu":
        assert_csr_equal(C, R)  # integer sums are exact in any order
    else:
        assert_product_close(C, A, B)


def test_spgemm_accepts_scipy_operands_and_reuses_a_plan(threads):
    A = datasets.make_erdos_renyi(800, 4)
    R = sparsecore.spgemm(A, A)
    assert_csr_equal(spgemm(A, A).compute(), R)
    X = from_scipy(A, chunks=200)
    plan = plan_spgemm(X, A)
    assert_csr_equal(spgemm(X, A, plan=plan).compute(), R)
    with pytest.raises(ValueError, match="other arrays"):
        spgemm(X, from_scipy(A, chunks=100), plan=plan)
    with pytest.raises(TypeError, match="pass strategy to plan_spgemm"):
        spgemm(X, A, plan=plan, strategy="2d")


def test_spgemm_errors_before_any_work(threads):
    A = from_scipy(sp.random_array((20, 10), density=0.3, format="csr", rng=0), chunks=5)
    with pytest.raises(ValueError, match="dimension mismatch"):
        spgemm(A, A)
    with pytest.raises(TypeError, match="numpy.ndarray chunks"):
        spgemm(A, da.ones((10, 4), chunks=5))
    with pytest.raises(TypeError, match="dask array of scipy.sparse chunks"):
        spgemm(A, np.ones((10, 4)))
    with pytest.raises(TypeError, match="bool"):
        spgemm(A, from_scipy(sp.csr_array(np.ones((10, 3), dtype=bool))))
    with pytest.raises(ValueError, match="strategy must be one of"):
        spgemm(A, from_scipy(sp.csr_array((10, 3))), strategy="1d")
    with pytest.raises(ValueError, match="split_every"):
        spgemm(A, A, split_every=1)
    with pytest.raises(ValueError, match="chunk_bytes"):
        plan_spgemm(A, from_scipy(sp.csr_array((10, 3))), chunk_bytes=-5)
    with pytest.raises(ValueError, match="n_threads=0"):
        plan_spgemm(A, from_scipy(sp.csr_array((10, 3))), n_threads=0)
    unknown = da.Array(A.dask, A.name, ((np.nan,) * 4, (5, 5)), meta=A._meta)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        spgemm(unknown, from_scipy(sp.csr_array((10, 3))))
    lying = A.map_blocks(lambda b: b.toarray(), meta=sp.csr_array((0, 0)))
    with pytest.raises(TypeError, match=r"A chunk \(\d+, \d+\) is a numpy.ndarray"):
        spgemm(lying, from_scipy(sp.csr_array((10, 3))))


def test_memory_limit_refuses_the_product(threads):
    A = datasets.make_rmat(10)
    X = from_scipy(A, chunks=256)
    plan = plan_spgemm(X, X)
    with pytest.raises(MemoryError, match=r"nonzeros \(exact, from the symbolic pass\)"):
        plan_spgemm(X, X, memory_limit=plan.needed_bytes - 1)
    with pytest.raises(MemoryError, match="upper bound"):
        spgemm(X, X, strategy="2d", memory_limit="100KiB")
    assert plan_spgemm(X, X, memory_limit=plan.needed_bytes).needed_bytes == plan.needed_bytes


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 60), k=st.integers(1, 60), n=st.integers(1, 60),
       density=st.floats(0, 0.4), seed=st.integers(0, 2**16),
       cm=st.integers(1, 25), ck=st.integers(1, 25), ck2=st.integers(1, 25), cn=st.integers(1, 70),
       strategy=st.sampled_from(["broadcast", "2d"]))
def test_property_equals_one_machine(m, k, n, density, seed, cm, ck, ck2, cn, strategy):
    A = sp.random_array((m, k), density=density, format="csr", rng=seed)
    B = sp.random_array((k, n), density=density, format="csr", rng=seed + 1)
    R = sparsecore.spgemm(A, B)
    with dask.config.set(scheduler="sync"):
        C = spgemm(from_scipy(A, chunks=(cm, ck)), from_scipy(B, chunks=(ck2, cn)),
                   strategy=strategy, chunk_bytes=200).compute()
    if strategy == "broadcast":
        assert_csr_equal(C, R)
    else:
        assert_product_close(C, A, B)


# ---- threads per task ----------------------------------------------------

def test_task_threads_from_worker_resources(monkeypatch):
    worker = SimpleNamespace(state=SimpleNamespace(nthreads=2, total_resources={"cores": 8}))
    monkeypatch.setattr(_resources, "current_worker", lambda: worker)
    assert task_threads() == 4
    worker.state.total_resources = {}
    assert task_threads() == 1
    assert task_threads(3) == 3
    monkeypatch.setattr(_resources, "current_worker", lambda: None)
    available = sparsecore._threads.effective_n_threads(None)
    with dask.config.set(scheduler="sync"):
        assert task_threads() == available
    with dask.config.set(scheduler="threads", num_workers=1):
        assert task_threads() == available
    with dask.config.set(scheduler="threads", num_workers=10 * available):
        assert task_threads() == 1
    with pytest.raises(ValueError, match="n_threads=0"):
        task_threads(0)


# ---- SpMM ----------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csr", "coo", "csc"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spmm_threaded(fmt, dtype, threads):
    rng = np.random.default_rng(7)
    S = sp.random_array((70, 90), density=0.1, format=fmt, rng=0, dtype=dtype)
    Xn = rng.standard_normal((90, 1000)).astype(dtype)
    X = da.from_array(Xn, chunks=(90, 300))
    Y = spmm(S, X)
    assert Y.chunks == ((70,), (300, 300, 300, 100)) and Y.dtype == dtype
    np.testing.assert_allclose(Y.compute(), S @ Xn, rtol=RTOL.get(np.dtype(dtype), 1e-12),
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def test_spmm_layouts_vectors_and_rechunking(threads):
    rng = np.random.default_rng(8)
    S = sp.random_array((40, 60), density=0.2, format="csr", rng=1)
    Xn = rng.standard_normal((60, 500))
    ref = S @ Xn
    np.testing.assert_allclose(spmm(S, da.from_array(Xn, chunks=(25, 128))).compute(), ref,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(spmm(S, Xn).compute(), ref, rtol=1e-12, atol=1e-12)
    # batch-major activations: spmm(S, X.T).T, F-ordered chunks
    Xb = da.from_array(np.ascontiguousarray(Xn.T), chunks=(100, 60))
    np.testing.assert_allclose(spmm(S, Xb.T).T.compute(), ref.T, rtol=1e-12, atol=1e-12)
    v = rng.standard_normal(60)
    y = spmm(S, da.from_array(v, chunks=20))
    assert y.shape == (40,)
    np.testing.assert_allclose(y.compute(), S @ v, rtol=1e-12, atol=1e-12)
    Z = spmm(sp.csr_array((40, 60)), da.zeros((60, 0), chunks=(60, 1)))
    assert Z.compute().shape == (40, 0)


def test_spmm_uses_the_format_matmul_and_the_ops_kernel(monkeypatch, threads):
    """Structured formats of other libraries plug in through ``@``; scipy and
    sparsecore formats go through sparsecore.ops.spmm."""
    class Diagonal:  # a minimal structured format
        def __init__(self, d):
            self.d, self.shape, self.dtype = d, (d.size, d.size), d.dtype
        def __matmul__(self, X):
            return self.d[:, None] * X
    rng = np.random.default_rng(9)
    D = Diagonal(rng.standard_normal(30))
    Xn = rng.standard_normal((30, 80))
    np.testing.assert_allclose(spmm(D, da.from_array(Xn, chunks=(30, 20))).compute(),
                               D.d[:, None] * Xn, rtol=1e-12, atol=1e-12)
    import sparsecore.ops
    calls = []
    def fake_kernel(S, X, n_threads=None):
        calls.append((type(S).__name__, X.shape, n_threads))
        return S @ X
    monkeypatch.setattr(sparsecore.ops, "spmm", fake_kernel)
    S = sp.random_array((30, 30), density=0.2, format="csr", rng=0)
    with dask.config.set(scheduler="sync"):
        spmm(S, da.from_array(Xn, chunks=(30, 20)), n_threads=1).compute()
    assert calls == [("csr_array", (30, 20), 1)] * 4


def test_spmm_dtypes_follow_the_kernel(threads):
    S = sp.random_array((5, 4), density=0.5, format="csr", rng=0, dtype=np.int64)
    X = da.ones((4, 6), chunks=(4, 3), dtype=np.int64)
    Y = spmm(S, X)
    assert Y.dtype == Y.compute().dtype == np.float64
    np.testing.assert_array_equal(Y.compute(), S.toarray() @ np.ones((4, 6)))
    with pytest.raises(TypeError, match="real values"):
        spmm(S.astype(np.complex128), X)
    with pytest.raises(TypeError, match="real values"):
        spmm(S, X.astype(np.complex64))


def test_spmm_errors(threads):
    S = sp.random_array((5, 6), density=0.5, format="csr", rng=0)
    with pytest.raises(ValueError, match="dimension mismatch"):
        spmm(S, da.ones((5, 3)))
    with pytest.raises(TypeError, match="in-memory sparse matrix"):
        spmm(from_scipy(S), da.ones((6, 3)))
    with pytest.raises(TypeError, match="scipy.sparse matrix or a sparsecore structured"):
        spmm(np.ones((5, 6)), da.ones((6, 3)))
    with pytest.raises(TypeError, match="dense numpy chunks"):
        spmm(S, from_scipy(sp.csr_array((6, 3))))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        spmm(S, da.ones((6, 2, 2)))
    with pytest.raises(TypeError, match="dask array"):
        spmm(S, [[1.0]] * 6)


# ---- on a LocalCluster of two worker processes ---------------------------

def test_cluster_resources_and_threads(client):
    res = cluster_resources()
    assert res.kind == "distributed" and res.n_workers == 2 and res.threads == 2
    assert all(m > 0 for m in res.worker_memory)
    # one kernel thread per task: each worker runs one task at a time
    assert set(client.run(task_threads).values()) == {1}
    assert client.submit(task_threads, pure=False).result() == 1


@requires_shared
@pytest.mark.parametrize("name", ["cryg2500", "bcsstk13", "rajat01", "sparse-images-1024_subset"])
def test_spgemm_real_matrices_on_the_cluster(name, client):
    A, B = load_real(name)
    R = sparsecore.spgemm(A, B)
    m, k = A.shape
    X = from_scipy(A, chunks=(m // 5 + 1, k // 2 + 1))
    Y = from_scipy(B, chunks=(k // 2 + 1, -1))
    plan = plan_spgemm(X, Y, chunk_bytes="1MiB")
    assert plan.strategy == "broadcast" and plan.resources.kind == "distributed"
    assert_csr_equal(spgemm(X, Y, plan=plan).compute(), R)
    C = spgemm(X, from_scipy(B, chunks=(k // 3 + 7, -1)), strategy="2d")
    assert_product_close(C.compute(), A, B)


def test_spgemm_generated_on_the_cluster(client):
    A = datasets.make_rmat(12)
    L = datasets.make_laplacian((16, 16, 16), stencil=27)
    for M, ca in [(A, (1000, 1500)), (L, (1000, -1))]:
        R = sparsecore.spgemm(M, M)
        X = from_scipy(M, chunks=ca)
        assert_csr_equal(spgemm(X, X, chunk_bytes="2MiB").compute(), R)
        C = spgemm(X, from_scipy(M, chunks=(1500, 2000)), strategy="2d")
        assert_product_close(C.compute(), M, M)
    # row blocks read from a file by the workers
    if SHARED is not None:
        X = read_matrix_market(SHARED / "pushpull.mtx", blocksize="100KiB")
        P = datasets.read_matrix_market(SHARED / "pushpull.mtx")
        assert_csr_equal(spgemm(X, X).compute(), sparsecore.spgemm(P, P))


@requires_shared
def test_cluster_refuses_a_product_that_does_not_fit(client):
    A = datasets.read_matrix_market(SHARED / "arrow.mtx")
    X = from_scipy(A, chunks=(12000, -1))
    with pytest.raises(MemoryError) as info:
        spgemm(X, X)
    msg = str(info.value)
    assert "2,162,250,000 nonzeros (exact, from the symbolic pass)" in msg
    assert "the cluster (2 workers" in msg and "GiB" in msg


def test_spmm_on_the_cluster_ships_the_weight_once_per_worker(client):
    S = datasets.make_erdos_renyi(400, 20, n_cols=300)
    # 16 batch chunks generated where they are scheduled (no common input)
    X = da.random.default_rng(10).standard_normal((300, 4000), chunks=(300, 250))
    Xn = X.compute()
    Y = spmm(S, X)
    weight = [k for k in Y.dask if isinstance(k, str) and k.startswith("spmm-weight-")]
    assert len(weight) == 1
    Y = Y.persist()
    np.testing.assert_allclose(Y.compute(), S @ Xn, rtol=1e-12, atol=1e-12)

    def fetched(dask_worker, key=weight[0]):
        return sum(key in entry["keys"] for entry in dask_worker.transfer_incoming_log)

    counts = client.run(fetched)
    assert all(c <= 1 for c in counts.values())  # once per worker at most
    placed = client.run(lambda dask_worker: [
        ts.key for ts in dask_worker.state.tasks.values() if isinstance(ts.key, tuple)
        and ts.key[0].startswith("spmm-") and ts.state == "memory"])
    assert len(set().union(*placed.values())) == 16
    del Y


def test_worker_killed_mid_computation_is_retried():
    """A worker process is killed while the product runs; Dask recomputes what
    it held on the other (and the restarted) worker; the result is exact."""
    A = datasets.make_rmat(11)
    B = datasets.make_laplacian((32, 64))
    R = sparsecore.spgemm(A, B)
    cuts = np.linspace(0, A.shape[0], 9).astype(int)

    def slow_block(lo, hi):  # a closure: shipped to the workers by value
        time.sleep(0.3)
        return A[lo:hi]

    blocks = [dask.delayed(slow_block, pure=True)(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:])]
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=50,
    ) as cl, distributed.Client(cl, set_as_default=False, timeout="60s") as client, \
            dask.config.set(scheduler=client):
        X = from_row_blocks(blocks, rows=np.diff(cuts).tolist(), n_cols=A.shape[1],
                            dtype=A.dtype)
        # persist=False: the product recomputes the slow blocks, so it runs
        # long enough to be interrupted
        C = spgemm(X, from_scipy(B, chunks=700), strategy="2d", persist=False)
        pids = client.run(os.getpid)
        future = client.compute(C)
        # kill a worker while the blocks run, once it has been given a second
        # slow block (the blocks it computed are then lost with it; what it
        # holds is no sign of progress: the scheduler may already have
        # released a used block, and the short from-row-blocks tasks that
        # wrap the slow ones can come and go between two looks)
        deadline = time.monotonic() + 60
        victim, given = None, {}
        while victim is None and time.monotonic() < deadline and not future.done():
            for w, keys in client.processing().items():
                now = {k for k in keys if str(k).startswith("slow_block")}
                if given.get(w) and now - given[w]:
                    victim = w
                given.setdefault(w, set()).update(now)
            time.sleep(0.01)
        assert victim is not None and not future.done()
        os.kill(pids[victim], signal.SIGKILL)
        C = future.result(timeout=120)
        assert pids[victim] not in client.run(os.getpid).values()
    assert_product_close(C, A, B)


# ---- the adapter ---------------------------------------------------------

def test_registered_as_a_distributed_adapter():
    from sparsecore import plugins

    plugins.refresh_adapters()
    info = plugins.list_adapters()["dask"]
    assert info.kind == "distributed" and info.available
    assert info.install == 'pip install "sparsecore[dask]"'
    import sparsecore.dask

    assert plugins.load_adapter("dask") is sparsecore.dask


def test_import_sparsecore_does_not_import_dask_and_a_missing_dask_names_the_extra():
    import subprocess
    import sys

    code = "import sys, sparsecore; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "import importlib.util\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'dask' else real(n, *a)\n"
        "try:\n"
        "    import sparsecore.dask\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "sparsecore[dask]"' in out.stdout
