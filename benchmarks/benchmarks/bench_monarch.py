"""Monarch products beside numpy dense BLAS, numpy stacked matmul and torch
bmm, and the projection beside the batched LAPACK SVD: views of the registry
families ``monarch`` and ``monarch.projection`` (sparsecore/_bench/monarch.py)."""
from .common import PeerBenchmark, SpeedupBenchmark, peer_params, shrink_params

from sparsecore._bench.monarch import case_names


class MonarchProduct(PeerBenchmark):
    """Y = M @ X, X of shape (n, batch), float32, sqrt(n) blocks."""

    family = "monarch"
    params = peer_params("monarch")
    timeout = 120

    def time_product(self, case, peer, threads):
        self.call()


class MonarchProductSpeedup(SpeedupBenchmark):
    """Speedup of sparsecore over numpy dense at the same thread count."""

    family = "monarch"
    base = "numpy dense"
    params = [case_names(), [1, 2]]

    def track_speedup_over_dense(self, case, threads):
        return self.speedup(case, threads)


class MonarchProductSpeedupStacked(SpeedupBenchmark):
    """Speedup of sparsecore over numpy stacked matmul (the better numpy peer)."""

    family = "monarch"
    base = "numpy stacked"
    params = [case_names(), [1, 2]]

    def track_speedup_over_stacked(self, case, threads):
        return self.speedup(case, threads)


class MonarchProjection(PeerBenchmark):
    """Nearest Monarch matrix to a Gaussian float32 matrix: power iteration
    against the batched LAPACK SVD (method='svd', 1 thread)."""

    family = "monarch.projection"
    params = peer_params("monarch.projection")
    param_names = ["case", "method", "threads"]

    def time_project(self, case, method, threads):
        self.call()

    def track_relative_error(self, case, method, threads):
        return self.call()[1]

    track_relative_error.unit = "relative error"


shrink_params(globals())
