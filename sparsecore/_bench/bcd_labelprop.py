"""Label propagation rows of the bcd suite: two moons, symmetrised k-NN graph,
the harmonic system L_uu F_u = W_ul Y_l solved to relative residual 1e-8 by
sparsecore's forest solver, scipy's sparse direct solver and scipy's CG on
the same graph, beside scikit-learn's LabelPropagation / LabelSpreading (their
own row-normalised iterations at their default tol)."""
import statistics
import time
import warnings

import numpy as np
import scipy.sparse as sp

from sparsecore._bench._harness import Case, Peer, format_table, time_peers

__all__ = ["moons_graph", "run_labelprop"]


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


def run_labelprop(quick=False, rounds=3):
    from scipy.sparse.linalg import cg, spsolve

    from sparsecore.optimize import harmonic_solve
    from sparsecore.semi_supervised import GreedyBCDLabelPropagation

    sizes = [(2_000, 100), (20_000, 200)]
    rows, recs = [], []
    for n, nl in sizes:
        X, y, lab, W = moons_graph(n, nl)
        A, B = _system(W, lab, y)
        Yl = np.eye(2)[y[lab]]
        u = ~lab

        def ours(_):
            return harmonic_solve(W, lab, Yl, tol=1e-8)[0][u]

        def direct(_):
            return spsolve(sp.csc_array(A), B)

        def scipy_cg(_):
            return np.column_stack([cg(A, B[:, c], rtol=1e-8, maxiter=10_000)[0] for c in range(2)])

        def estimator(_):
            yp = np.where(lab, y, -1)
            return GreedyBCDLabelPropagation(n_neighbors=5).fit(X, yp).label_distributions_[u]

        peers = [Peer("sparsecore forest-CG (solve)", 1, ours), Peer("scipy spsolve", 1, direct),
                 Peer("scipy CG", 1, scipy_cg),
                 Peer("sparsecore estimator (graph + solve)", 1, estimator)]
        try:
            from sklearn.semi_supervised import LabelPropagation, LabelSpreading

            def sk_lp(_):
                yp = np.where(lab, y, -1)
                return LabelPropagation(kernel="knn", n_neighbors=5).fit(X, yp).label_distributions_[u]

            def sk_ls(_):
                yp = np.where(lab, y, -1)
                return LabelSpreading(kernel="knn", n_neighbors=5).fit(X, yp).label_distributions_[u]

            peers += [Peer("sklearn LabelPropagation (tol 1e-3)", 1, sk_lp),
                      Peer("sklearn LabelSpreading", 1, sk_ls)]
        except ImportError:
            pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times = time_peers(Case(f"moons {n}", None), peers, rounds=rounds, min_time=0.0)
            for p in peers:
                F = p.run(None)
                acc = float((np.argmax(F, axis=1) == y[u]).mean())
                res = _rel_res(A, B, F) if "sklearn" not in p.name else float("nan")
                t = statistics.median(times[p.label])
                rows.append([f"moons {n} ({nl} labelled, 5-NN)", p.name, f"{t:.3f}",
                             "-" if res != res else f"{res:.1e}", f"{acc:.4f}"])
                recs.append({"n": n, "solver": p.name, "time": t, "residual": res, "accuracy": acc})
    print("### label propagation: harmonic system on the symmetrised 5-NN graph, 1 thread")
    print(format_table(["problem", "solver", "seconds", "rel. residual", "accuracy"], rows) + "\n")
    return recs
