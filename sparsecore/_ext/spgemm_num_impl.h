/*
 * Template: the numeric pass of C = A @ B.
 * Define IDX/ISFX (input index type), OUT/OSFX (output index type),
 * VAL/VSFX (value type), V_MUL(a, b), V_ADD(a, b), V_IS_ZERO(v), and
 * OUT_SORT (the sort for OUT keys).
 */
#define FN_(name, a, b, c) name##_##a##_##b##_##c
#define FN(name, a, b, c) FN_(name, a, b, c)

SC_TARGET_CLONES
static int FN(spgemm_numeric, ISFX, OSFX, VSFX)(
    int64_t m, int64_t n,
    const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
    int b_sorted, const int64_t *SC_RESTRICT Cs,
    int ntasks, const int64_t *bounds, int nt,
    OUT *SC_RESTRICT Cp, OUT *SC_RESTRICT Cj, VAL *SC_RESTRICT Cx, int64_t *nnz_out)
{
    int status = SC_OK;
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        IDX *marks = NULL;      /* dense accumulator */
        VAL *dense = NULL;
        IDX *keys = NULL;       /* hash accumulator */
        VAL *vals = NULL;
        int64_t table_size = 0;
        int failed = 0;

        #pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < ntasks; t++) {
            if (failed) continue;
            for (int64_t i = bounds[t]; i < bounds[t + 1]; i++) {
                const int64_t start = Cs[i];
                const int64_t cnt = Cs[i + 1] - start;
                OUT *SC_RESTRICT oj = Cj + start;
                VAL *SC_RESTRICT ox = Cx + start;
                int64_t w = 0;
                IDX a0 = Ap[i], a1 = Ap[i + 1];
                if (cnt == 0) {
                    Cp[i + 1] = 0;
                    continue;
                }
                if (a1 - a0 == 1 && b_sorted) {
                    /* one term: a scaled copy of a B row, already sorted */
                    IDX k = Aj[a0];
                    VAL av = Ax[a0];
                    for (IDX b = Bp[k]; b < Bp[k + 1]; b++) {
                        VAL v = V_MUL(av, Bx[b]);
                        if (!V_IS_ZERO(v)) { oj[w] = (OUT)Bj[b]; ox[w] = v; w++; }
                    }
                } else if (sc_use_dense(cnt, n)) {
                    if (marks == NULL) {
                        marks = (IDX *)malloc((size_t)n * sizeof(IDX));
                        dense = (VAL *)malloc((size_t)n * sizeof(VAL));
                        if (marks == NULL || dense == NULL) { failed = 1; break; }
                        memset(marks, 0xff, (size_t)n * sizeof(IDX));
                    }
                    const IDX stamp = (IDX)i;
                    int64_t len = 0;
                    for (IDX a = a0; a < a1; a++) {
                        IDX k = Aj[a];
                        VAL av = Ax[a];
                        for (IDX b = Bp[k]; b < Bp[k + 1]; b++) {
                            IDX j = Bj[b];
                            VAL p = V_MUL(av, Bx[b]);
                            if (marks[j] != stamp) {
                                marks[j] = stamp;
                                dense[j] = p;
                                oj[len++] = (OUT)j;
                            } else {
                                dense[j] = V_ADD(dense[j], p);
                            }
                        }
                    }
                    if (sc_scan_beats_sort(cnt, n)) {
                        /* walking the marks gives the columns in order */
                        for (int64_t j = 0; j < n; j++) {
                            if (marks[j] == stamp) {
                                VAL v = dense[j];
                                if (!V_IS_ZERO(v)) { oj[w] = (OUT)j; ox[w] = v; w++; }
                            }
                        }
                    } else {
                        OUT_SORT(oj, cnt);
                        for (int64_t q = 0; q < cnt; q++) {
                            OUT j = oj[q];
                            VAL v = dense[j];
                            if (!V_IS_ZERO(v)) { oj[w] = j; ox[w] = v; w++; }
                        }
                    }
                } else {
                    int bits = sc_table_bits(cnt);
                    int64_t size = (int64_t)1 << bits;
                    uint64_t mask = (uint64_t)size - 1;
                    if (size > table_size) {
                        free(keys);
                        free(vals);
                        keys = (IDX *)malloc((size_t)size * sizeof(IDX));
                        vals = (VAL *)malloc((size_t)size * sizeof(VAL));
                        table_size = size;
                        if (keys == NULL || vals == NULL) { failed = 1; table_size = 0; break; }
                        memset(keys, 0xff, (size_t)size * sizeof(IDX));
                    }
                    int64_t len = 0;
                    for (IDX a = a0; a < a1; a++) {
                        IDX k = Aj[a];
                        VAL av = Ax[a];
                        for (IDX b = Bp[k]; b < Bp[k + 1]; b++) {
                            IDX j = Bj[b];
                            VAL p = V_MUL(av, Bx[b]);
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
                    OUT_SORT(oj, cnt);
                    for (int64_t q = 0; q < cnt; q++) {
                        IDX j = (IDX)oj[q];
                        uint64_t h = sc_hash(j, bits);
                        while (keys[h] != j) h = (h + 1) & mask;
                        VAL v = vals[h];
                        if (!V_IS_ZERO(v)) { oj[w] = (OUT)j; ox[w] = v; w++; }
                    }
                    memset(keys, 0xff, (size_t)size * sizeof(IDX));
                }
                Cp[i + 1] = (OUT)w;
            }
        }
        free(marks);
        free(dense);
        free(keys);
        free(vals);
        if (failed) {
            #pragma omp critical(sc_spgemm_status)
            status = SC_ERR_NOMEM;
        }
    }
    if (status != SC_OK) return status;

    /* Cp[i + 1] holds the kept entries of row i; rows where products cancelled
     * to exact zeros are shorter than their slots, so close the gaps. */
    int64_t kept = 0;
    for (int64_t i = 0; i < m; i++) kept += (int64_t)Cp[i + 1];
    Cp[0] = 0;
    if (kept == Cs[m]) {
        for (int64_t i = 0; i < m; i++) Cp[i + 1] = (OUT)Cs[i + 1];
    } else {
        int64_t pos = 0;
        for (int64_t i = 0; i < m; i++) {
            int64_t len = (int64_t)Cp[i + 1];
            int64_t src = Cs[i];
            if (src != pos && len > 0) {
                memmove(Cj + pos, Cj + src, (size_t)len * sizeof(OUT));
                memmove(Cx + pos, Cx + src, (size_t)len * sizeof(VAL));
            }
            pos += len;
            Cp[i + 1] = (OUT)pos;
        }
    }
    *nnz_out = kept;
    return SC_OK;
}

#undef FN_
#undef FN
