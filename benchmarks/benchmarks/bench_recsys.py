"""Recommendation: top-20 for every user from sparse (CSR) embeddings through
ops.topk_product against the dense model's BLAS product + torch.topk, and a
short Dynamic Sparse Learning fit. Generated data (no download)."""
import numpy as np
import scipy.sparse as sp

from .common import safe_import, shrink_params

with safe_import():
    import torch
    from sparsecore.ops import topk_product
    from sparsecore.recsys import DSLRecommender
    from sparsecore._bench.recsys_experiments import dense_topk, make_block_interactions

N_USERS, N_ITEMS, DIM = 6000, 4000, 64


def _embeddings(density, seed=0):
    """Sparse user and item embeddings with per-row prefix supports (what
    DSL's aligned support gives) and the dense tables of the same size."""
    rng = np.random.default_rng(seed)

    def table(n):
        lengths = rng.binomial(DIM, density, n)
        mask = np.arange(DIM)[None, :] < lengths[:, None]
        return (rng.standard_normal((n, DIM)) * mask).astype(np.float32)

    U, V = table(N_USERS), table(N_ITEMS)
    seen = sp.random_array((N_USERS, N_ITEMS), density=0.02, format="csr", random_state=rng)
    return U, V, seen


class TopKAllUsers:
    params = [[0.1, 0.2, 0.5], [1, 2]]
    param_names = ["density", "threads"]
    timeout = 120

    def setup(self, density, threads):
        if "torch" not in globals():
            raise NotImplementedError("torch is not installed")
        U, V, self.seen = _embeddings(density)
        self.Us = sp.csr_array(U)
        self.Vt = sp.csr_array(V.T)
        torch.set_num_threads(threads)
        self.dense = dense_topk(np.random.default_rng(1).standard_normal(U.shape),
                                np.random.default_rng(2).standard_normal(V.shape), self.seen)

    def time_sparse(self, density, threads):
        topk_product(self.Us, self.Vt, 20, exclude=self.seen, n_threads=threads)

    def time_dense(self, density, threads):
        with torch.no_grad():
            self.dense()


class TopKSpeedup:
    """Top-20 for 6000 users over 4000 items: dense BLAS + topk time over the
    sparse kernel's time on embeddings of the given density."""

    params = [[0.1, 0.2, 0.5], [1, 2]]
    param_names = ["density", "threads"]
    unit = "speedup"

    def setup(self, density, threads):
        TopKAllUsers.setup(self, density, threads)

    def track_speedup_over_dense(self, density, threads):
        import timeit

        with torch.no_grad():
            dense = min(timeit.repeat(self.dense, number=1, repeat=3))
        ours = min(timeit.repeat(
            lambda: topk_product(self.Us, self.Vt, 20, exclude=self.seen, n_threads=threads),
            number=1, repeat=3))
        return dense / ours


class DSLFit:
    params = [["dense", "static", "dsl", "dsl-aligned"]]
    param_names = ["method"]
    timeout = 180

    def setup(self, method):
        if "torch" not in globals():
            raise NotImplementedError("torch is not installed")
        self.R = make_block_interactions(2000, 1000, n_groups=10, p_in=0.1, random_state=0)
        kw = {"dense": dict(density=1.0), "static": dict(density=0.2, update_interval=None),
              "dsl": dict(density=0.2), "dsl-aligned": dict(density=0.2, support="aligned")}
        self.kw = dict(n_factors=64, epochs=3, batch_size=4096, update_interval=10,
                           random_state=0)
        self.kw.update(kw[method])

    def time_fit(self, method):
        DSLRecommender(**self.kw).fit(self.R)


shrink_params(globals())
