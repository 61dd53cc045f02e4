"""Recommendation: top-20 for every user from sparse (CSR) embeddings through
ops.topk_product against the dense model's BLAS product + torch.topk (views
of the registry family ``recsys.topk``, sparsecore/_bench/recsys.py), and a
short Dynamic Sparse Learning fit. Generated data (no download)."""
from .common import PeerBenchmark, SpeedupBenchmark, peer_params, safe_import, shrink_params

with safe_import():
    import torch  # noqa: F401  (the family needs it; absent, every case is skipped)
    from sparsecore.datasets import make_block_interactions
    from sparsecore.recsys import DSLRecommender


def _require_torch():
    if "torch" not in globals():
        raise NotImplementedError("torch is not installed")


class TopKAllUsers(PeerBenchmark):
    family = "recsys.topk"
    params = peer_params("recsys.topk")
    timeout = 120

    def setup(self, case, peer, threads):
        _require_torch()
        super().setup(case, peer, threads)

    def time_topk(self, case, peer, threads):
        self.call()


class TopKSpeedup(SpeedupBenchmark):
    """Top-20 for 6000 users over 4000 items: dense BLAS + topk time over the
    sparse kernel's time on embeddings of the given density."""

    family = "recsys.topk"
    base = "torch dense"
    params = [["d0.1", "d0.2", "d0.5"], [1, 2]]

    def setup(self, case, threads):
        _require_torch()

    def track_speedup_over_dense(self, case, threads):
        return self.speedup(case, threads)


class DSLFit:
    params = [["dense", "static", "dsl", "dsl-aligned"]]
    param_names = ["method"]
    timeout = 180

    def setup(self, method):
        _require_torch()
        self.R = make_block_interactions(2000, 1000, n_groups=10, p_in=0.1, random_state=0)
        kw = {"dense": dict(density=1.0), "static": dict(density=0.2, update_interval=None),
              "dsl": dict(density=0.2), "dsl-aligned": dict(density=0.2, support="aligned")}
        self.kw = dict(n_factors=64, epochs=3, batch_size=4096, update_interval=10,
                       random_state=0)
        self.kw.update(kw[method])

    def time_fit(self, method):
        DSLRecommender(**self.kw).fit(self.R)


shrink_params(globals())
