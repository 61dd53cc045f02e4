"""What this copy of sparsecore is and how it was built."""
import os
import platform

from sparsecore import _build_info
from sparsecore._ext import _openmp_helpers

__all__ = ["build_config", "show_config"]


def build_config():
    """Return the version, build and threading facts as a dict."""
    return {
        "version": _build_info.VERSION,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "compiler": _build_info.COMPILER,
        "cython": _build_info.CYTHON,
        "meson": _build_info.MESON,
        "buildtype": _build_info.BUILDTYPE,
        "openmp": _openmp_helpers.openmp_enabled(),
        "openmp_version": _build_info.OPENMP_VERSION or None,
        "simd_clones": _openmp_helpers.build_has_target_clones(),
        "cpu_avx2_fma": _openmp_helpers.cpu_has_avx2_fma(),
        "max_threads": _openmp_helpers.max_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
    }


def simd_variant(cfg=None):
    """The code path the hot loops take on this CPU, in words."""
    cfg = cfg or build_config()
    if cfg["simd_clones"] and cfg["cpu_avx2_fma"]:
        return "AVX2+FMA (picked at run time)"
    if cfg["simd_clones"]:
        return "baseline (this CPU lacks AVX2+FMA; AVX2 clones built)"
    return "baseline (no AVX2 clones in this build)"


def show_config():
    """Print the version, build (compiler, OpenMP, SIMD variant) and threads."""
    cfg = build_config()
    print(f"sparsecore {cfg['version']} on Python {cfg['python']} ({cfg['platform']})")
    print(f"  compiler      {cfg['compiler']} (Cython {cfg['cython']}, meson {cfg['meson']}, {cfg['buildtype']})")
    omp = f"yes (OpenMP {cfg['openmp_version']})" if cfg["openmp"] else "no: kernels run single-threaded"
    print(f"  OpenMP        {omp}")
    print(f"  SIMD          {simd_variant(cfg)}")
    env = cfg["omp_num_threads_env"]
    env_note = f", OMP_NUM_THREADS={env}" if env else ""
    print(f"  threads       {cfg['max_threads']} by default ({cfg['cpu_count']} CPUs{env_note})")
