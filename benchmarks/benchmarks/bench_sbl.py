"""Kronecker SBL (structured, never forms the dictionary) beside classic
EM-SBL and scikit-learn's ARDRegression and OMP on the formed dictionary, on
the problems of He & Joseph (IEEE TSP 2024, arXiv 2307.14719): views of the
registry family ``sbl`` (sparsecore/_bench/sbl.py)."""
import numpy as np

from .common import PeerBenchmark, SpeedupBenchmark, peer_params, shrink_params

from sparsecore._bench.sbl import trial_errors


class KroneckerSBLFit(PeerBenchmark):
    family = "sbl"
    params = peer_params("sbl", peers=["KroSBL-svd", "KroSBL-am", "PC-KroSBL"])
    timeout = 300

    def time_fit(self, case, peer, threads):
        self.call()

    def peakmem_fit(self, case, peer, threads):
        self.call()


class DensePeers(PeerBenchmark):
    """Classic EM-SBL, ARDRegression and OMP on the formed dictionary."""

    family = "sbl"
    params = peer_params("sbl", ["kron2_32x64", "paper3_15^3", "irs_18^3"],
                         ["EM-SBL", "ARDRegression", "OMP"], [1])
    timeout = 600
    number = 1
    repeat = 1

    def time_fit(self, case, peer, threads):
        self.call()

    def peakmem_fit(self, case, peer, threads):
        self.call()


class SBLSpeedup(SpeedupBenchmark):
    """time(classic EM-SBL on the formed A) / time(KroSBL-svd), 1 thread."""

    family = "sbl"
    base = "EM-SBL"
    ours = "KroSBL-svd"
    params = [["kron2_32x64", "paper3_15^3"], [1]]
    timeout = 600

    def track_speedup_over_em_sbl(self, case, threads):
        return self.speedup(case, threads)


class SBLAccuracy:
    """Mean NMSE (dB) over 10 problems, as the paper averages."""

    params = [["kron2_32x64", "irs_18^3"], ["KroSBL-svd", "KroSBL-am", "PC-KroSBL"]]
    param_names = ["case", "peer"]
    unit = "dB"
    timeout = 300

    def setup(self, case, peer):
        if (peer == "PC-KroSBL") != (case == "irs_18^3"):
            raise NotImplementedError(f"{peer} is not measured on {case}")

    def track_nmse_db(self, case, peer):
        return float(10 * np.log10(np.mean(trial_errors(case, peer))))


shrink_params(globals())
