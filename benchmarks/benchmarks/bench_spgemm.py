"""SpGEMM beside scipy (plain and sorted) and python-graphblas."""
import numpy as np
import scipy.sparse as sp

from .common import matrix_dir, safe_import, shrink_params

from sparsecore import datasets, spgemm

with safe_import():
    import graphblas as gb

REAL = ["olm1000", "dwt_992", "bcspwr10", "hangGlider_2", "n1024-l1"]
GENERATED = {
    "rmat12": lambda: datasets.make_rmat(12),
    "er20k": lambda: datasets.make_erdos_renyi(20_000, 10),
    "lap2d_300": lambda: datasets.make_laplacian((300, 300)),
    "lap3d27_20": lambda: datasets.make_laplacian((20, 20, 20), stencil=27),
}


def load(name):
    if name in GENERATED:
        return GENERATED[name]()
    folder = matrix_dir()
    if folder is not None and (folder / f"{name}.mtx").exists():
        return datasets.read_matrix_market(folder / f"{name}.mtx")
    return datasets.load_matrix(name)


class SpGEMM:
    params = [REAL + list(GENERATED), ["sparsecore", "scipy", "scipy+sort", "graphblas"], [1, 2]]
    param_names = ["matrix", "library", "threads"]
    timeout = 120

    def setup(self, name, library, threads):
        if library.startswith("scipy") and threads != 1:
            raise NotImplementedError("scipy is single-threaded")
        A = load(name)
        if np.iscomplexobj(A.data):
            A = sp.csr_array(A.real)
        self.A = A
        if library == "graphblas":
            if "gb" not in globals():
                raise NotImplementedError("python-graphblas is not installed")
            gb.ss.config["nthreads"] = threads
            self.gA = gb.io.from_scipy_sparse(A)

    def time_product(self, name, library, threads):
        A = self.A
        if library == "sparsecore":
            spgemm(A, A, n_threads=threads)
        elif library == "scipy":
            A @ A
        elif library == "scipy+sort":
            (A @ A).sort_indices()
        else:
            self.gA.mxm(self.gA).new()

    def peakmem_product(self, name, library, threads):
        self.time_product(name, library, threads)


class SpGEMMSpeedup:
    """Speedup of sparsecore over scipy + sort_indices (like for like: both
    outputs sorted), tracked so the dashboard shows where we stand."""

    params = [REAL + list(GENERATED), [1, 2]]
    param_names = ["matrix", "threads"]
    unit = "speedup"

    def setup(self, name, threads):
        self.A = load(name)

    def track_speedup_over_scipy_sorted(self, name, threads):
        import timeit

        A = self.A
        ours = min(timeit.repeat(lambda: spgemm(A, A, n_threads=threads), number=3, repeat=3))
        theirs = min(timeit.repeat(lambda: (A @ A).sort_indices(), number=3, repeat=3))
        return theirs / ours


shrink_params(globals())
