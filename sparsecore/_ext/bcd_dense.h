/*
 * bcd_dense.h -- column primitives for the greedy block coordinate descent
 * inner loops on dense (Fortran-ordered) designs.
 *
 * The design X may be float32 or float64; the solver state (residuals,
 * weights, coefficients) is always float64, so float32 data keep their memory
 * footprint while the iterations run in double precision.
 *
 * Reductions use eight independent partial sums in a fixed order, so the
 * portable and the AVX2 clones give bit-identical results.
 */
#ifndef SPARSECORE_BCD_DENSE_H
#define SPARSECORE_BCD_DENSE_H

#include <stdint.h>

/* sum_i x[i] * u[i] */
double sc_bcd_dot_f64(const double *x, const double *u, int64_t n);
double sc_bcd_dot_f32(const float *x, const double *u, int64_t n);
/* u[i] += a * x[i] */
void sc_bcd_axpy_f64(double a, const double *x, double *u, int64_t n);
void sc_bcd_axpy_f32(double a, const float *x, double *u, int64_t n);
/* u[i] += a * h[i] * x[i] */
void sc_bcd_waxpy_f64(double a, const double *h, const double *x, double *u, int64_t n);
void sc_bcd_waxpy_f32(double a, const double *h, const float *x, double *u, int64_t n);
/* sum_i h[i] * x[i]^2 and sum_i h[i] * x[i] (h == NULL: weights all 1) */
void sc_bcd_wstats_f64(const double *h, const double *x, int64_t n, double *sum_hx, double *sum_hxx);
void sc_bcd_wstats_f32(const double *h, const float *x, int64_t n, double *sum_hx, double *sum_hxx);

#endif
