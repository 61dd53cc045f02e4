"""Semiring and masked SpGEMM and the top-k product, beside python-graphblas,
scipy (full product then mask) and sparse_dot_topn."""
import numpy as np
import scipy.sparse as sp

from .common import matrix_dir, safe_import, shrink_params

from sparsecore import datasets, spgemm
from sparsecore.ops import spgemm_topk
from sparsecore._bench.semiring import lower_triangle, similarity_case

with safe_import():
    import graphblas as gb

with safe_import():
    from sparse_dot_topn import sp_matmul_topn

GRAPHS = {
    "rmat13": lambda: datasets.make_rmat(13),
    "bcsstk13": lambda: _real("bcsstk13"),
    "pushpull": lambda: _real("pushpull"),
}


def _real(name):
    folder = matrix_dir()
    if folder is None or not (folder / f"{name}.mtx").exists():
        raise NotImplementedError(f"{name}.mtx is not available")
    A = datasets.read_matrix_market(folder / f"{name}.mtx")
    return sp.csr_array(A.real if np.iscomplexobj(A.data) else A, dtype=np.float64)


class Semirings:
    """Each built-in semiring on the same product (A @ A, R-MAT scale 12)."""

    params = [["plus_times", "min_plus", "max_times", "lor_land", "plus_pair", "plus_second"],
              [1, 2]]
    param_names = ["semiring", "threads"]

    def setup(self, semiring, threads):
        self.A = sp.csr_array(datasets.make_rmat(12))

    def time_product(self, semiring, threads):
        spgemm(self.A, self.A, semiring=semiring, n_threads=threads)


class TriangleCount:
    params = [list(GRAPHS), ["sparsecore", "graphblas", "scipy-full-then-mask"], [1, 2]]
    param_names = ["graph", "library", "threads"]
    timeout = 120

    def setup(self, graph, library, threads):
        if library.startswith("scipy") and threads != 1:
            raise NotImplementedError("scipy is single-threaded")
        self.L = lower_triangle(GRAPHS[graph]())
        if library == "graphblas":
            if "gb" not in globals():
                raise NotImplementedError("python-graphblas is not installed")
            gb.ss.config["nthreads"] = threads
            self.gL = gb.io.from_scipy_sparse(self.L)

    def time_masked_product(self, graph, library, threads):
        L = self.L
        if library == "sparsecore":
            spgemm(L, L, mask=L, semiring="plus_pair", n_threads=threads)
        elif library == "graphblas":
            self.gL.mxm(self.gL, gb.semiring.plus_pair).new(mask=self.gL.S)
        else:
            (L @ L).multiply(L)


class TriangleCountSpeedup:
    """Masked product over scipy's full product then mask."""

    params = [list(GRAPHS), [1, 2]]
    param_names = ["graph", "threads"]
    unit = "speedup"

    def setup(self, graph, threads):
        self.L = lower_triangle(GRAPHS[graph]())

    def track_speedup_over_scipy_full_then_mask(self, graph, threads):
        import timeit

        L = self.L
        ours = min(timeit.repeat(lambda: spgemm(L, L, mask=L, semiring="plus_pair",
                                                n_threads=threads), number=3, repeat=3))
        theirs = min(timeit.repeat(lambda: (L @ L).multiply(L), number=3, repeat=3))
        return theirs / ours


class TopK:
    """k = 10 largest of each row of a 20k x 20k cosine-similarity product."""

    params = [["sparsecore", "sparse_dot_topn"], [1, 2]]
    param_names = ["library", "threads"]
    timeout = 120

    def setup(self, library, threads):
        if library == "sparse_dot_topn" and "sp_matmul_topn" not in globals():
            raise NotImplementedError("sparse_dot_topn is not installed")
        self.X = similarity_case(n_docs=20_000, vocab=20_000)
        self.XT = sp.csr_array(self.X.T)
        if library == "sparse_dot_topn":  # it takes scipy's matrix classes only
            self.X, self.XT = sp.csr_matrix(self.X), sp.csr_matrix(self.XT)

    def time_topk(self, library, threads):
        if library == "sparsecore":
            spgemm_topk(self.X, self.XT, 10, n_threads=threads)
        else:
            sp_matmul_topn(self.X, self.XT, top_n=10, n_threads=threads)

    def peakmem_topk(self, library, threads):
        self.time_topk(library, threads)


shrink_params(globals())
