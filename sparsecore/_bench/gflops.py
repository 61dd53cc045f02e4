"""gflops suite: the useful GF/s of every compiled kernel, beside the dense
GEMM peak measured in the same run, with the machine it ran on.

Ratios against a peer hide how fast the machine is: numpy's float32 GEMM
runs anywhere from 15 to 170 GF/s on one core of the machines this package
is measured on. This suite states absolute rates instead, and the facts that
explain them (CPU model, SIMD flags, clock, load, BLAS, the SIMD path the
kernels take).

*Useful* flops count only the multiply-adds the sparse product must do, two
flops each: ``2 * stored values * batch`` for SpMM (N:M, block-sparse, CSR)
and SDDMM, ``2 * sum_k nnz(A[:, k]) * nnz(B[k, :])`` for SpGEMM (the scalar
products of Gustavson's algorithm), ``2 * stored block entries * batch`` for
a Monarch product. A peer that computes more (numpy's dense product of the
same matrix) is rated on the same useful flops, so its rate says how fast it
delivers the same result.

``--cases`` picks groups: ``nm``, ``block``, ``csr``, ``spgemm``,
``monarch``, ``sddmm`` (the dense peak is always measured). ``sparsecore
bench --simd LEVEL`` runs every suite on a forced SIMD level
(``sparsecore.set_simd``).
"""
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from sparsecore import datasets
from sparsecore._bench import _harness as h
from sparsecore._bench._harness import cpu_facts
from sparsecore._bench._registry import available_matrices, generated_matrix, optional, real_matrix
from sparsecore._bench.monarch import stacked_matmul
from sparsecore._bench.spmm import make_block, make_nm
from sparsecore.formats import MonarchMatrix
from sparsecore.ops import sddmm, spgemm, spmm

__all__ = [
    "GROUPS",
    "Kernel",
    "dense_peaks",
    "kernels",
    "machine_facts",
    "measure_clock",
    "measure_kernel",
    "run",
    "spgemm_flops",
    "spmm_flops",
]

#: The kernel groups of ``--cases``.
GROUPS = ("nm", "block", "csr", "spgemm", "monarch", "sddmm")
# SpGEMM inputs: real matrices (read from the matrix folder, skipped when
# absent) and generated ones (named as _registry.generated_matrix reads them)
SPGEMM_REAL = ("bcsstk13", "pushpull")
SPGEMM_GENERATED = ("er50k", "lap3d27_30")
QUICK_SKIPS = {"pushpull", "lap3d27_30"}
# seconds of pause before a threaded sample: OpenBLAS (and OpenMP) threads
# spin for about 0.1 s after a threaded call and would take the cores of
# the next library's sample
_SETTLE = 0.15


# ---------------------------------------------------------------------------
# useful flop counts


def spmm_flops(S, batch):
    """Useful flops of ``S @ X`` with ``batch`` columns: ``2 * nnz * batch``
    (one multiply-add per stored value and column; explicit zeros and the
    zeros inside stored blocks count, since the kernel must multiply them)."""
    return 2 * int(S.nnz) * int(batch)


def spgemm_flops(A, B):
    """Useful flops of the sparse product ``A @ B``: two per scalar product
    ``A[i, k] * B[k, j]`` of stored entries, ``2 * sum_k nnz(A[:, k]) *
    nnz(B[k, :])``.

    Parameters
    ----------
    A, B : scipy.sparse matrices, shapes (m, k) and (k, n)

    Returns
    -------
    int
    """
    A = sp.csr_array(A)
    B = sp.csr_array(B)
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"A has {A.shape[1]} columns but B has {B.shape[0]} rows")
    col_counts = np.bincount(A.indices, minlength=A.shape[1]).astype(np.int64)
    row_counts = np.diff(B.indptr).astype(np.int64)
    return 2 * int(col_counts @ row_counts)


def monarch_flops(M, batch):
    """Useful flops of ``M @ X``: two per stored block entry and column."""
    return 2 * int(M.n_params) * int(batch)


# ---------------------------------------------------------------------------
# the machine


# A loop of 8 dependent register-register adds (rax += rsi) and a counted
# branch, as x86-64 machine code (System V calling convention: rdi holds the
# iteration count, rsi the addend). Each add waits for the one before, one
# cycle each, so an iteration takes 8 cycles at whatever clock the core runs
# now: cycles / wall time is the clock. Register operands, because some
# cores eliminate additions of small immediates at rename (0 cycles). It runs
# in a child process, so that a system which refuses executable memory costs
# a failed probe and never this process.
_CLOCK_PROBE = r"""
import ctypes, json, mmap, time
adds, n = 8, 1_000_000
body = bytes.fromhex("4801f0") * adds + bytes.fromhex("48ffcf")   # add rax, rsi; dec rdi
code = bytes.fromhex("31c0") + body + bytes([0x75, 256 - len(body) - 2]) + bytes.fromhex("c3")
mem = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
mem.write(code)
buf = ctypes.c_char.from_buffer(mem)
loop = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)(ctypes.addressof(buf))
best = float("inf")
for trial in range(15):
    t0 = time.perf_counter()
    total = loop(n, 1)
    best = min(best, time.perf_counter() - t0)
    assert total == adds * n, total
print(json.dumps({"mhz": adds * n / best / 1e6}))
"""


def measure_clock(timeout=20):
    """The core clock in MHz, measured: a chain of dependent integer adds
    (one per cycle) timed in a child process, fastest of 15 trials of 8 M
    cycles (a trial the scheduler interrupts only looks slower).

    Returns
    -------
    float or None
        None where it cannot be measured (not x86-64 Linux, executable
        memory refused, an implausible result); the clock is then the
        nominal one that /proc/cpuinfo reports.
    """
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        res = h.run_probe(_CLOCK_PROBE, timeout=timeout)
    except (subprocess.SubprocessError, OSError, ValueError, IndexError):
        return None
    mhz = res.get("mhz")
    return float(mhz) if mhz and 100 < mhz < 10_000 else None


def blas_facts():
    """numpy's BLAS as threadpoolctl sees it: ``{"name", "version",
    "architecture", "threading"}``, or ``{"name": "unknown"}``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"name": "unknown (threadpoolctl not installed)"}
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    mine = [i for i in blas if "numpy" in str(i.get("filepath", ""))] or blas
    if not mine:
        return {"name": "unknown"}
    i = mine[0]
    return {"name": i.get("internal_api"), "version": i.get("version"),
            "architecture": i.get("architecture"), "threading": i.get("threading_layer")}


def simd_path():
    """The SIMD level the SpMM kernels take now (``sparsecore.get_simd``)."""
    from sparsecore._config import get_simd

    return get_simd()


def machine_facts(threads, simd=None, clock=True):
    """Everything the header states, as a dict (stored in the JSON too).

    Parameters
    ----------
    threads : list of int
        Thread counts the run measures.
    simd : str, optional
        The SIMD path in words (default: :func:`simd_path`).
    clock : bool, default=True
        Measure the clock (:func:`measure_clock`).

    Returns
    -------
    dict
    """
    from sparsecore._config import build_config

    cpu = cpu_facts()
    cfg = build_config()
    torch = sys.modules.get("torch")
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    return {
        "cpu": cpu["model"],
        "cpus": os.cpu_count(),
        "cpus_usable": affinity,
        "machine": platform.machine(),
        "simd_flags": cpu["flags"],
        "cpu_mhz": cpu["mhz"],
        "nominal_ghz": cpu["nominal_ghz"],
        "measured_mhz": measure_clock() if clock else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "threads": list(threads),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "blas": blas_facts(),
        "simd_path": simd if simd is not None else simd_path(),
        "sparsecore": cfg["version"],
        "compiler": cfg["compiler"],
        "openmp": cfg["openmp"],
        "numpy": np.__version__,
        "scipy": __import__("scipy").__version__,
        "torch": None if torch is None else torch.__version__,
        "python": platform.python_version(),
    }


def _clock_words(facts):
    mhz = facts["cpu_mhz"]
    if mhz:
        lo, hi = min(mhz), max(mhz)
        reported = f"{lo:.0f} MHz" if hi - lo < 1 else f"{lo:.0f}-{hi:.0f} MHz"
        reported += " reported (/proc/cpuinfo)"
    elif facts["nominal_ghz"]:
        reported = f"{facts['nominal_ghz']:.2f} GHz nominal (model name)"
    else:
        reported = "not reported"
    measured = facts.get("measured_mhz")
    if measured:
        return f"{reported}; measured {measured:.0f} MHz (dependent adds, fastest of 15)"
    return f"{reported}; not measured here, so nominal"


def header_lines(facts):
    """The header: CPU, flags, clock, load, threads, BLAS and SIMD path.

    Parameters
    ----------
    facts : dict
        From :func:`machine_facts`.

    Returns
    -------
    list of str
    """
    flags = facts["simd_flags"]
    flags = "unknown (no /proc/cpuinfo flags)" if flags is None else (" ".join(flags) or "none")
    load = facts["load_average"]
    load = "unknown" if load is None else ", ".join(f"{x:.2f}" for x in load)
    b = facts["blas"]
    blas = " ".join(str(v) for v in (b.get("name"), b.get("version")) if v)
    extra = ", ".join(f"{k} {b[k]}" for k in ("architecture", "threading") if b.get(k))
    blas += f" ({extra})" if extra else ""
    torch = f"; torch {facts['torch']}" if facts.get("torch") else ""
    return [
        f"# CPU: {facts['cpu']} ({facts['machine']}); {facts['cpus']} CPUs, "
        f"{facts['cpus_usable']} usable",
        f"# SIMD flags: {flags}",
        f"# clock: {_clock_words(facts)}",
        f"# load average {load}; threads {', '.join(map(str, facts['threads']))}; "
        f"OMP_NUM_THREADS={facts['omp_num_threads'] or 'unset'}",
        f"# numpy {facts['numpy']} BLAS: {blas}; scipy {facts['scipy']}{torch}",
        f"# sparsecore {facts['sparsecore']} ({facts['compiler']}); SIMD path: {facts['simd_path']}",
    ]


# ---------------------------------------------------------------------------
# dense peak


def _gemm_size(gflops, seconds=0.1, lo=512, hi=2048):
    """The n (a multiple of 256) of an n x n x n product taking about
    ``seconds`` at ``gflops``."""
    n = (seconds * gflops * 1e9 / 2) ** (1 / 3)
    return int(min(hi, max(lo, 256 * round(n / 256))))


def dense_peaks(t, rounds, quick=False):
    """Dense GEMM rates at ``t`` threads: numpy float32 and float64 and,
    when torch is importable, torch.mm float32, each on square matrices of a
    size that takes about 0.1 s (0.03 s with ``quick``).

    Parameters
    ----------
    t : int
        Threads (BLAS and torch are set to it).
    rounds : int
    quick : bool, default=False

    Returns
    -------
    list of dict
        ``{"source", "dtype", "n", "threads", "ms", "gflops"}`` per product.
    """
    torch = optional("torch")
    rng = np.random.default_rng(0)
    out = []
    makers = [("numpy", np.float32), ("numpy", np.float64)]
    if torch is not None:
        makers.append(("torch", np.float32))
    with h.thread_limit(t):
        for source, dtype in makers:
            def operands(n):
                a = rng.standard_normal((n, n)).astype(dtype)
                b = rng.standard_normal((n, n)).astype(dtype)
                if source == "torch":
                    return torch.from_numpy(a), torch.from_numpy(b)
                return a, b
            mm = torch.mm if source == "torch" else np.matmul
            a, b = operands(512)
            if t > 1:  # the previous library's threads may still spin
                time.sleep(_SETTLE)
            mm(a, b)
            t0 = time.perf_counter()
            mm(a, b)
            probe = 2 * 512 ** 3 / max(time.perf_counter() - t0, 1e-6) / 1e9
            n = _gemm_size(probe, 0.03 if quick else 0.1)
            case = h.Case(f"{n}", operands(n))
            peer = h.Peer(f"{source} {np.dtype(dtype).name}", t, lambda ab: mm(ab[0], ab[1]))
            times = h.time_peers(case, [peer], rounds=rounds,
                                 settle=_SETTLE if t > 1 else 0.0)[peer.label]
            sec = float(np.median(times))
            out.append({"source": source, "dtype": np.dtype(dtype).name, "n": n, "threads": t,
                        "ms": sec * 1e3, "gflops": 2 * n ** 3 / sec / 1e9})
    return out


def peak_of(peaks, dtype, t):
    """The fastest dense rate of ``dtype`` at ``t`` threads in ``peaks``, or None."""
    rates = [p["gflops"] for p in peaks if p["dtype"] == np.dtype(dtype).name and p["threads"] == t]
    return max(rates) if rates else None


# ---------------------------------------------------------------------------
# kernels


@dataclass
class Kernel:
    """One measured product: ``ours(inputs, t)`` is the sparsecore call,
    ``peer(inputs)`` its peer (None: no peer), both doing ``flops`` useful
    flops."""

    group: str
    kernel: str
    shape: str
    dtype: str
    flops: int
    inputs: Any
    ours: Callable[[Any, int], Any]
    peer_name: str = None
    peer: Callable[[Any], Any] = None
    peer_threads: Callable[[int], int] = field(default=lambda t: t)


def _nm_kernel(n, m, batch, shape=(3072, 768)):
    S = make_nm(shape, n, m, np.float32)
    X = np.random.default_rng(1).standard_normal((shape[1], batch)).astype(np.float32)
    return Kernel("nm", f"N:M {n}:{m} SpMM", f"{shape[0]}x{shape[1]} @ B={batch}", "float32",
                  spmm_flops(S, batch), {"S": S, "X": X, "W": S.toarray()},
                  lambda d, t: spmm(d["S"], d["X"], n_threads=t),
                  "numpy dense", lambda d: d["W"] @ d["X"])


def _block_kernel(density, batch, shape=(3072, 768), bs=(16, 16)):
    S = make_block(shape, bs, 1 - density, np.float32)
    X = np.random.default_rng(1).standard_normal((shape[1], batch)).astype(np.float32)
    return Kernel("block", f"block {bs[0]}x{bs[1]} {density:.0%} SpMM",
                  f"{shape[0]}x{shape[1]} @ B={batch}", "float32",
                  spmm_flops(S, batch), {"S": S, "X": X, "W": S.toarray()},
                  lambda d, t: spmm(d["S"], d["X"], n_threads=t),
                  "numpy dense", lambda d: d["W"] @ d["X"])


def _csr_kernel(dtype, n=4096, density=0.01, batch=64):
    A = sp.csr_array(sp.random(n, n, density=density, format="csr", dtype=dtype,
                               random_state=np.random.default_rng(3)))
    X = np.random.default_rng(1).standard_normal((n, batch)).astype(dtype)
    return Kernel("csr", f"CSR {density:.0%} SpMM", f"{n}x{n} @ B={batch}", np.dtype(dtype).name,
                  spmm_flops(A, batch), {"A": A, "X": X},
                  lambda d, t: spmm(d["A"], d["X"], n_threads=t),
                  "scipy csr", lambda d: d["A"] @ d["X"], lambda t: 1)


def _spgemm_kernel(name, A, kind):
    A = sp.csr_array(A, dtype=np.float64)
    A.sort_indices()
    return Kernel("spgemm", f"SpGEMM A@A {name}", f"{A.shape[0]}x{A.shape[1]} nnz {A.nnz:,} ({kind})",
                  "float64", spgemm_flops(A, A), A,
                  lambda a, t: spgemm(a, a, n_threads=t),
                  "scipy", lambda a: a @ a, lambda t: 1)


def _monarch_kernel(n=4096, batch=256):
    M = MonarchMatrix.random((n, n), dtype=np.float32, random_state=0)
    X = np.random.default_rng(1).standard_normal((n, batch)).astype(np.float32)
    return Kernel("monarch", f"Monarch {M.n_blocks[0]} blocks", f"{n}x{n} @ B={batch}", "float32",
                  monarch_flops(M, batch), {"M": M, "X": X},
                  lambda d, t: d["M"].matmul(d["X"], n_threads=t),
                  "numpy stacked", lambda d: stacked_matmul(d["M"].right, d["M"].left, d["X"]))


def _sddmm_kernel(fmt, batch=128, shape=(3072, 768)):
    S = make_nm(shape, 2, 4, np.float32) if fmt == "2:4" else \
        make_block(shape, (16, 16), 0.9, np.float32)
    rng = np.random.default_rng(2)
    G = rng.standard_normal((shape[0], batch)).astype(np.float32)
    X = rng.standard_normal((shape[1], batch)).astype(np.float32)
    label = "2:4" if fmt == "2:4" else "block 16x16 10%"
    return Kernel("sddmm", f"SDDMM {label}", f"{shape[0]}x{shape[1]}, B={batch}", "float32",
                  spmm_flops(S, batch), {"S": S, "G": G, "X": X},
                  lambda d, t: sddmm(d["G"], d["X"], d["S"], n_threads=t),
                  "numpy dense", lambda d: d["G"] @ d["X"].T)


def kernels(quick=False, groups=None, matrix_dir=None, skipped=None):
    """The kernels to measure, built one at a time (a generator).

    Parameters
    ----------
    quick : bool, default=False
        Leave out the largest SpGEMM inputs.
    groups : collection of str, optional
        Only these of :data:`GROUPS`.
    matrix_dir : str or path, optional
        Where real matrices are read (default: the registry's folder).
    skipped : list, optional
        Receives ``(what, why)`` of each case that cannot run here.

    Yields
    ------
    Kernel
    """
    skipped = [] if skipped is None else skipped
    groups = set(GROUPS if groups is None else groups)
    builders = []
    if "nm" in groups:
        builders += [lambda b=b: _nm_kernel(2, 4, b) for b in (1, 8, 128, 1024)]
        builders.append(lambda: _nm_kernel(1, 4, 128))
    if "block" in groups:
        builders += [lambda d=d: _block_kernel(d, 128) for d in (0.1, 0.5)]
    if "csr" in groups:
        builders += [lambda dt=dt: _csr_kernel(dt) for dt in (np.float32, np.float64)]
    if "spgemm" in groups:
        present = set(available_matrices(SPGEMM_REAL, matrix_dir))
        for name in SPGEMM_REAL:
            if quick and name in QUICK_SKIPS:
                continue
            if name in present:
                builders.append(lambda name=name: _spgemm_kernel(
                    name, real_matrix(name, matrix_dir), "real"))
            else:
                skipped.append((f"SpGEMM A@A {name}",
                                f"{name}.mtx is neither in the matrix folder nor shipped"))
        for name in SPGEMM_GENERATED:
            if not (quick and name in QUICK_SKIPS):
                builders.append(lambda name=name: _spgemm_kernel(
                    name, generated_matrix(name), "generated"))
    if "monarch" in groups:
        builders.append(_monarch_kernel)
    if "sddmm" in groups:
        builders += [lambda f=f: _sddmm_kernel(f) for f in ("block", "2:4")]
    for build in builders:
        yield build()


def measure_kernel(k, t, rounds, peak=None):
    """Time ``k`` (and its peer, rounds alternated) at ``t`` threads.

    Parameters
    ----------
    k : Kernel
    t : int
    rounds : int
    peak : float, optional
        The dense GF/s of the kernel's dtype at ``t`` threads.

    Returns
    -------
    dict
        The record of the JSON: ``ms``, ``gflops``, ``fraction_of_peak``,
        ``peer``, ``peer_gflops`` and the raw ``times``.
    """
    peers = [h.Peer("sparsecore", t, lambda d: k.ours(d, t))]
    if k.peer is not None:
        peers.append(h.Peer(k.peer_name, k.peer_threads(t), k.peer))
    case = h.Case(k.kernel, k.inputs)
    times = h.time_peers(case, peers, rounds=rounds, settle=_SETTLE if t > 1 else 0.0)
    sec = float(np.median(times[peers[0].label]))
    gf = k.flops / sec / 1e9
    rec = {"group": k.group, "kernel": k.kernel, "shape": k.shape, "dtype": k.dtype,
           "threads": t, "flops": int(k.flops), "ms": sec * 1e3, "gflops": gf,
           "peak_gflops": peak, "fraction_of_peak": gf / peak if peak else None,
           "peer": None, "peer_ms": None, "peer_gflops": None, "times": times}
    if k.peer is not None:
        psec = float(np.median(times[peers[1].label]))
        rec.update(peer=peers[1].label, peer_ms=psec * 1e3, peer_gflops=k.flops / psec / 1e9)
    return rec


# ---------------------------------------------------------------------------
# the table


def _gf(x):
    if x is None or x != x:
        return "-"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _pct(x):
    return "-" if x is None else f"{100 * x:.0f}%" if x >= 0.1 else f"{100 * x:.1f}%"


def table_rows(peaks, results):
    """Rows of the printed table: the dense peaks, then the kernels."""
    rows = []
    for p in peaks:
        top = peak_of(peaks, p["dtype"], p["threads"])
        rows.append([f"dense GEMM ({p['source']})", f"{p['n']}x{p['n']}x{p['n']}", p["dtype"],
                     p["threads"], h.fmt_ms(p["ms"] / 1e3), _gf(p["gflops"]),
                     _pct(p["gflops"] / top), "-", "-"])
    for r in results:
        rows.append([r["kernel"], r["shape"], r["dtype"], r["threads"], h.fmt_ms(r["ms"] / 1e3),
                     _gf(r["gflops"]), _pct(r["fraction_of_peak"]), r["peer"] or "-",
                     _gf(r["peer_gflops"])])
    return rows


HEADER = ["kernel", "shape", "dtype", "threads", "ms", "useful GF/s", "% of dense peak",
          "peer", "peer GF/s"]


def run(args):
    """``sparsecore bench gflops``: prints the header and one table; writes
    everything to ``args.json`` when given.

    Parameters
    ----------
    args : argparse.Namespace
        The ``bench`` options (``threads``, ``rounds``, ``quick``,
        ``cases``, ``matrix_dir``, ``json``, ``simd``).
    """
    groups = None
    if args.cases:
        unknown = [c for c in args.cases if c not in GROUPS]
        if unknown:
            raise ValueError(f"gflops --cases: unknown group(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(GROUPS)}")
        groups = args.cases
    threads = sorted(set(args.threads)) if args.threads else [1]
    rounds = 3 if args.quick else args.rounds
    folder = datasets.find_matrix_dir(getattr(args, "matrix_dir", None))
    optional("torch")  # imported before the facts, so they name its version
    facts = machine_facts(threads)
    print("\n## gflops: useful GF/s of each kernel beside the dense GEMM peak of this run")
    for line in header_lines(facts):
        print(line)
    print("# useful GF/s = 2 x the multiply-adds the sparse product must do (stored values x "
          "batch; SpGEMM: scalar products) / time;")
    print(f"# '% of dense peak' divides by the fastest dense GEMM of the same dtype and "
          f"threads; the peer is rated on the same useful flops; medians of {rounds} rounds\n")
    peaks, results, skipped = [], [], []
    for t in threads:
        peaks += dense_peaks(t, rounds, quick=args.quick)
    for k in kernels(args.quick, groups, folder, skipped):
        for t in threads:
            results.append(measure_kernel(k, t, rounds, peak_of(peaks, k.dtype, t)))
    facts["measured_mhz_end"] = measure_clock()
    facts["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    print(h.format_table(HEADER, table_rows(peaks, results)))
    for what, why in skipped:
        print(f"# skipped {what}: {why}")
    if facts["measured_mhz_end"]:
        print(f"# clock at the end: measured {facts['measured_mhz_end']:.0f} MHz")
    if args.json:
        h.write_json(args.json, {"suite": "gflops", "machine": facts, "threads": threads,
                                 "rounds": rounds, "peaks": peaks, "results": results,
                                 "skipped": [{"case": w, "reason": y} for w, y in skipped]})
