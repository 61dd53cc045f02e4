"""What this copy of sparsecore is and how it was built."""
import os
import platform

from sparsecore import _build_info
from sparsecore._ext import _openmp_helpers, _spmm

__all__ = ["build_config", "get_simd", "set_simd", "show_config"]

_SIMD_REQUESTS = ("auto", "avx2", "avx512")


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
        "simd_avx512_kernels": _spmm.build_has_avx512(),
        "cpu_avx512": _spmm.cpu_has_avx512(),
        "simd": get_simd(),
        "max_threads": _openmp_helpers.max_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
    }


def get_simd():
    """The widest SIMD instruction set the structured SpMM kernels use now.

    Returns
    -------
    {"avx512", "avx2", "baseline"}
        "avx512": the N:M, block and CSR products over batches wider than
        one 32-byte vector, and float32 N:M products with a vector, run
        their AVX-512 instances (the other kernels their AVX2+FMA clones);
        "avx2": the AVX2+FMA clones everywhere; "baseline": the portable
        code (no AVX2 on this CPU, or a build without clones).

    See Also
    --------
    set_simd : limit or restore the level.
    """
    return _spmm.simd()


def set_simd(level):
    """Choose the widest SIMD instruction set the SpMM kernels may use.

    Where both levels run a panel product (block-sparse and CSR products,
    N:M products of more than 8 columns, in float64 or of other patterns)
    they compute it in the same order (each output entry sums its terms one
    by one with fused multiply-adds), so there the level changes speed, not
    results; a float32 N:M product of 1 to 8 columns with N a power of two
    and M of 2N or 4N (2:4, 1:4, 4:8, ...) sums 16 lanes at a time under
    AVX-512 and 8 under AVX2, so the two agree to rounding. The level holds
    for the whole process, all threads.

    Parameters
    ----------
    level : {"auto", "avx2", "avx512"}
        "auto" (the default at import): the widest this CPU and build have;
        "avx2": never AVX-512; "avx512": require it. A value
        :func:`get_simd` returned ("baseline" too) restores that level.

    Returns
    -------
    str
        The level in force before the call, as :func:`get_simd` reports
        it; pass it back to restore.

    Raises
    ------
    ValueError
        For another name, or "avx512" on a CPU or build without it.

    Examples
    --------
    >>> import sparsecore
    >>> before = sparsecore.set_simd("avx2")
    >>> sparsecore.get_simd() in ("avx2", "baseline")
    True
    >>> _ = sparsecore.set_simd("auto")
    """
    if not isinstance(level, str) or level not in _SIMD_REQUESTS + ("baseline",):
        raise ValueError(f"sparsecore.set_simd: level must be one of {_SIMD_REQUESTS}, "
                         f"got {level!r}")
    if level == "avx512" and not (_spmm.build_has_avx512() and _spmm.cpu_has_avx512()):
        why = ("this build has no AVX-512 kernels" if not _spmm.build_has_avx512()
               else "this CPU lacks AVX-512 (F, BW, DQ, VL)")
        raise ValueError(f"sparsecore.set_simd: 'avx512' is not available: {why}")
    before = get_simd()
    # "baseline" (what get_simd reports without AVX2) restores to no AVX-512
    _spmm.set_simd("avx2" if level == "baseline" else level)
    return before


def simd_variant(cfg=None):
    """The code path the hot loops take on this CPU, in words."""
    cfg = cfg or build_config()
    if cfg["simd"] == "avx512":
        return "AVX-512 for the SpMM products, AVX2+FMA elsewhere (picked at run time)"
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
