/*
 * spmm_avx512.c -- the SpMM product templates over 64-byte vectors (16
 * floats, 8 doubles) for CPUs with AVX-512.
 *
 * Meson compiles this file alone for the x86-64-v4 level (-march=x86-64-v4)
 * and defines SC_HAVE_AVX512_KERNELS for spmm.c, whose entry points call
 * these instances only when the CPU has AVX-512 (sc_spmm_simd), so no code
 * of this file runs on a CPU without it. The templates are the ones spmm.c
 * instantiates for 32-byte vectors; every lane of a tile is one column of Y
 * summed in the same order, so both instances give the same products. Only
 * the products are used from here (the other template functions are
 * compiled but unused, hence -Wno-unused-function for this file).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spmm_common.h"

#if defined(__AVX512F__) && (defined(__GNUC__) || defined(__clang__))

/* 32 vector registers: N:M tiles of 4 rows x 4 vectors (2 x 8 measured
 * slower on a Xeon with AVX-512), block tiles of up to 8 rows x 3 vectors
 * (4 x 2 had 8 accumulators for 2 FMA ports of 4-cycle latency: 142 -> 177
 * useful GF/s for 16 x 16 blocks at 50 %, batch 8192, one core) */
#define SC_NM_RMAX 4
#define SC_BSR_RMAX 8
/* block products of up to SC_BSR_GEMV_MAX_B columns run in spmm.c's 32-byte
 * instance at either level (sc_spmm_bsr), so both give the same bits */
#define SC_BSR_SMALL_B 0

/* the whole file is built for AVX-512: no clones inside it */
#undef SC_TARGET_CLONES
#define SC_TARGET_CLONES

typedef float sc_vf32x16 __attribute__((vector_size(64)));
typedef double sc_vf64x8 __attribute__((vector_size(64)));
typedef float sc_vf32x16_u __attribute__((vector_size(64), aligned(4), __may_alias__));
typedef double sc_vf64x8_u __attribute__((vector_size(64), aligned(8), __may_alias__));

SC_INLINE sc_vf32x16 sc_load_f32x16(const float *p) { return *(const sc_vf32x16_u *)p; }
SC_INLINE void sc_store_f32x16(float *p, sc_vf32x16 v) { *(sc_vf32x16_u *)p = v; }
SC_INLINE sc_vf32x16 sc_zero_f32x16(void) { sc_vf32x16 z = {0}; return z; }
SC_INLINE sc_vf32x16 sc_fma_f32x16(sc_vf32x16 acc, float w, sc_vf32x16 x) { return acc + w * x; }
SC_INLINE sc_vf32x16 sc_fmav_f32x16(sc_vf32x16 acc, sc_vf32x16 a, sc_vf32x16 b) { return acc + a * b; }
SC_INLINE sc_vf32x16 sc_add_f32x16(sc_vf32x16 a, sc_vf32x16 b) { return a + b; }
SC_INLINE float sc_hsum_f32x16(sc_vf32x16 v)
{
    return (((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])))
         + (((v[8] + v[9]) + (v[10] + v[11])) + ((v[12] + v[13]) + (v[14] + v[15])));
}

SC_INLINE sc_vf64x8 sc_load_f64x8(const double *p) { return *(const sc_vf64x8_u *)p; }
SC_INLINE void sc_store_f64x8(double *p, sc_vf64x8 v) { *(sc_vf64x8_u *)p = v; }
SC_INLINE sc_vf64x8 sc_zero_f64x8(void) { sc_vf64x8 z = {0}; return z; }
SC_INLINE sc_vf64x8 sc_fma_f64x8(sc_vf64x8 acc, double w, sc_vf64x8 x) { return acc + w * x; }
SC_INLINE sc_vf64x8 sc_fmav_f64x8(sc_vf64x8 acc, sc_vf64x8 a, sc_vf64x8 b) { return acc + a * b; }
SC_INLINE sc_vf64x8 sc_add_f64x8(sc_vf64x8 a, sc_vf64x8 b) { return a + b; }
SC_INLINE double sc_hsum_f64x8(sc_vf64x8 v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

#include <immintrin.h>
#include "sc_transpose.h"

/*
 * Rows of an N:M float32 product with NB vectors (x_b at x + b * ldx, y_b at
 * y + b * ycs), 16 kept values per multiply-add: their x entries are picked
 * from the 32 (M / N = 2) or 64 (M / N = 4) floats of x they fall in by
 * two-table lane permutes (the AVX2 kernel of spmm.c needs two permutes and
 * a blend per 8). A row's values and offsets are read once for all NB
 * vectors, so a few vectors cost about what one does while the weights
 * stream from memory. For every vector the chunks alternate between two
 * accumulators summed in one fixed order, so a result depends on its row
 * and its vector alone, not on the thread or on the other vectors.
 */
/* Sum of the 16 lanes in a fixed order: halves added until one lane is left
 * (a few shuffles, where lane-by-lane adds made the reduction cost as much
 * as a short row's products). */
SC_INLINE float sc_hsum_tree_f32x16(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

static inline __attribute__((always_inline)) void
sc_nm_gemv_perm16_body_f32(int64_t G, int N, int M, const float *values, const uint8_t *idx,
                           const float *x, int64_t ldx, float *y, int64_t yrs, int64_t ycs,
                           int64_t i, __m512i base, const int wide, const int R, const int NB)
{
    const int64_t gn = G * N;
    const int gpc = 16 / N;                    /* groups per chunk of 16 kept values */
    const int64_t chunks = G / gpc, xstep = (int64_t)gpc * M;
    const float *w = values + i * gn;
    const uint8_t *j = idx + i * gn;
    /* fixed sizes (R and NB are constants after inlining; arrays sized by
     * them would be VLAs on the stack, not registers) */
    __m512 acc0[2][SC_NM_GEMV_MAX_B], acc1[2][SC_NM_GEMV_MAX_B];
    for (int r = 0; r < R; r++)
        for (int b = 0; b < NB; b++) acc0[r][b] = acc1[r][b] = _mm512_setzero_ps();
    const float *xc = x;
    int64_t c = 0;
#define SC_NM_CHUNK16(acc)                                                                  \
    do {                                                                                    \
        __m512i p[2];                                                                       \
        __m512 wv[2];                                                                       \
        for (int r = 0; r < R; r++) {                                                       \
            p[r] = _mm512_add_epi32(base, _mm512_cvtepu8_epi32(                             \
                _mm_loadu_si128((const __m128i *)(j + r * gn + 16 * c))));                  \
            wv[r] = _mm512_loadu_ps(w + r * gn + 16 * c);                                   \
        }                                                                                   \
        for (int b = 0; b < NB; b++) {                                                      \
            const float *xb = xc + b * ldx;                                                 \
            const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);          \
            for (int r = 0; r < R; r++) {                                                   \
                __m512 xs = _mm512_permutex2var_ps(x0, p[r], x1);                           \
                if (wide)                                                                   \
                    xs = _mm512_mask_blend_ps(0xff00, xs, _mm512_permutex2var_ps(          \
                        _mm512_loadu_ps(xb + 32), p[r], _mm512_loadu_ps(xb + 48)));         \
                acc[r][b] = _mm512_fmadd_ps(wv[r], xs, acc[r][b]);                          \
            }                                                                               \
        }                                                                                   \
        for (int r = 0; r < R; r++) {                                                       \
            _mm_prefetch((const char *)(w + r * gn + 16 * c) + SC_GEMV_AHEAD, _MM_HINT_T0); \
            if ((c & 3) == 0)                                                               \
                _mm_prefetch((const char *)(j + r * gn + 16 * c) + SC_GEMV_AHEAD / 4,       \
                             _MM_HINT_T0);                                                  \
        }                                                                                   \
        c++;                                                                                \
        xc += xstep;                                                                        \
    } while (0)
    while (c + 2 <= chunks) {
        SC_NM_CHUNK16(acc0);
        SC_NM_CHUNK16(acc1);
    }
    if (c < chunks) SC_NM_CHUNK16(acc0);
#undef SC_NM_CHUNK16
    for (int r = 0; r < R; r++) {
        const float *wr = w + r * gn;
        const uint8_t *jr = j + r * gn;
        for (int b = 0; b < NB; b++) {
            const float *xt = xc + b * ldx;
            float s = sc_hsum_tree_f32x16(_mm512_add_ps(acc0[r][b], acc1[r][b]));
            for (int64_t g = c * gpc; g < G; g++, xt += M)
                for (int k = 0; k < N; k++) s += wr[g * N + k] * xt[jr[g * N + k]];
            y[(i + r) * yrs + b * ycs] = s;
        }
    }
}

/* Rows [lo, hi) with NB vectors, x read in WIDE (M / N = 4) or narrow
 * chunks: two rows at a time where NB is small (their accumulator chains
 * interleave; one row's two would wait on FMA latency). */
static inline __attribute__((always_inline)) void
sc_nm_gemv_perm16_rows_f32(int64_t G, int N, int M, const float *values, const uint8_t *idx,
                           const float *x, int64_t ldx, float *y, int64_t yrs, int64_t ycs,
                           int64_t lo, int64_t hi, sc_poll_t *poll, const int WIDE, const int NB)
{
    int lane[16];                              /* a lane's group offset in its slice pair */
    for (int l = 0; l < 16; l++) lane[l] = ((l / N) * M) & 31;
    const __m512i base = _mm512_loadu_si512((const void *)lane);
    int64_t i = lo;
    if (NB <= 2)
        for (; i + 2 <= hi; i += 2) {
            if (SC_POLL(poll, i - lo)) return;
            sc_nm_gemv_perm16_body_f32(G, N, M, values, idx, x, ldx, y, yrs, ycs, i, base, WIDE,
                                       2, NB <= 2 ? NB : 1);
        }
    for (; i < hi; i++) {
        if (SC_POLL(poll, i - lo)) return;
        sc_nm_gemv_perm16_body_f32(G, N, M, values, idx, x, ldx, y, yrs, ycs, i, base, WIDE,
                                   1, NB);
    }
}

#define SC_NM_PERM16_NB(NB)                                                                  \
static void sc_nm_gemv_perm16_rows##NB##_f32(int64_t G, int N, int M, const float *values,    \
    const uint8_t *idx, const float *x, int64_t ldx, float *y, int64_t yrs, int64_t ycs,      \
    int64_t lo, int64_t hi, sc_poll_t *poll)                                                  \
{                                                                                             \
    if ((int64_t)(16 / N) * M == 64)                                                          \
        sc_nm_gemv_perm16_rows_f32(G, N, M, values, idx, x, ldx, y, yrs, ycs, lo, hi, poll,   \
                                   1, NB);                                                    \
    else                                                                                      \
        sc_nm_gemv_perm16_rows_f32(G, N, M, values, idx, x, ldx, y, yrs, ycs, lo, hi, poll,   \
                                   0, NB);                                                    \
}
SC_NM_PERM16_NB(1) SC_NM_PERM16_NB(2) SC_NM_PERM16_NB(3) SC_NM_PERM16_NB(4)
SC_NM_PERM16_NB(5) SC_NM_PERM16_NB(6) SC_NM_PERM16_NB(7) SC_NM_PERM16_NB(8)
#undef SC_NM_PERM16_NB

/* The AVX-512 permute kernel when it applies (N:M with M / N of 2 or 4 and
 * N dividing 16, at most SC_NM_GEMV_MAX_B vectors): returns 1 after
 * computing y[lo:hi] for every vector, else 0. It reads x as it is (this
 * instance has no NM_GEMV_PERM_LAYOUT: xs is x). */
static int sc_nm_gemv_perm16_f32(int64_t G, int N, int M, const float *values,
                                 const uint8_t *idx, const float *x, int64_t ldx,
                                 const float *xs, int64_t lds, int64_t nb,
                                 float *y, int64_t yrs, int64_t ycs,
                                 int64_t lo, int64_t hi, sc_poll_t *poll)
{
    (void)xs;
    (void)lds;
    static void (*const rows[SC_NM_GEMV_MAX_B])(int64_t, int, int, const float *,
                                                const uint8_t *, const float *, int64_t,
                                                float *, int64_t, int64_t, int64_t, int64_t,
                                                sc_poll_t *) = {
        sc_nm_gemv_perm16_rows1_f32, sc_nm_gemv_perm16_rows2_f32, sc_nm_gemv_perm16_rows3_f32,
        sc_nm_gemv_perm16_rows4_f32, sc_nm_gemv_perm16_rows5_f32, sc_nm_gemv_perm16_rows6_f32,
        sc_nm_gemv_perm16_rows7_f32, sc_nm_gemv_perm16_rows8_f32};
    if (!sc_nm_perm_ok(N, M, 16) || nb < 1 || nb > SC_NM_GEMV_MAX_B) return 0;
    rows[nb - 1](G, N, M, values, idx, x, ldx, y, yrs, ycs, lo, hi, poll);
    return 1;
}

/*
 * Rows of a float32 product with NB vectors for A stored as a row bitmask
 * (sc_spmm_bitmask): the 16 mask bits of each 16 columns of a row
 * expand-load the row's next values into the lanes they select (zeros
 * elsewhere), one multiply-add per vector then, so a row is read once for
 * all vectors and a kept value costs its 4 bytes and one bit. R rows at a
 * time: each row's value pointer advances by a popcount, a dependent chain
 * that another row's work hides. x is zero padded to whole chunks.
 */
static inline __attribute__((always_inline)) void
sc_bitmask16_body_f32(int64_t K, const float *values, const uint8_t *mask, int64_t mld,
                      const int64_t *start, const float *x, int64_t ldx, float *y,
                      int64_t yrs, int64_t ycs, int64_t i, const int R, const int NB)
{
    __m512 acc[2][SC_BITMASK_MAX_B];
    const float *v[2];
    const uint8_t *mk[2];
    for (int r = 0; r < R; r++) {
        v[r] = values + start[i + r];
        mk[r] = mask + (i + r) * mld;
        for (int b = 0; b < NB; b++) acc[r][b] = _mm512_setzero_ps();
    }
    const int64_t chunks = (K + 15) / 16;
    for (int64_t c = 0; c < chunks; c++) {
        for (int r = 0; r < R; r++) {
            uint32_t bits = mk[r][2 * c];
            if (2 * c + 1 < mld) bits |= (uint32_t)mk[r][2 * c + 1] << 8;
            const __m512 w = _mm512_maskz_expandloadu_ps((__mmask16)bits, v[r]);
            v[r] += __builtin_popcount(bits);
            for (int b = 0; b < NB; b++)
                acc[r][b] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + b * ldx + 16 * c), acc[r][b]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int b = 0; b < NB; b++) y[(i + r) * yrs + b * ycs] = sc_hsum_tree_f32x16(acc[r][b]);
}

#define SC_BITMASK16_NB(NB)                                                                   \
static void sc_bitmask16_rows##NB##_f32(int64_t K, const float *values, const uint8_t *mask,  \
    int64_t mld, const int64_t *start, const float *x, int64_t ldx, float *y, int64_t yrs,    \
    int64_t ycs, int64_t lo, int64_t hi, sc_poll_t *poll)                                     \
{                                                                                             \
    int64_t i = lo;                                                                           \
    if (NB <= 4)                                                                              \
        for (; i + 2 <= hi; i += 2) {                                                         \
            if (SC_POLL(poll, i - lo)) return;                                                \
            sc_bitmask16_body_f32(K, values, mask, mld, start, x, ldx, y, yrs, ycs, i, 2,     \
                                  NB <= 4 ? NB : 1);                                          \
        }                                                                                     \
    for (; i < hi; i++) {                                                                     \
        if (SC_POLL(poll, i - lo)) return;                                                    \
        sc_bitmask16_body_f32(K, values, mask, mld, start, x, ldx, y, yrs, ycs, i, 1, NB);    \
    }                                                                                         \
}
SC_BITMASK16_NB(1) SC_BITMASK16_NB(2) SC_BITMASK16_NB(3) SC_BITMASK16_NB(4)
SC_BITMASK16_NB(5) SC_BITMASK16_NB(6) SC_BITMASK16_NB(7) SC_BITMASK16_NB(8)
SC_BITMASK16_NB(9) SC_BITMASK16_NB(10) SC_BITMASK16_NB(11) SC_BITMASK16_NB(12)
SC_BITMASK16_NB(13) SC_BITMASK16_NB(14) SC_BITMASK16_NB(15) SC_BITMASK16_NB(16)
#undef SC_BITMASK16_NB

/* BITMASK_ROWS of the float32 instance: rows [lo, hi) for nb vectors
 * (1 to SC_BITMASK_MAX_B); returns 1. */
static int sc_bitmask16_f32(int64_t K, const float *values, int64_t nnz, const uint8_t *mask,
                            int64_t mld, const int64_t *start, const float *x, int64_t ldx,
                            int64_t nb, float *y, int64_t yrs, int64_t ycs, int64_t lo,
                            int64_t hi, sc_poll_t *poll)
{
    (void)nnz;  /* expand-loads read only the values they place */
    static void (*const rows[SC_BITMASK_MAX_B])(int64_t, const float *, const uint8_t *,
                                                int64_t, const int64_t *, const float *,
                                                int64_t, float *, int64_t, int64_t, int64_t,
                                                int64_t, sc_poll_t *) = {
        sc_bitmask16_rows1_f32, sc_bitmask16_rows2_f32, sc_bitmask16_rows3_f32,
        sc_bitmask16_rows4_f32, sc_bitmask16_rows5_f32, sc_bitmask16_rows6_f32,
        sc_bitmask16_rows7_f32, sc_bitmask16_rows8_f32, sc_bitmask16_rows9_f32,
        sc_bitmask16_rows10_f32, sc_bitmask16_rows11_f32, sc_bitmask16_rows12_f32,
        sc_bitmask16_rows13_f32, sc_bitmask16_rows14_f32, sc_bitmask16_rows15_f32,
        sc_bitmask16_rows16_f32};
    rows[nb - 1](K, values, mask, mld, start, x, ldx, y, yrs, ycs, lo, hi, poll);
    return 1;
}

/* One row of a row bitmask written dense (K values at w): an expand-load
 * per 16 columns. */
static void sc_bitmask16_expand_f32(int64_t K, const float *v, const uint8_t *mk, int64_t mld,
                                    float *w)
{
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        uint32_t bits;
        uint16_t b16;
        memcpy(&b16, mk + k / 8, 2);
        bits = b16;
        _mm512_storeu_ps(w + k, _mm512_maskz_expandloadu_ps((__mmask16)bits, v));
        v += __builtin_popcount(bits);
    }
    if (k < K) {
        uint32_t bits = mk[k / 8];
        if (k / 8 + 1 < mld) bits |= (uint32_t)mk[k / 8 + 1] << 8;
        _mm512_mask_storeu_ps(w + k, (__mmask16)((1u << (K - k)) - 1),
                              _mm512_maskz_expandloadu_ps((__mmask16)bits, v));
    }
}

#define TRANSPOSE_BLOCKS sc_transpose_f32
#define TRANSPOSE_BLOCKS_OK() 1
#define BITMASK_ROWS sc_bitmask16_f32
#define BITMASK_EXPAND sc_bitmask16_expand_f32
#define NM_GEMV_PERM sc_nm_gemv_perm16_f32
#define NM_GEMV_PERM_OK(N, M) sc_nm_perm_ok(N, M, 16)
#define NM_GEMV_PERM_MAX_B SC_NM_GEMV_MAX_B
#define T float
#define SFX f32x16
#define VEC sc_vf32x16
#define VL 16
#define VLOAD sc_load_f32x16
#define VSTORE sc_store_f32x16
#define VZERO sc_zero_f32x16
#define VFMA sc_fma_f32x16
#define VFMAV sc_fmav_f32x16
#define VADD sc_add_f32x16
#define VHSUM sc_hsum_f32x16
#include "spmm_nm_impl.h"
#include "sc_index_i32.h"
#include "spmm_bsr_impl.h"
#include "sc_index_end.h"
#include "sc_index_i64.h"
#include "spmm_bsr_impl.h"
#include "sc_index_end.h"
#include "spmm_type_end.h"

#define T double
#define SFX f64x8
#define VEC sc_vf64x8
#define VL 8
#define VLOAD sc_load_f64x8
#define VSTORE sc_store_f64x8
#define VZERO sc_zero_f64x8
#define VFMA sc_fma_f64x8
#define VFMAV sc_fmav_f64x8
#define VADD sc_add_f64x8
#define VHSUM sc_hsum_f64x8
#include "spmm_nm_impl.h"
#include "sc_index_i32.h"
#include "spmm_bsr_impl.h"
#include "sc_index_end.h"
#include "sc_index_i64.h"
#include "spmm_bsr_impl.h"
#include "sc_index_end.h"
#include "spmm_type_end.h"

int sc_spmm_bsr_avx512(int itype, int vtype, int64_t m, int64_t n, int64_t B, int r, int c,
                       const void *indptr, const void *indices, const void *blocks,
                       const void *X, int64_t xrs, int64_t xcs,
                       void *Y, int64_t yrs, int64_t ycs, int n_threads,
                const sc_epilogue *ep)
{
    if (vtype == SC_FLOAT32 && itype == SC_INT32)
        return spmm_bsr_f32x16_i32(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    if (vtype == SC_FLOAT32 && itype == SC_INT64)
        return spmm_bsr_f32x16_i64(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    if (vtype == SC_FLOAT64 && itype == SC_INT32)
        return spmm_bsr_f64x8_i32(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    if (vtype == SC_FLOAT64 && itype == SC_INT64)
        return spmm_bsr_f64x8_i64(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    return SC_ERR_VALUE;
}

int sc_spmm_nm_avx512(int vtype, int64_t m, int64_t K, int64_t B, int N, int M,
                      const void *values, const uint8_t *idx,
                      const void *X, int64_t xrs, int64_t xcs,
                      void *Y, int64_t yrs, int64_t ycs, int n_threads,
                const sc_epilogue *ep)
{
    if (vtype == SC_FLOAT32)
        return spmm_nm_f32x16(m, K, B, N, M, values, idx, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    if (vtype == SC_FLOAT64)
        return spmm_nm_f64x8(m, K, B, N, M, values, idx, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    return SC_ERR_VALUE;
}

int sc_spmm_bitmask_avx512(int vtype, int64_t m, int64_t K, int64_t B, const void *values,
                           const uint8_t *mask, int64_t mld, const int64_t *start, int64_t nnz,
                           const void *X, int64_t xrs, int64_t xcs,
                           void *Y, int64_t yrs, int64_t ycs, int n_threads,
                           const sc_epilogue *ep)
{
    if (vtype == SC_FLOAT32)
        return spmm_bitmask_f32x16(m, K, B, values, mask, mld, start, nnz, X, xrs, xcs,
                                   Y, yrs, ycs, n_threads, ep);
    return SC_ERR_VALUE;
}

int sc_bitmask_expand_avx512(int vtype, int64_t m, int64_t K, const void *values,
                            const uint8_t *mask, int64_t mld, const int64_t *start,
                            void *W, int64_t wld, int n_threads)
{
    if (vtype == SC_FLOAT32)
        return bitmask_expand_f32x16(m, K, values, mask, mld, start, W, wld, n_threads);
    return SC_ERR_VALUE;
}

#endif
