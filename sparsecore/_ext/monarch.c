/*
 * Monarch products and projection (see monarch.h): the kernels are in
 * monarch_impl.h, instantiated here for float and double.
 *
 * This file is compiled with -ffp-contract=fast (sparsecore/_ext/meson.build):
 * the AVX2+FMA clone fuses a*b+c, the baseline clone has no FMA to fuse with.
 * Either way every output element is computed in one fixed order, whatever
 * the number of threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "monarch.h"

#define SC_MCAT2(a, b) a##_##b
#define SC_MCAT(a, b) SC_MCAT2(a, b)

/* register tile of the block products: SC_MR rows x SC_NV vectors */
#ifndef SC_MR
#define SC_MR 4
#endif
#ifndef SC_NV
#define SC_NV 3
#endif
/* multiply-adds a thread must get before a parallel region pays off */
#ifndef SC_MONARCH_MACS_PER_THREAD
#define SC_MONARCH_MACS_PER_THREAD (1 << 17)
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
