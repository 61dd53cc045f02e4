"""Unchanged scipy / scikit-learn code with sparsecore.accelerate() off and on
(the workloads of ``python -m sparsecore bench accelerate``)."""
from .common import shrink_params

from sparsecore import accelerate
from sparsecore._bench.accelerate import build_workload

WORKLOADS = ["knn digits S@S", "gram bcsstk13", "tfidf X@X.T", "ppr64 pushpull",
             "pagerank pushpull", "tfidf TruncatedSVD(50)"]


class Accelerate:
    params = [WORKLOADS, ["scipy", "accelerated"], [1, 2]]
    param_names = ["workload", "peer", "threads"]
    timeout = 300

    def setup(self, workload, peer, threads):
        if peer == "scipy" and threads != 1:
            raise NotImplementedError("scipy is single-threaded")
        try:
            _, self.flops, self.fn = build_workload(workload, small=True)
        except OSError as exc:
            # graph and Gram workloads need the shared Matrix Market folder
            raise NotImplementedError(f"{workload}: {exc}")
        self.state = accelerate(peer == "accelerated", n_threads=threads)
        self.fn()   # warm-up (and the thread pool)

    def teardown(self, workload, peer, threads):
        self.state.restore()

    def time_workload(self, workload, peer, threads):
        self.fn()


class AccelerateForced:
    """Every eligible product through sparsecore (``min_flops=0``): the
    kernels' own speed on small products, where the default thresholds keep
    scipy's path."""

    params = [["knn digits G@G", "pagerank pushpull"], [1, 2]]
    param_names = ["workload", "threads"]
    timeout = 300

    def setup(self, workload, threads):
        try:
            _, self.flops, self.fn = build_workload(workload, small=True)
        except OSError as exc:
            raise NotImplementedError(f"{workload}: {exc}")
        self.state = accelerate(n_threads=threads, min_flops=0)
        self.fn()

    def teardown(self, workload, threads):
        self.state.restore()

    def time_workload(self, workload, threads):
        self.fn()


shrink_params(globals())
