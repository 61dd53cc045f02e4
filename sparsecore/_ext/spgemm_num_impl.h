/*
 * Template: the numeric pass of C = A @ B.
 * Define IDX/ISFX (input index type), OUT/OSFX (output index type),
 * VAL/VSFX (value type), V_MUL(a, b), V_ADD(a, b), V_IS_ZERO(v) (and
 * V_KEEP_ZEROS to keep entries whatever their value), and
 * OUT_SORT / OUT_INSERTION_SORT_PAIRS (sorts for OUT keys).
 *
 * Each output row picks one of these paths (spgemm.c gives the rules):
 *   copy   one A entry and a sorted B row: a scaled copy, already in order;
 *   tiny   a few products: linear search and insertion sort in the slot;
 *   dense  an accumulator over a window of columns (or all n), read back in
 *          order through a two-level bitmap of the columns it holds;
 *   ordered hash  an open-addressing table whose slot is monotone in the
 *          column, so reading the table front to back yields the columns
 *          almost sorted and an insertion sort finishes the job;
 *   hash   a scrambling hash, then a sort of the keys and a re-probe for the
 *          values (the fallback when the columns crowd into a few slots).
 * A row's path depends only on the row, never on the thread.
 */
#define NUM(name) SC_NAME4(name, ISFX, OSFX, VSFX)

/* Remove entries whose sum is exactly zero (as scipy does); return the
 * number kept. Cancellation is rare, so the branch predicts well. */
SC_INLINE int64_t NUM(drop_zeros)(int64_t cnt, OUT *SC_RESTRICT oj, VAL *SC_RESTRICT ox)
{
#ifdef V_KEEP_ZEROS
    /* semirings other than plus-times keep every structural entry */
    (void)oj;
    (void)ox;
    return cnt;
#else
    int64_t w = 0;
    for (int64_t q = 0; q < cnt; q++) {
        if (!V_IS_ZERO(ox[q])) {
            oj[w] = oj[q];
            ox[w] = ox[q];
            w++;
        }
    }
    return w;
#endif
}

/* A row of at most SC_TINY_MAX multiplies: accumulate by linear search in
 * the output slot itself, then an insertion sort; no workspace touched. */
SC_INLINE int64_t NUM(row_tiny)(
    IDX a0, IDX a1, const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
    OUT *SC_RESTRICT oj, VAL *SC_RESTRICT ox)
{
    int64_t len = 0;
    for (IDX a = a0; a < a1; a++) {
        const IDX k = Aj[a];
        const VAL av = Ax[a];
        for (IDX b = Bp[k]; b < Bp[k + 1]; b++) {
            const OUT j = (OUT)Bj[b];
            const VAL p = V_MUL(av, Bx[b]);
            int64_t q = 0;
            while (q < len && oj[q] != j) q++;
            if (q < len) {
                ox[q] = V_ADD(ox[q], p);
            } else {
                oj[len] = j;
                ox[len] = p;
                len++;
            }
        }
    }
    for (int64_t q = 1; q < len; q++) {
        const OUT j = oj[q];
        const VAL v = ox[q];
        int64_t r = q;
        while (r > 0 && oj[r - 1] > j) {
            oj[r] = oj[r - 1];
            ox[r] = ox[r - 1];
            r--;
        }
        oj[r] = j;
        ox[r] = v;
    }
    return NUM(drop_zeros)(len, oj, ox);
}

/* Dense accumulator over columns base, base + 1, ...: dense[j - base] holds
 * the sum of column j while bit j - base of `bits` is set, and bit w of
 * `summary` marks the 64-column words of `bits` that have a bit set. Read
 * back in column order by walking the summary, then the marked words, so
 * the cost is one step per 4096 columns of the row's range plus one per
 * entry found: no sort, however wide the range (a byte flag per column,
 * walked eight at a time, cost a cycle or two per eight columns and lost to
 * scipy's unsorted readback on rows with a few dozen entries in a range of
 * thousands of columns). Leaves `bits` and `summary` all zero. */
SC_INLINE int64_t NUM(row_dense)(
    IDX a0, IDX a1, IDX a_lim, const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
    uint64_t *SC_RESTRICT bits, uint64_t *SC_RESTRICT summary, VAL *SC_RESTRICT dense,
    int64_t base, int64_t lo, int64_t hi, OUT *SC_RESTRICT oj, VAL *SC_RESTRICT ox)
{
    int64_t len = 0;
    for (IDX a = a0; a < a1; a++) {
        if (a + SC_AHEAD < a_lim) {
            const IDX bn = Bp[Aj[a + SC_AHEAD]];
            SC_PREFETCH(Bj + bn);
            SC_PREFETCH(Bx + bn);
        }
        const IDX k = Aj[a];
        const VAL av = Ax[a];
        const IDX b1 = Bp[k + 1];
        for (IDX b = Bp[k]; b < b1; b++) {
            const int64_t j = (int64_t)Bj[b] - base;
            const VAL p = V_MUL(av, Bx[b]);
            const uint64_t bit = (uint64_t)1 << (j & 63);
            const uint64_t word = bits[j >> 6];
            if (word & bit) {
                dense[j] = V_ADD(dense[j], p);
            } else {
                bits[j >> 6] = word | bit;
                summary[j >> 12] |= (uint64_t)1 << ((j >> 6) & 63);
                dense[j] = p;
                len++;
            }
        }
    }
    /* exact zeros are dropped on the way (branch-free: cancellation is rare
     * but unpredictable) */
    int64_t found = 0, w = 0;
    for (int64_t s = (lo - base) >> 12; found < len && s <= (hi - base) >> 12; s++) {
        uint64_t sw = summary[s];
        summary[s] = 0;
        while (sw) {
            const int64_t wi = (s << 6) + sc_ctz64(sw);
            sw &= sw - 1;
            uint64_t word = bits[wi];
            bits[wi] = 0;
            while (word) {
                const int64_t j = (wi << 6) + sc_ctz64(word);
                word &= word - 1;
                const VAL v = dense[j];
                oj[w] = (OUT)(j + base);
                ox[w] = v;
                w += !V_IS_ZERO(v);
                found++;
            }
        }
    }
    return w;
}

/* Ordered hash: slot(j) = floor((j - lo) * size / (hi - lo + 1)) with linear
 * probing that never wraps (the table has `size` spare slots past the end).
 * Returns the kept entries, or -1 (table left clean) when probing ran long
 * because the columns crowd together; the caller then uses row_hash. */
SC_INLINE int64_t NUM(row_ordered)(
    IDX a0, IDX a1, IDX a_lim, const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
    IDX *SC_RESTRICT keys, VAL *SC_RESTRICT vals, int bits,
    int64_t cnt, int64_t flops, int64_t lo, int64_t hi,
    OUT *SC_RESTRICT oj, VAL *SC_RESTRICT ox)
{
    const uint64_t size = (uint64_t)1 << bits;
    const uint64_t mult = (size << 32) / (uint64_t)(hi - lo + 1);
    int64_t probes = 0, last = 0, row_len = 0;
    const int64_t budget = 4 * flops + 64;
    for (IDX a = a0; a < a1; a++) {
        if (a + SC_AHEAD < a_lim) {
            const IDX bn = Bp[Aj[a + SC_AHEAD]];
            SC_PREFETCH(Bj + bn);
            SC_PREFETCH(Bx + bn);
        }
        const IDX k = Aj[a];
        const VAL av = Ax[a];
        const IDX b1 = Bp[k + 1];
        for (IDX b = Bp[k]; b < b1; b++) {
            const IDX j = Bj[b];
            const VAL p = V_MUL(av, Bx[b]);
            uint64_t h = ((uint64_t)(j - lo) * mult) >> 32;
            for (;;) {
                if (keys[h] == j) { vals[h] = V_ADD(vals[h], p); break; }
                if (keys[h] == SC_EMPTY) {
                    keys[h] = j;
                    vals[h] = p;
                    row_len++;
                    if ((int64_t)h > last) last = (int64_t)h;
                    break;
                }
                h++;
                probes++;
            }
        }
        if (probes > budget) {
            for (int64_t s = 0; s <= last; s++) keys[s] = SC_EMPTY;
            return -1;
        }
    }
    /* Read the table front to back, branch-free (occupancy is random), up
     * to the row's cnt-th column, clearing as we go; then an insertion sort
     * fixes the few keys that probing pushed past a larger neighbour. */
    int64_t len = 0, s = 0;
    for (; len < row_len; s++) {
        const IDX j = keys[s];
        oj[len] = (OUT)j;
        ox[len] = vals[s];
        keys[s] = SC_EMPTY;
        len += (j != SC_EMPTY);
    }
    for (int64_t q = 1; q < row_len; q++) {
        const OUT j = oj[q];
        if (oj[q - 1] > j) {
            const VAL v = ox[q];
            int64_t r = q;
            do {
                oj[r] = oj[r - 1];
                ox[r] = ox[r - 1];
                r--;
            } while (r > 0 && oj[r - 1] > j);
            oj[r] = j;
            ox[r] = v;
        }
    }
    (void)cnt;
    return NUM(drop_zeros)(row_len, oj, ox);
}

/* Scrambling hash, then sort the keys and re-probe for the values. */
SC_INLINE int64_t NUM(row_hash)(
    IDX a0, IDX a1, IDX a_lim, const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
    IDX *SC_RESTRICT keys, VAL *SC_RESTRICT vals, int bits,
    int64_t cnt, OUT *SC_RESTRICT oj, VAL *SC_RESTRICT ox)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    int64_t len = 0;
    for (IDX a = a0; a < a1; a++) {
        if (a + SC_AHEAD < a_lim) {
            const IDX bn = Bp[Aj[a + SC_AHEAD]];
            SC_PREFETCH(Bj + bn);
            SC_PREFETCH(Bx + bn);
        }
        const IDX k = Aj[a];
        const VAL av = Ax[a];
        const IDX b1 = Bp[k + 1];
        for (IDX b = Bp[k]; b < b1; b++) {
            const IDX j = Bj[b];
            const VAL p = V_MUL(av, Bx[b]);
            uint64_t h = sc_hash(j, bits);
            for (;;) {
                if (keys[h] == j) { vals[h] = V_ADD(vals[h], p); break; }
                if (keys[h] == SC_EMPTY) {
                    keys[h] = j; vals[h] = p; oj[len++] = (OUT)j;
                    break;
                }
                h = (h + 1) & mask;
            }
        }
    }
    OUT_SORT(oj, len);
    for (int64_t q = 0; q < len; q++) {
        const IDX j = (IDX)oj[q];
        uint64_t h = sc_hash(j, bits);
        while (keys[h] != j) h = (h + 1) & mask;
        ox[q] = vals[h];
    }
    memset(keys, 0xff, (size_t)(mask + 1) * sizeof(IDX));
    (void)cnt;
    return NUM(drop_zeros)(len, oj, ox);
}

/* One thread's accumulators, allocated on first use and reused by every row. */
typedef struct {
    uint64_t *win_bits;   /* dense accumulator over a window of columns */
    uint64_t *win_summary;
    VAL *win_dense;
    uint64_t *all_bits;   /* dense accumulator over all n columns */
    uint64_t *all_summary;
    VAL *all_dense;
    IDX *keys;            /* hash tables: 2 * size slots (the ordered hash) */
    VAL *vals;
    int64_t capacity;
} NUM(workspace);

static void NUM(workspace_free)(NUM(workspace) *ws)
{
    free(ws->win_bits);
    free(ws->win_summary);
    free(ws->win_dense);
    free(ws->all_bits);
    free(ws->all_summary);
    free(ws->all_dense);
    free(ws->keys);
    free(ws->vals);
}

/* Row i of C into oj/ox, which have room for `cnt` entries (an exact count
 * or an upper bound). Returns the entries kept, or -1 when a workspace
 * cannot be allocated. */
SC_INLINE int64_t NUM(row)(
    NUM(workspace) *ws, IDX a0, IDX a1, IDX a_lim,
    const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
    int b_sorted, int64_t n, int64_t window,
    int64_t cnt, int64_t flops, int64_t lo, int64_t hi,
    OUT *SC_RESTRICT oj, VAL *SC_RESTRICT ox)
{
    if (a1 - a0 == 1 && b_sorted) {
        /* one term: a scaled copy of a sorted B row */
        const IDX k = Aj[a0];
        const VAL av = Ax[a0];
        int64_t w = 0;
        for (IDX b = Bp[k]; b < Bp[k + 1]; b++) {
            const VAL v = V_MUL(av, Bx[b]);
            oj[w] = (OUT)Bj[b];
            ox[w] = v;
            w += !V_IS_ZERO(v);
        }
        return w;
    }
    if (flops <= SC_TINY_MAX)
        return NUM(row_tiny)(a0, a1, Aj, Ax, Bp, Bj, Bx, oj, ox);
    if (hi - lo < window) {
        if (ws->win_bits == NULL) {
            ws->win_bits = (uint64_t *)calloc((size_t)(window >> 6) + 1, sizeof(uint64_t));
            ws->win_summary = (uint64_t *)calloc((size_t)(window >> 12) + 1, sizeof(uint64_t));
            ws->win_dense = (VAL *)malloc((size_t)window * sizeof(VAL));
            if (ws->win_bits == NULL || ws->win_summary == NULL || ws->win_dense == NULL)
                return -1;
        }
        return NUM(row_dense)(a0, a1, a_lim, Aj, Ax, Bp, Bj, Bx, ws->win_bits,
                              ws->win_summary, ws->win_dense, lo, lo, hi, oj, ox);
    }
    if (cnt * 16 > n) {
        if (ws->all_bits == NULL) {
            ws->all_bits = (uint64_t *)calloc((size_t)(n >> 6) + 1, sizeof(uint64_t));
            ws->all_summary = (uint64_t *)calloc((size_t)(n >> 12) + 1, sizeof(uint64_t));
            ws->all_dense = (VAL *)malloc((size_t)n * sizeof(VAL));
            if (ws->all_bits == NULL || ws->all_summary == NULL || ws->all_dense == NULL)
                return -1;
        }
        return NUM(row_dense)(a0, a1, a_lim, Aj, Ax, Bp, Bj, Bx, ws->all_bits,
                              ws->all_summary, ws->all_dense, 0, lo, hi, oj, ox);
    }
    const int bits = sc_table_bits(cnt);
    const int64_t need = (int64_t)2 << bits;
    if (need > ws->capacity) {
        free(ws->keys);
        free(ws->vals);
        ws->keys = (IDX *)malloc((size_t)need * sizeof(IDX));
        ws->vals = (VAL *)malloc((size_t)need * sizeof(VAL));
        ws->capacity = need;
        if (ws->keys == NULL || ws->vals == NULL) {
            ws->capacity = 0;
            return -1;
        }
        memset(ws->keys, 0xff, (size_t)need * sizeof(IDX));
    }
    int64_t w = -1;
    if (b_sorted && cnt > SC_SHORT_ROW)
        w = NUM(row_ordered)(a0, a1, a_lim, Aj, Ax, Bp, Bj, Bx, ws->keys, ws->vals, bits,
                             cnt, flops, lo, hi, oj, ox);
    if (w < 0)
        w = NUM(row_hash)(a0, a1, a_lim, Aj, Ax, Bp, Bj, Bx, ws->keys, ws->vals, bits,
                          cnt, oj, ox);
    return w;
}

/* Numeric pass into exactly sized rows (after the symbolic pass): row i
 * goes to Cj/Cx[Cs[i] : Cs[i + 1]]; rows that lose exact zeros are closed up
 * at the end. */
SC_TARGET_CLONES
static int NUM(spgemm_numeric)(
    int64_t m, int64_t n,
    const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
    int b_sorted, int prefetch, const int64_t *SC_RESTRICT Cs,
    int ntasks, const int64_t *bounds, int nt,
    OUT *SC_RESTRICT Cp, OUT *SC_RESTRICT Cj, VAL *SC_RESTRICT Cx, int64_t *nnz_out)
{
    int status = SC_OK;
    const int64_t window = n < SC_WINDOW ? n : SC_WINDOW;
    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        NUM(workspace) ws = {0};
        int failed = 0;

        #pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < ntasks; t++) {
            if (failed) continue;
            /* prefetching B rows pays only when B does not sit in cache */
            const IDX a_lim = prefetch ? Ap[bounds[t + 1]] : 0;
            for (int64_t i = bounds[t]; i < bounds[t + 1]; i++) {
                if (SC_POLL(&poll, i)) { failed = 2; break; }
                const int64_t cnt = Cs[i + 1] - Cs[i];
                if (cnt == 0) {
                    Cp[i + 1] = 0;
                    continue;
                }
                const IDX a0 = Ap[i], a1 = Ap[i + 1];
                int64_t lo, hi;
                const int64_t flops = SC_NAME2(row_span, ISFX)(a0, a1, Aj, Bp, Bj, b_sorted, n, &lo, &hi);
                const int64_t w = NUM(row)(&ws, a0, a1, a_lim, Aj, Ax, Bp, Bj, Bx, b_sorted,
                                           n, window, cnt, flops, lo, hi,
                                           Cj + Cs[i], Cx + Cs[i]);
                if (w < 0) { failed = 1; break; }
                Cp[i + 1] = (OUT)w;
            }
        }
        NUM(workspace_free)(&ws);
        if (failed) {
            #pragma omp critical(sc_spgemm_status)
            if (status == SC_OK) status = failed == 2 ? SC_ERR_INTERRUPTED : SC_ERR_NOMEM;
        }
    }
    if (status != SC_OK) return status;

    /* Cp[i + 1] holds the kept entries of row i; rows that dropped exact
     * zeros are shorter than their slots, so close the gaps. */
    int64_t kept = 0;
    for (int64_t i = 0; i < m; i++) kept += (int64_t)Cp[i + 1];
    Cp[0] = 0;
    if (kept == Cs[m]) {
        for (int64_t i = 0; i < m; i++) Cp[i + 1] = (OUT)Cs[i + 1];
    } else {
        int64_t pos = 0;
        for (int64_t i = 0; i < m; i++) {
            const int64_t len = (int64_t)Cp[i + 1];
            const int64_t src = Cs[i];
            if (src != pos) {
                /* pos < src: an ascending copy is safe; rows are short, so a
                 * plain loop beats two memmove calls */
                for (int64_t q = 0; q < len; q++) {
                    Cj[pos + q] = Cj[src + q];
                    Cx[pos + q] = Cx[src + q];
                }
            }
            pos += len;
            Cp[i + 1] = (OUT)pos;
        }
    }
    *nnz_out = kept;
    return SC_OK;
}

/* One-pass numeric pass (no symbolic pass), for products that compress
 * well: task t writes its rows back to back from Cj/Cx[fp[bounds[t]]] (its
 * multiply count is room enough), then the tasks are closed up in order,
 * the pages they leave handed back as they go (peak memory near the output).
 * Cp gets the row pointers; returns the entries kept in *nnz_out. */
SC_TARGET_CLONES
static int NUM(spgemm_onepass)(
    int64_t m, int64_t n,
    const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
    int b_sorted, int prefetch, const int64_t *SC_RESTRICT fp,
    int ntasks, const int64_t *bounds, int nt,
    OUT *SC_RESTRICT Cp, OUT *SC_RESTRICT Cj, VAL *SC_RESTRICT Cx, int64_t *nnz_out)
{
    int status = SC_OK;
    const int64_t window = n < SC_WINDOW ? n : SC_WINDOW;
    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        NUM(workspace) ws = {0};
        int failed = 0;

        #pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < ntasks; t++) {
            if (failed) continue;
            const IDX a_lim = prefetch ? Ap[bounds[t + 1]] : 0;
            int64_t pos = fp[bounds[t]];
            for (int64_t i = bounds[t]; i < bounds[t + 1]; i++) {
                if (SC_POLL(&poll, i)) { failed = 2; break; }
                const IDX a0 = Ap[i], a1 = Ap[i + 1];
                int64_t lo, hi;
                const int64_t flops = SC_NAME2(row_span, ISFX)(a0, a1, Aj, Bp, Bj, b_sorted, n, &lo, &hi);
                const int64_t room = flops < n ? flops : n;
                int64_t w = 0;
                if (room > 0) {
                    w = NUM(row)(&ws, a0, a1, a_lim, Aj, Ax, Bp, Bj, Bx, b_sorted, n, window,
                                 room, flops, lo, hi, Cj + pos, Cx + pos);
                    if (w < 0) { failed = 1; break; }
                }
                Cp[i + 1] = (OUT)w;
                pos += w;
            }
        }
        NUM(workspace_free)(&ws);
        if (failed) {
            #pragma omp critical(sc_spgemm_status)
            if (status == SC_OK) status = failed == 2 ? SC_ERR_INTERRUPTED : SC_ERR_NOMEM;
        }
    }
    if (status != SC_OK) return status;
    Cp[0] = 0;
    for (int64_t i = 0; i < m; i++) Cp[i + 1] = (OUT)((int64_t)Cp[i + 1] + (int64_t)Cp[i]);
    for (int t = 1; t < ntasks; t++) {
        const int64_t dst = (int64_t)Cp[bounds[t]], src = fp[bounds[t]];
        const int64_t len = (int64_t)Cp[bounds[t + 1]] - dst;
        if (len > 0 && dst != src) {
            sc_move_down((char *)(Cj + dst), (char *)(Cj + src), (size_t)len * sizeof(OUT));
            sc_move_down((char *)(Cx + dst), (char *)(Cx + src), (size_t)len * sizeof(VAL));
        }
    }
    *nnz_out = (int64_t)Cp[m];
    return SC_OK;
}

#undef NUM
