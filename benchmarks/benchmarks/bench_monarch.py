"""Monarch products beside numpy dense BLAS, numpy stacked matmul and torch
bmm, and the projection beside the batched LAPACK SVD (Monarch note,
../shared/notes/spmm_monarch.md section 3)."""
import timeit

import numpy as np

from .common import safe_import, shrink_params

from sparsecore.formats import MonarchMatrix
from sparsecore.ops import monarch_project

with safe_import():
    from threadpoolctl import threadpool_limits

with safe_import():
    import torch

SIZES = [1024, 4096]
BATCHES = [1, 64, 512]


def _stacked(w1, w2, X):
    k, q, p = w1.shape
    l, s, r = w2.shape
    B = X.shape[1]
    Z = np.matmul(w1, X.reshape(k, p, B))
    U = np.matmul(w2, Z.reshape(r, l, B).transpose(1, 0, 2))
    return U.transpose(1, 0, 2).reshape(l * s, B)


def _limits(threads):
    if "threadpool_limits" not in globals():
        raise NotImplementedError("threadpoolctl is not installed")
    return threadpool_limits(threads)


class MonarchProduct:
    """Y = M @ X, X of shape (n, batch), float32, sqrt(n) blocks."""

    params = [SIZES, BATCHES, ["sparsecore", "numpy dense", "numpy stacked", "torch bmm"],
              [1, 2]]
    param_names = ["n", "batch", "library", "threads"]
    timeout = 120

    def setup(self, n, batch, library, threads):
        self.M = MonarchMatrix.random((n, n), dtype=np.float32, random_state=0)
        X = np.random.default_rng(1).standard_normal((n, batch)).astype(np.float32)
        self.X = X[:, 0] if batch == 1 else X
        self._limit = None
        if library == "numpy dense":
            self.W = self.M.toarray()
        if library.startswith("numpy"):
            self._limit = _limits(threads)
        if library == "torch bmm":
            if "torch" not in globals():
                raise NotImplementedError("torch is not installed")
            torch.set_num_threads(threads)
            self.t = (torch.from_numpy(self.M.right.copy()), torch.from_numpy(self.M.left.copy()),
                      torch.from_numpy(X))

    def teardown(self, n, batch, library, threads):
        if getattr(self, "_limit", None) is not None:   # setup may have skipped the case
            self._limit.restore_original_limits()

    def time_product(self, n, batch, library, threads):
        if library == "sparsecore":
            self.M.matmul(self.X, n_threads=threads)
        elif library == "numpy dense":
            self.W @ self.X
        elif library == "numpy stacked":
            _stacked(self.M.right, self.M.left, self.X.reshape(n, -1))
        else:
            w1, w2, X = self.t
            k, q, p = w1.shape
            l, s, r = w2.shape
            Z = torch.bmm(w1, X.view(k, p, -1))
            U = torch.bmm(w2, Z.view(r, l, -1).transpose(0, 1))
            U.transpose(0, 1).reshape(l * s, -1)


class MonarchProductSpeedup:
    """Speedup of sparsecore over numpy dense and over numpy stacked matmul
    (the better peer on this machine), both at the same thread count."""

    params = [SIZES, BATCHES, [1, 2]]
    param_names = ["n", "batch", "threads"]
    unit = "speedup"

    def setup(self, n, batch, threads):
        self.M = MonarchMatrix.random((n, n), dtype=np.float32, random_state=0)
        self.W = self.M.toarray()
        X = np.random.default_rng(1).standard_normal((n, batch)).astype(np.float32)
        self.X = X
        self._limit = _limits(threads)

    def teardown(self, n, batch, threads):
        if hasattr(self, "_limit"):   # setup may have skipped the case
            self._limit.restore_original_limits()

    def _ours(self, threads):
        return min(timeit.repeat(lambda: self.M.matmul(self.X, n_threads=threads),
                                 number=5, repeat=5))

    def track_speedup_over_dense(self, n, batch, threads):
        theirs = min(timeit.repeat(lambda: self.W @ self.X, number=5, repeat=5))
        return theirs / self._ours(threads)

    def track_speedup_over_stacked(self, n, batch, threads):
        theirs = min(timeit.repeat(lambda: _stacked(self.M.right, self.M.left, self.X),
                                   number=5, repeat=5))
        return theirs / self._ours(threads)


class MonarchProjection:
    """Nearest Monarch matrix to a Gaussian float32 matrix: power iteration
    against the batched LAPACK SVD (method='svd')."""

    params = [SIZES, ["power", "svd"], [1, 2]]
    param_names = ["n", "method", "threads"]
    timeout = 300

    def setup(self, n, method, threads):
        if method == "svd" and threads != 1:
            raise NotImplementedError("the SVD runs in numpy's LAPACK; measured at 1 thread")
        self.W = np.random.default_rng(2).standard_normal((n, n)).astype(np.float32)
        self._limit = _limits(1)

    def teardown(self, n, method, threads):
        if hasattr(self, "_limit"):   # setup may have skipped the case
            self._limit.restore_original_limits()

    def time_project(self, n, method, threads):
        monarch_project(self.W, method=method, n_threads=threads)

    def track_relative_error(self, n, method, threads):
        return monarch_project(self.W, method=method, n_threads=threads, return_error=True)[1]

    track_relative_error.unit = "relative error"


shrink_params(globals())
