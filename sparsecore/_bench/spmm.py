"""SpMM suite: block-sparse, N:M and CSR products against numpy dense
(OpenBLAS at the same thread count), scipy CSR/BSR and, when installed, torch
CSR/BSR (MKL). Every ratio is a median over rounds of side-by-side calls.

Sections (``--cases`` picks some): goals (sparsity sweep, 3072x768, B=128),
shapes (shape x batch at 90 %), nm (N:M patterns), f64, backward (S.T @ G,
layer products, SDDMM), threads (self-scaling), convert (pruning and format
conversions in units of one dense GEMM), epilogue (bias and GELU applied by
the kernel against after it), decode (1 to 8 columns: 2:4, blocks and CSR
at 50 %), real (a sparse DNN layer shipped in the package).

Registers the families ``spmm`` (Y = S @ X beside the peers), ``spmm.layer``
(the products of a sparse layer), ``spmm.epilogue`` (a layer's product with
its bias and activation) and ``spmm.convert`` (conversions). A case
is named ``"<shape> <format> <sparsity>% <batch>"`` (``"3072x768 16x16 90%
128"``), ``"<shape> <n>:<m> <batch>"`` for N:M, with ``" float64"`` appended
for double precision; a shipped matrix takes the shape's place
(``"n1024-l1 4x1 128"``, its own sparsity).
"""
import time

import numpy as np
import scipy.sparse as sp

from sparsecore import datasets
from sparsecore.formats import BlockShape, BlockSparseMatrix, NMSparseMatrix
from sparsecore.ops import block_prune, nm_prune, sddmm, spmm
from sparsecore._bench import _harness as h
from sparsecore._bench._registry import Family, optional, register

Case, Peer = h.Case, h.Peer

__all__ = ["run", "SECTIONS", "make_block", "make_nm", "case_name", "make_case"]

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


def _fmt_name(S):
    if isinstance(S, BlockSparseMatrix):
        r, c = S.block_shape
        return "csr" if (r, c) == (1, 1) else f"{r}x{c}"
    if isinstance(S, NMSparseMatrix):
        return str(S.pattern)
    return "csr"


def case_name(shape, fmt, batch, sparsity=None, dtype=np.float32):
    """The registry name of a product case (see the module docstring)."""
    where = shape if isinstance(shape, str) else "x".join(map(str, shape))
    parts = [where, fmt] + ([] if ":" in fmt or sparsity is None else [f"{sparsity:.0%}"])
    parts.append(str(batch))
    if np.dtype(dtype) != np.float32:
        parts.append(np.dtype(dtype).name)
    return " ".join(parts)


def _matrix(name):
    """(S, ideal speedup, batch) of a case name."""
    tokens = name.split()
    dtype = np.dtype(tokens.pop()) if tokens[-1].startswith("float") else np.dtype(np.float32)
    where, fmt, batch = tokens[0], tokens[1], int(tokens[-1])
    if "x" not in where or not where.replace("x", "").isdigit():  # a shipped matrix
        A = sp.csr_array(datasets.load_matrix(where)).astype(dtype)
        bs = (1, 1) if fmt == "csr" else tuple(int(v) for v in fmt.split("x"))
        S = BlockSparseMatrix.from_scipy(A, bs)
        ideal = A.shape[0] * A.shape[1] / A.nnz if fmt == "csr" else 1 / S.density
        return S, ideal, batch
    shape = tuple(int(v) for v in where.split("x"))
    if ":" in fmt:
        n, m = (int(v) for v in fmt.split(":"))
        return make_nm(shape, n, m, dtype), m / n, batch
    sparsity = float(tokens[2].rstrip("%")) / 100
    bs = (1, 1) if fmt == "csr" else tuple(int(v) for v in fmt.split("x"))
    return make_block(shape, bs, sparsity, dtype), 1 / (1 - sparsity), batch


def _square_blocks(S):
    return isinstance(S, BlockSparseMatrix) and S.block_shape.rows == S.block_shape.cols > 1


def make_case(name):
    """Case of ``S @ X``: inputs for every peer (dense W, scipy and torch copies)."""
    S, ideal, B = _matrix(name)
    X = np.random.default_rng(1).standard_normal((S.shape[1], B)).astype(S.dtype)
    if B == 1:
        X = X[:, 0].copy()
    W = S.toarray()
    d = {"S": S, "X": X, "W": W, "csr": S.to_scipy("csr")}
    if isinstance(S, BlockSparseMatrix) and S.block_shape != (1, 1) \
            and S.shape[0] % S.block_shape.rows == 0 and S.shape[1] % S.block_shape.cols == 0:
        d["bsr"] = S.to_scipy("bsr")
    torch = optional("torch")
    if torch is not None:
        d["t_X"] = torch.from_numpy(X)
        Wt = torch.from_numpy(W)
        d["t_csr"] = Wt.to_sparse_csr()
        if _square_blocks(S):
            d["t_bsr"] = Wt.to_sparse_bsr(tuple(S.block_shape))
    return Case(name, d, {"ideal": ideal})


def _peers(case, t):
    """Peers computing S @ X at t threads; numpy dense first."""
    d = case.inputs
    peers = [
        Peer("numpy dense", t, lambda d: d["W"] @ d["X"]),
        Peer("sparsecore", t, lambda d: spmm(d["S"], d["X"], n_threads=t)),
    ]
    if t == 1:  # scipy.sparse is single-threaded
        peers.append(Peer("scipy csr", 1, lambda d: d["csr"] @ d["X"]))
        if "bsr" in d:
            peers.append(Peer("scipy bsr", 1, lambda d: d["bsr"] @ d["X"]))
    if "t_csr" in d:
        peers.append(Peer("torch csr", t, lambda d: d["t_csr"] @ d["t_X"]))
    if "t_bsr" in d:  # MKL's BSR (torch's CPU path) supports square blocks only
        peers.append(Peer("torch bsr", t, lambda d: d["t_bsr"] @ d["t_X"]))
    return peers


PEER_COLUMNS = ["scipy csr", "scipy bsr", "torch csr", "torch bsr"]
FAMILY = register(Family(
    "spmm", [case_name(sh, f, 128, s) for sh in [(3072, 768), (4096, 4096)]
             for f in ["16x16", "8x8", "8x1", "4x1", "csr"] for s in (0.5, 0.9)]
    + [case_name(sh, f, 128) for sh in [(3072, 768), (4096, 4096)]
       for f in ["2:4", "1:4", "2:8", "1:8"]],
    make_case, _peers, ["numpy dense", "sparsecore"] + PEER_COLUMNS))


def make_layer_case(name):
    """Case of a sparse layer's products: S, X (n x B), G (m x B), the
    batch-major Xb = X.T and Gb = G.T, and the dense W."""
    S, ideal, B = _matrix(name)
    m, n = S.shape
    rng = np.random.default_rng(2)
    cols = () if B == 1 else (B,)
    X = rng.standard_normal((n,) + cols).astype(S.dtype)
    G = rng.standard_normal((m,) + cols).astype(S.dtype)
    S.T  # build the cached transposed structure outside the timing, as in training
    return Case(name, {"S": S, "X": X, "G": G, "Xb": np.ascontiguousarray(X.T),
                       "Gb": np.ascontiguousarray(G.T), "W": S.toarray()}, {"ideal": ideal})


LAYER_OPERATIONS = {
    "S@X": lambda d, t: spmm(d["S"], d["X"], n_threads=t),
    "S.T@G": lambda d, t: spmm(d["S"].T, d["G"], n_threads=t),
    "Xb@S.T": lambda d, t: d["Xb"] @ d["S"].T,
    "Gb@S": lambda d, t: d["Gb"] @ d["S"],
    "sddmm": lambda d, t: sddmm(d["G"], d["X"], d["S"], n_threads=t),
    "dense G@X.T": lambda d, t: d["G"] @ d["X"].T,
    "dense W.T@G": lambda d, t: d["W"].T @ d["G"],
}
LAYER = register(Family(
    "spmm.layer", [case_name(sh, f, b, 0.9) for sh in SHAPES for f in ["16x16", "8x1", "csr", "2:4", "1:8"]
                   for b in [1, 16, 128, 512]],
    make_layer_case,
    lambda case, t: [Peer(op, t, lambda d, f=f: f(d, t)) for op, f in LAYER_OPERATIONS.items()],
    list(LAYER_OPERATIONS), kind="operations"))


def make_epilogue_case(name):
    """A layer case (batch-major X and Y) plus a bias: the product finished
    with bias and activation in the kernel, or after it."""
    case = make_layer_case(name)
    d = case.inputs
    m = d["S"].shape[0]
    d["b"] = np.random.default_rng(3).standard_normal(m).astype(d["S"].dtype)
    d["Yb"] = np.empty(d["Xb"].shape[:-1] + (m,), d["S"].dtype)
    return case


def _separate(act):
    """The product, then the bias and ``act`` as torch applies them (a layer's
    ``F.linear`` output followed by ``F.gelu`` or ``F.silu``)."""
    def run(d, t):
        import torch

        spmm(d["S"], d["Xb"].T, out=d["Yb"].T, n_threads=t)
        f = getattr(torch.nn.functional, act)
        return f(torch.from_numpy(d["Yb"]).add_(torch.from_numpy(d["b"])))
    return run


def _fused(act):
    return lambda d, t: spmm(d["S"], d["Xb"].T, out=d["Yb"].T, bias=d["b"], activation=act,
                             n_threads=t)


EPILOGUE_OPERATIONS = {
    "product": lambda d, t: spmm(d["S"], d["Xb"].T, out=d["Yb"].T, n_threads=t),
    "product+bias+gelu fused": _fused("gelu"),
    "product, then torch bias+gelu": _separate("gelu"),
    "product+bias+silu fused": _fused("silu"),
    "product, then torch bias+silu": _separate("silu"),
}


def _epilogue_peers(case, t):
    ops = dict(EPILOGUE_OPERATIONS)
    if optional("torch") is None:
        for op in list(ops):
            if op.startswith("product, then torch"):
                ops.pop(op)
    return [Peer(op, t, lambda d, f=f: f(d, t)) for op, f in ops.items()]


EPILOGUE = register(Family(
    "spmm.epilogue", [case_name("3072x768", f, b, 0.5 if f == "16x16" else None)
                      for f in ["2:4", "16x16"] for b in [1, 1024]],
    make_epilogue_case, _epilogue_peers, list(EPILOGUE_OPERATIONS), kind="operations"))


def make_convert_case(name):
    """A dense float32 weight of shape ``name`` and what the conversions start from."""
    shape = tuple(int(v) for v in name.split("x"))
    rng = np.random.default_rng(4)
    W = rng.standard_normal(shape).astype(np.float32)
    Sb = block_prune(W, (16, 16), 0.1)
    return Case(name, {"W": W, "X": rng.standard_normal((shape[1], 128)).astype(np.float32),
                       "Wnm": nm_prune(W, 2, 4).toarray(), "Sb": Sb, "Wb": Sb.toarray(),
                       "Wcsr": sp.csr_array(block_prune(W, (1, 1), 0.1).toarray())})


CONVERSIONS = {
    "dense GEMM": lambda d: d["W"] @ d["X"],
    "block_prune 16x16": lambda d: block_prune(d["W"], (16, 16), 0.1),
    "block_prune 1x1": lambda d: block_prune(d["W"], (1, 1), 0.1),
    "nm_prune 2:4": lambda d: nm_prune(d["W"], 2, 4, n_threads=1),
    "from_dense 16x16": lambda d: BlockSparseMatrix.from_dense(d["Wb"], (16, 16)),
    "from_dense 2:4": lambda d: NMSparseMatrix.from_dense(d["Wnm"], 2, 4, n_threads=1),
    "from_scipy csr->8x1": lambda d: BlockSparseMatrix.from_scipy(d["Wcsr"], (8, 1)),
    "transpose 16x16": lambda d: BlockSparseMatrix._from_trusted(
        d["Sb"].blocks, d["Sb"].indices, d["Sb"].indptr, d["Sb"].shape).T,
}
CONVERT = register(Family(
    "spmm.convert", ["3072x768", "4096x4096"], make_convert_case,
    lambda case, t: [Peer(op, 1, f) for op, f in CONVERSIONS.items()],
    list(CONVERSIONS), kind="operations"))


def _time(case, peers, rounds):
    """time_peers without the peers whose first call is too slow."""
    kept = []
    for p in peers:
        t0 = time.perf_counter()
        p.run(case.inputs)
        if time.perf_counter() - t0 <= MAX_CALL or p.name in ("numpy dense", "sparsecore"):
            kept.append(p)
    return h.time_peers(case, kept, rounds=rounds)


def _row(case, times, t):
    base = f"numpy dense {t}t"
    ours = f"sparsecore {t}t"
    ideal = case.info["ideal"]
    sc = h.paired_ratio(times, base, ours)
    cells = [h.fmt_ms(np.median(times[base])), h.fmt_ratio(sc), f"{sc / ideal:.2f}"]
    best = None
    for name in PEER_COLUMNS:
        label = f"{name} {1 if name.startswith('scipy') else t}t"
        if label in times:
            r = h.paired_ratio(times, base, label)
            cells.append(h.fmt_ratio(r))
            best = r if best is None or r > best else best
        else:
            cells.append("-")
    cells.append(h.fmt_ratio(sc / best) if best else "-")
    return cells, {"speedup": sc, "fraction_of_ideal": sc / ideal,
                   "best_peer": best, "vs_best_peer": sc / best if best else None}


HEADER_TAIL = ["dense ms", "sparsecore", "of ideal"] + [p + " x" for p in PEER_COLUMNS] + ["vs best peer"]


def _run_cases(names, t, rounds, results, title):
    """Time the ``spmm`` cases ``names`` at t threads; prints one table."""
    rows = []
    with h.thread_limit(t):
        for name in names:
            case = make_case(name)
            times = _time(case, _peers(case, t), rounds)
            cells, rec = _row(case, times, t)
            rows.append([name, f"{case.info['ideal']:.1f}"] + cells)
            results.append({"section": title, "case": name, "threads": t, **rec, "times": times})
    print(f"\n### {title} ({t} thread{'s' if t > 1 else ''})")
    print(h.format_table(["case", "ideal"] + HEADER_TAIL, rows))


def _fmt(bs):
    return "csr" if tuple(bs) == (1, 1) else "x".join(map(str, bs))


def section_goals(args, threads, rounds, results):
    sparsities = [0.5, 0.9] if args.quick else SPARSITIES
    names = [case_name((3072, 768), _fmt(bs), 128, s) for bs in GOAL_FORMATS for s in sparsities]
    _run_cases(names, 1, rounds, results,
               "goals: W 3072x768 @ X 768x128, float32 (speedup over numpy dense)")


def section_shapes(args, threads, rounds, results):
    batches = [1, 128] if args.quick else [1, 16, 128, 512]
    names = [case_name(shape, f, B, 0.9) for shape in SHAPES for f in ["16x16", "8x1", "csr"]
             for B in batches if not (args.quick and shape == (4096, 4096) and B > 128)]
    _run_cases(names, 1, rounds, results, "shapes x batch at 90 %, float32")


def section_nm(args, threads, rounds, results):
    shapes = [(3072, 768), (4096, 4096)] if args.quick else SHAPES
    names = [case_name(shape, f"{n}:{m}", B) for shape in shapes for n, m in NM_PATTERNS
             for B in ([128] if args.quick else [1, 128, 512])
             if not (shape == (4096, 4096) and B == 512)]
    _run_cases(names, 1, rounds, results, "N:M along the reduction axis, float32")


def section_f64(args, threads, rounds, results):
    names = [case_name((3072, 768), f, 128, s, np.float64) for f in ["16x16", "8x1", "csr"]
             for s in [0.5, 0.9]]
    names += [case_name((3072, 768), f"{n}:{m}", 128, dtype=np.float64) for n, m in NM_PATTERNS]
    _run_cases(names, 1, rounds, results, "float64, W 3072x768, B=128")


def section_backward(args, threads, rounds, results):
    """S.T @ G (input gradient) and the layer orientation against S @ X, and
    SDDMM (weight gradient on the pattern) against the dense G @ X.T."""
    rows = []
    names = [case_name((3072, 768), f, 128, 0.9) for f in ["16x16", "8x1", "csr", "2:4", "1:8"]]
    with h.thread_limit(1):
        for name in names:
            case = make_layer_case(name)
            S = case.inputs["S"]
            times = h.time_peers(case, LAYER.peers(case, 1), rounds=rounds)
            f = "S@X 1t"
            rec = {
                "bwd_over_fwd": h.paired_ratio(times, "S.T@G 1t", f),
                "layer_fwd_over_fwd": h.paired_ratio(times, "Xb@S.T 1t", f),
                "layer_bwd_over_fwd": h.paired_ratio(times, "Gb@S 1t", f),
                "bwd_vs_dense": h.paired_ratio(times, "dense W.T@G 1t", "S.T@G 1t"),
                "sddmm_vs_dense": h.paired_ratio(times, "dense G@X.T 1t", "sddmm 1t"),
            }
            ideal = 1 / S.density
            rows.append([name, f"{S.density:.3f}", h.fmt_ms(np.median(times[f])),
                         f"{1 / rec['bwd_over_fwd']:.2f}", f"{1 / rec['layer_fwd_over_fwd']:.2f}",
                         f"{1 / rec['layer_bwd_over_fwd']:.2f}", h.fmt_ratio(rec["bwd_vs_dense"]),
                         h.fmt_ratio(rec["sddmm_vs_dense"]), f"{rec['sddmm_vs_dense'] / ideal:.2f}"])
            results.append({"section": "backward", "case": name, "threads": 1, **rec,
                            "times": times})
    print("\n### backward and layer products, W 3072x768, B=128, float32 (1 thread)")
    print("# throughput relative to S @ X (1.00 = as fast); sddmm against the dense G @ X.T")
    print(h.format_table(["case", "density", "S@X ms", "S.T@G", "Xb@S.T", "Gb@S",
                          "S.T@G vs dense", "sddmm vs dense", "sddmm of ideal"], rows))


def section_threads(args, threads, rounds, results):
    tn = max(threads)
    if tn == 1:
        print("\n### threads: skipped (one thread available)")
        return
    rows = []
    names = [case_name((3072, 768), "16x16", 128, 0.9), case_name((3072, 768), "csr", 128, 0.9),
             case_name((3072, 768), "2:4", 128), case_name((4096, 4096), "16x16", 128, 0.9),
             case_name((4096, 4096), "8x1", 128, 0.7), case_name((4096, 4096), "2:8", 128)]
    cases = [make_case(n) for n in names]
    # Our own 1 vs n threads first, alternated; the dense ones after, apart:
    # BLAS worker threads keep spinning for a while after a threaded call and
    # would take a core from whatever runs next.
    own = [h.time_peers(c, [p for t in (1, tn) for p in _peers(c, t) if p.name == "sparsecore"],
                        rounds=rounds) for c in cases]
    time.sleep(0.5)
    for case, times in zip(cases, own):
        dense = {t: h.time_peers(case, [p for p in _peers(case, t) if p.name == "numpy dense"],
                                 rounds=rounds)[f"numpy dense {t}t"] for t in (1, tn)}
        scale = h.paired_ratio(times, "sparsecore 1t", f"sparsecore {tn}t")
        dscale = np.median(dense[1]) / np.median(dense[tn])
        rows.append([case.name, h.fmt_ms(np.median(times["sparsecore 1t"])),
                     h.fmt_ratio(scale), h.fmt_ratio(dscale),
                     h.fmt_ratio(np.median(dense[tn]) / np.median(times[f"sparsecore {tn}t"]))])
        results.append({"section": "threads", "case": case.name, "threads": tn,
                        "self_scaling": scale, "dense_scaling": dscale, "times": times})
    print(f"\n### threads: {tn} threads over 1, B=128, float32 (own kernels paired; dense medians)")
    print(h.format_table(["case", "1t ms", f"sparsecore {tn}t/1t", f"numpy dense {tn}t/1t",
                          f"{tn}t vs dense {tn}t"], rows))


def section_convert(args, threads, rounds, results):
    """Dense -> structured conversion time in units of one dense GEMM (B=128)."""
    rows = []
    for name in CONVERT.case_names():
        case = make_convert_case(name)
        peers = CONVERT.peers(case, 1)
        times = h.time_peers(case, peers, rounds=rounds)
        g = np.median(times["dense GEMM 1t"])
        cells = [name, h.fmt_ms(g)]
        rec = {}
        for p in peers[1:]:
            v = np.median(times[p.label]) / g
            rec[p.name] = v
            cells.append(f"{v:.2f}")
        rows.append(cells)
        results.append({"section": "convert", "case": name, "gemm_units": rec, "times": times})
    print("\n### conversions, in dense GEMMs (W @ X with B=128, 1 thread); goal: about 3 or less")
    print(h.format_table(["shape", "GEMM ms"] + list(CONVERSIONS)[1:], rows))


def section_epilogue(args, threads, rounds, results):
    """A layer's product finished by bias and GELU in the kernel, against
    the product alone and the product followed by torch's bias and GELU."""
    rows = []
    for name in EPILOGUE.case_names():
        case = make_epilogue_case(name)
        for t in threads:
            peers = EPILOGUE.peers(case, t)
            times = h.time_peers(case, peers, rounds=rounds)
            base = f"product {t}t"
            cells = [name, t, h.fmt_ms(np.median(times[base]))]
            rec = {p.name: h.paired_ratio(times, f"{p.name} {t}t", base) for p in peers[1:]}
            cells += [f"{rec.get(op, float('nan')):.2f}" for op in list(EPILOGUE_OPERATIONS)[1:]]
            rows.append(cells)
            results.append({"section": "epilogue", "case": name, "threads": t,
                            "time_over_product": rec, "times": times})
    print("\n### epilogue: time over the product alone (batch-major X and Y, float32)")
    print(h.format_table(["case", "threads", "product ms"] + list(EPILOGUE_OPERATIONS)[1:], rows))


def section_decode(args, threads, rounds, results):
    """A few columns at a time (token-by-token decoding, a beam): products
    bound by reading the weights, which the kernels read once for all
    columns."""
    shapes = [(3072, 768)] if args.quick else [(3072, 768), (5632, 2048)]
    batches = [1, 3] if args.quick else [1, 3, 8]
    names = []
    for shape in shapes:
        for B in batches:
            names.append(case_name(shape, "2:4", B))
            names += [case_name(shape, f, B, 0.5) for f in ("16x16", "8x1", "4x4", "2x2", "csr")]
    _run_cases(names, 1, rounds, results, "decoding: 1 to 8 columns, float32")


def section_real(args, threads, rounds, results):
    """The sparse DNN layer n1024-l1 (GraphChallenge, shipped): as CSR and as
    the 4x1 blocks that cover it."""
    names = [case_name("n1024-l1", f, B) for B in (1, 128) for f in ("csr", "4x1")]
    _run_cases(names, 1, rounds, results, "real data: sparse DNN layer n1024-l1 (1024x1024)")


SECTIONS = {
    "goals": section_goals,
    "shapes": section_shapes,
    "nm": section_nm,
    "f64": section_f64,
    "backward": section_backward,
    "threads": section_threads,
    "convert": section_convert,
    "epilogue": section_epilogue,
    "decode": section_decode,
    "real": section_real,
}


def run(args):
    threads = h.thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    names = [n for n in SECTIONS if not args.cases or n in args.cases]
    torch = optional("torch")
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
        h.write_json(args.json, {"suite": "spmm", "threads": threads, "results": results})


def _summary(results):
    """The target figures from the runs above, each against its target."""
    def get(section, pred):
        return [r for r in results if r["section"].startswith(section) and pred(r)]
    lines = []
    goals = get("goals", lambda r: True)
    for fmt, targets in (("16x16", [1.2, 2, 3, 6, 10]), ("8x8", [1.2, 2, 3, 6, 10]),
                         ("16x1", [1.0, 1.7, 2.5, 5, 9]), ("8x1", [1.0, 1.7, 2.5, 5, 9]),
                         ("4x1", [1.0, 1.7, 2.5, 5, 9]), ("csr", [0.7, 1.1, 1.8, 3.5, 6])):
        for s, goal in zip(SPARSITIES, targets):
            hit = [r for r in goals if r["case"] == case_name((3072, 768), fmt, 128, s)]
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
        print(h.format_table(["goal", "measured", "met"],
                           [[t, h.fmt_ratio(v), "yes" if v >= g else "no"] for t, v, g in lines]))
    peer_lines = []
    for label, sel, goal in (("block formats", lambda r: "x" in r["case"].split()[1], 3.0),
                             ("csr", lambda r: r["case"].split()[1] == "csr", 2.0)):
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
        peer_lines.append([f"self-scaling {r['case']} (goal 1.7x)", h.fmt_ratio(r["self_scaling"])])
    for r in get("convert", lambda r: True):
        worst = max(r["gemm_units"].items(), key=lambda kv: kv[1])
        peer_lines.append([f"conversions {r['case']}: slowest (goal about 3 GEMMs)", f"{worst[0]}: {worst[1]:.2f}"])
    if peer_lines:
        print()
        print(h.format_table(["other goals", "measured"], peer_lines))
