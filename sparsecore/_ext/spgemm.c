/*
 * Row-wise (Gustavson) SpGEMM with hash accumulators.
 *
 * After Nagasaka, Matsuoka, Azad & Buluc, "High-performance sparse
 * matrix-matrix products on Intel KNL and multicore architectures" (ICPP
 * workshops 2018), the SMASH thesis (Shivdikar 2021) and the saxpy3 kernel of
 * SuiteSparse:GraphBLAS: per-row flop counts balance the threads, one
 * workspace per thread is reused for every row, and each row picks the
 * cheapest accumulator for its size and column range (see below). Output
 * rows come out sorted.
 */
#include "spgemm.h"
#include "spgemm_internal.h"

/* ---- index-type templates ---- */
#include "sc_index_i32.h"
#include "spgemm_sym_impl.h"
#include "sc_index_end.h"

#include "sc_index_i64.h"
#include "spgemm_sym_impl.h"
#include "sc_index_end.h"

/* ---- value arithmetic ---- */
#define REAL_MUL(a, b) ((a) * (b))
#define REAL_ADD(a, b) ((a) + (b))
#define REAL_IS_ZERO(v) ((v) == 0)

SC_INLINE sc_complex64 c64_mul(sc_complex64 a, sc_complex64 b)
{
    sc_complex64 r = {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
    return r;
}
SC_INLINE sc_complex64 c64_add(sc_complex64 a, sc_complex64 b)
{
    sc_complex64 r = {a.re + b.re, a.im + b.im};
    return r;
}
SC_INLINE sc_complex128 c128_mul(sc_complex128 a, sc_complex128 b)
{
    sc_complex128 r = {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
    return r;
}
SC_INLINE sc_complex128 c128_add(sc_complex128 a, sc_complex128 b)
{
    sc_complex128 r = {a.re + b.re, a.im + b.im};
    return r;
}
#define CPLX_IS_ZERO(v) ((v).re == 0 && (v).im == 0)

/* ---- numeric pass: one instance per (input index, output index, value) ---- */
#define VAL float
#define VSFX f32
#define V_MUL REAL_MUL
#define V_ADD REAL_ADD
#define V_IS_ZERO REAL_IS_ZERO
#include "spgemm_num_instances.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD
#undef V_IS_ZERO

#define VAL double
#define VSFX f64
#define V_MUL REAL_MUL
#define V_ADD REAL_ADD
#define V_IS_ZERO REAL_IS_ZERO
#include "spgemm_num_instances.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD
#undef V_IS_ZERO

#define VAL sc_complex64
#define VSFX c64
#define V_MUL c64_mul
#define V_ADD c64_add
#define V_IS_ZERO CPLX_IS_ZERO
#include "spgemm_num_instances.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD
#undef V_IS_ZERO

#define VAL sc_complex128
#define VSFX c128
#define V_MUL c128_mul
#define V_ADD c128_add
#define V_IS_ZERO CPLX_IS_ZERO
#include "spgemm_num_instances.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD
#undef V_IS_ZERO

#define VAL uint64_t
#define VSFX u64
#define V_MUL REAL_MUL
#define V_ADD REAL_ADD
#define V_IS_ZERO REAL_IS_ZERO
#include "spgemm_num_instances.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD
#undef V_IS_ZERO

/* ---- public entry points: dispatch on the type codes ---- */

int sc_csr_check(int itype, int64_t m, int64_t n, int64_t nnz,
                 const void *Ap, const void *Aj, int n_threads, int64_t *where, int *sorted)
{
    if (itype == SC_INT32)
        return csr_check_i32(m, n, nnz, (const int32_t *)Ap, (const int32_t *)Aj, n_threads,
                             where, sorted);
    return csr_check_i64(m, n, nnz, (const int64_t *)Ap, (const int64_t *)Aj, n_threads,
                         where, sorted);
}

int64_t sc_spgemm_flops(int itype, int64_t m, const void *Ap, const void *Aj,
                        const void *Bp, int n_threads, int64_t *fp,
                        int64_t *nnz_lower_bound)
{
    if (itype == SC_INT32)
        return spgemm_flops_i32(m, (const int32_t *)Ap, (const int32_t *)Aj,
                                (const int32_t *)Bp, n_threads, fp, nnz_lower_bound);
    return spgemm_flops_i64(m, (const int64_t *)Ap, (const int64_t *)Aj,
                            (const int64_t *)Bp, n_threads, fp, nnz_lower_bound);
}

void sc_partition(int64_t m, const int64_t *fp, int64_t row_cost, int ntasks,
                  int64_t *bounds)
{
    /* cost(i) = fp[i] + i * row_cost is non-decreasing: binary search each cut */
    double total = (double)fp[m] + (double)m * (double)row_cost;
    bounds[0] = 0;
    for (int t = 1; t < ntasks; t++) {
        double target = total * t / ntasks;
        int64_t lo = bounds[t - 1], hi = m;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if ((double)fp[mid] + (double)mid * (double)row_cost < target) lo = mid + 1;
            else hi = mid;
        }
        bounds[t] = lo;
    }
    bounds[ntasks] = m;
}

int sc_spgemm_symbolic(int itype, int64_t m, int64_t n,
                       const void *Ap, const void *Aj,
                       const void *Bp, const void *Bj, int b_no_dup, int prefetch,
                       int ntasks, const int64_t *bounds, int n_threads,
                       int64_t *Cs)
{
    if (itype == SC_INT32)
        return spgemm_symbolic_i32(m, n, (const int32_t *)Ap, (const int32_t *)Aj,
                                   (const int32_t *)Bp, (const int32_t *)Bj, b_no_dup,
                                   prefetch, ntasks, bounds, n_threads, Cs);
    return spgemm_symbolic_i64(m, n, (const int64_t *)Ap, (const int64_t *)Aj,
                               (const int64_t *)Bp, (const int64_t *)Bj, b_no_dup,
                               prefetch, ntasks, bounds, n_threads, Cs);
}

#define NUMERIC_CALL(IS, IT, OS, OT, VS, VT)                                  \
    spgemm_numeric_##IS##_##OS##_##VS(m, n, (const IT *)Ap, (const IT *)Aj,   \
        (const VT *)Ax, (const IT *)Bp, (const IT *)Bj, (const VT *)Bx,       \
        b_sorted, prefetch, Cs, ntasks, bounds, n_threads, (OT *)Cp, (OT *)Cj, \
        (VT *)Cx, nnz_out)

#define ONEPASS_CALL(IS, IT, OS, OT, VS, VT)                                  \
    spgemm_onepass_##IS##_##OS##_##VS(m, n, (const IT *)Ap, (const IT *)Aj,   \
        (const VT *)Ax, (const IT *)Bp, (const IT *)Bj, (const VT *)Bx,       \
        b_sorted, prefetch, fp, ntasks, bounds, n_threads, (OT *)Cp, (OT *)Cj, \
        (VT *)Cx, nnz_out)

#define BY_VALUE(CALL, IS, IT, OS, OT)                                        \
    switch (vtype) {                                                          \
    case SC_FLOAT32: return CALL(IS, IT, OS, OT, f32, float);                 \
    case SC_FLOAT64: return CALL(IS, IT, OS, OT, f64, double);                \
    case SC_COMPLEX64: return CALL(IS, IT, OS, OT, c64, sc_complex64);        \
    case SC_COMPLEX128: return CALL(IS, IT, OS, OT, c128, sc_complex128);     \
    case SC_UINT64: return CALL(IS, IT, OS, OT, u64, uint64_t);               \
    default: return SC_ERR_VALUE;                                             \
    }

#define BY_INDEX(CALL)                                                        \
    if (itype == SC_INT32 && otype == SC_INT32) { BY_VALUE(CALL, i32, int32_t, i32, int32_t) } \
    if (itype == SC_INT32 && otype == SC_INT64) { BY_VALUE(CALL, i32, int32_t, i64, int64_t) } \
    if (itype == SC_INT64 && otype == SC_INT32) { BY_VALUE(CALL, i64, int64_t, i32, int32_t) } \
    if (itype == SC_INT64 && otype == SC_INT64) { BY_VALUE(CALL, i64, int64_t, i64, int64_t) } \
    return SC_ERR_VALUE;

int sc_spgemm_numeric(int itype, int otype, int vtype, int64_t m, int64_t n,
                      const void *Ap, const void *Aj, const void *Ax,
                      const void *Bp, const void *Bj, const void *Bx,
                      int b_sorted, int prefetch, const int64_t *Cs,
                      int ntasks, const int64_t *bounds, int n_threads,
                      void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
{
    BY_INDEX(NUMERIC_CALL)
}

int sc_spgemm_onepass(int itype, int otype, int vtype, int64_t m, int64_t n,
                      const void *Ap, const void *Aj, const void *Ax,
                      const void *Bp, const void *Bj, const void *Bx,
                      int b_sorted, int prefetch, const int64_t *fp,
                      int ntasks, const int64_t *bounds, int n_threads,
                      void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
{
    BY_INDEX(ONEPASS_CALL)
}

int sc_spgemm_count_ranges(int itype, int64_t n, const void *Ap, const void *Aj,
                           const void *Bp, const void *Bj, int b_sorted,
                           int nranges, const int64_t *ranges, int64_t *counts)
{
    if (itype == SC_INT32)
        return spgemm_count_ranges_i32(n, (const int32_t *)Ap, (const int32_t *)Aj,
                                       (const int32_t *)Bp, (const int32_t *)Bj, b_sorted,
                                       nranges, ranges, counts);
    return spgemm_count_ranges_i64(n, (const int64_t *)Ap, (const int64_t *)Aj,
                                   (const int64_t *)Bp, (const int64_t *)Bj, b_sorted,
                                   nranges, ranges, counts);
}
