"""Kernels with one core taken by another process (``sparsecore bench
--busy 1`` in asv form): ``n_threads=None`` against one thread, on the
machine as users have it. The ratio ``track_busy_default_over_one_thread``
should stay near 1 (the default gives way to the busy core)."""
import statistics
import time

import numpy as np

from sparsecore import datasets
from sparsecore.ops import block_prune, spgemm, spmm

from .common import safe_import, shrink_params

busy_processes = None
with safe_import():  # older commits lack it (asv runs this suite over history)
    from sparsecore._bench._harness import busy_processes

KERNELS = ["block16 spmm", "spgemm"]


def _kernel(name):
    if name == "block16 spmm":
        rng = np.random.default_rng(0)
        W = rng.standard_normal((3072, 768)).astype(np.float32)
        S = block_prune(W, (16, 16), 0.1)
        X = rng.standard_normal((768, 128)).astype(np.float32)
        return lambda nt: spmm(S, X, n_threads=nt)
    A = datasets.load_matrix("hangGlider_2")
    return lambda nt: spgemm(A, A, n_threads=nt)


class BusyCore:
    params = [KERNELS, [1, None]]
    param_names = ["kernel", "n_threads"]
    timeout = 120

    def setup(self, kernel, n_threads):
        if busy_processes is None:
            raise NotImplementedError("this sparsecore has no busy_processes")
        self.run = _kernel(kernel)
        self._busy = busy_processes(1)
        self._busy.__enter__()
        self.run(n_threads)

    def teardown(self, kernel, n_threads):
        self._busy.__exit__(None, None, None)

    def time_call(self, kernel, n_threads):
        self.run(n_threads)


class BusyCoreRatio:
    """Median time of ``n_threads=None`` over ``n_threads=1``, calls
    interleaved, one core busy."""

    params = [KERNELS]
    param_names = ["kernel"]
    unit = "ratio"
    timeout = 120

    def setup(self, kernel):
        self.run = _kernel(kernel)

    def track_busy_default_over_one_thread(self, kernel):
        with busy_processes(1):
            one, default = [], []
            self.run(1)
            self.run(None)
            for _ in range(15):
                t0 = time.perf_counter()
                self.run(1)
                one.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                self.run(None)
                default.append(time.perf_counter() - t0)
        return statistics.median(default) / statistics.median(one)


shrink_params(globals())
