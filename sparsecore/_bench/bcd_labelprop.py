"""Label propagation rows of the bcd suite: two moons, symmetrised k-NN graph,
the harmonic system L_uu F_u = W_ul Y_l solved to relative residual 1e-8 by
sparsecore's forest solver, scipy's sparse direct solver and scipy's CG on
the same graph, beside scikit-learn's LabelPropagation / LabelSpreading (their
own row-normalised iterations at their default tol). Registers the family
``bcd.labelprop``."""
import statistics
import warnings

import numpy as np
import scipy.sparse as sp

from sparsecore._bench._harness import Case, Peer, format_table, time_peers
from sparsecore._bench._registry import Family, register

__all__ = ["moons_graph", "make_case", "run_labelprop", "FAMILY"]


def moons_graph(n=20_000, n_labelled=200, k=5, noise=0.1, seed=0):
    """(X, y, labelled mask, W) for two moons with a symmetrised kNN graph."""
    from sklearn.datasets import make_moons
    from sklearn.neighbors import kneighbors_graph

    X, y = make_moons(n, noise=noise, random_state=seed)
    G = kneighbors_graph(X, k, mode="connectivity")
    W = sp.csr_array(G.maximum(G.T))
    rng = np.random.default_rng(seed)
    lab = np.zeros(n, bool)
    lab[rng.choice(n, n_labelled, replace=False)] = True
    return X, y, lab, W


def _system(W, lab, y):
    u = ~lab
    deg = np.asarray(W.sum(axis=1)).ravel()
    A = sp.csr_array(sp.diags_array(deg[u]) - W[u][:, u])
    Yl = np.eye(2)[y[lab]]
    return A, W[u][:, lab] @ Yl


def _rel_res(A, B, F):
    return float(np.linalg.norm(B - A @ F) / np.linalg.norm(B))


def make_case(name):
    """``moons<n>``: two moons of n points (100 labelled for 2,000, else 200),
    the symmetrised 5-NN graph and its harmonic system ``A F = B``."""
    n = int(name[len("moons"):])
    nl = 100 if n <= 2_000 else 200
    X, y, lab, W = moons_graph(n, nl)
    A, B = _system(W, lab, y)
    return Case(name, {"X": X, "y": y, "lab": lab, "W": W, "A": A, "B": B,
                       "Yl": np.eye(2)[y[lab]], "u": ~lab}, {"labelled": nl})


def _peers(case, t):
    """Solvers of the harmonic system (rows of the unlabelled points), and
    the estimators that build the graph too (scikit-learn's at its own tol)."""
    from scipy.sparse.linalg import cg, spsolve

    from sparsecore.optimize import harmonic_solve
    from sparsecore.semi_supervised import GreedyBCDLabelPropagation

    def partial(d):
        return np.where(d["lab"], d["y"], -1)

    peers = [
        Peer("sparsecore", 1, lambda d: harmonic_solve(d["W"], d["lab"], d["Yl"], tol=1e-8)[0][d["u"]]),
        Peer("spsolve", 1, lambda d: spsolve(d["Ac"], d["B"]),
             lambda d: {**d, "Ac": sp.csc_array(d["A"])}),
        Peer("cg", 1, lambda d: np.column_stack([cg(d["A"], d["B"][:, c], rtol=1e-8,
                                                    maxiter=10_000)[0] for c in range(2)])),
        Peer("sparsecore estimator", 1, lambda d: GreedyBCDLabelPropagation(n_neighbors=5).fit(
            d["X"], partial(d)).label_distributions_[d["u"]]),
    ]
    try:
        from sklearn.semi_supervised import LabelPropagation, LabelSpreading
    except ImportError:
        return peers
    for est in (LabelPropagation, LabelSpreading):
        peers.append(Peer(f"sklearn {est.__name__}", 1, lambda d, est=est: est(
            kernel="knn", n_neighbors=5).fit(d["X"], partial(d)).label_distributions_[d["u"]]))
    return peers


FAMILY = register(Family("bcd.labelprop", ["moons2000", "moons20000"], make_case, _peers,
                         ["sparsecore", "spsolve", "cg", "sparsecore estimator",
                          "sklearn LabelPropagation", "sklearn LabelSpreading"]))


def run_labelprop(quick=False, rounds=3):
    rows, recs = [], []
    for name in FAMILY.case_names():
        case = make_case(name)
        d = case.inputs
        peers = _peers(case, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times = time_peers(case, peers, rounds=rounds, min_time=0.0)
            for p in peers:
                F = p.run(p.prepare(d))
                acc = float((np.argmax(F, axis=1) == d["y"][d["u"]]).mean())
                res = _rel_res(d["A"], d["B"], F) if "sklearn" not in p.name else float("nan")
                t = statistics.median(times[p.label])
                rows.append([f"{name} ({case.info['labelled']} labelled, 5-NN)", p.name, f"{t:.3f}",
                             "-" if res != res else f"{res:.1e}", f"{acc:.4f}"])
                recs.append({"case": name, "n": len(d["y"]), "solver": p.name, "time": t,
                             "residual": res, "accuracy": acc})
    print("### label propagation: harmonic system on the symmetrised 5-NN graph, 1 thread")
    print(format_table(["problem", "solver", "seconds", "rel. residual", "accuracy"], rows) + "\n")
    return recs
