/*
 * spmm_nm_impl.h -- the parts of the SpMM kernels that depend on the value
 * type only: tile stores, packing of the dense operand, the N:M kernels and
 * N:M compression/pruning. Included once per value type by spmm.c with
 * T, SFX, VEC, VL and the vector operations of sc_simd.h defined.
 */

#define FNV(name) SC_NAME2(name, SFX)

/* ---- storing an R x (V*VL) accumulator tile ---- */

/* Row i of the tile goes to y[i*yrs + b*ycs] for b < nvalid. */
#define SC_STORE_TILE(R, V, acc, y, yrs, ycs, nvalid)                          \
    do {                                                                      \
        if ((ycs) == 1 && (nvalid) == (V) * VL) {                             \
            for (int i_ = 0; i_ < (R); i_++)                                   \
                for (int v_ = 0; v_ < (V); v_++)                               \
                    VSTORE((y) + i_ * (yrs) + v_ * VL, acc[i_][v_]);           \
        } else {                                                              \
            T tmp_[(V) * VL];                                                 \
            for (int i_ = 0; i_ < (R); i_++) {                                 \
                for (int v_ = 0; v_ < (V); v_++) VSTORE(tmp_ + v_ * VL, acc[i_][v_]); \
                for (int64_t b_ = 0; b_ < (nvalid); b_++)                      \
                    (y)[i_ * (yrs) + b_ * (ycs)] = tmp_[b_];                   \
            }                                                                 \
        }                                                                     \
    } while (0)

/* ---- packing X into zero-padded column panels ---- */

/* Copy rows [lo, hi) of panel `pn` of X (n rows) to dst0 (leading
 * dimension pn->ldx), zero padded. */
static void FNV(pack_panel)(const sc_panel *pn, T *dst0, const T *X, int64_t n,
                            int64_t xrs, int64_t xcs, int64_t lo, int64_t hi)
{
    const int64_t w = pn->w, ld = pn->ldx;
    int64_t j = lo;
    if (xcs != 1 && xrs == 1) {
        /* F order: SC_PANEL_PACK_ROWS source rows at a time (a multiple of
         * 8), so that each batch column is read along a run of cache lines;
         * eight rows at a time read 32 bytes of every column per pass, and
         * columns a multiple of 2 KiB apart evicted each other's lines
         * between passes (a 8192 x 1536 batch-major X packed at 4 GB/s) */
        const int64_t jn = SC_MIN(hi, n) - j;
        const int64_t jend = j + (jn > 0 ? jn & ~(int64_t)7 : 0);
        while (j < jend) {
            const int64_t nj = SC_MIN(SC_PANEL_PACK_ROWS, jend - j);
            T *d = dst0 + j * ld;
            const T *s = X + j + pn->b0 * xcs;
            int64_t b0 = 0;
#ifdef TRANSPOSE_BLOCKS
            if (TRANSPOSE_BLOCKS_OK()) {
                b0 = w & ~(int64_t)7;
                TRANSPOSE_BLOCKS(s, xcs, b0, nj, d, ld);
            }
#endif
            for (int64_t b = b0; b < w; b++) {
                const T *sb = s + b * xcs;
                for (int64_t jj = 0; jj < nj; jj++) d[jj * ld + b] = sb[jj];
            }
            for (int64_t jj = 0; jj < nj; jj++)
                for (int64_t b = w; b < ld; b++) d[jj * ld + b] = 0;
            j += nj;
        }
    }
    for (; j < hi; j++) {
        T *d = dst0 + j * ld;
        int64_t b = 0;
        if (j < n) {
            const T *s = X + j * xrs + pn->b0 * xcs;
            if (xcs == 1) {
                memcpy(d, s, (size_t)w * sizeof(T));
                b = w;
            } else {
                for (; b < w; b++) d[b] = s[b * xcs];
            }
        }
        for (; b < ld; b++) d[b] = 0;
    }
}

/* Copy rows [lo, hi) of every packed panel of `pl` into its buffer. */
static void FNV(pack_panels)(const sc_xplan *pl, const T *X, int64_t n,
                             int64_t xrs, int64_t xcs, int64_t lo, int64_t hi)
{
    for (int p = 0; p < pl->npanels; p++) {
        const sc_panel *pn = &pl->panels[p];
        if (pn->off >= 0) FNV(pack_panel)(pn, (T *)pl->buf + pn->off, X, n, xrs, xcs, lo, hi);
    }
}

/* The B columns of X (n entries at stride xrs, column b at X + b * xcs) as
 * contiguous vectors zero padded to n_pad, for the vector kernels: X itself
 * where they already are (*ld = xcs), else a copy in *buf (*ld = n_pad;
 * free it with sc_aligned_free). NULL when the copy cannot be allocated. */
static const T *FNV(vector_columns)(const T *X, int64_t n, int64_t n_pad, int64_t B,
                                    int64_t xrs, int64_t xcs, int64_t *ld, T **buf)
{
    *buf = NULL;
    *ld = xcs;
    if (xrs == 1 && n_pad == n) return X;
    T *copy = (T *)sc_aligned_alloc((size_t)(B * n_pad) * sizeof(T));
    if (!copy) return NULL;
    for (int64_t b = 0; b < B; b++) {
        T *dst = copy + b * n_pad;
        const T *src = X + b * xcs;
        for (int64_t j = 0; j < n; j++) dst[j] = src[j * xrs];
        for (int64_t j = n; j < n_pad; j++) dst[j] = 0;
    }
    *buf = copy;
    *ld = n_pad;
    return copy;
}

/* Rows [lo, hi) of a row-major (rows_pad x ld) copy of A (rows x B), zero
 * padded in both directions: the SDDMM operands. */
static void FNV(pack_rowmajor)(T *dst, int64_t ld, const T *A, int64_t rows, int64_t B,
                               int64_t ars, int64_t acs, int64_t lo, int64_t hi)
{
    int64_t i = lo;
    if (acs != 1 && ars == 1) {
        for (; i + 8 <= hi && i + 8 <= rows; i += 8) {
            T *d = dst + i * ld;
            for (int64_t b = 0; b < B; b++) {
                const T *s = A + i + b * acs;
                for (int ii = 0; ii < 8; ii++) d[ii * ld + b] = s[ii];
            }
            for (int ii = 0; ii < 8; ii++)
                for (int64_t b = B; b < ld; b++) d[ii * ld + b] = 0;
        }
    }
    for (; i < hi; i++) {
        T *d = dst + i * ld;
        int64_t b = 0;
        if (i < rows) {
            const T *s = A + i * ars;
            if (acs == 1) {
                memcpy(d, s, (size_t)B * sizeof(T));
                b = B;
            } else {
                for (; b < B; b++) d[b] = s[b * acs];
            }
        }
        for (; b < ld; b++) d[b] = 0;
    }
}

/* ---- dot products for SDDMM: R rows of G against C rows of X ---- */

/* out[i*os_i + t*os_t] = dot(g[i], x[t]) over nv (a multiple of VL) values,
 * summed lane-wise along B and then across lanes in a fixed order. */
#define SC_DOT_MK(R, C)                                                        \
SC_INLINE void FNV(dot_mk_##R##x##C)(const T *const *g, const T *const *x,      \
                                      int64_t nv, T *out, int64_t os_i, int64_t os_t) \
{                                                                             \
    VEC acc[R][C];                                                            \
    for (int i = 0; i < R; i++) for (int t = 0; t < C; t++) acc[i][t] = VZERO(); \
    for (int64_t b = 0; b < nv; b += VL) {                                    \
        VEC xv[C];                                                            \
        for (int t = 0; t < C; t++) xv[t] = VLOAD(x[t] + b);                  \
        for (int i = 0; i < R; i++) {                                         \
            VEC gv = VLOAD(g[i] + b);                                         \
            for (int t = 0; t < C; t++) acc[i][t] = VFMAV(acc[i][t], gv, xv[t]); \
        }                                                                     \
    }                                                                         \
    for (int i = 0; i < R; i++)                                               \
        for (int t = 0; t < C; t++) out[i * os_i + t * os_t] = VHSUM(acc[i][t]); \
}
SC_DOT_MK(1, 1)
SC_DOT_MK(1, 2)
SC_DOT_MK(1, 4)
SC_DOT_MK(2, 1)
SC_DOT_MK(2, 2)
SC_DOT_MK(4, 1)
SC_DOT_MK(4, 2)

/* 1 x C dots of one G row against up to 4 X rows given by pointers. */
SC_INLINE void FNV(dot_row_list)(const T *g, const T *const *x, int cnt, int64_t nv, T *out)
{
    const T *gp[1] = {g};
    int t = 0;
    for (; t + 4 <= cnt; t += 4) FNV(dot_mk_1x4)(gp, x + t, nv, out + t, 0, 1);
    for (; t + 2 <= cnt; t += 2) FNV(dot_mk_1x2)(gp, x + t, nv, out + t, 0, 1);
    for (; t < cnt; t++) FNV(dot_mk_1x1)(gp, x + t, nv, out + t, 0, 1);
}

/* ---- N:M SpMM: blocks of rows walk K in chunks that stay in L1 ---- */

/* Keep a computed row pointer in a register: the vector loads then address
 * it with a displacement only, which x86 issues as one fused micro-op where
 * a base + index address splits the load from its FMA. */
#if defined(__GNUC__) || defined(__clang__)
#define SC_IN_REGISTER(p) __asm__("" : "+r"(p))
#else
#define SC_IN_REGISTER(p) ((void)0)
#endif

/* Unroll the row and kept-value loops of a tile completely: with N = 4 gcc
 * otherwise kept the accumulators on the stack (a 4:8 tile ran 10-20 %
 * slower than a 2:4 one). */
#if defined(__GNUC__) && !defined(__clang__)
#define SC_UNROLL _Pragma("GCC unroll 16")
#else
#define SC_UNROLL
#endif

/* With VQUAD (float vectors), fixed N of 1, 2 or 4: the groups of four
 * kept values at a time, each row's four weights loaded once and spread by
 * VSPLATQ. Every lane meets the same products in the same order as in the
 * loop by groups, so the sums are unchanged. */
#undef SC_NM_QUADS
#ifdef VQUAD
#define SC_NM_QUADS(R, V, NN)                                                  \
    if ((NN) == 1 || (NN) == 2 || (NN) == 4) {                                \
        const int gq = (NN) > 0 ? 4 / (NN) : 1;                               \
        for (; g + gq <= G; g += gq) {                                        \
            SC_UNROLL for (int i = 0; i < R; i++) {                           \
                const VEC wq = VQUAD(wr[i]);                                  \
                SC_UNROLL for (int q = 0; q < 4; q++) {                       \
                    const T *xr = xg + (q / nn) * gstep + (int64_t)ir[i][q] * ldx; \
                    SC_IN_REGISTER(xr);                                       \
                    const VEC w = VSPLATQ(wq, q);                             \
                    for (int v = 0; v < V; v++)                               \
                        acc[i][v] = VFMAV(acc[i][v], w, VLOAD(xr + v * VL));  \
                }                                                             \
                wr[i] += 4;                                                   \
                ir[i] += 4;                                                   \
            }                                                                 \
            xg += gq * gstep;                                                 \
        }                                                                     \
    }
#else
#define SC_NM_QUADS(R, V, NN)
#endif

/*
 * R x (V*VL) tile of the partial sums `y` (row stride yrs, whole vectors):
 * adds the products of G groups to it, starting from zero when !cont. Every
 * row of the strip reads its N rows of each group's window X[g*M : g*M+M]
 * (in L1: the caller walks K in chunks). Each lane sums its products in
 * group order, so a result does not depend on how K was chunked. NN > 0
 * fixes N at compile time; NN == 0 loops over the run-time N.
 */
#define SC_NM_MK(R, V, NN)                                                     \
SC_INLINE void FNV(nm_mk_##R##x##V##_n##NN)(int64_t G, int N, int64_t gstep,   \
    const T *SC_RESTRICT vals, const uint8_t *SC_RESTRICT idx, int64_t gn,     \
    const T *SC_RESTRICT xp, int64_t ldx, T *SC_RESTRICT y, int64_t yrs, int cont) \
{                                                                             \
    const int nn = (NN) > 0 ? (NN) : N;                                       \
    VEC acc[R][V];                                                            \
    for (int i = 0; i < R; i++)                                               \
        for (int v = 0; v < V; v++)                                           \
            acc[i][v] = cont ? VLOAD(y + i * yrs + v * VL) : VZERO();         \
    const T *wr[R];                                                           \
    const uint8_t *ir[R];                                                     \
    for (int i = 0; i < R; i++) { wr[i] = vals + i * gn; ir[i] = idx + i * gn; } \
    const T *xg = xp;                                                         \
    int64_t g = 0;                                                            \
    SC_NM_QUADS(R, V, NN)                                                     \
    for (; g < G; g++) {                                                      \
        SC_UNROLL for (int i = 0; i < R; i++) {                               \
            SC_UNROLL for (int k = 0; k < nn; k++) {                          \
                const T *xr = xg + (int64_t)ir[i][k] * ldx;                   \
                SC_IN_REGISTER(xr);                                           \
                const T w = wr[i][k];                                         \
                for (int v = 0; v < V; v++)                                   \
                    acc[i][v] = VFMA(acc[i][v], w, VLOAD(xr + v * VL));       \
            }                                                                 \
            wr[i] += nn;                                                      \
            ir[i] += nn;                                                      \
        }                                                                     \
        xg += gstep;                                                          \
    }                                                                         \
    for (int i = 0; i < R; i++)                                               \
        for (int v = 0; v < V; v++) VSTORE(y + i * yrs + v * VL, acc[i][v]);   \
}

/* Offsets are read a byte per stored value: on a Xeon with AVX-512 that ran
 * 10-20 % faster than reading eight at a time as one word and shifting. */
#define SC_NM_MK_ALL_N(R, V) \
    SC_NM_MK(R, V, 1) SC_NM_MK(R, V, 2) SC_NM_MK(R, V, 4) SC_NM_MK(R, V, 0)
#define SC_NM_FIXED(R, V, NN) nm_mk_##R##x##V##_n##NN
SC_NM_MK_ALL_N(4, 4)
SC_NM_MK_ALL_N(4, 2)
SC_NM_MK_ALL_N(4, 1)
SC_NM_MK_ALL_N(2, 4)
SC_NM_MK_ALL_N(2, 2)
SC_NM_MK_ALL_N(2, 1)
SC_NM_MK_ALL_N(1, 4)
SC_NM_MK_ALL_N(1, 2)
SC_NM_MK_ALL_N(1, 1)

#define SC_NM_CALL(R, V, nsel, ...)                                            \
    do {                                                                      \
        switch (nsel) {                                                       \
        case 1: FNV(SC_NM_FIXED(R, V, 1))(__VA_ARGS__); break;                 \
        case 2: FNV(SC_NM_FIXED(R, V, 2))(__VA_ARGS__); break;                 \
        case 4: FNV(SC_NM_FIXED(R, V, 4))(__VA_ARGS__); break;                 \
        default: FNV(nm_mk_##R##x##V##_n0)(__VA_ARGS__); break;                \
        }                                                                     \
    } while (0)

/* The widest tile of the N:M kernel: SC_NM_RMAX rows (2 or 4; the including
 * file may set it) x SC_NM_VMAX vectors; its accumulators must fit the
 * register file: 2 x 4 for 32-byte vectors (16 registers). */
#ifndef SC_NM_RMAX
#define SC_NM_RMAX 2
#endif
#define SC_NM_VMAX 4
/* Bytes of X one chunk of K may take per column tile: a block of rows reads
 * it from L1 while its partial sums stay in the per-thread buffer. */
#define SC_NM_CHUNK_BYTES (16 << 10)

/* ---- the epilogue: Y[i, :] = act(Y[i, :] + bias[i]) ---- */

/* The type's activation (float: sc_act.h's vectorisable forms; double: libm). */
#define SC_GELU(v) (sizeof(T) == 4 ? (T)sc_gelu_f32((float)(v)) : (T)sc_gelu_f64((double)(v)))
#define SC_GELU_TANH(v) \
    (sizeof(T) == 4 ? (T)sc_gelu_tanh_f32((float)(v)) : (T)sc_gelu_tanh_f64((double)(v)))
#define SC_SILU(v) (sizeof(T) == 4 ? (T)sc_silu_f32((float)(v)) : (T)sc_silu_f64((double)(v)))

/* One loop per activation, so that each vectorises. */
#define SC_EP_SWITCH(act, LOOP)                                                \
    switch (act) {                                                            \
    case SC_ACT_RELU: LOOP(v < 0 ? (T)0 : v) break;  /* NaN stays NaN */       \
    case SC_ACT_GELU: LOOP(SC_GELU(v)) break;                                 \
    case SC_ACT_GELU_TANH: LOOP(SC_GELU_TANH(v)) break;                       \
    case SC_ACT_SILU: LOOP(SC_SILU(v)) break;                                 \
    default: LOOP(v) break;                                                   \
    }

/* y[j] = act(y[j] + b) for j < n: a row of a staged tile. */
#define SC_EP_ROW(EXPR)                                                        \
    for (int64_t j = 0; j < n; j++) {                                         \
        const T v = y[j] + b;                                                 \
        y[j] = (EXPR);                                                        \
    }
SC_TARGET_CLONES
static void FNV(epilogue_row)(T *SC_RESTRICT y, int64_t n, T b, int act)
{
    SC_EP_SWITCH(act, SC_EP_ROW)
}
#undef SC_EP_ROW

/* y[j * ys] = act(y[j * ys] + bias[j]) for j < n (bias NULL: 0): a
 * matrix-vector product's output. */
#define SC_EP_STRIDED(EXPR)                                                    \
    for (int64_t j = 0; j < n; j++) {                                         \
        const T v = y[j * ys] + (bias ? bias[j] : (T)0);                      \
        y[j * ys] = (EXPR);                                                   \
    }
static void FNV(epilogue_strided)(T *y, int64_t ys, int64_t n, const T *bias, int act)
{
    SC_EP_SWITCH(act, SC_EP_STRIDED)
}
#undef SC_EP_STRIDED

/* The epilogue on rows [0, nrows) of a staged block (leading dimension ld,
 * w columns) whose first row is row `row0` of Y. */
static void FNV(epilogue_stage)(T *st, int64_t ld, int64_t nrows, int64_t w,
                                const sc_epilogue *ep, int64_t row0)
{
    const T *bias = (const T *)ep->bias;
    for (int64_t i = 0; i < nrows; i++)
        FNV(epilogue_row)(st + i * ld, w, bias ? bias[row0 + i] : (T)0, ep->act);
}

/* Ask for the lines of a batch-major Y (rows contiguous, column stride ycs)
 * that the flush of a staged block of rows [0, nrows) x w columns will write,
 * before the block is computed: the flush writes short runs far apart, which
 * the hardware does not fetch ahead, and when Y outgrows the last-level cache
 * each run waited on memory (a 16 x 16 block product with a 48 MiB Y ran
 * 1.5x longer than with a column-major one). */
static void FNV(prefetch_stage_dest)(const T *y, int64_t ycs, int64_t nrows, int64_t w)
{
    const int64_t bytes = nrows * (int64_t)sizeof(T);
    for (int64_t b = 0; b < w; b++) {
        const char *p = (const char *)(y + b * ycs);
        for (int64_t o = 0; o < bytes; o += 64) SC_PREFETCH_W(p + o);
        SC_PREFETCH_W(p + bytes - 1);
    }
}

/* Rows [0, nrows) of a block of partial sums (row-major, leading dimension
 * ld), w columns, to Y at (yrs, ycs) after the epilogue `ep` (when not NULL;
 * the block's first row is row `row0` of Y): whole rows when Y rows are
 * contiguous, else column by column, so a batch-major Y (the layer
 * orientation, ycs = m) receives runs of consecutive rows. */
static void FNV(flush_stage)(T *st, int64_t ld, int64_t nrows, int64_t w,
                             T *y, int64_t yrs, int64_t ycs, const sc_epilogue *ep, int64_t row0)
{
    if (ep) FNV(epilogue_stage)(st, ld, nrows, w, ep, row0);
    if (ycs == 1) {
        for (int64_t i = 0; i < nrows; i++) memcpy(y + i * yrs, st + i * ld, (size_t)w * sizeof(T));
        return;
    }
#ifdef TRANSPOSE_BLOCKS
    if (yrs == 1 && TRANSPOSE_BLOCKS_OK()) {  /* batch-major Y: 8 x 8 register transposes */
        const int64_t r8 = nrows & ~(int64_t)7, w8 = w & ~(int64_t)7;
        TRANSPOSE_BLOCKS(st, ld, r8, w8, y, ycs);
        for (int64_t b = 0; b < w; b++)
            for (int64_t i = b < w8 ? r8 : 0; i < nrows; i++) y[b * ycs + i] = st[i * ld + b];
        return;
    }
#endif
    for (int64_t b = 0; b < w; b++) {
        T *yb = y + b * ycs;
        const T *sb = st + b;
        for (int64_t i = 0; i < nrows; i++) yb[i * yrs] = sb[i * ld];
    }
}

/*
 * Rows [lo, hi) of Y for panel `pn` of X (at xp): the hot loop. Blocks of
 * SC_STAGE_ROWS rows keep their partial sums in `part` (a per-thread
 * SC_STAGE_ROWS x panel-width buffer) while K is walked in chunks of groups
 * whose X rows fit SC_NM_CHUNK_BYTES per column tile; every strip of the
 * block then reads X from L1, and X leaves L2 once per block instead of once
 * per strip. A finished block goes to Y.
 */
SC_TARGET_CLONES
static void FNV(nm_spmm_rows)(const sc_panel *pn, const T *xp, int64_t G,
                              int N, int M, const T *values, const uint8_t *idx,
                              T *Y, int64_t yrs, int64_t ycs, int64_t lo, int64_t hi,
                              T *part, const sc_epilogue *ep, sc_poll_t *poll)
{
    const int64_t gn = G * N;
    const int nsel = (N == 1 || N == 2 || N == 4) ? N : 0;
    /* chunks sized by the widest tile this panel has: a panel of one or
     * two vectors walking chunks sized for four read each row's weights in
     * runs of a few cache lines, 32 rows apart, which the hardware
     * prefetcher does not follow (2:4 5632 x 2048 on 8 columns: 7.4 ms,
     * 3.9 ms with chunks for one vector, Zen 4) */
    const int64_t tile_w = SC_MIN(pn->wv, (int64_t)SC_NM_VMAX * VL);
    int64_t cg = SC_NM_CHUNK_BYTES / ((int64_t)M * tile_w * (int64_t)sizeof(T));
    if (cg < 4) cg = 4;
    {
        const int64_t ldx = pn->ldx, gstep = (int64_t)M * ldx, pld = pn->wv;
        for (int64_t r0 = lo; r0 < hi; r0 += SC_STAGE_ROWS) {
            if (SC_POLL(poll, r0 - lo)) return;
            const int64_t r1 = SC_MIN(hi, r0 + SC_STAGE_ROWS);
            if (yrs == 1 && ycs != 1)
                FNV(prefetch_stage_dest)(Y + r0 + pn->b0 * ycs, ycs, r1 - r0, pn->w);
            for (int64_t g0 = 0; g0 < G; g0 += cg) {
                const int64_t gc = SC_MIN(cg, G - g0);
                const T *xc = xp + g0 * gstep;
                const int cont = g0 > 0;
                for (int64_t off = 0; off < pn->wv;) {
                    const int64_t left = pn->wv - off;
                    const int V = left >= 4 * VL ? 4 : left >= 2 * VL ? 2 : 1;
                    for (int64_t i = r0; i < r1;) {
                        const int R = SC_NM_RMAX >= 4 && r1 - i >= 4 ? 4 : r1 - i >= 2 ? 2 : 1;
                        const T *vr = values + i * gn + g0 * N;
                        const uint8_t *ixr = idx + i * gn + g0 * N;
                        T *pr = part + (i - r0) * pld + off;
                        /* the strip's weights of the next chunk, read once
                         * the whole block has passed this one; in the last
                         * chunk, the first chunk of the rows a block down
                         * (waiting on those from memory cost a 5632 x 2048
                         * 2:4 product on 512 columns 12-15 % on a Zen 3) */
                        const int64_t ahead = g0 + cg < G ? cg * N
                                              : i + SC_STAGE_ROWS + R <= hi
                                              ? SC_STAGE_ROWS * gn - g0 * N : 0;
                        if (off == 0 && ahead) {
                            for (int q = 0; q < R; q++) {
                                const char *nv = (const char *)(vr + q * gn + ahead);
                                for (int64_t b = 0; b < cg * N * (int64_t)sizeof(T); b += 64)
                                    SC_PREFETCH_L2(nv + b);
                                SC_PREFETCH_L2(ixr + q * gn + ahead);
                            }
                        }
#define SC_NM_ARGS gc, N, gstep, vr, ixr, gn, xc + off, ldx, pr, pld, cont
                        if (R == 4) {
                            if (V == 4) SC_NM_CALL(4, 4, nsel, SC_NM_ARGS);
                            else if (V == 2) SC_NM_CALL(4, 2, nsel, SC_NM_ARGS);
                            else SC_NM_CALL(4, 1, nsel, SC_NM_ARGS);
                        } else if (R == 2) {
                            if (V == 4) SC_NM_CALL(2, 4, nsel, SC_NM_ARGS);
                            else if (V == 2) SC_NM_CALL(2, 2, nsel, SC_NM_ARGS);
                            else SC_NM_CALL(2, 1, nsel, SC_NM_ARGS);
                        } else {
                            if (V == 4) SC_NM_CALL(1, 4, nsel, SC_NM_ARGS);
                            else if (V == 2) SC_NM_CALL(1, 2, nsel, SC_NM_ARGS);
                            else SC_NM_CALL(1, 1, nsel, SC_NM_ARGS);
                        }
#undef SC_NM_ARGS
                        i += R;
                    }
                    off += (int64_t)V * VL;
                }
            }
            FNV(flush_stage)(part, pld, r1 - r0, pn->w, Y + r0 * yrs + pn->b0 * ycs, yrs, ycs,
                             ep, r0);
        }
    }
}

/* y[lo:hi] = A[lo:hi] @ x for N:M A and a contiguous, padded x: four rows at
 * a time, each summed in column order. */
SC_TARGET_CLONES
static void FNV(nm_gemv_rows)(int64_t G, int N, int M, const T *values, const uint8_t *idx,
                              const T *x, T *y, int64_t ys, int64_t lo, int64_t hi,
                              sc_poll_t *poll)
{
    const int64_t gn = G * N;
    int64_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        if (SC_POLL(poll, i - lo)) return;
        T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const T *w0 = values + i * gn, *w1 = w0 + gn, *w2 = w1 + gn, *w3 = w2 + gn;
        const uint8_t *j0 = idx + i * gn, *j1 = j0 + gn, *j2 = j1 + gn, *j3 = j2 + gn;
        const T *xg = x;
        for (int64_t g = 0; g < G; g++) {
            for (int k = 0; k < N; k++) {
                s0 += w0[k] * xg[j0[k]];
                s1 += w1[k] * xg[j1[k]];
                s2 += w2[k] * xg[j2[k]];
                s3 += w3[k] * xg[j3[k]];
            }
            w0 += N; w1 += N; w2 += N; w3 += N;
            j0 += N; j1 += N; j2 += N; j3 += N;
            xg += M;
        }
        y[i * ys] = s0;
        y[(i + 1) * ys] = s1;
        y[(i + 2) * ys] = s2;
        y[(i + 3) * ys] = s3;
    }
    for (; i < hi; i++) {
        T s = 0;
        const T *w = values + i * gn;
        const uint8_t *j = idx + i * gn;
        for (int64_t g = 0; g < G; g++) {
            for (int k = 0; k < N; k++) s += w[g * N + k] * x[g * M + j[g * N + k]];
        }
        y[i * ys] = s;
    }
}

/* SDDMM on an N:M pattern, rows [lo, hi): g and x are row-major with ld. */
SC_TARGET_CLONES
static void FNV(nm_sddmm_rows)(int64_t G, int N, int M, const uint8_t *idx,
                               const T *g, int64_t gld, const T *x, int64_t xld,
                               int64_t nv, T *out, int64_t lo, int64_t hi, sc_poll_t *poll)
{
    const int64_t gn = G * N;
    for (int64_t i = lo; i < hi; i++) {
        if (SC_POLL(poll, i - lo)) return;
        const T *gi = g + i * gld;
        const uint8_t *ji = idx + i * gn;
        T *oi = out + i * gn;
        const T *xs[4];
        int cnt = 0;
        int64_t first = 0;
        for (int64_t q = 0; q < gn; q++) {
            const int64_t col = (q / N) * M + ji[q];
            xs[cnt++] = x + col * xld;
            if (cnt == 4) {
                FNV(dot_row_list)(gi, xs, 4, nv, oi + first);
                first = q + 1;
                cnt = 0;
            }
        }
        if (cnt) FNV(dot_row_list)(gi, xs, cnt, nv, oi + first);
    }
}

/* y_b[lo:hi] = A[lo:hi] @ x_b for nb <= SC_BITMASK_MAX_B vectors (x_b at
 * x + b * ldx) and A stored as a row bitmask (sc_spmm_bitmask): each row
 * visits its set bits in column order. */
static void FNV(bitmask_rows)(const T *values, const uint8_t *mask, int64_t mld,
                              const int64_t *start, const T *x, int64_t ldx, int64_t nb,
                              T *y, int64_t yrs, int64_t ycs, int64_t lo, int64_t hi,
                              sc_poll_t *poll)
{
    for (int64_t i = lo; i < hi; i++) {
        if (SC_POLL(poll, i - lo)) return;
        T acc[SC_BITMASK_MAX_B] = {0};
        const T *v = values + start[i];
        const uint8_t *mk = mask + i * mld;
        for (int64_t q = 0; q < mld; q++) {
            for (uint32_t bits = mk[q]; bits; bits &= bits - 1) {
                const T w = *v++;
                const T *xk = x + 8 * q + sc_ctz32(bits);
                for (int64_t b = 0; b < nb; b++) acc[b] += w * xk[b * ldx];
            }
        }
        for (int64_t b = 0; b < nb; b++) y[i * yrs + b * ycs] = acc[b];
    }
}

/* Rows [lo, hi) of the dense (m x K, leading dimension wld) form of a row
 * bitmask: BITMASK_EXPAND's vector loop where the instance has one. */
static void FNV(bitmask_expand_rows)(int64_t K, const T *values, const uint8_t *mask,
                                     int64_t mld, const int64_t *start, T *W, int64_t wld,
                                     int64_t lo, int64_t hi)
{
    for (int64_t i = lo; i < hi; i++) {
        T *w = W + i * wld;
        const T *v = values + start[i];
        const uint8_t *mk = mask + i * mld;
#ifdef BITMASK_EXPAND
        BITMASK_EXPAND(K, v, mk, mld, w);
#else
        memset(w, 0, (size_t)K * sizeof(T));
        for (int64_t q = 0; q < mld; q++)
            for (uint32_t bits = mk[q]; bits; bits &= bits - 1) w[8 * q + sc_ctz32(bits)] = *v++;
#endif
    }
}

static int FNV(bitmask_expand)(int64_t m, int64_t K, const T *values, const uint8_t *mask,
                               int64_t mld, const int64_t *start, T *W, int64_t wld,
                               int n_threads)
{
    const int nt = sc_threads_for(n_threads, m * K / 4, m);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        sc_even_split(m, 1, &lo, &hi);
        FNV(bitmask_expand_rows)(K, values, mask, mld, start, W, wld, lo, hi);
    }
    return SC_OK;
}

/* sc_spmm_bitmask for this instance: the vector kernel BITMASK_ROWS where
 * the instance has one, SC_BITMASK_MAX_B columns of X per pass over A. */
static int FNV(spmm_bitmask)(int64_t m, int64_t K, int64_t B, const T *values,
                             const uint8_t *mask, int64_t mld, const int64_t *start, int64_t nnz,
                             const T *X, int64_t xrs, int64_t xcs,
                             T *Y, int64_t yrs, int64_t ycs, int n_threads, const sc_epilogue *ep)
{
    /* x zero padded to whole 16-column chunks of the mask */
    int64_t ldx;
    T *xbuf;
    const T *x = FNV(vector_columns)(X, K, SC_ROUND_UP(K, 16), B, xrs, xcs, &ldx, &xbuf);
    if (!x) return SC_ERR_NOMEM;
    const int nt = sc_threads_for(n_threads, nnz * B, (m + 3) / 4);
    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        sc_even_split(m, 4, &lo, &hi);
        for (int64_t b0 = 0; b0 < B && !poll.stop; b0 += SC_BITMASK_MAX_B) {
            const int64_t nb = SC_MIN((int64_t)SC_BITMASK_MAX_B, B - b0);
            int done = 0;
#ifdef BITMASK_ROWS
            done = BITMASK_ROWS(K, values, nnz, mask, mld, start, x + b0 * ldx, ldx, nb,
                                Y + b0 * ycs, yrs, ycs, lo, hi, &poll);
#endif
            if (!done)
                FNV(bitmask_rows)(values, mask, mld, start, x + b0 * ldx, ldx, nb, Y + b0 * ycs,
                                  yrs, ycs, lo, hi, &poll);
        }
        for (int64_t b = 0; ep && !poll.stop && b < B; b++)
            FNV(epilogue_strided)(Y + lo * yrs + b * ycs, yrs, hi - lo,
                                  ep->bias ? (const T *)ep->bias + lo : NULL, ep->act);
    }
    sc_aligned_free(xbuf);
    return poll.stop ? SC_ERR_INTERRUPTED : SC_OK;
}

static int FNV(spmm_nm)(int64_t m, int64_t K, int64_t B, int N, int M,
                        const T *values, const uint8_t *idx,
                        const T *X, int64_t xrs, int64_t xcs,
                        T *Y, int64_t yrs, int64_t ycs, int n_threads, const sc_epilogue *ep)
{
    const int64_t G = (K + M - 1) / M, K_pad = G * M;
    const int64_t work = m * G * N * B;
    int nt = sc_threads_for(n_threads, work, (m + 3) / 4);
    /* a lane-permute kernel takes up to NM_GEMV_PERM_MAX_B columns at once;
     * otherwise only a single column goes the vector way */
    int multi = 0;
#ifdef NM_GEMV_PERM
    multi = B <= NM_GEMV_PERM_MAX_B && NM_GEMV_PERM_OK(N, M);
#endif
    if (B == 1 || multi) {
        int64_t ldx;  /* read by the permute kernels only */
        T *xbuf;
        const T *x = FNV(vector_columns)(X, K, K_pad, B, xrs, xcs, &ldx, &xbuf);
        if (!x) return SC_ERR_NOMEM;
        (void)ldx;
        const T *xs = x;  /* x as the permute kernel reads it */
        int64_t lds = ldx;
        T *xsbuf = NULL;
#ifdef NM_GEMV_PERM_LAYOUT
        if (multi && !(xs = xsbuf = NM_GEMV_PERM_LAYOUT(x, ldx, B, G, N, M, &lds))) {
            sc_aligned_free(xbuf);
            return SC_ERR_NOMEM;
        }
#endif
        (void)xs;
        (void)lds;
        sc_poll_t poll;
        sc_poll_init(&poll);
        #pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int64_t lo, hi;
            sc_even_split(m, 4, &lo, &hi);
            int done = 0;
#ifdef NM_GEMV_PERM
            if (multi)
                done = NM_GEMV_PERM(G, N, M, values, idx, x, ldx, xs, lds, B, Y, yrs, ycs, lo, hi,
                                    &poll);
#endif
            if (!done)
                FNV(nm_gemv_rows)(G, N, M, values, idx, x, Y, yrs, lo, hi, &poll);
            for (int64_t b = 0; ep && !poll.stop && b < B; b++)
                FNV(epilogue_strided)(Y + lo * yrs + b * ycs, yrs, hi - lo,
                                      ep->bias ? (const T *)ep->bias + lo : NULL, ep->act);
        }
        sc_aligned_free(xsbuf);
        sc_aligned_free(xbuf);
        return poll.stop ? SC_ERR_INTERRUPTED : SC_OK;
    }
    sc_xplan pl;
    /* panels of at least one whole tile: the kernel walks K in chunks, so
     * a panel need not fit L2 (it streams from L3 once per block of rows) */
    const int64_t tile_bytes = SC_NM_VMAX * VL * (int64_t)sizeof(T);
    int status = sc_plan_x(&pl, X, K, K_pad, B, xrs, xcs, VL, sizeof(T),
                           SC_MAX(SC_PANEL_BYTES_NARROW, tile_bytes), SC_NM_VMAX * VL);
    /* With panels enough for every thread, each thread packs its panels one
     * at a time into a buffer of its own and runs all rows over each, so a
     * panel is used while it is in L2 (and a wide X is never copied whole);
     * otherwise all panels are packed together and threads split the rows. */
    const int by_panel = pl.npanels >= 2 * nt;
    const int64_t own_len = by_panel ? sc_plan_max_panel(&pl, K_pad) : 0;
    const int64_t stage_len = SC_STAGE_ROWS * sc_plan_max_width(&pl);
    T *stage = NULL;
    if (status == SC_OK && !by_panel) status = sc_plan_alloc(&pl, sizeof(T));
    if (status == SC_OK
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
        T *part = stage + SC_OMP_THREAD_NUM() * (stage_len + own_len);
        int64_t lo, hi;
        if (by_panel) {
            T *own = part + stage_len;
            sc_even_split(pl.npanels, 1, &lo, &hi);
            for (int64_t p = lo; p < hi; p++) {
                const sc_panel *pn = &pl.panels[p];
                const T *xp = X + pn->b0;
                if (pn->off >= 0) {
                    FNV(pack_panel)(pn, own, X, K, xrs, xcs, 0, K_pad);
                    xp = own;
                }
                FNV(nm_spmm_rows)(pn, xp, G, N, M, values, idx, Y, yrs, ycs, 0, m, part, ep, &poll);
            }
        } else {
            if (pl.buf) {
                sc_even_split(K_pad, 8, &lo, &hi);
                FNV(pack_panels)(&pl, X, K, xrs, xcs, lo, hi);
                #pragma omp barrier
            }
            sc_even_split(m, SC_NM_RMAX, &lo, &hi);
            for (int p = 0; p < pl.npanels; p++) {
                const sc_panel *pn = &pl.panels[p];
                const T *xp = pn->off >= 0 ? (const T *)pl.buf + pn->off : X + pn->b0;
                FNV(nm_spmm_rows)(pn, xp, G, N, M, values, idx, Y, yrs, ycs, lo, hi, part, ep,
                                   &poll);
            }
        }
    }
    sc_aligned_free(stage);
    sc_plan_free(&pl);
    return poll.stop ? SC_ERR_INTERRUPTED : SC_OK;
}

static int FNV(sddmm_nm)(int64_t m, int64_t K, int64_t B, int N, int M, const uint8_t *idx,
                         const T *Gm, int64_t grs, int64_t gcs,
                         const T *X, int64_t xrs, int64_t xcs, T *out, int n_threads)
{
    const int64_t Gn = (K + M - 1) / M, K_pad = Gn * M;
    const int64_t nv = SC_ROUND_UP(B, VL);
    const int need_g = !(gcs == 1 && B == nv);
    const int need_x = !(xcs == 1 && B == nv && K_pad == K);
    T *gbuf = NULL, *xbuf = NULL;
    if (need_g && !(gbuf = (T *)sc_aligned_alloc((size_t)m * nv * sizeof(T))))
        return SC_ERR_NOMEM;
    if (need_x && !(xbuf = (T *)sc_aligned_alloc((size_t)K_pad * nv * sizeof(T)))) {
        sc_aligned_free(gbuf);
        return SC_ERR_NOMEM;
    }
    const T *g = need_g ? gbuf : Gm;
    const T *x = need_x ? xbuf : X;
    const int64_t gld = need_g ? nv : grs, xld = need_x ? nv : xrs;
    int nt = sc_threads_for(n_threads, m * Gn * N * nv, m);
    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        if (need_g) {
            sc_even_split(m, 8, &lo, &hi);
            FNV(pack_rowmajor)(gbuf, nv, Gm, m, B, grs, gcs, lo, hi);
        }
        if (need_x) {
            sc_even_split(K_pad, 8, &lo, &hi);
            FNV(pack_rowmajor)(xbuf, nv, X, K, B, xrs, xcs, lo, hi);
        }
        if (need_g || need_x) {
            #pragma omp barrier
        }
        sc_even_split(m, 1, &lo, &hi);
        FNV(nm_sddmm_rows)(Gn, N, M, idx, g, gld, x, xld, nv, out, lo, hi, &poll);
    }
    sc_aligned_free(gbuf);
    sc_aligned_free(xbuf);
    return poll.stop ? SC_ERR_INTERRUPTED : SC_OK;
}

/* ---- N:M compression and pruning ---- */

/* Write one group's N slots: the offsets with keep[j] != 0 (cnt of them)
 * with their values, plus N - cnt zero-valued slots at the lowest offsets
 * not kept, all in increasing offset order. Branch-free on the data. */
SC_INLINE void FNV(nm_fill_group)(const unsigned char *keep, int cnt, int N, int M,
                                  const T *wg, int64_t wcs, int valid, T *vo, uint8_t *io)
{
    T vbuf[17];
    uint8_t ibuf[17];
    int pos = 0, free_seen = 0;
    const int extra = N - cnt;
    for (int j = 0; j < M; j++) {
        const int k = keep[j];
        const int fill = !k & (free_seen < extra);
        free_seen += !k;
        vbuf[pos] = k ? wg[(j < valid ? j : 0) * wcs] : (T)0;
        ibuf[pos] = (uint8_t)j;
        pos += k | fill;
    }
    for (int q = 0; q < N; q++) { vo[q] = vbuf[q]; io[q] = ibuf[q]; }
}

/* One row of nm_compress: -1, or the first group with more than N entries. */
SC_INLINE int64_t FNV(nm_compress_row)(int64_t G, int64_t K, int N, int M, const T *wi,
                                       int64_t wcs, const uint8_t *mi, int64_t mcs,
                                       T *vrow, uint8_t *irow)
{
    unsigned char keep[16];
    for (int64_t g = 0; g < G; g++) {
        const int64_t j0 = g * M;
        const int valid = (int)SC_MIN((int64_t)M, K - j0);
        int cnt = 0;
        for (int j = 0; j < M; j++) {
            const int in = j < valid;
            const int64_t col = j0 + (in ? j : 0);
            const int k = in & (mi ? mi[col * mcs] != 0 : wi[col * wcs] != 0);
            keep[j] = (unsigned char)k;
            cnt += k;
        }
        if (cnt > N) return g;
        FNV(nm_fill_group)(keep, cnt, N, M, wi + j0 * wcs, wcs, valid, vrow + g * N, irow + g * N);
    }
    return -1;
}

static int FNV(nm_compress)(int64_t rows, int64_t K, int N, int M,
                            const T *W, int64_t wrs, int64_t wcs,
                            const uint8_t *mask, int64_t mrs, int64_t mcs,
                            T *values, uint8_t *idx, int64_t *bad, int n_threads)
{
    const int64_t G = (K + M - 1) / M, gn = G * N;
    int64_t first_bad = INT64_MAX;  /* row * G + group */
    int nt = sc_threads_for(n_threads, rows * K / 4, rows);
    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi, mine = INT64_MAX;
        sc_even_split(rows, 1, &lo, &hi);
        for (int64_t i = lo; i < hi && mine == INT64_MAX; i++) {
            if (SC_POLL(&poll, i - lo)) break;
            const T *wi = W + i * wrs;
            const uint8_t *mi = mask ? mask + i * mrs : NULL;
            T *vr = values + i * gn;
            uint8_t *ir = idx + i * gn;
            int64_t g;
            switch (M) {
            case 4: g = FNV(nm_compress_row)(G, K, N, 4, wi, wcs, mi, mcs, vr, ir); break;
            case 8: g = FNV(nm_compress_row)(G, K, N, 8, wi, wcs, mi, mcs, vr, ir); break;
            case 16: g = FNV(nm_compress_row)(G, K, N, 16, wi, wcs, mi, mcs, vr, ir); break;
            default: g = FNV(nm_compress_row)(G, K, N, M, wi, wcs, mi, mcs, vr, ir); break;
            }
            if (g >= 0) mine = i * G + g;
        }
        if (mine != INT64_MAX) {
            #pragma omp critical(sc_nm_compress)
            if (mine < first_bad) first_bad = mine;
        }
    }
    if (poll.stop) return SC_ERR_INTERRUPTED;
    if (first_bad != INT64_MAX) {
        bad[0] = first_bad / G;
        bad[1] = first_bad % G;
        return SC_ERR_VALUE;
    }
    return SC_OK;
}

/* One row of nm_prune; inlined with a constant M for the common patterns so
 * the rank loops unroll completely. */
SC_INLINE void FNV(nm_prune_row)(int64_t i, int64_t G, int64_t K, int N, int M, int stype,
                                 const T *wi, int64_t wcs, const void *score, int64_t srs,
                                 int64_t scs, T *vrow, uint8_t *irow)
{
    double s[16];
    unsigned char keep[16];
    for (int64_t g = 0; g < G; g++) {
        const int64_t j0 = g * M;
        const int valid = (int)SC_MIN((int64_t)M, K - j0);
        for (int j = 0; j < M; j++) {
            const int64_t col = j0 + (j < valid ? j : 0);
            if (!score)
                s[j] = fabs((double)wi[col * wcs]);
            else if (stype == SC_FLOAT32)
                s[j] = ((const float *)score)[i * srs + col * scs];
            else
                s[j] = ((const double *)score)[i * srs + col * scs];
        }
        /* rank = entries that beat j (larger, or equal and earlier) */
        int cnt = 0;
        for (int j = 0; j < M; j++) {
            int rank = 0;
            for (int q = 0; q < M; q++)
                rank += (q < valid) & ((s[q] > s[j]) | ((s[q] == s[j]) & (q < j)));
            const int k = (j < valid) & (rank < N);
            keep[j] = (unsigned char)k;
            cnt += k;
        }
        FNV(nm_fill_group)(keep, cnt, N, M, wi + j0 * wcs, wcs, valid, vrow + g * N, irow + g * N);
    }
}

static int FNV(nm_prune)(int stype, int64_t rows, int64_t K, int N, int M,
                         const T *W, int64_t wrs, int64_t wcs,
                         const void *score, int64_t srs, int64_t scs,
                         T *values, uint8_t *idx, int n_threads)
{
    const int64_t G = (K + M - 1) / M, gn = G * N;
    int nt = sc_threads_for(n_threads, rows * K / 4, rows);
    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        sc_even_split(rows, 1, &lo, &hi);
        for (int64_t i = lo; i < hi; i++) {
            if (SC_POLL(&poll, i - lo)) break;
            const T *wi = W + i * wrs;
            T *vr = values + i * gn;
            uint8_t *ir = idx + i * gn;
            switch (M) {
            case 4: FNV(nm_prune_row)(i, G, K, N, 4, stype, wi, wcs, score, srs, scs, vr, ir); break;
            case 8: FNV(nm_prune_row)(i, G, K, N, 8, stype, wi, wcs, score, srs, scs, vr, ir); break;
            case 16: FNV(nm_prune_row)(i, G, K, N, 16, stype, wi, wcs, score, srs, scs, vr, ir); break;
            default: FNV(nm_prune_row)(i, G, K, N, M, stype, wi, wcs, score, srs, scs, vr, ir); break;
            }
        }
    }
    return poll.stop ? SC_ERR_INTERRUPTED : SC_OK;
}
