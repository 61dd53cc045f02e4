"""Useful GF/s of the structured kernels as a percentage of the dense GEMM
peak measured in the same process (numpy, same dtype, 1 thread): the asv view
of ``python -m sparsecore bench gflops`` (sparsecore/_bench/gflops.py),
which prints the same figures with the CPU model, flags and clock."""
from .common import shrink_params

from sparsecore._bench import gflops

#: kernel builders of the gflops suite, by name
KERNELS = {
    "2:4 SpMM B=128": lambda: gflops._nm_kernel(2, 4, 128),
    "2:4 SpMM B=1": lambda: gflops._nm_kernel(2, 4, 1),
    "block 16x16 50% B=128": lambda: gflops._block_kernel(0.5, 128),
    "block 16x16 10% B=128": lambda: gflops._block_kernel(0.1, 128),
    "CSR 1% B=64 float32": lambda: gflops._csr_kernel("float32"),
}


class UsefulGFlops:
    """Useful GF/s (2 x the multiply-adds the product must do / time) of one
    kernel at one thread, and that rate as a percentage of numpy's dense
    GEMM of the same dtype, measured just before it."""

    params = [list(KERNELS)]
    param_names = ["kernel"]
    timeout = 180
    unit = "%"

    def setup(self, kernel):
        self.k = KERNELS[kernel]()
        peaks = gflops.dense_peaks(1, rounds=3, quick=True)
        self.peak = gflops.peak_of(peaks, self.k.dtype, 1)
        self.rec = gflops.measure_kernel(self.k, 1, rounds=5, peak=self.peak)

    def track_percent_of_dense_peak(self, kernel):
        return 100.0 * self.rec["fraction_of_peak"]

    def track_useful_gflops(self, kernel):
        return self.rec["gflops"]

    track_useful_gflops.unit = "GF/s"


shrink_params(globals())
