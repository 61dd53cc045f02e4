/*
 * spmm.h -- sparse times dense products for structured formats.
 *
 *   Y = A @ X      (SpMM; X is n x B, Y is m x B; a B == 1 product is a GEMV)
 *   S = (G @ X.T) sampled at A's stored positions   (SDDMM)
 *
 * A is block-sparse (BSR: blocks of r x c values stored contiguously per block
 * row, r and c in {1, 2, 4, 8, 16, 32}; CSR is the 1 x 1 case) or N:M
 * (N stored values in every group of M consecutive columns, with their uint8
 * offsets inside the group).
 *
 * Dense operands are passed as a pointer plus element strides (row stride,
 * column stride), so C order, F order and transposed views need no copy by the
 * caller; X is packed into L2-sized, zero-padded column panels when its layout
 * or shape needs it. The last block row / block column / N:M group may be
 * partial (m, n not multiples of r, c, M): stored values outside the logical
 * shape must be zero, and X is padded with zero rows so they are never read
 * from outside X.
 *
 * Threads own disjoint output rows (block rows, strips of rows), cut so every
 * thread gets the same number of stored values; each output element is summed
 * in the same order whatever the thread count, so results are bit-identical
 * for any n_threads. Products below a small amount of work run on one thread.
 *
 * The products can finish Y before storing it (an epilogue, as inference
 * libraries fuse after a layer's matrix product): Y[i, :] = act(Y[i, :] +
 * bias[i]) with `ep` given; NULL stores the product alone. The activations
 * of float32 products use approximations accurate to a few units in the last
 * place (vectorised); float64 ones call libm.
 *
 * Value types: SC_FLOAT32, SC_FLOAT64. Index types: SC_INT32, SC_INT64.
 * Return SC_OK, SC_ERR_NOMEM (a workspace allocation failed) or SC_ERR_VALUE
 * (an unsupported type code or block shape: a bug in the caller).
 */
#ifndef SPARSECORE_SPMM_H
#define SPARSECORE_SPMM_H

#include <stdint.h>
#include "sc_common.h"

/* Activations of the epilogue. */
enum {
    SC_ACT_NONE = 0,
    SC_ACT_RELU = 1,
    SC_ACT_GELU = 2,       /* x * Phi(x), Phi the normal CDF (erf form) */
    SC_ACT_GELU_TANH = 3,  /* the tanh approximation of GELU */
    SC_ACT_SILU = 4,       /* x * sigmoid(x) */
};
typedef struct {
    const void *bias;  /* m values of the product's value type, or NULL */
    int act;           /* SC_ACT_* */
} sc_epilogue;

/* Y (m x B) = A @ X (n x B), A block-sparse with mb = ceil(m / r) block rows. */
int sc_spmm_bsr(int itype, int vtype, int64_t m, int64_t n, int64_t B, int r, int c,
                const void *indptr, const void *indices, const void *blocks,
                const void *X, int64_t xrs, int64_t xcs,
                void *Y, int64_t yrs, int64_t ycs, int n_threads, const sc_epilogue *ep);

/* Y (m x B) = A @ X (K x B), A N:M along its columns: values and idx are
 * (m, G * N) row-major with G = ceil(K / M) groups per row. */
int sc_spmm_nm(int vtype, int64_t m, int64_t K, int64_t B, int N, int M,
               const void *values, const uint8_t *idx,
               const void *X, int64_t xrs, int64_t xcs,
               void *Y, int64_t yrs, int64_t ycs, int n_threads, const sc_epilogue *ep);

/* out[k] (one value per stored position of A, in A's storage order) =
 * dot(G[row, :], X[col, :]) over B; G is m x B, X is n x B. */
/* Y (m x B) = A X for A (m x K) stored as a row bitmask, the layout of
 * compressed-tensors' "sparse-bitmask": `values` holds the nonzeros in
 * row-major order, `mask` a row of mld >= ceil(K / 8) bytes per row of A
 * (column j of row i is bit j % 8 of mask[i * mld + j / 8]; the bits past K
 * must be clear) and start[i] where row i's values begin (rows in order,
 * each holding as many values as its set bits). nnz: all stored values. */
int sc_spmm_bitmask(int vtype, int64_t m, int64_t K, int64_t B, const void *values,
                    const uint8_t *mask, int64_t mld, const int64_t *start, int64_t nnz,
                    const void *X, int64_t xrs, int64_t xcs,
                    void *Y, int64_t yrs, int64_t ycs, int n_threads, const sc_epilogue *ep);

/* W (m x K, row-major, leading dimension wld) = the dense form of a row
 * bitmask (as for sc_spmm_bitmask). */
int sc_bitmask_expand(int vtype, int64_t m, int64_t K, const void *values, const uint8_t *mask,
                      int64_t mld, const int64_t *start, void *W, int64_t wld, int n_threads);

int sc_sddmm_bsr(int itype, int vtype, int64_t m, int64_t n, int64_t B, int r, int c,
                 const void *indptr, const void *indices,
                 const void *G, int64_t grs, int64_t gcs,
                 const void *X, int64_t xrs, int64_t xcs,
                 void *out, int n_threads);
int sc_sddmm_nm(int vtype, int64_t m, int64_t K, int64_t B, int N, int M,
                const uint8_t *idx,
                const void *G, int64_t grs, int64_t gcs,
                const void *X, int64_t xrs, int64_t xcs,
                void *out, int n_threads);

/* N:M compression of W (rows x K): keep the entries where mask != 0 (or, when
 * mask is NULL, where W != 0); a group with more than N of them makes the call
 * return SC_ERR_VALUE with the first such group in bad[0] (row) and bad[1]
 * (group). Unused slots get value 0 at the lowest free offsets; the offsets
 * of every group are increasing. */
int sc_nm_compress(int vtype, int64_t rows, int64_t K, int N, int M,
                   const void *W, int64_t wrs, int64_t wcs,
                   const uint8_t *mask, int64_t mrs, int64_t mcs,
                   void *values, uint8_t *idx, int64_t *bad, int n_threads);

/* N:M pruning of W: keep the N entries of largest score in every group (score
 * = |W| when score is NULL; ties go to the lower offset). stype is the value
 * type of score. */
int sc_nm_prune(int vtype, int stype, int64_t rows, int64_t K, int N, int M,
                const void *W, int64_t wrs, int64_t wcs,
                const void *score, int64_t srs, int64_t scs,
                void *values, uint8_t *idx, int n_threads);

/* Bytes of L2 cache per core the planner assumes. */
int64_t sc_spmm_l2_bytes(void);

/* Which instances of the SpMM products run. The products exist for 32-byte
 * vectors (the portable baseline and an AVX2+FMA clone, picked by the loader)
 * and, in builds for x86-64, for 64-byte AVX-512 vectors, which the products
 * take on CPUs with AVX-512 (F, BW, DQ, VL) when the batch is wider than one
 * 32-byte vector, and for float32 N:M products with a vector. Every lane of a
 * batch sums its products in the same order, so the instances give identical
 * products for B >= 2; a vector product sums in lanes of the vector width, so
 * there the levels agree to rounding only. */
enum {
    SC_SIMD_AUTO = -1,     /* the widest this CPU and build have */
    SC_SIMD_BASELINE = 0,
    SC_SIMD_AVX2 = 1,      /* no wider than AVX2 */
    SC_SIMD_AVX512 = 2,
};
/* Request SC_SIMD_AUTO, SC_SIMD_AVX2 or SC_SIMD_AVX512; SC_ERR_VALUE for
 * another level or AVX-512 where the CPU or build lacks it. */
int sc_spmm_set_simd(int level);
/* The widest level the products take now. */
int sc_spmm_simd(void);
/* 1 when this build carries the AVX-512 instances. */
int sc_spmm_build_has_avx512(void);

#endif
