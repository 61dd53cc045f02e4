"""sparsecore.accelerate() suite: unchanged scipy and scikit-learn code, timed
with the accelerator off (plain scipy) and on, at 1 and 2 threads.

Workloads (real data): TF-IDF cosine similarity of the numpy/scipy docstrings
and Python's pydoc topics (``X @ X.T`` and scikit-learn's
``cosine_similarity``), the term Gram matrix ``X.T @ X``, randomized
TruncatedSVD of the same matrix (sparse @ dense both ways), PageRank and
64-seed personalized PageRank power iterations on real graphs from the shared
Matrix Market folder, a symmetrised kNN graph of scikit-learn's digits
(``G + G.T``, then ``S @ S`` and ``G @ G``), and Gram matrices ``A.T @ A`` of
real matrices. Section ``sweep`` times random products of growing size with
every eligible product forced through sparsecore (``min_flops=0``): the
crossover it shows is the threshold ``accelerate`` uses.
"""
import importlib
import inspect
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sparsecore import datasets
from sparsecore import _accelerate
from sparsecore._accelerate import accelerate
from sparsecore._bench._harness import (
    Case,
    Peer,
    cpu_name,
    fmt_ms,
    fmt_ratio,
    format_table,
    geomean,
    paired_ratio,
    thread_counts,
    time_peers,
    write_json,
)

__all__ = ["build_workload", "run", "workload_names", "workloads"]

_DOC_MODULES = [
    "numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.ma", "scipy.sparse",
    "scipy.sparse.linalg", "scipy.sparse.csgraph", "scipy.linalg", "scipy.stats",
    "scipy.optimize", "scipy.signal", "scipy.special", "scipy.integrate",
    "scipy.interpolate", "scipy.ndimage", "scipy.spatial", "scipy.io", "scipy.fft",
]
GRAPHS = ["pushpull", "rajat01", "bcspwr10"]
GRAMS = ["sparse-images-1024_subset", "bcsstk13", "n1024-l1"]


def corpus(small=False):
    """Docstrings (over 200 characters) of numpy's and scipy's public functions,
    classes and methods, and the texts of Python's ``pydoc_data.topics``."""
    import pydoc_data.topics

    docs = {}
    for name in _DOC_MODULES[:6] if small else _DOC_MODULES:
        mod = importlib.import_module(name)
        for attr in dir(mod):
            if attr.startswith("_"):
                continue
            obj = getattr(mod, attr)
            members = [obj]
            if inspect.isclass(obj):
                members += [v for k, v in vars(obj).items() if not k.startswith("_")]
            for m in members:
                doc = getattr(m, "__doc__", None)
                if isinstance(doc, str) and len(doc) > 200:
                    docs[id(m)] = doc
    return list(docs.values()) + list(pydoc_data.topics.topics.values())


def _mults(A, B):
    """Multiplies of the sparse product A @ B (CSR or CSC operands)."""
    A, B = sp.csr_array(A), sp.csr_array(B)
    return int(np.diff(B.indptr)[A.indices].sum())


def _tfidf(small):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(corpus(small))


def _pagerank_matrix(A):
    """Column-stochastic transition matrix of a graph (as CSR), dangling
    nodes left empty (their mass is spread uniformly by the iteration)."""
    A = sp.csr_array(abs(A))
    A.data[:] = 1.0
    out = np.asarray(A.sum(axis=1)).ravel()
    inv = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0)
    return sp.csr_array((sp.diags_array(inv) @ A).T), out == 0


def pagerank(P, dangling, iters=20, d=0.85):
    """Power iterations of PageRank, plain scipy/numpy code."""
    n = P.shape[0]
    x = np.full(n, 1.0 / n)
    for _ in range(iters):
        x = d * (P @ x) + (d * x[dangling].sum() + 1.0 - d) / n
    return x


def personalized_pagerank(P, seeds, iters=10, d=0.85):
    """Personalized PageRank for several seed nodes at once (one column each)."""
    n = P.shape[0]
    E = np.zeros((n, len(seeds)))
    E[seeds, np.arange(len(seeds))] = 1.0
    X = E.copy()
    for _ in range(iters):
        X = d * (P @ X) + (1.0 - d) * E
    return X


def _matrix(matrix_dir, name):
    mdir = datasets.find_matrix_dir(matrix_dir)
    path = Path(mdir) / f"{name}.mtx" if mdir else None
    if path is None or not path.exists():
        raise FileNotFoundError(
            f"{name}.mtx: no such matrix in the Matrix Market folder ({mdir}); set "
            f"SPARSECORE_MATRIX_DIR or pass --matrix-dir"
        )
    A = datasets.read_matrix_market(path)
    return sp.csr_array(A.real) if np.iscomplexobj(A.data) else A


_TFIDF = {}


def _tfidf_matrix(small):
    if small not in _TFIDF:
        _TFIDF[small] = sp.csr_matrix(_tfidf(small))   # what TfidfVectorizer returns
    return _TFIDF[small]


def _digits_knn():
    from sklearn.datasets import load_digits
    from sklearn.neighbors import kneighbors_graph

    return kneighbors_graph(load_digits().data, 30, mode="distance")


def workload_names(matrix_dir=None, small=False):
    """Names of the workloads :func:`build_workload` can build here (the
    graph and Gram workloads need the shared Matrix Market folder)."""
    names = ["tfidf X@X.T", "tfidf cosine_similarity"]
    if not small:
        names.append("tfidf X.T@X")
    names.append("tfidf TruncatedSVD(50)")
    mdir = datasets.find_matrix_dir(matrix_dir)
    have = set() if mdir is None else {p.stem for p in Path(mdir).glob("*.mtx")}
    for g in GRAPHS:
        if g in have:
            names += [f"pagerank {g}", f"ppr64 {g}"]
    names += ["knn digits S@S", "knn digits G@G", "knn digits (G+G.T)@G"]
    names += [f"gram {g}" for g in GRAMS if g in have]
    return names


def build_workload(name, matrix_dir=None, small=False):
    """``(what, flops, fn)`` of one workload: ``fn()`` runs unchanged scipy or
    scikit-learn code; ``flops`` counts two per multiply-add of its products."""
    if name.startswith("tfidf"):
        X = _tfidf_matrix(small)
        XT = X.T
        if name == "tfidf X@X.T":
            return f"{X.shape[0]}x{X.shape[1]} nnz {X.nnz}", 2 * _mults(X, XT), lambda: X @ XT
        if name == "tfidf cosine_similarity":
            from sklearn.metrics.pairwise import cosine_similarity

            return ("sklearn, dense_output=False", 2 * _mults(X, XT),
                    lambda: cosine_similarity(X, dense_output=False))
        if name == "tfidf X.T@X":
            return "term Gram", 2 * _mults(XT, X), lambda: XT @ X
        if name == "tfidf TruncatedSVD(50)":
            from sklearn.decomposition import TruncatedSVD

            # 2 power iterations of 5 + the range and the projection, each a
            # product of X or X.T with 60 dense columns
            flops = 2 * X.nnz * 60 * 12
            return ("sklearn randomized, sparse@dense", flops,
                    lambda: TruncatedSVD(50, n_iter=5, random_state=0).fit(X))
    kind, _, g = name.partition(" ")
    if kind in ("pagerank", "ppr64"):
        P, dangling = _pagerank_matrix(_matrix(matrix_dir, g))
        if kind == "pagerank":
            return (f"n {P.shape[0]} nnz {P.nnz}, 20 iterations", 2 * P.nnz * 20,
                    lambda: pagerank(P, dangling))
        seeds = np.linspace(0, P.shape[0] - 1, 64).astype(int)
        return "64 seeds, 10 iterations", 2 * P.nnz * 64 * 10, \
            lambda: personalized_pagerank(P, seeds)
    if kind == "knn":
        G = _digits_knn()
        S = G + G.T
        if name.endswith("S@S"):
            return f"k=30, S=G+G.T nnz {S.nnz}", 2 * _mults(S, S), lambda: S @ S
        if name.endswith("G@G"):
            return "k=30", 2 * _mults(G, G), lambda: G @ G
        return "k=30, symmetrised in the call", 2 * _mults(S, G), lambda: (G + G.T) @ G
    if kind == "gram":
        A = _matrix(matrix_dir, g)
        return (f"A.T@A, A {A.shape[0]}x{A.shape[1]} nnz {A.nnz}", 2 * _mults(A.T, A),
                lambda: A.T @ A)
    raise ValueError(f"unknown workload {name!r}")


def workloads(matrix_dir=None, small=False):
    """``[(name, what, flops, fn)]`` of every workload available here."""
    return [(name, *build_workload(name, matrix_dir, small))
            for name in workload_names(matrix_dir, small)]


def _sweep_cases(small):
    """Products of growing work on three structures (random, 2-D grid,
    power-law): (name, flops, fn, kind)."""
    rng = np.random.default_rng(0)
    sparse = [
        ("er", lambda n: datasets.make_erdos_renyi(n, 10), [1000, 3000, 10_000, 30_000, 100_000]),
        ("lap2d", lambda n: datasets.make_laplacian((n, n)), [30, 100, 300, 700]),
        ("rmat", lambda n: datasets.make_rmat(n, 8), [10, 12, 14, 15]),
    ]
    dense = [1000, 10_000, 100_000, 300_000]
    if small:
        sparse = [(k, f, sizes[:2]) for k, f, sizes in sparse]
        dense = dense[:2]
    cases = []
    for label, make, sizes in sparse:
        for n in sizes:
            A = sp.csr_array(make(n))
            cases.append((f"{label}({n}) A@A", 2 * _mults(A, A), lambda A=A: A @ A, "sparse"))
    for n in dense:
        A = sp.csr_array(datasets.make_erdos_renyi(n, 16))
        x = rng.standard_normal(n)
        X = rng.standard_normal((n, 16))
        Y = rng.standard_normal((16, n))
        cases += [
            (f"er({n}) A@x", 2 * A.nnz, lambda A=A, x=x: A @ x, "vector"),
            (f"er({n}) A@X16", 2 * A.nnz * 16, lambda A=A, X=X: A @ X, "multivector"),
            (f"er({n}) Y16@A", 2 * A.nnz * 16, lambda A=A, Y=Y: Y @ A, "multivector csc"),
        ]
    return cases


def _switch(enabled, n_threads=None, min_flops=None):
    """Set the accelerator's state unless it is set already: peers alternate
    between rounds, and a sample repeats its call, so the switch is paid once
    per sample and the calls are timed in the steady state a program sees."""
    want = {"enabled": enabled, "n_threads": n_threads if enabled else None,
            "min_flops": min_flops if enabled else None}
    if _accelerate._state != want:
        accelerate(enabled, n_threads=n_threads, min_flops=min_flops)


def _peers(threads, forced):
    def accelerated(t):
        floor = 0 if forced else None

        def run(fn):
            _switch(True, t, floor)
            return fn()
        return run

    def plain(fn):
        _switch(False)
        return fn()

    name = "forced" if forced else "accel"
    peers = [Peer("scipy", 1, plain)] + [Peer(name, t, accelerated(t)) for t in threads]
    if not forced:
        peers.append(_DefaultPeer("accel", 0, accelerated(None)))
    return peers


class _DefaultPeer(Peer):
    """The accelerator with its default ``n_threads=None``: every core
    OpenMP offers, less those other work is busy on."""

    @property
    def label(self):
        return f"{self.name} default"


def _table(title, cases, peers, rounds, results, section, settle=0.0):
    labels = [p.label for p in peers]
    base = labels[0]
    rows = []
    for name, what, flops, fn in cases:
        times = time_peers(Case(name, fn), peers, rounds=rounds, min_time=0.05, settle=settle)
        ratios = {lab: paired_ratio(times, base, lab) for lab in labels[1:]}
        results.append({"section": section, "case": name, "what": what, "flops": flops,
                        "times": times, "ratios": ratios})
        rows.append([name, what, f"{flops:.2e}", fmt_ms(float(np.median(times[base])))]
                    + [fmt_ratio(ratios[lab]) for lab in labels[1:]])
    print(title)
    print(format_table(["case", "", "flops", "scipy ms"] + labels[1:], rows))


def run(args):
    threads = thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    sections = args.sections or ["workloads", "sweep"]
    results = []
    print(f"\n## accelerate: unchanged scipy/scikit-learn code, accelerator off vs on; "
          f"ratios are time(scipy)/time(accelerated), > 1 is faster; {cpu_name()}")
    print(f"# medians of {rounds} rounds, peers alternated; flops = 2 x multiply-adds "
          f"of the products in one call")
    if "workloads" in sections:
        cases = workloads(args.matrix_dir, small=args.quick)
        if args.cases:
            cases = [c for c in cases if c[0] in args.cases]
        # settle: thread pools (OpenBLAS in TruncatedSVD, OpenMP) left
        # spinning by the previous peer go idle before each sample
        _table("\n# workloads (default thresholds)\n", cases, _peers(threads, False),
               rounds, results, "workloads", settle=0.2)
    if "sweep" in sections:
        cases = [(name, kind, flops, fn) for name, flops, fn, kind in _sweep_cases(args.quick)]
        peers = _peers(threads, True) + _peers(threads, False)[1:]
        _table("\n# sweep: random products, forced through sparsecore (min_flops=0) "
               "and with the default thresholds\n", cases, peers, rounds, results, "sweep")
    accelerate(False)
    _summary(results, threads)
    if args.json:
        write_json(args.json, {"suite": "accelerate", "threads": threads, "cpu": cpu_name(),
                               "results": results})


def _summary(results, threads):
    print()
    for lab in [f"accel {t}t" for t in threads] + ["accel default"]:
        rs = [r for r in results if lab in r["ratios"]]
        if not rs:
            continue
        big = [r["ratios"][lab] for r in rs if r["flops"] > 10e6]
        worst = min(rs, key=lambda r: r["ratios"][lab])
        print(f"# {lab}: geo-mean {fmt_ratio(geomean([r['ratios'][lab] for r in rs]))}; "
              f"above 10 Mflop: geo-mean {fmt_ratio(geomean(big))}, min "
              f"{fmt_ratio(min(big) if big else None)}; worst case {worst['case']} "
              f"{fmt_ratio(worst['ratios'][lab])}")
