"""Thread safety: the kernels release the GIL and keep no shared mutable
state, so many Python threads calling them at once on shared inputs get
exactly (bit for bit) what serial calls get, and the shared inputs are left
untouched. Nested parallelism follows the OpenMP limits of the calling
thread (checked with threadpoolctl)."""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

import sparsecore
from sparsecore import _threads, formats, ops

N_WORKERS = 8
ROUNDS = 3  # calls of each job per worker


def _jobs():
    rng = np.random.default_rng(7)
    A = sp.random_array((300, 250), density=0.03, rng=rng, format="csr")
    B = sp.random_array((250, 200), density=0.03, rng=rng, format="csr")
    W = rng.standard_normal((64, 96)).astype(np.float32)
    X32 = rng.standard_normal((96, 24)).astype(np.float32)
    G32 = rng.standard_normal((64, 24)).astype(np.float32)
    nm = ops.nm_prune(W, 2, 4)
    blk = ops.block_prune(W, (4, 4), 0.3)
    M = formats.MonarchMatrix.random((64, 64), random_state=1)
    Xm = rng.standard_normal((64, 8))
    K = formats.KroneckerOperator([rng.standard_normal((5, 4)), rng.standard_normal((3, 6))])
    xk = rng.standard_normal(24)
    Xr = rng.standard_normal((40, 12))
    yr = Xr[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.01 * rng.standard_normal(40)
    shared = [A, B, W, X32, G32, Xm, xk, Xr, yr]

    def lasso(nt):
        from sparsecore.linear_model import GreedyBCDLasso
        return GreedyBCDLasso(alpha=0.01, n_threads=nt).fit(Xr, yr).coef_

    jobs = {
        "spgemm": lambda nt: sparsecore.spgemm(A, B, n_threads=nt).toarray(),
        "spgemm_symbolic": lambda nt: ops.spgemm_symbolic(A, B, n_threads=nt).total_nnz,
        "spmm_nm": lambda nt: ops.spmm(nm, X32, n_threads=nt),
        "spmm_block": lambda nt: ops.spmm(blk, X32, n_threads=nt),
        "spmm_csr": lambda nt: ops.spmm(A.astype(np.float32), rng_free_dense(A.shape[1]),
                                        n_threads=nt),
        "sddmm_nm": lambda nt: ops.sddmm(G32, X32, nm, n_threads=nt).toarray(),
        "nm_prune": lambda nt: ops.nm_prune(W, 2, 4, n_threads=nt).toarray(),
        "monarch": lambda nt: M.matmul(Xm, n_threads=nt),
        "monarch_project": lambda nt: ops.monarch_project(M.toarray(), n_threads=nt).toarray(),
        "kronecker": lambda nt: K @ xk,
        "lasso": lasso,
    }
    return jobs, shared


def rng_free_dense(n):
    # deterministic (no shared generator between threads)
    return np.cos(np.arange(n * 5, dtype=np.float32)).reshape(n, 5)


def _snap(arrays):
    out = []
    for a in arrays:
        if sp.issparse(a):
            out.append((a.indptr.tobytes(), a.indices.tobytes(), a.data.tobytes()))
        else:
            out.append(a.tobytes())
    return out


def _same(a, b):
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return a == b


@pytest.mark.parametrize("nt", [1, 2])
def test_many_threads_at_once_give_the_serial_results(nt):
    jobs, shared = _jobs()
    before = _snap(shared)
    serial = {name: job(nt) for name, job in jobs.items()}
    start = threading.Barrier(N_WORKERS)

    def worker(k):
        start.wait()  # everyone calls at once
        names = list(jobs)
        got = []
        for r in range(ROUNDS):
            for name in names[k % len(names):] + names[:k % len(names)]:
                got.append((name, jobs[name](nt)))
        return got

    with ThreadPoolExecutor(N_WORKERS) as pool:
        results = list(pool.map(worker, range(N_WORKERS)))
    for got in results:
        for name, value in got:
            assert _same(value, serial[name]), name
    assert _snap(shared) == before


def _openmp_threads_of_calling_thread():
    return _threads.available_threads()


def test_threadpool_limits_apply_in_the_thread_that_sets_them():
    """OpenMP keeps its thread-count setting per calling thread: a
    threadpoolctl limit set inside a worker thread bounds the kernels that
    thread calls, so a pool of P workers each limited to 1 uses P threads
    in all, not P times the cores."""
    if not _threads.openmp_enabled():
        pytest.skip("serial build")
    cores = _openmp_threads_of_calling_thread()

    def limited(_):
        with threadpool_limits(limits=1, user_api="openmp"):
            inner = _openmp_threads_of_calling_thread()
            A = sp.random_array((200, 200), density=0.05, rng=3, format="csr")
            C = sparsecore.spgemm(A, A)  # n_threads=None resolves to the limit
            return inner, C.nnz

    with ThreadPoolExecutor(4) as pool:
        res = list(pool.map(limited, range(4)))
    assert all(inner == 1 for inner, _ in res)
    assert len({nnz for _, nnz in res}) == 1
    # the limit is undone on exit, in this thread and the others
    assert _openmp_threads_of_calling_thread() == cores
    libs = [lib for lib in threadpool_info() if lib["user_api"] == "openmp"]
    assert libs, "threadpoolctl should see the OpenMP runtime sparsecore links"


def test_explicit_n_threads_one_inside_a_pool_never_starts_a_team(monkeypatch):
    """n_threads=1 runs on the calling thread: no OpenMP team (the documented
    way to call kernels from a thread pool without nested parallelism)."""
    A = sp.random_array((300, 300), density=0.05, rng=5, format="csr")
    want = sparsecore.spgemm(A, A, n_threads=1)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: sparsecore.spgemm(A, A, n_threads=1), range(8)))
    for C in got:
        assert C.data.tobytes() == want.data.tobytes()
        assert C.indices.tobytes() == want.indices.tobytes()


def test_kernels_next_to_blas_and_torch_thread_pools():
    """sparsecore's OpenMP limit is independent of OpenBLAS's (and torch's):
    limiting one leaves the others alone, so callers can split the cores."""
    torch = pytest.importorskip("torch")
    if not _threads.openmp_enabled():
        pytest.skip("serial build")
    cores = _openmp_threads_of_calling_thread()
    torch_before = torch.get_num_threads()
    with threadpool_limits(limits=1, user_api="blas"):
        assert _openmp_threads_of_calling_thread() == cores
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _openmp_threads_of_calling_thread() == 1
        A = sp.random_array((100, 100), density=0.1, rng=1, format="csr")
        sparsecore.spgemm(A, A)
    assert torch.get_num_threads() == torch_before
    assert _openmp_threads_of_calling_thread() == cores
