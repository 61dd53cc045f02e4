/*
 * Monarch products and projection (see monarch.h): the kernels are in
 * monarch_impl.h, instantiated here for float and double.
 *
 * This file is compiled with -ffp-contract=fast (sparsecore/_ext/meson.build):
 * the AVX2+FMA clone fuses a*b+c, the baseline clone has no FMA to fuse with.
 * Either way every output element is computed in one fixed order, whatever
 * the number of threads.
 */
#define _POSIX_C_SOURCE 200809L  /* nanosleep, pthread keys under -std=c99 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "monarch.h"


/* register tile of the block products: SC_MR rows x SC_NV vectors */
#ifndef SC_MR
#define SC_MR 4
#endif
#ifndef SC_NV
#define SC_NV 3
#endif
/* multiply-adds a thread must get before a parallel region pays off, and
 * before one with a barrier between the stages does */
#ifndef SC_MONARCH_MACS_PER_THREAD
#define SC_MONARCH_MACS_PER_THREAD (1 << 17)
#endif
#ifndef SC_MONARCH_MACS_PER_BARRIER_THREAD
#define SC_MONARCH_MACS_PER_BARRIER_THREAD (1 << 20)
#endif

#if defined(__GNUC__) || defined(__clang__)
typedef float sc_v8f __attribute__((vector_size(32)));
typedef float sc_v8f_u __attribute__((vector_size(32), aligned(4), may_alias));
typedef double sc_v4d __attribute__((vector_size(32)));
typedef double sc_v4d_u __attribute__((vector_size(32), aligned(8), may_alias));
#define SC_VT_F32 sc_v8f
#define SC_VTU_F32 sc_v8f_u
#define SC_VL_F32 8
#define SC_VT_F64 sc_v4d
#define SC_VTU_F64 sc_v4d_u
#define SC_VL_F64 4
#else
#define SC_VT_F32 float
#define SC_VTU_F32 float
#define SC_VL_F32 1
#define SC_VT_F64 double
#define SC_VTU_F64 double
#define SC_VL_F64 1
#endif

/*
 * Scratch space kept by each thread between calls: a product's buffers are
 * 0.1-10 MB, and fresh ones from malloc come from mmap above 128 KiB, i.e.
 * page faults on every call (3x the time of a small product). Buffers above
 * SC_SCRATCH_KEEP bytes are allocated and freed per call. The buffer goes
 * when its thread ends (a pthread key destructor).
 */
#ifndef SC_SCRATCH_KEEP
#define SC_SCRATCH_KEEP ((size_t)32 << 20)
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define SC_HAVE_PTHREAD_KEY 1
typedef struct { void *ptr; size_t size; } sc_scratch_t;
static pthread_key_t sc_scratch_key;
static pthread_once_t sc_scratch_once = PTHREAD_ONCE_INIT;
static int sc_scratch_key_ok = 0;

static void sc_scratch_destroy(void *v)
{
    sc_scratch_t *w = (sc_scratch_t *)v;
    free(w->ptr);
    free(w);
}

static void sc_scratch_init(void)
{
    sc_scratch_key_ok = pthread_key_create(&sc_scratch_key, sc_scratch_destroy) == 0;
}
#endif

/* At least `bytes` of scratch; *owned says the caller must free it. */
static void *sc_scratch(size_t bytes, int *owned)
{
    *owned = 1;
#ifdef SC_HAVE_PTHREAD_KEY
    if (bytes <= SC_SCRATCH_KEEP && pthread_once(&sc_scratch_once, sc_scratch_init) == 0
        && sc_scratch_key_ok) {
        sc_scratch_t *w = (sc_scratch_t *)pthread_getspecific(sc_scratch_key);
        if (w == NULL) {
            w = (sc_scratch_t *)calloc(1, sizeof *w);
            if (w != NULL && pthread_setspecific(sc_scratch_key, w) != 0) {
                free(w);
                w = NULL;
            }
        }
        if (w != NULL) {
            if (w->size < bytes) {
                free(w->ptr);
                w->ptr = malloc(bytes);
                w->size = w->ptr != NULL ? bytes : 0;
            }
            if (w->ptr != NULL) {
                *owned = 0;
                return w->ptr;
            }
        }
    }
#endif
    return malloc(bytes);
}

static void sc_scratch_release(void *ptr, int owned)
{
    if (owned) free(ptr);
}

/* Called by every thread of a parallel region once its work is done: counts
 * it in *done, and on thread 0 keeps polling for Ctrl-C (1 ms naps) until all
 * threads are done, so a long task on another thread stays interruptible. */
static void sc_poll_wait(sc_poll_t *poll, int *done)
{
#ifdef _OPENMP
    const int nthreads = omp_get_num_threads();
    #pragma omp atomic update
    (*done)++;
    if (omp_get_thread_num() != 0) return;
    for (;;) {
        int d;
        #pragma omp atomic read
        d = *done;
        if (d >= nthreads) return;
        sc_poll(poll);
#if defined(__unix__) || defined(__APPLE__)
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
#endif
    }
#else
    (void)poll;
    (void)done;
#endif
}

#define T float
#define SFX f32
#define VT SC_VT_F32
#define VTU SC_VTU_F32
#define VL SC_VL_F32
#include "monarch_impl.h"
#undef T
#undef SFX
#undef VT
#undef VTU
#undef VL

#define T double
#define SFX f64
#define VT SC_VT_F64
#define VTU SC_VTU_F64
#define VL SC_VL_F64
#include "monarch_impl.h"
#undef T
#undef SFX
#undef VT
#undef VTU
#undef VL

int sc_monarch_matmul(int vtype, int transpose,
                      int64_t k, int64_t q, int64_t p,
                      int64_t l, int64_t s, int64_t r,
                      const void *w1, const void *w2,
                      const void *w1t, const void *w2t, int64_t nb,
                      const void *X, int64_t x_rs, int64_t x_cs,
                      void *Y, int64_t y_rs, int64_t y_cs,
                      int64_t panel, int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    if (nb <= 0) return SC_OK;
    switch (vtype) {
    case SC_FLOAT32:
        return matmul_f32(transpose, k, q, p, l, s, r, (const float *)w1, (const float *)w2,
                          (const float *)w1t, (const float *)w2t, nb, (const float *)X, x_rs, x_cs, (float *)Y, y_rs, y_cs,
                          panel, n_threads);
    case SC_FLOAT64:
        return matmul_f64(transpose, k, q, p, l, s, r, (const double *)w1, (const double *)w2,
                          (const double *)w1t, (const double *)w2t, nb, (const double *)X, x_rs, x_cs, (double *)Y, y_rs, y_cs,
                          panel, n_threads);
    default:
        return SC_ERR_VALUE;
    }
}

int sc_monarch_project_power(int vtype,
                             int64_t k, int64_t q, int64_t p,
                             int64_t l, int64_t s, int64_t r,
                             const void *W, int64_t ldw,
                             int max_iter, double tol,
                             void *w1, void *w2, double *err2, int32_t *iters,
                             int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    switch (vtype) {
    case SC_FLOAT32:
        return project_power_f32(k, q, p, l, s, r, (const float *)W, ldw, max_iter, tol,
                                 (float *)w1, (float *)w2, err2, iters, n_threads);
    case SC_FLOAT64:
        return project_power_f64(k, q, p, l, s, r, (const double *)W, ldw, max_iter, tol,
                                 (double *)w1, (double *)w2, err2, iters, n_threads);
    default:
        return SC_ERR_VALUE;
    }
}
