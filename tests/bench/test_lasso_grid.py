"""The lasso-grid benchmark: its design, its data and its one duality gap."""
import warnings
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression

from sparsecore._bench import lasso_grid as g
from sparsecore.linear_model import GreedyBCDLogisticRegression
from sparsecore._bench.bcd_problems import lasso_rel_gap, logistic_rel_gap


def test_design_is_balanced_and_reproducible():
    assert len(g.DESIGN) == 40
    assert len({g.cell_name(c) for c in g.DESIGN}) == 40
    for factor, levels in g.FACTORS.items():
        counts = Counter(c[factor] for c in g.DESIGN)
        assert set(counts) == set(levels), factor
        assert max(counts.values()) - min(counts.values()) <= 1, factor
    assert [g.cell_name(c) for c in g.sample_design()] == [g.cell_name(c) for c in g.DESIGN]


def _problem(density, seed=0, n=60, p=40):
    from sparsecore.datasets import make_sparse_linear

    X, y, _ = make_sparse_linear(n, p, density=density, n_informative=5, seed=seed)
    return X, y


@pytest.mark.parametrize("density", [1.0, 0.2])
def test_gap_matches_the_bcd_suite_formulas_without_intercept(density):
    X, y = _problem(density)
    rng = np.random.default_rng(1)
    w = rng.standard_normal(X.shape[1]) * (rng.random(X.shape[1]) < 0.2)
    a = g.alpha_max("lasso", X, y, False) / 10
    # float64 arithmetic on the same formula: agree to rounding
    assert g.rel_gap("lasso", X, y, w, 0.0, a, False) == pytest.approx(
        lasso_rel_gap(X, y, w, a), rel=1e-10)
    ys = np.where(y > 0, 1.0, -1.0)
    a = g.alpha_max("logistic", X, ys, False) / 10
    assert g.rel_gap("logistic", X, ys, 0.1 * w, 0.0, a, False) == pytest.approx(
        logistic_rel_gap(X, ys, 0.1 * w, a), rel=1e-10)


def _tight(model, X, y, a, fit_intercept):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if model == "lasso":
            est = Lasso(alpha=a, tol=1e-14, max_iter=10**6, fit_intercept=fit_intercept)
        elif model == "enet":
            est = ElasticNet(alpha=a, l1_ratio=g.L1_RATIO, tol=1e-14, max_iter=10**6,
                             fit_intercept=fit_intercept)
        elif not fit_intercept:
            est = LogisticRegression(C=1 / (X.shape[0] * a), l1_ratio=1.0, solver="liblinear",
                                     tol=1e-12, max_iter=10**6, fit_intercept=False)
        else:
            # liblinear penalises the intercept; this solver does not
            est = GreedyBCDLogisticRegression(C=1 / (X.shape[0] * a), l1_ratio=1.0, tol=1e-14,
                                              max_iter=10**4)
        est.fit(X, y)
    return np.ravel(est.coef_), float(np.ravel(est.intercept_)[0]) if fit_intercept else 0.0


def _primal(model, X, y, w, b, a):
    z = X @ w + b
    if model == "logistic":
        return float(np.mean(np.logaddexp(0, -y * z))) + a * np.abs(w).sum()
    a1 = a * (g.L1_RATIO if model == "enet" else 1.0)
    r = y - z
    return r @ r / (2 * len(y)) + a1 * np.abs(w).sum() + 0.5 * (a - a1) * w @ w


@pytest.mark.parametrize("model", ["lasso", "enet", "logistic"])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("density", [1.0, 0.3])
def test_gap_vanishes_at_the_optimum_and_bounds_the_suboptimality(model, fit_intercept, density):
    X, y = _problem(density, n=80, p=30)
    y = y + 2.0
    if model == "logistic":
        y = np.where(y > np.median(y) - 0.3, 1.0, -1.0)
    a = g.alpha_max(model, X, y, fit_intercept) / 20
    w, b = _tight(model, X, y, a, fit_intercept)
    # at a solution solved to machine precision the gap is at rounding level
    assert abs(g.rel_gap(model, X, y, w, b, a, fit_intercept)) < 1e-8
    P_opt = _primal(model, X, y, w, b, a)
    # a perturbed point: the gap is an upper bound of its relative suboptimality
    rng = np.random.default_rng(2)
    for scale in (1e-3, 1e-1):
        w2 = w + scale * rng.standard_normal(w.size) * (w != 0)
        b2 = b + scale if fit_intercept else 0.0
        P2 = _primal(model, X, y, w2, b2, a)
        gap = g.rel_gap(model, X, y, w2, b2, a, fit_intercept)
        assert gap * P2 >= (P2 - P_opt) * (1 - 1e-9) - 1e-14
        assert gap > 0


def test_alpha_max_gives_the_zero_solution():
    X, y = _problem(0.3)
    for model in ("lasso", "enet"):
        for icpt in (False, True):
            a = g.alpha_max(model, X, y, icpt)
            w, _ = _tight(model, X, y, a * 1.001, icpt)
            assert not np.any(w)
            w, _ = _tight(model, X, y, a * 0.9, icpt)
            assert np.any(w)


def test_cells_build_in_every_layout():
    name = g.cell_name(next(c for c in g.DESIGN if c["density"] < 1 and c["dtype"] == "float32"))
    case = g.make_case(name, scale=1e-3)
    X, y, a = case.inputs
    assert sp.issparse(X) and X.dtype == np.float32 and a > 0
    assert case.info["rel_gap"](np.zeros(X.shape[1]), 0.0) > 0
    assert sp.issparse(g._own_layout("liblinear", X)) and g._own_layout("liblinear", X).format == "csr"


def test_summary_flags_the_misses():
    cell = dict(g.DESIGN[0], density=1e-3, model="lasso")
    rec = {"case": "x", "cell": cell, "shape": [1, 1], "nnz": 1,
           "results": {"sparsecore": {"time": 1.0}, "sklearn": {"time": 1.0, "status": "ok"},
                       "celer": {"time": 2.0, "status": "ok"}}}
    g._cell_row(rec)
    summary, misses = g.summarise([rec])
    assert summary["sklearn"]["geomean"] == pytest.approx(1.0)
    assert summary["celer"]["worst"] == pytest.approx(0.5)
    assert misses == [("x", "1.00x sklearn > 0.5")]


@pytest.mark.parametrize("density", [1.0, 0.3])
def test_liblinear_gap_is_the_gap_of_its_penalised_intercept_problem(density):
    X, y = _problem(density, n=80, p=30)
    y = np.where(y + 1.0 > 0, 1.0, -1.0)
    a = g.alpha_max("logistic", X, y, True) / 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LogisticRegression(C=1 / (X.shape[0] * a), l1_ratio=1.0, solver="liblinear",
                                 tol=1e-12, max_iter=10**6,
                                 intercept_scaling=g.LIBLINEAR_SCALING).fit(X, y)
    w, b = est.coef_[0], est.intercept_[0]
    assert abs(g.liblinear_gap(X, y, a, True)(w, b)) < 1e-7  # liblinear stalls at ~3e-8
    # on the unpenalised problem the same solution is measurably off
    assert g.rel_gap("logistic", X, y, w, b, a, True) > 1e-6
    assert g.liblinear_gap(X, y, a, False)(w, 0.0) == g.rel_gap("logistic", X, y, w, 0.0, a, False)
