"""Lasso / ElasticNet / L1-logistic estimators on a sampled grid of problems
the solvers were not tuned for: time to relative duality gap 1e-6 against
scikit-learn (liblinear for the logistic loss), celer and skglm, 1 thread.

The grid crosses six factors:

* model: ``lasso``, ``enet`` (``l1_ratio=0.5``), ``logistic`` (L1);
* n/p: 0.1, 0.3, 1, 3, 10;
* density of X: 1e-4, 1e-3, 1e-2, 1e-1 (CSC, nonnegative entries like counts
  or tf-idf) or dense (Gaussian, AR(1) correlation 0.5 across features);
* alpha: alpha_max / 5, / 20, / 100, / 1000;
* with or without an intercept;
* float32 or float64 X.

The 2,000 cells of the full product are not all run: :func:`sample_design`
draws a Latin-hypercube-like design of 40 cells in which every factor is
balanced (each level of a factor appears equally often, +-1) and, among
500 random such designs, the one that covers the most pairs of levels of
two factors is kept (:data:`DESIGN` is that design, frozen).
Each cell's data come from :func:`sparsecore.datasets.make_sparse_linear`
(a sparse truth, SNR 10, a true intercept in the cells that fit one), at
a size that puts one solve roughly between 0.05 and 3 seconds.

Time to target, the same for every solver: the solver's own ``tol`` is swept
by decades from 1e-2 down (each fit from scratch in a forked child with a
wall-clock cap, :func:`sparsecore._bench.bcd.capped`); at the first decade
whose solution reaches the target the half decade above it is tried too, and
the looser of the two that reaches it is kept; then that fit is timed
``rounds`` times in this process, the solvers rotated in every round, and the
median is reported. The relative gap is computed here, from the returned
coefficients and intercept, in float64, by one formula per loss
(:func:`rel_gap`), never by the solvers.
"""
import itertools
import statistics
import sys
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit, xlogy

from sparsecore._bench._harness import Case, Peer, cpu_name, format_table, geomean, time_peers, write_json
from sparsecore._bench._registry import Family, optional, register
from sparsecore.datasets import make_sparse_linear

__all__ = [
    "ASV_CELLS",
    "DESIGN",
    "FACTORS",
    "alpha_max",
    "cell_name",
    "make_case",
    "rel_gap",
    "run",
    "sample_design",
    "solvers",
]

TARGET = 1e-6
L1_RATIO = 0.5
TOLS = [10.0 ** -k for k in range(2, 13)]

#: factor -> levels
FACTORS = {
    "model": ("lasso", "enet", "logistic"),
    "ratio": (0.1, 0.3, 1.0, 3.0, 10.0),
    "density": (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    "alpha": (5, 20, 100, 1000),
    "intercept": (False, True),
    "dtype": ("float32", "float64"),
}


def sample_design(n_cells=40, n_draws=500, seed=0):
    """A balanced design of ``n_cells`` cells over :data:`FACTORS`: each factor
    is a column holding its levels equally often (+-1), shuffled
    independently (a Latin hypercube over levels); of ``n_draws`` draws the
    one covering the most distinct level pairs of two factors is returned, as
    a list of dicts."""
    rng = np.random.default_rng(seed)
    names = list(FACTORS)
    best, best_cover = None, -1
    for _ in range(n_draws):
        cols = []
        for name in names:
            k = len(FACTORS[name])
            col = np.resize(np.arange(k), n_cells)
            cols.append(rng.permutation(col))
        D = np.stack(cols, axis=1)
        if len({tuple(r) for r in D}) < n_cells:
            continue
        cover = sum(len({(a, b) for a, b in zip(D[:, i], D[:, j])})
                    for i, j in itertools.combinations(range(len(names)), 2))
        if cover > best_cover:
            best, best_cover = D, cover
    return [{name: FACTORS[name][int(v)] for name, v in zip(names, row)} for row in best]


# nonzeros of X per cell at scale 1 (times the per-cell scale below); the
# cost of a solve grows as alpha falls (larger supports) and is higher per
# entry for the logistic loss
_NNZ = 1.0e6
_ALPHA_COST = {5: 1.0, 20: 1.0, 100: 0.5, 1000: 0.25}
_MODEL_COST = {"lasso": 1.0, "enet": 1.0, "logistic": 0.5}


def _frozen():
    return sample_design()


#: the 40 cells (see :func:`sample_design`), each with a ``scale`` of its
#: nonzeros that brings its solve times into 0.05-3 s (set once from a
#: calibration run of every solver on this design)
DESIGN = _frozen()
_SCALE = {
    "enet n/p=10 d=1e-04 a_max/1000 +b f32": 0.8,
    "lasso n/p=3 d=1e-01 a_max/20 nob f64": 6.0,
    "lasso n/p=0.1 d=1e-01 a_max/1000 +b f32": 2.0,
    "enet n/p=0.3 d=1e-02 a_max/20 +b f32": 6.0,
    "logistic n/p=3 d=1e-02 a_max/5 nob f32": 5.0,
    "enet n/p=10 d=1e-03 a_max/5 +b f64": 6.0,
    "enet n/p=0.1 d=1e-04 a_max/100 nob f64": 3.0,
    "lasso n/p=10 dense a_max/100 nob f32": 6.0,
    "logistic n/p=0.1 d=1e-02 a_max/100 nob f64": 4.0,
    "logistic n/p=1 dense a_max/100 +b f32": 6.0,
    "enet n/p=0.1 d=1e-04 a_max/1000 nob f32": 3.0,
    "logistic n/p=0.3 d=1e-03 a_max/100 +b f32": 4.0,
    "lasso n/p=0.1 d=1e-03 a_max/20 nob f64": 5.0,
    "lasso n/p=3 d=1e-04 a_max/1000 +b f32": 0.4,
    "lasso n/p=0.1 d=1e-03 a_max/1000 nob f64": 2.0,
    "logistic n/p=1 d=1e-03 a_max/1000 +b f64": 0.3,
    "lasso n/p=1 d=1e-04 a_max/1000 nob f64": 6.0,
    "logistic n/p=3 d=1e-03 a_max/100 nob f64": 0.3,
    "lasso n/p=0.3 d=1e-04 a_max/5 +b f32": 2.0,
    "logistic n/p=3 d=1e-04 a_max/20 +b f32": 0.4,
    "lasso n/p=0.3 dense a_max/1000 +b f64": 0.7,
    "enet n/p=1 dense a_max/100 +b f64": 6.0,
    "logistic n/p=10 dense a_max/20 +b f32": 6.0,
    "enet n/p=1 d=1e-03 a_max/5 nob f32": 6.0,
    "logistic n/p=3 d=1e-01 a_max/100 +b f32": 4.0,
    "logistic n/p=10 d=1e-03 a_max/5 nob f32": 1.0,
    "enet n/p=10 d=1e-01 a_max/20 nob f64": 6.0,
    "logistic n/p=10 d=1e-02 a_max/5 +b f64": 2.0,
    "lasso n/p=0.3 d=1e-01 a_max/1000 nob f64": 2.0,
    "lasso n/p=0.1 dense a_max/5 nob f32": 6.0,
    "lasso n/p=0.3 dense a_max/20 nob f64": 6.0,
    "enet n/p=1 d=1e-01 a_max/5 nob f32": 6.0,
    "enet n/p=3 d=1e-02 a_max/5 +b f64": 6.0,
    "lasso n/p=0.3 d=1e-02 a_max/20 nob f64": 6.0,
    "logistic n/p=1 d=1e-01 a_max/20 +b f64": 6.0,
    "enet n/p=0.1 d=1e-04 a_max/20 +b f32": 0.5,
    "lasso n/p=1 d=1e-02 a_max/5 +b f64": 6.0,
    "enet n/p=10 d=1e-01 a_max/100 nob f64": 6.0,
    "enet n/p=0.3 d=1e-02 a_max/1000 +b f32": 2.0,
    "logistic n/p=3 dense a_max/100 nob f32": 6.0,
}


def cell_name(c):
    """``"lasso n/p=0.3 d=1e-03 a_max/100 +b f32"`` (``+b``: fit an intercept)."""
    d = "dense" if c["density"] == 1.0 else f"d={c['density']:.0e}"
    return (f"{c['model']} n/p={c['ratio']:g} {d} a_max/{c['alpha']} "
            f"{'+b' if c['intercept'] else 'nob'} {'f32' if c['dtype'] == 'float32' else 'f64'}")


def _shape(c, scale=1.0):
    nnz = _NNZ * _ALPHA_COST[c["alpha"]] * _MODEL_COST[c["model"]] * scale
    nnz *= _SCALE.get(cell_name(c), 1.0)
    area = nnz / c["density"]
    p = max(20, int(round(np.sqrt(area / c["ratio"]))))
    n = max(50, int(round(c["ratio"] * p)))
    return n, p


def alpha_max(model, X, y, fit_intercept):
    """Smallest alpha with an all-zero solution (for the enet, of its L1 part
    divided by ``l1_ratio``)."""
    n = X.shape[0]
    if model == "logistic":
        if fit_intercept:
            frac = np.clip(np.mean(y > 0), 1e-12, 1 - 1e-12)
            u = expit(-y * np.log(frac / (1 - frac)))
        else:
            u = np.full(n, 0.5)
        return float(np.max(np.abs(X.T @ (y * u)))) / n
    yc = y - y.mean() if fit_intercept else y
    amax = float(np.max(np.abs(X.T @ yc))) / n
    return amax / L1_RATIO if model == "enet" else amax


def _best_intercept(z, y, b):
    """The intercept minimising the mean logistic loss of ``z + b`` (1-D
    Newton with backtracking, from ``b``)."""
    def f(b):
        return -float(np.mean(log_expit(y * (z + b))))
    fb = f(b)
    for _ in range(100):
        u = expit(-y * (z + b))
        g = -float(np.mean(y * u))
        h = float(np.mean(u * (1 - u)))
        if abs(g) <= 1e-15 or h <= 0:
            break
        step = g / h
        t = 1.0
        while t > 1e-12:
            fn = f(b - t * step)
            if fn <= fb:
                break
            t *= 0.5
        b, fb = b - t * step, fn
        if t * abs(step) <= 1e-15 * max(1.0, abs(b)):
            break
    return b


def rel_gap(model, X, y, coef, intercept, alpha, fit_intercept):
    """(P - D) / P of the returned ``coef`` and ``intercept`` (float64).

    P is the objective at what the solver returned. D is the dual objective
    at the standard dual point of ``coef`` with the intercept that is
    optimal for it (so the dual point satisfies the intercept's equality
    constraint), rescaled into the feasible set:

    * least squares (P = ||y - Xw - b||^2 / (2n) + a1 ||w||_1 + a2 ||w||^2 / 2,
      a1 = alpha l1_ratio, a2 = alpha (1 - l1_ratio)): r the centred (with an
      intercept) residual, theta = s r / n, D = theta^T y - n ||theta||^2 / 2
      - sum_j (|X_j^T theta| - a1)_+^2 / (2 a2); for the Lasso s = min(1,
      a1 / ||X^T r / n||_inf), for the enet the better of that s (whose last
      term is 0) and s = 1;
    * logistic (P = mean log(1 + exp(-y (Xw + b))) + alpha ||w||_1):
      u = sigmoid(-y z) at the optimal intercept, v = s u with
      s = min(1, n alpha / ||X^T (y u)||_inf), D = -mean(v log v + (1 - v) log(1 - v)).
    """
    n = X.shape[0]
    w = np.asarray(coef, dtype=np.float64).ravel()
    b = float(intercept) if fit_intercept else 0.0
    z = np.asarray(X @ w, dtype=np.float64)
    if model == "logistic":
        P = -float(np.mean(log_expit(y * (z + b)))) + alpha * float(np.abs(w).sum())
        bs = _best_intercept(z, y, b) if fit_intercept else 0.0
        u = expit(-y * (z + bs))
        corr = float(np.max(np.abs(X.T @ (y * u)))) / n
        s = 1.0 if corr <= alpha else alpha / corr
        v = s * u
        D = -float(np.mean(xlogy(v, v) + xlogy(1 - v, 1 - v)))
        return (P - D) / P
    a1 = alpha * (L1_RATIO if model == "enet" else 1.0)
    a2 = alpha - a1
    r = y - z - b
    P = float(r @ r) / (2 * n) + a1 * float(np.abs(w).sum()) + 0.5 * a2 * float(w @ w)
    if fit_intercept:
        r = r - r.mean()
    theta = r / n
    v = np.asarray(X.T @ theta, dtype=np.float64)
    corr = float(np.max(np.abs(v), initial=0.0))
    s = 1.0 if corr <= a1 else a1 / corr
    D = s * float(theta @ y) - 0.5 * n * s * s * float(theta @ theta)
    if a2 > 0:
        D2 = float(theta @ y) - 0.5 * n * float(theta @ theta) \
            - float(np.sum(np.maximum(np.abs(v) - a1, 0.0) ** 2)) / (2 * a2)
        D = max(D, D2)
    return (P - D) / P


#: liblinear's intercept_scaling in the cells with an intercept
LIBLINEAR_SCALING = 100.0


def liblinear_gap(X, y, alpha, fit_intercept):
    """``rel_gap(coef, intercept)`` of the problem liblinear solves: with an
    intercept, the L1-logistic problem without one on ``[X, s 1]``
    (s = :data:`LIBLINEAR_SCALING`), whose last weight is ``b / s``. Its
    objective differs from the unpenalised-intercept one by
    ``alpha |b| / s``; on the unpenalised problem liblinear's solutions keep
    a relative gap of order ``alpha |b| / s`` (1e-3 at s = 100, 1e-5 at
    s = 1e4 on a small test problem), and larger scalings stall its solver
    in rounding (1e-6 at 1e6, 6e-5 at 1e8), so it could not reach the target
    there at all. Measuring it on its own problem times the same kind of work."""
    if not fit_intercept:
        return lambda coef, b: rel_gap("logistic", X, y, coef, 0.0, alpha, False)
    s = LIBLINEAR_SCALING
    col = np.full((X.shape[0], 1), s)
    Xa = sp.hstack([X, sp.csc_array(col)], format="csc") if sp.issparse(X) else np.hstack([X, col])
    return lambda coef, b: rel_gap("logistic", Xa, y, np.append(coef, b / s), 0.0, alpha, False)


def _data(c, scale=1.0, seed=0):
    n, p = _shape(c, scale)
    k = max(1, min(50, p // 20, n // 4))
    X, y, _ = make_sparse_linear(
        n, p, density=c["density"], n_informative=k, nonnegative=c["density"] < 1,
        dtype=np.float32 if c["dtype"] == "float32" else np.float64, seed=seed)
    if c["intercept"]:
        # a true intercept: one standard deviation of y (half of one for the
        # labels, which are then about 70 % positive)
        y = y + (0.5 if c["model"] == "logistic" else 1.0) * float(np.std(y) or 1.0)
    if c["model"] == "logistic":
        y = np.where(y > 0, 1.0, -1.0)
    return X, y


def _cell(name):
    for c in DESIGN:
        if cell_name(c) == name:
            return c
    raise KeyError(f"no lasso-grid cell {name!r}")


def make_case(name, scale=1.0):
    """The :class:`Case` of a cell: inputs ``(X, y, alpha)``; ``info`` holds
    the cell, ``nnz``, ``rel_gap(coef, intercept)``,
    ``solver_gap(solver)``, the gap function of the problem a solver solves
    (:func:`liblinear_gap` for liblinear, else ``rel_gap``), and ``target``,
    the relative gap to reach (1e-6, or more for float32 cells where rounding
    the solution to float32 leaves more: :func:`float32_floor`)."""
    c = _cell(name)
    X, y = _data(c, scale)
    X64 = X.astype(np.float64) if X.dtype != np.float64 else X
    a = alpha_max(c["model"], X64, y, c["intercept"]) / c["alpha"]
    nnz = X.nnz if sp.issparse(X) else X.size
    gaps = {"": lambda coef, b: rel_gap(c["model"], X64, y, coef, b, a, c["intercept"])}
    if c["model"] == "logistic":
        gaps["liblinear"] = liblinear_gap(X64, y, a, c["intercept"])
    floor = float32_floor(c, X, y, a, gaps[""]) if X.dtype == np.float32 else 0.0
    return Case(name, (X, y, a), {
        "cell": c, "shape": X.shape, "nnz": int(nnz), "rel_gap": gaps[""],
        "solver_gap": lambda solver: gaps.get(solver, gaps[""]),
        "float32_floor": floor, "target": max(TARGET, 3.0 * floor),
    })


def float32_floor(c, X, y, a, gap):
    """The relative gap left by rounding the solution to float32: a solve to
    relative gap 1e-11 (in float64 arithmetic on the float32 X), its
    coefficients and intercept rounded to float32, measured by ``gap``.

    A float32 X gives float32 ``coef_`` (scikit-learn's convention, which
    sparsecore and scikit-learn follow): where the problem is ill-conditioned
    (small alpha, n close to the support size) that rounding alone moves the
    relative gap above 1e-6, so no solver that returns float32 coefficients
    can reach it. The target of a float32 cell is therefore
    ``max(1e-6, 3 * floor)``, the same for every solver."""
    from sparsecore.optimize import ElasticNet, L1, Logistic, Quadratic, greedy_bcd

    if c["model"] == "logistic":
        datafit, pen = Logistic(), L1(a)
    else:
        datafit = Quadratic()
        pen = L1(a) if c["model"] == "lasso" else ElasticNet(a, L1_RATIO)
    res = greedy_bcd(datafit, pen, X, y, fit_intercept=c["intercept"], tol=1e-11,
                     max_iter=100_000, n_threads=1)
    return float(gap(res.coef.astype(np.float32), float(np.float32(res.intercept))))


# ---------------------------------------------------------------------------
# solvers: fit(X, y, alpha, tol) -> (coef, intercept)


def _out(est):
    coef = np.asarray(est.coef_, dtype=np.float64).ravel()
    b = np.asarray(getattr(est, "intercept_", 0.0), dtype=np.float64).ravel()
    return coef, (float(b[0]) if b.size else 0.0)


def solvers(model, fit_intercept):
    """{peer name: fit(X, y, alpha, tol) -> (coef, intercept)} for the
    installed solvers of ``model`` (celer has no intercept for the logistic
    loss and is left out there). Every solver runs on one thread."""
    out = {}
    icpt = bool(fit_intercept)
    if model in ("lasso", "enet"):
        from sklearn.linear_model import ElasticNet, Lasso

        from sparsecore.linear_model import GreedyBCDElasticNet, GreedyBCDLasso

        if model == "lasso":
            out["sparsecore"] = lambda X, y, a, tol: _out(GreedyBCDLasso(
                alpha=a, tol=tol, fit_intercept=icpt, max_iter=10_000, n_threads=1).fit(X, y))
            out["sklearn"] = lambda X, y, a, tol: _out(Lasso(
                alpha=a, tol=tol, fit_intercept=icpt, max_iter=1_000_000).fit(X, y))
        else:
            out["sparsecore"] = lambda X, y, a, tol: _out(GreedyBCDElasticNet(
                alpha=a, l1_ratio=L1_RATIO, tol=tol, fit_intercept=icpt, max_iter=10_000,
                n_threads=1).fit(X, y))
            out["sklearn"] = lambda X, y, a, tol: _out(ElasticNet(
                alpha=a, l1_ratio=L1_RATIO, tol=tol, fit_intercept=icpt,
                max_iter=1_000_000).fit(X, y))
        celer = optional("celer")
        if celer is not None:
            if model == "lasso":
                out["celer"] = lambda X, y, a, tol: _out(celer.Lasso(
                    alpha=a, tol=tol, fit_intercept=icpt, max_iter=1000).fit(X, y))
            else:
                out["celer"] = lambda X, y, a, tol: _out(celer.ElasticNet(
                    alpha=a, l1_ratio=L1_RATIO, tol=tol, fit_intercept=icpt,
                    max_iter=1000).fit(X, y))
        skglm = optional("skglm")
        if skglm is not None:
            if model == "lasso":
                out["skglm"] = lambda X, y, a, tol: _out(skglm.Lasso(
                    alpha=a, tol=tol, fit_intercept=icpt, max_iter=1000).fit(X, y))
            else:
                out["skglm"] = lambda X, y, a, tol: _out(skglm.ElasticNet(
                    alpha=a, l1_ratio=L1_RATIO, tol=tol, fit_intercept=icpt,
                    max_iter=1000).fit(X, y))
        return out
    from sklearn.linear_model import LogisticRegression

    from sparsecore.linear_model import GreedyBCDLogisticRegression

    out["sparsecore"] = lambda X, y, a, tol: _out(GreedyBCDLogisticRegression(
        C=1 / (X.shape[0] * a), l1_ratio=1.0, tol=tol, fit_intercept=icpt, max_iter=10_000,
        n_threads=1).fit(X, y))
    # liblinear penalises its intercept: it is the weight of a feature of
    # value intercept_scaling, so the penalty is alpha |b| / intercept_scaling
    # (see liblinear_gap)
    out["liblinear"] = lambda X, y, a, tol: _out(LogisticRegression(
        C=1 / (X.shape[0] * a), l1_ratio=1.0, solver="liblinear", tol=tol,
        fit_intercept=icpt, intercept_scaling=LIBLINEAR_SCALING,
        max_iter=1_000_000).fit(X, y))
    celer = optional("celer")
    if celer is not None and not icpt:
        out["celer"] = lambda X, y, a, tol: _out(celer.LogisticRegression(
            C=1 / (X.shape[0] * a), tol=tol, fit_intercept=False, max_iter=100).fit(X, y))
    skglm = optional("skglm")
    if skglm is not None:
        out["skglm"] = lambda X, y, a, tol: _out(skglm.SparseLogisticRegression(
            alpha=a, tol=tol, fit_intercept=icpt, max_iter=100).fit(X, y))
    return out


PEER_NAMES = ["sparsecore", "sklearn", "liblinear", "celer", "skglm"]


def _own_layout(name, X):
    """Each solver gets X in the layout it computes on (not timed): liblinear
    row-major (CSR / C order), the coordinate-descent solvers by column,
    celer in float64."""
    if name == "liblinear":
        return sp.csr_array(X) if sp.issparse(X) else np.ascontiguousarray(X)
    if name == "celer" and X.dtype != np.float64:
        # celer's logistic solver takes float64 only (its Lasso converts);
        # the conversion is not timed
        X = X.astype(np.float64)
    return sp.csc_array(X) if sp.issparse(X) else np.asfortranarray(X)


def _warm_up(fits, c):
    """Compile what is compiled on first use (numba in skglm, per dtype and
    layout) on a tiny problem of the cell's kind before any timing."""
    tiny = dict(c, ratio=1.0, density=max(c["density"], 0.05))
    X, y = _data(tiny, scale=2e-4)
    a = alpha_max(c["model"], X.astype(np.float64), y, c["intercept"]) / 10
    for name, fit in fits.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit(_own_layout(name, X), y, a, 1e-4)
            except Exception:
                pass


# ---------------------------------------------------------------------------
# time to target


def _sweep(fit, gap, cap, target=TARGET, tols=TOLS):
    """The loosest tol (by decades, then the half decade above the first that
    reaches) whose fit reaches the target, each fit in a capped child:
    dict(tol, rel_gap, status)."""
    from sparsecore._bench.bcd import capped

    last = None
    for i, tol in enumerate(tols):
        res = capped(lambda: fit(tol), cap)
        if res is None:
            return {"tol": None, "rel_gap": last, "status": f"> {cap:g} s at tol {tol:.0e}"}
        last = gap(*res[1])
        if last <= target:
            if i:
                half = float(np.sqrt(tol * tols[i - 1]))
                res2 = capped(lambda: fit(half), cap)
                if res2 is not None:
                    g2 = gap(*res2[1])
                    if g2 <= target:
                        return {"tol": half, "rel_gap": g2, "status": "ok"}
            return {"tol": tol, "rel_gap": last, "status": "ok"}
    return {"tol": None, "rel_gap": last, "status": f"gap {last:.1e} at tol {tols[-1]:.0e}"}


def time_cell(case, cap=8.0, rounds=3, names=None):
    """{solver: dict(time, tol, rel_gap, status)} of one cell."""
    c = case.info["cell"]
    X, y, a = case.inputs
    fits = solvers(c["model"], c["intercept"])
    if names:
        fits = {k: v for k, v in fits.items() if k in names}
    layouts = {k: _own_layout(k, X) for k in fits}
    _warm_up(fits, c)
    out = {}
    for name, fit in fits.items():
        out[name] = _sweep(lambda tol, fit=fit, Xs=layouts[name]: fit(Xs, y, a, tol),
                           case.info["solver_gap"](name), cap, case.info["target"])
        out[name]["time"] = None
    peers = [Peer(name, 1, lambda _, fit=fit, Xs=layouts[name], tol=out[name]["tol"]:
                  fit(Xs, y, a, tol))
             for name, fit in fits.items() if out[name]["tol"] is not None]
    if peers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times = time_peers(Case(case.name, None), peers, rounds=rounds, min_time=0.0)
        for label, ts in times.items():
            out[label.rsplit(" ", 1)[0]]["time"] = statistics.median(ts)
    return out


def _base_name(model):
    return "liblinear" if model == "logistic" else "sklearn"


def summarise(records):
    """Per peer: geometric mean and worst of time(sparsecore) / time(peer)
    over the cells where both reached the target, the cells where only one
    did, and the goal misses (sparse cells <= 0.5x sklearn, dense <= 0.3x,
    every cell <= 1.2x celer)."""
    peers = {"sklearn": [], "celer": [], "skglm": []}
    misses = []
    only_peer, only_ours = {k: [] for k in peers}, {k: [] for k in peers}
    for rec in records:
        c, res = rec["cell"], rec["results"]
        ours = res.get("sparsecore", {}).get("time")
        for peer in peers:
            key = _base_name(c["model"]) if peer == "sklearn" else peer
            if key not in res:
                continue
            t = res[key]["time"]
            if ours is not None and t is not None:
                peers[peer].append((ours / t, rec["case"]))
            elif t is not None:
                only_peer[peer].append(rec["case"])
            elif ours is not None:
                only_ours[peer].append(rec["case"])
        ratio = rec.get("ratios", {})
        goal_sk = 0.3 if c["density"] == 1.0 else 0.5
        r_sk, r_ce = ratio.get("sklearn"), ratio.get("celer")
        why = []
        if ours is None:
            why.append("sparsecore did not reach the target")
        if r_sk is not None and r_sk > goal_sk:
            why.append(f"{r_sk:.2f}x sklearn > {goal_sk}")
        if r_ce is not None and r_ce > 1.2:
            why.append(f"{r_ce:.2f}x celer > 1.2")
        if why:
            misses.append((rec["case"], "; ".join(why)))
    summary = {}
    for peer, vals in peers.items():
        if vals:
            worst = max(vals)
            summary[peer] = {"geomean": geomean([v for v, _ in vals]), "worst": worst[0],
                             "worst_cell": worst[1], "cells": len(vals),
                             "peer_only": only_peer[peer], "ours_only": only_ours[peer]}
        else:
            summary[peer] = {"geomean": float("nan"), "worst": float("nan"), "worst_cell": None,
                             "cells": 0, "peer_only": only_peer[peer], "ours_only": only_ours[peer]}
    return summary, misses


def _cell_row(rec):
    c, res = rec["cell"], rec["results"]
    ours = res.get("sparsecore", {}).get("time")
    row = [rec["case"], f"{rec['shape'][0]}x{rec['shape'][1]}", f"{rec['nnz']:.1e}"]
    row.append("-" if ours is None else f"{ours:.3f} s")
    ratios = {}
    for peer in ("sklearn", "celer", "skglm"):
        key = _base_name(c["model"]) if peer == "sklearn" else peer
        r = res.get(key)
        if r is None:
            row.append("n/a")
        elif r["time"] is None:
            row.append(f"not reached ({r['status']})")
        elif ours is None:
            row.append(f"{r['time']:.3f} s")
        else:
            ratios[peer] = ours / r["time"]
            row.append(f"{ratios[peer]:.2f}x ({r['time']:.3f} s)")
    rec["ratios"] = ratios
    return row


QUICK = 6


def _quick_cells():
    """One cell of each model, sparse and dense, in design order."""
    seen, out = set(), []
    for c in DESIGN:
        key = (c["model"], c["density"] == 1.0)
        if key not in seen:
            seen.add(key)
            out.append(cell_name(c))
    return out


def run(args):
    """``python -m sparsecore bench lasso-grid [--quick] [--cases ...] [--json F]``."""
    from threadpoolctl import threadpool_limits

    # load every solver's libraries first: threadpool_limits only reaches the
    # thread pools loaded when it is called (scipy.linalg and scikit-learn
    # bring their own OpenBLAS and OpenMP)
    solvers("lasso", False)
    solvers("logistic", False)
    import scipy.linalg  # noqa: F401

    threadpool_limits(1)
    quick = getattr(args, "quick", False)
    rounds = 2 if quick else max(1, min(getattr(args, "rounds", 3), 3))
    scale = 0.3 if quick else 1.0
    cap = 8.0
    names = _quick_cells() if quick else [cell_name(c) for c in DESIGN]
    if getattr(args, "cases", None):
        names = [n for n in names if n in args.cases or any(n.startswith(k) for k in args.cases)]
    print(f"\n## lasso-grid: time to relative duality gap <= {TARGET:g}, 1 thread; "
          f"{len(names)} of {len(DESIGN)} cells{' at 0.3x size (--quick)' if quick else ''}")
    print(f"# {cpu_name()}; each solver's tol swept by decades (+ the half decade above), "
          f"fits capped at {cap:g} s; median of {rounds}; ratio = time(sparsecore) / time(peer), "
          f"below 1 is faster; the logistic 'sklearn' column is liblinear\n")
    records = []
    rows = []
    for name in names:
        case = make_case(name, scale)
        res = time_cell(case, cap=cap, rounds=rounds)
        rec = {"case": name, "cell": case.info["cell"], "shape": list(case.info["shape"]),
               "nnz": case.info["nnz"], "target": case.info["target"], "results": res}
        rows.append(_cell_row(rec))
        records.append(rec)
        print("  ".join(rows[-1]), file=sys.stderr, flush=True)   # progress
    print(format_table(["cell", "n x p", "nnz", "sparsecore", "vs sklearn", "vs celer", "vs skglm"],
                       rows))
    summary, misses = summarise(records)
    print("\n### time(sparsecore) / time(peer) over the cells where both reached the target")
    print(format_table(["peer", "cells", "geomean", "worst", "worst cell"],
                       [[p, s["cells"], f"{s['geomean']:.2f}x", f"{s['worst']:.2f}x",
                         s["worst_cell"] or "-"] for p, s in summary.items()]))
    if misses:
        print("\n### cells above 0.5x scikit-learn's time (sparse), 0.3x (dense) or 1.2x celer's")
        for name, why in misses:
            print(f"  {name}: {why}")
    if getattr(args, "json", None):
        write_json(args.json, {"cpu": cpu_name(), "threads": [1], "records": records,
                               "summary": summary, "misses": misses})
    return records


# ---------------------------------------------------------------------------
# registry: a fixed tol per solver (the one the sweep found for the asv cells)

#: the cells of the asv benchmark (benchmarks/benchmarks/bench_lasso_grid.py)
ASV_CELLS = [
    "lasso n/p=0.1 d=1e-03 a_max/20 nob f64",
    "lasso n/p=0.3 d=1e-04 a_max/5 +b f32",
    "enet n/p=1 dense a_max/100 +b f64",
    "logistic n/p=10 d=1e-02 a_max/5 +b f64",
]

#: tol per (cell, solver) that reached the target in the sweep of run()
#: (second recorded run, docs/data/lasso_grid.json); the others get
#: _DEFAULT_TOL
GRID_TOL = {
    "lasso n/p=0.1 d=1e-03 a_max/20 nob f64": {"sparsecore": 1e-02, "sklearn": 3e-05,
                                               "celer": 1e-02, "skglm": 3e-05},
    "lasso n/p=0.3 d=1e-04 a_max/5 +b f32": {"sparsecore": 1e-02, "celer": 1e-02},
    "enet n/p=1 dense a_max/100 +b f64": {"sparsecore": 1e-06, "sklearn": 1e-04, "celer": 1e-03,
                                          "skglm": 3e-04},
    "logistic n/p=10 d=1e-02 a_max/5 +b f64": {"sparsecore": 1e-05, "liblinear": 1e-07,
                                               "skglm": 1e-07},
}
_DEFAULT_TOL = {"sparsecore": 1e-6, "sklearn": 1e-8, "liblinear": 1e-8, "celer": 1e-8,
                "skglm": 1e-8}


def _peers(case, threads):
    c = case.info["cell"]
    out = []
    X, y, a = case.inputs
    for name, fit in solvers(c["model"], c["intercept"]).items():
        tol = GRID_TOL.get(case.name, {}).get(name, _DEFAULT_TOL[name])
        out.append(Peer(name, 1, lambda d, fit=fit, tol=tol: fit(d[0], d[1], d[2], tol),
                        prepare=lambda d, name=name: (_own_layout(name, d[0]), d[1], d[2])))
    return out


FAMILY = register(Family("lasso-grid", lambda: [cell_name(c) for c in DESIGN], make_case, _peers,
                         PEER_NAMES))
