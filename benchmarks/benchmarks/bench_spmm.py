"""Block-sparse, N:M and CSR SpMM beside numpy dense (OpenBLAS at the same
thread count), scipy CSR/BSR and, when installed, torch CSR/BSR."""
import timeit

import numpy as np

from .common import safe_import, shrink_params

from sparsecore import datasets
from sparsecore.ops import nm_prune, sddmm, spmm
from sparsecore._bench.spmm import make_block, make_nm

with safe_import():
    from threadpoolctl import threadpool_limits

with safe_import():
    import torch

SHAPES = ["768x768", "3072x768", "768x3072", "4096x4096"]
FORMATS = ["16x16", "8x8", "8x1", "4x1", "csr", "2:4", "1:4", "2:8", "1:8"]


def _shape(name):
    return tuple(int(v) for v in name.split("x"))


def _make(fmt, shape, sparsity, dtype=np.float32):
    if ":" in fmt:
        n, m = (int(v) for v in fmt.split(":"))
        return make_nm(shape, n, m, dtype)
    bs = (1, 1) if fmt == "csr" else _shape(fmt)
    return make_block(shape, bs, sparsity, dtype)


def _limits(threads):
    if "threadpool_limits" in globals():
        return threadpool_limits(threads)
    raise NotImplementedError("threadpoolctl is needed to pin the BLAS thread count")


class SpMM:
    """Y = S @ X (B=128, float32) for every library that can take S."""

    params = [["3072x768", "4096x4096"], FORMATS, [0.5, 0.9],
              ["sparsecore", "numpy_dense", "scipy_csr", "scipy_bsr", "torch_csr"], [1, 2]]
    param_names = ["shape", "format", "sparsity", "library", "threads"]
    timeout = 180

    def setup(self, shape, fmt, sparsity, library, threads):
        if ":" in fmt and sparsity != 0.5:
            raise NotImplementedError("an N:M pattern fixes its sparsity")
        if library.startswith("scipy") and threads != 1:
            raise NotImplementedError("scipy.sparse is single-threaded")
        if library == "scipy_bsr" and (fmt == "csr" or ":" in fmt):
            raise NotImplementedError("scipy BSR needs a block format")
        if library == "torch_csr" and "torch" not in globals():
            raise NotImplementedError("torch is not installed")
        S = _make(fmt, _shape(shape), sparsity)
        self.S = S
        self.X = np.random.default_rng(0).standard_normal((S.shape[1], 128)).astype(np.float32)
        self.limiter = _limits(threads)
        if library == "numpy_dense":
            self.W = S.toarray()
        elif library == "scipy_csr":
            self.C = S.to_scipy("csr")
        elif library == "scipy_bsr":
            self.C = S.to_scipy("bsr")
        elif library == "torch_csr":
            torch.set_num_threads(threads)
            self.C = torch.from_numpy(S.toarray()).to_sparse_csr()
            self.Xt = torch.from_numpy(self.X)

    def teardown(self, *args):
        if hasattr(self, "limiter"):   # setup may have skipped the case
            self.limiter.restore_original_limits()

    def time_product(self, shape, fmt, sparsity, library, threads):
        if library == "sparsecore":
            spmm(self.S, self.X, n_threads=threads)
        elif library == "numpy_dense":
            self.W @ self.X
        elif library == "torch_csr":
            self.C @ self.Xt
        else:
            self.C @ self.X


class SpMMBatch:
    """sparsecore over the shapes and batches of the issue, 90 % (N:M: its own)."""

    params = [SHAPES, ["16x16", "8x1", "csr", "2:4", "1:8"], [1, 16, 128, 512]]
    param_names = ["shape", "format", "batch"]
    timeout = 180

    def setup(self, shape, fmt, batch):
        self.S = S = _make(fmt, _shape(shape), 0.9)
        rng = np.random.default_rng(0)
        cols = () if batch == 1 else (batch,)
        self.X = rng.standard_normal((S.shape[1],) + cols).astype(np.float32)
        self.G = rng.standard_normal((S.shape[0],) + cols).astype(np.float32)
        spmm(S.T, self.G)  # build the cached transposed structure

    def time_spmm(self, shape, fmt, batch):
        spmm(self.S, self.X, n_threads=1)

    def time_input_gradient(self, shape, fmt, batch):
        spmm(self.S.T, self.G, n_threads=1)


class Layer:
    """The three products of a sparse linear layer, batch-major (torch layout)."""

    params = [["16x16", "8x1", "csr", "2:4"]]
    param_names = ["format"]

    def setup(self, fmt):
        S = _make(fmt, (3072, 768), 0.9)
        rng = np.random.default_rng(0)
        self.S = S
        self.Xb = rng.standard_normal((128, 768)).astype(np.float32)
        self.Gb = rng.standard_normal((128, 3072)).astype(np.float32)
        self.Gb @ S  # builds the cached transposed structure once, as in training

    def time_forward(self, fmt):
        self.Xb @ self.S.T

    def time_input_gradient(self, fmt):
        self.Gb @ self.S

    def time_weight_gradient(self, fmt):
        sddmm(self.Gb.T, self.Xb.T, self.S)


class Conversions:
    params = [["nm_prune 2:4", "block_prune 16x16", "block_prune 1x1"]]
    param_names = ["conversion"]

    def setup(self, conv):
        self.W = np.random.default_rng(0).standard_normal((3072, 768)).astype(np.float32)

    def time_convert(self, conv):
        from sparsecore.ops import block_prune

        if conv == "nm_prune 2:4":
            nm_prune(self.W, 2, 4)
        elif conv == "block_prune 16x16":
            block_prune(self.W, (16, 16), 0.1)
        else:
            block_prune(self.W, (1, 1), 0.1)


class RealLayer:
    """The sparse DNN layer n1024-l1 shipped in the package (1024 x 1024, 32
    nonzeros per row) against scipy."""

    params = [["sparsecore", "scipy"], [1, 128]]
    param_names = ["library", "batch"]

    def setup(self, library, batch):
        import scipy.sparse as sp

        self.A = sp.csr_array(datasets.load_matrix("n1024-l1")).astype(np.float32)
        self.X = np.random.default_rng(0).standard_normal((1024, batch)).astype(np.float32)

    def time_product(self, library, batch):
        if library == "sparsecore":
            spmm(self.A, self.X, n_threads=1)
        else:
            self.A @ self.X


class SpMMSpeedup:
    """Speedup of sparsecore over numpy dense at 1 thread (the issue's goal
    metric), tracked so the dashboard shows where we stand."""

    params = [["16x16", "8x1", "csr", "2:4", "1:4", "2:8", "1:8"], [0.5, 0.9]]
    param_names = ["format", "sparsity"]
    unit = "speedup"
    timeout = 120

    def setup(self, fmt, sparsity):
        if ":" in fmt and sparsity != 0.5:
            raise NotImplementedError("an N:M pattern fixes its sparsity")
        self.S = _make(fmt, (3072, 768), sparsity)
        self.W = self.S.toarray()
        self.X = np.random.default_rng(0).standard_normal((768, 128)).astype(np.float32)

    def track_speedup_over_dense(self, fmt, sparsity):
        with _limits(1):
            dense, ours = [], []
            for _ in range(5):  # alternate, take the median of the ratios
                dense.append(min(timeit.repeat(lambda: self.W @ self.X, number=3, repeat=3)))
                ours.append(min(timeit.repeat(lambda: spmm(self.S, self.X, n_threads=1),
                                              number=3, repeat=3)))
        return float(np.median(np.array(dense) / np.array(ours)))


shrink_params(globals())
