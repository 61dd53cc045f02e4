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


def _bcd_user_case(case):
    """(datafit, penalty, X, y) of the built-in and the numba user variant of
    one greedy BCD problem (sparse 5000 x 500, L1 1e-3)."""
    from sparsecore._bench.semiring import _user_functions
    from sparsecore.optimize import L1, Logistic, Quadratic

    user_sq, user_log, user_l1 = _user_functions()
    rng = np.random.default_rng(0)
    X = sp.random_array((5000, 500), density=0.05, format="csc", rng=rng)
    w = np.zeros(500)
    w[rng.choice(500, 20, replace=False)] = rng.standard_normal(20)
    y = X @ w + 0.01 * rng.standard_normal(5000)
    yb = np.where(y > np.median(y), 1.0, -1.0)
    return {
        "datafit squared": ((Quadratic(), L1(1e-3), X, y), (user_sq, L1(1e-3), X, y)),
        "datafit logistic": ((Logistic(), L1(1e-3), X, yb), (user_log, L1(1e-3), X, yb)),
        "penalty L1 squared": ((Quadratic(), L1(1e-3), X, y), (Quadratic(), user_l1, X, y)),
        "penalty L1 logistic": ((Logistic(), L1(1e-3), X, yb), (Logistic(), user_l1, X, yb)),
    }[case]


USER_CASES = ["datafit squared", "datafit logistic", "penalty L1 squared",
              "penalty L1 logistic"]


class UserFunctionsBCD:
    """Greedy BCD with a numba user datafit or penalty (called through C
    function pointers) against the built-in one (goal: within 2x)."""

    params = [USER_CASES, ["built-in", "user"], [1, 2]]
    param_names = ["case", "variant", "threads"]

    def setup(self, case, variant, threads):
        _require_numba()
        builtin, user = _bcd_user_case(case)
        self.args = builtin if variant == "built-in" else user

    def time_greedy_bcd(self, case, variant, threads):
        from sparsecore.optimize import greedy_bcd

        d, p, X, y = self.args
        greedy_bcd(d, p, X, y, tol=1e-8, max_iter=2000, n_threads=threads)


class UserFunctionsBCDRatio:
    """time(user) / time(built-in) of the same greedy BCD problem."""

    params = [USER_CASES, [1, 2]]
    param_names = ["case", "threads"]
    unit = "ratio"

    def setup(self, case, threads):
        _require_numba()
        self.builtin, self.user = _bcd_user_case(case)

    def track_user_over_builtin(self, case, threads):
        import timeit

        from sparsecore.optimize import greedy_bcd

        def run(args):
            d, p, X, y = args
            return min(timeit.repeat(lambda: greedy_bcd(d, p, X, y, tol=1e-8, max_iter=2000,
                                                        n_threads=threads),
                                     number=3, repeat=3))
        return run(self.user) / run(self.builtin)


def _require_numba():
    try:
        import numba  # noqa: F401
    except ImportError:
        raise NotImplementedError("numba is not installed") from None


shrink_params(globals())
