/*
 * spmm_bsr_impl.h -- block-sparse (BSR; CSR is 1 x 1) SpMM, GEMV and SDDMM
 * for one value type and one index type. Included by spmm.c with T, SFX,
 * VEC, VL, the vector operations, IDX and ISFX defined.
 */

#define FNI(name) SC_NAME3(name, SFX, ISFX)

/* Whether this instance takes batches of up to SC_BSR_GEMV_MAX_B columns
 * (the caller sends those to the 32-byte instance only, so the 64-byte one
 * leaves them out). */
#ifndef SC_BSR_SMALL_B
#define SC_BSR_SMALL_B 1
#endif

/* The tallest tile: 4 rows, or 8 where the including file has the registers
 * (8 x 3 vectors is 24 accumulators and 11 loads per 24 FMAs). */
#ifndef SC_BSR_RMAX
#define SC_BSR_RMAX 4
#endif

/*
 * Register-blocked micro-kernel: an R x (V*VL) tile of Y (R rows of one block
 * row, V vectors of the batch) stays in registers while the block row's
 * stored blocks stream past. For every block column t the kernel loads V
 * vectors of the X row (L1/L2, from the packed panel), broadcasts R weights
 * and issues R*V FMAs: 4 x 2 is 8 FMAs per 6 loads, FMA-bound like a dense
 * GEMM micro-kernel (the r x 1 "tiles along M" of Intel's sparse library and
 * XNNPACK's NR-blocked SpMM). C1 fixes c == 1 (r x 1 blocks and CSR). With
 * `cont` the tile adds to the partial sums in y (whole vectors, ycs == 1)
 * instead of starting from zero: every sum runs in block order through one
 * accumulator, so splitting the blocks into chunks changes no result.
 */
#define SC_BSR_MK(R, V, C1)                                                    \
SC_INLINE void FNI(bsr_mk_##R##x##V##_c##C1)(const IDX *SC_RESTRICT ind,        \
    int64_t kb, int64_t ke, const T *SC_RESTRICT w0, int64_t rc, int c,         \
    const T *SC_RESTRICT xp, int64_t ldx, T *SC_RESTRICT y, int64_t yrs,       \
    int64_t ycs, int64_t nvalid, int cont)                                    \
{                                                                             \
    const int cc = (C1) ? 1 : c;                                              \
    VEC acc[R][V];                                                            \
    for (int i = 0; i < R; i++)                                               \
        for (int v = 0; v < V; v++)                                           \
            acc[i][v] = cont ? VLOAD(y + i * yrs + v * VL) : VZERO();         \
    const int64_t cld = (int64_t)cc * ldx;                                    \
    for (int64_t k = kb; k < ke; k++) {                                       \
        const T *xb = xp + (int64_t)ind[k] * cld;                             \
        const T *wb = w0 + k * rc;                                            \
        for (int t = 0; t < cc; t++) {                                        \
            VEC xv[V];                                                        \
            for (int v = 0; v < V; v++) xv[v] = VLOAD(xb + t * ldx + v * VL); \
            for (int i = 0; i < R; i++) {                                     \
                const T wi = wb[i * cc + t];                                  \
                for (int v = 0; v < V; v++) acc[i][v] = VFMA(acc[i][v], wi, xv[v]); \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    SC_STORE_TILE(R, V, acc, y, yrs, ycs, nvalid);                            \
}

/*
 * One-row micro-kernel (CSR and 1 x c blocks): a single row's FMAs would
 * form one dependency chain per vector, so consecutive stored values
 * alternate between two accumulator sets that are added at the end.
 */
#define SC_BSR_MK1(V, C1)                                                      \
SC_INLINE void FNI(bsr_mk_1x##V##_c##C1)(const IDX *SC_RESTRICT ind,            \
    int64_t kb, int64_t ke, const T *SC_RESTRICT w0, int64_t rc, int c,         \
    const T *SC_RESTRICT xp, int64_t ldx, T *SC_RESTRICT y, int64_t yrs,       \
    int64_t ycs, int64_t nvalid, int cont)                                    \
{                                                                             \
    (void)cont; /* always 0: one-row tiles walk their block row whole */     \
    VEC a0[V], a1[V];                                                         \
    for (int v = 0; v < V; v++) { a0[v] = VZERO(); a1[v] = VZERO(); }         \
    if (C1) {                                                                 \
        int64_t k = kb;                                                       \
        for (; k + 2 <= ke; k += 2) {                                         \
            const T *x0 = xp + (int64_t)ind[k] * ldx;                         \
            const T *x1 = xp + (int64_t)ind[k + 1] * ldx;                     \
            const T w0k = w0[k * rc], w1k = w0[(k + 1) * rc];                 \
            for (int v = 0; v < V; v++) {                                     \
                a0[v] = VFMA(a0[v], w0k, VLOAD(x0 + v * VL));                 \
                a1[v] = VFMA(a1[v], w1k, VLOAD(x1 + v * VL));                 \
            }                                                                 \
        }                                                                     \
        if (k < ke) {                                                         \
            const T *x0 = xp + (int64_t)ind[k] * ldx;                         \
            const T w0k = w0[k * rc];                                         \
            for (int v = 0; v < V; v++) a0[v] = VFMA(a0[v], w0k, VLOAD(x0 + v * VL)); \
        }                                                                     \
    } else {                                                                  \
        const int64_t cld = (int64_t)c * ldx;                                 \
        for (int64_t k = kb; k < ke; k++) {                                   \
            const T *xb = xp + (int64_t)ind[k] * cld;                         \
            const T *wb = w0 + k * rc;                                        \
            for (int t = 0; t < c; t += 2) {                                  \
                const T *x0 = xb + t * ldx, *x1 = x0 + ldx;                    \
                for (int v = 0; v < V; v++) {                                 \
                    a0[v] = VFMA(a0[v], wb[t], VLOAD(x0 + v * VL));           \
                    a1[v] = VFMA(a1[v], wb[t + 1], VLOAD(x1 + v * VL));       \
                }                                                             \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    VEC acc[1][V];                                                            \
    for (int v = 0; v < V; v++) acc[0][v] = VADD(a0[v], a1[v]);               \
    SC_STORE_TILE(1, V, acc, y, yrs, ycs, nvalid);                            \
}

#if SC_BSR_RMAX >= 8
SC_BSR_MK(8, 3, 1) SC_BSR_MK(8, 3, 0)
SC_BSR_MK(8, 2, 1) SC_BSR_MK(8, 2, 0)
SC_BSR_MK(8, 1, 1) SC_BSR_MK(8, 1, 0)
#endif
SC_BSR_MK(4, 2, 1) SC_BSR_MK(4, 2, 0)
SC_BSR_MK(4, 1, 1) SC_BSR_MK(4, 1, 0)
SC_BSR_MK(2, 4, 1) SC_BSR_MK(2, 4, 0)
SC_BSR_MK(2, 2, 1) SC_BSR_MK(2, 2, 0)
SC_BSR_MK(2, 1, 1) SC_BSR_MK(2, 1, 0)
SC_BSR_MK1(4, 1) SC_BSR_MK1(4, 0)
SC_BSR_MK1(2, 1) SC_BSR_MK1(2, 0)
SC_BSR_MK1(1, 1) SC_BSR_MK1(1, 0)

#define SC_BSR_CALL(R, V, c1, ...)                                             \
    do {                                                                      \
        if (c1) FNI(bsr_mk_##R##x##V##_c1)(__VA_ARGS__);                       \
        else FNI(bsr_mk_##R##x##V##_c0)(__VA_ARGS__);                          \
    } while (0)

/* Rows [i_lo, i_hi) of one block row of r x c blocks (its blocks k0..k1-1;
 * adding to the partial sums at ybase when cont) in register tiles across
 * the panel; the tiles' rows start at ybase + i * tr, columns tc apart. */
SC_INLINE void FNI(bsr_tiles)(const sc_panel *pn, const T *xp, int r, int c, const IDX *indices,
                              int64_t k0, int64_t k1, int cont, const T *blocks, T *ybase,
                              int64_t tr, int64_t tc, int64_t wlim, int i_lo, int i_hi)
{
    const int64_t rc = (int64_t)r * c, ldx = pn->ldx;
    const int c1 = c == 1;
    for (int i0 = i_lo; i0 < i_hi;) {
        const int left = i_hi - i0;
        const int R = left >= 8 && SC_BSR_RMAX >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        const T *w0 = blocks + (int64_t)i0 * c;
        T *yr = ybase + i0 * tr;
        int64_t off = 0;
#define SC_BSR_ARGS(VV) indices, k0, k1, w0, rc, c, xp + off, ldx, yr + off * tc, tr, tc, \
                        SC_MIN((VV) * VL, wlim - off), cont
#if SC_BSR_RMAX >= 8
        if (R == 8) {
            for (; off + 3 * VL <= pn->wv; off += 3 * VL) SC_BSR_CALL(8, 3, c1, SC_BSR_ARGS(3));
            for (; off + 2 * VL <= pn->wv; off += 2 * VL) SC_BSR_CALL(8, 2, c1, SC_BSR_ARGS(2));
            for (; off < pn->wv; off += VL) SC_BSR_CALL(8, 1, c1, SC_BSR_ARGS(1));
        } else
#endif
        if (R == 4) {
            for (; off + 2 * VL <= pn->wv; off += 2 * VL) SC_BSR_CALL(4, 2, c1, SC_BSR_ARGS(2));
            for (; off < pn->wv; off += VL) SC_BSR_CALL(4, 1, c1, SC_BSR_ARGS(1));
        } else if (R == 2) {
            for (; off + 4 * VL <= pn->wv; off += 4 * VL) SC_BSR_CALL(2, 4, c1, SC_BSR_ARGS(4));
            for (; off + 2 * VL <= pn->wv; off += 2 * VL) SC_BSR_CALL(2, 2, c1, SC_BSR_ARGS(2));
            for (; off < pn->wv; off += VL) SC_BSR_CALL(2, 1, c1, SC_BSR_ARGS(1));
        } else {
            for (; off + 4 * VL <= pn->wv; off += 4 * VL) SC_BSR_CALL(1, 4, c1, SC_BSR_ARGS(4));
            for (; off + 2 * VL <= pn->wv; off += 2 * VL) SC_BSR_CALL(1, 2, c1, SC_BSR_ARGS(2));
            for (; off < pn->wv; off += VL) SC_BSR_CALL(1, 1, c1, SC_BSR_ARGS(1));
        }
#undef SC_BSR_ARGS
        i0 += R;
    }
}

/* Bytes of X rows (across the panel) a chunk of a block row's blocks may
 * take: the chunk stays in L1 while all tiles of the block row pass over
 * it (a whole LLaMA-sized block row of 16 x 16 blocks, 5632 columns, read
 * its X rows from L2 once per tile and ran 2-3x slower than short ones). */
#define SC_BSR_CHUNK_BYTES (16 << 10)

/* Block rows [lo, hi) of Y for panel `pn` of X (at xp). With `stage` (a
 * per-thread SC_STAGE_ROWS x panel-width buffer, given when Y is not
 * batch-contiguous) tiles are stored there in C order and flushed to Y in
 * blocks of rows; with `chunked` too, the staged tiles of a block row walk
 * its blocks in chunks of SC_BSR_CHUNK_BYTES of X rows. */
SC_TARGET_CLONES
static void FNI(bsr_spmm_rows)(const sc_panel *pn, const T *xp, int64_t m, int r, int c,
                               const IDX *indptr, const IDX *indices, const T *blocks,
                               T *Y, int64_t yrs, int64_t ycs, int64_t lo, int64_t hi,
                               T *stage, int chunked, const sc_epilogue *ep, sc_poll_t *poll)
{
    {
        const int64_t cb = SC_MAX(1, SC_BSR_CHUNK_BYTES / ((int64_t)c * pn->wv * (int64_t)sizeof(T)));
        const int64_t tc = stage ? 1 : ycs;
        const int64_t wlim = stage ? pn->wv : pn->w;
        int64_t srow0 = lo * r, srows = 0;
        const int batch_major = stage && yrs == 1 && ycs != 1;
        for (int64_t ib = lo; ib < hi; ib++) {
            if (SC_POLL(poll, ib - lo)) return;
            const int64_t kb = indptr[ib], ke = indptr[ib + 1];
            const int rows = (int)SC_MIN((int64_t)r, m - ib * r);
            if (stage && srows + rows > SC_STAGE_ROWS) {
                FNV(flush_stage)(stage, pn->wv, srows, pn->w, Y + srow0 * yrs + pn->b0 * ycs, yrs, ycs,
                                 ep, srow0);
                srow0 = ib * r;
                srows = 0;
            }
            if (batch_major && srows == 0)
                FNV(prefetch_stage_dest)(Y + srow0 + pn->b0 * ycs, ycs,
                                         SC_MIN(SC_STAGE_ROWS, SC_MIN(hi * r, m) - srow0), pn->w);
            T *ybase = stage ? stage + srows * pn->wv : Y + ib * r * yrs + pn->b0 * ycs;
            const int64_t tr = stage ? pn->wv : yrs;
            /* chunked: tiles of 2 or more rows take the block row in chunks
             * of cb blocks, each chunk by all of them while its X rows are
             * in L1; a last odd row (a one-row tile, whose sums alternate
             * between two accumulators) takes it whole */
            const int rows2 = rows & ~1;
            const int64_t step = stage && chunked ? cb : SC_MAX(1, ke - kb);
            for (int64_t k0 = kb; rows2 && (k0 == kb || k0 < ke); k0 += step)
                FNI(bsr_tiles)(pn, xp, r, c, indices, k0, SC_MIN(ke, k0 + step), k0 > kb, blocks,
                               ybase, tr, tc, wlim, 0, rows2);
            if (rows2 < rows)
                FNI(bsr_tiles)(pn, xp, r, c, indices, kb, ke, 0, blocks, ybase, tr, tc, wlim,
                               rows2, rows);
            srows += rows;
        }
        if (stage && srows)
            FNV(flush_stage)(stage, pn->wv, srows, pn->w, Y + srow0 * yrs + pn->b0 * ycs, yrs, ycs,
                             ep, srow0);
    }
}

/*
 * GEMV tile for blocks with c >= VL: R rows of one block row as dot products
 * along the blocks' rows (NV vectors of accumulators per row, a loop over c
 * in steps of NV vectors), each reduced at the end in a fixed order.
 */
#define SC_GEMV_DOT(R, NV)                                                     \
SC_INLINE void FNI(gemv_dot_##R##x##NV)(const IDX *SC_RESTRICT ind, int64_t kb,  \
    int64_t ke, const T *SC_RESTRICT w0, int64_t rc, int c,                    \
    const T *SC_RESTRICT x, T *SC_RESTRICT y, int64_t ys)                      \
{                                                                             \
    VEC acc[R][NV];                                                           \
    for (int i = 0; i < R; i++) for (int v = 0; v < NV; v++) acc[i][v] = VZERO(); \
    for (int64_t k = kb; k < ke; k++) {                                       \
        const T *xb = x + (int64_t)ind[k] * c;                                \
        const T *wb = w0 + k * rc;                                            \
        for (int v0 = 0; v0 < c; v0 += (NV) * VL) {                           \
            VEC xv[NV];                                                       \
            for (int v = 0; v < NV; v++) xv[v] = VLOAD(xb + v0 + v * VL);     \
            for (int i = 0; i < R; i++)                                       \
                for (int v = 0; v < NV; v++)                                  \
                    acc[i][v] = VFMAV(acc[i][v], VLOAD(wb + i * c + v0 + v * VL), xv[v]); \
        }                                                                     \
    }                                                                         \
    for (int i = 0; i < R; i++) {                                             \
        VEC t = acc[i][0];                                                    \
        for (int v = 1; v < NV; v++) t = VADD(t, acc[i][v]);                  \
        y[i * ys] = VHSUM(t);                                                 \
    }                                                                         \
}
SC_GEMV_DOT(8, 1) SC_GEMV_DOT(4, 1) SC_GEMV_DOT(2, 1) SC_GEMV_DOT(1, 1)
SC_GEMV_DOT(4, 2) SC_GEMV_DOT(2, 2) SC_GEMV_DOT(1, 2)
SC_GEMV_DOT(2, 4) SC_GEMV_DOT(1, 4)

/* GEMV of one block row of small RR x CC blocks with the shape fixed at
 * compile time: the compiler keeps the RR * CC partial sums in registers and
 * vectorises across them. Each row's sum is reduced over CC at the end. */
#define SC_GEMV_SMALL(RR, CC)                                                  \
SC_INLINE void FNI(gemv_small_##RR##x##CC)(const IDX *SC_RESTRICT ind, int64_t kb, \
    int64_t ke, const T *SC_RESTRICT blocks, const T *SC_RESTRICT x,           \
    T *SC_RESTRICT y, int64_t ys, int rows)                                   \
{                                                                             \
    T acc[(RR) * (CC)];                                                       \
    for (int q = 0; q < (RR) * (CC); q++) acc[q] = 0;                         \
    for (int64_t k = kb; k < ke; k++) {                                       \
        const T *xb = x + (int64_t)ind[k] * (CC);                             \
        const T *w = blocks + k * ((RR) * (CC));                              \
        for (int i = 0; i < (RR); i++)                                        \
            for (int t = 0; t < (CC); t++) acc[i * (CC) + t] += w[i * (CC) + t] * xb[t]; \
    }                                                                         \
    for (int i = 0; i < rows; i++) {                                          \
        T sum = acc[i * (CC)];                                                \
        for (int t = 1; t < (CC); t++) sum += acc[i * (CC) + t];              \
        y[i * ys] = sum;                                                      \
    }                                                                         \
}
SC_GEMV_SMALL(4, 1) SC_GEMV_SMALL(2, 1) SC_GEMV_SMALL(4, 4) SC_GEMV_SMALL(2, 2)
SC_GEMV_SMALL(1, 4)

/*
 * A few vectors at once (x_b at x + b * ldx, y_b at y + b * ycs), blocks
 * with c >= VL: R rows of one block row as dot products along the blocks'
 * rows, each row's weight vector loaded once for all NB vectors (R * NB
 * accumulators, reduced at the end in a fixed order). R and NB are
 * constants after inlining; the arrays have fixed sizes so that they stay
 * in registers.
 */
SC_INLINE void FNI(gemv_dotm_body)(const IDX *SC_RESTRICT ind, int64_t kb, int64_t ke,
                                   const T *SC_RESTRICT w0, int64_t rc, int c,
                                   const T *SC_RESTRICT x, int64_t ldx, T *SC_RESTRICT y,
                                   int64_t ys, int64_t ycs, const int R, const int NB)
{
    VEC acc[4][SC_BSR_GEMV_MAX_B];
    for (int i = 0; i < R; i++) for (int b = 0; b < NB; b++) acc[i][b] = VZERO();
    for (int64_t k = kb; k < ke; k++) {
        const T *xb = x + (int64_t)ind[k] * c;
        const T *wb = w0 + k * rc;
        for (int v0 = 0; v0 < c; v0 += VL) {
            VEC xv[SC_BSR_GEMV_MAX_B];
            for (int b = 0; b < NB; b++) xv[b] = VLOAD(xb + b * ldx + v0);
            for (int i = 0; i < R; i++) {
                const VEC wv = VLOAD(wb + i * c + v0);
                for (int b = 0; b < NB; b++) acc[i][b] = VFMAV(acc[i][b], wv, xv[b]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int b = 0; b < NB; b++) y[i * ys + b * ycs] = VHSUM(acc[i][b]);
}

/* The same for r x 1 blocks with r >= VL: vectors down the blocks' column,
 * up to two per row tile, one broadcast of x_b[j] per vector b. */
SC_INLINE void FNI(gemv_colm_body)(const IDX *SC_RESTRICT ind, int64_t kb, int64_t ke,
                                   const T *SC_RESTRICT w0, int64_t rc,
                                   const T *SC_RESTRICT x, int64_t ldx, T *SC_RESTRICT y,
                                   int64_t ys, int64_t ycs, int nv, int rows, const int NB)
{
    VEC a[2][SC_BSR_GEMV_MAX_B];
    for (int v = 0; v < 2; v++) for (int b = 0; b < NB; b++) a[v][b] = VZERO();
    for (int64_t k = kb; k < ke; k++) {
        const T *w = w0 + k * rc;
        const VEC w0v = VLOAD(w), w1v = nv > 1 ? VLOAD(w + VL) : VZERO();
        for (int b = 0; b < NB; b++) {
            const T xj = x[b * ldx + ind[k]];
            a[0][b] = VFMA(a[0][b], xj, w0v);
            if (nv > 1) a[1][b] = VFMA(a[1][b], xj, w1v);
        }
    }
    for (int b = 0; b < NB; b++) {
        T tmp[2 * VL];
        VSTORE(tmp, a[0][b]);
        if (nv > 1) VSTORE(tmp + VL, a[1][b]);
        for (int i = 0; i < nv * VL && i < rows; i++) y[i * ys + b * ycs] = tmp[i];
    }
}

/* One block row of Y for NB vectors with a kernel above. */
SC_INLINE void FNI(gemv_multi_row)(int r, int c, int rows, const IDX *ind, int64_t kb,
                                   int64_t ke, const T *blocks, const T *x, int64_t ldx,
                                   T *yb, int64_t ys, int64_t ycs, const int NB)
{
    const int64_t rc = (int64_t)r * c;
    if (c >= VL) {
        for (int i0 = 0; i0 < rows;) {
            const int left = rows - i0;
            const T *w0 = blocks + (int64_t)i0 * c;
            T *yi = yb + i0 * ys;
            if (NB <= 4 && left >= 4) {
                FNI(gemv_dotm_body)(ind, kb, ke, w0, rc, c, x, ldx, yi, ys, ycs, 4, NB);
                i0 += 4;
            } else if (left >= 2) {
                FNI(gemv_dotm_body)(ind, kb, ke, w0, rc, c, x, ldx, yi, ys, ycs, 2, NB);
                i0 += 2;
            } else {
                FNI(gemv_dotm_body)(ind, kb, ke, w0, rc, c, x, ldx, yi, ys, ycs, 1, NB);
                i0 += 1;
            }
        }
    } else {  /* c == 1 && r >= VL */
        for (int i0 = 0; i0 < rows; i0 += 2 * VL) {
            const int nv = r - i0 >= 2 * VL ? 2 : 1;
            FNI(gemv_colm_body)(ind, kb, ke, blocks + i0, rc, x, ldx, yb + i0 * ys, ys, ycs, nv,
                                rows - i0, NB);
        }
    }
}

#define SC_GEMV_MULTI(NB)                                                      \
SC_TARGET_CLONES                                                              \
static void FNI(gemv_multi_row##NB)(int r, int c, int rows, const IDX *ind,     \
    int64_t kb, int64_t ke, const T *blocks, const T *x, int64_t ldx, T *yb,    \
    int64_t ys, int64_t ycs)                                                  \
{                                                                             \
    FNI(gemv_multi_row)(r, c, rows, ind, kb, ke, blocks, x, ldx, yb, ys, ycs, NB); \
}
SC_GEMV_MULTI(2) SC_GEMV_MULTI(3) SC_GEMV_MULTI(4) SC_GEMV_MULTI(5)
SC_GEMV_MULTI(6)
#undef SC_GEMV_MULTI

/* y[i * ys] = the sum of lanes [i * c, i * c + c) in order, for i < rows:
 * the rows of a block whose products lie side by side in the lanes. */
SC_INLINE void FNI(sum_row_lanes)(const T *lanes, int rows, int c, T *y, int64_t ys)
{
    for (int i = 0; i < rows; i++) {
        T sum = lanes[i * c];
        for (int t = 1; t < c; t++) sum += lanes[i * c + t];
        y[i * ys] = sum;
    }
}

/*
 * Blocks narrower than a vector (1 < c < VL) whose r * c weights fill whole
 * vectors (4 x 4, 2 x 4, 8 x 2, ... at 8 lanes): x's c entries of each block
 * column are packed once per product, repeated to L = NV * VL floats (xr,
 * one copy per vector at xr + b * ldr), so that a slice of L / c rows of a
 * block meets them in one elementwise multiply-add per vector; each row's c
 * lanes are summed at the end, in order.
 */
SC_INLINE void FNI(gemv_rep_body)(const IDX *SC_RESTRICT ind, int64_t kb, int64_t ke,
                                  const T *SC_RESTRICT w0, int64_t rc, int c,
                                  const T *SC_RESTRICT xr, int64_t ldr, int64_t L,
                                  T *SC_RESTRICT y, int64_t ys, int64_t ycs, int rows,
                                  const int NV, const int NB)
{
    VEC acc[4][SC_BSR_GEMV_MAX_B];
    for (int v = 0; v < NV; v++) for (int b = 0; b < NB; b++) acc[v][b] = VZERO();
    for (int64_t k = kb; k < ke; k++) {
        const T *w = w0 + k * rc;
        const T *xk = xr + (int64_t)ind[k] * L;
        for (int v = 0; v < NV; v++) {
            const VEC wv = VLOAD(w + v * VL);
            for (int b = 0; b < NB; b++)
                acc[v][b] = VFMAV(acc[v][b], wv, VLOAD(xk + b * ldr + v * VL));
        }
    }
    for (int b = 0; b < NB; b++) {
        T tmp[4 * VL];
        for (int v = 0; v < NV; v++) VSTORE(tmp + v * VL, acc[v][b]);
        FNI(sum_row_lanes)(tmp, rows, c, y + b * ycs, ys);
    }
}


#ifdef V4
/*
 * Blocks of four values narrower than a vector (2 x 2, 4 x 1, 1 x 4 with
 * 8-float vectors): one 4-lane multiply-add of a block by x repeated to its
 * shape (xr, 4 values a block column, one copy per vector at xr + b * ldr),
 * several blocks in flight (one chain would wait on the multiply-add's
 * latency every block); each row's c lanes are summed at the end, in order.
 */
SC_INLINE void FNI(gemv_four_body)(const IDX *SC_RESTRICT ind, int64_t kb, int64_t ke,
                                   const T *SC_RESTRICT blocks, int c,
                                   const T *SC_RESTRICT xr, int64_t ldr, T *SC_RESTRICT y,
                                   int64_t ys, int64_t ycs, int rows, const int NB)
{
    const int U = NB == 1 ? 4 : 2;  /* blocks in flight */
    V4 acc[4][SC_BSR_GEMV_MAX_B];
    for (int u = 0; u < U; u++) for (int b = 0; b < NB; b++) acc[u][b] = (V4){0};
    int64_t k = kb;
    for (; k + U <= ke; k += U)
        for (int u = 0; u < U; u++) {
            const V4 w = V4LOAD(blocks + (k + u) * 4);
            const T *xk = xr + (int64_t)ind[k + u] * 4;
            for (int b = 0; b < NB; b++) acc[u][b] += w * V4LOAD(xk + b * ldr);
        }
    for (; k < ke; k++) {
        const V4 w = V4LOAD(blocks + k * 4);
        const T *xk = xr + (int64_t)ind[k] * 4;
        for (int b = 0; b < NB; b++) acc[0][b] += w * V4LOAD(xk + b * ldr);
    }
    for (int b = 0; b < NB; b++) {
        V4 s = acc[0][b] + acc[1][b];
        if (U == 4) s += acc[2][b] + acc[3][b];
        T tmp[4];
        memcpy(tmp, &s, sizeof tmp);
        FNI(sum_row_lanes)(tmp, rows, c, y + b * ycs, ys);
    }
}

#define SC_FOUR_OK(r, c) ((r) * (c) == 4 && 4 < VL)
#else
#define SC_FOUR_OK(r, c) 0
#endif

/* One block row with NB vectors for blocks narrower than a vector: blocks
 * of four values (xr holds L = 4 values a block column) by 4-lane vectors,
 * the others by slices of L / c rows of whole vectors. */
#ifdef V4
#define SC_FOUR_CALL(NB)                                                       \
    if (L == 4) {                                                             \
        FNI(gemv_four_body)(ind, kb, ke, blocks, c, xr, ldr, yb, ys, ycs, rows, NB); \
        return;                                                               \
    }
#else
#define SC_FOUR_CALL(NB)
#endif
#define SC_GEMV_NARROW(NB)                                                     \
SC_TARGET_CLONES                                                              \
static void FNI(gemv_narrow_row##NB)(int r, int c, int rows, const IDX *ind,    \
    int64_t kb, int64_t ke, const T *blocks, const T *xr, int64_t ldr,          \
    int64_t L, T *yb, int64_t ys, int64_t ycs)                                  \
{                                                                             \
    SC_FOUR_CALL(NB)                                                          \
    const int64_t rc = (int64_t)r * c;                                        \
    const int NV = (int)(L / VL), s = (int)(L / c);                           \
    for (int i0 = 0; i0 < rows; i0 += s) {                                    \
        const int nr = SC_MIN(s, rows - i0);                                  \
        const T *w0 = blocks + (int64_t)i0 * c;                               \
        T *y = yb + i0 * ys;                                                  \
        if (NV == 4)                                                          \
            FNI(gemv_rep_body)(ind, kb, ke, w0, rc, c, xr, ldr, L, y, ys, ycs, nr, 4, NB); \
        else if (NV == 2)                                                     \
            FNI(gemv_rep_body)(ind, kb, ke, w0, rc, c, xr, ldr, L, y, ys, ycs, nr, 2, NB); \
        else                                                                  \
            FNI(gemv_rep_body)(ind, kb, ke, w0, rc, c, xr, ldr, L, y, ys, ycs, nr, 1, NB); \
    }                                                                         \
}
SC_GEMV_NARROW(1) SC_GEMV_NARROW(2) SC_GEMV_NARROW(3) SC_GEMV_NARROW(4) SC_GEMV_NARROW(5)
SC_GEMV_NARROW(6)
#undef SC_GEMV_NARROW
#undef SC_FOUR_CALL

/* One block row of y = A @ x (rows of it, the first at yb), x contiguous and
 * zero padded. Blocks with c >= VL are read along their rows (vector dot
 * products over c, reduced at the end of the block row); r x 1 blocks along
 * their column (vectors over r); other shapes row by row. */
SC_INLINE void FNI(bsr_gemv_block_row)(int r, int c, int rows, const IDX *SC_RESTRICT indices,
                                       int64_t kb, int64_t ke, const T *SC_RESTRICT blocks,
                                       const T *SC_RESTRICT x, T *SC_RESTRICT yb, int64_t ys)
{
    const int64_t rc = (int64_t)r * c;
    if (r == 1 && c == 1) {
#ifdef CSR_ROW_GATHER
        /* float32 and 32-bit indices: gathers (a Xeon: 2-5x the four sums) */
        if (sizeof(IDX) == 4 && CSR_ROW_GATHER_OK()) {
            yb[0] = CSR_ROW_GATHER(blocks, (const int32_t *)indices, kb, ke, x);
            return;
        }
#endif
        /* otherwise four partial sums (on Zen 5 eight, or AVX2 gathers,
         * measured no faster: the three loads per stored value bind) */
        T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int64_t k = kb;
        for (; k + 4 <= ke; k += 4) {
            s0 += blocks[k] * x[indices[k]];
            s1 += blocks[k + 1] * x[indices[k + 1]];
            s2 += blocks[k + 2] * x[indices[k + 2]];
            s3 += blocks[k + 3] * x[indices[k + 3]];
        }
        for (; k < ke; k++) s0 += blocks[k] * x[indices[k]];
        yb[0] = (s0 + s1) + (s2 + s3);
    } else if (c >= VL) {
        const int nv = c / VL;
        for (int i0 = 0; i0 < rows;) {
            const int left = rows - i0;
            const T *w0 = blocks + (int64_t)i0 * c;
            T *yi = yb + i0 * ys;
            int R;
            if (nv == 1) {
                R = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
                if (R == 8) FNI(gemv_dot_8x1)(indices, kb, ke, w0, rc, c, x, yi, ys);
                else if (R == 4) FNI(gemv_dot_4x1)(indices, kb, ke, w0, rc, c, x, yi, ys);
                else if (R == 2) FNI(gemv_dot_2x1)(indices, kb, ke, w0, rc, c, x, yi, ys);
                else FNI(gemv_dot_1x1)(indices, kb, ke, w0, rc, c, x, yi, ys);
            } else if (nv == 2) {
                R = left >= 4 ? 4 : left >= 2 ? 2 : 1;
                if (R == 4) FNI(gemv_dot_4x2)(indices, kb, ke, w0, rc, c, x, yi, ys);
                else if (R == 2) FNI(gemv_dot_2x2)(indices, kb, ke, w0, rc, c, x, yi, ys);
                else FNI(gemv_dot_1x2)(indices, kb, ke, w0, rc, c, x, yi, ys);
            } else {
                R = left >= 2 ? 2 : 1;
                if (R == 2) FNI(gemv_dot_2x4)(indices, kb, ke, w0, rc, c, x, yi, ys);
                else FNI(gemv_dot_1x4)(indices, kb, ke, w0, rc, c, x, yi, ys);
            }
            i0 += R;
        }
    } else if (c == 1 && r >= VL) {
        /* r x 1: vectors down the block's column */
        for (int i0 = 0; i0 < r; i0 += 4 * VL) {
            const int nv = SC_MIN(4, (r - i0) / VL);
            VEC a[4];
            for (int v = 0; v < 4; v++) a[v] = VZERO();
            for (int64_t k = kb; k < ke; k++) {
                const T xj = x[indices[k]];
                const T *w = blocks + k * rc + i0;
                for (int v = 0; v < nv; v++) a[v] = VFMA(a[v], xj, VLOAD(w + v * VL));
            }
            T tmp[4 * VL];
            for (int v = 0; v < nv; v++) VSTORE(tmp + v * VL, a[v]);
            for (int i = 0; i < nv * VL && i0 + i < rows; i++) yb[(i0 + i) * ys] = tmp[i];
        }
    } else if (r == 4 && c == 1) {
        FNI(gemv_small_4x1)(indices, kb, ke, blocks, x, yb, ys, rows);
    } else if (r == 2 && c == 1) {
        FNI(gemv_small_2x1)(indices, kb, ke, blocks, x, yb, ys, rows);
    } else if (r == 4 && c == 4) {
        FNI(gemv_small_4x4)(indices, kb, ke, blocks, x, yb, ys, rows);
    } else if (r == 2 && c == 2) {
        FNI(gemv_small_2x2)(indices, kb, ke, blocks, x, yb, ys, rows);
    } else if (r == 1 && c == 4) {
        FNI(gemv_small_1x4)(indices, kb, ke, blocks, x, yb, ys, rows);
    } else {
        /* other small blocks: up to 32 rows of scalar sums, in column order */
        for (int i0 = 0; i0 < rows; i0 += 32) {
            T s[32];
            const int nr = SC_MIN(32, rows - i0);
            for (int i = 0; i < nr; i++) s[i] = 0;
            for (int64_t k = kb; k < ke; k++) {
                const T *xb = x + (int64_t)indices[k] * c;
                const T *w = blocks + k * rc + (int64_t)i0 * c;
                for (int i = 0; i < nr; i++) {
                    T acc = s[i];
                    for (int t = 0; t < c; t++) acc += w[i * c + t] * xb[t];
                    s[i] = acc;
                }
            }
            for (int i = 0; i < nr; i++) yb[(i0 + i) * ys] = s[i];
        }
    }
}

/* Whether blocks take the repeated-x kernel: narrower than a vector, more
 * than one column wide, whole vectors of weights. */
static int FNI(bsr_gemv_rep_ok)(int r, int c)
{
    return (c > 1 && c < VL && ((int64_t)r * c) % VL == 0) || SC_FOUR_OK(r, c);
}

/* Whether a block shape has a kernel that reads its weights once for a few
 * vectors (otherwise the columns are a panel product). */
static int FNI(bsr_gemv_multi_ok)(int r, int c)
{
    return c >= VL || (c == 1 && r >= VL) || FNI(bsr_gemv_rep_ok)(r, c);
}

/* GEMV with nvec <= SC_BSR_GEMV_MAX_B vectors (one for a shape that is not
 * bsr_gemv_multi_ok), block rows [lo, hi): x_b at x + b * ldx (contiguous,
 * zero padded), or for the repeated-x kernels xr (see there); y_b at
 * y + b * ycs. */
SC_TARGET_CLONES
static void FNI(bsr_gemv_multi_rows)(int64_t m, int r, int c, const IDX *indptr,
                                     const IDX *indices, const T *blocks, const T *x,
                                     int64_t ldx, const T *xr, int64_t ldr, int64_t L,
                                     int64_t nvec, T *y, int64_t ys, int64_t ycs,
                                     int64_t lo, int64_t hi, sc_poll_t *poll)
{
    for (int64_t ib = lo; ib < hi; ib++) {
        if (SC_POLL(poll, ib - lo)) return;
        const int64_t kb = indptr[ib], ke = indptr[ib + 1];
        const int rows = (int)SC_MIN((int64_t)r, m - ib * r);
        T *yb = y + ib * r * ys;
#define SC_REP_ARGS r, c, rows, indices, kb, ke, blocks, xr, ldr, L, yb, ys, ycs
#define SC_MULTI_ARGS r, c, rows, indices, kb, ke, blocks, x, ldx, yb, ys, ycs
        if (nvec == 1 && !xr) {
            FNI(bsr_gemv_block_row)(r, c, rows, indices, kb, ke, blocks, x, yb, ys);
        } else if (xr) {
            switch (nvec) {
            case 1: FNI(gemv_narrow_row1)(SC_REP_ARGS); break;
            case 2: FNI(gemv_narrow_row2)(SC_REP_ARGS); break;
            case 3: FNI(gemv_narrow_row3)(SC_REP_ARGS); break;
            case 4: FNI(gemv_narrow_row4)(SC_REP_ARGS); break;
            case 5: FNI(gemv_narrow_row5)(SC_REP_ARGS); break;
            default: FNI(gemv_narrow_row6)(SC_REP_ARGS); break;
            }
        } else {
            switch (nvec) {
            case 2: FNI(gemv_multi_row2)(SC_MULTI_ARGS); break;
            case 3: FNI(gemv_multi_row3)(SC_MULTI_ARGS); break;
            case 4: FNI(gemv_multi_row4)(SC_MULTI_ARGS); break;
            case 5: FNI(gemv_multi_row5)(SC_MULTI_ARGS); break;
            default: FNI(gemv_multi_row6)(SC_MULTI_ARGS); break;
            }
        }
#undef SC_REP_ARGS
#undef SC_MULTI_ARGS
    }
}

/* SDDMM on a block pattern, block rows [lo, hi): g (m_pad rows) and x
 * (n_pad rows) row-major with leading dimensions gld, xld. */
SC_TARGET_CLONES
static void FNI(bsr_sddmm_rows)(int r, int c, const IDX *indptr, const IDX *indices,
                                const T *g, int64_t gld, const T *x, int64_t xld,
                                int64_t nv, T *out, int64_t lo, int64_t hi, sc_poll_t *poll)
{
    const int64_t rc = (int64_t)r * c;
    for (int64_t ib = lo; ib < hi; ib++) {
        if (SC_POLL(poll, ib - lo)) return;
        const int64_t kb = indptr[ib], ke = indptr[ib + 1];
        const T *gb = g + ib * r * gld;
        if (r == 1 && c == 1) {
            const T *xs[4];
            int cnt = 0;
            int64_t first = kb;
            for (int64_t k = kb; k < ke; k++) {
                xs[cnt++] = x + (int64_t)indices[k] * xld;
                if (cnt == 4) {
                    FNV(dot_row_list)(gb, xs, 4, nv, out + first);
                    first = k + 1;
                    cnt = 0;
                }
            }
            if (cnt) FNV(dot_row_list)(gb, xs, cnt, nv, out + first);
            continue;
        }
        for (int64_t k = kb; k < ke; k++) {
            const T *xb = x + (int64_t)indices[k] * c * xld;
            T *ob = out + k * rc;
            for (int i0 = 0; i0 < r;) {
                const int RI = r - i0 >= 4 ? 4 : r - i0 >= 2 ? 2 : 1;
                const T *gp[4];
                for (int i = 0; i < RI; i++) gp[i] = gb + (int64_t)(i0 + i) * gld;
                for (int t0 = 0; t0 < c;) {
                    const T *xp[4];
                    if (RI == 1) {
                        const int CT = c - t0 >= 4 ? 4 : c - t0 >= 2 ? 2 : 1;
                        for (int t = 0; t < CT; t++) xp[t] = xb + (int64_t)(t0 + t) * xld;
                        if (CT == 4) FNV(dot_mk_1x4)(gp, xp, nv, ob + i0 * c + t0, c, 1);
                        else if (CT == 2) FNV(dot_mk_1x2)(gp, xp, nv, ob + i0 * c + t0, c, 1);
                        else FNV(dot_mk_1x1)(gp, xp, nv, ob + i0 * c + t0, c, 1);
                        t0 += CT;
                    } else {
                        const int CT = c - t0 >= 2 ? 2 : 1;
                        for (int t = 0; t < CT; t++) xp[t] = xb + (int64_t)(t0 + t) * xld;
                        if (RI == 4 && CT == 2) FNV(dot_mk_4x2)(gp, xp, nv, ob + i0 * c + t0, c, 1);
                        else if (RI == 4) FNV(dot_mk_4x1)(gp, xp, nv, ob + i0 * c + t0, c, 1);
                        else if (CT == 2) FNV(dot_mk_2x2)(gp, xp, nv, ob + i0 * c + t0, c, 1);
                        else FNV(dot_mk_2x1)(gp, xp, nv, ob + i0 * c + t0, c, 1);
                        t0 += CT;
                    }
                }
                i0 += RI;
            }
        }
    }
}

/* First block row of thread `tid`'s share when block rows are cut so that
 * every thread gets the same stored values plus a per-row cost. */
static int64_t FNI(bsr_cut)(const IDX *indptr, int64_t mb, int64_t rc, int64_t row_cost,
                            int tid, int nth)
{
    if (tid <= 0) return 0;
    if (tid >= nth) return mb;
    const double total = (double)indptr[mb] * rc + (double)mb * row_cost;
    const double target = total * tid / nth;
    int64_t a = 0, b = mb;  /* first ib with cost(ib) >= target */
    while (a < b) {
        int64_t mid = a + (b - a) / 2;
        double cost = (double)indptr[mid] * rc + (double)mid * row_cost;
        if (cost < target) a = mid + 1; else b = mid;
    }
    return a;
}

static int FNI(spmm_bsr)(int64_t m, int64_t n, int64_t B, int r, int c,
                         const IDX *indptr, const IDX *indices, const T *blocks,
                         const T *X, int64_t xrs, int64_t xcs,
                         T *Y, int64_t yrs, int64_t ycs, int n_threads, const sc_epilogue *ep)
{
    const int64_t mb = (m + r - 1) / r, nb = (n + c - 1) / c, n_pad = nb * c;
    const int64_t rc = (int64_t)r * c;
    const int64_t work = (int64_t)indptr[mb] * rc * B;
    const int nt = sc_threads_for(n_threads, work, mb);
    /* one vector, or a few with a kernel that reads the weights once for
     * all: vectors walk the block rows (a panel tile would fill B lanes) */
    if (SC_BSR_SMALL_B
        && (B == 1 || (B <= SC_BSR_GEMV_MAX_B && FNI(bsr_gemv_multi_ok)(r, c)))) {
        int64_t ldx;
        T *xbuf;
        const T *x = FNV(vector_columns)(X, n, n_pad, B, xrs, xcs, &ldx, &xbuf);
        if (!x) return SC_ERR_NOMEM;
        /* narrow blocks: each vector's block columns repeated to L floats */
        T *xr = NULL;
        int64_t L = 0, ldr = 0;
        if (FNI(bsr_gemv_rep_ok)(r, c)) {
            L = (int64_t)r * c < VL ? 4 : (int64_t)sc_rep_vectors(r, c, VL, B) * VL;
            ldr = nb * L;
            xr = (T *)sc_aligned_alloc((size_t)(B * ldr) * sizeof(T));
            if (!xr) {
                sc_aligned_free(xbuf);
                return SC_ERR_NOMEM;
            }
            for (int64_t b = 0; b < B; b++)
                for (int64_t jb = 0; jb < nb; jb++)
                    for (int64_t q = 0; q < L; q++)
                        xr[b * ldr + jb * L + q] = x[b * ldx + jb * c + q % c];
        }
        sc_poll_t poll;
        sc_poll_init(&poll);
        #pragma omp parallel num_threads(nt) if (nt > 1)
        {
            const int tid = SC_OMP_THREAD_NUM(), nth = sc_team_size();
            const int64_t lo = FNI(bsr_cut)(indptr, mb, rc, r, tid, nth);
            const int64_t hi = FNI(bsr_cut)(indptr, mb, rc, r, tid + 1, nth);
            FNI(bsr_gemv_multi_rows)(m, r, c, indptr, indices, blocks, x, ldx, xr, ldr, L, B,
                                     Y, yrs, ycs, lo, hi, &poll);
            const int64_t i0 = SC_MIN(m, lo * r), i1 = SC_MIN(m, hi * r);
            for (int64_t b = 0; ep && !poll.stop && b < B; b++)
                FNV(epilogue_strided)(Y + i0 * yrs + b * ycs, yrs, i1 - i0,
                                      ep->bias ? (const T *)ep->bias + i0 : NULL, ep->act);
        }
        sc_aligned_free(xr);
        sc_aligned_free(xbuf);
        return poll.stop ? SC_ERR_INTERRUPTED : SC_OK;
    }
    sc_xplan pl;
    /* Y tiles go through the staging block when Y is not batch-contiguous or
     * an epilogue finishes them. Where the X rows of even a two-vector panel
     * outgrow half of L2, staged blocks of two or more rows walk K in
     * chunks (see bsr_spmm_rows) and take wide panels, so that the weights
     * stream from memory fewer times (16 x 16 blocks, 2048 x 5632 at 512
     * columns on a Zen 3: 2.3x faster; with shorter rows chunks cost more
     * than they saved; one-row blocks and CSR keep panels that fit L2). */
    const int staged = ycs != 1 || ep;
    const int chunked = staged && r >= 2
        && n_pad * 2 * VL * (int64_t)sizeof(T) > sc_spmm_l2_bytes() / 2;
    const int64_t row_bytes = r >= 2 ? SC_PANEL_BYTES_WIDE : SC_PANEL_BYTES_NARROW;
    int status = sc_plan_x(&pl, X, n, n_pad, B, xrs, xcs, VL, sizeof(T), row_bytes,
                           chunked ? row_bytes / (int64_t)sizeof(T) : 2 * VL);
    /* as in spmm_nm: panels enough for every thread are packed one at a time
     * by the thread that runs all block rows over them */
    const int by_panel = pl.npanels >= 2 * nt;
    const int64_t own_len = by_panel ? sc_plan_max_panel(&pl, n_pad) : 0;
    const int64_t stage_len = staged ? SC_STAGE_ROWS * sc_plan_max_width(&pl) : 0;
    T *stage = NULL;
    if (status == SC_OK && !by_panel) status = sc_plan_alloc(&pl, sizeof(T));
    if (status == SC_OK && stage_len + own_len > 0
        && !(stage = (T *)sc_aligned_alloc((size_t)nt * (stage_len + own_len) * sizeof(T))))
        status = SC_ERR_NOMEM;
    if (status != SC_OK) {
        sc_plan_free(&pl);
        return status;
    }
    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        T *mine = stage ? stage + SC_OMP_THREAD_NUM() * (stage_len + own_len) : NULL;
        T *st = stage_len ? mine : NULL;
        if (by_panel) {
            T *own = mine + stage_len;
            int64_t plo, phi;
            sc_even_split(pl.npanels, 1, &plo, &phi);
            for (int64_t p = plo; p < phi; p++) {
                const sc_panel *pn = &pl.panels[p];
                const T *xp = X + pn->b0;
                if (pn->off >= 0) {
                    FNV(pack_panel)(pn, own, X, n, xrs, xcs, 0, n_pad);
                    xp = own;
                }
                FNI(bsr_spmm_rows)(pn, xp, m, r, c, indptr, indices, blocks, Y, yrs, ycs,
                                   0, mb, st, chunked, ep, &poll);
            }
        } else {
            if (pl.buf) {
                int64_t plo, phi;
                sc_even_split(n_pad, 8, &plo, &phi);
                FNV(pack_panels)(&pl, X, n, xrs, xcs, plo, phi);
                #pragma omp barrier
            }
            const int tid = SC_OMP_THREAD_NUM(), nth = sc_team_size();
            const int64_t lo = FNI(bsr_cut)(indptr, mb, rc, 2 * r, tid, nth);
            const int64_t hi = FNI(bsr_cut)(indptr, mb, rc, 2 * r, tid + 1, nth);
            for (int p = 0; p < pl.npanels; p++) {
                const sc_panel *pn = &pl.panels[p];
                const T *xp = pn->off >= 0 ? (const T *)pl.buf + pn->off : X + pn->b0;
                FNI(bsr_spmm_rows)(pn, xp, m, r, c, indptr, indices, blocks, Y, yrs, ycs,
                                   lo, hi, st, chunked, ep, &poll);
            }
        }
    }
    sc_aligned_free(stage);
    sc_plan_free(&pl);
    return poll.stop ? SC_ERR_INTERRUPTED : SC_OK;
}

static int FNI(sddmm_bsr)(int64_t m, int64_t n, int64_t B, int r, int c,
                          const IDX *indptr, const IDX *indices,
                          const T *Gm, int64_t grs, int64_t gcs,
                          const T *X, int64_t xrs, int64_t xcs, T *out, int n_threads)
{
    const int64_t mb = (m + r - 1) / r, m_pad = mb * r;
    const int64_t n_pad = ((n + c - 1) / c) * c;
    const int64_t rc = (int64_t)r * c;
    const int64_t nv = SC_ROUND_UP(B, VL);
    const int need_g = !(gcs == 1 && B == nv && m_pad == m);
    const int need_x = !(xcs == 1 && B == nv && n_pad == n);
    T *gbuf = NULL, *xbuf = NULL;
    if (need_g && !(gbuf = (T *)sc_aligned_alloc((size_t)m_pad * nv * sizeof(T))))
        return SC_ERR_NOMEM;
    if (need_x && !(xbuf = (T *)sc_aligned_alloc((size_t)n_pad * nv * sizeof(T)))) {
        sc_aligned_free(gbuf);
        return SC_ERR_NOMEM;
    }
    const T *g = need_g ? gbuf : Gm;
    const T *x = need_x ? xbuf : X;
    const int64_t gld = need_g ? nv : grs, xld = need_x ? nv : xrs;
    const int nt = sc_threads_for(n_threads, (int64_t)indptr[mb] * rc * nv, mb);
    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        if (need_g) {
            sc_even_split(m_pad, 8, &lo, &hi);
            FNV(pack_rowmajor)(gbuf, nv, Gm, m, B, grs, gcs, lo, hi);
        }
        if (need_x) {
            sc_even_split(n_pad, 8, &lo, &hi);
            FNV(pack_rowmajor)(xbuf, nv, X, n, B, xrs, xcs, lo, hi);
        }
        if (need_g || need_x) {
            #pragma omp barrier
        }
        const int tid = SC_OMP_THREAD_NUM(), nth = sc_team_size();
        lo = FNI(bsr_cut)(indptr, mb, rc, r, tid, nth);
        hi = FNI(bsr_cut)(indptr, mb, rc, r, tid + 1, nth);
        FNI(bsr_sddmm_rows)(r, c, indptr, indices, g, gld, x, xld, nv, out, lo, hi, &poll);
    }
    sc_aligned_free(gbuf);
    sc_aligned_free(xbuf);
    return poll.stop ? SC_ERR_INTERRUPTED : SC_OK;
}

#undef FNI
#undef SC_FOUR_OK
