"""Sparse quadratics by forest blocks and message passing (Nutini, Laradji &
Schmidt, JMLR 2022, Section 5): the label-propagation problem
``min_x x^T A x / 2 - b^T x`` with A a sparse symmetric positive definite
matrix (a Laplacian block), one column of x per class.

A block whose induced subgraph is a forest is minimised exactly by tree
elimination in O(|block|). Blocks come from a fixed forest partition
("TreePartitions", cycled), or are grown greedily each iteration in the order
of a Gauss-Southwell score (the GS / GSL / GSD forest rules), or are the
colour classes of a greedy colouring ("red-black"). ``method="cg"`` uses a
forward-then-backward sweep over the forest partition as the preconditioner
of conjugate gradients, which keeps the exact tree solves and adds the
acceleration the plain block iteration lacks on large graphs.
"""
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from sparsecore._ext import _forest
from sparsecore._validation import contiguous

__all__ = [
    "GraphQuadratic",
    "GraphResult",
    "forest_partition",
    "graph_bcd",
    "harmonic_solve",
    "tree_solve",
    "GRAPH_SELECTIONS",
]

GRAPH_SELECTIONS = ("cyclic", "gs", "gsl", "gsd", "random", "redblack")


class GraphQuadratic:
    """The objective ``f(x) = x^T A x / 2 - b^T x`` (A sparse SPD), column-wise
    for an (n, K) x: the datafit of label propagation, solved by
    :func:`graph_bcd` (``greedy_bcd`` forwards to it)."""

    is_quadratic = True

    def __repr__(self):
        return "GraphQuadratic()"

    @staticmethod
    def value(A, B, X):
        """Objective ``sum_k x_k^T A x_k / 2 - b_k^T x_k`` over the columns.

        Parameters
        ----------
        A : sparse matrix or ndarray of shape (n, n)
            Symmetric matrix of the quadratic.
        B : ndarray of shape (n, K)
            Linear terms, one column per problem.
        X : ndarray of shape (n, K)
            Current point.

        Returns
        -------
        float
            The objective summed over the columns.
        """
        return 0.5 * float(np.sum(X * (A @ X))) - float(np.sum(B * X))

    @staticmethod
    def gradient(A, B, X):
        """Gradient ``A X - B``.

        Parameters
        ----------
        A : sparse matrix or ndarray of shape (n, n)
            Symmetric matrix of the quadratic.
        B : ndarray of shape (n, K)
            Linear terms, one column per problem.
        X : ndarray of shape (n, K)
            Current point.

        Returns
        -------
        ndarray of shape (n, K)
        """
        return A @ X - B


def _as_spd_csr(A, name="A"):
    if not sp.issparse(A):
        A = np.asarray(A)
        if A.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix, got shape {A.shape}")
        A = sp.csr_array(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be square, got shape {A.shape}")
    A = sp.csr_array(A, dtype=np.float64, copy=True)
    A.sum_duplicates()
    if A.nnz and not np.all(np.isfinite(A.data)):
        raise ValueError(f"{name} contains NaN or infinity")
    idx = np.int32 if A.nnz < 2**31 and A.shape[0] < 2**31 else np.int64
    return A, A.indptr.astype(idx, copy=False), A.indices.astype(idx, copy=False)


def _as_rhs(B, n, name="b"):
    B = np.asarray(B, dtype=np.float64)
    if B.ndim == 1:
        B = B[:, None]
    if B.ndim != 2 or B.shape[0] != n:
        raise ValueError(f"{name} must have {n} rows, got shape {B.shape}")
    if not np.all(np.isfinite(B)):
        raise ValueError(f"{name} contains NaN or infinity")
    return contiguous(B)


def forest_partition(A, order="degree", random_state=None):
    """Partition the nodes of the graph of A into blocks that induce forests.

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Symmetric; its off-diagonal pattern is the graph.
    order : {"degree", "lipschitz", "natural", "random"} or array of int, default="degree"
        Order in which nodes are placed (each goes to the first block where it
        closes no cycle): by decreasing degree, by decreasing diagonal entry
        (the paper's choice), as numbered, at random, or as given.
    random_state : int, Generator or None

    Returns
    -------
    labels : ndarray of shape (n,)
        Block of every node.
    n_blocks : int
    """
    A, indptr, indices = _as_spd_csr(A)
    return _partition(A, indptr, indices, order, random_state)


def _partition(A, indptr, indices, order, random_state):
    n = A.shape[0]
    visit = _visit_order(A, order, random_state)
    labels = np.empty(n, dtype=np.int64)
    nb = _forest.forest_partition(indptr, indices, visit, labels) if n else 0
    return labels, int(nb)


def _visit_order(A, order, random_state):
    n = A.shape[0]
    if isinstance(order, str):
        if order == "degree":
            return np.argsort(-np.diff(A.indptr), kind="stable").astype(np.int64)
        if order == "lipschitz":
            return np.argsort(-A.diagonal(), kind="stable").astype(np.int64)
        if order == "natural":
            return np.arange(n, dtype=np.int64)
        if order == "random":
            return np.random.default_rng(random_state).permutation(n).astype(np.int64)
        raise ValueError(f"order must be 'degree', 'lipschitz', 'natural', 'random' or an array; got {order!r}")
    visit = np.asarray(order)
    if visit.shape != (n,) or not np.array_equal(np.sort(visit), np.arange(n)):
        raise ValueError(f"order must be a permutation of range({n})")
    return visit.astype(np.int64)


class _Blocks:
    """Tree structure and pivots of a set of forest blocks."""

    def __init__(self, A, indptr, indices, labels, n_blocks):
        self.A, self.indptr, self.indices = A, indptr, indices
        self.labels = contiguous(labels, dtype=np.int64)
        n = A.shape[0]
        counts = np.bincount(self.labels[self.labels >= 0], minlength=n_blocks)
        self.boff = np.zeros(n_blocks + 1, dtype=np.int64)
        np.cumsum(counts, out=self.boff[1:])
        m = int(self.boff[-1])
        self.order = np.empty(m, dtype=np.int64)
        self.ppos = np.empty(m, dtype=np.int64)
        self.edge = np.empty(m)
        diag = np.empty(m)
        members = np.argsort(self.labels, kind="stable")[n - m:] if m < n else np.argsort(self.labels, kind="stable")
        for b in range(n_blocks):
            lo, hi = self.boff[b], self.boff[b + 1]
            nodes = contiguous(members[lo:hi], dtype=np.int64)
            got = _forest.forest_structure(indptr, indices, A.data, self.labels, nodes, b,
                                           self.order[lo:hi], self.ppos[lo:hi], self.edge[lo:hi],
                                           diag[lo:hi])
            if got < 0:
                raise ValueError(f"block {b} does not induce a forest in the graph of A")
        self.piv = np.empty(m)
        if _forest.factor(self.boff, self.ppos, self.edge, diag, self.piv):
            raise ValueError("A is not positive definite (a tree elimination pivot is <= 0); "
                             "in label propagation this means a connected component has no "
                             "labelled node")
        self.n_blocks = n_blocks

    def permuted(self):
        """The system renumbered block by block in breadth-first order, with
        the arrays the fast kernels take: (perm, A_perm parts, fac, ipiv)."""
        perm = self.order
        Ap = sp.csr_array(self.A[perm][:, perm])
        Ap.sort_indices()
        idx = self.indptr.dtype
        return (perm, Ap.indptr.astype(idx, copy=False), Ap.indices.astype(idx, copy=False),
                Ap.data, self.edge / self.piv, 1.0 / self.piv)

    def sweep(self, seq, B, X, R):
        _forest.sweep(self.indptr, self.indices, self.A.data, self.labels, self.boff,
                      self.order, self.ppos, self.edge, self.piv,
                      contiguous(seq, dtype=np.int64), B, X, R)


def tree_solve(A, nodes, rhs):
    """Solve ``A[nodes][:, nodes] x = rhs`` exactly when the subgraph of A
    induced by ``nodes`` is a forest, by elimination in O(len(nodes)).

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Symmetric positive definite on the block.
    nodes : array of int
        Distinct node indices.
    rhs : ndarray of shape (len(nodes),) or (len(nodes), K)

    Returns
    -------
    ndarray shaped like ``rhs``
    """
    A, indptr, indices = _as_spd_csr(A)
    n = A.shape[0]
    nodes = np.asarray(nodes, dtype=np.int64).ravel()
    if nodes.size and (nodes.min() < 0 or nodes.max() >= n):
        raise ValueError(f"nodes must be in range({n})")
    if np.unique(nodes).size != nodes.size:
        raise ValueError("nodes must be distinct")
    rhs = np.asarray(rhs, dtype=np.float64)
    vec = rhs.ndim == 1
    R = rhs.reshape(len(nodes), -1)
    labels = np.full(n, -1, dtype=np.int64)
    labels[nodes] = 0
    blocks = _Blocks(A, indptr, indices, labels, 1)
    Bfull = np.zeros((n, R.shape[1]))
    Bfull[nodes] = R
    X = np.zeros_like(Bfull)
    blocks.sweep([0], Bfull, X, np.empty_like(Bfull))
    out = X[nodes]
    return out[:, 0] if vec else out


@dataclass
class GraphResult:
    """What :func:`graph_bcd` returns.

    Attributes
    ----------
    x : ndarray of shape (n, K)
        The solution.
    residual : float
        The relative residual ``||b - A x|| / ||b||``.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the tolerance was reached.
    history : dict or None
        Per-iteration records, when asked for.
    """

    x: np.ndarray
    residual: float
    n_iter: int
    converged: bool
    history: dict = field(default=None, repr=False)


def _coloring(A, indptr, indices):
    """Greedy colouring (largest degree first): colour classes are independent
    sets, the red-black blocks of the paper."""
    n = A.shape[0]
    visit = np.argsort(-np.diff(A.indptr), kind="stable")
    colour = np.full(n, -1, dtype=np.int64)
    ip, ix = A.indptr, A.indices
    for i in visit:
        used = set(colour[ix[ip[i]:ip[i + 1]]].tolist())
        c = 0
        while c in used:
            c += 1
        colour[i] = c
    return colour, int(colour.max()) + 1 if n else 0


def graph_bcd(A, b, *, method="cg", selection="cyclic", tol=1e-8, max_iter=1000,
              x0=None, partition_order="degree", random_state=None, history=False):
    """Minimise ``x^T A x / 2 - b^T x`` (solve A x = b) by forest-block BCD.

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Symmetric positive definite.
    b : ndarray of shape (n,) or (n, K)
    method : {"cg", "bcd"}, default="cg"
        ``bcd``: one exact forest-block update per iteration, blocks chosen by
        ``selection``. ``cg``: conjugate gradients preconditioned by one
        forward and one backward sweep of exact updates over the forest
        partition (symmetric block Gauss-Seidel with tree blocks).
    selection : {"cyclic", "gs", "gsl", "gsd", "random", "redblack"}, default="cyclic"
        For ``bcd``: cycle over a fixed forest partition; grow one forest per
        iteration greedily in the order of ``|gradient|`` (``gs``), scaled by
        1/sqrt(A_ii) (``gsl``) or 1/sqrt(sum_j ``|A_ij|``) (``gsd``), or in random
        order; or cycle over the colour classes of a greedy colouring.
    tol : float, default=1e-8
        Stop when ||b - A x||_F <= tol ||b||_F.
    max_iter : int, default=1000
        Iterations (block updates for ``bcd``, CG steps for ``cg``).
    x0 : ndarray, default=None
    partition_order : str or array, default="degree"
        Node order of the forest partition (see :func:`forest_partition`).
    random_state : int, Generator or None
    history : bool, default=False
        Record the relative residual and objective per iteration.

    Returns
    -------
    GraphResult
    """
    t0 = time.perf_counter()
    if method not in ("cg", "bcd"):
        raise ValueError(f"method must be 'cg' or 'bcd', got {method!r}")
    if selection not in GRAPH_SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(map(repr, GRAPH_SELECTIONS))}; got {selection!r}")
    if isinstance(max_iter, (bool, np.bool_)) or not isinstance(max_iter, numbers.Integral) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real) or not tol >= 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    A, indptr, indices = _as_spd_csr(A)
    n = A.shape[0]
    vec = np.ndim(b) == 1
    B = _as_rhs(b, n)
    K = B.shape[1]
    X = np.zeros((n, K)) if x0 is None else np.array(_as_rhs(x0, n, "x0"))
    rng = np.random.default_rng(random_state)
    hist = {"time": [], "residual": [], "objective": []} if history else None
    bnorm = float(np.linalg.norm(B)) or 1.0
    R = np.empty((n, K))
    AX = np.empty((n, K))

    def residual():
        _forest.symv(indptr, indices, A.data, X, AX)
        np.subtract(B, AX, out=R)
        return float(np.linalg.norm(R)) / bnorm

    def record(res):
        if hist is not None:
            hist["time"].append(time.perf_counter() - t0)
            hist["residual"].append(res)
            hist["objective"].append(0.5 * float(np.sum(X * AX)) - float(np.sum(B * X)))

    fixed = None
    if method == "cg" or selection == "cyclic":
        labels, nb = _partition(A, indptr, indices, partition_order, random_state)
        fixed = _Blocks(A, indptr, indices, labels, nb)
    elif selection == "redblack":
        labels, nb = _coloring(A, indptr, indices)
        fixed = _Blocks(A, indptr, indices, labels, nb)
    it = 0
    res = residual()
    record(res)
    converged = res <= tol
    W = np.empty((n, K))
    if method == "cg":
        # forward then backward over the blocks; the last block is not repeated
        nb = fixed.n_blocks
        seq = np.concatenate([np.arange(nb), np.arange(nb - 1)[::-1]]).astype(np.int64)
        # the per-iteration trace is kept only when asked for (and bounded)
        trace = np.full(min(max_iter, 100_000) + 1 if hist is not None else 0, np.nan)
        if fixed.order.size != n:
            raise ValueError("the forest partition must cover every node")
        perm, pip, pix, pdata, fac, ipiv = fixed.permuted()
        Bp = contiguous(B[perm])
        Xp = contiguous(X[perm])
        it, res = _forest.pcg(pip, pix, pdata, fixed.boff, fixed.ppos, fac, fixed.edge, ipiv,
                              seq, Bp, Xp, float(tol), int(max_iter), trace)
        X[perm] = Xp
        converged = res <= tol
        if hist is not None:
            hist["residual"] = list(trace[:min(it, len(trace) - 1) + 1])
            m = len(hist["residual"])
            hist["time"] = [np.nan] * (m - 1) + [time.perf_counter() - t0]
            hist["objective"] = [np.nan] * m
    else:
        diag = A.diagonal()
        absrow = np.asarray(abs(A).sum(axis=1)).ravel()
        k = 0
        inblock = np.empty(n, dtype=np.int8)
        while not converged and it < max_iter:
            if fixed is not None:
                fixed.sweep([k % fixed.n_blocks], B, X, W)
                k += 1
            else:
                g = np.sqrt(np.einsum("ik,ik->i", R, R))
                if selection == "gsl":
                    g = g / np.sqrt(np.maximum(diag, 1e-300))
                elif selection == "gsd":
                    g = g / np.sqrt(np.maximum(absrow, 1e-300))
                visit = rng.permutation(n) if selection == "random" else np.argsort(-g, kind="stable")
                _forest.greedy_forest(indptr, indices, visit.astype(np.int64), inblock)
                labels = np.where(inblock > 0, 0, -1).astype(np.int64)
                blk = _Blocks(A, indptr, indices, labels, 1)
                blk.sweep([0], B, X, W)
            it += 1
            res = residual()
            record(res)
            converged = res <= tol
    if hist is not None:
        hist = {k: np.asarray(v) for k, v in hist.items()}
    x = X[:, 0].copy() if vec else X
    return GraphResult(x, res, it, bool(converged), hist)


def harmonic_solve(W, labelled, Y_labelled, **kwargs):
    """Harmonic label propagation: minimise sum_ij W_ij ||f_i - f_j||^2 / 2
    with f fixed to ``Y_labelled`` on the labelled nodes, i.e. solve
    ``L_uu F_u = W_ul Y_l`` with the graph Laplacian L = D - W.

    Parameters
    ----------
    W : sparse matrix of shape (n, n)
        Symmetric non-negative affinities.
    labelled : ndarray of bool of shape (n,)
    Y_labelled : ndarray of shape (n_labelled, K)
    **kwargs
        Passed to :func:`graph_bcd`.

    Returns
    -------
    F : ndarray of shape (n, K)
        Row i is node i's label distribution (rows of unlabelled nodes in
        components without a labelled node are uniform).
    result : GraphResult or None
    """
    W = sp.csr_array(W, dtype=np.float64)
    n = W.shape[0]
    labelled = np.asarray(labelled, dtype=bool)
    Yl = np.asarray(Y_labelled, dtype=np.float64)
    K = Yl.shape[1]
    F = np.zeros((n, K))
    F[labelled] = Yl
    unl = ~labelled
    if not unl.any():
        return F, None
    ncomp, comp = sp.csgraph.connected_components(W, directed=False)
    has_label = np.zeros(ncomp, dtype=bool)
    has_label[comp[labelled]] = True
    orphan = unl & ~has_label[comp]
    F[orphan] = 1.0 / K
    solve = unl & has_label[comp]
    if not solve.any():
        return F, None
    u = np.flatnonzero(solve)
    lab = np.flatnonzero(labelled)
    deg = np.asarray(W.sum(axis=1)).ravel()
    Wu = W[u]
    A = sp.diags_array(deg[u]) - Wu[:, u]
    # one-hot labels: the harmonic columns sum to one, so K - 1 solves suffice
    one_hot = K > 1 and np.allclose(Yl.sum(axis=1), 1.0)
    cols = Yl[:, :-1] if one_hot else Yl
    rhs = Wu[:, lab] @ cols
    res = graph_bcd(A, rhs, **kwargs)
    Fu = res.x if res.x.ndim == 2 else res.x[:, None]
    if one_hot:
        Fu = np.column_stack([Fu, 1.0 - Fu.sum(axis=1)])
        # residual of the full system (the last column's is minus the others' sum)
        full = Wu[:, lab] @ Yl
        res.residual = float(np.linalg.norm(full - A @ Fu) / (np.linalg.norm(full) or 1.0))
    F[u] = Fu
    return F, res
