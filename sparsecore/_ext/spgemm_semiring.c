/*
 * SpGEMM over semirings other than plus-times, and masked SpGEMM: the
 * dispatch on the semiring, the user semiring's operators, and the cost
 * model of the masked dot method. The products themselves are compiled once
 * per semiring from spgemm_semiring_inst.c (see spgemm_semirings.h).
 */
#include "spgemm_semiring.h"
#include "spgemm_internal.h"

sc_binop_f64 sc_spgemm_user_add = NULL;
sc_binop_f64 sc_spgemm_user_mul = NULL;

void sc_spgemm_set_user_ops(sc_binop_f64 add, sc_binop_f64 mul)
{
    sc_spgemm_user_add = add;
    sc_spgemm_user_mul = mul;
}

#define SR_INFO(name, code, add, mul, values, zeros) {#name, code},
const sc_semiring_info sc_semiring_table[] = { SC_SEMIRINGS(SR_INFO) };
const int sc_semiring_count = (int)(sizeof sc_semiring_table / sizeof sc_semiring_table[0]);

/* ---- dispatch on the semiring ---- */

#define SR_NUMERIC_CASE(name, code, add, mul, values, zeros)                  \
    case code: return SC_NAME2(sc_sr_numeric, name)(SC_SR_NUMERIC_ARGS);
#define SR_ONEPASS_CASE(name, code, add, mul, values, zeros)                  \
    case code: return SC_NAME2(sc_sr_onepass, name)(SC_SR_NUMERIC_ARGS);
#define SR_MASKED_CASE(name, code, add, mul, values, zeros)                   \
    case code: return SC_NAME2(sc_sr_masked, name)(SC_SR_MASKED_ARGS);
#define SR_DOT_CASE(name, code, add, mul, values, zeros)                      \
    case code: return SC_NAME2(sc_sr_masked_dot, name)(SC_SR_DOT_ARGS);

int sc_spgemm_semiring_numeric(int semiring, SC_SR_NUMERIC_PARAMS)
{
    switch (semiring) {
    SC_SEMIRINGS(SR_NUMERIC_CASE)
    default: return SC_ERR_VALUE;
    }
}

int sc_spgemm_semiring_onepass(int semiring, SC_SR_NUMERIC_PARAMS)
{
    switch (semiring) {
    SC_SEMIRINGS(SR_ONEPASS_CASE)
    default: return SC_ERR_VALUE;
    }
}

int sc_spgemm_masked(int semiring, SC_SR_MASKED_PARAMS)
{
    switch (semiring) {
    SC_SEMIRINGS(SR_MASKED_CASE)
    default: return SC_ERR_VALUE;
    }
}

int sc_spgemm_masked_dot(int semiring, SC_SR_DOT_PARAMS)
{
    switch (semiring) {
    SC_SEMIRINGS(SR_DOT_CASE)
    default: return SC_ERR_VALUE;
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
