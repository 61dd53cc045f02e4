/*
 * topk_impl.h -- one (index type, value type) instance of the top-k kernel;
 * included by topk.c with IDX/ISFX and VAL/VSFX defined.
 */
#define SC_TK_CAT_(a, b, c) a##_##b##_##c
#define SC_TK_CAT(a, b, c) SC_TK_CAT_(a, b, c)
#define SC_TK_FN SC_TK_CAT(sc_topk, ISFX, VSFX)

static int SC_TK_FN(int64_t m, int64_t n, int64_t k,
                    const void *Ap_, const void *Aj_, const void *Ax_,
                    const void *Bp_, const void *Bj_, const void *Bx_,
                    const void *Ep_, const void *Ej_,
                    int n_threads, int64_t *SC_RESTRICT out_idx, void *out_val_)
{
    const IDX *SC_RESTRICT Ap = Ap_;
    const IDX *SC_RESTRICT Aj = Aj_;
    const VAL *SC_RESTRICT Ax = Ax_;
    const IDX *SC_RESTRICT Bp = Bp_;
    const IDX *SC_RESTRICT Bj = Bj_;
    const VAL *SC_RESTRICT Bx = Bx_;
    const IDX *SC_RESTRICT Ep = Ep_;
    const IDX *SC_RESTRICT Ej = Ej_;
    VAL *SC_RESTRICT out_val = out_val_;
    int failed = 0;

#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads) reduction(|| : failed)
#endif
    {
        double *acc = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
        int64_t *mark = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
        int64_t *excl = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
        int64_t *touched = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
        const int64_t cap = k + (k > 64 ? k : 64);
        sc_cand *heap = malloc((size_t)cap * sizeof(sc_cand));
        int ok = acc && mark && excl && touched && heap;
        if (!ok) failed = 1;
        if (ok) {
            for (int64_t i = 0; i < n; i++) {
                mark[i] = -1;
                excl[i] = -1;
            }
        }
        (void)n_threads;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 16)
#endif
        for (int64_t r = 0; r < m; r++) {
            if (!ok) continue;
            int64_t len = 0;
            int64_t flops = 0;
            for (IDX p = Ap[r]; p < Ap[r + 1]; p++) flops += (int64_t)(Bp[Aj[p] + 1] - Bp[Aj[p]]);
            if (Ep)
                for (IDX e = Ep[r]; e < Ep[r + 1]; e++) excl[Ej[e]] = r;
            int64_t nb = 0;
            double bar = -INFINITY;
            if (flops * SC_TOPK_DENSE_DIV >= n) {
                /* dense row: every column is a candidate */
                memset(acc, 0, (size_t)n * sizeof(double));
                for (IDX p = Ap[r]; p < Ap[r + 1]; p++) {
                    const double a = (double)Ax[p];
                    const IDX j = Aj[p];
                    for (IDX q = Bp[j]; q < Bp[j + 1]; q++) acc[Bj[q]] += a * (double)Bx[q];
                }
                if (Ep)
                    for (IDX e = Ep[r]; e < Ep[r + 1]; e++) acc[Ej[e]] = -INFINITY;
                /* A bar no higher than the k-th best: the smallest of the
                 * maxima of k disjoint chunks of the row (each chunk holds an
                 * entry at least that large). Only entries clearing it are
                 * selected from, a few per cent of the row. */
                const int64_t chunk = n / k;
                for (int64_t c = 0; c < k; c++) {
                    const int64_t lo = c * chunk, hi = c == k - 1 ? n : lo + chunk;
                    double m0 = -INFINITY, m1 = -INFINITY;
                    int64_t i = lo;
                    for (; i + 2 <= hi; i += 2) {
                        m0 = acc[i] > m0 ? acc[i] : m0;
                        m1 = acc[i + 1] > m1 ? acc[i + 1] : m1;
                    }
                    if (i < hi) m0 = acc[i] > m0 ? acc[i] : m0;
                    const double mc = m0 > m1 ? m0 : m1;
                    if (c == 0 || mc < bar) bar = mc;
                }
                int64_t i = 0;
                for (; i + 8 <= n; i += 8) {
                    int any = 0;
                    for (int t = 0; t < 8; t++) any |= !(acc[i + t] < bar);
                    if (SC_LIKELY(!any)) continue;
                    for (int t = 0; t < 8; t++)
                        if (!(acc[i + t] < bar) && excl[i + t] != r)
                            nb = sc_buffer_push(heap, nb, cap, k, acc[i + t], i + t, &bar);
                }
                for (; i < n; i++)
                    if (!(acc[i] < bar) && excl[i] != r)
                        nb = sc_buffer_push(heap, nb, cap, k, acc[i], i, &bar);
                len = sc_heapify(heap, nb, k);
            } else {
                /* sparse row: scan the touched columns, then implicit zeros */
                int64_t nt = 0;
                for (IDX p = Ap[r]; p < Ap[r + 1]; p++) {
                    const double a = (double)Ax[p];
                    const IDX j = Aj[p];
                    for (IDX q = Bp[j]; q < Bp[j + 1]; q++) {
                        const int64_t i = (int64_t)Bj[q];
                        if (mark[i] != r) {
                            mark[i] = r;
                            acc[i] = 0.0;
                            touched[nt++] = i;
                        }
                        acc[i] += a * (double)Bx[q];
                    }
                }
                /* touched columns come in any order: ties with the bar may
                 * still win on the column, so they are kept for selection */
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
            /* pop the worst first: the heap comes out in reverse rank order */
            int64_t *oi = out_idx + r * k;
            VAL *ov = out_val + r * k;
            for (int64_t c = len; c < k; c++) {
                oi[c] = -1;
                ov[c] = (VAL)(-INFINITY);
            }
            while (len > 0) {
                len--;
                oi[len] = heap[0].i;
                ov[len] = (VAL)heap[0].v;
                heap[0] = heap[len];
                sc_sift_down(heap, len, 0);
            }
        }
        free(acc);
        free(mark);
        free(excl);
        free(touched);
        free(heap);
    }
    return failed ? SC_ERR_NOMEM : SC_OK;
}

#undef SC_TK_FN
#undef SC_TK_CAT
#undef SC_TK_CAT_
