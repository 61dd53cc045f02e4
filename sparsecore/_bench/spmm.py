"""SpMM suite: block-sparse, N:M and CSR products against numpy dense
(OpenBLAS at the same thread count), scipy CSR/BSR and, when installed, torch
CSR/BSR (MKL). Every ratio is a median over rounds of side-by-side calls.

Sections (``--cases`` picks some): goals (sparsity sweep, 3072x768, B=128),
shapes (shape x batch at 90 %), nm (N:M patterns), f64, backward (S.T @ G,
layer products, SDDMM), threads (self-scaling), convert (pruning and format
conversions in units of one dense GEMM), real (a sparse DNN layer shipped in
the package)."""
import time

import numpy as np
import scipy.sparse as sp

from sparsecore import datasets
from sparsecore.formats import BlockShape, BlockSparseMatrix, NMSparseMatrix
from sparsecore.ops import block_prune, nm_prune, sddmm, spmm
from sparsecore._bench._harness import (
    Case,
    Peer,
    fmt_ms,
    fmt_ratio,
    format_table,
    paired_ratio,
    thread_counts,
    time_peers,
    write_json,
)

__all__ = ["run", "SECTIONS", "make_block", "make_nm"]

SHAPES = [(768, 768), (3072, 768), (768, 3072), (4096, 4096)]
SPARSITIES = [0.5, 0.7, 0.8, 0.9, 0.95]
GOAL_FORMATS = [(16, 16), (8, 8), (16, 1), (8, 1), (4, 1), (1, 1)]
NM_PATTERNS = [(2, 4), (1, 4), (2, 8), (1, 8)]
# a peer whose first call takes longer than this is left out of the case
MAX_CALL = 1.0


def make_block(shape, bs, sparsity, dtype, seed=0):
    """Exactly round((1 - sparsity) * #blocks) blocks, uniformly at random,
    N(0, 1) values."""
    rng = np.random.default_rng(seed)
    r, c = bs
    m, n = shape
    mb, nb = m // r, n // c
    k = int(round((1 - sparsity) * mb * nb))
    keep = np.zeros(mb * nb, dtype=bool)
    keep[rng.choice(mb * nb, k, replace=False)] = True
    W = rng.standard_normal(shape).astype(dtype)
    return BlockSparseMatrix._from_pattern(W.reshape(mb, r, nb, c), keep.reshape(mb, nb),
                                           shape, BlockShape(r, c))


def make_nm(shape, n, m, dtype, seed=0):
    """N random positions in every group of M along the rows (the reduction axis)."""
    rng = np.random.default_rng(seed)
    return nm_prune(rng.standard_normal(shape).astype(dtype), n, m,
                    score=rng.random(shape))


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _peers(S, t, dense_W):
    """Peers computing S @ X at t threads; numpy dense first."""
    torch = _torch()
    peers = [
        Peer("np_dense", t, lambda d: d["W"] @ d["X"]),
        Peer("sparsecore", t, lambda d, t=t: spmm(d["S"], d["X"], n_threads=t)),
    ]
    if t == 1:  # scipy.sparse is single-threaded
        peers.append(Peer("sp_csr", 1, lambda d: d["csr"] @ d["X"]))
        if isinstance(S, BlockSparseMatrix) and S.block_shape != (1, 1):
            peers.append(Peer("sp_bsr", 1, lambda d: d["bsr"] @ d["X"]))
    if torch is not None:
        peers.append(Peer("torch_csr", t, lambda d: d["t_csr"] @ d["t_X"]))
        if isinstance(S, BlockSparseMatrix) and S.block_shape.rows == S.block_shape.cols > 1:
            # MKL's BSR (torch's CPU path) supports square blocks only
            peers.append(Peer("torch_bsr", t, lambda d: d["t_bsr"] @ d["t_X"]))
    return peers


def _inputs(S, X, W):
    d = {"S": S, "X": X, "W": W, "csr": S.to_scipy("csr")}
    if isinstance(S, BlockSparseMatrix) and S.shape[0] % S.block_shape.rows == 0 \
            and S.shape[1] % S.block_shape.cols == 0:
        d["bsr"] = S.to_scipy("bsr")
    torch = _torch()
    if torch is not None:
        d["t_X"] = torch.from_numpy(X)
        Wt = torch.from_numpy(W)
        d["t_csr"] = Wt.to_sparse_csr()
        if isinstance(S, BlockSparseMatrix) and S.block_shape.rows == S.block_shape.cols > 1:
            d["t_bsr"] = Wt.to_sparse_bsr(tuple(S.block_shape))
    return d


class _Threads:
    """BLAS/OpenMP (threadpoolctl) and torch limited to t threads."""

    def __init__(self, t):
        self.t = t

    def __enter__(self):
        from threadpoolctl import threadpool_limits

        self.limiter = threadpool_limits(self.t)
        torch = _torch()
        if torch is not None:
            self.torch_threads = torch.get_num_threads()
            torch.set_num_threads(self.t)
        return self

    def __exit__(self, *exc):
        self.limiter.restore_original_limits()
        torch = _torch()
        if torch is not None:
            torch.set_num_threads(self.torch_threads)


def _time(case, peers, rounds):
    """time_peers without the peers whose first call is too slow."""
    kept = []
    for p in peers:
        t0 = time.perf_counter()
        p.run(case.inputs)
        if time.perf_counter() - t0 <= MAX_CALL or p.name in ("np_dense", "sparsecore"):
            kept.append(p)
    return time_peers(case, kept, rounds=rounds)


def _row(case, times, peer_names, t):
    base = f"np_dense {t}t"
    ours = f"sparsecore {t}t"
    ideal = case.info["ideal"]
    sc = paired_ratio(times, base, ours)
    cells = [fmt_ms(np.median(times[base])), fmt_ratio(sc), f"{sc / ideal:.2f}"]
    best = None
    for name in peer_names:
        label = f"{name} {1 if name.startswith('sp_') else t}t"
        if label in times:
            r = paired_ratio(times, base, label)
            cells.append(fmt_ratio(r))
            best = r if best is None or r > best else best
        else:
            cells.append("-")
    cells.append(fmt_ratio(sc / best) if best else "-")
    return cells, {"speedup": sc, "fraction_of_ideal": sc / ideal,
                   "best_peer": best, "vs_best_peer": sc / best if best else None}


PEER_COLUMNS = ["sp_csr", "sp_bsr", "torch_csr", "torch_bsr"]
HEADER_TAIL = ["dense ms", "sparsecore", "of ideal"] + [p + " x" for p in PEER_COLUMNS] + ["vs best peer"]


def _fmt_name(S):
    if isinstance(S, BlockSparseMatrix):
        r, c = S.block_shape
        return "csr" if (r, c) == (1, 1) else f"{r}x{c}"
    if isinstance(S, NMSparseMatrix):
        return str(S.pattern)
    return "csr"


def _run_cases(specs, t, rounds, results, title, label_cols):
    """specs: list of (labels, S, B); prints one table."""
    rows = []
    for labels, S, B, ideal in specs:
        rng = np.random.default_rng(1)
        W = S.toarray()
        X = rng.standard_normal((S.shape[1], B)).astype(S.dtype)
        if B == 1:
            X = X[:, 0].copy()
        case = Case(" ".join(map(str, labels)), _inputs(S, X, W), {"ideal": ideal})
        times = _time(case, _peers(S, t, W), rounds)
        cells, rec = _row(case, times, PEER_COLUMNS, t)
        rows.append(list(map(str, labels)) + [f"{ideal:.1f}"] + cells)
        results.append({"section": title, "case": case.name, "threads": t, **rec,
                        "times": times})
    print(f"\n### {title} ({t} thread{'s' if t > 1 else ''})")
    print(format_table(label_cols + ["ideal"] + HEADER_TAIL, rows))


def section_goals(args, threads, rounds, results):
    specs = []
    sparsities = [0.5, 0.9] if args.quick else SPARSITIES
    for bs in GOAL_FORMATS:
        for s in sparsities:
            S = make_block((3072, 768), bs, s, np.float32)
            specs.append(((_fmt_name(S), f"{s:.0%}"), S, 128, 1 / (1 - s)))
    with _Threads(1):
        _run_cases(specs, 1, rounds, results,
                   "goals: W 3072x768 @ X 768x128, float32 (speedup over numpy dense)",
                   ["format", "sparsity"])


def section_shapes(args, threads, rounds, results):
    specs = []
    batches = [1, 128] if args.quick else [1, 16, 128, 512]
    for shape in SHAPES:
        for bs in [(16, 16), (8, 1), (1, 1)]:
            S = make_block(shape, bs, 0.9, np.float32)
            for B in batches:
                if args.quick and shape == (4096, 4096) and B > 128:
                    continue
                specs.append((("x".join(map(str, shape)), _fmt_name(S), B), S, B, 10.0))
    with _Threads(1):
        _run_cases(specs, 1, rounds, results, "shapes x batch at 90 %, float32",
                   ["shape", "format", "B"])


def section_nm(args, threads, rounds, results):
    specs = []
    shapes = [(3072, 768), (4096, 4096)] if args.quick else SHAPES
    for shape in shapes:
        for n, m in NM_PATTERNS:
            S = make_nm(shape, n, m, np.float32)
            for B in ([128] if args.quick else [1, 128, 512]):
                if shape == (4096, 4096) and B == 512:
                    continue
                specs.append((("x".join(map(str, shape)), f"{n}:{m}", B), S, B, m / n))
    with _Threads(1):
        _run_cases(specs, 1, rounds, results, "N:M along the reduction axis, float32",
                   ["shape", "N:M", "B"])


def section_f64(args, threads, rounds, results):
    specs = []
    for bs in [(16, 16), (8, 1), (1, 1)]:
        for s in [0.5, 0.9]:
            S = make_block((3072, 768), bs, s, np.float64)
            specs.append(((_fmt_name(S), f"{s:.0%}"), S, 128, 1 / (1 - s)))
    for n, m in NM_PATTERNS:
        S = make_nm((3072, 768), n, m, np.float64)
        specs.append(((f"{n}:{m}", f"{1 - n / m:.0%}"), S, 128, m / n))
    with _Threads(1):
        _run_cases(specs, 1, rounds, results, "float64, W 3072x768, B=128",
                   ["format", "sparsity"])


def section_backward(args, threads, rounds, results):
    """S.T @ G (input gradient) and the layer orientation against S @ X, and
    SDDMM (weight gradient on the pattern) against the dense G @ X.T."""
    rows = []
    shape, B = (3072, 768), 128
    cases = [make_block(shape, (16, 16), 0.9, np.float32), make_block(shape, (8, 1), 0.9, np.float32),
             make_block(shape, (1, 1), 0.9, np.float32), make_nm(shape, 2, 4, np.float32),
             make_nm(shape, 1, 8, np.float32)]
    rng = np.random.default_rng(2)
    with _Threads(1):
        for S in cases:
            m, n = S.shape
            X = rng.standard_normal((n, B)).astype(np.float32)
            G = rng.standard_normal((m, B)).astype(np.float32)
            Xb, Gb = np.ascontiguousarray(X.T), np.ascontiguousarray(G.T)
            S.T  # build the cached transposed structure outside the timing
            W = S.toarray()
            d = {"S": S, "X": X, "G": G, "Xb": Xb, "Gb": Gb, "W": W}
            peers = [
                Peer("fwd S@X", 1, lambda d: spmm(d["S"], d["X"], n_threads=1)),
                Peer("bwd S.T@G", 1, lambda d: spmm(d["S"].T, d["G"], n_threads=1)),
                Peer("layer Xb@S.T", 1, lambda d: d["Xb"] @ d["S"].T),
                Peer("layer Gb@S", 1, lambda d: d["Gb"] @ d["S"]),
                Peer("sddmm", 1, lambda d: sddmm(d["G"], d["X"], d["S"], n_threads=1)),
                Peer("dense G@X.T", 1, lambda d: d["G"] @ d["X"].T),
                Peer("dense W.T@G", 1, lambda d: d["W"].T @ d["G"]),
            ]
            times = time_peers(Case(_fmt_name(S), d), peers, rounds=rounds)
            f = "fwd S@X 1t"
            rec = {
                "bwd_over_fwd": paired_ratio(times, "bwd S.T@G 1t", f),
                "layer_fwd_over_fwd": paired_ratio(times, "layer Xb@S.T 1t", f),
                "layer_bwd_over_fwd": paired_ratio(times, "layer Gb@S 1t", f),
                "bwd_vs_dense": paired_ratio(times, "dense W.T@G 1t", "bwd S.T@G 1t"),
                "sddmm_vs_dense": paired_ratio(times, "dense G@X.T 1t", "sddmm 1t"),
            }
            ideal = 1 / S.density
            rows.append([_fmt_name(S), f"{S.density:.3f}", fmt_ms(np.median(times[f])),
                         f"{1 / rec['bwd_over_fwd']:.2f}", f"{1 / rec['layer_fwd_over_fwd']:.2f}",
                         f"{1 / rec['layer_bwd_over_fwd']:.2f}", fmt_ratio(rec["bwd_vs_dense"]),
                         fmt_ratio(rec["sddmm_vs_dense"]), f"{rec['sddmm_vs_dense'] / ideal:.2f}"])
            results.append({"section": "backward", "case": _fmt_name(S), "threads": 1, **rec,
                            "times": times})
    print("\n### backward and layer products, W 3072x768, B=128, float32 (1 thread)")
    print("# throughput relative to S @ X (1.00 = as fast); sddmm against the dense G @ X.T")
    print(format_table(["format", "density", "S@X ms", "S.T@G", "Xb@S.T", "Gb@S",
                        "S.T@G vs dense", "sddmm vs dense", "sddmm of ideal"], rows))


def section_threads(args, threads, rounds, results):
    tn = max(threads)
    if tn == 1:
        print("\n### threads: skipped (one thread available)")
        return
    rows = []
    specs = [((3072, 768), make_block((3072, 768), (16, 16), 0.9, np.float32)),
             ((3072, 768), make_block((3072, 768), (1, 1), 0.9, np.float32)),
             ((3072, 768), make_nm((3072, 768), 2, 4, np.float32)),
             ((4096, 4096), make_block((4096, 4096), (16, 16), 0.9, np.float32)),
             ((4096, 4096), make_block((4096, 4096), (8, 1), 0.7, np.float32)),
             ((4096, 4096), make_nm((4096, 4096), 2, 8, np.float32))]
    rng = np.random.default_rng(3)
    inputs = [(shape, S, rng.standard_normal((shape[1], 128)).astype(np.float32))
              for shape, S in specs]
    # Our own 1 vs n threads first, alternated; the dense ones after, apart:
    # BLAS worker threads keep spinning for a while after a threaded call and
    # would take a core from whatever runs next.
    own = []
    for shape, S, X in inputs:
        d = {"S": S, "X": X}
        peers = [Peer("sparsecore", 1, lambda d: spmm(d["S"], d["X"], n_threads=1)),
                 Peer("sparsecore", tn, lambda d: spmm(d["S"], d["X"], n_threads=tn))]
        own.append(time_peers(Case("t", d), peers, rounds=rounds))
    time.sleep(0.5)
    for (shape, S, X), times in zip(inputs, own):
        W = S.toarray()
        dense = {}
        for t in (1, tn):
            with _Threads(t):
                dense[t] = time_peers(Case("d", (W, X)), [Peer("np_dense", t, lambda a: a[0] @ a[1])],
                                      rounds=rounds)[f"np_dense {t}t"]
        scale = paired_ratio(times, "sparsecore 1t", f"sparsecore {tn}t")
        dscale = np.median(dense[1]) / np.median(dense[tn])
        rows.append(["x".join(map(str, shape)), _fmt_name(S), fmt_ms(np.median(times["sparsecore 1t"])),
                     fmt_ratio(scale), fmt_ratio(dscale),
                     fmt_ratio(np.median(dense[tn]) / np.median(times[f"sparsecore {tn}t"]))])
        results.append({"section": "threads", "case": f"{shape} {_fmt_name(S)}", "threads": tn,
                        "self_scaling": scale, "dense_scaling": dscale, "times": times})
    print(f"\n### threads: {tn} threads over 1, B=128, float32 (own kernels paired; dense medians)")
    print(format_table(["shape", "format", "1t ms", f"sparsecore {tn}t/1t", f"np dense {tn}t/1t",
                        f"{tn}t vs dense {tn}t"], rows))


def section_convert(args, threads, rounds, results):
    """Dense -> structured conversion time in units of one dense GEMM (B=128)."""
    rows = []
    rng = np.random.default_rng(4)
    for shape in [(3072, 768), (4096, 4096)]:
        W = rng.standard_normal(shape).astype(np.float32)
        X = rng.standard_normal((shape[1], 128)).astype(np.float32)
        Wnm = nm_prune(W, 2, 4).toarray()
        Sb = block_prune(W, (16, 16), 0.1)
        Wb = Sb.toarray()
        Wcsr = sp.csr_array(block_prune(W, (1, 1), 0.1).toarray())
        d = {"W": W, "X": X}
        peers = [
            Peer("dense GEMM", 1, lambda d: d["W"] @ d["X"]),
            Peer("block_prune 16x16", 1, lambda d: block_prune(d["W"], (16, 16), 0.1)),
            Peer("block_prune 1x1", 1, lambda d: block_prune(d["W"], (1, 1), 0.1)),
            Peer("nm_prune 2:4", 1, lambda d: nm_prune(d["W"], 2, 4, n_threads=1)),
            Peer("from_dense 16x16", 1, lambda d: BlockSparseMatrix.from_dense(Wb, (16, 16))),
            Peer("from_dense 2:4", 1, lambda d: NMSparseMatrix.from_dense(Wnm, 2, 4, n_threads=1)),
            Peer("from_scipy csr->8x1", 1, lambda d: BlockSparseMatrix.from_scipy(Wcsr, (8, 1))),
            Peer("transpose 16x16", 1, lambda d: BlockSparseMatrix._from_trusted(
                Sb.blocks, Sb.indices, Sb.indptr, Sb.shape).T),
        ]
        with _Threads(1):
            times = time_peers(Case("convert", d), peers, rounds=rounds)
        g = np.median(times["dense GEMM 1t"])
        cells = ["x".join(map(str, shape)), fmt_ms(g)]
        rec = {}
        for p in peers[1:]:
            v = np.median(times[p.label]) / g
            rec[p.name] = v
            cells.append(f"{v:.2f}")
        rows.append(cells)
        results.append({"section": "convert", "case": str(shape), "gemm_units": rec, "times": times})
    print("\n### conversions, in dense GEMMs (W @ X with B=128, 1 thread); goal: about 3 or less")
    print(format_table(["shape", "GEMM ms"] + [p.name for p in peers[1:]], rows))


def section_real(args, threads, rounds, results):
    """The sparse DNN layer n1024-l1 (GraphChallenge, shipped): as CSR, as
    the 4x1 blocks that cover it, and pruned to 1:8 from its dense form."""
    A = sp.csr_array(datasets.load_matrix("n1024-l1")).astype(np.float32)
    specs = []
    for B in (1, 128):
        specs.append((("n1024-l1", "csr", B), BlockSparseMatrix.from_scipy(A, (1, 1)), B,
                      A.shape[0] * A.shape[1] / A.nnz))
        S4 = BlockSparseMatrix.from_scipy(A, (4, 1))
        specs.append((("n1024-l1", "4x1", B), S4, B, 1 / S4.density))
    with _Threads(1):
        _run_cases(specs, 1, rounds, results, "real data: sparse DNN layer n1024-l1 (1024x1024)",
                   ["matrix", "format", "B"])


SECTIONS = {
    "goals": section_goals,
    "shapes": section_shapes,
    "nm": section_nm,
    "f64": section_f64,
    "backward": section_backward,
    "threads": section_threads,
    "convert": section_convert,
    "real": section_real,
}


def run(args):
    threads = thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    names = [n for n in SECTIONS if not args.cases or n in args.cases]
    torch = _torch()
    peers = "numpy dense (OpenBLAS), scipy CSR/BSR" + (
        f", torch {torch.__version__} CSR/BSR (MKL)" if torch is not None else " (torch not installed)")
    print(f"\n## spmm: Y = S @ X against {peers}")
    print(f"# ratios are time(numpy dense)/time(peer) at the same thread count, > 1 is faster; "
          f"'of ideal' divides by 1/(1-sparsity); medians of {rounds} rotated rounds")
    results = []
    for name in names:
        SECTIONS[name](args, threads, rounds, results)
    _summary(results)
    if args.json:
        write_json(args.json, {"suite": "spmm", "threads": threads, "results": results})


def _summary(results):
    """The issue's goal figures from the runs above."""
    def get(section, pred):
        return [r for r in results if r["section"].startswith(section) and pred(r)]
    lines = []
    goals = get("goals", lambda r: True)
    for fmt, targets in (("16x16", [1.2, 2, 3, 6, 10]), ("8x8", [1.2, 2, 3, 6, 10]),
                         ("16x1", [1.0, 1.7, 2.5, 5, 9]), ("8x1", [1.0, 1.7, 2.5, 5, 9]),
                         ("4x1", [1.0, 1.7, 2.5, 5, 9]), ("csr", [0.7, 1.1, 1.8, 3.5, 6])):
        for s, goal in zip(SPARSITIES, targets):
            hit = [r for r in goals if r["case"] == f"{fmt} {s:.0%}"]
            if hit:
                v = hit[0]["speedup"]
                lines.append((f"{fmt} at {s:.0%}, 3072x768 B=128 (goal {goal}x)", v, goal))
    for r in get("N:M", lambda r: r["case"].endswith(" 128")):
        pat = r["case"].split()[1]
        goal = {"2:4": 1.25, "1:4": 2.2, "2:8": 2.2, "1:8": 4.0}[pat]
        lines.append((f"N:M {r['case']} (goal {goal}x)", r["speedup"], goal))
    for r in get("shapes", lambda r: r["case"].endswith(" 1") and (" 16x16 " in r["case"] or " csr " in r["case"])):
        goal = 6.0 if "16x16" in r["case"] else 3.5
        lines.append((f"GEMV {r['case']} at 90 % (goal {goal}x)", r["speedup"], goal))
    if lines:
        print("\n### goal summary (1 thread, float32; speedup over numpy dense)")
        print(format_table(["goal", "measured", "met"],
                           [[t, fmt_ratio(v), "yes" if v >= g else "no"] for t, v, g in lines]))
    peer_lines = []
    for label, sel, goal in (("block formats", lambda r: r["case"].split()[0] not in ("csr",) and "x" in r["case"].split()[0], 3.0),
                             ("csr", lambda r: r["case"].split()[0] == "csr", 2.0)):
        vals = [r["vs_best_peer"] for r in goals if sel(r) and r.get("vs_best_peer")]
        if vals:
            peer_lines.append([f"{label} vs best peer, goals section (goal {goal}x)",
                               f"min {min(vals):.2f}x, median {np.median(vals):.2f}x"])
    vals = [r["vs_best_peer"] for r in get("N:M", lambda r: r["case"].endswith(" 128")) if r.get("vs_best_peer")]
    if vals:
        peer_lines.append(["N:M vs best peer, B=128 (goal 4x)", f"min {min(vals):.2f}x, median {np.median(vals):.2f}x"])
    for r in get("backward", lambda r: True):
        peer_lines.append([f"S.T @ G throughput / S @ X, {r['case']} (goal 0.8)", f"{1 / r['bwd_over_fwd']:.2f}"])
    for r in get("threads", lambda r: True):
        peer_lines.append([f"self-scaling {r['case']} (goal 1.7x)", fmt_ratio(r["self_scaling"])])
    for r in get("convert", lambda r: True):
        worst = max(r["gemm_units"].items(), key=lambda kv: kv[1])
        peer_lines.append([f"conversions {r['case']}: slowest (goal about 3 GEMMs)", f"{worst[0]}: {worst[1]:.2f}"])
    if peer_lines:
        print()
        print(format_table(["other goals", "measured"], peer_lines))
