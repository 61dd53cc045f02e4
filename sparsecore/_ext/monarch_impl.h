/*
 * monarch_impl.h -- the Monarch kernels for one value type. monarch.c
 * includes it once per type after defining:
 *   T     element type (float, double)
 *   SFX   name suffix (f32, f64)
 *   VT    vector of VL elements (GNU vector extension), VTU its unaligned
 *         alias; with VL == 1 both are T and the code is plain C99.
 *
 * Only block_gemm, gemv_n, gemv_t and project_slice carry the AVX2+FMA
 * clone (SC_TARGET_CLONES): everything they call is inlined into them, and
 * nothing cloned contains an OpenMP region (outlined OpenMP bodies would
 * lose the target attribute).
 */
#define FN(name) SC_NAME2(name, SFX)

SC_INLINE VT FN(vload)(const T *p) { return *(const VTU *)p; }
SC_INLINE void FN(vstore)(T *p, VT v) { *(VTU *)p = v; }

SC_INLINE T FN(hsum)(VT v)
{
#if VL > 1
    T s = 0;
    for (int e = 0; e < VL; e++) s += v[e];
    return s;
#else
    return v;
#endif
}

/* ------------------------------------------------------------------ */
/* C (mr x nv*VL) = A (mr x K) @ X (K x nv*VL); A(i, t) = A[i*a_rs + t*a_cs],
 * X row t at X + t*ldx, C row i at C + i*ldc. mr <= SC_MR, nv <= SC_NV are
 * constants after inlining, so acc lives in registers. */
SC_INLINE void FN(tile)(const int mr, const int nv, const int64_t K,
                        const T *SC_RESTRICT A, const int64_t a_rs, const int64_t a_cs,
                        const T *SC_RESTRICT X, const int64_t ldx,
                        T *SC_RESTRICT C, const int64_t ldc)
{
    VT acc[SC_MR][SC_NV];
    for (int i = 0; i < SC_MR; i++)
        for (int j = 0; j < SC_NV; j++) acc[i][j] = (VT){0};
    for (int64_t t = 0; t < K; t++) {
        const T *xr = X + t * ldx;
        const T *ar = A + t * a_cs;
        VT xv[SC_NV];
        for (int j = 0; j < nv; j++) xv[j] = FN(vload)(xr + j * VL);
        for (int i = 0; i < mr; i++) {
            const T a = ar[i * a_rs];
            for (int j = 0; j < nv; j++) acc[i][j] += a * xv[j];
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nv; j++) FN(vstore)(C + i * ldc + j * VL, acc[i][j]);
}

/* One column of C: the same products in the same order as a tile lane. */
SC_INLINE void FN(tile_col)(const int mr, const int64_t K,
                            const T *SC_RESTRICT A, const int64_t a_rs, const int64_t a_cs,
                            const T *SC_RESTRICT X, const int64_t ldx,
                            T *SC_RESTRICT C, const int64_t ldc)
{
    T acc[SC_MR];
    for (int i = 0; i < SC_MR; i++) acc[i] = 0;
    for (int64_t t = 0; t < K; t++) {
        const T x = X[t * ldx];
        const T *ar = A + t * a_cs;
        for (int i = 0; i < mr; i++) acc[i] += ar[i * a_rs] * x;
    }
    for (int i = 0; i < mr; i++) C[i * ldc] = acc[i];
}

/* All M rows of a column strip: SC_MR-row tiles and a 1..SC_MR-1 row tail. */
SC_INLINE void FN(strip)(const int nv, const int64_t M, const int64_t K,
                         const T *A, const int64_t a_rs, const int64_t a_cs,
                         const T *X, const int64_t ldx, T *C, const int64_t ldc)
{
    int64_t i = 0;
    for (; i + SC_MR <= M; i += SC_MR)
        FN(tile)(SC_MR, nv, K, A + i * a_rs, a_rs, a_cs, X, ldx, C + i * ldc, ldc);
    switch (M - i) {
#if SC_MR > 7
#error "SC_MR must be at most 7"
#endif
#if SC_MR > 6
    case 6: FN(tile)(6, nv, K, A + i * a_rs, a_rs, a_cs, X, ldx, C + i * ldc, ldc); break;
#endif
#if SC_MR > 5
    case 5: FN(tile)(5, nv, K, A + i * a_rs, a_rs, a_cs, X, ldx, C + i * ldc, ldc); break;
#endif
#if SC_MR > 4
    case 4: FN(tile)(4, nv, K, A + i * a_rs, a_rs, a_cs, X, ldx, C + i * ldc, ldc); break;
#endif
    case 3: FN(tile)(3, nv, K, A + i * a_rs, a_rs, a_cs, X, ldx, C + i * ldc, ldc); break;
    case 2: FN(tile)(2, nv, K, A + i * a_rs, a_rs, a_cs, X, ldx, C + i * ldc, ldc); break;
    case 1: FN(tile)(1, nv, K, A + i * a_rs, a_rs, a_cs, X, ldx, C + i * ldc, ldc); break;
    default: break;
    }
}

SC_INLINE void FN(strip_col)(const int64_t M, const int64_t K,
                             const T *A, const int64_t a_rs, const int64_t a_cs,
                             const T *X, const int64_t ldx, T *C, const int64_t ldc)
{
    int64_t i = 0;
    for (; i + SC_MR <= M; i += SC_MR)
        FN(tile_col)(SC_MR, K, A + i * a_rs, a_rs, a_cs, X, ldx, C + i * ldc, ldc);
    for (; i < M; i++) FN(tile_col)(1, K, A + i * a_rs, a_rs, a_cs, X, ldx, C + i * ldc, ldc);
}

/* C (M x N) = A (M x K) @ X (K x N), rows of X and C contiguous along N.
 * One block of one stage for one panel of batch columns. */
SC_TARGET_CLONES
static void FN(block_gemm)(const int64_t M, const int64_t K, const int64_t N,
                           const T *A, const int64_t a_rs, const int64_t a_cs,
                           const T *X, const int64_t ldx, T *C, const int64_t ldc)
{
    int64_t j = 0;
    int64_t full = N / (SC_NV * VL);
#if SC_NV > 2
    /* a one-vector remainder after full tiles: end with two-vector strips
     * instead (e.g. 32 columns as 16 + 16, not 24 + 8), since a one-vector
     * strip has too few accumulators to hide the FMA latency */
    if (full > 0 && N - full * SC_NV * VL >= VL && N - full * SC_NV * VL < 2 * VL) full--;
#endif
    for (; j < full * SC_NV * VL; j += SC_NV * VL)
        FN(strip)(SC_NV, M, K, A, a_rs, a_cs, X + j, ldx, C + j, ldc);
#if SC_NV > 2
    for (; j + 2 * VL <= N; j += 2 * VL)
        FN(strip)(2, M, K, A, a_rs, a_cs, X + j, ldx, C + j, ldc);
#endif
    for (; j + VL <= N; j += VL)
        FN(strip)(1, M, K, A, a_rs, a_cs, X + j, ldx, C + j, ldc);
    for (; j < N; j++)
        FN(strip_col)(M, K, A, a_rs, a_cs, X + j, ldx, C + j, ldc);
}

/* ------------------------------------------------------------------ */
/* Vectors (batch 1). y[i] = A[i, :K] . x for i < M (A row stride lda):
 * four rows at a time, two vector accumulators each. */
SC_INLINE void FN(gemv_n_body)(const int64_t M, const int64_t K,
                               const T *SC_RESTRICT A, const int64_t lda,
                               const T *SC_RESTRICT x, T *SC_RESTRICT y)
{
    int64_t i = 0;
    for (; i + 4 <= M; i += 4) {
        const T *a0 = A + i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        VT c0 = (VT){0}, c1 = (VT){0}, c2 = (VT){0}, c3 = (VT){0};
        VT d0 = (VT){0}, d1 = (VT){0}, d2 = (VT){0}, d3 = (VT){0};
        int64_t t = 0;
        for (; t + 2 * VL <= K; t += 2 * VL) {
            const VT x0 = FN(vload)(x + t), x1 = FN(vload)(x + t + VL);
            c0 += FN(vload)(a0 + t) * x0; d0 += FN(vload)(a0 + t + VL) * x1;
            c1 += FN(vload)(a1 + t) * x0; d1 += FN(vload)(a1 + t + VL) * x1;
            c2 += FN(vload)(a2 + t) * x0; d2 += FN(vload)(a2 + t + VL) * x1;
            c3 += FN(vload)(a3 + t) * x0; d3 += FN(vload)(a3 + t + VL) * x1;
        }
        for (; t + VL <= K; t += VL) {
            const VT x0 = FN(vload)(x + t);
            c0 += FN(vload)(a0 + t) * x0;
            c1 += FN(vload)(a1 + t) * x0;
            c2 += FN(vload)(a2 + t) * x0;
            c3 += FN(vload)(a3 + t) * x0;
        }
        T s0 = FN(hsum)(c0 + d0), s1 = FN(hsum)(c1 + d1);
        T s2 = FN(hsum)(c2 + d2), s3 = FN(hsum)(c3 + d3);
        for (; t < K; t++) {
            s0 += a0[t] * x[t]; s1 += a1[t] * x[t];
            s2 += a2[t] * x[t]; s3 += a3[t] * x[t];
        }
        y[i] = s0; y[i + 1] = s1; y[i + 2] = s2; y[i + 3] = s3;
    }
    for (; i < M; i++) {
        const T *a0 = A + i * lda;
        VT c0 = (VT){0}, d0 = (VT){0};
        int64_t t = 0;
        for (; t + 2 * VL <= K; t += 2 * VL) {
            c0 += FN(vload)(a0 + t) * FN(vload)(x + t);
            d0 += FN(vload)(a0 + t + VL) * FN(vload)(x + t + VL);
        }
        for (; t + VL <= K; t += VL) c0 += FN(vload)(a0 + t) * FN(vload)(x + t);
        T s0 = FN(hsum)(c0 + d0);
        for (; t < K; t++) s0 += a0[t] * x[t];
        y[i] = s0;
    }
}

/* y[t] = sum_i x[i*xs] A[i, t] for t < K: a strip of 8 vectors of y stays in
 * registers while the rows of A stream past. */
SC_INLINE void FN(gemv_t_body)(const int64_t M, const int64_t K,
                               const T *SC_RESTRICT A, const int64_t lda,
                               const T *SC_RESTRICT x, const int64_t xs,
                               T *SC_RESTRICT y)
{
    int64_t t = 0;
    for (; t + 8 * VL <= K; t += 8 * VL) {
        VT c[8];
        for (int e = 0; e < 8; e++) c[e] = (VT){0};
        for (int64_t i = 0; i < M; i++) {
            const T xi = x[i * xs];
            const T *ar = A + i * lda + t;
            for (int e = 0; e < 8; e++) c[e] += xi * FN(vload)(ar + e * VL);
        }
        for (int e = 0; e < 8; e++) FN(vstore)(y + t + e * VL, c[e]);
    }
    /* narrower strips: even and odd rows in separate accumulators, so that
     * eight FMA chains are in flight */
    for (; t + 4 * VL <= K; t += 4 * VL) {
        VT c[4], d[4];
        for (int e = 0; e < 4; e++) c[e] = d[e] = (VT){0};
        int64_t i = 0;
        for (; i + 2 <= M; i += 2) {
            const T xi = x[i * xs], xj = x[(i + 1) * xs];
            const T *ar = A + i * lda + t, *br = ar + lda;
            for (int e = 0; e < 4; e++) {
                c[e] += xi * FN(vload)(ar + e * VL);
                d[e] += xj * FN(vload)(br + e * VL);
            }
        }
        if (i < M) {
            const T xi = x[i * xs];
            for (int e = 0; e < 4; e++) c[e] += xi * FN(vload)(A + i * lda + t + e * VL);
        }
        for (int e = 0; e < 4; e++) FN(vstore)(y + t + e * VL, c[e] + d[e]);
    }
    for (; t + VL <= K; t += VL) {
        VT c[4];
        for (int e = 0; e < 4; e++) c[e] = (VT){0};
        int64_t i = 0;
        for (; i + 4 <= M; i += 4)
            for (int e = 0; e < 4; e++)
                c[e] += x[(i + e) * xs] * FN(vload)(A + (i + e) * lda + t);
        for (; i < M; i++) c[0] += x[i * xs] * FN(vload)(A + i * lda + t);
        FN(vstore)(y + t, (c[0] + c[1]) + (c[2] + c[3]));
    }
    for (; t < K; t++) {
        T c0 = 0;
        for (int64_t i = 0; i < M; i++) c0 += x[i * xs] * A[i * lda + t];
        y[t] = c0;
    }
}

SC_TARGET_CLONES
static void FN(gemv_n)(const int64_t M, const int64_t K, const T *A, const int64_t lda,
                       const T *x, T *y)
{
    FN(gemv_n_body)(M, K, A, lda, x, y);
}

SC_TARGET_CLONES
static void FN(gemv_t)(const int64_t M, const int64_t K, const T *A, const int64_t lda,
                       const T *x, const int64_t xs, T *y)
{
    FN(gemv_t_body)(M, K, A, lda, x, xs, y);
}

/* ------------------------------------------------------------------ */
/* Products: Y = op(M) @ X. */

typedef struct {
    int transpose;
    int64_t k, q, p, l, s, r;
    int64_t nin, nout, mid;     /* rows of X, rows of Y, intermediate size */
    int64_t nblk1, nblk2;       /* blocks of the first and second stage */
    const T *w1, *w2;
    const T *w1t, *w2t;         /* transposed blocks (k, p, q), (l, r, s) or NULL */
    int zperm;                  /* intermediate kept in second-stage order */
} FN(mplan);

/*
 * The two stages of one block for one panel of nbp columns.
 *
 * The micro-kernel reloads every input row once per row tile but stores an
 * output row once, so the permutations go on the stores: without transpose
 * (zperm, when l divides q) the first stage writes the intermediate in the
 * order the second stage reads it, row lm*r + rh for z[rh*l + lm], and the
 * second stage writes output rows sg*l + lm. For the transpose, the input
 * panel has been packed in the order L^T's blocks read it (row lm*s + sg for
 * X row sg*l + lm), the first stage stores rows rh*l + lm of the intermediate
 * and the second stage reads contiguous rows.
 */
SC_INLINE void FN(stage1)(const FN(mplan) *pl, int64_t b, int64_t nbp,
                          const T *Xp, int64_t ldx, T *Z, int64_t ldz)
{
    const int64_t q = pl->q, p = pl->p, s = pl->s, r = pl->r, l = pl->l;
    if (!pl->transpose) {
        const T *A = pl->w1 + b * q * p;
        const T *Xb = Xp + b * p * ldx;
        if (pl->zperm) {
            /* rows g*l + i of the block are z[(b*t + g)*l + i]: stored at
             * row i*r + b*t + g */
            const int64_t t = q / l;
            for (int64_t g = 0; g < t; g++)
                FN(block_gemm)(l, p, nbp, A + g * l * p, p, 1, Xb, ldx,
                               Z + (b * t + g) * ldz, r * ldz);
        } else {
            FN(block_gemm)(q, p, nbp, A, p, 1, Xb, ldx, Z + b * q * ldz, ldz);
        }
    } else {
        FN(block_gemm)(r, s, nbp, pl->w2 + b * s * r, 1, r, Xp + b * s * ldx, ldx,
                       Z + b * ldz, l * ldz);
    }
}

SC_INLINE void FN(stage2)(const FN(mplan) *pl, int64_t b, int64_t nbp,
                          const T *Z, int64_t ldz, T *Yp, int64_t ldy)
{
    const int64_t q = pl->q, p = pl->p, s = pl->s, r = pl->r, l = pl->l;
    if (!pl->transpose) {
        const T *Zb = pl->zperm ? Z + b * r * ldz : Z + b * ldz;
        const int64_t ldzb = pl->zperm ? ldz : l * ldz;
        FN(block_gemm)(s, r, nbp, pl->w2 + b * s * r, r, 1, Zb, ldzb, Yp + b * ldy, l * ldy);
    } else {
        FN(block_gemm)(p, q, nbp, pl->w1 + b * q * p, 1, p, Z + b * q * ldz, ldz,
                       Yp + b * p * ldy, ldy);
    }
}

/* Rows of X a first-stage block reads, as X row = start + i*step (i < n),
 * and where they go in a packed panel (row dst0 + i). */
SC_INLINE void FN(stage1_rows)(const FN(mplan) *pl, int64_t b, int64_t *start,
                               int64_t *step, int64_t *n, int64_t *dst0)
{
    if (!pl->transpose) {
        *start = b * pl->p; *step = 1; *n = pl->p; *dst0 = b * pl->p;
    } else {
        *start = b; *step = pl->l; *n = pl->s; *dst0 = b * pl->s;
    }
}

/* Copy an (nrows x ncols) strided block into a contiguous one and back.
 * When columns are the far-apart axis (an F-ordered operand), go down the
 * columns in chunks of SC_PACK_ROWS rows, so that the destination lines of
 * a chunk stay in L1 while every column is read contiguously. */
#define SC_PACK_ROWS 64
static void FN(pack)(int64_t nrows, int64_t ncols, const T *src, int64_t rs, int64_t cs,
                     T *dst, int64_t ldd)
{
    if (cs <= rs) {
        for (int64_t i = 0; i < nrows; i++)
            for (int64_t j = 0; j < ncols; j++) dst[i * ldd + j] = src[i * rs + j * cs];
        return;
    }
    for (int64_t i0 = 0; i0 < nrows; i0 += SC_PACK_ROWS) {
        const int64_t i1 = nrows - i0 < SC_PACK_ROWS ? nrows : i0 + SC_PACK_ROWS;
        for (int64_t j = 0; j < ncols; j++)
            for (int64_t i = i0; i < i1; i++) dst[i * ldd + j] = src[i * rs + j * cs];
    }
}

static void FN(unpack)(int64_t nrows, int64_t ncols, const T *src, int64_t lds,
                       T *dst, int64_t rs, int64_t cs)
{
    if (cs <= rs) {
        for (int64_t i = 0; i < nrows; i++)
            for (int64_t j = 0; j < ncols; j++) dst[i * rs + j * cs] = src[i * lds + j];
        return;
    }
    for (int64_t i0 = 0; i0 < nrows; i0 += SC_PACK_ROWS) {
        const int64_t i1 = nrows - i0 < SC_PACK_ROWS ? nrows : i0 + SC_PACK_ROWS;
        for (int64_t j = 0; j < ncols; j++)
            for (int64_t i = i0; i < i1; i++) dst[i * rs + j * cs] = src[i * lds + j];
    }
}

/* The input panel (all rows, columns b0 .. b0+w) packed for the first
 * stage: in natural row order, or for the transpose with X row sg*l + lm at
 * row lm*s + sg. Rows are read in natural order (contiguous in an F-ordered
 * X). */
static void FN(pack_panel)(const FN(mplan) *pl, const T *X, int64_t x_rs, int64_t x_cs,
                           int64_t b0, int64_t w, T *xb, T *tmp, int64_t ldz)
{
    const T *src = X + b0 * x_cs;
    if (!pl->transpose) {
        FN(pack)(pl->nin, w, src, x_rs, x_cs, xb, ldz);
        return;
    }
    const int64_t l = pl->l, s = pl->s, nin = pl->nin;
    if (x_cs > x_rs) {
        /* transposing and permuting at once would scatter to rows l apart
         * (4 KiB aliasing): transpose into tmp, then move whole rows */
        FN(pack)(nin, w, src, x_rs, x_cs, tmp, ldz);
        src = tmp;
        x_rs = ldz;
        x_cs = 1;
    }
    int64_t lm = 0, sg = 0;
    for (int64_t i = 0; i < nin; i++) {
        T *d = xb + (lm * s + sg) * ldz;
        const T *row = src + i * x_rs;
        for (int64_t j = 0; j < w; j++) d[j] = row[j * x_cs];
        if (++lm == l) { lm = 0; sg++; }
    }
}

/* One panel, both stages, by one thread. Buffers: z (mid x ldz), and xb
 * (nin x ldz) / yb (nout x ldz) when X / Y are not contiguous along the
 * batch. */
static void FN(panel)(const FN(mplan) *pl, int64_t b0, int64_t nbp,
                      const T *X, int64_t x_rs, int64_t x_cs,
                      T *Y, int64_t y_rs, int64_t y_cs,
                      T *z, T *xb, T *yb, T *tb, int64_t ldz)
{
    const T *Xp;
    int64_t ldx, ldy;
    T *Yp;
    /* a ragged panel is computed whole vectors wide on a zero-padded copy
     * (lanes never mix, so the padding changes no result) */
    const int64_t wv = (nbp + VL - 1) / VL * VL;
    if (x_cs == 1 && !pl->transpose && wv == nbp) {
        Xp = X + b0;
        ldx = x_rs;
    } else {
        FN(pack_panel)(pl, X, x_rs, x_cs, b0, nbp, xb, tb, ldz);
        if (wv != nbp)
            for (int64_t i = 0; i < pl->nin; i++)
                for (int64_t j = nbp; j < wv; j++) xb[i * ldz + j] = 0;
        Xp = xb;
        ldx = ldz;
    }
    if (y_cs == 1 && wv == nbp) {
        Yp = Y + b0;
        ldy = y_rs;
    } else {
        Yp = yb;
        ldy = ldz;
    }
    for (int64_t b = 0; b < pl->nblk1; b++) FN(stage1)(pl, b, wv, Xp, ldx, z, ldz);
    for (int64_t b = 0; b < pl->nblk2; b++) FN(stage2)(pl, b, wv, z, ldz, Yp, ldy);
    if (Yp == yb) FN(unpack)(pl->nout, nbp, yb, ldz, Y + b0 * y_cs, y_rs, y_cs);
}

SC_INLINE T *FN(alloc)(int64_t n)
{
    return (T *)malloc((size_t)(n > 0 ? n : 1) * sizeof(T) + 64);
}

/* 64-byte aligned view into a buffer from FN(alloc) */
SC_INLINE T *FN(align)(T *ptr)
{
    return (T *)(((uintptr_t)ptr + 63) & ~(uintptr_t)63);
}

/* Up to four 64-byte aligned arrays of n[i] elements (NULL for 0) carved
 * from the calling thread's scratch buffer (sc_scratch). Returns 0 when
 * memory runs out; release with sc_scratch_release(*base, *owned). */
static int FN(scratch)(const int64_t n[4], T *out[4], void **base, int *owned)
{
    size_t total = 64;
    for (int i = 0; i < 4; i++) total += ((size_t)(n[i] > 0 ? n[i] : 0) * sizeof(T) + 63) & ~(size_t)63;
    char *b = (char *)sc_scratch(total, owned);
    if (b == NULL) return 0;
    *base = b;
    char *at = (char *)(((uintptr_t)b + 63) & ~(uintptr_t)63);
    for (int i = 0; i < 4; i++) {
        out[i] = n[i] > 0 ? (T *)at : NULL;
        at += ((size_t)(n[i] > 0 ? n[i] : 0) * sizeof(T) + 63) & ~(size_t)63;
    }
    return 1;
}

static int FN(matmul_gemm)(const FN(mplan) *pl, int64_t nb,
                           const T *X, int64_t x_rs, int64_t x_cs,
                           T *Y, int64_t y_rs, int64_t y_cs, int64_t panel, int nt)
{
    const int64_t mid = pl->mid, nin = pl->nin, nout = pl->nout;
    /* panel width: the intermediate panel (mid x panel) should stay in L2 */
    /* panel width: two register tiles (192 bytes, whole cache lines of X
     * and Y rows). Wider panels reread the weights less often but push the
     * intermediate panel (mid x panel) out of L2; two tiles measured best
     * at n = 1024 and 4096 (4-9 % over one tile). */
    int64_t bp = panel > 0 ? (panel + VL - 1) / VL * VL : 2 * SC_NV * VL;
    if (bp > nb) bp = nb;  /* else panels start at whole vectors; only the last is ragged */
    int64_t npan = (nb + bp - 1) / bp;
    if (panel <= 0 && nt > 1 && npan < 4 * nt) {
        /* too few panels to share out evenly: one panel per thread (no
         * barrier inside the call) when each is at least two vectors */
        const int64_t wide = ((nb + nt - 1) / nt + VL - 1) / VL * VL;
        if (wide >= 2 * VL) {
            bp = wide;
            npan = (nb + bp - 1) / bp;
        }
    }
    const int64_t ldz = (bp + VL - 1) / VL * VL;
    const int ragged = nb % VL != 0;
    const int need_x = x_cs != 1 || pl->transpose || ragged, need_y = y_cs != 1 || ragged;
    const int need_t = pl->transpose && x_cs > x_rs;
    int status = SC_OK;
    sc_poll_t poll;
    sc_poll_init(&poll);

    /* whole panels per thread when they share out evenly (or there are so
     * many that the last round hardly matters), else all threads on each
     * panel, which costs a barrier: worth it only for enough work. Both give
     * the same arithmetic for every element. */
    if (nt > 1 && npan % nt != 0 && npan < 4 * nt) {
        const int64_t macs = (pl->k * pl->q * pl->p + pl->l * pl->s * pl->r) * nb;
        const int64_t most = macs / SC_MONARCH_MACS_PER_BARRIER_THREAD;
        if (most < nt) nt = most > 1 ? (int)most : 1;
    }
    if (nt == 1 || npan % nt == 0 || npan >= 4 * nt) {
        /* every thread takes whole panels: no barrier, the panel of Z stays
         * in its cache between the two stages */
        #pragma omp parallel num_threads(nt) if (nt > 1)
        {
            const int64_t sizes[4] = {mid * ldz, need_x ? nin * ldz : 0,
                                      need_y ? nout * ldz : 0, need_t ? nin * ldz : 0};
            T *buf[4];
            void *base = NULL;
            int owned = 0;
            if (!FN(scratch)(sizes, buf, &base, &owned)) {
                #pragma omp critical(sc_monarch_status)
                status = SC_ERR_NOMEM;
            }
            #pragma omp barrier
            if (status == SC_OK) {
                #pragma omp for schedule(dynamic, 1)
                for (int64_t pi = 0; pi < npan; pi++) {
                    if (sc_poll(&poll)) continue;  /* Ctrl-C: skip the rest */
                    const int64_t b0 = pi * bp;
                    const int64_t w = nb - b0 < bp ? nb - b0 : bp;
                    FN(panel)(pl, b0, w, X, x_rs, x_cs, Y, y_rs, y_cs,
                              buf[0], buf[1], buf[2], buf[3], ldz);
                }
            }
            sc_scratch_release(base, owned);
        }
        if (status == SC_OK && poll.stop) status = SC_ERR_INTERRUPTED;
        return status;
    }

    /* few panels: every stage is split into block tasks over a full-width
     * intermediate, with one barrier between the stages; each task packs
     * the rows of X it reads and unpacks the rows of Y it writes */
    const int64_t ldf = (nb + VL - 1) / VL * VL;
    const int64_t sizes[4] = {mid * ldf, need_x ? nin * ldf : 0, need_y ? nout * ldf : 0, 0};
    T *buf[4];
    void *base = NULL;
    int owned = 0;
    if (!FN(scratch)(sizes, buf, &base, &owned)) return SC_ERR_NOMEM;
    T *z = buf[0], *xb = buf[1], *yb = buf[2];
    const T *Xp = need_x ? xb : X;
    T *Yp = need_y ? yb : Y;
    const int64_t ldx = need_x ? ldf : x_rs, ldy = need_y ? ldf : y_rs;
    /* rows of Y written by a second-stage block: start + i*step, i < count */
    const int64_t r2_count = pl->transpose ? pl->p : pl->s;
    const int64_t r2_step = pl->transpose ? 1 : pl->l;
    #pragma omp parallel num_threads(nt)
    {
        /* a task is a block with all its panels: blocks own disjoint rows,
         * so no two threads write one cache line */
        #pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < pl->nblk1; b++) {
            if (sc_poll(&poll)) continue;
            for (int64_t b0 = 0; b0 < nb; b0 += bp) {
                const int64_t w = nb - b0 < bp ? nb - b0 : bp;
                const int64_t wv = (w + VL - 1) / VL * VL;
                if (need_x) {
                    int64_t start, step, n, dst0;
                    FN(stage1_rows)(pl, b, &start, &step, &n, &dst0);
                    FN(pack)(n, w, X + start * x_rs + b0 * x_cs, step * x_rs, x_cs,
                             xb + dst0 * ldf + b0, ldf);
                    for (int64_t i = dst0; i < dst0 + n; i++)
                        for (int64_t j = b0 + w; j < b0 + wv; j++) xb[i * ldf + j] = 0;
                }
                FN(stage1)(pl, b, wv, Xp + b0, ldx, z + b0, ldf);
            }
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < pl->nblk2; b++) {
            if (sc_poll(&poll)) continue;
            for (int64_t b0 = 0; b0 < nb; b0 += bp) {
                const int64_t w = nb - b0 < bp ? nb - b0 : bp;
                const int64_t wv = (w + VL - 1) / VL * VL;
                FN(stage2)(pl, b, wv, z + b0, ldf, Yp + b0, ldy);
                if (need_y) {
                    const int64_t r0 = pl->transpose ? b * pl->p : b;
                    for (int64_t i = 0; i < r2_count; i++) {
                        const int64_t row = r0 + i * r2_step;
                        FN(unpack)(1, w, yb + row * ldf + b0, ldf,
                                   Y + row * y_rs + b0 * y_cs, y_rs, y_cs);
                    }
                }
            }
        }
    }
    sc_scratch_release(base, owned);
    return poll.stop ? SC_ERR_INTERRUPTED : SC_OK;
}

/* Batch 1: GEMVs per block; the intermediate vector is kept in the order the
 * second stage reads it (zp[(j % l)*r + j / l] = z[j]), so both stages read
 * contiguous vectors and P1 costs one scalar store per entry. */
static int FN(matmul_gemv)(const FN(mplan) *pl, const T *x, int64_t xs, T *y, int64_t ys,
                           int nt)
{
    const int64_t k = pl->k, q = pl->q, p = pl->p, l = pl->l, s = pl->s, r = pl->r;
    const int64_t mid = pl->mid, nin = pl->nin;
    int64_t tmax = q > s ? q : s;
    if (p > tmax) tmax = p;
    if (r > tmax) tmax = r;
    const int64_t sizes[4] = {mid, xs != 1 ? nin : 0, 2 * tmax * (int64_t)nt, 0};
    T *buf[4];
    void *base = NULL;
    int owned = 0;
    if (!FN(scratch)(sizes, buf, &base, &owned)) return SC_ERR_NOMEM;
    T *zp = buf[0];
    T *tmp_all = buf[2];
    const T *xc = x;
    if (xs != 1) {
        T *xb = buf[1];
        for (int64_t i = 0; i < nin; i++) xb[i] = x[i * xs];
        xc = xb;
    }
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        T *tmp = tmp_all + 2 * tmax * (int64_t)SC_OMP_THREAD_NUM();
        T *tmp2 = tmp + tmax;
        if (!pl->transpose) {
            /* with transposed blocks both stages are axpy sweeps (no
             * horizontal sums); else dot products of the block rows */
            const T *w1t = pl->w1t, *w2t = pl->w2t;
            #pragma omp for schedule(static)
            for (int64_t kk = 0; kk < k; kk++) {
                if (w1t != NULL)
                    FN(gemv_t)(p, q, w1t + kk * p * q, q, xc + kk * p, 1, tmp);
                else
                    FN(gemv_n)(q, p, pl->w1 + kk * q * p, p, xc + kk * p, tmp);
                /* z[j] goes to zp[(j % l)*r + j / l]; step j without dividing */
                int64_t lm = (kk * q) % l, rh = (kk * q) / l;
                for (int64_t qq = 0; qq < q; qq++) {
                    zp[lm * r + rh] = tmp[qq];
                    if (++lm == l) { lm = 0; rh++; }
                }
            }
            #pragma omp for schedule(static)
            for (int64_t lm = 0; lm < l; lm++) {
                if (w2t != NULL)
                    FN(gemv_t)(r, s, w2t + lm * r * s, s, zp + lm * r, 1, tmp);
                else
                    FN(gemv_n)(s, r, pl->w2 + lm * s * r, r, zp + lm * r, tmp);
                for (int64_t sg = 0; sg < s; sg++) y[(sg * l + lm) * ys] = tmp[sg];
            }
        } else {
            #pragma omp for schedule(static)
            for (int64_t lm = 0; lm < l; lm++)
                FN(gemv_t)(s, r, pl->w2 + lm * s * r, r, xc + lm, l, zp + lm * r);
            #pragma omp for schedule(static)
            for (int64_t kk = 0; kk < k; kk++) {
                int64_t lm = (kk * q) % l, rh = (kk * q) / l;
                for (int64_t qq = 0; qq < q; qq++) {
                    tmp[qq] = zp[lm * r + rh];
                    if (++lm == l) { lm = 0; rh++; }
                }
                FN(gemv_t)(q, p, pl->w1 + kk * q * p, p, tmp, 1, tmp2);
                for (int64_t pp = 0; pp < p; pp++) y[(kk * p + pp) * ys] = tmp2[pp];
            }
        }
    }
    sc_scratch_release(base, owned);
    return SC_OK;
}

static int FN(matmul)(int transpose, int64_t k, int64_t q, int64_t p,
                      int64_t l, int64_t s, int64_t r,
                      const T *w1, const T *w2, const T *w1t, const T *w2t, int64_t nb,
                      const T *X, int64_t x_rs, int64_t x_cs,
                      T *Y, int64_t y_rs, int64_t y_cs, int64_t panel, int nt)
{
    FN(mplan) pl;
    pl.transpose = transpose;
    pl.k = k; pl.q = q; pl.p = p; pl.l = l; pl.s = s; pl.r = r;
    pl.mid = k * q;
    pl.nin = transpose ? l * s : k * p;
    pl.nout = transpose ? k * p : l * s;
    pl.nblk1 = transpose ? l : k;
    pl.nblk2 = transpose ? k : l;
    pl.w1 = w1;
    pl.w2 = w2;
    pl.w1t = w1t;
    pl.w2t = w2t;
    pl.zperm = !transpose && q % l == 0;
    /* multiply-adds of the whole product: below a few hundred thousand a
     * second thread costs more than it saves */
    const int64_t macs = (k * q * p + l * s * r) * nb;
    if (macs < SC_MONARCH_MACS_PER_THREAD) nt = 1;
    else if (nt > 1 && macs / SC_MONARCH_MACS_PER_THREAD < nt)
        nt = (int)(macs / SC_MONARCH_MACS_PER_THREAD);
    if (nb == 1) return FN(matmul_gemv)(&pl, X, x_rs, Y, y_rs, nt);
    return FN(matmul_gemm)(&pl, nb, X, x_rs, x_cs, Y, y_rs, y_cs, panel, nt);
}

/* ------------------------------------------------------------------ */
/* Projection of one slice (s x p, contiguous in t) by power iteration and
 * deflation; see monarch.h. */
SC_TARGET_CLONES
static int32_t FN(project_slice)(int64_t lm, int64_t kk, int64_t q, int64_t p,
                                 int64_t l, int64_t s, int64_t r,
                                 T *SC_RESTRICT t, T *SC_RESTRICT u, T *SC_RESTRICT v,
                                 T *SC_RESTRICT w, int max_iter, double tol,
                                 T *SC_RESTRICT w1, T *SC_RESTRICT w2, double *err2,
                                 sc_poll_t *poll)
{
    int32_t iters = 0;
    /* the intermediate indices j of this slice: j0, j0 + l, ... < kk*q + q */
    const int64_t jlo = kk * q, jhi = kk * q + q;
    int64_t j0 = jlo + ((lm - jlo) % l + l) % l;
    for (int64_t j = j0; j < jhi; j += l) {
        if (sc_poll(poll)) break;  /* large slices of high rank take long */
        const int64_t rh = j / l, qq = j - jlo;
        T *w2c = w2 + lm * s * r + rh;      /* column rh of block lm: stride r */
        T *w1r = w1 + kk * q * p + qq * p;  /* row qq of block kk */
        /* start from the longest row */
        int64_t best = -1;
        double bestn = 0.0;
        for (int64_t sg = 0; sg < s; sg++) {
            double a = 0.0;
            for (int64_t pp = 0; pp < p; pp++) a += (double)t[sg * p + pp] * t[sg * p + pp];
            if (a > bestn) { bestn = a; best = sg; }
        }
        double sig = 0.0;
        int ok = 0;
        if (best >= 0) {
            const T inv0 = (T)(1.0 / sqrt(bestn));
            for (int64_t pp = 0; pp < p; pp++) v[pp] = t[best * p + pp] * inv0;
            double prev = 0.0;
            for (int it = 0; it < max_iter; it++) {
                if ((it & 63) == 63 && sc_poll(poll)) break;
                FN(gemv_n_body)(s, p, t, p, v, u);
                double nu = 0.0;
                for (int64_t sg = 0; sg < s; sg++) nu += (double)u[sg] * u[sg];
                if (!(nu > 0.0)) { ok = 0; break; }
                const T iu = (T)(1.0 / sqrt(nu));
                for (int64_t sg = 0; sg < s; sg++) u[sg] *= iu;
                FN(gemv_t_body)(s, p, t, p, u, 1, w);
                double nw = 0.0;
                for (int64_t pp = 0; pp < p; pp++) nw += (double)w[pp] * w[pp];
                sig = sqrt(nw);
                ok = sig > 0.0;
                iters++;
                if (!ok) break;
                const T iw = (T)(1.0 / sig);
                for (int64_t pp = 0; pp < p; pp++) v[pp] = w[pp] * iw;
                if (sig - prev <= tol * sig) break;
                prev = sig;
            }
        }
        if (!ok) {
            for (int64_t sg = 0; sg < s; sg++) w2c[sg * r] = 0;
            for (int64_t pp = 0; pp < p; pp++) w1r[pp] = 0;
            continue;
        }
        /* term u w^T = u u^T t, split as (u sqrt(sig)) (w / sqrt(sig))^T */
        const T root = (T)sqrt(sig), iroot = (T)(1.0 / sqrt(sig));
        for (int64_t sg = 0; sg < s; sg++) w2c[sg * r] = u[sg] * root;
        for (int64_t pp = 0; pp < p; pp++) w1r[pp] = w[pp] * iroot;
        for (int64_t sg = 0; sg < s; sg++) {
            const T us = u[sg];
            T *ts = t + sg * p;
            for (int64_t pp = 0; pp < p; pp++) ts[pp] -= us * w[pp];
        }
    }
    double e = 0.0;
    for (int64_t i = 0; i < s * p; i++) e += (double)t[i] * t[i];
    *err2 = e;
    return iters;
}

static int FN(project_power)(int64_t k, int64_t q, int64_t p, int64_t l, int64_t s, int64_t r,
                             const T *W, int64_t ldw, int max_iter, double tol,
                             T *w1, T *w2, double *err2, int32_t *iters, int nt)
{
    const int64_t nslices = l * k;
    int status = SC_OK, done = 0;
    sc_poll_t poll;
    sc_poll_init(&poll);
    if (nslices * s * p < SC_MONARCH_MACS_PER_THREAD) nt = 1;
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        T *buf = FN(alloc)(s * p + 2 * s + 2 * p + 64);
        if (buf == NULL) {
            #pragma omp critical(sc_monarch_status)
            status = SC_ERR_NOMEM;
        }
        #pragma omp barrier
        if (status == SC_OK) {
            T *t = FN(align)(buf);
            T *u = t + (s * p + 15) / 16 * 16;
            T *v = u + (s + 15) / 16 * 16;
            T *w = v + (p + 15) / 16 * 16;
            #pragma omp for schedule(dynamic, 1) nowait
            for (int64_t sl = 0; sl < nslices; sl++) {
                if (SC_POLL(&poll, sl)) continue;
                const int64_t lm = sl / k, kk = sl % k;
                for (int64_t sg = 0; sg < s; sg++)
                    memcpy(t + sg * p, W + (sg * l + lm) * ldw + kk * p, (size_t)p * sizeof(T));
                iters[sl] = FN(project_slice)(lm, kk, q, p, l, s, r, t, u, v, w,
                                              max_iter, tol, w1, w2, err2 + sl, &poll);
            }
        }
        free(buf);
        /* only thread 0 runs the interrupt check: when its share is done
         * it keeps checking until the others finish (slices of high rank
         * can take seconds each) */
        sc_poll_wait(&poll, &done);
    }
    if (status == SC_OK && poll.stop) status = SC_ERR_INTERRUPTED;
    return status;
}

#undef FN
