"""Greedy BCD suite: time to relative duality gap 1e-6 against scikit-learn,
liblinear, celer and skglm (when installed), on the problems of
``bcd_problems``.

Method (the same for every solver):
sweep the solver's own ``tol`` by decades from loose to tight, each fit from
scratch in a forked child with a wall-clock cap; stop at the first tol whose
solution reaches (P - D) / P <= 1e-6, computed outside the solver by
``bcd_problems``; then time that fit ``rounds`` times in this process, the
solvers rotated in every round, and report the median. (Timing inside the
forked children would charge each solver for the copy-on-write faults of
the memory it writes, which no user sees.) Everything runs on one thread.

Registers the families ``bcd.lasso`` and ``bcd.logistic`` (cases
``"<problem> a_max/<k>"``, each solver at the tol :data:`LASSO_TOL` /
:data:`LOGISTIC_TOL` that reached the target in the sweep) and, through
``bcd_labelprop``, ``bcd.labelprop``.
"""
import os
import pickle
import select
import signal
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

from sparsecore._bench import bcd_labelprop  # noqa: F401  (registers bcd.labelprop)
from sparsecore._bench._harness import Case, Peer, format_table, time_peers, write_json
from sparsecore._bench._registry import Family, register
from sparsecore._bench.bcd_problems import (
    alpha_max_lasso,
    alpha_max_logistic,
    lasso_rel_gap,
    logistic_rel_gap,
    make_problem,
)

__all__ = ["run", "capped", "time_to_target", "lasso_peers", "logistic_peers", "make_case",
           "LASSO_TOL", "LOGISTIC_TOL"]

TARGET = 1e-6
TOLS = [10.0 ** -k for k in range(2, 13)]


# ---------------------------------------------------------------------------
# running one fit with a cap


def capped(fn, cap):
    """Run ``fn()`` in a forked child; return ``(seconds, result)`` or None when
    it does not finish within ``cap`` seconds (or fails)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                out = fn()
                t = time.perf_counter() - t0
            payload = pickle.dumps(("ok", t, out))
        except BaseException as exc:  # report, never raise in the child
            payload = pickle.dumps(("err", repr(exc), None))
        with os.fdopen(w, "wb") as f:
            f.write(payload)
        os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + cap
    timed_out = False
    with os.fdopen(r, "rb") as f:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([f], [], [], left)
            if not ready:
                continue
            chunk = os.read(f.fileno(), 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    if timed_out or not chunks:
        return None
    status, t, out = pickle.loads(b"".join(chunks))
    return (t, out) if status == "ok" else None


def find_tol(fit, rel_gap, cap, tols=TOLS):
    """Sweep tol from loose to tight, each fit in a capped child; return
    dict(tol, rel_gap, status) with tol None when the target is not reached."""
    last = None
    for tol in tols:
        res = capped(lambda: fit(tol), cap)
        if res is None:
            return {"tol": None, "rel_gap": last, "status": f"> {cap:g} s at tol {tol:g}"}
        last = rel_gap(res[1])
        if last <= TARGET:
            return {"tol": tol, "rel_gap": last, "status": "ok"}
    return {"tol": None, "rel_gap": last, "status": f"gap {last:.1e} at tol {tols[-1]:g}"}


def time_to_target(fits, rel_gap, cap, rounds, tols=TOLS):
    """For every solver, the tol that reaches the target (sweep), then the
    median time of ``rounds`` in-process fits at that tol, solvers rotated in
    every round. Returns {name: dict(time, tol, rel_gap, status)}."""
    out = {name: find_tol(fit, rel_gap, cap, tols) for name, fit in fits.items()}
    peers = [Peer(name, 1, (lambda _, fit=fit, tol=out[name]["tol"]: fit(tol)))
             for name, fit in fits.items() if out[name]["tol"] is not None]
    for name in fits:
        out[name]["time"] = None
    if peers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times = time_peers(Case("fit", None), peers, rounds=rounds, min_time=0.0)
        for name, ts in times.items():
            out[name.rsplit(" ", 1)[0]]["time"] = statistics.median(ts)
    return out


# ---------------------------------------------------------------------------
# peers


def lasso_peers():
    """{name: fit(X, y, alpha, tol) -> coef} for the installed Lasso solvers."""
    from sklearn.linear_model import Lasso

    from sparsecore.linear_model import GreedyBCDLasso

    peers = {
        "sparsecore": lambda X, y, a, tol: GreedyBCDLasso(
            alpha=a, tol=tol, fit_intercept=False, n_threads=1).fit(X, y).coef_,
        "sklearn": lambda X, y, a, tol: Lasso(
            alpha=a, tol=tol, fit_intercept=False, max_iter=100_000).fit(X, y).coef_,
    }
    try:
        import celer

        peers["celer"] = lambda X, y, a, tol: celer.Lasso(
            alpha=a, tol=tol, fit_intercept=False, max_iter=1000).fit(X, y).coef_
    except ImportError:
        pass
    try:
        import skglm

        peers["skglm"] = lambda X, y, a, tol: skglm.Lasso(
            alpha=a, tol=tol, fit_intercept=False, max_iter=1000).fit(X, y).coef_
    except ImportError:
        pass
    return peers


def logistic_peers():
    """{name: fit(X, y, alpha, tol) -> coef} for the installed L1-logistic solvers."""
    from sklearn.linear_model import LogisticRegression

    from sparsecore.linear_model import GreedyBCDLogisticRegression

    def n_of(X):
        return X.shape[0]

    peers = {
        "sparsecore": lambda X, y, a, tol: GreedyBCDLogisticRegression(
            C=1 / (n_of(X) * a), l1_ratio=1.0, tol=tol, fit_intercept=False,
            n_threads=1).fit(X, y).coef_[0],
        "liblinear": lambda X, y, a, tol: LogisticRegression(
            C=1 / (n_of(X) * a), l1_ratio=1.0, solver="liblinear", tol=tol,
            fit_intercept=False, max_iter=100_000).fit(X, y).coef_[0],
    }
    try:
        import celer

        peers["celer"] = lambda X, y, a, tol: celer.LogisticRegression(
            C=1 / (n_of(X) * a), tol=tol, fit_intercept=False).fit(X, y).coef_[0]
    except ImportError:
        pass
    try:
        import skglm

        peers["skglm"] = lambda X, y, a, tol: skglm.SparseLogisticRegression(
            alpha=a, tol=tol, fit_intercept=False, max_iter=100).fit(X, y).coef_[0]
    except ImportError:
        pass
    return peers


LASSO_CASES = [("sparse", 10), ("sparse", 100), ("dense", 10), ("dense", 100),
               ("diabetes", 10), ("diabetes", 100)]
LOGISTIC_CASES = [("dense", 10), ("dense", 100), ("sparse", 10), ("sparse", 100),
                  ("breast_cancer", 10), ("breast_cancer", 100)]


# each solver's tol that reached relgap 1e-6 on these problems in the sweep
# of run() (the solvers' tol scales differ)
LASSO_TOL = {"sparsecore": 1e-6, "sklearn": 1e-8, "celer": 1e-8, "skglm": 1e-8}
LOGISTIC_TOL = {"sparsecore": 1e-6, "liblinear": 1e-10, "celer": 1e-8, "skglm": 1e-9}
# liblinear's tol scale depends on the problem: 1e-8 already reaches relgap
# 6.6e-8 on "dense" (1 s), where 1e-10 runs for minutes
LOGISTIC_TOL_OVERRIDE = {("dense", "liblinear"): 1e-8}


def make_case(kind):
    """``make_case(name)`` of the family ``bcd.<kind>``: ``(X, y, alpha)``
    of ``"<problem> a_max/<k>"`` and its relative duality gap function."""
    def make(name):
        prob, frac = name.split(" a_max/")
        X, y = make_problem(prob, kind)
        amax = alpha_max_lasso(X, y) if kind == "lasso" else alpha_max_logistic(X, y)
        a = amax / int(frac)
        gap = lasso_rel_gap if kind == "lasso" else logistic_rel_gap
        return Case(name, (X, y, a), {"problem": prob,
                                      "rel_gap": lambda c: gap(X, y, np.asarray(c, float), a)})
    return make


def _fixed_tol_peers(kind):
    def peers(case, t):
        fits = lasso_peers() if kind == "lasso" else logistic_peers()
        tols = LASSO_TOL if kind == "lasso" else LOGISTIC_TOL
        out = []
        for name, fit in fits.items():
            tol = LOGISTIC_TOL_OVERRIDE.get((case.info["problem"], name), tols[name])
            out.append(Peer(name, 1, lambda d, fit=fit, tol=tol: fit(*d, tol)))
        return out
    return peers


for _kind, _cases, _peers in (("lasso", LASSO_CASES, ["sparsecore", "sklearn", "celer", "skglm"]),
                              ("logistic", LOGISTIC_CASES,
                               ["sparsecore", "liblinear", "celer", "skglm"])):
    register(Family(f"bcd.{_kind}", [f"{p} a_max/{k}" for p, k in _cases], make_case(_kind),
                    _fixed_tol_peers(_kind), _peers))


def _warm_up(peers, kind):
    """Compile what needs compiling (numba in skglm) before any timing."""
    X, y = make_problem("small_sparse", kind)
    Xd, yd = make_problem("small_dense", kind)
    for fit in peers.values():
        for A, b in ((X, y), (Xd, yd)):
            am = alpha_max_lasso(A, b) if kind == "lasso" else alpha_max_logistic(A, b)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit(A, b, am / 10, 1e-4)
            except Exception:
                pass


# ---------------------------------------------------------------------------
# sections


QUICK_LASSO = [("sparse", 100), ("dense", 100), ("diabetes", 100)]
QUICK_LOGISTIC = [("dense", 10), ("breast_cancer", 100)]


def _cells(res, peers, t_base, detail):
    """One table cell per solver: its time and ratio to the base, or why not."""
    row = []
    for name in peers:
        r = res[name]
        if r["time"] is None:
            row.append(f"not reached ({r['status']})")
        else:
            ratio = f" = {r['time'] / t_base:.2f}x" if t_base else ""
            row.append(f"{r['time']:.3f} s{ratio}{detail(r)}")
    return row


def _section(kind, cases, peers, base, cap, rounds, names):
    rows, recs = [], []
    make = make_case(kind)
    for prob, frac in cases:
        label = f"{prob} a_max/{frac}"
        if names and prob not in names and label not in names:
            continue
        case = make(label)
        X, y, a = case.inputs
        fits = {name: (lambda tol, fit=fit: fit(X, y, a, tol)) for name, fit in peers.items()}
        res = time_to_target(fits, case.info["rel_gap"], cap, rounds)
        rows.append([label] + _cells(res, peers, res[base]["time"],
                                     lambda r: f" (tol {r['tol']:.0e})"))
        recs.append({"case": label, "results": res})
    return rows, recs


def _path_section(cap, names, rounds):
    """Lasso path, 10 alphas from a_max to a_max/100, warm starts."""
    from sklearn.linear_model import Lasso

    from sparsecore.linear_model import lasso_path

    peers = {}

    def ours(X, y, alphas, tol):
        _, coefs, _ = lasso_path(X, y, alphas=alphas, tol=tol, n_threads=1)
        return coefs

    def warm(est):
        def fit(X, y, alphas, tol):
            m = est(tol)
            out = []
            for a in alphas:
                m.set_params(alpha=a)
                m.fit(X, y)
                out.append(np.array(m.coef_, dtype=float))
            return np.array(out).T
        return fit

    peers["sparsecore"] = ours
    peers["sklearn"] = warm(lambda tol: Lasso(tol=tol, fit_intercept=False, warm_start=True,
                                              max_iter=100_000))
    try:
        import celer

        peers["celer"] = warm(lambda tol: celer.Lasso(tol=tol, fit_intercept=False,
                                                      warm_start=True))
    except ImportError:
        pass
    try:
        import skglm

        peers["skglm"] = warm(lambda tol: skglm.Lasso(tol=tol, fit_intercept=False,
                                                      warm_start=True))
    except ImportError:
        pass
    rows, recs = [], []
    for prob in ("sparse", "dense", "diabetes"):
        if names and prob not in names and "path" not in names:
            continue
        X, y = make_problem(prob, "lasso")
        am = alpha_max_lasso(X, y)
        alphas = np.geomspace(am, am / 100, 10)

        def worst(coefs, X=X, y=y, alphas=alphas):
            return max(lasso_rel_gap(X, y, coefs[:, i], a) for i, a in enumerate(alphas))

        fits = {name: (lambda tol, fit=fit: fit(X, y, alphas, tol)) for name, fit in peers.items()}
        res = time_to_target(fits, worst, 2 * cap, rounds)
        rows.append([f"{prob} path 10 alphas"] + _cells(
            res, peers, res["sklearn"]["time"], lambda r: f", worst gap {r['rel_gap']:.1e}"))
        recs.append({"case": f"{prob} path", "results": res})
    return list(peers), rows, recs


def _cold_start():
    """Seconds of the first sparse fit in a fresh interpreter (import excluded)."""
    code = (
        "import time, warnings; warnings.simplefilter('ignore');"
        "from sparsecore._bench.bcd_problems import make_problem, alpha_max_lasso;"
        "X, y = make_problem('small_sparse'); a = alpha_max_lasso(X, y) / 10;"
        "import {mod}; t0 = time.perf_counter(); {fit}; print(time.perf_counter() - t0)"
    )
    out = {}
    fits = {
        "sparsecore": ("sparsecore.linear_model",
                       "sparsecore.linear_model.GreedyBCDLasso(alpha=a, fit_intercept=False).fit(X, y)"),
        "sklearn": ("sklearn.linear_model",
                    "sklearn.linear_model.Lasso(alpha=a, fit_intercept=False).fit(X, y)"),
        "skglm": ("skglm", "skglm.Lasso(alpha=a, fit_intercept=False).fit(X, y)"),
    }
    for name, (mod, fit) in fits.items():
        try:
            r = subprocess.run([sys.executable, "-P", "-c", code.format(mod=mod, fit=fit)],
                               capture_output=True, text=True, timeout=300,
                               env={**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"})
            out[name] = float(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else None
        except Exception:
            out[name] = None
    return out


def run(args):
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    quick = getattr(args, "quick", False)
    rounds = 2 if quick else max(1, min(getattr(args, "rounds", 3), 3))
    names = set(args.cases or [])
    cap = 10.0
    payload = {}
    print("\n## bcd: time to relative duality gap (P - D)/P <= 1e-6, 1 thread, float64, no intercept")
    print(f"# each solver's tol swept by decades (fresh fit each, capped at {cap:g} s, "
          f"logistic {2 * cap:g} s); "
          f"median of {rounds}; ratio = time / base solver's time\n")

    sections = getattr(args, "sections", None) or ["lasso", "path", "logistic", "labelprop",
                                                     "rules", "cold"]
    if "lasso" in sections:
        peers = lasso_peers()
        _warm_up(peers, "lasso")
        rows, recs = _section("lasso", QUICK_LASSO if quick else LASSO_CASES, peers, "sklearn",
                              cap, rounds, names)
        print("### Lasso (base: sklearn)")
        print(format_table(["problem"] + list(peers), rows) + "\n")
        payload["lasso"] = recs
    if "path" in sections and not quick:
        cols, rows, recs = _path_section(cap, names, rounds)
        print("### Lasso path, 10 alphas a_max..a_max/100, warm starts (base: sklearn); "
              "time until every alpha is at relgap <= 1e-6")
        print(format_table(["problem"] + cols, rows) + "\n")
        payload["path"] = recs
    if "logistic" in sections:
        peers = logistic_peers()
        _warm_up(peers, "logistic")
        # liblinear needs ~9 s on the hard sparse case: a 20 s cap lets it finish
        rows, recs = _section("logistic", QUICK_LOGISTIC if quick else LOGISTIC_CASES, peers,
                              "liblinear", 2 * cap, rounds, names)
        print("### L1 logistic regression (base: liblinear)")
        print(format_table(["problem"] + list(peers), rows) + "\n")
        payload["logistic"] = recs
    if "labelprop" in sections:
        from sparsecore._bench.bcd_labelprop import run_labelprop

        payload["labelprop"] = run_labelprop(quick=quick, rounds=max(rounds, 3))
    if "rules" in sections:
        from sparsecore._bench.bcd_rules import run_rules

        print("## rules: objective after each block update, Nutini, Laradji & Schmidt's data "
              "sets and rules (per iteration, not time)\n")
        payload["rules"] = run_rules(quick=quick)
    if "cold" in sections and not quick:
        cold = _cold_start()
        print("### first fit in a fresh process (small sparse Lasso; import excluded)")
        print(format_table(["solver", "seconds"],
                           [[k, "-" if v is None else f"{v:.3f}"] for k, v in cold.items()]) + "\n")
        payload["cold"] = cold
    if getattr(args, "json", None):
        write_json(args.json, payload)
