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

cdef extern from *:
    """
    #if defined(__linux__)
    #include <unistd.h>
    #include <sys/syscall.h>
    #endif
    /* The Linux thread ids of the OpenMP team of n threads that this thread
     * starts (libgomp keeps the same pool threads from region to region);
     * 0 where the OS has no thread ids to tell. */
    static void sc_team_thread_ids(long long *out, int n)
    {
    #ifdef _OPENMP
        #pragma omp parallel num_threads(n)
        {
            const int t = omp_get_thread_num();
    #if defined(__linux__)
            if (t < n) out[t] = (long long)syscall(SYS_gettid);
    #else
            if (t < n) out[t] = 0;
    #endif
        }
    #else
        (void)n;
        out[0] = 0;
    #endif
    }
    """
    void sc_team_thread_ids(long long *out, int n) nogil


def openmp_enabled():
    """Return True when the compiled core was built with OpenMP."""
    return bool(SC_OPENMP_ENABLED)


def team_thread_ids():
    """Thread ids (Linux ``gettid``) of the OpenMP team the calling thread
    starts at the default size: the threads that run sparsecore's kernels
    and spin briefly after each one. Empty where unknown."""
    cdef int n = omp_get_max_threads()
    cdef long long[256] out
    if n > 256:
        n = 256
    for i in range(n):
        out[i] = 0
    with nogil:
        sc_team_thread_ids(out, n)
    return {int(out[i]) for i in range(n) if out[i] > 0}


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
