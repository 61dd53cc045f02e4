/*
 * spgemm.h -- C = A @ B for CSR matrices: Gustavson's row-wise product with
 * per-thread hash (or dense) accumulators, in two passes.
 *
 * Call order (the Python layer in sparsecore/ops/_spgemm.py drives it):
 *   1. sc_spgemm_flops:    multiplies per row of C, as prefix sums in fp[0..m],
 *                          and a lower bound of nnz(C) (exact when A has one
 *                          entry per row; valid when B has no duplicates).
 *   2. sc_partition:       cut rows into tasks of about equal cost.
 *   3. sc_spgemm_symbolic: exact structural nnz per row, as prefix sums in Cs.
 *   4. (the caller allocates Cp, Cj, Cx of exactly Cs[m] entries)
 *   5. sc_spgemm_numeric:  values and sorted column indices, exact zeros dropped
 *                          (as scipy does) and the rows compacted.
 * Small products skip step 3: the numeric pass then takes the flop prefix
 * sums as row slots (an upper bound) and compacts the rows at the end.
 *
 * Inputs: Ap (m+1), Aj, Ax; Bp (k+1), Bj, Bx, with index type `itype` (int32 or
 * int64 for all four index arrays) and value type `vtype`. Indices must lie in
 * range and Ap/Bp must be non-decreasing (checked by sc_csr_check). Unsorted
 * columns and duplicates are fine: duplicates are summed. `b_no_dup` says B has
 * no duplicate column in a row; `b_sorted` says B rows are also sorted.
 *
 * Every output row is computed by one thread in a fixed order, so the result
 * is bit-identical for any thread count (and equal to scipy's sums, which add
 * the products in the same order).
 *
 * Complexity: O(flops + nnz(C) log(row length)) time; O(nnz(C)) output plus
 * per-thread workspaces of O(max row length), or O(ncols) for rows dense
 * enough to use a dense accumulator.
 */
#ifndef SPARSECORE_SPGEMM_H
#define SPARSECORE_SPGEMM_H

#include "sc_common.h"

/* Check one CSR structure: Ap[0] == 0, Ap non-decreasing, Ap[m] <= nnz, and
 * 0 <= Aj[p] < n. Returns SC_OK and sets *sorted (1 when every row has
 * strictly increasing columns: sorted, no duplicates), or returns 1 (Ap[0] !=
 * 0), 2 (decreasing at row *where), 3 (Ap[m] > nnz), 4 (index out of range at
 * position *where). */
int sc_csr_check(int itype, int64_t m, int64_t n, int64_t nnz,
                 const void *Ap, const void *Aj, int n_threads, int64_t *where,
                 int *sorted);

int64_t sc_spgemm_flops(int itype, int64_t m, const void *Ap, const void *Aj,
                        const void *Bp, int n_threads, int64_t *fp,
                        int64_t *nnz_lower_bound);

/* bounds[0..ntasks]: task t owns rows bounds[t] <= i < bounds[t+1]; cost of a
 * row is its multiplies plus row_cost. */
void sc_partition(int64_t m, const int64_t *fp, int64_t row_cost, int ntasks,
                  int64_t *bounds);

int sc_spgemm_symbolic(int itype, int64_t m, int64_t n,
                       const void *Ap, const void *Aj,
                       const void *Bp, const void *Bj, int b_no_dup, int prefetch,
                       int ntasks, const int64_t *bounds, int n_threads,
                       int64_t *Cs);

int sc_spgemm_numeric(int itype, int otype, int vtype, int64_t m, int64_t n,
                      const void *Ap, const void *Aj, const void *Ax,
                      const void *Bp, const void *Bj, const void *Bx,
                      int b_sorted, int prefetch, const int64_t *Cs,
                      int ntasks, const int64_t *bounds, int n_threads,
                      void *Cp, void *Cj, void *Cx, int64_t *nnz_out);

/* One-pass mode, for products that compress well: no symbolic pass. Cj and
 * Cx have room for fp[m] entries (the multiply count); task t writes its rows
 * from fp[bounds[t]] and the tasks are then closed up. Cp receives the row
 * pointers and *nnz_out the entries kept (the caller shrinks the arrays). */
int sc_spgemm_onepass(int itype, int otype, int vtype, int64_t m, int64_t n,
                      const void *Ap, const void *Aj, const void *Ax,
                      const void *Bp, const void *Bj, const void *Bx,
                      int b_sorted, int prefetch, const int64_t *fp,
                      int ntasks, const int64_t *bounds, int n_threads,
                      void *Cp, void *Cj, void *Cx, int64_t *nnz_out);

/* Structural nnz of the rows in each range [ranges[2r], ranges[2r + 1]), on
 * one thread (to estimate the compression of a product from a sample). */
int sc_spgemm_count_ranges(int itype, int64_t n, const void *Ap, const void *Aj,
                           const void *Bp, const void *Bj, int b_sorted,
                           int nranges, const int64_t *ranges, int64_t *counts);

#endif
