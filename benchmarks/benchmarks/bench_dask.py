"""sparsecore.dask.spgemm on LocalClusters of 1 and 2 worker processes (one
thread each), beside the in-process kernel: views of the registry family
``dask`` (sparsecore/_bench/dask.py)."""
from .common import PeerBenchmark, SpeedupBenchmark, peer_params, safe_import, shrink_params

with safe_import():
    import distributed  # noqa: F401  (absent: the dask peers are skipped)

CASES = ["lap3d27_40", "rmat14"]


class DaskSpGEMM(PeerBenchmark):
    """End to end: planning (count + symbolic pass), product, gather."""

    family = "dask"
    params = peer_params("dask", CASES)
    timeout = 300
    number = 1
    repeat = 3

    def time_spgemm(self, case, peer, threads):
        self.call()


class DaskSpGEMMScaling(SpeedupBenchmark):
    """2 worker processes over the in-process kernel on 2 threads (below 1 is
    the overhead of the distributed path on one machine)."""

    family = "dask"
    base = "sparsecore"
    ours = "dask 2w"
    params = [CASES, [2]]
    timeout = 600

    def setup(self, case, threads):
        if "distributed" not in globals():
            raise NotImplementedError("dask.distributed is not installed")

    def track_speedup_2_workers_over_kernel(self, case, threads):
        from sparsecore._bench import _registry
        from sparsecore._bench.dask import close_clusters

        try:
            return _registry.speedup(self.family, case, self.base, self.ours, threads, rounds=3)
        finally:
            close_clusters()


shrink_params(globals())
