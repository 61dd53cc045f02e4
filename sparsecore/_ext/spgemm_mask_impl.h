/*
 * Template: the masked product C<M> = A (+.*) B, or C<!M> with the mask's
 * complement, over one semiring. Define IDX/ISFX (index type of the inputs
 * and of the output), IDX_SORT (a sort for IDX keys), VAL/VSFX, V_MUL,
 * V_ADD, V_IS_ZERO (entries to drop after the sum; 0 keeps all).
 *
 * The mask is structural: every stored entry of M counts, whatever its value,
 * and its rows must be sorted without duplicates. Like GraphBLAS's saxpy
 * with a scattered mask (Davis, "Algorithm 1000: SuiteSparse:GraphBLAS",
 * ACM TOMS 2019), the mask row is scattered into a per-thread marker array
 * before the row's products, and a product whose column the mask excludes is
 * discarded before it is added, so the full product is never formed:
 *  - with the mask, row i may only hold the columns of M[i, :]; their slots
 *    in the output are the mask row's own positions, so the output comes out
 *    sorted without a sort and needs room for nnz(M) entries at most;
 *  - with the complement, row i holds the columns it reaches outside
 *    M[i, :], accumulated densely and sorted at the end.
 * Markers are stamps 2i (column in the mask row) and 2i + 1 (column already
 * holds a sum), so nothing is cleared between rows.
 */
#define MSK(name) SC_NAME3(name, ISFX, VSFX)

/* Row i holds Cp[i + 1] entries written from room[i]: move them together,
 * set the row pointers and the total. */
static void MSK(spgemm_close_rows)(int64_t m, const int64_t *SC_RESTRICT room,
                                   IDX *SC_RESTRICT Cp, IDX *SC_RESTRICT Cj,
                                   VAL *SC_RESTRICT Cx, int64_t *nnz_out)
{
    int64_t pos_out = 0;
    Cp[0] = 0;
    for (int64_t i = 0; i < m; i++) {
        const int64_t len = (int64_t)Cp[i + 1];
        const int64_t src = room[i];
        if (src != pos_out) {
            for (int64_t q = 0; q < len; q++) {
                Cj[pos_out + q] = Cj[src + q];
                Cx[pos_out + q] = Cx[src + q];
            }
        }
        pos_out += len;
        Cp[i + 1] = (IDX)pos_out;
    }
    *nnz_out = pos_out;
}

SC_TARGET_CLONES
static int MSK(spgemm_masked)(
    int64_t m, int64_t n,
    const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
    const IDX *SC_RESTRICT Mp, const IDX *SC_RESTRICT Mj, int complement,
    const int64_t *SC_RESTRICT room, int ntasks, const int64_t *bounds, int nt,
    IDX *SC_RESTRICT Cp, IDX *SC_RESTRICT Cj, VAL *SC_RESTRICT Cx, int64_t *nnz_out)
{
    int status = SC_OK;
    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int failed = 0;
        int64_t *mark = (int64_t *)malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
        IDX *pos = complement ? NULL : (IDX *)malloc((size_t)(n > 0 ? n : 1) * sizeof(IDX));
        VAL *dense = complement ? (VAL *)malloc((size_t)(n > 0 ? n : 1) * sizeof(VAL)) : NULL;
        if (mark == NULL || (complement ? dense == NULL : pos == NULL)) failed = 1;
        else memset(mark, 0xff, (size_t)n * sizeof(int64_t));

        #pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < ntasks; t++) {
            if (failed) continue;
            for (int64_t i = bounds[t]; i < bounds[t + 1]; i++) {
                if (SC_POLL(&poll, i)) { failed = 2; break; }
                IDX *SC_RESTRICT oj = Cj + room[i];
                VAL *SC_RESTRICT ox = Cx + room[i];
                const IDX a0 = Ap[i], a1 = Ap[i + 1];
                const IDX m0 = Mp[i], m1 = Mp[i + 1];
                const int64_t in_mask = 2 * i, hit = 2 * i + 1;
                int64_t w = 0;
                if (!complement) {
                    if (m0 == m1 || a0 == a1) { Cp[i + 1] = 0; continue; }
                    for (IDX p = m0; p < m1; p++) {
                        mark[Mj[p]] = in_mask;
                        pos[Mj[p]] = p - m0;
                    }
                    for (IDX a = a0; a < a1; a++) {
                        const IDX k = Aj[a];
                        const VAL av = Ax[a];
                        const IDX b1 = Bp[k + 1];
                        for (IDX b = Bp[k]; b < b1; b++) {
                            const IDX j = Bj[b];
                            const int64_t s = mark[j];
                            if (s == hit) {
                                const IDX q = pos[j];
                                ox[q] = V_ADD(ox[q], V_MUL(av, Bx[b]));
                            } else if (s == in_mask) {
                                mark[j] = hit;
                                ox[pos[j]] = V_MUL(av, Bx[b]);
                            }
                        }
                    }
                    /* the mask row's order is the output order: close up */
                    for (IDX p = m0; p < m1; p++) {
                        const IDX j = Mj[p];
                        const VAL v = ox[p - m0];
                        if (mark[j] == hit && !V_IS_ZERO(v)) {
                            oj[w] = j;
                            ox[w] = v;
                            w++;
                        }
                    }
                } else {
                    for (IDX p = m0; p < m1; p++) mark[Mj[p]] = in_mask;
                    int64_t len = 0;
                    for (IDX a = a0; a < a1; a++) {
                        const IDX k = Aj[a];
                        const VAL av = Ax[a];
                        const IDX b1 = Bp[k + 1];
                        for (IDX b = Bp[k]; b < b1; b++) {
                            const IDX j = Bj[b];
                            const int64_t s = mark[j];
                            if (s == hit) {
                                dense[j] = V_ADD(dense[j], V_MUL(av, Bx[b]));
                            } else if (s != in_mask) {
                                mark[j] = hit;
                                dense[j] = V_MUL(av, Bx[b]);
                                oj[len++] = j;
                            }
                        }
                    }
                    IDX_SORT(oj, len);
                    for (int64_t q = 0; q < len; q++) {
                        const IDX j = oj[q];
                        const VAL v = dense[j];
                        oj[w] = j;
                        ox[w] = v;
                        w += !V_IS_ZERO(v);
                    }
                }
                Cp[i + 1] = (IDX)w;
            }
        }
        free(mark);
        free(pos);
        free(dense);
        if (failed) {
            #pragma omp critical(sc_spgemm_status)
            if (status == SC_OK) status = failed == 2 ? SC_ERR_INTERRUPTED : SC_ERR_NOMEM;
        }
    }
    if (status != SC_OK) return status;

    MSK(spgemm_close_rows)(m, room, Cp, Cj, Cx, nnz_out);
    return SC_OK;
}

#undef MSK
