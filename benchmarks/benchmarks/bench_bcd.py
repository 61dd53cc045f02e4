"""Greedy BCD estimators beside scikit-learn, liblinear, celer and skglm.

Each solver runs at the tol that reached relative duality gap 1e-6 on these
problems in ``python -m sparsecore bench bcd`` (its own tol scale differs:
see sparsecore/_bench/bcd.py); ``track_rel_gap`` records the gap each one
actually reached, so a time is only comparable where the gaps are.
Everything runs on one thread.
"""
import time
import warnings

import numpy as np

from .common import safe_import, shrink_params

from sparsecore._bench.bcd_problems import (
    alpha_max_lasso,
    alpha_max_logistic,
    lasso_rel_gap,
    logistic_rel_gap,
    make_problem,
)

with safe_import():
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
with safe_import():
    import sklearn.linear_model as sklm
    from sparsecore.linear_model import GreedyBCDLasso, GreedyBCDLogisticRegression
with safe_import():
    import celer
with safe_import():
    import skglm

# tol per solver that reaches relgap 1e-6 (measured by the bench suite)
LASSO_TOL = {"sparsecore": 1e-6, "sklearn": 1e-8, "celer": 1e-8, "skglm": 1e-8}
LOGISTIC_TOL = {"sparsecore": 1e-6, "liblinear": 1e-10, "celer": 1e-8, "skglm": 1e-9}
# liblinear's tol scale depends on the problem: 1e-8 already reaches relgap
# 6.6e-8 on "dense" (1 s), where 1e-10 runs for minutes
LOGISTIC_TOL_OVERRIDE = {("dense", "liblinear"): 1e-8}

_CACHE = {}


def _problem(name, kind):
    key = (name, kind)
    if key not in _CACHE:
        _CACHE[key] = make_problem(name, kind)
    return _CACHE[key]


def _lasso_fit(solver, X, y, a):
    tol = LASSO_TOL[solver]
    if solver == "sparsecore":
        return GreedyBCDLasso(alpha=a, tol=tol, fit_intercept=False, n_threads=1).fit(X, y).coef_
    if solver == "sklearn":
        return sklm.Lasso(alpha=a, tol=tol, fit_intercept=False, max_iter=100_000).fit(X, y).coef_
    if solver == "celer":
        return celer.Lasso(alpha=a, tol=tol, fit_intercept=False).fit(X, y).coef_
    return skglm.Lasso(alpha=a, tol=tol, fit_intercept=False).fit(X, y).coef_


def _logistic_fit(solver, X, y, a, problem):
    tol = LOGISTIC_TOL_OVERRIDE.get((problem, solver), LOGISTIC_TOL[solver])
    C = 1 / (X.shape[0] * a)
    if solver == "sparsecore":
        return GreedyBCDLogisticRegression(C=C, l1_ratio=1.0, tol=tol, fit_intercept=False,
                                           n_threads=1).fit(X, y).coef_[0]
    if solver == "liblinear":
        return sklm.LogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", tol=tol,
                                       fit_intercept=False, max_iter=100_000).fit(X, y).coef_[0]
    if solver == "celer":
        return celer.LogisticRegression(C=C, tol=tol, fit_intercept=False).fit(X, y).coef_[0]
    return skglm.SparseLogisticRegression(alpha=a, tol=tol, fit_intercept=False).fit(X, y).coef_[0]


def _available(solver):
    """Whether the solver's package imported (celer and skglm are optional)."""
    if solver in ("celer", "skglm"):
        return solver in globals()
    return "sklm" in globals()


class Lasso:
    params = [["sparse", "dense", "diabetes"], [10, 100], ["sparsecore", "sklearn", "celer", "skglm"]]
    param_names = ["problem", "alpha_max_over", "solver"]
    timeout = 300

    def setup(self, problem, frac, solver):
        if not _available(solver):
            raise NotImplementedError(f"{solver} is not installed")
        self.X, self.y = _problem(problem, "lasso")
        self.a = alpha_max_lasso(self.X, self.y) / frac
        warnings.simplefilter("ignore")

    def time_fit(self, problem, frac, solver):
        _lasso_fit(solver, self.X, self.y, self.a)

    def track_rel_gap(self, problem, frac, solver):
        return lasso_rel_gap(self.X, self.y, _lasso_fit(solver, self.X, self.y, self.a), self.a)


class LassoSpeedup:
    """time(sklearn) / time(sparsecore), both at relgap <= 1e-6, measured in one run."""
    params = [["sparse", "dense", "diabetes"], [10, 100]]
    param_names = ["problem", "alpha_max_over"]
    timeout = 300

    def setup(self, problem, frac):
        self.X, self.y = _problem(problem, "lasso")
        self.a = alpha_max_lasso(self.X, self.y) / frac
        warnings.simplefilter("ignore")

    def track_speedup_vs_sklearn(self, problem, frac):
        return _median_ratio(lambda: _lasso_fit("sklearn", self.X, self.y, self.a),
                             lambda: _lasso_fit("sparsecore", self.X, self.y, self.a))

    track_speedup_vs_sklearn.unit = "x"


class L1Logistic:
    params = [["dense", "breast_cancer"], [10, 100], ["sparsecore", "liblinear", "celer", "skglm"]]
    param_names = ["problem", "alpha_max_over", "solver"]
    timeout = 300

    def setup(self, problem, frac, solver):
        if not _available(solver):
            raise NotImplementedError(f"{solver} is not installed")
        self.X, self.y = _problem(problem, "logistic")
        self.a = alpha_max_logistic(self.X, self.y) / frac
        warnings.simplefilter("ignore")

    def time_fit(self, problem, frac, solver):
        _logistic_fit(solver, self.X, self.y, self.a, problem)

    def track_rel_gap(self, problem, frac, solver):
        coef = _logistic_fit(solver, self.X, self.y, self.a, problem)
        return logistic_rel_gap(self.X, self.y, coef, self.a)


class L1LogisticSpeedup:
    """time(liblinear) / time(sparsecore), both at relgap <= 1e-6."""
    params = [["dense", "breast_cancer"], [10, 100]]
    param_names = ["problem", "alpha_max_over"]
    timeout = 300

    def setup(self, problem, frac):
        self.X, self.y = _problem(problem, "logistic")
        self.a = alpha_max_logistic(self.X, self.y) / frac
        warnings.simplefilter("ignore")

    def track_speedup_vs_liblinear(self, problem, frac):
        return _median_ratio(lambda: _logistic_fit("liblinear", self.X, self.y, self.a, problem),
                             lambda: _logistic_fit("sparsecore", self.X, self.y, self.a, problem))

    track_speedup_vs_liblinear.unit = "x"


class LabelPropagation:
    """Harmonic system of two moons (symmetrised 5-NN graph) to residual 1e-8."""
    params = [[2_000, 20_000], ["sparsecore", "spsolve", "cg"]]
    param_names = ["n", "solver"]
    timeout = 120

    def setup(self, n, solver):
        import scipy.sparse as sp

        from sparsecore._bench.bcd_labelprop import _system, moons_graph

        X, y, self.lab, self.W = moons_graph(n, 100 if n == 2_000 else 200)
        self.Yl = np.eye(2)[y[self.lab]]
        self.A, self.B = _system(self.W, self.lab, y)
        self.Ac = sp.csc_array(self.A)

    def time_solve(self, n, solver):
        from scipy.sparse.linalg import cg, spsolve

        from sparsecore.optimize import harmonic_solve

        if solver == "sparsecore":
            harmonic_solve(self.W, self.lab, self.Yl, tol=1e-8)
        elif solver == "spsolve":
            spsolve(self.Ac, self.B)
        else:
            for c in range(2):
                cg(self.A, self.B[:, c], rtol=1e-8, maxiter=10_000)


def _median_ratio(base, ours, rounds=5):
    ratios = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        base()
        t1 = time.perf_counter()
        ours()
        t2 = time.perf_counter()
        ratios.append((t1 - t0) / (t2 - t1))
    return float(np.median(ratios))


shrink_params(globals())
