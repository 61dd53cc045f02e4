"""The per-iteration experiments of Nutini, Laradji & Schmidt (JMLR 2022).

Datasets after the paper's ``datasets.py``:

* A: least squares, A = (N(0,1) + 1) diag(10 N(0,1)) with entries kept with
  probability 10 ln(n)/n, w ~ N(0,1) kept with probability 0.1,
  b = A w + N(0,1); unregularised (f* = 0: p > n interpolates);
* A_l1: the same A with the penalty lambda sum(x), x >= 0 (NNLS + L1);
* C: softmax, labels argmax(A W + N(0,1)), unregularised;
* E: label propagation on two moons (symmetrised 5-NN graph, 100 labels).

Every curve is the objective after each block update (500 updates), so the
rules compare per iteration, as in the paper's figures. Blocks of the softmax
problem are features (all classes of a feature), not (feature, class) pairs.
"""
import time

import numpy as np
import scipy.sparse as sp

from sparsecore.optimize import (
    Multinomial,
    NoPenalty,
    NonNegative,
    Quadratic,
    graph_bcd,
    greedy_bcd,
)

__all__ = [
    "dataset_A",
    "dataset_C",
    "dataset_E",
    "finite_termination",
    "rule_curves",
    "graph_curves",
    "run_rules",
]


def dataset_A(n=1000, p=10000, seed=0):
    """The paper's data set A: (X (CSC), b)."""
    rng = np.random.default_rng(seed)
    density = min(1.0, 10 * np.log(n) / n)
    X = sp.random(n, p, density=density, format="csc", random_state=rng,
                  data_rvs=lambda k: rng.standard_normal(k) + 1.0)
    X = sp.csc_array(X @ sp.diags_array(10 * rng.standard_normal(p)))
    w = rng.standard_normal(p) * (rng.random(p) < 0.1)
    b = X @ w + rng.standard_normal(n)
    return X, b


def dataset_C(n=1000, p=1000, k=50, seed=0):
    """The paper's data set C (softmax): (X (CSC), class indices)."""
    X, _ = dataset_A(n, p, seed)
    rng = np.random.default_rng(seed + 1)
    W = rng.standard_normal((p, k))
    y = np.argmax(X @ W + rng.standard_normal((n, k)), axis=1)
    return X, y


def dataset_E(n=2000, n_labelled=100, seed=0):
    """The paper's data set E: (A = L_uu, b = W_ul Y_l, y_u) on two moons."""
    rng = np.random.default_rng(seed)
    t = rng.random(n) * np.pi
    half = n // 2
    pts = np.empty((n, 2))
    pts[:half] = np.c_[np.cos(t[:half]), np.sin(t[:half])]
    pts[half:] = np.c_[1 - np.cos(t[half:]), 0.5 - np.sin(t[half:])]
    pts += 0.2 * rng.standard_normal((n, 2))  # noise variance 0.04
    y = np.r_[np.zeros(half, int), np.ones(n - half, int)]
    # symmetrised 5-NN graph with unit weights
    from scipy.spatial import cKDTree

    _, nbr = cKDTree(pts).query(pts, k=6)
    rows = np.repeat(np.arange(n), 5)
    G = sp.csr_array((np.ones(5 * n), (rows, nbr[:, 1:].ravel())), shape=(n, n))
    W = G.maximum(G.T)
    lab = np.zeros(n, bool)
    lab[rng.choice(n, n_labelled, replace=False)] = True
    u = ~lab
    deg = np.asarray(W.sum(axis=1)).ravel()
    A = sp.csr_array(sp.diags_array(deg[u]) - W[u][:, u])
    b = (W[u][:, lab] @ (y[lab] == 1).astype(float))
    return A, b, y[u]


RULES_GRADIENT = [  # (label, selection, partition)
    ("Cyclic-VB", "cyclic", "variable"),
    ("Random-VB", "random", "variable"),
    ("Lipschitz-VB", "lipschitz", "variable"),
    ("GS-VB", "gs", "variable"),
    ("GSL-VB", "gsl", "variable"),
    ("GSD-VB", "gsd", "variable"),
    ("Cyclic-FB", "cyclic", "sort"),
    ("GS-FB", "gs", "sort"),
    ("GSL-FB", "gsl", "sort"),
]
RULES_MATRIX = [
    ("Cyclic-VB", "cyclic", "variable"),
    ("Random-VB", "random", "variable"),
    ("GS-VB", "gs", "variable"),
    ("GSL-VB", "gsl", "variable"),
    ("GSD-VB", "gsd", "variable"),
    ("GSQ-VB", "gsq", "variable"),
    ("GS-FB", "gs", "sort"),
    ("GSQ-FB", "gsq", "sort"),
]


def rule_curves(datafit, X, y, rules, update, n_iter=500, block_size=5, seed=0):
    """{label: objective after each block update} for the given rules."""
    out = {}
    for label, sel, part in rules:
        res = greedy_bcd(datafit, NoPenalty(), X, y, selection=sel, partition=part,
                         block_size=block_size, update=update, max_iter=n_iter, tol=0.0,
                         random_state=seed, history=True, n_threads=1)
        out[label] = res.history["primal"]
    return out


GRAPH_RULES = [  # (label, selection)
    ("GS-tree", "gs"),
    ("GSL-tree", "gsl"),
    ("GSD-tree", "gsd"),
    ("Random-tree", "random"),
    ("Tree partitions", "cyclic"),
    ("Red-black", "redblack"),
]


def graph_curves(A, b, n_iter=500, seed=0):
    """{label: f(x_k) - f* per block update} for the forest rules on E."""
    from scipy.sparse.linalg import spsolve

    xs = spsolve(sp.csc_array(A), b)
    fstar = 0.5 * xs @ (A @ xs) - b @ xs
    out = {}
    for label, sel in GRAPH_RULES:
        res = graph_bcd(A, b, method="bcd", selection=sel, tol=0.0, max_iter=n_iter,
                        random_state=seed, history=True)
        out[label] = res.history["objective"] - fstar
    return out


def finite_termination(X, b, lam, n_iter=500, block_size=100):
    """NNLS + L1 (the paper's A_l1, Section 6): relative gap and support size
    per block update for proximal-gradient (PG) and exact block-QP (PN)
    updates of GS-q variable blocks of ``block_size``, and for the
    working-set mode whose Newton step on the support ends the solve."""
    n = X.shape[0]
    pen = NonNegative(l1=lam / n)   # (1/2n)||Xw - b||^2 + (lam/n) sum(w), w >= 0
    ref = greedy_bcd(Quadratic(), pen, X, b, tol=1e-15, max_iter=5000, n_threads=1)
    support = np.flatnonzero(ref.coef)
    out = {"support_size": int(support.size), "P*": ref.primal}
    runs = {"PG (gradient)": ("gradient", block_size), "PN (matrix)": ("matrix", block_size),
            "Newton, working set": ("newton", "auto")}
    for label, (update, tau) in runs.items():
        res = greedy_bcd(Quadratic(), pen, X, b, selection="gsl", partition="variable",
                         block_size=tau, update=update, tol=0.0, max_iter=n_iter,
                         history=True, n_threads=1)
        h = res.history
        rel = h["gap"] / np.maximum(h["primal"], 1e-300)
        nnz = h["n_nonzero"]
        # support identified: from this update on the support size stays |S*|
        same = nnz == support.size
        ident = next((k for k in range(len(same)) if same[k:].all()), None)
        out[label] = {
            "rel_gap": rel.tolist(),
            "n_nonzero": nnz.tolist(),
            "final_rel_gap": float(rel[-1]),
            "identified_at": ident,
            "support_found": bool(np.array_equal(np.flatnonzero(res.coef), support)),
        }
    return out


def _final(curves, k=-1):
    return {lab: float(np.asarray(c)[k]) for lab, c in curves.items()}


def run_rules(quick=False):
    """Print the per-iteration orderings; return the curves (figure data)."""
    from sparsecore._bench._harness import format_table

    n_iter = 200 if quick else 500
    payload = {}
    t0 = time.perf_counter()
    X, b = dataset_A(600, 6000) if quick else dataset_A()
    sets = [("A (least squares)", Quadratic(), X, b)]
    Xc, yc = dataset_C(300, 300, 10) if quick else dataset_C(1000, 1000, 50)
    sets.append(("C (softmax)", Multinomial(int(yc.max()) + 1), Xc, yc))
    for name, df, X_, y_ in sets:
        for update, rules in (("gradient", RULES_GRADIENT), ("matrix", RULES_MATRIX)):
            if quick:
                rules = [r for r in rules if r[1] != "gsq" or r[2] != "variable"]
            curves = rule_curves(df, X_, y_, rules, update, n_iter)
            fin = _final(curves)
            order = sorted(fin, key=fin.get)
            print(f"### data set {name}, {update} updates, tau = 5: f(x) after {n_iter} block updates (f* = 0)")
            print(format_table(["rule", "f(x)"], [[lab, f"{fin[lab]:.4e}"] for lab in order]))
            print(f"# order, best first: {' < '.join(order)}\n")
            payload[f"{name}/{update}"] = {k: np.asarray(v).tolist() for k, v in curves.items()}
    A, bE, _ = dataset_E()
    curves = graph_curves(A, bE, n_iter)
    fin = _final(curves)
    order = sorted(fin, key=fin.get)
    print(f"### data set E (label propagation, forest blocks, exact tree solves): f(x) - f* after {n_iter} updates")
    print(format_table(["rule", "f(x) - f*"], [[lab, f"{fin[lab]:.4e}"] for lab in order]))
    print(f"# order, best first: {' < '.join(order)}\n")
    payload["E/forest"] = {k: np.asarray(v).tolist() for k, v in curves.items()}
    X, b = dataset_A(600, 6000) if quick else dataset_A()
    ft = finite_termination(X, b, 1e5 if quick else 5e4, n_iter=n_iter // 2)
    rows = []
    for label in ("PG (gradient)", "PN (matrix)", "Newton, working set"):
        r = ft[label]
        rg = np.asarray(r["rel_gap"])
        hit = np.flatnonzero(rg <= 1e-10)
        rows.append([label, f"{r['final_rel_gap']:.2e}",
                     "-" if r["identified_at"] is None else str(r["identified_at"]),
                     str(int(hit[0])) if hit.size else "-"])
    print(f"### NNLS + L1 (data set A_l1, optimal support {ft['support_size']}): GS-q rule, "
          f"variable blocks of 100 (working set: support + best scores)")
    print(format_table(["update", "final relgap", "support identified at", "relgap <= 1e-10 at"], rows))
    print(f"# {time.perf_counter() - t0:.1f} s\n")
    payload["A_l1"] = ft
    return payload
