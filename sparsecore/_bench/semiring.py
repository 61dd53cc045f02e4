"""Semiring suite: built-in semirings against plus-times on the same inputs,
a numba user semiring against the built-in one, masked triangle counting
against python-graphblas and scipy (full product, then mask), the top-k
product against sparse_dot_topn, and numba user datafits against the
built-in ones in the greedy BCD engine. Peers that are not installed are
skipped. Registers the families ``semiring.products`` (one operation per
semiring), ``semiring.masked`` (triangle counting), ``semiring.topk`` and
``semiring.datafit`` (built-in against user functions)."""
import json
import os
import re

import numpy as np
import scipy.sparse as sp

from sparsecore.ops import SEMIRINGS, spgemm, spgemm_topk
from sparsecore._bench import _harness as h
from sparsecore._bench._registry import (
    Family,
    available_matrices,
    generated_matrix,
    graphblas,
    optional,
    real_matrix,
    register,
)

Case, Peer, time_peers, paired_ratio = h.Case, h.Peer, h.time_peers, h.paired_ratio
fmt_ms, fmt_ratio, format_table, geomean = h.fmt_ms, h.fmt_ratio, h.format_table, h.geomean

__all__ = ["run", "lower_triangle", "tfidf", "docstring_corpus", "similarity_case"]

PRODUCT_REAL = ["zenios", "bcsstk13", "hangGlider_2", "pushpull"]
GRAPH_REAL = ["Pd", "olm1000", "young1c", "cryg2500", "watt_2", "bcspwr10", "dwt_992",
              "zenios", "n1024-l1", "hangGlider_2", "bcsstk13", "rajat01", "pushpull"]


def lower_triangle(A):
    """Strictly lower triangle of the symmetrised pattern of ``A`` (float64
    ones): ``spgemm(L, L, mask=L, semiring="plus_pair").sum()`` counts the
    triangles of the graph."""
    A = sp.csr_array(A)
    P = sp.csr_array((np.ones(A.nnz), A.indices, A.indptr), shape=A.shape)
    G = ((P + P.T) != 0).astype(np.float64)
    L = sp.tril(G, k=-1, format="csr")
    L.sort_indices()
    return L


def _matrix(name):
    A = generated_matrix(name)
    return A if A is not None else real_matrix(name)


# ---------------------------------------------------------------------------
# text: TF-IDF of docstrings shipped with numpy and scipy

def docstring_corpus(max_docs=None):
    """Docstrings of the public functions and classes of numpy and scipy
    (text every installation ships), one document each."""
    import importlib
    import inspect

    docs, seen = [], set()
    mods = ["numpy", "numpy.linalg", "numpy.fft", "numpy.random", "scipy.linalg",
            "scipy.sparse", "scipy.sparse.linalg", "scipy.optimize", "scipy.stats",
            "scipy.signal", "scipy.special", "scipy.interpolate", "scipy.integrate",
            "scipy.ndimage", "scipy.spatial"]
    for modname in mods:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        for name in sorted(getattr(mod, "__all__", dir(mod))):
            if name.startswith("_"):
                continue
            obj = getattr(mod, name, None)
            doc = inspect.getdoc(obj) if obj is not None else None
            if not doc or id(obj) in seen or len(doc) < 80:
                continue
            seen.add(id(obj))
            docs.append((f"{modname}.{name}", doc))
            if max_docs and len(docs) >= max_docs:
                return docs
    return docs


def tfidf(texts):
    """L2-normalised TF-IDF rows (sublinear tf, smooth idf) of ``texts``,
    and the vocabulary."""
    token = re.compile(r"[a-z][a-z0-9_]{2,}")
    rows, cols, vocab = [], [], {}
    for i, text in enumerate(texts):
        for w in token.findall(text.lower()):
            rows.append(i)
            cols.append(vocab.setdefault(w, len(vocab)))
    X = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(vocab)))
    X.sum_duplicates()
    X.data = 1.0 + np.log(X.data)
    df = np.bincount(X.indices, minlength=X.shape[1])
    X = sp.csr_array(X.multiply(np.log((1 + X.shape[0]) / (1 + df)) + 1.0))
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    X = sp.csr_array(X.multiply(1.0 / np.maximum(norms, 1e-300)[:, None]))
    X.sort_indices()
    words = np.empty(len(vocab), dtype=object)
    for w, j in vocab.items():
        words[j] = w
    return X, words


def similarity_case(n_docs=50_000, vocab=50_000, words_per_doc=20, seed=0):
    """A synthetic TF-IDF-like matrix (Zipf-ish word frequencies, L2-normalised
    rows): ``X @ X.T`` is an ``n_docs x n_docs`` cosine-similarity product."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1) ** 0.6
    p /= p.sum()
    rows = np.repeat(np.arange(n_docs), words_per_doc)
    cols = rng.choice(vocab, size=rows.size, p=p)
    X = sp.csr_array((rng.random(rows.size) + 0.1, (rows, cols)), shape=(n_docs, vocab))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    X = sp.csr_array(X.multiply(1.0 / norms[:, None]))
    X.sort_indices()
    return X


# ---------------------------------------------------------------------------

def _product_ops(case, t):
    """C = A @ A over every built-in semiring, and a numba user min_plus."""
    peers = [Peer(s, t, lambda A, s=s: spgemm(A, A, semiring=s, n_threads=t)) for s in SEMIRINGS]
    user = _user_min_plus()
    if user is not None:
        peers.append(Peer("user min_plus", t, lambda A: spgemm(A, A, semiring=user, n_threads=t)))
    return peers


def _product_case(name):
    A = _matrix(name)
    A.sort_indices()
    return Case(name, A)


PRODUCTS = register(Family(
    "semiring.products", lambda: ["rmat12", "er50k", "rmat14"]
    + available_matrices(PRODUCT_REAL), _product_case, _product_ops,
    list(SEMIRINGS) + ["user min_plus"], kind="operations"))


def _masked_peers(case, t):
    """C<L> = L (+.pair) L at t threads (scipy: full product, then the mask)."""
    peers = [Peer("scipy full+mask", 1, lambda L: (L @ L).multiply(L))] if t == 1 else []
    peers.append(Peer("sparsecore", t, lambda L: spgemm(L, L, mask=L, semiring="plus_pair",
                                                        n_threads=t)))
    gb = graphblas()
    if gb is not None:
        def run_gb(gL):
            gb.ss.config["nthreads"] = t
            return gL.mxm(gL, gb.semiring.plus_pair).new(mask=gL.S)
        peers.append(Peer("graphblas", t, run_gb, lambda L: gb.io.from_scipy_sparse(L)))
    return peers


MASKED = register(Family(
    "semiring.masked", lambda: ["rmat13", "rmat14"] + available_matrices(GRAPH_REAL),
    lambda name: Case(name, lower_triangle(_matrix(name))), _masked_peers,
    ["scipy full+mask", "sparsecore", "graphblas"]))


def _topk_case(name):
    """``topk<n>``: X @ X.T of an n x n synthetic TF-IDF matrix, k = 10."""
    n = int(name[len("topk"):])
    X = similarity_case(n_docs=n, vocab=n)
    return Case(name, (X, sp.csr_array(X.T)), {"k": 10})


def _topk_peers(case, t):
    k = case.info["k"]
    peers = [Peer("sparsecore", t, lambda xx: spgemm_topk(xx[0], xx[1], k, n_threads=t))]
    topn = optional("sparse_dot_topn")
    if topn is not None:
        # it takes scipy's matrix classes only (conversion not timed)
        peers.append(Peer("sparse_dot_topn", t, lambda xx: topn.sp_matmul_topn(
            xx[0], xx[1], top_n=k, n_threads=t),
            lambda xx: (sp.csr_matrix(xx[0]), sp.csr_matrix(xx[1]))))
    return peers


TOPK = register(Family("semiring.topk", ["topk10000", "topk20000", "topk50000"], _topk_case,
                       _topk_peers, ["sparsecore", "sparse_dot_topn"]))


def _semiring_section(args, threads, rounds):
    names = [n for n in PRODUCTS.case_names() if n != "rmat12"
             and not (args.quick and n == "rmat14")]
    t = max(threads)
    peers = _product_ops(None, t)
    user = peers[-1] if peers[-1].name == "user min_plus" else None
    labels = [p.label for p in peers]
    base = f"plus_times {t}t"
    print(f"\n## semirings: C = A @ A over each semiring, {t} thread(s); "
          f"ratios are time(semiring)/time(plus_times), < 1.2 is the target")
    rows, results = [], []
    for name in names:
        if args.cases and name not in args.cases:
            continue
        case = _product_case(name)
        A = case.inputs
        times = time_peers(case, peers, rounds=rounds)
        results.append({"case": name, "times": times})
        row = [name, f"{A.shape[0]}", fmt_ms(np.median(times[base]))]
        row += [fmt_ratio(paired_ratio(times, lab, base)) for lab in labels[1:]]
        if user is not None:
            row.append(fmt_ratio(paired_ratio(times, f"user min_plus {t}t", f"min_plus {t}t")))
        rows.append(row)
    if results:
        gm = ["geo-mean", "", ""] + [
            fmt_ratio(geomean([paired_ratio(r["times"], lab, base) for r in results]))
            for lab in labels[1:]]
        if user is not None:
            gm.append(fmt_ratio(geomean([paired_ratio(r["times"], f"user min_plus {t}t",
                                                      f"min_plus {t}t") for r in results])))
        rows.append(gm)
    header = ["case", "n", "plus_times ms"] + [lab.rsplit(" ", 1)[0] for lab in labels[1:]]
    if user is not None:
        header.append("user/builtin min_plus")
    print(format_table(header, rows))
    return results


def _user_min_plus():
    if optional("numba") is None:
        return None
    from sparsecore.ops import user_semiring

    def add(a, b):
        return a if a < b else b

    def mul(a, b):
        return a + b

    return user_semiring(add, mul, name="user_min_plus")


def _masked_section(args, threads, rounds):
    names = [n for n in MASKED.case_names() if n != "rmat13"]
    gb = graphblas()
    peers = [p for t in threads for p in _masked_peers(None, t)]
    if 1 not in threads:
        peers.insert(0, _masked_peers(None, 1)[0])
    print("\n## masked: triangle counting C<L> = L (+.pair) L; ratios are "
          "time(peer)/time(sparsecore) at the same threads, > 1 means sparsecore is faster")
    rows, results = [], []
    for name in names:
        if args.cases and name not in args.cases:
            continue
        case = MASKED.make_case(name)
        L = case.inputs
        times = time_peers(case, peers, rounds=rounds)
        tri = int(spgemm(L, L, mask=L, semiring="plus_pair").sum())
        results.append({"case": name, "times": times, "triangles": tri})
        row = [name, f"{L.shape[0]}", f"{L.nnz:,}", f"{tri:,}"]
        for t in threads:
            sc = f"sparsecore {t}t"
            row.append(fmt_ms(np.median(times[sc])))
            if gb is not None:
                row.append(fmt_ratio(paired_ratio(times, f"graphblas {t}t", sc)))
            row.append(fmt_ratio(paired_ratio(times, "scipy full+mask 1t", sc)))
        rows.append(row)
    header = ["case", "n", "nnz(L)", "triangles"]
    for t in threads:
        header += [f"sc {t}t ms"] + ([f"vs gb {t}t"] if gb is not None else []) + \
            [f"vs scipy ({t}t)"]
    if results:
        gmrow = ["geo-mean", "", "", ""]
        for t in threads:
            sc = f"sparsecore {t}t"
            gmrow.append("")
            if gb is not None:
                gmrow.append(fmt_ratio(geomean([paired_ratio(r["times"], f"graphblas {t}t", sc)
                                                for r in results])))
            gmrow.append(fmt_ratio(geomean([paired_ratio(r["times"], "scipy full+mask 1t", sc)
                                            for r in results])))
        rows.append(gmrow)
    print(format_table(header, rows))
    return results


def _topk_section(args, threads, rounds):
    n = 10_000 if args.quick else 50_000
    case = _topk_case(f"topk{n}")
    X, XT = case.inputs
    k = case.info["k"]
    peers = [p for t in threads for p in _topk_peers(case, t)]
    have_topn = any(p.name == "sparse_dot_topn" for p in peers)
    from sparsecore.ops import _spgemm_topk
    path = "per-row kernel" if _spgemm_topk._per_row_kernel() is not None else "blocked fallback"
    flops = int(np.diff(XT.indptr)[X.indices].sum())
    print(f"\n## top-k: k={k} largest of each row of X @ X.T, X {X.shape} with {X.nnz:,} "
          f"entries ({flops:,} multiplies); sparsecore path: {path}")
    times = time_peers(case, peers, rounds=rounds)
    rows = []
    for t in threads:
        sc = f"sparsecore {t}t"
        row = [f"{t}", fmt_ms(np.median(times[sc]))]
        if have_topn:
            row += [fmt_ms(np.median(times[f"sparse_dot_topn {t}t"])),
                    fmt_ratio(paired_ratio(times, f"sparse_dot_topn {t}t", sc))]
        rows.append(row)
    header = ["threads", "sparsecore ms"] + (
        ["sparse_dot_topn ms", "speed-up vs topn"] if have_topn else [])
    print(format_table(header, rows))
    result = {"case": case.name, "times": times, "path": path}
    if args.memory:
        mem = {}
        for t in threads:
            mem[f"sparsecore {t}t"] = _topk_memory("sparsecore", n, t)
            if have_topn:
                mem[f"sparse_dot_topn {t}t"] = _topk_memory("sparse_dot_topn", n, t)
        result["memory"] = mem
        print("peak extra memory of the call (fresh process per peer, output included) / "
              "output bytes: " + ", ".join(
                  f"{k_}: {v['ratio']:.2f} ({v['extra'] / 2**20:.1f} MiB / "
                  f"{v['output'] / 2**20:.1f} MiB)" for k_, v in mem.items()))
    return result


def _topk_memory_probe(peer, n, threads):
    X = similarity_case(n_docs=n, vocab=n)
    XT = sp.csr_array(X.T)
    if peer == "sparsecore":
        def run_once(X, XT):
            return spgemm_topk(X, XT, 10, n_threads=threads)
    else:
        from sparse_dot_topn import sp_matmul_topn

        X, XT = sp.csr_matrix(X), sp.csr_matrix(XT)

        def run_once(X, XT):
            return sp_matmul_topn(X, XT, top_n=10, n_threads=threads)
    # warm up on a slice (libraries loaded, code paths touched); a warm-up on
    # the full case would leave its freed memory resident in the allocator
    # and hide the measured call's peak
    run_once(X[:200], XT)
    print(json.dumps(h.peak_memory(lambda: run_once(X, XT))))


def _topk_memory(peer, n, threads):
    code = ("from sparsecore._bench.semiring import _topk_memory_probe; "
            f"_topk_memory_probe({peer!r}, {n}, {threads})")
    # a fixed mmap threshold: every block of 128 KiB or more is mapped when
    # allocated and unmapped when freed, so memory freed while building the
    # inputs cannot be reused unseen by the measured call, and its peak
    # resident set counts every large buffer it touches
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    res = h.run_probe(code, env=env)
    res["ratio"] = res["extra"] / res["output"]
    return res


def _user_functions():
    """The numba user datafits and penalty the datafit section measures."""
    from sparsecore.optimize import user_datafit, user_penalty

    def sq_loss(y, z):
        return 0.5 * (y - z) * (y - z)

    def sq_grad(y, z):
        return z - y

    def log_loss(y, z):
        t = -y * z
        return t + np.log1p(np.exp(-t)) if t > 0 else np.log1p(np.exp(t))

    def log_grad(y, z):
        return -y / (1.0 + np.exp(y * z))

    def log_hess(y, z):
        p = 1.0 / (1.0 + np.exp(-z))
        return p * (1.0 - p)

    def l1_value(v):
        return 1e-3 * abs(v)

    def l1_prox(v, step):
        t = 1e-3 * step
        return v - t if v > t else (v + t if v < -t else 0.0)

    return (user_datafit(sq_loss, sq_grad, curvature=1.0, name="squared"),
            user_datafit(log_loss, log_grad, log_hess, curvature=0.25, name="logistic"),
            user_penalty(l1_value, l1_prox, name="l1"))


def _block_solve(X, y, penalty, epochs):
    """One call of the compiled block solver on all columns, ``epochs`` full
    epochs (tol = 0, no Anderson step): the coordinate update itself, closed
    form or through the user's function pointers."""
    from sparsecore._ext import _bcd
    from sparsecore.optimize import Quadratic
    from sparsecore.optimize._design import as_design
    from sparsecore.optimize._solver import _State

    n, p = X.shape
    st = _State(Quadratic(), penalty, as_design(X), y.reshape(-1, 1), np.full(n, 1.0 / n),
                False, 1)
    ws = np.arange(p, dtype=np.int64)
    u0 = y / n
    empty = np.empty(0)

    def run(_):
        w, u = np.zeros(p), u0.copy()
        _bcd.wls_cd(*st.X.kernel_args(), ws, w, u, empty, 1.0 / n, empty, 1.0, empty,
                    st.colsum, 0.0, st.Lcol, st.l1, st.l2, st.lo, st.hi, epochs, 0.0,
                    epochs + 1, np.empty((0, p)), np.empty(n), np.empty(p), *st.pen_addr)
        return w
    return run


def _datafit_case(name):
    """``<n>x<p>``: a sparse CSC design with density 0.05, a 20-sparse
    regression target y and its signs yb."""
    n, p = (int(v) for v in name.split("x"))
    rng = np.random.default_rng(0)
    X = sp.random_array((n, p), density=0.05, format="csc", rng=rng)
    w = np.zeros(p)
    w[rng.choice(p, 20, replace=False)] = rng.standard_normal(20)
    y = X @ w + 0.01 * rng.standard_normal(n)
    return Case(name, (X, y, np.where(y > np.median(y), 1.0, -1.0)))


DATAFIT_PAIRS = ["datafit squared", "datafit logistic", "penalty L1, squared",
                 "penalty L1, logistic"]
BLOCK_EPOCHS = 20


def _datafit_ops(case, t):
    """Greedy BCD (L1 1e-3, tol 1e-8) with a built-in and a numba user
    datafit or penalty; ``block solve L1``: BLOCK_EPOCHS epochs of the compiled
    solver over all columns."""
    if optional("numba") is None:
        return []
    from sparsecore.optimize import L1, Logistic, Quadratic, greedy_bcd

    user_sq, user_log, user_l1 = _user_functions()
    # label: ((built-in datafit, penalty, target), (user datafit, penalty, target))
    pairs = {
        "datafit squared": ((Quadratic(), L1(1e-3), 1), (user_sq, L1(1e-3), 1)),
        "datafit logistic": ((Logistic(), L1(1e-3), 2), (user_log, L1(1e-3), 2)),
        "penalty L1, squared": ((Quadratic(), L1(1e-3), 1), (Quadratic(), user_l1, 1)),
        "penalty L1, logistic": ((Logistic(), L1(1e-3), 2), (Logistic(), user_l1, 2)),
    }
    peers = []
    for label, variants in pairs.items():
        for which, (df, pen, i) in zip(("built-in", "user"), variants):
            peers.append(Peer(f"{label} | {which}", t,
                              lambda d, df=df, pen=pen, i=i: greedy_bcd(
                                  df, pen, d[0], d[i], tol=1e-8, max_iter=2000, n_threads=t)))
    if case is not None:
        X, y, _ = case.inputs
        peers.append(Peer("block solve L1 | built-in", t, _block_solve(X, y, L1(1e-3), BLOCK_EPOCHS)))
        peers.append(Peer("block solve L1 | user", t, _block_solve(X, y, user_l1, BLOCK_EPOCHS)))
    return peers


DATAFIT = register(Family(
    "semiring.datafit", ["2000x300", "5000x500"], _datafit_case, _datafit_ops,
    [f"{label} | {which}" for label in DATAFIT_PAIRS + ["block solve L1"]
     for which in ("built-in", "user")], kind="operations"))


def _datafit_section(args, threads, rounds):
    """Numba user datafits and penalties against the built-in ones in the
    greedy BCD engine."""
    if optional("numba") is None:
        print("\n## datafit: skipped (numba is not installed)")
        return None
    case = _datafit_case("2000x300" if args.quick else "5000x500")
    rows = []
    out = {}
    for t in threads:
        times = time_peers(case, _datafit_ops(case, t), rounds=rounds)
        out[t] = times
        for label in DATAFIT_PAIRS + ["block solve L1"]:
            b, u = f"{label} | built-in {t}t", f"{label} | user {t}t"
            rows.append([label, str(t), fmt_ms(np.median(times[b])), fmt_ms(np.median(times[u])),
                         fmt_ratio(paired_ratio(times, u, b))])
    print(f"\n## datafit: greedy BCD on a sparse {case.name} design (L1 1e-3, tol 1e-8); "
          f"block solve = {BLOCK_EPOCHS} epochs of the compiled solver over all columns; "
          f"ratio = time(user)/time(built-in), < 2 is the target")
    print(format_table(["case", "threads", "built-in ms", "user ms", "user/built-in"], rows))
    return {"times": out}


def run(args):
    threads = h.thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    print(f"# medians of {rounds} rounds, peers alternated")
    mine = ["semirings", "masked", "topk", "datafit"]
    sections = [s for s in (getattr(args, "sections", None) or []) if s in mine] or mine
    out = {}
    if "semirings" in sections:
        out["semirings"] = _semiring_section(args, threads, rounds)
    if "masked" in sections:
        out["masked"] = _masked_section(args, threads, rounds)
    if "topk" in sections:
        out["topk"] = _topk_section(args, threads, rounds)
    if "datafit" in sections:
        out["datafit"] = _datafit_section(args, threads, rounds)
    if args.json:
        h.write_json(args.json, {"suite": "semiring", "threads": threads, **out})
