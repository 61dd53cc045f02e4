/*
 * topk.h -- per-row top-k of a sparse product C = A @ B, without forming C.
 */
#ifndef SPARSECORE_TOPK_H
#define SPARSECORE_TOPK_H

#include "sc_common.h"

/*
 * For every row r of C = A @ B (A: m x d CSR with sorted rows, B: d x n CSR, both of index
 * type `itype` and value type `vtype`, SC_FLOAT32 or SC_FLOAT64), write the
 * k largest entries of C[r, :] that are not excluded: their columns to
 * out_idx[r*k .. r*k+k) and values to out_val (value type vtype), ordered by
 * value descending, then column ascending. Entries of C that are not stored
 * (no shared index) are candidates with value 0. Columns stored in row r of
 * the pattern E (m x n CSR, index type itype; Ep == NULL for none) are
 * excluded. Rows with fewer than k candidates are padded with column -1 and
 * value -inf. Products are summed in the value type, in the order of A's
 * row then B's rows, so results do not depend on n_threads or on `blocked`
 * (which processes 8 rows at a time: faster when rows touch many columns).
 *
 * Inputs are trusted: valid CSR structures, 1 <= k, finite values.
 * Returns SC_OK or SC_ERR_NOMEM.
 */
int sc_topk_product(int itype, int vtype, int64_t m, int64_t d, int64_t n, int64_t k,
                    int blocked, const void *Ap, const void *Aj, const void *Ax,
                    const void *Bp, const void *Bj, const void *Bx,
                    const void *Ep, const void *Ej,
                    int n_threads, int64_t *out_idx, void *out_val);

/* Multiplies of the product (for choosing thread counts). */
int64_t sc_topk_product_flops(int itype, int64_t m, const void *Ap, const void *Aj,
                              const void *Bp);

#endif
