/*
 * spgemm_semirings.h -- the semirings of the sparse products, in one table.
 *
 * Everything that lists the semirings is generated from SC_SEMIRINGS: the
 * enum of codes (which Python reads through sparsecore._ext._sparse), the
 * names, the declarations and the dispatch switches of spgemm_semiring.c,
 * and the translation units: meson.build reads the rows below and compiles
 * spgemm_semiring_inst.c once per row, with that row's fields as macros, so
 * the semirings compile in parallel.
 *
 * X(name, code, add, multiply, values, zeros)
 *   add, multiply  binary operators (function-like macros below)
 *   values         REAL: float32 and float64; BOOL: uint8 0/1; COUNT: uint64
 *                  counts (the input values are never read); USER: float64
 *                  through the function pointers set by
 *                  sc_spgemm_set_user_ops
 *   zeros          DROP: a sum equal to zero is not stored (as scipy);
 *                  KEEP: every structural entry is stored (GraphBLAS)
 * plus_times is here for masked products only: its unmasked product is the
 * kernel of spgemm.c. Keep one row per line: meson.build parses them.
 */
#ifndef SPARSECORE_SPGEMM_SEMIRINGS_H
#define SPARSECORE_SPGEMM_SEMIRINGS_H

#define SC_SEMIRINGS(X) \
    X(plus_times, 0, SR_PLUS, SR_TIMES, REAL, DROP) \
    X(min_plus, 1, SR_MIN, SR_PLUS, REAL, KEEP) \
    X(max_plus, 2, SR_MAX, SR_PLUS, REAL, KEEP) \
    X(max_times, 3, SR_MAX, SR_TIMES, REAL, KEEP) \
    X(min_times, 4, SR_MIN, SR_TIMES, REAL, KEEP) \
    X(lor_land, 5, SR_LOR, SR_LAND, BOOL, KEEP) \
    X(plus_pair, 6, SR_PLUS, SR_PAIR, COUNT, KEEP) \
    X(plus_first, 7, SR_PLUS, SR_FIRST, REAL, KEEP) \
    X(plus_second, 8, SR_PLUS, SR_SECOND, REAL, KEEP) \
    X(user, 9, SR_USER_ADD, SR_USER_MUL, USER, KEEP)

/* ---- operators ---- */
#define SR_MIN(a, b) ((b) < (a) ? (b) : (a))
#define SR_MAX(a, b) ((b) > (a) ? (b) : (a))
#define SR_PLUS(a, b) ((a) + (b))
#define SR_TIMES(a, b) ((a) * (b))
#define SR_FIRST(a, b) ((void)(b), (a))
#define SR_SECOND(a, b) ((void)(a), (b))
#define SR_LOR(a, b) ((uint8_t)((a) | (b)))
#define SR_LAND(a, b) ((uint8_t)((a) & (b)))
#define SR_PAIR(a, b) ((void)(a), (void)(b), (uint64_t)1)
#define SR_USER_ADD(a, b) sc_spgemm_user_add((a), (b))
#define SR_USER_MUL(a, b) sc_spgemm_user_mul((a), (b))

/* The values column as numbers, for #if. */
#define SC_SR_VALUES_REAL 1
#define SC_SR_VALUES_BOOL 2
#define SC_SR_VALUES_COUNT 3
#define SC_SR_VALUES_USER 4
#define SC_SR_ZEROS_DROP 1
#define SC_SR_ZEROS_KEEP 0

/* ---- the entry points of one semiring (spgemm_semiring_inst.c) ---- */
#define SC_SR_NUMERIC_PARAMS                                                  \
    int itype, int otype, int vtype, int64_t m, int64_t n,                    \
    const void *Ap, const void *Aj, const void *Ax,                           \
    const void *Bp, const void *Bj, const void *Bx,                           \
    int b_sorted, int prefetch, const int64_t *Cs,                            \
    int ntasks, const int64_t *bounds, int n_threads,                         \
    void *Cp, void *Cj, void *Cx, int64_t *nnz_out
#define SC_SR_NUMERIC_ARGS                                                    \
    itype, otype, vtype, m, n, Ap, Aj, Ax, Bp, Bj, Bx, b_sorted, prefetch,    \
    Cs, ntasks, bounds, n_threads, Cp, Cj, Cx, nnz_out
#define SC_SR_MASKED_PARAMS                                                   \
    int itype, int vtype, int64_t m, int64_t n,                               \
    const void *Ap, const void *Aj, const void *Ax,                           \
    const void *Bp, const void *Bj, const void *Bx,                           \
    const void *Mp, const void *Mj, int complement,                           \
    const int64_t *room, int ntasks, const int64_t *bounds,                   \
    int n_threads, void *Cp, void *Cj, void *Cx, int64_t *nnz_out
#define SC_SR_MASKED_ARGS                                                     \
    itype, vtype, m, n, Ap, Aj, Ax, Bp, Bj, Bx, Mp, Mj, complement, room,     \
    ntasks, bounds, n_threads, Cp, Cj, Cx, nnz_out
#define SC_SR_DOT_PARAMS                                                      \
    int itype, int vtype, int64_t m, int64_t k, int64_t n,                    \
    const void *Ap, const void *Aj, const void *Ax,                           \
    const void *Bp, const void *Bj, const void *Bx,                           \
    const int64_t *colptr, const void *Mp, const void *Mj,                    \
    const int64_t *room, int ntasks, const int64_t *bounds,                   \
    int n_threads, void *Cp, void *Cj, void *Cx, int64_t *nnz_out
#define SC_SR_DOT_ARGS                                                        \
    itype, vtype, m, k, n, Ap, Aj, Ax, Bp, Bj, Bx, colptr, Mp, Mj, room,      \
    ntasks, bounds, n_threads, Cp, Cj, Cx, nnz_out

/* sc_sr_numeric_<name>, sc_sr_onepass_<name> (the onepass variant takes the
 * flop prefix sums where numeric takes the exact row sizes, in Cs),
 * sc_sr_masked_<name>, sc_sr_masked_dot_<name>. */
#define SC_SR_DECLARE(name, code, add, mul, values, zeros)                    \
    int SC_NAME2(sc_sr_numeric, name)(SC_SR_NUMERIC_PARAMS);                  \
    int SC_NAME2(sc_sr_onepass, name)(SC_SR_NUMERIC_PARAMS);                  \
    int SC_NAME2(sc_sr_masked, name)(SC_SR_MASKED_PARAMS);                    \
    int SC_NAME2(sc_sr_masked_dot, name)(SC_SR_DOT_PARAMS);

#endif
