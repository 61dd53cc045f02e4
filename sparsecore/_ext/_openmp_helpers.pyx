"""Thread-count resolution and build/CPU facts for the compiled core."""
from sparsecore._ext._kernels cimport sc_cpu_has_avx2_fma, sc_build_has_target_clones

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define SC_OPENMP_ENABLED 1
    #else
    #define SC_OPENMP_ENABLED 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_num_procs(void) { return 1; }
    #endif
    """
    int SC_OPENMP_ENABLED
    int omp_get_max_threads() nogil
    int omp_get_num_procs() nogil


def openmp_enabled():
    """Return True when the compiled core was built with OpenMP."""
    return bool(SC_OPENMP_ENABLED)


def max_threads():
    """Threads an OpenMP region gets by default (honours OMP_NUM_THREADS and
    threadpoolctl limits); 1 without OpenMP."""
    return omp_get_max_threads()


def num_procs():
    """Processors OpenMP sees; 1 without OpenMP."""
    return omp_get_num_procs()


def cpu_has_avx2_fma():
    """Return True when this CPU has AVX2 and FMA."""
    return bool(sc_cpu_has_avx2_fma())


def build_has_target_clones():
    """Return True when hot loops carry an AVX2+FMA clone picked at run time."""
    return bool(sc_build_has_target_clones())
