/*
 * topk_impl.h -- one (index type, value type) instance of the top-k kernel;
 * included by topk.c with IDX/ISFX and VAL/VSFX/VINT (the integer type of
 * VAL's size) defined.
 */
#define SC_TK_FN SC_NAME3(sc_topk, ISFX, VSFX)
#define SC_TK_ROW SC_NAME3(sc_topk_row, ISFX, VSFX)
#define SC_TK_BLOCK SC_NAME3(sc_topk_block, ISFX, VSFX)
#define SC_TK_SCATTER SC_NAME3(sc_topk_scatter, ISFX, VSFX)
#define SC_TK_SCAN SC_NAME3(sc_topk_scan, ISFX, VSFX)
#define SC_TK_CANDIDATES SC_NAME3(sc_topk_candidates, ISFX, VSFX)

/* Write the (at most k) entries of a heap, best first, padding with -1/-inf. */
static void SC_NAME3(sc_topk_emit, ISFX, VSFX)(sc_cand *heap, int64_t len, int64_t k,
                                                int64_t *oi, VAL *ov)
{
    for (int64_t c = len; c < k; c++) {
        oi[c] = -1;
        ov[c] = (VAL)(-INFINITY);
    }
    while (len > 0) { /* pop the worst first */
        len--;
        oi[len] = heap[0].i;
        ov[len] = (VAL)heap[0].v;
        heap[0] = heap[len];
        sc_sift_down(heap, len, 0);
    }
}

/* One row of C = A @ B: acc is a workspace of n values, mark and excl of n
 * stamps (initially -1), touched of n columns, heap of cap candidates. */
static void SC_TK_ROW(int64_t r, int64_t n, int64_t k, int64_t cap,
                      const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj,
                      const VAL *SC_RESTRICT Ax, const IDX *SC_RESTRICT Bp,
                      const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
                      const IDX *SC_RESTRICT Ep, const IDX *SC_RESTRICT Ej,
                      VAL *SC_RESTRICT acc, int64_t *SC_RESTRICT mark,
                      int64_t *SC_RESTRICT excl, int64_t *SC_RESTRICT touched,
                      sc_cand *SC_RESTRICT heap, double *SC_RESTRICT maxima,
                      int64_t *oi, VAL *ov)
{
    int64_t len = 0, nb = 0, flops = 0;
    double bar = -INFINITY;
    for (IDX p = Ap[r]; p < Ap[r + 1]; p++) flops += (int64_t)(Bp[Aj[p] + 1] - Bp[Aj[p]]);
    if (Ep)
        for (IDX e = Ep[r]; e < Ep[r + 1]; e++) excl[Ej[e]] = r;
    if (flops * SC_TOPK_DENSE_DIV >= n) {
        /* a row touching many columns: a dense accumulator over all of them */
        memset(acc, 0, (size_t)n * sizeof(VAL));
        for (IDX p = Ap[r]; p < Ap[r + 1]; p++) {
            const VAL a = Ax[p];
            const IDX j = Aj[p];
            for (IDX q = Bp[j]; q < Bp[j + 1]; q++) acc[Bj[q]] += a * Bx[q];
        }
        if (Ep)
            for (IDX e = Ep[r]; e < Ep[r + 1]; e++) acc[Ej[e]] = (VAL)(-INFINITY);
        /* a bar no higher than the k-th best (see sc_topk_chunks): only
         * entries clearing it are selected from */
        const int64_t nc = sc_topk_chunks(n, k), chunk = n / nc;
        for (int64_t c = 0; c < nc; c++) {
            const int64_t lo = c * chunk, hi = c == nc - 1 ? n : lo + chunk;
            VAL m0 = (VAL)(-INFINITY), m1 = (VAL)(-INFINITY);
            int64_t i = lo;
            for (; i + 2 <= hi; i += 2) {
                m0 = acc[i] > m0 ? acc[i] : m0;
                m1 = acc[i + 1] > m1 ? acc[i + 1] : m1;
            }
            if (i < hi) m0 = acc[i] > m0 ? acc[i] : m0;
            maxima[c] = m0 > m1 ? m0 : m1;
        }
        bar = sc_kth_largest(maxima, nc, k);
        for (int64_t i = 0; i < n; i++)
            if (!(acc[i] < bar) && excl[i] != r)
                nb = sc_buffer_push(heap, nb, cap, k, acc[i], i, &bar);
        len = sc_heapify(heap, nb, k);
    } else {
        /* a sparse row: scan the touched columns, then implicit zeros */
        int64_t nt = 0;
        for (IDX p = Ap[r]; p < Ap[r + 1]; p++) {
            const VAL a = Ax[p];
            const IDX j = Aj[p];
            for (IDX q = Bp[j]; q < Bp[j + 1]; q++) {
                const int64_t i = (int64_t)Bj[q];
                if (mark[i] != r) {
                    mark[i] = r;
                    acc[i] = 0;
                    touched[nt++] = i;
                }
                acc[i] += a * Bx[q];
            }
        }
        /* touched columns come in any order: ties with the bar may still
         * win on the column, so they are kept for selection */
        for (int64_t t = 0; t < nt; t++) {
            const int64_t i = touched[t];
            if (!(acc[i] < bar) && excl[i] != r)
                nb = sc_buffer_push(heap, nb, cap, k, acc[i], i, &bar);
        }
        len = sc_heapify(heap, nb, k);
        if (len < k || heap[0].v <= 0.0) {
            for (int64_t i = 0; i < n; i++) {
                if (mark[i] == r || excl[i] == r) continue;
                if (!sc_offer(heap, &len, k, 0.0, i)) break;
            }
        }
    }
    SC_NAME3(sc_topk_emit, ISFX, VSFX)(heap, len, k, oi, ov);
}

/* acc[i][0..L) += b * u[0..L) over B's row j: SC_TOPK_LANES rows of C at
 * once, one SIMD multiply-add per column (no fused multiply-add: the sums
 * equal the one-row path's bit for bit). */
SC_TARGET_CLONES
static void SC_TK_SCATTER(const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
                          int64_t q0, int64_t q1, const VAL *SC_RESTRICT u,
                          VAL *SC_RESTRICT acc)
{
#if defined(__GNUC__) || defined(__clang__)
    /* compilers do not reliably turn the lane loop into SIMD code */
    typedef VAL vec __attribute__((vector_size(SC_TOPK_LANES * sizeof(VAL))));
    vec uu;
    memcpy(&uu, u, sizeof uu);
    for (int64_t q = q0; q < q1; q++) {
        VAL *a = acc + (int64_t)Bj[q] * SC_TOPK_LANES;
        vec av;
        memcpy(&av, a, sizeof av);
        av += Bx[q] * uu;
        memcpy(a, &av, sizeof av);
    }
#else
    VAL uu[SC_TOPK_LANES];
    for (int l = 0; l < SC_TOPK_LANES; l++) uu[l] = u[l];
    for (int64_t q = q0; q < q1; q++) {
        VAL *SC_RESTRICT a = acc + (int64_t)Bj[q] * SC_TOPK_LANES;
        const VAL b = Bx[q];
        for (int l = 0; l < SC_TOPK_LANES; l++) a[l] += b * uu[l];
    }
#endif
}

/* Per-lane chunk maxima over acc[n][L] (see sc_topk_chunks): maxima[c][L]. */
SC_TARGET_CLONES
static void SC_TK_SCAN(const VAL *SC_RESTRICT acc, int64_t n, int64_t nc,
                       VAL *SC_RESTRICT maxima)
{
    const int64_t chunk = n / nc;
    for (int64_t c = 0; c < nc; c++) {
        const int64_t lo = c * chunk, hi = c == nc - 1 ? n : lo + chunk;
        VAL m[SC_TOPK_LANES];
        for (int l = 0; l < SC_TOPK_LANES; l++) m[l] = (VAL)(-INFINITY);
        for (int64_t i = lo; i < hi; i++) {
            const VAL *SC_RESTRICT a = acc + i * SC_TOPK_LANES;
            for (int l = 0; l < SC_TOPK_LANES; l++) m[l] = a[l] > m[l] ? a[l] : m[l];
        }
        for (int l = 0; l < SC_TOPK_LANES; l++) maxima[c * SC_TOPK_LANES + l] = m[l];
    }
}

/* Collect, per lane, the columns clearing its bar into its buffer. */
SC_TARGET_CLONES
static void SC_TK_CANDIDATES(const VAL *SC_RESTRICT acc, int64_t n, int64_t k, int64_t cap,
                             int w, const unsigned char *SC_RESTRICT exm,
                             const VAL *SC_RESTRICT vbar, double *SC_RESTRICT bar,
                             int64_t *SC_RESTRICT nb, sc_cand *SC_RESTRICT heaps)
{
#if defined(__GNUC__) || defined(__clang__)
    /* one SIMD comparison per column tells whether any lane has a candidate
     * there (most columns: none) */
    typedef VAL vec __attribute__((vector_size(SC_TOPK_LANES * sizeof(VAL))));
    vec vb;
    memcpy(&vb, vbar, sizeof vb);
    for (int l = w; l < SC_TOPK_LANES; l++) vb[l] = (VAL)INFINITY; /* unused lanes */
    typedef VINT mask __attribute__((vector_size(SC_TOPK_LANES * sizeof(VAL))));
    const mask none = {0};
    for (int64_t i = 0; i < n; i++) {
        vec a;
        memcpy(&a, acc + i * SC_TOPK_LANES, sizeof a);
        const mask pass = a >= vb;
        if (SC_LIKELY(memcmp(&pass, &none, sizeof pass) == 0)) continue;
        const unsigned ex = exm ? exm[i] : 0u;
        for (int l = 0; l < w; l++) {
            if (pass[l] && !((ex >> l) & 1u)) {
                nb[l] = sc_buffer_push(heaps + l * cap, nb[l], cap, k, (double)a[l], i, &bar[l]);
                vb[l] = (VAL)bar[l];
            }
        }
    }
#else
    for (int64_t i = 0; i < n; i++) {
        const VAL *a = acc + i * SC_TOPK_LANES;
        const unsigned ex = exm ? exm[i] : 0u;
        for (int l = 0; l < w; l++) {
            if (!((double)a[l] < bar[l]) && !((ex >> l) & 1u))
                nb[l] = sc_buffer_push(heaps + l * cap, nb[l], cap, k, (double)a[l], i, &bar[l]);
        }
    }
    (void)vbar;
#endif
}

/* Rows r0 .. r0+w-1 (w <= SC_TOPK_LANES) together. ub: d x L values, all 0
 * on entry and exit; dmark: d stamps; dims: d columns; acc: n x L values;
 * exm: n bytes; heaps: L x cap candidates; lane_max: chunks x L values;
 * maxima: chunks doubles. */
static void SC_TK_BLOCK(int64_t r0, int w, int64_t n, int64_t k, int64_t cap,
                        const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj,
                        const VAL *SC_RESTRICT Ax, const IDX *SC_RESTRICT Bp,
                        const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
                        const IDX *SC_RESTRICT Ep, const IDX *SC_RESTRICT Ej,
                        VAL *SC_RESTRICT ub, int64_t *SC_RESTRICT dmark,
                        int64_t *SC_RESTRICT dims, VAL *SC_RESTRICT acc,
                        unsigned char *SC_RESTRICT exm, sc_cand *SC_RESTRICT heaps,
                        VAL *SC_RESTRICT lane_max, double *SC_RESTRICT maxima,
                        int64_t *out_idx, VAL *out_val)
{
    const int L = SC_TOPK_LANES;
    int64_t nd = 0;
    for (int l = 0; l < w; l++) {
        const int64_t r = r0 + l;
        for (IDX p = Ap[r]; p < Ap[r + 1]; p++) {
            const int64_t j = (int64_t)Aj[p];
            ub[j * L + l] = Ax[p];
            if (dmark[j] != r0) {
                dmark[j] = r0;
                dims[nd++] = j;
            }
        }
    }
    /* columns of A in ascending order: each lane sums in its row's order */
    sc_sort_i64(dims, nd);
    memset(acc, 0, (size_t)n * L * sizeof(VAL));
    for (int64_t t = 0; t < nd; t++) {
        const int64_t j = dims[t];
        SC_TK_SCATTER(Bj, Bx, (int64_t)Bp[j], (int64_t)Bp[j + 1], ub + j * L, acc);
        for (int l = 0; l < L; l++) ub[j * L + l] = 0;
    }
    if (Ep) {
        memset(exm, 0, (size_t)n);
        for (int l = 0; l < w; l++)
            for (IDX e = Ep[r0 + l]; e < Ep[r0 + l + 1]; e++) {
                acc[(int64_t)Ej[e] * L + l] = (VAL)(-INFINITY);
                exm[Ej[e]] |= (unsigned char)(1u << l);
            }
    }
    const int64_t nc = sc_topk_chunks(n, k);
    SC_TK_SCAN(acc, n, nc, lane_max);
    VAL vbar[SC_TOPK_LANES];
    double bar[SC_TOPK_LANES];
    int64_t nb[SC_TOPK_LANES];
    for (int l = 0; l < L; l++) {
        for (int64_t c = 0; c < nc; c++) maxima[c] = (double)lane_max[c * L + l];
        bar[l] = sc_kth_largest(maxima, nc, k);
        vbar[l] = (VAL)bar[l];
        nb[l] = 0;
    }
    SC_TK_CANDIDATES(acc, n, k, cap, w, Ep ? exm : NULL, vbar, bar, nb, heaps);
    for (int l = 0; l < w; l++) {
        sc_cand *heap = heaps + l * cap;
        const int64_t len = sc_heapify(heap, nb[l], k);
        SC_NAME3(sc_topk_emit, ISFX, VSFX)(heap, len, k, out_idx + (r0 + l) * k,
                                            out_val + (r0 + l) * k);
    }
}

static int SC_TK_FN(int64_t m, int64_t d, int64_t n, int64_t k, int blocked,
                    const void *Ap_, const void *Aj_, const void *Ax_,
                    const void *Bp_, const void *Bj_, const void *Bx_,
                    const void *Ep_, const void *Ej_,
                    int n_threads, int64_t *SC_RESTRICT out_idx, void *out_val_)
{
    const IDX *Ap = Ap_, *Aj = Aj_, *Bp = Bp_, *Bj = Bj_, *Ep = Ep_, *Ej = Ej_;
    const VAL *Ax = Ax_, *Bx = Bx_;
    VAL *out_val = out_val_;
    const int64_t cap = k + (k > 64 ? k : 64);
    const int L = SC_TOPK_LANES;
    int failed = 0;
    (void)n_threads;

#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads) reduction(|| : failed)
#endif
    {
        const size_t nn = (size_t)(n > 0 ? n : 1), dd = (size_t)(d > 0 ? d : 1);
        VAL *acc = malloc(nn * (blocked ? L : 1) * sizeof(VAL));
        sc_cand *heap = malloc((size_t)cap * (blocked ? L : 1) * sizeof(sc_cand));
        const int64_t nch = sc_topk_chunks(n > 0 ? n : 1, k);
        double *maxima = malloc((size_t)nch * sizeof(double));
        int64_t *mark = NULL, *excl = NULL, *touched = NULL, *dmark = NULL, *dims = NULL;
        VAL *ub = NULL, *lane_max = NULL;
        unsigned char *exm = NULL;
        if (blocked) {
            ub = calloc(dd * L, sizeof(VAL));
            dmark = malloc(dd * sizeof(int64_t));
            dims = malloc(dd * sizeof(int64_t));
            exm = malloc(nn);
            lane_max = malloc((size_t)nch * L * sizeof(VAL));
        } else {
            mark = malloc(nn * sizeof(int64_t));
            excl = malloc(nn * sizeof(int64_t));
            touched = malloc(nn * sizeof(int64_t));
        }
        int ok = acc && heap && maxima
                 && (blocked ? (ub && dmark && dims && exm && lane_max) : (mark && excl && touched));
        if (!ok) failed = 1;
        if (ok && blocked)
            for (int64_t j = 0; j < d; j++) dmark[j] = -1;
        if (ok && !blocked)
            for (int64_t i = 0; i < n; i++) mark[i] = excl[i] = -1;
        if (blocked) {
            const int64_t nblocks = (m + L - 1) / L;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 2)
#endif
            for (int64_t b = 0; b < nblocks; b++) {
                if (!ok) continue;
                const int64_t r0 = b * L;
                const int w = (int)(m - r0 < L ? m - r0 : L);
                SC_TK_BLOCK(r0, w, n, k, cap, Ap, Aj, Ax, Bp, Bj, Bx, Ep, Ej, ub, dmark,
                            dims, acc, exm, heap, lane_max, maxima, out_idx, out_val);
            }
        } else {
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 16)
#endif
            for (int64_t r = 0; r < m; r++) {
                if (!ok) continue;
                SC_TK_ROW(r, n, k, cap, Ap, Aj, Ax, Bp, Bj, Bx, Ep, Ej, acc, mark, excl,
                          touched, heap, maxima, out_idx + r * k, out_val + r * k);
            }
        }
        free(acc);
        free(heap);
        free(mark);
        free(excl);
        free(touched);
        free(ub);
        free(dmark);
        free(dims);
        free(exm);
        free(lane_max);
        free(maxima);
    }
    return failed ? SC_ERR_NOMEM : SC_OK;
}

#undef SC_TK_FN
#undef SC_TK_ROW
#undef SC_TK_BLOCK
#undef SC_TK_SCATTER
#undef SC_TK_SCAN
#undef SC_TK_CANDIDATES
