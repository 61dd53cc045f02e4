"""Semiring and masked SpGEMM, the top-k product and numba user datafits,
beside python-graphblas, scipy (full product then mask) and sparse_dot_topn:
views of the registry families ``semiring.*`` (sparsecore/_bench/semiring.py)."""
from sparsecore.ops import SEMIRINGS

from .common import PeerBenchmark, SpeedupBenchmark, peer_params, shrink_params

GRAPHS = ["rmat13", "bcsstk13", "pushpull"]


class Semirings(PeerBenchmark):
    """Each built-in semiring on the same product (A @ A, R-MAT scale 12)."""

    family = "semiring.products"
    params = peer_params("semiring.products", ["rmat12"], list(SEMIRINGS))
    param_names = ["case", "semiring", "threads"]

    def time_product(self, case, semiring, threads):
        self.call()


class TriangleCount(PeerBenchmark):
    family = "semiring.masked"
    params = peer_params("semiring.masked", GRAPHS)
    timeout = 120

    def time_masked_product(self, case, peer, threads):
        self.call()


class TriangleCountSpeedup(SpeedupBenchmark):
    """Masked product over scipy's full product then mask."""

    family = "semiring.masked"
    base = "scipy full+mask"
    params = [GRAPHS, [1, 2]]

    def track_speedup_over_scipy_full_then_mask(self, case, threads):
        return self.speedup(case, threads)


class TopK(PeerBenchmark):
    """k = 10 largest of each row of a 20k x 20k cosine-similarity product."""

    family = "semiring.topk"
    params = peer_params("semiring.topk", ["topk20000"])
    timeout = 120

    def time_topk(self, case, peer, threads):
        self.call()

    def peakmem_topk(self, case, peer, threads):
        self.call()


class UserFunctionsBCD(PeerBenchmark):
    """Greedy BCD with a numba user datafit or penalty (called through C
    function pointers) against the built-in one."""

    family = "semiring.datafit"
    params = peer_params("semiring.datafit", ["5000x500"])
    param_names = ["case", "variant", "threads"]

    def time_greedy_bcd(self, case, variant, threads):
        self.call()


class UserFunctionsBCDRatio(SpeedupBenchmark):
    """time(built-in) / time(user) of the same greedy BCD problem (1 = parity)."""

    family = "semiring.datafit"
    params = [["5000x500"], [1, 2]]

    def track_builtin_over_user(self, case, threads):
        from sparsecore._bench._registry import speedup
        from sparsecore._bench.semiring import DATAFIT_PAIRS

        return min(speedup(self.family, case, f"{label} | built-in", f"{label} | user", threads)
                   for label in DATAFIT_PAIRS)


shrink_params(globals())
