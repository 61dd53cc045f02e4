/*
 * Template over the index type: structure checks, flop counts and the
 * symbolic pass. Define IDX (int32_t or int64_t) and ISFX (i32 or i64).
 */
#define FN_(name, sfx) name##_##sfx
#define FN(name, sfx) FN_(name, sfx)

static int FN(csr_check, ISFX)(int64_t m, int64_t n, int64_t nnz,
                               const IDX *Ap, const IDX *Aj, int64_t *where,
                               int *sorted)
{
    if (Ap[0] != 0) return 1;
    for (int64_t i = 0; i < m; i++) {
        if (Ap[i + 1] < Ap[i]) { *where = i; return 2; }
    }
    if ((int64_t)Ap[m] > nnz) return 3;
    int ordered = 1;
    for (int64_t i = 0; i < m; i++) {
        const IDX p1 = Ap[i + 1];
        int64_t prev = -1;
        for (IDX p = Ap[i]; p < p1; p++) {
            const int64_t j = (int64_t)Aj[p];
            /* one unsigned comparison covers both bounds */
            if ((uint64_t)j >= (uint64_t)n) { *where = p; return 4; }
            ordered &= (j > prev);
            prev = j;
        }
    }
    *sorted = ordered;
    return SC_OK;
}

static int64_t FN(spgemm_flops, ISFX)(int64_t m, const IDX *Ap, const IDX *Aj,
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

/* Distinct columns of row i with a dense marker array. */
SC_INLINE int64_t FN(sym_row_dense, ISFX)(
    IDX a0, IDX a1, IDX a_lim, const IDX *SC_RESTRICT Aj, const IDX *SC_RESTRICT Bp,
    const IDX *SC_RESTRICT Bj, IDX stamp, IDX *SC_RESTRICT marks)
{
    int64_t count = 0;
    for (IDX a = a0; a < a1; a++) {
        if (a + SC_AHEAD < a_lim) SC_PREFETCH(Bj + Bp[Aj[a + SC_AHEAD]]);
        const IDX k = Aj[a];
        const IDX b1 = Bp[k + 1];
        for (IDX b = Bp[k]; b < b1; b++) {
            const IDX j = Bj[b];
            if (marks[j] != stamp) { marks[j] = stamp; count++; }
        }
    }
    return count;
}

/* Distinct columns of row i with a hash set of 2**bits slots (left empty). */
SC_INLINE int64_t FN(sym_row_hash, ISFX)(
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

static int FN(spgemm_symbolic, ISFX)(int64_t m, int64_t n,
                                     const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj,
                                     const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj,
                                     int b_no_dup, int prefetch, int ntasks,
                                     const int64_t *bounds, int nt, int64_t *SC_RESTRICT Cs)
{
    int status = SC_OK;
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        IDX *marks = NULL;       /* dense accumulator: marks[j] == i when row i has j */
        IDX *table = NULL;       /* hash accumulator: keys, SC_EMPTY when free */
        int64_t table_size = 0;
        int failed = 0;

        #pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < ntasks; t++) {
            if (failed) continue;
            /* prefetching B rows pays only when B does not sit in cache */
            const IDX a_lim = prefetch ? Ap[bounds[t + 1]] : 0;
            for (int64_t i = bounds[t]; i < bounds[t + 1]; i++) {
                const IDX a0 = Ap[i], a1 = Ap[i + 1];
                if (a1 - a0 == 1 && b_no_dup) {
                    const IDX k = Aj[a0];
                    Cs[i + 1] = (int64_t)(Bp[k + 1] - Bp[k]);
                    continue;
                }
                int64_t flops = 0;
                for (IDX a = a0; a < a1; a++) flops += (int64_t)(Bp[Aj[a] + 1] - Bp[Aj[a]]);
                if (flops <= 1) {
                    Cs[i + 1] = flops;
                    continue;
                }
                if (sc_sym_use_dense(flops, n)) {
                    if (marks == NULL) {
                        marks = (IDX *)malloc((size_t)n * sizeof(IDX));
                        if (marks == NULL) { failed = 1; break; }
                        memset(marks, 0xff, (size_t)n * sizeof(IDX));
                    }
                    Cs[i + 1] = FN(sym_row_dense, ISFX)(a0, a1, a_lim, Aj, Bp, Bj, (IDX)i, marks);
                } else {
                    const int bits = sc_table_bits(flops);
                    const int64_t size = (int64_t)1 << bits;
                    if (size > table_size) {
                        free(table);
                        table = (IDX *)malloc((size_t)size * sizeof(IDX));
                        if (table == NULL) { failed = 1; table_size = 0; break; }
                        memset(table, 0xff, (size_t)size * sizeof(IDX));
                        table_size = size;
                    }
                    Cs[i + 1] = FN(sym_row_hash, ISFX)(a0, a1, a_lim, Aj, Bp, Bj, table, bits);
                }
            }
        }
        free(marks);
        free(table);
        if (failed) {
            #pragma omp critical(sc_spgemm_status)
            status = SC_ERR_NOMEM;
        }
    }
    if (status != SC_OK) return status;
    Cs[0] = 0;
    for (int64_t i = 0; i < m; i++) Cs[i + 1] += Cs[i];
    return SC_OK;
}

#undef FN_
#undef FN
