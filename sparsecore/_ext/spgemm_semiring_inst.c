/*
 * One semiring's products: compiled once per row of SC_SEMIRINGS
 * (spgemm_semirings.h), by meson.build, with the row's fields as
 *   SC_SR_NAME, SC_SR_CODE, SC_SR_ADD, SC_SR_MUL, SC_SR_VALUES, SC_SR_ZEROS.
 *
 * The row-wise kernel of spgemm.c (Gustavson's algorithm with a per-row
 * accumulator choice, after Nagasaka et al., ICPP workshops 2018) does not
 * depend on what "add" and "multiply" are, only that "add" is associative and
 * commutative: each semiring instantiates the same templates, so every
 * semiring runs the same accumulators at full speed. The semirings are
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

#if !defined(SC_SR_NAME) || !defined(SC_SR_CODE)
#error "compile with the fields of one SC_SEMIRINGS row (see meson.build)"
#endif

#define SC_SR_VALUES_IS(kind) (SC_CAT(SC_SR_VALUES_, SC_SR_VALUES) == SC_SR_VALUES_##kind)

#define V_MUL SC_SR_MUL
#define V_ADD SC_SR_ADD
#if SC_CAT(SC_SR_ZEROS_, SC_SR_ZEROS)
#define V_IS_ZERO(v) ((v) == 0)
#else
#define V_IS_ZERO(v) 0
#define V_KEEP_ZEROS
#endif

/* Instantiate every pass for the current VAL/VSFX: the unmasked numeric and
 * one-pass passes for each (input index, output index) pair (plus-times has
 * its own in spgemm.c), and the masked passes (saxpy and dot). */
#define SC_SR_UNMASKED (SC_SR_CODE != 0)

#if SC_SR_VALUES_IS(REAL)
#define VAL float
#define VSFX SC_NAME2(SC_SR_NAME, f32)
#include "spgemm_semiring_passes.h"
#undef VAL
#undef VSFX
#define VAL double
#define VSFX SC_NAME2(SC_SR_NAME, f64)
#include "spgemm_semiring_passes.h"
#undef VAL
#undef VSFX
#elif SC_SR_VALUES_IS(BOOL)
#define VAL uint8_t
#define VSFX SC_NAME2(SC_SR_NAME, u8)
#include "spgemm_semiring_passes.h"
#undef VAL
#undef VSFX
#elif SC_SR_VALUES_IS(COUNT)
#define VAL uint64_t
#define VSFX SC_NAME2(SC_SR_NAME, u64)
#include "spgemm_semiring_passes.h"
#undef VAL
#undef VSFX
#elif SC_SR_VALUES_IS(USER)
#define VAL double
#define VSFX SC_NAME2(SC_SR_NAME, f64)
#include "spgemm_semiring_passes.h"
#undef VAL
#undef VSFX
#else
#error "unknown values column in SC_SEMIRINGS"
#endif

/* ---- this semiring's entry points: dispatch on index and value types ---- */

#define SR_NUMERIC_CALL(PASS, IS, IT, OS, OT, VS, VT)                         \
    SC_NAME4(PASS, IS, OS, VS)(m, n, (const IT *)Ap, (const IT *)Aj,          \
        (const VT *)Ax, (const IT *)Bp, (const IT *)Bj, (const VT *)Bx,       \
        b_sorted, prefetch, Cs, ntasks, bounds, n_threads, (OT *)Cp, (OT *)Cj, \
        (VT *)Cx, nnz_out)

#define SR_NUMERIC_BY_INDEX(PASS, VS, VT)                                     \
    if (itype == SC_INT32 && otype == SC_INT32) return SR_NUMERIC_CALL(PASS, i32, int32_t, i32, int32_t, VS, VT); \
    if (itype == SC_INT32 && otype == SC_INT64) return SR_NUMERIC_CALL(PASS, i32, int32_t, i64, int64_t, VS, VT); \
    if (itype == SC_INT64 && otype == SC_INT32) return SR_NUMERIC_CALL(PASS, i64, int64_t, i32, int32_t, VS, VT); \
    if (itype == SC_INT64 && otype == SC_INT64) return SR_NUMERIC_CALL(PASS, i64, int64_t, i64, int64_t, VS, VT); \
    return SC_ERR_VALUE;

#define SR_MASKED_CALL(IS, IT, VS, VT)                                        \
    SC_NAME3(spgemm_masked, IS, VS)(m, n, (const IT *)Ap, (const IT *)Aj,     \
        (const VT *)Ax, (const IT *)Bp, (const IT *)Bj, (const VT *)Bx,       \
        (const IT *)Mp, (const IT *)Mj, complement, room, ntasks, bounds,     \
        n_threads, (IT *)Cp, (IT *)Cj, (VT *)Cx, nnz_out)

#define SR_DOT_CALL(IS, IT, VS, VT)                                           \
    SC_NAME3(spgemm_masked_dot, IS, VS)(m, k, n, (const IT *)Ap,              \
        (const IT *)Aj, (const VT *)Ax, (const IT *)Bp, (const IT *)Bj,       \
        (const VT *)Bx, colptr, (const IT *)Mp, (const IT *)Mj, room, ntasks, \
        bounds, n_threads, (IT *)Cp, (IT *)Cj, (VT *)Cx, nnz_out)

#define SR_BY_INDEX(CALL, VS, VT)                                             \
    if (itype == SC_INT32) return CALL(i32, int32_t, VS, VT);                 \
    if (itype == SC_INT64) return CALL(i64, int64_t, VS, VT);                 \
    return SC_ERR_VALUE;

/* BY_VALUE(BODY): BODY(VS, VT) for the value type the caller asked for. */
#if SC_SR_VALUES_IS(REAL)
#define SR_BY_VALUE(BODY, ...)                                                \
    if (vtype == SC_FLOAT32) { BODY(__VA_ARGS__ SC_NAME2(SC_SR_NAME, f32), float) } \
    if (vtype == SC_FLOAT64) { BODY(__VA_ARGS__ SC_NAME2(SC_SR_NAME, f64), double) } \
    return SC_ERR_VALUE;
#elif SC_SR_VALUES_IS(BOOL)
#define SR_BY_VALUE(BODY, ...)                                                \
    if (vtype == SC_UINT8) { BODY(__VA_ARGS__ SC_NAME2(SC_SR_NAME, u8), uint8_t) } \
    return SC_ERR_VALUE;
#elif SC_SR_VALUES_IS(COUNT)
#define SR_BY_VALUE(BODY, ...)                                                \
    if (vtype == SC_UINT64) { BODY(__VA_ARGS__ SC_NAME2(SC_SR_NAME, u64), uint64_t) } \
    return SC_ERR_VALUE;
#else  /* USER: float64 through function pointers that must be set */
#define SR_BY_VALUE(BODY, ...)                                                \
    if (vtype != SC_FLOAT64 || sc_spgemm_user_add == NULL || sc_spgemm_user_mul == NULL) \
        return SC_ERR_VALUE;                                                  \
    BODY(__VA_ARGS__ SC_NAME2(SC_SR_NAME, f64), double)
#endif

#define SR_NUMERIC_BODY(PASS, VS, VT) SR_NUMERIC_BY_INDEX(PASS, VS, VT)
#define SR_MASKED_BODY(CALL, VS, VT) SR_BY_INDEX(CALL, VS, VT)

int SC_NAME2(sc_sr_numeric, SC_SR_NAME)(SC_SR_NUMERIC_PARAMS)
{
#if SC_SR_UNMASKED
    SR_BY_VALUE(SR_NUMERIC_BODY, spgemm_numeric,)
#else
    return SC_ERR_VALUE;   /* plus-times: the kernels of spgemm.c */
#endif
}

int SC_NAME2(sc_sr_onepass, SC_SR_NAME)(SC_SR_NUMERIC_PARAMS)
{
#if SC_SR_UNMASKED
    SR_BY_VALUE(SR_NUMERIC_BODY, spgemm_onepass,)
#else
    return SC_ERR_VALUE;   /* plus-times: the kernels of spgemm.c */
#endif
}

int SC_NAME2(sc_sr_masked, SC_SR_NAME)(SC_SR_MASKED_PARAMS)
{
    SR_BY_VALUE(SR_MASKED_BODY, SR_MASKED_CALL,)
}

int SC_NAME2(sc_sr_masked_dot, SC_SR_NAME)(SC_SR_DOT_PARAMS)
{
    SR_BY_VALUE(SR_MASKED_BODY, SR_DOT_CALL,)
}
