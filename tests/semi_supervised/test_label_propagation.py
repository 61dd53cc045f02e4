"""Forest blocks, tree elimination (message passing), graph_bcd and
GreedyBCDLabelPropagation.

Linear solves are checked against scipy's sparse direct solver at a relative
residual of 1e-8 (the solvers' tol) and solution error 1e-6.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import spsolve

from sparsecore.optimize import forest_partition, graph_bcd, harmonic_solve, tree_solve
from sparsecore.optimize._graph import GRAPH_SELECTIONS

from helpers import SHARED, requires_shared


def _laplacian_system(W, shift=0.1):
    W = sp.csr_array(W)
    deg = np.asarray(W.sum(axis=1)).ravel()
    return sp.csr_array(sp.diags_array(deg + shift) - W)


def _random_graph(n, density, seed):
    W = sp.random(n, n, density=density, random_state=seed)
    W = sp.csr_array(W + W.T)
    W.setdiag(0)
    W.eliminate_zeros()
    return W


@given(parents=st.lists(st.integers(0, 10_000), min_size=1, max_size=60),
       seed=st.integers(0, 1000), k=st.integers(1, 3))
@settings(max_examples=40, deadline=None)
def test_tree_solve_on_random_trees(parents, seed, k):
    # node i > 0 hangs off a random earlier node: a tree; random positive weights
    n = len(parents) + 1
    rng = np.random.default_rng(seed)
    rows = np.arange(1, n)
    cols = np.array([p % i for p, i in zip(parents, rows)])
    w = rng.uniform(0.1, 2.0, n - 1)
    W = sp.csr_array((np.r_[w, w], (np.r_[rows, cols], np.r_[cols, rows])), shape=(n, n))
    A = _laplacian_system(W, shift=rng.uniform(0.05, 1.0))
    b = rng.standard_normal((n, k))
    x = tree_solve(A, np.arange(n), b)
    assert np.allclose(A @ x, b, atol=1e-9 * max(1, np.abs(b).max()))
    # a subset of the nodes of a tree induces a forest
    nodes = np.flatnonzero(rng.random(n) < 0.6)
    if nodes.size:
        xs = tree_solve(A, nodes, b[nodes])
        Abb = A[nodes][:, nodes].toarray()
        assert np.allclose(Abb @ xs, b[nodes], atol=1e-9 * max(1, np.abs(b).max()))


def test_tree_solve_errors():
    A = _laplacian_system(np.ones((3, 3)) - np.eye(3))   # a triangle
    with pytest.raises(ValueError, match="does not induce a forest"):
        tree_solve(A, [0, 1, 2], np.ones(3))
    assert np.allclose(tree_solve(A, [0, 2], np.ones(2)), np.linalg.solve(A.toarray()[[0, 2]][:, [0, 2]], np.ones(2)))
    with pytest.raises(ValueError, match="distinct"):
        tree_solve(A, [0, 0], np.ones(2))
    with pytest.raises(ValueError, match="range"):
        tree_solve(A, [5], np.ones(1))
    with pytest.raises(ValueError, match="square"):
        tree_solve(sp.csr_array(np.ones((2, 3))), [0], np.ones(1))
    bad = sp.csr_array(np.array([[1.0, 2.0], [2.0, 1.0]]))   # indefinite on a tree
    with pytest.raises(ValueError, match="not positive definite"):
        tree_solve(bad, [0, 1], np.ones(2))


@pytest.mark.parametrize("order", ["degree", "lipschitz", "natural", "random"])
def test_forest_partition_blocks_are_forests(order):
    W = _random_graph(300, 0.03, 1)
    labels, nb = forest_partition(W, order=order, random_state=0)
    assert labels.min() == 0 and labels.max() == nb - 1
    for b in range(nb):
        nodes = np.flatnonzero(labels == b)
        sub = sp.csr_array(W[nodes][:, nodes])
        ncomp, _ = sp.csgraph.connected_components(sub, directed=False)
        # a forest has exactly (nodes - components) edges
        assert sub.nnz // 2 == len(nodes) - ncomp


@requires_shared
def test_forest_partition_on_a_real_graph():
    from sparsecore import datasets

    A = datasets.read_matrix_market(SHARED / "bcsstk13.mtx")
    W = abs(sp.csr_array(A))
    W.setdiag(0)
    W.eliminate_zeros()
    labels, nb = forest_partition(W)
    for b in range(nb):
        nodes = np.flatnonzero(labels == b)
        sub = sp.csr_array(W[nodes][:, nodes])
        ncomp, _ = sp.csgraph.connected_components(sub, directed=False)
        assert sub.nnz // 2 == len(nodes) - ncomp


@pytest.mark.parametrize("method,selection", [("cg", "cyclic")] + [("bcd", s) for s in GRAPH_SELECTIONS])
@pytest.mark.parametrize("k", [1, 3])
def test_graph_bcd_solves(method, selection, k):
    rng = np.random.default_rng(0)
    A = _laplacian_system(_random_graph(150, 0.04, 2), shift=0.5)
    b = rng.standard_normal((150, k)) if k > 1 else rng.standard_normal(150)
    res = graph_bcd(A, b, method=method, selection=selection, tol=1e-10, max_iter=20_000,
                    random_state=0, history=True)
    assert res.converged and res.residual <= 1e-10
    ref = spsolve(sp.csc_array(A), b)
    assert np.allclose(res.x, ref, atol=1e-8)
    assert res.x.shape == np.shape(b)
    if method == "bcd":
        # exact block minimisation never increases the objective
        assert np.all(np.diff(res.history["objective"]) <= 1e-10)


def test_graph_bcd_errors():
    A = _laplacian_system(_random_graph(20, 0.2, 3))
    with pytest.raises(ValueError, match="method must be"):
        graph_bcd(A, np.ones(20), method="lu")
    with pytest.raises(ValueError, match="selection must be one of"):
        graph_bcd(A, np.ones(20), method="bcd", selection="gsq")
    with pytest.raises(ValueError, match="must have 20 rows"):
        graph_bcd(A, np.ones(7))
    with pytest.raises(ValueError, match="NaN"):
        graph_bcd(A, np.full(20, np.nan))
    with pytest.raises(ValueError, match="max_iter"):
        graph_bcd(A, np.ones(20), max_iter=-1)


def test_harmonic_solve_orphan_components():
    # two disconnected paths, only the first carries labels
    W = sp.lil_array((6, 6))
    for i, j in [(0, 1), (1, 2), (3, 4), (4, 5)]:
        W[i, j] = W[j, i] = 1.0
    lab = np.array([True, False, True, False, False, False])
    F, res = harmonic_solve(W.tocsr(), lab, np.array([[1.0, 0.0], [0.0, 1.0]]), tol=1e-12)
    assert np.allclose(F[1], [0.5, 0.5])       # midway between the two labels
    assert np.allclose(F[3:], 0.5)             # no label reachable: uniform


# ---------------------------------------------------------------------------
# the estimator


@pytest.fixture
def moons():
    from sklearn.datasets import make_moons

    X, y = make_moons(600, noise=0.08, random_state=0)
    yp = np.full_like(y, -1)
    idx = np.random.default_rng(0).choice(600, 30, replace=False)
    yp[idx] = y[idx]
    return X, y, yp


def test_label_propagation_on_moons(moons):
    from sparsecore.semi_supervised import GreedyBCDLabelPropagation

    X, y, yp = moons
    m = GreedyBCDLabelPropagation(n_neighbors=5).fit(X, yp)
    assert (m.transduction_ == y).mean() > 0.99
    assert m.residual_ <= 1e-8
    assert np.allclose(m.label_distributions_.sum(axis=1), 1)
    assert np.array_equal(m.transduction_[yp != -1], yp[yp != -1])
    assert (m.predict(X) == y).mean() > 0.99
    # the plain greedy BCD reaches the same labels
    g = GreedyBCDLabelPropagation(n_neighbors=5, method="bcd", selection="gsl", max_iter=5000).fit(X, yp)
    assert np.allclose(g.label_distributions_, m.label_distributions_, atol=1e-5)


def test_label_propagation_precomputed_and_rbf(moons):
    from sklearn.neighbors import kneighbors_graph

    from sparsecore.semi_supervised import GreedyBCDLabelPropagation

    X, y, yp = moons
    knn = GreedyBCDLabelPropagation(n_neighbors=5).fit(X, yp)
    G = kneighbors_graph(X, 5)
    pre = GreedyBCDLabelPropagation(kernel="precomputed").fit(G.maximum(G.T), yp)
    assert np.allclose(pre.label_distributions_, knn.label_distributions_, atol=1e-6)
    pre_dense = GreedyBCDLabelPropagation(kernel="precomputed").fit(G.maximum(G.T).toarray(), yp)
    assert np.allclose(pre_dense.label_distributions_, knn.label_distributions_, atol=1e-6)
    rbf = GreedyBCDLabelPropagation(kernel="rbf", gamma=30).fit(X, yp)
    assert (rbf.transduction_ == y).mean() > 0.95 and rbf.residual_ < 1e-8
    # a callable kernel
    from sklearn.metrics.pairwise import rbf_kernel

    cal = GreedyBCDLabelPropagation(kernel=lambda a, b: rbf_kernel(a, b, gamma=30)).fit(X, yp)
    assert np.allclose(cal.label_distributions_, rbf.label_distributions_, atol=1e-8)


def test_label_propagation_errors(moons):
    from sparsecore.semi_supervised import GreedyBCDLabelPropagation

    X, y, yp = moons
    with pytest.raises(ValueError, match="no labelled point"):
        GreedyBCDLabelPropagation().fit(X, np.full(len(y), -1))
    with pytest.raises(ValueError, match="must be square"):
        GreedyBCDLabelPropagation(kernel="precomputed").fit(X, yp)
    with pytest.raises(ValueError, match="non-negative"):
        GreedyBCDLabelPropagation(kernel="precomputed").fit(-np.ones((len(y), len(y))), yp)
    with pytest.raises(ValueError, match="kernel"):
        GreedyBCDLabelPropagation(kernel="poly").fit(X, yp)
