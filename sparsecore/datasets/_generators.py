"""Generated sparse matrices for tests and benchmarks (deterministic by seed)."""
import numpy as np
import scipy.sparse as sp

from sparsecore._validation import check_scalar

__all__ = ["make_rmat", "make_erdos_renyi", "make_laplacian", "make_tall_skinny",
           "make_powerlaw", "make_banded", "make_sparse_linear"]


def make_rmat(scale, edge_factor=16, *, a=0.57, b=0.19, c=0.19, seed=0):
    """R-MAT (Graph500 Kronecker) graph adjacency matrix.

    After Chakrabarti, Zhan & Faloutsos, "R-MAT: A recursive model for graph
    mining" (SDM 2004), with the Graph500 parameters: ``2**scale`` vertices,
    ``edge_factor * 2**scale`` directed edges, duplicates merged, vertices
    randomly permuted, values uniform in [0.5, 1.5).

    Parameters
    ----------
    scale : int
    edge_factor : int, default=16
    a, b, c : float
        Quadrant probabilities (d = 1 - a - b - c).
    seed : int, default=0

    Returns
    -------
    scipy.sparse.csr_array of shape (2**scale, 2**scale)

    Examples
    --------
    >>> from sparsecore.datasets import make_rmat
    >>> A = make_rmat(8, seed=0)             # 2**8 vertices, about 16 edges each
    >>> A.shape, A.format
    ((256, 256), 'csr')
    """
    rng = np.random.default_rng(seed)
    n = 1 << scale
    n_edges = edge_factor * n
    rows = np.zeros(n_edges, dtype=np.int64)
    cols = np.zeros(n_edges, dtype=np.int64)
    for level in range(scale):
        r = rng.random(n_edges)
        right = (r >= a) & (r < a + b) | (r >= a + b + c)
        down = r >= a + b
        rows |= down.astype(np.int64) << level
        cols |= right.astype(np.int64) << level
    perm = rng.permutation(n)
    rows, cols = perm[rows], perm[cols]
    vals = rng.uniform(0.5, 1.5, n_edges)
    A = sp.csr_array((vals, (rows, cols)), shape=(n, n))
    A.sum_duplicates()
    # merged duplicates get one value, not the sum of several
    A.data[:] = rng.uniform(0.5, 1.5, A.nnz)
    return A


def make_erdos_renyi(n, per_row, *, n_cols=None, seed=0):
    """Matrix with ``per_row`` uniformly random columns in each row.

    Parameters
    ----------
    n : int
        Rows.
    per_row : int
    n_cols : int or None
        Columns (default ``n``).
    seed : int, default=0

    Returns
    -------
    scipy.sparse.csr_array
    """
    rng = np.random.default_rng(seed)
    n_cols = n if n_cols is None else n_cols
    rows = np.repeat(np.arange(n), per_row)
    cols = rng.integers(0, n_cols, n * per_row)
    vals = rng.uniform(0.5, 1.5, n * per_row)
    A = sp.csr_array((vals, (rows, cols)), shape=(n, n_cols))
    A.sum_duplicates()
    return A


def make_laplacian(shape, *, stencil=None):
    """Finite-difference Laplacian on a regular grid.

    Parameters
    ----------
    shape : tuple of int
        Grid size, 2-D or 3-D.
    stencil : {5, 7, 27} or None
        5-point (2-D), 7-point (3-D) or 27-point (3-D, -1 off the diagonal);
        default 5 or 7 by dimension.

    Returns
    -------
    scipy.sparse.csr_array of shape (prod(shape), prod(shape))
    """
    dims = len(shape)
    if stencil is None:
        stencil = 5 if dims == 2 else 7
    if (dims, stencil) not in ((2, 5), (3, 7), (3, 27)):
        raise ValueError(f"stencil {stencil} does not fit a {dims}-D grid")
    if stencil == 27:
        ones = [sp.csr_array(sp.diags_array([1.0, 1.0, 1.0], offsets=[-1, 0, 1], shape=(s, s))) for s in shape]
        A = sp.kron(sp.kron(ones[0], ones[1]), ones[2], format="csr")
        A = -A
        A.setdiag(26)
        return sp.csr_array(A)
    eye = [sp.eye_array(s, format="csr") for s in shape]
    T = [sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(s, s), format="csr") for s in shape]
    if dims == 2:
        A = sp.kron(T[0], eye[1]) + sp.kron(eye[0], T[1])
    else:
        A = (
            sp.kron(sp.kron(T[0], eye[1]), eye[2])
            + sp.kron(sp.kron(eye[0], T[1]), eye[2])
            + sp.kron(sp.kron(eye[0], eye[1]), T[2])
        )
    A = sp.csr_array(A)
    A.sum_duplicates()
    return A


def make_tall_skinny(n_rows, n_cols, per_row, *, seed=0):
    """Tall, skinny random matrix with ``per_row`` entries in each row.

    Parameters
    ----------
    n_rows, n_cols : int
        Shape.
    per_row : int
        Random columns drawn per row (duplicates are summed).
    seed : int, default=0

    Returns
    -------
    scipy.sparse.csr_array
    """
    return make_erdos_renyi(n_rows, per_row, n_cols=n_cols, seed=seed)


def make_powerlaw(n, avg_degree, *, exponent=2.1, seed=0):
    """Random graph with a power-law degree distribution (Chung-Lu model).

    Each of ``n * avg_degree`` directed edges picks both ends independently
    with probability proportional to a weight ``w_i = i ** (-1 / (exponent - 1))``,
    so degrees follow a power law with the given exponent (Chung & Lu,
    "Connected components in random graphs with given expected degree
    sequences", Annals of Combinatorics 2002). Vertices are randomly
    permuted, duplicates merged, values uniform in [0.5, 1.5).

    Parameters
    ----------
    n : int
        Vertices.
    avg_degree : int
        Edges drawn per vertex (before duplicates merge).
    exponent : float, default=2.1
        Power-law exponent of the degree distribution, greater than 2.
    seed : int, default=0

    Returns
    -------
    scipy.sparse.csr_array of shape (n, n)

    Examples
    --------
    >>> from sparsecore.datasets import make_powerlaw
    >>> A = make_powerlaw(1000, 4, seed=0)
    >>> A.shape
    (1000, 1000)
    """
    check_scalar(n, "n", int, min_val=1)
    check_scalar(avg_degree, "avg_degree", int, min_val=1)
    check_scalar(exponent, "exponent", float, min_val=2, include_boundaries="neither")
    rng = np.random.default_rng(seed)
    w = np.arange(1, n + 1, dtype=np.float64) ** (-1.0 / (exponent - 1.0))
    cdf = np.cumsum(w / w.sum())
    m = int(n * avg_degree)
    def pick():
        return np.minimum(np.searchsorted(cdf, rng.random(m)), n - 1)

    perm = rng.permutation(n)
    rows, cols = perm[pick()], perm[pick()]
    A = sp.csr_array((np.ones(m), (rows, cols)), shape=(n, n))
    A.sum_duplicates()
    A.data[:] = rng.uniform(0.5, 1.5, A.nnz)
    return A


def make_banded(n, bandwidth, per_row, *, seed=0):
    """Square matrix with ``per_row`` random columns within ``bandwidth`` of
    the diagonal in each row (duplicates merged), like a finite-element or
    circuit matrix after a bandwidth-reducing ordering.

    Parameters
    ----------
    n : int
        Rows and columns.
    bandwidth : int
        Largest distance of an entry from the diagonal.
    per_row : int
        Columns drawn per row.
    seed : int, default=0

    Returns
    -------
    scipy.sparse.csr_array of shape (n, n)

    Examples
    --------
    >>> from sparsecore.datasets import make_banded
    >>> A = make_banded(100, 5, 3)
    >>> bool(abs(A.tocoo().row - A.tocoo().col).max() <= 5)
    True
    """
    check_scalar(n, "n", int, min_val=1)
    check_scalar(bandwidth, "bandwidth", int, min_val=0)
    check_scalar(per_row, "per_row", int, min_val=1)
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), per_row)
    cols = np.clip(rows + rng.integers(-bandwidth, bandwidth + 1, rows.size), 0, n - 1)
    A = sp.csr_array((rng.uniform(0.5, 1.5, rows.size), (rows, cols)), shape=(n, n))
    A.sum_duplicates()
    return A


def make_sparse_linear(n_samples, n_features, *, density=1.0, n_informative=10,
                       task="regression", snr=10.0, intercept=0.0, rho=0.5,
                       nonnegative=False, dtype=np.float64, seed=0):
    """Linear model data with a sparse truth: ``X``, targets and the truth.

    ``X`` is dense with AR(1) correlation ``rho**|i - j|`` between features
    (``density=1``), or a ``scipy.sparse.csc_array`` whose entries sit at
    uniformly random positions with the given density (independent
    features). The truth ``coef`` has ``n_informative`` N(0, 1) entries at
    random features; ``z = X coef + intercept`` and::

        regression:      y = z + std(X coef) / snr * N(0, 1)
        classification:  y = sign(z + std(X coef) / snr * N(0, 1)) in {-1, +1}

    These are the designs of the Lasso benchmarks of Friedman, Hastie &
    Tibshirani ("Regularization paths for generalized linear models via
    coordinate descent", J. Stat. Softw. 33(1), 2010) and of Massias,
    Gramfort & Salmon ("Celer: a fast solver for the Lasso with dual
    extrapolation", ICML 2018).

    Parameters
    ----------
    n_samples, n_features : int
        Shape of ``X`` (>= 1).
    density : float, default=1.0
        In (0, 1]. 1 gives a dense ndarray (Fortran order), below 1 a sparse
        CSC array.
    n_informative : int, default=10
        Nonzero entries of the truth (at most ``n_features``).
    task : {"regression", "classification"}, default="regression"
    snr : float, default=10.0
        Ratio of the standard deviations of ``X coef`` and of the noise (> 0).
    intercept : float, default=0.0
        Added to ``X coef`` before the noise (and the sign).
    rho : float, default=0.5
        Correlation of neighbouring features of dense ``X``, in [0, 1).
    nonnegative : bool, default=False
        Entries ``|N(0, 1)|`` instead of N(0, 1), as in counts or tf-idf
        features (columns with a nonzero mean, so an intercept matters).
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        dtype of ``X`` (``y`` and ``coef`` are float64).
    seed : int, default=0

    Returns
    -------
    X : ndarray of shape (n_samples, n_features) or scipy.sparse.csc_array
    y : ndarray of shape (n_samples,)
    coef : ndarray of shape (n_features,)

    Examples
    --------
    >>> from sparsecore.datasets import make_sparse_linear
    >>> X, y, coef = make_sparse_linear(200, 1000, density=0.01, n_informative=5)
    >>> X.format, X.shape, int((coef != 0).sum())
    ('csc', (200, 1000), 5)
    """
    for name, v in (("n_samples", n_samples), ("n_features", n_features),
                    ("n_informative", n_informative)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if n_samples < 1 or n_features < 1:
        raise ValueError(f"n_samples and n_features must be >= 1, got {n_samples}, {n_features}")
    if not 0 <= n_informative <= n_features:
        raise ValueError(f"n_informative must be in [0, n_features={n_features}], got {n_informative}")
    if not (0 < density <= 1):
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    if not snr > 0:
        raise ValueError(f"snr must be > 0, got {snr!r}")
    if not 0 <= rho < 1:
        raise ValueError(f"rho must be in [0, 1), got {rho!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    rng = np.random.default_rng(seed)
    n, p = n_samples, n_features
    if density == 1:
        X = np.empty((n, p), order="F")
        X[:, 0] = rng.standard_normal(n)
        s = np.sqrt(1 - rho * rho)
        for j in range(1, p):
            X[:, j] = rho * X[:, j - 1] + s * rng.standard_normal(n)
        if nonnegative:
            np.abs(X, out=X)
        X = X.astype(dtype, order="F", copy=False)
    else:
        nnz = int(round(density * n * p))
        # distinct positions: draw a few more than needed, keep the first
        # nnz distinct ones (duplicates are rare at the densities used here)
        pos = np.unique(rng.integers(0, n * p, size=int(nnz * 1.2) + 16, dtype=np.int64))
        pos = rng.permutation(pos)[:nnz]
        rows, cols = pos % n, pos // n
        # int32 indices where they fit, as scipy chooses them
        if max(n, p, len(pos)) < np.iinfo(np.int32).max:
            rows, cols = rows.astype(np.int32), cols.astype(np.int32)
        vals = rng.standard_normal(len(pos))
        if nonnegative:
            np.abs(vals, out=vals)
        X = sp.csc_array((vals.astype(dtype), (rows, cols)), shape=(n, p))
        X.sum_duplicates()
    coef = np.zeros(p)
    support = rng.choice(p, size=n_informative, replace=False)
    coef[support] = rng.standard_normal(n_informative)
    signal = np.asarray(X @ coef, dtype=np.float64)
    scale = float(np.std(signal))
    noise = (scale / snr if scale > 0 else 1.0) * rng.standard_normal(n)
    y = signal + intercept + noise
    if task == "classification":
        y = np.where(y > 0, 1.0, -1.0)
    return X, y, coef
