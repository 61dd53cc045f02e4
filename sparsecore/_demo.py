"""``python -m sparsecore demo``: a short tour on data shipped in the package."""
import statistics
import time

import numpy as np

from sparsecore import datasets
from sparsecore._config import build_config, simd_variant
from sparsecore._threads import effective_n_threads

__all__ = ["run_demo"]


def _median_time(fn, rounds=5):
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def demo_spgemm(n_threads):
    from sparsecore import spgemm

    print("SpGEMM: C = A @ A on SuiteSparse matrices shipped in the package")
    print(f"  {'matrix':<14}{'shape':>12}{'nnz(A)':>9}{'nnz(C)':>10}"
          f"{'max |diff|':>12}{'vs scipy':>10}{'vs scipy+sort':>15}")
    for name in ("olm1000", "dwt_992", "bcspwr10", "hangGlider_2", "n1024-l1"):
        A = datasets.load_matrix(name)
        C = spgemm(A, A, n_threads=n_threads)
        ref = A @ A
        ref.sum_duplicates()
        diff = abs(C - ref).max() if C.nnz else 0.0
        t_sc = _median_time(lambda: spgemm(A, A, n_threads=n_threads))
        t_sp = _median_time(lambda: A @ A)
        t_sort = _median_time(lambda: (A @ A).sort_indices())
        shape = f"{A.shape[0]}x{A.shape[1]}"
        print(f"  {name:<14}{shape:>12}{A.nnz:>9,}{C.nnz:>10,}{diff:>12.1e}"
              f"{t_sp / t_sc:>9.2f}x{t_sort / t_sc:>14.2f}x")
    print("  (ratios > 1: sparsecore is faster; its output is sorted, scipy's is not)")


# Later capabilities append their sections here.
SECTIONS = [demo_spgemm]


def run_demo(n_threads=None):
    """Run every demo section and print what it shows."""
    cfg = build_config()
    nt = effective_n_threads(n_threads)
    print(f"sparsecore {cfg['version']}: OpenMP {'on' if cfg['openmp'] else 'off'}, "
          f"{nt} thread(s), SIMD {simd_variant(cfg)}\n")
    t0 = time.perf_counter()
    for section in SECTIONS:
        section(n_threads)
        print()
    print(f"demo finished in {time.perf_counter() - t0:.1f} s")
