"""``sparsecore.accelerate()``: products of unchanged scipy.sparse code on
sparsecore's multithreaded kernels.

scipy routes every product syntax (``A @ B``, ``X @ A``, ``A.dot(B)``, spmatrix
``A * B``, ``A.T @ B``, and scipy's own callers such as LinearOperator and
scikit-learn's ``safe_sparse_dot``) through ``_spbase._matmul_dispatch``, which
ends in one of three leaf methods of ``scipy.sparse._compressed._cs_matrix``
for CSR and CSC operands: ``_matmul_vector``, ``_matmul_multivector`` and
``_matmul_sparse``. Those three are wrapped here, and nothing else: scipy keeps
its shape checks, ``np.matrix`` wrapping, transposes and format conversions,
and the saved originals run every product the wrappers do not take.
"""
import threading
import warnings

import numpy as np
import scipy
import scipy.sparse as sp

from sparsecore import _threads
from sparsecore.ops import spgemm, spmm

__all__ = ["AccelerateWarning", "accelerate"]

# scipy versions the accelerator was tested with (scipy's own suite run with
# it on, .ci/scipy_suite). The three methods have the same names, signature
# and contract from 1.13 to 1.17 (their bodies changed: 1-D operands in 1.14,
# kernels imported by name in 1.16), so older versions are a matter of
# running that suite against them before widening this range.
_SCIPY_MIN = (1, 17)
_SCIPY_MAX = (1, 17)

_METHODS = ("_matmul_vector", "_matmul_multivector", "_matmul_sparse")
_FLOAT = (np.dtype(np.float32), np.dtype(np.float64))

# When a product goes through sparsecore (unless ``min_flops`` is given):
# at least this much work, in floating-point operations (2 per multiply-add),
# by kind and by whether more than one thread is free for it, and for sparse
# products at least _MIN_ROW_MULTS multiplies per non-empty row of the left
# operand (in CSR terms). Measured with ``python -m sparsecore bench
# accelerate`` (sections sweep and workloads) on the 2-core development
# machine (Intel Xeon, lscpu family 6 model 167, AVX-512, KVM, shared with other jobs), scipy
# 1.17.1, ratios time(scipy) / time(sparsecore) at one thread, where the
# measurements were repeatable:
#   - sparse @ sparse gains where rows carry much work (R-MAT graphs, kNN
#     graphs, Gram matrices of real matrices: 1.2x to 1.6x from 2e6 flops,
#     500 to 14000 multiplies per row) and loses where they carry little
#     (Erdos-Renyi with 100 multiplies per row 0.4x to 0.5x up to 1e7 flops,
#     a 2-D Laplacian with 25: 0.6x), as scipy's dense accumulator is cheap
#     for short rows and sparsecore's rows are hashed and sorted.
#   - sparse @ dense vector: 0.15x to 0.75x at every size (the structure
#     check before the kernel costs as much as scipy's whole pass); never.
#   - CSR @ dense matrix: 0.9x to 1.13x on one thread (16 columns), too
#     little to route; on two threads with the second core free, 0.63x to
#     0.68x (personalized PageRank, 64 columns); never.
#   - CSC @ dense matrix (X @ A for CSR A): the CSR conversion it needs costs
#     about as much as scipy's whole product (0.45x to 0.5x); never.
# Two threads gain on these products only when the second core is free; on
# this shared machine it rarely was (0.06x to 0.9x with another job on it),
# hence the load-aware default thread count (sparsecore._threads).
_INF = float("inf")
_MIN_FLOPS = {
    # (kind, more than one thread?) -> flops
    ("sparse", False): 4_000_000,
    ("sparse", True): 4_000_000,
    ("vector", False): _INF,
    ("vector", True): _INF,
    ("multivector", False): _INF,
    ("multivector", True): _INF,
    ("multivector_csc", False): _INF,
    ("multivector_csc", True): _INF,
}
_MIN_ROW_MULTS = 256


class AccelerateWarning(RuntimeWarning):
    """Warned when :func:`accelerate` cannot patch this scipy (nothing patched)."""


_lock = threading.RLock()
_originals = None       # {name: function} saved at the first patch
_state = {"enabled": False, "n_threads": None, "min_flops": None}
# how many products each path took (read by the pytest plugin and the tests)
_counts = {"sparse": 0, "vector": 0, "multivector": 0, "fallback": 0}


def stats():
    """Counts of products sparsecore computed, by kind, and of products
    handed back to scipy ("fallback") while the accelerator was on."""
    return dict(_counts)


def reset_stats():
    """Zero the counters of :func:`stats`."""
    for key in _counts:
        _counts[key] = 0


def _compressed_module():
    from scipy.sparse import _compressed

    return _compressed


def _unsupported_reason():
    """Why this scipy cannot be patched, or None when it can."""
    try:
        version = tuple(int(p) for p in scipy.__version__.split(".")[:2])
    except ValueError:
        return f"cannot read scipy's version {scipy.__version__!r}"
    if not _SCIPY_MIN <= version <= _SCIPY_MAX:
        return (
            f"scipy {scipy.__version__} is outside the versions sparsecore.accelerate "
            f"was tested with ({_SCIPY_MIN[0]}.{_SCIPY_MIN[1]} to "
            f"{_SCIPY_MAX[0]}.{_SCIPY_MAX[1]})"
        )
    try:
        cs = _compressed_module()._cs_matrix
    except (ImportError, AttributeError):
        return "scipy.sparse._compressed._cs_matrix is missing"
    for name in _METHODS:
        if not callable(cs.__dict__.get(name)):
            return f"scipy.sparse._compressed._cs_matrix.{name} is missing"
    from scipy.sparse._base import _spbase

    for name in ("_matmul_dispatch", "_get_index_dtype"):
        if not hasattr(_spbase, name):
            return f"scipy.sparse._base._spbase.{name} is missing"
    for cls in (sp.csr_array, sp.csc_array, sp.csr_matrix, sp.csc_matrix):
        if not issubclass(cls, cs):
            return f"scipy.sparse.{cls.__name__} does not derive from _cs_matrix"
    return None


def _threshold(kind, nt):
    floor = _state["min_flops"]
    if floor is not None:
        return floor
    return _MIN_FLOPS[(kind, nt > 1)]


def _free_threads():
    """Threads for the next product: an explicit ``n_threads`` as given, else
    the threads with a free core (:func:`sparsecore._threads.effective_n_threads`
    leaves out the cores other processes are busy on: an OpenMP region waits
    for its slowest thread)."""
    return _threads.effective_n_threads(_state["n_threads"])


def _eligible_operand(A):
    return A.ndim == 2 and A.format in ("csr", "csc") and A.dtype in _FLOAT


# The smallest threshold of any thread count, by kind (set by _apply): a
# first filter that sends small products straight back to scipy at the cost
# of an attribute read and a comparison, before anything else is looked at.
# It compares a bound on the work: a sparse product makes at most
# nnz(A) * nnz(B) multiplies, a dense one nnz(A) per column, and
# ``data.size`` is at least nnz(A).
_floor = {"sparse": 0, "vector": 0, "multivector": 0}


# -- the three wrappers --------------------------------------------------------


def _matmul_sparse(self, other):
    orig = _originals["_matmul_sparse"]
    # multiplies <= nnz(self) * columns(other) and <= rows(self) * nnz(other),
    # in any format; data.size >= nnz
    if 2 * min(self.data.size * other.shape[-1], self.shape[0] * other.nnz) < _floor["sparse"]:
        return orig(self, other)
    if not (_state["enabled"] and self.ndim == 2 and other.ndim == 2
            and self.format in ("csr", "csc") and self.dtype in _FLOAT
            and other.dtype in _FLOAT):
        return _fallback(orig, self, other)
    if other.format != self.format:
        other = self.__class__(other)   # scipy's own conversion, as it does
    if not _eligible_operand(other):
        return _fallback(orig, self, other)
    M, N = self.shape[0], other.shape[1]
    # In CSR terms the product is L @ R: (self, other) for CSR; for CSC,
    # C.T = other.T @ self.T, exactly the operands scipy hands csr_matmat.
    # Decided on the raw arrays: the .T views are only built when routing.
    l, r = (self, other) if self.format == "csr" else (other, self)
    l_rows = l.indptr.shape[0] - 1
    nnz_l = int(l.indptr[-1])
    need = _threshold("sparse", 1 if _state["n_threads"] == 1 else 2)
    # first from R's average row length (O(1)), with a margin for skewed
    # rows (power-law graphs hit their long rows more often than average)
    r_rows = r.indptr.shape[0] - 1
    average = nnz_l * int(r.indptr[-1]) / max(r_rows, 1)
    if _state["min_flops"] is None and (
            2 * _SKEW * average < need or _SKEW * average < _MIN_ROW_MULTS * l_rows):
        return _fallback(orig, self, other)
    mults = _estimate_mults(l.indices, nnz_l, r.indptr)
    if mults == 0 or 2 * mults < need or (
            _state["min_flops"] is None and mults < _MIN_ROW_MULTS * l_rows):
        return _fallback(orig, self, other)
    # scipy sizes its index arrays by the structural nnz of the product,
    # which is at most min(M * N, nnz(L) * the longest row of R); when the
    # dtype is not the same over that whole range (an int32 limit crossed,
    # or scipy's tests lowering it), scipy's own path decides.
    index_arrays = (self.indptr, self.indices, other.indptr, other.indices)
    idx = self._get_index_dtype(index_arrays)
    longest = int(np.diff(r.indptr).max(initial=0))
    if self._get_index_dtype(index_arrays, maxval=min(nnz_l * longest, M * N)) != idx:
        return _fallback(orig, self, other)
    nt = _free_threads()
    L, R = (self, other) if self.format == "csr" else (other.T, self.T)
    C = spgemm(L, R, n_threads=nt)
    if C.nnz == 0:
        # scipy returns a structurally different empty result (its index
        # dtype follows from the shape alone when nothing was reached)
        return _fallback(orig, self, other)
    indptr = C.indptr.astype(idx, copy=False)
    indices = C.indices.astype(idx, copy=False)
    res = self.__class__((C.data, indices, indptr), shape=(M, N))
    # sparsecore's output rows are sorted and duplicate-free
    res.has_canonical_format = True
    _counts["sparse"] += 1
    return res


# Stored entries of the left operand sampled to estimate the multiplies of
# a sparse product (all of them below this many): an exact count is a
# gather over every entry, which costs several percent of scipy's product
# when the product then stays on scipy.
_SAMPLE = 512
# How far the multiplies may exceed nnz(L) * the average row length of R
# before the estimate from the average alone is trusted to reject a product
# (R-MAT graphs: about 2 to 5).
_SKEW = 8


def _estimate_mults(l_indices, nnz_l, r_indptr):
    """Multiplies of L @ R (in CSR terms): exact for up to _SAMPLE stored
    entries of L, else from an evenly strided sample of them."""
    if nnz_l == 0:
        return 0
    step = max(1, nnz_l // _SAMPLE)
    cols = l_indices[:nnz_l:step]
    hits = (r_indptr[cols + 1] - r_indptr[cols]).sum(dtype=np.int64)
    return int(hits) if step == 1 else int(hits * nnz_l / cols.shape[0])


def _dense_ok(self, other):
    return (_state["enabled"] and self.ndim == 2 and self.format in ("csr", "csc")
            and self.dtype in _FLOAT and type(other) is np.ndarray
            and other.dtype in _FLOAT)


def _matmul_vector(self, other):
    orig = _originals["_matmul_vector"]
    if 2 * self.data.size < _floor["vector"]:
        return orig(self, other)
    if not (_dense_ok(self, other) and other.ndim == 1 and self.format == "csr"):
        return _fallback(orig, self, other)
    nt = _free_threads()
    if 2 * int(self.indptr[-1]) < _threshold("vector", nt):
        return _fallback(orig, self, other)
    _counts["vector"] += 1
    return spmm(self, other, n_threads=nt)


def _matmul_multivector(self, other):
    orig = _originals["_matmul_multivector"]
    if 2 * self.data.size * other.shape[-1] < _floor["multivector"]:
        return orig(self, other)
    if not (_dense_ok(self, other) and other.ndim == 2):
        return _fallback(orig, self, other)
    k = other.shape[1]
    nt = _free_threads()
    kind = "multivector" if self.format == "csr" else "multivector_csc"
    if 2 * int(self.indptr[-1]) * k < _threshold(kind, nt):
        return _fallback(orig, self, other)
    S = self if self.format == "csr" else self.tocsr()
    _counts["multivector"] += 1
    return spmm(S, other, n_threads=nt)


def _fallback(orig, self, other):
    if _state["enabled"]:
        _counts["fallback"] += 1
    return orig(self, other)


_WRAPPERS = {
    "_matmul_vector": _matmul_vector,
    "_matmul_multivector": _matmul_multivector,
    "_matmul_sparse": _matmul_sparse,
}
for _name, _fn in _WRAPPERS.items():
    _fn.__qualname__ = f"sparsecore.accelerate.{_name}"
del _name, _fn


# -- switching -------------------------------------------------------------------


_KINDS = {"_matmul_vector": "vector", "_matmul_multivector": "multivector",
          "_matmul_sparse": "sparse"}


def _patch(min_flops):
    """Wrap the methods that can route a product under these thresholds
    (with the default ones only ``_matmul_sparse``: the others keep scipy's
    method itself, at no cost at all); put the originals back on the rest."""
    global _originals
    cs = _compressed_module()._cs_matrix
    current = {name: cs.__dict__[name] for name in _METHODS}
    if all(current[name] is not _WRAPPERS[name] for name in _METHODS):
        # not patched now: what is there is what to restore (scipy's methods,
        # or whatever another tool put there before us)
        _originals = current
    for name in _METHODS:
        kind = _KINDS[name]
        routable = min_flops is not None or any(
            v < _INF for (k, _), v in _MIN_FLOPS.items() if k.startswith(kind))
        setattr(cs, name, _WRAPPERS[name] if routable else _originals[name])


def _unpatch():
    if _originals is None:
        return
    cs = _compressed_module()._cs_matrix
    for name in _METHODS:
        setattr(cs, name, _originals[name])


def _apply(enabled, n_threads, min_flops):
    """Set the state (under the lock); return whether it took effect."""
    if enabled:
        reason = _unsupported_reason()
        if reason is not None:
            warnings.warn(
                f"sparsecore.accelerate: {reason}; scipy products are left as they "
                f"are (nothing patched)",
                AccelerateWarning,
                stacklevel=4,
            )
            return False
        _patch(min_flops)
    else:
        _unpatch()
    _state.update(enabled=bool(enabled), n_threads=n_threads, min_flops=min_flops)
    for kind in _floor:
        _floor[kind] = min_flops if min_flops is not None else min(
            v for (k, _), v in _MIN_FLOPS.items() if k.startswith(kind))
    return True


class _Accelerate:
    """The previous state, restored on leaving a ``with`` block."""

    def __init__(self, previous, enabled):
        self._previous = previous
        self.enabled = enabled

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()
        return False

    def restore(self):
        """Put back the state from before this call (idempotent)."""
        with _lock:
            if self._previous is not None:
                prev, self._previous = self._previous, None
                _apply(prev["enabled"], prev["n_threads"], prev["min_flops"])

    def __repr__(self):
        return f"<sparsecore.accelerate enabled={self.enabled}>"


def accelerate(enable=True, *, n_threads=None, min_flops=None):
    """Run unchanged scipy.sparse products on sparsecore's multithreaded kernels.

    While on, products of scipy CSR and CSC arrays and matrices (``A @ B``,
    ``A @ x``, ``X @ A``, ``A.dot(B)``, spmatrix ``A * B``, ``A.T @ B``, and
    every library function that multiplies through them, such as
    ``scipy.sparse.linalg`` operators and scikit-learn) are computed by
    :func:`sparsecore.ops.spgemm` (sparse @ sparse) and
    :func:`sparsecore.ops.spmm` (sparse @ dense, with CSR left operands) when
    the product is big enough to gain. The three leaf methods of scipy's
    ``_cs_matrix`` (``_matmul_vector``, ``_matmul_multivector``,
    ``_matmul_sparse``) are wrapped; everything else, and every product the
    wrappers do not take, runs scipy's original code.

    The call applies at once and returns an object that is also a context
    manager: ``sparsecore.accelerate()`` turns it on for the process,
    ``sparsecore.accelerate(False)`` off, and ``with sparsecore.accelerate():``
    only inside the block (the state from before the call is restored on
    exit, as ``threadpoolctl.threadpool_limits`` does). Blocks nest. The state
    is global to the process (all threads see it); switching is serialised by
    a lock, and a product running while another thread switches finishes on
    the path it started on.

    Parameters
    ----------
    enable : bool, default=True
        Turn the accelerator on (True) or off (False).
    n_threads : int or None, default=None
        Threads for the accelerated products: None follows
        ``threadpoolctl``/``OMP_NUM_THREADS`` (all cores otherwise), read at
        each product, as everywhere in sparsecore.
    min_flops : int or None, default=None
        Floating-point operations (two per multiply-add) below which a
        product stays on scipy's path. None uses thresholds measured on the
        development machine (see Notes); 0 routes every eligible product
        through sparsecore (for testing).

    Returns
    -------
    state : context manager
        Entering returns it; leaving (or calling its ``restore()``) puts back
        the state from before the call. Its ``enabled`` attribute says
        whether the accelerator is on after the call.

    Warns
    -----
    AccelerateWarning
        A RuntimeWarning, when this scipy's internals are not the ones that
        were tested (a version other than 1.17, or one of the patched methods
        missing): nothing is patched and products stay on scipy.

    Notes
    -----
    **What is accelerated.** Both operands float32 or float64 and 2-D:

    - CSR or CSC @ sparse: sparsecore's Gustavson SpGEMM with hash
      accumulators. The other operand is first converted to the left
      operand's format, as scipy does (COO, LIL, DOK reach here converted to
      CSR by scipy itself). A CSC left operand is handled as scipy handles
      it, as the transposed product of the CSR views (``A.T @ B`` with CSR
      ``A`` and ``B`` costs one conversion of ``B``, as in scipy, and no
      transpose of ``A``).
    - CSR @ dense vector or matrix, and CSC @ dense matrix (converted to
      CSR first): sparsecore's SpMM, which reads F-ordered and strided
      operands without the copy scipy makes. ``X @ A`` for dense ``X`` and
      CSR ``A`` is scipy's ``(A.T @ X.T).T``, a CSC product.

    bool, integer, complex and longdouble values, 1-D sparse arrays, BSR and
    DIA products, and products below the threshold run scipy's code.

    **Results are what scipy returns**: the left operand's class (array or
    matrix) and format (CSC when it is CSC), shape, dtype, and index dtype
    chosen by scipy's own ``_get_index_dtype``; exact zeros are dropped.
    Sparse products additionally have sorted indices, and
    ``has_canonical_format`` is set True (scipy leaves rows in an
    unspecified order). Sparse @ sparse values are bit-identical to scipy's:
    every output entry is summed in the order scipy's ``csr_matmat`` sums it
    (the order of the left row's stored entries), for any thread count.
    Sparse @ dense values agree with scipy's within rounding (the SpMM
    kernel may use fused multiply-adds and blocked accumulation), and are
    identical for every thread count.

    **Threads.** With ``n_threads=None`` the products use the threads that
    have a free core (as every sparsecore kernel does: the cores other
    processes are busy on are left out, since a parallel product whose
    second thread shares a core with another job is slower than a
    one-thread one). An explicit ``n_threads`` is used as given.

    **Threshold.** A product goes through sparsecore only where it measured
    faster (``python -m sparsecore bench accelerate`` on a 2-core Intel
    Xeon, lscpu family 6 model 167, KVM): sparse @ sparse from 4e6 flops,
    and only with at least 256 multiplies per non-empty row (R-MAT, kNN and
    Gram products gain 1.2x to 1.6x on one thread; random and grid products
    with 25 to 100 multiplies per row lose up to 0.4x, as scipy's dense
    accumulator is cheap for short rows). Sparse @ dense products stay on
    scipy by default: sparsecore's SpMM measured 0.15x to 0.75x of scipy for
    vectors (its structure check costs as much as scipy's whole pass), 0.63x
    to 1.13x for CSR @ dense matrices, and the CSR conversion of a CSC
    operand costs as much as scipy's product; ``min_flops`` sends them
    through.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> import sparsecore
    >>> A = sp.random_array((300, 300), density=0.05, format="csr", rng=0)
    >>> with sparsecore.accelerate(min_flops=0):
    ...     C = A @ A
    >>> type(C).__name__, C.has_canonical_format
    ('csr_array', True)
    >>> D = A @ A
    >>> D.sort_indices()
    >>> bool(np.array_equal(C.data, D.data))
    True
    """
    if n_threads is not None:
        _threads.effective_n_threads(n_threads)   # validates: TypeError, ValueError
    if min_flops is not None:
        if isinstance(min_flops, bool) or not isinstance(min_flops, (int, np.integer)):
            raise TypeError(
                f"min_flops must be an int or None, got {type(min_flops).__name__} "
                f"{min_flops!r}"
            )
        if min_flops < 0:
            raise ValueError(f"min_flops must be non-negative, got {min_flops}")
    with _lock:
        previous = dict(_state)
        applied = _apply(bool(enable), n_threads,
                         None if min_flops is None else int(min_flops))
        return _Accelerate(previous if applied else None, _state["enabled"])
