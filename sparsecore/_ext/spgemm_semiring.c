/*
 * SpGEMM over semirings other than plus-times, and masked SpGEMM.
 *
 * The row-wise kernel of spgemm.c (Gustavson's algorithm with per-row
 * accumulator choice, after Nagasaka et al., ICPP workshops 2018) does not
 * depend on what "add" and "multiply" are, only that "add" is associative and
 * commutative: each semiring is a separate instantiation of the same
 * templates, so the plus-times instantiation in spgemm.c is untouched and
 * every semiring runs the same accumulators at full speed. The semirings are
 * those of GraphBLAS (Kepner et al., "Mathematical foundations of the
 * GraphBLAS", HPEC 2016; Davis, ACM TOMS 45(4), 2019).
 *
 * A row's sum starts from its first product, so no identity is stored: a
 * column the row never reaches is simply absent (for min-plus, an absent
 * entry means +inf, not 0).
 */
#include <math.h>

#include "spgemm_semiring.h"
#include "spgemm_internal.h"

static sc_binop_f64 sc_user_add = NULL;
static sc_binop_f64 sc_user_mul = NULL;

void sc_spgemm_set_user_ops(sc_binop_f64 add, sc_binop_f64 mul)
{
    sc_user_add = add;
    sc_user_mul = mul;
}

#define SR_MIN(a, b) ((b) < (a) ? (b) : (a))
#define SR_MAX(a, b) ((b) > (a) ? (b) : (a))
#define SR_PLUS(a, b) ((a) + (b))
#define SR_TIMES(a, b) ((a) * (b))
#define SR_FIRST(a, b) ((void)(b), (a))
#define SR_SECOND(a, b) ((void)(a), (b))
#define SR_NEVER_ZERO(v) 0
#define SR_IS_ZERO(v) ((v) == 0)

/* plus-times, masked only (the unmasked one lives in spgemm.c) */
#define SR_MASKED_ONLY
#define V_MUL SR_TIMES
#define V_ADD SR_PLUS
#define V_IS_ZERO SR_IS_ZERO
#define VAL float
#define VSFX pt_f32
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#define VAL double
#define VSFX pt_f64
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD
#undef V_IS_ZERO
#undef SR_MASKED_ONLY

/* every other semiring keeps its structural entries */
#define V_KEEP_ZEROS
#define V_IS_ZERO SR_NEVER_ZERO

#define V_MUL SR_PLUS
#define V_ADD SR_MIN
#define VAL float
#define VSFX minplus_f32
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#define VAL double
#define VSFX minplus_f64
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD

#define V_MUL SR_PLUS
#define V_ADD SR_MAX
#define VAL float
#define VSFX maxplus_f32
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#define VAL double
#define VSFX maxplus_f64
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD

#define V_MUL SR_TIMES
#define V_ADD SR_MAX
#define VAL float
#define VSFX maxtimes_f32
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#define VAL double
#define VSFX maxtimes_f64
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD

#define V_MUL SR_TIMES
#define V_ADD SR_MIN
#define VAL float
#define VSFX mintimes_f32
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#define VAL double
#define VSFX mintimes_f64
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD

#define V_MUL SR_FIRST
#define V_ADD SR_PLUS
#define VAL float
#define VSFX plusfirst_f32
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#define VAL double
#define VSFX plusfirst_f64
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD

#define V_MUL SR_SECOND
#define V_ADD SR_PLUS
#define VAL float
#define VSFX plussecond_f32
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#define VAL double
#define VSFX plussecond_f64
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD

/* boolean: values are 0 or 1 */
#define V_MUL(a, b) ((uint8_t)((a) & (b)))
#define V_ADD(a, b) ((uint8_t)((a) | (b)))
#define VAL uint8_t
#define VSFX lorland_u8
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD

/* structure counts: the values are never read */
#define V_MUL(a, b) ((void)(a), (void)(b), (uint64_t)1)
#define V_ADD SR_PLUS
#define VAL uint64_t
#define VSFX pluspair_u64
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD

/* user-defined operators (numba cfuncs), through function pointers */
#define V_MUL(a, b) sc_user_mul((a), (b))
#define V_ADD(a, b) sc_user_add((a), (b))
#define VAL double
#define VSFX user_f64
#include "spgemm_sr_inst.h"
#undef VAL
#undef VSFX
#undef V_MUL
#undef V_ADD

#undef V_KEEP_ZEROS
#undef V_IS_ZERO

/* ---- dispatch ---- */

#define SR_NUMERIC_CALL(IS, IT, OS, OT, VS, VT)                               \
    spgemm_numeric_##IS##_##OS##_##VS(m, n, (const IT *)Ap, (const IT *)Aj,   \
        (const VT *)Ax, (const IT *)Bp, (const IT *)Bj, (const VT *)Bx,       \
        b_sorted, prefetch, Cs, ntasks, bounds, n_threads, (OT *)Cp, (OT *)Cj, \
        (VT *)Cx, nnz_out)

#define SR_ONEPASS_CALL(IS, IT, OS, OT, VS, VT)                               \
    spgemm_onepass_##IS##_##OS##_##VS(m, n, (const IT *)Ap, (const IT *)Aj,   \
        (const VT *)Ax, (const IT *)Bp, (const IT *)Bj, (const VT *)Bx,       \
        b_sorted, prefetch, fp, ntasks, bounds, n_threads, (OT *)Cp, (OT *)Cj, \
        (VT *)Cx, nnz_out)

#define SR_BY_INDEX(CALL, VS, VT)                                             \
    if (itype == SC_INT32 && otype == SC_INT32) return CALL(i32, int32_t, i32, int32_t, VS, VT); \
    if (itype == SC_INT32 && otype == SC_INT64) return CALL(i32, int32_t, i64, int64_t, VS, VT); \
    if (itype == SC_INT64 && otype == SC_INT32) return CALL(i64, int64_t, i32, int32_t, VS, VT); \
    if (itype == SC_INT64 && otype == SC_INT64) return CALL(i64, int64_t, i64, int64_t, VS, VT); \
    return SC_ERR_VALUE;

#define SR_REAL_CASE(CALL, CODE, NAME)                                        \
    case CODE:                                                                \
        if (vtype == SC_FLOAT32) { SR_BY_INDEX(CALL, NAME##_f32, float) }     \
        if (vtype == SC_FLOAT64) { SR_BY_INDEX(CALL, NAME##_f64, double) }    \
        return SC_ERR_VALUE;

#define SR_DISPATCH(CALL)                                                     \
    switch (semiring) {                                                       \
    SR_REAL_CASE(CALL, SC_SR_MIN_PLUS, minplus)                               \
    SR_REAL_CASE(CALL, SC_SR_MAX_PLUS, maxplus)                               \
    SR_REAL_CASE(CALL, SC_SR_MAX_TIMES, maxtimes)                             \
    SR_REAL_CASE(CALL, SC_SR_MIN_TIMES, mintimes)                             \
    SR_REAL_CASE(CALL, SC_SR_PLUS_FIRST, plusfirst)                           \
    SR_REAL_CASE(CALL, SC_SR_PLUS_SECOND, plussecond)                         \
    case SC_SR_LOR_LAND:                                                      \
        if (vtype == SC_UINT8) { SR_BY_INDEX(CALL, lorland_u8, uint8_t) }     \
        return SC_ERR_VALUE;                                                  \
    case SC_SR_PLUS_PAIR:                                                     \
        if (vtype == SC_UINT64) { SR_BY_INDEX(CALL, pluspair_u64, uint64_t) } \
        return SC_ERR_VALUE;                                                  \
    case SC_SR_USER:                                                          \
        if (vtype != SC_FLOAT64 || sc_user_add == NULL || sc_user_mul == NULL) \
            return SC_ERR_VALUE;                                              \
        SR_BY_INDEX(CALL, user_f64, double)                                   \
    default:                                                                  \
        return SC_ERR_VALUE;                                                  \
    }

int sc_spgemm_semiring_numeric(int semiring, int itype, int otype, int vtype,
                               int64_t m, int64_t n,
                               const void *Ap, const void *Aj, const void *Ax,
                               const void *Bp, const void *Bj, const void *Bx,
                               int b_sorted, int prefetch, const int64_t *Cs,
                               int ntasks, const int64_t *bounds, int n_threads,
                               void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
{
    SR_DISPATCH(SR_NUMERIC_CALL)
}

int sc_spgemm_semiring_onepass(int semiring, int itype, int otype, int vtype,
                               int64_t m, int64_t n,
                               const void *Ap, const void *Aj, const void *Ax,
                               const void *Bp, const void *Bj, const void *Bx,
                               int b_sorted, int prefetch, const int64_t *fp,
                               int ntasks, const int64_t *bounds, int n_threads,
                               void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
{
    SR_DISPATCH(SR_ONEPASS_CALL)
}

#define SR_MASKED_CALL(IS, IT, VS, VT)                                        \
    spgemm_masked_##IS##_##VS(m, n, (const IT *)Ap, (const IT *)Aj,           \
        (const VT *)Ax, (const IT *)Bp, (const IT *)Bj, (const VT *)Bx,       \
        (const IT *)Mp, (const IT *)Mj, complement, room, ntasks, bounds,     \
        n_threads, (IT *)Cp, (IT *)Cj, (VT *)Cx, nnz_out)

#define SR_MASKED_BY_INDEX(VS, VT)                                            \
    if (itype == SC_INT32) return SR_MASKED_CALL(i32, int32_t, VS, VT);       \
    if (itype == SC_INT64) return SR_MASKED_CALL(i64, int64_t, VS, VT);       \
    return SC_ERR_VALUE;

#define SR_MASKED_REAL(CODE, NAME)                                            \
    case CODE:                                                                \
        if (vtype == SC_FLOAT32) { SR_MASKED_BY_INDEX(NAME##_f32, float) }    \
        if (vtype == SC_FLOAT64) { SR_MASKED_BY_INDEX(NAME##_f64, double) }   \
        return SC_ERR_VALUE;

int sc_spgemm_masked(int semiring, int itype, int vtype, int64_t m, int64_t n,
                     const void *Ap, const void *Aj, const void *Ax,
                     const void *Bp, const void *Bj, const void *Bx,
                     const void *Mp, const void *Mj, int complement,
                     const int64_t *room, int ntasks, const int64_t *bounds,
                     int n_threads, void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
{
    switch (semiring) {
    SR_MASKED_REAL(SC_SR_PLUS_TIMES, pt)
    SR_MASKED_REAL(SC_SR_MIN_PLUS, minplus)
    SR_MASKED_REAL(SC_SR_MAX_PLUS, maxplus)
    SR_MASKED_REAL(SC_SR_MAX_TIMES, maxtimes)
    SR_MASKED_REAL(SC_SR_MIN_TIMES, mintimes)
    SR_MASKED_REAL(SC_SR_PLUS_FIRST, plusfirst)
    SR_MASKED_REAL(SC_SR_PLUS_SECOND, plussecond)
    case SC_SR_LOR_LAND:
        if (vtype == SC_UINT8) { SR_MASKED_BY_INDEX(lorland_u8, uint8_t) }
        return SC_ERR_VALUE;
    case SC_SR_PLUS_PAIR:
        if (vtype == SC_UINT64) { SR_MASKED_BY_INDEX(pluspair_u64, uint64_t) }
        return SC_ERR_VALUE;
    case SC_SR_USER:
        if (vtype != SC_FLOAT64 || sc_user_add == NULL || sc_user_mul == NULL)
            return SC_ERR_VALUE;
        SR_MASKED_BY_INDEX(user_f64, double)
    default:
        return SC_ERR_VALUE;
    }
}


/* ---- masked dot products: cost model and dispatch ---- */

/* Estimated steps of one dot product of lengths la and lb, as the kernel
 * runs it (spgemm_dot_impl.h): a merge, or binary searches when one side is
 * more than SC_GALLOP times longer. */
SC_INLINE int64_t sc_dot_steps(int64_t la, int64_t lb)
{
    if (la == 0 || lb == 0) return 1;
    const int64_t small = la < lb ? la : lb, large = la < lb ? lb : la;
    if (large > SC_GALLOP * small) {
        int64_t lg = 1;
        while (((int64_t)1 << lg) < large) lg++;
        return small * (lg + 1);
    }
    return la + lb;
}

#define SC_DOT_COST_BODY(IT)                                                  \
    {                                                                         \
        const IT *ap = (const IT *)Ap, *bp = (const IT *)Bp;                  \
        const IT *bj = (const IT *)Bj, *mp = (const IT *)Mp;                  \
        const IT *mj = (const IT *)Mj;                                        \
        memset(colptr, 0, (size_t)(n + 1) * sizeof(int64_t));                 \
        const int64_t bnnz = (int64_t)bp[k];                                  \
        for (int64_t b = 0; b < bnnz; b++) colptr[bj[b] + 1]++;               \
        for (int64_t j = 0; j < n; j++) colptr[j + 1] += colptr[j];           \
        cost[0] = 0;                                                          \
        for (int64_t i = 0; i < m; i++) {                                     \
            const int64_t la = (int64_t)(ap[i + 1] - ap[i]);                  \
            int64_t c = 0;                                                    \
            if (la > 0) {                                                     \
                for (IT p = mp[i]; p < mp[i + 1]; p++) {                      \
                    const IT j = mj[p];                                       \
                    c += sc_dot_steps(la, colptr[j + 1] - colptr[j]);         \
                }                                                             \
            }                                                                 \
            cost[i + 1] = cost[i] + c;                                        \
        }                                                                     \
        return cost[m];                                                       \
    }

int64_t sc_spgemm_dot_cost(int itype, int64_t m, int64_t k, int64_t n,
                           const void *Ap, const void *Bp, const void *Bj,
                           const void *Mp, const void *Mj,
                           int64_t *colptr, int64_t *cost)
{
    if (itype == SC_INT32) SC_DOT_COST_BODY(int32_t)
    SC_DOT_COST_BODY(int64_t)
}

#define SR_DOT_CALL(IS, IT, VS, VT)                                           \
    spgemm_masked_dot_##IS##_##VS(m, k, n, (const IT *)Ap, (const IT *)Aj,    \
        (const VT *)Ax, (const IT *)Bp, (const IT *)Bj, (const VT *)Bx,       \
        colptr, (const IT *)Mp, (const IT *)Mj, room, ntasks, bounds,         \
        n_threads, (IT *)Cp, (IT *)Cj, (VT *)Cx, nnz_out)

#define SR_DOT_BY_INDEX(VS, VT)                                               \
    if (itype == SC_INT32) return SR_DOT_CALL(i32, int32_t, VS, VT);          \
    if (itype == SC_INT64) return SR_DOT_CALL(i64, int64_t, VS, VT);          \
    return SC_ERR_VALUE;

#define SR_DOT_REAL(CODE, NAME)                                               \
    case CODE:                                                                \
        if (vtype == SC_FLOAT32) { SR_DOT_BY_INDEX(NAME##_f32, float) }       \
        if (vtype == SC_FLOAT64) { SR_DOT_BY_INDEX(NAME##_f64, double) }      \
        return SC_ERR_VALUE;

int sc_spgemm_masked_dot(int semiring, int itype, int vtype,
                         int64_t m, int64_t k, int64_t n,
                         const void *Ap, const void *Aj, const void *Ax,
                         const void *Bp, const void *Bj, const void *Bx,
                         const int64_t *colptr, const void *Mp, const void *Mj,
                         const int64_t *room, int ntasks, const int64_t *bounds,
                         int n_threads, void *Cp, void *Cj, void *Cx, int64_t *nnz_out)
{
    switch (semiring) {
    SR_DOT_REAL(SC_SR_PLUS_TIMES, pt)
    SR_DOT_REAL(SC_SR_MIN_PLUS, minplus)
    SR_DOT_REAL(SC_SR_MAX_PLUS, maxplus)
    SR_DOT_REAL(SC_SR_MAX_TIMES, maxtimes)
    SR_DOT_REAL(SC_SR_MIN_TIMES, mintimes)
    SR_DOT_REAL(SC_SR_PLUS_FIRST, plusfirst)
    SR_DOT_REAL(SC_SR_PLUS_SECOND, plussecond)
    case SC_SR_LOR_LAND:
        if (vtype == SC_UINT8) { SR_DOT_BY_INDEX(lorland_u8, uint8_t) }
        return SC_ERR_VALUE;
    case SC_SR_PLUS_PAIR:
        if (vtype == SC_UINT64) { SR_DOT_BY_INDEX(pluspair_u64, uint64_t) }
        return SC_ERR_VALUE;
    case SC_SR_USER:
        if (vtype != SC_FLOAT64 || sc_user_add == NULL || sc_user_mul == NULL)
            return SC_ERR_VALUE;
        SR_DOT_BY_INDEX(user_f64, double)
    default:
        return SC_ERR_VALUE;
    }
}
