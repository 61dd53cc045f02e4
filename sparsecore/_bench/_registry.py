"""The one registry of benchmark cases and peers.

``python -m sparsecore bench <suite>`` and the asv suite in ``benchmarks/``
both measure what is registered here, so a case or a peer has one
definition and one name in both outputs.

A :class:`Family` is one kind of measurement (SpGEMM products, Monarch
products, Kronecker SBL fits, ...): an ordered list of case names, a
function that builds a case from its name, and a function that lists the
peers that can run a case at a thread count. Each suite module registers its
families at import with :func:`register`; :func:`family` imports the suite
module that owns a family name (the part before the first dot is the suite:
``"spmm.layer"`` belongs to ``sparsecore._bench.spmm``).

Peers of ``kind="peers"`` families are named from :data:`PEERS`, one
vocabulary for every suite; ``kind="operations"`` families list operations
of this package instead (the products of a sparse layer, the conversions),
named freely.
"""
import functools
import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from sparsecore._bench._harness import Case, ThreadControl, paired_ratio, time_peers

__all__ = [
    "PEERS",
    "RENAMED",
    "Family",
    "Prepared",
    "Unavailable",
    "cached_case",
    "family",
    "families",
    "generated_matrix",
    "graphblas",
    "optional",
    "prepare",
    "real_matrix",
    "register",
    "speedup",
]

#: The peer vocabulary: every peer of every suite, and what it runs.
PEERS = {
    "sparsecore": "this package (kernel, layer or estimator)",
    "sparsecore compact": "sparsecore's compact inference layer (kept values and indices only)",
    "scipy": "scipy.sparse product (one thread)",
    "scipy+sort": "scipy.sparse product, then sort_indices() (sorted like ours)",
    "scipy csr": "scipy.sparse CSR times a dense matrix (one thread)",
    "scipy bsr": "scipy.sparse BSR times a dense matrix (one thread)",
    "scipy full+mask": "scipy.sparse full product, then the mask (one thread)",
    "numpy dense": "numpy's BLAS on the dense matrix",
    "numpy stacked": "np.matmul over the stacked Monarch blocks",
    "torch dense": "torch on the dense weights (F.linear, matmul)",
    "torch csr": "torch sparse CSR tensor times a dense one",
    "torch bsr": "torch sparse BSR tensor times a dense one (square blocks)",
    "torch bmm": "torch.bmm over the stacked Monarch blocks",
    "dense loop": "every expert module on the whole batch",
    "dense bmm": "every expert on the whole batch, as stacked batched matmuls",
    "sparsecore aux": "sparse dispatch plus the Switch load-balancing loss (alpha 1e-2)",
    "sparsecore cf1.25": "sparse dispatch with expert capacity factor 1.25 (drops counted)",
    "sparsecore expert choice": "sparse dispatch of expert-choice routing, capacity factor k",
    "graphblas": "python-graphblas (SuiteSparse:GraphBLAS)",
    "mkl": "sparse_dot_mkl (Intel MKL)",
    "sparse_dot_topn": "sparse_dot_topn's top-n product",
    "sklearn": "scikit-learn's coordinate descent Lasso",
    "liblinear": "scikit-learn's LogisticRegression(solver='liblinear')",
    "celer": "celer",
    "skglm": "skglm",
    "spsolve": "scipy.sparse.linalg.spsolve (sparse direct)",
    "cg": "scipy.sparse.linalg.cg",
    "sparsecore estimator": "sparsecore's estimator, building its own graph or design",
    "sklearn LabelPropagation": "scikit-learn's LabelPropagation (kNN kernel)",
    "sklearn LabelSpreading": "scikit-learn's LabelSpreading (kNN kernel)",
    "KroSBL-svd": "sparsecore's Kronecker SBL, method='svd'",
    "KroSBL-am": "sparsecore's Kronecker SBL, method='am'",
    "PC-KroSBL": "sparsecore's Kronecker SBL, pattern-coupled prior",
    "EM-SBL": "classic EM-SBL on the formed dictionary (sparsecore.linear_model.sbl)",
    "ARDRegression": "scikit-learn's ARDRegression on the formed dictionary",
    "OMP": "scikit-learn's OrthogonalMatchingPursuit, oracle sparsity",
    "dask 1w": "sparsecore.dask on a LocalCluster of 1 worker process, result gathered",
    "dask 2w": "sparsecore.dask on 2 worker processes, result gathered",
    "dask 1w kept": "sparsecore.dask on 1 worker process, result left on the cluster",
    "dask 2w kept": "sparsecore.dask on 2 worker processes, result left on the cluster",
}

#: Peer names in records measured before the vocabulary was unified
#: (docs/data/*.json keep them): old name -> name in :data:`PEERS`.
RENAMED = {
    "np_dense": "numpy dense",
    "numpy_dense": "numpy dense",
    "sp_csr": "scipy csr",
    "scipy_csr": "scipy csr",
    "sp_bsr": "scipy bsr",
    "scipy_bsr": "scipy bsr",
    "torch_csr": "torch csr",
    "torch_bsr": "torch bsr",
    "scipy-full-then-mask": "scipy full+mask",
    "sparse": "sparsecore",  # moe
    "kernel": "sparsecore",  # dask
    "EM-SBL (dense)": "EM-SBL",
    "OMP (oracle k)": "OMP",
}


class Unavailable(NotImplementedError):
    """A case or peer that cannot run here (a peer not installed, a thread
    count it does not support, a matrix file that is absent). asv skips a
    benchmark whose setup raises NotImplementedError."""


@dataclass
class Family:
    """Cases and peers of one kind of measurement.

    Parameters
    ----------
    name : str
        ``"<suite>"`` or ``"<suite>.<part>"``.
    cases : sequence of str or callable
        Case names in order, smallest first, or a function returning them.
    make_case : callable
        ``make_case(name) -> Case``; raises :class:`Unavailable` (or
        KeyError for an unknown name) when the case cannot be built here.
    peers : callable
        ``peers(case, threads) -> list of Peer``: the peers installed here
        that can run ``case`` at ``threads`` threads.
    peer_names : sequence of str
        Every peer the family can offer, in table order.
    kind : {"peers", "operations"}
        ``"peers"``: peer names come from :data:`PEERS`.
    close : callable, optional
        Frees what the peers hold between cases (a dask cluster).
    """

    name: str
    cases: Any
    make_case: Callable[[str], Case]
    peers: Callable[[Case, int], list]
    peer_names: Sequence[str]
    kind: str = "peers"
    close: Any = None

    def case_names(self):
        """The case names, in order."""
        return list(self.cases() if callable(self.cases) else self.cases)


_FAMILIES = {}


def register(fam):
    """Add a :class:`Family` to the registry; returns it. Peers of a
    ``kind="peers"`` family must be named from :data:`PEERS`."""
    if fam.kind == "peers":
        unknown = [p for p in fam.peer_names if p not in PEERS]
        if unknown:
            raise ValueError(f"family {fam.name!r}: peers {unknown} are not in PEERS")
    _FAMILIES[fam.name] = fam
    return fam


def family(name):
    """The registered :class:`Family` ``name`` (imports its suite module)."""
    if name not in _FAMILIES:
        from sparsecore._bench import SUITES

        suite = name.split(".", 1)[0]
        if suite not in SUITES:
            raise KeyError(f"no benchmark family {name!r}")
        importlib.import_module(SUITES[suite])
    return _FAMILIES[name]


def families():
    """Every family of every suite, by name (imports all suite modules)."""
    from sparsecore._bench import SUITES

    for module in SUITES.values():
        importlib.import_module(module)
    return dict(_FAMILIES)


@functools.lru_cache(maxsize=2)
def cached_case(family_name, case_name):
    """``family(family_name).make_case(case_name)``, the last two kept."""
    return family(family_name).make_case(case_name)


def find_peer(fam, case, peer, threads):
    """The peer named ``peer`` for ``case`` at ``threads``, else Unavailable."""
    try:
        peers = fam.peers(case, threads)
    except ImportError as exc:
        raise Unavailable(f"{fam.name}: {exc}") from None
    for p in peers:
        if p.name == peer:
            return p
    raise Unavailable(f"{peer} does not run {fam.name} case {case.name} at {threads} thread(s) here")


class Prepared:
    """One peer bound to its prepared inputs, with BLAS and torch set to the
    peer's thread count until :meth:`close`: ``run()`` is what is timed."""

    def __init__(self, peer, inputs, close=None):
        self.peer = peer
        self._close = close
        self._ctl = ThreadControl()
        self._ctl.set(peer.threads)
        self.inputs = peer.prepare(inputs)

    def run(self):
        """Call the peer once; returns its output."""
        return self.peer.run(self.inputs)

    def close(self):
        """Restore the thread counts (and free what the family's peers hold)."""
        self._ctl.restore()
        if self._close is not None:
            self._close()


def prepare(family_name, case_name, peer, threads):
    """:class:`Prepared` call of ``peer`` on a case of a family (the case is
    cached, so several peers on one case build it once)."""
    fam = family(family_name)
    try:
        case = cached_case(family_name, case_name)
    except (KeyError, FileNotFoundError, ImportError) as exc:
        raise Unavailable(f"{family_name} case {case_name}: {exc}") from None
    return Prepared(find_peer(fam, case, peer, threads), case.inputs, fam.close)


def speedup(family_name, case_name, base, ours, threads, rounds=5):
    """Median paired ratio time(base) / time(ours) measured in this process,
    peers alternated (:func:`time_peers`); ``base`` runs at ``threads`` when
    it can, else at 1 thread (scipy)."""
    fam = family(family_name)
    case = cached_case(family_name, case_name)
    try:
        b = find_peer(fam, case, base, threads)
    except Unavailable:
        b = find_peer(fam, case, base, 1)
    o = find_peer(fam, case, ours, threads)
    times = time_peers(case, [b, o], rounds=rounds)
    return float(paired_ratio(times, b.label, o.label))


# ---------------------------------------------------------------------------
# optional peers and inputs shared by several suites


def optional(module):
    """The module if it imports, else None (peers that need it are left out)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def graphblas():
    """python-graphblas initialised with SuiteSparse:GraphBLAS, or None."""
    gb = optional("graphblas")
    if gb is not None:
        try:
            gb.init("suitesparse", blocking=True)
        except Exception:
            pass  # already initialised
    return gb

_GENERATED = [
    (r"rmat(\d+)", lambda d: _csr_gen("make_rmat", int(d[0]))),
    (r"er(\d+)k", lambda d: _csr_gen("make_erdos_renyi", int(d[0]) * 1000, 10)),
    (r"er(\d+)k_(\d+)", lambda d: _csr_gen("make_erdos_renyi", int(d[0]) * 1000, int(d[1]))),
    (r"pl(\d+)k_(\d+)", lambda d: _csr_gen("make_powerlaw", int(d[0]) * 1000, int(d[1]))),
    (r"band(\d+)k_(\d+)_(\d+)",
     lambda d: _csr_gen("make_banded", int(d[0]) * 1000, int(d[1]), int(d[2]))),
    (r"lap2d_(\d+)", lambda d: _csr_gen("make_laplacian", (int(d[0]),) * 2)),
    (r"lap3d27_(\d+)", lambda d: _csr_gen("make_laplacian", (int(d[0]),) * 3, stencil=27)),
]


def _csr_gen(maker, *args, **kwargs):
    import scipy.sparse as sp

    from sparsecore import datasets

    return sp.csr_array(getattr(datasets, maker)(*args, **kwargs))


def generated_matrix(name):
    """A generated square matrix named by its generator and size:
    ``rmat<scale>`` (R-MAT), ``er<n/1000>k`` (Erdos-Renyi, 10 per row),
    ``er<n/1000>k_<per row>``, ``pl<n/1000>k_<average degree>`` (power law),
    ``band<n/1000>k_<bandwidth>_<per row>`` (banded),
    ``lap2d_<n>`` (5-point n x n grid), ``lap3d27_<n>`` (27-point n^3 grid).
    Returns None for other names."""
    for pattern, make in _GENERATED:
        m = re.fullmatch(pattern, name)
        if m:
            return make(m.groups())
    return None


def real_matrix(name, matrix_dir=None):
    """A real matrix as float64 CSR (complex ones by their real part, as the
    real-only peers compute): ``<matrix_dir>/<name>.mtx`` when that folder
    (default :func:`sparsecore.datasets.find_matrix_dir`) holds it, else the
    copy shipped in the package; FileNotFoundError when neither has it."""
    import scipy.sparse as sp

    from sparsecore import datasets

    folder = datasets.find_matrix_dir(matrix_dir)
    if folder is not None and (folder / f"{name}.mtx").exists():
        A = datasets.read_matrix_market(folder / f"{name}.mtx")
    elif name in datasets.list_matrices():
        A = datasets.load_matrix(name)
    else:
        raise FileNotFoundError(f"{name}.mtx is neither in the matrix folder nor shipped")
    if np.iscomplexobj(A.data):
        A = sp.csr_array(A.real)
        A.eliminate_zeros()
    return sp.csr_array(A, dtype=np.float64)


def available_matrices(names, matrix_dir=None):
    """Those of ``names`` that :func:`real_matrix` can load here."""
    from sparsecore import datasets

    folder = datasets.find_matrix_dir(matrix_dir)
    shipped = datasets.list_matrices()
    return [n for n in names
            if (folder is not None and (folder / f"{n}.mtx").exists()) or n in shipped]
