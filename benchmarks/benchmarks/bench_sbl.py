"""Kronecker SBL (structured, never forms the dictionary) beside classic
EM-SBL and scikit-learn's ARDRegression and OMP on the formed dictionary, on
the problems of He & Joseph (IEEE TSP 2024, arXiv 2307.14719)."""
import timeit
import warnings

import numpy as np

from .common import safe_import, shrink_params

from sparsecore import datasets
from sparsecore.formats import KroneckerOperator

with safe_import():
    from sparsecore.linear_model import kronecker_sbl, sbl

with safe_import():
    from sklearn.linear_model import ARDRegression, OrthogonalMatchingPursuit

with safe_import():
    from threadpoolctl import threadpool_limits


def _problem(name, seed=0):
    if name == "kron2_32x64":  # 1024 x 4096, 4 x 4 support, 20 dB
        return datasets.make_kronecker_sparse([(32, 64), (32, 64)], 4, snr_db=20, seed=seed)
    if name == "paper3_15^3":  # the paper's 3-mode setting, 1440 x 3375
        return datasets.make_kronecker_sparse([(8, 15), (12, 15), (15, 15)], 3, snr_db=25, seed=seed)
    if name == "irs_18^3":  # the paper's IRS-MIMO channel, complex 288 x 5832
        return datasets.make_irs_channel(snr_db=12, seed=seed)
    if name == "kron3_64^3":  # 32768 x 262144: the formed dictionary would be 64 GiB
        return datasets.make_kronecker_sparse([(32, 64)] * 3, 4, snr_db=20, seed=seed)
    raise NotImplementedError(name)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


class KroneckerSBLFit:
    params = [["kron2_32x64", "paper3_15^3", "irs_18^3", "kron3_64^3"], ["svd", "am"], [1, 2]]
    param_names = ["problem", "method", "threads"]
    timeout = 300

    def setup(self, name, method, threads):
        if name == "kron3_64^3" and method == "am":
            raise NotImplementedError("AM-KroSBL needs > 500 iterations here")
        self.p = _problem(name)

    def time_fit(self, name, method, threads):
        p = self.p
        _quiet(kronecker_sbl, p.factors, p.y, method=method, noise_var=p.noise_var,
               n_threads=threads)

    def peakmem_fit(self, name, method, threads):
        self.time_fit(name, method, threads)


class DensePeers:
    """Classic EM-SBL, ARDRegression and OMP on the formed dictionary."""

    params = [["kron2_32x64", "paper3_15^3", "irs_18^3"], ["em_sbl", "ard", "omp"]]
    param_names = ["problem", "peer"]
    timeout = 600
    number = 1
    repeat = 1

    def setup(self, name, peer):
        if peer in ("ard", "omp") and name != "kron2_32x64":
            raise NotImplementedError("ARD and OMP run on the real 2-mode problem only")
        self.p = _problem(name)
        self.A = KroneckerOperator(self.p.factors).toarray()

    def time_fit(self, name, peer):
        p, A = self.p, self.A
        with threadpool_limits(1):
            if peer == "em_sbl":
                _quiet(sbl, A, p.y, noise_var=p.noise_var)
            elif peer == "ard":
                _quiet(ARDRegression(fit_intercept=False, threshold_lambda=1e4, tol=1e-3).fit, A, p.y)
            else:
                OrthogonalMatchingPursuit(n_nonzero_coefs=16, fit_intercept=False).fit(A, p.y)

    def peakmem_fit(self, name, peer):
        self.time_fit(name, peer)


class SBLSpeedup:
    """time(classic EM-SBL on the formed A) / time(KroSBL-svd), 1 thread."""

    params = [["kron2_32x64", "paper3_15^3"]]
    param_names = ["problem"]
    unit = "speedup"
    timeout = 600

    def setup(self, name):
        self.p = _problem(name)
        self.A = KroneckerOperator(self.p.factors).toarray()

    def track_speedup_over_em_sbl(self, name):
        p, A = self.p, self.A
        with threadpool_limits(1):
            ours = min(timeit.repeat(
                lambda: _quiet(kronecker_sbl, p.factors, p.y, noise_var=p.noise_var),
                number=3, repeat=3)) / 3
            theirs = min(timeit.repeat(lambda: _quiet(sbl, A, p.y, noise_var=p.noise_var),
                                       number=1, repeat=1))
        return theirs / ours


class SBLAccuracy:
    """Mean NMSE (dB) over 10 problems, as the paper averages."""

    params = [["kron2_32x64", "irs_18^3"], ["svd", "am"]]
    param_names = ["problem", "method"]
    unit = "dB"
    timeout = 300

    def track_nmse_db(self, name, method):
        errs = []
        for s in range(10):
            p = _problem(name, seed=1000 + s)
            res = _quiet(kronecker_sbl, p.factors, p.y, method=method, noise_var=p.noise_var)
            err = p.channel_nmse(res.coef) if hasattr(p, "channel_nmse") else p.nmse(res.coef)
            errs.append(err)
        return float(10 * np.log10(np.mean(errs)))


shrink_params(globals())
