"""SpGEMM suite: the real matrices and generated cases of the SpGEMM note,
against scipy (plain and followed by sort_indices), python-graphblas and
sparse_dot_mkl when they are installed."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sparsecore import datasets
from sparsecore.ops import spgemm
from sparsecore._bench._harness import (
    Case,
    Peer,
    fmt_ms,
    fmt_ratio,
    format_table,
    geomean,
    paired_ratio,
    thread_counts,
    time_peers,
    write_json,
)

__all__ = ["run", "load_case", "case_names"]

# real matrices, in the note's order (arrow.mtx is left out: its square has
# 2.16e9 nonzeros and is the MemoryError test)
REAL = [
    "Pd", "olm1000", "young1c", "cryg2500", "watt_2", "bcspwr10", "dwt_992",
    "zenios", "n1024-l1", "n1024-l2", "hangGlider_2", "bcsstk13", "rajat01",
    "pushpull", "sparse-images-1024_subset",
]
GENERATED = {
    "rmat14": lambda: _square(datasets.make_rmat(14)),
    "er50k": lambda: _square(datasets.make_erdos_renyi(50_000, 10)),
    "lap2d_1000": lambda: _square(datasets.make_laplacian((1000, 1000))),
    "lap3d27_40": lambda: _square(datasets.make_laplacian((40, 40, 40), stencil=27)),
    "ts200k_AtA": lambda: _gram(datasets.make_tall_skinny(200_000, 1000, 5), left=True),
    "ts50k_AAt": lambda: _gram(datasets.make_tall_skinny(50_000, 10_000, 5), left=False),
}


def _square(A):
    return A, A


def _gram(A, left):
    At = sp.csr_array(A.T)
    return (At, A) if left else (A, At)


def _real_case(path):
    A = datasets.read_matrix_market(path)
    if np.iscomplexobj(A.data):
        A = sp.csr_array(A.real)  # peers compared on real data, as in the note
        A.eliminate_zeros()
    if A.shape[0] != A.shape[1]:
        return _gram(A, left=False)
    return _square(A)


def case_names(matrix_dir):
    names = []
    if matrix_dir is not None:
        names += [n for n in REAL if (Path(matrix_dir) / f"{n}.mtx").exists()]
    else:
        names += list(datasets.list_matrices())
    return names + list(GENERATED)


def load_case(name, matrix_dir):
    if name in GENERATED:
        A, B = GENERATED[name]()
        kind = "generated"
    elif matrix_dir is not None:
        A, B = _real_case(Path(matrix_dir) / f"{name}.mtx")
        kind = "real"
    else:
        A = datasets.load_matrix(name)
        if np.iscomplexobj(A.data):
            A = sp.csr_array(A.real)
        A, B = _square(A)
        kind = "real"
    A.sort_indices()
    B.sort_indices()
    fp = np.diff(B.indptr)[A.indices].sum()
    return Case(name, (A, B), {"kind": kind, "shape": A.shape, "flops": int(fp)})


def _peers(threads):
    peers = [
        Peer("scipy", 1, lambda ab: ab[0] @ ab[1]),
        Peer("scipy+sort", 1, lambda ab: (ab[0] @ ab[1]).sort_indices()),
    ]
    for t in threads:
        peers.append(Peer("sparsecore", t, lambda ab, t=t: spgemm(ab[0], ab[1], n_threads=t)))
    peers += _graphblas_peers(threads)
    peers += _mkl_peers(threads)
    return peers


def _graphblas_peers(threads):
    try:
        import graphblas as gb
    except ImportError:
        return []
    try:
        gb.init("suitesparse", blocking=True)
    except Exception:
        pass  # already initialised
    def prepare(ab):
        return gb.io.from_scipy_sparse(ab[0]), gb.io.from_scipy_sparse(ab[1])
    def make(t):
        def run(gab):
            gb.ss.config["nthreads"] = t
            return gab[0].mxm(gab[1], gb.semiring.plus_times).new()
        return run
    return [Peer("graphblas", t, make(t), prepare) for t in threads]


def _mkl_peers(threads):
    """sparse_dot_mkl (needs LD_LIBRARY_PATH to reach libmkl_rt; KMP_BLOCKTIME=1
    keeps idle MKL threads from spinning into the other peers' turns)."""
    try:
        from sparse_dot_mkl import dot_product_mkl, mkl_set_num_threads
    except Exception:
        return []
    def make(t):
        def run(ab):
            mkl_set_num_threads(t)
            return dot_product_mkl(ab[0], ab[1])
        return run
    # sparse_dot_mkl recasts int64 indices of its inputs in place: give it copies
    return [Peer("mkl", t, make(t), lambda ab: (ab[0].copy(), ab[1].copy())) for t in threads]


def _memory_probe(name, matrix_dir, peer, threads):
    """Run one product in this (fresh) process; print peak extra memory."""
    case = load_case(name, matrix_dir)
    A, B = case.inputs
    run = {
        "sparsecore": lambda: spgemm(A, B, n_threads=threads),
        "scipy": lambda: A @ B,
    }[peer]
    run()  # first call: library-level one-time allocations
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set size
    base = _status_kb("VmRSS")
    C = run()
    peak = _status_kb("VmHWM")
    out_bytes = C.data.nbytes + C.indices.nbytes + C.indptr.nbytes
    print(json.dumps({"extra": (peak - base) * 1024, "output": out_bytes}))


def _status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def _measure_memory(name, matrix_dir, peer, threads):
    code = (
        "from sparsecore._bench.spgemm import _memory_probe; "
        f"_memory_probe({name!r}, {str(matrix_dir) if matrix_dir else None!r}, {peer!r}, {threads})"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res["extra"] / res["output"]


def run(args):
    matrix_dir = datasets.find_matrix_dir(args.matrix_dir)
    threads = thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    peers = _peers(threads)
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
        if args.quick and name in ("rmat14",):
            continue
        case = load_case(name, matrix_dir)
        times = time_peers(case, peers, rounds=rounds)
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
               f"{C.nnz:,}", fmt_ms(np.median(times[base]))]
        row += [fmt_ratio(paired_ratio(times, base, lab)) for lab in labels[1:]]
        if args.memory:
            row.append(f"{rec['memory']['sparsecore']:.2f}")
        rows.append(row)
    header = ["case", "shape", "flops", "nnz(C)", "scipy ms"] + labels[1:]
    if args.memory:
        header.append(f"sc mem/out")
    for kind in ("real", "generated"):
        sub = [r for r in results if r["kind"] == kind]
        if sub:
            rows.append([f"geo-mean {kind}", "", "", "", ""] + [
                fmt_ratio(geomean([paired_ratio(r["times"], base, lab) for r in sub]))
                for lab in labels[1:]
            ] + ([""] if args.memory else []))
    print(format_table(header, rows))
    if args.json:
        write_json(args.json, {"suite": "spgemm", "threads": threads, "results": results})
    _summary(results, threads)


def _summary(results, threads):
    """The issue's goal metrics, computed from the same runs."""
    t1 = "sparsecore 1t"
    print()
    def gm(sub, a, b):
        vals = [paired_ratio(r["times"], a, b) for r in sub if a in r["times"] and b in r["times"]]
        return geomean(vals) if vals else None
    allr = results
    real = [r for r in results if r["kind"] == "real"]
    gen = [r for r in results if r["kind"] == "generated"]
    lines = []
    if 1 in threads:
        lines += [
            ("1t vs scipy+sort (geo-mean)", gm(allr, "scipy+sort 1t", t1)),
            ("1t vs plain scipy (geo-mean)", gm(allr, "scipy 1t", t1)),
            ("1t vs graphblas 1t (geo-mean)", gm(allr, "graphblas 1t", t1)),
            ("1t vs scipy, worst case", min(paired_ratio(r["times"], "scipy 1t", t1) for r in allr)),
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
            print(f"  {text:<44} {fmt_ratio(value)}")
