"""Continual learning: SparCL against dense DER++ and naive fine-tuning on
Split-digits (class-incremental): a training epoch's time, the training-FLOP
ratio, accuracy and forgetting (``track_``)."""
from .common import safe_import, shrink_params

with safe_import():
    import torch
    from sparsecore._bench.continual import run_method
    from sparsecore.continual import DERpp, Reservoir, SparCL, make_mlp, split_digits


def _trainer(method, threads):
    torch.set_num_threads(threads)
    model = make_mlp([64, 256, 256, 10], seed=0)
    kw = dict(epochs_per_task=1, batch_size=32, seed=0, buffer=Reservoir(200, seed=0),
              n_threads=threads, data_removal=0.0)
    opt = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
    if method == "derpp":
        kw.pop("data_removal")
        return DERpp(model, opt, **kw)
    return SparCL(model, opt, **kw)


class TrainEpoch:
    """One epoch on the first two Split-digits tasks (buffer filled by the first)."""

    params = [["sparcl", "derpp"], [1, 2]]
    param_names = ["method", "threads"]
    timeout = 120

    def setup(self, method, threads):
        if "torch" not in globals():
            raise NotImplementedError("torch is not installed")
        self.train, _ = split_digits(seed=0)
        self.cl = _trainer(method, threads)
        self.cl.partial_fit(*self.train[0][:2], task_id=0)

    def teardown(self, method, threads):
        if hasattr(self, "cl"):   # setup may have skipped the case
            self.cl.close()

    def time_epoch(self, method, threads):
        self.cl.partial_fit(*self.train[1][:2], task_id=1)


class SplitDigits:
    """Seed 0 of the bench suite's Split-digits setting (20 epochs per task)."""

    params = [["sparcl", "derpp", "naive-nomask"]]
    param_names = ["method"]
    timeout = 300
    number = 1
    repeat = 1

    def setup_cache(self):
        if "torch" not in globals():
            raise NotImplementedError("torch is not installed")
        return {m: run_method("split-digits", m, 0) for m in ("sparcl", "derpp", "naive-nomask")}

    def track_accuracy(self, cache, method):
        return cache[method]["acc"]

    track_accuracy.unit = "percent"

    def track_forgetting(self, cache, method):
        return cache[method]["forgetting"]

    track_forgetting.unit = "points"

    def track_flops_vs_derpp(self, cache, method):
        return cache[method]["flops"] / cache["derpp"]["flops"]

    track_flops_vs_derpp.unit = "ratio"


shrink_params(globals())
