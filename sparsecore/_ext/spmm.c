/*
 * Structured SpMM, GEMV and SDDMM kernels (see spmm.h for the contracts).
 *
 * Design after XNNPACK's sparse inference kernels (Elsen, Dukhan, Gale &
 * Simonyan, "Fast Sparse ConvNets", CVPR 2020) and Intel's sparse
 * transformer library (Shen et al., "An Efficient Sparse Inference Software
 * Accelerator for Transformer-based Language Models on CPUs", 2023): the
 * dense operand is batch-contiguous, a register tile of Y accumulates while
 * the stored weights stream past, block rows are tiled along the output rows
 * (r x 1 "tiles along M"), and X is packed into column panels that fit in L2
 * (the GotoBLAS packing of Goto & van de Geijn, ACM TOMS 2008).
 *
 * The drivers here hold the OpenMP regions; the hot loops are separate
 * functions carrying SC_TARGET_CLONES (GCC outlines OpenMP regions into new
 * functions that do not inherit a clone's target), so each thread calls the
 * AVX2+FMA clone when the CPU has it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "spmm.h"
#include "sc_simd.h"

#include "spmm_common.h"

int64_t sc_spmm_l2_bytes(void)
{
    static int64_t cached = 0;
    if (cached) return cached;
    int64_t l2 = 0;
#if defined(_SC_LEVEL2_CACHE_SIZE)
    long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (v > 0) l2 = v;
#endif
    if (l2 < (128 << 10) || l2 > (64 << 20)) l2 = 512 << 10;
    cached = l2;
    return l2;
}

/*
 * Huge pages under an output the kernels are about to write, when it is one
 * contiguous block (sc_advise_huge: at least 4 MiB). A fresh output of
 * torch.empty is untouched memory that the kernel's first writes fault in,
 * once per 4 KiB page: a new 48 MiB output took 16 ms to write that way
 * against 4-6 ms on 2 MiB pages.
 */
static void sc_advise_huge_output(void *Y, int64_t m, int64_t B, int64_t yrs, int64_t ycs,
                                  size_t es)
{
    if ((yrs == 1 && ycs == m) || (ycs == 1 && yrs == B))
        sc_advise_huge(Y, (size_t)m * (size_t)B * es);
}

/* ---- value-type instances ---- */

#if SC_HAVE_VECTOR_EXT
SC_INLINE float sc_hsum_f32(sc_vf32 v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}
SC_INLINE double sc_hsum_f64(sc_vf64 v) { return (v[0] + v[1]) + (v[2] + v[3]); }
#else
SC_INLINE float sc_hsum_f32(sc_vf32 v)
{
    return ((v.l[0] + v.l[1]) + (v.l[2] + v.l[3])) + ((v.l[4] + v.l[5]) + (v.l[6] + v.l[7]));
}
SC_INLINE double sc_hsum_f64(sc_vf64 v) { return (v.l[0] + v.l[1]) + (v.l[2] + v.l[3]); }
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>

/* A lane of one of two vectors by index p (0-7), both vectors laid out as
 * sc_nm_perm_layout_f32 leaves them: bits 0-1 pick the entry within the
 * lane's 128-bit half, bit 2 the vector. In-lane permutes: a Zen 3 issues
 * two a cycle, and a lane-crossing vpermps at most one. */
__attribute__((target("avx2,fma"))) static inline __m256
sc_pick2_ps(const float *xv, __m256i p, __m256 bit2)
{
    return _mm256_blendv_ps(_mm256_permutevar_ps(_mm256_loadu_ps(xv), p),
                            _mm256_permutevar_ps(_mm256_loadu_ps(xv + 8), p), bit2);
}

/* x rearranged for sc_nm_gemv_perm_body_f32: the span s = 8 M / N columns
 * that one chunk of 8 kept values covers (16 or 32) as s / 8 vectors, vector
 * j holding columns 4j..4j+3 in its low half and s/2 + 4j.. in its high
 * half, so that a lane of the low half (a group in the first half of the
 * span) finds its column in the low half of one of them, and likewise for
 * the high half. Whole spans only; nb vectors at *ld apart. NULL when out
 * of memory. */
static float *sc_nm_perm_layout_f32(const float *x, int64_t ldx, int64_t nb, int64_t G, int N,
                                    int M, int64_t *ld)
{
    const int64_t span = 8 / N * (int64_t)M, half = span / 2;
    const int64_t chunks = G / (8 / N), n = chunks * span;
    *ld = n > 0 ? n : 1;
    float *xs = (float *)sc_aligned_alloc((size_t)(nb * *ld) * sizeof(float));
    if (!xs) return NULL;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t c = 0; c < chunks; c++) {
            const float *src = x + b * ldx + c * span;
            float *dst = xs + b * *ld + c * span;
            for (int64_t j = 0; j < span / 8; j++)
                for (int e = 0; e < 4; e++) {
                    dst[8 * j + e] = src[4 * j + e];
                    dst[8 * j + 4 + e] = src[half + 4 * j + e];
                }
        }
    return xs;
}

/* Rows of an N:M float32 product with NB vectors (x_b at x + b * ldx, y_b
 * at y + b * ycs): the kept values of a row, 8 at a time, pick their x
 * entries with in-lane permutes of x rearranged by sc_nm_perm_layout_f32
 * (xs, vectors lds apart), so a multiply-add covers 8 kept values where
 * the scalar loop covers one, and a row's values and offsets are read once
 * for all NB vectors. Lane l of chunk c always meets the same kept value,
 * and for every vector the chunks alternate between two accumulators summed
 * in one fixed order: a result depends on its row and vector alone, never
 * on the thread or the other vectors. AVX2 only: the caller checks the CPU. */
static inline __attribute__((always_inline, target("avx2,fma"))) void
sc_nm_gemv_perm_body_f32(int64_t G, int N, int M, const float *values, const uint8_t *idx,
                         const float *x, int64_t ldx, const float *xs, int64_t lds, float *y,
                         int64_t yrs, int64_t ycs, int64_t lo, int64_t hi, sc_poll_t *poll,
                         const int NB)
{
    const int64_t gn = G * N;
    const int gpc = 8 / N;                      /* groups per chunk of 8 kept values */
    const int64_t chunks = G / gpc, span = (int64_t)gpc * M;
    int lane[8];                                /* the first column of a lane's group */
    for (int l = 0; l < 8; l++) lane[l] = (l / N) * M;
    const __m256i base = _mm256_loadu_si256((const __m256i *)lane);
    const int four = span == 32;                /* four vectors per chunk: 1:4, 2:8, 4:16 */
    for (int64_t i = lo; i < hi; i++) {
        if (SC_POLL(poll, i - lo)) return;
        const float *w = values + i * gn;
        const uint8_t *j = idx + i * gn;
        /* fixed sizes: NB is a constant after inlining, an array sized by
         * it would be a VLA on the stack, not registers */
        __m256 acc0[SC_NM_GEMV_MAX_B], acc1[SC_NM_GEMV_MAX_B];
        for (int b = 0; b < NB; b++) acc0[b] = acc1[b] = _mm256_setzero_ps();
        const float *xc = xs;
        int64_t c = 0;
#define SC_NM_CHUNK(acc)                                                                   \
        do {                                                                               \
            const __m256i p = _mm256_add_epi32(                                            \
                base, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(j + 8 * c))));  \
            const __m256 wv = _mm256_loadu_ps(w + 8 * c);                                  \
            const __m256 bit2 = _mm256_castsi256_ps(_mm256_slli_epi32(p, 29));             \
            const __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(p, 28));             \
            for (int b = 0; b < NB; b++) {                                                 \
                const float *xb = xc + b * lds;                                            \
                __m256 xv = sc_pick2_ps(xb, p, bit2);                                      \
                if (four) xv = _mm256_blendv_ps(xv, sc_pick2_ps(xb + 16, p, bit2), bit3);   \
                acc[b] = _mm256_fmadd_ps(wv, xv, acc[b]);                                  \
            }                                                                              \
            if ((c & 1) == 0) { /* one line of values ahead per 16 of them */              \
                _mm_prefetch((const char *)(w + 8 * c) + SC_GEMV_AHEAD, _MM_HINT_T0);      \
                _mm_prefetch((const char *)(j + 8 * c) + SC_GEMV_AHEAD / 4, _MM_HINT_T0);  \
            }                                                                              \
            c++;                                                                           \
            xc += span;                                                                    \
        } while (0)
        while (c + 2 <= chunks) {
            SC_NM_CHUNK(acc0);
            SC_NM_CHUNK(acc1);
        }
        if (c < chunks) SC_NM_CHUNK(acc0);
#undef SC_NM_CHUNK
        for (int b = 0; b < NB; b++) {
            const float *xt = x + b * ldx + c * span;
            float t[8];
            _mm256_storeu_ps(t, _mm256_add_ps(acc0[b], acc1[b]));
            float s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
            for (int64_t g = c * gpc; g < G; g++, xt += M)
                for (int k = 0; k < N; k++) s += w[g * N + k] * xt[j[g * N + k]];
            y[i * yrs + b * ycs] = s;
        }
    }
}

#define SC_NM_PERM_NB(NB)                                                                    \
__attribute__((target("avx2,fma")))                                                          \
static void sc_nm_gemv_perm_rows##NB##_f32(int64_t G, int N, int M, const float *values,      \
    const uint8_t *idx, const float *x, int64_t ldx, const float *xs, int64_t lds, float *y,  \
    int64_t yrs, int64_t ycs, int64_t lo, int64_t hi, sc_poll_t *poll)                        \
{                                                                                             \
    sc_nm_gemv_perm_body_f32(G, N, M, values, idx, x, ldx, xs, lds, y, yrs, ycs, lo, hi,     \
                             poll, NB);                                                       \
}
SC_NM_PERM_NB(1) SC_NM_PERM_NB(2) SC_NM_PERM_NB(3) SC_NM_PERM_NB(4)
SC_NM_PERM_NB(5) SC_NM_PERM_NB(6) SC_NM_PERM_NB(7) SC_NM_PERM_NB(8)
#undef SC_NM_PERM_NB

/* Whether the permute kernel applies (a CPU with AVX2; N:M with M / N of 2
 * or 4 and N dividing 8). */
static int sc_nm_gemv_perm_ok(int N, int M)
{
    return sc_nm_perm_ok(N, M, 8) && sc_cpu_has_avx2_fma();
}

/* The permute kernel when it applies, for up to SC_NM_GEMV_MAX_B vectors
 * (xs: x as sc_nm_perm_layout_f32 leaves it): returns 1 after computing
 * y[lo:hi] for every vector, else 0. */
static int sc_nm_gemv_perm_f32(int64_t G, int N, int M, const float *values, const uint8_t *idx,
                               const float *x, int64_t ldx, const float *xs, int64_t lds,
                               int64_t nb, float *y, int64_t yrs, int64_t ycs, int64_t lo,
                               int64_t hi, sc_poll_t *poll)
{
    static void (*const rows[SC_NM_GEMV_MAX_B])(int64_t, int, int, const float *,
                                                const uint8_t *, const float *, int64_t,
                                                const float *, int64_t, float *, int64_t,
                                                int64_t, int64_t, int64_t, sc_poll_t *) = {
        sc_nm_gemv_perm_rows1_f32, sc_nm_gemv_perm_rows2_f32, sc_nm_gemv_perm_rows3_f32,
        sc_nm_gemv_perm_rows4_f32, sc_nm_gemv_perm_rows5_f32, sc_nm_gemv_perm_rows6_f32,
        sc_nm_gemv_perm_rows7_f32, sc_nm_gemv_perm_rows8_f32};
    if (!sc_nm_gemv_perm_ok(N, M) || nb < 1 || nb > SC_NM_GEMV_MAX_B) return 0;
    rows[nb - 1](G, N, M, values, idx, x, ldx, xs, lds, y, yrs, ycs, lo, hi, poll);
    return 1;
}
#define NM_GEMV_PERM sc_nm_gemv_perm_f32
#define NM_GEMV_PERM_OK sc_nm_gemv_perm_ok
#define NM_GEMV_PERM_LAYOUT sc_nm_perm_layout_f32
/* Widest batch for this kernel: its cost grows with every vector, a panel
 * tile's does not up to 8 columns; on a Zen 3 the panel kernel was ahead
 * from 7 columns (LLaMA- and BERT-sized 2:4 layers). */
#define NM_GEMV_PERM_MAX_B 6

/* One CSR row of a float32 matrix-vector product, stored values [kb, ke):
 * eight values a multiply-add, their x entries fetched by an AVX2 gather (on
 * a Xeon 0.3 ns a value, where four scalar sums took 0.55 to 1.4 ns: three
 * loads a value bind them); two accumulators, the tail in order, one fixed
 * order of summation. With a few vectors the gathers bind (about one each
 * nine cycles), so those go the panel way. AVX2 only: the caller checks
 * the CPU. */
__attribute__((target("avx2,fma")))
static float sc_csr_row_gather_f32(const float *values, const int32_t *indices, int64_t kb,
                                   int64_t ke, const float *x)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t k = kb;
    for (; k + 16 <= ke; k += 16) {
        const __m256i j0 = _mm256_loadu_si256((const __m256i *)(indices + k));
        const __m256i j1 = _mm256_loadu_si256((const __m256i *)(indices + k + 8));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values + k), _mm256_i32gather_ps(x, j0, 4), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(values + k + 8), _mm256_i32gather_ps(x, j1, 4), a1);
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(a0, a1));
    float s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    for (; k < ke; k++) s += values[k] * x[indices[k]];
    return s;
}
#define CSR_ROW_GATHER sc_csr_row_gather_f32
#define CSR_ROW_GATHER_OK sc_cpu_has_avx2_fma

/* For each mask byte, lane l's control for vpermilps on the row's next
 * values loaded as two 4-value halves (the low 4 lanes read from the
 * first, the high 4 from the one after the low nibble's set bits): the rank
 * of bit l among the set bits of its nibble (bits 0-1), with the sign bit
 * set where bit l is set (the lanes a blend keeps). 8 KiB. */
#define SC_BM_POP4(v) (((v) & 1) + (((v) >> 1) & 1) + (((v) >> 2) & 1) + (((v) >> 3) & 1))
#define SC_BM_LANE(n, l) \
    ((int32_t)((uint32_t)SC_BM_POP4((n) & ((1 << (l)) - 1)) | (((n) >> (l) & 1u) << 31)))
#define SC_BM_BYTE(b) {SC_BM_LANE((b) & 15, 0), SC_BM_LANE((b) & 15, 1), SC_BM_LANE((b) & 15, 2), \
                       SC_BM_LANE((b) & 15, 3), SC_BM_LANE((b) >> 4, 0), SC_BM_LANE((b) >> 4, 1), \
                       SC_BM_LANE((b) >> 4, 2), SC_BM_LANE((b) >> 4, 3)}
#define SC_BM_B4(b) SC_BM_BYTE(b), SC_BM_BYTE(b + 1), SC_BM_BYTE(b + 2), SC_BM_BYTE(b + 3)
#define SC_BM_B16(b) SC_BM_B4(b), SC_BM_B4(b + 4), SC_BM_B4(b + 8), SC_BM_B4(b + 12)
#define SC_BM_B64(b) SC_BM_B16(b), SC_BM_B16(b + 16), SC_BM_B16(b + 32), SC_BM_B16(b + 48)
static const int32_t sc_bm_ctl[256][8] __attribute__((aligned(32))) = {
    SC_BM_B64(0), SC_BM_B64(64), SC_BM_B64(128), SC_BM_B64(192)};
#define SC_BM_UNROLL _Pragma("GCC unroll 8")

/*
 * Rows of a float32 product with NB <= 8 vectors for A stored as a row
 * bitmask (sc_spmm_bitmask), R rows at a time: each 8 columns of a row load
 * the row's next values for the low and the high 4 lanes as two halves, move
 * them into the lanes the mask byte selects with one in-lane permute
 * (controls from sc_bm_ctl) and zero the others with a blend, one
 * multiply-add per vector then; the row is read once for all vectors. A
 * lane-crossing permute of one 8-value load instead ran the whole product
 * 1.5-1.8x slower on a Zen 3 (vpermps). With
 * GUARD a load that would pass the end of `values` is assembled lane by
 * lane; without it the caller has checked that none can. The row and
 * vector loops must unroll: gcc otherwise kept the accumulators and row
 * pointers on the stack (a Zen 3 ran 4x slower). AVX2 only: the caller
 * checks the CPU.
 */
static inline __attribute__((always_inline, target("avx2,fma,popcnt"))) void
sc_bitmask8_body_f32(int64_t K, const float *values, const float *vend, const uint8_t *mask,
                     int64_t mld, const int64_t *start, const float *x, int64_t ldx, float *y,
                     int64_t yrs, int64_t ycs, int64_t i, const int R, const int NB,
                     const int GUARD)
{
    __m256 acc[4][8];
    const float *v[4];
    const uint8_t *mk[4];
    SC_BM_UNROLL for (int r = 0; r < R; r++) {
        v[r] = values + start[i + r];
        mk[r] = mask + (i + r) * mld;
        SC_BM_UNROLL for (int b = 0; b < NB; b++) acc[r][b] = _mm256_setzero_ps();
    }
    const int64_t chunks = (K + 7) / 8;
    for (int64_t q = 0; q < chunks; q++) {
        SC_BM_UNROLL for (int r = 0; r < R; r++) {
            const uint32_t bits = mk[r][q];
            __m256 w;
            if (GUARD && v[r] + 8 > vend) {
                float t[8] = {0};
                const float *vv = v[r];
                for (uint32_t b = bits; b; b &= b - 1) t[sc_ctz32(b)] = *vv++;
                w = _mm256_loadu_ps(t);
            } else {
                const __m256i ctl = _mm256_load_si256((const __m256i *)sc_bm_ctl[bits]);
                const __m256 raw = _mm256_loadu2_m128(v[r] + __builtin_popcount(bits & 15), v[r]);
                w = _mm256_blendv_ps(_mm256_setzero_ps(), _mm256_permutevar_ps(raw, ctl),
                                     _mm256_castsi256_ps(ctl));
            }
            v[r] += __builtin_popcount(bits);
            SC_BM_UNROLL for (int b = 0; b < NB; b++)
                acc[r][b] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + b * ldx + 8 * q), acc[r][b]);
        }
    }
    SC_BM_UNROLL for (int r = 0; r < R; r++)
        SC_BM_UNROLL for (int b = 0; b < NB; b++) {
            float t[8];
            _mm256_storeu_ps(t, acc[r][b]);
            y[(i + r) * yrs + b * ycs] = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
        }
}

/* Rows [i, i + R) with the unguarded loads where the values of the last of
 * them end at least 8 floats before `vend` (every row but the last few). */
#define SC_BITMASK8_TILE(R, NBR)                                                              \
    do {                                                                                      \
        if (SC_POLL(poll, i - lo)) return;                                                    \
        const int64_t end_ = i + (R) < hi ? start[i + (R)] : vend - values;                  \
        if (values + end_ + 8 <= vend)                                                        \
            sc_bitmask8_body_f32(K, values, vend, mask, mld, start, x, ldx, y, yrs, ycs, i,   \
                                 R, NBR, 0);                                                  \
        else                                                                                  \
            sc_bitmask8_body_f32(K, values, vend, mask, mld, start, x, ldx, y, yrs, ycs, i,   \
                                 R, NBR, 1);                                                  \
    } while (0)

#define SC_BITMASK8_NB(NB)                                                                    \
__attribute__((target("avx2,fma,popcnt")))                                                    \
static void sc_bitmask8_rows##NB##_f32(int64_t K, const float *values, const float *vend,     \
    const uint8_t *mask, int64_t mld, const int64_t *start, const float *x, int64_t ldx,      \
    float *y, int64_t yrs, int64_t ycs, int64_t lo, int64_t hi, sc_poll_t *poll)              \
{                                                                                             \
    int64_t i = lo;                                                                           \
    if (NB <= 2)                                                                              \
        for (; i + 4 <= hi; i += 4) SC_BITMASK8_TILE(4, NB <= 2 ? NB : 1);                    \
    if (NB <= 4)                                                                              \
        for (; i + 2 <= hi; i += 2) SC_BITMASK8_TILE(2, NB <= 4 ? NB : 1);                    \
    for (; i < hi; i++) SC_BITMASK8_TILE(1, NB);                                              \
}
SC_BITMASK8_NB(1) SC_BITMASK8_NB(2) SC_BITMASK8_NB(3) SC_BITMASK8_NB(4)
SC_BITMASK8_NB(5) SC_BITMASK8_NB(6) SC_BITMASK8_NB(7) SC_BITMASK8_NB(8)
#undef SC_BITMASK8_NB
#undef SC_BITMASK8_TILE

/* BITMASK_ROWS of the 32-byte float32 instance on a CPU with AVX2: rows
 * [lo, hi) for nb vectors, in passes of up to 8; returns 0 (the scalar
 * loop's turn) elsewhere. */
static int sc_bitmask8_f32(int64_t K, const float *values, int64_t nnz, const uint8_t *mask,
                           int64_t mld, const int64_t *start, const float *x, int64_t ldx,
                           int64_t nb, float *y, int64_t yrs, int64_t ycs, int64_t lo,
                           int64_t hi, sc_poll_t *poll)
{
    static void (*const rows[8])(int64_t, const float *, const float *, const uint8_t *,
                                 int64_t, const int64_t *, const float *, int64_t, float *,
                                 int64_t, int64_t, int64_t, int64_t, sc_poll_t *) = {
        sc_bitmask8_rows1_f32, sc_bitmask8_rows2_f32, sc_bitmask8_rows3_f32,
        sc_bitmask8_rows4_f32, sc_bitmask8_rows5_f32, sc_bitmask8_rows6_f32,
        sc_bitmask8_rows7_f32, sc_bitmask8_rows8_f32};
    if (!sc_cpu_has_avx2_fma()) return 0;
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        const int64_t n = SC_MIN((int64_t)8, nb - b0);
        rows[n - 1](K, values, values + nnz, mask, mld, start, x + b0 * ldx, ldx, y + b0 * ycs,
                    yrs, ycs, lo, hi, poll);
    }
    return 1;
}
#define BITMASK_ROWS sc_bitmask8_f32

#include "sc_transpose.h"
/* Batch-major panels packed and staged tiles flushed by 8 x 8 register
 * transposes where the CPU has AVX2 (float by float, the two took a quarter
 * of a 2:4 384 x 384 layer's time on 8192 tokens on a Zen 3). */
#define TRANSPOSE_BLOCKS sc_transpose_f32
#define TRANSPOSE_BLOCKS_OK sc_cpu_has_avx2_fma
#endif

#include "spmm_f32.h"
#include "spmm_nm_impl.h"
#include "sc_index_i32.h"
#include "spmm_bsr_impl.h"
#include "sc_index_end.h"
#include "sc_index_i64.h"
#include "spmm_bsr_impl.h"
#include "sc_index_end.h"
#include "spmm_type_end.h"

#include "spmm_f64.h"
#include "spmm_nm_impl.h"
#include "sc_index_i32.h"
#include "spmm_bsr_impl.h"
#include "sc_index_end.h"
#include "sc_index_i64.h"
#include "spmm_bsr_impl.h"
#include "sc_index_end.h"
#include "spmm_type_end.h"

/* ---- entry points ---- */

static int sc_simd_request = SC_SIMD_AUTO;

int sc_spmm_build_has_avx512(void)
{
#ifdef SC_HAVE_AVX512_KERNELS
    return 1;
#else
    return 0;
#endif
}

/* The widest level this CPU and build have (found once; the CPU cannot
 * change under a running process). */
static int sc_simd_widest(void)
{
    static int widest = -2;
    if (widest == -2)
        widest = sc_spmm_build_has_avx512() && sc_cpu_has_avx512() ? SC_SIMD_AVX512
               : sc_build_has_target_clones() && sc_cpu_has_avx2_fma() ? SC_SIMD_AVX2
               : SC_SIMD_BASELINE;
    return widest;
}

int sc_spmm_set_simd(int level)
{
    /* the AVX2 clones are the loader's choice: there is no baseline request */
    if (level != SC_SIMD_AUTO && level != SC_SIMD_AVX2 && level != SC_SIMD_AVX512)
        return SC_ERR_VALUE;
    if (level == SC_SIMD_AVX512 && sc_simd_widest() != SC_SIMD_AVX512)
        return SC_ERR_VALUE;
    sc_simd_request = level;
    return SC_OK;
}

int sc_spmm_simd(void)
{
    const int widest = sc_simd_widest();
    return sc_simd_request == SC_SIMD_AUTO || sc_simd_request > widest ? widest : sc_simd_request;
}

/* The AVX-512 instances for batches wider than one 32-byte vector: at 8 or
 * fewer columns they would only pad the tile. */
static int sc_wide_simd(int64_t B, int vtype)
{
    return B > (vtype == SC_FLOAT32 ? 8 : 4) && sc_spmm_simd() == SC_SIMD_AVX512;
}

static int sc_block_dim_ok(int d)
{
    return d == 1 || d == 2 || d == 4 || d == 8 || d == 16 || d == 32;
}

int sc_spmm_bsr(int itype, int vtype, int64_t m, int64_t n, int64_t B, int r, int c,
                const void *indptr, const void *indices, const void *blocks,
                const void *X, int64_t xrs, int64_t xcs,
                void *Y, int64_t yrs, int64_t ycs, int n_threads,
                const sc_epilogue *ep)
{
    if (!sc_block_dim_ok(r) || !sc_block_dim_ok(c)) return SC_ERR_VALUE;
    if (m <= 0 || n <= 0 || B <= 0) return SC_ERR_VALUE;
    sc_advise_huge_output(Y, m, B, yrs, ycs, vtype == SC_FLOAT32 ? 4 : 8);
#ifdef SC_HAVE_AVX512_KERNELS
    /* a few columns go the vector way in the 32-byte instance at either
     * level, so both levels give the same products */
    if (B > SC_BSR_GEMV_MAX_B && sc_wide_simd(B, vtype))
        return sc_spmm_bsr_avx512(itype, vtype, m, n, B, r, c, indptr, indices, blocks,
                                  X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
#endif
    if (vtype == SC_FLOAT32 && itype == SC_INT32)
        return spmm_bsr_f32_i32(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    if (vtype == SC_FLOAT32 && itype == SC_INT64)
        return spmm_bsr_f32_i64(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    if (vtype == SC_FLOAT64 && itype == SC_INT32)
        return spmm_bsr_f64_i32(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    if (vtype == SC_FLOAT64 && itype == SC_INT64)
        return spmm_bsr_f64_i64(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    return SC_ERR_VALUE;
}

int sc_spmm_nm(int vtype, int64_t m, int64_t K, int64_t B, int N, int M,
               const void *values, const uint8_t *idx,
               const void *X, int64_t xrs, int64_t xcs,
               void *Y, int64_t yrs, int64_t ycs, int n_threads,
                const sc_epilogue *ep)
{
    if (N < 1 || M <= N || M > 255 || m <= 0 || K <= 0 || B <= 0) return SC_ERR_VALUE;
    sc_advise_huge_output(Y, m, B, yrs, ycs, vtype == SC_FLOAT32 ? 4 : 8);
#ifdef SC_HAVE_AVX512_KERNELS
    /* float32 vectors (one, or a few with a permute-friendly N:M) too: the
     * AVX-512 permute kernel picks 16 kept values per multiply-add. Not
     * where 512-bit operations are split in halves while x fits half of
     * L1: there the AVX-512 kernel read weights streaming from memory at
     * 12-15 GB/s on one vector, the 32-byte kernel at 17-25 (Zen 4, 2:4,
     * K up to 4096). Longer rows stay here: the 32-byte kernel reads x once
     * a row, this one once per two rows (K of 6144 to 11008: 1.2-1.35x
     * ahead). With the weights in cache (one layer timed alone) this
     * kernel was 1.3-1.8x ahead at any K, but few vectors are decoding,
     * where each layer's weights come from memory. The choice does not
     * depend on B, so a column's result does not depend on the others. */
    const int short_x = K * (int64_t)sizeof(float) <= (16 << 10);
    if (sc_wide_simd(B, vtype)
        || (vtype == SC_FLOAT32 && sc_spmm_simd() == SC_SIMD_AVX512
            && !(sc_cpu_avx512_split() && short_x)
            && (B == 1 || (B <= SC_NM_GEMV_MAX_B && sc_nm_perm_ok(N, M, 16)))))
        return sc_spmm_nm_avx512(vtype, m, K, B, N, M, values, idx, X, xrs, xcs,
                                 Y, yrs, ycs, n_threads, ep);
#endif
    if (vtype == SC_FLOAT32)
        return spmm_nm_f32(m, K, B, N, M, values, idx, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    if (vtype == SC_FLOAT64)
        return spmm_nm_f64(m, K, B, N, M, values, idx, X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
    return SC_ERR_VALUE;
}

int sc_spmm_bitmask(int vtype, int64_t m, int64_t K, int64_t B, const void *values,
                    const uint8_t *mask, int64_t mld, const int64_t *start, int64_t nnz,
                    const void *X, int64_t xrs, int64_t xcs,
                    void *Y, int64_t yrs, int64_t ycs, int n_threads, const sc_epilogue *ep)
{
    if (m <= 0 || K <= 0 || B <= 0 || nnz < 0 || mld < (K + 7) / 8) return SC_ERR_VALUE;
    sc_advise_huge_output(Y, m, B, yrs, ycs, vtype == SC_FLOAT32 ? 4 : 8);
#ifdef SC_HAVE_AVX512_KERNELS
    if (vtype == SC_FLOAT32 && sc_spmm_simd() == SC_SIMD_AVX512)
        return sc_spmm_bitmask_avx512(vtype, m, K, B, values, mask, mld, start, nnz,
                                      X, xrs, xcs, Y, yrs, ycs, n_threads, ep);
#endif
    if (vtype == SC_FLOAT32)
        return spmm_bitmask_f32(m, K, B, values, mask, mld, start, nnz, X, xrs, xcs,
                                Y, yrs, ycs, n_threads, ep);
    if (vtype == SC_FLOAT64)
        return spmm_bitmask_f64(m, K, B, values, mask, mld, start, nnz, X, xrs, xcs,
                                Y, yrs, ycs, n_threads, ep);
    return SC_ERR_VALUE;
}

int sc_bitmask_expand(int vtype, int64_t m, int64_t K, const void *values, const uint8_t *mask,
                      int64_t mld, const int64_t *start, void *W, int64_t wld, int n_threads)
{
    if (m <= 0 || K <= 0 || mld < (K + 7) / 8 || wld < K) return SC_ERR_VALUE;
#ifdef SC_HAVE_AVX512_KERNELS
    if (vtype == SC_FLOAT32 && sc_spmm_simd() == SC_SIMD_AVX512)
        return sc_bitmask_expand_avx512(vtype, m, K, values, mask, mld, start, W, wld,
                                        n_threads);
#endif
    if (vtype == SC_FLOAT32)
        return bitmask_expand_f32(m, K, values, mask, mld, start, W, wld, n_threads);
    if (vtype == SC_FLOAT64)
        return bitmask_expand_f64(m, K, values, mask, mld, start, W, wld, n_threads);
    return SC_ERR_VALUE;
}

int sc_sddmm_bsr(int itype, int vtype, int64_t m, int64_t n, int64_t B, int r, int c,
                 const void *indptr, const void *indices,
                 const void *G, int64_t grs, int64_t gcs,
                 const void *X, int64_t xrs, int64_t xcs,
                 void *out, int n_threads)
{
    if (!sc_block_dim_ok(r) || !sc_block_dim_ok(c)) return SC_ERR_VALUE;
    if (m <= 0 || n <= 0 || B <= 0) return SC_ERR_VALUE;
    if (vtype == SC_FLOAT32 && itype == SC_INT32)
        return sddmm_bsr_f32_i32(m, n, B, r, c, indptr, indices, G, grs, gcs, X, xrs, xcs, out, n_threads);
    if (vtype == SC_FLOAT32 && itype == SC_INT64)
        return sddmm_bsr_f32_i64(m, n, B, r, c, indptr, indices, G, grs, gcs, X, xrs, xcs, out, n_threads);
    if (vtype == SC_FLOAT64 && itype == SC_INT32)
        return sddmm_bsr_f64_i32(m, n, B, r, c, indptr, indices, G, grs, gcs, X, xrs, xcs, out, n_threads);
    if (vtype == SC_FLOAT64 && itype == SC_INT64)
        return sddmm_bsr_f64_i64(m, n, B, r, c, indptr, indices, G, grs, gcs, X, xrs, xcs, out, n_threads);
    return SC_ERR_VALUE;
}

int sc_sddmm_nm(int vtype, int64_t m, int64_t K, int64_t B, int N, int M,
                const uint8_t *idx,
                const void *G, int64_t grs, int64_t gcs,
                const void *X, int64_t xrs, int64_t xcs,
                void *out, int n_threads)
{
    if (N < 1 || M <= N || M > 255 || m <= 0 || K <= 0 || B <= 0) return SC_ERR_VALUE;
    if (vtype == SC_FLOAT32)
        return sddmm_nm_f32(m, K, B, N, M, idx, G, grs, gcs, X, xrs, xcs, out, n_threads);
    if (vtype == SC_FLOAT64)
        return sddmm_nm_f64(m, K, B, N, M, idx, G, grs, gcs, X, xrs, xcs, out, n_threads);
    return SC_ERR_VALUE;
}

int sc_nm_compress(int vtype, int64_t rows, int64_t K, int N, int M,
                   const void *W, int64_t wrs, int64_t wcs,
                   const uint8_t *mask, int64_t mrs, int64_t mcs,
                   void *values, uint8_t *idx, int64_t *bad, int n_threads)
{
    if (N < 1 || M <= N || M > 16) return SC_ERR_VALUE;
    if (rows <= 0 || K <= 0) return SC_OK;
    if (vtype == SC_FLOAT32)
        return nm_compress_f32(rows, K, N, M, W, wrs, wcs, mask, mrs, mcs, values, idx, bad, n_threads);
    if (vtype == SC_FLOAT64)
        return nm_compress_f64(rows, K, N, M, W, wrs, wcs, mask, mrs, mcs, values, idx, bad, n_threads);
    return SC_ERR_VALUE;
}

int sc_nm_prune(int vtype, int stype, int64_t rows, int64_t K, int N, int M,
                const void *W, int64_t wrs, int64_t wcs,
                const void *score, int64_t srs, int64_t scs,
                void *values, uint8_t *idx, int n_threads)
{
    if (N < 1 || M <= N || M > 16) return SC_ERR_VALUE;
    if (score && stype != SC_FLOAT32 && stype != SC_FLOAT64) return SC_ERR_VALUE;
    if (rows <= 0 || K <= 0) return SC_OK;
    if (vtype == SC_FLOAT32)
        return nm_prune_f32(stype, rows, K, N, M, W, wrs, wcs, score, srs, scs, values, idx, n_threads);
    if (vtype == SC_FLOAT64)
        return nm_prune_f64(stype, rows, K, N, M, W, wrs, wcs, score, srs, scs, values, idx, n_threads);
    return SC_ERR_VALUE;
}
