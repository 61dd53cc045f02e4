/*
 * Monarch matrices: products and the rank-1 (power-iteration) projection.
 *
 * After Dao et al., "Monarch: Expressive Structured Matrices for Efficient
 * and Accurate Training", ICML 2022. We use the layout of their reference
 * code (HazyResearch/fly, blockdiag_butterfly_multiply):
 *
 *   w1: k blocks of q x p   (R = blockdiag(w1), n = k*p columns)
 *   w2: l blocks of s x r   (L = blockdiag(w2), m = l*s rows), k*q == l*r
 *
 *   y = M x:  z[kk*q + qq] = sum_pp w1[kk,qq,pp] x[kk*p + pp]
 *             y[sg*l + lm] = sum_rh w2[lm,sg,rh] z[rh*l + lm]
 *
 * i.e. M = P2 L P1 R where P1 reads z as (r, l) and transposes it and P2
 * transposes the (l, s) result. Both permutations are folded into the
 * strides of the block products: nothing is transposed or copied.
 *
 * Kernels trust their inputs (validated in Python) and return SC_OK or
 * SC_ERR_NOMEM. Every output element is computed by one thread in a fixed
 * order, so results are bit-identical for any thread count.
 */
#ifndef SPARSECORE_MONARCH_H
#define SPARSECORE_MONARCH_H

#include "sc_common.h"

/*
 * Y = op(M) @ X, op = identity (transpose = 0) or transpose (1).
 *   vtype        SC_FLOAT32 or SC_FLOAT64 (w1, w2, X and Y all of it)
 *   X            (n x nb) for op = identity, (m x nb) for the transpose;
 *                element (i, b) at X[i*x_rs + b*x_cs] (any strides)
 *   Y            (m x nb) resp. (n x nb), element (i, b) at Y[i*y_rs + b*y_cs]
 *   w1t, w2t     NULL, or the blocks transposed ((k, p, q) and (l, r, s)):
 *                then a batch-1 product with op = identity sweeps columns
 *                (axpy form) instead of taking dot products of rows
 *   panel        batch columns per task (0: one register tile)
 *   n_threads    >= 1
 */
int sc_monarch_matmul(int vtype, int transpose,
                      int64_t k, int64_t q, int64_t p,
                      int64_t l, int64_t s, int64_t r,
                      const void *w1, const void *w2,
                      const void *w1t, const void *w2t, int64_t nb,
                      const void *X, int64_t x_rs, int64_t x_cs,
                      void *Y, int64_t y_rs, int64_t y_cs,
                      int64_t panel, int n_threads);

/*
 * Projection of a dense (m x n) W onto Monarch matrices of the layout above,
 * slice by slice. Slice (lm, kk) is the (s x p) matrix
 *     T[sg, pp] = W[(sg*l + lm)*ldw + kk*p + pp];
 * it owns the intermediate indices j in [kk*q, kk*q + q) with j % l == lm,
 * and the best Monarch approximation gives it the best approximation of rank
 * (number of those j). Each rank-1 term comes from power iteration on the
 * slice (in cache) followed by deflation; iteration stops when the singular
 * value estimate changes by at most tol (relative) or after max_iter steps.
 *   w1 (k*q*p), w2 (l*s*r)   outputs, fully written
 *   err2 (l*k)               squared Frobenius norm of each slice's residual
 *   iters (l*k)              power iterations spent on each slice
 */
int sc_monarch_project_power(int vtype,
                             int64_t k, int64_t q, int64_t p,
                             int64_t l, int64_t s, int64_t r,
                             const void *W, int64_t ldw,
                             int max_iter, double tol,
                             void *w1, void *w2, double *err2, int32_t *iters,
                             int n_threads);

#endif
