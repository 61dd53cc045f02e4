"""SpGEMM beside scipy (plain and sorted), python-graphblas and MKL: views of
the registry family ``spgemm`` (sparsecore/_bench/spgemm.py)."""
from .common import PeerBenchmark, SpeedupBenchmark, peer_params, shrink_params

CASES = ["olm1000", "dwt_992", "bcspwr10", "hangGlider_2", "n1024-l1",
         "er50k", "lap2d_1000", "lap3d27_40", "rmat14",
         "er13k_7", "pl20k_4", "band20k_500_10", "ts20kx2k_5_AAt"]


class SpGEMM(PeerBenchmark):
    family = "spgemm"
    params = peer_params("spgemm", CASES)
    timeout = 120

    def time_product(self, case, peer, threads):
        self.call()

    def peakmem_product(self, case, peer, threads):
        self.call()


class SpGEMMSpeedup(SpeedupBenchmark):
    """sparsecore over scipy + sort_indices (like for like: both sorted)."""

    family = "spgemm"
    base = "scipy+sort"
    params = [CASES, [1, 2]]

    def track_speedup_over_scipy_sorted(self, case, threads):
        return self.speedup(case, threads)


shrink_params(globals())
