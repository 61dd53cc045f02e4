"""Mixture-of-Experts: sparse dispatch against dense evaluation of every
expert (a loop over expert modules, and stacked batched matmuls)."""
from .common import safe_import, shrink_params

with safe_import():
    import torch
    from sparsecore._bench.moe import CASES, make_case

CASE_NAMES = ["ffn-64e-k2-b4096", "ffn-64e-k2-b1024", "ffn-16e-k2-b4096"]


class MoEForward:
    params = [CASE_NAMES, ["sparse", "dense", "bmm"], [1, 2]]
    param_names = ["case", "combine", "threads"]
    timeout = 120

    def setup(self, name, combine, threads):
        if "torch" not in globals():
            raise NotImplementedError("torch is not installed")
        torch.set_num_threads(threads)
        self.inputs = make_case(name).inputs

    def time_forward(self, name, combine, threads):
        with torch.no_grad():
            if combine == "bmm":
                self.inputs["bmm"](self.inputs["x"])
            else:
                self.inputs[combine](self.inputs["x"])


class MoESpeedup:
    """Forward-pass speedup of sparse dispatch over the dense expert loop."""

    params = [CASE_NAMES, [1, 2]]
    param_names = ["case", "threads"]
    unit = "speedup"

    def setup(self, name, threads):
        if "torch" not in globals():
            raise NotImplementedError("torch is not installed")
        torch.set_num_threads(threads)
        self.inputs = make_case(name).inputs

    def track_speedup_over_dense(self, name, threads):
        import timeit

        x = self.inputs["x"]
        with torch.no_grad():
            ours = min(timeit.repeat(lambda: self.inputs["sparse"](x), number=2, repeat=3))
            dense = min(timeit.repeat(lambda: self.inputs["dense"](x), number=2, repeat=3))
        return dense / ours


shrink_params(globals())
