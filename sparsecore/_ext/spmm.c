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

#define SC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SC_ROUND_UP(x, q) ((((x) + (q) - 1) / (q)) * (q))

/* Multiply-adds a thread must get before a second one is worth waking. */
#ifndef SC_SPMM_GRAIN
#define SC_SPMM_GRAIN (1 << 18)
#endif

/* Widest X panel row: the multi-row tiles of block rows reuse every X vector
 * r times and prefer wide panels (fewer passes over the weights); one-row
 * tiles (CSR, 1 x c) and the N:M kernel read X once per stored value and run
 * faster on narrower panels that stay closer to L1. Measured on Zen 5. */
#define SC_PANEL_BYTES_WIDE 512
#define SC_PANEL_BYTES_NARROW 256

/* ---- small helpers shared by every instance ---- */

static void *sc_aligned_alloc(size_t bytes)
{
    /* 64-byte aligned block; the offset to the malloc'ed pointer is stored
     * just below the returned address */
    unsigned char *raw = (unsigned char *)malloc(bytes + 64 + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t p = ((uintptr_t)(raw + sizeof(void *)) + 63) & ~(uintptr_t)63;
    ((void **)p)[-1] = raw;
    return (void *)p;
}

static void sc_aligned_free(void *p)
{
    if (p) free(((void **)p)[-1]);
}

static int sc_team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Threads for `work` multiply-adds over `units` independent row units. */
static int sc_threads_for(int n_threads, int64_t work, int64_t units)
{
    int64_t nt = work / SC_SPMM_GRAIN;
    if (nt > n_threads) nt = n_threads;
    if (nt > units) nt = units;
    return nt < 1 ? 1 : (int)nt;
}

/* This thread's share [lo, hi) of `total` units, cut at multiples of `align`. */
static void sc_even_split(int64_t total, int64_t align, int64_t *lo, int64_t *hi)
{
    const int tid = SC_OMP_THREAD_NUM(), nth = sc_team_size();
    const int64_t chunks = (total + align - 1) / align;
    *lo = SC_MIN(total, (chunks * tid / nth) * align);
    *hi = SC_MIN(total, (chunks * (tid + 1) / nth) * align);
}

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

/* ---- panels of X ---- */

typedef struct {
    int64_t b0;   /* first batch column */
    int64_t w;    /* valid columns */
    int64_t wv;   /* columns rounded up to the vector width: all readable */
    int64_t ldx;  /* elements between rows */
    int64_t off;  /* element offset in the pack buffer; -1: read X in place */
} sc_panel;

typedef struct {
    int npanels;
    sc_panel *panels;
    sc_panel one;
    void *buf;
} sc_xplan;

/*
 * Cut the batch into panels of at most `max_row_bytes` per row whose n_pad
 * rows fit in half of L2. X is read in place when it is batch-contiguous,
 * 32-byte aligned (rows too), needs no zero rows or columns and fits one
 * panel; otherwise every panel is packed, zero padded to the vector width and
 * to n_pad rows (row strides that are multiples of 4 KiB get one more vector
 * against cache-set aliasing). numpy only aligns to 16 bytes, and a vector
 * load that straddles two cache lines costs two.
 */
static int sc_plan_x(sc_xplan *pl, const void *X, int64_t n, int64_t n_pad, int64_t B,
                     int64_t xrs, int64_t xcs, int64_t vl, size_t es, int64_t max_row_bytes)
{
    memset(pl, 0, sizeof *pl);
    const int64_t Bv = SC_ROUND_UP(B, vl);
    const int64_t budget = sc_spmm_l2_bytes() / 2;
    int64_t Bp = budget / (n_pad * (int64_t)es);
    if (Bp > max_row_bytes / (int64_t)es) Bp = max_row_bytes / (int64_t)es;
    Bp = (Bp / (4 * vl)) * (4 * vl);
    if (Bp < 2 * vl) Bp = 2 * vl;
    if (Bp > Bv) Bp = Bv;
    const int aligned = ((uintptr_t)X % 32 == 0) && ((xrs * (int64_t)es) % 32 == 0);
    if (xcs == 1 && aligned && n_pad == n && B == Bv && B <= Bp) {
        pl->one.b0 = 0;
        pl->one.w = pl->one.wv = B;
        pl->one.ldx = xrs;
        pl->one.off = -1;
        pl->panels = &pl->one;
        pl->npanels = 1;
        return SC_OK;
    }
    const int64_t np = (Bv + Bp - 1) / Bp;
    const int64_t pw = SC_ROUND_UP((Bv + np - 1) / np, vl);
    pl->panels = (sc_panel *)malloc((size_t)np * sizeof(sc_panel));
    if (!pl->panels) return SC_ERR_NOMEM;
    int64_t total = 0, p = 0;
    for (int64_t b0 = 0; b0 < Bv; b0 += pw, p++) {
        sc_panel *pn = &pl->panels[p];
        pn->b0 = b0;
        pn->wv = SC_MIN(pw, Bv - b0);
        pn->w = SC_MIN(pn->wv, B - b0);
        pn->ldx = pn->wv;
        if ((pn->ldx * (int64_t)es) % 4096 == 0) pn->ldx += vl;
        pn->off = total;
        total += n_pad * pn->ldx;
    }
    pl->npanels = (int)p;
    pl->buf = sc_aligned_alloc((size_t)total * es);
    if (!pl->buf) {
        free(pl->panels);
        pl->panels = NULL;
        return SC_ERR_NOMEM;
    }
    return SC_OK;
}

/* Widest panel (vector-rounded), for per-thread staging buffers. */
static int64_t sc_plan_max_width(const sc_xplan *pl)
{
    int64_t w = 0;
    for (int p = 0; p < pl->npanels; p++) w = SC_MAX(w, pl->panels[p].wv);
    return w;
}

/* Rows of Y tiles staged per thread before a transposed flush (>= 32, the
 * tallest block). */
#define SC_STAGE_ROWS 32

static void sc_plan_free(sc_xplan *pl)
{
    if (pl->panels && pl->panels != &pl->one) free(pl->panels);
    sc_aligned_free(pl->buf);
    pl->panels = NULL;
    pl->buf = NULL;
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

/* Lanes of a and b by index p (0-15: a's lanes, then b's). */
__attribute__((target("avx2,fma"))) static inline __m256
sc_permute2_ps(__m256 a, __m256 b, __m256i p)
{
    const __m256 from_b = _mm256_castsi256_ps(_mm256_slli_epi32(p, 28));
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(a, p), _mm256_permutevar8x32_ps(b, p), from_b);
}

/* One row of an N:M float32 product with a vector: the kept values of the
 * row, 8 at a time, pick their x entries with lane permutes of the 8-float
 * slices of x they fall in (M / N slices per 8 kept values), so a
 * multiply-add covers 8 kept values where the scalar loop covers one.
 * Lane l of chunk c always meets the same kept value, and the chunks
 * alternate between two accumulators summed in one fixed order: the result
 * depends on the row alone, never on the thread. AVX2 only: the caller
 * checks the CPU. */
__attribute__((target("avx2,fma")))
static void sc_nm_gemv_perm_rows_f32(int64_t G, int N, int M, const float *values,
                                     const uint8_t *idx, const float *x, float *y,
                                     int64_t ys, int64_t lo, int64_t hi, sc_poll_t *poll)
{
    const int64_t gn = G * N;
    const int gpc = 8 / N;                      /* groups per chunk of 8 kept values */
    const int64_t chunks = G / gpc, xstep = (int64_t)gpc * M;
    int lane[8];                                /* a lane's group offset in its slice pair */
    for (int l = 0; l < 8; l++) {
        const int off = (l / N) * M;
        lane[l] = ((off >> 3) & 1) * 8 + (off & 7);
    }
    const __m256i base = _mm256_loadu_si256((const __m256i *)lane);
    const int four = xstep == 32;               /* four slices per chunk: 1:4, 2:8, 4:16 */
    for (int64_t i = lo; i < hi; i++) {
        if (SC_POLL(poll, i - lo)) return;
        const float *w = values + i * gn;
        const uint8_t *j = idx + i * gn;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        const float *xc = x;
        int64_t c = 0;
#define SC_NM_CHUNK(acc)                                                                   \
        do {                                                                               \
            const __m256i p = _mm256_add_epi32(                                            \
                base, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(j + 8 * c))));  \
            __m256 xs = sc_permute2_ps(_mm256_loadu_ps(xc), _mm256_loadu_ps(xc + 8), p);   \
            if (four)                                                                      \
                xs = _mm256_blend_ps(xs, sc_permute2_ps(_mm256_loadu_ps(xc + 16),          \
                                                        _mm256_loadu_ps(xc + 24), p), 0xf0); \
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * c), xs, acc);                    \
            c++;                                                                           \
            xc += xstep;                                                                   \
        } while (0)
        while (c + 2 <= chunks) {
            SC_NM_CHUNK(acc0);
            SC_NM_CHUNK(acc1);
        }
        if (c < chunks) SC_NM_CHUNK(acc0);
#undef SC_NM_CHUNK
        float t[8];
        _mm256_storeu_ps(t, _mm256_add_ps(acc0, acc1));
        float s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
        for (int64_t g = c * gpc; g < G; g++, xc += M)
            for (int k = 0; k < N; k++) s += w[g * N + k] * xc[j[g * N + k]];
        y[i * ys] = s;
    }
}

/* The permute kernel when it applies (a CPU with AVX2; N:M with M / N of 2
 * or 4 and N dividing 8): returns 1 after computing y[lo:hi], else 0. */
static int sc_nm_gemv_perm_f32(int64_t G, int N, int M, const float *values, const uint8_t *idx,
                               const float *x, float *y, int64_t ys, int64_t lo, int64_t hi,
                               sc_poll_t *poll)
{
    if ((N != 1 && N != 2 && N != 4) || (M != 2 * N && M != 4 * N) || !sc_cpu_has_avx2_fma())
        return 0;
    sc_nm_gemv_perm_rows_f32(G, N, M, values, idx, x, y, ys, lo, hi, poll);
    return 1;
}
#define NM_GEMV_PERM sc_nm_gemv_perm_f32
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

static int sc_block_dim_ok(int d)
{
    return d == 1 || d == 2 || d == 4 || d == 8 || d == 16 || d == 32;
}

int sc_spmm_bsr(int itype, int vtype, int64_t m, int64_t n, int64_t B, int r, int c,
                const void *indptr, const void *indices, const void *blocks,
                const void *X, int64_t xrs, int64_t xcs,
                void *Y, int64_t yrs, int64_t ycs, int n_threads)
{
    if (!sc_block_dim_ok(r) || !sc_block_dim_ok(c)) return SC_ERR_VALUE;
    if (m <= 0 || n <= 0 || B <= 0) return SC_ERR_VALUE;
    if (vtype == SC_FLOAT32 && itype == SC_INT32)
        return spmm_bsr_f32_i32(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads);
    if (vtype == SC_FLOAT32 && itype == SC_INT64)
        return spmm_bsr_f32_i64(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads);
    if (vtype == SC_FLOAT64 && itype == SC_INT32)
        return spmm_bsr_f64_i32(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads);
    if (vtype == SC_FLOAT64 && itype == SC_INT64)
        return spmm_bsr_f64_i64(m, n, B, r, c, indptr, indices, blocks, X, xrs, xcs, Y, yrs, ycs, n_threads);
    return SC_ERR_VALUE;
}

int sc_spmm_nm(int vtype, int64_t m, int64_t K, int64_t B, int N, int M,
               const void *values, const uint8_t *idx,
               const void *X, int64_t xrs, int64_t xcs,
               void *Y, int64_t yrs, int64_t ycs, int n_threads)
{
    if (N < 1 || M <= N || M > 255 || m <= 0 || K <= 0 || B <= 0) return SC_ERR_VALUE;
    if (vtype == SC_FLOAT32)
        return spmm_nm_f32(m, K, B, N, M, values, idx, X, xrs, xcs, Y, yrs, ycs, n_threads);
    if (vtype == SC_FLOAT64)
        return spmm_nm_f64(m, K, B, N, M, values, idx, X, xrs, xcs, Y, yrs, ycs, n_threads);
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
