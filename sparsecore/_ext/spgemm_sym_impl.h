/*
 * Template over the index type: structure checks, flop counts and the
 * symbolic pass. Define IDX (int32_t or int64_t) and ISFX (i32 or i64).
 */

static int SC_NAME2(csr_check, ISFX)(int64_t m, int64_t n, int64_t nnz,
                               const IDX *Ap, const IDX *Aj, int nt, int64_t *where,
                               int *sorted)
{
    if (m >= 0 && Ap[0] != 0) return 1;
    int64_t bad_row = INT64_MAX;
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static) reduction(min:bad_row)
    for (int64_t i = 0; i < m; i++) {
        if (Ap[i + 1] < Ap[i] && i < bad_row) bad_row = i;
    }
    if (bad_row != INT64_MAX) { *where = bad_row; return 2; }
    if ((int64_t)Ap[m] > nnz) return 3;
    /* the first bad index (lowest position), whatever the thread count */
    int64_t bad_pos = INT64_MAX;
    int ordered = 1;
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static) \
        reduction(min:bad_pos) reduction(&&:ordered)
    for (int64_t i = 0; i < m; i++) {
        const IDX p1 = Ap[i + 1];
        int64_t prev = -1;
        int row_ordered = 1;
        for (IDX p = Ap[i]; p < p1; p++) {
            const int64_t j = (int64_t)Aj[p];
            /* one unsigned comparison covers both bounds */
            if ((uint64_t)j >= (uint64_t)n && (int64_t)p < bad_pos) bad_pos = p;
            row_ordered &= (j > prev);
            prev = j;
        }
        ordered = ordered && row_ordered;
    }
    if (bad_pos != INT64_MAX) { *where = bad_pos; return 4; }
    *sorted = ordered;
    return SC_OK;
}

static int64_t SC_NAME2(spgemm_flops, ISFX)(int64_t m, const IDX *Ap, const IDX *Aj,
                                      const IDX *Bp, int nt, int64_t *fp,
                                      int64_t *lower)
{
    int64_t lb = 0;
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static) reduction(+:lb)
    for (int64_t i = 0; i < m; i++) {
        int64_t f = 0, longest = 0;
        for (IDX a = Ap[i]; a < Ap[i + 1]; a++) {
            IDX k = Aj[a];
            int64_t len = (int64_t)(Bp[k + 1] - Bp[k]);
            f += len;
            if (len > longest) longest = len;
        }
        fp[i + 1] = f;
        lb += longest;
    }
    fp[0] = 0;
    for (int64_t i = 0; i < m; i++) fp[i + 1] += fp[i];
    *lower = lb;
    return fp[m];
}

/* Distinct columns among at most SC_TINY_MAX products: each column counts
 * once, at its first occurrence. */
SC_INLINE int64_t SC_NAME2(sym_row_tiny, ISFX)(
    IDX a0, IDX a1, const IDX *SC_RESTRICT Aj, const IDX *SC_RESTRICT Bp,
    const IDX *SC_RESTRICT Bj)
{
    IDX keys[SC_TINY_MAX];
    int64_t f = 0;
    for (IDX a = a0; a < a1; a++) {
        const IDX k = Aj[a];
        for (IDX b = Bp[k]; b < Bp[k + 1]; b++) keys[f++] = Bj[b];
    }
    int64_t count = 0;
    for (int64_t q = 0; q < f; q++) {
        int seen = 0;
        for (int64_t r = 0; r < q; r++) seen |= (keys[r] == keys[q]);
        count += !seen;
    }
    return count;
}

/* Distinct columns with a marker array: marks[j - base] == stamp once row
 * `stamp` has column j. Stamps are row numbers, so no clearing is needed. */
SC_INLINE int64_t SC_NAME2(sym_row_marks, ISFX)(
    IDX a0, IDX a1, IDX a_lim, const IDX *SC_RESTRICT Aj, const IDX *SC_RESTRICT Bp,
    const IDX *SC_RESTRICT Bj, IDX stamp, IDX *SC_RESTRICT marks, int64_t base)
{
    int64_t count = 0;
    for (IDX a = a0; a < a1; a++) {
        if (a + SC_AHEAD < a_lim) SC_PREFETCH(Bj + Bp[Aj[a + SC_AHEAD]]);
        const IDX k = Aj[a];
        const IDX b1 = Bp[k + 1];
        for (IDX b = Bp[k]; b < b1; b++) {
            const int64_t j = (int64_t)Bj[b] - base;
            if (marks[j] != stamp) { marks[j] = stamp; count++; }
        }
    }
    return count;
}

/* Distinct columns with a hash set of 2**bits slots (left empty). */
SC_INLINE int64_t SC_NAME2(sym_row_hash, ISFX)(
    IDX a0, IDX a1, IDX a_lim, const IDX *SC_RESTRICT Aj, const IDX *SC_RESTRICT Bp,
    const IDX *SC_RESTRICT Bj, IDX *SC_RESTRICT table, int bits)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    int64_t count = 0;
    for (IDX a = a0; a < a1; a++) {
        if (a + SC_AHEAD < a_lim) SC_PREFETCH(Bj + Bp[Aj[a + SC_AHEAD]]);
        const IDX k = Aj[a];
        const IDX b1 = Bp[k + 1];
        for (IDX b = Bp[k]; b < b1; b++) {
            const IDX j = Bj[b];
            uint64_t h = sc_hash(j, bits);
            for (;;) {
                if (table[h] == j) break;
                if (table[h] == SC_EMPTY) { table[h] = j; count++; break; }
                h = (h + 1) & mask;
            }
        }
    }
    memset(table, 0xff, (size_t)(mask + 1) * sizeof(IDX));
    return count;
}

/* A marker array of `len` entries, all "never stamped" (-1). */
SC_INLINE IDX *SC_NAME2(new_marks, ISFX)(int64_t len)
{
    IDX *marks = (IDX *)malloc((size_t)len * sizeof(IDX));
    if (marks != NULL) memset(marks, 0xff, (size_t)len * sizeof(IDX));
    return marks;
}

/* One thread's counting workspaces, allocated on first use. */
typedef struct {
    IDX *win_marks;   /* marks over a window of the row's columns */
    IDX *all_marks;   /* marks over all n columns (dense rows) */
    IDX *table;       /* hash set: keys, SC_EMPTY when free */
    int64_t table_size;
} SC_NAME2(sym_workspace, ISFX);

static void SC_NAME2(sym_workspace_free, ISFX)(SC_NAME2(sym_workspace, ISFX) *ws)
{
    free(ws->win_marks);
    free(ws->all_marks);
    free(ws->table);
}

/* Distinct columns of row i (the same accumulator choice as the numeric
 * pass), or -1 when a workspace cannot be allocated. */
SC_INLINE int64_t SC_NAME2(sym_row, ISFX)(
    SC_NAME2(sym_workspace, ISFX) *ws, int64_t i, IDX a_lim,
    const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj,
    int b_sorted, int64_t n, int64_t window)
{
    const IDX a0 = Ap[i], a1 = Ap[i + 1];
    if (a1 - a0 == 1 && b_sorted) {
        const IDX k = Aj[a0];
        return (int64_t)(Bp[k + 1] - Bp[k]);
    }
    int64_t lo, hi;
    const int64_t flops = SC_NAME2(row_span, ISFX)(a0, a1, Aj, Bp, Bj, b_sorted, n, &lo, &hi);
    if (flops <= 1) return flops;
    if (flops <= SC_TINY_MAX) return SC_NAME2(sym_row_tiny, ISFX)(a0, a1, Aj, Bp, Bj);
    if (hi - lo < window) {
        if (ws->win_marks == NULL && (ws->win_marks = SC_NAME2(new_marks, ISFX)(window)) == NULL)
            return -1;
        return SC_NAME2(sym_row_marks, ISFX)(a0, a1, a_lim, Aj, Bp, Bj, (IDX)i, ws->win_marks, lo);
    }
    if (flops * 16 > n) {
        if (ws->all_marks == NULL && (ws->all_marks = SC_NAME2(new_marks, ISFX)(n)) == NULL)
            return -1;
        return SC_NAME2(sym_row_marks, ISFX)(a0, a1, a_lim, Aj, Bp, Bj, (IDX)i, ws->all_marks, 0);
    }
    const int bits = sc_table_bits(flops);
    const int64_t size = (int64_t)1 << bits;
    if (size > ws->table_size) {
        free(ws->table);
        ws->table = SC_NAME2(new_marks, ISFX)(size);
        ws->table_size = ws->table ? size : 0;
        if (ws->table == NULL) return -1;
    }
    return SC_NAME2(sym_row_hash, ISFX)(a0, a1, a_lim, Aj, Bp, Bj, ws->table, bits);
}

static int SC_NAME2(spgemm_symbolic, ISFX)(int64_t m, int64_t n,
                                     const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj,
                                     const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj,
                                     int b_sorted, int prefetch, int ntasks,
                                     const int64_t *bounds, int nt, int64_t *SC_RESTRICT Cs)
{
    int status = SC_OK;
    const int64_t window = n < SC_SYM_WINDOW ? n : SC_SYM_WINDOW;
    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        SC_NAME2(sym_workspace, ISFX) ws = {0};
        int failed = 0;

        #pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < ntasks; t++) {
            if (failed) continue;
            /* prefetching B rows pays only when B does not sit in cache */
            const IDX a_lim = prefetch ? Ap[bounds[t + 1]] : 0;
            for (int64_t i = bounds[t]; i < bounds[t + 1]; i++) {
                if (SC_POLL(&poll, i)) { failed = 2; break; }
                const int64_t count = SC_NAME2(sym_row, ISFX)(&ws, i, a_lim, Ap, Aj, Bp, Bj,
                                                        b_sorted, n, window);
                if (count < 0) { failed = 1; break; }
                Cs[i + 1] = count;
            }
        }
        SC_NAME2(sym_workspace_free, ISFX)(&ws);
        if (failed) {
            #pragma omp critical(sc_spgemm_status)
            if (status == SC_OK) status = failed == 2 ? SC_ERR_INTERRUPTED : SC_ERR_NOMEM;
        }
    }
    if (status != SC_OK) return status;
    Cs[0] = 0;
    for (int64_t i = 0; i < m; i++) Cs[i + 1] += Cs[i];
    return SC_OK;
}

/* Structural nnz of the rows in each [ranges[2r], ranges[2r + 1]), one
 * thread: a cheap sample to estimate how much the rows compress. */
static int SC_NAME2(spgemm_count_ranges, ISFX)(int64_t n,
                                         const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj,
                                         const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj,
                                         int b_sorted, int nranges, const int64_t *ranges,
                                         int64_t *counts)
{
    const int64_t window = n < SC_SYM_WINDOW ? n : SC_SYM_WINDOW;
    SC_NAME2(sym_workspace, ISFX) ws = {0};
    int status = SC_OK;
    for (int r = 0; r < nranges && status == SC_OK; r++) {
        int64_t total = 0;
        for (int64_t i = ranges[2 * r]; i < ranges[2 * r + 1]; i++) {
            const int64_t count = SC_NAME2(sym_row, ISFX)(&ws, i, 0, Ap, Aj, Bp, Bj, b_sorted, n, window);
            if (count < 0) { status = SC_ERR_NOMEM; break; }
            total += count;
        }
        counts[r] = total;
    }
    SC_NAME2(sym_workspace_free, ISFX)(&ws);
    return status;
}

#undef FN
