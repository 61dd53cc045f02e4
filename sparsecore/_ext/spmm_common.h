/*
 * spmm_common.h -- what every instance of the SpMM templates shares: the
 * thread split, aligned scratch, and the plan that cuts X into column panels.
 * Included by spmm.c and by the AVX-512 instances in spmm_avx512.c, so the
 * functions are static inline (a copy per file, compiled for its target).
 */
#ifndef SPARSECORE_SPMM_COMMON_H
#define SPARSECORE_SPMM_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spmm.h"
#include "sc_act.h"
#include "sc_common.h"

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

/* Rows of a batch-major X a panel is packed from at a time (a multiple of 8:
 * the register transposes take 8 x 8 blocks). */
#define SC_PANEL_PACK_ROWS 128

/* ---- small helpers shared by every instance ---- */

static inline void *sc_aligned_alloc(size_t bytes)
{
    /* 64-byte aligned block; the offset to the malloc'ed pointer is stored
     * just below the returned address */
    unsigned char *raw = (unsigned char *)malloc(bytes + 64 + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t p = ((uintptr_t)(raw + sizeof(void *)) + 63) & ~(uintptr_t)63;
    ((void **)p)[-1] = raw;
    return (void *)p;
}

static inline void sc_aligned_free(void *p)
{
    if (p) free(((void **)p)[-1]);
}

static inline int sc_team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Threads for `work` multiply-adds over `units` independent row units. */
static inline int sc_threads_for(int n_threads, int64_t work, int64_t units)
{
    int64_t nt = work / SC_SPMM_GRAIN;
    if (nt > n_threads) nt = n_threads;
    if (nt > units) nt = units;
    return nt < 1 ? 1 : (int)nt;
}

/* This thread's share [lo, hi) of `total` units, cut at multiples of `align`. */
static inline void sc_even_split(int64_t total, int64_t align, int64_t *lo, int64_t *hi)
{
    const int tid = SC_OMP_THREAD_NUM(), nth = sc_team_size();
    const int64_t chunks = (total + align - 1) / align;
    *lo = SC_MIN(total, (chunks * tid / nth) * align);
    *hi = SC_MIN(total, (chunks * (tid + 1) / nth) * align);
}


/* Bytes of stored values the N:M vector kernels prefetch ahead: the values of
 * consecutive rows are one stream across 4 KiB pages, where the hardware
 * prefetcher stops (measured on a Xeon: 4096 beat 2048 and none). */
#define SC_GEMV_AHEAD 4096

/* Widest batch the N:M vector kernels take whole: a row's stored values are
 * read once for every column, so a few columns cost about what one does
 * while the weights stream from memory, where a panel tile would fill only
 * B of its lanes. */
#define SC_NM_GEMV_MAX_B 8

/* Vectors a row-bitmask product reads each row of A for at once (wider
 * batches take passes of this many). */
#define SC_BITMASK_MAX_B 16

/* Index of the lowest set bit of a nonzero x. */
static inline int sc_ctz32(uint32_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(x);
#else
    int n = 0;
    while (!(x & 1u)) { x >>= 1; n++; }
    return n;
#endif
}

/* The same for block rows whose blocks have vector-wide rows or columns. */
#define SC_BSR_GEMV_MAX_B 6

/* Vectors per slice of a block for the repeated-x kernel: enough for a few
 * independent sums with one column, at most 12 accumulators with more. */
static inline int sc_rep_vectors(int r, int c, int vl, int64_t ncols)
{
    const int per_block = r * c / vl;
    const int cap = ncols <= 2 ? 4 : 2;
    return per_block < cap ? per_block : cap;
}

/* Whether the lane-permute N:M vector kernels cover N:M with `lanes`-float
 * vectors: N a power of two up to lanes / 2, M of 2N or 4N. */
static inline int sc_nm_perm_ok(int N, int M, int lanes)
{
    return N >= 1 && N <= lanes / 2 && (N & (N - 1)) == 0 && (M == 2 * N || M == 4 * N);
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
    int64_t total;  /* elements of all packed panels */
    void *buf;
} sc_xplan;

/*
 * Cut the batch into panels of at most `max_row_bytes` per row whose n_pad
 * rows fit in half of L2, and of at least `min_cols` columns (a multiple of
 * the vector width: the widest tile the caller wants even when that panel
 * outgrows L2). X is read in place when it is batch-contiguous,
 * 32-byte aligned (rows too), needs no zero rows or columns and fits one
 * panel; otherwise every panel is packed, zero padded to the vector width and
 * to n_pad rows (row strides that are multiples of 4 KiB get one more vector
 * against cache-set aliasing). numpy only aligns to 16 bytes, and a vector
 * load that straddles two cache lines costs two. The caller allocates the
 * packed panels with sc_plan_alloc, or packs each into a buffer of its own.
 */
static inline int sc_plan_x(sc_xplan *pl, const void *X, int64_t n, int64_t n_pad, int64_t B,
                     int64_t xrs, int64_t xcs, int64_t vl, size_t es, int64_t max_row_bytes,
                     int64_t min_cols)
{
    memset(pl, 0, sizeof *pl);
    const int64_t Bv = SC_ROUND_UP(B, vl);
    const int64_t budget = sc_spmm_l2_bytes() / 2;
    int64_t Bp = budget / (n_pad * (int64_t)es);
    if (Bp > max_row_bytes / (int64_t)es) Bp = max_row_bytes / (int64_t)es;
    Bp = (Bp / (4 * vl)) * (4 * vl);
    if (Bp < min_cols) Bp = min_cols;
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
    pl->total = total;
    return SC_OK;
}

/* Allocate the buffer that holds every packed panel (after sc_plan_x); a
 * plan that reads X in place needs none. */
static inline int sc_plan_alloc(sc_xplan *pl, size_t es)
{
    if (pl->total == 0) return SC_OK;
    pl->buf = sc_aligned_alloc((size_t)pl->total * es);
    return pl->buf ? SC_OK : SC_ERR_NOMEM;
}

/* Widest packed panel in elements (n_pad rows), for per-thread buffers. */
static inline int64_t sc_plan_max_panel(const sc_xplan *pl, int64_t n_pad)
{
    int64_t e = 0;
    for (int p = 0; p < pl->npanels; p++)
        if (pl->panels[p].off >= 0) e = SC_MAX(e, n_pad * pl->panels[p].ldx);
    return e;
}

/* Widest panel (vector-rounded), for per-thread staging buffers. */
static inline int64_t sc_plan_max_width(const sc_xplan *pl)
{
    int64_t w = 0;
    for (int p = 0; p < pl->npanels; p++) w = SC_MAX(w, pl->panels[p].wv);
    return w;
}

/* Rows of Y tiles staged per thread before a transposed flush (>= 32, the
 * tallest block). */
#define SC_STAGE_ROWS 32

static inline void sc_plan_free(sc_xplan *pl)
{
    if (pl->panels && pl->panels != &pl->one) free(pl->panels);
    sc_aligned_free(pl->buf);
    pl->panels = NULL;
    pl->buf = NULL;
}

#ifdef SC_HAVE_AVX512_KERNELS
/* The AVX-512 instances of the products (spmm_avx512.c); same contracts as
 * sc_spmm_bsr and sc_spmm_nm, callable only on a CPU with AVX-512. */
int sc_spmm_bsr_avx512(int itype, int vtype, int64_t m, int64_t n, int64_t B, int r, int c,
                       const void *indptr, const void *indices, const void *blocks,
                       const void *X, int64_t xrs, int64_t xcs,
                       void *Y, int64_t yrs, int64_t ycs, int n_threads,
                       const sc_epilogue *ep);
int sc_spmm_bitmask_avx512(int vtype, int64_t m, int64_t K, int64_t B, const void *values,
                           const uint8_t *mask, int64_t mld, const int64_t *start, int64_t nnz,
                           const void *X, int64_t xrs, int64_t xcs,
                           void *Y, int64_t yrs, int64_t ycs, int n_threads,
                           const sc_epilogue *ep);
int sc_bitmask_expand_avx512(int vtype, int64_t m, int64_t K, const void *values,
                            const uint8_t *mask, int64_t mld, const int64_t *start,
                            void *W, int64_t wld, int n_threads);
int sc_spmm_nm_avx512(int vtype, int64_t m, int64_t K, int64_t B, int N, int M,
                      const void *values, const uint8_t *idx,
                      const void *X, int64_t xrs, int64_t xcs,
                      void *Y, int64_t yrs, int64_t ycs, int n_threads,
                      const sc_epilogue *ep);
#endif

#endif
