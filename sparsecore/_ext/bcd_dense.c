/* Column primitives of the greedy BCD inner loops; see bcd_dense.h. */
#include "bcd_dense.h"
#include "sc_common.h"

#define SC_BCD_DOT(NAME, XT)                                                   \
SC_TARGET_CLONES double NAME(const XT *SC_RESTRICT x,                          \
                             const double *SC_RESTRICT u, int64_t n)           \
{                                                                              \
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;     \
    int64_t i = 0;                                                             \
    for (; i + 8 <= n; i += 8) {                                               \
        s0 += (double)x[i] * u[i];                                             \
        s1 += (double)x[i + 1] * u[i + 1];                                     \
        s2 += (double)x[i + 2] * u[i + 2];                                     \
        s3 += (double)x[i + 3] * u[i + 3];                                     \
        s4 += (double)x[i + 4] * u[i + 4];                                     \
        s5 += (double)x[i + 5] * u[i + 5];                                     \
        s6 += (double)x[i + 6] * u[i + 6];                                     \
        s7 += (double)x[i + 7] * u[i + 7];                                     \
    }                                                                          \
    for (; i < n; ++i) s0 += (double)x[i] * u[i];                              \
    return ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7));                  \
}

SC_BCD_DOT(sc_bcd_dot_f64, double)
SC_BCD_DOT(sc_bcd_dot_f32, float)

#define SC_BCD_AXPY(NAME, XT)                                                  \
SC_TARGET_CLONES void NAME(double a, const XT *SC_RESTRICT x,                  \
                           double *SC_RESTRICT u, int64_t n)                   \
{                                                                              \
    for (int64_t i = 0; i < n; ++i) u[i] += a * (double)x[i];                  \
}

SC_BCD_AXPY(sc_bcd_axpy_f64, double)
SC_BCD_AXPY(sc_bcd_axpy_f32, float)

#define SC_BCD_WAXPY(NAME, XT)                                                 \
SC_TARGET_CLONES void NAME(double a, const double *SC_RESTRICT h,              \
                           const XT *SC_RESTRICT x, double *SC_RESTRICT u,     \
                           int64_t n)                                          \
{                                                                              \
    for (int64_t i = 0; i < n; ++i) u[i] += a * (h[i] * (double)x[i]);         \
}

SC_BCD_WAXPY(sc_bcd_waxpy_f64, double)
SC_BCD_WAXPY(sc_bcd_waxpy_f32, float)

#define SC_BCD_WSTATS(NAME, XT)                                                \
SC_TARGET_CLONES void NAME(const double *SC_RESTRICT h,                        \
                           const XT *SC_RESTRICT x, int64_t n,                 \
                           double *sum_hx, double *sum_hxx)                    \
{                                                                              \
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;     \
    int64_t i = 0;                                                             \
    if (h == NULL) {                                                           \
        for (; i + 4 <= n; i += 4) {                                           \
            double x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];     \
            a0 += x0; a1 += x1; a2 += x2; a3 += x3;                            \
            b0 += x0 * x0; b1 += x1 * x1; b2 += x2 * x2; b3 += x3 * x3;        \
        }                                                                      \
        for (; i < n; ++i) { double xi = x[i]; a0 += xi; b0 += xi * xi; }      \
    } else {                                                                   \
        for (; i + 4 <= n; i += 4) {                                           \
            double x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];     \
            double y0 = h[i] * x0, y1 = h[i + 1] * x1;                         \
            double y2 = h[i + 2] * x2, y3 = h[i + 3] * x3;                     \
            a0 += y0; a1 += y1; a2 += y2; a3 += y3;                            \
            b0 += y0 * x0; b1 += y1 * x1; b2 += y2 * x2; b3 += y3 * x3;        \
        }                                                                      \
        for (; i < n; ++i) {                                                   \
            double xi = x[i], yi = h[i] * xi; a0 += yi; b0 += yi * xi;         \
        }                                                                      \
    }                                                                          \
    *sum_hx = (a0 + a1) + (a2 + a3);                                           \
    *sum_hxx = (b0 + b1) + (b2 + b3);                                          \
}

SC_BCD_WSTATS(sc_bcd_wstats_f64, double)
SC_BCD_WSTATS(sc_bcd_wstats_f32, float)
