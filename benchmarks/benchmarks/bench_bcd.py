"""Greedy BCD estimators beside scikit-learn, liblinear, celer and skglm, and
the label propagation solvers: views of the registry families ``bcd.lasso``,
``bcd.logistic`` and ``bcd.labelprop`` (sparsecore/_bench/bcd.py).

Each solver runs at the tol that reached relative duality gap 1e-6 on these
problems in ``python -m sparsecore bench bcd`` (its own tol scale differs);
``track_rel_gap`` records the gap each one actually reached, so a time is
only comparable where the gaps are. Everything runs on one thread.
"""
import warnings

from .common import PeerBenchmark, SpeedupBenchmark, peer_params, shrink_params

from sparsecore._bench import _registry

LASSO_CASES = [f"{p} a_max/{k}" for p in ("sparse", "dense", "diabetes") for k in (10, 100)]
LOGISTIC_CASES = [f"{p} a_max/{k}" for p in ("dense", "breast_cancer") for k in (10, 100)]


class _Fit(PeerBenchmark):
    param_names = ["case", "solver", "threads"]

    def setup(self, case, solver, threads):
        warnings.simplefilter("ignore")
        super().setup(case, solver, threads)

    def time_fit(self, case, solver, threads):
        self.call()

    def track_rel_gap(self, case, solver, threads):
        return _registry.cached_case(self.family, case).info["rel_gap"](self.call())


class Lasso(_Fit):
    family = "bcd.lasso"
    params = peer_params("bcd.lasso", LASSO_CASES, threads=[1])


class L1Logistic(_Fit):
    family = "bcd.logistic"
    params = peer_params("bcd.logistic", LOGISTIC_CASES, threads=[1])


class LassoSpeedup(SpeedupBenchmark):
    """time(sklearn) / time(sparsecore), both at relgap <= 1e-6, measured in one run."""

    family = "bcd.lasso"
    base = "sklearn"
    params = [LASSO_CASES, [1]]

    def track_speedup_vs_sklearn(self, case, threads):
        warnings.simplefilter("ignore")
        return self.speedup(case, threads)


class L1LogisticSpeedup(SpeedupBenchmark):
    """time(liblinear) / time(sparsecore), both at relgap <= 1e-6."""

    family = "bcd.logistic"
    base = "liblinear"
    params = [LOGISTIC_CASES, [1]]

    def track_speedup_vs_liblinear(self, case, threads):
        warnings.simplefilter("ignore")
        return self.speedup(case, threads)


class LabelPropagation(PeerBenchmark):
    """Harmonic system of two moons (symmetrised 5-NN graph) to residual 1e-8."""

    family = "bcd.labelprop"
    params = peer_params("bcd.labelprop", peers=["sparsecore", "spsolve", "cg"], threads=[1])
    param_names = ["case", "solver", "threads"]
    timeout = 120

    def time_solve(self, case, solver, threads):
        self.call()


shrink_params(globals())
