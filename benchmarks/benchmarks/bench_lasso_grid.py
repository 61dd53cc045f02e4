"""Lasso / ElasticNet / L1-logistic estimators on cells of the sampled grid of
``python -m sparsecore bench lasso-grid`` (sparsecore/_bench/lasso_grid.py):
a small subset here, beside scikit-learn (liblinear for the logistic loss),
celer and skglm, one thread.

Each solver runs at the tol with which it reached relative duality gap 1e-6
on that cell in the grid's sweep (``lasso_grid.GRID_TOL``); ``track_rel_gap``
records the gap each one actually reached (one formula for all), so a time is
only comparable where the gaps are.
"""
import warnings

from .common import PeerBenchmark, SpeedupBenchmark, peer_params, shrink_params

from sparsecore._bench import _registry
from sparsecore._bench.lasso_grid import ASV_CELLS


class Fit(PeerBenchmark):
    family = "lasso-grid"
    params = peer_params("lasso-grid", ASV_CELLS, threads=[1])
    param_names = ["case", "solver", "threads"]

    def setup(self, case, solver, threads):
        warnings.simplefilter("ignore")
        super().setup(case, solver, threads)

    def time_fit(self, case, solver, threads):
        self.call()

    def track_rel_gap(self, case, solver, threads):
        info = _registry.cached_case(self.family, case).info
        return info["solver_gap"](solver)(*self.call())


class Speedup(SpeedupBenchmark):
    """time(scikit-learn) / time(sparsecore), both at relgap <= 1e-6, one run."""

    family = "lasso-grid"
    params = [ASV_CELLS, [1]]

    def track_speedup_vs_sklearn(self, case, threads):
        warnings.simplefilter("ignore")
        model = _registry.cached_case(self.family, case).info["cell"]["model"]
        self.base = "liblinear" if model == "logistic" else "sklearn"
        return self.speedup(case, threads)


shrink_params(globals())
