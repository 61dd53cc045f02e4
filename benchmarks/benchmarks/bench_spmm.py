"""Block-sparse, N:M and CSR SpMM beside numpy dense (OpenBLAS at the same
thread count), scipy CSR/BSR and torch CSR/BSR: views of the registry
families ``spmm``, ``spmm.layer``, ``spmm.epilogue`` and ``spmm.convert``
(sparsecore/_bench/spmm.py)."""
from .common import PeerBenchmark, SpeedupBenchmark, peer_params, shrink_params

from sparsecore._bench.spmm import case_name

# sparsecore over the shapes and batches of a transformer layer, 90 % sparse
BATCH_CASES = [case_name(shape, f, b, 0.9) for shape in ["768x768", "3072x768", "768x3072",
                                                         "4096x4096"]
               for f in ["16x16", "8x1", "csr", "2:4", "1:8"] for b in [1, 16, 128, 512]]
LAYER_CASES = [case_name("3072x768", f, 128, 0.9) for f in ["16x16", "8x1", "csr", "2:4"]]
REAL_CASES = [case_name("n1024-l1", "csr", b) for b in (1, 128)]
SPEEDUP_CASES = [case_name("3072x768", f, 128, s) for f in ["16x16", "8x1", "csr"]
                 for s in (0.5, 0.9)] + [case_name("3072x768", f, 128)
                                         for f in ["2:4", "1:4", "2:8", "1:8"]]
# one vector (token-by-token decoding): memory-bound, the N:M permute kernel
SPEEDUP_CASES += [case_name("3072x768", f, 1) for f in ["2:4", "1:4"]]
# a few vectors, the weights read once for all of them
SPEEDUP_CASES += [case_name("3072x768", "2:4", 3)] + [case_name("3072x768", f, 3, 0.5)
                                                       for f in ["16x16", "8x1", "4x4"]]
# a panel one vector wide, whose K chunks follow its width (weights larger
# than most L2s)
SPEEDUP_CASES += [case_name("5632x2048", "2:4", 8)]


class SpMM(PeerBenchmark):
    """Y = S @ X (B=128, float32) for every peer that can take S."""

    family = "spmm"
    params = peer_params("spmm")
    timeout = 180

    def time_product(self, case, peer, threads):
        self.call()


class RealLayer(PeerBenchmark):
    """The sparse DNN layer n1024-l1 shipped in the package (1024 x 1024)."""

    family = "spmm"
    params = peer_params("spmm", REAL_CASES, ["sparsecore", "scipy csr"], [1])

    def time_product(self, case, peer, threads):
        self.call()


class SpMMBatch(PeerBenchmark):
    """sparsecore's S @ X and S.T @ G over shapes and batches, 1 thread."""

    family = "spmm.layer"
    params = peer_params("spmm.layer", BATCH_CASES, ["S@X", "S.T@G"], [1])
    param_names = ["case", "operation", "threads"]
    timeout = 180

    def time_operation(self, case, operation, threads):
        self.call()


class Layer(PeerBenchmark):
    """The three products of a sparse linear layer, batch-major (torch layout)."""

    family = "spmm.layer"
    params = peer_params("spmm.layer", LAYER_CASES, ["Xb@S.T", "Gb@S", "sddmm"], [1])
    param_names = ["case", "operation", "threads"]

    def time_operation(self, case, operation, threads):
        self.call()


class Epilogue(PeerBenchmark):
    """A layer's product (batch-major, float32) alone, with bias and GELU or
    SiLU in the kernel, and followed by torch's bias and GELU or SiLU."""

    family = "spmm.epilogue"
    params = peer_params("spmm.epilogue", None, None, [1, 2])
    param_names = ["case", "operation", "threads"]

    def time_operation(self, case, operation, threads):
        self.call()


class Conversions(PeerBenchmark):
    family = "spmm.convert"
    params = peer_params("spmm.convert", ["3072x768"],
                         ["nm_prune 2:4", "block_prune 16x16", "block_prune 1x1"], [1])
    param_names = ["case", "conversion", "threads"]

    def time_convert(self, case, conversion, threads):
        self.call()


class SpMMSpeedup(SpeedupBenchmark):
    """Speedup of sparsecore over numpy dense at 1 thread."""

    family = "spmm"
    base = "numpy dense"
    params = [SPEEDUP_CASES, [1]]

    def track_speedup_over_dense(self, case, threads):
        return self.speedup(case, threads)


shrink_params(globals())
