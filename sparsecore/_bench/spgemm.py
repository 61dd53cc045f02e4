"""SpGEMM suite: real matrices (SuiteSparse) and generated cases, against
scipy (plain and followed by sort_indices), python-graphblas and
sparse_dot_mkl when they are installed. Registers the family ``spgemm``."""
import json
import re

import numpy as np
import scipy.sparse as sp

from sparsecore import datasets
from sparsecore.ops import spgemm
from sparsecore._bench import _harness as h
from sparsecore._bench._registry import (
    Family,
    available_matrices,
    generated_matrix,
    graphblas,
    real_matrix,
    register,
)

__all__ = ["run", "load_case", "case_names", "FAMILY"]

# real matrices, small to large in work (arrow.mtx is left out: its square
# has 2.16e9 nonzeros and is the MemoryError test)
REAL = [
    "Pd", "olm1000", "young1c", "cryg2500", "watt_2", "bcspwr10", "dwt_992",
    "zenios", "n1024-l1", "n1024-l2", "hangGlider_2", "bcsstk13", "rajat01",
    "pushpull", "sparse-images-1024_subset",
]
# generated squares (names understood by generated_matrix) and Gram products
# ts<rows/1000>kx<cols/1000>k_<per row>_(AAt|AtA) of a random tall matrix:
# together they cover power-law graphs, very sparse squares (2-8 per row),
# banded/FEM matrices and tall-skinny Gram products at several aspect ratios
GENERATED = [
    "rmat14", "er50k", "lap2d_1000", "lap3d27_40",
    "er13k_3", "er13k_7", "er100k_2", "er100k_4", "er50k_8",
    "pl20k_4", "pl50k_3",
    "band50k_20_7", "band20k_500_10", "lap2d_300",
    "ts200k_AtA", "ts50k_AAt",
    "ts35kx10k_5_AAt", "ts35kx10k_5_AtA", "ts20kx2k_5_AAt", "ts20kx2k_5_AtA",
    "ts100kx10k_5_AAt", "ts100kx10k_5_AtA", "ts200kx4k_3_AtA",
]
# the largest cases, left out of --quick runs
QUICK_SKIPS = {"rmat14", "pl50k_3", "ts100kx10k_5_AAt"}
TALL_SKINNY = {
    "ts200k_AtA": lambda: _gram(datasets.make_tall_skinny(200_000, 1000, 5), left=True),
    "ts50k_AAt": lambda: _gram(datasets.make_tall_skinny(50_000, 10_000, 5), left=False),
}
_TS_PATTERN = re.compile(r"ts(\d+)kx(\d+)k_(\d+)_(AAt|AtA)")


def _tall_skinny(name):
    """The Gram product named ``name`` (see TALL_SKINNY and _TS_PATTERN), or None."""
    if name in TALL_SKINNY:
        return TALL_SKINNY[name]()
    m = _TS_PATTERN.fullmatch(name)
    if m is None:
        return None
    A = datasets.make_tall_skinny(int(m[1]) * 1000, int(m[2]) * 1000, int(m[3]))
    return _gram(A, left=m[4] == "AtA")


#: the folder real matrices are read from (``--matrix-dir``; None: the default)
matrix_dir = None


def _gram(A, left):
    A = sp.csr_array(A)
    At = sp.csr_array(A.T)
    return (At, A) if left else (A, At)


def case_names(folder=None):
    """Real matrices present here (in the folder or shipped), then generated."""
    return available_matrices(REAL, folder or matrix_dir) + GENERATED


def load_case(name, folder=None):
    """``Case(name, (A, B), info)`` of the product ``A @ B``: ``A @ A`` for a
    square matrix, ``A @ A.T`` (or ``A.T @ A``) for a rectangular one."""
    gram = _tall_skinny(name)
    if gram is not None:
        A, B = gram
        kind = "generated"
    else:
        A = generated_matrix(name)
        kind = "generated" if A is not None else "real"
        if A is None:
            A = real_matrix(name, folder or matrix_dir)
        A, B = (A, A) if A.shape[0] == A.shape[1] else _gram(A, left=False)
    A.sort_indices()
    B.sort_indices()
    fp = np.diff(B.indptr)[A.indices].sum()
    return h.Case(name, (A, B), {"kind": kind, "shape": A.shape, "flops": int(fp)})


def _peers(case, threads):
    """Peers of ``A @ B`` at ``threads`` threads (scipy at 1 only)."""
    Peer = h.Peer
    peers = []
    if threads == 1:
        peers += [Peer("scipy", 1, lambda ab: ab[0] @ ab[1]),
                  Peer("scipy+sort", 1, lambda ab: (ab[0] @ ab[1]).sort_indices())]
    peers.append(Peer("sparsecore", threads,
                      lambda ab: spgemm(ab[0], ab[1], n_threads=threads)))
    peers += _graphblas_peers(threads)
    peers += _mkl_peers(threads)
    return peers


def _graphblas_peers(t):
    gb = graphblas()
    if gb is None:
        return []

    def prepare(ab):
        return gb.io.from_scipy_sparse(ab[0]), gb.io.from_scipy_sparse(ab[1])

    def run(gab):
        gb.ss.config["nthreads"] = t
        return gab[0].mxm(gab[1], gb.semiring.plus_times).new()
    return [h.Peer("graphblas", t, run, prepare)]


def _mkl_peers(t):
    """sparse_dot_mkl (needs LD_LIBRARY_PATH to reach libmkl_rt; KMP_BLOCKTIME=1
    keeps idle MKL threads from spinning into the other peers' turns)."""
    try:
        from sparse_dot_mkl import dot_product_mkl, mkl_set_num_threads
    except Exception:
        return []

    def run(ab):
        mkl_set_num_threads(t)
        return dot_product_mkl(ab[0], ab[1])
    # sparse_dot_mkl recasts int64 indices of its inputs in place: give it copies
    return [h.Peer("mkl", t, run, lambda ab: (ab[0].copy(), ab[1].copy()))]


FAMILY = register(Family(
    "spgemm", case_names, load_case, _peers,
    ["scipy", "scipy+sort", "sparsecore", "graphblas", "mkl"]))


def _all_peers(threads):
    """Every peer at every thread count, in table order (scipy first)."""
    case = h.Case("-", None)
    peers = [p for t in sorted(set(threads) | {1}) for p in _peers(case, t)
             if p.threads in threads or p.name.startswith("scipy")]
    order = FAMILY.peer_names
    return sorted(peers, key=lambda p: (order.index(p.name), p.threads))


def _memory_probe(name, folder, peer, threads):
    """Run one product in this (fresh) process; print peak extra memory."""
    A, B = load_case(name, folder).inputs
    run = {
        "sparsecore": lambda: spgemm(A, B, n_threads=threads),
        "scipy": lambda: A @ B,
    }[peer]
    run()  # first call: library-level one-time allocations
    print(json.dumps(h.peak_memory(run)))


def _measure_memory(name, folder, peer, threads):
    res = h.run_probe("from sparsecore._bench.spgemm import _memory_probe; "
                      f"_memory_probe({name!r}, {str(folder) if folder else None!r}, "
                      f"{peer!r}, {threads})")
    return res["extra"] / res["output"]


def run(args):
    global matrix_dir
    matrix_dir = datasets.find_matrix_dir(args.matrix_dir)
    threads = h.thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    peers = _all_peers(threads)
    labels = [p.label for p in peers]
    base = "scipy 1t"
    src = f"matrices from {matrix_dir}" if matrix_dir else "matrices shipped in the package"
    print(f"\n## spgemm: C = A @ B, float64, {src}; ratios are time(scipy)/time(peer), > 1 is faster")
    print(f"# medians of {rounds} rounds, peers alternated; sparsecore output is sorted (canonical), scipy's is not\n")
    rows, results = [], []
    names = case_names(matrix_dir)
    if args.cases:
        names = [n for n in names if n in args.cases]
    for name in names:
        if args.quick and name in QUICK_SKIPS:
            continue
        case = load_case(name, matrix_dir)
        times = h.time_peers(case, peers, rounds=rounds)
        C = spgemm(*case.inputs)
        rec = {"case": name, **case.info, "nnz": int(C.nnz), "times": times}
        if args.memory:
            t = max(threads)
            rec["memory"] = {
                "sparsecore": _measure_memory(name, matrix_dir, "sparsecore", t),
                "scipy": _measure_memory(name, matrix_dir, "scipy", 1),
            }
        results.append(rec)
        row = [name, "x".join(map(str, case.info["shape"])), f"{case.info['flops']:,}",
               f"{C.nnz:,}", h.fmt_ms(np.median(times[base]))]
        row += [h.fmt_ratio(h.paired_ratio(times, base, lab)) for lab in labels[1:]]
        if args.memory:
            row.append(f"{rec['memory']['sparsecore']:.2f}")
        rows.append(row)
    header = ["case", "shape", "flops", "nnz(C)", "scipy ms"] + labels[1:]
    if args.memory:
        header.append("sc mem/out")
    for kind in ("real", "generated"):
        sub = [r for r in results if r["kind"] == kind]
        if sub:
            rows.append([f"geo-mean {kind}", "", "", "", ""] + [
                h.fmt_ratio(h.geomean([h.paired_ratio(r["times"], base, lab) for r in sub]))
                for lab in labels[1:]
            ] + ([""] if args.memory else []))
    print(h.format_table(header, rows))
    if args.json:
        h.write_json(args.json, {"suite": "spgemm", "threads": threads, "results": results})
    _summary(results, threads)


def _summary(results, threads):
    """Geometric means and worst cases against each peer, from the same runs."""
    t1 = "sparsecore 1t"
    print()
    def gm(sub, a, b):
        vals = [h.paired_ratio(r["times"], a, b) for r in sub if a in r["times"] and b in r["times"]]
        return h.geomean(vals) if vals else None
    allr = results
    real = [r for r in results if r["kind"] == "real"]
    gen = [r for r in results if r["kind"] == "generated"]
    lines = []
    if 1 in threads:
        lines += [
            ("1t vs scipy+sort (geo-mean)", gm(allr, "scipy+sort 1t", t1)),
            ("1t vs plain scipy (geo-mean)", gm(allr, "scipy 1t", t1)),
            ("1t vs graphblas 1t (geo-mean)", gm(allr, "graphblas 1t", t1)),
            ("1t vs scipy, worst case", min(h.paired_ratio(r["times"], "scipy 1t", t1) for r in allr)),
        ]
    tn = max(threads)
    if tn > 1:
        tl = f"sparsecore {tn}t"
        lines += [
            (f"{tn}t vs scipy, real (geo-mean)", gm(real, "scipy 1t", tl)),
            (f"{tn}t vs scipy, generated (geo-mean)", gm(gen, "scipy 1t", tl)),
            (f"{tn}t vs graphblas {tn}t (geo-mean)", gm(allr, f"graphblas {tn}t", tl)),
            (f"{tn}t vs mkl {tn}t (geo-mean)", gm(allr, f"mkl {tn}t", tl)),
        ]
        if 1 in threads:
            lines.append((f"own {tn}t/1t above 10 M flops (geo-mean)",
                          gm([r for r in allr if r["flops"] >= 10_000_000], t1, tl)))
    mem = [r["memory"]["sparsecore"] for r in allr if "memory" in r]
    if mem:
        lines.append(("peak extra memory / output, sparsecore (max)", max(mem)))
    for text, value in lines:
        if value is not None:
            print(f"  {text:<44} {h.fmt_ratio(value)}")
