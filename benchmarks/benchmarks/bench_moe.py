"""Mixture-of-Experts: sparse dispatch against dense evaluation of every
expert (a loop over expert modules, and stacked batched matmuls): views of
the registry family ``moe`` (sparsecore/_bench/moe.py)."""
from .common import PeerBenchmark, SpeedupBenchmark, peer_params, safe_import, shrink_params

with safe_import():
    import torch  # noqa: F401  (the family needs it; absent, every case is skipped)

CASES = ["ffn-64e-k2-b1024", "ffn-64e-k2-b4096", "ffn-16e-k2-b4096"]


def _require_torch():
    if "torch" not in globals():
        raise NotImplementedError("torch is not installed")


class MoEForward(PeerBenchmark):
    family = "moe"
    params = peer_params("moe", CASES)
    timeout = 120

    def setup(self, case, peer, threads):
        _require_torch()
        super().setup(case, peer, threads)

    def time_forward(self, case, peer, threads):
        self.call()


class MoESpeedup(SpeedupBenchmark):
    """Forward-pass speedup of sparse dispatch over the dense expert loop."""

    family = "moe"
    base = "dense loop"
    params = [CASES, [1, 2]]

    def setup(self, case, threads):
        _require_torch()

    def track_speedup_over_dense(self, case, threads):
        return self.speedup(case, threads)


shrink_params(globals())
