/*
 * spgemm_semiring.h -- C = A (+.*) B over semirings other than plus-times,
 * and masked products C<M> = A (+.*) B (any semiring, plus-times included).
 *
 * The unmasked passes are the plus-times kernel of spgemm.c instantiated
 * with another "add" and "multiply" (spgemm_num_impl.h), so they share its
 * accumulators, thread partition and call order (see spgemm.h): flops,
 * partition, symbolic, then sc_spgemm_semiring_numeric; or the one-pass
 * variant. Unlike plus-times, they keep every structural entry, whatever its
 * value (GraphBLAS semantics): a sum equal to the semiring's zero is still an
 * entry.
 *
 * Value types per semiring: SC_FLOAT32 / SC_FLOAT64 for the arithmetic ones;
 * SC_UINT8 (0 or 1) for LOR_LAND; SC_UINT64 for PLUS_PAIR (counts; the input
 * values are never read but must be arrays of nnz 8-byte entries);
 * SC_FLOAT64 for USER (the operators set by sc_spgemm_set_user_ops).
 */
#ifndef SPARSECORE_SPGEMM_SEMIRING_H
#define SPARSECORE_SPGEMM_SEMIRING_H

#include "sc_common.h"
#include "spgemm_semirings.h"

/* SC_SR_plus_times = 0, SC_SR_min_plus = 1, ...: the codes of SC_SEMIRINGS. */
#define SC_SR_ENUM(name, code, add, mul, values, zeros) SC_NAME2(SC_SR, name) = code,
enum sc_semiring { SC_SEMIRINGS(SC_SR_ENUM) };
#undef SC_SR_ENUM

/* Every semiring by name and code, for the bindings. */
typedef struct { const char *name; int code; } sc_semiring_info;
extern const sc_semiring_info sc_semiring_table[];
extern const int sc_semiring_count;

typedef double (*sc_binop_f64)(double, double);

/* Set the operators of the user semiring (process-wide: the caller
 * serialises the user-semiring calls). */
void sc_spgemm_set_user_ops(sc_binop_f64 add, sc_binop_f64 mul);
extern sc_binop_f64 sc_spgemm_user_add, sc_spgemm_user_mul;

SC_SEMIRINGS(SC_SR_DECLARE)

int sc_spgemm_semiring_numeric(int semiring, int itype, int otype, int vtype,
                               int64_t m, int64_t n,
                               const void *Ap, const void *Aj, const void *Ax,
                               const void *Bp, const void *Bj, const void *Bx,
                               int b_sorted, int prefetch, const int64_t *Cs,
                               int ntasks, const int64_t *bounds, int n_threads,
                               void *Cp, void *Cj, void *Cx, int64_t *nnz_out);

int sc_spgemm_semiring_onepass(int semiring, int itype, int otype, int vtype,
                               int64_t m, int64_t n,
                               const void *Ap, const void *Aj, const void *Ax,
                               const void *Bp, const void *Bj, const void *Bx,
                               int b_sorted, int prefetch, const int64_t *fp,
                               int ntasks, const int64_t *bounds, int n_threads,
                               void *Cp, void *Cj, void *Cx, int64_t *nnz_out);

/* Masked product. A, B and M (m x n, rows sorted without duplicates) share
 * the index type `itype`, which is also the output's. Row i is written from
 * room[i] (non-decreasing offsets: the mask's row pointers, or with
 * `complement` prefix sums of min(row multiplies, n - mask row length)); Cj
 * and Cx have room[m] entries. The rows are then closed up: Cp gets the row
 * pointers and *nnz_out the total. Plus-times drops exact zeros (as scipy
 * and the unmasked product do); the other semirings keep every entry. */
int sc_spgemm_masked(int semiring, int itype, int vtype, int64_t m, int64_t n,
                     const void *Ap, const void *Aj, const void *Ax,
                     const void *Bp, const void *Bj, const void *Bx,
                     const void *Mp, const void *Mj, int complement,
                     const int64_t *room, int ntasks, const int64_t *bounds,
                     int n_threads, void *Cp, void *Cj, void *Cx, int64_t *nnz_out);

/* Masked product by dot products (C<M> only, no complement): C(i, j) for
 * each mask entry is the merge of row i of A with column j of B. Rows of A
 * must be strictly increasing; B (k x n) may be unsorted. Call
 * sc_spgemm_dot_cost first: it fills colptr[0..n] (prefix sums of B's column
 * counts, which this call uses to build B^T) and cost[0..m] (prefix sums of
 * each row's estimated merge steps, for sc_partition), and returns the total.
 * room as for sc_spgemm_masked without complement (the mask's row
 * pointers). Results are bit-identical to sc_spgemm_masked's. */
int64_t sc_spgemm_dot_cost(int itype, int64_t m, int64_t k, int64_t n,
                           const void *Ap, const void *Bp, const void *Bj,
                           const void *Mp, const void *Mj,
                           int64_t *colptr, int64_t *cost);

int sc_spgemm_masked_dot(int semiring, int itype, int vtype,
                         int64_t m, int64_t k, int64_t n,
                         const void *Ap, const void *Aj, const void *Ax,
                         const void *Bp, const void *Bj, const void *Bx,
                         const int64_t *colptr, const void *Mp, const void *Mj,
                         const int64_t *room, int ntasks, const int64_t *bounds,
                         int n_threads, void *Cp, void *Cj, void *Cx, int64_t *nnz_out);

#endif
